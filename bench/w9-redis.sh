#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/w9-redis.sh - workload W9 of bench/run: ITEMS entries of 100 bytes
# read from a Redis stream by redis:read, through text:identity, into
# another stream by redis:write, with 1 host and with 3 hosts in one
# consumer group, beside redis-benchmark's pipelined XADD on the same
# server.  A local redis-server on a unix socket, started and stopped here.
#
#   bench/w9-redis.sh HOST_BINARY TMPDIR ITEMS RUNS
#
# Prints, on standard output, one line per figure: "NAME RATE..." (one
# rate per good run, entries/s), and "NAME failed: WHY" for a run that
# went wrong.  End to end is from the hosts' start until the output stream
# holds every entry (redis:write sends a partial batch when its input has
# nothing more); each run ends with SIGTERM and checks that the output
# holds exactly ITEMS entries.
set -u
export LC_ALL=C
host=$1 tmp=$2 items=$3 runs=$4

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null &&
    command -v redis-cli >/dev/null || { echo "skipped: redis-server, redis-cli or redis-benchmark not installed"; exit 0; }

dir=$(mktemp -d "$tmp/w9.XXXXXX") || exit 2
sock=$dir/redis.sock
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --daemonize no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
rpid=$!
cli() { redis-cli -s "$sock" "$@"; }
finish() {
    cli SHUTDOWN NOSAVE >/dev/null 2>&1
    wait "$rpid" 2>/dev/null
    rm -rf "$dir"
}
trap finish EXIT
for _ in $(seq 200); do
    [ "$(cli PING 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
[ "$(cli PING 2>/dev/null)" = PONG ] || { echo "skipped: redis-server did not start"; exit 0; }

value=$(printf '%0100d' 7)     # 100 bytes
now() { date +%s.%N; }

# The peer: XADD pipelined 64 deep by redis-benchmark's 50 clients.  The
# last run leaves the input stream "in" holding ITEMS entries.
line="xadd"
for r in $(seq "$runs"); do
    cli DEL in >/dev/null
    out=$(redis-benchmark -s "$sock" -n "$items" -P 64 -q XADD in '*' data "$value" 2>&1 |
          tr '\r' '\n' | grep 'requests per second' | tail -n 1)
    rate=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p')
    line+=" ${rate:-0}"
done
echo "$line"
[ "$(cli XLEN in)" = "$items" ] || { echo "hosts1 failed: the input holds $(cli XLEN in) entries"; exit 0; }

# run_hosts N: one timed run of N hosts; prints the rate or "failed: ...".
run_hosts() {
    local n=$1 pids=() i t0 t1 target have
    cli DEL out >/dev/null
    cli XGROUP DESTROY in g >/dev/null
    for i in $(seq "$n"); do
        cat >"$dir/h$i.ini" <<INI
[src]
type = source
plugin = redis:read
url = unix://$sock
stream = in
group = g
consumer = h$i
[id]
plugin = text:identity
[w]
plugin = redis:write
url = unix://$sock
stream = out
INI
    done
    target=$items
    t0=$(now)
    for i in $(seq "$n"); do
        "$host" -q -c "$dir/h$i.ini" >/dev/null 2>"$dir/h$i.err" &
        pids+=($!)
    done
    have=0
    for _ in $(seq 30000); do      # 10 minutes
        have=$(cli XLEN out)
        [ "$have" -ge "$target" ] && break
        sleep 0.02
    done
    t1=$(now)
    kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
    if [ "$have" -lt "$target" ]; then
        echo "failed: $have of $items entries after 10 minutes"
        return
    fi
    have=$(cli XLEN out)
    if [ "$have" != "$items" ]; then
        echo "failed: WRONG OUTPUT ($have entries, not $items; $(head -c 200 "$dir/h1.err"))"
        return
    fi
    awk -v n="$target" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

for n in 1 3; do
    line="hosts$n"
    for r in $(seq "$runs"); do
        got=$(run_hosts "$n")
        case $got in
        failed*) echo "hosts$n $got"; continue 2 ;;
        esac
        line+=" $got"
    done
    echo "$line"
done
