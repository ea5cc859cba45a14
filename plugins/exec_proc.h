/* SPDX-License-Identifier: MIT */
/*
 * exec_proc.h - the program an exec stage runs: started with fork and
 * execvp, with pipes for its standard input, output and error and no other
 * descriptor, default signal dispositions, an empty signal mask, a process
 * group of its own (terminal signals are the host's to coordinate) and
 * SIGKILL when the stage's process dies; then waited for, or ended.
 */
#ifndef CONVEYOR_PLUGINS_EXEC_PROC_H
#define CONVEYOR_PLUGINS_EXEC_PROC_H

#include <stddef.h>
#include <sys/types.h>

/* How long a program asked to end with SIGTERM has before SIGKILL. */
#define EXEC_GRACE_MS 1000

typedef struct exec_proc {
    pid_t pid;                  /* 0 when none */
    int in_fd, out_fd, err_fd;  /* this side's ends; -1 once closed */
    int reaped;                 /* the program has ended and been waited for */
    int status;                 /* its wait status, once reaped */
} exec_proc;

/* Starts ARGV[0] (searched in PATH) with ARGV.  Returns 0, or -errno: what
 * made the exec fail in the child (ENOENT, EACCES, ...), reported through
 * a close-on-exec pipe, or what made the pipes or the fork fail.  The ends
 * kept here are close-on-exec and non-blocking. */
int exec_proc_start(exec_proc *p, char *const *argv);

/* Waits for the program to end, at most LIMIT_MS milliseconds (-1: as
 * long as it takes).  1 when it has ended (p->status is set), else 0. */
int exec_proc_wait(exec_proc *p, long limit_ms);

/* Ends the program: SIGTERM to its process group, EXEC_GRACE_MS to end,
 * then SIGKILL; waits for it.  Nothing when it has ended already. */
void exec_proc_kill(exec_proc *p);

/* Closes the ends still open. */
void exec_proc_close(exec_proc *p);

/* "exited with status N", "was killed by SIGSEGV", in BUF. */
const char *exec_status_text(int status, char *buf, size_t n);

/* Milliseconds on the monotonic clock. */
long long exec_now_ms(void);

#endif
