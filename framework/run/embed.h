/* SPDX-License-Identifier: MIT */
/*
 * embed.h - a pipeline inside a program (what conveyor/host.h's
 * conveyor_run_* calls do).
 *
 * The program is the input reader and the output writer: it holds the
 * write ends of the channels the reader would feed and the read ends of
 * those the writer would drain.  One process is forked from it, the run's
 * host, which forks and supervises every stage process as conveyor-host
 * does, and removes what the run shares when it ends.  The program only
 * ever has that one child.
 *
 * Flushes are markers (CV_REC_MARK) sent after the items pushed so far;
 * every process passes a marker on once it came on all its inputs, so when
 * it reaches the program every output of the items before it has come out.
 *
 * Return codes: 0, CV_EMBED_END (the end of the outputs), or -errno:
 * -EAGAIN (the time ran out), -EPIPE (the run failed or was stopped),
 * -EMSGSIZE, -EINVAL.
 */
#ifndef CV_EMBED_H
#define CV_EMBED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "load/plan.h"
#include <conveyor/plugin.h>

#define CV_EMBED_END 1

typedef struct cv_embed cv_embed;

/* Creates the run's shared resources, forks its host (which forks every
 * stage) and returns once every stage's init has returned.  The status
 * (CONVEYOR_EXIT_*): *OUT is set whenever the host was forked, also when
 * the run failed at once (cv_embed_error says why). */
int cv_embed_start(const cv_plan *plan, const conveyor_stage *const *stages, cv_embed **out);

int cv_embed_push(cv_embed *e, const void *item, size_t len, int timeout_ms);
int cv_embed_pull(cv_embed *e, const void **item, size_t *len, uint64_t *seq, int timeout_ms);
int cv_embed_flush(cv_embed *e, int timeout_ms);
/* Results in input order (see conveyor_run_batch in conveyor/host.h). */
typedef void (*cv_embed_result_fn)(void *arg, size_t index, uint64_t seq, const void *item,
                                   size_t len);
int cv_embed_batch(cv_embed *e, const void *const *items, const size_t *lens, size_t n,
                   cv_embed_result_fn fn, void *arg);
int cv_embed_fd(const cv_embed *e);
int cv_embed_finish(cv_embed *e);
int cv_embed_stop(cv_embed *e);
const char *cv_embed_error(const cv_embed *e);
uint64_t cv_embed_pushed(const cv_embed *e);
pid_t cv_embed_host(const cv_embed *e);
void cv_embed_free(cv_embed *e);

#endif
