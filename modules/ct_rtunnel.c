/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_rtunnel.c: relaying one handed-off tunnel inside a reactor.  Plain
 * sockets on both sides, each direction moved by the engine (ct_engine.c):
 * splice(2) through a pipe lent from here only while bytes flow, or
 * recv()/send() through the thread's scratch buffer, keeping the rest of
 * a partial write in a buffer from a free list.  A direction that holds
 * bytes reads no more until they are out (backpressure), so idle tunnels
 * hold neither buffer nor pipe.
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
 * Bandwidth hook, the engine's budget (ct_dir_env), given only for a
 * limited tunnel: the bytes direction d may read now, at most want.  0
 * when its budget is spent: it reads nothing, is not watched for
 * readability, and waits on the reactor's timer list until its wait's
 * resume.
 */
static apr_size_t bw_room(void *bctx, ct_dir *d, apr_size_t want)
{
    ct_rtunnel *t = bctx;
    int i = d == &t->dir[0] ? 0 : 1;
    apr_time_t now;
    apr_size_t n;

    now = apr_time_now();
    n = ct_bw_allow(&t->lim->bw, i, now, want);
    if (n == 0) {
        t->lim->wait[i].throttled = 1;
        t->lim->wait[i].resume = ct_bw_resume(&t->lim->bw, i, now);
        d->drained = 1;
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
        ct_rwait *w = &t->lim->wait[i];

        if (w->throttled && now >= w->resume) {
            w->throttled = 0;
            t->dir[i].drained = 0;
        }
        else if (w->throttled) {
            t->dir[i].drained = 1;
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
    ct_rlimit *l = t->lim;
    ct_rwait *up = &l->wait[0], *down = &l->wait[1];

    if (!up->throttled && !down->throttled) {
        ct_rtunnel_untime(t);
        return;
    }
    l->resume = !up->throttled ? down->resume
                : !down->throttled ? up->resume
                : up->resume < down->resume ? up->resume
                : down->resume;
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

static char *take_buf(void *ctx)
{
    return ct_rtunnel_take_buf(ctx)->data;
}

static void give_buf(void *ctx, char *data)
{
    ct_reactor *re = ctx;
    ct_rbuf *b = (ct_rbuf *)(void *)data;

    apr_thread_mutex_lock(re->lock);
    b->next = re->free_bufs;
    re->free_bufs = b;
    apr_thread_mutex_unlock(re->lock);
}

/* A pipe for a direction about to read; NULL if none can be had. */
static ct_pipe *take_pipe(void *ctx)
{
    ct_reactor *re = ctx;
    ct_rpipe *rp = re->free_pipes;

    if (rp) {
        re->free_pipes = rp->next;
        re->nfree_pipes--;
        return &rp->p;
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
    return &rp->p;
}

static void close_pipe(ct_reactor *re, ct_rpipe *rp)
{
    ct_pipe_close(&rp->p);
    ct_reactor_pipe_put();
    rp->next = re->spare_pipes;
    re->spare_pipes = rp;
}

/* An idle direction holds no pipe; one with bytes inside is closed. */
static void give_pipe(void *ctx, ct_pipe *pp)
{
    ct_reactor *re = ctx;
    ct_rpipe *rp = (ct_rpipe *)(void *)pp;

    if (pp->pending == 0 && re->nfree_pipes < CT_SPARE_PIPES) {
        rp->next = re->free_pipes;
        re->free_pipes = rp;
        re->nfree_pipes++;
        return;
    }
    close_pipe(re, rp);
}

/* What a direction of this tunnel borrows from its reactor. */
static void dir_env(ct_rtunnel *t, ct_dir_env *env)
{
    env->take_pipe = t->zero_copy ? take_pipe : NULL;
    env->give_pipe = give_pipe;
    env->take_buf = take_buf;
    env->give_buf = give_buf;
    env->ctx = t->owner;
    env->scratch = t->owner->scratch;
    env->bufsize = CT_REACTOR_BUFSIZE;
    env->pipesize = CT_REACTOR_PIPE;
    env->budget = t->lim ? bw_room : NULL;
    env->bctx = t;
}

/* One step of direction i; sets *moved when anything happened. */
static ct_end step(ct_rtunnel *t, int i, int *moved)
{
    ct_dir_env env;
    ct_dir_io io;

    dir_env(t, &env);
    memset(&io, 0, sizeof(io));
    io.src = t->fd[i];
    io.dst = t->fd[1 - i];
    io.nohalfclose = t->nohalfclose;
    switch (ct_dir_step(&t->dir[i], &env, &io)) {
    case CT_DIR_HALF_CLOSED:
        return CT_END_HALF_CLOSED;
    case CT_DIR_SRC_ERROR:
        return i == 0 ? CT_END_CLIENT_ERROR : CT_END_ORIGIN_ERROR;
    case CT_DIR_DST_ERROR:
        return i == 0 ? CT_END_ORIGIN_ERROR : CT_END_CLIENT_ERROR;
    case CT_DIR_OK:
        break;
    }
    bw_charge(t, i, io.in);
    if (io.in > 0 || io.out > 0) {
        t->last = apr_time_now();
        if (i == 1 && io.in > 0 && t->first_down == 0) {
            t->first_down = t->last;
        }
    }
    *moved |= io.moved;
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

        if (d->eof && !d->shut && ct_dir_held(d) == 0
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

        if (!in->eof && ct_dir_held(in) == 0
            && !(t->lim && t->lim->wait[side].throttled)) {
            events |= EPOLLIN;
        }
        if (ct_dir_held(out) > 0) {
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
    ct_dir_env env;
    int i;

    dir_env(t, &env);
    for (i = 0; i < 2; i++) {
        ct_dir_release(&t->dir[i], &env);
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
    t->dir[i].pipe = &rp->p;
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
