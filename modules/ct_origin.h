/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_origin.h: the next hop of a tunnel, the origin itself or an upstream
 * proxy named by ProxyRemote: resolve, connect within a timeout and, when
 * chaining, ask the upstream for its own tunnel.
 */

#ifndef CT_ORIGIN_H
#define CT_ORIGIN_H

#include "httpd.h"
#include "mod_proxy.h"

#include "ct_target.h"
#include "ct_policy.h"

/* Largest reply head accepted from an upstream proxy. */
#define CT_UPSTREAM_HEAD_MAX 8192

/* The destination rules that apply to one tunnel. */
typedef struct {
    const apr_array_header_t *rules;    /* ct_rule, may be NULL */
    const char *name;           /* the target's name; NULL for a literal */
    int default_deny;           /* the built-in guard applies */
    int decided;                /* already allowed: no address checks */
} ct_dest_policy;

typedef struct {
    apr_socket_t *sock;         /* connected, blocking with a timeout */
    apr_sockaddr_t *addr;       /* the address dialled */
    apr_port_t local_port;      /* our end of it */
    const char *upstream;       /* "host:port" of the upstream, or NULL */
    const char *early;          /* bytes the upstream sent after its 2xx */
    apr_size_t early_len;
} ct_origin;

/**
 * Learn this host's own addresses (every interface's, and those httpd
 * listens on): the built-in guard denies them.
 */
void ct_origin_local_addresses(apr_pool_t *p, server_rec *s);

/**
 * Why the destination rules deny addr (the rule's text, or the guard's
 * set), or NULL when they allow it.
 */
const char *ct_origin_address_denied(apr_pool_t *p,
                                     const ct_dest_policy *pol,
                                     const ct_net *addr);

/**
 * Open the connection a tunnel to t will use.  For a direct connection
 * every resolved address is checked against the destination rules and
 * only those allowed are dialled, in resolver order, each within timeout
 * (what is checked is what is dialled: nothing is resolved twice).
 * ProxyBlock is checked against the resolved addresses too.
 * @param r         the CONNECT request
 * @param pconf     mod_proxy's server configuration
 * @param t         the validated target
 * @param pol       the destination rules for it
 * @param proxyname upstream proxy from ProxyRemote, or NULL for direct
 * @param proxyport its port
 * @param timeout   connect (and upstream reply) timeout
 * @param o         filled on success
 * @return OK, or the HTTP status to answer with (the cause is logged and
 *         left in r->notes "error-notes")
 */
int ct_origin_open(request_rec *r, proxy_server_conf *pconf,
                   const ct_target *t, const ct_dest_policy *pol,
                   const char *proxyname, apr_port_t proxyport,
                   apr_interval_time_t timeout, ct_origin *o);

#endif /* CT_ORIGIN_H */
