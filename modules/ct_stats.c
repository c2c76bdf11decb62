/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_stats.c: tunnel counters shared by all children (atomics in an
 * anonymous shared memory segment, so no lock on the relay's path) and
 * the section mod_status shows.  BusyWorkers no longer counts tunnels
 * once they live in reactors; these counters do.
 */

#include "apr_atomic.h"
#include "apr_shm.h"

#include "http_protocol.h"
#include "mod_status.h"
#include "unixd.h"
#include "ap_mpm.h"

#include "ct_private.h"
#include "ct_stats.h"

/* Live figures of one child process (a record), and its state. */
typedef struct {
    volatile apr_uint32_t state;        /* CT_PROC_* */
    volatile apr_uint32_t pid;
    volatile apr_uint32_t live[2];      /* by ct_place */
    volatile apr_uint32_t draining;     /* draining its tunnels */
} ct_proc_rec;

#define CT_PROC_FREE 0
#define CT_PROC_LIVE 1
#define CT_PROC_GONE 2      /* exited; other counts not yet taken off */

/* Records per scoreboard slot: a child that loses its slot while it
 * drains (graceful restart) lives on beside the slot's next child. */
#define CT_PROCS_PER_SLOT 2
#define CT_PROCS_SPARE 16

/* Record numbers must stay below ct_clients' CT_OWNER_ALL. */
#define CT_PROCS_MAX 0xfff0

typedef struct {
    volatile apr_uint64_t opened;
    volatile apr_uint64_t closed;
    volatile apr_uint64_t handed_off;
    volatile apr_uint64_t bytes_up;
    volatile apr_uint64_t bytes_down;
    volatile apr_uint64_t log_dropped;  /* end-of-tunnel records */
    apr_uint32_t nprocs;
} ct_counters;

/* What survives a restart, kept with ap_retained_data_create(). */
typedef struct {
    ct_counters *counts;
    ct_proc_rec *procs;
} ct_stats_kept;

/* Where the shared segment's address survives restarts; named after its
 * layout, so that a graceful restart into a module of another layout
 * makes a new segment rather than misread the old one. */
#define CT_STATS_KEY "mod_connect_tunnel-counters-by-process-v2"

/* Until post_config, and if the segment cannot be had, a private copy:
 * one record, 0, that every tunnel of this process counts in. */
static ct_counters ct_private_counters = { .nprocs = 1 };
static ct_proc_rec ct_private_proc;
static ct_counters *ct_counts = &ct_private_counters;
static ct_proc_rec *ct_procs = &ct_private_proc;
static int ct_my_proc;

static apr_uint32_t procs_wanted(void)
{
    int slots = 0;
    apr_uint32_t n;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &slots) != APR_SUCCESS
        || slots < 1) {
        slots = 1;
    }
    n = 1 + (apr_uint32_t)slots * CT_PROCS_PER_SLOT + CT_PROCS_SPARE;
    return n < CT_PROCS_MAX ? n : CT_PROCS_MAX;
}

static void use_private(void)
{
    ct_counts = &ct_private_counters;
    ct_procs = &ct_private_proc;
}

apr_status_t ct_stats_post_config(apr_pool_t *pconf, server_rec *s)
{
    ct_stats_kept *kept;
    apr_uint32_t n = procs_wanted();
    apr_size_t size = sizeof(ct_counters) + n * sizeof(ct_proc_rec);
    apr_shm_t *shm;
    apr_status_t rv;

    (void)pconf;
    /* Old children drain their tunnels through a graceful restart, so
     * the counters outlive configurations: made once, in the process
     * pool, and cleared only when the MPM starts afresh (every child of
     * the old generation is gone then). */
    kept = ap_retained_data_get(CT_STATS_KEY);
    if (kept != NULL) {
        ct_counts = kept->counts;
        ct_procs = kept->procs;
        if (!ct_restart_was_graceful()) {
            n = ct_counts->nprocs;
            memset((void *)ct_counts, 0, sizeof(*ct_counts));
            memset((void *)ct_procs, 0, n * sizeof(ct_proc_rec));
            ct_counts->nprocs = n;
        }
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&shm, size, NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00007)
                     "no shared memory for tunnel counters: each child "
                     "counts its own");
        use_private();
        return APR_SUCCESS;
    }
    ct_counts = apr_shm_baseaddr_get(shm);
    memset((void *)ct_counts, 0, size);
    ct_counts->nprocs = n;
    ct_procs = (ct_proc_rec *)(ct_counts + 1);
    kept = ap_retained_data_create(CT_STATS_KEY, sizeof(*kept));
    kept->counts = ct_counts;
    kept->procs = ct_procs;
    return APR_SUCCESS;
}

