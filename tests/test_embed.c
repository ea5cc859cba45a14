/* SPDX-License-Identifier: MIT */
/*
 * test_embed.c - a pipeline inside a program (conveyor_pipeline_start and
 * conveyor_run_*): outputs, flushes, timeouts, back-pressure, failures
 * with conveyor-host's own messages, threads, and what is left behind when
 * the program exits, is killed or forks.  Run on both transports
 * (tests/pipe-transport.sh).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "harness.h"

static conveyor_pipeline *open_ini(const char *ini)
{
    char *path = write_file("p.ini", ini);
    char err[1024];
    conveyor_pipeline *pl = NULL;
    int rc = conveyor_pipeline_open(path, &pl, err, sizeof err);
    cr_assert_eq(rc, CONVEYOR_EXIT_OK, "open: %s", err);
    free(path);
    return pl;
}

static conveyor_run *start(conveyor_pipeline *pl)
{
    conveyor_run *run = NULL;
    int rc = conveyor_pipeline_start(pl, &run);
    cr_assert_eq(rc, CONVEYOR_EXIT_OK, "start: %d (%s)", rc,
                 run && conveyor_run_error(run) ? conveyor_run_error(run) : "");
    cr_assert_not_null(run);
    return run;
}

static void push_text(conveyor_run *run, const char *s)
{
    int rc = conveyor_run_push(run, s, strlen(s), -1);
    cr_assert_eq(rc, 0, "push '%s': %d", s, rc);
}

/* The next output, as text (static buffer), waiting up to 10 s. */
static const char *pull_text(conveyor_run *run, uint64_t *seq)
{
    static char buf[4096];
    const void *item;
    size_t len;
    uint64_t s;
    int rc = conveyor_run_pull(run, &item, &len, &s, 10000);
    cr_assert_eq(rc, 0, "pull: %d", rc);
    cr_assert_lt(len, sizeof buf);
    memcpy(buf, item, len);
    buf[len] = '\0';
    if (seq)
        *seq = s;
    return buf;
}

static void no_output_now(conveyor_run *run)
{
    const void *item;
    size_t len;
    int rc = conveyor_run_pull(run, &item, &len, NULL, 0);
    cr_assert_eq(rc, -EAGAIN, "pull: %d, expected -EAGAIN", rc);
}

/* The host pid's children, sorted. */
static size_t stage_pids(conveyor_run *run, pid_t *kids, size_t max)
{
    size_t n = children_of((pid_t)conveyor_run_host_pid(run), kids, max);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && kids[j - 1] > kids[j]; j--) {
            pid_t t = kids[j];
            kids[j] = kids[j - 1];
            kids[j - 1] = t;
        }
    return n;
}

/* 1 once PID is gone (or a zombie), waiting up to 10 s. */
static int gone(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        char st;
        pid_t pp;
        if (proc_stat(pid, &st, &pp) != 0 || st == 'Z')
            return 1;
        usleep(10000);
    }
    return 0;
}

static const char *CHAIN = "[pipeline]\n"
                           "shared_memory = 64K\n"
                           "[up]\nplugin = text:upper\n"
                           "[label]\nplugin = text:prefix\ntext = \"<\"\n";

