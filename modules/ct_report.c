/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_report.c: request notes and log lines about tunnels.  Stock logs
 * nothing of a tunnel but its start; here every tunnel leaves its byte
 * counts and the reason it ended in notes the access log can show, and an
 * idle timeout is an info line, not an error.
 */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "apr_atomic.h"
#include "apr_portable.h"
#include "apr_strings.h"
#include "apr_lib.h"
#include "apr_date.h"

#include "http_protocol.h"
#include "http_log.h"

#include "ct_private.h"
#include "ct_report.h"
#include "ct_stats.h"

/* The end-of-tunnel log, opened by the parent so children inherit it. */
static apr_file_t *ct_log;
static apr_os_file_t ct_log_fd = -1;

/* Records this child dropped because the log program did not read. */
static volatile apr_uint32_t ct_dropped;

/* Longest end-of-tunnel record: a pipe takes a write of at most PIPE_BUF
 * bytes (4,096 or more) whole or not at all. */
#define CT_RECORD_MAX 1024

/* A reactor writes records between events: a log program that stops
 * reading must not stop it, so the pipe is non-blocking and a record
 * that does not fit is dropped and counted.  The flag is on the pipe
 * itself, which only this module writes. */
static apr_status_t nonblocking_pipe(server_rec *s)
{
    int flags;

    if ((flags = fcntl(ct_log_fd, F_GETFL)) < 0
        || fcntl(ct_log_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        ap_log_error(APLOG_MARK, APLOG_ERR, errno, s, CT_LOGNO(00153)
                     "cannot make the tunnel log pipe non-blocking");
        return errno;
    }
    return APR_SUCCESS;
}

apr_status_t ct_report_open_log(apr_pool_t *p, server_rec *s,
                                const char *spec)
{
    apr_status_t rv;

    ct_log = NULL;
    ct_log_fd = -1;
    if (spec == NULL) {
        return APR_SUCCESS;
    }
    if (*spec == '|') {
        piped_log *pl = ap_open_piped_log(p, spec + 1);

        if (pl == NULL) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CT_LOGNO(00008)
                         "cannot start the tunnel log program '%s'",
                         spec + 1);
            return APR_EGENERAL;
        }
        ct_log = ap_piped_log_write_fd(pl);
        if ((rv = apr_os_file_get(&ct_log_fd, ct_log)) != APR_SUCCESS
            || (rv = nonblocking_pipe(s)) != APR_SUCCESS) {
            ct_log = NULL;
            ct_log_fd = -1;
        }
        return rv;
    }
    rv = apr_file_open(&ct_log, ap_server_root_relative(p, spec),
                       APR_WRITE | APR_APPEND | APR_CREATE | APR_LARGEFILE,
                       APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00009)
                     "cannot open the tunnel log '%s'", spec);
    }
    else if ((rv = apr_os_file_get(&ct_log_fd, ct_log)) != APR_SUCCESS) {
        ct_log = NULL;
        ct_log_fd = -1;
    }
    return rv;
}

/* Count a dropped record; say so at the 1st, 2nd, 4th, 8th... */
static void dropped(void)
{
    apr_uint32_t n = apr_atomic_inc32(&ct_dropped) + 1;

    ct_stats_log_dropped();
    if ((n & (n - 1)) == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, NULL, CT_LOGNO(00154)
                     "tunnel log: %u records dropped by this child so far: "
                     "the log program does not keep up", n);
    }
}

/* One write of one line: O_APPEND keeps lines whole across threads and
 * children, and a pipe takes it whole or not at all. */
