/* SPDX-License-Identifier: MIT */
/*
 * exec_echo.c - the program the exec module's tests run as a stage: it
 * replies to every item it reads with the item itself, flushed at once,
 * except for items that ask it to misbehave.
 *
 *   exec_echo [-f lines|nul|length32] [-o MARKER] [-x N] [-e STATUS]
 *             [-s TEXT] [-a] [-d]
 *
 *   -f  how items are read and replies written (default lines)
 *   -o  "hang" and "die" misbehave only while MARKER does not exist, and
 *       create it first: the program after a restart behaves
 *   -x  exits (status 0) once it has replied to N items
 *   -e  exits with STATUS at the end of its input (default 0)
 *   -s  writes TEXT and a newline to standard error at the start
 *   -a  writes its arguments after the options, one per line, and exits
 *   -d  writes the descriptors it has open ("fds: 0 1 2") first
 *
 * Items:  drop      an empty reply
 *         bad...    "ERROR: no good: " and the item
 *         hang      sleeps a minute (a reply that never comes)
 *         die       raises SIGKILL
 *         say:TEXT  writes TEXT to standard error, then replies
 *         garbage   half a reply (a length32 header for 1000 bytes and 3
 *                   of them, or a line without its newline), then exits 0
 *         twice     two replies
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum { LINES, NUL, LENGTH32 } framing = LINES;
static const char *marker;

/* Reads one item into *BUF; its length, or -1 at the end of the input. */
static long read_item(char **buf, size_t *cap)
{
    if (framing == LENGTH32) {
        unsigned char h[4];
        if (fread(h, 1, 4, stdin) != 4)
            return -1;
        size_t n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
        if (n + 1 > *cap) {
            *cap = n + 1;
            *buf = realloc(*buf, *cap);
        }
        if (fread(*buf, 1, n, stdin) != n)
            return -1;
        (*buf)[n] = '\0';
        return (long)n;
    }
    ssize_t n = getdelim(buf, cap, framing == NUL ? '\0' : '\n', stdin);
    if (n <= 0)
        return -1;
    if ((*buf)[n - 1] == (framing == NUL ? '\0' : '\n'))
        (*buf)[--n] = '\0';
    return (long)n;
}

static void reply(const char *data, size_t len)
{
    if (framing == LENGTH32) {
        unsigned char h[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                              (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
        fwrite(h, 1, 4, stdout);
    }
    fwrite(data, 1, len, stdout);
    if (framing != LENGTH32)
        putchar(framing == NUL ? '\0' : '\n');
    fflush(stdout);
}

/* Whether a once-only misbehaviour happens now (see -o). */
static int now_or_never(void)
{
    if (!marker)
        return 1;
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static void garbage(void)
{
    if (framing == LENGTH32)
        fwrite("\xe8\x03\x00\x00xyz", 1, 7, stdout);
    else
        fputs("half a reply", stdout);
    fflush(stdout);
    exit(0);
}

static void list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char line[4096] = "fds:";

    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != dirfd(d) && strlen(line) < sizeof line - 16)
            snprintf(line + strlen(line), sizeof line - strlen(line), " %d", fd);
    }
    if (d)
        closedir(d);
    reply(line, strlen(line));
}

static void one_item(const char *item, size_t len)
{
    if (strcmp(item, "drop") == 0) {
        reply("", 0);
    } else if (strncmp(item, "bad", 3) == 0) {
        char out[4096];
        int n = snprintf(out, sizeof out, "ERROR: no good: %s", item);
        reply(out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
    } else if (strcmp(item, "hang") == 0 && now_or_never()) {
        sleep(60);
    } else if (strcmp(item, "die") == 0 && now_or_never()) {
        raise(SIGKILL);
    } else if (strcmp(item, "garbage") == 0) {
        garbage();
    } else {
        if (strncmp(item, "say:", 4) == 0) {
            fprintf(stderr, "%s\n", item + 4);
            fflush(stderr);
        }
        reply(item, len);
        if (strcmp(item, "twice") == 0)
            reply(item, len);
    }
}

int main(int argc, char **argv)
{
    long limit = -1, replied = 0, n;
    int status = 0, opt, args = 0, fds = 0;
    char *buf = NULL;
    size_t cap = 0;

    while ((opt = getopt(argc, argv, "+f:o:x:e:s:ad")) != -1) {
        switch (opt) {
        case 'f':
            framing = strcmp(optarg, "nul") == 0        ? NUL
                      : strcmp(optarg, "length32") == 0 ? LENGTH32
                                                        : LINES;
            break;
        case 'o': marker = optarg; break;
        case 'x': limit = atol(optarg); break;
        case 'e': status = atoi(optarg); break;
        case 's': fprintf(stderr, "%s\n", optarg); fflush(stderr); break;
        case 'a': args = 1; break;
        case 'd': fds = 1; break;
        default: return 2;
        }
    }
    if (args) {
        for (int i = optind; i < argc; i++)
            reply(argv[i], strlen(argv[i]));
        return 0;
    }
    if (fds)
        list_fds();
    while (limit != replied && (n = read_item(&buf, &cap)) >= 0) {
        one_item(buf, (size_t)n);
        replied++;
    }
    free(buf);
    return status;
}
