/* SPDX-License-Identifier: MIT */
/*
 * exec_io.h - the exec module's traffic with its program: writes one framed
 * item to the program's standard input while it reads the program's
 * standard output (cut into items by the same framing) and standard error
 * (relayed line by line through conveyor_log), all through one poll(), so
 * that neither side can block the other on a full pipe.
 */
#ifndef CONVEYOR_PLUGINS_EXEC_IO_H
#define CONVEYOR_PLUGINS_EXEC_IO_H

#include <conveyor/plugin.h>
#include <stddef.h>

#include "exec_proc.h"

enum exec_framing { EXEC_LINES, EXEC_NUL, EXEC_LENGTH32 };

/* How a pump ended, besides 0 (done) and -errno (an emit or a read
 * failed): what the program did. */
enum exec_end {
    EXEC_INPUT_CLOSED = 1,      /* a write met EPIPE: its standard input is closed */
    EXEC_OUTPUT_ENDED,          /* its standard output ended before a reply */
    EXEC_TIMED_OUT,             /* the time limit passed (see exec_pump) */
    EXEC_TRUNCATED,             /* its output ended inside a length32 frame */
};

typedef struct exec_buf {
    char *data;
    size_t start, len, cap;     /* the bytes are data[start .. start + len) */
    size_t scanned;             /* how many of them hold no delimiter */
} exec_buf;

/* Called for every item cut from the program's output; non-zero stops the
 * pump, which returns it. */
typedef int (*exec_frame_fn)(void *arg, const void *item, size_t len);

typedef struct exec_io {
    conveyor_ctx *ctx;
    exec_proc *proc;
    enum exec_framing framing;
    exec_buf out;               /* output not yet cut into items */
    exec_buf err;               /* a line of standard error not yet complete */
    int out_eof, err_eof;
} exec_io;

/* What one pump does and until when. */
typedef struct exec_pump {
    const void *item;           /* written framed to the program (NULL: nothing) */
    size_t len;
    int raw;                    /* item holds bytes framed already: written as they are */
    /* Stop once the item is written (STREAM), once it is written and a
     * whole reply has come (REPLY: the reply is left for exec_io_take), or
     * at the end of both standard output and standard error (END). */
    enum { EXEC_UNTIL_WRITTEN, EXEC_UNTIL_REPLY, EXEC_UNTIL_END } until;
    /* 0: no limit.  Else EXEC_TIMED_OUT after so many milliseconds: from
     * the start (IDLE 0), or without progress (IDLE 1: bytes written to the
     * program or read from its standard output). */
    long limit_ms;
    int idle;
    exec_frame_fn on_frame;     /* for every item read (not with REPLY) */
    void *arg;
} exec_pump;

void exec_io_init(exec_io *io, conveyor_ctx *ctx, exec_proc *proc, enum exec_framing framing);
void exec_io_free(exec_io *io);

/* Runs P: 0, an exec_end, or -errno. */
int exec_pump_run(exec_io *io, const exec_pump *p);

/* For a program that is a source: one wait of at most WAIT_MS for its
 * output (less when a signal comes), and what it brought passed to
 * ON_FRAME.  0, or what on_frame or a read returned.  The output has ended
 * when io->out_eof and io->err_eof are both set. */
int exec_pump_some(exec_io *io, exec_frame_fn on_frame, void *arg, int wait_ms);

/* Takes the first whole item read, if any: 1 (ITEM, LEN valid until the
 * next call on IO), else 0. */
int exec_io_take(exec_io *io, const char **item, size_t *len);

/* At the end of the output, what is left: 1 when it is a last item
 * without its delimiter (lines, nul), 0 when nothing is left,
 * EXEC_TRUNCATED when it is part of a length32 frame. */
int exec_io_take_last(exec_io *io, const char **item, size_t *len);

/* How many bytes of output have been read and not taken. */
size_t exec_io_pending(const exec_io *io);

/* Reads what standard error still holds (up to LIMIT_MS) and relays it,
 * a last line without a newline too. */
void exec_io_flush_stderr(exec_io *io, long limit_ms);

#endif
