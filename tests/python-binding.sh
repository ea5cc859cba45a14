#!/bin/sh
# SPDX-License-Identifier: MIT
# python-binding.sh - the Python binding's tests (bindings/python), on both
# transports, against the library in the build tree; skipped without python3.
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
build=${CONVEYOR_BUILDDIR:-.}
src=${CONVEYOR_SRCDIR:-.}
lib="$build/framework/.libs/libconveyor.so"
[ -f "$lib" ] || { echo "no $lib (a static-only build?)"; exit 1; }
# A library built with --enable-sanitizers needs its runtimes loaded first
# (python3 itself is not instrumented, and its own leaks are not ours).
pre=$(ldd "$lib" 2>/dev/null | sed -n 's/^[[:space:]]*lib\(asan\|ubsan\)[^ ]* => \([^ ]*\).*/\2/p' | tr '\n' ':')
if [ -n "$pre" ]; then
    LD_PRELOAD="${pre%:}${LD_PRELOAD:+:$LD_PRELOAD}"
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export LD_PRELOAD ASAN_OPTIONS
fi
mkdir -p "$build/tests/tmp"
status=0
for transport in ring pipe; do
    echo "== bindings/python (CONVEYOR_TRANSPORT=$transport)"
    CONVEYOR_TRANSPORT=$transport CONVEYOR_LIBRARY="$lib" TMPDIR="$build/tests/tmp" \
        PYTHONPATH="$src/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
        python3 -m unittest test_conveyor_embed || status=1
done
exit $status
