/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * unit_tests.c: table-driven tests of the APR-only parsers (the CONNECT
 * target and AllowCONNECT ranges), the client keys and the per-client
 * table, the rate limiter and the table of rate limiters, run without a
 * server by `make check`.  The TLS ClientHello reader has its own file,
 * hello_tests.c.
 */

#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <arpa/inet.h>

#include "apr_strings.h"
#include "apr_general.h"
#include "apr_pools.h"
#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_thread_proc.h"

#include "ct_target.h"
#include "ct_policy.h"
#include "ct_hop.h"
#include "ct_clients.h"
#include "ct_head.h"
#include "ct_bucket.h"
#include "ct_rates.h"
#include "unit.h"
#include "ct_bw.h"

static int passed, failed;

void expect(int ok, const char *what, const char *input)
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

/* A list of n loopback addresses, ports 1..n. */
static apr_sockaddr_t *address_list(apr_pool_t *p, int n)
{
    apr_sockaddr_t *head = NULL, **tail = &head;
    int i;

    for (i = 1; i <= n; i++) {
        if (apr_sockaddr_info_get(tail, "127.0.0.1", APR_INET,
                                  (apr_port_t)i, 0, p) != APR_SUCCESS) {
            break;
        }
        tail = &(*tail)->next;
    }
    return head;
}

static int list_length(const apr_sockaddr_t *sa)
{
    int n = 0;

    for (; sa != NULL; sa = sa->next) {
        n++;
    }
    return n;
}

static void test_address_cap(apr_pool_t *p)
{
    static const struct {
        int have, max, keep, dropped;
        const char *why;
    } cases[] = {
        { 1, CT_MAX_ADDRESSES, 1, 0, "one address" },
        { 16, CT_MAX_ADDRESSES, 16, 0, "exactly the cap" },
        { 17, CT_MAX_ADDRESSES, 16, 1, "one over the cap" },
        { 200, CT_MAX_ADDRESSES, 16, 184, "hundreds" },
        { 3, 1, 1, 2, "cap of one" },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        apr_sockaddr_t *list = address_list(p, cases[i].have);
        int dropped = ct_hop_cap_addresses(list, cases[i].max);

        expect(dropped == cases[i].dropped, "cap: dropped", cases[i].why);
        expect(list_length(list) == cases[i].keep, "cap: kept",
               cases[i].why);
        expect(list->port == 1, "cap: the first address stays first",
               cases[i].why);
    }
    expect(ct_hop_cap_addresses(NULL, 16) == 0, "cap: empty list", "");
}

/* Addresses from a string: '6' an IPv6, '4' an IPv4 one; ports 1..n. */
static apr_sockaddr_t *family_list(apr_pool_t *p, const char *fams)
{
    apr_sockaddr_t *head = NULL, **tail = &head;
    int i;

    for (i = 0; fams[i]; i++) {
        if (apr_sockaddr_info_get(tail, fams[i] == '6' ? "::1"
                                                       : "127.0.0.1",
                                  fams[i] == '6' ? APR_INET6 : APR_INET,
                                  (apr_port_t)(i + 1), 0, p)
            != APR_SUCCESS) {
            break;
        }
        tail = &(*tail)->next;
    }
    return head;
}

/* The list as family letters and ports: "6:1 4:2". */
static const char *family_text(apr_pool_t *p, const apr_sockaddr_t *sa)
{
    const char *out = "";

    for (; sa != NULL; sa = sa->next) {
        out = apr_psprintf(p, "%s%s%c:%hu", out, *out ? " " : "",
                           sa->family == APR_INET6 ? '6' : '4', sa->port);
    }
    return out;
}

static void test_interleave(apr_pool_t *p)
{
    static const struct {
        const char *have, *want, *why;
    } cases[] = {
        { "64", "6:1 4:2", "already in turn" },
        { "4466", "6:3 4:1 6:4 4:2", "IPv6 goes first, then turns" },
        { "44446", "6:5 4:1 4:2 4:3 4:4", "one IPv6 among IPv4" },
        { "6664", "6:1 4:4 6:2 6:3", "one IPv4 among IPv6" },
        { "444", "4:1 4:2 4:3", "IPv4 only: resolver order" },
        { "66", "6:1 6:2", "IPv6 only: resolver order" },
        { "4", "4:1", "one address" },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        apr_sockaddr_t *list = family_list(p, cases[i].have);

        ct_hop_interleave(&list);
        expect(strcmp(family_text(p, list), cases[i].want) == 0,
               "interleave", cases[i].why);
    }
    {
        apr_sockaddr_t *none = NULL;

        ct_hop_interleave(&none);
        expect(none == NULL, "interleave: empty list", "");
    }
}

