/* SPDX-License-Identifier: MIT */
/*
 * loader.h - finds, loads and checks plugin modules with libltdl.
 *
 * Search order: the pipeline's plugin_path (resolved against the INI file's
 * folder), then $CONVEYOR_PLUGIN_PATH, then the installed plugin folder.
 * A module is MODULE.la or MODULE.so in one of them (lt_dlopenext).  It must
 * export conveyor_module_v1 with abi_major == CONVEYOR_ABI_MAJOR, abi_minor
 * <= CONVEYOR_ABI_MINOR and a size covering the fields the host reads.
 * The loader reads a module's stages at the stride the module was built
 * with and hands out its own full-size copies of them (the fields a module
 * lacks are zero), valid until cv_loader_fini(): no other code needs to
 * know the stride.  The same for each stage's params (the module's
 * param_size; the spec of 1.0 for older modules), whose default_value the
 * copy holds unquoted as pipeline.ini's values are.
 */
#ifndef CV_LOADER_H
#define CV_LOADER_H

#include <stdio.h>
#include <conveyor/plugin.h>
#include "load/config.h"

typedef struct cv_module cv_module;

typedef struct cv_loader {
    char **dirs;                /* the search path, in order */
    size_t ndirs;
    cv_module **mods;           /* loaded so far */
    size_t nmods;
} cv_loader;

/* EXTRA: ':'-separated folders searched first (may be NULL). */
int cv_loader_init(cv_loader *l, const char *extra);
void cv_loader_fini(cv_loader *l);

/* Finds MODULE:STAGE.  Returns 0, or -ENOENT (no such module or stage),
 * -ENOEXEC (not a Conveyor module, ABI refused, stage without process) with
 * a message naming the file, the symbol and the versions. */
int cv_loader_stage(cv_loader *l, const char *module, const char *stage,
                    const conveyor_stage **out, char *err, size_t errlen);

/* Loads every stage the config names and checks each section's keys against
 * the stage's declared params ("FILE:LINE: ..." on a mismatch or a
 * required key not set, -EINVAL); keys of a stage that declares no params
 * are warned about, one warning per key.
 * STAGES receives one pointer per config stage (NULL for non-processors). */
int cv_loader_resolve(cv_loader *l, const cv_config *cfg, const conveyor_stage **stages,
                      char *err, size_t errlen);

/* Lists module NAME as cv_loader_list does.  0, or the error of
 * cv_loader_stage (-ENOENT: not found, -ENOEXEC: not usable) in ERR. */
int cv_loader_list_module(cv_loader *l, const char *name, FILE *out, char *err, size_t errlen);

/* Lists every module in the search path with its stages, summaries and
 * params.  Modules that fail to load are listed with the reason.  Returns
 * the number of modules listed. */
int cv_loader_list(cv_loader *l, FILE *out);

#endif
