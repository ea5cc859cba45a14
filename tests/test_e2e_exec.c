/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_exec.c - the exec module end to end: stages that are programs
 * (tr, grep, sed, sh, python3 and tests/exec_echo), run by the real
 * conveyor-host on INI files, with exact outputs, statuses and messages.
 *
 * Time limits here are generous upper bounds: a test that checks a timeout
 * uses a program that never replies, so nothing depends on how fast the
 * machine is.  Restart tests name transport = ring (restarts need it).
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* tests/exec_echo in the build tree, quoted for a command line. */
static const char *echo_cmd(void)
{
    static char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/tests/exec_echo'", env_or("CONVEYOR_BUILDDIR", "."));
    return cmd;
}

/* Runs one exec stage named s with KEYS (lines of the section) on IN. */
static int run_stage(host_run *r, const char *keys, const char *in)
{
    char ini[8448];     /* the callers' keys (8400 at most) and the header */
    snprintf(ini, sizeof ini, "[s]\nplugin = exec:run\n%s", keys);
    return run_text(r, ini, in);
}

static void assert_clean_success(const host_run *r)
{
    cr_assert_eq(r->status, 0, "status %d, stderr: %s", r->status, r->err);
    char *msgs = messages_of(r->err);
    cr_assert_str_eq(msgs, "", "unexpected messages: %s", r->err);
    free(msgs);
    cr_assert(strncmp(r->err, "conveyor-host: done in ", 23) == 0, "no summary: %s", r->err);
    cr_assert_eq(shm_left(r->pid), 0, "segments of host %d left in /dev/shm", (int)r->pid);
}

/* The run's messages, its summary aside, are exactly WANT. */
static void assert_messages(const host_run *r, const char *want)
{
    char *msgs = messages_of(r->err);
    cr_assert_str_eq(msgs, want, "stderr: %s", r->err);
    cr_assert_not_null(summary_in(r->err), "no summary: %s", r->err);
    free(msgs);
}

static void assert_err_has(const host_run *r, const char *want)
{
    cr_assert(strstr(r->err, want), "stderr lacks \"%s\":\n%s", want, r->err);
}

/* The whole output of one exec stage with KEYS on IN must be WANT. */
static void check_stage(const char *keys, const char *in, const char *want)
{
    host_run r;
    run_stage(&r, keys, in);
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, want, "keys:\n%s", keys);
    host_run_free(&r);
}

static char *numbers(int from, int to)
{
    size_t cap = (size_t)(to - from + 1) * 12 + 1, n = 0;
    char *s = malloc(cap);
    for (int i = from; i <= to; i++)
        n += (size_t)snprintf(s + n, cap - n, "%d\n", i);
    s[n] = '\0';
    return s;
}

static void frame32(char *buf, size_t *len, const void *data, size_t n)
{
    for (int i = 0; i < 4; i++)
        buf[(*len)++] = (char)(unsigned char)(n >> (8 * i));
    memcpy(buf + *len, data, n);
    *len += n;
}

/* --- stream ------------------------------------------------------------------- */

Test(exec, stream_tr_upper_cases)
{
    check_stage("command = tr a-z A-Z\n", "hello\nWorld 42\n\nlast\n", "HELLO\nWORLD 42\n\nLAST\n");
}

Test(exec, stream_grep_keeps_fewer_items)
{
    check_stage("command = grep -E '^(wash|dry)'\n",
                "wash the shirts\nfold the towels\ndry the socks\niron\n",
                "wash the shirts\ndry the socks\n");
}

Test(exec, stream_program_writes_more_items_than_it_reads)
{
    check_stage("command = sed p\n", "a\nb\nc\n", "a\na\nb\nb\nc\nc\n");
}

