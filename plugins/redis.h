/* SPDX-License-Identifier: MIT */
/*
 * redis.h - what the redis module's files share: its two stages (read,
 * in redis_read.c; write, in redis_write.c) and the parameter parsers both
 * use (in redis.c).  Parsers log what is wrong, naming the key, and return
 * -EINVAL; they return 0 with the default when the key is not set.
 */
#ifndef CONVEYOR_REDIS_H
#define CONVEYOR_REDIS_H

#include <conveyor/plugin.h>
#include <stdint.h>

#include "redis_conn.h"

/* The url key into CONN (REDIS_URL_DEFAULT when unset), with TIMEOUT_MS
 * for connecting and for each reply. */
int redis_param_url(conveyor_ctx *ctx, redis_conn *conn, long timeout_ms);
/* A required key: its value, or NULL after saying that STAGE needs it. */
const char *redis_param_required(conveyor_ctx *ctx, const char *stage, const char *key);
/* A whole number in [MIN, MAX]. */
int redis_param_uint(conveyor_ctx *ctx, const char *key, uint64_t dflt, uint64_t min,
                     uint64_t max, uint64_t *out);
/* Milliseconds: a number with ms, s, m or h (a bare number is ms), <= MAX. */
int redis_param_ms(conveyor_ctx *ctx, const char *key, uint64_t dflt, uint64_t max,
                   uint64_t *out);

/* Milliseconds on the monotonic clock. */
uint64_t redis_now_ms(void);

int redis_read_init(conveyor_ctx *ctx);
int redis_read_produce(conveyor_ctx *ctx);
void redis_read_fini(conveyor_ctx *ctx);
int redis_read_check(conveyor_ctx *ctx);
extern const conveyor_param_spec redis_read_params[];

int redis_write_init(conveyor_ctx *ctx);
int redis_write_process(conveyor_ctx *ctx, const void *item, size_t len);
int redis_write_flush(conveyor_ctx *ctx);
void redis_write_fini(conveyor_ctx *ctx);
int redis_write_check(conveyor_ctx *ctx);
extern const conveyor_param_spec redis_write_params[];

#endif
