/* SPDX-License-Identifier: MIT */
/*
 * text.c - the "text" module: stages that treat items as lines of text.
 *
 *   identity  passes every item on unchanged
 *   upper     ASCII upper-case          lower  ASCII lower-case
 *   grep      keeps items matching a POSIX extended regex (or not: invert)
 *   prefix    prepends a fixed text
 *   count     emits, at the end, how many items it saw
 *   sort      emits, at the end, every item sorted bytewise
 *
 * Items are byte strings that need not end with a NUL and may hold NUL
 * bytes, so nothing here treats one as a C string.  Case mapping is ASCII
 * only on purpose: a stage's output must not depend on the locale its
 * process happens to run in.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quote.h"

/* Per-process state.  Each stage uses only its own group of fields; one
 * struct keeps allocation and release in one place. */
typedef struct sorted_item {
    char *data;
    size_t len;
} sorted_item;

typedef struct text_state {
    char *buf;                /* scratch for upper, lower, prefix, grep */
    size_t cap;
    char *prefix;             /* prefix: the text to prepend */
    size_t prefix_len;
    regex_t re;               /* grep */
    int have_re, invert;
    uint64_t count;           /* count */
    sorted_item *items;       /* sort */
    size_t nitems, items_cap;
} text_state;

static text_state *state_new(conveyor_ctx *ctx)
{
    text_state *st = calloc(1, sizeof *st);

    if (!st)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
    conveyor_set_userdata(ctx, st);
    return st;
}

static void state_free(conveyor_ctx *ctx)
{
    text_state *st = conveyor_userdata(ctx);
    size_t i;

    if (!st)
        return;
    free(st->buf);
    free(st->prefix);
    if (st->have_re)
        regfree(&st->re);
    for (i = 0; i < st->nitems; i++)
        free(st->items[i].data);
    free(st->items);
    free(st);
    conveyor_set_userdata(ctx, NULL);
}

/* Grows the scratch buffer to at least n bytes (never less than one, so
 * the result is a real pointer even for an empty item); NULL when out of
 * memory. */
static char *scratch(text_state *st, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > st->cap) {
        size_t cap = st->cap ? st->cap : 256;
        char *p;

        while (cap < n)
            cap = cap > SIZE_MAX / 2 ? n : cap * 2;
        p = realloc(st->buf, cap);
        if (!p)
            return NULL;
        st->buf = p;
        st->cap = cap;
    }
    return st->buf;
}

/* Emits and, when that fails, says so naming the item it was made from. */
static int emit(conveyor_ctx *ctx, const void *out, size_t outlen,
                const void *item, size_t len)
{
    int rc = conveyor_emit(ctx, out, outlen);

    /* -EPIPE: the pipeline is stopping, and the host says why. */
    if (rc != 0 && rc != -EPIPE) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot emit the result for '%s': %s",
                     quote(q, item, len), strerror(rc < 0 ? -rc : rc));
    }
    return rc;
}

static int oom(conveyor_ctx *ctx, const void *item, size_t len)
{
    char q[QUOTE_SIZE];

    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory on '%s'", quote(q, item, len));
    return -ENOMEM;
}

/* --- identity ----------------------------------------------------------- */

static int identity_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    return emit(ctx, item, len, item, len);
}

/* --- upper, lower -------------------------------------------------------- */

static int scratch_init(conveyor_ctx *ctx)
{
    return state_new(ctx) ? 0 : -ENOMEM;
}

/* Maps the ASCII letters from..from+25 to to..to+25 and emits the result. */
static int map_case(conveyor_ctx *ctx, const void *item, size_t len, char from, char to)
{
    text_state *st = conveyor_userdata(ctx);
    const char *in = item;
    char *out = scratch(st, len);
    size_t i;

    if (!out)
        return oom(ctx, item, len);
    for (i = 0; i < len; i++)
        out[i] = (in[i] >= from && in[i] <= from + 25) ? (char)(in[i] - from + to) : in[i];
    return emit(ctx, out, len, item, len);
}

