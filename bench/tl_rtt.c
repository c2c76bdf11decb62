/*
 * tl_rtt.c: the latency modes.
 *
 * pingpong: one tunnel to an echo origin; each round trip sends SIZE
 * bytes and waits for all of them to come back, checked byte for byte.
 * setup: CONCURRENCY slots, each opening a tunnel, doing one echo round
 * trip of SIZE bytes and closing it, over and over for DURATION seconds;
 * the rate of whole tunnels and the time from connect() to the 200 are
 * what a proxy's per-tunnel cost looks like from outside.  With --hello
 * the message is a 512-byte TLS ClientHello naming localhost (what a
 * proxy checking the server name must read before it relays).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tl_load.h"
#include "tl_net.h"
#include "tl_pattern.h"
#include "tl_stats.h"
#include "tl_tunnel.h"

/* One echo exchange in progress on an open tunnel. */
typedef struct {
    const unsigned char *msg;
    size_t size;
    size_t sent;
    size_t rcvd;
} exchange;

/* A ClientHello as browsers pad theirs: 512 bytes in one record. */
#define HELLO_SIZE 512

static unsigned char hello[HELLO_SIZE];

static unsigned char *put16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return p + 2;
}

/* Record and handshake headers, version, random, session id, two
 * suites, null compression, then server_name and padding to the size. */
static void hello_build(void)
{
    static const char name[] = "localhost";
    size_t nlen = sizeof(name) - 1;
    unsigned char *p = hello, *ext;
    size_t pad;

    memset(hello, 0, sizeof(hello));
    *p++ = 22;
    p = put16(p, 0x0301);
    p = put16(p, HELLO_SIZE - 5);
    *p++ = 1;
    *p++ = 0;
    p = put16(p, HELLO_SIZE - 9);
    p = put16(p, 0x0303);
    memset(p, 0x5a, 32);
    p += 32;
    *p++ = 0;
    p = put16(p, 4);
    p = put16(p, 0x1301);
    p = put16(p, 0xc02f);
    *p++ = 1;
    *p++ = 0;
    ext = p;
    p += 2;
    p = put16(p, 0);                    /* server_name */
    p = put16(p, nlen + 5);
    p = put16(p, nlen + 3);
    *p++ = 0;
    p = put16(p, nlen);
    memcpy(p, name, nlen);
    p += nlen;
    pad = (size_t)(hello + HELLO_SIZE - p) - 4;
    p = put16(p, 21);                   /* padding */
    p = put16(p, pad);
    put16(ext, (size_t)(hello + HELLO_SIZE - ext) - 2);
}

static void exchange_start(exchange *x, uint64_t seq, size_t size,
                           int use_hello)
{
    x->msg = use_hello ? hello : tl_pattern_at(seq * 7919);
    x->size = use_hello ? HELLO_SIZE : size;
    x->sent = x->rcvd = 0;
}

/* Take echoed bytes; -1 when they differ from what was sent. */
static int exchange_take(exchange *x, const unsigned char *p, size_t n)
{
    if (n > x->sent - x->rcvd || memcmp(x->msg + x->rcvd, p, n) != 0) {
        return -1;
    }
    x->rcvd += n;
    return 0;
}

/*
 * Move an exchange on without blocking: 1 when complete, 0 to wait, or
 * -1 with *why set.  *events gets what to wait for.
 */
static int exchange_step(exchange *x, int fd, unsigned char *buf,
                         size_t bufsize, uint32_t *events,
                         const char **why)
{
    ssize_t n;

    while (x->sent < x->size) {
        n = send(fd, x->msg + x->sent, x->size - x->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            *why = "send-error";
            return -1;
        }
        x->sent += (size_t)n;
    }
    while (x->rcvd < x->sent) {
        n = recv(fd, buf, bufsize, 0);
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            *why = n == 0 ? "closed-mid-exchange" : "recv-error";
            return -1;
        }
        if (exchange_take(x, buf, (size_t)n) != 0) {
            *why = "wrong-echo";
            return -1;
        }
    }
    if (x->rcvd == x->size) {
        return 1;
    }
    *events = EPOLLIN | (x->sent < x->size ? EPOLLOUT : 0);
    return 0;
}

/* Open one tunnel, blocking this mode's loop until it is open. */
static int open_one(tl_run *run, tl_dialer *d, tl_tunnel *t)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    uint64_t deadline;
    tl_step st = TL_STEP_PENDING;

    if (tl_tunnel_begin(d, t, NULL) != 0) {
        return -1;
    }
    deadline = t->t_begin + (uint64_t)(run->o->open_timeout * 1e9);
    while (st == TL_STEP_PENDING) {
        if (tl_now_ns() >= deadline || tl_now_ns() >= run->t_limit) {
            t->why = "no-200-in-time";
            tl_tunnel_close(t);
            return -1;
        }
        if (tl_run_wait(run, evs, deadline) > 0) {
            st = tl_tunnel_step(d, t, evs[0].events);
        }
    }
    if (st == TL_STEP_OPEN && t->early_len > 0) {
        t->why = "unexpected-bytes";
        tl_tunnel_close(t);
        return -1;
    }
    return st == TL_STEP_OPEN ? 0 : -1;
}

