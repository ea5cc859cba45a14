/* SPDX-License-Identifier: MIT */
/* test_inbox.c - the inbox (run/inbox.c) alone, merging real ring and pipe channels. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run/inbox.h"
#include "transport/channel.h"
#include "transport/shm.h"

#define MAXCH 3
#define MAX_ITEM 4096
#define RING_BYTES 65536
#define SMALL_RING 4096     /* holds exactly 16 records of 240 bytes */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- channels of either transport ---------------------------------------- */

/* What a ring needs in shared memory: counters, and one bell per process
 * (the consumer's is shared by all its channels, as in a join). */
typedef struct shared_bits {
    cv_channel_stats stats[MAXCH];
    cv_bell consumer;
    cv_bell producers[MAXCH];
} shared_bits;

typedef struct transport {
    const char *name;
    cv_channel *(*create)(cv_channel_stats *stats, cv_bell *producer, cv_bell *consumer,
                          size_t ring_bytes);
} transport;

static cv_channel *create_ring(cv_channel_stats *stats, cv_bell *producer, cv_bell *consumer,
                               size_t ring_bytes)
{
    return cv_channel_create_ring(stats, MAX_ITEM, ring_bytes, ring_bytes, producer, consumer,
                                  NULL);
}

static cv_channel *create_pipe(cv_channel_stats *stats, cv_bell *producer, cv_bell *consumer,
                               size_t ring_bytes)
{
    (void)producer;
    (void)consumer;
    (void)ring_bytes;
    return cv_channel_create_pipe(stats, MAX_ITEM);
}

static const transport transports[] = {
    {"ring", create_ring},
    {"pipe", create_pipe},
};
#define RING (&transports[0])
#define FOR_EACH_TRANSPORT(tp) \
    for (const transport *tp = transports; tp < transports + ARRAY_LEN(transports); tp++)

/* N channels whose write ends the test (or a child of it) feeds and whose
 * read ends the inbox merges. */
typedef struct rig {
    const transport *tp;
    size_t n;
    cv_channel *ch[MAXCH];
    shared_bits *sh;
    cv_inbox ib;
} rig;

static void rig_open(rig *rg, const transport *tp, size_t n, size_t ring_bytes)
{
    memset(rg, 0, sizeof *rg);
    rg->tp = tp;
    rg->n = n;
    rg->sh = cv_shared_alloc(sizeof *rg->sh);
    cr_assert_not_null(rg->sh);
    for (size_t i = 0; i < n; i++) {
        rg->ch[i] = tp->create(&rg->sh->stats[i], &rg->sh->producers[i], &rg->sh->consumer,
                               ring_bytes);
        cr_assert_not_null(rg->ch[i], "%s: channel %zu not created", tp->name, i);
    }
}

static void rig_inbox(rig *rg, const unsigned *ranks, enum cv_order order, cv_inbox_wait_fn wait,
                      void *arg)
{
    cv_channel_stats *stats[MAXCH];
    for (size_t i = 0; i < rg->n; i++)
        stats[i] = &rg->sh->stats[i];
    cv_inbox_init(&rg->ib, rg->ch, stats, ranks, rg->n, order, wait, arg);
}

static void rig_close(rig *rg)
{
    cv_inbox_free(&rg->ib);
    for (size_t i = 0; i < rg->n; i++)
        cv_channel_destroy(rg->ch[i]);
    cv_shared_free(rg->sh, sizeof *rg->sh);
}

/* The producer's side, from the test: each record is made visible at once. */
static void send_item(rig *rg, unsigned c, uint64_t seq, uint32_t flags, const char *data)
{
    size_t len = data ? strlen(data) : 0;
    int rc = cv_channel_send(rg->ch[c], seq, flags, data, len);
    cr_assert_eq(rc, 0, "%s: sending seq %llu on channel %u: %d", rg->tp->name,
                 (unsigned long long)seq, c, rc);
    rc = cv_channel_flush(rg->ch[c], 0);
    cr_assert_eq(rc, 0, "%s: flushing channel %u: %d", rg->tp->name, c, rc);
}

static void end_channel(rig *rg, unsigned c)
{
    cr_assert_eq(cv_channel_close_write(rg->ch[c]), 0, "%s: closing channel %u", rg->tp->name, c);
}

/* --- scripts: what arrives, and when the inbox waits --------------------- */

enum op { OP_END, OP_ITEM, OP_MARK, OP_CLOSE, OP_CLOSE_ALL, OP_WAIT, OP_RETURN, OP_LOW, OP_READS };

typedef struct act {
    enum op op;
    unsigned ch;
    uint64_t seq;       /* OP_LOW: the low expected; OP_READS: a mask of channels */
    const char *data;
    int rc;
} act;

#define ITEM(c, s, d) {OP_ITEM, (c), (s), (d), 0}
#define MARK(c, s) {OP_MARK, (c), (s), NULL, 0}         /* a watermark */
#define CLOSE(c) {OP_CLOSE, (c), 0, NULL, 0}
#define CLOSE_ALL {OP_CLOSE_ALL, 0, 0, NULL, 0}
/* What follows happens inside the inbox's next wait, up to the next WAIT. */
#define WAIT {OP_WAIT, 0, 0, NULL, 0}
#define RETURN(r) {OP_RETURN, 0, 0, NULL, (r)}          /* what that wait returns */
#define LOW(s) {OP_LOW, 0, (s), NULL, 0}                /* cv_inbox_low() in that wait */
#define READS(mask) {OP_READS, 0, (mask), NULL, 0}      /* the channels it waits on */
#define END {OP_END, 0, 0, NULL, 0}

typedef struct script {
    rig *rg;
    const act *next;
    int armed;          /* a WAIT was reached: the inbox's next wait is scripted */
    int waits;          /* how often the inbox waited */
    cv_channel **reads;
    size_t nreads;
} script;

