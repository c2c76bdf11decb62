/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_handler.c: one CONNECT, as numbered steps.  Every check that needs
 * only the request (target syntax, AllowCONNECT, ProxyBlock names) runs
 * before DNS, so a forbidden port is a 403 even for a name that does not
 * resolve, and nothing about a refused target leaves the machine.
 */

#include <arpa/inet.h>

#include "apr_strings.h"

#include "http_core.h"
#include "http_protocol.h"
#include "util_filter.h"
#include "scoreboard.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_target.h"
#include "ct_origin.h"
#include "ct_hop.h"
#include "ct_resolve.h"
#include "ct_via.h"
#include "ct_relay.h"
#include "ct_report.h"
#include "ct_limits.h"
#include "ct_reactor.h"
#include "ct_accesslog.h"
#include "ct_bandwidth.h"
#include "ct_stats.h"
#include "ct_head.h"
#include "ct_control.h"
#include "ct_sni.h"
#include "ct_handler.h"

/* Per-request settings derived once from the configuration. */
typedef struct {
    apr_interval_time_t connect_timeout;
    apr_interval_time_t setup_timeout;
    apr_interval_time_t idle_timeout;
    apr_interval_time_t max_lifetime;   /* 0: none */
    apr_size_t bufsize;
    int zero_copy;
    int handoff;
    int log_open;               /* ConnectTunnelLogOpen */
} ct_settings;

static void settings(request_rec *r, proxy_server_conf *pconf,
                     ct_settings *s)
{
    core_server_config *core = ap_get_core_module_config(
                                   r->server->module_config);
    ct_server_conf *conf = ap_get_module_config(r->server->module_config,
                                                &connect_tunnel_module);

    /* Our directives first, then ProxyTimeout, as stock uses it. */
    if (conf->connect_timeout != CT_UNSET) {
        s->connect_timeout = conf->connect_timeout;
    }
    else {
        s->connect_timeout = pconf->timeout_set ? pconf->timeout
                                                : CT_DEFAULT_CONNECT_TIMEOUT;
    }
    if (conf->idle_timeout != CT_UNSET) {
        s->idle_timeout = conf->idle_timeout;
    }
    else {
        s->idle_timeout = pconf->timeout_set ? pconf->timeout
                                             : r->server->timeout;
    }
    s->max_lifetime = conf->max_lifetime != CT_UNSET ? conf->max_lifetime
                                                     : 0;
    /* SetEnvIf, <If> or mod_rewrite may choose them per request; a
     * derived set-up timeout follows the connect timeout chosen. */
    ct_control_env_timeouts(r, &s->connect_timeout, &s->idle_timeout,
                            &s->max_lifetime);
    s->setup_timeout = conf->setup_timeout != CT_UNSET
                       ? conf->setup_timeout
                       : CT_SETUP_TIMEOUT_FACTOR * s->connect_timeout;
    s->zero_copy = ct_conf_zero_copy(conf);
    s->handoff = conf->handoff != CT_UNSET ? conf->handoff
                                           : CT_DEFAULT_HANDOFF;
    s->log_open = conf->log_open != CT_UNSET ? conf->log_open
                                             : CT_DEFAULT_LOG_OPEN;
    s->bufsize = pconf->io_buffer_size_set ? pconf->io_buffer_size
                                           : CT_DEFAULT_BUFFER_SIZE;
    /* One pass above FlushMaxThreshold would make the core write block. */
    if (core->flush_max_threshold > 0
        && s->bufsize > core->flush_max_threshold) {
        s->bufsize = core->flush_max_threshold;
    }
}

/* Step 1: the request-target, strictly (400). */
static int check_target(request_rec *r, const char *url, ct_target *t)
{
    ct_target_status st = ct_target_parse(r->pool, url, t);

    if (st != CT_TARGET_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00010)
                      "bad CONNECT target '%.*s': %s", 255, url,
                      ct_target_reason(st));
        return ct_report_refusal(r, HTTP_BAD_REQUEST, CT_PS_REQUEST_ERROR,
                                 apr_pstrcat(r->pool, "Bad CONNECT target: ",
                                             ct_target_reason(st), ".",
                                             NULL));
    }
    return OK;
}

