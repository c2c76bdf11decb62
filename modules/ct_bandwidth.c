/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_bandwidth.c: bandwidth limits as configured.  The directives are
 * parsed once into bytes per second and bytes; a tunnel's limits are a
 * ct_bw it keeps by value, set up before the origin is dialled (so that a
 * full client table refuses the tunnel with a 503, not a 200 and then
 * silence).  A client's budget is a pair of words in a table in shared
 * memory, made only when some server limits a client, and kept across
 * graceful restarts, whose older children still hold entries.
 */

#include <unistd.h>

#include "apr_shm.h"
#include "apr_strings.h"

#include "ct_private.h"
#include "http_main.h"
#include "http_protocol.h"

#include "ct_config.h"
#include "ct_policy.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_bandwidth.h"

/* Where the table survives restarts, named after its layout. */
#define CT_BW_KEY "mod_connect_tunnel-bandwidth-clients-v1"

typedef struct {
    apr_shm_t *shm;
    ct_bw_table *table;
} ct_bw_kept;

static ct_bw_table *ct_bw_clients;

const char *ct_bandwidth_set(cmd_parms *cmd, void *dummy, const char *a1,
                             const char *a2, const char *a3)
{
    ct_server_conf *conf = ap_get_module_config(cmd->server->module_config,
                                                &connect_tunnel_module);
    apr_int64_t *rate = cmd->info ? conf->cbw_rate : conf->bw_rate;
    apr_int64_t *burst = cmd->info ? conf->cbw_burst : conf->bw_burst;
    apr_uint64_t r, b = 0;
    int first = 0, last = 1;

    (void)dummy;
    if (strcasecmp(a1, "up") == 0 || strcasecmp(a1, "down") == 0) {
        first = last = strcasecmp(a1, "up") == 0 ? CT_BW_UP : CT_BW_DOWN;
        a1 = a2;
        a2 = a3;
    }
    else if (a3 != NULL) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not up or down",
                            cmd->cmd->name, a1);
    }
    if (a1 == NULL || ct_bw_parse(a1, 1, &r) != 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a rate in bytes "
                            "per second (digits, optionally with k, M or "
                            "G: powers of 1000; 0 for no limit)",
                            cmd->cmd->name, a1 ? a1 : "");
    }
    if (a2 != NULL && ct_bw_parse(a2, 0, &b) != 0) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a burst in bytes "
                            "(digits, optionally with k, M or G)",
                            cmd->cmd->name, a2);
    }
    for (; first <= last; first++) {
        rate[first] = (apr_int64_t)r;
        burst[first] = (apr_int64_t)b;
    }
    return NULL;
}

static int any_client_limit(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        ct_server_conf *conf = ap_get_module_config(s->module_config,
                                                    &connect_tunnel_module);

        if (conf->cbw_rate[0] > 0 || conf->cbw_rate[1] > 0) {
            return 1;
        }
    }
    return 0;
}

static void reset_table(server_rec *s)
{
    apr_uint64_t seed;
    apr_status_t rv;

    rv = apr_generate_random_bytes((unsigned char *)&seed, sizeof(seed));
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00360)
                     "no random bytes for the bandwidth client table's "
                     "hash key: using the time");
        seed = (apr_uint64_t)apr_time_now() ^ (apr_uint64_t)getpid();
    }
    memset(ct_bw_clients, 0, sizeof(*ct_bw_clients));
    ct_bw_clients->seed = seed;
}

apr_status_t ct_bandwidth_post_config(apr_pool_t *pconf, server_rec *s)
{
    ct_bw_kept *kept = ap_retained_data_get(CT_BW_KEY);
    apr_shm_t *shm;
    apr_status_t rv;

    (void)pconf;
    if (kept != NULL) {
        ct_bw_clients = kept->table;
        if (!ct_restart_was_graceful()) {
            reset_table(s);
        }
        return APR_SUCCESS;
    }
    ct_bw_clients = NULL;
    if (!any_client_limit(s)) {
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&shm, sizeof(ct_bw_table), NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00361)
                     "cannot create shared memory for client bandwidth "
                     "limits");
        return rv;
    }
    ct_bw_clients = apr_shm_baseaddr_get(shm);
    reset_table(s);
    kept = ap_retained_data_create(CT_BW_KEY, sizeof(*kept));
    kept->shm = shm;
    kept->table = ct_bw_clients;
    return APR_SUCCESS;
}

