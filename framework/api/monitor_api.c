/* SPDX-License-Identifier: MIT */
/*
 * monitor_api.c - watching a running pipeline from another process
 * (conveyor/host.h: conveyor_monitor_*), over the metrics segment every
 * host publishes (run/metrics.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conveyor/host.h>
#include "base/util.h"
#include "run/metrics.h"

struct conveyor_monitor {
    cv_mreader *reader;
    long pid;
};

int conveyor_monitor_list(long *pids, size_t max)
{
    pid_t *found = cv_calloc(max + 1, sizeof *found);
    int n = cv_metrics_list(found, max);
    for (int i = 0; i < n && (size_t)i < max; i++)
        pids[i] = found[i];
    free(found);
    return n;
}

int conveyor_monitor_open(long pid, conveyor_monitor **out, char *err, size_t errlen)
{
    cv_mreader *rd = NULL;
    *out = NULL;
    int rc = pid > 0 && pid <= INT32_MAX ? cv_mreader_open((pid_t)pid, &rd) : -ENOENT;
    if (rc < 0) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "no pipeline is running with host pid %ld", pid);
        else
            snprintf(err, errlen, "cannot read the metrics of host pid %ld: %s", pid,
                     strerror(-rc));
        return CONVEYOR_EXIT_FAILED;
    }
    conveyor_monitor *m = cv_calloc(1, sizeof *m);
    m->reader = rd;
    m->pid = pid;
    *out = m;
    return CONVEYOR_EXIT_OK;
}

static void brief(const cv_mhead *h, FILE *out)
{
    unsigned long t = (unsigned long)(h->wall_ns / 1000000000u);
    fprintf(out, "%" PRId64 "  %-8s %lu:%02lu:%02lu  %s  %" PRIu64 " read, %" PRIu64 " written\n",
            h->host_pid, cv_mstate_name(h->state), t / 3600, t / 60 % 60, t % 60, h->config,
            h->items_read, h->items_written);
}

int conveyor_monitor_write(conveyor_monitor *m, int format, FILE *out)
{
    const cv_mhead *h = cv_mreader_read(m->reader);
    if (!h)
        return -errno;
    /* A host killed with SIGKILL leaves a snapshot that says "running". */
    if (h->state != CV_MSTATE_ENDED && kill((pid_t)m->pid, 0) < 0 && errno == ESRCH)
        return -ESRCH;
    switch (format) {
    case CONVEYOR_MONITOR_JSON: cv_metrics_write_json(h, out); break;
    case CONVEYOR_MONITOR_PROMETHEUS: cv_metrics_write_prom(h, out); break;
    case CONVEYOR_MONITOR_BRIEF: brief(h, out); break;
    default: cv_metrics_write_text(h, out); break;
    }
    return h->state == CV_MSTATE_ENDED ? 0 : 1;
}

void conveyor_monitor_close(conveyor_monitor *m)
{
    if (!m)
        return;
    cv_mreader_close(m->reader);
    free(m);
}
