/* SPDX-License-Identifier: MIT */
/*
 * narrow_param.c - a test module whose descriptor declares parameter specs
 * shorter than the spec of ABI 1.0 (a name alone): the host cannot read the
 * fields it needs, so it must refuse the module, naming the file, the
 * symbol and both sizes.
 */
#include "hand_made.h"

CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;
const conveyor_module conveyor_module_v1 = {
    .abi_major = CONVEYOR_ABI_MAJOR, .abi_minor = CONVEYOR_ABI_MINOR,
    .size = (uint32_t)sizeof(conveyor_module), .name = "narrow_param", .version = "1.0",
    .stages = stages, .stage_size = (uint32_t)sizeof(conveyor_stage),
    .param_size = (uint32_t)sizeof(const char *),
};
