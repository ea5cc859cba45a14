/* SPDX-License-Identifier: MIT */
/*
 * runner.c - runs one benchmark command and says how it went: wall time,
 * CPU time of everything it started, and optionally the peak total PSS of
 * its process tree.  Used by bench/run for every timed run.
 *
 *   runner [-r FILE] [-s STALL_S] [-t TIMEOUT_S] [-i MS] [-p] [-v] -- CMD [ARG...]
 *
 *   -r FILE     write the result line there (default: stderr)
 *   -s STALL_S  stop the command when its processes together used less
 *               than 20 ms of CPU in this long (default 5; 0: never): a
 *               pipeline that deadlocks shows up as "stalled", not as a
 *               hung benchmark
 *   -t TIMEOUT  stop it after this many seconds in any case (default 600)
 *   -i MS       sampling interval (default 100)
 *   -p          sample the sum of Pss over the process tree
 *               (/proc/PID/smaps_rollup) and report the peak
 *   -v          print every sample to stderr (time, processes, CPU, Pss)
 *
 * The result is one line of key=value pairs:
 *   status=exit:N|signal:N|stalled|timeout|interrupted elapsed=S cpu=S
 *   peak_pss_kib=N others=C
 * where others is how many cores the rest of the machine kept busy, on
 * average, while the command ran (from /proc/stat; -1 when unknown).
 *
 * Why a program and not bash: the end of the run must be seen at once
 * (SIGCHLD, not a polling loop), the tree must be sampled cheaply while
 * it runs, and a hung tree must be stopped whole.  The command runs in a
 * process group of its own and the runner is its subreaper, so a stopped
 * tree leaves no process behind (and conveyor-host, stopped with two
 * SIGTERMs before any SIGKILL, no shared-memory segment either).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 4096
/* Less CPU than this in STALL_S seconds, all processes together, is a hang. */
#define STALL_CPU_NS 20000000ULL

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The parent of PID from /proc/PID/stat, or -1.  The command name is in
 * parentheses and may hold spaces, so parse after the last ')'. */
static int parent_of(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    int ppid;
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

/* Fills PIDS with every descendant of ROOT (not ROOT itself); returns how
 * many.  One pass over /proc collects (pid, ppid), then the tree is grown
 * from ROOT until it stops growing. */
static size_t descendants(int root, int *pids, size_t max)
{
    static int all[MAX_PROCS], par[MAX_PROCS];
    size_t nall = 0, n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && nall < MAX_PROCS) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        int pp = parent_of((int)pid);
        if (pp < 0)
            continue;
        all[nall] = (int)pid;
        par[nall++] = pp;
    }
    closedir(d);
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t i = 0; i < nall; i++) {
            if (all[i] == 0)
                continue;
            int in = par[i] == root;
            for (size_t k = 0; !in && k < n; k++)
                in = par[i] == pids[k];
            if (in && n < max) {
                pids[n++] = all[i];
                all[i] = 0;
                grew = 1;
            }
        }
    }
    return n;
}

/* Nanoseconds PID has run (schedstat), or its utime+stime in ticks
 * scaled to ns when schedstat is missing; 0 when gone. */
static unsigned long long cpu_ns(int pid)
{
    char path[64];
    unsigned long long ns = 0;
    snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
        return ns;
    }
    char buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
}

