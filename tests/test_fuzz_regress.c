/* SPDX-License-Identifier: MIT */
/*
 * test_fuzz_regress.c - what the fuzz targets (fuzz/) found, kept as tests.
 *
 * Every file under tests/data/fuzz/config/ and tests/data/fuzz/framing/ is
 * replayed through the very code of its fuzz target (compiled in without
 * libFuzzer), which aborts on a broken promise and, under
 * --enable-sanitizers, on any memory error or leak.  Each finding also gets
 * a test of the outcome it must have once fixed.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/config.h"
#include "load/plan.h"
#include "fuzz.h"

/* Replays every file of tests/data/fuzz/TARGET through ONE; returns how
 * many there were. */
static size_t replay_dir(const char *target, int (*one)(const uint8_t *, size_t))
{
    const char *data = getenv("CONVEYOR_TEST_DATA");
    char dir[4096];
    size_t count = 0;
    struct dirent *e;
    DIR *d;

    cr_assert_not_null(data, "CONVEYOR_TEST_DATA is not set (run through make check)");
    snprintf(dir, sizeof dir, "%s/fuzz/%s", data, target);
    d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char path[8192];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, got;
        do {
            if (len == cap) {
                cap = cap ? cap * 2 : 4096;
                buf = realloc(buf, cap);
                cr_assert_not_null(buf);
            }
            got = fread(buf + len, 1, cap - len, f);
            len += got;
        } while (got > 0);
        cr_assert_eq(ferror(f), 0, "cannot read %s", path);
        fclose(f);
        /* Says which input it was if the target aborts on it. */
        fprintf(stderr, "replaying %s\n", path);
        cr_assert_eq(one(buf, len), 0);
        free(buf);
        count++;
    }
    closedir(d);
    return count;
}

Test(fuzz_regress, config_inputs, .timeout = 60)
{
    cr_assert_gt(replay_dir("config", cv_fuzz_config_one), 0, "no inputs in tests/data/fuzz/config");
}

Test(fuzz_regress, framing_inputs, .timeout = 60)
{
    cr_assert_gt(replay_dir("framing", cv_fuzz_framing_one), 0,
                 "no inputs in tests/data/fuzz/framing");
}

/* TEXT is a valid file whose graph cv_plan_build must refuse, with
 * "fuzz.ini:LINE: ..." and no plan. */
static void expect_plan_refused(const char *text)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    cv_plan *pl = (cv_plan *)&pl;

    cr_assert_eq(cv_config_load_string("fuzz.ini", text, &cfg, err, sizeof err), 0,
                 "the file itself was refused: %s", err);
    int rc = cv_plan_build(cfg, &pl, err, sizeof err);
    size_t nchans = rc == 0 && pl ? pl->nchans : 0;
    if (rc == 0)
        cv_plan_free(pl);
    cv_config_free(cfg);
    cr_assert_eq(rc, -EINVAL, "accepted a pipeline of %zu channels (rc %d)", nchans, rc);
    cr_assert_null(pl);
    cr_assert_eq(strncmp(err, "fuzz.ini:", 9), 0, "message without FILE:LINE: '%s'", err);
}

/* Finding (fuzz_config, out of memory / timeout): replicas feeding replicas
 * get a channel for every pair, so two stages of replicas = 1024 compiled to
 * 1,050,624 channels in a 66-byte file (minutes under ASan, then the runtime
 * would try to create them all).  A plan that large must be refused. */
Test(fuzz_regress, replicas_feeding_replicas_are_bounded, .timeout = 30)
{
    expect_plan_refused("[a]\nplugin = m:a\nreplicas = 1024\n"
                        "[b]\nplugin = m:b\nreplicas = 1024\n");
}

/* Same finding, other shape: a producer gets one channel per path, so each
 * replicate whose branches are joined again doubles the channels: 20 such
 * diamonds in a row (2.5 KB) are 2^20 channels, and compiling them never
 * ended (the merge sort of the sink's inputs is quadratic). */
Test(fuzz_regress, chained_diamonds_are_bounded, .timeout = 30)
{
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "[pipeline]\n");

    for (int i = 0; i < 20; i++) {
        n += (size_t)snprintf(text + n, sizeof text - n, "[f%d]\ntype = replicate\n", i);
        if (i > 0)
            n += (size_t)snprintf(text + n, sizeof text - n, "input = j%d\n", i - 1);
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "[a%d]\ntype = pipe\ninput = f%d\n"
                              "[b%d]\ntype = pipe\ninput = f%d\n"
                              "[j%d]\ntype = join\ninput = a%d, b%d\n",
                              i, i, i, i, i, i, i);
        cr_assert_lt(n, sizeof text);
    }
    snprintf(text + n, sizeof text - n, "[end]\nplugin = m:e\n");
    expect_plan_refused(text);
}

/* Finding (fuzz_config, heap-buffer-overflow in mark_ordered, plan.c): the
 * work list of processes to mark for order = source had room for one entry
 * per process, but a process was pushed once per channel leading from it to
 * a process being marked, before it was marked seen.  Here the join's six
 * channels come from three replicas (two each, one per branch): a valid
 * pipeline, whose every channel carries source order. */
Test(fuzz_regress, order_source_after_replicas_and_fork, .timeout = 30)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    cv_plan *pl = NULL;

    cr_assert_eq(cv_config_load_string("fuzz.ini",
                                       "[e]\nplugin = m:e\nreplicas = 64\n"
                                       "[fork]\ntype = replicate\n"
                                       "[a]\ntype = pipe\ninput = fork\n"
                                       "[b]\ntype = pipe\ninput = fork\n"
                                       "[j]\ntype = join\ninput = a, b\norder = source\n",
                                       &cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cv_plan_build(cfg, &pl, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pl->nprocs, 66);           /* source, e[0..63], sink */
    cr_assert_eq(pl->nchans, 64 + 128);     /* source -> e[i], e[i] -> sink twice */
    for (size_t c = 0; c < pl->nchans; c++)
        cr_assert_eq(pl->chans[c].ordered, 1, "channel %zu is not ordered", c);
    for (size_t p = 1; p < pl->nprocs; p++)
        cr_assert_eq(pl->procs[p].order, CV_ORDER_SOURCE, "%s does not merge in source order",
                     pl->procs[p].label);
    cr_assert_eq(pl->procs[pl->nprocs - 1].ninputs, 128);
    cv_plan_free(pl);
    cv_config_free(cfg);
}
