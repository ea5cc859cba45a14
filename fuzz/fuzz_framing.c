/* SPDX-License-Identifier: MIT */
/*
 * fuzz_framing.c - fuzz target for framing.c: cv_reader splitting a stream
 * into items and cv_writer joining them again.
 *
 * Input layout:
 *   byte 0   framing (byte % 3: lines, nul, length32) and max_item (byte / 3
 *            picks one of max_items[] below, small ones mostly);
 *   byte 1   bit 0: the stream comes from a pipe (0) or a memfd (1);
 *            bits 1-3: largest chunk written into the pipe before a read;
 *            bits 4-5: how often a read is interrupted (-EINTR);
 *            bits 6-7: the payload is repeated 1, 1, 17 or up to 200 KiB
 *            worth of times, to reach the reader's buffer growth;
 *   the rest the payload.
 * The pipe is filled from the reader's before_read hook, one chunk when it is
 * empty, so reads return short and deterministic pieces without a thread.
 *
 * Each item must be the one a plain reference splitter finds at that point
 * (and the end, -EMSGSIZE or -EPROTO where it finds them); an interrupted
 * read must lose nothing; the items written through cv_writer into a memfd
 * must give the stream's bytes back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "run/framing.h"
#include "fuzz.h"

#define MAX_STREAM ((size_t)256 << 10)
#define MAX_ITEMS 4096

static const size_t max_items[] = {
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 100, 255, 256, 1000, 4096,
    65535, 65536, 65537, 200000, (size_t)1 << 20,
};
static const size_t max_chunks[] = { 1, 2, 3, 7, 16, 100, 4096, 65536 };

struct feed {
    int rfd, wfd;               /* the pipe; wfd -1 once closed */
    const unsigned char *s;     /* the whole stream */
    size_t n, sent;
    size_t max_chunk;
    unsigned interrupt;         /* 0 never, else 1 in interrupt+1 reads */
    uint32_t rng;
    int interrupted;            /* the last hook call returned -EINTR */
    unsigned unreported;        /* -EINTRs the reader has not returned yet */
};

