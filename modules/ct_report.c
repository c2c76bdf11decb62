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

#include "http_protocol.h"

#include "ct_private.h"
#include "ct_report.h"

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
    apr_table_setn(r->notes, "error-notes",
                   ap_escape_html(r->pool, sentence));
    apr_table_setn(r->notes, "verbose-error-to", "*");
    return status;
}

void ct_report_connected(request_rec *r, apr_port_t local_port,
                         apr_sockaddr_t *addr)
{
    char *ip = NULL;

    apr_table_setn(r->notes, CT_NOTE_SOURCE_PORT,
                   apr_psprintf(r->pool, "%hu", local_port));
    if (apr_sockaddr_ip_get(&ip, addr) == APR_SUCCESS) {
        apr_table_setn(r->notes, CT_NOTE_ADDRESS, ip);
    }
}

void ct_report_end(request_rec *r, const char *target, ct_tunnel *t,
                   ct_end end, apr_interval_time_t idle,
                   apr_interval_time_t lifetime)
{
    apr_off_t up, down;

    ct_tunnel_bytes(t, &up, &down);
    apr_table_setn(r->notes, CT_NOTE_BYTES_UP,
                   apr_off_t_toa(r->pool, up));
    apr_table_setn(r->notes, CT_NOTE_BYTES_DOWN,
                   apr_off_t_toa(r->pool, down));
    apr_table_setn(r->notes, CT_NOTE_END, ct_end_name(end));
    if (end == CT_END_IDLE) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00050)
                      "tunnel to %s closed: idle for %" APR_TIME_T_FMT
                      " ms (up %" APR_OFF_T_FMT ", down %" APR_OFF_T_FMT
                      " bytes)", target, apr_time_as_msec(idle), up, down);
        return;
    }
    if (end == CT_END_LIFETIME) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00052)
                      "tunnel to %s closed: maximum lifetime of %"
                      APR_TIME_T_FMT " ms reached (up %" APR_OFF_T_FMT
                      ", down %" APR_OFF_T_FMT " bytes)", target,
                      apr_time_as_msec(lifetime), up, down);
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00051)
                  "tunnel to %s ended (%s): up %" APR_OFF_T_FMT
                  ", down %" APR_OFF_T_FMT " bytes", target,
                  ct_end_name(end), up, down);
}
