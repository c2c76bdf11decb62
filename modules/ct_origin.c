/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_origin.c: resolving and dialling the next hop.
 *
 * Unlike stock, a failure never falls back to something else: a dead
 * upstream proxy is a 502 (not a silent direct connection), and a refusal
 * by the upstream is answered as our own error, never relayed as raw bytes
 * the client would take for a tunnel.  DNS failure, refusal and timeout
 * each have their own status and log tag.
 */

#include "apr_strings.h"
#include "apr_lib.h"

#include "http_protocol.h"
#include "http_request.h"

#include "ct_private.h"
#include "ct_origin.h"
#include "ct_report.h"
#include "ct_hop.h"
#include "ct_resolve.h"
#include "ct_via.h"
#include "ct_dial.h"

/* Upstream proxies are spoken to in plain HTTP: say so where a
 * ProxyRemote URL asks for TLS, rather than ignore it silently. */
void ct_origin_check_remotes(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        proxy_server_conf *pconf = ap_get_module_config(s->module_config,
                                                        &proxy_module);
        const struct proxy_remote *list;
        int i;

        if (pconf == NULL || pconf->proxies == NULL) {
            continue;
        }
        list = (const struct proxy_remote *)pconf->proxies->elts;
        for (i = 0; i < pconf->proxies->nelts; i++) {
            if (list[i].protocol
                && ap_cstr_casecmp(list[i].protocol, "https") == 0) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                             CT_LOGNO(00018) "ProxyRemote %s://%s:%hu: "
                             "CONNECT tunnels reach upstream proxies in "
                             "plain HTTP, not TLS", list[i].protocol,
                             list[i].hostname, list[i].port);
            }
        }
    }
}

static void net_of(const apr_sockaddr_t *sa, ct_net *net)
{
    ct_net_from_raw(sa->family, sa->ipaddr_ptr, net);
}

/*
 * The ProxyBlock entry one of addrs is listed in, or NULL.  mod_proxy
 * compares the addresses as text, so that a NAT64 spelling of a blocked
 * IPv4 address passes; here both sides are normalised first.
 */
static const char *blocked_address(proxy_server_conf *pconf,
                                   apr_sockaddr_t *addrs,
                                   apr_sockaddr_t **hit)
{
    const struct noproxy_entry *list =
        (const struct noproxy_entry *)pconf->noproxies->elts;
    apr_sockaddr_t *blocked, *sa;
    ct_net a, b;
    int i;

    for (i = 0; i < pconf->noproxies->nelts; i++) {
        for (blocked = list[i].addr; blocked; blocked = blocked->next) {
            net_of(blocked, &b);
            for (sa = addrs; sa; sa = sa->next) {
                net_of(sa, &a);
                if (ct_net_equal(&a, &b)) {
                    *hit = sa;
                    return list[i].name;
                }
            }
        }
    }
    return NULL;
}

static int check_blocked_addresses(request_rec *r, proxy_server_conf *pconf,
                                   const char *host, apr_sockaddr_t *addrs)
{
    apr_sockaddr_t *hit = NULL;
    const char *entry = blocked_address(pconf, addrs, &hit);

    if (entry != NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00021)
                      "tunnel to '%.*s' refused: its address %pI is listed "
                      "in ProxyBlock (as '%s')", 255, host, hit, entry);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_IP_PROHIBITED,
                                 "The destination is blocked by this "
                                 "proxy.");
    }
    return OK;
}

static int setup_expired(request_rec *r, const ct_setup *setup,
                         const char *hop)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00140)
                  "setting up the tunnel through %s took longer than "
                  "ConnectTunnelSetupTimeout (%" APR_TIME_T_FMT " ms)", hop,
                  apr_time_as_msec(setup->budget));
    return ct_report_refusal(r, HTTP_GATEWAY_TIME_OUT, CT_PS_TIMEOUT,
                             "Setting up the tunnel took too long.");
}

static int past_deadline(const ct_setup *setup)
{
    return apr_time_now() >= setup->deadline;
}

/*
 * Give the next socket operation what is left of the step and the set-up;
 * *cut says whether the deadline is what limits it.
 */
