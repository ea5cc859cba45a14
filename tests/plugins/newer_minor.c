/* SPDX-License-Identifier: MIT */
/*
 * newer_minor.c - a test module claiming ABI 1.99: the right major, but a
 * minor newer than the host's.  It may rely on calls the host lacks, so the
 * host must refuse it at load time, naming both versions.
 */
#include "hand_made.h"

HAND_MADE_MODULE("newer_minor", CONVEYOR_ABI_MAJOR, 99, sizeof(conveyor_module));
