/* SPDX-License-Identifier: MIT */
/*
 * testplug.c - the "testplug" module: stages that misbehave on purpose, or
 * show what the framework gives them, for the end-to-end tests and the
 * benchmarks.  Never installed.
 *
 *   fail      fails the at-th item (1-based) this process sees
 *   crash     raises a signal on the at-th item
 *   twice     emits every item twice           drop   keeps every keep-th item
 *   count     emits "count=N" at the end       slow   sleeps usec per item
 *   tag       emits "STAGE[REPLICA]:ITEM"      initfail  refuses to start
 *   bookends  emits "init" and "fini" around the items
 *   params    emits "alpha=A,beta=B" from its parameters at start
 *   lock      counts items under lock 0 in the shared segment; "die" dies
 *             holding the lock, the next taker emits "recovered:ITEM"
 *   shmwrite  writes the segment's first byte (faults when it is read-only)
 *   echo_env  emits "$CONVEYOR_SHM_NAME|conveyor_shm_name()" per item
 *   busy      spins usec per item          big    emits bytes 'x's per item
 *   spawn     forks a child in init that sleeps a minute, then passes items
 *   quit      ends its own process (exit or _exit, with a status) in init,
 *             at the at-th item or in fini, as a misbehaving plugin would
 *   batch     keeps items and emits them, upper-cased, from its flush
 *             callback (or once max of them are kept); fini emits "fini";
 *             fail_flush = N makes the N-th flush fail; crash_at = N
 *             kills the process (SIGKILL) once it has kept the N-th item
 *             (counted in the shared segment, so once per run)
 *   levels    logs "info about 'ITEM'" at info and "debug about 'ITEM'" at
 *             debug level, then passes the item on
 *   typed     reads n, size, flag and wait with the typed getters (declared
 *             defaults 7, 4K, yes, 250ms), checks them in check() and emits
 *             "n=N size=S flag=F wait=MS replicas=R" at start
 *   required  needs id (CONVEYOR_PARAM_REQUIRED); emits "id=ID" at start
 *   anykeys   declares no params; emits "k=K" at start
 *
 * Counters are per process, so a restarted stage starts counting again:
 * crash at = 2 with restart = on-failure crashes once, then goes on.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include "../../plugins/quote.h"

/* Per-process state; each stage uses the fields it needs. */
typedef struct tp_state {
    unsigned long long seen;     /* items this process has processed */
    unsigned long long at;       /* fail, crash */
    unsigned long long keep;     /* drop */
    unsigned long long usec;     /* slow, busy */
    int sig;                     /* crash; quit: the status */
    int when;                    /* quit: 0 init, 1 process, 2 fini */
    int fast;                    /* quit: _exit rather than exit */
    char *buf;                   /* tag: scratch; big: the output */
    size_t cap;
} tp_state;

static tp_state *state_new(conveyor_ctx *ctx)
{
    tp_state *st = calloc(1, sizeof *st);

    if (!st)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
    conveyor_set_userdata(ctx, st);
    return st;
}

static void state_free(conveyor_ctx *ctx)
{
    tp_state *st = conveyor_userdata(ctx);

    if (st)
        free(st->buf);
    free(st);
    conveyor_set_userdata(ctx, NULL);
}

/* Emits and, when that fails, says so naming the input item. */
static int emit(conveyor_ctx *ctx, const void *out, size_t outlen,
                const void *item, size_t len)
{
    int rc = conveyor_emit(ctx, out, outlen);

    /* -EPIPE: the pipeline is stopping, and the host says why. */
    if (rc != 0 && rc != -EPIPE) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot emit the result for '%s': %s",
                     quote(q, item, len), strerror(rc < 0 ? -rc : rc));
    }
    return rc;
}

static int pass_on(conveyor_ctx *ctx, const void *item, size_t len)
{
    return emit(ctx, item, len, item, len);
}

/* Emits a C string from init() or fini(). */
static int emit_str(conveyor_ctx *ctx, const char *s)
{
    return emit(ctx, s, strlen(s), s, strlen(s));
}

