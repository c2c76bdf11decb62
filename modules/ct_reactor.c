/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_reactor.c: per-child reactor threads that relay handed-off tunnels.
 *
 * Every tunnel in a worker pins a thread for its whole life; the MPM
 * closes a connection marked aborted without shutdown(), so a worker can
 * dup the client socket, give both sockets to a reactor and return.  A
 * reactor is a level-triggered epoll loop (the relaying of one tunnel is
 * in ct_rtunnel.c); idle tunnels hold only a record from a free list.
 * Timeouts are swept twice a second.  A graceful child exit waits for the
 * tunnels to end (bounded by ConnectTunnelDrainTimeout, or cut short by
 * the parent's SIGTERM); a hard stop closes them at once.
 */

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"

#include "ap_mpm.h"
#include "mpm_common.h"

#include "ct_private.h"
#include "ct_relay.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_limits.h"
#include "ct_reactor.h"
#include "ct_accesslog.h"
#include "ct_bandwidth.h"
#include "ct_migrate.h"

#if defined(__linux__)

#include "ct_reactor_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

static ct_reactor ct_reactors[CT_REACTOR_MAX];
static int ct_nreactors;
static volatile apr_uint32_t ct_reserved;  /* places taken, child-wide */
static apr_uint32_t ct_cap;                /* most places a child gives */
static volatile apr_uint32_t ct_stopping;
static volatile apr_uint32_t ct_moving;    /* tunnels go to other children */
static volatile apr_uint32_t ct_working;   /* reactors in service */
static volatile apr_uint32_t ct_pipes;     /* splice pipes open */
static apr_uint32_t ct_pipe_cap;           /* most pipes open at once */
static volatile sig_atomic_t ct_term;      /* SIGTERM while draining */
static int ct_graceful;
static apr_interval_time_t ct_drain;
static server_rec *ct_server;

static void record_end(ct_rtunnel *t)
{
    ct_tunnel_record rec;

    rec.client = t->client;
    rec.target = t->target;
    rec.address = t->address;
    rec.mode = "reactor";
    rec.end = ct_end_name(t->end);
    rec.up = t->up0 + (apr_off_t)t->dir[0].bytes;
    rec.down = t->down0 + (apr_off_t)t->dir[1].bytes;
    rec.start = t->start;
    rec.opened = t->opened;
    rec.last = t->last;
    rec.first = t->first_down;
    rec.stop = t->stop;
    ct_report_finished(ct_server, &rec, t->end,
                       t->end == CT_END_IDLE ? t->idle : t->lifetime);
    ct_stats_closed(CT_IN_REACTOR, t->end, rec.up, rec.down,
                    rec.stop - rec.start);
    if (t->alog) {
        ct_alog_finish(t->alog, rec.up, rec.down, rec.end, rec.first,
                       rec.stop);
        t->alog = NULL;
    }
}

/* Off the live list, onto this batch's dead list (see free_dead()); the
 * reactor's and the child's counts of tunnels drop by one. */
static void retire(ct_reactor *re, ct_rtunnel *t)
{
    if (t->prev) {
        t->prev->next = t->next;
    }
    else {
        re->live = t->next;
    }
    if (t->next) {
        t->next->prev = t->prev;
    }
    t->next = re->dead;
    re->dead = t;
    apr_atomic_dec32(&re->count);
    apr_atomic_dec32(&ct_reserved);
}

/* Close a tunnel now; its record is freed after the current batch. */
static void finish(ct_reactor *re, ct_rtunnel *t, ct_end end)
{
    int i;

    if (t->end != CT_END_NONE) {
        return;
    }
    t->end = end;
    /* Taken before the close, so that the times the record measures are
     * never longer than what the peers see. */
    t->stop = apr_time_now();
    for (i = 0; i < 2; i++) {
        ct_rtunnel_unwatch(t, i);
        close(t->fd[i]);
    }
    ct_rtunnel_release(t);
    ct_rtunnel_untime(t);
    record_end(t);
    ct_limits_release(&t->limits);
    if (t->lim) {
        ct_bandwidth_release(&t->lim->bw);
    }
    retire(re, t);
}

/* Records closed in a batch go back to the free list after it, so a
 * later event of the same batch never sees a reused record. */
static void free_dead(ct_reactor *re)
{
    ct_rtunnel *t, *next;

    if (re->dead == NULL) {
        return;
    }
    apr_thread_mutex_lock(re->lock);
    for (t = re->dead; t != NULL; t = next) {
        next = t->next;
        t->next = re->free;
        re->free = t;
        if (t->lim) {
            t->lim->next = re->free_lims;
            re->free_lims = t->lim;
            t->lim = NULL;
        }
    }
    apr_thread_mutex_unlock(re->lock);
    re->dead = NULL;
}

/* A tunnel moved to another child: it leaves this reactor as if it had
 * ended, with nothing closed, logged or given back (the receiver has its
 * sockets, its line and its counts). */
static void forget(ct_reactor *re, ct_rtunnel *t)
{
    t->end = CT_END_SHUTDOWN;
    ct_rtunnel_untime(t);
    retire(re, t);
}

/* The child exits gracefully: offer some tunnels to other children,
 * CT_MIGRATE_BATCH at a time so that the others keep moving meanwhile. */
static void move_some(ct_reactor *re)
{
    ct_rtunnel *t, *next;
    int n = 0;
    ct_move rc = CT_MOVE_DONE;

    for (t = re->live; t != NULL && n < CT_MIGRATE_BATCH; t = next, n++) {
        next = t->next;
        if (t->end != CT_END_NONE) {
            continue;
        }
        rc = ct_migrate_send(re, t);
        if (rc == CT_MOVE_DONE) {
            forget(re, t);
        }
        else if (rc != CT_MOVE_KEPT) {
            break;
        }
    }
    if (rc == CT_MOVE_OFF || re->live == NULL) {
        ct_migrate_sender_done(re);
    }
}

/* Take the tunnels workers queued and start relaying them. */
static void adopt(ct_reactor *re)
{
    ct_rtunnel *t, *next;
    apr_uint64_t value;
    ct_end end;

    if (read(re->evfd, &value, sizeof(value)) < 0 && errno != EAGAIN) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, ct_server,
                     CT_LOGNO(00071) "reactor: reading its eventfd failed");
    }
    apr_thread_mutex_lock(re->lock);
    t = re->incoming;
    re->incoming = NULL;
    apr_thread_mutex_unlock(re->lock);
    for (; t != NULL; t = next) {
        next = t->next;
        t->prev = NULL;
        t->next = re->live;
        if (re->live) {
            re->live->prev = t;
        }
        re->live = t;
        /* The client may have sent bytes behind the 200; the origin,
         * dialled just now, rarely has: epoll says when it does. */
        if ((end = ct_rtunnel_pump(t, CT_READ_CLIENT)) != CT_END_NONE) {
            finish(re, t, end);
        }
    }
}