/*
 * Step 1b: a CONNECT that already passed through this very server (its
 * Via carries our own entry) is a forwarding loop: refuse it here, after
 * one hop, before it takes another worker upstream (502).
 */
static int check_loop(request_rec *r)
{
    const char *via = apr_table_get(r->headers_in, "Via");

    if (via == NULL || !ct_hop_via_has(via, ct_via_name(r))) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00144)
                  "forwarding loop: this CONNECT already passed through "
                  "this server (Via: '%.*s'); check ProxyRemote", 255, via);
    return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_LOOP,
                             "The request came back to this proxy (a "
                             "forwarding loop).");
}

/*
 * ProxyBlock by name.  mod_proxy's own test is case-sensitive, so that
 * "EXAMPLE.com" slips past "ProxyBlock example"; host names are not.
 */
static int name_blocked(proxy_server_conf *pconf, const char *host)
{
    const struct noproxy_entry *list =
        (const struct noproxy_entry *)pconf->noproxies->elts;
    int i;

    for (i = 0; i < pconf->noproxies->nelts; i++) {
        if (list[i].name[0] == '*' || ap_strcasestr(host, list[i].name)) {
            return 1;
        }
    }
    return 0;
}

/* Step 2: AllowCONNECT and ProxyBlock by name, before any DNS (403). */
static int check_policy(request_rec *r, proxy_server_conf *pconf,
                        const ct_target *t)
{
    ct_server_conf *conf = ap_get_module_config(r->server->module_config,
                                                &connect_tunnel_module);

    if (!ct_conf_port_allowed(conf, t->port)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00011)
                      "tunnel to '%.*s' refused: port %hu is not in "
                      "AllowCONNECT", 255, t->host, t->port);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_REQUEST_DENIED,
                                 "Tunnels to this port are not allowed.");
    }
    if (name_blocked(pconf, t->host)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00012)
                      "tunnel to '%.*s' refused: name matches ProxyBlock",
                      255, t->host);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_REQUEST_DENIED,
                                 "The destination is blocked by this "
                                 "proxy.");
    }
    return OK;
}

/*
 * Step 3: the destination rules, as far as they can be decided before
 * DNS: a literal address completely, a name by the host rules (403).
 * What needs the resolved addresses is left to the origin.
 */
static int check_destination(request_rec *r, const ct_target *t,
                             ct_dest_policy *pol)
{
    ct_dir_conf *dconf = ap_get_module_config(r->per_dir_config,
                                              &connect_tunnel_module);
    const char *denied = NULL;
    ct_verdict v;

    pol->rules = dconf->rules;
    pol->default_deny = ct_conf_default_deny(dconf);
    pol->name = t->kind == CT_HOST_NAME ? t->host : NULL;
    pol->decided = 0;
    if (t->kind != CT_HOST_NAME) {
        unsigned char raw[16];
        ct_net net;
        int v6 = t->kind == CT_HOST_IPV6;

        /* The parser accepted it, so it converts. */
        (void)inet_pton(v6 ? AF_INET6 : AF_INET, t->host, raw);
        ct_net_from_raw(v6 ? APR_INET6 : APR_INET, raw, &net);
        denied = ct_resolve_address_denied(r->pool, pol, &net);
    }
    else {
        v = ct_rules_check(pol->rules, pol->name, NULL);
        denied = v.action == CT_DENY ? v.why : NULL;
        pol->decided = v.action == CT_ALLOW;
        /* What an allowed name resolves to is the guard's business unless
         * the admin trusts such names. */
        pol->default_deny &= !(pol->decided && ct_conf_trust_names(dconf));
    }
    if (denied) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00016)
                      "tunnel to '%.*s' refused by %s", 255, t->host,
                      denied);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_IP_PROHIBITED,
                                 "The destination is not allowed.");
    }
    if (t->kind != CT_HOST_NAME) {
        /* A literal was checked whole: nothing is left to check. */
        pol->decided = 1;
        pol->default_deny = 0;
    }
    return OK;
}

