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

/* Largest reply head accepted from an upstream proxy. */
#define CT_UPSTREAM_HEAD_MAX 8192

typedef struct {
    apr_socket_t *sock;         /* connected, blocking with a timeout */
    apr_sockaddr_t *addr;       /* the address dialled */
    apr_port_t local_port;      /* our end of it */
    const char *upstream;       /* "host:port" of the upstream, or NULL */
    const char *early;          /* bytes the upstream sent after its 2xx */
    apr_size_t early_len;
} ct_origin;

/**
 * Open the connection a tunnel to t will use.  Every address the next hop
 * resolves to is tried in order, each within timeout.  ProxyBlock is
 * checked against the resolved addresses of a direct connection.
 * @param r         the CONNECT request
 * @param pconf     mod_proxy's server configuration
 * @param t         the validated target
 * @param proxyname upstream proxy from ProxyRemote, or NULL for direct
 * @param proxyport its port
 * @param timeout   connect (and upstream reply) timeout
 * @param o         filled on success
 * @return OK, or the HTTP status to answer with (the cause is logged and
 *         left in r->notes "error-notes")
 */
int ct_origin_open(request_rec *r, proxy_server_conf *pconf,
                   const ct_target *t, const char *proxyname,
                   apr_port_t proxyport, apr_interval_time_t timeout,
                   ct_origin *o);

/**
 * The target as authority-form text, IPv6 literals in brackets.
 */
const char *ct_origin_authority(apr_pool_t *p, const ct_target *t);

#endif /* CT_ORIGIN_H */
