/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_observe.c - what the real conveyor-host tells the people who
 * watch it: the summary that ends every run (complete, failed, crashed,
 * drained, stopped by a second signal or by drain_timeout; none with -q),
 * the names its processes show in ps and top, and its debug messages and
 * --log-time.  Durations and rates depend on the machine: the summaries are
 * compared with those two numbers written T and R (summary_masked).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MAX_KIDS 32

/* The host a test started, stopped by the suite's fini when a failed
 * assertion left it running. */
static pid_t live_host = -1;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void stop_leftover_host(void)
{
    if (live_host <= 0 || waitpid(live_host, NULL, WNOHANG) != 0)
        return;
    kill(live_host, SIGKILL);
    waitpid(live_host, NULL, 0);
}

TestSuite(observe, .fini = stop_leftover_host);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs INI (written to p.ini) on IN with the options OPTS (NULL-terminated,
 * at most 4) before -c. */
static void run_with(host_run *r, const char *ini, const char *in, const char *const *opts)
{
    char *path = write_file("p.ini", ini);
    const char *args[8];
    size_t n = 0;
    for (; opts && opts[n] && n < 4; n++)
        args[n] = opts[n];
    args[n++] = "-c";
    args[n++] = path;
    args[n] = NULL;
    host_run_args(r, in, in ? strlen(in) : 0, args);
    free(path);
}

static void start_host(host_run *r, const char *ini, const char *opt)
{
    char *path = write_file("p.ini", ini);
    const char *args[] = {opt ? opt : "-c", opt ? "-c" : path, opt ? path : NULL, NULL};
    signal(SIGPIPE, SIG_IGN);
    host_start(r, args);
    live_host = r->pid;
    free(path);
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

/* Writes all of TEXT to the host's (non-blocking) standard input. */
static void feed(host_run *r, const char *text)
{
    size_t off = 0, len = strlen(text);
    while (off < len) {
        struct pollfd p = {.fd = r->in_fd, .events = POLLOUT};
        poll(&p, 1, 1000);
        ssize_t n = write(r->in_fd, text + off, len - off);
        cr_assert(n > 0 || errno == EAGAIN, "write to the host: %s", strerror(errno));
        if (n > 0)
            off += (size_t)n;
    }
}

/* Collects the rest of the run with standard input left open (in *KEEP),
 * so that the source never sees the end of its input. */
static void finish_keeping_stdin(host_run *r, int timeout, int *keep)
{
    *keep = r->in_fd;
    r->in_fd = -1;
    host_finish(r, NULL, 0, timeout);
}

/* Standard error is exactly MESSAGES then the summary WANT (masked); the
 * run left nothing in /dev/shm. */
static void assert_err(const host_run *r, const char *messages, const char *want)
{
    char *msgs = messages_of(r->err), *sum = summary_masked(r->err);
    cr_assert_str_eq(msgs, messages, "stderr: %s", r->err);
    cr_assert_str_eq(sum, want, "stderr: %s", r->err);
    cr_assert_eq(shm_left(r->pid), 0);
    free(msgs);
    free(sum);
}

/* --- the summary ----------------------------------------------------------- */

Test(observe, summary_ends_a_complete_run_with_a_line_per_stage)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 1K\n[up]\nplugin = text:upper\n"
                 "[f]\nplugin = testplug:fail\nat = 2\non_error = skip\n",
             "a\nb\nc\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "A\nC\n");
    assert_err(&r,
               "conveyor-host: f: error: failing item 2 as asked: 'B'\n"
               "conveyor-host: f: warning: stage 'f': 1 failed item skipped\n",
               "conveyor-host: done in T s: 3 items read, 2 written, R items/s\n"
               "conveyor-host:   up: 3 in, 3 out, 0 failed, 0 restarts\n"
               "conveyor-host:   f: 3 in, 2 out, 1 failed, 0 restarts\n");
    host_run_free(&r);
}

