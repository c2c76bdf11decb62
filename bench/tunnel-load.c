/*
 * tunnel-load: a load generator for CONNECT proxies.  One process, one
 * epoll loop, non-blocking sockets, so thousands of tunnels cost one
 * thread here and the proxy is what gets measured.  Modes:
 *
 *   bulk-up     N tunnels each send BYTES to a sink origin, half-close,
 *               and read the sink's count (and verdict with --verify)
 *   bulk-down   N tunnels each ask a source origin for BYTES and read them
 *               to end of stream (--verify checks every byte here)
 *   pingpong    one tunnel to an echo origin, ROUNDS round trips of SIZE
 *   setup       CONCURRENCY tunnels in flight for DURATION seconds: each
 *               opens, does one small echo round trip, and closes; with
 *               --refused each CONNECT is answered 403 and closed (what
 *               the proxy's server costs per connection, no origin)
 *   idle        open N tunnels to a hold origin, print READY, hold them
 *               until SIGTERM/SIGINT or --hold seconds
 *
 * Everything goes to 127.0.0.1.  The result is one line of key=value
 * pairs on stdout; progress and errors go to stderr.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "tl_load.h"
#include "tl_net.h"
#include "tl_pattern.h"

/* Largest read or write the generator issues. */
#define TL_MAX_IO (1024 * 1024)

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tunnel-load --mode MODE (--proxy PORT | --direct) "
        "--origin PORT [options]\n"
        "ports are on 127.0.0.1; 127.0.0.1:PORT and localhost:PORT work "
        "too\n"
        "modes: bulk-up bulk-down pingpong setup idle\n"
        "  --tunnels N        bulk, idle: tunnels (default 1)\n"
        "  --bytes SIZE       bulk: bytes per tunnel, K/M/G suffixes\n"
        "  --verify           bulk: check the pattern where it arrives\n"
        "  --size SIZE        pingpong, setup: message size (default 1)\n"
        "  --rounds N         pingpong: round trips (default 10000)\n"
        "  --warmup N         pingpong: unmeasured round trips (100)\n"
        "  --concurrency C    setup: tunnels in flight (default 16)\n"
        "  --duration S       setup: seconds of new tunnels (default 5)\n"
        "  --hold S           idle: seconds to hold at most (default 60)\n"
        "  --inflight N       idle: opens in flight (default 256)\n"
        "  --open-timeout S   seconds to wait for a 200 (default 5)\n"
        "  --stall-timeout S  seconds an open tunnel may move nothing\n"
        "                     before it counts as stalled (default 10)\n"
        "  --time-limit S     seconds for the whole run (default 600)\n"
        "  --io-size SIZE     bytes per read or write (default 256K)\n"
        "  --label TEXT       echoed as label= in the result line\n"
        "  --source ADDR      connect from this 127.x.y.z address\n"
        "  --hello            setup: the message is a TLS ClientHello\n"
        "                     naming the target (for ConnectTunnelSNI)\n"
        "  --refused          setup: the proxy is to refuse the CONNECT;\n"
        "                     a 403 counts, read to the end of its head\n");
}

static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/*
 * A port, or HOST:PORT where HOST names the loopback address: the bench
 * only ever talks to this machine, so any other host is refused.
 */
