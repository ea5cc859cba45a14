/* SPDX-License-Identifier: MIT */
/*
 * channel_ring.c - the shared-memory ring implementation of channel.h, the
 * default transport.
 *
 * One producer, one consumer, a power-of-two byte ring in an anonymous
 * shared mapping made before the fork.  Records are a 16-byte header (seq,
 * flags, len) and the item, padded to 16 bytes; a record that would cross
 * the end is preceded by a wrap marker; a record larger than a quarter of
 * the ring travels as fragments the consumer joins again.  A large item in
 * the shared pool (pool.h) travels as a reference record: block, offset and
 * length, 32 bytes whatever the item's size.
 *
 * What made it fast (measured on 2-core VMs): positions are published in
 * batches, each side caches the other's position and reads the shared one
 * only when the ring looks full or empty, a side that has nothing to do
 * spins briefly (adaptively: with more processes than cores a spin only
 * steals the core the other side needs) and then sleeps on its process's
 * doorbell futex, which the other side rings only when told someone sleeps
 * (ring_wait.c).
 *
 * A received record stays in the ring until the next receive on the same
 * channel: the read position moves only after the item was handled.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "transport/channel.h"
#include "transport/ring.h"
#include "transport/shm.h"
#include "base/util.h"

#define HDR 16
#define F_WRAP 0x80000000u      /* skip to the start of the ring */
#define F_FRAG 0x40000000u      /* more of this record follows */
#define F_ABORT 0x20000000u     /* a restarted producer: drop any partial record */
#define F_REF 0x10000000u       /* the record is a reference into the pool */
#define F_INTERNAL (F_WRAP | F_FRAG | F_ABORT | F_REF)
#define REF_LEN 16              /* a reference: block (8), offset (4), length (4) */
#define FAST_MAX 256            /* the largest record ring_send copies itself */
#define PUB_BYTES 8192          /* a producer publishes at least this often */
#define PREFETCH_AHEAD 2048     /* how far ahead ring_recv_many asks for records */

/* Kept out of line: the per-item fast paths stay small enough to need no
 * saved registers. */
#define SLOW_PATH __attribute__((noinline))

static int ring_midway(const cv_channel *base)
{
    return ((const ring_channel *)base)->frag_off != 0;
}

static const struct cv_channel_ops ring_ops;

cv_channel *cv_channel_create_ring(cv_channel_stats *stats, size_t max_item, size_t capacity,
                                   size_t ref_budget, cv_bell *producer, cv_bell *consumer,
                                   cv_pool *pool)
{
    if (capacity < 4096 || (capacity & (capacity - 1))) {
        errno = EINVAL;
        return NULL;
    }
    ring_channel *ch = cv_calloc(1, sizeof *ch);
    ch->base.ops = &ring_ops;
    ch->map_bytes = sizeof(ring_shared) + capacity;
    ch->sh = cv_shared_alloc(ch->map_bytes);
    if (!ch->sh) {
        free(ch);
        return NULL;
    }
    ch->cap = capacity;
    ch->mask = capacity - 1;
    ch->prod_bell = producer;
    ch->cons_bell = consumer;
    ch->stats = stats;
    ch->pool = pool;
    ch->ref_cap = ref_budget;
    ch->max_item = max_item;
    /* Larger records go the general way: a copy dwarfs the checks. */
    ch->fast_max = capacity / 4 - HDR < FAST_MAX ? capacity / 4 - HDR : FAST_MAX;
    if (ch->fast_max > max_item)
        ch->fast_max = max_item;
    ch->can_write = ch->can_read = 1;
    return &ch->base;
}

/* Publishes the space freed so far.  The producer's bell is rung when the
 * producer said it waits for space, or for an eighth of the ring, not for
 * the few bytes freed before this process waits: the bell also wakes the
 * producer for its own input, and a producer woken for nothing takes the
 * CPU the next wake-up of the pipeline would have used (W5: ~80 us of its
 * ~190).  Ringing for an eighth anyway, as before, is measured, not
 * understood: without it W2 with copied items took 10 % longer (1 GiB:
 * 0.34 s against 0.31 s, medians of 11, at commit 9e9e193). */
