/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_accesslog.c: the access-log line of a tunnel a reactor carries.
 *
 * Stock mod_proxy_connect relays in the handler, so httpd logs a CONNECT
 * when its tunnel ends, %I/%O counting the tunnel's bytes.  A reactor
 * tunnel outlives its request_rec and conn_rec, so at hand-off the line
 * is held back (a log_transaction hook run first answers DONE) and the
 * request's loggable parts are packed into one record: its strings and
 * tables, the addresses, mod_logio's counts.  A pool per tunnel would
 * cost 8 KiB; a record of a size class from a free list costs what the
 * request holds (some hundred bytes).  When the tunnel ends the reactor
 * queues the record; a logger thread rebuilds a request_rec and conn_rec
 * from it in its own pool and runs ap_run_log_transaction(), as mod_http2
 * does for requests it builds.  mod_log_config's writes may block (piped
 * logs); only the logger thread waits on them.
 */

#include "httpd.h"
#include "apr_strings.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"
#include "apr_optional.h"

#include "http_config.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_log_config.h"
#include "mpm_common.h"

#include "ct_private.h"
#include "ct_limits.h"
#include "ct_report.h"
#include "ct_accesslog.h"
#include "ct_alog_needs.h"

APR_DECLARE_OPTIONAL_FN(void, ap_logio_add_bytes_in,
                        (conn_rec *c, apr_off_t bytes));
APR_DECLARE_OPTIONAL_FN(void, ap_logio_add_bytes_out,
                        (conn_rec *c, apr_off_t bytes));

/* The strings kept of a request and its connection. */
enum {
    F_THE_REQUEST, F_METHOD, F_URI, F_UNPARSED_URI, F_PROTOCOL,
    F_HOSTNAME, F_USER, F_AUTH_TYPE, F_HANDLER, F_FILENAME, F_ARGS,
    F_LOG_ID, F_UA_IP, F_UA_HOST, F_CLIENT_IP, F_LOCAL_IP, F_REMOTE_HOST,
    F_CONN_LOG_ID, F_COUNT
};

/* The format letters that read each of them (mod_log_config's %h reads
 * the user agent's or the connection's host name, else its address). */
static const char *const ct_field_letters[F_COUNT] = {
    "r", "m", "U", "", "H", "V", "u", "", "R", "f", "q", "L", "ah", "h",
    "ah", "A", "h", "L"
};

/* The tables kept. */
enum {
    T_HEADERS_IN, T_HEADERS_OUT, T_ERR_HEADERS_OUT, T_NOTES, T_ENV,
    T_COUNT
};

/* The keys of each that a format may read. */
static const int ct_table_keys[T_COUNT] = {
    CT_ALOG_KEYS_IN, CT_ALOG_KEYS_OUT, CT_ALOG_KEYS_OUT, CT_ALOG_KEYS_NOTES,
    CT_ALOG_KEYS_ENV
};

/* Size classes of records: every 32 bytes up to 1 KiB (a CONNECT's
 * record is some 300 to 600 bytes: the steps keep the waste small), then
 * powers of two up to 64 KiB, the largest record (its offsets are 16
 * bits wide). */
#define CT_ALOG_STEP 32
#define CT_ALOG_SMALL 1024
#define CT_ALOG_MAX (64 * 1024)
#define CT_ALOG_CLASSES (CT_ALOG_SMALL / CT_ALOG_STEP + 6)

/* Lines queued for the logger thread, beyond which one is dropped (and
 * counted): a log that stopped must not take the child's memory. */
#define CT_ALOG_QUEUE_MAX 10000

/* Room given to mod_logio's per-connection record in a rebuilt conn_rec:
 * it is written only through mod_logio's own functions. */
#define CT_LOGIO_ROOM 64

