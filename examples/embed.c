/* SPDX-License-Identifier: MIT */
/*
 * embed.c - a pipeline inside a program: a million numbers pushed through
 * the two stages of embed.ini and pulled back as they come, a flush, a
 * second batch with conveyor_run_batch, then the end of the run.
 *
 *     examples/embed [PIPELINE.ini [COUNT]]   (default: examples/embed.ini,
 *                                             a million)
 *
 * prints what is in examples/embed.expected.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conveyor/host.h>


typedef struct tally {
    uint64_t outputs, sum, next_seq;
    int in_order;
} tally;

/* Checks and adds up one output: "n=" and the pushed number plus one. */
static void count(tally *t, const void *item, size_t len, uint64_t seq)
{
    char text[32];
    unsigned long long n = 0;
    if (len < sizeof text) {
        memcpy(text, item, len);
        text[len] = '\0';
        if (sscanf(text, "n=%llu", &n) != 1)
            n = 0;
    }
    if (seq != t->next_seq || n != seq + 1)
        t->in_order = 0;
    t->next_seq = seq + 1;
    t->outputs++;
    t->sum += n;
}

/* Pulls what is there: the first pull waits up to WAIT_MS.  0, or the
 * error of the pull. */
static int take(conveyor_run *run, tally *t, int wait_ms)
{
    const void *item;
    size_t len;
    uint64_t seq;
    int rc;
    while ((rc = conveyor_run_pull(run, &item, &len, &seq, wait_ms)) == 0) {
        count(t, item, len, seq);
        wait_ms = 0;
    }
    return rc == -EAGAIN ? 0 : rc;
}

static void show(void *arg, size_t index, uint64_t seq, const void *item, size_t len)
{
    const char *const *names = arg;
    printf("  %s -> %.*s (item %zu, seq %" PRIu64 ")\n", names[index], (int)len,
           (const char *)item, index, seq);
}

static int fail(conveyor_run *run, const char *what, int rc)
{
    const char *why = run ? conveyor_run_error(run) : NULL;
    fprintf(stderr, "embed: %s: %s%s%s\n", what, strerror(-rc), why ? "\n" : "", why ? why : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "examples/embed.ini";
    int N = argc > 2 ? atoi(argv[2]) : 1000000;
    char err[512];
    conveyor_pipeline *pl;
    conveyor_run *run;

    conveyor_set_verbosity(0);
    if (conveyor_pipeline_open(path, &pl, err, sizeof err) != CONVEYOR_EXIT_OK) {
        fprintf(stderr, "embed: %s\n", err);
        return 2;
    }
    int status = conveyor_pipeline_start(pl, &run);
    if (status != CONVEYOR_EXIT_OK) {
        fprintf(stderr, "embed: the pipeline did not start (%d)\n", status);
        conveyor_run_free(run);
        conveyor_pipeline_close(pl);
        return status;
    }

    /* Batch 1: push a million numbers; whenever the pipeline is full,
     * take the outputs that are there (or wait a little for some). */
    tally t = {.next_seq = 1, .in_order = 1};
    char buf[32];
    int rc = 0;
    for (int i = 1; i <= N && rc == 0; i++) {
        int len = snprintf(buf, sizeof buf, "%d", i);
        while ((rc = conveyor_run_push(run, buf, (size_t)len, 0)) == -EAGAIN)
            if ((rc = take(run, &t, 10)) != 0)
                break;
    }
    if (rc == 0)
        rc = conveyor_run_flush(run, -1);
    if (rc == 0)
        rc = take(run, &t, 0);
    if (rc != 0)
        return fail(run, "batch 1", rc);
    printf("batch 1: %d pushed, %" PRIu64 " outputs, in order: %s, their sum: %" PRIu64 "\n", N,
           t.outputs, t.in_order ? "yes" : "no", t.sum);

    /* Batch 2: the same processes, through conveyor_run_batch. */
    const char *names[] = {"41", "99", "2.5"};
    const void *items[] = {names[0], names[1], names[2]};
    size_t lens[] = {2, 2, 3};
    printf("batch 2:\n");
    rc = conveyor_run_batch(run, items, lens, 3, show, (void *)names);
    if (rc != 0)
        return fail(run, "batch 2", rc);

    status = conveyor_run_finish(run);
    const void *item;
    size_t len;
    rc = conveyor_run_pull(run, &item, &len, NULL, 0);
    printf("finished with status %d; outputs left: %s\n", status,
           rc == CONVEYOR_RUN_END ? "none" : "some");
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
    return status;
}
