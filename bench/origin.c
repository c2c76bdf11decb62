/*
 * origin: the servers a benchmark tunnels to, in one single-threaded epoll
 * process on 127.0.0.1, so the origin costs the same for every proxy and
 * for the direct runs.  Each argument adds one listening port:
 *
 *   echo:PORT            send back whatever arrives
 *   sink:PORT[:verify]   read and count; at the end of stream answer
 *                        "bytes=N verify=ok|bad|off\n" and close; with
 *                        verify, check every byte against the pattern
 *   source:PORT          read a line "N\n" (or "forever\n"), send N
 *                        pattern bytes, then close
 *   source:PORT:N        send N bytes (or forever) at once, no request
 *   hold:PORT            accept and keep open; read and drop anything
 *
 * Options: --time-limit S (default 3600) stops it by itself.  It also
 * stops on SIGTERM or SIGINT and prints its counters to stderr.
 */

/* accept4(), to get non-blocking sockets without two more syscalls. */
#define _GNU_SOURCE

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tl_net.h"
#include "tl_pattern.h"

#define OR_MAX_LISTENERS 32
#define OR_MAX_EVENTS 256
#define OR_IO_SIZE (256 * 1024)
#define OR_BACKLOG 4096
/* Accepts, reads or writes per event before others get a turn. */
#define OR_BURST 16

typedef enum { OR_ECHO, OR_SINK, OR_SOURCE, OR_HOLD } or_kind;

/* Shared head of listeners and connections, told apart in epoll. */
typedef struct {
    int fd;
    int is_listener;
} or_head;

typedef struct {
    or_head h;
    or_kind kind;
    int port;
    int verify;                 /* sink: check the pattern */
    int fixed;                  /* source: size given, no request line */
    int forever;
    uint64_t size;
    uint64_t accepted;
} or_listener;

typedef struct {
    or_head h;
    or_listener *l;
    uint32_t watched;
    uint64_t count;             /* sink: bytes read; source: bytes sent */
    uint64_t size;              /* source: bytes to send */
    int forever;
    int sending;                /* source: request read */
    int draining;               /* source: all sent, awaiting the close */
    int bad;                    /* sink: a byte differed */
    char line[40];              /* source: request; sink: report */
    size_t line_len;
    size_t line_off;
    char *buf;                  /* echo: bytes not yet sent back */
    size_t pend_off;
    size_t pend_len;
    int eof;                    /* echo: the peer finished sending */
} or_conn;

static volatile sig_atomic_t stop_signal;
static unsigned char scratch[OR_IO_SIZE];
static int epfd;
static uint64_t conns_open, conns_total;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int watch(or_conn *c, uint32_t events)
{
    struct epoll_event ev;

    if (c->watched == events) {
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->h.fd, &ev) != 0) {
        return -1;
    }
    c->watched = events;
    return 0;
}

static void conn_close(or_conn *c)
{
    /* close() drops the fd from epoll; nothing to retry if it fails. */
    (void)close(c->h.fd);
    free(c->buf);
    free(c);
    conns_open--;
}

/* Echo: write what is pending; read more only when nothing is. */
static void echo_event(or_conn *c)
{
    ssize_t n;
    int i;

    for (i = 0; i < OR_BURST; i++) {
        if (c->pend_len > 0) {
            n = send(c->h.fd, c->buf + c->pend_off, c->pend_len,
                     MSG_NOSIGNAL);
            if (n < 0 && errno == EAGAIN) {
                if (watch(c, EPOLLOUT) != 0) {
                    conn_close(c);
                }
                return;
            }
            if (n <= 0) {
                conn_close(c);
                return;
            }
            c->pend_off += (size_t)n;
            c->pend_len -= (size_t)n;
            continue;
        }
        if (c->eof) {
            conn_close(c);
            return;
        }
        n = recv(c->h.fd, c->buf, OR_IO_SIZE, 0);
        if (n < 0 && errno == EAGAIN) {
            if (watch(c, EPOLLIN) != 0) {
                conn_close(c);
            }
            return;
        }
        if (n < 0) {
            conn_close(c);
            return;
        }
        c->eof = n == 0;
        c->pend_off = 0;
        c->pend_len = (size_t)n;
    }
}

/* Sink: at the end of stream, the report; then close. */
static void sink_report(or_conn *c)
{
    ssize_t n;
    int len;

    if (c->line_len == 0) {
        len = snprintf(c->line, sizeof(c->line), "bytes=%" PRIu64
                       " verify=%s\n", c->count,
                       !c->l->verify ? "off" : c->bad ? "bad" : "ok");
        c->line_len = len > 0 ? (size_t)len : 0;
    }
    while (c->line_off < c->line_len) {
        n = send(c->h.fd, c->line + c->line_off, c->line_len - c->line_off,
                 MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            if (watch(c, EPOLLOUT) != 0) {
                conn_close(c);
            }
            return;
        }
        if (n <= 0) {
            break;
        }
        c->line_off += (size_t)n;
    }
    conn_close(c);
}