static unsigned read_mask(const script *s)
{
    unsigned mask = 0;
    for (size_t k = 0; k < s->nreads; k++) {
        size_t i = 0;
        while (i < s->rg->n && s->rg->ch[i] != s->reads[k])
            i++;
        cr_assert_lt(i, s->rg->n, "%s: wait %d was given a channel not of the inbox",
                     s->rg->tp->name, s->waits);
        cr_assert_eq(mask & (1u << i), 0, "%s: wait %d was given channel %zu twice",
                     s->rg->tp->name, s->waits, i);
        mask |= 1u << i;
    }
    return mask;
}

/* Plays the actions up to the next WAIT (then armed) or the end; returns
 * what a RETURN among them asked for, else 0. */
static int play(script *s)
{
    int rc = 0;
    rig *rg = s->rg;
    s->armed = 0;
    for (; s->next->op != OP_END; s->next++) {
        const act *a = s->next;
        switch (a->op) {
        case OP_ITEM:
            send_item(rg, a->ch, a->seq, 0, a->data);
            break;
        case OP_MARK:
            send_item(rg, a->ch, a->seq, CV_REC_WATERMARK, NULL);
            break;
        case OP_CLOSE:
            end_channel(rg, a->ch);
            break;
        case OP_CLOSE_ALL:
            for (unsigned c = 0; c < rg->n; c++)
                end_channel(rg, c);
            break;
        case OP_RETURN:
            rc = a->rc;
            break;
        case OP_LOW:
            cr_assert_eq(cv_inbox_low(&rg->ib), a->seq, "%s: in wait %d, the low is %llu, not %llu",
                         rg->tp->name, s->waits, (unsigned long long)cv_inbox_low(&rg->ib),
                         (unsigned long long)a->seq);
            break;
        case OP_READS:
            cr_assert_eq(read_mask(s), (unsigned)a->seq,
                         "%s: wait %d waits on channels %#x, not %#x", rg->tp->name, s->waits,
                         read_mask(s), (unsigned)a->seq);
            break;
        case OP_WAIT:
            s->next++;
            s->armed = 1;
            return rc;
        case OP_END:
            break;
        }
    }
    return rc;
}

static int script_wait(void *arg, cv_channel **reads, size_t nreads)
{
    script *s = arg;
    s->waits++;
    cr_assert(s->armed, "%s: wait %d was not scripted", s->rg->tp->name, s->waits);
    s->reads = reads;
    s->nreads = nreads;
    return play(s);
}

static void script_start(script *s, rig *rg, const act *acts)
{
    memset(s, 0, sizeof *s);
    s->rg = rg;
    s->next = acts;
    play(s);
}

/* An item the inbox must hand out next, after WAITS waits (-1: not pinned),
 * and what cv_inbox_low() says then (when HAS_LOW). */
typedef struct want {
    uint64_t seq;
    const char *data;
    int waits;
    int has_low;
    uint64_t low;
} want;

#define GOT(s, d, w) {(s), (d), (w), 0, 0}
#define GOT_LOW(s, d, w, l) {(s), (d), (w), 1, (l)}

static void expect_item(rig *rg, const script *s, size_t i, const want *w)
{
    cv_record rec;
    const char *tn = rg->tp->name;
    int rc = cv_inbox_next(&rg->ib, &rec);
    cr_assert_eq(rc, 1, "%s: item %zu (seq %llu): cv_inbox_next returned %d", tn, i,
                 (unsigned long long)w->seq, rc);
    cr_assert_eq(rec.flags & CV_REC_WATERMARK, 0, "%s: item %zu is a watermark", tn, i);
    cr_assert_eq(rec.seq, w->seq, "%s: item %zu has seq %llu, not %llu", tn, i,
                 (unsigned long long)rec.seq, (unsigned long long)w->seq);
    size_t len = strlen(w->data);
    cr_assert(rec.len == len && (len == 0 || memcmp(rec.data, w->data, len) == 0),
              "%s: item %zu (seq %llu) is '%.*s', not '%s'", tn, i, (unsigned long long)rec.seq,
              (int)rec.len, rec.len ? (const char *)rec.data : "", w->data);
    if (w->waits >= 0)
        cr_assert_eq(s->waits, w->waits, "%s: item %zu ('%s') came after %d waits, not %d", tn, i,
                     w->data, s->waits, w->waits);
    if (w->has_low)
        cr_assert_eq(cv_inbox_low(&rg->ib), w->low,
                     "%s: after item %zu ('%s') the low is %llu, not %llu", tn, i, w->data,
                     (unsigned long long)cv_inbox_low(&rg->ib), (unsigned long long)w->low);
}

static void expect_end(rig *rg, const script *s)
{
    cv_record rec;
    const char *tn = rg->tp->name;
    cr_assert_eq(cv_inbox_next(&rg->ib, &rec), 0, "%s: not the end of the stream", tn);
    cr_assert_eq(cv_inbox_next(&rg->ib, &rec), 0, "%s: the end is not lasting", tn);
    cr_assert_not(s->armed, "%s: the stream ended after %d waits, fewer than scripted", tn,
                  s->waits);
    cr_assert_eq(cv_inbox_low(&rg->ib), UINT64_MAX, "%s: the low at the end is %llu", tn,
                 (unsigned long long)cv_inbox_low(&rg->ib));
}

/* Plays ACTS against an inbox of N channels, on every transport, and
 * checks that exactly WANTS come out, then the end. */
static void run_script(size_t n, const unsigned *ranks, enum cv_order order, const act *acts,
                       const want *wants, size_t nwants)
{
    FOR_EACH_TRANSPORT(tp) {
        rig rg;
        script s;
        rig_open(&rg, tp, n, RING_BYTES);
        rig_inbox(&rg, ranks, order, script_wait, &s);
        script_start(&s, &rg, acts);
        for (size_t i = 0; i < nwants; i++)
            expect_item(&rg, &s, i, &wants[i]);
        expect_end(&rg, &s);
        rig_close(&rg);
    }
}

static const unsigned no_ranks[MAXCH] = {0, 0, 0};

/* --- a single input ------------------------------------------------------ */

