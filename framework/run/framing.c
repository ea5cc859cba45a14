/* SPDX-License-Identifier: MIT */
/*
 * framing.c - the source's splitter (bytes -> items) and the sink's joiner
 * (items -> bytes) for the lines, nul and length32 framings.
 *
 * The reader hands out pointers into its own buffer, so an item costs one
 * memchr over its bytes and no copy; it reads in chunks of at least the
 * initial buffer and grows only while one item does not fit, never past
 * max_item plus that buffer.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include "run/framing.h"
#include "base/util.h"

#define CHUNK ((size_t)64 << 10)

/* --- reader ---------------------------------------------------------------- */

int cv_reader_init(cv_reader *r, int fd, enum cv_framing framing, size_t max_item)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->framing = framing;
    r->max_item = max_item;
    r->buf = malloc(CHUNK);
    if (r->buf == NULL)
        return -ENOMEM;
    r->cap = CHUNK;
    return 0;
}

void cv_reader_free(cv_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->start = r->end = 0;
}

/* Makes room for at least NEED valid bytes and reads once.  The pending
 * bytes are first moved to the front, so each byte moves at most once per
 * item; the buffer grows only when the pending bytes fill it.
 * 0, or -errno (-EINTR with nothing lost). */
static int fill(cv_reader *r, size_t need)
{
    if (r->start > 0) {
        size_t n = r->end - r->start;
        if (n > 0)
            memmove(r->buf, r->buf + r->start, n);
        r->start = 0;
        r->end = n;
    }
    if (need > r->cap || r->end == r->cap) {
        /* Callers guarantee need <= max_item + 4 and that the pending bytes
         * are at most max_item, so this stays within max_item + CHUNK. */
        size_t limit = r->max_item > SIZE_MAX - CHUNK ? SIZE_MAX : r->max_item + CHUNK;
        size_t cap = r->cap;
        while (cap < need || cap == r->end) {
            if (cap >= limit)
                return -EMSGSIZE;   /* unreachable given the above */
            cap = cap > limit / 2 ? limit : cap * 2;
        }
        unsigned char *b = realloc(r->buf, cap);
        if (b == NULL)
            return -ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    if (r->before_read) {
        int rc = r->before_read(r->before_read_arg, r->fd);
        if (rc < 0)
            return rc;
    }
    ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
    if (n < 0)
        return -errno;   /* -EINTR too: the caller may want to stop */
    if (n == 0)
        r->eof = 1;
    r->end += (size_t)n;
    return 0;
}

static int next_delimited(cv_reader *r, int sep, const void **item, size_t *len)
{
    size_t scanned = 0;   /* bytes after start known to hold no separator */

    for (;;) {
        size_t avail = r->end - r->start;
        unsigned char *p = r->buf + r->start;
        unsigned char *hit = memchr(p + scanned, sep, avail - scanned);

        if (hit != NULL) {
            size_t n = (size_t)(hit - p);
            if (n > r->max_item)
                return -EMSGSIZE;
            *item = p;
            *len = n;
            r->start += n + 1;
            r->items++;
            return 1;
        }
        scanned = avail;
        if (scanned > r->max_item)
            return -EMSGSIZE;
        if (r->eof) {
            if (avail == 0)
                return 0;
            /* A last item without its terminator. */
            *item = p;
            *len = avail;
            r->start = r->end;
            r->items++;
            return 1;
        }
        int rc = fill(r, 0);
        if (rc < 0)
            return rc;
    }
}

/* Reads the rest of a placed frame straight into its place. */
static int read_placed(cv_reader *r, const void **item, size_t *len)
{
    while (r->placed_got < r->placed_len) {
        if (r->eof)
            return -EPROTO;
        if (r->before_read) {
            int rc = r->before_read(r->before_read_arg, r->fd);
            if (rc < 0)
                return rc;
        }
        ssize_t n = read(r->fd, r->placed + r->placed_got, r->placed_len - r->placed_got);
        if (n < 0)
            return -errno;
        if (n == 0)
            r->eof = 1;
        r->placed_got += (size_t)n;
    }
    *item = r->placed;
    *len = r->placed_len;
    r->placed = NULL;
    r->items++;
    return 1;
}

static int next_length32(cv_reader *r, const void **item, size_t *len)
{
    if (r->placed)
        return read_placed(r, item, len);
    for (;;) {
        size_t avail = r->end - r->start;
        unsigned char *p = r->buf + r->start;
        size_t need = 4;

        if (avail >= 4) {
            uint32_t n = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            /* Refused on the header alone: the frame is never buffered. */
            if (n > r->max_item)
                return -EMSGSIZE;
            need = 4 + (size_t)n;
            if (avail >= need) {
                *item = p + 4;
                *len = n;
                r->start += need;
                r->items++;
                return 1;
            }
            void *dst = r->place && n >= r->place_min ? r->place(r->place_arg, n) : NULL;
            if (dst) {
                r->placed = dst;
                r->placed_len = n;
                r->placed_got = avail - 4;
                memcpy(dst, p + 4, avail - 4);
                r->start = r->end = 0;
                return read_placed(r, item, len);
            }
        }
        if (r->eof)
            return avail == 0 ? 0 : -EPROTO;
        int rc = fill(r, need);
        if (rc < 0)
            return rc;
    }
}

int cv_reader_next_slow(cv_reader *r, const void **item, size_t *len)
{
    switch (r->framing) {
    case CV_FRAMING_LINES:
        return next_delimited(r, '\n', item, len);
    case CV_FRAMING_NUL:
        return next_delimited(r, '\0', item, len);
    case CV_FRAMING_LENGTH32:
        return next_length32(r, item, len);
    }
    return -EINVAL;
}

/* --- writer ---------------------------------------------------------------- */

int cv_writer_init(cv_writer *w, int fd, enum cv_framing framing)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->framing = framing;
    w->buf = malloc(CHUNK);
    if (w->buf == NULL)
        return -ENOMEM;
    w->cap = CHUNK;
    return 0;
}

