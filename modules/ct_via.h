/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_via.h: this proxy's own Via entry and its instance token.
 */

#ifndef CT_VIA_H
#define CT_VIA_H

#include "httpd.h"

/**
 * Make up (at the first start) or find again (after a restart) the random
 * token that sets this instance's Via entries apart from another proxy's
 * with the same name; kept in the process pool.
 */
apr_status_t ct_via_instance_init(apr_pool_t *process_pool);

/**
 * This proxy's received-by in Via for r: the server's name, the port r
 * arrived on and the instance token.
 */
const char *ct_via_name(request_rec *r);

/**
 * The Via value to send the upstream proxy for r: the client's entries,
 * then this proxy's own (RFC 9110 section 7.6.3).
 */
const char *ct_via_value(request_rec *r);

#endif /* CT_VIA_H */
