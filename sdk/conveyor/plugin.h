/* SPDX-License-Identifier: MIT */
/*
 * conveyor/plugin.h - the one header a Conveyor plugin author includes.
 *
 * A plugin module is a shared object that exports exactly one data symbol,
 * conveyor_module_v1, normally defined with CONVEYOR_MODULE().  The host
 * (conveyor-host, or any program built on libconveyor) loads the module,
 * checks its ABI version and size, and then runs each stage named in a
 * pipeline.ini in a forked process of its own.
 *
 * Words in capitals (MUST, SHOULD, MAY) state duties, as in RFC 2119.
 *
 * ABI versioning: the host refuses a module whose abi_major differs from its
 * own or whose abi_minor is newer than its own.  Structures only grow at the
 * end; the host reads no field past the size the module declares: the
 * descriptor's size, and for each stage the stage_size the descriptor gives
 * (ABI 1.2; 1.0 and 1.1 modules are read at the stage size of 1.0).
 */
#ifndef CONVEYOR_PLUGIN_H
#define CONVEYOR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** ABI version this header describes.  Filled in by CONVEYOR_MODULE(). */
#define CONVEYOR_ABI_MAJOR 1
#define CONVEYOR_ABI_MINOR 2

/** Marks the functions libconveyor exports to plugins. */
#if defined(_WIN32)
#define CONVEYOR_API __declspec(dllimport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define CONVEYOR_API __attribute__((visibility("default")))
#else
#define CONVEYOR_API
#endif

/** Marks the module descriptor a plugin exports (see CONVEYOR_MODULE). */
#if defined(__GNUC__) && __GNUC__ >= 4
#define CONVEYOR_EXPORT __attribute__((visibility("default")))
#else
#define CONVEYOR_EXPORT
#endif

/**
 * The per-process context of one running stage replica.  Opaque: a plugin
 * MUST NOT assume anything about its layout.  The host passes the same
 * pointer to init(), every process() and fini() of one process; it is
 * valid only during those calls and MUST NOT be used from other threads.
 */
typedef struct conveyor_ctx conveyor_ctx;

/** One key a stage reads from its section of pipeline.ini. */
typedef struct conveyor_param_spec {
    /** The key's name.  An entry whose name is NULL ends the array. */
    const char *name;
    /** One line shown by conveyor-host --list-plugins.  MAY be NULL. */
    const char *summary;
    /* --- ABI 1.2: read only when the module's param_size covers them --- */
    /**
     * MAY be NULL.  The value conveyor_param() and the typed getters see
     * when the section does not set the key, written as it would be in
     * pipeline.ini ("4K", "yes", "250ms").  Shown by --list-plugins.
     */
    const char *default_value;
    /** CONVEYOR_PARAM_* flags, or 0. */
    uint32_t flags;
} conveyor_param_spec;

/** conveyor_param_spec.flags: the section MUST set the key; the host
 *  refuses one that does not, naming the file and the section's line,
 *  before anything starts (ABI 1.2). */
#define CONVEYOR_PARAM_REQUIRED 0x1u

/** What produce() returns: call it again (ABI 1.2). */
#define CONVEYOR_MORE 0
/** What produce() returns: the source's data is exhausted (ABI 1.2). */
#define CONVEYOR_END 1

/**
 * One stage a module offers, named in pipeline.ini as plugin = MODULE:NAME.
 * Fields are only ever added at the end.  The host steps through a module's
 * stages array by the stage_size in its descriptor, so a module built with a
 * longer conveyor_stage than the host's is read correctly (the host ignores
 * the fields it does not know), and one built with a shorter one reads as
 * if the fields it lacks were zero.
 */
