/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_relay_loop.c: what becomes of an in-worker tunnel once it is set up:
 * driven by an APR pollset until it ends, or prepared for a reactor.
 */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "apr_portable.h"

#include "http_core.h"
#include "util_filter.h"

#include "ct_private.h"
#include "ct_relay.h"
#include "ct_relay_int.h"
#include "ct_reactor.h"

/*
 * Register what a side waits for, touching the pollset only on change.
 * A side that waits for nothing stays registered with no events, so that
 * a socket's reset or hang-up still wakes the loop (a client that
 * half-closed and then vanished must not hold the tunnel until the idle
 * timeout; an HTTP/2 stream's pipe shows a reset only as POLLIN); a side
 * that hung up is watched only while it may still have bytes to read.
 */
static apr_status_t watch(ct_tunnel *t, int side, apr_int16_t events)
{
    apr_pollfd_t *pfd = &t->pfd[side];
    apr_status_t rv = APR_SUCCESS;
    int want = !t->hup[side] || (events & APR_POLLIN);

    if (pfd->desc_type == APR_NO_DESC) {
        /* A stream without input: nothing to poll. */
        return APR_SUCCESS;
    }
    if (t->hup[side]) {
        events &= APR_POLLIN;
    }
    if (t->registered[side] == want && (!want || pfd->reqevents == events)) {
        return APR_SUCCESS;
    }
    if (t->registered[side]) {
        rv = apr_pollset_remove(t->pollset, pfd);
        t->registered[side] = 0;
    }
    pfd->reqevents = events;
    if (rv == APR_SUCCESS && want) {
        rv = apr_pollset_add(t->pollset, pfd);
        t->registered[side] = rv == APR_SUCCESS;
    }
    return rv;
}

/*
 * Errors and hang-ups the pump would not notice by itself: a socket
 * that failed, or hung up while bytes may still have to go to it.
 */
static ct_end check_signalled(ct_tunnel *t, const apr_pollfd_t *fds,
                              apr_int32_t n)
{
    apr_int32_t i;

    for (i = 0; i < n; i++) {
        int side = fds[i].desc_type == APR_POLL_SOCKET
                   && fds[i].desc.s == t->origin ? CT_ORIGIN : CT_CLIENT;
        ct_flow *from = side == CT_CLIENT ? &t->up : &t->down;
        ct_flow *to = side == CT_CLIENT ? &t->down : &t->up;
        ct_end err = side == CT_CLIENT ? CT_END_CLIENT_ERROR
                                       : CT_END_ORIGIN_ERROR;

        if (fds[i].rtnevents & APR_POLLERR) {
            return err;
        }
        if (side == CT_CLIENT && t->stream
            && (fds[i].rtnevents & APR_POLLIN)) {
            t->stream_woken = 1;
        }
        if (fds[i].rtnevents & APR_POLLHUP) {
            t->hup[side] = 1;
            if (from->eof && !to->shut) {
                return err;
            }
        }
    }
    return CT_END_NONE;
}

static ct_end run_loop(ct_tunnel *t)
{
    apr_time_t now;
    apr_interval_time_t wait;
    const apr_pollfd_t *signalled;
    apr_int32_t n;
    apr_status_t rv;
    ct_wants w;
    ct_end end;

    for (;;) {
        if ((end = ct_tunnel_pump(t, &w)) != CT_END_NONE) {
            return end;
        }
        now = apr_time_now();
        if (t->moved) {
            t->last = now;
        }
        if (t->deadline && now >= t->deadline) {
            return CT_END_LIFETIME;
        }
        wait = w.again ? 0 : t->last + t->idle - now;
        if (!w.again && wait <= 0) {
            return CT_END_IDLE;
        }
        if (t->deadline && wait > t->deadline - now) {
            wait = t->deadline - now;
        }
        /* Bandwidth hook: a direction out of budget is not watched for
         * readability; the loop wakes when the budget has room again. */
        if (w.resume && wait > w.resume - now) {
            wait = w.resume > now ? w.resume - now : 0;
        }
        if ((rv = watch(t, CT_CLIENT, w.client)) != APR_SUCCESS
            || (rv = watch(t, CT_ORIGIN, w.origin)) != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, t->r, CT_LOGNO(00045)
                          "updating the tunnel's pollset failed");
            return CT_END_INTERNAL;
        }
        rv = apr_pollset_poll(t->pollset, wait, &n, &signalled);
        if (rv == APR_SUCCESS
            && (end = check_signalled(t, signalled, n)) != CT_END_NONE) {
            return end;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EINTR(rv)
            && !APR_STATUS_IS_TIMEUP(rv)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, t->r, CT_LOGNO(00046)
                          "polling the tunnel failed");
            return CT_END_INTERNAL;
        }
    }
}

ct_end ct_tunnel_run(ct_tunnel *t)
{
    apr_status_t rv;
    ct_end end;

    rv = apr_pollset_create(&t->pollset, 2, t->r->pool, APR_POLLSET_NOCOPY);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, t->r, CT_LOGNO(00077)
                      "creating the tunnel's pollset failed");
        end = CT_END_INTERNAL;
    }
    else {
        end = run_loop(t);
    }
    if (t->stream
        && (end == CT_END_ORIGIN_ERROR || end == CT_END_INTERNAL)) {
        ct_tunnel_end_stream(t, 1);
    }

    if (t->restore_timeout) {
        /* The MPM's lingering close relies on the socket's timeout. */
        (void)apr_socket_timeout_set(t->client, t->client_timeout);
    }
    return end;
}

