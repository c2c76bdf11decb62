/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_dial.h: connecting to one of the next hop's addresses, racing them
 * the way RFC 8305 ("Happy Eyeballs Version 2") describes, so that a
 * broken path to one address family costs a quarter of a second rather
 * than a whole connect timeout.
 */

#ifndef CT_DIAL_H
#define CT_DIAL_H

#include "httpd.h"
#include "mod_proxy.h"

#include "ct_origin.h"

/*
 * RFC 8305 section 5, the Connection Attempt Delay: how long an attempt
 * has on its own before the next address is tried beside it (the RFC
 * recommends 250 ms).  An attempt that fails sooner starts the next one
 * at once.
 */
#define CT_ATTEMPT_DELAY apr_time_from_msec(250)

/* Outcome of trying the addresses of the next hop. */
typedef enum {
    CT_DIAL_OK = 0,
    CT_DIAL_REFUSED,            /* none timed out, one or more refused */
    CT_DIAL_UNREACHABLE,        /* none timed out, none refused */
    CT_DIAL_TIMEOUT,            /* one or more timed out */
    CT_DIAL_DEADLINE            /* the set-up's deadline ran out */
} ct_dial_outcome;

/**
 * Connect to one of addrs (already checked, capped and in the order of
 * ct_hop_interleave()).  Attempts start CT_ATTEMPT_DELAY apart, or at
 * once when none is in flight; each gets setup->step from its start or
 * what is left before setup->deadline, whichever is less.  The first to
 * connect wins and the others are closed at once.  Each socket is bound
 * to setup->bind, or to ProxySourceAddress where its family matches.
 * @param r     the CONNECT request (its pool holds the sockets)
 * @param pconf mod_proxy's server configuration
 * @param addrs the addresses to try
 * @param setup the step timeout, the deadline and the bind address
 * @param sock  on CT_DIAL_OK: connected, blocking with a timeout
 * @param addr  on CT_DIAL_OK: the address it is connected to
 */
ct_dial_outcome ct_dial_race(request_rec *r, proxy_server_conf *pconf,
                             apr_sockaddr_t *addrs, const ct_setup *setup,
                             apr_socket_t **sock, apr_sockaddr_t **addr);

#endif /* CT_DIAL_H */
