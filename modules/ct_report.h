/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_report.h: what a tunnel tells the admin: request notes for
 * LogFormat's %{...}n and the end-of-tunnel log line.
 */

#ifndef CT_REPORT_H
#define CT_REPORT_H

#include "httpd.h"

#include "ct_relay.h"

/* Note names, documented in docs/mod_connect_tunnel.html. */
#define CT_NOTE_SOURCE_PORT "proxy-source-port"
#define CT_NOTE_BYTES_UP    "tunnel-bytes-up"
#define CT_NOTE_BYTES_DOWN  "tunnel-bytes-down"
#define CT_NOTE_END         "tunnel-end"
#define CT_NOTE_ADDRESS     "tunnel-address"

/**
 * Record the connection the tunnel uses: our local port (as stock's
 * proxy-source-port) and the address dialled.
 */
void ct_report_connected(request_rec *r, apr_port_t local_port,
                         apr_sockaddr_t *addr);

/**
 * Record how a tunnel ended and how many bytes it moved, and log it.
 */
void ct_report_end(request_rec *r, const char *target, ct_tunnel *t,
                   ct_end end, apr_interval_time_t idle);

#endif /* CT_REPORT_H */
