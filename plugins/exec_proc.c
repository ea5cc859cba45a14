/* SPDX-License-Identifier: MIT */
/*
 * exec_proc.c - starting, waiting for and ending an exec stage's program
 * (exec_proc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec_proc.h"

long long exec_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void close_pair(int fds[2])
{
    close_fd(&fds[0]);
    close_fd(&fds[1]);
}

/* The stage's process ignores the terminal's signals and SIGPIPE and
 * blocks the host's: a program gets none of that. */
static void default_signals(void)
{
    struct sigaction dfl;
    sigset_t none;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Every descriptor above 2 closes at the exec: the framework's are
 * close-on-exec already, and this also covers any a caller passed on. */
static void close_on_exec_above_stderr(void)
{
#if defined(SYS_close_range) && defined(CLOSE_RANGE_CLOEXEC)
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* In the child: makes FD descriptor TARGET, inheritable. */
static int move_to(int fd, int target)
{
    if (fd == target)
        return fcntl(fd, F_SETFD, 0);
    return dup2(fd, target) < 0 ? -1 : 0;
}

/* The child between fork and exec: only async-signal-safe calls. */
_Noreturn static void child(char *const *argv, int in, int out, int err, int report,
                            pid_t parent)
{
    int e;

    (void)setpgid(0, 0);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    default_signals();
    if (move_to(in, STDIN_FILENO) < 0 || move_to(out, STDOUT_FILENO) < 0 ||
        move_to(err, STDERR_FILENO) < 0) {
        e = errno;
    } else {
        close_on_exec_above_stderr();
        execvp(argv[0], argv);
        e = errno;
    }
    /* The parent reads this; at a successful exec the pipe just closes. */
    while (write(report, &e, sizeof e) < 0 && errno == EINTR)
        ;
    _exit(127);
}

/* Reads what the child reported: 0 when the exec succeeded, else -errno. */
static int exec_result(int report)
{
    int e = 0;
    ssize_t n;

    do
        n = read(report, &e, sizeof e);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof e)
        return -(e ? e : EIO);
    return n < 0 ? -errno : 0;
}

int exec_proc_start(exec_proc *p, char *const *argv)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
    pid_t parent = getpid();
    int rc;

    memset(p, 0, sizeof *p);
    p->in_fd = p->out_fd = p->err_fd = -1;
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
        pipe2(report, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    p->pid = fork();
    if (p->pid < 0) {
        rc = -errno;
        p->pid = 0;
        goto fail;
    }
    if (p->pid == 0)
        child(argv, in[0], out[1], err[1], report[1], parent);
    (void)setpgid(p->pid, p->pid);     /* whichever of the two comes first */
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    close_fd(&report[1]);
    rc = exec_result(report[0]);
    close_fd(&report[0]);
    if (rc < 0) {
        exec_proc_wait(p, -1);
        p->pid = 0;
        goto fail;
    }
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
    return 0;

fail:
    close_pair(in);
    close_pair(out);
    close_pair(err);
    close_pair(report);
    return rc;
}

int exec_proc_wait(exec_proc *p, long limit_ms)
{
    long long deadline = limit_ms < 0 ? 0 : exec_now_ms() + limit_ms;
    long nap_ms = 1;

    if (p->reaped || p->pid <= 0)
        return 1;
    for (;;) {
        pid_t w = waitpid(p->pid, &p->status, limit_ms < 0 ? 0 : WNOHANG);
        if (w == p->pid) {
            p->reaped = 1;
            return 1;
        }
        if (w < 0 && errno != EINTR) {
            /* Not ours to wait for any more: count it as ended. */
            p->status = 0;
            p->reaped = 1;
            return 1;
        }
        if (w == 0) {
            long long left = deadline - exec_now_ms();
            struct timespec ts;
            if (left <= 0)
                return 0;
            if (nap_ms > left)
                nap_ms = (long)left;
            ts.tv_sec = nap_ms / 1000;
            ts.tv_nsec = (nap_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
            if (nap_ms < 20)
                nap_ms *= 2;
        }
    }
}

/* Signals the program's process group (what a shell command started goes
 * too), or the program alone if the group is not there yet. */
static void signal_program(exec_proc *p, int sig)
{
    if (kill(-p->pid, sig) < 0)
        (void)kill(p->pid, sig);
}

void exec_proc_kill(exec_proc *p)
{
    if (p->pid <= 0 || p->reaped)
        return;
    signal_program(p, SIGTERM);
    if (exec_proc_wait(p, EXEC_GRACE_MS))
        return;
    signal_program(p, SIGKILL);
    exec_proc_wait(p, -1);
}

void exec_proc_close(exec_proc *p)
{
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
}

static const char *signal_name(int sig)
{
    static const struct { int sig; const char *name; } names[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
        {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    };

    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (names[i].sig == sig)
            return names[i].name;
    return NULL;
}

const char *exec_status_text(int status, char *buf, size_t n)
{
    if (WIFEXITED(status)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        const char *name = signal_name(WTERMSIG(status));
        if (name)
            snprintf(buf, n, "was killed by %s", name);
        else
            snprintf(buf, n, "was killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(buf, n, "ended (wait status %#x)", (unsigned)status);
    }
    return buf;
}
