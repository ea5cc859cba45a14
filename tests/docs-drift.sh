#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/docs-drift.sh - holds the manual pages to what they describe:
#  - the keys of pipeline.ini(5), per section, are the keys the host accepts
#    (the rows of framework/load/config_keys.c) with the same defaults, and
#    the keys of the tables of docs/pipeline-ini.md;
#  - every function of sdk/conveyor/plugin.h has an entry of its own in
#    conveyor-plugin(3) naming the ABI version that added it, every one of
#    host.h an entry in conveyor-embed(3), each has its one-line .so page
#    docs/man3/NAME.3, and no page or entry names a function that is gone;
#  - the options of `conveyor-host --help` are the options conveyor-host(1)
#    documents, and the page shows the three lines of --version;
#  - the sources docs/*.in hold no installation folder, no PREFIX and no
#    version, and name "Conveyor @VERSION@" in their footer; the made pages
#    hold no @placeholder@ and the version in their footer.
# Every failure names what is missing and the file it is missing from.
#
# Environment (set by `make check`, tests/local.mk):
#   CONVEYOR_SRCDIR    the source tree (default: the folder above this script)
#   CONVEYOR_BUILDDIR  the build tree, where the pages are made (default: same)
#   CONVEYOR_HOST      the conveyor-host to ask for --help and --version
#
# Exit status: 0 when the pages agree with the code, 1 when one does not.

srcdir=${CONVEYOR_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${CONVEYOR_BUILDDIR:-$srcdir}
host=${CONVEYOR_HOST:-$builddir/conveyor-host}
failures=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-docs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "docs-drift: $*" >&2
    failures=$((failures + 1))
}

# same A B WHAT-A WHAT-B NOUN: fails once for every line of the sorted list
# A missing from B and of B missing from A.
same() {
    comm -23 "$1" "$2" | while IFS= read -r x; do
        echo "docs-drift: $5 $x: in $3, missing from $4" >&2
    done
    comm -13 "$1" "$2" | while IFS= read -r x; do
        echo "docs-drift: $5 $x: in $4, missing from $3" >&2
    done
    if ! cmp -s "$1" "$2"; then
        failures=$((failures + 1))
    fi
}

# Roff text as plain text: \- is -, font changes and quotes go.
plain() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e 's/\\&//g'
}

for f in conveyor-host.1 pipeline.ini.5 conveyor-plugin.3 conveyor-embed.3; do
    [ -f "$srcdir/docs/$f.in" ] || fail "docs/$f.in is missing"
    [ -f "$builddir/docs/$f" ] || fail "docs/$f was not made (make all)"
done
[ "$failures" -eq 0 ] || exit 1

# --- pipeline.ini keys ------------------------------------------------------

