/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_config.c: reading the configuration records, defaults applied, so
 * the request path never deals with "unset".
 */

#include "ct_config.h"
#include "ct_splice.h"

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
