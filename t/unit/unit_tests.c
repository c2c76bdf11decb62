/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * unit_tests.c: table-driven tests of the APR-only parsers (the CONNECT
 * target and AllowCONNECT ranges), run without a server by `make check`.
 */

#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

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

/* An address as the rules see it, from its text. */
static ct_net addr_of(const char *text)
{
    unsigned char raw[16];
    ct_net net;
    int v6 = strchr(text, ':') != NULL;

    memset(&net, 0, sizeof(net));
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, raw) == 1) {
        ct_net_from_raw(v6 ? APR_INET6 : APR_INET, raw, &net);
    }
    return net;
}

static const struct {
    const char *addr;
    const char *denied_by;      /* NULL: the guard allows it */
} guard_cases[] = {
    { "127.0.0.1", "loopback" },
    { "127.255.255.254", "loopback" },
    { "::1", "loopback" },
    { "::ffff:127.0.0.1", "loopback" },
    { "::ffff:7f00:1", "loopback" },
    { "::127.0.0.1", "loopback" },
    { "64:ff9b::7f00:1", "loopback" },
    { "169.254.169.254", "link-local" },
    { "::ffff:169.254.169.254", "link-local" },
    { "fe80::1", "link-local" },
    { "febf::1", "link-local" },
    { "fd00:ec2::254", "metadata" },
    { "100.100.100.200", "metadata" },
    { "0.0.0.0", "unspecified" },
    { "0.1.2.3", "unspecified" },
    { "::", "unspecified" },
    { "224.0.0.1", "multicast" },
    { "239.255.255.250", "multicast" },
    { "ff02::1", "multicast" },
    { "10.1.2.3", NULL },
    { "192.168.1.1", NULL },
    { "100.64.0.1", NULL },
    { "fd12::1", NULL },
    { "93.184.216.34", NULL },
    { "2001:db8::1", NULL },
    { "fec0::1", NULL },
    { "128.0.0.1", NULL },
    { "::2", "unspecified" },
    { "64:ff9b:1::7f00:1", "loopback" },
    { "64:ff9b:1:abcd:1:2:a9fe:a9fe", "link-local" },
    { "64:ff9b:2::7f00:1", NULL },
};

static void test_guard(apr_pool_t *p)
{
    apr_array_header_t *local = apr_array_make(p, 1, sizeof(ct_net));
    size_t i;

    for (i = 0; i < sizeof(guard_cases) / sizeof(*guard_cases); i++) {
        ct_net a = addr_of(guard_cases[i].addr);
        const char *why = ct_default_denies(&a, NULL);
        int ok = guard_cases[i].denied_by
                 ? why && strcmp(why, guard_cases[i].denied_by) == 0
                 : why == NULL;

        expect(ok, "default guard", guard_cases[i].addr);
    }
    *(ct_net *)apr_array_push(local) = addr_of("192.0.2.7");
    {
        ct_net a = addr_of("192.0.2.7"), b = addr_of("192.0.2.8");
        const char *why = ct_default_denies(&a, local);

        expect(why && strcmp(why, "local address") == 0,
               "listen address denied", "192.0.2.7");
        expect(ct_default_denies(&b, local) == NULL,
               "neighbour of a listen address allowed", "192.0.2.8");
    }
}

static const struct {
    const char *arg;
    int valid;
    const char *why;
} rule_parse_cases[] = {
    { "loopback", 1, "named set" },
    { "Private", 1, "named set, any case" },
    { "metadata", 1, "metadata set" },
    { "10.0.0.0/8", 1, "ipv4 cidr" },
    { "10.1.2.3", 1, "ipv4 host" },
    { "fe80::/10", 1, "ipv6 cidr" },
    { "::ffff:10.0.0.0/104", 1, "mapped cidr becomes ipv4" },
    { "example.com", 1, "host name" },
    { "*.example.com", 1, "wildcard domain" },
    { "1.example", 1, "name starting with a digit" },
    { "10.0.0.0/33", 0, "prefix too long" },
    { "fe80::/129", 0, "ipv6 prefix too long" },
    { "10.0.0.0/", 0, "empty prefix" },
    { "10.0.0.0/08", 0, "prefix with leading zero" },
    { "10.0.0.256", 0, "bad ipv4" },
    { "::ffff:10.0.0.0/64", 0, "mapped and plain ipv6 mixed" },
    { "exa mple.com", 0, "space in name" },
    { "*.", 0, "empty wildcard" },
    { "", 0, "empty" },
    { "x/y", 0, "slash in name" },
};

