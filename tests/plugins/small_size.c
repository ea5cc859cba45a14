/*
 * small_size.c - a test module whose descriptor claims to be 8 bytes long,
 * too short to hold the name and stages fields.  The host reads no field
 * past the declared size, so it must refuse the module rather than read
 * them anyway.
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
    .abi_minor = CONVEYOR_ABI_MINOR,
    .size = 8,
    .name = "small_size",
    .version = "1.0",
    .stages = stages,
};
