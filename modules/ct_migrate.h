/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_migrate.h: moving a gracefully exiting child's reactor tunnels to a
 * live child of the current generation, so that the exiting child need
 * not wait for them (ConnectTunnelMigrate).  A tunnel travels as its
 * descriptors (SCM_RIGHTS over a Unix-domain socket) and its state.
 */

#ifndef CT_MIGRATE_H
#define CT_MIGRATE_H

#include "httpd.h"

struct ct_reactor;
struct ct_rtunnel;

/* ConnectTunnelMigrate's default. */
#define CT_DEFAULT_MIGRATE 1

/* Tunnels a reactor offers per turn of its loop. */
#define CT_MIGRATE_BATCH 64

/* Milliseconds a reactor's loop waits at most while it offers tunnels. */
#define CT_MIGRATE_RETRY_MS 100

/* What became of a tunnel offered. */
typedef enum {
    CT_MOVE_DONE,       /* the receiver has it: forget it */
    CT_MOVE_KEPT,       /* refused or failed: it stays, try the next */
    CT_MOVE_LATER,      /* no child to take it now: try again later */
    CT_MOVE_OFF         /* no child took it in time: drain */
} ct_move;

/**
 * child_init, after the reactors started: listen for tunnels other
 * children move here, unless on is 0 or no reactor runs.
 */
void ct_migrate_child_init(apr_pool_t *pchild, server_rec *s, int on);

/**
 * Whether this child moves its tunnels when it exits gracefully.
 */
int ct_migrate_enabled(void);

/**
 * The child exits gracefully with tunnels: whether its nreactors reactors
 * should offer them (migration on), and from now on for how long.
 */
int ct_migrate_begin(int nreactors);

/**
 * Whether reactor re still offers its tunnels.
 */
int ct_migrate_sending(const struct ct_reactor *re);

/**
 * Milliseconds reactor re's loop may wait for events before it offers
 * more: 0 while tunnels move, CT_MIGRATE_RETRY_MS while no child can
 * take them.
 */
int ct_migrate_wait_ms(const struct ct_reactor *re);

/**
 * Offer tunnel t of reactor re (in re's thread) to a live child.
 */
ct_move ct_migrate_send(struct ct_reactor *re, struct ct_rtunnel *t);

/**
 * Reactor re offers no more: what it holds drains.
 */
void ct_migrate_sender_done(struct ct_reactor *re);

/**
 * The reactors stopped: close what the senders still hold.
 */
void ct_migrate_end(void);

#endif /* CT_MIGRATE_H */
