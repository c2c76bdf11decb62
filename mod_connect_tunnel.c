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

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_proxy.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_policy.h"
#include "ct_handler.h"
#include "ct_relay.h"
#include "ct_splice.h"

/* AllowCONNECT's default when no list is configured. */
static const ct_port_range ct_default_ports[] = {
    { CT_DEFAULT_PORT_HTTPS, CT_DEFAULT_PORT_HTTPS },
    { CT_DEFAULT_PORT_SNEWS, CT_DEFAULT_PORT_SNEWS }
};

int ct_conf_port_allowed(const ct_server_conf *conf, apr_port_t port)
{
    apr_size_t i;

    if (conf->allow_ports != NULL) {
        return ct_ports_allow(conf->allow_ports, port);
    }
    for (i = 0; i < sizeof(ct_default_ports) / sizeof(*ct_default_ports);
         i++) {
        if (port >= ct_default_ports[i].first
            && port <= ct_default_ports[i].last) {
            return 1;
        }
    }
    return 0;
}

int ct_conf_zero_copy(const ct_server_conf *conf)
{
    int on = conf->zero_copy == CT_UNSET ? CT_DEFAULT_ZERO_COPY
                                         : conf->zero_copy;

    return on && ct_splice_supported();
}

static void *create_server_config(apr_pool_t *p, server_rec *s)
{
    ct_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)s;
    conf->zero_copy = CT_UNSET;
    return conf;
}

/* A field set in the virtual host replaces the main server's. */
static void *merge_server_config(apr_pool_t *p, void *basev, void *addv)
{
    const ct_server_conf *base = basev, *add = addv;
    ct_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->allow_ports = add->allow_ports ? add->allow_ports
                                         : base->allow_ports;
    conf->zero_copy = add->zero_copy != CT_UNSET ? add->zero_copy
                                                 : base->zero_copy;
    return conf;
}

static const char *set_allow_connect(cmd_parms *cmd, void *dummy,
                                     const char *arg)
{
    ct_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &connect_tunnel_module);
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

static const char *set_zero_copy(cmd_parms *cmd, void *dummy, int on)
{
    ct_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &connect_tunnel_module);

    (void)dummy;
    conf->zero_copy = on;
    return NULL;
}

static const command_rec ct_cmds[] = {
    AP_INIT_ITERATE("AllowCONNECT", set_allow_connect, NULL, RSRC_CONF,
                    "Ports (N), port ranges (N-M) or 'all' that CONNECT "
                    "may reach; default 443 563"),
    AP_INIT_FLAG("ConnectTunnelZeroCopy", set_zero_copy, NULL, RSRC_CONF,
                 "On to relay plain-TCP tunnels with splice(2) where the "
                 "system supports it (default On)"),
    { NULL }
};

/* Ours is a forward-proxy CONNECT: mod_proxy_detect marked it so. */
static int is_forward_connect(request_rec *r)
{
    return r->method_number == M_CONNECT && r->proxyreq == PROXYREQ_PROXY;
}

static int ct_canon(request_rec *r, char *url)
{
    (void)url;
    return is_forward_connect(r) ? OK : DECLINED;
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
    return DECLINED;
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

static void ct_optional_fn_retrieve(void)
{
    ct_relay_init();
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    /* Ahead of every other scheme handler, mod_proxy_connect included:
     * mod_proxy_http and friends match URL prefixes and would take a
     * CONNECT to a host named "http" or "ws". */
    proxy_hook_canon_handler(ct_canon, NULL, NULL, APR_HOOK_REALLY_FIRST);
    proxy_hook_scheme_handler(ct_scheme_handler, NULL, NULL,
                              APR_HOOK_REALLY_FIRST);
    ap_hook_post_read_request(ct_post_read_request, NULL, NULL,
                              APR_HOOK_MIDDLE);
    ap_hook_post_config(ct_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_optional_fn_retrieve(ct_optional_fn_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
}

/* Not AP_DECLARE_MODULE: ct_private.h already declared the log index. */
module AP_MODULE_DECLARE_DATA connect_tunnel_module = {
    STANDARD20_MODULE_STUFF,
    NULL,                       /* per-directory config creator */
    NULL,                       /* per-directory config merger */
    create_server_config,
    merge_server_config,
    ct_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
