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
 * idle for longer than claim_idle are taken over (XPENDING IDLE, XCLAIM); an entry
 * delivered more than max_deliveries times goes to dead_stream.
 */
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* --- entry ids ------------------------------------------------------------- */

static int id_parse(const char *s, entry_id *id)
{
    char *end;
    errno = 0;
    id->ms = strtoull(s, &end, 10);
    if (errno || *end != '-')
        return -1;
    id->seq = strtoull(end + 1, &end, 10);
    return errno || *end ? -1 : 0;
}

static int id_cmp(entry_id a, entry_id b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

/* --- the FIFO of emitted, unacknowledged entries --------------------------- */

static int fifo_push(ack_fifo *f, uint64_t num, entry_id id)
{
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1024;
        unacked *v = malloc(cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        for (size_t i = 0; i < f->len; i++)
            v[i] = f->v[(f->head + i) % f->cap];
        free(f->v);
        f->v = v;
        f->cap = cap;
        f->head = 0;
    }
    f->v[(f->head + f->len) % f->cap] = (unacked){num, id};
    f->len++;
    return 0;
}

static const unacked *fifo_at(const ack_fifo *f, size_t i)
{
    return &f->v[(f->head + i) % f->cap];
}

static void fifo_pop(ack_fifo *f, size_t n)
{
    f->head = f->cap ? (f->head + n) % f->cap : 0;
    f->len -= n;
}

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

/* --- commands -------------------------------------------------------------- */

/* Reports an error reply to COMMAND: "stream 'S': COMMAND failed: MESSAGE". */
static int redis_failed(conveyor_ctx *ctx, reader *rd, const char *command, redisReply *r)
{
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s', group '%s': %s failed: %s", rd->stream,
                 rd->group, command, r->str);
    freeReplyObject(r);
    return -EIO;
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
        return redis_failed(ctx, rd, "XGROUP CREATE", r);
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

/* XACK of IDS (text): 0, -EIO after an error reply, -ENOTCONN. */
static int xack(conveyor_ctx *ctx, reader *rd, size_t n, const char **ids, const size_t *lens)
{
    const char **argv = malloc((n + 3) * sizeof *argv);
    size_t *argl = malloc((n + 3) * sizeof *argl);
    redisReply *r = NULL;

    if (argv && argl) {
        argv[0] = "XACK", argl[0] = 4;
        argv[1] = rd->stream, argl[1] = strlen(rd->stream);
        argv[2] = rd->group, argl[2] = strlen(rd->group);
        memcpy(argv + 3, ids, n * sizeof *ids);
        memcpy(argl + 3, lens, n * sizeof *lens);
        r = redis_conn_cmd(&rd->conn, (int)n + 3, argv, argl);
    }
    free(argv);
    free(argl);
    if (!r)
        return -ENOTCONN;
    if (r->type == REDIS_REPLY_ERROR)
        return redis_failed(ctx, rd, "XACK", r);
    freeReplyObject(r);
    return 0;
}

static int xack_one(conveyor_ctx *ctx, reader *rd, const char *id)
{
    size_t len = strlen(id);
    return xack(ctx, rd, 1, &id, &len);
}

/* Acknowledges the emitted entries the pipeline has finished: at most
 * every ACK_EVERY_MS unless ACK_BATCH are ready, or all of them (FORCE). */
static int ack_finished(conveyor_ctx *ctx, reader *rd, int force)
{
    uint64_t done = conveyor_completed(ctx), now = redis_now_ms();
    size_t ready = 0;

    while (ready < rd->fifo.len && fifo_at(&rd->fifo, ready)->num <= done)
        ready++;
    if (!ready || (!force && ready < ACK_BATCH && now - rd->last_ack_ms < ACK_EVERY_MS))
        return 0;
    rd->last_ack_ms = now;
    while (ready) {
        char text[ACK_BATCH][ID_MAX];
        const char *ids[ACK_BATCH];
        size_t lens[ACK_BATCH], n = ready < ACK_BATCH ? ready : ACK_BATCH;
        int rc;

        for (size_t i = 0; i < n; i++) {
            const unacked *u = fifo_at(&rd->fifo, i);
            lens[i] = (size_t)snprintf(text[i], ID_MAX, "%" PRIu64 "-%" PRIu64, u->id.ms, u->id.seq);
            ids[i] = text[i];
        }
        if ((rc = xack(ctx, rd, n, ids, lens)) < 0)
            return rc;
        fifo_pop(&rd->fifo, n);
        ready -= n;
    }
    return 0;
}

/* --- entries --------------------------------------------------------------- */

/* Delivery counts of a batch of this consumer's pending entries (XPENDING's
 * extended form), in *COUNTS parallel to ENTRIES (0 where not found). */
static int delivery_counts(conveyor_ctx *ctx, reader *rd, redisReply *entries, uint64_t *counts)
{
    redisReply *first = entries->element[0]->element[0];
    redisReply *last = entries->element[entries->elements - 1]->element[0];
    char n[24];
    const char *argv[] = {"XPENDING", rd->stream, rd->group, first->str, last->str, n, rd->consumer};
    size_t lens[7];
    redisReply *r;
    size_t j = 0;

    snprintf(n, sizeof n, "%zu", entries->elements * 2);
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    if (!(r = redis_conn_cmd(&rd->conn, 7, argv, lens)))
        return -ENOTCONN;
    if (r->type == REDIS_REPLY_ERROR)
        return redis_failed(ctx, rd, "XPENDING", r);
    for (size_t i = 0; i < entries->elements; i++) {
        entry_id want, have;
        counts[i] = 0;
        if (id_parse(entries->element[i]->element[0]->str, &want) < 0)
            continue;
        for (; j < r->elements; j++) {
            redisReply *p = r->element[j];
            if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 || id_parse(p->element[0]->str, &have) < 0)
                continue;
            if (id_cmp(have, want) >= 0)
                break;
        }
        if (j < r->elements && id_parse(r->element[j]->element[0]->str, &have) == 0 &&
            id_cmp(have, want) == 0)
            counts[i] = (uint64_t)r->element[j]->element[3]->integer;
    }
    freeReplyObject(r);
    return 0;
}