/* The duration and the rate are numbers: "done in 0.012 s", "250 items/s". */
Test(observe, summary_duration_and_rate_are_numbers)
{
    host_run r;
    run_text(&r, "[pipeline]\n[s]\nplugin = text:identity\n", "1\n2\n3\n4\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    double secs = -1, rate = -1;
    int n = -1;
    cr_assert(sscanf(r.err, "conveyor-host: done in %lf s: 4 items read, 4 written, %lf items/s\n%n",
                     &secs, &rate, &n) == 2 && n > 0, "stderr: %s", r.err);
    cr_assert(secs > 0 && rate > 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.err + n, "conveyor-host:   s: 4 in, 4 out, 0 failed, 0 restarts\n");
    host_run_free(&r);
}

/* -q: errors only, so no summary after a complete run or a failure. */
Test(observe, quiet_runs_have_no_summary)
{
    host_run r;
    const char *q[] = {"-q", NULL};
    run_with(&r, "[pipeline]\n[s]\nplugin = text:identity\n", "1\n2\n", q);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, "");
    host_run_free(&r);

    run_with(&r, "[pipeline]\n[f]\nplugin = testplug:fail\nat = 1\n", "a\n", q);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, "conveyor-host: f: error: failing item 1 as asked: 'a'\n"
                            "conveyor-host: f: error: stage 'f' failed item 1 (process returned -1)\n"
                            "conveyor-host: error: the pipeline is stopped: stage 'f' failed\n");
    host_run_free(&r);
}

/* A failing item stops the run: the summary says so, counts it as failed,
 * and says what was in flight.  The stage ended on its own, so its counts
 * are exact. */
Test(observe, summary_after_a_failure)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 1K\n[f]\nplugin = testplug:fail\nat = 1\n", "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err(&r,
               "conveyor-host: f: error: failing item 1 as asked: 'a'\n"
               "conveyor-host: f: error: stage 'f' failed item 1 (process returned -1)\n"
               "conveyor-host: error: the pipeline is stopped: stage 'f' failed\n",
               "conveyor-host: failed after T s: 1 item read, 0 written, R items/s\n"
               "conveyor-host:   f: 1 in, 0 out, 1 failed, 0 restarts\n"
               "conveyor-host: no items were in flight\n");
    host_run_free(&r);
}

