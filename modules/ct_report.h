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
#include "ct_origin.h"

/* Note names, documented in docs/mod_connect_tunnel.html. */
#define CT_NOTE_SOURCE_PORT "proxy-source-port"
#define CT_NOTE_BYTES_UP    "tunnel-bytes-up"
#define CT_NOTE_BYTES_DOWN  "tunnel-bytes-down"
#define CT_NOTE_END         "tunnel-end"
#define CT_NOTE_ADDRESS     "tunnel-address"
#define CT_NOTE_MODE        "tunnel-mode"
#define CT_NOTE_UPSTREAM_FAILED "tunnel-upstream-failed"
#define CT_NOTE_HOST_FIELDS "tunnel-host-fields"
#define CT_NOTE_REFUSED     "tunnel-refused"
#define CT_NOTE_HOST        "tunnel-host"
#define CT_NOTE_PORT        "tunnel-port"
#define CT_NOTE_ADDRESS_PORT "tunnel-address-port"
#define CT_NOTE_LOCAL_ADDRESS "tunnel-local-address"
#define CT_NOTE_RESOLVE_MS  "tunnel-resolve-ms"
#define CT_NOTE_CONNECT_MS  "tunnel-connect-ms"
#define CT_NOTE_UPSTREAM_MS "tunnel-upstream-ms"
#define CT_NOTE_FIRST_BYTE_MS "tunnel-first-byte-ms"
#define CT_NOTE_DURATION_MS "tunnel-duration-ms"
#define CT_NOTE_SNI         "tunnel-sni"
#define CT_NOTE_ALPN        "tunnel-alpn"
#define CT_NOTE_ECH         "tunnel-ech"
#define CT_NOTE_SNI_CHECK   "tunnel-sni-check"

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
#define CT_PS_LOOP              "proxy_loop_detected"

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

/* One finished tunnel, for the end-of-tunnel log. */
typedef struct {
    const char *client;         /* client address */
    const char *target;         /* host:port */
    const char *address;        /* address dialled */
    const char *mode;           /* "worker" or "reactor" */
    const char *end;            /* ct_end_name() */
    apr_off_t up;               /* payload bytes client to origin */
    apr_off_t down;             /* and origin to client */
    apr_time_t start;           /* when the CONNECT arrived */
    apr_time_t opened;          /* the idle and lifetime clocks started */
    apr_time_t last;            /* last moved something, or opened */
    apr_time_t first;           /* the origin's first byte, or 0 */
    apr_time_t stop;
} ct_tunnel_record;

/**
 * Open the end-of-tunnel log (post_config): a file relative to the
 * ServerRoot, or "|program" for a piped log (rotatelogs and friends).
 * Without a spec, no record is written.
 */
apr_status_t ct_report_open_log(apr_pool_t *p, server_rec *s,
                                const char *spec);

/**
 * Write one end-of-tunnel record, from any thread.
 */
void ct_report_record(const ct_tunnel_record *rec);

/**
 * Record the target as validated (host and port), from the first check
 * on; every CONNECT that gets that far has them.
 */
void ct_report_target(request_rec *r, const ct_target *t);

/**
 * Record the set-up, whether it succeeded or not: when each step ended
 * (milliseconds since the CONNECT arrived, "-" for a step that did not
 * happen) and, once connected, the address dialled and our end of the
 * connection (the port also as stock's proxy-source-port).
 */
void ct_report_setup(request_rec *r, const ct_origin *o);

/**
 * Record how a tunnel that ran in its worker ended and how many bytes it
 * moved: notes, the log line, the end-of-tunnel record, the counters.
 */
void ct_report_end(request_rec *r, const char *target, ct_tunnel *t,
                   ct_end end, apr_interval_time_t idle,
                   apr_interval_time_t lifetime);

/**
 * A tunnel ended, in either relay: write its end-of-tunnel record and log
 * it (at info when its idle timeout or lifetime closed it, with the time
 * measured since its last activity or its opening and the limit that
 * applied; else at debug).
 */
void ct_report_finished(server_rec *s, const ct_tunnel_record *rec,
                        ct_end end, apr_interval_time_t limit);

/**
 * The 200 went out: count the tunnel open, and its setup time from the
 * CONNECT's arrival; a refusal on an earlier route no longer counts.
 */
void ct_report_opened(request_rec *r);

/**
 * At the request's end (log_transaction): count its refusal, by the
 * Proxy-Status error type it was answered with, if it was refused.
 */
void ct_report_count_refusal(request_rec *r);

/**
 * Record that the tunnel went on in a reactor: the mode note says so
 * (its bytes and end are set when the reactor ends it).
 */
void ct_report_handed_off(request_rec *r, ct_tunnel *t);

#endif /* CT_REPORT_H */
