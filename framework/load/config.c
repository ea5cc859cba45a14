/*
 * config.c - reads pipeline.ini into a cv_config (contract in config.h).
 *
 * inih does the splitting into sections, keys and values, but it tells its
 * handler neither the line number nor where a section starts, cuts lines
 * longer than its buffer, and treats an indented line as more of the
 * previous value.  So inih reads through our own reader, which counts lines,
 * refuses NUL bytes and over-long lines before inih could cut them, and
 * classifies each line the way inih is about to (blank, [section],
 * key = value, continuation).  The handler then knows the line and the kind
 * of every call it gets.
 *
 * A key is interpreted once its value is complete, that is when the next
 * key, section or end of file arrives (continuation lines may follow it);
 * checks that involve several keys of a stage (policy needs type = balance,
 * ...) run when the section ends.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "load/config.h"
#include "base/util.h"

#define DEFAULT_MAX_ITEM ((size_t)64 << 20)
#define DEFAULT_MAX_RESTARTS 5u
#define MAX_REPLICAS 1024u
#define MAX_MAX_RESTARTS 1000000u

/* The comment characters the classifier below assumes; pinned into inih's
 * run-time options so that both always agree. */
static char start_comment_prefixes[] = ";#";
static char inline_comment_prefixes[] = ";";

enum line_kind { LINE_BLANK, LINE_SECTION, LINE_KEY, LINE_CONTINUATION };
enum section_kind { SECTION_NONE, SECTION_PIPELINE, SECTION_STAGE };

struct seen_key {
    char *key;
    int line;
};

/* The last key read: its value may still grow by continuation lines.
 * lines[i] is the line of the i-th '\n'-separated part of value. */
struct pending {
    bool active;
    char *key;
    char *value;
    int line;                 /* the key's own line */
    int *lines;
    size_t nlines;
};

struct parser {
    const char *path;
    cv_config *cfg;
    char *err;
    size_t errlen;
    int rc;                   /* 0, or the first error's code */

    FILE *fp;                 /* the source: a file ... */
    const char *text;         /* ... or a string */
    size_t textpos;

    int lineno;               /* lines read so far */
    enum line_kind kind;      /* of the line inih is processing */
    bool prev_key;            /* inih's "prev_name": continuations allowed */

    enum section_kind section;
    size_t stage;             /* index of the current stage */
    int max_restarts_line;    /* config.h has no field for it */
    struct seen_key *seen;    /* keys of the current section */
    size_t nseen;
    struct pending pend;
};

static const char *const pipeline_keys[] = {
    "input", "output", "framing", "shared_memory", "shared_memory_file",
    "shared_memory_mode", "plugin_path", "transport", "max_item", "pool_size",
    "pool_threshold", NULL
};
static const char *const stage_keys[] = {
    "type", "plugin", "input", "replicas", "policy", "order", "on_error",
    "restart", "max_restarts", NULL
};
static const char *const type_names[] = {
    "processor", "pipe", "replicate", "balance", "join", NULL
};
static const char *const policy_names[] = { "least-loaded", "round-robin", NULL };
static const char *const order_names[] = { "arrival", "concat", "source", NULL };
static const char *const framing_names[] = { "lines", "nul", "length32", NULL };
static const char *const transport_names[] = { "ring", "pipe", NULL };
static const char *const shm_mode_names[] = { "rw", "ro", NULL };
static const char *const restart_names[] = { "no", "on-failure", NULL };
static const char *const on_error_words[] = { "fail", "skip", "dead-letter", NULL };

/* ---- messages --------------------------------------------------------- */