struct ct_alog {
    ct_alog *next;              /* queue or free list */
    int cls;                    /* size class, or -1: in a request pool */
    server_rec *server;
    apr_time_t request_time;
    apr_off_t in0;              /* mod_logio's counts, less the payload */
    apr_off_t out0;
    apr_off_t up;               /* payload, when the tunnel ended */
    apr_off_t down;
    const char *end;
    apr_time_t first;           /* the origin's first byte, or 0 */
    apr_time_t stop;            /* when the tunnel ended */
    long conn_id;
    int keepalives;
    int proto_num;
    apr_port_t ua_port;
    apr_port_t client_port;
    apr_port_t local_port;
    apr_uint16_t field[F_COUNT];    /* offset + 1 in text, 0: NULL */
    apr_uint16_t table[T_COUNT];    /* offset of the first entry */
    apr_uint16_t entries[T_COUNT];
    char text[1];               /* NUL-terminated strings */
};

static module *ct_logio_mod;
static module *ct_forensic_mod;
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_in) *ct_add_in;
static APR_OPTIONAL_FN_TYPE(ap_logio_add_bytes_out) *ct_add_out;

/* Records: free lists by class, carved from a pool (under ct_flock). */
static apr_pool_t *ct_fpool;
static apr_thread_mutex_t *ct_flock;
static ct_alog *ct_free[CT_ALOG_CLASSES];

/* What this server's logs read of a request (child_init). */
static ct_alog_needs ct_needs;

/* The logger thread, started with the first record (ct_tpool, ct_lfailed
 * under ct_qlock), and its queue (under ct_qlock). */
#define CT_LOGGER_STACK (256 * 1024)
static apr_thread_t *ct_logger;
static apr_pool_t *ct_tpool;
static int ct_lfailed;
static apr_thread_mutex_t *ct_qlock;
static apr_thread_cond_t *ct_qcond;
static ct_alog *ct_qhead, *ct_qtail;
static apr_uint32_t ct_qlen;
static int ct_qstop;
static apr_pool_t *ct_lpool;        /* the logger thread's own */
static apr_uint32_t ct_dropped;     /* under ct_qlock */
static server_rec *ct_main_server;

void ct_alog_init(void)
{
    ct_logio_mod = ap_find_linked_module("mod_logio.c");
    ct_forensic_mod = ap_find_linked_module("mod_log_forensic.c");
    ct_add_in = APR_RETRIEVE_OPTIONAL_FN(ap_logio_add_bytes_in);
    ct_add_out = APR_RETRIEVE_OPTIONAL_FN(ap_logio_add_bytes_out);
    if (ct_add_in == NULL || ct_add_out == NULL) {
        ct_logio_mod = NULL;
    }
}

/*
 * mod_logio's counts of a connection so far.  It has no getter: its
 * per-connection record begins with the two counters, bytes in then
 * bytes out, in every 2.4 release (logio_config_t).
 */
static void logio_counts(conn_rec *c, apr_off_t *in, apr_off_t *out)
{
    const apr_off_t *cf = NULL;

    if (ct_logio_mod) {
        cf = ap_get_module_config(c->conn_config, ct_logio_mod);
    }
    *in = cf ? cf[0] : 0;
    *out = cf ? cf[1] : 0;
}

static void fields_of(request_rec *r, const char *f[F_COUNT])
{
    conn_rec *c = r->connection;

    f[F_THE_REQUEST] = r->the_request;
    f[F_METHOD] = r->method;
    f[F_URI] = r->uri;
    f[F_UNPARSED_URI] = r->unparsed_uri;
    f[F_PROTOCOL] = r->protocol;
    f[F_HOSTNAME] = r->hostname;
    f[F_USER] = r->user;
    f[F_AUTH_TYPE] = r->ap_auth_type;
    f[F_HANDLER] = r->handler;
    f[F_FILENAME] = r->filename;
    f[F_ARGS] = r->args;
    f[F_LOG_ID] = r->log_id;
    f[F_UA_IP] = r->useragent_ip;
    f[F_UA_HOST] = r->useragent_host;
    f[F_CLIENT_IP] = c->client_ip;
    f[F_LOCAL_IP] = c->local_ip;
    f[F_REMOTE_HOST] = c->remote_host;
    f[F_CONN_LOG_ID] = c->log_id;
}

