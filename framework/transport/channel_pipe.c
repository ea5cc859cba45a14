/* SPDX-License-Identifier: MIT */
/*
 * channel_pipe.c - the pipe implementation of channel.h.
 *
 * A record on the wire is a 16-byte header (seq, flags, len) and len bytes.
 * The producer fills a user-space buffer and writes it out in large writes;
 * the consumer reads large chunks and hands out records in place.  Both
 * ends are non-blocking: waiting is done in cv_channels_wait() with poll(),
 * which also keeps every other output of the process moving, so no process
 * ever sleeps on one channel while holding data another consumer needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/channel.h"
#include "base/util.h"

#define HDR 16
#define WBUF (64 * 1024)
#define RBUF (128 * 1024)
#define PIPE_SIZE (1024 * 1024)

typedef struct pipe_channel {
    cv_channel base;
    int rfd, wfd;
    cv_channel_stats *stats;
    size_t max_item;
    /* producer */
    unsigned char *wbuf;
    size_t wcap, wlen, woff;    /* bytes [woff, wlen) are still to write */
    uint64_t sent;
    /* consumer */
    unsigned char *rbuf;
    size_t rcap, rstart, rend;
    int eof;
    uint64_t received;
} pipe_channel;

static const struct cv_channel_ops pipe_ops;

cv_channel *cv_channel_create_pipe(cv_channel_stats *stats, size_t max_item)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return NULL;
    /* A larger pipe means fewer wake-ups; failing to grow it is harmless. */
    (void)fcntl(fds[1], F_SETPIPE_SZ, PIPE_SIZE);
    pipe_channel *ch = cv_calloc(1, sizeof *ch);
    ch->base.ops = &pipe_ops;
    ch->rfd = fds[0];
    ch->wfd = fds[1];
    ch->stats = stats;
    ch->max_item = max_item;
    return &ch->base;
}

static void pipe_keep(cv_channel *base, int ends)
{
    pipe_channel *ch = (pipe_channel *)base;
    if (!(ends & CV_END_READ) && ch->rfd >= 0) {
        close(ch->rfd);
        ch->rfd = -1;
    }
    if (!(ends & CV_END_WRITE) && ch->wfd >= 0) {
        close(ch->wfd);
        ch->wfd = -1;
    }
}

static void put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* Writes what the pipe takes now.  0 when the buffer is empty afterwards,
 * -EAGAIN when bytes remain, -errno on error. */
static int try_write(pipe_channel *ch)
{
    while (ch->woff < ch->wlen) {
        ssize_t n = write(ch->wfd, ch->wbuf + ch->woff, ch->wlen - ch->woff);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return -EAGAIN;
            return -errno;
        }
        ch->woff += (size_t)n;
    }
    ch->woff = ch->wlen = 0;
    if (ch->stats)
        __atomic_store_n(&ch->stats->sent, ch->sent, __ATOMIC_RELAXED);
    return 0;
}

/* Makes room for NEED bytes at the end of the write buffer: 0, -EAGAIN
 * when the pipe is full, -errno. */
static int make_room(pipe_channel *ch, size_t need)
{
    if (ch->wcap - ch->wlen >= need)
        return 0;
    int rc = try_write(ch);
    if (rc < 0 && rc != -EAGAIN)
        return rc;
    if (ch->woff > 0 && ch->woff < ch->wlen) {
        memmove(ch->wbuf, ch->wbuf + ch->woff, ch->wlen - ch->woff);
        ch->wlen -= ch->woff;
        ch->woff = 0;
    }
    if (ch->wcap - ch->wlen < need) {
        if (ch->wlen > 0)
            return -EAGAIN;
        /* An empty buffer too small for this record grows to fit it. */
        size_t cap = need > WBUF ? need : WBUF;
        ch->wbuf = cv_realloc(ch->wbuf, cap);
        ch->wcap = cap;
    }
    return 0;
}

static void put_header(unsigned char *p, uint64_t seq, uint32_t flags, size_t len)
{
    put_u64(p, seq);
    put_u32(p + 8, flags);
    put_u32(p + 12, (uint32_t)len);
}

