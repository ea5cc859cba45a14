/* SPDX-License-Identifier: MIT */
/*
 * config.h - reads pipeline.ini into a cv_config.
 *
 * Contract: cv_config_load() parses the file with inih through a reader that
 * counts lines (so every key keeps its line number) and refuses over-long
 * lines instead of letting inih cut them.  It checks everything that can be
 * checked from the file alone: known keys of [pipeline], known stage keys
 * and the stage types they apply to, the values of enumerated keys (type,
 * policy, order, framing, transport, on_error, restart, shared_memory_mode),
 * sizes and numbers, duplicate sections and keys.  The keys themselves are
 * rows of one table (config_keys.h).  Plugin parameters are kept as they are
 * (checked later against the plugin's declared params by the loader).  Graph
 * checks (unknown inputs, cycles, ...) are plan.c's.
 *
 * Errors are written into err as "FILE:LINE: what is wrong", with a
 * suggestion when a close spelling exists; the functions return a negative
 * errno-style code.  Nothing here forks, maps or creates anything.
 */
#ifndef CV_CONFIG_H
#define CV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/strmap.h"

#define CV_ERR_MAX 1024

enum cv_framing { CV_FRAMING_LINES, CV_FRAMING_NUL, CV_FRAMING_LENGTH32 };
enum cv_transport { CV_TRANSPORT_RING, CV_TRANSPORT_PIPE };
#define CV_POOL_AUTO SIZE_MAX
#define CV_POOL_MIN (256 * 1024)
enum cv_stage_type {
    CV_TYPE_PROCESSOR, CV_TYPE_PIPE, CV_TYPE_REPLICATE, CV_TYPE_BALANCE, CV_TYPE_JOIN,
    CV_TYPE_SOURCE
};
enum cv_policy { CV_POLICY_LEAST_LOADED, CV_POLICY_ROUND_ROBIN };
enum cv_order { CV_ORDER_ARRIVAL, CV_ORDER_CONCAT, CV_ORDER_SOURCE };
enum cv_on_error { CV_ON_ERROR_FAIL, CV_ON_ERROR_SKIP, CV_ON_ERROR_DEAD_LETTER };
enum cv_restart { CV_RESTART_NO, CV_RESTART_ON_FAILURE };

/* One "key = value" of a section, with the line it was on.  A multi-line
 * value (inih's continuation lines) is joined with '\n'. */
typedef struct cv_kv {
    char *key;
    char *value;
    int line;
} cv_kv;

typedef struct cv_input_ref {
    char *name;
    int line;
} cv_input_ref;

typedef struct cv_stage_cfg {
    char *name;              /* the section name */
    int line;                /* line of the [section] header */
    enum cv_stage_type type; int type_line;
    char *module;            /* plugin = MODULE:STAGE, split; NULL if absent */
    char *stage;
    int plugin_line;
    cv_input_ref *inputs;    /* explicit inputs; ninputs == 0 and */
    size_t ninputs;          /* inputs_default: the previous section */
    int inputs_default;      /* 1 when no input key was given */
    int input_line;          /* line of the input key, or the header's */
    unsigned replicas; int replicas_line;      /* default 1 */
    enum cv_policy policy; int policy_line;    /* balance only */
    enum cv_order order; int order_line;       /* join only */
    enum cv_on_error on_error; int on_error_line;
    char *dead_letter_path;  /* resolved against the INI file's folder */
    enum cv_restart restart; int restart_line;
    unsigned max_restarts;   /* default 5 */
    cv_kv *params;           /* every other key, for conveyor_param() */
    size_t nparams;
} cv_stage_cfg;

typedef struct cv_config {
    char *path;              /* the INI file as given */
    char *dir;               /* its folder, for relative paths */
    int pipeline_line;       /* line of [pipeline], 0 when absent */
    char *input;             /* "-" or a path resolved against dir */
    int input_line;          /* 0 when the file does not set it */
    char *output;            /* "-" or a path resolved against dir */
    enum cv_framing framing;
    size_t shm_size;         /* 0 = no segment */
    int shm_size_line;
    char *shm_file;          /* resolved against dir, or NULL */
    int shm_file_line;
    int shm_readonly;        /* shared_memory_mode = ro */
    char *plugin_path;       /* ':'-separated, each resolved against dir */
    enum cv_transport transport;
    size_t max_item;         /* default 64M */
    size_t pool_size;        /* large items' pool: 0 = none, CV_POOL_AUTO (default) */
    int pool_size_line;
    size_t pool_threshold;   /* items this large go by reference (default 64K) */
    uint64_t drain_timeout_ms; /* how long a drain may take; 0 = no limit (default 30 s) */
    char *metrics_file;      /* Prometheus text written here, or NULL */
    uint64_t metrics_interval_ms; /* how often; 0 = only at the end (default 5 s) */
    cv_stage_cfg *stages;    /* in file order */
    size_t nstages;
    size_t stages_cap;       /* room for this many */
    cv_strmap stage_index;   /* name -> index in stages */
} cv_config;

/* Reads PATH.  On success *out is a new config (free with cv_config_free). */
int cv_config_load(const char *path, cv_config **out, char *err, size_t errlen);

/* Same, from text in memory; PATH is only used in messages and to resolve
 * relative paths.  For tests and fuzzing. */
int cv_config_load_string(const char *path, const char *text, cv_config **out,
                          char *err, size_t errlen);

void cv_config_free(cv_config *cfg);

/* Checks the files the configuration names before anything runs, as
 * --check promises: shared_memory_file is a regular file that can be read
 * (a FIFO would block the run), and each dead-letter file can be created
 * or appended to.  0, or -errno with "FILE:LINE: ..." in ERR. */
int cv_config_check_files(const cv_config *cfg, char *err, size_t errlen);

/* Index of the stage named NAME, or -1. */
int cv_config_find_stage(const cv_config *cfg, const char *name);

/* The value of KEY among a stage's params, or NULL. */
const char *cv_stage_param(const cv_stage_cfg *st, const char *key);

/* The I-th key the framework reads in a stage section (type, plugin, ...),
 * or NULL past the last: names that are never a plugin's parameter. */
const char *cv_config_stage_key(size_t i);

/* Names for messages and --graph. */
const char *cv_type_name(enum cv_stage_type t);
const char *cv_policy_name(enum cv_policy p);
const char *cv_order_name(enum cv_order o);
const char *cv_framing_name(enum cv_framing f);

#endif
