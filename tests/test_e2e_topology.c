/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_topology.c - forks, joins, pipes and replicas end to end: the
 * real conveyor-host on INI files, asserting the exact output (or the exact
 * multiset where arrival order is free), the exit status, the message of
 * every refused shape and that nothing is left in /dev/shm.
 *
 * The python_conveyor suite ports every scenario of Python Conveyor's own
 * tests (test_pipeline_functionality, test_pipeline_architecture,
 * test_pipes).  Those asserted inside child processes, so they could not
 * fail; here the output comes back to the test and is compared.  Their
 * manipulate/dont_manipulate jobs are testplug:tag stages, which prefix an
 * item with "STAGE[REPLICA]:", so the output says which way it went.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- helpers ------------------------------------------------------------ */

/* A growing string. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static char *sb_take(strbuf *b)
{
    if (!b->s)
        sb_printf(b, "%s", "");
    return b->s;
}

/* "FROM\n...TO\n" counting by 1. */
static char *numbers(unsigned from, unsigned to)
{
    strbuf b = {0};
    for (unsigned i = from; i <= to; i++)
        sb_printf(&b, "%u\n", i);
    return sb_take(&b);
}

/* Splits TEXT (which must end with '\n' unless empty) into lines, in
 * place; returns how many. */
static size_t split_lines(char *text, char ***out)
{
    size_t n = 0, cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        cr_assert_not_null(nl, "the output does not end with a newline: ...%s", p);
        *nl = '\0';
        if (n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = p;
        p = nl + 1;
    }
    *out = lines;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* TEXT's lines sorted bytewise, as a new text: two texts with the same
 * multiset of lines sort the same. */
static char *sorted(const char *text)
{
    char *copy = strdup(text), **lines;
    size_t n = split_lines(copy, &lines);
    qsort(lines, n, sizeof *lines, cmp_str);
    strbuf b = {0};
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, "%s\n", lines[i]);
    free(lines);
    free(copy);
    return sb_take(&b);
}

/* Parses LINE as a whole decimal number in [1, max]; 0 when it is not. */
static unsigned long as_number(const char *line, unsigned long max)
{
    char *end;
    if (!isdigit((unsigned char)line[0]))
        return 0;
    unsigned long v = strtoul(line, &end, 10);
    return *end == '\0' && v <= max ? v : 0;
}

/* The output must hold each of 1..N exactly TIMES times (in any order) and
 * nothing else. */
static void assert_each_number(const char *out, unsigned n, unsigned times)
{
    char *copy = strdup(out), **lines;
    size_t nl = split_lines(copy, &lines);
    unsigned *seen = calloc(n + 1, sizeof *seen);
    for (size_t i = 0; i < nl; i++) {
        unsigned long v = as_number(lines[i], n);
        cr_assert_neq(v, 0, "output line %zu is not one of the input items: '%s'", i + 1,
                      lines[i]);
        seen[v]++;
    }
    for (unsigned v = 1; v <= n; v++)
        cr_assert_eq(seen[v], times, "item %u came out %u times, not %u", v, seen[v], times);
    cr_assert_eq(nl, (size_t)n * times, "%zu lines, not %u", nl, n * times);
    free(seen);
    free(lines);
    free(copy);
}

/* Writes INI into this test's folder and runs it on IN; returns the path. */
static char *run(host_run *r, const char *name, const char *ini, const char *in)
{
    char *path = write_file(name, ini);
    host_run_ini(r, path, in);
    return path;
}

/* The run ended well: exit 0, nothing left in /dev/shm. */
static void assert_ok(const host_run *r)
{
    cr_assert_eq(r->status, 0, "exit status %d, stderr:\n%s", r->status, r->err);
    cr_assert_eq(shm_left(r->pid), 0, "/dev/shm entries left behind");
}

/* Runs INI on IN and compares the output to EXPECTED exactly. */
static void expect_output(const char *ini, const char *in, const char *expected)
{
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);
    cr_assert_str_eq(r.out, expected);
    host_run_free(&r);
}

/* Runs INI on IN and compares the output's lines to EXPECTED's as
 * multisets (arrival order is free). */
static void expect_multiset(const char *ini, const char *in, const char *expected)
{
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);
    char *got = sorted(r.out), *want = sorted(expected);
    cr_assert_str_eq(got, want, "output (unsorted):\n%s", r.out);
    free(got);
    free(want);
    host_run_free(&r);
}

/* INI is refused before anything starts: exit 2, nothing on stdout, and
 * stderr holds "PATH:LINE: MESSAGE". */