static apr_status_t limit_step(ct_origin *o, const ct_setup *setup,
                               int *cut)
{
    apr_interval_time_t timeout;

    timeout = ct_hop_step_timeout(setup->step, setup->deadline,
                                  apr_time_now());
    *cut = timeout < setup->step;
    if (timeout == 0) {
        return APR_TIMEUP;
    }
    return apr_socket_timeout_set(o->sock, timeout);
}

/* Ask the upstream proxy for a tunnel to t; returns OK when it says 2xx. */
static int upstream_request(request_rec *r, const ct_target *t,
                            const ct_setup *setup, ct_origin *o)
{
    const char *creds = apr_table_get(r->notes, "proxy-basic-creds");
    /* mod_proxy has already counted this hop off the client's value (and
     * answered a 0 itself), or set ProxyMaxForwards. */
    const char *maxfwd = apr_table_get(r->headers_in, "Max-Forwards");
    const char *authority = ct_target_authority(r->pool, t);
    const char *req;
    apr_size_t len;
    apr_status_t rv;
    int cut;

    req = apr_pstrcat(r->pool, "CONNECT ", authority, " HTTP/1.1" CRLF
                      "Host: ", authority, CRLF,
                      creds ? "Proxy-Authorization: " : "",
                      creds ? creds : "", creds ? CRLF : "",
                      maxfwd ? "Max-Forwards: " : "",
                      maxfwd ? maxfwd : "", maxfwd ? CRLF : "",
                      "Via: ", ct_via_value(r), CRLF,
                      "Proxy-agent: ", ap_get_server_banner(), CRLF CRLF,
                      NULL);
    len = strlen(req);
    if ((rv = limit_step(o, setup, &cut)) == APR_SUCCESS) {
        rv = apr_socket_send(o->sock, req, &len);
    }
    if (APR_STATUS_IS_TIMEUP(rv) && cut) {
        return setup_expired(r, setup, o->upstream);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00022)
                      "sending CONNECT to upstream proxy %s failed",
                      o->upstream);
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_UNAVAILABLE,
                                 "The upstream proxy could not be "
                                 "reached.");
    }
    return OK;
}

/*
 * Read the upstream's reply head, each read within the step timeout and
 * the set-up's deadline; keep whatever follows it.  *loop says whether the
 * upstream saw a forwarding loop.
 */
static int upstream_reply(request_rec *r, const ct_setup *setup,
                          ct_origin *o, int *status, int *loop)
{
    char *buf = apr_palloc(r->pool, CT_UPSTREAM_HEAD_MAX + 1);
    apr_size_t have = 0, len;
    apr_status_t rv;
    int cut;
    char *end = NULL;

    while (end == NULL && have < CT_UPSTREAM_HEAD_MAX) {
        len = CT_UPSTREAM_HEAD_MAX - have;
        if ((rv = limit_step(o, setup, &cut)) != APR_SUCCESS) {
            len = 0;
        }
        else {
            rv = apr_socket_recv(o->sock, buf + have, &len);
        }
        if (APR_STATUS_IS_TIMEUP(rv) && cut) {
            return setup_expired(r, setup, o->upstream);
        }
        if (rv != APR_SUCCESS && !(APR_STATUS_IS_EOF(rv) && len > 0)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00023)
                          "no complete reply from upstream proxy %s",
                          o->upstream);
            return ct_report_refusal(r, APR_STATUS_IS_TIMEUP(rv)
                                        ? HTTP_GATEWAY_TIME_OUT
                                        : HTTP_BAD_GATEWAY,
                                     CT_PS_UNAVAILABLE,
                                     "The upstream proxy did not answer.");
        }
        have += len;
        buf[have] = '\0';
        end = strstr(buf, CRLF CRLF);
    }
    if (end == NULL || strncmp(buf, "HTTP/1.", 7) != 0
        || !apr_isdigit(buf[7]) || buf[8] != ' '
        || !apr_isdigit(buf[9]) || !apr_isdigit(buf[10])
        || !apr_isdigit(buf[11])) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00024)
                      "malformed reply from upstream proxy %s", o->upstream);
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_UNAVAILABLE,
                                 "The upstream proxy sent a malformed "
                                 "reply.");
    }
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    end[2] = '\0';
    *loop = ct_hop_head_reports_loop(buf);
    end[2] = '\r';
    end += 4;
    o->early = end;
    o->early_len = have - (apr_size_t)(end - buf);
    return OK;
}

