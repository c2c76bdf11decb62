/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_policy.c: destination rules.  AllowCONNECT's port ranges are
 * validated here at startup (stock accepts "0", "70000" and inverted ranges
 * silently), so a bad value stops the server with a message that names it.
 */

#include "apr_strings.h"
#include "apr_lib.h"

#include "ct_policy.h"

/* Parse a port of 1-65535 written in plain decimal; 0 on error. */
static apr_port_t parse_port(const char *s, apr_size_t len)
{
    apr_uint32_t value = 0;
    apr_size_t i;

    if (len == 0 || len > 5 || s[0] == '0') {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (!apr_isdigit(s[i])) {
            return 0;
        }
        value = value * 10 + (apr_uint32_t)(s[i] - '0');
    }
    return value > 65535 ? 0 : (apr_port_t)value;
}

const char *ct_port_range_parse(apr_pool_t *p, const char *arg,
                                ct_port_range *out)
{
    const char *dash = strchr(arg, '-');

    if (strcasecmp(arg, "all") == 0) {
        out->first = 1;
        out->last = 65535;
        return NULL;
    }
    if (dash == NULL) {
        out->first = out->last = parse_port(arg, strlen(arg));
    }
    else {
        out->first = parse_port(arg, (apr_size_t)(dash - arg));
        out->last = parse_port(dash + 1, strlen(dash + 1));
    }
    if (out->first == 0 || out->last == 0) {
        return apr_psprintf(p, "'%s' is not a port or range of ports "
                            "from 1 to 65535 (or 'all')", arg);
    }
    if (out->first > out->last) {
        return apr_psprintf(p, "'%s' is an empty range: the first port "
                            "is above the last", arg);
    }
    return NULL;
}

int ct_ports_allow(const apr_array_header_t *ranges, apr_port_t port)
{
    const ct_port_range *list = (const ct_port_range *)ranges->elts;
    int i;

    for (i = 0; i < ranges->nelts; i++) {
        if (port >= list[i].first && port <= list[i].last) {
            return 1;
        }
    }
    return 0;
}
