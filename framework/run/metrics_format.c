/* SPDX-License-Identifier: MIT */
/*
 * metrics_format.c - a metrics snapshot (metrics.h) written out: top's
 * screen, JSON for scripts, Prometheus text for the node_exporter textfile
 * collector (written atomically), and the one-line --progress.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "load/plan.h"
#include "run/metrics.h"

static const char *kind_name(int kind)
{
    switch (kind) {
    case CV_PROC_SOURCE: return "source";
    case CV_PROC_SINK: return "sink";
    default: return "stage";
    }
}

/* "12.3 MiB" */
static const char *human_bytes(uint64_t b, char *buf, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    unsigned u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

/* "1:02:03" or "2:03" */
static const char *human_secs(double s, char *buf, size_t n)
{
    unsigned long t = s > 0 ? (unsigned long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
    return buf;
}

/* "45.2 k/s" */
static const char *human_rate(double r, char *buf, size_t n)
{
    if (r >= 1e6)
        snprintf(buf, n, "%.2f M/s", r / 1e6);
    else if (r >= 1e4)
        snprintf(buf, n, "%.1f k/s", r / 1e3);
    else
        snprintf(buf, n, "%.0f /s", r);
    return buf;
}

/* The input read so far, in percent, or -1 when its size is unknown. */
static double percent_read(const cv_mhead *h)
{
    if (h->input_size <= 0)
        return h->input_size == 0 ? 100.0 : -1.0;
    double pc = 100.0 * (double)h->bytes_read / (double)h->input_size;
    return pc > 100.0 ? 100.0 : pc;
}

/* --- text (top) ------------------------------------------------------- */

void cv_metrics_write_text(const cv_mhead *h, FILE *out)
{
    char b1[32], b2[32];
    double secs = (double)h->wall_ns / 1e9;
    fprintf(out, "conveyor-host %" PRId64 ": %s (%s), %s", h->host_pid, h->pipeline, h->config,
            cv_mstate_name(h->state));
    if (h->state == CV_MSTATE_ENDED)
        fprintf(out, " with status %d", h->status);
    fprintf(out, ", %s, %s\n", human_secs(secs, b1, sizeof b1), h->transport);
    fprintf(out, "read %" PRIu64 " (%s", h->items_read, human_bytes(h->bytes_read, b1, sizeof b1));
    double pc = percent_read(h);
    if (pc >= 0)
        fprintf(out, ", %.0f %%", pc);
    fprintf(out, "), written %" PRIu64 ", %s, in flight %" PRIu64 "\n\n", h->items_written,
            human_rate(h->rate_read, b2, sizeof b2), h->in_flight);
    fprintf(out, "%-20s %8s %11s %11s %5s %7s %12s %12s %7s %4s  %s\n", "PROCESS", "PID", "IN",
            "OUT", "UTIL", "QUEUE", "ITEMS IN", "ITEMS OUT", "FAILED", "RST", "ITEM (AGE)");
    const cv_mproc *mp = cv_mhead_procs(h);
    for (uint32_t p = 0; p < h->nprocs; p++) {
        char queue[16], item[48] = "";
        if (mp[p].kind == CV_PROC_SOURCE)
            snprintf(queue, sizeof queue, "-");
        else if (mp[p].fill >= 0)
            snprintf(queue, sizeof queue, "%.0f%%", 100.0 * mp[p].fill);
        else
            snprintf(queue, sizeof queue, "%" PRIu64, mp[p].queued);
        if (mp[p].current)
            snprintf(item, sizeof item, "%" PRIu64 " (%.1f s)", mp[p].current,
                     (double)mp[p].current_ns / 1e9);
        char pid[16];
        if (mp[p].pid)
            snprintf(pid, sizeof pid, "%" PRId64, mp[p].pid);
        else
            snprintf(pid, sizeof pid, "%s", mp[p].state == CV_MPROC_ENDED ? "ended" : "-");
        fprintf(out, "%-20.20s %8s %11s %11s %4.0f%% %7s %12" PRIu64 " %12" PRIu64 " %7" PRIu64
                " %4" PRIu64 "  %s%s\n",
                mp[p].label, pid, human_rate(mp[p].rate_in, b1, sizeof b1),
                human_rate(mp[p].rate_out, b2, sizeof b2), 100.0 * mp[p].util, queue,
                mp[p].items_in, mp[p].items_out, mp[p].failed, mp[p].restarts, item,
                mp[p].bottleneck ? "  <- bottleneck" : "");
    }
}

/* --- JSON ------------------------------------------------------------- */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void json_proc(FILE *out, const cv_mhead *h, const cv_mproc *p)
{
    static const char *const states[] = {"waiting", "running", "ended"};
    (void)h;
    fprintf(out, "{\"name\":");
    json_string(out, p->label);
    fprintf(out, ",\"stage\":");
    json_string(out, p->stage);
    fprintf(out, ",\"kind\":\"%s\",\"replica\":%u,\"pid\":%" PRId64 ",\"state\":\"%s\"",
            kind_name(p->kind), p->replica, p->pid, states[p->state < 3 ? p->state : 0]);
    fprintf(out, ",\"items_in\":%" PRIu64 ",\"items_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64
            ",\"bytes_out\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"restarts\":%" PRIu64,
            p->items_in, p->items_out, p->bytes_in, p->bytes_out, p->failed, p->restarts);
    if (p->current)
        fprintf(out, ",\"current\":%" PRIu64 ",\"current_age_s\":%.3f", p->current,
                (double)p->current_ns / 1e9);
    else
        fprintf(out, ",\"current\":null,\"current_age_s\":null");
    fprintf(out, ",\"wall_s\":%.3f,\"busy_s\":%.3f,\"wait_input_s\":%.3f,\"wait_output_s\":%.3f"
            ",\"utilization\":%.3f,\"rate_in\":%.1f,\"rate_out\":%.1f,\"queued\":%" PRIu64,
            (double)p->wall_ns / 1e9, (double)p->busy_ns / 1e9, (double)p->wait_in_ns / 1e9,
            (double)p->wait_out_ns / 1e9, p->util, p->rate_in, p->rate_out, p->queued);
    if (p->fill >= 0)
        fprintf(out, ",\"fill\":%.3f", p->fill);
    else
        fprintf(out, ",\"fill\":null");
    fprintf(out, ",\"bottleneck\":%s}", p->bottleneck ? "true" : "false");
}

void cv_metrics_write_json(const cv_mhead *h, FILE *out)
{
    fprintf(out, "{\"host_pid\":%" PRId64 ",\"pipeline\":", h->host_pid);
    json_string(out, h->pipeline);
    fprintf(out, ",\"config\":");
    json_string(out, h->config);
    fprintf(out, ",\"transport\":\"%s\",\"state\":\"%s\",", h->transport,
            cv_mstate_name(h->state));
    if (h->state == CV_MSTATE_ENDED)
        fprintf(out, "\"status\":%d", h->status);
    else
        fprintf(out, "\"status\":null");
    fprintf(out, ",\"elapsed_s\":%.3f,\"started_unix_ms\":%" PRIu64 ",\"samples\":%" PRIu64
            ",\"items_read\":%" PRIu64 ",\"items_written\":%" PRIu64 ",\"bytes_read\":%" PRIu64
            ",\"bytes_written\":%" PRIu64 ",\"in_flight\":%" PRIu64 ",\"rate_read\":%.1f"
            ",\"rate_written\":%.1f",
            (double)h->wall_ns / 1e9, h->started_unix_ms, h->samples, h->items_read,
            h->items_written, h->bytes_read, h->bytes_written, h->in_flight, h->rate_read,
            h->rate_written);
    double pc = percent_read(h);
    if (h->input_size >= 0)
        fprintf(out, ",\"input_size\":%" PRId64 ",\"percent\":%.1f", h->input_size, pc);
    else
        fprintf(out, ",\"input_size\":null,\"percent\":null");
    fprintf(out, ",\"processes\":[");
    const cv_mproc *mp = cv_mhead_procs(h);
    for (uint32_t p = 0; p < h->nprocs; p++) {
        if (p)
            fputc(',', out);
        json_proc(out, h, &mp[p]);
    }
    fprintf(out, "],\"channels\":[");
    const cv_mchan *mc = cv_mhead_chans(h);
    for (uint32_t c = 0; c < h->nchans; c++) {
        fprintf(out, "%s{\"from\":", c ? "," : "");
        json_string(out, mp[mc[c].from].label);
        fprintf(out, ",\"to\":");
        json_string(out, mp[mc[c].to].label);
        fprintf(out, ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64, mc[c].sent, mc[c].received);
        if (mc[c].fill_bytes >= 0)
            fprintf(out, ",\"fill_bytes\":%" PRId64 ",\"capacity_bytes\":%" PRId64 "}",
                    mc[c].fill_bytes, mc[c].capacity_bytes);
        else
            fprintf(out, ",\"fill_bytes\":null,\"capacity_bytes\":null}");
    }
    fprintf(out, "]}\n");
}

/* --- Prometheus ------------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped. */
static void prom_label(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

static void prom_head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric per stage replica: FIELD's offset in cv_mproc, as a count or
 * (SECONDS) nanoseconds in seconds. */
static void prom_stage_metric(FILE *out, const cv_mhead *h, const char *name, const char *type,
                              const char *help, size_t off, int seconds)
{
    prom_head(out, name, type, help);
    const cv_mproc *mp = cv_mhead_procs(h);
    for (uint32_t p = 0; p < h->nprocs; p++) {
        if (mp[p].kind != CV_PROC_STAGE)
            continue;
        uint64_t v;
        memcpy(&v, (const char *)&mp[p] + off, sizeof v);
        fprintf(out, "%s{pipeline=", name);
        prom_label(out, h->pipeline);
        fprintf(out, ",stage=");
        prom_label(out, mp[p].stage);
        fprintf(out, ",replica=\"%u\"} ", mp[p].replica);
        if (seconds)
            fprintf(out, "%.6f\n", (double)v / 1e9);
        else
            fprintf(out, "%" PRIu64 "\n", v);
    }
}

static void prom_chan_labels(FILE *out, const cv_mhead *h, const cv_mchan *c)
{
    const cv_mproc *mp = cv_mhead_procs(h);
    fputs("{pipeline=", out);
    prom_label(out, h->pipeline);
    fputs(",from=", out);
    prom_label(out, mp[c->from].label);
    fputs(",to=", out);
    prom_label(out, mp[c->to].label);
    fputs("} ", out);
}

static void prom_pipeline(FILE *out, const cv_mhead *h, const char *name, const char *type,
                          const char *help, const char *value)
{
    prom_head(out, name, type, help);
    fprintf(out, "%s{pipeline=", name);
    prom_label(out, h->pipeline);
    fprintf(out, "} %s\n", value);
}

#define PROC_OFF(f) offsetof(cv_mproc, f)

void cv_metrics_write_prom(const cv_mhead *h, FILE *out)
{
    char v[48];
    snprintf(v, sizeof v, "%" PRIu64, h->items_read);
    prom_pipeline(out, h, "conveyor_pipeline_items_read_total", "counter",
                  "Items the input reader read.", v);
    snprintf(v, sizeof v, "%" PRIu64, h->items_written);
    prom_pipeline(out, h, "conveyor_pipeline_items_written_total", "counter",
                  "Items the output writer wrote.", v);
    snprintf(v, sizeof v, "%" PRIu64, h->bytes_read);
    prom_pipeline(out, h, "conveyor_pipeline_bytes_read_total", "counter",
                  "Bytes of input read, framing included.", v);
    snprintf(v, sizeof v, "%" PRIu64, h->bytes_written);
    prom_pipeline(out, h, "conveyor_pipeline_bytes_written_total", "counter",
                  "Bytes of output written, framing included.", v);
    snprintf(v, sizeof v, "%.3f", (double)h->wall_ns / 1e9);
    prom_pipeline(out, h, "conveyor_pipeline_elapsed_seconds", "gauge",
                  "Time since the run started.", v);
    snprintf(v, sizeof v, "%d", h->state == CV_MSTATE_ENDED ? 0 : 1);
    prom_pipeline(out, h, "conveyor_pipeline_running", "gauge",
                  "1 while the pipeline runs, 0 once it has ended.", v);
    prom_stage_metric(out, h, "conveyor_stage_items_in_total", "counter",
                      "Items a stage replica received.", PROC_OFF(items_in), 0);
    prom_stage_metric(out, h, "conveyor_stage_items_out_total", "counter",
                      "Items a stage replica emitted.", PROC_OFF(items_out), 0);
    prom_stage_metric(out, h, "conveyor_stage_bytes_in_total", "counter",
                      "Item bytes a stage replica received.", PROC_OFF(bytes_in), 0);
    prom_stage_metric(out, h, "conveyor_stage_bytes_out_total", "counter",
                      "Item bytes a stage replica emitted.", PROC_OFF(bytes_out), 0);
    prom_stage_metric(out, h, "conveyor_stage_failed_total", "counter",
                      "Items a stage replica failed (skipped or dead-lettered).",
                      PROC_OFF(failed), 0);
    prom_stage_metric(out, h, "conveyor_stage_restarts_total", "counter",
                      "Times a stage replica's process was started again.", PROC_OFF(restarts),
                      0);
    prom_stage_metric(out, h, "conveyor_stage_busy_seconds_total", "counter",
                      "Time a stage replica was neither waiting for input nor blocked on output.",
                      PROC_OFF(busy_ns), 1);
    prom_stage_metric(out, h, "conveyor_stage_wait_input_seconds_total", "counter",
                      "Time a stage replica waited for input.", PROC_OFF(wait_in_ns), 1);
    prom_stage_metric(out, h, "conveyor_stage_wait_output_seconds_total", "counter",
                      "Time a stage replica was blocked on a full output.", PROC_OFF(wait_out_ns),
                      1);
    const cv_mchan *mc = cv_mhead_chans(h);
    prom_head(out, "conveyor_channel_items_total", "counter", "Items through a channel.");
    for (uint32_t c = 0; c < h->nchans; c++) {
        fputs("conveyor_channel_items_total", out);
        prom_chan_labels(out, h, &mc[c]);
        fprintf(out, "%" PRIu64 "\n", mc[c].received);
    }
    prom_head(out, "conveyor_channel_queued_items", "gauge", "Items waiting in a channel.");
    for (uint32_t c = 0; c < h->nchans; c++) {
        fputs("conveyor_channel_queued_items", out);
        prom_chan_labels(out, h, &mc[c]);
        fprintf(out, "%" PRIu64 "\n", mc[c].sent > mc[c].received ? mc[c].sent - mc[c].received
                                                                 : 0);
    }
    /* A pipe's bytes are in the kernel: its channels have no fill metrics. */
    prom_head(out, "conveyor_channel_fill_bytes", "gauge", "Bytes a channel holds now.");
    for (uint32_t c = 0; c < h->nchans; c++)
        if (mc[c].fill_bytes >= 0) {
            fputs("conveyor_channel_fill_bytes", out);
            prom_chan_labels(out, h, &mc[c]);
            fprintf(out, "%" PRId64 "\n", mc[c].fill_bytes);
        }
    prom_head(out, "conveyor_channel_capacity_bytes", "gauge", "Bytes a channel can hold.");
    for (uint32_t c = 0; c < h->nchans; c++)
        if (mc[c].capacity_bytes >= 0) {
            fputs("conveyor_channel_capacity_bytes", out);
            prom_chan_labels(out, h, &mc[c]);
            fprintf(out, "%" PRId64 "\n", mc[c].capacity_bytes);
        }
}

int cv_metrics_write_prom_file(const cv_mhead *h, const char *path)
{
    /* In the same folder, so that rename() replaces the file at once and a
     * collector never reads half of it. */
    char *tmp = cv_asprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f) {
        int e = errno;
        free(tmp);
        return -e;
    }
    cv_metrics_write_prom(h, f);
    int rc = 0;
    if (ferror(f))
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* --- --progress ----------------------------------------------------------- */

void cv_metrics_progress_line(const cv_mhead *h, char *buf, size_t n)
{
    char b1[32], b2[32], b3[32], b4[32];
    double secs = (double)h->wall_ns / 1e9;
    int len = snprintf(buf, n, "%" PRIu64 " items read, %" PRIu64 " written, %s, %s, %s",
                       h->items_read, h->items_written, human_rate(h->rate_read, b1, sizeof b1),
                       human_bytes(h->bytes_read, b2, sizeof b2), human_secs(secs, b3, sizeof b3));
    double pc = percent_read(h);
    if (pc >= 0 && len > 0 && (size_t)len < n) {
        char eta[48] = "";
        /* What is left at the pace so far. */
        if (pc > 0 && pc < 100 && h->bytes_read)
            snprintf(eta, sizeof eta, ", ETA %s",
                     human_secs(secs * (100.0 - pc) / pc, b4, sizeof b4));
        snprintf(buf + len, n - (size_t)len, ", %.0f %%%s", pc, eta);
    }
}