/* Reads KEY as an unsigned decimal with an optional K, M or G (powers of
 * 1024) suffix; DFLT when absent.  Logs and returns -EINVAL when bad. */
static int uint_param(conveyor_ctx *ctx, const char *key, unsigned long long dflt,
                      unsigned long long *out)
{
    const char *v = conveyor_param(ctx, key);
    unsigned long long n, mul = 1;
    char *end;

    if (!v) {
        *out = dflt;
        return 0;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    switch (*end) {
    case 'K': case 'k': mul = 1ULL << 10; end++; break;
    case 'M': case 'm': mul = 1ULL << 20; end++; break;
    case 'G': case 'g': mul = 1ULL << 30; end++; break;
    }
    if (end == v || *end != '\0' || v[0] == '-' || errno == ERANGE || n > UINT64_MAX / mul) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "%s must be a whole number (K, M, G suffixes allowed), not '%s'", key, v);
        return -EINVAL;
    }
    *out = n * mul;
    return 0;
}

/* Dies of SIG for real: a sanitizer's handler (ASan catches SEGV and BUS)
 * or an inherited mask must not turn the death into an exit, and a test
 * should not leave core files behind. */
static void die_of(conveyor_ctx *ctx, int sig)
{
    sigset_t set;

    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    signal(sig, SIG_DFL);
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "still alive after raising signal %d", sig);
}

static const conveyor_param_spec no_params[] = { { .name = NULL } };

/* --- fail, crash --------------------------------------------------------- */

static int fail_init(conveyor_ctx *ctx)
{
    tp_state *st = state_new(ctx);

    if (!st)
        return -ENOMEM;
    if (uint_param(ctx, "at", 1, &st->at) != 0) {
        state_free(ctx);
        return -EINVAL;
    }
    return 0;
}

static int fail_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    if (++st->seen == st->at) {
        char q[QUOTE_SIZE];
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "failing item %llu as asked: '%s'",
                     st->seen, quote(q, item, len));
        return -1;
    }
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec fail_params[] = {
    { .name = "at", .summary = "fail the N-th item this process sees, 1-based (default 1)" },
    { .name = NULL },
};

static int crash_init(conveyor_ctx *ctx)
{
    static const struct { const char *name; int sig; } names[] = {
        { "SEGV", SIGSEGV }, { "ABRT", SIGABRT }, { "KILL", SIGKILL }, { "BUS", SIGBUS },
    };
    const char *name = conveyor_param(ctx, "signal");
    tp_state *st = state_new(ctx);
    size_t i;

    if (!st)
        return -ENOMEM;
    if (uint_param(ctx, "at", 1, &st->at) != 0) {
        state_free(ctx);
        return -EINVAL;
    }
    if (!name) {
        st->sig = SIGSEGV;
        return 0;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *bare = strncasecmp(name, "SIG", 3) == 0 ? name + 3 : name;
        if (strcasecmp(bare, names[i].name) == 0) {
            st->sig = names[i].sig;
            return 0;
        }
    }
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "signal must be SEGV, ABRT, KILL or BUS, not '%s'",
                 name);
    state_free(ctx);
    return -EINVAL;
}

static int crash_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    if (++st->seen == st->at) {
        die_of(ctx, st->sig);
        return -1;
    }
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec crash_params[] = {
    { .name = "at", .summary = "crash on the N-th item this process sees, 1-based (default 1)" },
    { .name = "signal", .summary = "SEGV, ABRT, KILL or BUS (default SEGV)" },
    { .name = NULL },
};

/* --- twice, drop, count -------------------------------------------------- */

static int twice_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    int rc = pass_on(ctx, item, len);

    return rc != 0 ? rc : pass_on(ctx, item, len);
}

static int drop_init(conveyor_ctx *ctx)
{
    tp_state *st = state_new(ctx);

    if (!st)
        return -ENOMEM;
    if (uint_param(ctx, "keep", 0, &st->keep) != 0) {
        state_free(ctx);
        return -EINVAL;
    }
    return 0;
}

static int drop_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    st->seen++;
    if (st->keep != 0 && st->seen % st->keep == 0)
        return pass_on(ctx, item, len);
    return 0;
}

