/* SPDX-License-Identifier: MIT */
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
 * key, section or end of file arrives (continuation lines may follow it),
 * by its row of the key table (config_keys.c); checks that involve several
 * keys of a stage (policy needs type = balance, ...) run when the section
 * ends.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <strings.h>

#include <ini.h>

#include "load/config.h"
#include "load/config_keys.h"
#include "base/util.h"

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
    /* The value was written in double quotes: its text without them (a
     * plugin parameter takes this), or unterminated. */
    char *unquoted;
    bool unterminated;
};

/* What classify() found on the key line inih is about to hand over. */
struct quoted {
    char *text;               /* the value without its quotes, or NULL */
    bool unterminated;        /* a '"' opened the value and nothing closed it */
};

struct parser {
    cv_config_error e;        /* the path, the caller's buffer, the first error */
    cv_config *cfg;

    FILE *fp;                 /* the source: a file ... */
    const char *text;         /* ... or a string */
    size_t textpos;

    int lineno;               /* lines read so far */
    enum line_kind kind;      /* of the line inih is processing */
    bool prev_key;            /* inih's "prev_name": continuations allowed */

    enum section_kind section;
    size_t stage;             /* index of the current stage */
    struct seen_key *seen;    /* keys of the current section, in file order */
    size_t nseen;
    struct pending pend;
    struct quoted quoted;     /* of the line being processed */
};

/* ---- messages --------------------------------------------------------- */

/* Records the first error as "PATH:LINE: ..." and returns -EINVAL. */
static int fail(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = cv_config_vfail(&p->e, line, fmt, ap);
    va_end(ap);
    return rc;
}

