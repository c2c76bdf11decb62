/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_migrate.c: a gracefully exiting child (graceful restart, idle
 * retirement, MaxConnectionsPerChild) moves its reactor tunnels to a
 * live child of the current generation instead of waiting for them to
 * end: each old child kept running for its longest tunnel, and enough of
 * them fill the scoreboard (AH03490).
 *
 * Every child with reactors listens on an abstract-namespace Unix socket
 * named after its parent's PID and its own (ct_migrate_recv.c).  On a
 * graceful exit each reactor thread, which alone touches its tunnels,
 * finds a live child of the running generation in the scoreboard,
 * connects, checks that the peer is that process (SO_PEERCRED), and sends
 * its tunnels one message at a time: both sockets, a pipe that still
 * holds bytes, and the state (bytes held in buffers, counts, clocks,
 * deadlines, the access-log record).  It stops reading them first, and
 * the receiver answers before it relays, so no byte is read twice or
 * lost.  A refusal (the receiver is full or stopping) sends the sender
 * to the next child; when no child takes the tunnels within
 * CT_MIG_WINDOW the rest drain as before.  Who holds a tunnel's limit
 * counts is settled under the limits' mutex with a mark per move
 * (ct_limits_move_in(), ct_limits_move_unknown()).
 */

#include "apr_atomic.h"
#include "apr_strings.h"

#include "ap_mpm.h"
#include "scoreboard.h"

#include "ct_private.h"
#include "ct_stats.h"
#include "ct_limits.h"
#include "ct_accesslog.h"

#if defined(__linux__)

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ct_migrate_int.h"

/* How long an exiting child looks for children to take its tunnels:
 * after a graceful restart the new generation needs a moment to start. */
#define CT_MIG_WINDOW apr_time_from_sec(10)

/* Receivers that refused, skipped until the next round. */
#define CT_MIG_SKIP 16

/* What one reactor's sending side holds. */
typedef struct {
    int active;
    int later;                  /* no receiver now: wait before asking */
    int fd;                     /* connection to a receiver, or -1 */
    pid_t pid;                  /* the receiver */
    apr_uint32_t seq;
    apr_uint32_t moved;
    pid_t skip[CT_MIG_SKIP];
    int nskip;
    int rotor;                  /* where the next search starts */
} ct_sender;

static ct_sender ct_senders[CT_REACTOR_MAX];
static int ct_mig_on;
static apr_time_t ct_mig_until;
static server_rec *ct_mig_server;

void ct_mig_address(struct sockaddr_un *sun, socklen_t *len, pid_t ppid,
                    pid_t pid)
{
    int n;

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    /* sun_path[0] stays 0: the abstract namespace, no file to clean. */
    n = apr_snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
                     "mod_connect_tunnel/%ld/%ld", (long)ppid, (long)pid);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

pid_t ct_mig_peer(int fd, pid_t pid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0
        || cred.uid != geteuid() || cred.pid <= 0
        || cred.pid == getpid() || (pid != 0 && cred.pid != pid)) {
        return 0;
    }
    return cred.pid;
}

void ct_migrate_child_init(apr_pool_t *pchild, server_rec *s, int on)
{
    apr_status_t rv;
    int i;

    ct_mig_server = s;
    ct_mig_on = 0;
    for (i = 0; i < CT_REACTOR_MAX; i++) {
        memset(&ct_senders[i], 0, sizeof(ct_senders[i]));
        ct_senders[i].fd = -1;
    }
    if (!on || !ct_reactor_running()) {
        return;
    }
    if ((rv = ct_mig_listen(pchild, s)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00380)
                     "migrate: cannot listen for tunnels of exiting "
                     "children; this child's own drain as before");
        return;
    }
    ct_mig_on = 1;
}

int ct_migrate_enabled(void)
{
    return ct_mig_on;
}

int ct_migrate_begin(int nreactors)
{
    int i;

    if (!ct_mig_on) {
        return 0;
    }
    ct_mig_until = apr_time_now() + CT_MIG_WINDOW;
    for (i = 0; i < nreactors && i < CT_REACTOR_MAX; i++) {
        ct_senders[i].active = 1;
        ct_senders[i].rotor = (int)getpid() + i;
    }
    return 1;
}

int ct_migrate_sending(const ct_reactor *re)
{
    return ct_senders[re->index].active;
}

int ct_migrate_wait_ms(const ct_reactor *re)
{
    return ct_senders[re->index].later ? CT_MIGRATE_RETRY_MS : 0;
}

static void hang_up(ct_sender *sd)
{
    if (sd->fd >= 0) {
        close(sd->fd);
        sd->fd = -1;
    }
}

static int skipped(const ct_sender *sd, pid_t pid)
{
    int i;

    for (i = 0; i < sd->nskip; i++) {
        if (sd->skip[i] == pid) {
            return 1;
        }
    }
    return 0;
}