static void test_step_timeout(void)
{
    apr_time_t now = apr_time_from_sec(1000);

    expect(ct_hop_step_timeout(apr_time_from_sec(2), now
                               + apr_time_from_sec(10), now)
           == apr_time_from_sec(2), "step: its own limit", "10 s left");
    expect(ct_hop_step_timeout(apr_time_from_sec(2), now
                               + apr_time_from_msec(500), now)
           == apr_time_from_msec(500), "step: what is left", "0.5 s left");
    expect(ct_hop_step_timeout(apr_time_from_sec(2), now, now) == 0,
           "step: deadline now", "0 left");
    expect(ct_hop_step_timeout(apr_time_from_sec(2), now - 1, now) == 0,
           "step: deadline passed", "-1 left");
}

static void test_via(apr_pool_t *p)
{
    static const struct {
        const char *via;
        int want;
        const char *why;
    } cases[] = {
        { "1.1 px-3128-00ff", 1, "ours alone" },
        { "1.0 a, 1.1 px-3128-00ff", 1, "ours last" },
        { "1.1 PX-3128-00FF (mod_connect_tunnel)", 1, "any case, comment" },
        { "HTTP/1.1 px-3128-00ff", 1, "protocol with a name" },
        { "1.1 a (x, 1.1 px-3128-00ff), 1.1 b", 0, "inside a comment" },
        { "1.1 a (x \\) 1.1 px-3128-00ff), 1.1 b", 0,
          "quoted pair in a comment" },
        { "1.1 px-3128-00ff0", 0, "longer token" },
        { "1.1 px-3128-00f", 0, "shorter token" },
        { "1.1 px, 1.1 px:3128", 0, "same name, no token" },
        { "1.1 px-3128-00ff:80", 0, "with a port" },
        { "", 0, "empty" },
        { ",,, ,", 0, "only commas" },
        { "1.1 a (unclosed, 1.1 px-3128-00ff", 0, "unclosed comment" },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect(ct_hop_via_has(cases[i].via, "px-3128-00ff") == cases[i].want,
               "via", cases[i].why);
    }
    expect(!ct_hop_via_has("1.1 x", ""), "via: empty name", "");
    expect(strcmp(ct_hop_pseudonym(p, "px.example", 3128, "ab"),
                  "px.example-3128-ab") == 0, "pseudonym", "name");
    expect(strcmp(ct_hop_pseudonym(p, "[::1]", 80, "ab"),
                  "---1--80-ab") == 0, "pseudonym", "address as name");
    expect(strcmp(ct_hop_pseudonym(p, NULL, 80, "ab"), "httpd-80-ab") == 0,
           "pseudonym", "no name");
}

static void test_loop_head(void)
{
    static const struct {
        const char *head;
        int want;
        const char *why;
    } cases[] = {
        { "HTTP/1.1 502 Bad Gateway\r\nProxy-Status: px; "
          "error=proxy_loop_detected\r\n", 1, "ours" },
        { "HTTP/1.1 502 x\r\nproxy-status: a, b; "
          "error=proxy_loop_detected\r\n", 1, "lower case, a list" },
        { "HTTP/1.1 502 x\r\nX-Note: error=proxy_loop_detected\r\n", 0,
          "another field" },
        { "HTTP/1.1 502 x\r\nProxy-Status: px; error=dns_error\r\n"
          "X: error=proxy_loop_detected\r\n", 0, "on the next line" },
        { "HTTP/1.1 502 x\r\n", 0, "none" },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect(ct_hop_head_reports_loop(cases[i].head) == cases[i].want,
               "loop head", cases[i].why);
    }
}

/* The key a client address is counted under, from its text. */
static ct_net key_of(const char *text, unsigned int v4, unsigned int v6)
{
    unsigned char raw[16];
    ct_net key;
    int is6 = strchr(text, ':') != NULL;

    memset(&key, 0, sizeof(key));
    memset(raw, 0, sizeof(raw));
    if (inet_pton(is6 ? AF_INET6 : AF_INET, text, raw) != 1) {
        key.bits = 999;     /* never equal to a real key */
        return key;
    }
    ct_client_key(is6 ? APR_INET6 : APR_INET, raw, v4, v6, &key);
    return key;
}