static void publish_tail(ring_channel *ch, uint64_t pos)
{
    if (ch->tail_pub == pos)
        return;
    uint64_t freed = pos - ch->tail_pub;
    __atomic_store_n(&ch->sh->tail, pos, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ch->tail_pub = pos;
    if (freed >= ch->cap / 8 || __atomic_load_n(&ch->sh->space_wanted, __ATOMIC_RELAXED))
        ring_bell(ch->prod_bell, ch->cons_bell, 0);
}

static void ring_keep(cv_channel *base, int ends)
{
    ring_channel *ch = (ring_channel *)base;
    ch->can_write = !!(ends & CV_END_WRITE);
    ch->can_read = !!(ends & CV_END_READ);
    ch->fast_wend = ch->fast_rend = 0;
}

/* --- producer ----------------------------------------------------------- */

/* Publishes the records written so far.  A sleeping consumer is woken only
 * when WAKE, or once an eighth of the ring waits for it: waking it for a few
 * records costs more than the records (a wake-up is ~10 us).  Whenever this
 * process is about to wait or stops producing, it publishes with WAKE. */
__attribute__((noinline)) static void publish_head(ring_channel *ch, int wake)
{
    if (ch->head_pub != ch->wpos) {
        __atomic_store_n(&ch->sh->ref_sent, ch->ref_sent, __ATOMIC_RELAXED);
        __atomic_store_n(&ch->sh->head, ch->wpos, __ATOMIC_RELEASE);
        ch->head_pub = ch->wpos;
        ch->unpub = 0;
        if (ch->stats)
            __atomic_store_n(&ch->stats->sent, ch->sent, __ATOMIC_RELAXED);
    }
    if (ch->head_rung != ch->head_pub && (wake || ch->head_pub - ch->head_rung >= ch->cap / 8)) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        ch->head_rung = ch->head_pub;
        ring_bell(ch->cons_bell, ch->prod_bell, wake);
    }
}

/* Records are published at the latest after this many bytes (or 256
 * records). */
static uint64_t pub_bytes(const ring_channel *ch)
{
    return ch->cap / 8 < PUB_BYTES ? ch->cap / 8 : PUB_BYTES;
}

static size_t rec_size(size_t len)
{
    return (HDR + len + 15) & ~(size_t)15;
}

static void put_header(unsigned char *p, uint64_t seq, uint32_t flags, size_t len)
{
    uint32_t l32 = (uint32_t)len;
    memcpy(p, &seq, 8);
    memcpy(p + 8, &flags, 4);
    memcpy(p + 12, &l32, 4);
}

static void get_header(const unsigned char *p, uint32_t *flags, uint32_t *len)
{
    memcpy(flags, p + 8, 4);
    memcpy(len, p + 12, 4);
}

/* The producer must wait for the consumer (the ring, or its budget for
 * references, is full): -EPIPE when the consumer is gone, else -EAGAIN
 * with want_space set.  TAIL is where the consumer is now.  The consumer
 * must see what is there, but an item by item producer publishes part of an
 * item only when the consumer has read everything else: else a crash would
 * duplicate that part. */
static int no_room(ring_channel *ch, uint64_t tail)
{
    if (__atomic_load_n(&ch->sh->reader_gone, __ATOMIC_ACQUIRE))
        return -EPIPE;
    if (!ch->ack_out || tail == ch->head_pub)
        publish_head(ch, 1);
    ch->want_space = 1;
    return -EAGAIN;
}

/* Makes room for a record of SIZE bytes (wrapping to the start of the
 * ring when it would cross the end) and sets *WHERE to where it goes: 0,
 * -EAGAIN or -EPIPE. */
