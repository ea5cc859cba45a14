# SPDX-License-Identifier: MIT
# tests/e2e.mk - end-to-end tests: the real conveyor-host on real INI files.
E2E_SOURCES = tests/harness.c tests/harness.h
E2E_TESTS = tests/test_e2e_linear tests/test_e2e_failures tests/test_e2e_config \
	tests/test_e2e_topology tests/test_e2e_abi tests/test_e2e_restart tests/test_e2e_pool \
	tests/test_e2e_io tests/test_e2e_observe tests/test_e2e_exec tests/test_e2e_source \
	tests/test_e2e_params tests/test_e2e_top tests/test_e2e_flush
check_PROGRAMS += $(E2E_TESTS)
TESTS += $(E2E_TESTS)
# The tests run conveyor-host and the plugins: build them first.
$(E2E_TESTS): conveyor-host $(check_LTLIBRARIES) $(pkglib_LTLIBRARIES)

tests_test_e2e_linear_SOURCES = tests/test_e2e_linear.c $(E2E_SOURCES)
tests_test_e2e_linear_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_linear_LDADD = $(CRITERION_LIBS)

tests_test_e2e_failures_SOURCES = tests/test_e2e_failures.c $(E2E_SOURCES)
tests_test_e2e_failures_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_failures_LDADD = $(CRITERION_LIBS)

tests_test_e2e_config_SOURCES = tests/test_e2e_config.c $(E2E_SOURCES)
tests_test_e2e_config_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_config_LDADD = $(CRITERION_LIBS)

tests_test_e2e_topology_SOURCES = tests/test_e2e_topology.c $(E2E_SOURCES)
tests_test_e2e_topology_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_topology_LDADD = $(CRITERION_LIBS)

tests_test_e2e_params_SOURCES = tests/test_e2e_params.c $(E2E_SOURCES)
tests_test_e2e_params_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_params_LDADD = $(CRITERION_LIBS)

tests_test_e2e_abi_SOURCES = tests/test_e2e_abi.c $(E2E_SOURCES)
tests_test_e2e_abi_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_abi_LDADD = $(CRITERION_LIBS)

tests_test_e2e_restart_SOURCES = tests/test_e2e_restart.c $(E2E_SOURCES)
tests_test_e2e_restart_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_restart_LDADD = $(CRITERION_LIBS)

tests_test_e2e_pool_SOURCES = tests/test_e2e_pool.c $(E2E_SOURCES)
tests_test_e2e_pool_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_pool_LDADD = $(CRITERION_LIBS)

tests_test_e2e_io_SOURCES = tests/test_e2e_io.c $(E2E_SOURCES)
tests_test_e2e_io_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_io_LDADD = $(CRITERION_LIBS)

tests_test_e2e_flush_SOURCES = tests/test_e2e_flush.c $(E2E_SOURCES)
tests_test_e2e_flush_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_flush_LDADD = $(CRITERION_LIBS)

tests_test_e2e_source_SOURCES = tests/test_e2e_source.c $(E2E_SOURCES)
tests_test_e2e_source_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_source_LDADD = $(CRITERION_LIBS)

tests_test_e2e_observe_SOURCES = tests/test_e2e_observe.c $(E2E_SOURCES)
tests_test_e2e_observe_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_observe_LDADD = $(CRITERION_LIBS)

tests_test_e2e_top_SOURCES = tests/test_e2e_top.c $(E2E_SOURCES)
tests_test_e2e_top_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_top_LDADD = $(CRITERION_LIBS)
# The redis module against a real redis-server (each test skips itself
# when redis-server is not installed); built with the module.
EXTRA_DIST += tests/test_e2e_redis.c
if HAVE_REDIS
E2E_REDIS = tests/test_e2e_redis
check_PROGRAMS += tests/test_e2e_redis
TESTS += tests/test_e2e_redis
$(E2E_REDIS): conveyor-host $(check_LTLIBRARIES) $(pkglib_LTLIBRARIES)
tests_test_e2e_redis_SOURCES = tests/test_e2e_redis.c $(E2E_SOURCES)
tests_test_e2e_redis_CFLAGS = $(TEST_CFLAGS) $(HIREDIS_CFLAGS)
tests_test_e2e_redis_LDADD = $(CRITERION_LIBS) $(HIREDIS_LIBS)
endif

# A program embedding the library without handing over its arguments'
# memory (test_e2e_observe runs it).
check_PROGRAMS += tests/embed-host
tests_embed_host_SOURCES = tests/embed-host.c
tests_embed_host_LDADD = framework/libconveyor.la
EXTRA_tests_test_e2e_observe_DEPENDENCIES = tests/embed-host

