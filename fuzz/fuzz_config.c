/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - fuzz target for pipeline.ini: parsing (config.c, through
 * inih), graph checks and compilation (load/plan.c) and the DOT picture.
 *
 * Besides crashes, leaks and hangs, which the sanitizers and libFuzzer see,
 * it checks what config.h and plan.h promise: a refused file gets a
 * "fuzz.ini:LINE: ..." message whose line is in the file, and an accepted
 * one compiles to a plan whose channels and routes hang together.  The same
 * bytes are also read as a file (a memfd), which sees NUL bytes the string
 * loader stops at, and must be judged exactly as the string was.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "load/config.h"
#include "load/plan.h"
#include "fuzz.h"

#define PATH "fuzz.ini"

static void broken(const char *what, const char *detail) __attribute__((noreturn));

static void broken(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* A refusal must say where: "PATH:LINE: text", LINE within the file (one
 * past its last line is allowed for "ends too early" messages). */
static void check_message(const char *err, const char *path, int lines, const char *stage)
{
    const char *p = err;
    size_t plen = strlen(path);
    long line = 0;

    if (strncmp(p, path, plen) != 0 || p[plen] != ':')
        broken(stage, err[0] ? err : "(empty message)");
    p += plen + 1;
    if (!isdigit((unsigned char)*p))
        broken(stage, err);
    while (isdigit((unsigned char)*p) && line <= 1000000)
        line = line * 10 + (*p++ - '0');
    if (line < 1 || line > lines + 1 || strncmp(p, ": ", 2) != 0 || p[2] == '\0')
        broken(stage, err);
}

/* Every channel a route leads to leaves from PROC. */
static void check_route(const cv_plan *pl, const cv_route *r, size_t proc)
{
    if (r == NULL)
        broken("a route is NULL", pl->procs[proc].label);
    if (r->kind == CV_ROUTE_CHANNEL) {
        if (r->channel < 0 || (size_t)r->channel >= pl->nchans ||
            pl->chans[r->channel].from != (int)proc)
            broken("a route leads to a channel of another process", pl->procs[proc].label);
        return;
    }
    if (r->nkids == 0)
        broken("a fork route has no branches", pl->procs[proc].label);
    for (size_t i = 0; i < r->nkids; i++)
        check_route(pl, r->kids[i], proc);
}

static void check_plan(const cv_plan *pl, const cv_config *cfg)
{
    if (pl->cfg != cfg || pl->nprocs < 2 || pl->procs[0].kind != CV_PROC_SOURCE ||
        pl->procs[pl->nprocs - 1].kind != CV_PROC_SINK)
        broken("the plan does not run from the source to the sink", NULL);
    for (size_t c = 0; c < pl->nchans; c++) {
        const cv_chan_desc *ch = &pl->chans[c];
        if (ch->from < 0 || (size_t)ch->from + 1 >= pl->nprocs || ch->to <= 0 ||
            (size_t)ch->to >= pl->nprocs)
            broken("a channel has no valid ends", NULL);
    }
    size_t inputs = 0;
    for (size_t p = 0; p < pl->nprocs; p++) {
        const cv_proc *pr = &pl->procs[p];
        if (pr->label == NULL)
            broken("a process has no label", NULL);
        if (pr->kind == CV_PROC_STAGE &&
            (pr->stage < 0 || (size_t)pr->stage >= cfg->nstages ||
             cfg->stages[pr->stage].type != CV_TYPE_PROCESSOR))
            broken("a stage process runs no processor", pr->label);
        if ((pr->kind == CV_PROC_SINK) != (pr->out == NULL))
            broken("only the sink has no output route", pr->label);
        if (pr->out)
            check_route(pl, pr->out, p);
        if ((pr->kind == CV_PROC_SOURCE) != (pr->ninputs == 0))
            broken("only the source has no inputs", pr->label);
        for (size_t i = 0; i < pr->ninputs; i++)
            if (pr->inputs[i] < 0 || (size_t)pr->inputs[i] >= pl->nchans ||
                pl->chans[pr->inputs[i]].to != (int)p)
                broken("a process reads a channel that is not its own", pr->label);
        inputs += pr->ninputs;
    }
    if (inputs != pl->nchans)
        broken("some channel is read by no process", NULL);
}

/* Reads DATA as a file, through /proc/self/fd of a memfd made once.
 * Without NUL bytes the verdict and message (but for the file name) must be
 * those of the string loader, STR_RC and STR_ERR; with one, a refusal. */
static void check_file_load(const uint8_t *data, size_t size, int str_rc, const char *str_err)
{
    static int fd = -1;
    static char path[64];
    char err[CV_ERR_MAX];
    cv_config *cfg = NULL;
    int lines = 1, rc;

    if (fd < 0) {
        if ((fd = memfd_create("fuzz.ini", MFD_CLOEXEC)) < 0)
            broken("memfd_create failed", NULL);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        broken("cannot write the memfd", NULL);
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    rc = cv_config_load(path, &cfg, err, sizeof err);
    if ((rc == 0) != (cfg != NULL) || rc > 0)
        broken("cv_config_load's result and *out disagree", err);
    if (memchr(data, '\0', size) != NULL) {
        if (rc == 0)
            broken("cv_config_load accepted a file with a NUL byte", NULL);
        check_message(err, path, lines, "cv_config_load refused the file without FILE:LINE");
        return;
    }
    if (rc != str_rc)
        broken("cv_config_load and cv_config_load_string disagree",
               rc < 0 ? err : str_err);
    if (rc < 0 && strcmp(err + strlen(path), str_err + strlen(PATH)) != 0)
        broken("cv_config_load and cv_config_load_string word it differently", err);
    cv_config_free(cfg);
}

int cv_fuzz_config_one(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    char err[CV_ERR_MAX];
    cv_config *cfg = (cv_config *)&err;    /* not NULL: a failure must clear it */
    cv_plan *pl = (cv_plan *)&err;
    char *text;
    int lines = 1, rc;

    if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
        broken("cannot open /dev/null", NULL);

    /* The string loader sees the bytes up to the first NUL (the file
     * loader, in check_file_load, sees them all). */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    if (size)
        memcpy(text, data, size);
    text[size] = '\0';
    for (const char *s = text; (s = strchr(s, '\n')) != NULL; s++)
        lines++;

    err[0] = '\0';
    rc = cv_config_load_string(PATH, text, &cfg, err, sizeof err);
    if ((rc == 0) != (cfg != NULL) || rc > 0)
        broken("cv_config_load_string's result and *out disagree", err);
    check_file_load(data, size, rc, err);
    if (rc < 0) {
        check_message(err, PATH, lines, "cv_config_load_string refused the file without FILE:LINE");
        free(text);
        return 0;
    }

    err[0] = '\0';
    rc = cv_plan_build(cfg, &pl, err, sizeof err);
    if ((rc == 0) != (pl != NULL) || rc > 0)
        broken("cv_plan_build's result and *out disagree", err);
    if (rc < 0) {
        check_message(err, PATH, lines, "cv_plan_build refused the graph without FILE:LINE");
    } else {
        check_plan(pl, cfg);
        if (cv_plan_write_dot(pl, devnull) != 0)
            broken("cv_plan_write_dot failed on /dev/null", NULL);
        cv_plan_free(pl);
    }
    cv_config_free(cfg);
    free(text);
    return 0;
}

#ifndef CV_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return cv_fuzz_config_one(data, size);
}
#endif
