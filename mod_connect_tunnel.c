/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * mod_connect_tunnel: a CONNECT forward proxy for httpd 2.4, loaded in
 * place of mod_proxy_connect.  It claims forward-proxy CONNECT requests in
 * mod_proxy's scheme-handler chain, validates the target before any DNS,
 * enforces AllowCONNECT, ProxyBlock and <Proxy> access control, dials the
 * origin (or the ProxyRemote upstream) and relays bytes both ways with
 * backpressure and half-close.  This file holds the configuration, the
 * command table and thin hooks; the work lives under modules/.
 */

#include "apr_strings.h"
#include "apr_lib.h"

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_proxy.h"
#include "mod_status.h"
#include "mpm_common.h"
#include "ap_mpm.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_policy.h"
#include "ct_handler.h"
#include "ct_relay.h"
#include "ct_splice.h"
#include "ct_limits.h"
#include "ct_throttle.h"
#include "ct_bandwidth.h"
#include "ct_origin.h"
#include "ct_resolve.h"
#include "ct_via.h"
#include "ct_reactor.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_metrics.h"
#include "ct_control.h"
#include "ct_accesslog.h"
#include "ct_sni.h"
#include "ct_migrate.h"

/* The Makefile passes the version from debian/changelog, its one source. */
#ifndef CT_VERSION
#error "CT_VERSION is not defined: build with the Makefile"
#endif

static ct_server_conf *server_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config,
                                &connect_tunnel_module);
}

static const char *set_allow_connect(cmd_parms *cmd, void *dummy,
                                     const char *arg)
{
    ct_server_conf *conf = server_conf(cmd);
    ct_port_range range;
    const char *err;

    (void)dummy;
    if ((err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT)) != NULL) {
        return err;
    }
    if ((err = ct_port_range_parse(cmd->temp_pool, arg, &range)) != NULL) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    if (conf->allow_ports == NULL) {
        conf->allow_ports = apr_array_make(cmd->pool, 4, sizeof(range));
    }
    *(ct_port_range *)apr_array_push(conf->allow_ports) = range;
    return NULL;
}

/* ConnectTunnelAllow and ConnectTunnelDeny (cmd_data: the action). */
static const char *set_rule(cmd_parms *cmd, void *dconfv, const char *arg)
{
    ct_dir_conf *dconf = dconfv;
    ct_action action = (ct_action)(apr_uintptr_t)cmd->info;
    ct_rule rule;
    const char *err;

    if ((err = ct_rule_parse(cmd->pool, action, arg, &rule)) != NULL) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", err, NULL);
    }
    if (dconf->rules == NULL) {
        dconf->rules = apr_array_make(cmd->pool, 4, sizeof(rule));
    }
    *(ct_rule *)apr_array_push(dconf->rules) = rule;
    return NULL;
}

static const char *set_default_deny(cmd_parms *cmd, void *dconfv, int on)
{
    (void)cmd;
    ((ct_dir_conf *)dconfv)->default_deny = on;
    return NULL;
}

static const char *set_zero_copy(cmd_parms *cmd, void *dummy, int on)
{
    (void)dummy;
    server_conf(cmd)->zero_copy = on;
    return NULL;
}

static const char *set_handoff(cmd_parms *cmd, void *dummy, int on)
{
    (void)dummy;
    server_conf(cmd)->handoff = on;
    return NULL;
}

static const char *set_log_open(cmd_parms *cmd, void *dummy, int on)
{
    (void)dummy;
    server_conf(cmd)->log_open = on;
    return NULL;
}

/* The settings below belong to the whole server: not in a virtual host. */
static const char *set_reactor_threads(cmd_parms *cmd, void *dummy,
                                       const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err != NULL) {
        return err;
    }
    return ct_conf_parse_count(cmd, arg, CT_REACTOR_THREADS_MAX, "no reactor",
                               &server_conf(cmd)->reactors);
}

