/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_config.h: mod_connect_tunnel's configuration records, their "unset"
 * markers and the named defaults the documentation quotes.
 */

#ifndef CT_CONFIG_H
#define CT_CONFIG_H

#include "apr_tables.h"
#include "ap_expr.h"

#include "httpd.h"
#include "http_config.h"

#include "ct_policy.h"

/* AllowCONNECT's default: https (443) and snews (563), as in stock. */
#define CT_DEFAULT_PORT_HTTPS 443
#define CT_DEFAULT_PORT_SNEWS 563

/* Relay read size when ProxyIOBufferSize is not set. */
#define CT_DEFAULT_BUFFER_SIZE (64 * 1024)

/* A flag directive not given in a context. */
#define CT_UNSET -1

/* ConnectTunnelZeroCopy's default: splice(2) where it works. */
#define CT_DEFAULT_ZERO_COPY 1

/* ConnectTunnelConnectTimeout's default when ProxyTimeout is not set. */
#define CT_DEFAULT_CONNECT_TIMEOUT apr_time_from_sec(10)

/* ConnectTunnelSetupTimeout's default: this many connect timeouts, so
 * that one address may time out and the next still be tried. */
#define CT_SETUP_TIMEOUT_FACTOR 3

/* ConnectTunnelDefaultDeny's default: the SSRF guard is on. */
#define CT_DEFAULT_DENY 1

/* ConnectTunnelTrustAllowedNames' default: the guard checks the addresses
 * of names allowed by name too. */
#define CT_DEFAULT_TRUST_NAMES 0

/* ConnectTunnelHandoff's default: idle tunnels leave the workers. */
#define CT_DEFAULT_HANDOFF 1

/* ConnectTunnelReactorThreads' default: one per child, and its most. */
#define CT_DEFAULT_REACTORS 1
#define CT_REACTOR_THREADS_MAX 16

/* The largest count a limit or ConnectTunnelHandoffMax takes. */
#define CT_COUNT_MAX 1000000

/* ConnectTunnelMaxTunnelsPerH2Connection's default: one below the 6
 * streams mod_http2 processes at once on a new connection, so that a
 * further CONNECT still reaches the module and is refused, not queued. */
#define CT_DEFAULT_H2_TUNNELS 5

/* ConnectTunnelClientPrefix's defaults: one IPv4 address, one IPv6 /64
 * (what a single host is commonly given). */
#define CT_DEFAULT_CLIENT_V4_PREFIX 32
#define CT_DEFAULT_CLIENT_V6_PREFIX 64

/* The largest rate (tunnels a second) and burst the rate directives
 * take. */
#define CT_RATE_MAX 1000000

/* ConnectTunnelClientRate and ConnectTunnelDestinationRate: new tunnels
 * a second (CT_UNSET, or 0 for no limit) and the burst (0: the rate). */
typedef struct {
    int rate;
    int burst;
} ct_rate_conf;

/* ConnectTunnelLogOpen's default: the access log has one line per
 * tunnel, written when it ends. */
#define CT_DEFAULT_LOG_OPEN 0

/* Per-server (and virtual host) configuration.  Numbers are CT_UNSET
 * until a directive sets them; 0 means "no limit" where it applies. */
typedef struct {
    int zero_copy;              /* ConnectTunnelZeroCopy */
    /* AllowCONNECT ranges (ct_port_range); NULL when unset, so that a
     * virtual host's list replaces the main server's instead of adding. */
    apr_array_header_t *allow_ports;
    apr_interval_time_t connect_timeout;    /* ConnectTunnelConnectTimeout */
    apr_interval_time_t setup_timeout;      /* ConnectTunnelSetupTimeout */
    apr_interval_time_t idle_timeout;       /* ConnectTunnelIdleTimeout */
    apr_interval_time_t max_lifetime;       /* ConnectTunnelMaxLifetime */
    int max_tunnels;            /* ConnectTunnelMaxTunnels (whole server) */
    int max_per_child;          /* ConnectTunnelMaxTunnelsPerChild */
    int max_per_client;         /* ConnectTunnelMaxTunnelsPerClient */
    int max_per_h2conn;         /* ConnectTunnelMaxTunnelsPerH2Connection */
    int client_v4_bits;         /* ConnectTunnelClientPrefix, IPv4 */
    int client_v6_bits;         /* ConnectTunnelClientPrefix, IPv6 */
    int max_per_dest;           /* ConnectTunnelMaxTunnelsPerDestination */
    ct_rate_conf client_rate;   /* ConnectTunnelClientRate */
    ct_rate_conf dest_rate;     /* ConnectTunnelDestinationRate */
    int handoff;                /* ConnectTunnelHandoff */
    int log_open;               /* ConnectTunnelLogOpen */
    /* ConnectTunnelBandwidth (bw_) and ConnectTunnelClientBandwidth
     * (cbw_), per direction (CT_BW_UP, CT_BW_DOWN), in bytes per second
     * and bytes; a rate of 0 is no limit, a burst of 0 the default. */
    apr_int64_t bw_rate[2];
    apr_int64_t bw_burst[2];
    apr_int64_t cbw_rate[2];
    apr_int64_t cbw_burst[2];
    /* Main server only: */
    int reactors;               /* ConnectTunnelReactorThreads */
    int handoff_max;            /* ConnectTunnelHandoffMax (0: derived) */
    apr_interval_time_t drain;  /* ConnectTunnelDrainTimeout (0: none) */
    int migrate;                /* ConnectTunnelMigrate */
    const char *log;            /* ConnectTunnelLog */
} ct_server_conf;

