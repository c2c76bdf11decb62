/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_clients.c: the per-client tunnel table.  Open addressing with linear
 * probing and backward-shift deletion: an entry whose count falls to 0 is
 * removed at once and the entries after it move back, so no tombstones
 * pile up and a lookup's length depends on the entries in use now, never
 * on how many clients came before.  The hash is keyed with a random seed
 * so that clients cannot choose addresses that collide.
 */

#include <string.h>

#include "ct_rates.h"
#include "ct_clients.h"

#define CT_MASK (CT_CLIENT_SLOTS - 1)

static apr_uint64_t mix(apr_uint64_t h, apr_uint64_t v)
{
    h ^= v;
    h *= APR_UINT64_C(0x9e3779b97f4a7c15);
    return h ^ (h >> 29);
}

static apr_uint32_t home(const ct_client_table *t, const ct_net *key,
                         unsigned int owner)
{
    apr_uint64_t h = t->seed, w;
    int i;

    for (i = 0; i < 16; i += 8) {
        memcpy(&w, key->addr + i, 8);
        h = mix(h, w);
    }
    h = mix(h, ((apr_uint64_t)key->family << 40)
               | ((apr_uint64_t)key->bits << 16) | owner);
    h = mix(h, t->seed >> 17);
    return (apr_uint32_t)(h ^ (h >> 32)) & CT_MASK;
}

static int same(const ct_client_entry *e, const ct_net *key,
                unsigned int owner)
{
    return e->owner == owner && e->key.family == key->family
           && e->key.bits == key->bits
           && memcmp(e->key.addr, key->addr, sizeof(key->addr)) == 0;
}

/* The entry of (key, owner), or where it would go; *probes counts. */
static apr_uint32_t lookup(const ct_client_table *t, const ct_net *key,
                           unsigned int owner, unsigned int *probes)
{
    apr_uint32_t i = home(t, key, owner);
    unsigned int n = 1;

    while (t->slots[i].used && !same(&t->slots[i], key, owner)) {
        i = (i + 1) & CT_MASK;
        n++;
    }
    if (probes) {
        *probes = n;
    }
    return i;
}

void ct_clients_init(ct_client_table *t, apr_uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->seed = seed;
}

void ct_clients_host_key(const ct_client_table *t, const char *host,
                         ct_net *out)
{
    apr_size_t len = strlen(host);
    apr_uint64_t k1 = (t->seed << 32 | t->seed >> 32)
                      ^ APR_UINT64_C(0x5bd1e9955bd1e995);
    apr_uint64_t h[2];

    h[0] = ct_siphash(t->seed, k1, host, len);
    h[1] = ct_siphash(k1, t->seed, host, len);
    memset(out, 0, sizeof(*out));
    out->family = APR_UNSPEC;
    memcpy(out->addr, h, sizeof(h));
}

apr_uint32_t ct_clients_count(const ct_client_table *t, const ct_net *key)
{
    const ct_client_entry *e = &t->slots[lookup(t, key, CT_OWNER_ALL,
                                                NULL)];

    return e->used ? e->count : 0;
}

unsigned int ct_clients_probes(const ct_client_table *t, const ct_net *key,
                               unsigned int owner)
{
    unsigned int n;

    (void)lookup(t, key, owner, &n);
    return n;
}

/* Free entry i; later entries of its run move back into the gap when
 * their home slot allows it (Knuth's algorithm R). */
static void remove_at(ct_client_table *t, apr_uint32_t i)
{
    apr_uint32_t j = i;

    for (;;) {
        apr_uint32_t k;

        j = (j + 1) & CT_MASK;
        if (!t->slots[j].used) {
            break;
        }
        k = home(t, &t->slots[j].key, t->slots[j].owner);
        /* Entry j stays when its home lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) {
            continue;
        }
        t->slots[i] = t->slots[j];
        i = j;
    }
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
    t->used--;
}

/* One more tunnel on the entry of (key, owner), made when missing. */
static void add_one(ct_client_table *t, const ct_net *key,
                    unsigned int owner)
{
    ct_client_entry *e = &t->slots[lookup(t, key, owner, NULL)];

    if (!e->used) {
        e->key = *key;
        e->owner = (apr_uint16_t)owner;
        e->used = 1;
        e->count = 0;
        t->used++;
    }
    e->count++;
}

/* n fewer on the entry of (key, owner), freed when none are left. */
static void sub(ct_client_table *t, const ct_net *key, unsigned int owner,
                apr_uint32_t n)
{
    apr_uint32_t i = lookup(t, key, owner, NULL);
    ct_client_entry *e = &t->slots[i];

    if (!e->used) {
        return;
    }
    e->count = e->count > n ? e->count - n : 0;
    if (e->count == 0) {
        remove_at(t, i);
    }
}

apr_status_t ct_clients_take(ct_client_table *t, const ct_net *key,
                             unsigned int owner)
{
    apr_uint32_t need = !t->slots[lookup(t, key, CT_OWNER_ALL, NULL)].used
                        + !t->slots[lookup(t, key, owner, NULL)].used;

    if (t->used + need > CT_CLIENT_MAX_USED) {
        return APR_ENOSPC;
    }
    /* The total first, the owner's part last, and the reverse when giving
     * back: a process killed in between leaves one tunnel too many
     * counted until its owner is dropped, never one too few. */
    add_one(t, key, CT_OWNER_ALL);
    add_one(t, key, owner);
    return APR_SUCCESS;
}

void ct_clients_give(ct_client_table *t, const ct_net *key,
                     unsigned int owner)
{
    sub(t, key, owner, 1);
    sub(t, key, CT_OWNER_ALL, 1);
}

/*
 * Two passes, because removing an entry moves others: first each of the
 * owner's entries is taken off its client's total and set to 0 (nothing
 * moves), then every entry at 0 is removed.  A removal at i only moves
 * entries from later in i's run into i or beyond, so one sweep that looks
 * at i again after each removal finds them all.
 */
apr_uint32_t ct_clients_drop_owner(ct_client_table *t, unsigned int owner)
{
    apr_uint32_t i, dropped = 0;

    for (i = 0; i < CT_CLIENT_SLOTS; i++) {
        ct_client_entry *e = &t->slots[i], *all;

        if (!e->used || e->owner != owner) {
            continue;
        }
        all = &t->slots[lookup(t, &e->key, CT_OWNER_ALL, NULL)];
        if (all->used) {
            all->count = all->count > e->count ? all->count - e->count : 0;
        }
        dropped += e->count;
        e->count = 0;
    }
    for (i = 0; i < CT_CLIENT_SLOTS; i++) {
        while (t->slots[i].used && t->slots[i].count == 0) {
            remove_at(t, i);
        }
    }
    return dropped;
}
