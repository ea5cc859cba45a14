/* SPDX-License-Identifier: MIT */
/*
 * test_framing.c - the reader's splitting (lines, nul, length32, limits,
 * truncation, EINTR, pipes fed in pieces) and the writer's joining.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run/framing.h"

#define MiB ((size_t)1 << 20)

/* A file descriptor, positioned at 0, holding N bytes of DATA. */
static int fd_with(const void *data, size_t n)
{
    int fd = memfd_create("framing-test", MFD_CLOEXEC);
    const char *p = data;

    cr_assert_geq(fd, 0);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        cr_assert_gt(w, 0);
        p += w;
        n -= (size_t)w;
    }
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* The items of a stream, as one string "item|item|..." (items here hold
 * no '|'), and the reader's final result. */
typedef struct {
    char text[4096];
    int count;
    int rc;
    uint64_t items;
} split_result;

static split_result split(const void *data, size_t n, enum cv_framing f, size_t max_item)
{
    split_result s = {.text = ""};
    cv_reader r;
    const void *item;
    size_t len;
    int fd = fd_with(data, n);

    cr_assert_eq(cv_reader_init(&r, fd, f, max_item), 0);
    while ((s.rc = cv_reader_next(&r, &item, &len)) == 1) {
        size_t at = strlen(s.text);
        cr_assert_lt(at + len + 2, sizeof s.text);
        if (s.count++ > 0)
            s.text[at++] = '|';
        memcpy(s.text + at, item, len);
        s.text[at + len] = '\0';
    }
    s.items = r.items;
    /* The end is sticky. */
    if (s.rc == 0)
        cr_assert_eq(cv_reader_next(&r, &item, &len), 0);
    cv_reader_free(&r);
    close(fd);
    return s;
}

#define LEN(lit) (sizeof(lit) - 1)

static void expect(const void *data, size_t n, enum cv_framing f, const char *want,
                   int count)
{
    split_result s = split(data, n, f, 1000);
    cr_assert_eq(s.rc, 0, "result %d", s.rc);
    cr_assert_str_eq(s.text, want);
    cr_assert_eq(s.count, count);
    cr_assert_eq(s.items, (uint64_t)count);
}

Test(reader, lines)
{
    expect("a\nbb\nccc\n", LEN("a\nbb\nccc\n"), CV_FRAMING_LINES, "a|bb|ccc", 3);
    expect("a\nbb\nccc", LEN("a\nbb\nccc"), CV_FRAMING_LINES, "a|bb|ccc", 3);
    expect("one", 3, CV_FRAMING_LINES, "one", 1);
    /* '\r' is data, not part of the terminator. */
    expect("a\r\nb", 4, CV_FRAMING_LINES, "a\r|b", 2);
}

Test(reader, nul)
{
    expect("a\0bb\0ccc\0", LEN("a\0bb\0ccc\0"), CV_FRAMING_NUL, "a|bb|ccc", 3);
    expect("a\0bb\0ccc", LEN("a\0bb\0ccc"), CV_FRAMING_NUL, "a|bb|ccc", 3);
    /* A newline is data under nul framing. */
    expect("x\ny\0z", 5, CV_FRAMING_NUL, "x\ny|z", 2);
}

Test(reader, length32)
{
    static const char s[] = "\1\0\0\0a\2\0\0\0bb\3\0\0\0ccc";
    expect(s, LEN(s), CV_FRAMING_LENGTH32, "a|bb|ccc", 3);
    /* Bytes that look like terminators are payload. */
    static const char t[] = "\3\0\0\0\n\0\n";
    split_result r = split(t, LEN(t), CV_FRAMING_LENGTH32, 10);
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(r.count, 1);
    cr_assert_eq(memcmp(r.text, "\n\0\n", 3), 0);
}

Test(reader, empty_input_has_no_items)
{
    expect("", 0, CV_FRAMING_LINES, "", 0);
    expect("", 0, CV_FRAMING_NUL, "", 0);
    expect("", 0, CV_FRAMING_LENGTH32, "", 0);
}

