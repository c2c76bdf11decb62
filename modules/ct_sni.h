/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_sni.h: ConnectTunnelSNI.  Once the 2xx is out, and before the tunnel
 * relays anything to the origin, the client's first bytes are read and
 * held (not sent on), the TLS ClientHello in them is parsed (ct_tls_hello)
 * and its server_name compared with the CONNECT target.  A refused tunnel
 * is closed with nothing of the client's sent to the origin.
 */

#ifndef CT_SNI_H
#define CT_SNI_H

#include "httpd.h"
#include "http_config.h"

#include "ct_relay.h"
#include "ct_target.h"

/* What the check saw, for the note, the log line and the counters. */
typedef enum {
    CT_SNI_R_MATCH = 0,         /* a server_name that fits the target */
    CT_SNI_R_MISMATCH,          /* a server_name that does not */
    CT_SNI_R_NONE,              /* a ClientHello without server_name */
    CT_SNI_R_NOT_TLS,           /* no TLS handshake record first */
    CT_SNI_R_INVALID,           /* malformed, too big, or cut short */
    CT_SNI_R_TIMEOUT,           /* no whole ClientHello in time */
    CT_SNI_RESULTS
} ct_sni_result;

/**
 * Whether the request's configuration asks for a check (not Off): the
 * one test an unchecked tunnel pays.
 */
int ct_sni_wanted(request_rec *r);

/**
 * Read the client's ClientHello into the tunnel's held bytes (sent to
 * the origin first once the tunnel relays) and judge it by the mode.
 * Sets the notes, counts the result, logs a refusal.
 * @param target the CONNECT target as the client asked for it
 * @return CT_END_NONE when the tunnel may relay; CT_END_SNI when it is
 *         refused; CT_END_CLIENT_ERROR when reading the client failed
 */
ct_end ct_sni_check(request_rec *r, ct_tunnel *t, const ct_target *target);

/**
 * The name of result i (below CT_SNI_RESULTS), for notes and metrics.
 */
const char *ct_sni_result_name(int i);

/**
 * ConnectTunnelSNI Off|Log|Match|Require.
 */
const char *ct_sni_set_mode(cmd_parms *cmd, void *dconf, const char *arg);

/**
 * ConnectTunnelSNITimeout.
 */
const char *ct_sni_set_timeout(cmd_parms *cmd, void *dconf,
                               const char *arg);

#endif /* CT_SNI_H */
