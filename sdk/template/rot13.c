/* SPDX-License-Identifier: MIT */
/*
 * rot13.c - a Conveyor plugin module built out of the Conveyor tree: one
 * stage, rot13, that rotates ASCII letters by 13 places (or by its shift
 * parameter).  Use it in a pipeline as  plugin = rot13:rot13  (module name
 * : stage name).
 */
#include <conveyor/plugin.h>

#include <stdint.h>
#include <stdlib.h>

/* Reads shift: the declared default "13" when the section does not set it.
 * A bad value is reported by the getter with the file and line. */
static int read_shift(conveyor_ctx *ctx, int64_t *shift)
{
    *shift = 13;
    return conveyor_param_int(ctx, "shift", 1, 25, shift) < 0 ? -1 : 0;
}

/* Run by the host before anything starts (and by conveyor-host --check):
 * a bad shift refuses the pipeline there instead of in every replica. */
static int rot13_check(conveyor_ctx *ctx)
{
    int64_t shift;
    return read_shift(ctx, &shift);
}

static int rot13_init(conveyor_ctx *ctx)
{
    int64_t shift;
    if (read_shift(ctx, &shift) != 0)
        return -1;
    conveyor_set_userdata(ctx, (void *)(intptr_t)shift);
    return 0;
}

static int rot13(conveyor_ctx *ctx, const void *item, size_t len)
{
    /* Items are bytes, not C strings, and are valid only during this call:
     * work on a copy.  (+1 so that an empty item still gets a buffer.) */
    int shift = (int)(intptr_t)conveyor_userdata(ctx);
    const unsigned char *in = item;
    unsigned char *out = malloc(len + 1);
    size_t i;
    int rc;

    if (!out) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -1;              /* non-zero: this item failed */
    }
    for (i = 0; i < len; i++) {
        unsigned char c = in[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)('a' + (c - 'a' + shift) % 26);
        else if (c >= 'A' && c <= 'Z')
            c = (unsigned char)('A' + (c - 'A' + shift) % 26);
        out[i] = c;
    }
    rc = conveyor_emit(ctx, out, len);  /* copies the bytes; pass the result on */
    free(out);
    return rc;
}

/* The keys the stage reads: the host refuses any other key, and
 * conveyor-host --list-plugins rot13 shows them with their defaults. */
static const conveyor_param_spec rot13_params[] = {
    { .name = "shift", .summary = "places each letter moves, 1 to 25", .default_value = "13" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "rot13", .summary = "rotates ASCII letters by 13 places (or shift)",
      .init = rot13_init, .process = rot13, .params = rot13_params, .check = rot13_check },
    { .name = NULL },
};

/* Exports conveyor_module_v1, stamped with the ABI version of the header. */
CONVEYOR_MODULE("rot13", "1.0", stages);