static void expect_config_error(const char *ini, int line, const char *message)
{
    host_run r;
    char *path = run(&r, "bad.ini", ini, "x\n");
    char where[8192];
    snprintf(where, sizeof where, "%s:%d: %s", path, line, message);
    cr_assert_eq(r.status, 2, "exit status %d, stderr:\n%s", r.status, r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert(strstr(r.err, where), "expected '%s' in stderr:\n%s", where, r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    free(path);
    host_run_free(&r);
}

static char *example(const char *name)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", env_or("CONVEYOR_EXAMPLES", "examples"), name);
    return p;
}

static void expect_example(const char *ini_name, const char *expected_name)
{
    host_run r;
    char *ini = example(ini_name), *exp_path = example(expected_name);
    char *expected = read_file(exp_path, NULL);
    cr_assert_not_null(expected, "cannot read %s", exp_path);
    host_run_ini(&r, ini, NULL);
    assert_ok(&r);
    cr_assert_str_eq(r.out, expected);
    host_run_free(&r);
    free(ini);
    free(exp_path);
    free(expected);
}

/* ---- Python Conveyor's test_pipeline_functionality ---------------------- */

/* test_pipeline_basic: one processor, one value in, the same value out. */
Test(python_conveyor, pipeline_basic)
{
    expect_output("[finalize]\nplugin = text:identity\n", "3\n", "3\n");
}

/* test_pipeline_single_processor: Processor -> Pipe -> Processor. */
Test(python_conveyor, processor_pipe_processor)
{
    expect_output("[job]\nplugin = math:add\nvalue = 1\n"
                  "[link]\ntype = pipe\n"
                  "[finalize]\nplugin = text:identity\n",
                  "3\n", "4\n");
}

/* test_balancing_forks: the same number of items down every branch.  With
 * round-robin the rotation is strict: branch k gets items k, k+3, ... */
Test(python_conveyor, balancing_fork_round_robin_is_even)
{
    static const char ini[] =
        "[fork]\ntype = balance\npolicy = round-robin\n"
        "[a]\nplugin = testplug:tag\ninput = fork\n"
        "[b]\nplugin = testplug:tag\ninput = fork\n"
        "[c]\nplugin = testplug:tag\ninput = fork\n"
        "[join]\ntype = join\ninput = a, b, c\n"
        "[finalize]\nplugin = text:identity\n";
    char *in = numbers(1, 300);
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);

    char **lines;
    size_t n = split_lines(r.out, &lines);
    unsigned count[3] = {0, 0, 0}, seen[301] = {0};
    for (size_t i = 0; i < n; i++) {
        char branch;
        unsigned item;
        int used = 0;
        cr_assert_eq(sscanf(lines[i], "%c[0]:%u%n", &branch, &item, &used), 2,
                     "unexpected line '%s'", lines[i]);
        cr_assert_eq((size_t)used, strlen(lines[i]), "unexpected line '%s'", lines[i]);
        cr_assert(branch >= 'a' && branch <= 'c' && item >= 1 && item <= 300, "'%s'", lines[i]);
        cr_assert_eq((item - 1) % 3, (unsigned)(branch - 'a'),
                     "round-robin sent item %u to branch %c", item, branch);
        count[branch - 'a']++;
        seen[item]++;
    }
    cr_assert_eq(count[0], 100);
    cr_assert_eq(count[1], 100);
    cr_assert_eq(count[2], 100);
    for (unsigned i = 1; i <= 300; i++)
        cr_assert_eq(seen[i], 1, "item %u came out %u times", i, seen[i]);
    free(lines);
    free(in);
    host_run_free(&r);
}

/* The same with the default policy: not necessarily even, but every item
 * goes down exactly one branch. */
Test(python_conveyor, balancing_fork_least_loaded_sends_each_item_once)
{
    static const char ini[] =
        "[fork]\ntype = balance\n"
        "[a]\nplugin = testplug:tag\ninput = fork\n"
        "[b]\nplugin = testplug:tag\ninput = fork\n"
        "[c]\nplugin = testplug:tag\ninput = fork\n"
        "[join]\ntype = join\ninput = a, b, c\n"
        "[finalize]\nplugin = text:identity\n";
    char *in = numbers(1, 300);
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);
    /* Strip the tags and compare to the input. */
    strbuf b = {0};
    char **lines;
    size_t n = split_lines(r.out, &lines);
    for (size_t i = 0; i < n; i++) {
        cr_assert(strlen(lines[i]) > 5 && strchr("abc", lines[i][0]) &&
                  strncmp(lines[i] + 1, "[0]:", 4) == 0, "unexpected line '%s'", lines[i]);
        sb_printf(&b, "%s\n", lines[i] + 5);
    }
    assert_each_number(sb_take(&b), 300, 1);
    free(b.s);
    free(lines);
    free(in);
    host_run_free(&r);
}

/* test_replicating_forks (the original tested a balancing fork again):
 * every branch gets every item. */
Test(python_conveyor, replicating_fork_sends_every_item_to_every_branch)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[a]\nplugin = testplug:tag\ninput = fork\n"
        "[b]\nplugin = testplug:tag\ninput = fork\n"
        "[c]\nplugin = testplug:tag\ninput = fork\n"
        "[join]\ntype = join\ninput = a, b, c\n"
        "[finalize]\nplugin = text:identity\n";
    char *in = numbers(1, 300);
    strbuf want = {0};
    for (char br = 'a'; br <= 'c'; br++)
        for (unsigned i = 1; i <= 300; i++)
            sb_printf(&want, "%c[0]:%u\n", br, i);
    expect_multiset(ini, in, want.s);
    free(want.s);
    free(in);
}

/* With order = concat the join gives all of a, then all of b, then c. */
Test(python_conveyor, replicating_fork_with_concat_join_is_exact)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[a]\nplugin = testplug:tag\ninput = fork\n"
        "[b]\nplugin = testplug:tag\ninput = fork\n"
        "[c]\nplugin = testplug:tag\ninput = fork\n"
        "[join]\ntype = join\ninput = a, b, c\norder = concat\n"
        "[finalize]\nplugin = text:identity\n";
    char *in = numbers(1, 300);
    strbuf want = {0};
    for (char br = 'a'; br <= 'c'; br++)
        for (unsigned i = 1; i <= 300; i++)
            sb_printf(&want, "%c[0]:%u\n", br, i);
    expect_output(ini, in, want.s);
    free(want.s);
    free(in);
}

