/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_source.c - source stages end to end (type = source: a plugin's
 * produce() feeds the pipeline): sources that end, several sources merged,
 * replicas, a stop by SIGTERM, a blocked source interrupted, crashes under
 * restart = on-failure, produce() failures under on_error, exec as a
 * source, and the configuration mistakes around them.  The stages are the
 * test module tests/plugins/sources.c.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* "PREFIX1\n" .. "PREFIXn\n" */
static char *numbered(const char *prefix, int from, int to)
{
    size_t cap = (size_t)(to - from + 2) * (strlen(prefix) + 24), used = 0;
    char *s = malloc(cap);
    s[0] = '\0';
    for (int i = from; i <= to; i++)
        used += (size_t)snprintf(s + used, cap - used, "%s%d\n", prefix, i);
    return s;
}

static void assert_clean(const host_run *r)
{
    cr_assert_eq(r->status, 0, "status %d, stderr: %s", r->status, r->err);
    char *msgs = messages_of(r->err);
    cr_assert_str_eq(msgs, "", "unexpected messages: %s", r->err);
    free(msgs);
    cr_assert_eq(shm_left(r->pid), 0, "host %d left segments in /dev/shm", (int)r->pid);
}

/* The configuration is refused with exit status STATUS (2: the file, 3:
 * its plugins) and exactly WANT: "LINE: what". */
static void assert_refused(int status, const char *ini, const char *want)
{
    host_run r;
    run_text(&r, ini, NULL);
    cr_assert_eq(r.status, status, "status %d, stderr: %s", r.status, r.err);
    char line[1024];
    snprintf(line, sizeof line, "conveyor-host: %s/p.ini:%s\n", test_dir(), want);
    cr_assert_str_eq(r.err, line);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);
}

Test(source, a_source_that_ends_feeds_the_stages)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 5\nprefix = a\n"
                 "[up]\nplugin = text:upper\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "A1\nA2\nA3\nA4\nA5\n");
    char *sum = summary_masked(r.err);
    cr_assert_str_eq(sum, "conveyor-host: done in T s: 5 items read, 5 written, R items/s\n"
                          "conveyor-host:   src: 5 in, 5 out, 0 failed, 0 restarts\n"
                          "conveyor-host:   up: 5 in, 5 out, 0 failed, 0 restarts\n");
    free(sum);
    host_run_free(&r);
}

Test(source, standard_input_is_not_read)
{
    host_run r;
    /* Whatever comes on stdin is not an item: the source is the input. */
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 2\n", "x\ny\n");
    assert_clean(&r);
    cr_assert_str_eq(r.out, "1\n2\n");
    host_run_free(&r);
}

Test(source, a_source_straight_to_the_output_with_init_and_fini_items)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 3\nbookends = yes\n",
             NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "init\n1\n2\n3\nfini\n");
    host_run_free(&r);
}

Test(source, a_stage_that_emits_nothing_is_a_sink)
{
    host_run r;
    /* The pattern of a terminal stage writing to a database or a socket:
     * it emits nothing, so the pipeline's output is empty. */
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 100\n"
                 "[db]\nplugin = testplug:drop\nkeep = 0\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "");
    char *sum = summary_masked(r.err);
    cr_assert_str_eq(sum, "conveyor-host: done in T s: 100 items read, 0 written, R items/s\n"
                          "conveyor-host:   src: 100 in, 100 out, 0 failed, 0 restarts\n"
                          "conveyor-host:   db: 100 in, 0 out, 0 failed, 0 restarts\n");
    free(sum);
    host_run_free(&r);
}

