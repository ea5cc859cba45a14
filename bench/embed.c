/* SPDX-License-Identifier: MIT */
/*
 * embed.c - bench/run's driver for W7 and W8: a pipeline inside a program
 * (conveyor/host.h), its items made and checked here.
 *
 *   embed w7 -n N -w W PIPELINE.ini   round trips on an idle pipeline: one
 *                                     16-byte item pushed every millisecond,
 *                                     its result pulled; prints p50_us=..
 *                                     p99_us=.. over N items after W warm-up
 *   embed w8 -n N PIPELINE.ini        N 16-byte items pushed by one thread
 *                                     and pulled by another; prints items=N
 *                                     seconds=.. (from start to finish)
 *   embed w8b -n N PIPELINE.ini       the same N items in one thread, through
 *                                     conveyor_run_batch, 65536 at a time
 *   embed batches -n N PIPELINE.ini   N batches of 1000 items: push them,
 *                                     flush, pull them; after batch 1 and
 *                                     batch N prints the program's RSS, the
 *                                     PSS of the run's host and stages and
 *                                     their pids (the same pids: nothing
 *                                     was started again)
 *
 * Items are W1's lines: 15 digits and a newline.  Every output is compared
 * with its input (the pipelines are identity stages); a mismatch, a lost
 * item or a failure exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void item_of(uint64_t i, char out[16])
{
    char buf[32];
    snprintf(buf, sizeof buf, "%015llu\n", (unsigned long long)(i % 1000000000000000ULL));
    memcpy(out, buf, 16);
}

/* The next item after ITEM, in place (a decimal counter: no formatting
 * per item, which would cost more than the pipeline's own work). */
static void next_item(char item[16])
{
    for (int d = 14; d >= 0; d--) {
        if (item[d] != '9') {
            item[d]++;
            return;
        }
        item[d] = '0';
    }
}

static int die(conveyor_run *run, const char *what, int rc)
{
    const char *why = run ? conveyor_run_error(run) : NULL;
    fprintf(stderr, "embed: %s: %d (%s)%s%s\n", what, rc, rc < 0 ? strerror(-rc) : "",
            why ? ": " : "", why ? why : "");
    exit(1);
}

static conveyor_run *start(const char *ini, conveyor_pipeline **pl)
{
    char err[1024];
    conveyor_run *run = NULL;
    conveyor_set_verbosity(0);
    if (conveyor_pipeline_open(ini, pl, err, sizeof err) != 0) {
        fprintf(stderr, "embed: %s\n", err);
        exit(2);
    }
    int rc = conveyor_pipeline_start(*pl, &run);
    if (rc != 0)
        die(run, "start", rc);
    return run;
}

static void end(conveyor_run *run, conveyor_pipeline *pl)
{
    int status = conveyor_run_finish(run);
    if (status != 0)
        die(run, "finish", status);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int w7(const char *ini, long n, long warm)
{
    conveyor_pipeline *pl;
    conveyor_run *run = start(ini, &pl);
    double *us = calloc((size_t)n + 1, sizeof *us);
    for (long i = 0; i < warm + n; i++) {
        char in[16];
        item_of((uint64_t)i, in);
        struct timespec gap = {0, 1000000L};
        nanosleep(&gap, NULL);      /* idle: the stages sleep between items */
        double t0 = now();
        int rc = conveyor_run_push(run, in, sizeof in, -1);
        if (rc != 0)
            die(run, "push", rc);
        const void *out;
        size_t len;
        if ((rc = conveyor_run_pull(run, &out, &len, NULL, 10000)) != 0)
            die(run, "pull", rc);
        double t1 = now();
        if (len != sizeof in || memcmp(out, in, len) != 0)
            die(run, "an output differs from its input", 0);
        if (i >= warm)
            us[i - warm] = (t1 - t0) * 1e6;
    }
    end(run, pl);
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    printf("p50_us=%.1f p99_us=%.1f\n", us[(size_t)(n * 50 / 100)],
           us[(size_t)(n * 99 / 100 < n ? n * 99 / 100 : n - 1)]);
    free(us);
    return 0;
}

typedef struct pusher {
    conveyor_run *run;
    long n;
    int rc;
} pusher;

static void *push_all(void *arg)
{
    pusher *p = arg;
    char in[16];
    item_of(0, in);
    for (long i = 0; i < p->n; i++, next_item(in)) {
        if ((p->rc = conveyor_run_push(p->run, in, sizeof in, -1)) != 0)
            break;
    }
    return NULL;
}

static int w8(const char *ini, long n)
{
    double t0 = now();
    conveyor_pipeline *pl;
    conveyor_run *run = start(ini, &pl);
    pusher p = {.run = run, .n = n};
    pthread_t t;
    if (pthread_create(&t, NULL, push_all, &p) != 0)
        die(run, "pthread_create", 0);
    char want[16];
    item_of(0, want);
    for (long i = 0; i < n; i++, next_item(want)) {
        const void *out;
        size_t len;
        int rc = conveyor_run_pull(run, &out, &len, NULL, 60000);
        if (rc != 0)
            die(run, "pull", rc);
        if (len != sizeof want || memcmp(out, want, len) != 0)
            die(run, "an output differs from its input", 0);
    }
    pthread_join(t, NULL);
    if (p.rc != 0)
        die(run, "push", p.rc);
    end(run, pl);
    printf("items=%ld seconds=%.4f\n", n, now() - t0);
    return 0;
}

#define CHUNK 65536

typedef struct checker {
    char want[16];
    long seen;
    int bad;
} checker;

static void check_one(void *arg, size_t index, uint64_t seq, const void *out, size_t len)
{
    checker *c = arg;
    (void)index, (void)seq;
    if (len != sizeof c->want || memcmp(out, c->want, len) != 0)
        c->bad = 1;
    next_item(c->want);
    c->seen++;
}

static int w8b(const char *ini, long n)
{
    double t0 = now();
    conveyor_pipeline *pl;
    conveyor_run *run = start(ini, &pl);
    char (*buf)[16] = calloc(CHUNK, 16);
    const void **items = calloc(CHUNK, sizeof *items);
    size_t *lens = calloc(CHUNK, sizeof *lens);
    char cur[16];
    checker c = {.seen = 0};
    item_of(0, cur);
    item_of(0, c.want);
    for (long done = 0; done < n;) {
        size_t k = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
        for (size_t i = 0; i < k; i++, next_item(cur)) {
            memcpy(buf[i], cur, 16);
            items[i] = buf[i];
            lens[i] = 16;
        }
        int rc = conveyor_run_batch(run, items, lens, k, check_one, &c);
        if (rc != 0)
            die(run, "batch", rc);
        done += (long)k;
    }
    if (c.bad || c.seen != n)
        die(run, "an output differs from its input", 0);
    end(run, pl);
    printf("items=%ld seconds=%.4f\n", n, now() - t0);
    free(buf);
    free(items);
    free(lens);
    return 0;
}

/* A field ("VmRSS:", "Pss:") of a /proc file, in KiB; 0 when absent. */
static long proc_kib(const char *path, const char *field)
{
    FILE *f = fopen(path, "r");
    char line[256];
    long v = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, strlen(field)) == 0)
            v = strtol(line + strlen(field), NULL, 10);
    fclose(f);
    return v;
}