static int parse_port(const char *s, int *out)
{
    static const char *const local[] = { "127.0.0.1:", "localhost:" };
    size_t i, n;
    long v;

    for (i = 0; i < sizeof(local) / sizeof(*local); i++) {
        n = strlen(local[i]);
        if (strncmp(s, local[i], n) == 0) {
            s += n;
            break;
        }
    }
    if (parse_int(s, 1, 65535, &v) != 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_secs(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    /* A week bounds every wait, whatever was typed. */
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 604800) {
        return -1;
    }
    *out = v;
    return 0;
}

static void defaults(tl_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->tunnels = 1;
    o->bytes = 64ULL << 20;
    o->msg_size = 1;
    o->rounds = 10000;
    o->warmup = 100;
    o->concurrency = 16;
    o->duration = 5;
    o->hold = 60;
    o->open_timeout = 5;
    o->stall_timeout = 10;
    o->time_limit = 600;
    o->inflight = 256;
    o->io_size = 256 * 1024;
    o->label = "-";
}

enum {
    OPT_MODE = 256, OPT_PROXY, OPT_DIRECT, OPT_ORIGIN, OPT_TUNNELS, OPT_BYTES,
    OPT_VERIFY, OPT_SIZE, OPT_ROUNDS, OPT_WARMUP, OPT_CONC, OPT_DURATION,
    OPT_HOLD, OPT_INFLIGHT, OPT_OPEN_TIMEOUT, OPT_STALL_TIMEOUT,
    OPT_TIME_LIMIT, OPT_IO_SIZE, OPT_LABEL, OPT_SOURCE, OPT_HELLO, OPT_REFUSED,
    OPT_HELP
};

static const struct option longopts[] = {
    { "mode", required_argument, NULL, OPT_MODE },
    { "proxy", required_argument, NULL, OPT_PROXY },
    { "direct", no_argument, NULL, OPT_DIRECT },
    { "origin", required_argument, NULL, OPT_ORIGIN },
    { "tunnels", required_argument, NULL, OPT_TUNNELS },
    { "bytes", required_argument, NULL, OPT_BYTES },
    { "verify", no_argument, NULL, OPT_VERIFY },
    { "size", required_argument, NULL, OPT_SIZE },
    { "rounds", required_argument, NULL, OPT_ROUNDS },
    { "warmup", required_argument, NULL, OPT_WARMUP },
    { "concurrency", required_argument, NULL, OPT_CONC },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "hold", required_argument, NULL, OPT_HOLD },
    { "inflight", required_argument, NULL, OPT_INFLIGHT },
    { "open-timeout", required_argument, NULL, OPT_OPEN_TIMEOUT },
    { "stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT },
    { "time-limit", required_argument, NULL, OPT_TIME_LIMIT },
    { "io-size", required_argument, NULL, OPT_IO_SIZE },
    { "label", required_argument, NULL, OPT_LABEL },
    { "source", required_argument, NULL, OPT_SOURCE },
    { "hello", no_argument, NULL, OPT_HELLO },
    { "refused", no_argument, NULL, OPT_REFUSED },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 }
};

/* One option; 0, or -1 for a bad value. */
static int set_option(tl_opts *o, int opt, const char *arg)
{
    uint64_t size = 0;
    long v = 0;
    int rc = 0;

    switch (opt) {
    case OPT_MODE:
        o->mode = arg;
        break;
    case OPT_PROXY:
        rc = parse_port(arg, &o->proxy_port);
        break;
    case OPT_DIRECT:
        o->proxy_port = 0;
        break;
    case OPT_ORIGIN:
        rc = parse_port(arg, &o->origin_port);
        break;
    case OPT_TUNNELS:
        rc = parse_int(arg, 1, 1000000, &v);
        o->tunnels = (int)v;
        break;
    case OPT_BYTES:
        rc = tl_parse_size(arg, &o->bytes);
        break;
    case OPT_HELLO:
        o->hello = 1;
        return 0;
    case OPT_REFUSED:
        o->refused = 1;
        return 0;
    case OPT_VERIFY:
        o->verify = 1;
        break;
    case OPT_SIZE:
        rc = tl_parse_size(arg, &size) != 0 || size < 1
             || size > TL_PATTERN_MAX_CHUNK ? -1 : 0;
        o->msg_size = (size_t)size;
        break;
    case OPT_ROUNDS:
        rc = parse_int(arg, 1, 100000000, &o->rounds);
        break;
    case OPT_WARMUP:
        rc = parse_int(arg, 0, 1000000, &o->warmup);
        break;
    case OPT_CONC:
        rc = parse_int(arg, 1, 100000, &v);
        o->concurrency = (int)v;
        break;
    case OPT_DURATION:
        rc = parse_secs(arg, &o->duration);
        break;
    case OPT_HOLD:
        rc = parse_secs(arg, &o->hold);
        break;
    case OPT_INFLIGHT:
        rc = parse_int(arg, 1, 100000, &v);
        o->inflight = (int)v;
        break;
    case OPT_OPEN_TIMEOUT:
        rc = parse_secs(arg, &o->open_timeout);
        break;
    case OPT_STALL_TIMEOUT:
        rc = parse_secs(arg, &o->stall_timeout);
        break;
    case OPT_TIME_LIMIT:
        rc = parse_secs(arg, &o->time_limit);
        break;
    case OPT_IO_SIZE:
        rc = tl_parse_size(arg, &size) != 0 || size < 1
             || size > TL_MAX_IO ? -1 : 0;
        o->io_size = (size_t)size;
        break;
    case OPT_SOURCE:
        /* A loopback address only: the bench never leaves the machine. */
        rc = inet_pton(AF_INET, arg, &o->source) == 1
             && (ntohl(o->source) >> 24) == 127 ? 0 : -1;
        break;
    case OPT_LABEL:
        o->label = arg;
        break;
    default:
        rc = -1;
        break;
    }
    return rc;
}

