/* SPDX-License-Identifier: MIT */
/*
 * abi10.c - a module built for ABI 1.0, as modules were before 1.1 added
 * emit_begin, emit_commit and forward: a later host must keep running it.
 * Its descriptor ends at stages, as 1.0's did; the stage_size this header
 * adds lies past the declared size and holds garbage the host must not read.
 */
#include "hand_made.h"

HAND_MADE_STRIDE_MODULE("abi10", CONVEYOR_ABI_MAJOR, 0, MODULE_SIZE_1_0, 1);
