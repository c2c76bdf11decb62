/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_rtunnel.c: relaying one handed-off tunnel inside a reactor.  Plain
 * sockets on both sides: splice(2) through a pipe lent only while bytes
 * flow, or read()/send() through the thread's scratch buffer, keeping the
 * rest of a partial write in a buffer from a free list.  A direction that
 * holds bytes reads no more until they are out (backpressure), so idle
 * tunnels hold neither buffer nor pipe.
 */

#if defined(__linux__)

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>

#include "apr_atomic.h"

#include "ct_private.h"
#include "ct_reactor_int.h"

void ct_rtunnel_unwatch(ct_rtunnel *t, int side)
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
            ct_rtunnel_unwatch(t, side);
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

/*
 * Bandwidth hook: the bytes direction i may read now, at most want.  0
 * when its budget is spent: it reads nothing, is not watched for
 * readability, and waits on the reactor's timer list until its
 * dresume[i].
 */
static apr_size_t bw_room(ct_rtunnel *t, int i, apr_size_t want)
{
    ct_rdir *d = &t->dir[i];
    apr_time_t now;
    apr_size_t n;

    if (t->lim == NULL) {
        return want;
    }
    now = apr_time_now();
    n = ct_bw_allow(&t->lim->bw, i, now, want);
    if (n == 0) {
        d->throttled = 1;
        d->drained = 1;
        t->lim->dresume[i] = ct_bw_resume(&t->lim->bw, i, now);
    }
    return n;
}

/* Bandwidth hook: charge n bytes direction i read. */
static void bw_charge(ct_rtunnel *t, int i, apr_size_t n)
{
    if (t->lim && n > 0) {
        ct_bw_charge(&t->lim->bw, i, apr_time_now(), n);
    }
}

/* Bandwidth hook, as a pump starts: a direction whose wait is over reads
 * again; one still waiting reads nothing, whatever epoll said. */
static void bw_wake(ct_rtunnel *t)
{
    apr_time_t now = apr_time_now();
    int i;

    for (i = 0; i < 2; i++) {
        ct_rdir *d = &t->dir[i];

        if (d->throttled && now >= t->lim->dresume[i]) {
            d->throttled = 0;
            d->drained = 0;
        }
        else if (d->throttled) {
            d->drained = 1;
        }
    }
}

void ct_rtunnel_untime(ct_rtunnel *t)
{
    ct_rlimit *l = t->lim;

    if (l == NULL || !l->timed) {
        return;
    }
    if (l->tprev) {
        l->tprev->lim->tnext = l->tnext;
    }
    else {
        t->owner->timed = l->tnext;
    }
    if (l->tnext) {
        l->tnext->lim->tprev = l->tprev;
    }
    l->tnext = l->tprev = NULL;
    l->timed = 0;
}

/* Bandwidth hook, as a pump ends: on the timer list while a direction
 * waits for its budget, off it otherwise. */
static void bw_timer(ct_rtunnel *t)
{
    ct_rdir *up = &t->dir[0], *down = &t->dir[1];
    ct_rlimit *l = t->lim;

    if (!up->throttled && !down->throttled) {
        ct_rtunnel_untime(t);
        return;
    }
    l->resume = !up->throttled ? l->dresume[1]
                : !down->throttled ? l->dresume[0]
                : l->dresume[0] < l->dresume[1] ? l->dresume[0]
                : l->dresume[1];
    if (!l->timed) {
        l->tprev = NULL;
        l->tnext = t->owner->timed;
        if (l->tnext) {
            l->tnext->lim->tprev = t;
        }
        t->owner->timed = t;
        l->timed = 1;
    }
}

/* A walk of the list: it holds only tunnels out of budget right now. */
apr_time_t ct_rtunnel_next_timer(const ct_reactor *re)
{
    const ct_rtunnel *t;
    apr_time_t at = 0;

    for (t = re->timed; t != NULL; t = t->lim->tnext) {
        if (at == 0 || t->lim->resume < at) {
            at = t->lim->resume;
        }
    }
    return at;
}