static void on_event(ct_reactor *re, struct epoll_event *ev)
{
    ct_rside *s = ev->data.ptr;
    ct_rtunnel *t = s->t;
    ct_end end;

    if (t->end != CT_END_NONE) {
        return;
    }
    if (ev->events & EPOLLERR) {
        finish(re, t, s->side == 0 ? CT_END_CLIENT_ERROR
                                   : CT_END_ORIGIN_ERROR);
        return;
    }
    if (ev->events & EPOLLHUP) {
        /* Unread bytes may remain: keep reading to the end of stream.
         * But if it was read to the end and we have not finished writing
         * to it, its peer is gone: nothing more can reach it. */
        t->hup[s->side] = 1;
        if (t->dir[s->side].eof && !t->dir[1 - s->side].shut) {
            finish(re, t, s->side == 0 ? CT_END_CLIENT_ERROR
                                       : CT_END_ORIGIN_ERROR);
            return;
        }
    }
    end = ct_rtunnel_pump(t, ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)
                             ? (s->side == 0 ? CT_READ_CLIENT : CT_READ_ORIGIN)
                             : 0);
    if (end != CT_END_NONE) {
        finish(re, t, end);
    }
}

static void sweep(ct_reactor *re, apr_time_t now)
{
    ct_rtunnel *t, *next;

    for (t = re->live; t != NULL; t = next) {
        next = t->next;
        if (t->deadline && now >= t->deadline) {
            finish(re, t, CT_END_LIFETIME);
        }
        else if (now - t->last >= t->idle) {
            finish(re, t, CT_END_IDLE);
        }
    }
}

/*
 * The loop cannot go on: take the reactor out of service so that no
 * worker hands it another tunnel (they would get a 200 and then silence),
 * and close what it holds, queued tunnels included.
 */
