/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_limits.c: concurrency limits on tunnels.  The child's count is an
 * atomic; the server-wide count and the per-client table live in shared
 * memory under a global mutex, and exist only when a limit needs them, so
 * a server without limits pays one atomic increment per tunnel.  Tunnels
 * per destination host are counted in the client table too, under keys
 * of their own (ct_clients_host_key), so that a dead child's are taken
 * off with its clients'.  A refused
 * tunnel never reaches the origin: limits are checked before any connect.
 * An HTTP/2 connection's tunnels are counted on the connection itself, an
 * atomic its streams' workers share.
 */

#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_global_mutex.h"
#include "apr_strings.h"

#include "http_main.h"
#include "http_protocol.h"
#include "util_mutex.h"

#include "ct_private.h"
#include "ct_config.h"
#include "ct_clients.h"
#include "ct_policy.h"
#include "ct_report.h"
#include "ct_stats.h"
#include "ct_throttle.h"
#include "ct_limits.h"

#define CT_MUTEX_TYPE "connect-tunnel-limits"

/* Where the shared table survives restarts (named after its layout, as
 * in ct_stats.c). */
#define CT_LIMITS_KEY "mod_connect_tunnel-limits-by-process"

/*
 * The counts, and who holds them: each child process has a record in
 * ct_stats, and everything it counts is also counted under that record
 * (its share of the server-wide count in owners[], its part of each
 * client's total in the client table), so that what a child that died
 * without its cleanups held can be taken off.
 */
typedef struct {
    apr_uint32_t live;          /* open tunnels in the whole server */
    volatile apr_uint32_t pending;  /* exited children not yet taken off */
    apr_uint32_t nowners;
    ct_client_table clients;
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
static apr_uint32_t *ct_owners;     /* tunnels per owner, after ct_table */
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

        if (conf->max_tunnels > 0 || conf->max_per_client > 0
            || conf->max_per_dest > 0) {
            return 1;
        }
    }
    return 0;
}

/* Empty counts, and a fresh key for the client table's hash. */
static void reset_table(server_rec *s, apr_uint32_t nowners)
{
    apr_uint64_t seed;
    apr_status_t rv;

    rv = apr_generate_random_bytes((unsigned char *)&seed, sizeof(seed));
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, CT_LOGNO(00101)
                     "no random bytes for the client table's hash key: "
                     "using the time");
        seed = (apr_uint64_t)apr_time_now() ^ (apr_uint64_t)getpid();
    }
    memset(ct_table, 0, sizeof(*ct_table) + nowners * sizeof(*ct_owners));
    ct_table->nowners = nowners;
    ct_clients_init(&ct_table->clients, seed);
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
    apr_uint32_t nowners = (apr_uint32_t)ct_stats_nprocs();
    apr_status_t rv;

    (void)pconf;
    if (kept != NULL) {
        ct_shm = kept->shm;
        ct_table = kept->table;
        ct_owners = (apr_uint32_t *)(ct_table + 1);
        ct_mutex = kept->mutex;
        if (!ct_restart_was_graceful()) {
            reset_table(s, ct_table->nowners);
        }
        return APR_SUCCESS;
    }
    ct_shm = NULL;
    ct_table = NULL;
    ct_mutex = NULL;
    if (!needs_shared(s)) {
        return APR_SUCCESS;
    }
    rv = apr_shm_create(&ct_shm, sizeof(ct_shared)
                        + nowners * sizeof(*ct_owners), NULL,
                        s->process->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00004)
                     "cannot create shared memory for tunnel limits");
        return rv;
    }
    ct_table = apr_shm_baseaddr_get(ct_shm);
    ct_owners = (apr_uint32_t *)(ct_table + 1);
    reset_table(s, nowners);
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

/* Take everything record i held off the counts (mutex held). */
static void drop_owner(server_rec *s, apr_uint32_t i)
{
    apr_uint32_t held = ct_owners[i], clients;

    ct_table->live = ct_table->live > held ? ct_table->live - held : 0;
    ct_owners[i] = 0;
    clients = ct_clients_drop_owner(&ct_table->clients, i);
    if (held > 0 || clients > 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, CT_LOGNO(00102)
                     "a child exited with %u tunnels still counted (%u "
                     "per client or destination): taken off the limits",
                     held, clients);
    }
}

