/*
 * tl_idle.c: hold many quiet tunnels open, the load a CONNECT proxy
 * carries when browsers keep TLS connections around.  The generator opens
 * N tunnels to a hold origin, at most INFLIGHT at a time, prints one line
 * "READY held=H ..." on stdout, and keeps them until SIGTERM or SIGINT,
 * or until --hold seconds pass; whoever drives it measures the proxy
 * meanwhile.
 *
 * A proxy that gives each tunnel a thread holds no more tunnels than it
 * has threads: the rest wait in its listen queue and never see a 200.  So
 * a tunnel without a 200 after --open-timeout is closed and counted, and
 * when no tunnel at all has opened for that long the generator stops
 * opening and reports what it reached instead of waiting out the rest.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tl_load.h"
#include "tl_net.h"
#include "tl_tunnel.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

typedef struct {
    tl_run *run;
    tl_dialer d;
    tl_tunnel *t;
    int next;                   /* next tunnel to start */
    int oldest;                 /* first tunnel that may still be pending */
    int pending;
    int held;
    int failed;
    int timed_out;
    int dropped;
    int stalled;
    uint64_t t_progress;        /* last 200, or the first start */
    uint64_t t_ready;
    const char *first_why;
} idle;

static void note_failure(idle *s, const char *why)
{
    if (s->first_why == NULL) {
        s->first_why = why;
        fprintf(stderr, "tunnel-load: first failure: %s\n", why);
    }
}

static void open_event(idle *s, tl_tunnel *t, uint32_t ev)
{
    tl_step st = tl_tunnel_step(&s->d, t, ev);

    if (st == TL_STEP_PENDING) {
        return;
    }
    s->pending--;
    if (st == TL_STEP_FAILED) {
        s->failed++;
        note_failure(s, t->why);
        return;
    }
    s->held++;
    s->t_progress = t->t_open;
    /* Readable from now on means the proxy or origin gave up on it. */
    if (t->early_len > 0 || tl_tunnel_watch(&s->d, t, EPOLLIN) != 0) {
        s->held--;
        s->dropped++;
        tl_tunnel_close(t);
    }
}

/* A held tunnel became readable: a close, or stray bytes to ignore. */
static void held_event(idle *s, tl_tunnel *t)
{
    ssize_t n = recv(t->fd, s->run->buf, s->run->o->io_size, 0);

    if (n > 0 || (n < 0 && errno == EAGAIN)) {
        return;
    }
    s->held--;
    s->dropped++;
    note_failure(s, n == 0 ? "dropped-by-proxy" : "reset-by-proxy");
    tl_tunnel_close(t);
}

static void dispatch(idle *s, struct epoll_event *ev)
{
    tl_tunnel *t = ev->data.ptr;

    if (t->phase == TL_OPEN) {
        held_event(s, t);
    }
    else if (t->phase != TL_IDLE) {
        open_event(s, t, ev->events);
    }
}

/* Start tunnels while the in-flight budget allows. */
static void launch(idle *s)
{
    tl_tunnel *t;

    while (!s->stalled && s->next < s->run->o->tunnels
           && s->pending < s->run->o->inflight) {
        t = &s->t[s->next++];
        if (tl_tunnel_begin(&s->d, t, NULL) != 0) {
            s->failed++;
            note_failure(s, t->why);
            /* Out of descriptors or ports: more attempts fail the same. */
            s->stalled = 1;
            return;
        }
        s->pending++;
    }
}

/* Tunnels start in order and share one timeout: the oldest go first. */
static void expire(idle *s, uint64_t now)
{
    uint64_t limit = (uint64_t)(s->run->o->open_timeout * 1e9);
    tl_tunnel *t;

    /* Judged before expiring: once the waiting tunnels are gone, a proxy
     * that will never answer them would look like one with room. */
    if (s->pending > 0 && now - s->t_progress > limit) {
        s->stalled = 1;
    }
    for (; s->oldest < s->next; s->oldest++) {
        t = &s->t[s->oldest];
        if (t->phase == TL_OPEN || t->phase == TL_IDLE) {
            continue;
        }
        if (now - t->t_begin <= limit) {
            break;
        }
        tl_tunnel_close(t);
        s->pending--;
        s->timed_out++;
        note_failure(s, "no-200-in-time");
    }
}

static int open_all(idle *s)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    uint64_t now;
    int n, i;

    s->t_progress = tl_now_ns();
    launch(s);
    while (s->pending > 0 && !stop_signal) {
        n = tl_run_wait(s->run, evs, s->run->t_limit);
        if (n < 0) {
            perror("tunnel-load: epoll_wait");
            return -1;
        }
        for (i = 0; i < n; i++) {
            dispatch(s, &evs[i]);
        }
        now = tl_now_ns();
        if (now >= s->run->t_limit) {
            return -1;
        }
        expire(s, now);
        launch(s);
    }
    return 0;
}

/* Hold until a signal, the hold time or the run's limit. */
static const char *hold_all(idle *s)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    uint64_t until = s->t_ready + (uint64_t)(s->run->o->hold * 1e9);
    int n, i;

    while (!stop_signal) {
        if (tl_now_ns() >= until) {
            return "hold-time";
        }
        if (tl_now_ns() >= s->run->t_limit) {
            return "time-limit";
        }
        n = tl_run_wait(s->run, evs, until);
        if (n < 0) {
            perror("tunnel-load: epoll_wait");
            return "epoll";
        }
        for (i = 0; i < n; i++) {
            dispatch(s, &evs[i]);
        }
    }
    return "signal";
}

static int catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    if (sigemptyset(&sa.sa_mask) != 0) {
        return -1;
    }
    if (sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0) {
        return -1;
    }
    return 0;
}

int tl_mode_idle(tl_run *run)
{
    const char *stop = "time-limit";
    idle s;
    int i;

    memset(&s, 0, sizeof(s));
    s.run = run;
    s.t = calloc((size_t)run->o->tunnels, sizeof(*s.t));
    if (s.t == NULL || catch_signals() != 0) {
        perror("tunnel-load: idle setup");
        free(s.t);
        return 2;
    }
    for (i = 0; i < run->o->tunnels; i++) {
        s.t[i].fd = -1;
    }
    tl_dialer_init(&s.d, run->epfd, run->o->proxy_port, run->o->origin_port,
                   run->o->source);
    if (open_all(&s) == 0) {
        s.t_ready = tl_now_ns();
        printf("READY held=%d failed=%d timed_out=%d open_seconds=%.3f\n",
               s.held, s.failed, s.timed_out,
               (double)(s.t_ready - run->t_start) / 1e9);
        if (fflush(stdout) != 0) {
            perror("tunnel-load: stdout");
        }
        stop = hold_all(&s);
    }
    tl_run_report_head(run);
    printf(" tunnels=%d started=%d held=%d failed=%d timed_out=%d"
           " dropped=%d stalled=%d open_seconds=%.3f stop=%s error=%s\n",
           run->o->tunnels, s.next, s.held, s.failed, s.timed_out, s.dropped,
           s.stalled, s.t_ready ? (double)(s.t_ready - run->t_start) / 1e9
                                : 0.0, stop,
           s.first_why ? s.first_why : "none");
    for (i = 0; i < s.next; i++) {
        tl_tunnel_close(&s.t[i]);
    }
    free(s.t);
    return s.held == run->o->tunnels && s.dropped == 0 ? 0 : 1;
}
