/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_pool.c - large items by reference, end to end: the real
 * conveyor-host on length32 items of 100 KiB.
 *
 * testplug:where writes the address of every item it is given on stderr;
 * the pool is mapped at one address in every process, so two stages that
 * see an item at the same address share one block (no copy), and stages
 * that see it at different addresses were given copies.  Every test also
 * checks the exact output and that nothing is left in /dev/shm.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ITEM 100000
#define MAXN 400

/* N length32 items of SIZE bytes: "I:" then a pattern, I from 1. */
static char *make_items(unsigned n, size_t size, size_t *len)
{
    char *buf = malloc((size_t)n * (size + 4));
    char *p = buf;
    for (unsigned i = 1; i <= n; i++) {
        uint32_t l = (uint32_t)size;
        memcpy(p, &l, 4);
        int h = snprintf(p + 4, size, "%u:", i);
        for (size_t k = (size_t)h; k < size; k++)
            p[4 + k] = (char)('a' + (i + k) % 26);
        p += 4 + size;
    }
    *len = (size_t)(p - buf);
    return buf;
}

static int run(host_run *r, const char *ini_text, const char *in, size_t inlen)
{
    char *ini = write_file("p.ini", ini_text);
    const char *args[] = {"-c", ini, NULL};
    int rc = host_run_args(r, in, inlen, args);
    free(ini);
    return rc;
}

/* addr[stage][item] from the "where TAG STAGE ADDRESS" lines of stderr. */
typedef struct where_log {
    char names[4][32];
    unsigned long long addr[4][MAXN + 1];
    unsigned nstages;
} where_log;

static int stage_index(where_log *w, const char *name)
{
    for (unsigned i = 0; i < w->nstages; i++)
        if (strcmp(w->names[i], name) == 0)
            return (int)i;
    cr_assert_lt(w->nstages, 4);
    snprintf(w->names[w->nstages], sizeof w->names[0], "%s", name);
    return (int)w->nstages++;
}

static void parse_where(where_log *w, const char *err)
{
    memset(w, 0, sizeof *w);
    for (const char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        unsigned item;
        char stage[32];
        unsigned long long addr;
        if (sscanf(l, "where %u %31s %llx", &item, stage, &addr) != 3)
            continue;
        cr_assert(item >= 1 && item <= MAXN, "bad item number in: %.80s", l);
        w->addr[stage_index(w, stage)][item] = addr;
    }
}

static unsigned long long addr_of(where_log *w, const char *stage, unsigned item)
{
    int s = stage_index(w, stage);
    cr_assert_neq(w->addr[s][item], 0, "stage %s did not log item %u", stage, item);
    return w->addr[s][item];
}

/* STAGE saw each of the first N items in the block FIRST saw it in. */
static void assert_same_block(where_log *w, unsigned n, const char *first, const char *stage)
{
    for (unsigned i = 1; i <= n; i++)
        cr_assert_eq(addr_of(w, stage, i), addr_of(w, first, i),
                     "item %u: %s was given a copy of its own", i, stage);
}

static void assert_output(const host_run *r, const char *want, size_t len)
{
    cr_assert_eq(r->status, 0, "exit %d, stderr: %.2000s", r->status, r->err);
    cr_assert_eq(r->outlen, len, "output of %zu bytes, not %zu", r->outlen, len);
    cr_assert(memcmp(r->out, want, len) == 0, "the output differs from what was expected");
    cr_assert_eq(shm_left(r->pid), 0);
}

Test(pool, a_forwarded_item_is_not_copied)
{
    size_t len;
    char *in = make_items(50, ITEM, &len);
    host_run r;
    run(&r,
        "[pipeline]\nframing = length32\ntransport = ring\n"
        "[a]\nplugin = testplug:where\n"
        "[b]\nplugin = testplug:where\n"
        "[c]\nplugin = text:identity\n"
        "[d]\nplugin = testplug:where\n",
        in, len);
    assert_output(&r, in, len);
    where_log w;
    parse_where(&w, r.err);
    assert_same_block(&w, 50, "a", "b");
    assert_same_block(&w, 50, "a", "d");
    host_run_free(&r);
    free(in);
}

Test(pool, a_replicate_shares_one_copy_among_its_branches)
{
    size_t len;
    char *in = make_items(40, ITEM, &len);
    host_run r;
    run(&r,
        "[pipeline]\nframing = length32\ntransport = ring\n"
        "[fork]\ntype = replicate\n"
        "[x]\nplugin = testplug:where\ninput = fork\n"
        "[y]\nplugin = testplug:where\ninput = fork\n"
        "[z]\nplugin = testplug:where\ninput = fork\n"
        "[join]\ntype = join\ninput = x, y, z\norder = source\n",
        in, len);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %.2000s", r.status, r.err);
    /* order = source, ties in rank order: each item three times in a row. */
    char *want = malloc(3 * len);
    size_t off = 0, w_off = 0;
    while (off < len) {
        for (int k = 0; k < 3; k++)
            memcpy(want + w_off + (size_t)k * (4 + ITEM), in + off, 4 + ITEM);
        w_off += 3 * (4 + ITEM);
        off += 4 + ITEM;
    }
    assert_output(&r, want, 3 * len);
    where_log w;
    parse_where(&w, r.err);
    assert_same_block(&w, 40, "x", "y");
    assert_same_block(&w, 40, "x", "z");
    host_run_free(&r);
    free(want);
    free(in);
}

