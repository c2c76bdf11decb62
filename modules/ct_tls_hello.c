/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_tls_hello.c: reads the server_name and ALPN list out of a TLS
 * ClientHello (RFC 8446 4.1.2, RFC 6066 3, RFC 7301 3.1) in the bytes a
 * client sends first, without OpenSSL and without allocating until a
 * whole hello has been read and found well formed.
 *
 * Two steps.  The record walk looks only at the 5-byte record headers
 * and the 4-byte handshake header, so a call on a hello that is still
 * arriving costs a few bytes per record; it settles NOT_TLS, TOO_BIG and
 * NEED_MORE.  Once the records hold the whole hello, a cursor reads the
 * handshake bytes across record boundaries in place (no reassembly
 * buffer), checks every length, and only then are the two strings copied
 * into the pool.
 *
 * Choices, so callers can rely on them:
 * - An SSLv2-compatible hello (first byte with the high bit set) is
 *   NOT_TLS: it is not a TLS record, carries no extensions and so no
 *   name, and only clients from before TLS 1.0 send one.
 * - The first record decides NOT_TLS (type byte, then version major);
 *   any later record that is not a TLS handshake record is MALFORMED.
 * - Empty records, records over 2^14 bytes, bytes after the hello in its
 *   last record, a hello with bytes after its extensions, a repeated
 *   extension, pre_shared_key not last, an empty or repeated host_name,
 *   a host_name over 255 bytes or with bytes outside '!'..'~' are
 *   MALFORMED.  Server-name entries of other types are skipped.
 * - ALPN names are opaque bytes; in the joined list, bytes outside
 *   '!'..'~' and the characters ',' and '%' are written as %HH, so the
 *   list stays one unambiguous printable line ("h2,http/1.1").
 */

#include <string.h>

#include "apr_strings.h"

#include "ct_tls_hello.h"

#define CT_REC_HEADER       5
#define CT_REC_MAX          16384   /* a TLSPlaintext fragment, 2^14 */
#define CT_REC_HANDSHAKE    22
#define CT_HS_HEADER        4
#define CT_HS_CLIENT_HELLO  1
#define CT_EXT_SERVER_NAME  0
#define CT_EXT_ALPN         16
#define CT_EXT_PSK          41
#define CT_EXT_ECH          0xfe0d
#define CT_SNI_HOST_NAME    0
#define CT_SNI_MAX          255

/*
 * Reads the handshake bytes where they lie: pos walks the buffer,
 * stepping over a record header whenever the current fragment is used
 * up.  left bounds what this cursor (or a sub-cursor for one vector) may
 * read.  The record walk has checked every header up to the hello's end,
 * so a cursor never leaves the buffer.
 */
typedef struct {
    const unsigned char *buf;
    apr_size_t pos;         /* offset of the next byte in buf */
    apr_size_t rec_left;    /* bytes of the current fragment from pos */
    apr_size_t left;        /* bytes this cursor may still read */
} hs_cursor;

static void cur_step(hs_cursor *c)
{
    if (c->rec_left == 0) {
        c->rec_left = ((apr_size_t)c->buf[c->pos + 3] << 8)
                      | c->buf[c->pos + 4];
        c->pos += CT_REC_HEADER;
    }
}

static int cur_u8(hs_cursor *c, unsigned int *v)
{
    if (c->left == 0) {
        return 0;
    }
    cur_step(c);
    *v = c->buf[c->pos++];
    c->rec_left--;
    c->left--;
    return 1;
}

static int cur_u16(hs_cursor *c, unsigned int *v)
{
    unsigned int hi, lo;

    if (!cur_u8(c, &hi) || !cur_u8(c, &lo)) {
        return 0;
    }
    *v = (hi << 8) | lo;
    return 1;
}

static int cur_skip(hs_cursor *c, apr_size_t n)
{
    if (n > c->left) {
        return 0;
    }
    c->left -= n;
    while (n > 0) {
        apr_size_t k;

        cur_step(c);
        k = n < c->rec_left ? n : c->rec_left;
        c->pos += k;
        c->rec_left -= k;
        n -= k;
    }
    return 1;
}