/* Forget the fields no format reads (n NULL: keep them all). */
static void trim_fields(const char *f[F_COUNT], const ct_alog_needs *n)
{
    const char *l;
    int i;

    if (n == NULL || n->level != CT_ALOG_SOME) {
        return;
    }
    for (i = 0; i < F_COUNT; i++) {
        for (l = ct_field_letters[i]; *l && !n->letter[(int)*l]; l++) {
        }
        if (*l == '\0') {
            f[i] = NULL;
        }
    }
}

/* Whether an entry of table i is kept (n NULL: every entry). */
static int keep_entry(const ct_alog_needs *n, int i, const char *key)
{
    return n == NULL || n->level != CT_ALOG_SOME
           || ct_alog_needs_key(n, ct_table_keys[i], key);
}

static void tables_of(request_rec *r, const apr_table_t *t[T_COUNT])
{
    t[T_HEADERS_IN] = r->headers_in;
    t[T_HEADERS_OUT] = r->headers_out;
    t[T_ERR_HEADERS_OUT] = r->err_headers_out;
    t[T_NOTES] = r->notes;
    t[T_ENV] = r->subprocess_env;
}

/* Add s at offset at of text (or, text NULL, only count it). */
static apr_size_t put(char *text, apr_size_t at, const char *s)
{
    apr_size_t n = strlen(s) + 1;

    if (text) {
        memcpy(text + at, s, n);
    }
    return at + n;
}

/*
 * Lay out the strings and tables in a->text, or (a NULL) only measure
 * them.  A string equal to an earlier one (the client's address is often
 * also the user agent's) is kept once; table entries only if n says
 * so.  @return the text's length
 */
static apr_size_t pack(ct_alog *a, const char *f[F_COUNT],
                       const apr_table_t *t[T_COUNT],
                       const ct_alog_needs *n)
{
    char *text = a ? a->text : NULL;
    apr_size_t len = 0, at[F_COUNT];
    int i, j;

    for (i = 0; i < F_COUNT; i++) {
        for (j = 0; f[i] && j < i; j++) {
            if (f[j] && strcmp(f[i], f[j]) == 0) {
                break;
            }
        }
        if (f[i] == NULL) {
            at[i] = 0;
        }
        else if (j < i) {
            at[i] = at[j];
        }
        else {
            at[i] = len + 1;
            len = put(text, len, f[i]);
        }
        if (a) {
            a->field[i] = (apr_uint16_t)at[i];
        }
    }
    for (i = 0; i < T_COUNT; i++) {
        const apr_array_header_t *arr = apr_table_elts(t[i]);
        const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
        apr_uint16_t kept = 0;

        if (a) {
            a->table[i] = (apr_uint16_t)len;
        }
        for (j = 0; j < arr->nelts; j++) {
            if (e[j].key && keep_entry(n, i, e[j].key)) {
                len = put(text, len, e[j].key);
                len = put(text, len, e[j].val ? e[j].val : "");
                kept++;
            }
        }
        if (a) {
            a->entries[i] = kept;
        }
    }
    return len;
}

/* The class of a record of size bytes and its size, or -1. */
static int size_class(apr_size_t size, apr_size_t *csize)
{
    apr_size_t c = 2 * CT_ALOG_SMALL;
    int cls = CT_ALOG_SMALL / CT_ALOG_STEP;

    if (size <= CT_ALOG_SMALL) {
        *csize = APR_ALIGN(size, CT_ALOG_STEP);
        return (int)(*csize / CT_ALOG_STEP) - 1;
    }
    while (c < size) {
        c *= 2;
        cls++;
    }
    *csize = c;
    return c <= CT_ALOG_MAX ? cls : -1;
}