static int make_room(ring_channel *ch, size_t size, unsigned char **where)
{
    size_t off = ch->wpos & ch->mask;
    size_t skip = ch->cap - off < size ? ch->cap - off : 0;
    size_t need = skip + size;

    if (ch->cap - (ch->wpos - ch->tail_cache) < need) {
        ch->tail_cache = __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE);
        if (ch->cap - (ch->wpos - ch->tail_cache) < need)
            return no_room(ch, ch->tail_cache);
    }
    ch->want_space = 0;
    if (skip) {
        unsigned char *w = ch->sh->data + off;
        uint32_t wf = F_WRAP, z = 0;
        memcpy(w + 8, &wf, 4);
        memcpy(w + 12, &z, 4);
        ch->wpos += skip;
        off = 0;
    }
    *where = ch->sh->data + off;
    return 0;
}

static void finish_record(ring_channel *ch, unsigned char *p, uint64_t seq, uint32_t flags,
                          size_t len)
{
    put_header(p, seq, flags, len);
    ch->wpos += rec_size(len);
    if (!ch->ack_out && (++ch->unpub >= 256 || ch->wpos - ch->head_pub >= pub_bytes(ch)))
        publish_head(ch, 0);
}

static int put_abort(ring_channel *ch)
{
    unsigned char *p;
    int rc = make_room(ch, HDR, &p);
    if (rc < 0)
        return rc;
    uint32_t f = F_ABORT, z = 0;
    memcpy(p + 8, &f, 4);
    memcpy(p + 12, &z, 4);
    ch->wpos += HDR;
    ch->abort_pending = 0;
    publish_head(ch, 1);
    return 0;
}

/* Writes one record that fits in a quarter of the ring, or -EAGAIN. */
static int put_record(ring_channel *ch, uint64_t seq, uint32_t flags, const void *data, size_t len)
{
    unsigned char *p;
    int rc = ch->abort_pending ? put_abort(ch) : 0;
    if (rc < 0)
        return rc;
    rc = make_room(ch, rec_size(len), &p);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(p + HDR, data, len);
    finish_record(ch, p, seq, flags, len);
    return 0;
}

/* Where ring_send's fast path must stop: the end of the room known to be
 * free, the end of the ring (a wrap), and the next publication. */
static void set_fast_wend(ring_channel *ch)
{
    if (ch->frag_off || ch->abort_pending || ch->reserved || !ch->can_write) {
        ch->fast_wend = 0;
        return;
    }
    uint64_t end = ch->tail_cache + ch->cap;
    uint64_t lap = (ch->wpos | ch->mask) + 1;
    if (lap < end)
        end = lap;
    if (!ch->ack_out && ch->head_pub + pub_bytes(ch) < end)
        end = ch->head_pub + pub_bytes(ch);
    ch->fast_wend = end;
}

static int ring_send_general(ring_channel *ch, uint64_t seq, uint32_t flags, const void *data,
                             size_t len);

/* Every case: room to wait for, a wrap, an abort marker, fragments, a
 * publication due; then the fast path's new limit. */
SLOW_PATH static int ring_send_slow(ring_channel *ch, uint64_t seq, uint32_t flags,
                                    const void *data, size_t len)
{
    int rc = ring_send_general(ch, seq, flags, data, len);
    set_fast_wend(ch);
    return rc;
}

/* The common case first: a small record that fits, whole, before
 * fast_wend. */
static int ring_send(cv_channel *base, uint64_t seq, uint32_t flags, const void *data, size_t len)
{
    ring_channel *ch = (ring_channel *)base;
    uint64_t pos = ch->wpos, end = pos + rec_size(len);
    if (len > ch->fast_max || end > ch->fast_wend)
        return ring_send_slow(ch, seq, flags, data, len);
    unsigned char *p = ch->sh->data + (pos & ch->mask);
    cv_copy_small(p + HDR, data, len);
    put_header(p, seq, flags, len);
    ch->wpos = end;
    ch->want_space = 0;
    if (!(flags & CV_REC_WATERMARK))
        ch->sent++;
    return 0;
}

