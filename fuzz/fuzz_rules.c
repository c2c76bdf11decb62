/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * fuzz_rules.c: libFuzzer harness for the destination rule parser and the
 * address checks.  The input is one rule (text up to a NUL byte) and the
 * bytes after it are addresses to check.  Invariants: the built-in guard
 * denies every loopback address however it is spelt (plain, IPv4-mapped,
 * IPv4-compatible, NAT64), and a rule that parses always matches the
 * network address it was written with.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_network_io.h"

#include "ct_policy.h"

static apr_pool_t *pool;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    ct_policy_init(pool);
    return 0;
}

/* Whatever wraps a 127/8 address, the guard must see loopback. */
static void check_loopback_spellings(const uint8_t b[3])
{
    static const uint8_t prefixes[3][12] = {
        { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff },
        { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
    };
    uint8_t raw[16];
    ct_net net;
    int i;

    for (i = 0; i < 3; i++) {
        memcpy(raw, prefixes[i], 12);
        raw[12] = 127;
        memcpy(raw + 13, b, 3);
        ct_net_from_raw(APR_INET6, raw, &net);
        if (ct_default_denies(&net, NULL) == NULL) {
            fprintf(stderr, "loopback spelling %d not denied\n", i);
            abort();
        }
    }
    raw[0] = 127;
    memcpy(raw + 1, b, 3);
    ct_net_from_raw(APR_INET, raw, &net);
    if (ct_default_denies(&net, NULL) == NULL) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;
    apr_array_header_t *rules;
    apr_pool_t *p;
    ct_rule *rule;
    const char *err;
    size_t off;

    if (size > 4096) {
        return 0;
    }
    apr_pool_create(&p, pool);
    rules = apr_array_make(p, 1, sizeof(ct_rule));
    rule = apr_array_push(rules);
    err = ct_rule_parse(p, CT_DENY, apr_pstrmemdup(p, (const char *)data,
                                                   len), rule);
    if (err == NULL && rule->kind == CT_RULE_NETS) {
        int i;

        for (i = 0; i < rule->nnets; i++) {
            if (!ct_net_match(&rule->nets[i], &rule->nets[i])) {
                fprintf(stderr, "a network does not match itself\n");
                abort();
            }
        }
    }
    for (off = len + 1; off + 17 <= size; off += 17) {
        ct_net addr;
        ct_verdict v;

        ct_net_from_raw(data[off] & 1 ? APR_INET6 : APR_INET,
                        data + off + 1, &addr);
        v = ct_rules_check(err ? NULL : rules, "fuzz.example", &addr);
        (void)v;
        (void)ct_default_denies(&addr, NULL);
        check_loopback_spellings(data + off + 1);
    }
    apr_pool_destroy(p);
    return 0;
}
