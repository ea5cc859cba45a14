/* SPDX-License-Identifier: MIT */
/*
 * exec.c - the "exec" module: a stage that is a program in any language.
 *
 *   run   runs `command` and passes items through it: written to the
 *         program's standard input, read back from its standard output,
 *         in the stage's framing (lines, nul, length32)
 *
 * reply = stream (the default): the program is a filter (tr, grep, jq);
 * whatever it writes is cut into items and emitted, any number per input.
 * reply = per-item: lock-step, exactly one reply frame per input item; an
 * empty reply drops the item and one that starts with error_prefix fails
 * it, so on_error applies per item and a restart retries exactly the item
 * the program died on.  The stage and its program take turns there, so by
 * default (share_cpu) they are kept on one CPU: a reply then wakes its
 * reader on the CPU it was written on, where a wake-up that lands on an
 * idle CPU costs tens of microseconds on a VM.
 *
 * With type = source the program is the pipeline's source: it reads
 * nothing (its standard input is closed at once) and whatever it writes is
 * cut into items and emitted, until it ends (the source ends; a status
 * other than 0 is a crash) or the pipeline is asked to stop (it is ended
 * with SIGTERM, then SIGKILL after a grace period, and what it wrote until
 * then still drains).
 *
 * What is a crash and what is a failure (docs/plugin-guide.md, "Stages in
 * any language"): a program that cannot start refuses init; a timeout, a
 * per-item program that ends mid-run, and anything wrong at the end of the
 * input end the stage's own process (_exit) after saying why, so the host
 * reports a crash and restart = on-failure applies; a stream program
 * that ends mid-run fails the item being written and every later one, so
 * on_error applies.  The stage process is single-threaded and the program
 * its only child, so waiting for it by pid is safe.
 */
#include <conveyor/plugin.h>

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_argv.h"
#include "exec_io.h"
#include "exec_proc.h"
#include "quote.h"

/* Messages show at most this much of a command. */
#define SHOWN_MAX 200

typedef struct exec_state {
    exec_argv argv;             /* the command's words (shell = no) */
    char *command;              /* the command as written */
    char shown[SHOWN_MAX + 8];  /* ... quoted for messages */
    int shell, per_item;
    int share_cpu;              /* keep the stage and its program on one CPU */
    enum exec_framing framing;
    long timeout_ms;            /* 0: none */
    const char *timeout_text;
    char *error_prefix;         /* per-item: a reply starting so fails the item */
    size_t error_prefix_len;
    exec_proc proc;
    exec_io io;
    int gone;                   /* stream: the program ended mid-run, reported */
    /* stream: items framed and kept until STREAM_BATCH bytes wait or the
     * stage's input has nothing more (flush), then written in one go */
    char *batch;
    size_t batch_len, batch_cap, batch_items;
    char batch_first[SHOWN_MAX];    /* the first of them, for messages */
    size_t batch_first_len;
    int source;                 /* type = source: produce() runs it */
    int stopped;                /* source: ended by the stage, on a stop request */
    int emit_rc;                /* the last emit of the program's output */
} exec_state;

/* --- parameters -------------------------------------------------------------- */

/* The index of VALUE among CHOICES (NULL-terminated), DFLT when VALUE is
 * NULL, or -1 after saying what is allowed. */
static int choice(conveyor_ctx *ctx, const char *key, const char *value,
                  const char *const *choices, int dflt)
{
    char allowed[128] = "";

    if (!value)
        return dflt;
    for (int i = 0; choices[i]; i++)
        if (strcmp(value, choices[i]) == 0)
            return i;
    for (int i = 0; choices[i]; i++)
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                 i ? (choices[i + 1] ? ", " : " or ") : "", choices[i]);
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s must be %s, not '%s'", key, allowed, value);
    return -1;
}

/* timeout: a duration (a bare number is seconds), 0 for no limit; the
 * limit is what a poll() timeout holds.  0, or -EINVAL after saying why. */
static int read_timeout(conveyor_ctx *ctx, exec_state *st)
{
    const char *s = conveyor_param(ctx, "timeout");
    uint64_t ms = 0;
    int rc = conveyor_param_duration(ctx, "timeout", &ms);

    if (rc <= 0)
        return rc;
    if (ms > INT32_MAX) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "timeout must be at most 24 days, not '%s'", s);
        return -EINVAL;
    }
    st->timeout_ms = (long)ms;
    st->timeout_text = s;
    return 0;
}

