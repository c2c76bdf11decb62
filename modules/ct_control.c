/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_control.c: per-request control of a tunnel by expressions and
 * environment variables.  Whatever an expression yields is checked as
 * strictly as a client's input, since it may well carry some (a header,
 * the client's address): an address override is parsed as a target and
 * then goes through the destination rules like one, a bind address must
 * be an IP literal, and nothing with a control character reaches the 2xx.
 */

#include <arpa/inet.h>

#include "apr_strings.h"
#include "apr_lib.h"

#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_control.h"

/* Longest value of an expression used; a longer one is refused. */
#define CT_EXPR_VALUE_MAX 1024

const char *ct_control_set_expr(cmd_parms *cmd, void *dconfv,
                                const char *arg)
{
    apr_size_t offset = (apr_size_t)(apr_uintptr_t)cmd->info;
    const char *err = NULL;
    ap_expr_info_t *expr;

    expr = ap_expr_parse_cmd(cmd, arg, AP_EXPR_FLAG_STRING_RESULT, &err,
                             NULL);
    if (err != NULL) {
        return apr_psprintf(cmd->pool, "%s: cannot parse '%s': %s",
                            cmd->cmd->name, arg, err);
    }
    *(ap_expr_info_t **)((char *)dconfv + offset) = expr;
    return NULL;
}

/* A field name (RFC 9110 token) the 2xx of a CONNECT may carry. */
static const char *check_header_name(apr_pool_t *p, const char *name)
{
    const char *s;

    if (*name == '\0') {
        return "an empty header name";
    }
    for (s = name; *s; s++) {
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s)) {
            return apr_psprintf(p, "'%s' is not a header name", name);
        }
    }
    /* RFC 9110 9.3.6: a 2xx to CONNECT has no content and no framing. */
    if (ap_cstr_casecmp(name, "Content-Length") == 0
        || ap_cstr_casecmp(name, "Transfer-Encoding") == 0) {
        return apr_psprintf(p, "a 2xx to CONNECT must not carry %s", name);
    }
    return NULL;
}

const char *ct_control_set_header(cmd_parms *cmd, void *dconfv,
                                  const char *name, const char *value)
{
    ct_dir_conf *dconf = dconfv;
    const char *err;
    ct_header *h;
    ap_expr_info_t *expr;

    if ((err = check_header_name(cmd->temp_pool, name)) != NULL) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    expr = ap_expr_parse_cmd(cmd, value, AP_EXPR_FLAG_STRING_RESULT, &err,
                             NULL);
    if (err != NULL) {
        return apr_psprintf(cmd->pool, "%s: cannot parse '%s': %s",
                            cmd->cmd->name, value, err);
    }
    if (dconf->headers == NULL) {
        dconf->headers = apr_array_make(cmd->pool, 2, sizeof(ct_header));
    }
    h = apr_array_push(dconf->headers);
    h->name = name;
    h->value = expr;
    return NULL;
}

const char *ct_control_set_proxy_agent(cmd_parms *cmd, void *dconfv,
                                       int on)
{
    (void)cmd;
    ((ct_dir_conf *)dconfv)->proxy_agent = on;
    return NULL;
}

static ct_dir_conf *dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &connect_tunnel_module);
}

/*
 * Evaluate a string expression; NULL (logged) when it fails or yields
 * more than CT_EXPR_VALUE_MAX bytes.  what names the directive.
 */
static const char *eval(request_rec *r, ap_expr_info_t *expr,
                        const char *what)
{
    const char *err = NULL;
    const char *value = ap_expr_str_exec(r, expr, &err);

    if (err != NULL || value == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00230)
                      "%s: evaluating the expression failed: %s", what,
                      err ? err : "no value");
        return NULL;
    }
    if (strlen(value) > CT_EXPR_VALUE_MAX) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00231)
                      "%s: the value is longer than %d bytes", what,
                      CT_EXPR_VALUE_MAX);
        return NULL;
    }
    return value;
}

/* Split "host", "host:port", "v6", "[v6]", "[v6]:port"; no port gives
 * 0, and a scope (fe80::1%eth0) is refused. */
static apr_status_t split_address(request_rec *r, const char *value,
                                  char **host, apr_port_t *port)
{
    char *scope = NULL;
    const char *colon = strchr(value, ':');
    apr_status_t rv;

    /* Two colons and no brackets: a bare IPv6 address, without a port. */
    if (*value != '[' && colon != NULL && strchr(colon + 1, ':') != NULL) {
        value = apr_pstrcat(r->pool, "[", value, "]", NULL);
    }
    rv = apr_parse_addr_port(host, &scope, port, value, r->pool);
    if (rv == APR_SUCCESS && (*host == NULL || scope != NULL)) {
        rv = APR_EINVAL;
    }
    return rv;
}

int ct_control_address(request_rec *r, const ct_target *t, ct_target *dial)
{
    ap_expr_info_t *expr = dir_conf(r)->address;
    const char *value, *authority;
    char *host = NULL;
    apr_port_t port = 0;
    ct_target_status st = CT_TARGET_BAD_HOST;

    *dial = *t;
    if (expr == NULL) {
        return OK;
    }
    value = eval(r, expr, "ConnectTunnelAddress");
    if (value != NULL && *value == '\0') {
        return OK;
    }
    if (value != NULL && split_address(r, value, &host, &port)
                         == APR_SUCCESS) {
        authority = apr_psprintf(r->pool, strchr(host, ':') ? "[%s]:%hu"
                                                            : "%s:%hu",
                                 host, port ? port : t->port);
        st = ct_target_parse(r->pool, authority, dial);
    }
    if (st != CT_TARGET_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00232)
                      "ConnectTunnelAddress: '%.*s' is not a host with an "
                      "optional port", 255, value ? value : "(no value)");
        *dial = *t;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ct_target_canonical(r->pool, dial, dial);
    return OK;
}