/* XADDs ENTRY (its fields, the original id and stream, and DELIVERIES) to
 * dead_stream, then acknowledges it. */
static int dead_letter(conveyor_ctx *ctx, reader *rd, redisReply *entry, uint64_t deliveries)
{
    redisReply *fields = entry->element[1], *r;
    size_t nf = fields->type == REDIS_REPLY_ARRAY ? fields->elements : 0;
    const char **argv = malloc((nf + 9) * sizeof *argv);
    size_t *lens = malloc((nf + 9) * sizeof *lens);
    char dtext[24];
    int n = 0, rc = -ENOMEM;

    if (!argv || !lens)
        goto out;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
    ARG("XADD", 4);
    ARG(rd->dead_stream, strlen(rd->dead_stream));
    ARG("*", 1);
    for (size_t i = 0; i < nf; i++)
        ARG(fields->element[i]->str, fields->element[i]->len);
    ARG("original_id", 11);
    ARG(entry->element[0]->str, entry->element[0]->len);
    ARG("original_stream", 15);
    ARG(rd->stream, strlen(rd->stream));
    ARG("deliveries", 10);
    ARG(dtext, (size_t)snprintf(dtext, sizeof dtext, "%" PRIu64, deliveries));
#undef ARG
    if (!(r = redis_conn_cmd(&rd->conn, n, argv, lens))) {
        rc = -ENOTCONN;
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': XADD of entry %s to dead_stream '%s' "
                     "failed: %s", rd->stream, entry->element[0]->str, rd->dead_stream, r->str);
        freeReplyObject(r);
        rc = -EIO;
        goto out;
    }
    freeReplyObject(r);
    rd->dead++;
    rc = xack_one(ctx, rd, entry->element[0]->str);
out:
    free(argv);
    free(lens);
    return rc;
}

