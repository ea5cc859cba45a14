#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/man-render.sh - renders every manual page with man-db's
# `man --warnings` (groff -ww) and fails on anything at all on standard
# error or a failed render; then lays the pages and the one-line .so pages
# out as an installed man tree and checks that `man conveyor_emit` (every
# function's page) shows the page describing it.
#
# Each page is rendered twice:
#   - as this build made it, with every warning but line filling ("cannot
#     adjust line", "can't break line"): the folders it names are this
#     build's, and a long --prefix (distcheck's _inst) is not a fault of
#     the page;
#   - made again from docs/NAME.in with the folders of a /usr installation,
#     the text the distributions ship, with every warning.
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

# check_render LABEL PAGE [MANROFFOPT]: renders PAGE, fails on a warning,
# a failed render or an empty one.
check_render() {
    MANROFFOPT=${3:-} render -l "$2" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ -s "$tmp/err" ]; then
        fail "$1: man --warnings says:"
        sed 's/^/    /' "$tmp/err" >&2
    fi
    [ "$rc" -eq 0 ] || fail "$1: man -l exited with status $rc"
    [ -s "$tmp/out" ] || fail "$1: man -l rendered nothing"
}

# The values of a Debian /usr installation (the longest folders a
# distribution ships) for the placeholders of docs/*.in, whose rule is
# man_sed in docs/local.mk; the version and ABI are this tree's.
version=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' "$srcdir/configure.ac")
abi_major=$(sed -n 's/^#define CONVEYOR_ABI_MAJOR \([0-9]*\)$/\1/p' "$srcdir/sdk/conveyor/plugin.h")
abi_minor=$(sed -n 's/^#define CONVEYOR_ABI_MINOR \([0-9]*\)$/\1/p' "$srcdir/sdk/conveyor/plugin.h")
usr_sed() {
    sed -e "s|@VERSION@|${version:-0.0.0}|g" \
        -e "s|@ABI_MAJOR@|${abi_major:-1}|g" \
        -e "s|@ABI_MINOR@|${abi_minor:-0}|g" \
        -e 's|@bindir@|/usr/bin|g' \
        -e 's|@sysconfdir@|/etc|g' \
        -e 's|@pkglibdir@|/usr/lib/x86_64-linux-gnu/conveyor|g' \
        -e 's|@includedir@|/usr/include|g' \
        -e 's|@pkgconfigdir@|/usr/lib/x86_64-linux-gnu/pkgconfig|g' \
        -e 's|@docdir@|/usr/share/doc/conveyor|g' \
        -e 's|@sdkdocdir@|/usr/share/doc/libconveyor-dev|g' "$@"
}

mkdir -p "$tmp/man/man1" "$tmp/man/man3" "$tmp/man/man5" "$tmp/usr"
for f in conveyor-host.1 pipeline.ini.5 conveyor-plugin.3 conveyor-embed.3; do
    page=$builddir/docs/$f
    if [ ! -f "$page" ]; then
        fail "docs/$f was not made (make all)"
        continue
    fi
    check_render "docs/$f (from docs/$f.in)" "$page" -Wbreak
    cp "$page" "$tmp/man/man${f##*.}/"

    usr_sed "$srcdir/docs/$f.in" >"$tmp/usr/$f"
    left=$(grep -o '@[A-Za-z_]*@' "$tmp/usr/$f" | sort -u | tr '\n' ' ')
    if [ -n "$left" ]; then
        fail "docs/$f.in holds placeholders this test has no /usr value for (usr_sed): $left"
        continue
    fi
    check_render "docs/$f.in, made for /usr" "$tmp/usr/$f"
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
