/* SPDX-License-Identifier: MIT */
/*
 * redis_conn.c - one hiredis connection of a redis stage (see redis_conn.h).
 */
#include "redis_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct timeval tv_of(long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

void redis_conn_note_error(redis_conn *rc)
{
    if (!rc->c)
        return;
    snprintf(rc->why, sizeof rc->why, "%s", rc->c->errstr[0] ? rc->c->errstr : "connection error");
}

void redis_conn_close(redis_conn *rc)
{
    if (rc->c)
        redisFree(rc->c);
    rc->c = NULL;
}

int redis_conn_broken(const redis_conn *rc)
{
    return !rc->c || rc->c->err != 0;
}

/* SELECT DB after connecting: 0, or -EIO with rc->why set. */
static int select_db(redis_conn *rc)
{
    char db[16];
    const char *argv[] = {"SELECT", db};
    size_t lens[2] = {6, 0};
    redisReply *r;
    int ok;

    lens[1] = (size_t)snprintf(db, sizeof db, "%d", rc->url.db);
    if (!(r = redis_conn_cmd(rc, 2, argv, lens)))
        return -EIO;
    ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(rc->why, sizeof rc->why, "SELECT %d: %s", rc->url.db, r->str);
    freeReplyObject(r);
    return ok ? 0 : -EIO;
}

int redis_conn_open(redis_conn *rc)
{
    struct timeval tv = tv_of(rc->timeout_ms);

    redis_conn_close(rc);
    if (rc->url.is_unix)
        rc->c = redisConnectUnixWithTimeout(rc->url.path, tv);
    else
        rc->c = redisConnectWithTimeout(rc->url.host, rc->url.port, tv);
    if (!rc->c) {
        snprintf(rc->why, sizeof rc->why, "out of memory");
        return -EIO;
    }
    if (rc->c->err || redisSetTimeout(rc->c, tv) != REDIS_OK) {
        redis_conn_note_error(rc);
        redis_conn_close(rc);
        return -EIO;
    }
    if (rc->url.db != 0 && select_db(rc) < 0) {
        redis_conn_close(rc);
        return -EIO;
    }
    return 0;
}

redisReply *redis_conn_cmd(redis_conn *rc, int argc, const char **argv, const size_t *lens)
{
    redisReply *r;

    if (redis_conn_broken(rc))
        return NULL;
    r = redisCommandArgv(rc->c, argc, argv, lens);
    if (!r)
        redis_conn_note_error(rc);
    return r;
}
