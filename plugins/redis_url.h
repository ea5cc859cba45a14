/* SPDX-License-Identifier: MIT */
/*
 * redis_url.h - the url key of the redis module, parsed strictly.
 *
 *   redis://HOST[:PORT][/DB]      HOST a name, an IPv4 address or [IPv6];
 *                                 PORT 1..65535 (6379); DB 0.. (0)
 *   unix:///PATH[?db=N]           an absolute socket path
 *
 * Anything else (a password, other query keys, a trailing slash without a
 * number) is refused with a reason, so a typo never connects somewhere else.
 */
#ifndef CONVEYOR_REDIS_URL_H
#define CONVEYOR_REDIS_URL_H

#define REDIS_URL_DEFAULT "redis://127.0.0.1:6379/0"

typedef struct redis_url {
    int is_unix;        /* 1: path is a socket; 0: host and port */
    char host[256];
    int port;
    char path[108];     /* sun_path's size on Linux */
    int db;
} redis_url;

/* Parses TEXT into *U: 0, or -EINVAL with *WHY saying what is wrong. */
int redis_url_parse(const char *text, redis_url *u, const char **why);

#endif
