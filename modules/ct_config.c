/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_config.c: the configuration records' life: created with every field
 * unset, merged ("the virtual host's if set, else the main server's"),
 * the numbers and times directives take parsed once, and read back with
 * the defaults applied, so the request path never deals with "unset".
 */

#include "apr_strings.h"
#include "apr_lib.h"

#include "httpd.h"
#include "http_config.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_splice.h"

/* Numbers: the virtual host's value if set, else the main server's. */
#define CT_MERGE(field) \
    conf->field = add->field != CT_UNSET ? add->field : base->field

void *ct_conf_create_server(apr_pool_t *p, server_rec *s)
{
    ct_server_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    (void)s;
    conf->zero_copy = CT_UNSET;
    conf->connect_timeout = CT_UNSET;
    conf->setup_timeout = CT_UNSET;
    conf->idle_timeout = CT_UNSET;
    conf->max_lifetime = CT_UNSET;
    conf->max_tunnels = CT_UNSET;
    conf->max_per_child = CT_UNSET;
    conf->max_per_client = CT_UNSET;
    conf->max_per_h2conn = CT_UNSET;
    conf->client_v4_bits = CT_UNSET;
    conf->client_v6_bits = CT_UNSET;
    conf->max_per_dest = CT_UNSET;
    conf->client_rate.rate = CT_UNSET;
    conf->dest_rate.rate = CT_UNSET;
    conf->handoff = CT_UNSET;
    conf->log_open = CT_UNSET;
    conf->reactors = CT_UNSET;
    for (i = 0; i < 2; i++) {
        conf->bw_rate[i] = conf->cbw_rate[i] = CT_UNSET;
    }
    conf->migrate = CT_UNSET;
    return conf;
}

void *ct_conf_merge_server(apr_pool_t *p, void *basev, void *addv)
{
    const ct_server_conf *base = basev, *add = addv;
    ct_server_conf *conf = apr_pcalloc(p, sizeof(*conf));
    int i;

    /* A virtual host's AllowCONNECT list replaces the main server's. */
    conf->allow_ports = add->allow_ports ? add->allow_ports
                                         : base->allow_ports;
    CT_MERGE(zero_copy);
    CT_MERGE(connect_timeout);
    CT_MERGE(setup_timeout);
    CT_MERGE(idle_timeout);
    CT_MERGE(max_lifetime);
    CT_MERGE(max_tunnels);
    CT_MERGE(max_per_child);
    CT_MERGE(max_per_client);
    CT_MERGE(max_per_h2conn);
    CT_MERGE(client_v4_bits);
    CT_MERGE(client_v6_bits);
    CT_MERGE(max_per_dest);
    /* A rate and its burst go together. */
    conf->client_rate = add->client_rate.rate != CT_UNSET
                        ? add->client_rate : base->client_rate;
    conf->dest_rate = add->dest_rate.rate != CT_UNSET ? add->dest_rate
                                                      : base->dest_rate;
    CT_MERGE(handoff);
    CT_MERGE(log_open);
    /* A rate and its burst go together: a virtual host's rate does not
     * take the main server's burst. */
    for (i = 0; i < 2; i++) {
        const ct_server_conf *t = add->bw_rate[i] != CT_UNSET ? add : base;
        const ct_server_conf *c = add->cbw_rate[i] != CT_UNSET ? add : base;

        conf->bw_rate[i] = t->bw_rate[i];
        conf->bw_burst[i] = t->bw_burst[i];
        conf->cbw_rate[i] = c->cbw_rate[i];
        conf->cbw_burst[i] = c->cbw_burst[i];
    }
    return conf;
}

void *ct_conf_create_dir(apr_pool_t *p, char *dir)
{
    ct_dir_conf *dconf = apr_pcalloc(p, sizeof(*dconf));

    (void)dir;
    dconf->default_deny = CT_UNSET;
    dconf->trust_names = CT_UNSET;
    dconf->proxy_agent = CT_UNSET;
    dconf->sni = CT_UNSET;
    dconf->sni_timeout = CT_UNSET;
    return dconf;
}

