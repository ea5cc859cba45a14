# SPDX-License-Identifier: MIT
# tests/docs.mk - tests of the manual pages (included from tests/local.mk):
# docs-drift.sh holds them to the code (the keys config_keys.c accepts, the
# functions of the SDK's headers, the options of conveyor-host --help);
# man-render.sh renders them with man --warnings, and skips without man.
# Both read the pages made in the build tree, and need conveyor-host.
TESTS += tests/docs-drift.sh tests/man-render.sh
EXTRA_DIST += tests/docs-drift.sh tests/man-render.sh