/* error_prefix (the host unquotes "ERROR: ", the declared default). */
static int read_error_prefix(conveyor_ctx *ctx, exec_state *st)
{
    const char *s = conveyor_param(ctx, "error_prefix");

    st->error_prefix = strdup(s ? s : "");
    st->error_prefix_len = s ? strlen(s) : 0;
    return st->error_prefix ? 0 : -ENOMEM;
}

/* Quotes TEXT for messages in BUF (of SHOWN_MAX + 8 bytes): '...', or
 * "..." when it holds a single quote. */
static const char *show(char *buf, const char *text)
{
    char q = strchr(text, '\'') && !strchr(text, '"') ? '"' : '\'';
    size_t n = strlen(text);

    if (n <= SHOWN_MAX)
        snprintf(buf, SHOWN_MAX + 8, "%c%s%c", q, text, q);
    else
        snprintf(buf, SHOWN_MAX + 8, "%c%.*s...%c", q, SHOWN_MAX, text, q);
    return buf;
}

static int read_command(conveyor_ctx *ctx, exec_state *st)
{
    const char *command = conveyor_param(ctx, "command");
    const char *why = NULL;
    int rc;

    if (!command) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "exec:run needs a command (command = PROGRAM ARGS...)");
        return -EINVAL;
    }
    if (conveyor_param_bool(ctx, "shell", &st->shell) < 0)
        return -EINVAL;
    if (!(st->command = strdup(command)))
        return -ENOMEM;
    show(st->shown, st->command);
    if (st->shell)
        return 0;
    rc = exec_argv_split(&st->argv, command, &why);
    if (rc == -EINVAL)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "command %s: %s", st->shown, why);
    return rc;
}

static int read_params(conveyor_ctx *ctx, exec_state *st)
{
    static const char *const framings[] = {"lines", "nul", "length32", NULL};
    static const char *const replies[] = {"stream", "per-item", NULL};
    int rc, f;

    if ((rc = read_command(ctx, st)) != 0)
        return rc;
    if ((f = choice(ctx, "framing", conveyor_param(ctx, "framing"), framings, 0)) < 0)
        return -EINVAL;
    st->framing = (enum exec_framing)f;
    if ((st->per_item = choice(ctx, "reply", conveyor_param(ctx, "reply"), replies, 0)) < 0)
        return -EINVAL;
    st->share_cpu = st->per_item;
    if (conveyor_param_bool(ctx, "share_cpu", &st->share_cpu) < 0)
        return -EINVAL;
    if (read_timeout(ctx, st) < 0)
        return -EINVAL;
    return read_error_prefix(ctx, st);
}

/* --- one CPU for the stage and its program -------------------------------- */

/* Keeps this process, and so the program it starts, on one of the CPUs it
 * may run on: the one its pid picks, so that stages and replicas started
 * one after the other spread over them.  Nothing to do with one CPU. */
static void share_one_cpu(conveyor_ctx *ctx)
{
    cpu_set_t allowed, one;
    int n, pick, cpu;

    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || (n = CPU_COUNT(&allowed)) < 2)
        return;
    pick = (int)(getpid() % n);
    for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed) && pick-- == 0)
            break;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) {
        conveyor_log(ctx, CONVEYOR_LOG_WARNING, "cannot keep the stage and its program on CPU %d "
                     "(share_cpu = yes): %s; they run wherever the system puts them", cpu,
                     strerror(errno));
        return;
    }
    conveyor_log(ctx, CONVEYOR_LOG_DEBUG, "the stage and its program run on CPU %d (share_cpu)",
                 cpu);
}

/* --- the program's life ---------------------------------------------------- */

static void state_free(exec_state *st)
{
    if (!st)
        return;
    exec_proc_close(&st->proc);
    exec_proc_kill(&st->proc);
    exec_io_free(&st->io);
    exec_argv_free(&st->argv);
    free(st->command);
    free(st->error_prefix);
    free(st->batch);
    free(st);
}

static int start_program(conveyor_ctx *ctx, exec_state *st)
{
    char *sh[] = {"/bin/sh", "-c", st->command, NULL};
    int rc = exec_proc_start(&st->proc, st->shell ? sh : st->argv.v);

    if (rc < 0) {
        char prog[SHOWN_MAX + 8];
        /* Without a shell, what could not start is the program itself. */
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot run %s: %s",
                     st->shell ? st->shown : show(prog, st->argv.v[0]), strerror(-rc));
        return rc;
    }
    exec_io_init(&st->io, ctx, &st->proc, st->framing);
    return 0;
}

