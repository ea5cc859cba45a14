/* SPDX-License-Identifier: MIT */
/*
 * test_channel.c - both channel implementations (ring, pipe) through
 * channel.h: records in order, end of stream, watermarks, building in
 * place, large items across processes, one random stream through both;
 * and what only the pipe does: a reader gone, a full pipe, a record cut
 * short, the calls it does not offer.  The ring's own cases are in
 * test_channel_ring.c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/channel.h"
#include "channel_util.h"

/* --- both transports ------------------------------------------------------ */

static void records_arrive_in_order(cv_channel *ch)
{
    static const size_t lens[] = {0, 1, 7, 16, 17, 255, 256, 257, 1000, 1008};
    const size_t n = sizeof lens / sizeof *lens;
    unsigned char buf[1008];
    cv_record rec;

    for (size_t i = 0; i < n; i++)
        cr_assert_eq(cv_channel_send(ch, 100 + 3 * i, 0, fill(buf, lens[i], 100 + 3 * i), lens[i]), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN, "sends are buffered until written out");
    cr_assert_eq(cv_channel_pending(ch), 1);
    cr_assert_eq(cv_channel_queued(ch), n, "the producer's own sends count as queued");
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cr_assert_eq(cv_channel_pending(ch), 0);
    cr_assert_eq(area->stats.sent, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1, "record %zu", i);
        assert_record(&rec, 100 + 3 * i, 0, lens[i]);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
    cr_assert_eq(area->stats.received, n);
    cr_assert_eq(cv_channel_queued(ch), 0);
}

Test(ring, records_arrive_in_order_with_seq_flags_and_len)
{
    records_arrive_in_order(new_ring(64 * KiB, 4096, 0, NULL));
}

Test(pipe, records_arrive_in_order_with_seq_flags_and_len)
{
    records_arrive_in_order(new_pipe(4096));
}

static void the_stream_ends_after_the_last_record(cv_channel *ch)
{
    unsigned char buf[10];
    cv_record rec;
    for (uint64_t i = 1; i <= 3; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 10, i), 10), 0);
    cr_assert_eq(cv_channel_close_write(ch), 0);
    for (uint64_t i = 1; i <= 3; i++) {
        cr_assert_eq(cv_channel_recv(ch, &rec), 1);
        assert_record(&rec, i, 0, 10);
    }
    cr_assert_eq(cv_channel_recv(ch, &rec), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 0, "the end stays the end");
}

Test(ring, close_write_ends_the_stream_after_the_remaining_records)
{
    cv_channel *ch = new_ring(4096, 4096, 0, NULL);
    uint32_t word = area->consumer.word;
    the_stream_ends_after_the_last_record(ch);
    cr_assert_eq(area->consumer.word, word + 1, "the end of stream rings even a consumer not asleep yet");
}

Test(pipe, close_write_ends_the_stream_after_the_remaining_records)
{
    the_stream_ends_after_the_last_record(new_pipe(4096));
}

static void watermarks_pass_through(cv_channel *ch)
{
    unsigned char buf[20];
    cv_record rec;
    cr_assert_eq(cv_channel_send(ch, 5, CV_REC_WATERMARK, NULL, 0), 0);
    cr_assert_eq(cv_channel_send(ch, 6, 0, fill(buf, 20, 6), 20), 0);
    cr_assert_eq(cv_channel_send(ch, 9, CV_REC_WATERMARK, NULL, 0), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cr_assert_eq(area->stats.sent, 1, "a watermark is not an item");
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 5, CV_REC_WATERMARK, 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 6, 0, 20);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 9, CV_REC_WATERMARK, 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
    cr_assert_eq(area->stats.received, 1);
}

Test(ring, watermarks_pass_through_and_are_not_counted)
{
    watermarks_pass_through(new_ring(4096, 4096, 0, NULL));
}

Test(pipe, watermarks_pass_through_and_are_not_counted)
{
    watermarks_pass_through(new_pipe(4096));
}

