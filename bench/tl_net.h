/*
 * tl_net.h: the few socket, clock and limit helpers that the load
 * generator and the origin share.  Everything is IPv4 loopback: the bench
 * must never send a byte off this machine, so no function here takes an
 * address, only a port on 127.0.0.1.
 */

#ifndef TL_NET_H
#define TL_NET_H

#include <stdint.h>
#include <sys/resource.h>

/* Seconds to nanoseconds, for the many deadlines kept in ns. */
#define TL_NS_PER_S 1000000000ULL

/**
 * Monotonic time in nanoseconds; a clock that never jumps, so intervals
 * measured across an NTP step stay true.
 */
uint64_t tl_now_ns(void);

/**
 * Put fd into non-blocking mode; 0, or -1 with errno set.
 */
int tl_nonblock(int fd);

/**
 * Start a non-blocking connect to 127.0.0.1:port with Nagle off, from
 * the loopback address source (network order; 0: the kernel's choice);
 * the fd, or -1 with errno set.  Completion is seen as writability.
 */
int tl_connect_start(int port, uint32_t source);

/**
 * The outcome of a connect started by tl_connect_start(): 0, or the
 * errno the kernel recorded.
 */
int tl_connect_result(int fd);

/**
 * A non-blocking listening socket on 127.0.0.1:port; the fd or -1.
 */
int tl_listen(int port, int backlog);

/**
 * Raise the soft open-files limit towards want, never above the hard
 * limit; returns the soft limit in force afterwards (0 on failure).
 */
rlim_t tl_raise_nofile(rlim_t want);

/**
 * Parse a byte count with an optional K, M or G suffix (powers of 1024);
 * 0 on success, -1 on a malformed or overflowing value.
 */
int tl_parse_size(const char *s, uint64_t *out);

#endif /* TL_NET_H */
