/* SPDX-License-Identifier: MIT */
/*
 * config_keys.c - the keys of pipeline.ini, one row each, and the code that
 * reads a value into its field (contract in config_keys.h).
 *
 * A row's kind (path, enum, unsigned, size) reads most values; the few that
 * are not one value (plugin = MODULE:STAGE, the input list, on_error with a
 * dead-letter file, plugin_path, pool_size's "auto") have a parse function
 * of their own, next to the table.  Defaults are written as in the file and
 * read by the same code at the start of every section, so a default can
 * never be a value the key refuses.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/config_keys.h"
#include "base/util.h"

/* The enum fields are read and written as int. */
_Static_assert(sizeof(enum cv_stage_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_framing) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_order) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_on_error) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cv_restart) == sizeof(int), "enum size");

static const char *const type_names[] = {
    "processor", "pipe", "replicate", "balance", "join", "source", NULL
};
static const char *const policy_names[] = { "least-loaded", "round-robin", NULL };
static const char *const order_names[] = { "arrival", "concat", "source", NULL };
static const char *const framing_names[] = { "lines", "nul", "length32", NULL };
static const char *const transport_names[] = { "ring", "pipe", NULL };
static const char *const shm_mode_names[] = { "rw", "ro", NULL };
static const char *const restart_names[] = { "no", "on-failure", NULL };
static const char *const on_error_words[] = { "fail", "skip", "dead-letter", NULL };

/* ---- messages --------------------------------------------------------- */

int cv_config_vfail(cv_config_error *e, int line, const char *fmt, va_list ap)
{
    if (e->rc)
        return e->rc;
    e->rc = cv_verr_at(e->buf, e->len, -EINVAL, e->path, line, fmt, ap);
    return e->rc;
}

int cv_config_fail(cv_config_error *e, int line, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = cv_config_vfail(e, line, fmt, ap);
    va_end(ap);
    return rc;
}

