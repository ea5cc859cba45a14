/* SPDX-License-Identifier: MIT */
/*
 * exec_argv.c - sh-like word splitting without a shell (exec_argv.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exec_argv.h"

static int blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Copies the inside of a double-quoted string starting at *P (just past
 * the opening quote) to *O.  0, or -EINVAL when it is never closed. */
static int double_quoted(const char **p, char **o)
{
    const char *s = *p;

    for (; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1] && strchr("\"\\$`\n", s[1])) {
            s++;
            if (*s != '\n')
                *(*o)++ = *s;
            continue;
        }
        *(*o)++ = *s;
    }
    if (*s != '"')
        return -EINVAL;
    *p = s + 1;
    return 0;
}

/* Reads one word from *P into *O (NUL-terminated).  0, or -EINVAL with
 * *WHY set. */
static int one_word(const char **p, char **o, const char **why)
{
    const char *s = *p;

    while (*s && !blank(*s)) {
        if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end) {
                *why = "a single quote (') is not closed";
                return -EINVAL;
            }
            memcpy(*o, s + 1, (size_t)(end - s - 1));
            *o += end - s - 1;
            s = end + 1;
        } else if (*s == '"') {
            s++;
            if (double_quoted(&s, o) < 0) {
                *why = "a double quote (\") is not closed";
                return -EINVAL;
            }
        } else if (*s == '\\') {
            if (!s[1]) {
                *why = "the command ends with a backslash";
                return -EINVAL;
            }
            if (s[1] != '\n')
                *(*o)++ = s[1];
            s += 2;
        } else {
            *(*o)++ = *s++;
        }
    }
    *(*o)++ = '\0';
    *p = s;
    return 0;
}

int exec_argv_split(exec_argv *a, const char *s, const char **why)
{
    size_t len = strlen(s);
    char *o;
    int rc;

    memset(a, 0, sizeof *a);
    /* Every word takes at least one byte and a blank, or two quotes. */
    a->buf = malloc(len + 1);
    a->v = calloc(len / 2 + 2, sizeof *a->v);
    if (!a->buf || !a->v) {
        exec_argv_free(a);
        return -ENOMEM;
    }
    o = a->buf;
    for (;;) {
        while (blank(*s))
            s++;
        if (!*s)
            break;
        a->v[a->n++] = o;
        if ((rc = one_word(&s, &o, why)) < 0) {
            exec_argv_free(a);
            return rc;
        }
    }
    if (a->n == 0) {
        *why = "the command is empty";
        exec_argv_free(a);
        return -EINVAL;
    }
    return 0;
}

void exec_argv_free(exec_argv *a)
{
    free(a->buf);
    free(a->v);
    memset(a, 0, sizeof *a);
}
