/* SPDX-License-Identifier: MIT */
/*
 * redis_read.c - redis:read, a source: XREADGROUP from `stream` as one
 * consumer of `group`.
 *
 * On start, and after every reconnection, the consumer first re-reads its
 * own pending entries (id 0 onwards, until none are left), then reads new
 * ones (id >) with a short BLOCK so that a stop request is seen.  Each
 * emitted entry's id is kept with the item number it got, in a FIFO; the
 * ids up to the pipeline's completion watermark (conveyor_completed) are
 * acknowledged in batches, so an entry is XACKed only once everything made
 * of it is finished: delivery is at least once.  Other consumers' entries
 * idle for longer than claim_idle are taken over, and an entry delivered
 * more than max_deliveries times goes to dead_stream (redis_entries.c).
 */
#include "redis_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const conveyor_param_spec redis_read_params[] = {
    { .name = "url", .summary = "redis://HOST:PORT/DB or unix:///PATH?db=N",
      .default_value = REDIS_URL_DEFAULT },
    { .name = "stream", .summary = "the stream to read (required)", .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "group", .summary = "the consumer group, created (MKSTREAM) when missing (required)",
      .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "consumer", .summary = "this consumer's name in the group (default HOSTNAME:PID:REPLICA "
                                     "with the host's pid)" },
    { .name = "start", .summary = "oldest or newest: where a group created here starts",
      .default_value = "oldest" },
    { .name = "count", .summary = "entries per read", .default_value = "256" },
    { .name = "block", .summary = "the longest one read waits for new entries", .default_value = "100ms" },
    { .name = "claim_idle", .summary = "take over other consumers' entries pending for longer (0: never)",
      .default_value = "60s" },
    { .name = "field", .summary = "the entry field that is the item", .default_value = "data" },
    { .name = "max_deliveries", .summary = "an entry delivered more often goes to dead_stream "
                                           "(0: no limit)", .default_value = "0" },
    { .name = "dead_stream", .summary = "where entries delivered too often, or without the field, go" },
    { .name = NULL },
};

/* --- parameters ------------------------------------------------------------ */

static int read_config(conveyor_ctx *ctx, reader *rd)
{
    const char *start = conveyor_param(ctx, "start");
    const char *consumer = conveyor_param(ctx, "consumer");

    if (redis_param_url(ctx, &rd->conn, 5000) < 0 ||
        !(rd->stream = redis_param_required(ctx, "redis:read", "stream")) ||
        !(rd->group = redis_param_required(ctx, "redis:read", "group")))
        return -EINVAL;
    if (start && strcmp(start, "oldest") != 0 && strcmp(start, "newest") != 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "start must be oldest or newest, not '%s'", start);
        return -EINVAL;
    }
    rd->start_newest = start && strcmp(start, "newest") == 0;
    if (redis_param_uint(ctx, "count", 256, 1, 1000000, &rd->count) < 0 ||
        redis_param_ms(ctx, "block", 100, 60000, &rd->block_ms) < 0 ||
        redis_param_ms(ctx, "claim_idle", 60000, UINT32_MAX, &rd->claim_idle_ms) < 0 ||
        redis_param_uint(ctx, "max_deliveries", 0, 0, UINT32_MAX, &rd->max_deliveries) < 0)
        return -EINVAL;
    if (!(rd->field = conveyor_param(ctx, "field")))
        rd->field = "data";
    rd->dead_stream = conveyor_param(ctx, "dead_stream");
    if (rd->max_deliveries && !rd->dead_stream) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                     "max_deliveries needs dead_stream = NAME (where those entries go)");
        return -EINVAL;
    }
    if (consumer && !*consumer) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "consumer must not be empty");
        return -EINVAL;
    }
    if (consumer) {
        snprintf(rd->consumer, sizeof rd->consumer, "%s", consumer);
    } else {
        /* The host's pid, not this process's: a stage restarted by
         * restart = on-failure keeps its name and so its pending entries. */
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(rd->consumer, sizeof rd->consumer, "%s:%d:%u", host, (int)getppid(),
                 conveyor_replica(ctx));
    }
    snprintf(rd->count_text, sizeof rd->count_text, "%" PRIu64, rd->count);
    snprintf(rd->block_text, sizeof rd->block_text, "%" PRIu64, rd->block_ms);
    snprintf(rd->claim_idle_text, sizeof rd->claim_idle_text, "%" PRIu64, rd->claim_idle_ms);
    return 0;
}

