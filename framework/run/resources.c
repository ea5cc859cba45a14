/* SPDX-License-Identifier: MIT */
/*
 * resources.c - what a run creates before the first fork and removes on
 * every way out: the input and output files (never one and the same), the
 * user's shared segment, the shared area (locks, counters, doorbells), the
 * pool of large items and the channels, sized for the plan (-vv says how
 * large).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "base/log.h"
#include "base/util.h"
#include "run/run.h"

/* "-" on a standard descriptor that was closed when the program started
 * (it is /dev/null now): reading or writing it would hide the mistake. */
static int std_closed(const cv_config *cfg, const char *key, int fd)
{
    if (!cv_std_was_closed(fd))
        return 0;
    cv_error("%s: %s = - but standard %s is closed; give %s = PATH", cfg->path, key,
             fd == STDIN_FILENO ? "input" : "output", key);
    return -EBADF;
}

static int open_input(cv_run *r)
{
    const cv_config *cfg = r->cfg;
    if (r->plan->plugin_sources)
        return 0;   /* the items come from source stages: no input is read */
    r->in_fd = STDIN_FILENO;
    if (strcmp(cfg->input, "-") == 0)
        return std_closed(cfg, "input", STDIN_FILENO);
    r->in_fd = open(cfg->input, O_RDONLY | O_CLOEXEC);
    if (r->in_fd < 0) {
        int e = errno;
        cv_error("%s: cannot open input '%s': %s", cfg->path, cfg->input, strerror(e));
        return -e;
    }
    return 0;
}

/* Reading and writing one file would destroy the data the user gave (the
 * output is truncated, or grows as it is read): refused, whatever the names
 * (links, standard input or output redirected to it). */
static int same_file(cv_run *r)
{
    const cv_config *cfg = r->cfg;
    struct stat in, out;
    int have_out = strcmp(cfg->output, "-") == 0 ? fstat(STDOUT_FILENO, &out) == 0
                                                  : stat(cfg->output, &out) == 0;
    if (r->in_fd < 0 || !have_out || fstat(r->in_fd, &in) != 0 || !S_ISREG(in.st_mode) || !S_ISREG(out.st_mode) ||
        in.st_dev != out.st_dev || in.st_ino != out.st_ino)
        return 0;
    cv_error("%s: the input (%s) and the output (%s) are the same file; the run would destroy it",
             cfg->path, strcmp(cfg->input, "-") == 0 ? "standard input" : cfg->input,
             strcmp(cfg->output, "-") == 0 ? "standard output" : cfg->output);
    return -EINVAL;
}

/* Opened last, once nothing else can refuse the configuration: a run that
 * stops with exit status 2 leaves the output file as it was. */
static int open_output(cv_run *r)
{
    const cv_config *cfg = r->cfg;
    r->out_fd = STDOUT_FILENO;
    if (strcmp(cfg->output, "-") == 0)
        return std_closed(cfg, "output", STDOUT_FILENO);
    r->out_fd = open(cfg->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (r->out_fd < 0) {
        int e = errno;
        cv_error("%s: cannot open output '%s': %s", cfg->path, cfg->output, strerror(e));
        return -e;
    }
    return 0;
}

/* What is left to read of a regular file (from where its descriptor is),
 * for the progress line's percentage; -1 for anything else. */
static int64_t input_size(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (at < 0 || at > st.st_size)
        at = 0;
    return (int64_t)(st.st_size - at);
}

void cv_run_close_io(cv_run *r)
{
    if (r->in_fd > STDERR_FILENO)
        close(r->in_fd);
    if (r->out_fd > STDERR_FILENO)
        close(r->out_fd);
    r->in_fd = r->out_fd = -1;
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


/* The shared area: locks, counters and doorbells, each its own mapping. */
static int create_shared_area(cv_run *r)
{
    const cv_plan *plan = r->plan;
    r->locks = cv_locks_create(CONVEYOR_LOCKS);
    r->chstats_bytes = (plan->nchans + 1) * sizeof *r->chstats;
    r->chstats = cv_shared_alloc(r->chstats_bytes);
    r->pstats_bytes = plan->nprocs * sizeof *r->pstats;
    r->pstats = cv_shared_alloc(r->pstats_bytes);
    r->bells_bytes = plan->nprocs * sizeof *r->bells;
    r->bells = cv_shared_alloc(r->bells_bytes);
    if (!r->locks || !r->chstats || !r->pstats || !r->bells) {
        cv_error("cannot map the pipeline's shared area: %s", strerror(errno));
        return -ENOMEM;
    }
    return 0;
}

static int create_pool(cv_run *r)
{
    const cv_config *cfg = r->cfg;
    r->large = SIZE_MAX;
    if (cfg->transport != CV_TRANSPORT_RING || !cfg->pool_size) {
        cv_debug("no pool of large items (%s)", cfg->transport != CV_TRANSPORT_RING
                                                     ? "transport = pipe" : "pool_size = 0");
        return 0;
    }
    size_t size = cfg->pool_size == CV_POOL_AUTO ? pool_auto_size(r->plan) : cfg->pool_size;
    r->pool = cv_pool_create(size);
    if (!r->pool) {
        /* A size the machine cannot give is a bad setting, like a segment
         * that cannot be made: exit status 2, naming the key. */
        if (cfg->pool_size_line)
            cv_error("%s:%d: pool_size: cannot map a pool of %zu bytes: %s", cfg->path,
                     cfg->pool_size_line, size, strerror(errno));
        else
            cv_error("cannot map the pool of large items (%zu bytes): %s", size, strerror(errno));
        return -ENOMEM;
    }
    r->large = cfg->pool_threshold;
    cv_debug("pool of large items: %zu bytes; items of %zu bytes or more go by reference", size,
             r->large);
    return 0;
}

static int create_channels(cv_run *r)
{
    const cv_plan *plan = r->plan;
    const cv_config *cfg = r->cfg;
    r->chans = cv_calloc(plan->nchans + 1, sizeof *r->chans);
    if (cfg->transport == CV_TRANSPORT_PIPE)
        cv_debug("%zu channel%s: pipes", plan->nchans, plan->nchans == 1 ? "" : "s");
    else
        cv_debug("%zu channel%s: rings of %zu bytes, each holding at most %zu bytes of items",
                 plan->nchans, plan->nchans == 1 ? "" : "s", ring_capacity(plan, r->large),
                 channel_budget(plan));
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
            return -errno;
        }
    }
    return 0;
}