Test(reader, empty_items)
{
    expect("\n", 1, CV_FRAMING_LINES, "", 1);
    expect("\n\n", 2, CV_FRAMING_LINES, "|", 2);
    expect("a\n\nb\n", 5, CV_FRAMING_LINES, "a||b", 3);
    expect("\0\0\0", 3, CV_FRAMING_NUL, "||", 3);
    static const char s[] = "\0\0\0\0\1\0\0\0x\0\0\0\0";
    expect(s, LEN(s), CV_FRAMING_LENGTH32, "|x|", 3);
}

Test(reader, nul_bytes_inside_a_line)
{
    static const char s[] = "a\0b\nc";
    cv_reader r;
    const void *item;
    size_t len;
    int fd = fd_with(s, LEN(s));

    cr_assert_eq(cv_reader_init(&r, fd, CV_FRAMING_LINES, 100), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(item, "a\0b", 3), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 1);
    cr_assert_eq(memcmp(item, "c", 1), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 0);
    cv_reader_free(&r);
    close(fd);
}

/* A 1 MiB item (16 times the initial buffer) between small ones. */
static void big_item(enum cv_framing f)
{
    size_t big = MiB, n = 0;
    unsigned char *data = malloc(big + 64);
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_not_null(data);
    if (f == CV_FRAMING_LENGTH32) {
        memcpy(data, "\2\0\0\0hi", 6);
        n = 6;
        data[n++] = 0; data[n++] = 0; data[n++] = 0x10; data[n++] = 0;   /* 1 MiB */
        for (size_t i = 0; i < big; i++)
            data[n++] = (unsigned char)('a' + i % 26);
        memcpy(data + n, "\4\0\0\0tail", 8);
        n += 8;
    } else {
        char sep = f == CV_FRAMING_LINES ? '\n' : '\0';
        memcpy(data, "hi", 2);
        data[2] = (unsigned char)sep;
        n = 3;
        for (size_t i = 0; i < big; i++)
            data[n++] = (unsigned char)('a' + i % 26);
        data[n++] = (unsigned char)sep;
        memcpy(data + n, "tail", 4);
        n += 4;
    }
    int fd = fd_with(data, n);
    cr_assert_eq(cv_reader_init(&r, fd, f, 2 * MiB), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 2);
    cr_assert_eq(memcmp(item, "hi", 2), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, big);
    for (size_t i = 0; i < big; i++)
        cr_assert_eq(((const unsigned char *)item)[i], 'a' + i % 26, "byte %zu", i);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(item, "tail", 4), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 0);
    cr_assert_eq(r.items, 3);
    /* Grown for the item, within max_item + the initial buffer. */
    cr_assert_geq(r.cap, big);
    cr_assert_leq(r.cap, 2 * MiB + 65536);
    cv_reader_free(&r);
    close(fd);
    free(data);
}

Test(reader, one_mib_line) { big_item(CV_FRAMING_LINES); }
Test(reader, one_mib_nul_item) { big_item(CV_FRAMING_NUL); }
Test(reader, one_mib_frame) { big_item(CV_FRAMING_LENGTH32); }

/* An item of exactly MAX bytes passes; the next, of MAX + 1 (TERMINATED or
 * not), is -EMSGSIZE with r.items == 1; the buffer stays within MAX + 64 KiB. */
static void limit_case(enum cv_framing f, size_t max, int terminated)
{
    size_t n = 0;
    unsigned char *data = malloc(2 * max + 64);
    char sep = f == CV_FRAMING_NUL ? '\0' : '\n';
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_not_null(data);
    for (int k = 0; k < 2; k++) {   /* one item of max, then one of max + 1 */
        size_t sz = max + (size_t)k;
        if (f == CV_FRAMING_LENGTH32) {
            data[n++] = (unsigned char)sz;
            data[n++] = (unsigned char)(sz >> 8);
            data[n++] = (unsigned char)(sz >> 16);
            data[n++] = (unsigned char)(sz >> 24);
        }
        memset(data + n, 'x', sz);
        n += sz;
        if (f != CV_FRAMING_LENGTH32 && (k == 0 || terminated))
            data[n++] = (unsigned char)sep;
    }
    int fd = fd_with(data, n);
    cr_assert_eq(cv_reader_init(&r, fd, f, max), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, max);
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EMSGSIZE);
    cr_assert_eq(r.items, 1);
    cr_assert_leq(r.cap, max + 65536);
    cv_reader_free(&r);
    close(fd);
    free(data);
}