void cv_writer_free(cv_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->cap = w->used = 0;
}

/* Writes all of IOV, going on after short writes, EINTR and EAGAIN (a
 * non-blocking output waits until it takes bytes).  0 or -errno. */
static int writev_all(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            int rc = cv_write_retry(fd, errno);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t done = (size_t)n;
        while (cnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

int cv_writer_flush(cv_writer *w)
{
    struct iovec iov = {w->buf, w->used};
    int rc = writev_all(w->fd, &iov, 1);

    /* After an error the buffered items are dropped: the caller stops. */
    w->used = 0;
    return rc;
}

/* The general case of cv_writer_put, out of line. */
__attribute__((noinline)) static int writer_put_framed(cv_writer *w, const void *item,
                                                    size_t len)
{
    unsigned char hdr[4];
    size_t framed;

    if (w->framing == CV_FRAMING_LENGTH32) {
        if (len > UINT32_MAX)
            return -EMSGSIZE;
        hdr[0] = (unsigned char)len;
        hdr[1] = (unsigned char)(len >> 8);
        hdr[2] = (unsigned char)(len >> 16);
        hdr[3] = (unsigned char)(len >> 24);
        framed = len + 4;
    } else {
        hdr[0] = w->framing == CV_FRAMING_NUL ? '\0' : '\n';
        framed = len + 1;
    }

    if (framed > w->cap - w->used) {
        if (framed > w->cap) {
            /* Too big to buffer: one writev of what is buffered and the
             * item, without copying it. */
            struct iovec iov[3];
            int cnt = 0;
            if (w->used > 0)
                iov[cnt++] = (struct iovec){w->buf, w->used};
            if (w->framing == CV_FRAMING_LENGTH32) {
                iov[cnt++] = (struct iovec){hdr, 4};
                iov[cnt++] = (struct iovec){(void *)item, len};
            } else {
                iov[cnt++] = (struct iovec){(void *)item, len};
                iov[cnt++] = (struct iovec){hdr, 1};
            }
            w->used = 0;
            int rc = writev_all(w->fd, iov, cnt);
            if (rc < 0)
                return rc;
            w->items++;
            return 0;
        }
        int rc = cv_writer_flush(w);
        if (rc < 0)
            return rc;
    }

    unsigned char *p = w->buf + w->used;
    if (w->framing == CV_FRAMING_LENGTH32) {
        memcpy(p, hdr, 4);
        if (len)
            memcpy(p + 4, item, len);
    } else {
        if (len)
            memcpy(p, item, len);
        p[len] = hdr[0];
    }
    w->used += framed;
    w->items++;
    return 0;
}

int cv_writer_put(cv_writer *w, const void *item, size_t len)
{
    /* The common case first: a delimited item that fits the buffer. */
    if (w->framing != CV_FRAMING_LENGTH32 && len < w->cap - w->used) {
        unsigned char *p = w->buf + w->used;
        if (len <= 256)
            cv_copy_small(p, item, len);
        else
            memcpy(p, item, len);
        p[len] = w->framing == CV_FRAMING_NUL ? '\0' : '\n';
        w->used += len + 1;
        w->items++;
        return 0;
    }
    return writer_put_framed(w, item, len);
}
