/* SPDX-License-Identifier: MIT */
/*
 * harness.c - runs the real conveyor-host for end-to-end tests (harness.h).
 */
#include <ctype.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

void host_start(host_run *r, const char *const *args)
{
    int in[2], out[2], err[2];
    size_t n = 0;
    memset(r, 0, sizeof *r);
    while (args[n])
        n++;
    const char **argv = calloc(n + 2, sizeof *argv);
    argv[0] = env_or("CONVEYOR_HOST", "conveyor-host");
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = args[i];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        abort();
    fflush(NULL);
    r->pid = fork();
    if (r->pid < 0)
        abort();
    if (r->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        signal(SIGPIPE, SIG_DFL);
        /* A test that fails before it finishes the run must not leave the
         * host (and its stages, which die with it) running. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    r->in_fd = in[1];
    r->out_fd = out[0];
    r->err_fd = err[0];
    fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void host_finish(host_run *r, const char *in, size_t inlen, int timeout)
{
    size_t off = 0;
    double deadline = now() + timeout;
    signal(SIGPIPE, SIG_IGN);
    if (!r->out)
        append(&r->out, &r->outlen, "", 0);
    if (!r->err)
        append(&r->err, &r->errlen, "", 0);
    if (r->in_fd >= 0 && (!in || inlen == 0)) {
        close(r->in_fd);
        r->in_fd = -1;
    }
    while (r->out_fd >= 0 || r->err_fd >= 0) {
        struct pollfd fds[3];
        int nf = 0;
        if (r->out_fd >= 0)
            fds[nf++] = (struct pollfd){.fd = r->out_fd, .events = POLLIN};
        if (r->err_fd >= 0)
            fds[nf++] = (struct pollfd){.fd = r->err_fd, .events = POLLIN};
        if (r->in_fd >= 0)
            fds[nf++] = (struct pollfd){.fd = r->in_fd, .events = POLLOUT};
        int left = (int)((deadline - now()) * 1000);
        if (left <= 0) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            r->status = -1;
            r->pid = -1;
            append(&r->err, &r->errlen, "\n[harness: timed out]\n", 22);
            break;
        }
        if (poll(fds, (nfds_t)nf, left) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < nf; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == r->in_fd) {
                ssize_t w = write(r->in_fd, in + off, inlen - off);
                if (w > 0)
                    off += (size_t)w;
                if ((w < 0 && errno != EAGAIN) || off == inlen) {
                    close(r->in_fd);
                    r->in_fd = -1;
                }
                continue;
            }
            char buf[65536];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            int *fdp = fds[i].fd == r->out_fd ? &r->out_fd : &r->err_fd;
            if (n <= 0) {
                close(*fdp);
                *fdp = -1;
            } else if (fdp == &r->out_fd) {
                append(&r->out, &r->outlen, buf, (size_t)n);
            } else {
                append(&r->err, &r->errlen, buf, (size_t)n);
            }
        }
    }
    if (r->in_fd >= 0) {
        close(r->in_fd);
        r->in_fd = -1;
    }
    if (r->pid > 0) {
        int st;
        waitpid(r->pid, &st, 0);
        r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
}

int host_run_args(host_run *r, const char *in, size_t inlen, const char *const *args)
{
    host_start(r, args);
    host_finish(r, in, inlen, 60);
    return r->status;
}

int host_run_ini(host_run *r, const char *ini, const char *in)
{
    const char *args[] = {"-c", ini, NULL};
    return host_run_args(r, in, in ? strlen(in) : 0, args);
}

int run_bytes(host_run *r, const char *ini, const void *in, size_t inlen)
{
    char *path = write_file("p.ini", ini);
    const char *args[] = {"-c", path, NULL};
    int rc = host_run_args(r, in, inlen, args);
    free(path);
    return rc;
}

int run_text(host_run *r, const char *ini, const char *in)
{
    return run_bytes(r, ini, in, in ? strlen(in) : 0);
}

void host_run_free(host_run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

const char *test_dir(void)
{
    static char dir[4096];
    if (!dir[0]) {
        const char *base = env_or("CONVEYOR_BUILDDIR", ".");
        char parent[4000];  /* leaves room in dir for "/t.PID.XXXXXX" */
        snprintf(parent, sizeof parent, "%s/tests/tmp", base);
        mkdir(parent, 0755);
        snprintf(dir, sizeof dir, "%s/t.%d.XXXXXX", parent, (int)getpid());
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

char *write_bytes(const char *name, const void *data, size_t len)
{
    char *path = malloc(strlen(test_dir()) + strlen(name) + 2);
    sprintf(path, "%s/%s", test_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (len && fwrite(data, 1, len, f) != len)
        abort();
    fclose(f);
    return path;
}

char *write_file(const char *name, const char *text)
{
    return write_bytes(name, text, strlen(text));
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        append(&buf, &n, chunk, got);
    fclose(f);
    if (!buf)
        append(&buf, &n, "", 0);
    if (len)
        *len = n;
    return buf;
}

int shm_left(pid_t pid)
{
    char prefix[64];
    int n = 0;
    snprintf(prefix, sizeof prefix, "conveyor.%d.", (int)pid);
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

const char *host_binary(void)
{
    static char path[4096];
    const char *build = getenv("CONVEYOR_BUILDDIR");
    if (!build)
        return env_or("CONVEYOR_HOST", "conveyor-host");
    snprintf(path, sizeof path, "%s/.libs/conveyor-host", build);
    if (access(path, X_OK) != 0)
        return env_or("CONVEYOR_HOST", "conveyor-host");
    char lib[4096];
    const char *old = getenv("LD_LIBRARY_PATH");
    snprintf(lib, sizeof lib, "%s/framework/.libs%s%s", build, old ? ":" : "", old ? old : "");
    setenv("LD_LIBRARY_PATH", lib, 1);
    return path;
}

/* The line at P is the first line of a summary. */
static int summary_head_at(const char *p)
{
    static const char *const heads[] = {"done in ", "failed after ", "stopped by SIG",
                                        "the output was closed after "};
    static const char prefix[] = "conveyor-host: ";
    if (strncmp(p, prefix, strlen(prefix)) != 0)
        return 0;
    p += strlen(prefix);
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++)
        if (strncmp(p, heads[i], strlen(heads[i])) == 0) {
            const char *eol = strchr(p, '\n');
            const char *rate = strstr(p, " items/s\n");
            return eol && rate && rate + strlen(" items/s") == eol;
        }
    return 0;
}

/* The line at P can follow a summary's first line. */
static int summary_rest_at(const char *p)
{
    static const char *const rest[] = {"conveyor-host:   ", "conveyor-host: no items were in flight\n",
                                       "conveyor-host: 1 item was in flight and is not in the "
                                       "output\n"};
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
        if (strncmp(p, rest[i], strlen(rest[i])) == 0)
            return 1;
    unsigned long long n;
    int end = 0;
    return sscanf(p, "conveyor-host: %llu items were in flight and are not in the output\n%n", &n,
                  &end) == 1 && end > 0 && p[end - 1] == '\n';
}

const char *summary_in(const char *err)
{
    const char *found = NULL;
    for (const char *p = err; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (summary_head_at(p))
            found = p;
    if (!found)
        return NULL;
    for (const char *p = strchr(found, '\n') + 1; *p; p = strchr(p, '\n') + 1)
        if (!strchr(p, '\n') || !summary_rest_at(p))
            return NULL;
    return found;
}

char *messages_of(const char *err)
{
    const char *s = summary_in(err);
    size_t n = s ? (size_t)(s - err) : strlen(err);
    char *m = malloc(n + 1);
    memcpy(m, err, n);
    m[n] = '\0';
    return m;
}

/* Replaces the number that ends just before AT in BUF (LEN bytes) by
 * WITH; returns the new length. */
static size_t mask_number_before(char *buf, size_t len, char *at, char with)
{
    char *start = at;
    while (start > buf && (isdigit((unsigned char)start[-1]) || start[-1] == '.'))
        start--;
    if (start == at)
        return len;
    *start = with;
    memmove(start + 1, at, len - (size_t)(at - buf) + 1);
    return len - (size_t)(at - start) + 1;
}

char *summary_masked(const char *err)
{
    const char *s = summary_in(err);
    char *m = strdup(s ? s : "");
    size_t len = strlen(m);
    char *eol = strchr(m, '\n');
    if (!eol)
        return m;
    char *rate = strstr(m, " items/s\n");
    len = mask_number_before(m, len, rate, 'R');
    char *secs = strstr(m, " s: ");
    if (secs)
        mask_number_before(m, len, secs, 'T');
    return m;
}

int proc_stat(pid_t pid, char *state, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and parentheses. */
    char *rp = strrchr(buf, ')');
    int pp;
    if (!rp || sscanf(rp + 1, " %c %d", state, &pp) != 2)
        return -1;
    *ppid = (pid_t)pp;
    return 0;
}

size_t children_of(pid_t host, pid_t *kids, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) && n < max) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        char st;
        pid_t pp;
        if (*end || pid <= 0)
            continue;
        if (proc_stat((pid_t)pid, &st, &pp) == 0 && pp == host && st != 'Z')
            kids[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

void host_err_put_back(host_run *r, const char *buf, const char *marker)
{
    const char *rest = strstr(buf, marker);
    cr_assert(rest, "no '%s' in: %s", marker, buf);
    rest += strlen(marker);
    size_t a = strlen(rest), b = strlen(r->err);
    char *both = malloc(a + b + 1);
    cr_assert(both);
    memcpy(both, rest, a);
    memcpy(both + a, r->err, b + 1);
    free(r->err);
    r->err = both;
}

void read_until(int fd, char **buf, size_t *len, const char *needle)
{
    double deadline = now() + 10;
    if (!*buf) {
        *buf = calloc(1, 1);
        *len = 0;
    }
    while (!strstr(*buf, needle)) {
        int left = (int)((deadline - now()) * 1000);
        cr_assert(left > 0, "timed out waiting for '%s', got '%s'", needle, *buf);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof chunk);
        cr_assert(n > 0, "stream ended before '%s', got '%s'", needle, *buf);
        *buf = realloc(*buf, *len + (size_t)n + 1);
        memcpy(*buf + *len, chunk, (size_t)n);
        *len += (size_t)n;
        (*buf)[*len] = '\0';
    }
}
