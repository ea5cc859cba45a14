/* SPDX-License-Identifier: MIT */
/*
 * plan_dot.c - draws a pipeline for --graph: its stages as written and the
 * processes and channels they compile to, as a Graphviz DOT graph.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "load/plan.h"

/* --- DOT --------------------------------------------------------------- */

static void dot_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void dot_stage_node(FILE *f, const cv_stage_cfg *st, size_t i)
{
    fprintf(f, "    s%zu [label=\"", i);
    dot_escape(f, st->name);
    switch (st->type) {
    case CV_TYPE_PROCESSOR:
    case CV_TYPE_SOURCE:
        fprintf(f, "\\n%s", st->type == CV_TYPE_SOURCE ? "source " : "");
        dot_escape(f, st->module ? st->module : "?");
        fputc(':', f);
        dot_escape(f, st->stage ? st->stage : "?");
        if (st->replicas > 1)
            fprintf(f, "\\nreplicas = %u, order = %s", st->replicas, cv_order_name(st->order));
        fprintf(f, "\", shape=box, style=rounded];\n");
        break;
    case CV_TYPE_PIPE:
        fprintf(f, "\\npipe\", shape=ellipse, style=dashed];\n");
        break;
    case CV_TYPE_REPLICATE:
        fprintf(f, "\\nreplicate\", shape=trapezium];\n");
        break;
    case CV_TYPE_BALANCE:
        fprintf(f, "\\nbalance (%s)\", shape=trapezium];\n", cv_policy_name(st->policy));
        break;
    case CV_TYPE_JOIN:
        fprintf(f, "\\njoin (order = %s)\", shape=invtrapezium];\n", cv_order_name(st->order));
        break;
    }
}

int cv_plan_write_dot(const cv_plan *pl, FILE *f)
{
    const cv_config *cfg = pl->cfg;
    fprintf(f, "// conveyor-host --graph: render with  dot -Tsvg > pipeline.svg\n");
    fprintf(f, "digraph conveyor {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
    fprintf(f, "  subgraph cluster_stages {\n    label=\"pipeline: ");
    dot_escape(f, cfg->path);
    fprintf(f, "\";\n");
    if (!pl->plugin_sources) {
        fprintf(f, "    input [label=\"input\\n");
        dot_escape(f, cfg->input);
        fprintf(f, "\", shape=note];\n");
    }
    fprintf(f, "    output [label=\"output\\n");
    dot_escape(f, cfg->output);
    fprintf(f, "\", shape=note];\n");
    int *has_consumer = cv_calloc(cfg->nstages, sizeof *has_consumer);
    for (size_t i = 0; i < cfg->nstages; i++)
        dot_stage_node(f, &cfg->stages[i], i);
    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        if (st->type == CV_TYPE_SOURCE)
            continue;
        if (st->inputs_default || st->ninputs == 0) {
            if (i == 0)
                fprintf(f, "    input -> s0;\n");
            else {
                fprintf(f, "    s%zu -> s%zu;\n", i - 1, i);
                has_consumer[i - 1] = 1;
            }
        } else {
            for (size_t k = 0; k < st->ninputs; k++) {
                int j = cv_config_find_stage(cfg, st->inputs[k].name);
                if (j >= 0) {
                    fprintf(f, "    s%d -> s%zu", j, i);
                    if (st->type == CV_TYPE_JOIN || st->ninputs > 1)
                        fprintf(f, " [label=\"%zu\"]", k + 1);
                    fprintf(f, ";\n");
                    has_consumer[j] = 1;
                }
            }
        }
    }
    for (size_t i = 0; i < cfg->nstages; i++)
        if (!has_consumer[i])
            fprintf(f, "    s%zu -> output;\n", i);
    free(has_consumer);
    fprintf(f, "  }\n");

    fprintf(f, "  subgraph cluster_processes {\n    label=\"%zu processes, %zu channels\";\n",
            pl->nprocs, pl->nchans);
    for (size_t p = 0; p < pl->nprocs; p++) {
        const cv_proc *pr = &pl->procs[p];
        fprintf(f, "    p%zu [label=\"", p);
        dot_escape(f, pr->label);
        if (pr->ninputs > 1)
            fprintf(f, "\\nmerge: %s", cv_order_name(pr->order));
        fprintf(f, "\", shape=%s];\n", pr->stage >= 0 ? "box" : "cds");
    }
    for (size_t c = 0; c < pl->nchans; c++) {
        const cv_chan_desc *ch = &pl->chans[c];
        fprintf(f, "    p%d -> p%d [label=\"ch%zu%s\"%s];\n", ch->from, ch->to, c,
                ch->ordered ? " (ordered)" : "", ch->ordered ? ", style=bold" : "");
    }
    fprintf(f, "  }\n}\n");
    return ferror(f) ? -EIO : 0;
}
