/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * hello_tests.c: tests of the ClientHello reader (ct_tls_hello.c) on
 * hellos real clients sent, the same hellos cut into other records, every
 * prefix of each, and hand-built hellos that break one rule each.
 * The prefixes of the real hellos, which must not allocate, get a NULL
 * pool, so an allocation crashes; the other checks get a pool, so that a
 * wrong verdict is reported by name rather than by a crash.
 */

#include <stdio.h>
#include <string.h>

#include "apr_pools.h"

#include "ct_tls_hello.h"
#include "unit.h"
#include "hello_vectors.h"

#define HELLO_MAX 70000

static apr_pool_t *scratch;

static const struct {
    const unsigned char *bytes;
    apr_size_t len;
    const char *sni;
    const char *alpn;
    unsigned int hello_version;
    const char *why;
} real_hellos[] = {
    { hello_tls12_sni_alpn, sizeof(hello_tls12_sni_alpn), "www.example.com",
      "h2,http/1.1", 0x0303, "openssl TLS 1.2, SNI and ALPN" },
    { hello_tls13_sni_alpn, sizeof(hello_tls13_sni_alpn), "www.example.org",
      "h2,http/1.1", 0x0303, "openssl TLS 1.3, SNI and ALPN" },
    { hello_tls13_nosni, sizeof(hello_tls13_nosni), NULL, NULL, 0x0303,
      "openssl without SNI" },
    { hello_curl_sni, sizeof(hello_curl_sni), "curl.example.net",
      "h2,http/1.1", 0x0303, "curl --http2" },
    { hello_curl_tls12, sizeof(hello_curl_tls12), "legacy.example.com",
      "http/1.1", 0x0303, "curl TLS 1.2 only" },
};

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL)
           || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The handshake bytes of well-formed records, joined. */
static apr_size_t handshake_bytes(const unsigned char *rec, apr_size_t len,
                                  unsigned char *out)
{
    apr_size_t off = 0, n = 0;

    while (off + 5 <= len) {
        apr_size_t rlen = ((apr_size_t)rec[off + 3] << 8) | rec[off + 4];

        memcpy(out + n, rec + off + 5, rlen);
        n += rlen;
        off += 5 + rlen;
    }
    return n;
}

/* Handshake bytes as records: the first `first` bytes, then `step`s. */
static apr_size_t make_records(const unsigned char *hs, apr_size_t n,
                               apr_size_t first, apr_size_t step,
                               unsigned char *out)
{
    apr_size_t at = 0, len = 0;

    while (at < n) {
        apr_size_t k = at == 0 ? first : step;

        k = k < n - at ? k : n - at;
        out[len++] = 22;
        out[len++] = 3;
        out[len++] = 1;
        out[len++] = (unsigned char)(k >> 8);
        out[len++] = (unsigned char)k;
        memcpy(out + len, hs + at, k);
        len += k;
        at += k;
    }
    return len;
}

/* The right answer on the whole, NEED_MORE (and no allocation) on every
 * shorter prefix. */
static int check_whole(apr_pool_t *p, const unsigned char *b, apr_size_t len,
                       int i)
{
    ct_hello_info info;
    apr_size_t k;
    int good;

    memset(&info, 0, sizeof(info));
    good = ct_tls_hello_parse(p, b, len, HELLO_MAX, &info) == CT_HELLO_DONE
           && same_str(info.sni, real_hellos[i].sni)
           && same_str(info.alpn, real_hellos[i].alpn)
           && info.ech == 0 && info.consumed == len
           && info.record_version == 0x0301
           && info.hello_version == real_hellos[i].hello_version;
    for (k = 0; k < len && good; k++) {
        good = ct_tls_hello_parse(NULL, b, k, HELLO_MAX, &info)
               == CT_HELLO_NEED_MORE;
    }
    return good;
}