Test(reader, max_item_small)
{
    for (enum cv_framing f = CV_FRAMING_LINES; f <= CV_FRAMING_LENGTH32; f++) {
        limit_case(f, 10, 1);
        limit_case(f, 10, 0);
    }
}

Test(reader, max_item_larger_than_the_buffer)
{
    for (enum cv_framing f = CV_FRAMING_LINES; f <= CV_FRAMING_LENGTH32; f++) {
        limit_case(f, 100000, 1);
        limit_case(f, 100000, 0);
        limit_case(f, 65536, 1);
        /* Doubling 128 KiB would pass max_item + 64 KiB: clamped. */
        limit_case(f, 150000, 1);
    }
}

Test(reader, max_item_zero_allows_only_empty_items)
{
    split_result s = split("\n\nx\n", 4, CV_FRAMING_LINES, 0);
    cr_assert_eq(s.rc, -EMSGSIZE);
    cr_assert_eq(s.items, 2);
}

Test(reader, oversized_frame_is_refused_without_allocating_it)
{
    /* A header announcing 1 GiB with a 64 MiB limit. */
    static const char s[] = "\1\0\0\0a\0\0\0\x40zzzz";
    cv_reader r;
    const void *item;
    size_t len;
    int fd = fd_with(s, LEN(s));

    cr_assert_eq(cv_reader_init(&r, fd, CV_FRAMING_LENGTH32, 64 * MiB), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EMSGSIZE);
    cr_assert_eq(r.items, 1);
    cr_assert_eq(r.cap, 65536);
    cv_reader_free(&r);
    close(fd);
}

Test(reader, oversized_line_is_refused_before_the_whole_line_is_read)
{
    /* A 10 MiB line with a 100 KiB limit: the buffer stays small. */
    size_t n = 10 * MiB;
    char *data = malloc(n);
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_not_null(data);
    memset(data, 'y', n);
    int fd = fd_with(data, n);
    cr_assert_eq(cv_reader_init(&r, fd, CV_FRAMING_LINES, 100000), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EMSGSIZE);
    cr_assert_eq(r.items, 0);
    cr_assert_leq(r.cap, 100000 + 65536);
    cr_assert_lt(lseek(fd, 0, SEEK_CUR), 1 * (off_t)MiB);
    cv_reader_free(&r);
    close(fd);
    free(data);
}

Test(reader, truncated_length32)
{
    split_result s;

    s = split("\1\0", 2, CV_FRAMING_LENGTH32, 100);
    cr_assert_eq(s.rc, -EPROTO);
    cr_assert_eq(s.items, 0);

    s = split("\1\0\0\0a\5\0\0", 8, CV_FRAMING_LENGTH32, 100);
    cr_assert_eq(s.rc, -EPROTO);
    cr_assert_eq(s.items, 1);
    cr_assert_str_eq(s.text, "a");

    s = split("\1\0\0\0a\12\0\0\0hello", 14, CV_FRAMING_LENGTH32, 100);
    cr_assert_eq(s.rc, -EPROTO);
    cr_assert_eq(s.items, 1);

    s = split("\12\0\0\0", 4, CV_FRAMING_LENGTH32, 100);
    cr_assert_eq(s.rc, -EPROTO);
    cr_assert_eq(s.items, 0);
}

Test(reader, bad_descriptor_is_an_errno)
{
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_eq(cv_reader_init(&r, -1, CV_FRAMING_LINES, 100), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EBADF);
    cv_reader_free(&r);
}

/* --- pipes ----------------------------------------------------------------- */

/* The item numbered I of the stream tests write through pipes: lengths vary
 * from 0 to a few hundred bytes, some above the 64 KiB buffer. */