Test(embed, push_pull_flush_finish, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    cr_assert_eq(shm_left(getpid()), 1, "the run's segment is there while it runs");
    no_output_now(run);
    push_text(run, "abc");
    push_text(run, "de");
    cr_assert_eq(conveyor_run_pushed(run), 2);
    cr_assert_eq(conveyor_run_flush(run, -1), 0);
    uint64_t seq;
    cr_assert_str_eq(pull_text(run, &seq), "<ABC");
    cr_assert_eq(seq, 1);
    cr_assert_str_eq(pull_text(run, &seq), "<DE");
    cr_assert_eq(seq, 2);
    no_output_now(run);
    /* A second batch through the same processes. */
    push_text(run, "x");
    cr_assert_str_eq(pull_text(run, &seq), "<X");
    cr_assert_eq(seq, 3);
    push_text(run, "");
    cr_assert_eq(conveyor_run_finish(run), 0);
    cr_assert_str_eq(pull_text(run, &seq), "<");
    cr_assert_eq(seq, 4);
    const void *item;
    size_t len;
    cr_assert_eq(conveyor_run_pull(run, &item, &len, NULL, 0), CONVEYOR_RUN_END);
    cr_assert_eq(conveyor_run_push(run, "y", 1, 0), -EINVAL, "no push after finish");
    cr_assert_null(conveyor_run_error(run));
    pid_t host = (pid_t)conveyor_run_host_pid(run);
    conveyor_run_free(run);
    cr_assert(gone(host));
    cr_assert_eq(shm_left(getpid()), 0, "finish removed the segment");
    conveyor_pipeline_close(pl);
}