static const char *option_name(int opt)
{
    const struct option *lo;

    for (lo = longopts; lo->name != NULL; lo++) {
        if (lo->val == opt) {
            return lo->name;
        }
    }
    return "?";
}

static int parse_args(int argc, char **argv, tl_opts *o)
{
    int opt, direct = 0;

    defaults(o);
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt == OPT_HELP) {
            usage(stdout);
            exit(0);
        }
        direct |= opt == OPT_DIRECT;
        if (set_option(o, opt, optarg) != 0) {
            fprintf(stderr, "tunnel-load: bad value for --%s: '%s'\n",
                    option_name(opt), optarg ? optarg : "");
            return -1;
        }
    }
    if (optind != argc || o->mode == NULL || o->origin_port == 0
        || (direct ? o->proxy_port != 0 : o->proxy_port == 0)) {
        fprintf(stderr, "tunnel-load: need --mode, --origin and exactly "
                "one of --proxy or --direct\n");
        return -1;
    }
    return 0;
}

int tl_run_wait(tl_run *run, struct epoll_event *evs, uint64_t deadline)
{
    uint64_t now = tl_now_ns();
    int ms = 100, n;

    if (deadline > run->t_limit) {
        deadline = run->t_limit;
    }
    if (deadline <= now) {
        ms = 0;
    }
    else if (deadline - now < 100000000ULL) {
        /* Round up: waking a hair early only costs one more loop. */
        ms = (int)((deadline - now + 999999) / 1000000);
    }
    n = epoll_wait(run->epfd, evs, TL_MAX_EVENTS, ms);
    if (n < 0 && errno == EINTR) {
        return 0;
    }
    return n;
}

void tl_run_report_head(const tl_run *run)
{
    const tl_opts *o = run->o;

    printf("mode=%s label=%s", o->mode, o->label);
    if (o->proxy_port != 0) {
        printf(" proxy=%d", o->proxy_port);
    }
    else {
        printf(" proxy=direct");
    }
    printf(" origin=%d", o->origin_port);
}

static int dispatch(tl_run *run)
{
    const char *m = run->o->mode;

    if (strcmp(m, "bulk-up") == 0) {
        return tl_mode_bulk(run, 1);
    }
    if (strcmp(m, "bulk-down") == 0) {
        return tl_mode_bulk(run, 0);
    }
    if (strcmp(m, "pingpong") == 0) {
        return tl_mode_pingpong(run);
    }
    if (strcmp(m, "setup") == 0) {
        return tl_mode_setup(run);
    }
    if (strcmp(m, "idle") == 0) {
        return tl_mode_idle(run);
    }
    fprintf(stderr, "tunnel-load: unknown mode '%s'\n", m);
    return 2;
}

int main(int argc, char **argv)
{
    tl_opts o;
    tl_run run;
    int rc;

    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    /* A peer that resets is a result to report, not a reason to die. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("tunnel-load: signal");
        return 2;
    }
    /* Two descriptors spare per tunnel, plus a few for ourselves. */
    if (tl_raise_nofile((rlim_t)o.tunnels + (rlim_t)o.concurrency + 64)
        == 0) {
        perror("tunnel-load: open-files limit");
        return 2;
    }
    memset(&run, 0, sizeof(run));
    run.o = &o;
    run.buf = malloc(o.io_size);
    run.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (run.buf == NULL || run.epfd < 0 || tl_pattern_init() != 0) {
        perror("tunnel-load: setup");
        return 2;
    }
    run.t_start = tl_now_ns();
    run.t_limit = run.t_start + (uint64_t)(o.time_limit * 1e9);
    rc = dispatch(&run);
    if (fflush(stdout) != 0) {
        rc = 2;
    }
    free(run.buf);
    (void)close(run.epfd);
    return rc;
}
