/* SPDX-License-Identifier: MIT */
/*
 * test_graph.c - unit tests of load/plan.c: every validation message with its
 * line, and what a valid pipeline compiles to (processes, channels, routes,
 * merge orders, ranks, ordered channels, DOT).
 *
 * Configs are parsed from strings with cv_config_load_string, named "t.ini";
 * the line comments in the INI texts give each line's number, since the
 * messages are checked to the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/config.h"
#include "load/plan.h"

static cv_config *load(const char *text)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    int rc = cv_config_load_string("t.ini", text, &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "the config itself was refused: %s", err);
    cr_assert_not_null(cfg);
    return cfg;
}

/* Builds TEXT's plan, which must be valid; frees the config with the plan
 * through free_plan(). */
static cv_plan *build(const char *text)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = load(text);
    cv_plan *pl = NULL;
    int rc = cv_plan_build(cfg, &pl, err, sizeof err);
    cr_assert_eq(rc, 0, "cv_plan_build refused a valid pipeline: %s", err);
    cr_assert_not_null(pl);
    cr_assert_eq(pl->cfg, cfg);
    return pl;
}

static void free_plan(cv_plan *pl)
{
    cv_config *cfg = (cv_config *)pl->cfg;
    cv_plan_free(pl);
    cv_config_free(cfg);
}

/* cv_plan_build on CFG must fail with exactly MESSAGE. */
static void expect_cfg_error(cv_config *cfg, const char *message)
{
    char err[CV_ERR_MAX] = "";
    cv_plan *pl = (cv_plan *)&pl;   /* not NULL: the call must clear it */
    int rc = cv_plan_build(cfg, &pl, err, sizeof err);
    cr_assert_eq(rc, -EINVAL, "expected -EINVAL and '%s', got %d (%s)", message, rc, err);
    cr_assert_null(pl);
    cr_assert_str_eq(err, message);
    cv_config_free(cfg);
}

static void expect_error(const char *text, const char *message)
{
    expect_cfg_error(load(text), message);
}

/* The process labelled LABEL; fails the test when there is none. */
static int proc(const cv_plan *pl, const char *label)
{
    for (size_t p = 0; p < pl->nprocs; p++)
        if (strcmp(pl->procs[p].label, label) == 0)
            return (int)p;
    cr_assert_fail("no process labelled '%s'", label);
    return -1;
}

/* The channel from process FROM to process TO; fails when there is none or
 * more than one. */
static const cv_chan_desc *chan(const cv_plan *pl, const char *from, const char *to)
{
    int f = proc(pl, from), t = proc(pl, to);
    const cv_chan_desc *found = NULL;
    for (size_t c = 0; c < pl->nchans; c++)
        if (pl->chans[c].from == f && pl->chans[c].to == t) {
            cr_assert_null(found, "two channels from %s to %s", from, to);
            found = &pl->chans[c];
        }
    cr_assert_not_null(found, "no channel from %s to %s", from, to);
    return found;
}

static int chan_index(const cv_plan *pl, const char *from, const char *to)
{
    return (int)(chan(pl, from, to) - pl->chans);
}

static enum cv_order order_of(const cv_plan *pl, const char *label)
{
    return pl->procs[proc(pl, label)].order;
}

/* The inputs of LABEL, as the labels of their producers in input order,
 * joined with spaces. */
static char *inputs_of(const cv_plan *pl, const char *label)
{
    static char buf[1024];
    const cv_proc *pr = &pl->procs[proc(pl, label)];
    buf[0] = '\0';
    for (size_t i = 0; i < pr->ninputs; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, pl->procs[pl->chans[pr->inputs[i]].from].label);
    }
    return buf;
}

/* ---- validation: every message, with its line ------------------------- */

/* A chain deeper than the compiler's recursion may go is refused, naming
 * the first stage too deep; 10,000 is still fine. */
Test(graph_errors, chain_too_deep_is_refused)
{
    size_t cap = 10002 * 32, len = 0;
    char *text = malloc(cap);
    for (int i = 1; i <= 10001; i++)
        len += (size_t)snprintf(text + len, cap - len, "[s%d]\ntype = pipe\n", i);
    expect_error(text, "t.ini:20001: stage [s10001] lies more than 10000 stages deep in a chain "
                       "from the input; split the pipeline");
    /* One fewer: compiled. */
    text[len - strlen("[s10001]\ntype = pipe\n")] = '\0';
    cv_plan *pl = build(text);
    cr_assert_not_null(pl);
    free_plan(pl);
    free(text);
}