static int ring_send_general(ring_channel *ch, uint64_t seq, uint32_t flags, const void *data,
                             size_t len)
{
    if (len > ch->max_item || len > UINT32_MAX)
        return -EMSGSIZE;
    size_t piece_max = ch->cap / 4 - HDR;
    if (ch->frag_off && (len <= piece_max || (flags & CV_REC_WATERMARK)))
        return -EAGAIN;     /* nothing may come between a record's pieces */
    if (len <= piece_max) {
        int rc = put_record(ch, seq, flags, data, len);
        if (rc == 0 && !(flags & CV_REC_WATERMARK))
            ch->sent++;
        return rc;
    }
    /* A large record goes in pieces; after -EAGAIN the caller sends the
     * same record again and it resumes where it stopped. */
    while (ch->frag_off < len) {
        size_t piece = len - ch->frag_off < piece_max ? len - ch->frag_off : piece_max;
        int last = ch->frag_off + piece == len;
        int rc = put_record(ch, seq, last ? flags : (flags | F_FRAG),
                            (const unsigned char *)data + ch->frag_off, piece);
        if (rc < 0)
            return rc;
        ch->frag_off += piece;
    }
    ch->frag_off = 0;
    if (!(flags & CV_REC_WATERMARK))
        ch->sent++;
    return 0;
}

/* A reference record is 32 bytes, but the item it stands for counts against
 * the channel's budget for references (ref_cap, what it would hold without
 * a pool; one item always fits), so references cannot run ahead and fill
 * the pool behind a slow consumer. */
static int ref_budget(ring_channel *ch, uint32_t len)
{
    if (ch->ref_sent - ch->ref_freed_cache + len <= ch->ref_cap ||
        ch->ref_sent == ch->ref_freed_cache)
        return 0;
    /* The tail first: the consumer stores ref_freed before it publishes the
     * tail, so a tail that moved after this look brings budget with it. */
    uint64_t tail = __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE);
    ch->ref_freed_cache = __atomic_load_n(&ch->sh->ref_freed, __ATOMIC_ACQUIRE);
    if (ch->ref_sent - ch->ref_freed_cache + len <= ch->ref_cap ||
        ch->ref_sent == ch->ref_freed_cache)
        return 0;
    /* The consumer publishes its tail with every reference it is done with,
     * so waiting for the tail to move is waiting for budget. */
    ch->tail_cache = tail;
    return no_room(ch, __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE));
}

static int ring_send_ref(cv_channel *base, uint64_t seq, cv_ref ref, uint32_t off, uint32_t len)
{
    ring_channel *ch = (ring_channel *)base;
    unsigned char r[REF_LEN];
    if (ch->frag_off)
        return -EAGAIN;     /* nothing may come between a record's pieces */
    int rc = ch->abort_pending ? put_abort(ch) : 0;
    if (rc == 0)
        rc = ref_budget(ch, len);
    if (rc < 0)
        return rc;
    memcpy(r, &ref, 8);
    memcpy(r + 8, &off, 4);
    memcpy(r + 12, &len, 4);
    rc = put_record(ch, seq, F_REF, r, REF_LEN);
    if (rc == 0) {
        ch->sent++;
        ch->ref_sent += len;
    }
    return rc;
}

static void *ring_reserve(cv_channel *base, size_t max_len)
{
    ring_channel *ch = (ring_channel *)base;
    unsigned char *p;
    if (max_len > ch->max_item) {
        errno = EMSGSIZE;
        return NULL;
    }
    if (max_len > ch->cap / 4 - HDR || ch->frag_off) {
        errno = ENOTSUP;    /* travels in pieces: built elsewhere, then sent */
        return NULL;
    }
    int rc = ch->abort_pending ? put_abort(ch) : 0;
    if (rc == 0)
        rc = make_room(ch, rec_size(max_len), &p);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    ch->reserved = p;
    ch->fast_wend = 0;
    return p + HDR;
}

