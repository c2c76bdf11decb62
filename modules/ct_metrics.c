/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_metrics.c: what the tunnel counters look like from outside.  The
 * mod_status section is for people and for scripts that read ?auto; the
 * metrics handler is for a Prometheus scraper, which wants counters that
 * never go back, labels instead of one key per reason, and cumulative
 * histogram buckets.  Both read one ct_stats_view, summed over children.
 */

#include "apr_strings.h"

#include "http_protocol.h"
#include "http_request.h"
#include "mod_status.h"

#include "ct_private.h"
#include "ct_stats.h"
#include "ct_metrics.h"

static const char *const ct_hist_status_names[CT_HISTS] = {
    "ConnectTunnelsSetupSeconds", "ConnectTunnelsDurationSeconds"
};
static const char *const ct_hist_metric_names[CT_HISTS] = {
    "connect_tunnel_setup_seconds", "connect_tunnel_duration_seconds"
};
static const char *const ct_hist_help[CT_HISTS] = {
    "Time from a CONNECT's arrival to its 200.",
    "Time from a tunnel's CONNECT to its end."
};

/* Microseconds as seconds, in decimal without floating point. */
static const char *seconds(apr_pool_t *p, apr_uint64_t usec)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT,
                        usec / APR_USEC_PER_SEC, usec % APR_USEC_PER_SEC);
}

static apr_uint64_t refused_total(const ct_stats_view *v)
{
    apr_uint64_t n = 0;
    int i;

    for (i = 0; i < CT_STATS_REFUSALS; i++) {
        n += v->refused[i];
    }
    return n;
}

/* ?auto: one "Key: value" per figure, every reason and bucket listed so
 * that the keys do not come and go. */
static void status_short(request_rec *r, const ct_stats_view *v)
{
    apr_uint64_t cum;
    int i, k;

    ap_rprintf(r, "ConnectTunnelsRefused: %" APR_UINT64_T_FMT "\n",
               refused_total(v));
    for (i = 0; i < CT_STATS_REFUSALS; i++) {
        ap_rprintf(r, "ConnectTunnelsRefused_%s: %" APR_UINT64_T_FMT "\n",
                   ct_stats_refusal_name(i), v->refused[i]);
    }
    for (i = 1; i < CT_STATS_ENDS; i++) {
        ap_rprintf(r, "ConnectTunnelsEnded_%s: %" APR_UINT64_T_FMT "\n",
                   ct_stats_end_name(i), v->ended[i]);
    }
    for (i = 0; i < CT_SNI_RESULTS; i++) {
        ap_rprintf(r, "ConnectTunnelsSNI_%s: %" APR_UINT64_T_FMT "\n",
                   ct_sni_result_name(i), v->sni[i]);
    }
    for (k = 0; k < CT_HISTS; k++) {
        const ct_hist_view *h = &v->hist[k];

        for (i = 0, cum = 0; i <= h->nbounds; i++) {
            cum += h->count[i];
            ap_rprintf(r, "%s_le_%s: %" APR_UINT64_T_FMT "\n",
                       ct_hist_status_names[k],
                       i < h->nbounds ? h->labels[i] : "inf", cum);
        }
        ap_rprintf(r, "%s_sum: %s\n", ct_hist_status_names[k],
                   seconds(r->pool, h->sum));
    }
}

/* One table row listing "name n" pairs; names[i] NULL skips entry i. */
static void status_row(request_rec *r, const char *title,
                       const char *const *names, const apr_uint64_t *n,
                       int count)
{
    int i, any = 0;

    ap_rprintf(r, "<tr><th align=\"left\">%s</th><td>", title);
    for (i = 0; i < count; i++) {
        if (names[i] != NULL && n[i] > 0) {
            ap_rprintf(r, "%s%s %" APR_UINT64_T_FMT, any ? ", " : "",
                       names[i], n[i]);
            any = 1;
        }
    }
    ap_rprintf(r, "%s</td></tr>\n", any ? "" : "none");
}