Test(graph_errors, unknown_input_with_suggestion)
{
    expect_error("[upper]\n"                    /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[lower]\n"                    /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "input = uper\n",              /* 5 */
                 "t.ini:5: [lower] reads from 'uper', which is not a stage "
                 "(did you mean 'upper'?)");
}

Test(graph_errors, unknown_input_without_suggestion)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[b]\n"                        /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "input = a,\n"                 /* 5 */
                 "  zzzzzzzz\n",                /* 6 */
                 "t.ini:6: [b] reads from 'zzzzzzzz', which is not a stage");
}

Test(graph_errors, stage_reading_itself_is_a_cycle)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[b]\n"                        /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "input = a, b\n",              /* 5 */
                 "t.ini:5: [b] reads from itself (a cycle: b -> b)");
}

Test(graph_errors, cycle_is_shown)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[b]\n"                        /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "input = d\n"                  /* 5 */
                 "[c]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "[d]\n"                        /* 8 */
                 "plugin = text:lower\n",       /* 9: input = c (default) */
                 "t.ini:5: the stages form a cycle: b -> c -> d -> b");
}

/* Every stage reads something, so a stage the input cannot reach sits on
 * (or below) a cycle, and the cycle is what is reported. */
Test(graph_errors, unreached_stages_report_their_cycle)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[b]\n"                        /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "input = c\n"                  /* 5 */
                 "[c]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "input = b\n",                 /* 8 */
                 "t.ini:5: the stages form a cycle: b -> c -> b");
}

Test(graph_errors, join_with_one_input)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[j]\n"                        /* 3 */
                 "type = join\n"                /* 4 */
                 "input = a\n",                 /* 5 */
                 "t.ini:5: join [j] has 1 input; a join merges two or more (input = a, b)");
}

/* Python Conveyor: "A pipeline cannot start with a Join". */
Test(graph_errors, join_first_reads_only_the_input)
{
    expect_error("[pipeline]\n"                 /* 1 */
                 "input = -\n"                  /* 2 */
                 "[j]\n"                        /* 3 */
                 "type = join\n"                /* 4 */
                 "[a]\n"                        /* 5 */
                 "plugin = text:upper\n",       /* 6 */
                 "t.ini:3: join [j] has 1 input; a join merges two or more (input = a, b)");
}

Test(graph_errors, pipe_with_two_inputs)
{
    expect_error("[f]\n"                        /* 1 */
                 "type = replicate\n"           /* 2 */
                 "[a]\n"                        /* 3 */
                 "plugin = text:upper\n"        /* 4 */
                 "input = f\n"                  /* 5 */
                 "[b]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "input = f\n"                  /* 8 */
                 "[p]\n"                        /* 9 */
                 "type = pipe\n"                /* 10 */
                 "input = a, b\n",              /* 11 */
                 "t.ini:11: pipe [p] has 2 inputs; only a join or a processor reads several "
                 "(put a join before it)");
}

Test(graph_errors, fork_with_two_inputs)
{
    expect_error("[f]\n"                        /* 1 */
                 "type = replicate\n"           /* 2 */
                 "[a]\n"                        /* 3 */
                 "plugin = text:upper\n"        /* 4 */
                 "input = f\n"                  /* 5 */
                 "[b]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "input = f\n"                  /* 8 */
                 "[g]\n"                        /* 9 */
                 "type = balance\n"             /* 10 */
                 "input = a, b\n"               /* 11 */
                 "[c]\n"                        /* 12 */
                 "plugin = text:lower\n"        /* 13 */
                 "input = g\n"                  /* 14 */
                 "[d]\n"                        /* 15 */
                 "plugin = text:lower\n"        /* 16 */
                 "input = g\n",                 /* 17 */
                 "t.ini:11: balance [g] has 2 inputs; only a join or a processor reads several "
                 "(put a join before it)");
}

Test(graph_errors, fork_nobody_reads)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[f]\n"                        /* 3 */
                 "type = replicate\n",          /* 4 */
                 "t.ini:3: replicate [f] has no consumers: no stage names it as input");
}

Test(graph_errors, fork_with_one_consumer)
{
    expect_error("[f]\n"                        /* 1 */
                 "type = balance\n"             /* 2 */
                 "policy = round-robin\n"       /* 3 */
                 "[a]\n"                        /* 4 */
                 "plugin = text:upper\n",       /* 5 */
                 "t.ini:1: balance [f] has only one consumer ([a]); a fork needs two or more");
}