static int same_key(const ct_net *a, const ct_net *b)
{
    return a->family == b->family && a->bits == b->bits
           && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static const struct {
    const char *a, *b;
    unsigned int v4, v6;
    int same;
    const char *why;
} key_cases[] = {
    { "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", 32, 64, 1,
      "one /64 is one client" },
    { "2001:db8:1:2::1", "2001:db8:1:3::1", 32, 64, 0,
      "the next /64 is another" },
    { "2001:db8:1:2::1", "2001:db8:1:2::2", 32, 128, 0,
      "/128: each address its own" },
    { "2001:db8:1:2::1", "2001:db8:1:3::1", 32, 48, 1, "/48 groups /64s" },
    { "2001:db8:1:2::1", "2001:db8:1:2::1", 32, 64, 1, "same address" },
    { "192.0.2.7", "192.0.2.8", 32, 64, 0, "IPv4 /32 by default" },
    { "192.0.2.7", "192.0.2.200", 24, 64, 1, "IPv4 /24 groups" },
    { "192.0.2.7", "192.0.3.7", 24, 64, 0, "the next /24 is another" },
    { "::ffff:192.0.2.7", "192.0.2.7", 32, 64, 1,
      "v4-mapped is the IPv4 client" },
    { "::ffff:192.0.2.7", "192.0.2.9", 24, 64, 1,
      "v4-mapped takes the IPv4 prefix" },
    { "::ffff:192.0.2.7", "::ffff:192.0.3.7", 24, 128, 0,
      "v4-mapped is not grouped by the IPv6 prefix" },
    { "0.0.0.1", "::1", 32, 0, 0, "families never share a key" },
    { "10.1.2.3", "10.200.0.1", 0, 64, 1, "/0: all IPv4 one client" },
    { "2001:db8::1", "2001:db8::1", 32, 200, 1, "too long a prefix: /128" },
};

static void test_client_keys(void)
{
    unsigned int i;

    for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        ct_net a = key_of(key_cases[i].a, key_cases[i].v4, key_cases[i].v6);
        ct_net b = key_of(key_cases[i].b, key_cases[i].v4, key_cases[i].v6);

        expect(same_key(&a, &b) == key_cases[i].same, key_cases[i].why,
               key_cases[i].a);
    }
}

/* Key number n: distinct IPv6 /64s. */
static ct_net nth_key(apr_uint32_t n)
{
    ct_net key;

    memset(&key, 0, sizeof(key));
    key.family = APR_INET6;
    key.bits = 64;
    key.addr[0] = 0x20;
    key.addr[1] = 0x01;
    memcpy(key.addr + 4, &n, sizeof(n));
    return key;
}

/*
 * 100,000 clients come and go (at most WINDOW at once): the table never
 * fills, and lookups stay short however many came before, since freed
 * entries leave nothing behind.
 */
#define CT_TEST_CLIENTS 100000
#define CT_TEST_WINDOW 4000

static void test_client_churn(ct_client_table *t)
{
    apr_uint32_t n, fails = 0;
    unsigned int probes, most = 0;
    unsigned long total = 0, lookups = 0;

    ct_clients_init(t, APR_UINT64_C(0x0123456789abcdef));
    for (n = 0; n < CT_TEST_CLIENTS; n++) {
        ct_net key = nth_key(n);

        fails += ct_clients_take(t, &key, n % 7) != APR_SUCCESS;
        probes = ct_clients_probes(t, &key, CT_OWNER_ALL);
        most = probes > most ? probes : most;
        total += probes;
        lookups++;
        if (n >= CT_TEST_WINDOW) {
            key = nth_key(n - CT_TEST_WINDOW);
            ct_clients_give(t, &key, (n - CT_TEST_WINDOW) % 7);
        }
    }
    printf("client table: %u distinct clients, longest probe %u, "
           "mean %.2f\n", CT_TEST_CLIENTS, most,
           (double)total / (double)lookups);
    expect(fails == 0, "100,000 clients come and go: never full", "churn");
    expect(t->used == 2 * CT_TEST_WINDOW, "entries of the open window",
           "churn");
    expect(most <= 32, "lookups stay short", "churn");
    for (n = CT_TEST_CLIENTS - CT_TEST_WINDOW; n < CT_TEST_CLIENTS; n++) {
        ct_net key = nth_key(n);

        ct_clients_give(t, &key, n % 7);
    }
    expect(t->used == 0, "all entries freed", "churn");
}

/* Filled to its limit, a full table refuses, and frees on give. */
static void test_client_full(ct_client_table *t)
{
    apr_uint32_t n, took = 0;
    unsigned int probes, most = 0;
    ct_net key;

    ct_clients_init(t, APR_UINT64_C(42));
    for (n = 0; n < CT_CLIENT_SLOTS; n++) {
        key = nth_key(n);
        if (ct_clients_take(t, &key, 1) != APR_SUCCESS) {
            break;
        }
        took++;
    }
    expect(took == CT_CLIENT_MAX_USED / 2, "full at its limit", "full");
    for (n = 0; n < took; n++) {
        key = nth_key(n);
        probes = ct_clients_probes(t, &key, 1);
        most = probes > most ? probes : most;
    }
    printf("client table full (%u entries): longest probe %u\n",
           t->used, most);
    expect(most < 1000, "full table: lookups bounded", "full");
    key = nth_key(0);
    ct_clients_give(t, &key, 1);
    key = nth_key(CT_CLIENT_SLOTS + 1);
    expect(ct_clients_take(t, &key, 1) == APR_SUCCESS, "room again",
           "full");
}