static const char *set_handoff_max(cmd_parms *cmd, void *dummy,
                                   const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err != NULL) {
        return err;
    }
    return ct_conf_parse_count(cmd, arg, CT_COUNT_MAX,
                               "the descriptor limit decides",
                               &server_conf(cmd)->handoff_max);
}

static const char *set_migrate(cmd_parms *cmd, void *dummy, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err == NULL) {
        server_conf(cmd)->migrate = on;
    }
    return err;
}

static const char *set_drain_timeout(cmd_parms *cmd, void *dummy,
                                     const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    return err ? err : ct_conf_parse_time(cmd, arg, 1,
                                          &server_conf(cmd)->drain);
}

static const char *set_tunnel_log(cmd_parms *cmd, void *dummy,
                                  const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dummy;
    if (err == NULL) {
        server_conf(cmd)->log = arg;
    }
    return err;
}

/* Connect and idle timeouts (cmd_data: offset of the field). */
static const char *set_timeout(cmd_parms *cmd, void *dummy, const char *arg)
{
    apr_size_t offset = (apr_size_t)(apr_uintptr_t)cmd->info;

    (void)dummy;
    return ct_conf_parse_time(cmd, arg, 0, (apr_interval_time_t *)
                              ((char *)server_conf(cmd) + offset));
}

static const char *set_max_lifetime(cmd_parms *cmd, void *dummy,
                                    const char *arg)
{
    (void)dummy;
    return ct_conf_parse_time(cmd, arg, 1, &server_conf(cmd)->max_lifetime);
}

/* Tunnel limits (cmd_data: offset of the field); 0 means no limit. */
static const char *set_limit(cmd_parms *cmd, void *dummy, const char *arg)
{
    apr_size_t offset = (apr_size_t)(apr_uintptr_t)cmd->info;

    (void)dummy;
    return ct_conf_parse_count(cmd, arg, CT_COUNT_MAX, "no limit",
                               (int *)((char *)server_conf(cmd) + offset));
}

/* ConnectTunnelClientPrefix v4bits [v6bits]. */
static const char *set_client_prefix(cmd_parms *cmd, void *dummy,
                                     const char *v4, const char *v6)
{
    ct_server_conf *conf = server_conf(cmd);
    const char *arg[2] = { v4, v6 };
    int *field[2] = { &conf->client_v4_bits, &conf->client_v6_bits };
    long max[2] = { 32, 128 }, n;
    char *end;
    int i;

    (void)dummy;
    for (i = 0; i < 2 && arg[i] != NULL; i++) {
        n = strtol(arg[i], &end, 10);
        if (!apr_isdigit(*arg[i]) || *end != '\0' || n > max[i]) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not an %s prefix "
                                "length (0 to %ld)", cmd->cmd->name,
                                arg[i], i ? "IPv6" : "IPv4", max[i]);
        }
        *field[i] = (int)n;
    }
    return NULL;
}

#define CT_FIELD(f) ((void *)APR_OFFSETOF(ct_server_conf, f))
#define CT_DIR_FIELD(f) ((void *)APR_OFFSETOF(ct_dir_conf, f))

