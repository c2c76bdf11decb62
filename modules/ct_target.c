/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_target.c: strict parsing of the CONNECT request-target.
 *
 * httpd's own parse (apr_uri_parse_hostinfo) wraps ports modulo 65536,
 * accepts signs and leading zeros, and lets the "this host" addresses
 * through; the resolver behind it also accepts inet_aton() spellings such
 * as "2130706433" or "0x7f.1".  Everything here is decided on the text
 * alone, before any DNS, so a refusal costs nothing and leaks nothing.
 */

#include <arpa/inet.h>

#include "apr_strings.h"
#include "apr_lib.h"

#include "ct_target.h"
#include "ct_policy.h"

/* Longest label of a host name (RFC 1035). */
#define CT_LABEL_MAX 63

/* Longest text inside IPv6 brackets that can be an address. */
#define CT_IPV6_TEXT_MAX 45

static ct_target_status scan_bytes(const char *text)
{
    const unsigned char *s;

    for (s = (const unsigned char *)text; *s; s++) {
        if (*s <= 0x20 || *s >= 0x7f) {
            return CT_TARGET_CONTROL;
        }
        if (*s == '@') {
            return CT_TARGET_USERINFO;
        }
        if (*s == '/' || *s == '?' || *s == '#') {
            return CT_TARGET_PATH;
        }
    }
    return CT_TARGET_OK;
}

static ct_target_status parse_port(const char *s, apr_port_t *port)
{
    apr_uint32_t value = 0;
    int digits = 0;

    if (*s == '\0') {
        return CT_TARGET_NO_PORT;
    }
    /* Plain decimal: no sign, no leading zero, at most five digits. */
    if (*s == '0') {
        return CT_TARGET_BAD_PORT;
    }
    for (; *s; s++) {
        if (!apr_isdigit(*s) || ++digits > 5) {
            return CT_TARGET_BAD_PORT;
        }
        value = value * 10 + (apr_uint32_t)(*s - '0');
    }
    if (value > 65535) {
        return CT_TARGET_BAD_PORT;
    }
    *port = (apr_port_t)value;
    return CT_TARGET_OK;
}

/* A canonical dotted quad: four decimal parts 0-255, no leading zeros. */
static int is_dotted_quad(const char *s, apr_size_t len, int *all_zero)
{
    apr_size_t i = 0;
    int part, parts = 0, nonzero = 0;

    while (parts < 4) {
        apr_size_t start = i;

        part = 0;
        while (i < len && apr_isdigit(s[i]) && i - start < 3) {
            part = part * 10 + (s[i] - '0');
            i++;
        }
        if (i == start || part > 255 || (s[start] == '0' && i - start > 1)) {
            return 0;
        }
        nonzero |= part;
        if (++parts < 4) {
            if (i >= len || s[i] != '.') {
                return 0;
            }
            i++;
        }
    }
    *all_zero = !nonzero;
    return i == len;
}

/*
 * A host name (letters, digits, '-', '_', dot-separated labels of 1-63
 * bytes, an optional final dot) or an IPv4 literal.  A name whose last
 * label starts with a digit is what resolvers read as a number, so it
 * must be a canonical dotted quad.
 */
static ct_target_status check_name(const char *s, apr_size_t len,
                                   ct_host_kind *kind)
{
    apr_size_t i, label = 0, last = 0;
    int all_zero;

    if (len > 0 && s[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > CT_TARGET_HOST_MAX) {
        return len == 0 ? CT_TARGET_EMPTY : CT_TARGET_BAD_HOST;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (label == 0) {
                return CT_TARGET_BAD_HOST;
            }
            label = 0;
            last = i + 1;
            continue;
        }
        if (!apr_isalnum(s[i]) && s[i] != '-' && s[i] != '_') {
            return CT_TARGET_BAD_HOST;
        }
        if (++label > CT_LABEL_MAX) {
            return CT_TARGET_BAD_HOST;
        }
    }
    if (label == 0) {
        return CT_TARGET_BAD_HOST;
    }
    if (!apr_isdigit(s[last])) {
        *kind = CT_HOST_NAME;
        return CT_TARGET_OK;
    }
    /* Numeric: the original text, final dot included, must be a quad. */
    if (s[len] == '.' || !is_dotted_quad(s, len, &all_zero)) {
        return CT_TARGET_BAD_HOST;
    }
    *kind = CT_HOST_IPV4;
    return all_zero ? CT_TARGET_UNSPECIFIED : CT_TARGET_OK;
}

