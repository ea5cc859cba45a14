#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/systemd-unit.sh - checks the sandbox of conveyor@.service against
# what pipelines really do.  The unit is read, not assumed: its
# SystemCallFilter= lines give the system calls a service may make (expanded
# with `systemd-analyze syscall-filter`), RestrictAddressFamilies= the socket
# families, ProtectSystem=strict the folders it may write (/dev/shm, its
# state folder, /tmp).  Then the example pipelines (chains, fork and join,
# replicas, shared memory, exec stages running awk and sort, exec as a
# source stopped by SIGTERM, both transports, --check) run under strace -f,
# and every system call, socket family and file opened for writing, by the
# host, its stage processes and the programs they run, must be one the unit
# allows.  Also `systemd-analyze verify` of the unit, with the build tree's
# host in place of the installed one.
#
# Skips (77) without strace or systemd-analyze, and in a sanitizer build
# (the sanitizers' run-time makes system calls of its own).
set -euo pipefail

me=systemd-unit
fail() {
    echo "$me: FAIL: $*" >&2
    exit 1
}
skip() {
    echo "$me: SKIP: $*"
    exit 77
}

builddir=${CONVEYOR_BUILDDIR:-$(pwd)}
examples=${CONVEYOR_EXAMPLES:?CONVEYOR_EXAMPLES is not set (run through make check)}
host=${CONVEYOR_HOST:?CONVEYOR_HOST is not set (run through make check)}
unit=$builddir/systemd/conveyor@.service

[[ -n ${CONVEYOR_SANITIZERS:-} ]] && skip "a sanitizer build: its run-time adds system calls of its own"
command -v strace >/dev/null || skip "strace is not installed"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
[[ -f $unit ]] || fail "$unit was not made (make systemd/conveyor@.service)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-unit.XXXXXX")
trap '[[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT

# --- what the unit allows ------------------------------------------------------

# unit_values KEY: the values of every KEY= line, one per line.
unit_values() {
    sed -n "s/^$1=//p" "$unit"
}