Test(source, two_sources_merged_in_source_order_take_turns)
{
    host_run r;
    run_text(&r, "[a]\ntype = source\nplugin = sources:numbers\nprefix = a\ncount = 2\n"
                 "[b]\ntype = source\nplugin = sources:numbers\nprefix = b\ncount = 4\n"
                 "[j]\ntype = join\ninput = a, b\norder = source\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "a1\nb1\na2\nb2\nb3\nb4\n");
    host_run_free(&r);
}

Test(source, two_sources_concatenated)
{
    host_run r;
    run_text(&r, "[a]\ntype = source\nplugin = sources:numbers\nprefix = a\ncount = 3\n"
                 "[b]\ntype = source\nplugin = sources:numbers\nprefix = b\ncount = 2\n"
                 "[j]\ntype = join\ninput = b, a\norder = concat\n"
                 "[up]\nplugin = text:upper\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "B1\nB2\nA1\nA2\nA3\n");
    host_run_free(&r);
}

Test(source, two_sources_into_one_stage_lose_nothing)
{
    host_run r;
    run_text(&r, "[a]\ntype = source\nplugin = sources:numbers\nprefix = a\ncount = 3000\n"
                 "[b]\ntype = source\nplugin = sources:numbers\nprefix = b\ncount = 3000\n"
                 "[c]\nplugin = testplug:count\ninput = a, b\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "count=6000\n");
    host_run_free(&r);
}

Test(source, replicas_number_their_items_apart)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 3\ntag = yes\n"
                 "prefix = s\nreplicas = 2\norder = source\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "s[0]:1\ns[1]:1\ns[0]:2\ns[1]:2\ns[0]:3\ns[1]:3\n");
    host_run_free(&r);
}

Test(source, items_of_a_source_keep_their_order_through_replicas)
{
    host_run r;
    char *want = numbered("", 1, 5000);
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 5000\nper_call = 7\n"
                 "[f]\nplugin = text:upper\nreplicas = 3\norder = source\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, want);
    free(want);
    host_run_free(&r);
}

/* A source that runs until stopped, stopped by SIG: the prefix 1..k is
 * delivered, in order, nothing twice, and the run ends with 128 + SIG. */
static void stop_mid_stream(const char *keys, int sig)
{
    host_run r;
    char *ini = write_file("p.ini", keys);
    const char *args[] = {"-c", ini, NULL};
    char *before = NULL, *errbuf = NULL;
    size_t blen = 0, elen = 0;

    host_start(&r, args);
    read_until(r.out_fd, &before, &blen, "20\n");
    cr_assert_eq(kill(r.pid, sig), 0);
    read_until(r.err_fd, &errbuf, &elen, "finishing the items in flight");
    host_finish(&r, NULL, 0, 20);
    cr_assert_eq(r.status, 128 + sig, "status %d, stderr: %s%s", r.status, errbuf, r.err);
    size_t total = blen + r.outlen;
    char *out = malloc(total + 1);
    memcpy(out, before, blen);
    memcpy(out + blen, r.out, r.outlen);
    out[total] = '\0';
    int n = 0;
    for (const char *p = out; *p; n++) {
        char want[32];
        int len = snprintf(want, sizeof want, "%d\n", n + 1);
        cr_assert(strncmp(p, want, (size_t)len) == 0, "item %d is not %d: %s", n + 1, n + 1, out);
        p += len;
    }
    cr_assert(n >= 20, "only %d items", n);
    cr_assert_eq(shm_left(r.pid), 0);
    free(out);
    free(before);
    free(errbuf);
    free(ini);
    host_run_free(&r);
}

Test(source, sigterm_stops_a_source_the_prefix_is_delivered_once)
{
    stop_mid_stream("[src]\ntype = source\nplugin = sources:numbers\ncount = 0\nusec = 500\n"
                    "[f]\nplugin = text:upper\n", SIGTERM);
}

Test(source, sigint_interrupts_a_source_blocked_in_a_system_call)
{
    /* After item 30 the source blocks in poll() with no time limit: only
     * the stop request (a signal without SA_RESTART) gets it out. */
    stop_mid_stream("[src]\ntype = source\nplugin = sources:numbers\ncount = 30\nblock = yes\n",
                    SIGINT);
}

Test(source, a_crashed_source_is_restarted_and_loses_nothing)
{
    host_run r;
    char *want = numbered("", 1, 3000);
    run_text(&r, "[pipeline]\ntransport = ring\nshared_memory = 4K\n"
                 "[src]\ntype = source\nplugin = sources:numbers\ncount = 3000\n"
                 "crash_at = 1234\nrestart = on-failure\n[f]\nplugin = text:upper\n", NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, want);
    /* strstr: under valgrind the killed process's report comes first. */
    cr_assert(strstr(r.err, "conveyor-host: warning: stage 'src' was killed by SIGKILL in "
                            "produce; restarting it (1 of 5 in a row)\n"
                            "conveyor-host: warning: 1 stage restart during the run\n"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    free(want);
    host_run_free(&r);
}

Test(source, replicated_sources_restarted_in_order_lose_nothing)
{
    host_run r;
    run_text(&r, "[pipeline]\ntransport = ring\nshared_memory = 4K\n"
                 "[src]\ntype = source\nplugin = sources:numbers\ncount = 2000\ntag = yes\n"
                 "crash_at = 700\nrestart = on-failure\nreplicas = 2\norder = source\n"
                 "[c]\nplugin = testplug:count\n", NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "count=4000\n");
    cr_assert(strstr(r.err, "2 stage restarts during the run"), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(source, a_source_crashing_every_time_stops_the_pipeline)
{
    host_run r;
    /* Without the segment the crash marker is lost with the process: it
     * crashes in its first call every time. */
    run_text(&r, "[pipeline]\ntransport = ring\n"
                 "[src]\ntype = source\nplugin = sources:numbers\ncount = 10\ncrash_at = 1\n"
                 "restart = on-failure\nmax_restarts = 2\n", NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: error: stage 'src' was killed by SIGKILL 2 times "
                            "in a row in produce; the pipeline is stopped\n"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(source, a_failed_produce_stops_the_pipeline_under_on_error_fail)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 5\nfail_at = 3\n"
                 "[f]\nplugin = text:upper\n", NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    char *msgs = messages_of(r.err);
    cr_assert_str_eq(msgs, "conveyor-host: src: error: stage 'src': produce failed "
                           "(Input/output error, returned -5)\n"
                           "conveyor-host: error: the pipeline is stopped: stage 'src' failed\n");
    free(msgs);
    host_run_free(&r);
}

Test(source, a_failed_produce_is_skipped_under_on_error_skip)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:numbers\ncount = 5\nfail_at = 3\n"
                 "on_error = skip\n", NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "1\n2\n3\n4\n5\n");
    char *msgs = messages_of(r.err);
    cr_assert_str_eq(msgs, "conveyor-host: src: warning: stage 'src': produce failed "
                           "(Input/output error); 1 failure so far, going on as on_error says\n"
                           "conveyor-host: src: warning: stage 'src': 1 failed produce call "
                           "skipped\n");
    free(msgs);
    host_run_free(&r);
}

Test(source, produce_returning_an_unknown_code_is_a_failure)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = sources:bad\n", NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: src: error: stage 'src': produce returned 7 (it "
                            "returns CONVEYOR_MORE, CONVEYOR_END or a negative error code)\n"),
              "stderr: %s", r.err);
    host_run_free(&r);
}

Test(source, exec_runs_a_program_as_the_source)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = exec:run\ncommand = printf 'a\\nb\\nc'\n"
                 "[up]\nplugin = text:upper\n", NULL);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "A\nB\nC\n");
    host_run_free(&r);
}

