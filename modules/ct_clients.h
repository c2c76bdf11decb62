/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_clients.h: the table of open tunnels per client (and per
 * destination host, under keys of their own), kept in a block the
 * caller supplies (shared memory) and locks.  A client is a prefix
 * (ct_client_key); each has one entry with its total and one entry per
 * child process that holds some of its tunnels, so that the tunnels of a
 * child that died without its cleanups can be taken off.  APR only, so
 * that it is unit-tested without a server.
 */

#ifndef CT_CLIENTS_H
#define CT_CLIENTS_H

#include "apr.h"
#include "apr_errno.h"

#include "ct_policy.h"

/* Entries in the table: a power of two. */
#define CT_CLIENT_SLOTS 32768

/* Entries in use at most (3/4): linear probing stays short however many
 * clients have come and gone, since freed entries leave no tombstones. */
#define CT_CLIENT_MAX_USED (CT_CLIENT_SLOTS / 4 * 3)

/* The owner of a client's total entry. */
#define CT_OWNER_ALL 0xffff

/* One client's total (owner CT_OWNER_ALL), or the part one owner holds. */
typedef struct {
    ct_net key;
    apr_uint32_t count;
    apr_uint16_t owner;
    apr_uint16_t used;
} ct_client_entry;

typedef struct {
    apr_uint64_t seed;          /* keys the hash against chosen collisions */
    apr_uint32_t used;
    ct_client_entry slots[CT_CLIENT_SLOTS];
} ct_client_table;

/**
 * Empty the table and key its hash with seed.
 */
void ct_clients_init(ct_client_table *t, apr_uint64_t seed);

/**
 * The key a destination host (its canonical spelling) is counted under
 * in the same table: a keyed hash of the name, family APR_UNSPEC, so that
 * it never equals a client's key.
 */
void ct_clients_host_key(const ct_client_table *t, const char *host,
                         ct_net *out);

/**
 * Tunnels open from the client key now.
 */
apr_uint32_t ct_clients_count(const ct_client_table *t, const ct_net *key);

/**
 * Count one more tunnel of key, held by owner (< CT_OWNER_ALL).
 * @return APR_SUCCESS, or APR_ENOSPC when the table is full
 */
apr_status_t ct_clients_take(ct_client_table *t, const ct_net *key,
                             unsigned int owner);

/**
 * Give back one tunnel of key held by owner; entries that reach 0 are
 * freed.
 */
void ct_clients_give(ct_client_table *t, const ct_net *key,
                     unsigned int owner);

/**
 * Take off every tunnel owner holds (its process is gone).
 * @return the tunnels taken off
 */
apr_uint32_t ct_clients_drop_owner(ct_client_table *t, unsigned int owner);

/**
 * Entries a lookup of (key, owner) examines: the probe length, for tests.
 */
unsigned int ct_clients_probes(const ct_client_table *t, const ct_net *key,
                               unsigned int owner);

#endif /* CT_CLIENTS_H */