static const command_rec ct_cmds[] = {
    AP_INIT_ITERATE("AllowCONNECT", set_allow_connect, NULL, RSRC_CONF,
                    "Ports (N), port ranges (N-M) or 'all' that CONNECT "
                    "may reach; default 443 563"),
    AP_INIT_FLAG("ConnectTunnelZeroCopy", set_zero_copy, NULL, RSRC_CONF,
                 "On to relay plain-TCP tunnels with splice(2) where the "
                 "system supports it (default On)"),
    AP_INIT_ITERATE("ConnectTunnelAllow", set_rule, (void *)CT_ALLOW,
                    RSRC_CONF | ACCESS_CONF,
                    "Destinations tunnels may reach: host names, *.domains, "
                    "addresses, networks (CIDR) or named sets"),
    AP_INIT_ITERATE("ConnectTunnelDeny", set_rule, (void *)CT_DENY,
                    RSRC_CONF | ACCESS_CONF,
                    "Destinations tunnels may not reach: host names, "
                    "*.domains, addresses, networks (CIDR) or named sets"),
    AP_INIT_FLAG("ConnectTunnelDefaultDeny", set_default_deny, NULL,
                 RSRC_CONF | ACCESS_CONF,
                 "On (default) to deny loopback, link-local, metadata, "
                 "unspecified, multicast and local addresses that no rule "
                 "allows"),
    AP_INIT_FLAG("ConnectTunnelTrustAllowedNames", ap_set_flag_slot,
                 CT_DIR_FIELD(trust_names), RSRC_CONF | ACCESS_CONF,
                 "On to dial names allowed by name wherever they resolve, "
                 "unchecked by the guard (default Off)"),
    AP_INIT_TAKE1("ConnectTunnelSNI", ct_sni_set_mode, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "Off (default), Log, Match or Require: what is done with "
                  "the server_name of the client's TLS ClientHello"),
    AP_INIT_TAKE1("ConnectTunnelSNITimeout", ct_sni_set_timeout, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "How long the client may take to send its ClientHello "
                  "once the tunnel is established (default 10 s)"),
    AP_INIT_TAKE1("ConnectTunnelAddress", ct_control_set_expr,
                  CT_DIR_FIELD(address), RSRC_CONF | ACCESS_CONF,
                  "Expression: the host (and port) to dial instead of the "
                  "target's; the destination rules apply to it"),
    AP_INIT_TAKE1("ConnectTunnelBind", ct_control_set_expr,
                  CT_DIR_FIELD(bind), RSRC_CONF | ACCESS_CONF,
                  "Expression: the source address (and port) of the "
                  "connection to the next hop"),
    AP_INIT_TAKE1("ConnectTunnelResponseReason", ct_control_set_expr,
                  CT_DIR_FIELD(reason), RSRC_CONF | ACCESS_CONF,
                  "Expression: the reason phrase of the 200 (default "
                  "'" CT_DEFAULT_REASON "')"),
    AP_INIT_TAKE2("ConnectTunnelResponseHeader", ct_control_set_header,
                  NULL, RSRC_CONF | ACCESS_CONF,
                  "A header name and an expression for its value, added "
                  "to the 200 (repeatable)"),
    AP_INIT_FLAG("ConnectTunnelProxyAgent", ct_control_set_proxy_agent,
                 NULL, RSRC_CONF | ACCESS_CONF,
                 "On (default) to name the server in the 200's "
                 "Proxy-agent header"),
    AP_INIT_TAKE1("ConnectTunnelConnectTimeout", set_timeout,
                  CT_FIELD(connect_timeout), RSRC_CONF,
                  "Time to connect to the next hop (default ProxyTimeout, "
                  "else 10 seconds)"),
    AP_INIT_TAKE1("ConnectTunnelSetupTimeout", set_timeout,
                  CT_FIELD(setup_timeout), RSRC_CONF,
                  "Time from the CONNECT to the 200: DNS, every connect "
                  "attempt, the upstream proxy's reply (default 3 times "
                  "the connect timeout)"),
    AP_INIT_TAKE1("ConnectTunnelIdleTimeout", set_timeout,
                  CT_FIELD(idle_timeout), RSRC_CONF,
                  "Close a tunnel that moved no bytes for this long "
                  "(default ProxyTimeout, else Timeout)"),
    AP_INIT_TAKE1("ConnectTunnelMaxLifetime", set_max_lifetime, NULL,
                  RSRC_CONF,
                  "Close any tunnel after this long (default 0: never)"),
    AP_INIT_FLAG("ConnectTunnelHandoff", set_handoff, NULL, RSRC_CONF,
                 "On (default) to relay plain-TCP tunnels in reactor "
                 "threads, so that they hold no worker"),
    AP_INIT_TAKE1("ConnectTunnelReactorThreads", set_reactor_threads, NULL,
                  RSRC_CONF, "Reactor threads per child (default 1; 0 "
                  "keeps every tunnel in its worker)"),
    AP_INIT_TAKE1("ConnectTunnelHandoffMax", set_handoff_max, NULL, RSRC_CONF,
                  "Most tunnels one child's reactors hold (default 0: as "
                  "many as its descriptor limit allows)"),
    AP_INIT_FLAG("ConnectTunnelMigrate", set_migrate, NULL, RSRC_CONF,
                 "On (default) to move an exiting child's reactor tunnels "
                 "to a live child instead of waiting for them to end"),
    AP_INIT_TAKE1("ConnectTunnelDrainTimeout", set_drain_timeout, NULL,
                  RSRC_CONF,
                  "Longest a gracefully exiting child waits for its "
                  "tunnels (default 0: until they end, or "
                  "GracefulShutdownTimeout)"),
    AP_INIT_TAKE1("ConnectTunnelLog", set_tunnel_log, NULL, RSRC_CONF,
                  "File (relative to ServerRoot) or |program receiving "
                  "one record per finished tunnel"),
    AP_INIT_FLAG("ConnectTunnelLogOpen", set_log_open, NULL, RSRC_CONF,
                 "On to write an access-log record when a tunnel opens, "
                 "marked with the tunnel-open variable (default Off)"),
    AP_INIT_TAKE1("ConnectTunnelMaxTunnels", set_limit,
                  CT_FIELD(max_tunnels), RSRC_CONF,
                  "Open tunnels in the whole server (default 0: no limit)"),
    AP_INIT_TAKE1("ConnectTunnelMaxTunnelsPerChild", set_limit,
                  CT_FIELD(max_per_child), RSRC_CONF,
                  "Open tunnels in one child process (default 0: no "
                  "limit)"),
    AP_INIT_TAKE1("ConnectTunnelMaxTunnelsPerClient", set_limit,
                  CT_FIELD(max_per_client), RSRC_CONF,
                  "Open tunnels from one client (default 0: no limit)"),
    AP_INIT_TAKE1("ConnectTunnelMaxTunnelsPerH2Connection", set_limit,
                  CT_FIELD(max_per_h2conn), RSRC_CONF,
                  "Open tunnels on one HTTP/2 connection (default 5; 0: "
                  "no limit)"),
    AP_INIT_TAKE1("ConnectTunnelMaxTunnelsPerDestination", set_limit,
                  CT_FIELD(max_per_dest), RSRC_CONF,
                  "Open tunnels to one destination host (default 0: no "
                  "limit)"),
    AP_INIT_TAKE12("ConnectTunnelClientPrefix", set_client_prefix, NULL,
                   RSRC_CONF, "Prefix lengths that make one client for "
                   "ConnectTunnelMaxTunnelsPerClient and "
                   "ConnectTunnelClientRate: IPv4, then IPv6 "
                   "(default 32 64)"),
    AP_INIT_TAKE12("ConnectTunnelClientRate", ct_conf_set_rate,
                   CT_FIELD(client_rate), RSRC_CONF,
                   "New tunnels a second from one client, and how many may "
                   "come at once (default 0: no limit; burst: the rate)"),
    AP_INIT_TAKE12("ConnectTunnelDestinationRate", ct_conf_set_rate,
                   CT_FIELD(dest_rate), RSRC_CONF,
                   "New tunnels a second to one destination host, and how "
                   "many may come at once (default 0: no limit; burst: the "
                   "rate)"),
    AP_INIT_TAKE123("ConnectTunnelBandwidth", ct_bandwidth_set, NULL,
                    RSRC_CONF, "[up|down] rate [burst]: bytes per second "
                    "each tunnel may move (k, M, G: powers of 1000; "
                    "default 0: no limit)"),
    AP_INIT_TAKE123("ConnectTunnelClientBandwidth", ct_bandwidth_set,
                    (void *)1, RSRC_CONF, "[up|down] rate [burst]: bytes "
                    "per second all tunnels of one client may move "
                    "(default 0: no limit)"),
    { NULL }
};