# expand NAME: a system call, or @group expanded recursively.
declare -A seen_group=()
expand() {
    local name=$1 line
    if [[ $name != @* ]]; then
        echo "$name"
        return
    fi
    [[ -n ${seen_group[$name]:-} ]] && return
    seen_group[$name]=1
    while read -r line; do
        [[ -z $line || $line == \#* || $line == "$name" ]] && continue
        expand "$line"
    done < <(systemd-analyze syscall-filter "$name")
}

# SystemCallFilter= lines apply in order: the first without ~ is the allow
# list, each ~ line takes its calls out of it.
declare -A allowed=()
filters=0
while read -r value; do
    filters=$((filters + 1))
    deny=0
    if [[ $value == ~* ]]; then
        deny=1
        value=${value#\~}
    fi
    for group in $value; do
        seen_group=()
        while read -r call; do
            if ((deny)); then
                unset "allowed[$call]"
            else
                allowed[$call]=1
            fi
        done < <(expand "$group")
    done
done < <(unit_values SystemCallFilter)
((filters > 0)) || fail "$unit has no SystemCallFilter= line"
((${#allowed[@]} > 100)) ||
    fail "the unit's system call filter expands to ${#allowed[@]} calls: cannot read systemd-analyze syscall-filter"

families=" $(unit_values RestrictAddressFamilies | tr '\n' ' ') "
[[ $families == *AF_* ]] || fail "$unit has no RestrictAddressFamilies= line"
grep -qx 'ProtectSystem=strict' "$unit" || fail "$unit does not say ProtectSystem=strict"

# --- systemd-analyze verify -------------------------------------------------------

# The installed unit names the installed host and manual pages; this copy
# names the build tree's host and leaves the pages out.
mkdir "$tmp/units"
sed -e "s|^ExecStart=[^ ]*|ExecStart=$host|" -e '/^Documentation=/d' "$unit" \
    >"$tmp/units/conveyor@check.service"
if ! out=$(systemd-analyze verify "$tmp/units/conveyor@check.service" 2>&1); then
    fail "systemd-analyze verify failed: $out"
fi
[[ -z $out ]] || fail "systemd-analyze verify printed: $out"

# --- the pipelines, traced --------------------------------------------------------

state=$tmp/state          # stands for the unit's StateDirectory
mkdir "$state"
traces=()
n=0

# traced INPUT INI [ENV...]: runs the host on INI under strace -f, standard
# input from INPUT, output into the state folder; the run must succeed.
traced() {
    local input=$1 ini=$2 rc=0
    shift 2
    n=$((n + 1))
    (cd "$state" && env "$@" strace -f -qq -o "$tmp/trace.$n" "$host" -q -c "$ini" \
        <"$input" >"$state/out.$n" 2>"$tmp/err.$n") || rc=$?
    ((rc == 0)) || fail "conveyor-host -c $ini exited $rc under strace: $(cat "$tmp/err.$n")"
    traces+=("$tmp/trace.$n")
}

for transport in ring pipe; do
    traced "$examples/quickstart.txt" "$examples/quickstart.ini" CONVEYOR_TRANSPORT=$transport
    traced "$examples/fork-join.txt" "$examples/fork-join.ini" CONVEYOR_TRANSPORT=$transport
    traced "$examples/numbers.txt" "$examples/replicas.ini" CONVEYOR_TRANSPORT=$transport
done
traced /dev/null "$examples/shell-filter.ini"
traced /dev/null "$examples/shared-memory.ini"
# A per-item program: the stage keeps itself and it on one CPU
# (sched_setaffinity, which the unit allows back out of @resources).
printf '[echo]\nplugin = exec:run\ncommand = cat\nreply = per-item\n' >"$tmp/per-item.ini"
traced "$examples/quickstart.txt" "$tmp/per-item.ini"
cmp -s "$state/out.$n" "$examples/quickstart.txt" ||
    fail "a per-item exec stage running cat under strace changed its items"
if (($(nproc) > 1)) && ! grep -q 'sched_setaffinity(0, [0-9]*, \[[0-9]*\]' "$tmp/trace.$n"; then
    fail "the per-item exec stage did not keep itself on one CPU (no sched_setaffinity in its trace)"
fi
cmp -s "$state/out.1" "$examples/quickstart.expected" ||
    fail "the quick start under strace printed other output than $examples/quickstart.expected"

# --check, and a source stopped by SIGTERM: the host's way out of a service.
n=$((n + 1))
strace -f -qq -o "$tmp/trace.$n" "$host" -q --check -c "$examples/quickstart.ini" >/dev/null 2>&1 ||
    fail "conveyor-host --check -c quickstart.ini failed under strace"
traces+=("$tmp/trace.$n")
# stopped INI OUTPUT [BYTES]: runs the host on INI under strace -f until
# OUTPUT has something (at least BYTES) in it, then stops it with SIGTERM
# (as systemctl stop does): it must exit 143.
stopped() {
    local ini=$1 output=$2 want=${3:-1} tracer hostpid rc=0
    n=$((n + 1))
    (cd "$state" && exec strace -f -qq -o "$tmp/trace.$n" "$host" -q -c "$ini" \
        </dev/null 2>"$tmp/err.$n") &
    tracer=$!
    for _ in $(seq 300); do
        (($(stat -c %s "$output" 2>/dev/null || echo 0) >= want)) && break
        sleep 0.1
    done
    (($(stat -c %s "$output" 2>/dev/null || echo 0) >= want)) ||
        fail "$ini wrote less than $want bytes in 30 s: $(cat "$tmp/err.$n")"
    # strace's child is the host: signal it, not the tracer.
    hostpid=$(pgrep -P "$tracer" | head -n 1)
    [[ -n $hostpid ]] || fail "cannot find the host under strace (pid $tracer)"
    kill -TERM "$hostpid"
    wait "$tracer" || rc=$?
    ((rc == 143)) || fail "$ini stopped by SIGTERM exited $rc, expected 143: $(cat "$tmp/err.$n")"
    traces+=("$tmp/trace.$n")
}

cat >"$tmp/source.ini" <<EOF
[pipeline]
output = $state/source.out

[numbers]
type = source
plugin = exec:run
command = seq 1 1000000000
EOF
stopped "$tmp/source.ini" "$state/source.out"

# The redis module, over TCP, when it was built and a server is here.
redis_module=$builddir/plugins/.libs/redis.so
if [[ -f $redis_module ]] && command -v redis-server >/dev/null; then
    port=""
    for p in $(shuf -i 20000-60000 -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            port=$p
            break
        fi
    done
    [[ -n $port ]] || fail "no free local port for redis-server"
    mkdir "$tmp/redis"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp/redis" --save '' \
        --appendonly no --daemonize yes --pidfile "$tmp/redis/pid" >/dev/null
    trap 'kill "$(cat "$tmp/redis/pid" 2>/dev/null)" 2>/dev/null; [[ -n ${KEEP:-} ]] || rm -rf "$tmp"' EXIT
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    cat >"$tmp/redis-write.ini" <<EOF
[out]
plugin = redis:write
url = redis://127.0.0.1:$port/0
stream = chores
EOF
    traced "$examples/quickstart.txt" "$tmp/redis-write.ini"
    cat >"$tmp/redis-read.ini" <<EOF
[pipeline]
output = $state/redis.out

[in]
type = source
plugin = redis:read
url = redis://127.0.0.1:$port/0
stream = chores
group = unit
start = oldest
EOF
    stopped "$tmp/redis-read.ini" "$state/redis.out" "$(stat -c %s "$examples/quickstart.txt")"
    cmp -s "$state/redis.out" "$examples/quickstart.txt" ||
        fail "redis:write then redis:read under strace did not give back the quick start's input"
else
    echo "$me: the redis module or redis-server is not here: its runs are left out"
fi

# --- what they did ----------------------------------------------------------------

# System calls: "PID name(...", "PID <... name resumed>" says nothing new.
problems=()
while read -r count call; do
    [[ -n ${allowed[$call]:-} ]] ||
        problems+=("system call $call ($count times) is outside SystemCallFilter=")
done < <(cat "${traces[@]}" | sed -n -E 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' | sort | uniq -c)

# Socket families.
while read -r family; do
    [[ $families == *" $family "* ]] ||
        problems+=("a socket of family $family is outside RestrictAddressFamilies=")
done < <(cat "${traces[@]}" | sed -n -E 's/^[0-9]+ +socket(pair)?\((AF_[A-Z0-9]+),.*/\2/p' | sort -u)

# Files opened for writing, created, removed or renamed: only where
# ProtectSystem=strict leaves the file system writable for this unit.
writable() {
    case $1 in
        /dev/shm/* | /dev/null | /tmp | /tmp/* | /var/tmp | /var/tmp/* | "$state"/* | "$tmp"/*) return 0 ;;
        *) return 1 ;;
    esac
}
while read -r path; do
    writable "$path" || problems+=("writes $path, which ProtectSystem=strict makes read-only")
done < <(cat "${traces[@]}" |
    grep -E '^[0-9]+ +(open(at)?\(.*O_(WRONLY|RDWR|CREAT)|(unlink|mkdir|rename|creat)(at)?\()' |
    grep -v ' = -1 ' | sed -n -E 's/^[^"]*"([^"]*)".*/\1/p' | sort -u)

if ((${#problems[@]})); then
    printf '%s: FAIL: %s\n' "$me" "${problems[@]}" >&2
    exit 1
fi
calls=$(cat "${traces[@]}" | sed -n -E 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' | sort -u | wc -l)
echo "$me: ok: ${#traces[@]} runs, $calls distinct system calls, all inside the unit's sandbox"
