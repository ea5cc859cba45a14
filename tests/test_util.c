/* SPDX-License-Identifier: MIT */
/*
 * test_util.c - framework/base/util.c: sizes and numbers, spelling suggestions,
 * string helpers, allocation failure, and whole-buffer I/O through
 * interrupted short writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "base/strmap.h"
#include "base/util.h"

/* Under ASan an impossible malloc must return NULL (as plain glibc's does)
 * so that the abort test below sees cv_malloc's own abort(). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* ---- sizes and numbers -------------------------------------------------- */

Test(util, sizes_accepted)
{
    static const struct { const char *s; size_t v; } ok[] = {
        { "0", 0 }, { "10", 10 }, { "007", 7 }, { "10B", 10 },
        { "4K", 4096 }, { "4k", 4096 }, { "4KB", 4096 }, { "4KiB", 4096 }, { "4kib", 4096 },
        { "64M", (size_t)64 << 20 }, { "64MiB", (size_t)64 << 20 },
        { "1G", (size_t)1 << 30 }, { "2g", (size_t)2 << 30 }, { "1T", (size_t)1 << 40 },
        { "18446744073709551615", SIZE_MAX },
        { "16777215T", (size_t)16777215 << 40 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t v = 12345;
        cr_expect_eq(cv_parse_size(ok[i].s, &v), 0, "'%s' refused", ok[i].s);
        cr_expect_eq(v, ok[i].v, "'%s' gave %zu", ok[i].s, v);
    }
}

Test(util, sizes_refused)
{
    static const char *const bad[] = {
        "", "12Q", "-1", "+1", "1.5M", "K", "KB", " 5", "5 ", "4 K", "4KK", "4iB", "4Ki",
        "0x10", "1e3", "4KBB", "4Kb2", "M4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t v = 12345;
        cr_expect_eq(cv_parse_size(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
        cr_expect_eq(v, 12345, "'%s' changed the output", bad[i]);
    }
    cr_expect_eq(cv_parse_size(NULL, &(size_t){0}), -EINVAL);
}

Test(util, sizes_overflow)
{
    static const char *const big[] = {
        "18446744073709551616", "99999999999999999999999", "16777216T", "17179869184G",
        "18014398509481984K",
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        size_t v = 12345;
        cr_expect_eq(cv_parse_size(big[i], &v), -ERANGE, "'%s'", big[i]);
        cr_expect_eq(v, 12345);
    }
    /* Junk after a huge number is junk first. */
    cr_expect_eq(cv_parse_size("99999999999999999999999Q", &(size_t){0}), -EINVAL);
}

Test(util, unsigned_numbers)
{
    unsigned v = 77;

    cr_expect_eq(cv_parse_uint("0", 0, 10, &v), 0);
    cr_expect_eq(v, 0);
    cr_expect_eq(cv_parse_uint("1024", 1, 1024, &v), 0);
    cr_expect_eq(v, 1024);
    cr_expect_eq(cv_parse_uint("4294967295", 0, UINT32_MAX, &v), 0);
    cr_expect_eq(v, UINT32_MAX);
    v = 77;
    cr_expect_eq(cv_parse_uint("0", 1, 1024, &v), -ERANGE);
    cr_expect_eq(cv_parse_uint("1025", 1, 1024, &v), -ERANGE);
    cr_expect_eq(cv_parse_uint("4294967296", 0, UINT32_MAX, &v), -ERANGE);
    cr_expect_eq(cv_parse_uint("99999999999999999999999", 0, 10, &v), -ERANGE);
    cr_expect_eq(cv_parse_uint("", 0, 10, &v), -EINVAL);
    cr_expect_eq(cv_parse_uint("-1", 0, 10, &v), -EINVAL);
    cr_expect_eq(cv_parse_uint(" 1", 0, 10, &v), -EINVAL);
    cr_expect_eq(cv_parse_uint("1 ", 0, 10, &v), -EINVAL);
    cr_expect_eq(cv_parse_uint("1K", 0, 10000, &v), -EINVAL);
    cr_expect_eq(v, 77);
}

/* ---- suggestions -------------------------------------------------------- */

Test(util, edit_distance)
{
    cr_expect_eq(cv_edit_distance("", ""), 0);
    cr_expect_eq(cv_edit_distance("abc", ""), 3);
    cr_expect_eq(cv_edit_distance("", "abc"), 3);
    cr_expect_eq(cv_edit_distance("framing", "framing"), 0);
    cr_expect_eq(cv_edit_distance("framin", "framing"), 1);
    cr_expect_eq(cv_edit_distance("replciate", "replicate"), 2);
    cr_expect_eq(cv_edit_distance("kitten", "sitting"), 3);
    cr_expect_eq(cv_edit_distance("flaw", "lawn"), 2);
}

Test(util, suggestions)
{
    static const char *const keys[] = { "input", "output", "framing", "transport", NULL };
    static const char *const modes[] = { "rw", "ro", NULL };

    cr_expect_str_eq(cv_suggest("framin", keys), "framing");
    cr_expect_str_eq(cv_suggest("inptu", keys), "input");
    cr_expect_str_eq(cv_suggest("Output", keys), "output");
    cr_expect_str_eq(cv_suggest("transprot", keys), "transport");
    cr_expect_null(cv_suggest("colour", keys));
    cr_expect_null(cv_suggest("framingxyz", keys));  /* distance 3 */
    cr_expect_str_eq(cv_suggest("rx", modes), "rw");   /* ties: the first */
    cr_expect_null(cv_suggest("r", modes));            /* distance 1 is the whole word */
    cr_expect_null(cv_suggest("", modes));
    cr_expect_null(cv_suggest("x", (const char *const[]){ NULL }));
}

/* ---- strings ------------------------------------------------------------ */

Test(util, trim)
{
    char a[] = "  \t hello world \r\n", b[] = "x", c[] = "   ", d[] = "";

    cr_expect_eq(cv_trim(a), a);
    cr_expect_str_eq(a, "hello world");
    cr_expect_str_eq(cv_trim(b), "x");
    cr_expect_str_eq(cv_trim(c), "");
    cr_expect_str_eq(cv_trim(d), "");
}

Test(util, path_join)
{
    static const struct { const char *dir, *path, *want; } cases[] = {
        { "conf", "in.txt", "conf/in.txt" },
        { "conf/", "in.txt", "conf/in.txt" },
        { "/", "in.txt", "/in.txt" },
        { ".", "sub/in.txt", "./sub/in.txt" },
        { "conf", "/abs/in.txt", "/abs/in.txt" },
        { "conf", "-", "-" },
        { "conf", "-x", "conf/-x" },
        { "", "in.txt", "in.txt" },
        { NULL, "in.txt", "in.txt" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = cv_path_join(cases[i].dir, cases[i].path);
        cr_expect_str_eq(s, cases[i].want, "dir '%s' path '%s'",
                         cases[i].dir ? cases[i].dir : "(null)", cases[i].path);
        free(s);
    }
}

Test(util, strings_and_allocation)
{
    char *s = cv_strdup("abc");
    cr_expect_str_eq(s, "abc");
    free(s);
    s = cv_strndup("abcdef", 3);
    cr_expect_str_eq(s, "abc");
    free(s);
    s = cv_strndup("ab", 10);
    cr_expect_str_eq(s, "ab");
    free(s);

    s = cv_asprintf("%s-%d", "x", 42);
    cr_expect_str_eq(s, "x-42");
    free(s);
    /* Longer than the first attempt's stack buffer. */
    s = cv_asprintf("%0600d|%s", 7, "end");
    cr_expect_eq(strlen(s), 604);
    cr_expect_str_eq(s + 595, "00007|end");
    free(s);

    void *p = cv_malloc(0);
    cr_expect_not_null(p);
    p = cv_realloc(p, 0);
    cr_expect_not_null(p);
    p = cv_realloc(p, 100);
    memset(p, 1, 100);
    free(p);
    int *z = cv_calloc(16, sizeof *z);
    for (int i = 0; i < 16; i++)
        cr_expect_eq(z[i], 0);
    free(z);
}

Test(util, out_of_memory_aborts, .signal = SIGABRT, .init = cr_redirect_stderr)
{
    volatile size_t huge = SIZE_MAX - 16;
    void *p = cv_malloc(huge);
    free(p);  /* not reached */
}

Test(util, calloc_overflow_aborts, .signal = SIGABRT, .init = cr_redirect_stderr)
{
    volatile size_t n = SIZE_MAX / 2;
    void *p = cv_calloc(n, 4);
    free(p);  /* not reached */
}

/* ---- whole-buffer I/O --------------------------------------------------- */

static void on_alarm(int sig)
{
    (void)sig;
}

/* A slow child drains a pipe while a 1 ms timer (without SA_RESTART) keeps
 * interrupting the parent's writes: cv_write_all must still deliver every
 * byte, in order, through EINTR and short writes. */
Test(util, write_all_survives_interrupts)
{
    enum { TOTAL = 4 << 20 };
    unsigned char *buf = cv_malloc(TOTAL);
    int fds[2];
    pid_t pid;
    int status;

    for (size_t i = 0; i < TOTAL; i++)
        buf[i] = (unsigned char)(i * 7 + (i >> 13));
    cr_assert_eq(pipe(fds), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        unsigned char *got = malloc(TOTAL);
        size_t n = 0;
        close(fds[1]);
        while (n < TOTAL) {
            /* Read in small steps so the writer keeps blocking. */
            ssize_t r = cv_read_full(fds[0], got + n, TOTAL - n < 8192 ? TOTAL - n : 8192);
            if (r <= 0)
                break;
            n += (size_t)r;
            if ((n & 0xffff) == 0)
                usleep(200);
        }
        char extra;
        int ok = n == TOTAL && memcmp(got, buf, TOTAL) == 0 && read(fds[0], &extra, 1) == 0;
        _exit(ok ? 0 : 1);
    }
    close(fds[0]);

    struct sigaction sa = { .sa_handler = on_alarm };  /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
    cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);

    int rc = cv_write_all(fds[1], buf, TOTAL);

    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    close(fds[1]);
    cr_expect_eq(rc, 0);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the reader did not get every byte in order");
    free(buf);
}

Test(util, write_all_errors)
{
    int fds[2];
    char c = 'x';

    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    cr_expect_eq(cv_write_all(fds[1], &c, 1), -EPIPE);
    close(fds[1]);
    cr_expect_eq(cv_write_all(fds[1], &c, 1), -EBADF);
    cr_expect_eq(cv_write_all(fds[1], &c, 0), 0);  /* nothing to write: no call */
}

Test(util, read_full_stops_at_end_of_file)
{
    int fds[2];
    char buf[64];

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(cv_write_all(fds[1], "hello", 5), 0);
    cr_assert_eq(cv_write_all(fds[1], " world", 6), 0);
    close(fds[1]);
    cr_expect_eq(cv_read_full(fds[0], buf, 4), 4);
    cr_expect_eq(memcmp(buf, "hell", 4), 0);
    cr_expect_eq(cv_read_full(fds[0], buf, sizeof buf), 7);
    cr_expect_eq(memcmp(buf, "o world", 7), 0);
    cr_expect_eq(cv_read_full(fds[0], buf, sizeof buf), 0);
    close(fds[0]);
    cr_expect_eq(cv_read_full(fds[0], buf, sizeof buf), -EBADF);

    int fd = open("/dev/null", O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_expect_eq(cv_read_full(fd, buf, sizeof buf), 0);
    close(fd);
}

/* cv_err_at: the one shape of load-time errors. */
Test(util, err_at_shapes)
{
    char err[64];

    cr_expect_eq(cv_err_at(err, sizeof err, -EINVAL, "p.ini", 7, "bad %s", "key"), -EINVAL);
    cr_expect_str_eq(err, "p.ini:7: bad key");
    cr_expect_eq(cv_err_at(err, sizeof err, -ENOENT, "p.ini", 0, "not found"), -ENOENT);
    cr_expect_str_eq(err, "p.ini: not found");
    cr_expect_eq(cv_err_at(err, sizeof err, -ENOMEM, NULL, 3, "no memory"), -ENOMEM);
    cr_expect_str_eq(err, "no memory");
}

Test(util, err_at_cuts_and_tolerates_no_buffer)
{
    char err[12];

    cr_expect_eq(cv_err_at(err, sizeof err, -EINVAL, "file.ini", 12, "a long message"), -EINVAL);
    cr_expect_str_eq(err, "file.ini:12");
    cr_expect_eq(cv_err_at(NULL, 0, -E2BIG, "f", 1, "x"), -E2BIG);
    char tiny[4] = "xyz";
    cr_expect_eq(cv_err_at(tiny, 0, -EINVAL, "f", 1, "x"), -EINVAL);
    cr_expect_str_eq(tiny, "xyz");
}

Test(util, durations)
{
    uint64_t ms = 1;
    cr_expect_eq(cv_parse_duration("0", &ms), 0);
    cr_expect_eq(ms, 0);
    cr_expect_eq(cv_parse_duration("250ms", &ms), 0);
    cr_expect_eq(ms, 250);
    cr_expect_eq(cv_parse_duration("30s", &ms), 0);
    cr_expect_eq(ms, 30000);
    cr_expect_eq(cv_parse_duration("7", &ms), 0);
    cr_expect_eq(ms, 7000);
    cr_expect_eq(cv_parse_duration("2m", &ms), 0);
    cr_expect_eq(ms, 120000);
    cr_expect_eq(cv_parse_duration("1h", &ms), 0);
    cr_expect_eq(ms, 3600000);
    cr_expect_eq(cv_parse_duration("", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("s", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("5 s", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("1.5s", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("-1s", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("3d", &ms), -EINVAL);
    cr_expect_eq(cv_parse_duration("18446744073709551615h", &ms), -ERANGE);
    cr_expect_eq(cv_parse_duration(NULL, &ms), -EINVAL);
}

/* The map holds what was put, by string equality, through many growths,
 * and answers -1 for what it never held. */
Test(util, strmap_many_names)
{
    enum { N = 100000 };
    static char names[N][16];
    cv_strmap m;
    cv_strmap_init(&m);
    cr_expect_eq(cv_strmap_get(&m, "x"), -1);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        cv_strmap_put(&m, names[i], i);
    }
    cr_expect_eq(m.n, N);
    for (int i = 0; i < N; i++) {
        char probe[16];
        snprintf(probe, sizeof probe, "s%d", i);     /* another pointer, the same string */
        cr_assert_eq(cv_strmap_get(&m, probe), i, "%s", probe);
    }
    cr_expect_eq(cv_strmap_get(&m, "s100000"), -1);
    cr_expect_eq(cv_strmap_get(&m, ""), -1);
    cv_strmap_put(&m, names[7], 70);
    cr_expect_eq(cv_strmap_get(&m, "s7"), 70);
    cr_expect_eq(m.n, N);
    cv_strmap_free(&m);
    cr_expect_eq(cv_strmap_get(&m, "s7"), -1);
}
