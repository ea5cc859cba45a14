/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_failures.c - how the real conveyor-host ends when things go
 * wrong: a stage failing or crashing, a refused init, the error policies,
 * signals to the host (drain, second signal, SIGKILL), a closed output and
 * malformed input.  Each test checks the exit status, the message, that no
 * process of the pipeline outlives the host and that /dev/shm is clean.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_KIDS 32

/* The host a test started with host_start, stopped by the suite's fini
 * when a failed assertion left it running (a drain that never ends). */
static pid_t live_host = -1;

static void start_host(host_run *r, const char *const *args)
{
    host_start(r, args);
    live_host = r->pid;
}

static void pause_ms(long ms);

static void stop_leftover_host(void)
{
    if (live_host <= 0 || waitpid(live_host, NULL, WNOHANG) != 0)
        return;
    /* Twice SIGTERM: stop at once, still removing the segment. */
    kill(live_host, SIGTERM);
    pause_ms(200);
    kill(live_host, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(live_host, NULL, WNOHANG) != 0)
            return;
        pause_ms(10);
    }
    kill(live_host, SIGKILL);
    waitpid(live_host, NULL, 0);
}

TestSuite(failures, .fini = stop_leftover_host);

static char *ini_file(const char *text)
{
    return write_file("p.ini", text);
}

/* OUT (LEN bytes) is a prefix of WHOLE. */
static int is_prefix(const char *out, size_t len, const char *whole)
{
    return len <= strlen(whole) && memcmp(out, whole, len) == 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A process is gone when it does not exist or is a zombie waiting to be
 * reaped by whoever inherited it. */
static int proc_alive(pid_t pid)
{
    char st;
    pid_t pp;
    if (proc_stat(pid, &st, &pp) < 0)
        return 0;
    return st != 'Z' && st != 'X';
}

/* Waits (5 s at most) until HOST has WANT children; returns them. */
static void wait_for_children(pid_t host, size_t want, pid_t *kids)
{
    double deadline = now() + 5;
    size_t n;
    while ((n = children_of(host, kids, MAX_KIDS)) < want && now() < deadline)
        pause_ms(10);
    cr_assert_eq(n, want, "host %d has %zu children, expected %zu", (int)host, n, want);
}

/* Every pid in KIDS is gone (giving them 5 s to die). */
static void assert_all_gone(const pid_t *kids, size_t n)
{
    double deadline = now() + 5;
    for (size_t i = 0; i < n; i++) {
        while (proc_alive(kids[i]) && now() < deadline)
            pause_ms(10);
        cr_assert(!proc_alive(kids[i]), "process %d of the pipeline outlived its host",
                  (int)kids[i]);
    }
}

/* Writes all of TEXT to the host's (non-blocking) standard input.  When
 * READER_MAY_BE_GONE, a closed input (EPIPE: the source stopped reading
 * and exited) ends the writing quietly. */
static void feed_input(host_run *r, const char *text, int reader_may_be_gone)
{
    size_t off = 0, len = strlen(text);
    while (off < len) {
        struct pollfd p = {.fd = r->in_fd, .events = POLLOUT};
        poll(&p, 1, 1000);
        ssize_t n = write(r->in_fd, text + off, len - off);
        if (n < 0 && errno == EPIPE && reader_may_be_gone)
            return;
        cr_assert(n > 0 || errno == EAGAIN, "write to the host: %s", strerror(errno));
        if (n > 0)
            off += (size_t)n;
    }
}

static void feed(host_run *r, const char *text)
{
    feed_input(r, text, 0);
}

/* Lets host_finish collect the rest without closing standard input, which
 * stays open in *KEEP (so the source never sees end of input). */
static void finish_keeping_stdin(host_run *r, int timeout, int *keep)
{
    *keep = r->in_fd;
    r->in_fd = -1;
    host_finish(r, NULL, 0, timeout);
}

static char *numbers(int from, int to)
{
    char *s = malloc((size_t)(to - from + 1) * 12 + 1);
    size_t n = 0;
    s[0] = '\0';
    for (int i = from; i <= to; i++)
        n += (size_t)sprintf(s + n, "%d\n", i);
    return s;
}

/* --- a stage failing an item ------------------------------------------- */

Test(failures, fail_at_item_3_stops_with_exit_1_naming_stage_and_item)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 1K\n[up]\nplugin = text:upper\n"
                 "[picky]\nplugin = testplug:fail\nat = 3\n",
             "a\nb\nc\nd\ne\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: picky: error: failing item 3 as asked: 'C'\n"),
              "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'picky' failed item 3 (process returned -1)"), "stderr: %s",
              r.err);
    cr_assert(strstr(r.err, "the pipeline is stopped: stage 'picky' failed"), "stderr: %s", r.err);
    cr_assert(is_prefix(r.out, r.outlen, "A\nB\n"), "output: %s", r.out);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