Test(graph_errors, stage_read_twice_without_fork)
{
    expect_error("[a]\n"                        /* 1 */
                 "plugin = text:upper\n"        /* 2 */
                 "[b]\n"                        /* 3 */
                 "plugin = text:lower\n"        /* 4 */
                 "[c]\n"                        /* 5 */
                 "plugin = text:lower\n"        /* 6 */
                 "input = a\n",                 /* 7 */
                 "t.ini:7: [a] is read by more than one stage ([b] at line 3, [c] at line 7); "
                 "put a replicate (every item to each) or a balance (each item to one) after it");
}

/* config.c refuses "input = a, a" itself; plan.c's own check guards a
 * config made some other way. */
Test(graph_errors, input_listed_twice)
{
    cv_config *cfg = load("[a]\n"                   /* 1 */
                          "plugin = text:upper\n"   /* 2 */
                          "[b]\n"                   /* 3 */
                          "plugin = text:upper\n"   /* 4 */
                          "[c]\n"                   /* 5 */
                          "plugin = text:lower\n"   /* 6 */
                          "input = a,\n"            /* 7 */
                          "  b\n");                 /* 8 */
    cv_stage_cfg *c = &cfg->stages[2];
    cr_assert_eq(c->ninputs, 2);
    free(c->inputs[1].name);
    c->inputs[1].name = strdup("a");
    expect_cfg_error(cfg, "t.ini:8: [c] lists input 'a' twice");
}

Test(graph_errors, input_listed_twice_in_the_file)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    int rc = cv_config_load_string("t.ini",
                                   "[a]\n"                  /* 1 */
                                   "plugin = text:upper\n"  /* 2 */
                                   "[b]\n"                  /* 3 */
                                   "plugin = text:lower\n"  /* 4 */
                                   "input = a, a\n",        /* 5 */
                                   &cfg, err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert_null(cfg);
    cr_assert_str_eq(err, "t.ini:5: stage 'a' is listed twice in input of [b]");
}

Test(graph_errors, replicas_zero)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = NULL;
    int rc = cv_config_load_string("t.ini",
                                   "[a]\n"                  /* 1 */
                                   "plugin = text:upper\n"  /* 2 */
                                   "replicas = 0\n",        /* 3 */
                                   &cfg, err, sizeof err);
    cr_assert_lt(rc, 0);
    cr_assert_null(cfg);
    cr_assert_str_eq(err, "t.ini:3: bad value '0' for replicas (use a whole number from 1 to 1024)");
}

Test(graph_errors, no_stages)
{
    expect_error("[pipeline]\n"                 /* 1 */
                 "input = -\n",                 /* 2 */
                 "t.ini:1: the pipeline has no stages (add a section such as [upper] with "
                 "plugin = text:upper)");
}

Test(graph_errors, source_order_after_concat_is_refused)
{
    expect_error("[f]\n"                        /* 1 */
                 "type = balance\n"             /* 2 */
                 "[a]\n"                        /* 3 */
                 "plugin = text:upper\n"        /* 4 */
                 "input = f\n"                  /* 5 */
                 "[b]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "input = f\n"                  /* 8 */
                 "[j1]\n"                       /* 9 */
                 "type = join\n"                /* 10 */
                 "input = a, b\n"               /* 11 */
                 "order = concat\n"             /* 12 */
                 "[m]\n"                        /* 13 */
                 "plugin = text:upper\n"        /* 14 */
                 "[g]\n"                        /* 15 */
                 "type = balance\n"             /* 16 */
                 "[c]\n"                        /* 17 */
                 "plugin = text:upper\n"        /* 18 */
                 "input = g\n"                  /* 19 */
                 "[d]\n"                        /* 20 */
                 "plugin = text:lower\n"        /* 21 */
                 "input = g\n"                  /* 22 */
                 "[j2]\n"                       /* 23 */
                 "type = join\n"                /* 24 */
                 "input = c, d\n"               /* 25 */
                 "order = source\n",            /* 26 */
                 "t.ini:12: [j1] merges with order = concat, but a join after it asks for "
                 "order = source, which cannot be restored after a concat");
}

/* ---- compiled plans ----------------------------------------------------- */