/* Buffers are shared by the reactor thread and submitting workers. */
ct_rbuf *ct_rtunnel_take_buf(ct_reactor *re)
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

ct_rlimit *ct_rtunnel_take_limit(ct_reactor *re)
{
    ct_rlimit *l;

    apr_thread_mutex_lock(re->lock);
    l = re->free_lims;
    if (l) {
        re->free_lims = l->next;
    }
    else {
        l = apr_palloc(re->pool, sizeof(*l));
    }
    apr_thread_mutex_unlock(re->lock);
    memset(l, 0, sizeof(*l));
    return l;
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
    /* A blocked direction keeps its pipe: without a budget, tunnels
     * whose peers do not read would take the child's descriptors. */
    if (!ct_reactor_pipe_get()) {
        return NULL;
    }
    if ((rp = re->spare_pipes) != NULL) {
        re->spare_pipes = rp->next;
    }
    else {
        apr_thread_mutex_lock(re->lock);
        rp = apr_palloc(re->pool, sizeof(*rp));
        apr_thread_mutex_unlock(re->lock);
    }
    if (ct_pipe_open_raw(&rp->p, CT_REACTOR_PIPE) != APR_SUCCESS) {
        rp->next = re->spare_pipes;
        re->spare_pipes = rp;
        ct_reactor_pipe_put();
        return NULL;
    }
    return rp;
}

static void close_pipe(ct_reactor *re, ct_rpipe *rp)
{
    ct_pipe_close(&rp->p);
    ct_reactor_pipe_put();
    rp->next = re->spare_pipes;
    re->spare_pipes = rp;
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
    close_pipe(re, rp);
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

/* Bytes were just read from d's source: note the origin's first. */
static APR_INLINE void first_byte(ct_rtunnel *t, const ct_rdir *d)
{
    if (t->first_down == 0 && d == &t->dir[1]) {
        t->first_down = t->last;
    }
}

/* Read into a pipe and pass it on; the pipe goes back when idle. */
static ct_end splice_step(ct_rtunnel *t, ct_rdir *d, int src, int dst,
                          ct_end src_err, ct_end dst_err, apr_size_t max,
                          int *moved)
{
    apr_size_t n;
    apr_status_t rv;
    apr_size_t want;
    int err;

    want = d->pipe->p.capacity - d->pipe->p.pending;
    want = max < want ? max : want;
    rv = ct_splice_in(&d->pipe->p, src, want, &n);
    if (rv == APR_SUCCESS) {
        bw_charge(t, d == &t->dir[0] ? 0 : 1, n);
        *moved = 1;
        t->last = apr_time_now();
        first_byte(t, d);
        err = flush_pipe(t, d, dst);
        if (err != 0 && err != EAGAIN) {
            return dst_err;
        }
        if (n < want) {
            /* The socket is dry: ask it again on the next readiness, not
             * now (one syscall saved per message), and keep no pipe. */
            d->drained = 1;
            if (d->pipe->p.pending == 0) {
                give_pipe(t->owner, d);
            }
        }
        return CT_END_NONE;
    }
    if (APR_STATUS_IS_EOF(rv)) {
        d->eof = 1;
        *moved = 1;
    }
    else if (APR_STATUS_IS_EAGAIN(rv)) {
        d->drained = 1;
    }
    else {
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
    apr_size_t room;
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
        /* Its source was not watched while bytes were held: read it. */
        d->drained = 0;
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
        d->drained = 0;
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
    if (d->drained) {
        return CT_END_NONE;
    }
    room = bw_room(t, i, t->zero_copy ? CT_REACTOR_PIPE : CT_REACTOR_BUFSIZE);
    if (room == 0) {
        return CT_END_NONE;
    }
    if (t->zero_copy && (d->pipe || (d->pipe = take_pipe(t->owner)))) {
        return splice_step(t, d, src, dst, src_err, dst_err, room, moved);
    }
    room = room < CT_REACTOR_BUFSIZE ? room : CT_REACTOR_BUFSIZE;
    n = recv(src, t->owner->scratch, room, MSG_DONTWAIT);
    if (n == 0) {
        d->eof = 1;
        *moved = 1;
        return CT_END_NONE;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            d->drained = 1;
            return CT_END_NONE;
        }
        return src_err;
    }
    *moved = 1;
    t->last = apr_time_now();
    first_byte(t, d);
    bw_charge(t, i, (apr_size_t)n);
    d->drained = (apr_size_t)n < room;
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
        d->pend = ct_rtunnel_take_buf(t->owner);
        d->off = 0;
        d->len = (apr_uint32_t)(n - put);
        memcpy(d->pend->data, t->owner->scratch + put, d->len);
    }
    return CT_END_NONE;
}

