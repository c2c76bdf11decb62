/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_private.h: what every file of mod_connect_tunnel's inside shares, the
 * module's log identity and its message tags.  Every message at debug level
 * or above carries a tag "CTnnnnn: " so an admin can grep for it; httpd's
 * own AH numbers belong to httpd.
 */

#ifndef CT_PRIVATE_H
#define CT_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

APLOG_USE_MODULE(connect_tunnel);

/* A unique log tag in our own namespace: CT_LOGNO(nnnnn) gives "CTnnnnn: ". */
#define CT_LOGNO(n) "CT" #n ": "

#endif /* CT_PRIVATE_H */