static int lookup(const char *value, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

/* "unknown KEY 'VALUE' (did you mean 'X'?)", or the list of choices. */
static int fail_choice(const cv_key_value *v, const char *key, const char *const *choices)
{
    const char *s = cv_suggest(v->value, choices);
    char list[256] = "";
    size_t n = 0;

    if (s)
        return cv_config_fail(v->err, v->line, "unknown %s '%s' (did you mean '%s'?)", key,
                              v->value, s);
    for (size_t i = 0; choices[i]; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int m = snprintf(list + n, sizeof list - n, "%s%s", sep, choices[i]);
        if (m < 0 || (size_t)m >= sizeof list - n)
            break;
        n += (size_t)m;
    }
    return cv_config_fail(v->err, v->line, "unknown %s '%s' (use %s)", key, v->value, list);
}

/* ---- values of each kind ------------------------------------------------ */

static void *field(void *obj, size_t off)
{
    return (char *)obj + off;
}

static int read_size(const cv_config_key *k, size_t *out, const cv_key_value *v)
{
    size_t z;
    int rc = cv_parse_size(v->value, &z);

    if (rc == -ERANGE)
        return cv_config_fail(v->err, v->line, "size '%s' for %s is too large", v->value,
                              k->name);
    if (rc < 0)
        return cv_config_fail(v->err, v->line, "bad size '%s' for %s (use a number with an "
                              "optional K, M or G suffix)", v->value, k->name);
    if (z < k->min)
        return cv_config_fail(v->err, v->line, "%s must be greater than %u", k->name,
                              k->min - 1);
    if (k->max && z > k->max)
        return cv_config_fail(v->err, v->line, "%s = %s is larger than %u bytes (4G - 1), "
                              "the largest item a channel, the pool and length32 framing carry",
                              k->name, v->value, k->max);
    *out = z;
    return 0;
}

static int read_kind(const cv_config_key *k, void *f, const cv_key_value *v)
{
    int i;

    switch (k->kind) {
    case CV_KEY_PATH:
        free(*(char **)f);
        *(char **)f = cv_path_join(v->dir, v->value);
        return 0;
    case CV_KEY_ENUM:
        if ((i = lookup(v->value, k->names)) < 0)
            return fail_choice(v, k->name, k->names);
        *(int *)f = i;
        return 0;
    case CV_KEY_UINT:
        if (cv_parse_uint(v->value, k->min, k->max, f) < 0)
            return cv_config_fail(v->err, v->line, "bad value '%s' for %s (use a whole "
                                  "number from %u to %u)", v->value, k->name, k->min, k->max);
        return 0;
    case CV_KEY_SIZE:
        return read_size(k, f, v);
    case CV_KEY_DURATION:
        if (cv_parse_duration(v->value, f) < 0)
            return cv_config_fail(v->err, v->line, "bad duration '%s' for %s (use a whole number "
                                  "with ms, s, m or h, such as 30s; 0 for no limit)", v->value,
                                  k->name);
        return 0;
    case CV_KEY_OTHER:
        break;
    }
    return cv_config_fail(v->err, v->line, "%s has no parser", k->name);  /* a bad row */
}

/* ---- the odd keys ------------------------------------------------------- */

/* plugin_path = a:b, each folder resolved against the INI file's. */
static int read_plugin_path(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    char *joined = NULL, **out = field(obj, k->off);

    /* Not strtok: it would skip the empty part of "a::b", a mistake worth
     * naming. */
    for (const char *s = v->value;;) {
        const char *colon = strchr(s, ':');
        char *part = cv_trim(cv_strndup(s, colon ? (size_t)(colon - s) : strlen(s)));
        if (!*part) {
            free(part);
            free(joined);
            return cv_config_fail(v->err, v->line, "empty entry in plugin_path '%s'",
                                  v->value);
        }
        char *resolved = cv_path_join(v->dir, part);
        char *longer = joined ? cv_asprintf("%s:%s", joined, resolved) : cv_strdup(resolved);
        free(part);
        free(resolved);
        free(joined);
        joined = longer;
        if (!colon)
            break;
        s = colon + 1;
    }
    free(*out);
    *out = joined;
    return 0;
}

/* pool_size = auto, 0 (no pool) or a size of at least CV_POOL_MIN. */
static int read_pool_size(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    size_t *out = field(obj, k->off), z;

    if (strcmp(v->value, "auto") == 0) {
        *out = CV_POOL_AUTO;
        return 0;
    }
    if (read_size(k, &z, v))
        return v->err->rc;
    if (z != 0 && z < CV_POOL_MIN)
        return cv_config_fail(v->err, v->line, "pool_size must be 0 (no pool), auto, or at "
                              "least 256K");
    *out = z;
    return 0;
}

/* plugin = MODULE:STAGE */
static int read_plugin(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    cv_stage_cfg *st = obj;
    const char *colon = strchr(v->value, ':');
    char *module, *stage;

    (void)k;
    if (!colon || strchr(colon + 1, ':'))
        return cv_config_fail(v->err, v->line, "bad plugin '%s' (use plugin = MODULE:STAGE)",
                              v->value);
    module = cv_trim(cv_strndup(v->value, (size_t)(colon - v->value)));
    stage = cv_trim(cv_strdup(colon + 1));
    if (!*module || !*stage) {
        free(module);
        free(stage);
        return cv_config_fail(v->err, v->line, "bad plugin '%s' (use plugin = MODULE:STAGE)",
                              v->value);
    }
    free(st->module);
    free(st->stage);
    st->module = module;
    st->stage = stage;
    return 0;
}

bool cv_config_valid_stage_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static int add_input(cv_stage_cfg *st, const char *name, int line, cv_config_error *err)
{
    if (!*name)
        return cv_config_fail(err, line, "empty entry in input of [%s]", st->name);
    if (!cv_config_valid_stage_name(name))
        return cv_config_fail(err, line, "bad stage name '%s' in input of [%s] (use letters, "
                              "digits, '_', '-' and '.', separated by commas)", name, st->name);
    for (size_t i = 0; i < st->ninputs; i++)
        if (strcmp(st->inputs[i].name, name) == 0)
            return cv_config_fail(err, line, "stage '%s' is listed twice in input of [%s]",
                                  name, st->name);
    st->inputs = cv_realloc(st->inputs, (st->ninputs + 1) * sizeof *st->inputs);
    st->inputs[st->ninputs].name = cv_strdup(name);
    st->inputs[st->ninputs].line = line;
    st->ninputs++;
    return 0;
}

/* input = a, b  or one name per line.  A comma at the end of a line that
 * another line continues is a separator, not an empty entry. */
static int read_inputs(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    cv_stage_cfg *st = obj;
    const char *s = v->value;
    int rc = 0;

    (void)k;
    st->inputs_default = 0;
    for (size_t seg = 0; !rc && seg < v->nlines; seg++) {
        const char *nl = strchr(s, '\n');
        char *part = cv_strndup(s, nl ? (size_t)(nl - s) : strlen(s));
        size_t len = strlen(cv_trim(part));
        int line = v->lines[seg];

        if (nl && len > 0 && part[len - 1] == ',')
            part[len - 1] = '\0';
        for (char *q = part;;) {
            char *comma = strchr(q, ',');
            if (comma)
                *comma = '\0';
            rc = add_input(st, cv_trim(q), line, v->err);
            if (rc || !comma)
                break;
            q = comma + 1;
        }
        free(part);
        s = nl ? nl + 1 : s + strlen(s);
    }
    return rc;
}

/* Without an input key a stage reads from the section above; its line, for
 * messages about that input, is the section's. */
static void unset_inputs(void *obj, int header_line)
{
    cv_stage_cfg *st = obj;

    st->inputs_default = 1;
    st->input_line = header_line;
}

/* on_error = fail | skip | dead-letter:PATH */
static int read_on_error(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    cv_stage_cfg *st = obj;
    const char *value = v->value, *colon = strchr(value, ':');
    size_t word = colon ? (size_t)(colon - value) : strlen(value);

    if (strcmp(value, "fail") == 0) {
        st->on_error = CV_ON_ERROR_FAIL;
    } else if (strcmp(value, "skip") == 0) {
        st->on_error = CV_ON_ERROR_SKIP;
    } else if (colon && word == strlen("dead-letter") && strncmp(value, "dead-letter", word) == 0) {
        char *path = cv_trim(cv_strdup(colon + 1));
        if (!*path) {
            free(path);
            return cv_config_fail(v->err, v->line, "on_error = dead-letter needs a file: "
                                  "dead-letter:PATH");
        }
        st->on_error = CV_ON_ERROR_DEAD_LETTER;
        free(st->dead_letter_path);
        st->dead_letter_path = cv_path_join(v->dir, path);
        free(path);
    } else if (strcmp(value, "dead-letter") == 0) {
        return cv_config_fail(v->err, v->line, "on_error = dead-letter needs a file: "
                              "dead-letter:PATH");
    } else {
        /* Suggest on the word before ':' so "dead_letter:x" finds its match. */
        char *w = cv_strndup(value, word);
        const char *s = cv_suggest(w, k->names);
        free(w);
        if (s && strcmp(s, "dead-letter") == 0)
            return cv_config_fail(v->err, v->line, "unknown on_error '%s' (did you mean "
                                  "'dead-letter:PATH'?)", value);
        if (s)
            return cv_config_fail(v->err, v->line, "unknown on_error '%s' (did you mean "
                                  "'%s'?)", value, s);
        return cv_config_fail(v->err, v->line, "unknown on_error '%s' (use fail, skip or "
                              "dead-letter:PATH)", value);
    }
    return 0;
}

/* ---- the table ---------------------------------------------------------- */

#define PIPELINE(n) .name = (n), .section = CV_SECTION_PIPELINE
#define STAGE(n, t) .name = (n), .section = CV_SECTION_STAGE, .types = (t)
#define CFG(f) offsetof(cv_config, f)
#define STG(f) offsetof(cv_stage_cfg, f)
#define PLUGIN CV_TYPES_PLUGIN
#define PLUGIN_TEXT "processor and source stages"

/* Within a section, the order is the order suggestions are tried in. */
const cv_config_key cv_config_keys[] = {
    { PIPELINE("input"), .kind = CV_KEY_PATH, .def = "-", .off = CFG(input),
      .line_off = CFG(input_line) },
    { PIPELINE("output"), .kind = CV_KEY_PATH, .def = "-", .off = CFG(output) },
    { PIPELINE("framing"), .kind = CV_KEY_ENUM, .names = framing_names, .def = "lines",
      .off = CFG(framing) },
    { PIPELINE("shared_memory"), .kind = CV_KEY_SIZE, .def = "0",
      .off = CFG(shm_size), .line_off = CFG(shm_size_line) },
    { PIPELINE("shared_memory_file"), .kind = CV_KEY_PATH,
      .off = CFG(shm_file), .line_off = CFG(shm_file_line) },
    { PIPELINE("shared_memory_mode"), .kind = CV_KEY_ENUM, .names = shm_mode_names,
      .def = "rw", .off = CFG(shm_readonly) },
    { PIPELINE("plugin_path"), .kind = CV_KEY_PATH, .parse = read_plugin_path,
      .off = CFG(plugin_path) },
    /* The test-suite runs every pipeline on both transports with the
     * environment's choice of default. */
    { PIPELINE("transport"), .kind = CV_KEY_ENUM, .names = transport_names, .def = "ring",
      .env = "CONVEYOR_TRANSPORT", .off = CFG(transport) },
    { PIPELINE("max_item"), .kind = CV_KEY_SIZE, .min = 1, .max = UINT32_MAX, .def = "64M",
      .off = CFG(max_item) },
    { PIPELINE("pool_size"), .kind = CV_KEY_SIZE, .parse = read_pool_size, .def = "auto",
      .off = CFG(pool_size), .line_off = CFG(pool_size_line) },
    { PIPELINE("pool_threshold"), .kind = CV_KEY_SIZE, .min = 1, .def = "64K",
      .off = CFG(pool_threshold) },
    { PIPELINE("drain_timeout"), .kind = CV_KEY_DURATION, .def = "30s",
      .off = CFG(drain_timeout_ms) },
    { PIPELINE("metrics_file"), .kind = CV_KEY_PATH, .off = CFG(metrics_file) },
    { PIPELINE("metrics_interval"), .kind = CV_KEY_DURATION, .def = "5s",
      .off = CFG(metrics_interval_ms) },

    { STAGE("type", CV_TYPES_ALL), .kind = CV_KEY_ENUM, .names = type_names,
      .def = "processor", .off = STG(type), .line_off = STG(type_line) },
    { STAGE("plugin", PLUGIN), .types_text = PLUGIN_TEXT, .kind = CV_KEY_OTHER, .parse = read_plugin,
      .off = STG(module), .line_off = STG(plugin_line) },
    /* A source has no input: it is where items come from. */
    { STAGE("input", CV_TYPES_ALL & ~CV_TYPE_BIT(CV_TYPE_SOURCE)),
      .types_text = "stages that read items (a source makes its own)", .kind = CV_KEY_OTHER, .parse = read_inputs,
      .unset = unset_inputs, .multi_line = true,
      .off = STG(inputs), .line_off = STG(input_line) },
    { STAGE("replicas", PLUGIN), .types_text = PLUGIN_TEXT, .kind = CV_KEY_UINT, .min = 1, .max = 1024, .def = "1",
      .off = STG(replicas), .line_off = STG(replicas_line) },
    { STAGE("policy", CV_TYPE_BIT(CV_TYPE_BALANCE)), .kind = CV_KEY_ENUM,
      .names = policy_names, .def = "least-loaded",
      .off = STG(policy), .line_off = STG(policy_line) },
    /* A processor's (or source's) order says how its replicas' outputs merge. */
    { STAGE("order", CV_TYPE_BIT(CV_TYPE_JOIN) | PLUGIN),
      .types_text = "join stages and replicated processors and sources",
      .kind = CV_KEY_ENUM, .names = order_names, .def = "arrival",
      .off = STG(order), .line_off = STG(order_line) },
    { STAGE("on_error", PLUGIN), .types_text = PLUGIN_TEXT, .kind = CV_KEY_ENUM, .names = on_error_words,
      .parse = read_on_error, .def = "fail",
      .off = STG(on_error), .line_off = STG(on_error_line) },
    { STAGE("restart", PLUGIN), .types_text = PLUGIN_TEXT, .kind = CV_KEY_ENUM, .names = restart_names, .def = "no",
      .off = STG(restart), .line_off = STG(restart_line) },
    { STAGE("max_restarts", PLUGIN), .types_text = PLUGIN_TEXT, .kind = CV_KEY_UINT, .min = 0, .max = 1000000,
      .def = "5", .off = STG(max_restarts) },
    { .name = NULL },
};

/* ---- walking the table -------------------------------------------------- */

const cv_config_key *cv_config_key_find(enum cv_section s, const char *name)
{
    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->section == s && strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const char *cv_config_key_suggest(enum cv_section s, const char *word)
{
    const char *names[sizeof cv_config_keys / sizeof cv_config_keys[0]];
    size_t n = 0;

    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->section == s)
            names[n++] = k->name;
    names[n] = NULL;
    return cv_suggest(word, names);
}

const char *cv_config_stage_key(size_t i)
{
    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->section == CV_SECTION_STAGE && i-- == 0)
            return k->name;
    return NULL;
}

