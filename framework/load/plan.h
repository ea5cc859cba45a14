/* SPDX-License-Identifier: MIT */
/*
 * plan.h - validates a pipeline's stages as a graph and compiles it into
 * processes and channels.
 *
 * Only processors (one process per replica), the source and the sink become
 * processes.  Pipes, forks and joins are routing: a producer's emit walks a
 * route tree (replicate: every branch; balance: one branch) down to
 * channels, and a consumer merges its input channels (arrival, concat or
 * source order).  Every mistake is reported as "FILE:LINE: ..." naming the
 * stages involved, before anything is created.
 */
#ifndef CV_GRAPH_H
#define CV_GRAPH_H

#include <stdio.h>
#include "load/config.h"

enum cv_route_kind { CV_ROUTE_CHANNEL, CV_ROUTE_REPLICATE, CV_ROUTE_BALANCE };

typedef struct cv_route {
    enum cv_route_kind kind;
    enum cv_policy policy;      /* BALANCE */
    int channel;                /* CHANNEL: index into plan->chans */
    struct cv_route **kids;     /* REPLICATE, BALANCE */
    size_t nkids;
    unsigned next;              /* BALANCE: rotation state (per process) */
} cv_route;

enum cv_proc_kind { CV_PROC_SOURCE, CV_PROC_STAGE, CV_PROC_SINK };

typedef struct cv_chan_desc {
    int from, to;               /* process indices */
    unsigned rank;              /* concat / tie order in the consumer */
    int ordered;                /* carries a record (item or watermark) for
                                   every source item: feeds an order = source
                                   merge, directly or further down */
} cv_chan_desc;

typedef struct cv_proc {
    enum cv_proc_kind kind;
    int stage;                  /* index into cfg->stages; -1 for the sink and
                                   the built-in input reader */
    unsigned replica;
    char *label;                /* "source", "sink", "upper", "upper[1]" (a
                                   source stage: its name, as a processor's) */
    cv_route *out;              /* NULL for the sink */
    int *inputs;                /* channel indices, sorted by rank */
    size_t ninputs;
    enum cv_order order;        /* how the inputs are merged */
} cv_proc;

typedef struct cv_plan {
    const cv_config *cfg;
    cv_proc *procs;             /* procs[0 .. nsources-1] are the sources, the
                                   last is the sink */
    size_t nprocs;
    size_t nsources;            /* the built-in input reader, or one process
                                   per replica of every type = source stage */
    int plugin_sources;         /* the sources are stages (no input reader) */
    cv_chan_desc *chans;
    size_t nchans;
} cv_plan;

int cv_plan_build(const cv_config *cfg, cv_plan **out, char *err, size_t errlen);
void cv_plan_free(cv_plan *plan);

/* Graphviz DOT: the stages as written, and the processes and channels they
 * compile to. */
int cv_plan_write_dot(const cv_plan *plan, FILE *f);

#endif
