/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_abi.c - the plugin ABI end to end: conveyor_forward,
 * conveyor_emit_begin/commit (1.1; built in the channel itself where the
 * item has one destination, in scratch memory otherwise) and their misuse;
 * the stage stride (1.2): stages longer than the host's are stepped over,
 * shorter than 1.0's refused; the same for parameter specs (param_size);
 * modules built for 1.0 and 1.1 still running.
 */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conveyor/host.h>
#include "harness.h"

static char *ini(const char *text)
{
    return write_file("p.ini", text);
}

static void run_ok(const char *text, const char *in, const char *want)
{
    host_run r;
    char *path = ini(text);
    host_run_ini(&r, path, in);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, want);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(abi, forward_passes_items_and_is_refused_outside_process)
{
    run_ok("[f]\nplugin = testplug:forward\n", "a\n\nccc\n", "a\n\nccc\nforward=-22\n");
}

Test(abi, emit_begin_builds_in_place_on_one_channel)
{
    run_ok("[r]\nplugin = testplug:reverse\n", "abc\nxy\n\n", "cba\nyx\n\n");
}

Test(abi, emit_begin_uses_scratch_before_a_replicate)
{
    /* Two destinations: the item is built aside, then sent to both. */
    run_ok("[r]\nplugin = testplug:reverse\n[fork]\ntype = replicate\n"
           "[a]\nplugin = text:identity\ninput = fork\n[b]\nplugin = text:upper\ninput = fork\n"
           "[j]\ntype = join\ninput = a, b\norder = concat\n",
           "abc\nxy\n", "cba\nyx\nCBA\nYX\n");
}

Test(abi, emit_begin_large_item_travels_in_pieces)
{
    /* 600 KiB: more than a quarter of a ring, so it is built in scratch and
     * sent in fragments; the bytes must arrive whole and reversed. */
    enum { N = 600 * 1024 };
    char *in = malloc(N + 2);
    char *want = malloc(N + 2);
    for (size_t i = 0; i < N; i++)
        in[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < N; i++)
        want[i] = in[N - 1 - i];
    in[N] = want[N] = '\n';
    in[N + 1] = want[N + 1] = '\0';
    run_ok("[r]\nplugin = testplug:reverse\n[i]\nplugin = text:identity\n", in, want);
    free(in);
    free(want);
}

