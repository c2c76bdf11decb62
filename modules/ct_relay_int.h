/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_relay_int.h: the in-worker tunnel's state, shared by its pump
 * (ct_relay.c) and what drives it or hands it on (ct_relay_loop.c).
 */

#ifndef CT_RELAY_INT_H
#define CT_RELAY_INT_H

#include "apr_poll.h"

#include "ct_splice.h"
#include "ct_bw.h"
#include "ct_engine.h"

/* Steps of both directions per pump call before others get a turn. */
#define CT_PUMP_ROUNDS 16

/* Sides, as indexes of the pollfd array. */
#define CT_CLIENT 0
#define CT_ORIGIN 1

/* One direction of the tunnel: the engine's record (ct_engine.h).  Its
 * pipe, once there, is the zero-copy path's (the engine moves it);
 * without one the filter path (ct_relay.c) uses bytes, eof, shut and the
 * want flags alone. */
typedef ct_dir ct_flow;

/* Where a direction keeps the rest of a partial write. */
typedef struct {
    apr_pool_t *pool;
    apr_size_t size;
    char *buf;                  /* made when first needed, or NULL */
} ct_pend;

struct ct_tunnel {
    request_rec *r;
    conn_rec *c;
    apr_socket_t *origin;
    apr_socket_t *client;       /* the client's socket, for poll/shutdown */
    ap_filter_t *client_net;    /* last client output filter (core) */
    apr_bucket_brigade *bb_up;  /* client bytes not yet sent to origin */
    apr_bucket_brigade *bb_down;
    char *buf;                  /* reads, either way */
    ct_pend pend[2];            /* by source side: partial writes */
    apr_size_t bufsize;
    apr_interval_time_t idle;
    apr_time_t opened;          /* the idle and lifetime clocks started */
    apr_time_t last;            /* last step that moved something */
    apr_time_t deadline;        /* end of the maximum lifetime, or 0 */
    apr_pollset_t *pollset;
    apr_pollfd_t pfd[2];        /* registered events in reqevents */
    int registered[2];          /* in the pollset */
    int hup[2];                 /* the socket hung up */
    ct_flow up;                 /* client to origin */
    ct_flow down;               /* origin to client */
    int moved;                  /* bytes or state moved in the last step */
    int nohalfclose;
    int plain;                  /* plain TCP, passive filters only */
    int stream;                 /* an HTTP/2 stream: no socket of its own */
    int stream_woken;           /* its input pipe woke the loop after the
                                 * client's END_STREAM */
    int taken;                  /* the client's input was taken from the
                                 * filters: its socket is read directly */
    int raw;                    /* plain TCP: the engine moves both ways
                                 * once the filters hold nothing */
    int zero_copy;              /* both sides may use splice(2) */
    int restore_timeout;        /* client_timeout was changed */
    int client_fd;
    int origin_fd;
    apr_interval_time_t client_timeout; /* restored at the end */
    apr_time_t first_down;      /* the origin's first byte, or 0 */
    ct_bw *bw;                  /* bandwidth limits, or NULL */
    apr_time_t resume;          /* a direction waits for its budget until
                                 * then (this pump call), or 0 */
};

/**
 * Whether the client connection is plain TCP with only passive filters,
 * so that its socket may be used directly (splice(2), hand-off).
 */
int ct_relay_can_splice(conn_rec *c);

/**
 * Take the client's input away from the filters: what the core input
 * filter holds goes to bb_up, and the socket is read directly from then
 * on (t->taken).  APR_EOF, with nothing taken, when the client already
 * closed its side.
 */
apr_status_t ct_tunnel_take_input(ct_tunnel *t);

/**
 * Empty an HTTP/2 stream's input pipe, so that it wakes a poll again only
 * for what comes after.
 */
apr_status_t ct_tunnel_drain_stream(ct_tunnel *t);

/**
 * End an HTTP/2 stream's output: END_STREAM, or when the tunnel is
 * broken, RST_STREAM.  Once only; later calls do nothing.
 */
void ct_tunnel_end_stream(ct_tunnel *t, int broken);

#endif /* CT_RELAY_INT_H */
