/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_throttle.c: the tunnel rates.  Two tables of limiters (ct_rates.c)
 * in one shared memory block, one keyed by client (its prefix, as
 * ConnectTunnelClientPrefix makes it), one by destination host; each
 * request is measured against the rates of the virtual host it reached,
 * while a client's (or host's) budget is one for the whole server, as its
 * tunnel count is.  No lock: each take is a compare-and-swap.
 */

#include "apr_shm.h"
#include "apr_strings.h"

#include "http_main.h"
#include "http_protocol.h"

#include "ct_private.h"
#include "ct_rates.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_throttle.h"

/* Named after the layout, as in ct_limits.c. */
#define CT_RATES_KEY "mod_connect_tunnel-rates-16k-by-2"

typedef struct {
    ct_rate_table clients;
    ct_rate_table hosts;
} ct_rates_shared;

typedef struct {
    apr_shm_t *shm;
    ct_rates_shared *tables;
} ct_rates_kept;

static ct_rates_shared *ct_tables;

int ct_throttle_wanted(const ct_server_conf *conf)
{
    return conf->client_rate.rate > 0 || conf->dest_rate.rate > 0;
}

static int any_rate(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        if (ct_throttle_wanted(ap_get_module_config(s->module_config,
                                                    &connect_tunnel_module))) {
            return 1;
        }
    }
    return 0;
}

/* Empty limiters, each table with a secret key for its hash. */
static void reset_tables(server_rec *s)
{
    unsigned char secret[32];
    apr_status_t rv;

    rv = apr_generate_random_bytes(secret, sizeof(secret));
    if (rv != APR_SUCCESS) {
        apr_uint64_t weak[4];

        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00344)
                     "no random bytes for the rate tables' hash key: "
                     "using the time");
        weak[0] = (apr_uint64_t)apr_time_now();
        weak[1] = (apr_uint64_t)getpid();
        weak[2] = weak[0] * APR_UINT64_C(0x9e3779b97f4a7c15);
        weak[3] = weak[1] ^ weak[2];
        memcpy(secret, weak, sizeof(secret));
    }
    ct_rate_init(&ct_tables->clients, secret);
    ct_rate_init(&ct_tables->hosts, secret + 16);
}

apr_status_t ct_throttle_post_config(apr_pool_t *pconf, server_rec *s)
{
    ct_rates_kept *kept = ap_retained_data_get(CT_RATES_KEY);
    apr_shm_t *shm;
    apr_status_t rv;

    (void)pconf;
    if (kept != NULL) {
        ct_tables = kept->tables;
        if (!ct_restart_was_graceful()) {
            reset_tables(s);
        }
        return APR_SUCCESS;
    }
    ct_tables = NULL;
    if (!any_rate(s)) {
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&shm, sizeof(ct_rates_shared), NULL,
                        s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00345)
                     "cannot create shared memory for tunnel rates");
        return rv;
    }
    ct_tables = apr_shm_baseaddr_get(shm);
    reset_tables(s);
    kept = ap_retained_data_create(CT_RATES_KEY, sizeof(*kept));
    kept->shm = shm;
    kept->tables = ct_tables;
    return APR_SUCCESS;
}

static void bucket_conf(const ct_rate_conf *rc, ct_bucket_conf *out)
{
    out->rate = (apr_uint64_t)rc->rate;
    out->burst = (apr_uint64_t)(rc->burst > 0 ? rc->burst : rc->rate);
}

/* 429, with the whole seconds until the budget has a tunnel again. */
static int refuse(request_rec *r, apr_uint64_t wait, const char *who,
                  const char *directive, const ct_bucket_conf *bc)
{
    apr_uint64_t secs = (wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;

    if (secs < 1) {
        secs = 1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00340)
                  "tunnel refused: %s is over %s (%" APR_UINT64_T_FMT
                  " new tunnels a second, burst %" APR_UINT64_T_FMT "); "
                  "the next in %" APR_UINT64_T_FMT " s", who, directive,
                  bc->rate, bc->burst, secs);
    apr_table_setn(r->err_headers_out, "Retry-After",
                   apr_psprintf(r->pool, "%" APR_UINT64_T_FMT, secs));
    return ct_report_refusal(r, HTTP_TOO_MANY_REQUESTS, CT_PS_LIMIT,
                             "Too many new tunnels; try again later.");
}

/* One unit from key's limiter in table t; refusal's wait in *wait. */
static int take(request_rec *r, ct_rate_table *t, apr_uint64_t key,
                const ct_bucket_conf *bc, apr_uint64_t *wait)
{
    apr_uint64_t evicted = apr_atomic_read64(&t->evicted);
    int ok = ct_rate_take(t, key, bc, (apr_uint64_t)apr_time_now(), wait);

    if (apr_atomic_read64(&t->evicted) != evicted) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00341)
                      "tunnel rates: the slots of this key were all busy; "
                      "the limiter nearest to full was forgotten");
    }
    return ok;
}

static const char *client_name(request_rec *r, const ct_net *key)
{
    if (key->bits == (key->family == APR_INET ? 32u : 128u)) {
        return apr_pstrcat(r->pool, "client ", r->useragent_ip, NULL);
    }
    return apr_psprintf(r->pool, "client %s (with its /%u)",
                        r->useragent_ip, key->bits);
}

/* The client's key: its family, prefix length and masked address, byte
 * by byte (no padding hashed). */
static apr_uint64_t client_key(const ct_net *client)
{
    unsigned char raw[18];

    raw[0] = client->family == APR_INET ? 4 : 6;
    raw[1] = (unsigned char)client->bits;
    memcpy(raw + 2, client->addr, sizeof(client->addr));
    return ct_rate_key(&ct_tables->clients, raw, sizeof(raw));
}

int ct_throttle_take(request_rec *r, const ct_server_conf *conf,
                     const ct_net *client, const char *host)
{
    ct_bucket_conf cb, hb;
    apr_uint64_t ckey = 0, hkey, wait = 0;
    int crate = conf->client_rate.rate > 0, hrate = conf->dest_rate.rate > 0;

    if (ct_tables == NULL || (!crate && !hrate)) {
        return OK;
    }
    if (crate) {
        bucket_conf(&conf->client_rate, &cb);
        ckey = client_key(client);
        if (!take(r, &ct_tables->clients, ckey, &cb, &wait)) {
            return refuse(r, wait, client_name(r, client),
                          "ConnectTunnelClientRate", &cb);
        }
    }
    if (hrate) {
        bucket_conf(&conf->dest_rate, &hb);
        hkey = ct_rate_key(&ct_tables->hosts, host, strlen(host));
        if (!take(r, &ct_tables->hosts, hkey, &hb, &wait)) {
            /* Refused for the host: the client did not open a tunnel. */
            if (crate) {
                ct_rate_give(&ct_tables->clients, ckey, &cb);
            }
            return refuse(r, wait, apr_psprintf(r->pool, "destination "
                                                "'%.*s'", 255, host),
                          "ConnectTunnelDestinationRate", &hb);
        }
    }
    return OK;
}
