/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_relay.c: the in-worker tunnel and its pump (ct_relay_loop.c drives it).
 *
 * The client side is read and written through the connection filters, so
 * a client speaking TLS to the proxy works and bytes the core input filter
 * already holds (sent right behind the CONNECT) go first.  The origin side
 * is a plain non-blocking socket.  Each direction holds at most one read's
 * worth of bytes: while they cannot be written, the source is not read
 * (backpressure), so memory stays flat whatever the peers do.  Reads are
 * attempted before waiting, never only on readability, because TLS and the
 * core input filter can hold bytes the socket no longer shows.  A plain-TCP
 * client's input is taken from the filters once (what the core holds goes
 * first) and its socket is spliced, or read directly, from then on.
 */

#include <sys/uio.h>

#include "apr_poll.h"
#include "apr_portable.h"
#include "apr_optional.h"

#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "util_filter.h"

#include "ct_private.h"
#include "ct_relay.h"
#include "ct_relay_int.h"
#include "ct_splice.h"

/* Buckets written to the origin in one writev. */
#define CT_IOVECS 64

/* Connection filters that only watch bytes go by: a client connection
 * with nothing else may bypass them with splice(2). */
static const char *const ct_passive_filters[] = {
    "core_in", "core", "log_input_output", "reqtimeout", NULL
};

/* mod_logio's counters, for bytes that bypass the filters. */
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_in) *ct_logio_in;
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_out) *ct_logio_out;

void ct_relay_init(void)
{
    ct_logio_in = APR_RETRIEVE_OPTIONAL_FN(ap_logio_add_bytes_in);
    ct_logio_out = APR_RETRIEVE_OPTIONAL_FN(ap_logio_add_bytes_out);
}

static int is_passive(const ap_filter_t *f)
{
    const char *const *name;

    for (; f != NULL; f = f->next) {
        for (name = ct_passive_filters; *name; name++) {
            if (strcasecmp(f->frec->name, *name) == 0) {
                break;
            }
        }
        if (*name == NULL) {
            return 0;
        }
    }
    return 1;
}

/* Plain TCP, no HTTP/2 stream, no TLS, no filter that changes bytes. */
int ct_relay_can_splice(conn_rec *c)
{
    return c->master == NULL && !ap_ssl_conn_is_ssl(c)
           && is_passive(c->input_filters) && is_passive(c->output_filters);
}

/*
 * mod_remoteip's PROXY protocol filter (RemoteIPProxyProtocol, behind a
 * load balancer) hands nothing up before the whole header is read and
 * parsed, and is a pass-through after it; being a connection filter it
 * cannot leave the chain by itself.  A request read on this connection
 * went through it (it was added before the first read), so it is done
 * and holds no byte of the client's: the tunnel may do without it, and
 * so be spliced or move to a reactor.  A filter never called (no context)
 * is left alone.
 */
static int proxy_header_done(const ap_filter_t *f, const request_rec *r)
{
    return strcasecmp(f->frec->name, "REMOTEIP_INPUT") == 0
           && f->ctx != NULL && r->the_request != NULL
           && r->connection->master == NULL;
}

/* Filters that must not see tunnel bytes (as stock's tunnel strips),
 * and the PROXY protocol's once it is done. */
static void strip_filters(request_rec *r)
{
    conn_rec *c = r->connection;
    ap_filter_t *f, *next;

    for (f = c->input_filters; f != NULL; f = next) {
        next = f->next;
        if (strcasecmp(f->frec->name, "reqtimeout") == 0) {
            ap_remove_input_filter(f);
        }
        else if (proxy_header_done(f, r)) {
            ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, r,
                          "PROXY protocol header already read; the "
                          "tunnel bypasses mod_remoteip's filter");
            ap_remove_input_filter(f);
        }
    }
    for (f = c->output_filters; f != NULL; f = next) {
        next = f->next;
        if (strcasecmp(f->frec->name, "SSL/TLS Coalescing Filter") == 0) {
            ap_remove_output_filter(f);
        }
    }
}

/*
 * The engine needs the descriptors, and a client socket that will not
 * block: its APR timeout becomes 0 for the tunnel's life.  Both sockets
 * are non-blocking already (APR's timeouts), so this costs no call.
 */
