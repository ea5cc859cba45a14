/* SPDX-License-Identifier: MIT */
/*
 * supervisor.c - the host's side of a run: forks the source, one process per
 * stage replica and the sink, then only supervises.  It reaps children,
 * restarts a crashed stage with restart = on-failure, turns SIGINT/SIGTERM/
 * SIGHUP into a drain (the source stops reading; every stage finishes what
 * is in flight and runs fini), stops everything at the first failure or
 * crash, names the cause, and exits with a status that says what happened.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "base/log.h"
#include "base/proctitle.h"
#include "base/util.h"
#include "run/run.h"

/* The host's state while the processes run. */
typedef struct cv_supervisor {
    cv_run run;                 /* what every child inherits */
    pid_t *pids;                /* per process; -1 once reaped */
    unsigned char *killed;      /* per process: the host sent it SIGKILL */
    size_t nprocs;
    int alive;
    unsigned *in_row;           /* crashes in a row without finishing an item */
    uint64_t *done_at_crash;    /* items done at the last crash */
    unsigned *restarts_of;      /* per process: how often it was started again */
    unsigned restarts;
    int stopping;               /* everything has been sent SIGKILL */
    int draining_sig;           /* the first SIGINT/SIGTERM/SIGHUP, or 0 */
    int fatal_sig;              /* a signal the host dies of once clean, or 0 */
    int cause, cause_status;    /* the dead child that explains a stop, or -1 */
    int cause_code;             /* its child_code() */
    int cause_reported;         /* its message is already out */
    int failed;                 /* the run cannot go on (a fork failed) */
    sigset_t wait_set;          /* what the host takes with sigtimedwait */
    sigset_t old_mask;          /* the caller's, restored at the end */
    sigset_t child_mask;        /* what children start from */
    struct sigaction old_chld, old_pipe;
    int signals_taken;
    struct timespec started;
    struct timespec drain_deadline; /* when a drain stops as on a second signal */
    int was_subreaper;          /* the caller's PR_GET_CHILD_SUBREAPER */
    pid_t *before;              /* the caller's own children when the run started */
    size_t nbefore;
    pid_t *strays;              /* processes left behind by stages, killed */
    size_t nstrays;
    cv_metrics *metrics;        /* live metrics (metrics.c), or NULL */
    uint64_t next_sample;       /* CLOCK_MONOTONIC ns */
    uint64_t next_file;         /* when metrics_file is written next */
    uint64_t next_progress;
    int progress;               /* --progress draws its line */
    int progress_tty;           /* on a terminal: erased, not ended with a newline */
    int progress_drawn;         /* the line is on the terminal now */
    const cv_embed_hooks *embed; /* a program is the source and the sink, or NULL */
} cv_supervisor;

int cv_run_progress = -1;

#define SAMPLE_NS 100000000ull      /* metrics: ten samples a second */
#define PROGRESS_NS 250000000ull    /* the progress line: four redraws a second */

static void on_sigchld(int sig)
{
    (void)sig;
}

const char *cv_sig_name(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? n : "?";
}

/* How process P ended: its CV_CHILD_* code when it ended on its own terms
 * (the finished flag it sets just before its own _exit), else -1: it was
 * killed by a signal, or a plugin ended it (exit(), _exit()) -- a crash
 * either way, whatever the status. */
static int child_code(const cv_run *r, int p, int status)
{
    if (WIFEXITED(status) && r->pstats[p].finished)
        return WEXITSTATUS(status);
    return -1;
}

/* "was killed by SIGSEGV" or "exited with status 3", for a crash. */
static const char *how_died(int status, char *buf, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(buf, n, "was killed by SIG%s", cv_sig_name(WTERMSIG(status)));
    else
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    return buf;
}

/* Where a crashed stage was: " while processing item 7", " in fini", ...
 * (empty for the source and the sink). */
static const char *where_died(const cv_run *r, int p, char *buf, size_t n)
{
    const cv_proc_stats *ps = &r->pstats[p];
    buf[0] = '\0';
    if (r->plan->procs[p].stage < 0)
        return buf;
    if (r->plan->procs[p].kind == CV_PROC_SOURCE && ps->phase == CV_PHASE_ITEMS) {
        snprintf(buf, n, " in produce");
        return buf;
    }
    switch (ps->phase) {
    case CV_PHASE_START: snprintf(buf, n, " before it started"); break;
    case CV_PHASE_INIT: snprintf(buf, n, " in init, before reading its input"); break;
    case CV_PHASE_FINI: snprintf(buf, n, " in fini"); break;
    default:
        if (ps->current)
            snprintf(buf, n, " while processing item %" PRIu64, ps->current);
        else
            snprintf(buf, n, " between items");
        break;
    }
    return buf;
}