/* Ours is a forward-proxy CONNECT: mod_proxy_detect marked it so. */
static int is_forward_connect(request_rec *r)
{
    return r->method_number == M_CONNECT && r->proxyreq == PROXYREQ_PROXY;
}

/* mod_proxy's fixups: everything that needs no DNS is decided here,
 * before its handler chooses a route (NoProxy resolves the target). */
static int ct_canon(request_rec *r, char *url)
{
    proxy_server_conf *pconf;
    ct_dest_policy pol;
    ct_target t;

    if (!is_forward_connect(r)) {
        return DECLINED;
    }
    pconf = ap_get_module_config(r->server->module_config, &proxy_module);
    return ct_handler_check(r, pconf, url, &t, &pol);
}

static int ct_scheme_handler(request_rec *r, proxy_worker *worker,
                             proxy_server_conf *pconf, char *url,
                             const char *proxyname, apr_port_t proxyport)
{
    (void)worker;
    if (!is_forward_connect(r)) {
        return DECLINED;
    }
    return ct_handle_connect(r, pconf, url, proxyname, proxyport);
}

/*
 * RFC 9931: after a rejected HTTP/1.1 CONNECT the connection must close
 * without reading on, or bytes a client sent optimistically (a TLS hello)
 * would be parsed as the next request.  A CONNECT that succeeds closes the
 * connection when its tunnel ends, so every CONNECT closes it.
 */
