#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/sdk-out-of-tree.sh - proves that an installed Conveyor is all a
# plugin author needs: installs Conveyor into a temporary prefix, builds
# sdk/template against it with pkg-config alone, runs the template's
# pipeline.ini with the installed conveyor-host and compares the output
# exactly, and checks that the installed plugin folder is searched.
#
# Usage: tests/sdk-out-of-tree.sh [BUILDDIR]
#   BUILDDIR         a configured top build directory (default: the current one)
#   CONVEYOR_SRCDIR  the source tree (default: the folder above this script)
#
# Why a fresh configure in a copy of the sources: the install prefix is
# compiled in (the plugin folder conveyor-host searches, libtool's rpath, the
# paths in conveyor.pc).  `make install DESTDIR=...` would put the files
# where nothing looks for them, and `make install prefix=...` would install
# a host whose built-in plugin folder is still the configured one.  So the
# script copies the distributable sources (`make distdir`, which leaves the
# build tree as it is) and configures that copy with --prefix.
#
# Exit status: 0 when everything matches, 1 with a message otherwise.
set -euo pipefail

me=sdk-out-of-tree
builddir=$(cd "${1:-.}" && pwd)
srcdir=${CONVEYOR_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

fail() {
    echo "$me: FAIL: $*" >&2
    exit 1
}

[[ -f $builddir/Makefile ]] || fail "$builddir is not a configured build tree (no Makefile)"
[[ -d $srcdir/sdk/template ]] || fail "no sdk/template in the source tree $srcdir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
logs=$tmp/logs
mkdir "$logs"

# run NAME COMMAND...: runs a noisy command with its output in a log, shown
# (the end of it) only when it fails.
run() {
    local name=$1
    shift
    echo "$me: $name"
    if ! "$@" >"$logs/$name.log" 2>&1; then
        tail -n 40 "$logs/$name.log" >&2
        fail "$name failed: $*"
    fi
}

# --- install Conveyor into $prefix ------------------------------------------

run distdir make -C "$builddir" distdir distdir="$tmp/src"
cd "$tmp/src"
run configure ./configure --prefix="$prefix" --disable-tests
run build make -j2
run install make install

for f in bin/conveyor-host lib/libconveyor.so lib/libconveyor.so.0 include/conveyor/plugin.h \
         include/conveyor/host.h lib/pkgconfig/conveyor.pc \
         share/doc/conveyor/template/Makefile share/doc/conveyor/template/rot13.c \
         share/doc/conveyor/examples/quickstart.ini share/doc/conveyor/examples/embed.c; do
    [[ -e $prefix/$f ]] || fail "make install did not install $f"
done

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
plugindir=$(pkg-config --variable=plugindir conveyor) ||
    fail "pkg-config does not find conveyor.pc in $PKG_CONFIG_PATH"
[[ $plugindir == "$prefix/lib/conveyor" ]] ||
    fail "pkg-config --variable=plugindir conveyor is '$plugindir', expected '$prefix/lib/conveyor'"
abi="$(pkg-config --variable=abi_major conveyor).$(pkg-config --variable=abi_minor conveyor)"
want_abi=$(sed -n 's/^#define CONVEYOR_ABI_MAJOR //p' "$srcdir/sdk/conveyor/plugin.h").$(sed -n 's/^#define CONVEYOR_ABI_MINOR //p' "$srcdir/sdk/conveyor/plugin.h")
[[ $abi == "$want_abi" ]] ||
    fail "conveyor.pc states plugin ABI '$abi' (abi_major.abi_minor), plugin.h says $want_abi"
for m in text math shm_demo; do
    [[ -e $plugindir/$m.so ]] || fail "the stock module $m.so is not installed in $plugindir"
done

# --- build the template out of tree -------------------------------------------

# The installed copy of the template, as a plugin author finds it.
cp -R "$prefix/share/doc/conveyor/template" "$tmp/plugin"
rm -f "$tmp/plugin"/*.so "$tmp/plugin"/*.o   # whatever a build in the source left
cd "$tmp/plugin"
run template-build make
compgen -G '*.so' >/dev/null || fail "the template's make built no .so in $tmp/plugin"

# The installed host alone: no plugin path from the caller's environment
# (make check exports one pointing into the build tree).
host() {
    env -u CONVEYOR_PLUGIN_PATH LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$prefix/bin/conveyor-host" "$@"
}

# --- run it -------------------------------------------------------------------

echo "$me: check"
rc=0
out=$(host --check -c pipeline.ini 2>"$logs/check.err") || rc=$?
if ((rc != 0)); then
    cat "$logs/check.err" >&2
    fail "conveyor-host --check -c pipeline.ini exited $rc in $tmp/plugin"
fi
[[ $out == *"pipeline.ini: ok"* ]] || fail "--check printed '$out', expected 'pipeline.ini: ok'"

echo "$me: run"
printf 'Hello, World!\n\nabc XYZ\n' >"$tmp/input"
printf 'Uryyb, Jbeyq!\n\nnop KLM\n' >"$tmp/expected"
rc=0
host -c pipeline.ini <"$tmp/input" >"$tmp/output" 2>"$logs/run.err" || rc=$?
if ((rc != 0)); then
    cat "$logs/run.err" >&2
    fail "conveyor-host -c pipeline.ini exited $rc (the template's pipeline, rot13 on standard input)"
fi
if ! cmp -s "$tmp/expected" "$tmp/output"; then
    diff -u "$tmp/expected" "$tmp/output" >&2 || true
    fail "the template's pipeline printed the wrong output (expected rot13 of the input)"
fi

echo "$me: a bad parameter refused by the template's check"
sed 's/^plugin = rot13:rot13$/&\nshift = 26/' pipeline.ini >bad.ini
rc=0
host --check -c bad.ini >"$logs/bad.out" 2>"$logs/bad.err" || rc=$?
((rc == 2)) || fail "conveyor-host --check -c bad.ini exited $rc, expected 2 (shift = 26)"
want="conveyor-host: error: bad.ini:16: [encode] key 'shift' = '26': out of range: it must be from 1 to 25"
[[ $(head -n 1 "$logs/bad.err") == "$want" ]] ||
    fail "--check on shift = 26 said '$(cat "$logs/bad.err")', expected '$want'"

# --- the module exports its descriptor alone ----------------------------------

echo "$me: exported symbols"
exported=$(nm -D --defined-only rot13.so | awk '{print $3}' | sort | tr '\n' ' ')
[[ $exported == "conveyor_module_v1 " ]] ||
    fail "rot13.so exports '$exported', expected only conveyor_module_v1 (-fvisibility=hidden)"

# --- make install: the module's own prefix; make install-system: the host's -----

echo "$me: make install into the module's own prefix"
run template-install make install prefix="$tmp/own"
[[ -f $tmp/own/lib/conveyor/rot13.so ]] ||
    fail "make install prefix=$tmp/own did not install $tmp/own/lib/conveyor/rot13.so"
grep -v '^plugin_path' pipeline.ini >"$tmp/own.ini"
rc=0
out=$(printf 'Hello\n' | env CONVEYOR_PLUGIN_PATH="$tmp/own/lib/conveyor" \
      LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
      "$prefix/bin/conveyor-host" -q -c "$tmp/own.ini" 2>"$logs/own.err") || rc=$?
((rc == 0)) || { cat "$logs/own.err" >&2; fail "the module installed in its own prefix: exit $rc"; }
[[ $out == Uryyb ]] || fail "the module installed in its own prefix printed '$out', expected 'Uryyb'"

echo "$me: make install-system with DESTDIR"
run template-install-system make install-system DESTDIR="$tmp/stage"
[[ -f $tmp/stage$plugindir/rot13.so ]] ||
    fail "make install-system DESTDIR=$tmp/stage did not install $tmp/stage$plugindir/rot13.so"

# --- the plugin guide's autotools recipe, as the guide writes it ----------------

# The configure.ac and Makefile.am fragments are taken from
# docs/plugin-guide.md itself, so the guide cannot drift from what works.
guide_block() {   # guide_block LANG: the first ```LANG block after the autotools heading
    awk -v lang="$1" '
        /^In an autotools project/ { on = 1 }
        on && $0 == "```" lang { inblock = 1; next }
        inblock && /^```/ { exit }
        inblock { print }' "$srcdir/docs/plugin-guide.md"
}
if command -v autoreconf >/dev/null; then
    echo "$me: the plugin guide's autotools recipe"
    mkdir "$tmp/autotools"
    cp "$tmp/plugin/rot13.c" "$tmp/autotools/mytext.c"
    {
        echo 'AC_INIT([mytext], [1.0])'
        echo 'AM_INIT_AUTOMAKE([foreign])'
        echo 'AC_PROG_CC'
        echo 'LT_INIT([disable-static])'
        guide_block m4
        echo 'AC_CONFIG_FILES([Makefile])'
        echo 'AC_OUTPUT'
    } >"$tmp/autotools/configure.ac"
    guide_block make >"$tmp/autotools/Makefile.am"
    grep -q PKG_CHECK_MODULES "$tmp/autotools/configure.ac" ||
        fail "no \`\`\`m4 block with PKG_CHECK_MODULES after 'In an autotools project' in docs/plugin-guide.md"
    grep -q plugin_LTLIBRARIES "$tmp/autotools/Makefile.am" ||
        fail "no \`\`\`make block with plugin_LTLIBRARIES after 'In an autotools project' in docs/plugin-guide.md"
    cd "$tmp/autotools"
    run recipe-autoreconf autoreconf -fi
    run recipe-configure ./configure --prefix="$tmp/recipe"
    run recipe-install make install
    [[ -f $tmp/recipe/lib/conveyor/mytext.so ]] ||
        fail "the guide's recipe installed no $tmp/recipe/lib/conveyor/mytext.so (the plugin's own prefix)"
    [[ ! -e $tmp/recipe/lib/conveyor/mytext.la ]] || fail "the guide's recipe left mytext.la installed"
    exported=$(nm -D --defined-only "$tmp/recipe/lib/conveyor/mytext.so" | awk '{print $3}' | tr '\n' ' ')
    [[ $exported == "conveyor_module_v1 " ]] ||
        fail "the guide's recipe built a module exporting '$exported', expected only conveyor_module_v1"
    run recipe-system ./configure --prefix="$tmp/recipe" --with-plugindir=system
    [[ $(sed -n 's/^plugindir = //p' Makefile) == "$plugindir" ]] ||
        fail "--with-plugindir=system gave plugindir '$(sed -n 's/^plugindir = //p' Makefile)', expected $plugindir"
    cd "$tmp/plugin"
else
    echo "$me: autoreconf is not installed: the guide's autotools recipe is not tried"
fi

# --- the installed plugin folder is searched ----------------------------------

echo "$me: list-plugins"
cd "$tmp"
rc=0
list=$(host --list-plugins 2>"$logs/list.err") || rc=$?
if ((rc != 0)); then
    cat "$logs/list.err" >&2
    fail "conveyor-host --list-plugins exited $rc"
fi
grep -q 'text:upper' <<<"$list" ||
    fail "conveyor-host --list-plugins does not list text:upper from $plugindir; it printed:
$list"

echo "$me: ok"
