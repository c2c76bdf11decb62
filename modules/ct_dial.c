/*
 * Licensed under the Apache License, Version 2.0 (the "License"); you may
 * not use this file except in compliance with the License.
 *
 * ct_dial.c: connect to the first of the next hop's addresses that
 * answers.  Trying them one after another made a name whose IPv6 path
 * silently drops packets cost a whole connect timeout before its IPv4
 * address was tried; here the attempts overlap as RFC 8305 describes:
 * the next address is tried beside the first after CT_ATTEMPT_DELAY (or
 * at once when an attempt fails), the first connection made wins and the
 * others are closed at once.  Every socket is non-blocking from the start
 * and one poll() waits for all the attempts in flight, within each
 * attempt's own timeout and the set-up's deadline.
 */

#include <sys/socket.h>

#include "apr_poll.h"

#include "ct_private.h"
#include "ct_dial.h"
#include "ct_hop.h"

/* One connect in flight. */
typedef struct {
    apr_sockaddr_t *addr;
    apr_socket_t *sock;
    apr_time_t ends;            /* when it has taken too long */
} ct_attempt;

typedef struct {
    request_rec *r;
    proxy_server_conf *pconf;
    const ct_setup *setup;
    apr_sockaddr_t *next;       /* the next address to try, or NULL */
    apr_time_t next_start;      /* when it may start beside the others */
    ct_attempt flight[CT_MAX_ADDRESSES];
    int live;                   /* attempts in flight: flight[0..live) */
    apr_socket_t *won;          /* the connected socket, once there */
    apr_sockaddr_t *won_addr;
    int timed_out;              /* some attempt ran out of time */
    int refused;                /* some address refused */
} ct_race;

/* ConnectTunnelBind: the socket's source, before it connects. */
static apr_status_t bind_source(request_rec *r, apr_socket_t *sock,
                                apr_sockaddr_t *bind, apr_sockaddr_t *addr)
{
    apr_status_t rv = APR_SUCCESS;

    /* A fixed port is taken again by the next attempt or tunnel. */
    if (bind->port != 0) {
        rv = apr_socket_opt_set(sock, APR_SO_REUSEADDR, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_bind(sock, bind);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, CT_LOGNO(00237)
                      "cannot bind the connection to %pI to %pI "
                      "(ConnectTunnelBind)", addr, bind);
    }
    return rv;
}

/* A socket for addr with our options and source, non-blocking. */
static apr_status_t open_socket(ct_race *race, apr_sockaddr_t *addr,
                                apr_socket_t **sock)
{
    const ct_setup *setup = race->setup;
    proxy_server_conf *pconf = race->pconf;
    apr_status_t rv;

    rv = apr_socket_create(sock, addr->family, SOCK_STREAM, APR_PROTO_TCP,
                           race->r->pool);
    if (rv != APR_SUCCESS) {
        *sock = NULL;
        return rv;
    }
    /* Interactive traffic goes through tunnels: never delay small writes. */
    rv = apr_socket_opt_set(*sock, APR_TCP_NODELAY, 1);
    if (rv == APR_SUCCESS && pconf->recv_buffer_size > 0) {
        rv = apr_socket_opt_set(*sock, APR_SO_RCVBUF,
                                (apr_int32_t)pconf->recv_buffer_size);
    }
    if (rv == APR_SUCCESS && setup->bind) {
        rv = bind_source(race->r, *sock, setup->bind, addr);
    }
    else if (rv == APR_SUCCESS && pconf->source_address
             && pconf->source_address->family == addr->family) {
        rv = apr_socket_bind(*sock, pconf->source_address);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(*sock, 0);
    }
    if (rv != APR_SUCCESS) {
        apr_socket_close(*sock);
        *sock = NULL;
    }
    return rv;
}

static void attempt_failed(ct_race *race, apr_sockaddr_t *addr,
                           apr_status_t rv)
{
    race->timed_out |= APR_STATUS_IS_TIMEUP(rv);
    race->refused |= APR_STATUS_IS_ECONNREFUSED(rv);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, race->r, CT_LOGNO(00020)
                  "connect to %pI failed%s", addr,
                  race->next || race->live ? ", still trying others"
                                           : "");
}

/* Close attempt i and keep the ones in flight together; rv says why. */
static void drop_attempt(ct_race *race, int i, apr_status_t rv)
{
    ct_attempt gone = race->flight[i];

    apr_socket_close(gone.sock);
    race->flight[i] = race->flight[--race->live];
    if (rv != APR_SUCCESS) {
        attempt_failed(race, gone.addr, rv);
    }
}

static void start_next(ct_race *race, apr_time_t now)
{
    apr_sockaddr_t *addr = race->next;
    apr_socket_t *sock;
    apr_status_t rv;
    ct_attempt *a;

    race->next = addr->next;
    rv = open_socket(race, addr, &sock);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_connect(sock, addr);
    }
    if (rv == APR_SUCCESS) {
        race->won = sock;
        race->won_addr = addr;
        return;
    }
    if (!APR_STATUS_IS_EINPROGRESS(rv)) {
        /* Failed at once: the next address need not wait. */
        if (sock != NULL) {
            apr_socket_close(sock);
        }
        attempt_failed(race, addr, rv);
        race->next_start = now;
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE2, 0, race->r,
                  "connecting to %pI", addr);
    a = &race->flight[race->live++];
    a->addr = addr;
    a->sock = sock;
    a->ends = now + ct_hop_step_timeout(race->setup->step,
                                        race->setup->deadline, now);
    race->next_start = now + CT_ATTEMPT_DELAY;
}

