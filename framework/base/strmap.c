/* SPDX-License-Identifier: MIT */
/* strmap.c - strings to integers in a hash table (see strmap.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/strmap.h"
#include "base/util.h"

void cv_strmap_init(cv_strmap *m)
{
    memset(m, 0, sizeof *m);
}

void cv_strmap_free(cv_strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* FNV-1a: short keys, no adversary to defend against here. */
static size_t hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 32));
}

/* The slot of KEY, or the empty slot where it would go. */
static size_t slot(const cv_strmap *m, const char *key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

int cv_strmap_get(const cv_strmap *m, const char *key)
{
    if (!m->cap)
        return -1;
    size_t i = slot(m, key);
    return m->keys[i] ? m->vals[i] : -1;
}

static void grow(cv_strmap *m)
{
    cv_strmap bigger = {.cap = m->cap ? m->cap * 2 : 16};
    bigger.keys = cv_calloc(bigger.cap, sizeof *bigger.keys);
    bigger.vals = cv_calloc(bigger.cap, sizeof *bigger.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = slot(&bigger, m->keys[i]);
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
        }
    bigger.n = m->n;
    cv_strmap_free(m);
    *m = bigger;
}

void cv_strmap_put(cv_strmap *m, const char *key, int val)
{
    if ((m->n + 1) * 2 > m->cap)
        grow(m);
    size_t i = slot(m, key);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
}
