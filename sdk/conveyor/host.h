/* SPDX-License-Identifier: MIT */
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

/* --- A pipeline inside a program ----------------------------------------
 *
 * The program is the source and the sink: it pushes items in and pulls
 * the outputs, batch after batch, while the stage processes live on.
 *
 *     conveyor_run *run;
 *     conveyor_pipeline_start(pl, &run);
 *     conveyor_run_push(run, "a", 1, -1);        ... as many as it likes
 *     conveyor_run_flush(run, -1);               everything pushed is out
 *     conveyor_run_pull(run, &out, &len, &seq, 0) until -EAGAIN
 *     status = conveyor_run_finish(run);         every fini ran
 *     conveyor_run_free(run);
 *
 * conveyor_pipeline_start forks one process, the run's host, which forks
 * and supervises one process per stage replica as conveyor-host does and
 * removes what the run shares when it ends; the program holds the first
 * channels' write ends and the last ones' read ends.  The pipeline's
 * input, output and framing keys are not used.
 *
 * Threads: one thread at a time per run, except that one thread may push
 * while another pulls.  flush, finish, stop, batch and free use both ends:
 * no push or pull may run at the same time.
 *
 * Signals and processes: the program's signal handlers and mask are left
 * as they are.  The host is the program's one child; the program receives
 * SIGCHLD when it ends (the library reaps it with waitpid on its pid, and
 * learns its status through a pipe, so a program that reaps every child
 * itself loses nothing).  With transport = pipe, SIGPIPE is blocked in the
 * calling thread while it writes to a channel, and one it raised is taken
 * before the mask is restored.  The host and the stages are in a process
 * group of their own: a terminal's Ctrl-C goes to the program, which
 * decides.  A program that exits without finishing stops its runs (atexit),
 * and one that is killed has its host stop everything and remove the
 * shared memory when it notices the program is gone (the program's end of
 * a pipe closes); a child the program forks closes the run's descriptors
 * (pthread_atfork) and plays no part in it.
 *
 * Item numbers: the N-th item pushed over the run's life has seq N (from
 * 1); outputs carry the seq of the item they descend from (0 for what an
 * init emits, UINT64_MAX for what a fini emits).
 *
 * Returns: 0, CONVEYOR_RUN_END, or a negative errno: -EAGAIN (the time ran
 * out; TIMEOUT_MS 0 means do not wait, -1 no limit), -EPIPE (the pipeline
 * failed or was stopped: conveyor_run_error says why), -EMSGSIZE (larger
 * than max_item), -EINVAL (the run is finished). */

typedef struct conveyor_run conveyor_run;

/* conveyor_run_pull: every output has been pulled, after finish. */
#define CONVEYOR_RUN_END 1

/* Creates the run's shared memory and channels, forks its host and
 * returns once every stage's init has returned (their outputs are kept for
 * pull).  Returns a CONVEYOR_EXIT_* status: CONVEYOR_EXIT_CONFIG for a
 * pipeline that cannot be embedded (its input going straight to its
 * output, an order = concat merge), CONVEYOR_EXIT_FAILED when an init
 * failed.  *RUN is set whenever the processes were started, also when the
 * status is not 0 (conveyor_run_error says why): conveyor_run_free it.
 * PL must outlive the run. */
CONVEYOR_API int conveyor_pipeline_start(conveyor_pipeline *pl, conveyor_run **run);

/* Pushes one item (LEN bytes, copied).  Waits while the first channel is
 * full (back-pressure) up to TIMEOUT_MS.  Once part of the item went out
 * it waits without a limit for the rest: with a fork right after the
 * input (replicate: the item goes on every branch), with a ring item sent
 * in pieces (pool_size = 0, over a quarter of the ring), and with
 * transport = pipe an item over 4080 bytes (a pipe takes PIPE_BUF bytes
 * whole or not at all): such a push returns only once the item is in,
 * so a program pushing those from the thread that pulls must not let the
 * outputs fill up. */
