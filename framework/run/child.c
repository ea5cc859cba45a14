/* SPDX-License-Identifier: MIT */
/*
 * child.c - what every forked process runs: its set-up (signals, channel
 * ends, standard descriptors), then the loop of the source (read the input,
 * emit), of a stage (init, process each item, fini) or of the sink (write
 * the output).  A process ends with _exit and one of the CV_CHILD_* codes
 * the host reads; errors reach the loops as -errno, and peer_gone() alone
 * turns a consumer that went away into a quiet exit.  A source stage (a
 * plugin with produce) runs a loop of its own in place of the reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/proctitle.h"
#include "base/util.h"
#include "run/run.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int cv_child_stopping(void)
{
    return stop_requested;
}

const char *cv_proc_desc(const cv_run *r, int p, char *buf, size_t n)
{
    const cv_proc *pr = &r->plan->procs[p];
    if (pr->kind == CV_PROC_SOURCE && pr->stage < 0)
        snprintf(buf, n, "the input reader");
    else if (pr->kind == CV_PROC_SINK)
        snprintf(buf, n, "the output writer");
    else if (r->cfg->stages[pr->stage].replicas > 1)
        snprintf(buf, n, "stage '%s' replica %u", r->cfg->stages[pr->stage].name, pr->replica);
    else
        snprintf(buf, n, "stage '%s'", r->cfg->stages[pr->stage].name);
    return buf;
}

/* The one place that decides what a channel error means for a process:
 * -EPIPE is a consumer that went away, so the host is already stopping the
 * pipeline and this process ends quietly (a consequence, never reported as
 * a cause); anything else is an I/O error of its own. */
static int peer_gone(int rc)
{
    return rc == -EPIPE;
}

static int exit_for_error(int rc)
{
    return peer_gone(rc) ? CV_CHILD_PEER_GONE : CV_CHILD_IO_ERROR;
}

/* Flushes and closes the outputs at the end of the stream: CV_CHILD_OK, or
 * the exit code for what went wrong. */
static int finish_outputs(cv_run *r, const char *who)
{
    int rc = cv_run_close_outputs(r);
    if (rc < 0 && !peer_gone(rc))
        cv_error("%s: closing its outputs: %s", who, strerror(-rc));
    return rc < 0 ? exit_for_error(rc) : CV_CHILD_OK;
}

static int stage_flush(cv_run *r);

/* The inbox waits through the process's own wait (flush, publish, sleep).
 * A stage that buffers work completes it first (its flush callback): its
 * input has nothing now, and what it holds must not wait for more.  A
 * flush that asks to end the process says so with -ECANCELED, the code in
 * r->flush_code. */
static int inbox_wait(void *arg, cv_channel **reads, size_t nreads)
{
    cv_run *r = arg;
    if (r->unflushed && (r->flush_code = stage_flush(r)) >= 0)
        return -ECANCELED;
    return cv_run_wait(r, reads, nreads, -1);
}

/* --- the source --------------------------------------------------------- */

/* A stop request waiting to be let in.  ppoll delivers a signal only when
 * it returns EINTR: on an input that is always readable (a file, a pipe
 * kept full) it never does, so the source looks for it itself. */
static int stop_pending(void)
{
    sigset_t pend, usr1;
    struct timespec zero = {0, 0};
    if (sigpending(&pend) < 0 || !sigismember(&pend, SIGUSR1))
        return 0;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    (void)sigtimedwait(&usr1, NULL, &zero);     /* taken: it is handled here */
    stop_requested = 1;
    return 1;
}

/* Called by the reader before each read(): flushes outputs while the input
 * has nothing, and lets a pending stop request in (SIGUSR1 is blocked
 * everywhere else, so it is seen exactly here). */
static int source_before_read(void *arg, int fd)
{
    cv_run *r = arg;
    sigset_t open_mask;
    sigprocmask(SIG_SETMASK, NULL, &open_mask);
    sigdelset(&open_mask, SIGUSR1);
    for (;;) {
        if (stop_requested || stop_pending())
            return -EINTR;
        struct timespec zero = {0, 0};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = ppoll(&pfd, 1, &zero, &open_mask);
        if (n < 0 && errno == EINTR)
            return -EINTR;
        if (n != 0)
            return 0;
        /* The input has nothing: a wait like any other (cv_run_wait). */
        cv_run_sync_watermarks(r);
        cv_run_wait_begin(r, CV_WAIT_INPUT);
        int rc = cv_channels_wait(NULL, 0, r->outs, r->nouts, fd, -1, &open_mask);
        cv_run_wait_end(r);
        if (rc < 0)
            return rc;
    }
}