static void broken(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void broken(const char *fmt, ...)
{
    va_list ap;

    fputs("fuzz_framing: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static uint32_t next_rand(struct feed *f)
{
    /* xorshift32: deterministic per input, so a crash replays. */
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

/* The reader's before_read hook: sometimes an interruption (never two in a
 * row), then makes sure the read cannot block: a chunk into the empty pipe,
 * or its write end closed once everything is sent. */
static int before_read(void *arg, int fd)
{
    struct feed *f = arg;
    int pending = 0;

    if (f->interrupt && !f->interrupted && next_rand(f) % (f->interrupt + 1) == 0) {
        f->interrupted = 1;
        f->unreported++;
        return -EINTR;
    }
    f->interrupted = 0;
    if (f->wfd < 0)
        return 0;
    if (fd != f->rfd)
        broken("before_read got fd %d, the reader reads %d", fd, f->rfd);
    if (ioctl(f->rfd, FIONREAD, &pending) < 0)
        broken("FIONREAD: %s", strerror(errno));
    if (pending > 0)
        return 0;
    if (f->sent == f->n) {
        close(f->wfd);
        f->wfd = -1;
        return 0;
    }
    size_t chunk = 1 + next_rand(f) % f->max_chunk;
    if (chunk > f->n - f->sent)
        chunk = f->n - f->sent;
    ssize_t w = write(f->wfd, f->s + f->sent, chunk);
    if (w <= 0)
        broken("writing into the empty pipe: %s", w < 0 ? strerror(errno) : "nothing written");
    f->sent += (size_t)w;
    return 0;
}

/* The reference splitter: what framing.h says the items of S[*pos, n) are.
 * 1 with the item at *off (*len bytes), 0 at the end, -EMSGSIZE or -EPROTO. */
static int ref_next(enum cv_framing fr, size_t max_item, const unsigned char *s, size_t n,
                    size_t *pos, size_t *off, size_t *len)
{
    size_t p = *pos, left = n - p;

    if (left == 0)
        return 0;
    if (fr == CV_FRAMING_LENGTH32) {
        if (left < 4)
            return -EPROTO;
        size_t l = (size_t)s[p] | (size_t)s[p + 1] << 8 | (size_t)s[p + 2] << 16 |
                   (size_t)s[p + 3] << 24;
        if (l > max_item)
            return -EMSGSIZE;
        if (left - 4 < l)
            return -EPROTO;
        *off = p + 4;
        *len = l;
        *pos = p + 4 + l;
        return 1;
    }
    const unsigned char *hit = memchr(s + p, fr == CV_FRAMING_NUL ? '\0' : '\n', left);
    size_t l = hit ? (size_t)(hit - (s + p)) : left;
    if (l > max_item)
        return -EMSGSIZE;
    *off = p;
    *len = l;
    *pos = hit ? p + l + 1 : n;
    return 1;
}

static const char *framing_name(enum cv_framing fr)
{
    return fr == CV_FRAMING_LINES ? "lines" : fr == CV_FRAMING_NUL ? "nul" : "length32";
}

/* A memfd emptied for reuse: created once, since every input needs two. */
static int reset_memfd(int *fd, const char *name)
{
    if (*fd < 0 && (*fd = memfd_create(name, MFD_CLOEXEC)) < 0)
        broken("memfd_create: %s", strerror(errno));
    if (ftruncate(*fd, 0) < 0 || lseek(*fd, 0, SEEK_SET) < 0)
        broken("resetting a memfd: %s", strerror(errno));
    return *fd;
}

static void write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            broken("write: %s", w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
    }
}

int cv_fuzz_framing_one(const uint8_t *data, size_t size)
{
    static int in_fd = -1, out_fd = -1;
    struct feed f = { .rfd = -1, .wfd = -1 };
    cv_reader r;
    cv_writer w;
    int fds[2];

    if (size < 2)
        return 0;
    enum cv_framing fr = (enum cv_framing)(data[0] % 3);
    size_t max_item = max_items[(data[0] / 3) % (sizeof max_items / sizeof max_items[0])];
    int use_memfd = data[1] & 1;
    f.max_chunk = max_chunks[(data[1] >> 1) & 7];
    f.interrupt = (unsigned[]){ 0, 7, 2, 1 }[(data[1] >> 4) & 3];
    f.rng = 0x9e3779b9u ^ (uint32_t)size ^ (uint32_t)data[1] << 8;
    const unsigned char *payload = data + 2;
    size_t plen = size - 2, reps = 1;
    switch (data[1] >> 6) {
    case 2: reps = 17; break;
    case 3: reps = plen ? ((size_t)200 << 10) / plen + 1 : 1; break;
    }
    if (plen && reps > MAX_STREAM / plen)
        reps = MAX_STREAM / plen;
    if (reps < 1)
        reps = 1;

    size_t n = plen * reps;
    unsigned char *s = malloc(n ? n : 1);
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < reps; i++)
        memcpy(s + i * plen, payload, plen);
    f.s = s;
    f.n = n;
    /* A long stream still goes through the pipe in at most ~512 pieces:
     * a syscall per byte of 300 KiB would make the target crawl. */
    if (f.max_chunk < n / 512)
        f.max_chunk = n / 512;

    if (use_memfd) {
        f.rfd = reset_memfd(&in_fd, "fuzz-in");
        write_all(f.rfd, s, n);
        if (lseek(f.rfd, 0, SEEK_SET) < 0)
            broken("lseek: %s", strerror(errno));
    } else {
        if (pipe2(fds, O_CLOEXEC) < 0)
            broken("pipe2: %s", strerror(errno));
        if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0)
            broken("fcntl: %s", strerror(errno));
        f.rfd = fds[0];
        f.wfd = fds[1];
    }
    int wfd = reset_memfd(&out_fd, "fuzz-out");

    if (cv_reader_init(&r, f.rfd, fr, max_item) != 0)
        broken("cv_reader_init failed");
    r.before_read = before_read;
    r.before_read_arg = &f;
    if (cv_writer_init(&w, wfd, fr) != 0)
        broken("cv_writer_init failed");

    size_t pos = 0, off = 0, len = 0, done = 0, item_no = 0;
    int last_unterminated = 0, want, got = 0;
    /* Past a few thousand items a long stream of short ones only costs
     * time: the rest of it is left unread. */
    while (item_no < MAX_ITEMS) {
        const void *item = NULL;
        size_t ilen = 0;

        got = cv_reader_next(&r, &item, &ilen);
        /* Every interruption of the hook is returned, once. */
        if (got == -EINTR) {
            if (f.unreported == 0)
                broken("-EINTR that the hook did not ask for, at item %zu", item_no + 1);
            f.unreported--;
            continue;
        }
        if (f.unreported)
            broken("the hook's -EINTR was not returned, at item %zu", item_no + 1);
        want = ref_next(fr, max_item, s, n, &pos, &off, &len);
        if (got != want)
            broken("%s, max_item %zu, %s: item %zu: got %d, expected %d", framing_name(fr),
                   max_item, use_memfd ? "memfd" : "pipe", item_no + 1, got, want);
        if (got != 1)
            break;
        item_no++;
        if (ilen != len || (len && memcmp(item, s + off, len) != 0))
            broken("%s, max_item %zu: item %zu: got %zu bytes, expected the %zu at offset %zu",
                   framing_name(fr), max_item, item_no, ilen, len, off);
        if (ilen > max_item)
            broken("item %zu is longer than max_item", item_no);
        if (r.items != item_no)
            broken("r.items is %llu after %zu items", (unsigned long long)r.items, item_no);
        int rc = cv_writer_put(&w, item, ilen);
        if (rc != 0)
            broken("cv_writer_put: %s", strerror(-rc));
        done = pos;
        last_unterminated = fr != CV_FRAMING_LENGTH32 && pos == n &&
                            (n == 0 || s[n - 1] != (fr == CV_FRAMING_NUL ? '\0' : '\n'));
    }
    /* The end stays the end. */
    if (item_no < MAX_ITEMS && got == 0) {
        const void *item;
        size_t ilen;
        f.interrupt = 0;
        if ((got = cv_reader_next(&r, &item, &ilen)) != 0)
            broken("%s: cv_reader_next returned %d after the end", framing_name(fr), got);
    }
    if (cv_writer_flush(&w) != 0)
        broken("cv_writer_flush failed");
    if (w.items != item_no)
        broken("w.items is %llu after %zu items", (unsigned long long)w.items, item_no);
    cv_writer_free(&w);
    cv_reader_free(&r);

    /* Written back, the items are the stream up to the last one, with a
     * separator added after an unterminated last line. */
    size_t expect = done + (size_t)last_unterminated;
    off_t outlen = lseek(wfd, 0, SEEK_END);
    if (outlen < 0 || (size_t)outlen != expect)
        broken("%s: the writer wrote %lld bytes, expected %zu", framing_name(fr),
               (long long)outlen, expect);
    if (expect) {
        unsigned char *back = malloc(expect);
        if (back == NULL)
            broken("out of memory");
        if (pread(wfd, back, expect, 0) != (ssize_t)expect)
            broken("reading the writer's output back: %s", strerror(errno));
        if (memcmp(back, s, done) != 0 ||
            (last_unterminated && back[done] != (fr == CV_FRAMING_NUL ? '\0' : '\n')))
            broken("%s: the writer's bytes differ from the stream", framing_name(fr));
        free(back);
    }

    if (f.wfd >= 0)
        close(f.wfd);
    if (!use_memfd)
        close(f.rfd);
    free(s);
    return 0;
}

#ifndef CV_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return cv_fuzz_framing_one(data, size);
}
#endif