/* Items of 0 to 11 bytes with watermarks among them: every item in order,
 * none a watermark, each counted in the channel's received as it is
 * handed out, even those received together with others. */
Test(inbox_single, hands_out_items_one_by_one_and_counts_each)
{
    static const char text[] = "0123456789ab";
    FOR_EACH_TRANSPORT(tp) {
        rig rg;
        script s;
        static const act none[] = {END};
        rig_open(&rg, tp, 1, RING_BYTES);
        rig_inbox(&rg, no_ranks, CV_ORDER_ARRIVAL, script_wait, &s);
        script_start(&s, &rg, none);
        for (unsigned i = 0; i < 100; i++) {
            if (i % 10 == 5)
                send_item(&rg, 0, i, CV_REC_WATERMARK, NULL);
            cr_assert_eq(cv_channel_send(rg.ch[0], i, 0, text, i % 12), 0);
        }
        end_channel(&rg, 0);

        int batched = 0;
        for (unsigned i = 0; i < 100; i++) {
            cv_record rec;
            cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 1, "%s: item %u", tp->name, i);
            cr_assert_eq(rec.seq, i, "%s: item %u has seq %llu", tp->name, i,
                         (unsigned long long)rec.seq);
            cr_assert_eq(rec.flags, 0, "%s: item %u", tp->name, i);
            cr_assert(rec.len == i % 12 && memcmp(rec.data, text, rec.len) == 0,
                      "%s: item %u has %u bytes, or the wrong ones", tp->name, i, rec.len);
            cr_assert_eq(rg.sh->stats[0].received, i + 1, "%s: after item %u received is %llu",
                         tp->name, i, (unsigned long long)rg.sh->stats[0].received);
            if (rg.ib.bn > 1)
                batched = 1;
        }
        /* Only the ring receives several records at once (recv_many). */
        if (tp == RING)
            cr_assert(batched, "ring: the items were never received together");
        expect_end(&rg, &s);
        rig_close(&rg);
    }
}

/* Items that arrive while it waits, then the end seen in a wait. */
Test(inbox_single, waits_for_items_and_for_the_end)
{
    static const act acts[] = {
        ITEM(0, 1, "one"),
        WAIT, READS(0x1), ITEM(0, 2, ""), ITEM(0, 3, "three"),
        WAIT, READS(0x1), CLOSE(0),
        END,
    };
    static const want wants[] = {GOT(1, "one", 0), GOT(2, "", 1), GOT(3, "three", 1)};
    run_script(1, no_ranks, CV_ORDER_ARRIVAL, acts, wants, ARRAY_LEN(wants));
}

/* --- arrival ------------------------------------------------------------- */

/* With every channel holding items, they take turns. */
Test(inbox_arrival, channels_with_items_take_turns)
{
    static const act acts[] = {
        ITEM(0, 0, "a0"), ITEM(0, 1, "a1"), ITEM(0, 2, "a2"), ITEM(0, 3, "a3"), CLOSE(0),
        ITEM(1, 10, "b0"), MARK(1, 11), ITEM(1, 11, "b1"), ITEM(1, 12, "b2"), ITEM(1, 13, "b3"),
        CLOSE(1),
        ITEM(2, 20, "c0"), ITEM(2, 21, "c1"), ITEM(2, 22, ""), MARK(2, 23), ITEM(2, 23, "c3"),
        CLOSE(2),
        END,
    };
    static const want wants[] = {
        GOT(0, "a0", 0), GOT(10, "b0", 0), GOT(20, "c0", 0),
        GOT(1, "a1", 0), GOT(11, "b1", 0), GOT(21, "c1", 0),
        GOT(2, "a2", 0), GOT(12, "b2", 0), GOT(22, "", 0),
        GOT(3, "a3", 0), GOT(13, "b3", 0), GOT(23, "c3", 0),
    };
    run_script(3, no_ranks, CV_ORDER_ARRIVAL, acts, wants, ARRAY_LEN(wants));
}

/* Ended channels are skipped and not waited on; the end comes only when
 * the last input ends. */
Test(inbox_arrival, ended_channels_are_skipped_and_the_end_waits_for_all)
{
    static const act acts[] = {
        ITEM(0, 0, "a0"), CLOSE(0),
        ITEM(1, 1, "b0"), ITEM(1, 2, "b1"), ITEM(1, 3, "b2"),
        CLOSE(2),
        WAIT, READS(0x2), ITEM(1, 4, "b3"),
        WAIT, READS(0x2), CLOSE(1),
        END,
    };
    static const want wants[] = {
        GOT(0, "a0", 0), GOT(1, "b0", 0), GOT(2, "b1", 0), GOT(3, "b2", 0), GOT(4, "b3", 1),
    };
    run_script(3, no_ranks, CV_ORDER_ARRIVAL, acts, wants, ARRAY_LEN(wants));
}

/* Items that arrive on several channels during a wait all come out, each
 * channel's in its order. */
Test(inbox_arrival, items_arriving_during_a_wait_keep_their_channel_order)
{
    static const act acts[] = {
        WAIT, READS(0x7), ITEM(2, 0, "c0"), ITEM(0, 1, "a0"), ITEM(2, 2, "c1"),
        WAIT, READS(0x7), CLOSE_ALL,
        END,
    };
    static const want wants[] = {GOT(1, "a0", 1), GOT(0, "c0", 1), GOT(2, "c1", 1)};
    run_script(3, no_ranks, CV_ORDER_ARRIVAL, acts, wants, ARRAY_LEN(wants));
}

/* --- concat -------------------------------------------------------------- */

/* Rank 0 is channel 1, rank 1 channel 0, rank 2 channel 2.  What ranks 1
 * and 2 send while rank 0 is read (a zero-length item among it) is spilled
 * and comes out after rank 0 has ended, in order and with its seq. */