/* An owner's tunnels are taken off its clients' totals, others' stay. */
static void test_client_owners(ct_client_table *t)
{
    ct_net a = nth_key(1), b = nth_key(2);
    apr_uint32_t n;

    ct_clients_init(t, APR_UINT64_C(7));
    for (n = 0; n < 3; n++) {
        expect(ct_clients_take(t, &a, 2) == APR_SUCCESS, "take", "owners");
    }
    expect(ct_clients_take(t, &a, 3) == APR_SUCCESS, "take", "owners");
    expect(ct_clients_take(t, &b, 2) == APR_SUCCESS, "take", "owners");
    expect(ct_clients_count(t, &a) == 4, "a counts 4", "owners");
    expect(ct_clients_drop_owner(t, 2) == 4, "owner 2 held 4", "owners");
    expect(ct_clients_count(t, &a) == 1, "a keeps owner 3's", "owners");
    expect(ct_clients_count(t, &b) == 0, "b is gone", "owners");
    expect(t->used == 2, "only a's total and owner 3's part", "owners");
    ct_clients_give(t, &a, 3);
    expect(ct_clients_count(t, &a) == 0 && t->used == 0, "all freed",
           "owners");
}

/* Owners dropped from a crowded table leave every other count right. */
static void test_client_drop_crowded(ct_client_table *t)
{
    apr_uint32_t n, wrong = 0;

    ct_clients_init(t, APR_UINT64_C(99));
    for (n = 0; n < 6000; n++) {
        ct_net key = nth_key(n / 2);

        ct_clients_take(t, &key, n % 5);
    }
    ct_clients_drop_owner(t, 0);
    ct_clients_drop_owner(t, 3);
    for (n = 0; n < 3000; n++) {
        ct_net key = nth_key(n);
        apr_uint32_t want = ((2 * n) % 5 != 0 && (2 * n) % 5 != 3)
                            + ((2 * n + 1) % 5 != 0 && (2 * n + 1) % 5 != 3);

        wrong += ct_clients_count(t, &key) != want;
    }
    expect(wrong == 0, "counts right after dropping owners", "crowded");
}

static void test_clients(apr_pool_t *p)
{
    ct_client_table *t = apr_palloc(p, sizeof(*t));

    test_client_churn(t);
    test_client_full(t);
    test_client_owners(t);
    test_client_drop_crowded(t);
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

static const struct {
    const char *head;
    ct_head_state want;
    int hosts;
    const char *why;
} head_cases[] = {
    { "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", CT_HEAD_END, 1,
      "one Host" },
    { "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nHost: a:443\r\n\r\n",
      CT_HEAD_END, 2, "two Host, same value" },
    { "CONNECT a:443 HTTP/1.1\r\nhost: a\r\nX: 1\r\nHOST: b\r\n\r\n",
      CT_HEAD_END, 2, "Host in other cases" },
    { "CONNECT a:443 HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n"
      "Host:a\r\n\r\n", CT_HEAD_END, 1, "names that only contain host" },
    { "CONNECT a:443 HTTP/1.0\r\n\r\n", CT_HEAD_END, 0, "no Host" },
    { "\r\n\r\nCONNECT a:443 HTTP/1.1\nHost: a\nHost: a\n\n",
      CT_HEAD_END, 2, "blank lines first, bare LF" },
    { "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\nHost: b\r\n\r\n",
      CT_HEAD_END, 1, "nothing after the head is looked at" },
    { "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", CT_HEAD_OTHER, 0,
      "not a CONNECT" },
    { "connect a:443 HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
      CT_HEAD_OTHER, 0, "method in lower case is not CONNECT" },
    { "CONNECTX a:443 HTTP/1.1\r\nHost: a\r\n\r\n", CT_HEAD_OTHER, 0,
      "longer method" },
    { "PUT\r\nHost: a\r\nHost: a\r\n\r\n", CT_HEAD_OTHER, 0,
      "short request line" },
    { "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n", CT_HEAD_FIELDS, 1,
      "head not ended yet" },
};

/* Feed a head in pieces of at most step bytes, from offset split on. */
static void feed_head(ct_head *h, const char *text, apr_size_t split,
                      apr_size_t step)
{
    apr_size_t len = strlen(text), at = 0, n;

    ct_head_init(h);
    if (split > 0 && split < len) {
        (void)ct_head_feed(h, text, split);
        at = split;
    }
    while (at < len) {
        n = len - at < step ? len - at : step;
        (void)ct_head_feed(h, text + at, n);
        at += n;
    }
}

/* Whole, split in two at every offset, and one byte at a time. */
static void test_head(void)
{
    apr_size_t i, split;
    ct_head h;

    for (i = 0; i < sizeof(head_cases) / sizeof(*head_cases); i++) {
        const char *text = head_cases[i].head;
        int good = 1;

        for (split = 0; split <= strlen(text); split++) {
            feed_head(&h, text, split, strlen(text));
            good &= h.state == head_cases[i].want
                    && h.hosts == head_cases[i].hosts;
        }
        feed_head(&h, text, 0, 1);
        good &= h.state == head_cases[i].want
                && h.hosts == head_cases[i].hosts;
        expect(good, "head watch", head_cases[i].why);
    }
}

/* The reference SipHash-2-4 vectors: key 00..0f, messages 00..(n-1). */
static void test_siphash(void)
{
    static const struct {
        apr_size_t len;
        apr_uint64_t want;
        const char *why;
    } cases[] = {
        { 0, APR_UINT64_C(0x726fdb47dd0e0e31), "empty" },
        { 8, APR_UINT64_C(0x93f5f5799a932462), "one word" },
        { 15, APR_UINT64_C(0xa129ca6149be45e5), "a word and 7 bytes" },
    };
    unsigned char key[16], msg[16];
    apr_uint64_t k0 = 0, k1 = 0;
    apr_size_t i;

    for (i = 0; i < 16; i++) {
        key[i] = msg[i] = (unsigned char)i;
    }
    for (i = 8; i-- > 0;) {
        k0 = (k0 << 8) | key[i];
        k1 = (k1 << 8) | key[i + 8];
    }
    for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        expect(ct_siphash(k0, k1, msg, cases[i].len) == cases[i].want,
               "siphash reference vector", cases[i].why);
    }
}

