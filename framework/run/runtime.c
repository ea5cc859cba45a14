/*
 * runtime.c - the host's supervisor and the loop every forked process runs
 * (see runtime.h).  The merging of inputs lives in inbox.c, emitting and
 * routing here.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "run/framing.h"
#include "run/inbox.h"
#include "base/log.h"
#include "run/runtime.h"
#include "base/util.h"

/* Watermarks are sent at the latest when a process falls this many source
 * items behind on an ordered channel, and always before it waits. */
#define WATERMARK_LAG 64

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
    cv_inbox inbox;
    conveyor_ctx ctx;
    uint64_t last_sync;
    cv_ref placed;              /* source: the pool block of the item read last */
    cv_writer sink;             /* sink: the output */
    int sink_open;
    /* One output channel and no watermarks to send: emits go straight to
     * it, past the routing (NULL otherwise). */
    cv_channel *direct;
    /* This process's counters, kept here and copied to its cv_proc_stats by
     * publish_counts: before it waits, after each item of an item by item
     * stage (restarts read done), and before it exits. */
    uint64_t n_in, n_out, n_done;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_sigchld(int sig)
{
    (void)sig;
}

/* --- counters ---------------------------------------------------------- */

static void publish_counts(cv_run *r)
{
    cv_proc_stats *ps = &r->pstats[r->self];
    ps->items_in = r->n_in;
    ps->items_out = r->n_out;
    ps->done = r->n_done;
}

/* --- emitting --------------------------------------------------------- */

static uint64_t current_low(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    if (pr->kind == CV_PROC_SOURCE)
        return r->source_low;
    uint64_t low = cv_inbox_low(&r->inbox);
    if (r->ctx.in_call && r->ctx.seq < low)
        low = r->ctx.seq;
    return low;
}

/* Tells consumers of ordered channels how far this process has got, so an
 * order = source merge downstream never waits for records that will not
 * come.  Never blocks: a full channel gets its watermark next time. */
static void sync_watermarks(cv_run *r)
{
    if (!r->has_ordered)
        return;
    uint64_t low = current_low(r);
    r->last_sync = low;
    for (size_t i = 0; i < r->nouts; i++) {
        int c = r->out_ids[i];
        if (!r->plan->chans[c].ordered || r->view[c] >= low)
            continue;
        if (cv_channel_send(r->outs[i], low, CV_REC_WATERMARK, NULL, 0) == 0)
            r->view[c] = low;
    }
}

/* Waits until some output can take bytes (or, with WITH_INPUT, until an
 * input has something), writing out whatever any channel can take. */
