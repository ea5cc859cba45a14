#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz/run.sh - runs the libFuzzer targets for FUZZ_SECONDS each (default
# 60), side by side, over a fresh copy of their seed corpora; what `make
# fuzz` runs.
#
#   fuzz/run.sh BUILD_FUZZ_DIR SOURCE_FUZZ_DIR [TARGET...]
#
# The seeds in SOURCE_FUZZ_DIR/corpus/ are never written to: each target
# works in BUILD_FUZZ_DIR/corpus-run/TARGET/ (git-ignored), emptied first.
# Exits non-zero when a target found a crash, a leak, a hang or ran out of
# memory, after printing the report and the path of the input that shows it.
set -u

build=${1:?usage: run.sh BUILD_FUZZ_DIR SOURCE_FUZZ_DIR [TARGET...]}
src=${2:?usage: run.sh BUILD_FUZZ_DIR SOURCE_FUZZ_DIR [TARGET...]}
shift 2
targets=${*:-config framing}
seconds=${FUZZ_SECONDS:-60}
run=$build/corpus-run

# Per input: 10 s is far beyond any sane input (they take milliseconds) and
# short enough to report a hang within a short run.
common="-max_total_time=$seconds -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

for t in $targets; do
    if [ ! -x "$build/fuzz_$t" ] || [ ! -d "$src/corpus/$t" ]; then
        echo "fuzz: no target fuzz_$t or no corpus $src/corpus/$t" >&2
        exit 2
    fi
    rm -rf "${run:?}/$t"
    mkdir -p "$run/$t/corpus" "$run/$t/findings"
    cp "$src/corpus/$t"/* "$run/$t/corpus/"
    extra=""
    [ -f "$src/$t.dict" ] && extra="-dict=$src/$t.dict"
    echo "fuzz: fuzz_$t for $seconds s (log: $run/$t/log)"
    # shellcheck disable=SC2086  # the options are meant to split
    "$build/fuzz_$t" $common $extra -artifact_prefix="$run/$t/findings/" \
        "$run/$t/corpus" >"$run/$t/log" 2>&1 &
    echo $! >"$run/$t/pid"
done

status=0
for t in $targets; do
    wait "$(cat "$run/$t/pid")"
    rc=$?
    rm -f "$run/$t/pid"
    # libFuzzer's last status line: executions, coverage, corpus.
    stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$run/$t/log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$run/$t/log")
    echo "fuzz: fuzz_$t: exit $rc, ${rate:-?} exec/s; $stats"
    found=$(find "$run/$t/findings" -type f | sort)
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        status=1
        echo "fuzz: fuzz_$t FOUND A PROBLEM; its report:" >&2
        # From the first line of the report (ours, the sanitizer's or
        # libFuzzer's) on.
        sed -n '/^fuzz_'"$t"': \|^==[0-9]*==\|ERROR: libFuzzer\|runtime error:/,$p' \
            "$run/$t/log" | head -n 80 >&2
        for f in $found; do
            echo "fuzz: input: $f  (replay: $build/fuzz_$t $f)" >&2
        done
        [ -n "$found" ] || echo "fuzz: no input was written; see $run/$t/log" >&2
    fi
done
exit $status