/* test_allow_multiple_pipeline_runs: processor -> pipe -> processor ->
 * pipe -> processor, run twice; the second run must not hang. */
Test(python_conveyor, processor_pipe_chain_runs_twice)
{
    static const char ini[] =
        "[first]\nplugin = text:identity\n"
        "[p1]\ntype = pipe\n"
        "[second]\nplugin = text:upper\n"
        "[p2]\ntype = pipe\n"
        "[job]\nplugin = text:prefix\ntext = \"> \"\n";
    host_run r;
    char *path = run(&r, "p.ini", ini, "first\n");
    assert_ok(&r);
    cr_assert_str_eq(r.out, "> FIRST\n");
    host_run_free(&r);
    host_run_ini(&r, path, "second\n");
    assert_ok(&r);
    cr_assert_str_eq(r.out, "> SECOND\n");
    host_run_free(&r);
    free(path);
}

/* test_fork_and_join1: a balance, a pipe on one branch, a replicate after
 * each branch's processor, four processors joined.  Round-robin sends the
 * odd items left (ma) and the even ones right (da). */
static const char fork_and_join_ini[] =
    "[bal]\ntype = balance\npolicy = round-robin\n"
    "[pa]\ntype = pipe\ninput = bal\n"
    "[ma]\nplugin = testplug:tag\ninput = pa\n"
    "[da]\nplugin = testplug:tag\ninput = bal\n"
    "[ra]\ntype = replicate\ninput = ma\n"
    "[rb]\ntype = replicate\ninput = da\n"
    "[w]\nplugin = testplug:tag\ninput = ra\n"
    "[x]\nplugin = testplug:tag\ninput = ra\n"
    "[y]\nplugin = testplug:tag\ninput = rb\n"
    "[z]\nplugin = testplug:tag\ninput = rb\n"
    "[join]\ntype = join\ninput = w, x, y, z\n%s"
    "[count]\nplugin = text:identity\n";

static const char fork_and_join_out[] =
    "w[0]:ma[0]:s1\nx[0]:ma[0]:s1\ny[0]:da[0]:s2\nz[0]:da[0]:s2\n"
    "w[0]:ma[0]:s3\nx[0]:ma[0]:s3\ny[0]:da[0]:s4\nz[0]:da[0]:s4\n";

Test(python_conveyor, fork_and_join_nested_replicates_after_balance)
{
    char ini[2048];
    snprintf(ini, sizeof ini, fork_and_join_ini, "");
    expect_multiset(ini, "s1\ns2\ns3\ns4\n", fork_and_join_out);
}

/* order = source: the copies of one item come out together, in the join's
 * input order, items in input order. */
Test(python_conveyor, fork_and_join_in_source_order)
{
    char ini[2048];
    snprintf(ini, sizeof ini, fork_and_join_ini, "order = source\n");
    expect_output(ini, "s1\ns2\ns3\ns4\n", fork_and_join_out);
}

/* test_open_close / test_automatic_open_close: the README's fork-join with
 * one more pipe and a final processor, over [1, 2] twice and [2, 7, 9]. */
Test(python_conveyor, fork_join_with_pipes_runs_repeatedly)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[root]\nplugin = math:sqrt\ninput = fork\n"
        "[cube]\nplugin = math:cube\ninput = fork\n"
        "[root_again]\nplugin = math:sqrt\ninput = root\n"
        "[pass]\ntype = pipe\ninput = cube\n"
        "[pass_again]\ntype = pipe\ninput = pass\n"
        "[join]\ntype = join\ninput = root_again, pass_again\norder = concat\n"
        "[print]\nplugin = text:identity\n";
    host_run r;
    char *path = run(&r, "p.ini", ini, "1\n2\n");
    for (int round = 0; round < 2; round++) {
        if (round)
            host_run_ini(&r, path, "1\n2\n");
        assert_ok(&r);
        cr_assert_str_eq(r.out, "1\n1.189207115\n1\n8\n");
        host_run_free(&r);
    }
    host_run_ini(&r, path, "2\n7\n9\n");
    assert_ok(&r);
    cr_assert_str_eq(r.out, "1.189207115\n1.626576562\n1.732050808\n8\n343\n729\n");
    host_run_free(&r);
    free(path);
}

/* ---- Python Conveyor's test_pipeline_architecture ----------------------- */

/* test_pipeline_valid_type: Pipeline.add("cookie"). */
Test(python_conveyor, invalid_stage_type)
{
    expect_config_error("[pipeline]\n"
                        "input = -\n"
                        "[cookie]\n"
                        "type = cookie\n",
                        4, "unknown type 'cookie' (use processor, pipe, replicate, balance, join or source)");
}

/* test_disallow_abstract_Fork: there is no plain "fork". */
Test(python_conveyor, abstract_fork_type)
{
    expect_config_error("[f]\n"
                        "type = fork\n"
                        "[a]\nplugin = text:upper\ninput = f\n"
                        "[b]\nplugin = text:upper\ninput = f\n",
                        2, "unknown type 'fork' (use processor, pipe, replicate, balance, join or source)");
}