Test(inbox_concat, later_ranks_come_after_the_earlier_in_order)
{
    static const unsigned ranks[] = {1, 0, 2};
    static const act acts[] = {
        ITEM(0, 10, "l0"), ITEM(0, 11, ""), MARK(0, 12), ITEM(0, 12, "l2"),
        ITEM(1, 0, "e0"), ITEM(1, 1, "e1"),
        ITEM(2, 20, "m0"), CLOSE(2),
        WAIT, READS(0x3), ITEM(1, 2, "e2"), ITEM(0, 13, "l3"),
        WAIT, READS(0x3), CLOSE(1), ITEM(0, 14, "l4"), CLOSE(0),
        END,
    };
    static const want wants[] = {
        GOT(0, "e0", 0), GOT(1, "e1", 0), GOT(2, "e2", 1),
        GOT(10, "l0", 2), GOT(11, "", 2), GOT(12, "l2", 2), GOT(13, "l3", 2), GOT(14, "l4", 2),
        GOT(20, "m0", 2),
    };
    run_script(3, ranks, CV_ORDER_CONCAT, acts, wants, ARRAY_LEN(wants));
}

/* The later rank is still open when the earlier one ends: its spill comes
 * first, at once (not after a wait on the later rank), then what it sends
 * after. */
Test(inbox_concat, a_later_rank_still_open_replays_its_spill_then_goes_on)
{
    static const act acts[] = {
        ITEM(0, 0, "e0"), ITEM(1, 5, "l0"), ITEM(1, 6, ""),
        WAIT, READS(0x3), CLOSE(0),
        WAIT, READS(0x2), ITEM(1, 7, "l2"), CLOSE(1),
        END,
    };
    static const want wants[] = {
        GOT(0, "e0", 0), GOT(5, "l0", 1), GOT(6, "", 1), GOT(7, "l2", 2),
    };
    run_script(2, (const unsigned[]){0, 1}, CV_ORDER_CONCAT, acts, wants, ARRAY_LEN(wants));
}

typedef struct room_check {
    rig *rg;
    int waits;
    uint64_t seq;       /* the next seq of the later rank */
} room_check;

static char big[1000];

/* The inbox waits for rank 0 (channel 0): by then it has read rank 1
 * (channel 1) ahead, so that channel's producer, which had found it full,
 * can send again.  Then rank 0 sends its item and both end. */
static int room_wait(void *arg, cv_channel **reads, size_t nreads)
{
    room_check *rc = arg;
    rig *rg = rc->rg;
    cr_assert_eq(++rc->waits, 1, "%s: a second wait", rg->tp->name);
    /* As a process's own wait does: what it freed is published first. */
    for (size_t i = 0; i < nreads; i++)
        cv_channel_publish(reads[i]);
    int r = cv_channel_send(rg->ch[1], rc->seq, 0, big, sizeof big);
    cr_assert_eq(r, 0, "%s: the later rank's producer is still blocked (%d)", rg->tp->name, r);
    rc->seq++;
    send_item(rg, 0, 0, 0, "e0");
    end_channel(rg, 0);
    end_channel(rg, 1);
    return 0;
}

Test(inbox_concat, a_later_rank_is_read_ahead_so_its_producer_never_blocks)
{
    static const unsigned ranks[] = {0, 1};
    FOR_EACH_TRANSPORT(tp) {
        rig rg;
        room_check rc = {&rg, 0, 100};
        rig_open(&rg, tp, 2, SMALL_RING);
        rig_inbox(&rg, ranks, CV_ORDER_CONCAT, room_wait, &rc);
        for (size_t k = 0; k < sizeof big; k++)
            big[k] = (char)('a' + k % 26);
        while (cv_channel_send(rg.ch[1], rc.seq, 0, big, sizeof big) == 0)
            rc.seq++;
        cr_assert_gt(rc.seq, 100, "%s: nothing fitted", tp->name);

        cv_record rec;
        cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 1);
        cr_assert(rec.seq == 0 && rec.len == 2 && memcmp(rec.data, "e0", 2) == 0,
                  "%s: rank 0's item is not first", tp->name);
        cr_assert_eq(rc.waits, 1);
        for (uint64_t seq = 100; seq < rc.seq; seq++) {
            cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 1, "%s: item %llu", tp->name,
                         (unsigned long long)seq);
            cr_assert(rec.seq == seq && rec.len == sizeof big &&
                          memcmp(rec.data, big, sizeof big) == 0,
                      "%s: seq %llu (%u bytes) where %llu was due", tp->name,
                      (unsigned long long)rec.seq, rec.len, (unsigned long long)seq);
        }
        cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 0, "%s: more than was sent", tp->name);
        cr_assert_eq(rc.waits, 1);
        rig_close(&rg);
    }
}

/* --- source order -------------------------------------------------------- */

/* Channel a has rank 2, b rank 0, c rank 1: the merge is on seq, ties in
 * rank order (a channel's own items in their order), watermarks skipped;
 * the low is the lowest seq any channel may still send. */
Test(inbox_source, merges_on_seq_with_ties_in_rank_order)
{
    static const unsigned ranks[] = {2, 0, 1};
    static const act acts[] = {
        ITEM(0, 0, "a0"), MARK(0, 1), ITEM(0, 3, "a3"), ITEM(0, 5, "a5"), ITEM(0, 5, ""),
        MARK(0, 6), ITEM(0, 9, "a9"), CLOSE(0),
        ITEM(1, 1, "b1"), ITEM(1, 5, "b5"), MARK(1, 6), ITEM(1, 7, "b7"), CLOSE(1),
        ITEM(2, 2, "c2"), ITEM(2, 5, "c5"), ITEM(2, 8, "c8"), MARK(2, 10), ITEM(2, 10, "c10"),
        CLOSE(2),
        END,
    };
    static const want wants[] = {
        GOT_LOW(0, "a0", 0, 0), GOT_LOW(1, "b1", 0, 1), GOT_LOW(2, "c2", 0, 2),
        GOT_LOW(3, "a3", 0, 3), GOT_LOW(5, "b5", 0, 5), GOT_LOW(5, "c5", 0, 5),
        GOT_LOW(5, "a5", 0, 5), GOT_LOW(5, "", 0, 5), GOT_LOW(7, "b7", 0, 7),
        GOT_LOW(8, "c8", 0, 8), GOT_LOW(9, "a9", 0, 9), GOT_LOW(10, "c10", 0, 10),
    };
    run_script(3, ranks, CV_ORDER_SOURCE, acts, wants, ARRAY_LEN(wants));
}