static size_t piece_len(unsigned i)
{
    if (i % 97 == 5)
        return 70000 + i;
    return (i * 37) % 301;
}

static void piece_fill(unsigned i, unsigned char *p, size_t len)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (unsigned char)('A' + (i + k) % 50);   /* never '\n' nor '\0' */
}

/* The child's side: writes ITEMS items of the stream to FD, framed, in
 * pieces of 1 to 4000 bytes, pausing now and then. */
static void feed_in_pieces(int fd, enum cv_framing f, unsigned items)
{
    unsigned char *item = malloc(80000);
    unsigned char *out = malloc(90000);
    unsigned seed = 7;

    if (!item || !out)
        _exit(10);
    for (unsigned i = 0; i < items; i++) {
        size_t len = piece_len(i), n = 0;
        piece_fill(i, item, len);
        if (f == CV_FRAMING_LENGTH32) {
            out[n++] = (unsigned char)len;
            out[n++] = (unsigned char)(len >> 8);
            out[n++] = (unsigned char)(len >> 16);
            out[n++] = (unsigned char)(len >> 24);
        }
        memcpy(out + n, item, len);
        n += len;
        if (f != CV_FRAMING_LENGTH32)
            out[n++] = f == CV_FRAMING_LINES ? '\n' : '\0';
        for (size_t off = 0; off < n;) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 4000;
            if (piece > n - off)
                piece = n - off;
            ssize_t w = write(fd, out + off, piece);
            if (w <= 0)
                _exit(11);
            off += (size_t)w;
            if (seed % 64 == 0)
                usleep(200);
        }
    }
    _exit(0);
}

/* Where large frames are read when a test gives the reader a place(). */
typedef struct {
    unsigned char *mem;
    size_t size;
    unsigned calls;
    size_t last_len;
} place_state;

static void *place_in(void *arg, size_t len)
{
    place_state *ps = arg;
    ps->calls++;
    ps->last_len = len;
    return len <= ps->size ? ps->mem : NULL;
}

/* Reads ITEMS items of the stream from a pipe fed in pieces and checks
 * each.  With PS, length32 frames of at least 60000 bytes are read into
 * placed memory; returns how many items were. */
static unsigned read_pieces_into(enum cv_framing f, unsigned items, place_state *ps)
{
    int p[2], status;
    unsigned char *want = malloc(80000);
    cv_reader r;
    const void *item;
    size_t len;
    unsigned placed = 0;

    cr_assert_not_null(want);
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        feed_in_pieces(p[1], f, items);
    }
    close(p[1]);
    cr_assert_eq(cv_reader_init(&r, p[0], f, 100000), 0);
    if (ps) {
        r.place = place_in;
        r.place_arg = ps;
        r.place_min = 60000;
    }
    for (unsigned i = 0; i < items; i++) {
        unsigned calls = ps ? ps->calls : 0;
        cr_assert_eq(cv_reader_next(&r, &item, &len), 1, "item %u", i + 1);
        cr_assert_eq(len, piece_len(i), "item %u", i + 1);
        piece_fill(i, want, len);
        cr_assert_eq(memcmp(item, want, len), 0, "item %u", i + 1);
        if (ps && item == ps->mem) {
            placed++;
            cr_assert_geq(len, 60000, "item %u of %zu bytes was placed", i + 1, len);
            cr_assert_eq(ps->calls, calls + 1);
            cr_assert_eq(ps->last_len, len);
        }
    }
    cr_assert_eq(cv_reader_next(&r, &item, &len), 0);
    cr_assert_eq(r.items, items);
    cv_reader_free(&r);
    close(p[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "feeder status %#x", status);
    free(want);
    return placed;
}

static void read_pieces(enum cv_framing f)
{
    read_pieces_into(f, 2000, NULL);
}

Test(pipe, lines_fed_in_small_pieces) { read_pieces(CV_FRAMING_LINES); }
Test(pipe, nul_fed_in_small_pieces) { read_pieces(CV_FRAMING_NUL); }
Test(pipe, length32_fed_in_small_pieces) { read_pieces(CV_FRAMING_LENGTH32); }

