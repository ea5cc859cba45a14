# SPDX-License-Identifier: MIT
# tests/unit-io.mk - unit tests of shared memory, locks, the pool, channels, item framing, the inbox
# and the metrics formats
# (included from tests/local.mk).
check_PROGRAMS += tests/test_shm tests/test_framing
TESTS += tests/test_shm tests/test_framing

tests_test_shm_SOURCES = tests/test_shm.c
tests_test_shm_CFLAGS = $(TEST_CFLAGS)
tests_test_shm_LDADD = $(UNIT_LIBS)

tests_test_framing_SOURCES = tests/test_framing.c
tests_test_framing_CFLAGS = $(TEST_CFLAGS)
tests_test_framing_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/test_pool
TESTS += tests/test_pool
tests_test_pool_SOURCES = tests/test_pool.c
tests_test_pool_CFLAGS = $(TEST_CFLAGS)
tests_test_pool_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/test_channel
TESTS += tests/test_channel
tests_test_channel_SOURCES = tests/test_channel.c tests/test_channel_ring.c \
	tests/channel_util.c tests/channel_util.h
tests_test_channel_CFLAGS = $(TEST_CFLAGS)
tests_test_channel_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/test_inbox
TESTS += tests/test_inbox
tests_test_inbox_SOURCES = tests/test_inbox.c
tests_test_inbox_CFLAGS = $(TEST_CFLAGS)
tests_test_inbox_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/test_metrics
TESTS += tests/test_metrics
tests_test_metrics_SOURCES = tests/test_metrics.c
tests_test_metrics_CFLAGS = $(TEST_CFLAGS)
tests_test_metrics_LDADD = $(UNIT_LIBS)
