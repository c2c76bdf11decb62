#!/bin/bash
# run-bench.sh: stock mod_proxy_connect against mod_connect_tunnel, side by
# side on this machine, with the machine's own limit (no proxy) beside
# them.  Builds the load generator and the origin, writes one httpd
# configuration per proxy under build/bench/ (same MPM, same tuning; only
# the CONNECT module differs), runs every scenario on each proxy in turn,
# round after round, and prints a Markdown table of the medians.
#
# Usage: run-bench.sh quick|full
# Environment (all optional):
#   HTTPD, LIBEXECDIR, CC   the httpd binary, its module directory, the
#                           compiler (the Makefile passes what configure
#                           found)
#   BENCH_PORT_BASE         first of the ~20 loopback ports used (26100)
#   BENCH_ROUNDS            rounds of each scenario (quick 3, full 5)
#   BENCH_VERIFY            0 skips the byte-by-byte check of bulk data
#   BENCH_SKIP              words from: bulk pingpong setup refused
#                           setupstrace cpu strace callgrind idle raised
#                           debian bandwidth; those
#                           parts are skipped
#   BENCH_HELLO             1: each setup tunnel's message is a 512-byte
#                           TLS ClientHello naming localhost instead of
#                           32 pattern bytes, so that a proxy with
#                           "ConnectTunnelSNI Match" in its
#                           configuration lines can be measured (e.g.
#                           ours with it, the extra proxy the same build
#                           without); Match rather than Require, for the
#                           start-up probe's bytes are not TLS
#   BENCH_STOCK_CONF, BENCH_OURS_CONF
#                           configuration lines added for that proxy only
#                           (e.g. "ConnectTunnelZeroCopy Off"); shown in
#                           the output
#   BENCH_EXTRA_SO          a third proxy: another build of a CONNECT
#                           module, loaded like ours
#   BENCH_EXTRA_MODULE      its module symbol (connect_tunnel_module)
#   BENCH_EXTRA_CONF        configuration lines for it
#   BENCH_EXTRA_PORT        or: a proxy already listening on 127.0.0.1
#                           (it must allow CONNECT to the origin ports);
#   BENCH_EXTRA_PID         its parent PID, for the process measurements
#   BENCH_EXTRA_NAME        the third column's name (extra)
#   BENCH_NGINX (or NGINX)  an nginx binary built with
#                           ngx_http_proxy_connect_module: one more column,
#                           beside the extra one if both are given
#   BENCH_NGINX_NAME        that column's name (nginx pc)
#
# Everything stays on 127.0.0.1.  Every process started here is stopped by
# its PID on the way out, failure or not.
set -u

MODE=${1:-quick}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_SRC=$ROOT/bench
B=$ROOT/build/bench
HTTPD=${HTTPD:-/usr/sbin/apache2}
LIBEXECDIR=${LIBEXECDIR:-$(apxs -q LIBEXECDIR 2>/dev/null \
                           || echo /usr/lib/apache2/modules)}
CC=${CC:-cc}
# nginx itself reads NGINX (listening sockets passed on a binary upgrade),
# so the binary comes in as BENCH_NGINX and nginx runs without NGINX set.
NGINX=${BENCH_NGINX:-${NGINX:-}}
NGINX_NAME=${BENCH_NGINX_NAME:-nginx pc}
OURS_SO=$ROOT/.libs/mod_connect_tunnel.so
LOAD=$B/tunnel-load
ORIGIN=$B/origin
RAW=$B/raw.log
NOTES=$B/notes.txt

case $MODE in
quick)
    ROUNDS=${BENCH_ROUNDS:-3}
    BULK=256M BULK8=32M         # one tunnel; each of eight
    PP_ROUNDS=5000 SETUP_SECS=1 TSYS_SECS=2
    STRACE_SIZES="16 64"        # MiB
    CG_SIZES="16 48"            # MiB
    IDLE_COUNTS="1000 5000 10000"
    OPEN_TIMEOUT=2 STALL_TIMEOUT=5
    BW_RATE=20000000 BW_SECS=5 ;;     # bytes/s; seconds per run
full)
    ROUNDS=${BENCH_ROUNDS:-5}
    BULK=1G BULK8=128M
    PP_ROUNDS=20000 SETUP_SECS=5 TSYS_SECS=5
    STRACE_SIZES="64 256"
    CG_SIZES="16 48"
    IDLE_COUNTS="1000 5000 10000"
    OPEN_TIMEOUT=3 STALL_TIMEOUT=10
    BW_RATE=20000000 BW_SECS=10 ;;
*)
    echo "usage: $0 quick|full" >&2
    exit 2 ;;
esac
VERIFY=${BENCH_VERIFY:-1}
SKIP=" ${BENCH_SKIP:-} "
# Bounds for single steps, so that a stuck proxy cannot hang the run.
RUN_LIMIT=120           # seconds for one generator run
START_LIMIT=30          # seconds for an httpd to answer
STOP_LIMIT=15           # seconds for an httpd to leave after SIGTERM

# The MPM both proxies run: event, every child started at once and kept
# (no spare-thread reaping), so that the process tree measured stays the
# same across a run.  "raised" gives a thread-per-tunnel proxy enough
# workers for the largest idle count.
MPM_STD="ServerLimit 4 StartServers 4 ThreadLimit 64 ThreadsPerChild 64
MaxRequestWorkers 256 MinSpareThreads 64 MaxSpareThreads 256"
# Debian's own event MPM settings (mods-available/mpm_event.conf): what an
# admin who only swaps the CONNECT module runs with.
MPM_DEBIAN="StartServers 2 MinSpareThreads 25 MaxSpareThreads 75
ThreadLimit 64 ThreadsPerChild 25 MaxRequestWorkers 150"
DEBIAN_COUNTS="1000 5000 9000"
# Idle tunnels are held from a client address of their own.  From the same
# address as the setup runs, each new connection to the proxy's port has
# to find a source port whose four-tuple is not among the held ones and
# their TIME_WAITs: a profile of the setup run with 9,000 held showed 13%
# of all CPU in the load generator's connect() (__inet_hash_connect,
# __inet_check_established), which measures the kernel's port search in
# the client, not the proxy.  Distinct clients are the real-world case.
IDLE_SOURCE=127.0.0.2
MPM_RAISED="ServerLimit 16 StartServers 16 ThreadLimit 660
ThreadsPerChild 660 MaxRequestWorkers 10560 MinSpareThreads 660
MaxSpareThreads 10560"

# --- bookkeeping: processes to stop, notes, results ----------------------

PIDS=""                 # generators, origin, strace, valgrind we started
HTTPD_PIDS=""           # httpd parents we started
declare -A RES          # "row|target" -> values, one per round
ROWS=()                 # row names in table order

log() {
    printf '%s\n' "$*" >&2
    printf '%s\n' "$*" >> "$B/run.log"
}

note() {
    log "NOTE: $*"
    printf -- '- %s\n' "$*" >> "$NOTES"
}

skipped() {
    case $SKIP in *" $1 "*) return 0 ;; esac
    return 1
}