Test(exec, stream_output_is_cut_into_items_for_the_next_stage)
{
    host_run r;
    run_text(&r, "[up]\nplugin = exec:run\ncommand = tr a-z A-Z\n"
                 "[label]\nplugin = text:prefix\ntext = \"> \"\n",
             "one\ntwo\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "> ONE\n> TWO\n");
    host_run_free(&r);
}

Test(exec, stream_last_line_without_newline_is_an_item)
{
    check_stage("command = printf 'x\\ny'\n", "", "x\ny\n");
}

Test(exec, stream_nul_framing)
{
    static const char in[] = "one\ntwo\0three\0";
    char ini[4096];
    host_run r;
    snprintf(ini, sizeof ini, "[pipeline]\nframing = nul\n"
             "[s]\nplugin = exec:run\nframing = nul\ncommand = %s -f nul\n"
             "[label]\nplugin = text:prefix\ntext = \"> \"\n", echo_cmd());
    run_bytes(&r, ini, in, sizeof in - 1);
    assert_clean_success(&r);
    static const char want[] = "> one\ntwo\0> three\0";
    cr_assert_eq(r.outlen, sizeof want - 1, "output: %zu bytes", r.outlen);
    cr_assert(memcmp(r.out, want, sizeof want - 1) == 0);
    host_run_free(&r);
}

Test(exec, stream_length32_framing)
{
    char in[64], want[64], ini[4096];
    size_t inlen = 0, wantlen = 0;
    host_run r;
    frame32(in, &inlen, "a\0b\n", 4);
    frame32(in, &inlen, "", 0);
    frame32(in, &inlen, "xyz", 3);
    frame32(want, &wantlen, "> a\0b\n", 6);
    frame32(want, &wantlen, "> ", 2);
    frame32(want, &wantlen, "> xyz", 5);
    snprintf(ini, sizeof ini, "[pipeline]\nframing = length32\n"
             "[s]\nplugin = exec:run\nframing = length32\ncommand = %s -f length32\n"
             "[label]\nplugin = text:prefix\ntext = \"> \"\n", echo_cmd());
    run_bytes(&r, ini, in, inlen);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, wantlen, "output: %zu bytes", r.outlen);
    cr_assert(memcmp(r.out, want, wantlen) == 0);
    host_run_free(&r);
}

Test(exec, stream_large_input_and_output_do_not_deadlock)
{
    /* Far more than a pipe holds, both ways, through a program that writes
     * as it reads: the stage must read while it writes. */
    char *in = numbers(1, 200000), *keys = malloc(4200);
    host_run r;
    snprintf(keys, 4200, "command = %s\n", echo_cmd());
    run_stage(&r, keys, in);
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, in);
    host_run_free(&r);
    free(in);
    free(keys);
}

/* --- the command line ----------------------------------------------------------- */

Test(exec, command_is_split_like_sh_without_expansion)
{
    char keys[4200];
    snprintf(keys, sizeof keys,
             "command = %s -a 'a b' \"c \\\"d\\\" $HOME\" e\\ f '' * ~ 'x'\"y\"z\n", echo_cmd());
    check_stage(keys, "", "a b\nc \"d\" $HOME\ne f\n\n*\n~\nxyz\n");
}

Test(exec, shell_yes_runs_the_command_through_sh)
{
    check_stage("shell = yes\ncommand = tr a-z A-Z | sed 's/^/> /'\n", "hi\nyou\n", "> HI\n> YOU\n");
}

Test(exec, program_has_only_its_three_descriptors)
{
    char keys[4200];
    check_stage("command = sh -c 'ls /proc/$$/fd'\n", "", "0\n1\n2\n");
    snprintf(keys, sizeof keys, "command = %s -d\n", echo_cmd());
    check_stage(keys, "", "fds: 0 1 2\n");
}

/* --- per-item ------------------------------------------------------------------- */

Test(exec, per_item_empty_reply_drops_and_error_reply_fails_with_skip)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\non_error = skip\ncommand = %s\n", echo_cmd());
    run_stage(&r, keys, "a\ndrop\nb\nbad1\nc\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\nb\nc\n");
    assert_messages(&r, "conveyor-host: s: error: item 'bad1' failed: no good: bad1\n"
                            "conveyor-host: s: warning: stage 's': 1 failed item skipped\n");
    host_run_free(&r);
}

Test(exec, per_item_error_reply_stops_the_pipeline_by_default)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\ncommand = %s\n", echo_cmd());
    run_stage(&r, keys, "a\nb\nbad news\nc\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "conveyor-host: s: error: item 'bad news' failed: no good: bad news\n");
    assert_err_has(&r, "stage 's' failed item 3 (process returned -5)");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(exec, per_item_error_reply_goes_to_the_dead_letter_file)
{
    char *dead = write_file("dead.txt", "");
    char keys[8400];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\non_error = dead-letter:%s\ncommand = %s\n",
             dead, echo_cmd());
    run_stage(&r, keys, "a\nbad1\nb\nbad2\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\nb\n");
    char *got = read_file(dead, NULL);
    cr_assert_str_eq(got, "bad1\nbad2\n");
    assert_err_has(&r, "2 failed items written to");
    free(got);
    free(dead);
    host_run_free(&r);
}

