/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_sni.c: ConnectTunnelSNI, the check of a tunnel's TLS ClientHello
 * without decrypting anything.  It runs in the worker, after the 2xx and
 * before the tunnel relays or moves to a reactor, so that neither relay
 * has a state for it and a tunnel without the check pays one test.
 *
 * The client's bytes are read through the connection's input filters,
 * as the relay reads them, into the tunnel's up brigade, which the relay
 * sends to the origin before anything else: bytes the client sent before
 * the 2xx (held by the core input filter) come first, a TLS client's are
 * decrypted by mod_ssl, an HTTP/2 stream's come from mod_http2.  Nothing
 * is written to the origin until the check has decided.  Reads never
 * block; between them the client's socket (or a stream's input pipe) is
 * polled until a deadline, so a hello split across records and segments,
 * down to one byte per segment, is put together.
 */

#include "apr_poll.h"
#include "apr_strings.h"

#include "http_core.h"
#include "http_log.h"
#include "util_filter.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_relay_int.h"
#include "ct_tls_hello.h"
#include "ct_sni.h"

static const char *const ct_sni_results[CT_SNI_RESULTS] = {
    "match", "mismatch", "no-sni", "not-tls", "invalid", "timeout"
};

static const char *const ct_sni_modes[] = {
    "Off", "Log", "Match", "Require"
};

/* The client's first bytes as read so far, flat for the parser. */
typedef struct {
    ct_tunnel *t;
    apr_bucket_brigade *bb;     /* one read's buckets */
    unsigned char *buf;         /* CT_HELLO_LIMIT_DEFAULT bytes */
    apr_size_t len;
    int eof;                    /* the client ended its side */
    int timed_out;
} ct_hello_read;

const char *ct_sni_result_name(int i)
{
    return i >= 0 && i < CT_SNI_RESULTS ? ct_sni_results[i] : "unknown";
}

int ct_sni_wanted(request_rec *r)
{
    ct_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &connect_tunnel_module);

    return dconf->sni > CT_SNI_OFF;
}

/*
 * One non-blocking read, appended to the held bytes: APR_SUCCESS when
 * bytes came, APR_EAGAIN when none did, else the read's error.
 */
static apr_status_t read_more(ct_hello_read *h)
{
    ct_tunnel *t = h->t;
    apr_size_t room = CT_HELLO_LIMIT_DEFAULT - h->len;
    apr_size_t n = room;
    apr_status_t rv;

    rv = ap_get_brigade(t->c->input_filters, h->bb, AP_MODE_READBYTES,
                        APR_NONBLOCK_READ, (apr_off_t)room);
    if (APR_STATUS_IS_EOF(rv)) {
        h->eof = 1;
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_brigade_flatten(h->bb, (char *)h->buf + h->len, &n);
    /* Held for the origin whatever is decided: a refused tunnel never
     * sends them. */
    APR_BRIGADE_CONCAT(t->bb_up, h->bb);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    h->len += n;
    return n > 0 ? APR_SUCCESS : APR_EAGAIN;
}

/* Wait until the client has more for us, or the deadline passes. */
static apr_status_t wait_client(ct_hello_read *h, apr_time_t deadline)
{
    ct_tunnel *t = h->t;
    apr_pollfd_t pfd = t->pfd[CT_CLIENT];
    apr_interval_time_t left = deadline - apr_time_now();
    apr_int32_t n;
    apr_status_t rv;

    if (left <= 0) {
        return APR_TIMEUP;
    }
    pfd.reqevents = APR_POLLIN;
    pfd.rtnevents = 0;
    do {
        rv = apr_poll(&pfd, 1, &n, left);
    } while (APR_STATUS_IS_EINTR(rv) && apr_time_now() < deadline);
    if (rv == APR_SUCCESS && t->stream) {
        /* Its pipe stays readable until emptied; the read that follows
         * takes what the wake-ups stood for. */
        rv = ct_tunnel_drain_stream(t);
    }
    return rv;
}

/*
 * Read until the hello is whole (or shows it is not one), the client
 * ends its side, or the deadline passes.  *st is the parser's last word.
 */
static ct_end read_hello(request_rec *r, ct_hello_read *h,
                         apr_time_t deadline, ct_hello_status *st,
                         ct_hello_info *info)
{
    apr_status_t rv;
    int rounds;

    *st = CT_HELLO_NEED_MORE;
    h->eof = h->t->up.eof;
    /* Each round reads a byte or more, or waits: bounded by the limit
     * and the deadline; the count is a backstop against a peer that
     * keeps waking us with nothing. */
    for (rounds = 0; !h->eof && rounds < 4 * CT_HELLO_LIMIT_DEFAULT;
         rounds++) {
        rv = read_more(h);
        if (rv == APR_SUCCESS && !h->eof) {
            *st = ct_tls_hello_parse(r->pool, h->buf, h->len,
                                     CT_HELLO_LIMIT_DEFAULT, info);
            if (*st != CT_HELLO_NEED_MORE) {
                return CT_END_NONE;
            }
            if (h->len >= CT_HELLO_LIMIT_DEFAULT) {
                *st = CT_HELLO_TOO_BIG;
                return CT_END_NONE;
            }
            continue;
        }
        if (h->eof) {
            break;
        }
        if (!APR_STATUS_IS_EAGAIN(rv) || h->t->c->aborted) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, CT_LOGNO(00321)
                          "reading the client's ClientHello failed");
            return CT_END_CLIENT_ERROR;
        }
        rv = wait_client(h, deadline);
        if (APR_STATUS_IS_TIMEUP(rv)) {
            h->timed_out = 1;
            return CT_END_NONE;
        }
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00322)
                          "waiting for the client's ClientHello failed");
            return CT_END_INTERNAL;
        }
    }
    h->timed_out = !h->eof;
    return CT_END_NONE;
}