static const conveyor_param_spec drop_params[] = {
    { .name = "keep", .summary = "pass only every N-th item; 0 drops them all (default 0)" },
    { .name = NULL },
};

static int plain_init(conveyor_ctx *ctx)
{
    return state_new(ctx) ? 0 : -ENOMEM;
}

static int count_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    (void)item;
    (void)len;
    st->seen++;
    return 0;
}

static void count_fini(conveyor_ctx *ctx)
{
    tp_state *st = conveyor_userdata(ctx);
    char out[48];

    snprintf(out, sizeof out, "count=%llu", st->seen);
    emit_str(ctx, out);
    state_free(ctx);
}

/* --- slow, busy ---------------------------------------------------------- */

static int usec_init(conveyor_ctx *ctx, unsigned long long dflt)
{
    tp_state *st = state_new(ctx);

    if (!st)
        return -ENOMEM;
    if (uint_param(ctx, "usec", dflt, &st->usec) != 0) {
        state_free(ctx);
        return -EINVAL;
    }
    return 0;
}

static int slow_init(conveyor_ctx *ctx)
{
    return usec_init(ctx, 1000);
}

static int slow_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);
    struct timespec left = {
        .tv_sec = (time_t)(st->usec / 1000000),
        .tv_nsec = (long)(st->usec % 1000000) * 1000,
    };

    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec slow_params[] = {
    { .name = "usec", .summary = "microseconds to sleep per item (default 1000)" },
    { .name = NULL },
};

static int busy_init(conveyor_ctx *ctx)
{
    return usec_init(ctx, 20);
}

static unsigned long long now_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
}

static int busy_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);
    unsigned long long end = now_ns() + st->usec * 1000ULL;

    while (now_ns() < end)
        ;
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec busy_params[] = {
    { .name = "usec", .summary = "microseconds to spin per item, using the CPU (default 20)" },
    { .name = NULL },
};

/* --- tag ----------------------------------------------------------------- */

static int tag_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);
    const char *name = conveyor_stage_name(ctx);
    char head[256];
    int n = snprintf(head, sizeof head, "%s[%u]:", name ? name : "(null)",
                     conveyor_replica(ctx));
    size_t hlen = (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;

    if (hlen + len > st->cap) {
        char *p = realloc(st->buf, hlen + len);
        if (!p) {
            char q[QUOTE_SIZE];
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory on '%s'",
                         quote(q, item, len));
            return -ENOMEM;
        }
        st->buf = p;
        st->cap = hlen + len;
    }
    memcpy(st->buf, head, hlen);
    if (len)
        memcpy(st->buf + hlen, item, len);
    return emit(ctx, st->buf, hlen + len, item, len);
}

/* --- initfail, bookends, params ------------------------------------------ */

static int initfail_init(conveyor_ctx *ctx)
{
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "initfail: refusing to start");
    return -1;
}

static int pass_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    return pass_on(ctx, item, len);
}

static int bookends_init(conveyor_ctx *ctx)
{
    return emit_str(ctx, "init");
}

static void bookends_fini(conveyor_ctx *ctx)
{
    emit_str(ctx, "fini");
}

static int params_init(conveyor_ctx *ctx)
{
    const char *alpha = conveyor_param(ctx, "alpha");
    const char *beta = conveyor_param(ctx, "beta");
    size_t n = strlen("alpha=,beta=") + strlen(alpha ? alpha : "(null)")
               + strlen(beta ? beta : "(null)") + 1;
    char *out = malloc(n);
    int rc;

    if (!out) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    snprintf(out, n, "alpha=%s,beta=%s", alpha ? alpha : "(null)", beta ? beta : "(null)");
    rc = emit_str(ctx, out);
    free(out);
    return rc;
}

static const conveyor_param_spec params_params[] = {
    { .name = "alpha", .summary = "any text, echoed at start" },
    { .name = "beta", .summary = "any text, echoed at start" },
    { .name = NULL },
};

/* --- typed, required, anykeys --------------------------------------------- */

