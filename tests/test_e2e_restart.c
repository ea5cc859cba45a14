/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_restart.c - supervised restarts (restart = on-failure): a stage
 * that dies by a signal is started again and the item it held is processed
 * again, so nothing is lost and nothing duplicated; a poison item stops the
 * pipeline or goes to the dead-letter file; a lock held by a dead process is
 * recovered, not deadlocked.  Every INI names transport = ring: restarts
 * need it (and tests/pipe-transport.sh runs the rest on pipes).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char *numbers(int from, int to)
{
    size_t cap = (size_t)(to - from + 1) * 12 + 1, n = 0;
    char *s = malloc(cap);
    for (int i = from; i <= to; i++)
        n += (size_t)snprintf(s + n, cap - n, "%d\n", i);
    s[n] = '\0';
    return s;
}

static size_t count_lines_with(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(restart, poison_item_stops_the_pipeline_naming_it)
{
    host_run r;
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\n"
                                    "[a]\nplugin = testplug:crash_on\nitem = 3\n"
                                    "restart = on-failure\nmax_restarts = 2\n");
    host_run_ini(&r, ini, "1\n2\n3\n4\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'a' was killed by SIGSEGV while processing item 3; restarting it "
                            "(1 of 2 in a row)"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'a' was killed by SIGSEGV 2 times in a row on item 3, a poison item"),
              "stderr: %s", r.err);
    cr_assert_eq(count_lines_with(r.err, "error:"), 1, "one error, not two: %s", r.err);
    cr_assert(strncmp(r.out, "1\n2\n", strlen(r.out)) == 0, "output: %s", r.out);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

/* A plugin's exit() is a crash like a signal: restarted, nothing lost. */
Test(restart, plugin_exit_is_restarted_like_a_crash, .timeout = 20)
{
    host_run r;
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\n"
                                    "[a]\nplugin = testplug:quit\nat = 2\nstatus = 5\n"
                                    "restart = on-failure\n[b]\nplugin = text:upper\n");
    host_run_ini(&r, ini, "a\nb\nc\nd\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "A\nB\nC\nD\n");
    /* Each new process counts from 1 again: it sees the item its
     * predecessor died on as its first, and exits on its second. */
    for (int item = 2; item <= 4; item++) {
        char want[160];
        snprintf(want, sizeof want, "stage 'a' exited with status 5 while processing item %d; "
                 "restarting it (1 of 5 in a row)", item);
        cr_assert(strstr(r.err, want), "stderr: %s\nwanted: %s", r.err, want);
    }
    cr_assert(strstr(r.err, "3 stage restarts during the run"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

Test(restart, poison_item_goes_to_the_dead_letter_file)
{
    host_run r;
    char *dead = write_file("dead.txt", "");
    char text[1024];
    snprintf(text, sizeof text, "[pipeline]\ntransport = ring\nshared_memory = 1K\n"
             "[a]\nplugin = testplug:crash_on\nitem = 3\nrestart = on-failure\nmax_restarts = 2\n"
             "on_error = dead-letter:%s\n[b]\nplugin = text:upper\n", dead);
    char *ini = write_file("p.ini", text);
    host_run_ini(&r, ini, "a\nb\n3\nd\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "A\nB\nD\n");
    char *dl = read_file(dead, NULL);
    cr_assert_str_eq(dl, "3\n");
    cr_assert(strstr(r.err, "item 3 crashed it 2 times in a row: written to"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "2 stage restarts during the run"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    free(dl);
    host_run_free(&r);
    free(ini);
    free(dead);
}

/* Crashes at random after emitting an item: what the dead process emitted
 * for its last item is discarded, the item is processed again, and with
 * order = source the output is exactly the input. */
/* CONVEYOR_SOAK_ITEMS makes the soak tests longer (for people, e.g.
 * CONVEYOR_SOAK_ITEMS=1000000 with p = 0.001, a million-item soak); CI runs the
 * default.  Timeouts grow with it. */
static int soak_items(int dflt)
{
    const char *v = getenv("CONVEYOR_SOAK_ITEMS");
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : dflt;
}

Test(restart, random_crashes_lose_and_duplicate_nothing, .timeout = 3600)
{
    int N = soak_items(100000);
    host_run r;
    char *in = numbers(1, N);
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\n"
                                    "[a]\nplugin = testplug:crash_random\np = 0.0003\n"
                                    "restart = on-failure\nreplicas = 2\n"
                                    "[b]\nplugin = text:identity\n"
                                    "[c]\nplugin = testplug:crash_random\np = 0.0003\n"
                                    "restart = on-failure\nreplicas = 2\norder = source\n");
    const char *args[] = {"-c", ini, NULL};
    host_start(&r, args);
    host_finish(&r, in, strlen(in), 60 + N / 2000);
    cr_assert_eq(r.status, 0, "status %d, stderr: %.2000s", r.status, r.err);
    cr_assert(r.outlen == strlen(in) && memcmp(r.out, in, r.outlen) == 0,
              "output differs from the input (%zu bytes vs %zu)", r.outlen, strlen(in));
    size_t crashes = count_lines_with(r.err, "restarting it");
    cr_assert_gt(crashes, 0, "no crash happened: the test proves nothing");
    char want[96];
    snprintf(want, sizeof want, "%zu stage restart%s during the run", crashes, crashes == 1 ? "" : "s");
    cr_assert(strstr(r.err, want), "summary missing: %s", want);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
    free(in);
}

/* The host pid's children, other than the source and sink, are stages. */
static pid_t find_stage_child(pid_t host)
{
    char path[64], buf[512];
    pid_t found[16];
    int n = 0;
    for (pid_t pid = 2; pid < 4194304 && n < 16; pid++) {
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(buf, sizeof buf, f)) {
            char *rp = strrchr(buf, ')');
            int ppid = 0;
            if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == host)
                found[n++] = pid;
        }
        fclose(f);
        if (pid > 65536 && n == 0)
            break;
    }
    /* Children are forked in order: source, stages..., sink. */
    return n >= 3 ? found[1] : -1;
}

Test(restart, kill_9_of_a_stage_process_is_recovered, .timeout = 60)
{
    enum { N = 2000 };
    host_run r;
    char *in = numbers(1, N);
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\n"
                                    "[s]\nplugin = testplug:slow\nusec = 1000\nrestart = on-failure\n"
                                    "[t]\nplugin = text:identity\n");
    const char *args[] = {"-c", ini, NULL};
    host_start(&r, args);
    struct timespec t = {0, 300 * 1000000L};
    nanosleep(&t, NULL);
    pid_t stage = find_stage_child(r.pid);
    cr_assert_gt(stage, 0, "no stage process found");
    /* feed the input, kill the stage a little later */
    pid_t killer = fork();
    if (killer == 0) {
        struct timespec d = {0, 500 * 1000000L};
        nanosleep(&d, NULL);
        kill(stage, SIGKILL);
        _exit(0);
    }
    host_finish(&r, in, strlen(in), 50);
    waitpid(killer, NULL, 0);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, in);
    cr_assert(strstr(r.err, "was killed by SIGKILL"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "1 stage restart during the run"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
    free(in);
}

Test(restart, needs_the_ring_transport)
{
    host_run r;
    char *ini = write_file("p.ini", "[pipeline]\ntransport = pipe\n"
                                    "[a]\nplugin = text:identity\nrestart = on-failure\n");
    host_run_ini(&r, ini, "x\n");
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "p.ini:5: [a] restart = on-failure needs transport = ring"),
              "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);
    free(ini);
}

/* A process killed while holding conveyor_lock(0): the next locker is told
 * (CONVEYOR_LOCK_RECOVERED, the stage emits recovered:ITEM) and nothing
 * deadlocks; every other item still comes out. */
Test(restart, lock_held_by_a_dead_process_is_recovered, .timeout = 60)
{
    host_run r;
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\nshared_memory = 64\n"
                                    "[l]\nplugin = testplug:lock\nrestart = on-failure\n");
    host_run_ini(&r, ini, "a\nb\ndie\nc\nd\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\nb\nrecovered:die\ndie\nc\nd\n");
    cr_assert(strstr(r.err, "was killed by SIGKILL while processing item 3; restarting it"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

/* SIGTERM in the middle of a run with crashing, restarting stages: what
 * comes out is a prefix of the input (the source stops reading; everything
 * read is drained), in order, with nothing duplicated. */
Test(restart, sigterm_with_crashes_delivers_a_prefix_without_duplicates, .timeout = 120)
{
    /* More input than the rings hold, behind a stage slow enough that the
     * source is still reading when SIGTERM comes. */
    int N = soak_items(1000000);
    host_run r;
    char *in = numbers(1, N);
    char *ini = write_file("p.ini", "[pipeline]\ntransport = ring\n"
                                    "[b]\nplugin = testplug:busy\nusec = 5\n"
                                    "[a]\nplugin = testplug:crash_random\np = 0.0001\n"
                                    "restart = on-failure\nreplicas = 2\norder = source\n");
    const char *args[] = {"-c", ini, NULL};
    host_start(&r, args);
    pid_t killer = fork();
    if (killer == 0) {
        struct timespec d = {1, 0};
        nanosleep(&d, NULL);
        kill(r.pid, SIGTERM);
        _exit(0);
    }
    host_finish(&r, in, strlen(in), 100);
    waitpid(killer, NULL, 0);
    cr_assert_eq(r.status, 143, "status %d, stderr: %.2000s", r.status, r.err);
    cr_assert_gt(r.outlen, 0, "nothing came out before SIGTERM");
    cr_assert_lt(r.outlen, strlen(in), "SIGTERM came after the end: the test proves nothing");
    cr_assert(memcmp(r.out, in, r.outlen) == 0 && r.out[r.outlen - 1] == '\n',
              "the output is not a prefix of the input");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
    free(in);
}

/* An output that cannot be written (a full disk): exit 1, naming how far it got. */
Test(restart, full_disk_output_fails_naming_the_item)
{
    host_run r;
    char *ini = write_file("p.ini", "[pipeline]\noutput = /dev/full\n[a]\nplugin = text:identity\n");
    char *in = numbers(1, 100000);
    host_run_ini(&r, ini, in);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "writing the output after item "), "stderr: %s", r.err);
    cr_assert(strstr(r.err, ": No space left on device"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
    free(in);
}
