/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_target.h: the CONNECT request-target (RFC 9112 authority-form),
 * parsed strictly before anything is resolved or dialled.  APR only, so the
 * unit tests and the fuzzer can use it without a server.
 */

#ifndef CT_TARGET_H
#define CT_TARGET_H

#include "apr_pools.h"
#include "apr_network_io.h"

/* Longest host name accepted (RFC 1035 limit on a presentation name). */
#define CT_TARGET_HOST_MAX 253

typedef enum {
    CT_TARGET_OK = 0,
    CT_TARGET_EMPTY,        /* nothing, or no host before the colon */
    CT_TARGET_CONTROL,      /* control, space or non-ASCII byte */
    CT_TARGET_USERINFO,     /* "user@host:port" */
    CT_TARGET_PATH,         /* a path, query or fragment, or a scheme */
    CT_TARGET_NO_PORT,      /* no ":port" */
    CT_TARGET_BAD_PORT,     /* not 1-65535 in plain decimal */
    CT_TARGET_BAD_HOST,     /* not a host name, IPv4 or [IPv6] literal */
    CT_TARGET_UNSPECIFIED   /* 0.0.0.0 or [::], which mean "this host" */
} ct_target_status;

typedef enum {
    CT_HOST_NAME = 0,
    CT_HOST_IPV4,
    CT_HOST_IPV6
} ct_host_kind;

typedef struct {
    const char *host;       /* as sent, without IPv6 brackets */
    apr_port_t port;
    ct_host_kind kind;
} ct_target;

/**
 * Parse a CONNECT request-target.
 * @param p    pool for the host copy
 * @param text the request-target as the client sent it (NUL-terminated)
 * @param out  filled on success
 * @return CT_TARGET_OK or the first reason the target is refused
 */
ct_target_status ct_target_parse(apr_pool_t *p, const char *text,
                                 ct_target *out);

/**
 * The canonical spelling of a parsed target, the one form <Proxy>
 * sections, ProxyBlock and the logs see: a host name in lower case
 * without a final dot; an IPv4-mapped, IPv4-compatible or NAT64 IPv6
 * address as the IPv4 address it carries; any other IPv6 address in
 * RFC 5952 form (lower case, no leading zeros, the longest run of two or
 * more zero groups, the first of equal runs, shortened to "::").
 * @param p   pool for the new host
 * @param in  a target ct_target_parse() accepted
 * @param out receives the canonical target (may be in)
 */
void ct_target_canonical(apr_pool_t *p, const ct_target *in,
                         ct_target *out);

/**
 * The authority-form of a target: "host:port", "[ipv6]:port".
 */
const char *ct_target_authority(apr_pool_t *p, const ct_target *t);

/**
 * A short lower-case explanation of a parse status, for logs and errors.
 */
const char *ct_target_reason(ct_target_status st);

#endif /* CT_TARGET_H */
