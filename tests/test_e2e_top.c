/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_top.c - watching a running pipeline: conveyor-host --top of a
 * real run (JSON and text: counters that move, the slow stage named the
 * bottleneck, a stuck item's number and growing age, an ended run), the
 * metrics file (Prometheus text whose last counters are the summary's),
 * --progress, the metrics segment gone after every kind of end, and --top
 * of a pid that runs no pipeline.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static pid_t live_host = -1;

static void stop_leftover_host(void)
{
    if (live_host <= 0 || waitpid(live_host, NULL, WNOHANG) != 0)
        return;
    kill(live_host, SIGKILL);
    waitpid(live_host, NULL, 0);
}

TestSuite(top, .fini = stop_leftover_host);

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts `conveyor-host OPT -c p.ini` (OPT may be NULL) with INI, standard
 * input left open for the test to feed. */
static void start_host(host_run *r, const char *ini, const char *opt)
{
    char *path = write_file("p.ini", ini);
    const char *args[] = {opt ? opt : "-c", opt ? "-c" : path, opt ? path : NULL, NULL};
    signal(SIGPIPE, SIG_IGN);
    host_start(r, args);
    live_host = r->pid;
    free(path);
}

static void feed(host_run *r, const char *text)
{
    size_t len = strlen(text);
    cr_assert_eq(write(r->in_fd, text, len), (ssize_t)len, "write to the host: %s",
                 strerror(errno));
}

/* Closes the host's input and collects the rest of its run. */
static void finish(host_run *r)
{
    close(r->in_fd);
    r->in_fd = -1;
    host_finish(r, NULL, 0, 60);
    live_host = -1;
}

/* `conveyor-host --top PID ARG` (ARG: "--json", "--once", NULL): its run. */
static void top_run(host_run *t, pid_t pid, const char *arg)
{
    char p[32];
    snprintf(p, sizeof p, "%ld", (long)pid);
    const char *args[] = {"--top", p, arg, NULL};
    host_run_args(t, NULL, 0, args);
}

/* The JSON snapshot of host PID (malloc'd). */
static char *top_json(pid_t pid)
{
    host_run t;
    top_run(&t, pid, "--json");
    cr_assert_eq(t.status, 0, "--top --json: status %d, stderr: %s", t.status, t.err);
    cr_assert(t.outlen > 2 && t.out[0] == '{' && t.out[t.outlen - 1] == '\n' &&
              t.out[t.outlen - 2] == '}', "not one JSON object: %s", t.out);
    char *json = strdup(t.out);
    host_run_free(&t);
    return json;
}

/* Where FIELD's value starts in the object of process NAME, or NULL. */
static const char *proc_field(const char *json, const char *name, const char *field)
{
    char key[128], f[64];
    snprintf(key, sizeof key, "{\"name\":\"%s\",", name);
    snprintf(f, sizeof f, "\"%s\":", field);
    const char *o = strstr(json, key);
    if (!o)
        return NULL;
    const char *end = strchr(o, '}'), *v = strstr(o, f);
    return v && v < end ? v + strlen(f) : NULL;
}

static double proc_num(const char *json, const char *name, const char *field)
{
    const char *v = proc_field(json, name, field);
    cr_assert(v && (isdigit((unsigned char)*v) || *v == '-'), "%s.%s is not a number in %s",
              name, field, json);
    return strtod(v, NULL);
}

static int proc_is(const char *json, const char *name, const char *field, const char *want)
{
    const char *v = proc_field(json, name, field);
    cr_assert(v, "no %s.%s in %s", name, field, json);
    return strncmp(v, want, strlen(want)) == 0;
}

/* Waits (20 s at most) until process NAME of host PID has taken in at
 * least N items; its snapshot then (malloc'd). */
static char *wait_items_in(pid_t pid, const char *name, double n)
{
    for (int i = 0; i < 200; i++) {
        char *json = top_json(pid);
        if (proc_num(json, name, "items_in") >= n)
            return json;
        free(json);
        pause_ms(100);
    }
    cr_assert_fail("%s never took in %g items", name, n);
    return NULL;
}

/* Waits (10 s at most) until host PID's metrics can be read. */
static void wait_metrics(pid_t pid)
{
    char name[64];
    snprintf(name, sizeof name, "/dev/shm/conveyor.%ld.metrics", (long)pid);
    for (int i = 0; i < 200 && access(name, R_OK) != 0; i++)
        pause_ms(50);
    cr_assert_eq(access(name, R_OK), 0, "no %s", name);
}

static const char slow_ini[] =
    "[a]\nplugin = text:identity\n"
    "[s]\nplugin = testplug:slow\nusec = 30000\n"
    "[c]\nplugin = text:identity\n";

Test(top, json_counters_move_and_the_slow_stage_is_the_bottleneck, .timeout = 90)
{
    host_run r;
    start_host(&r, slow_ini, NULL);
    char lines[2048] = "";
    for (int i = 1; i <= 100; i++)
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "%d\n", i);
    feed(&r, lines);
    wait_metrics(r.pid);

    char *first = wait_items_in(r.pid, "s", 2);
    pause_ms(600);
    char *second = top_json(r.pid);
    cr_assert(strstr(second, "\"state\":\"running\""), "%s", second);
    cr_assert_gt(proc_num(second, "s", "items_in"), proc_num(first, "s", "items_in"),
                 "the counters did not move: %s then %s", first, second);
    cr_assert_gt(proc_num(second, "s", "items_out"), proc_num(first, "s", "items_out"));
    cr_assert(proc_is(second, "s", "bottleneck", "true"), "%s", second);
    for (const char *other = "a"; other; other = strcmp(other, "a") == 0 ? "c" : NULL)
        cr_assert(proc_is(second, other, "bottleneck", "false"), "%s", second);
    cr_assert(proc_is(second, "sink", "bottleneck", "false"), "%s", second);
    /* s sleeps in process(): busy, not waiting; c waits for what s sends. */
    cr_assert_geq(proc_num(second, "s", "utilization"), 0.5, "%s", second);
    cr_assert_lt(proc_num(second, "c", "utilization"), 0.5, "%s", second);
    cr_assert_eq(proc_num(second, "source", "items_out"), 100, "%s", second);

    /* The text screen marks the same row. */
    host_run t;
    top_run(&t, r.pid, "--once");
    cr_assert_eq(t.status, 0, "stderr: %s", t.err);
    const char *row = strstr(t.out, "\ns ");
    cr_assert(row, "no row for s: %s", t.out);
    const char *eol = strchr(row + 1, '\n');
    const char *mark = strstr(row, "<- bottleneck");
    cr_assert(mark && mark < eol, "s is not marked: %s", t.out);
    cr_assert_eq(strstr(eol, "<- bottleneck"), NULL, "two rows marked: %s", t.out);
    cr_assert(strncmp(t.out, "conveyor-host ", 14) == 0 && strstr(t.out, ": p ("), "%s", t.out);
    host_run_free(&t);

    finish(&r);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, lines);
    cr_assert_eq(shm_left(r.pid), 0);
    free(first);
    free(second);
    host_run_free(&r);
}

