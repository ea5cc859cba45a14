/* SPDX-License-Identifier: MIT */
/*
 * params.c - a stage's parameters as a plugin reads them (sdk/conveyor/
 * plugin.h): conveyor_param() with the defaults the stage declares, the
 * typed getters over base/'s parsers, and conveyor_replicas().  Works in a
 * stage's process and in the host's check context alike.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <conveyor/plugin.h>
#include "base/log.h"
#include "base/util.h"
#include "run/run.h"

/* A parameter's value and where it came from, for messages. */
struct found {
    const char *value;
    int line;           /* the key's line, or the section's for a default */
    int dflt;           /* the stage's declared default */
};

static const char *ini_path(const conveyor_ctx *ctx)
{
    const cv_config *cfg = ctx->run ? ctx->run->cfg : ctx->pipeline;
    return cfg ? cfg->path : "?";
}

/* KEY's value in the stage's section, else its declared default: 1, or 0
 * when it has neither. */
static int lookup(const conveyor_ctx *ctx, const char *key, struct found *f)
{
    const cv_stage_cfg *st = ctx ? ctx->cfg : NULL;

    if (!st || !key)
        return 0;
    for (size_t i = 0; i < st->nparams; i++)
        if (strcmp(st->params[i].key, key) == 0) {
            *f = (struct found){st->params[i].value, st->params[i].line, 0};
            return 1;
        }
    /* The loader's copy of the specs: full size whatever the module's. */
    if (ctx->stage && ctx->stage->params)
        for (const conveyor_param_spec *p = ctx->stage->params; p->name; p++)
            if (strcmp(p->name, key) == 0 && p->default_value) {
                *f = (struct found){p->default_value, st->line, 1};
                return 1;
            }
    return 0;
}

const char *conveyor_param(conveyor_ctx *ctx, const char *key)
{
    struct found f;
    return lookup(ctx, key, &f) ? f.value : NULL;
}

unsigned conveyor_replicas(conveyor_ctx *ctx)
{
    if (!ctx)
        return 0;
    return ctx->cfg ? ctx->cfg->replicas : 1;   /* the input reader and output writer */
}

/* Says what is wrong with F, KEY's value, as "FILE:LINE: [section] key 'k'
 * = 'v': WHY", and returns -EINVAL. */
static int bad(conveyor_ctx *ctx, const char *key, const struct found *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(conveyor_ctx *ctx, const char *key, const struct found *f, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cv_error("%s:%d: [%s] key '%s' = '%s': %s%s", ini_path(ctx), f->line, ctx->cfg->name, key,
             f->value, why, f->dflt ? " (the default the plugin declares)" : "");
    return -EINVAL;
}

int conveyor_param_int(conveyor_ctx *ctx, const char *key, int64_t min, int64_t max,
                       int64_t *value)
{
    struct found f;
    int64_t v;

    if (!value || min > max)
        return -EINVAL;
    if (!lookup(ctx, key, &f))
        return 0;
    switch (cv_parse_int64(f.value, min, max, &v)) {
    case 0:
        *value = v;
        return 1;
    case -ERANGE:
        return bad(ctx, key, &f, "out of range: it must be from %" PRId64 " to %" PRId64, min,
                   max);
    default:
        return bad(ctx, key, &f, "not a whole number (decimal digits, an optional sign)");
    }
}

int conveyor_param_size(conveyor_ctx *ctx, const char *key, uint64_t *value)
{
    struct found f;
    size_t v;

    if (!value)
        return -EINVAL;
    if (!lookup(ctx, key, &f))
        return 0;
    switch (cv_parse_size(f.value, &v)) {
    case 0:
        *value = v;
        return 1;
    case -ERANGE:
        return bad(ctx, key, &f, "too large a size");
    default:
        return bad(ctx, key, &f, "not a size (a number of bytes, or with K, M, G or T)");
    }
}

int conveyor_param_bool(conveyor_ctx *ctx, const char *key, int *value)
{
    struct found f;
    int v;

    if (!value)
        return -EINVAL;
    if (!lookup(ctx, key, &f))
        return 0;
    if (cv_parse_bool(f.value, &v) < 0)
        return bad(ctx, key, &f, "not yes or no (nor true/false, on/off, 1/0)");
    *value = v;
    return 1;
}

int conveyor_param_duration(conveyor_ctx *ctx, const char *key, uint64_t *value_ms)
{
    struct found f;
    uint64_t v;

    if (!value_ms)
        return -EINVAL;
    if (!lookup(ctx, key, &f))
        return 0;
    switch (cv_parse_duration(f.value, &v)) {
    case 0:
        *value_ms = v;
        return 1;
    case -ERANGE:
        return bad(ctx, key, &f, "too long a duration");
    default:
        return bad(ctx, key, &f, "not a duration (a whole number with ms, s, m or h; "
                   "seconds without one)");
    }
}