static apr_status_t raw_setup(ct_tunnel *t)
{
    apr_os_sock_t fd;
    apr_status_t rv;

    rv = apr_os_sock_get(&fd, t->client);
    t->client_fd = fd;
    if (rv == APR_SUCCESS) {
        rv = apr_os_sock_get(&fd, t->origin);
        t->origin_fd = fd;
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_get(t->client, &t->client_timeout);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(t->client, 0);
        t->restore_timeout = rv == APR_SUCCESS;
    }
    return rv;
}

/* Switch a direction to the zero-copy path (its pipe opens now). */
static apr_status_t use_pipe(ct_tunnel *t, ct_flow *flow)
{
    ct_pipe *pp = apr_palloc(t->r->pool, sizeof(*pp));
    apr_status_t rv = ct_pipe_open(t->r->pool, pp, t->bufsize);

    if (rv == APR_SUCCESS) {
        flow->pipe = pp;
    }
    else {
        /* Out of pipes is not fatal: this direction copies instead. */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00047)
                      "no pipe for zero-copy relaying; copying");
        t->zero_copy = 0;
    }
    return rv;
}

/*
 * ap_get_pollfd_from_conn() came with httpd 2.4.58 (MMN 20120211.129).
 * Built against older headers, no stream can be polled, and the handler
 * answers CONNECT over HTTP/2 with 501 before any origin is dialled.
 */
static apr_status_t conn_pollfd(conn_rec *c, apr_pollfd_t *pfd)
{
#if AP_MODULE_MAGIC_AT_LEAST(20120211, 129)
    return ap_get_pollfd_from_conn(c, pfd, NULL);
#else
    return APR_ENOTIMPL;
#endif
}

/*
 * An HTTP/2 stream has no socket of its own (ap_get_conn_socket() gives
 * the HTTP/2 connection's, which the tunnel must never touch): mod_http2
 * lends a pipe that turns readable when the stream's input has bytes, or
 * when the stream is reset.  Its output cannot be polled: a write waits
 * in mod_http2 for the stream's window, up to the server's Timeout, and
 * the tunnel's idle and lifetime clocks are looked at only after it.
 */
static apr_status_t stream_pollfd(ct_tunnel *t)
{
    apr_pollfd_t pfd;
    apr_status_t rv;

    memset(&pfd, 0, sizeof(pfd));
    rv = conn_pollfd(t->c, &pfd);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (pfd.desc_type == APR_NO_DESC) {
        /* The CONNECT carried END_STREAM: nothing will come up, and
         * nothing can be polled; a reset is seen only as c->aborted,
         * when the origin's side next moves. */
        t->up.eof = 1;
        t->pfd[CT_CLIENT].desc_type = APR_NO_DESC;
        return APR_SUCCESS;
    }
    t->pfd[CT_CLIENT].desc_type = pfd.desc_type;
    t->pfd[CT_CLIENT].desc = pfd.desc;
    return APR_SUCCESS;
}

int ct_relay_stream_pollable(conn_rec *c)
{
    apr_pollfd_t pfd;

    memset(&pfd, 0, sizeof(pfd));
    return conn_pollfd(c, &pfd) == APR_SUCCESS;
}

apr_status_t ct_tunnel_create(ct_tunnel **tp, request_rec *r,
                              apr_socket_t *origin, apr_size_t bufsize,
                              int zero_copy)
{
    conn_rec *c = r->connection;
    ct_tunnel *t = apr_pcalloc(r->pool, sizeof(*t));
    apr_status_t rv;
    int i;

    t->r = r;
    t->c = c;
    t->origin = origin;
    t->client = ap_get_conn_socket(c);
    t->bufsize = bufsize;
    t->idle = r->server->timeout;
    t->opened = t->last = apr_time_now();
    t->bb_up = apr_brigade_create(r->pool, c->bucket_alloc);
    t->bb_down = apr_brigade_create(r->pool, c->bucket_alloc);
    t->nohalfclose = apr_table_get(r->subprocess_env,
                                   "proxy-nohalfclose") != NULL;

    strip_filters(r);
    for (t->client_net = c->output_filters; t->client_net->next != NULL;
         t->client_net = t->client_net->next) {
        continue;
    }
    /* The request's own filters would frame the tunnel as HTTP. */
    r->output_filters = r->proto_output_filters = c->output_filters;
    r->input_filters = r->proto_input_filters = c->input_filters;
    c->keepalive = AP_CONN_CLOSE;

    /* Decided once: the filter chains do not change during a tunnel. */
    t->plain = ct_relay_can_splice(c);
    t->stream = c->master != NULL;
    t->raw = t->plain;
    t->zero_copy = zero_copy && t->plain;
    for (i = 0; i < 2; i++) {
        t->pend[i].pool = r->pool;
        t->pend[i].size = bufsize;
        t->pfd[i].p = r->pool;
        t->pfd[i].desc_type = APR_POLL_SOCKET;
        t->pfd[i].desc.s = i == CT_CLIENT ? t->client : origin;
        t->pfd[i].client_data = t;
    }
    rv = apr_socket_timeout_set(origin, 0);
    if (rv == APR_SUCCESS && t->stream) {
        rv = stream_pollfd(t);
    }
    if (rv == APR_SUCCESS && t->raw) {
        rv = raw_setup(t);
    }
    /* The read buffer and the pollset come when first needed: a tunnel
     * handed to a reactor needs neither. */
    *tp = t;
    return rv;
}

