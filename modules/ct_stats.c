/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_stats.c: tunnel counters shared by all children (atomics in an
 * anonymous shared memory segment, so no lock on the relay's path), read
 * by the mod_status section and the metrics handler (ct_metrics.c).
 * BusyWorkers no longer counts tunnels once they live in reactors; these
 * counters do.  Tunnels are counted when they open and end, never per
 * byte.
 */

#include "apr_atomic.h"
#include "apr_shm.h"

#include "unixd.h"
#include "ap_mpm.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_report.h"
#include "ct_stats.h"

/* Live figures of one child process (a record), and its state. */
typedef struct {
    volatile apr_uint32_t state;        /* CT_PROC_* */
    volatile apr_uint32_t pid;
    volatile apr_uint32_t live[2];      /* by ct_place */
    volatile apr_uint32_t draining;     /* draining its tunnels */
    /* The last tunnel each of its reactors moved to another child:
     * its sequence number, with CT_MARK_CANCELLED if it gave up. */
    volatile apr_uint32_t mark[CT_REACTOR_THREADS_MAX];
} ct_proc_rec;

#define CT_MARK_CANCELLED 0x80000000u

#define CT_PROC_FREE 0
#define CT_PROC_LIVE 1
#define CT_PROC_GONE 2      /* exited; other counts not yet taken off */

/* Records per scoreboard slot: a child that loses its slot while it
 * drains (graceful restart) lives on beside the slot's next child. */
#define CT_PROCS_PER_SLOT 2
#define CT_PROCS_SPARE 16

/* Record numbers must stay below ct_clients' CT_OWNER_ALL. */
#define CT_PROCS_MAX 0xfff0

/* One histogram in shared memory: counts per bucket (the last one above
 * every bound) and the sum of the values, in microseconds. */
typedef struct {
    volatile apr_uint64_t count[CT_STATS_BOUNDS_MAX + 1];
    volatile apr_uint64_t sum;
} ct_hist;

/* Server-wide counters: they only grow (until a restart that is not
 * graceful), whatever becomes of the children that counted. */
typedef struct {
    volatile apr_uint64_t opened;
    volatile apr_uint64_t closed;
    volatile apr_uint64_t handed_off;
    volatile apr_uint64_t bytes_up;
    volatile apr_uint64_t bytes_down;
    volatile apr_uint64_t log_dropped;  /* end-of-tunnel records */
    volatile apr_uint64_t moved;        /* to another child (migrated) */
    volatile apr_uint64_t move_refused; /* a receiving child said no */
    volatile apr_uint64_t refused[CT_STATS_REFUSALS];
    volatile apr_uint64_t ended[CT_STATS_ENDS];
    volatile apr_uint64_t sni[CT_SNI_RESULTS];
    ct_hist hist[CT_HISTS];
    apr_uint32_t nprocs;
} ct_counters;

/* Refusal reasons by index; the last stands for any other type. */
static const char *const ct_refusal_names[CT_STATS_REFUSALS] = {
    CT_PS_REQUEST_ERROR, CT_PS_REQUEST_DENIED, CT_PS_IP_PROHIBITED,
    CT_PS_IP_UNROUTABLE, CT_PS_DNS_ERROR, CT_PS_REFUSED, CT_PS_TIMEOUT,
    CT_PS_LIMIT, CT_PS_UNAVAILABLE, CT_PS_INTERNAL, CT_PS_LOOP, "other"
};

/* Histogram buckets, documented in docs/mod_connect_tunnel.html: setup
 * in milliseconds (a dial on a LAN to a slow DNS answer or an upstream
 * proxy), durations in seconds (a probe to a day-long tunnel). */
static const apr_interval_time_t ct_setup_bounds[] = {
    1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};
static const char *const ct_setup_labels[] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10"
};
static const apr_interval_time_t ct_duration_bounds[] = {
    100000, 1000000, 10000000, 60000000, 300000000, 1800000000,
    APR_INT64_C(3600000000), APR_INT64_C(14400000000),
    APR_INT64_C(86400000000)
};
static const char *const ct_duration_labels[] = {
    "0.1", "1", "10", "60", "300", "1800", "3600", "14400", "86400"
};

#define CT_NBOUNDS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* What survives a restart, kept with ap_retained_data_create(). */
typedef struct {
    ct_counters *counts;
    ct_proc_rec *procs;
} ct_stats_kept;

/* Where the shared segment's address survives restarts; named after its
 * layout, so that a graceful restart into a module of another layout
 * makes a new segment rather than misread the old one. */