static int pipe_send(cv_channel *base, uint64_t seq, uint32_t flags, const void *data, size_t len)
{
    pipe_channel *ch = (pipe_channel *)base;
    if (len > ch->max_item || len > UINT32_MAX)
        return -EMSGSIZE;
    int rc = make_room(ch, HDR + len);
    if (rc < 0)
        return rc;
    unsigned char *p = ch->wbuf + ch->wlen;
    put_header(p, seq, flags, len);
    if (len)
        memcpy(p + HDR, data, len);
    ch->wlen += HDR + len;
    if (!(flags & CV_REC_WATERMARK))
        ch->sent++;
    return 0;
}

static void *pipe_reserve(cv_channel *base, size_t max_len)
{
    pipe_channel *ch = (pipe_channel *)base;
    if (max_len > ch->max_item || max_len > UINT32_MAX) {
        errno = EMSGSIZE;
        return NULL;
    }
    int rc = make_room(ch, HDR + max_len);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return ch->wbuf + ch->wlen + HDR;
}

static int pipe_commit(cv_channel *base, uint64_t seq, size_t len)
{
    pipe_channel *ch = (pipe_channel *)base;
    put_header(ch->wbuf + ch->wlen, seq, 0, len);
    ch->wlen += HDR + len;
    ch->sent++;
    return 0;
}

static int pipe_flush(cv_channel *base, int wait)
{
    pipe_channel *ch = (pipe_channel *)base;
    for (;;) {
        int rc = try_write(ch);
        if (rc != -EAGAIN || !wait)
            return rc;
        struct pollfd pfd = {.fd = ch->wfd, .events = POLLOUT};
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -errno;
    }
}

static int pipe_pending(const cv_channel *base)
{
    const pipe_channel *ch = (const pipe_channel *)base;
    return ch->wlen > ch->woff;
}

static int pipe_close_write(cv_channel *base)
{
    pipe_channel *ch = (pipe_channel *)base;
    int rc = 0;
    if (ch->wfd >= 0) {
        rc = pipe_flush(base, 1);
        close(ch->wfd);
        ch->wfd = -1;
    }
    free(ch->wbuf);
    ch->wbuf = NULL;
    ch->wcap = ch->wlen = ch->woff = 0;
    return rc;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int pipe_recv(cv_channel *base, cv_record *rec)
{
    pipe_channel *ch = (pipe_channel *)base;
    for (;;) {
        size_t avail = ch->rend - ch->rstart;
        if (avail >= HDR) {
            const unsigned char *p = ch->rbuf + ch->rstart;
            uint32_t len = get_u32(p + 12);
            if (len > ch->max_item)
                return -EPROTO;
            if (avail >= HDR + (size_t)len) {
                rec->seq = get_u64(p);
                rec->flags = get_u32(p + 8);
                rec->len = len;
                rec->data = p + HDR;
                rec->ref = 0;
                ch->rstart += HDR + len;
                if (!(rec->flags & CV_REC_WATERMARK)) {
                    ch->received++;
                    if (ch->stats)
                        __atomic_store_n(&ch->stats->received, ch->received, __ATOMIC_RELAXED);
                }
                return 1;
            }
            if (ch->rcap < HDR + (size_t)len) {
                /* Make room for this record: the buffer grows to the
                 * record's size, never beyond max_item plus a header. */
                size_t cap = HDR + (size_t)len;
                if (ch->rstart > 0) {
                    memmove(ch->rbuf, ch->rbuf + ch->rstart, avail);
                    ch->rend = avail;
                    ch->rstart = 0;
                }
                ch->rbuf = cv_realloc(ch->rbuf, cap);
                ch->rcap = cap;
            }
        }
        if (ch->eof)
            return avail ? -EPROTO : 0;
        if (!ch->rbuf) {
            ch->rbuf = cv_malloc(RBUF);
            ch->rcap = RBUF;
        }
        if (ch->rstart > 0 && (ch->rstart == ch->rend || ch->rcap - ch->rend < HDR)) {
            memmove(ch->rbuf, ch->rbuf + ch->rstart, avail);
            ch->rend = avail;
            ch->rstart = 0;
        }
        if (ch->rend == ch->rcap) {
            memmove(ch->rbuf, ch->rbuf + ch->rstart, avail);
            ch->rend = avail;
            ch->rstart = 0;
        }
        ssize_t n = read(ch->rfd, ch->rbuf + ch->rend, ch->rcap - ch->rend);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;  /* -EAGAIN: nothing there now */
        }
        if (n == 0)
            ch->eof = 1;
        ch->rend += (size_t)n;
    }
}

