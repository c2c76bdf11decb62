/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * fuzz_target.c: libFuzzer harness for the CONNECT request-target parser.
 * Beyond "no crash", it checks what the parser promises: an accepted
 * target has a non-empty host and a port in 1-65535, never names the
 * unspecified address, and reads back the same when written out again;
 * its canonical form parses too, is its own canonical form, and keeps
 * the port.  What a resolver would make of the host is judged by libc's
 * own parsers (inet_aton takes every legacy numeric spelling, inet_pton
 * IPv6), not by the parser under test.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <arpa/inet.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"

#include "ct_target.h"

static apr_pool_t *pool;

/* Whether libc reads host as "this host": 0.0.0.0, :: or ::ffff:0.0.0.0. */
static int libc_unspecified(const char *host)
{
    static const unsigned char mapped_zero[16] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0
    };
    static const unsigned char zero[16] = { 0 };
    unsigned char b6[16];
    struct in_addr a4;

    if (inet_aton(host, &a4)) {
        return a4.s_addr == 0;
    }
    if (inet_pton(AF_INET6, host, b6) == 1) {
        return memcmp(b6, zero, 16) == 0 || memcmp(b6, mapped_zero, 16) == 0;
    }
    return 0;
}

/* The kind the parser gave must be what libc sees in the text. */
static int kind_agrees(const ct_target *t)
{
    unsigned char b[16];

    if (t->kind == CT_HOST_IPV6) {
        return inet_pton(AF_INET6, t->host, b) == 1;
    }
    if (t->kind == CT_HOST_IPV4) {
        return inet_pton(AF_INET, t->host, b) == 1;
    }
    /* A name is never something inet_aton would take as a number. */
    return inet_aton(t->host, (struct in_addr *)b) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

static void check_canonical(apr_pool_t *p, const char *text,
                            const ct_target *t)
{
    ct_target c, again;
    const char *out;

    ct_target_canonical(p, t, &c);
    out = ct_target_authority(p, &c);
    if (c.port != t->port
        || ct_target_parse(p, out, &again) != CT_TARGET_OK) {
        fprintf(stderr, "canonical form of '%s' broke: '%s'\n", text, out);
        abort();
    }
    ct_target_canonical(p, &again, &again);
    if (strcmp(ct_target_authority(p, &again), out) != 0) {
        fprintf(stderr, "canonical form of '%s' is not stable: '%s'\n",
                text, out);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ct_target t, again;
    ct_target_status st;
    char *text;

    if (size > 4096) {
        return 0;
    }
    apr_pool_create(&p, pool);
    text = apr_pstrmemdup(p, (const char *)data, size);
    st = ct_target_parse(p, text, &t);
    if (st == CT_TARGET_OK) {
        const char *out = t.kind == CT_HOST_IPV6
                          ? apr_psprintf(p, "[%s]:%u", t.host, t.port)
                          : apr_psprintf(p, "%s:%u", t.host, t.port);

        if (t.host[0] == '\0' || t.port == 0
            || ct_target_parse(p, out, &again) != CT_TARGET_OK
            || strcmp(again.host, t.host) != 0 || again.port != t.port
            || again.kind != t.kind) {
            fprintf(stderr, "round trip broke for '%s'\n", text);
            abort();
        }
        if (libc_unspecified(t.host)) {
            fprintf(stderr, "'%s' names the unspecified address\n", text);
            abort();
        }
        if (!kind_agrees(&t)) {
            fprintf(stderr, "kind %d of '%s' is not what libc sees\n",
                    (int)t.kind, text);
            abort();
        }
        check_canonical(p, text, &t);
    }
    (void)ct_target_reason(st);
    apr_pool_destroy(p);
    return 0;
}
