/* SPDX-License-Identifier: MIT */
/*
 * channel_util.c - helpers of the channel tests (channel_util.h).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport/shm.h"
#include "channel_util.h"

shared_area *area;

static void map_area(void)
{
    area = cv_shared_alloc(sizeof *area);
    cr_assert_not_null(area);
    /* Sleep at once, as on a crowded machine: tests share two cores. */
    cv_ring_set_spin_limit(0);
}

cv_channel *new_ring(size_t cap, size_t max_item, size_t budget, cv_pool *pool)
{
    map_area();
    cv_channel *ch = cv_channel_create_ring(&area->stats, max_item, cap, budget, &area->producer,
                                            &area->consumer, pool);
    cr_assert_not_null(ch);
    return ch;
}

cv_channel *new_pipe(size_t max_item)
{
    map_area();
    cv_channel *ch = cv_channel_create_pipe(&area->stats, max_item);
    cr_assert_not_null(ch);
    return ch;
}

uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

const void *fill(unsigned char *p, size_t len, uint64_t seq)
{
    uint64_t base = mix(seq + 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(base + i * 7 + (i >> 8) * 13);
    return p;
}

int holds(const void *data, size_t len, uint64_t seq)
{
    const unsigned char *p = data;
    uint64_t base = mix(seq + 1);
    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(base + i * 7 + (i >> 8) * 13))
            return 0;
    return 1;
}

pid_t spawn(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(127);
    return pid;
}

void reap(pid_t pid, const char *who)
{
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "%s did not exit (status %#x)", who, status);
    cr_assert_eq(WEXITSTATUS(status), 0, "%s failed its check %d", who, WEXITSTATUS(status));
}

void tell(int fd)
{
    char c = 1;
    if (write(fd, &c, 1) != 1)
        abort();
}

int hear(int fd)
{
    char c;
    return read(fd, &c, 1) == 1;
}

int send_wait(cv_channel *ch, uint64_t seq, uint32_t flags, const void *data, size_t len)
{
    int rc;
    while ((rc = cv_channel_send(ch, seq, flags, data, len)) == -EAGAIN) {
        int w = cv_channels_wait(NULL, 0, &ch, 1, -1, -1, NULL);
        if (w < 0 && w != -EINTR)
            return w;
    }
    return rc;
}

int recv_wait(cv_channel *ch, cv_record *rec)
{
    int rc;
    while ((rc = cv_channel_recv(ch, rec)) == -EAGAIN) {
        int w = cv_channels_wait(&ch, 1, NULL, 0, -1, -1, NULL);
        if (w < 0 && w != -EINTR)
            return w;
    }
    return rc;
}

void assert_record(const cv_record *rec, uint64_t seq, uint32_t flags, size_t len)
{
    cr_assert_eq(rec->seq, seq, "seq %llu, expected %llu", (unsigned long long)rec->seq,
                 (unsigned long long)seq);
    cr_assert_eq(rec->flags, flags, "record %llu: flags %#x", (unsigned long long)seq, rec->flags);
    cr_assert_eq(rec->len, len, "record %llu: %u bytes, expected %zu", (unsigned long long)seq,
                 rec->len, len);
    cr_assert_eq(rec->ref, 0);
    cr_assert(holds(rec->data, len, seq), "record %llu: its bytes differ", (unsigned long long)seq);
}
