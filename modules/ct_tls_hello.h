/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_tls_hello.h: reads a TLS ClientHello out of the first bytes a client
 * sends into its tunnel, without decrypting anything and without OpenSSL,
 * to learn the server_name (SNI) and the ALPN protocols it asks for.
 * APR only, so the unit tests and the fuzzer can use it without a server.
 *
 * The caller keeps the bytes it has seen so far (peeked, not consumed) and
 * calls ct_tls_hello_parse() on all of them each time more arrive.  The
 * parser is stateless; it walks the record headers first, so a call on an
 * incomplete hello costs a few bytes per record, not a full parse.
 */

#ifndef CT_TLS_HELLO_H
#define CT_TLS_HELLO_H

#include "apr_pools.h"

/* Default bound on the bytes read ahead for a ClientHello. */
#define CT_HELLO_LIMIT_DEFAULT 16384

typedef enum {
    CT_HELLO_DONE = 0,      /* a whole ClientHello was parsed */
    CT_HELLO_NEED_MORE,     /* a ClientHello so far; more bytes are needed */
    CT_HELLO_NOT_TLS,       /* the first bytes are not a TLS handshake record */
    CT_HELLO_MALFORMED,     /* TLS records, but not a well-formed ClientHello */
    CT_HELLO_TOO_BIG        /* the hello's records go beyond the limit */
} ct_hello_status;

typedef struct {
    /* server_name's host_name, NUL-terminated, as sent; NULL when absent */
    const char *sni;
    /* ALPN protocol names joined by ",", NUL-terminated; NULL when absent */
    const char *alpn;
    /* the encrypted_client_hello extension is present: sni is then the
     * outer (public) name, not the name the client really wants */
    int ech;
    /* legacy_version of the record and of the hello (e.g. 0x0303) */
    unsigned int record_version;
    unsigned int hello_version;
    /* bytes of input the records holding the hello take */
    apr_size_t consumed;
} ct_hello_info;

/*
 * Looks at buf[0..len) (never beyond limit bytes of it).  Fills *info and
 * allocates its strings from p only when the result is CT_HELLO_DONE, so a
 * caller that calls again as bytes arrive does not grow p.
 */
ct_hello_status ct_tls_hello_parse(apr_pool_t *p, const unsigned char *buf,
                                   apr_size_t len, apr_size_t limit,
                                   ct_hello_info *info);

/* A short, fixed description of a status, for log lines. */
const char *ct_tls_hello_status_str(ct_hello_status st);

#endif /* CT_TLS_HELLO_H */