Test(graph_plan, linear)
{
    cv_plan *pl = build("[a]\nplugin = text:upper\n[b]\nplugin = text:lower\n");
    cr_assert_eq(pl->nprocs, 4);
    cr_assert_eq(pl->nchans, 3);
    cr_assert_eq(pl->procs[0].kind, CV_PROC_SOURCE);
    cr_assert_str_eq(pl->procs[0].label, "source");
    cr_assert_eq(pl->procs[0].stage, -1);
    cr_assert_eq(pl->procs[1].kind, CV_PROC_STAGE);
    cr_assert_str_eq(pl->procs[1].label, "a");
    cr_assert_eq(pl->procs[1].stage, 0);
    cr_assert_str_eq(pl->procs[2].label, "b");
    cr_assert_eq(pl->procs[2].stage, 1);
    cr_assert_eq(pl->procs[3].kind, CV_PROC_SINK);
    cr_assert_str_eq(pl->procs[3].label, "sink");
    cr_assert_null(pl->procs[3].out);
    cr_assert_eq(pl->procs[0].out->kind, CV_ROUTE_CHANNEL);
    cr_assert_eq(pl->procs[0].out->channel, chan_index(pl, "source", "a"));
    cr_assert_eq(pl->procs[1].out->channel, chan_index(pl, "a", "b"));
    cr_assert_eq(pl->procs[2].out->channel, chan_index(pl, "b", "sink"));
    cr_assert_eq(pl->procs[0].ninputs, 0);
    for (size_t p = 1; p < 4; p++) {
        cr_assert_eq(pl->procs[p].ninputs, 1);
        cr_assert_eq(pl->procs[p].order, CV_ORDER_ARRIVAL);
    }
    for (size_t c = 0; c < pl->nchans; c++)
        cr_assert_eq(pl->chans[c].ordered, 0);
    free_plan(pl);
}

Test(graph_plan, replica_labels)
{
    cv_plan *pl = build("[upper]\nplugin = text:upper\n"
                        "[cube]\nplugin = math:cube\nreplicas = 3\n");
    cr_assert_eq(pl->nprocs, 6);
    const char *labels[] = {"source", "upper", "cube[0]", "cube[1]", "cube[2]", "sink"};
    for (size_t p = 0; p < 6; p++)
        cr_assert_str_eq(pl->procs[p].label, labels[p]);
    for (unsigned r = 0; r < 3; r++) {
        cr_assert_eq(pl->procs[2 + r].replica, r);
        cr_assert_eq(pl->procs[2 + r].stage, 1);
        cr_assert_eq(pl->procs[2 + r].kind, CV_PROC_STAGE);
    }
    cr_assert_eq(pl->procs[1].replica, 0);
    free_plan(pl);
}

Test(graph_plan, replicas_are_a_balance_and_an_arrival_merge)
{
    cv_plan *pl = build("[cube]\nplugin = math:cube\nreplicas = 3\n");
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_eq(pl->nchans, 6);
    const cv_route *out = pl->procs[0].out;
    cr_assert_eq(out->kind, CV_ROUTE_BALANCE);
    cr_assert_eq(out->policy, CV_POLICY_LEAST_LOADED);
    cr_assert_eq(out->nkids, 3);
    const char *reps[] = {"cube[0]", "cube[1]", "cube[2]"};
    for (size_t k = 0; k < 3; k++) {
        cr_assert_eq(out->kids[k]->kind, CV_ROUTE_CHANNEL);
        cr_assert_eq(out->kids[k]->channel, chan_index(pl, "source", reps[k]));
        chan(pl, reps[k], "sink");
    }
    cr_assert_str_eq(inputs_of(pl, "sink"), "cube[0] cube[1] cube[2]");
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_ARRIVAL);
    free_plan(pl);
}

/* order on a replicated processor orders the merge of its replicas.  The
 * key is set here after parsing, so these tests check plan.c alone
 * (config.c takes "order" on joins only when this was written). */
static cv_plan *build_with_order(const char *text, const char *stage, enum cv_order order)
{
    char err[CV_ERR_MAX] = "";
    cv_config *cfg = load(text);
    int i = cv_config_find_stage(cfg, stage);
    cr_assert_geq(i, 0);
    cfg->stages[i].order = order;
    cfg->stages[i].order_line = cfg->stages[i].line + 1;
    cv_plan *pl = NULL;
    int rc = cv_plan_build(cfg, &pl, err, sizeof err);
    cr_assert_eq(rc, 0, "cv_plan_build refused a valid pipeline: %s", err);
    return pl;
}

Test(graph_plan, replicas_with_order_source)
{
    cv_plan *pl = build_with_order("[cube]\nplugin = math:cube\nreplicas = 3\n"
                                   "[out]\nplugin = text:upper\n", "cube", CV_ORDER_SOURCE);
    cr_assert_eq(pl->nprocs, 6);
    cr_assert_eq(pl->nchans, 7);
    cr_assert_eq(order_of(pl, "out"), CV_ORDER_SOURCE);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_ARRIVAL);
    for (unsigned r = 0; r < 3; r++) {
        char label[16];
        snprintf(label, sizeof label, "cube[%u]", r);
        cr_assert(chan(pl, "source", label)->ordered, "source -> %s is not ordered", label);
        cr_assert(chan(pl, label, "out")->ordered, "%s -> out is not ordered", label);
        cr_assert_eq(order_of(pl, label), CV_ORDER_SOURCE);
    }
    cr_assert_not(chan(pl, "out", "sink")->ordered);
    free_plan(pl);
}