/* Signals whose default would kill the host and leave the segment behind:
 * it stops everything, cleans up, then dies of the same signal (a core
 * dump for SIGQUIT, where they are enabled). */
static const int fatal_signals[] = {SIGQUIT, SIGUSR2, SIGALRM, SIGXCPU, SIGXFSZ, SIGVTALRM,
                                    SIGPROF};

/* Signals: the host takes them synchronously (sigtimedwait), from before
 * anything is created, so a signal at any moment is seen by the loop and
 * cleaned up after.  Children inherit SIGUSR1 blocked (the stop request
 * the host sends the source must not kill it before its handler is in
 * place) and start from the caller's mask with their own dispositions.
 * SIGPIPE is ignored: a write to a closed pipe (the output, or stderr)
 * gives EPIPE, which is handled. */
static void take_signals(cv_supervisor *sv)
{
    static const int taken[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    sigemptyset(&sv->wait_set);
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
        sigaddset(&sv->wait_set, taken[i]);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
        sigaddset(&sv->wait_set, fatal_signals[i]);
    struct sigaction sa_chld = {.sa_handler = on_sigchld}, sa_ign = {.sa_handler = SIG_IGN};
    sigemptyset(&sa_chld.sa_mask);
    sigemptyset(&sa_ign.sa_mask);
    sigaction(SIGCHLD, &sa_chld, &sv->old_chld);
    sigaction(SIGPIPE, &sa_ign, &sv->old_pipe);
    sigprocmask(SIG_BLOCK, &sv->wait_set, &sv->old_mask);
    /* Processes a plugin starts come back to the host when their stage
     * ends (kill_strays). */
    prctl(PR_GET_CHILD_SUBREAPER, &sv->was_subreaper);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sv->child_mask = sv->old_mask;
    sigdelset(&sv->child_mask, SIGCHLD);
    sv->signals_taken = 1;
    clock_gettime(CLOCK_MONOTONIC, &sv->started);
}

/* Gives the caller its signals back.  After a fatal signal the host dies
 * of it now that everything is removed. */
static void give_back_signals(cv_supervisor *sv)
{
    if (!sv->signals_taken)
        return;
    sigaction(SIGCHLD, &sv->old_chld, NULL);
    sigaction(SIGPIPE, &sv->old_pipe, NULL);
    prctl(PR_SET_CHILD_SUBREAPER, sv->was_subreaper);
    if (sv->fatal_sig) {
        fflush(NULL);
        signal(sv->fatal_sig, SIG_DFL);
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sv->fatal_sig);
        raise(sv->fatal_sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
    }
    sigprocmask(SIG_SETMASK, &sv->old_mask, NULL);
    sv->signals_taken = 0;
}

/* A stop signal that came while the run was being created: 128 + it, and
 * nothing is started. */
static int stop_before_start(cv_supervisor *sv)
{
    sigset_t stops;
    struct timespec zero = {0, 0};
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
        sigaddset(&stops, fatal_signals[i]);
    int sig = sigtimedwait(&stops, NULL, &zero);
    if (sig <= 0)
        return 0;
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++)
        if (sig == fatal_signals[i])
            sv->fatal_sig = sig;
    cv_info("received SIG%s before the pipeline started; nothing was started", cv_sig_name(sig));
    return 128 + sig;
}

/* Calls FN(SV, PID) for every child process of the host, from
 * /proc/self/task/.../children, or a scan of /proc where the kernel has
 * no such file. */
static void each_child(cv_supervisor *sv, void (*fn)(cv_supervisor *, pid_t))
{
    char path[64];
    pid_t self = getpid();
    snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)self, (long)self);
    FILE *f = fopen(path, "r");
    if (f) {
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            fn(sv, (pid_t)pid);
        fclose(f);
        return;
    }
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        long pid = strtol(de->d_name, NULL, 10), ppid = 0;
        char state;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *st = fopen(path, "r");
        if (!st)
            continue;
        /* pid (comm) state ppid: comm may hold spaces, so after the last ')'. */
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf - 1, st);
        fclose(st);
        buf[n] = '\0';
        char *close = strrchr(buf, ')');
        if (close && sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == self)
            fn(sv, (pid_t)pid);
    }
    if (d)
        closedir(d);
}

