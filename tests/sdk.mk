# SPDX-License-Identifier: MIT
# tests/sdk.mk - tests of the public SDK headers themselves (included from
# tests/local.mk): the ABI layout pinned in numbers, and each header
# compiling alone as C99 and C++11.
check_PROGRAMS += tests/test_abi_layout
TESTS += tests/test_abi_layout
tests_test_abi_layout_SOURCES = tests/test_abi_layout.c
tests_test_abi_layout_CFLAGS = $(TEST_CFLAGS)
tests_test_abi_layout_LDADD = $(CRITERION_LIBS)

# The compilers reach the script through the environment; CONVEYOR_CXX is
# empty when configure found no working C++ compiler (the C++ half skips).
TESTS += tests/headers-alone.sh
EXTRA_DIST += tests/headers-alone.sh
AM_TESTS_ENVIRONMENT += \
	CC='$(CC)'; export CC; \
	CONVEYOR_CXX='$(CONVEYOR_CXX)'; export CONVEYOR_CXX;

# Every source file states its license (SPDX-License-Identifier).
TESTS += tests/spdx.sh
EXTRA_DIST += tests/spdx.sh