/* Drop the records of exited children, which free them (mutex held). */
static void reconcile(server_rec *s)
{
    apr_uint32_t i;

    apr_atomic_set32(&ct_table->pending, 0);
    for (i = 1; i < ct_table->nowners; i++) {
        if (ct_stats_proc_gone((int)i)) {
            drop_owner(s, i);
            ct_stats_proc_free((int)i);
        }
    }
}

/* Take the mutex, and catch up with children that exited meanwhile. */
static apr_status_t lock_counts(server_rec *s)
{
    apr_status_t rv = apr_global_mutex_lock(ct_mutex);

    if (rv == APR_SUCCESS && apr_atomic_read32(&ct_table->pending)) {
        reconcile(s);
    }
    return rv;
}

/*
 * In the parent, which must never wait on its children: a child that is
 * stopped (SIGSTOP, a debugger) while it holds the mutex would stop the
 * MPM too.  So the parent only tries the mutex; when a child holds it,
 * "pending" tells the next child that takes it to do the work, which is
 * as soon as it matters: counts are only read under the mutex.  A holder
 * that died is no obstacle: APR makes a robust pthread mutex consistent
 * again (EOWNERDEAD), and the kernel releases fcntl, flock and SysV
 * semaphore (SEM_UNDO) locks of a process that is gone.
 */
void ct_limits_proc_exited(server_rec *s, int proc)
{
    if (ct_table == NULL) {
        ct_stats_proc_free(proc);
        return;
    }
    apr_atomic_set32(&ct_table->pending, 1);
    if (apr_global_mutex_trylock(ct_mutex) == APR_SUCCESS) {
        reconcile(s);
        apr_global_mutex_unlock(ct_mutex);
    }
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
        return;
    }
    /* A new child is also a moment to catch up, whether or not the
     * parent could. */
    if (lock_counts(s) == APR_SUCCESS) {
        apr_global_mutex_unlock(ct_mutex);
    }
}

apr_uint32_t ct_limits_child_live(void)
{
    return apr_atomic_read32(&ct_child_live);
}

