#!/bin/sh
# SPDX-License-Identifier: MIT
# serial.sh - the tests that must run alone: every conveyor-host run sweeps the segments of
# dead hosts, so a test of --cleanup after SIGKILL can only be exact when no
# other pipeline starts meanwhile.  tests/e2e.mk runs this after the rest.
CONVEYOR_SERIAL=1 exec "${CONVEYOR_BUILDDIR:-.}/tests/test_e2e_failures" \
    --filter 'failures/sigkill_leaves_segment_for_cleanup'
