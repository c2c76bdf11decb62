/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_handler.h: the life of one CONNECT request, from the request-target
 * to the end of its tunnel.
 */

#ifndef CT_HANDLER_H
#define CT_HANDLER_H

#include "httpd.h"
#include "mod_proxy.h"

#include "ct_origin.h"

/**
 * Serve a forward-proxy CONNECT: validate, apply policy, connect (directly
 * or through the ProxyRemote upstream proxyname:proxyport), answer 200 and
 * relay until the tunnel ends.
 * @return OK once a tunnel ran, or the HTTP error to answer with
 */
int ct_handle_connect(request_rec *r, proxy_server_conf *pconf,
                      const char *url, const char *proxyname,
                      apr_port_t proxyport);

/**
 * pre_close_connection: a connection whose tunnel a reactor took over is
 * closed without shutdown() or lingering.
 */
void ct_handler_pre_close(conn_rec *c);

/**
 * Steps 1-3 of a CONNECT, which need no DNS: the target's syntax (400),
 * AllowCONNECT and ProxyBlock by name (403), the destination rules as far
 * as the target decides them (403).  The canon hook runs them, before
 * mod_proxy's routing can resolve the target (NoProxy does), and the
 * handler again to fill t and pol.
 * @return OK, or the status of the refusal (Proxy-Status set, logged)
 */
int ct_handler_check(request_rec *r, proxy_server_conf *pconf,
                     const char *url, ct_target *t, ct_dest_policy *pol);

/**
 * Register the input filter that watches HTTP/1.x request heads; from
 * register_hooks.
 */
void ct_handler_register(void);

/**
 * pre_read_request: on an HTTP/1.x connection, put the head watch on the
 * request's protocol filters.  It counts the Host field lines of a
 * CONNECT (request note CT_NOTE_HOST_FIELDS) and leaves the chain at the
 * request line of anything else, at the end of the head of a CONNECT.
 */
void ct_handler_pre_read(request_rec *r, conn_rec *c);

/**
 * For a forward-proxy CONNECT, after mod_proxy marked it and before the
 * <Proxy> sections are walked: refuse more than one Host field line
 * (400), else put the canonical target (ct_target_canonical) in r->uri,
 * r->filename and r->parsed_uri.
 * @return OK, or the status of the refusal (Proxy-Status set, logged)
 */
int ct_handler_post_read(request_rec *r);

#endif /* CT_HANDLER_H */