static void status_reasons(request_rec *r, const ct_stats_view *v)
{
    const char *names[CT_STATS_ENDS > CT_STATS_REFUSALS ? CT_STATS_ENDS
                                                        : CT_STATS_REFUSALS];
    int i;

    for (i = 0; i < CT_STATS_REFUSALS; i++) {
        names[i] = ct_stats_refusal_name(i);
    }
    status_row(r, "Refused, by reason", names, v->refused,
               CT_STATS_REFUSALS);
    names[0] = NULL;
    for (i = 1; i < CT_STATS_ENDS; i++) {
        names[i] = ct_stats_end_name(i);
    }
    status_row(r, "Ended, by reason", names, v->ended, CT_STATS_ENDS);
    for (i = 0; i < CT_SNI_RESULTS; i++) {
        names[i] = ct_sni_result_name(i);
    }
    status_row(r, "ClientHellos checked, by result", names, v->sni,
               CT_SNI_RESULTS);
}

static void status_hist(request_rec *r, const char *title,
                        const ct_hist_view *h)
{
    int i;

    ap_rprintf(r, "<tr><th align=\"left\">%s</th><td>", title);
    for (i = 0; i < h->nbounds; i++) {
        ap_rprintf(r, "&le;%s s: %" APR_UINT64_T_FMT ", ", h->labels[i],
                   h->count[i]);
    }
    ap_rprintf(r, "more: %" APR_UINT64_T_FMT "</td></tr>\n",
               h->count[h->nbounds]);
}

static void status_html(request_rec *r, const ct_stats_view *v)
{
    ap_rputs("<hr />\n<h2>CONNECT tunnels (mod_connect_tunnel)</h2>\n"
             "<table border=\"0\">\n", r);
    ap_rprintf(r, "<tr><th align=\"left\">Live</th><td>%u (%u in workers, "
               "%u in reactors)</td></tr>\n",
               v->live[CT_IN_WORKER] + v->live[CT_IN_REACTOR],
               v->live[CT_IN_WORKER], v->live[CT_IN_REACTOR]);
    ap_rprintf(r, "<tr><th align=\"left\">Children draining</th>"
               "<td>%u</td></tr>\n", v->draining);
    ap_rprintf(r, "<tr><th align=\"left\">Opened / closed</th><td>%"
               APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td></tr>\n",
               v->opened, v->closed);
    ap_rprintf(r, "<tr><th align=\"left\">Handed off to reactors</th><td>%"
               APR_UINT64_T_FMT "</td></tr>\n", v->handed_off);
    ap_rprintf(r, "<tr><th align=\"left\">Moved to other children / "
               "refused by them</th><td>%" APR_UINT64_T_FMT " / %"
               APR_UINT64_T_FMT "</td></tr>\n", v->moved, v->move_refused);
    ap_rprintf(r, "<tr><th align=\"left\">Bytes up / down</th><td>%"
               APR_UINT64_T_FMT " / %" APR_UINT64_T_FMT "</td></tr>\n",
               v->bytes_up, v->bytes_down);
    ap_rprintf(r, "<tr><th align=\"left\">Tunnel log records dropped</th>"
               "<td>%" APR_UINT64_T_FMT "</td></tr>\n", v->log_dropped);
    status_reasons(r, v);
    status_hist(r, "Setup time (CONNECT to 200)", &v->hist[CT_HIST_SETUP]);
    status_hist(r, "Duration", &v->hist[CT_HIST_DURATION]);
    ap_rputs("</table>\n", r);
}

int ct_metrics_status_hook(request_rec *r, int flags)
{
    ct_stats_view v;

    ct_stats_read(&v);
    if (!(flags & AP_STATUS_SHORT)) {
        status_html(r, &v);
        return OK;
    }
    ap_rprintf(r, "ConnectTunnelsLive: %u\n"
               "ConnectTunnelsInWorkers: %u\n"
               "ConnectTunnelsInReactors: %u\n"
               "ConnectTunnelsDrainingChildren: %u\n"
               "ConnectTunnelsOpened: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsClosed: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsHandedOff: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsBytesUp: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsBytesDown: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsLogDropped: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsMoved: %" APR_UINT64_T_FMT "\n"
               "ConnectTunnelsMoveRefused: %" APR_UINT64_T_FMT "\n",
               v.live[CT_IN_WORKER] + v.live[CT_IN_REACTOR],
               v.live[CT_IN_WORKER], v.live[CT_IN_REACTOR], v.draining,
               v.opened, v.closed, v.handed_off, v.bytes_up, v.bytes_down,
               v.log_dropped, v.moved, v.move_refused);
    status_short(r, &v);
    return OK;
}

