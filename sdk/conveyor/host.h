/*
 * conveyor/host.h - running Conveyor pipelines from a program.
 *
 * conveyor-host is a thin command line over these calls; a program that
 * embeds Conveyor uses the same ones.  Functions return one of the
 * CONVEYOR_EXIT_* statuses, which are also conveyor-host's exit codes, and
 * describe what went wrong in ERR ("FILE:LINE: what is wrong").
 */
#ifndef CONVEYOR_HOST_H
#define CONVEYOR_HOST_H

#include <stdio.h>
#include <conveyor/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONVEYOR_EXIT_OK 0        /* done */
#define CONVEYOR_EXIT_FAILED 1    /* a stage failed or crashed, bad input */
#define CONVEYOR_EXIT_CONFIG 2    /* bad command line or configuration */
#define CONVEYOR_EXIT_PLUGIN 3    /* a plugin could not be loaded */

typedef struct conveyor_pipeline conveyor_pipeline;

/* Reads and validates PATH, loads and checks every plugin it names.  Starts
 * nothing and creates nothing.  On success *out is the pipeline. */
CONVEYOR_API int conveyor_pipeline_open(const char *path, conveyor_pipeline **out,
                                        char *err, size_t errlen);

/* Runs the pipeline to its end: creates the shared segment, forks the
 * source, one process per stage replica and the sink, supervises them and
 * removes everything it created.  Handles SIGINT, SIGTERM and SIGHUP while
 * it runs.  Returns the exit status (0, 1, or 128 + signal when stopped by
 * one); messages go to standard error. */
CONVEYOR_API int conveyor_pipeline_run(conveyor_pipeline *pl);

/* How many stages, processes and channels the pipeline compiles to. */
CONVEYOR_API int conveyor_pipeline_describe(conveyor_pipeline *pl, size_t *stages,
                                            size_t *procs, size_t *chans);

/* The pipeline's plugin_path as resolved (':'-separated), or NULL. */
CONVEYOR_API const char *conveyor_pipeline_plugin_path(conveyor_pipeline *pl);

/* Writes the pipeline as a Graphviz DOT graph. */
CONVEYOR_API int conveyor_pipeline_write_dot(conveyor_pipeline *pl, FILE *out);

CONVEYOR_API void conveyor_pipeline_close(conveyor_pipeline *pl);

/* Lists the modules found in EXTRA_PATH (':'-separated, may be NULL),
 * $CONVEYOR_PLUGIN_PATH and the installed plugin folder. */
CONVEYOR_API int conveyor_list_plugins(const char *extra_path, FILE *out);

/* Removes shared-memory segments left by hosts that no longer run.  Returns
 * the number removed, or a negative errno-style code. */
CONVEYOR_API int conveyor_cleanup_stale(void);

/* 0 errors only, 1 warnings and the end-of-run summary (default), 2 info,
 * 3 debug. */
CONVEYOR_API void conveyor_set_verbosity(int level);

/* The installed plugin folder and the library's version. */
CONVEYOR_API const char *conveyor_plugindir(void);
CONVEYOR_API const char *conveyor_version(void);

#ifdef __cplusplus
}
#endif

#endif
