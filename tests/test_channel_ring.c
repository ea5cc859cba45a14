/* SPDX-License-Identifier: MIT */
/*
 * test_channel_ring.c - the ring (channel_ring.c) through channel.h:
 * wrap-around, a full ring and the bells, a consumer gone, records in
 * pieces and records aborted, batches, item by item acknowledgement and
 * restarts, references and their budget.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/channel.h"
#include "transport/pool.h"
#include "channel_util.h"

/* --- ring: space, wrapping, the bells -------------------------------------- */

/* Takes every record there is, checking each against the lengths it was
 * sent with, and hands the space back. */
static void drain(cv_channel *ch, uint64_t *next, const size_t *lens, size_t nlens)
{
    cv_record rec;
    int rc;
    while ((rc = cv_channel_recv(ch, &rec)) == 1) {
        assert_record(&rec, *next, 0, lens[*next % nlens]);
        ++*next;
    }
    cr_assert_eq(rc, -EAGAIN, "after record %llu: %d", (unsigned long long)*next, rc);
    cv_channel_publish(ch);
}

/* The test keeps its own account of where the producer writes and where
 * the consumer freed up to (16-byte headers, records padded to 16 bytes, a
 * record that would cross the end of the ring moves to the start), and
 * every send must be refused exactly when that account says it is full. */
Test(ring, positions_wrap_many_times_and_a_record_never_crosses_the_end)
{
    static const size_t lens[] = {1008, 1008, 1008, 1008, 333, 0,  17,  700, 1, 1007,
                                  100,  255,  256,  257,  500, 15, 16, 999, 64};
    const size_t nlens = sizeof lens / sizeof *lens, cap = 4096;
    cv_channel *ch = new_ring(cap, 4096, 0, NULL);
    uint64_t pos = 0, tail = 0, next = 0;
    unsigned wraps = 0, fulls = 0, to_the_end = 0;
    unsigned char buf[1008];

    for (uint64_t i = 0; i < 400; i++) {
        size_t len = lens[i % nlens];
        size_t size = (16 + len + 15) & ~(size_t)15, off = pos & (cap - 1);
        size_t skip = cap - off < size ? cap - off : 0;
        if (cap - (pos - tail) < skip + size) {
            cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, len, i), len), -EAGAIN,
                         "record %llu of %zu bytes at %llu, the consumer at %llu: full",
                         (unsigned long long)i, len, (unsigned long long)pos,
                         (unsigned long long)tail);
            drain(ch, &next, lens, nlens);
            cr_assert_eq(next, i);
            tail = pos;
            fulls++;
        }
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, len, i), len), 0,
                     "record %llu of %zu bytes at %llu, the consumer at %llu: room",
                     (unsigned long long)i, len, (unsigned long long)pos, (unsigned long long)tail);
        pos += skip + size;
        wraps += skip != 0;
        to_the_end += (pos & (cap - 1)) == 0;
    }
    cr_assert_eq(cv_channel_close_write(ch), 0);
    cv_record rec;
    int rc;
    while ((rc = cv_channel_recv(ch, &rec)) == 1) {
        assert_record(&rec, next, 0, lens[next % nlens]);
        next++;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(next, 400);
    /* The test's own reach: the positions went round many times. */
    cr_assert_geq(pos / cap, 30);
    cr_assert_geq(wraps, 15);
    cr_assert_geq(fulls, 30);
    cr_assert_geq(to_the_end, 2, "records that end exactly at the end of the ring");
}

Test(ring, a_full_ring_refuses_with_eagain_and_freed_space_rings_a_waiting_producer)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    unsigned char buf[1000];
    cv_record rec;
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000), 0, "record %llu",
                     (unsigned long long)i);
    cr_assert_eq(cv_channel_send(ch, 4, 0, fill(buf, 1000, 4), 1000), -EAGAIN);
    cr_assert_eq(cv_channel_send(ch, 4, 0, buf, 1000), -EAGAIN);

    /* The producer is asleep now (as far as the bell says). */
    area->producer.waiting = 1;
    uint32_t word = area->producer.word;
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 0, 0, 1000);
    cr_assert_eq(area->producer.word, word, "nothing is freed while a record is handed out");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 1, 0, 1000);
    cr_assert_eq(area->producer.word, word + 1, "an eighth of the ring freed rings its producer");
    cr_assert_eq(area->producer.rung_by, &area->consumer);
    area->producer.waiting = 0;

    cr_assert_eq(cv_channels_wait(NULL, 0, &ch, 1, -1, 0, NULL), 0);
    cr_assert_eq(cv_channel_send(ch, 4, 0, fill(buf, 1000, 4), 1000), 0);
    cr_assert_eq(cv_channel_send(ch, 5, 0, fill(buf, 1000, 5), 1000), -EAGAIN);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    for (uint64_t i = 2; i <= 4; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1);
        assert_record(&rec, i, 0, 1000);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
}

