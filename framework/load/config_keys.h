/* SPDX-License-Identifier: MIT */
/*
 * config_keys.h - the keys of pipeline.ini as one table (config_keys.c).
 *
 * Contract: every key the framework reads, in [pipeline] or in a stage
 * section, is one row of cv_config_keys[]: its name and section, the stage
 * types it applies to, the kind of value, its default as it would be written
 * in the file, the field it fills and that field's line.  config.c reads the
 * file's structure and hands each complete key to cv_config_key_read(); what
 * is known about a key (is it known, what a misspelling meant, its default,
 * where its line goes, which stage types take it) comes from the table and
 * from nowhere else.  docs/pipeline-ini.md documents the same rows, and a
 * test holds the two together.
 */
#ifndef CV_CONFIG_KEYS_H
#define CV_CONFIG_KEYS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "load/config.h"

enum cv_section { CV_SECTION_PIPELINE, CV_SECTION_STAGE };

/* What a field holds and how a value becomes it, unless the row has its
 * own parse function. */
enum cv_key_kind {
    CV_KEY_PATH,   /* char *: "-" or a path resolved against the INI's folder */
    CV_KEY_ENUM,   /* an int-sized enum: the value's index in names */
    CV_KEY_UINT,   /* unsigned, from min to max */
    CV_KEY_SIZE,   /* size_t: bytes with an optional K, M or G; at least min */
    CV_KEY_DURATION, /* uint64_t milliseconds: a number with ms, s, m or h */
    CV_KEY_OTHER,  /* fields only the row's parse function knows */
};

#define CV_TYPE_BIT(t) (1u << (t))
#define CV_TYPES_ALL                                                             \
    (CV_TYPE_BIT(CV_TYPE_PROCESSOR) | CV_TYPE_BIT(CV_TYPE_PIPE) |                \
     CV_TYPE_BIT(CV_TYPE_REPLICATE) | CV_TYPE_BIT(CV_TYPE_BALANCE) |             \
     CV_TYPE_BIT(CV_TYPE_JOIN) | CV_TYPE_BIT(CV_TYPE_SOURCE))
/* The types that run a plugin in processes of their own. */
#define CV_TYPES_PLUGIN (CV_TYPE_BIT(CV_TYPE_PROCESSOR) | CV_TYPE_BIT(CV_TYPE_SOURCE))

/* The first error of a load, kept as "PATH:LINE: what is wrong". */
typedef struct cv_config_error {
    const char *path;
    char *buf;
    size_t len;
    int rc;                    /* 0, or the first error's code */
} cv_config_error;

/* A key's complete value, as a parse function receives it. */
typedef struct cv_key_value {
    const char *value;         /* continuation lines joined with '\n' */
    int line;                  /* the key's line; 0 for a default */
    const int *lines;          /* the line of each '\n'-separated part */
    size_t nlines;
    const char *dir;           /* the INI file's folder */
    cv_config_error *err;
} cv_key_value;

typedef struct cv_config_key cv_config_key;

struct cv_config_key {
    const char *name;
    enum cv_section section;
    unsigned types;            /* stage keys: CV_TYPE_BITs of the types taking it */
    const char *types_text;    /* those types in messages, when not just one */
    enum cv_key_kind kind;
    const char *def;           /* the default, written as in the file; NULL: none */
    const char *env;           /* an environment variable that may choose the default */
    size_t off;                /* the field, in cv_config or cv_stage_cfg */
    size_t line_off;           /* its int line field (the key's line), or 0 */
    const char *const *names;  /* CV_KEY_ENUM: the values, in the enum's order */
    unsigned min, max;         /* CV_KEY_UINT: the range; CV_KEY_SIZE: min, and max
                                  when not 0 */
    bool multi_line;           /* may continue on indented lines */
    /* For a value the kind does not describe; errors go to v->err. */
    int (*parse)(const cv_config_key *k, void *obj, const cv_key_value *v);
    /* For a default that is not a value (input: the section above). */
    void (*unset)(void *obj, int header_line);
};

/* The rows, [pipeline]'s then the stages', ending with a NULL name. */
extern const cv_config_key cv_config_keys[];

/* The row of NAME in section S, or NULL. */
const cv_config_key *cv_config_key_find(enum cv_section s, const char *name);

/* The key of S closest to WORD when WORD looks like a misspelling of it. */
const char *cv_config_key_suggest(enum cv_section s, const char *word);

/* 0 when a stage of ST's type takes the key, else the error for the key
 * at LINE ("policy is only for balance stages ([a] is a processor)"). */
int cv_config_key_check_type(const cv_config_key *k, const cv_stage_cfg *st, int line,
                             cv_config_error *err);

/* Reads V into OBJ (the cv_config for [pipeline], else the cv_stage_cfg)
 * and records its line.  0, or the error's code with the message in v->err. */
int cv_config_key_read(const cv_config_key *k, void *obj, const cv_key_value *v);

/* Gives every key of S in OBJ its default; HEADER_LINE is the section's. */
int cv_config_key_defaults(enum cv_section s, void *obj, const char *dir, int header_line,
                           cv_config_error *err);

/* Frees what the keys of S allocated in OBJ (their paths). */
void cv_config_key_free(enum cv_section s, void *obj);

/* Letters, digits, '_', '-' and '.': a stage's name, as `input` lists it. */
bool cv_config_valid_stage_name(const char *s);

/* Records the first error as "PATH:LINE: ..." and returns it (-EINVAL). */
int cv_config_fail(cv_config_error *e, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cv_config_vfail(cv_config_error *e, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
