/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_reactor.h: tunnels that hold no worker thread.  Each child runs a few
 * reactor threads; once the 200 is out, a plain-TCP tunnel's two sockets
 * are handed to one of them and the worker goes back to serving requests.
 * An idle tunnel then costs a small record and two descriptors.
 */

#ifndef CT_REACTOR_H
#define CT_REACTOR_H

#include "httpd.h"

#include "ct_limits.h"
#include "ct_bw.h"

/* Reads and partial-write buffers of a reactor (one scratch per thread). */
#define CT_REACTOR_BUFSIZE (64 * 1024)

/* Room for the end-of-tunnel record's target, copied at hand-off: a host
 * name of up to 255 characters, brackets, a colon, a port and the NUL. */
#define CT_REACTOR_TEXT 264

/* What a worker gives a reactor.  Descriptors are the reactor's from the
 * call on; the texts are copied. */
typedef struct ct_handoff_s {
    int client_fd;
    int origin_fd;
    const char *early;          /* client bytes not yet sent to the origin */
    apr_size_t early_len;       /* at most CT_REACTOR_BUFSIZE */
    apr_interval_time_t idle;
    apr_interval_time_t lifetime;   /* 0: none */
    int nohalfclose;
    int zero_copy;              /* splice(2) while bytes flow */
    apr_time_t start;           /* when the CONNECT arrived */
    apr_time_t opened;          /* the idle and lifetime clocks started */
    apr_time_t last;            /* last moved something in the worker */
    apr_off_t up;               /* bytes already moved in the worker */
    apr_off_t down;
    apr_time_t first_down;      /* the origin's first byte, or 0 */
    const char *client;         /* client address */
    const char *target;         /* host:port as validated */
    const char *address;        /* address dialled */
    ct_limit_hold limits;       /* released when the tunnel ends */
    int limited;                /* bw applies */
    ct_bw bw;                   /* bandwidth limits, released at the end */
    struct ct_alog *alog;       /* its access-log line, or NULL */
} ct_handoff;

/**
 * Start this child's reactors (child_init): raise the soft descriptor
 * limit to the hard one, derive the cap on handed-off tunnels, start
 * threads reactor threads, and arrange for a graceful exit to drain.
 * @param max   a lower cap than the descriptor limit gives (0: none)
 * @param drain longest a graceful exit waits for tunnels (0: no bound of
 *              its own; a graceful stop's end is the parent's SIGTERM)
 */
void ct_reactor_child_init(apr_pool_t *pchild, server_rec *s, int threads,
                           int max, apr_interval_time_t drain);

/**
 * The child is stopping (child_stopping hook): take no more tunnels.
 */
void ct_reactor_child_stopping(int graceful);

/**
 * Reserve a place for one tunnel.
 * @return 1 when reserved, 0 when the reactors are off, stopping or full
 */
int ct_reactor_reserve(void);

/**
 * Give back a place reserved but not used.
 */
void ct_reactor_unreserve(void);

/**
 * Hand a tunnel to the least loaded reactor, using a reserved place.
 * On failure the descriptors are still the caller's.
 */
apr_status_t ct_reactor_submit(const ct_handoff *h);

#endif /* CT_REACTOR_H */