static void out_of_service(ct_reactor *re)
{
    apr_uint32_t closed = 0;

    apr_thread_mutex_lock(re->lock);
    re->broken = 1;
    apr_thread_mutex_unlock(re->lock);
    apr_atomic_dec32(&ct_working);
    adopt(re);
    while (re->live) {
        finish(re, re->live, CT_END_INTERNAL);
        closed++;
    }
    free_dead(re);
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, ct_server, CT_LOGNO(00150)
                 "reactor %d: out of service, %u tunnels closed; %u "
                 "reactors left in this child", re->index, closed,
                 apr_atomic_read32(&ct_working));
}

/* Milliseconds epoll may wait: until the next sweep is due (events in
 * between must not push it back), or for ever with nothing to sweep. */
static int sweep_wait(const ct_reactor *re, apr_time_t last_sweep)
{
    apr_interval_time_t left = last_sweep + CT_SWEEP - apr_time_now();

    if (re->live == NULL) {
        return -1;
    }
    if (apr_atomic_read32(&ct_moving) && ct_migrate_sending(re)) {
        return ct_migrate_wait_ms(re);
    }
    if (left <= 0) {
        return 0;
    }
    /* Rounded up: waking a little early would only wait again. */
    return (int)((left + 999) / 1000);
}

/* Bandwidth hook: epoll waits no longer than the earliest end of a
 * tunnel's wait for its budget. */
static int loop_wait(const ct_reactor *re, apr_time_t last_sweep)
{
    int ms = sweep_wait(re, last_sweep);
    apr_time_t at = ct_rtunnel_next_timer(re);
    apr_interval_time_t left;
    int tms;

    if (at == 0) {
        return ms;
    }
    left = at - apr_time_now();
    tms = left <= 0 ? 0 : (int)((left + 999) / 1000);
    return ms < 0 || tms < ms ? tms : ms;
}

/* Bandwidth hook: pump the tunnels whose wait for their budget is over. */
static void run_timers(ct_reactor *re)
{
    apr_time_t now = apr_time_now();
    ct_rtunnel *t, *next;
    ct_end end;

    for (t = re->timed; t != NULL; t = next) {
        next = t->lim->tnext;
        if (t->lim->resume <= now
            && (end = ct_rtunnel_pump(t, 0)) != CT_END_NONE) {
            finish(re, t, end);
        }
    }
}

static void *APR_THREAD_FUNC reactor_main(apr_thread_t *thread, void *data)
{
    ct_reactor *re = data;
    struct epoll_event events[CT_EVENTS];
    apr_time_t last_sweep = apr_time_now(), now;
    int n, i;

    while (!apr_atomic_read32(&re->stop)) {
        n = epoll_wait(re->epfd, events, CT_EVENTS,
                       loop_wait(re, last_sweep));
        if (n < 0 && errno != EINTR) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, ct_server,
                         CT_LOGNO(00072) "reactor: epoll_wait failed");
            out_of_service(re);
            break;
        }
        for (i = 0; i < n; i++) {
            if (events[i].data.ptr == &re->wake) {
                adopt(re);
            }
            else {
                on_event(re, &events[i]);
            }
        }
        if (re->timed) {
            run_timers(re);
        }
        now = apr_time_now();
        if (now - last_sweep >= CT_SWEEP) {
            sweep(re, now);
            last_sweep = now;
        }
        if (apr_atomic_read32(&ct_moving) && ct_migrate_sending(re)) {
            move_some(re);
        }
        free_dead(re);
    }
    /* Stopped: whatever is left ends now (queued ones included). */
    adopt(re);
    while (re->live) {
        finish(re, re->live, CT_END_SHUTDOWN);
    }
    free_dead(re);
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* A place for one more tunnel; when the child stops, only for one that
 * a worker hands off and migration can move on (the MPM's last accepted
 * connections: kept in a worker, such a tunnel would hold the child). */
static int reserve(int moving_ok)
{
    if (ct_nreactors == 0 || apr_atomic_read32(&ct_working) == 0
        || (apr_atomic_read32(&ct_stopping)
            && !(moving_ok && ct_graceful && ct_migrate_enabled()))) {
        return 0;
    }
    if (apr_atomic_inc32(&ct_reserved) >= ct_cap) {
        apr_atomic_dec32(&ct_reserved);
        return 0;
    }
    return 1;
}

int ct_reactor_reserve(void)
{
    return reserve(1);
}

int ct_reactor_reserve_moved(void)
{
    return reserve(0);
}

void ct_reactor_unreserve(void)
{
    apr_atomic_dec32(&ct_reserved);
}

