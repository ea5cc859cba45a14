/* SPDX-License-Identifier: MIT */
/*
 * ring_wait.c - how the processes of a ring transport sleep and wake: the
 * adaptive spin, the doorbell futex, giving way after a hand-off, and
 * cv_channels_wait for rings.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "transport/channel.h"
#include "transport/ring.h"

#define MAX_SPIN_NS 20000

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Adaptive spin budget of this process, in nanoseconds, and its ceiling
 * (set by cv_ring_set_spin_limit from how crowded the machine is). */
static long spin_ns = 1000;
static long spin_max_ns = MAX_SPIN_NS;

void cv_ring_set_spin_limit(long ns)
{
    spin_max_ns = ns < 0 ? 0 : ns;
    if (spin_ns > spin_max_ns)
        spin_ns = spin_max_ns;
}

/* --- giving way after a wake-up ----------------------------------------- */

/* A process that rings a sleeper just before it sleeps itself (a hand-off)
 * is often run over at once by the woken one on its own CPU.  When the woken
 * one then rings the next process, the kernel sees two runnable processes
 * on its CPU and sends that one to another: an idle vCPU, whose wake-up
 * costs ~40 us on a VM (the ringer pays ~13 us for the IPI, the halted vCPU
 * takes the rest to start) against a few us for a switch on this CPU.  So
 * the woken one gives way once, letting the ringer finish going to sleep,
 * and a chain of hand-offs through an idle pipeline stays on one CPU (W5,
 * 3 stages on 2 vCPUs: round trip p50 ~110 us -> ~20 us).
 *
 * A yield puts us behind every runnable process on this CPU, and a busy one
 * keeps it for a whole time slice (milliseconds).  A yield that took that
 * long stops giving way for a pause, doubled at each such yield in a row
 * (on a busy machine no CPU sleeps deeply enough to make wake-ups slow). */
#define GIVE_WAY_SLOW_NS 500000LL
#define GIVE_WAY_PAUSE_MIN_NS 1000000000LL
#define GIVE_WAY_PAUSE_MAX_NS 16000000000LL
static long long give_way_from, give_way_pause;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void give_way(void)
{
    long long t0 = now_ns();
    if (t0 < give_way_from)
        return;
    sched_yield();
    long long t1 = now_ns();
    if (t1 - t0 < GIVE_WAY_SLOW_NS)
        return;
    if (t0 - give_way_from > 16 * give_way_pause)
        give_way_pause = 0;     /* the last slow one is long past */
    give_way_pause = give_way_pause ? 2 * give_way_pause : GIVE_WAY_PAUSE_MIN_NS;
    if (give_way_pause > GIVE_WAY_PAUSE_MAX_NS)
        give_way_pause = GIVE_WAY_PAUSE_MAX_NS;
    give_way_from = t1 + give_way_pause;
}

/* BELL's owner was woken by a ring: it gives way when that was a hand-off
 * from this CPU and the ringer is not asleep yet. */
static void after_ring(const cv_bell *bell)
{
    const cv_bell *w = __atomic_load_n(&bell->rung_by, __ATOMIC_RELAXED);
    int cpu = sched_getcpu();
    if (w && cpu >= 0 && __atomic_load_n(&w->handoff_cpu, __ATOMIC_RELAXED) == cpu &&
        !__atomic_load_n(&w->waiting, __ATOMIC_RELAXED))
        give_way();
}

/* --- the bells ------------------------------------------------------------ */

static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

void cv_bell_wake(cv_bell *b)
{
    __atomic_add_fetch(&b->word, 1, __ATOMIC_SEQ_CST);
    futex(&b->word, FUTEX_WAKE, INT_MAX, NULL);
    if (__atomic_load_n(&b->armed, __ATOMIC_RELAXED) && b->notify_fd1 > 0) {
        uint64_t one = 1;
        ssize_t w = write(b->notify_fd1 - 1, &one, sizeof one);
        (void)w;    /* a full eventfd is readable already */
    }
}

void cv_bell_set_notify(cv_bell *b, int fd)
{
    b->notify_fd1 = fd + 1;
}

/* --- waiting ------------------------------------------------------------ */

static int readable(const ring_channel *ch)
{
    return __atomic_load_n(&ch->sh->head, __ATOMIC_ACQUIRE) != ch->rnext ||
           __atomic_load_n(&ch->sh->closed, __ATOMIC_ACQUIRE);
}

/* Only a channel that found itself full waits for space: any other output
 * is always "writable" and would turn every wait into a busy loop. */
static int writable(const ring_channel *ch)
{
    if (!ch->want_space)
        return 0;
    return __atomic_load_n(&ch->sh->tail, __ATOMIC_ACQUIRE) != ch->tail_cache ||
           __atomic_load_n(&ch->sh->reader_gone, __ATOMIC_ACQUIRE);
}

