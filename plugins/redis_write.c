/* SPDX-License-Identifier: MIT */
/*
 * redis_write.c - redis:write, a sink: each item becomes one XADD to
 * `stream` (the item in `field`), pipelined: process() appends the command
 * and the replies are read `batch` at a time, in flush() and in fini().
 * An error reply fails: it is reported with the stream, the item number
 * and Redis's message.
 */
#include "redis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct writer {
    redis_conn conn;
    const char *stream, *field;
    uint64_t maxlen, batch;
    char maxlen_text[24];
    uint64_t *nums;         /* item numbers of the commands awaiting replies */
    size_t pending;
} writer;

const conveyor_param_spec redis_write_params[] = {
    { .name = "url", .summary = "redis://HOST:PORT/DB or unix:///PATH?db=N",
      .default_value = REDIS_URL_DEFAULT },
    { .name = "stream", .summary = "the stream each item is added to (required)",
      .flags = CONVEYOR_PARAM_REQUIRED },
    { .name = "field", .summary = "the entry field holding the item", .default_value = "data" },
    { .name = "maxlen", .summary = "0: no limit; else XADD MAXLEN ~ N (trims the stream)",
      .default_value = "0" },
    { .name = "batch", .summary = "XADDs sent before their replies are read", .default_value = "256" },
    { .name = NULL },
};

static int read_config(conveyor_ctx *ctx, writer *w)
{
    if (redis_param_url(ctx, &w->conn, 10000) < 0)
        return -EINVAL;
    if (!(w->stream = redis_param_required(ctx, "redis:write", "stream")))
        return -EINVAL;
    if (!(w->field = conveyor_param(ctx, "field")))
        w->field = "data";
    if (redis_param_uint(ctx, "maxlen", 0, 0, UINT64_MAX / 2, &w->maxlen) < 0 ||
        redis_param_uint(ctx, "batch", 256, 1, 1000000, &w->batch) < 0)
        return -EINVAL;
    snprintf(w->maxlen_text, sizeof w->maxlen_text, "%" PRIu64, w->maxlen);
    return 0;
}

int redis_write_check(conveyor_ctx *ctx)
{
    writer w;
    memset(&w, 0, sizeof w);
    return read_config(ctx, &w) < 0 ? -1 : 0;
}

static int connect_writer(conveyor_ctx *ctx, writer *w)
{
    if (redis_conn_open(&w->conn) == 0)
        return 0;
    conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': cannot connect to %s: %s", w->stream,
                 w->conn.url_text, w->conn.why);
    return -EIO;
}

int redis_write_init(conveyor_ctx *ctx)
{
    writer *w = calloc(1, sizeof *w);

    if (!w)
        return -ENOMEM;
    if (read_config(ctx, w) < 0 || !(w->nums = malloc(w->batch * sizeof *w->nums)) ||
        connect_writer(ctx, w) < 0) {
        free(w->nums);
        free(w);
        return -1;
    }
    conveyor_set_userdata(ctx, w);
    return 0;
}

/* Reads the reply of every command sent: 0, or -EIO after reporting each
 * error reply (and a lost connection, which loses the rest). */
static int drain(conveyor_ctx *ctx, writer *w)
{
    int rc = 0;

    for (size_t i = 0; i < w->pending; i++) {
        redisReply *r = NULL;
        if (redisGetReply(w->conn.c, (void **)&r) != REDIS_OK || !r) {
            redis_conn_note_error(&w->conn);
            conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                         "stream '%s': lost the connection to %s (%s): items %" PRIu64
                         " .. %" PRIu64 " may not have been added",
                         w->stream, w->conn.url_text, w->conn.why, w->nums[i],
                         w->nums[w->pending - 1]);
            redis_conn_close(&w->conn);
            rc = -EIO;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': XADD of item %" PRIu64 " failed: %s",
                         w->stream, w->nums[i], r->str);
            rc = -EIO;
        }
        freeReplyObject(r);
    }
    w->pending = 0;
    return rc;
}

int redis_write_process(conveyor_ctx *ctx, const void *item, size_t len)
{
    writer *w = conveyor_userdata(ctx);
    const char *argv[8];
    size_t lens[8];
    int n = 0;

    if (redis_conn_broken(&w->conn) && connect_writer(ctx, w) < 0)
        return -1;
#define ARG(s, l) (argv[n] = (s), lens[n] = (l), n++)
    ARG("XADD", 4);
    ARG(w->stream, strlen(w->stream));
    if (w->maxlen) {
        ARG("MAXLEN", 6);
        ARG("~", 1);
        ARG(w->maxlen_text, strlen(w->maxlen_text));
    }
    ARG("*", 1);
    ARG(w->field, strlen(w->field));
    ARG(item ? item : "", len);
#undef ARG
    if (redisAppendCommandArgv(w->conn.c, n, argv, lens) != REDIS_OK) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "stream '%s': item %" PRIu64 " not sent: out of memory",
                     w->stream, conveyor_item_number(ctx));
        return -1;
    }
    w->nums[w->pending++] = conveyor_item_number(ctx);
    /* A full batch is collected at once; a partial one when the stage's
     * input has nothing more, or a completion marker passes (flush). */
    if (w->pending >= w->batch)
        return drain(ctx, w) < 0 ? -1 : 0;
    return 0;
}

int redis_write_flush(conveyor_ctx *ctx)
{
    writer *w = conveyor_userdata(ctx);
    return w && w->pending && drain(ctx, w) < 0 ? -1 : 0;
}

void redis_write_fini(conveyor_ctx *ctx)
{
    writer *w = conveyor_userdata(ctx);

    if (!w)
        return;
    if (w->pending)
        drain(ctx, w);
    redis_conn_close(&w->conn);
    free(w->nums);
    free(w);
    conveyor_set_userdata(ctx, NULL);
}
