/* SPDX-License-Identifier: MIT */
/*
 * shm.c - the user's named shared-memory segment (create, load, protect,
 * unlink, sweep of dead hosts' leftovers) and the framework's anonymous
 * shared mappings: robust process-shared locks and zeroed shared areas.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* fallocate */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/log.h"
#include "transport/shm.h"
#include <conveyor/plugin.h>

const char *cv_shm_dir = "/dev/shm";

/* Files are copied in pieces so that a huge file never needs a buffer. */
#define LOAD_CHUNK ((size_t)8 << 20)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Fills NAME with "/conveyor.PID.HEX" (16 random hex digits). */
static int make_name(char *name, size_t len)
{
    unsigned char rnd[8];
    char hex[2 * sizeof rnd + 1];
    size_t got = 0;

    while (got < sizeof rnd) {
        ssize_t n = getrandom(rnd + got, sizeof rnd - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof rnd; i++) {
        hex[2 * i] = "0123456789abcdef"[rnd[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[rnd[i] & 15];
    }
    hex[sizeof hex - 1] = '\0';
    snprintf(name, len, "/conveyor.%ld.%s", (long)getpid(), hex);
    return 0;
}

/* Copies the whole of FD (SIZE bytes at most) into DST. */
static int load_file(int fd, unsigned char *dst, size_t size)
{
    size_t off = 0;

    while (off < size) {
        size_t want = size - off < LOAD_CHUNK ? size - off : LOAD_CHUNK;
        ssize_t n = read(fd, dst + off, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;   /* the file shrank meanwhile: the rest stays zero */
        off += (size_t)n;
    }
    return 0;
}

/* Opens the dataset FILE for shared_memory_file and checks it: a regular
 * file, not empty unless SIZE is not 0; *SIZE grows to the file's size.
 * The descriptor, or -errno with ERR set. */
static int open_dataset(const char *file, size_t *size, char *err, size_t errlen)
{
    struct stat st;
    int rc;
    /* O_NONBLOCK: a FIFO would block open() until a writer came; it is
     * refused below as not a regular file.  Regular files ignore it. */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, "shared_memory_file '%s': %s", file, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        set_err(err, errlen, "shared_memory_file '%s': %s", file, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        set_err(err, errlen, "shared_memory_file '%s': not a regular file", file);
    } else if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        rc = -EFBIG;
        set_err(err, errlen, "shared_memory_file '%s': %s", file, strerror(EFBIG));
    } else {
        if ((size_t)st.st_size > *size)
            *size = (size_t)st.st_size;
        if (*size != 0)
            return fd;
        /* A stage asking for the segment would get NULL: say so now. */
        rc = -EINVAL;
        set_err(err, errlen, "shared_memory_file '%s' is empty and shared_memory is 0", file);
    }
    close(fd);
    return rc;
}

/* Creates the POSIX shared-memory object of SIZE bytes under a new name
 * (seg->name), its pages reserved.  The descriptor, or -errno with ERR set
 * (and the name unlinked or never taken). */
static int create_object(cv_segment *seg, size_t size, char *err, size_t errlen)
{
    int fd, rc;
    for (int tries = 0;; tries++) {
        rc = make_name(seg->name, sizeof seg->name);
        if (rc < 0) {
            set_err(err, errlen, "getrandom: %s", strerror(-rc));
            seg->name[0] = '\0';
            return rc;
        }
        fd = shm_open(seg->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            /* The proof that a live host owns it, whatever pid namespace
             * it runs in: the lock goes only when every process holding
             * the descriptor is gone. */
            flock(fd, LOCK_EX | LOCK_NB);
            break;
        }
        rc = -errno;
        if (rc != -EEXIST || tries >= 4) {
            set_err(err, errlen, "shm_open %s: %s", seg->name, strerror(-rc));
            seg->name[0] = '\0';
            return rc;
        }
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        set_err(err, errlen, "ftruncate %s to %zu bytes: %s", seg->name, size, strerror(-rc));
    } else if (fallocate(fd, 0, 0, (off_t)size) < 0 && errno != EOPNOTSUPP) {
        /* Reserve the pages now: a full tmpfs is then an error here rather
         * than a SIGBUS in some stage later.  Not every file system can. */
        rc = -errno;
        set_err(err, errlen, "allocating %zu bytes for %s: %s", size, seg->name,
                strerror(-rc));
    } else {
        return fd;
    }
    close(fd);
    cv_segment_unlink(seg);
    return rc;
}

/* Maps SIZE bytes of FD followed by a page that faults, so that a stage
 * writing past the end of the segment crashes (and is reported) instead of
 * scribbling on whatever memory came next. */
static int map_guarded(cv_segment *seg, size_t size, int fd)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (size + page - 1) / page * page;
    void *span = mmap(NULL, pages + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (span == MAP_FAILED)
        return -errno;
    void *p = mmap(span, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd,
                   0);
    if (p == MAP_FAILED) {
        int rc = -errno;
        munmap(span, pages + page);
        return rc;
    }
    seg->addr = p;
    seg->size = size;
    seg->span = pages + page;
    return 0;
}

int cv_segment_create(cv_segment *seg, size_t size, const char *file, int readonly,
                      char *err, size_t errlen)
{
    int ffd = -1, sfd, rc;

    memset(seg, 0, sizeof *seg);
    seg->lock_fd = -1;
    if (err && errlen)
        err[0] = '\0';
    if (file != NULL && (ffd = open_dataset(file, &size, err, errlen)) < 0)
        return ffd;
    if (size == 0)
        return 0;
    if ((sfd = create_object(seg, size, err, errlen)) < 0) {
        rc = sfd;
        goto fail;
    }
    seg->lock_fd = sfd;
    if ((rc = map_guarded(seg, size, sfd)) < 0) {
        set_err(err, errlen, "mmap %s (%zu bytes): %s", seg->name, size, strerror(-rc));
        goto fail;
    }
    if (ffd >= 0) {
        rc = load_file(ffd, seg->addr, size);
        if (rc < 0) {
            set_err(err, errlen, "shared_memory_file '%s': %s", file, strerror(-rc));
            goto fail;
        }
        close(ffd);
        ffd = -1;
    }
    if (readonly) {
        if (mprotect(seg->addr, size, PROT_READ) < 0) {
            rc = -errno;
            set_err(err, errlen, "mprotect %s read-only: %s", seg->name, strerror(-rc));
            goto fail;
        }
        seg->readonly = 1;
    }
    return 0;

fail:
    if (ffd >= 0)
        close(ffd);
    cv_segment_unmap(seg);
    cv_segment_unlink(seg);
    seg->size = 0;
    seg->readonly = 0;
    return rc;
}

void cv_segment_unmap(cv_segment *seg)
{
    if (seg->addr != NULL) {
        munmap(seg->addr, seg->span);
        seg->addr = NULL;
    }
    if (seg->lock_fd >= 0) {
        close(seg->lock_fd);
        seg->lock_fd = -1;
    }
}

void cv_segment_unlink(cv_segment *seg)
{
    /* glibc's shm_unlink only builds a path on the stack and calls unlink,
     * so this is safe in a signal handler. */
    if (seg->name[0] != '\0') {
        shm_unlink(seg->name);
        seg->name[0] = '\0';
    }
}

/* The owner pid of "conveyor.PID.REST" (REST not empty), or 0 when NAME is
 * not one of ours. */
static pid_t owner_of(const char *name)
{
    static const char prefix[] = "conveyor.";
    const char *p = name + sizeof prefix - 1;
    long long pid = 0;

    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return 0;
    if (*p < '1' || *p > '9')   /* we never write a leading zero */
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        pid = pid * 10 + (*p - '0');
        if (pid > 0x7fffffff)
            return 0;
    }
    if (p[0] != '.' || p[1] == '\0')
        return 0;
    return (pid_t)pid;
}

/* A segment whose pid is gone from this pid namespace may still be a live
 * host's in another one (a container sharing /dev/shm): only a segment that
 * is ours (this user's) and whose lock nobody holds is dead.  Another user's
 * file under our prefix is none of our business, silently. */
static int provably_dead(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    int dead = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
               flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return dead;
}

int cv_shm_sweep(void)
{
    DIR *d = opendir(cv_shm_dir);
    struct dirent *de;
    pid_t self = getpid();
    int removed = 0;

    if (d == NULL)
        return -errno;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL)
            break;
        pid_t pid = owner_of(de->d_name);
        if (pid <= 0 || pid == self)
            continue;
        /* EPERM means the process exists under another user: keep it. */
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        if (!provably_dead(dirfd(d), de->d_name))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
            if (errno != ENOENT)   /* ENOENT: another sweeper was quicker */
                cv_warn("cannot remove stale shared-memory segment /%s: %s", de->d_name,
                        strerror(errno));
            continue;
        }
        cv_info("removed stale shared-memory segment /%s (pid %ld is gone)", de->d_name,
                (long)pid);
        removed++;
    }
    int rc = errno ? -errno : removed;
    closedir(d);
    return rc;
}

