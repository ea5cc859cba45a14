/* SPDX-License-Identifier: MIT */
/*
 * no_process.c - a test module with a stage whose process() is NULL.
 * process is the one required callback, so the host must refuse the stage
 * when it loads the module, before anything is forked.
 */
#include <conveyor/plugin.h>

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_stage stages[] = {
    { .name = "identity", .summary = "has no process()", .process = NULL,
      .params = no_params },
    { .name = NULL },
};

CONVEYOR_MODULE("no_process", "1.0", stages);