/* The reader's place() for large length32 frames: a pool block, so that
 * the item is read from the input straight into the memory every stage
 * then shares. */
static void *source_place(void *arg, size_t len)
{
    cv_run *r = arg;
    return cv_pool_alloc(r->pool, len, &r->placed);
}

/* Says what is wrong with the input (or that the pipeline is stopping) and
 * returns the exit code for a read that returned RC after ITEMS items. */
static int input_error(cv_run *r, int rc, uint64_t items)
{
    if (peer_gone(rc))
        return CV_CHILD_PEER_GONE;
    if (rc == -EMSGSIZE) {
        cv_error("input item %" PRIu64 " is larger than max_item (%zu bytes)", items + 1,
                 r->cfg->max_item);
        return CV_CHILD_BAD_INPUT;
    }
    if (rc == -EPROTO) {
        cv_error("the input ends inside item %" PRIu64 " (a truncated length32 frame)",
                 items + 1);
        return CV_CHILD_BAD_INPUT;
    }
    cv_error("reading the input after item %" PRIu64 ": %s", items, strerror(-rc));
    return CV_CHILD_IO_ERROR;
}

/* Emits source item SEQ through OUT; 0 or -errno. */
static inline int source_emit(cv_run *r, cv_route *out, uint64_t seq, const void *item,
                              size_t len)
{
    int rc = cv_run_emit_direct(r, seq, item, len)
                 ? 0
                 : cv_run_emit_item(r, out, seq, item, len, r->placed, item, len);
    if (r->placed) {
        cv_pool_drop(r->pool, r->placed);
        r->placed = 0;
    }
    if (rc < 0)
        return rc;
    r->me->items_out++;
    r->me->bytes_out += len;
    r->source_low = seq + 1;
    if (r->has_ordered && r->source_low - r->last_sync >= CV_WATERMARK_LAG)
        cv_run_sync_watermarks(r);
    return 0;
}

static int run_source(cv_run *r)
{
    cv_route *out = r->plan->procs[r->self].out;
    cv_reader rd;
    int code = CV_CHILD_OK;

    if (cv_reader_init(&rd, r->in_fd, r->cfg->framing, r->cfg->max_item) < 0)
        return CV_CHILD_IO_ERROR;
    rd.before_read = source_before_read;
    rd.before_read_arg = r;
    if (r->pool) {
        rd.place = source_place;
        rd.place_arg = r;
        rd.place_min = r->large;
    }
    r->source_low = 1;
    while (!stop_requested) {
        const void *item;
        size_t len;
        int rc = cv_reader_next(&rd, &item, &len);
        if (rc == 1) {
            r->me->items_in = rd.items;
            r->me->bytes_in += len + r->frame_bytes;
            rc = source_emit(r, out, rd.items, item, len);
            if (rc < 0) {
                code = exit_for_error(rc);
                break;
            }
            continue;
        }
        if (rc == 0)
            break;
        if (rc == -EINTR || rc == -EAGAIN)
            continue;   /* a stop request, or a non-blocking input with nothing yet */
        code = input_error(r, rc, rd.items);
        break;
    }
    cv_reader_free(&rd);
    if (code == CV_CHILD_OK || code == CV_CHILD_BAD_INPUT) {
        r->source_low = UINT64_MAX;
        int closed = finish_outputs(r, "the input reader");
        if (code == CV_CHILD_OK)
            code = closed;
    }
    return code;
}

/* --- the sink ----------------------------------------------------------- */

static int run_sink(cv_run *r)
{
    cv_record rec;
    int rc;

    cv_writer_init(&r->sink, r->out_fd, r->cfg->framing);
    r->sink_open = 1;
    while ((rc = cv_inbox_next(&r->inbox, &rec)) == 1) {
        cv_proc_stats *ps = r->me;
        ps->items_in++;
        ps->bytes_in += rec.len;
        rc = cv_writer_put(&r->sink, rec.data, rec.len);
        if (rc < 0)
            break;
        ps->items_out++;
        ps->bytes_out += rec.len + r->frame_bytes;
    }
    if (rc == 0)
        rc = cv_writer_flush(&r->sink);
    r->sink_open = 0;
    cv_writer_free(&r->sink);
    /* The sink has no consumer: -EPIPE is the output's reader gone. */
    if (rc == -EPIPE)
        return CV_CHILD_OUTPUT_CLOSED;
    if (rc < 0) {
        cv_error("writing the output after item %" PRIu64 ": %s", r->me->items_out,
                 strerror(-rc));
        return CV_CHILD_IO_ERROR;
    }
    return CV_CHILD_OK;
}