/* Copy the taken-over bytes into h->early, if the reactor can hold them. */
static apr_status_t early_bytes(ct_tunnel *t, ct_handoff *h)
{
    apr_off_t have;
    apr_status_t rv;
    char *early;

    h->early = NULL;
    h->early_len = 0;
    if ((rv = apr_brigade_length(t->bb_up, 1, &have)) != APR_SUCCESS) {
        return rv;
    }
    if (have > CT_REACTOR_BUFSIZE) {
        return APR_ENOSPC;
    }
    if (have > 0) {
        h->early_len = (apr_size_t)have;
        early = apr_palloc(t->r->pool, h->early_len);
        if ((rv = apr_brigade_flatten(t->bb_up, early, &h->early_len))
            != APR_SUCCESS) {
            return rv;
        }
        h->early = early;
    }
    apr_brigade_cleanup(t->bb_up);
    return APR_SUCCESS;
}

/* 0 or errno.  The copy shares its flags with the worker's socket, which
 * APR has usually made non-blocking already (for a timeout) and then
 * says so: nothing to ask the kernel. */
static int set_nonblocking(apr_socket_t *s, int fd)
{
    apr_int32_t on = 0;
    int flags;

    if (apr_socket_opt_get(s, APR_SO_NONBLOCK, &on) == APR_SUCCESS && on) {
        return 0;
    }
    flags = fcntl(fd, F_GETFL);

    if (flags < 0) {
        return errno;
    }
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        return errno;
    }
    return 0;
}

apr_status_t ct_tunnel_handoff(ct_tunnel *t, ct_handoff *h)
{
    apr_os_sock_t cfd, ofd;
    apr_status_t rv;
    int dup_c, dup_o;

    /* Bytes held in bb_up (a ClientHello read for ConnectTunnelSNI) go
     * to the reactor with what the core holds. */
    if (!t->plain || t->c->data_in_output_filters) {
        return APR_EINVAL;
    }
    if ((rv = apr_os_sock_get(&cfd, t->client)) != APR_SUCCESS
        || (rv = apr_os_sock_get(&ofd, t->origin)) != APR_SUCCESS) {
        return rv;
    }
    /* Copies that outlive the MPM's close and ours; never inherited.
     * Made before the input is taken, so that running out of descriptors
     * leaves the tunnel untouched in the worker. */
    dup_c = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
    dup_o = dup_c < 0 ? -1 : fcntl(ofd, F_DUPFD_CLOEXEC, 0);
    /* A reactor must never block, splice(2) included, whose
     * SPLICE_F_NONBLOCK covers only the pipe: the sockets are made
     * non-blocking here, not left to the flag APR keeps for a timeout. */
    if (dup_o < 0 || set_nonblocking(t->client, dup_c) != 0
        || set_nonblocking(t->origin, dup_o) != 0) {
        rv = errno;
        if (dup_c >= 0) {
            close(dup_c);
        }
        if (dup_o >= 0) {
            close(dup_o);
        }
        return rv;
    }
    if ((rv = ct_tunnel_take_input(t)) != APR_SUCCESS
        || (rv = early_bytes(t, h)) != APR_SUCCESS) {
        /* The client closed already, or (never with httpd's own core
         * input filter) it held more than a reactor takes: the tunnel
         * stays here, with what was taken queued in bb_up. */
        close(dup_c);
        close(dup_o);
        return rv;
    }
    /* The copies share the flag with the worker's socket: a negative
     * timeout would make them blocking again; the MPM closes the socket
     * without reading (aborted), so that one is not restored. */
    if (t->restore_timeout && t->client_timeout >= 0) {
        (void)apr_socket_timeout_set(t->client, t->client_timeout);
    }
    h->client_fd = dup_c;
    h->origin_fd = dup_o;
    h->nohalfclose = t->nohalfclose;
    h->up = t->up.bytes;
    h->down = t->down.bytes;
    h->opened = t->opened;
    h->last = t->last;
    h->first_down = t->first_down;
    return APR_SUCCESS;
}

void ct_tunnel_bytes(const ct_tunnel *t, apr_off_t *up, apr_off_t *down)
{
    *up = t->up.bytes;
    *down = t->down.bytes;
}

void ct_tunnel_times(const ct_tunnel *t, apr_time_t *opened,
                     apr_time_t *last)
{
    *opened = t->opened;
    *last = t->last;
}

apr_time_t ct_tunnel_first_byte(const ct_tunnel *t)
{
    return t->first_down;
}

const char *ct_end_name(ct_end end)
{
    switch (end) {
    case CT_END_NONE:
        return "open";
    case CT_END_CLOSED:
        return "closed";
    case CT_END_HALF_CLOSED:
        return "half-closed";
    case CT_END_IDLE:
        return "idle-timeout";
    case CT_END_LIFETIME:
        return "lifetime";
    case CT_END_CLIENT_ERROR:
        return "client-error";
    case CT_END_ORIGIN_ERROR:
        return "origin-error";
    case CT_END_INTERNAL:
        return "internal-error";
    case CT_END_SHUTDOWN:
        return "shutdown";
    case CT_END_SNI:
        return "sni-refused";
    }
    return "unknown";
}