static ct_rtunnel *new_record(ct_reactor *re)
{
    ct_rtunnel *t;
    int i;

    apr_thread_mutex_lock(re->lock);
    if (re->free == NULL) {
        ct_rtunnel *slab = apr_pcalloc(re->pool, sizeof(*slab) * CT_SLAB);

        for (i = 0; i < CT_SLAB; i++) {
            slab[i].next = re->free;
            re->free = &slab[i];
        }
    }
    t = re->free;
    re->free = t->next;
    apr_thread_mutex_unlock(re->lock);
    memset(t, 0, sizeof(*t));
    return t;
}

int ct_reactor_pipe_get(void)
{
    if (apr_atomic_inc32(&ct_pipes) >= ct_pipe_cap) {
        apr_atomic_dec32(&ct_pipes);
        return 0;
    }
    return 1;
}

void ct_reactor_pipe_put(void)
{
    apr_atomic_dec32(&ct_pipes);
}

void ct_reactor_pipe_add(void)
{
    apr_atomic_inc32(&ct_pipes);
}

int ct_reactor_running(void)
{
    return ct_nreactors > 0;
}

/* The least loaded reactor in service (read without its lock: a hint
 * that ct_reactor_submit() checks under it), or NULL. */
static ct_reactor *least_loaded(void)
{
    ct_reactor *best = NULL;
    int i;

    for (i = 0; i < ct_nreactors; i++) {
        ct_reactor *re = &ct_reactors[i];

        if (!apr_atomic_read32(&re->broken)
            && (best == NULL || apr_atomic_read32(&re->count)
                                < apr_atomic_read32(&best->count))) {
            best = re;
        }
    }
    return best;
}

/* Queue a tunnel on a reactor still in service: 0 if it is not. */
static int enqueue(ct_reactor *re, ct_rtunnel *t)
{
    apr_uint64_t one = 1;

    apr_thread_mutex_lock(re->lock);
    if (re->broken) {
        apr_thread_mutex_unlock(re->lock);
        return 0;
    }
    t->owner = re;
    apr_atomic_inc32(&re->count);
    t->next = re->incoming;
    re->incoming = t;
    apr_thread_mutex_unlock(re->lock);
    if (write(re->evfd, &one, sizeof(one)) != sizeof(one)) {
        /* The counter is far from overflowing; the loop wakes anyway. */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, ct_server,
                     CT_LOGNO(00073) "reactor: waking it failed");
    }
    return 1;
}

/* Every reactor went out of service after the place was reserved: the
 * tunnel ends here, like one its reactor closed. */
static void abandon(ct_rtunnel *t)
{
    int i;

    t->end = CT_END_INTERNAL;
    for (i = 0; i < 2; i++) {
        close(t->fd[i]);
    }
    record_end(t);
    ct_limits_release(&t->limits);
    if (t->lim) {
        ct_bandwidth_release(&t->lim->bw);
    }
    apr_atomic_dec32(&ct_reserved);
}

ct_rtunnel *ct_reactor_record(void)
{
    ct_reactor *re = least_loaded();
    ct_rtunnel *t;
    int i;

    /* Records come from the first reactor's pool when none is left. */
    t = new_record(re ? re : &ct_reactors[0]);
    t->owner = re ? re : &ct_reactors[0];
    for (i = 0; i < 2; i++) {
        t->side[i].t = t;
        t->side[i].side = i;
    }
    return t;
}

void ct_reactor_queue(ct_rtunnel *t)
{
    ct_reactor *re = t->owner;
    int i;

    /* A reactor can go out of service meanwhile: try the next one (the
     * record and its buffer, all of one size, may change free lists). */
    for (i = 0; re != NULL && i <= CT_REACTOR_MAX; i++) {
        if (enqueue(re, t)) {
            return;
        }
        re = least_loaded();
    }
    ct_rtunnel_release(t);
    abandon(t);
}