/* A source stage busy making items (it sleeps in produce) is busy too, but
 * the bottleneck is the stage with work waiting in front of it. */
Test(top, a_busy_source_is_not_the_bottleneck_before_a_slow_stage, .timeout = 90)
{
    host_run r;
    start_host(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 0\nusec = 200\n"
                   "[s]\nplugin = testplug:slow\nusec = 2000\n"
                   "[c]\nplugin = text:identity\n", NULL);
    wait_metrics(r.pid);
    free(wait_items_in(r.pid, "s", 100));
    pause_ms(1200);     /* a full window of rates */
    char *json = top_json(r.pid);
    cr_assert_geq(proc_num(json, "src", "utilization"), 0.5, "%s", json);
    cr_assert(proc_is(json, "s", "bottleneck", "true"), "%s", json);
    cr_assert(proc_is(json, "src", "bottleneck", "false"), "%s", json);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    pause_ms(200);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);   /* again: stop now, not after the backlog */
    finish(&r);
    cr_assert_eq(r.status, 143, "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    free(json);
    host_run_free(&r);
}

Test(top, a_stuck_item_shows_its_number_and_an_age_that_grows, .timeout = 90)
{
    host_run r;
    /* Stuck for a minute: long enough for two looks on a busy machine; a
     * second SIGTERM ends the run. */
    start_host(&r, "[s]\nplugin = testplug:slow\nusec = 60000000\n", NULL);
    feed(&r, "only\n");
    wait_metrics(r.pid);
    char *first = NULL;
    for (int i = 0; i < 200; i++) {
        first = top_json(r.pid);
        if (proc_is(first, "s", "current", "1,"))
            break;
        free(first);
        first = NULL;
        pause_ms(50);
    }
    cr_assert(first, "s never held item 1");
    pause_ms(1000);
    char *second = top_json(r.pid);
    cr_assert(proc_is(second, "s", "current", "1,"), "%s", second);
    double age1 = proc_num(first, "s", "current_age_s"), age2 = proc_num(second, "s",
                                                                          "current_age_s");
    cr_assert_geq(age2, age1 + 0.5, "the age did not grow: %g then %g", age1, age2);
    /* Nothing finished, and the host still sees it busy. */
    cr_assert_eq(proc_num(second, "s", "items_out"), 0, "%s", second);
    cr_assert(proc_is(second, "s", "bottleneck", "true"), "%s", second);

    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    pause_ms(200);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    int keep = r.in_fd;
    r.in_fd = -1;
    host_finish(&r, NULL, 0, 60);
    live_host = -1;
    close(keep);
    cr_assert_eq(r.status, 128 + SIGTERM, "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    free(first);
    free(second);
    host_run_free(&r);
}

Test(top, watching_a_run_to_its_end_shows_it_ended, .timeout = 60)
{
    host_run r;
    start_host(&r, "[s]\nplugin = testplug:slow\nusec = 400000\n", NULL);
    feed(&r, "1\n2\n3\n");
    close(r.in_fd);
    r.in_fd = -1;
    wait_metrics(r.pid);
    host_run t;
    top_run(&t, r.pid, NULL);   /* redraws every second until the run ends */
    cr_assert_eq(t.status, 0, "stderr: %s", t.err);
    cr_assert_str_eq(t.err, "");
    const char *last = strstr(t.out, "ended with status 0");
    cr_assert(last, "%s", t.out);
    host_finish(&r, NULL, 0, 60);
    live_host = -1;
    cr_assert_eq(r.status, 0);
    host_run_free(&t);
    host_run_free(&r);
}

/* --- the metrics file ----------------------------------------------------- */

/* Checks that TEXT is Prometheus text exposition format: every sample's
 * metric has # HELP and # TYPE lines before it, names and labels are well
 * formed, values are numbers.  How many samples it has. */
static int check_prometheus(const char *text)
{
    char typed[64][80];
    int ntyped = 0, samples = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        cr_assert(eol, "the text does not end with a newline");
        char buf[512];
        size_t n = (size_t)(eol - line);
        cr_assert_lt(n, sizeof buf);
        memcpy(buf, line, n);
        buf[n] = '\0';
        line = eol + 1;
        char name[80], type[16];
        if (strncmp(buf, "# HELP ", 7) == 0) {
            cr_assert_eq(sscanf(buf, "# HELP %79s %15s", name, type), 2, "%s", buf);
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            cr_assert_eq(sscanf(buf, "# TYPE %79s %15s", name, type), 2, "%s", buf);
            cr_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0, "%s", buf);
            cr_assert_lt(ntyped, 64);
            snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
            continue;
        }
        /* name{k="v",...} value */
        const char *p = buf;
        cr_assert(isalpha((unsigned char)*p) || *p == '_', "%s", buf);
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
            p++;
        snprintf(name, sizeof name, "%.*s", (int)(p - buf), buf);
        int known = 0;
        for (int i = 0; i < ntyped; i++)
            known |= strcmp(typed[i], name) == 0;
        cr_assert(known, "%s has no # TYPE line before it", name);
        if (*p == '{') {
            p++;
            while (*p != '}') {
                cr_assert(isalpha((unsigned char)*p) || *p == '_', "%s", buf);
                while (isalnum((unsigned char)*p) || *p == '_')
                    p++;
                cr_assert(p[0] == '=' && p[1] == '"', "%s", buf);
                for (p += 2; *p != '"'; p++) {
                    cr_assert(*p, "%s", buf);
                    if (*p == '\\')
                        p++;
                }
                p++;
                if (*p == ',')
                    p++;
                else
                    cr_assert_eq(*p, '}', "%s", buf);
            }
            p++;
        }
        cr_assert_eq(*p, ' ', "%s", buf);
        char *end;
        strtod(p + 1, &end);
        cr_assert(end != p + 1 && *end == '\0', "bad value in %s", buf);
        samples++;
    }
    return samples;
}

