/* SPDX-License-Identifier: MIT */
/*
 * emit.c - how a forked process sends: the emit calls a plugin makes, the
 * routing of an item to its channels (replicate, balance), large items by
 * reference through the pool, watermarks for order = source merges, and the
 * wait that flushes and publishes before a process sleeps.
 *
 * Nothing here ends the process: a channel whose consumer is gone gives
 * -EPIPE back to the caller, and an error an emit met inside a plugin's call
 * is kept in ctx->emit_error for the process's loop (child.c) to act on.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "run/run.h"

/* --- counters ---------------------------------------------------------- */

void cv_run_ack_counts(cv_run *r)
{
    cv_proc_stats *ps = r->me;
    ps->acked_in = ps->items_in;
    ps->acked_out = ps->items_out;
    ps->acked_bytes_in = ps->bytes_in;
    ps->acked_bytes_out = ps->bytes_out;
}

uint64_t cv_run_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cv_run_wait_begin(cv_run *r, unsigned kind)
{
    cv_proc_stats *ps = r->me;
    ps->wait_kind = kind;
    ps->wait_since = cv_run_now_ns();
}

/* The total first, then the mark: a host sampling in between counts this
 * wait twice for a tenth of a second, never not at all. */
void cv_run_wait_end(cv_run *r)
{
    cv_proc_stats *ps = r->me;
    uint64_t since = ps->wait_since, took = cv_run_now_ns() - since;
    if (!since)
        return;
    if (ps->wait_kind == CV_WAIT_OUTPUT)
        ps->wait_out_ns += took;
    else
        ps->wait_in_ns += took;
    ps->wait_since = 0;
}

/* --- emitting --------------------------------------------------------- */

/* A source stage: the item just emitted had number ctx->seq; the next one
 * gets the next number of this source process, and consumers of ordered
 * channels learn how far it has got (at least every CV_WATERMARK_LAG
 * items). */
__attribute__((noinline)) static void next_source_item(cv_run *r, conveyor_ctx *ctx)
{
    ctx->seq += r->seq_stride;
    r->source_low = ctx->seq;
    if (r->has_ordered && r->source_low - r->last_sync >= CV_WATERMARK_LAG * r->seq_stride)
        cv_run_sync_watermarks(r);
}

/* Counts an item of LEN bytes sent; per item. */
static inline void count_emit(conveyor_ctx *ctx, size_t len)
{
    cv_run *r = ctx->run;
    r->me->items_out++;
    r->me->bytes_out += len;
    if (__builtin_expect(r->seq_stride != 0, 0))
        next_source_item(r, ctx);
}

uint64_t cv_run_current_low(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    if (pr->kind == CV_PROC_SOURCE)
        return r->source_low;
    uint64_t low = cv_inbox_low(&r->inbox);
    if (r->ctx.in_call && r->ctx.seq < low)
        low = r->ctx.seq;
    if (r->unflushed && r->unflushed < low)
        low = r->unflushed;
    return low;
}

/* Tells consumers of ordered channels how far this process has got, so an
 * order = source merge downstream never waits for records that will not
 * come.  Never blocks: a full channel gets its watermark next time. */
void cv_run_sync_watermarks(cv_run *r)
{
    if (!r->has_ordered)
        return;
    uint64_t low = cv_run_current_low(r);
    r->last_sync = low;
    for (size_t i = 0; i < r->nouts; i++) {
        int c = r->out_ids[i];
        if (!r->plan->chans[c].ordered || r->view[c] >= low)
            continue;
        if (cv_channel_send(r->outs[i], low, CV_REC_WATERMARK, NULL, 0) == 0)
            r->view[c] = low;
    }
}

/* Publishes what this process did (counters, watermarks, records, freed
 * space), flushes the sink's output, then waits (see run.h). */
