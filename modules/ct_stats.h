/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_stats.h: server-wide tunnel counters in shared memory, which
 * ct_metrics.c shows.  Tunnels handed to a reactor are invisible to the
 * MPM's scoreboard, so the module counts them itself.  Live figures are
 * kept per child process, so that those of a child that died without its
 * cleanups stop counting when the parent reaps it; the counters (opened,
 * refused, ended, bytes, the histograms) are server-wide and only grow,
 * so that a child's death takes nothing off them.
 */

#ifndef CT_STATS_H
#define CT_STATS_H

#include "httpd.h"

#include "ct_relay.h"
#include "ct_sni.h"

/* Where a tunnel runs. */
typedef enum {
    CT_IN_WORKER = 0,
    CT_IN_REACTOR = 1
} ct_place;

/* Refusal reasons: the Proxy-Status error types of ct_report.h, and one
 * for a type not in that list. */
#define CT_STATS_REFUSALS 12

/* End reasons: ct_end's, and tunnels of a child that died before they
 * ended ("lost"; their bytes and duration are unknown). */
#define CT_STATS_END_LOST (CT_END_SNI + 1)
#define CT_STATS_ENDS (CT_STATS_END_LOST + 1)

/* Histogram bounds (microseconds) per kind, and the most any kind has. */
#define CT_STATS_BOUNDS_MAX 12

typedef enum {
    CT_HIST_SETUP = 0,          /* CONNECT received to 200 sent */
    CT_HIST_DURATION = 1,       /* 200 sent to the tunnel's end */
    CT_HISTS = 2
} ct_hist_kind;

/* One histogram as read: counts per bucket, not cumulative; the last
 * bucket holds what exceeds every bound. */
typedef struct {
    int nbounds;
    const apr_interval_time_t *bounds;  /* upper bounds, inclusive */
    const char *const *labels;          /* the bounds in seconds, text */
    apr_uint64_t count[CT_STATS_BOUNDS_MAX + 1];
    apr_uint64_t sum;                   /* microseconds */
} ct_hist_view;

/* Every figure, summed over the processes there are. */
typedef struct {
    apr_uint32_t live[2];               /* by ct_place */
    apr_uint32_t draining;
    apr_uint64_t opened;
    apr_uint64_t closed;
    apr_uint64_t handed_off;
    apr_uint64_t bytes_up;
    apr_uint64_t bytes_down;
    apr_uint64_t log_dropped;           /* end-of-tunnel records */
    apr_uint64_t moved;                 /* to a live child (migration) */
    apr_uint64_t move_refused;          /* a receiving child said no */
    apr_uint64_t refused[CT_STATS_REFUSALS];
    apr_uint64_t ended[CT_STATS_ENDS];  /* index 0 (CT_END_NONE) unused */
    apr_uint64_t sni[CT_SNI_RESULTS];   /* ConnectTunnelSNI's checks */
    ct_hist_view hist[CT_HISTS];
} ct_stats_view;

/**
 * Create the shared counters (post_config); they survive nothing but
 * the configuration they belong to.
 */
apr_status_t ct_stats_post_config(apr_pool_t *pconf, server_rec *s);

/**
 * Claim this child process's record (child_init), before any tunnel.
 */
void ct_stats_child_init(server_rec *s);

/**
 * Records of child processes there are (record 0 stands for tunnels of
 * no known process and is never reclaimed); fixed once made.
 */
int ct_stats_nprocs(void);

/**
 * This process's record.
 */
int ct_stats_proc(void);

/**
 * The parent learnt that process pid exited: its live figures stop
 * counting at once, and its record waits for ct_stats_proc_free().
 * @return its record, or 0 when it had none
 */
int ct_stats_proc_exited(pid_t pid);

/**
 * Whether record i belongs to a process that exited and still waits for
 * its other counts to be taken off.
 */
int ct_stats_proc_gone(int i);

/**
 * Record i may serve a new process.
 */
void ct_stats_proc_free(int i);

/**
 * Whether the MPM's last restart was graceful (old children live on):
 * shared state made for the previous generation is still in use.
 */
int ct_restart_was_graceful(void);

/**
 * A tunnel opened in place, setup after its CONNECT arrived.
 */
void ct_stats_opened(ct_place place, apr_interval_time_t setup);

/**
 * A tunnel that ran in place ended for reason end after moving up and
 * down bytes and lasting duration.
 */
void ct_stats_closed(ct_place place, ct_end end, apr_off_t up,
                     apr_off_t down, apr_interval_time_t duration);

/**
 * A CONNECT was refused with this Proxy-Status error type.
 */
void ct_stats_refused(const char *type);

/**
 * A ConnectTunnelSNI check came to result (a ct_sni_result).
 */
void ct_stats_sni(int result);

/**
 * The name of refusal reason i (below CT_STATS_REFUSALS).
 */
const char *ct_stats_refusal_name(int i);

/**
 * The name of end reason i (1 to CT_STATS_ENDS - 1).
 */
const char *ct_stats_end_name(int i);

/**
 * Read every figure.
 */
void ct_stats_read(ct_stats_view *v);

/**
 * A tunnel moved from a worker to a reactor.
 */
void ct_stats_moved(void);

/**
 * A reactor tunnel moved to another child process (sender's side).
 */
void ct_stats_moved_out(void);

/**
 * A reactor tunnel arrived from another child process (receiver's side).
 */
void ct_stats_moved_in(void);

/**
 * This child refused a tunnel another child tried to move to it.
 */
void ct_stats_move_refused(void);

/**
 * A receiver takes move seq of reactor `reactor` of the child with
 * record owner: 0 when that sender cancelled it; else its mark is set
 * and *before is what it was (for ct_stats_mark_undo()).
 */
int ct_stats_mark_take(int owner, int reactor, apr_uint32_t seq,
                       apr_uint32_t *before);

/**
 * Put a mark back as it was before ct_stats_mark_take().
 */
void ct_stats_mark_undo(int owner, int reactor, apr_uint32_t before);

/**
 * This child's reactor heard no answer to move seq: 1 when the receiver
 * took the tunnel, else the move is cancelled (a late receiver refuses
 * it) and 0.
 */
int ct_stats_mark_cancel(int reactor, apr_uint32_t seq);

/**
 * The record of the child process pid (live_only: only while it runs,
 * else also once it exited until its counts are taken off), or 0.
 */
int ct_stats_proc_of(pid_t pid, int live_only);

/**
 * An end-of-tunnel record was dropped: the log program did not read.
 */
void ct_stats_log_dropped(void);

/**
 * A child started (+1) or finished (-1) draining its reactor tunnels.
 */
void ct_stats_draining(int delta);

#endif /* CT_STATS_H */