static int ring_commit(cv_channel *base, uint64_t seq, size_t len)
{
    ring_channel *ch = (ring_channel *)base;
    if (!ch->reserved)
        return -EINVAL;
    finish_record(ch, ch->reserved, seq, 0, len);
    ch->reserved = NULL;
    ch->sent++;
    set_fast_wend(ch);
    return 0;
}

static int ring_pending(const cv_channel *base)
{
    const ring_channel *ch = (const ring_channel *)base;
    return ch->can_write && ch->head_pub != ch->wpos;
}

static void ring_publish_partial(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (ch->can_write && ch->ack_out &&
        __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE) != ch->head_pub)
        return;     /* the consumer still has published records to read */
    if (ch->can_write)
        publish_head(ch, 1);
    if (ch->can_read)
        publish_tail(ch, ch->ack_in ? ch->acked : ch->rpos);
}

void cv_ring_publish(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (ch->can_write)
        publish_head(ch, 1);
    if (ch->can_read)
        publish_tail(ch, ch->ack_in ? ch->acked : ch->rpos);
}

/* cv_channel_publish_each: the head, and the consumer's bell as
 * publish_head rings it, except that the ring takes the bell's waiting
 * flag (back to 0) and only the publish that took it rings.  A woken
 * process runs only when a CPU is free: on a crowded machine it stayed
 * "waiting" for hundreds of pushes, each of which rang it again, a futex
 * system call per push (W8, 10 M items: 300 k to 850 k of them, for 40 k
 * to 80 k sleeps; most of the program's time).  Nothing is missed: the woken consumer looks at every
 * channel when it runs, and says again that it sleeps (store, fence,
 * look) before it does. */
static void ring_publish_each(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (!ch->can_write)
        return;
    publish_head(ch, 0);
    if (ch->head_rung == ch->head_pub)
        return;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    cv_bell *b = ch->cons_bell;
    uint32_t asleep = __atomic_load_n(&b->waiting, __ATOMIC_RELAXED);
    if (asleep && __atomic_compare_exchange_n(&b->waiting, &asleep, 0, 0, __ATOMIC_SEQ_CST,
                                              __ATOMIC_RELAXED)) {
        ch->head_rung = ch->head_pub;
        ring_bell_taken(b, ch->prod_bell, 1);
    }
}

static int ring_flush(cv_channel *base, int wait)
{
    (void)wait;     /* publishing never waits: the bytes are in the ring */
    cv_ring_publish(base);
    return 0;
}