static void check_crash(const char *sig, const char *name, const char *desc)
{
    char ini[512], want[256];
    host_run r;
    snprintf(ini, sizeof ini,
             "[pipeline]\nshared_memory = 1K\n[pre]\nplugin = text:identity\n"
             "[boom]\nplugin = testplug:crash\nat = 2\nsignal = %s\n[post]\nplugin = text:identity\n",
             sig);
    run_text(&r, ini, "a\nb\nc\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "conveyor-host: error: stage 'boom' was killed by %s (%s) while processing item 2; "
             "the pipeline is stopped\n", name, desc);
    cr_assert(strstr(r.err, want), "stderr: %s\nwanted: %s", r.err, want);
    cr_assert(is_prefix(r.out, r.outlen, "a\n"), "output: %s", r.out);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(failures, crash_sigsegv_at_item_2)
{
    check_crash("SEGV", "SIGSEGV", "Segmentation fault");
}

/* A stage killed by SIGKILL from outside, while the input reader is
 * blocked writing to it: the kill is the cause, whatever order the host
 * reaps the two in (it once named "the input reader" when the reader's end
 * was reaped first).  Repeated, since the order is the kernel's. */
Test(failures, sigkill_of_a_stage_is_the_cause_whatever_the_reaping_order, .timeout = 120)
{
    char *in = numbers(1, 20000);
    for (int i = 0; i < 20; i++) {
        host_run r;
        run_text(&r, "[pipeline]\n[boom]\nplugin = testplug:crash\nat = 2\nsignal = KILL\n"
                     "[post]\nplugin = text:identity\n", in);
        cr_assert_eq(r.status, 1, "run %d: status %d, stderr: %s", i, r.status, r.err);
        cr_assert(strstr(r.err, "error: stage 'boom' was killed by SIGKILL (Killed) while "
                                "processing item 2; the pipeline is stopped\n"),
                  "run %d: stderr: %s", i, r.err);
        cr_assert_eq(shm_left(r.pid), 0);
        host_run_free(&r);
    }
    free(in);
}

Test(failures, crash_sigabrt_at_item_2)
{
    check_crash("SIGABRT", "SIGABRT", "Aborted");
}

/* --- a plugin that ends its own process ------------------------------------
 * exit() or _exit() from a plugin is a crash of the stage, whatever the
 * status: the host tells it from the process's own end by the flag that end
 * sets, so neither a hang (the ring's consumer waiting for a close that
 * never comes) nor a silent end with exit 0 and items gone. */

static void check_quit(const char *params, const char *want)
{
    char ini[512];
    host_run r;
    snprintf(ini, sizeof ini,
             "[pipeline]\nshared_memory = 1K\n[pre]\nplugin = text:identity\n"
             "[q]\nplugin = testplug:quit\n%s[post]\nplugin = text:identity\n", params);
    run_text(&r, ini, "a\nb\nc\nd\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, want), "stderr: %s\nwanted: %s", r.err, want);
    cr_assert(!strstr(r.err, "failed\n"), "the crash is the cause, nothing else: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(failures, plugin_exit_0_in_process_is_a_crash, .timeout = 20)
{
    check_quit("at = 3\n", "conveyor-host: error: stage 'q' exited with status 0 while processing "
                          "item 3 (a plugin ended the process); the pipeline is stopped\n");
}

Test(failures, plugin__exit_3_in_process_is_a_crash, .timeout = 20)
{
    check_quit("at = 2\nstatus = 3\nhow = _exit\n",
               "conveyor-host: error: stage 'q' exited with status 3 while processing item 2 "
               "(a plugin ended the process); the pipeline is stopped\n");
}

Test(failures, plugin_exit_in_init_is_a_crash, .timeout = 20)
{
    check_quit("in = init\n", "conveyor-host: error: stage 'q' exited with status 0 in init, "
                             "before reading its input (a plugin ended the process); the "
                             "pipeline is stopped\n");
}

Test(failures, plugin_exit_in_fini_is_a_crash, .timeout = 20)
{
    check_quit("in = fini\nstatus = 7\n",
               "conveyor-host: error: stage 'q' exited with status 7 in fini (a plugin ended "
               "the process); the pipeline is stopped\n");
}

/* 14 is the code the output writer ends with when its reader went away
 * (a quiet end): a plugin's exit(14) must not pass for it. */
Test(failures, plugin_exit_with_a_framework_code_is_still_a_crash, .timeout = 20)
{
    check_quit("at = 1\nstatus = 14\n",
               "conveyor-host: error: stage 'q' exited with status 14 while processing item 1 "
               "(a plugin ended the process); the pipeline is stopped\n");
}

Test(failures, initfail_stops_before_any_item)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 1K\n[a]\nplugin = text:identity\n"
                 "[refuser]\nplugin = testplug:initfail\n",
             "a\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: refuser: error: initfail: refusing to start\n"),
              "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'refuser': init failed (returned -1); the pipeline does not start"),
              "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

/* A plugin's own check in init (math:add without value) is an init failure
 * too, with the plugin's explanation. */
Test(failures, missing_required_value_is_refused_before_anything_starts)
{
    host_run r;
    char want[4096];
    run_text(&r, "[pipeline]\n[plus]\nplugin = math:add\n", "1\n");
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want, "conveyor-host: %s/p.ini:2: [plus] math:add requires 'value' (the "
             "number added to every item), and the section does not set it\n", test_dir());
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

/* --- error policies ------------------------------------------------------- */

Test(failures, on_error_skip_drops_failed_items_and_warns_with_count)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 1K\n[root]\nplugin = math:sqrt\non_error = skip\n"
                 "[plus]\nplugin = math:add\nvalue = 0.5\n",
             "4\n-1\n9\nx\n16\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "2.5\n3.5\n4.5\n");
    cr_assert(strstr(r.err, "root: error: no square root of a negative number: '-1'"), "stderr: %s",
                     r.err);
    cr_assert(strstr(r.err, "root: error: not a number: 'x'"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "conveyor-host: root: warning: stage 'root': 2 failed items skipped\n"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(failures, on_error_skip_single_item_is_singular)
{
    host_run r;
    run_text(&r, "[pipeline]\n[f]\nplugin = testplug:fail\nat = 2\non_error = skip\n", "a\nb\nc\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\nc\n");
    cr_assert(strstr(r.err, "stage 'f': 1 failed item skipped\n"), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(failures, on_error_dead_letter_writes_the_failed_item_framed)
{
    host_run r;
    char *dead = malloc(strlen(test_dir()) + 32);
    sprintf(dead, "%s/dead.txt", test_dir());

    run_text(&r, "[pipeline]\n[f]\nplugin = testplug:fail\nat = 2\non_error = dead-letter:dead.txt\n"
                 "[up]\nplugin = text:upper\n",
             "a\nb\nc\nd\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "A\nC\nD\n");
    char *got = read_file(dead, NULL);
    cr_assert_not_null(got, "no dead-letter file %s", dead);
    cr_assert_str_eq(got, "b\n");
    free(got);
    cr_assert(strstr(r.err, "stage 'f': 1 failed item written to '"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "dead.txt'"), "stderr: %s", r.err);
    host_run_free(&r);
    free(dead);
}

Test(failures, dead_letter_uses_the_pipeline_framing)
{
    static const unsigned char in[] = {1, 0, 0, 0, 'a', 3, 0, 0, 0, 'b', '\n', 'x',
                                       0, 0, 0, 0};
    static const unsigned char want_dead[] = {3, 0, 0, 0, 'b', '\n', 'x'};
    static const unsigned char want_out[] = {1, 0, 0, 0, 'a', 0, 0, 0, 0};
    host_run r;
    char *dead = malloc(strlen(test_dir()) + 32);
    sprintf(dead, "%s/dead.bin", test_dir());

    run_bytes(&r, "[pipeline]\nframing = length32\n"
                  "[f]\nplugin = testplug:fail\nat = 2\non_error = dead-letter:dead.bin\n",
              in, sizeof in);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_eq(r.outlen, sizeof want_out);
    cr_assert(memcmp(r.out, want_out, sizeof want_out) == 0);
    size_t len;
    char *got = read_file(dead, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, sizeof want_dead);
    cr_assert(memcmp(got, want_dead, len) == 0);
    free(got);
    host_run_free(&r);
    free(dead);
}

/* An emitted item larger than max_item fails the item that caused it. */
Test(failures, emit_larger_than_max_item_fails_the_item)
{
    host_run r;
    run_text(&r, "[pipeline]\nmax_item = 1K\n[big]\nplugin = testplug:big\nbytes = 2K\n", "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "big: error: cannot emit the result for 'a': Message too long"),
              "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'big' failed item 1"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);
}

/* --- nothing outlives a failure -------------------------------------------- */

/* The slow stage sleeps 30 s on the first item while the failing stage
 * fails the second: the host must kill it rather than wait. */
Test(failures, no_process_left_after_a_failure, .timeout = 20)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[f]\nplugin = testplug:fail\nat = 2\n"
                         "[s]\nplugin = testplug:slow\nusec = 30000000\n");
    const char *args[] = {"-c", ini, NULL};

    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);   /* source, f, s, sink */
    host_finish(&r, "a\nb\nc\n", 6, 10);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'f' failed item 2"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    assert_all_gone(kids, 4);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

Test(failures, no_process_left_after_a_crash, .timeout = 20)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[c]\nplugin = testplug:crash\nat = 2\n"
                         "[s]\nplugin = testplug:slow\nusec = 30000000\n[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};

    start_host(&r, args);
    wait_for_children(r.pid, 5, kids);
    host_finish(&r, "a\nb\nc\n", 6, 10);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'c' was killed by SIGSEGV"), "stderr: %s", r.err);
    assert_all_gone(kids, 5);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

/* --- signals to the host -------------------------------------------------- */

/* Sends SIG to a host running slow -> bookends with standard input open,
 * once an item has come out; it must drain: the items read so far, in
 * order, once each, then fini's "fini". */
static void check_drain(int sig, int want_status)
{
    enum { N = 30 };
    host_run r;
    pid_t kids[MAX_KIDS];
    char *before = NULL;
    size_t blen = 0;
    int keep;
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[s]\nplugin = testplug:slow\nusec = 20000\n"
                         "[b]\nplugin = testplug:bookends\n");
    const char *args[] = {"-v", "-c", ini, NULL};
    char *in = numbers(1, N);
    char *errbuf = NULL;
    size_t elen = 0;

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, in);
    read_until(r.out_fd, &before, &blen, "init\n1\n");
    cr_assert_eq(kill(r.pid, sig), 0);
    /* Once the host says it is draining, input sent now is not read. */
    read_until(r.err_fd, &errbuf, &elen, "finishing the items in flight");
    pause_ms(100);
    feed_input(&r, "late\nlate\n", 1);
    finish_keeping_stdin(&r, 10, &keep);

    cr_assert_eq(r.status, want_status, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    size_t total = blen + r.outlen;
    char *out = malloc(total + 1);
    memcpy(out, before, blen);
    memcpy(out + blen, r.out, r.outlen);
    out[total] = '\0';

    /* "init\n" + "1\n".."k\n" + "fini\n" with 1 <= k <= N */
    cr_assert(strncmp(out, "init\n", 5) == 0, "output: %s", out);
    cr_assert(total >= 10 && strcmp(out + total - 5, "fini\n") == 0,
              "fini did not run; output: %s", out);
    const char *p = out + 5;
    int k = 0;
    while (p < out + total - 5) {
        char *end;
        long v = strtol(p, &end, 10);
        cr_assert(end > p && *end == '\n', "bad item at '%s' in output: %s", p, out);
        cr_assert_eq(v, k + 1, "item %ld after %d: duplicated or out of order; output: %s", v, k,
                     out);
        k++;
        p = end + 1;
    }
    cr_assert(k >= 1 && k <= N, "k = %d", k);
    cr_assert_null(strstr(out, "late"), "input sent after the signal was read: %s", out);
    assert_all_gone(kids, 4);
    cr_assert_eq(shm_left(r.pid), 0);
    close(keep);
    free(out);
    free(before);
    free(errbuf);
    free(in);
    free(ini);
    host_run_free(&r);
}

Test(failures, sigterm_drains_and_exits_143, .timeout = 25)
{
    check_drain(SIGTERM, 143);
}

Test(failures, sigint_drains_and_exits_130, .timeout = 25)
{
    check_drain(SIGINT, 130);
}

Test(failures, sighup_drains_and_exits_129, .timeout = 25)
{
    check_drain(SIGHUP, 129);
}

/* The count stage's fini still runs after a signal: its total comes out. */
Test(failures, sigterm_runs_count_fini, .timeout = 25)
{
    enum { N = 20 };
    host_run r;
    int keep;
    char *errbuf = NULL;
    size_t elen = 0;
    char *ini = ini_file("[pipeline]\n[s]\nplugin = testplug:slow\nusec = 20000\n"
                         "[c]\nplugin = testplug:count\n");
    const char *args[] = {"-v", "-c", ini, NULL};
    char *in = numbers(1, N);
    pid_t kids[MAX_KIDS];

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, in);
    pause_ms(100);
    kill(r.pid, SIGTERM);
    read_until(r.err_fd, &errbuf, &elen, "received SIGTERM");
    finish_keeping_stdin(&r, 10, &keep);
    cr_assert_eq(r.status, 143, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    int n = -1;
    char tail;
    cr_assert(sscanf(r.out, "count=%d%c", &n, &tail) == 2 && tail == '\n', "output: %s", r.out);
    cr_assert(n >= 0 && n <= N, "count=%d", n);
    char want[32];
    snprintf(want, sizeof want, "count=%d\n", n);
    cr_assert_str_eq(r.out, want);
    assert_all_gone(kids, 4);
    close(keep);
    free(errbuf);
    free(in);
    free(ini);
    host_run_free(&r);
}

/* A drain has a deadline: a stage stuck in one item does not hold the
 * pipeline forever.  The drain says at the default verbosity how many items
 * are in flight, the timeout how many it drops. */
Test(failures, drain_timeout_stops_a_stuck_stage, .timeout = 25)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *errbuf = NULL;
    size_t elen = 0;
    int keep;
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\ndrain_timeout = 500ms\n"
                         "[s]\nplugin = testplug:slow\nusec = 60000000\n"
                         "[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, "1\n2\n3\n");
    pause_ms(200);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    read_until(r.err_fd, &errbuf, &elen, "received SIGTERM: finishing the items in flight (");
    finish_keeping_stdin(&r, 10, &keep);
    cr_assert_eq(r.status, 143, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    host_err_put_back(&r, errbuf, "received SIGTERM: finishing the items in flight (");
    cr_assert(strstr(r.err, "error: the drain took longer than drain_timeout (500 ms): stopping "
                            "now; "), "stderr: %s%s", errbuf, r.err);
    cr_assert(strstr(r.err, " items in flight are dropped\n"), "stderr: %s", r.err);
    cr_assert_null(strstr(r.err, "killed by"), "a stopped stage reported as a crash: %s", r.err);
    cr_assert_str_eq(r.out, "");
    assert_all_gone(kids, 4);
    cr_assert_eq(shm_left(r.pid), 0);
    close(keep);
    free(errbuf);
    free(ini);
    host_run_free(&r);
}

/* A process a plugin leaves behind (fork without exec) keeps whatever it
 * inherited, a pipe channel's write end among them: it is killed when its
 * stage ends, so the run ends at once, and it does not outlive the run. */
Test(failures, process_left_behind_by_a_plugin_is_killed, .timeout = 30)
{
    host_run r;
    run_text(&r, "[pipeline]\n[s]\nplugin = testplug:spawn\n[t]\nplugin = text:identity\n",
             "1\n2\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "1\n2\n");
    const char *at = strstr(r.err, "spawned ");
    cr_assert_not_null(at, "stderr: %s", r.err);
    pid_t stray = (pid_t)strtol(at + strlen("spawned "), NULL, 10);
    cr_assert_gt(stray, 0);
    cr_assert(kill(stray, 0) < 0 && errno == ESRCH, "process %ld outlived the run", (long)stray);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

/* A SIGTERM at any moment of the start, before the children have their
 * handlers, is still a drain: 143, nothing left behind. */
Test(failures, sigterm_right_after_start_exits_143, .timeout = 60)
{
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[a]\nplugin = text:identity\n"
                         "[b]\nplugin = text:identity\n[c]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    for (int i = 0; i < 20; i++) {
        host_run r;
        int keep;
        start_host(&r, args);
        pause_ms(i % 10 * 3);
        kill(r.pid, SIGTERM);
        finish_keeping_stdin(&r, 10, &keep);
        cr_assert_eq(r.status, 143, "run %d: status %d, stderr: %s", i, r.status, r.err);
        cr_assert_eq(shm_left(r.pid), 0, "run %d", i);
        close(keep);
        host_run_free(&r);
    }
    free(ini);
}

/* SIGTERM while a large segment is being created and filled: nothing is
 * started and the segment goes with the host. */
Test(failures, sigterm_during_segment_creation_leaves_nothing, .timeout = 60)
{
    char *ini = ini_file("[pipeline]\nshared_memory = 256M\n[a]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    for (int i = 0; i < 8; i++) {
        host_run r;
        int keep;
        start_host(&r, args);
        pause_ms(5 + 5 * i);
        kill(r.pid, SIGTERM);
        finish_keeping_stdin(&r, 20, &keep);
        cr_assert_eq(r.status, 143, "run %d: status %d, stderr: %s", i, r.status, r.err);
        cr_assert_eq(shm_left(r.pid), 0, "run %d left its segment", i);
        close(keep);
        host_run_free(&r);
    }
    free(ini);
}

/* Signals whose default would kill the host: it stops the children,
 * removes the segment, then dies of the same signal. */
static void check_fatal(int sig, const char *name)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *errbuf = NULL;
    size_t elen = 0;
    int keep;
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[s]\nplugin = testplug:slow\n"
                         "usec = 20000000\n[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    struct rlimit nocore = {0, 0};

    setrlimit(RLIMIT_CORE, &nocore);    /* SIGQUIT dumps core by default */
    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, "1\n2\n");
    pause_ms(100);
    cr_assert_eq(kill(r.pid, sig), 0);
    char want[128];
    snprintf(want, sizeof want, "received %s: stopping the pipeline and removing what it created",
             name);
    read_until(r.err_fd, &errbuf, &elen, want);
    finish_keeping_stdin(&r, 10, &keep);
    cr_assert_eq(r.status, 128 + sig, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    assert_all_gone(kids, 4);
    cr_assert_eq(shm_left(r.pid), 0);
    close(keep);
    free(errbuf);
    free(ini);
    host_run_free(&r);
}

Test(failures, sigquit_cleans_up_then_dies_of_it, .timeout = 25)
{
    check_fatal(SIGQUIT, "SIGQUIT");
}

Test(failures, sigusr2_cleans_up_then_dies_of_it, .timeout = 25)
{
    check_fatal(SIGUSR2, "SIGUSR2");
}

Test(failures, sigalrm_cleans_up_then_dies_of_it, .timeout = 25)
{
    check_fatal(SIGALRM, "SIGALRM");
}

Test(failures, sigxcpu_cleans_up_then_dies_of_it, .timeout = 25)
{
    check_fatal(SIGXCPU, "SIGXCPU");
}

Test(failures, sigxfsz_cleans_up_then_dies_of_it, .timeout = 25)
{
    check_fatal(SIGXFSZ, "SIGXFSZ");
}

/* SIGUSR1 (the dd convention): a snapshot on stderr, and the pipeline goes
 * on: the output is all of the input, exit 0.  SIGPIPE is ignored. */
Test(failures, sigusr1_snapshot_and_sigpipe_do_not_stop_the_run, .timeout = 25)
{
    enum { N = 40 };
    host_run r;
    pid_t kids[MAX_KIDS];
    char *before = NULL, *errbuf = NULL;
    size_t blen = 0, elen = 0;
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[s]\nplugin = testplug:slow\n"
                         "usec = 10000\n[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    char *in = numbers(1, N);

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, in);
    read_until(r.out_fd, &before, &blen, "1\n");
    cr_assert_eq(kill(r.pid, SIGUSR1), 0);
    read_until(r.err_fd, &errbuf, &elen, "s: ");
    cr_assert_eq(kill(r.pid, SIGPIPE), 0);
    host_finish(&r, NULL, 0, 10);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    cr_assert(strstr(errbuf, "conveyor-host: snapshot at "), "stderr: %s", errbuf);
    cr_assert(strstr(errbuf, " items read, "), "stderr: %s", errbuf);
    size_t total = blen + r.outlen;
    char *out = malloc(total + 1);
    memcpy(out, before, blen);
    memcpy(out + blen, r.out, r.outlen);
    out[total] = '\0';
    cr_assert_str_eq(out, in);
    cr_assert_eq(shm_left(r.pid), 0);
    free(out);
    free(before);
    free(errbuf);
    free(in);
    free(ini);
    host_run_free(&r);
}

/* A host whose stderr is a pipe nobody reads any more: writing its own
 * error must not kill it (SIGPIPE) and leave the segment behind. */
Test(failures, broken_stderr_does_not_kill_the_host, .timeout = 20)
{
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[f]\nplugin = testplug:fail\nat = 1\n");
    int errp[2], inp[2];
    cr_assert_eq(pipe(errp), 0);
    cr_assert_eq(pipe(inp), 0);
    close(errp[0]);             /* broken before the host writes anything */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(inp[0], STDIN_FILENO);
        dup2(errp[1], STDERR_FILENO);
        close(inp[1]);
        signal(SIGPIPE, SIG_DFL);
        execl(env_or("CONVEYOR_HOST", "conveyor-host"), "conveyor-host", "-c", ini, (char *)NULL);
        _exit(127);
    }
    close(errp[1]);
    close(inp[0]);
    cr_assert_eq(write(inp[1], "a\nb\n", 4), 4);
    close(inp[1]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the host was killed by signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 1);
    cr_assert_eq(shm_left(pid), 0);
    free(ini);
}

/* A second signal stops at once: the stage asleep for 20 s per item is
 * killed, fini does not run, everything is still cleaned up. */
Test(failures, second_sigterm_stops_at_once, .timeout = 25)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *errbuf = NULL;
    size_t elen = 0;
    int keep;
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[b]\nplugin = testplug:bookends\n"
                         "[s]\nplugin = testplug:slow\nusec = 20000000\n");
    const char *args[] = {"-v", "-c", ini, NULL};

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, "1\n2\n3\n");
    pause_ms(100);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    read_until(r.err_fd, &errbuf, &elen, "received SIGTERM");
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    finish_keeping_stdin(&r, 8, &keep);
    cr_assert_eq(r.status, 143, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    cr_assert_null(strstr(r.out, "fini"), "output: %s", r.out);
    cr_assert_null(strstr(r.err, "killed by"), "a stopped stage reported as a crash: %s", r.err);
    cr_assert(strstr(r.err, "received SIGTERM again: stopping now; "), "stderr: %s%s", errbuf,
              r.err);
    cr_assert(strstr(r.err, " items in flight are dropped"), "stderr: %s%s", errbuf, r.err);
    assert_all_gone(kids, 4);
    cr_assert_eq(shm_left(r.pid), 0);
    close(keep);
    free(errbuf);
    free(ini);
    host_run_free(&r);
}