/* test_pipeline_valid_start: a join cannot come first. */
Test(python_conveyor, join_cannot_start_a_pipeline)
{
    expect_config_error("[join]\n"
                        "type = join\n"
                        "[a]\n"
                        "plugin = text:upper\n",
                        1, "join [join] has 1 input; a join merges two or more (input = a, b)");
}

/* test_pipeline_ambiguity ("partially joining forks"): inputs are named
 * here, so a join of some of a fork's branches is not ambiguous: the join
 * and the other branches are all terminal and all reach the output. */
Test(python_conveyor, partial_join_is_explicit)
{
    static const char ini[] =
        "[job1]\nplugin = testplug:tag\n"
        "[fork]\ntype = replicate\n"
        "[a]\nplugin = testplug:tag\ninput = fork\n"
        "[b]\nplugin = testplug:tag\ninput = fork\n"
        "[c]\nplugin = testplug:tag\ninput = fork\n"
        "[d]\nplugin = testplug:tag\ninput = fork\n"
        "[join]\ntype = join\ninput = b, d\norder = concat\n";
    expect_multiset(ini, "i\n",
                    "a[0]:job1[0]:i\nb[0]:job1[0]:i\nc[0]:job1[0]:i\nd[0]:job1[0]:i\n");
}

/* test_too_many_processors: here a fork has as many outputs as stages name
 * it; what stays ambiguous is a stage read by several without a fork. */
Test(python_conveyor, more_readers_than_a_plain_stage_has)
{
    expect_config_error("[a]\nplugin = text:identity\n"             /* 1-2 */
                        "[b]\nplugin = text:identity\ninput = a\n"  /* 3-5 */
                        "[c]\nplugin = text:identity\ninput = a\n"  /* 6-8 */
                        "[d]\nplugin = text:identity\ninput = a\n", /* 9-11 */
                        8, "[a] is read by more than one stage ([b] at line 5, [c] at line 8); "
                           "put a replicate (every item to each) or a balance (each item to "
                           "one) after it");
}

/* test_processor_pipe_mix: a replicate into a processor and two pipes. */
Test(python_conveyor, processor_pipe_mix)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[manipulate]\nplugin = testplug:tag\ninput = fork\n"
        "[p1]\ntype = pipe\ninput = fork\n"
        "[p2]\ntype = pipe\ninput = fork\n"
        "[join]\ntype = join\ninput = manipulate, p1, p2\n%s"
        "[count]\nplugin = text:identity\n";
    char text[1024];
    snprintf(text, sizeof text, ini, "");
    expect_multiset(text, "string\n", "manipulate[0]:string\nstring\nstring\n");
    snprintf(text, sizeof text, ini, "order = concat\n");
    expect_output(text, "s1\ns2\n", "manipulate[0]:s1\nmanipulate[0]:s2\ns1\ns2\ns1\ns2\n");
}

/* test_fork_pipe_mix: a replicate into a pipe and a balance. */
Test(python_conveyor, fork_pipe_mix)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[p]\ntype = pipe\ninput = fork\n"
        "[bal]\ntype = balance\ninput = fork\npolicy = round-robin\n"
        "[dont]\nplugin = testplug:tag\ninput = p\n"
        "[m1]\nplugin = testplug:tag\ninput = bal\n"
        "[m2]\nplugin = testplug:tag\ninput = bal\n"
        "[join]\ntype = join\ninput = dont, m1, m2\n%s"
        "[count]\nplugin = text:identity\n";
    char text[1024];
    static const char out[] = "dont[0]:s1\nm1[0]:s1\ndont[0]:s2\nm2[0]:s2\n";
    snprintf(text, sizeof text, ini, "");
    expect_multiset(text, "s1\ns2\n", out);
    snprintf(text, sizeof text, ini, "order = source\n");
    expect_output(text, "s1\ns2\n", out);
}

/* test_join_pipe_mix: after a replicate of three, one branch goes through
 * a pipe while the other two are joined; both go through a processor and
 * a final join, then a pipe and a processor. */
Test(python_conveyor, join_pipe_mix)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[d1]\nplugin = testplug:tag\ninput = fork\n"
        "[d2]\nplugin = testplug:tag\ninput = fork\n"
        "[m]\nplugin = testplug:tag\ninput = fork\n"
        "[p]\ntype = pipe\ninput = d1\n"
        "[j1]\ntype = join\ninput = d2, m\n"
        "[d3]\nplugin = testplug:tag\ninput = p\n"
        "[m2]\nplugin = testplug:tag\ninput = j1\n"
        "[j2]\ntype = join\ninput = d3, m2\n%s"
        "[p2]\ntype = pipe\n"
        "[count]\nplugin = text:identity\n";
    char text[1024];
    snprintf(text, sizeof text, ini, "");
    expect_multiset(text, "string\n",
                    "d3[0]:d1[0]:string\nm2[0]:d2[0]:string\nm2[0]:m[0]:string\n");
    /* order = source on the last join upgrades j1's arrival merge in m2. */
    snprintf(text, sizeof text, ini, "order = source\n");
    expect_output(text, "s1\ns2\n",
                  "d3[0]:d1[0]:s1\nm2[0]:d2[0]:s1\nm2[0]:m[0]:s1\n"
                  "d3[0]:d1[0]:s2\nm2[0]:d2[0]:s2\nm2[0]:m[0]:s2\n");
}

/* test_processor_fork_mix, test_processor_join_mix, test_fork_join_mix:
 * Python refused processors, forks and joins side by side after a fork;
 * with named inputs the shape is explicit, so here they run. */