typedef struct conveyor_stage {
    /** The stage's name; NULL ends the module's stages array. */
    const char *name;
    /** One line shown by conveyor-host --list-plugins.  SHOULD be set. */
    const char *summary;
    /**
     * OPTIONAL.  Called once in the stage's own process, before the first
     * item.  The plugin MAY read its parameters, allocate state and store it
     * with conveyor_set_userdata(), and emit items.  Returning non-zero
     * refuses to start: the host stops the pipeline with exit status 1 and
     * does not call fini() for this process.
     */
    int (*init)(conveyor_ctx *ctx);
    /**
     * REQUIRED.  Called once per input item, in input order.  The item's
     * bytes are valid only during the call; a plugin that keeps them MUST
     * copy them.  The plugin MAY call conveyor_emit() any number of times
     * (zero drops the item).  Returning 0 means success; non-zero marks the
     * item failed and the stage's on_error policy decides what happens.
     */
    int (*process)(conveyor_ctx *ctx, const void *item, size_t len);
    /**
     * OPTIONAL.  Called once after every input of the stage has ended and
     * every item before it has been processed (also when the pipeline is
     * being drained after SIGINT or SIGTERM).  The plugin MAY still emit
     * (an aggregating stage emits its result here) and MUST release what
     * init() allocated.  Not called when init() failed or the pipeline is
     * stopped because of a failure.
     */
    void (*fini)(conveyor_ctx *ctx);
    /**
     * OPTIONAL.  The keys this stage reads, ended by an entry whose name is
     * NULL.  When given, the host refuses (before anything starts) a section
     * that sets any other key, naming the file and line.  When NULL, every
     * key is accepted.
     */
    const conveyor_param_spec *params;
    /* --- ABI 1.2 --- */
    /**
     * OPTIONAL; makes the stage a source (type = source in pipeline.ini).
     * Called again and again in the stage's own process, after init() and
     * before fini().  It MAY emit any number of items (zero too: a source
     * waiting for data SHOULD NOT block for longer than about 100 ms
     * without checking conveyor_stopping()).  Each item emitted gets the
     * next source item number.  Returns CONVEYOR_MORE to be called again,
     * CONVEYOR_END when its data is exhausted (the pipeline then drains and
     * ends), or a negative errno-style code when it failed: the stage's
     * on_error applies (fail stops the pipeline; skip and dead-letter
     * count the failure and call produce() again).  It MUST return
     * CONVEYOR_END promptly once conveyor_stopping() is non-zero (it is
     * called until it does; what it emitted before, and may still emit in
     * that last call and in fini(), drains).  A source stage needs no process(): it
     * has no input.  Under restart = on-failure the items a produce() call
     * emitted are handed on when it returns, so a source that crashes
     * inside one loses nothing it had handed on and duplicates nothing:
     * the restarted process runs init() and calls produce() again.
     */
    int (*produce)(conveyor_ctx *ctx);
    /**
     * OPTIONAL.  Called in the host (conveyor-host --check, and every run
     * before anything is created or started) once per stage section using
     * this stage, to validate its parameters.  Only the parameter calls,
     * conveyor_stage_name(), conveyor_replicas(), conveyor_replica() (0)
     * and conveyor_log() (prefixed with the file and the section's line)
     * are meaningful there: there is no process of the stage, no shared
     * memory and no emit (they return NULL or -EINVAL).  It runs in the
     * host's process, so it MUST NOT keep state for init(): init() reads
     * the parameters again.  Returns 0 when the
     * parameters are good, non-zero to refuse the pipeline (exit status 2);
     * it SHOULD say why, and the typed getters (conveyor_param_int() ...)
     * already name the file and line of a bad value.
     */
    int (*check)(conveyor_ctx *ctx);
    /**
     * OPTIONAL.  For a processor that buffers work beyond process(): a
     * filter that writes items to a program in large batches, a stage
     * writing to a database in batches, a network sink that pipelines its
     * requests.  Called in the stage's process, between items, whenever
     * its input has nothing waiting (before the process sleeps), and once
     * before fini().  The plugin completes what it buffered (sends it,
     * emits what came of it, waits for replies) and returns 0: without
     * flush, buffered work would wait for more input that may not come.
     * It MAY emit; what it emits gets the number of the last item
     * processed.  Non-zero says the buffered work failed (the plugin
     * SHOULD say which items, with conveyor_item_number() kept at the
     * time): on_error = fail stops the pipeline; skip and dead-letter
     * count one failure and go on.
     */
    int (*flush)(conveyor_ctx *ctx);
} conveyor_stage;

/**
 * The module descriptor: what conveyor_module_v1 holds.
 */
