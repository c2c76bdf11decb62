/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * fuzz_hello.c: libFuzzer harness for the TLS ClientHello reader.  Beyond
 * "no crash", it checks what a caller that re-reads a growing buffer
 * relies on: a verdict other than NEED_MORE on a prefix is the verdict on
 * the whole, a hello read from a prefix reads the same from the whole,
 * every prefix shorter than the hello needs more, a call that does not
 * read a whole hello allocates nothing (it gets a NULL pool, so it would
 * crash), the hello fits the limit exactly, the strings are non-empty,
 * printable and end at their NUL, and the same handshake bytes cut into
 * other records read the same.  With the limit at the input's length the
 * reader can never need more: it knows the verdict, or that the limit is
 * too small.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "apr_general.h"
#include "apr_pools.h"

#include "ct_tls_hello.h"

#define LIMIT CT_HELLO_LIMIT_DEFAULT
#define RESPLIT_MAX (LIMIT * 7)

static apr_pool_t *pool;
static unsigned char resplit[RESPLIT_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    return 0;
}

static void fail(const char *what, size_t at)
{
    fprintf(stderr, "fuzz_hello: %s (at %zu)\n", what, at);
    abort();
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL)
           || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_info(const ct_hello_info *a, const ct_hello_info *b)
{
    return same_str(a->sni, b->sni) && same_str(a->alpn, b->alpn)
           && a->ech == b->ech && a->record_version == b->record_version
           && a->hello_version == b->hello_version;
}

static void check_text(const char *s, size_t most)
{
    size_t i, n;

    if (s == NULL) {
        return;
    }
    n = strlen(s);
    if (n == 0 || n > most) {
        fail("string empty or too long", n);
    }
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            fail("string with a byte outside '!'..'~'", i);
        }
    }
}

/* The hello's handshake bytes in records of `step` bytes each. */
static size_t recut(const uint8_t *data, size_t consumed, size_t step)
{
    size_t off = 0, len = 0, fill = 0;

    while (off + 5 <= consumed) {
        size_t rlen = ((size_t)data[off + 3] << 8) | data[off + 4];
        size_t i;

        for (i = 0; i < rlen; i++) {
            if (fill == 0) {
                memcpy(resplit + len, data, 3);
                len += 5;
            }
            resplit[len++] = data[off + 5 + i];
            if (++fill == step) {
                resplit[len - fill - 2] = (unsigned char)(fill >> 8);
                resplit[len - fill - 1] = (unsigned char)fill;
                fill = 0;
            }
        }
        off += 5 + rlen;
    }
    if (fill > 0) {
        resplit[len - fill - 2] = (unsigned char)(fill >> 8);
        resplit[len - fill - 1] = (unsigned char)fill;
    }
    return len;
}

/* What must hold once the whole input reads as a hello. */
static void check_done(apr_pool_t *p, const uint8_t *data, size_t size,
                       const ct_hello_info *info)
{
    ct_hello_info again;
    size_t k, len;

    if (info->consumed == 0 || info->consumed > size
        || info->consumed > LIMIT) {
        fail("consumed out of range", info->consumed);
    }
    check_text(info->sni, 255);
    check_text(info->alpn, size * 3);
    for (k = 0; k < info->consumed; k += 1 + k / 8) {
        if (ct_tls_hello_parse(NULL, data, k, LIMIT, &again)
            != CT_HELLO_NEED_MORE) {
            fail("a prefix of a hello does not need more", k);
        }
    }
    if (ct_tls_hello_parse(p, data, info->consumed, info->consumed, &again)
        != CT_HELLO_DONE || !same_info(info, &again)) {
        fail("the hello alone, at a limit of its size, reads otherwise", 0);
    }
    if (ct_tls_hello_parse(NULL, data, size, info->consumed - 1, &again)
        != CT_HELLO_TOO_BIG) {
        fail("a limit one short of the hello is not too big", 0);
    }
    for (k = 1; k <= 3; k++) {
        len = recut(data, info->consumed, k == 3 ? 16384 : k * 5);
        if (ct_tls_hello_parse(p, resplit, len, RESPLIT_MAX, &again)
            != CT_HELLO_DONE || !same_info(info, &again)
            || again.consumed != len) {
            fail("the hello cut into other records reads otherwise", k);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ct_hello_info info, part;
    ct_hello_status st, sp;
    size_t k;

    if (size > 4 * LIMIT) {
        return 0;
    }
    apr_pool_create(&p, pool);
    memset(&info, 0, sizeof(info));
    st = ct_tls_hello_parse(p, data, size, LIMIT, &info);
    if (st == CT_HELLO_DONE) {
        check_done(p, data, size, &info);
    }
    else if (ct_tls_hello_parse(NULL, data, size, LIMIT, &part) != st) {
        fail("a second call gives another verdict", size);
    }
    if (size > 0) {
        sp = ct_tls_hello_parse(p, data, size, size, &part);
        if (sp == CT_HELLO_NEED_MORE
            || (sp != st && sp != CT_HELLO_TOO_BIG)) {
            fail("the limit at the input's length changes the verdict", size);
        }
        if (st == CT_HELLO_DONE && (sp != st || !same_info(&part, &info))) {
            fail("a hello within the limit is not read", size);
        }
    }
    /* A few prefixes: any verdict they reach is the whole's. */
    for (k = size / 3; k < size; k += 1 + (size - k) / 2) {
        sp = ct_tls_hello_parse(p, data, k, LIMIT, &part);
        if (sp != CT_HELLO_NEED_MORE && sp != st) {
            fail("a prefix's verdict is not the whole's", k);
        }
        if (sp == CT_HELLO_DONE
            && (!same_info(&part, &info) || part.consumed != info.consumed)) {
            fail("a prefix reads another hello", k);
        }
    }
    (void)ct_tls_hello_status_str(st);
    apr_pool_destroy(p);
    return 0;
}