/* --- a stage ------------------------------------------------------------ */

static int dead_letter(cv_run *r, const cv_stage_cfg *st, const cv_record *rec)
{
    int fd = open(st->dead_letter_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    cv_writer w;
    cv_writer_init(&w, fd, r->cfg->framing);
    int rc = cv_writer_put(&w, rec->data, rec->len);
    if (rc == 0)
        rc = cv_writer_flush(&w);
    cv_writer_free(&w);
    close(fd);
    return rc;
}

/* After a plugin's call (WHAT: "init", "process", "fini"; ITEM: the item
 * it processed, or 0) that left an item begun and never committed (the
 * process ends with BEGUN_CODE) or met an error in an emit (it ends with
 * the code for that error): says so and returns the exit code.  Cold: the
 * caller checks the two flags inline, per item. */
__attribute__((noinline, cold)) static int call_went_wrong(cv_run *r, const char *who,
                                                           const char *what, uint64_t item,
                                                           int begun_code)
{
    conveyor_ctx *ctx = &r->ctx;
    char at[64] = "";
    if (item)
        snprintf(at, sizeof at, ", at item %" PRIu64, item);
    if (ctx->begun) {
        cv_error("%s: %s returned with an item begun (conveyor_emit_begin) but not "
                 "committed%s", who, what, at);
        return begun_code;
    }
    if (!peer_gone(ctx->emit_error))
        cv_error("%s: an item it emitted in %s could not be sent%s: %s", who, what, at,
                 strerror(-ctx->emit_error));
    return exit_for_error(ctx->emit_error);
}

/* -1 when the call left nothing wrong, else the exit code (see above). */
static inline int after_call(cv_run *r, const char *who, const char *what, uint64_t item,
                             int begun_code)
{
    if (__builtin_expect(!r->ctx.begun && !r->ctx.emit_error, 1))
        return -1;
    return call_went_wrong(r, who, what, item, begun_code);
}

static int stage_init(cv_run *r, const conveyor_stage *sd, const char *who)
{
    if (!sd->init)
        return -1;
    conveyor_ctx *ctx = &r->ctx;
    r->pstats[r->self].phase = CV_PHASE_INIT;
    if (!r->seq_stride)
        ctx->seq = 0;   /* a source numbers what init emits as any item */
    ctx->in_call = 1;
    int rc = sd->init(ctx);
    ctx->in_call = 0;
    int code = after_call(r, who, "init", 0, CV_CHILD_INIT_FAILED);
    if (code >= 0)
        return code;
    if (rc != 0) {
        cv_error("%s: init failed (returned %d); the pipeline does not start", who, rc);
        return CV_CHILD_INIT_FAILED;
    }
    return -1;
}

/* An item that crashed this stage max_restarts times in a row: written to
 * the dead-letter file instead of processed.  -1, or the exit code. */
static int stage_poison(cv_run *r, const cv_stage_cfg *st, const cv_record *rec, const char *who)
{
    cv_proc_stats *ps = &r->pstats[r->self];
    int drc = dead_letter(r, st, rec);
    if (drc < 0) {
        cv_error("%s: poison item %" PRIu64 " could not be written to '%s': %s", who, rec->seq,
                 st->dead_letter_path, strerror(-drc));
        return CV_CHILD_IO_ERROR;
    }
    cv_warn("%s: item %" PRIu64 " crashed it %u times in a row: written to '%s' "
            "instead of processed", who, rec->seq, st->max_restarts, st->dead_letter_path);
    ps->poison = 0;
    ps->failed++;
    ps->items_in++;
    ps->bytes_in += rec->len;
    ps->done++;
    cv_run_ack_counts(r);
    cv_inbox_ack(&r->inbox);
    return -1;
}

/* process() of one item, and what its result means under on_error.  -1 to
 * go on, or the exit code. */
static inline int stage_item(cv_run *r, cv_proc_stats *ps, const conveyor_stage *sd,
                             const cv_stage_cfg *st, const cv_record *rec, const char *who,
                             uint64_t *skipped)
{
    conveyor_ctx *ctx = &r->ctx;
    ctx->seq = rec->seq;
    ps->current = rec->seq;
    ps->items_in++;
    ps->bytes_in += rec->len;
    ctx->in_call = 1;
    ctx->item = rec->data ? rec->data : "";
    ctx->item_len = rec->len;
    ctx->item_ref = rec->ref;
    int prc = sd->process(ctx, rec->data, rec->len);
    ctx->in_call = 0;
    ctx->item = NULL;
    ctx->item_len = 0;
    ctx->item_ref = 0;
    int code = after_call(r, who, "process", rec->seq, CV_CHILD_ITEM_FAILED);
    if (code >= 0)
        return code;
    ps->current = 0;
    if (prc != 0) {
        if (st->on_error == CV_ON_ERROR_FAIL) {
            cv_error("%s failed item %" PRIu64 " (process returned %d)", who, rec->seq, prc);
            ps->failed++;
            return CV_CHILD_ITEM_FAILED;
        }
        ps->failed++;
        (*skipped)++;
        if (st->on_error == CV_ON_ERROR_DEAD_LETTER) {
            int drc = dead_letter(r, st, rec);
            if (drc < 0) {
                cv_error("%s failed item %" PRIu64 " and it could not be written to the "
                         "dead-letter file '%s': %s",
                         who, rec->seq, st->dead_letter_path, strerror(-drc));
                return CV_CHILD_IO_ERROR;
            }
        }
    }
    ps->done++;
    if (sd->flush && !r->unflushed)
        r->unflushed = rec->seq;
    if (r->ack) {
        /* Under restart, what a stage buffered is completed before the
         * item is acknowledged: a restart then loses none of it. */
        if (r->unflushed && (code = stage_flush(r)) >= 0)
            return code;
        /* Restarts go on from here.  Outputs first, then the input: a crash
         * between the two stores is the one window where an item is done
         * twice. */
        cv_run_ack_counts(r);
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_publish(r->outs[i]);
        cv_inbox_ack(&r->inbox);
    }
    if (r->has_ordered && cv_run_current_low(r) - r->last_sync >= CV_WATERMARK_LAG)
        cv_run_sync_watermarks(r);
    return -1;
}

/* The stage's flush callback, when it has processed items since the last:
 * -1 to go on, or the exit code.  What it emits carries the number of the
 * last item processed.  A failure counts as one failed item under
 * on_error (a dead-letter has no item to write: it counts and warns). */
static int stage_flush(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    const cv_stage_cfg *st = &r->cfg->stages[pr->stage];
    const conveyor_stage *sd = r->stages[pr->stage];
    conveyor_ctx *ctx = &r->ctx;
    char who[256];

    r->unflushed = 0;
    /* What it completes belongs to the items it kept: the last one is the
     * item in hand (for --top, and for a crash's message). */
    r->me->current = ctx->seq;
    ctx->in_call = 1;
    int rc = sd->flush(ctx);
    ctx->in_call = 0;
    r->me->current = 0;
    int code = after_call(r, cv_proc_desc(r, r->self, who, sizeof who), "flush", 0,
                          CV_CHILD_ITEM_FAILED);
    if (code >= 0)
        return code;
    if (rc == 0)
        return -1;
    r->me->failed++;
    if (st->on_error == CV_ON_ERROR_FAIL) {
        cv_error("%s: flush failed (returned %d)", who, rc);
        return CV_CHILD_ITEM_FAILED;
    }
    cv_warn("%s: flush failed (returned %d); going on as on_error says", who, rc);
    return -1;
}

static int stage_fini(cv_run *r, const conveyor_stage *sd, const cv_stage_cfg *st,
                      const char *who, uint64_t skipped)
{
    r->pstats[r->self].phase = CV_PHASE_FINI;
    if (sd->fini) {
        conveyor_ctx *ctx = &r->ctx;
        if (!r->seq_stride)
            ctx->seq = UINT64_MAX;
        ctx->in_call = 1;
        sd->fini(ctx);
        ctx->in_call = 0;
        int code = after_call(r, who, "fini", 0, CV_CHILD_ITEM_FAILED);
        if (code >= 0)
            return code;
    }
    if (skipped) {
        if (st->on_error == CV_ON_ERROR_DEAD_LETTER)
            cv_warn("%s: %" PRIu64 " failed item%s written to '%s'", who, skipped,
                    skipped == 1 ? "" : "s", st->dead_letter_path);
        else
            cv_warn("%s: %" PRIu64 " failed item%s skipped", who, skipped, skipped == 1 ? "" : "s");
    }
    return CV_CHILD_OK;
}

static int run_stage(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    const cv_stage_cfg *st = &r->cfg->stages[pr->stage];
    const conveyor_stage *sd = r->stages[pr->stage];
    cv_proc_stats *ps = &r->pstats[r->self];
    char who[256];
    cv_record rec;
    uint64_t skipped = 0;
    int rc, code;

    cv_proc_desc(r, r->self, who, sizeof who);
    if ((code = stage_init(r, sd, who)) >= 0)
        return code;
    ps->phase = CV_PHASE_ITEMS;
    while ((rc = cv_inbox_next(&r->inbox, &rec)) == 1) {
        if (r->ack && ps->poison && ps->poison == rec.seq)
            code = stage_poison(r, st, &rec, who);
        else
            code = stage_item(r, ps, sd, st, &rec, who, &skipped);
        if (code >= 0)
            return code;
    }
    if (rc == -ECANCELED && r->flush_code >= 0)
        return r->flush_code;   /* a flush inside a wait ended it */
    if (rc < 0) {
        if (!peer_gone(rc))
            cv_error("%s: reading its input: %s", who, strerror(-rc));
        return exit_for_error(rc);
    }
    if (r->unflushed && (code = stage_flush(r)) >= 0)
        return code;
    if ((code = stage_fini(r, sd, st, who, skipped)) != CV_CHILD_OK)
        return code;
    return finish_outputs(r, who);
}

/* --- a source stage ----------------------------------------------------- */

/* Completion markers go out at least every CV_MARK_ITEMS items and every
 * CV_MARK_NS while items are handed on, and once at the end (FINAL). */
#define CV_MARK_ITEMS 1000
#define CV_MARK_NS 100000000ull

static uint64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sends a completion marker (the number of the source's next item) when
 * it is due: 0 or -errno. */
static int source_marker(cv_run *r, int final)
{
    uint64_t items = r->me->items_out;
    if (items == r->mark_items && !final)
        return 0;
    uint64_t now = items - r->mark_items >= CV_MARK_ITEMS || final ? 0 : coarse_ns();
    if (now && now - r->mark_ns < CV_MARK_NS)
        return 0;
    r->mark_ns = now ? now : coarse_ns();
    r->mark_items = items;
    int rc = cv_run_forward_mark(r, r->ctx.seq);
    for (size_t i = 0; i < r->nouts; i++)
        cv_channel_publish(r->outs[i]);     /* the next call may block */
    return rc;
}

int cv_run_source_mark(cv_run *r)
{
    int rc = source_marker(r, 1);
    if (rc < 0 && !r->ctx.emit_error)
        r->ctx.emit_error = rc;     /* acted on after the call, as an emit's */
    return rc;
}

/* At the end of a source: its last marker, and the wait until everything
 * it emitted is finished downstream, so that fini() can acknowledge all of
 * it (a drain_timeout or a stop ends the wait by ending the process). */
static int source_wait_completed(cv_run *r)
{
    int rc = source_marker(r, 1);
    if (rc < 0)
        return rc;
    uint64_t mark = r->ctx.seq;
    struct timespec nap = {0, 2000000};
    while (__atomic_load_n(&r->me->completed, __ATOMIC_ACQUIRE) < mark)
        nanosleep(&nap, NULL);
    return 0;
}

/* After init or a produce call: what it emitted is handed on, and
 * visible to its consumers at once, since the next call may block for as
 * long as its data takes to come (publishing wakes a consumer only when it
 * sleeps).  Under restart = on-failure this is the point a restarted
 * source resumes from: the counters first (a source's items_in is how many
 * items it has handed on, which numbers its next item), then the channels. */
static int source_handed_on(cv_run *r)
{
    r->me->items_in = r->me->items_out;
    r->me->bytes_in = r->me->bytes_out;
    if (r->ack)
        cv_run_ack_counts(r);
    for (size_t i = 0; i < r->nouts; i++)
        cv_channel_publish(r->outs[i]);
    return source_marker(r, 0);
}

/* What sending a marker (RC) means for the source: -1 to go on, else the
 * exit code (a consumer gone is a quiet end; anything else is said). */
static int source_sent(cv_run *r, const char *who, int rc)
{
    (void)r;
    if (rc >= 0)
        return -1;
    if (!peer_gone(rc))
        cv_error("%s: sending a completion marker: %s", who, strerror(-rc));
    return exit_for_error(rc);
}

/* A produce call that failed (RC < 0) under on_error = skip or
 * dead-letter: counted, and said at the 1st, 10th, 100th ... so that a
 * source failing on every call is loud without flooding. */
static void produce_failed(cv_run *r, const char *who, int rc, uint64_t failures)
{
    r->me->failed++;
    for (uint64_t p = 1; p <= failures; p *= 10)
        if (p == failures) {
            cv_warn("%s: produce failed (%s); %" PRIu64 " failure%s so far, going on as "
                    "on_error says", who, strerror(-rc), failures, failures == 1 ? "" : "s");
            break;
        }
}

/* The loop of a type = source stage: init, produce until it returns
 * CONVEYOR_END (which it does promptly once the host asks it to stop), fini.  Source process K of
 * N numbers its items K+1, K+1+N, K+1+2N ...: the numbers of all sources
 * are distinct, and an order = source merge of several sources takes their
 * items in turn. */
static int run_producer(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    const cv_stage_cfg *st = &r->cfg->stages[pr->stage];
    const conveyor_stage *sd = r->stages[pr->stage];
    conveyor_ctx *ctx = &r->ctx;
    char who[256];
    uint64_t failures = 0;
    int code;

    cv_proc_desc(r, r->self, who, sizeof who);
    r->seq_stride = r->plan->nsources;
    /* A restarted source goes on from what it had handed on. */
    r->me->items_out = r->me->items_in;
    r->me->bytes_out = r->me->bytes_in;
    ctx->seq = r->me->items_in * r->seq_stride + (uint64_t)r->self + 1;
    r->source_low = ctx->seq;
    /* The stop request is let in at any moment: it interrupts a system call
     * a produce() is blocked in (the handler has no SA_RESTART). */
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);

    if ((code = stage_init(r, sd, who)) >= 0)
        return code;
    r->mark_items = r->me->items_out;
    if ((code = source_sent(r, who, source_handed_on(r))) >= 0)
        return code;
    r->pstats[r->self].phase = CV_PHASE_ITEMS;
    /* Called until it says it has ended, also after a stop request, which
     * it answers with CONVEYOR_END (what it holds may be emitted first). */
    for (;;) {
        ctx->in_call = 1;
        int rc = sd->produce(ctx);
        ctx->in_call = 0;
        if ((code = after_call(r, who, "produce", 0, CV_CHILD_ITEM_FAILED)) >= 0)
            return code;
        r->me->done++;
        if ((code = source_sent(r, who, source_handed_on(r))) >= 0)
            return code;
        if (rc == CONVEYOR_MORE)
            continue;
        if (rc == CONVEYOR_END)
            break;
        if (rc > 0) {
            cv_error("%s: produce returned %d (it returns CONVEYOR_MORE, CONVEYOR_END or a "
                     "negative error code)", who, rc);
            return CV_CHILD_ITEM_FAILED;
        }
        failures++;
        if (st->on_error == CV_ON_ERROR_FAIL) {
            r->me->failed++;
            cv_error("%s: produce failed (%s, returned %d)", who, strerror(-rc), rc);
            return CV_CHILD_ITEM_FAILED;
        }
        produce_failed(r, who, rc, failures);
    }
    if ((code = source_sent(r, who, source_wait_completed(r))) >= 0)
        return code;
    if ((code = stage_fini(r, sd, st, who, 0)) != CV_CHILD_OK)
        return code;
    if (failures)
        cv_warn("%s: %" PRIu64 " failed produce call%s skipped", who, failures,
                failures == 1 ? "" : "s");
    r->me->items_in = r->me->items_out;
    r->me->bytes_in = r->me->bytes_out;
    r->source_low = UINT64_MAX;
    return finish_outputs(r, who);
}

/* --- set-up ------------------------------------------------------------- */

/* The host coordinates stopping: terminal signals to the process group
 * must not kill stages mid-item; SIGUSR1 (the host's stop request) is let
 * in only inside the source's waits. */
static void child_signals(const sigset_t *host_mask)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);   /* Ctrl-\ too: the host cleans up, then dies of it */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t mask = *host_mask;
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_SETMASK, &mask, NULL);
}