void ct_tunnel_set_timeouts(ct_tunnel *t, apr_interval_time_t idle,
                            apr_interval_time_t lifetime)
{
    t->idle = idle;
    t->opened = t->last = apr_time_now();
    t->deadline = lifetime > 0 ? t->opened + lifetime : 0;
}

void ct_tunnel_set_bandwidth(ct_tunnel *t, ct_bw *bw)
{
    t->bw = bw;
}

/*
 * Bandwidth hook: the bytes direction d may read now, at most want.  0
 * when its budget is spent: the direction then reads nothing and waits
 * for no readability (want_read stays 0), and the loop polls no longer
 * than t->resume, when the budget has room again.
 */
static apr_size_t bw_room(ct_tunnel *t, int d, apr_size_t want)
{
    apr_time_t now, at;
    apr_size_t n;

    if (t->bw == NULL) {
        return want;
    }
    now = apr_time_now();
    n = ct_bw_allow(t->bw, d, now, want);
    if (n == 0) {
        at = ct_bw_resume(t->bw, d, now);
        if (t->resume == 0 || at < t->resume) {
            t->resume = at;
        }
    }
    return n;
}

/* Bandwidth hook: charge n bytes direction d read. */
static void bw_charge(ct_tunnel *t, int d, apr_size_t n)
{
    if (t->bw != NULL && n > 0) {
        ct_bw_charge(t->bw, d, apr_time_now(), n);
    }
}

/* Write what the core output filter holds, without blocking. */
static apr_status_t flush_client(ct_tunnel *t)
{
    return t->client_net->frec->filter_func.out_func(t->client_net, NULL);
}