Test(python_conveyor, fork_consumers_of_every_kind)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[job]\nplugin = testplug:tag\ninput = fork\n"
        "[bal]\ntype = balance\ninput = fork\npolicy = round-robin\n"
        "[b1]\nplugin = testplug:tag\ninput = bal\n"
        "[b2]\nplugin = testplug:tag\ninput = bal\n"
        "[q]\nplugin = testplug:tag\ninput = fork\n"
        "[s]\nplugin = testplug:tag\ninput = fork\n"
        "[j]\ntype = join\ninput = q, s\n";
    expect_multiset(ini, "1\n2\n",
                    "job[0]:1\njob[0]:2\nb1[0]:1\nb2[0]:2\nq[0]:1\nq[0]:2\ns[0]:1\ns[0]:2\n");
}

/* ---- Python Conveyor's test_pipes ---------------------------------------- */

/* test_pipes_connect_to_pipes: pipes only is a pipeline with no stage
 * process at all. */
Test(python_conveyor, pipes_connect_to_pipes)
{
    expect_output("[p1]\ntype = pipe\n[p2]\ntype = pipe\n", "a\nb\n", "a\nb\n");
    expect_output("[p1]\ntype = pipe\n[p2]\ntype = pipe\n[up]\nplugin = text:upper\n",
                  "a\nb\n", "A\nB\n");
}

/* test_implicit_pipes: processors one after another need no pipe. */
Test(python_conveyor, implicit_pipes)
{
    expect_output("[a]\nplugin = text:identity\n[b]\nplugin = text:upper\n"
                  "[c]\nplugin = text:prefix\ntext = >\n",
                  "x\ny\n", ">X\n>Y\n");
}

/* ---- refused shapes: exit 2, FILE:LINE:, the names ---------------------- */

Test(topology_errors, join_with_one_input)
{
    expect_config_error("[a]\nplugin = text:upper\n"
                        "[j]\ntype = join\ninput = a\n",
                        5, "join [j] has 1 input; a join merges two or more (input = a, b)");
}

Test(topology_errors, pipe_with_two_inputs)
{
    expect_config_error("[f]\ntype = replicate\n"                      /* 1-2 */
                        "[a]\nplugin = text:upper\ninput = f\n"        /* 3-5 */
                        "[b]\nplugin = text:lower\ninput = f\n"        /* 6-8 */
                        "[p]\ntype = pipe\ninput = a, b\n",            /* 9-11 */
                        11, "pipe [p] has 2 inputs; only a join or a processor reads several "
                            "(put a join before it)");
}

Test(topology_errors, fork_nobody_reads)
{
    expect_config_error("[a]\nplugin = text:upper\n"
                        "[f]\ntype = balance\n",
                        3, "balance [f] has no consumers: no stage names it as input");
}

Test(topology_errors, fork_with_one_consumer)
{
    expect_config_error("[f]\ntype = replicate\n"
                        "[a]\nplugin = text:upper\ninput = f\n",
                        1, "replicate [f] has only one consumer ([a]); a fork needs two or more");
}

Test(topology_errors, stage_read_by_two_without_fork)
{
    expect_config_error("[a]\nplugin = text:upper\n"                   /* 1-2 */
                        "[b]\nplugin = text:lower\n"                   /* 3-4 */
                        "[c]\nplugin = text:lower\ninput = a\n",       /* 5-7 */
                        7, "[a] is read by more than one stage ([b] at line 3, [c] at line 7); "
                           "put a replicate (every item to each) or a balance (each item to "
                           "one) after it");
}

Test(topology_errors, cycle_is_shown)
{
    expect_config_error("[a]\nplugin = text:upper\n"                   /* 1-2 */
                        "[b]\nplugin = text:lower\ninput = a, d\n"     /* 3-5 */
                        "[c]\nplugin = text:lower\n"                   /* 6-7 */
                        "[d]\nplugin = text:lower\n",                  /* 8-9 */
                        5, "the stages form a cycle: b -> c -> d -> b");
}

Test(topology_errors, unknown_input)
{
    expect_config_error("[upper]\nplugin = text:upper\n"
                        "[lower]\nplugin = text:lower\ninput = uper\n",
                        5, "[lower] reads from 'uper', which is not a stage (did you mean 'upper'?)");
}

Test(topology_errors, input_listed_twice)
{
    expect_config_error("[a]\nplugin = text:upper\n"
                        "[b]\nplugin = text:lower\ninput = a, a\n",
                        5, "stage 'a' is listed twice in input of [b]");
}

/* Every stage reads something, so a part the input cannot reach is a
 * cycle, and the message names it. */
Test(topology_errors, stages_not_reached_from_the_input)
{
    expect_config_error("[a]\nplugin = text:upper\n"                   /* 1-2 */
                        "[b]\nplugin = text:lower\ninput = c\n"        /* 3-5 */
                        "[c]\nplugin = text:lower\ninput = b\n",       /* 6-8 */
                        5, "the stages form a cycle: b -> c -> b");
}

Test(topology_errors, replicas_zero)
{
    expect_config_error("[a]\nplugin = text:upper\nreplicas = 0\n",
                        3, "bad value '0' for replicas (use a whole number from 1 to 1024)");
}