CONVEYOR_API int conveyor_run_push(conveyor_run *run, const void *item, size_t len,
                                   int timeout_ms);

/* The number of items pushed so far: the seq of the last one. */
CONVEYOR_API uint64_t conveyor_run_pushed(const conveyor_run *run);

/* The next output: *ITEM (valid until the next call on RUN), *LEN, and
 * *SEQ, the number of the pushed item it descends from (SEQ may be NULL).
 * Waits up to TIMEOUT_MS; CONVEYOR_RUN_END once finish or stop ended the
 * run and every output was pulled. */
CONVEYOR_API int conveyor_run_pull(conveyor_run *run, const void **item, size_t *len,
                                   uint64_t *seq, int timeout_ms);

/* A barrier that does not end the stream: returns 0 once every item
 * pushed before it has gone through the pipeline (or was dropped, or
 * failed under on_error = skip or dead-letter) and all their outputs can
 * be pulled.  Outputs that come while it waits are kept in the run's
 * memory until pulled, so a flush never waits for the program to pull.
 * After -EAGAIN, call it again to go on waiting. */
CONVEYOR_API int conveyor_run_flush(conveyor_run *run, int timeout_ms);

/* A descriptor (for poll, select or epoll) that is readable when an
 * output can be pulled, the run ended, or it failed.  It may be readable
 * with nothing to pull; after conveyor_run_pull(run, ..., 0) returned
 * -EAGAIN it stays unreadable until something comes.  Owned by RUN. */
CONVEYOR_API int conveyor_run_fd(conveyor_run *run);

/* Called with each output of a batch: INDEX is the position in ITEMS of
 * the item it descends from (SIZE_MAX for one that descends from no item
 * of the batch: an init's, or an earlier push's). */
typedef void (*conveyor_result_fn)(void *arg, size_t index, uint64_t seq, const void *item,
                                   size_t len);

/* Pushes ITEMS[0..N-1] (LENS[i] bytes each) and calls FN with every output
 * in input order (outputs of one item in the order they came), pulling
 * while it pushes, so that N may be far larger than the channels hold.
 * Ends with a flush.  In a pipeline whose merges are not all order =
 * source (replicas or joins in arrival order), outputs may come out of
 * input order: they are kept until the batch is over, then delivered
 * sorted.  0 or a negative errno. */
CONVEYOR_API int conveyor_run_batch(conveyor_run *run, const void *const *items,
                                    const size_t *lens, size_t n, conveyor_result_fn fn,
                                    void *arg);

/* Ends the stream: every stage finishes what it holds and runs fini, the
 * outputs are kept for pull (in the run's memory), every process is
 * reaped and every shared resource removed.  Returns the status, as
 * conveyor-host's exit code: 0 done, 1 a stage failed or crashed. */
CONVEYOR_API int conveyor_run_finish(conveyor_run *run);

/* Stops at once: every process is killed and reaped, every shared
 * resource removed.  Returns the status: 128 + SIGTERM, as conveyor-host
 * stopped at once, or 1 when the pipeline had failed before. */
CONVEYOR_API int conveyor_run_stop(conveyor_run *run);

/* Why the run failed: the error lines conveyor-host would print, without
 * its "conveyor-host: " prefix, one per line; NULL when none. */
CONVEYOR_API const char *conveyor_run_error(const conveyor_run *run);

/* The pid of the run's host process (the program's one child). */
CONVEYOR_API long conveyor_run_host_pid(const conveyor_run *run);

/* Stops the run if it still runs, then frees it. */
CONVEYOR_API void conveyor_run_free(conveyor_run *run);

/* The installed plugin folder and the library's version. */
CONVEYOR_API const char *conveyor_plugindir(void);
CONVEYOR_API const char *conveyor_version(void);

#ifdef __cplusplus
}
#endif

#endif