/* The typed parameters, each refused with its file and line when bad. */
static int read_typed(conveyor_ctx *ctx, int64_t *n, uint64_t *size, int *flag, uint64_t *wait)
{
    if (conveyor_param_int(ctx, "n", -5, 1000, n) < 0 || conveyor_param_size(ctx, "size", size) < 0 ||
        conveyor_param_bool(ctx, "flag", flag) < 0 ||
        conveyor_param_duration(ctx, "wait", wait) < 0)
        return -EINVAL;
    return 0;
}

/* In the host: the parameters, and what a check context offers (its name,
 * replicas, replica 0, a log) and refuses (emit, segment, locks). */
static int typed_check(conveyor_ctx *ctx)
{
    int64_t n = 0;
    uint64_t size = 0, wait = 0;
    int flag = 0;
    size_t shm_size = 1;

    if (read_typed(ctx, &n, &size, &flag, &wait) < 0)
        return -EINVAL;
    if (conveyor_emit(ctx, "x", 1) != -EINVAL || conveyor_emit_begin(ctx, 1) ||
        conveyor_forward(ctx) != -EINVAL || conveyor_shm(ctx, &shm_size) || shm_size != 0 ||
        conveyor_shm_name(ctx) || conveyor_lock(ctx, 0) != -EINVAL || conveyor_replica(ctx) != 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "the check context offers what it must not");
        return -EPERM;
    }
    if (n == 13) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "n = 13 is unlucky");
        return 1;
    }
    conveyor_log(ctx, CONVEYOR_LOG_INFO, "checked %s: n=%lld replicas=%u", conveyor_stage_name(ctx),
                 (long long)n, conveyor_replicas(ctx));
    return 0;
}

static int typed_init(conveyor_ctx *ctx)
{
    int64_t n = -1;
    uint64_t size = 1, wait = 1;
    int flag = -1;
    char out[160];

    if (read_typed(ctx, &n, &size, &flag, &wait) < 0)
        return -EINVAL;
    snprintf(out, sizeof out, "n=%lld size=%llu flag=%d wait=%llu replicas=%u", (long long)n,
             (unsigned long long)size, flag, (unsigned long long)wait, conveyor_replicas(ctx));
    return emit_str(ctx, out);
}

static const conveyor_param_spec typed_params[] = {
    { .name = "n", .summary = "a number from -5 to 1000", .default_value = "7" },
    { .name = "size", .summary = "a size", .default_value = "4K" },
    { .name = "flag", .summary = "yes or no", .default_value = "yes" },
    { .name = "wait", .summary = "a duration", .default_value = "250ms" },
    { .name = "text", .summary = "any text", .default_value = " spaced; out " },
    { .name = NULL },
};

static int required_init(conveyor_ctx *ctx)
{
    char out[256];

    snprintf(out, sizeof out, "id=%s", conveyor_param(ctx, "id"));
    return emit_str(ctx, out);
}

static const conveyor_param_spec required_params[] = {
    { .name = "id", .summary = "who this is", .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "note", .summary = "anything" },
    { .name = NULL },
};

static int anykeys_init(conveyor_ctx *ctx)
{
    const char *k = conveyor_param(ctx, "k");
    char out[256];

    snprintf(out, sizeof out, "k=%s", k ? k : "(null)");
    return emit_str(ctx, out);
}

/* --- lock, shmwrite, echo_env -------------------------------------------- */

/* Checks the segment holds at least MIN bytes. */
static int need_shm(conveyor_ctx *ctx, size_t min)
{
    size_t size = 0;

    if (!conveyor_shm(ctx, &size) || size < min) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "needs [pipeline] shared_memory >= %zu (the segment has %zu bytes)",
                     min, size);
        return -EINVAL;
    }
    return 0;
}

static int lock_init(conveyor_ctx *ctx)
{
    return need_shm(ctx, sizeof(uint64_t));
}

