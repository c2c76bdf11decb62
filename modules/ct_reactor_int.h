/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_reactor_int.h: what the reactor loop (ct_reactor.c) and the relaying
 * of one handed-off tunnel (ct_rtunnel.c) share.  Linux only: epoll.
 */

#ifndef CT_REACTOR_INT_H
#define CT_REACTOR_INT_H

#include <sys/epoll.h>

#include "apr_thread_proc.h"
#include "apr_thread_mutex.h"

#include "ct_config.h"
#include "ct_relay.h"
#include "ct_limits.h"
#include "ct_splice.h"
#include "ct_bw.h"
#include "ct_engine.h"
#include "ct_reactor.h"

/* Largest number of reactor threads a child runs. */
#define CT_REACTOR_MAX CT_REACTOR_THREADS_MAX

/* Events taken from epoll per wake-up. */
#define CT_EVENTS 256

/* How often timeouts are checked. */
#define CT_SWEEP apr_time_from_msec(500)

/* Records are carved from the reactor's pool this many at a time. */
#define CT_SLAB 64

/* Descriptors a child keeps for everything but its workers and the
 * reactors' tunnels and pipes. */
#define CT_FD_RESERVE 256

/* Most descriptors a worker's tunnel holds: the client and origin
 * sockets and a splice pipe (two ends) each way. */
#define CT_FD_PER_WORKER 6

/* Steps of a tunnel's two directions per wake-up. */
#define CT_ROUNDS 16

typedef struct ct_reactor ct_reactor;
typedef struct ct_rtunnel ct_rtunnel;

/* A buffer holding the rest of a partial write; the link is used only
 * while it is on the free list, so a direction holds just data. */
typedef union ct_rbuf {
    union ct_rbuf *next;        /* on the free list */
    char data[CT_REACTOR_BUFSIZE];
} ct_rbuf;

/* Size asked of a reactor's pipes: they exist only while bytes flow, so
 * they can be larger than a buffer kept per tunnel could be. */
#define CT_REACTOR_PIPE (256 * 1024)

/* Pipes kept for reuse by a reactor, beyond which they are closed. */
#define CT_SPARE_PIPES 32

/* A pipe for splicing, lent to a direction only while bytes flow. */
typedef struct ct_rpipe {
    ct_pipe p;                  /* first: a direction holds &p */
    struct ct_rpipe *next;
} ct_rpipe;

/* One direction: dir[0] reads the client and writes the origin.  Its
 * pipe is a ct_rpipe's, lent while bytes flow; pend is a ct_rbuf's data;
 * drained means not to be read again this wake-up. */
typedef ct_dir ct_rdir;

/* Bandwidth hook: a direction out of budget is not read, nor watched for
 * readability, until resume. */
typedef struct {
    int throttled;
    apr_time_t resume;
} ct_rwait;

/* A limited tunnel's bandwidth state, apart from its record so that the
 * tunnels without a limit (most) do not carry it. */
typedef struct ct_rlimit {
    struct ct_rlimit *next;     /* free list */
    ct_bw bw;                   /* bandwidth limits, left when it ends */
    ct_rtunnel *tnext;          /* on the reactor's timer list while a */
    ct_rtunnel *tprev;          /* direction waits for its budget */
    int timed;
    apr_time_t resume;          /* the earliest such wait ends */
    ct_rwait wait[2];           /* by direction */
} ct_rlimit;

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
    apr_time_t start;           /* when the CONNECT arrived */
    apr_time_t opened;          /* the idle and lifetime clocks started */
    apr_time_t last;            /* last payload byte either way */
    apr_time_t first_down;      /* the origin's first byte, or 0 */
    apr_time_t deadline;        /* maximum lifetime, or 0 */
    apr_time_t stop;            /* when it was closed */
    apr_interval_time_t idle;
    apr_interval_time_t lifetime;
    apr_off_t up0;              /* moved before the hand-off */
    apr_off_t down0;
    int nohalfclose;
    int zero_copy;
    ct_limit_hold limits;       /* given back when it ends */
    ct_rlimit *lim;             /* bandwidth state, or NULL: no limit */
    ct_end end;                 /* CT_END_NONE while it runs */
    struct ct_alog *alog;       /* its access-log line, or NULL */
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
    ct_rlimit *free_lims;       /* (lock) */
    ct_rpipe *free_pipes;       /* open, empty: reactor thread only */
    ct_rpipe *spare_pipes;      /* closed records for reuse */
    int nfree_pipes;
    ct_rtunnel *live;           /* reactor thread only */
    ct_rtunnel *timed;          /* waiting for bandwidth: reactor thread */
    ct_rtunnel *dead;           /* closed in this batch, freed after it */
    char *scratch;
    int index;                  /* for log lines */
    volatile apr_uint32_t broken;   /* out of service: set under lock */
    volatile apr_uint32_t count;    /* tunnels it holds */
    volatile apr_uint32_t stop;     /* close everything and exit */
};