int cv_run_wait(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd)
{
    publish_counts(r);
    sync_watermarks(r);
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
    int rc = cv_channels_wait(reads, nreads, r->outs, r->nouts, extra_fd, -1, NULL);
    if (rc == -EPIPE)
        _exit(CV_CHILD_PEER_GONE);  /* a consumer is gone: the host is stopping us */
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
        if (rc == -EPIPE)
            _exit(CV_CHILD_PEER_GONE);  /* the consumer is gone: the host is stopping us */
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
static int emit_item(cv_run *r, cv_route *out, uint64_t seq, const void *data, size_t len,
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

/* One output channel and an item small enough to go by value: straight to
 * the channel, past the routing, when it takes the record now (1).  0: the
 * caller emits it the general way (emit_item). */
static inline int emit_direct(cv_run *r, uint64_t seq, const void *data, size_t len)
{
    return r->direct && len < r->large && cv_channel_send(r->direct, seq, 0, data, len) == 0;
}

/* Counts an item emitted, or keeps the first error an emit met (the stage
 * fails with it after the call). */
static int emitted(conveyor_ctx *ctx, int rc)
{
    if (rc < 0) {
        if (!ctx->emit_error)
            ctx->emit_error = rc;
        return rc;
    }
    ctx->run->n_out++;
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
    return emitted(ctx, emit_item(r, pr->out, ctx->seq, item, len, ctx->item_ref, ctx->item,
                                  ctx->item_len));
}

/* Per item: straight to the one output channel when there is one and it
 * takes the record (the channel checks the size against max_item too);
 * anything else the general way. */
int cv_ctx_emit(conveyor_ctx *ctx, const void *item, size_t len)
{
    cv_run *r = ctx->run;
    if (!ctx->begun && (item || !len) && emit_direct(r, ctx->seq, item, len)) {
        r->n_out++;
        return 0;
    }
    return ctx_emit_routed(ctx, item, len);
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
                _exit(CV_CHILD_PEER_GONE);
            if (errno != EAGAIN)
                break;      /* too large to build in place: use scratch */
            int rc = cv_run_wait(r, NULL, 0, -1);
            if (rc < 0 && rc != -EINTR) {
                errno = -rc;
                return NULL;
            }
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
        int rc = emit_item(r, r->plan->procs[ctx->proc].out, ctx->seq, p, len, ref, p, len);
        cv_pool_drop(r->pool, ref);
        return emitted(ctx, rc);
    }
    if (ctx->begun_chan < 0)
        return cv_ctx_emit(ctx, ctx->scratch, len);
    int c = ctx->begun_chan;
    int rc = cv_channel_commit(r->chans[c], ctx->seq, len);
    if (rc < 0)
        return rc;
    if (r->view[c] < ctx->seq)
        r->view[c] = ctx->seq;
    r->n_out++;
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

/* Flushes and closes every output: consumers see end of stream. */
static int close_outputs(cv_run *r)
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
        int rc = cv_channels_wait(NULL, 0, r->outs, r->nouts, -1, -1, NULL);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
    for (size_t i = 0; i < r->nouts; i++)
        cv_channel_close_write(r->outs[i]);
    return 0;
}

/* --- the processes ------------------------------------------------------ */

static const char *proc_desc(const cv_run *r, int p, char *buf, size_t n)
{
    const cv_proc *pr = &r->plan->procs[p];
    if (pr->kind == CV_PROC_SOURCE)
        snprintf(buf, n, "the input reader");
    else if (pr->kind == CV_PROC_SINK)
        snprintf(buf, n, "the output writer");
    else if (r->cfg->stages[pr->stage].replicas > 1)
        snprintf(buf, n, "stage '%s' replica %u", r->cfg->stages[pr->stage].name, pr->replica);
    else
        snprintf(buf, n, "stage '%s'", r->cfg->stages[pr->stage].name);
    return buf;
}

static int exit_for_emit_error(int rc)
{
    return rc == -EPIPE ? CV_CHILD_PEER_GONE : CV_CHILD_IO_ERROR;
}

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
        sync_watermarks(r);
        int rc = cv_channels_wait(NULL, 0, r->outs, r->nouts, fd, -1, &open_mask);
        if (rc == -EINTR)
            return -EINTR;
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

static int run_source(cv_run *r)
{
    cv_reader rd;
    const cv_proc *pr = &r->plan->procs[r->self];
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
    for (;;) {
        const void *item;
        size_t len;
        if (stop_requested)
            break;
        int rc = cv_reader_next(&rd, &item, &len);
        if (rc == 1) {
            uint64_t seq = rd.items;
            r->n_in = seq;
            rc = emit_direct(r, seq, item, len) ? 0
                 : emit_item(r, pr->out, seq, item, len, r->placed, item, len);
            if (r->placed) {
                cv_pool_drop(r->pool, r->placed);
                r->placed = 0;
            }
            if (rc < 0) {
                code = exit_for_emit_error(rc);
                break;
            }
            r->n_out++;
            r->source_low = seq + 1;
            if (r->has_ordered && r->source_low - r->last_sync >= WATERMARK_LAG)
                sync_watermarks(r);
            continue;
        }
        if (rc == 0)
            break;
        if (rc == -EINTR)
            continue;
        if (rc == -EMSGSIZE) {
            cv_error("input item %" PRIu64 " is larger than max_item (%zu bytes)", rd.items + 1,
                     r->cfg->max_item);
            code = CV_CHILD_BAD_INPUT;
        } else if (rc == -EPROTO) {
            cv_error("the input ends inside item %" PRIu64 " (a truncated length32 frame)",
                     rd.items + 1);
            code = CV_CHILD_BAD_INPUT;
        } else {
            cv_error("reading the input after item %" PRIu64 ": %s", rd.items, strerror(-rc));
            code = CV_CHILD_IO_ERROR;
        }
        break;
    }
    cv_reader_free(&rd);
    if (code == CV_CHILD_OK || code == CV_CHILD_BAD_INPUT) {
        r->source_low = UINT64_MAX;
        if (close_outputs(r) < 0 && code == CV_CHILD_OK)
            code = CV_CHILD_PEER_GONE;
    }
    return code;
}

static int run_sink(cv_run *r)
{
    cv_record rec;
    int rc;

    cv_writer_init(&r->sink, r->out_fd, r->cfg->framing);
    r->sink_open = 1;
    while ((rc = cv_inbox_next(&r->inbox, &rec)) == 1) {
        r->n_in++;
        rc = cv_writer_put(&r->sink, rec.data, rec.len);
        if (rc < 0)
            break;
        r->n_out++;
    }
    if (rc == 0)
        rc = cv_writer_flush(&r->sink);
    r->sink_open = 0;
    cv_writer_free(&r->sink);
    if (rc == -EPIPE)
        return CV_CHILD_OUTPUT_CLOSED;
    if (rc < 0) {
        cv_error("writing the output after item %" PRIu64 ": %s", r->n_out,
                 strerror(-rc));
        return CV_CHILD_IO_ERROR;
    }
    return CV_CHILD_OK;
}

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

static int run_stage(cv_run *r)
{
    const cv_proc *pr = &r->plan->procs[r->self];
    const cv_stage_cfg *st = &r->cfg->stages[pr->stage];
    const conveyor_stage *sd = r->stages[pr->stage];
    conveyor_ctx *ctx = &r->ctx;
    char who[256];
    cv_record rec;
    int rc;
    uint64_t skipped = 0;

    proc_desc(r, r->self, who, sizeof who);
    if (sd->init) {
        ctx->seq = 0;
        ctx->in_call = 1;
        rc = sd->init(ctx);
        ctx->in_call = 0;
        if (ctx->emit_error)
            return exit_for_emit_error(ctx->emit_error);
        if (ctx->begun) {
            cv_error("%s: init returned with an item begun (conveyor_emit_begin) but not "
                     "committed", who);
            return CV_CHILD_INIT_FAILED;
        }
        if (rc != 0) {
            cv_error("%s: init failed (returned %d); the pipeline does not start", who, rc);
            return CV_CHILD_INIT_FAILED;
        }
    }
    cv_proc_stats *ps = &r->pstats[r->self];
    while ((rc = cv_inbox_next(&r->inbox, &rec)) == 1) {
        if (r->ack && ps->poison && ps->poison == rec.seq) {
            /* It crashed this stage max_restarts times in a row. */
            int drc = dead_letter(r, st, &rec);
            if (drc < 0) {
                cv_error("%s: poison item %" PRIu64 " could not be written to '%s': %s", who,
                         rec.seq, st->dead_letter_path, strerror(-drc));
                return CV_CHILD_IO_ERROR;
            }
            cv_warn("%s: item %" PRIu64 " crashed it %u times in a row: written to '%s' "
                    "instead of processed", who, rec.seq, st->max_restarts, st->dead_letter_path);
            ps->poison = 0;
            ps->failed++;
            r->n_done++;
            publish_counts(r);
            cv_inbox_ack(&r->inbox);
            continue;
        }
        ctx->seq = rec.seq;
        ps->current = rec.seq;
        r->n_in++;
        ctx->in_call = 1;
        ctx->item = rec.data ? rec.data : "";
        ctx->item_len = rec.len;
        ctx->item_ref = rec.ref;
        int prc = sd->process(ctx, rec.data, rec.len);
        ctx->in_call = 0;
        ctx->item = NULL;
        ctx->item_len = 0;
        ctx->item_ref = 0;
        if (ctx->begun) {
            cv_error("%s: process returned with an item begun (conveyor_emit_begin) but not "
                     "committed, at item %" PRIu64, who, rec.seq);
            return CV_CHILD_ITEM_FAILED;
        }
        ps->current = 0;
        if (ctx->emit_error)
            return exit_for_emit_error(ctx->emit_error);
        if (prc != 0) {
            if (st->on_error == CV_ON_ERROR_FAIL) {
                cv_error("%s failed item %" PRIu64 " (process returned %d)", who, rec.seq, prc);
                return CV_CHILD_ITEM_FAILED;
            }
            ps->failed++;
            skipped++;
            if (st->on_error == CV_ON_ERROR_DEAD_LETTER) {
                int drc = dead_letter(r, st, &rec);
                if (drc < 0) {
                    cv_error("%s failed item %" PRIu64 " and it could not be written to the "
                             "dead-letter file '%s': %s",
                             who, rec.seq, st->dead_letter_path, strerror(-drc));
                    return CV_CHILD_IO_ERROR;
                }
            }
        }
        r->n_done++;
        if (r->ack) {
            /* Restarts read done.  Outputs first, then the input: a crash
             * between the two stores is the one window where an item is
             * done twice. */
            publish_counts(r);
            for (size_t i = 0; i < r->nouts; i++)
                cv_channel_publish(r->outs[i]);
            cv_inbox_ack(&r->inbox);
        }
        if (r->has_ordered) {
            uint64_t low = current_low(r);
            if (low - r->last_sync >= WATERMARK_LAG)
                sync_watermarks(r);
        }
    }
    if (rc < 0) {
        cv_error("%s: reading its input: %s", who, strerror(-rc));
        return CV_CHILD_IO_ERROR;
    }
    if (sd->fini) {
        ctx->seq = UINT64_MAX;
        ctx->in_call = 1;
        sd->fini(ctx);
        ctx->in_call = 0;
        if (ctx->emit_error)
            return exit_for_emit_error(ctx->emit_error);
        if (ctx->begun) {
            cv_error("%s: fini returned with an item begun (conveyor_emit_begin) but not "
                     "committed", who);
            return CV_CHILD_ITEM_FAILED;
        }
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

static void child_main(cv_run *r, int p, const sigset_t *host_mask, int restarted)
{
    const cv_plan *pl = r->plan;
    const cv_proc *pr = &pl->procs[p];
    char origin[256];

    /* Die with the host, even if it is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != r->host)
        _exit(CV_CHILD_PEER_GONE);

    /* The host coordinates stopping: terminal signals to the process group
     * must not kill stages mid-item. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigset_t mask = *host_mask;
    sigaddset(&mask, SIGUSR1);   /* delivered only inside the source's waits */
    sigprocmask(SIG_SETMASK, &mask, NULL);

    r->self = p;
    /* With more processes than cores a spinning process only steals the
     * core the process it waits for needs: spin briefly, if at all. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cv_ring_set_spin_limit(cpus > 0 && (long)pl->nprocs > cpus ? 0 : 20000);
    if (pr->kind == CV_PROC_STAGE) {
        snprintf(origin, sizeof origin, "%s", pr->label);
        cv_log_set_origin(origin);
    }

    /* Keep only this process's channel ends, so end of stream is seen. */
    r->outs = cv_calloc(pl->nchans + 1, sizeof *r->outs);
    r->out_ids = cv_calloc(pl->nchans + 1, sizeof *r->out_ids);
    r->view = cv_calloc(pl->nchans + 1, sizeof *r->view);
    cv_channel **ins = cv_calloc(pl->nchans + 1, sizeof *ins);
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
        ins[i] = r->chans[pr->inputs[i]];
    r->ins = ins;
    r->nins = pr->ninputs;
    /* restart = on-failure: work item by item, and a restarted process takes
     * over where the dead one had finished. */
    r->ack = pr->kind == CV_PROC_STAGE && r->cfg->stages[pr->stage].restart == CV_RESTART_ON_FAILURE;
    if (r->ack) {
        for (size_t i = 0; i < r->nins; i++)
            cv_channel_set_ack(r->ins[i], CV_END_READ);
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_set_ack(r->outs[i], CV_END_WRITE);
    }
    /* A restarted process goes on counting where the dead one stopped. */
    r->n_in = r->pstats[p].items_in;
    r->n_out = r->pstats[p].items_out;
    r->n_done = r->pstats[p].done;
    if (pr->out && pr->out->kind == CV_ROUTE_CHANNEL && !r->has_ordered)
        r->direct = r->chans[pr->out->channel];
    if (restarted) {
        for (size_t i = 0; i < r->nins; i++)
            cv_channel_resume(r->ins[i]);
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_resume(r->outs[i]);
    }

    /* Only the source reads the input and only the sink writes the output;
     * a stage that prints to stdout writes to stderr instead. */
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pr->kind != CV_PROC_SOURCE) {
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        if (r->in_fd > STDERR_FILENO)
            close(r->in_fd);
    }
    if (pr->kind != CV_PROC_SINK) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        if (r->out_fd > STDERR_FILENO)
            close(r->out_fd);
    }
    if (devnull >= 0)
        close(devnull);

    r->ctx = (conveyor_ctx){.run = r, .proc = p,
                            .cfg = pr->stage >= 0 ? &r->cfg->stages[pr->stage] : NULL,
                            .stage = pr->stage >= 0 ? r->stages[pr->stage] : NULL};
    if (pr->kind != CV_PROC_SOURCE) {
        unsigned *ranks = cv_calloc(pr->ninputs + 1, sizeof *ranks);
        cv_channel_stats **stats = cv_calloc(pr->ninputs + 1, sizeof *stats);
        for (size_t i = 0; i < pr->ninputs; i++) {
            ranks[i] = pl->chans[pr->inputs[i]].rank;
            stats[i] = &r->chstats[pr->inputs[i]];
        }
        cv_inbox_init(&r->inbox, ins, stats, ranks, pr->ninputs, pr->order, r);
        free(ranks);
        free(stats);
    }

    int code;
    switch (pr->kind) {
    case CV_PROC_SOURCE: code = run_source(r); break;
    case CV_PROC_SINK: code = run_sink(r); break;
    default:
        code = run_stage(r);
        if (code == CV_CHILD_OK && close_outputs(r) < 0)
            code = CV_CHILD_PEER_GONE;
        break;
    }
    publish_counts(r);
    _exit(code);
}

/* --- the host ----------------------------------------------------------- */

static int open_io(cv_run *r)
{
    const cv_config *cfg = r->cfg;
    r->in_fd = STDIN_FILENO;
    r->out_fd = STDOUT_FILENO;
    if (strcmp(cfg->input, "-") != 0) {
        r->in_fd = open(cfg->input, O_RDONLY | O_CLOEXEC);
        if (r->in_fd < 0) {
            cv_error("%s: cannot open input '%s': %s", cfg->path, cfg->input, strerror(errno));
            return -errno;
        }
    }
    if (strcmp(cfg->output, "-") != 0) {
        r->out_fd = open(cfg->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (r->out_fd < 0) {
            int e = errno;
            cv_error("%s: cannot open output '%s': %s", cfg->path, cfg->output, strerror(e));
            if (r->in_fd > STDERR_FILENO)
                close(r->in_fd);
            return -e;
        }
    }
    return 0;
}

/* What a channel may hold, in item bytes however they travel: large
 * buffers let large items stream without a wake-up per item (with 1 MiB
 * rings and no pool, 1 MiB items moved at 0.66 GB/s through three stages,
 * with 8 MiB at 1.6-2.6 GB/s).  Pipelines with many channels get less, so
 * that the memory stays bounded (at most ~128 MiB). */
static size_t channel_budget(const cv_plan *plan)
{
    if (plan->nchans > 1024)
        return 64 * 1024;
    if (plan->nchans > 256)
        return 128 * 1024;
    if (plan->nchans > 64)
        return 512 * 1024;
    if (plan->nchans > 16)
        return 2 * 1024 * 1024;
    return 8 * 1024 * 1024;
}

/* The pool's default size: what every channel may hold by reference (its
 * budget, see ref_budget in channel_ring.c) and room for what the
 * processes hold while they work.  Only the pages used cost memory. */
static size_t pool_auto_size(const cv_plan *plan)
{
    return plan->nchans * channel_budget(plan) + 64 * 1024 * 1024;
}

/* The ring itself: the whole budget without a pool; with one, only items
 * below the threshold travel in the ring, so it needs room for four of
 * those (a larger record would travel in pieces) and 1 MiB at least, which
 * keeps a producer busy long enough between wake-ups.  Smaller rings stay
 * in the cache and cost less to map: 4 rings of 8 MiB took 14 ms of start-up
 * to pre-fault, of 1 MiB 2 ms. */
static size_t ring_capacity(const cv_plan *plan, size_t large)
{
    size_t budget = channel_budget(plan);
    if (large == SIZE_MAX)
        return budget;
    size_t cap = 1024 * 1024;
    while (cap < budget && cap / 4 < large + 64)
        cap *= 2;
    return cap < budget ? cap : budget;
}

/* "SEGV" for SIGSEGV, "?" when the C library does not know the signal. */
static const char *sig_name(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? n : "?";
}

/* A stage with restart = on-failure died by a signal: start a new process
 * for it, unless it crashed max_restarts times in a row without finishing an
 * item (then the item is a poison item: dead-lettered when the stage has a
 * dead-letter file, else the pipeline stops).  Returns 1 when restarted. */
static int restart_child(cv_run *r, int p, int status, unsigned *in_row, uint64_t *done_at_crash,
                         const sigset_t *child_mask, pid_t *pid_out)
{
    const cv_proc *pr = &r->plan->procs[p];
    if (pr->kind != CV_PROC_STAGE)
        return 0;
    const cv_stage_cfg *st = &r->cfg->stages[pr->stage];
    if (st->restart != CV_RESTART_ON_FAILURE)
        return 0;
    cv_proc_stats *ps = &r->pstats[p];
    uint64_t item = ps->current;
    int sig = WTERMSIG(status);
    char who[256];
    proc_desc(r, p, who, sizeof who);

    if (ps->done > done_at_crash[p])
        in_row[p] = 0;
    done_at_crash[p] = ps->done;
    in_row[p]++;
    if (in_row[p] >= st->max_restarts) {
        /* Crashed max_restarts times in a row without finishing an item. */
        if (item && st->on_error == CV_ON_ERROR_DEAD_LETTER) {
            cv_warn("%s was killed by SIG%s %u times in a row on item %" PRIu64 ", a poison item; "
                    "restarting it to write the item to '%s' instead",
                    who, sig_name(sig), in_row[p], item,
                    st->dead_letter_path);
            ps->poison = item;
            in_row[p] = 0;
            goto start;
        } else {
            if (item)
                cv_error("%s was killed by SIG%s %u time%s in a row on item %" PRIu64 ", a poison "
                         "item (on_error = dead-letter:PATH sets such items aside); the pipeline "
                         "is stopped", who, sig_name(sig), in_row[p],
                         in_row[p] == 1 ? "" : "s", item);
            else
                cv_error("%s was killed by SIG%s %u times in a row; the pipeline is stopped", who,
                         sig_name(sig), in_row[p]);
            return -1;
        }
    }
    if (item)
        cv_warn("%s was killed by SIG%s while processing item %" PRIu64 "; restarting it "
                "(%u of %u in a row)", who, sig_name(sig), item,
                in_row[p], st->max_restarts);
    else
        cv_warn("%s was killed by SIG%s between items; restarting it (%u of %u in a row)", who,
                sig_name(sig), in_row[p], st->max_restarts);
start:
    ps->current = 0;
    /* A short backoff, growing with the crashes in a row. */
    struct timespec backoff = {0, (long)(10 * 1000000L) << (in_row[p] < 6 ? in_row[p] : 6)};
    nanosleep(&backoff, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cv_error("fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0)
        child_main(r, p, child_mask, 1);
    *pid_out = pid;
    return 1;
}

static int cause_rank(int status)
{
    /* Which dead child explains a stop best: crashes and stage failures
     * first, consequences (a peer gone) last. */
    if (WIFSIGNALED(status))
        return WTERMSIG(status) == SIGKILL ? 4 : 5;
    switch (WEXITSTATUS(status)) {
    case CV_CHILD_ITEM_FAILED:
    case CV_CHILD_INIT_FAILED:
    case CV_CHILD_BAD_INPUT:
        return 5;
    case CV_CHILD_IO_ERROR:
        return 3;
    case CV_CHILD_OUTPUT_CLOSED:
        return 2;
    default:
        return 1;
    }
}

static void report_cause(cv_run *r, int p, int status)
{
    char who[256];
    proc_desc(r, p, who, sizeof who);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        uint64_t cur = r->pstats[p].current;
        char where[96];
        if (cur)
            snprintf(where, sizeof where, " while processing item %" PRIu64, cur);
        else
            where[0] = '\0';
        cv_error("%s was killed by SIG%s (%s)%s; the pipeline is stopped", who, sig_name(sig),
                 strsignal(sig), where);
    } else if (WEXITSTATUS(status) != CV_CHILD_OK && WEXITSTATUS(status) != CV_CHILD_OUTPUT_CLOSED) {
        /* The child said why; name the consequence. */
        cv_error("the pipeline is stopped: %s failed", who);
    }
}

int cv_run_pipeline(const cv_plan *plan, const conveyor_stage *const *stages)
{
    const cv_config *cfg = plan->cfg;
    cv_run run = {.plan = plan, .cfg = cfg, .stages = stages, .host = getpid(), .self = -1};
    cv_run *r = &run;
    char err[CV_ERR_MAX];
    int exit_code = CONVEYOR_EXIT_OK;
    size_t nprocs = plan->nprocs;

    if (open_io(r) < 0)
        return CONVEYOR_EXIT_CONFIG;
    (void)cv_shm_sweep();
    if (cv_segment_create(&r->seg, cfg->shm_size, cfg->shm_file, cfg->shm_readonly, err,
                          sizeof err) < 0) {
        cv_error("%s: %s", cfg->path, err);
        if (r->in_fd > STDERR_FILENO)
            close(r->in_fd);
        if (r->out_fd > STDERR_FILENO)
            close(r->out_fd);
        return CONVEYOR_EXIT_CONFIG;
    }
    if (r->seg.addr)
        setenv("CONVEYOR_SHM_NAME", r->seg.name, 1);
    r->locks = cv_locks_create(CONVEYOR_LOCKS);
    r->chstats_bytes = (plan->nchans + 1) * sizeof *r->chstats;
    r->chstats = cv_shared_alloc(r->chstats_bytes);
    r->pstats_bytes = nprocs * sizeof *r->pstats;
    r->pstats = cv_shared_alloc(r->pstats_bytes);
    r->bells_bytes = nprocs * sizeof *r->bells;
    r->bells = cv_shared_alloc(r->bells_bytes);
    r->chans = cv_calloc(plan->nchans + 1, sizeof *r->chans);
    pid_t *pids = cv_calloc(nprocs, sizeof *pids);
    int *statuses = cv_calloc(nprocs, sizeof *statuses);
    int alive = 0;

    if (!r->locks || !r->chstats || !r->pstats || !r->bells) {
        cv_error("cannot map the pipeline's shared area: %s", strerror(errno));
        exit_code = CONVEYOR_EXIT_FAILED;
        goto cleanup;
    }
    r->large = SIZE_MAX;
    if (cfg->transport == CV_TRANSPORT_RING && cfg->pool_size) {
        size_t size = cfg->pool_size;
        if (size == CV_POOL_AUTO)
            size = pool_auto_size(plan);
        r->pool = cv_pool_create(size);
        if (!r->pool) {
            cv_error("cannot map the pool of large items (%zu bytes): %s", size, strerror(errno));
            exit_code = CONVEYOR_EXIT_FAILED;
            goto cleanup;
        }
        r->large = cfg->pool_threshold;
    }
    for (size_t c = 0; c < plan->nchans; c++) {
        const cv_chan_desc *cd = &plan->chans[c];
        if (cfg->transport == CV_TRANSPORT_PIPE)
            r->chans[c] = cv_channel_create_pipe(&r->chstats[c], cfg->max_item);
        else
            r->chans[c] = cv_channel_create_ring(&r->chstats[c], cfg->max_item,
                                                 ring_capacity(plan, r->large), channel_budget(plan),
                                                 &r->bells[cd->from], &r->bells[cd->to], r->pool);
        if (!r->chans[c]) {
            cv_error("cannot create a channel: %s", strerror(errno));
            exit_code = CONVEYOR_EXIT_FAILED;
            goto cleanup;
        }
    }

    /* Signals: the host takes them synchronously (sigtimedwait); children
     * restore their own dispositions. */
    sigset_t wait_set, old_mask;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGCHLD);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGHUP);
    struct sigaction sa_chld = {.sa_handler = on_sigchld}, old_chld;
    sigemptyset(&sa_chld.sa_mask);
    sigaction(SIGCHLD, &sa_chld, &old_chld);
    sigprocmask(SIG_BLOCK, &wait_set, &old_mask);
    /* Children (and restarted ones) start from the caller's mask. */
    sigset_t child_mask = old_mask;
    sigdelset(&child_mask, SIGCHLD);
    fflush(NULL);

    for (size_t p = 0; p < nprocs; p++) {
        pid_t pid = fork();
        if (pid < 0) {
            cv_error("fork: %s", strerror(errno));
            exit_code = CONVEYOR_EXIT_FAILED;
            break;
        }
        if (pid == 0) {
            child_main(r, (int)p, &child_mask, 0);
        }
        pids[p] = pid;
        alive++;
    }
    /* The host holds no channel ends: end of stream depends on it. */
    for (size_t c = 0; c < plan->nchans; c++)
        cv_channel_keep(r->chans[c], CV_END_NONE);
    if (r->in_fd > STDERR_FILENO)
        close(r->in_fd);
    if (r->out_fd > STDERR_FILENO)
        close(r->out_fd);

    unsigned *in_row = cv_calloc(nprocs, sizeof *in_row);       /* crashes without progress */
    uint64_t *done_at_crash = cv_calloc(nprocs, sizeof *done_at_crash);
    unsigned restarts = 0;
    int stopping = exit_code != CONVEYOR_EXIT_OK;   /* killing everything */
    int draining_sig = 0;                           /* first signal seen */
    int cause = -1, cause_status = 0, cause_reported = 0;
    if (stopping)
        for (size_t p = 0; p < nprocs; p++)
            if (pids[p] > 0)
                kill(pids[p], SIGKILL);

    while (alive > 0) {
        struct timespec tick = {1, 0};
        siginfo_t si;
        int sig = sigtimedwait(&wait_set, &si, &tick);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            if (!draining_sig) {
                draining_sig = sig;
                if (cv_log_level >= 2)
                    cv_info("received SIG%s: finishing the items in flight (send it again to stop at once)",
                            sig_name(sig));
                if (pids[0] > 0)
                    kill(pids[0], SIGUSR1);
            } else if (!stopping) {
                stopping = 1;
                for (size_t p = 0; p < nprocs; p++)
                    if (pids[p] > 0)
                        kill(pids[p], SIGKILL);
            }
        }
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            size_t p;
            for (p = 0; p < nprocs && pids[p] != pid; p++)
                ;
            if (p == nprocs)
                continue;
            pids[p] = -1;
            statuses[p] = status;
            alive--;
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == CV_CHILD_OK;
            if (!ok && !stopping && WIFSIGNALED(status)) {
                int rs = restart_child(r, (int)p, status, in_row, done_at_crash, &child_mask, &pids[p]);
                if (rs > 0) {
                    alive++;
                    restarts++;
                    continue;
                }
                if (rs < 0)
                    cause_reported = 1;     /* restart_child said why it stops */
            }
            if (!ok && !(stopping && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
                if (cause < 0 || cause_rank(status) > cause_rank(cause_status)) {
                    cause = (int)p;
                    cause_status = status;
                }
            }
            if (!ok && !stopping) {
                stopping = 1;
                for (size_t q = 0; q < nprocs; q++)
                    if (pids[q] > 0)
                        kill(pids[q], SIGKILL);
            }
        }
    }

    if (cause >= 0) {
        if (WIFEXITED(cause_status) && WEXITSTATUS(cause_status) == CV_CHILD_OUTPUT_CLOSED) {
            /* The output's reader went away (| head): a quiet end. */
            exit_code = draining_sig ? 128 + draining_sig : CONVEYOR_EXIT_OK;
        } else {
            if (!cause_reported)
                report_cause(r, cause, cause_status);
            exit_code = CONVEYOR_EXIT_FAILED;
        }
    } else if (draining_sig) {
        exit_code = 128 + draining_sig;
    }
    if (exit_code == CONVEYOR_EXIT_OK && cv_log_level >= 2) {
        cv_info("done: %" PRIu64 " items read, %" PRIu64 " written", r->pstats[0].items_out,
                r->pstats[nprocs - 1].items_out);
        for (size_t p = 1; p + 1 < nprocs; p++)
            cv_info("  %s: %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " failed", plan->procs[p].label,
                    r->pstats[p].items_in, r->pstats[p].items_out, r->pstats[p].failed);
    }

    if (restarts)
        cv_warn("%u stage restart%s during the run", restarts, restarts == 1 ? "" : "s");
    free(in_row);
    free(done_at_crash);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
cleanup:
    cv_segment_unlink(&r->seg);
    cv_segment_unmap(&r->seg);
    unsetenv("CONVEYOR_SHM_NAME");
    for (size_t c = 0; c < plan->nchans; c++)
        cv_channel_destroy(r->chans[c]);
    free(r->chans);
    if (r->locks)
        cv_locks_destroy(r->locks);
    if (r->chstats)
        cv_shared_free(r->chstats, r->chstats_bytes);
    if (r->pstats)
        cv_shared_free(r->pstats, r->pstats_bytes);
    if (r->bells)
        cv_shared_free(r->bells, r->bells_bytes);
    cv_pool_destroy(r->pool);
    free(pids);
    free(statuses);
    return exit_code;
}