static int lock_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    volatile uint64_t *counter = conveyor_shm(ctx, NULL);
    char q[QUOTE_SIZE];
    int rc = conveyor_lock(ctx, 0);

    if (rc < 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "conveyor_lock(0) failed on '%s': %s",
                     quote(q, item, len), strerror(-rc));
        return rc;
    }
    if (rc == CONVEYOR_LOCK_RECOVERED) {
        static const char tag[] = "recovered:";
        char *out = malloc(sizeof tag - 1 + len + 1);

        if (!out) {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory on '%s'", quote(q, item, len));
            conveyor_unlock(ctx, 0);
            return -ENOMEM;
        }
        memcpy(out, tag, sizeof tag - 1);
        if (len)
            memcpy(out + sizeof tag - 1, item, len);
        rc = emit(ctx, out, sizeof tag - 1 + len, item, len);
        free(out);
        if (rc != 0) {
            conveyor_unlock(ctx, 0);
            return rc;
        }
    } else if (len == 3 && memcmp(item, "die", 3) == 0) {
        /* Not when this take recovered the lock: a restarted process that
         * gets "die" again then shows the recovery instead of dying until
         * max_restarts runs out. */
        die_of(ctx, SIGKILL);
        return -1;
    }
    (*counter)++;
    rc = conveyor_unlock(ctx, 0);
    if (rc != 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "conveyor_unlock(0) failed on '%s': %s",
                     quote(q, item, len), strerror(rc < 0 ? -rc : rc));
        return rc;
    }
    return pass_on(ctx, item, len);
}

static int shmwrite_init(conveyor_ctx *ctx)
{
    return need_shm(ctx, 1);
}

static int shmwrite_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    size_t size = 0;
    volatile unsigned char *mem = conveyor_shm(ctx, &size);
    const char *past = conveyor_param(ctx, "past_end");

    if (past && strcmp(past, "yes") == 0) {
        for (size_t i = 0; i < 8; i++)      /* a classic off-by-a-few */
            mem[size + i] = 'x';
    } else {
        mem[0] = 'w';
    }
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec shmwrite_params[] = {
    { .name = "past_end", .summary = "yes: write 8 bytes just past the segment's end instead of its first byte" },
    { .name = NULL },
};

static int echo_env_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    const char *env = getenv("CONVEYOR_SHM_NAME");
    const char *name = conveyor_shm_name(ctx);
    char out[512];
    int n = snprintf(out, sizeof out, "%s|%s", env ? env : "(null)", name ? name : "(null)");

    return emit(ctx, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1, item, len);
}

/* --- big ----------------------------------------------------------------- */

static int big_init(conveyor_ctx *ctx)
{
    tp_state *st;
    unsigned long long bytes;

    if (!conveyor_param(ctx, "bytes")) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "big needs bytes = N (the size of each output)");
        return -EINVAL;
    }
    if (uint_param(ctx, "bytes", 0, &bytes) != 0)
        return -EINVAL;
    if (bytes > SIZE_MAX - 1) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "bytes too large: %llu", bytes);
        return -EINVAL;
    }
    st = state_new(ctx);
    if (!st)
        return -ENOMEM;
    st->buf = malloc((size_t)bytes + 1);
    if (!st->buf) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory for %llu bytes", bytes);
        state_free(ctx);
        return -ENOMEM;
    }
    memset(st->buf, 'x', (size_t)bytes);
    st->cap = (size_t)bytes;
    return 0;
}

static int big_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    return emit(ctx, st->buf, st->cap, item, len);
}

static const conveyor_param_spec big_params[] = {
    { .name = "bytes", .summary = "size of the item emitted per input item (required; K, M, G allowed)" },
    { .name = NULL },
};

/* --- the module ---------------------------------------------------------- */

/* --- crash_on, crash_random: for supervised restarts ------------------------ */

/* Crashes (SIGSEGV) whenever the item equals the item param: a poison item. */
static int crash_on_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    const char *bad = conveyor_param(ctx, "item");
    if (bad && strlen(bad) == len && memcmp(bad, item, len) == 0) {
        die_of(ctx, SIGSEGV);
        return -1;
    }
    return pass_on(ctx, item, len);
}

static const conveyor_param_spec crash_on_params[] = {
    { .name = "item", .summary = "the item that crashes the stage (SIGSEGV)" },
    { .name = NULL },
};

/* Emits each item twice (the first half of its output published before a
 * crash would be), then crashes with probability p per item: restarts must
 * lose nothing and duplicate nothing. */
