/*
 * tl_net.c: loopback sockets, the monotonic clock, the open-files limit
 * and size parsing for the bench tools.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tl_net.h"

uint64_t tl_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail with a valid pointer; zero is harmless
     * if it ever did, since every use is a difference. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * TL_NS_PER_S + (uint64_t)ts.tv_nsec;
}

int tl_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0) {
        return -1;
    }
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ? -1 : 0;
}

static void loopback(struct sockaddr_in *sa, int port)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

int tl_connect_start(int port, uint32_t source)
{
    struct sockaddr_in sa;
    int fd, one = 1, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* Ping-pong of one byte measures latency, not Nagle's delay. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        goto fail;
    }
    if (source != 0) {
        /* The port is chosen at connect(), per destination, as it would
         * be without the bind. */
        if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                       sizeof(one)) != 0) {
            goto fail;
        }
        loopback(&sa, 0);
        sa.sin_addr.s_addr = source;
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            goto fail;
        }
    }
    loopback(&sa, port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        && errno != EINPROGRESS) {
        goto fail;
    }
    return fd;
fail:
    saved = errno;
    (void)close(fd);
    errno = saved;
    return -1;
}

int tl_connect_result(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        return errno;
    }
    return err;
}

int tl_listen(int port, int backlog)
{
    struct sockaddr_in sa;
    int fd, one = 1, saved;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* A rerun right after a previous one finds its port in TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        goto fail;
    }
    loopback(&sa, port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(fd, backlog) != 0) {
        goto fail;
    }
    return fd;
fail:
    saved = errno;
    (void)close(fd);
    errno = saved;
    return -1;
}

rlim_t tl_raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    if (rl.rlim_cur >= want) {
        return rl.rlim_cur;
    }
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0
        || getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    return rl.rlim_cur;
}

int tl_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    int shift = 0;

    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }
    switch (*end) {
    case 'K': case 'k':
        shift = 10;
        end++;
        break;
    case 'M': case 'm':
        shift = 20;
        end++;
        break;
    case 'G': case 'g':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (*end != '\0' || (shift > 0 && v > (ULLONG_MAX >> shift))) {
        return -1;
    }
    *out = (uint64_t)(v << shift);
    return 0;
}
