/* SPDX-License-Identifier: MIT */
/*
 * small_size.c - a test module whose descriptor claims to be 8 bytes long,
 * too short to hold the name and stages fields.  The host reads no field
 * past the declared size, so it must refuse the module rather than read
 * them anyway.
 */
#include "hand_made.h"

HAND_MADE_MODULE("small_size", CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR, 8);
