/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_throttle.h: how many new tunnels a second one client, and one
 * destination host, may open (ConnectTunnelClientRate,
 * ConnectTunnelDestinationRate), with limiters in shared memory so that
 * every child process draws on the same budget.
 */

#ifndef CT_THROTTLE_H
#define CT_THROTTLE_H

#include "httpd.h"

#include "ct_config.h"
#include "ct_policy.h"

/**
 * Create the shared limiters when any server sets a rate (post_config);
 * they survive graceful restarts.
 */
apr_status_t ct_throttle_post_config(apr_pool_t *pconf, server_rec *s);

/**
 * Whether conf sets a rate per client or per destination.
 */
int ct_throttle_wanted(const ct_server_conf *conf);

/**
 * Take one new tunnel from the budgets of the client key and the
 * destination host (canonical), or refuse r: 429 with Retry-After.  A
 * budget that refuses takes nothing from the other.
 * @return OK or the HTTP status to answer with
 */
int ct_throttle_take(request_rec *r, const ct_server_conf *conf,
                     const ct_net *client, const char *host);

#endif /* CT_THROTTLE_H */