/* One limiter: the burst at once, then one per 1/rate s; giving back. */
static void test_bucket(void)
{
    ct_bucket_conf c = { 10, 5 };
    apr_uint64_t now = APR_UINT64_C(1000000000000), tat = 0;
    volatile apr_uint64_t word = 0;
    int i, got = 0;

    for (i = 0; i < 8; i++) {
        got += (int)ct_bucket_take(&c, &tat, now, 1, 1);
    }
    expect(got == 5, "bucket: the burst and no more at once", "10/s 5");
    expect(ct_bucket_wait(&c, tat, now, 1) == 100000,
           "bucket: the next in 1/rate s", "10/s 5");
    expect(ct_bucket_take(&c, &tat, now + 99999, 1, 1) == 0,
           "bucket: not before", "10/s 5");
    expect(ct_bucket_take(&c, &tat, now + 100000, 1, 1) == 1,
           "bucket: one after 1/rate s", "10/s 5");
    for (i = 0, got = 0; i < 8; i++) {
        got += (int)ct_bucket_take_shared(&c, &word, now, 1, 1);
    }
    expect(got == 5, "bucket shared: the burst", "10/s 5");
    ct_bucket_give_shared(&c, &word, 1);
    expect(ct_bucket_take_shared(&c, &word, now, 1, 1) == 1,
           "bucket shared: a unit given back is taken again", "10/s 5");
    expect(ct_bucket_take_shared(&c, &word, now, 1, 1) == 0,
           "bucket shared: and then no more", "10/s 5");
    word = 50;
    ct_bucket_give_shared(&c, &word, 1);
    expect(word == 0, "bucket shared: giving back stops at 0", "50");
}

/* Keys of the same window: k + i * CT_RATE_SLOTS share a home slot. */
static apr_uint64_t window_key(int i)
{
    return APR_UINT64_C(0x1234) + (apr_uint64_t)i * CT_RATE_SLOTS;
}