/* A record of at least size bytes from the free lists, or NULL. */
static ct_alog *take(apr_size_t size)
{
    ct_alog *a;
    apr_size_t csize;
    int cls = size_class(size, &csize);

    if (cls < 0 || ct_fpool == NULL) {
        return NULL;
    }
    apr_thread_mutex_lock(ct_flock);
    if ((a = ct_free[cls]) != NULL) {
        ct_free[cls] = a->next;
    }
    else {
        a = apr_palloc(ct_fpool, csize);
    }
    apr_thread_mutex_unlock(ct_flock);
    a->cls = cls;
    return a;
}

static void give(ct_alog *a)
{
    if (a->cls < 0) {
        return;
    }
    apr_thread_mutex_lock(ct_flock);
    a->next = ct_free[a->cls];
    ct_free[a->cls] = a;
    apr_thread_mutex_unlock(ct_flock);
}

/* Pack r, or what n says the logs read of it (NULL: all of it), into a
 * record from pool p, or (p NULL) from the free lists. */
static ct_alog *capture(request_rec *r, apr_pool_t *p, apr_off_t less_in,
                        apr_off_t less_out, const ct_alog_needs *n)
{
    const char *f[F_COUNT];
    const apr_table_t *t[T_COUNT];
    apr_size_t size;
    ct_alog *a;

    fields_of(r, f);
    trim_fields(f, n);
    tables_of(r, t);
    size = APR_OFFSETOF(ct_alog, text) + pack(NULL, f, t, n);
    if (size > CT_ALOG_MAX) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, CT_LOGNO(00272)
                      "access log: the request is too large to keep for "
                      "the tunnel's records (%" APR_SIZE_T_FMT " bytes)",
                      size);
        return NULL;
    }
    a = p ? apr_palloc(p, size) : take(size);
    if (a == NULL) {
        return NULL;
    }
    if (p) {
        a->cls = -1;
    }
    a->next = NULL;
    a->server = r->server;
    a->request_time = r->request_time;
    logio_counts(r->connection, &a->in0, &a->out0);
    a->in0 -= less_in;
    a->out0 -= less_out;
    a->up = a->down = 0;
    a->end = NULL;
    a->first = a->stop = 0;
    a->conn_id = r->connection->id;
    a->keepalives = r->connection->keepalives;
    a->proto_num = r->proto_num;
    a->ua_port = r->useragent_addr ? r->useragent_addr->port : 0;
    a->client_port = r->connection->client_addr
                     ? r->connection->client_addr->port : 0;
    a->local_port = r->connection->local_addr
                    ? r->connection->local_addr->port : 0;
    pack(a, f, t, n);
    return a;
}

static void *APR_THREAD_FUNC logger_main(apr_thread_t *thread, void *data);

/*
 * The logger thread, started when the first record is kept: a server
 * without access logs, or that hands nothing off, runs none.  Its stack
 * is ThreadStackSize, or a small one: it runs the log hooks only.
 * @return whether it runs
 */
static int logger_running(server_rec *s)
{
    apr_threadattr_t *attr;
    apr_status_t rv = APR_SUCCESS;
    int running;

    apr_thread_mutex_lock(ct_qlock);
    if (ct_logger == NULL && !ct_lfailed && !ct_qstop) {
        rv = apr_threadattr_create(&attr, ct_tpool);
        if (rv == APR_SUCCESS) {
            rv = apr_threadattr_stacksize_set(attr, ap_thread_stacksize
                                              ? ap_thread_stacksize
                                              : CT_LOGGER_STACK);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_thread_create(&ct_logger, attr, logger_main, NULL,
                                   ct_tpool);
        }
        if (rv != APR_SUCCESS) {
            ct_logger = NULL;
            ct_lfailed = 1;
        }
    }
    running = ct_logger != NULL && !ct_qstop;
    apr_thread_mutex_unlock(ct_qlock);
    if (rv != APR_SUCCESS) {
        /* Without the thread no line is held back: each is written at
         * hand-off, as if the tunnel had ended there. */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00271)
                     "access log: cannot start the logger thread; reactor "
                     "tunnels are logged when handed off");
    }
    return running;
}