/* Which sockets a pump may read: those epoll said are readable. */
#define CT_READ_CLIENT 1
#define CT_READ_ORIGIN 2
#define CT_READ_BOTH (CT_READ_CLIENT | CT_READ_ORIGIN)

/**
 * Move what can move in both directions and register what each socket
 * waits for.  Only the sockets in readable (CT_READ_*) are read, and
 * those whose bytes just reached the other side (they were not watched
 * meanwhile): a read that would only say EAGAIN costs a system call per
 * wake-up.  @return CT_END_NONE while the tunnel goes on
 */
ct_end ct_rtunnel_pump(ct_rtunnel *t, unsigned int readable);

/**
 * Take the tunnel off its reactor's timer list (it ends).
 */
void ct_rtunnel_untime(ct_rtunnel *t);

/**
 * When the earliest bandwidth wait of the reactor's tunnels ends, or 0.
 */
apr_time_t ct_rtunnel_next_timer(const ct_reactor *re);

/**
 * Stop watching one of the tunnel's sockets.
 */
void ct_rtunnel_unwatch(ct_rtunnel *t, int side);

/**
 * A partial-write buffer from the reactor's free list (any thread).
 */
ct_rbuf *ct_rtunnel_take_buf(ct_reactor *re);

/**
 * A zeroed bandwidth state from re's free list or pool, for a limited
 * tunnel; it goes back with the tunnel's record.
 */
ct_rlimit *ct_rtunnel_take_limit(ct_reactor *re);

/**
 * Give back the buffers and pipes a finished tunnel holds.
 */
void ct_rtunnel_release(ct_rtunnel *t);

/**
 * Take a place for one more open splice pipe from the child's budget (a
 * share of its descriptors); 0 when the budget is spent: the direction
 * then copies through a buffer instead.
 */
int ct_reactor_pipe_get(void);

/**
 * Give back the place of a pipe that was closed (or never opened).
 */
void ct_reactor_pipe_put(void);

/**
 * Count a pipe that came with a tunnel from another child: it is open
 * already, whatever the budget says.
 */
void ct_reactor_pipe_add(void);

/**
 * Give direction i of t (not yet queued, any thread) a pipe that came
 * from another child holding pending bytes.
 */
void ct_rtunnel_adopt_pipe(ct_rtunnel *t, int i, int rfd, int wfd,
                           apr_size_t pending, apr_size_t capacity);

/**
 * Reserve a place for a tunnel another child moves here: none while
 * this child stops.
 */
int ct_reactor_reserve_moved(void);

/**
 * Whether this child runs reactors.
 */
int ct_reactor_running(void);

/**
 * A zeroed record for a new tunnel, its owner the least loaded reactor.
 */
ct_rtunnel *ct_reactor_record(void);

/**
 * Queue a filled record on its reactor (or another in service), for a
 * place reserved with ct_reactor_reserve().
 */
void ct_reactor_queue(ct_rtunnel *t);

/**
 * Close the pipes a stopping reactor kept for reuse.
 */
void ct_rtunnel_close_pipes(ct_reactor *re);

#endif /* CT_REACTOR_INT_H */
