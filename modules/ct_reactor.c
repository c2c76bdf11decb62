/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_reactor.c: per-child reactor threads that relay handed-off tunnels.
 *
 * Every tunnel in a worker pins a thread for its whole life; the MPM
 * closes a connection marked aborted without shutdown(), so a worker can
 * dup the client socket, give both sockets to a reactor and return.  A
 * reactor is a level-triggered epoll loop over plain sockets.  Idle
 * tunnels hold only a record from a free list: the read buffer belongs to
 * the thread, and a buffer is taken from a free list only while a write
 * is partial (backpressure: the source is not read until it drains).
 * Timeouts are swept twice a second.  A graceful child exit waits for the
 * tunnels to end (bounded); a hard stop closes them at once.
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
#include "ct_splice.h"
#include "ct_reactor.h"

#if defined(__linux__)

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* Largest number of reactor threads a child runs. */
#define CT_REACTOR_MAX 16

/* Events taken from epoll per wake-up. */
#define CT_EVENTS 256

/* How often timeouts are checked. */
#define CT_SWEEP apr_time_from_msec(500)

/* Records are carved from the reactor's pool this many at a time. */
#define CT_SLAB 64

/* Descriptors a child keeps for everything but handed-off tunnels. */
#define CT_FD_RESERVE 256

/* Steps of a tunnel's two directions per wake-up. */
#define CT_ROUNDS 16

typedef struct ct_reactor ct_reactor;
typedef struct ct_rtunnel ct_rtunnel;

/* A buffer holding the rest of a partial write. */
typedef struct ct_rbuf {
    struct ct_rbuf *next;       /* on the free list */
    char data[CT_REACTOR_BUFSIZE];
} ct_rbuf;

/* Pipes kept for reuse by a reactor, beyond which they are closed. */
#define CT_SPARE_PIPES 32

/* A pipe for splicing, lent to a direction only while bytes flow. */
typedef struct ct_rpipe {
    struct ct_rpipe *next;
    ct_pipe p;
} ct_rpipe;

/* One direction: dir[0] reads the client and writes the origin. */
typedef struct {
    ct_rpipe *pipe;             /* zero-copy, while bytes flow */
    ct_rbuf *pend;
    apr_uint32_t off;
    apr_uint32_t len;
    apr_uint64_t bytes;
    unsigned int eof:1;
    unsigned int shut:1;
} ct_rdir;

/* What epoll hands back: the tunnel and which of its sockets. */
typedef struct {
    ct_rtunnel *t;
    int side;
} ct_rside;

struct ct_rtunnel {
    ct_rtunnel *next;           /* live list or free list */
    ct_rtunnel *prev;
    ct_reactor *owner;
    int fd[2];                  /* client, origin */
    apr_uint32_t ev[2];         /* events registered, or 0 */
    int registered[2];
    int hup[2];                 /* the socket hung up: only reads left */
    ct_rside side[2];
    ct_rdir dir[2];
    apr_time_t start;
    apr_time_t last;            /* last payload byte either way */
    apr_time_t deadline;        /* maximum lifetime, or 0 */
    apr_interval_time_t idle;
    apr_interval_time_t lifetime;
    apr_off_t up0;              /* moved before the hand-off */
    apr_off_t down0;
    int nohalfclose;
    int zero_copy;
    ct_limit_hold limits;       /* given back when it ends */
    ct_end end;                 /* CT_END_NONE while it runs */
    char client[48];
    char target[CT_REACTOR_TEXT];
    char address[64];
};

struct ct_reactor {
    apr_thread_t *thread;
    apr_pool_t *pool;           /* records and buffers, under lock */
    apr_thread_mutex_t *lock;
    int epfd;
    int evfd;                   /* wakes the loop: new tunnels, stop */
    ct_rside wake;              /* epoll data of evfd */
    ct_rtunnel *incoming;       /* submitted, not yet adopted (lock) */
    ct_rtunnel *free;           /* free records (lock) */
    ct_rbuf *free_bufs;         /* (lock) */
    ct_rpipe *free_pipes;       /* open, empty: reactor thread only */
    ct_rpipe *spare_pipes;      /* closed records for reuse */
    int nfree_pipes;
    ct_rtunnel *live;           /* reactor thread only */
    ct_rtunnel *dead;           /* closed in this batch, freed after it */
    char *scratch;
    volatile apr_uint32_t count;    /* tunnels it holds */
    volatile apr_uint32_t stop;     /* close everything and exit */
};

