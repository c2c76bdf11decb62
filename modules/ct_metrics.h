/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_metrics.h: the tunnel counters as people and monitoring systems read
 * them: a section of mod_status's page and a handler that serves them in
 * Prometheus's text exposition format.
 */

#ifndef CT_METRICS_H
#define CT_METRICS_H

#include "httpd.h"

/* The handler's name, for SetHandler. */
#define CT_METRICS_HANDLER "connect-tunnel-metrics"

/**
 * mod_status's hook: the tunnel section of the status page.
 */
int ct_metrics_status_hook(request_rec *r, int flags);

/**
 * The handler hook: serve the counters in the text exposition format
 * (version 0.0.4) where SetHandler names CT_METRICS_HANDLER.
 */
int ct_metrics_handler(request_rec *r);

#endif /* CT_METRICS_H */
