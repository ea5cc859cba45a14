/*
 * abi10.c - a module built for ABI 1.0, as modules were before 1.1 added
 * emit_begin, emit_commit and forward: a 1.1 host must keep running it.
 */
#include "hand_made.h"

HAND_MADE_MODULE("abi10", CONVEYOR_ABI_MAJOR, 0, sizeof(conveyor_module));