static ct_reactor ct_reactors[CT_REACTOR_MAX];
static int ct_nreactors;
static volatile apr_uint32_t ct_reserved;  /* places taken, child-wide */
static apr_uint32_t ct_cap;                /* most places a child gives */
static volatile apr_uint32_t ct_stopping;
static int ct_graceful;
static apr_interval_time_t ct_drain;
static server_rec *ct_server;

static void unregister(ct_rtunnel *t, int side)
{
    if (t->registered[side]) {
        (void)epoll_ctl(t->owner->epfd, EPOLL_CTL_DEL, t->fd[side], NULL);
        t->registered[side] = 0;
    }
}

static int set_events(ct_rtunnel *t, int side, apr_uint32_t events)
{
    struct epoll_event ev;
    int op;

    if (t->hup[side]) {
        /* A hung-up socket reports HUP for as long as it is watched:
         * watch it only while there is still something to read. */
        events &= EPOLLIN;
        if (events == 0) {
            unregister(t, side);
            return 0;
        }
    }
    if (t->registered[side] && t->ev[side] == events) {
        return 0;
    }
    ev.events = events;
    ev.data.ptr = &t->side[side];
    op = t->registered[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(t->owner->epfd, op, t->fd[side], &ev) != 0) {
        return errno;
    }
    t->registered[side] = 1;
    t->ev[side] = events;
    return 0;
}

/* Buffers are shared by the reactor thread and submitting workers. */
static ct_rbuf *take_buf(ct_reactor *re)
{
    ct_rbuf *b;

    apr_thread_mutex_lock(re->lock);
    b = re->free_bufs;
    if (b) {
        re->free_bufs = b->next;
    }
    else {
        b = apr_palloc(re->pool, sizeof(*b));
    }
    apr_thread_mutex_unlock(re->lock);
    return b;
}

static void give_buf(ct_reactor *re, ct_rdir *d)
{
    if (d->pend) {
        apr_thread_mutex_lock(re->lock);
        d->pend->next = re->free_bufs;
        re->free_bufs = d->pend;
        apr_thread_mutex_unlock(re->lock);
        d->pend = NULL;
    }
    d->off = d->len = 0;
}

/* A pipe for a direction about to read; NULL if none can be had. */
static ct_rpipe *take_pipe(ct_reactor *re)
{
    ct_rpipe *rp = re->free_pipes;

    if (rp) {
        re->free_pipes = rp->next;
        re->nfree_pipes--;
        return rp;
    }
    if ((rp = re->spare_pipes) != NULL) {
        re->spare_pipes = rp->next;
    }
    else {
        apr_thread_mutex_lock(re->lock);
        rp = apr_palloc(re->pool, sizeof(*rp));
        apr_thread_mutex_unlock(re->lock);
    }
    if (ct_pipe_open_raw(&rp->p, CT_REACTOR_BUFSIZE) != APR_SUCCESS) {
        rp->next = re->spare_pipes;
        re->spare_pipes = rp;
        return NULL;
    }
    return rp;
}

/* An idle direction holds no pipe; one with bytes inside is closed. */
static void give_pipe(ct_reactor *re, ct_rdir *d)
{
    ct_rpipe *rp = d->pipe;

    if (rp == NULL) {
        return;
    }
    d->pipe = NULL;
    if (rp->p.pending == 0 && re->nfree_pipes < CT_SPARE_PIPES) {
        rp->next = re->free_pipes;
        re->free_pipes = rp;
        re->nfree_pipes++;
        return;
    }
    ct_pipe_close(&rp->p);
    rp->next = re->spare_pipes;
    re->spare_pipes = rp;
}

/* Bytes a direction holds for its sink. */
static apr_size_t held(const ct_rdir *d)
{
    return d->len + (d->pipe ? d->pipe->p.pending : 0);
}