static void on_alarm(int sig)
{
    (void)sig;
}

Test(pipe, eintr_keeps_buffered_bytes)
{
    struct sigaction sa = {.sa_handler = on_alarm};   /* no SA_RESTART */
    struct itimerval it = {.it_value = {.tv_usec = 50000}};
    int p[2];
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "abc\nde", 6), 6);
    cr_assert_eq(cv_reader_init(&r, p[0], CV_FRAMING_LINES, 100), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(item, "abc", 3), 0);
    /* "de" is buffered; the next read blocks until the timer fires. */
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EINTR);
    cr_assert_eq(r.items, 1);
    cr_assert_eq(write(p[1], "f\ng", 3), 3);
    close(p[1]);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 3);
    cr_assert_eq(memcmp(item, "def", 3), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 1);
    cr_assert_eq(len, 1);
    cr_assert_eq(memcmp(item, "g", 1), 0);
    cr_assert_eq(cv_reader_next(&r, &item, &len), 0);
    cv_reader_free(&r);
    close(p[0]);
}

/* --- writer ---------------------------------------------------------------- */

/* Everything written to a memfd, read back. */
static size_t slurp(int fd, unsigned char *buf, size_t cap)
{
    off_t end = lseek(fd, 0, SEEK_CUR);
    cr_assert_geq(end, 0);
    cr_assert_leq((size_t)end, cap);
    cr_assert_eq(pread(fd, buf, (size_t)end, 0), end);
    return (size_t)end;
}

Test(writer, exact_bytes)
{
    unsigned char out[64];
    cv_writer w;
    int fd;

    fd = memfd_create("w", MFD_CLOEXEC);
    cr_assert_eq(cv_writer_init(&w, fd, CV_FRAMING_LINES), 0);
    cr_assert_eq(cv_writer_put(&w, "a", 1), 0);
    cr_assert_eq(cv_writer_put(&w, "", 0), 0);
    cr_assert_eq(cv_writer_put(&w, "bc", 2), 0);
    cr_assert_eq(slurp(fd, out, sizeof out), 0);   /* still buffered */
    cr_assert_eq(cv_writer_flush(&w), 0);
    cr_assert_eq(slurp(fd, out, sizeof out), 6);
    cr_assert_eq(memcmp(out, "a\n\nbc\n", 6), 0);
    cr_assert_eq(w.items, 3);
    cv_writer_free(&w);
    close(fd);

    fd = memfd_create("w", MFD_CLOEXEC);
    cr_assert_eq(cv_writer_init(&w, fd, CV_FRAMING_NUL), 0);
    cr_assert_eq(cv_writer_put(&w, "a", 1), 0);
    cr_assert_eq(cv_writer_put(&w, "", 0), 0);
    cr_assert_eq(cv_writer_flush(&w), 0);
    cr_assert_eq(slurp(fd, out, sizeof out), 3);
    cr_assert_eq(memcmp(out, "a\0\0", 3), 0);
    cv_writer_free(&w);
    close(fd);

    fd = memfd_create("w", MFD_CLOEXEC);
    cr_assert_eq(cv_writer_init(&w, fd, CV_FRAMING_LENGTH32), 0);
    cr_assert_eq(cv_writer_put(&w, "a", 1), 0);
    cr_assert_eq(cv_writer_put(&w, "", 0), 0);
    cr_assert_eq(cv_writer_flush(&w), 0);
    cr_assert_eq(slurp(fd, out, sizeof out), 9);
    cr_assert_eq(memcmp(out, "\1\0\0\0a\0\0\0\0", 9), 0);
    cv_writer_free(&w);
    close(fd);
}

Test(writer, length32_over_4gib_is_refused)
{
    cv_writer w;
    int fd = memfd_create("w", MFD_CLOEXEC);
    unsigned char out[8];

    cr_assert_eq(cv_writer_init(&w, fd, CV_FRAMING_LENGTH32), 0);
    /* The length is refused before a byte of the item is touched. */
    cr_assert_eq(cv_writer_put(&w, "x", (size_t)UINT32_MAX + 1), -EMSGSIZE);
    cr_assert_eq(cv_writer_flush(&w), 0);
    cr_assert_eq(slurp(fd, out, sizeof out), 0);
    cr_assert_eq(w.items, 0);
    cv_writer_free(&w);
    close(fd);
}

