/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_engine.c: the raw-descriptor direction (see ct_engine.h).  Written
 * once for the worker's zero-copy path and for the reactor, so that
 * partial writes, backpressure, half-close and accounting behave the same
 * wherever a tunnel runs.  Descriptors are used as they are: the driver
 * makes them non-blocking; every send() also says MSG_DONTWAIT.
 */

#include <errno.h>
#include <string.h>
#include <sys/types.h>
#include <sys/socket.h>

#include "ct_engine.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
#ifndef MSG_DONTWAIT
#define MSG_DONTWAIT 0
#endif

#define CT_SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

static int would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

apr_size_t ct_dir_held(const ct_dir *d)
{
    return d->len + (d->pipe ? d->pipe->pending : 0);
}

static void give_buf(ct_dir *d, const ct_dir_env *env)
{
    if (d->pend && env->give_buf) {
        env->give_buf(env->ctx, d->pend);
    }
    d->pend = NULL;
    d->off = d->len = 0;
}

/* An idle direction holds no pipe, where its driver lends pipes. */
static void give_pipe(ct_dir *d, const ct_dir_env *env)
{
    if (d->pipe && env->give_pipe) {
        env->give_pipe(env->ctx, d->pipe);
        d->pipe = NULL;
    }
}

void ct_dir_release(ct_dir *d, const ct_dir_env *env)
{
    give_buf(d, env);
    give_pipe(d, env);
}

/* Write the rest of a partial write; APR_SUCCESS once it is all out. */
static apr_status_t flush_buf(ct_dir *d, const ct_dir_env *env,
                              ct_dir_io *io)
{
    ssize_t n;

    while (d->len > 0) {
        n = send(io->dst, d->pend + d->off, d->len, CT_SEND_FLAGS);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return would_block(errno) ? APR_EAGAIN : errno;
        }
        d->off += (apr_uint32_t)n;
        d->len -= (apr_uint32_t)n;
        d->bytes += (apr_off_t)n;
        io->out += (apr_size_t)n;
    }
    give_buf(d, env);
    return APR_SUCCESS;
}

/* Write what the pipe holds; APR_SUCCESS once it is empty. */
static apr_status_t flush_pipe(ct_dir *d, ct_dir_io *io)
{
    apr_size_t n;
    apr_status_t rv;

    while (d->pipe && d->pipe->pending > 0) {
        rv = ct_splice_out(d->pipe, io->dst, &n);
        d->bytes += (apr_off_t)n;
        io->out += n;
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (n == 0) {
            return APR_EAGAIN;
        }
    }
    return APR_SUCCESS;
}

/* Write what is held: 1 when it is all out, 0 when the sink is full, -1
 * on an error (io->rv). */
static int flush_held(ct_dir *d, const ct_dir_env *env, ct_dir_io *io)
{
    apr_status_t rv;

    if (ct_dir_held(d) == 0) {
        return 1;
    }
    rv = d->len > 0 ? flush_buf(d, env, io) : APR_SUCCESS;
    if (rv == APR_SUCCESS) {
        rv = flush_pipe(d, io);
    }
    if (rv == APR_SUCCESS) {
        /* The source was not watched while bytes were held: read it. */
        d->drained = 0;
        io->moved = 1;
        return 1;
    }
    if (APR_STATUS_IS_EAGAIN(rv)) {
        d->want_write = 1;
        return 0;
    }
    io->rv = rv;
    return -1;
}

/*
 * The most a read may take now.  A byte budget (a bandwidth limit) caps
 * it here, the one place every read of the engine asks, before a pipe is
 * taken; 0 leaves the direction waiting for the budget instead of the
 * source.
 */
static apr_size_t read_room(ct_dir *d, const ct_dir_env *env)
{
    apr_size_t room = d->pipe ? d->pipe->capacity - d->pipe->pending
                      : env->take_pipe ? env->pipesize : env->bufsize;

    return env->budget ? env->budget(env->bctx, d, room) : room;
}

