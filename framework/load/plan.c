/* SPDX-License-Identifier: MIT */
/*
 * plan.c - checks the stages of a pipeline as a graph and compiles it into
 * processes, channels and routes (see plan.h).
 *
 * Nodes are the config's stages plus two pseudo-nodes, the source (what
 * [pipeline] input reads) and the sink (what writes output).  Every node but
 * a fork feeds at most one consumer; forks feed at least two; terminal
 * processors, pipes and joins feed the sink.  A pipeline with type = source
 * stages has no built-in source: its items come from those stages, which
 * have no inputs and compile like processors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/plan.h"
#include "base/util.h"

#define SOURCE (-1)
#define SINK (-2)

typedef struct node {
    int *in;            /* upstream nodes (SOURCE allowed) */
    size_t nin;
    int *out;           /* downstream nodes (no SINK here) */
    size_t nout;
    int first_proc;     /* processors: index of replica 0 */
} node;

typedef struct builder {
    const cv_config *cfg;
    node *nodes;
    int *terminals;     /* nodes feeding the sink, in file order */
    size_t nterminals;
    int first_source;   /* the first type = source stage, or -1 */
    cv_plan *plan;
    /* per channel: its path through joins (ports), for ranking */
    unsigned **paths;
    size_t *pathlens;
    char *err;
    size_t errlen;
} builder;

static int fail(builder *b, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(builder *b, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cv_verr_at(b->err, b->errlen, -EINVAL, b->cfg->path, line, fmt, ap);
    va_end(ap);
    return rc;
}

static void push_int(int **arr, size_t *n, int v)
{
    *arr = cv_realloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

static int is_fork(const cv_stage_cfg *st)
{
    return st->type == CV_TYPE_REPLICATE || st->type == CV_TYPE_BALANCE;
}

/* --- validation ------------------------------------------------------- */

static int resolve_inputs(builder *b)
{
    const cv_config *cfg = b->cfg;
    const char **names = cv_calloc(cfg->nstages + 1, sizeof *names);
    for (size_t i = 0; i < cfg->nstages; i++)
        names[i] = cfg->stages[i].name;

    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        node *nd = &b->nodes[i];
        if (st->type == CV_TYPE_SOURCE)
            continue;   /* no input: the config refuses one */
        if (st->inputs_default || st->ninputs == 0) {
            push_int(&nd->in, &nd->nin, i == 0 ? SOURCE : (int)i - 1);
            continue;
        }
        for (size_t k = 0; k < st->ninputs; k++) {
            int j = cv_config_find_stage(cfg, st->inputs[k].name);
            if (j < 0) {
                const char *s = cv_suggest(st->inputs[k].name, names);
                int rc = s ? fail(b, st->inputs[k].line,
                                  "[%s] reads from '%s', which is not a stage (did you mean '%s'?)",
                                  st->name, st->inputs[k].name, s)
                           : fail(b, st->inputs[k].line, "[%s] reads from '%s', which is not a stage",
                                  st->name, st->inputs[k].name);
                free(names);
                return rc;
            }
            for (size_t m = 0; m < nd->nin; m++)
                if (nd->in[m] == j) {
                    free(names);
                    return fail(b, st->inputs[k].line, "[%s] lists input '%s' twice", st->name,
                                st->inputs[k].name);
                }
            if ((size_t)j == i) {
                free(names);
                return fail(b, st->inputs[k].line, "[%s] reads from itself (a cycle: %s -> %s)",
                            st->name, st->name, st->name);
            }
            push_int(&nd->in, &nd->nin, j);
        }
    }
    free(names);

    for (size_t i = 0; i < cfg->nstages; i++)
        for (size_t k = 0; k < b->nodes[i].nin; k++) {
            int up = b->nodes[i].in[k];
            if (up >= 0)
                push_int(&b->nodes[up].out, &b->nodes[up].nout, (int)i);
        }
    return 0;
}

/* A pipeline with source stages reads no [pipeline] input: a stage that
 * would read it (the first section, without input =) or an input that is
 * set is a mistake, named rather than ignored. */
static int check_sources(builder *b, size_t source_readers)
{
    const cv_config *cfg = b->cfg;
    const cv_stage_cfg *src = &cfg->stages[b->first_source];
    if (source_readers) {
        for (size_t i = 0; i < cfg->nstages; i++)
            if (b->nodes[i].nin && b->nodes[i].in[0] == SOURCE)
                return fail(b, cfg->stages[i].input_line,
                            "[%s] reads the pipeline's input, but this pipeline's items come "
                            "from its source stages ([%s] at line %d): name one in input =",
                            cfg->stages[i].name, src->name, src->line);
    }
    if (cfg->input_line)
        return fail(b, cfg->input_line,
                    "[pipeline] input is never read: this pipeline's items come from its "
                    "source stages ([%s] at line %d)", src->name, src->line);
    return 0;
}

static int check_shapes(builder *b)
{
    const cv_config *cfg = b->cfg;
    size_t source_readers = 0;

    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        const node *nd = &b->nodes[i];
        for (size_t k = 0; k < nd->nin; k++)
            if (nd->in[k] == SOURCE)
                source_readers++;

        switch (st->type) {
        case CV_TYPE_JOIN:
            if (nd->nin < 2)
                return fail(b, st->input_line,
                            "join [%s] has %zu input; a join merges two or more (input = a, b)",
                            st->name, nd->nin);
            break;
        case CV_TYPE_PIPE:
        case CV_TYPE_REPLICATE:
        case CV_TYPE_BALANCE:
            if (nd->nin > 1)
                return fail(b, st->input_line,
                            "%s [%s] has %zu inputs; only a join or a processor reads several "
                            "(put a join before it)",
                            cv_type_name(st->type), st->name, nd->nin);
            break;
        case CV_TYPE_PROCESSOR:
        case CV_TYPE_SOURCE:
            break;
        }

        if (is_fork(st)) {
            if (nd->nout == 0)
                return fail(b, st->line, "%s [%s] has no consumers: no stage names it as input",
                            cv_type_name(st->type), st->name);
            if (nd->nout == 1)
                return fail(b, st->line,
                            "%s [%s] has only one consumer ([%s]); a fork needs two or more",
                            cv_type_name(st->type), st->name, cfg->stages[nd->out[0]].name);
        } else if (nd->nout > 1) {
            const cv_stage_cfg *a = &cfg->stages[nd->out[0]], *c = &cfg->stages[nd->out[1]];
            return fail(b, c->input_line,
                        "[%s] is read by more than one stage ([%s] at line %d, [%s] at line %d); "
                        "put a replicate (every item to each) or a balance (each item to one) after it",
                        st->name, a->name, a->input_line, c->name, c->input_line);
        } else if (nd->nout == 0) {
            push_int(&b->terminals, &b->nterminals, (int)i);
        }
    }
    if (b->first_source >= 0)
        return check_sources(b, source_readers);
    if (source_readers == 0)
        return fail(b, cfg->stages[0].line,
                    "no stage reads the pipeline's input: the first section [%s] names an input, "
                    "so nothing is fed from [pipeline] input",
                    cfg->stages[0].name);
    return 0;
}