static apr_status_t release(void *data)
{
    ct_hold *hold = data;

    apr_atomic_dec32(&ct_child_live);
    if (hold->h2_count) {
        apr_atomic_dec32(hold->h2_count);
    }
    if ((hold->shared || hold->client || hold->dest)
        && lock_counts(ap_server_conf) == APR_SUCCESS) {
        /* The owner's part first, as in ct_clients_give(). */
        if (hold->shared) {
            if (ct_owners[hold->owner] > 0) {
                ct_owners[hold->owner]--;
            }
            if (ct_table->live > 0) {
                ct_table->live--;
            }
        }
        if (hold->client) {
            ct_clients_give(&ct_table->clients, &hold->key,
                            (unsigned int)hold->owner);
        }
        if (hold->dest) {
            ct_clients_give(&ct_table->clients, &hold->dest_key,
                            (unsigned int)hold->owner);
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

/* The key r's client is counted under, by r's server's prefixes. */
static void client_key(request_rec *r, const ct_server_conf *conf,
                       ct_net *key)
{
    apr_sockaddr_t *sa = r->useragent_addr;
    int v4 = conf->client_v4_bits != CT_UNSET ? conf->client_v4_bits
                                              : CT_DEFAULT_CLIENT_V4_PREFIX;
    int v6 = conf->client_v6_bits != CT_UNSET ? conf->client_v6_bits
                                              : CT_DEFAULT_CLIENT_V6_PREFIX;

    ct_client_key(sa->family, sa->ipaddr_ptr, (unsigned int)v4,
                  (unsigned int)v6, key);
}

static const char *client_name(request_rec *r, const ct_net *key)
{
    if (key->bits == (key->family == APR_INET ? 32u : 128u)) {
        return apr_pstrcat(r->pool, "client ", r->useragent_ip, NULL);
    }
    return apr_psprintf(r->pool, "client %s (counted with its /%u)",
                        r->useragent_ip, key->bits);
}

/* The count of one destination host (mutex held). */
static int acquire_dest(request_rec *r, const ct_server_conf *conf,
                        ct_hold *hold, const char *host)
{
    ct_clients_host_key(&ct_table->clients, host, &hold->dest_key);
    if (ct_clients_count(&ct_table->clients, &hold->dest_key)
        >= (apr_uint32_t)conf->max_per_dest) {
        return refuse(r, HTTP_SERVICE_UNAVAILABLE,
                      apr_psprintf(r->pool, "destination '%.*s'", 255, host),
                      conf->max_per_dest);
    }
    if (ct_clients_take(&ct_table->clients, &hold->dest_key,
                        (unsigned int)hold->owner) != APR_SUCCESS) {
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "the client table",
                      CT_CLIENT_MAX_USED);
    }
    hold->dest = 1;
    return OK;
}

/* The server-wide, per-client and per-destination counts (mutex held).
 * Totals are counted before the owner's part, so that a child killed in
 * between leaves one too many counted, never one too few. */
static int acquire_shared(request_rec *r, const ct_server_conf *conf,
                          ct_hold *hold, const char *host)
{
    int rc;

    int owner = ct_stats_proc();

    hold->owner = owner;
    if (conf->max_tunnels > 0
        && ct_table->live >= (apr_uint32_t)conf->max_tunnels) {
        return refuse(r, HTTP_SERVICE_UNAVAILABLE, "the server",
                      conf->max_tunnels);
    }
    if (conf->max_per_client > 0) {
        if (ct_clients_count(&ct_table->clients, &hold->key)
            >= (apr_uint32_t)conf->max_per_client) {
            return refuse(r, HTTP_TOO_MANY_REQUESTS,
                          client_name(r, &hold->key), conf->max_per_client);
        }
        if (ct_clients_take(&ct_table->clients, &hold->key,
                            (unsigned int)owner) != APR_SUCCESS) {
            return refuse(r, HTTP_SERVICE_UNAVAILABLE, "the client table",
                          CT_CLIENT_MAX_USED);
        }
        hold->client = 1;
    }
    if (conf->max_per_dest > 0
        && (rc = acquire_dest(r, conf, hold, host)) != OK) {
        return rc;
    }
    ct_table->live++;
    ct_owners[owner]++;
    hold->shared = 1;
    return OK;
}

/* The counts in shared memory, under the mutex. */
static int acquire_counts(request_rec *r, const ct_server_conf *conf,
                          ct_hold *hold, const char *host)
{
    apr_status_t rv;
    int rc;

    if (ct_table == NULL
        || (conf->max_tunnels <= 0 && conf->max_per_client <= 0
            && conf->max_per_dest <= 0)) {
        return OK;
    }
    if ((rv = lock_counts(r->server)) != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00061)
                      "cannot lock the tunnel limits");
        return ct_report_refusal(r, HTTP_INTERNAL_SERVER_ERROR,
                                 CT_PS_INTERNAL, "Internal error.");
    }
    rc = acquire_shared(r, conf, hold, host);
    apr_global_mutex_unlock(ct_mutex);
    return rc;
}

/*
 * The order: the counts first (this child, the server, the client, the
 * destination host), then the rates, so that a tunnel refused for being
 * one too many takes nothing from the client's or the host's rate.
 */
int ct_limits_acquire(request_rec *r, const ct_target *dial)
{
    ct_server_conf *conf = ap_get_module_config(r->server->module_config,
                                                &connect_tunnel_module);
    ct_hold *hold;
    ct_target canon;
    apr_uint32_t before;
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
    /* One spelling per host, as <Proxy> sections see it. */
    canon.host = NULL;
    if (conf->max_per_dest > 0 || conf->dest_rate.rate > 0) {
        ct_target_canonical(r->pool, dial, &canon);
    }
    if (conf->max_per_client > 0 || ct_throttle_wanted(conf)) {
        client_key(r, conf, &hold->key);
    }
    if ((rc = acquire_counts(r, conf, hold, canon.host)) != OK) {
        return rc;
    }
    return ct_throttle_take(r, conf, &hold->key, canon.host);
}