/* Ends the stage's process as a crash, after the caller said why: the host
 * reports "exited with status 1 ... (a plugin ended the process)", and
 * restart = on-failure starts the stage again.  An exit rather than a
 * raised SIGKILL: the host takes a SIGKILL seen while it stops the
 * pipeline for its own doing, so a stage that killed itself could have its
 * report lost to the consequence (an input reader whose consumer died). */
_Noreturn static void crash(exec_state *st)
{
    exec_proc_kill(&st->proc);
    _exit(EXIT_FAILURE);
}

/* The program stopped taking input or giving output: relays its last
 * words on standard error, waits at most LIMIT_MS for it to end, ends it
 * after that, and says in BUF how it ended. */
static const char *outcome(exec_state *st, long limit_ms, char *buf, size_t n)
{
    int killed;

    exec_io_flush_stderr(&st->io, limit_ms);
    killed = !exec_proc_wait(&st->proc, limit_ms);
    if (killed)
        exec_proc_kill(&st->proc);
    exec_io_flush_stderr(&st->io, 0);
    exec_status_text(st->proc.status, buf, n);
    if (killed)
        snprintf(buf + strlen(buf), n - strlen(buf), " (the stage ended it)");
    return buf;
}

/* A time limit passed: ends the program, says what it did not do (WHAT,
 * a printf format), crashes. */
_Noreturn static void timed_out(conveyor_ctx *ctx, exec_state *st, const char *what, ...)
    __attribute__((format(printf, 3, 4)));

_Noreturn static void timed_out(conveyor_ctx *ctx, exec_state *st, const char *what, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, what);
    vsnprintf(text, sizeof text, what, ap);
    va_end(ap);
    exec_proc_kill(&st->proc);
    exec_io_flush_stderr(&st->io, EXEC_GRACE_MS);
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s %s; killed it, ending the stage", st->shown, text);
    crash(st);
}

/* --- stream ------------------------------------------------------------------ */

static int emit_output(void *arg, const void *item, size_t len)
{
    exec_state *st = arg;
    int rc = conveyor_emit(st->io.ctx, item, len);

    /* -EPIPE: the pipeline is stopping, and the host says why. */
    if (rc != 0 && rc != -EPIPE)
        conveyor_log(st->io.ctx, CONVEYOR_LOG_ERROR, "cannot emit an item of %zu bytes %s "
                     "wrote: %s", len, st->shown, strerror(-rc));
    st->emit_rc = rc;
    return rc;
}

/* A stream stage writes items to its program in batches of this many
 * bytes at most: one write and one wake-up of the program per batch, not
 * per item.  A batch is also written whenever the stage's input has
 * nothing more (flush), so a trickle of items is not held back. */
#define STREAM_BATCH (64 * 1024)

/* The program stopped reading: what it still writes is emitted, then the
 * item fails, and so does every later one. */
static int stream_gone(conveyor_ctx *ctx, exec_state *st, const void *item, size_t len)
{
    exec_pump rest = {.until = EXEC_UNTIL_END, .limit_ms = st->timeout_ms, .idle = 1,
                      .on_frame = emit_output, .arg = st};
    char q[QUOTE_SIZE], how[128];
    const char *last;
    size_t last_len;
    int rc = exec_pump_run(&st->io, &rest);

    if (rc == EXEC_TIMED_OUT)
        timed_out(ctx, st, "stopped reading its input at item '%s', then wrote nothing for "
                  "timeout = %s",
                  quote(q, item, len), st->timeout_text);
    if (rc < 0)
        return rc;
    if (exec_io_take_last(&st->io, &last, &last_len) == 1 && (rc = emit_output(st, last, last_len)))
        return rc;
    st->gone = 1;
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s %s before the end of its input, at item '%s'; "
                 "this item and every later one fail", st->shown,
                 outcome(st, EXEC_GRACE_MS, how, sizeof how), quote(q, item, len));
    return -EPIPE;
}

/* Writes the batch (while emitting what the program writes meanwhile):
 * 0, or a negative code after saying what went wrong (the program stopped
 * reading: every later item fails too). */
