/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_splice.c: the zero-copy path.  A byte read through the filter path
 * is copied from the kernel into a buffer and back; splice(2) moves page
 * references from the source socket into a pipe and from the pipe into the
 * sink socket instead, which is what lets one tunnel run at the machine's
 * limit.  Each pipe holds at most its capacity, so backpressure is the
 * same as on the filter path: a full pipe stops reading the source.
 */

#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#endif

#include <errno.h>

#include "ct_splice.h"

#if defined(__linux__) && defined(SPLICE_F_MOVE)

#define CT_SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

static apr_status_t pipe_cleanup(void *data)
{
    ct_pipe *pp = data;

    if (pp->rfd >= 0) {
        close(pp->rfd);
    }
    if (pp->wfd >= 0) {
        close(pp->wfd);
    }
    pp->rfd = pp->wfd = -1;
    return APR_SUCCESS;
}

void ct_pipe_close(ct_pipe *pp)
{
    (void)pipe_cleanup(pp);
}

apr_status_t ct_pipe_open(apr_pool_t *p, ct_pipe *pp, apr_size_t size)
{
    apr_status_t rv = ct_pipe_open_raw(pp, size);

    if (rv == APR_SUCCESS) {
        apr_pool_cleanup_register(p, pp, pipe_cleanup,
                                  apr_pool_cleanup_null);
    }
    return rv;
}

apr_status_t ct_pipe_open_raw(ct_pipe *pp, apr_size_t size)
{
    int fds[2];
    int got;

    pp->rfd = pp->wfd = -1;
    pp->pending = 0;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        return errno;
    }
    pp->rfd = fds[0];
    pp->wfd = fds[1];
    /* A larger pipe means fewer calls; the kernel may round or refuse. */
    got = fcntl(pp->wfd, F_SETPIPE_SZ, (int)size);
    if (got < 0) {
        got = fcntl(pp->wfd, F_GETPIPE_SZ);
    }
    pp->capacity = got > 0 ? (apr_size_t)got : 4096;
    return APR_SUCCESS;
}

apr_status_t ct_splice_in(ct_pipe *pp, int src, apr_size_t len,
                          apr_size_t *n)
{
    ssize_t got;

    *n = 0;
    if (len > pp->capacity - pp->pending) {
        len = pp->capacity - pp->pending;
    }
    do {
        got = splice(src, NULL, pp->wfd, NULL, len, CT_SPLICE_FLAGS);
    } while (got < 0 && errno == EINTR);
    if (got > 0) {
        pp->pending += (apr_size_t)got;
        *n = (apr_size_t)got;
        return APR_SUCCESS;
    }
    if (got == 0) {
        return APR_EOF;
    }
    return errno == EWOULDBLOCK ? APR_EAGAIN : errno;
}

apr_status_t ct_splice_out(ct_pipe *pp, int dst, apr_size_t *n)
{
    ssize_t put;

    *n = 0;
    do {
        put = splice(pp->rfd, NULL, dst, NULL, pp->pending, CT_SPLICE_FLAGS);
    } while (put < 0 && errno == EINTR);
    if (put >= 0) {
        pp->pending -= (apr_size_t)put;
        *n = (apr_size_t)put;
        return APR_SUCCESS;
    }
    return errno == EWOULDBLOCK ? APR_EAGAIN : errno;
}

/* Splice one byte from a socket into a pipe and out to another socket. */
int ct_splice_supported(void)
{
    static int known = -1;
    int sv[2] = { -1, -1 }, out[2] = { -1, -1 };
    ct_pipe pp = { -1, -1, 0, 4096 };
    char c = 'x';
    apr_size_t n;
    int fds[2];

    if (known >= 0) {
        return known;
    }
    known = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0
        && socketpair(AF_UNIX, SOCK_STREAM, 0, out) == 0
        && pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
        pp.rfd = fds[0];
        pp.wfd = fds[1];
        known = write(sv[0], &c, 1) == 1
                && ct_splice_in(&pp, sv[1], 1, &n) == APR_SUCCESS
                && ct_splice_out(&pp, out[0], &n) == APR_SUCCESS
                && n == 1
                && read(out[1], &c, 1) == 1 && c == 'x';
        pipe_cleanup(&pp);
    }
    for (n = 0; n < 2; n++) {
        if (sv[n] >= 0) {
            close(sv[n]);
        }
        if (out[n] >= 0) {
            close(out[n]);
        }
    }
    return known;
}

#else /* no splice(2) */

int ct_splice_supported(void)
{
    return 0;
}

apr_status_t ct_pipe_open(apr_pool_t *p, ct_pipe *pp, apr_size_t size)
{
    (void)p;
    return ct_pipe_open_raw(pp, size);
}

apr_status_t ct_pipe_open_raw(ct_pipe *pp, apr_size_t size)
{
    (void)size;
    pp->rfd = pp->wfd = -1;
    return APR_ENOTIMPL;
}

void ct_pipe_close(ct_pipe *pp)
{
    (void)pp;
}

apr_status_t ct_splice_in(ct_pipe *pp, int src, apr_size_t len,
                          apr_size_t *n)
{
    (void)pp;
    (void)src;
    (void)len;
    *n = 0;
    return APR_ENOTIMPL;
}

apr_status_t ct_splice_out(ct_pipe *pp, int dst, apr_size_t *n)
{
    (void)pp;
    (void)dst;
    *n = 0;
    return APR_ENOTIMPL;
}

#endif
