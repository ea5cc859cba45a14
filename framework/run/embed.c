/* SPDX-License-Identifier: MIT */
/*
 * embed.c - a pipeline inside a program (see embed.h): the program's ends
 * (push, pull, flush, finish, stop), the run's host process it forks, and
 * what keeps a program that exits, is killed or forks from leaving
 * anything behind.
 *
 * Who waits where.  Each end of the program sleeps on its own doorbell
 * (the reader's for pushes, the writer's for pulls), so one thread may
 * push while another pulls.  Calls that need both ends (flush, finish,
 * batch) sleep on the run's descriptor instead: an epoll set of an eventfd
 * both doorbells write to while armed, the host's status pipe and, with
 * pipes, the output channels.  A wait never lasts longer than 200 ms
 * without looking whether the host is still there.
 *
 * Ends of the run.  The host writes its exit status to a pipe just before
 * it exits; when it stops the run it first raises a flag in shared memory
 * and rings both doorbells, so a push or pull that waits returns -EPIPE at
 * once.  The program holds the write end of a "life" pipe whose read end
 * in the host signals SIGTERM (F_SETSIG) when the last writer is gone: a
 * program that exits or is killed without finishing makes its host stop
 * everything and remove the run's segment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* F_SETSIG */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "base/log.h"
#include "base/util.h"
#include "run/embed.h"
#include "run/run.h"

#define ERRBUF_MAX 4096
#define SLICE_MS 200

/* Shared by the program, the host and the stages. */
typedef struct embed_shared {
    uint32_t stopping;          /* the host began stopping the run */
    volatile unsigned errlen;
    char errbuf[ERRBUF_MAX];    /* the run's error lines (cv_log_capture) */
} embed_shared;

struct cv_embed {
    cv_run run;                 /* the program's copy; its push side is self = src */
    const cv_plan *plan;
    int src, snk;               /* the processes the program plays */
    embed_shared *sh;
    pid_t host, owner;
    int status_fd, life_fd, notify_fd, epoll_fd;
    int pipes;                  /* transport = pipe: SIGPIPE is possible */
    int monotonic;              /* outputs come in input order */
    int resources;              /* the program's copy of the run is mapped */
    struct cv_embed *next;      /* the program's runs (atexit, fork) */

    /* push side */
    cv_route *route;
    uint64_t pushed;
    uint64_t push_seq;          /* the item being pushed */
    int push_ms;
    struct timespec push_until;
    int push_until_set;
    uint64_t *mark_on;          /* per output: the last marker sent on it */
    int input_closed;           /* finish closed the program's outputs */

    /* pull side */
    cv_channel **ins;
    size_t nins;
    cv_inbox inbox;
    uint64_t marked;            /* the highest marker that came through */
    uint64_t pulled;
    int pull_ms;
    struct timespec pull_until;
    int pull_until_set;
    int armed;                  /* the writer's bell notifies the descriptor */
    int outputs_ended;          /* every output channel ended */
    /* outputs taken in by flush, finish and batch, until pulled: records
     * of seq (8 bytes), len (4) and the bytes */
    unsigned char *q;
    size_t qhead, qtail, qcap;

    /* the end */
    pthread_mutex_t end_lock;   /* a pusher and a puller may both see it */
    int ended;                  /* the host is reaped: status is final (atomic) */
    int stopped;                /* ended by cv_embed_stop */
    int status;
    char *error;
};

static int has_ended(const cv_embed *e)
{
    return __atomic_load_n(&e->ended, __ATOMIC_ACQUIRE);
}

/* --- the program's runs: exits and forks --------------------------------- */

static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;
static cv_embed *runs;
static pthread_once_t runs_once = PTHREAD_ONCE_INIT;

static void runs_prepare(void)
{
    pthread_mutex_lock(&runs_lock);
}

static void runs_parent(void)
{
    pthread_mutex_unlock(&runs_lock);
}

/* In a child of fork(): the parent's runs are not its own.  It drops their
 * descriptors, or the life pipe would keep a host running after the
 * program is gone, and with pipes the stages would never see the end. */
static void runs_child(void)
{
    for (cv_embed *e = runs; e; e = e->next) {
        if (e->owner == getpid() || !e->resources)
            continue;
        close(e->life_fd);
        close(e->status_fd);
        close(e->epoll_fd);
        close(e->notify_fd);
        e->life_fd = e->status_fd = e->epoll_fd = e->notify_fd = -1;
        if (e->resources)
            for (size_t c = 0; c < e->plan->nchans; c++)
                cv_channel_keep(e->run.chans[c], CV_END_NONE);
    }
    pthread_mutex_init(&runs_lock, NULL);
}

/* A program that exits without finishing stops its runs (their hosts
 * would do it anyway when the life pipe closes, but not before exit
 * returned). */
static void runs_at_exit(void)
{
    pthread_mutex_lock(&runs_lock);
    cv_embed *list = runs;
    pthread_mutex_unlock(&runs_lock);
    for (cv_embed *e = list; e; e = e->next)
        if (e->owner == getpid() && !has_ended(e))
            cv_embed_stop(e);
}

static void runs_init(void)
{
    pthread_atfork(runs_prepare, runs_parent, runs_child);
    atexit(runs_at_exit);
}

