/* SPDX-License-Identifier: MIT */
/*
 * channel.h - the one interface between processes.
 *
 * A channel carries records from exactly one producer process to exactly
 * one consumer process, in order, bounded: a full channel makes its producer
 * wait (back-pressure), nothing grows without limit.  A record is an item's
 * bytes plus the number of the source item it descends from (seq), which
 * joins with order = source use to restore input order, and flags.
 *
 * Both ends are created by the host before it forks; after the fork each
 * process keeps the ends it uses (cv_channel_keep) and drops the others, so
 * that end of stream is seen as soon as the one producer closes its end.
 *
 * Sending is buffered: records are written out when the buffer fills, on
 * cv_channel_flush, and before a process waits for input, so one item is
 * not one system call.  Sends never block one channel while another holds
 * data its consumer may need: cv_channels_wait() writes out whatever the
 * process's channels can take while it waits.
 */
#ifndef CV_CHANNEL_H
#define CV_CHANNEL_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>

#include "transport/pool.h"

/* A watermark carries no item: "the producer is done with every source item
 * up to seq" (used only on channels feeding an order = source join). */
#define CV_REC_WATERMARK 1u
/* Always with CV_REC_WATERMARK: a marker.  Its seq N is a number of
 * source process K of the pipeline's NS source processes (N - 1 is K
 * modulo NS: the program embedding a pipeline, or the input reader, is the
 * one source of its run), and says that every item of that source
 * numbered below N was sent before it on this channel.  Every process
 * passes it on once it came on every input that carries that source's
 * items, so when the output writer (or the program pulling the outputs)
 * has it, everything made of the source's items below N has come out: a
 * completion marker of a source stage, a flush of an embedded run.  With
 * one source process it is a watermark too; with several it says nothing
 * of the others' numbers.  Counted as a watermark (not in sent or
 * received). */
#define CV_REC_MARK 2u

typedef struct cv_record {
    uint64_t seq;
    uint32_t flags;
    uint32_t len;
    const void *data;     /* valid until the next receive on this channel */
    uint64_t ref;         /* the pool block DATA lies in (by reference), or 0 */
} cv_record;

/* Counters the producer and the consumer publish, in memory shared by all
 * processes (least-loaded balancing reads queued = sent - received). */
typedef struct cv_channel_stats {
    _Alignas(64) volatile uint64_t sent;      /* the producer's line */
    _Alignas(64) volatile uint64_t received;  /* the consumer's line */
} cv_channel_stats;

typedef struct cv_channel cv_channel;

/* A process's doorbell, in shared memory: a ring channel's producer rings
 * its consumer's bell after publishing records (and the consumer the
 * producer's after freeing space), but only when the bell's owner said it
 * is about to sleep (waiting).  One bell per process lets a process sleep
 * on all its channels at once (a join) with one futex. */
typedef struct cv_bell {
    uint32_t word;          /* futex word: bumped by every ring */
    uint32_t waiting;       /* the owner sleeps, or is about to (a ring of
                             * cv_channel_publish_each takes it back to 0) */
    int32_t handoff_cpu;    /* where the owner last rang a sleeper from just
                             * before it sleeps itself, or -1 */
    uint32_t pad0;
    struct cv_bell *rung_by; /* the bell of whoever woke the owner last */
    uint32_t armed;         /* the owner waits on its notify descriptor */
    int32_t notify_fd1;     /* that descriptor (an eventfd) + 1; 0: none */
    unsigned char pad[32];  /* one cache line per bell */
} cv_bell;

/* A program embedding a pipeline waits on a descriptor (poll, epoll), not
 * on a futex: ringing bell B also writes to eventfd FD while B is armed.
 * Set before the fork; FD must stay open in every process. */
void cv_bell_set_notify(cv_bell *b, int fd);
/* Wakes whoever sleeps on bell B, whether or not it said it waits. */
void cv_bell_wake(cv_bell *b);

/* Creates a channel (both ends, in the host).  STATS points into shared
 * memory.  Returns NULL with errno set on failure. */
cv_channel *cv_channel_create_pipe(cv_channel_stats *stats, size_t max_item);

/* The longest a process spins before sleeping on its doorbell (ring
 * transport), in nanoseconds; 0 never spins. */
void cv_ring_set_spin_limit(long ns);