/* A producer that must wait has published all it sent, or its consumer
 * could wait for it in turn: 85 records of 48 bytes fill 4080 of 4096, and
 * a producer otherwise publishes every 512 bytes (an eighth). */
Test(ring, a_producer_refused_for_want_of_room_has_published_all_it_sent)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    unsigned char buf[20];
    cv_record rec;
    uint64_t n = 0;
    while (cv_channel_send(ch, n, 0, fill(buf, 20, n), 20) == 0)
        n++;
    cr_assert_eq(n, 85);
    cr_assert_eq(cv_channel_pending(ch), 0);
    for (uint64_t i = 0; i < n; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1, "record %llu", (unsigned long long)i);
        assert_record(&rec, i, 0, 20);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
}

/* A consumer rings its producer's bell for the little it frees before it
 * waits only when the producer said it waits for space. */
Test(ring, a_producer_that_waits_for_space_is_rung_for_any_space_freed_and_only_then)
{
    cv_channel *ch = new_ring(64 * KiB, 4096, 0, NULL);   /* an eighth: 8 KiB */
    unsigned char buf[1000];
    cv_record rec;
    uint64_t seq = 0, got = 0;

    cr_assert_eq(cv_channel_send(ch, seq++, 0, fill(buf, 1000, 0), 1000), 0);
    cr_assert_eq(cv_channel_send(ch, seq++, 0, fill(buf, 1000, 1), 1000), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    area->producer.waiting = 1;     /* asleep, but not for space */
    uint32_t word = area->producer.word;
    for (; cv_channel_recv(ch, &rec) == 1; got++)
        assert_record(&rec, got, 0, 1000);
    cv_channel_publish(ch);
    cr_assert_eq(got, 2);
    cr_assert_eq(area->producer.word, word, "2 KiB freed do not wake a producer that waits for input");
    area->producer.waiting = 0;

    /* 64 records of 1024 bytes fill the ring; the producer waits for space
     * (a wait of 0 ms returns at once, its wish stays). */
    while (cv_channel_send(ch, seq, 0, fill(buf, 1000, seq), 1000) == 0)
        seq++;
    cr_assert_eq(seq, 2 + 64);
    cr_assert_eq(cv_channels_wait(NULL, 0, &ch, 1, -1, 0, NULL), 0);
    area->producer.waiting = 1;
    word = area->producer.word;
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cv_channel_publish(ch);
    cr_assert_eq(area->producer.word, word + 1, "1 KiB freed wakes a producer that waits for space");
    cr_assert_eq(area->producer.rung_by, &area->consumer);
    area->producer.waiting = 0;
    cr_assert_eq(cv_channel_send(ch, seq, 0, fill(buf, 1000, seq), 1000), 0);
    cr_assert_eq(cv_channel_send(ch, seq + 1, 0, buf, 1000), -EAGAIN, "exactly one record was freed");
}

/* A producer that publishes every item (a program's pushes) makes each
 * visible at once, and rings a consumer that says it sleeps once: the
 * ring takes the waiting flag, so the publishes that follow until the
 * consumer says it again ring nothing.  cv_channel_publish rings at every
 * publish while the flag stays set. */
Test(ring, publish_each_makes_every_item_visible_and_rings_a_sleeper_once)
{
    cv_channel *ch = new_ring(64 * KiB, 4096, 0, NULL);    /* an eighth: 8 KiB */
    unsigned char buf[16];
    cv_record rec;
    uint64_t seq = 0;

    /* Awake: visible at once, no ring. */
    uint32_t word = area->consumer.word;
    cr_assert_eq(cv_channel_send(ch, seq, 0, fill(buf, 16, seq), 16), 0);
    cv_channel_publish_each(ch);
    seq++;
    cr_assert_eq(cv_channel_pending(ch), 0, "published");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 0, 0, 16);
    cr_assert_eq(area->consumer.word, word, "a consumer awake is not rung");

    /* Asleep: 100 items of 32 bytes (under an eighth), one ring. */
    area->consumer.waiting = 1;
    for (int i = 0; i < 100; i++, seq++) {
        cr_assert_eq(cv_channel_send(ch, seq, 0, fill(buf, 16, seq), 16), 0);
        cv_channel_publish_each(ch);
        cr_assert_eq(cv_channel_pending(ch), 0, "item %d published", i);
    }
    cr_assert_eq(area->consumer.word, word + 1, "rung once for 100 items");
    cr_assert_eq(area->consumer.waiting, 0, "the ring took the flag");
    cr_assert_eq(area->consumer.rung_by, &area->producer);
    cr_assert_geq(area->producer.handoff_cpu, 0, "a hand-off: the pusher may wait next");
    for (uint64_t i = 1; i < seq; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1, "record %llu", (unsigned long long)i);
        assert_record(&rec, i, 0, 16);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);

    /* Asleep again: rung again, by the first publish. */
    cv_channel_publish(ch);
    area->consumer.waiting = 1;
    cr_assert_eq(cv_channel_send(ch, seq, 0, fill(buf, 16, seq), 16), 0);
    cv_channel_publish_each(ch);
    seq++;
    cr_assert_eq(area->consumer.word, word + 2);
    cr_assert_eq(area->consumer.waiting, 0);

    /* cv_channel_publish, for comparison: a ring per publish. */
    area->consumer.waiting = 1;
    for (int i = 0; i < 3; i++, seq++) {
        cr_assert_eq(cv_channel_send(ch, seq, 0, fill(buf, 16, seq), 16), 0);
        cv_channel_publish(ch);
    }
    cr_assert_eq(area->consumer.word, word + 5);
    cr_assert_eq(area->consumer.waiting, 1);
    area->consumer.waiting = 0;
}

