# SPDX-License-Identifier: MIT
# plugins/local.mk - the stock stage plugins (included from Makefile.am).
# Each module is a libtool module installed in $(pkglibdir), the plugindir
# that conveyor.pc advertises.  A module links only libconveyor and exports
# only its descriptor, conveyor_module_v1.
pkglib_LTLIBRARIES += plugins/text.la plugins/math.la plugins/shm_demo.la

PLUGIN_LDFLAGS = -module -avoid-version -no-undefined $(NO_UNDEFINED_LDFLAGS) \
	-export-symbols-regex '^conveyor_module_v1$$'

plugins_text_la_SOURCES = plugins/text.c plugins/quote.h
plugins_text_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_text_la_LIBADD = framework/libconveyor.la

plugins_math_la_SOURCES = plugins/math.c plugins/quote.h
plugins_math_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_math_la_LIBADD = framework/libconveyor.la $(MATH_LIBS)

plugins_shm_demo_la_SOURCES = plugins/shm_demo.c plugins/quote.h
plugins_shm_demo_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_shm_demo_la_LIBADD = framework/libconveyor.la

# exec: a stage that is a program in any language (docs/plugin-guide.md).
pkglib_LTLIBRARIES += plugins/exec.la
plugins_exec_la_SOURCES = plugins/exec.c plugins/exec_argv.c plugins/exec_argv.h \
	plugins/exec_io.c plugins/exec_io.h plugins/exec_proc.c plugins/exec_proc.h \
	plugins/quote.h
plugins_exec_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_exec_la_LIBADD = framework/libconveyor.la

# redis: Redis Streams consumer groups as a source and a sink; built only
# when configure found hiredis (--with-redis).
EXTRA_DIST += plugins/redis.c plugins/redis.h plugins/redis_url.c plugins/redis_url.h \
	plugins/redis_conn.c plugins/redis_conn.h plugins/redis_read.c plugins/redis_read.h \
	plugins/redis_entries.c plugins/redis_write.c
if HAVE_REDIS
pkglib_LTLIBRARIES += plugins/redis.la
plugins_redis_la_SOURCES = plugins/redis.c plugins/redis.h plugins/redis_url.c \
	plugins/redis_url.h plugins/redis_conn.c plugins/redis_conn.h plugins/redis_read.c \
	plugins/redis_read.h plugins/redis_entries.c plugins/redis_write.c
plugins_redis_la_CFLAGS = $(AM_CFLAGS) $(HIREDIS_CFLAGS)
plugins_redis_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_redis_la_LIBADD = framework/libconveyor.la $(HIREDIS_LIBS)
endif
