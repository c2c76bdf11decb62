/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_report.c: request notes and log lines about tunnels.  Stock logs
 * nothing of a tunnel but its start; here every tunnel leaves its byte
 * counts and the reason it ended in notes the access log can show, and an
 * idle timeout is an info line, not an error.
 */

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

/* Longest end-of-tunnel record. */
#define CT_RECORD_MAX 600

apr_status_t ct_report_open_log(apr_pool_t *p, server_rec *s,
                                const char *spec)
{
    apr_status_t rv;

    ct_log = NULL;
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
        return APR_SUCCESS;
    }
    rv = apr_file_open(&ct_log, ap_server_root_relative(p, spec),
                       APR_WRITE | APR_APPEND | APR_CREATE | APR_LARGEFILE,
                       APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00009)
                     "cannot open the tunnel log '%s'", spec);
    }
    return rv;
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
    /* One write of one line: O_APPEND keeps lines whole across threads
     * and children. */
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
    (void)apr_file_write_full(ct_log, line, len, NULL);
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
    ct_stats_closed(CT_IN_WORKER, up, down);
}

void ct_report_finished(server_rec *s, const ct_tunnel_record *rec,
                        ct_end end, apr_interval_time_t limit)
{
    ct_report_record(rec);
    if (end == CT_END_IDLE) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00050)
                     "tunnel from %s to %s closed: idle for %"
                     APR_TIME_T_FMT " ms (%s; up %" APR_OFF_T_FMT
                     ", down %" APR_OFF_T_FMT " bytes)", rec->client,
                     rec->target, apr_time_as_msec(limit), rec->mode,
                     rec->up, rec->down);
    }
    else if (end == CT_END_LIFETIME) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00052)
                     "tunnel from %s to %s closed: maximum lifetime of %"
                     APR_TIME_T_FMT " ms reached (%s; up %" APR_OFF_T_FMT
                     ", down %" APR_OFF_T_FMT " bytes)", rec->client,
                     rec->target, apr_time_as_msec(limit), rec->mode,
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

void ct_report_handed_off(request_rec *r, ct_tunnel *t)
{
    apr_off_t up, down;

    ct_tunnel_bytes(t, &up, &down);
    apr_table_setn(r->notes, CT_NOTE_MODE, "reactor");
    apr_table_setn(r->notes, CT_NOTE_END, "handed-off");
    /* Known here only if the origin spoke before the hand-off; the
     * end-of-tunnel record has it in any case. */
    if (ct_tunnel_first_byte(t) != 0) {
        note_ms(r, CT_NOTE_FIRST_BYTE_MS, ct_tunnel_first_byte(t));
    }
    else {
        apr_table_unset(r->notes, CT_NOTE_FIRST_BYTE_MS);
    }
    ct_stats_moved();
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "tunnel handed to a reactor after %" APR_OFF_T_FMT
                  " bytes up, %" APR_OFF_T_FMT " down", up, down);
}
