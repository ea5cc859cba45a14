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

#include "channel.h"
#include "config.h"

struct cv_run;

typedef struct cv_in_chan {
    cv_channel *ch;
    unsigned rank;
    int open;
    int has_head;
    cv_record head;
    uint64_t low;           /* source: the lowest seq that may still come */
    FILE *spill;            /* concat: what arrived before its turn */
    int replaying;
} cv_in_chan;

typedef struct cv_inbox {
    cv_in_chan *in;
    size_t n;
    enum cv_order order;
    size_t next;            /* arrival: where the round-robin resumes */
    int last;               /* the channel of the item returned last, or -1 */
    unsigned cur_rank;      /* concat */
    unsigned char *spillbuf;
    size_t spillcap;
    cv_channel **waitlist;
    struct cv_run *run;
} cv_inbox;

void cv_inbox_init(cv_inbox *ib, cv_channel **chans, const unsigned *ranks, size_t n,
                   enum cv_order order, struct cv_run *run);
/* 1 and the next item (data valid until the next call), 0 when every input
 * has ended, -errno on error.  Watermarks are consumed here, never returned. */
int cv_inbox_next(cv_inbox *ib, cv_record *rec);
/* The lowest seq that may still come out (UINT64_MAX when all ended). */
uint64_t cv_inbox_low(const cv_inbox *ib);
/* The item returned last is done (restart = on-failure acknowledges each). */
void cv_inbox_ack(cv_inbox *ib);
void cv_inbox_free(cv_inbox *ib);

#endif
