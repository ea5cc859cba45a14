/* SPDX-License-Identifier: MIT */
/*
 * embed_api.c - a pipeline inside a program: the conveyor_run_* calls of
 * conveyor/host.h, over run/embed.c.
 */
#include <errno.h>

#include <conveyor/host.h>
#include "api/host_api.h"
#include "run/embed.h"

/* A conveyor_run is a cv_embed under its public name. */
int conveyor_pipeline_start(conveyor_pipeline *pl, conveyor_run **run)
{
    cv_embed *e;
    *run = NULL;
    int status = cv_embed_start(cv_host_plan(pl), cv_host_stages(pl), &e);
    *run = (conveyor_run *)e;
    return status;
}

#define E(run) ((cv_embed *)(run))

int conveyor_run_push(conveyor_run *run, const void *item, size_t len, int timeout_ms)
{
    return cv_embed_push(E(run), item, len, timeout_ms);
}

uint64_t conveyor_run_pushed(const conveyor_run *run)
{
    return cv_embed_pushed((const cv_embed *)run);
}

int conveyor_run_pull(conveyor_run *run, const void **item, size_t *len, uint64_t *seq,
                      int timeout_ms)
{
    uint64_t s;
    return cv_embed_pull(E(run), item, len, seq ? seq : &s, timeout_ms);
}

int conveyor_run_flush(conveyor_run *run, int timeout_ms)
{
    return cv_embed_flush(E(run), timeout_ms);
}

int conveyor_run_fd(conveyor_run *run)
{
    return cv_embed_fd(E(run));
}

int conveyor_run_batch(conveyor_run *run, const void *const *items, const size_t *lens, size_t n,
                       conveyor_result_fn fn, void *arg)
{
    return cv_embed_batch(E(run), items, lens, n, fn, arg);
}

int conveyor_run_finish(conveyor_run *run)
{
    return cv_embed_finish(E(run));
}

int conveyor_run_stop(conveyor_run *run)
{
    return cv_embed_stop(E(run));
}

const char *conveyor_run_error(const conveyor_run *run)
{
    return cv_embed_error((const cv_embed *)run);
}

long conveyor_run_host_pid(const conveyor_run *run)
{
    return (long)cv_embed_host((const cv_embed *)run);
}

void conveyor_run_free(conveyor_run *run)
{
    cv_embed_free(E(run));
}
