#!/bin/sh
# Runs the suite once per relay mode and ends with a short recap.
# Usage: run-modes.sh APXS HTTPD PERL "TEST ARGS" "COPY FILES" \
#                     "WORKER FILES" "FILTER FILES"
# With no TEST ARGS the default run takes every file and the other runs
# their lists; with TEST ARGS every run takes those.
#
# Each run goes ahead when an earlier one fails.  Their outputs are long
# and a CI log is often read from its end, so the last lines name every
# run that failed, its failed tests and their first diagnostics.
set -u
apxs=$1 httpd=$2 perl=$3 default_args=$4
shift 4
top=$(cd "$(dirname "$0")/.." && pwd)
logdir=$top/build/test-logs
mkdir -p "$logdir"

# Each file's time in the output: where the run's minutes go.
HARNESS_TIMER=${HARNESS_TIMER:-1}
export HARNESS_TIMER

rc=0
recap=
run() {
    name=$1
    shift
    log=$logdir/$name.log
    # The exit status of run-suite.sh, not of tee, decides.
    # Verbose: a failed check's diagnostics are only in the TAP stream.
    { sh "$top/t/run-suite.sh" "$apxs" "$httpd" "$perl" -verbose "$@" 2>&1;
      echo $? > "$log.rc"; } | tee "$log"
    status=$(cat "$log.rc")
    if [ "$status" = 0 ]; then
        recap="$recap $name:pass"
    else
        recap="$recap $name:FAIL"
        rc=1
    fi
}

# Word splitting of the argument lists is intended.  Test files named
# for the default run (TEST_ARGS) replace every run's own list.
# shellcheck disable=SC2086
run default $default_args
# shellcheck disable=SC2086
run CT_COPY -defines CT_COPY ${default_args:-$1}
# shellcheck disable=SC2086
run CT_WORKER -defines CT_WORKER ${default_args:-$2}
# shellcheck disable=SC2086
run CT_FILTER_PATH -defines CT_FILTER_PATH ${default_args:-$3}

echo "=== suite runs:$recap"
for r in $recap; do
    case $r in
    *:FAIL)
        name=${r%%:*}
        echo "--- $name failed (whole output in build/test-logs/$name.log):"
        sed -n '/^Test Summary Report/,/^Files=/p' "$logdir/$name.log" \
            | grep -v '^-*$' | grep -v '^Test Summary Report' \
            | grep -v '^Files=' | head -12
        # Each failed check, under its file, with its first diagnostics.
        awk '/^(\[[0-9:]+\] )?t\/.*\.t \.+/ {
                 f = $0; sub(/^\[[0-9:]+\] /, "", f); sub(/ .*/, "", f) }
             /^not ok/ { print f ": " $0; n = 4; next }
             n > 0 && /^#/ { print "    " $0; n--; next }
             { n = 0 }
             /files are kept in/ { print }' "$logdir/$name.log" | head -24
        grep -E '^run-suite: logs kept' "$logdir/$name.log" | head -1
        ;;
    esac
done
exit $rc
