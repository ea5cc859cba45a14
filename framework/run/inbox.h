/* SPDX-License-Identifier: MIT */
/*
 * inbox.h - how a process merges its input channels into one stream.
 *
 *   arrival  whatever comes first (round-robin among channels with data).
 *   concat   all of the lowest rank, then the next rank...; what arrives
 *            early on a later rank is spilled to an unlinked temporary file,
 *            so upstream never blocks on a consumer that is not reading it
 *            (a bounded channel plus a spill, never unbounded memory).
 *   source   the order items left the source: a k-way merge on seq, ties
 *            in rank order.  Every channel of such a merge is "ordered" and
 *            its producer sends watermarks, so the merge never waits for a
 *            record that will not come; its window is the channels' size.
 */
#ifndef CV_INBOX_H
#define CV_INBOX_H

#include <stdint.h>
#include <stdio.h>

#include "transport/channel.h"
#include "load/config.h"

/* How the inbox waits when no input has anything: returns once one of
 * READS may have data (or end of stream), after doing whatever its owner
 * must do before it sleeps (flush and publish its outputs).  0, -EINTR, or
 * another -errno, which the inbox returns. */
typedef int (*cv_inbox_wait_fn)(void *arg, cv_channel **reads, size_t nreads);

/* Called when completion marker MARK (see CV_REC_MARK) has come on every
 * open input that carries its source, before the inbox returns anything
 * that came after it.  0, or -errno, which the inbox returns. */
typedef int (*cv_inbox_mark_fn)(void *arg, uint64_t mark);

typedef struct cv_in_chan {
    cv_channel *ch;
    unsigned rank;
    int open;
    int has_head;
    cv_record head;
    uint64_t low;           /* source: the lowest seq that may still come */
    uint64_t mark;          /* the highest flush marker seen on it */
    FILE *spill;            /* concat: what arrived before its turn */
    int replaying;
} cv_in_chan;

/* Called when a flush marker has come on every open input (its seq N: see
 * CV_REC_MARK in channel.h), before the inbox returns anything after it.
 * 0, or -errno, which the inbox returns. */
typedef int (*cv_inbox_mark_fn)(void *arg, uint64_t mark);

typedef struct cv_inbox {
    cv_in_chan *in;
    size_t n;
    enum cv_order order;
    size_t next;            /* arrival: where the round-robin resumes */
    int last;               /* the channel of the item returned last, or -1 */
    int single;             /* one input, not merged in source order */
    /* single: items received together, handed out one by one, each
     * counted then in the channel's received (cv_channel_recv_many) */
    cv_record *batch;
    int bpos, bn;
    volatile uint64_t *received;
    unsigned cur_rank;      /* concat */
    unsigned char *spillbuf;
    size_t spillcap;
    cv_channel **waitlist;
    cv_inbox_wait_fn wait;
    void *wait_arg;
    /* Completion markers (cv_inbox_on_mark): per input and source process,
     * the highest marker seen and whether the input carries that source;
     * per source, the marker passed on last. */
    size_t nsrc;
    uint64_t *marks;        /* n * nsrc */
    unsigned char *carries; /* n * nsrc */
    uint64_t *passed;       /* nsrc */
    cv_inbox_mark_fn on_mark;   /* NULL: markers are dropped like watermarks */
    void *mark_arg;
} cv_inbox;

/* STATS[i] are the counters of CHANS[i], RANKS[i] its rank (concat and
 * source ties); WAIT(WAIT_ARG, ...) is called whenever nothing can be read. */
void cv_inbox_init(cv_inbox *ib, cv_channel **chans, cv_channel_stats *const *stats,
                   const unsigned *ranks, size_t n, enum cv_order order, cv_inbox_wait_fn wait,
                   void *wait_arg);
/* Completion markers: NSRC source processes; CARRIES[i * NSRC + k] says
 * whether input i carries source k's items (copied).  ON_MARK(ARG, N) is
 * called when marker N has come on every open input carrying its source. */
void cv_inbox_on_mark(cv_inbox *ib, size_t nsrc, const unsigned char *carries,
                      cv_inbox_mark_fn on_mark, void *arg);
/* 1 and the next item (data valid until the next call), 0 when every input
 * has ended, -errno on error.  Watermarks are consumed here, never returned.
 * Inline, below: it is called once per item. */
static inline int cv_inbox_next(cv_inbox *ib, cv_record *rec);
/* cv_inbox_next's general case. */
int cv_inbox_next_slow(cv_inbox *ib, cv_record *rec);
/* The lowest seq that may still come out (UINT64_MAX when all ended). */
uint64_t cv_inbox_low(const cv_inbox *ib);
/* The item returned last is done (restart = on-failure acknowledges each). */
void cv_inbox_ack(cv_inbox *ib);
void cv_inbox_free(cv_inbox *ib);

/* With one input, the next of the items received together, else the
 * general way. */
static inline int cv_inbox_next(cv_inbox *ib, cv_record *rec)
{
    if (ib->bpos < ib->bn) {
        *rec = ib->batch[ib->bpos++];
        *ib->received += 1;
        return 1;
    }
    return cv_inbox_next_slow(ib, rec);
}

#endif