/* The value of the item field in FIELDS, or NULL. */
static redisReply *item_field(const reader *rd, redisReply *fields)
{
    size_t flen = strlen(rd->field);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        redisReply *k = fields->element[i];
        if (k->len == flen && memcmp(k->str, rd->field, flen) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

/* An entry that cannot be an item: to dead_stream, or acknowledged and
 * skipped, never silently. */
static int unusable(conveyor_ctx *ctx, reader *rd, redisReply *entry, const char *why,
                    uint64_t deliveries)
{
    if (rd->dead_stream) {
        conveyor_log(ctx, CONVEYOR_LOG_WARNING, "stream '%s': entry %s %s; moved to dead_stream '%s'",
                     rd->stream, entry->element[0]->str, why, rd->dead_stream);
        return dead_letter(ctx, rd, entry, deliveries);
    }
    conveyor_log(ctx, CONVEYOR_LOG_WARNING, "stream '%s': entry %s %s; acknowledged and skipped",
                 rd->stream, entry->element[0]->str, why);
    rd->skipped++;
    return xack_one(ctx, rd, entry->element[0]->str);
}

static int take_entry(conveyor_ctx *ctx, reader *rd, redisReply *entry, uint64_t deliveries)
{
    redisReply *fields, *value;
    entry_id id;
    char why[128];
    int rc;

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING || id_parse(entry->element[0]->str, &id) < 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': an entry Redis returned is not ID, FIELDS",
                     rd->stream);
        return -EPROTO;
    }
    fields = entry->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) {   /* deleted (XDEL) while pending */
        conveyor_log(ctx, CONVEYOR_LOG_WARNING, "stream '%s': pending entry %s was deleted; "
                     "acknowledged and skipped", rd->stream, entry->element[0]->str);
        rd->skipped++;
        return xack_one(ctx, rd, entry->element[0]->str);
    }
    if (rd->max_deliveries && deliveries > rd->max_deliveries) {
        snprintf(why, sizeof why, "was delivered %" PRIu64 " times (max_deliveries = %" PRIu64 ")",
                 deliveries, rd->max_deliveries);
        conveyor_log(ctx, CONVEYOR_LOG_WARNING, "stream '%s': entry %s %s; moved to dead_stream '%s'",
                     rd->stream, entry->element[0]->str, why, rd->dead_stream);
        return dead_letter(ctx, rd, entry, deliveries);
    }
    if (!(value = item_field(rd, fields)) || value->type != REDIS_REPLY_STRING) {
        snprintf(why, sizeof why, "has no field '%s'", rd->field);
        return unusable(ctx, rd, entry, why, deliveries);
    }
    if ((rc = conveyor_emit(ctx, value->str, value->len)) < 0)
        return rc;
    return fifo_push(&rd->fifo, conveyor_item_number(ctx), id);
}

/* Takes every entry of ENTRIES; PENDING: they were delivered before, so
 * their delivery counts matter. */
static int take_entries(conveyor_ctx *ctx, reader *rd, redisReply *entries, int pending)
{
    uint64_t *counts = NULL;
    int rc = 0;

    if (entries->type != REDIS_REPLY_ARRAY || !entries->elements)
        return 0;
    if (pending && rd->max_deliveries) {
        if (!(counts = calloc(entries->elements, sizeof *counts)))
            return -ENOMEM;
        if ((rc = delivery_counts(ctx, rd, entries, counts)) < 0) {
            free(counts);
            return rc;
        }
    }
    for (size_t i = 0; i < entries->elements && rc >= 0; i++)
        rc = take_entry(ctx, rd, entries->element[i], counts ? counts[i] : 1);
    free(counts);
    return rc;
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
        return redis_failed(ctx, rd, "XREADGROUP", r);
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
    rc = take_entries(ctx, rd, entries, rd->reading_pending);
    last = entries->element[entries->elements - 1];
    if (rd->reading_pending && last->type == REDIS_REPLY_ARRAY && last->elements == 2)
        snprintf(rd->pending_from, sizeof rd->pending_from, "%s", last->element[0]->str);
    freeReplyObject(r);
    return rc < 0 ? rc : CONVEYOR_MORE;
}

/* Takes the entries of an XCLAIM reply, each with its delivery count:
 * COUNTS[i] belongs to IDS[i]. */
static int take_claimed(conveyor_ctx *ctx, reader *rd, redisReply *claimed, size_t n,
                        char (*ids)[ID_MAX], const uint64_t *counts)
{
    int rc = 0;

    if (claimed->type != REDIS_REPLY_ARRAY)
        return 0;
    if (claimed->elements)
        conveyor_log(ctx, CONVEYOR_LOG_INFO, "stream '%s': claimed %zu entries pending for more "
                     "than %s ms with other consumers", rd->stream, claimed->elements,
                     rd->claim_idle_text);
    for (size_t i = 0; i < claimed->elements && rc >= 0; i++) {
        redisReply *e = claimed->element[i];
        uint64_t count = 1;
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING)
            for (size_t j = 0; j < n; j++)
                if (strcmp(ids[j], e->element[0]->str) == 0)
                    count = counts[j];
        rc = take_entry(ctx, rd, e, count);
    }
    return rc;
}