# Wait for a PID to be gone, polling; 0 if it left within $2 seconds.
wait_gone() {
    local pid=$1 i
    for i in $(seq 1 $(($2 * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

children_of() {
    ps -e -o pid=,ppid= | awk -v p="$1" '$2 == p { print $1 }'
}

stop_httpd_pid() {
    local pid=$1 kids
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" "$STOP_LIMIT"; then
        note "httpd $pid ignored SIGTERM for ${STOP_LIMIT}s: killed"
        kill -KILL "$pid" $kids 2>/dev/null
    fi
    for k in $kids; do
        wait_gone "$k" 5 || kill -KILL "$k" 2>/dev/null
    done
    HTTPD_PIDS=$(printf '%s\n' $HTTPD_PIDS | grep -vx "$pid" | tr '\n' ' ')
}

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $HTTPD_PIDS; do
        stop_httpd_pid "$p"
    done
    for p in $PIDS; do
        wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    PIDS=$(printf '%s\n' $PIDS | grep -vx "$1" | tr '\n' ' ')
}

# --- numbers --------------------------------------------------------------

kv() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

add() {
    local row=$1 target=$2 value=$3
    case " ${ROWS[*]} " in
    *" $row "*) ;;
    *) ROWS+=("$row") ;;
    esac
    RES["$row|$target"]="${RES["$row|$target"]:-} $value"
}

# Rows are named with no spaces (the table spells them out later).
median() {
    printf '%s\n' $1 | grep -v '^$' | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR == 0) exit
              if (NR % 2) print v[(NR + 1) / 2]
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- building and configuring ---------------------------------------------

build_tools() {
    local common="$BENCH_SRC/tl_net.c $BENCH_SRC/tl_pattern.c"
    mkdir -p "$B"
    $CC -O2 -Wall -Wextra -Werror -o "$LOAD" "$BENCH_SRC/tunnel-load.c" \
        "$BENCH_SRC/tl_tunnel.c" "$BENCH_SRC/tl_stats.c" \
        "$BENCH_SRC/tl_bulk.c" "$BENCH_SRC/tl_rtt.c" \
        "$BENCH_SRC/tl_idle.c" $common -lm || return 1
    $CC -O2 -Wall -Wextra -Werror -o "$ORIGIN" "$BENCH_SRC/origin.c" \
        $common || return 1
}

port_free() {
    [ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
}

# Pick a base with all our ports free: other work on this machine may
# hold some of them.
pick_ports() {
    local base=${BENCH_PORT_BASE:-26100} try p ok
    for try in $(seq 1 20); do
        ok=1
        for p in $(seq "$base" $((base + 19))); do
            port_free "$p" || { ok=0; break; }
        done
        if [ $ok = 1 ]; then
            PORT_BASE=$base
            P_ECHO=$((base + 1)) P_SINK=$((base + 2)) P_SINKV=$((base + 3))
            P_SOURCE=$((base + 4)) P_HOLD=$((base + 5))
            return 0
        fi
        base=$((base + 20))
    done
    return 1
}

# One configuration: NAME PORT PROFILE MODULE_LINES
gen_conf() {
    local name=$1 port=$2 profile=$3 modules=$4 dir=$B/$1 user=
    mkdir -p "$dir/logs"
    if [ "$(id -u)" = 0 ]; then
        # httpd refuses to serve as root: children run as nobody.
        user="User nobody
Group nogroup"
    fi
    {
        echo "# Generated by bench/run-bench.sh; overwritten on every run."
        echo "ServerRoot \"$dir\""
        echo "ServerName localhost"
        echo "Listen 127.0.0.1:$port"
        echo "PidFile \"$dir/logs/httpd.pid\""
        echo "DefaultRuntimeDir \"$dir/logs\""
        echo "ErrorLog \"$dir/logs/error_log\""
        echo "LogLevel warn"
        echo "$user"
        echo "LoadModule mpm_event_module \"$LIBEXECDIR/mod_mpm_event.so\""
        echo "LoadModule authz_core_module \"$LIBEXECDIR/mod_authz_core.so\""
        echo "LoadModule authz_host_module \"$LIBEXECDIR/mod_authz_host.so\""
        echo "LoadModule proxy_module \"$LIBEXECDIR/mod_proxy.so\""
        echo "$modules"
        echo "Timeout 60"
        echo "ListenBacklog 4096"
        printf '%s\n' $profile | paste -d' ' - -
        echo "MaxConnectionsPerChild 0"
        echo "ProxyRequests On"
        echo "AllowCONNECT $P_ECHO-$P_HOLD"
        echo "<Proxy \"*\">"
        echo "    Require ip 127.0.0.0/8"
        echo "</Proxy>"
    } > "$dir/httpd.conf"
    "$HTTPD" -t -d "$dir" -f "$dir/httpd.conf" 2>> "$B/run.log"
}

# The CONNECT module of a target and what it needs beyond the shared
# configuration.  Our module refuses loopback destinations unless allowed;
# the origin is on loopback.  <IfDirective> keeps the line harmless for an
# older build given as the extra proxy.
module_lines() {
    local allow="<IfDirective ConnectTunnelAllow>
ConnectTunnelAllow 127.0.0.1
</IfDirective>"
    case $1 in
    stock)
        echo "LoadModule proxy_connect_module" \
             "\"$LIBEXECDIR/mod_proxy_connect.so\""
        printf '%s\n' "${BENCH_STOCK_CONF:-}" ;;
    ours)
        echo "LoadModule connect_tunnel_module \"$OURS_SO\""
        printf '%s\n%s\n' "$allow" "${BENCH_OURS_CONF:-}" ;;
    extra)
        echo "LoadModule ${BENCH_EXTRA_MODULE:-connect_tunnel_module}" \
             "\"$BENCH_EXTRA_SO\""
        printf '%s\n%s\n' "$allow" "${BENCH_EXTRA_CONF:-}" ;;
    esac
}

# A proxy answers once one echo round trip through it works.
probe() {
    "$LOAD" --mode pingpong --proxy "$1" --origin "$P_ECHO" --rounds 1 \
        --warmup 0 --open-timeout 2 --time-limit 5 --label probe \
        >/dev/null 2>&1
}

# Start the instance NAME; its parent PID lands in PID_<name>.
start_httpd() {
    local name=$1 port=$2 dir=$B/$1 pid= i
    rm -f "$dir/logs/httpd.pid"
    "$HTTPD" -d "$dir" -f "$dir/httpd.conf" -k start 2>> "$B/run.log" \
        || return 1
    for i in $(seq 1 $((START_LIMIT * 10))); do
        [ -s "$dir/logs/httpd.pid" ] && pid=$(cat "$dir/logs/httpd.pid")
        [ -n "$pid" ] && break
        sleep 0.1
    done
    [ -n "$pid" ] || return 1
    HTTPD_PIDS="$HTTPD_PIDS $pid"
    eval "PID_$name=$pid"
    for i in $(seq 1 $START_LIMIT); do
        probe "$port" && return 0
        sleep 1
    done
    note "$name did not answer on port $port within ${START_LIMIT}s"
    return 1
}

