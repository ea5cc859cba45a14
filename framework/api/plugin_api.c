/*
 * plugin_api.c - the calls a plugin makes (sdk/conveyor/plugin.h), implemented
 * over the process's runtime context.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <conveyor/plugin.h>
#include "base/log.h"
#include "run/run.h"

int conveyor_emit(conveyor_ctx *ctx, const void *item, size_t len)
{
    if (!ctx)
        return -EINVAL;
    return cv_ctx_emit(ctx, item, len);
}

void *conveyor_emit_begin(conveyor_ctx *ctx, size_t max_len)
{
    if (!ctx) {
        errno = EINVAL;
        return NULL;
    }
    return cv_ctx_emit_begin(ctx, max_len);
}

int conveyor_emit_commit(conveyor_ctx *ctx, size_t len)
{
    return ctx ? cv_ctx_emit_commit(ctx, len) : -EINVAL;
}

int conveyor_forward(conveyor_ctx *ctx)
{
    return ctx ? cv_ctx_forward(ctx) : -EINVAL;
}

void *conveyor_shm(conveyor_ctx *ctx, size_t *size)
{
    cv_segment *seg = ctx ? cv_ctx_segment(ctx) : NULL;
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
    cv_segment *seg = ctx ? cv_ctx_segment(ctx) : NULL;
    return seg && seg->addr ? seg->name : NULL;
}

const char *conveyor_param(conveyor_ctx *ctx, const char *key)
{
    if (!ctx || !ctx->cfg || !key)
        return NULL;
    return cv_stage_param(ctx->cfg, key);
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
    return cv_ctx_replica(ctx);
}

void conveyor_log(conveyor_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    (void)ctx;  /* the process's log origin already names the stage */
    va_start(ap, fmt);
    cv_vlog(level, fmt, ap);
    va_end(ap);
}

int conveyor_stopping(conveyor_ctx *ctx)
{
    (void)ctx;  /* the stop request is the process's, whichever call asks */
    return cv_child_stopping();
}

uint64_t conveyor_item_number(conveyor_ctx *ctx)
{
    if (!ctx)
        return 0;
    uint64_t stride = ctx->run->seq_stride;
    if (stride)     /* a source: ctx->seq is the number of its next item */
        return ctx->seq > stride ? ctx->seq - stride : 0;
    return ctx->item ? ctx->seq : 0;
}

/* TEMPORARY, this branch only: the completion markers replace it. */
uint64_t conveyor_completed(conveyor_ctx *ctx)
{
    (void)ctx;
    return 0;
}

int conveyor_lock(conveyor_ctx *ctx, unsigned n)
{
    cv_locks *l = ctx ? cv_ctx_locks(ctx) : NULL;
    if (!l)
        return -EINVAL;
    return cv_locks_lock(l, n);
}

int conveyor_unlock(conveyor_ctx *ctx, unsigned n)
{
    cv_locks *l = ctx ? cv_ctx_locks(ctx) : NULL;
    if (!l)
        return -EINVAL;
    return cv_locks_unlock(l, n);
}
