/* SPDX-License-Identifier: MIT */
/*
 * benchplug.c - the "benchplug" module: stages for the benchmarks (W4, WS).
 * Built by bench/run as a plain shared object (cc -shared -fPIC), never
 * installed.
 *
 *   probe   reads `probes` bytes (default 64) of the shared segment at
 *           pseudo-random offsets drawn from the item's bytes, adds them up,
 *           and passes the item on unchanged.  With a read-only
 *           shared_memory_file and several replicas it shows what a large
 *           dataset read by many processes costs in memory (PSS).
 *
 *   memory  a source (type = source): emits `count` items of 15 decimal
 *           digits, the lines bench/gen.c writes (000000000000000,
 *           000000000000001, ...) without their newline, `per_call` items
 *           per produce() call (default 256).  With framing = lines the
 *           pipeline's output is byte for byte `gen lines COUNT`.
 *
 * The sums are kept, not emitted, so the output equals the input (bench/run
 * checks it); fini logs them at info level (conveyor-host -v) and the
 * volatile store keeps the compiler from dropping the reads.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct probe_state {
    const unsigned char *mem;
    size_t size;
    unsigned long long probes;
    unsigned long long items;
    uint64_t total;
} probe_state;

static volatile uint64_t sink;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int probe_init(conveyor_ctx *ctx)
{
    size_t size = 0;
    const unsigned char *mem = conveyor_shm(ctx, &size);
    const char *v = conveyor_param(ctx, "probes");
    unsigned long long probes = 64;

    if (!mem || size == 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "probe needs a shared segment "
                     "([pipeline] shared_memory_file or shared_memory)");
        return -EINVAL;
    }
    if (v) {
        char *end;
        probes = strtoull(v, &end, 10);
        if (end == v || *end || v[0] == '-') {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "probes must be a whole number, not '%s'", v);
            return -EINVAL;
        }
    }
    probe_state *st = calloc(1, sizeof *st);
    if (!st) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    st->mem = mem;
    st->size = size;
    st->probes = probes;
    conveyor_set_userdata(ctx, st);
    return 0;
}

static int probe_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    probe_state *st = conveyor_userdata(ctx);
    const unsigned char *p = item;
    uint64_t seed = 0xcbf29ce484222325ULL, sum = 0;

    /* FNV-1a of the item seeds the offsets: the same item reads the same
     * bytes whichever replica gets it. */
    for (size_t i = 0; i < len; i++)
        seed = (seed ^ p[i]) * 0x100000001b3ULL;
    for (unsigned long long k = 0; k < st->probes; k++)
        sum += st->mem[splitmix(&seed) % st->size];
    st->total += sum;
    st->items++;
    return conveyor_emit(ctx, item, len);
}

static void probe_fini(conveyor_ctx *ctx)
{
    probe_state *st = conveyor_userdata(ctx);

    if (!st)
        return;
    sink = st->total;
    conveyor_log(ctx, CONVEYOR_LOG_INFO, "replica %u: %llu items, %llu probes each, sum %llu",
                 conveyor_replica(ctx), st->items, st->probes, (unsigned long long)st->total);
    free(st);
    conveyor_set_userdata(ctx, NULL);
}

/* KEY as a whole number >= MIN, DEF when the section does not set it;
 * -EINVAL after saying why. */
static int whole_param(conveyor_ctx *ctx, const char *key, long long min, long long def,
                       long long *out)
{
    const char *v = conveyor_param(ctx, key);
    char *end;

    *out = def;
    if (!v)
        return 0;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (end == v || *end || errno || *out < min) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s must be a whole number >= %lld, not '%s'", key,
                     min, v);
        return -EINVAL;
    }
    return 0;
}

typedef struct memory_state {
    long long count, per_call, sent;
    char digits[15];
} memory_state;

static int memory_init(conveyor_ctx *ctx)
{
    long long count, per_call;

    if (whole_param(ctx, "count", 0, 10000000, &count) ||
        whole_param(ctx, "per_call", 1, 256, &per_call))
        return -EINVAL;
    memory_state *m = calloc(1, sizeof *m);
    if (!m) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    m->count = count;
    m->per_call = per_call;
    memset(m->digits, '0', sizeof m->digits);
    conveyor_set_userdata(ctx, m);
    return 0;
}

/* The next number, in decimal in place: a digit or so an item, where
 * snprintf would cost more than the rest of the item's way. */
static void count_up(char *digits, int n)
{
    for (int d = n - 1; d >= 0; d--) {
        if (digits[d] != '9') {
            digits[d]++;
            return;
        }
        digits[d] = '0';
    }
}

static int memory_produce(conveyor_ctx *ctx)
{
    memory_state *m = conveyor_userdata(ctx);

    if (conveyor_stopping(ctx))
        return CONVEYOR_END;
    for (long long i = 0; i < m->per_call && m->sent < m->count; i++) {
        int rc = conveyor_emit(ctx, m->digits, sizeof m->digits);
        if (rc < 0)
            return rc;
        m->sent++;
        count_up(m->digits, (int)sizeof m->digits);
    }
    return m->sent < m->count ? CONVEYOR_MORE : CONVEYOR_END;
}

static void memory_fini(conveyor_ctx *ctx)
{
    free(conveyor_userdata(ctx));
    conveyor_set_userdata(ctx, NULL);
}

static const conveyor_param_spec memory_params[] = {
    { .name = "count", .summary = "how many items", .default_value = "10000000" },
    { .name = "per_call", .summary = "items per produce() call",
      .default_value = "256" },
    { .name = NULL },
};

static const conveyor_param_spec probe_params[] = {
    { .name = "probes", .summary = "bytes of the shared segment read per item (default 64)" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "probe", .summary = "sums bytes of the shared segment at pseudo-random offsets",
      .init = probe_init, .process = probe_process, .fini = probe_fini, .params = probe_params },
    { .name = "memory", .summary = "a source of COUNT 15-digit items (bench/gen.c's lines)",
      .init = memory_init, .produce = memory_produce, .fini = memory_fini,
      .params = memory_params },
    { .name = NULL },
};

CONVEYOR_MODULE("benchplug", "1.0", stages);
