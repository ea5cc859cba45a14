/* SPDX-License-Identifier: MIT */
/*
 * test_pool.c - the shared pool of large items (framework/transport/pool.c): blocks,
 * counts, first-fit reuse, a full pool, bad references, and counts changed
 * from other processes.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/pool.h"

#define MIB (1024 * 1024)

Test(pool, a_block_holds_its_bytes_and_goes_with_its_last_count)
{
    cv_pool *p = cv_pool_create(4 * MIB);
    cr_assert_not_null(p);
    cv_ref ref = 0;
    unsigned char *d = cv_pool_alloc(p, 100000, &ref);
    cr_assert_not_null(d);
    cr_assert_neq(ref, 0);
    cr_assert_eq(cv_pool_data(p, ref), d);
    cr_assert_geq(cv_pool_room(p, ref), 100000);
    memset(d, 'x', 100000);

    cv_pool_stats st;
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.size, 4 * MIB);
    cr_assert_eq(st.used, 102400, "100000 bytes and the header use 25 pages, not %zu bytes", st.used);
    cr_assert_eq(st.allocs, 1);

    cv_pool_hold(p, ref);
    cv_pool_drop(p, ref);
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.used, 102400, "one count is left: the block stays");
    cv_pool_drop(p, ref);
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.used, 0);
    cr_assert_null(cv_pool_data(p, ref), "a freed block is no longer a valid reference");
    cv_pool_destroy(p);
}

Test(pool, first_fit_reuses_the_pages_freed)
{
    cv_pool *p = cv_pool_create(4 * MIB);
    cv_ref a, b, c;
    void *da = cv_pool_alloc(p, 64 * 1024, &a);
    void *db = cv_pool_alloc(p, 64 * 1024, &b);
    cr_assert(da && db);
    cr_assert_gt(b, a);
    cv_pool_drop(p, a);
    void *dc = cv_pool_alloc(p, 60 * 1024, &c);
    cr_assert_eq(c, a, "the first run that fits is the one freed");
    cr_assert_eq(dc, da);
    cv_pool_drop(p, b);
    cv_pool_drop(p, c);
    cv_pool_destroy(p);
}

Test(pool, a_full_pool_refuses_and_counts_it)
{
    cv_pool *p = cv_pool_create(256 * 1024);   /* 64 pages */
    cv_ref a, b, c;
    cr_assert_not_null(cv_pool_alloc(p, 128 * 1024, &a));  /* 33 pages with the header */
    cr_assert_null(cv_pool_alloc(p, 128 * 1024, &b), "31 pages are left, 33 are needed");
    cr_assert_not_null(cv_pool_alloc(p, 100 * 1024, &c));
    cr_assert_null(cv_pool_alloc(p, 300 * 1024, &b), "larger than the pool");
    cv_pool_stats st;
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.full, 1, "a request larger than the pool is not a full pool");
    cr_assert_eq(st.allocs, 2);
    cv_pool_drop(p, a);
    cr_assert_not_null(cv_pool_alloc(p, 128 * 1024, &b), "room again once a block is freed");
    cv_pool_drop(p, b);
    cv_pool_drop(p, c);
    cv_pool_destroy(p);
}

Test(pool, references_that_are_not_blocks_are_refused)
{
    cv_pool *p = cv_pool_create(MIB);
    cv_ref ref;
    cr_assert_not_null(cv_pool_alloc(p, 70000, &ref));
    cr_assert_null(cv_pool_data(p, 0));
    cr_assert_null(cv_pool_data(p, 1));
    cr_assert_null(cv_pool_data(p, ref + 1), "not on a page boundary");
    cr_assert_null(cv_pool_data(p, ref + 4096), "inside a block, not its start");
    cr_assert_null(cv_pool_data(p, (cv_ref)1 << 40), "beyond the pool");
    cr_assert_eq(cv_pool_room(p, ref + 4096), 0);
    cv_pool_drop(p, ref + 4096);   /* ignored, not a corruption */
    cv_pool_stats st;
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.used, 18 * 4096);
    cv_pool_drop(p, ref);
    cv_pool_destroy(p);
}

Test(pool, too_small_a_pool_is_refused)
{
    cr_assert_null(cv_pool_create(4096));
}

/* Counts taken and dropped by other processes: the block is freed by the
 * last one, wherever it is. */
Test(pool, counts_are_shared_between_processes)
{
    cv_pool *p = cv_pool_create(4 * MIB);
    cv_ref ref;
    unsigned char *d = cv_pool_alloc(p, 200000, &ref);
    memset(d, 'y', 200000);
    for (int i = 0; i < 4; i++)
        cv_pool_hold(p, ref);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        cr_assert_geq(kids[i], 0);
        if (kids[i] == 0) {
            const unsigned char *q = cv_pool_data(p, ref);
            int ok = q == d && q[0] == 'y' && q[199999] == 'y';
            cv_ref mine;
            void *m = cv_pool_alloc(p, 70000, &mine);   /* others allocate meanwhile */
            if (m)
                cv_pool_drop(p, mine);
            cv_pool_drop(p, ref);
            _exit(ok && m ? 0 : 1);
        }
    }
    for (int i = 0; i < 4; i++) {
        int status;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d saw the block", i);
    }
    cv_pool_stats st;
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.used, 49 * 4096, "the parent's count keeps the block");
    cv_pool_drop(p, ref);
    cv_pool_get_stats(p, &st);
    cr_assert_eq(st.used, 0);
    cv_pool_destroy(p);
}
