/*
 * tl_bulk.c: bulk transfers through N tunnels at once.
 *
 * Down: each tunnel sends the source origin its byte count as one line
 * and reads that many bytes to the end of stream.  Up: each tunnel sends
 * the bytes to a sink origin, shuts its write side and reads the sink's
 * one-line report ("bytes=N verify=ok|bad|off"), so the count is taken
 * where the bytes arrive and the half-close is part of every run.  The
 * clock runs from the first tunnel's 200 to the last tunnel's end.
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
#include "tl_tunnel.h"

/* Reads or writes per event before other tunnels get a turn. */
#define TL_BULK_BURST 8

typedef struct {
    tl_tunnel t;
    uint64_t moved;             /* payload sent (up) or received (down) */
    char line[96];              /* down: request; up: the sink's report */
    size_t line_len;
    size_t line_off;            /* down: request bytes sent */
    uint64_t t_end;
    uint64_t t_moved;           /* last byte sent or received */
    int done;                   /* 1 finished well, -1 failed */
    const char *why;
} bulk_conn;

typedef struct {
    tl_run *run;
    tl_dialer d;
    bulk_conn *c;
    int up;
    int active;                 /* tunnels neither done nor failed */
    int failed;
    int mismatches;
    uint64_t bad_offset;        /* first wrong byte seen, for the report */
    const char *first_why;
    uint64_t t_first_open;
    uint64_t t_last_end;
} bulk;

static void finish(bulk *b, bulk_conn *c, const char *why)
{
    if (c->done != 0) {
        return;
    }
    c->t_end = tl_now_ns();
    c->done = why == NULL ? 1 : -1;
    c->why = why;
    if (why != NULL) {
        b->failed++;
        if (b->first_why == NULL) {
            b->first_why = why;
        }
        fprintf(stderr, "tunnel-load: tunnel %d failed: %s after %" PRIu64
                " bytes%s%.*s\n", (int)(c - b->c), why, c->moved,
                b->up ? "; sink's report so far: " : "",
                b->up ? (int)strcspn(c->line, "\n") : 0, c->line);
    }
    else if (c->t_end > b->t_last_end) {
        b->t_last_end = c->t_end;
    }
    b->active--;
    tl_tunnel_close(&c->t);
}

/* Down: received bytes, checked against the pattern when asked. */
static void take_down(bulk *b, bulk_conn *c, const unsigned char *p,
                      size_t n)
{
    uint64_t bad;

    if (c->moved + n > b->run->o->bytes) {
        finish(b, c, "more-bytes-than-asked");
        return;
    }
    if (b->run->o->verify && tl_pattern_check(c->moved, p, n, &bad) != 0) {
        if (b->mismatches++ == 0) {
            b->bad_offset = bad;
        }
        finish(b, c, "wrong-bytes");
        return;
    }
    c->moved += n;
}

/* Up: the sink's report, checked once it is complete. */
static void take_report(bulk *b, bulk_conn *c, const char *p, size_t n)
{
    if (n > sizeof(c->line) - 1 - c->line_len) {
        finish(b, c, "report-too-long");
        return;
    }
    memcpy(c->line + c->line_len, p, n);
    c->line_len += n;
    c->line[c->line_len] = '\0';
}

static void check_report(bulk *b, bulk_conn *c)
{
    char want[64];
    int n;

    n = snprintf(want, sizeof(want), "bytes=%" PRIu64 " ", c->moved);
    if (n <= 0 || strncmp(c->line, want, (size_t)n) != 0) {
        fprintf(stderr, "tunnel-load: tunnel %d sent %" PRIu64 " bytes, "
                "the sink said '%.*s'\n", (int)(c - b->c), c->moved,
                (int)strcspn(c->line, "\n"), c->line);
        finish(b, c, "sink-count-differs");
        return;
    }
    if (strstr(c->line, "verify=bad") != NULL) {
        b->mismatches++;
        finish(b, c, "wrong-bytes-at-sink");
        return;
    }
    finish(b, c, NULL);
}