/* Outputs of init and fini, and the seq numbers they carry. */
Test(embed, init_and_fini_outputs, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini("[b]\nplugin = testplug:bookends\n");
    conveyor_run *run = start(pl);
    uint64_t seq;
    cr_assert_str_eq(pull_text(run, &seq), "init");
    cr_assert_eq(seq, 0);
    push_text(run, "a");
    cr_assert_str_eq(pull_text(run, &seq), "a");
    cr_assert_eq(seq, 1);
    cr_assert_eq(conveyor_run_finish(run), 0);
    cr_assert_str_eq(pull_text(run, &seq), "fini");
    cr_assert_eq(seq, UINT64_MAX);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* A flush is a barrier for items a stage drops, fans out, and merges. */
Test(embed, flush_through_filters_and_forks, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini("[drop]\nplugin = testplug:drop\nkeep = 2\n"
                                     "[fan]\ntype = replicate\n"
                                     "[a]\ninput = fan\nplugin = text:prefix\ntext = a\n"
                                     "[b]\ninput = fan\nplugin = text:prefix\ntext = b\n"
                                     "[j]\ntype = join\ninput = a, b\norder = source\n");
    conveyor_run *run = start(pl);
    for (int i = 1; i <= 5; i++) {
        char s[8];
        snprintf(s, sizeof s, "%d", i);
        push_text(run, s);
    }
    cr_assert_eq(conveyor_run_flush(run, 10000), 0);
    const char *want[] = {"a2", "b2", "a4", "b4"};
    for (int i = 0; i < 4; i++)
        cr_assert_str_eq(pull_text(run, NULL), want[i]);
    no_output_now(run);
    /* Nothing pushed since: the same flush again returns at once. */
    cr_assert_eq(conveyor_run_flush(run, 0), 0);
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* conveyor_run_batch: results in input order, many more items than the
 * channels hold, through replicas that merge in arrival order. */
typedef struct collected {
    size_t n, bad;
    uint64_t first;
} collected;

static void collect_one(void *arg, size_t index, uint64_t seq, const void *item, size_t len)
{
    collected *c = arg;
    char want[32];
    int n = snprintf(want, sizeof want, "%zu", index + 1);
    if (index != c->n || seq != c->first + index || len != (size_t)n || memcmp(item, want, len))
        c->bad++;
    c->n++;
}

Test(embed, batch_in_input_order, .timeout = 120)
{
    conveyor_pipeline *pl = open_ini("[w]\nplugin = text:identity\nreplicas = 3\n");
    conveyor_run *run = start(pl);
    size_t n = 300000;
    char (*texts)[16] = calloc(n, sizeof *texts);
    const void **items = calloc(n, sizeof *items);
    size_t *lens = calloc(n, sizeof *lens);
    for (size_t i = 0; i < n; i++) {
        lens[i] = (size_t)snprintf(texts[i], sizeof texts[i], "%zu", i + 1);
        items[i] = texts[i];
    }
    push_text(run, "0");    /* an output before the batch, not one of its items */
    cr_assert_eq(conveyor_run_flush(run, -1), 0);
    collected c = {.first = 2};
    /* The earlier output comes first, with index SIZE_MAX: counted apart. */
    uint64_t seq;
    cr_assert_str_eq(pull_text(run, &seq), "0");
    int rc = conveyor_run_batch(run, items, lens, n, collect_one, &c);
    cr_assert_eq(rc, 0, "batch: %d", rc);
    cr_assert_eq(c.n, n);
    cr_assert_eq(c.bad, 0, "%zu outputs out of order or wrong", c.bad);
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
    free(texts);
    free(items);
    free(lens);
}

Test(embed, timeouts_and_back_pressure, .timeout = 60)
{
    /* The stage sleeps 10 s on its first item: nothing it holds is freed
     * while the test fills the channel in front of it. */
    conveyor_pipeline *pl = open_ini("[s]\nplugin = testplug:slow\nusec = 10000000\n");
    conveyor_run *run = start(pl);
    const void *item;
    size_t len;
    cr_assert_eq(conveyor_run_pull(run, &item, &len, NULL, 50), -EAGAIN);
    static char big[4000];
    memset(big, 'x', sizeof big);
    size_t pushed = 0;
    int rc;
    while ((rc = conveyor_run_push(run, big, sizeof big, 0)) == 0 && pushed < 1000000)
        pushed++;
    cr_assert_eq(rc, -EAGAIN, "push into a full channel: %d", rc);
    cr_assert_gt(pushed, 0);
    /* The stage may still be taking its first items in (a pipe is read a
     * buffer at a time): a push that waits succeeds until it has them. */
    int tries = 0;
    while ((rc = conveyor_run_push(run, big, sizeof big, 100)) == 0 && tries++ < 10000)
        pushed++;
    cr_assert_eq(rc, -EAGAIN, "a push that waits 100 ms for room: %d", rc);
    cr_assert_eq(conveyor_run_pushed(run), pushed);
    cr_assert_eq(conveyor_run_flush(run, 100), -EAGAIN, "the slow stage still holds the items");
    pid_t host = (pid_t)conveyor_run_host_pid(run);
    cr_assert_eq(conveyor_run_stop(run), 128 + SIGTERM);
    cr_assert_eq(conveyor_run_push(run, "a", 1, 0), -EPIPE);
    cr_assert_eq(conveyor_run_pull(run, &item, &len, NULL, 0), CONVEYOR_RUN_END);
    conveyor_run_free(run);
    cr_assert(gone(host));
    cr_assert_eq(shm_left(getpid()), 0);
    conveyor_pipeline_close(pl);
}

Test(embed, run_fd, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    int fd = conveyor_run_fd(run);
    cr_assert_geq(fd, 0);
    no_output_now(run);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 0), 0, "nothing to pull: not readable");
    push_text(run, "q");
    cr_assert_eq(poll(&pfd, 1, 10000), 1, "an output came: readable");
    const void *item;
    size_t len;
    int rc;
    while ((rc = conveyor_run_pull(run, &item, &len, NULL, 0)) == -EAGAIN) {
        /* Readiness may come before the output does (a marker, a
         * wake-up): wait again. */
        cr_assert_eq(poll(&pfd, 1, 10000), 1);
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(len, 2);
    cr_assert_eq(memcmp(item, "<Q", 2), 0);
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* 1000 batches of 1000 items, a flush after each: the same processes
 * throughout, and every output once, in order. */
Test(embed, thousand_batches_same_processes, .timeout = 300)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    pid_t before[8], after[8];
    size_t nb = stage_pids(run, before, 8);
    cr_assert_eq(nb, 2, "one process per stage");
    uint64_t next = 1;
    char s[32], want[32];
    for (int b = 0; b < 1000; b++) {
        for (int i = 0; i < 1000; i++) {
            int len = snprintf(s, sizeof s, "i%d", b * 1000 + i);
            cr_assert_eq(conveyor_run_push(run, s, (size_t)len, -1), 0);
        }
        cr_assert_eq(conveyor_run_flush(run, -1), 0);
        const void *item;
        size_t len;
        uint64_t seq;
        int rc, got = 0;
        while ((rc = conveyor_run_pull(run, &item, &len, &seq, 0)) == 0) {
            int wl = snprintf(want, sizeof want, "<I%" PRIu64, seq - 1);
            cr_assert(seq == next && len == (size_t)wl && memcmp(item, want, len) == 0,
                      "batch %d: seq %" PRIu64 " (expected %" PRIu64 ")", b, seq, next);
            next++;
            got++;
        }
        cr_assert_eq(rc, -EAGAIN);
        cr_assert_eq(got, 1000, "batch %d: %d outputs", b, got);
    }
    size_t na = stage_pids(run, after, 8);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < na; i++)
        cr_assert_eq(after[i], before[i], "no process was started again");
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* One thread pushes while another pulls. */
typedef struct pusher {
    conveyor_run *run;
    int n, rc;
} pusher;

static void *push_all(void *arg)
{
    pusher *p = arg;
    char s[32];
    for (int i = 1; i <= p->n && p->rc == 0; i++) {
        int len = snprintf(s, sizeof s, "%d", i);
        p->rc = conveyor_run_push(p->run, s, (size_t)len, -1);
    }
    return NULL;
}

Test(embed, two_threads, .timeout = 120)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    pusher p = {.run = run, .n = 500000};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, push_all, &p), 0);
    char want[32];
    int bad = 0;
    for (int i = 1; i <= p.n; i++) {
        const void *item;
        size_t len;
        uint64_t seq;
        int rc = conveyor_run_pull(run, &item, &len, &seq, 30000);
        if (rc != 0) {
            cr_log_error("pull %d: %d", i, rc);
            bad++;
            break;
        }
        int wl = snprintf(want, sizeof want, "<%d", i);
        if (seq != (uint64_t)i || len != (size_t)wl || memcmp(item, want, len) != 0)
            bad++;
    }
    pthread_join(t, NULL);
    cr_assert_eq(p.rc, 0);
    cr_assert_eq(bad, 0);
    no_output_now(run);
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* --- failures: the messages conveyor-host prints ---------------------------- */

