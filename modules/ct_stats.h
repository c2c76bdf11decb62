/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_stats.h: server-wide tunnel counters in shared memory, and their
 * section in mod_status.  Tunnels handed to a reactor are invisible to the
 * MPM's scoreboard, so the module counts them itself.  Live figures are
 * kept per child process, so that those of a child that died without its
 * cleanups stop counting when the parent reaps it.
 */

#ifndef CT_STATS_H
#define CT_STATS_H

#include "httpd.h"

/* Where a tunnel runs. */
typedef enum {
    CT_IN_WORKER = 0,
    CT_IN_REACTOR = 1
} ct_place;

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
 * A tunnel opened in place.
 */
void ct_stats_opened(ct_place place);

/**
 * A tunnel that ran in place closed after moving up and down bytes.
 */
void ct_stats_closed(ct_place place, apr_off_t up, apr_off_t down);

/**
 * A tunnel moved from a worker to a reactor.
 */
void ct_stats_moved(void);

/**
 * An end-of-tunnel record was dropped: the log program did not read.
 */
void ct_stats_log_dropped(void);

/**
 * A child started (+1) or finished (-1) draining its reactor tunnels.
 */
void ct_stats_draining(int delta);

/**
 * mod_status's hook: the tunnel section of the status page.
 */
int ct_stats_status_hook(request_rec *r, int flags);

#endif /* CT_STATS_H */
