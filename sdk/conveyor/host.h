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

/* Lists module MODULE alone, found as conveyor_list_plugins finds modules.
 * CONVEYOR_EXIT_OK, or CONVEYOR_EXIT_PLUGIN with why in ERR (not found, or
 * not usable). */
CONVEYOR_API int conveyor_list_module(const char *extra_path, const char *module, FILE *out,
                                      char *err, size_t errlen);

/* Removes shared-memory segments left by hosts that no longer run.  Returns
 * the number removed, or a negative errno-style code. */
CONVEYOR_API int conveyor_cleanup_stale(void);

/* 0 errors only, 1 warnings and the end-of-run summary (default), 2 info,
 * 3 debug (plugin search, sizes of what a run creates, process ids). */
CONVEYOR_API void conveyor_set_verbosity(int level);

/* When ON is non-zero, every line the library writes to standard error,
 * in the host and in every process it forks, starts with the UTC time to
 * the millisecond: "2024-05-01T12:34:56.789Z conveyor-host: ...". */
CONVEYOR_API void conveyor_set_log_time(int on);

/* ON = 1: while a pipeline runs, one line on standard error is redrawn
 * four times a second (items read and written, the rate, bytes, the time,
 * and the percentage and time left when the input is a regular file);
 * 0: never; -1 (the default): when standard error is a terminal and the
 * verbosity is at least 1.  Messages of the run erase the line first, and
 * it is erased before the summary. */
CONVEYOR_API void conveyor_set_progress(int on);

/* Watching a running pipeline from another process (conveyor-host --top).
 * Every run publishes live metrics, sampled ten times a second, in a
 * read-only shared-memory object named after its host's pid; attaching
 * reads them and never disturbs the run. */
typedef struct conveyor_monitor conveyor_monitor;

#define CONVEYOR_MONITOR_TEXT 0         /* top's screen */
#define CONVEYOR_MONITOR_JSON 1         /* one JSON object and a newline */
#define CONVEYOR_MONITOR_PROMETHEUS 2   /* Prometheus text exposition format */
#define CONVEYOR_MONITOR_BRIEF 3        /* one line: pid, state, time, pipeline */

/* The pids of the hosts whose pipelines run now: up to MAX into PIDS,
 * ascending.  How many there are (may be more than MAX), or -errno. */
CONVEYOR_API int conveyor_monitor_list(long *pids, size_t max);

/* Attaches to the pipeline of host PID.  CONVEYOR_EXIT_OK, or
 * CONVEYOR_EXIT_FAILED with ERR saying why (no such pipeline). */
CONVEYOR_API int conveyor_monitor_open(long pid, conveyor_monitor **out, char *err,
                                       size_t errlen);

/* Writes the newest snapshot in FORMAT.  1 while the pipeline runs, 0 once
 * it has ended (the snapshot says with which status), -ESRCH when its
 * host is gone without ending it (killed), another -errno on error. */
CONVEYOR_API int conveyor_monitor_write(conveyor_monitor *m, int format, FILE *out);

CONVEYOR_API void conveyor_monitor_close(conveyor_monitor *m);

/* Writes one line to standard error as the library writes its own:
 * "conveyor-host: " and the text, after the time when conveyor_set_log_time
 * asked for it, in one write().  Shown at every verbosity: for what the
 * program itself must report (a refused file, a bad command line). */
CONVEYOR_API void conveyor_message(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Hands the library the memory of the program's arguments, so that ps and
 * top show what each process is: "conveyor-host: PIPELINE.ini" for the
 * host while a pipeline runs (the original command line comes back when
 * conveyor_pipeline_run returns), "conveyor: source", "conveyor: STAGE"
 * ("conveyor: STAGE[REPLICA]" for a replicated stage) and "conveyor: sink"
 * for the processes it forks.  ARGC and ARGV are main()'s.
 *
 * A program that calls it MUST do so at the start of main(), before it
 * keeps any pointer into its arguments or its environment and before it
 * starts threads: the library points every argv[i] and environ at copies
 * (the program reads them as before) and reuses the memory the strings
 * occupied, as setproctitle(3) implementations do.  Without this call the
 * library still names every forked process for ps -o comm and top
 * (PR_SET_NAME, 15 bytes: "cv:source", "cv:STAGE[REPLICA]", "cv:sink"),
 * and leaves the command lines alone.  Returns 0, or a negative errno-style
 * code, and then changes nothing: -EALREADY on a second call, -EINVAL when
 * ARGV's strings are not where the kernel keeps the arguments (moved, or
 * under a tool such as valgrind), -ENOMEM. */
CONVEYOR_API int conveyor_set_process_title_area(int argc, char **argv);

/* The installed plugin folder and the library's version. */
CONVEYOR_API const char *conveyor_plugindir(void);
CONVEYOR_API const char *conveyor_version(void);

#ifdef __cplusplus
}
#endif

#endif
