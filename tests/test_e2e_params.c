/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_params.c - plugin parameters end to end: a stage's check() run
 * by --check and before every run (a bad value refused with its file and
 * line, exit 2, nothing started), required keys, declared defaults reaching
 * the plugin, values in quotes reaching it byte for byte, the warning for
 * keys of a stage that declares no parameters, and --list-plugins MODULE.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs conveyor-host with FLAG ("--check", or NULL for a run) on INI,
 * written as test_dir()/p.ini, feeding IN. */
static int run_flag(host_run *r, const char *flag, const char *ini, const char *in)
{
    char *path = write_file("p.ini", ini);
    const char *args[] = {"-c", path, flag, NULL};
    int status = host_run_args(r, in, in ? strlen(in) : 0, args);
    free(path);
    return status;
}

/* "conveyor-host: PREFIX" then "P.INI:LINE: TEXT\n" with the test's p.ini. */
static char *line_at(const char *prefix, int line, const char *text)
{
    char *s = malloc(8192);
    snprintf(s, 8192, "conveyor-host: %s%s/p.ini:%d: %s\n", prefix, test_dir(), line, text);
    return s;
}

/* STDERR is exactly the lines A then B (B may be NULL). */
static void assert_lines(const char *err, char *a, char *b)
{
    char want[16384];
    snprintf(want, sizeof want, "%s%s", a, b ? b : "");
    cr_assert_str_eq(err, want);
    free(a);
    free(b);
}

/* Refused before anything starts: exit 2, nothing written, nothing left. */
static void assert_refused(const host_run *r)
{
    cr_assert_eq(r->status, 2, "status %d, stderr: %s", r->status, r->err);
    cr_assert_str_eq(r->out, "");
    cr_assert_eq(shm_left(r->pid), 0);
}

/* --- check() ------------------------------------------------------------- */

Test(params, check_refuses_a_bad_value_with_its_line)
{
    const char *ini = "[pipeline]\nshared_memory = 1K\n[t]\nplugin = testplug:typed\n\nn = abc\n";
    const char *flags[] = {"--check", NULL};
    /* --check, and a run alike: the run creates nothing (no segment). */
    for (size_t i = 0; i < 2; i++) {
        host_run r;
        run_flag(&r, flags[i], ini, "x\n");
        assert_refused(&r);
        assert_lines(r.err,
                     line_at("error: ", 6, "[t] key 'n' = 'abc': not a whole number (decimal "
                             "digits, an optional sign)"),
                     line_at("", 3, "[t] plugin = testplug:typed: the stage refuses these "
                             "parameters"));
        host_run_free(&r);
    }
}

Test(params, check_refuses_out_of_range_and_its_own_reasons)
{
    host_run r;
    run_flag(&r, "--check", "[t]\nplugin = testplug:typed\nn = 1001\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("error: ", 3, "[t] key 'n' = '1001': out of range: it must be "
                                "from -5 to 1000"),
                 line_at("", 1, "[t] plugin = testplug:typed: the stage refuses these parameters"));
    host_run_free(&r);

    /* What the plugin says itself names the section. */
    run_flag(&r, "--check", "[t]\nplugin = testplug:typed\nn = 13\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("error: ", 1, "[t] n = 13 is unlucky"),
                 line_at("", 1, "[t] plugin = testplug:typed: the stage refuses these parameters"));
    host_run_free(&r);
}

