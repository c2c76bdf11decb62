/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_limits.c: concurrency limits on tunnels.  The child's count is an
 * atomic; the server-wide count and the per-client table live in shared
 * memory under a global mutex, and exist only when a limit needs them, so
 * a server without limits pays one atomic increment per tunnel.  A refused
 * tunnel never reaches the origin: limits are checked before any connect.
 * An HTTP/2 connection's tunnels are counted on the connection itself, an
 * atomic its streams' workers share.
 */

#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include "http_protocol.h"
#include "util_mutex.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_policy.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_limits.h"

#define CT_MUTEX_TYPE "connect-tunnel-limits"

/* Where the shared table survives restarts. */
#define CT_LIMITS_KEY "mod_connect_tunnel-limits"

/* One client address and its open tunnels.  A slot never used ends a
 * probe; one whose count fell to 0 may be reused. */
typedef struct {
    ct_net addr;
    apr_uint32_t count;
    int used;
} ct_client_slot;

typedef struct {
    apr_uint32_t live;          /* open tunnels in the whole server */
    ct_client_slot slots[CT_CLIENT_SLOTS];
} ct_shared;

/* What survives a restart, kept with ap_retained_data_create(). */
typedef struct {
    apr_shm_t *shm;
    ct_shared *table;
    apr_global_mutex_t *mutex;
} ct_kept;

static apr_uint32_t ct_child_live;
static apr_shm_t *ct_shm;
static ct_shared *ct_table;
static apr_global_mutex_t *ct_mutex;

/* What one acquired tunnel holds, given back by the pool cleanup. */
typedef ct_limit_hold ct_hold;

void ct_limits_pre_config(apr_pool_t *pconf)
{
    ap_mutex_register(pconf, CT_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

static int needs_shared(server_rec *s)
{
    for (; s != NULL; s = s->next) {
        ct_server_conf *conf = ap_get_module_config(s->module_config,
                                                    &connect_tunnel_module);

        if (conf->max_tunnels > 0 || conf->max_per_client > 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * The table and its mutex outlive configurations: children of an older
 * generation still hold tunnels (and give their counts back) after a
 * graceful restart.  They are made once, in the process pool, and the
 * table is cleared only when the MPM starts afresh.
 */
apr_status_t ct_limits_post_config(apr_pool_t *pconf, server_rec *s)
{
    ct_kept *kept = ap_retained_data_get(CT_LIMITS_KEY);
    apr_status_t rv;

    (void)pconf;
    if (kept != NULL) {
        ct_shm = kept->shm;
        ct_table = kept->table;
        ct_mutex = kept->mutex;
        if (!ct_restart_was_graceful()) {
            memset(ct_table, 0, sizeof(*ct_table));
        }
        return APR_SUCCESS;
    }
    ct_shm = NULL;
    ct_table = NULL;
    ct_mutex = NULL;
    if (!needs_shared(s)) {
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&ct_shm, sizeof(ct_shared), NULL, s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00004)
                     "cannot create shared memory for tunnel limits");
        return rv;
    }
    ct_table = apr_shm_baseaddr_get(ct_shm);
    memset(ct_table, 0, sizeof(*ct_table));
    rv = ap_global_mutex_create(&ct_mutex, NULL, CT_MUTEX_TYPE, NULL, s,
                                s->process->pool, 0);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00005)
                     "cannot create the mutex for tunnel limits");
        return rv;
    }
    kept = ap_retained_data_create(CT_LIMITS_KEY, sizeof(*kept));
    kept->shm = ct_shm;
    kept->table = ct_table;
    kept->mutex = ct_mutex;
    return APR_SUCCESS;
}

void ct_limits_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    if (ct_mutex == NULL) {
        return;
    }
    rv = apr_global_mutex_child_init(&ct_mutex,
                                     apr_global_mutex_lockfile(ct_mutex),
                                     pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, CT_LOGNO(00006)
                     "cannot attach to the mutex for tunnel limits");
    }
}

apr_uint32_t ct_limits_child_live(void)
{
    return apr_atomic_read32(&ct_child_live);
}

/* Find the client's slot, or a free one for it (mutex held). */
static ct_client_slot *find_slot(const ct_net *addr)
{
    apr_uint32_t h = 2166136261u, i;
    ct_client_slot *reuse = NULL;

    for (i = 0; i < 16; i++) {
        h = (h ^ addr->addr[i]) * 16777619u;
    }
    for (i = 0; i < CT_CLIENT_SLOTS; i++) {
        ct_client_slot *slot = &ct_table->slots[(h + i) % CT_CLIENT_SLOTS];

        if (!slot->used) {
            return reuse ? reuse : slot;
        }
        if (slot->count > 0 && ct_net_match(&slot->addr, addr)) {
            return slot;
        }
        if (slot->count == 0 && reuse == NULL) {
            reuse = slot;
        }
    }
    return reuse;
}

static apr_status_t release(void *data)
{
    ct_hold *hold = data;

    apr_atomic_dec32(&ct_child_live);
    if (hold->h2_count) {
        apr_atomic_dec32(hold->h2_count);
    }
    if ((hold->shared || hold->slot)
        && apr_global_mutex_lock(ct_mutex) == APR_SUCCESS) {
        if (hold->shared) {
            ct_table->live--;
        }
        if (hold->slot) {
            ((ct_client_slot *)hold->slot)->count--;
        }
        apr_global_mutex_unlock(ct_mutex);
    }
    return APR_SUCCESS;
}

