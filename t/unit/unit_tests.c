/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * unit_tests.c: table-driven tests of the APR-only parsers (the CONNECT
 * target and AllowCONNECT ranges), run without a server by `make check`.
 */

#include <stdio.h>
#include <string.h>

#include "apr_general.h"
#include "apr_pools.h"

#include "ct_target.h"
#include "ct_policy.h"

static int passed, failed;

static void expect(int ok, const char *what, const char *input)
{
    if (ok) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL: %s: '%s'\n", what, input);
}

static const struct {
    const char *text;
    ct_target_status want;
    const char *host;       /* expected host when OK */
    unsigned port;
    const char *why;
} target_cases[] = {
    { "example.com:443", CT_TARGET_OK, "example.com", 443, "name" },
    { "EXAMPLE.com.:443", CT_TARGET_OK, "EXAMPLE.com.", 443,
      "final dot and case kept" },
    { "a_b-c.example:1", CT_TARGET_OK, "a_b-c.example", 1, "port 1" },
    { "127.0.0.1:65535", CT_TARGET_OK, "127.0.0.1", 65535, "ipv4, max port" },
    { "[::1]:443", CT_TARGET_OK, "::1", 443, "ipv6 literal" },
    { "[::ffff:127.0.0.1]:443", CT_TARGET_OK, "::ffff:127.0.0.1", 443,
      "v4-mapped (policy decides)" },
    { "http:443", CT_TARGET_OK, "http", 443, "host named like a scheme" },
    { "", CT_TARGET_EMPTY, NULL, 0, "empty" },
    { ":443", CT_TARGET_EMPTY, NULL, 0, "no host" },
    { "example.com", CT_TARGET_NO_PORT, NULL, 0, "no port" },
    { "example.com:", CT_TARGET_NO_PORT, NULL, 0, "empty port" },
    { "[::1]", CT_TARGET_NO_PORT, NULL, 0, "ipv6 without port" },
    { "example.com:0", CT_TARGET_BAD_PORT, NULL, 0, "port 0" },
    { "example.com:65536", CT_TARGET_BAD_PORT, NULL, 0, "port 65536" },
    { "example.com:84537", CT_TARGET_BAD_PORT, NULL, 0, "wrapping port" },
    { "example.com:+443", CT_TARGET_BAD_PORT, NULL, 0, "signed port" },
    { "example.com:-443", CT_TARGET_BAD_PORT, NULL, 0, "negative port" },
    { "example.com:0443", CT_TARGET_BAD_PORT, NULL, 0, "leading zero" },
    { "example.com:443a", CT_TARGET_BAD_PORT, NULL, 0, "trailing junk" },
    { "example.com:4430000000", CT_TARGET_BAD_PORT, NULL, 0, "overflow" },
    { "user@example.com:443", CT_TARGET_USERINFO, NULL, 0, "userinfo" },
    { "https://example.com:443", CT_TARGET_PATH, NULL, 0, "absolute form" },
    { "example.com:443/x", CT_TARGET_PATH, NULL, 0, "path" },
    { "example.com:443?q", CT_TARGET_PATH, NULL, 0, "query" },
    { "exa mple.com:443", CT_TARGET_CONTROL, NULL, 0, "space" },
    { "exa\tmple.com:443", CT_TARGET_CONTROL, NULL, 0, "tab" },
    { "exa\x7fmple.com:443", CT_TARGET_CONTROL, NULL, 0, "DEL" },
    { "ex\xc3\xa4mple.com:443", CT_TARGET_CONTROL, NULL, 0, "non-ascii" },
    { "0.0.0.0:443", CT_TARGET_UNSPECIFIED, NULL, 0, "0.0.0.0" },
    { "[::]:443", CT_TARGET_UNSPECIFIED, NULL, 0, "[::]" },
    { "[0:0::0]:443", CT_TARGET_UNSPECIFIED, NULL, 0, "[::] spelled long" },
    { "[::ffff:0.0.0.0]:443", CT_TARGET_UNSPECIFIED, NULL, 0,
      "v4-mapped 0.0.0.0" },
    { "2130706433:443", CT_TARGET_BAD_HOST, NULL, 0, "decimal ipv4" },
    { "0x7f.1:443", CT_TARGET_BAD_HOST, NULL, 0, "hex ipv4" },
    { "0x7f000001:443", CT_TARGET_BAD_HOST, NULL, 0, "hex ipv4 word" },
    { "017700000001:443", CT_TARGET_BAD_HOST, NULL, 0, "octal ipv4" },
    { "0177.0.0.1:443", CT_TARGET_BAD_HOST, NULL, 0, "octal part" },
    { "127.1:443", CT_TARGET_BAD_HOST, NULL, 0, "short ipv4" },
    { "127.0.0.256:443", CT_TARGET_BAD_HOST, NULL, 0, "part over 255" },
    { "1.2.3.4.:443", CT_TARGET_BAD_HOST, NULL, 0, "ipv4 with final dot" },
    { "example.123:443", CT_TARGET_BAD_HOST, NULL, 0, "numeric tld" },
    { "a..b:443", CT_TARGET_BAD_HOST, NULL, 0, "empty label" },
    { ".a:443", CT_TARGET_BAD_HOST, NULL, 0, "leading dot" },
    { "a,b:443", CT_TARGET_BAD_HOST, NULL, 0, "comma" },
    { "a%41:443", CT_TARGET_BAD_HOST, NULL, 0, "percent" },
    { "::1:443", CT_TARGET_BAD_HOST, NULL, 0, "bare ipv6" },
    { "[::1]443", CT_TARGET_BAD_HOST, NULL, 0, "no colon after bracket" },
    { "[::1:443", CT_TARGET_BAD_HOST, NULL, 0, "unclosed bracket" },
    { "[fe80::1%eth0]:443", CT_TARGET_BAD_HOST, NULL, 0, "zone id" },
    { "[example.com]:443", CT_TARGET_BAD_HOST, NULL, 0, "name in brackets" },
    { "[]:443", CT_TARGET_BAD_HOST, NULL, 0, "empty brackets" },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      ".example:443", CT_TARGET_BAD_HOST, NULL, 0, "64-byte label" },
};

