/*
 * tl_load.h: the load generator's options and its modes.  Each mode runs
 * to completion or to its time limit, prints one line of key=value pairs
 * on stdout and returns the process exit status: 0 when every tunnel did
 * what it was asked, 1 when some failed (the line still says how many).
 */

#ifndef TL_LOAD_H
#define TL_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

/* Events one epoll_wait() returns at most. */
#define TL_MAX_EVENTS 256

typedef struct {
    const char *mode;
    int proxy_port;             /* 0 with --direct */
    int origin_port;
    int tunnels;                /* bulk and idle: how many */
    uint64_t bytes;             /* bulk: per tunnel */
    int verify;                 /* check the pattern on the receiving side */
    size_t msg_size;            /* pingpong and setup: message bytes */
    long rounds;                /* pingpong: measured round trips */
    long warmup;                /* pingpong: round trips not measured */
    int concurrency;            /* setup: tunnels in flight */
    double duration;            /* setup: seconds of new tunnels */
    double hold;                /* idle: seconds to hold at most */
    double open_timeout;        /* seconds to wait for a 200 */
    double stall_timeout;       /* seconds an open tunnel may not move */
    double time_limit;          /* seconds for the whole run */
    int inflight;               /* idle: opens in flight at once */
    size_t io_size;             /* bytes per read or write call */
    const char *label;          /* echoed as label= in the output */
    uint32_t source;            /* client address (network order), or 0 */
    int hello;                  /* setup: send a ClientHello as message */
    int refused;                /* setup: a 403 is the answer sought */
} tl_opts;

/* What every mode's loop needs besides its own state. */
typedef struct {
    const tl_opts *o;
    int epfd;
    uint64_t t_start;
    uint64_t t_limit;           /* the run's hard deadline */
    unsigned char *buf;         /* io_size bytes of receive buffer */
} tl_run;

/**
 * Wait for events until at most deadline (ns, monotonic) and never more
 * than 100 ms, so that callers re-check their clocks and signals; the
 * number of events, 0 on a timeout or an interrupt, -1 on failure.
 */
int tl_run_wait(tl_run *run, struct epoll_event *evs, uint64_t deadline);

/**
 * Print the fields every output line starts with.
 */
void tl_run_report_head(const tl_run *run);

/* The modes. */
int tl_mode_bulk(tl_run *run, int up);
int tl_mode_pingpong(tl_run *run);
int tl_mode_setup(tl_run *run);
int tl_mode_idle(tl_run *run);

#endif /* TL_LOAD_H */
