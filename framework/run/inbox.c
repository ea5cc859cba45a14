/* SPDX-License-Identifier: MIT */
/*
 * inbox.c - merges a process's input channels (see inbox.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "run/inbox.h"
#include "base/util.h"

#define CV_INBOX_BATCH 32   /* items received at once from a single input */

void cv_inbox_init(cv_inbox *ib, cv_channel **chans, cv_channel_stats *const *stats,
                   const unsigned *ranks, size_t n, enum cv_order order, cv_inbox_wait_fn wait,
                   void *wait_arg)
{
    memset(ib, 0, sizeof *ib);
    ib->in = cv_calloc(n + 1, sizeof *ib->in);
    ib->waitlist = cv_calloc(n + 1, sizeof *ib->waitlist);
    ib->n = n;
    ib->order = order;
    ib->wait = wait;
    ib->wait_arg = wait_arg;
    ib->cur_rank = n ? ranks[0] : 0;
    ib->last = -1;
    ib->single = n == 1 && order != CV_ORDER_SOURCE;
    if (ib->single) {
        ib->batch = cv_calloc(CV_INBOX_BATCH, sizeof *ib->batch);
        ib->received = &stats[0]->received;
    }
    for (size_t i = 0; i < n; i++) {
        ib->in[i].ch = chans[i];
        ib->in[i].rank = ranks[i];
        ib->in[i].open = 1;
        if (ranks[i] < ib->cur_rank)
            ib->cur_rank = ranks[i];
    }
}

void cv_inbox_free(cv_inbox *ib)
{
    for (size_t i = 0; i < ib->n; i++)
        if (ib->in[i].spill)
            fclose(ib->in[i].spill);
    free(ib->in);
    free(ib->waitlist);
    free(ib->batch);
    free(ib->spillbuf);
    free(ib->marks);
    free(ib->carries);
    free(ib->passed);
    memset(ib, 0, sizeof *ib);
}

void cv_inbox_on_mark(cv_inbox *ib, size_t nsrc, const unsigned char *carries,
                      cv_inbox_mark_fn on_mark, void *arg)
{
    ib->nsrc = nsrc;
    ib->marks = cv_calloc(ib->n * nsrc + 1, sizeof *ib->marks);
    ib->carries = cv_calloc(ib->n * nsrc + 1, 1);
    memcpy(ib->carries, carries, ib->n * nsrc);
    ib->passed = cv_calloc(nsrc + 1, sizeof *ib->passed);
    ib->on_mark = on_mark;
    ib->mark_arg = arg;
}

/* The marker of source K that every open input carrying it has passed;
 * when it moved, the owner is told.  A closed input sends nothing more, so
 * it holds no marker back; when all are closed the end of stream says the
 * rest. */
static int marks_moved(cv_inbox *ib, size_t k)
{
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < ib->n; i++)
        if ((ib->in[i].open || ib->in[i].spill) && ib->carries[i * ib->nsrc + k] &&
            ib->marks[i * ib->nsrc + k] < low)
            low = ib->marks[i * ib->nsrc + k];
    if (low == UINT64_MAX || low <= ib->passed[k])
        return 0;
    ib->passed[k] = low;
    return ib->on_mark(ib->mark_arg, low);
}

/* Marker REC came on input I.  Cold: once per marker. */
__attribute__((noinline, cold)) static int got_mark(cv_inbox *ib, size_t i, const cv_record *rec)
{
    if (!ib->on_mark || rec->seq == 0)
        return 0;
    size_t k = (size_t)((rec->seq - 1) % ib->nsrc);
    if (rec->seq > ib->marks[i * ib->nsrc + k])
        ib->marks[i * ib->nsrc + k] = rec->seq;
    return marks_moved(ib, k);
}

/* Input I ended (and what it spilled is used up): it holds back no marker
 * of the sources it carried. */