static int ct_post_read_request(request_rec *r)
{
    if (r->method_number == M_CONNECT && r->connection->master == NULL) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    return is_forward_connect(r) ? ct_handler_post_read(r) : DECLINED;
}

static void ct_pre_read_request(request_rec *r, conn_rec *c)
{
    ct_handler_pre_read(r, c);
}

static ct_server_conf *main_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &connect_tunnel_module);
}

static int ct_pre_config(apr_pool_t *pconf, apr_pool_t *plog,
                         apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    ct_policy_init(pconf);
    ct_limits_pre_config(pconf);
    return OK;
}

static int ct_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                          apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    /* Shown in the Server header and banner as ServerTokens allows. */
    ap_add_version_component(pconf, "mod_connect_tunnel/" CT_VERSION);
    ct_resolve_local_addresses(pconf, s);
    if (ct_via_instance_init(s->process->pool) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, CT_LOGNO(00143)
                     "cannot make up the random token of this proxy's Via "
                     "entry");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ct_resolve_hosts_names(pconf, s);
    /* Statistics first: their process records own the limits' counts. */
    if (ct_stats_post_config(pconf, s) != APR_SUCCESS
        || ct_limits_post_config(pconf, s) != APR_SUCCESS
        || ct_throttle_post_config(pconf, s) != APR_SUCCESS
        || ct_bandwidth_post_config(pconf, s) != APR_SUCCESS
        || ct_report_open_log(pconf, s, main_conf(s)->log) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ct_origin_check_remotes(s);
    if (!ct_splice_supported()) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00002)
                     "splice(2) is not available: tunnels relay through "
                     "the connection filters");
    }
    if (ap_find_linked_module("mod_proxy_connect.c") != NULL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, CT_LOGNO(00001)
                     "mod_proxy_connect is loaded too: mod_connect_tunnel "
                     "handles every CONNECT and mod_proxy_connect none; "
                     "unload one of them");
    }
    return OK;
}

static void ct_child_init(apr_pool_t *pchild, server_rec *s)
{
    ct_server_conf *conf = main_conf(s);
    int threads = conf->reactors != CT_UNSET ? conf->reactors
                                             : CT_DEFAULT_REACTORS;

    ct_stats_child_init(s);
    ct_limits_child_init(pchild, s);
    ct_reactor_child_init(pchild, s, ct_conf_any_handoff(s) ? threads : 0,
                          conf->handoff_max, conf->drain);
    ct_migrate_child_init(pchild, s, conf->migrate != CT_UNSET
                                     ? conf->migrate : CT_DEFAULT_MIGRATE);
}