Test(params, check_runs_in_the_host_with_names_and_replicas)
{
    char *path = write_file("p.ini", "[first]\nplugin = text:upper\n"
                                     "[t]\nplugin = testplug:typed\nreplicas = 3\nn = -5\n");
    const char *args[] = {"-v", "--check", "-c", path, NULL};
    host_run r;
    char want[8192];
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want, "conveyor-host: %s:3: [t] checked t: n=-5 replicas=3\n", path);
    cr_assert(strstr(r.err, want), "stderr: %s\nwanted: %s", r.err, want);
    snprintf(want, sizeof want, "%s: ok (2 stages, 6 processes, 7 channels)\n", path);
    cr_assert_str_eq(r.out, want);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(params, stock_checks_refuse_bad_values)
{
    host_run r;
    run_flag(&r, "--check", "[plus]\nplugin = math:add\nvalue = abc\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("error: ", 1, "[plus] value must be a finite number, not 'abc'"),
                 line_at("", 1, "[plus] plugin = math:add: the stage refuses these parameters"));
    host_run_free(&r);

    run_flag(&r, "--check", "[g]\nplugin = text:grep\npattern = x\ninvert = maybe\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("error: ", 4, "[g] key 'invert' = 'maybe': not yes or no (nor "
                                "true/false, on/off, 1/0)"),
                 line_at("", 1, "[g] plugin = text:grep: the stage refuses these parameters"));
    host_run_free(&r);

    run_flag(&r, "--check", "[g]\nplugin = text:grep\npattern = (\n", NULL);
    assert_refused(&r);
    cr_assert(strstr(r.err, "/p.ini:1: [g] invalid pattern '(': "), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(params, missing_required_key_names_the_section)
{
    host_run r;
    run_flag(&r, "--check", "[pipeline]\n\n[who]\nplugin = testplug:required\nnote = x\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("", 3, "[who] testplug:required requires 'id' (who this is), and "
                                "the section does not set it"), NULL);
    host_run_free(&r);

    run_flag(&r, NULL, "[who]\nplugin = testplug:required\nid = 7\n", "a\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "id=7\na\n");
    host_run_free(&r);
}

/* --- defaults and quotes ------------------------------------------------- */

Test(params, declared_defaults_reach_the_plugin)
{
    host_run r;
    run_flag(&r, NULL, "[t]\nplugin = testplug:typed\n", "a\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "n=7 size=4096 flag=1 wait=250 replicas=1\na\n");
    host_run_free(&r);

    run_flag(&r, NULL, "[t]\nplugin = testplug:typed\nn = -5\nsize = 2MiB\nflag = Off\n"
                       "wait = 2m\n", "a\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "n=-5 size=2097152 flag=0 wait=120000 replicas=1\na\n");
    host_run_free(&r);
}

Test(params, quoted_values_reach_the_plugin_byte_for_byte)
{
    host_run r;
    run_flag(&r, NULL, "[p]\nplugin = testplug:params\nalpha = \" a ; b \"  ; a comment\n"
                       "beta = \"q\\\"uo\\\\te\\n\"\n", "x\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "alpha= a ; b ,beta=q\"uo\\te\\n\nx\n");
    host_run_free(&r);

    /* The stock prefix, which once unquoted its text itself. */
    run_flag(&r, NULL, "[p]\nplugin = text:prefix\ntext = \";\"\n[q]\nplugin = text:prefix\n"
                       "text = \" \"\n", "x\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, " ;x\n");
    host_run_free(&r);
}

Test(params, unclosed_quote_is_refused_at_its_line)
{
    host_run r;
    run_flag(&r, "--check", "[p]\nplugin = testplug:params\nalpha = \"a ; b\n", NULL);
    assert_refused(&r);
    assert_lines(r.err, line_at("", 3, "[p] key 'alpha': the '\"' that opens its value is not "
                                "closed (write \\\" for a quote inside it)"), NULL);
    host_run_free(&r);
}

/* --- undeclared keys ------------------------------------------------------ */

Test(params, keys_of_a_stage_that_declares_none_are_warned_about)
{
    host_run r;
    run_flag(&r, NULL, "[any]\nplugin = testplug:anykeys\nk = v\nother = 1\n", "a\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "k=v\na\n");
    char *msgs = messages_of(r.err);
    assert_lines(msgs,
                 line_at("warning: ", 3, "[any] 'k' is passed to testplug:anykeys unchecked: the "
                         "stage declares no parameters"),
                 line_at("warning: ", 4, "[any] 'other' is passed to testplug:anykeys unchecked: "
                         "the stage declares no parameters"));
    free(msgs);
    host_run_free(&r);

    /* Stages that declare their keys are not warned about. */
    run_flag(&r, "--check", "[any]\nplugin = testplug:params\nalpha = 1\n", NULL);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, "");
    host_run_free(&r);
}

/* --- --list-plugins MODULE ------------------------------------------------- */

Test(params, list_plugins_of_one_module)
{
    const char *args[] = {"--list-plugins", "math", NULL};
    char want[8192];
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "math 1.0 (%s/plugins/math.la)\n"
             "  %-24s %s\n  %-24s %s\n  %-24s %s\n      %-20s %s\n\n",
             env_or("CONVEYOR_BUILDDIR", "."), "math:sqrt",
             "square root of a number (a negative one fails)", "math:cube", "third power of a number",
             "math:add", "adds a fixed value to a number", "value",
             "the number added to every item (required)");
    cr_assert_str_eq(r.out, want);
    cr_assert_str_eq(r.err, "");
    host_run_free(&r);
}

Test(params, list_plugins_shows_defaults_in_pipeline_ini_spelling)
{
    const char *args[] = {"--list-plugins", "testplug", NULL};
    host_run r;
    char want[1024];
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want,
             "  %-24s %s\n"
             "      %-20s %s\n      %-20s %s\n      %-20s %s\n      %-20s %s\n      %-20s %s\n",
             "testplug:typed", "emits its typed parameters at start",
             "n", "a number from -5 to 1000 (default: 7)", "size", "a size (default: 4K)",
             "flag", "yes or no (default: yes)", "wait", "a duration (default: 250ms)",
             "text", "any text (default: \" spaced; out \")");
    cr_assert(strstr(r.out, want), "output: %s\nwanted: %s", r.out, want);
    snprintf(want, sizeof want, "      %-20s %s\n", "id", "who this is (required)");
    cr_assert(strstr(r.out, want), "output: %s\nwanted: %s", r.out, want);
    /* One module only. */
    cr_assert(strncmp(r.out, "testplug 1.0 (", 14) == 0, "output: %s", r.out);
    cr_assert_null(strstr(r.out, "math:"), "output: %s", r.out);
    host_run_free(&r);
}

Test(params, list_plugins_of_an_unknown_or_unusable_module)
{
    const char *args[] = {"--list-plugins", "nosuch", NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 3, "status %d, stderr: %s", r.status, r.err);
    const char *want = "conveyor-host: plugin module 'nosuch' not found (looked for nosuch.la "
                       "and nosuch.so in ";
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);

    const char *bad[] = {"--list-plugins", "bad_abi", NULL};
    host_run_args(&r, NULL, 0, bad);
    cr_assert_eq(r.status, 3, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "/bad_abi.la: conveyor_module_v1 was built for plugin ABI 99.0"),
              "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);

    const char *two[] = {"--list-plugins", "math", "text", NULL};
    host_run_args(&r, NULL, 0, two);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, "conveyor-host: too many arguments (see conveyor-host --help)\n");
    host_run_free(&r);
}
