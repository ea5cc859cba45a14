/* SPDX-License-Identifier: MIT */
/*
 * redis_url.c - parses the url key of the redis module (see redis_url.h).
 */
#include "redis_url.h"

#include <errno.h>
#include <string.h>

/* Reads a decimal number of at most MAX from *P (advanced past it): 0, or
 * -1 when there is no digit or it is too large. */
static int number(const char **p, long max, long *out)
{
    long v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > max)
            return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

static int host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

static int parse_tcp(const char *s, redis_url *u, const char **why)
{
    const char *end;
    size_t n;
    long v;

    if (strchr(s, '@')) {
        *why = "a user or password in the url is not supported";
        return -EINVAL;
    }
    if (*s == '[') {            /* [IPv6] */
        end = strchr(s, ']');
        if (!end || end == s + 1) {
            *why = "an IPv6 address is written [ADDRESS]";
            return -EINVAL;
        }
        n = (size_t)(end - s - 1);
        s++;
        end++;
    } else {
        for (end = s; host_char(*end); end++)
            ;
        n = (size_t)(end - s);
    }
    if (n == 0 || n >= sizeof u->host) {
        *why = n ? "the host name is too long" : "the url has no host";
        return -EINVAL;
    }
    memcpy(u->host, s, n);
    u->host[n] = '\0';
    s = end;
    if (*s == ':') {
        s++;
        if (number(&s, 65535, &v) < 0 || v == 0) {
            *why = "the port must be a number from 1 to 65535";
            return -EINVAL;
        }
        u->port = (int)v;
    }
    if (*s == '/') {
        s++;
        if (number(&s, 1000000, &v) < 0) {
            *why = "the database after '/' must be a number";
            return -EINVAL;
        }
        u->db = (int)v;
    }
    if (*s) {
        *why = "unexpected characters after HOST[:PORT][/DB]";
        return -EINVAL;
    }
    return 0;
}

static int parse_unix(const char *s, redis_url *u, const char **why)
{
    const char *q = strchr(s, '?');
    size_t n = q ? (size_t)(q - s) : strlen(s);
    long v;

    if (n == 0 || s[0] != '/') {
        *why = "a unix url names an absolute path: unix:///PATH";
        return -EINVAL;
    }
    if (n >= sizeof u->path) {
        *why = "the socket path is longer than 107 bytes";
        return -EINVAL;
    }
    memcpy(u->path, s, n);
    u->path[n] = '\0';
    if (q) {
        q++;
        if (strncmp(q, "db=", 3) != 0) {
            *why = "the only query a unix url takes is ?db=N";
            return -EINVAL;
        }
        q += 3;
        if (number(&q, 1000000, &v) < 0 || *q) {
            *why = "db= must be a number";
            return -EINVAL;
        }
        u->db = (int)v;
    }
    u->is_unix = 1;
    return 0;
}

int redis_url_parse(const char *text, redis_url *u, const char **why)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(text, "redis://", 8) == 0)
        return parse_tcp(text + 8, u, why);
    if (strncmp(text, "unix://", 7) == 0)
        return parse_unix(text + 7, u, why);
    *why = "a url starts with redis:// or unix://";
    return -EINVAL;
}
