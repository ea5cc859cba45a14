/* SPDX-License-Identifier: MIT */
/*
 * channel_util.h - what the channel tests share: channels with their
 * shared counters and bells, records whose bytes say which they are, child
 * processes that report through their exit status, and the waiting send
 * and receive a stage does.
 */
#ifndef CV_TEST_CHANNEL_UTIL_H
#define CV_TEST_CHANNEL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "transport/channel.h"
#include "transport/pool.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* What a channel's ends share besides the channel: its counters and the
 * bells of its two processes (the host keeps them in shared memory). */
typedef struct shared_area {
    cv_channel_stats stats;
    cv_bell producer, consumer;
} shared_area;

/* The area of the channel made last. */
extern shared_area *area;

/* A channel in a fresh area; rings sleep at once, without spinning. */
cv_channel *new_ring(size_t cap, size_t max_item, size_t budget, cv_pool *pool);
cv_channel *new_pipe(size_t max_item);

uint64_t mix(uint64_t x);
/* The bytes of record SEQ: no two records, and no two places in one, alike.
 * Returns P. */
const void *fill(unsigned char *p, size_t len, uint64_t seq);
/* Whether DATA holds the LEN bytes of record SEQ. */
int holds(const void *data, size_t len, uint64_t seq);
/* A plain record (no reference) SEQ of LEN bytes with FLAGS, or a failed
 * assertion. */
void assert_record(const cv_record *rec, uint64_t seq, uint32_t flags, size_t len);

/* Children report through their exit status: cr_assert belongs to the
 * test's own process. */
#define CHILD_CHECK(cond, code) \
    do {                        \
        if (!(cond))            \
            _exit(code);        \
    } while (0)

/* fork(); the child dies with the test, since one left waiting on a
 * channel would hang the suite. */
pid_t spawn(void);
/* Waits for PID and asserts it exited with 0 (WHO names it). */
void reap(pid_t pid, const char *who);

/* Steps of a test across processes, one byte each way through a pipe; a
 * peer that died reads as end of file (hear returns 0), never as a hang. */
void tell(int fd);
int hear(int fd);

/* A send and a receive that wait for room or records, as a stage does. */
int send_wait(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data, size_t len);
int recv_wait(cv_channel *ch, cv_record *rec);

#endif