/* Depth-first search for a cycle; prints it as "a -> b -> a". */
static int find_cycle(builder *b)
{
    size_t n = b->cfg->nstages;
    int *state = cv_calloc(n, sizeof *state);   /* 0 new, 1 on stack, 2 done */
    int *stack = cv_calloc(n, sizeof *stack);
    size_t *edge = cv_calloc(n, sizeof *edge);
    int rc = 0;

    for (size_t root = 0; root < n && rc == 0; root++) {
        if (state[root])
            continue;
        size_t sp = 0;
        stack[sp++] = (int)root;
        state[root] = 1;
        edge[root] = 0;
        while (sp && rc == 0) {
            int v = stack[sp - 1];
            if (edge[v] < b->nodes[v].nout) {
                int w = b->nodes[v].out[edge[v]++];
                if (state[w] == 1) {
                    char buf[512] = "";
                    size_t k = 0;
                    while (stack[k] != w)
                        k++;
                    for (; k < sp; k++) {
                        strncat(buf, b->cfg->stages[stack[k]].name, sizeof buf - strlen(buf) - 1);
                        strncat(buf, " -> ", sizeof buf - strlen(buf) - 1);
                    }
                    strncat(buf, b->cfg->stages[w].name, sizeof buf - strlen(buf) - 1);
                    const cv_stage_cfg *st = &b->cfg->stages[w];
                    rc = fail(b, st->input_line, "the stages form a cycle: %s", buf);
                } else if (state[w] == 0) {
                    state[w] = 1;
                    edge[w] = 0;
                    stack[sp++] = w;
                }
            } else {
                state[v] = 2;
                sp--;
            }
        }
    }
    free(state);
    free(stack);
    free(edge);
    return rc;
}