/* Keeps only process P's channel ends, so end of stream is seen, and lists
 * its inputs and outputs. */
static void child_channels(cv_run *r, int p, int restarted)
{
    const cv_plan *pl = r->plan;
    const cv_proc *pr = &pl->procs[p];
    r->outs = cv_calloc(pl->nchans + 1, sizeof *r->outs);
    r->out_ids = cv_calloc(pl->nchans + 1, sizeof *r->out_ids);
    r->view = cv_calloc(pl->nchans + 1, sizeof *r->view);
    r->ins = cv_calloc(pl->nchans + 1, sizeof *r->ins);
    for (size_t c = 0; c < pl->nchans; c++) {
        const cv_chan_desc *cd = &pl->chans[c];
        int ends = (cd->from == p ? CV_END_WRITE : 0) | (cd->to == p ? CV_END_READ : 0);
        cv_channel_keep(r->chans[c], ends);
        if (cd->from == p) {
            r->outs[r->nouts] = r->chans[c];
            r->out_ids[r->nouts++] = (int)c;
            if (cd->ordered)
                r->has_ordered = 1;
        }
    }
    for (size_t i = 0; i < pr->ninputs; i++)
        r->ins[i] = r->chans[pr->inputs[i]];
    r->nins = pr->ninputs;
    /* restart = on-failure: work item by item, and a restarted process takes
     * over where the dead one had finished. */
    r->ack = pr->stage >= 0 && r->cfg->stages[pr->stage].restart == CV_RESTART_ON_FAILURE;
    if (r->ack) {
        for (size_t i = 0; i < r->nins; i++)
            cv_channel_set_ack(r->ins[i], CV_END_READ);
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_set_ack(r->outs[i], CV_END_WRITE);
    }
    if (pr->out && pr->out->kind == CV_ROUTE_CHANNEL && !r->has_ordered)
        r->direct = r->chans[pr->out->channel];
    if (restarted) {
        for (size_t i = 0; i < r->nins; i++)
            cv_channel_resume(r->ins[i]);
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_resume(r->outs[i]);
    }
}

