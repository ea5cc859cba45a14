/*
 * test_e2e_abi.c - plugin ABI 1.1 end to end: conveyor_forward,
 * conveyor_emit_begin/commit (built in the channel itself where the item has
 * one destination, in scratch memory otherwise), their misuse, and a module
 * built for ABI 1.0 still running on this host.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