/* a has 100 next, b has sent 2 and nothing since: 100 must wait for b.
 * Once b's watermark says nothing below 150 will come, 100 goes, with b
 * having sent no item since (one wait, in which b sent only that). */
Test(inbox_source, a_watermark_lets_an_item_pass_a_lagging_channel)
{
    static const unsigned ranks[] = {0, 1};
    static const act acts[] = {
        ITEM(0, 1, "a1"), ITEM(0, 100, "a100"), ITEM(1, 2, "b2"),
        WAIT, READS(0x2), LOW(2), MARK(1, 150),
        WAIT, READS(0x3), LOW(100), CLOSE(0),
        WAIT, READS(0x2), LOW(150), ITEM(1, 150, "b150"), CLOSE(1),
        END,
    };
    static const want wants[] = {
        GOT_LOW(1, "a1", 0, 1), GOT_LOW(2, "b2", 0, 2), GOT_LOW(100, "a100", 1, 100),
        GOT_LOW(150, "b150", 3, 150),
    };
    run_script(2, ranks, CV_ORDER_SOURCE, acts, wants, ARRAY_LEN(wants));
}

/* A tie waits for the lower rank: y (rank 1) holds 5 while x (rank 0) may
 * still send 5; a watermark of 5 does not let it go, one of 6 does. */
Test(inbox_source, a_tie_waits_for_the_lower_rank)
{
    static const unsigned ranks[] = {0, 1};
    static const act acts[] = {
        ITEM(0, 5, "x5"), ITEM(1, 5, "y5"), ITEM(1, 6, "y6"),
        WAIT, READS(0x1), LOW(5), MARK(0, 5),
        WAIT, READS(0x1), LOW(5), MARK(0, 6),
        WAIT, READS(0x1), LOW(6), ITEM(0, 6, "x6"),
        WAIT, READS(0x1), LOW(6), CLOSE(0),
        WAIT, READS(0x2), LOW(6), CLOSE(1),
        END,
    };
    static const want wants[] = {
        GOT_LOW(5, "x5", 0, 5), GOT_LOW(5, "y5", 2, 5),
        GOT_LOW(6, "x6", 3, 6), GOT_LOW(6, "y6", 4, 6),
    };
    run_script(2, ranks, CV_ORDER_SOURCE, acts, wants, ARRAY_LEN(wants));
}

/* One input in source order: its watermarks raise the low while it waits
 * (what the process passes on downstream). */
Test(inbox_source, one_input_reports_its_watermarks_as_the_low)
{
    static const act acts[] = {
        ITEM(0, 3, "s3"), MARK(0, 10),
        WAIT, READS(0x1), LOW(10), ITEM(0, 12, "s12"),
        WAIT, READS(0x1), LOW(12), CLOSE(0),
        END,
    };
    static const want wants[] = {GOT_LOW(3, "s3", 0, 3), GOT_LOW(12, "s12", 1, 12)};
    run_script(1, no_ranks, CV_ORDER_SOURCE, acts, wants, ARRAY_LEN(wants));
}

/* --- acknowledgements (ring only) ---------------------------------------- */

/* A record of 256 bytes: 16 fill a SMALL_RING exactly. */
static int send_240(rig *rg, unsigned c, uint64_t seq)
{
    static const char pad[240];
    int rc = cv_channel_send(rg->ch[c], seq, 0, pad, sizeof pad);
    if (rc == 0)
        cv_channel_flush(rg->ch[c], 0);
    return rc;
}

/* Full rings read item by item: an item's space is freed by cv_inbox_ack
 * alone, and on the channel it came from only. */
Test(inbox_ack, acknowledges_the_channel_of_the_item_returned_last)
{
    static const struct {
        const char *name;
        size_t n;
        enum cv_order order;
    } cases[] = {
        {"one input", 1, CV_ORDER_ARRIVAL},
        {"arrival", 2, CV_ORDER_ARRIVAL},
        {"source", 2, CV_ORDER_SOURCE},
    };
    static const unsigned ranks[] = {0, 1};
    static const act none[] = {END};
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        const char *cn = cases[k].name;
        size_t n = cases[k].n;
        rig rg;
        script s;
        uint64_t next[MAXCH] = {0};     /* per channel: the next j, seq = j * n + channel */
        rig_open(&rg, RING, n, SMALL_RING);
        for (unsigned c = 0; c < n; c++) {
            cr_assert_eq(cv_channel_set_ack(rg.ch[c], CV_END_READ), 0);
            while (send_240(&rg, c, next[c] * n + c) == 0)
                next[c]++;
            cr_assert_eq(next[c], 16, "%s: %llu records fitted", cn, (unsigned long long)next[c]);
        }
        rig_inbox(&rg, ranks, cases[k].order, script_wait, &s);
        script_start(&s, &rg, none);

        /* Channel c holds items j * n + c, so every case hands out 0, 1, 2... */
        uint64_t seq = 0;
        for (; seq < 6; seq++) {
            cv_record rec;
            cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 1, "%s: item %llu", cn,
                         (unsigned long long)seq);
            cr_assert_eq(rec.seq, seq, "%s: seq %llu, not %llu", cn, (unsigned long long)rec.seq,
                         (unsigned long long)seq);
            unsigned from = (unsigned)(seq % n);
            for (unsigned c = 0; c < n; c++)
                cr_assert_eq(send_240(&rg, c, next[c] * n + c), -EAGAIN,
                             "%s: channel %u has room before the ack of %llu", cn, c,
                             (unsigned long long)seq);
            cv_inbox_ack(&rg.ib);
            for (unsigned c = 0; c < n; c++) {
                if (c != from) {
                    cr_assert_eq(send_240(&rg, c, next[c] * n + c), -EAGAIN,
                                 "%s: the ack of %llu (channel %u) freed channel %u", cn,
                                 (unsigned long long)seq, from, c);
                    continue;
                }
                cr_assert_eq(send_240(&rg, c, next[c] * n + c), 0,
                             "%s: the ack of %llu freed nothing on channel %u", cn,
                             (unsigned long long)seq, c);
                next[c]++;
                cr_assert_eq(send_240(&rg, c, next[c] * n + c), -EAGAIN,
                             "%s: the ack of %llu freed more than one item", cn,
                             (unsigned long long)seq);
            }
        }
        /* The rest, acknowledged one by one: nothing lost or repeated. */
        uint64_t total = 0;
        for (unsigned c = 0; c < n; c++) {
            end_channel(&rg, c);
            total += next[c];
        }
        cv_record rec;
        for (; seq < total; seq++) {
            cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 1, "%s: item %llu", cn,
                         (unsigned long long)seq);
            cr_assert_eq(rec.seq, seq, "%s: seq %llu, not %llu", cn, (unsigned long long)rec.seq,
                         (unsigned long long)seq);
            cv_inbox_ack(&rg.ib);
        }
        cr_assert_eq(cv_inbox_next(&rg.ib, &rec), 0, "%s: more than was sent", cn);
        cr_assert_eq(s.waits, 0);
        rig_close(&rg);
    }
}