static void test_rates(apr_pool_t *p)
{
    ct_rate_table *t = apr_palloc(p, sizeof(*t));
    ct_bucket_conf c = { 2, 3 };
    unsigned char secret[16] = { 1, 2, 3 };
    apr_uint64_t now = APR_UINT64_C(1000000000000), wait = 0, a, b;
    int i, got;

    ct_rate_init(t, secret);
    a = ct_rate_key(t, "a.example", 9);
    b = ct_rate_key(t, "b.example", 9);
    expect(a != b && a != 0 && a == ct_rate_key(t, "a.example", 9),
           "rate keys: stable, distinct, never 0", "a/b.example");
    for (i = 0, got = 0; i < 5; i++) {
        got += ct_rate_take(t, a, &c, now, &wait);
    }
    expect(got == 3 && wait == 500000, "rates: the burst, then 1/rate s",
           "2/s 3");
    expect(ct_rate_take(t, b, &c, now, &wait) == 1,
           "rates: another key has its own budget", "b.example");
    expect(ct_rate_take(t, a, &c, now + 500000, &wait) == 1
           && ct_rate_take(t, a, &c, now + 500000, &wait) == 0,
           "rates: one more after 1/rate s", "2/s 3");
    ct_rate_give(t, a, &c);
    expect(ct_rate_take(t, a, &c, now + 500000, &wait) == 1,
           "rates: a unit given back", "2/s 3");

    /* A full window: the limiter nearest to full is forgotten. */
    ct_rate_init(t, secret);
    for (i = 0; i < CT_RATE_PROBES; i++) {
        ct_rate_take(t, window_key(i), &c, now + (apr_uint64_t)i, &wait);
    }
    expect(ct_rate_take(t, window_key(CT_RATE_PROBES), &c, now + 10,
                        &wait) == 1 && t->evicted == 1,
           "rates: a full window forgets one limiter", "8 + 1 keys");
    for (i = 0, got = 0; i < 4; i++) {
        got += ct_rate_take(t, window_key(1), &c, now + 10, &wait);
    }
    expect(got == 2, "rates: the others kept theirs", "key 1");
    for (i = 0, got = 0; i < 4; i++) {
        got += ct_rate_take(t, window_key(0), &c, now + 10, &wait);
    }
    expect(got == 3, "rates: the one nearest to full was forgotten",
           "key 0");

    /* Limiters that are full again free their slots for other keys. */
    now += 10 * APR_USEC_PER_SEC;
    for (i = 0, got = 0; i < CT_RATE_PROBES; i++) {
        got += ct_rate_take(t, window_key(100 + i), &c, now, &wait);
    }
    expect(got == CT_RATE_PROBES && t->evicted == 2,
           "rates: full limiters' slots serve new keys", "8 new keys");
}

/* Destination hosts in the client table: their own keys. */
static void test_host_keys(apr_pool_t *p)
{
    ct_client_table *t = apr_palloc(p, sizeof(*t));
    ct_net h1, h2, h1b, c;
    unsigned char raw[4] = { 0, 0, 0, 0 };

    ct_clients_init(t, APR_UINT64_C(42));
    ct_clients_host_key(t, "a.example", &h1);
    ct_clients_host_key(t, "a.example", &h1b);
    ct_clients_host_key(t, "b.example", &h2);
    ct_client_key(APR_INET, raw, 0, 0, &c);
    expect(ct_net_equal(&h1, &h1b) && !ct_net_equal(&h1, &h2)
           && memcmp(&h1, &h1b, sizeof(h1)) == 0
           && h1.family == APR_UNSPEC && !ct_net_equal(&h1, &c),
           "host keys: stable, distinct, apart from clients", "a/b");
    ct_clients_take(t, &h1, 1);
    ct_clients_take(t, &h1, 2);
    ct_clients_take(t, &c, 1);
    expect(ct_clients_count(t, &h1) == 2 && ct_clients_count(t, &h2) == 0
           && ct_clients_count(t, &c) == 1,
           "host keys: counted apart", "a/b");
    expect(ct_clients_drop_owner(t, 1) == 2 && ct_clients_count(t, &h1) == 1
           && ct_clients_count(t, &c) == 0,
           "host keys: a dead owner's are taken off", "owner 1");
    ct_clients_give(t, &h1, 2);
    expect(ct_clients_count(t, &h1) == 0 && t->used == 0,
           "host keys: given back, freed", "owner 2");
}

/*
 * Processes taking from one limiter in shared memory at the same instant
 * get its burst between them, not a unit more: every take is one
 * compare-and-swap, and a lost race is retried on the new value.
 */
#define CT_RACERS 4
#define CT_RACE_TRIES 400000

typedef struct {
    ct_rate_table table;
    volatile apr_uint32_t ready;
    apr_uint32_t granted[CT_RACERS];
} ct_race;

static void race_child(ct_race *r, int i, apr_uint64_t key,
                       const ct_bucket_conf *c, apr_uint64_t now)
{
    apr_uint64_t wait;
    apr_time_t until = apr_time_now() + apr_time_from_sec(2);
    int n;

    /* All start together (or after 2 s at most), so that they overlap. */
    apr_atomic_inc32(&r->ready);
    while (apr_atomic_read32(&r->ready) < CT_RACERS
           && apr_time_now() < until) {
        continue;
    }
    for (n = 0; n < CT_RACE_TRIES; n++) {
        r->granted[i] += ct_rate_take(&r->table, key, c, now, &wait);
    }
}