stop_httpd() {
    local pid
    eval "pid=\${PID_$1:-}"
    [ -n "$pid" ] && stop_httpd_pid "$pid"
    eval "PID_$1="
}

# --- nginx with ngx_http_proxy_connect_module ------------------------------

# One worker per CPU, as nginx is meant to run; no CPU affinity (httpd's
# processes have none either).  Same allowed ports, client network, 60 s
# connect and idle timeouts and listen backlog as the httpd instances; each
# side keeps its own relay buffer size.  The descriptor limit is the one
# the script raised, which the master and its workers inherit.
gen_nginx_conf() {
    local dir=$B/nginx port=$1 user= conns
    mkdir -p "$dir/logs"
    [ "$(id -u)" = 0 ] && user="user nobody nogroup;"
    conns=$(ulimit -n)
    case $conns in
    unlimited) conns=65536 ;;
    esac
    [ "$conns" -gt 65536 ] && conns=65536
    cat > "$dir/nginx.conf" <<EOF
# Generated by bench/run-bench.sh; overwritten on every run.
$user
daemon off;
master_process on;
worker_processes $(nproc);
pid $dir/logs/nginx.pid;
error_log $dir/logs/error_log warn;
events {
    worker_connections $conns;
}
http {
    access_log off;
    server {
        listen 127.0.0.1:$port backlog=4096;
        proxy_connect;
        proxy_connect_allow $P_ECHO-$P_HOLD;
        proxy_connect_connect_timeout 60s;
        proxy_connect_data_timeout 60s;
        allow 127.0.0.0/8;
        deny all;
    }
}
EOF
    env -u NGINX "$NGINX" -t -p "$dir/" -c "$dir/nginx.conf" \
        -e "$dir/logs/error_log" \
        >> "$B/run.log" 2>&1
}

# Start nginx in the foreground of a background job: its master's PID is
# the job's, and lands in PID_nginx like an httpd parent's.
start_nginx() {
    local port=$1 dir=$B/nginx pid i
    env -u NGINX "$NGINX" -p "$dir/" -c "$dir/nginx.conf" \
        -e "$dir/logs/error_log" \
        >> "$B/run.log" 2>&1 &
    pid=$!
    HTTPD_PIDS="$HTTPD_PIDS $pid"
    PID_nginx=$pid
    for i in $(seq 1 $START_LIMIT); do
        kill -0 "$pid" 2>/dev/null || break
        probe "$port" && return 0
        sleep 1
    done
    note "nginx did not answer on port $port within ${START_LIMIT}s"
    return 1
}

# --- running the generator ------------------------------------------------

TARGETS="direct stock ours"

proxy_port_of() {
    case $1 in
    stock) echo $((PORT_BASE + 10)) ;;
    ours) echo $((PORT_BASE + 11)) ;;
    extra) echo "${BENCH_EXTRA_PORT:-$((PORT_BASE + 12))}" ;;
    stock_raised) echo $((PORT_BASE + 13)) ;;
    stock_deb) echo $((PORT_BASE + 16)) ;;
    ours_deb) echo $((PORT_BASE + 17)) ;;
    ours_raised) echo $((PORT_BASE + 14)) ;;
    extra_raised) echo $((PORT_BASE + 15)) ;;
    nginx) echo $((PORT_BASE + 18)) ;;
    ours_bw) echo $((PORT_BASE + 6)) ;;
    ours_bwc) echo $((PORT_BASE + 7)) ;;
    esac
}

# The httpd parent of a target, if we know it.
parent_of() {
    case $1 in
    extra) [ -n "${BENCH_EXTRA_PORT:-}" ] && { echo "${BENCH_EXTRA_PID:-}";
                                                return; } ;;
    esac
    eval "echo \${PID_$1:-}"
}

# Run the generator against TARGET (direct or a proxy name) with ARGS;
# the result line goes to stdout and the raw log.  Failures are noted.
load() {
    local target=$1 what=$2 line rc
    shift 2
    if [ "$target" = direct ]; then
        set -- --direct "$@"
    else
        set -- --proxy "$(proxy_port_of "$target")" "$@"
    fi
    # LOAD_PREFIX: a command to run the generator under (taskset).
    line=$(timeout -k 5 $((RUN_LIMIT + 30)) ${LOAD_PREFIX:-} "$LOAD" "$@" \
           --time-limit "$RUN_LIMIT" --stall-timeout "$STALL_TIMEOUT" \
           --label "$what/$target" \
           2>> "$B/load.err")
    rc=$?
    printf '%s\n' "$line" >> "$RAW"
    if [ $rc != 0 ] || [ -z "$line" ]; then
        note "$what on $target: exit $rc: ${line:-no output}"
    fi
    case $line in
    *verify=bad*|*wrong-*) note "WRONG BYTES: $what on $target: $line" ;;
    esac
    printf '%s\n' "$line"
}

# --- process measurements -------------------------------------------------

tree_of() {
    [ -n "$1" ] || return 0
    echo "$1"
    children_of "$1"
}

# utime + stime in clock ticks, summed over a process tree.
cpu_ticks() {
    local p sum=0 f
    for p in $(tree_of "$1"); do
        f=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        set -- $f
        sum=$((sum + ${12} + ${13}))
    done
    echo $sum
}