/* Writes the pipe-test stream with the writer, reads it back with the
 * reader: every framing, items of 0 bytes to over 64 KiB. */
static void round_trip(enum cv_framing f)
{
    enum { ITEMS = 3000 };
    unsigned char *item = malloc(80000);
    cv_writer w;
    cv_reader r;
    const void *got;
    size_t len;
    int fd = memfd_create("rt", MFD_CLOEXEC);

    cr_assert_not_null(item);
    cr_assert_eq(cv_writer_init(&w, fd, f), 0);
    for (unsigned i = 0; i < ITEMS; i++) {
        piece_fill(i, item, piece_len(i));
        cr_assert_eq(cv_writer_put(&w, item, piece_len(i)), 0, "item %u", i + 1);
    }
    cr_assert_eq(cv_writer_flush(&w), 0);
    cr_assert_eq(w.items, ITEMS);
    cv_writer_free(&w);

    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    cr_assert_eq(cv_reader_init(&r, fd, f, 100000), 0);
    for (unsigned i = 0; i < ITEMS; i++) {
        cr_assert_eq(cv_reader_next(&r, &got, &len), 1, "item %u", i + 1);
        cr_assert_eq(len, piece_len(i), "item %u", i + 1);
        piece_fill(i, item, len);
        cr_assert_eq(memcmp(got, item, len), 0, "item %u", i + 1);
    }
    cr_assert_eq(cv_reader_next(&r, &got, &len), 0);
    cv_reader_free(&r);
    close(fd);
    free(item);
}

Test(writer, round_trip_lines) { round_trip(CV_FRAMING_LINES); }
Test(writer, round_trip_nul) { round_trip(CV_FRAMING_NUL); }
Test(writer, round_trip_length32) { round_trip(CV_FRAMING_LENGTH32); }