static void skip(ct_sender *sd, pid_t pid)
{
    if (sd->nskip < CT_MIG_SKIP) {
        sd->skip[sd->nskip++] = pid;
    }
}

/* Connect to child pid and check that it is the one listening. */
static int dial(pid_t pid)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, size = (int)(2 * CT_MIG_MSG_MAX);

    ct_mig_address(&sun, &len, getppid(), pid);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* Room for the largest message (the kernel may cap it lower: then
     * such a message fails and its tunnel stays). */
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (connect(fd, (struct sockaddr *)&sun, len) != 0
        || ct_mig_peer(fd, pid) != pid) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A live child of the running generation, not this one, not skipped:
 * connected, or CT_MOVE_LATER / CT_MOVE_OFF when there is none. */
static ct_move find_receiver(ct_sender *sd)
{
    int limit = 0, i, slot;
    ap_generation_t gen;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS
        || limit <= 0 || ap_scoreboard_image == NULL) {
        return CT_MOVE_OFF;
    }
    gen = ap_scoreboard_image->global->running_generation;
    for (i = 0; i < limit; i++) {
        process_score *ps;

        slot = (sd->rotor + i) % limit;
        ps = &ap_scoreboard_image->parent[slot];
        if (ps->pid <= 0 || ps->pid == getpid() || ps->generation != gen
            || ps->quiescing || skipped(sd, ps->pid)) {
            continue;
        }
        if ((sd->fd = dial(ps->pid)) >= 0) {
            sd->pid = ps->pid;
            sd->rotor = slot + 1;
            return CT_MOVE_DONE;
        }
        skip(sd, ps->pid);
    }
    /* Nobody now: refusals may not last (a full child's tunnels end, a
     * new child starts), so the next round asks everyone again. */
    sd->nskip = 0;
    return apr_time_now() < ct_mig_until ? CT_MOVE_LATER : CT_MOVE_OFF;
}

/* The message's head for t. */
static void describe(const ct_rtunnel *t, ct_sender *sd, int reactor,
                     ct_mig_head *h)
{
    int i;

    memset(h, 0, sizeof(*h));
    h->magic = CT_MIG_MAGIC ^ ct_alog_layout();
    h->size = sizeof(*h);
    h->seq = sd->seq;
    h->reactor = reactor;
    h->start = t->start;
    h->opened = t->opened;
    h->last = t->last;
    h->first_down = t->first_down;
    h->deadline = t->deadline;
    h->idle = t->idle;
    h->lifetime = t->lifetime;
    h->up = (apr_uint64_t)(t->up0 + t->dir[0].bytes);
    h->down = (apr_uint64_t)(t->down0 + t->dir[1].bytes);
    h->limits = t->limits;
    h->limits.h2_count = NULL;
    h->flags = (t->nohalfclose ? CT_MIG_NOHALFCLOSE : 0)
               | (t->zero_copy ? CT_MIG_ZEROCOPY : 0);
    for (i = 0; i < 2; i++) {
        const ct_rdir *d = &t->dir[i];
        apr_uint32_t f = (d->eof ? CT_MIG_EOF : 0)
                         | (d->shut ? CT_MIG_SHUT : 0)
                         | (t->hup[i] ? CT_MIG_HUP : 0);

        if (d->pipe && d->pipe->pending > 0) {
            f |= CT_MIG_PIPE;
            h->piped[i] = d->pipe->pending;
            h->pipe_cap[i] = d->pipe->capacity;
        }
        h->flags |= f << (4 * i);
        h->held[i] = d->len;
    }
    memcpy(h->client, t->client, sizeof(h->client));
    memcpy(h->target, t->target, sizeof(h->target));
    memcpy(h->address, t->address, sizeof(h->address));
    h->alog_len = (apr_uint32_t)ct_alog_export(t->alog, &h->server);
    /* Its bandwidth budgets go on (and its share of its client's entry,
     * which the receiver gives back when the tunnel ends). */
    h->limited = t->lim != NULL;
    if (t->lim) {
        h->bw = t->lim->bw;
    }
}

