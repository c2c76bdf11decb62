/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_splice.h: zero-copy relaying with splice(2) through a pipe, for a
 * direction whose ends are both plain sockets.  The bytes never enter user
 * space.  Linux only; elsewhere ct_splice_supported() says no.
 */

#ifndef CT_SPLICE_H
#define CT_SPLICE_H

#include "apr_pools.h"
#include "apr_errno.h"

/* A pipe that carries one direction of a tunnel. */
typedef struct {
    int rfd;                /* read end, or -1 */
    int wfd;                /* write end, or -1 */
    apr_size_t pending;     /* bytes in the pipe, not yet written on */
    apr_size_t capacity;    /* what one splice into it may move */
} ct_pipe;

/**
 * Whether this system can splice between sockets (checked once, at
 * startup, on a real pipe and socket pair).
 */
int ct_splice_supported(void);

/**
 * Open a non-blocking pipe of about size bytes; closed with pool p.
 */
apr_status_t ct_pipe_open(apr_pool_t *p, ct_pipe *pp, apr_size_t size);

/**
 * Open a pipe like ct_pipe_open(), closed only by ct_pipe_close(): for
 * owners that keep pipes on a free list.
 */
apr_status_t ct_pipe_open_raw(ct_pipe *pp, apr_size_t size);

/**
 * Close a pipe opened by ct_pipe_open_raw().
 */
void ct_pipe_close(ct_pipe *pp);

/**
 * Move what the socket src has into the pipe, at most len bytes (no more
 * than the room left in the pipe).
 * @return APR_SUCCESS with *n > 0, APR_EOF, APR_EAGAIN or an error
 */
apr_status_t ct_splice_in(ct_pipe *pp, int src, apr_size_t len,
                          apr_size_t *n);

/**
 * Move what the pipe holds to the socket dst.
 * @return APR_SUCCESS (*n may be less than pending), APR_EAGAIN or an
 *         error
 */
apr_status_t ct_splice_out(ct_pipe *pp, int dst, apr_size_t *n);

#endif /* CT_SPLICE_H */