/* One step of claiming, when one is due: other consumers' entries pending
 * for longer than claim_idle (XPENDING IDLE, which also gives their
 * delivery counts) become this one's (XCLAIM) and are taken.  Not
 * XAUTOCLAIM: it would take this consumer's own entries too, those still
 * in the pipeline, and emit them a second time. */
static int claim_step(conveyor_ctx *ctx, reader *rd)
{
    const char *argv[8] = {"XPENDING", rd->stream, rd->group, "IDLE", rd->claim_idle_text,
                           rd->claim_cursor, "+", rd->count_text};
    size_t lens[8], n = 0, nargs;
    redisReply *r, *claimed;
    char (*ids)[ID_MAX] = NULL;
    uint64_t *counts = NULL;
    const char **cargv = NULL;
    size_t *clens = NULL;
    int rc = 0, round_done;

    if (!rd->claim_idle_ms || redis_now_ms() < rd->next_claim_ms)
        return 0;
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    if (!(r = redis_conn_cmd(&rd->conn, 8, argv, lens)))
        return -ENOTCONN;
    if (r->type == REDIS_REPLY_ERROR)
        return redis_failed(ctx, rd, "XPENDING", r);
    round_done = r->type != REDIS_REPLY_ARRAY || r->elements < rd->count;
    if (r->type == REDIS_REPLY_ARRAY && r->elements) {
        redisReply *lastp = r->element[r->elements - 1];
        if (lastp->type == REDIS_REPLY_ARRAY && lastp->elements >= 4)
            snprintf(rd->claim_cursor, sizeof rd->claim_cursor, "(%s", lastp->element[0]->str);
        ids = malloc(r->elements * sizeof *ids);
        counts = malloc(r->elements * sizeof *counts);
        cargv = malloc((r->elements + 5) * sizeof *cargv);
        clens = malloc((r->elements + 5) * sizeof *clens);
        if (!ids || !counts || !cargv || !clens) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *p = r->element[i];
            if (p->type != REDIS_REPLY_ARRAY || p->elements < 4 ||
                strcmp(p->element[1]->str, rd->consumer) == 0)
                continue;
            snprintf(ids[n], ID_MAX, "%s", p->element[0]->str);
            counts[n++] = (uint64_t)p->element[3]->integer + 1;    /* XCLAIM delivers once more */
        }
    }
    if (n) {
        cargv[0] = "XCLAIM", cargv[1] = rd->stream, cargv[2] = rd->group;
        cargv[3] = rd->consumer, cargv[4] = rd->claim_idle_text;
        for (size_t i = 0; i < n; i++)
            cargv[5 + i] = ids[i];
        nargs = n + 5;
        for (size_t i = 0; i < nargs; i++)
            clens[i] = strlen(cargv[i]);
        if (!(claimed = redis_conn_cmd(&rd->conn, (int)nargs, cargv, clens))) {
            rc = -ENOTCONN;
            goto out;
        }
        if (claimed->type == REDIS_REPLY_ERROR) {
            rc = redis_failed(ctx, rd, "XCLAIM", claimed);
            goto out;
        }
        rc = take_claimed(ctx, rd, claimed, n, ids, counts);
        freeReplyObject(claimed);
    }
    if (round_done) {
        snprintf(rd->claim_cursor, sizeof rd->claim_cursor, "-");
        rd->next_claim_ms = redis_now_ms() + rd->claim_idle_ms / 2;
    }
out:
    freeReplyObject(r);
    free(ids);
    free(counts);
    free(cargv);
    free(clens);
    return rc < 0 ? rc : 0;
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
    if ((rc = ack_finished(ctx, rd, 0)) == 0 && (rc = claim_step(ctx, rd)) == 0)
        rc = read_step(ctx, rd);
    if (rc == -ENOTCONN) {
        /* A stop request interrupts a blocked read; an unusable context
         * then is no outage to report. */
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
        ack_finished(ctx, rd, 1);
    redis_conn_close(&rd->conn);
    free(rd->fifo.v);
    free(rd);
    conveyor_set_userdata(ctx, NULL);
}
