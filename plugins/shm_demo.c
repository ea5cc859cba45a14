/* SPDX-License-Identifier: MIT */
/*
 * shm_demo.c - the "shm_demo" module: the Python Conveyor shared-memory
 * example (its common_memory page), stage for stage.
 *
 *   worker1  writes 0 11 22 33 into the segment's first four bytes
 *   worker2  writes 44 into byte 0
 *   cleanup  checks the bytes are 44 11 22 33
 *
 * Every stage passes its item on.  Run with [pipeline] shared_memory >= 4
 * (examples/shared-memory.ini).  Like the original it is meant for one item:
 * with several, worker1 may already have rewritten byte 0 for the next item
 * when cleanup checks the previous one, which is what conveyor_lock() and a
 * real protocol are for.  Unlike the original, cleanup does not unlink the
 * segment: the host owns it and removes it on every way out.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "quote.h"

#define SHM_BYTES 4

/* Every stage checks the segment once, before the first item. */
static int need_shm(conveyor_ctx *ctx)
{
    size_t size = 0;

    if (!conveyor_shm(ctx, &size) || size < SHM_BYTES) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "needs [pipeline] shared_memory >= %d (the segment has %zu bytes)",
                     SHM_BYTES, size);
        return -EINVAL;
    }
    return 0;
}

static int pass_on(conveyor_ctx *ctx, const void *item, size_t len)
{
    int rc = conveyor_emit(ctx, item, len);

    if (rc != 0) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot pass on '%s': %s",
                     quote(q, item, len), strerror(rc < 0 ? -rc : rc));
    }
    return rc;
}

/* The segment is written by other processes at any time: volatile keeps
 * each access a real load or store. */
static volatile unsigned char *segment(conveyor_ctx *ctx)
{
    return conveyor_shm(ctx, NULL);
}

static int worker1_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    static const unsigned char bytes[SHM_BYTES] = { 0, 11, 22, 33 };
    volatile unsigned char *mem = segment(ctx);
    int i;

    for (i = 0; i < SHM_BYTES; i++)
        mem[i] = bytes[i];
    return pass_on(ctx, item, len);
}

static int worker2_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    segment(ctx)[0] = 44;
    return pass_on(ctx, item, len);
}

static int cleanup_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    static const unsigned char want[SHM_BYTES] = { 44, 11, 22, 33 };
    volatile unsigned char *mem = segment(ctx);
    unsigned char got[SHM_BYTES];
    int i;

    for (i = 0; i < SHM_BYTES; i++)
        got[i] = mem[i];
    if (memcmp(got, want, SHM_BYTES) != 0) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "shared memory starts with %u %u %u %u, expected 44 11 22 33 (item '%s')",
                     got[0], got[1], got[2], got[3], quote(q, item, len));
        return -EPROTO;
    }
    /* What the original prints, for those who raise the verbosity. */
    conveyor_log(ctx, CONVEYOR_LOG_INFO, "shared memory starts with %u %u %u %u",
                 got[0], got[1], got[2], got[3]);
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec no_params[] = { { .name = NULL } };

static const conveyor_stage stages[] = {
    { .name = "worker1", .summary = "writes 0 11 22 33 to the shared memory's first bytes",
      .init = need_shm, .process = worker1_process, .params = no_params },
    { .name = "worker2", .summary = "writes 44 to the shared memory's first byte",
      .init = need_shm, .process = worker2_process, .params = no_params },
    { .name = "cleanup", .summary = "checks the shared memory starts with 44 11 22 33",
      .init = need_shm, .process = cleanup_process, .params = no_params },
    { .name = NULL },
};

CONVEYOR_MODULE("shm_demo", "1.0", stages);