static int stream_write(conveyor_ctx *ctx, exec_state *st)
{
    exec_pump write = {.item = st->batch, .len = st->batch_len, .raw = 1,
                       .until = EXEC_UNTIL_WRITTEN, .limit_ms = st->timeout_ms, .idle = 1,
                       .on_frame = emit_output, .arg = st};
    char q[QUOTE_SIZE];
    int rc;

    if (!st->batch_len)
        return 0;
    st->emit_rc = 0;
    rc = exec_pump_run(&st->io, &write);
    quote(q, st->batch_first, st->batch_first_len);
    st->batch_len = st->batch_items = 0;
    switch (rc) {
    case 0:
        return 0;
    case EXEC_INPUT_CLOSED:
        return stream_gone(ctx, st, st->batch_first, st->batch_first_len);
    case EXEC_TIMED_OUT:
        timed_out(ctx, st, "neither read its input nor wrote output for timeout = %s, at item '%s'",
                  st->timeout_text, q);
    default:
        if (rc < 0 && rc != -EPIPE && rc != st->emit_rc)
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "talking to %s at item '%s': %s", st->shown, q,
                         strerror(-rc));
        return rc;
    }
}

/* Keeps the item, framed, for the next write of the batch. */
static int stream_process(conveyor_ctx *ctx, exec_state *st, const void *item, size_t len)
{
    size_t need = len + 4;

    if (st->gone)
        return -EPIPE;
    if (st->batch_len + need > st->batch_cap) {
        size_t cap = st->batch_cap ? st->batch_cap : STREAM_BATCH;
        while (cap < st->batch_len + need)
            cap *= 2;
        char *p = realloc(st->batch, cap);
        if (!p) {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
            return -ENOMEM;
        }
        st->batch = p;
        st->batch_cap = cap;
    }
    if (st->batch_items++ == 0) {
        st->batch_first_len = len < sizeof st->batch_first ? len : sizeof st->batch_first;
        memcpy(st->batch_first, item, st->batch_first_len);
    }
    char *w = st->batch + st->batch_len;
    if (st->framing == EXEC_LENGTH32) {
        for (int i = 0; i < 4; i++)
            *w++ = (char)(unsigned char)((uint32_t)len >> (8 * i));
    }
    memcpy(w, item, len);
    w += len;
    if (st->framing != EXEC_LENGTH32)
        *w++ = st->framing == EXEC_NUL ? '\0' : '\n';
    st->batch_len = (size_t)(w - st->batch);
    return st->batch_len >= STREAM_BATCH ? stream_write(ctx, st) : 0;
}

/* --- per-item ---------------------------------------------------------------- */

/* The program ended (or stopped reading) instead of replying: crashes, so
 * that a restart retries the item on a new program. */
_Noreturn static void reply_missing(conveyor_ctx *ctx, exec_state *st, const void *item,
                                    size_t len)
{
    char q[QUOTE_SIZE], how[128], cut[64] = "";
    size_t partial = exec_io_pending(&st->io);

    if (partial)
        snprintf(cut, sizeof cut, " (its reply stops after %zu bytes)", partial);
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s %s before replying to item '%s'%s; ending the stage",
                 st->shown, outcome(st, EXEC_GRACE_MS, how, sizeof how), quote(q, item, len), cut);
    crash(st);
}

/* An item with the framing's delimiter in it would reach the program as
 * two: 0, or -EINVAL after saying so. */
static int check_item(conveyor_ctx *ctx, exec_state *st, const void *item, size_t len)
{
    char q[QUOTE_SIZE];

    if (st->framing == EXEC_LENGTH32 || !len ||
        !memchr(item, st->framing == EXEC_NUL ? '\0' : '\n', len))
        return 0;
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "item '%s' holds a %s, which framing = %s cannot carry "
                 "to the program as one item (framing = length32 can)", quote(q, item, len),
                 st->framing == EXEC_NUL ? "NUL byte" : "newline",
                 st->framing == EXEC_NUL ? "nul" : "lines");
    return -EINVAL;
}

static int use_reply(conveyor_ctx *ctx, exec_state *st, const void *item, size_t len)
{
    char q[QUOTE_SIZE];
    const char *reply;
    size_t n;
    int rc;

    exec_io_take(&st->io, &reply, &n);
    if (n == 0)
        return 0;
    if (st->error_prefix_len && n >= st->error_prefix_len &&
        memcmp(reply, st->error_prefix, st->error_prefix_len) == 0) {
        size_t why = n - st->error_prefix_len;
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "item '%s' failed: %.*s", quote(q, item, len),
                     (int)(why < 1000 ? why : 1000), reply + st->error_prefix_len);
        return -EIO;
    }
    rc = conveyor_emit(ctx, reply, n);
    if (rc != 0 && rc != -EPIPE)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "cannot emit the reply to item '%s': %s",
                     quote(q, item, len), strerror(-rc));
    return rc;
}

