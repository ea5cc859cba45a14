#!/bin/sh
# SPDX-License-Identifier: MIT
# valgrind-host.sh - conveyor-host under valgrind memcheck, for `make check-valgrind`: the
# end-to-end suites run it in place of the host.  Definite leaks and memory
# errors, in the host or in any of its forked processes, make it exit 99, and
# the tests, which check the exit status, fail.
exec "${CONVEYOR_BUILDDIR:-.}/libtool" --mode=execute valgrind -q --leak-check=full \
    --errors-for-leak-kinds=definite --error-exitcode=99 \
    "${CONVEYOR_BUILDDIR:-.}/conveyor-host" "$@"