static void sink_event(or_conn *c)
{
    uint64_t bad;
    ssize_t n;
    int i;

    if (c->eof) {
        sink_report(c);
        return;
    }
    for (i = 0; i < OR_BURST; i++) {
        n = recv(c->h.fd, scratch, sizeof(scratch), 0);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n < 0) {
            conn_close(c);
            return;
        }
        if (n == 0) {
            c->eof = 1;
            sink_report(c);
            return;
        }
        if (c->l->verify && !c->bad
            && tl_pattern_check(c->count, scratch, (size_t)n, &bad) != 0) {
            c->bad = 1;
            fprintf(stderr, "origin: sink %d: wrong byte at offset %" PRIu64
                    "\n", c->l->port, bad);
        }
        c->count += (uint64_t)n;
    }
}

/* Source: the request line "N\n" or "forever\n"; 0 once it is parsed. */
static int source_request(or_conn *c)
{
    char *nl;
    ssize_t n;

    n = recv(c->h.fd, c->line + c->line_len,
             sizeof(c->line) - 1 - c->line_len, 0);
    if (n < 0 && errno == EAGAIN) {
        return 1;
    }
    if (n <= 0) {
        return -1;
    }
    c->line_len += (size_t)n;
    c->line[c->line_len] = '\0';
    nl = strchr(c->line, '\n');
    if (nl == NULL) {
        return c->line_len == sizeof(c->line) - 1 ? -1 : 1;
    }
    *nl = '\0';
    if (strcmp(c->line, "forever") == 0) {
        c->forever = 1;
    }
    else if (tl_parse_size(c->line, &c->size) != 0) {
        fprintf(stderr, "origin: source %d: bad request '%s'\n",
                c->l->port, c->line);
        return -1;
    }
    /* A byte behind the line would be lost: the protocol has none. */
    c->sending = 1;
    return watch(c, EPOLLOUT) == 0 ? 0 : -1;
}

/* Source: sent everything; half-close and wait for the client's close,
 * so that no unread byte turns our close into a reset. */
static void source_drain(or_conn *c)
{
    ssize_t n;
    int i;

    if (!c->draining) {
        c->draining = 1;
        if (shutdown(c->h.fd, SHUT_WR) != 0 || watch(c, EPOLLIN) != 0) {
            conn_close(c);
            return;
        }
    }
    for (i = 0; i < OR_BURST; i++) {
        n = recv(c->h.fd, scratch, sizeof(scratch), 0);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            break;
        }
    }
    if (i < OR_BURST) {
        conn_close(c);
    }
}

static void source_event(or_conn *c)
{
    uint64_t left;
    size_t len;
    ssize_t n;
    int i, rc;

    if (!c->sending) {
        rc = source_request(c);
        if (rc != 0) {
            if (rc < 0) {
                conn_close(c);
            }
            return;
        }
    }
    for (i = 0; i < OR_BURST && !c->draining; i++) {
        left = c->forever ? OR_IO_SIZE : c->size - c->count;
        if (left == 0) {
            break;
        }
        len = left < OR_IO_SIZE ? (size_t)left : OR_IO_SIZE;
        n = send(c->h.fd, tl_pattern_at(c->count), len, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->count += (uint64_t)n;
    }
    if (c->draining || (!c->forever && c->count == c->size)) {
        source_drain(c);
    }
}

static void hold_event(or_conn *c)
{
    ssize_t n = recv(c->h.fd, scratch, sizeof(scratch), 0);

    if (n == 0 || (n < 0 && errno != EAGAIN)) {
        conn_close(c);
    }
}

static void conn_event(or_conn *c)
{
    switch (c->l->kind) {
    case OR_ECHO:
        echo_event(c);
        break;
    case OR_SINK:
        sink_event(c);
        break;
    case OR_SOURCE:
        source_event(c);
        break;
    case OR_HOLD:
        hold_event(c);
        break;
    }
}

/* A new connection: its record and its first interest. */
static int conn_add(or_listener *l, int fd)
{
    struct epoll_event ev;
    or_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return -1;
    }
    c->h.fd = fd;
    c->l = l;
    if (l->kind == OR_ECHO && (c->buf = malloc(OR_IO_SIZE)) == NULL) {
        free(c);
        return -1;
    }
    c->sending = l->kind == OR_SOURCE && l->fixed;
    c->forever = l->forever;
    c->size = l->size;
    c->watched = c->sending ? EPOLLOUT : EPOLLIN;
    memset(&ev, 0, sizeof(ev));
    ev.events = c->watched;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c->buf);
        free(c);
        return -1;
    }
    conns_open++;
    conns_total++;
    l->accepted++;
    return 0;
}