static void test_real_hellos(apr_pool_t *p)
{
    static unsigned char hs[HELLO_MAX], rec[HELLO_MAX];
    apr_size_t i, n, len, cut;

    for (i = 0; i < sizeof(real_hellos) / sizeof(*real_hellos); i++) {
        const char *why = real_hellos[i].why;
        int good = 1;

        expect(check_whole(p, real_hellos[i].bytes, real_hellos[i].len, i),
               "hello as sent, and its prefixes", why);
        n = handshake_bytes(real_hellos[i].bytes, real_hellos[i].len, hs);
        for (cut = 1; cut < n && good; cut++) {
            len = make_records(hs, n, cut, n, rec);
            good = check_whole(p, rec, len, i);
        }
        expect(good, "hello in two records, every cut", why);
        for (cut = 1; cut <= 64 && good; cut++) {
            len = make_records(hs, n, cut, cut, rec);
            good = check_whole(p, rec, len, i);
        }
        expect(good, "hello in records of 1..64 bytes", why);
    }
}

/* A one-record hello with these extensions (none when ext is NULL). */
static apr_size_t build_hello(const unsigned char *ext, apr_size_t ext_len,
                              unsigned char *out)
{
    static const unsigned char head[] = {
        0x03, 0x03
    };
    static const unsigned char tail[] = {
        0x00,                   /* no session id */
        0x00, 0x02, 0x13, 0x01, /* TLS_AES_128_GCM_SHA256 */
        0x01, 0x00              /* null compression */
    };
    apr_size_t n = 9, body;

    memcpy(out + n, head, sizeof(head));
    n += sizeof(head);
    memset(out + n, 0x5a, 32);
    n += 32;
    memcpy(out + n, tail, sizeof(tail));
    n += sizeof(tail);
    if (ext != NULL) {
        out[n++] = (unsigned char)(ext_len >> 8);
        out[n++] = (unsigned char)ext_len;
        memcpy(out + n, ext, ext_len);
        n += ext_len;
    }
    body = n - 9;
    out[0] = 22;
    out[1] = 3;
    out[2] = 1;
    out[3] = (unsigned char)((body + 4) >> 8);
    out[4] = (unsigned char)(body + 4);
    out[5] = 1;
    out[6] = 0;
    out[7] = (unsigned char)(body >> 8);
    out[8] = (unsigned char)body;
    return n;
}

#define E(s) (const unsigned char *)(s), sizeof(s) - 1