/* A crashed stage is marked killed: its counts stop at its last wait. */
Test(observe, summary_after_a_crash_marks_the_killed_stage)
{
    host_run r;
    run_text(&r, "[pipeline]\n[pre]\nplugin = text:identity\n"
                 "[boom]\nplugin = testplug:crash\nat = 2\n[post]\nplugin = text:identity\n",
             "a\nb\nc\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    char *msgs = messages_of(r.err), *sum = summary_masked(r.err);
    cr_assert_str_eq(msgs, "conveyor-host: error: stage 'boom' was killed by SIGSEGV "
                           "(Segmentation fault) while processing item 2; the pipeline is "
                           "stopped\n", "stderr: %s", r.err);
    cr_assert(strncmp(sum, "conveyor-host: failed after T s: ", 33) == 0, "stderr: %s", r.err);
    const char *boom = strstr(sum, "\nconveyor-host:   boom: ");
    cr_assert_not_null(boom, "stderr: %s", r.err);
    cr_assert(strncmp(strchr(boom + 1, '\n') - 9, " (killed)", 9) == 0, "stderr: %s", r.err);
    cr_assert(strstr(sum, " in flight"), "stderr: %s", r.err);
    free(msgs);
    free(sum);
    host_run_free(&r);
}

/* Restarts are counted per process; the restarted stage finished the run,
 * so nothing is marked killed. */
Test(observe, summary_counts_restarts_per_process)
{
    host_run r;
    run_text(&r, "[pipeline]\ntransport = ring\n[a]\nplugin = testplug:crash\nat = 2\n"
                 "restart = on-failure\n[b]\nplugin = text:upper\n",
             "x\ny\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "X\nY\n");
    assert_err(&r,
               "conveyor-host: warning: stage 'a' was killed by SIGSEGV while processing item 2; "
               "restarting it (1 of 5 in a row)\n"
               "conveyor-host: warning: 1 stage restart during the run\n",
               "conveyor-host: done in T s: 2 items read, 2 written, R items/s\n"
               "conveyor-host:   a: 2 in, 2 out, 0 failed, 1 restart\n"
               "conveyor-host:   b: 2 in, 2 out, 0 failed, 0 restarts\n");
    host_run_free(&r);
}

/* A poison item set aside is one the stage took in and failed; its
 * crashes are the process's restarts. */
Test(observe, summary_counts_a_poison_item_in_and_failed)
{
    host_run r;
    char *dead = write_file("dead.txt", "");
    char ini[1024];
    snprintf(ini, sizeof ini, "[pipeline]\ntransport = ring\n[parse]\nplugin = testplug:crash_on\n"
             "item = 3\nrestart = on-failure\nmax_restarts = 2\non_error = dead-letter:%s\n", dead);
    run_text(&r, ini, "1\n2\n3\n4\n5\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "1\n2\n4\n5\n");
    char *sum = summary_masked(r.err);
    cr_assert_str_eq(sum, "conveyor-host: done in T s: 5 items read, 4 written, R items/s\n"
                          "conveyor-host:   parse: 5 in, 4 out, 1 failed, 2 restarts\n",
                     "stderr: %s", r.err);
    free(sum);
    host_run_free(&r);
    free(dead);
}

/* A drain ends with what came out: every stage ended on its own, so the
 * counts are exact and match the output, and nothing was in flight. */
Test(observe, summary_after_a_drain, .timeout = 30)
{
    host_run r;
    pid_t kids[MAX_KIDS];
    char *out = NULL, *errbuf = NULL;
    size_t olen = 0, elen = 0;
    int keep;
    start_host(&r, "[pipeline]\n[s]\nplugin = testplug:slow\nusec = 20000\n", NULL);
    wait_for_children(r.pid, 3, kids);
    char in[256] = "";
    for (int i = 1; i <= 30; i++)
        snprintf(in + strlen(in), sizeof in - strlen(in), "%d\n", i);
    feed(&r, in);
    read_until(r.out_fd, &out, &olen, "1\n");
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    read_until(r.err_fd, &errbuf, &elen, "send it again to stop at once\n");
    finish_keeping_stdin(&r, 10, &keep);
    cr_assert_eq(r.status, 143, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    host_err_put_back(&r, errbuf, "send it again to stop at once\n");
    int k = 0;
    for (const char *p = out; *p; p++)
        k += *p == '\n';
    for (const char *p = r.out; *p; p++)
        k += *p == '\n';
    char want[512];
    snprintf(want, sizeof want,
             "conveyor-host: stopped by SIGTERM after T s: %d item%s read, %d written, R items/s\n"
             "conveyor-host:   s: %d in, %d out, 0 failed, 0 restarts\n"
             "conveyor-host: no items were in flight\n",
             k, k == 1 ? "" : "s", k, k, k);
    assert_err(&r, "", want);
    close(keep);
    free(out);
    free(errbuf);
    host_run_free(&r);
}

/* Stops a host whose stage holds item 1 of "1 2 3" for a minute, with
 * SIGTERM, then (when AGAIN) SIGTERM again, else by drain_timeout; returns
 * its standard error after the drain began. */
static void stop_stuck_run(host_run *r, int again, char **errbuf)
{
    pid_t kids[MAX_KIDS];
    size_t elen = 0;
    int keep;
    start_host(r, again ? "[pipeline]\n[s]\nplugin = testplug:slow\nusec = 60000000\n"
                        : "[pipeline]\ndrain_timeout = 300ms\n"
                          "[s]\nplugin = testplug:slow\nusec = 60000000\n",
               NULL);
    wait_for_children(r->pid, 3, kids);
    feed(r, "1\n2\n3\n");
    pause_ms(300);
    cr_assert_eq(kill(r->pid, SIGTERM), 0);
    read_until(r->err_fd, errbuf, &elen, "send it again to stop at once\n");
    if (again)
        cr_assert_eq(kill(r->pid, SIGTERM), 0);
    finish_keeping_stdin(r, 10, &keep);
    /* A slow reader may have read the drain_timeout error with it. */
    host_err_put_back(r, *errbuf, "send it again to stop at once\n");
    cr_assert_eq(r->status, 143, "status %d, stderr: %s%s", r->status, *errbuf, r->err);
    close(keep);
}

/* The stage holds item 1 and items 2 and 3 wait in its input: three items
 * the output lacks.  The stage was killed mid-item: marked, and its
 * counters are where it was (item 1 taken in, nothing out). */
static const char stuck_summary[] =
    "conveyor-host: stopped by SIGTERM after T s: 3 items read, 0 written, R items/s\n"
    "conveyor-host:   s: 1 in, 0 out, 0 failed, 0 restarts (killed)\n"
    "conveyor-host: 3 items were in flight and are not in the output\n";

Test(observe, summary_after_a_second_signal_names_what_was_in_flight, .timeout = 30)
{
    host_run r;
    char *errbuf = NULL;
    stop_stuck_run(&r, 1, &errbuf);
    cr_assert_str_eq(errbuf, "conveyor-host: received SIGTERM: finishing the items in flight (3); "
                             "send it again to stop at once\n");
    assert_err(&r,
               "conveyor-host: received SIGTERM again: stopping now; 3 items in flight are "
               "dropped\n",
               stuck_summary);
    free(errbuf);
    host_run_free(&r);
}

Test(observe, summary_after_drain_timeout_names_what_was_in_flight, .timeout = 30)
{
    host_run r;
    char *errbuf = NULL;
    stop_stuck_run(&r, 0, &errbuf);
    assert_err(&r,
               "conveyor-host: error: the drain took longer than drain_timeout (300 ms): stopping "
               "now; 3 items in flight are dropped\n",
               stuck_summary);
    free(errbuf);
    host_run_free(&r);
}

/* --- names in ps and top --------------------------------------------------- */

/* The contents of /proc/PID/FILE (malloc'd, NUL-terminated; *LEN bytes). */
static char *proc_file(pid_t pid, const char *file, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    return read_file(path, len);
}

/* /proc/PID/cmdline is TITLE alone: its bytes, then only NULs. */
static int cmdline_is(pid_t pid, const char *title)
{
    size_t len;
    char *c = proc_file(pid, "cmdline", &len);
    int ok = c && len > strlen(title) && strcmp(c, title) == 0;
    for (size_t i = strlen(title); ok && i < len; i++)
        ok = c[i] == '\0';
    free(c);
    return ok;
}

/* /proc/PID/comm is NAME. */
static int comm_is(pid_t pid, const char *name)
{
    char *c = proc_file(pid, "comm", NULL);
    int ok = c && strlen(c) == strlen(name) + 1 && strncmp(c, name, strlen(name)) == 0;
    free(c);
    return ok;
}

/* The child of KIDS whose short name is COMM, or -1. */
static pid_t kid_named(const pid_t *kids, size_t n, const char *comm)
{
    for (size_t i = 0; i < n; i++)
        if (comm_is(kids[i], comm))
            return kids[i];
    return -1;
}

/* Waits (5 s at most) until every one of the N names is taken by one of
 * KIDS; returns how many are. */
static size_t wait_for_names(const pid_t *kids, size_t n, const char *const *names)
{
    double deadline = now() + 5;
    size_t found;
    do {
        found = 0;
        for (size_t i = 0; i < n; i++)
            found += kid_named(kids, n, names[i]) > 0;
    } while (found < n && now() < deadline && (pause_ms(10), 1));
    return found;
}

/* Every process says what it is: the host names its pipeline, each child
 * its part, in ps -o args (the command line) and in ps -o comm and top
 * (the short name, 15 bytes: a long stage name is cut before its [N]). */
Test(observe, processes_are_named_for_ps_and_top, .timeout = 30)
{
    static const char *const comms[] = {"cv:source", "cv:up", "cv:a_rather_[0]",
                                        "cv:a_rather_[1]", "cv:sink"};
    static const char *const titles[] = {"conveyor: source", "conveyor: up",
                                         "conveyor: a_rather_long_stage[0]",
                                         "conveyor: a_rather_long_stage[1]", "conveyor: sink"};
    host_run r;
    pid_t kids[MAX_KIDS];
    char *ini = write_file("p.ini", "[pipeline]\n[up]\nplugin = text:upper\n"
                                    "[a_rather_long_stage]\nplugin = text:identity\nreplicas = 2\n");
    const char *args[] = {"-c", ini, NULL};
    host_start(&r, args);
    live_host = r.pid;
    wait_for_children(r.pid, 5, kids);
    cr_assert_eq(wait_for_names(kids, 5, comms), 5, "short names not all set");
    for (size_t i = 0; i < 5; i++) {
        pid_t pid = kid_named(kids, 5, comms[i]);
        cr_assert(cmdline_is(pid, titles[i]), "process %d (%s): command line is not '%s'",
                  (int)pid, comms[i], titles[i]);
    }
    char title[4200];
    snprintf(title, sizeof title, "conveyor-host: %s", ini);
    cr_assert(cmdline_is(r.pid, title), "the host's command line is not '%s'", title);
    host_finish(&r, "x\n", 2, 10);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "X\n");
    host_run_free(&r);
    free(ini);
}

/* A program that embeds the library without handing over its arguments'
 * memory: the processes still get their short names, and every command
 * line stays the program's own. */
Test(observe, without_the_argument_memory_only_short_names_change, .timeout = 30)
{
    static const char *const comms[] = {"cv:source", "cv:up", "cv:sink"};
    char embed[4096];
    snprintf(embed, sizeof embed, "%s/tests/embed-host", env_or("CONVEYOR_BUILDDIR", "."));
    setenv("CONVEYOR_HOST", embed, 1);
    host_run r;
    pid_t kids[MAX_KIDS];
    char *ini = write_file("p.ini", "[pipeline]\n[up]\nplugin = text:upper\n");
    const char *args[] = {ini, NULL};
    host_start(&r, args);
    live_host = r.pid;
    wait_for_children(r.pid, 3, kids);
    cr_assert_eq(wait_for_names(kids, 3, comms), 3, "short names not all set");
    size_t hlen;
    char *host = proc_file(r.pid, "cmdline", &hlen);
    cr_assert(host && strstr(host, "embed-host") && hlen > strlen(host) + 1 &&
                  strcmp(host + strlen(host) + 1, ini) == 0,
              "the program's command line changed: %s", host ? host : "(none)");
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        char *c = proc_file(kids[i], "cmdline", &len);
        cr_assert(c && len == hlen && memcmp(c, host, len) == 0,
                  "process %d's command line is not the program's", (int)kids[i]);
        free(c);
    }
    host_finish(&r, "x\n", 2, 10);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "X\n");
    free(host);
    host_run_free(&r);
    free(ini);
}

/* --- messages: debug, a stage's levels, --log-time ------------------------ */

static int has_line(const char *err, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = err; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, n) == 0 && p[n] == '\n')
            return 1;
    return 0;
}