static void test_rates_shared(apr_pool_t *p)
{
    ct_bucket_conf c = { 1, 600000 };
    unsigned char secret[16] = { 9 };
    apr_uint64_t now = APR_UINT64_C(1000000000000), key, wait;
    apr_proc_t procs[CT_RACERS];
    apr_uint32_t total = 1;
    apr_shm_t *shm;
    ct_race *r;
    int i, started = 0;

    if (apr_shm_create(&shm, sizeof(*r), NULL, p) != APR_SUCCESS) {
        expect(0, "rates shared: anonymous shared memory", "");
        return;
    }
    r = apr_shm_baseaddr_get(shm);
    memset(r, 0, sizeof(*r));
    ct_rate_init(&r->table, secret);
    key = ct_rate_key(&r->table, "race", 4);
    /* The key has its slot before the race: two processes meeting a new
     * key at once may each give it one (documented), which is not what
     * this tests. */
    (void)ct_rate_take(&r->table, key, &c, now, &wait);
    for (i = 0; i < CT_RACERS; i++) {
        apr_status_t rv = apr_proc_fork(&procs[i], p);

        if (rv == APR_INCHILD) {
            race_child(r, i, key, &c, now);
            _exit(0);
        }
        started += rv == APR_INPARENT;
    }
    for (i = 0; i < started; i++) {
        int code;
        apr_exit_why_e why;

        (void)apr_proc_wait(&procs[i], &code, &why, APR_WAIT);
        total += r->granted[i];
    }
    expect(started == CT_RACERS && total == c.burst,
           "rates shared: racing processes get the burst, no more",
           apr_psprintf(p, "%u granted", total));
    apr_shm_destroy(shm);
}

/* Rates and sizes a bandwidth directive takes, as a table. */
static const struct {
    const char *in;
    int zero_ok;
    int ok;
    apr_uint64_t want;
    const char *why;
} bw_parse_cases[] = {
    { "1000", 0, 1, 1000, "plain digits" },
    { "5M", 0, 1, 5000000, "M is 10^6" },
    { "5m", 0, 1, 5000000, "m is M" },
    { "64k", 0, 1, 64000, "k is 10^3" },
    { "2G", 0, 1, 2000000000, "G is 10^9" },
    { "0", 1, 1, 0, "0 where it means no limit" },
    { "0", 0, 0, 0, "0 refused for a burst" },
    { "", 1, 0, 0, "empty" },
    { "M", 1, 0, 0, "a unit alone" },
    { "1.5M", 1, 0, 0, "no fractions" },
    { "5MB", 1, 0, 0, "trailing bytes" },
    { "-1", 1, 0, 0, "negative" },
    { "2000G", 1, 0, 0, "above 1 TB/s" },
    { "99999999999999999999999", 1, 0, 0, "overflow" },
};

static void test_bw_parse(void)
{
    apr_size_t i;

    for (i = 0; i < sizeof(bw_parse_cases) / sizeof(*bw_parse_cases); i++) {
        apr_uint64_t v = 0;
        int ok = ct_bw_parse(bw_parse_cases[i].in, bw_parse_cases[i].zero_ok,
                             &v) == 0;

        expect(ok == bw_parse_cases[i].ok
               && (!ok || v == bw_parse_cases[i].want),
               bw_parse_cases[i].why, bw_parse_cases[i].in);
    }
    expect(ct_bw_default_burst(1000000) == 100000, "burst: a tenth",
           "1M");
    expect(ct_bw_default_burst(50000) == CT_BW_MIN_CHUNK,
           "burst: at least the chunk", "50k");
    expect(ct_bw_default_burst(1000) == 1000, "burst: the rate if less",
           "1k");
}

/* Simulated time: a direction at 1 MB/s moves 10 s worth, +- burst. */
static void test_bw_rate(void)
{
    ct_bw bw;
    apr_time_t now = apr_time_from_sec(1000);
    apr_time_t end = now + apr_time_from_sec(10);
    apr_uint64_t moved = 0;
    int reads = 0, waits = 0, bad_wait = 0;

    memset(&bw, 0, sizeof(bw));
    bw.slot = -1;
    bw.dir[CT_BW_DOWN].tunnel.rate = 1000000;
    bw.dir[CT_BW_DOWN].tunnel.burst = 100000;
    expect(ct_bw_allow(&bw, CT_BW_UP, now, 65536) == 65536,
           "bw: an unlimited direction moves all", "up");
    while (now < end) {
        apr_size_t n = ct_bw_allow(&bw, CT_BW_DOWN, now, 65536);

        if (n > 0) {
            ct_bw_charge(&bw, CT_BW_DOWN, now, n);
            moved += n;
            reads++;
            bad_wait |= n < CT_BW_MIN_CHUNK;
        }
        else {
            apr_time_t at = ct_bw_resume(&bw, CT_BW_DOWN, now);

            bad_wait |= at <= now;
            now = at;
            waits++;
        }
    }
    expect(moved >= 10000000 && moved <= 10000000 + 100000 + 65536,
           "bw: 10 s at 1 MB/s move 10 MB plus at most a burst and a read",
           "1M");
    expect(!bad_wait, "bw: no read below the chunk, no wait in the past",
           "1M");
    expect(waits < 2 * reads + 2, "bw: one wait per read at most",
           "1M");
}

