/* SPDX-License-Identifier: MIT */
/*
 * sources.c - the "sources" test module: type = source stages for the
 * end-to-end tests and the benchmarks.  Never installed.
 *
 *   numbers  emits PREFIX1, PREFIX2 ... PREFIXcount (count = 0: until the
 *            pipeline stops), per_call items per produce() call, sleeping
 *            usec after each call.  With tag = yes an item is
 *            "PREFIX[REPLICA]:N".  It keeps its place in the shared segment
 *            (when the pipeline has one, 16 bytes per replica, after slot
 *            others: up to 4 in all), so that a
 *            restarted process goes on from the last call that returned;
 *            crash_at = N kills the process once (SIGKILL, after emitting
 *            item N and before its call returns); fail_at = N makes the call
 *            that would emit item N return -EIO instead (once); block = yes:
 *            after the last item, blocks in poll() until a signal, then
 *            returns CONVEYOR_END when the pipeline is stopping.  bookends =
 *            yes emits "init" from init() and "fini" from fini().
 *            acks = C checks the completion watermark after every call:
 *            every item up to conveyor_completed() must have been counted
 *            C times by sources:finish (in the shared segment, a 32-bit
 *            count per item number, after the two places numbers keeps),
 *            else the call fails naming the item; fini emits
 *            "completed=N" with the watermark then.
 *   finish   (a processor) counts each item "N" in the segment once it is
 *            done with it, and passes on every keep-th (keep = 0: none)
 *   bad      produce() returns 7, which is not a code it may return
 *   memory   emits count copies of a 16-byte item from memory, per_call per
 *            produce() call (default 256): the benchmark's source
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct numbers {
    const char *prefix;
    int64_t count, per_call, usec, crash_at, fail_at;
    int tag, block, bookends, failed_once;
    int64_t acks;             /* copies sources:finish counts per item; 0: no check */
    uint64_t *emitted;        /* the item numbers it emitted, in order */
    size_t nemitted, capemitted, checked;
    volatile uint32_t *counts;
    uint64_t local;           /* the place without a segment */
    volatile uint64_t *place; /* items handed on: in the segment, or &local */
    volatile uint64_t *crashed; /* crash_at done (in the segment, or local) */
    uint64_t crashed_local;
} numbers;

/* KEY as a number, DEF when absent. */
static int64_t param_num(conveyor_ctx *ctx, const char *key, int64_t def)
{
    const char *v = conveyor_param(ctx, key);
    return v ? strtoll(v, NULL, 10) : def;
}

static int param_yes(conveyor_ctx *ctx, const char *key)
{
    const char *v = conveyor_param(ctx, key);
    return v && strcmp(v, "yes") == 0;
}

static int numbers_init(conveyor_ctx *ctx)
{
    numbers *n = calloc(1, sizeof *n);
    if (!n)
        return -1;
    n->prefix = conveyor_param(ctx, "prefix");
    if (!n->prefix)
        n->prefix = "";
    n->count = param_num(ctx, "count", 10);
    n->per_call = param_num(ctx, "per_call", 1);
    n->usec = param_num(ctx, "usec", 0);
    n->crash_at = param_num(ctx, "crash_at", 0);
    n->fail_at = param_num(ctx, "fail_at", 0);
    n->tag = param_yes(ctx, "tag");
    n->block = param_yes(ctx, "block");
    n->bookends = param_yes(ctx, "bookends");
    n->acks = param_num(ctx, "acks", 0);
    if (n->per_call < 1)
        n->per_call = 1;
    size_t size;
    unsigned char *seg = conveyor_shm(ctx, &size);
    /* Its place in the segment: 16 bytes per replica, after SLOT others
     * (two source stages in one pipeline take different slots). */
    unsigned r = conveyor_replica(ctx) + (unsigned)param_num(ctx, "slot", 0);
    if (seg && n->acks && size >= 64)
        n->counts = (volatile uint32_t *)(seg + 64);
    if (seg && size >= 16 * (r + 1)) {
        n->place = (volatile uint64_t *)(seg + 16 * r);
        n->crashed = (volatile uint64_t *)(seg + 16 * r + 8);
    } else {
        n->place = &n->local;
        n->crashed = &n->crashed_local;
    }
    conveyor_set_userdata(ctx, n);
    if (n->bookends)
        return conveyor_emit(ctx, "init", 4);
    return 0;
}

