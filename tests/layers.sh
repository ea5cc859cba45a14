#!/bin/sh
# SPDX-License-Identifier: MIT
# layers.sh - checks the dependency rule of framework/: a file includes
# headers of its own layer and of the layers below it, never above
# (docs/design-notes.md, "Map of the code"):
#
#   base  <-  load, transport  <-  run  <-  api  <-  cli
#
# The public headers (<conveyor/...>) may be included by every layer; the
# command line includes nothing of the framework but <conveyor/host.h> (and
# its own headers, "cli/...").
# Prints every include that breaks the rule and fails when there is one.
src=${CONVEYOR_SRCDIR:-$(dirname "$0")/..}
cd "$src/framework" || exit 99

allowed() {
    case $1 in
    base) echo "base" ;;
    load) echo "base load" ;;
    transport) echo "base transport" ;;
    run) echo "base load transport run" ;;
    api) echo "base load transport run api" ;;
    cli) echo "cli" ;;
    *) echo "?" ;;
    esac
}

bad=0
files=0
for f in */*.c */*.h; do
    [ -f "$f" ] || continue
    files=$((files + 1))
    layer=${f%%/*}
    ok=$(allowed "$layer")
    if [ "$ok" = "?" ]; then
        echo "framework/$f: folder '$layer' is not a layer of the map"
        bad=1
        continue
    fi
    # Quoted includes name their layer: "run/inbox.h".
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        dep=${inc%%/*}
        [ "$dep" = "$inc" ] && dep="(none)"
        case " $ok " in
        *" $dep "*) ;;
        *)
            echo "framework/$f: includes \"$inc\" (layer $layer may include: ${ok})"
            bad=1
            ;;
        esac
    done
    if [ "$layer" = cli ]; then
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\(conveyor\/[^>]*\)>.*/\1/p' "$f"); do
            if [ "$inc" != conveyor/host.h ]; then
                echo "framework/$f: includes <$inc> (the command line uses only <conveyor/host.h>)"
                bad=1
            fi
        done
    fi
done
if [ "$files" -eq 0 ]; then
    echo "no framework sources found under $src/framework"
    exit 99
fi
[ $bad -eq 0 ] && echo "ok: $files files of framework/ keep the dependency rule"
exit $bad