/* -vv says where each module was looked for and found, what the run
 * creates and how large, and the pid of every process. */
Test(observe, debug_shows_plugins_tried_sizes_and_pids)
{
    host_run r;
    const char *vv[] = {"-vv", NULL};
    run_with(&r, "[pipeline]\nshared_memory = 4K\n[up]\nplugin = text:upper\n"
                 "[t]\nplugin = testplug:twice\nreplicas = 2\n",
             "a\n", vv);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    const char *tp = env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins");
    char line[8192];
    const char *path = getenv("CONVEYOR_PLUGIN_PATH");
    cr_assert_not_null(path);
    snprintf(line, sizeof line, "conveyor-host: plugin module 'testplug': searching %s:", path);
    cr_assert(strstr(r.err, line), "stderr: %s", r.err);
    char first[4096];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(path, ":"), path);
    if (strcmp(first, tp) != 0) {
        snprintf(line, sizeof line,
                 "conveyor-host: plugin module 'testplug': no testplug.la or testplug.so in %s",
                 first);
        cr_assert(has_line(r.err, line), "stderr: %s", r.err);
    }
    snprintf(line, sizeof line, "conveyor-host: plugin module 'testplug': loaded %s/testplug.la "
             "(testplug 1.0, plugin ABI 1.2, ", tp);
    cr_assert(strstr(r.err, line), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "\nconveyor-host: shared memory segment /conveyor."), "stderr: %s",
              r.err);
    cr_assert(strstr(r.err, ": 4096 bytes\n"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "\nconveyor-host: 5 channels: "), "stderr: %s", r.err);
    static const char *const procs[] = {"source", "up", "t[0]", "t[1]", "sink"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(line, sizeof line, "\nconveyor-host: started %s (pid ", procs[i]);
        const char *at = strstr(r.err, line);
        cr_assert(at && strtol(at + strlen(line), NULL, 10) > 0, "no pid for %s: %s", procs[i],
                  r.err);
    }
    host_run_free(&r);
}