/* Routes and sizes are computed by recursion along chains of stages: a
 * chain deeper than this is refused rather than allowed to overflow the
 * stack (of a thread that embeds the library, too).  Far beyond any real
 * pipeline: a chain of processors stops at the channel limit long before. */
#define MAX_DEPTH 10000

/* The longest chain from the input, found without recursion (Kahn's order
 * over the acyclic graph find_cycle left). */
static int check_depth(builder *b)
{
    size_t n = b->cfg->nstages;
    size_t *indeg = cv_calloc(n + 1, sizeof *indeg), *depth = cv_calloc(n + 1, sizeof *depth);
    int *queue = cv_calloc(n + 1, sizeof *queue);
    size_t qh = 0, qt = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < b->nodes[i].nin; k++)
            if (b->nodes[i].in[k] >= 0)
                indeg[i]++;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0) {
            depth[i] = 1;
            queue[qt++] = (int)i;
        }
    while (qh < qt && rc == 0) {
        int v = queue[qh++];
        if (depth[v] > MAX_DEPTH) {
            const cv_stage_cfg *st = &b->cfg->stages[v];
            rc = fail(b, st->line, "stage [%s] lies more than %d stages deep in a chain from the "
                      "input; split the pipeline", st->name, MAX_DEPTH);
            break;
        }
        for (size_t k = 0; k < b->nodes[v].nout; k++) {
            int w = b->nodes[v].out[k];
            if (depth[w] < depth[v] + 1)
                depth[w] = depth[v] + 1;
            if (--indeg[w] == 0)
                queue[qt++] = w;
        }
    }
    free(indeg);
    free(depth);
    free(queue);
    return rc;
}

static int check_reachable(builder *b)
{
    size_t n = b->cfg->nstages;
    char *seen = cv_calloc(n, 1);
    int *queue = cv_calloc(n, sizeof *queue);
    size_t qh = 0, qt = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        int seed = b->cfg->stages[i].type == CV_TYPE_SOURCE;
        for (size_t k = 0; k < b->nodes[i].nin; k++)
            if (b->nodes[i].in[k] == SOURCE)
                seed = 1;
        if (seed && !seen[i]) {
            seen[i] = 1;
            queue[qt++] = (int)i;
        }
    }
    while (qh < qt) {
        int v = queue[qh++];
        for (size_t k = 0; k < b->nodes[v].nout; k++) {
            int w = b->nodes[v].out[k];
            if (!seen[w]) {
                seen[w] = 1;
                queue[qt++] = w;
            }
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!seen[i])
            rc = fail(b, b->cfg->stages[i].line,
                      "stage [%s] is not reached from the pipeline's %s", b->cfg->stages[i].name,
                      b->first_source >= 0 ? "sources" : "input");
    free(seen);
    free(queue);
    return rc;
}

/* --- compiling: processes, channels, routes ---------------------------- */

static int index_of(const int *arr, size_t n, int v)
{
    for (size_t i = 0; i < n; i++)
        if (arr[i] == v)
            return (int)i;
    return -1;
}

static int add_channel(builder *b, int from, int to, const unsigned *path, size_t len)
{
    cv_plan *pl = b->plan;
    size_t c = pl->nchans++;
    pl->chans = cv_realloc(pl->chans, pl->nchans * sizeof *pl->chans);
    b->paths = cv_realloc(b->paths, pl->nchans * sizeof *b->paths);
    b->pathlens = cv_realloc(b->pathlens, pl->nchans * sizeof *b->pathlens);
    pl->chans[c] = (cv_chan_desc){.from = from, .to = to, .rank = 0, .ordered = 0};
    b->paths[c] = cv_calloc(len + 1, sizeof(unsigned));
    if (len)
        memcpy(b->paths[c], path, len * sizeof(unsigned));
    b->pathlens[c] = len;
    return (int)c;
}

static cv_route *new_route(enum cv_route_kind kind)
{
    cv_route *r = cv_calloc(1, sizeof *r);
    r->kind = kind;
    r->channel = -1;
    return r;
}