void ct_stats_child_init(server_rec *s)
{
    apr_uint32_t i;

    for (i = 1; i < ct_counts->nprocs; i++) {
        ct_proc_rec *p = &ct_procs[i];

        if (apr_atomic_cas32(&p->state, CT_PROC_LIVE, CT_PROC_FREE)
            == CT_PROC_FREE) {
            apr_atomic_set32(&p->live[CT_IN_WORKER], 0);
            apr_atomic_set32(&p->live[CT_IN_REACTOR], 0);
            apr_atomic_set32(&p->draining, 0);
            apr_atomic_set32(&p->pid, (apr_uint32_t)getpid());
            ct_my_proc = (int)i;
            return;
        }
    }
    ct_my_proc = 0;
    if (ct_counts->nprocs > 1) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CT_LOGNO(00100)
                     "all %u tunnel count records are taken: this "
                     "child's tunnels will not be taken off the counts "
                     "should it die without closing them",
                     ct_counts->nprocs - 1);
    }
}

int ct_stats_nprocs(void)
{
    return (int)ct_counts->nprocs;
}

int ct_stats_proc(void)
{
    return ct_my_proc;
}

int ct_stats_proc_exited(pid_t pid)
{
    apr_uint32_t i;

    for (i = 1; i < ct_counts->nprocs; i++) {
        ct_proc_rec *p = &ct_procs[i];

        if (apr_atomic_read32(&p->pid) == (apr_uint32_t)pid
            && apr_atomic_cas32(&p->state, CT_PROC_GONE, CT_PROC_LIVE)
               == CT_PROC_LIVE) {
            return (int)i;
        }
    }
    return 0;
}

int ct_stats_proc_gone(int i)
{
    return apr_atomic_read32(&ct_procs[i].state) == CT_PROC_GONE;
}

void ct_stats_proc_free(int i)
{
    ct_proc_rec *p = &ct_procs[i];

    apr_atomic_set32(&p->live[CT_IN_WORKER], 0);
    apr_atomic_set32(&p->live[CT_IN_REACTOR], 0);
    apr_atomic_set32(&p->draining, 0);
    apr_atomic_set32(&p->pid, 0);
    apr_atomic_set32(&p->state, CT_PROC_FREE);
}

int ct_restart_was_graceful(void)
{
    return ap_unixd_mpm_get_retained_data()->was_graceful;
}

void ct_stats_opened(ct_place place)
{
    apr_atomic_inc32(&ct_procs[ct_my_proc].live[place]);
    apr_atomic_inc64(&ct_counts->opened);
}

void ct_stats_closed(ct_place place, apr_off_t up, apr_off_t down)
{
    apr_atomic_dec32(&ct_procs[ct_my_proc].live[place]);
    apr_atomic_inc64(&ct_counts->closed);
    apr_atomic_add64(&ct_counts->bytes_up, (apr_uint64_t)up);
    apr_atomic_add64(&ct_counts->bytes_down, (apr_uint64_t)down);
}

void ct_stats_moved(void)
{
    apr_atomic_dec32(&ct_procs[ct_my_proc].live[CT_IN_WORKER]);
    apr_atomic_inc32(&ct_procs[ct_my_proc].live[CT_IN_REACTOR]);
    apr_atomic_inc64(&ct_counts->handed_off);
}

