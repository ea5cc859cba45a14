/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the shared pool of large items (pool.h).
 *
 * Blocks are runs of 4 KiB pages found first-fit in a bitmap, under one
 * robust process-shared mutex: large items are few (one per 64 KiB or more
 * of data), so an allocation costs far less than the copy it saves, and
 * first-fit keeps reusing the same low pages, which stay hot in the cache and
 * leave the rest of the pool untouched (an anonymous shared mapping costs
 * memory only for the pages touched).  A block starts with a header holding
 * its count; the count is changed with atomics, the lock is taken only to
 * allocate and to free.
 *
 * A process that dies holding the lock leaves the bitmap consistent or, at
 * worst, with pages marked used that nobody holds: a leak, never two owners
 * of one page (a block's bits are set before its address is handed out and
 * cleared only after its last count is gone).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "transport/pool.h"
#include "transport/shm.h"
#include "base/util.h"

#define PAGE 4096u
#define BLOCK_HDR 64u           /* the data stays 64-byte aligned */
#define BLOCK_MAGIC 0x636f6e76u

typedef struct pool_shared {
    pthread_mutex_t lock;
    size_t npages;
    size_t data_off;            /* where page 0 starts, from the mapping */
    size_t used_pages;
    uint64_t allocs, full;
    uint64_t bitmap[];          /* a bit per page: 1 = in a live block */
} pool_shared;

typedef struct block_hdr {
    uint32_t refs;
    uint32_t pages;
    uint32_t magic;
} block_hdr;

struct cv_pool {
    pool_shared *sh;
    size_t map_bytes;
};

cv_pool *cv_pool_create(size_t size)
{
    size_t npages = size / PAGE / 64 * 64;   /* whole bitmap words */
    if (npages == 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t head = sizeof(pool_shared) + npages / 64 * sizeof(uint64_t);
    size_t data_off = (head + PAGE - 1) / PAGE * PAGE;
    size_t map_bytes = data_off + npages * PAGE;
    /* Not populated: pages cost memory only once a block uses them. */
    void *m = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    pool_shared *sh = m;
    int rc = cv_robust_mutexes_init(&sh->lock, 1);
    if (rc != 0) {
        munmap(m, map_bytes);
        errno = -rc;
        return NULL;
    }
    sh->npages = npages;
    sh->data_off = data_off;
    cv_pool *pool = cv_calloc(1, sizeof *pool);
    pool->sh = sh;
    pool->map_bytes = map_bytes;
    return pool;
}

void cv_pool_destroy(cv_pool *pool)
{
    if (!pool)
        return;
    munmap(pool->sh, pool->map_bytes);
    free(pool);
}

static void pool_lock(pool_shared *sh)
{
    /* A holder that died leaves at most leaked pages (see above). */
    if (pthread_mutex_lock(&sh->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&sh->lock);
}

static int page_used(const uint64_t *bm, size_t i)
{
    return (int)(bm[i / 64] >> (i % 64) & 1);
}

/* The first run of N free pages, or -1. */
static long find_run(const uint64_t *bm, size_t npages, size_t n)
{
    size_t run = 0, start = 0;
    for (size_t i = 0; i < npages;) {
        if (i % 64 == 0 && (bm[i / 64] == UINT64_MAX || bm[i / 64] == 0)) {
            if (bm[i / 64]) {
                run = 0;
            } else {
                if (!run)
                    start = i;
                run += 64;
                if (run >= n)
                    return (long)start;
            }
            i += 64;
            continue;
        }
        if (page_used(bm, i)) {
            run = 0;
        } else {
            if (!run)
                start = i;
            if (++run >= n)
                return (long)start;
        }
        i++;
    }
    return -1;
}

static void mark(uint64_t *bm, size_t first, size_t n, int used)
{
    for (size_t i = first; i < first + n; i++) {
        uint64_t bit = (uint64_t)1 << (i % 64);
        if (used)
            bm[i / 64] |= bit;
        else
            bm[i / 64] &= ~bit;
    }
}

static block_hdr *block_of(cv_pool *pool, cv_ref ref)
{
    pool_shared *sh = pool->sh;
    if (ref < sh->data_off || ref >= pool->map_bytes || (ref - sh->data_off) % PAGE)
        return NULL;
    block_hdr *b = (block_hdr *)((unsigned char *)sh + ref);
    if (b->magic != BLOCK_MAGIC || b->pages == 0 ||
        ref + (size_t)b->pages * PAGE > pool->map_bytes)
        return NULL;
    return b;
}

void *cv_pool_alloc(cv_pool *pool, size_t len, cv_ref *ref)
{
    pool_shared *sh = pool->sh;
    if (len > sh->npages * PAGE - BLOCK_HDR)
        return NULL;
    size_t n = (len + BLOCK_HDR + PAGE - 1) / PAGE;
    pool_lock(sh);
    long first = find_run(sh->bitmap, sh->npages, n);
    if (first < 0) {
        sh->full++;
        pthread_mutex_unlock(&sh->lock);
        return NULL;
    }
    mark(sh->bitmap, (size_t)first, n, 1);
    sh->used_pages += n;
    sh->allocs++;
    pthread_mutex_unlock(&sh->lock);

    size_t off = sh->data_off + (size_t)first * PAGE;
    block_hdr *b = (block_hdr *)((unsigned char *)sh + off);
    b->pages = (uint32_t)n;
    b->magic = BLOCK_MAGIC;
    __atomic_store_n(&b->refs, 1, __ATOMIC_RELEASE);
    *ref = off;
    return (unsigned char *)b + BLOCK_HDR;
}

void cv_pool_hold(cv_pool *pool, cv_ref ref)
{
    block_hdr *b = block_of(pool, ref);
    if (b)
        __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
}

void cv_pool_drop(cv_pool *pool, cv_ref ref)
{
    block_hdr *b = block_of(pool, ref);
    if (!b)
        return;
    uint32_t left = __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
    if (left != 0)
        return;
    pool_shared *sh = pool->sh;
    size_t n = b->pages;
    b->magic = 0;
    pool_lock(sh);
    mark(sh->bitmap, (ref - sh->data_off) / PAGE, n, 0);
    sh->used_pages -= n;
    pthread_mutex_unlock(&sh->lock);
}

void *cv_pool_data(cv_pool *pool, cv_ref ref)
{
    block_hdr *b = block_of(pool, ref);
    return b ? (unsigned char *)b + BLOCK_HDR : NULL;
}

size_t cv_pool_room(cv_pool *pool, cv_ref ref)
{
    block_hdr *b = block_of(pool, ref);
    return b ? (size_t)b->pages * PAGE - BLOCK_HDR : 0;
}

void cv_pool_get_stats(cv_pool *pool, cv_pool_stats *st)
{
    pool_shared *sh = pool->sh;
    pool_lock(sh);
    st->size = sh->npages * PAGE;
    st->used = sh->used_pages * PAGE;
    st->allocs = sh->allocs;
    st->full = sh->full;
    pthread_mutex_unlock(&sh->lock);
}
