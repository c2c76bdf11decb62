/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_via.c: this proxy's own Via entry.  A random instance token, made up
 * once per server and kept across restarts, sets it apart from another
 * proxy with the same name, so that a CONNECT that comes back through a
 * ProxyRemote chain is recognised as a loop (ct_hop.c reads the entries).
 */

#include "apr_strings.h"

#include "httpd.h"
#include "http_protocol.h"

#include "ct_private.h"
#include "ct_hop.h"
#include "ct_via.h"

/* The instance's Via token (hex), set at startup. */
static const char *ct_instance;

#define CT_INSTANCE_KEY "connect_tunnel_instance"

apr_status_t ct_via_instance_init(apr_pool_t *process_pool)
{
    unsigned char raw[CT_INSTANCE_BYTES];
    char *hex;
    void *data = NULL;
    apr_status_t rv;
    int i;

    /* The process pool outlives restarts: so does the token, and a loop
     * that spans a graceful restart is still recognised. */
    apr_pool_userdata_get(&data, CT_INSTANCE_KEY, process_pool);
    if (data != NULL) {
        ct_instance = data;
        return APR_SUCCESS;
    }
    if ((rv = apr_generate_random_bytes(raw, sizeof(raw))) != APR_SUCCESS) {
        return rv;
    }
    hex = apr_palloc(process_pool, 2 * sizeof(raw) + 1);
    for (i = 0; i < (int)sizeof(raw); i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    ct_instance = hex;
    return apr_pool_userdata_set(hex, CT_INSTANCE_KEY, apr_pool_cleanup_null,
                                 process_pool);
}

const char *ct_via_name(request_rec *r)
{
    apr_port_t port = r->connection->local_addr
                      ? r->connection->local_addr->port : 0;

    return ct_hop_pseudonym(r->pool, r->server->server_hostname, port,
                            ct_instance ? ct_instance : "0");
}

/*
 * The Via value for the upstream: the client's, then our own entry
 * (RFC 9110 7.6.3), by which a CONNECT that comes back is recognised.
 */
const char *ct_via_value(request_rec *r)
{
    const char *theirs = apr_table_get(r->headers_in, "Via");
    const char *ours;

    ours = r->proto_num >= HTTP_VERSION(2, 0)
           ? apr_psprintf(r->pool, "%d %s", HTTP_VERSION_MAJOR(r->proto_num),
                          ct_via_name(r))
           : apr_psprintf(r->pool, "1.%d %s",
                          HTTP_VERSION_MINOR(r->proto_num),
                          ct_via_name(r));
    return theirs && *theirs ? apr_pstrcat(r->pool, theirs, ", ", ours, NULL)
                             : ours;
}