Test(topology_errors, source_order_after_concat)
{
    expect_config_error("[f]\ntype = balance\n"                        /* 1-2 */
                        "[a]\nplugin = text:upper\ninput = f\n"        /* 3-5 */
                        "[b]\nplugin = text:lower\ninput = f\n"        /* 6-8 */
                        "[j1]\ntype = join\ninput = a, b\n"            /* 9-11 */
                        "order = concat\n"                             /* 12 */
                        "[m]\nplugin = text:upper\n"                   /* 13-14 */
                        "[g]\ntype = replicate\n"                      /* 15-16 */
                        "[c]\nplugin = text:upper\ninput = g\n"        /* 17-19 */
                        "[d]\nplugin = text:lower\ninput = g\n"        /* 20-22 */
                        "[j2]\ntype = join\ninput = c, d\norder = source\n",
                        12, "[j1] merges with order = concat, but a join after it asks for "
                            "order = source, which cannot be restored after a concat");
}

/* ---- examples and volume -------------------------------------------------- */

Test(topology, readme_fork_join_example)
{
    expect_example("fork-join.ini", "fork-join.expected");
}

Test(topology, replicas_example_in_source_order)
{
    expect_example("replicas.ini", "replicas.expected");
}

/* 100,000 items through 3 replicas, a stage that doubles them and 2
 * replicas: every item comes out exactly twice. */
Test(topology, replicas_twice_replicas_lose_nothing, .timeout = 60)
{
    static const char ini[] =
        "[first]\nplugin = text:identity\nreplicas = 3\n"
        "[double]\nplugin = testplug:twice\n"
        "[last]\nplugin = text:identity\nreplicas = 2\n";
    char *in = numbers(1, 100000);
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);
    assert_each_number(r.out, 100000, 2);
    host_run_free(&r);
    free(in);
}

/* order = source after a balance of two restores the input exactly. */
static void source_order_after_balance(const char *policy, const char *second_branch)
{
    char ini[1024];
    snprintf(ini, sizeof ini,
             "[fork]\ntype = balance\npolicy = %s\n"
             "[a]\nplugin = text:identity\ninput = fork\n"
             "[b]\n%sinput = fork\n"
             "[join]\ntype = join\ninput = a, b\norder = source\n",
             policy, second_branch);
    char *in = numbers(1, 50000);
    expect_output(ini, in, in);
    free(in);
}

Test(topology, source_order_after_round_robin, .timeout = 60)
{
    source_order_after_balance("round-robin", "plugin = text:identity\n");
}

Test(topology, source_order_after_least_loaded, .timeout = 60)
{
    source_order_after_balance("least-loaded", "plugin = text:identity\n");
}

Test(topology, source_order_with_a_slow_branch_least_loaded, .timeout = 60)
{
    source_order_after_balance("least-loaded", "plugin = testplug:slow\nusec = 50\n");
}

Test(topology, source_order_with_a_slow_branch_round_robin, .timeout = 60)
{
    source_order_after_balance("round-robin", "plugin = testplug:slow\nusec = 20\n");
}

/* replicas with order = source on the processor itself. */
Test(topology, replicas_in_source_order, .timeout = 60)
{
    char *in = numbers(1, 50000);
    expect_output("[c]\nplugin = text:identity\nreplicas = 3\norder = source\n", in, in);
    free(in);
}

/* Several outputs per item keep together in source order. */
Test(topology, replicated_doubling_in_source_order, .timeout = 60)
{
    char *in = numbers(1, 20000);
    strbuf want = {0};
    for (unsigned i = 1; i <= 20000; i++)
        sb_printf(&want, "%u\n%u\n", i, i);
    expect_output("[t]\nplugin = testplug:twice\nreplicas = 3\norder = source\n", in, want.s);
    free(want.s);
    free(in);
}

/* order = concat on replicas: all of replica 0's outputs, then replica
 * 1's, then replica 2's, each replica's in the order it made them.  The
 * tags say which replica made a line; the volume is larger than a channel
 * holds, so an arrival merge would interleave the replicas. */
Test(topology, replicas_in_concat_order, .timeout = 60)
{
    char *in = numbers(1, 60000);
    host_run r;
    free(run(&r, "p.ini", "[c]\nplugin = testplug:tag\nreplicas = 3\norder = concat\n", in));
    assert_ok(&r);
    strbuf items = {0};
    char **lines;
    size_t n = split_lines(r.out, &lines);
    unsigned prev_replica = 0, replica, item;
    unsigned long prev_item = 0;
    for (size_t i = 0; i < n; i++) {
        int used = 0;
        cr_assert_eq(sscanf(lines[i], "c[%u]:%u%n", &replica, &item, &used), 2,
                     "unexpected line '%s'", lines[i]);
        cr_assert_eq((size_t)used, strlen(lines[i]), "unexpected line '%s'", lines[i]);
        cr_assert_geq(replica, prev_replica, "line %zu: '%s' after replica %u's items", i + 1,
                      lines[i], prev_replica);
        if (replica != prev_replica)
            prev_item = 0;
        cr_assert_gt(item, prev_item, "line %zu: '%s' after item %lu of the same replica",
                     i + 1, lines[i], prev_item);
        prev_replica = replica;
        prev_item = item;
        sb_printf(&items, "%u\n", item);
    }
    assert_each_number(sb_take(&items), 60000, 1);
    free(items.s);
    free(lines);
    host_run_free(&r);
    free(in);
}

/* A branch that drops items before an order = source join: the join learns
 * from watermarks that the dropped ones will not come. */