/* One measured (or warm-up) round trip; -1 with *why on failure. */
static int round_trip(tl_run *run, tl_dialer *d, tl_tunnel *t, uint64_t seq,
                      const char **why)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    uint64_t deadline = tl_now_ns()
                        + (uint64_t)(run->o->stall_timeout * 1e9);
    uint32_t want = 0;
    exchange x;
    int rc;

    exchange_start(&x, seq, run->o->msg_size, 0);
    while ((rc = exchange_step(&x, t->fd, run->buf, run->o->io_size, &want,
                               why)) == 0) {
        if (tl_tunnel_watch(d, t, want) != 0) {
            *why = "epoll";
            return -1;
        }
        if (tl_now_ns() >= run->t_limit) {
            *why = "time-limit";
            return -1;
        }
        if (tl_now_ns() >= deadline) {
            *why = "stalled";
            return -1;
        }
        if (tl_run_wait(run, evs, deadline) < 0) {
            *why = "epoll";
            return -1;
        }
    }
    return rc == 1 ? 0 : -1;
}

int tl_mode_pingpong(tl_run *run)
{
    const tl_opts *o = run->o;
    const char *why = NULL;
    tl_samples s = { 0 };
    tl_dialer d;
    tl_tunnel t;
    uint64_t t0, t_first = 0, t_last = 0;
    long i, total = o->warmup + o->rounds;

    tl_dialer_init(&d, run->epfd, o->proxy_port, o->origin_port, o->source);
    if (open_one(run, &d, &t) != 0) {
        why = t.why;
        total = 0;
    }
    for (i = 0; i < total && why == NULL; i++) {
        t0 = tl_now_ns();
        if (i == o->warmup) {
            t_first = t0;
        }
        if (round_trip(run, &d, &t, (uint64_t)i, &why) != 0) {
            break;
        }
        t_last = tl_now_ns();
        if (i >= o->warmup && tl_samples_add(&s, t_last - t0) != 0) {
            why = "out-of-memory";
        }
    }
    tl_tunnel_close(&t);
    tl_run_report_head(run);
    printf(" size=%zu rounds=%zu failed=%d p50_us=%.1f p99_us=%.1f"
           " mean_us=%.1f max_us=%.1f rt_s=%.0f error=%s\n", o->msg_size,
           s.n, why != NULL, tl_samples_pct_us(&s, 50),
           tl_samples_pct_us(&s, 99), tl_samples_mean_us(&s),
           tl_samples_pct_us(&s, 100),
           t_last > t_first && s.n > 0
               ? (double)s.n * 1e9 / (double)(t_last - t_first) : 0.0,
           why ? why : "none");
    tl_samples_free(&s);
    return why != NULL;
}

/* setup mode: one slot is one tunnel at a time. */
typedef struct {
    tl_tunnel t;
    exchange x;
    int busy;
} slot;

typedef struct {
    tl_run *run;
    tl_dialer d;
    slot *slots;
    uint64_t seq;
    uint64_t t_stop_new;        /* no new tunnel after this */
    uint64_t t_last_done;
    long done;
    long failed;
    const char *first_why;
    tl_samples to_200;          /* connect() to the 200 */
    tl_samples whole;           /* connect() to the echo back */
} setup;

static void slot_fail(setup *s, slot *sl, const char *why)
{
    if (s->failed++ == 0) {
        s->first_why = why;
        fprintf(stderr, "tunnel-load: first failure: %s\n", why);
    }
    tl_tunnel_close(&sl->t);
    sl->busy = 0;
}

static void slot_done(setup *s, slot *sl)
{
    uint64_t now = tl_now_ns();

    if (tl_samples_add(&s->to_200, sl->t.t_open - sl->t.t_begin) != 0
        || tl_samples_add(&s->whole, now - sl->t.t_begin) != 0) {
        slot_fail(s, sl, "out-of-memory");
        return;
    }
    s->done++;
    s->t_last_done = now;
    tl_tunnel_close(&sl->t);
    sl->busy = 0;
}

