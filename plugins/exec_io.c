/* SPDX-License-Identifier: MIT */
/*
 * exec_io.c - one poll() loop over a program's three pipes (exec_io.h).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "exec_io.h"

/* A line of standard error longer than this is relayed in pieces (a log
 * line holds about 4 KiB with its prefix). */
#define EXEC_LINE_MAX 3000
/* How much one read takes from a pipe. */
#define EXEC_READ_CHUNK 65536

void exec_io_init(exec_io *io, conveyor_ctx *ctx, exec_proc *proc, enum exec_framing framing)
{
    memset(io, 0, sizeof *io);
    io->ctx = ctx;
    io->proc = proc;
    io->framing = framing;
}

void exec_io_free(exec_io *io)
{
    free(io->out.data);
    free(io->err.data);
    memset(&io->out, 0, sizeof io->out);
    memset(&io->err, 0, sizeof io->err);
}

/* --- buffers ------------------------------------------------------------- */

/* Makes room for N more bytes after the data.  0 or -ENOMEM. */
static int buf_room(exec_buf *b, size_t n)
{
    if (b->start > 0 && b->start + b->len + n > b->cap) {
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        p = realloc(b->data, cap);
        if (!p)
            return -ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    return 0;
}

static void buf_drop(exec_buf *b, size_t n)
{
    b->start += n;
    b->len -= n;
    b->scanned = 0;
    if (b->len == 0)
        b->start = 0;
}

/* One read from FD into B: bytes read, 0 at the end, -EAGAIN, -errno. */
static ssize_t buf_read(exec_buf *b, int fd)
{
    ssize_t n;
    int rc = buf_room(b, EXEC_READ_CHUNK);

    if (rc < 0)
        return rc;
    do
        n = read(fd, b->data + b->start + b->len, EXEC_READ_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    b->len += (size_t)n;
    return n;
}

/* --- cutting the output into items ----------------------------------------- */

/* How many bytes the first whole item takes with its framing, or 0 while
 * it is not all there.  Remembers how far a delimiter was looked for. */
static size_t whole_item(exec_io *io)
{
    exec_buf *b = &io->out;
    const char *p;

    if (b->len == 0)
        return 0;
    p = b->data + b->start;
    if (io->framing == EXEC_LENGTH32) {
        const unsigned char *h = (const unsigned char *)p;
        size_t n;
        if (b->len < 4)
            return 0;
        n = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
        return b->len - 4 < n ? 0 : 4 + n;
    }
    const char *end = b->len > b->scanned
                          ? memchr(p + b->scanned, io->framing == EXEC_NUL ? '\0' : '\n',
                                   b->len - b->scanned)
                          : NULL;
    if (!end) {
        b->scanned = b->len;
        return 0;
    }
    return (size_t)(end - p) + 1;
}

int exec_io_take(exec_io *io, const char **item, size_t *len)
{
    exec_buf *b = &io->out;
    size_t n = whole_item(io);

    if (n == 0)
        return 0;
    if (io->framing == EXEC_LENGTH32) {
        *item = b->data + b->start + 4;
        *len = n - 4;
    } else {
        *item = b->data + b->start;
        *len = n - 1;
    }
    buf_drop(b, n);
    return 1;
}

int exec_io_take_last(exec_io *io, const char **item, size_t *len)
{
    exec_buf *b = &io->out;

    if (b->len == 0)
        return 0;
    if (io->framing == EXEC_LENGTH32)
        return EXEC_TRUNCATED;
    *item = b->data + b->start;
    *len = b->len;
    buf_drop(b, b->len);
    return 1;
}

size_t exec_io_pending(const exec_io *io)
{
    return io->out.len;
}

/* --- standard error ---------------------------------------------------------- */

static void relay_line(exec_io *io, const char *line, size_t n)
{
    conveyor_log(io->ctx, CONVEYOR_LOG_WARNING, "%.*s", (int)n, line);
}

/* Relays the whole lines held, or pieces of an over-long one; at the end
 * (EOF), the rest too. */
static void relay_lines(exec_io *io, int eof)
{
    exec_buf *b = &io->err;

    while (b->len > 0) {
        const char *p = b->data + b->start;
        const char *nl = memchr(p, '\n', b->len);
        if (nl) {
            relay_line(io, p, (size_t)(nl - p));
            buf_drop(b, (size_t)(nl - p) + 1);
        } else if (b->len >= EXEC_LINE_MAX || (eof && b->len > 0)) {
            size_t n = b->len < EXEC_LINE_MAX ? b->len : EXEC_LINE_MAX;
            relay_line(io, p, n);
            buf_drop(b, n);
        } else {
            return;
        }
    }
}

static void read_stderr(exec_io *io)
{
    ssize_t n = buf_read(&io->err, io->proc->err_fd);

    if (n == -EAGAIN)
        return;
    if (n <= 0)
        io->err_eof = 1;
    relay_lines(io, io->err_eof);
}

void exec_io_flush_stderr(exec_io *io, long limit_ms)
{
    long long deadline = exec_now_ms() + limit_ms;

    while (!io->err_eof && io->proc->err_fd >= 0) {
        struct pollfd pfd = {.fd = io->proc->err_fd, .events = POLLIN};
        long long left = deadline - exec_now_ms();
        int n = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        read_stderr(io);
    }
    relay_lines(io, 1);
}

/* --- writing one item ---------------------------------------------------------- */

typedef struct pending {
    struct iovec iov[3];
    int cur, n;
    size_t left;
    unsigned char head[4];
    char tail;
} pending;

static void pending_init(pending *w, const exec_io *io, const void *item, size_t len, int raw)
{
    memset(w, 0, sizeof *w);
    if (!item)
        return;
    if (raw) {
        w->iov[w->n++] = (struct iovec){(void *)(uintptr_t)item, len};
        w->left = len;
        return;
    }
    if (io->framing == EXEC_LENGTH32) {
        for (int i = 0; i < 4; i++)
            w->head[i] = (unsigned char)((uint32_t)len >> (8 * i));
        w->iov[w->n++] = (struct iovec){w->head, 4};
    }
    w->iov[w->n++] = (struct iovec){(void *)(uintptr_t)item, len};
    if (io->framing != EXEC_LENGTH32) {
        w->tail = io->framing == EXEC_NUL ? '\0' : '\n';
        w->iov[w->n++] = (struct iovec){&w->tail, 1};
    }
    for (int i = 0; i < w->n; i++)
        w->left += w->iov[i].iov_len;
}

/* Writes what the pipe takes: bytes written (0: none now), or
 * EXEC_INPUT_CLOSED, or -errno. */
static ssize_t pending_write(pending *w, int fd)
{
    ssize_t n = writev(fd, w->iov + w->cur, w->n - w->cur);
    size_t k;

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return errno == EPIPE ? -EPIPE : -errno;
    }
    w->left -= (size_t)n;
    for (k = (size_t)n; k > 0 && w->cur < w->n; ) {
        struct iovec *v = &w->iov[w->cur];
        if (k >= v->iov_len) {
            k -= v->iov_len;
            w->cur++;
        } else {
            v->iov_base = (char *)v->iov_base + k;
            v->iov_len -= k;
            k = 0;
        }
    }
    return n;
}

/* --- the pump ------------------------------------------------------------------- */

/* Milliseconds poll() may wait: -1 for ever, or -2 when the limit passed. */
static int wait_ms(const exec_pump *p, long long start, long long progress)
{
    long long left;

    if (p->limit_ms <= 0)
        return -1;
    left = (p->idle ? progress : start) + p->limit_ms - exec_now_ms();
    if (left <= 0)
        return -2;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int reply_ready(exec_io *io)
{
    return whole_item(io) > 0;
}

static int goal_met(exec_io *io, const exec_pump *p, const pending *w)
{
    switch (p->until) {
    case EXEC_UNTIL_WRITTEN: return w->left == 0;
    case EXEC_UNTIL_REPLY: return w->left == 0 && reply_ready(io);
    default: return io->out_eof && io->err_eof;
    }
}

/* Standard output is readable: reads, and passes on the items that are
 * whole.  0, an exec_end, or what on_frame or the read returned. */
static int on_output(exec_io *io, const exec_pump *p, long long *progress)
{
    ssize_t n = buf_read(&io->out, io->proc->out_fd);
    const char *item;
    size_t len;

    if (n == -EAGAIN)
        return 0;
    if (n < 0)
        return (int)n;
    if (n == 0)
        io->out_eof = 1;
    else
        *progress = exec_now_ms();
    if (p->until == EXEC_UNTIL_REPLY)
        return io->out_eof && !reply_ready(io) ? EXEC_OUTPUT_ENDED : 0;
    while (p->on_frame && exec_io_take(io, &item, &len) == 1) {
        int rc = p->on_frame(p->arg, item, len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One poll and what it found: 0 to go on, else the pump's result. */
static int pump_once(exec_io *io, const exec_pump *p, pending *w, int wait,
                     long long *progress)
{
    struct pollfd fds[3];
    int nf = 0, in = -1, out = -1, err = -1, rc = 0;

    if (w->left && io->proc->in_fd >= 0)
        fds[in = nf++] = (struct pollfd){.fd = io->proc->in_fd, .events = POLLOUT};
    if (!io->out_eof && !(p->until == EXEC_UNTIL_REPLY && reply_ready(io)))
        fds[out = nf++] = (struct pollfd){.fd = io->proc->out_fd, .events = POLLIN};
    if (!io->err_eof)
        fds[err = nf++] = (struct pollfd){.fd = io->proc->err_fd, .events = POLLIN};
    if (nf == 0)
        return p->until == EXEC_UNTIL_REPLY ? EXEC_OUTPUT_ENDED : 0;
    if (poll(fds, (nfds_t)nf, wait) < 0)
        return errno == EINTR ? 0 : -errno;
    if (err >= 0 && fds[err].revents)
        read_stderr(io);
    if (in >= 0 && fds[in].revents) {
        ssize_t n = pending_write(w, io->proc->in_fd);
        if (n == -EPIPE)
            return EXEC_INPUT_CLOSED;
        if (n < 0)
            return (int)n;
        if (n > 0)
            *progress = exec_now_ms();
    }
    if (out >= 0 && fds[out].revents)
        rc = on_output(io, p, progress);
    return rc;
}

int exec_pump_some(exec_io *io, exec_frame_fn on_frame, void *arg, int wait_ms)
{
    exec_pump p = {.until = EXEC_UNTIL_END, .on_frame = on_frame, .arg = arg};
    long long progress = exec_now_ms();
    pending w;

    pending_init(&w, io, NULL, 0, 0);
    if (io->out_eof && io->err_eof)
        return 0;
    return pump_once(io, &p, &w, wait_ms, &progress);
}

int exec_pump_run(exec_io *io, const exec_pump *p)
{
    long long start = exec_now_ms(), progress = start;
    pending w;

    pending_init(&w, io, p->item, p->len, p->raw);
    /* Most items fit in the pipe at once: try before polling. */
    if (w.left && io->proc->in_fd >= 0) {
        ssize_t n = pending_write(&w, io->proc->in_fd);
        if (n == -EPIPE)
            return EXEC_INPUT_CLOSED;
        if (n < 0)
            return (int)n;
    }
    /* A program on the stage's CPU (share_cpu) has often replied by the
     * time the write returns: read before polling. */
    if (p->until == EXEC_UNTIL_REPLY && w.left == 0 && !io->out_eof && !reply_ready(io)) {
        int rc = on_output(io, p, &progress);
        if (rc != 0)
            return rc;
    }
    for (;;) {
        if (goal_met(io, p, &w)) {
            /* A stream stage also takes what is ready now, without waiting,
             * so that output flows while the input does. */
            if (p->until == EXEC_UNTIL_WRITTEN)
                return pump_once(io, p, &w, 0, &progress);
            return 0;
        }
        int wait = wait_ms(p, start, progress);
        if (wait == -2)
            return EXEC_TIMED_OUT;
        int rc = pump_once(io, p, &w, wait, &progress);
        if (rc != 0)
            return rc;
    }
}
