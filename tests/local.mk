# SPDX-License-Identifier: MIT
# tests/local.mk - the Criterion test-suite (included from Makefile.am).
# Unit tests link the convenience library to reach internal functions;
# end-to-end tests run the real conveyor-host on INI files.
TEST_CFLAGS = $(AM_CFLAGS) $(CRITERION_CFLAGS) $(INIH_CFLAGS)
UNIT_LIBS = framework/libconveyor-core.la $(CRITERION_LIBS)

AM_TESTS_ENVIRONMENT = \
	CONVEYOR_HOST='$(abs_top_builddir)/conveyor-host'; export CONVEYOR_HOST; \
	CONVEYOR_PLUGIN_PATH='$(abs_top_builddir)/plugins:$(abs_top_builddir)/tests/plugins'; export CONVEYOR_PLUGIN_PATH; \
	CONVEYOR_TEST_DATA='$(abs_top_srcdir)/tests/data'; export CONVEYOR_TEST_DATA; \
	CONVEYOR_EXAMPLES='$(abs_top_srcdir)/examples'; export CONVEYOR_EXAMPLES; \
	CONVEYOR_TEST_PLUGINS='$(abs_top_builddir)/tests/plugins'; export CONVEYOR_TEST_PLUGINS; \
	CONVEYOR_BUILDDIR='$(abs_top_builddir)'; export CONVEYOR_BUILDDIR; \
	CONVEYOR_SRCDIR='$(abs_top_srcdir)'; export CONVEYOR_SRCDIR; \
	LSAN_OPTIONS="suppressions=$(abs_top_srcdir)/tests/lsan.supp$${LSAN_OPTIONS:+:$$LSAN_OPTIONS}"; export LSAN_OPTIONS;

EXTRA_DIST += tests/data tests/lsan.supp

include tests/plugins/local.mk
include tests/unit-config.mk
include tests/unit-io.mk
include tests/e2e.mk
include tests/sdk.mk
include tests/docs.mk