static void test_rule_parse(apr_pool_t *p)
{
    size_t i;

    for (i = 0; i < sizeof(rule_parse_cases) / sizeof(*rule_parse_cases);
         i++) {
        ct_rule r;
        const char *err = ct_rule_parse(p, CT_DENY, rule_parse_cases[i].arg,
                                        &r);

        expect((err == NULL) == rule_parse_cases[i].valid,
               rule_parse_cases[i].why, rule_parse_cases[i].arg);
    }
}

static void add_rule(apr_pool_t *p, apr_array_header_t *rules,
                     ct_action action, const char *arg)
{
    if (ct_rule_parse(p, action, arg, apr_array_push(rules)) != NULL) {
        expect(0, "rule for the check tests parses", arg);
    }
}

static const struct {
    const char *name;           /* NULL: an IP literal target */
    const char *addr;           /* NULL: before DNS */
    int want;                   /* CT_ALLOW, CT_DENY or 0 (undecided) */
    const char *why;
} check_cases[] = {
    { "intranet.example.com", NULL, CT_ALLOW, "host rule before DNS" },
    { "INTRANET.example.com.", "10.0.0.1", CT_ALLOW,
      "host rule ignores case and final dot" },
    { "a.evil.example", NULL, CT_DENY, "wildcard denies before DNS" },
    { "evil.example", "10.9.9.9", CT_DENY, "first net rule: private" },
    { "evil.example", NULL, 0, "undecided before DNS at a net rule" },
    { "www.example.org", "10.1.1.1", CT_DENY, "private denied" },
    { "www.example.org", "192.168.7.7", CT_ALLOW,
      "earlier allow beats later deny" },
    { "www.example.org", "93.184.216.34", 0, "no rule decides" },
    { NULL, "::ffff:10.1.1.1", CT_DENY, "mapped private denied" },
    { "xintranet.example.com", "8.8.8.8", 0, "host rule is exact" },
};

static void test_rules_check(apr_pool_t *p)
{
    apr_array_header_t *rules = apr_array_make(p, 4, sizeof(ct_rule));
    size_t i;

    add_rule(p, rules, CT_ALLOW, "intranet.example.com");
    add_rule(p, rules, CT_DENY, "*.evil.example");
    add_rule(p, rules, CT_ALLOW, "192.168.7.0/24");
    add_rule(p, rules, CT_DENY, "private");
    add_rule(p, rules, CT_DENY, "evil.example");
    for (i = 0; i < sizeof(check_cases) / sizeof(*check_cases); i++) {
        ct_net a;
        ct_verdict v;

        if (check_cases[i].addr) {
            a = addr_of(check_cases[i].addr);
        }
        v = ct_rules_check(rules, check_cases[i].name,
                           check_cases[i].addr ? &a : NULL);
        expect((int)v.action == check_cases[i].want
               && (v.action == 0) == (v.why == NULL),
               check_cases[i].why, check_cases[i].name
                                   ? check_cases[i].name : "(literal)");
    }
}

