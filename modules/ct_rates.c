/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_rates.c: the table of rate limiters.  A key lives in one of the
 * CT_RATE_PROBES slots from its home slot; each slot is two words, the
 * key and the limiter, and every change is one compare-and-swap on the
 * limiter word, so children share the table without a lock:
 *
 *   taking:  read the limiter, then the key; if the key is ours, swap the
 *            limiter for its new value.  The swap fails if the slot
 *            changed hands in between, since a slot changes hands only
 *            through its limiter word (below).
 *   giving a slot to a key:  swap the limiter from the value it had
 *            (a full limiter, or a never-used slot) to CT_RATE_BUSY, write
 *            the key, then store the new key's limiter.  A taker who saw
 *            the old limiter fails its swap; one who sees BUSY passes by.
 *
 * A process killed while a slot is BUSY leaves it BUSY; after a second any
 * key may take it again.  Two processes that meet a new key at the same
 * moment may give it two slots; the one found first serves it from then
 * on and the other empties with time: one burst too many, once.
 */

#include <string.h>

#include "apr_atomic.h"

#include "ct_rates.h"

#define CT_MASK (CT_RATE_SLOTS - 1)

/* A slot left BUSY this long was abandoned by a process that died. */
#define CT_RATE_STALE APR_UINT64_C(1000000)

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static apr_uint64_t le64(const unsigned char *b)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--) {
        v = (v << 8) | b[i];
    }
    return v;
}

static void sip_rounds(apr_uint64_t v[4], int n)
{
    while (n-- > 0) {
        v[0] += v[1];
        v[1] = ROTL(v[1], 13) ^ v[0];
        v[0] = ROTL(v[0], 32);
        v[2] += v[3];
        v[3] = ROTL(v[3], 16) ^ v[2];
        v[0] += v[3];
        v[3] = ROTL(v[3], 21) ^ v[0];
        v[2] += v[1];
        v[1] = ROTL(v[1], 17) ^ v[2];
        v[2] = ROTL(v[2], 32);
    }
}