ct_alog *ct_alog_capture(request_rec *r, apr_size_t early_len,
                         apr_off_t up, apr_off_t down)
{
    if (ct_fpool == NULL || ct_needs.level == CT_ALOG_NOTHING
        || !logger_running(r->server)) {
        return NULL;
    }
    /* The payload the worker moved, and the early bytes read but not yet
     * sent, are in mod_logio's counts and in the totals the reactor
     * reports at the end: count them once. */
    return capture(r, NULL, up + (apr_off_t)early_len, down, &ct_needs);
}

/* A copy of a string of the record: hooks may change what they get. */
static char *field(apr_pool_t *p, const ct_alog *a, int i)
{
    return a->field[i] ? apr_pstrdup(p, a->text + a->field[i] - 1) : NULL;
}

static apr_table_t *unpack_table(apr_pool_t *p, const ct_alog *a, int i)
{
    apr_table_t *t = apr_table_make(p, (int)a->entries[i] + 1);
    const char *s = a->text + a->table[i];
    apr_uint32_t j;

    for (j = 0; j < a->entries[i]; j++) {
        const char *key = s, *val = s + strlen(s) + 1;

        apr_table_add(t, key, val);
        s = val + strlen(val) + 1;
    }
    return t;
}

/* An address for mod_log_config's %{remote}p and friends: never NULL.
 * The text is a literal whose family shows; giving it keeps the resolver
 * from asking the kernel for this host's interfaces (a netlink round trip
 * per address, three per tunnel) as it does for APR_UNSPEC. */
static apr_sockaddr_t *address(apr_pool_t *p, const char *ip,
                               apr_port_t port)
{
    apr_sockaddr_t *sa = NULL;

    if (ip == NULL
        || apr_sockaddr_info_get(&sa, ip,
                                 strchr(ip, ':') ? APR_INET6 : APR_INET,
                                 port, 0, p)
           != APR_SUCCESS || sa == NULL) {
        sa = apr_pcalloc(p, sizeof(*sa));
        sa->pool = p;
        sa->family = APR_INET;
        sa->port = port;
    }
    return sa;
}

static conn_rec *rebuild_conn(apr_pool_t *p, const ct_alog *a,
                              apr_off_t in, apr_off_t out)
{
    conn_rec *c = apr_pcalloc(p, sizeof(*c));

    c->pool = p;
    c->base_server = a->server;
    c->client_ip = field(p, a, F_CLIENT_IP);
    c->client_addr = address(p, c->client_ip, a->client_port);
    c->local_ip = field(p, a, F_LOCAL_IP);
    c->local_addr = address(p, c->local_ip, a->local_port);
    c->remote_host = field(p, a, F_REMOTE_HOST);
    c->log_id = field(p, a, F_CONN_LOG_ID);
    c->id = a->conn_id;
    c->keepalive = AP_CONN_CLOSE;
    c->keepalives = a->keepalives;
    c->log = &a->server->log;
    c->notes = apr_table_make(p, 1);
    c->conn_config = ap_create_conn_config(p);
    if (ct_logio_mod) {
        ap_set_module_config(c->conn_config, ct_logio_mod,
                             apr_pcalloc(p, CT_LOGIO_ROOM));
        ct_add_in(c, in);
        ct_add_out(c, out);
    }
    return c;
}

/*
 * A request_rec good for every log_transaction hook: what mod_log_config's
 * format items and ap_expr read is set, from the record or empty.  The
 * per-directory configuration is the server's (a <Location> or <Proxy>
 * section's LogLevel or the like no longer applies).
 */