static void set_err(struct parser *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void set_err(struct parser *p, const char *fmt, va_list ap)
{
    if (p->err && p->errlen > 0)
        vsnprintf(p->err, p->errlen, fmt, ap);
}

/* Records the first error as "PATH:LINE: ..." and returns -EINVAL. */
static int fail(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;

    if (p->rc)
        return p->rc;
    p->rc = -EINVAL;
    if (p->err && p->errlen > 0) {
        int n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
        if (n >= 0 && (size_t)n < p->errlen) {
            va_start(ap, fmt);
            vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return p->rc;
}

/* Same without a line, for errors about the file as a whole. */
static int fail_file(struct parser *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_file(struct parser *p, int rc, const char *fmt, ...)
{
    va_list ap;

    if (p->rc)
        return p->rc;
    p->rc = rc;
    va_start(ap, fmt);
    set_err(p, fmt, ap);
    va_end(ap);
    return rc;
}

/* "unknown WHAT 'VALUE' (did you mean 'X'?)", or the list of choices. */
static int fail_choice(struct parser *p, int line, const char *what,
                       const char *value, const char *const *choices)
{
    const char *s = cv_suggest(value, choices);
    char list[256] = "";
    size_t n = 0;

    if (s)
        return fail(p, line, "unknown %s '%s' (did you mean '%s'?)", what, value, s);
    for (size_t i = 0; choices[i]; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int m = snprintf(list + n, sizeof list - n, "%s%s", sep, choices[i]);
        if (m < 0 || (size_t)m >= sizeof list - n)
            break;
        n += (size_t)m;
    }
    return fail(p, line, "unknown %s '%s' (use %s)", what, value, list);
}

/* ---- small parsers ------------------------------------------------------ */

static int lookup(const char *value, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

/* Letters, digits, '_', '-' and '.': what can be listed in `input`. */
static bool valid_stage_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static int parse_enum(struct parser *p, int line, const char *key,
                      const char *value, const char *const *names, int *out)
{
    int i = lookup(value, names);
    if (i < 0)
        return fail_choice(p, line, key, value, names);
    *out = i;
    return 0;
}

static int parse_size_key(struct parser *p, int line, const char *key,
                          const char *value, size_t *out)
{
    int rc = cv_parse_size(value, out);
    if (rc == -ERANGE)
        return fail(p, line, "size '%s' for %s is too large", value, key);
    if (rc < 0)
        return fail(p, line, "bad size '%s' for %s (use a number with an optional "
                    "K, M or G suffix)", value, key);
    return 0;
}

static int parse_uint_key(struct parser *p, int line, const char *key,
                          const char *value, unsigned min, unsigned max,
                          unsigned *out)
{
    if (cv_parse_uint(value, min, max, out) < 0)
        return fail(p, line, "bad value '%s' for %s (use a whole number from %u to %u)",
                    value, key, min, max);
    return 0;
}

/* ---- the [pipeline] section --------------------------------------------- */

static int set_plugin_path(struct parser *p, int line, const char *value)
{
    char *joined = NULL;

    /* Not strtok: it would skip the empty part of "a::b", a mistake worth
     * naming. */
    for (const char *s = value;;) {
        const char *colon = strchr(s, ':');
        char *part = cv_trim(cv_strndup(s, colon ? (size_t)(colon - s) : strlen(s)));
        if (!*part) {
            free(part);
            free(joined);
            return fail(p, line, "empty entry in plugin_path '%s'", value);
        }
        char *resolved = cv_path_join(p->cfg->dir, part);
        char *longer = joined ? cv_asprintf("%s:%s", joined, resolved) : cv_strdup(resolved);
        free(part);
        free(resolved);
        free(joined);
        joined = longer;
        if (!colon)
            break;
        s = colon + 1;
    }
    free(p->cfg->plugin_path);
    p->cfg->plugin_path = joined;
    return 0;
}

static int pipeline_key(struct parser *p, const char *key, const char *value, int line)
{
    cv_config *cfg = p->cfg;
    int i;

    if (lookup(key, pipeline_keys) < 0) {
        const char *s = cv_suggest(key, pipeline_keys);
        if (s)
            return fail(p, line, "unknown key '%s' in [pipeline] (did you mean '%s'?)",
                        key, s);
        return fail(p, line, "unknown key '%s' in [pipeline]", key);
    }
    if (!*value)
        return fail(p, line, "empty value for %s", key);
    if (strchr(value, '\n'))
        return fail(p, line, "%s takes a single line (an indented line continues "
                    "the value above it)", key);

    if (strcmp(key, "input") == 0) {
        free(cfg->input);
        cfg->input = cv_path_join(cfg->dir, value);
    } else if (strcmp(key, "output") == 0) {
        free(cfg->output);
        cfg->output = cv_path_join(cfg->dir, value);
    } else if (strcmp(key, "framing") == 0) {
        if (parse_enum(p, line, key, value, framing_names, &i))
            return p->rc;
        cfg->framing = (enum cv_framing)i;
    } else if (strcmp(key, "shared_memory") == 0) {
        if (parse_size_key(p, line, key, value, &cfg->shm_size))
            return p->rc;
        cfg->shm_size_line = line;
    } else if (strcmp(key, "shared_memory_file") == 0) {
        free(cfg->shm_file);
        cfg->shm_file = cv_path_join(cfg->dir, value);
        cfg->shm_file_line = line;
    } else if (strcmp(key, "shared_memory_mode") == 0) {
        if (parse_enum(p, line, key, value, shm_mode_names, &i))
            return p->rc;
        cfg->shm_readonly = i == 1;
    } else if (strcmp(key, "plugin_path") == 0) {
        return set_plugin_path(p, line, value);
    } else if (strcmp(key, "transport") == 0) {
        if (parse_enum(p, line, key, value, transport_names, &i))
            return p->rc;
        cfg->transport = (enum cv_transport)i;
    } else if (strcmp(key, "max_item") == 0) {
        size_t v;
        if (parse_size_key(p, line, key, value, &v))
            return p->rc;
        if (v == 0)
            return fail(p, line, "max_item must be greater than 0");
        cfg->max_item = v;
    } else if (strcmp(key, "pool_size") == 0) {
        size_t v;
        if (strcmp(value, "auto") == 0) {
            cfg->pool_size = CV_POOL_AUTO;
            return 0;
        }
        if (parse_size_key(p, line, key, value, &v))
            return p->rc;
        if (v != 0 && v < CV_POOL_MIN)
            return fail(p, line, "pool_size must be 0 (no pool), auto, or at least 256K");
        cfg->pool_size = v;
    } else if (strcmp(key, "pool_threshold") == 0) {
        size_t v;
        if (parse_size_key(p, line, key, value, &v))
            return p->rc;
        if (v == 0)
            return fail(p, line, "pool_threshold must be greater than 0");
        cfg->pool_threshold = v;
    }
    return 0;
}

/* ---- stage sections ----------------------------------------------------- */

static int add_input(struct parser *p, cv_stage_cfg *st, const char *name, int line)
{
    if (!*name)
        return fail(p, line, "empty entry in input of [%s]", st->name);
    if (!valid_stage_name(name))
        return fail(p, line, "bad stage name '%s' in input of [%s] (use letters, "
                    "digits, '_', '-' and '.', separated by commas)", name, st->name);
    for (size_t i = 0; i < st->ninputs; i++)
        if (strcmp(st->inputs[i].name, name) == 0)
            return fail(p, line, "stage '%s' is listed twice in input of [%s]",
                        name, st->name);
    st->inputs = cv_realloc(st->inputs, (st->ninputs + 1) * sizeof *st->inputs);
    st->inputs[st->ninputs].name = cv_strdup(name);
    st->inputs[st->ninputs].line = line;
    st->ninputs++;
    return 0;
}

/* input = a, b  or one name per line.  A comma at the end of a line that
 * another line continues is a separator, not an empty entry. */
static int parse_inputs(struct parser *p, cv_stage_cfg *st, const struct pending *kv)
{
    const char *s = kv->value;
    int rc = 0;

    for (size_t seg = 0; !rc && seg < kv->nlines; seg++) {
        const char *nl = strchr(s, '\n');
        char *part = cv_strndup(s, nl ? (size_t)(nl - s) : strlen(s));
        size_t len = strlen(cv_trim(part));
        int line = kv->lines[seg];

        if (nl && len > 0 && part[len - 1] == ',')
            part[len - 1] = '\0';
        for (char *q = part;;) {
            char *comma = strchr(q, ',');
            if (comma)
                *comma = '\0';
            rc = add_input(p, st, cv_trim(q), line);
            if (rc || !comma)
                break;
            q = comma + 1;
        }
        free(part);
        s = nl ? nl + 1 : s + strlen(s);
    }
    return rc;
}

static int set_plugin(struct parser *p, cv_stage_cfg *st, const char *value, int line)
{
    const char *colon = strchr(value, ':');
    char *module, *stage;

    if (!colon || strchr(colon + 1, ':'))
        return fail(p, line, "bad plugin '%s' (use plugin = MODULE:STAGE)", value);
    module = cv_trim(cv_strndup(value, (size_t)(colon - value)));
    stage = cv_trim(cv_strdup(colon + 1));
    if (!*module || !*stage) {
        free(module);
        free(stage);
        return fail(p, line, "bad plugin '%s' (use plugin = MODULE:STAGE)", value);
    }
    st->module = module;
    st->stage = stage;
    st->plugin_line = line;
    return 0;
}

static int set_on_error(struct parser *p, cv_stage_cfg *st, const char *value, int line)
{
    const char *colon = strchr(value, ':');

    if (strcmp(value, "fail") == 0) {
        st->on_error = CV_ON_ERROR_FAIL;
    } else if (strcmp(value, "skip") == 0) {
        st->on_error = CV_ON_ERROR_SKIP;
    } else if (colon && (size_t)(colon - value) == strlen("dead-letter") &&
               strncmp(value, "dead-letter", (size_t)(colon - value)) == 0) {
        char *path = cv_trim(cv_strdup(colon + 1));
        if (!*path) {
            free(path);
            return fail(p, line, "on_error = dead-letter needs a file: dead-letter:PATH");
        }
        st->on_error = CV_ON_ERROR_DEAD_LETTER;
        st->dead_letter_path = cv_path_join(p->cfg->dir, path);
        free(path);
    } else if (strcmp(value, "dead-letter") == 0) {
        return fail(p, line, "on_error = dead-letter needs a file: dead-letter:PATH");
    } else {
        /* Suggest on the word before ':' so "dead_letter:x" finds its match. */
        char *word = cv_strndup(value, colon ? (size_t)(colon - value) : strlen(value));
        const char *s = cv_suggest(word, on_error_words);
        free(word);
        if (s && strcmp(s, "dead-letter") == 0)
            fail(p, line, "unknown on_error '%s' (did you mean 'dead-letter:PATH'?)", value);
        else if (s)
            fail(p, line, "unknown on_error '%s' (did you mean '%s'?)", value, s);
        else
            fail(p, line, "unknown on_error '%s' (use fail, skip or dead-letter:PATH)",
                 value);
        return p->rc;
    }
    st->on_error_line = line;
    return 0;
}

/* Takes the pending key: params keep its strings. */
static int stage_key(struct parser *p, struct pending *kv)
{
    cv_stage_cfg *st = &p->cfg->stages[p->stage];
    const char *key = kv->key, *value = kv->value;
    int line = kv->line;
    unsigned u;
    int i;

    if (lookup(key, stage_keys) < 0) {
        st->params = cv_realloc(st->params, (st->nparams + 1) * sizeof *st->params);
        st->params[st->nparams].key = kv->key;
        st->params[st->nparams].value = kv->value;
        st->params[st->nparams].line = line;
        st->nparams++;
        kv->key = kv->value = NULL;
        return 0;
    }
    if (!*value)
        return fail(p, line, "empty value for %s", key);
    if (strcmp(key, "input") == 0) {
        st->inputs_default = 0;
        st->input_line = line;
        return parse_inputs(p, st, kv);
    }
    if (strchr(value, '\n'))
        return fail(p, line, "%s takes a single line (an indented line continues "
                    "the value above it)", key);

    if (strcmp(key, "type") == 0) {
        if (parse_enum(p, line, key, value, type_names, &i))
            return p->rc;
        st->type = (enum cv_stage_type)i;
        st->type_line = line;
    } else if (strcmp(key, "plugin") == 0) {
        return set_plugin(p, st, value, line);
    } else if (strcmp(key, "replicas") == 0) {
        if (parse_uint_key(p, line, key, value, 1, MAX_REPLICAS, &u))
            return p->rc;
        st->replicas = u;
        st->replicas_line = line;
    } else if (strcmp(key, "policy") == 0) {
        if (parse_enum(p, line, key, value, policy_names, &i))
            return p->rc;
        st->policy = (enum cv_policy)i;
        st->policy_line = line;
    } else if (strcmp(key, "order") == 0) {
        if (parse_enum(p, line, key, value, order_names, &i))
            return p->rc;
        st->order = (enum cv_order)i;
        st->order_line = line;
    } else if (strcmp(key, "on_error") == 0) {
        return set_on_error(p, st, value, line);
    } else if (strcmp(key, "restart") == 0) {
        if (parse_enum(p, line, key, value, restart_names, &i))
            return p->rc;
        st->restart = (enum cv_restart)i;
        st->restart_line = line;
    } else if (strcmp(key, "max_restarts") == 0) {
        if (parse_uint_key(p, line, key, value, 0, MAX_MAX_RESTARTS, &u))
            return p->rc;
        st->max_restarts = u;
        p->max_restarts_line = line;
    }
    return 0;
}

/* Checks that need the whole section: which keys fit the stage's type. */
static int finish_stage(struct parser *p)
{
    const cv_stage_cfg *st = &p->cfg->stages[p->stage];
    const char *tname = cv_type_name(st->type);
    /* A processor's order says how its replicas' outputs merge. */
    const struct misplaced {
        int line; const char *key; enum cv_stage_type only; int also_processor;
    } keys[] = {
        { st->plugin_line, "plugin", CV_TYPE_PROCESSOR, 0 },
        { st->replicas_line, "replicas", CV_TYPE_PROCESSOR, 0 },
        { st->on_error_line, "on_error", CV_TYPE_PROCESSOR, 0 },
        { st->restart_line, "restart", CV_TYPE_PROCESSOR, 0 },
        { p->max_restarts_line, "max_restarts", CV_TYPE_PROCESSOR, 0 },
        { st->policy_line, "policy", CV_TYPE_BALANCE, 0 },
        { st->order_line, "order", CV_TYPE_JOIN, 1 },
    };
    const struct misplaced *first = NULL;
    const cv_kv *param = st->type != CV_TYPE_PROCESSOR && st->nparams ? &st->params[0] : NULL;

    if (st->type == CV_TYPE_PROCESSOR && !st->module)
        return fail(p, st->line, "stage [%s] has no plugin = MODULE:STAGE", st->name);

    /* Report the first misplaced key in the file, whatever its kind. */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i].line && st->type != keys[i].only &&
            !(keys[i].also_processor && st->type == CV_TYPE_PROCESSOR) &&
            (!first || keys[i].line < first->line))
            first = &keys[i];
    /* Without a plugin nobody reads parameters: it is a misspelt key. */
    if (param && (!first || param->line < first->line)) {
        const char *s = cv_suggest(param->key, stage_keys);
        if (s)
            return fail(p, param->line, "unknown key '%s' in [%s] (did you mean '%s'?)",
                        param->key, st->name, s);
        return fail(p, param->line, "unknown key '%s' in [%s] (a %s stage has no "
                    "plugin parameters)", param->key, st->name, tname);
    }
    if (first)
        return fail(p, first->line, "%s is only for %s stages%s ([%s] is a %s)",
                    first->key, cv_type_name(first->only),
                    first->also_processor ? " and replicated processors" : "", st->name, tname);
    return 0;
}

/* ---- keys and sections as they arrive ----------------------------------- */

static void pending_clear(struct pending *kv)
{
    free(kv->key);
    free(kv->value);
    free(kv->lines);
    memset(kv, 0, sizeof *kv);
}

/* Interprets the last key now that its value is complete. */
static int flush_pending(struct parser *p)
{
    int rc;

    if (!p->pend.active)
        return 0;
    if (p->section == SECTION_PIPELINE)
        rc = pipeline_key(p, p->pend.key, p->pend.value, p->pend.line);
    else
        rc = stage_key(p, &p->pend);
    pending_clear(&p->pend);
    return rc;
}

static void clear_seen(struct parser *p)
{
    for (size_t i = 0; i < p->nseen; i++)
        free(p->seen[i].key);
    free(p->seen);
    p->seen = NULL;
    p->nseen = 0;
}

static int finish_section(struct parser *p)
{
    int rc = flush_pending(p);

    if (!rc && p->section == SECTION_STAGE)
        rc = finish_stage(p);
    clear_seen(p);
    p->section = SECTION_NONE;
    return rc;
}

static int start_section(struct parser *p, const char *name)
{
    cv_config *cfg = p->cfg;
    int line = p->lineno;
    cv_stage_cfg *st;

    if (strcmp(name, "pipeline") == 0) {
        if (cfg->pipeline_line)
            return fail(p, line, "duplicate section [pipeline] (first at line %d)",
                        cfg->pipeline_line);
        cfg->pipeline_line = line;
        p->section = SECTION_PIPELINE;
        return 0;
    }
    if (strcasecmp(name, "pipeline") == 0)
        return fail(p, line, "the stage name '%s' is reserved (did you mean [pipeline]?)",
                    name);
    if (!valid_stage_name(name))
        return fail(p, line, "bad section name [%s] (a stage name uses letters, digits, "
                    "'_', '-' and '.')", name);
    int dup = cv_config_find_stage(cfg, name);
    if (dup >= 0)
        return fail(p, line, "duplicate section [%s] (first at line %d)", name,
                    cfg->stages[dup].line);

    cfg->stages = cv_realloc(cfg->stages, (cfg->nstages + 1) * sizeof *cfg->stages);
    st = &cfg->stages[cfg->nstages];
    memset(st, 0, sizeof *st);
    st->name = cv_strdup(name);
    st->line = line;
    st->type = CV_TYPE_PROCESSOR;
    st->inputs_default = 1;
    st->input_line = line;
    st->replicas = 1;
    st->policy = CV_POLICY_LEAST_LOADED;
    st->order = CV_ORDER_ARRIVAL;
    st->on_error = CV_ON_ERROR_FAIL;
    st->restart = CV_RESTART_NO;
    st->max_restarts = DEFAULT_MAX_RESTARTS;
    p->stage = cfg->nstages++;
    p->max_restarts_line = 0;
    p->section = SECTION_STAGE;
    return 0;
}

static int new_key(struct parser *p, const char *name, const char *value)
{
    int line = p->lineno;

    if (!*name)
        return fail(p, line, "syntax error: a key has no name");
    if (p->section == SECTION_NONE)
        return fail(p, line, "key '%s' before any section (start with [pipeline] or "
                    "a [stage])", name);
    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i].key, name) == 0)
            return fail(p, line, "duplicate key '%s' in [%s] (first at line %d)", name,
                        p->section == SECTION_PIPELINE ? "pipeline"
                                                       : p->cfg->stages[p->stage].name,
                        p->seen[i].line);
    p->seen = cv_realloc(p->seen, (p->nseen + 1) * sizeof *p->seen);
    p->seen[p->nseen].key = cv_strdup(name);
    p->seen[p->nseen].line = line;
    p->nseen++;

    p->pend.active = true;
    p->pend.key = cv_strdup(name);
    p->pend.value = cv_strdup(value);
    p->pend.line = line;
    p->pend.lines = cv_malloc(sizeof *p->pend.lines);
    p->pend.lines[0] = line;
    p->pend.nlines = 1;
    return 0;
}