/* Splits the next n bytes off c as sub, for a length-prefixed vector. */
static int cur_sub(hs_cursor *c, apr_size_t n, hs_cursor *sub)
{
    *sub = *c;
    sub->left = n;
    return cur_skip(c, n);
}

/* A vector with a 1- or 2-byte length prefix, as a sub-cursor. */
static int cur_vec(hs_cursor *c, int prefix, hs_cursor *sub)
{
    unsigned int n;

    if (!(prefix == 1 ? cur_u8(c, &n) : cur_u16(c, &n))) {
        return 0;
    }
    return cur_sub(c, n, sub);
}

/* Where the record walk found the hello. */
typedef struct {
    apr_size_t hs_len;      /* the ClientHello body, after its header */
    apr_size_t consumed;    /* end of the record holding its last byte */
    unsigned int record_version;
} hs_span;

/*
 * Collects the handshake header's bytes from a fragment (they may be
 * spread over several tiny records) and checks it once it is whole.
 */
static ct_hello_status note_header(const unsigned char *frag,
                                   apr_size_t avail, apr_size_t have,
                                   unsigned char *hdr, hs_span *span)
{
    apr_size_t i;

    for (i = 0; i < avail && have + i < CT_HS_HEADER; i++) {
        hdr[have + i] = frag[i];
    }
    if (have >= CT_HS_HEADER || have + avail < CT_HS_HEADER) {
        return CT_HELLO_NEED_MORE;
    }
    if (hdr[0] != CT_HS_CLIENT_HELLO) {
        return CT_HELLO_MALFORMED;
    }
    span->hs_len = ((apr_size_t)hdr[1] << 16) | ((apr_size_t)hdr[2] << 8)
                   | hdr[3];
    /* version, random, and a byte each for session id and compression,
     * two for the cipher suites: less cannot be a hello */
    if (span->hs_len < 2 + 32 + 1 + 2 + 1) {
        return CT_HELLO_MALFORMED;
    }
    return CT_HELLO_NEED_MORE;
}

/* What the first bytes of the first record say about the stream. */
static ct_hello_status first_bytes(const unsigned char *buf, apr_size_t end)
{
    if (end >= 1 && buf[0] != CT_REC_HANDSHAKE) {
        return CT_HELLO_NOT_TLS;
    }
    if (end >= 2 && buf[1] != 3) {
        return CT_HELLO_NOT_TLS;
    }
    return CT_HELLO_NEED_MORE;
}

/* A record header past the first that is not a TLS handshake record. */
static int bad_later_header(const unsigned char *h, apr_size_t avail)
{
    return (avail >= 1 && h[0] != CT_REC_HANDSHAKE)
           || (avail >= 2 && h[1] != 3);
}

/*
 * Walks the record headers of buf[0..end): DONE (with span filled) once
 * the records hold the whole hello, else why not.
 */