/* A consumer process takes two records, hands their space back and closes
 * its end: the producer fills what is left, then learns of it. */
Test(ring, a_consumer_that_closed_its_end_makes_send_fail_with_epipe_once_the_ring_is_full)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    unsigned char buf[1000];
    for (uint64_t i = 0; i < 2; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    uint32_t word = area->producer.word;
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_READ);
        cv_record rec;
        for (uint64_t i = 0; i < 2; i++)
            CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == i, 1);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == -EAGAIN, 2);
        cv_channel_publish(ch);
        cv_channel_close_read(ch);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_WRITE);
    reap(pid, "the consumer");
    cr_assert_eq(area->producer.word, word + 1, "closing rings the producer, asleep or not");
    for (uint64_t i = 2; i < 6; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000), 0, "record %llu",
                     (unsigned long long)i);
    cr_assert_eq(cv_channel_send(ch, 6, 0, buf, 1000), -EPIPE);
    cr_assert_eq(cv_channel_send(ch, 6, 0, buf, 10), -EPIPE);
}

/* --- ring: pieces and aborted records --------------------------------------- */

Test(ring, nothing_comes_between_the_pieces_of_a_record)
{
    static unsigned char big[20000];
    unsigned char small[10];
    cv_pool *pool = cv_pool_create(MiB);
    cv_channel *ch = new_ring(4096, 64 * KiB, 64 * KiB, pool);
    cv_record rec;
    cv_ref ref;
    cr_assert_not_null(cv_pool_alloc(pool, 100, &ref));

    int rc = cv_channel_send(ch, 1, 0, fill(big, sizeof big, 1), sizeof big);
    cr_assert_eq(rc, -EAGAIN, "20000 bytes do not fit in 4096");
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN, "a part of a record is not a record");
    cv_channel_publish(ch);     /* room, but only for the rest of the record */
    cr_assert_eq(cv_channel_send(ch, 2, CV_REC_WATERMARK, NULL, 0), -EAGAIN);
    cr_assert_eq(cv_channel_send(ch, 2, 0, fill(small, 10, 2), 10), -EAGAIN);
    cr_assert_eq(cv_channel_send_ref(ch, 2, ref, 0, 100), -EAGAIN);
    errno = 0;
    cr_assert_null(cv_channel_reserve(ch, 10));
    cr_assert_eq(errno, ENOTSUP);
    unsigned rounds = 1;
    while ((rc = cv_channel_send(ch, 1, 0, big, sizeof big)) == -EAGAIN) {
        cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
        cv_channel_publish(ch);
        rounds++;
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(rounds, 4, "20 pieces, 4 at a time, the first 4 at once");
    cr_assert_eq(cv_channel_send(ch, 2, CV_REC_WATERMARK, NULL, 0), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 1, 0, sizeof big);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 2, CV_REC_WATERMARK, 0);
}