typedef struct conveyor_module {
    /** CONVEYOR_ABI_MAJOR and _MINOR the module was built with. */
    uint16_t abi_major, abi_minor;
    /** sizeof(conveyor_module) the module was built with. */
    uint32_t size;
    /** The module's name (the MODULE in MODULE:NAME) and version. */
    const char *name, *version;
    /** The stages; the array ends with an entry whose name is NULL. */
    const conveyor_stage *stages;
    /* --- ABI 1.2 --- */
    /**
     * sizeof(conveyor_stage) the module was built with: the stride of the
     * stages array.  CONVEYOR_MODULE() fills it in; a descriptor written by
     * hand MUST set it.  The host MUST step through the stages by it and
     * MUST NOT read a stage's fields past it; it refuses a module whose
     * stage_size is smaller than the stage of ABI 1.0 (48 bytes on LP64).
     * The host reads this field only when abi_minor >= 2 and size covers
     * it; it reads a 1.0 or 1.1 module's stages at the stage size of 1.0,
     * which 1.1 did not change.  (Why a minor version: a 1.1 host walks
     * the stages by its own sizeof, so it must refuse, by the version, a
     * module whose stages may be longer than it knows.)
     */
    uint32_t stage_size;
    /**
     * sizeof(conveyor_param_spec) the module was built with: the stride of
     * every params array (ABI 1.2, filled in by CONVEYOR_MODULE()).  0, and
     * every module of ABI 1.0 or 1.1, is read as the 1.0 spec (name and
     * summary only).
     */
    uint32_t param_size;
} conveyor_module;

/**
 * Defines the module descriptor.  Use it exactly once per module:
 *
 *     static const conveyor_stage stages[] = {
 *         { .name = "upper", .summary = "upper-cases text", .process = upper },
 *         { .name = NULL },
 *     };
 *     CONVEYOR_MODULE("text", "1.0", stages);
 *
 * It stamps the ABI version, sizeof(conveyor_module) and
 * sizeof(conveyor_stage) of the header the module is compiled against.
 */
#define CONVEYOR_MODULE(mod_name, mod_version, mod_stages)                    \
    CONVEYOR_EXPORT extern const conveyor_module conveyor_module_v1;          \
    const conveyor_module conveyor_module_v1 = {                              \
        CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR,                               \
        (uint32_t)sizeof(conveyor_module), (mod_name), (mod_version),         \
        (mod_stages), (uint32_t)sizeof(conveyor_stage),                       \
        (uint32_t)sizeof(conveyor_param_spec)}

/** Levels for conveyor_log(). */
enum conveyor_log_level {
    CONVEYOR_LOG_ERROR = 0,
    CONVEYOR_LOG_WARNING = 1,
    CONVEYOR_LOG_INFO = 2,
    CONVEYOR_LOG_DEBUG = 3
};

/** conveyor_lock() returned this: the lock was taken, but its previous
 *  holder died while holding it.  The data it protects MAY be inconsistent;
 *  the lock is usable again and the caller now holds it. */
#define CONVEYOR_LOCK_RECOVERED 1

/** How many locks conveyor_lock() offers (n is 0 .. CONVEYOR_LOCKS - 1). */
#define CONVEYOR_LOCKS 64

/**
 * Passes an item downstream.  MAY be called from init(), process() and
 * fini(), any number of times.  The bytes are copied before it returns.
 * Blocks while the downstream channel is full (back-pressure).
 * Returns 0 when the item was sent, or a negative errno-style code:
 *   -EMSGSIZE  larger than the pipeline's max_item; nothing was sent;
 *   -EINVAL    ctx is NULL, or item is NULL with len > 0; nothing was sent;
 *   -EBUSY     an item begun with conveyor_emit_begin() awaits its commit;
 *   -EPIPE     a consumer downstream is gone: the pipeline is stopping;
 *   other      a channel failed (an I/O error).
 * After the first three the plugin SHOULD fail the item (return non-zero
 * from process(), so that on_error applies); a plugin that ignores them
 * drops that output.  The last two the host remembers and acts on once the
 * call returns, whatever the plugin returns: on -EPIPE the stage's process
 * ends quietly (what stopped the pipeline is reported on its own); any other
 * channel error ends it with a message naming the stage, the item and the
 * error, and the pipeline stops with exit status 1.
 */
CONVEYOR_API int conveyor_emit(conveyor_ctx *ctx, const void *item, size_t len);

