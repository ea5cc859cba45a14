/* SPDX-License-Identifier: MIT */
/*
 * util.c - small helpers shared by the framework (see util.h): size and
 * number parsing, spelling suggestions, allocation that aborts on out of
 * memory, string helpers and whole-buffer I/O.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

/* Reads the leading decimal digits of S into *out and returns how many there
 * were (0 when S does not start with one); *overflow tells whether the value
 * did not fit.  No sign, no white space: strtoull would accept both, and
 * " 5" or "-1" in a config file are mistakes worth reporting. */
static size_t parse_digits(const char *s, uint64_t *out, int *overflow)
{
    uint64_t v = 0;
    size_t n = 0;

    *overflow = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        unsigned d = (unsigned)(s[n] - '0');
        if (v > (UINT64_MAX - d) / 10)
            *overflow = 1;
        else
            v = v * 10 + d;
    }
    *out = v;
    return n;
}

int cv_parse_size(const char *s, size_t *out)
{
    uint64_t v, mult = 1;
    int overflow;
    size_t n;

    if (!s)
        return -EINVAL;
    n = parse_digits(s, &v, &overflow);
    if (n == 0)
        return -EINVAL;

    const char *p = s + n;
    switch (*p) {
    case 'k': case 'K': mult = UINT64_C(1) << 10; p++; break;
    case 'm': case 'M': mult = UINT64_C(1) << 20; p++; break;
    case 'g': case 'G': mult = UINT64_C(1) << 30; p++; break;
    case 't': case 'T': mult = UINT64_C(1) << 40; p++; break;
    default: break;
    }
    /* "KiB" only makes sense after a multiplier; a bare "B" means bytes. */
    if (mult > 1 && (*p == 'i' || *p == 'I')) {
        p++;
        if (*p != 'b' && *p != 'B')
            return -EINVAL;
    }
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p)
        return -EINVAL;
    if (overflow || v > UINT64_MAX / mult || v * mult > SIZE_MAX)
        return -ERANGE;
    *out = (size_t)(v * mult);
    return 0;
}

int cv_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;
    int overflow;
    size_t n;

    if (!s)
        return -EINVAL;
    n = parse_digits(s, &v, &overflow);
    if (n == 0 || s[n])
        return -EINVAL;
    if (overflow || v < min || v > max)
        return -ERANGE;
    *out = (unsigned)v;
    return 0;
}

int cv_parse_duration_bare(const char *s, uint64_t bare_ms, uint64_t *ms)
{
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    };
    uint64_t v, unit = 0;
    int overflow;
    size_t n;

    if (!s)
        return -EINVAL;
    n = parse_digits(s, &v, &overflow);
    if (n == 0)
        return -EINVAL;
    if (!s[n])
        unit = bare_ms;
    for (size_t i = 0; !unit && i < sizeof units / sizeof *units; i++)
        if (strcmp(s + n, units[i].suffix) == 0)
            unit = units[i].ms;
    if (!unit)
        return -EINVAL;
    if (overflow || v > UINT64_MAX / unit)
        return -ERANGE;
    *ms = v * unit;
    return 0;
}

int cv_parse_duration(const char *s, uint64_t *ms)
{
    return cv_parse_duration_bare(s, 1000, ms);
}

int cv_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    uint64_t v;
    int overflow, neg = 0;
    size_t n;

    if (!s)
        return -EINVAL;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    n = parse_digits(s, &v, &overflow);
    if (n == 0 || s[n])
        return -EINVAL;
    /* The magnitude of INT64_MIN is one more than INT64_MAX's. */
    if (overflow || v > (uint64_t)INT64_MAX + neg)
        return -ERANGE;
    int64_t x = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (x < min || x > max)
        return -ERANGE;
    *out = x;
    return 0;
}

int cv_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