Test(ring, a_stream_that_ends_inside_a_record_is_malformed)
{
    static unsigned char big[20000];
    cv_channel *ch = new_ring(4096, 64 * KiB, 0, NULL);
    cv_record rec;
    cr_assert_eq(cv_channel_send(ch, 1, 0, fill(big, sizeof big, 1), sizeof big), -EAGAIN);
    cr_assert_eq(cv_channel_close_write(ch), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EPROTO, "4 pieces of 20 and the end: not an item");
}

/* A producer dies between the pieces of an item; the one restarted in its
 * place sends it again, whole: the consumer drops the pieces it had. */
Test(ring, a_restarted_producer_aborts_the_record_its_predecessor_left_in_pieces)
{
    static unsigned char big[20000];
    cv_channel *ch = new_ring(4096, 64 * KiB, 0, NULL);
    cv_record rec;
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        unsigned char b[100];
        CHILD_CHECK(cv_channel_send(ch, 1, 0, fill(b, 100, 1), 100) == 0, 1);
        /* 3 pieces fit after the first record: it dies with the rest unsent. */
        CHILD_CHECK(cv_channel_send(ch, 2, 0, fill(big, sizeof big, 2), sizeof big) == -EAGAIN, 2);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_READ);
    reap(pid, "the first producer");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 1, 0, 100);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN, "3 pieces are not an item");

    pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        CHILD_CHECK(cv_channel_resume(ch) == 0, 1);
        CHILD_CHECK(send_wait(ch, 2, 0, fill(big, sizeof big, 2), sizeof big) == 0, 2);
        unsigned char b[50];
        CHILD_CHECK(send_wait(ch, 3, 0, fill(b, 50, 3), 50) == 0, 3);
        CHILD_CHECK(cv_channel_close_write(ch) == 0, 4);
        _exit(0);
    }
    cr_assert_eq(recv_wait(ch, &rec), 1);
    assert_record(&rec, 2, 0, sizeof big);
    cr_assert_eq(recv_wait(ch, &rec), 1);
    assert_record(&rec, 3, 0, 50);
    cr_assert_eq(recv_wait(ch, &rec), 0);
    reap(pid, "the restarted producer");
}

/* A producer dies with a reservation filled but not committed: it never
 * arrives, and what its successor sends does. */
Test(ring, a_reservation_never_committed_never_arrives)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    cv_record rec;
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        unsigned char b[30];
        CHILD_CHECK(cv_channel_send(ch, 1, 0, fill(b, 30, 1), 30) == 0, 1);
        unsigned char *p = cv_channel_reserve(ch, 200);
        CHILD_CHECK(p, 2);
        fill(p, 200, 2);
        cv_channel_publish(ch);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_READ);
    reap(pid, "the first producer");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 1, 0, 30);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);

    pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        CHILD_CHECK(cv_channel_resume(ch) == 0, 1);
        unsigned char b[40];
        CHILD_CHECK(send_wait(ch, 3, 0, fill(b, 40, 3), 40) == 0, 2);
        CHILD_CHECK(cv_channel_close_write(ch) == 0, 3);
        _exit(0);
    }
    cr_assert_eq(recv_wait(ch, &rec), 1);
    assert_record(&rec, 3, 0, 40);
    cr_assert_eq(recv_wait(ch, &rec), 0);
    reap(pid, "the restarted producer");
}

/* --- ring: batches, acknowledgements, references ----------------------------- */

