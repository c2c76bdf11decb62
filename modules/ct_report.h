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

/* RFC 9209 error types this module reports in Proxy-Status. */
#define CT_PS_REQUEST_ERROR     "http_request_error"
#define CT_PS_REQUEST_DENIED    "http_request_denied"
#define CT_PS_IP_PROHIBITED     "destination_ip_prohibited"
#define CT_PS_IP_UNROUTABLE     "destination_ip_unroutable"
#define CT_PS_DNS_ERROR         "dns_error"
#define CT_PS_REFUSED           "connection_refused"
#define CT_PS_TIMEOUT           "connection_timeout"
#define CT_PS_LIMIT             "connection_limit_reached"
#define CT_PS_UNAVAILABLE       "destination_unavailable"
#define CT_PS_INTERNAL          "proxy_internal_error"

/**
 * Prepare an error answer: a Proxy-Status header (RFC 9209) naming this
 * proxy and the error type, and a sentence for the error page.
 * @param status   the HTTP status to return
 * @param type     one of the CT_PS_ error types
 * @param sentence shown on the error page (HTML-escaped here)
 * @return status, so that callers can return the call
 */
int ct_report_refusal(request_rec *r, int status, const char *type,
                      const char *sentence);

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
                   ct_end end, apr_interval_time_t idle,
                   apr_interval_time_t lifetime);

#endif /* CT_REPORT_H */