int cv_run_wait(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd)
{
    if (r->wait_fn)
        return r->wait_fn(r, reads, nreads, extra_fd);
    cv_run_sync_watermarks(r);
    /* Whatever we produced or freed must be visible before we sleep, or
     * the other side may sleep waiting for it too. */
    for (size_t i = 0; i < r->nins; i++)
        cv_channel_publish(r->ins[i]);
    for (size_t i = 0; i < r->nouts; i++) {
        if (r->ack && r->ctx.in_call)
            cv_channel_publish_partial(r->outs[i]);
        else
            cv_channel_publish(r->outs[i]);
    }
    if (r->sink_open && extra_fd < 0) {
        int rc = cv_writer_flush(&r->sink);
        if (rc < 0)
            return rc;
    }
    /* Waiting for nothing to read is waiting for an output to take more. */
    cv_run_wait_begin(r, nreads || extra_fd >= 0 ? CV_WAIT_INPUT : CV_WAIT_OUTPUT);
    int rc = cv_channels_wait(reads, nreads, r->outs, r->nouts, extra_fd, -1, NULL);
    cv_run_wait_end(r);
    return rc;
}

/* Sends one record; with REF (a pool block DATA lies in) a reference that
 * owns a count of its own. */
static int send_record(cv_run *r, int c, uint64_t seq, const void *data, size_t len, cv_ref ref)
{
    uint32_t off = 0;
    if (ref) {
        off = (uint32_t)((const unsigned char *)data - (unsigned char *)cv_pool_data(r->pool, ref));
        cv_pool_hold(r->pool, ref);
    }
    for (;;) {
        int rc = ref ? cv_channel_send_ref(r->chans[c], seq, ref, off, (uint32_t)len)
                     : cv_channel_send(r->chans[c], seq, 0, data, len);
        if (rc == 0) {
            if (r->view[c] < seq)
                r->view[c] = seq;
            return 0;
        }
        if (rc != -EAGAIN) {
            if (ref)
                cv_pool_drop(r->pool, ref);
            return rc;
        }
        rc = cv_run_wait(r, NULL, 0, -1);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

static uint64_t route_load(const cv_run *r, const cv_route *rt)
{
    uint64_t best = 0;
    switch (rt->kind) {
    case CV_ROUTE_CHANNEL:
        return cv_channel_queued(r->chans[rt->channel]);
    case CV_ROUTE_REPLICATE:
        for (size_t i = 0; i < rt->nkids; i++) {
            uint64_t l = route_load(r, rt->kids[i]);
            if (l > best)
                best = l;
        }
        return best;
    case CV_ROUTE_BALANCE:
        best = UINT64_MAX;
        for (size_t i = 0; i < rt->nkids; i++) {
            uint64_t l = route_load(r, rt->kids[i]);
            if (l < best)
                best = l;
        }
        return best;
    }
    return 0;
}

static int route_emit(cv_run *r, cv_route *rt, uint64_t seq, const void *data, size_t len,
                      cv_ref ref)
{
    switch (rt->kind) {
    case CV_ROUTE_CHANNEL:
        return send_record(r, rt->channel, seq, data, len, ref);
    case CV_ROUTE_REPLICATE:
        /* By reference, every branch shares the one block. */
        for (size_t i = 0; i < rt->nkids; i++) {
            int rc = route_emit(r, rt->kids[i], seq, data, len, ref);
            if (rc < 0)
                return rc;
        }
        return 0;
    case CV_ROUTE_BALANCE: {
        size_t pick = rt->next % rt->nkids;
        if (rt->policy == CV_POLICY_LEAST_LOADED) {
            /* The fewest queued items wins; ties go round-robin. */
            uint64_t best = UINT64_MAX;
            for (size_t k = 0; k < rt->nkids; k++) {
                size_t i = (rt->next + k) % rt->nkids;
                uint64_t l = route_load(r, rt->kids[i]);
                if (l < best) {
                    best = l;
                    pick = i;
                }
            }
        }
        rt->next = (unsigned)((pick + 1) % rt->nkids);
        return route_emit(r, rt->kids[pick], seq, data, len, ref);
    }
    }
    return -EINVAL;
}

/* Emits an item from wherever it is.  A large one goes by reference: the
 * block it already lies in (IN_REF: the input being processed, or a block
 * built in place), else a new block it is copied into once, whatever the
 * number of branches.  A full pool means a copy into each channel, never a
 * wait. */
int cv_run_emit_item(cv_run *r, cv_route *out, uint64_t seq, const void *data, size_t len,
                     cv_ref in_ref, const void *in_data, size_t in_len)
{
    cv_ref ref = 0, own = 0;
    if (len >= r->large && r->pool) {
        const unsigned char *d = data, *b = in_data;
        if (in_ref && d >= b && d + len <= b + in_len) {
            ref = in_ref;
        } else {
            void *p = cv_pool_alloc(r->pool, len, &own);
            if (p) {
                memcpy(p, data, len);
                data = p;
                ref = own;
            }
        }
    }
    int rc = route_emit(r, out, seq, data, len, ref);
    if (own)
        cv_pool_drop(r->pool, own);
    return rc;
}

/* Counts an item emitted, or keeps the first error an emit met (the stage
 * fails with it after the call). */
static int emitted(conveyor_ctx *ctx, int rc, size_t len)
{
    if (rc < 0) {
        if (!ctx->emit_error)
            ctx->emit_error = rc;
        return rc;
    }
    count_emit(ctx, len);
    return 0;
}

/* The general emit: checks, routing, waiting for room, errors. */
__attribute__((noinline)) static int ctx_emit_routed(conveyor_ctx *ctx, const void *item,
                                                  size_t len)
{
    cv_run *r = ctx->run;
    const cv_proc *pr = &r->plan->procs[ctx->proc];
    if (ctx->begun)
        return -EBUSY;
    if (len > r->cfg->max_item)
        return -EMSGSIZE;
    if (len && !item)
        return -EINVAL;
    return emitted(ctx, cv_run_emit_item(r, pr->out, ctx->seq, item, len, ctx->item_ref, ctx->item,
                                  ctx->item_len), len);
}

/* Per item: straight to the one output channel when there is one and it
 * takes the record (the channel checks the size against max_item too);
 * anything else the general way. */
int cv_ctx_emit(conveyor_ctx *ctx, const void *item, size_t len)
{
    cv_run *r = ctx->run;
    if (!ctx->begun && (item || !len) && cv_run_emit_direct(r, ctx->seq, item, len)) {
        count_emit(ctx, len);
        return 0;
    }
    return ctx_emit_routed(ctx, item, len);
}

/* An emit_begin that met a channel error (-EPIPE: a consumer is gone):
 * kept like an emit's, so the process's loop decides after the call. */
static void *begin_failed(conveyor_ctx *ctx, int rc)
{
    if (!ctx->emit_error)
        ctx->emit_error = rc;
    errno = -rc;
    return NULL;
}

void *cv_ctx_emit_begin(conveyor_ctx *ctx, size_t max_len)
{
    cv_run *r = ctx->run;
    const cv_route *rt = r->plan->procs[ctx->proc].out;
    if (!ctx->in_call) {
        errno = EINVAL;
        return NULL;
    }
    if (ctx->begun) {
        errno = EBUSY;
        return NULL;
    }
    if (max_len > r->cfg->max_item) {
        errno = EMSGSIZE;
        return NULL;
    }
    /* A large item is built in a pool block, whatever its destinations. */
    if (r->pool && max_len >= r->large) {
        void *p = cv_pool_alloc(r->pool, max_len, &ctx->begun_ref);
        if (p) {
            ctx->begun = 1;
            ctx->begun_chan = -1;
            ctx->begun_max = max_len;
            return p;
        }
    }
    /* One destination: build the item in the channel itself. */
    if (rt->kind == CV_ROUTE_CHANNEL) {
        for (;;) {
            void *p = cv_channel_reserve(r->chans[rt->channel], max_len);
            if (p) {
                ctx->begun = 1;
                ctx->begun_chan = rt->channel;
                ctx->begun_max = max_len;
                return p;
            }
            if (errno == EPIPE)
                return begin_failed(ctx, -EPIPE);
            if (errno != EAGAIN)
                break;      /* too large to build in place: use scratch */
            int rc = cv_run_wait(r, NULL, 0, -1);
            if (rc < 0 && rc != -EINTR)
                return begin_failed(ctx, rc);
        }
    }
    if (max_len > ctx->scratch_cap || !ctx->scratch) {
        ctx->scratch = cv_realloc(ctx->scratch, max_len ? max_len : 1);
        ctx->scratch_cap = max_len;
    }
    ctx->begun = 1;
    ctx->begun_chan = -1;
    ctx->begun_max = max_len;
    return ctx->scratch;
}

int cv_ctx_emit_commit(conveyor_ctx *ctx, size_t len)
{
    cv_run *r = ctx->run;
    if (!ctx->begun || len > ctx->begun_max)
        return -EINVAL;
    ctx->begun = 0;
    if (ctx->begun_ref) {
        cv_ref ref = ctx->begun_ref;
        const void *p = cv_pool_data(r->pool, ref);
        ctx->begun_ref = 0;
        int rc = cv_run_emit_item(r, r->plan->procs[ctx->proc].out, ctx->seq, p, len, ref, p, len);
        cv_pool_drop(r->pool, ref);
        return emitted(ctx, rc, len);
    }
    if (ctx->begun_chan < 0)
        return cv_ctx_emit(ctx, ctx->scratch, len);
    int c = ctx->begun_chan;
    int rc = cv_channel_commit(r->chans[c], ctx->seq, len);
    if (rc < 0)
        return rc;
    if (r->view[c] < ctx->seq)
        r->view[c] = ctx->seq;
    count_emit(ctx, len);
    return 0;
}

int cv_ctx_forward(conveyor_ctx *ctx)
{
    if (!ctx->item)
        return -EINVAL;     /* only inside process() */
    return cv_ctx_emit(ctx, ctx->item, ctx->item_len);
}

cv_segment *cv_ctx_segment(conveyor_ctx *ctx)
{
    return &ctx->run->seg;
}

cv_locks *cv_ctx_locks(conveyor_ctx *ctx)
{
    return ctx->run->locks;
}

unsigned cv_ctx_replica(conveyor_ctx *ctx)
{
    return ctx ? ctx->run->plan->procs[ctx->proc].replica : 0;
}

int cv_run_forward_mark(cv_run *r, uint64_t mark)
{
    for (size_t i = 0; i < r->nouts; i++) {
        int rc;
        while ((rc = cv_channel_send(r->outs[i], mark, CV_REC_WATERMARK | CV_REC_MARK, NULL, 0)) ==
               -EAGAIN) {
            rc = cv_run_wait(r, NULL, 0, -1);
            if (rc < 0 && rc != -EINTR)
                return rc;
        }
        if (rc < 0)
            return rc;
        /* A lone source's marker is a watermark too (channel.h). */
        int c = r->out_ids[i];
        if (r->plan->nsources == 1 && r->view[c] < mark)
            r->view[c] = mark;
    }
    return 0;
}

/* Flushes and closes every output: consumers see end of stream. */
int cv_run_close_outputs(cv_run *r)
{
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < r->nouts; i++) {
            int rc = cv_channel_flush(r->outs[i], 0);
            if (rc == -EAGAIN)
                pending = 1;
            else if (rc < 0)
                return rc;
        }
        if (!pending)
            break;
        cv_run_wait_begin(r, CV_WAIT_OUTPUT);
        int rc = cv_channels_wait(NULL, 0, r->outs, r->nouts, -1, -1, NULL);
        cv_run_wait_end(r);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
    for (size_t i = 0; i < r->nouts; i++)
        cv_channel_close_write(r->outs[i]);
    return 0;
}