static ct_hello_status walk_records(const unsigned char *buf, apr_size_t len,
                                    apr_size_t limit, hs_span *span)
{
    apr_size_t end = len < limit ? len : limit;
    apr_size_t off = 0, have = 0;
    unsigned char hdr[CT_HS_HEADER];
    ct_hello_status st = first_bytes(buf, end);

    memset(span, 0, sizeof(*span));
    if (st != CT_HELLO_NEED_MORE) {
        return st;
    }
    for (;;) {
        apr_size_t rlen, avail, need;

        if (off > 0 && bad_later_header(buf + off, end - off)) {
            return CT_HELLO_MALFORMED;
        }
        if (end - off < CT_REC_HEADER) {
            return off + CT_REC_HEADER > limit ? CT_HELLO_TOO_BIG
                                               : CT_HELLO_NEED_MORE;
        }
        rlen = ((apr_size_t)buf[off + 3] << 8) | buf[off + 4];
        if (rlen == 0 || rlen > CT_REC_MAX) {
            return CT_HELLO_MALFORMED;
        }
        /* Before the handshake header: a prefix that ends inside this
         * record must reach the same verdict as the whole. */
        if (off + CT_REC_HEADER + rlen > limit) {
            return CT_HELLO_TOO_BIG;
        }
        if (off == 0) {
            span->record_version = ((unsigned int)buf[1] << 8) | buf[2];
        }
        avail = end - off - CT_REC_HEADER;
        avail = avail < rlen ? avail : rlen;
        st = note_header(buf + off + CT_REC_HEADER, avail, have, hdr, span);
        if (st != CT_HELLO_NEED_MORE) {
            return st;
        }
        /* The least the records must span: as far as the rest of the
         * hello reaches, past this record and its header at least. */
        if (have + avail >= CT_HS_HEADER
            && CT_HS_HEADER + span->hs_len - have > rlen) {
            need = off + CT_REC_HEADER + CT_HS_HEADER + span->hs_len - have;
            if (need > limit) {
                return CT_HELLO_TOO_BIG;
            }
        }
        if (avail < rlen) {
            return CT_HELLO_NEED_MORE;
        }
        have += rlen;
        off += CT_REC_HEADER + rlen;
        if (have >= CT_HS_HEADER && have >= CT_HS_HEADER + span->hs_len) {
            /* A client sends nothing after its hello until the server
             * answers, least of all in the same record. */
            if (have > CT_HS_HEADER + span->hs_len) {
                return CT_HELLO_MALFORMED;
            }
            span->consumed = off;
            return CT_HELLO_DONE;
        }
    }
}

/* What the extensions yielded, as cursors over the bytes to copy. */
typedef struct {
    hs_cursor sni;          /* the host_name; left 0 when none */
    hs_cursor alpn;         /* the protocol_name_list; left 0 when none */
    int has_sni;
    int has_alpn;
    int ech;
} hs_found;

static int sni_byte_ok(unsigned int b)
{
    return b > 0x20 && b < 0x7f;
}

/* server_name: a list of (type, name); keeps the one host_name. */
static int read_sni(hs_cursor *ext, hs_found *f)
{
    hs_cursor list, name, scan;
    unsigned int type, b;

    if (!cur_vec(ext, 2, &list) || ext->left != 0 || list.left == 0) {
        return 0;
    }
    while (list.left > 0) {
        if (!cur_u8(&list, &type) || !cur_vec(&list, 2, &name)) {
            return 0;
        }
        if (type != CT_SNI_HOST_NAME) {
            continue;
        }
        if (f->has_sni || name.left == 0 || name.left > CT_SNI_MAX) {
            return 0;
        }
        f->sni = name;
        f->has_sni = 1;
        scan = name;
        while (cur_u8(&scan, &b)) {
            if (!sni_byte_ok(b)) {
                return 0;
            }
        }
    }
    return 1;
}

/* application_layer_protocol_negotiation: non-empty names, at least one. */
static int read_alpn(hs_cursor *ext, hs_found *f)
{
    hs_cursor list, scan, name;

    if (!cur_vec(ext, 2, &list) || ext->left != 0 || list.left == 0) {
        return 0;
    }
    scan = list;
    while (scan.left > 0) {
        if (!cur_vec(&scan, 1, &name) || name.left == 0) {
            return 0;
        }
    }
    f->alpn = list;
    f->has_alpn = 1;
    return 1;
}

/* Records a type in the 65536-bit set; 0 if it was there already. */
static int first_sighting(unsigned char *seen, unsigned int type)
{
    unsigned char bit = (unsigned char)(1u << (type & 7));

    if (seen[type >> 3] & bit) {
        return 0;
    }
    seen[type >> 3] |= bit;
    return 1;
}