static int ring_close_write(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (!ch->can_write)
        return 0;
    publish_head(ch, 1);
    ch->fast_wend = 0;
    __atomic_store_n(&ch->sh->closed, 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    cv_bell_wake(ch->cons_bell);    /* end of stream: wake it even if not asleep yet */
    ch->can_write = 0;
    return 0;
}

/* --- consumer ----------------------------------------------------------- */

/* The consumer is done with the block it was handed: the record's count
 * goes (with acknowledgements only once the ack is published: a crash before
 * it hands the same record to the next process, which drops it then). */
static void drop_held(ring_channel *ch)
{
    if (ch->held) {
        cv_pool_drop(ch->pool, ch->held);
        ch->held = 0;
    }
}

/* The producer's budget for references (ref_budget) comes back with the
 * next tail published. */
static void return_budget(ring_channel *ch)
{
    if (ch->held_len) {
        ch->ref_freed += ch->held_len;
        ch->held_len = 0;
        __atomic_store_n(&ch->sh->ref_freed, ch->ref_freed, __ATOMIC_RELAXED);
    }
}

/* Done with the reference handed out last, when nothing acknowledges it
 * (ring_ack publishes its tail between the two). */
static void let_go(ring_channel *ch)
{
    return_budget(ch);
    drop_held(ch);
}

static void release(ring_channel *ch)
{
    if (ch->rnext != ch->rpos) {
        int was_ref = ch->held_len != 0;
        if (!ch->ack_in)
            let_go(ch);
        ch->rpos = ch->rnext;
        if (ch->ack_in) {
            if (!ch->outstanding)
                ch->acked = ch->rpos;   /* watermarks and wraps need no ack */
        } else if (was_ref || ch->rpos - ch->tail_pub >= ch->cap / 8) {
            publish_tail(ch, ch->rpos);
        }
    }
}

/* Every case: wraps, aborts, fragments, item by item acknowledgement,
 * end of stream, malformed records. */
static int ring_recv_general(ring_channel *ch, cv_record *rec)
{
    release(ch);
    for (;;) {
        if (ch->rpos == ch->head_cache) {
            ch->head_cache = __atomic_load_n(&ch->sh->head, __ATOMIC_ACQUIRE);
            if (ch->rpos == ch->head_cache) {
                if (!__atomic_load_n(&ch->sh->closed, __ATOMIC_ACQUIRE))
                    return -EAGAIN;
                ch->head_cache = __atomic_load_n(&ch->sh->head, __ATOMIC_ACQUIRE);
                if (ch->rpos == ch->head_cache)
                    return ch->fraglen ? -EPROTO : 0;
            }
        }
        const unsigned char *p = ch->sh->data + (ch->rpos & ch->mask);
        uint32_t flags, len;
        get_header(p, &flags, &len);
        if (flags & (F_WRAP | F_ABORT)) {
            if (flags & F_WRAP)
                ch->rpos += ch->cap - (ch->rpos & ch->mask);
            else
                ch->rpos += HDR;
            ch->rnext = ch->rpos;
            if (flags & F_ABORT)
                ch->fraglen = 0;        /* its producer died mid-record */
            if (ch->ack_in && !ch->outstanding && !ch->fraglen)
                ch->acked = ch->rpos;
            continue;
        }
        size_t size = rec_size(len);
        if (len > ch->cap / 4 || size > ch->head_cache - ch->rpos)
            return -EPROTO;
        if (flags & F_REF) {
            cv_ref ref;
            uint32_t off, ilen;
            if (len != REF_LEN || !ch->pool || ch->fraglen || (flags & F_FRAG))
                return -EPROTO;
            memcpy(&ref, p + HDR, 8);
            memcpy(&off, p + HDR + 8, 4);
            memcpy(&ilen, p + HDR + 12, 4);
            unsigned char *d = cv_pool_data(ch->pool, ref);
            if (!d || (size_t)off + ilen > cv_pool_room(ch->pool, ref) || ilen > ch->max_item)
                return -EPROTO;
            memcpy(&rec->seq, p, 8);
            rec->flags = flags & ~F_INTERNAL;
            rec->len = ilen;
            rec->data = d + off;
            rec->ref = ref;
            ch->held = ref;
            ch->held_len = ilen;
            ch->rnext = ch->rpos + size;
        } else if ((flags & F_FRAG) || ch->fraglen) {
            /* A piece of a large record: join it in our own buffer. */
            if (ch->fraglen + len > ch->max_item)
                return -EPROTO;
            if (ch->fraglen + len > ch->fragcap) {
                size_t cap = ch->fragcap ? ch->fragcap : 65536;
                while (cap < ch->fraglen + len)
                    cap *= 2;
                ch->frag = cv_realloc(ch->frag, cap);
                ch->fragcap = cap;
            }
            memcpy(ch->frag + ch->fraglen, p + HDR, len);
            ch->fraglen += len;
            ch->rnext = ch->rpos + size;
            /* Read before release: once the piece's space is published its
             * producer may write the next record there. */
            uint64_t seq;
            memcpy(&seq, p, 8);
            release(ch);
            if (flags & F_FRAG)
                continue;
            rec->seq = seq;
            rec->flags = flags & ~F_INTERNAL;
            rec->len = (uint32_t)ch->fraglen;
            rec->data = ch->frag;
            rec->ref = 0;
            ch->fraglen = 0;
        } else {
            memcpy(&rec->seq, p, 8);
            rec->flags = flags;
            rec->len = len;
            rec->data = p + HDR;
            rec->ref = 0;
            ch->rnext = ch->rpos + size;
        }
        if (!(rec->flags & CV_REC_WATERMARK)) {
            ch->outstanding = ch->ack_in;
            ch->received++;
            if (ch->stats)
                __atomic_store_n(&ch->stats->received, ch->received, __ATOMIC_RELAXED);
        }
        return 1;
    }
}

/* Where ring_recv's fast path must stop: the end of what is known to be
 * published, and where the space read so far must be handed back.  A held
 * reference is released by the slow path. */
static void set_fast_rend(ring_channel *ch)
{
    if (ch->ack_in || ch->fraglen || ch->held || ch->held_len || !ch->can_read) {
        ch->fast_rend = 0;
        return;
    }
    uint64_t end = ch->tail_pub + ch->cap / 8;
    ch->fast_rend = ch->head_cache < end ? ch->head_cache : end;
}

/* Every case, then the fast path's new limit. */
SLOW_PATH static int ring_recv_slow(ring_channel *ch, cv_record *rec)
{
    int rc = ring_recv_general(ch, rec);
    set_fast_rend(ch);
    return rc;
}

/* As many plain records as are known to be there, up to MAX and below
 * fast_rend, in one go; the first record of any other kind stops it. */
static int ring_recv_many(cv_channel *base, cv_record *recs, int max)
{
    ring_channel *ch = (ring_channel *)base;
    uint64_t pos = ch->rnext, end = ch->fast_rend, head = ch->head_cache;
    const unsigned char *data = ch->sh->data;
    size_t mask = ch->mask, piece_max = ch->cap / 4;
    int n = 0;
    if (pos >= end)
        return 0;
    ch->rpos = pos;     /* releases what was handed out before */
    while (n < max && pos < end) {
        const unsigned char *p = data + (pos & mask);
        uint32_t flags, len;
        /* Where a record starts depends on the one before: ask early for
         * the lines ahead, published ones only (not those being written). */
        if (pos + PREFETCH_AHEAD < head)
            __builtin_prefetch(data + ((pos + PREFETCH_AHEAD) & mask));
        get_header(p, &flags, &len);
        size_t size = rec_size(len);
        if (flags || len > piece_max || size > head - pos)
            break;
        cv_record r = {.flags = 0, .len = len, .data = p + HDR, .ref = 0};
        memcpy(&r.seq, p, 8);
        recs[n++] = r;
        pos += size;
    }
    ch->rnext = pos;
    if (n) {
        /* The caller counts the others as it hands them out. */
        ch->received += (uint64_t)n;
        if (ch->stats)
            __atomic_store_n(&ch->stats->received, ch->received - (uint64_t)(n - 1),
                             __ATOMIC_RELAXED);
    }
    return n;
}

/* The common case first: a plain record starting below fast_rend, taken as
 * ring_recv_many takes them; anything else the slow way, which looks at the
 * record again. */
static int ring_recv(cv_channel *base, cv_record *rec)
{
    if (ring_recv_many(base, rec, 1) == 1)
        return 1;
    return ring_recv_slow((ring_channel *)base, rec);
}

static void ring_ack(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (!ch->ack_in)
        return;
    ch->rpos = ch->rnext;
    ch->acked = ch->rpos;
    ch->outstanding = 0;
    return_budget(ch);
    publish_tail(ch, ch->acked);
    drop_held(ch);
}

static void ring_set_ack(cv_channel *base, int ends)
{
    ring_channel *ch = (ring_channel *)base;
    ch->ack_in = !!(ends & CV_END_READ);
    ch->ack_out = !!(ends & CV_END_WRITE);
    ch->fast_wend = ch->fast_rend = 0;
}

/* A new process takes over a dead one's end: it starts from what the dead
 * one had published and drops the rest. */
static void ring_resume(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    ch->fast_wend = ch->fast_rend = 0;
    if (ch->can_write) {
        ch->wpos = ch->head_pub = ch->head_rung = __atomic_load_n(&ch->sh->head, __ATOMIC_ACQUIRE);
        ch->tail_cache = __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE);
        ch->unpub = 0;
        ch->frag_off = 0;
        ch->reserved = NULL;
        ch->sent = ch->stats ? ch->stats->sent : 0;
        ch->ref_sent = __atomic_load_n(&ch->sh->ref_sent, __ATOMIC_ACQUIRE);
        ch->ref_freed_cache = __atomic_load_n(&ch->sh->ref_freed, __ATOMIC_ACQUIRE);
        /* Pieces of a record it did not finish may be published: the
         * consumer is told to drop them before anything new. */
        ch->abort_pending = 1;
        (void)put_abort(ch);
    }
    if (ch->can_read) {
        ch->rpos = ch->rnext = ch->acked = ch->tail_pub = ch->head_cache =
            __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE);
        ch->fraglen = 0;
        ch->outstanding = 0;
        ch->held = 0;       /* the record still owns it: handed out again */
        ch->held_len = 0;
        ch->ref_freed = __atomic_load_n(&ch->sh->ref_freed, __ATOMIC_ACQUIRE);
        ch->received = ch->stats ? ch->stats->received : 0;
    }
}