/* Rules of the inner section are checked first, then the outer ones. */
void *ct_conf_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    const ct_dir_conf *base = basev, *add = addv;
    ct_dir_conf *dconf = apr_pcalloc(p, sizeof(*dconf));

    if (add->rules && base->rules) {
        dconf->rules = apr_array_append(p, add->rules, base->rules);
    }
    else {
        dconf->rules = add->rules ? add->rules : base->rules;
    }
    dconf->default_deny = add->default_deny != CT_UNSET ? add->default_deny
                                                        : base->default_deny;
    dconf->trust_names = add->trust_names != CT_UNSET ? add->trust_names
                                                      : base->trust_names;
    dconf->address = add->address ? add->address : base->address;
    dconf->bind = add->bind ? add->bind : base->bind;
    dconf->reason = add->reason ? add->reason : base->reason;
    dconf->headers = add->headers ? add->headers : base->headers;
    dconf->proxy_agent = add->proxy_agent != CT_UNSET ? add->proxy_agent
                                                      : base->proxy_agent;
    dconf->sni = add->sni != CT_UNSET ? add->sni : base->sni;
    dconf->sni_timeout = add->sni_timeout != CT_UNSET ? add->sni_timeout
                                                      : base->sni_timeout;
    return dconf;
}

/* A whole number from 0 to max, or an error naming the directive. */
const char *ct_conf_parse_count(cmd_parms *cmd, const char *arg, long max,
                                const char *zero, int *out)
{
    char *end;
    long n = strtol(arg, &end, 10);

    if (!apr_isdigit(*arg) || *end != '\0' || n > max) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number from 0 "
                            "(%s) to %ld", cmd->cmd->name, arg, zero, max);
    }
    *out = (int)n;
    return NULL;
}

/* A time in seconds or with a unit; zero_ok for "0 means never". */
const char *ct_conf_parse_time(cmd_parms *cmd, const char *arg,
                               int zero_ok, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    if (ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS || t < 0
        || (t == 0 && !zero_ok)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a %stime (seconds, "
                            "or a number with ms, s, mi or h)",
                            cmd->cmd->name, arg, zero_ok ? "" : "positive ");
    }
    *out = t;
    return NULL;
}

/* "rate [burst]": new tunnels a second, and how many may come at once
 * (by default as many as the rate); a rate of 0 is no limit. */
const char *ct_conf_set_rate(cmd_parms *cmd, void *dummy, const char *rate,
                             const char *burst)
{
    apr_size_t offset = (apr_size_t)(apr_uintptr_t)cmd->info;
    ct_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &connect_tunnel_module);
    ct_rate_conf *rc = (ct_rate_conf *)((char *)conf + offset);
    const char *err;
    int r, b = 0;

    (void)dummy;
    if ((err = ct_conf_parse_count(cmd, rate, CT_RATE_MAX, "no limit", &r))
        != NULL) {
        return err;
    }
    if (burst != NULL
        && ((err = ct_conf_parse_count(cmd, burst, CT_RATE_MAX,
                                       "not allowed", &b)) != NULL
            || (err = b < 1 ? apr_psprintf(cmd->pool, "%s: the burst "
                                           "'%s' is below 1",
                                           cmd->cmd->name, burst)
                            : NULL) != NULL)) {
        return err;
    }
    rc->rate = r;
    rc->burst = b;
    return NULL;
}

/* Whether any server hands tunnels off: then children run reactors. */
int ct_conf_any_handoff(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        ct_server_conf *conf = ap_get_module_config(s->module_config,
                                                    &connect_tunnel_module);

        if (conf->handoff != 0) {
            return 1;
        }
    }
    return 0;
}

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

int ct_conf_h2_tunnels(const ct_server_conf *conf)
{
    return conf->max_per_h2conn == CT_UNSET ? CT_DEFAULT_H2_TUNNELS
                                            : conf->max_per_h2conn;
}

int ct_conf_default_deny(const ct_dir_conf *dconf)
{
    return dconf->default_deny == CT_UNSET ? CT_DEFAULT_DENY
                                           : dconf->default_deny;
}

int ct_conf_trust_names(const ct_dir_conf *dconf)
{
    return dconf->trust_names == CT_UNSET ? CT_DEFAULT_TRUST_NAMES
                                          : dconf->trust_names;
}