static int upper_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    return map_case(ctx, item, len, 'a', 'A');
}

static int lower_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    return map_case(ctx, item, len, 'A', 'a');
}

/* --- grep ---------------------------------------------------------------- */

/* Compiles the pattern into RE and reads invert: 0, or -EINVAL after
 * saying why.  init() and check() alike. */
static int read_grep(conveyor_ctx *ctx, regex_t *re, int *invert)
{
    const char *pattern = conveyor_param(ctx, "pattern");
    int rc;

    if (!pattern) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "grep needs a pattern (pattern = a POSIX extended regex)");
        return -EINVAL;
    }
    if (conveyor_param_bool(ctx, "invert", invert) < 0)
        return -EINVAL;
    rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[256];
        regerror(rc, re, why, sizeof why);
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "invalid pattern '%s': %s", pattern, why);
        return -EINVAL;
    }
    return 0;
}

static int grep_check(conveyor_ctx *ctx)
{
    regex_t re;
    int invert = 0;
    int rc = read_grep(ctx, &re, &invert);

    if (rc == 0)
        regfree(&re);
    return rc;
}

static int grep_init(conveyor_ctx *ctx)
{
    text_state *st = state_new(ctx);
    int rc;

    if (!st)
        return -ENOMEM;
    rc = read_grep(ctx, &st->re, &st->invert);
    if (rc != 0) {
        state_free(ctx);
        return rc;
    }
    st->have_re = 1;
    return 0;
}

static int grep_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    text_state *st = conveyor_userdata(ctx);
    int rc;
#ifdef REG_STARTEND
    /* glibc reads exactly [rm_so, rm_eo): no copy, and NUL bytes inside
     * the item are matched like any other byte. */
    regmatch_t span = { .rm_so = 0, .rm_eo = (regoff_t)len };

    if (span.rm_eo < 0 || (size_t)span.rm_eo != len) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "item too long to match (%zu bytes): '%s'",
                     len, quote(q, item, len));
        return -EOVERFLOW;
    }
    rc = regexec(&st->re, len ? (const char *)item : "", 1, &span, REG_STARTEND);
#else
    /* Without REG_STARTEND the item must be copied to be NUL-terminated;
     * matching then stops at the first NUL byte inside it. */
    char *copy = scratch(st, len + 1);

    if (!copy)
        return oom(ctx, item, len);
    memcpy(copy, item, len);
    copy[len] = '\0';
    rc = regexec(&st->re, copy, 0, NULL, 0);
#endif
    if (rc != 0 && rc != REG_NOMATCH) {
        char q[QUOTE_SIZE], why[256];
        regerror(rc, &st->re, why, sizeof why);
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot match '%s': %s", quote(q, item, len), why);
        return -EIO;
    }
    if ((rc == 0) != st->invert)
        return emit(ctx, item, len, item, len);
    return 0;
}

/* --- prefix -------------------------------------------------------------- */

static int prefix_init(conveyor_ctx *ctx)
{
    const char *text = conveyor_param(ctx, "text");
    text_state *st;
    size_t n;

    if (!text) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "prefix needs a text (text = WHAT TO PREPEND)");
        return -EINVAL;
    }
    /* Leading or trailing spaces come written "in quotes": the host
     * unquotes a parameter's value for every plugin. */
    n = strlen(text);
    st = state_new(ctx);
    if (!st)
        return -ENOMEM;
    st->prefix = malloc(n + 1);
    if (!st->prefix) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        state_free(ctx);
        return -ENOMEM;
    }
    memcpy(st->prefix, text, n);
    st->prefix[n] = '\0';
    st->prefix_len = n;
    return 0;
}

static int prefix_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    text_state *st = conveyor_userdata(ctx);
    char *out;

    if (len > SIZE_MAX - st->prefix_len || !(out = scratch(st, st->prefix_len + len)))
        return oom(ctx, item, len);
    memcpy(out, st->prefix, st->prefix_len);
    if (len)
        memcpy(out + st->prefix_len, item, len);
    return emit(ctx, out, st->prefix_len + len, item, len);
}

