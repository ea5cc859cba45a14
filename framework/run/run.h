/* SPDX-License-Identifier: MIT */
/*
 * run.h - what the files of run/ share: the state of a running pipeline
 * (struct cv_run, the same in the host and, after fork, in every child),
 * the plugin's context (struct conveyor_ctx) and the calls between
 * supervisor.c (the host side), child.c (the source, sink and stage loops)
 * and emit.c (emitting, routing, watermarks, waiting).
 *
 * The host creates everything before the first fork (the user's segment,
 * the shared area for locks and counters, every channel), forks the source,
 * one process per stage replica and the sink, then only supervises.  Errors
 * travel as negative errno codes: a channel whose consumer is gone gives
 * -EPIPE all the way up to the loop of the process (child.c), which alone
 * decides what it means.
 */
#ifndef CV_RUN_H
#define CV_RUN_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include <conveyor/plugin.h>
#include "load/config.h"
#include "load/plan.h"
#include "run/framing.h"
#include "run/inbox.h"
#include "run/metrics.h"
#include "transport/channel.h"
#include "transport/pool.h"
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

/* Watermarks are sent at the latest when a process falls this many source
 * items behind on an ordered channel, and always before it waits. */
#define CV_WATERMARK_LAG 64

/* Per-process counters in the shared area (the host reads them).  The
 * first cache line is the process's own: it updates its counters there per
 * item with plain stores, the host reads the line ten times a second
 * (metrics.c), and sharing a line with a neighbour made every update a
 * cache-line transfer.  The second line is written only around waits (wait
 * times) and item boundaries of an item by item stage, never per item of
 * the others. */
typedef struct cv_proc_stats {
    _Alignas(64) volatile uint64_t current;  /* seq of the item in process(), 0 when none */
    /* The counters are plain: their owner adds to them in place per item
     * (add to memory, one instruction), and every call it makes between
     * items keeps them in memory; other processes read them with
     * cv_stat_read. */
    uint64_t items_in;
    uint64_t items_out;
    uint64_t failed;            /* items that failed: skipped, dead-lettered, or the
                                   one that stopped the pipeline (on_error = fail) */
    uint64_t done;              /* items finished (process returned) */
    uint64_t bytes_in;          /* item bytes received; the input reader: input bytes
                                   read, framing included (its offset in the input) */
    uint64_t bytes_out;         /* item bytes sent; the output writer: output bytes
                                   written, framing included */
    volatile uint32_t phase;    /* CV_PHASE_*: where the process is */
    volatile uint32_t finished; /* set just before the process's own _exit: any
                                   other end (a plugin's exit(), a signal) is a crash */
    /* --- the second line --- */
    _Alignas(64) volatile uint64_t poison;  /* restart: dead-letter this item instead */
    volatile uint64_t wait_in_ns;   /* time spent waiting for input (and for the input file) */
    volatile uint64_t wait_out_ns;  /* time spent blocked on a full output */
    volatile uint64_t wait_since;   /* CLOCK_MONOTONIC ns the wait under way began, or 0 */
    volatile uint32_t wait_kind;    /* CV_WAIT_*: what the wait under way waits for */
    uint32_t pad;
    /* An item by item stage's counters at its last finished item: where a
     * restarted process goes on counting (the dead one's item in hand and
     * what it emitted for it are done again). */
    volatile uint64_t acked_in, acked_out, acked_bytes_in;
    volatile uint64_t acked_bytes_out;
    /* A source process's completion watermark, written by the output
     * writer: the highest completion marker of this source it has had
     * (every item of the source numbered below it is finished). */
    volatile uint64_t completed;
} cv_proc_stats;

/* A counter of another process's cv_proc_stats, read now. */
#define cv_stat_read(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* What a process waits for (cv_proc_stats.wait_kind). */
enum { CV_WAIT_INPUT, CV_WAIT_OUTPUT };

/* Where a process is, for the message when it dies (cv_proc_stats.phase). */
enum { CV_PHASE_START, CV_PHASE_INIT, CV_PHASE_ITEMS, CV_PHASE_FINI };

typedef struct cv_run cv_run;

/* A plugin's context.  In a stage's process run is that process's run; in
 * the host, for conveyor_stage.check, run is NULL and pipeline is the
 * configuration being checked: only the parameter calls, the stage's name,
 * replicas and logging work there (plugin_api.c and params.c refuse the
 * rest). */