/* RSS of this program, PSS of HOST and its children, and their pids. */
static void memory_report(const char *when, long host)
{
    char path[128], pids[1024];
    long pss = proc_kib((snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", host), path), "Pss:");
    int used = snprintf(pids, sizeof pids, "%ld", host);
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", host, host);
    FILE *f = fopen(path, "r");
    long kid;
    while (f && fscanf(f, "%ld", &kid) == 1) {
        char kp[64];
        snprintf(kp, sizeof kp, "/proc/%ld/smaps_rollup", kid);
        pss += proc_kib(kp, "Pss:");
        if ((size_t)used < sizeof pids)
            used += snprintf(pids + used, sizeof pids - (size_t)used, ",%ld", kid);
    }
    if (f)
        fclose(f);
    printf("%s: program_rss_kib=%ld pipeline_pss_kib=%ld pids=%s\n", when,
           proc_kib("/proc/self/status", "VmRSS:"), pss, pids);
}

static int batches(const char *ini, long n)
{
    conveyor_pipeline *pl;
    conveyor_run *run = start(ini, &pl);
    char cur[16], want[16];
    item_of(0, cur);
    item_of(0, want);
    for (long b = 1; b <= n; b++) {
        for (int i = 0; i < 1000; i++, next_item(cur)) {
            int rc = conveyor_run_push(run, cur, sizeof cur, 60000);
            if (rc != 0)
                die(run, "push", rc);
        }
        int rc = conveyor_run_flush(run, 60000);
        if (rc != 0)
            die(run, "flush", rc);
        for (int i = 0; i < 1000; i++, next_item(want)) {
            const void *out;
            size_t len;
            rc = conveyor_run_pull(run, &out, &len, NULL, 0);
            if (rc != 0)
                die(run, "pull after flush", rc);
            if (len != sizeof want || memcmp(out, want, len) != 0)
                die(run, "an output differs from its input", 0);
        }
        if (b == 1 || b == n) {
            char when[32];
            snprintf(when, sizeof when, "batch %ld", b);
            memory_report(when, (long)conveyor_run_host_pid(run));
        }
    }
    end(run, pl);
    return 0;
}

int main(int argc, char **argv)
{
    long n = 1000, warm = 50;
    int opt;
    if (argc < 2)
        goto usage;
    const char *mode = argv[1];
    optind = 2;
    while ((opt = getopt(argc, argv, "n:w:")) != -1) {
        if (opt == 'n')
            n = strtol(optarg, NULL, 10);
        else if (opt == 'w')
            warm = strtol(optarg, NULL, 10);
        else
            goto usage;
    }
    if (optind != argc - 1 || n < 1 || warm < 0)
        goto usage;
    if (strcmp(mode, "w7") == 0)
        return w7(argv[optind], n, warm);
    if (strcmp(mode, "w8") == 0)
        return w8(argv[optind], n);
    if (strcmp(mode, "w8b") == 0)
        return w8b(argv[optind], n);
    if (strcmp(mode, "batches") == 0)
        return batches(argv[optind], n);
usage:
    fprintf(stderr, "usage: embed w7 -n N -w W PIPELINE.ini | embed w8|w8b|batches -n N "
                    "PIPELINE.ini\n");
    return 2;
}