/* Two host names are the same: case-insensitive, a final dot ignored. */
static int same_name(const char *a, const char *b)
{
    apr_size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '.') {
        la--;
    }
    if (lb > 0 && b[lb - 1] == '.') {
        lb--;
    }
    return la > 0 && la == lb && ap_cstr_casecmpn(a, b, la) == 0;
}

/*
 * A server_name fits a name target when it names it.  An address-literal
 * target was checked as an address already; its server_name must be a
 * name the destination rules do not deny (it is not resolved).
 */
static int name_fits(request_rec *r, const ct_target *target,
                     const char *sni)
{
    ct_dir_conf *dconf;

    if (same_name(sni, target->host)) {
        return 1;
    }
    if (target->kind == CT_HOST_NAME) {
        return 0;
    }
    dconf = ap_get_module_config(r->per_dir_config, &connect_tunnel_module);
    return ct_rules_check(dconf->rules, sni, NULL).action != CT_DENY;
}

static ct_sni_result judge(request_rec *r, const ct_target *target,
                           const ct_hello_read *h, ct_hello_status st,
                           const ct_hello_info *info)
{
    switch (st) {
    case CT_HELLO_DONE:
        if (info->sni == NULL) {
            return CT_SNI_R_NONE;
        }
        return name_fits(r, target, info->sni) ? CT_SNI_R_MATCH
                                               : CT_SNI_R_MISMATCH;
    case CT_HELLO_NOT_TLS:
        return CT_SNI_R_NOT_TLS;
    case CT_HELLO_MALFORMED:
    case CT_HELLO_TOO_BIG:
        return CT_SNI_R_INVALID;
    case CT_HELLO_NEED_MORE:
        break;
    }
    if (h->timed_out) {
        return CT_SNI_R_TIMEOUT;
    }
    /* The client ended its side: with nothing sent, nothing was TLS. */
    return h->len == 0 ? CT_SNI_R_NOT_TLS : CT_SNI_R_INVALID;
}

/*
 * Log records only.  Match refuses what contradicts the target and what
 * hides the name (a broken or unfinished hello); a client silent for the
 * whole timeout (a protocol whose server speaks first) goes on.  Require
 * refuses all but a hello naming the target.
 */