#define CT_STATS_KEY "mod_connect_tunnel-counters-v4"

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
            memset((void *)p->mark, 0, sizeof(p->mark));
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

/* A child died with tunnels it had not closed: they end as "lost", so
 * that opened = ended + live holds, and their live figures go with the
 * record.  Once, when the record turns GONE; the child writes no more. */
static void count_lost(ct_proc_rec *p)
{
    apr_uint32_t n = apr_atomic_read32(&p->live[CT_IN_WORKER])
                     + apr_atomic_read32(&p->live[CT_IN_REACTOR]);

    if (n > 0) {
        apr_atomic_add64(&ct_counts->closed, n);
        apr_atomic_add64(&ct_counts->ended[CT_STATS_END_LOST], n);
    }
}

int ct_stats_proc_exited(pid_t pid)
{
    apr_uint32_t i;

    for (i = 1; i < ct_counts->nprocs; i++) {
        ct_proc_rec *p = &ct_procs[i];

        if (apr_atomic_read32(&p->pid) == (apr_uint32_t)pid
            && apr_atomic_cas32(&p->state, CT_PROC_GONE, CT_PROC_LIVE)
               == CT_PROC_LIVE) {
            count_lost(p);
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

/* Count value in the histogram of kind k. */
static void hist_add(ct_hist_kind k, apr_interval_time_t value)
{
    const apr_interval_time_t *bounds = ct_setup_bounds;
    int i, n = CT_NBOUNDS(ct_setup_bounds);

    if (k == CT_HIST_DURATION) {
        bounds = ct_duration_bounds;
        n = CT_NBOUNDS(ct_duration_bounds);
    }
    if (value < 0) {
        value = 0;      /* the clock went back */
    }
    for (i = 0; i < n && value > bounds[i]; i++) {
        continue;
    }
    apr_atomic_inc64(&ct_counts->hist[k].count[i]);
    apr_atomic_add64(&ct_counts->hist[k].sum, (apr_uint64_t)value);
}

void ct_stats_opened(ct_place place, apr_interval_time_t setup)
{
    apr_atomic_inc32(&ct_procs[ct_my_proc].live[place]);
    apr_atomic_inc64(&ct_counts->opened);
    hist_add(CT_HIST_SETUP, setup);
}

void ct_stats_closed(ct_place place, ct_end end, apr_off_t up,
                     apr_off_t down, apr_interval_time_t duration)
{
    if (end <= CT_END_NONE || end >= CT_STATS_END_LOST) {
        end = CT_END_INTERNAL;
    }
    apr_atomic_dec32(&ct_procs[ct_my_proc].live[place]);
    apr_atomic_inc64(&ct_counts->closed);
    apr_atomic_inc64(&ct_counts->ended[end]);
    apr_atomic_add64(&ct_counts->bytes_up, (apr_uint64_t)up);
    apr_atomic_add64(&ct_counts->bytes_down, (apr_uint64_t)down);
    hist_add(CT_HIST_DURATION, duration);
}

void ct_stats_refused(const char *type)
{
    int i;

    for (i = 0; i < CT_STATS_REFUSALS - 1; i++) {
        if (strcmp(type, ct_refusal_names[i]) == 0) {
            break;
        }
    }
    apr_atomic_inc64(&ct_counts->refused[i]);
}

void ct_stats_sni(int result)
{
    if (result >= 0 && result < CT_SNI_RESULTS) {
        apr_atomic_inc64(&ct_counts->sni[result]);
    }
}

const char *ct_stats_refusal_name(int i)
{
    return ct_refusal_names[i];
}

const char *ct_stats_end_name(int i)
{
    return i == CT_STATS_END_LOST ? "lost" : ct_end_name((ct_end)i);
}

void ct_stats_moved(void)
{
    apr_atomic_dec32(&ct_procs[ct_my_proc].live[CT_IN_WORKER]);
    apr_atomic_inc32(&ct_procs[ct_my_proc].live[CT_IN_REACTOR]);
    apr_atomic_inc64(&ct_counts->handed_off);
}

void ct_stats_moved_out(void)
{
    apr_atomic_dec32(&ct_procs[ct_my_proc].live[CT_IN_REACTOR]);
    apr_atomic_inc64(&ct_counts->moved);
}

void ct_stats_moved_in(void)
{
    apr_atomic_inc32(&ct_procs[ct_my_proc].live[CT_IN_REACTOR]);
}

void ct_stats_move_refused(void)
{
    apr_atomic_inc64(&ct_counts->move_refused);
}

int ct_stats_mark_take(int owner, int reactor, apr_uint32_t seq,
                       apr_uint32_t *before)
{
    volatile apr_uint32_t *m;
    apr_uint32_t old;

    if (owner <= 0 || (apr_uint32_t)owner >= ct_counts->nprocs
        || reactor < 0 || reactor >= CT_REACTOR_THREADS_MAX) {
        /* A sender with no record cannot ask: its tunnel is taken. */
        *before = 0;
        return 1;
    }
    m = &ct_procs[owner].mark[reactor];
    do {
        old = apr_atomic_read32(m);
        if (old == (seq | CT_MARK_CANCELLED)) {
            return 0;
        }
    } while (apr_atomic_cas32(m, seq, old) != old);
    *before = old;
    return 1;
}

void ct_stats_mark_undo(int owner, int reactor, apr_uint32_t before)
{
    if (owner > 0 && (apr_uint32_t)owner < ct_counts->nprocs
        && reactor >= 0 && reactor < CT_REACTOR_THREADS_MAX) {
        apr_atomic_set32(&ct_procs[owner].mark[reactor], before);
    }
}

int ct_stats_mark_cancel(int reactor, apr_uint32_t seq)
{
    volatile apr_uint32_t *m;
    apr_uint32_t old;

    if (ct_my_proc == 0) {
        /* No record: receivers take such tunnels without asking. */
        return 1;
    }
    m = &ct_procs[ct_my_proc].mark[reactor];
    do {
        old = apr_atomic_read32(m);
        if (old == seq) {
            return 1;
        }
    } while (apr_atomic_cas32(m, seq | CT_MARK_CANCELLED, old) != old);
    return 0;
}

int ct_stats_proc_of(pid_t pid, int live_only)
{
    apr_uint32_t i, state;

    for (i = 1; i < ct_counts->nprocs; i++) {
        ct_proc_rec *p = &ct_procs[i];

        state = apr_atomic_read32(&p->state);
        if (apr_atomic_read32(&p->pid) == (apr_uint32_t)pid
            && (state == CT_PROC_LIVE
                || (!live_only && state == CT_PROC_GONE))) {
            return (int)i;
        }
    }
    return 0;
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

static void hist_read(ct_hist_kind k, ct_hist_view *h)
{
    int i;

    if (k == CT_HIST_SETUP) {
        h->nbounds = CT_NBOUNDS(ct_setup_bounds);
        h->bounds = ct_setup_bounds;
        h->labels = ct_setup_labels;
    }
    else {
        h->nbounds = CT_NBOUNDS(ct_duration_bounds);
        h->bounds = ct_duration_bounds;
        h->labels = ct_duration_labels;
    }
    for (i = 0; i <= h->nbounds; i++) {
        h->count[i] = apr_atomic_read64(&ct_counts->hist[k].count[i]);
    }
    h->sum = apr_atomic_read64(&ct_counts->hist[k].sum);
}

void ct_stats_read(ct_stats_view *v)
{
    int i;

    memset(v, 0, sizeof(*v));
    sum_live(&v->live[CT_IN_WORKER], &v->live[CT_IN_REACTOR],
             &v->draining);
    v->opened = apr_atomic_read64(&ct_counts->opened);
    v->closed = apr_atomic_read64(&ct_counts->closed);
    v->handed_off = apr_atomic_read64(&ct_counts->handed_off);
    v->bytes_up = apr_atomic_read64(&ct_counts->bytes_up);
    v->bytes_down = apr_atomic_read64(&ct_counts->bytes_down);
    v->log_dropped = apr_atomic_read64(&ct_counts->log_dropped);
    v->moved = apr_atomic_read64(&ct_counts->moved);
    v->move_refused = apr_atomic_read64(&ct_counts->move_refused);
    for (i = 0; i < CT_STATS_REFUSALS; i++) {
        v->refused[i] = apr_atomic_read64(&ct_counts->refused[i]);
    }
    for (i = 1; i < CT_STATS_ENDS; i++) {
        v->ended[i] = apr_atomic_read64(&ct_counts->ended[i]);
    }
    for (i = 0; i < CT_SNI_RESULTS; i++) {
        v->sni[i] = apr_atomic_read64(&ct_counts->sni[i]);
    }
    hist_read(CT_HIST_SETUP, &v->hist[CT_HIST_SETUP]);
    hist_read(CT_HIST_DURATION, &v->hist[CT_HIST_DURATION]);
}
