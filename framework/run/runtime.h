/*
 * runtime.h - runs a compiled pipeline: the host's supervisor and the loop
 * every forked process runs.
 *
 * The host creates everything before the first fork (the user's segment,
 * the shared area for locks and counters, every channel), forks the source,
 * one process per stage replica and the sink, then only supervises: it reaps
 * children, turns SIGINT/SIGTERM/SIGHUP into a drain (the source stops
 * reading; every stage finishes what is in flight and runs fini), stops
 * everything at the first failure or crash, and removes what it created on
 * every way out.
 */
#ifndef CV_RUNTIME_H
#define CV_RUNTIME_H

#include <stdint.h>
#include <sys/types.h>

#include <conveyor/plugin.h>
#include "transport/channel.h"
#include "load/config.h"
#include "load/plan.h"
#include "transport/shm.h"

/* Exit codes of forked processes, read by the host. */
enum {
    CV_CHILD_OK = 0,
    CV_CHILD_ITEM_FAILED = 10,  /* process() failed an item, on_error = fail */
    CV_CHILD_INIT_FAILED = 11,  /* init() refused to start */
    CV_CHILD_IO_ERROR = 12,     /* reading input, writing output, a channel */
    CV_CHILD_BAD_INPUT = 13,    /* the input's framing is wrong */
    CV_CHILD_OUTPUT_CLOSED = 14,/* the output's reader went away (EPIPE) */
    CV_CHILD_PEER_GONE = 15     /* a channel's other end died: a consequence */
};

/* Per-process counters in the shared area (the host reads them).  One
 * cache line each: a process updates its own per item, and sharing a line
 * with a neighbour made every update a cache-line transfer. */
typedef struct cv_proc_stats {
    _Alignas(64) volatile uint64_t current;  /* seq of the item in process(), 0 when none */
    volatile uint64_t items_in;
    volatile uint64_t items_out;
    volatile uint64_t failed;   /* items that failed and were skipped or dead-lettered */
    volatile uint64_t done;     /* items finished (process returned) */
    volatile uint64_t poison;   /* restart: dead-letter this item instead of processing it */
} cv_proc_stats;

typedef struct cv_run cv_run;

struct conveyor_ctx {
    cv_run *run;
    int proc;                     /* index into plan->procs */
    const cv_stage_cfg *cfg;      /* NULL for source and sink */
    const conveyor_stage *stage;
    void *userdata;
    uint64_t seq;                 /* seq given to what is emitted now */
    int in_call;                  /* inside init/process/fini */
    int emit_error;               /* first error an emit met */
    const void *item;             /* the input of process(), for forward */
    size_t item_len;
    cv_ref item_ref;              /* its pool block when it came by reference */
    int begun;                    /* an emit_begin awaits its commit */
    int begun_chan;               /* its channel, or -1: built in scratch */
    size_t begun_max;
    cv_ref begun_ref;             /* built in a pool block (large items) */
    unsigned char *scratch;
    size_t scratch_cap;
};

/* Runs PLAN; STAGES[i] is the loaded stage of cfg->stages[i] (NULL for
 * routing stages).  Returns the exit status (CONVEYOR_EXIT_*, or 128 + the
 * signal that stopped it). */
int cv_run_pipeline(const cv_plan *plan, const conveyor_stage *const *stages);

/* In a forked process: flushes what it can and waits until one of READS
 * has data or an output can take bytes (inbox.c waits through this). */
int cv_run_wait(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd);

/* Sends what a plugin emitted (conveyor_emit, _begin/_commit, _forward). */
int cv_ctx_emit(conveyor_ctx *ctx, const void *item, size_t len);
void *cv_ctx_emit_begin(conveyor_ctx *ctx, size_t max_len);
int cv_ctx_emit_commit(conveyor_ctx *ctx, size_t len);
int cv_ctx_forward(conveyor_ctx *ctx);
cv_segment *cv_ctx_segment(conveyor_ctx *ctx);
cv_locks *cv_ctx_locks(conveyor_ctx *ctx);
unsigned cv_ctx_replica(conveyor_ctx *ctx);

#endif