Test(exec, per_item_error_prefix_is_a_key_and_empty_turns_it_off)
{
    char keys[4200];
    snprintf(keys, sizeof keys, "reply = per-item\nerror_prefix = \"\"\ncommand = %s\n", echo_cmd());
    check_stage(keys, "bad1\n", "ERROR: no good: bad1\n");
    snprintf(keys, sizeof keys, "reply = per-item\nerror_prefix = \"ERROR: no good: b\"\n"
             "on_error = skip\ncommand = %s\n", echo_cmd());
    host_run r;
    run_stage(&r, keys, "bad1\nok\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "ok\n");
    assert_err_has(&r, "item 'bad1' failed: ad1\n");
    host_run_free(&r);
}

Test(exec, per_item_item_with_a_newline_fails_in_lines_framing)
{
    static const char in[] = "a\0two\nlines\0b\0";
    char ini[4200];
    host_run r;
    snprintf(ini, sizeof ini, "[pipeline]\nframing = nul\n[s]\nplugin = exec:run\n"
             "reply = per-item\non_error = skip\ncommand = %s\n", echo_cmd());
    run_bytes(&r, ini, in, sizeof in - 1);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_eq(r.outlen, 4);
    cr_assert(memcmp(r.out, "a\0b\0", 4) == 0);
    assert_err_has(&r, "item 'two\\x0alines' holds a newline, which framing = lines cannot carry");
    host_run_free(&r);
}

Test(exec, per_item_replicas_each_run_their_own_program)
{
    char keys[4200];
    char *in = numbers(1, 40);
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\nreplicas = 2\norder = source\n"
             "command = %s -s started\n", echo_cmd());
    run_stage(&r, keys, in);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, in);
    assert_err_has(&r, "conveyor-host: s[0]: warning: started\n");
    assert_err_has(&r, "conveyor-host: s[1]: warning: started\n");
    host_run_free(&r);
    free(in);
}

/* --- one CPU for a per-item stage and its program ----------------------------- */

/* A per-item program that replies to every item with the CPUs it may run
 * on (Cpus_allowed_list of its own /proc entry). */
static const char cpus_program[] =
    "shell = yes\nreply = per-item\n"
    "command = while read -r l; do sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$$/status; "
    "done\n";

/* This process's Cpus_allowed_list, and how many CPUs that is. */
static void own_cpus(char *list, size_t size, int *count)
{
    char *status = read_file("/proc/self/status", NULL);
    cr_assert_not_null(status);
    const char *p = strstr(status, "Cpus_allowed_list:");
    cr_assert_not_null(p);
    p += strlen("Cpus_allowed_list:");
    p += strspn(p, " \t");
    size_t n = strcspn(p, "\n");
    cr_assert_lt(n, size);
    memcpy(list, p, n);
    list[n] = '\0';
    free(status);
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    *count = CPU_COUNT(&set);
}

/* The one line a run of KEYS printed for two items, both the same. */
static void run_cpus(const char *keys, char *out, size_t size)
{
    host_run r;
    run_stage(&r, keys, "a\nb\n");
    assert_clean_success(&r);
    char *nl = strchr(r.out, '\n');
    cr_assert_not_null(nl, "output: %s", r.out);
    size_t n = (size_t)(nl - r.out);
    cr_assert_lt(n, size);
    cr_assert(strncmp(nl + 1, r.out, n + 1) == 0 && nl[n + 2] == '\0',
              "the two replies differ: %s", r.out);
    memcpy(out, r.out, n);
    out[n] = '\0';
    host_run_free(&r);
}

Test(exec, per_item_program_shares_one_cpu_with_its_stage)
{
    char mine[256], got[256];
    int count;
    own_cpus(mine, sizeof mine, &count);
    run_cpus(cpus_program, got, sizeof got);
    if (count < 2) {
        cr_assert_str_eq(got, mine, "one CPU allowed: nothing to choose");
        return;
    }
    /* One CPU, one of ours. */
    char *end;
    long cpu = strtol(got, &end, 10);
    cr_assert(end > got && *end == '\0', "more than one CPU: '%s'", got);
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    cr_assert(cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET((int)cpu, &set),
              "CPU %ld is not one of this process's (%s)", cpu, mine);
}

