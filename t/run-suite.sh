#!/bin/sh
# Runs the Apache::Test suite against the module in this build tree.
# Usage: run-suite.sh APXS HTTPD PERL [t/TEST options...]
#
# As root, Apache::Test starts httpd whose children run as "nobody"; they
# must be able to read the tree.  A checkout under a private directory is
# therefore copied to a world-readable staging directory first.
set -eu
apxs=$1 httpd=$2 perl=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
work=$top
stage=

if [ "$(id -u)" = 0 ] \
   && ! runuser -u nobody -- test -r "$top/t/TEST.PL" 2>/dev/null; then
    stage=$(mktemp -d /tmp/mod_connect_tunnel-suite.XXXXXX)
    chmod 755 "$stage"
    tar -C "$top" --exclude=./.git --exclude=./build/test-logs -cf - . | tar -C "$stage" -xf -
    work=$stage
    echo "run-suite: the tree is not readable by nobody; testing a copy" \
         "in $stage"
fi

cd "$work"
sh t/conf/mkmodules.sh "$apxs" > t/conf/modules.conf
$perl t/TEST.PL -clean >/dev/null 2>&1 || true
set +e
$perl t/TEST.PL -apxs "$apxs" -httpd "$httpd" \
    -httpd_conf "$work/t/conf/modules.conf" "$@"
rc=$?
set -e
if [ -n "$stage" ]; then
    if [ $rc = 0 ]; then
        rm -rf "$stage"
    else
        echo "run-suite: logs kept in $stage/t/logs"
    fi
fi
exit $rc
