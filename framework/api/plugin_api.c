/* SPDX-License-Identifier: MIT */
/*
 * plugin_api.c - the calls a plugin makes (sdk/conveyor/plugin.h), implemented
 * over the process's runtime context.  A context without a run is the
 * host's check context (run.h): what needs a running stage refuses there.
 * The parameter calls are params.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <conveyor/plugin.h>
#include "base/log.h"
#include "run/run.h"

int conveyor_emit(conveyor_ctx *ctx, const void *item, size_t len)
{
    if (!ctx || !ctx->run)
        return -EINVAL;
    return cv_ctx_emit(ctx, item, len);
}

void *conveyor_emit_begin(conveyor_ctx *ctx, size_t max_len)
{
    if (!ctx || !ctx->run) {
        errno = EINVAL;
        return NULL;
    }
    return cv_ctx_emit_begin(ctx, max_len);
}

int conveyor_emit_commit(conveyor_ctx *ctx, size_t len)
{
    return ctx && ctx->run ? cv_ctx_emit_commit(ctx, len) : -EINVAL;
}

int conveyor_forward(conveyor_ctx *ctx)
{
    return ctx && ctx->run ? cv_ctx_forward(ctx) : -EINVAL;
}

void *conveyor_shm(conveyor_ctx *ctx, size_t *size)
{
    cv_segment *seg = ctx && ctx->run ? cv_ctx_segment(ctx) : NULL;
    if (!seg || !seg->addr) {
        if (size)
            *size = 0;
        return NULL;
    }
    if (size)
        *size = seg->size;
    return seg->addr;
}

const char *conveyor_shm_name(conveyor_ctx *ctx)
{
    cv_segment *seg = ctx && ctx->run ? cv_ctx_segment(ctx) : NULL;
    return seg && seg->addr ? seg->name : NULL;
}

void conveyor_set_userdata(conveyor_ctx *ctx, void *data)
{
    if (ctx)
        ctx->userdata = data;
}

void *conveyor_userdata(conveyor_ctx *ctx)
{
    return ctx ? ctx->userdata : NULL;
}

const char *conveyor_stage_name(conveyor_ctx *ctx)
{
    return ctx && ctx->cfg ? ctx->cfg->name : NULL;
}

unsigned conveyor_replica(conveyor_ctx *ctx)
{
    return ctx && ctx->run ? cv_ctx_replica(ctx) : 0;
}

void conveyor_log(conveyor_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ctx && !ctx->run && ctx->pipeline && ctx->cfg) {
        /* A check in the host, whose messages have no stage for an origin:
         * they name the section as the errors found before a run do. */
        char text[2048];
        vsnprintf(text, sizeof text, fmt, ap);
        cv_log(level, "%s:%d: [%s] %s", ctx->pipeline->path, ctx->cfg->line, ctx->cfg->name,
               text);
    } else {
        cv_vlog(level, fmt, ap);  /* the process's log origin names the stage */
    }
    va_end(ap);
}

int conveyor_stopping(conveyor_ctx *ctx)
{
    (void)ctx;  /* the stop request is the process's, whichever call asks */
    return cv_child_stopping();
}

uint64_t conveyor_item_number(conveyor_ctx *ctx)
{
    if (!ctx || !ctx->run)
        return 0;
    uint64_t stride = ctx->run->seq_stride;
    if (stride)     /* a source: ctx->seq is the number of its next item */
        return ctx->seq > stride ? ctx->seq - stride : 0;
    return ctx->in_call && ctx->seq != UINT64_MAX ? ctx->seq : 0;
}

uint64_t conveyor_completed(conveyor_ctx *ctx)
{
    if (!ctx || !ctx->run || !ctx->run->seq_stride)
        return 0;
    /* The marker is the number of the first item not covered. */
    uint64_t mark = __atomic_load_n(&ctx->run->me->completed, __ATOMIC_ACQUIRE);
    return mark > ctx->run->seq_stride ? mark - ctx->run->seq_stride : 0;
}

int conveyor_mark(conveyor_ctx *ctx)
{
    if (!ctx || !ctx->run || !ctx->run->seq_stride || !ctx->in_call)
        return -EINVAL;
    return cv_run_source_mark(ctx->run);
}

int conveyor_lock(conveyor_ctx *ctx, unsigned n)
{
    cv_locks *l = ctx && ctx->run ? cv_ctx_locks(ctx) : NULL;
    if (!l)
        return -EINVAL;
    return cv_locks_lock(l, n);
}

int conveyor_unlock(conveyor_ctx *ctx, unsigned n)
{
    cv_locks *l = ctx && ctx->run ? cv_ctx_locks(ctx) : NULL;
    if (!l)
        return -EINVAL;
    return cv_locks_unlock(l, n);
}