static int emit_number(conveyor_ctx *ctx, const numbers *n, uint64_t k)
{
    char buf[256];
    int len = n->tag ? snprintf(buf, sizeof buf, "%s[%u]:%llu", n->prefix,
                                conveyor_replica(ctx), (unsigned long long)k)
                     : snprintf(buf, sizeof buf, "%s%llu", n->prefix, (unsigned long long)k);
    return conveyor_emit(ctx, buf, (size_t)len);
}

/* Blocks until a signal interrupts poll(): the stop request does. */
static int wait_for_stop(conveyor_ctx *ctx)
{
    while (!conveyor_stopping(ctx)) {
        if (poll(NULL, 0, -1) < 0 && errno != EINTR)
            return -errno;
    }
    return CONVEYOR_END;
}

/* Every item it emitted up to the completion watermark must be counted
 * finished (sources:finish counts by item number). */
static int check_completed(conveyor_ctx *ctx, numbers *n)
{
    uint64_t done = conveyor_completed(ctx);
    for (; n->counts && n->checked < n->nemitted && n->emitted[n->checked] <= done; n->checked++)
        if (__atomic_load_n(&n->counts[n->emitted[n->checked]], __ATOMIC_ACQUIRE) <
            (uint32_t)n->acks) {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "completed is %llu, but item %llu is not "
                         "finished", (unsigned long long)done,
                         (unsigned long long)n->emitted[n->checked]);
            return -EPROTO;
        }
    return 0;
}

/* Notes the number the item just emitted got. */
static void note_emitted(conveyor_ctx *ctx, numbers *n)
{
    if (!n->counts)
        return;
    if (n->nemitted == n->capemitted) {
        size_t cap = n->capemitted ? 2 * n->capemitted : 1024;
        uint64_t *p = realloc(n->emitted, cap * sizeof *p);
        if (!p)
            return;
        n->emitted = p;
        n->capemitted = cap;
    }
    n->emitted[n->nemitted++] = conveyor_item_number(ctx);
}

static int numbers_produce(conveyor_ctx *ctx)
{
    numbers *n = conveyor_userdata(ctx);
    uint64_t at = *n->place;
    int crc = check_completed(ctx, n);
    if (crc < 0)
        return crc;
    if (conveyor_stopping(ctx))
        return CONVEYOR_END;
    if (n->count && at >= (uint64_t)n->count)
        return n->block ? wait_for_stop(ctx) : CONVEYOR_END;
    for (int64_t i = 0; i < n->per_call; i++) {
        uint64_t k = at + 1;
        if (n->count && k > (uint64_t)n->count)
            break;
        if (n->fail_at && k == (uint64_t)n->fail_at && !n->failed_once) {
            n->failed_once = 1;
            return -EIO;
        }
        int rc = emit_number(ctx, n, k);
        if (rc < 0)
            return rc;
        note_emitted(ctx, n);
        at = k;
        if (n->crash_at && k == (uint64_t)n->crash_at && !*n->crashed) {
            *n->crashed = 1;
            raise(SIGKILL);
        }
    }
    *n->place = at;     /* the call returns: what it emitted is handed on */
    if (n->usec)
        usleep((useconds_t)n->usec);
    return CONVEYOR_MORE;
}

static void numbers_fini(conveyor_ctx *ctx)
{
    numbers *n = conveyor_userdata(ctx);
    if (n->acks) {
        char buf[64];
        int len = check_completed(ctx, n) < 0 ? snprintf(buf, sizeof buf, "completed ahead")
                                              : snprintf(buf, sizeof buf, "completed=%llu",
                                                         (unsigned long long)conveyor_completed(ctx));
        conveyor_emit(ctx, buf, (size_t)len);
        free(n->emitted);
    }
    if (n->bookends)
        conveyor_emit(ctx, "fini", 4);
    free(n);
}

