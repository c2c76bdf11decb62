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

#include "ct_private.h"
#include "ct_stats.h"

typedef struct {
    volatile apr_uint32_t live[2];      /* by ct_place */
    volatile apr_uint32_t draining;     /* children draining tunnels */
    volatile apr_uint64_t opened;
    volatile apr_uint64_t closed;
    volatile apr_uint64_t handed_off;
    volatile apr_uint64_t bytes_up;
    volatile apr_uint64_t bytes_down;
    volatile apr_uint64_t log_dropped;  /* end-of-tunnel records */
} ct_counters;

/* Where the shared segment's address survives restarts. */
#define CT_STATS_KEY "mod_connect_tunnel-counters"

/* Until post_config, and if the segment cannot be had, a private copy. */
static ct_counters ct_private_counters;
static ct_counters *ct_counts = &ct_private_counters;

apr_status_t ct_stats_post_config(apr_pool_t *pconf, server_rec *s)
{
    ct_counters **kept;
    apr_shm_t *shm;
    apr_status_t rv;

    (void)pconf;
    /* Old children drain their tunnels through a graceful restart, so
     * the counters outlive configurations: made once, in the process
     * pool, and cleared only when the MPM starts afresh. */
    kept = ap_retained_data_get(CT_STATS_KEY);
    if (kept != NULL) {
        ct_counts = *kept;
        if (!ct_restart_was_graceful()) {
            memset((void *)ct_counts, 0, sizeof(*ct_counts));
        }
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&shm, sizeof(ct_counters), NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00007)
                     "no shared memory for tunnel counters: each child "
                     "counts its own");
        ct_counts = &ct_private_counters;
        return APR_SUCCESS;
    }
    ct_counts = apr_shm_baseaddr_get(shm);
    memset((void *)ct_counts, 0, sizeof(*ct_counts));
    kept = ap_retained_data_create(CT_STATS_KEY, sizeof(*kept));
    *kept = (ct_counters *)ct_counts;
    return APR_SUCCESS;
}

int ct_restart_was_graceful(void)
{
    return ap_unixd_mpm_get_retained_data()->was_graceful;
}

void ct_stats_opened(ct_place place)
{
    apr_atomic_inc32(&ct_counts->live[place]);
    apr_atomic_inc64(&ct_counts->opened);
}

void ct_stats_closed(ct_place place, apr_off_t up, apr_off_t down)
{
    apr_atomic_dec32(&ct_counts->live[place]);
    apr_atomic_inc64(&ct_counts->closed);
    apr_atomic_add64(&ct_counts->bytes_up, (apr_uint64_t)up);
    apr_atomic_add64(&ct_counts->bytes_down, (apr_uint64_t)down);
}

void ct_stats_moved(void)
{
    apr_atomic_dec32(&ct_counts->live[CT_IN_WORKER]);
    apr_atomic_inc32(&ct_counts->live[CT_IN_REACTOR]);
    apr_atomic_inc64(&ct_counts->handed_off);
}

void ct_stats_log_dropped(void)
{
    apr_atomic_inc64(&ct_counts->log_dropped);
}

void ct_stats_draining(int delta)
{
    if (delta > 0) {
        apr_atomic_inc32(&ct_counts->draining);
    }
    else {
        apr_atomic_dec32(&ct_counts->draining);
    }
}

int ct_stats_status_hook(request_rec *r, int flags)
{
    apr_uint32_t worker = apr_atomic_read32(&ct_counts->live[CT_IN_WORKER]);
    apr_uint32_t reactor = apr_atomic_read32(
                               &ct_counts->live[CT_IN_REACTOR]);
    apr_uint32_t draining = apr_atomic_read32(&ct_counts->draining);
    apr_uint64_t opened = apr_atomic_read64(&ct_counts->opened);
    apr_uint64_t closed = apr_atomic_read64(&ct_counts->closed);
    apr_uint64_t moved = apr_atomic_read64(&ct_counts->handed_off);
    apr_uint64_t up = apr_atomic_read64(&ct_counts->bytes_up);
    apr_uint64_t down = apr_atomic_read64(&ct_counts->bytes_down);
    apr_uint64_t dropped = apr_atomic_read64(&ct_counts->log_dropped);

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
