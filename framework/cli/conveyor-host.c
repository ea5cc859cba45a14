/* SPDX-License-Identifier: MIT */
/*
 * conveyor-host - runs a Conveyor pipeline described in an INI file.
 *
 * A thin command line over libconveyor's host API (conveyor/host.h).  Exit
 * status: 0 done, 1 a stage failed or crashed, 2 bad command line or
 * configuration, 3 a plugin could not be loaded, 128+N stopped by signal N.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <conveyor/host.h>
#include "cli/top.h"

static const char usage_text[] =
    "Usage: conveyor-host [OPTIONS] -c PIPELINE.ini\n"
    "       conveyor-host --top [PID] [--once] [--json]\n"
    "Runs a multi-process pipeline: items read from the pipeline's input flow\n"
    "through its stages (plugins, each in its own process) to its output.\n"
    "\n"
    "  -c, --config FILE     the pipeline to run (or check, or draw)\n"
    "      --check           validate FILE and load every plugin it names; start nothing\n"
    "      --graph           print FILE's pipeline as Graphviz DOT\n"
    "                        (conveyor-host --graph -c p.ini | dot -Tsvg > p.svg)\n"
    "      --list-plugins [MODULE]  list every MODULE:STAGE on the plugin search\n"
    "                        path, with each stage's parameters (or MODULE's alone)\n"
    "      --plugin-path DIRS  ':'-separated folders to search for plugins\n"
    "      --cleanup         remove shared-memory segments left by hosts that died\n"
    "      --progress        redraw a progress line on standard error while it runs\n"
    "                        (the default when standard error is a terminal)\n"
    "      --no-progress     no progress line\n"
    "      --top [PID]       show a running pipeline's live metrics, by its host's pid\n"
    "                        (without PID: the only one running), redrawn every second\n"
    "      --once            with --top: one snapshot, then exit\n"
    "      --json            with --top: the snapshot as JSON (implies --once)\n"
    "  -v, --verbose         say more; -vv adds debug messages (plugins tried,\n"
    "                        sizes, process ids, restart back-off)\n"
    "  -q, --quiet           say only errors (no warnings, no summary at the end)\n"
    "      --log-time        start every message with the UTC time (ISO 8601, ms)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "\n"
    "A run ends with a summary on standard error: its duration, items read and\n"
    "written, the rate, and each stage process's items and restarts.\n"
    "\n"
    "Plugins are searched in the pipeline's plugin_path, then --plugin-path,\n"
    "then $CONVEYOR_PLUGIN_PATH, then %s.\n"
    "Exit status: 0 done, 1 a stage failed or crashed, 2 bad command line or\n"
    "configuration, 3 a plugin could not be loaded, 128+N stopped by signal N.\n";

enum { OPT_CHECK = 256, OPT_GRAPH, OPT_LIST, OPT_PLUGIN_PATH, OPT_CLEANUP, OPT_LOG_TIME,
       OPT_PROGRESS, OPT_NO_PROGRESS, OPT_TOP, OPT_ONCE, OPT_JSON };

/* --version: the program's version, then the library's (libconveyor may be
 * upgraded apart from the program) and the plugin ABI modules are built
 * for: the ABI conveyor.pc states as abi_major/abi_minor. */
static void print_version(void)
{
    printf("conveyor-host (Conveyor) %s\n", PACKAGE_VERSION);
    printf("libconveyor %s, plugin ABI %d.%d (loads modules of ABI %d.0 to %d.%d)\n",
           conveyor_version(), CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR, CONVEYOR_ABI_MAJOR,
           CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR);
    printf("plugin folder: %s\n", conveyor_plugindir());
}

static int usage_error(const char *msg)
{
    conveyor_message("%s (see conveyor-host --help)", msg);
    return CONVEYOR_EXIT_CONFIG;
}

static void prepend_plugin_path(const char *dirs)
{
    const char *old = getenv("CONVEYOR_PLUGIN_PATH");
    if (!old || !*old) {
        setenv("CONVEYOR_PLUGIN_PATH", dirs, 1);
        return;
    }
    size_t n = strlen(dirs) + strlen(old) + 2;
    char *both = malloc(n);
    if (!both)
        return;
    snprintf(both, n, "%s:%s", dirs, old);
    setenv("CONVEYOR_PLUGIN_PATH", both, 1);
    free(both);
}

/* What the command line asked for. */
struct cli {
    const char *config;
    const char *module;         /* --list-plugins MODULE */
    int check, graph, list, cleanup, verbosity;
    int progress;               /* -1 the default, 0 or 1 asked for */
    int top, once, json;
    long top_pid;               /* 0: the only one running */
};

/* --top [PID]: the one argument is the host's pid.  -1 to go on, else the
 * status to exit with. */
static int top_args(int argc, char **argv, struct cli *o)
{
    char msg[160];
    if (o->config || o->check || o->graph || o->list || o->cleanup)
        return usage_error("--top goes with no pipeline and no other action");
    if (optind + 1 < argc)
        return usage_error("too many arguments");
    if (optind < argc) {
        char *end;
        errno = 0;
        long pid = strtol(argv[optind], &end, 10);
        if (errno || end == argv[optind] || *end || pid <= 0) {
            snprintf(msg, sizeof msg, "--top: '%s' is not a process id", argv[optind]);
            return usage_error(msg);
        }
        o->top_pid = pid;
    }
    return -1;
}