int cv_unquote(const char *s, char **out, const char **rest)
{
    size_t n = strlen(s), o = 0;
    char *buf;

    if (*s != '"')
        return -EINVAL;
    buf = cv_malloc(n);
    for (const char *p = s + 1; *p; p++) {
        if (*p == '"') {
            buf[o] = '\0';
            *out = buf;
            *rest = p + 1;
            return 0;
        }
        /* Only \" and \\ are escapes: any other backslash is itself, so
         * a regular expression or a Windows path needs no doubling. */
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        buf[o++] = *p;
    }
    free(buf);
    return -EINVAL;
}

size_t cv_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = cv_malloc((lb + 1) * sizeof *row);
    size_t result;

    /* One row of the classic table: row[j] is the distance between the
     * first i characters of A and the first j of B. */
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    result = row[lb];
    free(row);
    return result;
}

const char *cv_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t len;

    if (!word || !candidates)
        return NULL;
    len = strlen(word);
    for (size_t i = 0; candidates[i]; i++) {
        size_t d = cv_edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* A one-letter word is "close" to every short candidate: require the
     * distance to be less than the word's length as well. */
    if (best && best_d <= 2 && best_d < len)
        return best;
    return NULL;
}

static void out_of_memory(size_t n, size_t size)
{
    if (n == 1)
        cv_error("out of memory (allocating %zu bytes)", size);
    else
        cv_error("out of memory (allocating %zu x %zu bytes)", n, size);
    abort();
}

void *cv_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(1, n);
    return p;
}

void *cv_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n, size);
    return p;
}

void *cv_realloc(void *p, size_t n)
{
    /* realloc(p, 0) may free P and return NULL: never ask for 0 bytes. */
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(1, n);
    return q;
}

char *cv_strdup(const char *s)
{
    return cv_strndup(s, strlen(s));
}

char *cv_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cv_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *cv_asprintf(const char *fmt, ...)
{
    char small[256];
    va_list ap;
    char *s;
    int n;

    /* Most strings fit the stack buffer; otherwise print again into one of
     * the measured size (vasprintf is a GNU extension). */
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        cv_error("cv_asprintf: cannot format \"%s\"", fmt);
        abort();
    }
    s = cv_malloc((size_t)n + 1);
    if ((size_t)n < sizeof small) {
        memcpy(s, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

char *cv_trim(char *s)
{
    size_t start = 0, end = strlen(s);

    while (start < end && isspace((unsigned char)s[start]))
        start++;
    while (end > start && isspace((unsigned char)s[end - 1]))
        end--;
    memmove(s, s + start, end - start);
    s[end - start] = '\0';
    return s;
}

char *cv_path_join(const char *dir, const char *path)
{
    size_t dl;

    if (path[0] == '/' || strcmp(path, "-") == 0 || !dir || !dir[0])
        return cv_strdup(path);
    dl = strlen(dir);
    if (dir[dl - 1] == '/')
        return cv_asprintf("%s%s", dir, path);
    return cv_asprintf("%s/%s", dir, path);
}

int cv_write_retry(int fd, int err)
{
    if (err == EINTR)
        return 0;
    if (err != EAGAIN && err != EWOULDBLOCK)
        return -err;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
        return -errno;
    return 0;
}

int cv_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            int rc = cv_write_retry(fd, errno);
            if (rc < 0)
                return rc;
            continue;
        }
        /* write() returning 0 for a non-empty buffer would loop forever. */
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t cv_read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int cv_verr_at(char *err, size_t errlen, int rc, const char *file, int line, const char *fmt,
               va_list ap)
{
    if (!err || errlen == 0)
        return rc;
    int n = 0;
    if (file && line > 0)
        n = snprintf(err, errlen, "%s:%d: ", file, line);
    else if (file)
        n = snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t)n >= errlen)
        return rc;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    return rc;
}

int cv_err_at(char *err, size_t errlen, int rc, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_verr_at(err, errlen, rc, file, line, fmt, ap);
    va_end(ap);
    return rc;
}

static int std_closed[3];

void cv_reserve_std_fds(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* open() takes the lowest free number: this one. */
        int got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (got == fd)
            std_closed[fd] = 1;
        else if (got >= 0)
            close(got);
    }
}

int cv_std_was_closed(int fd)
{
    return fd >= 0 && fd <= 2 && std_closed[fd];
}
