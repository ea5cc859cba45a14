/* SPDX-License-Identifier: MIT */
/*
 * echo.c - W6's per-item program: reads a line, writes it back, flushes,
 * until the end of its input.  The least a program run by exec:run with
 * reply = per-item can do, so W6 measures the exchange, not the program.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        /* One reply per line, sent at once: the stage waits for it. */
        if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
            perror("echo");
            return 1;
        }
    }
    free(line);
    return 0;
}
