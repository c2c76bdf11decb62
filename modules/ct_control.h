/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_control.h: what the admin may change per request, as nginx's
 * proxy_connect_* directives do: the address dialled, the source address,
 * the 2xx, and the timeouts through environment variables.  Expressions
 * are httpd's ap_expr, parsed at config time and evaluated per request.
 */

#ifndef CT_CONTROL_H
#define CT_CONTROL_H

#include "httpd.h"
#include "http_config.h"

#include "ct_target.h"

/* Environment variables that override a timeout for one request, named
 * as mod_proxy names its own (proxy-nokeepalive, proxy-sendcl...). */
#define CT_ENV_CONNECT_TIMEOUT "proxy-connect-timeout"
#define CT_ENV_IDLE_TIMEOUT    "proxy-idle-timeout"
#define CT_ENV_MAX_LIFETIME    "proxy-max-lifetime"

/* Directive setters (per-directory: server, virtual host, <Proxy>). */
const char *ct_control_set_expr(cmd_parms *cmd, void *dconfv,
                                const char *arg);
const char *ct_control_set_header(cmd_parms *cmd, void *dconfv,
                                  const char *name, const char *value);
const char *ct_control_set_proxy_agent(cmd_parms *cmd, void *dconfv,
                                       int on);

/**
 * The address to dial for t: ConnectTunnelAddress's value ("host",
 * "host:port", "[ipv6]:port"; no port keeps the target's) parsed as
 * strictly as a target, or t itself when unset or empty.
 * @param dial receives what to dial
 * @return OK, or HTTP_INTERNAL_SERVER_ERROR (logged) for a value that is
 *         not an address
 */
int ct_control_address(request_rec *r, const ct_target *t,
                       ct_target *dial);

/**
 * The source address for the outgoing socket: ConnectTunnelBind's value
 * ("address", "address:port", "[ipv6]:port"), or NULL when unset or
 * empty.
 * @return OK, or HTTP_INTERNAL_SERVER_ERROR (logged) for a value that is
 *         not an IP address with an optional port
 */
int ct_control_bind(request_rec *r, apr_sockaddr_t **bind);

/**
 * The head of the 2xx: "HTTP/1.x 200" with ConnectTunnelResponseReason,
 * Proxy-agent unless ConnectTunnelProxyAgent is Off, and each
 * ConnectTunnelResponseHeader whose value can be sent.  Values that
 * cannot (a control character, an evaluation error) are left out and
 * logged.
 */
const char *ct_control_established(request_rec *r);

/**
 * Apply the timeout environment variables of r over the configured
 * values; a value that is not a time is logged and ignored.
 * @param lifetime 0 means none, as proxy-max-lifetime "0" does
 */
void ct_control_env_timeouts(request_rec *r, apr_interval_time_t *connect,
                             apr_interval_time_t *idle,
                             apr_interval_time_t *lifetime);

#endif /* CT_CONTROL_H */
