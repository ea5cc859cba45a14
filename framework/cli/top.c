/* SPDX-License-Identifier: MIT */
/*
 * top.c - conveyor-host --top: attaches read-only to a running pipeline's
 * metrics (conveyor_monitor_*) and shows them: redrawn every second, or
 * once (--once) as text or JSON (--json).  Attaching never disturbs the
 * pipeline: the host publishes its metrics whether anyone reads them or not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <conveyor/host.h>
#include "cli/top.h"

#define MAX_LISTED 256

/* No pid given: the only running pipeline's, else 0 with the status to
 * exit with in *STATUS. */
static long only_pipeline(int *status)
{
    long pids[MAX_LISTED];
    int n = conveyor_monitor_list(pids, MAX_LISTED);
    if (n < 0) {
        conveyor_message("--top: cannot look for running pipelines: %s", strerror(-n));
        *status = CONVEYOR_EXIT_FAILED;
        return 0;
    }
    if (n == 0) {
        conveyor_message("--top: no pipeline is running");
        *status = CONVEYOR_EXIT_FAILED;
        return 0;
    }
    if (n == 1)
        return pids[0];
    conveyor_message("--top: %d pipelines are running; name one by its host pid: "
                     "conveyor-host --top PID", n);
    for (int i = 0; i < n && i < MAX_LISTED; i++) {
        conveyor_monitor *m;
        char err[256];
        if (conveyor_monitor_open(pids[i], &m, err, sizeof err) != CONVEYOR_EXIT_OK)
            continue;       /* it ended meanwhile */
        (void)conveyor_monitor_write(m, CONVEYOR_MONITOR_BRIEF, stdout);
        conveyor_monitor_close(m);
    }
    *status = CONVEYOR_EXIT_CONFIG;
    return 0;
}

static int gone(long pid)
{
    conveyor_message("--top: the host of pid %ld is gone without ending its pipeline "
                     "(killed?); conveyor-host --cleanup removes what it left", pid);
    return CONVEYOR_EXIT_FAILED;
}

int cv_top(long pid, int once, int json)
{
    int status = CONVEYOR_EXIT_OK;
    if (pid == 0 && (pid = only_pipeline(&status)) == 0)
        return status;
    conveyor_monitor *m;
    char err[256];
    if (conveyor_monitor_open(pid, &m, err, sizeof err) != CONVEYOR_EXIT_OK) {
        conveyor_message("--top: %s", err);
        return CONVEYOR_EXIT_FAILED;
    }
    int format = json ? CONVEYOR_MONITOR_JSON : CONVEYOR_MONITOR_TEXT;
    int screen = !once && !json && isatty(STDOUT_FILENO);
    for (;;) {
        if (screen)
            fputs("\033[H\033[2J", stdout);     /* home, clear */
        int rc = conveyor_monitor_write(m, format, stdout);
        fflush(stdout);
        if (rc == -ESRCH) {
            status = gone(pid);
            break;
        }
        if (rc < 0) {
            conveyor_message("--top: reading the metrics of host pid %ld: %s", pid,
                             strerror(-rc));
            status = CONVEYOR_EXIT_FAILED;
            break;
        }
        if (rc == 0 || once)
            break;      /* ended: the last snapshot says how */
        if (!screen && !json)
            fputc('\n', stdout);
        struct timespec second = {1, 0};
        nanosleep(&second, NULL);
    }
    conveyor_monitor_close(m);
    return status;
}