/* Write what the direction's pipe holds; 0, EAGAIN or an error. */
static int flush_pipe(ct_rtunnel *t, ct_rdir *d, int dst)
{
    apr_size_t n;
    apr_status_t rv;

    while (d->pipe && d->pipe->p.pending > 0) {
        rv = ct_splice_out(&d->pipe->p, dst, &n);
        d->bytes += n;
        if (n > 0) {
            t->last = apr_time_now();
        }
        if (rv != APR_SUCCESS) {
            return APR_STATUS_IS_EAGAIN(rv) ? EAGAIN : rv;
        }
        if (n == 0) {
            return EAGAIN;
        }
    }
    return 0;
}

/* Read into a pipe and pass it on; the pipe goes back when idle. */
static ct_end splice_step(ct_rtunnel *t, ct_rdir *d, int src, int dst,
                          ct_end src_err, ct_end dst_err, int *moved)
{
    apr_size_t n;
    apr_status_t rv;
    int err;

    rv = ct_splice_in(&d->pipe->p, src, &n);
    if (rv == APR_SUCCESS) {
        *moved = 1;
        t->last = apr_time_now();
        err = flush_pipe(t, d, dst);
        return err == 0 || err == EAGAIN ? CT_END_NONE : dst_err;
    }
    if (APR_STATUS_IS_EOF(rv)) {
        d->eof = 1;
        *moved = 1;
    }
    else if (!APR_STATUS_IS_EAGAIN(rv)) {
        return src_err;
    }
    give_pipe(t->owner, d);
    return CT_END_NONE;
}

/* Write what the direction holds; 0, EAGAIN or an error. */
static int flush_dir(ct_rtunnel *t, ct_rdir *d, int dst)
{
    while (d->len > 0) {
        ssize_t n = send(dst, d->pend->data + d->off, d->len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            return errno == EINTR ? 0 : errno;
        }
        d->off += (apr_uint32_t)n;
        d->len -= (apr_uint32_t)n;
        d->bytes += (apr_uint64_t)n;
        t->last = apr_time_now();
    }
    give_buf(t->owner, d);
    return 0;
}

/* One step of direction i; sets *moved when anything happened. */
static ct_end step(ct_rtunnel *t, int i, int *moved)
{
    ct_rdir *d = &t->dir[i];
    int src = t->fd[i], dst = t->fd[1 - i];
    ct_end src_err = i == 0 ? CT_END_CLIENT_ERROR : CT_END_ORIGIN_ERROR;
    ct_end dst_err = i == 0 ? CT_END_ORIGIN_ERROR : CT_END_CLIENT_ERROR;
    ssize_t n, put;
    int rv;

    if (d->len > 0) {
        rv = flush_dir(t, d, dst);
        if (rv != 0 && rv != EAGAIN && rv != EWOULDBLOCK) {
            return dst_err;
        }
        if (d->len > 0) {
            return CT_END_NONE;
        }
        *moved = 1;
    }
    if (d->pipe && d->pipe->p.pending > 0) {
        rv = flush_pipe(t, d, dst);
        if (rv != 0 && rv != EAGAIN) {
            return dst_err;
        }
        if (d->pipe->p.pending > 0) {
            return CT_END_NONE;
        }
        *moved = 1;
    }
    if (d->eof) {
        give_pipe(t->owner, d);
        if (!d->shut) {
            if (t->nohalfclose) {
                return CT_END_HALF_CLOSED;
            }
            (void)shutdown(dst, SHUT_WR);
            d->shut = 1;
            *moved = 1;
        }
        return CT_END_NONE;
    }
    if (t->zero_copy && (d->pipe || (d->pipe = take_pipe(t->owner)))) {
        return splice_step(t, d, src, dst, src_err, dst_err, moved);
    }
    n = recv(src, t->owner->scratch, CT_REACTOR_BUFSIZE, MSG_DONTWAIT);
    if (n == 0) {
        d->eof = 1;
        *moved = 1;
        return CT_END_NONE;
    }
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
               ? CT_END_NONE : src_err;
    }
    *moved = 1;
    t->last = apr_time_now();
    put = send(dst, t->owner->scratch, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (put < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return dst_err;
        }
        put = 0;
    }
    d->bytes += (apr_uint64_t)put;
    if (put < n) {
        /* The sink is full: keep the rest, read no more until it drains. */
        d->pend = take_buf(t->owner);
        d->off = 0;
        d->len = (apr_uint32_t)(n - put);
        memcpy(d->pend->data, t->owner->scratch + put, d->len);
    }
    return CT_END_NONE;
}