/* Give up the attempts that have had their step timeout. */
static void expire(ct_race *race, apr_time_t now)
{
    int i = 0;

    while (i < race->live) {
        if (race->flight[i].ends <= now) {
            drop_attempt(race, i, APR_TIMEUP);
            race->next_start = now;
        }
        else {
            i++;
        }
    }
}

/*
 * The result of the connect of a socket poll() reported.  Writable with
 * no error or hang-up is a connection made: Linux reports a socket whose
 * connect is still under way as not writable and one whose connect failed
 * with POLLERR, so only those need the error asked for.
 */
static apr_status_t connect_result(apr_socket_t *sock, apr_int16_t events)
{
    apr_os_sock_t fd;
    int error = 0;
    socklen_t len = sizeof(error);

    if (events == APR_POLLOUT) {
        return APR_SUCCESS;
    }
    apr_os_sock_get(&fd, sock);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    return APR_FROM_OS_ERROR(error);
}

/* When the race must look again: an attempt's end, the next start or
 * the deadline; rounded up to poll()'s milliseconds. */
static apr_interval_time_t wait_time(const ct_race *race, apr_time_t now)
{
    apr_time_t wake = race->setup->deadline;
    int i;

    for (i = 0; i < race->live; i++) {
        wake = race->flight[i].ends < wake ? race->flight[i].ends : wake;
    }
    if (race->next != NULL && race->next_start < wake) {
        wake = race->next_start;
    }
    return (wake - now + 999) / 1000 * 1000;
}

/* Wait for the attempts in flight; settle those poll() reports. */
static apr_status_t wait_ready(ct_race *race, apr_time_t now)
{
    apr_pollfd_t pfd[CT_MAX_ADDRESSES];
    apr_int32_t n = 0;
    apr_status_t rv;
    int i;

    for (i = 0; i < race->live; i++) {
        memset(&pfd[i], 0, sizeof(pfd[i]));
        pfd[i].p = race->r->pool;
        pfd[i].desc_type = APR_POLL_SOCKET;
        pfd[i].desc.s = race->flight[i].sock;
        pfd[i].reqevents = APR_POLLOUT;
    }
    rv = apr_poll(pfd, race->live, &n, wait_time(race, now));
    if (APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_EINTR(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* From the last, so that dropping one moves none not yet seen. */
    for (i = race->live - 1; i >= 0 && race->won == NULL; i--) {
        if (pfd[i].rtnevents == 0) {
            continue;
        }
        rv = connect_result(race->flight[i].sock, pfd[i].rtnevents);
        if (rv == APR_SUCCESS) {
            race->won = race->flight[i].sock;
            race->won_addr = race->flight[i].addr;
            race->flight[i] = race->flight[--race->live];
        }
        else {
            drop_attempt(race, i, rv);
            race->next_start = now;
        }
    }
    return APR_SUCCESS;
}

/* Run the race until one connects, none is left or time is up. */
static ct_dial_outcome run(ct_race *race)
{
    apr_status_t rv;
    apr_time_t now;

    for (;;) {
        now = apr_time_now();
        if (race->live == 0 && race->next == NULL) {
            return race->timed_out ? CT_DIAL_TIMEOUT
                   : race->refused ? CT_DIAL_REFUSED : CT_DIAL_UNREACHABLE;
        }
        if (now >= race->setup->deadline) {
            return CT_DIAL_DEADLINE;
        }
        expire(race, now);
        if (race->next != NULL
            && (race->live == 0 || now >= race->next_start)) {
            start_next(race, now);
        }
        else if (race->live > 0
                 && (rv = wait_ready(race, now)) != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, race->r,
                          CT_LOGNO(00300) "cannot wait for the connection "
                          "attempts to finish");
            return CT_DIAL_UNREACHABLE;
        }
        if (race->won != NULL) {
            return CT_DIAL_OK;
        }
    }
}

ct_dial_outcome ct_dial_race(request_rec *r, proxy_server_conf *pconf,
                             apr_sockaddr_t *addrs, const ct_setup *setup,
                             apr_socket_t **sock, apr_sockaddr_t **addr)
{
    ct_race race;
    ct_dial_outcome how;
    apr_status_t rv;

    memset(&race, 0, sizeof(race));
    race.r = r;
    race.pconf = pconf;
    race.setup = setup;
    race.next = addrs;
    how = run(&race);
    /* The losers, and every attempt when none won, go at once. */
    while (race.live > 0) {
        drop_attempt(&race, race.live - 1,
                     how == CT_DIAL_OK ? APR_SUCCESS : APR_TIMEUP);
    }
    if (how != CT_DIAL_OK) {
        return how;
    }
    /* Still non-blocking underneath: APR waits with this timeout. */
    rv = apr_socket_timeout_set(race.won, setup->step);
    if (rv != APR_SUCCESS) {
        apr_socket_close(race.won);
        return CT_DIAL_UNREACHABLE;
    }
    *sock = race.won;
    *addr = race.won_addr;
    return CT_DIAL_OK;
}