/* Only the source reads the input and only the sink writes the output; a
 * stage that prints to stdout writes to stderr instead. */
static void child_stdio(cv_run *r, enum cv_proc_kind kind)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (kind != CV_PROC_SOURCE) {
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (r->in_fd > STDERR_FILENO)
            close(r->in_fd);
    }
    if (kind != CV_PROC_SINK) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        if (r->out_fd > STDERR_FILENO)
            close(r->out_fd);
    }
    if (devnull >= 0)
        close(devnull);
}

/* Sets SRC[k] for every source process whose items reach process P (P
 * itself when it is one), walking the plan upstream. */
static void sources_upstream(const cv_plan *pl, int p, unsigned char *src)
{
    int *todo = cv_calloc(pl->nprocs + 1, sizeof *todo);
    char *seen = cv_calloc(pl->nprocs + 1, 1);
    size_t n = 0;
    todo[n++] = p;
    seen[p] = 1;
    while (n) {
        int q = todo[--n];
        if ((size_t)q < pl->nsources) {
            src[q] = 1;
            continue;
        }
        for (size_t c = 0; c < pl->nchans; c++)
            if (pl->chans[c].to == q && !seen[pl->chans[c].from]) {
                seen[pl->chans[c].from] = 1;
                todo[n++] = pl->chans[c].from;
            }
    }
    free(todo);
    free(seen);
}