/* Move what can move; register what each socket waits for. */
static ct_end pump(ct_rtunnel *t)
{
    ct_end end;
    int round, moved = 1, side, rv;

    for (round = 0; moved && round < CT_ROUNDS; round++) {
        moved = 0;
        if ((end = step(t, 0, &moved)) != CT_END_NONE
            || (end = step(t, 1, &moved)) != CT_END_NONE) {
            return end;
        }
    }
    if (t->dir[0].shut && t->dir[1].shut) {
        return CT_END_CLOSED;
    }
    for (side = 0; side < 2; side++) {
        ct_rdir *in = &t->dir[side], *out = &t->dir[1 - side];
        apr_uint32_t events = 0;

        if (!in->eof && held(in) == 0) {
            events |= EPOLLIN;
        }
        if (held(out) > 0) {
            events |= EPOLLOUT;
        }
        if ((rv = set_events(t, side, events)) != 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, ct_server,
                         CT_LOGNO(00070) "reactor: epoll_ctl failed");
            return CT_END_INTERNAL;
        }
    }
    /* Still more to read after CT_ROUNDS: level-triggered epoll says so
     * again at once. */
    return CT_END_NONE;
}

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
    rec.stop = apr_time_now();
    ct_report_finished(ct_server, &rec, t->end,
                       t->end == CT_END_IDLE ? t->idle : t->lifetime);
    ct_stats_closed(CT_IN_REACTOR, rec.up, rec.down);
}