/* One budget of a direction, the burst defaulted from the rate. */
static void set_bucket(ct_bucket_conf *b, apr_int64_t rate,
                       apr_int64_t burst)
{
    b->rate = rate > 0 ? (apr_uint64_t)rate : 0;
    b->burst = burst > 0 ? (apr_uint64_t)burst
                         : ct_bw_default_burst(b->rate);
}

/* The id r's client has in the table, by r's server's prefixes. */
static apr_uint64_t client_id(request_rec *r, const ct_server_conf *conf)
{
    apr_sockaddr_t *sa = r->useragent_addr;
    int v4 = conf->client_v4_bits != CT_UNSET ? conf->client_v4_bits
                                              : CT_DEFAULT_CLIENT_V4_PREFIX;
    int v6 = conf->client_v6_bits != CT_UNSET ? conf->client_v6_bits
                                              : CT_DEFAULT_CLIENT_V6_PREFIX;
    unsigned char raw[18];
    ct_net key;

    ct_client_key(sa->family, sa->ipaddr_ptr, (unsigned int)v4,
                  (unsigned int)v6, &key);
    memcpy(raw, key.addr, 16);
    raw[16] = (unsigned char)key.family;
    raw[17] = (unsigned char)key.bits;
    return ct_bw_client_id(ct_bw_clients, raw, sizeof(raw));
}

static apr_status_t leave_client(void *data)
{
    ct_bandwidth_release(data);
    return APR_SUCCESS;
}

/* Join the client's entry: each direction it limits reads its word. */
static int join_client(request_rec *r, const ct_server_conf *conf,
                       ct_bw *bw)
{
    apr_uint64_t id = client_id(r, conf);
    int slot = ct_bw_slot_join(ct_bw_clients, id, apr_time_now());

    if (slot < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, CT_LOGNO(00362)
                      "tunnel refused: the bandwidth client table has no "
                      "room for client %s", r->useragent_ip);
        return ct_report_refusal(r, HTTP_SERVICE_UNAVAILABLE, CT_PS_LIMIT,
                                 "Too many clients are being served.");
    }
    ct_bw_attach(bw, ct_bw_clients, id, slot);
    apr_pool_cleanup_register(r->pool, bw, leave_client,
                              apr_pool_cleanup_null);
    return OK;
}

int ct_bandwidth_acquire(request_rec *r, ct_bw **out)
{
    ct_server_conf *conf = ap_get_module_config(r->server->module_config,
                                                &connect_tunnel_module);
    ct_bw *bw;
    int d, any = 0, client = 0;

    *out = NULL;
    for (d = 0; d < 2; d++) {
        any |= conf->bw_rate[d] > 0;
        client |= conf->cbw_rate[d] > 0;
    }
    if (!any && !(client && ct_bw_clients)) {
        return OK;
    }
    bw = apr_pcalloc(r->pool, sizeof(*bw));
    bw->slot = -1;
    for (d = 0; d < 2; d++) {
        set_bucket(&bw->dir[d].tunnel, conf->bw_rate[d], conf->bw_burst[d]);
        set_bucket(&bw->dir[d].client, conf->cbw_rate[d],
                   conf->cbw_burst[d]);
    }
    *out = bw;
    return client && ct_bw_clients ? join_client(r, conf, bw) : OK;
}

void ct_bandwidth_detach(request_rec *r, ct_bw *bw)
{
    apr_pool_cleanup_kill(r->pool, bw, leave_client);
}

void ct_bandwidth_release(ct_bw *bw)
{
    if (bw->slot >= 0 && bw->table) {
        ct_bw_slot_leave(bw->table, bw->slot, bw->id);
    }
    bw->slot = -1;
    bw->cword = NULL;
}

void ct_bandwidth_adopt(ct_bw *bw)
{
    /* Only values travel: the sender's pointers are not trusted, the
     * entry is found again by its place in this child's table. */
    if (ct_bw_clients != NULL && bw->slot >= 0 && bw->slot < CT_BW_SLOTS) {
        ct_bw_attach(bw, ct_bw_clients, bw->id, bw->slot);
    }
    else {
        ct_bw_attach(bw, NULL, bw->id, -1);
    }
}
