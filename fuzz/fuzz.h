/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - the two fuzz targets as plain functions, so that the libFuzzer
 * binaries and the regression test (tests/test_fuzz_regress.c) run exactly
 * the same code on an input.
 *
 * Each returns 0, and abort()s after a message on standard error when an
 * input breaks a promise of the code under test that the sanitizers cannot
 * see (a wrong item, an error message without FILE:LINE, ...).  Built with
 * CV_FUZZ_NO_ENTRY defined, the files leave out LLVMFuzzerTestOneInput.
 */
#ifndef CV_FUZZ_H
#define CV_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Bytes -> cv_config_load_string("fuzz.ini") -> cv_plan_build ->
 * cv_plan_write_dot to /dev/null. */
int cv_fuzz_config_one(const uint8_t *data, size_t size);

/* Byte 0 picks the framing and max_item, byte 1 how the bytes arrive (pipe
 * in small chunks, or a memfd) and how often a read is interrupted; the rest
 * is the stream.  Items read are checked against a reference splitter and
 * written back through cv_writer, which must give the same bytes. */
int cv_fuzz_framing_one(const uint8_t *data, size_t size);

/* libFuzzer's entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