static const char drop_ini[] =
    "[fork]\ntype = balance\npolicy = %s\n"
    "[sieve]\nplugin = testplug:drop\nkeep = %u\ninput = fork\n"
    "[b]\nplugin = %s\ninput = fork\n"
    "[join]\ntype = join\ninput = sieve, b\norder = source\n";

Test(topology, dropping_branch_before_source_join, .timeout = 60)
{
    char ini[1024];
    snprintf(ini, sizeof ini, drop_ini, "round-robin", 3u, "text:identity");
    char *in = numbers(1, 30000);
    /* sieve gets the odd items and keeps every third of them: 5, 11, 17... */
    strbuf want = {0};
    for (unsigned i = 1; i <= 30000; i++)
        if (i % 2 == 0 || i % 6 == 5)
            sb_printf(&want, "%u\n", i);
    expect_output(ini, in, want.s);
    free(want.s);
    free(in);
}

Test(topology, branch_dropping_everything_before_source_join, .timeout = 60)
{
    char ini[1024];
    snprintf(ini, sizeof ini, drop_ini, "round-robin", 0u, "text:identity");
    char *in = numbers(1, 30000);
    strbuf want = {0};
    for (unsigned i = 2; i <= 30000; i += 2)
        sb_printf(&want, "%u\n", i);
    expect_output(ini, in, want.s);
    free(want.s);
    free(in);
}

/* Least-loaded: which items the sieve sees is not known in advance, but b
 * tags what it passes, so the count of kept items is. */
Test(topology, dropping_branch_least_loaded, .timeout = 60)
{
    char ini[1024];
    snprintf(ini, sizeof ini, drop_ini, "least-loaded", 3u, "testplug:tag");
    char *in = numbers(1, 30000);
    host_run r;
    free(run(&r, "p.ini", ini, in));
    assert_ok(&r);
    char **lines;
    size_t n = split_lines(r.out, &lines), tagged = 0;
    unsigned long prev = 0;
    for (size_t i = 0; i < n; i++) {
        const char *item = lines[i];
        if (strncmp(item, "b[0]:", 5) == 0) {
            item += 5;
            tagged++;
        }
        unsigned long v = as_number(item, 30000);
        cr_assert_neq(v, 0, "unexpected line '%s'", lines[i]);
        cr_assert_gt(v, prev, "'%s' after %lu: not in source order", lines[i], prev);
        prev = v;
    }
    cr_assert_eq(n - tagged, (30000 - tagged) / 3,
                 "b passed %zu items, so the sieve saw %zu and should keep %zu, not %zu",
                 tagged, 30000 - tagged, (30000 - tagged) / 3, n - tagged);
    free(lines);
    host_run_free(&r);
    free(in);
}

/* concat after a round-robin balance: the join holds back all of b's items
 * (spilling them) until a ends; the source must never block on b. */
Test(topology, concat_after_balance_spills, .timeout = 60)
{
    char *in = numbers(1, 20000);
    strbuf want = {0};
    for (unsigned i = 1; i <= 20000; i += 2)
        sb_printf(&want, "%u\n", i);
    for (unsigned i = 2; i <= 20000; i += 2)
        sb_printf(&want, "%u\n", i);
    expect_output("[fork]\ntype = balance\npolicy = round-robin\n"
                  "[a]\nplugin = text:identity\ninput = fork\n"
                  "[b]\nplugin = text:identity\ninput = fork\n"
                  "[join]\ntype = join\ninput = a, b\norder = concat\n",
                  in, want.s);
    free(want.s);
    free(in);
}

/* A join's order holds after a fork too: each consumer of the replicate
 * gets the join's items in the join's order. */
Test(topology, join_order_holds_through_a_replicate)
{
    static const char ini[] =
        "[f]\ntype = %s\npolicy = round-robin\n"
        "[a]\nplugin = text:identity\ninput = f\n"
        "[b]\nplugin = text:identity\ninput = f\n"
        "[j]\ntype = join\ninput = a, b\norder = %s\n"
        "[g]\ntype = replicate\n"
        "[c]\nplugin = text:identity\ninput = g\n"
        "[d]\nplugin = text:prefix\ntext = d:\ninput = g\n";
    char text[1024], *in = numbers(1, 4000);
    for (int concat = 0; concat < 2; concat++) {
        snprintf(text, sizeof text, ini, "balance", concat ? "concat" : "source");
        host_run r;
        free(run(&r, "p.ini", text, in));
        assert_ok(&r);
        /* c's items (plain) and d's (prefixed) each in the join's order. */
        strbuf want = {0}, got_c = {0}, got_d = {0};
        for (unsigned i = 1; i <= 4000; i += concat ? 2 : 1)
            sb_printf(&want, "%u\n", i);
        if (concat)
            for (unsigned i = 2; i <= 4000; i += 2)
                sb_printf(&want, "%u\n", i);
        char **lines;
        size_t n = split_lines(r.out, &lines);
        for (size_t i = 0; i < n; i++) {
            if (strncmp(lines[i], "d:", 2) == 0)
                sb_printf(&got_d, "%s\n", lines[i] + 2);
            else
                sb_printf(&got_c, "%s\n", lines[i]);
        }
        cr_assert_str_eq(sb_take(&got_c), want.s, "[c] after an order = %s join",
                         concat ? "concat" : "source");
        cr_assert_str_eq(sb_take(&got_d), want.s, "[d] after an order = %s join",
                         concat ? "concat" : "source");
        free(lines);
        free(want.s);
        free(got_c.s);
        free(got_d.s);
        host_run_free(&r);
    }
    free(in);
}