int ct_handler_check(request_rec *r, proxy_server_conf *pconf,
                     const char *url, ct_target *t, ct_dest_policy *pol)
{
    int rc;

    /* 1. target syntax, 2. ports and ProxyBlock, 3. destination rules */
    if ((rc = check_target(r, url, t)) != OK) {
        return rc;
    }
    ct_report_target(r, t);
    if ((rc = check_policy(r, pconf, t)) != OK
        || (rc = check_destination(r, t, pol)) != OK) {
        return rc;
    }
    return OK;
}

/*
 * Step 4: ConnectTunnelAddress.  What is dialled is what is checked: an
 * override goes through ProxyBlock and the destination rules as a target
 * would (AllowCONNECT is about what clients ask for, so not through it);
 * pol becomes the override's.  Logs and notes keep the client's target.
 */
static int check_override(request_rec *r, proxy_server_conf *pconf,
                          const ct_target *t, ct_target *dial,
                          ct_dest_policy *pol)
{
    if (ct_control_address(r, t, dial) != OK) {
        return ct_report_refusal(r, HTTP_INTERNAL_SERVER_ERROR,
                                 CT_PS_INTERNAL, "The proxy's address "
                                 "override is misconfigured.");
    }
    if (dial->host == t->host) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00239)
                  "tunnel to '%.*s' dials %s instead (ConnectTunnelAddress)",
                  255, t->host, ct_target_authority(r->pool, dial));
    if (name_blocked(pconf, dial->host)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00240)
                      "tunnel to '%.*s' refused: its address override '%s' "
                      "matches ProxyBlock", 255, t->host, dial->host);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_REQUEST_DENIED,
                                 "The destination is blocked by this "
                                 "proxy.");
    }
    return check_destination(r, dial, pol);
}

/* Step 4b: ConnectTunnelBind, the source of the outgoing connection. */
static int check_bind(request_rec *r, ct_setup *setup)
{
    if (ct_control_bind(r, &setup->bind) != OK) {
        return ct_report_refusal(r, HTTP_INTERNAL_SERVER_ERROR,
                                 CT_PS_INTERNAL, "The proxy's source "
                                 "address is misconfigured.");
    }
    return OK;
}

/*
 * mod_proxy matches <Proxy> sections against r->filename as the client
 * spelled the target, byte for byte, while names resolve in any case and
 * an IPv6 literal can spell an IPv4 address: give the sections (and
 * everything after them) the one canonical spelling.  A target that does
 * not parse is left alone for the handler to refuse.
 */
static void canonicalise(request_rec *r)
{
    ct_target t;
    const char *authority;

    if (r->filename == NULL || strncmp(r->filename, "proxy:", 6) != 0
        || ct_target_parse(r->pool, r->filename + 6, &t) != CT_TARGET_OK) {
        return;
    }
    ct_target_canonical(r->pool, &t, &t);
    authority = ct_target_authority(r->pool, &t);
    if (strcmp(authority, r->filename + 6) == 0) {
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "CONNECT target '%.*s' read as '%s'", 255,
                  r->filename + 6, authority);
    r->uri = (char *)authority;
    r->filename = apr_pstrcat(r->pool, "proxy:", authority, NULL);
    r->parsed_uri.hostname = (char *)t.host;
    r->parsed_uri.hostinfo = (char *)authority;
}

/* The input filter that watches an HTTP/1.x request head (ct_head.h). */
static ap_filter_rec_t *head_filter;