/**
 * The pipeline's shared-memory segment ([pipeline] shared_memory), mapped
 * at the same size in every stage, zero-filled at start.  Stores *size when
 * size is not NULL.  Returns NULL (and size 0) when the pipeline has none.
 * The host creates and removes the segment; a plugin MUST NOT unlink it.
 */
CONVEYOR_API void *conveyor_shm(conveyor_ctx *ctx, size_t *size);

/** The segment's POSIX shm name ("/conveyor.PID.RANDOM"), or NULL when the
 *  pipeline has none.  Also in the environment as CONVEYOR_SHM_NAME. */
CONVEYOR_API const char *conveyor_shm_name(conveyor_ctx *ctx);

/** The value of KEY in this stage's section of pipeline.ini (a value the
 *  file writes in double quotes comes without them), else the key's
 *  declared default_value (ABI 1.2), else NULL.  Valid as long as ctx. */
CONVEYOR_API const char *conveyor_param(conveyor_ctx *ctx, const char *key);

/** Stores a pointer private to this process; conveyor_userdata() returns it. */
CONVEYOR_API void conveyor_set_userdata(conveyor_ctx *ctx, void *data);
CONVEYOR_API void *conveyor_userdata(conveyor_ctx *ctx);

/** This stage's section name in pipeline.ini. */
CONVEYOR_API const char *conveyor_stage_name(conveyor_ctx *ctx);

/** This process's replica index, 0 .. replicas - 1. */
CONVEYOR_API unsigned conveyor_replica(conveyor_ctx *ctx);

/** Writes a line to the host's standard error, prefixed with the stage's
 *  name and replica.  Messages above the host's verbosity are dropped. */