/* Two terminal processors: both reach the output, each in its own order. */
Test(topology, multiple_terminal_stages)
{
    host_run r;
    free(run(&r, "p.ini",
             "[fork]\ntype = replicate\n"
             "[up]\nplugin = text:upper\ninput = fork\n"
             "[pre]\nplugin = text:prefix\ntext = L:\ninput = fork\n",
             "a\nb\nc\n"));
    assert_ok(&r);
    char *got = sorted(r.out);
    cr_assert_str_eq(got, "A\nB\nC\nL:a\nL:b\nL:c\n", "output:\n%s", r.out);
    const char *a = strstr(r.out, "A\n"), *b = strstr(r.out, "B\n"), *c = strstr(r.out, "C\n");
    cr_assert(a < b && b < c, "[up]'s items out of order:\n%s", r.out);
    a = strstr(r.out, "L:a"), b = strstr(r.out, "L:b"), c = strstr(r.out, "L:c");
    cr_assert(a < b && b < c, "[pre]'s items out of order:\n%s", r.out);
    free(got);
    host_run_free(&r);
}

/* ---- no fork, join or pipe is a process -------------------------------- */

/* The children of PID (any state) found in /proc. */
static int count_children(pid_t pid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;   /* gone meanwhile */
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* pid (comm) state ppid ...; comm may hold spaces and parentheses. */
        char *paren = strrchr(buf, ')');
        char state;
        int ppid;
        if (paren && sscanf(paren + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
            n++;
    }
    closedir(d);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(topology, only_processors_source_and_sink_are_processes)
{
    static const char ini[] =
        "[fork]\ntype = replicate\n"
        "[slow_a]\nplugin = testplug:slow\nusec = 2000\ninput = fork\nreplicas = 2\n"
        "[link]\ntype = pipe\ninput = fork\n"
        "[slow_b]\nplugin = testplug:slow\nusec = 2000\ninput = link\n"
        "[join]\ntype = join\ninput = slow_a, slow_b\n"
        "[tail]\ntype = pipe\n";
    /* slow_a's 2 replicas + slow_b + the source + the sink. */
    const int expected = 5;
    char *path = write_file("p.ini", ini);
    const char *args[] = {"-c", path, NULL};
    host_run r;
    host_start(&r, args);
    /* Its input stays open, so the pipeline is up and waiting. */
    int n = 0;
    for (int waited = 0; waited < 5000; waited += 10) {
        n = count_children(r.pid);
        cr_assert_leq(n, expected, "the host has %d children, more than %d", n, expected);
        if (n == expected)
            break;
        sleep_ms(10);
    }
    cr_assert_eq(n, expected, "the host has %d children, not %d", n, expected);
    sleep_ms(300);
    n = count_children(r.pid);
    cr_assert_eq(n, expected, "later the host has %d children, not %d", n, expected);

    char *in = numbers(1, 20);
    host_finish(&r, in, strlen(in), 30);
    assert_ok(&r);
    strbuf want = {0};
    for (unsigned i = 1; i <= 20; i++)
        sb_printf(&want, "%u\n%u\n", i, i);
    char *got = sorted(r.out), *w = sorted(want.s);
    cr_assert_str_eq(got, w, "output:\n%s", r.out);
    free(got);
    free(w);
    free(want.s);
    free(in);
    free(path);
    host_run_free(&r);
}

/* ---- --graph ---------------------------------------------------------- */

Test(topology, graph_shows_stages_and_replicas)
{
    static const char ini[] =
        "[fork]\ntype = balance\npolicy = round-robin\n"
        "[squares]\nplugin = math:cube\ninput = fork\nreplicas = 2\n"
        "[roots]\nplugin = math:sqrt\ninput = fork\n"
        "[via]\ntype = pipe\ninput = roots\n"
        "[merge]\ntype = join\ninput = squares, via\norder = source\n";
    char *path = write_file("p.ini", ini);
    const char *args[] = {"--graph", "-c", path, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "exit status %d, stderr:\n%s", r.status, r.err);
    static const char *const wanted[] = {
        "digraph", "fork", "squares", "roots", "via", "merge", "replicas = 2",
        "squares[0]", "squares[1]", "source", "sink",
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
        cr_assert(strstr(r.out, wanted[i]), "'%s' missing from --graph:\n%s", wanted[i], r.out);
    cr_assert_eq(shm_left(r.pid), 0);

    /* Graphviz must accept it, where it is installed. */
    if (access("/usr/bin/dot", X_OK) == 0) {
        char *dot = write_file("p.dot", r.out);
        char svg[4096], cmd[16384];
        snprintf(svg, sizeof svg, "%s/p.svg", test_dir());
        snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg '%s' -o '%s'", dot, svg);
        int st = system(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dot failed (status %d) on:\n%s", st,
                  r.out);
        char *pic = read_file(svg, NULL);
        cr_assert_not_null(pic);
        cr_assert(strstr(pic, "<svg") && strstr(pic, "</svg>"), "not an SVG:\n%s", pic);
        cr_assert(strstr(pic, "squares"), "the stage names are not in the picture");
        free(pic);
        free(dot);
    }
    host_run_free(&r);
    free(path);
}
