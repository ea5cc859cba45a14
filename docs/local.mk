# SPDX-License-Identifier: MIT
# docs/local.mk - the man page and the guides (included from Makefile.am).
# automake does not distribute man_MANS (man pages are often generated), so
# the hand-written page is listed in EXTRA_DIST as well.
man_MANS += docs/conveyor-host.1
EXTRA_DIST += docs/conveyor-host.1
dist_doc_DATA += docs/plugin-guide.md docs/pipeline-ini.md docs/design-notes.md docs/scaling-out.md \
	docs/packaging.md
