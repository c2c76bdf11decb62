/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_hop.h: the bounds of setting up the next hop (one deadline, a cap on
 * the addresses tried) and this proxy's entry in Via, which is how a
 * forwarding loop is recognised.  APR only, so that the unit tests reach
 * it without a server.
 */

#ifndef CT_HOP_H
#define CT_HOP_H

#include "apr_pools.h"
#include "apr_network_io.h"
#include "apr_time.h"

/* Most addresses of one next hop that are dialled. */
#define CT_MAX_ADDRESSES 16

/* Bytes of random in the per-instance part of our Via entry. */
#define CT_INSTANCE_BYTES 8

/**
 * Reorder addrs as RFC 8305 section 4 asks: an IPv6 address first (where
 * there is one), then the families taking turns, each family's addresses
 * in the order they came; what is left of one family when the other runs
 * out follows at the end.
 * @param addrs the list, reordered in place
 */
void ct_hop_interleave(apr_sockaddr_t **addrs);

/**
 * Keep the first max records of the list addrs, drop the rest.
 * @return how many were dropped
 */
int ct_hop_cap_addresses(apr_sockaddr_t *addrs, int max);

/**
 * The timeout of one step of the set-up (a connect, a read): the step's
 * own limit, or what is left before deadline if that is less.
 * @return the timeout, or 0 when the deadline has passed
 */
apr_interval_time_t ct_hop_step_timeout(apr_interval_time_t step,
                                        apr_time_t deadline, apr_time_t now);

/**
 * This proxy's received-by pseudonym in Via (RFC 9110 7.6.3), one per
 * name and port of a server of this instance: "<name>-<port>-<token>",
 * characters of the name outside a token's set replaced by '-'.
 * @param name  the server's name (ServerName), may be NULL
 * @param port  the port the request arrived on
 * @param token the instance's random token (hex)
 */
const char *ct_hop_pseudonym(apr_pool_t *p, const char *name,
                             apr_port_t port, const char *token);

/**
 * Whether a Via field value (a list of "protocol received-by [comment]"
 * members) names received_by, case-insensitively; comments are skipped.
 */
int ct_hop_via_has(const char *via, const char *received_by);

/**
 * Whether a response head (lines ending in CRLF) carries a Proxy-Status
 * field reporting a forwarding loop (error=proxy_loop_detected).
 */
int ct_hop_head_reports_loop(const char *head);

#endif /* CT_HOP_H */
