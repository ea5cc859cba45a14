/*
 * benchplug.c - the "benchplug" module: stages for the benchmarks (W4).
 * Built by bench/run as a plain shared object (cc -shared -fPIC), never
 * installed.
 *
 *   probe   reads `probes` bytes (default 64) of the shared segment at
 *           pseudo-random offsets drawn from the item's bytes, adds them up,
 *           and passes the item on unchanged.  With a read-only
 *           shared_memory_file and several replicas it shows what a large
 *           dataset read by many processes costs in memory (PSS).
 *
 * The sums are kept, not emitted, so the output equals the input (bench/run
 * checks it); fini logs them at info level (conveyor-host -v) and the
 * volatile store keeps the compiler from dropping the reads.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

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

static const conveyor_param_spec probe_params[] = {
    { .name = "probes", .summary = "bytes of the shared segment read per item (default 64)" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "probe", .summary = "sums bytes of the shared segment at pseudo-random offsets",
      .init = probe_init, .process = probe_process, .fini = probe_fini, .params = probe_params },
    { .name = NULL },
};

CONVEYOR_MODULE("benchplug", "1.0", stages);
