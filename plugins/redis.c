/* SPDX-License-Identifier: MIT */
/*
 * redis.c - the "redis" module: Redis Streams consumer groups as a source
 * and a sink (docs/pipeline-ini.md, "The redis module").
 *
 *   read    type = source: XREADGROUP from a stream in a consumer group;
 *           entries are acknowledged (XACK) only once the pipeline has
 *           finished them (conveyor_completed), so delivery is at least once
 *   write   a sink: each item is XADDed to a stream, pipelined in batches
 *
 * This file holds the module's descriptor and the parameter parsers both
 * stages use; the stages are in redis_read.c and redis_write.c.
 */
#include "redis.h"

#include <errno.h>
#include <string.h>
#include <time.h>

uint64_t redis_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int redis_param_url(conveyor_ctx *ctx, redis_conn *conn, long timeout_ms)
{
    const char *text = conveyor_param(ctx, "url");
    const char *why = NULL;

    if (!text)
        text = REDIS_URL_DEFAULT;
    if (redis_url_parse(text, &conn->url, &why) < 0) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "url '%s': %s", text, why);
        return -EINVAL;
    }
    conn->url_text = text;
    conn->timeout_ms = timeout_ms;
    return 0;
}

const char *redis_param_required(conveyor_ctx *ctx, const char *stage, const char *key)
{
    const char *v = conveyor_param(ctx, key);

    if (!v || !*v) {
        conveyor_log(ctx, CONVEYOR_LOG_ERROR, "%s needs %s = NAME", stage, key);
        return NULL;
    }
    return v;
}

/* Digits into *V (at most MAX); the rest of the text in *REST. */
static int digits(const char *s, uint64_t max, uint64_t *v, const char **rest)
{
    uint64_t n = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (max - (uint64_t)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == s)
        return -1;
    *v = n;
    *rest = p;
    return 0;
}

int redis_param_uint(conveyor_ctx *ctx, const char *key, uint64_t dflt, uint64_t min,
                     uint64_t max, uint64_t *out)
{
    /* The SDK's getter: the declared default when the key is absent, and a
     * bad value named with its file and line. */
    int64_t v = (int64_t)dflt;
    if (conveyor_param_int(ctx, key, (int64_t)min, (int64_t)max, &v) < 0)
        return -EINVAL;
    *out = (uint64_t)v;
    return 0;
}

int redis_param_ms(conveyor_ctx *ctx, const char *key, uint64_t dflt, uint64_t max, uint64_t *out)
{
    static const struct { const char *suffix; uint64_t ms; } units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    };
    const char *s = conveyor_param(ctx, key), *rest;
    uint64_t v;

    if (!s) {
        *out = dflt;
        return 0;
    }
    if (digits(s, max, &v, &rest) == 0)
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (strcmp(rest, units[i].suffix) == 0 && v <= max / units[i].ms) {
                *out = v * units[i].ms;
                return 0;
            }
    conveyor_log(ctx, CONVEYOR_LOG_ERROR,
                 "%s must be a duration up to %llu ms (a number with ms, s, m or h), not '%s'", key,
                 (unsigned long long)max, s);
    return -EINVAL;
}

static const conveyor_stage stages[] = {
    { .name = "read", .summary = "reads a Redis stream in a consumer group (a source; "
                                 "acknowledges what the pipeline finished)",
      .init = redis_read_init, .produce = redis_read_produce, .fini = redis_read_fini,
      .check = redis_read_check, .params = redis_read_params },
    { .name = "write", .summary = "adds each item to a Redis stream (a sink, pipelined)",
      .init = redis_write_init, .process = redis_write_process, .flush = redis_write_flush,
      .fini = redis_write_fini, .check = redis_write_check, .params = redis_write_params },
    { .name = NULL },
};

CONVEYOR_MODULE("redis", "1.0", stages);
