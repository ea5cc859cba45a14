/* SPDX-License-Identifier: MIT */
/*
 * abi11.c - a module built for ABI 1.1, before 1.2 added stage_size: a
 * later host reads its stages at the stage size of 1.0 (unchanged in 1.1).
 * The stage_size this header adds lies past the declared size and holds
 * garbage the host must not read.
 */
#include "hand_made.h"

HAND_MADE_STRIDE_MODULE("abi11", CONVEYOR_ABI_MAJOR, 1, MODULE_SIZE_1_0, 1);
