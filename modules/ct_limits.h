/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_limits.h: how many tunnels may be open at once, in one child, in the
 * whole server (shared memory), from one client address and to one
 * destination host; and then, through ct_throttle.h, how many new ones a
 * second.
 */

#ifndef CT_LIMITS_H
#define CT_LIMITS_H

#include "httpd.h"

#include "ct_policy.h"
#include "ct_target.h"

/**
 * Register the global mutex type (pre_config).
 */
void ct_limits_pre_config(apr_pool_t *pconf);

/**
 * Create the shared counters when any server sets a server-wide or
 * per-client limit (post_config).
 */
apr_status_t ct_limits_post_config(apr_pool_t *pconf, server_rec *s);

/**
 * Attach a child to the shared counters' mutex (child_init).
 */
void ct_limits_child_init(apr_pool_t *pchild, server_rec *s);

/* What the module keeps on a client connection (its conn_config). */
typedef struct {
    int handed_off;             /* its tunnel went on in a reactor */
    int log_held;               /* its access-log line waits for the end */
    apr_uint32_t h2_tunnels;    /* tunnels open on its HTTP/2 streams */
} ct_conn_state;

/**
 * Give a new client connection its state (pre_connection, in the
 * connection's own thread, before mod_http2 starts any stream on it).
 */
void ct_limits_pre_connection(conn_rec *c);

/**
 * The state of connection c, or NULL for one that never went through
 * pre_connection.
 */
ct_conn_state *ct_conn_state_get(conn_rec *c);
/**
 * The parent learnt that the child process with stats record proc
 * exited (child_status hook): take its tunnels off the shared counts now
 * if the mutex is free, else mark them for the next child that takes it.
 */
void ct_limits_proc_exited(server_rec *s, int proc);

/* The counts one tunnel holds, for a tunnel that outlives its request. */
typedef struct {
    ct_net key;                 /* the client's key, when client is set */
    ct_net dest_key;            /* the host's key, when dest is set */
    int client;                 /* counted per client */
    int dest;                   /* counted per destination host */
    int shared;                 /* counted server-wide */
    apr_uint32_t *h2_count;     /* its HTTP/2 connection's count, or NULL */
    int owner;                  /* the process record they are under */
} ct_limit_hold;

/**
 * Count one more tunnel for r to dial (the host it dials), or refuse it:
 * 503 when the child, the server, the destination host or r's HTTP/2
 * connection is full, 429 when the client is; then take it from the
 * rates (429).  The counts are given back when r's pool goes; a request
 * refused here takes nothing from the rates.
 * @return OK or the HTTP status to answer with
 */
int ct_limits_acquire(request_rec *r, const ct_target *dial);

/**
 * Take r's counts away from r's pool: the tunnel goes on after r, and
 * whoever ends it calls ct_limits_release().
 */
void ct_limits_detach(request_rec *r, ct_limit_hold *out);

/**
 * Give back the counts of a detached tunnel (any thread).
 */
void ct_limits_release(ct_limit_hold *hold);

/**
 * Tunnels open in this child process now.
 */
apr_uint32_t ct_limits_child_live(void);

/**
 * A tunnel moved here from another child (its counts in hold, under the
 * sender's record): take its counts under this child's record, and mark
 * move seq of the sender's reactor done.
 * @return APR_SUCCESS, or an error when the tunnel must be refused (the
 *         sender cancelled the move, the client table is full)
 */
apr_status_t ct_limits_move_in(ct_limit_hold *hold, int reactor,
                               apr_uint32_t seq);

/**
 * A tunnel of this child moved to another one: its counts are the
 * receiver's now.
 */
void ct_limits_move_out(void);

/**
 * No answer came to move seq of this child's reactor: whether the
 * receiver took the counts.  When it did not, the move is cancelled; when
 * it did but died (died: the connection ended with no answer), the counts
 * come back here and 0 is returned: the tunnel stays.
 * @return 1 when the tunnel is the receiver's, 0 when it stays here
 */
int ct_limits_move_unknown(ct_limit_hold *hold, int reactor,
                           apr_uint32_t seq, pid_t receiver, int died);

#endif /* CT_LIMITS_H */
