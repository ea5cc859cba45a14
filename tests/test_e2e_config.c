/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_config.c - the real conveyor-host on bad INI files and on its
 * command line: every configuration mistake exits 2 with "FILE:LINE: what
 * is wrong", every plugin that cannot be used exits 3 naming the file and
 * the reason, and none of them starts a process or leaves anything in
 * /dev/shm.  Also --check, --list-plugins, --graph, --help, --version.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <conveyor/plugin.h>

#include "harness.h"

/* Writes INI as test_dir()/p.ini, runs `conveyor-host -c` on it (with
 * input that must never be read) and checks the status and that stderr is
 * exactly "conveyor-host: PATH:LINE: " followed by text containing WANT. */
static void check_error(const char *ini, int status, int line, const char *want)
{
    char *path = write_file("p.ini", ini);
    host_run r;
    char head[4300];

    host_run_ini(&r, path, "a\nb\n");
    cr_assert_eq(r.status, status, "status %d, stderr: %s", r.status, r.err);
    snprintf(head, sizeof head, "conveyor-host: %s:%d: ", path, line);
    cr_assert(strncmp(r.err, head, strlen(head)) == 0, "stderr: %s\nwanted it to start: %s",
              r.err, head);
    cr_assert(strstr(r.err, want), "stderr: %s\nwanted: %s", r.err, want);
    /* One message, one line. */
    cr_assert_eq(strchr(r.err, '\n'), r.err + r.errlen - 1, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

/* --- configuration errors: exit 2, FILE:LINE ---------------------------- */

Test(config, unknown_pipeline_key_with_suggestion)
{
    check_error("[pipeline]\nshared_memory = 1K\nframng = nul\n[a]\nplugin = text:upper\n", 2, 3,
                "unknown key 'framng' in [pipeline] (did you mean 'framing'?)");
}

Test(config, unknown_type_with_suggestion)
{
    check_error("[pipeline]\n\n[a]\nplugin = text:upper\n[b]\ntype = balanse\n", 2, 6,
                "unknown type 'balanse' (did you mean 'balance'?)");
}

Test(config, bad_size)
{
    check_error("[pipeline]\n; a comment\nshared_memory = 12Q\n[a]\nplugin = text:upper\n", 2, 3,
                "bad size '12Q' for shared_memory (use a number with an optional K, M or G suffix)");
}

Test(config, unknown_framing_lists_choices_or_suggests)
{
    check_error("[pipeline]\nframing = line\n[a]\nplugin = text:upper\n", 2, 2,
                "unknown framing 'line' (did you mean 'lines'?)");
}

Test(config, unknown_input_stage_with_suggestion)
{
    check_error("[pipeline]\n[upper]\nplugin = text:upper\n[b]\nplugin = text:lower\ninput = uper\n",
                2, 6, "[b] reads from 'uper', which is not a stage (did you mean 'upper'?)");
}

Test(config, cycle)
{
    check_error("[pipeline]\n[a]\nplugin = text:upper\n"
                "[b]\nplugin = text:lower\ninput = a, c\n"
                "[c]\nplugin = text:identity\ninput = b\n",
                2, 6, "the stages form a cycle: b -> c -> b");
}

Test(config, stage_reading_itself_is_a_cycle)
{
    check_error("[pipeline]\n[a]\nplugin = text:upper\n[b]\nplugin = text:lower\ninput = a, b\n", 2,
                6, "[b] reads from itself (a cycle: b -> b)");
}

/* inih reads 200-byte lines: 198 bytes of text plus newline and NUL. */
Test(config, line_longer_than_inih_limit)
{
    char ini[1024];
    char fill[400];

    memset(fill, 'x', 300);
    fill[300] = '\0';
    snprintf(ini, sizeof ini, "[pipeline]\n[a]\nplugin = text:prefix\ntext = %s\n", fill);
    check_error(ini, 2, 4, "line is longer than 198 bytes");
}

Test(config, line_at_inih_limit_is_fine)
{
    char ini[1024], fill[400];
    char *path;
    host_run r;

    /* "text = " is 7 bytes: 191 more make 198. */
    memset(fill, 'x', 191);
    fill[191] = '\0';
    snprintf(ini, sizeof ini, "[pipeline]\n[a]\nplugin = text:prefix\ntext = %s\n", fill);
    path = write_file("p.ini", ini);
    host_run_ini(&r, path, "!\n");
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_eq(r.outlen, 193);
    cr_assert(strncmp(r.out, fill, 191) == 0 && strcmp(r.out + 191, "!\n") == 0);
    host_run_free(&r);
    free(path);

    fill[191] = 'x';
    fill[192] = '\0';
    snprintf(ini, sizeof ini, "[pipeline]\n[a]\nplugin = text:prefix\ntext = %s\n", fill);
    check_error(ini, 2, 4, "line is longer than 198 bytes");
}

Test(config, duplicate_section)
{
    check_error("[pipeline]\n[a]\nplugin = text:upper\n\n[a]\nplugin = text:lower\n", 2, 5,
                "duplicate section [a] (first at line 2)");
}

Test(config, duplicate_key)
{
    check_error("[pipeline]\n[a]\nplugin = text:upper\nplugin = text:lower\n", 2, 4,
                "duplicate key 'plugin' in [a] (first at line 3)");
}

Test(config, undeclared_param_with_suggestion)
{
    check_error("[pipeline]\n[g]\nplugin = text:grep\npattern = x\npatern = y\n", 2, 5,
                "[g] 'patern' is not a parameter of text:grep (did you mean 'pattern'?); "
                "it takes: pattern, invert");
}

Test(config, param_to_a_stage_that_takes_none)
{
    check_error("[pipeline]\n[u]\nplugin = text:upper\ncolour = red\n", 2, 4,
                "[u] 'colour' is not a parameter of text:upper (it takes none)");
}

Test(config, missing_plugin_key)
{
    check_error("[pipeline]\n[first]\nplugin = text:upper\n[g]\npattern = x\n", 2, 4,
                "stage [g] has no plugin = MODULE:STAGE");
}

Test(config, bad_plugin_value)
{
    check_error("[pipeline]\n[a]\nplugin = upper\n", 2, 3,
                "bad plugin 'upper' (use plugin = MODULE:STAGE)");
}

Test(config, join_with_one_input)
{
    check_error("[pipeline]\n[a]\nplugin = text:upper\n[j]\ntype = join\ninput = a\n", 2, 6,
                "join [j] has 1 input; a join merges two or more");
}

Test(config, no_stages)
{
    check_error("[pipeline]\ninput = -\n", 2, 1, "the pipeline has no stages");
}

/* --- plugin errors: exit 3 ------------------------------------------------- */

Test(config, missing_module_lists_search_path)
{
    char want[8192];
    snprintf(want, sizeof want,
             "[a] plugin = nosuch:upper: plugin module 'nosuch' not found (looked for nosuch.la "
             "and nosuch.so in %s",
             env_or("CONVEYOR_PLUGIN_PATH", ""));
    check_error("[pipeline]\nshared_memory = 1K\n[a]\nplugin = nosuch:upper\n", 3, 4, want);
}

Test(config, missing_stage_with_suggestion)
{
    check_error("[pipeline]\n[a]\nplugin = text:uper\n", 3, 3,
                "[a] plugin = text:uper: module 'text' (");
    check_error("[pipeline]\n[a]\nplugin = text:uper\n", 3, 3,
                "text.la) has no stage 'uper' (did you mean 'upper'?)");
}

Test(config, missing_stage_without_suggestion_lists_stages)
{
    check_error("[pipeline]\n[a]\nplugin = text:zzzzzzzz\n", 3, 3,
                "has no stage 'zzzzzzzz'; it has: identity, upper, lower, grep, prefix, count, sort");
}

/* The path of a test module as the loader names it. */
static char *test_module(const char *name)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s.la", env_or("CONVEYOR_TEST_PLUGINS", "tests/plugins"), name);
    return p;
}

static void check_bad_module(const char *name, const char *why)
{
    char ini[256], want[8192];
    char *file = test_module(name);
    snprintf(ini, sizeof ini, "[pipeline]\nshared_memory = 1K\n\n[s]\nplugin = %s:identity\n", name);
    snprintf(want, sizeof want, "[s] plugin = %s:identity: %s: %s", name, file, why);
    check_error(ini, 3, 5, want);
    free(file);
}

Test(config, bad_abi_major)
{
    check_bad_module("bad_abi", "conveyor_module_v1 was built for plugin ABI 99.0, but this "
                                "conveyor-host supports ABI 1.2");
}

Test(config, newer_minor)
{
    check_bad_module("newer_minor", "conveyor_module_v1 was built for plugin ABI 1.99, but this "
                                    "conveyor-host supports ABI 1.2");
}

Test(config, small_size)
{
    check_bad_module("small_size", "conveyor_module_v1 declares 8 bytes, fewer than the");
}

Test(config, no_entry_symbol)
{
    check_bad_module("no_entry", "not a Conveyor plugin: it has no conveyor_module_v1 symbol");
}

Test(config, no_process)
{
    check_bad_module("no_process", "stage 'identity' has no process function (it is required, "
                                   "or produce for a source)");
}

/* A config error is found before any plugin is loaded: the bad plugin on an
 * earlier line does not hide it. */
Test(config, config_errors_come_before_plugin_errors)
{
    check_error("[pipeline]\n[a]\nplugin = bad_abi:identity\n[b]\ntype = balanse\n", 2, 5,
                "unknown type 'balanse'");
}

/* --- the files the pipeline names ----------------------------------------- */

Test(config, missing_input_file)
{
    char *path = write_file("p.ini", "[pipeline]\ninput = nowhere.txt\nshared_memory = 1K\n"
                                     "[a]\nplugin = text:upper\n");
    host_run r;
    host_run_ini(&r, path, NULL);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "cannot open input '"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "nowhere.txt': No such file or directory"), "stderr: %s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(config, missing_shared_memory_file)
{
    char *path = write_file("p.ini", "[pipeline]\nshared_memory_file = nothing.bin\n"
                                     "[a]\nplugin = text:upper\n");
    host_run r;
    host_run_ini(&r, path, "a\n");
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "shared_memory_file '"), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "nothing.bin': No such file or directory"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

/* A folder NAME in this test's folder (made when missing). */
static char *subdir(const char *name)
{
    char *p = malloc(4200);
    snprintf(p, 4200, "%s/%s", test_dir(), name);
    mkdir(p, 0755);
    return p;
}

/* Every symbol is bound at load time: a module calling a function that
 * exists nowhere is refused by --check, naming the symbol (with lazy
 * binding it loaded, and the first item crashed the stage). */
Test(config, unresolved_symbol_is_refused_at_load)
{
    char want[8192];
    char *file = test_module("unresolved");
    snprintf(want, sizeof want, "[s] plugin = unresolved:identity: %s: cannot load: ", file);
    check_error("[pipeline]\n[s]\nplugin = unresolved:identity\n", 3, 3, want);
    check_error("[pipeline]\n[s]\nplugin = unresolved:identity\n", 3, 3,
                "unresolved.so: undefined symbol: conveyor_test_no_such_function");
    free(file);
}

/* A file that is not a shared object: the loader's own reason, not "file
 * not found". */
Test(config, non_elf_module_says_why)
{
    char *dir = subdir("mods");
    char path[4200], ini[8400];
    snprintf(path, sizeof path, "%s/junk.so", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 20; i++)     /* longer than an ELF header */
        fputs("this is not a shared object\n", f);
    fclose(f);
    snprintf(ini, sizeof ini, "[pipeline]\nplugin_path = %s\n[s]\nplugin = junk:identity\n", dir);
    check_error(ini, 3, 4, "[s] plugin = junk:identity: ");
    char *p = write_file("p.ini", ini);
    host_run r;
    host_run_ini(&r, p, "");
    cr_assert(strstr(r.err, "junk.so: cannot load: ") && strstr(r.err, "invalid ELF header"),
              "stderr: %s", r.err);
    cr_assert_null(strstr(r.err, "file not found"), "stderr: %s", r.err);
    host_run_free(&r);
    free(p);
    free(dir);
}

/* A module whose library is missing: the loader names the library. */
Test(config, missing_library_is_named)
{
    const char *cc = getenv("CC");
    if (!cc || !*cc)
        cr_skip_test("needs $CC to build a module against a library it then removes");
    char *dir = subdir("mods");
    char path[4200], cmd[16384];
    snprintf(path, sizeof path, "%s/gone.c", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("int gone_fn(void) { return 0; }\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/needsgone.c", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("#include <conveyor/plugin.h>\n"
          "int gone_fn(void);\n"
          "static int p(conveyor_ctx *c, const void *i, size_t n)\n"
          "{ (void)c; (void)i; (void)n; return gone_fn(); }\n"
          "static const conveyor_stage s[] = {{ .name = \"identity\", .process = p },\n"
          "                                   { .name = 0 }};\n"
          "CONVEYOR_MODULE(\"needsgone\", \"1\", s);\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s -shared -fPIC -o libgone.so gone.c && "
             "%s -shared -fPIC -I'%s/sdk' -o needsgone.so needsgone.c -L. -lgone && rm libgone.so",
             dir, cc, cc, env_or("CONVEYOR_SRCDIR", "."));
    cr_assert_eq(system(cmd), 0, "could not build the module: %s", cmd);
    char ini[8400];
    snprintf(ini, sizeof ini, "[pipeline]\nplugin_path = %s\n[s]\nplugin = needsgone:identity\n",
             dir);
    check_error(ini, 3, 4, "libgone.so: cannot open shared object file");
    free(dir);
}

/* --check checks the files the configuration names, as a run would. */
Test(config, check_refuses_a_missing_dead_letter_folder)
{
    char ini[8400];
    snprintf(ini, sizeof ini, "[pipeline]\n[s]\nplugin = text:identity\n"
             "on_error = dead-letter:%s/no/such/folder/dead.txt\n", test_dir());
    check_error(ini, 2, 4, "[s] on_error = dead-letter:");
    char *p = write_file("p.ini", ini);
    const char *args[] = {"--check", "-c", p, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "/no/such/folder' does not exist"), "stderr: %s", r.err);
    host_run_free(&r);
    free(p);
}

Test(config, check_refuses_a_missing_shared_memory_file)
{
    char *p = write_file("p.ini", "[pipeline]\nshared_memory_file = missing.bin\n"
                                  "[s]\nplugin = text:identity\n");
    const char *args[] = {"--check", "-c", p, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    char want[4400];
    snprintf(want, sizeof want, "conveyor-host: %s:2: shared_memory_file '%s/missing.bin': No "
             "such file or directory\n", p, test_dir());
    cr_assert_str_eq(r.err, want);
    host_run_free(&r);
    free(p);
}

/* A FIFO as the dataset would block open() until a writer came: refused
 * at once, by --check and by a run. */
Test(config, fifo_as_shared_memory_file_is_refused_at_once, .timeout = 20)
{
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s/data.fifo", test_dir());
    unlink(fifo);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    check_error("[pipeline]\nshared_memory_file = data.fifo\n[s]\nplugin = text:identity\n", 2,
                2, "shared_memory_file '");
    char *p = write_file("p.ini", "[pipeline]\nshared_memory_file = data.fifo\n"
                                  "[s]\nplugin = text:identity\n");
    const char *args[] = {"--check", "-c", p, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "data.fifo': not a regular file"), "stderr: %s", r.err);
    host_run_free(&r);
    free(p);
}

/* A pool the machine cannot give is a bad setting (2), like a segment that
 * cannot be made, named by its line; nothing is left behind. */
Test(config, impossible_pool_size_is_a_config_error)
{
    char *p = write_file("p.ini", "[pipeline]\ntransport = ring\npool_size = 1T\n"
                                  "[s]\nplugin = text:identity\n");
    host_run r;
    host_run_ini(&r, p, "a\n");
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    char want[4400];
    snprintf(want, sizeof want, "conveyor-host: error: %s:3: pool_size: cannot map a pool of "
             "1099511627776 bytes: ", p);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(p);
}

/* A plugin folder anyone may write to gets a warning naming it. */
Test(config, world_writable_plugin_folder_is_named)
{
    char *dir = subdir("open-mods");
    cr_assert_eq(chmod(dir, 0777), 0);
    char dst[4200], ini[8400];
    snprintf(dst, sizeof dst, "%s/text.so", dir);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s/plugins/.libs/text.so' '%s'", env_or("CONVEYOR_BUILDDIR", "."),
             dst);
    cr_assert_eq(system(cmd), 0);
    snprintf(ini, sizeof ini, "[pipeline]\nplugin_path = %s\n[s]\nplugin = text:upper\n", dir);
    char *p = write_file("p.ini", ini);
    const char *args[] = {"--check", "-c", p, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    char want[4400];
    snprintf(want, sizeof want, "warning: the plugin folder '%s' can be written by every user", dir);
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    host_run_free(&r);
    free(p);
    free(dir);
}

/* --- the command line ------------------------------------------------------ */

/* --check validates and loads, and starts nothing: the output file is not
 * created and standard input (left open) is never read. */
Test(config, check_prints_ok_and_starts_nothing)
{
    char *path = write_file("p.ini", "[pipeline]\noutput = out.txt\nshared_memory = 1K\n"
                                     "[a]\nplugin = testplug:bookends\n[b]\nplugin = text:upper\n");
    const char *args[] = {"--check", "-c", path, NULL};
    char want[4200], out[4200];
    host_run r;

    host_start(&r, args);
    host_finish(&r, "never read\n", 11, 10);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want, "%s: ok (2 stages, 4 processes, 3 channels)\n", path);
    cr_assert_str_eq(r.out, want);
    cr_assert_str_eq(r.err, "");
    snprintf(out, sizeof out, "%s/out.txt", test_dir());
    cr_assert_neq(access(out, F_OK), 0, "--check created the output file");
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(path);
}

Test(config, check_counts_a_single_stage)
{
    char *path = write_file("p.ini", "[pipeline]\n[a]\nplugin = text:upper\n");
    const char *args[] = {"--check", "-c", path, NULL};
    char want[4200];
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    snprintf(want, sizeof want, "%s: ok (1 stage, 3 processes, 2 channels)\n", path);
    cr_assert_str_eq(r.out, want);
    host_run_free(&r);
    free(path);
}

Test(config, check_reports_errors_like_a_run)
{
    char *path = write_file("p.ini", "[pipeline]\n[a]\nplugin = bad_abi:identity\n");
    const char *args[] = {"--check", "-c", path, NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 3, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "plugin ABI 99.0"), "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);
    free(path);
}

Test(config, list_plugins)
{
    const char *args[] = {"--list-plugins", NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    char line[256];
    /* "  MODULE:STAGE  SUMMARY", the name padded to 24 columns. */
    snprintf(line, sizeof line, "\n  %-24s %s\n", "text:upper", "upper-cases ASCII letters");
    cr_assert(strstr(r.out, line), "output: %s", r.out);
    cr_assert(strstr(r.out, "text 1.0 ("), "output: %s", r.out);
    snprintf(line, sizeof line, "\n  %-24s %s\n      %-20s %s\n", "math:add",
             "adds a fixed value to a number", "value", "the number added to every item (required)");
    cr_assert(strstr(r.out, line), "output: %s", r.out);
    cr_assert(strstr(r.out, "testplug 1.0 ("), "output: %s", r.out);
    snprintf(line, sizeof line, "\n  %-24s %s\n", "testplug:fail", "fails the at-th item");
    cr_assert(strstr(r.out, line), "output: %s", r.out);
    cr_assert(strstr(r.out, "  testplug:bookends        "), "output: %s", r.out);
    /* Broken modules are listed with why they cannot be used. */
    cr_assert(strstr(r.out, "bad_abi: not usable: "), "output: %s", r.out);
    cr_assert(strstr(r.out, "no_entry: not usable: "), "output: %s", r.out);
    host_run_free(&r);
}

Test(config, graph_prints_a_digraph)
{
    char *path = write_file("p.ini", "[pipeline]\n[a]\nplugin = text:upper\n"
                                     "[b]\nplugin = math:cube\nreplicas = 2\n");
    const char *args[] = {"--graph", "-c", path, NULL};
    host_run r;

    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, "");
    cr_assert(strstr(r.out, "digraph conveyor {\n"), "output: %s", r.out);
    cr_assert(strstr(r.out, "text:upper"), "output: %s", r.out);
    cr_assert(strstr(r.out, "math:cube\\nreplicas = 2"), "output: %s", r.out);
    cr_assert(strstr(r.out, "input -> s0;\n"), "output: %s", r.out);
    cr_assert(strstr(r.out, "s0 -> s1;\n"), "output: %s", r.out);
    cr_assert(strstr(r.out, "s1 -> output;\n"), "output: %s", r.out);
    cr_assert(r.outlen >= 2 && strcmp(r.out + r.outlen - 2, "}\n") == 0, "output: %s", r.out);
    cr_assert_eq(shm_left(r.pid), 0);

    if (access("/usr/bin/dot", X_OK) == 0) {
        char *dotfile = write_bytes("p.dot", r.out, r.outlen);
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg '%s' -o '%s.svg' 2>'%s.err'", dotfile,
                 dotfile, dotfile);
        int st = system(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dot refused the graph (%s)", cmd);
        snprintf(cmd, sizeof cmd, "%s.svg", dotfile);
        char *svg = read_file(cmd, NULL);
        cr_assert(svg && strstr(svg, "<svg"), "no SVG from dot");
        free(svg);
        free(dotfile);
    }
    host_run_free(&r);
    free(path);
}

Test(config, help_exits_0)
{
    const char *args[] = {"--help", NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "Usage: conveyor-host [OPTIONS] -c PIPELINE.ini\n", 47) == 0,
              "output: %s", r.out);
    cr_assert(strstr(r.out, "--list-plugins"));
    cr_assert(strstr(r.out, "Exit status: 0 done, 1 a stage failed"));
    cr_assert_str_eq(r.err, "");
    host_run_free(&r);

    const char *args2[] = {"-h", NULL};
    host_run_args(&r, NULL, 0, args2);
    cr_assert_eq(r.status, 0);
    cr_assert(strncmp(r.out, "Usage: conveyor-host", 20) == 0);
    host_run_free(&r);
}

