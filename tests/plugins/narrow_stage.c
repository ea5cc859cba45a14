/* SPDX-License-Identifier: MIT */
/*
 * narrow_stage.c - a test module whose descriptor declares stages shorter
 * than the stage of ABI 1.0 (it stops before fini and params): the host
 * cannot read the fields it needs, so it must refuse the module, naming the
 * file, the symbol and both sizes.
 */
#include "hand_made.h"

HAND_MADE_STRIDE_MODULE("narrow_stage", CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR,
                        sizeof(conveyor_module), offsetof(conveyor_stage, fini));
