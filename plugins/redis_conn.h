/* SPDX-License-Identifier: MIT */
/*
 * redis_conn.h - one hiredis connection of a redis stage: opened from a
 * parsed url (with SELECT for a database other than 0), with a read time
 * limit, and the small helpers both stages use to send commands and to
 * say what went wrong.
 */
#ifndef CONVEYOR_REDIS_CONN_H
#define CONVEYOR_REDIS_CONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "redis_url.h"

typedef struct redis_conn {
    redisContext *c;        /* NULL while not connected */
    redis_url url;
    const char *url_text;   /* as written, for messages */
    long timeout_ms;        /* connect and per-reply limit */
    char why[256];          /* the last connection error */
} redis_conn;

/* Connects (closing an old context first): 0, or -EIO with rc->why set. */
int redis_conn_open(redis_conn *rc);
void redis_conn_close(redis_conn *rc);
/* Non-zero when there is no usable context (never opened, or an I/O,
 * protocol or EOF error made it unusable). */
int redis_conn_broken(const redis_conn *rc);
/* Sends one command and reads its reply: the reply (an error reply too),
 * or NULL when the connection failed (rc->why says how). */
redisReply *redis_conn_cmd(redis_conn *rc, int argc, const char **argv, const size_t *lens);
/* Keeps the context's error text in rc->why. */
void redis_conn_note_error(redis_conn *rc);

#endif