static int upstream_handshake(request_rec *r, const ct_target *t,
                              const ct_setup *setup, ct_origin *o)
{
    int rc, status = 0, loop = 0;

    if ((rc = upstream_request(r, t, setup, o)) != OK
        || (rc = upstream_reply(r, setup, o, &status, &loop)) != OK) {
        return rc;
    }
    o->replied = apr_time_now();
    if ((status < 200 || status > 299) && loop) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00141)
                      "upstream proxy %s refused the tunnel to %s: a "
                      "forwarding loop (status %d, proxy_loop_detected); "
                      "check ProxyRemote", o->upstream,
                      ct_target_authority(r->pool, t), status);
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_LOOP,
                                 "The request came back to this proxy "
                                 "(a forwarding loop).");
    }
    if (status < 200 || status > 299) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00025)
                      "upstream proxy %s refused the tunnel to %s with "
                      "status %d", o->upstream,
                      ct_target_authority(r->pool, t), status);
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_UNAVAILABLE,
                                 apr_psprintf(r->pool, "The upstream proxy "
                                              "refused the tunnel (status "
                                              "%d).", status));
    }
    return OK;
}

static int connect_failed(request_rec *r, const ct_setup *setup,
                          ct_dial_outcome how,
                          const char *hop)
{
    if (how == CT_DIAL_DEADLINE) {
        return setup_expired(r, setup, hop);
    }
    if (how == CT_DIAL_TIMEOUT) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00026)
                      "connect to %s timed out", hop);
        return ct_report_refusal(r, HTTP_GATEWAY_TIME_OUT, CT_PS_TIMEOUT,
                                 "Connecting to the destination timed "
                                 "out.");
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00027)
                  "connect to %s failed: every address %s", hop,
                  how == CT_DIAL_UNREACHABLE ? "unreachable"
                                             : "refused the connection");
    if (how == CT_DIAL_UNREACHABLE) {
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_IP_UNROUTABLE,
                                 "The destination is unreachable.");
    }
    return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_REFUSED,
                             "The destination refused the connection.");
}

/*
 * Keep the resolved addresses the rules allow, in resolver order; these
 * very records are the ones dialled.  403 when none is left.
 */
static int filter_addresses(request_rec *r, const ct_dest_policy *pol,
                            const char *host, apr_sockaddr_t **addrs)
{
    apr_sockaddr_t *sa, *next, **tail = addrs, *first = *addrs;
    const char *why = NULL;
    ct_net net;

    *addrs = NULL;
    for (sa = first; sa != NULL; sa = next) {
        const char *denied;

        next = sa->next;
        net_of(sa, &net);
        denied = ct_resolve_address_denied(r->pool, pol, &net);
        if (denied) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00029)
                          "address %pI of '%.*s' denied by %s", sa, 255,
                          host, denied);
            why = why ? why : denied;
            continue;
        }
        sa->next = NULL;
        *tail = sa;
        tail = &sa->next;
    }
    if (*addrs == NULL && pol->decided) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00121)
                      "tunnel to '%.*s' refused: a rule allows the name, "
                      "but every address it resolves to is denied by %s "
                      "(ConnectTunnelTrustAllowedNames is Off)", 255, host,
                      why);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_IP_PROHIBITED,
                                 "The destination's address is not "
                                 "allowed.");
    }
    if (*addrs == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00030)
                      "tunnel to '%.*s' refused: every address it resolves "
                      "to is denied (first by %s)", 255, host, why);
        return ct_report_refusal(r, HTTP_FORBIDDEN, CT_PS_IP_PROHIBITED,
                                 "The destination's address is not "
                                 "allowed.");
    }
    return OK;
}

/*
 * With a bind address, keep the addresses of its family: a socket bound
 * to an IPv4 address cannot reach an IPv6 one.  502 when none is left.
 */
