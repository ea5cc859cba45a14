/* SPDX-License-Identifier: MIT */
/*
 * host_api.c - the embedding API (sdk/conveyor/host.h): open a pipeline
 * (parse, validate, load plugins), run it, draw it, list plugins, sweep
 * stale segments.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conveyor/host.h>
#include "load/config.h"
#include "load/plan.h"
#include "load/loader.h"
#include "base/log.h"
#include "base/proctitle.h"
#include "api/host_api.h"
#include "run/run.h"
#include "transport/shm.h"
#include "base/util.h"

struct conveyor_pipeline {
    cv_config *cfg;
    cv_plan *plan;
    cv_loader loader;
    int loader_ready;
    const conveyor_stage **stages;
};

void conveyor_pipeline_close(conveyor_pipeline *pl)
{
    if (!pl)
        return;
    cv_plan_free(pl->plan);
    free(pl->stages);
    if (pl->loader_ready)
        cv_loader_fini(&pl->loader);
    cv_config_free(pl->cfg);
    free(pl);
}

/* Runs the check() of every stage section whose stage has one, in the host
 * and before anything is created: a context with no run (run.h), in which
 * only the parameters, the names, replicas and logging work.  -EINVAL with
 * "FILE:LINE: ..." (the section's header) when one refuses. */
static int check_stages(const cv_config *cfg, const conveyor_stage *const *stages, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        if (!stages[i] || !stages[i]->check)
            continue;
        conveyor_ctx ctx = {.run = NULL, .pipeline = cfg, .proc = -1, .cfg = st,
                            .stage = stages[i]};
        int rc = stages[i]->check(&ctx);
        cv_debug("[%s] %s:%s: check returned %d", st->name, st->module, st->stage, rc);
        if (rc != 0)
            return cv_err_at(err, errlen, -EINVAL, cfg->path, st->line,
                             "[%s] plugin = %s:%s: the stage refuses these parameters", st->name,
                             st->module, st->stage);
    }
    return 0;
}

int conveyor_pipeline_open(const char *path, conveyor_pipeline **out, char *err, size_t errlen)
{
    cv_reserve_std_fds();
    conveyor_pipeline *pl = cv_calloc(1, sizeof *pl);
    int rc;
    *out = NULL;

    if ((rc = cv_config_load(path, &pl->cfg, err, errlen)) < 0)
        goto config_error;
    if ((rc = cv_plan_build(pl->cfg, &pl->plan, err, errlen)) < 0 ||
        (rc = cv_config_check_files(pl->cfg, err, errlen)) < 0)
        goto config_error;
    if ((rc = cv_loader_init(&pl->loader, pl->cfg->plugin_path)) < 0) {
        cv_err_at(err, errlen, rc, NULL, 0, "cannot initialise libltdl");
        conveyor_pipeline_close(pl);
        return CONVEYOR_EXIT_PLUGIN;
    }
    pl->loader_ready = 1;
    pl->stages = cv_calloc(pl->cfg->nstages + 1, sizeof *pl->stages);
    rc = cv_loader_resolve(&pl->loader, pl->cfg, pl->stages, err, errlen);
    if (rc == -EINVAL)
        goto config_error;
    if (rc < 0) {
        conveyor_pipeline_close(pl);
        return CONVEYOR_EXIT_PLUGIN;
    }
    if (check_stages(pl->cfg, pl->stages, err, errlen) < 0)
        goto config_error;
    *out = pl;
    return CONVEYOR_EXIT_OK;

config_error:
    conveyor_pipeline_close(pl);
    return CONVEYOR_EXIT_CONFIG;
}

const cv_plan *cv_host_plan(const conveyor_pipeline *pl)
{
    return pl->plan;
}

const conveyor_stage *const *cv_host_stages(const conveyor_pipeline *pl)
{
    return pl->stages;
}

int conveyor_pipeline_run(conveyor_pipeline *pl)
{
    return cv_run_pipeline(pl->plan, pl->stages);
}

int conveyor_pipeline_write_dot(conveyor_pipeline *pl, FILE *out)
{
    return cv_plan_write_dot(pl->plan, out) < 0 ? CONVEYOR_EXIT_FAILED : CONVEYOR_EXIT_OK;
}

int conveyor_pipeline_describe(conveyor_pipeline *pl, size_t *stages, size_t *procs, size_t *chans)
{
    *stages = pl->cfg->nstages;
    *procs = pl->plan->nprocs;
    *chans = pl->plan->nchans;
    return 0;
}

int conveyor_list_plugins(const char *extra_path, FILE *out)
{
    cv_reserve_std_fds();
    cv_loader l;
    if (cv_loader_init(&l, extra_path) < 0)
        return -ENOMEM;
    int n = cv_loader_list(&l, out);
    cv_loader_fini(&l);
    return n;
}

int conveyor_list_module(const char *extra_path, const char *module, FILE *out, char *err,
                         size_t errlen)
{
    cv_reserve_std_fds();
    cv_loader l;
    if (cv_loader_init(&l, extra_path) < 0) {
        cv_err_at(err, errlen, -ENOMEM, NULL, 0, "cannot initialise libltdl");
        return CONVEYOR_EXIT_PLUGIN;
    }
    int rc = cv_loader_list_module(&l, module, out, err, errlen);
    cv_loader_fini(&l);
    return rc < 0 ? CONVEYOR_EXIT_PLUGIN : CONVEYOR_EXIT_OK;
}

int conveyor_cleanup_stale(void)
{
    cv_reserve_std_fds();
    return cv_shm_sweep();
}

void conveyor_set_verbosity(int level)
{
    cv_log_level = level;
}

void conveyor_set_progress(int on)
{
    cv_run_progress = on < 0 ? -1 : on != 0;
}

void conveyor_set_log_time(int on)
{
    cv_log_set_time(on != 0);
}

void conveyor_message(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cv_vreport(fmt, ap);
    va_end(ap);
}

int conveyor_set_process_title_area(int argc, char **argv)
{
    return cv_title_take_area(argc, argv);
}

const char *conveyor_plugindir(void)
{
    return CONVEYOR_PLUGINDIR;
}

const char *conveyor_version(void)
{
    return PACKAGE_VERSION;
}

const char *conveyor_pipeline_plugin_path(conveyor_pipeline *pl)
{
    return pl->cfg->plugin_path;
}
