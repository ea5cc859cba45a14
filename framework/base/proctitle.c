/* SPDX-License-Identifier: MIT */
/* proctitle.c - a process's name in ps and top (see proctitle.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/proctitle.h"

extern char **environ;

/* The memory taken: from argv[0] to the end of the last string that
 * follows it without a gap.  The kernel shows [area, area + args) as the
 * command line, or, when its last byte is not a NUL, the string at area,
 * however far into the environment's memory it goes. */
static char *area;
static size_t area_len, args_len;
static size_t dirty;        /* bytes past the start the titles have written */
static char *original;      /* the area as the program started */
/* The copies of the environment stay reachable for as long as the process
 * lives (for leak checkers too): setenv() may replace the array environ
 * points to, unsetenv() removes entries from it, so both the array given
 * to environ and a list of the strings of its own are kept here.
 * Volatile: never read, the stores must not be optimised away. */
static char **volatile env_given, **volatile env_strings;

/* Where the kernel keeps this process's argument and environment strings
 * (/proc/self/stat, fields 48 to 51): 0, or -1 when it does not say. */
static int kernel_areas(uintptr_t *arg_start, uintptr_t *arg_end, uintptr_t *env_start,
                        uintptr_t *env_end)
{
    char buf[2048];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* After "pid (comm)", which may hold anything, the state is field 3. */
    char *p = strrchr(buf, ')'), *save = NULL;
    if (!p)
        return -1;
    int field = 2;
    unsigned long long v[4];
    for (char *t = strtok_r(p + 1, " ", &save); t && field < 51; t = strtok_r(NULL, " ", &save))
        if (++field >= 48)
            v[field - 48] = strtoull(t, NULL, 10);
    if (field < 51)
        return -1;
    *arg_start = (uintptr_t)v[0];
    *arg_end = (uintptr_t)v[1];
    *env_start = (uintptr_t)v[2];
    *env_end = (uintptr_t)v[3];
    return 0;
}

/* The end of the strings of LIST (N of them) that follow each other from
 * START, without a gap. */
static char *contiguous_end(char *start, char **list, size_t n)
{
    char *end = start;
    for (size_t i = 0; i < n && list[i] == end; i++)
        end += strlen(list[i]) + 1;
    return end;
}

/* Copies of the N strings of LIST, in a new NULL-terminated array; NULL
 * when memory runs out. */
static char **copy_strings(char *const *list, size_t n)
{
    char **copy = calloc(n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++) {
        if (!(copy[i] = strdup(list[i]))) {
            while (i--)
                free(copy[i]);
            free(copy);
            return NULL;
        }
    }
    return copy;
}

int cv_title_take_area(int argc, char **argv)
{
    if (area)
        return -EALREADY;
    if (argc < 1 || !argv || !argv[0])
        return -EINVAL;
    size_t nenv = 0;
    while (environ && environ[nenv])
        nenv++;
    char *start = argv[0];
    char *args_end = contiguous_end(start, argv, (size_t)argc);
    char *end = contiguous_end(args_end, environ, nenv);
    /* Only the memory the kernel shows as the command line will do: not
     * strings the program moved, not a loader's copy (valgrind). */
    uintptr_t as, ae, es, ee;
    if (kernel_areas(&as, &ae, &es, &ee) == 0 && as != 0) {
        if ((uintptr_t)start != as || (uintptr_t)args_end != ae)
            return -EINVAL;
        if (es != ae)
            end = args_end;
        else if ((uintptr_t)end > ee)
            end = (char *)ee;
    }
    char **args = copy_strings(argv, (size_t)argc);
    char **env = end > args_end ? copy_strings(environ, nenv) : NULL;
    char **env_list = env ? calloc(nenv + 1, sizeof *env_list) : NULL;
    char *saved = malloc((size_t)(end - start));
    if (!args || (end > args_end && (!env || !env_list)) || !saved) {
        for (size_t i = 0; args && args[i]; i++)
            free(args[i]);
        for (size_t i = 0; env && env[i]; i++)
            free(env[i]);
        free(args);
        free(env);
        free(env_list);
        free(saved);
        return -ENOMEM;
    }
    /* The copies live as long as the process: argv and environ point at
     * them. */
    memcpy(saved, start, (size_t)(end - start));
    for (int i = 0; i < argc; i++)
        argv[i] = args[i];
    free(args);
    if (env) {
        memcpy(env_list, env, nenv * sizeof *env);
        env_strings = env_list;
        environ = env_given = env;
    }
    area = start;
    area_len = (size_t)(end - start);
    args_len = (size_t)(args_end - start);
    original = saved;
    dirty = args_len;
    return 0;
}

void cv_title_set(const char *title)
{
    if (!area)
        return;
    size_t n = strlen(title);
    if (n > area_len - 1)
        n = area_len - 1;
    memcpy(area, title, n);
    /* NULs over the rest of the arguments and whatever a longer title
     * left: ps shows the title alone. */
    memset(area + n, 0, dirty > n ? dirty - n : 1);
    if (n + 1 > dirty)
        dirty = n + 1;
}

void cv_title_restore(void)
{
    if (!area)
        return;
    memcpy(area, original, area_len);
    dirty = args_len;
}

void cv_title_set_name(const char *prefix, const char *label)
{
    char name[16];
    size_t room = sizeof name - 1, plen = strlen(prefix), llen = strlen(label);
    if (plen > room)
        plen = room;
    memcpy(name, prefix, plen);
    room -= plen;
    const char *suffix = llen ? strrchr(label, '[') : NULL;
    size_t slen = suffix && label[llen - 1] == ']' ? strlen(suffix) : 0;
    if (llen <= room || slen == 0 || slen >= room) {
        size_t take = llen < room ? llen : room;
        memcpy(name + plen, label, take);
        name[plen + take] = '\0';
    } else {
        size_t take = room - slen;
        memcpy(name + plen, label, take);
        memcpy(name + plen + take, suffix, slen);
        name[plen + take + slen] = '\0';
    }
    prctl(PR_SET_NAME, name, 0, 0, 0);
}
