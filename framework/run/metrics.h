/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - live metrics of a running pipeline: what the host samples ten
 * times a second from the shared counters, the segment it publishes them
 * in for conveyor-host --top, and the formats they are written in (text,
 * JSON, Prometheus text, the --progress line).
 *
 * The host owns a small POSIX shm object, "/conveyor.PID.metrics" (PID the
 * host's), mode 0644: other users may read it, only the host writes it.  It
 * is flock()ed while the host lives, like the user's segment, so the sweep
 * and --cleanup remove it when the host died without doing so; the host
 * removes it on every other way out.  Its contents are a fixed prefix
 * (magic, version, size, a generation counter) and a snapshot: a cv_mhead,
 * the processes (cv_mproc) and the channels (cv_mchan).  The host writes a
 * whole snapshot between two increments of the generation (odd while it
 * writes); a reader copies it and keeps the copy only when the generation
 * was even and unchanged around the copy.
 */
#ifndef CV_METRICS_H
#define CV_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CV_METRICS_VERSION 1
#define CV_M_NAME 64

/* The pipeline's state (cv_mhead.state). */
enum { CV_MSTATE_RUNNING, CV_MSTATE_DRAINING, CV_MSTATE_STOPPING, CV_MSTATE_ENDED };

/* A process's state (cv_mproc.state). */
enum { CV_MPROC_WAITING, CV_MPROC_RUNNING, CV_MPROC_ENDED };

typedef struct cv_mproc {
    char label[CV_M_NAME];      /* "source", "upper", "upper[1]", "sink" */
    char stage[CV_M_NAME];      /* the stage's name; "" for the source and the sink */
    int32_t kind;               /* CV_PROC_* */
    uint32_t replica;
    int64_t pid;                /* 0 when it is not running */
    uint32_t state;             /* CV_MPROC_* */
    uint32_t bottleneck;        /* the busiest process, and busy */
    uint64_t items_in, items_out, bytes_in, bytes_out, failed, restarts;
    uint64_t current;           /* the item in process(), 0 when none */
    uint64_t current_ns;        /* how long it has had that item (a tenth of a second) */
    uint64_t wall_ns, busy_ns, wait_in_ns, wait_out_ns;
    uint64_t queued;            /* items waiting in its input channels */
    double rate_in, rate_out;   /* items/s over the last second */
    double util;                /* busy / wall over the last second */
    double fill;                /* its input channels' fill, 0..1; -1 unknown (pipes) */
} cv_mproc;

typedef struct cv_mchan {
    int32_t from, to;           /* process indices */
    uint64_t sent, received;
    int64_t fill_bytes;         /* bytes in it now; -1: the transport does not say */
    int64_t capacity_bytes;     /* -1: the transport does not say */
} cv_mchan;

typedef struct cv_mhead {
    char pipeline[CV_M_NAME];   /* the INI file's name without .ini */
    char config[512];           /* the INI file as given */
    char transport[8];
    int64_t host_pid;
    uint32_t nprocs, nchans;
    uint32_t state;             /* CV_MSTATE_* */
    int32_t status;             /* the exit status once ended */
    uint64_t wall_ns;           /* since the run started */
    uint64_t started_unix_ms;
    uint64_t items_read, items_written, bytes_read, bytes_written, in_flight;
    int64_t input_size;         /* bytes to read, or -1 (not a regular file) */
    double rate_read, rate_written;
    uint64_t samples;
} cv_mhead;

static inline cv_mproc *cv_mhead_procs(const cv_mhead *h)
{
    return (cv_mproc *)(void *)(h + 1);
}

static inline cv_mchan *cv_mhead_chans(const cv_mhead *h)
{
    return (cv_mchan *)(void *)(cv_mhead_procs(h) + h->nprocs);
}

/* Bytes of a snapshot with NPROCS processes and NCHANS channels. */
size_t cv_mhead_size(uint32_t nprocs, uint32_t nchans);

/* "running", "draining", "stopping", "ended". */
const char *cv_mstate_name(unsigned state);

/* --- formats ------------------------------------------------------------ */

/* top's screen: a header and a row per process. */
void cv_metrics_write_text(const cv_mhead *h, FILE *out);
/* One JSON object and a newline. */
void cv_metrics_write_json(const cv_mhead *h, FILE *out);
/* Prometheus text exposition format, with # HELP and # TYPE lines. */
void cv_metrics_write_prom(const cv_mhead *h, FILE *out);
/* Writes the Prometheus text to PATH atomically: a file next to it, then
 * rename().  0 or -errno. */
int cv_metrics_write_prom_file(const cv_mhead *h, const char *path);
/* The --progress line, without a newline. */
void cv_metrics_progress_line(const cv_mhead *h, char *buf, size_t n);

/* --- reading another host's metrics (--top) ---------------------------- */

typedef struct cv_mreader cv_mreader;

/* Attaches read-only to the metrics of host PID.  0, or -ENOENT (no such
 * running pipeline), or another -errno. */
int cv_mreader_open(pid_t pid, cv_mreader **out);
/* A consistent copy of the newest snapshot (valid until the next call).
 * NULL when none could be taken (errno set). */
const cv_mhead *cv_mreader_read(cv_mreader *m);
void cv_mreader_close(cv_mreader *m);

/* Hosts whose metrics can be read: up to MAX pids into PIDS, sorted; how
 * many there are (may exceed MAX), or -errno. */
int cv_metrics_list(pid_t *pids, size_t max);

#endif