/* The head was watched to its end: record what it showed, and leave. */
static void head_watched(ap_filter_t *f, const ct_head *h)
{
    if (h->state == CT_HEAD_END) {
        apr_table_setn(f->r->notes, CT_NOTE_HOST_FIELDS,
                       apr_itoa(f->r->pool, h->hosts));
    }
    ap_remove_input_filter(f);
}

/*
 * httpd reads the request line and the field lines one AP_MODE_GETLINE
 * call each; the bytes pass through unchanged.  Anything but a CONNECT
 * leaves at its request line, a CONNECT at the empty line ending its head,
 * long before any body or tunnel byte.
 */
static apr_status_t head_watch(ap_filter_t *f, apr_bucket_brigade *bb,
                               ap_input_mode_t mode, apr_read_type_e block,
                               apr_off_t readbytes)
{
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    apr_bucket *e;

    if (rv != APR_SUCCESS || mode != AP_MODE_GETLINE) {
        return rv;
    }
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;

        if (APR_BUCKET_IS_METADATA(e)) {
            continue;
        }
        /* Read as ap_rgetline will read it, which then finds it read. */
        if ((rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ))
            != APR_SUCCESS) {
            return rv;
        }
        if (ct_head_feed(f->ctx, data, len)) {
            head_watched(f, f->ctx);
            break;
        }
    }
    return APR_SUCCESS;
}

void ct_handler_register(void)
{
    head_filter = ap_register_input_filter("CT_HEAD_WATCH", head_watch,
                                           NULL, AP_FTYPE_PROTOCOL);
}

void ct_handler_pre_read(request_rec *r, conn_rec *c)
{
    ct_head *h;

    /* An HTTP/2 stream's request is built from its HEADERS frame, with
     * no lines to read: mod_http2 keeps one Host (the first) itself. */
    if (c->master != NULL) {
        return;
    }
    h = apr_palloc(r->pool, sizeof(*h));
    ct_head_init(h);
    ap_add_input_filter_handle(head_filter, h, r, c);
}

/* Step 0: one Host field, no more (RFC 9112 section 3.2), which httpd
 * cannot tell any more once it replaced the value with the target. */
static int check_host_fields(request_rec *r)
{
    const char *n = apr_table_get(r->notes, CT_NOTE_HOST_FIELDS);

    if (n == NULL || atoi(n) <= 1) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00130)
                  "CONNECT with more than one Host field (%s lines) "
                  "refused", n);
    return ct_report_refusal(r, HTTP_BAD_REQUEST, CT_PS_REQUEST_ERROR,
                             "The request has more than one Host header "
                             "field.");
}

int ct_handler_post_read(request_rec *r)
{
    int rc = check_host_fields(r);

    if (rc != OK) {
        return rc;
    }
    canonicalise(r);
    return OK;
}

/*
 * Step 7: the 2xx, in the request's HTTP version, on the connection
 * filters so that it is encrypted for a TLS client and turned into HEADERS
 * for an HTTP/2 one.  No Content-Length or Transfer-Encoding (RFC 9110).
 */
static apr_status_t send_established(request_rec *r)
{
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    apr_status_t rv;

    rv = apr_brigade_puts(bb, NULL, NULL, ct_control_established(r));
    if (rv == APR_SUCCESS) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(c->bucket_alloc));
        rv = ap_pass_brigade(c->output_filters, bb);
    }
    apr_brigade_destroy(bb);
    return rv;
}

/*
 * Give the tunnel to a reactor when it is safe (plain TCP, passive
 * filters, nothing pending, a place reserved).  After this the worker
 * keeps nothing of the tunnel; the MPM closes its copy of the client
 * socket without a shutdown because the connection is marked.
 */