# "SECTION KEY" and "SECTION KEY DEFAULT" (no default: "-none-") of every
# row of the table cv_config_keys[]: a row starts at "{ PIPELINE(" or
# "{ STAGE(" and ends at "},".
keys_c=$srcdir/framework/load/config_keys.c
awk '
    /^const cv_config_key cv_config_keys\[\]/ { table = 1 }
    !table { next }
    /\{ (PIPELINE|STAGE)\("/ { in_row = 1; row = "" }
    in_row { row = row " " $0 }
    in_row && /\},[ \t]*$/ {
        section = row ~ /PIPELINE\("/ ? "[pipeline]" : "stage"
        name = row; sub(/^[^"]*"/, "", name); sub(/".*/, "", name)
        def = "-none-"
        if (match(row, /\.def = "[^"]*"/)) {
            def = substr(row, RSTART + 8, RLENGTH - 9)
        }
        print section, name, def
        in_row = 0
    }
    /^};/ { exit }
' "$keys_c" | sort >"$tmp/c-defaults"
cut -d' ' -f1,2 "$tmp/c-defaults" | sort >"$tmp/c-keys"
[ -s "$tmp/c-keys" ] || fail "no key rows found in framework/load/config_keys.c"

# The key entries of pipeline.ini(5): ".TP" then '.BI "KEY = "' or
# '.BR "KEY = "', under .SH "THE [pipeline] SECTION" or .SH "STAGE SECTIONS",
# with "Default: \fBVALUE\fR" in the entry's text when it has one.
page5=$srcdir/docs/pipeline.ini.5.in
plain <"$page5" | awk '
    function flush() { if (key != "") print section, key, def; key = "" }
    /^\.SH/ {
        flush()
        section = ""
        if ($0 ~ /THE \[pipeline\] SECTION/) section = "[pipeline]"
        if ($0 ~ /STAGE SECTIONS/) section = "stage"
        next
    }
    section == "" { next }
    /^\.(TP|SS|PP)/ { flush(); tp = ($0 ~ /^\.TP/); next }
    tp && /^\.B[IR]? "[a-z_]+ = / {
        key = $0; sub(/^\.B[IR]? "/, "", key); sub(/ = .*/, "", key)
        def = "-none-"; tp = 0; next
    }
    { tp = 0 }
    key != "" && /Default: [^ ]/ && def == "-none-" {
        d = $0; sub(/.*Default: /, "", d); sub(/\.$/, "", d); sub(/,.*/, "", d)
        def = d
    }
    END { flush() }
' | sort >"$tmp/page-defaults"
cut -d' ' -f1,2 "$tmp/page-defaults" | sort >"$tmp/page-keys"

# The key rows of docs/pipeline-ini.md: "| `KEY` |" in the tables under
# "## [pipeline]" and "## Stage sections".
md=$srcdir/docs/pipeline-ini.md
awk '
    /^## / {
        section = ""
        if ($0 == "## [pipeline]") section = "[pipeline]"
        if ($0 == "## Stage sections") section = "stage"
    }
    section != "" && /^\| `[^`]*`/ {
        key = $0; sub(/^\| `/, "", key); sub(/`.*/, "", key)
        print section, key
    }
' "$md" | sort >"$tmp/md-keys"

same "$tmp/c-keys" "$tmp/page-keys" framework/load/config_keys.c \
    "pipeline.ini(5) (docs/pipeline.ini.5.in)" key
same "$tmp/page-keys" "$tmp/md-keys" "pipeline.ini(5) (docs/pipeline.ini.5.in)" \
    docs/pipeline-ini.md key
# Defaults: for each key in both, the page's default is the table's.
while read -r section key def; do
    pdef=$(awk -v s="$section" -v k="$key" '$1 == s && $2 == k { print $3 }' \
        "$tmp/page-defaults")
    [ -n "$pdef" ] || continue
    if [ "$pdef" != "$def" ]; then
        if [ "$def" = -none- ]; then
            fail "$section key $key: docs/pipeline.ini.5.in gives the default '$pdef'," \
                "framework/load/config_keys.c none"
        elif [ "$pdef" = -none- ]; then
            fail "$section key $key: the default '$def' is missing from" \
                "docs/pipeline.ini.5.in (\"Default: \\fB$def\\fR.\")"
        else
            fail "$section key $key: docs/pipeline.ini.5.in gives the default '$pdef'," \
                "framework/load/config_keys.c '$def'"
        fi
    fi
done <"$tmp/c-defaults"

# --- functions ----------------------------------------------------------------

# "NAME ABI" for every CONVEYOR_API function of a header; the ABI is the
# last "/* --- ABI M.N ---" section comment at the start of a line above
# it (1.0 before the first).
header_functions() {
    awk '
        BEGIN { abi = "1.0" }
        /^\/\* --- ABI [0-9]+\.[0-9]+ -/ { abi = $4 }
        /^CONVEYOR_API[^(]*[ *]conveyor_[a-z0-9_]*\(/ {
            line = $0; sub(/\(.*/, "", line); sub(/.*[ *]/, "", line)
            print line, abi
        }
    ' "$1" | sort
}

# "NAME ABI" for every entry of a page: ".TP", then a ".BI" line holding
# the prototype "TYPE NAME(", then, in conveyor-plugin(3), "(ABI M.N)".
page_functions() {
    plain <"$1" | awk '
        entry != "" { abi = "-"; if ($0 ~ /^\(ABI [0-9]+\.[0-9]+\)$/) { abi = $2; sub(/\)/, "", abi) }
                      print entry, abi; entry = "" }
        /^\.TP/ { tp = 1; next }
        tp && /^\.BI "[^"]*[ *]conveyor_[a-z0-9_]*\(/ {
            entry = $0; sub(/\(.*/, "", entry); sub(/.*[ *]/, "", entry)
        }
        { tp = 0 }
    ' | sort
}

check_functions() {  # HEADER PAGE WITH-ABI
    h=$srcdir/sdk/conveyor/$1
    p=$srcdir/docs/$2.in
    header_functions "$h" >"$tmp/h-$1"
    page_functions "$p" >"$tmp/p-$1"
    [ -s "$tmp/h-$1" ] || fail "no CONVEYOR_API functions found in sdk/conveyor/$1"
    cut -d' ' -f1 "$tmp/h-$1" >"$tmp/hn-$1"
    cut -d' ' -f1 "$tmp/p-$1" >"$tmp/pn-$1"
    same "$tmp/hn-$1" "$tmp/pn-$1" "sdk/conveyor/$1" \
        "the entries (.TP then .BI prototype) of ${2%.3}(3) (docs/$2.in)" function
    if [ "$3" = abi ]; then
        join "$tmp/h-$1" "$tmp/p-$1" | while read -r name habi pabi; do
            [ "$habi" = "$pabi" ] ||
                echo "docs-drift: function $name: added in ABI $habi (sdk/conveyor/$1)," \
                    "docs/$2.in says '(ABI $pabi)'" >&2
        done
        if ! join "$tmp/h-$1" "$tmp/p-$1" | awk '$2 != $3 { bad = 1 } END { exit bad }'; then
            failures=$((failures + 1))
        fi
    fi
    # The one-line pages that make "man NAME" show the page.
    while read -r name; do
        link=$builddir/docs/man3/$name.3
        if [ ! -f "$link" ]; then
            fail "function $name: docs/man3/$name.3 is missing (made by docs/local.mk)"
        elif [ "$(cat "$link")" != ".so man3/$2" ]; then
            fail "function $name: docs/man3/$name.3 is not '.so man3/$2'"
        fi
    done <"$tmp/hn-$1"
}
check_functions plugin.h conveyor-plugin.3 abi
check_functions host.h conveyor-embed.3 no-abi
if [ -d "$builddir/docs/man3" ]; then
    sort "$tmp/hn-plugin.h" "$tmp/hn-host.h" >"$tmp/hn-all"
    ls "$builddir/docs/man3" | sed -n 's/\.3$//p' | sort >"$tmp/links"
    comm -13 "$tmp/hn-all" "$tmp/links" | while read -r name; do
        echo "docs-drift: docs/man3/$name.3 names a function that neither header declares" >&2
    done
    cmp -s "$tmp/hn-all" "$tmp/links" || failures=$((failures + 1))
fi

# --- conveyor-host options ----------------------------------------------------

# Options of --help: lines whose text starts with '-', up to the two spaces
# before the description.
if ! "$host" --help >"$tmp/help" 2>&1; then
    fail "$host --help failed"
fi
sed -n 's/^ *\(-.*\)/\1/p' "$tmp/help" | sed 's/  .*//' |
    grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | sort -u >"$tmp/help-options"
[ -s "$tmp/help-options" ] || fail "no options found in conveyor-host --help"
# Options of the page: the tags (".TP" then its line) under .SH OPTIONS.
plain <"$srcdir/docs/conveyor-host.1.in" | awk '
    /^\.SH/ { in_options = ($0 ~ /^\.SH "?OPTIONS/); next }
    in_options && /^\.TP/ { tp = 1; next }
    tp { gsub(/"/, " "); print; tp = 0 }
' | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | sort -u >"$tmp/page-options"
same "$tmp/help-options" "$tmp/page-options" "conveyor-host --help" \
    "the OPTIONS of conveyor-host(1) (docs/conveyor-host.1.in)" option

# --version: each of its lines is in the made page, as the page shows it.
if "$host" --version >"$tmp/version" 2>&1; then
    plain <"$builddir/docs/conveyor-host.1" >"$tmp/host-page"
    while IFS= read -r line; do
        grep -qF -- "$line" "$tmp/host-page" ||
            fail "the --version line '$line' is missing from docs/conveyor-host.1" \
                "(made from docs/conveyor-host.1.in)"
    done <"$tmp/version"
else
    fail "$host --version failed"
fi
version=$(sed -n '1s/.* //p' "$tmp/version")

# --- sources and made pages ---------------------------------------------------

for f in conveyor-host.1 pipeline.ini.5 conveyor-plugin.3 conveyor-embed.3; do
    src=$srcdir/docs/$f.in
    made=$builddir/docs/$f
    for word in /usr/local PREFIX; do
        grep -n -F -- "$word" "$src" | while IFS= read -r hit; do
            echo "docs-drift: docs/$f.in:${hit%%:*}: '$word' (use a placeholder such as @pkglibdir@)" >&2
        done
        ! grep -q -F -- "$word" "$src" || failures=$((failures + 1))
    done
    if [ -n "$version" ] && grep -q -F -- "$version" "$src"; then
        fail "docs/$f.in: the version $version written out (use @VERSION@):" \
            "$(grep -n -F -- "$version" "$src" | head -1)"
    fi
    grep -q '^\.TH .* "Conveyor @VERSION@"' "$src" ||
        fail "docs/$f.in: the .TH footer is not \"Conveyor @VERSION@\""
    if grep -n '@[A-Za-z_][A-Za-z_0-9]*@' "$made" >"$tmp/left"; then
        fail "docs/$f: a placeholder is left (docs/local.mk does not replace it):" \
            "$(head -1 "$tmp/left")"
    fi
    grep -q -F -- "\"Conveyor $version\"" "$made" ||
        fail "docs/$f: the .TH footer does not name Conveyor $version"
done

if [ "$failures" -ne 0 ]; then
    echo "docs-drift: $failures check(s) failed" >&2
    exit 1
fi
echo "docs-drift: the pages agree with the code"
