/* SPDX-License-Identifier: MIT */
/* log.c - the framework's messages on standard error, one write per line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"

int cv_log_level = 1;
static int log_time;
static const char *line_prefix;
static const char *origin;
static char *capture_buf;
static size_t capture_cap;
static volatile unsigned *capture_used;

void cv_log_capture(char *buf, size_t cap, volatile unsigned *used)
{
    capture_buf = buf;
    capture_cap = cap;
    capture_used = used;
}

/* Appends TEXT (N bytes, its newline included) to the capture buffer, which
 * several processes share: each line reserves its room with one atomic add,
 * so lines never overlap; what does not fit is left out. */
static void capture(const char *text, size_t n)
{
    if (!capture_buf)
        return;
    unsigned at = __atomic_fetch_add(capture_used, (unsigned)n, __ATOMIC_RELAXED);
    if ((size_t)at >= capture_cap || n > capture_cap - at) {
        __atomic_fetch_sub(capture_used, (unsigned)n, __ATOMIC_RELAXED);
        return;
    }
    memcpy(capture_buf + at, text, n);
}

void cv_log_set_origin(const char *o)
{
    origin = o;
}

void cv_log_set_time(int on)
{
    log_time = on;
}

void cv_log_set_line_prefix(const char *prefix)
{
    line_prefix = prefix;
}

/* "2024-05-01T12:34:56.789Z " into BUF (at least 26 bytes); its length. */
static int timestamp(char *buf, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm))
        return 0;
    int len = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                       ts.tv_nsec / 1000000L);
    return len < 0 || (size_t)len >= n ? 0 : len;
}

/* One line at LEVEL, labelled LABEL ("error: ", or ""). */
static void vlog_as(int level, const char *label, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog_as(int level, const char *label, const char *fmt, va_list ap)
{
    char line[4096];
    int saved = errno;
    int n = 0;

    int captured = level <= 0 && *label && capture_buf;
    if (level > cv_log_level && !captured)
        return;
    if (line_prefix) {
        /* Past the progress line, which the host draws again. */
        n = snprintf(line, 16, "%s", line_prefix);
        if (n < 0 || n >= 16)
            n = 0;
    }
    if (log_time)
        n += timestamp(line + n, sizeof line - (size_t)n);
    int m = snprintf(line + n, sizeof line - (size_t)n, "conveyor-host: ");
    if (m > 0 && (size_t)m < sizeof line - (size_t)n)
        n += m;
    int text = n;   /* where what an error capture keeps starts */
    m = snprintf(line + n, sizeof line - (size_t)n, "%s%s%s", origin ? origin : "",
                 origin ? ": " : "", label);
    if (m > 0 && (size_t)m < sizeof line - (size_t)n)
        n += m;
    m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (captured)
        capture(line + text, (size_t)(n - text));
    if (level > cv_log_level)
        return;
    /* One write, so lines of concurrent processes do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    errno = saved;
}

void cv_vlog(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error: ", "warning: ", "", ""};
    vlog_as(level, names[level < 0 ? 0 : level > 3 ? 3 : level], fmt, ap);
}

void cv_notice(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog_as(1, "", fmt, ap);
    va_end(ap);
}

void cv_vreport(const char *fmt, va_list ap)
{
    vlog_as(0, "", fmt, ap);
}

void cv_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_vlog(level, fmt, ap);
    va_end(ap);
}
