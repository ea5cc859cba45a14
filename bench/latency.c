/* SPDX-License-Identifier: MIT */
/*
 * latency.c - W5: the time one item takes through an idle pipeline.
 *
 *   latency [-n COUNT] [-w WARMUP] [-p PERIOD_US] [-t TIMEOUT_MS] -- CMD [ARG...]
 *
 * Starts CMD (normally conveyor-host -c pipeline.ini) with its stdin and
 * stdout on pipes, then every PERIOD_US (default 1000) writes one line of
 * 15 digits (the send time's low digits in ns) and '\n' - the same 16
 * bytes as W1's items - and waits until that exact line comes back on
 * CMD's stdout.  The round trip of each item is its latency.  The first
 * WARMUP (default 50) items are not counted.  One item at a time: the
 * pipeline is idle when each item arrives, which is what is measured.
 *
 * Prints one line:  count=N p50_us=X p90_us=X p99_us=X max_us=X mean_us=X
 * Exit 1 (and no figures) when a line does not come back within
 * TIMEOUT_MS (default 2000), comes back different, or CMD fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The q-th quantile (0..1) of sorted V by the nearest-rank method. */
static long long quantile(const long long *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static pid_t child = -1;

static void stop_child(void)
{
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
}

int main(int argc, char **argv)
{
    long count = 2000, warmup = 50, period_us = 1000, timeout_ms = 2000;
    int opt;
    while ((opt = getopt(argc, argv, "+n:w:p:t:")) != -1) {
        switch (opt) {
        case 'n': count = atol(optarg); break;
        case 'w': warmup = atol(optarg); break;
        case 'p': period_us = atol(optarg); break;
        case 't': timeout_ms = atol(optarg); break;
        default: goto usage;
        }
    }
    if (optind >= argc || count < 1 || warmup < 0 || period_us < 1 || timeout_ms < 1)
        goto usage;

    int to_cmd[2], from_cmd[2];
    if (pipe2(to_cmd, O_CLOEXEC) < 0 || pipe2(from_cmd, O_CLOEXEC) < 0) {
        perror("latency: pipe");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    child = fork();
    if (child < 0) {
        perror("latency: fork");
        return 1;
    }
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        dup2(to_cmd[0], STDIN_FILENO);
        dup2(from_cmd[1], STDOUT_FILENO);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "latency: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    close(to_cmd[0]);
    close(from_cmd[1]);
    int wfd = to_cmd[1], rfd = from_cmd[0];

    long total = warmup + count;
    long long *lat = calloc((size_t)count, sizeof *lat);
    char line[32], got[64];
    size_t have = 0;
    long long next = now_ns();
    if (!lat) {
        perror("latency");
        stop_child();
        return 1;
    }
    for (long i = 0; i < total; i++) {
        /* Absolute deadlines: the period does not drift with latencies. */
        next += period_us * 1000LL;
        struct timespec ts = {next / 1000000000LL, next % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
        long long t0 = now_ns();
        snprintf(line, sizeof line, "%015llu", (unsigned long long)t0 % 1000000000000000ULL);
        line[15] = '\n';
        if (write(wfd, line, 16) != 16) {
            fprintf(stderr, "latency: writing item %ld: %s\n", i, strerror(errno));
            stop_child();
            return 1;
        }
        /* Read until the whole line is back. */
        while (have < 16) {
            long long left = timeout_ms - (now_ns() - t0) / 1000000;
            struct pollfd pfd = {.fd = rfd, .events = POLLIN};
            int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (n <= 0) {
                fprintf(stderr, "latency: item %ld did not come back within %ld ms\n", i,
                        timeout_ms);
                stop_child();
                return 1;
            }
            ssize_t r = read(rfd, got + have, sizeof got - have);
            if (r <= 0) {
                fprintf(stderr, "latency: the command's output ended at item %ld\n", i);
                stop_child();
                return 1;
            }
            have += (size_t)r;
        }
        long long t1 = now_ns();
        if (have != 16 || memcmp(got, line, 16) != 0) {
            fprintf(stderr, "latency: item %ld came back as '%.*s' (%zu bytes), sent '%.15s'\n",
                    i, (int)(have < 16 ? have : 15), got, have, line);
            stop_child();
            return 1;
        }
        have = 0;
        if (i >= warmup)
            lat[i - warmup] = t1 - t0;
    }
    close(wfd);     /* end of input: the pipeline ends */
    int status;
    if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "latency: the command did not end cleanly\n");
        return 1;
    }
    child = -1;

    qsort(lat, (size_t)count, sizeof *lat, cmp_ll);
    long long sum = 0;
    for (long i = 0; i < count; i++)
        sum += lat[i];
    printf("count=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f\n", count,
           (double)quantile(lat, (size_t)count, 0.50) / 1e3,
           (double)quantile(lat, (size_t)count, 0.90) / 1e3,
           (double)quantile(lat, (size_t)count, 0.99) / 1e3,
           (double)lat[count - 1] / 1e3, (double)sum / (double)count / 1e3);
    free(lat);
    return 0;
usage:
    fprintf(stderr, "usage: latency [-n COUNT] [-w WARMUP] [-p PERIOD_US] [-t TIMEOUT_MS] "
                    "-- CMD [ARG...]\n");
    return 2;
}
