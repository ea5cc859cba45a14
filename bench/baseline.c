/* SPDX-License-Identifier: MIT */
/*
 * baseline.c - W1's ceiling: one process doing the per-item work of a
 * pipeline of three identity stages, with nothing between the stages.
 *
 *   baseline [STAGES] < lines > out        (STAGES defaults to 3)
 *
 * It splits stdin into lines the way the framework's source does (64 KiB
 * reads, memchr for '\n', an item is the bytes before it), hands every item
 * through STAGES identity functions called through function pointers (each
 * "emits" to the next, the last to the output buffer), and writes the items
 * back as lines in 64 KiB writes, as the sink does.  The pointers are read
 * through a volatile table so the compiler cannot inline the stages away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64u << 10)
#define MAX_STAGES 16

typedef struct ctx ctx;
typedef int (*process_fn)(ctx *c, const void *item, size_t len);

struct ctx {
    int stage, nstages;
    unsigned char *out;
    size_t used;
};

static process_fn volatile stages[MAX_STAGES];

static int write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* What conveyor_emit() is to a stage: hand the item to whatever is next. */
static int emit(ctx *c, const void *item, size_t len)
{
    if (++c->stage < c->nstages) {
        int rc = stages[c->stage](c, item, len);
        c->stage--;
        return rc;
    }
    c->stage--;
    if (c->used + len + 1 > CHUNK) {
        int rc = write_all(c->out, c->used);
        if (rc < 0)
            return rc;
        c->used = 0;
    }
    memcpy(c->out + c->used, item, len);
    c->out[c->used + len] = '\n';
    c->used += len + 1;
    return 0;
}

__attribute__((noinline)) static int identity(ctx *c, const void *item, size_t len)
{
    return emit(c, item, len);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 3;
    if (n < 1 || n > MAX_STAGES) {
        fprintf(stderr, "usage: baseline [STAGES (1-%d)] < lines > out\n", MAX_STAGES);
        return 2;
    }
    for (int i = 0; i < n; i++)
        stages[i] = identity;

    unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK);
    if (!in || !out) {
        perror("baseline");
        return 1;
    }
    ctx c = {.stage = 0, .nstages = n, .out = out};
    size_t start = 0, end = 0;
    unsigned long long items = 0;
    int eof = 0, rc = 0;

    for (;;) {
        unsigned char *nl = memchr(in + start, '\n', end - start);
        if (nl) {
            size_t len = (size_t)(nl - (in + start));
            c.stage = 0;
            rc = stages[0](&c, in + start, len);
            if (rc < 0)
                break;
            items++;
            start += len + 1;
            continue;
        }
        if (eof) {
            if (end > start) {          /* a last line without '\n' */
                c.stage = 0;
                rc = stages[0](&c, in + start, end - start);
                items++;
            }
            break;
        }
        if (start > 0) {
            memmove(in, in + start, end - start);
            end -= start;
            start = 0;
        }
        if (end == CHUNK) {
            fprintf(stderr, "baseline: a line longer than %u bytes\n", CHUNK);
            return 1;
        }
        ssize_t r = read(STDIN_FILENO, in + end, CHUNK - end);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            perror("baseline: read");
            return 1;
        }
        if (r == 0)
            eof = 1;
        end += (size_t)r;
    }
    if (rc == 0)
        rc = write_all(out, c.used);
    if (rc < 0) {
        fprintf(stderr, "baseline: write: %s\n", strerror(-rc));
        return 1;
    }
    free(in);
    free(out);
    return 0;
}