/* The HELP and TYPE lines of one metric family. */
static void family(request_rec *r, const char *name, const char *type,
                   const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(request_rec *r, const char *name, const char *help,
                    apr_uint64_t n)
{
    family(r, name, "counter", help);
    ap_rprintf(r, "%s %" APR_UINT64_T_FMT "\n", name, n);
}

static void prom_hist(request_rec *r, int k, const ct_hist_view *h)
{
    const char *name = ct_hist_metric_names[k];
    apr_uint64_t cum = 0;
    int i;

    family(r, name, "histogram", ct_hist_help[k]);
    for (i = 0; i <= h->nbounds; i++) {
        cum += h->count[i];
        ap_rprintf(r, "%s_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                   i < h->nbounds ? h->labels[i] : "+Inf", cum);
    }
    ap_rprintf(r, "%s_sum %s\n%s_count %" APR_UINT64_T_FMT "\n", name,
               seconds(r->pool, h->sum), name, cum);
}

/* A counter family with one series per value of its label, from..to-1. */
static void counters(request_rec *r, const char *name, const char *help,
                     const char *label, int from, int to,
                     const char *(*label_of)(int), const apr_uint64_t *v)
{
    int i;

    family(r, name, "counter", help);
    for (i = from; i < to; i++) {
        ap_rprintf(r, "%s{%s=\"%s\"} %" APR_UINT64_T_FMT "\n", name, label,
                   label_of(i), v[i]);
    }
}

static void prom_labelled(request_rec *r, const ct_stats_view *v)
{
    counters(r, "connect_tunnel_refused_total",
             "CONNECT requests refused, by Proxy-Status error type.",
             "reason", 0, CT_STATS_REFUSALS, ct_stats_refusal_name,
             v->refused);
    counters(r, "connect_tunnel_ended_total", "Tunnels ended, by reason.",
             "reason", 1, CT_STATS_ENDS, ct_stats_end_name, v->ended);
    counters(r, "connect_tunnel_sni_total",
             "ClientHellos read by ConnectTunnelSNI, by result.",
             "result", 0, CT_SNI_RESULTS, ct_sni_result_name, v->sni);
    family(r, "connect_tunnel_bytes_total", "counter",
           "Payload bytes relayed by ended tunnels, by direction.");
    ap_rprintf(r, "connect_tunnel_bytes_total{direction=\"up\"} %"
               APR_UINT64_T_FMT "\n"
               "connect_tunnel_bytes_total{direction=\"down\"} %"
               APR_UINT64_T_FMT "\n", v->bytes_up, v->bytes_down);
}

static void prom_all(request_rec *r, const ct_stats_view *v)
{
    family(r, "connect_tunnel_live", "gauge",
           "Tunnels open now, by relay.");
    ap_rprintf(r, "connect_tunnel_live{relay=\"worker\"} %u\n"
               "connect_tunnel_live{relay=\"reactor\"} %u\n",
               v->live[CT_IN_WORKER], v->live[CT_IN_REACTOR]);
    family(r, "connect_tunnel_draining_children", "gauge",
           "Child processes waiting for their tunnels to end.");
    ap_rprintf(r, "connect_tunnel_draining_children %u\n", v->draining);
    counter(r, "connect_tunnel_opened_total", "Tunnels opened (200 sent).",
            v->opened);
    counter(r, "connect_tunnel_handed_off_total",
            "Tunnels moved from a worker to a reactor.", v->handed_off);
    counter(r, "connect_tunnel_moved_total",
            "Reactor tunnels moved to a live child by one that exits.",
            v->moved);
    counter(r, "connect_tunnel_move_refused_total",
            "Tunnels a child refused to take from an exiting one.",
            v->move_refused);
    counter(r, "connect_tunnel_log_dropped_total",
            "End-of-tunnel log records dropped (the log program did not "
            "read).", v->log_dropped);
    prom_labelled(r, v);
    prom_hist(r, CT_HIST_SETUP, &v->hist[CT_HIST_SETUP]);
    prom_hist(r, CT_HIST_DURATION, &v->hist[CT_HIST_DURATION]);
}

int ct_metrics_handler(request_rec *r)
{
    ct_stats_view v;

    if (r->handler == NULL || strcmp(r->handler, CT_METRICS_HANDLER)) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only) {
        return OK;
    }
    ct_stats_read(&v);
    prom_all(r, &v);
    return OK;
}
