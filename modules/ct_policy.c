/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_policy.c: destination rules.  AllowCONNECT's port ranges are
 * validated here at startup (stock accepts "0", "70000" and inverted ranges
 * silently), so a bad value stops the server with a message that names it.
 */

#include <arpa/inet.h>

#include "apr_strings.h"
#include "apr_lib.h"

#include "ct_policy.h"

/* Named sets of networks a rule may use by name. */
static const struct {
    const char *name;
    const char *cidrs[5];
} ct_sets[] = {
    { "loopback", { "127.0.0.0/8", "::1/128" } },
    { "link-local", { "169.254.0.0/16", "fe80::/10" } },
    { "private", { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                   "fc00::/7" } },
    { "cgnat", { "100.64.0.0/10" } },
    { "multicast", { "224.0.0.0/4", "ff00::/8" } },
    { "unspecified", { "0.0.0.0/8", "::/128" } },
    /* Cloud instance metadata: AWS/GCP/Azure/OpenStack, AWS ECS and
     * IPv6 IMDS, Alibaba. */
    { "metadata", { "169.254.169.254/32", "169.254.170.2/32",
                    "fd00:ec2::254/128", "100.100.100.200/32" } }
};

/* What the built-in guard denies, in the order it names them. */
static const char *const ct_default_sets[] = {
    "loopback", "link-local", "metadata", "unspecified", "multicast"
};

/* The guard's networks, parsed once by ct_policy_init(). */
#define CT_DEFAULT_NETS_MAX 16
static ct_net ct_default_nets[CT_DEFAULT_NETS_MAX];
static const char *ct_default_names[CT_DEFAULT_NETS_MAX];
static int ct_ndefault;

/* Parse a port of 1-65535 written in plain decimal; 0 on error. */
static apr_port_t parse_port(const char *s, apr_size_t len)
{
    apr_uint32_t value = 0;
    apr_size_t i;

    if (len == 0 || len > 5 || s[0] == '0') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
        value = value * 10 + (apr_uint32_t)(s[i] - '0');
    }
    return value > 65535 ? 0 : (apr_port_t)value;
}

const char *ct_port_range_parse(apr_pool_t *p, const char *arg,
                                ct_port_range *out)
{
    const char *dash = strchr(arg, '-');

    if (strcasecmp(arg, "all") == 0) {
        out->first = 1;
        out->last = 65535;
        return NULL;
    }
    if (dash == NULL) {
        out->first = out->last = parse_port(arg, strlen(arg));
    }
    else {
        out->first = parse_port(arg, (apr_size_t)(dash - arg));
        out->last = parse_port(dash + 1, strlen(dash + 1));
    }
    if (out->first == 0 || out->last == 0) {
        return apr_psprintf(p, "'%s' is not a port or range of ports "
                            "from 1 to 65535 (or 'all')", arg);
    }
    if (out->first > out->last) {
        return apr_psprintf(p, "'%s' is an empty range: the first port "
                            "is above the last", arg);
    }
    return NULL;
}

int ct_ports_allow(const apr_array_header_t *ranges, apr_port_t port)
{
    const ct_port_range *list = (const ct_port_range *)ranges->elts;
    int i;

    for (i = 0; i < ranges->nelts; i++) {
        if (port >= list[i].first && port <= list[i].last) {
            return 1;
        }
    }
    return 0;
}

/* Zero the bits past the prefix so matching can compare bytes. */
static void mask_net(ct_net *net)
{
    unsigned int len = net->family == APR_INET ? 4 : 16;
    unsigned int i;

    for (i = 0; i < len; i++) {
        unsigned int keep = net->bits > i * 8 ? net->bits - i * 8 : 0;

        if (keep < 8) {
            net->addr[i] &= (unsigned char)(0xff00 >> keep);
        }
    }
}

void ct_net_from_raw(int family, const void *raw, ct_net *out)
{
    static const unsigned char mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };
    static const unsigned char nat64[12] = {
        0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0
    };
    /* RFC 8215's local-use prefix, 64:ff9b:1::/48: the IPv4 address is
     * read from the last 32 bits, where a /96 taken from it puts it. */
    static const unsigned char nat64_local[6] = {
        0, 0x64, 0xff, 0x9b, 0, 1
    };
    static const unsigned char zero[12] = { 0 };
    const unsigned char *b = raw;

    memset(out, 0, sizeof(*out));
    if (family == APR_INET6
        && (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0
            || memcmp(b, nat64_local, 6) == 0
            || (memcmp(b, zero, 12) == 0
                && (b[12] | b[13] | b[14] | (b[15] & 0xfe)) != 0))) {
        /* The IPv4 address inside is what such an address reaches. */
        out->family = APR_INET;
        memcpy(out->addr, b + 12, 4);
        out->bits = 32;
        return;
    }
    out->family = family;
    out->bits = family == APR_INET ? 32 : 128;
    memcpy(out->addr, b, family == APR_INET ? 4 : 16);
}

