/*
 * abi10.c - a module built for ABI 1.0, as modules were before 1.1 added
 * emit_begin, emit_commit and forward: a 1.1 host must keep running it.
 */
#include <conveyor/plugin.h>

static int identity(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}

static const conveyor_param_spec no_params[] = { { NULL, NULL } };

static const conveyor_stage stages[] = {
    { .name = "identity", .summary = "passes items on", .process = identity,
      .params = no_params },
    { .name = NULL },
};

CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;
const conveyor_module conveyor_module_v1 = {
    .abi_major = CONVEYOR_ABI_MAJOR,
    .abi_minor = 0,
    .size = (uint32_t)sizeof(conveyor_module),
    .name = "abi10",
    .version = "1.0",
    .stages = stages,
};