Test(exec, share_cpu_no_leaves_the_program_on_every_cpu)
{
    char mine[256], got[256], keys[512];
    int count;
    own_cpus(mine, sizeof mine, &count);
    snprintf(keys, sizeof keys, "%sshare_cpu = no\n", cpus_program);
    run_cpus(keys, got, sizeof got);
    cr_assert_str_eq(got, mine);
}

Test(exec, stream_program_is_not_kept_on_one_cpu)
{
    char mine[256], got[300];
    int count;
    own_cpus(mine, sizeof mine, &count);
    host_run r;
    run_stage(&r, "shell = yes\n"
                  "command = sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/$$/status; cat\n",
              "a\n");
    assert_clean_success(&r);
    snprintf(got, sizeof got, "%s\na\n", mine);
    cr_assert_str_eq(r.out, got);
    host_run_free(&r);
}

/* --- standard error ------------------------------------------------------------- */

Test(exec, stderr_lines_are_logged_with_the_stage_name)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\ncommand = %s\n", echo_cmd());
    run_stage(&r, keys, "say:hello there\nx\nsay:bye\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "say:hello there\nx\nsay:bye\n");
    assert_messages(&r, "conveyor-host: s: warning: hello there\n"
                            "conveyor-host: s: warning: bye\n");
    host_run_free(&r);

    /* A last line without its newline is a line too. */
    run_stage(&r, "shell = yes\ncommand = cat; printf 'one\\ntwo' >&2\n", "a\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\n");
    assert_messages(&r, "conveyor-host: s: warning: one\nconveyor-host: s: warning: two\n");
    host_run_free(&r);
}

/* --- programs that cannot start, or end too soon ---------------------------------------- */