/* Two tunnels of a client share its word; a third client is apart; an
 * entry left behind by a killed child is taken once it is stale. */
static void test_bw_clients(apr_pool_t *p)
{
    ct_bw_table *t = apr_pcalloc(p, sizeof(*t));
    apr_time_t now = apr_time_from_sec(1000);
    apr_uint64_t a, b, c;
    ct_bw bw;
    int i, j, k;

    t->seed = 12345;
    a = ct_bw_client_id(t, "client-a", 8);
    b = ct_bw_client_id(t, "client-b", 8);
    c = ct_bw_client_id(t, "client-c", 8);
    i = ct_bw_slot_join(t, a, now);
    j = ct_bw_slot_join(t, a, now);
    k = ct_bw_slot_join(t, b, now);
    expect(i >= 0 && i == j && ct_bw_slot_count(t, i) == 2,
           "bw table: one entry per client", "a twice");
    expect(k >= 0 && k != i, "bw table: clients apart", "b");
    ct_bw_slot_leave(t, i, a);
    ct_bw_slot_leave(t, i, a);
    expect(ct_bw_slot_count(t, i) == 0, "bw table: freed by its last",
           "a");
    for (j = 0; j < CT_BW_WINDOW; j++) {
        /* Fill a's window with other clients' entries (same home), each
         * with a tunnel and bytes moved just now. */
        i = (int)((a + (apr_uint64_t)j) & (CT_BW_SLOTS - 1));
        t->slots[i].word = (APR_UINT64_C(1) << 40) | 1;
        t->slots[i].tat[0] = (apr_uint64_t)now;
    }
    expect(ct_bw_slot_join(t, a, now) == -1,
           "bw table: a full window of active clients refuses", "a");
    /* What a child killed holding 3 tunnels leaves: counts nobody gives
     * back.  Once its client moved nothing for CT_BW_STALE, another
     * client may take the entry. */
    i = (int)(a & (CT_BW_SLOTS - 1));
    t->slots[i].word = (APR_UINT64_C(2) << 40) | 3;
    expect(ct_bw_slot_join(t, a, now + CT_BW_STALE / 2) == -1,
           "bw table: an entry quiet for less than the stale time is kept",
           "a");
    j = ct_bw_slot_join(t, a, now + CT_BW_STALE + 1);
    expect(j == i && ct_bw_slot_count(t, j) == 1
           && t->slots[j].tat[0] == 0,
           "bw table: a stale entry is taken, with a fresh budget", "a");
    ct_bw_slot_leave(t, j, c);
    expect(ct_bw_slot_count(t, j) == 1,
           "bw table: leaving an entry another client took changes nothing",
           "c");
    /* A quiet tunnel of the client whose entry was taken joins anew at
     * its next read. */
    memset(t, 0, sizeof(*t));
    t->seed = 12345;
    memset(&bw, 0, sizeof(bw));
    bw.dir[0].client.rate = 1000000;
    bw.dir[0].client.burst = 100000;
    ct_bw_attach(&bw, t, b, ct_bw_slot_join(t, b, now));
    k = bw.slot;
    t->slots[k].word = ((c >> 24) << 24) | 1;
    (void)ct_bw_allow(&bw, 0, now, 4096);
    expect(bw.slot >= 0 && bw.slot != k
           && bw.dir[0].ctat == &t->slots[bw.slot].tat[0]
           && ct_bw_slot_count(t, bw.slot) == 1,
           "bw: a tunnel whose entry was taken joins its client's anew",
           "b");
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
    test_address_cap(p);
    test_interleave(p);
    test_step_timeout();
    test_via(p);
    test_loop_head();
    test_client_keys();
    test_clients(p);
    test_siphash();
    test_bucket();
    test_rates(p);
    test_rates_shared(p);
    test_host_keys(p);

    test_canonical(p);
    test_net_equal();
    test_head();
    test_tls_hello(p);
    test_bw_parse();
    test_bw_rate();
    test_bw_clients(p);
    apr_pool_destroy(p);
    apr_terminate();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