/* Send t's message; 0 or an errno. */
static int put_message(ct_sender *sd, const ct_rtunnel *t, ct_mig_head *h)
{
    struct iovec iov[4];
    struct msghdr msg;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CT_MIG_FDS)];
    } ctl;
    struct cmsghdr *cm;
    int fds[CT_MIG_FDS], n = 0, i;

    fds[n++] = t->fd[0];
    fds[n++] = t->fd[1];
    for (i = 0; i < 2; i++) {
        if (h->flags & (CT_MIG_PIPE << (4 * i))) {
            fds[n++] = t->dir[i].pipe->rfd;
            fds[n++] = t->dir[i].pipe->wfd;
        }
    }
    h->nfds = (apr_uint32_t)n;
    iov[0].iov_base = h;
    iov[0].iov_len = sizeof(*h);
    for (i = 0; i < 2; i++) {
        iov[1 + i].iov_base = h->held[i] ? t->dir[i].pend
                                           + t->dir[i].off : NULL;
        iov[1 + i].iov_len = h->held[i];
    }
    iov[3].iov_base = (void *)(h->alog_len ? ct_alog_wire(t->alog) : NULL);
    iov[3].iov_len = h->alog_len;
    memset(&msg, 0, sizeof(msg));
    memset(&ctl, 0, sizeof(ctl));
    msg.msg_iov = iov;
    msg.msg_iovlen = 4;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    while (sendmsg(sd->fd, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

/* The receiver's answer: 1 taken, 0 refused, -1 none (EOF or error,
 * *died set) or -2 none in time. */
static int get_answer(ct_sender *sd, int *died)
{
    struct pollfd pfd;
    ct_mig_answer a;
    ssize_t n;
    int rc;

    *died = 0;
    pfd.fd = sd->fd;
    pfd.events = POLLIN;
    do {
        rc = poll(&pfd, 1, CT_MIG_ANSWER_MS);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        return -2;
    }
    n = rc > 0 ? recv(sd->fd, &a, sizeof(a), MSG_DONTWAIT) : -1;
    if (n == (ssize_t)sizeof(a) && a.seq == sd->seq) {
        return a.taken ? 1 : 0;
    }
    *died = n == 0 || (n < 0 && errno == ECONNRESET);
    return -1;
}

/* t is the receiver's: let go of it here without a sound. */
static void let_go(ct_rtunnel *t)
{
    int i;

    for (i = 0; i < 2; i++) {
        ct_rtunnel_unwatch(t, i);
        /* close(), never shutdown(): the receiver holds the same
         * sockets, which stay open. */
        close(t->fd[i]);
    }
    /* A pipe that travelled is closed here (it holds bytes); the
     * receiver's copy stays. */
    ct_rtunnel_release(t);
    ct_alog_forget(t->alog);
    t->alog = NULL;
    ct_limits_move_out();
    ct_stats_moved_out();
}

ct_move ct_migrate_send(ct_reactor *re, ct_rtunnel *t)
{
    ct_sender *sd = &ct_senders[re->index];
    ct_mig_head h;
    ct_move found;
    int rc, died, err;

    sd->later = 0;
    if (sd->fd < 0 && (found = find_receiver(sd)) != CT_MOVE_DONE) {
        sd->later = found == CT_MOVE_LATER;
        return found;
    }
    sd->seq = (sd->seq + 1) & 0x7fffffffu;
    if (sd->seq == 0) {
        sd->seq = 1;
    }
    describe(t, sd, re->index, &h);
    if ((err = put_message(sd, t, &h)) != 0) {
        /* Nothing reached the receiver (a message is sent whole or not
         * at all): the tunnel stays; a message too large for this
         * socket will not fit another either. */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, err, ct_mig_server,
                     CT_LOGNO(00381) "migrate: sending a tunnel to child "
                     "%ld failed; it stays here", (long)sd->pid);
        hang_up(sd);
        skip(sd, sd->pid);
        return CT_MOVE_KEPT;
    }
    rc = get_answer(sd, &died);
    if (rc == 1) {
        let_go(t);
        sd->moved++;
        return CT_MOVE_DONE;
    }
    hang_up(sd);
    skip(sd, sd->pid);
    if (rc == 0) {
        return CT_MOVE_KEPT;
    }
    /* No answer: the marks say whether the receiver took it. */
    if (ct_limits_move_unknown(&t->limits, re->index, sd->seq, sd->pid,
                               died)) {
        let_go(t);
        sd->moved++;
        return CT_MOVE_DONE;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_mig_server, CT_LOGNO(00382)
                 "migrate: child %ld %s without answering; the tunnel to "
                 "%s stays here", (long)sd->pid,
                 died ? "went away" : "took too long", t->target);
    return CT_MOVE_KEPT;
}

void ct_migrate_sender_done(ct_reactor *re)
{
    ct_sender *sd = &ct_senders[re->index];

    if (!sd->active) {
        return;
    }
    sd->active = 0;
    hang_up(sd);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, ct_mig_server, CT_LOGNO(00383)
                 "migrate: reactor %d moved %u tunnels to live children; "
                 "%u stay to drain", re->index, sd->moved,
                 apr_atomic_read32(&re->count));
}

void ct_migrate_end(void)
{
    int i;

    for (i = 0; i < CT_REACTOR_MAX; i++) {
        ct_senders[i].active = 0;
        hang_up(&ct_senders[i]);
    }
}

#else /* no epoll, no reactors */

int ct_migrate_enabled(void)
{
    return 0;
}

void ct_migrate_child_init(apr_pool_t *pchild, server_rec *s, int on)
{
    (void)pchild;
    (void)s;
    (void)on;
}

#endif