static void on_readable(bulk *b, bulk_conn *c)
{
    ssize_t n;
    int i;

    for (i = 0; i < TL_BULK_BURST && c->done == 0; i++) {
        n = recv(c->t.fd, b->run->buf, b->run->o->io_size, 0);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n < 0) {
            finish(b, c, "recv-error");
            return;
        }
        if (n == 0) {
            if (b->up) {
                check_report(b, c);
            }
            else if (c->moved == b->run->o->bytes) {
                finish(b, c, NULL);
            }
            else {
                finish(b, c, "short-stream");
            }
            return;
        }
        c->t_moved = tl_now_ns();
        if (b->up) {
            take_report(b, c, (const char *)b->run->buf, (size_t)n);
        }
        else {
            take_down(b, c, b->run->buf, (size_t)n);
        }
    }
}

/* Up: push the pattern; at the end, half-close and await the report. */
static void send_payload(bulk *b, bulk_conn *c)
{
    uint64_t left;
    size_t len;
    ssize_t n;
    int i;

    for (i = 0; i < TL_BULK_BURST; i++) {
        left = b->run->o->bytes - c->moved;
        if (left == 0) {
            if (shutdown(c->t.fd, SHUT_WR) != 0) {
                finish(b, c, "shutdown");
            }
            else if (tl_tunnel_watch(&b->d, &c->t, EPOLLIN) != 0) {
                finish(b, c, "epoll");
            }
            return;
        }
        len = left < b->run->o->io_size ? (size_t)left : b->run->o->io_size;
        n = send(c->t.fd, tl_pattern_at(c->moved), len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            finish(b, c, "send-error");
            return;
        }
        c->moved += (uint64_t)n;
        c->t_moved = tl_now_ns();
    }
}

/* Down: the request line, normally in one send. */
static void send_request(bulk *b, bulk_conn *c)
{
    ssize_t n;

    while (c->line_off < c->line_len) {
        n = send(c->t.fd, c->line + c->line_off, c->line_len - c->line_off,
                 MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            finish(b, c, "send-error");
            return;
        }
        c->line_off += (size_t)n;
    }
    if (tl_tunnel_watch(&b->d, &c->t, EPOLLIN) != 0) {
        finish(b, c, "epoll");
    }
}

static void on_open(bulk *b, bulk_conn *c)
{
    int n;

    if (b->t_first_open == 0) {
        b->t_first_open = c->t.t_open;
    }
    c->t_moved = c->t.t_open;
    if (b->up) {
        if (c->t.early_len > 0) {
            finish(b, c, "unexpected-bytes");
            return;
        }
        if (tl_tunnel_watch(&b->d, &c->t, EPOLLIN | EPOLLOUT) != 0) {
            finish(b, c, "epoll");
            return;
        }
        send_payload(b, c);
        return;
    }
    n = snprintf(c->line, sizeof(c->line), "%" PRIu64 "\n",
                 b->run->o->bytes);
    c->line_len = n > 0 ? (size_t)n : 0;
    /* The source answers only after the request: nothing came early. */
    if (c->t.early_len > 0) {
        take_down(b, c, (const unsigned char *)c->t.early, c->t.early_len);
    }
    if (c->done == 0 && tl_tunnel_watch(&b->d, &c->t, EPOLLOUT) != 0) {
        finish(b, c, "epoll");
        return;
    }
    send_request(b, c);
}

static void on_event(bulk *b, bulk_conn *c, uint32_t ev)
{
    tl_step st;

    if (c->done != 0) {
        return;
    }
    if (c->t.phase != TL_OPEN) {
        st = tl_tunnel_step(&b->d, &c->t, ev);
        if (st == TL_STEP_FAILED) {
            finish(b, c, c->t.why);
        }
        else if (st == TL_STEP_OPEN) {
            on_open(b, c);
        }
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(b, c);
    }
    if (c->done == 0 && (ev & EPOLLOUT)) {
        if (b->up) {
            send_payload(b, c);
        }
        else {
            send_request(b, c);
        }
    }
}