# "RSS_KiB THREADS" summed over a process tree.
mem_threads() {
    local p rss=0 thr=0 r t
    for p in $(tree_of "$1"); do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        t=$(awk '/^Threads:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        rss=$((rss + ${r:-0}))
        thr=$((thr + ${t:-0}))
    done
    echo "$rss $thr"
}

set_affinity() {
    local cpus=$1 p
    shift
    for p in "$@"; do
        taskset -a -p -c "$cpus" "$p" >/dev/null 2>&1 \
            || note "taskset -c $cpus on pid $p failed"
    done
}

# --- scenarios ------------------------------------------------------------

# ngx_http_proxy_connect_module ends the whole tunnel at the first end of
# stream from either side: the up scenarios, whose sink reports only after
# the client's half-close reached it, cannot finish through nginx.  True
# (and noted once) for such a target and direction.
no_half_close() {
    [ "$1" = nginx ] && [ "$2" = up ] || return 1
    if [ -z "${NOTED_HALF_CLOSE:-}" ]; then
        note "$NGINX_NAME: the up scenarios are not run: it closes both" \
             "sides at the client's end of stream (no half-close), so" \
             "the sink's report cannot come back"
        NOTED_HALF_CLOSE=1
    fi
}

# Bulk through one tunnel and through eight; proxy CPU around each
# one-tunnel run.
scenario_bulk() {
    local r t dir line up=$P_SINK v ticks0 ticks1 parent hz bytes verify=
    hz=$(getconf CLK_TCK)
    if [ "$VERIFY" = 1 ]; then
        verify=--verify up=$P_SINKV
    fi
    for r in $(seq 1 "$ROUNDS"); do
        log "bulk: round $r/$ROUNDS"
        for dir in down up; do
            for t in $TARGETS; do
                no_half_close "$t" "$dir" && continue
                parent=$(parent_of "$t")
                ticks0=$([ -n "$parent" ] && cpu_ticks "$parent")
                if [ $dir = up ]; then
                    line=$(load "$t" bulk-up1 --mode bulk-up --origin "$up" \
                           --bytes "$BULK" $verify)
                else
                    line=$(load "$t" bulk-down1 --mode bulk-down \
                           --origin "$P_SOURCE" --bytes "$BULK" $verify)
                fi
                ticks1=$([ -n "$parent" ] && cpu_ticks "$parent")
                [ "$(kv "$line" failed)" = 0 ] || continue
                add "bulk_${dir}_1" "$t" "$(kv "$line" mib_s)"
                bytes=$(kv "$line" bytes)
                if [ -n "$parent" ] && ! skipped cpu; then
                    v=$(awk -v d=$((ticks1 - ticks0)) -v hz="$hz" \
                        -v b="$bytes" 'BEGIN { printf "%.3f",
                        d / hz / (b / 1073741824) }')
                    add "cpu_${dir}" "$t" "$v"
                fi
            done
            for t in $TARGETS; do
                no_half_close "$t" "$dir" && continue
                if [ $dir = up ]; then
                    line=$(load "$t" bulk-up8 --mode bulk-up --tunnels 8 \
                           --origin "$up" --bytes "$BULK8" $verify)
                else
                    line=$(load "$t" bulk-down8 --mode bulk-down --tunnels 8 \
                           --origin "$P_SOURCE" --bytes "$BULK8" $verify)
                fi
                [ "$(kv "$line" failed)" = 0 ] \
                    && add "bulk_${dir}_8" "$t" "$(kv "$line" mib_s)"
            done
        done
    done
}

# Bandwidth limits, ours only: a second instance of our module whose main
# server limits each tunnel to BW_RATE bytes/s and whose virtual host on
# the next port limits each client to the same.  One tunnel runs about
# BW_SECS seconds each way; eight tunnels of one client share the client
# limit.  Rows: the rate measured (MB/s, powers of 1000 as the directive
# counts) and its accuracy against the limit; the proxy's CPU per second
# and per GiB limited, and per GiB for the same bytes unlimited (the
# "ours" instance) next to it.
scenario_bandwidth() {
    local r dir line port2 hz t0 t1 secs bytes parent mode origin
    local total=$((BW_RATE * BW_SECS))
    hz=$(getconf CLK_TCK)
    port2=$(proxy_port_of ours_bwc)
    gen_conf ours_bw "$(proxy_port_of ours_bw)" "$MPM_STD" \
        "$(module_lines ours)
ConnectTunnelBandwidth $BW_RATE
Listen 127.0.0.1:$port2
<VirtualHost 127.0.0.1:$port2>
ConnectTunnelBandwidth 0
ConnectTunnelClientBandwidth $BW_RATE
</VirtualHost>" || { note "ours_bw: bad configuration"; return; }
    start_httpd ours_bw "$(proxy_port_of ours_bw)" \
        || { note "ours_bw did not start"; return; }
    parent=$(parent_of ours_bw)
    for r in $(seq 1 "$ROUNDS"); do
        log "bandwidth: round $r/$ROUNDS"
        for dir in down up; do
            if [ $dir = up ]; then
                mode=bulk-up origin=$P_SINK
            else
                mode=bulk-down origin=$P_SOURCE
            fi
            t0=$(cpu_ticks "$parent")
            line=$(load ours_bw "bw-$dir-1" --mode $mode --origin "$origin" \
                   --bytes "$total")
            t1=$(cpu_ticks "$parent")
            [ "$(kv "$line" failed)" = 0 ] || continue
            secs=$(kv "$line" seconds) bytes=$(kv "$line" bytes)
            bw_rows "bw_${dir}_1" "$bytes" "$secs" $((t1 - t0)) "$hz"
            t0=$(cpu_ticks "$(parent_of ours)")
            line=$(load ours "bw-$dir-free" --mode $mode --origin "$origin" \
                   --bytes "$total")
            t1=$(cpu_ticks "$(parent_of ours)")
            [ "$(kv "$line" failed)" = 0 ] || continue
            add "bwfree_${dir}_gib" ours "$(awk -v d=$((t1 - t0)) \
                -v hz="$hz" -v b="$(kv "$line" bytes)" \
                'BEGIN { printf "%.3f", d / hz / (b / 1073741824) }')"
        done
        t0=$(cpu_ticks "$parent")
        line=$(load ours_bwc bw-client8 --mode bulk-down --tunnels 8 \
               --origin "$P_SOURCE" --bytes $((total / 8)))
        t1=$(cpu_ticks "$parent")
        [ "$(kv "$line" failed)" = 0 ] || continue
        bw_rows bw_client8 "$(kv "$line" bytes)" "$(kv "$line" seconds)" \
            $((t1 - t0)) "$hz"
    done
    stop_httpd ours_bw
}

# The rows of one limited run: KEY BYTES SECONDS TICKS HZ.
bw_rows() {
    local k=$1 b=$2 s=$3 d=$4 hz=$5
    add "${k}_mbs" ours "$(awk -v b="$b" -v s="$s" \
        'BEGIN { printf "%.3f", b / s / 1e6 }')"
    add "${k}_acc" ours "$(awk -v b="$b" -v s="$s" -v l="$BW_RATE" \
        'BEGIN { printf "%.1f", 100 * b / s / l }')"
    add "${k}_cpus" ours "$(awk -v d="$d" -v s="$s" -v hz="$hz" \
        'BEGIN { printf "%.1f", 1000 * d / hz / s }')"
    add "${k}_gib" ours "$(awk -v d="$d" -v hz="$hz" -v b="$b" \
        'BEGIN { printf "%.3f", d / hz / (b / 1073741824) }')"
}

# Pin client, origin and every proxy thread to CPU 0, or undo it.
pin_all() {
    local cpus=$1 t parent pids="$ORIGIN_PID"
    for t in $TARGETS; do
        parent=$(parent_of "$t")
        pids="$pids $(tree_of "$parent")"
    done
    set_affinity "$cpus" $pids
}

scenario_pingpong() {
    local r t size line pin tag prefix
    local all="0-$(($(nproc) - 1))"
    for pin in free pinned; do
        prefix=
        if [ $pin = pinned ]; then
            pin_all 0
            prefix="taskset -c 0"
        fi
        for r in $(seq 1 "$ROUNDS"); do
            log "pingpong ($pin): round $r/$ROUNDS"
            for size in 1 16K; do
                for t in $TARGETS; do
                    tag=pp_${size}_${pin}
                    line=$(LOAD_PREFIX=$prefix load "$t" "$tag" \
                           --mode pingpong --origin "$P_ECHO" \
                           --size "$size" --rounds "$PP_ROUNDS")
                    [ "$(kv "$line" failed)" = 0 ] || continue
                    add "${tag}_p50" "$t" "$(kv "$line" p50_us)"
                    add "${tag}_p99" "$t" "$(kv "$line" p99_us)"
                done
            done
        done
        if [ $pin = pinned ]; then
            pin_all "$all"
        fi
    done
}

scenario_setup() {
    local r t c line
    for r in $(seq 1 "$ROUNDS"); do
        log "setup: round $r/$ROUNDS"
        for c in 16 64; do
            for t in $TARGETS; do
                line=$(load "$t" "setup_c$c" --mode setup --origin "$P_ECHO" \
                       --concurrency "$c" --duration "$SETUP_SECS" \
                       --size 32 --open-timeout "$OPEN_TIMEOUT" \
                       ${BENCH_HELLO:+--hello})
                [ -n "$(kv "$line" tunnels_s)" ] || continue
                add "setup_c${c}_rate" "$t" "$(kv "$line" tunnels_s)"
                add "setup_c${c}_p50" "$t" "$(kv "$line" c200_p50_us)"
                add "setup_c${c}_p99" "$t" "$(kv "$line" c200_p99_us)"
            done
            sleep 1     # let TIME_WAIT and the proxies' lingering settle
        done
    done
}

# The server's own cost per connection, without a tunnel: each CONNECT
# names a port no proxy allows (9, discard), so it is answered 403 and
# closed before any origin is dialled.  An httpd module cannot open
# tunnels faster than its httpd answers these; nginx's figure is the same
# for nginx.  Concurrency 16, as the first setup row.
REFUSED_PORT=9
scenario_refused() {
    local r t line
    for r in $(seq 1 "$ROUNDS"); do
        log "refused: round $r/$ROUNDS"
        for t in $TARGETS; do
            [ "$t" = direct ] && continue
            line=$(load "$t" refused_c16 --mode setup --refused \
                   --origin "$REFUSED_PORT" --concurrency 16 \
                   --duration "$SETUP_SECS" --open-timeout "$OPEN_TIMEOUT")
            [ -n "$(kv "$line" tunnels_s)" ] || continue
            add refused_c16_rate "$t" "$(kv "$line" tunnels_s)"
        done
        sleep 1
    done
}

# strace -c over every thread of the httpd children during one transfer;
# prints the number of system calls.
strace_calls() {
    local t=$1 dir=$2 mib=$3 parent kids out=$B/strace.$1.$2.$3 spid args=
    local line
    parent=$(parent_of "$t")
    kids=$(children_of "$parent")
    for k in $kids; do
        args="$args -p $k"
    done
    strace -c -f -qq -o "$out" $args 2>> "$B/run.log" &
    spid=$!
    PIDS="$PIDS $spid"
    sleep 1     # strace attaches thread by thread
    if [ "$dir" = up ]; then
        line=$(load "$t" "strace_${dir}_$mib" --mode bulk-up \
               --origin "$P_SINK" --bytes "${mib}M")
    else
        line=$(load "$t" "strace_${dir}_$mib" --mode bulk-down \
               --origin "$P_SOURCE" --bytes "${mib}M")
    fi
    kill -INT "$spid" 2>/dev/null
    wait_gone "$spid" 30 || kill -KILL "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    forget_pid "$spid"
    # A failed transfer moved less: its count would skew the difference.
    [ "$(kv "$line" failed)" = 0 ] || return 0
    awk '$NF == "total" { print $4 }' "$out"
}

scenario_strace() {
    local t dir small big c1 c2
    set -- $STRACE_SIZES
    small=$1 big=$2
    for dir in down up; do
        for t in $TARGETS; do
            [ "$t" = direct ] && continue
            [ -n "$(parent_of "$t")" ] || continue
            no_half_close "$t" "$dir" && continue
            log "strace: $t $dir"
            c1=$(strace_calls "$t" "$dir" "$small")
            c2=$(strace_calls "$t" "$dir" "$big")
            if [ -n "$c1" ] && [ -n "$c2" ]; then
                add "sys_${dir}" "$t" "$(awk -v a="$c1" -v b="$c2" \
                    -v s="$small" -v l="$big" \
                    'BEGIN { printf "%.1f", (b - a) / (l - s) }')"
            fi
        done
    done
}

# tsys_one TARGET KEY LOAD-ARGS...: KEY tsys (tunnels) or rsys (refusals)
# names the rows and the table (strace.setup.NAME, strace.refused.NAME).
# strace -c -f attached to every process of a proxy (the httpd parent and
# children, or nginx's master and workers) during one setup run at
# concurrency 16; records system calls and futex calls per tunnel the
# generator completed.  futex stands in for cross-thread wake-ups (it also
# counts waits, and the MPM's own listener-to-worker hand-off).
tsys_one() {
    local t=$1 key=$2 out=$B/strace.setup.$1 spid args= p line n total futex
    shift 2
    [ "$key" = rsys ] && out=$B/strace.refused.$t
    for p in $(tree_of "$(parent_of "$t")"); do
        args="$args -p $p"
    done
    [ -n "$args" ] || return 0
    strace -c -f -qq -o "$out" $args 2>> "$B/run.log" &
    spid=$!
    PIDS="$PIDS $spid"
    sleep 1     # strace attaches thread by thread
    line=$(load "$t" "${key}_strace" --mode setup --concurrency 16 \
           --duration "$TSYS_SECS" --size 32 --open-timeout "$OPEN_TIMEOUT" \
           "$@")
    sleep 0.5   # the proxy's side of the last closes
    kill -INT "$spid" 2>/dev/null
    wait_gone "$spid" 30 || kill -KILL "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    forget_pid "$spid"
    n=$(kv "$line" tunnels)
    [ -n "$n" ] && [ "$n" -gt 0 ] || return 0
    total=$(awk '$NF == "total" { print $4 }' "$out")
    futex=$(awk '$NF == "futex" { print $4 }' "$out")
    [ -n "$total" ] || return 0
    add "${key}_total" "$t" "$(awk -v c="$total" -v n="$n" \
        'BEGIN { printf "%.1f", c / n }')"
    add "${key}_futex" "$t" "$(awk -v c="${futex:-0}" -v n="$n" \
        'BEGIN { printf "%.2f", c / n }')"
}

scenario_setup_strace() {
    local t
    for t in $TARGETS; do
        [ "$t" = direct ] && continue
        log "setup under strace: $t"
        tsys_one "$t" tsys --origin "$P_ECHO"
        skipped refused && continue
        log "refusals under strace: $t"
        tsys_one "$t" rsys --origin "$REFUSED_PORT" --refused
    done
}

# One single-process httpd under callgrind, one transfer; prints Ir.
callgrind_ir() {
    local t=$1 dir=$2 mib=$3 name=cg_$1 port vpid out i line ok
    port=$((PORT_BASE + 16))
    out=$B/cg/$t.$dir.$mib.out
    gen_conf "$name" "$port" "$MPM_STD" "$(module_lines "$t")" || return 1
    # Callgrind opens its file as root at start and again at exit, by then
    # as the children's user: that user must own it.
    rm -f "$out"
    : > "$out"
    [ "$(id -u)" = 0 ] && chown nobody "$out"
    valgrind --tool=callgrind --vgdb=no --callgrind-out-file="$out" \
        "$HTTPD" -X -d "$B/$name" -f "$B/$name/httpd.conf" \
        >> "$B/valgrind.log" 2>&1 &
    vpid=$!
    PIDS="$PIDS $vpid"
    for i in $(seq 1 60); do
        probe "$port" && break
        sleep 1
    done
    set -- --proxy "$port" --origin "$P_SOURCE" --mode bulk-down
    [ "$dir" = up ] && set -- --proxy "$port" --origin "$P_SINK" \
                               --mode bulk-up
    line=$(timeout -k 5 300 "$LOAD" "$@" --bytes "${mib}M" --time-limit 240 \
           --stall-timeout "$STALL_TIMEOUT" \
           --label "callgrind_${dir}_$mib/$t" 2>> "$B/load.err")
    ok=$?
    printf '%s\n' "$line" >> "$RAW"
    [ $ok = 0 ] || note "callgrind $t $dir $mib MiB: transfer failed: $line"
    kill -TERM "$vpid" 2>/dev/null
    wait_gone "$vpid" 120 || { note "callgrind $t did not exit";
                              kill -KILL "$vpid" 2>/dev/null; }
    wait "$vpid" 2>/dev/null
    forget_pid "$vpid"
    # A failed transfer moved less: its count would skew the difference.
    [ $ok = 0 ] || return 0
    awk '/^(summary|totals):/ { print $2; exit }' "$out" 2>/dev/null
}

scenario_callgrind() {
    local t small big i1 i2 dir
    set -- $CG_SIZES
    small=$1 big=$2
    mkdir -p "$B/cg"
    for dir in down up; do
        for t in stock ours ${EXTRA_LOCAL:+extra}; do
            log "callgrind: $t $dir"
            i1=$(callgrind_ir "$t" "$dir" "$small")
            i2=$(callgrind_ir "$t" "$dir" "$big")
            [ -n "$i1" ] && [ -n "$i2" ] || continue
            if [ "$i2" -le "$i1" ]; then
                # The bytes took a cheaper path in the larger run (a relay
                # that can switch paths mid-tunnel): no per-MiB figure.
                note "callgrind $t $dir: $big MiB counted $i2 instructions," \
                     "$small MiB $i1; the relay's path differed between" \
                     "the runs (see build/bench/cg/)"
                continue
            fi
            add "ir_${dir}" "$t" "$(awk -v a="$i1" -v b="$i2" \
                -v s="$small" -v l="$big" \
                'BEGIN { printf "%.0f", (b - a) / (l - s) }')"
        done
    done
}

# Hold N idle tunnels through target t; record held, RSS, threads.
idle_one() {
    local t=$1 n=$2 tag=$3 parent=$4 during=${5:-} out=$B/idle.out gpid i
    local mem rss thr line base col=${1%_raised}
    col=${col%_deb}
    base=$(mem_threads "$parent")
    : > "$out"
    if [ "$t" = direct ]; then
        set -- --direct
    else
        set -- --proxy "$(proxy_port_of "$t")"
    fi
    "$LOAD" "$@" --mode idle --origin "$P_HOLD" --tunnels "$n" \
        --source "$IDLE_SOURCE" \
        --hold "$RUN_LIMIT" --time-limit "$RUN_LIMIT" --inflight 256 \
        --open-timeout "$OPEN_TIMEOUT" --label "$tag/$t" \
        > "$out" 2>> "$B/load.err" &
    gpid=$!
    PIDS="$PIDS $gpid"
    for i in $(seq 1 $((RUN_LIMIT * 10))); do
        grep -q '^READY' "$out" && break
        kill -0 "$gpid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 0.5   # let the proxy finish whatever the last opens started
    mem=$(mem_threads "$parent")
    [ -n "$during" ] && "$during" "$t" "$col"
    kill -TERM "$gpid" 2>/dev/null
    wait_gone "$gpid" 20 || kill -KILL "$gpid" 2>/dev/null
    wait "$gpid" 2>/dev/null
    forget_pid "$gpid"
    line=$(grep '^mode=idle' "$out")
    printf '%s\n' "${line:-idle $tag/$t: no result}" >> "$RAW"
    [ -n "$line" ] || { note "idle $n on $t: no result"; return; }
    add "${tag}_held" "$col" "$(kv "$line" held)"
    if [ -n "$parent" ]; then
        set -- $mem
        rss=$1 thr=$2
        add "${tag}_rss" "$col" "$(awk -v r="$rss" \
            'BEGIN { printf "%.1f", r / 1024 }')"
        add "${tag}_thr" "$col" "$thr"
        set -- $base
        add "${tag}_per" "$col" "$(awk -v a="$1" -v b="$rss" \
            -v h="$(kv "$line" held)" \
            'BEGIN { if (h > 0) printf "%.1f", (b - a) / h; else print "" }')"
    fi
    sleep 1     # the proxy closes its side; the next run starts clean
}

scenario_idle() {
    local n t
    for n in $IDLE_COUNTS; do
        for t in $TARGETS; do
            log "idle: $n on $t"
            idle_one "$t" "$n" "idle$n" "$(parent_of "$t")"
        done
    done
}

# The same idle counts with MaxRequestWorkers raised, one proxy at a time
# (two such trees at once would be more threads than this machine allows).
scenario_idle_raised() {
    local n t name
    for t in stock ours ${EXTRA_LOCAL:+extra}; do
        name=${t}_raised
        gen_conf "$name" "$(proxy_port_of "$name")" "$MPM_RAISED" \
            "$(module_lines "$t")" || { note "$name: bad config"; continue; }
        log "idle raised: starting $name"
        if ! start_httpd "$name" "$(proxy_port_of "$name")"; then
            note "$name did not start"
            stop_httpd "$name"
            continue
        fi
        for n in $IDLE_COUNTS; do
            log "idle raised: $n on $t"
            idle_one "$name" "$n" "raised$n" "$(parent_of "$name")"
        done
        stop_httpd "$name"
    done
}

# Setup rate (concurrency 16) through proxy instance t, recorded as key.
deb_setup() {
    local t=$1 col=$2 key=${3:-deb_setup_held} line
    line=$(load "$t" "$key" --mode setup --origin "$P_ECHO" \
           --concurrency 16 --duration "$SETUP_SECS" --size 32 \
           --open-timeout "$OPEN_TIMEOUT")
    [ -n "$(kv "$line" tunnels_s)" ] && add "$key" "$col" \
        "$(kv "$line" tunnels_s)"
}

# Both proxies with Debian's MPM settings, one at a time: idle tunnels
# held at each count, and the setup rate with none held and with the
# largest count held.
scenario_idle_debian() {
    local n t name last
    set -- $DEBIAN_COUNTS
    for last; do :; done
    for t in stock ours; do
        name=${t}_deb
        gen_conf "$name" "$(proxy_port_of "$name")" "$MPM_DEBIAN" \
            "$(module_lines "$t")" || { note "$name: bad config"; continue; }
        log "idle debian: starting $name"
        if ! start_httpd "$name" "$(proxy_port_of "$name")"; then
            note "$name did not start"
            stop_httpd "$name"
            continue
        fi
        deb_setup "$name" "$t" deb_setup_none
        for n in $DEBIAN_COUNTS; do
            log "idle debian: $n on $t"
            if [ "$n" = "$last" ]; then
                idle_one "$name" "$n" "deb$n" "$(parent_of "$name")" \
                    deb_setup
            else
                idle_one "$name" "$n" "deb$n" "$(parent_of "$name")"
            fi
        done
        stop_httpd "$name"
    done
}

# --- the table ------------------------------------------------------------

# 256M -> 256 MiB
human() {
    echo "$1" | sed 's/K$/ KiB/; s/M$/ MiB/; s/G$/ GiB/'
}

# The table's words for a row key.
describe() {
    local k=$1 n
    case $k in
    bulk_down_1) echo "bulk down, 1 tunnel × $(human $BULK) (MiB/s, ↑)" ;;
    bulk_up_1) echo "bulk up, 1 tunnel × $(human $BULK) (MiB/s, ↑)" ;;
    bulk_down_8) echo "bulk down, 8 tunnels × $(human $BULK8)" \
                      "(MiB/s total, ↑)" ;;
    bulk_up_8) echo "bulk up, 8 tunnels × $(human $BULK8) (MiB/s total, ↑)" ;;
    pp_*) set -- $(echo "$k" | tr '_' ' ')
          echo "ping-pong $2 B$([ "$3" = pinned ] && echo ', 1 CPU')" \
               "$4 (µs, ↓)" \
              | sed 's/16K B/16 KiB/' ;;
    setup_c*_rate) n=${k#setup_c}; n=${n%_rate}
          echo "setup, concurrency $n (tunnels/s, ↑)" ;;
    setup_c*_p50|setup_c*_p99) n=${k#setup_c}; n=${n%_*}
          echo "setup, concurrency $n, connect→200 ${k##*_} (µs, ↓)" ;;
    tsys_total) echo "setup, concurrency 16: proxy syscalls per tunnel" \
                     "(strace -c -f, ↓)" ;;
    tsys_futex) echo "setup, concurrency 16: proxy futex calls per tunnel" \
                     "(strace -c -f, ↓)" ;;
    refused_c16_rate) echo "refused CONNECT (403, no origin), concurrency" \
                           "16 (answers/s, ↑)" ;;
    rsys_total) echo "refused CONNECT, concurrency 16: proxy syscalls per" \
                     "answer (strace -c -f, ↓)" ;;
    rsys_futex) echo "refused CONNECT, concurrency 16: proxy futex calls" \
                     "per answer (strace -c -f, ↓)" ;;
    cpu_down) echo "proxy CPU per GiB down (s, ↓)" ;;
    cpu_up) echo "proxy CPU per GiB up (s, ↓)" ;;
    sys_down) echo "proxy syscalls per MiB down (↓)" ;;
    sys_up) echo "proxy syscalls per MiB up (↓)" ;;
    ir_down) echo "proxy user-space instructions per MiB down (↓)" ;;
    ir_up) echo "proxy user-space instructions per MiB up (↓)" ;;
    deb_setup_none) echo "setup, concurrency 16, Debian MPM settings," \
                         "none held (tunnels/s, ↑)" ;;
    deb_setup_held) echo "setup, concurrency 16, Debian MPM settings," \
                         "while the largest idle count is held" \
                         "(tunnels/s, ↑)" ;;
    idle*_held|raised*_held|deb*_held) echo "$(idle_label "$k"):" \
                                            "tunnels held (↑)" ;;
    idle*_rss|raised*_rss|deb*_rss) echo "$(idle_label "$k"): proxy RSS" \
                                         "(MiB, ↓)" ;;
    idle*_per|raised*_per|deb*_per) echo "$(idle_label "$k"): RSS per" \
                                         "held tunnel (KiB, ↓)" ;;
    idle*_thr|raised*_thr|deb*_thr) echo "$(idle_label "$k"): proxy" \
                                         "threads" ;;
    bw_*|bwfree_*) bw_label "$k" ;;
    *) echo "$k" ;;
    esac
}