static void remember_child(cv_supervisor *sv, pid_t pid)
{
    sv->before = cv_realloc(sv->before, (sv->nbefore + 1) * sizeof *sv->before);
    sv->before[sv->nbefore++] = pid;
}

/* A child that is neither one of the pipeline's processes nor the caller's
 * own is what a plugin left behind (fork without exec, a helper): its stage
 * has ended, so it is killed -- it may hold channel ends that would keep
 * the run from ending, or go on working for a pipeline that is over. */
static void kill_if_stray(cv_supervisor *sv, pid_t pid)
{
    for (size_t p = 0; p < sv->nprocs; p++)
        if (sv->pids[p] == pid)
            return;
    for (size_t i = 0; i < sv->nbefore; i++)
        if (sv->before[i] == pid)
            return;
    cv_debug("killing process %ld, left behind by a stage", (long)pid);
    if (kill(pid, SIGKILL) == 0) {
        sv->strays = cv_realloc(sv->strays, (sv->nstrays + 1) * sizeof *sv->strays);
        sv->strays[sv->nstrays++] = pid;
    }
}

static void kill_strays(cv_supervisor *sv)
{
    each_child(sv, kill_if_stray);
}

/* 1 when PID has ended and waits to be reaped (it is not reaped here). */
static int already_ended(pid_t pid)
{
    siginfo_t si = {0};
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Stops every process at once.  One that has already ended (its death not
 * yet reaped: waitpid() returns children in no particular order) is left
 * as it is, so its own end -- a kill -9 from outside -- still explains the
 * stop. */
static void kill_all(cv_supervisor *sv)
{
    sv->stopping = 1;
    if (sv->embed)
        sv->embed->on_stop(sv->embed->arg);
    for (size_t p = 0; p < sv->nprocs; p++)
        if (sv->pids[p] > 0 && !already_ended(sv->pids[p])) {
            sv->killed[p] = 1;
            kill(sv->pids[p], SIGKILL);
        }
}

static void fork_all(cv_supervisor *sv)
{
    cv_run *r = &sv->run;
    fflush(NULL);
    for (size_t p = 0; p < sv->nprocs; p++) {
        if (sv->embed && cv_proc_is_program(&r->plan->procs[p]))
            continue;   /* the program plays it */
        pid_t pid = fork();
        if (pid < 0) {
            cv_error("fork: %s", strerror(errno));
            sv->failed = 1;
            break;
        }
        if (pid == 0)
            cv_child_main(r, (int)p, &sv->child_mask, 0);
        sv->pids[p] = pid;
        sv->alive++;
    }
    if (cv_log_level >= 3)
        for (size_t p = 0; p < sv->nprocs; p++)
            if (sv->pids[p] > 0)
            cv_debug("started %s (pid %ld)", r->plan->procs[p].label, (long)sv->pids[p]);
    /* The host holds no channel ends: end of stream depends on it. */
    for (size_t c = 0; c < r->plan->nchans; c++)
        cv_channel_keep(r->chans[c], CV_END_NONE);
    cv_run_close_io(r);
    if (sv->failed)
        kill_all(sv);
}

/* Says why a restarted stage restarts, or why it will not: 1 to restart,
 * 0 to give up quietly, -1 when it gave up and said why. */
static int restart_verdict(cv_supervisor *sv, int p, int status)
{
    cv_run *r = &sv->run;
    const cv_stage_cfg *st = &r->cfg->stages[r->plan->procs[p].stage];
    cv_proc_stats *ps = &r->pstats[p];
    uint64_t item = ps->current;
    unsigned row = sv->in_row[p];
    char who[256], how[64], where[96];
    cv_proc_desc(r, p, who, sizeof who);
    how_died(status, how, sizeof how);
    where_died(r, p, where, sizeof where);

    if (row < st->max_restarts) {
        cv_warn("%s %s%s; restarting it (%u of %u in a row)", who, how, where, row,
                st->max_restarts);
        return 1;
    }
    /* Crashed max_restarts times in a row without finishing an item. */
    if (item && st->on_error == CV_ON_ERROR_DEAD_LETTER) {
        cv_warn("%s %s %u times in a row on item %" PRIu64 ", a poison item; "
                "restarting it to write the item to '%s' instead",
                who, how, row, item, st->dead_letter_path);
        ps->poison = item;
        sv->in_row[p] = 0;
        return 1;
    }
    if (item)
        cv_error("%s %s %u time%s in a row on item %" PRIu64 ", a poison "
                 "item (on_error = dead-letter:PATH sets such items aside); the pipeline "
                 "is stopped", who, how, row, row == 1 ? "" : "s", item);
    else
        cv_error("%s %s %u times in a row%s; the pipeline is stopped", who, how, row, where);
    return -1;
}

/* A stage with restart = on-failure crashed (a signal, or a plugin ended
 * its process): start a new process
 * for it, unless it crashed max_restarts times in a row without finishing
 * an item (then the item is a poison item: dead-lettered when the stage has
 * a dead-letter file, else the pipeline stops).  1 when restarted, 0 when
 * it is not restarted, -1 when the reason was reported. */
static int restart_child(cv_supervisor *sv, int p, int status)
{
    cv_run *r = &sv->run;
    const cv_proc *pr = &r->plan->procs[p];
    if (pr->stage < 0 || r->cfg->stages[pr->stage].restart != CV_RESTART_ON_FAILURE)
        return 0;
    cv_proc_stats *ps = &r->pstats[p];
    if (ps->done > sv->done_at_crash[p])
        sv->in_row[p] = 0;
    sv->done_at_crash[p] = ps->done;
    sv->in_row[p]++;
    int verdict = restart_verdict(sv, p, status);
    if (verdict <= 0)
        return verdict;
    ps->current = 0;
    /* A short backoff, growing with the crashes in a row. */
    unsigned row = sv->in_row[p];
    struct timespec backoff = {0, (long)(10 * 1000000L) << (row < 6 ? row : 6)};
    cv_debug("restarting %s in %ld ms (crash %u in a row)", pr->label,
             backoff.tv_nsec / 1000000L, row);
    nanosleep(&backoff, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cv_error("fork: %s", strerror(errno));
        return 0;
    }
    if (pid == 0)
        cv_child_main(r, p, &sv->child_mask, 1);
    if (pr->kind == CV_PROC_SOURCE && sv->draining_sig)
        kill(pid, SIGUSR1);     /* a source restarted during a drain stops too */
    sv->pids[p] = pid;
    sv->killed[p] = 0;
    sv->alive++;
    sv->restarts++;
    sv->restarts_of[p]++;
    cv_debug("restarted %s (pid %ld)", pr->label, (long)pid);
    return 1;
}

/* Which dead child explains a stop best: crashes and stage failures first,
 * consequences (a peer gone) last. */
static int cause_rank(int code, int status)
{
    if (code < 0)
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 4 : 5;
    switch (code) {
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

static void report_cause(cv_run *r, int p, int status, int code)
{
    char who[256], how[64], where[96];
    cv_proc_desc(r, p, who, sizeof who);
    if (code < 0) {
        how_died(status, how, sizeof how);
        where_died(r, p, where, sizeof where);
        if (WIFSIGNALED(status))
            cv_error("%s %s (%s)%s; the pipeline is stopped", who, how,
                     strsignal(WTERMSIG(status)), where);
        else
            cv_error("%s %s%s (a plugin ended the process); the pipeline is stopped", who, how,
                     where);
    } else if (code != CV_CHILD_OK && code != CV_CHILD_OUTPUT_CLOSED) {
        /* The child said why; name the consequence. */
        cv_error("the pipeline is stopped: %s failed", who);
    }
}

/* Process P ended with STATUS: restart it, or keep it as the cause of the
 * stop when it explains it best, and stop everything at the first failure. */
static void child_ended(cv_supervisor *sv, int p, int status)
{
    int code = child_code(&sv->run, p, status);
    if (code == CV_CHILD_OK)
        return;
    if (!sv->stopping && code < 0) {
        int rs = restart_child(sv, p, status);
        if (rs > 0)
            return;
        if (rs < 0)
            sv->cause_reported = 1;     /* restart_child said why it stops */
    }
    /* What the stop itself killed explains nothing; a SIGKILL from outside
     * (kill -9 of a stage) does, even when it is reaped after the stop began. */
    if (!(sv->killed[p] && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) &&
        (sv->cause < 0 || cause_rank(code, status) > cause_rank(sv->cause_code, sv->cause_status))) {
        sv->cause = p;
        sv->cause_status = status;
        sv->cause_code = code;
    }
    if (!sv->stopping)
        kill_all(sv);
}

/* Items in the channels and in the hands of stages: what a stop now would
 * drop.  A process that ended in the middle of an item (it failed it, or
 * was killed) still names it in current: that item is not in the output
 * either.  A restarted process starts with current cleared. */
static uint64_t in_flight(const cv_supervisor *sv)
{
    const cv_run *r = &sv->run;
    uint64_t n = 0;
    for (size_t c = 0; c < r->plan->nchans; c++) {
        uint64_t sent = r->chstats[c].sent, received = r->chstats[c].received;
        n += sent > received ? sent - received : 0;
    }
    for (size_t p = 0; p < sv->nprocs; p++)
        if (r->pstats[p].current)
            n++;
    return n;
}

/* Items that entered the pipeline: what its sources handed on. */
static uint64_t items_read(const cv_run *r)
{
    uint64_t n = 0;
    for (size_t p = 0; p < r->plan->nsources; p++)
        n += cv_stat_read(r->pstats[p].items_out);
    return n;
}

/* The processes a summary gives a line each: every stage's, a source
 * stage's too, but not the input reader's and the output writer's. */
static int has_own_line(const cv_run *r, size_t p)
{
    return r->plan->procs[p].stage >= 0;
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* SIGUSR1: where the pipeline is, on stderr; it goes on. */
static void snapshot(cv_supervisor *sv)
{
    const cv_run *r = &sv->run;
    size_t n = sv->nprocs;
    double secs = seconds_since(&sv->started);
    cv_notice("snapshot at %.1f s: %" PRIu64 " items read, %" PRIu64 " written, %" PRIu64
              " in flight%s", secs, items_read(r), cv_stat_read(r->pstats[n - 1].items_out),
              in_flight(sv), sv->draining_sig ? " (draining)" : "");
    for (size_t p = 0; p < n; p++) {
        if (!has_own_line(r, p))
            continue;
        const cv_proc_stats *ps = &r->pstats[p];
        char at[48] = "";
        if (ps->current)
            snprintf(at, sizeof at, ", at item %" PRIu64, ps->current);
        cv_notice("  %s: %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " failed%s",
               r->plan->procs[p].label, cv_stat_read(ps->items_in), cv_stat_read(ps->items_out),
               cv_stat_read(ps->failed), at);
    }
}

/* A drain that started with SIG. */
static void start_drain(cv_supervisor *sv, int sig)
{
    uint64_t limit = sv->run.cfg->drain_timeout_ms;
    sv->draining_sig = sig;
    if (limit) {
        clock_gettime(CLOCK_MONOTONIC, &sv->drain_deadline);
        sv->drain_deadline.tv_sec += (time_t)(limit / 1000);
        sv->drain_deadline.tv_nsec += (long)(limit % 1000) * 1000000L;
        if (sv->drain_deadline.tv_nsec >= 1000000000L) {
            sv->drain_deadline.tv_sec++;
            sv->drain_deadline.tv_nsec -= 1000000000L;
        }
    }
    cv_notice("received SIG%s: finishing the items in flight (%" PRIu64 "); send it again to "
              "stop at once", cv_sig_name(sig), in_flight(sv));
    for (size_t p = 0; p < sv->run.plan->nsources; p++)
        if (sv->pids[p] > 0)
            kill(sv->pids[p], SIGUSR1);
}

/* The drain took longer than drain_timeout: stop as on a second signal. */
static void check_drain_deadline(cv_supervisor *sv)
{
    if (!sv->draining_sig || sv->stopping || !sv->run.cfg->drain_timeout_ms ||
        seconds_since(&sv->drain_deadline) < 0)
        return;
    cv_error("the drain took longer than drain_timeout (%" PRIu64 " ms): stopping now; %" PRIu64
             " items in flight are dropped", sv->run.cfg->drain_timeout_ms, in_flight(sv));
    kill_all(sv);
}

/* A signal for the host: SIGUSR1 asks for a snapshot; a terminal signal
 * drains the first time (the source stops reading) and stops everything at
 * once the second; a fatal one stops everything, and the host dies of it
 * once clean. */
static void stop_signal(cv_supervisor *sv, int sig)
{
    if (sig == SIGUSR1) {
        snapshot(sv);
        return;
    }
    if (sv->embed && (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)) {
        /* The program stops the run (or is gone): nothing feeds a drain. */
        if (!sv->draining_sig)
            sv->draining_sig = sig;
        if (!sv->stopping)
            kill_all(sv);
        return;
    }
    if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP) {
        if (!sv->fatal_sig) {
            sv->fatal_sig = sig;
            cv_error("received SIG%s: stopping the pipeline and removing what it created",
                     cv_sig_name(sig));
        }
        if (!sv->stopping)
            kill_all(sv);
        return;
    }
    if (!sv->draining_sig) {
        start_drain(sv, sig);
    } else if (!sv->stopping) {
        cv_notice("received SIG%s again: stopping now; %" PRIu64 " items in flight are dropped",
                  cv_sig_name(sig), in_flight(sv));
        kill_all(sv);
    }
}

static void reap(cv_supervisor *sv)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        size_t p;
        for (p = 0; p < sv->nprocs && sv->pids[p] != pid; p++)
            ;
        if (p == sv->nprocs)
            continue;       /* a stray, killed or ended on its own */
        sv->pids[p] = -1;
        sv->alive--;
        child_ended(sv, (int)p, status);
        if (sv->pids[p] < 0)    /* not restarted */
            cv_metrics_proc_ended(sv->metrics, (int)p);
        kill_strays(sv);
    }
}

static unsigned run_state(const cv_supervisor *sv)
{
    return sv->stopping ? CV_MSTATE_STOPPING
                        : sv->draining_sig ? CV_MSTATE_DRAINING : CV_MSTATE_RUNNING;
}

/* Erases the progress line (a terminal) or ends it (anything else, where
 * it stays as a record), so that what comes next starts a clean line. */
static void progress_erase(cv_supervisor *sv)
{
    if (!sv->progress_drawn)
        return;
    ssize_t w = sv->progress_tty ? write(STDERR_FILENO, "\r\033[K", 4)
                                 : write(STDERR_FILENO, "\n", 1);
    (void)w;
    sv->progress_drawn = 0;
}

static void progress_draw(cv_supervisor *sv)
{
    char line[512];
    line[0] = '\r';
    cv_metrics_progress_line(cv_metrics_head(sv->metrics), line + 1, sizeof line - 8);
    size_t n = strlen(line);
    if (sv->progress_tty) {
        memcpy(line + n, "\033[K", 3);     /* what a longer line left */
        n += 3;
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    sv->progress_drawn = 1;
}

static void write_metrics_file(cv_supervisor *sv)
{
    const char *path = sv->run.cfg->metrics_file;
    int rc = cv_metrics_write_prom_file(cv_metrics_head(sv->metrics), path);
    if (rc < 0)
        cv_warn("metrics_file '%s': %s", path, strerror(-rc));
}

/* Ten times a second: a sample of the metrics for --top, and when they
 * are due the progress line and the metrics file. */
static void observe(cv_supervisor *sv)
{
    if (!sv->metrics)
        return;
    uint64_t now = cv_run_now_ns();
    if (now < sv->next_sample)
        return;
    sv->next_sample = now + SAMPLE_NS;
    cv_metrics_sample(sv->metrics, &sv->run, sv->pids, sv->restarts_of, run_state(sv), 0);
    if (sv->progress && now >= sv->next_progress) {
        sv->next_progress = now + PROGRESS_NS;
        progress_draw(sv);
    }
    if (sv->run.cfg->metrics_file && sv->run.cfg->metrics_interval_ms && now >= sv->next_file) {
        sv->next_file = now + sv->run.cfg->metrics_interval_ms * 1000000u;
        write_metrics_file(sv);
    }
}

/* What a run observes: the metrics segment for --top unless
 * $CONVEYOR_METRICS is 0 (a switch for measuring what it costs), the
 * progress line, the metrics file. */
static void observe_start(cv_supervisor *sv)
{
    const char *env = getenv("CONVEYOR_METRICS");
    int publish = !(env && strcmp(env, "0") == 0);
    sv->progress_tty = isatty(STDERR_FILENO);
    sv->progress = cv_run_progress > 0 ||
                   (cv_run_progress < 0 && cv_log_level >= 1 && sv->progress_tty);
    if (!publish && !sv->progress && !sv->run.cfg->metrics_file)
        return;
    sv->metrics = cv_metrics_start(&sv->run, publish);
    cv_metrics_sample(sv->metrics, &sv->run, NULL, NULL, CV_MSTATE_RUNNING, 0);
    uint64_t now = cv_run_now_ns();
    sv->next_sample = now + SAMPLE_NS;
    sv->next_progress = now + SAMPLE_NS;
    sv->next_file = now + sv->run.cfg->metrics_interval_ms * 1000000u;
    /* Messages of every process erase the line before they are printed. */
    if (sv->progress)
        cv_log_set_line_prefix(sv->progress_tty ? "\r\033[K" : "\n");
}

/* The last sample, with the run's end and status; the metrics file once
 * more; the progress line erased before the summary. */
static void observe_end(cv_supervisor *sv, int status)
{
    if (!sv->metrics)
        return;
    cv_metrics_sample(sv->metrics, &sv->run, sv->pids, sv->restarts_of, CV_MSTATE_ENDED, status);
    if (sv->progress) {
        progress_draw(sv);
        progress_erase(sv);
        cv_log_set_line_prefix(NULL);
    }
    if (sv->run.cfg->metrics_file)
        write_metrics_file(sv);
}

static void supervise(cv_supervisor *sv)
{
    while (sv->alive > 0) {
        /* A tenth of a second while metrics are sampled or a drain has a
         * deadline to keep. */
        int fast = sv->draining_sig || sv->metrics;
        struct timespec tick = {fast ? 0 : 1, fast ? 100000000L : 0};
        siginfo_t si;
        int sig = sigtimedwait(&sv->wait_set, &si, &tick);
        if (sig > 0 && sig != SIGCHLD)
            stop_signal(sv, sig);
        reap(sv);
        check_drain_deadline(sv);
        observe(sv);
    }
}

static int exit_status(cv_supervisor *sv)
{
    if (sv->fatal_sig)
        return 128 + sv->fatal_sig;
    if (sv->cause >= 0) {
        if (sv->cause_code == CV_CHILD_OUTPUT_CLOSED)
            /* The output's reader went away (| head): a quiet end. */
            return sv->draining_sig ? 128 + sv->draining_sig : CONVEYOR_EXIT_OK;
        if (!sv->cause_reported)
            report_cause(&sv->run, sv->cause, sv->cause_status, sv->cause_code);
        return CONVEYOR_EXIT_FAILED;
    }
    if (sv->failed)
        return CONVEYOR_EXIT_FAILED;
    return sv->draining_sig ? 128 + sv->draining_sig : CONVEYOR_EXIT_OK;
}

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* The summary's first line: how the run ended, after how long, and what
 * went through. */
static void summary_head(const cv_supervisor *sv, int status, double secs)
{
    const cv_run *r = &sv->run;
    uint64_t read = items_read(r), written = cv_stat_read(r->pstats[sv->nprocs - 1].items_out);
    if (sv->embed) {
        /* What reached the program: it may still be pulling it. */
        written = 0;
        for (size_t c = 0; c < r->plan->nchans; c++)
            if (r->plan->chans[c].to == (int)sv->nprocs - 1)
                written += r->chstats[c].sent;
    }
    char how[64];
    if (status > 128)
        snprintf(how, sizeof how, "stopped by SIG%s after", cv_sig_name(status - 128));
    else if (status != CONVEYOR_EXIT_OK)
        snprintf(how, sizeof how, "failed after");
    else if (sv->cause >= 0)
        snprintf(how, sizeof how, "the output was closed after");  /* its reader went away */
    else
        snprintf(how, sizeof how, "done in");
    cv_notice("%s %.3f s: %" PRIu64 " item%s read, %" PRIu64 " written, %.0f items/s", how, secs,
              read, plural(read), written, secs > 0 ? (double)read / secs : 0.0);
}

/* At the end of every run, at the default verbosity: the duration, the
 * items read and written and the rate, a line per stage process, and after
 * anything but a complete run what was in flight.  The counters are the
 * ones every process keeps in place (cv_proc_stats), read once every child
 * is reaped, so they are exact -- also for a process killed by a stop (a
 * failure elsewhere, a second signal, drain_timeout) or by a crash: its
 * line says "killed", it counts the item it held as taken in, and that
 * item is counted in flight.  A restarted stage counts from its last
 * finished item. */
static void summary(cv_supervisor *sv, int status)
{
    const cv_run *r = &sv->run;
    if (sv->restarts)
        cv_warn("%u stage restart%s during the run", sv->restarts, sv->restarts == 1 ? "" : "s");
    if (cv_log_level < 1)
        return;
    summary_head(sv, status, seconds_since(&sv->started));
    for (size_t p = 0; p < sv->nprocs; p++) {
        if (!has_own_line(r, p))
            continue;
        const cv_proc_stats *ps = &r->pstats[p];
        unsigned restarts = sv->restarts_of ? sv->restarts_of[p] : 0;
        cv_notice("  %s: %" PRIu64 " in, %" PRIu64 " out, %" PRIu64 " failed, %u restart%s%s",
                  r->plan->procs[p].label, ps->items_in, ps->items_out, ps->failed, restarts,
                  plural(restarts), sv->pids && !ps->finished ? " (killed)" : "");
    }
    if (status == CONVEYOR_EXIT_OK && sv->cause < 0)
        return;
    uint64_t n = in_flight(sv);
    if (n == 0)
        cv_notice("no items were in flight");
    else if (n == 1)
        cv_notice("1 item was in flight and is not in the output");
    else
        cv_notice("%" PRIu64 " items were in flight and are not in the output", n);
}

/* Runs SV->run, created with STATUS: forks, supervises, reports and
 * removes everything; the exit status. */
static int run_created(cv_supervisor *sv, int status);

int cv_run_pipeline(const cv_plan *plan, const conveyor_stage *const *stages)
{
    cv_supervisor sv = {.nprocs = plan->nprocs, .cause = -1};
    char *title = cv_asprintf("conveyor-host: %s", plan->cfg->path);
    cv_title_set(title);
    free(title);
    take_signals(&sv);
    return run_created(&sv, cv_run_create(&sv.run, plan, stages));
}

int cv_run_supervise_embedded(cv_run *r, const cv_embed_hooks *hooks)
{
    cv_supervisor sv = {.nprocs = r->plan->nprocs, .cause = -1, .embed = hooks};
    char *title = cv_asprintf("conveyor: host of %s", r->plan->cfg->path);
    cv_title_set(title);
    free(title);
    take_signals(&sv);
    sv.run = *r;
    sv.run.host = getpid();
    return run_created(&sv, CONVEYOR_EXIT_OK);
}

static int run_created(cv_supervisor *svp, int status)
{
    cv_supervisor sv = *svp;
    if (status == CONVEYOR_EXIT_OK && (status = stop_before_start(&sv)) != 0) {
        summary(&sv, status);
    } else if (status == CONVEYOR_EXIT_OK) {
        sv.pids = cv_calloc(sv.nprocs, sizeof *sv.pids);
        sv.killed = cv_calloc(sv.nprocs, sizeof *sv.killed);
        sv.in_row = cv_calloc(sv.nprocs, sizeof *sv.in_row);
        sv.done_at_crash = cv_calloc(sv.nprocs, sizeof *sv.done_at_crash);
        sv.restarts_of = cv_calloc(sv.nprocs, sizeof *sv.restarts_of);
        each_child(&sv, remember_child);
        observe_start(&sv);
        fork_all(&sv);
        supervise(&sv);
        kill_strays(&sv);
        for (size_t i = 0; i < sv.nstrays; i++)
            waitpid(sv.strays[i], NULL, 0);     /* killed just now: gone at once */
        status = exit_status(&sv);
        observe_end(&sv, status);
        summary(&sv, status);
    }
    cv_metrics_stop(sv.metrics);
    cv_run_destroy(&sv.run);
    free(sv.pids);
    free(sv.killed);
    free(sv.in_row);
    free(sv.done_at_crash);
    free(sv.restarts_of);
    free(sv.before);
    free(sv.strays);
    cv_title_restore();
    give_back_signals(&sv);
    return status;
}