/* concat over replicas: all of replica 0's output, then replica 1's...:
 * the replicas' channels must rank 0, 1, 2 (equal ranks would make the
 * concat an arrival merge). */
Test(graph_plan, replicas_with_order_concat_rank_by_replica)
{
    cv_plan *pl = build_with_order("[cube]\nplugin = math:cube\nreplicas = 3\n", "cube",
                                   CV_ORDER_CONCAT);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_CONCAT);
    cr_assert_str_eq(inputs_of(pl, "sink"), "cube[0] cube[1] cube[2]");
    cr_assert_eq(chan(pl, "cube[0]", "sink")->rank, 0);
    cr_assert_eq(chan(pl, "cube[1]", "sink")->rank, 1);
    cr_assert_eq(chan(pl, "cube[2]", "sink")->rank, 2);
    free_plan(pl);
}

static const char replicate_ini[] =
    "[f]\ntype = replicate\n"
    "[x]\nplugin = text:upper\ninput = f\n"
    "[y]\nplugin = text:lower\ninput = f\n";

Test(graph_plan, replicate_is_routing_with_two_terminals)
{
    cv_plan *pl = build(replicate_ini);
    cr_assert_eq(pl->nprocs, 4);
    cr_assert_eq(pl->nchans, 4);
    const cv_route *out = pl->procs[0].out;
    cr_assert_eq(out->kind, CV_ROUTE_REPLICATE);
    cr_assert_eq(out->nkids, 2);
    cr_assert_eq(out->kids[0]->channel, chan_index(pl, "source", "x"));
    cr_assert_eq(out->kids[1]->channel, chan_index(pl, "source", "y"));
    /* Terminal stages both feed the sink, merged by arrival, in file order. */
    cr_assert_str_eq(inputs_of(pl, "sink"), "x y");
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_ARRIVAL);
    cr_assert_eq(chan(pl, "x", "sink")->rank, 0);
    cr_assert_eq(chan(pl, "y", "sink")->rank, 1);
    free_plan(pl);
}

Test(graph_plan, balance_round_robin_in_file_order)
{
    cv_plan *pl = build("[f]\ntype = balance\npolicy = round-robin\n"
                        "[y]\nplugin = text:lower\ninput = f\n"
                        "[x]\nplugin = text:upper\ninput = f\n"
                        "[z]\nplugin = text:upper\ninput = f\n");
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_eq(pl->nchans, 6);
    const cv_route *out = pl->procs[0].out;
    cr_assert_eq(out->kind, CV_ROUTE_BALANCE);
    cr_assert_eq(out->policy, CV_POLICY_ROUND_ROBIN);
    cr_assert_eq(out->nkids, 3);
    cr_assert_eq(out->kids[0]->channel, chan_index(pl, "source", "y"));
    cr_assert_eq(out->kids[1]->channel, chan_index(pl, "source", "x"));
    cr_assert_eq(out->kids[2]->channel, chan_index(pl, "source", "z"));
    cr_assert_eq(out->next, 0);
    free_plan(pl);
}

Test(graph_plan, balance_least_loaded_by_default)
{
    cv_plan *pl = build("[f]\ntype = balance\n"
                        "[x]\nplugin = text:upper\ninput = f\n"
                        "[y]\nplugin = text:lower\ninput = f\n");
    cr_assert_eq(pl->procs[0].out->kind, CV_ROUTE_BALANCE);
    cr_assert_eq(pl->procs[0].out->policy, CV_POLICY_LEAST_LOADED);
    free_plan(pl);
}

/* The README pipeline: concat is done by the join's consumer, here the
 * sink; the pipe costs nothing. */
Test(graph_plan, fork_join_concat_at_the_consumer)
{
    cv_plan *pl = build("[fork]\ntype = replicate\n"
                        "[root]\nplugin = math:sqrt\ninput = fork\n"
                        "[cube]\nplugin = math:cube\ninput = fork\n"
                        "[root_again]\nplugin = math:sqrt\ninput = root\n"
                        "[pass]\ntype = pipe\ninput = cube\n"
                        "[join]\ntype = join\ninput = root_again, pass\norder = concat\n");
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_eq(pl->nchans, 5);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_CONCAT);
    cr_assert_str_eq(inputs_of(pl, "sink"), "root_again cube");
    cr_assert_eq(chan(pl, "root_again", "sink")->rank, 0);
    cr_assert_eq(chan(pl, "cube", "sink")->rank, 1);
    chan(pl, "root", "root_again");
    chan(pl, "source", "root");
    chan(pl, "source", "cube");
    for (size_t c = 0; c < pl->nchans; c++)
        cr_assert_eq(pl->chans[c].ordered, 0);
    free_plan(pl);
}