void ct_stats_log_dropped(void)
{
    apr_atomic_inc64(&ct_counts->log_dropped);
}

void ct_stats_draining(int delta)
{
    if (delta > 0) {
        apr_atomic_inc32(&ct_procs[ct_my_proc].draining);
    }
    else {
        apr_atomic_dec32(&ct_procs[ct_my_proc].draining);
    }
}

/* Live figures summed over the processes there are; those of a process
 * that exited are left out. */
static void sum_live(apr_uint32_t *worker, apr_uint32_t *reactor,
                     apr_uint32_t *draining)
{
    apr_uint32_t i;

    *worker = *reactor = *draining = 0;
    for (i = 0; i < ct_counts->nprocs; i++) {
        ct_proc_rec *p = &ct_procs[i];

        if (i == 0 || apr_atomic_read32(&p->state) == CT_PROC_LIVE) {
            *worker += apr_atomic_read32(&p->live[CT_IN_WORKER]);
            *reactor += apr_atomic_read32(&p->live[CT_IN_REACTOR]);
            *draining += apr_atomic_read32(&p->draining);
        }
    }
}

int ct_stats_status_hook(request_rec *r, int flags)
{
    apr_uint32_t worker, reactor, draining;
    apr_uint64_t opened = apr_atomic_read64(&ct_counts->opened);
    apr_uint64_t closed = apr_atomic_read64(&ct_counts->closed);
    apr_uint64_t moved = apr_atomic_read64(&ct_counts->handed_off);
    apr_uint64_t up = apr_atomic_read64(&ct_counts->bytes_up);
    apr_uint64_t down = apr_atomic_read64(&ct_counts->bytes_down);
    apr_uint64_t dropped = apr_atomic_read64(&ct_counts->log_dropped);

    sum_live(&worker, &reactor, &draining);
    if (flags & AP_STATUS_SHORT) {
        ap_rprintf(r, "ConnectTunnelsLive: %u\n"
                   "ConnectTunnelsInWorkers: %u\n"
                   "ConnectTunnelsInReactors: %u\n"
                   "ConnectTunnelsDrainingChildren: %u\n"
                   "ConnectTunnelsOpened: %" APR_UINT64_T_FMT "\n"
                   "ConnectTunnelsClosed: %" APR_UINT64_T_FMT "\n"
                   "ConnectTunnelsHandedOff: %" APR_UINT64_T_FMT "\n"
                   "ConnectTunnelsBytesUp: %" APR_UINT64_T_FMT "\n"
                   "ConnectTunnelsBytesDown: %" APR_UINT64_T_FMT "\n"
                   "ConnectTunnelsLogDropped: %" APR_UINT64_T_FMT "\n",
                   worker + reactor, worker, reactor, draining, opened,
                   closed, moved, up, down, dropped);
        return OK;
    }
    ap_rputs("<hr />\n<h2>CONNECT tunnels (mod_connect_tunnel)</h2>\n"
             "<table border=\"0\">\n", r);
    ap_rprintf(r, "<tr><th align=\"left\">Live</th><td>%u (%u in workers, "
               "%u in reactors)</td></tr>\n", worker + reactor, worker,
               reactor);
    ap_rprintf(r, "<tr><th align=\"left\">Children draining</th>"
               "<td>%u</td></tr>\n", draining);
    ap_rprintf(r, "<tr><th align=\"left\">Opened / closed</th><td>%"
               APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td></tr>\n",
               opened, closed);
    ap_rprintf(r, "<tr><th align=\"left\">Handed off to reactors</th><td>%"
               APR_UINT64_T_FMT "</td></tr>\n", moved);
    ap_rprintf(r, "<tr><th align=\"left\">Bytes up / down</th><td>%"
               APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td></tr>\n",
               up, down);
    ap_rprintf(r, "<tr><th align=\"left\">Tunnel log records dropped</th>"
               "<td>%" APR_UINT64_T_FMT "</td></tr>\n", dropped);
    ap_rputs("</table>\n", r);
    return OK;
}
