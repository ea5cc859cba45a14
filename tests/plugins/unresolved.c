/* SPDX-License-Identifier: MIT */
/*
 * unresolved.c - a module whose process() calls a function no library
 * defines: loading it with lazy binding succeeds and the first item would
 * crash the stage; the host binds every symbol at load time, so --check
 * refuses it, naming the symbol.
 */
#include <conveyor/plugin.h>

int conveyor_test_no_such_function(const void *item, size_t len);

static int call_missing(conveyor_ctx *ctx, const void *item, size_t len)
{
    (void)ctx;
    return conveyor_test_no_such_function(item, len);
}

static const conveyor_stage stages[] = {
    { .name = "identity", .summary = "calls a function that does not exist", .process = call_missing },
    { .name = NULL },
};

CONVEYOR_MODULE("unresolved", "1.0", stages);
