/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - pipeline.ini parsing (framework/load/config.c): defaults, every
 * key, paths resolved against the INI file's folder, multi-line values, and
 * every error with its exact message and line; and the key table
 * (framework/load/config_keys.c) against the docs and a minimal file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "load/config.h"
#include "load/config_keys.h"

#define PATH "p.ini"

/* Criterion ignores what LeakSanitizer reports when a test's process exits,
 * so the tests ask it themselves (when built with it) after each load. */
extern int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void expect_no_leaks(void)
{
    if (__lsan_do_recoverable_leak_check)
        cr_expect_eq(__lsan_do_recoverable_leak_check(), 0,
                     "memory leaked: LeakSanitizer's report is above");
}

static int load(const char *text, cv_config **cfg, char *err, size_t errlen)
{
    return cv_config_load_string(PATH, text, cfg, err, errlen);
}

static cv_config *load_ok(const char *text)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    int rc = load(text, &cfg, err, sizeof err);

    cr_assert_eq(rc, 0, "unexpected error %d: %s", rc, err);
    cr_assert_not_null(cfg);
    return cfg;
}

static void expect_error(const char *text, const char *msg)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = (cv_config *)&err;  /* must be reset to NULL */
    int rc = load(text, &cfg, err, sizeof err);

    cr_expect_eq(rc, -EINVAL, "rc %d (%s) for:\n%s", rc, err, text);
    cr_expect_null(cfg, "a config despite the error, for:\n%s", text);
    cr_expect_str_eq(err, msg, "for:\n%s", text);
    expect_no_leaks();
}

/* ---- files on disk ------------------------------------------------------ */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cv-test-config.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[PATH_MAX + 16];

    if (!tmpdir[0])
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}