/* ConnectTunnelProxyAgent's default: the 2xx names the server. */
#define CT_DEFAULT_PROXY_AGENT 1

/* The reason phrase of the 2xx when ConnectTunnelResponseReason is not
 * set (or its value cannot be sent). */
#define CT_DEFAULT_REASON "Connection Established"

/* One ConnectTunnelResponseHeader. */
typedef struct {
    const char *name;
    ap_expr_info_t *value;
} ct_header;

/* ConnectTunnelSNI: what is done with the server_name of the client's
 * TLS ClientHello, read ahead once the 2xx is sent. */
typedef enum {
    CT_SNI_OFF = 0,             /* nothing is read ahead (default) */
    CT_SNI_LOG,                 /* the name is recorded, not checked */
    CT_SNI_MATCH,               /* a name present must fit the target */
    CT_SNI_REQUIRE              /* a fitting name must be present */
} ct_sni_mode;

/* ConnectTunnelSNITimeout's default: how long the client may take to send
 * its ClientHello once the tunnel is established. */
#define CT_DEFAULT_SNI_TIMEOUT apr_time_from_sec(10)

/* Per-directory configuration: the server's defaults and <Proxy>. */
typedef struct {
    /* ConnectTunnelAllow/Deny rules (ct_rule) in the order they are
     * checked: a section's own first, then those it inherits. */
    apr_array_header_t *rules;
    int default_deny;           /* ConnectTunnelDefaultDeny */
    int trust_names;            /* ConnectTunnelTrustAllowedNames */
    /* Expressions evaluated per request; NULL when unset. */
    ap_expr_info_t *address;    /* ConnectTunnelAddress */
    ap_expr_info_t *bind;       /* ConnectTunnelBind */
    ap_expr_info_t *reason;     /* ConnectTunnelResponseReason */
    /* ConnectTunnelResponseHeader (ct_header); NULL when unset, so that
     * an inner section's list replaces the outer one. */
    apr_array_header_t *headers;
    int proxy_agent;            /* ConnectTunnelProxyAgent */
    int sni;                    /* ConnectTunnelSNI (ct_sni_mode) */
    apr_interval_time_t sni_timeout;    /* ConnectTunnelSNITimeout */
} ct_dir_conf;

/**
 * Whether tunnels of this server may use splice(2): configured (or by
 * default) and supported by the system.
 */
int ct_conf_zero_copy(const ct_server_conf *conf);

/**
 * Whether AllowCONNECT, as configured or by default, admits port.
 */
int ct_conf_port_allowed(const ct_server_conf *conf, apr_port_t port);

/**
 * Tunnels one HTTP/2 connection may carry at once (0: no limit).
 */
int ct_conf_h2_tunnels(const ct_server_conf *conf);

/**
 * Whether the built-in SSRF guard applies where no rule decides.
 */
int ct_conf_default_deny(const ct_dir_conf *dconf);

/**
 * Whether a name allowed by a host or domain rule is dialled without the
 * guard checking what it resolves to.
 */
int ct_conf_trust_names(const ct_dir_conf *dconf);

/**
 * create_server_config: every field unset (CT_UNSET, or NULL).
 */
void *ct_conf_create_server(apr_pool_t *p, server_rec *s);

/**
 * merge_server_config: a fresh record, each field the virtual host's if
 * set, else the main server's; a virtual host's AllowCONNECT list
 * replaces the main server's.
 */
void *ct_conf_merge_server(apr_pool_t *p, void *basev, void *addv);

/**
 * create_dir_config: no rules, the flags unset.
 */
void *ct_conf_create_dir(apr_pool_t *p, char *dir);

/**
 * merge_dir_config: the inner section's rules first, then the outer
 * ones; each flag the inner section's if set.
 */
void *ct_conf_merge_dir(apr_pool_t *p, void *basev, void *addv);

/**
 * Parse a whole number from 0 to max for the directive cmd into *out.
 * @param zero what 0 means, for the error message
 * @return NULL, or an error naming the directive and the value
 */
const char *ct_conf_parse_count(cmd_parms *cmd, const char *arg, long max,
                                const char *zero, int *out);

/**
 * Parse a time (seconds, or a number with ms, s, mi or h) for the
 * directive cmd into *out; zero_ok when 0 means "never".
 * @return NULL, or an error naming the directive and the value
 */
const char *ct_conf_parse_time(cmd_parms *cmd, const char *arg,
                               int zero_ok, apr_interval_time_t *out);

/**
 * ConnectTunnelClientRate and ConnectTunnelDestinationRate: "rate
 * [burst]" into the ct_rate_conf at the offset cmd->info.
 */
const char *ct_conf_set_rate(cmd_parms *cmd, void *dummy, const char *rate,
                             const char *burst);

/**
 * Whether any server (the main one or a virtual host) hands tunnels off
 * to reactors: then each child runs them.
 */
int ct_conf_any_handoff(server_rec *s);

#endif /* CT_CONFIG_H */