static int filter_family(request_rec *r, const ct_setup *setup,
                         const char *host, apr_sockaddr_t **addrs)
{
    apr_sockaddr_t *sa, *next, **tail = addrs, *first = *addrs;

    if (setup->bind == NULL) {
        return OK;
    }
    *addrs = NULL;
    for (sa = first; sa != NULL; sa = next) {
        next = sa->next;
        if (sa->family == setup->bind->family) {
            sa->next = NULL;
            *tail = sa;
            tail = &sa->next;
        }
    }
    if (*addrs != NULL) {
        return OK;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00238)
                  "cannot dial '%.*s' from %pI (ConnectTunnelBind): it has "
                  "no IPv%d address", 255, host, setup->bind,
                  setup->bind->family == APR_INET6 ? 6 : 4);
    return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_IP_UNROUTABLE,
                             "The destination cannot be reached from the "
                             "configured source address.");
}

/* IPv6 and IPv4 take turns (RFC 8305); a name with hundreds of
 * (blackholed) addresses costs no more than CT_MAX_ADDRESSES attempts. */
static void order_addresses(request_rec *r, const char *host,
                            apr_sockaddr_t **addrs)
{
    int dropped;

    ct_hop_interleave(addrs);
    dropped = ct_hop_cap_addresses(*addrs, CT_MAX_ADDRESSES);

    if (dropped > 0) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00142)
                      "'%.*s' has %d more addresses than the %d tried", 255,
                      host, dropped, CT_MAX_ADDRESSES);
    }
}

int ct_origin_open(request_rec *r, proxy_server_conf *pconf,
                   const ct_target *t, const ct_dest_policy *pol,
                   const char *proxyname, apr_port_t proxyport,
                   const ct_setup *setup, ct_origin *o)
{
    const char *host = proxyname ? proxyname : ct_resolve_name(r->pool, t);
    apr_port_t port = proxyname ? proxyport : t->port;
    apr_sockaddr_t *addrs, *local;
    apr_int32_t family = APR_UNSPEC;
    apr_status_t rv;
    ct_dial_outcome how;
    int rc;

    if (proxyname) {
        o->upstream = apr_psprintf(r->pool, "%s:%hu", proxyname, proxyport);
    }
    /* A literal's family is known: saying so spares the resolver its
     * interface check (a netlink round trip per tunnel). */
    if (!proxyname && t->kind != CT_HOST_NAME) {
        family = t->kind == CT_HOST_IPV4 ? APR_INET : APR_INET6;
    }
    rv = apr_sockaddr_info_get(&addrs, host, family, port, 0, r->pool);
    if (rv == APR_SUCCESS) {
        o->resolved = apr_time_now();
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00028)
                      "dns lookup of %s'%.*s' failed",
                      proxyname ? "upstream proxy " : "", 255,
                      proxyname ? proxyname : t->host);
        return ct_report_refusal(r, HTTP_BAD_GATEWAY, CT_PS_DNS_ERROR,
                                 "DNS lookup failure.");
    }
    /* The resolver cannot be interrupted, but its time counts. */
    if (past_deadline(setup)) {
        return setup_expired(r, setup, apr_psprintf(r->pool, "'%.*s'", 255,
                                                    host));
    }
    /* The upstream proxy's own address is never subject to the rules. */
    if (!proxyname && (!pol->decided || pol->default_deny)
        && (rc = filter_addresses(r, pol, t->host, &addrs)) != OK) {
        return rc;
    }
    if (!proxyname
        && (rc = check_blocked_addresses(r, pconf, t->host, addrs)) != OK) {
        return rc;
    }
    if ((rc = filter_family(r, setup, host, &addrs)) != OK) {
        return rc;
    }
    order_addresses(r, host, &addrs);
    how = ct_dial_race(r, pconf, addrs, setup, &o->sock, &o->addr);
    if (how != CT_DIAL_OK) {
        return connect_failed(r, setup, how,
                              o->upstream ? o->upstream
                                          : ct_target_authority(r->pool, t));
    }
    o->connected = apr_time_now();
    rv = apr_socket_addr_get(&local, APR_LOCAL, o->sock);
    o->local = rv == APR_SUCCESS ? local : NULL;
    o->local_port = rv == APR_SUCCESS ? local->port : 0;
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "connected to %pI from port %hu", o->addr, o->local_port);
    if (proxyname && (rc = upstream_handshake(r, t, setup, o)) != OK) {
        apr_socket_close(o->sock);
        o->sock = NULL;
        return rc;
    }
    return OK;
}