Test(ring, recv_many_takes_plain_records_and_stops_at_a_watermark_or_a_reference)
{
    cv_pool *pool = cv_pool_create(MiB);
    cv_channel *ch = new_ring(64 * KiB, 8192, 64 * KiB, pool);
    cv_pool_stats st;
    cv_ref ref;
    unsigned char *d = cv_pool_alloc(pool, 5000, &ref);   /* its count goes to the record */
    cr_assert_not_null(d);
    fill(d, 5000, 8);
    unsigned char buf[32];
    for (uint64_t i = 1; i <= 5; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 3 * i, i), 3 * i), 0);
    cr_assert_eq(cv_channel_send(ch, 5, CV_REC_WATERMARK, NULL, 0), 0);
    for (uint64_t i = 6; i <= 7; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 3 * i, i), 3 * i), 0);
    cr_assert_eq(cv_channel_send_ref(ch, 8, ref, 0, 5000), 0);
    cr_assert_eq(cv_channel_send(ch, 9, 0, fill(buf, 27, 9), 27), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);

    cv_record recs[32], rec;
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 1, 0, 3);
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 4);
    for (int j = 0; j < 4; j++)
        assert_record(&recs[j], 2 + j, 0, 3 * (2 + j));   /* all valid at once */
    cr_assert_eq(area->stats.received, 2, "the first of a batch is counted, the caller counts the rest");
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 0, "a watermark is next");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 5, CV_REC_WATERMARK, 0);
    cr_assert_eq(cv_channel_recv_many(ch, recs, 1), 1);
    assert_record(&recs[0], 6, 0, 18);
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 1, "a reference is next");
    assert_record(&recs[0], 7, 0, 21);
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert_eq(rec.seq, 8);
    cr_assert_eq(rec.flags, 0);
    cr_assert_eq(rec.len, 5000);
    cr_assert_eq(rec.ref, ref);
    cr_assert_eq(rec.data, d);
    cr_assert(holds(rec.data, 5000, 8));
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 0, "a reference handed out goes the general way");
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 8192, "the record's count keeps the block");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 9, 0, 27);
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 0, "the next receive dropped the reference's count");
    cr_assert_eq(cv_channel_recv_many(ch, recs, 32), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
}

/* A consumer process receives 3 records, acknowledges 1 and dies; the one
 * restarted in its place receives records 2 and 3 again. */
Test(ring, what_a_dead_consumer_had_not_acknowledged_is_received_again_after_resume)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    unsigned char buf[1000];
    for (uint64_t i = 1; i <= 4; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000), 0);
    cr_assert_eq(cv_channel_send(ch, 5, 0, fill(buf, 1000, 5), 1000), -EAGAIN);
    pid_t pid = spawn();
    if (pid == 0) {
        cv_record rec;
        cv_channel_keep(ch, CV_END_READ);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_READ) == 0, 1);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == 1 && holds(rec.data, 1000, 1), 2);
        cv_channel_ack(ch);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == 2, 3);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == 3, 4);
        cv_channel_publish(ch);     /* as before a wait: frees only what was acknowledged */
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_WRITE);
    reap(pid, "the first consumer");
    cr_assert_eq(cv_channel_send(ch, 5, 0, buf, 1000), 0, "the acknowledged record's space came back");
    cr_assert_eq(cv_channel_send(ch, 6, 0, fill(buf, 1000, 6), 1000), -EAGAIN,
                 "records received but not acknowledged keep theirs");
    cr_assert_eq(cv_channel_close_write(ch), 0);

    pid = spawn();
    if (pid == 0) {
        cv_record rec;
        cv_channel_keep(ch, CV_END_READ);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_READ) == 0, 1);
        CHILD_CHECK(cv_channel_resume(ch) == 0, 2);
        for (uint64_t i = 2; i <= 5; i++) {
            CHILD_CHECK(recv_wait(ch, &rec) == 1, 10 + (int)i);
            CHILD_CHECK(rec.seq == i && rec.len == 1000 && holds(rec.data, 1000, i), 20 + (int)i);
            cv_channel_ack(ch);
        }
        CHILD_CHECK(recv_wait(ch, &rec) == 0, 3);
        _exit(0);
    }
    reap(pid, "the restarted consumer");
}