static void test_targets(apr_pool_t *p)
{
    size_t i;

    for (i = 0; i < sizeof(target_cases) / sizeof(*target_cases); i++) {
        ct_target t;
        ct_target_status st = ct_target_parse(p, target_cases[i].text, &t);
        int ok = st == target_cases[i].want;

        if (ok && st == CT_TARGET_OK) {
            ok = strcmp(t.host, target_cases[i].host) == 0
                 && t.port == target_cases[i].port;
        }
        expect(ok, target_cases[i].why, target_cases[i].text);
    }
}

static const struct {
    const char *arg;
    int valid;
    unsigned first, last;
    const char *why;
} range_cases[] = {
    { "443", 1, 443, 443, "single port" },
    { "1-65535", 1, 1, 65535, "full range" },
    { "all", 1, 1, 65535, "all" },
    { "ALL", 1, 1, 65535, "all, any case" },
    { "8000-8000", 1, 8000, 8000, "one-port range" },
    { "0", 0, 0, 0, "port 0" },
    { "70000", 0, 0, 0, "above 65535" },
    { "500-400", 0, 0, 0, "inverted" },
    { "443-", 0, 0, 0, "open range" },
    { "-443", 0, 0, 0, "missing first" },
    { "443,563", 0, 0, 0, "comma list" },
    { "+443", 0, 0, 0, "sign" },
    { "0443", 0, 0, 0, "leading zero" },
    { "", 0, 0, 0, "empty" },
};

static void test_ranges(apr_pool_t *p)
{
    size_t i;

    for (i = 0; i < sizeof(range_cases) / sizeof(*range_cases); i++) {
        ct_port_range r;
        const char *err = ct_port_range_parse(p, range_cases[i].arg, &r);
        int ok = (err == NULL) == range_cases[i].valid;

        if (ok && err == NULL) {
            ok = r.first == range_cases[i].first
                 && r.last == range_cases[i].last;
        }
        expect(ok, range_cases[i].why, range_cases[i].arg);
    }
}

static void test_ports_allow(apr_pool_t *p)
{
    apr_array_header_t *a = apr_array_make(p, 2, sizeof(ct_port_range));
    ct_port_range *r = apr_array_push(a);

    r->first = 8000;
    r->last = 8010;
    expect(ct_ports_allow(a, 8000), "range start included", "8000");
    expect(ct_ports_allow(a, 8010), "range end included", "8010");
    expect(!ct_ports_allow(a, 7999), "below range", "7999");
    expect(!ct_ports_allow(a, 8011), "above range", "8011");
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_targets(p);
    test_ranges(p);
    test_ports_allow(p);
    apr_pool_destroy(p);
    apr_terminate();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
