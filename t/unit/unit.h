/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * unit.h: what the unit test files share: the pass/fail tally of
 * unit_tests.c and the test groups kept in files of their own.
 */

#ifndef CT_UNIT_H
#define CT_UNIT_H

#include "apr_pools.h"

/* Counts a check; prints what failed, on which input. */
void expect(int ok, const char *what, const char *input);

/* hello_tests.c: the TLS ClientHello reader. */
void test_tls_hello(apr_pool_t *p);

#endif /* CT_UNIT_H */