Test(exec, missing_program_is_refused_at_init)
{
    host_run r;
    run_stage(&r, "command = no-such-program-for-conveyor --flag\n", "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "");
    assert_err_has(&r, "conveyor-host: s: error: cannot run 'no-such-program-for-conveyor': "
                       "No such file or directory\n");
    assert_err_has(&r, "stage 's': init failed (returned -2); the pipeline does not start");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(exec, program_that_is_not_executable_is_refused_at_init)
{
    char *path = write_file("not-a-program", "#!/bin/sh\necho hi\n");
    char keys[4200], want[4400];
    host_run r;
    chmod(path, 0644);
    snprintf(keys, sizeof keys, "command = %s\n", path);
    run_stage(&r, keys, "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want, "cannot run '%s': Permission denied\n", path);
    assert_err_has(&r, want);
    host_run_free(&r);
    free(path);
}

Test(exec, bad_parameters_are_refused)
{
    /* The stage's check refuses them before anything starts (status 2),
     * naming the file and the line. */
    static const struct { const char *keys, *want; int status; } cases[] = {
        {"command = cat\nframing = words\n",
         "p.ini:1: [s] framing must be lines, nul or length32, not 'words'\n", 2},
        {"command = cat\nreply = maybe\n", "p.ini:1: [s] reply must be stream or per-item, not 'maybe'\n", 2},
        {"command = cat\nshell = sure\n",
         "p.ini:4: [s] key 'shell' = 'sure': not yes or no (nor true/false, on/off, 1/0)\n", 2},
        {"command = cat\ntimeout = 5x\n", "p.ini:4: [s] key 'timeout' = '5x': not a duration", 2},
        {"command = cat\ntimeout = 2147484\n",
         "p.ini:1: [s] timeout must be at most 24 days, not '2147484'\n", 2},
        {"command = cat\ntimeout = 25d\n", "p.ini:4: [s] key 'timeout' = '25d': not a duration", 2},
        {"command = cat\ntimeout = 600h\n", "p.ini:1: [s] timeout must be at most 24 days, not '600h'\n", 2},
        {"command = echo 'open\n", "command \"echo 'open\": a single quote (') is not closed", 2},
        {"command = echo \"open\n", "a double quote (\") is not closed", 2},
        {"command =\n", "the command is empty", 2},
        {"framing = nul\n", "p.ini:1: [s] exec:run requires 'command' (the program and its "
                          "arguments, split as sh does but run without a shell), and the section "
                          "does not set it\n", 2},
        {"commmand = cat\n", "did you mean 'command'", 2},
        {"command = cat\nshare_cpu = both\n",
         "p.ini:4: [s] key 'share_cpu' = 'both': not yes or no (nor true/false, on/off, 1/0)\n", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        host_run r;
        run_stage(&r, cases[i].keys, "a\n");
        cr_expect_eq(r.status, cases[i].status, "%s: status %d, stderr: %s", cases[i].keys,
                     r.status, r.err);
        cr_expect(strstr(r.err, cases[i].want), "%s: stderr lacks \"%s\":\n%s", cases[i].keys,
                  cases[i].want, r.err);
        host_run_free(&r);
    }
}

Test(exec, per_item_program_that_exits_early_crashes_the_stage)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\ncommand = %s -x 2\n", echo_cmd());
    run_stage(&r, keys, "a\nb\nc\nd\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "-x 2\" exited with status 0 before replying to item 'c'; ending the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 while processing item 3 (a plugin "
                       "ended the process); the pipeline is stopped");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(exec, per_item_truncated_length32_reply_is_reported)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\nframing = length32\ncommand = %s -f length32\n",
             echo_cmd());
    run_stage(&r, keys, "a\ngarbage\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "exited with status 0 before replying to item 'garbage' (its reply stops "
                       "after 7 bytes); ending the stage\n");
    host_run_free(&r);
}

Test(exec, stream_output_ending_inside_a_length32_frame_is_reported)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "framing = length32\ncommand = %s -f length32\n", echo_cmd());
    run_stage(&r, keys, "a\ngarbage\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "-f length32\" ends inside a length32 frame (7 bytes left over); ending "
                       "the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 in fini (a plugin ended the process)");
    host_run_free(&r);
}

Test(exec, per_item_extra_reply_after_the_last_item_is_reported)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\ncommand = %s\n", echo_cmd());
    run_stage(&r, keys, "a\ntwice\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "'\" wrote 6 bytes after its last reply; ending the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 in fini (a plugin ended the process)");
    host_run_free(&r);
}

Test(exec, stream_program_that_stops_reading_fails_the_item)
{
    /* Far more input than a pipe holds: head has long exited when the
     * stage writes the rest. */
    char *in = numbers(1, 100000);
    host_run r;
    run_stage(&r, "command = head -n 1\n", in);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "conveyor-host: s: error: 'head -n 1' exited with status 0 before the end "
                       "of its input, at item '");
    assert_err_has(&r, "this item and every later one fail\n");
    /* Items go to the program in batches: the one that met the closed pipe
     * was written by process() (a full batch) or by flush(). */
    cr_assert(strstr(r.err, "(process returned -32)") || strstr(r.err, "flush failed (returned -32)"),
              "stderr: %s", r.err);
    host_run_free(&r);

    /* With on_error = skip what it wrote still comes out, and the rest is
     * skipped and counted. */
    run_stage(&r, "command = head -n 1\non_error = skip\n", in);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "1\n");
    assert_err_has(&r, "failed items skipped\n");
    host_run_free(&r);
    free(in);
}

Test(exec, stream_program_with_a_failing_status_at_the_end_crashes_the_stage)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "command = %s -e 3\n", echo_cmd());
    run_stage(&r, keys, "a\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "-e 3\" exited with status 3 at the end of its input; ending the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 in fini (a plugin ended the process); the pipeline is stopped");
    host_run_free(&r);

    run_stage(&r, "shell = yes\ncommand = kill -SEGV $$\n", "");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "'kill -SEGV $$' was killed by SIGSEGV at the end of its input");
    host_run_free(&r);
}

/* --- timeouts and restarts --------------------------------------------------------- */