static void route_add(cv_route *r, cv_route *kid)
{
    r->kids = cv_realloc(r->kids, (r->nkids + 1) * sizeof *r->kids);
    r->kids[r->nkids++] = kid;
}

static cv_route *route_to(builder *b, int proc, int to, int from, unsigned *path, size_t len);

/* Where an item goes once it leaves node FROM (whose only consumer, if any,
 * is known). */
static cv_route *route_from(builder *b, int proc, int from, unsigned *path, size_t len)
{
    const node *nd = &b->nodes[from];
    if (nd->nout == 0) {
        if (b->nterminals > 1)
            path[len++] = (unsigned)index_of(b->terminals, b->nterminals, from);
        return route_to(b, proc, SINK, from, path, len);
    }
    return route_to(b, proc, nd->out[0], from, path, len);
}

static cv_route *route_to(builder *b, int proc, int to, int from, unsigned *path, size_t len)
{
    cv_plan *pl = b->plan;
    if (to == SINK) {
        cv_route *r = new_route(CV_ROUTE_CHANNEL);
        r->channel = add_channel(b, proc, (int)pl->nprocs - 1, path, len);
        return r;
    }
    const cv_stage_cfg *st = &b->cfg->stages[to];
    const node *nd = &b->nodes[to];
    switch (st->type) {
    case CV_TYPE_PROCESSOR: {
        if (nd->nin > 1)
            path[len++] = (unsigned)index_of(nd->in, nd->nin, from);
        if (st->replicas == 1) {
            cv_route *r = new_route(CV_ROUTE_CHANNEL);
            r->channel = add_channel(b, proc, nd->first_proc, path, len);
            return r;
        }
        cv_route *r = new_route(CV_ROUTE_BALANCE);
        r->policy = CV_POLICY_LEAST_LOADED;
        for (unsigned k = 0; k < st->replicas; k++) {
            cv_route *c = new_route(CV_ROUTE_CHANNEL);
            c->channel = add_channel(b, proc, nd->first_proc + (int)k, path, len);
            route_add(r, c);
        }
        return r;
    }
    case CV_TYPE_PIPE:
        return route_from(b, proc, to, path, len);
    case CV_TYPE_JOIN:
        path[len++] = (unsigned)index_of(nd->in, nd->nin, from);
        return route_from(b, proc, to, path, len);
    case CV_TYPE_REPLICATE:
    case CV_TYPE_BALANCE: {
        cv_route *r = new_route(st->type == CV_TYPE_REPLICATE ? CV_ROUTE_REPLICATE : CV_ROUTE_BALANCE);
        r->policy = st->policy;
        for (size_t k = 0; k < nd->nout; k++)
            route_add(r, route_to(b, proc, nd->out[k], to, path, len));
        return r;
    }
    case CV_TYPE_SOURCE:
        break;      /* never a destination: a source has no input */
    }
    return NULL;
}

/* How a consumer merges its inputs: the join nearest to it decides; several
 * inputs without a join merge in arrival order; a replicated processor's
 * outputs merge as its own order key says. */
static enum cv_order node_order(const builder *b, int n, int *line, int *where)
{
    for (;;) {
        if (n < 0)
            return CV_ORDER_ARRIVAL;
        const cv_stage_cfg *st = &b->cfg->stages[n];
        if (st->type == CV_TYPE_PIPE || is_fork(st)) {
            n = b->nodes[n].in[0];
            continue;
        }
        *line = st->order_line;
        *where = n;
        if (st->type == CV_TYPE_JOIN || st->type == CV_TYPE_PROCESSOR ||
            st->type == CV_TYPE_SOURCE)
            return st->order;
        return CV_ORDER_ARRIVAL;
    }
}

static enum cv_order consumer_order(const builder *b, int node_idx, int *line, int *where)
{
    *line = 0;
    *where = -1;
    if (node_idx == SOURCE)
        return CV_ORDER_ARRIVAL;
    if (node_idx == SINK) {
        if (b->nterminals != 1)
            return CV_ORDER_ARRIVAL;
        return node_order(b, b->terminals[0], line, where);
    }
    const node *nd = &b->nodes[node_idx];
    if (nd->nin != 1)
        return CV_ORDER_ARRIVAL;
    return node_order(b, nd->in[0], line, where);
}

