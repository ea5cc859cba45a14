#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/headers-alone.sh - proves that each public header compiles alone,
# with warnings as errors, as C99 and as C++11: a translation unit holding
# only `#include <conveyor/plugin.h>`, one holding only
# `#include <conveyor/host.h>`, and one that defines a module with
# CONVEYOR_MODULE(), as a C or C++ plugin author would.
#
# Environment (set by `make check`, tests/sdk.mk):
#   CC               the C compiler configure found
#   CONVEYOR_CXX     the C++ compiler configure found, empty when none works
#   CONVEYOR_SRCDIR  the source tree (default: the folder above this script)
#
# Exit status: 0 when all compile, 1 when one does not, 77 (skipped) when
# the C half passed and there is no C++ compiler.

me=headers-alone
srcdir=${CONVEYOR_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
cc=${CC:-cc}
cxx=${CONVEYOR_CXX-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-headers.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

printf '#include <conveyor/plugin.h>\n' > "$tmp/plugin.tu"
printf '#include <conveyor/host.h>\n' > "$tmp/host.tu"
cat > "$tmp/module.tu" <<'EOF'
#include <conveyor/plugin.h>
static int pass(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}
/* Every field, in order, as C++11 (no designated initializers) with
 * -Wextra needs it: what a C++ module of ABI 1.2 writes. */
static const conveyor_param_spec params[] = {
    { "key", "a key", "1", CONVEYOR_PARAM_REQUIRED },
    { NULL, NULL, NULL, 0 },
};
static const conveyor_stage stages[] = {
    { "pass", "passes items on", NULL, pass, NULL, params, NULL, NULL, NULL },
    { NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};
CONVEYOR_MODULE("alone", "1.0", stages);
EOF

status=0

# check LANG COMPILER FLAGS...: compiles each translation unit.
check() {
    lang=$1
    shift
    for tu in plugin host module; do
        if "$@" -I"$srcdir/sdk" -x "$lang" -fsyntax-only "$tmp/$tu.tu" 2> "$tmp/err"; then
            echo "PASS: $lang $tu: $*"
        else
            echo "FAIL: $lang $tu: $*"
            sed 's/^/    /' "$tmp/err"
            status=1
        fi
    done
}

check c $cc -std=c99 -pedantic -Wall -Wextra -Werror

if [ -z "$cxx" ]; then
    echo "$me: SKIP: C++ half: configure found no working C++ compiler (the C half passed)"
    [ $status -eq 0 ] && exit 77
    exit $status
fi
check c++ $cxx -std=c++11 -pedantic -Wall -Wextra -Werror
exit $status
