/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - the host's sampler of live metrics and the segment it
 * publishes them in (layout and rules in metrics.h), and the reader
 * conveyor-host --top attaches with.
 *
 * Nothing here runs in a stage process: the processes update their own
 * counters in place (cv_proc_stats), and around their waits note when a
 * wait began and what for.  The host reads those ten times a second and
 * derives the rest: how long an item has been in hand (it notes when a
 * process's current item changed), busy time (the process's time alive
 * less its waits, the wait under way included), rates and utilization over
 * the last second, the busiest process, the channels' fill.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "run/metrics.h"
#include "run/run.h"

#define MAGIC "cvmetr1"
#define WINDOW_NS 1000000000ull  /* rates and utilization: over the last second */
#define BUSY_MARK 0.5            /* the busiest process is a bottleneck from here */

/* The segment's fixed prefix; the snapshot follows at offset 64. */
typedef struct seg_prefix {
    char magic[8];
    uint32_t version;
    uint32_t size;              /* of the whole object */
    uint64_t gen;               /* odd while the host writes */
    unsigned char pad[40];
} seg_prefix;

_Static_assert(sizeof(seg_prefix) == 64, "the snapshot starts on a cache line");

/* Per process, what the host remembers between samples. */
typedef struct proc_track {
    uint64_t current, current_at;   /* the item in hand last seen, and since when */
    uint64_t ended_at;              /* when it was reaped for good, or 0 */
    uint64_t win_in, win_out, win_busy, win_wall;   /* at the window's start */
} proc_track;

struct cv_metrics {
    cv_mhead *snap;             /* private: built here, then copied out */
    size_t snap_bytes;
    proc_track *track;
    uint64_t started;           /* CLOCK_MONOTONIC ns */
    uint64_t win_at, win_read, win_written;
    int have_window;
    char name[64];              /* the segment's, "" when none */
    int fd;
    seg_prefix *seg;
    size_t seg_bytes;
};

size_t cv_mhead_size(uint32_t nprocs, uint32_t nchans)
{
    return sizeof(cv_mhead) + nprocs * sizeof(cv_mproc) + nchans * sizeof(cv_mchan);
}

const char *cv_mstate_name(unsigned state)
{
    static const char *const names[] = {"running", "draining", "stopping", "ended"};
    return state < sizeof names / sizeof *names ? names[state] : "?";
}

static void copy_name(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* "p" for "dir/p.ini". */
static void pipeline_name(char *dst, size_t n, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".ini") == 0)
        len -= 4;
    snprintf(dst, n, "%.*s", (int)len, base);
}

/* --- the segment ---------------------------------------------------------- */

/* Creates "/conveyor.PID.metrics" of BYTES, readable by all, flock()ed.  A
 * leftover of a dead host that had the same pid is taken over. */