/* inih strips inline comments from a key's line but not from continuation
 * lines; strip them here too so that both read alike. */
static char *strip_inline_comment(char *s)
{
    bool was_space = false;

    for (char *q = s; *q; q++) {
        if (was_space && strchr(inline_comment_prefixes, *q)) {
            *q = '\0';
            break;
        }
        was_space = isspace((unsigned char)*q);
    }
    return cv_trim(s);
}

static int continue_value(struct parser *p, const char *more)
{
    struct pending *kv = &p->pend;
    char *piece = strip_inline_comment(cv_strdup(more));

    if (!kv->active) {
        free(piece);
        return fail(p, p->lineno, "syntax error: indented line continues no key");
    }
    if (!*kv->value) {
        /* "input =" followed by indented names: no empty first entry. */
        free(kv->value);
        kv->value = piece;
        kv->lines[0] = p->lineno;
        return 0;
    }
    char *joined = cv_asprintf("%s\n%s", kv->value, piece);
    free(piece);
    free(kv->value);
    kv->value = joined;
    kv->lines = cv_realloc(kv->lines, (kv->nlines + 1) * sizeof *kv->lines);
    kv->lines[kv->nlines++] = p->lineno;
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct parser *p = user;
    enum line_kind kind = p->kind;

    (void)section;  /* inih cuts section names at 49 bytes: ours are whole */
    p->kind = LINE_BLANK;
    if (p->rc)
        return 0;
    if (!value)
        value = "";
    if (kind == LINE_KEY)
        return new_key(p, name, value) == 0;
    if (kind == LINE_CONTINUATION)
        return continue_value(p, value) == 0;
    /* inih saw a key where the classifier did not: never expected. */
    fail(p, p->lineno, "syntax error: unexpected key '%s'", name);
    return 0;
}