static void a_record_is_built_in_place(cv_channel *ch, size_t max_item)
{
    cv_record rec;
    unsigned char buf[5];
    unsigned char *p = cv_channel_reserve(ch, 300);
    cr_assert_not_null(p);
    fill(p, 200, 42);
    cr_assert_eq(cv_channel_commit(ch, 42, 200), 0);
    cr_assert_eq(cv_channel_send(ch, 43, 0, fill(buf, 5, 43), 5), 0);
    errno = 0;
    cr_assert_null(cv_channel_reserve(ch, max_item + 1));
    cr_assert_eq(errno, EMSGSIZE);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 42, 0, 200);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, 43, 0, 5);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
    cr_assert_eq(area->stats.sent, 2);
}

Test(ring, reserve_and_commit_build_a_record_in_place)
{
    cv_channel *ch = new_ring(4096, 8192, 0, NULL);
    a_record_is_built_in_place(ch, 8192);
    cr_assert_eq(cv_channel_commit(ch, 1, 10), -EINVAL, "a commit needs a reservation");
    errno = 0;
    cr_assert_null(cv_channel_reserve(ch, 1009), "a quarter of 4096 less a header is 1008");
    cr_assert_eq(errno, ENOTSUP);

    /* Four records of 1024 bytes fill a fresh ring: no room for even 1 byte. */
    ch = new_ring(4096, 8192, 0, NULL);
    unsigned char buf[1000];
    for (uint64_t i = 0; i < 4; i++)
        cr_assert_eq(cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000), 0);
    errno = 0;
    cr_assert_null(cv_channel_reserve(ch, 1));
    cr_assert_eq(errno, EAGAIN);
}

Test(pipe, reserve_and_commit_build_a_record_in_place)
{
    a_record_is_built_in_place(new_pipe(8192), 8192);
}

/* A producer process sends items of LENS, waiting for room; this process
 * receives them whole, equal and in order. */
static void large_items_cross_a_fork(cv_channel *ch, const size_t *lens, size_t n)
{
    size_t most = 0;
    for (size_t i = 0; i < n; i++)
        most = lens[i] > most ? lens[i] : most;
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        unsigned char *buf = malloc(most);
        CHILD_CHECK(buf, 99);
        for (size_t i = 0; i < n; i++)
            CHILD_CHECK(send_wait(ch, 10 + i, 0, fill(buf, lens[i], 10 + i), lens[i]) == 0, 1 + (int)i);
        CHILD_CHECK(cv_channel_close_write(ch) == 0, 98);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_READ);
    cv_record rec;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(recv_wait(ch, &rec), 1, "item %zu", i);
        assert_record(&rec, 10 + i, 0, lens[i]);
    }
    cr_assert_eq(recv_wait(ch, &rec), 0);
    reap(pid, "the producer");
    cr_assert_eq(area->stats.received, n, "pieces are not items");
    cr_assert_eq(area->stats.sent, n);
}

Test(ring, items_larger_than_a_quarter_of_the_ring_travel_in_pieces_and_arrive_whole)
{
    /* Pieces carry at most 1008 bytes of a 4096-byte ring. */
    static const size_t lens[] = {10, 200000, 1009, 3 * 1008, 1008, 5, 65536};
    large_items_cross_a_fork(new_ring(4096, 256 * KiB, 0, NULL), lens, sizeof lens / sizeof *lens);
}

Test(pipe, items_larger_than_the_buffers_arrive_whole)
{
    static const size_t lens[] = {10, MiB + 3, 70000, 5, 128 * KiB};
    large_items_cross_a_fork(new_pipe(2 * MiB), lens, sizeof lens / sizeof *lens);
}

/* --- one random stream through both --------------------------------------- */

#define STREAM_N 3000
#define STREAM_MAX 20000

typedef struct digest {
    uint64_t seq;
    uint32_t flags, len, sum;
} digest;