void ct_client_key(int family, const void *raw, unsigned int v4bits,
                   unsigned int v6bits, ct_net *out)
{
    ct_net_from_raw(family, raw, out);
    if (out->family == APR_INET) {
        out->bits = v4bits < 32 ? v4bits : 32;
    }
    else {
        out->bits = v6bits < 128 ? v6bits : 128;
    }
    mask_net(out);
}

static const char *parse_cidr(apr_pool_t *p, const char *arg, ct_net *out)
{
    const char *slash = strchr(arg, '/');
    char text[64];
    unsigned char raw[16];
    apr_size_t len = slash ? (apr_size_t)(slash - arg) : strlen(arg);
    unsigned int bits = 0, max;
    int family;

    if (len == 0 || len >= sizeof(text)) {
        return apr_psprintf(p, "'%s' is not an address or network", arg);
    }
    memcpy(text, arg, len);
    text[len] = '\0';
    family = strchr(text, ':') ? APR_INET6 : APR_INET;
    if (inet_pton(family == APR_INET ? AF_INET : AF_INET6, text, raw) != 1) {
        return apr_psprintf(p, "'%s' is not an address or network", arg);
    }
    max = family == APR_INET ? 32 : 128;
    bits = max;
    if (slash) {
        const char *s = slash + 1;

        if (!apr_isdigit(*s) || strlen(s) > 3 || (s[0] == '0' && s[1])) {
            return apr_psprintf(p, "'%s' has a bad prefix length", arg);
        }
        for (bits = 0; *s; s++) {
            if (!apr_isdigit(*s)) {
                return apr_psprintf(p, "'%s' has a bad prefix length", arg);
            }
            bits = bits * 10 + (unsigned int)(*s - '0');
        }
        if (bits > max) {
            return apr_psprintf(p, "'%s': a prefix of %u bits is longer "
                                "than the address", arg, bits);
        }
    }
    ct_net_from_raw(family, raw, out);
    if (out->family != family) {
        /* An IPv6 network of embedded IPv4 addresses is an IPv4 one. */
        if (bits < 96) {
            return apr_psprintf(p, "'%s' mixes IPv4-in-IPv6 and IPv6 "
                                "addresses", arg);
        }
        bits -= 96;
    }
    out->bits = bits;
    mask_net(out);
    return NULL;
}

static const ct_net *set_nets(apr_pool_t *p, const char *name, int *nnets)
{
    apr_size_t i;
    int n;

    for (i = 0; i < sizeof(ct_sets) / sizeof(*ct_sets); i++) {
        ct_net *nets;

        if (strcasecmp(name, ct_sets[i].name) != 0) {
            continue;
        }
        for (n = 0; n < 5 && ct_sets[i].cidrs[n]; n++) {
            continue;
        }
        nets = apr_pcalloc(p, sizeof(*nets) * (apr_size_t)n);
        for (*nnets = 0; *nnets < n; (*nnets)++) {
            /* The built-in table is known to parse. */
            (void)parse_cidr(p, ct_sets[i].cidrs[*nnets], &nets[*nnets]);
        }
        return nets;
    }
    return NULL;
}

