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

#endif /* CT_HANDLER_H */
