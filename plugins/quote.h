/* SPDX-License-Identifier: MIT */
/*
 * quote.h - how the stock and test plugins quote an item in a log message:
 * printable, NUL-terminated, truncated.  A header of static functions, so
 * each module stays self-contained and exports nothing but its descriptor.
 */
#ifndef CONVEYOR_PLUGINS_QUOTE_H
#define CONVEYOR_PLUGINS_QUOTE_H

#include <stdio.h>
#include <string.h>

/* Items are quoted in messages up to this many bytes. */
#define QUOTE_BYTES 60
#define QUOTE_SIZE (QUOTE_BYTES * 4 + 8)

/* A printable, NUL-terminated, truncated rendering of an item for logs:
 * bytes outside printable ASCII (and the backslash) become \xNN. */
static inline const char *quote(char out[QUOTE_SIZE], const void *item, size_t len)
{
    const unsigned char *p = item;
    size_t o = 0, i;

    for (i = 0; i < len && i < QUOTE_BYTES; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, QUOTE_SIZE - o, "\\x%02x", p[i]);
    }
    if (i < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

#endif