static int read_extensions(hs_cursor *c, hs_found *f)
{
    unsigned char seen[65536 / 8];
    hs_cursor all, ext;
    unsigned int type;
    int after_psk = 0;

    if (!cur_vec(c, 2, &all) || c->left != 0) {
        return 0;
    }
    memset(seen, 0, sizeof(seen));
    while (all.left > 0) {
        if (after_psk || !cur_u16(&all, &type) || !cur_vec(&all, 2, &ext)
            || !first_sighting(seen, type)) {
            return 0;
        }
        if (type == CT_EXT_SERVER_NAME && !read_sni(&ext, f)) {
            return 0;
        }
        if (type == CT_EXT_ALPN && !read_alpn(&ext, f)) {
            return 0;
        }
        f->ech |= type == CT_EXT_ECH;
        after_psk = type == CT_EXT_PSK;
    }
    return 1;
}

/* The ClientHello body up to the extensions (RFC 8446 4.1.2). */
static int read_hello(hs_cursor *c, unsigned int *version, hs_found *f)
{
    hs_cursor v;

    if (!cur_u16(c, version) || (*version >> 8) != 3
        || !cur_skip(c, 32)
        || !cur_vec(c, 1, &v) || v.left > 32
        || !cur_vec(c, 2, &v) || v.left == 0 || (v.left & 1)
        || !cur_vec(c, 1, &v) || v.left == 0) {
        return 0;
    }
    /* Before TLS 1.3 a hello may end here, without extensions. */
    return c->left == 0 || read_extensions(c, f);
}

static char *copy_sni(apr_pool_t *p, hs_cursor c)
{
    char *s = apr_palloc(p, c.left + 1);
    apr_size_t i = 0;
    unsigned int b;

    while (cur_u8(&c, &b)) {
        s[i++] = (char)b;
    }
    s[i] = '\0';
    return s;
}

static int alpn_plain(unsigned int b)
{
    return b > 0x20 && b < 0x7f && b != ',' && b != '%';
}

/* Joins the names with ","; at most 3 bytes out per byte in. */
static char *join_alpn(apr_pool_t *p, hs_cursor c)
{
    static const char hex[] = "0123456789ABCDEF";
    char *s = apr_palloc(p, c.left * 3 + 1);
    apr_size_t i = 0;
    hs_cursor name;
    unsigned int b;

    while (cur_vec(&c, 1, &name)) {
        if (i > 0) {
            s[i++] = ',';
        }
        while (cur_u8(&name, &b)) {
            if (alpn_plain(b)) {
                s[i++] = (char)b;
                continue;
            }
            s[i++] = '%';
            s[i++] = hex[b >> 4];
            s[i++] = hex[b & 15];
        }
    }
    s[i] = '\0';
    return s;
}

ct_hello_status ct_tls_hello_parse(apr_pool_t *p, const unsigned char *buf,
                                   apr_size_t len, apr_size_t limit,
                                   ct_hello_info *info)
{
    hs_span span;
    hs_cursor c;
    hs_found f;
    unsigned int version;
    ct_hello_status st = walk_records(buf, len, limit, &span);

    if (st != CT_HELLO_DONE) {
        return st;
    }
    memset(&f, 0, sizeof(f));
    c.buf = buf;
    c.pos = 0;
    c.rec_left = 0;
    c.left = CT_HS_HEADER + span.hs_len;
    if (!cur_skip(&c, CT_HS_HEADER) || !read_hello(&c, &version, &f)) {
        return CT_HELLO_MALFORMED;
    }
    info->sni = f.has_sni ? copy_sni(p, f.sni) : NULL;
    info->alpn = f.has_alpn ? join_alpn(p, f.alpn) : NULL;
    info->ech = f.ech;
    info->record_version = span.record_version;
    info->hello_version = version;
    info->consumed = span.consumed;
    return CT_HELLO_DONE;
}

const char *ct_tls_hello_status_str(ct_hello_status st)
{
    switch (st) {
    case CT_HELLO_DONE:
        return "client hello read";
    case CT_HELLO_NEED_MORE:
        return "client hello incomplete";
    case CT_HELLO_NOT_TLS:
        return "not TLS";
    case CT_HELLO_MALFORMED:
        return "malformed client hello";
    case CT_HELLO_TOO_BIG:
        return "client hello too big";
    }
    return "unknown client hello status";
}