static const struct {
    const char *text;
    const char *want;
    const char *why;
} canonical_cases[] = {
    { "example.com:443", "example.com:443", "already canonical" },
    { "LOCALHOST:443", "localhost:443", "name in lower case" },
    { "localhost.:443", "localhost:443", "final dot dropped" },
    { "Ex_A-1.Example.:8080", "ex_a-1.example:8080", "both" },
    { "127.0.0.2:443", "127.0.0.2:443", "ipv4 as it is" },
    { "[::ffff:127.0.0.2]:443", "127.0.0.2:443", "v4-mapped" },
    { "[::FFFF:7F00:2]:443", "127.0.0.2:443", "v4-mapped in hex" },
    { "[::127.0.0.2]:443", "127.0.0.2:443", "v4-compatible" },
    { "[64:ff9b::7f00:2]:443", "127.0.0.2:443", "nat64 well-known" },
    { "[64:FF9B:1:0:0:0:7f00:2]:1", "127.0.0.2:1", "nat64 local-use" },
    { "[::1]:443", "[::1]:443", "ipv6 loopback stays" },
    { "[::]:443", NULL, "unspecified refused by the parser" },
    { "[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443", "lower, ::" },
    { "[2001:0db8::0001]:443", "[2001:db8::1]:443", "no leading zeros" },
    { "[2001:db8:0:1:1:1:1:1]:443", "[2001:db8:0:1:1:1:1:1]:443",
      "one zero group is not shortened" },
    { "[2001:0:0:1:0:0:0:1]:443", "[2001:0:0:1::1]:443",
      "the longest run is shortened" },
    { "[2001:db8:0:0:1:0:0:1]:443", "[2001:db8::1:0:0:1]:443",
      "the first of equal runs" },
    { "[fe80:0:0:0:0:0:0:0]:443", "[fe80::]:443", "run at the end" },
    { "[0:0:0:0:0:1:0:2]:443", "[::1:0:2]:443", "run at the start" },
    { "[::2]:443", "0.0.0.2:443", "v4-compatible in hex" },
    { "[1:2:3:4:5:6:7:8]:443", "[1:2:3:4:5:6:7:8]:443", "no zero" },
    { "[FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
      "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "longest text" },
};

static void test_canonical(apr_pool_t *p)
{
    size_t i;

    for (i = 0; i < sizeof(canonical_cases) / sizeof(*canonical_cases);
         i++) {
        ct_target t, c;
        ct_target_status st = ct_target_parse(p, canonical_cases[i].text,
                                              &t);
        const char *got = NULL;
        int ok;

        if (st == CT_TARGET_OK) {
            ct_target_canonical(p, &t, &c);
            got = ct_target_authority(p, &c);
            /* The canonical form is a target the parser accepts and
             * that is its own canonical form. */
            ok = ct_target_parse(p, got, &t) == CT_TARGET_OK;
            ct_target_canonical(p, &t, &t);
            ok = ok && strcmp(ct_target_authority(p, &t), got) == 0;
            expect(ok, "canonical form is stable", got);
        }
        ok = canonical_cases[i].want
             ? got && strcmp(got, canonical_cases[i].want) == 0
             : got == NULL;
        expect(ok, canonical_cases[i].why, canonical_cases[i].text);
    }
}

static void test_net_equal(void)
{
    ct_net a = addr_of("127.0.0.2"), b = addr_of("64:ff9b::7f00:2");
    ct_net c = addr_of("64:ff9b:1::7f00:2"), d = addr_of("127.0.0.3");
    ct_net e = addr_of("::ffff:127.0.0.2"), f = addr_of("2001:db8::1");
    ct_net g = addr_of("2001:db8:0::1");

    expect(ct_net_equal(&a, &b), "nat64 equals its ipv4", "64:ff9b::");
    expect(ct_net_equal(&a, &c), "local nat64 equals its ipv4",
           "64:ff9b:1::");
    expect(ct_net_equal(&a, &e), "mapped equals its ipv4", "::ffff:");
    expect(!ct_net_equal(&a, &d), "another ipv4 differs", "127.0.0.3");
    expect(!ct_net_equal(&a, &f), "ipv6 differs from ipv4", "2001:db8::1");
    expect(ct_net_equal(&f, &g), "ipv6 spellings equal", "2001:db8::1");
}

int main(void)
{
    apr_pool_t *p;

    apr_initialize();
    apr_pool_create(&p, NULL);
    test_targets(p);
    test_ranges(p);
    test_ports_allow(p);
    ct_policy_init(p);
    test_guard(p);
    test_rule_parse(p);
    test_rules_check(p);
    test_canonical(p);
    test_net_equal();
    apr_pool_destroy(p);
    apr_terminate();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