static apr_status_t send_client(ct_tunnel *t, const char *data,
                                apr_size_t len)
{
    apr_bucket *b;
    apr_status_t rv;

    b = apr_bucket_transient_create(data, len, t->c->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(t->bb_down, b);
    if (t->stream) {
        /* Nothing can wait in mod_http2's filters for a later pass. */
        APR_BRIGADE_INSERT_TAIL(t->bb_down,
                                apr_bucket_flush_create(t->c->bucket_alloc));
    }
    rv = ap_pass_brigade(t->c->output_filters, t->bb_down);
    apr_brigade_cleanup(t->bb_down);
    /* The core holds back small writes; push them out now. */
    if (rv == APR_SUCCESS && t->c->data_in_output_filters) {
        rv = flush_client(t);
    }
    return rv;
}

apr_status_t ct_tunnel_prime_client(ct_tunnel *t, const char *data,
                                    apr_size_t len)
{
    if (len == 0) {
        return APR_SUCCESS;
    }
    t->down.bytes += (apr_off_t)len;
    /* They came with the upstream's reply, which was just read. */
    t->first_down = apr_time_now();
    return send_client(t, data, len);
}

/*
 * Send the up brigade to the origin in one writev per pass (the core
 * input filter hands over 8000-byte buckets; one send each would cost a
 * system call per bucket); APR_EAGAIN when the origin is full.
 */
static apr_status_t send_origin(ct_tunnel *t)
{
    struct iovec vec[CT_IOVECS];
    apr_bucket *b, *next;
    apr_size_t len, total, sent;
    const char *data;
    apr_status_t rv;
    int n;

    while (!APR_BRIGADE_EMPTY(t->bb_up)) {
        total = 0;
        n = 0;
        for (b = APR_BRIGADE_FIRST(t->bb_up);
             b != APR_BRIGADE_SENTINEL(t->bb_up) && n < CT_IOVECS; b = next) {
            next = APR_BUCKET_NEXT(b);
            if (APR_BUCKET_IS_METADATA(b)) {
                t->up.eof |= APR_BUCKET_IS_EOS(b);
                apr_bucket_delete(b);
                continue;
            }
            if ((rv = apr_bucket_read(b, &data, &len, APR_BLOCK_READ))
                != APR_SUCCESS) {
                return rv;
            }
            vec[n].iov_base = (void *)data;
            vec[n++].iov_len = len;
            total += len;
        }
        if (n == 0) {
            break;
        }
        sent = 0;
        rv = apr_socket_sendv(t->origin, vec, n, &sent);
        t->up.bytes += (apr_off_t)sent;
        t->moved |= sent > 0;
        if (rv == APR_SUCCESS && sent < total) {
            /* Part of it stayed: the origin is full. */
            rv = APR_EAGAIN;
        }
        /* Drop what went out; a bucket sent in part is split first. */
        while (sent > 0) {
            b = APR_BRIGADE_FIRST(t->bb_up);
            if (b->length > sent) {
                apr_bucket_split(b, sent);
            }
            sent -= b->length;
            apr_bucket_delete(b);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/*
 * The half-close of an HTTP/2 stream is its END_STREAM, which mod_http2
 * sends for an EOS bucket; the other way stays open.  A tunnel that broke
 * must not end like that, for the client would take it for the origin's
 * clean close: an error bucket ahead of the EOS makes mod_http2 reset the
 * stream (RST_STREAM) instead, as for a proxied response whose backend
 * failed half-way.
 */
void ct_tunnel_end_stream(ct_tunnel *t, int broken)
{
    apr_bucket_alloc_t *ba = t->c->bucket_alloc;

    if (t->r->eos_sent) {
        return;
    }
    if (broken) {
        APR_BRIGADE_INSERT_TAIL(t->bb_down, ap_bucket_error_create(
                                    HTTP_BAD_GATEWAY, NULL, t->r->pool, ba));
    }
    APR_BRIGADE_INSERT_TAIL(t->bb_down, apr_bucket_eos_create(ba));
    (void)ap_pass_brigade(t->c->output_filters, t->bb_down);
    apr_brigade_cleanup(t->bb_down);
    /* The stream's output is over: httpd must not add an EOS of its own
     * (these filters have no request to mark it on). */
    t->r->eos_sent = 1;
}

/* End of one direction: propagate the half-close, or end the tunnel. */
static ct_end finish_flow(ct_tunnel *t, ct_flow *flow, int up)
{
    if (flow->shut) {
        return CT_END_NONE;
    }
    if (t->nohalfclose) {
        return CT_END_HALF_CLOSED;
    }
    if (!up && t->stream && !t->up.shut) {
        /* Held back until the client's side has ended and all it sent
         * is with the origin (up.eof alone may leave bytes queued): once
         * END_STREAM has gone both ways, mod_http2 ends the stream and
         * drops what the client sent that this worker has not read yet.
         * An upload can go on meanwhile; a client that waits for the
         * origin's end instead is ended by the idle timeout. */
        return CT_END_NONE;
    }
    flow->shut = 1;
    /* A peer that already left cannot be told; the other way may go on. */
    if (up) {
        (void)apr_socket_shutdown(t->origin, APR_SHUTDOWN_WRITE);
    }
    else if (t->stream) {
        ct_tunnel_end_stream(t, 0);
    }
    else {
        (void)apr_socket_shutdown(t->client, APR_SHUTDOWN_WRITE);
    }
    return CT_END_NONE;
}

/* A buffer for the rest of a partial write: one per direction, made
 * when first needed and kept for the tunnel's life. */
static char *take_pend(void *ctx)
{
    ct_pend *pb = ctx;

    if (pb->buf == NULL) {
        pb->buf = apr_palloc(pb->pool, pb->size);
    }
    return pb->buf;
}

/* Bandwidth hook, the engine's budget (ct_dir_env). */
static apr_size_t raw_budget(void *bctx, ct_dir *d, apr_size_t want)
{
    ct_tunnel *t = bctx;

    return bw_room(t, d == &t->up ? CT_BW_UP : CT_BW_DOWN, want);
}

/*
 * One step of a plain-TCP direction, by the engine (ct_engine.c): what it
 * holds goes to the sink, then the source is read, spliced through the
 * direction's pipe or copied through the tunnel's buffer.  The bytes skip
 * the connection filters, so mod_logio is told of them here, as the
 * filters would have.
 */
static ct_end raw_flow(ct_tunnel *t, ct_flow *flow, int up)
{
    ct_pend *pb = &t->pend[up ? CT_CLIENT : CT_ORIGIN];
    ct_dir_env env;
    ct_dir_io io;
    ct_dir_state st;

    if (flow->pipe == NULL && t->zero_copy) {
        (void)use_pipe(t, flow);
    }
    if (t->buf == NULL) {
        t->buf = apr_palloc(t->r->pool, t->bufsize);
    }
    /* A pipe is the direction's for the tunnel's life: nothing is lent,
     * and a buffer is given back to no one. */
    memset(&env, 0, sizeof(env));
    env.take_buf = take_pend;
    env.ctx = pb;
    env.scratch = t->buf;
    env.bufsize = t->bufsize;
    if (t->bw != NULL) {
        env.budget = raw_budget;
        env.bctx = t;
    }
    memset(&io, 0, sizeof(io));
    io.src = up ? t->client_fd : t->origin_fd;
    io.dst = up ? t->origin_fd : t->client_fd;
    io.nohalfclose = t->nohalfclose;
    st = ct_dir_step(flow, &env, &io);
    bw_charge(t, up ? CT_BW_UP : CT_BW_DOWN, io.in);
    t->moved |= io.moved;
    if (!up && io.in > 0 && t->first_down == 0) {
        t->first_down = apr_time_now();
    }
    if (up && io.in > 0 && ct_logio_in) {
        ct_logio_in(t->c, (apr_off_t)io.in);
    }
    if (!up && io.out > 0 && ct_logio_out) {
        ct_logio_out(t->c, (apr_off_t)io.out);
    }
    switch (st) {
    case CT_DIR_HALF_CLOSED:
        return CT_END_HALF_CLOSED;
    case CT_DIR_DST_ERROR:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, io.rv, t->r, CT_LOGNO(00048)
                      "writing to the %s failed", up ? "origin" : "client");
        return up ? CT_END_ORIGIN_ERROR : CT_END_CLIENT_ERROR;
    case CT_DIR_SRC_ERROR:
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, io.rv, t->r, CT_LOGNO(00049)
                      "reading from the %s failed", up ? "client" : "origin");
        return up ? CT_END_CLIENT_ERROR : CT_END_ORIGIN_ERROR;
    case CT_DIR_OK:
        break;
    }
    return CT_END_NONE;
}

/*
 * AP_MODE_EXHAUSTIVE makes
 * the core input filter hand over, without reading, what it holds (bytes
 * read past the request, less than one socket read) and its socket
 * bucket, which is dropped: from now on the socket is read directly.
 * Reading instead would let the core read ahead without bound while an
 * upload streams in, and keep part of a read when the caller's size ends
 * inside it.  APR_EOF when the client already closed its side (nothing is
 * taken then).
 */
apr_status_t ct_tunnel_take_input(ct_tunnel *t)
{
    /* Bytes held already (a ClientHello) were counted when read. */
    apr_bucket *b = APR_BRIGADE_LAST(t->bb_up), *next;
    apr_off_t held = 0;
    apr_status_t rv;
    int unsized = 0;

    rv = ap_get_brigade(t->c->input_filters, t->bb_up, AP_MODE_EXHAUSTIVE,
                        APR_NONBLOCK_READ, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t->taken = 1;
    for (b = APR_BUCKET_NEXT(b); b != APR_BRIGADE_SENTINEL(t->bb_up);
         b = next) {
        next = APR_BUCKET_NEXT(b);
        /* The EOS the core adds, and the socket bucket (whose destroy
         * leaves the socket alone). */
        if (APR_BUCKET_IS_METADATA(b) || b->length == (apr_size_t)-1) {
            unsized |= b->length == (apr_size_t)-1;
            apr_bucket_delete(b);
        }
        else {
            held += (apr_off_t)b->length;
        }
    }
    /* mod_logio counts what passes its filter only when the whole length
     * is known; beside the socket bucket it counted none of these. */
    if (unsized && held > 0 && ct_logio_in) {
        ct_logio_in(t->c, held);
    }
    return APR_SUCCESS;
}

/*
 * Empty mod_http2's input pipe, so that it does not wake the loop again
 * (one byte per wake-up of mod_http2's; a pipe holds at most 64 KiB).
 */
apr_status_t ct_tunnel_drain_stream(ct_tunnel *t)
{
    apr_file_t *pipe = t->pfd[CT_CLIENT].desc.f;
    apr_interval_time_t timeout;
    char scratch[512];
    apr_size_t len;
    apr_status_t rv;
    int i;

    if ((rv = apr_file_pipe_timeout_get(pipe, &timeout)) != APR_SUCCESS
        || (rv = apr_file_pipe_timeout_set(pipe, 0)) != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < 256; i++) {
        len = sizeof(scratch);
        if (apr_file_read(pipe, scratch, &len) != APR_SUCCESS) {
            break;
        }
    }
    return apr_file_pipe_timeout_set(pipe, timeout);
}

/*
 * The client's END_STREAM came, yet the stream's input pipe woke the
 * loop: mod_http2 signals a RST_STREAM, or the end of the client's
 * connection, that way.  A read says which: the aborted stream fails it,
 * a finished one gives its end of stream again.
 */
static ct_end stream_after_end(ct_tunnel *t)
{
    apr_status_t rv;

    t->stream_woken = 0;
    /* Emptied first: mod_http2 marks the stream aborted before it writes
     * to the pipe, so a reset after this is either seen by the read
     * below or wakes the loop again. */
    if ((rv = ct_tunnel_drain_stream(t)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, t->r, CT_LOGNO(00081)
                      "emptying the HTTP/2 stream's input pipe failed");
        return CT_END_INTERNAL;
    }
    rv = ap_get_brigade(t->c->input_filters, t->bb_up, AP_MODE_READBYTES,
                        APR_NONBLOCK_READ, t->bufsize);
    /* Nothing may follow END_STREAM; whatever did is dropped. */
    apr_brigade_cleanup(t->bb_up);
    if (t->c->aborted
        || (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)
            && !APR_STATUS_IS_EAGAIN(rv))) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00080)
                      "the client's stream was reset (or its connection "
                      "closed) after its END_STREAM");
        return CT_END_CLIENT_ERROR;
    }
    return CT_END_NONE;
}