Test(exec, per_item_reply_past_its_timeout_is_killed_and_reported)
{
    char keys[4200];
    host_run r;
    snprintf(keys, sizeof keys, "reply = per-item\ntimeout = 2s\ncommand = %s\n", echo_cmd());
    run_stage(&r, keys, "a\nhang\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "'\" did not reply to item 'hang' within timeout = 2s; killed it, ending the "
                       "stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 while processing item 2 (a plugin ended "
                       "the process); the pipeline is stopped");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(exec, per_item_timeout_with_restart_retries_the_item_on_a_new_program)
{
    char *marker = write_file("hung-once", ""), keys[8400];
    host_run r;
    unlink(marker);
    snprintf(keys, sizeof keys, "reply = per-item\ntimeout = 2s\nrestart = on-failure\n"
             "command = %s -o '%s'\n", echo_cmd(), marker);
    char ini[8600];
    snprintf(ini, sizeof ini, "[pipeline]\ntransport = ring\n[s]\nplugin = exec:run\n%s", keys);
    run_text(&r, ini, "a\nhang\nb\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "a\nhang\nb\n");
    assert_err_has(&r, "did not reply to item 'hang' within timeout = 2s; killed it");
    assert_err_has(&r, "stage 's' exited with status 1 while processing item 2; restarting it "
                       "(1 of 5 in a row)");
    assert_err_has(&r, "1 stage restart during the run");
    host_run_free(&r);
    free(marker);
}

Test(exec, per_item_program_killed_mid_run_is_restarted_and_nothing_lost)
{
    char *marker = write_file("died-once", ""), ini[8600];
    char *in = numbers(1, 60);
    host_run r;
    unlink(marker);
    /* Item 30 is "die": the program kills itself with SIGKILL the first
     * time it sees it. */
    char *p = strstr(in, "\n30\n");
    char *input = malloc(strlen(in) + 8);
    size_t head = (size_t)(p - in) + 1;
    memcpy(input, in, head);
    strcpy(input + head, "die\n");
    strcat(input, p + 4);
    snprintf(ini, sizeof ini, "[pipeline]\ntransport = ring\n[s]\nplugin = exec:run\n"
             "reply = per-item\nrestart = on-failure\ncommand = %s -o '%s'\n"
             "[t]\nplugin = text:identity\n", echo_cmd(), marker);
    run_text(&r, ini, input);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, input, "every item exactly once, in order");
    assert_err_has(&r, "'\" was killed by SIGKILL before replying to item 'die'; ending the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 while processing item 30; restarting it");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(input);
    free(in);
    free(marker);
}

Test(exec, stream_program_that_neither_reads_nor_writes_times_out)
{
    /* sleep reads nothing: once the pipe to it is full, the input waits. */
    char *in = numbers(1, 100000);
    host_run r;
    run_stage(&r, "command = sleep 60\ntimeout = 1s\n", in);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "conveyor-host: s: error: 'sleep 60' neither read its input nor wrote "
                       "output for timeout = 1s, at item '");
    assert_err_has(&r, "stage 's' exited with status 1 while processing item");
    host_run_free(&r);
    free(in);
}

Test(exec, stream_program_that_does_not_end_after_its_input_times_out)
{
    host_run r;
    /* sleep keeps the output open: no end of it ever comes. */
    run_stage(&r, "shell = yes\ntimeout = 1s\ncommand = cat; sleep 60\n", "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    assert_err_has(&r, "conveyor-host: s: error: 'cat; sleep 60' wrote nothing for timeout = 1s "
                       "after the end of its input; killed it, ending the stage\n");
    assert_err_has(&r, "stage 's' exited with status 1 in fini (a plugin ended the process)");
    host_run_free(&r);
}

/* --- the examples ------------------------------------------------------------------- */

/* Runs examples/NAME from the top of the source tree, as its comment says,
 * and compares with examples/EXPECTED. */
static void check_example(const char *name, const char *expected)
{
    const char *src = env_or("CONVEYOR_SRCDIR", ".");
    char ini[4200], exp_path[4200];
    host_run r;
    cr_assert_eq(chdir(src), 0, "cd %s", src);
    snprintf(ini, sizeof ini, "examples/%s", name);
    snprintf(exp_path, sizeof exp_path, "examples/%s", expected);
    char *want = read_file(exp_path, NULL);
    cr_assert_not_null(want, "%s", exp_path);
    host_run_ini(&r, ini, NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, want);
    host_run_free(&r);
    free(want);
}

Test(exec, shell_filter_example)
{
    check_example("shell-filter.ini", "shell-filter.expected");
}

Test(exec, python_stage_example)
{
    if (system("python3 -c 'pass' >/dev/null 2>&1") != 0)
        cr_skip_test("python3 is not installed");
    check_example("python-stage.ini", "python-stage.expected");
}
