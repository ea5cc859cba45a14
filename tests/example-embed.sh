#!/bin/sh
# SPDX-License-Identifier: MIT
# example-embed.sh - runs examples/embed (a pipeline inside a program) on
# both transports and compares what it prints with examples/embed.expected.
build=${CONVEYOR_BUILDDIR:-.}
src=${CONVEYOR_SRCDIR:-.}
status=0
for transport in ring pipe; do
    out=$(CONVEYOR_TRANSPORT=$transport "$build/examples/embed" "$src/examples/embed.ini") || {
        echo "examples/embed ($transport): exit status $?"
        status=1
    }
    if [ "$out" != "$(cat "$src/examples/embed.expected")" ]; then
        echo "examples/embed ($transport) printed:"
        echo "$out"
        status=1
    fi
done
exit $status
