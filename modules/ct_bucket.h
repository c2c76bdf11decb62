/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_bucket.h: a rate limiter held in one 64-bit word, so that children can
 * share it in shared memory and update it with one compare-and-swap, with
 * no lock.  It is the generic cell rate algorithm: the word is the
 * "theoretical arrival time" (TAT), the time at which the limiter would be
 * empty again if nothing more were taken.  Taking n units moves it
 * n / rate seconds later; it may run at most burst / rate seconds ahead of
 * now.  Used for tunnels per second (a unit is a tunnel) and for bandwidth
 * (a unit is a byte).
 */

#ifndef CT_BUCKET_H
#define CT_BUCKET_H

#include "apr.h"
#include "apr_time.h"
#include "apr_atomic.h"

typedef struct {
    apr_uint64_t rate;      /* units per second, > 0 */
    apr_uint64_t burst;     /* units that may be taken at once, > 0 */
} ct_bucket_conf;

/* Microseconds that n units take at the given rate, rounded up so that
 * rounding never lets more than the rate through. */
static APR_INLINE apr_uint64_t ct_bucket_cost(const ct_bucket_conf *c,
                                              apr_uint64_t n)
{
    return (n * APR_USEC_PER_SEC + c->rate - 1) / c->rate;
}

/* Units that may be taken now from a limiter whose word holds tat. */
static APR_INLINE apr_uint64_t ct_bucket_room(const ct_bucket_conf *c,
                                              apr_uint64_t tat,
                                              apr_uint64_t now)
{
    apr_uint64_t window = ct_bucket_cost(c, c->burst);
    apr_uint64_t base = tat > now ? tat : now;

    if (base >= now + window) {
        return 0;
    }
    return (now + window - base) * c->rate / APR_USEC_PER_SEC;
}

/* Microseconds until n units (n <= burst) may be taken; 0 if now. */
static APR_INLINE apr_uint64_t ct_bucket_wait(const ct_bucket_conf *c,
                                              apr_uint64_t tat,
                                              apr_uint64_t now,
                                              apr_uint64_t n)
{
    apr_uint64_t window = ct_bucket_cost(c, c->burst);
    apr_uint64_t base = tat > now ? tat : now;
    apr_uint64_t ready = base + ct_bucket_cost(c, n);

    return ready > now + window ? ready - (now + window) : 0;
}

/*
 * Takes up to want units (at least min_take, else none) from a limiter
 * that only this thread updates.  Returns the units granted.
 */
static APR_INLINE apr_uint64_t ct_bucket_take(const ct_bucket_conf *c,
                                              apr_uint64_t *tat,
                                              apr_uint64_t now,
                                              apr_uint64_t want,
                                              apr_uint64_t min_take)
{
    apr_uint64_t room = ct_bucket_room(c, *tat, now);
    apr_uint64_t grant = want < room ? want : room;

    if (grant == 0 || grant < min_take) {
        return 0;
    }
    *tat = (*tat > now ? *tat : now) + ct_bucket_cost(c, grant);
    return grant;
}

/*
 * The same on a word in shared memory that several processes update:
 * retried with compare-and-swap until no other taker came in between.
 */
static APR_INLINE apr_uint64_t ct_bucket_take_shared(const ct_bucket_conf *c,
                                                     volatile apr_uint64_t *tat,
                                                     apr_uint64_t now,
                                                     apr_uint64_t want,
                                                     apr_uint64_t min_take)
{
    for (;;) {
        apr_uint64_t old = apr_atomic_read64(tat);
        apr_uint64_t mine = old;
        apr_uint64_t grant = ct_bucket_take(c, &mine, now, want, min_take);

        if (grant == 0) {
            return 0;
        }
        if (apr_atomic_cas64(tat, mine, old) == old) {
            return grant;
        }
    }
}

/*
 * Gives back n units taken a moment ago (the taker learnt it must not use
 * them after all): the word moves n / rate seconds earlier, never below
 * 0.  A word already at or before now is full whatever it says, so
 * giving back to it changes nothing that matters.
 */
static APR_INLINE void ct_bucket_give_shared(const ct_bucket_conf *c,
                                             volatile apr_uint64_t *tat,
                                             apr_uint64_t n)
{
    apr_uint64_t cost = ct_bucket_cost(c, n);

    for (;;) {
        apr_uint64_t old = apr_atomic_read64(tat);
        apr_uint64_t mine = old > cost ? old - cost : 0;

        if (apr_atomic_cas64(tat, mine, old) == old) {
            return;
        }
    }
}

/*
 * Charge n units already moved, whatever the room: a taker that moved
 * more than it was granted (several takers raced for one shared word)
 * runs the word ahead, and waits that much longer next time, so the rate
 * holds over time.
 */
static APR_INLINE void ct_bucket_charge(const ct_bucket_conf *c,
                                        apr_uint64_t *tat, apr_uint64_t now,
                                        apr_uint64_t n)
{
    *tat = (*tat > now ? *tat : now) + ct_bucket_cost(c, n);
}

/* The same on a word in shared memory. */
static APR_INLINE void ct_bucket_charge_shared(const ct_bucket_conf *c,
                                               volatile apr_uint64_t *tat,
                                               apr_uint64_t now,
                                               apr_uint64_t n)
{
    for (;;) {
        apr_uint64_t old = apr_atomic_read64(tat);
        apr_uint64_t mine = old;

        ct_bucket_charge(c, &mine, now, n);
        if (apr_atomic_cas64(tat, mine, old) == old) {
            return;
        }
    }
}

#endif /* CT_BUCKET_H */