/* Reads the options into O: -1 to go on, else the status to exit with. */
static int parse_args(int argc, char **argv, struct cli *o)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, OPT_CHECK},
        {"graph", no_argument, NULL, OPT_GRAPH},
        {"list-plugins", no_argument, NULL, OPT_LIST},
        {"plugin-path", required_argument, NULL, OPT_PLUGIN_PATH},
        {"cleanup", no_argument, NULL, OPT_CLEANUP},
        {"log-time", no_argument, NULL, OPT_LOG_TIME},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"top", no_argument, NULL, OPT_TOP},
        {"once", no_argument, NULL, OPT_ONCE},
        {"json", no_argument, NULL, OPT_JSON},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    char msg[128];
    int c;

    *o = (struct cli){.verbosity = 1, .progress = -1};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:vqhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case OPT_CHECK: o->check = 1; break;
        case OPT_GRAPH: o->graph = 1; break;
        case OPT_LIST: o->list = 1; break;
        case OPT_PLUGIN_PATH: prepend_plugin_path(optarg); break;
        case OPT_CLEANUP: o->cleanup = 1; break;
        case OPT_PROGRESS: o->progress = 1; break;
        case OPT_NO_PROGRESS: o->progress = 0; break;
        case OPT_TOP: o->top = 1; break;
        case OPT_ONCE: o->once = 1; break;
        case OPT_JSON: o->json = 1; break;
        /* At once: a bad option after it is reported with the time too. */
        case OPT_LOG_TIME: conveyor_set_log_time(1); break;
        case 'v': o->verbosity++; break;
        case 'q': o->verbosity = 0; break;
        case 'h': printf(usage_text, conveyor_plugindir()); return CONVEYOR_EXIT_OK;
        case 'V': print_version(); return CONVEYOR_EXIT_OK;
        case ':':
            snprintf(msg, sizeof msg, "option '%s' needs a value", argv[optind - 1]);
            return usage_error(msg);
        default:
            snprintf(msg, sizeof msg, "unknown option '%s'", argv[optind - 1]);
            return usage_error(msg);
        }
    }
    if (o->top)
        return top_args(argc, argv, o);
    if (o->once || o->json)
        return usage_error("--once and --json go with --top");
    if (optind < argc) {
        if (optind + 1 < argc || (o->config && !o->list))
            return usage_error("too many arguments");
        /* With --list-plugins a word is the module to list; -c still
         * gives the pipeline whose plugin_path is searched. */
        if (o->list)
            o->module = argv[optind];
        else
            o->config = argv[optind];
    }
    if (o->check + o->graph > 1)
        return usage_error("--check and --graph do not go together");
    return -1;
}

static int cleanup_stale(const struct cli *o)
{
    int n = conveyor_cleanup_stale();
    if (n < 0) {
        conveyor_message("cannot scan for stale segments: %s", strerror(-n));
        return CONVEYOR_EXIT_FAILED;
    }
    if (o->verbosity > 0)
        printf("removed %d stale shared-memory segment%s\n", n, n == 1 ? "" : "s");
    return CONVEYOR_EXIT_OK;
}

/* --list-plugins, with the pipeline's plugin_path when one is given. */
static int list_plugins(const struct cli *o)
{
    conveyor_pipeline *pl = NULL;
    const char *extra = NULL;
    char err[2048];
    if (o->config) {
        int rc = conveyor_pipeline_open(o->config, &pl, err, sizeof err);
        if (rc != CONVEYOR_EXIT_OK && rc != CONVEYOR_EXIT_PLUGIN) {
            conveyor_message("%s", err);
            return rc;
        }
        extra = pl ? conveyor_pipeline_plugin_path(pl) : NULL;
    }
    if (o->module) {
        int rc = conveyor_list_module(extra, o->module, stdout, err, sizeof err);
        if (rc != CONVEYOR_EXIT_OK)
            conveyor_message("%s", err);
        conveyor_pipeline_close(pl);
        return rc;
    }
    int n = conveyor_list_plugins(extra, stdout);
    conveyor_pipeline_close(pl);
    return n < 0 ? CONVEYOR_EXIT_FAILED : CONVEYOR_EXIT_OK;
}

/* Checks, draws or runs the pipeline. */
static int pipeline(const struct cli *o)
{
    conveyor_pipeline *pl = NULL;
    char err[2048];
    int rc = conveyor_pipeline_open(o->config, &pl, err, sizeof err);
    if (rc != CONVEYOR_EXIT_OK) {
        conveyor_message("%s", err);
        return rc;
    }
    if (o->check) {
        size_t ns, np, nc;
        conveyor_pipeline_describe(pl, &ns, &np, &nc);
        printf("%s: ok (%zu stage%s, %zu processes, %zu channel%s)\n", o->config, ns,
               ns == 1 ? "" : "s", np, nc, nc == 1 ? "" : "s");
    } else if (o->graph) {
        rc = conveyor_pipeline_write_dot(pl, stdout);
    } else {
        rc = conveyor_pipeline_run(pl);
    }
    conveyor_pipeline_close(pl);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli o;
    /* First, before anything points into argv: ps then shows what each
     * process of a run is.  Without it only the processes' short names
     * change, so a failure is no reason to stop. */
    (void)conveyor_set_process_title_area(argc, argv);
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    conveyor_set_verbosity(o.verbosity);
    if (o.top)
        return cv_top(o.top_pid, o.once || o.json, o.json);
    conveyor_set_progress(o.progress);
    if (o.cleanup) {
        rc = cleanup_stale(&o);
        if (rc != CONVEYOR_EXIT_OK || (!o.config && !o.list))
            return rc;
    }
    if (o.list)
        return list_plugins(&o);
    if (!o.config)
        return usage_error("no pipeline given: use -c PIPELINE.ini");
    rc = pipeline(&o);
    if (fflush(stdout) != 0 && rc == CONVEYOR_EXIT_OK)
        rc = CONVEYOR_EXIT_FAILED;
    return rc;
}
