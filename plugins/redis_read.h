/* SPDX-License-Identifier: MIT */
/*
 * redis_read.h - the state of one redis:read process, shared by
 * redis_read.c (parameters, the connection, XREADGROUP, the stage's calls)
 * and redis_entries.c (what becomes of each entry read: emitted and kept
 * for its acknowledgement, moved to the dead stream, skipped; claims).
 * Functions returning int give 0 (or CONVEYOR_MORE), -EIO after an error
 * reply was reported, -ENOTCONN when the connection failed (the caller
 * reconnects), or another negative code.
 */
#ifndef CONVEYOR_REDIS_READ_H
#define CONVEYOR_REDIS_READ_H

#include "redis.h"

#define ACK_EVERY_MS 100    /* acknowledge at most this often ... */
#define ACK_BATCH 1000      /* ... unless this many ids are ready */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define ID_MAX 48           /* "MS-SEQ" with two 64-bit numbers */

/* An entry id, "MS-SEQ", as two numbers (smaller than its text, ordered). */
typedef struct entry_id { uint64_t ms, seq; } entry_id;

/* An emitted entry awaiting its acknowledgement. */
typedef struct unacked { uint64_t num; entry_id id; } unacked;

typedef struct ack_fifo {
    unacked *v;
    size_t head, len, cap;  /* a ring: v[head] is the oldest */
} ack_fifo;

typedef struct reader {
    redis_conn conn;
    const char *stream, *group, *field, *dead_stream;
    char consumer[320];
    uint64_t count, block_ms, claim_idle_ms, max_deliveries;
    int start_newest;
    char count_text[24], block_text[24], claim_idle_text[24];

    ack_fifo fifo;
    int reading_pending;        /* re-reading this consumer's own pending entries */
    char pending_from[ID_MAX];  /* ... after this id */
    uint64_t last_ack_ms;
    uint64_t next_claim_ms;
    char claim_cursor[ID_MAX + 1];  /* XPENDING's start: "-", or "(ID" after ID */

    int down;                   /* the connection is lost (the warning is out) */
    uint64_t down_since_ms, next_try_ms, backoff_ms;
    uint64_t skipped, dead;
} reader;

/* Reports an error reply R (freed) to COMMAND, naming the stream and the
 * group: -EIO. */
int redis_read_failed(conveyor_ctx *ctx, reader *rd, const char *command, redisReply *r);
/* Acknowledges the emitted entries the pipeline has finished
 * (conveyor_completed): at most every ACK_EVERY_MS unless ACK_BATCH are
 * ready, or all of them now (FORCE). */
int redis_ack_finished(conveyor_ctx *ctx, reader *rd, int force);
/* Takes every entry of ENTRIES (an XREADGROUP stream's array); PENDING:
 * they were delivered before, so their delivery counts matter. */
int redis_take_entries(conveyor_ctx *ctx, reader *rd, redisReply *entries, int pending);
/* One step of claiming other consumers' idle entries, when one is due. */
int redis_claim_step(conveyor_ctx *ctx, reader *rd);

#endif