CONVEYOR_API void conveyor_log(conveyor_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/**
 * Takes the n-th process-shared lock.  The locks live in memory the
 * framework keeps outside the user's segment and exist whether or not the
 * pipeline has shared_memory.  Returns 0 when taken,
 * CONVEYOR_LOCK_RECOVERED when taken after its holder died holding it,
 * -EINVAL when n >= CONVEYOR_LOCKS, -EDEADLK when the caller holds it.
 */
CONVEYOR_API int conveyor_lock(conveyor_ctx *ctx, unsigned n);

/** Releases the n-th lock.  Returns 0, -EINVAL for a bad n, -EPERM when the
 *  caller does not hold it. */
CONVEYOR_API int conveyor_unlock(conveyor_ctx *ctx, unsigned n);

/* --- ABI 1.1 ---------------------------------------------------------------
 * A module that calls these is built with CONVEYOR_ABI_MINOR 1 or later,
 * and a 1.0 host refuses it by its version before anything runs.  Modules
 * built for 1.0 keep working on later hosts. */

/**
 * Starts an output item built in place: returns a buffer of at least
 * MAX_LEN bytes that the plugin fills and then passes to
 * conveyor_emit_commit().  Where the item has one destination the buffer
 * is the channel's own memory, and a large item (pool_threshold) is built in
 * the shared pool and sent by reference, so the item is never copied.  Blocks while
 * the channel is full.  Returns NULL (errno EMSGSIZE when MAX_LEN is larger
 * than max_item, EBUSY when an item is already begun, EINVAL outside
 * init/process/fini, EPIPE when a consumer is gone: the host acts on that
 * as on conveyor_emit()'s -EPIPE).  The plugin MUST call
 * conveyor_emit_commit() before it emits anything else or returns.
 */
CONVEYOR_API void *conveyor_emit_begin(conveyor_ctx *ctx, size_t max_len);

/**
 * Sends the first LEN bytes (LEN <= the MAX_LEN given to
 * conveyor_emit_begin) of the item begun.  Returns 0, -EINVAL when no item
 * was begun or LEN is too large, or another negative errno-style code.
 */
CONVEYOR_API int conveyor_emit_commit(conveyor_ctx *ctx, size_t len);

/**
 * Passes the item being processed on unchanged, as conveyor_emit() with the
 * bytes process() was given.  Only valid inside process(); returns -EINVAL
 * elsewhere.  A large item (pool_threshold) that came by reference goes on
 * as a reference to the same shared block: nothing is copied.  (So the
 * bytes given to process() MUST NOT be written to: another stage may be
 * reading the same block.)
 */
CONVEYOR_API int conveyor_forward(conveyor_ctx *ctx);

/* --- ABI 1.2 ---------------------------------------------------------------
 * A module that calls these is built with CONVEYOR_ABI_MINOR 2 or later. */

/**
 * In a source stage: non-zero once the pipeline was asked to stop (SIGINT,
 * SIGTERM or SIGHUP to the host): produce() then returns CONVEYOR_END
 * promptly.  It reads a flag: cheap enough to call
 * per item.  In a source's process the host's stop request is a signal
 * whose handler is installed without SA_RESTART, so a system call blocked
 * inside produce() (a read() on a socket, poll()) returns EINTR when it
 * comes.  Other stages are not asked to stop (they finish what is in
 * flight): there it returns 0.
 */
CONVEYOR_API int conveyor_stopping(conveyor_ctx *ctx);

/**
 * The source item number of an item, for a plugin that maps items to
 * records of its own (a broker's entry ids).  In process(): the number of
 * the item being processed.  In a source (init, produce, fini): the number
 * the item it emitted last got, 0 before its first.
 */
CONVEYOR_API uint64_t conveyor_item_number(conveyor_ctx *ctx);

/**
 * In a source: its completion watermark, the highest item number N such
 * that every item this source process emitted with a number up to N is
 * finished everywhere in the pipeline: whatever the pipeline made of it
 * was written by the output writer (flushed to its file), or dropped or
 * failed under on_error by a stage (a stage's flush() included).  A source
 * that must not lose what it read acknowledges it to its broker up to this
 * number, never further.  It advances in steps: the framework sends a
 * completion marker after a produce() call at least every 1000 items and
 * every 100 ms while items flow, and once more when produce() returns
 * CONVEYOR_END, and then waits until everything the source emitted is
 * finished before it calls fini(), so that fini() can acknowledge all of
 * it (a stop or drain_timeout that ends the run at once ends the wait
 * too).  0 before anything is finished, and outside a source.
 */
CONVEYOR_API uint64_t conveyor_completed(conveyor_ctx *ctx);

/**
 * In a source's produce(): sends a completion marker now, after the items
 * emitted so far, so that they complete apart from the ones that follow.
 * For an item that is suspect (a broker delivered it before: it may be the
 * one that made the pipeline fail): marked before and after it, it cannot
 * hold back, or be held back by, its neighbours' acknowledgement.  Costs a
 * record on every channel downstream; not for every item.  Returns 0, or
 * -EINVAL outside a source's produce(), or a channel's error (as an emit).
 */
CONVEYOR_API int conveyor_mark(conveyor_ctx *ctx);

/** How many replicas (processes) this stage has: replicas = N. */
CONVEYOR_API unsigned conveyor_replicas(conveyor_ctx *ctx);

/*
 * Typed parameters.  Each reads KEY from the stage's section (or the
 * declared default_value when the section does not set it) and parses it.
 * Returns 1 when the key has a value and *VALUE was set, 0 when it has none
 * (*VALUE is left as the caller set it: the caller's default), or -EINVAL
 * when the value is malformed or out of range: *VALUE is left alone and an
 * error naming the INI file, the key's line, the section and the key was
 * written to standard error.  Values are as pipeline.ini writes them:
 *   conveyor_param_int       a decimal integer (optional sign), in [MIN, MAX];
 *   conveyor_param_size      bytes with an optional K, M, G, T multiple (binary,
 *                            4K = 4096; a trailing B or iB is allowed);
 *   conveyor_param_bool      yes/no, true/false, on/off, 1/0 (any case);
 *   conveyor_param_duration  milliseconds: a number with ms, s, m or h
 *                            (a bare number is seconds, as for the
 *                            durations of pipeline.ini itself).
 */
CONVEYOR_API int conveyor_param_int(conveyor_ctx *ctx, const char *key, int64_t min,
                                    int64_t max, int64_t *value);
CONVEYOR_API int conveyor_param_size(conveyor_ctx *ctx, const char *key, uint64_t *value);
CONVEYOR_API int conveyor_param_bool(conveyor_ctx *ctx, const char *key, int *value);
CONVEYOR_API int conveyor_param_duration(conveyor_ctx *ctx, const char *key,
                                         uint64_t *value_ms);

#ifdef __cplusplus
}
#endif

#endif /* CONVEYOR_PLUGIN_H */