/* A single-producer single-consumer ring of CAPACITY bytes (a power of two)
 * in an anonymous shared mapping; PRODUCER and CONSUMER are the bells of
 * the two processes.  POOL (or NULL) is where the items of the references
 * it carries live; the items it holds by reference are at most REF_BUDGET
 * bytes (one item always fits). */
cv_channel *cv_channel_create_ring(cv_channel_stats *stats, size_t max_item, size_t capacity,
                                   size_t ref_budget, cv_bell *producer, cv_bell *consumer,
                                   cv_pool *pool);

enum cv_channel_end { CV_END_NONE = 0, CV_END_WRITE = 1, CV_END_READ = 2 };
/* After fork: keep the given ends of this channel, close the others. */
void cv_channel_keep(cv_channel *ch, int ends);

/* Producer side.  0 or -errno (-EPIPE: the consumer is gone).  Inline,
 * below: it is called once per item. */
static inline int cv_channel_send(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data,
                                  size_t len);
/* Sends a reference to LEN bytes at offset OFF of pool block REF; the
 * record owns one count of the block, which the caller took for it
 * (cv_pool_hold) and which the consumer drops when done with the record.
 * 0, -EAGAIN, -EPIPE, or -ENOTSUP (a transport without references). */
int cv_channel_send_ref(cv_channel *ch, uint64_t seq, cv_ref ref, uint32_t off, uint32_t len);
/* Writes out buffered records; WAIT: until all are out, else what fits. */
int cv_channel_flush(cv_channel *ch, int wait);
int cv_channel_pending(const cv_channel *ch);   /* buffered bytes not yet out */
/* Makes what this end did visible to the other end without waiting: the
 * producer's records, the consumer's freed space.  Called before a process
 * sleeps. */
void cv_channel_publish(cv_channel *ch);
/* As cv_channel_publish, for a producer that publishes after every item
 * because it may stop at any one and never waits after its last (a
 * program pushing into its pipeline): a consumer that sleeps is rung by
 * the first publish that finds it asleep, not by every publish until it
 * runs again.  Pipes: cv_channel_publish. */
void cv_channel_publish_each(cv_channel *ch);
/* Building a record in place: a pointer to room for MAX_LEN bytes in the
 * channel's own buffer (NULL with errno EAGAIN when full, ENOTSUP when the
 * record is too large to be built in place, EMSGSIZE when it is larger
 * than an item may be), then the commit that sends the first LEN of them. */
void *cv_channel_reserve(cv_channel *ch, size_t max_len);
int cv_channel_commit(cv_channel *ch, uint64_t seq, size_t len);

/* Flushes and closes the write end: the consumer sees end of stream. */
int cv_channel_close_write(cv_channel *ch);

/* Consumer side: 1 with a record, 0 at end of stream, -EAGAIN when nothing
 * is there now, other -errno (-EPROTO: a malformed record).  Inline, below. */
static inline int cv_channel_recv(cv_channel *ch, cv_record *rec);
/* Up to MAX items (plain records: no watermark, no reference) received at
 * once into RECS, in order; they stay valid until the next receive on this
 * channel.  0 when none can be taken that way now: cv_channel_recv then
 * says why (nothing yet, the end, a record of another kind).  The stats'
 * received (what least-loaded balancing reads) counts the first one only:
 * the caller counts each other one there as it starts on it.  Inline. */
static inline int cv_channel_recv_many(cv_channel *ch, cv_record *recs, int max);
void cv_channel_close_read(cv_channel *ch);

/* Waits until at least one of the channels can make progress: a READ
 * channel has data or end of stream, a WRITE channel with pending bytes can
 * take some (and those are then written out), or EXTRA_FD (-1: none) is
 * readable.  TIMEOUT_MS -1 = forever.  SIGMASK, when not NULL, is the
 * signal mask in force while waiting (ppoll).  Returns 0, -EINTR when a
 * signal came, or another -errno. */
int cv_channels_wait(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                     int extra_fd, int timeout_ms, const sigset_t *sigmask);

/* As cv_channels_wait, but sleeping on descriptor FD (readable when one of
 * the channels may progress, and whenever its owner makes it so): the
 * bells of the ring channels are armed (they write to their notify
 * descriptor when rung), the pipes are polled with FD.  A program waits
 * so for both its ends at once, which no single futex allows. */
int cv_channels_wait_fd(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                        int fd, int timeout_ms);
/* Arms the bells of READ's channels so that their notify descriptor
 * becomes readable when data comes: 1 when data is already there (then
 * nothing is armed), else 0; cv_channels_disarm undoes it.  Pipes need
 * nothing (their descriptors are readable by themselves): 0. */
