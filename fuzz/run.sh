#!/bin/sh
# Runs each fuzzer for a bounded time on a scratch copy of its seeds, so
# the committed corpus only changes when someone adds a seed on purpose.
# A crash leaves its input under build/fuzz/ and fails the run.
# Usage: run.sh SECONDS FUZZER...
set -eu
seconds=$1
shift
for fuzzer in "$@"; do
    name=$(basename "$fuzzer" | sed 's/^fuzz_//')
    work=build/fuzz/corpus-$name
    log=build/fuzz/$name.log
    # Text parsers see short inputs; a ClientHello from a real client
    # is 200-600 bytes and may span records, so its seeds must fit whole.
    case $name in
        hello) max_len=4096 ;;
        *) max_len=512 ;;
    esac
    mkdir -p "$work"
    cp fuzz/corpus/"$name"/* "$work"/
    echo "fuzz: $fuzzer for ${seconds}s"
    if ! "$fuzzer" -max_total_time="$seconds" -max_len="$max_len" \
            -artifact_prefix=build/fuzz/"$name"- -print_final_stats=1 \
            "$work" > "$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $fuzzer FAILED (see $log)"
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units)' "$log"
done