/* --- errors of the wait -------------------------------------------------- */

/* Whatever the merge: an error of the wait is returned as it is (the
 * process's loop decides), -EINTR only makes it wait again. */
Test(inbox_errors, a_wait_error_is_returned_as_is)
{
    static const struct {
        const char *name;
        size_t n;
        enum cv_order order;
        unsigned ranks[MAXCH];
    } merges[] = {
        {"one input", 1, CV_ORDER_ARRIVAL, {0}},
        {"arrival", 3, CV_ORDER_ARRIVAL, {0, 0, 0}},
        {"concat", 3, CV_ORDER_CONCAT, {0, 1, 2}},
        {"source", 3, CV_ORDER_SOURCE, {0, 1, 2}},
        {"one input, source", 1, CV_ORDER_SOURCE, {0}},
    };
    static const act epipe[] = {WAIT, RETURN(-EPIPE), END};
    static const act eintr[] = {
        WAIT, RETURN(-EINTR),
        WAIT, ITEM(0, 7, "x"), CLOSE_ALL,
        END,
    };
    for (size_t m = 0; m < ARRAY_LEN(merges); m++) {
        const char *mn = merges[m].name;
        FOR_EACH_TRANSPORT(tp) {
            rig rg;
            script s;
            cv_record rec;
            rig_open(&rg, tp, merges[m].n, RING_BYTES);
            rig_inbox(&rg, merges[m].ranks, merges[m].order, script_wait, &s);
            script_start(&s, &rg, epipe);
            int rc = cv_inbox_next(&rg.ib, &rec);
            cr_assert_eq(rc, -EPIPE, "%s, %s: returned %d", mn, tp->name, rc);
            cr_assert_eq(s.waits, 1, "%s, %s: %d waits", mn, tp->name, s.waits);
            rig_close(&rg);

            rig_open(&rg, tp, merges[m].n, RING_BYTES);
            rig_inbox(&rg, merges[m].ranks, merges[m].order, script_wait, &s);
            script_start(&s, &rg, eintr);
            expect_item(&rg, &s, 0, &(const want)GOT(7, "x", 2));
            expect_end(&rg, &s);
            rig_close(&rg);
        }
    }
}

/* --- producers in other processes ---------------------------------------- */

#define FORK_ITEMS 1000     /* per producer; more bytes than a pipe holds */

static size_t payload(uint64_t seq, unsigned char *buf)
{
    size_t len = 1000 + (size_t)(seq % 7) * 100;
    for (size_t k = 0; k < len; k++)
        buf[k] = (unsigned char)(seq + k);
    return len;
}

/* Producer 2 drops four items in five, as a filter would, and says so with
 * watermarks. */
static int kept(unsigned c, unsigned j)
{
    return c != 2 || j % 5 == 0;
}