Test(graph_plan, join_feeding_a_processor)
{
    cv_plan *pl = build("[f]\ntype = replicate\n"
                        "[x]\nplugin = text:upper\ninput = f\n"
                        "[y]\nplugin = text:lower\ninput = f\n"
                        "[j]\ntype = join\ninput = y, x\norder = concat\n"
                        "[p]\ntype = pipe\n"
                        "[out]\nplugin = text:upper\n");
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_eq(pl->nchans, 5);
    cr_assert_eq(order_of(pl, "out"), CV_ORDER_CONCAT);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_ARRIVAL);
    /* The join's input order, not the file's, ranks them. */
    cr_assert_str_eq(inputs_of(pl, "out"), "y x");
    cr_assert_eq(chan(pl, "y", "out")->rank, 0);
    cr_assert_eq(chan(pl, "x", "out")->rank, 1);
    free_plan(pl);
}

Test(graph_plan, nested_joins_rank_by_ports)
{
    cv_plan *pl = build("[f]\ntype = replicate\n"
                        "[a]\nplugin = text:upper\ninput = f\n"
                        "[b]\nplugin = text:lower\ninput = f\n"
                        "[c]\nplugin = text:lower\ninput = f\n"
                        "[j1]\ntype = join\ninput = b, c\n"
                        "[j2]\ntype = join\ninput = j1, a\norder = concat\n");
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_CONCAT);
    cr_assert_str_eq(inputs_of(pl, "sink"), "b c a");
    cr_assert_eq(chan(pl, "b", "sink")->rank, 0);
    cr_assert_eq(chan(pl, "c", "sink")->rank, 1);
    cr_assert_eq(chan(pl, "a", "sink")->rank, 2);
    free_plan(pl);
}

Test(graph_plan, processor_with_two_inputs_merges_by_arrival)
{
    cv_plan *pl = build("[f]\ntype = replicate\n"
                        "[x]\nplugin = text:upper\ninput = f\n"
                        "[y]\nplugin = text:lower\ninput = f\n"
                        "[z]\nplugin = text:lower\ninput = x, y\n");
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_eq(pl->nchans, 5);
    cr_assert_str_eq(inputs_of(pl, "z"), "x y");
    cr_assert_eq(order_of(pl, "z"), CV_ORDER_ARRIVAL);
    free_plan(pl);
}

Test(graph_plan, source_join_marks_channels_ordered)
{
    cv_plan *pl = build("[f]\ntype = balance\n"
                        "[x]\nplugin = text:upper\ninput = f\n"
                        "[y]\nplugin = text:lower\ninput = f\n"
                        "[j]\ntype = join\ninput = x, y\norder = source\n"
                        "[z]\nplugin = text:upper\n");
    cr_assert_eq(order_of(pl, "z"), CV_ORDER_SOURCE);
    cr_assert_eq(order_of(pl, "x"), CV_ORDER_SOURCE);
    cr_assert_eq(order_of(pl, "y"), CV_ORDER_SOURCE);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_ARRIVAL);
    cr_assert(chan(pl, "source", "x")->ordered);
    cr_assert(chan(pl, "source", "y")->ordered);
    cr_assert(chan(pl, "x", "z")->ordered);
    cr_assert(chan(pl, "y", "z")->ordered);
    cr_assert_not(chan(pl, "z", "sink")->ordered);
    free_plan(pl);
}

/* A join's order holds for whatever reads it, through a fork too: the
 * consumers after a replicate each merge the join's inputs in its order. */
Test(graph_plan, join_order_holds_through_a_fork)
{
    static const char ini[] =
        "[f]\ntype = %s\n"
        "[a]\nplugin = text:upper\ninput = f\n"
        "[b]\nplugin = text:lower\ninput = f\n"
        "[j]\ntype = join\ninput = a, b\norder = %s\n"
        "[g]\ntype = replicate\n"
        "[c]\nplugin = text:upper\ninput = g\n"
        "[d]\nplugin = text:lower\ninput = g\n";
    static const struct { const char *fork, *order; enum cv_order want; } cases[] = {
        {"replicate", "concat", CV_ORDER_CONCAT},
        {"balance", "source", CV_ORDER_SOURCE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, ini, cases[i].fork, cases[i].order);
        cv_plan *pl = build(text);
        cr_assert_eq(pl->nprocs, 6);
        cr_assert_eq(pl->nchans, 8);
        cr_assert_str_eq(inputs_of(pl, "c"), "a b");
        cr_assert_str_eq(inputs_of(pl, "d"), "a b");
        cr_assert_eq(order_of(pl, "c"), cases[i].want, "c merges by %d after a %s join",
                     order_of(pl, "c"), cases[i].order);
        cr_assert_eq(order_of(pl, "d"), cases[i].want, "d merges by %d after a %s join",
                     order_of(pl, "d"), cases[i].order);
        cr_assert_eq(chan(pl, "a", "c")->rank, 0);
        cr_assert_eq(chan(pl, "b", "c")->rank, 1);
        free_plan(pl);
    }
}