Test(source, exec_source_that_fails_is_named)
{
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = exec:run\nshell = yes\n"
                 "command = echo one; exit 4\n", NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: src: error: 'echo one; exit 4' exited with status 4 "
                            "(a source's program must exit with status 0); ending the stage\n"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(source, exec_source_stopped_by_sigterm_delivers_what_it_wrote)
{
    stop_mid_stream("[src]\ntype = source\nplugin = exec:run\nshell = yes\n"
                    "command = seq 1 25; exec sleep 60\n", SIGTERM);
}

/* --- configuration mistakes ------------------------------------------------ */

Test(source_config, a_source_has_no_input)
{
    assert_refused(2, "[src]\ntype = source\nplugin = sources:numbers\ninput = up\n"
                   "[up]\nplugin = text:upper\n",
                   "4: input is only for stages that read items (a source makes its own) "
                   "([src] is a source)");
}

Test(source_config, input_is_not_read_with_sources)
{
    assert_refused(2, "[pipeline]\ninput = data.txt\n[src]\ntype = source\nplugin = sources:numbers\n",
                   "2: [pipeline] input is never read: this pipeline's items come from its "
                   "source stages ([src] at line 3)");
}

Test(source_config, a_stage_reading_the_input_beside_sources)
{
    assert_refused(2, "[up]\nplugin = text:upper\n[src]\ntype = source\nplugin = sources:numbers\n",
                   "1: [up] reads the pipeline's input, but this pipeline's items come from its "
                   "source stages ([src] at line 3): name one in input =");
}

Test(source_config, a_processor_plugin_as_a_source)
{
    assert_refused(3, "[src]\ntype = source\nplugin = text:upper\n",
                   "3: [src] is a source, but text:upper has no produce function: it is a "
                   "processor (drop type = source)");
}

Test(source_config, a_source_plugin_as_a_processor)
{
    assert_refused(3, "[src]\nplugin = sources:numbers\n",
                   "2: [src] plugin = sources:numbers is a source (it has produce and no "
                   "process): write type = source in its section");
}

Test(source_config, a_source_needs_a_plugin)
{
    assert_refused(2, "[src]\ntype = source\n", "1: stage [src] has no plugin = MODULE:STAGE");
}

Test(source_config, restart_of_a_source_needs_the_ring)
{
    assert_refused(2, "[pipeline]\ntransport = pipe\n[src]\ntype = source\n"
                   "plugin = sources:numbers\nrestart = on-failure\n",
                   "6: [src] restart = on-failure needs transport = ring (a pipe cannot give a "
                   "restarted stage back the item it held)");
}

/* --- the completion watermark ---------------------------------------------- */

/* The source (acks = C) checks after every produce() call that every item
 * it emitted up to conveyor_completed() was counted C times by the
 * sources:finish stages, and emits "completed=N" from fini, which runs
 * once everything it emitted is finished. */
static void check_completion(const char *ini, const char *want_tail, size_t want_items)
{
    host_run r;
    run_text(&r, ini, NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    size_t lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, want_items, "%zu lines: %s", lines, r.out);
    cr_assert(strstr(r.out, want_tail), "no %s in %.300s", want_tail, r.out);
    cr_assert_null(strstr(r.err, "not finished"), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(completion, never_ahead_of_a_filter)
{
    /* 3000 items, every third passes: 1000 lines and completed=3000. */
    check_completion("[pipeline]\nshared_memory = 1M\n"
                     "[src]\ntype = source\nplugin = sources:numbers\ncount = 3000\nacks = 1\n"
                     "[f]\nplugin = sources:finish\nkeep = 3\n",
                     "\ncompleted=3000\n", 1001);
}

Test(completion, never_ahead_of_a_balance_over_replicas)
{
    check_completion("[pipeline]\nshared_memory = 1M\n"
                     "[src]\ntype = source\nplugin = sources:numbers\ncount = 5000\nacks = 1\n"
                     "per_call = 7\n"
                     "[f]\nplugin = sources:finish\nreplicas = 3\n"
                     "[s]\nplugin = testplug:slow\nusec = 20\n",
                     "completed=5000\n", 5001);
}

Test(completion, never_ahead_of_a_replicate_and_a_join)
{
    /* Both branches count every item; one drops them all. */
    check_completion("[pipeline]\nshared_memory = 1M\n"
                     "[src]\ntype = source\nplugin = sources:numbers\ncount = 4000\nacks = 2\n"
                     "[r]\ntype = replicate\n"
                     "[a]\nplugin = sources:finish\ninput = r\n"
                     "[b]\nplugin = sources:finish\nkeep = 0\ninput = r\n"
                     "[j]\ntype = join\ninput = a, b\n",
                     "completed=4000\n", 4002);
}

Test(completion, two_sources_each_get_their_own)
{
    /* Source process 0 numbers 1, 3, 5 ...; 1 numbers 2, 4, 6 ...: each
     * one's last item is number 2 * 3000 - 1 and 2 * 3000. */
    check_completion("[pipeline]\nshared_memory = 1M\n"
                     "[a]\ntype = source\nplugin = sources:numbers\ncount = 3000\nacks = 1\n"
                     "[b]\ntype = source\nplugin = sources:numbers\ncount = 3000\nacks = 1\n"
                     "per_call = 5\nslot = 1\n"
                     "[f]\nplugin = sources:finish\ninput = a, b\nreplicas = 2\n",
                     "completed=5999\n", 6002);
}
