/* SPDX-License-Identifier: MIT */
/*
 * framing.h - splitting a byte stream into items and joining items into one.
 *
 * lines:    an item is the bytes before '\n' (the '\n' is not part of it); a
 *           last line without '\n' is an item; empty lines are empty items.
 * nul:      the same with '\0'.
 * length32: each item is a 4-byte little-endian length, then that many bytes.
 *
 * The reader never allocates more than max_item (+ its read buffer): a frame
 * or line longer than that is reported as -EMSGSIZE with the item number,
 * and a length32 stream that ends inside a frame as -EPROTO.
 */
#ifndef CV_FRAMING_H
#define CV_FRAMING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "load/config.h"

typedef struct cv_reader {
    int fd;
    enum cv_framing framing;
    size_t max_item;
    unsigned char *buf;
    size_t cap, start, end;   /* valid bytes are buf[start, end) */
    int eof;
    uint64_t items;           /* items returned so far */
    /* Called before every read(2), when set: a negative return is returned
     * by cv_reader_next (-EINTR: call again).  The source uses it to flush
     * its outputs while the input has nothing, and to see a stop request. */
    int (*before_read)(void *arg, int fd);
    void *before_read_arg;
    /* length32 only, when set: a frame of at least place_min bytes not yet
     * in the buffer is read straight into the memory place() returns (NULL:
     * into the buffer as usual), so a large item is never copied by the
     * reader.  The source places large items in the shared pool. */
    void *(*place)(void *arg, size_t len);
    void *place_arg;
    size_t place_min;
    unsigned char *placed;    /* the frame being read into placed memory */
    size_t placed_len, placed_got;
} cv_reader;

int cv_reader_init(cv_reader *r, int fd, enum cv_framing framing, size_t max_item);
/* 1 and the next item (valid until the next call; in memory from place()
 * when it returned a place for it), 0 at the end of input,
 * or: -EMSGSIZE (item r->items + 1 is larger than max_item), -EPROTO
 * (truncated length32 frame), -EINTR (a signal interrupted a read; call
 * again to go on), another -errno from read(). */
static inline int cv_reader_next(cv_reader *r, const void **item, size_t *len);
/* cv_reader_next's general case (inline, below: called once per item). */
int cv_reader_next_slow(cv_reader *r, const void **item, size_t *len);
void cv_reader_free(cv_reader *r);

typedef struct cv_writer {
    int fd;
    enum cv_framing framing;
    unsigned char *buf;
    size_t cap, used;
    uint64_t items;
} cv_writer;

int cv_writer_init(cv_writer *w, int fd, enum cv_framing framing);
/* Appends one framed item; writes when the buffer fills.  0 or -errno
 * (-EPIPE when the reader went away, -EMSGSIZE for a length32 item over
 * 4 GiB - 1). */
int cv_writer_put(cv_writer *w, const void *item, size_t len);
int cv_writer_flush(cv_writer *w);
void cv_writer_free(cv_writer *w);

/* The common case first: a whole line already in the buffer. */
static inline int cv_reader_next(cv_reader *r, const void **item, size_t *len)
{
    if (r->framing == CV_FRAMING_LINES && r->end > r->start) {
        unsigned char *p = r->buf + r->start;
        unsigned char *hit = memchr(p, '\n', r->end - r->start);
        if (hit != NULL && (size_t)(hit - p) <= r->max_item) {
            *item = p;
            *len = (size_t)(hit - p);
            r->start += *len + 1;
            r->items++;
            return 1;
        }
    }
    return cv_reader_next_slow(r, item, len);
}

#endif