/* --- locks ----------------------------------------------------------------- */

struct cv_locks {
    unsigned n;
    size_t maplen;
    pthread_mutex_t m[];
};

static void *shared_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int cv_robust_mutexes_init(pthread_mutex_t *m, unsigned n)
{
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0)
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    /* Robust: a process that dies holding a lock must not hang the others. */
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    /* Error-checking: relocking or unlocking a lock not held is reported. */
    if (rc == 0)
        rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    for (unsigned i = 0; rc == 0 && i < n; i++)
        rc = pthread_mutex_init(&m[i], &attr);
    pthread_mutexattr_destroy(&attr);
    return -rc;
}

cv_locks *cv_locks_create(unsigned n)
{
    size_t len;
    cv_locks *l;

    if (__builtin_mul_overflow((size_t)n, sizeof l->m[0], &len) ||
        __builtin_add_overflow(len, sizeof *l, &len)) {
        errno = EINVAL;
        return NULL;
    }
    l = shared_map(len);
    if (l == NULL)
        return NULL;
    l->n = n;
    l->maplen = len;

    int rc = cv_robust_mutexes_init(l->m, n);
    if (rc != 0) {
        munmap(l, len);
        errno = -rc;
        return NULL;
    }
    return l;
}

void cv_locks_destroy(cv_locks *l)
{
    if (l != NULL)
        munmap(l, l->maplen);
}

int cv_locks_lock(cv_locks *l, unsigned i)
{
    if (l == NULL || i >= l->n)
        return -EINVAL;
    int rc = pthread_mutex_lock(&l->m[i]);
    if (rc == EOWNERDEAD) {
        /* We hold it now; marking it consistent keeps it usable after our
         * unlock instead of turning it ENOTRECOVERABLE for everyone. */
        pthread_mutex_consistent(&l->m[i]);
        return CONVEYOR_LOCK_RECOVERED;
    }
    return -rc;
}

int cv_locks_unlock(cv_locks *l, unsigned i)
{
    if (l == NULL || i >= l->n)
        return -EINVAL;
    return -pthread_mutex_unlock(&l->m[i]);
}

void *cv_shared_alloc(size_t n)
{
    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    return shared_map(n);
}

void cv_shared_free(void *p, size_t n)
{
    if (p != NULL)
        munmap(p, n);
}