static const struct {
    const unsigned char *ext;
    apr_size_t ext_len;
    ct_hello_status want;
    const char *sni;
    const char *alpn;
    int ech;
    const char *why;
} built_hellos[] = {
    { NULL, 0, CT_HELLO_DONE, NULL, NULL, 0, "no extensions at all" },
    { E(""), CT_HELLO_DONE, NULL, NULL, 0, "empty extension list" },
    { E("\0\0\0\x08\0\x06\0\0\x03" "a.b"), CT_HELLO_DONE, "a.b", NULL, 0,
      "server_name alone" },
    { E("\0\0\0\x0e\0\x0c\x07\0\x03xyz\0\0\x03" "a.b"), CT_HELLO_DONE, "a.b",
      NULL, 0, "unknown name type skipped" },
    { E("\0\x10\0\x0e\0\x0c\x02h2\x02\x0a\x0a\x05\x61,b%c"), CT_HELLO_DONE,
      NULL, "h2,%0A%0A,a%2Cb%25c", 0, "ALPN bytes escaped" },
    { E("\xfe\x0d\0\x02zz\0\0\0\x0c\0\x0a\0\0\x07pub.net"), CT_HELLO_DONE,
      "pub.net", NULL, 1, "encrypted_client_hello flagged" },
    { E("\0\0\0\x08\0\x06\0\0\x03" "a.b\0\x29\0\0"), CT_HELLO_DONE, "a.b",
      NULL, 0, "pre_shared_key last" },
    { E("\0\x29\0\0\0\0\0\x08\0\x06\0\0\x03" "a.b"), CT_HELLO_MALFORMED, NULL,
      NULL, 0, "pre_shared_key not last" },
    { E("\0\0\0\x08\0\x06\0\0\x03" "a.b\0\0\0\x08\0\x06\0\0\x03" "a.b"),
      CT_HELLO_MALFORMED, NULL, NULL, 0, "server_name twice" },
    { E("\0\x15\0\0\0\x15\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "unknown extension twice" },
    { E("\0\0\0\x0e\0\x0c\0\0\x03" "a.b\0\0\x03c.d"), CT_HELLO_MALFORMED, NULL,
      NULL, 0, "two host_names" },
    { E("\0\0\0\x05\0\x03\0\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "empty host_name" },
    { E("\0\0\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "empty server_name extension" },
    { E("\0\0\0\x02\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "empty server_name list" },
    { E("\0\0\0\x08\0\x06\0\0\x03\x61\0b"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "NUL in host_name" },
    { E("\0\0\0\x08\0\x06\0\0\x03\x61\nb"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "newline in host_name" },
    { E("\0\0\0\x08\0\x06\0\0\x03\x61 b"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "space in host_name" },
    { E("\0\0\0\x08\0\x06\0\0\x03\x61\xc3\xa4"), CT_HELLO_MALFORMED, NULL,
      NULL, 0, "non-ASCII host_name" },
    { E("\0\0\0\x08\0\x06\0\0\x04\x61.b"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "host_name longer than its list" },
    { E("\0\0\0\x09\0\x06\0\0\x03\x61.bX"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "bytes after the server_name list" },
    { E("\0\0\0\x08\0\x07\0\0\x03\x61.b"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "server_name list longer than extension" },
    { E("\0\0\0\x09\0\x06\0\0\x03\x61.b"), CT_HELLO_MALFORMED, NULL, NULL,
      0, "extension longer than the hello" },
    { E("\0\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "extension header cut short" },
    { E("\0\x10\0\x02\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "empty ALPN list" },
    { E("\0\x10\0\x04\0\x02\x01"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "ALPN name past its list" },
    { E("\0\x10\0\x05\0\x03\x02h2\0\x10\0\x05\0\x03\x02h2"),
      CT_HELLO_MALFORMED, NULL, NULL, 0, "ALPN twice" },
    { E("\0\x10\0\x04\0\x02\0\0"), CT_HELLO_MALFORMED, NULL, NULL, 0,
      "empty ALPN name" },
};

static void test_built_hellos(apr_pool_t *p)
{
    static unsigned char b[HELLO_MAX];
    apr_size_t i, len;

    for (i = 0; i < sizeof(built_hellos) / sizeof(*built_hellos); i++) {
        ct_hello_info info;
        ct_hello_status want = built_hellos[i].want;
        ct_hello_status st;

        memset(&info, 0, sizeof(info));
        len = build_hello(built_hellos[i].ext, built_hellos[i].ext_len, b);
        st = ct_tls_hello_parse(p, b, len, HELLO_MAX, &info);
        expect(st == want
               && (want != CT_HELLO_DONE
                   || (same_str(info.sni, built_hellos[i].sni)
                       && same_str(info.alpn, built_hellos[i].alpn)
                       && info.ech == built_hellos[i].ech
                       && info.consumed == len)),
               "built hello", built_hellos[i].why);
    }
}

/* A host_name of n letters: 255 is the most a DNS name can take. */
static void test_long_name(apr_pool_t *p)
{
    static unsigned char ext[400], b[HELLO_MAX];
    apr_size_t n, len;

    for (n = 255; n <= 256; n++) {
        ct_hello_info info;
        ct_hello_status st;

        memcpy(ext, "\0\0", 2);
        ext[2] = (unsigned char)((n + 5) >> 8);
        ext[3] = (unsigned char)(n + 5);
        ext[4] = (unsigned char)((n + 3) >> 8);
        ext[5] = (unsigned char)(n + 3);
        ext[6] = 0;
        ext[7] = (unsigned char)(n >> 8);
        ext[8] = (unsigned char)n;
        memset(ext + 9, 'x', n);
        len = build_hello(ext, n + 9, b);
        st = ct_tls_hello_parse(p, b, len, HELLO_MAX, &info);
        expect(n == 255 ? st == CT_HELLO_DONE && strlen(info.sni) == 255
                        : st == CT_HELLO_MALFORMED,
               "host_name length bound", n == 255 ? "255" : "256");
    }
}

static ct_hello_status parse_copy(const unsigned char *b, apr_size_t len,
                                  apr_size_t limit)
{
    ct_hello_info info;

    return ct_tls_hello_parse(scratch, b, len, limit, &info);
}

/* One byte changed in a real hello, or its records rearranged. */
static void test_corruptions(void)
{
    static unsigned char b[HELLO_MAX], hs[HELLO_MAX], hs2[HELLO_MAX];
    const unsigned char *h = hello_tls13_sni_alpn;
    apr_size_t len = sizeof(hello_tls13_sni_alpn), n;

    memcpy(b, h, len);
    b[5] = 2;
    expect(parse_copy(b, len, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "handshake type 2");
    memcpy(b, h, len);
    b[4]++;
    b[len] = 0;
    expect(parse_copy(b, len + 1, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "a byte after the hello in its record");
    memcpy(b, h, len);
    b[4]++;
    b[8]++;
    b[len] = 0;
    expect(parse_copy(b, len + 1, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "a byte after the extensions");
    memcpy(b, h, len);
    b[4]--;
    expect(parse_copy(b, len - 1, HELLO_MAX) == CT_HELLO_NEED_MORE,
           "hello corrupt", "record shorter than the handshake: more due");
    memcpy(b, h, len);
    b[4]--;
    b[8]--;
    expect(parse_copy(b, len - 1, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "hello cut short at the end");
    memcpy(b, h, len);
    b[9] = 2;
    expect(parse_copy(b, len, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "hello version major 2");
    memcpy(b, h, len);
    b[43] = 33;
    expect(parse_copy(b, len, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "session id of 33 bytes");

    len = build_hello(NULL, 0, b);
    memmove(b + 48, b + 47, len - 47);
    b[4]++;
    b[8]++;
    b[45] = 3;
    expect(parse_copy(b, len + 1, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "cipher suites of 3 bytes");

    len = sizeof(hello_tls13_sni_alpn);
    n = handshake_bytes(h, len, hs);
    len = make_records(hs, n, 40, n, hs2);
    memcpy(b, hs2, 45);
    memcpy(b + 45, "\x15\x03\x03\x00\x02\x02\x28", 7);
    memcpy(b + 52, hs2 + 45, len - 45);
    expect(parse_copy(b, len + 7, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "alert record inside the hello");
    len = make_records(hs, n, 40, n, b);
    b[45] = 23;
    expect(parse_copy(b, 46, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "second record application data (1 byte)");
    b[45] = 22;
    b[46] = 2;
    expect(parse_copy(b, 47, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "second record version major 2");
    b[46] = 3;
    b[48] = 0;
    b[49] = 0;
    expect(parse_copy(b, 50, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "empty record");
    b[48] = 0x40;
    b[49] = 0x01;
    expect(parse_copy(b, 50, HELLO_MAX) == CT_HELLO_MALFORMED,
           "hello corrupt", "record over 2^14 bytes");
}

static const struct {
    const char *bytes;
    apr_size_t len;
    ct_hello_status want;
    const char *why;
} first_bytes[] = {
    { "", 0, CT_HELLO_NEED_MORE, "nothing yet" },
    { "\x16", 1, CT_HELLO_NEED_MORE, "handshake type only" },
    { "\x16\x03\x01\x00", 4, CT_HELLO_NEED_MORE, "record header cut" },
    { "G", 1, CT_HELLO_NOT_TLS, "HTTP, first byte" },
    { "GET / HTTP/1.1\r\n", 16, CT_HELLO_NOT_TLS, "HTTP request line" },
    { "SSH-2.0-OpenSSH_9.2\r\n", 21, CT_HELLO_NOT_TLS, "SSH banner" },
    { "\x80\x2e\x01\x03\x01\x00\x15", 7, CT_HELLO_NOT_TLS, "SSLv2 hello" },
    { "\x16\x02", 2, CT_HELLO_NOT_TLS, "record version major 2" },
    { "\x16\x04\x00", 3, CT_HELLO_NOT_TLS, "record version major 4" },
    { "\x17\x03\x03\x00\x10", 5, CT_HELLO_NOT_TLS, "application data" },
    { "\x16\x03\x01\x00\x00", 5, CT_HELLO_MALFORMED, "empty first record" },
    { "\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, CT_HELLO_MALFORMED,
      "server hello" },
    { "\x16\x03\x01\x00\x04\x01\x00\x00\x05", 9, CT_HELLO_MALFORMED,
      "hello too short to be one" },
    { "\x16\x03\x01\x00\x01\x01\x16\x03\x01\x00\x01\x00", 12,
      CT_HELLO_NEED_MORE, "handshake header over tiny records" },
    { "\x16\x03\x01\x00\x04\x01\x00\x4e\x20", 9, CT_HELLO_TOO_BIG,
      "hello of 20000 bytes, told by its header" },
    { "\x16\x03\x01\x00\x01\x01\x16\x03\x01\x00\x03\x01\x00\x00", 14,
      CT_HELLO_TOO_BIG, "hello of 65536 bytes, header over records" },
};

static void test_first_bytes(void)
{
    apr_size_t i;

    for (i = 0; i < sizeof(first_bytes) / sizeof(*first_bytes); i++) {
        expect(parse_copy((const unsigned char *)first_bytes[i].bytes,
                          first_bytes[i].len, CT_HELLO_LIMIT_DEFAULT)
               == first_bytes[i].want,
               "first bytes", first_bytes[i].why);
    }
}

/* The limit: the hello's records must fit; bytes past it are not read. */
static void test_limit(apr_pool_t *p)
{
    static unsigned char b[HELLO_MAX], hs[HELLO_MAX];
    const unsigned char *h = hello_curl_sni;
    apr_size_t len = sizeof(hello_curl_sni), n, many;
    ct_hello_info info;

    expect(parse_copy(h, len, len - 1) == CT_HELLO_TOO_BIG,
           "limit", "one byte short");
    expect(parse_copy(h, 100, len - 1) == CT_HELLO_TOO_BIG,
           "limit", "one byte short, seen from the first record header");
    expect(parse_copy(h, 3, 5) == CT_HELLO_NEED_MORE,
           "limit", "too little to know");
    expect(parse_copy(h, 3, 4) == CT_HELLO_TOO_BIG,
           "limit", "no room for a record header");
    expect(ct_tls_hello_parse(p, h, len, len, &info) == CT_HELLO_DONE
           && info.consumed == len, "limit", "exactly the hello");
    memcpy(b, h, len);
    memcpy(b + len, "\x17\x03\x03\x00\x01X", 6);
    expect(ct_tls_hello_parse(p, b, len + 6, len, &info) == CT_HELLO_DONE
           && info.consumed == len, "limit", "bytes after the hello");
    n = handshake_bytes(h, len, hs);
    many = make_records(hs, n, 16, 16, b);
    expect(parse_copy(b, 40, many - 1) == CT_HELLO_NEED_MORE,
           "limit", "many records, not known yet");
    expect(parse_copy(b, 9, n + 4) == CT_HELLO_TOO_BIG,
           "limit", "many records, known from the handshake header");
    expect(parse_copy(b, many, many - 1) == CT_HELLO_TOO_BIG,
           "limit", "many records, one byte short");
    expect(ct_tls_hello_parse(p, b, many, many, &info) == CT_HELLO_DONE,
           "limit", "many records, exactly");
}

static void test_status_strings(void)
{
    int st, good = 1;

    for (st = CT_HELLO_DONE; st <= CT_HELLO_TOO_BIG; st++) {
        good &= strlen(ct_tls_hello_status_str((ct_hello_status)st)) > 0;
    }
    expect(good, "status strings", "all");
}

void test_tls_hello(apr_pool_t *p)
{
    scratch = p;
    test_real_hellos(p);
    test_built_hellos(p);
    test_long_name(p);
    test_corruptions();
    test_first_bytes();
    test_limit(p);
    test_status_strings();
}