void ct_limits_detach(request_rec *r, ct_limit_hold *out)
{
    ct_hold *hold = ap_get_module_config(r->request_config,
                                         &connect_tunnel_module);

    *out = *hold;
    apr_pool_cleanup_kill(r->pool, hold, release);
}

void ct_limits_release(ct_limit_hold *hold)
{
    (void)release(hold);
}

void ct_limits_pre_connection(conn_rec *c)
{
    /* Made here, in the connection's thread: the workers of its HTTP/2
     * streams only ever read the pointer, and count with atomics. */
    if (c->master == NULL) {
        ap_set_module_config(c->conn_config, &connect_tunnel_module,
                             apr_pcalloc(c->pool, sizeof(ct_conn_state)));
    }
}

ct_conn_state *ct_conn_state_get(conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &connect_tunnel_module);
}

/*
 * mod_http2 runs at most a few streams of a connection at once (6 on a
 * new connection; more only after streams have ended well) and queues
 * the others unseen; a tunnel holds its stream for its whole life.  Past
 * the limit here, a CONNECT is refused while a stream can still reach
 * the module, instead of waiting in mod_http2's queue for a tunnel to
 * end.
 */
static int acquire_h2(request_rec *r, const ct_server_conf *conf,
                      ct_hold *hold)
{
    ct_conn_state *st = ct_conn_state_get(r->connection->master);
    int limit = ct_conf_h2_tunnels(conf);
    apr_uint32_t before;

    if (st == NULL) {
        return OK;
    }
    before = apr_atomic_inc32(&st->h2_tunnels);
    hold->h2_count = &st->h2_tunnels;
    if (limit > 0 && before >= (apr_uint32_t)limit) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00180)
                      "tunnel refused: this HTTP/2 connection already "
                      "carries %d tunnels (ConnectTunnelMaxTunnelsPerH2"
                      "Connection); mod_http2 would queue more", limit);
        return ct_report_refusal(r, HTTP_SERVICE_UNAVAILABLE, CT_PS_LIMIT,
                                 "Too many tunnels on this HTTP/2 "
                                 "connection; open another connection.");
    }
    return OK;
}

static int refuse(request_rec *r, int status, const char *what, int limit)
{
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, CT_LOGNO(00060)
                  "tunnel refused: %s already has %d tunnels open "
                  "(its limit)", what, limit);
    return ct_report_refusal(r, status, CT_PS_LIMIT,
                             "Too many tunnels are open.");
}

/* The server-wide and per-client counts (mutex held). */
static int acquire_shared(request_rec *r, const ct_server_conf *conf,
                          ct_hold *hold)
{
    apr_sockaddr_t *sa = r->useragent_addr;
    ct_client_slot *slot = NULL;
    ct_net client;

    if (conf->max_tunnels > 0
        && ct_table->live >= (apr_uint32_t)conf->max_tunnels) {
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "the server",
                      conf->max_tunnels);
    }
    if (conf->max_per_client > 0) {
        ct_net_from_raw(sa->family, sa->ipaddr_ptr, &client);
        slot = find_slot(&client);
        if (slot == NULL) {
            return refuse(r, HTTP_SERVICE_UNAVAILABLE, "the client table",
                          CT_CLIENT_SLOTS);
        }
        if (slot->count > 0
            && slot->count >= (apr_uint32_t)conf->max_per_client) {
            return refuse(r, HTTP_TOO_MANY_REQUESTS,
                          apr_pstrcat(r->pool, "client ", r->useragent_ip,
                                      NULL), conf->max_per_client);
        }
        if (slot->count == 0) {
            slot->addr = client;
            slot->used = 1;
        }
        slot->count++;
    }
    ct_table->live++;
    hold->shared = 1;
    hold->slot = slot;
    return OK;
}

int ct_limits_acquire(request_rec *r)
{
    ct_server_conf *conf = ap_get_module_config(r->server->module_config,
                                                &connect_tunnel_module);
    ct_hold *hold;
    apr_uint32_t before;
    apr_status_t rv;
    int rc = OK;

    if (ap_get_module_config(r->request_config, &connect_tunnel_module)) {
        /* Counted already: mod_proxy retries the next upstream proxy. */
        return OK;
    }
    hold = apr_pcalloc(r->pool, sizeof(*hold));
    before = apr_atomic_inc32(&ct_child_live);

    apr_pool_cleanup_register(r->pool, hold, release, apr_pool_cleanup_null);
    ap_set_module_config(r->request_config, &connect_tunnel_module, hold);
    if (r->connection->master != NULL
        && (rc = acquire_h2(r, conf, hold)) != OK) {
        return rc;
    }
    if (conf->max_per_child > 0
        && before >= (apr_uint32_t)conf->max_per_child) {
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "this child process",
                      conf->max_per_child);
    }
    if (ct_table == NULL
        || (conf->max_tunnels <= 0 && conf->max_per_client <= 0)) {
        return OK;
    }
    if ((rv = apr_global_mutex_lock(ct_mutex)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00061)
                      "cannot lock the tunnel limits");
        return ct_report_refusal(r, HTTP_INTERNAL_SERVER_ERROR,
                                 CT_PS_INTERNAL, "Internal error.");
    }
    rc = acquire_shared(r, conf, hold);
    apr_global_mutex_unlock(ct_mutex);
    return rc;
}
