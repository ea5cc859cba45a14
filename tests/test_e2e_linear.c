/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_linear.c - linear pipelines end to end: the real conveyor-host,
 * real INI files, exact output, exit status, messages and /dev/shm.
 *
 * Every successful run is also expected to say nothing on standard error at
 * the default verbosity but its closing summary ("done in ..."), and to
 * leave no segment of its host in /dev/shm.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static char *example(const char *name)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", env_or("CONVEYOR_EXAMPLES", "examples"), name);
    return p;
}

/* A run that must have succeeded quietly and cleaned up: nothing on
 * standard error but the summary of a complete run. */
static void assert_clean_success(const host_run *r)
{
    cr_assert_eq(r->status, 0, "status %d, stderr: %s", r->status, r->err);
    char *msgs = messages_of(r->err);
    cr_assert_str_eq(msgs, "", "unexpected messages: %s", r->err);
    free(msgs);
    cr_assert(strncmp(r->err, "conveyor-host: done in ", 23) == 0, "no summary: %s", r->err);
    cr_assert_eq(shm_left(r->pid), 0, "segments of host %d left in /dev/shm", (int)r->pid);
}

/* Runs a one-stage pipeline PLUGIN (with extra KEYS lines) on IN and
 * checks the output is exactly WANT. */
static void check_one_stage(const char *plugin, const char *keys, const char *in,
                            const char *want)
{
    char ini[1024];
    host_run r;

    snprintf(ini, sizeof ini, "[pipeline]\n\n[s]\nplugin = %s\n%s", plugin, keys);
    run_text(&r, ini, in);
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, want, "%s on '%s'", plugin, in);
    host_run_free(&r);
}

/* Appends a length32 frame of DATA to BUF at *LEN. */
static void frame32(unsigned char *buf, size_t *len, const void *data, size_t n)
{
    buf[(*len)++] = (unsigned char)n;
    buf[(*len)++] = (unsigned char)(n >> 8);
    buf[(*len)++] = (unsigned char)(n >> 16);
    buf[(*len)++] = (unsigned char)(n >> 24);
    memcpy(buf + *len, data, n);
    *len += n;
}

/* --- the examples ------------------------------------------------------- */

Test(linear, quickstart_example_prints_expected_output)
{
    host_run r;
    char *ini = example("quickstart.ini"), *exp_path = example("quickstart.expected");
    char *expected = read_file(exp_path, NULL);
    cr_assert_not_null(expected);
    host_run_ini(&r, ini, NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, expected);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
    free(exp_path);
    free(expected);
}