/* Every error line conveyor-host prints for INI on IN, without its
 * "conveyor-host: " prefix, as conveyor_run_error gives them. */
static char *host_errors(const char *ini, const char *in)
{
    host_run hr;
    int status = run_text(&hr, ini, in);
    cr_assert_eq(status, 1, "conveyor-host: %d, %s", status, hr.err);
    size_t cap = strlen(hr.err) + 1, n = 0;
    char *out = calloc(cap, 1);
    for (char *line = hr.err; *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *p = "conveyor-host: ";
        if (len > strlen(p) && memcmp(line, p, strlen(p)) == 0 &&
            memmem(line, len, "error: ", 7)) {
            if (n)
                out[n++] = '\n';
            memcpy(out + n, line + strlen(p), len - strlen(p));
            n += len - strlen(p);
        }
        line += len + (end ? 1 : 0);
    }
    host_run_free(&hr);
    return out;
}

/* Pushes 1..N while pulling; returns the first error of a push or pull,
 * and how many items were pushed. */
static int push_until_error(conveyor_run *run, int n, int *pushed)
{
    char s[32];
    int rc = 0;
    *pushed = 0;
    for (int i = 1; i <= n && rc == 0; i++) {
        int len = snprintf(s, sizeof s, "%d", i);
        while ((rc = conveyor_run_push(run, s, (size_t)len, 10)) == -EAGAIN) {
            const void *item;
            size_t l;
            while ((rc = conveyor_run_pull(run, &item, &l, NULL, 0)) == 0)
                ;
            if (rc != -EAGAIN)
                return rc;
        }
        if (rc == 0)
            (*pushed)++;
    }
    if (rc == 0)
        rc = conveyor_run_flush(run, 30000);
    return rc;
}

