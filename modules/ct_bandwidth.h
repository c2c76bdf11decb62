/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_bandwidth.h: the server's side of bandwidth limits: the directives,
 * the client table in shared memory, and a tunnel's limits set up from
 * its request (the limiter itself is ct_bw.h).
 */

#ifndef CT_BANDWIDTH_H
#define CT_BANDWIDTH_H

#include "httpd.h"
#include "http_config.h"

#include "ct_bw.h"

/**
 * ConnectTunnelBandwidth and ConnectTunnelClientBandwidth (cmd->info
 * non-NULL for the client's): [up|down] rate [burst].
 */
const char *ct_bandwidth_set(cmd_parms *cmd, void *dummy, const char *a1,
                             const char *a2, const char *a3);

/**
 * Create the client table when any server limits a client's bandwidth
 * (post_config); it survives graceful restarts.
 */
apr_status_t ct_bandwidth_post_config(apr_pool_t *pconf, server_rec *s);

/**
 * The limits of r's tunnel into *out, or NULL when it has none; a
 * client limit joins the client's entry, left when r's pool goes.
 * @return OK, or 503 when the client table has no room
 */
int ct_bandwidth_acquire(request_rec *r, ct_bw **out);

/**
 * Take bw's client entry away from r's pool: the tunnel goes on after
 * r (in a reactor), which calls ct_bandwidth_release() at its end.
 */
void ct_bandwidth_detach(request_rec *r, ct_bw *bw);

/**
 * Leave the client entry a tunnel's limits hold (any thread).
 */
void ct_bandwidth_release(ct_bw *bw);

/**
 * A tunnel moved here from another child (ConnectTunnelMigrate): its
 * budgets' values came with it; point it at this child's client table.
 */
void ct_bandwidth_adopt(ct_bw *bw);

#endif /* CT_BANDWIDTH_H */
