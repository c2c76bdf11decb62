/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_origin.h: the next hop of a tunnel, the origin itself or an upstream
 * proxy named by ProxyRemote: resolve, connect within a timeout and, when
 * chaining, ask the upstream for its own tunnel.
 */

#ifndef CT_ORIGIN_H
#define CT_ORIGIN_H

#include "httpd.h"
#include "mod_proxy.h"

#include "ct_target.h"
#include "ct_policy.h"

/* Largest reply head accepted from an upstream proxy. */
#define CT_UPSTREAM_HEAD_MAX 8192

/* The destination rules that apply to one tunnel. */
typedef struct {
    const apr_array_header_t *rules;    /* ct_rule, may be NULL */
    const char *name;           /* the target's name; NULL for a literal */
    int default_deny;           /* the built-in guard applies */
    int decided;                /* the rules allowed it already: only the
                                 * guard (if it applies) checks addresses */
} ct_dest_policy;

/* The bounds of one set-up (everything before the 200). */
typedef struct {
    apr_interval_time_t step;   /* one connect, one read of the upstream */
    apr_interval_time_t budget; /* the whole set-up (the log quotes it) */
    apr_time_t deadline;        /* when the budget runs out */
    apr_sockaddr_t *bind;       /* source address (ConnectTunnelBind), or
                                 * NULL */
} ct_setup;

typedef struct {
    apr_socket_t *sock;         /* connected, blocking with a timeout */
    apr_sockaddr_t *addr;       /* the address dialled */
    apr_port_t local_port;      /* our end of it */
    apr_sockaddr_t *local;      /* the same, with its address, or NULL */
    /* When each step of the set-up completed, or 0 where it did not. */
    apr_time_t resolved;        /* the next hop's name resolved */
    apr_time_t connected;       /* its connection established */
    apr_time_t replied;         /* the upstream proxy's 2xx head read */
    const char *upstream;       /* "host:port" of the upstream, or NULL */
    const char *early;          /* bytes the upstream sent after its 2xx */
    apr_size_t early_len;
} ct_origin;

/**
 * Warn where a ProxyRemote URL asks for TLS to an upstream proxy, which
 * tunnels reach in plain HTTP (post_config).
 */
void ct_origin_check_remotes(server_rec *s);

/**
 * Open the connection a tunnel to t will use.  For a direct connection
 * every resolved address is checked against the destination rules and
 * only those allowed are dialled, at most CT_MAX_ADDRESSES of them, IPv6
 * and IPv4 taking turns and raced as RFC 8305 says (see ct_dial_race();
 * what is checked is what is dialled: nothing is resolved twice).  A target's name is resolved as an absolute name (see
 * ct_resolve_name()), so the name the rules checked is the one
 * resolved.  ProxyBlock is checked against the resolved addresses too.
 * Each connect and each read of an upstream's reply gets the step
 * timeout or what is left before the deadline, whichever is less; DNS
 * cannot be interrupted, but its time counts.  At the deadline: 504.
 * With a bind address, only the addresses of its family are dialled
 * (502 when there is none).  o's step times are set even on failure, so
 * the caller must clear o before the first call.
 * @param r         the CONNECT request
 * @param pconf     mod_proxy's server configuration
 * @param t         the validated target
 * @param pol       the destination rules for it
 * @param proxyname upstream proxy from ProxyRemote, or NULL for direct
 * @param proxyport its port
 * @param setup     the step timeout and the deadline
 * @param o         filled on success
 * @return OK, or the HTTP status to answer with (the cause is logged and
 *         left in r->notes "error-notes")
 */
int ct_origin_open(request_rec *r, proxy_server_conf *pconf,
                   const ct_target *t, const ct_dest_policy *pol,
                   const char *proxyname, apr_port_t proxyport,
                   const ct_setup *setup, ct_origin *o);

#endif /* CT_ORIGIN_H */