static void assert_all_copied(const char *extra)
{
    size_t len;
    char *in = make_items(30, ITEM, &len);
    char ini[512];
    snprintf(ini, sizeof ini,
             "[pipeline]\nframing = length32\ntransport = ring\n%s"
             "[a]\nplugin = testplug:where\n[b]\nplugin = testplug:where\n",
             extra);
    host_run r;
    run(&r, ini, in, len);
    assert_output(&r, in, len);
    where_log w;
    parse_where(&w, r.err);
    for (unsigned i = 1; i <= 30; i++)
        cr_assert_neq(addr_of(&w, "a", i), addr_of(&w, "b", i),
                      "item %u went by reference (%s)", i, extra);
    host_run_free(&r);
    free(in);
}

Test(pool, pool_size_0_turns_references_off)
{
    assert_all_copied("pool_size = 0\n");
}

Test(pool, items_below_the_threshold_are_copied)
{
    assert_all_copied("pool_threshold = 200K\n");
}

/* A pool with room for two such items at a time, and a slow last stage:
 * the pool fills, the producers copy instead of waiting for it, and
 * everything arrives in order. */
Test(pool, a_full_pool_means_copies_not_a_wait, .timeout = 60)
{
    size_t len;
    char *in = make_items(200, ITEM, &len);
    host_run r;
    run(&r,
        "[pipeline]\nframing = length32\ntransport = ring\npool_size = 256K\n"
        "[a]\nplugin = testplug:where\n"
        "[b]\nplugin = testplug:where\n"
        "[c]\nplugin = testplug:slow\nusec = 2000\n",
        in, len);
    assert_output(&r, in, len);
    where_log w;
    parse_where(&w, r.err);
    unsigned shared = 0, copied = 0;
    for (unsigned i = 1; i <= 200; i++) {
        if (addr_of(&w, "a", i) == addr_of(&w, "b", i))
            shared++;
        else
            copied++;
    }
    cr_assert_gt(shared, 0, "no item went by reference");
    cr_assert_gt(copied, 0, "the pool never filled");
    host_run_free(&r);
    free(in);
}

/* Built in place with conveyor_emit_begin (in a pool block, as large as
 * these are), replicated to two branches that build again in place: every
 * byte arrives.  (Whether it was shared is what the tests above show.) */
Test(pool, items_built_in_place_reach_every_branch)
{
    size_t len;
    char *in = make_items(30, ITEM, &len);
    host_run r;
    run(&r,
        "[pipeline]\nframing = length32\ntransport = ring\n"
        "[rev]\nplugin = testplug:reverse\n"
        "[fork]\ntype = replicate\ninput = rev\n"
        "[back1]\nplugin = testplug:reverse\ninput = fork\n"
        "[back2]\nplugin = testplug:reverse\ninput = fork\n"
        "[join]\ntype = join\ninput = back1, back2\norder = concat\n",
        in, len);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %.2000s", r.status, r.err);
    char *want = malloc(2 * len);
    memcpy(want, in, len);
    memcpy(want + len, in, len);
    assert_output(&r, want, 2 * len);
    host_run_free(&r);
    free(want);
    free(in);
}

/* A stage that crashes now and then, restarted: every large item comes out
 * exactly once, and the blocks its dead processes held are not given to
 * anyone else while still in use (the output would be corrupted). */
Test(pool, restarts_lose_and_corrupt_nothing, .timeout = 120)
{
    size_t len;
    char *in = make_items(300, ITEM, &len);
    host_run r;
    run(&r,
        "[pipeline]\nframing = length32\ntransport = ring\npool_size = 8M\n"
        "[a]\nplugin = text:identity\n"
        "[b]\nplugin = testplug:crash_random\np = 0.03\nrestart = on-failure\n"
        "max_restarts = 50\n"
        "[c]\nplugin = text:identity\n",
        in, len);
    cr_assert_eq(r.status, 0, "exit %d, stderr: %.2000s", r.status, r.err);
    /* crash_random emits before it crashes: an item may come out twice in
     * the one documented window, never with other bytes. */
    const char *p = r.out;
    const char *end = r.out + r.outlen;
    unsigned next = 1;
    while (p < end) {
        uint32_t l;
        cr_assert_geq((size_t)(end - p), 4);
        memcpy(&l, p, 4);
        cr_assert_eq(l, ITEM);
        unsigned item = (unsigned)strtoul(p + 4, NULL, 10);
        cr_assert(item == next || item == next - 1, "item %u after item %u", item, next - 1);
        const char *orig = in + (size_t)(item - 1) * (4 + ITEM);
        cr_assert(memcmp(p, orig, 4 + ITEM) == 0, "item %u came out with other bytes", item);
        if (item == next)
            next++;
        p += 4 + l;
    }
    cr_assert_eq(next, 301, "items up to %u came out, not all 300", next - 1);
    cr_assert(strstr(r.err, "restarts during the run"), "no crash happened: %.2000s", r.err);
    cr_assert_eq(shm_left(r.pid), 0);
    host_run_free(&r);
    free(in);
}

Test(pool, bad_pool_settings_are_refused_naming_the_line)
{
    host_run r;
    run(&r, "[pipeline]\nframing = length32\npool_size = 100K\n[a]\nplugin = text:identity\n",
        "", 0);
    cr_assert_eq(r.status, 2);
    char want[4096];
    snprintf(want, sizeof want,
             "%s/p.ini:3: pool_size must be 0 (no pool), auto, or at least 256K", test_dir());
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    host_run_free(&r);

    run(&r, "[pipeline]\npool_threshold = 0\n[a]\nplugin = text:identity\n", "", 0);
    cr_assert_eq(r.status, 2);
    snprintf(want, sizeof want, "%s/p.ini:2: pool_threshold must be greater than 0", test_dir());
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    host_run_free(&r);

    run(&r, "[pipeline]\npool_size = lots\n[a]\nplugin = text:identity\n", "", 0);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "p.ini:2:") && strstr(r.err, "pool_size"), "stderr: %s", r.err);
    host_run_free(&r);
}
