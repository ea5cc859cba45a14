/* SPDX-License-Identifier: MIT */
/*
 * test_shm.c - the user's segment (create, load, read-only, unlink), the
 * sweep of dead hosts' segments, robust locks and shared areas.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <conveyor/plugin.h>
#include "base/log.h"
#include "transport/shm.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/cv-test-shm.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    rmdir(tmpdir);
}

/* How many /dev/shm entries this process made ("conveyor.<our pid>."). */
static int our_segments(void)
{
    char prefix[32];
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    int n = 0;

    cr_assert_not_null(d);
    snprintf(prefix, sizeof prefix, "conveyor.%ld.", (long)getpid());
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

static void shm_path(const cv_segment *seg, char *path, size_t len)
{
    snprintf(path, len, "/dev/shm%s", seg->name);
}

static void write_file(const char *path, const unsigned char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* A pid that certainly belonged to a process that is gone now. */
static pid_t dead_pid(void)
{
    int status;
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(0);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return pid;
}

/* A process that waits to be killed, and dies with us if a test fails
 * before it is. */
static pid_t live_child(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == parent)
            pause();
        _exit(0);
    }
    return pid;
}

static void touch(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "creating %s: %s", path, strerror(errno));
    close(fd);
}

static int exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return access(path, F_OK) == 0;
}

/* --- segments ------------------------------------------------------------ */

Test(segment, created_with_name_mode_size_and_zeroes)
{
    cv_segment seg;
    char err[256] = "untouched", path[128], prefix[32];
    struct stat st;

    cr_assert_eq(cv_segment_create(&seg, 10000, NULL, 0, err, sizeof err), 0);
    cr_assert_str_empty(err);
    snprintf(prefix, sizeof prefix, "/conveyor.%ld.", (long)getpid());
    cr_assert_eq(strncmp(seg.name, prefix, strlen(prefix)), 0, "name %s", seg.name);
    const char *rnd = seg.name + strlen(prefix);
    cr_assert_geq(strlen(rnd), 8);
    cr_assert_eq(strspn(rnd, "0123456789abcdef"), strlen(rnd));
    cr_assert_eq(seg.size, 10000);
    cr_assert_eq(seg.readonly, 0);
    cr_assert_not_null(seg.addr);

    shm_path(&seg, path, sizeof path);
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(st.st_size, 10000);
    cr_assert_eq(st.st_uid, getuid());

    const unsigned char *p = seg.addr;
    for (size_t i = 0; i < seg.size; i++)
        cr_assert_eq(p[i], 0, "byte %zu is %d", i, p[i]);
    /* Writable, and it is the object in /dev/shm that changes. */
    memcpy(seg.addr, "hello", 5);
    char back[6] = {0};
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(read(fd, back, 5), 5);
    close(fd);
    cr_assert_str_eq(back, "hello");

    cv_segment_unmap(&seg);
    cr_assert_null(seg.addr);
    cv_segment_unlink(&seg);
    cr_assert_str_empty(seg.name);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(errno, ENOENT);
}

Test(segment, two_segments_have_different_names)
{
    cv_segment a, b;
    char err[256];

    cr_assert_eq(cv_segment_create(&a, 4096, NULL, 0, err, sizeof err), 0);
    cr_assert_eq(cv_segment_create(&b, 4096, NULL, 0, err, sizeof err), 0);
    cr_assert_str_neq(a.name, b.name);
    cr_assert_eq(our_segments(), 2);
    cv_segment_unmap(&a);
    cv_segment_unlink(&a);
    cv_segment_unmap(&b);
    cv_segment_unlink(&b);
    cr_assert_eq(our_segments(), 0);
}

Test(segment, size_zero_creates_nothing)
{
    cv_segment seg;
    char err[256];

    cr_assert_eq(cv_segment_create(&seg, 0, NULL, 0, err, sizeof err), 0);
    cr_assert_null(seg.addr);
    cr_assert_str_empty(seg.name);
    cr_assert_eq(seg.size, 0);
    cr_assert_eq(our_segments(), 0);
    /* Both are harmless on an empty segment. */
    cv_segment_unmap(&seg);
    cv_segment_unlink(&seg);
}

