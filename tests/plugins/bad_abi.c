/* SPDX-License-Identifier: MIT */
/*
 * bad_abi.c - a test module built for an ABI major the host does not have
 * (99).  The descriptor is written by hand, not with CONVEYOR_MODULE(),
 * because the macro always stamps the current version.  The host must
 * refuse it at load time, naming both versions.
 */
#include "hand_made.h"

HAND_MADE_MODULE("bad_abi", 99, 0, sizeof(conveyor_module));
