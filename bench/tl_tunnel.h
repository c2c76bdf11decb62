/*
 * tl_tunnel.h: the client end of one tunnel, from connect() to the 200.
 *
 * Every mode of the load generator opens tunnels the same way: a
 * non-blocking connect to the proxy, the CONNECT request, the response
 * head read up to its blank line.  Bytes that arrive behind the head
 * already belong to the tunnel and are handed to the mode.  In direct mode
 * the connect goes to the origin and the tunnel is open once connected,
 * which gives the machine's own limit to compare the proxies with.
 */

#ifndef TL_TUNNEL_H
#define TL_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

/* The response head we accept; httpd's 200 is well under this. */
#define TL_HEAD_MAX 2048

typedef enum {
    TL_IDLE = 0,        /* not started, or closed */
    TL_CONNECTING,      /* connect() in progress */
    TL_REQUESTING,      /* sending the CONNECT request */
    TL_AWAITING,        /* reading the response head */
    TL_OPEN             /* 200 seen: bytes flow to the origin */
} tl_phase;

/* What tl_tunnel_step() made of an event. */
typedef enum {
    TL_STEP_PENDING,    /* still on the way to the 200 */
    TL_STEP_OPEN,       /* just opened: early bytes may wait */
    TL_STEP_FAILED,     /* closed; why says what went wrong */
    TL_STEP_REFUSED     /* a 403, which the dialer was told to expect */
} tl_step;

typedef struct {
    int epfd;
    int proxy_port;             /* 0: direct to the origin */
    int origin_port;
    uint32_t source;            /* client address (network order), or 0 */
    char request[160];          /* the CONNECT request, ready to send */
    size_t request_len;
    int refusal;                /* a 403 is the answer sought */
} tl_dialer;

typedef struct {
    int fd;
    tl_phase phase;
    uint32_t watched;           /* events registered with epoll */
    uint64_t t_begin;           /* connect() called */
    uint64_t t_open;            /* 200 read (direct: connected) */
    size_t sent;                /* of the request */
    size_t head_len;
    char head[TL_HEAD_MAX];
    const char *early;          /* tunnel bytes read with the head */
    size_t early_len;
    const char *why;            /* failure, for the report */
    void *owner;                /* the mode's record for this tunnel */
} tl_tunnel;

/**
 * Prepare a dialer for tunnels to origin_port on 127.0.0.1, through the
 * proxy on proxy_port or, with proxy_port 0, directly, from the client
 * address source (network order; 0: the kernel's choice).
 */
void tl_dialer_init(tl_dialer *d, int epfd, int proxy_port,
                    int origin_port, uint32_t source);

/**
 * Start opening t; 0, or -1 with t->why set (nothing to close).
 */
int tl_tunnel_begin(tl_dialer *d, tl_tunnel *t, void *owner);

/**
 * Advance t on the epoll events seen for it.  On TL_STEP_FAILED the socket
 * is already closed.
 */
tl_step tl_tunnel_step(tl_dialer *d, tl_tunnel *t, uint32_t events);

/**
 * Register the events t waits for, calling epoll only on a change; 0, or
 * -1 with errno set.
 */
int tl_tunnel_watch(tl_dialer *d, tl_tunnel *t, uint32_t events);

/**
 * Close t's socket (it leaves epoll with it) and mark it idle.
 */
void tl_tunnel_close(tl_tunnel *t);

#endif /* TL_TUNNEL_H */