Test(ring, a_reference_a_dead_consumer_had_not_acknowledged_is_handed_out_again_and_dropped_once)
{
    cv_pool *pool = cv_pool_create(MiB);
    cv_channel *ch = new_ring(4096, 64 * KiB, 64 * KiB, pool);
    cv_pool_stats st;
    cv_ref a, b;
    unsigned char *da = cv_pool_alloc(pool, 10000, &a), *db = cv_pool_alloc(pool, 20000, &b);
    cr_assert(da && db);
    fill(da, 10000, 1);
    fill(db, 20000, 2);
    cv_pool_hold(pool, a);
    cr_assert_eq(cv_channel_send_ref(ch, 1, a, 0, 10000), 0);
    cv_pool_hold(pool, b);
    cr_assert_eq(cv_channel_send_ref(ch, 2, b, 0, 20000), 0);
    unsigned char buf[10];
    cr_assert_eq(cv_channel_send(ch, 3, 0, fill(buf, 10, 3), 10), 0);
    cr_assert_eq(cv_channel_close_write(ch), 0);

    pid_t pid = spawn();
    if (pid == 0) {
        cv_record rec;
        cv_channel_keep(ch, CV_END_READ);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_READ) == 0, 1);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == 1 && rec.ref == a, 2);
        CHILD_CHECK(rec.data == da && rec.len == 10000 && holds(rec.data, 10000, 1), 3);
        cv_channel_ack(ch);
        CHILD_CHECK(cv_channel_recv(ch, &rec) == 1 && rec.seq == 2 && rec.ref == b, 4);
        _exit(0);   /* dies holding it */
    }
    reap(pid, "the first consumer");
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 12288 + 20480, "both blocks are alive");

    pid = spawn();
    if (pid == 0) {
        cv_record rec;
        cv_channel_keep(ch, CV_END_READ);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_READ) == 0, 1);
        CHILD_CHECK(cv_channel_resume(ch) == 0, 2);
        CHILD_CHECK(recv_wait(ch, &rec) == 1 && rec.seq == 2 && rec.ref == b, 3);
        CHILD_CHECK(rec.data == db && rec.len == 20000 && holds(rec.data, 20000, 2), 4);
        cv_channel_ack(ch);
        CHILD_CHECK(recv_wait(ch, &rec) == 1 && rec.seq == 3 && holds(rec.data, 10, 3), 5);
        cv_channel_ack(ch);
        CHILD_CHECK(recv_wait(ch, &rec) == 0, 6);
        _exit(0);
    }
    reap(pid, "the restarted consumer");
    /* Each record's count went exactly once: the producer's own are the last. */
    cv_pool_drop(pool, a);
    cr_assert_null(cv_pool_data(pool, a));
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 20480, "the second block is still held by its producer");
    cv_pool_drop(pool, b);
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 0);
}

/* Item 1 is 300 records, more than a producer otherwise leaves unpublished
 * (256 records or 8 KiB); item 2 is published only when its consumer has
 * nothing else to read, and its producer dies in the middle of it. */
Test(ring, an_item_by_item_producer_publishes_at_item_boundaries_and_when_its_consumer_is_idle)
{
    cv_channel *ch = new_ring(64 * KiB, 4096, 0, NULL);
    int down[2], up[2];
    cr_assert_eq(pipe(down), 0);
    cr_assert_eq(pipe(up), 0);
    unsigned char b[8];
    cv_record rec;
    pid_t pid = spawn();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        cv_channel_keep(ch, CV_END_WRITE);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_WRITE) == 0, 1);
        for (uint64_t i = 0; i < 300; i++)
            CHILD_CHECK(cv_channel_send(ch, 1000 + i, 0, fill(b, 8, 1000 + i), 8) == 0, 2);
        tell(up[1]);
        CHILD_CHECK(hear(down[0]), 3);
        cv_channel_publish(ch);     /* item 1 done */
        CHILD_CHECK(cv_channel_send(ch, 2000, 0, fill(b, 8, 2000), 8) == 0, 4);
        cv_channel_publish_partial(ch);
        tell(up[1]);
        CHILD_CHECK(hear(down[0]), 5);
        cv_channel_publish_partial(ch);
        tell(up[1]);
        CHILD_CHECK(hear(down[0]), 6);
        CHILD_CHECK(cv_channel_send(ch, 2001, 0, fill(b, 8, 2001), 8) == 0, 7);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    cv_channel_keep(ch, CV_END_READ);
    cr_assert(hear(up[0]));
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN, "300 records of an unfinished item");
    tell(down[1]);
    cr_assert(hear(up[0]));
    for (uint64_t i = 0; i < 300; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1);
        assert_record(&rec, 1000 + i, 0, 8);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN,
                 "part of an item waits while its consumer has other records to read");
    cv_channel_publish(ch);
    tell(down[1]);
    cr_assert(hear(up[0]));
    cr_assert_eq(cv_channel_recv(ch, &rec), 1, "its consumer had read everything else");
    assert_record(&rec, 2000, 0, 8);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
    cv_channel_publish(ch);
    tell(down[1]);
    reap(pid, "the first producer");
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN, "what it had not published died with it");
    close(down[1]);
    close(up[0]);

    /* Its successor does item 2 again, from the start. */
    pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        CHILD_CHECK(cv_channel_set_ack(ch, CV_END_WRITE) == 0, 1);
        CHILD_CHECK(cv_channel_resume(ch) == 0, 2);
        CHILD_CHECK(send_wait(ch, 2000, 0, fill(b, 8, 2000), 8) == 0, 3);
        CHILD_CHECK(send_wait(ch, 2001, 0, fill(b, 8, 2001), 8) == 0, 4);
        cv_channel_publish(ch);
        CHILD_CHECK(cv_channel_close_write(ch) == 0, 5);
        _exit(0);
    }
    for (uint64_t seq = 2000; seq <= 2001; seq++) {
        cr_assert_eq(recv_wait(ch, &rec), 1);
        assert_record(&rec, seq, 0, 8);
    }
    cr_assert_eq(recv_wait(ch, &rec), 0);
    reap(pid, "the restarted producer");
}