Test(graph_errors, source_order_after_concat_through_a_fork_is_refused)
{
    expect_error("[f]\n"                        /* 1 */
                 "type = balance\n"             /* 2 */
                 "[a]\n"                        /* 3 */
                 "plugin = text:upper\n"        /* 4 */
                 "input = f\n"                  /* 5 */
                 "[b]\n"                        /* 6 */
                 "plugin = text:lower\n"        /* 7 */
                 "input = f\n"                  /* 8 */
                 "[j1]\n"                       /* 9 */
                 "type = join\n"                /* 10 */
                 "input = a, b\n"               /* 11 */
                 "order = concat\n"             /* 12 */
                 "[g]\n"                        /* 13 */
                 "type = replicate\n"           /* 14 */
                 "[c]\n"                        /* 15 */
                 "plugin = text:upper\n"        /* 16 */
                 "input = g\n"                  /* 17 */
                 "[d]\n"                        /* 18 */
                 "plugin = text:lower\n"        /* 19 */
                 "input = g\n"                  /* 20 */
                 "[j2]\n"                       /* 21 */
                 "type = join\n"                /* 22 */
                 "input = c, d\n"               /* 23 */
                 "order = source\n",            /* 24 */
                 "t.ini:12: [j1] merges with order = concat, but a join after it asks for "
                 "order = source, which cannot be restored after a concat");
}

/* An arrival merge upstream of an order = source join is upgraded to
 * source order, or the join could not restore it. */
Test(graph_plan, source_order_is_upgraded_upstream)
{
    cv_plan *pl = build("[f]\ntype = balance\n"
                        "[a]\nplugin = text:upper\ninput = f\n"
                        "[b]\nplugin = text:lower\ninput = f\n"
                        "[j1]\ntype = join\ninput = a, b\n"
                        "[m]\nplugin = text:upper\n"
                        "[g]\ntype = balance\n"
                        "[c]\nplugin = text:upper\ninput = g\n"
                        "[d]\nplugin = text:lower\ninput = g\n"
                        "[j2]\ntype = join\ninput = c, d\norder = source\n");
    cr_assert_eq(pl->nprocs, 7);
    cr_assert_eq(pl->nchans, 8);
    cr_assert_eq(order_of(pl, "m"), CV_ORDER_SOURCE);
    cr_assert_eq(order_of(pl, "sink"), CV_ORDER_SOURCE);
    for (size_t c = 0; c < pl->nchans; c++)
        cr_assert(pl->chans[c].ordered, "channel %s -> %s is not ordered",
                  pl->procs[pl->chans[c].from].label, pl->procs[pl->chans[c].to].label);
    free_plan(pl);
}

/* Python Conveyor's fork-and-join test: nested replicates after a balance. */
Test(graph_plan, nested_replicates_after_balance)
{
    cv_plan *pl = build("[bal]\ntype = balance\npolicy = round-robin\n"
                        "[pa]\ntype = pipe\ninput = bal\n"
                        "[ma]\nplugin = testplug:tag\ninput = pa\n"
                        "[da]\nplugin = testplug:tag\ninput = bal\n"
                        "[ra]\ntype = replicate\ninput = ma\n"
                        "[rb]\ntype = replicate\ninput = da\n"
                        "[w]\nplugin = testplug:tag\ninput = ra\n"
                        "[x]\nplugin = testplug:tag\ninput = ra\n"
                        "[y]\nplugin = testplug:tag\ninput = rb\n"
                        "[z]\nplugin = testplug:tag\ninput = rb\n"
                        "[j]\ntype = join\ninput = w, x, y, z\norder = source\n"
                        "[count]\nplugin = text:identity\n");
    cr_assert_eq(pl->nprocs, 9);
    cr_assert_eq(pl->nchans, 11);
    const cv_route *out = pl->procs[proc(pl, "source")].out;
    cr_assert_eq(out->kind, CV_ROUTE_BALANCE);
    cr_assert_eq(out->kids[0]->channel, chan_index(pl, "source", "ma"));
    cr_assert_eq(out->kids[1]->channel, chan_index(pl, "source", "da"));
    const cv_route *ma = pl->procs[proc(pl, "ma")].out;
    cr_assert_eq(ma->kind, CV_ROUTE_REPLICATE);
    cr_assert_eq(ma->kids[0]->channel, chan_index(pl, "ma", "w"));
    cr_assert_eq(ma->kids[1]->channel, chan_index(pl, "ma", "x"));
    cr_assert_str_eq(inputs_of(pl, "count"), "w x y z");
    cr_assert_eq(order_of(pl, "count"), CV_ORDER_SOURCE);
    cr_assert_not(chan(pl, "count", "sink")->ordered);
    cr_assert(chan(pl, "source", "ma")->ordered);
    cr_assert(chan(pl, "da", "z")->ordered);
    free_plan(pl);
}

