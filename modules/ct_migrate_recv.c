/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_migrate_recv.c: the receiving side of moving tunnels between
 * children (see ct_migrate.c).  A thread per child listens on the
 * child's abstract-namespace socket; anyone on the machine can connect
 * to such a socket, so a connection is served only when its peer is a
 * live child of this server under the same user (SO_PEERCRED against
 * the module's per-process records).  Each message is one tunnel: the
 * child takes it if its reactors have room and it is not stopping, takes
 * over its limit counts, answers, and only then queues it on a reactor,
 * which starts relaying.
 */

#include "apr_atomic.h"
#include "apr_strings.h"
#include "apr_thread_proc.h"

#include "ct_private.h"
#include "ct_stats.h"
#include "ct_limits.h"
#include "ct_accesslog.h"
#include "ct_bandwidth.h"

#if defined(__linux__)

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ct_migrate_int.h"

/* Senders served at once (each exiting reactor is one). */
#define CT_MIG_CONNS 32

/* Longest a connection may stay silent before it is dropped. */
#define CT_MIG_SILENCE apr_time_from_sec(60)

typedef struct {
    int fd;
    apr_time_t last;
} ct_mconn;

static int ct_lfd = -1;         /* the listening socket */
static int ct_stopfd = -1;      /* eventfd: stop the thread */
static apr_thread_t *ct_rthread;
static char *ct_msgbuf;         /* one message */
static server_rec *ct_rserver;

/* Whether the head describes a message of len bytes this build reads. */
static int valid(const ct_mig_head *h, apr_size_t len, int nfds)
{
    int want = 2, i;

    if (len < sizeof(*h) || h->magic != (CT_MIG_MAGIC ^ ct_alog_layout())
        || h->size != sizeof(*h)) {
        return 0;
    }
    for (i = 0; i < 2; i++) {
        if (h->held[i] > CT_REACTOR_BUFSIZE) {
            return 0;
        }
        want += (h->flags & (CT_MIG_PIPE << (4 * i))) ? 2 : 0;
    }
    return nfds == want && (apr_uint32_t)nfds == h->nfds
           && h->alog_len <= CT_REACTOR_BUFSIZE
           && len == sizeof(*h) + h->held[0] + h->held[1] + h->alog_len;
}

/* A text of the message, made safe to use as a C string. */
static void copy_text(char *to, const char *from, apr_size_t size)
{
    memcpy(to, from, size);
    to[size - 1] = '\0';
}

/* Fill a record from the message; descriptors taken are set to -1. */
static void build(ct_rtunnel *t, const ct_mig_head *h, const char *data,
                  int *fds)
{
    int i, next = 2;

    t->fd[0] = fds[0];
    t->fd[1] = fds[1];
    fds[0] = fds[1] = -1;
    t->start = h->start;
    t->opened = h->opened;
    t->last = h->last;
    t->first_down = h->first_down;
    t->deadline = h->deadline;
    t->idle = h->idle;
    t->lifetime = h->lifetime;
    t->up0 = (apr_off_t)h->up;
    t->down0 = (apr_off_t)h->down;
    t->nohalfclose = (h->flags & CT_MIG_NOHALFCLOSE) != 0;
    t->zero_copy = (h->flags & CT_MIG_ZEROCOPY) != 0;
    copy_text(t->client, h->client, sizeof(t->client));
    copy_text(t->target, h->target, sizeof(t->target));
    copy_text(t->address, h->address, sizeof(t->address));
    for (i = 0; i < 2; i++) {
        apr_uint32_t f = h->flags >> (4 * i);
        ct_rdir *d = &t->dir[i];

        d->eof = (f & CT_MIG_EOF) != 0;
        d->shut = (f & CT_MIG_SHUT) != 0;
        t->hup[i] = (f & CT_MIG_HUP) != 0;
        if (h->held[i] > 0) {
            d->pend = ct_rtunnel_take_buf(t->owner)->data;
            memcpy(d->pend, data, h->held[i]);
            d->len = h->held[i];
            data += h->held[i];
        }
        if (f & CT_MIG_PIPE) {
            ct_rtunnel_adopt_pipe(t, i, fds[next], fds[next + 1],
                                  (apr_size_t)h->piped[i],
                                  (apr_size_t)h->pipe_cap[i]);
            fds[next] = fds[next + 1] = -1;
            next += 2;
        }
    }
    if (h->alog_len > 0) {
        t->alog = ct_alog_import(data, h->alog_len, h->server);
    }
    if (h->limited) {
        t->lim = ct_rtunnel_take_limit(t->owner);
        t->lim->bw = h->bw;
        ct_bandwidth_adopt(&t->lim->bw);
    }
}

/* Take the tunnel if there is room: its record, not yet queued, or
 * NULL when refused. */
static ct_rtunnel *adopt(const ct_mig_head *h, const char *data, int *fds)
{
    ct_limit_hold hold = h->limits;
    ct_rtunnel *t;

    if (!ct_reactor_reserve_moved()) {
        return NULL;
    }
    if (ct_limits_move_in(&hold, h->reactor, h->seq) != APR_SUCCESS) {
        ct_reactor_unreserve();
        return NULL;
    }
    t = ct_reactor_record();
    t->limits = hold;
    build(t, h, data, fds);
    return t;
}

/* Answer a message; the tunnel is queued after, whatever came of it:
 * the mark says it is ours should the sender not read the answer. */
static void answer(int fd, apr_uint32_t seq, int taken)
{
    ct_mig_answer a;

    a.seq = seq;
    a.taken = (apr_uint32_t)taken;
    if (send(fd, &a, sizeof(a), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, ct_rserver,
                     CT_LOGNO(00384) "migrate: answering a sender failed");
    }
}

/* Take one message from fd.  @return 0, or -1 to drop the connection */
static int receive_one(int fd)
{
    struct iovec iov;
    struct msghdr msg;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CT_MIG_FDS)];
    } ctl;
    struct cmsghdr *cm;
    int fds[CT_MIG_FDS], nfds = 0, i;
    ct_rtunnel *t;
    const ct_mig_head *h = (const ct_mig_head *)ct_msgbuf;
    ssize_t n;

    iov.iov_base = ct_msgbuf;
    iov.iov_len = CT_MIG_MSG_MAX;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof(ctl.buf);
    n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    if (n <= 0) {
        return -1;
    }
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

            for (i = 0; i < k && nfds < CT_MIG_FDS; i++) {
                memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int),
                       sizeof(int));
            }
        }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        || !valid(h, (apr_size_t)n, nfds)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ct_rserver,
                     CT_LOGNO(00385) "migrate: a tunnel message this build "
                     "cannot read (another module build?): refused");
        answer(fd, n >= (ssize_t)sizeof(apr_uint32_t) * 3 ? h->seq : 0, 0);
    }
    else if ((t = adopt(h, ct_msgbuf + sizeof(*h), fds)) != NULL) {
        answer(fd, h->seq, 1);
        ct_stats_moved_in();
        ct_reactor_queue(t);
    }
    else {
        ct_stats_move_refused();
        answer(fd, h->seq, 0);
    }
    for (i = 0; i < nfds; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    return 0;
}

