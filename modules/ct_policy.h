/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_policy.h: which destinations a tunnel may reach.  Rules are parsed
 * once at configuration time into the form the request path matches
 * against.  APR only, so unit tests and the fuzzer can use it directly.
 */

#ifndef CT_POLICY_H
#define CT_POLICY_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_network_io.h"

/* An inclusive range of destination ports, as AllowCONNECT lists them. */
typedef struct {
    apr_port_t first;
    apr_port_t last;
} ct_port_range;

/**
 * Parse one AllowCONNECT argument: "N", "N-M" (1 <= N <= M <= 65535) or
 * "all".
 * @return NULL on success, else an error message allocated from p
 */
const char *ct_port_range_parse(apr_pool_t *p, const char *arg,
                                ct_port_range *out);

/**
 * Whether port falls in any of the ranges (an array of ct_port_range).
 */
int ct_ports_allow(const apr_array_header_t *ranges, apr_port_t port);

#endif /* CT_POLICY_H */
