/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_bw.h: bandwidth limits of a tunnel, per direction: its own budget
 * and its client's (shared by all of the client's tunnels in every child,
 * a word in shared memory).  The relay loops ask how many bytes a
 * direction may read now, cap their read or splice to it, charge what
 * they moved, and when nothing may move, stop watching the source and
 * wake at the time ct_bw_resume() gives.  APR only, so that it is
 * unit-tested without a server.
 */

#ifndef CT_BW_H
#define CT_BW_H

#include "apr.h"
#include "apr_time.h"

#include "ct_bucket.h"

/* Directions, as the relays index them. */
#define CT_BW_UP 0              /* client to origin */
#define CT_BW_DOWN 1            /* origin to client */

/* A read smaller than this is not worth its system call: a direction
 * waits until this much (or the whole burst, if smaller) may move. */
#define CT_BW_MIN_CHUNK (16 * 1024)

/* Wake-ups per second a waiting direction aims at: at high rates it
 * waits for a hundredth of a second's worth rather than the minimum
 * chunk, so that its cost per byte stays near an unlimited tunnel's. */
#define CT_BW_WAKES 100

/* What one read takes at most from a client's shared budget, so that the
 * client's tunnels take turns at this granularity. */
#define CT_BW_CLIENT_CHUNK (64 * 1024)

/* The largest rate or burst a directive takes (1 TB/s). */
#define CT_BW_MAX APR_UINT64_C(1000000000000)

/* The client table in shared memory (below). */
typedef struct ct_bw_table ct_bw_table;

/* One direction's limits; a rate of 0 is no limit. */
typedef struct {
    ct_bucket_conf tunnel;
    ct_bucket_conf client;
    apr_uint64_t tat;               /* the tunnel's own word */
    volatile apr_uint64_t *ctat;    /* the client's word, or NULL */
} ct_bw_dir;

/* A limited tunnel's state, about 100 bytes: kept by value, so that it
 * moves with the tunnel to a reactor. */
typedef struct {
    ct_bw_dir dir[2];
    volatile apr_uint64_t *cword;   /* the client's entry's word, or NULL */
    ct_bw_table *table;         /* where the entry is, or NULL */
    apr_uint64_t id;            /* the client's id in it */
    int slot;                   /* the client's entry, or -1 */
} ct_bw;

/**
 * Bytes direction d may read now, at most want; 0 when it must wait
 * (less than the minimum chunk may move).
 */
apr_size_t ct_bw_allow(ct_bw *bw, int d, apr_time_t now, apr_size_t want);

/**
 * Charge n bytes that direction d moved.
 */
void ct_bw_charge(ct_bw *bw, int d, apr_time_t now, apr_size_t n);

/**
 * When direction d, refused by ct_bw_allow(), may try again: when its
 * own budget has room for a read, and its client's for a read by each
 * of the client's tunnels (so that they wake once per round, not once
 * per read, and each finds its share).
 */
apr_time_t ct_bw_resume(const ct_bw *bw, int d, apr_time_t now);

/**
 * Parse a rate or size in bytes: digits with an optional k, M or G
 * (powers of 1000: "5M" is 5,000,000).  0 only when zero_ok.
 * @return 0 on success, -1 if arg is not such a number
 */
int ct_bw_parse(const char *arg, int zero_ok, apr_uint64_t *out);

/**
 * The burst of a rate when none is given: a tenth of a second's worth,
 * and at least the minimum chunk (or the whole rate, if less).
 */
apr_uint64_t ct_bw_default_burst(apr_uint64_t rate);

/* The client table in shared memory: an entry per client with tunnels,
 * found by a keyed hash of its key within a short window of slots. */
typedef struct {
    volatile apr_uint64_t word;     /* client id << 24 | tunnels */
    volatile apr_uint64_t tat[2];   /* the client's words, per direction */
} ct_bw_slot;

#define CT_BW_SLOTS 8192            /* a power of two */
#define CT_BW_WINDOW 16             /* slots a client may land in */

/* An entry whose client moved nothing for this long may be taken by
 * another client when its window is full, whatever its count says: a
 * child killed while it held tunnels leaves its counts behind. */
#define CT_BW_STALE apr_time_from_sec(10)

struct ct_bw_table {
    apr_uint64_t seed;
    ct_bw_slot slots[CT_BW_SLOTS];
};

/**
 * Join the entry of the client whose key hashes (with the table's seed)
 * to id, or take a free one for it, or else one that went stale (see
 * CT_BW_STALE) at time now; lock-free.
 * @return the slot, or -1 when every slot of its window is in use
 */
int ct_bw_slot_join(ct_bw_table *t, apr_uint64_t id, apr_time_t now);

/**
 * Leave slot i, joined for id (its last tunnel frees it); nothing if
 * another client has taken the slot since.
 */
void ct_bw_slot_leave(ct_bw_table *t, int i, apr_uint64_t id);

/**
 * Point bw at the entry of client id in t (slot from ct_bw_slot_join).
 */
void ct_bw_attach(ct_bw *bw, ct_bw_table *t, apr_uint64_t id, int slot);

/**
 * The id of a client key (any bytes), keyed with the table's seed;
 * never 0.
 */
apr_uint64_t ct_bw_client_id(const ct_bw_table *t, const void *key,
                             apr_size_t len);

/**
 * Tunnels counted in slot i (for tests).
 */
apr_uint32_t ct_bw_slot_count(const ct_bw_table *t, int i);

#endif /* CT_BW_H */
