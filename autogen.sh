#!/bin/sh
# SPDX-License-Identifier: MIT
# Generates configure and Makefile.in from configure.ac and Makefile.am.
#
# libtool's macros are copied into m4/ before autoreconf runs aclocal the
# first time.  Otherwise aclocal runs before and after libtoolize, and
# automake may read the first run's trace from autom4te.cache (its
# freshness is judged to the second): Makefile.in then misses m4/libtool.m4
# and its siblings, and `make dist` leaves them out of the tarball.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
libtoolize --copy --force --quiet
exec autoreconf --install --force --warnings=all