Test(segment, file_is_loaded_and_grows_the_segment,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    /* Bigger than the loader's 8 MiB chunk and not a multiple of it. */
    size_t n = (20u << 20) + 12345;
    unsigned char *data = malloc(n);
    char path[128], err[256];
    cv_segment seg;
    struct stat st;

    cr_assert_not_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 13));
    snprintf(path, sizeof path, "%s/data.bin", tmpdir);
    write_file(path, data, n);

    cr_assert_eq(cv_segment_create(&seg, 100, path, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seg.size, n);
    cr_assert_eq(memcmp(seg.addr, data, n), 0);
    char shm[128];
    shm_path(&seg, shm, sizeof shm);
    cr_assert_eq(stat(shm, &st), 0);
    cr_assert_eq((size_t)st.st_size, n);
    cv_segment_unmap(&seg);
    cv_segment_unlink(&seg);

    /* A segment larger than the file keeps zeroes after the file's bytes. */
    cr_assert_eq(cv_segment_create(&seg, n + 5000, path, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seg.size, n + 5000);
    cr_assert_eq(memcmp(seg.addr, data, n), 0);
    for (size_t i = n; i < n + 5000; i++)
        cr_assert_eq(((unsigned char *)seg.addr)[i], 0);
    cv_segment_unmap(&seg);
    cv_segment_unlink(&seg);
    cr_assert_eq(our_segments(), 0);
    free(data);
}

Test(segment, missing_file_is_named_and_leaves_nothing,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    char path[128], err[512], want[512];
    cv_segment seg;

    snprintf(path, sizeof path, "%s/data.bin", tmpdir);
    cr_assert_eq(cv_segment_create(&seg, 4096, path, 0, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "shared_memory_file '%s': No such file or directory", path);
    cr_assert_str_eq(err, want);
    cr_assert_null(seg.addr);
    cr_assert_str_empty(seg.name);
    cr_assert_eq(our_segments(), 0);
}

Test(segment, empty_file_and_no_size_is_refused,
     .init = make_tmpdir, .fini = remove_tmpdir)
{
    char path[128], err[512], want[512];
    cv_segment seg;

    snprintf(path, sizeof path, "%s/empty.bin", tmpdir);
    write_file(path, (const unsigned char *)"", 0);
    cr_assert_eq(cv_segment_create(&seg, 0, path, 0, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "shared_memory_file '%s' is empty and shared_memory is 0",
             path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(our_segments(), 0);

    /* With a size it is a zero-filled segment of that size. */
    cr_assert_eq(cv_segment_create(&seg, 64, path, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seg.size, 64);
    cr_assert_eq(((unsigned char *)seg.addr)[63], 0);
    cv_segment_unmap(&seg);
    cv_segment_unlink(&seg);
}

Test(segment, directory_as_file_is_refused, .init = make_tmpdir, .fini = remove_tmpdir)
{
    char err[512], want[512];
    cv_segment seg;

    cr_assert_eq(cv_segment_create(&seg, 64, tmpdir, 0, err, sizeof err), -EINVAL);
    snprintf(want, sizeof want, "shared_memory_file '%s': not a regular file", tmpdir);
    cr_assert_str_eq(err, want);
    cr_assert_eq(our_segments(), 0);
}

Test(segment, readonly_write_faults_in_a_child, .init = make_tmpdir, .fini = remove_tmpdir)
{
    char path[128], err[256];
    cv_segment seg;
    int status;

    snprintf(path, sizeof path, "%s/ro.bin", tmpdir);
    write_file(path, (const unsigned char *)"read me", 7);
    cr_assert_eq(cv_segment_create(&seg, 4096, path, 1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(seg.readonly, 1);
    cr_assert_eq(memcmp(seg.addr, "read me", 7), 0);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Die of the fault itself, not through a sanitizer's handler. */
        signal(SIGSEGV, SIG_DFL);
        volatile char *p = seg.addr;
        if (p[0] != 'r')
            _exit(3);      /* reading works */
        p[1] = 'X';
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child status %#x", status);
    cr_assert_eq(WTERMSIG(status), SIGSEGV);
    cr_assert_eq(memcmp(seg.addr, "read me", 7), 0);
    cv_segment_unmap(&seg);
    cv_segment_unlink(&seg);
}

Test(segment, unlink_removes_the_name_and_is_idempotent)
{
    cv_segment seg;
    char err[256], path[128];

    cr_assert_eq(cv_segment_create(&seg, 100, NULL, 0, err, sizeof err), 0);
    shm_path(&seg, path, sizeof path);
    cr_assert_eq(access(path, F_OK), 0);
    cv_segment_unlink(&seg);
    cr_assert_str_empty(seg.name);
    cr_assert_eq(access(path, F_OK), -1);
    cv_segment_unlink(&seg);
    /* The mapping outlives the name. */
    ((char *)seg.addr)[99] = 1;
    cr_assert_eq(((char *)seg.addr)[99], 1);
    cv_segment_unmap(&seg);
    cv_segment_unmap(&seg);
    cr_assert_eq(our_segments(), 0);
}

/* --- sweep ----------------------------------------------------------------- */

static void sweep_setup(void)
{
    make_tmpdir();
    cr_redirect_stderr();
}

Test(sweep, removes_only_segments_of_dead_pids, .init = sweep_setup, .fini = remove_tmpdir)
{
    char dead[64], dead2[64], live[64], self[64], init[64], msg[512];
    pid_t gone = dead_pid();
    int status;

    /* A live process of our own that is not us. */
    pid_t child = live_child();

    snprintf(dead, sizeof dead, "conveyor.%ld.x", (long)gone);
    snprintf(dead2, sizeof dead2, "conveyor.%ld.", (long)gone);
    snprintf(live, sizeof live, "conveyor.%ld.x", (long)child);
    snprintf(self, sizeof self, "conveyor.%ld.x", (long)getpid());
    snprintf(init, sizeof init, "conveyor.1.x");   /* alive; EPERM unless root */
    touch(dead);
    touch(dead2);     /* no random part: not ours */
    touch(live);
    touch(self);
    touch(init);
    touch("conveyor.abc.x");
    touch("conveyor.");
    touch("other.123.x");
    touch("conveyor.0.x");

    cv_shm_dir = tmpdir;
    cv_log_level = 2;
    int n = cv_shm_sweep();
    cv_shm_dir = "/dev/shm";

    kill(child, SIGKILL);
    waitpid(child, &status, 0);

    cr_assert_eq(n, 1);
    cr_assert_not(exists(dead));
    cr_assert(exists(dead2));
    cr_assert(exists(live));
    cr_assert(exists(self));
    cr_assert(exists(init));
    cr_assert(exists("conveyor.abc.x"));
    cr_assert(exists("conveyor."));
    cr_assert(exists("other.123.x"));
    cr_assert(exists("conveyor.0.x"));

    fflush(stderr);
    snprintf(msg, sizeof msg,
             "conveyor-host: removed stale shared-memory segment /%s (pid %ld is gone)\n",
             dead, (long)gone);
    cr_assert_stderr_eq_str(msg);
}

Test(sweep, now_dead_child_is_swept_on_a_second_pass, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char name[64];
    int status;
    pid_t child = live_child();

    snprintf(name, sizeof name, "conveyor.%ld.abcdef12", (long)child);
    touch(name);
    cv_shm_dir = tmpdir;
    cv_log_level = 0;
    cr_assert_eq(cv_shm_sweep(), 0);
    cr_assert(exists(name));
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    cr_assert_eq(cv_shm_sweep(), 1);
    cr_assert_not(exists(name));
    cr_assert_eq(cv_shm_sweep(), 0);
    cv_shm_dir = "/dev/shm";
}

/* kill(pid, 0) failing with EPERM means alive.  As root that needs a sweep
 * by an unprivileged process; otherwise pid 1 is another user's. */
Test(sweep, another_users_process_counts_as_alive, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    char other[64], dead[64];
    pid_t gone = dead_pid(), owner = 1, sweeper;
    int status, removed;

    cv_log_level = 0;
    if (geteuid() == 0) {
        owner = live_child();
    }
    snprintf(other, sizeof other, "conveyor.%ld.x", (long)owner);
    snprintf(dead, sizeof dead, "conveyor.%ld.x", (long)gone);
    touch(other);
    touch(dead);
    cv_shm_dir = tmpdir;
    if (geteuid() == 0) {
        cr_assert_eq(chmod(tmpdir, 0777), 0);
        /* The sweeper judges only its own user's segments. */
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmpdir, dead);
        cr_assert_eq(chown(path, 65534, 65534), 0);
        sweeper = fork();
        cr_assert_geq(sweeper, 0);
        if (sweeper == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(100);
            _exit(cv_shm_sweep());
        }
        cr_assert_eq(waitpid(sweeper, &status, 0), sweeper);
        kill(owner, SIGKILL);
        waitpid(owner, NULL, 0);
        cr_assert(WIFEXITED(status), "status %#x", status);
        removed = WEXITSTATUS(status);
    } else {
        removed = cv_shm_sweep();
    }
    cv_shm_dir = "/dev/shm";
    cr_assert_eq(removed, 1);
    cr_assert(exists(other));
    cr_assert_not(exists(dead));
}

Test(sweep, missing_directory_is_an_error)
{
    cv_shm_dir = "/nonexistent/conveyor-shm";
    cr_assert_eq(cv_shm_sweep(), -ENOENT);
    cv_shm_dir = "/dev/shm";
}

/* --- locks ----------------------------------------------------------------- */

/* A timeout turns a lock that is not robust into a failure, not a hang. */
Test(locks, holder_death_is_recovered, .timeout = 30)
{
    cv_locks *l = cv_locks_create(8);
    int status;

    cr_assert_not_null(l);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(cv_locks_lock(l, 3) == 0 ? 0 : 1);   /* dies holding it */
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    cr_assert_eq(cv_locks_lock(l, 3), CONVEYOR_LOCK_RECOVERED);
    cr_assert_eq(cv_locks_unlock(l, 3), 0);
    /* Usable normally afterwards. */
    cr_assert_eq(cv_locks_lock(l, 3), 0);
    cr_assert_eq(cv_locks_unlock(l, 3), 0);
    /* The other locks were never affected. */
    cr_assert_eq(cv_locks_lock(l, 2), 0);
    cr_assert_eq(cv_locks_unlock(l, 2), 0);
    cv_locks_destroy(l);
}

Test(locks, holder_killed_by_a_signal_is_recovered, .timeout = 30)
{
    cv_locks *l = cv_locks_create(CONVEYOR_LOCKS);
    int ready[2], status;
    char c;

    cr_assert_not_null(l);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (cv_locks_lock(l, CONVEYOR_LOCKS - 1) != 0)
            _exit(1);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        ssize_t w = write(ready[1], "x", 1);
        (void)w;
        pause();
        _exit(0);
    }
    close(ready[1]);
    cr_assert_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(cv_locks_lock(l, CONVEYOR_LOCKS - 1), CONVEYOR_LOCK_RECOVERED);
    cr_assert_eq(cv_locks_unlock(l, CONVEYOR_LOCKS - 1), 0);
    cv_locks_destroy(l);
}

Test(locks, misuse_is_reported, .timeout = 30)
{
    cv_locks *l = cv_locks_create(4);
    int ready[2], done[2], status;
    char c;

    cr_assert_not_null(l);
    cr_assert_eq(cv_locks_lock(l, 0), 0);
    cr_assert_eq(cv_locks_lock(l, 0), -EDEADLK);
    cr_assert_eq(cv_locks_unlock(l, 0), 0);
    cr_assert_eq(cv_locks_unlock(l, 0), -EPERM);
    cr_assert_eq(cv_locks_unlock(l, 1), -EPERM);
    cr_assert_eq(cv_locks_lock(l, 4), -EINVAL);
    cr_assert_eq(cv_locks_unlock(l, 4), -EINVAL);
    cr_assert_eq(cv_locks_lock(l, 1000000), -EINVAL);
    cr_assert_eq(cv_locks_lock(NULL, 0), -EINVAL);

    /* A lock held by another process cannot be released here. */
    cr_assert_eq(pipe(ready), 0);
    cr_assert_eq(pipe(done), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char d;
        close(done[1]);   /* a failing parent then ends our read */
        if (cv_locks_lock(l, 2) != 0)
            _exit(1);
        ssize_t w = write(ready[1], "x", 1);
        (void)w;
        if (read(done[0], &d, 1) != 1)
            _exit(2);
        _exit(cv_locks_unlock(l, 2) == 0 ? 0 : 3);
    }
    cr_assert_eq(read(ready[0], &c, 1), 1);
    cr_assert_eq(cv_locks_unlock(l, 2), -EPERM);
    cr_assert_eq(write(done[1], "x", 1), 1);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    /* Released properly by its holder: a plain 0, not RECOVERED. */
    cr_assert_eq(cv_locks_lock(l, 2), 0);
    cr_assert_eq(cv_locks_unlock(l, 2), 0);
    cv_locks_destroy(l);
}

Test(locks, two_processes_count_to_200000, .timeout = 30)
{
    enum { ROUNDS = 100000 };
    cv_locks *l = cv_locks_create(1);
    volatile long *counter = cv_shared_alloc(sizeof *counter);
    pid_t pids[2];

    cr_assert_not_null(l);
    cr_assert_not_null((void *)counter);
    cr_assert_eq(*counter, 0);
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        cr_assert_geq(pids[k], 0);
        if (pids[k] == 0) {
            for (int i = 0; i < ROUNDS; i++) {
                if (cv_locks_lock(l, 0) != 0)
                    _exit(1);
                long v = *counter;   /* a deliberately racy read-modify-write */
                *counter = v + 1;
                if (cv_locks_unlock(l, 0) != 0)
                    _exit(2);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        cr_assert_eq(waitpid(pids[k], &status, 0), pids[k]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    }
    cr_assert_eq(*counter, 2 * ROUNDS);
    cv_shared_free((void *)counter, sizeof *counter);
    cv_locks_destroy(l);
}

Test(shared, alloc_is_zeroed_and_shared_across_fork)
{
    size_t n = 3 * 4096 + 17;
    unsigned char *p = cv_shared_alloc(n);
    int status;

    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(p[i], 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        memset(p, 0xab, n);
        _exit(0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(p[0], 0xab);
    cr_assert_eq(p[n - 1], 0xab);
    cv_shared_free(p, n);
    cr_assert_null(cv_shared_alloc(0));
}