/* Close a tunnel now; its record is freed after the current batch. */
static void finish(ct_reactor *re, ct_rtunnel *t, ct_end end)
{
    int i;

    if (t->end != CT_END_NONE) {
        return;
    }
    t->end = end;
    for (i = 0; i < 2; i++) {
        unregister(t, i);
        close(t->fd[i]);
        give_buf(re, &t->dir[i]);
        give_pipe(re, &t->dir[i]);
    }
    record_end(t);
    ct_limits_release(&t->limits);
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
    }
    apr_thread_mutex_unlock(re->lock);
    re->dead = NULL;
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
        if ((end = pump(t)) != CT_END_NONE) {
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
    end = pump(t);
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

static void *APR_THREAD_FUNC reactor_main(apr_thread_t *thread, void *data)
{
    ct_reactor *re = data;
    struct epoll_event events[CT_EVENTS];
    apr_time_t last_sweep = apr_time_now(), now;
    int n, i;

    while (!apr_atomic_read32(&re->stop)) {
        n = epoll_wait(re->epfd, events, CT_EVENTS,
                       re->live ? (int)apr_time_as_msec(CT_SWEEP) : -1);
        if (n < 0 && errno != EINTR) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, errno, ct_server,
                         CT_LOGNO(00072) "reactor: epoll_wait failed");
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
        now = apr_time_now();
        if (now - last_sweep >= CT_SWEEP) {
            sweep(re, now);
            last_sweep = now;
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

int ct_reactor_reserve(void)
{
    if (ct_nreactors == 0 || apr_atomic_read32(&ct_stopping)) {
        return 0;
    }
    if (apr_atomic_inc32(&ct_reserved) >= ct_cap) {
        apr_atomic_dec32(&ct_reserved);
        return 0;
    }
    return 1;
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

static ct_reactor *least_loaded(void)
{
    ct_reactor *best = &ct_reactors[0];
    int i;

    for (i = 1; i < ct_nreactors; i++) {
        if (apr_atomic_read32(&ct_reactors[i].count)
            < apr_atomic_read32(&best->count)) {
            best = &ct_reactors[i];
        }
    }
    return best;
}

apr_status_t ct_reactor_submit(const ct_handoff *h)
{
    ct_reactor *re = least_loaded();
    ct_rtunnel *t = new_record(re);
    apr_uint64_t one = 1;
    int i;

    t->owner = re;
    t->fd[0] = h->client_fd;
    t->fd[1] = h->origin_fd;
    for (i = 0; i < 2; i++) {
        t->side[i].t = t;
        t->side[i].side = i;
    }
    t->start = h->start;
    t->last = apr_time_now();
    t->idle = h->idle;
    t->lifetime = h->lifetime;
    t->deadline = h->lifetime > 0 ? t->last + h->lifetime : 0;
    t->nohalfclose = h->nohalfclose;
    t->zero_copy = h->zero_copy;
    t->up0 = h->up;
    t->down0 = h->down;
    t->limits = h->limits;
    apr_cpystrn(t->client, h->client, sizeof(t->client));
    apr_cpystrn(t->target, h->target, sizeof(t->target));
    apr_cpystrn(t->address, h->address, sizeof(t->address));
    if (h->early_len > 0) {
        t->dir[0].pend = take_buf(re);
        memcpy(t->dir[0].pend->data, h->early, h->early_len);
        t->dir[0].len = (apr_uint32_t)h->early_len;
    }
    apr_atomic_inc32(&re->count);
    apr_thread_mutex_lock(re->lock);
    t->next = re->incoming;
    re->incoming = t;
    apr_thread_mutex_unlock(re->lock);
    if (write(re->evfd, &one, sizeof(one)) != sizeof(one)) {
        /* The counter is far from overflowing; the loop wakes anyway. */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, ct_server,
                     CT_LOGNO(00073) "reactor: waking it failed");
    }
    return APR_SUCCESS;
}

/* Room for tunnels: the soft descriptor limit as high as it may go. */
static void size_cap(server_rec *s)
{
    struct rlimit rl;
    int threads = 0;
    rlim_t spare;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    (void)ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads);
    spare = CT_FD_RESERVE + 4 * (rlim_t)threads;
    ct_cap = rl.rlim_cur > spare * 2 ? (apr_uint32_t)((rl.rlim_cur - spare)
                                                      / 2) : 0;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CT_LOGNO(00074)
                 "reactor: up to %u tunnels per child (descriptor limit %lu)",
                 ct_cap, (unsigned long)rl.rlim_cur);
}

static apr_status_t start_reactor(ct_reactor *re, apr_pool_t *pchild)
{
    struct epoll_event ev;
    apr_status_t rv;

    memset(re, 0, sizeof(*re));
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
        ct_rpipe *rp;

        (void)apr_thread_join(&rv, ct_reactors[i].thread);
        close(ct_reactors[i].epfd);
        close(ct_reactors[i].evfd);
        for (rp = ct_reactors[i].free_pipes; rp != NULL; rp = rp->next) {
            ct_pipe_close(&rp->p);
        }
    }
    ct_nreactors = 0;
}

/*
 * Runs in the child's main thread after the workers are gone.  A graceful
 * exit (restart, graceful stop, idle reaping, MaxConnectionsPerChild)
 * waits here while the reactors keep relaying, as stock keeps a worker
 * busy; a hard stop does not wait.
 */
static apr_status_t drain(void *data)
{
    apr_interval_time_t limit = ct_drain;
    apr_time_t until;
    int draining;

    (void)data;
    apr_atomic_set32(&ct_stopping, 1);
    if (ap_graceful_shutdown_timeout > 0
        && (limit == 0
            || apr_time_from_sec(ap_graceful_shutdown_timeout) < limit)) {
        limit = apr_time_from_sec(ap_graceful_shutdown_timeout);
    }
    until = limit > 0 ? apr_time_now() + limit : 0;
    draining = ct_graceful && apr_atomic_read32(&ct_reserved) > 0;
    if (draining) {
        ct_stats_draining(1);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_server, CT_LOGNO(00075)
                     "reactor: child exiting, draining %u tunnels",
                     apr_atomic_read32(&ct_reserved));
    }
    while (draining && apr_atomic_read32(&ct_reserved) > 0
           && (until == 0 || apr_time_now() < until)) {
        apr_sleep(apr_time_from_msec(100));
    }
    if (draining) {
        ct_stats_draining(-1);
    }
    stop_reactors();
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
    ct_graceful = 0;
    ct_reserved = 0;
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
    if (ct_nreactors > 0) {
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