/* A completion marker came on every input of a stage that carries its
 * source: what the stage kept is completed (flush), then the marker goes
 * on. */
static int stage_mark(void *arg, uint64_t mark)
{
    cv_run *r = arg;
    if (r->unflushed && (r->flush_code = stage_flush(r)) >= 0)
        return -ECANCELED;
    int rc = cv_run_forward_mark(r, mark);
    /* Published at once: a stage that restarts item by item publishes only
     * at its acknowledgements, and a crash on the next item would take an
     * unpublished marker with it, again after every restart. */
    for (size_t i = 0; rc == 0 && i < r->nouts; i++)
        cv_channel_publish(r->outs[i]);
    return rc;
}

/* ... and at the output writer: what came before it is written out, and
 * the source learns how far it is finished. */
static int sink_mark(void *arg, uint64_t mark)
{
    cv_run *r = arg;
    int rc = cv_writer_flush(&r->sink);
    if (rc < 0)
        return rc;
    cv_proc_stats *src = &r->pstats[(mark - 1) % r->plan->nsources];
    if (mark > src->completed)
        __atomic_store_n(&src->completed, mark, __ATOMIC_RELEASE);
    return 0;
}

/* Completion markers flow where the sources are stages (a source plugin
 * may acknowledge what is finished to its broker). */