struct conveyor_ctx {
    cv_run *run;
    const cv_config *pipeline;    /* check context only (run == NULL) */
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

struct cv_run {
    const cv_plan *plan;
    const cv_config *cfg;
    const conveyor_stage *const *stages;
    cv_segment seg;
    cv_locks *locks;
    cv_channel **chans;
    cv_channel_stats *chstats;
    size_t chstats_bytes;
    cv_proc_stats *pstats;
    size_t pstats_bytes;
    cv_bell *bells;             /* one per process (ring transport) */
    size_t bells_bytes;
    cv_pool *pool;              /* large items (ring transport), or NULL */
    size_t large;               /* items of this many bytes or more go by reference */
    pid_t host;
    int in_fd, out_fd;
    int64_t input_size;         /* bytes of input to read when it is a regular file, or -1 */

    /* --- in a forked process --- */
    int self;
    cv_channel **ins;           /* this process's input channels */
    size_t nins;
    cv_channel **outs;          /* this process's output channels */
    int *out_ids;               /* their indices in plan->chans */
    size_t nouts;
    uint64_t *view;             /* per plan channel: the consumer's low mark */
    int has_ordered;
    int ack;                    /* restart = on-failure: item by item */
    uint64_t source_low;        /* source: the next seq it may send */
    uint64_t seq_stride;        /* a source stage: how far apart its item numbers
                                   are (the number of source processes); 0 else */
    /* A stage with a flush callback: the first item processed since its
     * last flush (0: none), which holds watermarks back, since what flush
     * emits carries an item number from then on; and the exit code a flush
     * called inside a wait asked for (-1: none). */
    uint64_t unflushed;
    int flush_code;
    /* A source stage: when it last sent a completion marker, and how many
     * items it had handed on then. */
    uint64_t mark_ns, mark_items;
    cv_inbox inbox;
    conveyor_ctx ctx;
    uint64_t last_sync;
    cv_ref placed;              /* source: the pool block of the item read last */
    cv_writer sink;             /* sink: the output */
    int sink_open;
    /* One output channel and no watermarks to send: emits go straight to
     * it, past the routing (NULL otherwise). */
    cv_channel *direct;
    /* This process's counters (&pstats[self]): updated in place, per item. */
    cv_proc_stats *me;
    /* Input bytes around an item that are not part of it (the input
     * reader's and output writer's byte counts include the framing). */
    unsigned frame_bytes;
    /* When set, cv_run_wait calls it instead of waiting the forked
     * processes' way (a program embedding the pipeline waits with a
     * deadline and looks for a failure). */
    int (*wait_fn)(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd);
    void *wait_arg;
};

/* --- resources.c: what the host creates before the first fork ------------- */

/* Opens the input and output, creates the user's segment, the shared area,
 * the pool and every channel for PLAN.  CONVEYOR_EXIT_OK, or the status to
 * exit with (the message is printed); cv_run_destroy is due either way. */
int cv_run_create(cv_run *r, const cv_plan *plan, const conveyor_stage *const *stages);

/* As cv_run_create, for a program that is the source and the sink itself:
 * no input or output is opened. */
int cv_run_create_embedded(cv_run *r, const cv_plan *plan, const conveyor_stage *const *stages);

/* Removes and unmaps everything cv_run_create made; the segment's name is
 * unlinked first.  Safe on a partly created run. */
void cv_run_destroy(cv_run *r);

/* The host's copies of the input and output descriptors, closed once the
 * children have them (end of stream must not depend on the host). */
void cv_run_close_io(cv_run *r);

/* --- supervisor.c: the host ---------------------------------------------- */

/* Runs PLAN; STAGES[i] is the loaded stage of cfg->stages[i] (NULL for
 * routing stages).  Returns the exit status (CONVEYOR_EXIT_*, or 128 + the
 * signal that stopped it). */
int cv_run_pipeline(const cv_plan *plan, const conveyor_stage *const *stages);

/* --progress: 1 on, 0 off, -1 (default) on when standard error is a
 * terminal and the verbosity is not -q's. */
extern int cv_run_progress;

/* Embedding (embed.c): the program is the input reader and the output
 * writer itself, so those two processes are not forked. */
static inline int cv_proc_is_program(const cv_proc *pr)
{
    return (pr->kind == CV_PROC_SOURCE && pr->stage < 0) || pr->kind == CV_PROC_SINK;
}

typedef struct cv_embed_hooks {
    void (*on_stop)(void *arg);     /* the run starts stopping: wake the program */
    void *arg;
} cv_embed_hooks;

/* Runs R (made by cv_run_create_embedded, in the program, before the
 * process calling this was forked from it) for a program that is its
 * source and sink: forks every stage process, supervises them as
 * cv_run_pipeline does, removes what R holds and returns the exit status.
 * Any stop signal (SIGTERM, SIGINT, SIGHUP) stops at once: there is no
 * input to stop reading. */
int cv_run_supervise_embedded(cv_run *r, const cv_embed_hooks *hooks);

/* "SEGV" for SIGSEGV, "?" when the C library does not know the signal. */
const char *cv_sig_name(int sig);

/* --- metrics.c: the host's sampler (metrics.h) ---------------------------- */

typedef struct cv_metrics cv_metrics;

/* Starts sampling R's metrics; PUBLISH: in a segment --top can read. */
cv_metrics *cv_metrics_start(const cv_run *r, int publish);

/* Samples the processes (PIDS: per process, -1 once ended; RESTARTS: per
 * process, or NULL) and channels now, and publishes the snapshot.  STATE
 * is a CV_MSTATE_*, STATUS the exit status once ended.  No-op on NULL. */
void cv_metrics_sample(cv_metrics *m, const cv_run *r, const pid_t *pids,
                       const unsigned *restarts, unsigned state, int status);

/* Process P ended for good (its time alive stops here).  No-op on NULL. */
void cv_metrics_proc_ended(cv_metrics *m, int p);

/* The newest snapshot, or NULL. */
const cv_mhead *cv_metrics_head(const cv_metrics *m);

/* Removes the segment and frees everything.  No-op on NULL. */
void cv_metrics_stop(cv_metrics *m);

/* --- child.c: the forked processes ---------------------------------------- */

/* The body of forked process P: never returns.  MASK is the signal mask it
 * starts from; RESTARTED: it takes over the channels of a process that
 * died. */
_Noreturn void cv_child_main(cv_run *r, int p, const sigset_t *mask, int restarted);

/* A source: sends a completion marker now (conveyor_mark).  0 or -errno. */
int cv_run_source_mark(cv_run *r);

/* Non-zero once the host asked this process to stop (a source's drain). */
int cv_child_stopping(void);

/* "stage 'a' replica 1", "the input reader", ... for messages. */
const char *cv_proc_desc(const cv_run *r, int p, char *buf, size_t n);

/* --- emit.c: sending, routing, waiting ------------------------------------ */

/* An item by item stage finished an item: its counters now are where a
 * restarted process goes on counting. */
void cv_run_ack_counts(cv_run *r);

/* The CLOCK_MONOTONIC time in nanoseconds. */
uint64_t cv_run_now_ns(void);

/* Notes that this process starts (cv_run_wait_end: ends) a wait for KIND
 * (CV_WAIT_*): the host counts the time as not busy.  Around waits only,
 * which make a system call anyway. */
void cv_run_wait_begin(cv_run *r, unsigned kind);
void cv_run_wait_end(cv_run *r);

/* Tells consumers of ordered channels how far this process has got. */
void cv_run_sync_watermarks(cv_run *r);

/* The lowest source item this process may still emit for. */
uint64_t cv_run_current_low(cv_run *r);

/* Flushes, publishes and waits until one of READS has data, EXTRA_FD
 * (-1: none) is readable or an output can take bytes.  0, -EINTR, -EPIPE
 * (a consumer is gone), or another -errno. */
int cv_run_wait(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd);

/* Sends an item through the route OUT, by reference when it is large (see
 * emit.c); IN_REF/IN_DATA/IN_LEN: the input being processed, whose block
 * an item lying inside it is sent by.  0 or -errno. */
int cv_run_emit_item(cv_run *r, cv_route *out, uint64_t seq, const void *data, size_t len,
                     cv_ref in_ref, const void *in_data, size_t in_len);

/* One output channel and an item small enough to go by value: straight to
 * the channel, past the routing, when it takes the record now (1).  0: the
 * caller emits it the general way (cv_run_emit_item).  Inline: per item. */
static inline int cv_run_emit_direct(cv_run *r, uint64_t seq, const void *data, size_t len)
{
    return r->direct && len < r->large && cv_channel_send(r->direct, seq, 0, data, len) == 0;
}

/* Flushes and closes every output: consumers see end of stream. */
int cv_run_close_outputs(cv_run *r);

/* Sends completion marker MARK (CV_REC_MARK) on every output channel,
 * whatever the routing (every branch of a balance gets it), waiting for
 * room: 0 or -errno. */
int cv_run_forward_mark(cv_run *r, uint64_t mark);

/* What a plugin's emit calls do (conveyor_emit, _begin/_commit, _forward). */
int cv_ctx_emit(conveyor_ctx *ctx, const void *item, size_t len);
void *cv_ctx_emit_begin(conveyor_ctx *ctx, size_t max_len);
int cv_ctx_emit_commit(conveyor_ctx *ctx, size_t len);
int cv_ctx_forward(conveyor_ctx *ctx);
cv_segment *cv_ctx_segment(conveyor_ctx *ctx);
cv_locks *cv_ctx_locks(conveyor_ctx *ctx);
unsigned cv_ctx_replica(conveyor_ctx *ctx);

#endif