static request_rec *rebuild(apr_pool_t *p, const ct_alog *a, apr_off_t in,
                            apr_off_t out)
{
    request_rec *r = apr_pcalloc(p, sizeof(*r));

    r->pool = p;
    r->connection = rebuild_conn(p, a, in, out);
    r->server = a->server;
    r->log = &a->server->log;
    r->per_dir_config = a->server->lookup_defaults;
    r->request_config = ap_create_request_config(p);
    r->request_time = a->request_time;
    r->the_request = field(p, a, F_THE_REQUEST);
    r->method = field(p, a, F_METHOD);
    r->method_number = M_CONNECT;
    r->uri = field(p, a, F_URI);
    r->unparsed_uri = field(p, a, F_UNPARSED_URI);
    r->protocol = field(p, a, F_PROTOCOL);
    r->proto_num = a->proto_num;
    r->hostname = field(p, a, F_HOSTNAME);
    r->user = field(p, a, F_USER);
    r->ap_auth_type = field(p, a, F_AUTH_TYPE);
    r->handler = field(p, a, F_HANDLER);
    r->filename = field(p, a, F_FILENAME);
    r->args = field(p, a, F_ARGS);
    r->log_id = field(p, a, F_LOG_ID);
    r->useragent_ip = field(p, a, F_UA_IP);
    r->useragent_host = field(p, a, F_UA_HOST);
    r->useragent_addr = address(p, r->useragent_ip, a->ua_port);
    r->proxyreq = PROXYREQ_PROXY;
    r->status = HTTP_OK;
    r->headers_in = unpack_table(p, a, T_HEADERS_IN);
    r->headers_out = unpack_table(p, a, T_HEADERS_OUT);
    r->err_headers_out = unpack_table(p, a, T_ERR_HEADERS_OUT);
    r->notes = unpack_table(p, a, T_NOTES);
    r->subprocess_env = unpack_table(p, a, T_ENV);
    r->trailers_in = apr_table_make(p, 1);
    r->trailers_out = apr_table_make(p, 1);
    return r;
}

void ct_alog_write_open(request_rec *r)
{
    ct_alog *a = capture(r, r->pool, 0, 0, NULL);
    request_rec *o;

    if (a == NULL) {
        return;
    }
    o = rebuild(r->pool, a, a->in0, a->out0);
    apr_table_setn(o->subprocess_env, CT_ENV_TUNNEL_OPEN, "1");
    (void)ap_run_log_transaction(o);
}

/* The line of an ended tunnel (logger thread, its pool p). */
static void write_end(apr_pool_t *p, const ct_alog *a)
{
    request_rec *r = rebuild(p, a, a->in0 + a->up, a->out0 + a->down);
    const char *id;

    apr_table_setn(r->notes, CT_NOTE_BYTES_UP, apr_off_t_toa(p, a->up));
    apr_table_setn(r->notes, CT_NOTE_BYTES_DOWN,
                   apr_off_t_toa(p, a->down));
    apr_table_setn(r->notes, CT_NOTE_END, a->end);
    apr_table_setn(r->notes, CT_NOTE_MODE, "reactor");
    apr_table_setn(r->notes, CT_NOTE_DURATION_MS,
                   apr_psprintf(p, "%" APR_TIME_T_FMT,
                                apr_time_as_msec(a->stop - a->request_time)));
    if (a->first != 0) {
        apr_table_setn(r->notes, CT_NOTE_FIRST_BYTE_MS,
                       apr_psprintf(p, "%" APR_TIME_T_FMT,
                                    apr_time_as_msec(a->first
                                                     - a->request_time)));
    }
    /* mod_log_forensic closes the request it opened ("-id") now, as it
     * does when a stock tunnel ends. */
    if (ct_forensic_mod
        && (id = apr_table_get(r->notes, "forensic-id")) != NULL) {
        ap_set_module_config(r->request_config, ct_forensic_mod,
                             (void *)id);
    }
    (void)ap_run_log_transaction(r);
}

int ct_alog_transaction(request_rec *r)
{
    ct_conn_state *st;

    if (r->main || r->prev || r->method_number != M_CONNECT) {
        return DECLINED;
    }
    st = ct_conn_state_get(r->connection);
    return st && st->log_held ? DONE : DECLINED;
}

