/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_flush.c - a stage's flush callback end to end (testplug:batch
 * keeps items and emits them from flush): called when the input has
 * nothing waiting, so a trickle of items is not held back; before fini;
 * after every item under restart = on-failure; its failures under
 * on_error; and order = source holding after a stage that emits late.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void assert_clean(const host_run *r)
{
    cr_assert_eq(r->status, 0, "status %d, stderr: %s", r->status, r->err);
    char *msgs = messages_of(r->err);
    cr_assert_str_eq(msgs, "", "unexpected messages: %s", r->err);
    free(msgs);
    cr_assert_eq(shm_left(r->pid), 0);
}

Test(flush, a_batch_is_emitted_when_the_input_has_nothing_more)
{
    host_run r;
    char *ini = write_file("p.ini", "[b]\nplugin = testplug:batch\n");
    const char *args[] = {"-c", ini, NULL};
    char *out = NULL;
    size_t len = 0;

    host_start(&r, args);
    /* The input stays open: without flush, "a" would wait for more. */
    cr_assert_eq(write(r.in_fd, "a\n", 2), 2);
    read_until(r.out_fd, &out, &len, "A\n");
    cr_assert_eq(write(r.in_fd, "b\nc\n", 4), 4);
    read_until(r.out_fd, &out, &len, "C\n");
    cr_assert_str_eq(out, "A\nB\nC\n");
    host_finish(&r, NULL, 0, 20);
    assert_clean(&r);
    cr_assert_str_eq(r.out, "fini\n");
    free(out);
    free(ini);
    host_run_free(&r);
}

Test(flush, everything_kept_is_flushed_before_fini)
{
    host_run r;
    run_text(&r, "[b]\nplugin = testplug:batch\nmax = 3\n[u]\nplugin = text:upper\n",
             "a\nb\nc\nd\ne\n");
    assert_clean(&r);
    cr_assert_str_eq(r.out, "A\nB\nC\nD\nE\nFINI\n");
    host_run_free(&r);
}

/* What a batching stage emits carries the number of the last item of its
 * batch, and its watermarks stay below its first kept item: an order =
 * source join of the batching branch [b] and an item-by-item branch [u]
 * then puts every batch ending with item L right after u's item L - 1,
 * before u's item L.  A watermark run ahead of the kept items would let
 * the join emit u's later items first. */
Test(flush, order_source_holds_after_stages_that_emit_from_flush)
{
    host_run r;
    size_t n = 5000, cap = n * 8, used = 0;
    char *in = malloc(cap);
    for (size_t i = 1; i <= n; i++)
        used += (size_t)snprintf(in + used, cap - used, "x%zu\n", i);
    run_text(&r, "[r]\ntype = replicate\n"
                 "[b]\nplugin = testplug:batch\nmax = 50\ninput = r\n"
                 "[u]\nplugin = text:prefix\ntext = u:\ninput = r\n"
                 "[j]\ntype = join\ninput = b, u\norder = source\n", in);
    assert_clean(&r);
    long maxu = 0, expect_b = 1, groups = 0;
    int in_group = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != 'X' && in_group) {
            /* A batch ending with item L came right after u's item L - 1. */
            cr_assert_eq(maxu, expect_b - 2, "a batch ending with item %ld came after u's "
                         "item %ld", expect_b - 1, maxu);
            in_group = 0;
        }
        if (strncmp(line, "u:x", 3) == 0) {
            long s = atol(line + 3);
            cr_assert_eq(s, maxu + 1, "u's items out of order at %s", line);
            maxu = s;
        } else if (line[0] == 'X') {
            long s = atol(line + 1);
            cr_assert_eq(s, expect_b, "b's items out of order at %s", line);
            expect_b++;
            if (!in_group)
                groups++;
            in_group = 1;
        } else {
            cr_assert_str_eq(line, "fini");
        }
    }
    cr_assert_eq(maxu, (long)n);
    cr_assert_eq(expect_b, (long)n + 1);
    cr_assert_geq(groups, 100);
    free(in);
    host_run_free(&r);
}

Test(flush, a_failed_flush_stops_the_pipeline_under_on_error_fail)
{
    host_run r;
    run_text(&r, "[b]\nplugin = testplug:batch\nfail_flush = 1\n", "a\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: b: error: stage 'b': flush failed (returned -5)\n"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

Test(flush, a_failed_flush_is_counted_and_skipped_under_on_error_skip)
{
    host_run r;
    run_text(&r, "[b]\nplugin = testplug:batch\nfail_flush = 1\non_error = skip\n",
             "a\nb\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    /* The only flush (before fini) failed: its items are gone, said so. */
    cr_assert_str_eq(r.out, "fini\n");
    char *msgs = messages_of(r.err);
    cr_assert_str_eq(msgs, "conveyor-host: b: warning: stage 'b': flush failed (returned -5); "
                           "going on as on_error says\n");
    free(msgs);
    char *sum = summary_masked(r.err);
    cr_assert(strstr(sum, "  b: 2 in, 1 out, 1 failed, 0 restarts\n"), "summary: %s", sum);
    free(sum);
    host_run_free(&r);
}

Test(flush, under_restart_every_item_is_flushed_before_it_is_acknowledged)
{
    host_run r;
    /* The process is killed holding item 3 (kept, not flushed): items 1
     * and 2 were flushed before they were acknowledged, so the restarted
     * process starts at item 3 and nothing is lost or repeated. */
    run_text(&r, "[pipeline]\ntransport = ring\nshared_memory = 64\n"
                 "[b]\nplugin = testplug:batch\nrestart = on-failure\ncrash_at = 3\n",
             "a\nb\nc\nd\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "A\nB\nC\nD\nfini\n");
    cr_assert(strstr(r.err, "stage 'b' was killed by SIGKILL while processing item 3; "
                            "restarting it (1 of 5 in a row)"), "stderr: %s", r.err);
    host_run_free(&r);
}
