/* SPDX-License-Identifier: MIT */
/*
 * log.h - the framework's one way to print.  Every message goes to standard
 * error as "conveyor-host: ..." (or "conveyor-host: STAGE[REPLICA]: ..."
 * from a stage process), one write() per line so that lines of concurrent
 * processes never interleave; with cv_log_set_time(1), after the time.
 */
#ifndef CV_LOG_H
#define CV_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Messages above this level are dropped (CONVEYOR_LOG_* levels). */
extern int cv_log_level;

/* The prefix of this process's lines, e.g. "upper[1]"; NULL for the host. */
void cv_log_set_origin(const char *origin);

/* When ON, every line starts with the UTC time to the millisecond,
 * "2024-05-01T12:34:56.789Z conveyor-host: ...".  Forked processes inherit
 * the setting. */
void cv_log_set_time(int on);

/* PREFIX (at most 15 bytes, a string that lives on; NULL: none) starts
 * every line: what takes it past the host's --progress line (erasing it on
 * a terminal, a newline elsewhere).  Forked processes inherit the setting. */
void cv_log_set_line_prefix(const char *prefix);

/* Error lines (cv_error) are also appended, without the time and the
 * "conveyor-host: " prefix, to BUF (CAP bytes, *USED of them filled; BUF
 * and USED may be in memory shared by several processes), whatever the
 * verbosity.  A program embedding a pipeline reads a run's failure there. */
void cv_log_capture(char *buf, size_t cap, volatile unsigned *used);

void cv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cv_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* What the user asked for or must see at the default verbosity (a
 * snapshot, a drain), without the "warning: " label; -q silences it. */
void cv_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What the program itself reports (a bad command line, a refused file):
 * shown at every verbosity, without a label. */
void cv_vreport(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#define cv_error(...) cv_log(0, __VA_ARGS__)
#define cv_warn(...) cv_log(1, __VA_ARGS__)
#define cv_info(...) cv_log(2, __VA_ARGS__)
#define cv_debug(...) cv_log(3, __VA_ARGS__)

#endif
