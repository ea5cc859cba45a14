# SPDX-License-Identifier: MIT
# tests/unit-config.mk - unit tests of pipeline.ini parsing, plugin
# parameters and the small helpers (framework/load/config.c,
# framework/api/params.c, framework/base/util.c); included by tests/local.mk.
# The INI files they read are under tests/data/config/ (found through
# CONVEYOR_TEST_DATA, set in AM_TESTS_ENVIRONMENT).
check_PROGRAMS += tests/test_config tests/test_util tests/test_params
TESTS += tests/test_config tests/test_util tests/test_params

tests_test_config_SOURCES = tests/test_config.c
tests_test_config_CFLAGS = $(TEST_CFLAGS)
tests_test_config_LDADD = $(UNIT_LIBS)

# The typed parameter getters (framework/api/params.c) over config.c's sections.
tests_test_params_SOURCES = tests/test_params.c
tests_test_params_CFLAGS = $(TEST_CFLAGS)
tests_test_params_LDADD = $(UNIT_LIBS)

tests_test_util_SOURCES = tests/test_util.c
tests_test_util_CFLAGS = $(TEST_CFLAGS)
tests_test_util_LDADD = $(UNIT_LIBS)

# The dependency rule between the layers of framework/ (a script: no build).
TESTS += tests/layers.sh
EXTRA_DIST += tests/layers.sh
