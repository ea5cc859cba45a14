/* SPDX-License-Identifier: MIT */
/*
 * wide_param.c - a module built with a conveyor_param_spec 16 bytes longer
 * than the host's, as a later minor version that adds spec fields would
 * build it: the host must step through a stage's params by the declared
 * param_size and ignore the bytes it does not know (garbage, 0xa5, which a
 * host stepping by its own spec would take for the next key's name).
 *
 *   echo  emits "first=F,second=S,third=T" from its parameters at start
 */
#include <stdio.h>
#include <conveyor/plugin.h>

typedef struct wide_spec {
    conveyor_param_spec known;
    unsigned char later[16];
} wide_spec;

_Static_assert(sizeof(wide_spec) == sizeof(conveyor_param_spec) + 16,
               "the stride under test is sizeof(conveyor_param_spec) + 16");

#define GARBAGE                                                               \
    {                                                                         \
        0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,                       \
        0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5                        \
    }

static const wide_spec echo_params[] = {
    { { .name = "first", .summary = "echoed at start", .default_value = "one" }, GARBAGE },
    { { .name = "second", .summary = "echoed at start", .flags = CONVEYOR_PARAM_REQUIRED },
      GARBAGE },
    { { .name = "third", .summary = "echoed at start", .default_value = "\" 3; \"" }, GARBAGE },
    { { .name = NULL }, GARBAGE },
};

static int echo_init(conveyor_ctx *ctx)
{
    const char *a = conveyor_param(ctx, "first"), *b = conveyor_param(ctx, "second");
    const char *c = conveyor_param(ctx, "third");
    char out[256];
    int n = snprintf(out, sizeof out, "first=%s,second=%s,third=%s", a ? a : "(null)",
                     b ? b : "(null)", c ? c : "(null)");
    return conveyor_emit(ctx, out, (size_t)n);
}

static int echo(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}

static const conveyor_stage stages[] = {
    { .name = "echo", .summary = "emits its parameters at start", .init = echo_init,
      .process = echo, .params = &echo_params[0].known },
    { .name = NULL },
};

CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;
const conveyor_module conveyor_module_v1 = {
    .abi_major = CONVEYOR_ABI_MAJOR, .abi_minor = CONVEYOR_ABI_MINOR,
    .size = (uint32_t)sizeof(conveyor_module), .name = "wide_param", .version = "1.0",
    .stages = stages, .stage_size = (uint32_t)sizeof(conveyor_stage),
    .param_size = (uint32_t)sizeof(wide_spec),
};