bw_label() {
    local k=$1 what lim="$(awk -v r="$BW_RATE" 'BEGIN { print r / 1e6 }')"
    case $k in
    bw_down_1_*) what="bandwidth: 1 tunnel down, limit $lim MB/s" ;;
    bw_up_1_*) what="bandwidth: 1 tunnel up, limit $lim MB/s" ;;
    bw_client8_*) what="bandwidth: 8 tunnels down, client limit $lim MB/s" ;;
    bwfree_*) echo "bandwidth: the same bytes ${k#bwfree_}, no limit:" \
                   "proxy CPU per GiB (s, ↓)" | sed 's/_gib//'
              return ;;
    esac
    case $k in
    *_mbs) echo "$what: measured (MB/s)" ;;
    *_acc) echo "$what: measured / limit (%)" ;;
    *_cpus) echo "$what: proxy CPU (ms per s, ↓)" ;;
    *_gib) echo "$what: proxy CPU per GiB (s, ↓)" ;;
    esac
}

idle_label() {
    local k=${1%_*}
    case $k in
    idle*) echo "idle ${k#idle}" ;;
    raised*) echo "idle ${k#raised}, MaxRequestWorkers 10560" ;;
    deb*) echo "idle ${k#deb}, Debian MPM settings" ;;
    esac
}