apr_uint64_t ct_siphash(apr_uint64_t k0, apr_uint64_t k1, const void *data,
                        apr_size_t len)
{
    const unsigned char *in = data;
    apr_uint64_t v[4], last;
    apr_size_t i, rest = len & 7;

    v[0] = k0 ^ APR_UINT64_C(0x736f6d6570736575);
    v[1] = k1 ^ APR_UINT64_C(0x646f72616e646f6d);
    v[2] = k0 ^ APR_UINT64_C(0x6c7967656e657261);
    v[3] = k1 ^ APR_UINT64_C(0x7465646279746573);
    for (i = 0; i + 8 <= len; i += 8) {
        apr_uint64_t m = le64(in + i);

        v[3] ^= m;
        sip_rounds(v, 2);
        v[0] ^= m;
    }
    last = (apr_uint64_t)(len & 0xff) << 56;
    while (rest-- > 0) {
        last |= (apr_uint64_t)in[i + rest] << (8 * rest);
    }
    v[3] ^= last;
    sip_rounds(v, 2);
    v[0] ^= last;
    v[2] ^= 0xff;
    sip_rounds(v, 4);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

void ct_rate_init(ct_rate_table *t, const unsigned char *secret)
{
    memset(t, 0, sizeof(*t));
    t->k0 = le64(secret);
    t->k1 = le64(secret + 8);
}

apr_uint64_t ct_rate_key(const ct_rate_table *t, const void *data,
                         apr_size_t len)
{
    apr_uint64_t h = ct_siphash(t->k0, t->k1, data, len);

    return h != 0 ? h : 1;
}

static ct_rate_slot *slot_of(ct_rate_table *t, apr_uint64_t key, int i)
{
    return &t->slots[(apr_uint32_t)(key + (apr_uint64_t)i) & CT_MASK];
}

/* Whether a slot whose limiter word is tat may serve another key. */
static int reusable(apr_uint64_t tat, apr_uint64_t now)
{
    if (tat & CT_RATE_BUSY) {
        return now > (tat & ~CT_RATE_BUSY) + CT_RATE_STALE;
    }
    return tat <= now;
}

/*
 * Take a unit from slot s if it is key's: 1 taken, 0 refused (*wait
 * set), -1 not key's slot (or changing hands).
 */
static int take_at(ct_rate_slot *s, apr_uint64_t key,
                   const ct_bucket_conf *c, apr_uint64_t now,
                   apr_uint64_t *wait)
{
    for (;;) {
        apr_uint64_t old = apr_atomic_read64(&s->tat), mine = old;

        /* The limiter before the key: see the comment at the top. */
        if ((old & CT_RATE_BUSY) || apr_atomic_read64(&s->key) != key) {
            return -1;
        }
        if (ct_bucket_take(c, &mine, now, 1, 1) == 0) {
            *wait = ct_bucket_wait(c, old, now, 1);
            return 0;
        }
        if (apr_atomic_cas64(&s->tat, mine, old) == old) {
            return 1;
        }
    }
}

/* Give slot s, whose limiter word was old, to key with one unit taken. */
static int claim(ct_rate_slot *s, apr_uint64_t old, apr_uint64_t key,
                 const ct_bucket_conf *c, apr_uint64_t now)
{
    apr_uint64_t fresh = 0;

    if (apr_atomic_cas64(&s->tat, CT_RATE_BUSY | now, old) != old) {
        return 0;
    }
    apr_atomic_set64(&s->key, key);
    (void)ct_bucket_take(c, &fresh, now, 1, 1);
    apr_atomic_set64(&s->tat, fresh);
    return 1;
}

/* Forget the limiter nearest to full among key's slots, for key. */
static int evict(ct_rate_table *t, apr_uint64_t key,
                 const ct_bucket_conf *c, apr_uint64_t now)
{
    ct_rate_slot *best = NULL;
    apr_uint64_t best_tat = 0;
    int i;

    for (i = 0; i < CT_RATE_PROBES; i++) {
        ct_rate_slot *s = slot_of(t, key, i);
        apr_uint64_t tat = apr_atomic_read64(&s->tat);

        if (!(tat & CT_RATE_BUSY) && (best == NULL || tat < best_tat)) {
            best = s;
            best_tat = tat;
        }
    }
    if (best == NULL || !claim(best, best_tat, key, c, now)) {
        return 0;
    }
    apr_atomic_inc64(&t->evicted);
    return 1;
}

int ct_rate_take(ct_rate_table *t, apr_uint64_t key, const ct_bucket_conf *c,
                 apr_uint64_t now, apr_uint64_t *wait)
{
    int i, r, tries;

    /* Bounded: every failed round means another process changed one of
     * these slots meanwhile; past that, let the tunnel through. */
    for (tries = 0; tries < 4; tries++) {
        for (i = 0; i < CT_RATE_PROBES; i++) {
            if ((r = take_at(slot_of(t, key, i), key, c, now, wait)) >= 0) {
                return r;
            }
        }
        for (i = 0; i < CT_RATE_PROBES; i++) {
            ct_rate_slot *s = slot_of(t, key, i);
            apr_uint64_t tat = apr_atomic_read64(&s->tat);

            if (reusable(tat, now) && claim(s, tat, key, c, now)) {
                return 1;
            }
        }
        if (evict(t, key, c, now)) {
            return 1;
        }
    }
    return 1;
}

void ct_rate_give(ct_rate_table *t, apr_uint64_t key,
                  const ct_bucket_conf *c)
{
    int i;

    for (i = 0; i < CT_RATE_PROBES; i++) {
        ct_rate_slot *s = slot_of(t, key, i);
        apr_uint64_t old = apr_atomic_read64(&s->tat);

        if (!(old & CT_RATE_BUSY) && apr_atomic_read64(&s->key) == key) {
            ct_bucket_give_shared(c, &s->tat, 1);
            return;
        }
    }
}