/* The value of the sample that starts with PREFIX ("name{labels}"). */
static unsigned long long sample_value(const char *text, const char *prefix)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", prefix);
    const char *at = strstr(text, key);
    cr_assert(at, "no sample %s in:\n%s", prefix, text);
    return strtoull(at + strlen(key), NULL, 10);
}

Test(top, metrics_file_is_prometheus_text_with_the_summary_counts, .timeout = 60)
{
    host_run r;
    char in[8192] = "";
    for (int i = 1; i <= 500; i++)
        snprintf(in + strlen(in), sizeof in - strlen(in), "line %d\n", i);
    int status = run_text(&r,
                          "[pipeline]\nmetrics_file = m.prom\nmetrics_interval = 100ms\n"
                          "[a]\nplugin = text:identity\n"
                          "[f]\nplugin = testplug:fail\nat = 7\non_error = skip\n"
                          "[b]\nplugin = text:identity\nreplicas = 2\n",
                          in);
    cr_assert_eq(status, 0, "stderr: %s", r.err);
    char path[4096];
    snprintf(path, sizeof path, "%s/m.prom", test_dir());
    char *text = read_file(path, NULL);
    cr_assert(text, "no %s", path);
    cr_assert_gt(check_prometheus(text), 10);

    /* Every number of the summary is in the file's last write. */
    unsigned long long read, written;
    const char *sum = summary_in(r.err);
    cr_assert(sum, "%s", r.err);
    cr_assert_eq(sscanf(strstr(sum, " s: ") + 4, "%llu items read, %llu written", &read, &written),
                 2, "%s", sum);
    cr_assert_eq(sample_value(text, "conveyor_pipeline_items_read_total{pipeline=\"p\"}"), read);
    cr_assert_eq(sample_value(text, "conveyor_pipeline_items_written_total{pipeline=\"p\"}"),
                 written);
    cr_assert_eq(read, 500);
    cr_assert_eq(written, 499);
    cr_assert_eq(sample_value(text, "conveyor_pipeline_running{pipeline=\"p\"}"), 0);
    int lines = 0;
    for (const char *l = strchr(sum, '\n') + 1; *l; l = strchr(l, '\n') + 1, lines++) {
        char label[64], stage[64];
        unsigned long long nin, nout, nfailed, nrestarts;
        cr_assert_eq(sscanf(l, "conveyor-host: %63[^:]: %llu in, %llu out, %llu failed, %llu",
                            label, &nin, &nout, &nfailed, &nrestarts), 5, "%s", l);
        unsigned replica = 0;
        snprintf(stage, sizeof stage, "%s", label);
        char *br = strchr(stage, '[');
        if (br) {
            replica = (unsigned)atoi(br + 1);
            *br = '\0';
        }
        char labels[160], key[256];
        snprintf(labels, sizeof labels, "{pipeline=\"p\",stage=\"%s\",replica=\"%u\"}", stage,
                 replica);
        snprintf(key, sizeof key, "conveyor_stage_items_in_total%s", labels);
        cr_assert_eq(sample_value(text, key), nin, "%s", key);
        snprintf(key, sizeof key, "conveyor_stage_items_out_total%s", labels);
        cr_assert_eq(sample_value(text, key), nout, "%s", key);
        snprintf(key, sizeof key, "conveyor_stage_failed_total%s", labels);
        cr_assert_eq(sample_value(text, key), nfailed, "%s", key);
        snprintf(key, sizeof key, "conveyor_stage_restarts_total%s", labels);
        cr_assert_eq(sample_value(text, key), nrestarts, "%s", key);
    }
    cr_assert_eq(lines, 4, "%s", sum);      /* a, f, b[0], b[1] */
    cr_assert_eq(sample_value(text, "conveyor_stage_failed_total{pipeline=\"p\",stage=\"f\","
                                    "replica=\"0\"}"), 1);

    /* Nothing but the file itself is left in its folder. */
    DIR *d = opendir(test_dir());
    struct dirent *de;
    while ((de = readdir(d)))
        cr_assert_null(strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    closedir(d);
    cr_assert_eq(shm_left(r.pid), 0);
    free(text);
    host_run_free(&r);
}

/* --- --progress ------------------------------------------------------------ */

Test(top, progress_forced_on_draws_lines_and_leaves_the_output_alone, .timeout = 60)
{
    char in[4096] = "";
    for (int i = 1; i <= 300; i++)
        snprintf(in + strlen(in), sizeof in - strlen(in), "%d\n", i);
    char *input = write_file("in.txt", in);
    free(input);
    char *ini = write_file("p.ini", "[pipeline]\ninput = in.txt\n"
                                    "[s]\nplugin = testplug:slow\nusec = 3000\n");
    host_run r;
    const char *args[] = {"--progress", "-c", ini, NULL};
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, in);
    /* Progress lines first, each drawn over the last with \r; the summary
     * after them starts a line of its own. */
    char *msgs = messages_of(r.err);
    cr_assert(msgs[0] == '\r', "%s", r.err);
    cr_assert(strstr(msgs, " items read, "), "%s", r.err);
    cr_assert(strstr(msgs, "\r300 items read, 300 written, "), "no final line: %s", r.err);
    cr_assert(strstr(msgs, ", 100 %"), "no percentage of a regular file: %s", r.err);
    cr_assert_eq(msgs[strlen(msgs) - 1], '\n', "%s", r.err);
    cr_assert_null(strstr(msgs, "\033"), "escape sequences on a pipe: %s", r.err);
    char *sum = summary_masked(r.err);
    cr_assert_str_eq(sum, "conveyor-host: done in T s: 300 items read, 300 written, R items/s\n"
                          "conveyor-host:   s: 300 in, 300 out, 0 failed, 0 restarts\n");
    free(sum);
    free(msgs);
    free(ini);
    host_run_free(&r);
}