/* Move what can move; register what each socket waits for. */
ct_end ct_rtunnel_pump(ct_rtunnel *t, unsigned int readable)
{
    ct_end end;
    int round, moved = 1, side, rv;

    t->dir[0].drained = !(readable & CT_READ_CLIENT);
    t->dir[1].drained = !(readable & CT_READ_ORIGIN);
    if (t->lim) {
        bw_wake(t);
    }
    for (round = 0; moved && round < CT_ROUNDS; round++) {
        moved = 0;
        if ((end = step(t, 0, &moved)) != CT_END_NONE
            || (end = step(t, 1, &moved)) != CT_END_NONE) {
            return end;
        }
    }
    /* An end of stream seen in the last round waits for no event: pass
     * it on now, or it would wait for the idle timeout. */
    for (side = 0; side < 2; side++) {
        ct_rdir *d = &t->dir[side];

        if (d->eof && !d->shut && held(d) == 0
            && (end = step(t, side, &moved)) != CT_END_NONE) {
            return end;
        }
    }
    if (t->dir[0].shut && t->dir[1].shut) {
        return CT_END_CLOSED;
    }
    for (side = 0; side < 2; side++) {
        ct_rdir *in = &t->dir[side], *out = &t->dir[1 - side];
        apr_uint32_t events = 0;

        if (!in->eof && held(in) == 0 && !in->throttled) {
            events |= EPOLLIN;
        }
        if (held(out) > 0) {
            events |= EPOLLOUT;
        }
        if ((rv = set_events(t, side, events)) != 0) {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, NULL,
                         CT_LOGNO(00070) "reactor: epoll_ctl failed");
            return CT_END_INTERNAL;
        }
    }
    if (t->lim) {
        bw_timer(t);
    }
    /* Still more to read after CT_ROUNDS: level-triggered epoll says so
     * again at once. */
    return CT_END_NONE;
}

void ct_rtunnel_release(ct_rtunnel *t)
{
    int i;

    for (i = 0; i < 2; i++) {
        give_buf(t->owner, &t->dir[i]);
        give_pipe(t->owner, &t->dir[i]);
    }
}

void ct_rtunnel_adopt_pipe(ct_rtunnel *t, int i, int rfd, int wfd,
                           apr_size_t pending, apr_size_t capacity)
{
    ct_reactor *re = t->owner;
    ct_rpipe *rp;

    apr_thread_mutex_lock(re->lock);
    rp = apr_palloc(re->pool, sizeof(*rp));
    apr_thread_mutex_unlock(re->lock);
    rp->next = NULL;
    rp->p.rfd = rfd;
    rp->p.wfd = wfd;
    rp->p.pending = pending;
    rp->p.capacity = capacity;
    ct_reactor_pipe_add();
    t->dir[i].pipe = rp;
}

void ct_rtunnel_close_pipes(ct_reactor *re)
{
    ct_rpipe *rp, *next;

    for (rp = re->free_pipes; rp != NULL; rp = next) {
        next = rp->next;
        close_pipe(re, rp);
    }
    re->free_pipes = NULL;
    re->nfree_pipes = 0;
}

#endif /* __linux__ */
