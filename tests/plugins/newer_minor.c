/*
 * newer_minor.c - a test module claiming ABI 1.99: the right major, but a
 * minor newer than the host's.  It may rely on calls the host lacks, so the
 * host must refuse it at load time, naming both versions.
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
    .abi_minor = 99,
    .size = (uint32_t)sizeof(conveyor_module),
    .name = "newer_minor",
    .version = "1.0",
    .stages = stages,
};
