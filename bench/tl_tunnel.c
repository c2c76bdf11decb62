/*
 * tl_tunnel.c: opening a tunnel without blocking (see tl_tunnel.h).
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tl_net.h"
#include "tl_tunnel.h"

void tl_dialer_init(tl_dialer *d, int epfd, int proxy_port,
                    int origin_port, uint32_t source)
{
    int n;

    memset(d, 0, sizeof(*d));
    d->epfd = epfd;
    d->proxy_port = proxy_port;
    d->origin_port = origin_port;
    d->source = source;
    n = snprintf(d->request, sizeof(d->request),
                 "CONNECT 127.0.0.1:%d HTTP/1.1\r\n"
                 "Host: 127.0.0.1:%d\r\n\r\n", origin_port, origin_port);
    /* Two five-digit ports cannot overflow 160 bytes; clamp anyway. */
    d->request_len = n > 0 && (size_t)n < sizeof(d->request) ? (size_t)n : 0;
}

int tl_tunnel_watch(tl_dialer *d, tl_tunnel *t, uint32_t events)
{
    struct epoll_event ev;
    int op;

    if (t->watched == events) {
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = t;
    op = t->watched == 0 ? EPOLL_CTL_ADD
         : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(d->epfd, op, t->fd, &ev) != 0) {
        return -1;
    }
    t->watched = events;
    return 0;
}

void tl_tunnel_close(tl_tunnel *t)
{
    if (t->fd >= 0) {
        /* close() also removes the fd from every epoll set; a failure
         * here leaves nothing to retry on a socket. */
        (void)close(t->fd);
    }
    t->fd = -1;
    t->watched = 0;
    t->phase = TL_IDLE;
}

static tl_step fail(tl_tunnel *t, const char *why)
{
    t->why = why;
    tl_tunnel_close(t);
    return TL_STEP_FAILED;
}

int tl_tunnel_begin(tl_dialer *d, tl_tunnel *t, void *owner)
{
    memset(t, 0, sizeof(*t));
    t->owner = owner;
    t->t_begin = tl_now_ns();
    t->fd = tl_connect_start(d->proxy_port ? d->proxy_port : d->origin_port,
                             d->source);
    if (t->fd < 0) {
        t->why = errno == EMFILE || errno == ENFILE ? "out-of-fds"
                 : errno == EADDRNOTAVAIL ? "out-of-ports" : "socket";
        return -1;
    }
    t->phase = TL_CONNECTING;
    if (tl_tunnel_watch(d, t, EPOLLOUT) != 0) {
        (void)fail(t, "epoll");
        return -1;
    }
    return 0;
}

static tl_step opened(tl_tunnel *t)
{
    t->phase = TL_OPEN;
    t->t_open = tl_now_ns();
    return TL_STEP_OPEN;
}

static tl_step send_request(tl_dialer *d, tl_tunnel *t)
{
    ssize_t n;

    while (t->sent < d->request_len) {
        n = send(t->fd, d->request + t->sent, d->request_len - t->sent,
                 MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            return tl_tunnel_watch(d, t, EPOLLOUT) == 0 ? TL_STEP_PENDING
                   : fail(t, "epoll");
        }
        if (n <= 0) {
            return fail(t, "send-request");
        }
        t->sent += (size_t)n;
    }
    t->phase = TL_AWAITING;
    return tl_tunnel_watch(d, t, EPOLLIN) == 0 ? TL_STEP_PENDING
           : fail(t, "epoll");
}

/* The head is complete: a 200, or the tunnel failed. */
static tl_step parse_head(const tl_dialer *d, tl_tunnel *t, const char *end)
{
    size_t head = (size_t)(end - t->head) + 4;

    if (t->head_len < 12 || memcmp(t->head, "HTTP/1.", 7) != 0) {
        return fail(t, "bad-response");
    }
    if (d->refusal && memcmp(t->head + 8, " 403", 4) == 0) {
        t->t_open = tl_now_ns();
        return TL_STEP_REFUSED;
    }
    if (memcmp(t->head + 8, " 200", 4) != 0) {
        /* The status, for the report, without copying it anywhere. */
        return fail(t, t->head[9] == '4' ? "status-4xx"
                       : t->head[9] == '5' ? "status-5xx" : "status-other");
    }
    t->early = t->head + head;
    t->early_len = t->head_len - head;
    return opened(t);
}

static tl_step read_head(const tl_dialer *d, tl_tunnel *t)
{
    const char *end;
    ssize_t n;

    for (;;) {
        n = recv(t->fd, t->head + t->head_len,
                 sizeof(t->head) - 1 - t->head_len, 0);
        if (n < 0 && errno == EAGAIN) {
            return TL_STEP_PENDING;
        }
        if (n < 0) {
            return fail(t, "reset-before-200");
        }
        if (n == 0) {
            return fail(t, "closed-before-200");
        }
        t->head_len += (size_t)n;
        t->head[t->head_len] = '\0';
        end = strstr(t->head, "\r\n\r\n");
        if (end != NULL) {
            return parse_head(d, t, end);
        }
        if (t->head_len == sizeof(t->head) - 1) {
            return fail(t, "head-too-long");
        }
    }
}

tl_step tl_tunnel_step(tl_dialer *d, tl_tunnel *t, uint32_t events)
{
    switch (t->phase) {
    case TL_CONNECTING:
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return TL_STEP_PENDING;
        }
        if (tl_connect_result(t->fd) != 0) {
            return fail(t, "connect");
        }
        if (d->proxy_port == 0) {
            return opened(t);
        }
        t->phase = TL_REQUESTING;
        return send_request(d, t);
    case TL_REQUESTING:
        return send_request(d, t);
    case TL_AWAITING:
        return read_head(d, t);
    case TL_OPEN:
    case TL_IDLE:
        break;
    }
    return TL_STEP_PENDING;
}
