/* SPDX-License-Identifier: MIT */
/*
 * shm.h - the user's shared-memory segment and the framework's shared area.
 *
 * The user segment ([pipeline] shared_memory) is a POSIX shm object named
 * "/conveyor.<host pid>.<random>", created O_CREAT|O_EXCL, mode 0600, sized
 * with ftruncate (so zero-filled), mapped MAP_SHARED before the first fork
 * and inherited by every stage.  The host unlinks it on every way out;
 * cv_shm_sweep() removes the segments of hosts that died without doing so
 * (a segment whose pid is alive is never touched).
 *
 * The framework's own bookkeeping (locks, counters) is an anonymous shared
 * mapping made before the fork: it has no name and so can never be left
 * behind.
 */
#ifndef CV_SHM_H
#define CV_SHM_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct cv_segment {
    char name[64];       /* "/conveyor.PID.RANDOM", "" when none */
    void *addr;          /* NULL when none */
    size_t size;
    int readonly;        /* mapped PROT_READ in stages */
    int lock_fd;         /* the object, open and flock()ed while the segment lives
                            (the proof of a live owner for the sweep), or -1 */
    size_t span;         /* what is mapped: the size in whole pages and a guard page */
} cv_segment;

/* Creates, sizes and maps a segment of SIZE bytes.  When FILE is not NULL
 * its contents are copied in first (the segment is grown to the file's size
 * when smaller).  READONLY: after the copy the mapping is made read-only
 * (mprotect), so a stray write from a stage faults.
 * Returns 0 or -errno, with a message in err (naming the file when that is
 * what failed). */
int cv_segment_create(cv_segment *seg, size_t size, const char *file, int readonly,
                      char *err, size_t errlen);

/* Unmaps the segment (in any process). */
void cv_segment_unmap(cv_segment *seg);

/* Removes the segment's name (host only).  Idempotent; async-signal-safe. */
void cv_segment_unlink(cv_segment *seg);

/* Removes /dev/shm/conveyor.PID.* whose PID is not a live process.  Returns
 * how many were removed (and logs each at info level), or -errno. */
int cv_shm_sweep(void);

/* The directory swept; tests may point it elsewhere. */
extern const char *cv_shm_dir;

/* --- locks offered to plugins (conveyor_lock) ---------------------------- */

typedef struct cv_locks cv_locks;

/* An anonymous shared mapping holding N robust, process-shared mutexes. */
cv_locks *cv_locks_create(unsigned n);
void cv_locks_destroy(cv_locks *l);

/* 0, CONVEYOR_LOCK_RECOVERED (previous holder died; made consistent),
 * -EINVAL (bad index), -EDEADLK, or another -errno. */
int cv_locks_lock(cv_locks *l, unsigned i);
/* 0, -EINVAL, -EPERM (not held by the caller). */
int cv_locks_unlock(cv_locks *l, unsigned i);

/* Initializes N robust, process-shared, error-checking mutexes at M (in
 * shared memory).  0 or -errno. */
int cv_robust_mutexes_init(pthread_mutex_t *m, unsigned n);

/* An anonymous MAP_SHARED mapping of N zero bytes, prefaulted; NULL on error. */
void *cv_shared_alloc(size_t n);
void cv_shared_free(void *p, size_t n);

#endif