static int per_item_process(conveyor_ctx *ctx, exec_state *st, const void *item, size_t len)
{
    exec_pump ask = {.item = item, .len = len, .until = EXEC_UNTIL_REPLY,
                     .limit_ms = st->timeout_ms, .idle = 0};
    char q[QUOTE_SIZE];
    int rc;

    if ((rc = check_item(ctx, st, item, len)) != 0)
        return rc;
    if (exec_io_pending(&st->io)) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s wrote %zu bytes more than one reply per item, "
                     "seen before item '%s'; ending the stage", st->shown,
                     exec_io_pending(&st->io), quote(q, item, len));
        crash(st);
    }
    rc = exec_pump_run(&st->io, &ask);
    switch (rc) {
    case 0:
        return use_reply(ctx, st, item, len);
    case EXEC_INPUT_CLOSED:
    case EXEC_OUTPUT_ENDED:
        reply_missing(ctx, st, item, len);
    case EXEC_TIMED_OUT:
        timed_out(ctx, st, "did not reply to item '%s' within timeout = %s", quote(q, item, len),
                  st->timeout_text);
    default:
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "talking to %s at item '%s': %s; ending the stage",
                     st->shown, quote(q, item, len), strerror(-rc));
        crash(st);
    }
}

/* --- the end of the input -------------------------------------------------------- */

/* Whatever the program still writes: emitted (stream), or an error
 * (per-item: every reply has been taken).  Returns -EPIPE when the
 * pipeline is stopping, else 0; crashes on what is wrong. */
static int drain_output(conveyor_ctx *ctx, exec_state *st)
{
    exec_pump rest = {.until = EXEC_UNTIL_END, .limit_ms = st->timeout_ms, .idle = 1,
                      .on_frame = st->per_item ? NULL : emit_output, .arg = st};
    const char *last;
    size_t len;
    int rc;

    st->emit_rc = 0;
    rc = exec_pump_run(&st->io, &rest);
    if (rc == EXEC_TIMED_OUT && st->per_item)
        timed_out(ctx, st, "did not end within timeout = %s after the end of its input",
                  st->timeout_text);
    if (rc == EXEC_TIMED_OUT)
        timed_out(ctx, st, "wrote nothing for timeout = %s after the end of its input",
                  st->timeout_text);
    if (rc == 0 && st->per_item && exec_io_pending(&st->io)) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s wrote %zu bytes after its last reply; ending "
                     "the stage", st->shown, exec_io_pending(&st->io));
        crash(st);
    }
    if (rc == 0) {
        rc = exec_io_take_last(&st->io, &last, &len);
        if (rc == 1)
            rc = emit_output(st, last, len);
        else if (rc == EXEC_TRUNCATED) {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "the output of %s ends inside a length32 frame "
                         "(%zu bytes left over); ending the stage", st->shown,
                         exec_io_pending(&st->io));
            crash(st);
        }
    }
    if (rc == -EPIPE)
        return rc;
    if (rc < 0) {
        if (rc == st->emit_rc)
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "ending the stage");
        else
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "reading %s: %s; ending the stage", st->shown,
                         strerror(-rc));
        crash(st);
    }
    return 0;
}

static void finish_program(conveyor_ctx *ctx, exec_state *st)
{
    char how[128];

    if (stream_write(ctx, st) != 0)     /* what flush could not write */
        return;
    close(st->proc.in_fd);
    st->proc.in_fd = -1;
    if (drain_output(ctx, st) != 0)
        return;
    if (!exec_proc_wait(&st->proc, st->timeout_ms ? st->timeout_ms : -1))
        timed_out(ctx, st, "did not end within timeout = %s after the end of its input",
                  st->timeout_text);
    if (WIFEXITED(st->proc.status) && WEXITSTATUS(st->proc.status) == 0)
        return;
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s %s %s; ending the stage", st->shown,
                 exec_status_text(st->proc.status, how, sizeof how),
                 st->source ? "(a source's program must exit with status 0)"
                            : "at the end of its input");
    crash(st);
}

/* --- the stage -------------------------------------------------------------------- */