/*
 * Tunnels still short of their 200 past the open timeout fail, and so do
 * open ones where nothing moved for the stall timeout: a relay that loses
 * an end of stream would otherwise hold the run until the proxy's own
 * idle timeout, and the report says which it was.
 */
static void check_timeouts(bulk *b, uint64_t now)
{
    uint64_t limit = (uint64_t)(b->run->o->open_timeout * 1e9);
    uint64_t stall = (uint64_t)(b->run->o->stall_timeout * 1e9);
    bulk_conn *c;
    int i;

    for (i = 0; i < b->run->o->tunnels; i++) {
        c = &b->c[i];
        if (c->done != 0) {
            continue;
        }
        if (c->t.phase != TL_OPEN && now - c->t.t_begin > limit) {
            finish(b, c, "no-200-in-time");
        }
        else if (c->t.phase == TL_OPEN && now - c->t_moved > stall) {
            finish(b, c, b->up && c->moved == b->run->o->bytes
                         ? "stalled-awaiting-sink-report"
                         : !b->up && c->moved == b->run->o->bytes
                         ? "stalled-awaiting-end-of-stream" : "stalled");
        }
    }
}

static void report(bulk *b)
{
    const tl_opts *o = b->run->o;
    uint64_t total = 0;
    double secs = 0;
    int i;

    for (i = 0; i < o->tunnels; i++) {
        total += b->c[i].done == 1 ? b->c[i].moved : 0;
    }
    if (b->failed == 0 && b->t_last_end > b->t_first_open) {
        secs = (double)(b->t_last_end - b->t_first_open) / 1e9;
    }
    tl_run_report_head(b->run);
    printf(" tunnels=%d bytes_per_tunnel=%" PRIu64 " ok=%d failed=%d"
           " bytes=%" PRIu64 " seconds=%.6f mib_s=%.1f verify=%s"
           " mismatches=%d", o->tunnels, o->bytes,
           o->tunnels - b->failed, b->failed, total, secs,
           secs > 0 ? (double)total / 1048576.0 / secs : 0.0,
           !o->verify ? "off" : b->mismatches ? "bad" : "ok", b->mismatches);
    if (b->mismatches) {
        printf(" first_bad_offset=%" PRIu64, b->bad_offset);
    }
    printf(" error=%s\n", b->first_why ? b->first_why : "none");
}

static void loop(bulk *b)
{
    struct epoll_event evs[TL_MAX_EVENTS];
    uint64_t now;
    int n, i;

    while (b->active > 0) {
        n = tl_run_wait(b->run, evs, b->run->t_limit);
        if (n < 0) {
            perror("tunnel-load: epoll_wait");
            break;
        }
        for (i = 0; i < n; i++) {
            on_event(b, ((tl_tunnel *)evs[i].data.ptr)->owner,
                     evs[i].events);
        }
        now = tl_now_ns();
        check_timeouts(b, now);
        if (now >= b->run->t_limit) {
            break;
        }
    }
    for (i = 0; i < b->run->o->tunnels; i++) {
        finish(b, &b->c[i], "time-limit");
    }
}

int tl_mode_bulk(tl_run *run, int up)
{
    bulk b;
    int i;

    memset(&b, 0, sizeof(b));
    b.run = run;
    b.up = up;
    b.c = calloc((size_t)run->o->tunnels, sizeof(*b.c));
    if (b.c == NULL) {
        perror("tunnel-load: calloc");
        return 2;
    }
    tl_dialer_init(&b.d, run->epfd, run->o->proxy_port,
                   run->o->origin_port, run->o->source);
    b.active = run->o->tunnels;
    for (i = 0; i < run->o->tunnels; i++) {
        if (tl_tunnel_begin(&b.d, &b.c[i].t, &b.c[i]) != 0) {
            finish(&b, &b.c[i], b.c[i].t.why);
        }
    }
    loop(&b);
    report(&b);
    free(b.c);
    return b.failed ? 1 : 0;
}