static void ct_child_stopping(apr_pool_t *pchild, int graceful)
{
    (void)pchild;
    ct_reactor_child_stopping(graceful);
}

static int ct_pre_connection(conn_rec *c, void *csd)
{
    (void)csd;
    ct_limits_pre_connection(c);
    return OK;
}

/*
 * In the parent: a child was reaped, however it ended (SIGKILL, the OOM
 * killer, a crash), so what it counted stops counting.  MPM_CHILD_LOST_SLOT
 * is not an end: that child still runs (and drains its tunnels) without a
 * scoreboard slot, and is reported EXITED when it is gone; its counts are
 * kept by process, not by slot, for that reason.
 */
static void ct_child_status(server_rec *s, pid_t pid, ap_generation_t gen,
                            int slot, mpm_child_status state)
{
    int proc;

    (void)gen;
    (void)slot;
    if (state == MPM_CHILD_EXITED && (proc = ct_stats_proc_exited(pid))) {
        ct_limits_proc_exited(s, proc);
    }
}

static int ct_pre_close_connection(conn_rec *c)
{
    ct_handler_pre_close(c);
    return OK;
}

/* Refusals are counted when the request is over, once, by the error type
 * it was answered with. */
static int ct_log_transaction(request_rec *r)
{
    if (is_forward_connect(r)) {
        ct_report_count_refusal(r);
    }
    return DECLINED;
}

static void ct_optional_fn_retrieve(void)
{
    ct_relay_init();
    ct_alog_init();
}

static void register_hooks(apr_pool_t *p)
{
    static const char *const aszProxy[] = { "mod_proxy.c", NULL };

    (void)p;
    /* Ahead of every other scheme handler, mod_proxy_connect included:
     * mod_proxy_http and friends match URL prefixes and would take a
     * CONNECT to a host named "http" or "ws". */
    proxy_hook_canon_handler(ct_canon, NULL, NULL, APR_HOOK_REALLY_FIRST);
    proxy_hook_scheme_handler(ct_scheme_handler, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    /* After mod_proxy's, which marks the request a forward CONNECT, and
     * before its map_to_storage walks the <Proxy> sections. */
    ap_hook_post_read_request(ct_post_read_request, aszProxy, NULL,
                              APR_HOOK_MIDDLE);
    /* RFC 9112 section 3.2: a CONNECT's Host lines are counted as they
     * are read, before httpd replaces the value with the target. */
    ap_hook_pre_read_request(ct_pre_read_request, NULL, NULL,
                             APR_HOOK_MIDDLE);
    ct_handler_register();
    ap_hook_pre_config(ct_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(ct_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(ct_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_child_init(ct_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_stopping(ct_child_stopping, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_connection(ct_pre_connection, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_status(ct_child_status, NULL, NULL, APR_HOOK_MIDDLE);
    /* First, so that no other hook sees a handed-off connection as live. */
    ap_hook_pre_close_connection(ct_pre_close_connection, NULL, NULL,
                                 APR_HOOK_REALLY_FIRST);
    /* First, so that no logger sees a handed-off request before its
     * tunnel ends (a DONE stops the others). */
    ap_hook_log_transaction(ct_alog_transaction, NULL, NULL,
                            APR_HOOK_REALLY_FIRST);
    ap_hook_log_transaction(ct_log_transaction, NULL, NULL,
                            APR_HOOK_MIDDLE);
    ap_hook_handler(ct_metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, ct_metrics_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

/* Not AP_DECLARE_MODULE: ct_private.h already declared the log index. */
module AP_MODULE_DECLARE_DATA connect_tunnel_module = {
    STANDARD20_MODULE_STUFF,
    ct_conf_create_dir,
    ct_conf_merge_dir,
    ct_conf_create_server,
    ct_conf_merge_server,
    ct_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
