#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind-embed.sh - for `make check-valgrind`: a pipeline inside a program under
# valgrind memcheck, the program, its run's host and every stage process
# alike (valgrind follows forks): examples/embed on 20,000 items, and the
# embedding suite without its longest tests and the one whose program
# exits on purpose without closing what it opened.  A memory error or a
# definite leak in any process fails it.
build=${CONVEYOR_BUILDDIR:-.}
src=${CONVEYOR_SRCDIR:-.}
logs=$(mktemp -d "${TMPDIR:-/tmp}/valgrind-embed.XXXXXX") || exit 1
# The programs themselves, not libtool's wrapper scripts: valgrind must
# follow every process of the run, and never a shell.
real() {
    dir=$(dirname "$1") base=$(basename "$1")
    if [ -x "$dir/.libs/$base" ]; then echo "$dir/.libs/$base"; else echo "$1"; fi
}
export LD_LIBRARY_PATH="$build/framework/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The suite runs conveyor-host for the messages it compares with: the
# binary itself, not the valgrind wrapper `make check-valgrind` names (a
# script that valgrind, following every exec, would follow into its shell).
CONVEYOR_HOST=$(real "$build/conveyor-host")
export CONVEYOR_HOST
vg() {
    valgrind -q --trace-children=yes \
        --trace-children-skip='/bin/*,/usr/bin/*,/usr/sbin/*,*/libtool,*.sh' --leak-check=full \
        --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=99 \
        --suppressions="$src/tests/valgrind-criterion.supp" --log-file="$logs/%p.log" "$@"
}
status=0
echo "== examples/embed under valgrind"
vg "$(real "$build/examples/embed")" "$src/examples/embed.ini" 20000 >/dev/null || status=1
echo "== tests/test_embed under valgrind"
vg "$(real "$build/tests/test_embed")" --jobs 2 \
    --filter 'embed/!(thousand_batches*|batch_in_input_order|two_threads|program_exits_without_finish)' \
    || status=1
for f in "$logs"/*.log; do
    if [ -s "$f" ]; then
        echo "valgrind reported, $(basename "$f"):"
        cat "$f"
        status=1
    fi
done
rm -rf "$logs"
exit $status