static uint32_t sum_of(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Record I of the stream: one in 16 a watermark, one in 16 up to the
 * largest item, the others up to 300 bytes. */
static void stream_record(uint64_t i, uint32_t *flags, uint32_t *len)
{
    uint64_t x = mix(i + 7777);
    *flags = x % 16 == 0 ? CV_REC_WATERMARK : 0;
    *len = x % 16 == 0 ? 0 : x % 16 == 1 ? (uint32_t)((x >> 8) % (STREAM_MAX + 1))
                                         : (uint32_t)((x >> 8) % 301);
}

/* Sends the stream from a child process and returns what arrived, received
 * in batches where the channel offers them. */
static size_t run_stream(cv_channel *ch, digest *out)
{
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        static unsigned char buf[STREAM_MAX];
        for (uint64_t i = 0; i < STREAM_N; i++) {
            uint32_t flags, len;
            stream_record(i, &flags, &len);
            CHILD_CHECK(send_wait(ch, i, flags, len ? fill(buf, len, i) : NULL, len) == 0, 1);
        }
        CHILD_CHECK(cv_channel_close_write(ch) == 0, 2);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_READ);
    cv_record recs[16];
    size_t n = 0;
    for (;;) {
        int k = cv_channel_recv_many(ch, recs, 16);
        if (k == 0) {
            k = cv_channel_recv(ch, recs);
            if (k == -EAGAIN) {
                int w = cv_channels_wait(&ch, 1, NULL, 0, -1, -1, NULL);
                cr_assert(w == 0 || w == -EINTR, "wait: %s", strerror(-w));
                continue;
            }
            if (k == 0)
                break;
            cr_assert_eq(k, 1, "recv: %s", strerror(-k));
        }
        for (int j = 0; j < k; j++) {
            cr_assert_lt(n, STREAM_N + 1);
            out[n++] = (digest){recs[j].seq, recs[j].flags, recs[j].len,
                                sum_of(recs[j].data, recs[j].len)};
        }
    }
    reap(pid, "the producer");
    return n;
}

Test(channel, the_same_random_stream_arrives_the_same_through_ring_and_pipe)
{
    static digest want[STREAM_N], ring_got[STREAM_N + 1], pipe_got[STREAM_N + 1];
    static unsigned char buf[STREAM_MAX];
    for (uint64_t i = 0; i < STREAM_N; i++) {
        stream_record(i, &want[i].flags, &want[i].len);
        want[i].seq = i;
        want[i].sum = sum_of(fill(buf, want[i].len, i), want[i].len);
    }
    /* A 16 KiB ring: records over 4080 bytes travel in pieces. */
    size_t nr = run_stream(new_ring(16 * KiB, STREAM_MAX, 0, NULL), ring_got);
    size_t np = run_stream(new_pipe(STREAM_MAX), pipe_got);
    cr_assert_eq(nr, STREAM_N);
    cr_assert_eq(np, STREAM_N);
    for (size_t i = 0; i < STREAM_N; i++) {
        cr_assert(!memcmp(&ring_got[i], &want[i], sizeof want[i]),
                  "ring, record %zu: seq %llu flags %u len %u, expected seq %zu flags %u len %u", i,
                  (unsigned long long)ring_got[i].seq, ring_got[i].flags, ring_got[i].len, i,
                  want[i].flags, want[i].len);
        cr_assert(!memcmp(&pipe_got[i], &want[i], sizeof want[i]),
                  "pipe, record %zu: seq %llu flags %u len %u, expected seq %zu flags %u len %u", i,
                  (unsigned long long)pipe_got[i].seq, pipe_got[i].flags, pipe_got[i].len, i,
                  want[i].flags, want[i].len);
    }
}

/* --- pipe ------------------------------------------------------------------ */