fmt() {
    [ -n "$1" ] || { echo "n/a"; return; }
    # Three significant digits or so: more would only show noise.
    awk -v v="$1" 'BEGIN { if (v >= 100 || v == int(v)) printf "%.0f", v;
                           else if (v >= 10) printf "%.1f", v;
                           else printf "%.2f", v }'
}

# Rows in reading order: throughput, cost, latency, setup, idle.
ordered_rows() {
    local pat k
    for pat in 'bulk_*' 'cpu_*' 'sys_*' 'ir_*' 'pp_*_free_*' 'pp_*_pinned_*' \
               'setup_*' 'tsys_*' 'refused_*' 'rsys_*' 'bw_*' 'bwfree_*' 'idle*' 'raised*' \
               'deb*'; do
        for k in "${ROWS[@]}"; do
            # shellcheck disable=SC2254
            case $k in $pat) echo "$k" ;; esac
        done
    done
}

# "a/b" of two medians, or n/a.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || b + 0 == 0) print "n/a";
        else printf "%.2f", a / b }'
}

print_table() {
    local k t row ours head="| scenario | direct | stock | ours |"
    local rule="|---|---:|---:|---:|"
    if [ -n "$EXTRA_NAME" ]; then
        head="$head $EXTRA_NAME |" rule="$rule---:|"
    fi
    if [ -n "$NGINX" ]; then
        head="$head $NGINX_NAME |" rule="$rule---:|"
    fi
    head="$head ours/stock |" rule="$rule---:|"
    if [ -n "$NGINX" ]; then
        head="$head ours/$NGINX_NAME |" rule="$rule---:|"
    fi
    echo "$head"
    echo "$rule"
    for k in $(ordered_rows); do
        row="| $(describe "$k") |"
        for t in direct stock ours ${EXTRA_NAME:+extra} ${NGINX:+nginx}; do
            row="$row $(fmt "$(median "${RES["$k|$t"]:-}")") |"
        done
        ours=$(median "${RES["$k|ours"]:-}")
        row="$row $(ratio "$ours" "$(median "${RES["$k|stock"]:-}")") |"
        if [ -n "$NGINX" ]; then
            row="$row $(ratio "$ours" \
                "$(median "${RES["$k|nginx"]:-}")") |"
        fi
        echo "$row"
    done
}

