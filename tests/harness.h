/* SPDX-License-Identifier: MIT */
/*
 * harness.h - runs the real conveyor-host for end-to-end tests.
 *
 * Paths come from the environment set by `make check` (tests/local.mk):
 * CONVEYOR_HOST, CONVEYOR_PLUGIN_PATH, CONVEYOR_TEST_DATA, CONVEYOR_EXAMPLES.
 * Every run has a time limit, so a hang fails the test instead of the suite.
 */
#ifndef CV_TEST_HARNESS_H
#define CV_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct host_run {
    pid_t pid;
    int status;         /* exit code, or 128 + signal; -1 when it timed out */
    char *out;          /* standard output, NUL-terminated */
    size_t outlen;
    char *err;          /* standard error, NUL-terminated */
    size_t errlen;
    /* while running (host_start) */
    int in_fd, out_fd, err_fd;
} host_run;

/* The host binary itself, for tests whose point is the descriptors,
 * signals or pid the host gets: libtool's wrapper script in the build tree
 * opens descriptors and forks before it execs.  Sets LD_LIBRARY_PATH so
 * the binary finds the library; CONVEYOR_HOST when there is no such file. */
const char *host_binary(void);

/* Starts conveyor-host with ARGS (NULL-terminated, without argv[0]). */
void host_start(host_run *r, const char *const *args);
/* Feeds IN on its standard input (then closes it, unless KEEP_OPEN),
 * collects its output and waits, killing it after TIMEOUT seconds. */
void host_finish(host_run *r, const char *in, size_t inlen, int timeout);
/* Both: the usual case.  Returns r->status. */
int host_run_args(host_run *r, const char *in, size_t inlen, const char *const *args);
/* Runs `conveyor-host -c INI`, feeding IN (a string). */
int host_run_ini(host_run *r, const char *ini, const char *in);
/* Writes INI (the text) as test_dir()/p.ini and runs it on IN (INLEN
 * bytes; run_text: a string, or NULL for no input). */
int run_bytes(host_run *r, const char *ini, const void *in, size_t inlen);
int run_text(host_run *r, const char *ini, const char *in);
void host_run_free(host_run *r);

/* A fresh folder for this test (removed by nothing: it lives in the build
 * tree's tests/tmp, cleaned by make clean). */
const char *test_dir(void);
/* Writes TEXT into test_dir()/NAME; returns the path (malloc'd). */
char *write_file(const char *name, const char *text);
char *write_bytes(const char *name, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated); NULL when missing. */
char *read_file(const char *path, size_t *len);

/* The summary conveyor-host ends every run with, unless -q (its first
 * line "conveyor-host: done in ...", "failed after ...", "stopped by SIGx
 * after ..." or "the output was closed after ...", a line per stage
 * process, and after anything but a complete run the items in flight):
 * where it starts in ERR, or NULL when ERR does not end with one. */
const char *summary_in(const char *err);
/* ERR without its summary (malloc'd): the messages of the run itself. */
char *messages_of(const char *err);
/* The summary in ERR (malloc'd; "" when none) with the two numbers that
 * depend on timing, the duration and the rate, written T and R:
 * "conveyor-host: done in T s: 3 items read, 3 written, R items/s\n...". */
char *summary_masked(const char *err);

/* The state letter and parent of process PID, from /proc/PID/stat: 0, or
 * -1 when it does not exist. */
int proc_stat(pid_t pid, char *state, pid_t *ppid);
/* The live (not zombie) children of HOST, at most MAX, into KIDS. */
size_t children_of(pid_t host, pid_t *kids, size_t max);

/* Reads FD into *BUF (grown, NUL-terminated; *LEN its length; *BUF may
 * start NULL) until it holds NEEDLE; the test fails after 10 s or when the
 * stream ends first. */
void read_until(int fd, char **buf, size_t *len, const char *needle);
/* read_until() reads in chunks, so BUF may hold more than MARKER: what the
 * host wrote right after it (a summary, when a drain ends before the test
 * reads).  Puts that part back in front of R's standard error, so that
 * R->err is all the host wrote after MARKER. */
void host_err_put_back(host_run *r, const char *buf, const char *marker);

/* How many /dev/shm entries the host PID left behind. */
int shm_left(pid_t pid);

const char *env_or(const char *name, const char *dflt);

#endif