static int crash_random_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    static unsigned long long state;
    const char *p = conveyor_param(ctx, "p");
    double prob = p ? strtod(p, NULL) : 0.001;
    if (!state)
        state = ((unsigned long long)getpid() << 20) ^ (unsigned long long)time(NULL) ^ 0x9e3779b97f4a7c15ULL;
    int rc = pass_on(ctx, item, len);
    if (rc != 0)
        return rc;
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    if ((double)(state >> 11) / 9007199254740992.0 < prob) {
        die_of(ctx, SIGSEGV);
        return -1;
    }
    return 0;
}

static const conveyor_param_spec crash_random_params[] = {
    { .name = "p", .summary = "probability of a crash per item, after emitting it (default 0.001)" },
    { .name = NULL },
};

/* --- ABI 1.1: forward, emit_begin/commit ---------------------------------- */

static int forward_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    (void)item;
    (void)len;
    return conveyor_forward(ctx);
}

/* Emits the item reversed, built in place. */
static int reverse_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    unsigned char *out = conveyor_emit_begin(ctx, len);
    if (!out)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = ((const unsigned char *)item)[len - 1 - i];
    return conveyor_emit_commit(ctx, len);
}

/* Writes "where TAG STAGE ADDRESS" on stderr for every item (TAG: the
 * item's bytes before its first ':'), then forwards it: tests compare the
 * addresses two stages see (the pool is mapped at one address in every
 * process) to tell one shared block from copies. */
static int where_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    const char *colon = memchr(item, ':', len);
    int tl = colon ? (int)(colon - (const char *)item) : 0;
    char line[256];
    int n = snprintf(line, sizeof line, "where %.*s %s %p\n", tl > 64 ? 64 : tl,
                     (const char *)item, conveyor_stage_name(ctx), item);
    if (write(STDERR_FILENO, line, (size_t)n) != n)
        return -1;
    return conveyor_forward(ctx);
}

/* Misuses the API: begins an item and returns without committing it. */
static int uncommitted_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    (void)item;
    return conveyor_emit_begin(ctx, len) ? 0 : -1;
}

static void uncommitted_fini(conveyor_ctx *ctx)
{
    (void)conveyor_emit_begin(ctx, 8);
}

/* forward outside process() is refused: fini emits what it returned. */
static void forward_in_fini(conveyor_ctx *ctx)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "forward=%d", conveyor_forward(ctx));
    conveyor_emit(ctx, buf, (size_t)n);
}

/* --- quit: a plugin that ends its process itself ------------------------------ */

static void quit_now(const tp_state *st)
{
    if (st->fast)
        _exit(st->sig);
    exit(st->sig);
}

static int quit_init(conveyor_ctx *ctx)
{
    static const char *const whens[] = {"init", "process", "fini"};
    const char *when = conveyor_param(ctx, "in");
    const char *how = conveyor_param(ctx, "how");
    unsigned long long status;
    tp_state *st = state_new(ctx);

    if (!st)
        return -ENOMEM;
    if (uint_param(ctx, "at", 1, &st->at) != 0 || uint_param(ctx, "status", 0, &status) != 0 ||
        status > 255) {
        state_free(ctx);
        return -EINVAL;
    }
    st->sig = (int)status;
    st->when = 1;
    for (int i = 0; when && i < 3; i++)
        if (strcmp(when, whens[i]) == 0)
            st->when = i;
    st->fast = how && strcmp(how, "_exit") == 0;
    if (st->when == 0)
        quit_now(st);
    return 0;
}

static int quit_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_state *st = conveyor_userdata(ctx);

    if (st->when == 1 && ++st->seen == st->at)
        quit_now(st);
    return pass_on(ctx, item, len);
}

static void quit_fini(conveyor_ctx *ctx)
{
    tp_state *st = conveyor_userdata(ctx);

    if (st->when == 2)
        quit_now(st);
    state_free(ctx);
}