int redis_read_check(conveyor_ctx *ctx)
{
    reader rd;
    memset(&rd, 0, sizeof rd);
    return read_config(ctx, &rd) < 0 ? -1 : 0;
}

/* Creates the group (and the stream) unless it exists: 0, -EIO after an
 * error reply was reported, or -ENOTCONN when the connection failed. */
static int ensure_group(conveyor_ctx *ctx, reader *rd)
{
    const char *argv[] = {"XGROUP", "CREATE", rd->stream, rd->group, rd->start_newest ? "$" : "0",
                          "MKSTREAM"};
    size_t lens[6];
    redisReply *r;

    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (!(r = redis_conn_cmd(&rd->conn, 6, argv, lens)))
        return -ENOTCONN;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
        return redis_read_failed(ctx, rd, "XGROUP CREATE", r);
    freeReplyObject(r);
    return 0;
}

/* The connection failed: warns once per outage and schedules a retry. */
static void lost(conveyor_ctx *ctx, reader *rd)
{
    uint64_t now = redis_now_ms();

    redis_conn_note_error(&rd->conn);
    redis_conn_close(&rd->conn);
    if (!rd->down) {
        conveyor_log(ctx, CONVEYOR_LOG_WARNING,
                     "stream '%s': lost the connection to %s (%s); reconnecting", rd->stream,
                     rd->conn.url_text, rd->conn.why);
        rd->down = 1;
        rd->down_since_ms = now;
        rd->backoff_ms = BACKOFF_MIN_MS;
        rd->next_try_ms = now;
    }
}

static void restart_pending(reader *rd)
{
    rd->reading_pending = 1;
    snprintf(rd->pending_from, sizeof rd->pending_from, "0-0");
}

/* One connection attempt when one is due, else a short sleep (a stop
 * request ends it early): 0 whether or not it worked, or -EIO when
 * Redis refused the group. */
