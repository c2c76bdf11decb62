/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_migrate_int.h: what the sending side (ct_migrate.c) and the
 * receiving side (ct_migrate_recv.c) of a tunnel's move share: the
 * rendezvous and the message.  Both ends are children of one httpd, on
 * one machine, of one build (the layout number says so), so the message
 * is a plain struct.
 */

#ifndef CT_MIGRATE_INT_H
#define CT_MIGRATE_INT_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "ct_reactor_int.h"
#include "ct_migrate.h"

/* Changes whenever the message does. */
#define CT_MIG_MAGIC 0x43544d31u   /* "CTM1" */

/* Descriptors one tunnel travels with: two sockets, two pipes. */
#define CT_MIG_FDS 6

/* Longest a sender waits for a receiver's answer. */
#define CT_MIG_ANSWER_MS 5000

/* Flags of the message, per direction i (shifted by 4 * i). */
#define CT_MIG_EOF 1
#define CT_MIG_SHUT 2
#define CT_MIG_HUP 4            /* the socket of side i hung up */
#define CT_MIG_PIPE 8           /* its pipe travels (two descriptors) */
/* Whole-tunnel flags. */
#define CT_MIG_NOHALFCLOSE 0x100
#define CT_MIG_ZEROCOPY 0x200

/* One tunnel, followed by its held bytes each way and its access-log
 * record. */
typedef struct {
    apr_uint32_t magic;         /* CT_MIG_MAGIC ^ ct_alog_layout() */
    apr_uint32_t size;          /* sizeof(ct_mig_head) */
    apr_uint32_t seq;           /* the sending reactor's move number */
    apr_int32_t reactor;        /* the sending reactor */
    apr_uint32_t flags;
    apr_uint32_t nfds;
    apr_time_t start;
    apr_time_t opened;
    apr_time_t last;
    apr_time_t first_down;
    apr_time_t deadline;
    apr_interval_time_t idle;
    apr_interval_time_t lifetime;
    apr_uint64_t up;            /* bytes moved so far, each way */
    apr_uint64_t down;
    ct_limit_hold limits;       /* under the sender's record */
    apr_uint32_t held[2];       /* bytes held in a buffer, each way */
    apr_uint64_t piped[2];      /* bytes in the pipe that travels */
    apr_uint64_t pipe_cap[2];
    apr_uint32_t alog_len;
    apr_int32_t server;         /* the record's virtual host, by place */
    apr_int32_t limited;        /* bw applies */
    ct_bw bw;                   /* its values; the receiver's pointers */
    char client[48];
    char target[CT_REACTOR_TEXT];
    char address[64];
} ct_mig_head;

/* The receiver's answer. */
typedef struct {
    apr_uint32_t seq;
    apr_uint32_t taken;
} ct_mig_answer;

/* The largest message: the head, two full buffers, a record. */
#define CT_MIG_MSG_MAX (sizeof(ct_mig_head) + 3 * CT_REACTOR_BUFSIZE)

/**
 * The abstract-namespace address where child pid of parent ppid takes
 * tunnels; its length in *len.
 */
void ct_mig_address(struct sockaddr_un *sun, socklen_t *len, pid_t ppid,
                    pid_t pid);

/**
 * The peer's credentials are those of a process of this server: same
 * user, and (pid non-zero) the process pid.  @return the peer's pid or 0
 */
pid_t ct_mig_peer(int fd, pid_t pid);

/**
 * Listen for tunnels other children move here, in a thread of this
 * child's, until pchild goes (ct_migrate_recv.c).
 */
apr_status_t ct_mig_listen(apr_pool_t *pchild, server_rec *s);

#endif /* CT_MIGRATE_INT_H */
