/*
 * bad_abi.c - a test module built for an ABI major the host does not have
 * (99).  The descriptor is written by hand, not with CONVEYOR_MODULE(),
 * because the macro always stamps the current version.  The host must
 * refuse it at load time, naming both versions.
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
    .abi_major = 99,
    .abi_minor = 0,
    .size = (uint32_t)sizeof(conveyor_module),
    .name = "bad_abi",
    .version = "1.0",
    .stages = stages,
};
