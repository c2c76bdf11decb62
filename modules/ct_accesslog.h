/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_accesslog.h: the access-log line of a tunnel a reactor carries.
 * httpd logs a request when its handler returns; a handed-off tunnel
 * goes on long after that.  Its line is held back at hand-off, and what
 * the log needs of the request is kept in one compact record; when the
 * tunnel ends a request is rebuilt from it and passed to the server's own
 * log_transaction hooks (CustomLog, mod_logio, mod_log_forensic...) by a
 * logger thread, so that a slow log never stops a reactor.
 */

#ifndef CT_ACCESSLOG_H
#define CT_ACCESSLOG_H

#include "httpd.h"

/* Set in subprocess_env of the record written when a tunnel opens
 * (ConnectTunnelLogOpen), for CustomLog's env= condition. */
#define CT_ENV_TUNNEL_OPEN "tunnel-open"

/* What the access log needs of one request, kept while its tunnel runs. */
typedef struct ct_alog ct_alog;

/**
 * Find mod_logio, mod_log_forensic and mod_logio's optional functions
 * (optional_fn_retrieve).
 */
void ct_alog_init(void);

/**
 * Keep what the access log needs of r for the line written when its
 * tunnel ends.  early_len: client bytes mod_logio counted already that
 * the reactor sends (and counts) later; up, down: payload the worker
 * moved, part of the totals given to ct_alog_finish().
 * @return the record, or NULL when it cannot be had (then the line is
 *         written at hand-off, as if the tunnel had ended there)
 */
ct_alog *ct_alog_capture(request_rec *r, apr_size_t early_len,
                         apr_off_t up, apr_off_t down);

/**
 * The tunnel ended: queue its line for the logger thread, with the
 * payload bytes the reactor moved each way, why it ended (a static
 * string), when the origin's first byte came (0: never) and when it
 * ended.  Never blocks; the record is the logger's from the call on.
 */
void ct_alog_finish(ct_alog *a, apr_off_t up, apr_off_t down,
                    const char *end, apr_time_t first, apr_time_t stop);

/**
 * Write the record of a tunnel that has just opened (ConnectTunnelLogOpen
 * On) through the server's log_transaction hooks, marked with the
 * tunnel-open variable; r itself is left as it was.
 */
void ct_alog_write_open(request_rec *r);

/**
 * log_transaction hook, run first: hold back the line of a request whose
 * tunnel went to a reactor.
 */
int ct_alog_transaction(request_rec *r);

/**
 * Start this child's logger thread (child_init, once reactors run).
 */
void ct_alog_child_init(apr_pool_t *pchild, server_rec *s);

/**
 * Write what is queued and stop the logger thread (after the reactors
 * stopped, before the child's logs are flushed and closed).
 */
void ct_alog_child_stop(void);

/* Moving a record to another child process with its tunnel. */

/**
 * A number that changes with the record's layout: both processes must
 * agree on it (a graceful restart may load another build).
 */
apr_uint32_t ct_alog_layout(void);

/**
 * The length of a's part that travels (0: nothing to send), and in
 * *server the position of its virtual host in the server list.
 */
apr_size_t ct_alog_export(const ct_alog *a, int *server);

/**
 * Where a's travelling part begins.
 */
const void *ct_alog_wire(const ct_alog *a);

/**
 * A record rebuilt from len bytes another child exported, or NULL.
 */
ct_alog *ct_alog_import(const void *data, apr_size_t len, int server);

/**
 * Give back a record that moved away (its line is the receiver's).
 */
void ct_alog_forget(ct_alog *a);

#endif /* CT_ACCESSLOG_H */