static int segment_create(cv_metrics *m, size_t bytes)
{
    snprintf(m->name, sizeof m->name, "/conveyor.%ld.metrics", (long)getpid());
    for (int tries = 0; tries < 2; tries++) {
        m->fd = shm_open(m->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (m->fd >= 0)
            break;
        if (errno != EEXIST)
            goto fail;
        int old = shm_open(m->name, O_RDONLY | O_CLOEXEC, 0);
        int dead = old >= 0 && flock(old, LOCK_EX | LOCK_NB) == 0;
        if (old >= 0)
            close(old);
        if (!dead)
            goto fail;
        shm_unlink(m->name);
    }
    if (m->fd < 0)
        goto fail;
    flock(m->fd, LOCK_EX | LOCK_NB);
    (void)fchmod(m->fd, 0644);      /* whatever the umask: --top of another user reads it */
    if (ftruncate(m->fd, (off_t)bytes) < 0)
        goto fail_unlink;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (p == MAP_FAILED)
        goto fail_unlink;
    m->seg = p;
    m->seg_bytes = bytes;
    memcpy(m->seg->magic, MAGIC, sizeof m->seg->magic);
    m->seg->version = CV_METRICS_VERSION;
    m->seg->size = (uint32_t)bytes;
    return 0;
fail_unlink:
    shm_unlink(m->name);
fail:
    cv_debug("no live metrics for --top (%s): %s", m->name, strerror(errno));
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    m->name[0] = '\0';
    return -1;
}

/* Copies the snapshot out between two steps of the generation. */
static void segment_publish(cv_metrics *m)
{
    if (!m->seg)
        return;
    uint64_t gen = m->seg->gen;
    __atomic_store_n(&m->seg->gen, gen + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(m->seg + 1, m->snap, m->snap_bytes);
    __atomic_store_n(&m->seg->gen, gen + 2, __ATOMIC_RELEASE);
}

/* --- the sampler ---------------------------------------------------------- */

static void describe(cv_metrics *m, const cv_run *r)
{
    const cv_plan *pl = r->plan;
    cv_mhead *h = m->snap;
    pipeline_name(h->pipeline, sizeof h->pipeline, r->cfg->path);
    copy_name(h->config, sizeof h->config, r->cfg->path);
    copy_name(h->transport, sizeof h->transport,
              r->cfg->transport == CV_TRANSPORT_PIPE ? "pipe" : "ring");
    h->host_pid = getpid();
    h->nprocs = (uint32_t)pl->nprocs;
    h->nchans = (uint32_t)pl->nchans;
    h->input_size = r->input_size;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h->started_unix_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    cv_mproc *mp = cv_mhead_procs(h);
    for (size_t p = 0; p < pl->nprocs; p++) {
        const cv_proc *pr = &pl->procs[p];
        copy_name(mp[p].label, sizeof mp[p].label, pr->label);
        copy_name(mp[p].stage, sizeof mp[p].stage,
                  pr->stage >= 0 ? r->cfg->stages[pr->stage].name : "");
        /* A source stage is a stage for the viewer: a row of its own and
         * its name in the metrics; "source" is the input reader. */
        mp[p].kind = pr->stage >= 0 ? CV_PROC_STAGE : pr->kind;
        mp[p].replica = pr->replica;
    }
    cv_mchan *mc = cv_mhead_chans(h);
    for (size_t c = 0; c < pl->nchans; c++) {
        mc[c].from = pl->chans[c].from;
        mc[c].to = pl->chans[c].to;
    }
}

cv_metrics *cv_metrics_start(const cv_run *r, int publish)
{
    cv_metrics *m = cv_calloc(1, sizeof *m);
    m->fd = -1;
    m->snap_bytes = cv_mhead_size((uint32_t)r->plan->nprocs, (uint32_t)r->plan->nchans);
    m->snap = cv_calloc(1, m->snap_bytes);
    m->track = cv_calloc(r->plan->nprocs + 1, sizeof *m->track);
    m->started = cv_run_now_ns();
    m->win_at = m->started;
    describe(m, r);
    if (publish)
        (void)segment_create(m, sizeof(seg_prefix) + m->snap_bytes);
    return m;
}

void cv_metrics_proc_ended(cv_metrics *m, int p)
{
    if (m)
        m->track[p].ended_at = cv_run_now_ns();
}

/* Busy time of process P at NOW: its time alive less its waits, the one
 * under way included. */
static void proc_times(cv_metrics *m, const cv_proc_stats *ps, int p, uint64_t now, cv_mproc *mp)
{
    uint64_t end = m->track[p].ended_at ? m->track[p].ended_at : now;
    uint64_t wall = end > m->started ? end - m->started : 0;
    uint64_t in = ps->wait_in_ns, out = ps->wait_out_ns, since = ps->wait_since;
    if (since && since < end && !m->track[p].ended_at) {
        if (ps->wait_kind == CV_WAIT_OUTPUT)
            out += end - since;
        else
            in += end - since;
    }
    mp->wall_ns = wall;
    mp->wait_in_ns = in;
    mp->wait_out_ns = out;
    mp->busy_ns = in + out < wall ? wall - in - out : 0;
}

static void sample_proc(cv_metrics *m, const cv_run *r, int p, pid_t pid, unsigned restarts,
                        uint64_t now)
{
    const cv_proc_stats *ps = &r->pstats[p];
    cv_mproc *mp = &cv_mhead_procs(m->snap)[p];
    proc_track *t = &m->track[p];
    mp->pid = pid > 0 ? pid : 0;
    mp->state = pid > 0 ? CV_MPROC_RUNNING : t->ended_at ? CV_MPROC_ENDED : CV_MPROC_WAITING;
    mp->items_in = cv_stat_read(ps->items_in);
    mp->items_out = cv_stat_read(ps->items_out);
    mp->bytes_in = cv_stat_read(ps->bytes_in);
    mp->bytes_out = cv_stat_read(ps->bytes_out);
    mp->failed = cv_stat_read(ps->failed);
    mp->restarts = restarts;
    uint64_t cur = pid > 0 ? ps->current : 0;
    if (cur != t->current) {
        t->current = cur;
        t->current_at = now;
    }
    mp->current = cur;
    mp->current_ns = cur ? now - t->current_at : 0;
    proc_times(m, ps, p, now, mp);
}

/* Rates and utilization over the window that ends now; before the first
 * window has passed, since the start. */
static void rates(cv_metrics *m, uint64_t now)
{
    cv_mhead *h = m->snap;
    cv_mproc *mp = cv_mhead_procs(h);
    int roll = now - m->win_at >= WINDOW_NS;
    if (!roll && m->have_window)
        return;
    double secs = (double)(now - m->win_at) / 1e9;
    if (secs <= 0)
        return;
    h->rate_read = (double)(h->items_read - m->win_read) / secs;
    h->rate_written = (double)(h->items_written - m->win_written) / secs;
    for (uint32_t p = 0; p < h->nprocs; p++) {
        proc_track *t = &m->track[p];
        mp[p].rate_in = (double)(mp[p].items_in - t->win_in) / secs;
        mp[p].rate_out = (double)(mp[p].items_out - t->win_out) / secs;
        uint64_t dw = mp[p].wall_ns - t->win_wall;
        mp[p].util = dw && mp[p].busy_ns >= t->win_busy
                         ? (double)(mp[p].busy_ns - t->win_busy) / (double)dw : 0.0;
        if (mp[p].util > 1.0)
            mp[p].util = 1.0;
        if (roll) {
            t->win_in = mp[p].items_in;
            t->win_out = mp[p].items_out;
            t->win_busy = mp[p].busy_ns;
            t->win_wall = mp[p].wall_ns;
        }
    }
    if (roll) {
        m->win_at = now;
        m->win_read = h->items_read;
        m->win_written = h->items_written;
        m->have_window = 1;
    }
}

/* The busiest running process, when it is busy more than half the time:
 * the one the others wait for. */
/* How much work waits in front of process P: its input channels' fill
 * (rings), or the items queued (pipes, which cannot say their bytes). */
static double pressure(const cv_mproc *p)
{
    return p->fill >= 0 ? p->fill : (double)p->queued;
}

/* The bottleneck: of the processes busy at least BUSY_MARK of the time,
 * the one with the most work waiting in front of it (the slow stage has a
 * full input and the stages after it idle; a source busy producing, which
 * has no input, is the bottleneck only when nothing else is busy), then
 * the busiest. */
static void mark_bottleneck(cv_mhead *h)
{
    cv_mproc *mp = cv_mhead_procs(h);
    int best = -1;
    for (uint32_t p = 0; p < h->nprocs; p++) {
        mp[p].bottleneck = 0;
        if (mp[p].state == CV_MPROC_ENDED)    /* nothing now, whatever the last window said */
            mp[p].util = mp[p].rate_in = mp[p].rate_out = 0.0;
        if (mp[p].state != CV_MPROC_RUNNING || mp[p].util < BUSY_MARK)
            continue;
        if (best < 0 || pressure(&mp[p]) > pressure(&mp[best]) ||
            (pressure(&mp[p]) == pressure(&mp[best]) && mp[p].util > mp[best].util))
            best = (int)p;
    }
    if (best >= 0)
        mp[best].bottleneck = 1;
}

static void sample_chans(cv_metrics *m, const cv_run *r)
{
    cv_mhead *h = m->snap;
    cv_mchan *mc = cv_mhead_chans(h);
    cv_mproc *mp = cv_mhead_procs(h);
    uint64_t *fill = cv_calloc(h->nprocs + 1, sizeof *fill), *cap = cv_calloc(h->nprocs + 1,
                                                                              sizeof *cap);
    for (uint32_t p = 0; p < h->nprocs; p++)
        mp[p].queued = 0;
    for (uint32_t c = 0; c < h->nchans; c++) {
        mc[c].sent = r->chstats[c].sent;
        mc[c].received = r->chstats[c].received;
        uint64_t bytes, capacity;
        if (r->chans && r->chans[c] && cv_channel_fill(r->chans[c], &bytes, &capacity) == 0) {
            mc[c].fill_bytes = (int64_t)bytes;
            mc[c].capacity_bytes = (int64_t)capacity;
            fill[mc[c].to] += bytes;
            cap[mc[c].to] += capacity;
        } else {
            mc[c].fill_bytes = mc[c].capacity_bytes = -1;
        }
        if (mc[c].sent > mc[c].received)
            mp[mc[c].to].queued += mc[c].sent - mc[c].received;
    }
    for (uint32_t p = 0; p < h->nprocs; p++)
        mp[p].fill = cap[p] ? (double)fill[p] / (double)cap[p] : -1.0;
    free(fill);
    free(cap);
}

void cv_metrics_sample(cv_metrics *m, const cv_run *r, const pid_t *pids,
                       const unsigned *restarts, unsigned state, int status)
{
    if (!m)
        return;
    uint64_t now = cv_run_now_ns();
    cv_mhead *h = m->snap;
    for (uint32_t p = 0; p < h->nprocs; p++)
        sample_proc(m, r, (int)p, pids ? pids[p] : 0, restarts ? restarts[p] : 0, now);
    sample_chans(m, r);
    const cv_mproc *mp = cv_mhead_procs(h);
    h->state = state;
    h->status = status;
    h->wall_ns = now - m->started;
    h->items_read = h->bytes_read = 0;
    for (size_t p = 0; p < r->plan->nsources; p++) {
        h->items_read += mp[p].items_out;
        h->bytes_read += mp[p].bytes_in;
    }
    h->items_written = mp[h->nprocs - 1].items_out;
    h->bytes_written = mp[h->nprocs - 1].bytes_out;
    uint64_t flight = 0;
    for (uint32_t p = 0; p < h->nprocs; p++)
        flight += mp[p].queued + (mp[p].current ? 1 : 0);
    h->in_flight = flight;
    rates(m, now);
    mark_bottleneck(h);
    h->samples++;
    segment_publish(m);
}

const cv_mhead *cv_metrics_head(const cv_metrics *m)
{
    return m ? m->snap : NULL;
}

void cv_metrics_stop(cv_metrics *m)
{
    if (!m)
        return;
    if (m->name[0])
        shm_unlink(m->name);
    if (m->seg)
        munmap(m->seg, m->seg_bytes);
    if (m->fd >= 0)
        close(m->fd);
    free(m->snap);
    free(m->track);
    free(m);
}

/* --- the reader --------------------------------------------------------- */

struct cv_mreader {
    const seg_prefix *seg;
    size_t seg_bytes;
    cv_mhead *copy;
};

int cv_mreader_open(pid_t pid, cv_mreader **out)
{
    char name[64];
    struct stat st;
    *out = NULL;
    snprintf(name, sizeof name, "/conveyor.%ld.metrics", (long)pid);
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(seg_prefix) + sizeof(cv_mhead)) {
        close(fd);
        return -ENOENT;     /* not yet sized, or not ours: nothing to show */
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -errno;
    const seg_prefix *seg = p;
    if (memcmp(seg->magic, MAGIC, sizeof seg->magic) != 0 ||
        seg->version != CV_METRICS_VERSION || seg->size != (uint32_t)st.st_size) {
        munmap(p, (size_t)st.st_size);
        return -EPROTO;
    }
    cv_mreader *m = cv_calloc(1, sizeof *m);
    m->seg = seg;
    m->seg_bytes = (size_t)st.st_size;
    m->copy = cv_calloc(1, m->seg_bytes - sizeof *seg);
    *out = m;
    return 0;
}

const cv_mhead *cv_mreader_read(cv_mreader *m)
{
    size_t body = m->seg_bytes - sizeof *m->seg;
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t g1 = __atomic_load_n(&m->seg->gen, __ATOMIC_ACQUIRE);
        if (g1 && !(g1 & 1)) {
            memcpy(m->copy, m->seg + 1, body);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&m->seg->gen, __ATOMIC_RELAXED) == g1 &&
                cv_mhead_size(m->copy->nprocs, m->copy->nchans) == body)
                return m->copy;
        }
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    errno = EAGAIN;
    return NULL;
}

void cv_mreader_close(cv_mreader *m)
{
    if (!m)
        return;
    munmap((void *)m->seg, m->seg_bytes);
    free(m->copy);
    free(m);
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int cv_metrics_list(pid_t *pids, size_t max)
{
    DIR *d = opendir(cv_shm_dir);
    if (!d)
        return -errno;
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d))) {
        long pid;
        char tail[16];
        if (sscanf(de->d_name, "conveyor.%ld.%15s", &pid, tail) != 2 ||
            strcmp(tail, "metrics") != 0 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            continue;       /* a leftover of a host that died */
        if (n < max)
            pids[n] = (pid_t)pid;
        n++;
    }
    closedir(d);
    qsort(pids, n < max ? n : max, sizeof *pids, cmp_pid);
    return (int)n;
}
