# SPDX-License-Identifier: MIT
# tests/plugins/local.mk - test-only plugin modules (included from
# tests/local.mk).  check_LTLIBRARIES: built by `make check`, never
# installed; -rpath makes libtool build real shared modules rather than
# convenience archives.  The tests find them in $(abs_top_builddir)/tests/plugins.
check_LTLIBRARIES += tests/plugins/testplug.la tests/plugins/bad_abi.la \
	tests/plugins/newer_minor.la tests/plugins/small_size.la \
	tests/plugins/no_entry.la tests/plugins/no_process.la tests/plugins/abi10.la \
	tests/plugins/abi11.la tests/plugins/wide_stage.la tests/plugins/narrow_stage.la \
	tests/plugins/unresolved.la tests/plugins/sources.la tests/plugins/params10.la \
	tests/plugins/wide_param.la tests/plugins/narrow_param.la

TESTPLUGIN_LDFLAGS = -module -avoid-version -no-undefined -rpath /nowhere

tests_plugins_testplug_la_SOURCES = tests/plugins/testplug.c
tests_plugins_testplug_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_testplug_la_LIBADD = framework/libconveyor.la

tests_plugins_sources_la_SOURCES = tests/plugins/sources.c
tests_plugins_sources_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_sources_la_LIBADD = framework/libconveyor.la

tests_plugins_bad_abi_la_SOURCES = tests/plugins/bad_abi.c tests/plugins/hand_made.h
tests_plugins_bad_abi_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_bad_abi_la_LIBADD = framework/libconveyor.la

tests_plugins_newer_minor_la_SOURCES = tests/plugins/newer_minor.c tests/plugins/hand_made.h
tests_plugins_newer_minor_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_newer_minor_la_LIBADD = framework/libconveyor.la

tests_plugins_small_size_la_SOURCES = tests/plugins/small_size.c tests/plugins/hand_made.h
tests_plugins_small_size_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_small_size_la_LIBADD = framework/libconveyor.la

# Not a Conveyor module at all, so it links nothing.
tests_plugins_no_entry_la_SOURCES = tests/plugins/no_entry.c
tests_plugins_no_entry_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)

tests_plugins_no_process_la_SOURCES = tests/plugins/no_process.c
tests_plugins_no_process_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)

# Built as ABI 1.0 and 1.1 modules were: later hosts keep running them.
tests_plugins_abi10_la_SOURCES = tests/plugins/abi10.c tests/plugins/hand_made.h
tests_plugins_abi10_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_abi10_la_LIBADD = framework/libconveyor.la

tests_plugins_abi11_la_SOURCES = tests/plugins/abi11.c tests/plugins/hand_made.h
tests_plugins_abi11_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_abi11_la_LIBADD = framework/libconveyor.la

# Stages longer than the host's (it steps over what it does not know) and
# shorter than ABI 1.0's (refused).
tests_plugins_wide_stage_la_SOURCES = tests/plugins/wide_stage.c
tests_plugins_wide_stage_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_wide_stage_la_LIBADD = framework/libconveyor.la

tests_plugins_narrow_stage_la_SOURCES = tests/plugins/narrow_stage.c tests/plugins/hand_made.h
tests_plugins_narrow_stage_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_narrow_stage_la_LIBADD = framework/libconveyor.la

# Undefined on purpose, so without -no-undefined: the linker must let it be.
tests_plugins_unresolved_la_SOURCES = tests/plugins/unresolved.c
tests_plugins_unresolved_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -rpath /nowhere
tests_plugins_unresolved_la_LIBADD = framework/libconveyor.la

# Parameter specs of ABI 1.0 (name and summary), longer than the host's
# (stepped over by param_size) and shorter than 1.0's (refused).
tests_plugins_params10_la_SOURCES = tests/plugins/params10.c
tests_plugins_params10_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_params10_la_LIBADD = framework/libconveyor.la

tests_plugins_wide_param_la_SOURCES = tests/plugins/wide_param.c
tests_plugins_wide_param_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_wide_param_la_LIBADD = framework/libconveyor.la

tests_plugins_narrow_param_la_SOURCES = tests/plugins/narrow_param.c tests/plugins/hand_made.h
tests_plugins_narrow_param_la_LDFLAGS = $(AM_LDFLAGS) $(TESTPLUGIN_LDFLAGS)
tests_plugins_narrow_param_la_LIBADD = framework/libconveyor.la