static void check_failure(const char *ini, int n)
{
    char *in = calloc((size_t)n, 12);
    size_t at = 0;
    for (int i = 1; i <= n; i++)
        at += (size_t)sprintf(in + at, "%d\n", i);
    char *expected = host_errors(ini, in);
    cr_assert_neq(expected[0], '\0', "conveyor-host printed an error");

    conveyor_pipeline *pl = open_ini(ini);
    conveyor_run *run = start(pl);
    pid_t host = (pid_t)conveyor_run_host_pid(run);
    int pushed;
    int rc = push_until_error(run, n, &pushed);
    cr_assert_eq(rc, -EPIPE, "push/pull/flush: %d", rc);
    cr_assert_str_eq(conveyor_run_error(run), expected);
    cr_assert_eq(conveyor_run_push(run, "1", 1, 0), -EPIPE);
    const void *item;
    size_t len;
    cr_assert_eq(conveyor_run_pull(run, &item, &len, NULL, 0), -EPIPE);
    cr_assert_eq(conveyor_run_finish(run), 1);
    cr_assert(gone(host));
    cr_assert_eq(shm_left(getpid()), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
    free(expected);
    free(in);
}

Test(embed, stage_fails_an_item, .timeout = 60)
{
    check_failure("[up]\nplugin = text:upper\n[f]\nplugin = testplug:fail\nat = 3000\n", 100000);
}

Test(embed, stage_crashes_mid_batch, .timeout = 60)
{
    check_failure("[pipeline]\nshared_memory = 4K\n"
                  "[up]\nplugin = text:upper\n[c]\nplugin = testplug:crash\nat = 2500\n", 100000);
}

/* --- pushes that nothing follows ------------------------------------------- */

/* Items pushed one by one and then pulled, with no flush between: every
 * push woke the first stage or found it awake, so each pull gets its item
 * (exactly, in order) and no output is left over. */
Test(embed, pushes_then_pulls_without_flush, .timeout = 120)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    char s[32];
    for (int round = 0; round < 3; round++) {
        int n = round == 0 ? 1 : round == 1 ? 37 : 5000;
        int base = (int)conveyor_run_pushed(run);
        for (int i = 1; i <= n; i++) {
            snprintf(s, sizeof s, "x%d", base + i);
            push_text(run, s);
        }
        for (int i = 1; i <= n; i++) {
            uint64_t seq;
            const char *out = pull_text(run, &seq);
            snprintf(s, sizeof s, "<X%d", base + i);
            cr_assert_str_eq(out, s);
            cr_assert_eq(seq, (uint64_t)(base + i));
        }
        no_output_now(run);
    }
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* The program pushes and then only waits, calling nothing: the last item
 * must still reach the last stage, which crashes on it.  The stage's end
 * is watched in /proc, and the run's error is conveyor-host's own for the
 * same input. */
Test(embed, pushes_then_only_waits, .timeout = 120)
{
    const char *ini = "[up]\nplugin = text:upper\n[c]\nplugin = testplug:crash_on\nitem = LAST\n";
    char *expected = host_errors(ini, "1\n2\nlast\n");
    cr_assert_neq(expected[0], '\0', "conveyor-host printed an error");
    conveyor_pipeline *pl = open_ini(ini);
    conveyor_run *run = start(pl);
    pid_t kids[8];
    cr_assert_eq(stage_pids(run, kids, 8), 2, "two stage processes");
    push_text(run, "1");
    push_text(run, "2");
    push_text(run, "last");
    for (size_t i = 0; i < 2; i++)
        cr_assert(gone(kids[i]), "stage process %ld ended without another call",
                  (long)kids[i]);
    cr_assert_eq(conveyor_run_finish(run), 1);
    cr_assert_str_eq(conveyor_run_error(run), expected);
    conveyor_run_free(run);
    cr_assert_eq(shm_left(getpid()), 0);
    conveyor_pipeline_close(pl);
    free(expected);
}

/* One thread pushes bursts of 1 to 31 items and then waits, calling
 * nothing, until another thread pulled them: a first stage that sleeps
 * between bursts must be woken by the burst alone. */
typedef struct burster {
    conveyor_run *run;
    sem_t pulled;
    int bursts, rc;
} burster;

static int burst_len(int b)
{
    return 1 + (b * 7) % 31;
}

static void *push_bursts(void *arg)
{
    burster *p = arg;
    char s[32];
    int i = 0;
    for (int b = 0; b < p->bursts && p->rc == 0; b++) {
        for (int k = 0; k < burst_len(b) && p->rc == 0; k++) {
            int len = snprintf(s, sizeof s, "b%d", ++i);
            p->rc = conveyor_run_push(p->run, s, (size_t)len, -1);
        }
        while (sem_wait(&p->pulled) != 0)
            ;
    }
    return NULL;
}

/* The pulling side: each burst's outputs, exactly. */
static void bursts_checked(burster *p)
{
    char want[32];
    int i = 0;
    for (int b = 0; b < p->bursts; b++) {
        for (int k = 0; k < burst_len(b); k++) {
            const void *item;
            size_t len;
            uint64_t seq;
            int rc = conveyor_run_pull(p->run, &item, &len, &seq, 30000);
            cr_assert_eq(rc, 0, "burst %d, item %d: pull: %d", b, i + 1, rc);
            int wl = snprintf(want, sizeof want, "<B%d", ++i);
            cr_assert_eq(seq, (uint64_t)i);
            cr_assert(len == (size_t)wl && memcmp(item, want, len) == 0,
                      "burst %d: got '%.*s', want '%s'", b, (int)len, (const char *)item, want);
        }
        sem_post(&p->pulled);
    }
}

Test(embed, bursts_from_one_thread_pulled_by_another, .timeout = 120)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    burster p = {.run = run, .bursts = 300};
    cr_assert_eq(sem_init(&p.pulled, 0, 0), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, push_bursts, &p), 0);
    bursts_checked(&p);
    pthread_join(t, NULL);
    cr_assert_eq(p.rc, 0);
    no_output_now(run);
    cr_assert_eq(conveyor_run_finish(run), 0);
    sem_destroy(&p.pulled);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