/* A restart's back-off and the new pid, at -vv. */
Test(observe, debug_shows_restart_backoff)
{
    host_run r;
    const char *vv[] = {"-vv", NULL};
    run_with(&r, "[pipeline]\ntransport = ring\n[a]\nplugin = testplug:crash\nat = 2\n"
                 "restart = on-failure\n",
             "x\ny\n", vv);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert(has_line(r.err, "conveyor-host: restarting a in 20 ms (crash 1 in a row)"),
              "stderr: %s", r.err);
    const char *at = strstr(r.err, "\nconveyor-host: restarted a (pid ");
    cr_assert(at && strtol(at + 33, NULL, 10) > 0, "stderr: %s", r.err);
    host_run_free(&r);
}

/* A stage's conveyor_log: info from -v, debug only from -vv. */
Test(observe, stage_messages_follow_the_verbosity)
{
    static const char ini[] = "[pipeline]\n[lv]\nplugin = testplug:levels\n";
    static const char info[] = "conveyor-host: lv: info about 'x'\n";
    static const char debug[] = "conveyor-host: lv: debug about 'x'\n";
    host_run r;
    run_text(&r, ini, "x\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_null(strstr(r.err, info), "stderr: %s", r.err);
    cr_assert_null(strstr(r.err, debug), "stderr: %s", r.err);
    host_run_free(&r);

    const char *v[] = {"-v", NULL};
    run_with(&r, ini, "x\n", v);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_not_null(strstr(r.err, info), "stderr: %s", r.err);
    cr_assert_null(strstr(r.err, debug), "stderr: %s", r.err);
    host_run_free(&r);

    const char *vv[] = {"-vv", NULL};
    run_with(&r, ini, "x\n", vv);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    /* In the order the stage wrote them; the host's lines may come between. */
    const char *i = strstr(r.err, info);
    cr_assert(i && strstr(i, debug), "stderr: %s", r.err);
    host_run_free(&r);
}

/* The length of the "YYYY-MM-DDTHH:MM:SS.mmmZ " at LINE, 0 when there is
 * none; its time into *T (seconds since the epoch, UTC). */
static size_t stamp_at(const char *line, time_t *t)
{
    struct tm tm = {0};
    int ms, n = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 || n != 25)
        return 0;
    for (int k = 0; k < 24; k++)
        if (k != 4 && k != 7 && k != 10 && k != 13 && k != 16 && k != 19 && k != 23 &&
            (line[k] < '0' || line[k] > '9'))
            return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *t = timegm(&tm);
    return (size_t)n;
}

