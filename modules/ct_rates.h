/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_rates.h: a fixed-size table of rate limiters (ct_bucket.h) kept in a
 * block the caller supplies (shared memory), one per key (a client, a
 * destination host), used by several processes without a lock.  A key
 * keeps its limiter while it has no tunnel open: the table forgets a key
 * only when its limiter is full again, which is the same as never having
 * seen it.  APR only, so that it is unit-tested without a server.
 */

#ifndef CT_RATES_H
#define CT_RATES_H

#include "apr.h"

#include "ct_bucket.h"

/* Slots in a table: a power of two. */
#define CT_RATE_SLOTS 16384

/* Slots a key may use, from its home slot on: two cache lines. */
#define CT_RATE_PROBES 8

/* One limiter: key 0 is a slot never used.  While a process gives the
 * slot to another key, tat holds CT_RATE_BUSY and the time it began. */
typedef struct {
    volatile apr_uint64_t key;
    volatile apr_uint64_t tat;
} ct_rate_slot;

#define CT_RATE_BUSY APR_UINT64_C(0x8000000000000000)

typedef struct {
    apr_uint64_t k0, k1;        /* the hash's secret key */
    volatile apr_uint64_t evicted;  /* limiters forgotten before full */
    ct_rate_slot slots[CT_RATE_SLOTS];
} ct_rate_table;

/**
 * SipHash-2-4 of len bytes at data under the key (k0, k1): a keyed hash
 * whose collisions cannot be found without the key.
 */
apr_uint64_t ct_siphash(apr_uint64_t k0, apr_uint64_t k1, const void *data,
                        apr_size_t len);

/**
 * Empty the table and key its hash with the 16 bytes at secret.
 */
void ct_rate_init(ct_rate_table *t, const unsigned char *secret);

/**
 * The key of len bytes at data in table t (never 0).  Two things share a
 * limiter only if their 64-bit keyed hashes are equal.
 */
apr_uint64_t ct_rate_key(const ct_rate_table *t, const void *data,
                         apr_size_t len);

/**
 * Take one unit from the limiter of key, at time now (microseconds).
 * When every slot key may use holds a limiter that is not full, the one
 * nearest to full is forgotten (its key gets its whole burst again) and
 * t->evicted counts it.
 * @param wait receives, when refused, the microseconds until a unit
 * @return 1 when taken, 0 when the limiter is empty
 */
int ct_rate_take(ct_rate_table *t, apr_uint64_t key, const ct_bucket_conf *c,
                 apr_uint64_t now, apr_uint64_t *wait);

/**
 * Give back a unit ct_rate_take() gave key a moment ago.
 */
void ct_rate_give(ct_rate_table *t, apr_uint64_t key,
                  const ct_bucket_conf *c);

#endif /* CT_RATES_H */
