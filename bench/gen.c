/* SPDX-License-Identifier: MIT */
/*
 * gen.c - writes the benchmarks' inputs to stdout, fast and reproducibly.
 *
 *   gen lines COUNT             COUNT lines of 15 decimal digits and '\n'
 *                               (000000000000000 ...): 16 bytes an item
 *   gen length32 COUNT SIZE     COUNT length32 frames (4-byte little-endian
 *                               length, then SIZE bytes of varying data)
 *   gen random BYTES            BYTES pseudo-random bytes (a dataset)
 *
 * Sizes take K, M, G suffixes (powers of 1024).  The same arguments always
 * give the same bytes, so checksums can be compared across runs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF (1u << 20)

static unsigned char buf[BUF];

static int parse_size(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10), mul = 1;
    switch (*end) {
    case 'K': case 'k': mul = 1ULL << 10; end++; break;
    case 'M': case 'm': mul = 1ULL << 20; end++; break;
    case 'G': case 'g': mul = 1ULL << 30; end++; break;
    }
    if (end == s || *end || errno || s[0] == '-')
        return -1;
    *out = v * mul;
    return 0;
}

static int write_all(const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("gen: write");
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int gen_lines(unsigned long long count)
{
    size_t used = 0;
    char digits[16];
    /* Count in decimal directly: far faster than printf per line. */
    memset(digits, '0', 15);
    digits[15] = '\n';
    for (unsigned long long i = 0; i < count; i++) {
        if (used + 16 > BUF) {
            if (write_all(buf, used) < 0)
                return 1;
            used = 0;
        }
        memcpy(buf + used, digits, 16);
        used += 16;
        for (int d = 14; d >= 0; d--) {
            if (digits[d] != '9') {
                digits[d]++;
                break;
            }
            digits[d] = '0';
        }
    }
    return write_all(buf, used) < 0;
}

static int gen_length32(unsigned long long count, unsigned long long size)
{
    if (size > UINT32_MAX) {
        fprintf(stderr, "gen: a length32 item holds at most 4 GiB - 1\n");
        return 2;
    }
    unsigned char *item = malloc(size ? size : 1);
    if (!item) {
        perror("gen");
        return 1;
    }
    uint64_t seed = 1;
    for (unsigned long long k = 0; k < size; k++)
        item[k] = (unsigned char)splitmix(&seed);
    for (unsigned long long i = 0; i < count; i++) {
        uint32_t n = (uint32_t)size;
        unsigned char hdr[4] = {(unsigned char)n, (unsigned char)(n >> 8),
                                (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
        /* Every item differs (its first 8 bytes are its number), so a
         * transport that repeated or dropped one changes the checksum. */
        if (size >= 8)
            memcpy(item, &i, 8);
        if (write_all(hdr, 4) < 0 || write_all(item, size) < 0) {
            free(item);
            return 1;
        }
    }
    free(item);
    return 0;
}

static int gen_random(unsigned long long bytes)
{
    uint64_t seed = 42;
    while (bytes > 0) {
        size_t n = bytes < BUF ? (size_t)bytes : BUF;
        for (size_t k = 0; k < n; k += 8) {
            uint64_t v = splitmix(&seed);
            memcpy(buf + k, &v, n - k < 8 ? n - k : 8);
        }
        if (write_all(buf, n) < 0)
            return 1;
        bytes -= n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long long a, b;
    if (argc == 3 && strcmp(argv[1], "lines") == 0 && parse_size(argv[2], &a) == 0)
        return gen_lines(a);
    if (argc == 4 && strcmp(argv[1], "length32") == 0 && parse_size(argv[2], &a) == 0 &&
        parse_size(argv[3], &b) == 0)
        return gen_length32(a, b);
    if (argc == 3 && strcmp(argv[1], "random") == 0 && parse_size(argv[2], &a) == 0)
        return gen_random(a);
    fprintf(stderr, "usage: gen lines COUNT | gen length32 COUNT SIZE | gen random BYTES\n");
    return 2;
}