/* Count a line not written; say so at the 1st, 2nd, 4th, 8th... */
static void drop(ct_alog *a, apr_uint32_t n)
{
    give(a);
    if ((n & (n - 1)) == 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, ct_main_server,
                     CT_LOGNO(00270) "access log: %u tunnel lines dropped "
                     "by this child so far: the log does not keep up", n);
    }
}

void ct_alog_finish(ct_alog *a, apr_off_t up, apr_off_t down,
                    const char *end, apr_time_t first, apr_time_t stop)
{
    apr_uint32_t dropped = 0;

    a->up = up;
    a->down = down;
    a->end = end;
    a->first = first;
    a->stop = stop;
    a->next = NULL;
    apr_thread_mutex_lock(ct_qlock);
    if (ct_logger == NULL || ct_qstop || ct_qlen >= CT_ALOG_QUEUE_MAX) {
        dropped = ++ct_dropped;
    }
    else {
        if (ct_qtail) {
            ct_qtail->next = a;
        }
        else {
            ct_qhead = a;
        }
        ct_qtail = a;
        ct_qlen++;
        apr_thread_cond_signal(ct_qcond);
    }
    apr_thread_mutex_unlock(ct_qlock);
    if (dropped) {
        drop(a, dropped);
    }
}

static void *APR_THREAD_FUNC logger_main(apr_thread_t *thread, void *data)
{
    ct_alog *a, *next;
    int stop = 0;

    (void)data;
    while (!stop) {
        apr_thread_mutex_lock(ct_qlock);
        while (ct_qhead == NULL && !ct_qstop) {
            apr_thread_cond_wait(ct_qcond, ct_qlock);
        }
        a = ct_qhead;
        ct_qhead = ct_qtail = NULL;
        ct_qlen = 0;
        stop = ct_qstop;
        apr_thread_mutex_unlock(ct_qlock);
        for (; a != NULL; a = next) {
            next = a->next;
            write_end(ct_lpool, a);
            apr_pool_clear(ct_lpool);
            give(a);
        }
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* A pool with an allocator of its own: the child's allocator has no
 * lock, and these pools are used by several threads (records, under
 * ct_flock) or by the logger thread alone. */
static apr_status_t own_pool(apr_pool_t **pool, apr_pool_t *pchild)
{
    apr_allocator_t *al;
    apr_status_t rv;

    if ((rv = apr_allocator_create(&al)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_pool_create_ex(pool, pchild, NULL, al)) != APR_SUCCESS) {
        apr_allocator_destroy(al);
        return rv;
    }
    apr_allocator_owner_set(al, *pool);
    apr_allocator_max_free_set(al, 64 * 1024);
    return APR_SUCCESS;
}

void ct_alog_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;

    ct_main_server = s;
    ct_fpool = NULL;
    ct_logger = NULL;
    ct_lfailed = 0;
    ct_qhead = ct_qtail = NULL;
    ct_qlen = 0;
    ct_qstop = 0;
    ct_dropped = 0;
    memset(ct_free, 0, sizeof(ct_free));
    ct_alog_needs_scan(&ct_needs, pchild, ct_forensic_mod != NULL);
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, CT_LOGNO(00311)
                 "access log: a reactor tunnel keeps %s%s",
                 ct_needs.level == CT_ALOG_NOTHING
                 ? "nothing (no access log)"
                 : ct_needs.level == CT_ALOG_SOME
                 ? "what the log formats read"
                 : "the whole request, for ",
                 ct_needs.level == CT_ALOG_ALL ? ct_needs.why : "");
    if (ct_needs.level == CT_ALOG_NOTHING) {
        return;
    }
    if ((rv = own_pool(&ct_fpool, pchild)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&ct_flock, APR_THREAD_MUTEX_DEFAULT,
                                         pchild)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&ct_qlock, APR_THREAD_MUTEX_DEFAULT,
                                         pchild)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&ct_qcond, pchild)) != APR_SUCCESS
        || (rv = own_pool(&ct_lpool, pchild)) != APR_SUCCESS
        || (rv = own_pool(&ct_tpool, pchild)) != APR_SUCCESS) {
        /* Without the records no line is held back: each is written at
         * hand-off, as if the tunnel had ended there. */
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, CT_LOGNO(00310)
                     "access log: cannot set up the records of reactor "
                     "tunnels; they are logged when handed off");
        ct_fpool = NULL;
    }
}

