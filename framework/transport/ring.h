/* SPDX-License-Identifier: MIT */
/*
 * ring.h - what the two files of the ring transport share: the ring in
 * shared memory, the state of a process's ends, and ringing a bell
 * (channel_ring.c moves the records, ring_wait.c sleeps and wakes).
 */
#ifndef CV_RING_H
#define CV_RING_H

#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/channel.h"
#include "transport/pool.h"

/* The ring in shared memory.  Positions count bytes from the start and
 * never wrap; a record's place in DATA is its position & mask. */
typedef struct ring_shared {
    /* written by the producer */
    _Alignas(64) uint64_t head;     /* bytes published */
    uint64_t ref_sent;              /* item bytes sent by reference, up to head */
    uint32_t closed;                /* end of stream, after the last head */
    /* written by the consumer */
    _Alignas(64) uint64_t tail;     /* bytes freed */
    uint64_t ref_freed;             /* item bytes by reference it is done with */
    uint32_t reader_gone;
    /* written by the producer before it sleeps: it waits for space */
    _Alignas(64) uint32_t space_wanted;
    _Alignas(64) unsigned char data[];
} ring_shared;

/* A process's ends of one channel (a forked copy each). */
typedef struct ring_channel {
    cv_channel base;
    ring_shared *sh;
    size_t map_bytes;
    size_t cap, mask;
    cv_bell *prod_bell, *cons_bell;
    cv_channel_stats *stats;
    cv_pool *pool;
    size_t ref_cap;                 /* item bytes it may hold by reference */
    size_t max_item;
    /* The per-item fast paths' limits, recomputed by the slow paths; 0
     * sends every call the slow way (and must be 0 whenever the fast path
     * would be wrong: acknowledgement, fragments, an abort, a reservation,
     * a held reference). */
    size_t fast_max;                /* the largest record ring_send takes directly */
    uint64_t fast_wend;             /* ring_send: records may end up to here */
    uint64_t fast_rend;             /* ring_recv: records may start below here */
    int can_write, can_read;
    /* A stage with restart = on-failure acknowledges each item: its input's
     * free space (tail) moves only past items it finished, and its outputs
     * are published at item boundaries, so a restarted process resumes
     * exactly where the dead one had finished. */
    int ack_in, ack_out;
    uint64_t acked;                 /* consumer: end of the last finished item */
    int outstanding;                /* consumer: an item handed out, not acked */
    /* producer */
    uint64_t wpos, head_pub, head_rung, tail_cache;
    uint64_t ref_sent, ref_freed_cache;
    int want_space;                 /* a send found the ring full */
    unsigned unpub;
    uint64_t sent;
    size_t frag_off;                /* a fragmented record under way */
    unsigned char *reserved;        /* a record being built in place */
    int abort_pending;              /* resumed: an abort marker goes first */
    /* consumer */
    uint64_t rpos, rnext, head_cache, tail_pub;
    uint64_t received;
    unsigned char *frag;
    size_t fragcap, fraglen;
    cv_ref held;                    /* the reference handed out last, until released */
    uint32_t held_len;
    uint64_t ref_freed;
} ring_channel;

/* SELF is the ringer's own bell, HANDOFF whether the ringer is about to
 * wait: the woken one may give way to it (after_ring).  ring_bell_taken
 * rings whatever the waiting flag says (the caller looked at it). */
static inline void ring_bell_taken(cv_bell *b, cv_bell *self, int handoff)
{
    __atomic_store_n(&self->handoff_cpu, handoff ? sched_getcpu() : -1, __ATOMIC_RELAXED);
    __atomic_store_n(&b->rung_by, self, __ATOMIC_RELAXED);
    cv_bell_wake(b);
}

static inline void ring_bell(cv_bell *b, cv_bell *self, int handoff)
{
    /* The caller published and fenced; wake only a sleeper. */
    if (__atomic_load_n(&b->waiting, __ATOMIC_RELAXED))
        ring_bell_taken(b, self, handoff);
}

/* Both ends' cv_channel_publish (channel_ring.c). */
void cv_ring_publish(cv_channel *base);

/* cv_channels_wait for rings (ring_wait.c). */
int cv_ring_wait(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                 int extra_fd, int timeout_ms, const sigset_t *sigmask);

/* Descriptor waits (cv_channels_wait_fd, cv_channels_arm). */
int cv_ring_arm(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite);
void cv_ring_disarm(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite);

#endif