static void runs_add(cv_embed *e)
{
    pthread_mutex_lock(&runs_lock);
    e->next = runs;
    runs = e;
    pthread_mutex_unlock(&runs_lock);
}

static void runs_remove(cv_embed *e)
{
    pthread_mutex_lock(&runs_lock);
    for (cv_embed **p = &runs; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    pthread_mutex_unlock(&runs_lock);
}

/* --- time ----------------------------------------------------------------- */

static struct timespec deadline_after(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Milliseconds left until T (rounded up, 0 when past). */
static int ms_left(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (long long)(t->tv_sec - now.tv_sec) * 1000000000LL + (t->tv_nsec - now.tv_nsec);
    if (ns <= 0)
        return 0;
    long long ms = (ns + 999999) / 1000000;
    return ms > 1000000000LL ? 1000000000 : (int)ms;
}

/* How long a wait under a call's TIMEOUT may last now: -1 none left, else
 * at most a slice.  The deadline is set at the first wait of the call. */
static int wait_budget(int timeout, struct timespec *until, int *until_set)
{
    if (timeout == 0)
        return -1;
    if (timeout < 0)
        return SLICE_MS;
    if (!*until_set) {
        *until = deadline_after(timeout);
        *until_set = 1;
    }
    int left = ms_left(until);
    if (left == 0)
        return -1;
    return left < SLICE_MS ? left : SLICE_MS;
}

/* --- the host ------------------------------------------------------------- */

/* 1 when the host stopped the run or is gone.  LOOK: also ask the kernel
 * (after a wait that was not rung: a host killed by SIGKILL raised no
 * flag). */
static int host_failed(cv_embed *e, int look)
{
    if (has_ended(e) || __atomic_load_n(&e->sh->stopping, __ATOMIC_ACQUIRE))
        return 1;
    if (!look)
        return 0;
    struct pollfd pfd = {.fd = e->status_fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* The run's error lines, without the last newline. */
static void take_error(cv_embed *e)
{
    size_t n = e->sh->errlen < ERRBUF_MAX ? e->sh->errlen : ERRBUF_MAX;
    while (n && e->sh->errbuf[n - 1] == '\n')
        n--;
    if (n && !e->error) {
        e->error = cv_calloc(n + 1, 1);
        memcpy(e->error, e->sh->errbuf, n);
    }
}

/* Unmaps and closes the program's copy of everything the run shares (the
 * host removed the segment's name; removing it again is harmless and
 * covers a host that was killed).  Only where no push or pull may run:
 * finish, stop, free. */
static void release(cv_embed *e)
{
    if (!e->resources)
        return;
    runs_remove(e);
    take_error(e);
    cv_inbox_free(&e->inbox);
    cv_run_destroy(&e->run);
    cv_shared_free(e->sh, sizeof *e->sh);
    e->sh = NULL;
    e->resources = 0;
    close(e->status_fd);
    close(e->life_fd);
    e->status_fd = e->life_fd = -1;
}

static int read_status(int fd, int *status)
{
    size_t got = 0;
    while (got < sizeof *status) {
        ssize_t n = read(fd, (char *)status + got, sizeof *status - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* Waits for the host's end and reaps it: the run's status and error.
 * A pusher and a puller may both come here; the mappings stay until
 * release (the other may still be inside a channel). */
static void collect(cv_embed *e)
{
    pthread_mutex_lock(&e->end_lock);
    if (e->ended) {
        pthread_mutex_unlock(&e->end_lock);
        return;
    }
    int status = 0, ws = 0;
    int have = read_status(e->status_fd, &status) == 0;
    pid_t w;
    while ((w = waitpid(e->host, &ws, 0)) < 0 && errno == EINTR)
        ;
    if (!have) {
        char how[96];
        if (w == e->host && WIFSIGNALED(ws))
            snprintf(how, sizeof how, "was killed by SIG%s", cv_sig_name(WTERMSIG(ws)));
        else if (w == e->host)
            snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(ws));
        else
            snprintf(how, sizeof how, "ended");
        cv_error("the pipeline's host process (pid %ld) %s; the pipeline is stopped",
                 (long)e->host, how);
        if (!e->error)
            e->error = cv_asprintf("error: the pipeline's host process (pid %ld) %s; the "
                                   "pipeline is stopped", (long)e->host, how);
        status = w == e->host && WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : CONVEYOR_EXIT_FAILED;
    }
    e->status = status;
    take_error(e);
    __atomic_store_n(&e->ended, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&e->end_lock);
}

/* The run failed (or was stopped): its end is collected, -EPIPE. */
static int failed(cv_embed *e)
{
    collect(e);
    return -EPIPE;
}

/* In the host: the run begins to stop; whoever waits in the program
 * returns. */
static void host_on_stop(void *arg)
{
    cv_embed *e = arg;
    __atomic_store_n(&e->sh->stopping, 1, __ATOMIC_RELEASE);
    cv_bell_wake(&e->run.bells[e->src]);
    cv_bell_wake(&e->run.bells[e->snk]);
    uint64_t one = 1;
    ssize_t w = write(e->notify_fd, &one, sizeof one);
    (void)w;
}

/* The run's host: its own signals and process group (a terminal's Ctrl-C
 * is for the program, which decides), SIGTERM when the program's life
 * pipe closes, then conveyor-host's supervisor. */
_Noreturn static void host_main(cv_embed *e, int status_w, int life_r)
{
    /* It was forked with every signal blocked (no handler of the program
     * may run here); a terminal's signals that came before setpgid are
     * kept for the supervisor, which stops the run on them. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGHUP);
    sigaddset(&stops, SIGQUIT);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigprocmask(SIG_SETMASK, &stops, NULL);
    setpgid(0, 0);
    close(e->status_fd);
    close(e->life_fd);
    fcntl(life_r, F_SETOWN, getpid());
    fcntl(life_r, F_SETSIG, SIGTERM);
    fcntl(life_r, F_SETFL, O_ASYNC | O_NONBLOCK);
    struct pollfd pfd = {.fd = life_r, .events = POLLIN};
    if (getppid() != e->owner || poll(&pfd, 1, 0) > 0)
        raise(SIGTERM);     /* the program is gone already: nothing starts */
    cv_log_capture(e->sh->errbuf, sizeof e->sh->errbuf, &e->sh->errlen);
    cv_embed_hooks hooks = {.on_stop = host_on_stop, .arg = e};
    int status = cv_run_supervise_embedded(&e->run, &hooks);
    ssize_t w = write(status_w, &status, sizeof status);
    (void)w;
    _exit(status);
}

/* --- waiting ---------------------------------------------------------------- */

/* One wait of at most MS on one end's doorbell (or descriptors), then a
 * look at the host.  0 (look again), or -EPIPE. */
static int wait_end(cv_embed *e, cv_channel **reads, size_t nreads, cv_channel **writes,
                    size_t nwrites, int ms)
{
    struct timespec until = deadline_after(ms);
    int rc = cv_channels_wait(reads, nreads, writes, nwrites, e->pipes ? e->status_fd : -1, ms,
                              NULL);
    if (rc < 0 && rc != -EINTR)
        return rc;
    return host_failed(e, ms_left(&until) == 0) ? -EPIPE : 0;
}

/* As wait_end, for both ends at once, on the run's descriptor. */
static int wait_both(cv_embed *e, int ms)
{
    struct timespec until = deadline_after(ms);
    cv_run *r = &e->run;
    int rc = cv_channels_wait_fd(e->ins, e->outputs_ended ? 0 : e->nins,
                                 e->input_closed ? NULL : r->outs,
                                 e->input_closed ? 0 : r->nouts, e->epoll_fd, ms);
    uint64_t n;
    ssize_t got = read(e->notify_fd, &n, sizeof n);     /* consumed: the next wait sleeps */
    (void)got;
    if (rc < 0 && rc != -EINTR)
        return rc;
    return host_failed(e, ms_left(&until) == 0) ? -EPIPE : 0;
}

/* cv_run_wait of the push side (a send found its channel full): within
 * the push's time, except once part of the item went out (a replicate
 * sends it on every branch), when it waits as long as it takes. */
static int push_wait(cv_run *r, cv_channel **reads, size_t nreads, int extra_fd)
{
    (void)reads, (void)nreads, (void)extra_fd;
    cv_embed *e = r->wait_arg;
    r->pstats[e->src].items_out = e->pushed;
    if (host_failed(e, 0))
        return -EPIPE;
    /* Committed: a replicate sent it on a branch already, or a large item
     * went out in part (the ring must get the rest of that record next). */
    int committed = 0;
    for (size_t i = 0; i < r->nouts; i++)
        if (r->view[r->out_ids[i]] >= e->push_seq || cv_channel_midway(r->outs[i]))
            committed = 1;
    int ms = wait_budget(committed ? -1 : e->push_ms, &e->push_until, &e->push_until_set);
    if (ms < 0)
        return -ETIMEDOUT;
    return wait_end(e, NULL, 0, r->outs, r->nouts, ms);
}

/* The inbox's wait on the pull side: within the pull's time. */
static int pull_wait(void *arg, cv_channel **reads, size_t nreads)
{
    cv_embed *e = arg;
    if (host_failed(e, 0))
        return -EPIPE;
    int ms = wait_budget(e->pull_ms, &e->pull_until, &e->pull_until_set);
    if (ms < 0)
        return -ETIMEDOUT;
    return wait_end(e, reads, nreads, NULL, 0, ms);
}

static int pull_mark(void *arg, uint64_t mark)
{
    cv_embed *e = arg;
    if (mark > e->marked)
        e->marked = mark;
    return 0;
}

/* --- SIGPIPE ------------------------------------------------------------- */

/* With pipes, a write to a stage that died raises SIGPIPE, whose default
 * would kill the program: it is blocked in this thread while the program's
 * end writes, and one it raised is taken before the mask is restored.  The
 * program's own handler and mask stay as they were. */
typedef struct pipe_guard {
    int on;
    sigset_t old;
} pipe_guard;

static void guard_sigpipe(cv_embed *e, pipe_guard *g)
{
    g->on = 0;
    if (!e->pipes)
        return;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
    g->on = !sigismember(&g->old, SIGPIPE);
}

static void unguard_sigpipe(pipe_guard *g)
{
    if (!g->on)
        return;
    sigset_t s, pending;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&s, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* --- the queue of outputs taken in ----------------------------------------- */

static void queue_put(cv_embed *e, uint64_t seq, const void *data, size_t len)
{
    size_t need = 12 + len;
    if (e->qcap - e->qtail < need) {
        if (e->qhead) {
            memmove(e->q, e->q + e->qhead, e->qtail - e->qhead);
            e->qtail -= e->qhead;
            e->qhead = 0;
        }
        if (e->qcap - e->qtail < need) {
            size_t cap = e->qcap ? e->qcap : 65536;
            while (cap - e->qtail < need)
                cap *= 2;
            e->q = cv_realloc(e->q, cap);
            e->qcap = cap;
        }
    }
    uint32_t l32 = (uint32_t)len;
    memcpy(e->q + e->qtail, &seq, 8);
    memcpy(e->q + e->qtail + 8, &l32, 4);
    if (len)
        memcpy(e->q + e->qtail + 12, data, len);
    e->qtail += need;
}

static int queue_take(cv_embed *e, const void **item, size_t *len, uint64_t *seq)
{
    if (e->qhead == e->qtail)
        return 0;
    uint32_t l32;
    memcpy(seq, e->q + e->qhead, 8);
    memcpy(&l32, e->q + e->qhead + 8, 4);
    *item = e->q + e->qhead + 12;
    *len = l32;
    e->qhead += 12 + l32;
    if (e->qhead == e->qtail)
        e->qhead = e->qtail = 0;    /* the item stays where it is until the next put */
    return 1;
}

/* --- pulling --------------------------------------------------------------- */

/* The next output from the channels, waiting at most MS (the inbox's
 * wait): 0, CV_EMBED_END, -EAGAIN or -EPIPE. */
static int take_output(cv_embed *e, const void **item, size_t *len, uint64_t *seq, int ms)
{
    if (e->outputs_ended)
        return CV_EMBED_END;
    e->pull_ms = ms;
    e->pull_until_set = 0;
    cv_record rec;
    int rc = cv_inbox_next(&e->inbox, &rec);
    if (rc == 1) {
        e->pulled++;
        *item = rec.data ? rec.data : "";
        *len = rec.len;
        *seq = rec.seq;
        return 0;
    }
    if (rc == 0) {
        e->outputs_ended = 1;
        e->run.pstats[e->snk].items_out = e->pulled;
        /* Before the program closed its outputs, an end is a stage that
         * died (a pipe closes with its process). */
        return e->input_closed ? CV_EMBED_END : failed(e);
    }
    if (rc == -ETIMEDOUT)
        return -EAGAIN;
    if (rc == -EPIPE || host_failed(e, 1))
        return failed(e);
    cv_error("reading the pipeline's output: %s", strerror(-rc));
    return rc;
}

/* Takes every output there is now into the queue: 0 or -EPIPE. */
static int take_in(cv_embed *e)
{
    const void *item;
    size_t len;
    uint64_t seq;
    int rc;
    while ((rc = take_output(e, &item, &len, &seq, 0)) == 0)
        queue_put(e, seq, item, len);
    return rc == -EPIPE ? rc : 0;
}

int cv_embed_pull(cv_embed *e, const void **item, size_t *len, uint64_t *seq, int timeout_ms)
{
    if (queue_take(e, item, len, seq))
        return 0;
    if (has_ended(e))
        return e->stopped || (e->outputs_ended && e->status == 0) ? CV_EMBED_END : -EPIPE;
    if (e->armed) {
        cv_channels_disarm(e->ins, e->nins);
        e->armed = 0;
    }
    int rc = take_output(e, item, len, seq, timeout_ms);
    if (rc == -EAGAIN && timeout_ms == 0 && !e->outputs_ended) {
        /* The program may wait on the descriptor now: it must become
         * readable when an output comes. */
        uint64_t n;
        ssize_t got = read(e->notify_fd, &n, sizeof n);
        (void)got;
        if (cv_channels_arm(e->ins, e->nins)) {
            uint64_t one = 1;
            got = write(e->notify_fd, &one, sizeof one);
        } else {
            e->armed = 1;
        }
    }
    return rc;
}

/* --- pushing --------------------------------------------------------------- */

/* Pipes: the program's end buffers what it sends, and nothing would write
 * a buffered rest once the program stops pushing.  So a push waits (up to
 * its time) until every output pipe can take a page, which a record of up
 * to PIPE_BUF bytes then fills at once or not at all, and after the send
 * until nothing is left in the buffer (a larger record may go in part:
 * then without a limit, as it is sent).  0, -EAGAIN or -EPIPE. */
static int pipe_room(cv_embed *e, int timeout_ms)
{
    cv_run *r = &e->run;
    struct pollfd fds[64];
    size_t n = r->nouts < 63 ? r->nouts : 63;
    struct timespec until;
    int until_set = 0;
    for (;;) {
        for (size_t i = 0; i < n; i++)
            fds[i] = (struct pollfd){.fd = cv_channel_write_fd(r->outs[i]), .events = POLLOUT};
        fds[n] = (struct pollfd){.fd = e->status_fd, .events = POLLIN};
        int ready = 0, rc = poll(fds, n + 1, 0);
        for (size_t i = 0; rc > 0 && i < n; i++)
            ready += (fds[i].revents & (POLLOUT | POLLERR)) != 0;
        if (rc > 0 && fds[n].revents)
            return -EPIPE;
        if (ready == (int)n)
            return 0;
        int ms = wait_budget(timeout_ms, &until, &until_set);
        if (ms < 0)
            return -EAGAIN;
        if (poll(fds, n + 1, ms) < 0 && errno != EINTR)
            return -errno;
    }
}

static int pipe_drain(cv_embed *e)
{
    cv_run *r = &e->run;
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < r->nouts; i++) {
            cv_channel_publish(r->outs[i]);
            pending |= cv_channel_pending(r->outs[i]);
        }
        if (!pending)
            return 0;
        int rc = wait_end(e, NULL, 0, r->outs, r->nouts, SLICE_MS);
        if (rc < 0)
            return rc;
    }
}

/* Publishes what the program sent (and, for order = source merges
 * downstream, how far it got).  EACH: a single push, which rings each
 * output's consumer once per sleep, not once per push
 * (cv_channel_publish_each); a batch publishes once per round. */
static void publish_pushed(cv_embed *e, int each)
{
    cv_run *r = &e->run;
    cv_run_sync_watermarks(r);
    for (size_t i = 0; i < r->nouts; i++) {
        if (each)
            cv_channel_publish_each(r->outs[i]);
        else
            cv_channel_publish(r->outs[i]);
    }
}

/* A push; PUBLISH: make it visible at once (a batch publishes once for
 * many pushes, before it pulls or waits). */
static int push_one(cv_embed *e, const void *item, size_t len, int timeout_ms, int publish);

int cv_embed_push(cv_embed *e, const void *item, size_t len, int timeout_ms)
{
    return push_one(e, item, len, timeout_ms, 1);
}

static int push_one(cv_embed *e, const void *item, size_t len, int timeout_ms, int publish)
{
    cv_run *r = &e->run;
    if (e->input_closed)
        return -EINVAL;
    if (host_failed(e, 0))
        return failed(e);
    if (len > r->cfg->max_item)
        return -EMSGSIZE;
    if (len && !item)
        return -EINVAL;
    uint64_t seq = e->pushed + 1;
    e->push_seq = seq;
    e->push_ms = timeout_ms;
    e->push_until_set = 0;
    pipe_guard g;
    guard_sigpipe(e, &g);
    int rc = e->pipes ? pipe_room(e, timeout_ms) : 0;
    if (rc == 0)
        rc = cv_run_emit_direct(r, seq, item, len)
                 ? 0
                 : cv_run_emit_item(r, e->route, seq, item, len, 0, item, len);
    if (rc == 0 && e->pipes)
        rc = pipe_drain(e);
    if (rc == 0) {
        e->pushed = seq;
        r->pstats[e->src].items_out = seq;     /* the program's line: read by the host */
        r->source_low = seq + 1;
        /* Pushing may be the program's last act for all the pipeline
         * knows: what it sent must be visible now, and a first stage
         * asleep rung.  A fence per push, and a first stage that catches
         * up and sleeps more often than behind a forked source; a batch
         * publishes once per round instead. */
        if (publish)
            publish_pushed(e, 1);
    }
    unguard_sigpipe(&g);
    if (rc == 0)
        return 0;
    if (rc == -ETIMEDOUT || rc == -EAGAIN)
        return -EAGAIN;
    if (rc == -EPIPE || host_failed(e, 1))
        return failed(e);
    return rc;
}

/* --- both ends: flush, finish, batch ------------------------------------- */

/* Sends flush marker MARK on every output that has not had it: 0, or
 * -EAGAIN when one is full (outputs are taken in meanwhile by the caller). */
static int send_marks(cv_embed *e, uint64_t mark)
{
    cv_run *r = &e->run;
    pipe_guard g;
    guard_sigpipe(e, &g);
    int rc = 0;
    for (size_t i = 0; i < r->nouts && rc == 0; i++) {
        if (e->mark_on[i] >= mark)
            continue;
        rc = cv_channel_send(r->outs[i], mark, CV_REC_WATERMARK | CV_REC_MARK, NULL, 0);
        if (rc == 0) {
            e->mark_on[i] = mark;
            if (r->view[r->out_ids[i]] < mark)
                r->view[r->out_ids[i]] = mark;
            cv_channel_publish(r->outs[i]);
        }
    }
    unguard_sigpipe(&g);
    return rc;
}

/* Flushes and closes the program's outputs: 0, or -EAGAIN while a pipe
 * cannot take what is pending yet. */
static int close_outputs(cv_embed *e)
{
    cv_run *r = &e->run;
    pipe_guard g;
    guard_sigpipe(e, &g);
    int rc = 0;
    for (size_t i = 0; i < r->nouts; i++) {
        int f = cv_channel_flush(r->outs[i], 0);
        if (f < 0 && rc == 0)
            rc = f;
    }
    if (rc == 0) {
        for (size_t i = 0; i < r->nouts; i++)
            cv_channel_close_write(r->outs[i]);
        e->input_closed = 1;
    }
    unguard_sigpipe(&g);
    return rc;
}

/* Works both ends until DONE(E, ARG) says so, taking outputs into the
 * queue, within TIMEOUT_MS: 0, -EAGAIN or -EPIPE.  STEP moves the push
 * side on (0 when it has nothing more to do, -EAGAIN to be tried again). */
static int pump(cv_embed *e, int (*step)(cv_embed *, uint64_t), int (*done)(cv_embed *, uint64_t),
                uint64_t arg, int timeout_ms)
{
    struct timespec until;
    int until_set = 0;
    for (;;) {
        int s = step ? step(e, arg) : 0;
        if (s == 0)
            step = NULL;
        else if (s != -EAGAIN)
            return host_failed(e, 1) || s == -EPIPE ? failed(e) : s;
        if (take_in(e) < 0)
            return -EPIPE;
        if (!step && done(e, arg))
            return 0;
        int ms = wait_budget(timeout_ms, &until, &until_set);
        if (ms < 0)
            return -EAGAIN;
        int rc = wait_both(e, ms);
        if (rc == -EPIPE)
            return failed(e);
        if (rc < 0)
            return rc;
    }
}

static int step_marks(cv_embed *e, uint64_t mark)
{
    return send_marks(e, mark);
}

static int marked(cv_embed *e, uint64_t mark)
{
    return e->marked >= mark || e->outputs_ended;
}

int cv_embed_flush(cv_embed *e, int timeout_ms)
{
    if (has_ended(e))
        return -EPIPE;
    if (e->input_closed)
        return 0;       /* finish took every output in */
    if (host_failed(e, 0))
        return failed(e);
    return pump(e, step_marks, marked, e->pushed + 1, timeout_ms);
}

static int step_close(cv_embed *e, uint64_t unused)
{
    (void)unused;
    return e->input_closed ? 0 : close_outputs(e);
}

static int all_out(cv_embed *e, uint64_t unused)
{
    (void)unused;
    return e->outputs_ended;
}

int cv_embed_finish(cv_embed *e)
{
    if (!has_ended(e)) {
        e->run.pstats[e->src].items_out = e->pushed;
        (void)pump(e, step_close, all_out, 0, -1);     /* a failure is collected there */
        collect(e);
    }
    release(e);
    return e->status;
}

int cv_embed_stop(cv_embed *e)
{
    if (!has_ended(e)) {
        e->stopped = 1;
        kill(e->host, SIGTERM);
        collect(e);
    }
    release(e);
    return e->status;
}

/* --- batches ----------------------------------------------------------------- */

typedef struct batch {
    uint64_t first;
    size_t n;
    cv_embed_result_fn fn;
    void *arg;
    int keep;                   /* outputs may come out of order: sorted at the end */
    unsigned char *kept;        /* records as in the queue */
    size_t kept_len, kept_cap;
} batch;

static void deliver(batch *b, uint64_t seq, const void *item, size_t len)
{
    if (b->keep) {
        size_t need = 12 + len;
        if (b->kept_cap - b->kept_len < need) {
            size_t cap = b->kept_cap ? b->kept_cap : 65536;
            while (cap - b->kept_len < need)
                cap *= 2;
            b->kept = cv_realloc(b->kept, cap);
            b->kept_cap = cap;
        }
        uint32_t l32 = (uint32_t)len;
        memcpy(b->kept + b->kept_len, &seq, 8);
        memcpy(b->kept + b->kept_len + 8, &l32, 4);
        if (len)
            memcpy(b->kept + b->kept_len + 12, item, len);
        b->kept_len += need;
        return;
    }
    size_t index = seq >= b->first && seq - b->first < b->n ? (size_t)(seq - b->first) : SIZE_MAX;
    b->fn(b->arg, index, seq, item, len);
}

typedef struct kept_rec {
    uint64_t seq;
    size_t at;      /* offset of the record, also the tie-break: arrival order */
} kept_rec;

static int kept_cmp(const void *a, const void *b)
{
    const kept_rec *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* Outputs of a pipeline that merges in arrival order: in input order once
 * every one has come (the order within one item's outputs is kept). */
static void deliver_kept(batch *b)
{
    size_t n = 0;
    for (size_t at = 0; at < b->kept_len; n++) {
        uint32_t l32;
        memcpy(&l32, b->kept + at + 8, 4);
        at += 12 + l32;
    }
    kept_rec *recs = cv_calloc(n + 1, sizeof *recs);
    size_t i = 0;
    for (size_t at = 0; at < b->kept_len; i++) {
        uint32_t l32;
        memcpy(&recs[i].seq, b->kept + at, 8);
        memcpy(&l32, b->kept + at + 8, 4);
        recs[i].at = at;
        at += 12 + l32;
    }
    qsort(recs, n, sizeof *recs, kept_cmp);
    b->keep = 0;
    for (i = 0; i < n; i++) {
        uint32_t l32;
        memcpy(&l32, b->kept + recs[i].at + 8, 4);
        deliver(b, recs[i].seq, b->kept + recs[i].at + 12, l32);
    }
    free(recs);
}

/* Delivers every output there is now: 0 or -EPIPE. */
static int batch_drain(cv_embed *e, batch *b)
{
    const void *item;
    size_t len;
    uint64_t seq;
    while (queue_take(e, &item, &len, &seq))
        deliver(b, seq, item, len);
    int rc;
    while ((rc = take_output(e, &item, &len, &seq, 0)) == 0)
        deliver(b, seq, item, len);
    return rc == -EPIPE ? rc : 0;
}

int cv_embed_batch(cv_embed *e, const void *const *items, const size_t *lens, size_t n,
                   cv_embed_result_fn fn, void *arg)
{
    batch b = {.first = e->pushed + 1, .n = n, .fn = fn, .arg = arg, .keep = !e->monotonic};
    int rc = 0;
    size_t i = 0;
    if (has_ended(e) || e->input_closed)
        return e->input_closed && !has_ended(e) ? -EINVAL : -EPIPE;
    while (rc == 0) {
        while (i < n && (rc = push_one(e, items[i], lens[i], 0, 0)) == 0)
            i++;
        publish_pushed(e, 0);
        if (rc == -EAGAIN)
            rc = 0;
        if (rc < 0)
            break;
        if ((rc = batch_drain(e, &b)) < 0)
            break;
        if (i == n)
            break;
        rc = wait_both(e, SLICE_MS);
        if (rc == -EPIPE)
            rc = failed(e);
    }
    if (rc == 0)
        rc = cv_embed_flush(e, -1);
    if (rc == 0)
        rc = batch_drain(e, &b);
    if (rc == 0 && b.keep)
        deliver_kept(&b);
    free(b.kept);
    return rc;
}

/* --- start ------------------------------------------------------------------ */

/* What the program cannot be the source and sink of: a channel from the
 * reader straight to the writer (both its ends would be the program's),
 * source stages (there is no reader for the program to be), a concat
 * merge (its later inputs come out only at the end of the stream,
 * so no flush could return before it). */
static int embeddable(const cv_plan *plan, int src, int snk)
{
    if (plan->plugin_sources) {
        cv_error("%s: its items come from type = source stages, so it takes none from a "
                 "program: such a pipeline cannot be embedded (run it with conveyor-host)",
                 plan->cfg->path);
        return 0;
    }
    for (size_t c = 0; c < plan->nchans; c++)
        if (plan->chans[c].from == src && plan->chans[c].to == snk) {
            cv_error("%s: the input goes straight to the output (no processor between "
                     "them): such a pipeline cannot be embedded", plan->cfg->path);
            return 0;
        }
    for (size_t p = 0; p < plan->nprocs; p++)
        if (plan->procs[p].ninputs > 1 && plan->procs[p].order == CV_ORDER_CONCAT) {
            cv_error("%s: '%s' merges its inputs with order = concat, whose later inputs "
                     "come out only at the end of the stream: such a pipeline cannot be "
                     "embedded (a flush could not return)", plan->cfg->path,
                     plan->procs[p].label);
            return 0;
        }
    return 1;
}

/* The program's ends after the fork: the reader's outputs and the
 * writer's inputs, merged as the writer would. */
static void program_ends(cv_embed *e)
{
    cv_run *r = &e->run;
    const cv_plan *pl = e->plan;
    r->outs = cv_calloc(pl->nchans + 1, sizeof *r->outs);
    r->out_ids = cv_calloc(pl->nchans + 1, sizeof *r->out_ids);
    r->view = cv_calloc(pl->nchans + 1, sizeof *r->view);
    e->ins = cv_calloc(pl->nchans + 1, sizeof *e->ins);
    for (size_t c = 0; c < pl->nchans; c++) {
        const cv_chan_desc *cd = &pl->chans[c];
        int ends = (cd->from == e->src ? CV_END_WRITE : 0) | (cd->to == e->snk ? CV_END_READ : 0);
        cv_channel_keep(r->chans[c], ends);
        if (cd->from == e->src) {
            r->outs[r->nouts] = r->chans[c];
            r->out_ids[r->nouts++] = (int)c;
            if (cd->ordered)
                r->has_ordered = 1;
        }
    }
    e->mark_on = cv_calloc(r->nouts + 1, sizeof *e->mark_on);
    r->self = e->src;
    r->source_low = 1;
    r->wait_fn = push_wait;
    r->wait_arg = e;
    e->route = pl->procs[e->src].out;
    if (e->route && e->route->kind == CV_ROUTE_CHANNEL && !r->has_ordered)
        r->direct = r->chans[e->route->channel];

    const cv_proc *sink = &pl->procs[e->snk];
    unsigned *ranks = cv_calloc(sink->ninputs + 1, sizeof *ranks);
    cv_channel_stats **stats = cv_calloc(sink->ninputs + 1, sizeof *stats);
    for (size_t i = 0; i < sink->ninputs; i++) {
        e->ins[i] = r->chans[sink->inputs[i]];
        ranks[i] = pl->chans[sink->inputs[i]].rank;
        stats[i] = &r->chstats[sink->inputs[i]];
    }
    e->nins = sink->ninputs;
    cv_inbox_init(&e->inbox, e->ins, stats, ranks, e->nins, sink->order, pull_wait, e);
    /* The program is the run's one source: every input carries it. */
    unsigned char *carries = cv_calloc(e->nins + 1, 1);
    memset(carries, 1, e->nins);
    cv_inbox_on_mark(&e->inbox, 1, carries, pull_mark, e);
    free(carries);
    free(ranks);
    free(stats);

    /* Outputs keep input order when every merge does. */
    e->monotonic = 1;
    for (size_t p = 0; p < pl->nprocs; p++)
        if (pl->procs[p].ninputs > 1 && pl->procs[p].order != CV_ORDER_SOURCE)
            e->monotonic = 0;
}

static int make_epoll(cv_embed *e)
{
    e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epoll_fd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->notify_fd, &ev) < 0 ||
        epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, e->status_fd, &ev) < 0)
        return -errno;
    for (size_t i = 0; i < e->nins; i++) {
        int fd = cv_channel_read_fd(e->ins[i]);
        if (fd >= 0 && epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return -errno;
    }
    return 0;
}

static int inits_done(cv_embed *e, uint64_t unused)
{
    (void)unused;
    for (size_t p = 0; p < e->plan->nprocs; p++)
        if (e->plan->procs[p].kind == CV_PROC_STAGE &&
            __atomic_load_n(&e->run.pstats[p].phase, __ATOMIC_ACQUIRE) < CV_PHASE_ITEMS)
            return 0;
    return 1;
}

/* Every init has returned (outputs they emitted are taken in). */
static int wait_inits(cv_embed *e)
{
    while (!inits_done(e, 0)) {
        if (take_in(e) < 0)
            return -EPIPE;
        if (host_failed(e, 1))
            return failed(e);
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    return 0;
}

int cv_embed_start(const cv_plan *plan, const conveyor_stage *const *stages, cv_embed **out)
{
    *out = NULL;
    pthread_once(&runs_once, runs_init);
    cv_embed *e = cv_calloc(1, sizeof *e);
    pthread_mutex_init(&e->end_lock, NULL);
    e->plan = plan;
    e->src = 0;
    e->snk = (int)plan->nprocs - 1;
    e->status_fd = e->life_fd = e->notify_fd = e->epoll_fd = -1;
    if (!cv_proc_is_program(&plan->procs[e->src]) || !embeddable(plan, e->src, e->snk)) {
        free(e);
        return CONVEYOR_EXIT_CONFIG;
    }
    int status = cv_run_create_embedded(&e->run, plan, stages);
    e->sh = cv_shared_alloc(sizeof *e->sh);
    int status_p[2] = {-1, -1}, life_p[2] = {-1, -1};
    if (status == CONVEYOR_EXIT_OK &&
        (!e->sh || pipe2(status_p, O_CLOEXEC) < 0 || pipe2(life_p, O_CLOEXEC) < 0 ||
         (e->notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)) {
        cv_error("cannot create the pipeline's descriptors: %s", strerror(errno));
        status = CONVEYOR_EXIT_FAILED;
    }
    if (status != CONVEYOR_EXIT_OK) {
        cv_run_destroy(&e->run);
        if (e->sh)
            cv_shared_free(e->sh, sizeof *e->sh);
        int fds[] = {status_p[0], status_p[1], life_p[0], life_p[1], e->notify_fd};
        for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        free(e);
        return status;
    }
    e->resources = 1;
    e->pipes = plan->cfg->transport == CV_TRANSPORT_PIPE;
    e->status_fd = status_p[0];
    e->life_fd = life_p[1];
    cv_bell_set_notify(&e->run.bells[e->src], e->notify_fd);
    cv_bell_set_notify(&e->run.bells[e->snk], e->notify_fd);
    e->owner = getpid();
    /* The host's copy of the program's stdio buffers must be empty. */
    fflush(NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid != 0)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        cv_error("fork: %s", strerror(errno));
        e->ended = 1;
        e->status = CONVEYOR_EXIT_FAILED;
        close(status_p[1]);
        close(life_p[0]);
        cv_embed_free(e);
        return CONVEYOR_EXIT_FAILED;
    }
    if (pid == 0)
        host_main(e, status_p[1], life_p[0]);
    e->host = pid;
    close(status_p[1]);
    close(life_p[0]);
    runs_add(e);
    /* Two threads of the program may wait at once (push, pull): neither
     * spins, and the spin's state is never shared between them. */
    cv_ring_set_spin_limit(0);
    program_ends(e);
    *out = e;
    if (make_epoll(e) < 0) {
        cv_error("cannot create the pipeline's descriptors: %s", strerror(errno));
        cv_embed_stop(e);
        return CONVEYOR_EXIT_FAILED;
    }
    if (wait_inits(e) < 0) {
        collect(e);
        return e->status ? e->status : CONVEYOR_EXIT_FAILED;
    }
    return CONVEYOR_EXIT_OK;
}

/* --- the rest ---------------------------------------------------------------- */

int cv_embed_fd(const cv_embed *e)
{
    return e->epoll_fd;
}

const char *cv_embed_error(const cv_embed *e)
{
    return e->error;
}

uint64_t cv_embed_pushed(const cv_embed *e)
{
    return e->pushed;
}

pid_t cv_embed_host(const cv_embed *e)
{
    return e->host;
}

void cv_embed_free(cv_embed *e)
{
    if (!e)
        return;
    if (!has_ended(e) && e->host > 0)
        cv_embed_stop(e);
    release(e);
    pthread_mutex_destroy(&e->end_lock);
    if (e->epoll_fd >= 0)
        close(e->epoll_fd);
    if (e->notify_fd >= 0)
        close(e->notify_fd);
    free(e->run.outs);
    free(e->run.out_ids);
    free(e->run.view);
    free(e->ins);
    free(e->mark_on);
    free(e->q);
    free(e->error);
    free(e);
}