static void child_marks(cv_run *r, const cv_proc *pr)
{
    const cv_plan *pl = r->plan;
    size_t k = pl->nsources;
    unsigned char *carries = cv_calloc(pr->ninputs * k + 1, 1);
    for (size_t i = 0; i < pr->ninputs; i++)
        sources_upstream(pl, pl->chans[pr->inputs[i]].from, carries + i * k);
    cv_inbox_on_mark(&r->inbox, k, carries, pr->kind == CV_PROC_SINK ? sink_mark : stage_mark, r);
    free(carries);
}

static void child_inbox(cv_run *r, const cv_proc *pr)
{
    unsigned *ranks = cv_calloc(pr->ninputs + 1, sizeof *ranks);
    cv_channel_stats **stats = cv_calloc(pr->ninputs + 1, sizeof *stats);
    for (size_t i = 0; i < pr->ninputs; i++) {
        ranks[i] = r->plan->chans[pr->inputs[i]].rank;
        stats[i] = &r->chstats[pr->inputs[i]];
    }
    cv_inbox_init(&r->inbox, r->ins, stats, ranks, pr->ninputs, pr->order, inbox_wait, r);
    child_marks(r, pr);
    free(ranks);
    free(stats);
}

/* What ps and top show for process PR: "cv:upper[1]" as its short name,
 * "conveyor: upper[1]" as its command line when the program handed over
 * the memory for it (conveyor_set_process_title_area). */