Test(linear, seed_shared_memory_example_passes_item_through)
{
    host_run r;
    char *ini = example("shared-memory.ini");
    host_run_ini(&r, ini, "abc\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "abc\n");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

/* As the Python original printed what it found, cleanup logs the bytes at
 * verbosity info: the three processes really shared one segment.  -v adds
 * nothing to the summary: it is the one of the default verbosity. */
Test(linear, seed_shared_memory_example_logs_bytes_when_verbose)
{
    host_run r;
    char *ini = example("shared-memory.ini");
    const char *args[] = {"-v", "-c", ini, NULL};
    host_run_args(&r, "abc\n", 4, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "abc\n");
    cr_assert(strstr(r.err, "conveyor-host: cleanup: shared memory starts with 44 11 22 33\n"),
              "stderr: %s", r.err);
    char *sum = summary_masked(r.err);
    cr_assert_str_eq(sum, "conveyor-host: done in T s: 1 item read, 1 written, R items/s\n"
                          "conveyor-host:   worker1: 1 in, 1 out, 0 failed, 0 restarts\n"
                          "conveyor-host:   worker2: 1 in, 1 out, 0 failed, 0 restarts\n"
                          "conveyor-host:   cleanup: 1 in, 1 out, 0 failed, 0 restarts\n",
                     "stderr: %s", r.err);
    free(sum);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(ini);
}

/* --- the text and math stages ------------------------------------------- */

Test(linear, text_identity)
{
    check_one_stage("text:identity", "", "one\ntwo\nthree\n", "one\ntwo\nthree\n");
}

Test(linear, text_upper_and_lower_are_ascii_only)
{
    check_one_stage("text:upper", "", "Hello, World 42\nmixed\xc3\xa9z\n",
                    "HELLO, WORLD 42\nMIXED\xc3\xa9Z\n");
    check_one_stage("text:lower", "", "Hello, World 42\nABC\n", "hello, world 42\nabc\n");
}

Test(linear, text_grep_keeps_matches_and_inverts)
{
    const char *in = "wash the shirts\ndry the towels\nfold the shirts\nwashing\n";
    check_one_stage("text:grep", "pattern = ^(wash|dry)\n", in,
                    "wash the shirts\ndry the towels\nwashing\n");
    check_one_stage("text:grep", "pattern = shirts$\ninvert = yes\n", in,
                    "dry the towels\nwashing\n");
}

Test(linear, text_prefix_quoted_keeps_trailing_space)
{
    check_one_stage("text:prefix", "text = \"> \"\n", "a\nb\n", "> a\n> b\n");
    check_one_stage("text:prefix", "text = #\n", "a\n", "#a\n");
}

Test(linear, text_count_and_sort_emit_from_fini)
{
    check_one_stage("text:count", "", "x\ny\nz\n", "3\n");
    check_one_stage("text:sort", "", "pear\napple\nfig\napple\nBanana\n",
                    "Banana\napple\napple\nfig\npear\n");
}

Test(linear, math_sqrt_cube_add)
{
    check_one_stage("math:sqrt", "", "16\n2\n0\n", "4\n1.414213562\n0\n");
    check_one_stage("math:cube", "", "3\n-2\n16\n", "27\n-8\n4096\n");
    check_one_stage("math:add", "value = 1.5\n", "1\n-1.5\n 40 \n", "2.5\n0\n41.5\n");
}

Test(linear, four_text_stages_in_a_row)
{
    host_run r;
    run_text(&r,
             "[pipeline]\n"
             "[keep]\nplugin = text:grep\npattern = o\n"
             "[up]\nplugin = text:upper\n"
             "[sorted]\nplugin = text:sort\n"
             "[label]\nplugin = text:prefix\ntext = \"- \"\n",
             "two\nthree\none\nfour\nsix\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "- FOUR\n- ONE\n- TWO\n");
    host_run_free(&r);
}

/* The Python Conveyor README's chain: sqrt twice, then cube. */
Test(linear, math_chain_sqrt_sqrt_cube)
{
    host_run r;
    run_text(&r,
             "[pipeline]\n[a]\nplugin = math:sqrt\n[b]\nplugin = math:sqrt\n"
             "[c]\nplugin = math:cube\n[d]\nplugin = math:add\nvalue = -1\n",
             "16\n81\n1\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "7\n26\n0\n");
    host_run_free(&r);
}

/* --- framing ------------------------------------------------------------ */

Test(linear, empty_input_gives_no_output)
{
    check_one_stage("text:upper", "", "", "");
}

Test(linear, empty_input_still_runs_fini)
{
    check_one_stage("text:count", "", "", "0\n");
    check_one_stage("testplug:bookends", "", "", "init\nfini\n");
}

Test(linear, empty_items_are_kept)
{
    check_one_stage("text:upper", "", "a\n\n\nb\n\n", "A\n\n\nB\n\n");
    check_one_stage("text:count", "", "\n\n\n", "3\n");
}

/* The reader takes a last line without its newline as an item; the
 * writer always terminates items, so the output gains the newline. */
Test(linear, last_line_without_newline_is_an_item_and_gets_terminated)
{
    check_one_stage("text:upper", "", "a\nb", "A\nB\n");
    check_one_stage("text:count", "", "a\nb", "2\n");
    check_one_stage("text:identity", "", "lonely", "lonely\n");
}

Test(linear, nul_framing_in_and_out)
{
    static const char in[] = "ab\0\0c\nd\0";         /* "ab", "", "c\nd" */
    static const char want[] = "AB\0\0C\nD\0";
    host_run r;
    run_bytes(&r, "[pipeline]\nframing = nul\n[s]\nplugin = text:upper\n", in, sizeof in - 1);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, sizeof want - 1, "got %zu bytes", r.outlen);
    cr_assert(memcmp(r.out, want, sizeof want - 1) == 0);
    host_run_free(&r);

    /* An unterminated last item gets its NUL. */
    run_bytes(&r, "[pipeline]\nframing = nul\n[s]\nplugin = text:count\n", "x\0y", 3);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, 2);
    cr_assert(memcmp(r.out, "2\0", 2) == 0);
    host_run_free(&r);
}

Test(linear, length32_framing_in_and_out)
{
    unsigned char in[64], want[64];
    size_t inlen = 0, wantlen = 0;
    host_run r;

    frame32(in, &inlen, "a\nb", 3);
    frame32(in, &inlen, "", 0);
    frame32(in, &inlen, "x\0y", 3);
    frame32(want, &wantlen, "A\nB", 3);
    frame32(want, &wantlen, "", 0);
    frame32(want, &wantlen, "X\0Y", 3);
    run_bytes(&r, "[pipeline]\nframing = length32\n[s]\nplugin = text:upper\n", in, inlen);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, wantlen, "got %zu bytes", r.outlen);
    cr_assert(memcmp(r.out, want, wantlen) == 0);
    host_run_free(&r);
}

/* input and output name files relative to the INI's folder, not to the
 * host's working directory. */
Test(linear, input_and_output_files_relative_to_the_ini)
{
    char sub[4200], ini[4300], outp[4300];
    host_run r;

    snprintf(sub, sizeof sub, "%s/sub", test_dir());
    cr_assert_eq(mkdir(sub, 0755), 0);
    free(write_file("sub/in.txt", "b\na\nc\n"));
    free(write_file("data.txt", "z\n"));
    snprintf(ini, sizeof ini, "%s/p.ini", sub);
    FILE *f = fopen(ini, "w");
    cr_assert_not_null(f);
    fputs("[pipeline]\ninput = in.txt\noutput = out.txt\n[s]\nplugin = text:sort\n", f);
    fclose(f);
    host_run_ini(&r, ini, "ignored\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "", "output went to stdout");
    snprintf(outp, sizeof outp, "%s/out.txt", sub);
    char *got = read_file(outp, NULL);
    cr_assert_not_null(got, "%s was not written", outp);
    cr_assert_str_eq(got, "a\nb\nc\n");
    free(got);
    host_run_free(&r);

    /* ".." works the same way, and an existing output is replaced. */
    f = fopen(ini, "w");
    cr_assert_not_null(f);
    fputs("[pipeline]\ninput = ../data.txt\noutput = out.txt\n[s]\nplugin = text:upper\n", f);
    fclose(f);
    host_run_ini(&r, ini, NULL);
    assert_clean_success(&r);
    got = read_file(outp, NULL);
    cr_assert_str_eq(got, "Z\n");
    free(got);
    host_run_free(&r);
}

/* --- stages that emit more, fewer, or at the ends ------------------------ */

Test(linear, twice_emits_every_item_twice)
{
    check_one_stage("testplug:twice", "", "a\nb\n\n", "a\na\nb\nb\n\n\n");
}

Test(linear, drop_emits_nothing_or_every_nth)
{
    check_one_stage("testplug:drop", "", "a\nb\nc\n", "");
    check_one_stage("testplug:drop", "keep = 2\n", "1\n2\n3\n4\n5\n", "2\n4\n");
}

Test(linear, twice_then_drop_then_count)
{
    host_run r;
    run_text(&r,
             "[pipeline]\n[t]\nplugin = testplug:twice\n[d]\nplugin = testplug:drop\nkeep = 3\n"
             "[c]\nplugin = testplug:count\n",
             "1\n2\n3\n4\n5\n6\n7\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "count=4\n");   /* 14 items, every third kept */
    host_run_free(&r);
}

Test(linear, fini_emits_after_every_item)
{
    check_one_stage("testplug:count", "", "a\nb\nc\n", "count=3\n");
    check_one_stage("testplug:bookends", "", "a\nb\n", "init\na\nb\nfini\n");
}

/* A downstream fini sees what an upstream fini emitted: end of stream
 * travels behind the last item. */
Test(linear, bookends_then_sort_then_bookends)
{
    host_run r;
    run_text(&r,
             "[pipeline]\n[b1]\nplugin = testplug:bookends\n[s]\nplugin = text:sort\n"
             "[b2]\nplugin = testplug:bookends\n[n]\nplugin = testplug:count\n",
             "m\nz\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "count=6\n");
    host_run_free(&r);

    run_text(&r,
             "[pipeline]\n[b1]\nplugin = testplug:bookends\n[s]\nplugin = text:sort\n"
             "[b2]\nplugin = testplug:bookends\n",
             "m\nz\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "init\nfini\ninit\nm\nz\nfini\n");
    host_run_free(&r);
}

/* --- volume --------------------------------------------------------------- */

Test(linear, hundred_thousand_items_through_three_stages, .timeout = 30)
{
    enum { N = 100000 };
    char *in = malloc((size_t)N * 16), *want = malloc((size_t)N * 20);
    size_t inlen = 0, wantlen = 0;
    host_run r;

    for (int i = 0; i < N; i++) {
        inlen += (size_t)sprintf(in + inlen, "item-%d\n", i);
        wantlen += (size_t)sprintf(want + wantlen, "> ITEM-%d\n", i);
    }
    run_bytes(&r,
              "[pipeline]\n[a]\nplugin = text:identity\n[b]\nplugin = text:upper\n"
              "[c]\nplugin = text:prefix\ntext = \"> \"\n",
              in, inlen);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, wantlen, "got %zu bytes, want %zu", r.outlen, wantlen);
    cr_assert(memcmp(r.out, want, wantlen) == 0, "output differs from the input's order/content");
    host_run_free(&r);
    free(in);
    free(want);
}

Test(linear, four_mib_item_with_length32, .timeout = 30)
{
    const size_t n = (size_t)4 << 20;
    unsigned char *in = malloc(n + 4);
    size_t inlen = 0;
    unsigned char *item = malloc(n);
    host_run r;

    /* Every byte value, newlines and NULs included, in a pattern that does
     * not repeat at any power-of-two stride. */
    for (size_t i = 0; i < n; i++)
        item[i] = (unsigned char)((i * 131 + i / 4093) & 0xff);
    frame32(in, &inlen, item, n);
    run_bytes(&r,
              "[pipeline]\nframing = length32\n[a]\nplugin = text:identity\n"
              "[b]\nplugin = text:identity\n",
              in, inlen);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, inlen, "got %zu bytes", r.outlen);
    cr_assert(memcmp(r.out, in, inlen) == 0);
    host_run_free(&r);
    free(in);
    free(item);
}

/* A stage may emit an item far larger than what it got. */
Test(linear, big_emits_four_mib_items, .timeout = 30)
{
    const size_t n = (size_t)4 << 20;
    unsigned char in[16];
    size_t inlen = 0;
    host_run r;

    frame32(in, &inlen, "a", 1);
    frame32(in, &inlen, "b", 1);
    run_bytes(&r, "[pipeline]\nframing = length32\n[big]\nplugin = testplug:big\nbytes = 4M\n",
              in, inlen);
    assert_clean_success(&r);
    cr_assert_eq(r.outlen, 2 * (n + 4), "got %zu bytes", r.outlen);
    for (int k = 0; k < 2; k++) {
        const unsigned char *f = (const unsigned char *)r.out + (size_t)k * (n + 4);
        uint32_t len = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 |
                       (uint32_t)f[3] << 24;
        cr_assert_eq(len, n);
        size_t i;
        for (i = 0; i < n && f[4 + i] == 'x'; i++)
            ;
        cr_assert_eq(i, n, "frame %d: byte %zu is not 'x'", k, i);
    }
    host_run_free(&r);
}

/* --- what a stage is given ----------------------------------------------- */

Test(linear, params_reach_the_plugin)
{
    check_one_stage("testplug:params", "alpha = 1\nbeta = two words ; a comment\n", "x\n",
                    "alpha=1,beta=two words\nx\n");
    check_one_stage("testplug:params", "beta = b\n", "", "alpha=(null),beta=b\n");
}

Test(linear, stage_name_and_replica_reach_the_plugin)
{
    host_run r;
    run_text(&r,
             "[pipeline]\n[first-tag]\nplugin = testplug:tag\n[second.tag]\nplugin = testplug:tag\n",
             "a\n\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "second.tag[0]:first-tag[0]:a\nsecond.tag[0]:first-tag[0]:\n");
    host_run_free(&r);
}

/* Checks LINE is "NAME|NAME" with NAME = "/conveyor.PID.<16 hex digits>". */
static void check_shm_name_line(const char *line, size_t len, pid_t pid)
{
    char prefix[64];
    int plen = snprintf(prefix, sizeof prefix, "/conveyor.%d.", (int)pid);
    const char *bar = memchr(line, '|', len);

    cr_assert_not_null(bar, "no '|' in '%.*s'", (int)len, line);
    size_t half = (size_t)(bar - line);
    cr_assert_eq(len, 2 * half + 1, "'%.*s'", (int)len, line);
    cr_assert(memcmp(line, bar + 1, half) == 0,
              "CONVEYOR_SHM_NAME and conveyor_shm_name() differ: '%.*s'", (int)len, line);
    cr_assert(half > (size_t)plen && strncmp(line, prefix, (size_t)plen) == 0,
              "'%.*s' does not start with %s", (int)half, line, prefix);
    cr_assert_eq(half - (size_t)plen, 16, "'%.*s'", (int)half, line);
    for (size_t i = (size_t)plen; i < half; i++)
        cr_assert(isxdigit((unsigned char)line[i]), "'%.*s'", (int)half, line);
}

Test(linear, shm_name_in_env_and_api_agree)
{
    host_run r;
    run_text(&r, "[pipeline]\nshared_memory = 4K\n[e]\nplugin = testplug:echo_env\n", "1\n2\n");
    assert_clean_success(&r);
    char *nl = strchr(r.out, '\n');
    cr_assert_not_null(nl, "output: %s", r.out);
    size_t len = (size_t)(nl - r.out);
    check_shm_name_line(r.out, len, r.pid);
    /* Both items saw the same segment. */
    cr_assert_eq(r.outlen, 2 * (len + 1));
    cr_assert(memcmp(r.out, nl + 1, len + 1) == 0, "output: %s", r.out);
    host_run_free(&r);
}

Test(linear, no_shared_memory_means_no_name)
{
    check_one_stage("testplug:echo_env", "", "x\n", "(null)|(null)\n");
}

/* A name the caller's environment happens to hold is not passed on to the
 * stages of a pipeline without a segment: they would attach to a stranger's. */
Test(linear, no_shared_memory_hides_the_callers_name)
{
    setenv("CONVEYOR_SHM_NAME", "/conveyor.1.someone-elses", 1);
    check_one_stage("testplug:echo_env", "", "x\n", "(null)|(null)\n");
}

/* Under --enable-sanitizers ASan's SEGV handler would turn the fault into
 * a report and an exit; what is tested is the kernel's signal. */
static void let_segv_kill(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%shandle_segv=0", old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", buf, 1);
}

Test(linear, read_only_segment_makes_writer_die_of_sigsegv)
{
    host_run r;
    let_segv_kill();
    run_text(&r,
             "[pipeline]\nshared_memory = 16\nshared_memory_mode = ro\n"
             "[w]\nplugin = testplug:shmwrite\n",
             "a\nb\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'w' was killed by SIGSEGV"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "while processing item 1"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);

    /* The same stage in read-write mode is fine. */
    run_text(&r, "[pipeline]\nshared_memory = 16\nshared_memory_mode = rw\n"
                 "[w]\nplugin = testplug:shmwrite\n",
             "a\nb\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "a\nb\n");
    host_run_free(&r);
}

/* A guard page follows the segment: a stage writing past its end crashes
 * and is named, instead of scribbling on memory that happened to be next. */
Test(linear, writing_past_the_segment_end_is_a_crash)
{
    host_run r;
    let_segv_kill();
    run_text(&r, "[pipeline]\nshared_memory = 1M\n[w]\nplugin = testplug:shmwrite\n"
                 "past_end = yes\n", "a\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'w' was killed by SIGSEGV (Segmentation fault) while "
                            "processing item 1"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}

/* shared_memory_file fills the segment before any stage starts: the seed's
 * cleanup stage alone finds 44 11 22 33 there, with no worker stages. */
Test(linear, shared_memory_file_loads_the_segment)
{
    static const unsigned char good[] = {44, 11, 22, 33};
    static const unsigned char bad[] = {1, 2, 3, 4};
    host_run r;

    free(write_bytes("good.bin", good, sizeof good));
    free(write_bytes("bad.bin", bad, sizeof bad));
    run_text(&r, "[pipeline]\nshared_memory_file = good.bin\n[check]\nplugin = shm_demo:cleanup\n",
             "abc\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "abc\n");
    host_run_free(&r);

    /* Larger segment than the file; read-only is enough for a reader. */
    run_text(&r,
             "[pipeline]\nshared_memory = 1M\nshared_memory_file = good.bin\n"
             "shared_memory_mode = ro\n[check]\nplugin = shm_demo:cleanup\n",
             "x\ny\n");
    assert_clean_success(&r);
    cr_assert_str_eq(r.out, "x\ny\n");
    host_run_free(&r);

    /* The check is real: other bytes fail the item. */
    run_text(&r, "[pipeline]\nshared_memory_file = bad.bin\n[check]\nplugin = shm_demo:cleanup\n",
             "abc\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "shared memory starts with 1 2 3 4, expected 44 11 22 33"),
              "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'check' failed item 1"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
}