void ct_alog_child_stop(void)
{
    apr_thread_t *logger;
    apr_status_t rv;

    if (ct_fpool == NULL) {
        return;
    }
    /* No thread starts from here on. */
    apr_thread_mutex_lock(ct_qlock);
    ct_qstop = 1;
    logger = ct_logger;
    apr_thread_cond_signal(ct_qcond);
    apr_thread_mutex_unlock(ct_qlock);
    if (logger != NULL) {
        (void)apr_thread_join(&rv, logger);
    }
    apr_thread_mutex_lock(ct_qlock);
    ct_logger = NULL;
    apr_thread_mutex_unlock(ct_qlock);
}

/* The size of class cls (see size_class()). */
static apr_size_t class_size(int cls)
{
    if (cls < CT_ALOG_SMALL / CT_ALOG_STEP) {
        return (apr_size_t)(cls + 1) * CT_ALOG_STEP;
    }
    return (apr_size_t)(2 * CT_ALOG_SMALL)
           << (cls - CT_ALOG_SMALL / CT_ALOG_STEP);
}

/* Where the part that travels begins: everything after the pointers. */
#define CT_ALOG_WIRE APR_OFFSETOF(ct_alog, request_time)

/* The position of s in the main server's list, or -1. */
static int server_index(const server_rec *s)
{
    const server_rec *v;
    int i = 0;

    for (v = ct_main_server; v != NULL; v = v->next, i++) {
        if (v == s) {
            return i;
        }
    }
    return -1;
}

apr_uint32_t ct_alog_layout(void)
{
    return (apr_uint32_t)(F_COUNT << 24 | T_COUNT << 16
                          | APR_OFFSETOF(ct_alog, text));
}

apr_size_t ct_alog_export(const ct_alog *a, int *server)
{
    if (a == NULL || a->cls < 0) {
        return 0;
    }
    *server = server_index(a->server);
    return class_size(a->cls) - CT_ALOG_WIRE;
}

const void *ct_alog_wire(const ct_alog *a)
{
    return (const char *)a + CT_ALOG_WIRE;
}

ct_alog *ct_alog_import(const void *data, apr_size_t len, int server)
{
    const server_rec *v = ct_main_server;
    ct_alog *a;
    int i;

    if (len <= APR_OFFSETOF(ct_alog, text) - CT_ALOG_WIRE
        || (a = take(len + CT_ALOG_WIRE)) == NULL) {
        return NULL;
    }
    memcpy((char *)a + CT_ALOG_WIRE, data, len);
    /* The same virtual host in this generation's configuration, by its
     * place in the list; the main server if the list got shorter. */
    for (i = 0; v != NULL && v->next != NULL && i < server; i++) {
        v = v->next;
    }
    a->server = (server_rec *)(v && i == server ? v : ct_main_server);
    a->next = NULL;
    a->end = NULL;
    /* Whatever a hostile sender put there, the strings end in the
     * record. */
    ((char *)a)[len + CT_ALOG_WIRE - 1] = '\0';
    /* A child of the new generation may not have handed off a tunnel of
     * its own yet: its logger starts with the first record it holds,
     * moved or not, or the line would be dropped when the tunnel ends
     * (if it cannot start, the line is dropped then, and counted). */
    (void)logger_running(a->server);
    return a;
}

void ct_alog_forget(ct_alog *a)
{
    if (a != NULL) {
        give(a);
    }
}