Test(pipe, a_reader_gone_makes_writing_out_fail_with_epipe)
{
    signal(SIGPIPE, SIG_IGN);
    cv_channel *ch = new_pipe(4096);
    unsigned char buf[1000];
    cr_assert_eq(cv_channel_send(ch, 0, 0, fill(buf, 1000, 0), 1000), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    pid_t pid = spawn();
    if (pid == 0) {
        cv_record rec;
        cv_channel_keep(ch, CV_END_READ);
        CHILD_CHECK(recv_wait(ch, &rec) == 1 && rec.seq == 0 && holds(rec.data, 1000, 0), 1);
        cv_channel_close_read(ch);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_WRITE);
    reap(pid, "the consumer");
    int rc;
    uint64_t i = 1;
    while ((rc = cv_channel_send(ch, i, 0, fill(buf, 1000, i), 1000)) == 0 && i < 100000)
        i++;
    cr_assert_eq(rc, -EPIPE, "sends are buffered until the buffer must be written out");
    cr_assert_eq(cv_channel_pending(ch), 1);
    cr_assert_eq(cv_channel_flush(ch, 0), -EPIPE);
    cr_assert_eq(cv_channel_flush(ch, 1), -EPIPE);
    cr_assert_eq(cv_channel_close_write(ch), -EPIPE);
}

/* Nobody reads: the pipe and the buffer fill, and what was accepted stays
 * pending (never half a record) until the reader makes room. */
Test(pipe, a_full_pipe_keeps_records_pending_until_the_reader_makes_room)
{
    cv_channel *ch = new_pipe(4096);
    unsigned char buf[1000];
    cv_record rec;
    uint64_t sent = 0, got = 0;
    int rc;
    while ((rc = cv_channel_send(ch, sent, 0, fill(buf, 1000, sent), 1000)) == 0 && sent < 100000)
        sent++;
    cr_assert_eq(rc, -EAGAIN);
    cr_assert_gt(sent, 64, "the pipe took some");
    cr_assert_eq(cv_channel_pending(ch), 1);
    cr_assert_eq(cv_channel_flush(ch, 0), -EAGAIN);
    cr_assert_eq(cv_channels_wait(NULL, 0, &ch, 1, -1, 0, NULL), 0);
    cr_assert_eq(cv_channel_pending(ch), 1);

    while (cv_channel_pending(ch)) {
        while ((rc = cv_channel_recv(ch, &rec)) == 1) {
            assert_record(&rec, got, 0, 1000);
            got++;
        }
        cr_assert_eq(rc, -EAGAIN);
        rc = cv_channel_flush(ch, 0);
        cr_assert(rc == 0 || rc == -EAGAIN);
    }
    while ((rc = cv_channel_recv(ch, &rec)) == 1) {
        assert_record(&rec, got, 0, 1000);
        got++;
    }
    cr_assert_eq(rc, -EAGAIN);
    cr_assert_eq(got, sent, "every record accepted arrived once");
    cr_assert_eq(cv_channel_send(ch, sent, 0, fill(buf, 1000, sent), 1000), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cr_assert_eq(cv_channel_recv(ch, &rec), 1);
    assert_record(&rec, sent, 0, 1000);
    cr_assert_eq(cv_channel_recv(ch, &rec), -EAGAIN);
}

Test(pipe, a_record_cut_short_by_its_producer_dying_is_malformed)
{
    const size_t len = 4 * MiB;     /* more than a pipe holds */
    cv_channel *ch = new_pipe(8 * MiB);
    pid_t pid = spawn();
    if (pid == 0) {
        cv_channel_keep(ch, CV_END_WRITE);
        unsigned char *big = malloc(len);
        CHILD_CHECK(big, 1);
        CHILD_CHECK(cv_channel_send(ch, 1, 0, fill(big, len, 1), len) == 0, 2);
        CHILD_CHECK(cv_channel_flush(ch, 0) == -EAGAIN, 3);
        _exit(0);
    }
    cv_channel_keep(ch, CV_END_READ);
    reap(pid, "the producer");
    cv_record rec;
    cr_assert_eq(cv_channel_recv(ch, &rec), -EPROTO);
}

Test(pipe, references_acknowledgements_and_batches_are_not_offered)
{
    cv_channel *ch = new_pipe(4096);
    cr_assert_eq(cv_channel_send_ref(ch, 1, 4096, 0, 10), -ENOTSUP);
    cr_assert_eq(cv_channel_set_ack(ch, CV_END_READ), -ENOTSUP);
    cr_assert_eq(cv_channel_resume(ch), -ENOTSUP);
    unsigned char buf[10];
    cr_assert_eq(cv_channel_send(ch, 1, 0, fill(buf, 10, 1), 10), 0);
    cr_assert_eq(cv_channel_flush(ch, 1), 0);
    cv_record recs[4];
    cr_assert_eq(cv_channel_recv_many(ch, recs, 4), 0, "recv says what there is");
    cr_assert_eq(cv_channel_recv(ch, recs), 1);
    assert_record(&recs[0], 1, 0, 10);
}