Test(abi, uncommitted_item_fails_the_stage)
{
    host_run r;
    char *path = ini("[u]\nplugin = testplug:uncommitted\n");
    host_run_ini(&r, path, "a\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "begun (conveyor_emit_begin) but not committed, at item 1"),
              "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(abi, module_built_for_abi_1_0_still_runs)
{
    run_ok("[old]\nplugin = abi10:identity\n[new]\nplugin = testplug:forward\n",
           "x\ny\n", "x\ny\nforward=-22\n");
}

Test(abi, module_built_for_abi_1_1_still_runs)
{
    run_ok("[old]\nplugin = abi11:identity\n[older]\nplugin = abi10:identity\n", "x\n\nyz\n",
           "x\n\nyz\n");
}

/* Runs INI (a file with LINE the plugin line of its only problem) and
 * checks that the host exits with STATUS, starting nothing, and that its
 * standard error is exactly "conveyor-host: PATH:LINE: " then WHY. */
static void check_refused(const char *text, int status, int line, const char *why)
{
    host_run r;
    char *path = ini(text);
    char want[8192];
    host_run_ini(&r, path, "a\n");
    snprintf(want, sizeof want, "conveyor-host: %s:%d: %s\n", path, line, why);
    cr_assert_eq(r.status, status, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(abi, longer_stages_are_stepped_over_by_their_declared_size)
{
    /* Both stages, and the init, fini and params of the second, are read
     * at the module's stride, past 16 bytes the host does not know. */
    run_ok("[a]\nplugin = wide_stage:identity\n[b]\nplugin = wide_stage:upper\nsuffix = !\n",
           "ab\n\ncd\n", "AB!\n!\nCD!\nend\n");
}

Test(abi, longer_stages_keep_their_params_checked)
{
    check_refused("[b]\nplugin = wide_stage:upper\nsufix = !\n", CONVEYOR_EXIT_CONFIG, 3,
                  "[b] 'sufix' is not a parameter of wide_stage:upper (did you mean 'suffix'?); "
                  "it takes: suffix");
    check_refused("[a]\nplugin = wide_stage:identity\nsuffix = !\n", CONVEYOR_EXIT_CONFIG, 3,
                  "[a] 'suffix' is not a parameter of wide_stage:identity (it takes none)");
}

Test(abi, longer_stages_are_named_in_suggestions)
{
    char why[8192];
    const char *dir = env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins");
    snprintf(why, sizeof why,
             "[b] plugin = wide_stage:zzzzzz: module 'wide_stage' (%s/wide_stage.la) has no stage "
             "'zzzzzz'; it has: identity, upper",
             dir);
    check_refused("[b]\nplugin = wide_stage:zzzzzz\n", CONVEYOR_EXIT_PLUGIN, 2, why);
    snprintf(why, sizeof why,
             "[b] plugin = wide_stage:uper: module 'wide_stage' (%s/wide_stage.la) has no stage "
             "'uper' (did you mean 'upper'?)",
             dir);
    check_refused("[b]\nplugin = wide_stage:uper\n", CONVEYOR_EXIT_PLUGIN, 2, why);
}

Test(abi, longer_stages_are_listed)
{
    const char *args[] = {"--list-plugins", NULL};
    char want[8192];
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "\nwide_stage 1.0 (%s/wide_stage.la)\n"
             "  %-24s %s\n"
             "  %-24s %s\n"
             "      %-20s %s\n\n",
             env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), "wide_stage:identity",
             "passes items on", "wide_stage:upper", "upper-cases items", "suffix",
             "appended to every item");
    cr_assert(strstr(r.out, want), "output: %s\nwanted: %s", r.out, want);
    host_run_free(&r);
}

Test(abi, stages_shorter_than_abi_1_0_are_refused)
{
    char why[8192];
    snprintf(why, sizeof why,
             "[s] plugin = narrow_stage:identity: %s/narrow_stage.la: conveyor_module_v1 declares "
             "stages of %zu bytes, fewer than the %zu of plugin ABI 1.0 (a corrupt or hand-made "
             "descriptor)",
             env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), offsetof(conveyor_stage, fini),
             offsetof(conveyor_stage, params) + sizeof(void *)); /* 1.0's stage ended at params */
    check_refused("[pipeline]\n\n[s]\nplugin = narrow_stage:identity\n", CONVEYOR_EXIT_PLUGIN, 4,
                  why);
}

Test(abi, uncommitted_item_in_fini_fails_the_stage)
{
    host_run r;
    char *path = ini("[u]\nplugin = testplug:uncommitted_fini\n");
    host_run_ini(&r, path, "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "fini returned with an item begun (conveyor_emit_begin) but not committed"),
              "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

/* --- the parameter spec's stride (param_size, 1.2) ------------------------ */

Test(abi, params_of_abi_1_0_are_read_by_the_spec_of_1_0)
{
    /* Both keys are known, and neither has a default or is required: a
     * host stepping by its own spec would miss 'second' and take its name
     * for the default of 'first'. */
    run_ok("[s]\nplugin = params10:echo\nsecond = 2\n", "a\n", "first=(null),second=2\na\n");
    check_refused("[s]\nplugin = params10:echo\nthird = 3\n", CONVEYOR_EXIT_CONFIG, 3,
                  "[s] 'third' is not a parameter of params10:echo (first, second)");
}

Test(abi, longer_param_specs_are_stepped_over_by_their_declared_size)
{
    /* The default of 'third' is unquoted like a value in pipeline.ini. */
    run_ok("[w]\nplugin = wide_param:echo\nsecond = \" x \"\n", "a\n",
           "first=one,second= x ,third= 3; \na\n");
    check_refused("[w]\nplugin = wide_param:echo\nfirst = 1\n", CONVEYOR_EXIT_CONFIG, 1,
                  "[w] wide_param:echo requires 'second' (echoed at start), and the section does "
                  "not set it");
}

Test(abi, param_specs_are_listed_by_their_stride)
{
    const char *args[] = {"--list-plugins", "wide_param", NULL};
    char want[8192];
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "wide_param 1.0 (%s/wide_param.la)\n"
             "  %-24s %s\n      %-20s %s\n      %-20s %s\n      %-20s %s\n\n",
             env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), "wide_param:echo",
             "emits its parameters at start", "first", "echoed at start (default: one)", "second",
             "echoed at start (required)", "third", "echoed at start (default: \" 3; \")");
    cr_assert_str_eq(r.out, want);
    host_run_free(&r);

    const char *old[] = {"--list-plugins", "params10", NULL};
    host_run_args(&r, NULL, 0, old);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "params10 1.0 (%s/params10.la)\n"
             "  %-24s %s\n      %-20s %s\n      %-20s %s\n\n",
             env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), "params10:echo",
             "emits its parameters at start", "first", "echoed at start", "second",
             "echoed at start");
    cr_assert_str_eq(r.out, want);
    host_run_free(&r);
}

Test(abi, param_specs_shorter_than_abi_1_0_are_refused)
{
    char why[8192];
    snprintf(why, sizeof why,
             "[s] plugin = narrow_param:identity: %s/narrow_param.la: conveyor_module_v1 declares "
             "parameter specs of %zu bytes, fewer than the %zu of plugin ABI 1.0 (a corrupt or "
             "hand-made descriptor)",
             env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), sizeof(const char *),
             2 * sizeof(const char *)); /* 1.0's spec: name and summary */
    check_refused("[s]\nplugin = narrow_param:identity\n", CONVEYOR_EXIT_PLUGIN, 2, why);
}