/* Compares two channels' paths from the consumer's side: the join nearest
 * to the consumer is the last port in the path and counts first. */
static int cmp_paths(const unsigned *a, size_t na, const unsigned *c, size_t nc)
{
    size_t i = na, j = nc;
    while (i > 0 && j > 0) {
        i--, j--;
        if (a[i] != c[j])
            return a[i] < c[j] ? -1 : 1;
    }
    return (i > 0) - (j > 0);
}

static int proc_node(const cv_plan *pl, int p)
{
    if (pl->procs[p].kind == CV_PROC_SOURCE && pl->procs[p].stage < 0)
        return SOURCE;
    if (pl->procs[p].kind == CV_PROC_SINK)
        return SINK;
    return pl->procs[p].stage;
}

static void assign_inputs(builder *b)
{
    cv_plan *pl = b->plan;
    for (size_t p = 0; p < pl->nprocs; p++) {
        cv_proc *pr = &pl->procs[p];
        for (size_t c = 0; c < pl->nchans; c++)
            if (pl->chans[c].to == (int)p)
                push_int(&pr->inputs, &pr->ninputs, (int)c);
        /* insertion sort by path, then rank = position among distinct paths */
        for (size_t i = 1; i < pr->ninputs; i++) {
            int v = pr->inputs[i];
            size_t j = i;
            while (j > 0 && cmp_paths(b->paths[pr->inputs[j - 1]], b->pathlens[pr->inputs[j - 1]],
                                      b->paths[v], b->pathlens[v]) > 0) {
                pr->inputs[j] = pr->inputs[j - 1];
                j--;
            }
            pr->inputs[j] = v;
        }
        unsigned rank = 0;
        for (size_t i = 0; i < pr->ninputs; i++) {
            int c = pr->inputs[i];
            if (i > 0) {
                int prev = pr->inputs[i - 1];
                if (cmp_paths(b->paths[prev], b->pathlens[prev], b->paths[c], b->pathlens[c]) != 0)
                    rank++;
            }
            pl->chans[c].rank = rank;
        }
    }
}

/* order = source needs every record stream feeding it to be in source
 * order: the processes upstream merge in source order too and their
 * channels carry watermarks. */
static int mark_ordered(builder *b)
{
    cv_plan *pl = b->plan;
    int *todo = cv_calloc(pl->nprocs, sizeof *todo);
    size_t nt = 0;
    int rc = 0;

    /* A process is marked seen when pushed, so it is pushed once and todo
     * never holds more than nprocs entries. */
    char *seen = cv_calloc(pl->nprocs, 1);
    for (size_t p = 0; p < pl->nprocs; p++)
        if (pl->procs[p].order == CV_ORDER_SOURCE) {
            seen[p] = 1;
            todo[nt++] = (int)p;
        }
    while (nt && rc == 0) {
        int p = todo[--nt];
        cv_proc *pr = &pl->procs[p];
        if (pr->order == CV_ORDER_CONCAT) {
            int line, where;
            consumer_order(b, proc_node(pl, p), &line, &where);
            const cv_stage_cfg *st = where >= 0 ? &b->cfg->stages[where] : &b->cfg->stages[0];
            rc = fail(b, line ? line : st->line,
                      "[%s] merges with order = concat, but a join after it asks for order = source, "
                      "which cannot be restored after a concat",
                      st->name);
            break;
        }
        pr->order = CV_ORDER_SOURCE;
        for (size_t i = 0; i < pr->ninputs; i++) {
            cv_chan_desc *ch = &pl->chans[pr->inputs[i]];
            ch->ordered = 1;
            if (!seen[ch->from]) {
                seen[ch->from] = 1;
                todo[nt++] = ch->from;
            }
        }
    }
    free(seen);
    free(todo);
    return rc;
}

static char *proc_label(const cv_stage_cfg *st, unsigned r)
{
    return st->replicas > 1 ? cv_asprintf("%s[%u]", st->name, r) : cv_strdup(st->name);
}

/* restart = on-failure resumes a stage from what its channels hold: that
 * needs the ring transport, and no concat merge (whose spill lives in the
 * dead process). */