static int send_waiting(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data, size_t len)
{
    for (;;) {
        int rc = cv_channel_send(ch, seq, flags, data, len);
        if (rc != -EAGAIN)
            return rc;
        rc = cv_channels_wait(NULL, 0, &ch, 1, -1, -1, NULL);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
}

/* Producer C sends items j * 3 + C; it starts only once AFTER_FD has a byte
 * (when not -1) and writes one to DONE_FD (when not -1) once it has ended. */
static int produce(cv_channel *ch, unsigned c, int after_fd, int done_fd)
{
    static unsigned char buf[MAX_ITEM];
    char b;
    if (after_fd >= 0 && read(after_fd, &b, 1) != 1)
        return 10;
    for (unsigned j = 0; j < FORK_ITEMS; j++) {
        uint64_t seq = (uint64_t)j * 3 + c;
        int rc = kept(c, j) ? send_waiting(ch, seq, 0, buf, payload(seq, buf))
                            : send_waiting(ch, seq + 1, CV_REC_WATERMARK, NULL, 0);
        if (rc < 0)
            return 11;
    }
    if (cv_channel_close_write(ch) < 0)
        return 12;
    if (done_fd >= 0 && write(done_fd, "x", 1) != 1)
        return 13;
    return 0;
}

static int counting_wait(void *arg, cv_channel **reads, size_t nreads)
{
    int *waits = arg;
    ++*waits;
    return cv_channels_wait(reads, nreads, NULL, 0, -1, -1, NULL);
}

/* Three producers in their own processes.  concat: channel 0 has rank 1,
 * channel 1 rank 0, and the rank 0 producer starts only once the rank 1
 * producer has ended, which it can only do if its items are read ahead. */
Test(inbox_processes, producers_in_other_processes, .timeout = 60)
{
    static const struct {
        const char *name;
        enum cv_order order;
        unsigned ranks[3];
    } cases[] = {
        {"arrival", CV_ORDER_ARRIVAL, {0, 0, 0}},
        {"concat", CV_ORDER_CONCAT, {1, 0, 2}},
        {"source", CV_ORDER_SOURCE, {0, 1, 2}},
    };
    static unsigned char buf[MAX_ITEM];
    cv_ring_set_spin_limit(0);
    for (size_t k = 0; k < ARRAY_LEN(cases); k++) {
        enum cv_order order = cases[k].order;
        FOR_EACH_TRANSPORT(tp) {
            const char *cn = cases[k].name, *tn = tp->name;
            rig rg;
            int waits = 0, sync[2];
            pid_t kids[3], self = getpid();
            rig_open(&rg, tp, 3, RING_BYTES);
            cr_assert_eq(pipe(sync), 0);
            for (unsigned c = 0; c < 3; c++) {
                kids[c] = fork();
                cr_assert_geq(kids[c], 0);
                if (kids[c] == 0) {
                    /* A test that fails or times out leaves no producer behind. */
                    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
                        _exit(14);
                    for (unsigned i = 0; i < 3; i++)
                        cv_channel_keep(rg.ch[i], i == c ? CV_END_WRITE : CV_END_NONE);
                    int after = order == CV_ORDER_CONCAT && c == 1 ? sync[0] : -1;
                    int done = order == CV_ORDER_CONCAT && c == 0 ? sync[1] : -1;
                    if (after < 0)
                        close(sync[0]);
                    if (done < 0)
                        close(sync[1]);
                    _exit(produce(rg.ch[c], c, after, done));
                }
            }
            close(sync[0]);
            close(sync[1]);
            for (unsigned i = 0; i < 3; i++)
                cv_channel_keep(rg.ch[i], CV_END_READ);
            rig_inbox(&rg, cases[k].ranks, order, counting_wait, &waits);

            /* What must come out: in concat and source order exactly, in
             * arrival order each channel's items in their order. */
            uint64_t expected[3 * FORK_ITEMS], nwant = 0, got = 0;
            unsigned nextj[3] = {0, 0, 0};
            if (order == CV_ORDER_CONCAT)
                for (unsigned r = 0; r < 3; r++)
                    for (unsigned c = 0; c < 3; c++)
                        for (unsigned j = 0; cases[k].ranks[c] == r && j < FORK_ITEMS; j++)
                            if (kept(c, j))
                                expected[nwant++] = (uint64_t)j * 3 + c;
            if (order == CV_ORDER_SOURCE)
                for (unsigned s = 0; s < 3 * FORK_ITEMS; s++)
                    if (kept(s % 3, s / 3))
                        expected[nwant++] = s;
            cv_record rec;
            int rc;
            while ((rc = cv_inbox_next(&rg.ib, &rec)) == 1) {
                size_t len = payload(rec.seq, buf);
                cr_assert(rec.len == len && memcmp(rec.data, buf, len) == 0,
                          "%s, %s: the bytes of seq %llu", cn, tn, (unsigned long long)rec.seq);
                if (order == CV_ORDER_ARRIVAL) {
                    unsigned c = (unsigned)(rec.seq % 3), j = (unsigned)(rec.seq / 3);
                    while (nextj[c] < FORK_ITEMS && !kept(c, nextj[c]))
                        nextj[c]++;
                    cr_assert_eq(j, nextj[c], "%s, %s: channel %u gave item %u, not %u", cn, tn,
                                 c, j, nextj[c]);
                    nextj[c]++;
                } else {
                    cr_assert_lt(got, nwant, "%s, %s: more items than sent", cn, tn);
                    cr_assert_eq(rec.seq, expected[got], "%s, %s: item %llu is seq %llu, not %llu",
                                 cn, tn, (unsigned long long)got, (unsigned long long)rec.seq,
                                 (unsigned long long)expected[got]);
                }
                got++;
            }
            cr_assert_eq(rc, 0, "%s, %s: cv_inbox_next returned %d", cn, tn, rc);
            if (order == CV_ORDER_ARRIVAL)
                cr_assert_eq(got, 2 * FORK_ITEMS + FORK_ITEMS / 5, "%s, %s: %llu items", cn, tn,
                             (unsigned long long)got);
            else
                cr_assert_eq(got, nwant, "%s, %s: %llu items of %llu", cn, tn,
                             (unsigned long long)got, (unsigned long long)nwant);
            /* Rank 0 could send nothing before the inbox had read rank 1
             * ahead, which it does only when it is about to wait. */
            if (order == CV_ORDER_CONCAT)
                cr_assert_geq(waits, 1, "%s, %s", cn, tn);
            for (unsigned c = 0; c < 3; c++) {
                int status;
                cr_assert_eq(waitpid(kids[c], &status, 0), kids[c]);
                cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "%s, %s: producer %u ended with status %#x", cn, tn, c, status);
            }
            rig_close(&rg);
        }
    }
}

/* --- flush markers ----------------------------------------------------------- */

typedef struct marks_seen {
    uint64_t mark[8];
    int n;
} marks_seen;

static int note_mark(void *arg, uint64_t mark)
{
    marks_seen *m = arg;
    if (m->n < 8)
        m->mark[m->n] = mark;
    m->n++;
    return 0;
}

static int never_wait(void *arg, cv_channel **reads, size_t nreads)
{
    (void)arg, (void)reads, (void)nreads;
    return -ETIMEDOUT;
}

/* Takes what the inbox has now; the items' first letters, in order. */
static void take_now(rig *rg, char *got, size_t cap)
{
    cv_record rec;
    int rc;
    size_t n = strlen(got);
    while ((rc = cv_inbox_next(&rg->ib, &rec)) == 1)
        if (n + 1 < cap)
            got[n++] = ((const char *)rec.data)[0];
    got[n] = '\0';
    cr_assert_eq(rc, -ETIMEDOUT, "%s: the inbox returned %d", rg->tp->name, rc);
}

/* A marker is passed on once it came on every open input, once per value
 * (a repeated one, as a restarted producer sends, changes nothing), and an
 * input that ends holds none back. */