static void pipe_close_read(cv_channel *base)
{
    pipe_channel *ch = (pipe_channel *)base;
    if (ch->rfd >= 0) {
        close(ch->rfd);
        ch->rfd = -1;
    }
    free(ch->rbuf);
    ch->rbuf = NULL;
    ch->rcap = ch->rstart = ch->rend = 0;
}

static int pipe_wait(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                     int extra_fd, int timeout_ms, const sigset_t *sigmask)
{
    struct pollfd stackfds[32];
    size_t want = nread + nwrite + 1;
    struct pollfd *fds = want <= 32 ? stackfds : cv_calloc(want, sizeof *fds);
    size_t n = 0;
    if (extra_fd >= 0)
        fds[n++] = (struct pollfd){.fd = extra_fd, .events = POLLIN};
    for (size_t i = 0; i < nread; i++)
        fds[n++] = (struct pollfd){.fd = ((pipe_channel *)read[i])->rfd, .events = POLLIN};
    for (size_t i = 0; i < nwrite; i++)
        if (pipe_pending(write[i]))
            fds[n++] = (struct pollfd){.fd = ((pipe_channel *)write[i])->wfd, .events = POLLOUT};
    if (n == 0) {
        /* Nothing to wait for: the caller's publish already wrote out what
         * was pending, so it can go on. */
        if (fds != stackfds)
            free(fds);
        return 0;
    }
    int rc = 0;
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    if (ppoll(fds, n, tsp, sigmask) < 0)
        rc = -errno;
    else
        for (size_t i = 0; i < nwrite; i++)
            if (pipe_pending(write[i])) {
                int w = try_write((pipe_channel *)write[i]);
                if (w < 0 && w != -EAGAIN) {
                    rc = w;
                    break;
                }
            }
    if (fds != stackfds)
        free(fds);
    return rc;
}

static uint64_t pipe_queued(const cv_channel *base)
{
    const pipe_channel *ch = (const pipe_channel *)base;
    uint64_t s = __atomic_load_n(&ch->stats->sent, __ATOMIC_RELAXED);
    uint64_t r = __atomic_load_n(&ch->stats->received, __ATOMIC_RELAXED);
    /* The producer's own unpublished sends count too: they are queued. */
    if (ch->sent > s)
        s = ch->sent;
    return s > r ? s - r : 0;
}

static void pipe_destroy(cv_channel *base)
{
    pipe_channel *ch = (pipe_channel *)base;
    pipe_keep(base, CV_END_NONE);
    free(ch->wbuf);
    free(ch->rbuf);
    free(ch);
}

static void pipe_publish(cv_channel *base)
{
    pipe_channel *ch = (pipe_channel *)base;
    if (ch->wfd >= 0 && pipe_pending(base))
        (void)try_write(ch);
}

static int pipe_read_fd(const cv_channel *base)
{
    return ((const pipe_channel *)base)->rfd;
}

static int pipe_write_fd(const cv_channel *base)
{
    return ((const pipe_channel *)base)->wfd;
}

static const struct cv_channel_ops pipe_ops = {
    .keep = pipe_keep,
    .send = pipe_send,
    .reserve = pipe_reserve,
    .commit = pipe_commit,
    .flush = pipe_flush,
    .pending = pipe_pending,
    .publish = pipe_publish,
    .close_write = pipe_close_write,
    .recv = pipe_recv,
    .close_read = pipe_close_read,
    .wait = pipe_wait,
    .queued = pipe_queued,
    .destroy = pipe_destroy,
    .read_fd = pipe_read_fd,
    .write_fd = pipe_write_fd,
};