static int reconnect(conveyor_ctx *ctx, reader *rd)
{
    uint64_t now = redis_now_ms();
    int rc;

    if (now < rd->next_try_ms) {
        uint64_t ms = rd->next_try_ms - now < 100 ? rd->next_try_ms - now : 100;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (redis_conn_open(&rd->conn) == 0) {
        if ((rc = ensure_group(ctx, rd)) == -EIO)
            return rc;
        if (rc == 0) {
            conveyor_log(ctx, CONVEYOR_LOG_WARNING,
                         "stream '%s': connected to %s again after %.1f s; re-reading this "
                         "consumer's pending entries", rd->stream, rd->conn.url_text,
                         (double)(redis_now_ms() - rd->down_since_ms) / 1000.0);
            rd->down = 0;
            restart_pending(rd);
            return 0;
        }
    }
    redis_conn_close(&rd->conn);
    rd->next_try_ms = redis_now_ms() + rd->backoff_ms;
    rd->backoff_ms = rd->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rd->backoff_ms * 2;
    return 0;
}

/* One XREADGROUP: this consumer's pending entries after pending_from, or
 * new ones.  CONVEYOR_MORE, or a negative code. */
static int read_step(conveyor_ctx *ctx, reader *rd)
{
    const char *argv[12];
    size_t lens[12];
    int n = 0, rc;
    redisReply *r, *entries, *last;

#define ARG(s) (argv[n] = (s), lens[n] = strlen(s), n++)
    ARG("XREADGROUP");
    ARG("GROUP");
    ARG(rd->group);
    ARG(rd->consumer);
    ARG("COUNT");
    ARG(rd->count_text);
    if (!rd->reading_pending) {
        ARG("BLOCK");
        ARG(rd->block_text);
    }
    ARG("STREAMS");
    ARG(rd->stream);
    ARG(rd->reading_pending ? rd->pending_from : ">");
#undef ARG
    if (!(r = redis_conn_cmd(&rd->conn, n, argv, lens)))
        return -ENOTCONN;
    if (r->type == REDIS_REPLY_ERROR)
        return redis_read_failed(ctx, rd, "XREADGROUP", r);
    if (r->type != REDIS_REPLY_ARRAY || !r->elements) {     /* nil: nothing new in time */
        freeReplyObject(r);
        if (rd->reading_pending)
            rd->reading_pending = 0;
        return CONVEYOR_MORE;
    }
    /* [[stream, [entry, ...]]] */
    entries = r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2
                  ? r->element[0]->element[1] : NULL;
    if (!entries || entries->type != REDIS_REPLY_ARRAY || !entries->elements) {
        if (rd->reading_pending)
            rd->reading_pending = 0;
        freeReplyObject(r);
        return CONVEYOR_MORE;
    }
    rc = redis_take_entries(ctx, rd, entries, rd->reading_pending);
    last = entries->element[entries->elements - 1];
    if (rd->reading_pending && last->type == REDIS_REPLY_ARRAY && last->elements == 2)
        snprintf(rd->pending_from, sizeof rd->pending_from, "%s", last->element[0]->str);
    freeReplyObject(r);
    return rc < 0 ? rc : CONVEYOR_MORE;
}

/* --- the stage ------------------------------------------------------------- */

int redis_read_init(conveyor_ctx *ctx)
{
    reader *rd = calloc(1, sizeof *rd);
    int rc;

    if (!rd)
        return -ENOMEM;
    if (read_config(ctx, rd) < 0) {
        free(rd);
        return -EINVAL;
    }
    if (redis_conn_open(&rd->conn) < 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': cannot connect to %s: %s", rd->stream,
                     rd->conn.url_text, rd->conn.why);
        free(rd);
        return -EIO;
    }
    if ((rc = ensure_group(ctx, rd)) < 0) {
        if (rc == -ENOTCONN)
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': lost the connection to %s: %s",
                         rd->stream, rd->conn.url_text, rd->conn.why);
        redis_conn_close(&rd->conn);
        free(rd);
        return rc;
    }
    restart_pending(rd);
    snprintf(rd->claim_cursor, sizeof rd->claim_cursor, "-");
    rd->last_ack_ms = redis_now_ms();
    conveyor_set_userdata(ctx, rd);
    return 0;
}

int redis_read_produce(conveyor_ctx *ctx)
{
    reader *rd = conveyor_userdata(ctx);
    int rc;

    if (conveyor_stopping(ctx))
        return CONVEYOR_END;
    if (rd->down || redis_conn_broken(&rd->conn))
        return reconnect(ctx, rd) < 0 ? -EIO : CONVEYOR_MORE;
    /* No claims while this consumer's own pending entries are read again:
     * those would then include what it just claimed, emitted twice. */
    if ((rc = redis_ack_finished(ctx, rd, 0)) == 0 &&
        (rd->reading_pending || (rc = redis_claim_step(ctx, rd)) == 0))
        rc = read_step(ctx, rd);
    if (rc == -ENOTCONN) {
        /* hiredis 0.14 retries a read the stop signal interrupted (the
         * BLOCK then ends it); later versions fail the context with
         * EINTR.  Either way a stop is no outage to report. */
        if (conveyor_stopping(ctx))
            return CONVEYOR_END;
        lost(ctx, rd);
        return CONVEYOR_MORE;
    }
    return rc;
}

void redis_read_fini(conveyor_ctx *ctx)
{
    reader *rd = conveyor_userdata(ctx);

    if (!rd)
        return;
    if (!redis_conn_broken(&rd->conn))
        redis_ack_finished(ctx, rd, 1);
    if (rd->skipped || rd->dead)
        conveyor_log(ctx, CONVEYOR_LOG_INFO, "stream '%s': %" PRIu64 " entries skipped, %" PRIu64
                     " moved to dead_stream", rd->stream, rd->skipped, rd->dead);
    redis_conn_close(&rd->conn);
    free(rd->fifo.v);
    free(rd);
    conveyor_set_userdata(ctx, NULL);
}