apr_status_t ct_reactor_submit(const ct_handoff *h)
{
    ct_rtunnel *t = ct_reactor_record();

    t->fd[0] = h->client_fd;
    t->fd[1] = h->origin_fd;
    t->start = h->start;
    /* The clocks the worker started go on: a hand-off restarts neither. */
    t->opened = h->opened;
    t->last = h->last;
    t->first_down = h->first_down;
    t->idle = h->idle;
    t->lifetime = h->lifetime;
    t->deadline = h->lifetime > 0 ? t->opened + h->lifetime : 0;
    t->nohalfclose = h->nohalfclose;
    t->zero_copy = h->zero_copy;
    t->up0 = h->up;
    t->down0 = h->down;
    t->limits = h->limits;
    if (h->limited) {
        t->lim = ct_rtunnel_take_limit(t->owner);
        t->lim->bw = h->bw;
    }
    t->alog = h->alog;
    apr_cpystrn(t->client, h->client, sizeof(t->client));
    apr_cpystrn(t->target, h->target, sizeof(t->target));
    apr_cpystrn(t->address, h->address, sizeof(t->address));
    if (h->early_len > 0) {
        t->dir[0].pend = ct_rtunnel_take_buf(t->owner)->data;
        memcpy(t->dir[0].pend, h->early, h->early_len);
        t->dir[0].len = (apr_uint32_t)h->early_len;
    }
    ct_reactor_queue(t);
    return APR_SUCCESS;
}

/* Room for tunnels: the soft descriptor limit as high as it may go. */
static void size_cap(server_rec *s)
{
    struct rlimit rl;
    int threads = 0;
    rlim_t spare, room;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    (void)ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    spare = CT_FD_RESERVE + CT_FD_PER_WORKER * (rlim_t)threads;
    room = rl.rlim_cur > spare ? rl.rlim_cur - spare : 0;
    /* A quarter of the room is for splice pipes (two descriptors each,
     * the reactors' spare ones included): a direction whose sink does
     * not read keeps its pipe, and past this budget a direction copies
     * through a buffer instead.  The rest: two sockets a tunnel. */
    ct_pipe_cap = (apr_uint32_t)(room / 8);
    ct_cap = (apr_uint32_t)((room - 2 * (rlim_t)ct_pipe_cap) / 2);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CT_LOGNO(00074)
                 "reactor: up to %u tunnels per child (descriptor limit %lu)",
                 ct_cap, (unsigned long)rl.rlim_cur);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CT_LOGNO(00151)
                 "reactor: up to %u splice pipes per child, then buffers",
                 ct_pipe_cap);
}

static apr_status_t start_reactor(ct_reactor *re, apr_pool_t *pchild)
{
    struct epoll_event ev;
    apr_status_t rv;

    memset(re, 0, sizeof(*re));
    re->index = (int)(re - ct_reactors);
    re->epfd = re->evfd = -1;
    if ((rv = apr_pool_create(&re->pool, pchild)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&re->lock, APR_THREAD_MUTEX_DEFAULT,
                                         pchild)) != APR_SUCCESS) {
        return rv;
    }
    re->scratch = apr_palloc(re->pool, CT_REACTOR_BUFSIZE);
    re->epfd = epoll_create1(EPOLL_CLOEXEC);
    re->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (re->epfd < 0 || re->evfd < 0) {
        return errno;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &re->wake;
    if (epoll_ctl(re->epfd, EPOLL_CTL_ADD, re->evfd, &ev) != 0) {
        return errno;
    }
    return apr_thread_create(&re->thread, NULL, reactor_main, re, pchild);
}

static void stop_reactors(void)
{
    apr_uint64_t one = 1;
    apr_status_t rv;
    int i;

    for (i = 0; i < ct_nreactors; i++) {
        apr_atomic_set32(&ct_reactors[i].stop, 1);
        if (write(ct_reactors[i].evfd, &one, sizeof(one)) < 0) {
            continue;
        }
    }
    for (i = 0; i < ct_nreactors; i++) {
        (void)apr_thread_join(&rv, ct_reactors[i].thread);
        close(ct_reactors[i].epfd);
        close(ct_reactors[i].evfd);
        ct_rtunnel_close_pipes(&ct_reactors[i]);
    }
    ct_nreactors = 0;
}

/* Let the reactors offer their tunnels to live children (the reactor
 * threads do it: they alone touch their tunnels). */
static void start_moving(void)
{
    apr_uint64_t one = 1;
    int i;

    if (!ct_migrate_begin(ct_nreactors)) {
        return;
    }
    apr_atomic_set32(&ct_moving, 1);
    for (i = 0; i < ct_nreactors; i++) {
        if (write(ct_reactors[i].evfd, &one, sizeof(one)) < 0) {
            continue;
        }
    }
}

/* The parent's SIGTERM (see drain()); the MPM's own handler for it in a
 * child's main thread does nothing but interrupt a wait. */
static void on_term(int sig)
{
    (void)sig;
    ct_term = 1;
}