Test(graph_plan, pipes_only_connect_source_to_sink)
{
    cv_plan *pl = build("[a]\ntype = pipe\n[b]\ntype = pipe\n");
    cr_assert_eq(pl->nprocs, 2);
    cr_assert_eq(pl->nchans, 1);
    chan(pl, "source", "sink");
    free_plan(pl);
}

Test(graph_plan, dot_output)
{
    cv_plan *pl = build("[fork]\ntype = replicate\n"
                        "[upper]\nplugin = text:upper\ninput = fork\n"
                        "[cube]\nplugin = math:cube\ninput = fork\nreplicas = 3\n"
                        "[join]\ntype = join\ninput = upper, cube\norder = concat\n");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    cr_assert_eq(cv_plan_write_dot(pl, f), 0);
    fclose(f);
    cr_assert(strstr(text, "digraph conveyor {"), "%s", text);
    cr_assert(strstr(text, "cube[2]"), "%s", text);
    cr_assert(strstr(text, "replicas = 3"), "%s", text);
    cr_assert(strstr(text, "join (order = concat)"), "%s", text);
    cr_assert(strstr(text, "6 processes, 8 channels"), "%s", text);
    cr_assert_eq(text[len - 2], '}');
    free(text);
    free_plan(pl);
}

/* type = source stages take the input reader's place: their replicas are
 * the first processes, there is no "source" process, and they route like
 * processors. */
Test(graph_plan, source_stages_are_the_first_processes)
{
    cv_plan *pl = build("[a]\ntype = source\nplugin = m:a\nreplicas = 2\n"
                        "[b]\ntype = source\nplugin = m:b\n"
                        "[j]\ntype = join\ninput = a, b\norder = source\n"
                        "[z]\nplugin = text:upper\n");
    cr_assert_eq(pl->nsources, 3);
    cr_assert(pl->plugin_sources);
    cr_assert_eq(pl->nprocs, 5);
    cr_assert_str_eq(pl->procs[0].label, "a[0]");
    cr_assert_str_eq(pl->procs[1].label, "a[1]");
    cr_assert_str_eq(pl->procs[2].label, "b");
    for (int p = 0; p < 3; p++) {
        cr_assert_eq(pl->procs[p].kind, CV_PROC_SOURCE);
        cr_assert_eq(pl->procs[p].ninputs, 0);
    }
    cr_assert_eq(pl->procs[3].kind, CV_PROC_STAGE);
    cr_assert_str_eq(inputs_of(pl, "z"), "a[0] a[1] b");
    cr_assert_eq(order_of(pl, "z"), CV_ORDER_SOURCE);
    cr_assert(chan(pl, "a[0]", "z")->ordered);
    cr_assert(chan(pl, "b", "z")->ordered);
    free_plan(pl);
}

Test(graph_plan, without_source_stages_the_reader_is_the_only_source)
{
    cv_plan *pl = build("[z]\nplugin = text:upper\n");
    cr_assert_eq(pl->nsources, 1);
    cr_assert_not(pl->plugin_sources);
    cr_assert_eq(pl->procs[0].kind, CV_PROC_SOURCE);
    cr_assert_eq(pl->procs[0].stage, -1);
    free_plan(pl);
}

Test(graph_errors, a_cycle_beside_a_source_is_found)
{
    expect_error("[a]\ntype = source\nplugin = m:a\n"     /* 1-3 */
                 "[x]\nplugin = m:x\ninput = y\n"          /* 4-6 */
                 "[y]\nplugin = m:y\ninput = x\n",         /* 7-9 */
                 "t.ini:6: the stages form a cycle: x -> y -> x");
}