print_header() {
    echo "## CONNECT proxy benchmark ($MODE)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r);" \
         "$(nproc) CPUs; $("$HTTPD" -v | sed -n 's/^Server version: //p')"
    echo "- module: $(git -C "$ROOT" describe --always --dirty 2>/dev/null \
                      || echo unknown) ($OURS_SO)"
    echo "- MPM for both: event; $(echo $MPM_STD);" \
         "MaxConnectionsPerChild 0; Timeout 60; ListenBacklog 4096;" \
         "ProxyIOBufferSize unset (each module's default); no access log"
    echo "- idle \"MaxRequestWorkers 10560\" rows: $(echo $MPM_RAISED)"
    echo "- \"Debian MPM settings\" rows: $(echo $MPM_DEBIAN)" \
         "(one proxy at a time)"
    echo "- idle tunnels are held from client address $IDLE_SOURCE;" \
         "every other tunnel comes from 127.0.0.1"
    echo "- rounds: $ROUNDS (medians; targets interleaved within a round);" \
         "bulk verify: $([ "$VERIFY" = 1 ] && echo on || echo off);" \
         "ping-pong $PP_ROUNDS round trips; setup ${SETUP_SECS}s per run;" \
         "syscalls from ${STRACE_SIZES// / and } MiB;" \
         "instructions from ${CG_SIZES// / and } MiB"
    if [ -n "$NGINX" ]; then
        echo "- $NGINX_NAME: $(env -u NGINX "$NGINX" -v 2>&1 \
                               | sed 's/^nginx version: //')" \
             "with ngx_http_proxy_connect_module ($NGINX);" \
             "$(nproc) worker processes, no CPU affinity, no access log;" \
             "see build/bench/nginx/nginx.conf"
    fi
    echo "- per-tunnel syscalls: strace -c -f on every process of the" \
         "proxy during one ${TSYS_SECS}s setup run at concurrency 16" \
         "(includes the proxy's idle timers)"
    echo "- ↑ more is better, ↓ less is better; n/a: not measured or failed"
    echo
}

