#!/bin/sh
# SPDX-License-Identifier: MIT
# pipe-transport.sh - runs the end-to-end suites again with the pipe transport as the default,
# so every pipeline they run is checked on both transports (ring is the
# default; pipe is the reference implementation).
status=0
for t in test_e2e_linear test_e2e_failures test_e2e_config test_e2e_topology test_e2e_abi test_e2e_io \
         test_e2e_observe test_e2e_exec test_e2e_source test_e2e_params test_e2e_top test_e2e_flush \
         test_embed test_e2e_redis; do
    # test_e2e_redis is built only with the redis module (--with-redis).
    [ "$t" = test_e2e_redis ] && [ ! -x "${CONVEYOR_BUILDDIR:-.}/tests/$t" ] && continue
    echo "== $t (CONVEYOR_TRANSPORT=pipe)"
    CONVEYOR_TRANSPORT=pipe "${CONVEYOR_BUILDDIR:-.}/tests/$t" --jobs 2 || status=1
done
exit $status
