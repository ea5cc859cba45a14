/* SPDX-License-Identifier: MIT */
/*
 * redis_entries.c - what redis:read does with the entries it read (see
 * redis_read.h): emits the item field and keeps the entry's id with its
 * item number in a FIFO until the pipeline has finished it, then XACKs it;
 * moves entries delivered too often, or without the field, to the dead
 * stream; claims other consumers' idle entries.
 */
#include "redis_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* --- commands -------------------------------------------------------------- */

/* Reports an error reply to COMMAND: "stream 'S': COMMAND failed: MESSAGE". */
int redis_read_failed(conveyor_ctx *ctx, reader *rd, const char *command, redisReply *r)
{
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s', group '%s': %s failed: %s", rd->stream,
                 rd->group, command, r->str);
    freeReplyObject(r);
    return -EIO;
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
        return redis_read_failed(ctx, rd, "XACK", r);
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
int redis_ack_finished(conveyor_ctx *ctx, reader *rd, int force)
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
        return redis_read_failed(ctx, rd, "XPENDING", r);
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
    /* An entry delivered before may be the one that failed the pipeline:
     * markers on both sides, so that it completes (or not) on its own and
     * never holds back its neighbours' acknowledgement. */
    if (deliveries > 1 && (rc = conveyor_mark(ctx)) < 0)
        return rc;
    if ((rc = conveyor_emit(ctx, value->str, value->len)) < 0)
        return rc;
    if ((rc = fifo_push(&rd->fifo, conveyor_item_number(ctx), id)) < 0)
        return rc;
    return deliveries > 1 ? conveyor_mark(ctx) : 0;
}

/* Takes every entry of ENTRIES; PENDING: they were delivered before, so
 * their delivery counts matter. */
int redis_take_entries(conveyor_ctx *ctx, reader *rd, redisReply *entries, int pending)
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
    /* Without max_deliveries the counts are not asked for: a pending entry
     * was delivered at least twice by now. */
    for (size_t i = 0; i < entries->elements && rc >= 0; i++)
        rc = take_entry(ctx, rd, entries->element[i], counts ? counts[i] : pending ? 2 : 1);
    free(counts);
    return rc;
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
int redis_claim_step(conveyor_ctx *ctx, reader *rd)
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
        return redis_read_failed(ctx, rd, "XPENDING", r);
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
            rc = redis_read_failed(ctx, rd, "XCLAIM", claimed);
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
