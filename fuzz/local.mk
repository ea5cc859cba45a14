# SPDX-License-Identifier: MIT
# fuzz/local.mk - libFuzzer targets and their regression test (included
# from Makefile.am).  See fuzz/README.md.
#
# With ./configure --enable-fuzzing (CC=clang), fuzz/fuzz_config and
# fuzz/fuzz_framing are built, and `make fuzz` runs each for FUZZ_SECONDS
# over a copy of its seed corpus.  The framework sources they test are
# compiled into each target with the fuzzer and sanitizer flags, rather than
# linked from libconveyor-core.la, which is built without them.
FUZZ_SECONDS = 60

EXTRA_DIST += fuzz/README.md fuzz/run.sh fuzz/config.dict fuzz/corpus

if FUZZING
check_PROGRAMS += fuzz/fuzz_config fuzz/fuzz_framing

fuzz_fuzz_config_SOURCES = fuzz/fuzz_config.c fuzz/fuzz.h \
	framework/load/config.c framework/load/config_keys.c framework/load/config_keys.h \
	framework/load/plan.c framework/load/plan_dot.c framework/base/util.c framework/base/log.c framework/base/strmap.c
fuzz_fuzz_config_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS) $(INIH_CFLAGS)
fuzz_fuzz_config_LDFLAGS = $(FUZZ_CFLAGS)
fuzz_fuzz_config_LDADD = $(INIH_LIBS)

fuzz_fuzz_framing_SOURCES = fuzz/fuzz_framing.c fuzz/fuzz.h framework/run/framing.c \
	framework/base/util.c framework/base/log.c
fuzz_fuzz_framing_CFLAGS = $(AM_CFLAGS) $(FUZZ_CFLAGS)
fuzz_fuzz_framing_LDFLAGS = $(FUZZ_CFLAGS)

# Fails when a target finds anything, naming the input that shows it.
# (fuzz-always instead of .PHONY, which tests/e2e.mk sets under a
# condition: the build tree has a folder named fuzz.)
fuzz: fuzz-always fuzz/fuzz_config fuzz/fuzz_framing
	FUZZ_SECONDS='$(FUZZ_SECONDS)' $(SHELL) '$(srcdir)/fuzz/run.sh' \
		'$(abs_top_builddir)/fuzz' '$(abs_top_srcdir)/fuzz'
else
fuzz: fuzz-always
	@echo "make fuzz: configure with CC=clang --enable-fuzzing first" >&2; exit 1
endif
fuzz-always:

mostlyclean-local:
	-rm -rf fuzz/corpus-run

# Every input a target ever failed on, replayed by the ordinary test-suite
# (tests/data/fuzz/<target>/); the targets are compiled in without their
# libFuzzer entry point.
if ENABLE_TESTS
check_PROGRAMS += tests/test_fuzz_regress
TESTS += tests/test_fuzz_regress
tests_test_fuzz_regress_SOURCES = tests/test_fuzz_regress.c \
	fuzz/fuzz_config.c fuzz/fuzz_framing.c fuzz/fuzz.h
tests_test_fuzz_regress_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/fuzz -DCV_FUZZ_NO_ENTRY
tests_test_fuzz_regress_CFLAGS = $(TEST_CFLAGS)
tests_test_fuzz_regress_LDADD = $(UNIT_LIBS)
endif