/* --- nothing left behind --------------------------------------------------- */

Test(top, no_metrics_left_after_a_failure, .timeout = 60)
{
    host_run r;
    int status = run_text(&r, "[f]\nplugin = testplug:fail\nat = 2\n", "a\nb\nc\n");
    cr_assert_eq(status, 1, "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(top, no_metrics_left_after_sigterm, .timeout = 60)
{
    host_run r;
    start_host(&r, "[s]\nplugin = testplug:slow\nusec = 1000\n", NULL);
    feed(&r, "a\nb\n");
    wait_metrics(r.pid);
    cr_assert_eq(kill(r.pid, SIGTERM), 0);
    int keep = r.in_fd;
    r.in_fd = -1;
    host_finish(&r, NULL, 0, 60);
    live_host = -1;
    close(keep);
    cr_assert_eq(r.status, 128 + SIGTERM, "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(top, sigkill_of_the_host_leaves_metrics_that_top_calls_gone_and_cleanup_removes,
     .timeout = 60)
{
    host_run r;
    start_host(&r, "[s]\nplugin = testplug:slow\nusec = 1000\n", NULL);
    feed(&r, "a\n");
    wait_metrics(r.pid);
    /* Hosts of other runs sweep what dead hosts left as soon as its lock is
     * free: a lock of the test's own, taken the moment the host's processes
     * are gone, keeps it until --top has looked. */
    char name[64];
    snprintf(name, sizeof name, "/dev/shm/conveyor.%ld.metrics", (long)r.pid);
    int held = open(name, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(held, 0, "%s: %s", name, strerror(errno));
    cr_assert_eq(kill(r.pid, SIGKILL), 0);
    cr_assert_eq(flock(held, LOCK_SH), 0);
    int keep = r.in_fd;
    r.in_fd = -1;
    host_finish(&r, NULL, 0, 60);
    live_host = -1;
    close(keep);
    cr_assert_eq(r.status, 128 + SIGKILL);
    cr_assert_eq(shm_left(r.pid), 1, "the metrics should outlive a SIGKILLed host");

    host_run t;
    top_run(&t, r.pid, "--once");
    cr_assert_eq(t.status, 1, "stdout: %s", t.out);
    char want[256];
    snprintf(want, sizeof want, "conveyor-host: --top: the host of pid %ld is gone without "
             "ending its pipeline (killed?); conveyor-host --cleanup removes what it left\n",
             (long)r.pid);
    cr_assert_str_eq(t.err, want);
    host_run_free(&t);
    close(held);

    /* Its stages die with it (a parent-death signal); then the lock on the
     * metrics is free and --cleanup removes them. */
    for (int i = 0; i < 100 && shm_left(r.pid) > 0; i++) {
        const char *args[] = {"--cleanup", NULL};
        host_run c;
        host_run_args(&c, NULL, 0, args);
        cr_assert_eq(c.status, 0, "stderr: %s", c.err);
        host_run_free(&c);
        if (shm_left(r.pid) > 0)
            pause_ms(100);
    }
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

/* --- no such pipeline ------------------------------------------------------ */

Test(top, top_of_a_pid_without_a_pipeline)
{
    pid_t none = 0;
    for (pid_t c = 4000000; c > 1000 && !none; c -= 7919)
        if (kill(c, 0) < 0 && errno == ESRCH)
            none = c;
    cr_assert_gt(none, 0);
    host_run t;
    top_run(&t, none, "--once");
    cr_assert_eq(t.status, 1);
    cr_assert_str_eq(t.out, "");
    char want[160];
    snprintf(want, sizeof want, "conveyor-host: --top: no pipeline is running with host pid %ld\n",
             (long)none);
    cr_assert_str_eq(t.err, want);
    host_run_free(&t);

    /* Its own pid runs no pipeline either: a process that is not a host. */
    top_run(&t, getpid(), "--json");
    cr_assert_eq(t.status, 1);
    cr_assert_str_eq(t.out, "");
    host_run_free(&t);

    const char *args[] = {"--top", "12x", NULL};
    host_run_args(&t, NULL, 0, args);
    cr_assert_eq(t.status, 2);
    cr_assert_str_eq(t.err, "conveyor-host: --top: '12x' is not a process id "
                            "(see conveyor-host --help)\n");
    host_run_free(&t);
}