int cv_config_key_check_type(const cv_config_key *k, const cv_stage_cfg *st, int line,
                             cv_config_error *err)
{
    const char *tname = cv_type_name(st->type);

    if (k->types & CV_TYPE_BIT(st->type))
        return 0;
    if (k->types_text)
        return cv_config_fail(err, line, "%s is only for %s ([%s] is a %s)", k->name,
                              k->types_text, st->name, tname);
    for (enum cv_stage_type t = CV_TYPE_PROCESSOR; t <= CV_TYPE_SOURCE; t++)
        if (k->types == CV_TYPE_BIT(t))
            return cv_config_fail(err, line, "%s is only for %s stages ([%s] is a %s)",
                                  k->name, cv_type_name(t), st->name, tname);
    return cv_config_fail(err, line, "%s is not for a %s stage", k->name, tname);  /* a bad row */
}

int cv_config_key_read(const cv_config_key *k, void *obj, const cv_key_value *v)
{
    int rc;

    if (!*v->value)
        return cv_config_fail(v->err, v->line, "empty value for %s", k->name);
    if (!k->multi_line && strchr(v->value, '\n'))
        return cv_config_fail(v->err, v->line, "%s takes a single line (an indented line "
                              "continues the value above it)", k->name);
    rc = k->parse ? k->parse(k, obj, v) : read_kind(k, field(obj, k->off), v);
    if (rc == 0 && k->line_off && v->line > 0)
        *(int *)field(obj, k->line_off) = v->line;
    return rc;
}