/* Every line of ERR starts with a UTC time of this run; with those taken
 * away it is WANT. */
static void assert_stamped(const char *err, const char *want, time_t from, time_t to)
{
    char *rest = calloc(1, strlen(err) + 1);
    for (const char *p = err; *p;) {
        time_t t;
        size_t n = stamp_at(p, &t);
        cr_assert(n > 0, "a line without the time: %s", p);
        cr_assert(t >= from - 1 && t <= to + 1, "a time outside the run: %.24s", p);
        const char *eol = strchr(p, '\n');
        cr_assert_not_null(eol);
        strncat(rest, p + n, (size_t)(eol + 1 - p) - n);
        p = eol + 1;
    }
    cr_assert_str_eq(rest, want, "stderr: %s", err);
    free(rest);
}

/* --log-time: every line, the host's, a stage's and the summary, and the
 * command line's own report of a refused file, starts with the time. */
Test(observe, log_time_starts_every_line_with_the_utc_time)
{
    host_run r;
    const char *lt[] = {"--log-time", NULL};
    time_t from = time(NULL);
    run_with(&r, "[pipeline]\n[f]\nplugin = testplug:fail\nat = 1\n", "a\n", lt);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    char *err = strdup(r.err);
    /* The duration and rate vary: cut the summary's first line there. */
    char *head = strstr(err, "conveyor-host: failed after ");
    cr_assert_not_null(head, "stderr: %s", r.err);
    char *colon = strstr(head, " s: 1 item read, 0 written, ");
    char *eol = colon ? strchr(colon, '\n') : NULL;
    cr_assert(colon && eol && strncmp(eol - 8, " items/s", 8) == 0, "stderr: %s", r.err);
    memmove(head + strlen("conveyor-host: failed after"), eol, strlen(eol) + 1);
    assert_stamped(err,
                   "conveyor-host: f: error: failing item 1 as asked: 'a'\n"
                   "conveyor-host: f: error: stage 'f' failed item 1 (process returned -1)\n"
                   "conveyor-host: error: the pipeline is stopped: stage 'f' failed\n"
                   "conveyor-host: failed after\n"
                   "conveyor-host:   f: 1 in, 0 out, 1 failed, 0 restarts\n"
                   "conveyor-host: no items were in flight\n",
                   from, time(NULL));
    free(err);
    host_run_free(&r);

    run_with(&r, "[pipeline]\n[f]\nplugin = nosuch:stage\n", NULL, lt);
    cr_assert_eq(r.status, 3, "status %d, stderr: %s", r.status, r.err);
    const char *msg = strstr(r.err, "conveyor-host: ");
    cr_assert(msg && strstr(msg, "p.ini:3: [f] plugin = nosuch:stage: plugin module 'nosuch' "
                                 "not found"), "stderr: %s", r.err);
    time_t t;
    cr_assert_eq(stamp_at(r.err, &t), 25, "stderr: %s", r.err);
    cr_assert_eq(msg, r.err + 25, "stderr: %s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + r.errlen - 1, "one line: %s", r.err);
    host_run_free(&r);
}
