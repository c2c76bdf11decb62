/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * fuzz_rules.c: libFuzzer harness for the destination rule parser and the
 * address checks.  The input is one rule (text up to a NUL byte) and the
 * bytes after it are addresses to check.  Invariants: the built-in guard
 * denies every loopback address however it is spelt (plain, IPv4-mapped,
 * IPv4-compatible, NAT64), and a rule written as an address or CIDR
 * matches exactly the addresses that share its prefix, as libc's
 * inet_pton reads the text (not as the parser under test does).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>

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

/* Bit i (from the most significant) of b. */
static int bit_of(const uint8_t *b, unsigned int i)
{
    return (b[i / 8] >> (7 - i % 8)) & 1;
}

/*
 * Read "ADDR" or "ADDR/BITS" with inet_pton; returns the family (0 when
 * the text is not of that form) and fills raw and bits.
 */
static int libc_cidr(const char *text, uint8_t raw[16], unsigned int *bits)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    int family;
    char *end;
    long n;

    if (len == 0 || len >= sizeof(addr)) {
        return 0;
    }
    memcpy(addr, text, len);
    addr[len] = '\0';
    family = inet_pton(AF_INET, addr, raw) == 1 ? AF_INET
             : inet_pton(AF_INET6, addr, raw) == 1 ? AF_INET6 : 0;
    *bits = family == AF_INET ? 32 : 128;
    if (family && slash) {
        n = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || n < 0
            || n > (long)*bits) {
            return 0;
        }
        *bits = (unsigned int)n;
    }
    return family;
}

/*
 * An address that keeps the rule's first bits (the rest from the fuzzer)
 * must match; one with a bit inside the prefix flipped must not.  A
 * candidate that leaves the rule's own kind of address (an IPv6 one that
 * turns out to carry an IPv4 address, or the reverse) is skipped: rules
 * see such addresses as the IPv4 address inside, on purpose.
 */
static void check_prefix(const ct_rule *rule, int family,
                         const char *text, const uint8_t raw[16],
                         unsigned int bits, const uint8_t *fill,
                         size_t nfill)
{
    int apr_family = family == AF_INET ? APR_INET : APR_INET6;
    unsigned int len = family == AF_INET ? 32 : 128, i;
    uint8_t cand[16];
    ct_net net, self;

    ct_net_from_raw(apr_family, raw, &self);
    memcpy(cand, raw, len / 8);
    for (i = bits; i < len; i++) {
        int want = nfill ? (fill[(i / 8) % nfill] >> (i % 8)) & 1 : 0;

        if (bit_of(cand, i) != want) {
            cand[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
        }
    }
    ct_net_from_raw(apr_family, cand, &net);
    if (net.family == self.family && !ct_net_match(&rule->nets[0], &net)) {
        fprintf(stderr, "'%s' does not match an address inside it\n",
                text);
        abort();
    }
    if (bits == 0) {
        return;
    }
    i = nfill ? fill[0] % bits : bits - 1;
    cand[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
    ct_net_from_raw(apr_family, cand, &net);
    if (net.family == self.family && ct_net_match(&rule->nets[0], &net)) {
        fprintf(stderr, "'%s' matches an address outside it (bit %u)\n",
                text, i);
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
    const char *err, *text;
    size_t off;

    if (size > 4096) {
        return 0;
    }
    apr_pool_create(&p, pool);
    rules = apr_array_make(p, 1, sizeof(ct_rule));
    rule = apr_array_push(rules);
    text = apr_pstrmemdup(p, (const char *)data, len);
    err = ct_rule_parse(p, CT_DENY, text, rule);
    if (err == NULL && rule->kind == CT_RULE_NETS && rule->nnets == 1) {
        unsigned int bits;
        uint8_t raw[16];
        int family = libc_cidr(text, raw, &bits);

        if (family) {
            check_prefix(rule, family, text, raw, bits, data + len,
                         size - len);
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