Test(writer, through_a_pipe_to_another_process)
{
    enum { ITEMS = 500 };
    int p[2], status;
    cv_reader r;
    const void *got;
    size_t len;
    unsigned char *want = malloc(80000);

    cr_assert_not_null(want);
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        cv_writer w;
        unsigned char *item = malloc(80000);
        close(p[0]);
        if (!item || cv_writer_init(&w, p[1], CV_FRAMING_LENGTH32) != 0)
            _exit(1);
        for (unsigned i = 0; i < ITEMS; i++) {
            piece_fill(i, item, piece_len(i));
            if (cv_writer_put(&w, item, piece_len(i)) != 0)
                _exit(2);
        }
        _exit(cv_writer_flush(&w) == 0 ? 0 : 3);
    }
    close(p[1]);
    cr_assert_eq(cv_reader_init(&r, p[0], CV_FRAMING_LENGTH32, 100000), 0);
    for (unsigned i = 0; i < ITEMS; i++) {
        cr_assert_eq(cv_reader_next(&r, &got, &len), 1, "item %u", i + 1);
        cr_assert_eq(len, piece_len(i));
        piece_fill(i, want, len);
        cr_assert_eq(memcmp(got, want, len), 0, "item %u", i + 1);
    }
    cr_assert_eq(cv_reader_next(&r, &got, &len), 0);
    cv_reader_free(&r);
    close(p[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %#x", status);
    free(want);
}

static void tick(int sig)
{
    (void)sig;
}

Test(writer, short_writes_and_eintr_are_retried)
{
    enum { ITEMS = 40, SIZE = 300000 };
    int p[2], status;
    cv_reader r;
    const void *got;
    size_t len;

    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* A timer without SA_RESTART interrupts the blocked writes: some
         * return short counts, some fail with EINTR. */
        struct sigaction sa = {.sa_handler = tick};
        struct itimerval it = {{0, 500}, {0, 500}};
        cv_writer w;
        unsigned char *item = malloc(SIZE);
        close(p[0]);
        if (!item || sigaction(SIGALRM, &sa, NULL) != 0 ||
            setitimer(ITIMER_REAL, &it, NULL) != 0 ||
            cv_writer_init(&w, p[1], CV_FRAMING_LINES) != 0)
            _exit(1);
        for (unsigned i = 0; i < ITEMS; i++) {
            piece_fill(i, item, SIZE - i);
            if (cv_writer_put(&w, item, SIZE - i) != 0)
                _exit(2);
        }
        _exit(cv_writer_flush(&w) == 0 ? 0 : 3);
    }
    close(p[1]);
    unsigned char *want = malloc(SIZE);
    cr_assert_not_null(want);
    cr_assert_eq(cv_reader_init(&r, p[0], CV_FRAMING_LINES, SIZE), 0);
    for (unsigned i = 0; i < ITEMS; i++) {
        usleep(2000);   /* let the pipe fill up so the writer blocks */
        cr_assert_eq(cv_reader_next(&r, &got, &len), 1, "item %u", i + 1);
        cr_assert_eq(len, SIZE - i);
        piece_fill(i, want, len);
        cr_assert_eq(memcmp(got, want, len), 0, "item %u", i + 1);
    }
    cr_assert_eq(cv_reader_next(&r, &got, &len), 0);
    cv_reader_free(&r);
    close(p[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %#x", status);
    free(want);
}

Test(writer, closed_pipe_is_epipe)
{
    int p[2];
    cv_writer w;
    char *big = calloc(1, 200000);

    cr_assert_not_null(big);
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(pipe(p), 0);
    close(p[0]);

    /* Buffered: the error comes with the flush. */
    cr_assert_eq(cv_writer_init(&w, p[1], CV_FRAMING_LINES), 0);
    cr_assert_eq(cv_writer_put(&w, "x", 1), 0);
    cr_assert_eq(cv_writer_flush(&w), -EPIPE);
    /* Too big to buffer: the error comes with the put. */
    cr_assert_eq(cv_writer_put(&w, big, 200000), -EPIPE);
    cv_writer_free(&w);

    cr_assert_eq(cv_writer_init(&w, p[1], CV_FRAMING_LENGTH32), 0);
    cr_assert_eq(cv_writer_put(&w, big, 200000), -EPIPE);
    /* Filling the buffer writes it out. */
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++)
        rc = cv_writer_put(&w, "abc", 3);
    cr_assert_eq(rc, -EPIPE);
    cv_writer_free(&w);
    close(p[1]);
    free(big);
}

/* --- placed frames (the source reads large items into the pool) ---------- */

/* The pipe stream of read_pieces, with frames of 60000 bytes or more read
 * straight into placed memory and the others from the buffer. */
Test(pipe, large_frames_are_read_into_placed_memory)
{
    place_state ps = {.mem = malloc(80000), .size = 80000};
    unsigned placed = read_pieces_into(CV_FRAMING_LENGTH32, 600, &ps);
    cr_assert_eq(placed, 7, "items 6, 103, 200, 297, 394, 491 and 588 are above 60000 bytes");
    free(ps.mem);
}

Test(reader, a_placed_frame_cut_short_is_a_truncated_frame)
{
    unsigned char data[4 + 50000];
    uint32_t l = 70000;         /* announces more than there is */
    memcpy(data, &l, 4);
    memset(data + 4, 'q', sizeof data - 4);
    int fd = fd_with(data, sizeof data);
    place_state ps = {.mem = malloc(70000), .size = 70000};
    cv_reader r;
    const void *item;
    size_t len;

    cr_assert_eq(cv_reader_init(&r, fd, CV_FRAMING_LENGTH32, 100000), 0);
    r.place = place_in;
    r.place_arg = &ps;
    r.place_min = 1000;
    cr_assert_eq(cv_reader_next(&r, &item, &len), -EPROTO);
    cr_assert_eq(ps.calls, 1);
    cr_assert_eq(r.items, 0);
    cv_reader_free(&r);
    close(fd);
    free(ps.mem);
}