/* What a source that had nothing, or an end of stream, leaves. */
static ct_dir_state source_done(ct_dir *d, const ct_dir_env *env,
                                apr_status_t rv, ct_dir_io *io)
{
    if (APR_STATUS_IS_EOF(rv)) {
        d->eof = 1;
        io->moved = 1;
    }
    else if (APR_STATUS_IS_EAGAIN(rv)) {
        d->drained = 1;
        d->want_read = 1;
    }
    else {
        io->rv = rv;
        return CT_DIR_SRC_ERROR;
    }
    give_pipe(d, env);
    return CT_DIR_OK;
}

/* Splice the source into the pipe and on to the sink at once. */
static ct_dir_state splice_fill(ct_dir *d, const ct_dir_env *env,
                                apr_size_t room, ct_dir_io *io)
{
    apr_size_t n;
    apr_status_t rv;

    if (room > d->pipe->capacity - d->pipe->pending) {
        room = d->pipe->capacity - d->pipe->pending;
    }
    rv = ct_splice_in(d->pipe, io->src, room, &n);
    if (rv != APR_SUCCESS) {
        return source_done(d, env, rv, io);
    }
    io->in += n;
    io->moved = 1;
    rv = flush_pipe(d, io);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        io->rv = rv;
        return CT_DIR_DST_ERROR;
    }
    d->want_write = d->pipe->pending > 0;
    if (n < room) {
        /* The socket is dry: ask it again on its next readiness, not now
         * (a read that finds nothing is a system call per message). */
        d->drained = 1;
        if (d->pipe->pending == 0) {
            d->want_read = 1;
            give_pipe(d, env);
        }
    }
    return CT_DIR_OK;
}

/* Read the source into the scratch buffer and send it; keep the rest. */
static ct_dir_state copy_fill(ct_dir *d, const ct_dir_env *env,
                              apr_size_t room, ct_dir_io *io)
{
    ssize_t n, put;

    if (room > env->bufsize) {
        room = env->bufsize;
    }
    do {
        n = recv(io->src, env->scratch, room, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        return source_done(d, env, n == 0 ? APR_EOF
                           : would_block(errno) ? APR_EAGAIN : errno, io);
    }
    io->in += (apr_size_t)n;
    io->moved = 1;
    d->drained = (apr_size_t)n < room;
    do {
        put = send(io->dst, env->scratch, (size_t)n, CT_SEND_FLAGS);
    } while (put < 0 && errno == EINTR);
    if (put < 0) {
        if (!would_block(errno)) {
            io->rv = errno;
            return CT_DIR_DST_ERROR;
        }
        put = 0;
    }
    d->bytes += (apr_off_t)put;
    io->out += (apr_size_t)put;
    if (put < n) {
        /* The sink is full: keep the rest, read no more until it drains. */
        d->pend = env->take_buf(env->ctx);
        d->off = 0;
        d->len = (apr_uint32_t)(n - put);
        memcpy(d->pend, env->scratch + put, d->len);
        d->want_write = 1;
    }
    else {
        d->want_read = d->drained;
    }
    return CT_DIR_OK;
}

ct_dir_state ct_dir_step(ct_dir *d, const ct_dir_env *env, ct_dir_io *io)
{
    apr_size_t room;
    int rc;

    d->want_read = d->want_write = 0;
    if ((rc = flush_held(d, env, io)) <= 0) {
        return rc < 0 ? CT_DIR_DST_ERROR : CT_DIR_OK;
    }
    if (d->eof) {
        give_pipe(d, env);
        if (!d->shut) {
            if (io->nohalfclose) {
                return CT_DIR_HALF_CLOSED;
            }
            /* A peer that already left cannot be told; the other way
             * may go on. */
            (void)shutdown(io->dst, SHUT_WR);
            d->shut = 1;
            io->moved = 1;
        }
        return CT_DIR_OK;
    }
    if (d->drained) {
        d->want_read = 1;
        return CT_DIR_OK;
    }
    if ((room = read_room(d, env)) == 0) {
        /* Out of budget: an idle direction holds no pipe meanwhile. */
        give_pipe(d, env);
        return CT_DIR_OK;
    }
    if (d->pipe == NULL && env->take_pipe) {
        d->pipe = env->take_pipe(env->ctx);
    }
    if (d->pipe) {
        return splice_fill(d, env, room, io);
    }
    if (env->scratch && env->take_buf) {
        return copy_fill(d, env, room, io);
    }
    d->want_read = 1;
    return CT_DIR_OK;
}
