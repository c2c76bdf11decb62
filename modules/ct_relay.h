/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_relay.h: the tunnel.  A tunnel is a state machine with one record per
 * direction; ct_tunnel_pump() moves whatever can move without blocking and
 * reports what each side waits for, and ct_tunnel_run() drives the pump
 * from an APR pollset until both directions are finished.  Other event
 * sources can drive the same pump.
 */

#ifndef CT_RELAY_H
#define CT_RELAY_H

#include "httpd.h"
#include "apr_network_io.h"

#include "ct_bw.h"

/* How a tunnel ended. */
typedef enum {
    CT_END_NONE = 0,        /* still running */
    CT_END_CLOSED,          /* both directions finished */
    CT_END_HALF_CLOSED,     /* one side closed and half-close is off */
    CT_END_IDLE,            /* nothing moved for the idle timeout */
    CT_END_LIFETIME,        /* the tunnel reached its maximum lifetime */
    CT_END_CLIENT_ERROR,    /* reading from or writing to the client */
    CT_END_ORIGIN_ERROR,    /* reading from or writing to the origin */
    CT_END_INTERNAL,        /* polling failed */
    CT_END_SHUTDOWN,        /* the child stopped */
    CT_END_SNI              /* refused by ConnectTunnelSNI before relaying */
} ct_end;

/* What the pump waits for on each side, as APR_POLLIN / APR_POLLOUT. */
typedef struct {
    apr_int16_t client;
    apr_int16_t origin;
    int again;              /* more can move at once: poll without waiting */
    apr_time_t resume;      /* a direction waits for its bandwidth budget
                             * until then: poll no longer; 0 if none */
} ct_wants;

typedef struct ct_tunnel ct_tunnel;

/**
 * Find the optional functions the relay uses (mod_logio's counters);
 * called once the configuration is read.
 */
void ct_relay_init(void);

/**
 * Whether an HTTP/2 stream's input can be polled (mod_http2 lends a pipe
 * for it), which a tunnel over the stream needs.
 */
int ct_relay_stream_pollable(conn_rec *c);

/**
 * Set up a tunnel between r's client connection and origin, after the
 * 2xx has been sent.  Strips the filters that must not see tunnel bytes
 * and marks the client connection to close afterwards.
 * @param bufsize   largest read from either side in one step
 * @param zero_copy splice(2) where the client connection allows it
 */
apr_status_t ct_tunnel_create(ct_tunnel **tp, request_rec *r,
                              apr_socket_t *origin, apr_size_t bufsize,
                              int zero_copy);

/**
 * Bound the tunnel's life: close it when no payload moved for idle, and
 * in any case after lifetime (0: no bound), both counted from now.
 */
void ct_tunnel_set_timeouts(ct_tunnel *t, apr_interval_time_t idle,
                            apr_interval_time_t lifetime);

/**
 * Limit the tunnel's bandwidth with bw (NULL: no limit), which must live
 * as long as the tunnel.
 */
void ct_tunnel_set_bandwidth(ct_tunnel *t, ct_bw *bw);

/**
 * Queue bytes for the client that arrived before the tunnel started
 * (what an upstream proxy sent right behind its 2xx).
 */
apr_status_t ct_tunnel_prime_client(ct_tunnel *t, const char *data,
                                    apr_size_t len);

/**
 * Move bytes both ways until nothing more can move without blocking.
 * @param w filled with what each side waits for
 * @return CT_END_NONE while the tunnel goes on
 */
ct_end ct_tunnel_pump(ct_tunnel *t, ct_wants *w);

/**
 * Drive the pump from a pollset until the tunnel ends.
 */
ct_end ct_tunnel_run(ct_tunnel *t);

struct ct_handoff_s;

/**
 * Prepare to give the tunnel to a reactor: the client connection must be
 * plain TCP with passive filters and nothing pending either way.  The
 * client's input is taken from the filters (bytes the core held go to
 * h->early; the socket is read directly from then on).  On success h
 * holds duplicates of both descriptors; otherwise the tunnel stays usable
 * here.
 */
apr_status_t ct_tunnel_handoff(ct_tunnel *t, struct ct_handoff_s *h);

/**
 * Payload bytes moved client to origin (up) and origin to client (down).
 */
void ct_tunnel_bytes(const ct_tunnel *t, apr_off_t *up, apr_off_t *down);

/**
 * When the tunnel's idle and lifetime clocks started (opened) and when
 * it last moved something (last; opened if nothing moved yet).
 */
void ct_tunnel_times(const ct_tunnel *t, apr_time_t *opened,
                     apr_time_t *last);

/**
 * When the origin's first byte reached the tunnel, or 0 while none has.
 */
apr_time_t ct_tunnel_first_byte(const ct_tunnel *t);

/**
 * A short lower-case name for an end reason, for logs and notes.
 */
const char *ct_end_name(ct_end end);

#endif /* CT_RELAY_H */