static void accept_event(or_listener *l)
{
    int i, fd;

    for (i = 0; i < OR_BURST; i++) {
        fd = accept4(l->h.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != ECONNABORTED) {
                perror("origin: accept");
            }
            return;
        }
        if (conn_add(l, fd) != 0) {
            perror("origin: new connection");
            (void)close(fd);
        }
    }
}

/* "kind:port[:extra]" into a listener; -1 on a malformed spec. */
static int parse_spec(const char *spec, or_listener *l)
{
    char kind[16], extra[32] = "";
    int port, n;

    n = sscanf(spec, "%15[a-z]:%d:%31s", kind, &port, extra);
    if (n < 2 || port < 1 || port > 65535) {
        return -1;
    }
    memset(l, 0, sizeof(*l));
    l->port = port;
    if (strcmp(kind, "echo") == 0 || strcmp(kind, "hold") == 0) {
        l->kind = kind[0] == 'e' ? OR_ECHO : OR_HOLD;
        return n == 2 ? 0 : -1;
    }
    if (strcmp(kind, "sink") == 0) {
        l->kind = OR_SINK;
        l->verify = n == 3;
        return n == 2 || strcmp(extra, "verify") == 0 ? 0 : -1;
    }
    if (strcmp(kind, "source") == 0) {
        l->kind = OR_SOURCE;
        l->fixed = n == 3;
        l->forever = n == 3 && strcmp(extra, "forever") == 0;
        return n == 2 || l->forever || tl_parse_size(extra, &l->size) == 0
               ? 0 : -1;
    }
    return -1;
}

static int add_listener(or_listener *l)
{
    struct epoll_event ev;

    l->h.is_listener = 1;
    l->h.fd = tl_listen(l->port, OR_BACKLOG);
    if (l->h.fd < 0) {
        fprintf(stderr, "origin: listen on 127.0.0.1:%d: %s\n", l->port,
                strerror(errno));
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = l;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, l->h.fd, &ev);
}

static int setup(int argc, char **argv, or_listener *ls, int *nls,
                 double *limit)
{
    struct sigaction sa;
    char *end;
    int i;

    *nls = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--time-limit") == 0 && i + 1 < argc) {
            *limit = strtod(argv[++i], &end);
            if (*end != '\0' || !(*limit > 0)) {
                return -1;
            }
        }
        else if (*nls == OR_MAX_LISTENERS
                 || parse_spec(argv[i], &ls[(*nls)++]) != 0) {
            fprintf(stderr, "origin: bad argument '%s'\n", argv[i]);
            return -1;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    if (*nls == 0 || sigemptyset(&sa.sa_mask) != 0
        || sigaction(SIGTERM, &sa, NULL) != 0
        || sigaction(SIGINT, &sa, NULL) != 0
        || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        return -1;
    }
    /* A hold port keeps thousands open: take what the hard limit gives. */
    if (tl_raise_nofile((rlim_t)1 << 20) == 0 || tl_pattern_init() != 0) {
        return -1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    return epfd < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    or_listener ls[OR_MAX_LISTENERS];
    struct epoll_event evs[OR_MAX_EVENTS];
    double limit = 3600;
    uint64_t deadline;
    or_head *h;
    int nls, i, n;

    if (setup(argc, argv, ls, &nls, &limit) != 0) {
        fprintf(stderr, "usage: origin [--time-limit S] "
                "echo:PORT|sink:PORT[:verify]|source:PORT[:N]|hold:PORT...\n");
        return 2;
    }
    for (i = 0; i < nls; i++) {
        if (add_listener(&ls[i]) != 0) {
            return 1;
        }
    }
    deadline = tl_now_ns() + (uint64_t)(limit * 1e9);
    while (!stop_signal && tl_now_ns() < deadline) {
        n = epoll_wait(epfd, evs, OR_MAX_EVENTS, 200);
        if (n < 0 && errno != EINTR) {
            perror("origin: epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++) {
            h = evs[i].data.ptr;
            if (h->is_listener) {
                accept_event((or_listener *)h);
            }
            else {
                conn_event((or_conn *)h);
            }
        }
    }
    fprintf(stderr, "origin: stopping: %" PRIu64 " connections, %" PRIu64
            " open\n", conns_total, conns_open);
    return 0;
}
