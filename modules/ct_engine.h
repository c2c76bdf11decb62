/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_engine.h: one direction of a tunnel between two raw descriptors, the
 * part the worker's zero-copy path and the reactor share.  A direction
 * splices through a pipe or copies through a buffer, keeps what its sink
 * did not take and reads no more until that is out (backpressure), passes
 * the end of stream on as a half-close, and counts what it wrote.  Who
 * drives it (a poll loop in a worker, epoll in a reactor) owns the clocks,
 * the end reasons and the events; the filter path (TLS clients, HTTP/2
 * streams) stays in ct_relay.c.
 */

#ifndef CT_ENGINE_H
#define CT_ENGINE_H

#include "apr.h"
#include "apr_errno.h"

#include "ct_splice.h"

/* One direction: its state from one step to the next. */
typedef struct {
    ct_pipe *pipe;              /* splicing through it, or NULL */
    char *pend;                 /* copying: the rest of a partial write */
    apr_uint32_t off;           /* where in pend the rest starts */
    apr_uint32_t len;           /* bytes left in pend */
    apr_off_t bytes;            /* payload written to the sink */
    unsigned int eof:1;         /* the source said end of stream */
    unsigned int shut:1;        /* the sink was shut down for writing */
    unsigned int drained:1;     /* not to be read again until woken */
    unsigned int want_read:1;   /* after a step: waits for the source */
    unsigned int want_write:1;  /* after a step: waits for the sink */
} ct_dir;

/* What a direction borrows from its driver.  A zeroed one keeps the pipe
 * the direction was given and never copies. */
typedef struct {
    /* A pipe for a direction about to read, or NULL: copy instead. */
    ct_pipe *(*take_pipe)(void *ctx);
    /* Take back a pipe when the direction goes idle; NULL: keep it. */
    void (*give_pipe)(void *ctx, ct_pipe *pp);
    /* A buffer of bufsize bytes for the rest of a partial write. */
    char *(*take_buf)(void *ctx);
    void (*give_buf)(void *ctx, char *buf);
    void *ctx;
    char *scratch;              /* copy reads land here; NULL: no copy */
    apr_size_t bufsize;         /* of scratch and of a taken buffer */
    apr_size_t pipesize;        /* what a pipe take_pipe lends holds */
    /* A byte budget (a bandwidth limit), or NULL: the most d may read
     * now, at most want.  0 leaves the direction waiting for the budget,
     * neither for its source nor its sink: the driver wakes it.  The
     * driver charges what a step read (io->in). */
    apr_size_t (*budget)(void *bctx, ct_dir *d, apr_size_t want);
    void *bctx;
} ct_dir_env;

/* One step's descriptors (in) and what it did (out). */
typedef struct {
    int src;
    int dst;
    int nohalfclose;            /* an end of stream ends the tunnel */
    apr_size_t in;              /* out: read from the source */
    apr_size_t out;             /* out: written to the sink */
    int moved;                  /* out: bytes or state changed */
    apr_status_t rv;            /* out: the cause of an error result */
} ct_dir_io;

typedef enum {
    CT_DIR_OK,                  /* goes on: want_read/want_write say why */
    CT_DIR_HALF_CLOSED,         /* end of stream, and half-close is off */
    CT_DIR_SRC_ERROR,           /* reading the source failed */
    CT_DIR_DST_ERROR            /* writing the sink failed */
} ct_dir_state;

/**
 * Move what one direction can move without blocking: first what it holds
 * (early bytes, a partial write, a pipe's contents), then the end of
 * stream as a shutdown of the sink, then one read of the source unless it
 * is drained or out of budget.  A read shorter than asked marks the source drained: its
 * descriptor is read again only after the driver clears the mark (woken
 * by readiness, or the held bytes went out).
 */
ct_dir_state ct_dir_step(ct_dir *d, const ct_dir_env *env, ct_dir_io *io);

/**
 * Bytes the direction holds for its sink.
 */
apr_size_t ct_dir_held(const ct_dir *d);

/**
 * Give back the buffer and pipe a finished direction holds.
 */
void ct_dir_release(ct_dir *d, const ct_dir_env *env);

#endif /* CT_ENGINE_H */