/* One step client to origin. */
static ct_end pump_up(ct_tunnel *t)
{
    apr_status_t rv;
    apr_size_t room;
    apr_off_t got;

    /* Bytes read through the filters go out before the engine's. */
    if (t->taken && APR_BRIGADE_EMPTY(t->bb_up)) {
        return raw_flow(t, &t->up, 1);
    }
    t->up.want_read = t->up.want_write = 0;
    rv = send_origin(t);
    if (APR_STATUS_IS_EAGAIN(rv)) {
        t->up.want_write = 1;
        return CT_END_NONE;
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00040)
                      "writing to the origin failed");
        return CT_END_ORIGIN_ERROR;
    }
    if (t->up.eof) {
        if (t->stream_woken && t->up.shut) {
            return stream_after_end(t);
        }
        return finish_flow(t, &t->up, 1);
    }
    if (t->raw && !t->taken) {
        /* The engine reads the socket: first take it, and what the core
         * input filter holds, away from the filters. */
        rv = ct_tunnel_take_input(t);
        if (APR_STATUS_IS_EOF(rv)) {
            t->up.eof = 1;
        }
        else if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00079)
                          "taking the client's input from the filters failed");
            return CT_END_CLIENT_ERROR;
        }
        /* The next round sends what was taken, then reads the socket. */
        t->moved = 1;
        return CT_END_NONE;
    }
    if (t->taken) {
        return raw_flow(t, &t->up, 1);
    }
    if ((room = bw_room(t, CT_BW_UP, t->bufsize)) == 0) {
        return CT_END_NONE;
    }
    rv = ap_get_brigade(t->c->input_filters, t->bb_up, AP_MODE_READBYTES,
                        APR_NONBLOCK_READ, room);
    if (APR_STATUS_IS_EOF(rv)) {
        /* A change of state: the next round propagates it. */
        t->up.eof = 1;
        t->moved = 1;
    }
    else if (APR_STATUS_IS_EAGAIN(rv)
             || (rv == APR_SUCCESS && APR_BRIGADE_EMPTY(t->bb_up))) {
        t->up.want_read = 1;
    }
    else if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00041)
                      "reading from the client failed");
        return CT_END_CLIENT_ERROR;
    }
    else {
        /* bb_up was empty before this read (send_origin emptied it). */
        if (t->bw != NULL && apr_brigade_length(t->bb_up, 1, &got)
                             == APR_SUCCESS) {
            bw_charge(t, CT_BW_UP, (apr_size_t)got);
        }
        t->moved = 1;
    }
    return CT_END_NONE;
}

