#!/bin/bash
# Graceful restart with idle tunnels held: how long from "apachectl -k
# graceful" (SIGUSR1 to the parent) until the last child of the old
# generation has exited, and the tunnel set-up rate during the restart.
#
# Usage: bash bench/graceful-restart.sh [TUNNELS] [PROXIES]
#   TUNNELS  idle tunnels held through the restart (default 9000)
#   PROXIES  any of: ours (ConnectTunnelMigrate On), nomigrate (Off),
#            stock (mod_proxy_connect); default "ours nomigrate stock"
# Environment: GR_WAIT seconds to wait for the old children (default 60;
# past it they are reported as still running: they stay until their
# tunnels end), GR_PORT first of 4 loopback ports (26300).
#
# Run as root from the top of a built tree (.libs/mod_connect_tunnel.so),
# like run-bench.sh.  Every process started here is stopped by its PID.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/build/bench-graceful
N=${1:-9000}
PROXIES=${2:-ours nomigrate stock}
WAIT=${GR_WAIT:-60}
BASE=${GR_PORT:-26300}
P_PROXY=$BASE P_HOLD=$((BASE + 1)) P_ECHO=$((BASE + 2))
LIBEXECDIR=$(apxs -q LIBEXECDIR)
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd)}
LOAD=$B/tunnel-load
ORIGIN=$B/origin
PIDS=

cleanup() {
    local p
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null
    done
    sleep 1
    for p in $PIDS; do
        kill -KILL "$p" 2>/dev/null
    done
}
trap cleanup EXIT

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

build_tools() {
    local s=$TOP/bench common="$TOP/bench/tl_net.c $TOP/bench/tl_pattern.c"
    mkdir -p "$B"
    cc -O2 -Wall -Wextra -Werror -o "$LOAD" "$s/tunnel-load.c" \
        "$s/tl_tunnel.c" "$s/tl_stats.c" "$s/tl_bulk.c" "$s/tl_rtt.c" \
        "$s/tl_idle.c" $common -lm || exit 1
    cc -O2 -Wall -Wextra -Werror -o "$ORIGIN" "$s/origin.c" $common \
        || exit 1
}

# Configuration of proxy $1 in $B/$1: Debian's MPM limits (ServerLimit
# 16), children never reaped, so that only the restart ends them.
gen_conf() {
    local name=$1 dir=$B/$1 user=
    mkdir -p "$dir/logs"
    [ "$(id -u)" = 0 ] && user=$'User nobody\nGroup nogroup'
    {
        echo "ServerRoot \"$dir\""
        echo "ServerName localhost"
        echo "Listen 127.0.0.1:$P_PROXY"
        echo "PidFile \"$dir/logs/httpd.pid\""
        echo "DefaultRuntimeDir \"$dir/logs\""
        echo "ErrorLog \"$dir/logs/error_log\""
        echo "LogLevel info"
        echo "$user"
        for m in mpm_event authz_core authz_host proxy; do
            echo "LoadModule ${m}_module \"$LIBEXECDIR/mod_$m.so\""
        done
        if [ "$name" = stock ]; then
            echo "LoadModule proxy_connect_module" \
                 "\"$LIBEXECDIR/mod_proxy_connect.so\""
            # Stock holds a worker per tunnel.
            echo "ServerLimit 16"
            echo "ThreadsPerChild 64"
            echo "MaxRequestWorkers 1024"
        else
            echo "LoadModule connect_tunnel_module" \
                 "\"$TOP/.libs/mod_connect_tunnel.so\""
            echo "ConnectTunnelAllow 127.0.0.1"
            echo "ServerLimit 16"
            echo "ThreadsPerChild 25"
            echo "MaxRequestWorkers 50"
            [ "$name" = nomigrate ] && echo "ConnectTunnelMigrate Off"
        fi
        echo "StartServers 2"
        echo "MinSpareThreads 25"
        echo "MaxSpareThreads 1024"
        echo "MaxConnectionsPerChild 0"
        echo "Timeout 600"
        echo "ListenBacklog 4096"
        echo "ProxyRequests On"
        echo "AllowCONNECT $P_HOLD $P_ECHO"
        echo "<Proxy \"*\">"
        echo "    Require ip 127.0.0.1"
        echo "</Proxy>"
    } > "$dir/httpd.conf"
}

children() { ps -o pid= --ppid "$1" | tr -s ' \n' ' '; }

alive() {
    local p n=0
    for p in $*; do
        kill -0 "$p" 2>/dev/null && n=$((n + 1))
    done
    echo $n
}

run_one() {
    local name=$1 dir=$B/$1 hpid parent gpid spid old t0 t1 left i rate
    gen_conf "$name"
    "$HTTPD" -d "$dir" -f "$dir/httpd.conf" -DFOREGROUND &
    hpid=$!
    PIDS="$PIDS $hpid"
    sleep 2
    parent=$hpid
    "$LOAD" --proxy "$P_PROXY" --mode idle --origin "$P_HOLD" \
        --tunnels "$N" --hold 3600 --time-limit 3600 --inflight 256 \
        --open-timeout 10 --label "graceful/$name" > "$B/idle.out" \
        2>> "$B/load.err" &
    gpid=$!
    PIDS="$PIDS $gpid"
    for i in $(seq 1 600); do
        grep -q '^READY' "$B/idle.out" && break
        sleep 0.1
    done
    sleep 1
    old=$(children "$parent")
    log "$name: holding $N tunnels in children: $old"
    t0=$(date +%s.%N)
    kill -USR1 "$parent"
    # The set-up rate while the old children hand over or drain.
    "$LOAD" --proxy "$P_PROXY" --mode setup --origin "$P_ECHO" \
        --concurrency 16 --duration 3 --size 32 --open-timeout 10 \
        > "$B/setup.out" 2>> "$B/load.err" &
    spid=$!
    PIDS="$PIDS $spid"
    left=$(alive $old)
    while [ "$left" -gt 0 ]; do
        t1=$(date +%s.%N)
        if awk -v a="$t0" -v b="$t1" -v w="$WAIT" \
               'BEGIN { exit !(b - a > w) }'; then
            break
        fi
        sleep 0.05
        left=$(alive $old)
    done
    t1=$(date +%s.%N)
    wait "$spid" 2>/dev/null
    rate=$(sed -n 's/.*tunnels_s=\([0-9.]*\).*/\1/p' "$B/setup.out")
    if [ "$left" -gt 0 ]; then
        printf '| %s | %d | still %d old children after %d s | %s |\n' \
            "$name" "$N" "$left" "$WAIT" "${rate:--}"
    else
        printf '| %s | %d | %.2f s | %s |\n' "$name" "$N" \
            "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
            "${rate:--}"
    fi
    kill -TERM "$gpid" 2>/dev/null
    wait "$gpid" 2>/dev/null
    kill -TERM "$hpid" 2>/dev/null
    wait "$hpid" 2>/dev/null
    sleep 1
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null
build_tools
"$ORIGIN" --time-limit 3600 "echo:$P_ECHO" "hold:$P_HOLD" \
    2>> "$B/origin.err" &
PIDS="$PIDS $!"
sleep 0.3
echo "| proxy | tunnels held | -k graceful to last old child gone | set-ups/s during the restart (c=16) |"
echo "|---|---:|---|---:|"
for p in $PROXIES; do
    run_one "$p"
done