static void slot_exchange(setup *s, slot *sl)
{
    const char *why = NULL;
    uint32_t want = 0;
    int rc;

    rc = exchange_step(&sl->x, sl->t.fd, s->run->buf, s->run->o->io_size,
                       &want, &why);
    if (rc < 0) {
        slot_fail(s, sl, why);
    }
    else if (rc == 1) {
        slot_done(s, sl);
    }
    else if (tl_tunnel_watch(&s->d, &sl->t, want) != 0) {
        slot_fail(s, sl, "epoll");
    }
}

static void slot_event(setup *s, slot *sl, uint32_t ev)
{
    tl_step st;

    if (!sl->busy) {
        return;
    }
    if (sl->t.phase == TL_OPEN) {
        slot_exchange(s, sl);
        return;
    }
    st = tl_tunnel_step(&s->d, &sl->t, ev);
    if (st == TL_STEP_FAILED) {
        slot_fail(s, sl, sl->t.why);
    }
    else if (st == TL_STEP_REFUSED) {
        slot_done(s, sl);
    }
    else if (st == TL_STEP_OPEN) {
        if (sl->t.early_len > 0) {
            slot_fail(s, sl, "unexpected-bytes");
            return;
        }
        exchange_start(&sl->x, s->seq++, s->run->o->msg_size,
                       s->run->o->hello);
        slot_exchange(s, sl);
    }
}

/* Refill idle slots while new tunnels are due; time out stuck ones. */
static void slots_tend(setup *s, uint64_t now)
{
    uint64_t limit = (uint64_t)(s->run->o->open_timeout * 1e9);
    slot *sl;
    int i;

    for (i = 0; i < s->run->o->concurrency; i++) {
        sl = &s->slots[i];
        if (sl->busy && now - sl->t.t_begin > limit) {
            slot_fail(s, sl, sl->t.phase == TL_OPEN ? "echo-too-slow"
                                                    : "no-200-in-time");
        }
        if (!sl->busy && now < s->t_stop_new) {
            if (tl_tunnel_begin(&s->d, &sl->t, sl) != 0) {
                slot_fail(s, sl, sl->t.why);
                continue;
            }
            sl->busy = 1;
        }
    }
}

static int slots_busy(const setup *s)
{
    int i, n = 0;

    for (i = 0; i < s->run->o->concurrency; i++) {
        n += s->slots[i].busy;
    }
    return n;
}

static void setup_report(setup *s)
{
    double secs = s->t_last_done > s->run->t_start
                  ? (double)(s->t_last_done - s->run->t_start) / 1e9 : 0;

    tl_run_report_head(s->run);
    printf(" concurrency=%d size=%zu tunnels=%ld failed=%ld seconds=%.3f"
           " tunnels_s=%.0f c200_p50_us=%.1f c200_p99_us=%.1f"
           " whole_p50_us=%.1f whole_p99_us=%.1f error=%s\n",
           s->run->o->concurrency,
           s->run->o->hello ? (size_t)HELLO_SIZE : s->run->o->msg_size,
           s->done, s->failed,
           secs, secs > 0 ? (double)s->done / secs : 0.0,
           tl_samples_pct_us(&s->to_200, 50),
           tl_samples_pct_us(&s->to_200, 99),
           tl_samples_pct_us(&s->whole, 50), tl_samples_pct_us(&s->whole, 99),
           s->first_why ? s->first_why : "none");
}

int tl_mode_setup(tl_run *run)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    setup s;
    uint64_t now;
    int n, i;

    memset(&s, 0, sizeof(s));
    s.run = run;
    hello_build();
    s.slots = calloc((size_t)run->o->concurrency, sizeof(*s.slots));
    if (s.slots == NULL) {
        perror("tunnel-load: calloc");
        return 2;
    }
    tl_dialer_init(&s.d, run->epfd, run->o->proxy_port, run->o->origin_port,
                   run->o->source);
    s.d.refusal = run->o->refused;
    s.t_stop_new = run->t_start + (uint64_t)(run->o->duration * 1e9);
    slots_tend(&s, tl_now_ns());
    while (slots_busy(&s) > 0) {
        n = tl_run_wait(run, evs, run->t_limit);
        if (n < 0) {
            perror("tunnel-load: epoll_wait");
            break;
        }
        for (i = 0; i < n; i++) {
            slot_event(&s, ((tl_tunnel *)evs[i].data.ptr)->owner,
                       evs[i].events);
        }
        now = tl_now_ns();
        if (now >= run->t_limit) {
            break;
        }
        slots_tend(&s, now);
    }
    for (i = 0; i < run->o->concurrency; i++) {
        if (s.slots[i].busy) {
            slot_fail(&s, &s.slots[i], "time-limit");
        }
    }
    setup_report(&s);
    tl_samples_free(&s.to_200);
    tl_samples_free(&s.whole);
    free(s.slots);
    return s.failed ? 1 : 0;
}