/* Pss of PID in KiB from smaps_rollup; 0 when gone or unreadable. */
static unsigned long long pss_kib(int pid)
{
    char path[64], line[256];
    unsigned long long kib = 0;
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* CPU seconds the whole machine has spent busy (not idle, not waiting
 * for I/O) since boot, from the first line of /proc/stat; -1 if unknown. */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Stops a command that hangs: SIGTERM twice to its process group (a
 * second signal makes conveyor-host stop at once, still removing its
 * shared-memory segment), then SIGKILL to the group and to anything of
 * the tree that left it, once CHILD is gone or after 3 s. */
static void stop_tree(pid_t child, int self, int *tree)
{
    kill(-child, SIGTERM);
    sleep_ms(200);
    kill(-child, SIGTERM);
    for (int i = 0; i < 60; i++) {
        int st;
        if (waitpid(child, &st, WNOHANG) == child)
            break;
        sleep_ms(50);
    }
    kill(-child, SIGKILL);
    size_t n = descendants(self, tree, MAX_PROCS);
    for (size_t i = 0; i < n; i++)
        kill(tree[i], SIGKILL);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

static void usage(void)
{
    fprintf(stderr, "usage: runner [-r FILE] [-s STALL_S] [-t TIMEOUT_S] [-i MS] [-p] [-v] "
                    "-- CMD [ARG...]\n");
}

int main(int argc, char **argv)
{
    const char *result_path = NULL;
    double stall_s = 5, timeout_s = 600;
    long interval_ms = 100;
    int want_pss = 0, verbose = 0, opt;

    while ((opt = getopt(argc, argv, "+r:s:t:i:pv")) != -1) {
        switch (opt) {
        case 'r': result_path = optarg; break;
        case 's': stall_s = atof(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 'i': interval_ms = atol(optarg); break;
        case 'p': want_pss = 1; break;
        case 'v': verbose = 1; break;
        default: usage(); return 2;
        }
    }
    if (optind >= argc || interval_ms <= 0) {
        usage();
        return 2;
    }

    /* Orphans of a killed tree come back to us, so we can reap them. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    struct rusage ru0, ru1, self0, self1;
    getrusage(RUSAGE_CHILDREN, &ru0);
    getrusage(RUSAGE_SELF, &self0);
    double busy0 = machine_busy_s();
    double t0 = now_s();
    pid_t child = fork();
    if (child < 0) {
        perror("runner: fork");
        return 2;
    }
    if (child == 0) {
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "runner: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    setpgid(child, child);      /* also here: no race with the first kill */

    static int tree[MAX_PROCS];
    int self = (int)getpid();
    unsigned long long last_cpu = 0, peak = 0;
    double last_progress = t0, t_end = 0;
    int status = 0, done = 0;
    const char *verdict = NULL;
    struct timespec tick = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};

    while (!done) {
        siginfo_t si;
        int sig = sigtimedwait(&chld, &si, &tick);
        if (sig == SIGCHLD || sig < 0) {
            pid_t p;
            int st;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child) {
                    t_end = now_s();
                    status = st;
                    done = 1;
                }
            if (done)
                break;
        }
        if (interrupted) {
            verdict = "interrupted";
            break;
        }
        size_t n = descendants(self, tree, MAX_PROCS);
        unsigned long long cpu = 0, pss = 0;
        /* Newest first: the first process (the host) is read last.  A
         * page mapped by more processes between two reads is counted at
         * a larger share in the earlier read, so reading the long-lived
         * mapper first overstates the total while the others fault in. */
        for (size_t i = n; i-- > 0;) {
            cpu += cpu_ns(tree[i]);
            if (want_pss)
                pss += pss_kib(tree[i]);
        }
        if (pss > peak)
            peak = pss;
        double t = now_s();
        if (verbose)
            fprintf(stderr, "runner: t=%.3f procs=%zu cpu_ms=%.1f pss_kib=%llu\n", t - t0, n,
                    (double)cpu / 1e6, pss);
        /* Progress is real work: the host's supervisor wakes up once a
         * second even when everything else is stuck. */
        if (cpu > last_cpu + STALL_CPU_NS || cpu < last_cpu) {
            last_cpu = cpu;
            last_progress = t;
        }
        if (stall_s > 0 && t - last_progress > stall_s) {
            verdict = "stalled";
            break;
        }
        if (t - t0 > timeout_s) {
            verdict = "timeout";
            break;
        }
    }
    if (!done) {
        t_end = now_s();
        stop_tree(child, self, tree);
    }
    /* Reap the killed tree, or orphans a finished command left. */
    for (;;) {
        pid_t p = waitpid(-1, NULL, done ? WNOHANG : 0);
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0)
            break;
    }
    double busy1 = machine_busy_s();
    getrusage(RUSAGE_CHILDREN, &ru1);
    getrusage(RUSAGE_SELF, &self1);
    double cpu_s = tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime) +
                   tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime);
    double own_s = tv_s(self1.ru_utime) - tv_s(self0.ru_utime) + tv_s(self1.ru_stime) -
                   tv_s(self0.ru_stime);
    /* What everything else on the machine used meanwhile, in cores: other
     * users' work takes cores from the command and makes its figure low. */
    double others = -1;
    if (busy0 >= 0 && busy1 >= 0 && t_end > t0) {
        others = (busy1 - busy0 - cpu_s - own_s) / (t_end - t0);
        if (others < 0)
            others = 0;
    }

    char st_text[32];
    if (verdict)
        snprintf(st_text, sizeof st_text, "%s", verdict);
    else if (WIFEXITED(status))
        snprintf(st_text, sizeof st_text, "exit:%d", WEXITSTATUS(status));
    else
        snprintf(st_text, sizeof st_text, "signal:%d", WTERMSIG(status));

    FILE *out = stderr;
    if (result_path && !(out = fopen(result_path, "w"))) {
        perror(result_path);
        return 2;
    }
    fprintf(out, "status=%s elapsed=%.6f cpu=%.3f peak_pss_kib=%llu others=%.2f\n", st_text,
            t_end - t0, cpu_s, peak, others);
    if (out != stderr)
        fclose(out);
    return verdict ? 1 : 0;
}
