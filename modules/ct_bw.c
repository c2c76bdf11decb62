/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_bw.c: the bandwidth limiter the relays call, and the client table
 * its shared budgets live in.  A direction reads only when its own
 * budget and its client's both have room for at least the minimum chunk,
 * reads no more than the smaller room, and charges what it read; the
 * charge is unconditional, so a tunnel that raced another of its client's
 * for the same room runs the shared word ahead and waits the longer next
 * time: over time the rate holds.  The client table needs no lock: an
 * entry is one word (id and tunnel count) changed by compare-and-swap,
 * and never moves while a tunnel holds it.  An entry whose client moved
 * nothing for CT_BW_STALE may be taken by another client when no other
 * slot is free (a killed child leaves counts behind that no tunnel gives
 * back); the quiet client's tunnels notice at their next read and join
 * an entry anew.
 */

#include "apr_atomic.h"
#include "apr_lib.h"

#include "ct_bw.h"

/* The tunnel count's bits in a slot's word; the client id has the rest. */
#define CT_BW_COUNT_BITS 24
#define CT_BW_COUNT_MASK ((APR_UINT64_C(1) << CT_BW_COUNT_BITS) - 1)

static apr_uint64_t id_part(apr_uint64_t id);
static void rejoin(ct_bw *bw, apr_time_t now);

static apr_uint64_t min64(apr_uint64_t a, apr_uint64_t b)
{
    return a < b ? a : b;
}

/* The least a direction reads at once: a hundredth of a second's worth
 * of its lower rate, at least the minimum chunk; at most a burst, and at
 * most what one read takes from a client's budget. */
static apr_uint64_t floor_of(const ct_bw_dir *x)
{
    apr_uint64_t rate = 0, cap = CT_BW_MAX, f;

    if (x->tunnel.rate) {
        rate = x->tunnel.rate;
        cap = x->tunnel.burst;
    }
    if (x->ctat) {
        rate = rate ? min64(rate, x->client.rate) : x->client.rate;
        cap = min64(cap, min64(x->client.burst, CT_BW_CLIENT_CHUNK));
    }
    f = rate / CT_BW_WAKES;
    f = f > CT_BW_MIN_CHUNK ? f : CT_BW_MIN_CHUNK;
    return min64(f, cap);
}

apr_size_t ct_bw_allow(ct_bw *bw, int d, apr_time_t now, apr_size_t want)
{
    ct_bw_dir *x = &bw->dir[d];
    apr_uint64_t room = want;

    if (want == 0) {
        return 0;
    }
    if (bw->cword != NULL
        && id_part(apr_atomic_read64(bw->cword)) != id_part(bw->id)) {
        rejoin(bw, now);
    }
    if (x->tunnel.rate) {
        room = min64(room, ct_bucket_room(&x->tunnel, x->tat,
                                          (apr_uint64_t)now));
    }
    if (x->ctat) {
        room = min64(room, ct_bucket_room(&x->client,
                                          apr_atomic_read64(x->ctat),
                                          (apr_uint64_t)now));
        room = min64(room, CT_BW_CLIENT_CHUNK);
    }
    return room >= min64(floor_of(x), want) ? (apr_size_t)room : 0;
}

void ct_bw_charge(ct_bw *bw, int d, apr_time_t now, apr_size_t n)
{
    ct_bw_dir *x = &bw->dir[d];

    if (n == 0) {
        return;
    }
    if (x->tunnel.rate) {
        ct_bucket_charge(&x->tunnel, &x->tat, (apr_uint64_t)now, n);
    }
    if (x->ctat) {
        ct_bucket_charge_shared(&x->client, x->ctat, (apr_uint64_t)now, n);
    }
}

/* At least a millisecond: pollers round their timeouts down to one. */
apr_time_t ct_bw_resume(const ct_bw *bw, int d, apr_time_t now)
{
    const ct_bw_dir *x = &bw->dir[d];
    apr_uint64_t f = floor_of(x), wait = 1000, w;

    if (x->tunnel.rate) {
        w = ct_bucket_wait(&x->tunnel, x->tat, (apr_uint64_t)now, f);
        wait = w > wait ? w : wait;
    }
    if (x->ctat) {
        apr_uint64_t n = bw->cword ? apr_atomic_read64(bw->cword)
                                     & CT_BW_COUNT_MASK : 1;

        n = min64(f * (n ? n : 1), x->client.burst);
        w = ct_bucket_wait(&x->client, apr_atomic_read64(x->ctat),
                           (apr_uint64_t)now, n > f ? n : f);
        wait = w > wait ? w : wait;
    }
    return now + (apr_time_t)wait;
}

int ct_bw_parse(const char *arg, int zero_ok, apr_uint64_t *out)
{
    apr_uint64_t n = 0, unit = 1;
    const char *p = arg;

    if (!apr_isdigit(*p)) {
        return -1;
    }
    for (; apr_isdigit(*p); p++) {
        n = n * 10 + (apr_uint64_t)(*p - '0');
        if (n > CT_BW_MAX) {
            return -1;
        }
    }
    switch (*p) {
    case 'k': case 'K':
        unit = 1000;
        p++;
        break;
    case 'm': case 'M':
        unit = 1000000;
        p++;
        break;
    case 'g': case 'G':
        unit = 1000000000;
        p++;
        break;
    }
    if (*p != '\0' || n > CT_BW_MAX / unit || (n == 0 && !zero_ok)) {
        return -1;
    }
    *out = n * unit;
    return 0;
}

apr_uint64_t ct_bw_default_burst(apr_uint64_t rate)
{
    apr_uint64_t b = rate / 10;

    return b >= CT_BW_MIN_CHUNK ? b : min64(CT_BW_MIN_CHUNK, rate);
}