/* Same without a line, for errors about the file as a whole. */
static int fail_file(struct parser *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_file(struct parser *p, int rc, const char *fmt, ...)
{
    va_list ap;

    if (p->e.rc)
        return p->e.rc;
    va_start(ap, fmt);
    p->e.rc = cv_verr_at(p->e.buf, p->e.len, rc, NULL, 0, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- stage sections ----------------------------------------------------- */

/* A key that is not the framework's is a parameter of the plugin; it takes
 * the pending key's strings. */
static void add_param(cv_stage_cfg *st, struct pending *kv)
{
    st->params = cv_realloc(st->params, (st->nparams + 1) * sizeof *st->params);
    st->params[st->nparams].key = kv->key;
    st->params[st->nparams].value = kv->value;
    st->params[st->nparams].line = kv->line;
    st->nparams++;
    kv->key = kv->value = NULL;
}

/* Checks that need the whole section: which keys fit the stage's type.  The
 * first key in the file that does not is reported, whatever its kind. */
static int finish_stage(struct parser *p)
{
    const cv_stage_cfg *st = &p->cfg->stages[p->stage];
    const char *tname = cv_type_name(st->type);

    if ((st->type == CV_TYPE_PROCESSOR || st->type == CV_TYPE_SOURCE) && !st->module)
        return fail(p, st->line, "stage [%s] has no plugin = MODULE:STAGE", st->name);
    for (size_t i = 0; i < p->nseen; i++) {
        const char *key = p->seen[i].key;
        int line = p->seen[i].line;
        const cv_config_key *k = cv_config_key_find(CV_SECTION_STAGE, key);

        if (!k && st->type != CV_TYPE_PROCESSOR && st->type != CV_TYPE_SOURCE) {
            /* Without a plugin nobody reads parameters: it is a misspelt key. */
            const char *s = cv_config_key_suggest(CV_SECTION_STAGE, key);
            if (s)
                return fail(p, line, "unknown key '%s' in [%s] (did you mean '%s'?)", key,
                            st->name, s);
            return fail(p, line, "unknown key '%s' in [%s] (a %s stage has no plugin "
                        "parameters)", key, st->name, tname);
        }
        if (k && cv_config_key_check_type(k, st, line, &p->e))
            return p->e.rc;
    }
    return 0;
}

/* ---- keys and sections as they arrive ----------------------------------- */

static void pending_clear(struct pending *kv)
{
    free(kv->key);
    free(kv->value);
    free(kv->lines);
    free(kv->unquoted);
    memset(kv, 0, sizeof *kv);
}

/* A plugin parameter written in double quotes is the text inside them:
 * white space at its ends and a ';' are kept, for every plugin alike.  The
 * framework's own keys never take quotes, so they read the line as it is. */
static int unquote_param(struct parser *p, struct pending *kv)
{
    if (kv->unterminated)
        return fail(p, kv->line, "[%s] key '%s': the '\"' that opens its value is not "
                    "closed (write \\\" for a quote inside it)", p->cfg->stages[p->stage].name, kv->key);
    if (!kv->unquoted)
        return 0;
    if (kv->nlines > 1)
        return fail(p, kv->lines[1], "[%s] key '%s': a value in quotes cannot continue on the "
                    "next line", p->cfg->stages[p->stage].name, kv->key);
    free(kv->value);
    kv->value = kv->unquoted;
    kv->unquoted = NULL;
    return 0;
}

/* Interprets the last key now that its value is complete. */
static int flush_pending(struct parser *p)
{
    struct pending *kv = &p->pend;
    bool stage = p->section == SECTION_STAGE;
    const cv_config_key *k;
    int rc = 0;

    if (!kv->active)
        return 0;
    k = cv_config_key_find(stage ? CV_SECTION_STAGE : CV_SECTION_PIPELINE, kv->key);
    if (k) {
        const cv_key_value v = {
            .value = kv->value, .line = kv->line, .lines = kv->lines, .nlines = kv->nlines,
            .dir = p->cfg->dir, .err = &p->e,
        };
        rc = cv_config_key_read(k, stage ? (void *)&p->cfg->stages[p->stage] : (void *)p->cfg,
                                &v);
    } else if (stage) {
        if ((rc = unquote_param(p, kv)) == 0)
            add_param(&p->cfg->stages[p->stage], kv);
    } else {
        const char *s = cv_config_key_suggest(CV_SECTION_PIPELINE, kv->key);
        if (s)
            rc = fail(p, kv->line, "unknown key '%s' in [pipeline] (did you mean '%s'?)",
                      kv->key, s);
        else
            rc = fail(p, kv->line, "unknown key '%s' in [pipeline]", kv->key);
    }
    pending_clear(kv);
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
    if (!cv_config_valid_stage_name(name))
        return fail(p, line, "bad section name [%s] (a stage name uses letters, digits, "
                    "'_', '-' and '.')", name);
    int dup = cv_config_find_stage(cfg, name);
    if (dup >= 0)
        return fail(p, line, "duplicate section [%s] (first at line %d)", name,
                    cfg->stages[dup].line);

    if (cfg->nstages == cfg->stages_cap) {
        cfg->stages_cap = cfg->stages_cap ? cfg->stages_cap * 2 : 8;
        cfg->stages = cv_realloc(cfg->stages, cfg->stages_cap * sizeof *cfg->stages);
    }
    st = &cfg->stages[cfg->nstages];
    memset(st, 0, sizeof *st);
    st->name = cv_strdup(name);
    st->line = line;
    cv_strmap_put(&cfg->stage_index, st->name, (int)cfg->nstages);
    p->stage = cfg->nstages++;
    p->section = SECTION_STAGE;
    return cv_config_key_defaults(CV_SECTION_STAGE, st, cfg->dir, line, &p->e);
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
    p->pend.unquoted = p->quoted.text;
    p->pend.unterminated = p->quoted.unterminated;
    p->quoted = (struct quoted){0};
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
    if (p->e.rc)
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

/* A value in [S, END) that opens with '"' is read here, from the whole
 * line: inih would take a ';' inside the quotes for a comment.  It is a
 * quoted value when nothing but an inline comment follows the closing
 * quote; with other text after it ('"my prog" -x' for a command) the value
 * is left as written. */
static void read_quoted(struct parser *p, const char *s, const char *end)
{
    const char *rest;
    char *text, *copy;

    free(p->quoted.text);
    p->quoted = (struct quoted){0};
    while (s < end && isspace((unsigned char)*s))
        s++;
    if (s == end || *s != '"')
        return;
    copy = cv_strndup(s, (size_t)(end - s));
    if (cv_unquote(copy, &text, &rest) < 0) {
        p->quoted.unterminated = true;
    } else {
        while (isspace((unsigned char)*rest))
            rest++;
        if (!*rest || strchr(inline_comment_prefixes, *rest))
            p->quoted.text = text;
        else
            free(text);
    }
    free(copy);
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
        return p->e.rc;

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
            return p->e.rc;
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
    read_quoted(p, sep + 1, e);
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

    if (p->e.rc)
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
        fail_file(p, -e, "%s: cannot read: %s", p->e.path, strerror(e));
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

    cfg->path = cv_strdup(p->e.path);
    cfg->dir = dir_of(p->e.path);
    p->cfg = cfg;

    if (cv_config_key_defaults(CV_SECTION_PIPELINE, cfg, cfg->dir, 0, &p->e) == 0) {
        pin_inih_options();
        r = ini_parse_stream(reader, p, handler, p);
        if (!p->e.rc && r != 0)  /* inih found what the classifier did not */
            fail(p, r > 0 ? r : p->lineno, "syntax error");
        if (!p->e.rc)
            finish_section(p);
    }

    pending_clear(&p->pend);
    free(p->quoted.text);
    clear_seen(p);
    if (p->e.rc) {
        cv_config_free(cfg);
        *out = NULL;
        return p->e.rc;
    }
    *out = cfg;
    return 0;
}

static void parser_init(struct parser *p, const char *path, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->e.path = path;
    p->e.buf = err;
    p->e.len = errlen;
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
        cv_config_key_free(CV_SECTION_STAGE, st);
        /* What the odd keys' parse functions fill (plugin, input, on_error). */
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
    cv_strmap_free(&cfg->stage_index);
    free(cfg->path);
    free(cfg->dir);
    cv_config_key_free(CV_SECTION_PIPELINE, cfg);
    free(cfg);
}

/* A dead-letter file: it exists and can be written, or its folder exists
 * and a file can be made there. */
static int check_dead_letter(const cv_config *cfg, const cv_stage_cfg *st, char *err, size_t errlen)
{
    const char *path = st->dead_letter_path;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISCHR(sb.st_mode))
            return cv_err_at(err, errlen, -EINVAL, cfg->path, st->on_error_line,
                             "[%s] on_error = dead-letter:%s: not a file", st->name, path);
        if (access(path, W_OK) != 0)
            return cv_err_at(err, errlen, -errno, cfg->path, st->on_error_line,
                             "[%s] on_error = dead-letter:%s: %s", st->name, path,
                             strerror(errno));
        return 0;
    }
    char *dir = cv_strdup(path), *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int rc = 0;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        rc = cv_err_at(err, errlen, -ENOENT, cfg->path, st->on_error_line,
                       "[%s] on_error = dead-letter:%s: the folder '%s' does not exist", st->name,
                       path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = cv_err_at(err, errlen, -EACCES, cfg->path, st->on_error_line,
                       "[%s] on_error = dead-letter:%s: no file can be made in '%s' (%s)",
                       st->name, path, dir, strerror(errno));
    free(dir);
    return rc;
}

int cv_config_check_files(const cv_config *cfg, char *err, size_t errlen)
{
    if (cfg->shm_file) {
        struct stat sb;
        if (stat(cfg->shm_file, &sb) != 0 || access(cfg->shm_file, R_OK) != 0)
            return cv_err_at(err, errlen, -errno, cfg->path, cfg->shm_file_line,
                             "shared_memory_file '%s': %s", cfg->shm_file, strerror(errno));
        if (!S_ISREG(sb.st_mode))
            return cv_err_at(err, errlen, -EINVAL, cfg->path, cfg->shm_file_line,
                             "shared_memory_file '%s': not a regular file", cfg->shm_file);
    }
    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        if (st->on_error == CV_ON_ERROR_DEAD_LETTER && st->dead_letter_path) {
            int rc = check_dead_letter(cfg, st, err, errlen);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int cv_config_find_stage(const cv_config *cfg, const char *name)
{
    if (cfg->stage_index.n == cfg->nstages)
        return cv_strmap_get(&cfg->stage_index, name);
    /* A config built by hand (tests) has no index. */
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