Test(config, version)
{
    const char *args[] = {"--version", NULL};
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 0);
    char want[512];
    snprintf(want, sizeof want,
             "conveyor-host (Conveyor) %s\n"
             "libconveyor %s, plugin ABI %d.%d (loads modules of ABI %d.0 to %d.%d)\n"
             "plugin folder: %s\n",
             PACKAGE_VERSION, PACKAGE_VERSION, CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR,
             CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR, CONVEYOR_PLUGINDIR);
    cr_assert_str_eq(r.out, want);
    cr_assert_str_eq(r.err, "");
    host_run_free(&r);
    const char *args2[] = {"-V", NULL};
    host_run_args(&r, NULL, 0, args2);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, want);
    host_run_free(&r);
}

static void check_usage_error(const char *const *args, const char *want)
{
    host_run r;
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.err, want);
    cr_assert_str_eq(r.out, "");
    host_run_free(&r);
}

Test(config, unknown_option)
{
    const char *args[] = {"--bogus", NULL};
    check_usage_error(args, "conveyor-host: unknown option '--bogus' (see conveyor-host --help)\n");
    const char *args2[] = {"-x", "-c", "p.ini", NULL};
    check_usage_error(args2, "conveyor-host: unknown option '-x' (see conveyor-host --help)\n");
}

Test(config, missing_config)
{
    const char *args[] = {NULL};
    check_usage_error(args, "conveyor-host: no pipeline given: use -c PIPELINE.ini "
                            "(see conveyor-host --help)\n");
    const char *args2[] = {"-c", NULL};
    check_usage_error(args2, "conveyor-host: option '-c' needs a value (see conveyor-host --help)\n");
}

Test(config, missing_ini_file)
{
    char path[4200];
    host_run r;
    snprintf(path, sizeof path, "%s/absent.ini", test_dir());
    const char *args[] = {"-c", path, NULL};
    host_run_args(&r, NULL, 0, args);
    cr_assert_eq(r.status, 2, "status %d, stderr: %s", r.status, r.err);
    char want[4400];
    snprintf(want, sizeof want, "conveyor-host: %s: cannot open: No such file or directory\n", path);
    cr_assert_str_eq(r.err, want);
    host_run_free(&r);
}

/* The INI may also be given without -c. */
Test(config, positional_config)
{
    char *path = write_file("p.ini", "[pipeline]\n[a]\nplugin = text:upper\n");
    const char *args[] = {path, NULL};
    host_run r;
    host_run_args(&r, "x\n", 2, args);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "X\n");
    host_run_free(&r);
    free(path);
}