static const conveyor_param_spec quit_params[] = {
    { .name = "in", .summary = "init, process (default) or fini: where the process ends" },
    { .name = "at", .summary = "in process: the N-th item this process sees, 1-based (default 1)" },
    { .name = "status", .summary = "the exit status, 0-255 (default 0)" },
    { .name = "how", .summary = "exit (default: atexit handlers run) or _exit" },
    { .name = NULL },
};

/* --- levels: an info and a debug message about every item ------------------- */

static int levels_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    char q[QUOTE_SIZE];
    quote(q, item, len);
    conveyor_log(ctx, CONVEYOR_LOG_INFO, "info about '%s'", q);
    conveyor_log(ctx, CONVEYOR_LOG_DEBUG, "debug about '%s'", q);
    return pass_on(ctx, item, len);
}

/* --- spawn: a plugin that leaves a process behind ------------------------------ */

static int spawn_init(conveyor_ctx *ctx)
{
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* A helper that knows nothing of the pipeline: it keeps whatever
         * descriptors it inherited and outlives its stage. */
        struct timespec minute = {60, 0};
        nanosleep(&minute, NULL);
        _exit(0);
    }
    conveyor_log(ctx, CONVEYOR_LOG_WARNING, "spawned %ld", (long)pid);
    return 0;
}

/* batch: items kept for flush, one string each. */
typedef struct tp_batch {
    char **items;
    size_t n, max;
    unsigned long long flushes, fail_flush, crash_at;
} tp_batch;

static int batch_init(conveyor_ctx *ctx)
{
    tp_batch *b = calloc(1, sizeof *b);
    int64_t max = 1000, fail = 0, crash = 0;
    if (!b || conveyor_param_int(ctx, "max", 1, 1000000, &max) < 0 ||
        conveyor_param_int(ctx, "fail_flush", 0, INT64_MAX, &fail) < 0 ||
        conveyor_param_int(ctx, "crash_at", 0, INT64_MAX, &crash) < 0) {
        free(b);
        return -1;
    }
    b->max = (size_t)max;
    b->fail_flush = (unsigned long long)fail;
    b->crash_at = (unsigned long long)crash;
    b->items = calloc(b->max, sizeof *b->items);
    conveyor_set_userdata(ctx, b);
    return b->items ? 0 : -1;
}

static int batch_emit_all(conveyor_ctx *ctx, tp_batch *b)
{
    int rc = 0;
    for (size_t i = 0; i < b->n; i++) {
        for (char *c = b->items[i]; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        if (rc == 0)
            rc = conveyor_emit(ctx, b->items[i], strlen(b->items[i]));
        free(b->items[i]);
    }
    b->n = 0;
    return rc;
}

static int batch_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    tp_batch *b = conveyor_userdata(ctx);
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, item, len);
    copy[len] = '\0';
    b->items[b->n++] = copy;
    size_t size;
    unsigned long long *kept = conveyor_shm(ctx, &size);
    if (b->crash_at && kept && size >= sizeof *kept && ++*kept == b->crash_at)
        raise(SIGKILL);
    return b->n == b->max ? batch_emit_all(ctx, b) : 0;
}

static int batch_flush(conveyor_ctx *ctx)
{
    tp_batch *b = conveyor_userdata(ctx);
    if (++b->flushes == b->fail_flush) {
        for (size_t i = 0; i < b->n; i++)
            free(b->items[i]);
        b->n = 0;
        return -5;
    }
    return batch_emit_all(ctx, b);
}

static void batch_fini(conveyor_ctx *ctx)
{
    tp_batch *b = conveyor_userdata(ctx);
    batch_emit_all(ctx, b);
    conveyor_emit(ctx, "fini", 4);
    free(b->items);
    free(b);
}