Test(embed, init_fails, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini("[up]\nplugin = text:upper\n[i]\nplugin = testplug:initfail\n");
    conveyor_run *run = NULL;
    cr_assert_eq(conveyor_pipeline_start(pl, &run), CONVEYOR_EXIT_FAILED);
    cr_assert_not_null(run);
    cr_assert_not_null(conveyor_run_error(run));
    cr_assert(strstr(conveyor_run_error(run), "init failed"), "%s", conveyor_run_error(run));
    cr_assert_eq(conveyor_run_finish(run), 1);
    conveyor_run_free(run);
    cr_assert_eq(shm_left(getpid()), 0);
    conveyor_pipeline_close(pl);
}

Test(embed, refused_pipelines, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini("[fan]\ntype = replicate\n"
                                     "[a]\ninput = fan\nplugin = text:upper\n"
                                     "[b]\ninput = fan\nplugin = text:lower\n"
                                     "[j]\ntype = join\ninput = a, b\norder = concat\n");
    conveyor_run *run = (conveyor_run *)1;
    cr_assert_eq(conveyor_pipeline_start(pl, &run), CONVEYOR_EXIT_CONFIG);
    cr_assert_null(run);
    conveyor_pipeline_close(pl);
    pl = open_ini("[p]\ntype = pipe\n");
    cr_assert_eq(conveyor_pipeline_start(pl, &run), CONVEYOR_EXIT_CONFIG);
    cr_assert_null(run);
    conveyor_pipeline_close(pl);
    /* Its items come from a source stage: nothing for the program to push. */
    pl = open_ini("[src]\ntype = source\nplugin = sources:numbers\n[up]\nplugin = text:upper\n");
    cr_assert_eq(conveyor_pipeline_start(pl, &run), CONVEYOR_EXIT_CONFIG);
    cr_assert_null(run);
    conveyor_pipeline_close(pl);
    cr_assert_eq(shm_left(getpid()), 0);
}