/* One step origin to client. */
static ct_end pump_down(ct_tunnel *t)
{
    apr_size_t len = t->bufsize;
    apr_status_t rv;

    if (t->raw && !t->c->data_in_output_filters) {
        return raw_flow(t, &t->down, 0);
    }
    t->down.want_read = t->down.want_write = 0;
    if (t->c->data_in_output_filters) {
        rv = flush_client(t);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00042)
                          "writing to the client failed");
            return CT_END_CLIENT_ERROR;
        }
        if (t->c->data_in_output_filters) {
            t->down.want_write = 1;
            return CT_END_NONE;
        }
        /* Bytes held back reached the client: activity, too. */
        t->moved = 1;
    }
    if (t->down.eof) {
        return finish_flow(t, &t->down, 0);
    }
    /* Nothing is pending in the output filters: they can be bypassed. */
    if (t->raw) {
        return raw_flow(t, &t->down, 0);
    }
    if ((len = bw_room(t, CT_BW_DOWN, len)) == 0) {
        return CT_END_NONE;
    }
    if (t->buf == NULL) {
        t->buf = apr_palloc(t->r->pool, t->bufsize);
    }
    rv = apr_socket_recv(t->origin, t->buf, &len);
    if (len > 0) {
        bw_charge(t, CT_BW_DOWN, len);
        t->down.bytes += (apr_off_t)len;
        t->moved = 1;
        apr_status_t wrv = send_client(t, t->buf, len);

        if (wrv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, wrv, t->r, CT_LOGNO(00043)
                          "writing to the client failed");
            return CT_END_CLIENT_ERROR;
        }
    }
    if (APR_STATUS_IS_EOF(rv)) {
        t->down.eof = 1;
        t->moved = 1;
    }
    else if (APR_STATUS_IS_EAGAIN(rv)) {
        t->down.want_read = 1;
    }
    else if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, t->r, CT_LOGNO(00044)
                      "reading from the origin failed");
        return CT_END_ORIGIN_ERROR;
    }
    return CT_END_NONE;
}