static int refused(int mode, ct_sni_result res, const ct_hello_read *h)
{
    switch (mode) {
    case CT_SNI_MATCH:
        return res == CT_SNI_R_MISMATCH || res == CT_SNI_R_INVALID
               || (res == CT_SNI_R_TIMEOUT && h->len > 0);
    case CT_SNI_REQUIRE:
        return res != CT_SNI_R_MATCH;
    }
    return 0;
}

static void set_notes(request_rec *r, ct_hello_status st,
                      const ct_hello_info *info, ct_sni_result res)
{
    apr_table_setn(r->notes, CT_NOTE_SNI_CHECK, ct_sni_results[res]);
    if (st != CT_HELLO_DONE) {
        return;
    }
    if (info->sni != NULL) {
        apr_table_setn(r->notes, CT_NOTE_SNI, info->sni);
    }
    if (info->alpn != NULL) {
        apr_table_setn(r->notes, CT_NOTE_ALPN, info->alpn);
    }
    if (info->ech) {
        apr_table_setn(r->notes, CT_NOTE_ECH, "1");
    }
}

ct_end ct_sni_check(request_rec *r, ct_tunnel *t, const ct_target *target)
{
    ct_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &connect_tunnel_module);
    apr_interval_time_t timeout = dconf->sni_timeout != CT_UNSET
                                  ? dconf->sni_timeout
                                  : CT_DEFAULT_SNI_TIMEOUT;
    ct_hello_info info;
    ct_hello_status st;
    ct_hello_read h;
    ct_sni_result res;
    ct_end end;

    memset(&h, 0, sizeof(h));
    memset(&info, 0, sizeof(info));
    h.t = t;
    h.bb = apr_brigade_create(r->pool, t->c->bucket_alloc);
    h.buf = apr_palloc(r->pool, CT_HELLO_LIMIT_DEFAULT);
    end = read_hello(r, &h, apr_time_now() + timeout, &st, &info);
    apr_brigade_destroy(h.bb);
    if (end != CT_END_NONE) {
        return end;
    }
    /* What was seen stays seen: later reads start after it. */
    t->up.eof |= h.eof;
    res = judge(r, target, &h, st, &info);
    set_notes(r, st, &info, res);
    ct_stats_sni(res);
    if (!refused(dconf->sni, res, &h)) {
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                      "ClientHello for '%s': %s (%s), server_name '%s', "
                      "alpn '%s'%s", target->host, ct_sni_results[res],
                      ct_tls_hello_status_str(st),
                      info.sni ? ap_escape_logitem(r->pool, info.sni) : "",
                      info.alpn ? ap_escape_logitem(r->pool, info.alpn) : "",
                      info.ech ? ", encrypted_client_hello" : "");
        return CT_END_NONE;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00320)
                  "tunnel to '%s' refused by ConnectTunnelSNI %s: %s "
                  "(%s; server_name '%.*s'%s; %" APR_SIZE_T_FMT
                  " bytes held, none sent)", target->host,
                  ct_sni_modes[dconf->sni], ct_sni_results[res],
                  ct_tls_hello_status_str(st), 255,
                  info.sni ? ap_escape_logitem(r->pool, info.sni) : "",
                  info.ech ? ", outer name of an encrypted hello" : "",
                  h.len);
    if (t->stream) {
        ct_tunnel_end_stream(t, 1);
    }
    return CT_END_SNI;
}

const char *ct_sni_set_mode(cmd_parms *cmd, void *dconfv, const char *arg)
{
    ct_dir_conf *dconf = dconfv;
    int i;

    for (i = CT_SNI_OFF; i <= CT_SNI_REQUIRE; i++) {
        if (strcasecmp(arg, ct_sni_modes[i]) == 0) {
            dconf->sni = i;
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "%s: '%s' is not Off, Log, Match or "
                        "Require", cmd->cmd->name, arg);
}

const char *ct_sni_set_timeout(cmd_parms *cmd, void *dconfv,
                               const char *arg)
{
    ct_dir_conf *dconf = dconfv;

    return ct_conf_parse_time(cmd, arg, 0, &dconf->sni_timeout);
}
