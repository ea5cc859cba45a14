/* SPDX-License-Identifier: MIT */
/*
 * exec_argv.h - splits the exec module's `command` into words the way sh
 * does, without a shell: blanks separate words; '...' keeps everything
 * literally; "..." keeps everything but \", \\, \$, \` and
 * backslash-newline; a backslash outside quotes takes the next character
 * literally.  Nothing is expanded ($, globs, ~) and # starts no comment.
 */
#ifndef CONVEYOR_PLUGINS_EXEC_ARGV_H
#define CONVEYOR_PLUGINS_EXEC_ARGV_H

typedef struct exec_argv {
    char **v;       /* the words, NULL-terminated */
    char *buf;      /* where they live */
    int n;          /* how many */
} exec_argv;

/* Splits S into A.  Returns 0, -EINVAL with *WHY set to a static message
 * (an open quote, a trailing backslash, no word at all), or -ENOMEM. */
int exec_argv_split(exec_argv *a, const char *s, const char **why);

void exec_argv_free(exec_argv *a);

#endif