/* Starts a pipeline with a segment, SIGKILLs its host mid-run and checks
 * that the children die with it (PR_SET_PDEATHSIG) while the segment
 * stays.  Returns the dead host's pid. */
static pid_t sigkill_a_host(void)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *ini = ini_file("[pipeline]\nshared_memory = 4K\n[s]\nplugin = testplug:slow\n"
                         "usec = 20000000\n[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    int st;

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    wait_for_children(r.pid, 4, kids);
    feed(&r, "a\n");
    cr_assert_eq(kill(r.pid, SIGKILL), 0);
    /* Not reaped yet, the host's pid still exists, so no sweep by a
     * concurrent run can take the segment: it must be there. */
    while (proc_alive(r.pid))
        pause_ms(5);
    /* Its segment and its metrics. */
    cr_assert_eq(shm_left(r.pid), 2, "the SIGKILLed host's segment is not in /dev/shm");
    cr_assert_eq(waitpid(r.pid, &st, 0), r.pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_all_gone(kids, 4);
    close(r.in_fd);
    close(r.out_fd);
    close(r.err_fd);
    free(ini);
    return r.pid;
}

/* A live host in another pid namespace (a container sharing /dev/shm): its
 * pid means nothing here -- no process of that number exists in this
 * namespace -- but it holds its segment's lock, so neither --cleanup nor
 * another run's sweep may remove the segment. */
Test(failures, live_host_in_another_pid_namespace_keeps_its_segment, .timeout = 60)
{
    if (geteuid() != 0 || system("unshare --pid --fork --mount-proc true 2>/dev/null") != 0)
        cr_skip_test("needs root and unshare(1) with pid namespaces");
    long pid_max = 32768;
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    if (f) {
        if (fscanf(f, "%ld", &pid_max) != 1)
            pid_max = 32768;
        fclose(f);
    }
    /* A number no process has here, for the host over there. */
    pid_t want = 0;
    for (pid_t c = (pid_t)(pid_max - 100); c > pid_max / 2 && !want; c -= 13)
        if (kill(c, 0) < 0 && errno == ESRCH)
            want = c;
    cr_assert(want > 0, "no free pid found below %ld", pid_max);
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[a]\nplugin = text:identity\n");
    char script[8192];
    /* The shell is pid 1 there; the host it forks gets the number after
     * ns_last_pid. */
    snprintf(script, sizeof script,
             "echo %ld > /proc/sys/kernel/ns_last_pid && \"%s\" -q -c \"%s\" >/dev/null",
             (long)want - 1, host_binary(), ini);
    int in[2];
    cr_assert_eq(pipe(in), 0);
    pid_t outer = fork();
    cr_assert_geq(outer, 0);
    if (outer == 0) {
        dup2(in[0], STDIN_FILENO);
        close(in[0]);
        close(in[1]);
        execlp("unshare", "unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script,
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    /* Its segment and its metrics. */
    for (int i = 0; i < 500 && shm_left(want) < 2; i++)
        pause_ms(20);
    cr_assert_eq(shm_left(want), 2, "the host in the other namespace made no segment");
    cr_assert(kill(want, 0) < 0 && errno == ESRCH, "pid %ld exists here too", (long)want);

    host_run r;
    const char *args[] = {"--cleanup", NULL};
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_eq(shm_left(want), 2, "--cleanup removed a live host's segment: %s", r.out);
    host_run_free(&r);

    /* Its end of input ends it, and it removes its segment itself. */
    close(in[1]);
    int status;
    cr_assert_eq(waitpid(outer, &status, 0), outer);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert_eq(shm_left(want), 0);
    free(ini);
}

/* A file of another user under our prefix is not ours to judge: the sweep
 * leaves it alone, and says nothing about it. */
Test(failures, another_users_file_is_skipped_silently, .timeout = 20)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to make a file of another user");
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/conveyor.%ld.planted", (long)999999999);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchown(fd, 65534, 65534), 0);
    close(fd);
    host_run r;
    const char *args[] = {"-v", "--cleanup", NULL};
    host_run_args(&r, NULL, 0, args);
    int kept = access(path, F_OK) == 0;
    unlink(path);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert(kept, "the sweep removed another user's file");
    cr_assert_null(strstr(r.err, "planted"), "stderr: %s", r.err);
}

/* SIGKILL cannot be caught: the children die with the host, the segment
 * stays, and --cleanup removes it.  Every run sweeps stale segments too, so
 * this test runs alone, after all the others (tests/serial.sh), where no
 * concurrent run can take the segment first. */
Test(failures, sigkill_leaves_segment_for_cleanup, .timeout = 60)
{
    char want[96];
    int removed_by_cleanup = 0;

    if (!getenv("CONVEYOR_SERIAL"))
        cr_skip_test("runs alone, from tests/serial.sh");
    for (int attempt = 0; attempt < 1 && !removed_by_cleanup; attempt++) {
        pid_t dead = sigkill_a_host();
        host_run c;
        const char *cargs[] = {"-v", "--cleanup", NULL};
        host_run_args(&c, NULL, 0, cargs);
        cr_assert_eq(c.status, 0, "status %d, stderr: %s", c.status, c.err);
        int n = -1;
        char tail[64] = "";
        cr_assert(sscanf(c.out, "removed %d stale shared-memory segment%63[^\n]", &n, tail) >= 1 &&
                      n >= 0,
                  "output: %s", c.out);
        cr_assert_str_eq(tail, n == 1 ? "" : "s", "output: %s", c.out);
        snprintf(want, sizeof want, "removed stale shared-memory segment /conveyor.%d.", (int)dead);
        removed_by_cleanup = strstr(c.err, want) != NULL;
        if (removed_by_cleanup)
            cr_assert(n >= 1, "output: %s, stderr: %s", c.out, c.err);
        cr_assert_eq(shm_left(dead), 0, "--cleanup left the dead host's segment");
        cr_assert_eq(shm_left(c.pid), 0);
        host_run_free(&c);
    }
    cr_assert(removed_by_cleanup, "--cleanup did not remove the dead host's segment");
}

/* --- the output closing early -------------------------------------------- */

/* ERR says nothing but the summary of a run whose output's reader went
 * away: no error, no warning. */
static void assert_only_closed_output_summary(const char *err)
{
    char *msgs = messages_of(err);
    cr_assert_str_eq(msgs, "", "stderr: %s", err);
    free(msgs);
    const char *head = "conveyor-host: the output was closed after ";
    cr_assert(strncmp(err, head, strlen(head)) == 0, "stderr: %s", err);
    cr_assert(strstr(err, " in flight"), "stderr: %s", err);
}

/* `conveyor-host ... | head -n 1`: the reader goes away; the host ends
 * quietly with 0, like any filter in a shell pipeline, with its summary. */
Test(failures, output_to_closed_pipe_exits_0_quietly, .timeout = 20)
{
    enum { N = 200000 };
    char *in = numbers(1, N);
    free(write_file("in.txt", in));
    char *ini = ini_file("[pipeline]\nshared_memory = 1K\n[u]\nplugin = text:prefix\ntext = n\n");
    const char *dir = test_dir();
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { '%s' -c '%s' < in.txt 2> err.txt & echo $! > pid.txt; wait $!; "
             "echo $? > rc.txt; } | head -n 1 > out.txt",
             dir, env_or("CONVEYOR_HOST", "conveyor-host"), ini);
    cr_assert_eq(system(cmd), 0, "%s", cmd);

    char path[4200];
    snprintf(path, sizeof path, "%s/rc.txt", dir);
    char *rc = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/err.txt", dir);
    char *err = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    char *out = read_file(path, NULL);
    snprintf(path, sizeof path, "%s/pid.txt", dir);
    char *pid = read_file(path, NULL);
    cr_assert(rc && err && out && pid);
    cr_assert_str_eq(rc, "0\n", "exit status %s, stderr: %s", rc, err);
    assert_only_closed_output_summary(err);
    cr_assert_str_eq(out, "n1\n");
    cr_assert_eq(shm_left((pid_t)atoi(pid)), 0);
    free(rc);
    free(err);
    free(out);
    free(pid);
    free(ini);
    free(in);
}

/* The same with the harness: read one item, close the read end. */
Test(failures, output_reader_closing_early_is_not_an_error, .timeout = 20)
{
    enum { N = 200000 };
    char *in = numbers(1, N);
    free(write_file("in.txt", in));
    char *ini = ini_file("[pipeline]\ninput = in.txt\nshared_memory = 1K\n"
                         "[u]\nplugin = text:upper\n[t]\nplugin = testplug:twice\n");
    const char *args[] = {"-c", ini, NULL};
    host_run r;
    char *got = NULL;
    size_t glen = 0;

    signal(SIGPIPE, SIG_IGN);
    start_host(&r, args);
    read_until(r.out_fd, &got, &glen, "\n");
    cr_assert(strncmp(got, "1\n", 2) == 0, "output: %s", got);
    close(r.out_fd);
    r.out_fd = -1;
    host_finish(&r, NULL, 0, 10);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    assert_only_closed_output_summary(r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(got);
    free(ini);
    free(in);
}

/* --- malformed input ---------------------------------------------------- */

Test(failures, length32_frame_larger_than_max_item)
{
    unsigned char in[4 + 2 + 4 + 2000];
    size_t n = 0;
    memcpy(in, "\x02\0\0\0ok", 6);
    n = 6;
    in[n++] = 2000 & 0xff;
    in[n++] = 2000 >> 8;
    in[n++] = 0;
    in[n++] = 0;
    memset(in + n, 'z', 2000);
    n += 2000;
    host_run r;
    run_bytes(&r, "[pipeline]\nframing = length32\nmax_item = 1K\nshared_memory = 1K\n"
                  "[a]\nplugin = text:identity\n",
              in, n);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "input item 2 is larger than max_item (1024 bytes)"), "stderr: %s",
              r.err);
    cr_assert(strstr(r.err, "the input reader"), "stderr: %s", r.err);
    cr_assert(r.outlen == 0 || (r.outlen == 6 && memcmp(r.out, in, 6) == 0),
              "output has %zu bytes", r.outlen);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(failures, line_longer_than_max_item)
{
    host_run r;
    run_text(&r, "[pipeline]\nmax_item = 8\n[a]\nplugin = text:identity\n",
             "short\nthis line is too long\nok\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "input item 2 is larger than max_item (8 bytes)"), "stderr: %s", r.err);
    cr_assert(is_prefix(r.out, r.outlen, "short\n"), "output: %s", r.out);
    cr_assert_null(strstr(r.out, "ok"));
    host_run_free(&r);
}

Test(failures, truncated_length32_frame)
{
    static const unsigned char in[] = {2, 0, 0, 0, 'o', 'k', 10, 0, 0, 0, 'a', 'b', 'c'};
    host_run r;
    run_bytes(&r, "[pipeline]\nframing = length32\nshared_memory = 1K\n[a]\nplugin = text:identity\n",
              in, sizeof in);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "the input ends inside item 2 (a truncated length32 frame)"),
              "stderr: %s", r.err);
    cr_assert(r.outlen == 0 || (r.outlen == 6 && memcmp(r.out, in, 6) == 0),
              "output has %zu bytes", r.outlen);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);

    /* A header cut short is a truncated frame too. */
    run_bytes(&r, "[pipeline]\nframing = length32\n[a]\nplugin = text:identity\n", in, 8);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "the input ends inside item 2"), "stderr: %s", r.err);
    host_run_free(&r);
}