int cv_channels_arm(cv_channel **read, size_t nread);
void cv_channels_disarm(cv_channel **read, size_t nread);
/* 1 when a record went out in part (a large one, in pieces): the next send
 * on this channel must be the same record again. */
int cv_channel_midway(const cv_channel *ch);
/* The descriptor a pipe channel's consumer reads, or -1 (rings). */
int cv_channel_read_fd(const cv_channel *ch);
/* The descriptor a pipe channel's producer writes, or -1 (rings). */
int cv_channel_write_fd(const cv_channel *ch);

uint64_t cv_channel_queued(const cv_channel *ch);  /* sent - received, shared */

/* What the channel holds now, in bytes, and what it can hold, read from
 * the shared state in any process (the host's metrics).  0, or -ENOTSUP:
 * the transport cannot say (a pipe's bytes are in the kernel). */
int cv_channel_fill(const cv_channel *ch, uint64_t *bytes, uint64_t *capacity);

/* Supervised restarts (restart = on-failure; ring transport only).
 * set_ack: the ENDS this process holds work item by item: the consumer's
 * space is freed only by cv_channel_ack (after process() returned), the
 * producer's records are published only at item boundaries (publish).
 * resume: a new process takes over the ends of one that died, starting from
 * what it had published and acknowledged.  Return 0, or -ENOTSUP. */
int cv_channel_set_ack(cv_channel *ch, int ends);
void cv_channel_ack(cv_channel *ch);
/* As cv_channel_publish, in the middle of an item: an item by item producer
 * publishes then only when its consumer has nothing else to read. */
void cv_channel_publish_partial(cv_channel *ch);
int cv_channel_resume(cv_channel *ch);
void cv_channel_destroy(cv_channel *ch);

/* The implementations' table; every channel struct starts with a pointer
 * to one (channel.c dispatches through it). */
struct cv_channel_ops {
    void (*keep)(cv_channel *ch, int ends);
    int (*send)(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data, size_t len);
    int (*send_ref)(cv_channel *ch, uint64_t seq, cv_ref ref, uint32_t off, uint32_t len);
    void *(*reserve)(cv_channel *ch, size_t max_len);
    int (*commit)(cv_channel *ch, uint64_t seq, size_t len);
    int (*flush)(cv_channel *ch, int wait);
    int (*pending)(const cv_channel *ch);
    void (*publish)(cv_channel *ch);
    void (*publish_each)(cv_channel *ch);  /* NULL: publish */
    int (*close_write)(cv_channel *ch);
    int (*recv)(cv_channel *ch, cv_record *rec);
    int (*recv_many)(cv_channel *ch, cv_record *recs, int max);    /* NULL: none */
    void (*close_read)(cv_channel *ch);
    int (*wait)(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                int extra_fd, int timeout_ms, const sigset_t *sigmask);
    uint64_t (*queued)(const cv_channel *ch);
    int (*fill)(const cv_channel *ch, uint64_t *bytes, uint64_t *capacity); /* NULL: unknown */
    void (*destroy)(cv_channel *ch);
    /* Supervised restarts (ring only; NULL where not supported). */
    void (*ack)(cv_channel *ch);
    void (*publish_partial)(cv_channel *ch);
    void (*set_ack)(cv_channel *ch, int ends);
    void (*resume)(cv_channel *ch);
    /* Descriptor waits (rings only; NULL for pipes, which poll). */
    int (*arm)(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite);
    void (*disarm)(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite);
    int (*read_fd)(const cv_channel *ch);   /* NULL: none */
    int (*write_fd)(const cv_channel *ch);  /* NULL: none */
    int (*midway)(const cv_channel *ch);    /* NULL: never */
};

struct cv_channel {
    const struct cv_channel_ops *ops;
};

/* The per-item calls dispatch here, without a call of their own. */
static inline int cv_channel_send(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data,
                                  size_t len)
{
    return ch->ops->send(ch, seq, flags, data, len);
}

static inline int cv_channel_recv(cv_channel *ch, cv_record *rec)
{
    return ch->ops->recv(ch, rec);
}

static inline int cv_channel_recv_many(cv_channel *ch, cv_record *recs, int max)
{
    return ch->ops->recv_many ? ch->ops->recv_many(ch, recs, max) : 0;
}

#endif
