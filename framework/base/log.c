/* log.c - the framework's messages on standard error, one write per line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "base/log.h"

int cv_log_level = 1;
static const char *origin;

void cv_log_set_origin(const char *o)
{
    origin = o;
}

/* One line at LEVEL, labelled LABEL ("error: ", or ""). */
static void vlog_as(int level, const char *label, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog_as(int level, const char *label, const char *fmt, va_list ap)
{
    char line[4096];
    int saved = errno;
    int n;

    if (level > cv_log_level)
        return;
    n = snprintf(line, sizeof line, "conveyor-host: %s%s%s", origin ? origin : "",
                 origin ? ": " : "", label);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
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

void cv_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_vlog(level, fmt, ap);
    va_end(ap);
}