static int any_ready(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite)
{
    for (size_t i = 0; i < nread; i++)
        if (readable((const ring_channel *)read[i]))
            return 1;
    for (size_t i = 0; i < nwrite; i++)
        if (writable((const ring_channel *)write[i]))
            return 1;
    return 0;
}

/* Says which outputs wait for space, for their consumers (publish_tail). */
static void want_space(cv_channel **write, size_t nwrite)
{
    for (size_t i = 0; i < nwrite; i++) {
        ring_channel *ch = (ring_channel *)write[i];
        uint32_t want = ch->can_write && ch->want_space;
        if (__atomic_load_n(&ch->sh->space_wanted, __ATOMIC_RELAXED) != want)
            __atomic_store_n(&ch->sh->space_wanted, want, __ATOMIC_RELAXED);
    }
}

static void set_armed(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                      uint32_t on)
{
    if (nread) {
        cv_bell *b = ((ring_channel *)read[0])->cons_bell;
        __atomic_store_n(&b->armed, on, __ATOMIC_RELAXED);
        __atomic_store_n(&b->waiting, on, __ATOMIC_RELAXED);
    }
    if (nwrite) {
        cv_bell *b = ((ring_channel *)write[0])->prod_bell;
        __atomic_store_n(&b->armed, on, __ATOMIC_RELAXED);
        __atomic_store_n(&b->waiting, on, __ATOMIC_RELAXED);
    }
}

/* Arms the bells of these ends (their notify descriptors are written when
 * they are rung), with the store/fence/load order of a futex sleep: 1 when
 * one of the channels can already progress (then nothing stays armed). */
int cv_ring_arm(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite)
{
    for (size_t i = 0; i < nread; i++)
        cv_ring_publish(read[i]);
    for (size_t i = 0; i < nwrite; i++)
        cv_ring_publish(write[i]);
    want_space(write, nwrite);
    set_armed(read, nread, write, nwrite, 1);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!any_ready(read, nread, write, nwrite))
        return 0;
    set_armed(read, nread, write, nwrite, 0);
    return 1;
}

void cv_ring_disarm(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite)
{
    set_armed(read, nread, write, nwrite, 0);
}

int cv_ring_wait(cv_channel **read, size_t nread, cv_channel **write, size_t nwrite,
                 int extra_fd, int timeout_ms, const sigset_t *sigmask)
{
    for (size_t i = 0; i < nread; i++)
        cv_ring_publish(read[i]);
    for (size_t i = 0; i < nwrite; i++)
        cv_ring_publish(write[i]);

    if (extra_fd >= 0) {
        /* The source waiting for its input: everything is published, so
         * only the input can bring progress. */
        struct pollfd pfd = {.fd = extra_fd, .events = POLLIN};
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        int n = ppoll(&pfd, 1, timeout_ms >= 0 ? &ts : NULL, sigmask);
        if (n < 0)
            return -errno;
        if (n > 0)
            give_way();     /* the input's writer may be about to sleep too */
        return 0;
    }
    if (nread + nwrite == 0)
        return -EINVAL;

    /* Spin a little: the other side is often about to publish.  The budget
     * grows when spinning paid off and shrinks when it did not, so with
     * more busy processes than cores it falls to nothing. */
    if (spin_ns > 0) {
        /* Counted in rounds of ~20 ns (a pause and a look at the shared
         * positions), not with the clock, which cost more than the spin. */
        long rounds = spin_ns / 20;
        for (long i = 1; i <= rounds; i++) {
            if (any_ready(read, nread, write, nwrite)) {
                spin_ns = spin_ns * 2 > spin_max_ns ? spin_max_ns : spin_ns * 2;
                return 0;
            }
            cpu_relax();
            if (i == rounds / 2)
                sched_yield();
        }
        spin_ns /= 2;
    } else if (spin_max_ns > 0) {
        spin_ns = spin_max_ns < 250 ? spin_max_ns : 250;  /* try spinning again next time */
    }

    cv_bell *bell = nread ? ((ring_channel *)read[0])->cons_bell : ((ring_channel *)write[0])->prod_bell;
    uint32_t seen = __atomic_load_n(&bell->word, __ATOMIC_ACQUIRE);
    /* Which outputs this sleep waits for space on, for their consumers
     * (publish_tail); the fence below orders it before the last look. */
    want_space(write, nwrite);
    __atomic_store_n(&bell->rung_by, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&bell->waiting, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int rc = 0, rung = 0;
    if (!any_ready(read, nread, write, nwrite)) {
        /* A timeout bounds the damage of any missed wake-up. */
        struct timespec ts = {0, 200 * 1000000L};
        if (timeout_ms >= 0 && timeout_ms < 200)
            ts.tv_nsec = (long)timeout_ms * 1000000L;
        if (futex(&bell->word, FUTEX_WAIT, seen, &ts) == 0)
            rung = 1;
        else if (errno == EINTR)
            rc = -EINTR;
    }
    __atomic_store_n(&bell->waiting, 0, __ATOMIC_RELAXED);
    if (rung)
        after_ring(bell);
    return rc;
}