static void child_title(const cv_proc *pr)
{
    cv_title_set_name("cv:", pr->label);
    char *title = cv_asprintf("conveyor: %s", pr->label);
    cv_title_set(title);
    free(title);
}

/* The one orderly end of a forked process: the host tells it from a
 * plugin's exit() by the finished flag. */
_Noreturn static void child_exit(cv_proc_stats *ps, int code)
{
    ps->finished = 1;
    _exit(code);
}

_Noreturn void cv_child_main(cv_run *r, int p, const sigset_t *host_mask, int restarted)
{
    const cv_proc *pr = &r->plan->procs[p];

    cv_proc_stats *ps = &r->pstats[p];
    ps->finished = 0;
    ps->phase = pr->stage >= 0 ? CV_PHASE_START : CV_PHASE_ITEMS;
    /* Die with the host, even if it is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != r->host)
        child_exit(ps, CV_CHILD_PEER_GONE);
    child_signals(host_mask);
    child_title(pr);

    r->self = p;
    r->me = ps;
    /* With more processes than cores a spinning process only steals the
     * core the process it waits for needs: spin briefly, if at all. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cv_ring_set_spin_limit(cpus > 0 && (long)r->plan->nprocs > cpus ? 0 : 20000);
    if (pr->stage >= 0)
        cv_log_set_origin(pr->label);

    child_channels(r, p, restarted);
    r->frame_bytes = r->cfg->framing == CV_FRAMING_LENGTH32 ? 4 : 1;
    /* A restarted process goes on counting where the dead one had finished
     * its last item. */
    if (restarted && r->ack) {
        ps->items_in = ps->acked_in;
        ps->items_out = ps->acked_out;
        ps->bytes_in = ps->acked_bytes_in;
        ps->bytes_out = ps->acked_bytes_out;
    }
    child_stdio(r, pr->stage < 0 ? pr->kind : CV_PROC_STAGE);

    r->flush_code = -1;
    r->ctx = (conveyor_ctx){.run = r, .proc = p,
                            .cfg = pr->stage >= 0 ? &r->cfg->stages[pr->stage] : NULL,
                            .stage = pr->stage >= 0 ? r->stages[pr->stage] : NULL};
    if (pr->kind != CV_PROC_SOURCE)
        child_inbox(r, pr);

    int code;
    switch (pr->kind) {
    case CV_PROC_SOURCE: code = pr->stage >= 0 ? run_producer(r) : run_source(r); break;
    case CV_PROC_SINK: code = run_sink(r); break;
    default: code = run_stage(r); break;
    }
    child_exit(ps, code);
}
