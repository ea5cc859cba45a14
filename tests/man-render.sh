#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/man-render.sh - renders every made manual page with man-db's
# `man --warnings` (groff -ww) and fails on anything at all on standard
# error or a failed render; then lays the pages and the one-line .so pages
# out as an installed man tree and checks that `man conveyor_emit` (every
# function's page) shows the page describing it.
#
# Environment (set by `make check`, tests/local.mk):
#   CONVEYOR_SRCDIR    the source tree (default: the folder above this script)
#   CONVEYOR_BUILDDIR  the build tree, where the pages are made (default: same)
#
# Exit status: 0 when every page renders cleanly, 1 when one does not, 77
# (skipped) when man or groff is not installed.

srcdir=${CONVEYOR_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${CONVEYOR_BUILDDIR:-$srcdir}
failures=0

if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
    echo "man-render: skipped: man (man-db) or groff is not installed" >&2
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "man-render: $*" >&2
    failures=$((failures + 1))
}

# render ARGS...: man with warnings, at a fixed width and encoding.
render() {
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 "$@"
}

mkdir -p "$tmp/man/man1" "$tmp/man/man3" "$tmp/man/man5"
for f in conveyor-host.1 pipeline.ini.5 conveyor-plugin.3 conveyor-embed.3; do
    page=$builddir/docs/$f
    if [ ! -f "$page" ]; then
        fail "docs/$f was not made (make all)"
        continue
    fi
    render -l "$page" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ -s "$tmp/err" ]; then
        fail "docs/$f (from docs/$f.in): man --warnings says:"
        sed 's/^/    /' "$tmp/err" >&2
    fi
    [ "$rc" -eq 0 ] || fail "docs/$f: man -l exited with status $rc"
    [ -s "$tmp/out" ] || fail "docs/$f: man -l rendered nothing"
    cp "$page" "$tmp/man/man${f##*.}/"
done

# The .so pages, read through a man tree as installed.
for link in "$builddir"/docs/man3/*.3; do
    [ -f "$link" ] || { fail "no pages in docs/man3 (make all)"; break; }
    cp "$link" "$tmp/man/man3/"
done
for link in "$tmp"/man/man3/conveyor_*.3; do
    [ -f "$link" ] || continue
    name=$(basename "$link" .3)
    target=$(sed -n 's|^\.so man3/\(.*\)\.3$|\1|p' "$link")
    render -M "$tmp/man" 3 "$name" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    # A warning of the page it shows was reported above, once.
    if [ "$rc" -ne 0 ]; then
        fail "man 3 $name (docs/man3/$name.3) failed with status $rc:"
        sed 's/^/    /' "$tmp/err" >&2
    elif ! grep -q "^NAME" "$tmp/out" || ! grep -q "^ *$target - " "$tmp/out"; then
        fail "man 3 $name (docs/man3/$name.3) does not show $target(3)"
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "man-render: $failures check(s) failed" >&2
    exit 1
fi
echo "man-render: every page renders without a warning"
