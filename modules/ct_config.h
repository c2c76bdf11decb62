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

/* Per-server (and virtual host) configuration. */
typedef struct {
    int zero_copy;              /* ConnectTunnelZeroCopy, or CT_UNSET */
    /* AllowCONNECT ranges (ct_port_range); NULL when unset, so that a
     * virtual host's list replaces the main server's instead of adding. */
    apr_array_header_t *allow_ports;
} ct_server_conf;

/**
 * Whether tunnels of this server may use splice(2): configured (or by
 * default) and supported by the system.
 */
int ct_conf_zero_copy(const ct_server_conf *conf);

/**
 * Whether AllowCONNECT, as configured or by default, admits port.
 */
int ct_conf_port_allowed(const ct_server_conf *conf, apr_port_t port);

#endif /* CT_CONFIG_H */
