/* SPDX-License-Identifier: MIT */
/*
 * pool.h - the shared pool that large items live in, so that channels carry
 * references to them instead of their bytes (ring transport).
 *
 * The host maps the pool before the first fork (anonymous and shared: it has
 * no name, so it can never be left behind; its pages are touched only when
 * used).  Any process allocates a block for an item, fills it once, and
 * sends references to it; every reference in a channel owns one count of
 * the block, and the consumer drops that count when it is done with the
 * record, so a replicate shares one copy among its branches and a stage
 * passing its input on unchanged copies nothing.  The last drop frees the
 * block.
 *
 * A full pool is never waited for: the producer then sends the item's bytes
 * as before.  So the pool can never deadlock a pipeline, and memory stays
 * bounded by the pool plus the channels.  Counts owned by a process that
 * crashed are not recovered (a restarted stage leaks at most what its dead
 * predecessor held); the pool goes away with the pipeline.
 */
#ifndef CV_POOL_H
#define CV_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct cv_pool cv_pool;

/* A reference: the block's offset in the pool, never 0. */
typedef uint64_t cv_ref;

/* Maps a pool of about SIZE bytes (host, before forking).  NULL with errno
 * set on failure. */
cv_pool *cv_pool_create(size_t size);
void cv_pool_destroy(cv_pool *pool);

/* A block for LEN bytes with one count, owned by the caller; returns where
 * the bytes go and sets *REF.  NULL when the pool has no room now. */
void *cv_pool_alloc(cv_pool *pool, size_t len, cv_ref *ref);

/* Adds one count to a block the caller holds a count of (or may use: the
 * record it is processing). */
void cv_pool_hold(cv_pool *pool, cv_ref ref);

/* Drops one count; the last frees the block. */
void cv_pool_drop(cv_pool *pool, cv_ref ref);

/* The first byte of a block's data, or NULL for a reference that cannot be
 * one of this pool's blocks (a corrupt record). */
void *cv_pool_data(cv_pool *pool, cv_ref ref);

/* The bytes a block can hold (0 for a bad reference). */
size_t cv_pool_room(cv_pool *pool, cv_ref ref);

/* Counters for tests and reports. */
typedef struct cv_pool_stats {
    size_t size;            /* bytes the blocks may use in all */
    size_t used;            /* bytes in live blocks now */
    uint64_t allocs;        /* blocks handed out */
    uint64_t full;          /* allocations refused for want of room */
} cv_pool_stats;
void cv_pool_get_stats(cv_pool *pool, cv_pool_stats *st);

#endif