ct_end ct_tunnel_pump(ct_tunnel *t, ct_wants *w)
{
    ct_end end = CT_END_NONE;
    int round, moved = 0;

    if (t->stream && t->c->aborted) {
        /* mod_http2 gave up the stream (a reset, or its connection). */
        return CT_END_CLIENT_ERROR;
    }
    t->resume = 0;
    /* Woken (or first called): every source may be read again. */
    t->up.drained = t->down.drained = 0;
    for (round = 0; round < CT_PUMP_ROUNDS; round++) {
        t->moved = 0;
        if ((end = pump_up(t)) != CT_END_NONE
            || (end = pump_down(t)) != CT_END_NONE) {
            return end;
        }
        /* One test per round; the clock is read once per tunnel. */
        if (t->first_down == 0 && t->down.bytes > 0) {
            t->first_down = apr_time_now();
        }
        /* Both ends passed on: the tunnel is closed.  Checked in every
         * round, not after them: once the END_STREAM of an HTTP/2 stream
         * has gone both ways, mod_http2 may end the stream and mark this
         * connection aborted at any moment, which another round would
         * take for a client reset after its END_STREAM. */
        if (t->up.shut && t->down.shut) {
            return CT_END_CLOSED;
        }
        moved |= t->moved;
        if (!t->moved) {
            break;
        }
    }
    w->client = (t->up.want_read ? APR_POLLIN : 0)
                | (t->down.want_write ? APR_POLLOUT : 0);
    if (t->stream && t->up.shut) {
        /* A reset after END_STREAM is seen on the input pipe only. */
        w->client |= APR_POLLIN;
    }
    w->origin = (t->down.want_read ? APR_POLLIN : 0)
                | (t->up.want_write ? APR_POLLOUT : 0);
    w->again = round == CT_PUMP_ROUNDS;
    w->resume = t->resume;
    t->moved = moved;
    return CT_END_NONE;
}

/* Register what a side waits for, touching the pollset only on change. */