static int check_restart(builder *b)
{
    const cv_plan *plan = b->plan;
    for (size_t p = 0; p < plan->nprocs; p++) {
        const cv_proc *pr = &plan->procs[p];
        if (pr->stage < 0)
            continue;
        const cv_stage_cfg *st = &b->cfg->stages[pr->stage];
        if (st->restart != CV_RESTART_ON_FAILURE)
            continue;
        if (b->cfg->transport == CV_TRANSPORT_PIPE)
            return fail(b, st->restart_line, "[%s] restart = on-failure needs transport = ring "
                        "(a pipe cannot give a restarted stage back the item it held)", st->name);
        if (pr->order == CV_ORDER_CONCAT && pr->ninputs > 1)
            return fail(b, st->restart_line, "[%s] restart = on-failure cannot be used on a stage "
                        "that merges its inputs with order = concat", st->name);
    }
    return 0;
}

/* --- size ------------------------------------------------------------- */

/* A producer gets one channel per path to a consumer process, so forks
 * joined again multiply them (k replicate/join diamonds in a row give 2^k)
 * and replicas feeding replicas connect every pair.  Counted before
 * anything is built, and refused past this. */
#define MAX_CHANNELS 4096u

static size_t sat_add(size_t a, size_t c)
{
    return a > SIZE_MAX - c ? SIZE_MAX : a + c;
}

static size_t sat_mul(size_t a, size_t c)
{
    return c && a > SIZE_MAX / c ? SIZE_MAX : a * c;
}

static size_t leaves_to(const builder *b, int n, size_t *memo);

/* How many channels a route leaving node N ends in (as route_from). */
static size_t leaves_from(const builder *b, int n, size_t *memo)
{
    const node *nd = &b->nodes[n];
    return nd->nout == 0 ? 1 : leaves_to(b, nd->out[0], memo);
}

/* Same for a route entering N (as route_to); memo[n] is that plus one. */
static size_t leaves_to(const builder *b, int n, size_t *memo)
{
    const cv_stage_cfg *st = &b->cfg->stages[n];
    size_t total = 0;

    if (memo[n])
        return memo[n] - 1;
    switch (st->type) {
    case CV_TYPE_PROCESSOR:
        total = st->replicas;
        break;
    case CV_TYPE_SOURCE:
        break;      /* never a destination */
    case CV_TYPE_PIPE:
    case CV_TYPE_JOIN:
        total = leaves_from(b, n, memo);
        break;
    case CV_TYPE_REPLICATE:
    case CV_TYPE_BALANCE:
        for (size_t k = 0; k < b->nodes[n].nout; k++)
            total = sat_add(total, leaves_to(b, b->nodes[n].out[k], memo));
        break;
    }
    if (total == SIZE_MAX)
        total--;
    memo[n] = total + 1;
    return total;
}

static int check_size(builder *b)
{
    const cv_config *cfg = b->cfg;
    size_t *memo = cv_calloc(cfg->nstages, sizeof *memo);
    size_t total = 0;
    int rc = 0;

    for (size_t i = 0; i < cfg->nstages; i++)
        if (index_of(b->nodes[i].in, b->nodes[i].nin, SOURCE) >= 0) {
            total = leaves_to(b, (int)i, memo);
            break;
        }
    for (size_t i = 0; i < cfg->nstages && total <= MAX_CHANNELS; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        if (st->type == CV_TYPE_PROCESSOR || st->type == CV_TYPE_SOURCE)
            total = sat_add(total, sat_mul(st->replicas, leaves_from(b, (int)i, memo)));
    }
    if (total > MAX_CHANNELS)
        rc = fail(b, cfg->stages[0].line, "the pipeline compiles to more than %u channels "
                  "(forks joined again and replicas feeding replicas multiply them)",
                  MAX_CHANNELS);
    free(memo);
    return rc;
}