static void ring_close_read(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    if (!ch->can_read)
        return;
    if (!ch->ack_in || !ch->outstanding)
        let_go(ch);
    __atomic_store_n(&ch->sh->reader_gone, 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    cv_bell_wake(ch->prod_bell);    /* end of stream: wake it even if not asleep yet */
    ch->can_read = 0;
    ch->fast_rend = 0;
    free(ch->frag);
    ch->frag = NULL;
    ch->fragcap = ch->fraglen = 0;
}

static uint64_t ring_queued(const cv_channel *base)
{
    const ring_channel *ch = (const ring_channel *)base;
    uint64_t s = __atomic_load_n(&ch->stats->sent, __ATOMIC_RELAXED);
    uint64_t r = __atomic_load_n(&ch->stats->received, __ATOMIC_RELAXED);
    if (ch->sent > s)
        s = ch->sent;
    return s > r ? s - r : 0;
}

/* The bytes between the consumer's published tail and the producer's
 * published head: records (and their headers) not yet freed. */
static int ring_fill(const cv_channel *base, uint64_t *bytes, uint64_t *capacity)
{
    const ring_channel *ch = (const ring_channel *)base;
    uint64_t tail = __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE);
    uint64_t head = __atomic_load_n(&ch->sh->head, __ATOMIC_ACQUIRE);
    *bytes = head > tail ? head - tail : 0;
    *capacity = ch->cap;
    return 0;
}

static void ring_destroy(cv_channel *base)
{
    ring_channel *ch = (ring_channel *)base;
    cv_shared_free(ch->sh, ch->map_bytes);
    free(ch->frag);
    free(ch);
}

static const struct cv_channel_ops ring_ops = {
    .keep = ring_keep,
    .send = ring_send,
    .send_ref = ring_send_ref,
    .reserve = ring_reserve,
    .commit = ring_commit,
    .flush = ring_flush,
    .pending = ring_pending,
    .publish = cv_ring_publish,
    .publish_each = ring_publish_each,
    .close_write = ring_close_write,
    .recv = ring_recv,
    .recv_many = ring_recv_many,
    .close_read = ring_close_read,
    .wait = cv_ring_wait,
    .queued = ring_queued,
    .fill = ring_fill,
    .destroy = ring_destroy,
    .ack = ring_ack,
    .publish_partial = ring_publish_partial,
    .arm = cv_ring_arm,
    .midway = ring_midway,
    .disarm = cv_ring_disarm,
    .set_ack = ring_set_ack,
    .resume = ring_resume,
};