/* Writes N bytes into TMPDIR/NAME; returns the path (static buffer). */
static const char *write_file(const char *name, const char *bytes, size_t n)
{
    static char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static const char *data_file(const char *name)
{
    static char path[PATH_MAX];
    const char *dir = getenv("CONVEYOR_TEST_DATA");

    snprintf(path, sizeof path, "%s/config/%s", dir ? dir : "tests/data", name);
    return path;
}

/* ---- defaults and values ------------------------------------------------ */

Test(config, defaults)
{
    cv_config *cfg = load_ok("[a]\nplugin = m:s\n");
    const cv_stage_cfg *st = &cfg->stages[0];

    cr_expect_str_eq(cfg->path, PATH);
    cr_expect_str_eq(cfg->dir, ".");
    cr_expect_eq(cfg->pipeline_line, 0);
    cr_expect_str_eq(cfg->input, "-");
    cr_expect_str_eq(cfg->output, "-");
    cr_expect_eq(cfg->framing, CV_FRAMING_LINES);
    cr_expect_eq(cfg->shm_size, 0);
    cr_expect_eq(cfg->shm_size_line, 0);
    cr_expect_null(cfg->shm_file);
    cr_expect_eq(cfg->shm_file_line, 0);
    cr_expect_eq(cfg->shm_readonly, 0);
    cr_expect_null(cfg->plugin_path);
    cr_expect_eq(cfg->transport, CV_TRANSPORT_RING);
    cr_expect_eq(cfg->max_item, (size_t)64 << 20);

    cr_assert_eq(cfg->nstages, 1);
    cr_expect_str_eq(st->name, "a");
    cr_expect_eq(st->line, 1);
    cr_expect_eq(st->type, CV_TYPE_PROCESSOR);
    cr_expect_eq(st->type_line, 0);
    cr_expect_str_eq(st->module, "m");
    cr_expect_str_eq(st->stage, "s");
    cr_expect_eq(st->plugin_line, 2);
    cr_expect_eq(st->ninputs, 0);
    cr_expect_null(st->inputs);
    cr_expect_eq(st->inputs_default, 1);
    cr_expect_eq(st->input_line, 1);
    cr_expect_eq(st->replicas, 1);
    cr_expect_eq(st->replicas_line, 0);
    cr_expect_eq(st->policy, CV_POLICY_LEAST_LOADED);
    cr_expect_eq(st->policy_line, 0);
    cr_expect_eq(st->order, CV_ORDER_ARRIVAL);
    cr_expect_eq(st->order_line, 0);
    cr_expect_eq(st->on_error, CV_ON_ERROR_FAIL);
    cr_expect_eq(st->on_error_line, 0);
    cr_expect_null(st->dead_letter_path);
    cr_expect_eq(st->restart, CV_RESTART_NO);
    cr_expect_eq(st->restart_line, 0);
    cr_expect_eq(st->max_restarts, 5);
    cr_expect_eq(st->nparams, 0);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, pipeline_keys_and_relative_paths)
{
    char err[CV_ERR_MAX];
    cv_config *cfg = NULL;
    int rc = cv_config_load_string("conf/sub/p.ini",
        "; comment\n"
        "[pipeline]\n"
        "input = in.txt\n"
        "output = /abs/out.txt\n"
        "framing = nul\n"
        "shared_memory = 10M\n"
        "shared_memory_file = data/blob.bin\n"
        "shared_memory_mode = ro\n"
        "plugin_path = plugins : /opt/conveyor:../more\n"
        "transport = pipe\n"
        "max_item = 4KiB\n"
        "[a]\nplugin = m:s\n", &cfg, err, sizeof err);

    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(cfg->path, "conf/sub/p.ini");
    cr_expect_str_eq(cfg->dir, "conf/sub");
    cr_expect_eq(cfg->pipeline_line, 2);
    cr_expect_str_eq(cfg->input, "conf/sub/in.txt");
    cr_expect_str_eq(cfg->output, "/abs/out.txt");
    cr_expect_eq(cfg->framing, CV_FRAMING_NUL);
    cr_expect_eq(cfg->shm_size, (size_t)10 << 20);
    cr_expect_eq(cfg->shm_size_line, 6);
    cr_expect_str_eq(cfg->shm_file, "conf/sub/data/blob.bin");
    cr_expect_eq(cfg->shm_file_line, 7);
    cr_expect_eq(cfg->shm_readonly, 1);
    cr_expect_str_eq(cfg->plugin_path, "conf/sub/plugins:/opt/conveyor:conf/sub/../more");
    cr_expect_eq(cfg->transport, CV_TRANSPORT_PIPE);
    cr_expect_eq(cfg->max_item, 4096);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, stdin_stdout_dash_is_not_a_path)
{
    cv_config *cfg = NULL;
    char err[CV_ERR_MAX];

    cr_assert_eq(cv_config_load_string("/etc/conveyor/p.ini",
        "[pipeline]\ninput = -\noutput = -\nframing = length32\n"
        "shared_memory_mode = rw\ntransport = ring\n[a]\nplugin = m:s\n",
        &cfg, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg->dir, "/etc/conveyor");
    cr_expect_str_eq(cfg->input, "-");
    cr_expect_str_eq(cfg->output, "-");
    cr_expect_eq(cfg->framing, CV_FRAMING_LENGTH32);
    cr_expect_eq(cfg->shm_readonly, 0);
    cr_expect_eq(cfg->transport, CV_TRANSPORT_RING);
    cv_config_free(cfg);

    cr_assert_eq(cv_config_load_string("/p.ini", "[pipeline]\ninput = x\n[a]\nplugin=m:s\n",
                                       &cfg, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg->dir, "/");
    cr_expect_str_eq(cfg->input, "/x");
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, pipeline_section_anywhere)
{
    cv_config *cfg = load_ok("[a]\nplugin = m:s\n\n[pipeline]\nframing = nul\n\n"
                             "[b]\nplugin = m:t\n");

    cr_expect_eq(cfg->pipeline_line, 4);
    cr_expect_eq(cfg->framing, CV_FRAMING_NUL);
    cr_assert_eq(cfg->nstages, 2);
    cr_expect_str_eq(cfg->stages[0].name, "a");
    cr_expect_str_eq(cfg->stages[1].name, "b");
    cr_expect_eq(cfg->stages[1].line, 7);
    cr_expect_eq(cfg->stages[1].inputs_default, 1);
    cr_expect_eq(cfg->stages[1].input_line, 7);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, stage_keys)
{
    cv_config *cfg = load_ok(
        "[src]\n"                              /* 1 */
        "plugin = text : split \n"             /* 2 */
        "replicas = 8\n"                       /* 3 */
        "on_error = dead-letter:bad/out.bin\n" /* 4 */
        "restart = on-failure\n"               /* 5 */
        "max_restarts = 0\n"                   /* 6 */
        "sep = ,\n"                            /* 7 */
        "empty =\n"                            /* 8 */
        "[fan]\ntype = replicate\n"            /* 9, 10 */
        "[bal]\ntype = balance\npolicy = round-robin\ninput = fan\n" /* 11-14 */
        "[j]\norder = concat\ntype = join\ninput = src, bal\n"      /* 15-18 */
        "[p]\ntype = pipe\n"                   /* 19, 20 */
        "[k]\nplugin = m:s\non_error = skip\nrestart = no\ntype = processor\n"); /* 21-25 */
    const cv_stage_cfg *st = cfg->stages;

    cr_assert_eq(cfg->nstages, 6);
    cr_expect_str_eq(st[0].module, "text");
    cr_expect_str_eq(st[0].stage, "split");
    cr_expect_eq(st[0].replicas, 8);
    cr_expect_eq(st[0].replicas_line, 3);
    cr_expect_eq(st[0].on_error, CV_ON_ERROR_DEAD_LETTER);
    cr_expect_eq(st[0].on_error_line, 4);
    cr_expect_str_eq(st[0].dead_letter_path, "./bad/out.bin");
    cr_expect_eq(st[0].restart, CV_RESTART_ON_FAILURE);
    cr_expect_eq(st[0].restart_line, 5);
    cr_expect_eq(st[0].max_restarts, 0);
    cr_assert_eq(st[0].nparams, 2);
    cr_expect_str_eq(st[0].params[0].key, "sep");
    cr_expect_str_eq(st[0].params[0].value, ",");
    cr_expect_eq(st[0].params[0].line, 7);
    cr_expect_str_eq(st[0].params[1].key, "empty");
    cr_expect_str_eq(st[0].params[1].value, "");
    cr_expect_str_eq(cv_stage_param(&st[0], "sep"), ",");
    cr_expect_str_eq(cv_stage_param(&st[0], "empty"), "");
    cr_expect_null(cv_stage_param(&st[0], "plugin"));
    cr_expect_null(cv_stage_param(&st[0], "missing"));

    cr_expect_eq(st[1].type, CV_TYPE_REPLICATE);
    cr_expect_eq(st[1].type_line, 10);
    cr_expect_null(st[1].module);
    cr_expect_eq(st[2].type, CV_TYPE_BALANCE);
    cr_expect_eq(st[2].policy, CV_POLICY_ROUND_ROBIN);
    cr_expect_eq(st[2].policy_line, 13);
    cr_expect_eq(st[2].inputs_default, 0);
    cr_expect_eq(st[2].input_line, 14);
    cr_assert_eq(st[2].ninputs, 1);
    cr_expect_str_eq(st[2].inputs[0].name, "fan");
    cr_expect_eq(st[3].type, CV_TYPE_JOIN);
    cr_expect_eq(st[3].order, CV_ORDER_CONCAT);
    cr_expect_eq(st[3].order_line, 16);
    cr_assert_eq(st[3].ninputs, 2);
    cr_expect_str_eq(st[3].inputs[0].name, "src");
    cr_expect_str_eq(st[3].inputs[1].name, "bal");
    cr_expect_eq(st[3].inputs[1].line, 18);
    cr_expect_eq(st[4].type, CV_TYPE_PIPE);
    cr_expect_eq(st[5].type, CV_TYPE_PROCESSOR);
    cr_expect_eq(st[5].type_line, 25);
    cr_expect_eq(st[5].on_error, CV_ON_ERROR_SKIP);
    cr_expect_eq(st[5].restart, CV_RESTART_NO);
    cr_expect_eq(st[5].restart_line, 24);

    cr_expect_eq(cv_config_find_stage(cfg, "src"), 0);
    cr_expect_eq(cv_config_find_stage(cfg, "k"), 5);
    cr_expect_eq(cv_config_find_stage(cfg, "nope"), -1);
    cr_expect_eq(cv_config_find_stage(cfg, "pipeline"), -1);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, limits_of_numbers)
{
    cv_config *cfg = load_ok("[a]\nplugin = m:s\nreplicas = 1024\nmax_restarts = 1000000\n"
                             "[pipeline]\nmax_item = 1\nshared_memory = 0\n");

    cr_expect_eq(cfg->stages[0].replicas, 1024);
    cr_expect_eq(cfg->stages[0].max_restarts, 1000000);
    cr_expect_eq(cfg->max_item, 1);
    cr_expect_eq(cfg->shm_size, 0);
    cr_expect_eq(cfg->shm_size_line, 7);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, names_for_messages)
{
    cr_expect_str_eq(cv_type_name(CV_TYPE_PROCESSOR), "processor");
    cr_expect_str_eq(cv_type_name(CV_TYPE_JOIN), "join");
    cr_expect_str_eq(cv_policy_name(CV_POLICY_ROUND_ROBIN), "round-robin");
    cr_expect_str_eq(cv_order_name(CV_ORDER_SOURCE), "source");
    cr_expect_str_eq(cv_framing_name(CV_FRAMING_LENGTH32), "length32");
}

/* ---- the key table (config_keys.c) --------------------------------------- */

/* A file of the source tree, read whole (free it). */
static char *read_source(const char *rel)
{
    const char *dir = getenv("CONVEYOR_SRCDIR");
    char path[PATH_MAX];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", rel);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (CONVEYOR_SRCDIR is the source tree)", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *section_name(enum cv_section s)
{
    return s == CV_SECTION_PIPELINE ? "[pipeline]" : "stage";
}

static size_t kind_size(enum cv_key_kind kind)
{
    switch (kind) {
    case CV_KEY_PATH: return sizeof(char *);
    case CV_KEY_ENUM: return sizeof(int);
    case CV_KEY_UINT: return sizeof(unsigned);
    case CV_KEY_SIZE: return sizeof(size_t);
    case CV_KEY_DURATION: return sizeof(uint64_t);
    case CV_KEY_OTHER: break;
    }
    return 0;
}

Test(config_keys, rows_are_well_formed)
{
    size_t nrows = 0;

    for (const cv_config_key *k = cv_config_keys; k->name; k++, nrows++) {
        size_t obj = k->section == CV_SECTION_PIPELINE ? sizeof(cv_config) : sizeof(cv_stage_cfg);

        cr_expect_gt(strlen(k->name), 0);
        cr_expect_eq(cv_config_key_find(k->section, k->name), k, "%s is in the table twice",
                     k->name);
        cr_expect(k->kind != CV_KEY_ENUM || k->names, "%s: an enum without names", k->name);
        cr_expect(k->kind != CV_KEY_UINT || k->min <= k->max, "%s: empty range", k->name);
        cr_expect(k->kind != CV_KEY_OTHER || k->parse, "%s: no way to read it", k->name);
        cr_expect(k->kind != CV_KEY_OTHER || !k->def, "%s: a default nothing reads", k->name);
        cr_expect(!k->env || k->kind == CV_KEY_ENUM, "%s: env chooses among names", k->name);
        cr_expect_leq(k->off + kind_size(k->kind), obj, "%s: field outside its struct", k->name);
        cr_expect_leq(k->line_off + sizeof(int), obj, "%s: line outside its struct", k->name);
        if (k->section == CV_SECTION_PIPELINE) {
            cr_expect_eq(k->types, 0, "%s: stage types on a [pipeline] key", k->name);
            continue;
        }
        cr_expect_neq(k->types, 0, "%s: no stage type takes it", k->name);
        cr_expect_eq(k->types & ~(unsigned)CV_TYPES_ALL, 0, "%s: unknown types", k->name);
        /* More than one type but not all needs words for messages. */
        bool single = (k->types & (k->types - 1)) == 0;
        cr_expect(single || k->types == CV_TYPES_ALL || k->types_text,
                  "%s: no types_text", k->name);
    }
    cr_expect_gt(nrows, 0);
}

/* loader.c suggests these beside a plugin's parameters. */
Test(config_keys, reserved_stage_keys_are_the_stage_rows)
{
    size_t i = 0;

    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->section == CV_SECTION_STAGE) {
            cr_assert_not_null(cv_config_stage_key(i), "%s is missing", k->name);
            cr_expect_str_eq(cv_config_stage_key(i), k->name);
            i++;
        }
    cr_expect_gt(i, 0);
    cr_expect_null(cv_config_stage_key(i));
}

/* One row of a key table of docs/pipeline-ini.md: | `key` | default | values | */
struct doc_row {
    enum cv_section section;
    char key[64], def[64], text[512];
    bool has_def;
};

/* The text of `code` at the start of S, or false. */
static bool leading_code(const char *s, char *out, size_t n)
{
    const char *end;

    if (*s != '`' || !(end = strchr(s + 1, '`')))
        return false;
    snprintf(out, n, "%.*s", (int)(end - s - 1), s + 1);
    return true;
}

static char *trim_cell(char *s)
{
    char *e = s + strlen(s);

    while (*s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        *--e = '\0';
    return s;
}

/* The rows of the tables under "## [pipeline]" and "## Stage sections". */
static size_t doc_rows(struct doc_row *rows, size_t max)
{
    char *doc = read_source("docs/pipeline-ini.md"), *save = NULL;
    int section = -1;
    size_t n = 0;

    for (char *line = strtok_r(doc, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "## ", 3) == 0)
            section = strcmp(line, "## [pipeline]") == 0 ? CV_SECTION_PIPELINE
                      : strcmp(line, "## Stage sections") == 0 ? CV_SECTION_STAGE : -1;
        if (section < 0 || strncmp(line, "| `", 3) != 0)
            continue;
        char *cells[3], *cell_save = NULL;
        size_t c = 0;
        for (char *cell = strtok_r(line, "|", &cell_save); cell && c < 3;
             cell = strtok_r(NULL, "|", &cell_save))
            cells[c++] = trim_cell(cell);
        cr_assert_eq(c, 3, "a key row without three cells in docs/pipeline-ini.md");
        cr_assert_lt(n, max);
        struct doc_row *r = &rows[n++];
        r->section = (enum cv_section)section;
        cr_assert(leading_code(cells[0], r->key, sizeof r->key));
        r->has_def = leading_code(cells[1], r->def, sizeof r->def);
        snprintf(r->text, sizeof r->text, "%s | %s", cells[1], cells[2]);
    }
    free(doc);
    return n;
}

/* What the documentation says of a row must be what its row holds. */
static void expect_documented_as(const cv_config_key *k, const struct doc_row *r)
{
    char want[64];

    if (k->def)
        cr_expect(r->has_def && strcmp(r->def, k->def) == 0,
                  "%s %s: the default is `%s` in the table, '%s' in the docs",
                  section_name(k->section), k->name, k->def, r->has_def ? r->def : "(none)");
    else
        cr_expect(!r->has_def, "%s %s: no default in the table, `%s` in the docs",
                  section_name(k->section), k->name, r->def);
    for (size_t i = 0; k->kind == CV_KEY_ENUM && k->names[i]; i++) {
        char colon[64];
        snprintf(want, sizeof want, "`%s`", k->names[i]);
        snprintf(colon, sizeof colon, "`%s:", k->names[i]);
        cr_expect(strstr(r->text, want) || strstr(r->text, colon),
                  "%s: the value '%s' is not documented", k->name, k->names[i]);
    }
    if (k->kind == CV_KEY_UINT) {
        snprintf(want, sizeof want, "%u to %u", k->min, k->max);
        cr_expect_not_null(strstr(r->text, want), "%s: the docs do not say %s", k->name, want);
    }
    if (k->env) {
        snprintf(want, sizeof want, "$%s", k->env);
        cr_expect_not_null(strstr(r->text, want), "%s: the docs do not name %s", k->name, want);
    }
    /* A stage key whose text says "balance: ..." or "processor, source: ..."
     * applies to exactly those types. */
    unsigned said = 0;
    for (enum cv_stage_type t = CV_TYPE_PROCESSOR; t <= CV_TYPE_SOURCE; t++) {
        for (int sep = 0; sep < 2; sep++) {
            snprintf(want, sizeof want, "%s%s", cv_type_name(t), sep ? ", " : ":");
            for (const char *s = strstr(r->text, want); s; s = strstr(s + 1, want))
                if (s == r->text || s[-1] == ' ')
                    said |= CV_TYPE_BIT(t);
        }
    }
    if (k->section == CV_SECTION_STAGE && said)
        cr_expect_eq(said, k->types, "%s: the docs name other stage types", k->name);
}

Test(config_keys, documented_keys_are_the_table)
{
    struct doc_row rows[64];
    size_t n = doc_rows(rows, 64), seen[2] = { 0, 0 };

    for (size_t i = 0; i < n; i++) {
        const cv_config_key *k = cv_config_key_find(rows[i].section, rows[i].key);
        cr_expect_not_null(k, "docs/pipeline-ini.md documents %s key '%s', which the table "
                           "does not have", section_name(rows[i].section), rows[i].key);
        if (k)
            expect_documented_as(k, &rows[i]);
        seen[rows[i].section]++;
    }
    for (const cv_config_key *k = cv_config_keys; k->name; k++) {
        size_t i = 0;
        while (i < n && (rows[i].section != k->section || strcmp(rows[i].key, k->name) != 0))
            i++;
        cr_expect_lt(i, n, "%s key '%s' is missing from the tables of docs/pipeline-ini.md",
                     section_name(k->section), k->name);
    }
    cr_expect_gt(seen[CV_SECTION_PIPELINE], 0, "no [pipeline] table found in the docs");
    cr_expect_gt(seen[CV_SECTION_STAGE], 0, "no stage table found in the docs");
}

/* Mutations reach past the first unknown-key error only with every key. */
Test(config_keys, fuzz_dictionary_has_every_key)
{
    char *dict = read_source("fuzz/config.dict"), want[80];

    for (const cv_config_key *k = cv_config_keys; k->name; k++) {
        snprintf(want, sizeof want, "\n\"%s\"\n", k->name);
        cr_expect_not_null(strstr(dict, want), "fuzz/config.dict lacks \"%s\"", k->name);
    }
    free(dict);
}

static void expect_same_value(const cv_config_key *k, const void *a, const void *b,
                              const char *text)
{
    switch (k->kind) {
    case CV_KEY_PATH: {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        cr_expect((!x && !y) || (x && y && strcmp(x, y) == 0), "%s: '%s' and '%s' for:\n%s",
                  k->name, x ? x : "(null)", y ? y : "(null)", text);
        break;
    }
    case CV_KEY_OTHER:
        cr_expect_fail("%s: a default no test can compare", k->name);
        break;
    default:
        cr_expect_eq(memcmp(a, b, kind_size(k->kind)), 0, "%s differs for:\n%s", k->name, text);
    }
}

/* A small valid file with a section for K, and "K = VALUE" at its end
 * unless VALUE is NULL; returns the line that key is on. */
static int file_with(const cv_config_key *k, const char *value, char *text, size_t n)
{
    int lines = 0;
    size_t used = 0;

    if (k->section == CV_SECTION_PIPELINE) {
        used = (size_t)snprintf(text, n, "[a]\nplugin = m:s\n[pipeline]\n");
        lines = 3;
    } else {
        /* The first type that takes the key; a processor needs its plugin. */
        enum cv_stage_type t = CV_TYPE_PROCESSOR;
        while (!(k->types & CV_TYPE_BIT(t)))
            t++;
        used = (size_t)snprintf(text, n, "[a]\n");
        lines = 1;
        if (strcmp(k->name, "type") != 0) {
            used += (size_t)snprintf(text + used, n - used, "type = %s\n", cv_type_name(t));
            lines++;
        }
        if (t == CV_TYPE_PROCESSOR && (strcmp(k->name, "plugin") != 0 || !value)) {
            used += (size_t)snprintf(text + used, n - used, "plugin = m:s\n");
            lines++;
        }
    }
    if (value)
        snprintf(text + used, n - used, "%s = %s\n", k->name, value);
    return lines + 1;
}

Test(config_keys, defaults_are_what_a_minimal_file_yields)
{
    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->env)
            unsetenv(k->env);

    for (const cv_config_key *k = cv_config_keys; k->name; k++) {
        char bare[256], with[256], key[80];
        int line;

        file_with(k, NULL, bare, sizeof bare);
        cv_config *a = load_ok(bare);
        void *obj_a = k->section == CV_SECTION_PIPELINE ? (void *)a : (void *)&a->stages[0];

        snprintf(key, sizeof key, "\n%s = ", k->name);
        if (k->line_off && !k->unset && !strstr(bare, key))  /* a processor's plugin is */
            cr_expect_eq(*(int *)((char *)obj_a + k->line_off), 0,
                         "%s: a line without the key", k->name);
        if (k->def) {
            line = file_with(k, k->def, with, sizeof with);
            cv_config *b = load_ok(with);
            void *obj_b = k->section == CV_SECTION_PIPELINE ? (void *)b : (void *)&b->stages[0];
            expect_same_value(k, (char *)obj_a + k->off, (char *)obj_b + k->off, with);
            if (k->line_off)
                cr_expect_eq(*(int *)((char *)obj_b + k->line_off), line,
                             "%s: not the key's line, for:\n%s", k->name, with);
            cv_config_free(b);
        } else if (k->kind == CV_KEY_PATH) {
            cr_expect_null(*(char **)((char *)obj_a + k->off), "%s: a path by default",
                           k->name);
        }
        cv_config_free(a);
    }
    expect_no_leaks();
}

Test(config_keys, transport_default_from_the_environment)
{
    cv_config *cfg;

    setenv("CONVEYOR_TRANSPORT", "pipe", 1);
    cfg = load_ok("[a]\nplugin = m:s\n");
    cr_expect_eq(cfg->transport, CV_TRANSPORT_PIPE);
    cv_config_free(cfg);
    cfg = load_ok("[pipeline]\ntransport = ring\n[a]\nplugin = m:s\n");
    cr_expect_eq(cfg->transport, CV_TRANSPORT_RING, "the file's choice wins");
    cv_config_free(cfg);
    setenv("CONVEYOR_TRANSPORT", "carrier-pigeon", 1);
    cfg = load_ok("[a]\nplugin = m:s\n");
    cr_expect_eq(cfg->transport, CV_TRANSPORT_RING, "anything else is the default");
    cv_config_free(cfg);
    expect_no_leaks();
}

/* ---- multi-line values -------------------------------------------------- */

Test(config, multi_line_input_list)
{
    cv_config *cfg = load_ok(
        "[a]\nplugin = m:s\n[b]\nplugin = m:s\n[c]\nplugin = m:s\n"  /* 1-6 */
        "[j]\n"              /* 7 */
        "type = join\n"      /* 8 */
        "input =\n"          /* 9 */
        "    a,\n"           /* 10 */
        "\n"                 /* 11: a blank line does not end the value */
        "    b   ; comment\n" /* 12 */
        "\tc\n"              /* 13 */
        "order = source\n"); /* 14 */
    const cv_stage_cfg *j = &cfg->stages[3];

    cr_expect_eq(j->inputs_default, 0);
    cr_expect_eq(j->input_line, 9);
    cr_assert_eq(j->ninputs, 3);
    cr_expect_str_eq(j->inputs[0].name, "a");
    cr_expect_eq(j->inputs[0].line, 10);
    cr_expect_str_eq(j->inputs[1].name, "b");
    cr_expect_eq(j->inputs[1].line, 12);
    cr_expect_str_eq(j->inputs[2].name, "c");
    cr_expect_eq(j->inputs[2].line, 13);
    cr_expect_eq(j->order, CV_ORDER_SOURCE);
    cr_expect_eq(j->order_line, 14);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, mixed_commas_and_lines)
{
    cv_config *cfg = load_ok("[j]\ntype = join\ninput = a , b,\n  c,d\n   e\n");
    const cv_stage_cfg *j = &cfg->stages[0];
    const char *names[] = { "a", "b", "c", "d", "e" };
    const int lines[] = { 3, 3, 4, 4, 5 };

    cr_assert_eq(j->ninputs, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_expect_str_eq(j->inputs[i].name, names[i]);
        cr_expect_eq(j->inputs[i].line, lines[i], "input %zu", i);
    }
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, multi_line_param_joined_with_newline)
{
    cv_config *cfg = load_ok("[a]\nplugin = m:s\ntext = first\n  second ; gone\n\tthird\n"
                             "other = x\n");
    const cv_stage_cfg *st = &cfg->stages[0];

    cr_assert_eq(st->nparams, 2);
    cr_expect_str_eq(st->params[0].value, "first\nsecond\nthird");
    cr_expect_eq(st->params[0].line, 3);
    cr_expect_str_eq(st->params[1].value, "x");
    cr_expect_eq(st->params[1].line, 6);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, long_section_names_are_whole)
{
    /* inih keeps 49 bytes of a section name; the stage keeps all of it. */
    const char *name = "a_stage_name_that_is_longer_than_fifty_bytes_1234567890";
    char text[256];
    snprintf(text, sizeof text, "[%s]\nplugin = m:s\n[%.49s]\nplugin = m:s\n", name, name);
    cv_config *cfg = load_ok(text);

    cr_assert_eq(cfg->nstages, 2);
    cr_expect_str_eq(cfg->stages[0].name, name);
    cr_expect_eq(strlen(cfg->stages[1].name), 49);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config, comments_blank_lines_and_spaces)
{
    cv_config *cfg = load_ok("\n# hash comment\n; semicolon comment\n  \n[ a ]  ; note\n"
                             "plugin=m:s\n\n  ; indented comment\nk: v\n");

    cr_expect_str_eq(cfg->stages[0].name, "a");
    cr_expect_eq(cfg->stages[0].line, 5);
    cr_expect_eq(cfg->stages[0].plugin_line, 6);
    cr_expect_str_eq(cv_stage_param(&cfg->stages[0], "k"), "v");
    cr_expect_eq(cfg->stages[0].params[0].line, 9);
    cv_config_free(cfg);
    expect_no_leaks();
}

/* ---- errors ------------------------------------------------------------- */

Test(config_errors, unknown_pipeline_key)
{
    expect_error("[pipeline]\nframin = nul\n",
                 "p.ini:2: unknown key 'framin' in [pipeline] (did you mean 'framing'?)");
    expect_error("[pipeline]\nshared_memroy = 4K\n",
                 "p.ini:2: unknown key 'shared_memroy' in [pipeline] (did you mean 'shared_memory'?)");
    expect_error("[pipeline]\ncolour = blue\n", "p.ini:2: unknown key 'colour' in [pipeline]");
}

Test(config_errors, enumerated_values)
{
    expect_error("[a]\ntype = replciate\n",
                 "p.ini:2: unknown type 'replciate' (did you mean 'replicate'?)");
    expect_error("[a]\ntype = tee\n",
                 "p.ini:2: unknown type 'tee' (use processor, pipe, replicate, balance, join or source)");
    expect_error("[b]\ntype = balance\npolicy = round-robn\n",
                 "p.ini:3: unknown policy 'round-robn' (did you mean 'round-robin'?)");
    expect_error("[j]\ntype = join\norder = random\n",
                 "p.ini:3: unknown order 'random' (use arrival, concat or source)");
    expect_error("[pipeline]\nframing = line\n",
                 "p.ini:2: unknown framing 'line' (did you mean 'lines'?)");
    expect_error("[pipeline]\ntransport = shm\n",
                 "p.ini:2: unknown transport 'shm' (use ring or pipe)");
    expect_error("[pipeline]\nshared_memory_mode = r\n",
                 "p.ini:2: unknown shared_memory_mode 'r' (use rw or ro)");
    expect_error("[pipeline]\nshared_memory_mode = rx\n",
                 "p.ini:2: unknown shared_memory_mode 'rx' (did you mean 'rw'?)");
    expect_error("[a]\nplugin = m:s\nrestart = always\n",
                 "p.ini:3: unknown restart 'always' (use no or on-failure)");
    expect_error("[a]\nplugin = m:s\nrestart = on-failur\n",
                 "p.ini:3: unknown restart 'on-failur' (did you mean 'on-failure'?)");
}

Test(config_errors, on_error_values)
{
    expect_error("[a]\nplugin = m:s\non_error = skipp\n",
                 "p.ini:3: unknown on_error 'skipp' (did you mean 'skip'?)");
    expect_error("[a]\nplugin = m:s\non_error = dead_letter:x.bin\n",
                 "p.ini:3: unknown on_error 'dead_letter:x.bin' (did you mean 'dead-letter:PATH'?)");
    expect_error("[a]\nplugin = m:s\non_error = ignore\n",
                 "p.ini:3: unknown on_error 'ignore' (use fail, skip or dead-letter:PATH)");
    expect_error("[a]\nplugin = m:s\non_error = dead-letter\n",
                 "p.ini:3: on_error = dead-letter needs a file: dead-letter:PATH");
    expect_error("[a]\nplugin = m:s\non_error = dead-letter:  \n",
                 "p.ini:3: on_error = dead-letter needs a file: dead-letter:PATH");
}

Test(config_errors, sizes)
{
    expect_error("[pipeline]\nshared_memory = 12Q\n",
                 "p.ini:2: bad size '12Q' for shared_memory (use a number with an optional "
                 "K, M or G suffix)");
    expect_error("[pipeline]\nshared_memory = -1\n",
                 "p.ini:2: bad size '-1' for shared_memory (use a number with an optional "
                 "K, M or G suffix)");
    expect_error("[pipeline]\nmax_item = 1.5M\n",
                 "p.ini:2: bad size '1.5M' for max_item (use a number with an optional "
                 "K, M or G suffix)");
    expect_error("[pipeline]\nmax_item = 0\n", "p.ini:2: max_item must be greater than 0");
    expect_error("[pipeline]\nmax_item = 99999999999999999999\n",
                 "p.ini:2: size '99999999999999999999' for max_item is too large");
    expect_error("[pipeline]\nshared_memory = 16777216T\n",
                 "p.ini:2: size '16777216T' for shared_memory is too large");
}

Test(config, drain_timeout_durations)
{
    static const struct { const char *text; uint64_t ms; } good[] = {
        {"250ms", 250}, {"30s", 30000}, {"2m", 120000}, {"1h", 3600000}, {"45", 45000}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char text[64], err[CV_ERR_MAX];
        cv_config *cfg = NULL;
        snprintf(text, sizeof text, "[pipeline]\ndrain_timeout = %s\n", good[i].text);
        cr_assert_eq(cv_config_load_string("p.ini", text, &cfg, err, sizeof err), 0, "%s", err);
        cr_expect_eq(cfg->drain_timeout_ms, good[i].ms, "%s", good[i].text);
        cv_config_free(cfg);
    }
    expect_error("[pipeline]\ndrain_timeout = 5 s\n",
                 "p.ini:2: bad duration '5 s' for drain_timeout (use a whole number with ms, s, "
                 "m or h, such as 30s; 0 for no limit)");
    expect_error("[pipeline]\ndrain_timeout = 1.5s\n",
                 "p.ini:2: bad duration '1.5s' for drain_timeout (use a whole number with ms, s, "
                 "m or h, such as 30s; 0 for no limit)");
}

/* An item's length is 32 bits in every path (channel records, pool
 * references, length32 frames): max_item stops at 4G - 1. */
Test(config_errors, max_item_at_the_32_bit_boundary)
{
    cv_config *cfg = NULL;
    char err[CV_ERR_MAX];
    cr_assert_eq(cv_config_load_string("p.ini", "[pipeline]\nmax_item = 4294967295\n", &cfg, err,
                                       sizeof err), 0, "%s", err);
    cr_expect_eq(cfg->max_item, (size_t)UINT32_MAX);
    cv_config_free(cfg);
    expect_error("[pipeline]\nmax_item = 4294967296\n",
                 "p.ini:2: max_item = 4294967296 is larger than 4294967295 bytes (4G - 1), the "
                 "largest item a channel, the pool and length32 framing carry");
    expect_error("\n[pipeline]\nmax_item = 4G\n",
                 "p.ini:3: max_item = 4G is larger than 4294967295 bytes (4G - 1), the "
                 "largest item a channel, the pool and length32 framing carry");
}

Test(config_errors, numbers)
{
    expect_error("[a]\nplugin = m:s\nreplicas = 0\n",
                 "p.ini:3: bad value '0' for replicas (use a whole number from 1 to 1024)");
    expect_error("[a]\nplugin = m:s\nreplicas = 1025\n",
                 "p.ini:3: bad value '1025' for replicas (use a whole number from 1 to 1024)");
    expect_error("[a]\nplugin = m:s\nreplicas = four\n",
                 "p.ini:3: bad value 'four' for replicas (use a whole number from 1 to 1024)");
    expect_error("[a]\nplugin = m:s\nmax_restarts = 1000001\n",
                 "p.ini:3: bad value '1000001' for max_restarts (use a whole number from 0 "
                 "to 1000000)");
    expect_error("[a]\nplugin = m:s\nmax_restarts = -1\n",
                 "p.ini:3: bad value '-1' for max_restarts (use a whole number from 0 "
                 "to 1000000)");
}

Test(config_errors, processor_without_plugin)
{
    expect_error("[a]\nplugin = m:s\n\n[b]\nfoo = 1\n[c]\nplugin = m:s\n",
                 "p.ini:4: stage [b] has no plugin = MODULE:STAGE");
    expect_error("[pipeline]\n[last]\n", "p.ini:2: stage [last] has no plugin = MODULE:STAGE");
    expect_error("[x]\ntype = processor\n", "p.ini:1: stage [x] has no plugin = MODULE:STAGE");
}

Test(config_errors, bad_plugin_values)
{
    const char *bad[] = { "text", ":upper", "text:", " : ", "a:b:c" };
    char text[128], msg[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "[a]\nplugin = %s\n", bad[i]);
        snprintf(msg, sizeof msg, "p.ini:2: bad plugin '%s' (use plugin = MODULE:STAGE)",
                 bad[i][0] == ' ' ? ":" : bad[i]);
        expect_error(text, msg);
    }
}

Test(config_errors, keys_on_the_wrong_type)
{
    expect_error("[r]\ntype = replicate\nplugin = m:s\n",
                 "p.ini:3: plugin is only for processor and source stages ([r] is a replicate)");
    expect_error("[r]\nplugin = m:s\ntype = pipe\n",
                 "p.ini:2: plugin is only for processor and source stages ([r] is a pipe)");
    expect_error("[j]\ntype = join\nreplicas = 2\n",
                 "p.ini:3: replicas is only for processor and source stages ([j] is a join)");
    expect_error("[a]\nplugin = m:s\npolicy = round-robin\n",
                 "p.ini:3: policy is only for balance stages ([a] is a processor)");
    expect_error("[f]\ntype = replicate\npolicy = least-loaded\n",
                 "p.ini:3: policy is only for balance stages ([f] is a replicate)");
    expect_error("[b]\ntype = balance\norder = source\n",
                 "p.ini:3: order is only for join stages and replicated processors and sources ([b] is a balance)");
    expect_error("[b]\ntype = balance\non_error = skip\n",
                 "p.ini:3: on_error is only for processor and source stages ([b] is a balance)");
    expect_error("[b]\ntype = pipe\nrestart = on-failure\n",
                 "p.ini:3: restart is only for processor and source stages ([b] is a pipe)");
    expect_error("[b]\ntype = join\nmax_restarts = 3\n",
                 "p.ini:3: max_restarts is only for processor and source stages ([b] is a join)");
    /* The first misplaced key in the file is the one reported. */
    expect_error("[b]\norder = concat\nreplicas = 2\ntype = balance\n",
                 "p.ini:2: order is only for join stages and replicated processors and sources ([b] is a balance)");
}

Test(config_errors, parameters_on_a_stage_without_plugin)
{
    expect_error("[b]\ntype = balance\npolcy = round-robin\n",
                 "p.ini:3: unknown key 'polcy' in [b] (did you mean 'policy'?)");
    expect_error("[p]\ntype = pipe\ncolour = red\n",
                 "p.ini:3: unknown key 'colour' in [p] (a pipe stage has no plugin parameters)");
}

Test(config_errors, duplicate_sections)
{
    expect_error("[a]\nplugin = m:s\n[b]\nplugin = m:s\n\n[a]\nplugin = m:s\n",
                 "p.ini:6: duplicate section [a] (first at line 1)");
    expect_error("[pipeline]\n[a]\nplugin = m:s\n[pipeline]\n",
                 "p.ini:4: duplicate section [pipeline] (first at line 1)");
}

Test(config_errors, duplicate_keys)
{
    expect_error("[a]\nplugin = m:s\nfoo = 1\n\nfoo = 2\n",
                 "p.ini:5: duplicate key 'foo' in [a] (first at line 3)");
    expect_error("[pipeline]\nframing = nul\nframing = lines\n",
                 "p.ini:3: duplicate key 'framing' in [pipeline] (first at line 2)");
    expect_error("[a]\ntype = pipe\ninput = x\ntype = pipe\n",
                 "p.ini:4: duplicate key 'type' in [a] (first at line 2)");
}

Test(config_errors, key_before_any_section)
{
    expect_error("; header\nframing = nul\n[pipeline]\n",
                 "p.ini:2: key 'framing' before any section (start with [pipeline] or a [stage])");
}

Test(config_errors, empty_values)
{
    expect_error("[pipeline]\noutput =\n", "p.ini:2: empty value for output");
    expect_error("[a]\nplugin =   ; nothing\n", "p.ini:2: empty value for plugin");
    expect_error("[a]\nplugin = m:s\ninput =\n", "p.ini:3: empty value for input");
}

Test(config_errors, syntax)
{
    expect_error("[a]\nplugin = m:s\njust some words\n",
                 "p.ini:3: syntax error: expected 'key = value' or '[section]', found "
                 "'just some words'");
    expect_error("[a\nplugin = m:s\n", "p.ini:1: syntax error: no ']' closing the section name");
    expect_error("[a ; comment]\n", "p.ini:1: syntax error: no ']' closing the section name");
    expect_error("[a] b\n", "p.ini:1: syntax error: text after ']'");
    expect_error("[a]\n= value\n", "p.ini:2: syntax error: a key has no name");
}

Test(config_errors, section_names)
{
    expect_error("[my stage]\n", "p.ini:1: bad section name [my stage] (a stage name uses "
                 "letters, digits, '_', '-' and '.')");
    expect_error("[a,b]\n", "p.ini:1: bad section name [a,b] (a stage name uses "
                 "letters, digits, '_', '-' and '.')");
    expect_error("[]\n", "p.ini:1: bad section name [] (a stage name uses "
                 "letters, digits, '_', '-' and '.')");
    expect_error("[Pipeline]\n", "p.ini:1: the stage name 'Pipeline' is reserved "
                 "(did you mean [pipeline]?)");
}

Test(config_errors, input_lists)
{
    expect_error("[j]\ntype = join\ninput = a,,b\n", "p.ini:3: empty entry in input of [j]");
    expect_error("[j]\ntype = join\ninput = a, b,\n", "p.ini:3: empty entry in input of [j]");
    expect_error("[j]\ntype = join\ninput = a,\n  ,b\n", "p.ini:4: empty entry in input of [j]");
    expect_error("[j]\ntype = join\ninput = a b\n",
                 "p.ini:3: bad stage name 'a b' in input of [j] (use letters, digits, '_', "
                 "'-' and '.', separated by commas)");
    expect_error("[j]\ntype = join\ninput = a\n  b, a\n",
                 "p.ini:4: stage 'a' is listed twice in input of [j]");
}

Test(config_errors, continuation_of_a_single_value_key)
{
    expect_error("[pipeline]\nframing = lines\n  nul\n",
                 "p.ini:2: framing takes a single line (an indented line continues the "
                 "value above it)");
    expect_error("[a]\nplugin = m:s\ntype = join\n   input = x\n",
                 "p.ini:3: type takes a single line (an indented line continues the "
                 "value above it)");
}

Test(config_errors, empty_and_plugin_path)
{
    expect_error("[pipeline]\nplugin_path = a::b\n",
                 "p.ini:2: empty entry in plugin_path 'a::b'");
}

Test(config_errors, over_long_line)
{
    char text[400];
    size_t n;

    /* inih would cut this line at 199 bytes and parse the rest as a line. */
    strcpy(text, "[a]\nplugin = m:s\nlong = ");
    n = strlen(text);
    memset(text + n, 'x', 250 - strlen("long = "));
    strcpy(text + n + 250 - strlen("long = "), "\nnext = 1\n");
    expect_error(text, "p.ini:3: line is longer than 198 bytes");
}

Test(config_errors, longest_line_accepted)
{
    /* 198 bytes plus "\n" plus NUL fill inih's 200-byte buffer exactly. */
    char text[400];
    cv_config *cfg;
    size_t pre = strlen("[a]\nplugin = m:s\nk = ");

    strcpy(text, "[a]\nplugin = m:s\nk = ");
    memset(text + pre, 'v', 198 - strlen("k = "));
    strcpy(text + pre + 198 - strlen("k = "), "\n");
    cfg = load_ok(text);
    cr_expect_eq(strlen(cv_stage_param(&cfg->stages[0], "k")), 198 - strlen("k = "));
    cv_config_free(cfg);

    /* One more byte is one too many, and CRLF does not count against it. */
    strcpy(text + pre + 198 - strlen("k = "), "v\n");
    expect_error(text, "p.ini:3: line is longer than 198 bytes");
    strcpy(text + pre + 198 - strlen("k = "), "\r\n");
    cfg = load_ok(text);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config_errors, error_buffer_is_truncated_safely)
{
    char err[16];
    cv_config *cfg;

    memset(err, 'Z', sizeof err);
    cr_assert_eq(cv_config_load_string(PATH, "[a]\ntype = replciate\n", &cfg, err, 12),
                 -EINVAL);
    cr_expect_str_eq(err, "p.ini:2: un");
    cr_expect_eq(err[12], 'Z');
    cr_expect_null(cfg);
    /* No buffer at all is allowed too. */
    cr_expect_eq(cv_config_load_string(PATH, "[a]\n", &cfg, NULL, 0), -EINVAL);
}

/* ---- files -------------------------------------------------------------- */

Test(config_files, cannot_open)
{
    char err[CV_ERR_MAX];
    cv_config *cfg = (cv_config *)&err;

    cr_expect_eq(cv_config_load("/nonexistent/dir/p.ini", &cfg, err, sizeof err), -ENOENT);
    cr_expect_str_eq(err, "/nonexistent/dir/p.ini: cannot open: No such file or directory");
    cr_expect_null(cfg);
}

Test(config_files, a_directory_cannot_be_read)
{
    char err[CV_ERR_MAX];
    cv_config *cfg;

    cr_expect_eq(cv_config_load("/tmp", &cfg, err, sizeof err), -EISDIR);
    cr_expect_str_eq(err, "/tmp: cannot read: Is a directory");
}

Test(config_files, nul_byte, .init = make_tmpdir, .fini = remove_tmpdir)
{
    static const char bytes[] = "[a]\nplugin = m:s\nk = a\0b\n";
    char err[CV_ERR_MAX], msg[PATH_MAX + 64];
    cv_config *cfg;
    const char *path = write_file("nul.ini", bytes, sizeof bytes - 1);

    cr_expect_eq(cv_config_load(path, &cfg, err, sizeof err), -EINVAL);
    snprintf(msg, sizeof msg, "%s:3: line contains a NUL byte", path);
    cr_expect_str_eq(err, msg);
    cr_expect_null(cfg);
    expect_no_leaks();
}

Test(config_files, over_long_line_in_a_file, .init = make_tmpdir, .fini = remove_tmpdir)
{
    char text[600], err[CV_ERR_MAX], msg[PATH_MAX + 64];
    cv_config *cfg;

    /* Even a comment: inih would parse the cut-off rest as a line. */
    strcpy(text, "[a]\nplugin = m:s\n\n; ");
    size_t n = strlen(text);
    memset(text + n, 'c', 250);
    strcpy(text + n + 250, "\nk = v\n");
    const char *path = write_file("long.ini", text, strlen(text));
    cr_expect_eq(cv_config_load(path, &cfg, err, sizeof err), -EINVAL);
    snprintf(msg, sizeof msg, "%s:4: line is longer than 198 bytes", path);
    cr_expect_str_eq(err, msg);
    expect_no_leaks();
}

Test(config_files, paths_resolved_against_the_ini_folder, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    static const char text[] =
        "[pipeline]\ninput = items.txt\noutput = out/o.txt\nshared_memory_file = /abs.bin\n"
        "plugin_path = p1:p2\n[a]\nplugin = m:s\non_error = dead-letter:dl.bin\n";
    char err[CV_ERR_MAX], want[PATH_MAX + 64];
    cv_config *cfg;
    const char *path = write_file("p.ini", text, sizeof text - 1);

    cr_assert_eq(cv_config_load(path, &cfg, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg->path, path);
    cr_expect_str_eq(cfg->dir, tmpdir);
    snprintf(want, sizeof want, "%s/items.txt", tmpdir);
    cr_expect_str_eq(cfg->input, want);
    snprintf(want, sizeof want, "%s/out/o.txt", tmpdir);
    cr_expect_str_eq(cfg->output, want);
    cr_expect_str_eq(cfg->shm_file, "/abs.bin");
    snprintf(want, sizeof want, "%s/p1:%s/p2", tmpdir, tmpdir);
    cr_expect_str_eq(cfg->plugin_path, want);
    snprintf(want, sizeof want, "%s/dl.bin", tmpdir);
    cr_expect_str_eq(cfg->stages[0].dead_letter_path, want);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config_files, complex_file)
{
    const char *path = data_file("complex.ini");
    char err[CV_ERR_MAX], dir[PATH_MAX], want[PATH_MAX + 64];
    cv_config *cfg;

    cr_assert_eq(cv_config_load(path, &cfg, err, sizeof err), 0, "%s", err);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    cr_expect_str_eq(cfg->dir, dir);

    cr_expect_eq(cfg->pipeline_line, 3);
    snprintf(want, sizeof want, "%s/in/items.txt", dir);
    cr_expect_str_eq(cfg->input, want);
    cr_expect_str_eq(cfg->output, "-");
    cr_expect_eq(cfg->framing, CV_FRAMING_LENGTH32);
    cr_expect_eq(cfg->shm_size, (size_t)4 << 20);
    cr_expect_eq(cfg->shm_size_line, 7);
    snprintf(want, sizeof want, "%s/data.bin", dir);
    cr_expect_str_eq(cfg->shm_file, want);
    cr_expect_eq(cfg->shm_file_line, 8);
    cr_expect_eq(cfg->shm_readonly, 1);
    snprintf(want, sizeof want, "%s/plugins:/usr/lib/conveyor-extra", dir);
    cr_expect_str_eq(cfg->plugin_path, want);
    cr_expect_eq(cfg->transport, CV_TRANSPORT_PIPE);
    cr_expect_eq(cfg->max_item, (size_t)1 << 20);

    static const char *const names[] = {
        "parse", "fan", "left", "right", "spread", "w1", "w.2", "merge", "out"
    };
    static const enum cv_stage_type types[] = {
        CV_TYPE_PROCESSOR, CV_TYPE_REPLICATE, CV_TYPE_PROCESSOR, CV_TYPE_PROCESSOR,
        CV_TYPE_BALANCE, CV_TYPE_PROCESSOR, CV_TYPE_PROCESSOR, CV_TYPE_JOIN, CV_TYPE_PIPE
    };
    static const int lines[] = { 14, 23, 27, 31, 36, 41, 45, 51, 59 };
    cr_assert_eq(cfg->nstages, 9);
    for (size_t i = 0; i < 9; i++) {
        cr_expect_str_eq(cfg->stages[i].name, names[i]);
        cr_expect_eq(cfg->stages[i].type, types[i], "stage %s", names[i]);
        cr_expect_eq(cfg->stages[i].line, lines[i], "stage %s", names[i]);
    }

    const cv_stage_cfg *st = &cfg->stages[0];
    cr_expect_str_eq(st->module, "text");
    cr_expect_str_eq(st->stage, "split");
    cr_expect_eq(st->plugin_line, 15);
    cr_expect_str_eq(cv_stage_param(st, "separator"), "|");
    cr_expect_eq(st->params[0].line, 16);
    cr_expect_eq(st->replicas, 4);
    cr_expect_eq(st->on_error, CV_ON_ERROR_DEAD_LETTER);
    snprintf(want, sizeof want, "%s/bad/items.txt", dir);
    cr_expect_str_eq(st->dead_letter_path, want);
    cr_expect_eq(st->restart, CV_RESTART_ON_FAILURE);
    cr_expect_eq(st->max_restarts, 3);
    cr_expect_eq(st->inputs_default, 1);
    cr_expect_eq(st->input_line, 14);

    cr_expect_str_eq(cfg->stages[3].stage, "lower");
    cr_expect_eq(cfg->stages[3].on_error, CV_ON_ERROR_SKIP);
    cr_expect_eq(cfg->stages[4].policy, CV_POLICY_ROUND_ROBIN);
    cr_expect_eq(cfg->stages[4].policy_line, 38);
    cr_expect_eq(cfg->stages[4].type_line, 39);
    cr_expect_str_eq(cv_stage_param(&cfg->stages[6], "greeting"), "hello\nworld");

    st = &cfg->stages[7];
    cr_expect_eq(st->order, CV_ORDER_SOURCE);
    cr_expect_eq(st->input_line, 54);
    cr_assert_eq(st->ninputs, 3);
    cr_expect_str_eq(st->inputs[0].name, "left");
    cr_expect_eq(st->inputs[0].line, 55);
    cr_expect_str_eq(st->inputs[1].name, "w1");
    cr_expect_eq(st->inputs[1].line, 56);
    cr_expect_str_eq(st->inputs[2].name, "w.2");
    cr_expect_eq(st->inputs[2].line, 57);

    st = &cfg->stages[8];
    cr_expect_eq(st->inputs_default, 1);
    cr_expect_eq(st->input_line, 59);
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config_files, bom_and_crlf)
{
    char err[CV_ERR_MAX];
    cv_config *cfg;

    cr_assert_eq(cv_config_load(data_file("bom-crlf.ini"), &cfg, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg->pipeline_line, 2);
    cr_expect_eq(cfg->framing, CV_FRAMING_NUL);
    cr_assert_eq(cfg->nstages, 1);
    cr_expect_str_eq(cfg->stages[0].name, "only");
    cr_expect_eq(cfg->stages[0].line, 5);
    cr_expect_str_eq(cfg->stages[0].stage, "upper");
    cr_expect_str_eq(cv_stage_param(&cfg->stages[0], "note"), "two\nlines");
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config_files, same_result_from_file_and_string, .init = make_tmpdir, .fini = remove_tmpdir)
{
    static const char text[] = "[pipeline]\nframing = nul\n[a]\nplugin = m:s\nx = 1\n  2\n";
    char err[CV_ERR_MAX];
    cv_config *a, *b;
    const char *path = write_file("p.ini", text, sizeof text - 1);

    cr_assert_eq(cv_config_load(path, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cv_config_load_string(path, text, &b, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(a->dir, b->dir);
    cr_expect_eq(a->framing, b->framing);
    cr_expect_str_eq(a->stages[0].params[0].value, "1\n2");
    cr_expect_str_eq(b->stages[0].params[0].value, "1\n2");
    cv_config_free(a);
    cv_config_free(b);
    expect_no_leaks();
}

/* ---- arbitrary bytes ---------------------------------------------------- */

/* Fragments that reach every branch of the reader and the handler, glued
 * with random bytes: whatever comes out must be a config or a located
 * error, with nothing leaked (a libFuzzer target can reuse the same call). */
Test(config_robustness, random_texts)
{
    static const char *const pieces[] = {
        "[pipeline]", "[a]", "[b]", " [c]", "[j]", "[", "]", "type = join", "type = balance",
        "type = pipe", "plugin = m:s", "input = a, b", "input =", "  a,", "\tb", "  ; c",
        "# c", "policy = round-robin", "order = source", "replicas = 3", "framing = nul",
        "shared_memory = 4K", "plugin_path = x:y", "on_error = dead-letter:d", "k = v",
        "= v", "x", "\xef\xbb\xbf", "\r", ";", "=", ":", ",", " ", "\n", "\n\n",
    };
    unsigned seed = 12345;
    char text[1024];

    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        int parts = rand_r(&seed) % 16;
        for (int i = 0; i < parts && n < sizeof text - 300; i++) {
            if (rand_r(&seed) % 4 == 0) {
                int len = rand_r(&seed) % 8;
                for (int k = 0; k < len; k++)
                    text[n++] = (char)(rand_r(&seed) % 255 + 1);
            } else {
                const char *piece = pieces[rand_r(&seed) % (sizeof pieces / sizeof pieces[0])];
                memcpy(text + n, piece, strlen(piece));
                n += strlen(piece);
            }
            if (rand_r(&seed) % 3)
                text[n++] = '\n';
        }
        if (rand_r(&seed) % 50 == 0) {  /* now and then an over-long line */
            memset(text + n, 'L', 250);
            n += 250;
        }
        text[n] = '\0';

        char err[CV_ERR_MAX] = "";
        cv_config *cfg = NULL;
        int rc = load(text, &cfg, err, sizeof err);
        if (rc == 0) {
            cr_assert_not_null(cfg);
            cv_config_free(cfg);
        } else {
            cr_assert_eq(rc, -EINVAL, "rc %d for:\n%s", rc, text);
            cr_assert_null(cfg);
            cr_assert_eq(strncmp(err, PATH ":", strlen(PATH ":")), 0, "message '%s'", err);
        }
    }
    expect_no_leaks();
}

/* ---- quoted plugin parameters -------------------------------------------- */

Test(config_quotes, plugin_values_in_quotes_are_unquoted)
{
    cv_config *cfg = load_ok("[s]\nplugin = m:t\n"
                             "sep = \";\"\n"
                             "space = \" \"\n"
                             "outer = \"  a ; b  \"   ; a comment\n"
                             "escapes = \"say \\\"hi\\\" \\\\ back\\\\slash \\d\"\n"
                             "empty = \"\"\n"
                             "inner = a \"b\" c\n"
                             "word = \"my prog\" -x\n"
                             "bare = plain ; comment\n"
                             "hash = \"#1\"\n");
    const cv_stage_cfg *st = &cfg->stages[0];

    cr_expect_str_eq(cv_stage_param(st, "sep"), ";");
    cr_expect_str_eq(cv_stage_param(st, "space"), " ");
    cr_expect_str_eq(cv_stage_param(st, "outer"), "  a ; b  ");
    /* \" and \\ are the only escapes: any other backslash stays. */
    cr_expect_str_eq(cv_stage_param(st, "escapes"), "say \"hi\" \\ back\\slash \\d");
    cr_expect_str_eq(cv_stage_param(st, "empty"), "");
    /* Quotes that do not enclose the whole value are the plugin's. */
    cr_expect_str_eq(cv_stage_param(st, "inner"), "a \"b\" c");
    cr_expect_str_eq(cv_stage_param(st, "word"), "\"my prog\" -x");
    cr_expect_str_eq(cv_stage_param(st, "bare"), "plain");
    cr_expect_str_eq(cv_stage_param(st, "hash"), "#1");
    cv_config_free(cfg);
    expect_no_leaks();
}

Test(config_quotes, unclosed_quote_is_an_error_at_its_line)
{
    expect_error("[s]\nplugin = m:t\n\nsep = \"; x\n",
                 "p.ini:4: [s] key 'sep': the '\"' that opens its value is not closed (write \\\" "
                 "for a quote inside it)");
    expect_error("[s]\nplugin = m:t\nsep = \"abc\\\"\n",
                 "p.ini:3: [s] key 'sep': the '\"' that opens its value is not closed (write \\\" "
                 "for a quote inside it)");
}

Test(config_quotes, quoted_value_does_not_continue)
{
    expect_error("[s]\nplugin = m:t\nsep = \"a\"\n  more\n",
                 "p.ini:4: [s] key 'sep': a value in quotes cannot continue on the next line");
}

Test(config_quotes, framework_keys_read_the_line_as_before)
{
    /* A framework key is not unquoted: its value is checked as written. */
    expect_error("[s]\nplugin = m:t\nreplicas = \"2\"\n",
                 "p.ini:3: bad value '\"2\"' for replicas (use a whole number from 1 to 1024)");
}