/*
 * Runs in the child's main thread after the workers are gone.  A graceful
 * exit (graceful restart or stop, idle retirement under MaxSpareThreads,
 * MaxConnectionsPerChild) waits here while the reactors keep relaying, as
 * stock keeps a worker busy; a hard stop does not wait.  httpd bounds
 * only a graceful stop, by GracefulShutdownTimeout, and does so from the
 * parent: at that deadline it sends the child SIGTERM (and SIGKILL some
 * 9 s later).  A child cannot tell a retirement from a graceful stop
 * before that (the same "graceful" message on the pipe of death, the
 * same generation), so it does not apply GracefulShutdownTimeout itself:
 * only ConnectTunnelDrainTimeout bounds the wait, and a SIGTERM ends it
 * at once, closing the tunnels cleanly before the SIGKILL.
 */
static apr_status_t drain(void *data)
{
    struct sigaction sa, old;
    apr_time_t until;
    int draining, caught;

    (void)data;
    apr_atomic_set32(&ct_stopping, 1);
    until = ct_drain > 0 ? apr_time_now() + ct_drain : 0;
    draining = ct_graceful && apr_atomic_read32(&ct_reserved) > 0;
    if (draining) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_term;
        sigemptyset(&sa.sa_mask);
        ct_term = 0;
        caught = sigaction(SIGTERM, &sa, &old) == 0;
        ct_stats_draining(1);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_server, CT_LOGNO(00075)
                     "reactor: child exiting, draining %u tunnels",
                     apr_atomic_read32(&ct_reserved));
        start_moving();
        while (apr_atomic_read32(&ct_reserved) > 0 && !ct_term
               && (until == 0 || apr_time_now() < until)) {
            apr_sleep(apr_time_from_msec(100));
        }
        if (ct_term || apr_atomic_read32(&ct_reserved) > 0) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_server,
                         CT_LOGNO(00152) "reactor: drain ended (%s), "
                         "closing %u tunnels", ct_term ? "SIGTERM"
                         : "ConnectTunnelDrainTimeout",
                         apr_atomic_read32(&ct_reserved));
        }
        if (caught) {
            (void)sigaction(SIGTERM, &old, NULL);
        }
        ct_stats_draining(-1);
    }
    stop_reactors();
    ct_migrate_end();
    /* The lines of the tunnels just closed, before mod_log_config
     * flushes and closes its logs (a cleanup of the same pool). */
    ct_alog_child_stop();
    return APR_SUCCESS;
}

void ct_reactor_child_init(apr_pool_t *pchild, server_rec *s, int threads,
                           int max, apr_interval_time_t drain_limit)
{
    apr_status_t rv;
    int i, threaded = 0;

    ct_server = s;
    ct_nreactors = 0;
    ct_stopping = 0;
    ct_moving = 0;
    ct_graceful = 0;
    ct_reserved = 0;
    ct_pipes = 0;
    ct_pipe_cap = 0;
    ct_working = 0;
    ct_drain = drain_limit;
    /* prefork cannot tell a graceful stop from a hard one: no hand-off. */
    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS
        || threaded == AP_MPMQ_NOT_SUPPORTED || threads <= 0) {
        return;
    }
    size_cap(s);
    if (max > 0 && (apr_uint32_t)max < ct_cap) {
        ct_cap = (apr_uint32_t)max;
    }
    for (i = 0; i < threads && i < CT_REACTOR_MAX; i++) {
        if ((rv = start_reactor(&ct_reactors[i], pchild)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00076)
                         "reactor: cannot start thread %d; tunnels stay in "
                         "workers beyond the threads started", i);
            break;
        }
        ct_nreactors++;
    }
    ct_working = (apr_uint32_t)ct_nreactors;
    if (ct_nreactors > 0) {
        ct_alog_child_init(pchild, s);
        apr_pool_pre_cleanup_register(pchild, NULL, drain);
    }
}

void ct_reactor_child_stopping(int graceful)
{
    ct_graceful = graceful;
    apr_atomic_set32(&ct_stopping, 1);
}

#else /* no epoll: every tunnel stays in its worker */

void ct_reactor_child_init(apr_pool_t *pchild, server_rec *s, int threads,
                           int max, apr_interval_time_t drain)
{
    (void)pchild;
    (void)s;
    (void)threads;
    (void)max;
    (void)drain;
}

void ct_reactor_child_stopping(int graceful)
{
    (void)graceful;
}

int ct_reactor_reserve(void)
{
    return 0;
}

void ct_reactor_unreserve(void)
{
}

apr_status_t ct_reactor_submit(const ct_handoff *h)
{
    (void)h;
    return APR_ENOTIMPL;
}

#endif