int ct_control_bind(request_rec *r, apr_sockaddr_t **bind)
{
    ap_expr_info_t *expr = dir_conf(r)->bind;
    const char *value;
    unsigned char raw[16];
    char *host = NULL;
    apr_port_t port = 0;
    apr_int32_t family = APR_INET;
    int ok = 0;

    *bind = NULL;
    if (expr == NULL) {
        return OK;
    }
    value = eval(r, expr, "ConnectTunnelBind");
    if (value != NULL && *value == '\0') {
        return OK;
    }
    /* An IP literal only: a source address is never looked up. */
    if (value != NULL && split_address(r, value, &host, &port)
                         == APR_SUCCESS) {
        family = strchr(host, ':') ? APR_INET6 : APR_INET;
        ok = inet_pton(family == APR_INET6 ? AF_INET6 : AF_INET, host,
                       raw) == 1
             && apr_sockaddr_info_get(bind, host, family, port, 0,
                                      r->pool) == APR_SUCCESS;
    }
    if (!ok) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00233)
                      "ConnectTunnelBind: '%.*s' is not an IP address with "
                      "an optional port", 255, value ? value : "(no value)");
        *bind = NULL;
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Whether value may go into the head: no control character but HTAB. */
static int sendable(const char *value)
{
    const unsigned char *s;

    for (s = (const unsigned char *)value; *s; s++) {
        if ((*s < 0x20 && *s != '\t') || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static const char *reason(request_rec *r, ap_expr_info_t *expr)
{
    const char *value;

    if (expr == NULL) {
        return CT_DEFAULT_REASON;
    }
    value = eval(r, expr, "ConnectTunnelResponseReason");
    if (value != NULL && !sendable(value)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00234)
                      "ConnectTunnelResponseReason: the value has a control "
                      "character; '" CT_DEFAULT_REASON "' is sent instead");
        value = NULL;
    }
    return value ? value : CT_DEFAULT_REASON;
}

/* "Name: value" CRLF for each header that has a sendable value. */
static const char *extra_headers(request_rec *r,
                                 const apr_array_header_t *headers)
{
    const ct_header *h;
    const char *lines = "", *value;
    int i;

    if (headers == NULL) {
        return lines;
    }
    h = (const ct_header *)headers->elts;
    for (i = 0; i < headers->nelts; i++) {
        value = eval(r, h[i].value, "ConnectTunnelResponseHeader");
        if (value != NULL && !sendable(value)) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00235)
                          "ConnectTunnelResponseHeader %s: the value has a "
                          "control character; the header is left out",
                          h[i].name);
            value = NULL;
        }
        if (value != NULL && *value != '\0') {
            lines = apr_pstrcat(r->pool, lines, h[i].name, ": ", value,
                                CRLF, NULL);
        }
    }
    return lines;
}

const char *ct_control_established(request_rec *r)
{
    ct_dir_conf *dconf = dir_conf(r);
    int agent = dconf->proxy_agent != CT_UNSET ? dconf->proxy_agent
                                               : CT_DEFAULT_PROXY_AGENT;

    return apr_psprintf(r->pool, "HTTP/1.%d 200 %s" CRLF "%s%s%s%s" CRLF,
                        r->proto_num >= HTTP_VERSION(1, 1) ? 1 : 0,
                        reason(r, dconf->reason),
                        agent ? "Proxy-agent: " : "",
                        agent ? ap_get_server_banner() : "",
                        agent ? CRLF : "",
                        extra_headers(r, dconf->headers));
}

/* One timeout variable over *out; zero_ok for "0 means none". */
static void env_timeout(request_rec *r, const char *name, int zero_ok,
                        apr_interval_time_t *out)
{
    const char *value = apr_table_get(r->subprocess_env, name);
    apr_interval_time_t t;

    if (value == NULL) {
        return;
    }
    if (ap_timeout_parameter_parse(value, &t, "s") != APR_SUCCESS || t < 0
        || (t == 0 && !zero_ok)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, CT_LOGNO(00236)
                      "environment variable %s: '%.*s' is not a %stime "
                      "(seconds, or a number with ms, s, mi or h); the "
                      "configured value applies", name, 64, value,
                      zero_ok ? "" : "positive ");
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r,
                  "%s: %" APR_TIME_T_FMT " ms for this tunnel", name,
                  apr_time_as_msec(t));
    *out = t;
}

void ct_control_env_timeouts(request_rec *r, apr_interval_time_t *connect,
                             apr_interval_time_t *idle,
                             apr_interval_time_t *lifetime)
{
    env_timeout(r, CT_ENV_CONNECT_TIMEOUT, 0, connect);
    env_timeout(r, CT_ENV_IDLE_TIMEOUT, 0, idle);
    env_timeout(r, CT_ENV_MAX_LIFETIME, 1, lifetime);
}
