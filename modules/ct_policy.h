/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_policy.h: which destinations a tunnel may reach.  Rules are parsed
 * once at configuration time into the form the request path matches
 * against.  APR only, so unit tests and the fuzzer can use it directly.
 */

#ifndef CT_POLICY_H
#define CT_POLICY_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_network_io.h"

/* An inclusive range of destination ports, as AllowCONNECT lists them. */
typedef struct {
    apr_port_t first;
    apr_port_t last;
} ct_port_range;

/**
 * Parse one AllowCONNECT argument: "N", "N-M" (1 <= N <= M <= 65535) or
 * "all".
 * @return NULL on success, else an error message allocated from p
 */
const char *ct_port_range_parse(apr_pool_t *p, const char *arg,
                                ct_port_range *out);

/**
 * Whether port falls in any of the ranges (an array of ct_port_range).
 */
int ct_ports_allow(const apr_array_header_t *ranges, apr_port_t port);

/* An IPv4 or IPv6 network; IPv4 is kept as IPv4, never as mapped v6. */
typedef struct {
    int family;                 /* APR_INET or APR_INET6 */
    unsigned char addr[16];     /* network byte order, masked */
    unsigned int bits;          /* prefix length */
} ct_net;

typedef enum {
    CT_ALLOW = 1,
    CT_DENY = 2
} ct_action;

typedef enum {
    CT_RULE_HOST,               /* one host name */
    CT_RULE_DOMAIN,             /* "*.example.com": names below it */
    CT_RULE_NETS                /* a CIDR or a named set of networks */
} ct_rule_kind;

/* One destination rule, as ConnectTunnelAllow/Deny list them. */
typedef struct {
    ct_action action;
    ct_rule_kind kind;
    const char *name;           /* host or domain suffix, lower case */
    const ct_net *nets;
    int nnets;
    const char *text;           /* as written, for log lines */
} ct_rule;

/* What the rules say of a destination. */
typedef struct {
    ct_action action;           /* 0 when no rule decided */
    const char *why;            /* the deciding rule, for logs */
} ct_verdict;

/**
 * Parse one ConnectTunnelAllow/Deny item: a named set (loopback,
 * link-local, private, cgnat, multicast, unspecified, metadata), an
 * address or CIDR (IPv4 or IPv6), "*.domain" or a host name.
 * @return NULL on success, else an error message allocated from p
 */
const char *ct_rule_parse(apr_pool_t *p, ct_action action, const char *arg,
                          ct_rule *out);

/**
 * Reduce an address to the form rules match: IPv4-mapped, IPv4-compatible
 * and NAT64 (64:ff9b::/96, and RFC 8215's 64:ff9b:1::/48 read as a /96)
 * IPv6 addresses become the IPv4 they carry.
 * @param family APR_INET or APR_INET6
 * @param raw    4 or 16 bytes, network order
 * @param out    receives the normalised address
 */
void ct_net_from_raw(int family, const void *raw, ct_net *out);

/**
 * The key a client address is counted under: its network of v4bits
 * (IPv4, IPv4-mapped IPv6 included) or v6bits (IPv6) leading bits, so
 * that one holder of many addresses of a prefix is one client.
 */
void ct_client_key(int family, const void *raw, unsigned int v4bits,
                   unsigned int v6bits, ct_net *out);

/**
 * Whether two normalised addresses are the same address.
 */
int ct_net_equal(const ct_net *a, const ct_net *b);

/**
 * Whether the (normalised) address lies in the network.
 */
int ct_net_match(const ct_net *net, const ct_net *addr);

/**
 * Walk rules (an array of ct_rule) in order; the first that matches
 * decides.  Host rules match name (the CONNECT target; NULL for an IP
 * literal); network rules match addr.  With addr NULL (before DNS) the
 * walk stops undecided at the first network rule.
 */
ct_verdict ct_rules_check(const apr_array_header_t *rules, const char *name,
                          const ct_net *addr);

/**
 * Prepare the built-in guard's networks; call once before checking
 * (at configuration time, before threads start).
 */
void ct_policy_init(apr_pool_t *p);

/**
 * The built-in guard used when no rule decides: deny loopback,
 * link-local (cloud metadata included), unspecified, multicast and the
 * local addresses (an array of ct_net, may be NULL).
 * @return the set that denied, or NULL when the address is allowed
 */
const char *ct_default_denies(const ct_net *addr,
                              const apr_array_header_t *local);

#endif /* CT_POLICY_H */