apr_uint64_t ct_bw_client_id(const ct_bw_table *t, const void *key,
                             apr_size_t len)
{
    const unsigned char *k = key;
    apr_uint64_t h = t->seed ^ APR_UINT64_C(0x9e3779b97f4a7c15);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        h ^= k[i];
        h *= APR_UINT64_C(0x100000001b3);
        h ^= h >> 29;
    }
    h ^= t->seed >> 17;
    h *= APR_UINT64_C(0x9e3779b97f4a7c15);
    h ^= h >> 32;
    /* The top bit makes the id part of a word never 0. */
    return h | (APR_UINT64_C(1) << 63);
}

static apr_uint64_t id_part(apr_uint64_t id)
{
    return id >> CT_BW_COUNT_BITS;
}

static int slot_at(apr_uint64_t id, int k)
{
    return (int)((id + (apr_uint64_t)k) & (CT_BW_SLOTS - 1));
}

/* Add one to the lowest slot of the window held by id; -1 if none. */
static int join_held(ct_bw_table *t, apr_uint64_t id, int below)
{
    int k;

    for (k = 0; k < below; k++) {
        int i = slot_at(id, k);
        apr_uint64_t w = apr_atomic_read64(&t->slots[i].word);

        while (id_part(w) == id_part(id) && (w & CT_BW_COUNT_MASK) != 0
               && (w & CT_BW_COUNT_MASK) != CT_BW_COUNT_MASK) {
            apr_uint64_t seen = apr_atomic_cas64(&t->slots[i].word, w + 1,
                                                 w);

            if (seen == w) {
                return i;
            }
            w = seen;
        }
    }
    return -1;
}

/* Whether slot i's client moved nothing since CT_BW_STALE before now. */
static int stale(ct_bw_slot *slot, apr_time_t now)
{
    apr_uint64_t horizon = (apr_uint64_t)(now - CT_BW_STALE);

    return now > CT_BW_STALE
           && apr_atomic_read64(&slot->tat[0]) <= horizon
           && apr_atomic_read64(&slot->tat[1]) <= horizon;
}

/*
 * Take a slot of the window for id: a free one, or else one whose client
 * went stale (a child that died holding tunnels leaves a count no tunnel
 * will give back; a live client that was only quiet joins anew when it
 * next reads, see ct_bw_allow()).  -1 if none.
 */
static int claim_free(ct_bw_table *t, apr_uint64_t id, apr_time_t now)
{
    apr_uint64_t mine = (id_part(id) << CT_BW_COUNT_BITS) | 1;
    int k, pass;

    for (pass = 0; pass < 2; pass++) {
        for (k = 0; k < CT_BW_WINDOW; k++) {
            int i = slot_at(id, k);
            apr_uint64_t w = apr_atomic_read64(&t->slots[i].word);
            int usable = pass == 0 ? (w & CT_BW_COUNT_MASK) == 0
                                   : id_part(w) != id_part(id)
                                     && stale(&t->slots[i], now);

            if (usable
                && apr_atomic_cas64(&t->slots[i].word, mine, w) == w) {
                /* A fresh budget: the last client's debt is not ours. */
                apr_atomic_set64(&t->slots[i].tat[0], 0);
                apr_atomic_set64(&t->slots[i].tat[1], 0);
                return i;
            }
        }
    }
    return -1;
}

/*
 * Two first tunnels of a client, in two children at once, may each claim
 * a free slot: after a claim, a slot of the same client earlier in the
 * window wins, and the later one is given up, so that the client ends
 * with one budget.
 */
int ct_bw_slot_join(ct_bw_table *t, apr_uint64_t id, apr_time_t now)
{
    int i, k, lower;

    if ((i = join_held(t, id, CT_BW_WINDOW)) >= 0) {
        return i;
    }
    if ((i = claim_free(t, id, now)) < 0) {
        return -1;
    }
    for (k = 0; k < CT_BW_WINDOW && slot_at(id, k) != i; k++) {
        continue;
    }
    if ((lower = join_held(t, id, k)) < 0) {
        return i;
    }
    ct_bw_slot_leave(t, i, id);
    return lower;
}

void ct_bw_slot_leave(ct_bw_table *t, int i, apr_uint64_t id)
{
    apr_uint64_t w = apr_atomic_read64(&t->slots[i].word);

    while (id_part(w) == id_part(id) && (w & CT_BW_COUNT_MASK) != 0) {
        apr_uint64_t seen = apr_atomic_cas64(&t->slots[i].word, w - 1, w);

        if (seen == w) {
            return;
        }
        w = seen;
    }
}

void ct_bw_attach(ct_bw *bw, ct_bw_table *t, apr_uint64_t id, int slot)
{
    int d;

    bw->table = t;
    bw->id = id;
    bw->slot = slot;
    bw->cword = slot >= 0 ? &t->slots[slot].word : NULL;
    for (d = 0; d < 2; d++) {
        bw->dir[d].ctat = slot >= 0 && bw->dir[d].client.rate
                          ? &t->slots[slot].tat[d] : NULL;
    }
}

/*
 * The client's entry was taken by another client while this one moved
 * nothing: join its entry anew.  With no room in its window, the tunnel
 * goes on under its own limit only (the table is full of active
 * clients; refusing bytes to a tunnel already open would be worse).
 */
static void rejoin(ct_bw *bw, apr_time_t now)
{
    ct_bw_attach(bw, bw->table, bw->id,
                 ct_bw_slot_join(bw->table, bw->id, now));
}

apr_uint32_t ct_bw_slot_count(const ct_bw_table *t, int i)
{
    return (apr_uint32_t)(t->slots[i].word & CT_BW_COUNT_MASK);
}
