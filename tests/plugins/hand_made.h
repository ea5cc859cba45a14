/* SPDX-License-Identifier: MIT */
/*
 * hand_made.h - the one stage (identity) of the test modules whose
 * descriptor is written by hand to test the host's ABI checks, and the
 * macro that writes that descriptor with the fields under test.
 */
#ifndef CONVEYOR_TEST_HAND_MADE_H
#define CONVEYOR_TEST_HAND_MADE_H

#include <stddef.h>
#include <conveyor/plugin.h>

static int identity(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_stage stages[] = {
    { .name = "identity", .summary = "passes items on", .process = identity,
      .params = no_params },
    { .name = NULL },
};

/* sizeof(conveyor_module) in ABI 1.0 and 1.1, which ended at stages. */
#define MODULE_SIZE_1_0 offsetof(conveyor_module, stage_size)

/* A descriptor with the given version, size and stage stride, not the ones
 * CONVEYOR_MODULE() would stamp. */
#define HAND_MADE_STRIDE_MODULE(mod_name, major, minor, sz, stage_sz)         \
    CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;          \
    const conveyor_module conveyor_module_v1 = {                              \
        .abi_major = (major), .abi_minor = (minor), .size = (uint32_t)(sz),   \
        .name = (mod_name), .version = "1.0", .stages = stages,               \
        .stage_size = (uint32_t)(stage_sz)}

/* The same with this header's stage stride. */
#define HAND_MADE_MODULE(mod_name, major, minor, sz)                          \
    HAND_MADE_STRIDE_MODULE(mod_name, major, minor, sz, sizeof(conveyor_stage))

#endif