int cv_config_key_defaults(enum cv_section s, void *obj, const char *dir, int header_line,
                           cv_config_error *err)
{
    static const int no_line = 0;

    for (const cv_config_key *k = cv_config_keys; k->name; k++) {
        if (k->section != s)
            continue;
        if (k->unset)
            k->unset(obj, header_line);
        const char *def = k->def, *env = k->env ? getenv(k->env) : NULL;
        /* Only a value the key takes: anything else leaves the default. */
        if (env && k->kind == CV_KEY_ENUM && lookup(env, k->names) >= 0)
            def = env;
        if (!def)
            continue;
        cv_key_value v = {
            .value = def, .line = 0, .lines = &no_line, .nlines = 1, .dir = dir, .err = err,
        };
        int rc = cv_config_key_read(k, obj, &v);
        if (rc)
            return rc;
    }
    return 0;
}

void cv_config_key_free(enum cv_section s, void *obj)
{
    for (const cv_config_key *k = cv_config_keys; k->name; k++)
        if (k->section == s && k->kind == CV_KEY_PATH) {
            char **f = field(obj, k->off);
            free(*f);
            *f = NULL;
        }
}

/* ---- names for messages ------------------------------------------------- */

const char *cv_type_name(enum cv_stage_type t)
{
    return (unsigned)t <= CV_TYPE_SOURCE ? type_names[t] : "?";
}

const char *cv_policy_name(enum cv_policy p)
{
    return (unsigned)p < 2 ? policy_names[p] : "?";
}

const char *cv_order_name(enum cv_order o)
{
    return (unsigned)o < 3 ? order_names[o] : "?";
}

const char *cv_framing_name(enum cv_framing f)
{
    return (unsigned)f < 3 ? framing_names[f] : "?";
}
