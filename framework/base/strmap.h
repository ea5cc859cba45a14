/* SPDX-License-Identifier: MIT */
/*
 * strmap.h - a map from strings to small integers (a hash table with
 * linear probing), for names looked up once per line of a large file: the
 * stages of a pipeline by name, so that reading and checking N sections is
 * linear in N.  The map keeps pointers to the keys, which must outlive it.
 */
#ifndef CV_STRMAP_H
#define CV_STRMAP_H

#include <stddef.h>

typedef struct cv_strmap {
    const char **keys;      /* NULL: an empty slot */
    int *vals;
    size_t cap;             /* a power of two, or 0 */
    size_t n;
} cv_strmap;

void cv_strmap_init(cv_strmap *m);
void cv_strmap_free(cv_strmap *m);
/* The value of KEY, or -1. */
int cv_strmap_get(const cv_strmap *m, const char *key);
/* Sets KEY (kept by pointer) to VAL, replacing what it had. */
void cv_strmap_put(cv_strmap *m, const char *key, int val);

#endif