static const conveyor_param_spec batch_params[] = {
    { .name = "max", .summary = "items kept at most before they are emitted", .default_value = "1000" },
    { .name = "fail_flush", .summary = "the N-th flush fails (returns -5)" },
    { .name = "crash_at", .summary = "SIGKILL once the N-th item of the run is kept (needs shared_memory)" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "batch", .summary = "keeps items and emits them from flush",
      .init = batch_init, .process = batch_process, .flush = batch_flush, .fini = batch_fini,
      .params = batch_params },
    { .name = "spawn", .summary = "forks a child in init that sleeps a minute; passes items on",
      .init = spawn_init, .process = pass_on, .params = no_params },
    { .name = "quit", .summary = "ends its own process with exit() in init, process or fini",
      .init = quit_init, .process = quit_process, .fini = quit_fini, .params = quit_params },
    { .name = "crash_on", .summary = "crashes (SIGSEGV) on the item equal to its item param",
      .process = crash_on_process, .params = crash_on_params },
    { .name = "crash_random", .summary = "passes items on, crashing with probability p after each",
      .process = crash_random_process, .params = crash_random_params },
    { .name = "forward", .summary = "passes every item on with conveyor_forward",
      .process = forward_process, .fini = forward_in_fini, .params = no_params },
    { .name = "reverse", .summary = "emits every item reversed, built in place",
      .process = reverse_process, .params = no_params },
    { .name = "levels", .summary = "logs info and debug messages about every item, passes it on",
      .process = levels_process, .params = no_params },
    { .name = "where", .summary = "logs the address of every item on stderr, then forwards it",
      .process = where_process, .params = no_params },
    { .name = "uncommitted", .summary = "begins an item and never commits it",
      .process = uncommitted_process, .params = no_params },
    { .name = "uncommitted_fini", .summary = "passes items on; fini begins an item, never commits it",
      .process = pass_process, .fini = uncommitted_fini, .params = no_params },
    { .name = "fail", .summary = "fails the at-th item",
      .init = fail_init, .process = fail_process, .fini = state_free, .params = fail_params },
    { .name = "crash", .summary = "raises a signal on the at-th item",
      .init = crash_init, .process = crash_process, .fini = state_free,
      .params = crash_params },
    { .name = "twice", .summary = "emits every item twice",
      .process = twice_process, .params = no_params },
    { .name = "drop", .summary = "passes only every keep-th item",
      .init = drop_init, .process = drop_process, .fini = state_free, .params = drop_params },
    { .name = "count", .summary = "emits count=N at the end",
      .init = plain_init, .process = count_process, .fini = count_fini, .params = no_params },
    { .name = "slow", .summary = "sleeps usec per item",
      .init = slow_init, .process = slow_process, .fini = state_free, .params = slow_params },
    { .name = "tag", .summary = "emits STAGE[REPLICA]:ITEM",
      .init = plain_init, .process = tag_process, .fini = state_free, .params = no_params },
    { .name = "initfail", .summary = "refuses to start",
      .init = initfail_init, .process = pass_process, .params = no_params },
    { .name = "bookends", .summary = "emits init before the items and fini after them",
      .init = bookends_init, .process = pass_process, .fini = bookends_fini,
      .params = no_params },
    { .name = "params", .summary = "emits alpha=A,beta=B at start, then passes items",
      .init = params_init, .process = pass_process, .params = params_params },
    { .name = "lock", .summary = "counts items in shared memory under lock 0; die dies holding it",
      .init = lock_init, .process = lock_process, .params = no_params },
    { .name = "shmwrite", .summary = "writes the shared memory's first byte",
      .init = shmwrite_init, .process = shmwrite_process, .params = shmwrite_params },
    { .name = "echo_env", .summary = "emits $CONVEYOR_SHM_NAME|conveyor_shm_name() per item",
      .process = echo_env_process, .params = no_params },
    { .name = "busy", .summary = "spins usec per item",
      .init = busy_init, .process = busy_process, .fini = state_free, .params = busy_params },
    { .name = "big", .summary = "emits an item of bytes 'x's per item",
      .init = big_init, .process = big_process, .fini = state_free, .params = big_params },
    { .name = "typed", .summary = "emits its typed parameters at start",
      .init = typed_init, .process = pass_process, .params = typed_params, .check = typed_check },
    { .name = "required", .summary = "emits id=ID at start",
      .init = required_init, .process = pass_process, .params = required_params },
    { .name = "anykeys", .summary = "declares no parameters; emits k=K at start",
      .init = anykeys_init, .process = pass_process },
    { .name = NULL },
};

CONVEYOR_MODULE("testplug", "1.0", stages);