static const conveyor_param_spec numbers_params[] = {
    { .name = "prefix", .summary = "text before every number" },
    { .name = "count", .summary = "how many items; 0: until the pipeline stops", .default_value = "10" },
    { .name = "per_call", .summary = "items per produce() call", .default_value = "1" },
    { .name = "usec", .summary = "microseconds to sleep after each call", .default_value = "0" },
    { .name = "tag", .summary = "yes: items are PREFIX[REPLICA]:N", .default_value = "no" },
    { .name = "crash_at", .summary = "SIGKILL the process once, after emitting item N" },
    { .name = "fail_at", .summary = "return -EIO once instead of emitting item N" },
    { .name = "block", .summary = "yes: after the last item, block until the stop request" },
    { .name = "bookends", .summary = "yes: emit init from init() and fini from fini()" },
    { .name = "slot", .summary = "where its place is kept in the segment (replicas count on)", .default_value = "0" },
    { .name = "acks", .summary = "check the completion watermark against sources:finish's counts" },
    { .name = NULL },
};

static int finish_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    size_t size;
    unsigned char *seg = conveyor_shm(ctx, &size);
    char buf[32];
    int64_t keep = param_num(ctx, "keep", 1);
    if (len >= sizeof buf || !seg)
        return -1;
    memcpy(buf, item, len);
    buf[len] = '\0';
    /* Numbers pass every keep-th; anything else ("completed=...") passes. */
    unsigned long long k = strtoull(buf, NULL, 10);
    int number = buf[0] >= '0' && buf[0] <= '9';
    int rc = !number || (keep && k % (unsigned long long)keep == 0) ? conveyor_emit(ctx, item, len)
                                                                   : 0;
    uint64_t at = conveyor_item_number(ctx);
    if (64 + 4 * (at + 1) <= size)
        __atomic_fetch_add((uint32_t *)(seg + 64) + at, 1, __ATOMIC_RELEASE);
    return rc;
}

static const conveyor_param_spec finish_params[] = {
    { .name = "keep", .summary = "pass on every keep-th item; 0: none", .default_value = "1" },
    { .name = NULL },
};

static int bad_produce(conveyor_ctx *ctx)
{
    (void)ctx;
    return 7;
}

typedef struct memory {
    int64_t count, per_call, sent;
} memory;

static int memory_init(conveyor_ctx *ctx)
{
    memory *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->count = param_num(ctx, "count", 1000);
    m->per_call = param_num(ctx, "per_call", 256);
    if (m->per_call < 1)
        m->per_call = 1;
    conveyor_set_userdata(ctx, m);
    return 0;
}

static int memory_produce(conveyor_ctx *ctx)
{
    static const char item[16] = "0123456789abcde";
    memory *m = conveyor_userdata(ctx);
    for (int64_t i = 0; i < m->per_call && m->sent < m->count; i++, m->sent++) {
        int rc = conveyor_emit(ctx, item, 15);
        if (rc < 0)
            return rc;
    }
    return m->sent < m->count && !conveyor_stopping(ctx) ? CONVEYOR_MORE : CONVEYOR_END;
}

static void memory_fini(conveyor_ctx *ctx)
{
    free(conveyor_userdata(ctx));
}

static const conveyor_param_spec memory_params[] = {
    { .name = "count", .summary = "how many items", .default_value = "1000" },
    { .name = "per_call", .summary = "items per produce() call", .default_value = "256" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "numbers", .summary = "emits numbered items", .init = numbers_init,
      .produce = numbers_produce, .fini = numbers_fini, .params = numbers_params },
    { .name = "bad", .summary = "produce returns 7", .produce = bad_produce },
    { .name = "finish", .summary = "counts each item done in the shared segment",
      .process = finish_process, .params = finish_params },
    { .name = "memory", .summary = "emits count 15-byte items from memory", .init = memory_init,
      .produce = memory_produce, .fini = memory_fini, .params = memory_params },
    { .name = NULL },
};

CONVEYOR_MODULE("sources", "1.0", stages);