/* References take 32 bytes of a 4096-byte ring, but their items count
 * against the channel's budget of 64 KiB as if they were in it. */
Test(ring, references_count_against_the_budget_and_each_count_is_dropped_once)
{
    cv_pool *pool = cv_pool_create(4 * MiB);
    cv_channel *ch = new_ring(4096, MiB, 64 * KiB, pool);
    cv_pool_stats st;
    cv_record rec;
    cv_ref a, b;
    unsigned char *da = cv_pool_alloc(pool, 30000, &a), *db = cv_pool_alloc(pool, 100000, &b);
    cr_assert(da && db);
    fill(da, 30000, 1);
    fill(db, 100000, 4);

    cv_pool_hold(pool, a);
    cr_assert_eq(cv_channel_send_ref(ch, 1, a, 0, 30000), 0);
    cv_pool_hold(pool, a);
    cr_assert_eq(cv_channel_send_ref(ch, 2, a, 1000, 29000), 0);
    cv_pool_hold(pool, a);     /* kept for the retries */
    cr_assert_eq(cv_channel_send_ref(ch, 3, a, 0, 10000), -EAGAIN, "69000 bytes would exceed 65536");
    cr_assert_eq(cv_channel_pending(ch), 0, "a producer that must wait published what it sent");

    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert(rec.seq == 1 && rec.flags == 0 && rec.len == 30000 && rec.ref == a && rec.data == da);
    cr_assert(holds(rec.data, 30000, 1));
    cr_assert_eq(cv_channel_send_ref(ch, 3, a, 0, 10000), -EAGAIN, "a reference handed out holds its budget");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert(rec.seq == 2 && rec.len == 29000 && rec.ref == a && rec.data == da + 1000);
    cr_assert_eq(cv_channel_send_ref(ch, 3, a, 0, 10000), 0, "the first one's budget came back");
    cv_pool_hold(pool, b);
    cr_assert_eq(cv_channel_send_ref(ch, 4, b, 0, 100000), -EAGAIN,
                 "an item over the budget waits until the channel holds none");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert(rec.seq == 3 && rec.len == 10000 && rec.ref == a && rec.data == da);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
    cr_assert_eq(cv_channel_send_ref(ch, 4, b, 0, 100000), 0, "then it goes: one item always fits");
    cr_assert_eq(cv_channel_flush(ch, 1), 0);

    /* The producer's own counts go: the records' counts alone keep blocks. */
    cv_pool_drop(pool, a);
    cv_pool_drop(pool, b);
    cr_assert_null(cv_pool_data(pool, a), "three records, three counts dropped");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    cr_assert(rec.seq == 4 && rec.len == 100000 && rec.ref == b && rec.data == db);
    cr_assert(holds(rec.data, 100000, 4));
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 102400, "the record handed out keeps its block");
    cv_channel_close_read(ch);
    cv_pool_get_stats(pool, &st);
    cr_assert_eq(st.used, 0, "closing lets go of the record handed out last");
}