/* The segment and everything after the input: the program that embeds a
 * pipeline has no input or output file (EMBEDDED). */
static int create_rest(cv_run *r, int embedded);

int cv_run_create(cv_run *r, const cv_plan *plan, const conveyor_stage *const *stages)
{
    const cv_config *cfg = plan->cfg;
    *r = (cv_run){.plan = plan, .cfg = cfg, .stages = stages, .host = getpid(), .self = -1,
                  .in_fd = -1, .out_fd = -1};
    if (open_input(r) < 0 || same_file(r) < 0)
        return CONVEYOR_EXIT_CONFIG;
    r->input_size = input_size(r->in_fd);
    return create_rest(r, 0);
}

int cv_run_create_embedded(cv_run *r, const cv_plan *plan, const conveyor_stage *const *stages)
{
    *r = (cv_run){.plan = plan, .cfg = plan->cfg, .stages = stages, .host = getpid(),
                  .self = -1, .in_fd = -1, .out_fd = -1, .input_size = -1};
    return create_rest(r, 1);
}

static int create_rest(cv_run *r, int embedded)
{
    char err[CV_ERR_MAX];
    const cv_config *cfg = r->cfg;
    (void)cv_shm_sweep();
    if (cv_segment_create(&r->seg, cfg->shm_size, cfg->shm_file, cfg->shm_readonly, err,
                          sizeof err) < 0) {
        cv_error("%s: %s", cfg->path, err);
        return CONVEYOR_EXIT_CONFIG;
    }
    if (r->seg.addr)
        cv_debug("shared memory segment %s: %zu bytes%s", r->seg.name, r->seg.size,
                 r->seg.readonly ? ", read-only in the stages" : "");
    else
        cv_debug("no shared memory segment (shared_memory is not set)");
    if (create_pool(r) < 0 || (!embedded && open_output(r) < 0))
        return CONVEYOR_EXIT_CONFIG;
    /* The stages' environment names this run's segment, never one the
     * caller's environment happened to name. */
    if (r->seg.addr)
        setenv("CONVEYOR_SHM_NAME", r->seg.name, 1);
    else
        unsetenv("CONVEYOR_SHM_NAME");
    if (create_shared_area(r) < 0 || create_channels(r) < 0)
        return CONVEYOR_EXIT_FAILED;
    return CONVEYOR_EXIT_OK;
}

void cv_run_destroy(cv_run *r)
{
    cv_run_close_io(r);
    cv_segment_unlink(&r->seg);
    cv_segment_unmap(&r->seg);
    unsetenv("CONVEYOR_SHM_NAME");
    if (r->chans)
        for (size_t c = 0; c < r->plan->nchans; c++)
            cv_channel_destroy(r->chans[c]);
    free(r->chans);
    r->chans = NULL;
    if (r->locks)
        cv_locks_destroy(r->locks);
    if (r->chstats)
        cv_shared_free(r->chstats, r->chstats_bytes);
    if (r->pstats)
        cv_shared_free(r->pstats, r->pstats_bytes);
    if (r->bells)
        cv_shared_free(r->bells, r->bells_bytes);
    cv_pool_destroy(r->pool);
    r->locks = NULL;
    r->chstats = NULL;
    r->pstats = NULL;
    r->bells = NULL;
    r->pool = NULL;
}