Test(inbox_marks, passed_on_once_every_open_input_had_it)
{
    static const enum cv_order orders[] = {CV_ORDER_ARRIVAL, CV_ORDER_SOURCE};
    static const unsigned ranks[] = {0, 1};
    FOR_EACH_TRANSPORT(tp) {
        for (size_t o = 0; o < ARRAY_LEN(orders); o++) {
            rig rg;
            marks_seen m = {.n = 0};
            char got[16] = "";
            const uint32_t mark = CV_REC_WATERMARK | CV_REC_MARK;
            rig_open(&rg, tp, 2, RING_BYTES);
            rig_inbox(&rg, ranks, orders[o], never_wait, NULL);
            static const unsigned char both[] = {1, 1};   /* one source, on both */
            cv_inbox_on_mark(&rg.ib, 1, both, note_mark, &m);
            send_item(&rg, 0, 1, 0, "a");
            send_item(&rg, 0, 3, mark, NULL);
            send_item(&rg, 1, 2, 0, "b");
            take_now(&rg, got, sizeof got);
            cr_assert_eq(m.n, 0, "%s: a marker on one input only is held back", tp->name);
            send_item(&rg, 1, 3, mark, NULL);
            take_now(&rg, got, sizeof got);
            cr_assert_eq(m.n, 1, "%s: passed on once both inputs had it", tp->name);
            cr_assert_eq(m.mark[0], 3);
            send_item(&rg, 0, 3, mark, NULL);
            send_item(&rg, 0, 4, 0, "c");
            send_item(&rg, 0, 5, mark, NULL);
            take_now(&rg, got, sizeof got);
            cr_assert_eq(m.n, 1, "%s: a repeated marker is not passed on again", tp->name);
            end_channel(&rg, 1);
            take_now(&rg, got, sizeof got);
            cr_assert_eq(m.n, 2, "%s: the input that ended holds nothing back", tp->name);
            cr_assert_eq(m.mark[1], 5);
            /* Every item once: in seq order from a source merge, "c" after
             * the first two (its marker came after them) in either. */
            if (orders[o] == CV_ORDER_SOURCE)
                cr_assert_str_eq(got, "abc", "%s: '%s'", tp->name, got);
            else
                cr_assert(strcmp(got, "abc") == 0 || strcmp(got, "bac") == 0, "%s: '%s'",
                          tp->name, got);
            rig_close(&rg);
        }
    }
}

/* Two source processes (markers 1, 3, 5 ... of source 0 and 2, 4, 6 ... of
 * source 1): each source's marker is held back only by the inputs that
 * carry that source, and one source's markers never hold the other's. */
Test(inbox_marks, each_source_waits_only_for_the_inputs_that_carry_it)
{
    static const unsigned ranks[] = {0, 1};
    FOR_EACH_TRANSPORT(tp) {
        rig rg;
        marks_seen m = {.n = 0};
        char got[16] = "";
        const uint32_t mark = CV_REC_WATERMARK | CV_REC_MARK;
        /* Input 0 carries sources 0 and 1; input 1 only source 1. */
        static const unsigned char carries[] = {1, 1, 0, 1};
        rig_open(&rg, tp, 2, RING_BYTES);
        rig_inbox(&rg, ranks, CV_ORDER_ARRIVAL, never_wait, NULL);
        cv_inbox_on_mark(&rg.ib, 2, carries, note_mark, &m);
        send_item(&rg, 0, 1, 0, "a");
        send_item(&rg, 0, 3, mark, NULL);       /* source 0: input 0 is all it needs */
        take_now(&rg, got, sizeof got);
        cr_assert_eq(m.n, 1, "%s: source 0's marker waits for no other input", tp->name);
        cr_assert_eq(m.mark[0], 3);
        send_item(&rg, 0, 4, mark, NULL);       /* source 1: input 1 must have it too */
        take_now(&rg, got, sizeof got);
        cr_assert_eq(m.n, 1, "%s: source 1's marker waits for input 1", tp->name);
        send_item(&rg, 1, 2, 0, "b");
        send_item(&rg, 1, 4, mark, NULL);
        take_now(&rg, got, sizeof got);
        cr_assert_eq(m.n, 2, "%s: source 1's marker passes once both had it", tp->name);
        cr_assert_eq(m.mark[1], 4);
        cr_assert_str_eq(got, "ab", "%s", tp->name);
        rig_close(&rg);
    }
}

/* A concat merge reads later inputs ahead into a spill: a marker that
 * came there passes only when the spill is replayed, after the items
 * before it. */
Test(inbox_marks, a_marker_read_ahead_by_concat_waits_for_its_items)
{
    static const unsigned ranks[] = {0, 1};
    FOR_EACH_TRANSPORT(tp) {
        rig rg;
        marks_seen m = {.n = 0};
        char got[16] = "";
        const uint32_t mark = CV_REC_WATERMARK | CV_REC_MARK;
        static const unsigned char both[] = {1, 1};
        rig_open(&rg, tp, 2, RING_BYTES);
        rig_inbox(&rg, ranks, CV_ORDER_CONCAT, never_wait, NULL);
        cv_inbox_on_mark(&rg.ib, 1, both, note_mark, &m);
        send_item(&rg, 1, 2, 0, "b");           /* rank 1, read ahead */
        send_item(&rg, 1, 3, mark, NULL);
        send_item(&rg, 0, 1, 0, "a");           /* rank 0 */
        take_now(&rg, got, sizeof got);
        cr_assert_str_eq(got, "a", "%s", tp->name);
        cr_assert_eq(m.n, 0, "%s: the marker came with 'b', not yet taken", tp->name);
        send_item(&rg, 0, 3, mark, NULL);
        end_channel(&rg, 0);
        take_now(&rg, got, sizeof got);
        cr_assert_str_eq(got, "ab", "%s", tp->name);
        cr_assert_eq(m.n, 1, "%s: passed once 'b' was taken", tp->name);
        cr_assert_eq(m.mark[0], 3);
        rig_close(&rg);
    }
}