/* --- count --------------------------------------------------------------- */

static int count_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    text_state *st = conveyor_userdata(ctx);

    (void)item;
    (void)len;
    st->count++;
    return 0;
}

static void count_fini(conveyor_ctx *ctx)
{
    text_state *st = conveyor_userdata(ctx);
    char out[32];
    int n = snprintf(out, sizeof out, "%llu", (unsigned long long)st->count);
    int rc = conveyor_emit(ctx, out, (size_t)n);

    if (rc != 0 && rc != -EPIPE)    /* -EPIPE: stopping; the host says why */
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot emit the count %s: %s", out,
                     strerror(rc < 0 ? -rc : rc));
    state_free(ctx);
}

/* --- sort ---------------------------------------------------------------- */

static int sort_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    text_state *st = conveyor_userdata(ctx);
    char *copy;

    if (st->nitems == st->items_cap) {
        size_t cap = st->items_cap ? st->items_cap * 2 : 64;
        sorted_item *p = cap > SIZE_MAX / sizeof *p ? NULL
                                                      : realloc(st->items, cap * sizeof *p);
        if (!p)
            return oom(ctx, item, len);
        st->items = p;
        st->items_cap = cap;
    }
    copy = malloc(len ? len : 1);
    if (!copy)
        return oom(ctx, item, len);
    if (len)
        memcpy(copy, item, len);
    st->items[st->nitems].data = copy;
    st->items[st->nitems].len = len;
    st->nitems++;
    return 0;
}

/* Bytewise, as memcmp; a proper prefix sorts first. */
static int compare_items(const void *a, const void *b)
{
    const sorted_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;

    if (c != 0)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void sort_fini(conveyor_ctx *ctx)
{
    text_state *st = conveyor_userdata(ctx);
    size_t i;

    if (st->nitems)
        qsort(st->items, st->nitems, sizeof *st->items, compare_items);
    for (i = 0; i < st->nitems; i++) {
        if (emit(ctx, st->items[i].data, st->items[i].len,
                 st->items[i].data, st->items[i].len) != 0)
            break;
    }
    state_free(ctx);
}

/* --- the module ---------------------------------------------------------- */

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_param_spec grep_params[] = {
    { .name = "pattern", .summary = "POSIX extended regular expression an item must match",
      .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "invert", .summary = "yes: keep the items that do not match instead", .default_value = "no" },
    { .name = NULL },
};

static const conveyor_param_spec prefix_params[] = {
    { .name = "text", .summary = "text put before every item; \"quote\" it to keep outer spaces",
      .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "identity", .summary = "passes every item on unchanged",
      .process = identity_process, .params = no_params },
    { .name = "upper", .summary = "upper-cases ASCII letters",
      .init = scratch_init, .process = upper_process, .fini = state_free,
      .params = no_params },
    { .name = "lower", .summary = "lower-cases ASCII letters",
      .init = scratch_init, .process = lower_process, .fini = state_free,
      .params = no_params },
    { .name = "grep", .summary = "keeps the items that match a regular expression",
      .init = grep_init, .process = grep_process, .fini = state_free, .check = grep_check,
      .params = grep_params },
    { .name = "prefix", .summary = "puts a fixed text before every item",
      .init = prefix_init, .process = prefix_process, .fini = state_free,
      .params = prefix_params },
    { .name = "count", .summary = "emits the number of items seen, at the end",
      .init = scratch_init, .process = count_process, .fini = count_fini,
      .params = no_params },
    { .name = "sort", .summary = "emits every item sorted bytewise, at the end",
      .init = scratch_init, .process = sort_process, .fini = sort_fini,
      .params = no_params },
    { .name = NULL },
};

CONVEYOR_MODULE("text", "1.0", stages);
