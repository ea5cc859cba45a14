/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c - unit tests of the metrics formats (run/metrics_format.c):
 * Prometheus label and JSON string escaping, the channels a pipe cannot
 * measure, the progress line's percentage and time left, and the atomic
 * write of the metrics file.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load/plan.h"
#include "run/metrics.h"

/* A snapshot of a source, one stage and a sink, two channels. */
static cv_mhead *snapshot(const char *pipeline, const char *config)
{
    cv_mhead *h = calloc(1, cv_mhead_size(3, 2));
    h->nprocs = 3;
    h->nchans = 2;
    snprintf(h->pipeline, sizeof h->pipeline, "%s", pipeline);
    snprintf(h->config, sizeof h->config, "%s", config);
    snprintf(h->transport, sizeof h->transport, "ring");
    h->host_pid = 42;
    h->input_size = -1;
    cv_mproc *p = cv_mhead_procs(h);
    snprintf(p[0].label, sizeof p[0].label, "source");
    p[0].kind = CV_PROC_SOURCE;
    snprintf(p[1].label, sizeof p[1].label, "up");
    snprintf(p[1].stage, sizeof p[1].stage, "up");
    p[1].kind = CV_PROC_STAGE;
    p[1].items_in = 7;
    p[1].busy_ns = 1500000000u;
    snprintf(p[2].label, sizeof p[2].label, "sink");
    p[2].kind = CV_PROC_SINK;
    cv_mchan *c = cv_mhead_chans(h);
    c[0] = (cv_mchan){.from = 0, .to = 1, .sent = 9, .received = 7, .fill_bytes = 64,
                      .capacity_bytes = 4096};
    c[1] = (cv_mchan){.from = 1, .to = 2, .sent = 7, .received = 7, .fill_bytes = -1,
                      .capacity_bytes = -1};
    return h;
}

/* What FN writes for H, as a string (malloc'd). */
static char *written(void (*fn)(const cv_mhead *, FILE *), const cv_mhead *h)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(h, f);
    fclose(f);
    return buf;
}

Test(metrics, prometheus_labels_are_escaped)
{
    cv_mhead *h = snapshot("a\"b\\c", "p.ini");
    char *t = written(cv_metrics_write_prom, h);
    cr_assert(strstr(t, "\nconveyor_stage_items_in_total{pipeline=\"a\\\"b\\\\c\",stage=\"up\","
                        "replica=\"0\"} 7\n"), "%s", t);
    cr_assert(strstr(t, "\nconveyor_stage_busy_seconds_total{pipeline=\"a\\\"b\\\\c\",stage=\"up\","
                        "replica=\"0\"} 1.500000\n"), "%s", t);
    /* Only stage replicas have stage metrics: the source and sink do not. */
    cr_assert_null(strstr(t, "stage=\"\""), "%s", t);
    free(t);
    free(h);
}

Test(metrics, a_channel_without_a_fill_has_no_fill_samples)
{
    cv_mhead *h = snapshot("p", "p.ini");
    char *t = written(cv_metrics_write_prom, h);
    cr_assert(strstr(t, "conveyor_channel_fill_bytes{pipeline=\"p\",from=\"source\",to=\"up\"} 64\n"),
              "%s", t);
    cr_assert(strstr(t, "conveyor_channel_queued_items{pipeline=\"p\",from=\"source\",to=\"up\"} 2\n"),
              "%s", t);
    cr_assert_null(strstr(t, "conveyor_channel_fill_bytes{pipeline=\"p\",from=\"up\""), "%s", t);
    cr_assert_null(strstr(t, "conveyor_channel_capacity_bytes{pipeline=\"p\",from=\"up\""), "%s",
                   t);
    cr_assert(strstr(t, "# TYPE conveyor_channel_capacity_bytes gauge\n"), "%s", t);
    free(t);
    char *j = written(cv_metrics_write_json, h);
    cr_assert(strstr(j, "{\"from\":\"up\",\"to\":\"sink\",\"sent\":7,\"received\":7,"
                        "\"fill_bytes\":null,\"capacity_bytes\":null}"), "%s", j);
    free(j);
    free(h);
}

Test(metrics, json_strings_are_escaped)
{
    cv_mhead *h = snapshot("p", "dir/we\"ird\n.ini");
    char *j = written(cv_metrics_write_json, h);
    cr_assert(strstr(j, "\"config\":\"dir/we\\\"ird\\u000a.ini\""), "%s", j);
    cr_assert(strstr(j, "\"state\":\"running\",\"status\":null"), "%s", j);
    cr_assert_eq(j[strlen(j) - 1], '\n');
    cr_assert_eq(strchr(j, '\n'), j + strlen(j) - 1, "not one line: %s", j);
    free(j);
    h->state = CV_MSTATE_ENDED;
    h->status = 1;
    j = written(cv_metrics_write_json, h);
    cr_assert(strstr(j, "\"state\":\"ended\",\"status\":1"), "%s", j);
    free(j);
    free(h);
}

Test(metrics, progress_line_says_how_much_is_left_of_a_file)
{
    cv_mhead *h = snapshot("p", "p.ini");
    char line[256];
    h->items_read = 1000;
    h->items_written = 990;
    h->bytes_read = 250;
    h->input_size = 1000;
    h->wall_ns = 10000000000u;
    h->rate_read = 100;
    cv_metrics_progress_line(h, line, sizeof line);
    cr_assert_str_eq(line, "1000 items read, 990 written, 100 /s, 250 B, 0:10, 25 %, ETA 0:30");
    h->input_size = -1;
    cv_metrics_progress_line(h, line, sizeof line);
    cr_assert_str_eq(line, "1000 items read, 990 written, 100 /s, 250 B, 0:10");
    free(h);
}

Test(metrics, the_file_is_replaced_whole)
{
    char dir[] = "/tmp/cv-metrics-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/m.prom", dir);
    cv_mhead *h = snapshot("p", "p.ini");
    cr_assert_eq(cv_metrics_write_prom_file(h, path), 0);
    h->items_read = 5;
    cr_assert_eq(cv_metrics_write_prom_file(h, path), 0);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    cr_assert(strstr(buf, "\nconveyor_pipeline_items_read_total{pipeline=\"p\"} 5\n"), "%s", buf);
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += de->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(files, 1, "a temporary file was left");
    unlink(path);
    rmdir(dir);
    snprintf(path, sizeof path, "%s/m.prom", dir);     /* the folder is gone now */
    cr_assert_eq(cv_metrics_write_prom_file(h, path), -ENOENT);
    free(h);
}