# Crashes (a child's exit signal), and anything at error or above except
# the MPM's warnings about MaxRequestWorkers (AH00484, AH10159), which the
# idle scenario causes on purpose.  The first few lines of each log; the
# logs hold the rest.
scan_logs() {
    local f name n
    local bad='exit signal|exited on signal|[: [](error|crit|alert|emerg)\]'
    for f in "$B"/*/logs/error_log; do
        [ -f "$f" ] || continue
        name=$(basename "$(dirname "$(dirname "$f")")")
        n=$(grep -cE "$bad" "$f")
        n=$((n - $(grep -cE 'AH00484|AH10159' "$f")))
        [ "$n" -gt 0 ] || continue
        note "$name: $n error lines in build/bench/$name/logs/error_log"
        grep -E "$bad" "$f" \
            | grep -vE 'AH00484|AH10159' | head -3 | while read -r l; do
            note "$name: $l"
        done
    done
}

# --- main -----------------------------------------------------------------

main() {
    local t
    mkdir -p "$B"
    : > "$B/run.log"
    : > "$RAW"
    : > "$NOTES"
    : > "$B/load.err"
    # httpd appends to its error log: start each run with none.
    rm -f "$B"/*/logs/error_log
    [ -x "$OURS_SO" ] || [ -f "$OURS_SO" ] \
        || { log "no $OURS_SO: run make first"; exit 1; }
    build_tools || { log "building the bench tools failed"; exit 1; }
    # Idle 10,000 needs two descriptors per tunnel in the proxy.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null \
        || note "could not raise the open-files limit"
    log "open-files limit: $(ulimit -n)"
    pick_ports || { log "no free block of 20 ports found"; exit 1; }
    log "ports: $PORT_BASE..$((PORT_BASE + 19))"
    "$ORIGIN" --time-limit 3600 "echo:$P_ECHO" "sink:$P_SINK" \
        "sink:$P_SINKV:verify" "source:$P_SOURCE" "hold:$P_HOLD" \
        2>> "$B/origin.err" &
    ORIGIN_PID=$!
    PIDS="$PIDS $ORIGIN_PID"
    sleep 0.3
    kill -0 "$ORIGIN_PID" 2>/dev/null || { log "origin did not start"; exit 1; }

    EXTRA_NAME= EXTRA_LOCAL=
    if [ -n "${BENCH_EXTRA_SO:-}" ]; then
        EXTRA_NAME=${BENCH_EXTRA_NAME:-extra} EXTRA_LOCAL=1
    elif [ -n "${BENCH_EXTRA_PORT:-}" ]; then
        EXTRA_NAME=${BENCH_EXTRA_NAME:-extra}
    fi
    for t in stock ours ${EXTRA_LOCAL:+extra}; do
        gen_conf "$t" "$(proxy_port_of "$t")" "$MPM_STD" \
            "$(module_lines "$t")" || { log "$t: bad configuration"; exit 1; }
        start_httpd "$t" "$(proxy_port_of "$t")" \
            || { log "$t did not start"; exit 1; }
    done
    [ -n "$EXTRA_NAME" ] && TARGETS="$TARGETS extra"
    if [ -n "$NGINX" ]; then
        [ -x "$NGINX" ] || { log "NGINX=$NGINX: not an executable"; exit 1; }
        gen_nginx_conf "$(proxy_port_of nginx)" \
            || { log "nginx: bad configuration (see run.log)"; exit 1; }
        start_nginx "$(proxy_port_of nginx)" \
            || { log "nginx did not start"; exit 1; }
        TARGETS="$TARGETS nginx"
    fi

    skipped bulk || scenario_bulk
    skipped pingpong || scenario_pingpong
    skipped setup || scenario_setup
    skipped refused || scenario_refused
    skipped setupstrace || scenario_setup_strace
    skipped strace || scenario_strace
    skipped bandwidth || scenario_bandwidth
    skipped idle || scenario_idle
    for t in stock ours ${EXTRA_LOCAL:+extra} ${NGINX:+nginx}; do
        stop_httpd "$t"
    done
    skipped raised || scenario_idle_raised
    skipped debian || scenario_idle_debian
    skipped callgrind || scenario_callgrind
    scan_logs

    {
        print_header
        print_table
        if [ -s "$NOTES" ]; then
            echo
            echo "### Notes"
            cat "$NOTES"
        fi
        echo
        echo "Raw result lines: build/bench/raw.log"
    } > "$B/results.md"
    cat "$B/results.md"
}

main