/* --- the program's end: exit, kill, fork ---------------------------------- */

/* In a child: starts CHAIN, pushes an item, writes the host's pid to FD
 * (and with HOW 2 the pid of a child of its own that lives on), waits
 * until GO is closed, then ends as HOW says: 0 exit() without finish, 1
 * and 2 wait to be killed. */
static void child_program(int fd, int go, int how)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    pid_t host = (pid_t)conveyor_run_host_pid(run);
    push_text(run, "abc");
    if (write(fd, &host, sizeof host) != sizeof host)
        _exit(3);
    if (how == 2) {
        pid_t other = fork();
        if (other == 0) {
            /* Not the test's output: a failing test must not hang on it. */
            int null = open("/dev/null", O_RDWR);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            for (;;)
                pause();
        }
        if (write(fd, &other, sizeof other) != sizeof other)
            _exit(3);
    }
    char c;
    while (read(go, &c, 1) > 0)
        ;
    if (how == 0)
        exit(0);
    for (;;)
        pause();
}

static void program_ends(int how)
{
    int p[2], go[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(go), 0);
    fflush(NULL);
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0) {
        close(p[0]);
        close(go[1]);
        child_program(p[1], go[0], how);
    }
    close(p[1]);
    close(go[0]);
    pid_t host = 0, other = 0;
    cr_assert_eq(read(p[0], &host, sizeof host), (ssize_t)sizeof host);
    if (how == 2)
        cr_assert_eq(read(p[0], &other, sizeof other), (ssize_t)sizeof other);
    close(p[0]);
    cr_assert_eq(shm_left(kid), 1, "the run's segment while it runs");
    pid_t stages[8];
    size_t n = children_of(host, stages, 8);
    cr_assert_eq(n, 2);
    if (how != 0)
        kill(kid, SIGKILL);
    close(go[1]);
    int ws;
    cr_assert_eq(waitpid(kid, &ws, 0), kid);
    int host_gone = gone(host), stages_gone = 1;
    for (size_t i = 0; i < n; i++)
        stages_gone &= gone(stages[i]);
    char st = 0;
    pid_t pp;
    int other_lives = other > 0 && proc_stat(other, &st, &pp) == 0 && st != 'Z';
    if (other > 0)
        kill(other, SIGKILL);
    if (!host_gone)
        kill(host, SIGKILL);    /* what a failure would leave: not for the next tests */
    cr_assert(host_gone, "the host is gone");
    cr_assert(stages_gone, "every stage process is gone");
    /* The host removes the segment before it ends. */
    cr_assert_eq(shm_left(kid), 0, "nothing left in /dev/shm");
    if (other > 0)
        cr_assert(other_lives, "the program's own child lived on");
}

/* A child the program forked outlives it: it holds none of the run's
 * descriptors, so the host still sees the program go. */
Test(embed, program_killed_its_child_lives_on, .timeout = 60)
{
    program_ends(2);
}

Test(embed, program_exits_without_finish, .timeout = 60)
{
    program_ends(0);
}

Test(embed, program_killed, .timeout = 60)
{
    program_ends(1);
}

/* The program forks a child that ends at once, with exit(): the run goes
 * on in the parent, and the child's exit changes nothing. */
