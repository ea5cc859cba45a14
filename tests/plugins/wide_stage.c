/* SPDX-License-Identifier: MIT */
/*
 * wide_stage.c - a module built with a conveyor_stage 16 bytes longer than
 * the host's, as a later minor version that adds stage fields would build
 * it: the host must step through the stages by the declared stage_size and
 * ignore the bytes it does not know.
 *
 * A module of a later minor is refused by its version, so this descriptor
 * claims the host's own: what it tests is the stride, not the version.
 * The unknown bytes are garbage (0xa5); a host that stepped by its own
 * sizeof(conveyor_stage) would take them for the next stage's name.
 *
 *   identity  passes items on; takes no parameters
 *   upper     upper-cases items and appends the parameter suffix; emits
 *             "end" from fini
 */
#include <conveyor/plugin.h>

#include <stdlib.h>
#include <string.h>

/* A stage as a later header might declare it: the fields this host knows,
 * then fields it does not. */
typedef struct wide_stage {
    conveyor_stage known;
    unsigned char later[16];
} wide_stage;

_Static_assert(sizeof(wide_stage) == sizeof(conveyor_stage) + 16,
               "the stride under test is sizeof(conveyor_stage) + 16");

#define GARBAGE                                                               \
    {                                                                         \
        0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,                       \
        0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5                        \
    }

static int identity(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}

static int upper_init(conveyor_ctx *ctx)
{
    const char *suffix = conveyor_param(ctx, "suffix");
    conveyor_set_userdata(ctx, (void *)(suffix ? suffix : ""));
    return 0;
}

static int upper(conveyor_ctx *ctx, const void *item, size_t len)
{
    const char *suffix = conveyor_userdata(ctx);
    size_t slen = strlen(suffix);
    char *out = conveyor_emit_begin(ctx, len + slen);
    if (!out)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = ((const char *)item)[i];
        out[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    memcpy(out + len, suffix, slen);
    return conveyor_emit_commit(ctx, len + slen);
}

static void upper_fini(conveyor_ctx *ctx)
{
    conveyor_emit(ctx, "end", 3);
}

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_param_spec upper_params[] = {
    { .name = "suffix", .summary = "appended to every item" },
    { .name = NULL },
};

static const wide_stage stages[] = {
    { { .name = "identity", .summary = "passes items on", .process = identity,
        .params = no_params }, GARBAGE },
    { { .name = "upper", .summary = "upper-cases items", .init = upper_init,
        .process = upper, .fini = upper_fini, .params = upper_params }, GARBAGE },
    { { .name = NULL }, GARBAGE },
};

CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;
const conveyor_module conveyor_module_v1 = {
    .abi_major = CONVEYOR_ABI_MAJOR, .abi_minor = CONVEYOR_ABI_MINOR,
    .size = (uint32_t)sizeof(conveyor_module), .name = "wide_stage", .version = "1.0",
    .stages = &stages[0].known, .stage_size = (uint32_t)sizeof(wide_stage),
};