/*
 * Moving a tunnel to another child (ct_migrate.c).  Its counts go from
 * the sender's record to the receiver's under the mutex, together with
 * the mark of the move (ct_stats_mark_take()): a sender that hears
 * nothing back learns under the same mutex whether the receiver took the
 * tunnel, and when it did not, cancels the move so that a late receiver
 * refuses it.  Whoever holds the tunnel in the end has its counts.
 */

/* Move hold's counts from hold->owner (re_add: from nobody, they were
 * dropped) to record `to` (mutex held). */
static apr_status_t move_counts(ct_limit_hold *hold, int to, int re_add)
{
    if (hold->client) {
        if (ct_clients_take(&ct_table->clients, &hold->key,
                            (unsigned int)to) != APR_SUCCESS) {
            return APR_ENOSPC;
        }
        if (!re_add) {
            ct_clients_give(&ct_table->clients, &hold->key,
                            (unsigned int)hold->owner);
        }
    }
    if (hold->shared) {
        if (re_add) {
            ct_table->live++;
        }
        else if (ct_owners[hold->owner] > 0) {
            ct_owners[hold->owner]--;
        }
        ct_owners[to]++;
    }
    hold->owner = to;
    return APR_SUCCESS;
}

/* Whether hold's counts are kept in the shared table. */
static int counted(const ct_limit_hold *hold)
{
    return ct_table != NULL && (hold->shared || hold->client)
           && hold->owner > 0 && (apr_uint32_t)hold->owner
                                 < ct_table->nowners;
}

apr_status_t ct_limits_move_in(ct_limit_hold *hold, int reactor,
                               apr_uint32_t seq)
{
    apr_status_t rv = APR_SUCCESS;
    apr_uint32_t before;
    int from = hold->owner, locked = 0;

    hold->h2_count = NULL;
    if (counted(hold)) {
        if ((rv = lock_counts(ap_server_conf)) != APR_SUCCESS) {
            return rv;
        }
        locked = 1;
    }
    if (!ct_stats_mark_take(from, reactor, seq, &before)) {
        rv = APR_ECONNABORTED;
    }
    else if (locked
             && (rv = move_counts(hold, ct_stats_proc(), 0)) != APR_SUCCESS) {
        ct_stats_mark_undo(from, reactor, before);
    }
    if (locked) {
        apr_global_mutex_unlock(ct_mutex);
    }
    if (rv == APR_SUCCESS) {
        /* Counts of no record (the sender had none) stay under it. */
        if (locked || !(hold->shared || hold->client)) {
            hold->owner = ct_stats_proc();
        }
        apr_atomic_inc32(&ct_child_live);
    }
    return rv;
}

void ct_limits_move_out(void)
{
    apr_atomic_dec32(&ct_child_live);
}

int ct_limits_move_unknown(ct_limit_hold *hold, int reactor,
                           apr_uint32_t seq, pid_t receiver, int died)
{
    ct_limit_hold back;
    int taken, locked = 0, at;

    if (counted(hold) && lock_counts(ap_server_conf) == APR_SUCCESS) {
        locked = 1;
    }
    taken = ct_stats_mark_cancel(reactor, seq);
    if (taken && died) {
        /* It took the tunnel and died before it relayed a byte: the
         * tunnel stays, and its counts come back, from the receiver's
         * record if the parent has not dropped that yet. */
        if (locked) {
            at = ct_stats_proc_of(receiver, 0);
            back = *hold;
            back.owner = at;
            (void)move_counts(&back, hold->owner, at == 0);
        }
        taken = 0;
    }
    if (locked) {
        apr_global_mutex_unlock(ct_mutex);
    }
    return taken;
}
