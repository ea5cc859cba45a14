/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by the framework: sizes, suggestions,
 * strings and whole-buffer I/O that survives EINTR and short writes.
 */
#ifndef CV_UTIL_H
#define CV_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* Parses "10", "4K", "64M", "1G" (binary multiples, upper or lower case,
 * optional trailing "B"/"iB") into *out.  Returns 0, or -EINVAL for anything
 * else (empty, "12Q", negative, trailing junk), -ERANGE on overflow. */
int cv_parse_size(const char *s, size_t *out);

/* Parses a decimal unsigned integer in [min, max].  0, -EINVAL, -ERANGE. */
int cv_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* Parses a duration: a whole number with ms, s, m or h (a bare number is
 * seconds) into milliseconds.  0, -EINVAL, -ERANGE. */
int cv_parse_duration(const char *s, uint64_t *ms);

/* The same with a bare number worth BARE_MS milliseconds. */
int cv_parse_duration_bare(const char *s, uint64_t bare_ms, uint64_t *ms);

/* Parses a decimal integer with an optional sign in [min, max].  0,
 * -EINVAL (empty, white space, trailing junk), -ERANGE (overflow or out of
 * the range). */
int cv_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* yes/no, true/false, on/off, 1/0 in any case into *out (1 or 0).  0 or
 * -EINVAL. */
int cv_parse_bool(const char *s, int *out);

/* Reads the double-quoted string at S (S[0] is '"') up to its closing
 * quote: \" and \\ are the only escapes.  *OUT gets the text without quotes
 * (malloc'd), *REST what follows the closing quote.  0, or -EINVAL when S
 * does not start with a quote or the quote is not closed. */
int cv_unquote(const char *s, char **out, const char **rest);

/* Of the NULL-terminated CANDIDATES, the one closest to WORD when it is
 * close enough to be a likely misspelling (edit distance <= 2, and less than
 * the word's length), else NULL. */
const char *cv_suggest(const char *word, const char *const *candidates);

/* Edit distance (Levenshtein) between two strings. */
size_t cv_edit_distance(const char *a, const char *b);

/* Copies of strings that abort on out of memory: the framework cannot do
 * anything useful without a few bytes, and tests run under ASan anyway. */
char *cv_strdup(const char *s);
char *cv_strndup(const char *s, size_t n);
void *cv_malloc(size_t n);
void *cv_calloc(size_t n, size_t size);
void *cv_realloc(void *p, size_t n);
char *cv_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The one shape of the errors found before anything runs (config, plan,
 * loader, host API): writes "FILE:LINE: MESSAGE" into ERR ("FILE: MESSAGE"
 * when LINE <= 0, the message alone when FILE is NULL) and returns RC, a
 * negative errno-style code. */
int cv_err_at(char *err, size_t errlen, int rc, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
int cv_verr_at(char *err, size_t errlen, int rc, const char *file, int line, const char *fmt,
               va_list ap) __attribute__((format(printf, 6, 0)));

/* Trims white space at both ends, in place; returns s. */
char *cv_trim(char *s);

/* Joins DIR and PATH unless PATH is absolute or "-". */
char *cv_path_join(const char *dir, const char *path);

/* Makes sure descriptors 0, 1 and 2 are open, on /dev/null where they were
 * closed, before anything else is opened: a channel, a segment or the output
 * file must never become a program's standard output or error by accident.
 * Only the first call acts; cv_std_was_closed(FD) says whether FD was
 * closed then (reading or writing "-" on it is refused). */
void cv_reserve_std_fds(void);
int cv_std_was_closed(int fd);

/* write()/read() the whole buffer, retrying EINTR and short transfers
 * (cv_write_all waits for a non-blocking descriptor to take bytes).
 * cv_write_all returns 0 or -errno; cv_read_full returns bytes read (less
 * than n only at end of file) or -errno. */
int cv_write_all(int fd, const void *buf, size_t n);
/* After a write to FD failed with ERR: 0 to try again (EINTR; EAGAIN once
 * FD can take bytes: a descriptor we were given may be non-blocking, an
 * inherited O_NONBLOCK, and that is no reason to fail), else -ERR. */
int cv_write_retry(int fd, int err);
ssize_t cv_read_full(int fd, void *buf, size_t n);

/* Copies LEN bytes without a call, for the short items pipelines of lines
 * carry (per item, calling memcpy costs more than the copy); meant for a
 * few hundred bytes at most.  Fixed-size pieces, the last one overlapping,
 * never touch a byte outside [0, len) of either side. */
static inline void cv_copy_small(void *dst, const void *src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (len >= 16) {
        for (size_t i = 0; i + 16 < len; i += 16)
            memcpy(d + i, s + i, 16);
        memcpy(d + len - 16, s + len - 16, 16);
    } else if (len >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + len - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + len - 8, &b, 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + len - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + len - 4, &b, 4);
    } else if (len) {
        d[0] = s[0];
        d[len / 2] = s[len / 2];
        d[len - 1] = s[len - 1];
    }
}

#endif