Test(embed, program_forks, .timeout = 60)
{
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    push_text(run, "a");
    fflush(NULL);
    pid_t kid = fork();
    cr_assert_geq(kid, 0);
    if (kid == 0)
        exit(0);
    int ws;
    cr_assert_eq(waitpid(kid, &ws, 0), kid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    push_text(run, "b");
    cr_assert_str_eq(pull_text(run, NULL), "<A");
    cr_assert_str_eq(pull_text(run, NULL), "<B");
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
}

/* A crash while one thread pushes and another pulls: both see -EPIPE. */
Test(embed, two_threads_and_a_crash, .timeout = 120)
{
    conveyor_pipeline *pl = open_ini("[up]\nplugin = text:upper\n"
                                     "[c]\nplugin = testplug:crash\nat = 20000\n");
    conveyor_run *run = start(pl);
    pusher p = {.run = run, .n = 10000000};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, push_all, &p), 0);
    int rc;
    const void *item;
    size_t len;
    while ((rc = conveyor_run_pull(run, &item, &len, NULL, 30000)) == 0)
        ;
    pthread_join(t, NULL);
    cr_assert_eq(rc, -EPIPE, "pull: %d", rc);
    cr_assert_eq(p.rc, -EPIPE, "push: %d", p.rc);
    cr_assert_str_eq(conveyor_run_error(run),
                     "error: stage 'c' was killed by SIGSEGV (Segmentation fault) while "
                     "processing item 20000; the pipeline is stopped");
    cr_assert_eq(conveyor_run_finish(run), 1);
    conveyor_run_free(run);
    cr_assert_eq(shm_left(getpid()), 0);
    conveyor_pipeline_close(pl);
}

static void on_signal(int sig)
{
    (void)sig;
}

/* The program's handlers stay, and a program that has its children reaped
 * for it (SIGCHLD ignored) still gets the run's status. */
Test(embed, program_signals_untouched, .timeout = 60)
{
    struct sigaction pipe_sa = {.sa_handler = on_signal}, old;
    sigemptyset(&pipe_sa.sa_mask);
    cr_assert_eq(sigaction(SIGPIPE, &pipe_sa, NULL), 0);
    signal(SIGCHLD, SIG_IGN);
    conveyor_pipeline *pl = open_ini(CHAIN);
    conveyor_run *run = start(pl);
    push_text(run, "a");
    cr_assert_str_eq(pull_text(run, NULL), "<A");
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
    cr_assert_eq(sigaction(SIGPIPE, NULL, &old), 0);
    cr_assert_eq(old.sa_handler, on_signal);
    cr_assert_eq(sigaction(SIGCHLD, NULL, &old), 0);
    cr_assert_eq(old.sa_handler, SIG_IGN);
}

/* A large item that can only go out in pieces (pool_size = 0), pushed
 * with a time limit into a full ring: it goes whole or not at all, and
 * what follows it is intact. */
Test(embed, large_item_into_a_full_channel, .timeout = 120)
{
    const char *t = getenv("CONVEYOR_TRANSPORT");
    if (t && strcmp(t, "pipe") == 0) {
        cr_skip_test("a pipe takes an item over PIPE_BUF whole, waiting (conveyor/host.h)");
        return;
    }
    conveyor_pipeline *pl = open_ini("[pipeline]\npool_size = 0\n"
                                     "[s]\nplugin = testplug:slow\nusec = 100000\n");
    conveyor_run *run = start(pl);
    size_t big = 1 << 20, huge = 3 << 20;
    char *data = malloc(huge);
    for (size_t i = 0; i < huge; i++)
        data[i] = (char)('a' + i % 26);
    size_t sizes[64];
    int n = 0, rc;
    while (n < 40 && (rc = conveyor_run_push(run, data, big, 0)) == 0)
        sizes[n++] = big;
    cr_assert_lt(n, 40, "the channel filled up");
    rc = conveyor_run_push(run, data, huge, 10);
    cr_assert(rc == 0 || rc == -EAGAIN, "push: %d", rc);
    if (rc == 0)
        sizes[n++] = huge;
    cr_assert_eq(conveyor_run_push(run, "end", 3, -1), 0);
    sizes[n++] = 3;
    for (int i = 0; i < n; i++) {
        const void *item;
        size_t len;
        cr_assert_eq(conveyor_run_pull(run, &item, &len, NULL, 60000), 0, "output %d", i);
        cr_assert_eq(len, sizes[i], "output %d: %zu bytes, expected %zu", i, len, sizes[i]);
        cr_assert_eq(memcmp(item, len == 3 ? "end" : data, len), 0, "output %d differs", i);
    }
    cr_assert_eq(conveyor_run_finish(run), 0);
    conveyor_run_free(run);
    conveyor_pipeline_close(pl);
    free(data);
}
