/* SPDX-License-Identifier: MIT */
/*
 * math.c - the "math" module: stages over decimal numbers, one per item.
 *
 *   sqrt  the square root          cube  the third power
 *   add   adds a fixed number (param value)
 *
 * An input item must be a number and nothing else (white space around it
 * is allowed); anything else fails the item, saying what it was.  Results
 * are written with "%.10g", as the Python Conveyor examples print them
 * (sqrt(sqrt(3)) is 1.316074013, cube(16) is 4096).
 */
#include <conveyor/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "quote.h"

/* Parses the whole of [text, text+len) as one finite number.  Returns 0,
 * -EINVAL (not a number), -ERANGE (too large, or not finite) or -ENOMEM. */
static int parse_number(const void *text, size_t len, double *out)
{
    char small[128], *copy = small, *end;
    double v;
    int rc = 0;

    /* strtod needs a NUL-terminated string, and a NUL inside the item
     * would silently end the number early. */
    if (memchr(text, '\0', len))
        return -EINVAL;
    if (len >= sizeof small && !(copy = malloc(len + 1)))
        return -ENOMEM;
    if (len)
        memcpy(copy, text, len);
    copy[len] = '\0';

    v = strtod(copy, &end);
    if (end == copy)
        rc = -EINVAL;
    else {
        while (isspace((unsigned char)*end))
            end++;
        if (*end != '\0')
            rc = -EINVAL;
        else if (!isfinite(v))      /* inf, nan, or overflowed to HUGE_VAL */
            rc = -ERANGE;
    }
    if (copy != small)
        free(copy);
    if (rc == 0)
        *out = v;
    return rc;
}

/* Reads the item as a number, or logs why not. */
static int item_number(conveyor_ctx *ctx, const void *item, size_t len, double *out)
{
    char q[QUOTE_SIZE];
    int rc = parse_number(item, len, out);

    if (rc == -EINVAL)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "not a number: '%s'", quote(q, item, len));
    else if (rc == -ERANGE)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "not a finite number: '%s'", quote(q, item, len));
    else if (rc != 0)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory on '%s'", quote(q, item, len));
    return rc;
}

/* Emits a result, refusing one that overflowed to infinity. */
static int emit_number(conveyor_ctx *ctx, double v, const void *item, size_t len)
{
    char out[64], q[QUOTE_SIZE];
    int n, rc;

    if (!isfinite(v)) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "result out of range for '%s'",
                     quote(q, item, len));
        return -ERANGE;
    }
    n = snprintf(out, sizeof out, "%.10g", v);
    rc = conveyor_emit(ctx, out, (size_t)n);
    if (rc != 0 && rc != -EPIPE)    /* -EPIPE: stopping; the host says why */
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot emit the result for '%s': %s",
                     quote(q, item, len), strerror(rc < 0 ? -rc : rc));
    return rc;
}

static int sqrt_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    double v;
    int rc = item_number(ctx, item, len, &v);

    if (rc != 0)
        return rc;
    if (v < 0) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "no square root of a negative number: '%s'",
                     quote(q, item, len));
        return -EDOM;
    }
    return emit_number(ctx, sqrt(v), item, len);
}

static int cube_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    double v;
    int rc = item_number(ctx, item, len, &v);

    return rc != 0 ? rc : emit_number(ctx, v * v * v, item, len);
}

/* add's value: 0, or non-zero after saying why.  init() and check(). */
static int read_addend(conveyor_ctx *ctx, double *addend)
{
    const char *value = conveyor_param(ctx, "value");
    int rc;

    if (!value) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "add needs a value (value = A NUMBER)");
        return -EINVAL;
    }
    rc = parse_number(value, strlen(value), addend);
    if (rc != 0)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "value must be a finite number, not '%s'", value);
    return rc;
}

static int add_check(conveyor_ctx *ctx)
{
    double addend;

    return read_addend(ctx, &addend);
}

/* add keeps the parsed value in its userdata. */
static int add_init(conveyor_ctx *ctx)
{
    double *addend = malloc(sizeof *addend);
    int rc;

    if (!addend) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    rc = read_addend(ctx, addend);
    if (rc != 0) {
        free(addend);
        return rc;
    }
    conveyor_set_userdata(ctx, addend);
    return 0;
}

static int add_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    const double *addend = conveyor_userdata(ctx);
    double v;
    int rc = item_number(ctx, item, len, &v);

    return rc != 0 ? rc : emit_number(ctx, v + *addend, item, len);
}

static void add_fini(conveyor_ctx *ctx)
{
    free(conveyor_userdata(ctx));
    conveyor_set_userdata(ctx, NULL);
}

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_param_spec add_params[] = {
    { .name = "value", .summary = "the number added to every item", .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "sqrt", .summary = "square root of a number (a negative one fails)",
      .process = sqrt_process, .params = no_params },
    { .name = "cube", .summary = "third power of a number",
      .process = cube_process, .params = no_params },
    { .name = "add", .summary = "adds a fixed value to a number",
      .init = add_init, .process = add_process, .fini = add_fini, .params = add_params,
      .check = add_check },
    { .name = NULL },
};

CONVEYOR_MODULE("math", "1.0", stages);