static int marks_released(cv_inbox *ib, size_t i)
{
    for (size_t k = 0; ib->on_mark && k < ib->nsrc; k++) {
        int rc = ib->carries[i * ib->nsrc + k] ? marks_moved(ib, k) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mark_closed(cv_inbox *ib, size_t i)
{
    cv_in_chan *c = &ib->in[i];
    c->open = 0;
    c->low = UINT64_MAX;
    cv_channel_close_read(c->ch);
    return c->spill ? 0 : marks_released(ib, i);
}

/* The next item of input I, watermarks skipped: 1 (and it becomes the one
 * to acknowledge), 0 at its end (then closed), -EAGAIN, or -errno. */
static int read_item(cv_inbox *ib, size_t i, cv_record *rec)
{
    cv_in_chan *c = &ib->in[i];
    int rc;
    while ((rc = cv_channel_recv(c->ch, rec)) == 1 && (rec->flags & CV_REC_WATERMARK))
        if ((rec->flags & CV_REC_MARK) && (rc = got_mark(ib, i, rec)) < 0)
            return rc;
    if (rc == 1) {
        ib->next = i + 1;
        ib->last = (int)i;
    } else if (rc == 0) {
        int mrc = mark_closed(ib, i);
        if (mrc < 0)
            return mrc;
    }
    return rc;
}

/* --- arrival ------------------------------------------------------------ */

/* One input (the common chain): every order is arrival order, and there is
 * no round-robin to keep.  Items are received several at a time when the
 * channel can (cv_inbox_next hands out the rest), else one by one. */
static int next_single(cv_inbox *ib, cv_record *rec)
{
    cv_in_chan *c = &ib->in[0];
    ib->bpos = ib->bn = 0;
    for (;;) {
        if (!c->open)
            return 0;
        int n = cv_channel_recv_many(c->ch, ib->batch, CV_INBOX_BATCH);
        if (n > 0) {
            ib->bn = n;
            ib->bpos = 1;
            ib->last = 0;
            *rec = ib->batch[0];
            return 1;
        }
        int rc = read_item(ib, 0, rec);
        if (rc != -EAGAIN)
            return rc;
        rc = ib->wait(ib->wait_arg, &c->ch, 1);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

static int next_arrival(cv_inbox *ib, cv_record *rec)
{
    for (;;) {
        size_t nwait = 0;
        for (size_t k = 0; k < ib->n; k++) {
            /* ib->next <= n: a wrap, not a division, per channel tried. */
            size_t i = ib->next + k;
            if (i >= ib->n)
                i -= ib->n;
            cv_in_chan *c = &ib->in[i];
            if (!c->open)
                continue;
            int rc = read_item(ib, i, rec);
            if (rc == 1 || (rc < 0 && rc != -EAGAIN))
                return rc;
            if (rc == -EAGAIN)
                ib->waitlist[nwait++] = c->ch;
        }
        if (nwait == 0)
            return 0;
        int rc = ib->wait(ib->wait_arg, ib->waitlist, nwait);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

/* --- concat ------------------------------------------------------------- */

static int spill_write(cv_in_chan *c, const cv_record *rec)
{
    if (!c->spill) {
        c->spill = tmpfile();
        if (!c->spill)
            return -errno;
    }
    uint64_t seq = rec->seq;
    uint32_t len = rec->len, flags = rec->flags;
    if (fwrite(&seq, sizeof seq, 1, c->spill) != 1 || fwrite(&flags, sizeof flags, 1, c->spill) != 1 ||
        fwrite(&len, sizeof len, 1, c->spill) != 1 || (len && fwrite(rec->data, len, 1, c->spill) != 1))
        return -EIO;
    return 0;
}

/* 1 with an item from the spill of input I (a completion marker spilled
 * with the items is passed on in its place, after the items before it), 0
 * when the spill is used up. */
static int spill_read(cv_inbox *ib, size_t i, cv_record *rec)
{
    cv_in_chan *c = &ib->in[i];
    uint64_t seq;
    uint32_t len, flags;
again:
    if (fread(&seq, sizeof seq, 1, c->spill) != 1) {
        fclose(c->spill);
        c->spill = NULL;
        c->replaying = 0;
        return c->open ? 0 : marks_released(ib, i);
    }
    if (fread(&flags, sizeof flags, 1, c->spill) != 1 || fread(&len, sizeof len, 1, c->spill) != 1)
        return -EIO;
    if (flags & CV_REC_MARK) {
        rec->seq = seq;
        rec->flags = flags;
        int rc = got_mark(ib, i, rec);
        if (rc < 0)
            return rc;
        goto again;
    }
    if (len > ib->spillcap) {
        ib->spillbuf = cv_realloc(ib->spillbuf, len);
        ib->spillcap = len;
    }
    if (len && fread(ib->spillbuf, len, 1, c->spill) != 1)
        return -EIO;
    rec->seq = seq;
    rec->flags = 0;
    rec->len = len;
    rec->data = ib->spillbuf;
    rec->ref = 0;
    return 1;
}

static int next_concat(cv_inbox *ib, cv_record *rec)
{
    for (;;) {
        size_t nwait = 0, current = 0;
        for (size_t k = 0; k < ib->n; k++) {
            size_t i = (ib->next + k) % ib->n;
            cv_in_chan *c = &ib->in[i];
            if (c->rank != ib->cur_rank || (!c->open && !c->spill))
                continue;
            current++;
            if (c->replaying) {
                int rc = spill_read(ib, i, rec);
                if (rc != 0) {
                    ib->next = i;
                    ib->last = -1;
                    return rc;
                }
            }
            if (!c->open)
                continue;
            int rc = read_item(ib, i, rec);
            if (rc == 1 || (rc < 0 && rc != -EAGAIN))
                return rc;
            if (rc == -EAGAIN)
                ib->waitlist[nwait++] = c->ch;
        }
        if (current == 0) {
            /* This rank is done: the next one replays its spill first. */
            unsigned next = UINT32_MAX;
            for (size_t i = 0; i < ib->n; i++)
                if ((ib->in[i].open || ib->in[i].spill) && ib->in[i].rank > ib->cur_rank &&
                    ib->in[i].rank < next)
                    next = ib->in[i].rank;
            if (next == UINT32_MAX)
                return 0;
            ib->cur_rank = next;
            for (size_t i = 0; i < ib->n; i++)
                if (ib->in[i].rank == next && ib->in[i].spill) {
                    if (fflush(ib->in[i].spill) != 0 || fseek(ib->in[i].spill, 0, SEEK_SET) != 0)
                        return -EIO;
                    ib->in[i].replaying = 1;
                }
            continue;
        }
        /* The current rank ended in this pass: go on with the next one
         * now, not after a wait on a later rank that may never come. */
        if (nwait == 0)
            continue;
        /* Later ranks are read ahead into their spills, so their producers
         * never block on us while we wait for the current rank. */
        for (size_t i = 0; i < ib->n; i++) {
            cv_in_chan *c = &ib->in[i];
            if (c->rank <= ib->cur_rank || !c->open)
                continue;
            int rc;
            while ((rc = cv_channel_recv(c->ch, rec)) == 1)
                if ((!(rec->flags & CV_REC_WATERMARK) || (rec->flags & CV_REC_MARK)) &&
                    (rc = spill_write(c, rec)) < 0)
                    return rc;
            if (rc == 0) {
                if ((rc = mark_closed(ib, i)) < 0)
                    return rc;
            } else if (rc == -EAGAIN) {
                ib->waitlist[nwait++] = c->ch;
            } else {
                return rc;
            }
        }
        if (nwait == 0)
            continue;
        int rc = ib->wait(ib->wait_arg, ib->waitlist, nwait);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

/* --- source order ------------------------------------------------------- */

static int next_source(cv_inbox *ib, cv_record *rec)
{
    for (;;) {
        size_t nwait = 0;
        /* Fill the heads; watermarks only raise a channel's low mark. */
        for (size_t i = 0; i < ib->n; i++) {
            cv_in_chan *c = &ib->in[i];
            while (c->open && !c->has_head) {
                int rc = cv_channel_recv(c->ch, &c->head);
                if (rc == 1) {
                    if (c->head.flags & CV_REC_WATERMARK) {
                        /* A marker is a watermark only of a lone source. */
                        int mark = c->head.flags & CV_REC_MARK;
                        if ((!mark || ib->nsrc <= 1) && c->head.seq > c->low)
                            c->low = c->head.seq;
                        if (mark && (rc = got_mark(ib, i, &c->head)) < 0)
                            return rc;
                        continue;
                    }
                    c->has_head = 1;
                    c->low = c->head.seq;
                } else if (rc == 0) {
                    if ((rc = mark_closed(ib, i)) < 0)
                        return rc;
                } else if (rc == -EAGAIN) {
                    ib->waitlist[nwait++] = c->ch;
                    break;
                } else {
                    return rc;
                }
            }
        }
        /* The smallest (seq, rank) head goes, once no channel without a
         * head may still send something that sorts before it. */
        cv_in_chan *best = NULL;
        int open = 0;
        for (size_t i = 0; i < ib->n; i++) {
            cv_in_chan *c = &ib->in[i];
            open |= c->open || c->has_head;
            if (c->has_head &&
                (!best || c->head.seq < best->head.seq ||
                 (c->head.seq == best->head.seq && c->rank < best->rank)))
                best = c;
        }
        if (!open)
            return 0;
        if (best) {
            int ok = 1;
            for (size_t i = 0; i < ib->n && ok; i++) {
                cv_in_chan *c = &ib->in[i];
                if (c == best || c->has_head || !c->open)
                    continue;
                if (c->low < best->head.seq || (c->low == best->head.seq && c->rank < best->rank))
                    ok = 0;
            }
            if (ok) {
                *rec = best->head;
                best->has_head = 0;
                ib->last = (int)(best - ib->in);
                return 1;
            }
        }
        if (nwait == 0)
            continue;
        int rc = ib->wait(ib->wait_arg, ib->waitlist, nwait);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

int cv_inbox_next_slow(cv_inbox *ib, cv_record *rec)
{
    if (ib->single)
        return next_single(ib, rec);
    switch (ib->order) {
    case CV_ORDER_CONCAT:
        return next_concat(ib, rec);
    case CV_ORDER_SOURCE:
        return next_source(ib, rec);
    case CV_ORDER_ARRIVAL:
    default:
        return next_arrival(ib, rec);
    }
}

void cv_inbox_ack(cv_inbox *ib)
{
    if (ib->last >= 0 && ib->in[ib->last].open)
        cv_channel_ack(ib->in[ib->last].ch);
}

uint64_t cv_inbox_low(const cv_inbox *ib)
{
    uint64_t low = UINT64_MAX;
    for (size_t i = 0; i < ib->n; i++) {
        const cv_in_chan *c = &ib->in[i];
        uint64_t l = c->has_head ? c->head.seq : c->open ? c->low : UINT64_MAX;
        if (l < low)
            low = l;
    }
    return low;
}