/* Host names as the target parser admits them, compared in lower case. */
static const char *parse_name(apr_pool_t *p, const char *arg, ct_rule *out)
{
    const char *s = arg;
    char *name;
    apr_size_t len;

    out->kind = CT_RULE_HOST;
    if (s[0] == '*' && s[1] == '.') {
        out->kind = CT_RULE_DOMAIN;
        s += 2;
    }
    len = strlen(s);
    if (len > 0 && s[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > 253) {
        return apr_psprintf(p, "'%s' is not a host name, *.domain, "
                            "address, network or set", arg);
    }
    name = apr_pstrmemdup(p, s, len);
    for (s = name; *s; s++) {
        if (!apr_isalnum(*s) && *s != '-' && *s != '_' && *s != '.') {
            return apr_psprintf(p, "'%s' is not a host name, *.domain, "
                                "address, network or set", arg);
        }
    }
    for (len = 0; name[len]; len++) {
        name[len] = (char)apr_tolower(name[len]);
    }
    out->name = name;
    return NULL;
}

const char *ct_rule_parse(apr_pool_t *p, ct_action action, const char *arg,
                          ct_rule *out)
{
    ct_net *net;
    const char *err;

    memset(out, 0, sizeof(*out));
    out->action = action;
    out->text = apr_pstrcat(p, action == CT_ALLOW ? "allow " : "deny ",
                            arg, NULL);
    if ((out->nets = set_nets(p, arg, &out->nnets)) != NULL) {
        out->kind = CT_RULE_NETS;
        return NULL;
    }
    if (strchr(arg, ':') || strchr(arg, '/')
        || (apr_isdigit(arg[0]) && !strpbrk(arg, "abcdefghijklmnopqrstuvwxyz"
                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "_-"))) {
        net = apr_pcalloc(p, sizeof(*net));
        if ((err = parse_cidr(p, arg, net)) != NULL) {
            return err;
        }
        out->kind = CT_RULE_NETS;
        out->nets = net;
        out->nnets = 1;
        return NULL;
    }
    return parse_name(p, arg, out);
}

int ct_net_equal(const ct_net *a, const ct_net *b)
{
    return a->family == b->family && a->bits == b->bits
           && memcmp(a->addr, b->addr, a->family == APR_INET ? 4 : 16) == 0;
}

int ct_net_match(const ct_net *net, const ct_net *addr)
{
    unsigned int full = net->bits / 8, rest = net->bits % 8;

    if (net->family != addr->family) {
        return 0;
    }
    if (memcmp(net->addr, addr->addr, full) != 0) {
        return 0;
    }
    return rest == 0
           || (net->addr[full] == (addr->addr[full]
                                   & (unsigned char)(0xff00 >> rest)));
}

static int name_match(const ct_rule *rule, const char *name)
{
    apr_size_t len, rlen;

    if (name == NULL) {
        return 0;
    }
    len = strlen(name);
    if (len > 0 && name[len - 1] == '.') {
        len--;
    }
    rlen = strlen(rule->name);
    if (rule->kind == CT_RULE_HOST) {
        return len == rlen && strncasecmp(name, rule->name, len) == 0;
    }
    /* "*.example.com": a name below example.com, not example.com itself. */
    return len > rlen + 1 && name[len - rlen - 1] == '.'
           && strncasecmp(name + len - rlen, rule->name, rlen) == 0;
}

ct_verdict ct_rules_check(const apr_array_header_t *rules, const char *name,
                          const ct_net *addr)
{
    const ct_rule *list = rules ? (const ct_rule *)rules->elts : NULL;
    ct_verdict v = { 0, NULL };
    int i, n, count = rules ? rules->nelts : 0;

    for (i = 0; i < count; i++) {
        const ct_rule *rule = &list[i];

        if (rule->kind != CT_RULE_NETS) {
            if (name_match(rule, name)) {
                v.action = rule->action;
                v.why = rule->text;
                return v;
            }
            continue;
        }
        if (addr == NULL) {
            return v;
        }
        for (n = 0; n < rule->nnets; n++) {
            if (ct_net_match(&rule->nets[n], addr)) {
                v.action = rule->action;
                v.why = rule->text;
                return v;
            }
        }
    }
    return v;
}

void ct_policy_init(apr_pool_t *p)
{
    apr_size_t i, s;
    int n;

    ct_ndefault = 0;
    for (i = 0; i < sizeof(ct_default_sets) / sizeof(*ct_default_sets);
         i++) {
        for (s = 0; s < sizeof(ct_sets) / sizeof(*ct_sets); s++) {
            if (strcmp(ct_sets[s].name, ct_default_sets[i]) != 0) {
                continue;
            }
            for (n = 0; n < 5 && ct_sets[s].cidrs[n]
                        && ct_ndefault < CT_DEFAULT_NETS_MAX; n++) {
                (void)parse_cidr(p, ct_sets[s].cidrs[n],
                                 &ct_default_nets[ct_ndefault]);
                ct_default_names[ct_ndefault++] = ct_default_sets[i];
            }
        }
    }
}

const char *ct_default_denies(const ct_net *addr,
                              const apr_array_header_t *local)
{
    int n;

    for (n = 0; n < ct_ndefault; n++) {
        if (ct_net_match(&ct_default_nets[n], addr)) {
            return ct_default_names[n];
        }
    }
    for (n = 0; local && n < local->nelts; n++) {
        if (ct_net_match(&((const ct_net *)local->elts)[n], addr)) {
            return "local address";
        }
    }
    return NULL;
}
