/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_resolve.h: this host's own addresses, the hosts file's names, the
 * name given to the resolver and the rules' verdict on an address.
 */

#ifndef CT_RESOLVE_H
#define CT_RESOLVE_H

#include "httpd.h"

#include "ct_origin.h"

/**
 * Learn this host's own addresses (every interface's, and those httpd
 * listens on): the built-in guard denies them.
 */
void ct_resolve_local_addresses(apr_pool_t *p, server_rec *s);

/**
 * Learn the names the hosts file lists: they are looked up as written,
 * so that the hosts file answers them; every other name of a target is
 * looked up as an absolute name, out of reach of the resolver's search
 * list.
 */
void ct_resolve_hosts_names(apr_pool_t *p, server_rec *s);

/**
 * The name to give the resolver for t: a name the hosts file lists as
 * written, any other name with a final dot (absolute, never tried below
 * the resolver's search domains), a literal unchanged.
 */
const char *ct_resolve_name(apr_pool_t *p, const ct_target *t);

/**
 * Why the destination rules deny addr (the rule's text, or the guard's
 * set), or NULL when they allow it.
 */
const char *ct_resolve_address_denied(apr_pool_t *p,
                                      const ct_dest_policy *pol,
                                      const ct_net *addr);

#endif /* CT_RESOLVE_H */