static int hand_off(request_rec *r, const ct_settings *s,
                    const char *target, ct_tunnel *tunnel, ct_bw *bw)
{
    ct_conn_state *st = ct_conn_state_get(r->connection);
    ct_handoff h;

    /* Without its state the connection could not be marked, and the
     * MPM would shut down a socket the reactor owns. */
    if (!s->handoff || st == NULL || !ct_reactor_reserve()) {
        return 0;
    }
    memset(&h, 0, sizeof(h));
    if (ct_tunnel_handoff(tunnel, &h) != APR_SUCCESS) {
        ct_reactor_unreserve();
        return 0;
    }
    h.idle = s->idle_timeout;
    h.lifetime = s->max_lifetime;
    h.zero_copy = s->zero_copy;
    h.start = r->request_time;
    h.client = r->useragent_ip;
    h.target = target;
    h.address = apr_table_get(r->notes, CT_NOTE_ADDRESS);
    ct_limits_detach(r, &h.limits);
    if (bw != NULL) {
        ct_bandwidth_detach(r, bw);
        h.bw = *bw;
        h.limited = 1;
    }
    st->handed_off = 1;
    ct_report_handed_off(r, tunnel);
    if (s->log_open) {
        /* Before the reactor has it, so that it precedes the end line. */
        ct_alog_write_open(r);
    }
    /* The access-log line waits for the end of the tunnel, as stock's;
     * without a record it is written now, and says so. */
    h.alog = ct_alog_capture(r, h.early_len, h.up, h.down);
    st->log_held = h.alog != NULL;
    if (h.alog == NULL) {
        apr_table_setn(r->notes, CT_NOTE_END, "handed-off");
    }
    /* Cannot fail once reserved; the descriptors are the reactor's. */
    (void)ct_reactor_submit(&h);
    return 1;
}

void ct_handler_pre_close(conn_rec *c)
{
    ct_conn_state *st = ct_conn_state_get(c);

    if (st != NULL && st->handed_off) {
        /* The reactor owns the tunnel: no shutdown(), no lingering. */
        c->aborted = 1;
    }
}

/*
 * While a worker relays, its scoreboard line (ExtendedStatus) says what
 * it holds: "CONNECT host:port", as canonical as the end-of-tunnel log's
 * target, rather than a request line that may have been written
 * otherwise.  A tunnel in a reactor holds no worker and has no line.
 */
static void show_tunnel(request_rec *r, const char *target)
{
    if (r->connection->sbh != NULL) {
        ap_update_child_status_descr(r->connection->sbh, SERVER_BUSY_WRITE,
                                     apr_pstrcat(r->pool, "CONNECT ",
                                                 target, NULL));
    }
}

/* Step 8: relay until the tunnel ends, then account for it. */
static void relay(request_rec *r, const ct_settings *s, const ct_target *t,
                  ct_origin *o, ct_bw *bw)
{
    const char *target = ct_target_authority(r->pool, t);
    ct_tunnel *tunnel;
    apr_status_t rv;
    ct_end end;

    rv = ct_tunnel_create(&tunnel, r, o->sock, s->bufsize, s->zero_copy);
    if (rv == APR_SUCCESS) {
        ct_tunnel_set_timeouts(tunnel, s->idle_timeout, s->max_lifetime);
        ct_tunnel_set_bandwidth(tunnel, bw);
    }
    if (rv == APR_SUCCESS) {
        rv = ct_tunnel_prime_client(tunnel, o->early, o->early_len);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00013)
                      "setting up the tunnel to %s failed", target);
        r->connection->aborted = 1;
        ct_stats_closed(CT_IN_WORKER, CT_END_INTERNAL, 0, 0,
                        apr_time_now() - r->request_time);
        return;
    }
    /* ConnectTunnelSNI: the ClientHello is read and judged here, in the
     * worker, before either relay sends a byte of it to the origin. */
    if (ct_sni_wanted(r)
        && (end = ct_sni_check(r, tunnel, t)) != CT_END_NONE) {
        r->connection->aborted = 1;
        ct_report_end(r, target, tunnel, end, s->idle_timeout,
                      s->max_lifetime);
        return;
    }
    if (hand_off(r, s, target, tunnel, bw)) {
        return;
    }
    show_tunnel(r, target);
    if (s->log_open) {
        apr_table_setn(r->notes, CT_NOTE_MODE, "worker");
        ct_alog_write_open(r);
    }
    end = ct_tunnel_run(tunnel);
    if (end == CT_END_CLIENT_ERROR
        || (end == CT_END_ORIGIN_ERROR && r->connection->master == NULL)) {
        /* Nothing more can reach this client, or nothing more will: skip
         * the lingering close, which would read and discard the client's
         * bytes for up to 30 s, so that it sees the tunnel closed as a
         * reactor closes it.  (A stream was reset by ct_tunnel_run.) */
        r->connection->aborted = 1;
    }
    ct_report_end(r, target, tunnel, end, s->idle_timeout, s->max_lifetime);
}