/* Serve a new connection if its peer is a child of this server. */
static void take_conn(ct_mconn *conns, int *n)
{
    pid_t peer;
    int fd = accept4(ct_lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        return;
    }
    peer = ct_mig_peer(fd, 0);
    if (peer == 0 || ct_stats_proc_of(peer, 1) == 0 || *n >= CT_MIG_CONNS) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_rserver, CT_LOGNO(00386)
                     "migrate: connection from process %ld refused: %s",
                     (long)peer, *n >= CT_MIG_CONNS ? "too many senders"
                     : "not a child of this server");
        close(fd);
        return;
    }
    conns[*n].fd = fd;
    conns[*n].last = apr_time_now();
    (*n)++;
}

static void *APR_THREAD_FUNC receiver_main(apr_thread_t *thread, void *data)
{
    struct pollfd pfd[2 + CT_MIG_CONNS];
    ct_mconn conns[CT_MIG_CONNS];
    int n = 0, i, rc;
    apr_time_t now;

    (void)data;
    for (;;) {
        pfd[0].fd = ct_stopfd;
        pfd[0].events = POLLIN;
        pfd[1].fd = ct_lfd;
        pfd[1].events = POLLIN;
        for (i = 0; i < n; i++) {
            pfd[2 + i].fd = conns[i].fd;
            pfd[2 + i].events = POLLIN;
            pfd[2 + i].revents = 0;
        }
        rc = poll(pfd, (nfds_t)(2 + n), n > 0 ? 1000 : -1);
        if (rc < 0 && errno != EINTR) {
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, ct_rserver,
                         CT_LOGNO(00387) "migrate: poll failed; this child "
                         "takes no more tunnels");
            break;
        }
        if (rc > 0 && pfd[0].revents) {
            break;
        }
        now = apr_time_now();
        for (i = n - 1; i >= 0; i--) {
            if (rc > 0 && pfd[2 + i].revents) {
                conns[i].last = now;
                if (receive_one(conns[i].fd) == 0) {
                    continue;
                }
            }
            else if (now - conns[i].last < CT_MIG_SILENCE) {
                continue;
            }
            close(conns[i].fd);
            conns[i] = conns[--n];
        }
        if (rc > 0 && pfd[1].revents) {
            take_conn(conns, &n);
        }
    }
    for (i = 0; i < n; i++) {
        close(conns[i].fd);
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* The child stops (or the reactors do): no more tunnels come in. */
static apr_status_t stop_listening(void *data)
{
    apr_uint64_t one = 1;
    apr_status_t rv;

    (void)data;
    if (ct_rthread != NULL) {
        if (write(ct_stopfd, &one, sizeof(one)) == sizeof(one)) {
            (void)apr_thread_join(&rv, ct_rthread);
        }
        ct_rthread = NULL;
    }
    if (ct_lfd >= 0) {
        close(ct_lfd);
        ct_lfd = -1;
    }
    if (ct_stopfd >= 0) {
        close(ct_stopfd);
        ct_stopfd = -1;
    }
    return APR_SUCCESS;
}

apr_status_t ct_mig_listen(apr_pool_t *pchild, server_rec *s)
{
    struct sockaddr_un sun;
    socklen_t len;
    apr_status_t rv;

    ct_rserver = s;
    ct_rthread = NULL;
    ct_mig_address(&sun, &len, getppid(), getpid());
    ct_lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
    ct_stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ct_lfd < 0 || ct_stopfd < 0
        || bind(ct_lfd, (struct sockaddr *)&sun, len) != 0
        || listen(ct_lfd, CT_MIG_CONNS) != 0) {
        rv = errno;
        (void)stop_listening(NULL);
        return rv;
    }
    ct_msgbuf = apr_palloc(pchild, CT_MIG_MSG_MAX);
    rv = apr_thread_create(&ct_rthread, NULL, receiver_main, NULL, pchild);
    if (rv != APR_SUCCESS) {
        ct_rthread = NULL;
        (void)stop_listening(NULL);
        return rv;
    }
    /* Registered after the reactors' drain, so run before it: a child
     * that exits takes no more tunnels before it moves its own. */
    apr_pool_pre_cleanup_register(pchild, NULL, stop_listening);
    return APR_SUCCESS;
}

#endif /* __linux__ */