/* An input that is always readable (a file) never makes the source wait,
 * so the stop request must be seen without a wait: SIGTERM stops the
 * reading, and what came out is a prefix of the input. */
Test(failures, sigterm_stops_reading_a_file_input, .timeout = 60)
{
    char *in = numbers(1, 1000000);
    char *input = write_file("in.txt", in);
    char ini_text[8192];
    snprintf(ini_text, sizeof ini_text,
             "[pipeline]\ninput = %s\n[slow]\nplugin = testplug:busy\nusec = 5\n", input);
    char *ini = write_file("p.ini", ini_text);
    const char *args[] = {"-c", ini, NULL};
    host_run r;
    char *before = NULL;
    size_t blen = 0;
    host_start(&r, args);
    read_until(r.out_fd, &before, &blen, "1\n2\n");   /* it is running */
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    host_finish(&r, NULL, 0, 50);
    cr_assert_eq(r.status, 143, "status %d, stderr: %s", r.status, r.err);
    size_t total = blen + r.outlen;
    char *out = malloc(total + 1);
    memcpy(out, before, blen);
    memcpy(out + blen, r.out, r.outlen);
    cr_assert_lt(total, strlen(in) / 2,
                 "%zu of %zu bytes came out: the source went on reading the file", total,
                 strlen(in));
    cr_assert(memcmp(out, in, total) == 0 && out[total - 1] == '\n',
              "the output is not a prefix of the input");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(out);
    free(before);
    free(ini);
    free(input);
    free(in);
}
