/* SPDX-License-Identifier: MIT */
/*
 * params10.c - a module built for ABI 1.0 whose stage declares params, in
 * the spec of 1.0 (a name and a summary, 16 bytes on LP64): the host must
 * step through them by that size, and read no default or flags in them.
 * A host that stepped by its own spec would take "second" for the first
 * key's default and miss the second key.
 *
 *   echo  emits "first=F,second=S" from its parameters at start
 */
#include <stdio.h>
#include <conveyor/plugin.h>

/* The parameter spec of ABI 1.0. */
typedef struct spec_1_0 {
    const char *name;
    const char *summary;
} spec_1_0;

static const spec_1_0 echo_params[] = {
    { "first", "echoed at start" },
    { "second", "echoed at start" },
    { NULL, NULL },
};

static int echo_init(conveyor_ctx *ctx)
{
    const char *a = conveyor_param(ctx, "first"), *b = conveyor_param(ctx, "second");
    char out[256];
    int n = snprintf(out, sizeof out, "first=%s,second=%s", a ? a : "(null)", b ? b : "(null)");
    return conveyor_emit(ctx, out, (size_t)n);
}

static int echo(conveyor_ctx *ctx, const void *item, size_t len)
{
    return conveyor_emit(ctx, item, len);
}

static const conveyor_stage stages[] = {
    { .name = "echo", .summary = "emits its parameters at start", .init = echo_init,
      .process = echo, .params = (const conveyor_param_spec *)(const void *)echo_params },
    { .name = NULL },
};

/* As 1.0 wrote it: the descriptor ends at stages. */
CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;
const conveyor_module conveyor_module_v1 = {
    .abi_major = CONVEYOR_ABI_MAJOR, .abi_minor = 0,
    .size = (uint32_t)offsetof(conveyor_module, stage_size), .name = "params10",
    .version = "1.0", .stages = stages,
};