int cv_plan_build(const cv_config *cfg, cv_plan **out, char *err, size_t errlen)
{
    builder b = {.cfg = cfg, .err = err, .errlen = errlen, .first_source = -1};
    int rc;
    *out = NULL;

    if (cfg->nstages == 0)
        return fail(&b, cfg->pipeline_line ? cfg->pipeline_line : 1, "the pipeline has no stages "
                    "(add a section such as [upper] with plugin = text:upper)");
    b.nodes = cv_calloc(cfg->nstages, sizeof *b.nodes);
    for (size_t i = 0; i < cfg->nstages && b.first_source < 0; i++)
        if (cfg->stages[i].type == CV_TYPE_SOURCE)
            b.first_source = (int)i;
    if ((rc = resolve_inputs(&b)) || (rc = find_cycle(&b)) || (rc = check_depth(&b)) ||
        (rc = check_shapes(&b)) ||
        (rc = check_reachable(&b)) || (rc = check_size(&b)))
        goto done;

    cv_plan *pl = cv_calloc(1, sizeof *pl);
    b.plan = pl;
    pl->cfg = cfg;
    size_t nprocs = b.first_source >= 0 ? 1 : 2;
    for (size_t i = 0; i < cfg->nstages; i++)
        if (cfg->stages[i].type == CV_TYPE_PROCESSOR || cfg->stages[i].type == CV_TYPE_SOURCE)
            nprocs += cfg->stages[i].replicas;
    pl->procs = cv_calloc(nprocs, sizeof *pl->procs);
    pl->nprocs = nprocs;
    size_t p = 0;
    /* The sources first: the input reader, or every source stage's replicas. */
    if (b.first_source < 0)
        pl->procs[p++] = (cv_proc){.kind = CV_PROC_SOURCE, .stage = -1,
                                   .label = cv_strdup("source")};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            pl->nsources = p;
        for (size_t i = 0; i < cfg->nstages; i++) {
            const cv_stage_cfg *st = &cfg->stages[i];
            if (st->type != (pass ? CV_TYPE_PROCESSOR : CV_TYPE_SOURCE))
                continue;
            b.nodes[i].first_proc = (int)p;
            for (unsigned r = 0; r < st->replicas; r++)
                pl->procs[p++] = (cv_proc){.kind = pass ? CV_PROC_STAGE : CV_PROC_SOURCE,
                                           .stage = (int)i, .replica = r,
                                           .label = proc_label(st, r)};
        }
    }
    pl->plugin_sources = b.first_source >= 0;
    pl->procs[p++] = (cv_proc){.kind = CV_PROC_SINK, .stage = -1, .label = cv_strdup("sink")};

    /* Routes: every producer process walks from its node downstream.  A
     * path never holds more ports than there are stages, plus the sink's. */
    unsigned *path = cv_calloc(cfg->nstages + 2, sizeof *path);
    for (size_t q = 0; q + 1 < pl->nprocs; q++) {
        cv_proc *pr = &pl->procs[q];
        if (pr->kind == CV_PROC_SOURCE && pr->stage < 0) {
            int first = -1;
            for (size_t i = 0; i < cfg->nstages && first < 0; i++)
                if (index_of(b.nodes[i].in, b.nodes[i].nin, SOURCE) >= 0)
                    first = (int)i;
            pr->out = route_to(&b, (int)q, first, SOURCE, path, 0);
        } else {
            size_t len = 0;
            if (cfg->stages[pr->stage].replicas > 1)
                path[len++] = pr->replica;
            pr->out = route_from(&b, (int)q, pr->stage, path, len);
        }
    }
    free(path);

    assign_inputs(&b);
    for (size_t q = 0; q < pl->nprocs; q++) {
        int line, where;
        pl->procs[q].order = consumer_order(&b, proc_node(pl, (int)q), &line, &where);
    }
    if ((rc = mark_ordered(&b)) || (rc = check_restart(&b)))
        goto done;      /* the plan is freed below, after its paths */
    *out = pl;
done:
    for (size_t i = 0; i < cfg->nstages; i++) {
        free(b.nodes[i].in);
        free(b.nodes[i].out);
    }
    free(b.nodes);
    free(b.terminals);
    if (b.plan)
        for (size_t c = 0; c < b.plan->nchans; c++)
            free(b.paths[c]);
    free(b.paths);
    free(b.pathlens);
    if (rc)
        cv_plan_free(b.plan);
    return rc;
}

static void route_free(cv_route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nkids; i++)
        route_free(r->kids[i]);
    free(r->kids);
    free(r);
}

void cv_plan_free(cv_plan *pl)
{
    if (!pl)
        return;
    for (size_t p = 0; p < pl->nprocs; p++) {
        route_free(pl->procs[p].out);
        free(pl->procs[p].inputs);
        free(pl->procs[p].label);
    }
    free(pl->procs);
    free(pl->chans);
    free(pl);
}
