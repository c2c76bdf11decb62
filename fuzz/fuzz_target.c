/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * fuzz_target.c: libFuzzer harness for the CONNECT request-target parser.
 * Beyond "no crash", it checks what the parser promises: an accepted
 * target has a non-empty host and a port in 1-65535, never names the
 * unspecified address, and reads back the same when written out again;
 * its canonical form parses too, is its own canonical form, and keeps
 * the port.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"

#include "ct_target.h"

static apr_pool_t *pool;

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
        check_canonical(p, text, &t);
    }
    (void)ct_target_reason(st);
    apr_pool_destroy(p);
    return 0;
}