static ct_target_status check_ipv6(const char *s, apr_size_t len)
{
    char text[CT_IPV6_TEXT_MAX + 1];
    unsigned char bin[16];
    int i, nonzero = 0;

    /* No zone ids: they name an interface of this host, not a target. */
    if (len == 0 || len > CT_IPV6_TEXT_MAX || memchr(s, '%', len)) {
        return CT_TARGET_BAD_HOST;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    if (inet_pton(AF_INET6, text, bin) != 1) {
        return CT_TARGET_BAD_HOST;
    }
    /* "::" and "::ffff:0.0.0.0" both mean "this host". */
    for (i = 0; i < 16; i++) {
        if (i < 10 || i > 11) {
            nonzero |= bin[i];
        }
    }
    if (!nonzero && bin[10] == bin[11] && (bin[10] == 0 || bin[10] == 0xff)) {
        return CT_TARGET_UNSPECIFIED;
    }
    return CT_TARGET_OK;
}

ct_target_status ct_target_parse(apr_pool_t *p, const char *text,
                                 ct_target *out)
{
    const char *host, *colon;
    apr_size_t host_len;
    ct_target_status st;

    if (text == NULL || *text == '\0') {
        return CT_TARGET_EMPTY;
    }
    if ((st = scan_bytes(text)) != CT_TARGET_OK) {
        return st;
    }
    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (close == NULL) {
            return CT_TARGET_BAD_HOST;
        }
        host = text + 1;
        colon = close + 1;
        if (*colon != ':') {
            return *colon ? CT_TARGET_BAD_HOST : CT_TARGET_NO_PORT;
        }
        host_len = (apr_size_t)(close - host);
        st = check_ipv6(host, host_len);
        out->kind = CT_HOST_IPV6;
    }
    else {
        host = text;
        colon = strrchr(text, ':');
        if (colon == NULL) {
            return CT_TARGET_NO_PORT;
        }
        if (colon == text) {
            return CT_TARGET_EMPTY;
        }
        if (memchr(text, ':', (apr_size_t)(colon - text))) {
            return CT_TARGET_BAD_HOST;
        }
        host_len = (apr_size_t)(colon - host);
        st = check_name(host, host_len, &out->kind);
    }
    if (st != CT_TARGET_OK) {
        return st;
    }
    if ((st = parse_port(colon + 1, &out->port)) != CT_TARGET_OK) {
        return st;
    }
    out->host = apr_pstrmemdup(p, host, host_len);
    return CT_TARGET_OK;
}

/* RFC 5952 section 4: the text form of a 16-byte IPv6 address. */
static char *ipv6_text(apr_pool_t *p, const unsigned char *b)
{
    char buf[8 * 5];
    char *s = buf;
    int i, run = 0, best = -1, best_len = 1;

    /* The longest run of zero groups (two at least), the first if tied. */
    for (i = 0; i < 8; i++) {
        run = (b[2 * i] | b[2 * i + 1]) ? 0 : run + 1;
        if (run > best_len) {
            best_len = run;
            best = i - run + 1;
        }
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            *s++ = ':';
            *s++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len) {
            *s++ = ':';
        }
        s += apr_snprintf(s, 5, "%x", (b[2 * i] << 8) | b[2 * i + 1]);
    }
    *s = '\0';
    return apr_pstrdup(p, buf);
}

static char *lower_name(apr_pool_t *p, const char *host)
{
    apr_size_t len = strlen(host);
    char *name, *s;

    if (len > 0 && host[len - 1] == '.') {
        len--;
    }
    name = apr_pstrmemdup(p, host, len);
    for (s = name; *s; s++) {
        *s = (char)apr_tolower(*s);
    }
    return name;
}

void ct_target_canonical(apr_pool_t *p, const ct_target *in,
                         ct_target *out)
{
    unsigned char raw[16];
    ct_net net;

    out->port = in->port;
    out->kind = in->kind;
    if (in->kind == CT_HOST_NAME) {
        out->host = lower_name(p, in->host);
        return;
    }
    if (in->kind == CT_HOST_IPV4) {
        /* The parser admits canonical dotted quads only. */
        out->host = in->host;
        return;
    }
    /* The parser accepted it, so it converts. */
    (void)inet_pton(AF_INET6, in->host, raw);
    ct_net_from_raw(APR_INET6, raw, &net);
    if (net.family == APR_INET) {
        out->kind = CT_HOST_IPV4;
        out->host = apr_psprintf(p, "%u.%u.%u.%u", net.addr[0],
                                 net.addr[1], net.addr[2], net.addr[3]);
        return;
    }
    out->host = ipv6_text(p, raw);
}

const char *ct_target_authority(apr_pool_t *p, const ct_target *t)
{
    if (t->kind == CT_HOST_IPV6) {
        return apr_psprintf(p, "[%s]:%hu", t->host, t->port);
    }
    return apr_psprintf(p, "%s:%hu", t->host, t->port);
}

const char *ct_target_reason(ct_target_status st)
{
    switch (st) {
    case CT_TARGET_OK:
        return "valid";
    case CT_TARGET_EMPTY:
        return "empty host";
    case CT_TARGET_CONTROL:
        return "control, space or non-ascii byte";
    case CT_TARGET_USERINFO:
        return "userinfo is not allowed";
    case CT_TARGET_PATH:
        return "not in authority form (path, query or scheme)";
    case CT_TARGET_NO_PORT:
        return "missing port";
    case CT_TARGET_BAD_PORT:
        return "port is not a decimal number from 1 to 65535";
    case CT_TARGET_BAD_HOST:
        return "not a host name, ipv4 or [ipv6] literal";
    case CT_TARGET_UNSPECIFIED:
        return "unspecified address (0.0.0.0 or [::])";
    }
    return "unknown";
}