int ct_handle_connect(request_rec *r, proxy_server_conf *pconf,
                      const char *url, const char *proxyname,
                      apr_port_t proxyport)
{
    ct_dest_policy pol;
    ct_settings s;
    ct_setup setup;
    ct_target t, dial;
    ct_origin o;
    ct_bw *bw = NULL;
    apr_status_t rv;
    int rc;

    if (proxyname == NULL
        && apr_table_get(r->notes, CT_NOTE_UPSTREAM_FAILED)) {
        /* mod_proxy tries a direct connection after every upstream proxy
         * answered 502; a site that routes through a parent proxy must
         * not be bypassed when the parent is down: fail closed. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00017)
                      "no direct connection to '%.*s': its upstream proxy "
                      "failed", 255, url);
        return HTTP_BAD_GATEWAY;
    }
    if (r->connection->master != NULL
        && !ct_relay_stream_pollable(r->connection)) {
        /* Built for httpd before 2.4.58, or a mod_http2 built without
         * pipes: a stream gives nothing to wait on; tell the client
         * before any origin is dialled. */
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00015)
                      "CONNECT over HTTP/2 needs httpd 2.4.58 or later and "
                      "a mod_http2 whose streams can be polled; the client "
                      "should use HTTP/1.1");
        return ct_report_refusal(r, HTTP_NOT_IMPLEMENTED,
                                 CT_PS_REQUEST_ERROR,
                                 "CONNECT over HTTP/2 is not supported here.");
    }
    settings(r, pconf, &s);
    setup.step = s.connect_timeout;
    setup.budget = s.setup_timeout;
    setup.deadline = apr_time_now() + s.setup_timeout;
    setup.bind = NULL;
    memset(&o, 0, sizeof(o));
    /* 1-3 again (they decided already, in the canon hook, and decide the
     * same), loops, 4. what to dial and from where, 5. limits and rates
     * (before any DNS), 6. the next hop */
    if ((rc = ct_handler_check(r, pconf, url, &t, &pol)) != OK
        || (rc = check_loop(r)) != OK
        || (rc = check_override(r, pconf, &t, &dial, &pol)) != OK
        || (rc = check_bind(r, &setup)) != OK
        || (rc = ct_limits_acquire(r, &dial)) != OK
        || (rc = ct_bandwidth_acquire(r, &bw)) != OK
        || (rc = ct_origin_open(r, pconf, &dial, &pol, proxyname,
                                proxyport, &setup, &o)) != OK) {
        if (proxyname && rc == HTTP_BAD_GATEWAY) {
            apr_table_setn(r->notes, CT_NOTE_UPSTREAM_FAILED, proxyname);
        }
        ct_report_setup(r, &o);
        return rc;
    }
    ct_report_setup(r, &o);
    /* 7. the 200 */
    rv = send_established(r);
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, CT_LOGNO(00014)
                      "client left before the tunnel was established");
        r->connection->aborted = 1;
    }
    else {
        /* 8. relay (here or in a reactor) and report */
        ct_report_opened(r);
        relay(r, &s, &t, &o, bw);
    }
    /* The origin is closed at once: no lingering in the worker. */
    apr_socket_close(o.sock);
    return OK;
}