/* ---- the line reader ---------------------------------------------------- */

/* inih's rule: an inline comment starts at a prefix character that follows
 * white space.  Returns the first of CHARS or such a comment in [s, end). */
static const char *find_chars_or_comment(const char *s, const char *end, const char *chars)
{
    bool was_space = false;

    for (; s < end; s++) {
        if (chars && strchr(chars, *s))
            break;
        if (was_space && strchr(inline_comment_prefixes, *s))
            break;
        was_space = isspace((unsigned char)*s);
    }
    return s;
}

/* Decides what inih will make of LINE (mirroring its ini_parse_stream) and
 * acts on the structure: a new section, or the end of the previous key. */
static int classify(struct parser *p, const char *line)
{
    const char *s = line, *e;

    if (p->lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    while (s < e && isspace((unsigned char)*s))
        s++;

    if (s == e || strchr(start_comment_prefixes, *s)) {
        p->kind = LINE_BLANK;
        return 0;
    }
    if (p->prev_key && s > line) {
        p->kind = LINE_CONTINUATION;
        return 0;
    }
    /* Anything else ends the previous key's value. */
    if (flush_pending(p))
        return p->rc;

    if (*s == '[') {
        const char *close = find_chars_or_comment(s + 1, e, "]");
        if (close == e || *close != ']')
            return fail(p, p->lineno, "syntax error: no ']' closing the section name");
        const char *rest = close + 1;
        while (rest < e && isspace((unsigned char)*rest))
            rest++;
        if (rest < e && !strchr(inline_comment_prefixes, *rest))
            return fail(p, p->lineno, "syntax error: text after ']'");
        if (finish_section(p))
            return p->rc;
        char *name = cv_trim(cv_strndup(s + 1, (size_t)(close - s - 1)));
        int rc = start_section(p, name);
        free(name);
        p->kind = LINE_SECTION;
        p->prev_key = false;
        return rc;
    }

    const char *sep = find_chars_or_comment(s, e, "=:");
    if (sep == e || (*sep != '=' && *sep != ':')) {
        int n = (int)(e - s);
        return fail(p, p->lineno, "syntax error: expected 'key = value' or "
                    "'[section]', found '%.*s'", n, s);
    }
    const char *name_end = sep;
    while (name_end > s && isspace((unsigned char)name_end[-1]))
        name_end--;
    p->prev_key = name_end > s;
    p->kind = LINE_KEY;
    return 0;
}

/* Next byte of the source, or EOF (at the end or on a read error). */
static int next_byte(struct parser *p)
{
    if (p->fp)
        return getc_unlocked(p->fp);
    if (!p->text[p->textpos])
        return EOF;
    return (unsigned char)p->text[p->textpos++];
}

/* The ini_reader: one line into STR (NUM bytes), without its newline.
 * Reads byte by byte so that a NUL byte is seen and a line of any length
 * (even /dev/zero) costs no more than NUM bytes. */
static char *reader(char *str, int num, void *stream)
{
    struct parser *p = stream;
    size_t max = num > 2 ? (size_t)num - 2 : 0;  /* room for '\n' and NUL */
    size_t len = 0;
    bool any = false;
    int c;

    if (p->rc)
        return NULL;
    if (num < 3) {  /* pin_inih_options() makes this impossible */
        fail(p, p->lineno + 1, "line buffer of %d bytes is too small", num);
        return NULL;
    }
    while ((c = next_byte(p)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (c == '\0') {
            fail(p, p->lineno + 1, "line contains a NUL byte");
            return NULL;
        }
        /* One byte past the limit is kept: it may be the '\r' of "\r\n". */
        if (len > max) {
            fail(p, p->lineno + 1, "line is longer than %zu bytes", max);
            return NULL;
        }
        str[len++] = (char)c;
    }
    if (p->fp && ferror(p->fp)) {
        int e = errno ? errno : EIO;
        fail_file(p, -e, "%s: cannot read: %s", p->path, strerror(e));
        return NULL;
    }
    if (!any)
        return NULL;
    p->lineno++;
    if (len > 0 && str[len - 1] == '\r')
        len--;
    if (len > max) {
        fail(p, p->lineno, "line is longer than %zu bytes", max);
        return NULL;
    }
    str[len] = '\0';
    if (classify(p, str))
        return NULL;
    return str;
}

/* ---- entry points ------------------------------------------------------- */

static char *dir_of(const char *path)
{
    size_t n = strlen(path);

    while (n > 1 && path[n - 1] == '/')  /* "a/b/" names b */
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    if (n == 0)
        return cv_strdup(".");
    while (n > 1 && path[n - 1] == '/')
        n--;
    return cv_strndup(path, n);
}

/* Pins inih's run-time options (Debian builds it with INI_RUNTIME_OPTIONS)
 * to the syntax the classifier mirrors.  An inih without them (upstream's
 * default build) has these very values fixed in: multi-line values, a BOM
 * skipped, ';' and '#' comments, inline ';' comments, lines of 200 bytes on
 * the stack, no realloc, every error reported, no keys without a value. */
static void pin_inih_options(void)
{
#ifdef HAVE_INIH_RUNTIME_OPTIONS
    ini_allow_multiline = true;
    ini_allow_bom = true;
    ini_start_comment_prefixes = start_comment_prefixes;
    ini_allow_inline_comments = true;
    ini_inline_comment_prefixes = inline_comment_prefixes;
    ini_use_stack = true;
    ini_max_line = INI_MAX_LINE;
    ini_allow_realloc = false;
    ini_stop_on_first_error = false;
    ini_allow_no_value = false;
#endif
}

static int parse(struct parser *p, cv_config **out)
{
    cv_config *cfg = cv_calloc(1, sizeof *cfg);
    int r;

    cfg->path = cv_strdup(p->path);
    cfg->dir = dir_of(p->path);
    cfg->input = cv_strdup("-");
    cfg->output = cv_strdup("-");
    cfg->framing = CV_FRAMING_LINES;
    /* CONVEYOR_TRANSPORT sets the default for files that do not choose
     * (the test-suite runs every pipeline on both transports with it). */
    const char *tr = getenv("CONVEYOR_TRANSPORT");
    cfg->transport = tr && strcmp(tr, "pipe") == 0 ? CV_TRANSPORT_PIPE : CV_TRANSPORT_RING;
    cfg->max_item = DEFAULT_MAX_ITEM;
    cfg->pool_size = CV_POOL_AUTO;
    cfg->pool_threshold = 64 * 1024;
    p->cfg = cfg;

    pin_inih_options();
    r = ini_parse_stream(reader, p, handler, p);
    if (!p->rc && r != 0)  /* inih found what the classifier did not */
        fail(p, r > 0 ? r : p->lineno, "syntax error");
    if (!p->rc)
        finish_section(p);

    pending_clear(&p->pend);
    clear_seen(p);
    if (p->rc) {
        cv_config_free(cfg);
        *out = NULL;
        return p->rc;
    }
    *out = cfg;
    return 0;
}

static void parser_init(struct parser *p, const char *path, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    p->err = err;
    p->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
}

int cv_config_load(const char *path, cv_config **out, char *err, size_t errlen)
{
    struct parser p;
    int rc;

    parser_init(&p, path, err, errlen);
    *out = NULL;
    p.fp = fopen(path, "re");
    if (!p.fp) {
        int e = errno;
        return fail_file(&p, -e, "%s: cannot open: %s", path, strerror(e));
    }
    rc = parse(&p, out);
    fclose(p.fp);
    return rc;
}

int cv_config_load_string(const char *path, const char *text, cv_config **out,
                          char *err, size_t errlen)
{
    struct parser p;

    parser_init(&p, path, err, errlen);
    *out = NULL;
    p.text = text;
    return parse(&p, out);
}

void cv_config_free(cv_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nstages; i++) {
        cv_stage_cfg *st = &cfg->stages[i];
        free(st->name);
        free(st->module);
        free(st->stage);
        for (size_t j = 0; j < st->ninputs; j++)
            free(st->inputs[j].name);
        free(st->inputs);
        free(st->dead_letter_path);
        for (size_t j = 0; j < st->nparams; j++) {
            free(st->params[j].key);
            free(st->params[j].value);
        }
        free(st->params);
    }
    free(cfg->stages);
    free(cfg->path);
    free(cfg->dir);
    free(cfg->input);
    free(cfg->output);
    free(cfg->shm_file);
    free(cfg->plugin_path);
    free(cfg);
}

int cv_config_find_stage(const cv_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nstages; i++)
        if (strcmp(cfg->stages[i].name, name) == 0)
            return (int)i;
    return -1;
}

const char *cv_stage_param(const cv_stage_cfg *st, const char *key)
{
    for (size_t i = 0; i < st->nparams; i++)
        if (strcmp(st->params[i].key, key) == 0)
            return st->params[i].value;
    return NULL;
}

const char *cv_type_name(enum cv_stage_type t)
{
    return (unsigned)t < 5 ? type_names[t] : "?";
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