# The exec module's suite runs tests/exec_echo as a stage's program.
tests_test_e2e_exec_SOURCES = tests/test_e2e_exec.c $(E2E_SOURCES)
tests_test_e2e_exec_CFLAGS = $(TEST_CFLAGS)
tests_test_e2e_exec_LDADD = $(CRITERION_LIBS)
check_PROGRAMS += tests/exec_echo
tests_exec_echo_SOURCES = tests/exec_echo.c
EXTRA_tests_test_e2e_exec_DEPENDENCIES = tests/exec_echo$(EXEEXT)

# A pipeline inside a program: the suite is the program (public API only).
check_PROGRAMS += tests/test_embed
TESTS += tests/test_embed
tests_test_embed_SOURCES = tests/test_embed.c $(E2E_SOURCES)
tests_test_embed_CFLAGS = $(TEST_CFLAGS)
tests_test_embed_LDADD = framework/libconveyor.la $(CRITERION_LIBS) -lpthread
EXTRA_tests_test_embed_DEPENDENCIES = conveyor-host $(check_LTLIBRARIES) $(pkglib_LTLIBRARIES)

# examples/embed.c, run by tests/example-embed.sh against its expected output.
check_PROGRAMS += examples/embed
examples_embed_SOURCES = examples/embed.c
examples_embed_LDADD = framework/libconveyor.la
TESTS += tests/example-embed.sh
EXTRA_DIST += tests/example-embed.sh
# (Through a variable, so automake keeps its own recipe for this log.)
EXAMPLE_EMBED_LOG = tests/example-embed.sh.log
$(EXAMPLE_EMBED_LOG): examples/embed$(EXEEXT) $(pkglib_LTLIBRARIES)

# The Python binding (ctypes over the library), when python3 is there.
TESTS += tests/python-binding.sh
EXTRA_DIST += tests/python-binding.sh bindings/python/conveyor_embed.py \
	bindings/python/test_conveyor_embed.py
PYTHON_BINDING_LOG = tests/python-binding.sh.log
$(PYTHON_BINDING_LOG): framework/libconveyor.la $(check_LTLIBRARIES) $(pkglib_LTLIBRARIES)

# conveyor@.service's sandbox against what pipelines do, under strace.
TESTS += tests/systemd-unit.sh
EXTRA_DIST += tests/systemd-unit.sh
SYSTEMD_UNIT_LOG = tests/systemd-unit.sh.log
$(SYSTEMD_UNIT_LOG): systemd/conveyor@.service conveyor-host $(pkglib_LTLIBRARIES)
if SANITIZERS
AM_TESTS_ENVIRONMENT += CONVEYOR_SANITIZERS=1; export CONVEYOR_SANITIZERS;
endif

# Unit tests of graph validation and compilation.
check_PROGRAMS += tests/test_graph
TESTS += tests/test_graph
tests_test_graph_SOURCES = tests/test_graph.c
tests_test_graph_CFLAGS = $(TEST_CFLAGS)
tests_test_graph_LDADD = $(UNIT_LIBS)

# The end-to-end suites again, on the pipe transport.
TESTS += tests/pipe-transport.sh
EXTRA_DIST += tests/pipe-transport.sh
PIPE_LOG = tests/pipe-transport.sh.log
$(PIPE_LOG): $(E2E_TESTS) $(E2E_REDIS)

# Tests that must run alone, after every other test has finished.
TESTS += tests/serial.sh
EXTRA_DIST += tests/serial.sh
# (Through a variable, so automake keeps its own recipe for this log.)
SERIAL_LOG = tests/serial.sh.log
$(SERIAL_LOG): $(filter-out $(SERIAL_LOG),$(TESTS:=.log))

# The end-to-end suites with conveyor-host under valgrind memcheck: a memory
# error or a definite leak, in the host or any forked process, fails them.
# Two restart tests are left out there: they find the host's children and
# time a signal, which the valgrind wrapper process changes; what they run is
# run under valgrind by the other restart tests.
EXTRA_DIST += tests/valgrind-host.sh tests/valgrind-embed.sh tests/valgrind-criterion.supp
VALGRIND_SUITES = tests/test_e2e_linear tests/test_e2e_failures tests/test_e2e_config \
	tests/test_e2e_abi tests/test_e2e_topology tests/test_e2e_pool tests/test_e2e_exec \
	tests/test_e2e_source tests/test_e2e_flush $(E2E_REDIS)
check-valgrind: $(VALGRIND_SUITES) tests/test_e2e_restart tests/test_embed examples/embed
	@status=0; $(AM_TESTS_ENVIRONMENT) \
	CONVEYOR_HOST='$(abs_top_srcdir)/tests/valgrind-host.sh'; export CONVEYOR_HOST; \
	for t in $(VALGRIND_SUITES); do \
	  echo "== $$t under valgrind"; ./$$t --jobs 2 || status=1; \
	done; \
	echo "== tests/test_e2e_restart under valgrind"; \
	./tests/test_e2e_restart --jobs 2 --filter 'restart/!(kill_9*|sigterm*)' || status=1; \
	$(SHELL) $(abs_top_srcdir)/tests/valgrind-embed.sh || status=1; \
	exit $$status