static int exec_init(conveyor_ctx *ctx)
{
    exec_state *st = calloc(1, sizeof *st);
    int rc;

    if (!st) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
        return -ENOMEM;
    }
    st->proc.in_fd = st->proc.out_fd = st->proc.err_fd = -1;
    rc = read_params(ctx, st);
    if (rc == -ENOMEM)
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "out of memory");
    if (rc == 0 && st->share_cpu)
        share_one_cpu(ctx);
    if (rc == 0)
        rc = start_program(ctx, st);
    if (rc != 0) {
        state_free(st);
        return rc;
    }
    conveyor_set_userdata(ctx, st);
    return 0;
}

/* --check, and the host before every run: every parameter read as init()
 * reads them (the command split, the choices, the timeout), nothing run. */
static int exec_check(conveyor_ctx *ctx)
{
    exec_state *st = calloc(1, sizeof *st);
    int rc;

    if (!st)
        return -ENOMEM;
    st->proc.in_fd = st->proc.out_fd = st->proc.err_fd = -1;
    rc = read_params(ctx, st);
    state_free(st);
    return rc;
}

static int exec_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    exec_state *st = conveyor_userdata(ctx);

    if (st->per_item)
        return per_item_process(ctx, st, item, len);
    return stream_process(ctx, st, item, len);
}

/* The stage's input has nothing more for now: the batch goes to the
 * program (and what it wrote meanwhile is emitted). */
static int exec_flush(conveyor_ctx *ctx)
{
    exec_state *st = conveyor_userdata(ctx);

    if (st->per_item || st->gone)
        return 0;
    return stream_write(ctx, st);
}

/* --- a source ------------------------------------------------------------------- */

/* How long one produce() call waits for the program's output: short, so
 * that a stop request is seen even where no signal interrupts the wait. */
#define SOURCE_WAIT_MS 100

static int exec_produce(conveyor_ctx *ctx)
{
    exec_state *st = conveyor_userdata(ctx);
    int rc;

    if (!st->source) {
        st->source = 1;
        close(st->proc.in_fd);  /* a source's program reads nothing */
        st->proc.in_fd = -1;
    }
    if (conveyor_stopping(ctx)) {
        /* What it wrote before it ended is still read and emitted (fini). */
        exec_proc_kill(&st->proc);
        st->stopped = 1;
        return CONVEYOR_END;
    }
    st->emit_rc = 0;
    rc = exec_pump_some(&st->io, emit_output, st, SOURCE_WAIT_MS);
    if (rc < 0) {
        if (rc != -EPIPE && rc != st->emit_rc)
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "reading %s: %s", st->shown, strerror(-rc));
        return rc;
    }
    return st->io.out_eof && st->io.err_eof ? CONVEYOR_END : CONVEYOR_MORE;
}

static void exec_fini(conveyor_ctx *ctx)
{
    exec_state *st = conveyor_userdata(ctx);

    if (st->stopped)
        drain_output(ctx, st);
    else if (!st->gone)
        finish_program(ctx, st);
    state_free(st);
    conveyor_set_userdata(ctx, NULL);
}

static const conveyor_param_spec run_params[] = {
    { .name = "command", .summary = "the program and its arguments, split as sh does but run without a shell",
      .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "shell", .summary = "yes: run command through /bin/sh -c instead", .default_value = "no" },
    { .name = "framing", .summary = "lines, nul or length32: how items are written to the program and its output "
                 "cut", .default_value = "lines" },
    { .name = "reply", .summary = "stream (a filter: any number of outputs) or per-item (exactly one reply per "
               "item)", .default_value = "stream" },
    { .name = "timeout", .summary = "per-item: the longest a reply may take; stream: the longest the program may "
                 "neither read nor write (ms, s, m, h; seconds without one; none when not set)" },
    { .name = "error_prefix", .summary = "per-item: a reply starting so fails the item",
      .default_value = "\"ERROR: \"" },
    { .name = "share_cpu", .summary = "yes: the stage and its program run on one CPU, which suits "
                 "their taking turns (default: yes with reply = per-item, else no)" },
    { .name = NULL },
};

static const conveyor_stage stages[] = {
    { .name = "run", .summary = "runs a program and passes items through it",
      .init = exec_init, .process = exec_process, .fini = exec_fini, .params = run_params,
      .produce = exec_produce, .check = exec_check, .flush = exec_flush },
    { .name = NULL },
};

CONVEYOR_MODULE("exec", "1.0", stages);