static void write_record(const char *line, apr_size_t len)
{
    ssize_t n;

    do {
        n = write(ct_log_fd, line, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        dropped();
    }
}

/* Milliseconds from start to when, as text, or "-" when when is 0. */
static const char *ms_since(char *buf, apr_size_t size, apr_time_t start,
                            apr_time_t when)
{
    if (when == 0) {
        return "-";
    }
    apr_snprintf(buf, size, "%" APR_TIME_T_FMT,
                 apr_time_as_msec(when > start ? when - start : 0));
    return buf;
}

void ct_report_record(const ct_tunnel_record *rec)
{
    char line[CT_RECORD_MAX], date[APR_RFC822_DATE_LEN], first[24];
    apr_size_t len;

    if (ct_log == NULL) {
        return;
    }
    apr_rfc822_date(date, rec->stop);
    len = (apr_size_t)apr_snprintf(line, sizeof(line),
                       "[%s] client=%s target=%s address=%s mode=%s "
                       "end=%s up=%" APR_OFF_T_FMT " down=%" APR_OFF_T_FMT
                       " duration_ms=%" APR_TIME_T_FMT " first_byte_ms=%s\n",
                       date, rec->client, rec->target,
                       rec->address ? rec->address : "-", rec->mode,
                       rec->end, rec->up, rec->down,
                       apr_time_as_msec(rec->stop - rec->start),
                       ms_since(first, sizeof(first), rec->start,
                                rec->first));
    write_record(line, len);
}

/* The proxy's name as an sf-token, or quoted as an sf-string. */
static const char *proxy_name(request_rec *r)
{
    const char *name = r->server->server_hostname;
    const char *s;

    if (name == NULL || *name == '\0') {
        return "\"httpd\"";
    }
    if (!apr_isalpha(*name) && *name != '*') {
        return apr_psprintf(r->pool, "\"%s\"", name);
    }
    for (s = name; *s; s++) {
        if (!apr_isalnum(*s) && !strchr(":/!#$%&'*+-.^_`|~", *s)) {
            return apr_psprintf(r->pool, "\"%s\"", name);
        }
    }
    return name;
}

int ct_report_refusal(request_rec *r, int status, const char *type,
                      const char *sentence)
{
    apr_table_setn(r->err_headers_out, "Proxy-Status",
                   apr_pstrcat(r->pool, proxy_name(r), "; error=", type,
                               NULL));
    /* httpd appends the note right after its own sentence. */
    apr_table_setn(r->notes, "error-notes",
                   apr_pstrcat(r->pool, " ", ap_escape_html(r->pool,
                                                            sentence), NULL));
    apr_table_setn(r->notes, "verbose-error-to", "*");
    /* Counted once the request is over (ct_report_count_refusal): a
     * request may be refused on one route and served on the next. */
    apr_table_setn(r->notes, CT_NOTE_REFUSED, type);
    return status;
}

void ct_report_target(request_rec *r, const ct_target *t)
{
    apr_table_setn(r->notes, CT_NOTE_HOST, t->host);
    apr_table_setn(r->notes, CT_NOTE_PORT,
                   apr_psprintf(r->pool, "%hu", t->port));
}

/* One step's note: ms since the CONNECT arrived, or "-". */
static void note_ms(request_rec *r, const char *name, apr_time_t when)
{
    char buf[24];

    apr_table_set(r->notes, name, ms_since(buf, sizeof(buf),
                                           r->request_time, when));
}

void ct_report_setup(request_rec *r, const ct_origin *o)
{
    char *ip = NULL;

    note_ms(r, CT_NOTE_RESOLVE_MS, o->resolved);
    note_ms(r, CT_NOTE_CONNECT_MS, o->connected);
    note_ms(r, CT_NOTE_UPSTREAM_MS, o->replied);
    /* Not yet, and never for a tunnel that is not set up. */
    apr_table_setn(r->notes, CT_NOTE_FIRST_BYTE_MS, "-");
    if (o->sock == NULL || o->addr == NULL) {
        return;
    }
    apr_table_setn(r->notes, CT_NOTE_SOURCE_PORT,
                   apr_psprintf(r->pool, "%hu", o->local_port));
    if (apr_sockaddr_ip_get(&ip, o->addr) == APR_SUCCESS) {
        apr_table_setn(r->notes, CT_NOTE_ADDRESS, ip);
    }
    apr_table_setn(r->notes, CT_NOTE_ADDRESS_PORT,
                   apr_psprintf(r->pool, "%hu", o->addr->port));
    if (o->local && apr_sockaddr_ip_get(&ip, o->local) == APR_SUCCESS) {
        apr_table_setn(r->notes, CT_NOTE_LOCAL_ADDRESS, ip);
    }
}

void ct_report_end(request_rec *r, const char *target, ct_tunnel *t,
                   ct_end end, apr_interval_time_t idle,
                   apr_interval_time_t lifetime)
{
    ct_tunnel_record rec;
    apr_off_t up, down;

    ct_tunnel_bytes(t, &up, &down);
    rec.client = r->useragent_ip;
    rec.target = target;
    rec.address = apr_table_get(r->notes, CT_NOTE_ADDRESS);
    rec.mode = "worker";
    rec.end = ct_end_name(end);
    rec.up = up;
    rec.down = down;
    rec.start = r->request_time;
    ct_tunnel_times(t, &rec.opened, &rec.last);
    rec.first = ct_tunnel_first_byte(t);
    rec.stop = apr_time_now();
    note_ms(r, CT_NOTE_FIRST_BYTE_MS, rec.first);
    note_ms(r, CT_NOTE_DURATION_MS, rec.stop);
    apr_table_setn(r->notes, CT_NOTE_BYTES_UP,
                   apr_off_t_toa(r->pool, up));
    apr_table_setn(r->notes, CT_NOTE_BYTES_DOWN,
                   apr_off_t_toa(r->pool, down));
    apr_table_setn(r->notes, CT_NOTE_END, rec.end);
    apr_table_setn(r->notes, CT_NOTE_MODE, rec.mode);
    ct_report_finished(r->server, &rec, end,
                       end == CT_END_IDLE ? idle : lifetime);
    ct_stats_closed(CT_IN_WORKER, end, up, down, rec.stop - rec.start);
}

void ct_report_finished(server_rec *s, const ct_tunnel_record *rec,
                        ct_end end, apr_interval_time_t limit)
{
    ct_report_record(rec);
    /* The times measured, not only the limits: how late a sweep or a
     * busy worker closed the tunnel shows in the log. */
    if (end == CT_END_IDLE) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00050)
                     "tunnel from %s to %s closed: idle for %"
                     APR_TIME_T_FMT " ms (limit %" APR_TIME_T_FMT
                     " ms; %s; up %" APR_OFF_T_FMT ", down %"
                     APR_OFF_T_FMT " bytes)", rec->client, rec->target,
                     apr_time_as_msec(rec->stop - rec->last),
                     apr_time_as_msec(limit), rec->mode, rec->up,
                     rec->down);
    }
    else if (end == CT_END_LIFETIME) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00052)
                     "tunnel from %s to %s closed: maximum lifetime of %"
                     APR_TIME_T_FMT " ms reached after %" APR_TIME_T_FMT
                     " ms (%s; up %" APR_OFF_T_FMT ", down %"
                     APR_OFF_T_FMT " bytes)", rec->client, rec->target,
                     apr_time_as_msec(limit),
                     apr_time_as_msec(rec->stop - rec->opened), rec->mode,
                     rec->up, rec->down);
    }
    else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CT_LOGNO(00051)
                     "tunnel to %s ended (%s; %s): up %" APR_OFF_T_FMT
                     ", down %" APR_OFF_T_FMT " bytes, client %s",
                     rec->target, rec->end, rec->mode, rec->up, rec->down,
                     rec->client);
    }
}

void ct_report_opened(request_rec *r)
{
    apr_table_unset(r->notes, CT_NOTE_REFUSED);
    ct_stats_opened(CT_IN_WORKER, apr_time_now() - r->request_time);
}

void ct_report_count_refusal(request_rec *r)
{
    const char *type = apr_table_get(r->notes, CT_NOTE_REFUSED);

    if (type != NULL) {
        ct_stats_refused(type);
    }
}

void ct_report_handed_off(request_rec *r, ct_tunnel *t)
{
    apr_off_t up, down;

    ct_tunnel_bytes(t, &up, &down);
    apr_table_setn(r->notes, CT_NOTE_MODE, "reactor");
    ct_stats_moved();
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "tunnel handed to a reactor after %" APR_OFF_T_FMT
                  " bytes up, %" APR_OFF_T_FMT " down", up, down);
}
