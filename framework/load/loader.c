/* SPDX-License-Identifier: MIT */
/*
 * loader.c - finds plugin modules on the search path, loads them with
 * libltdl and checks their descriptor before anything runs (see loader.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "load/loader.h"

#ifndef CONVEYOR_PLUGINDIR
#define CONVEYOR_PLUGINDIR "/usr/local/lib/conveyor"
#endif

struct cv_module {
    char *name;
    char *path;             /* the file that was loaded */
    lt_dlhandle handle;
    const conveyor_module *desc;
    void *bound;            /* the object opened with every symbol bound (RTLD_NOW) */
    conveyor_stage *stages; /* read at the module's stride (see read_stages) */
    size_t nstages;         /* each params of stages is the loader's copy too */
    char *refused;          /* why the module cannot be used, or NULL */
};

/* What the host reads of a descriptor, by the minor it was built for: 1.0
 * and 1.1 ended at stages, 1.2 added stage_size. */
#define MODULE_SIZE_1_0 offsetof(conveyor_module, stage_size)
#define MODULE_SIZE_1_2 (offsetof(conveyor_module, stage_size) + sizeof(uint32_t))
/* A 1.2 descriptor that covers param_size (one written by hand may not). */
#define MODULE_SIZE_PARAMS (offsetof(conveyor_module, param_size) + sizeof(uint32_t))

/* The parameter spec of ABI 1.0 and 1.1 (name and summary): the stride of
 * their params arrays, and the least a 1.2 module may declare. */
#define PARAM_SIZE_1_0 offsetof(conveyor_param_spec, default_value)

/* The stage of ABI 1.0, unchanged in 1.1: the stride of a 1.0 or 1.1
 * module's stages, and the least a 1.2 module may declare.  Its fields are
 * all pointers, so it has no padding at its end. */
#define STAGE_SIZE_1_0 (offsetof(conveyor_stage, params) + sizeof(const conveyor_param_spec *))

/* Frees the loader's copy of a params array and its unquoted defaults. */
static void free_params(conveyor_param_spec *params)
{
    if (!params)
        return;
    for (conveyor_param_spec *p = params; p->name; p++)
        free((char *)p->default_value);
    free(params);
}

static void add_dirs(cv_loader *l, const char *list)
{
    if (!list)
        return;
    char *copy = cv_strdup(list), *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d)
            continue;
        l->dirs = cv_realloc(l->dirs, (l->ndirs + 1) * sizeof *l->dirs);
        l->dirs[l->ndirs++] = cv_strdup(d);
    }
    free(copy);
}

int cv_loader_init(cv_loader *l, const char *extra)
{
    memset(l, 0, sizeof *l);
    if (lt_dlinit() != 0)
        return -ENOMEM;
    add_dirs(l, extra);
    add_dirs(l, getenv("CONVEYOR_PLUGIN_PATH"));
    add_dirs(l, CONVEYOR_PLUGINDIR);
    return 0;
}

void cv_loader_fini(cv_loader *l)
{
    for (size_t i = 0; i < l->nmods; i++) {
        cv_module *m = l->mods[i];
        if (m->handle)
            lt_dlclose(m->handle);
        if (m->bound)
            dlclose(m->bound);
        free(m->name);
        free(m->path);
        free(m->refused);
        for (size_t k = 0; k < m->nstages; k++)
            free_params((conveyor_param_spec *)m->stages[k].params);
        free(m->stages);
        free(m);
    }
    free(l->mods);
    for (size_t i = 0; i < l->ndirs; i++)
        free(l->dirs[i]);
    free(l->dirs);
    memset(l, 0, sizeof *l);
    lt_dlexit();
}

static char *search_path_text(const cv_loader *l)
{
    size_t n = 1;
    for (size_t i = 0; i < l->ndirs; i++)
        n += strlen(l->dirs[i]) + 1;
    char *s = cv_calloc(n, 1);
    for (size_t i = 0; i < l->ndirs; i++) {
        if (i)
            strcat(s, ":");
        strcat(s, l->dirs[i]);
    }
    return s;
}

/* Checks the descriptor as ABI 1.x allows: the version first (always the
 * first four bytes), then that the declared size covers what is read, then
 * the stride of the stages (*STRIDE). */
static int check_descriptor(const char *path, const conveyor_module *d, size_t *stride,
                            size_t *pstride, char *err, size_t errlen)
{
    if (d->abi_major != CONVEYOR_ABI_MAJOR || d->abi_minor > CONVEYOR_ABI_MINOR)
        return cv_err_at(err, errlen, -ENOEXEC, path, 0,
                         "conveyor_module_v1 was built for plugin ABI %u.%u, but this "
                         "conveyor-host supports ABI %d.%d; %s",
                         d->abi_major, d->abi_minor, CONVEYOR_ABI_MAJOR, CONVEYOR_ABI_MINOR,
                         d->abi_major != CONVEYOR_ABI_MAJOR ? "rebuild the plugin against this SDK"
                                                            : "upgrade Conveyor or rebuild the plugin");
    size_t need = d->abi_minor >= 2 ? MODULE_SIZE_1_2 : MODULE_SIZE_1_0;
    if (d->size < need)
        return cv_err_at(err, errlen, -ENOEXEC, path, 0,
                         "conveyor_module_v1 declares %u bytes, fewer than the %zu of plugin ABI "
                         "%u.%u (a corrupt or hand-made descriptor)",
                         d->size, need, d->abi_major, d->abi_minor);
    *stride = d->abi_minor >= 2 ? d->stage_size : STAGE_SIZE_1_0;
    if (*stride < STAGE_SIZE_1_0)
        return cv_err_at(err, errlen, -ENOEXEC, path, 0,
                         "conveyor_module_v1 declares stages of %zu bytes, fewer than the %zu of "
                         "plugin ABI 1.0 (a corrupt or hand-made descriptor)",
                         *stride, STAGE_SIZE_1_0);
    *pstride = d->abi_minor >= 2 && d->size >= MODULE_SIZE_PARAMS ? d->param_size : 0;
    if (*pstride == 0)
        *pstride = PARAM_SIZE_1_0;
    if (*pstride < PARAM_SIZE_1_0)
        return cv_err_at(err, errlen, -ENOEXEC, path, 0,
                         "conveyor_module_v1 declares parameter specs of %zu bytes, fewer than "
                         "the %zu of plugin ABI 1.0 (a corrupt or hand-made descriptor)",
                         *pstride, PARAM_SIZE_1_0);
    if (!d->name || !d->stages)
        return cv_err_at(err, errlen, -ENOEXEC, path, 0, "conveyor_module_v1 has no %s",
                         !d->name ? "name" : "stages");
    return 0;
}

/* Copies COUNT-terminated entries of SIZE bytes from an array whose stride
 * is STRIDE into full-size entries in which the fields the module lacks are
 * zero, so that nothing past the loader needs to know the stride.  Reads no
 * byte of an entry past STRIDE.  The first field of an entry is its name,
 * NULL at the end; the copy ends with a zeroed entry.  Stages and parameter
 * specs alike. */
static void *read_array(const void *array, size_t stride, size_t size, size_t *n)
{
    const unsigned char *base = array;
    size_t take = stride < size ? stride : size;
    size_t count = 0;
    for (;; count++) {
        const char *name;
        memcpy(&name, base + count * stride, sizeof name);
        if (!name)
            break;
    }
    unsigned char *out = cv_calloc(count + 1, size);
    for (size_t i = 0; i < count; i++)
        memcpy(out + i * size, base + i * stride, take);
    *n = count;
    return out;
}

/* A stage's params as the host reads them: at the module's PSTRIDE, and
 * with each default unquoted the way pipeline.ini's values are.  -ENOEXEC
 * naming the file, stage and key when a quoted default is not closed. */
static int read_params(const char *path, conveyor_stage *s, size_t pstride, char *err,
                       size_t errlen)
{
    size_t n;
    conveyor_param_spec *ps;

    if (!s->params)
        return 0;
    ps = read_array(s->params, pstride, sizeof *ps, &n);
    s->params = ps;
    for (size_t i = 0; i < n; i++) {
        const char *dflt = ps[i].default_value, *rest = "";
        char *text = NULL;
        if (dflt && *dflt == '"' && (cv_unquote(dflt, &text, &rest) < 0 || *rest)) {
            free(text);
            for (size_t k = i; k < n; k++)
                ps[k].default_value = NULL;
            return cv_err_at(err, errlen, -ENOEXEC, path, 0, "stage '%s' declares the default "
                             "of '%s' as '%s': a value in quotes ends with its closing quote",
                             s->name, ps[i].name, dflt);
        }
        ps[i].default_value = text ? text : dflt ? cv_strdup(dflt) : NULL;
    }
    return 0;
}

/* The module's stages, read at STRIDE (see read_array), with their params
 * read at PSTRIDE. */
static int read_stages(const char *path, const conveyor_module *d, size_t stride, size_t pstride,
                       cv_module *m, char *err, size_t errlen)
{
    m->stages = read_array(d->stages, stride, sizeof(conveyor_stage), &m->nstages);
    for (size_t i = 0; i < m->nstages; i++) {
        int rc = read_params(path, &m->stages[i], pstride, err, errlen);
        if (rc < 0) {
            for (size_t k = i + 1; k < m->nstages; k++)
                m->stages[k].params = NULL;
            return rc;
        }
    }
    return 0;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* The shared object a module's .la names (dlname='X.so'): beside the .la
 * once installed, in its .libs/ in a build tree.  NULL when none exists. */
static char *object_of_la(const char *dir, const char *la)
{
    FILE *f = fopen(la, "r");
    char line[1024], *found = NULL;
    if (!f)
        return NULL;
    while (!found && fgets(line, sizeof line, f)) {
        char *q;
        if (strncmp(line, "dlname='", 8) != 0 || !(q = strchr(line + 8, '\'')) || q == line + 8)
            continue;
        *q = '\0';
        const char *where[] = {"", "/.libs"};
        for (size_t i = 0; i < 2 && !found; i++) {
            char *p = cv_asprintf("%s%s/%s", dir, where[i], line + 8);
            if (access(p, F_OK) == 0)
                found = p;
            else
                free(p);
        }
    }
    fclose(f);
    return found;
}

/* Opens the module's object with every symbol bound now (RTLD_NOW), so
 * that --check finds what a run would only find mid-item: an undefined
 * symbol, a missing library; and says the loader's real reason (libltdl
 * says "file not found" for all of them).  The handle keeps the object
 * bound for libltdl's own open of it. */
static int bind_now(const char *dir, const char *path, const char *so, void **bound, char *err,
                    size_t errlen)
{
    char *obj = strcmp(path, so) == 0 ? cv_strdup(so) : object_of_la(dir, path);
    *bound = NULL;
    if (!obj)
        return 0;   /* libltdl will say what it makes of the .la */
    *bound = dlopen(obj, RTLD_NOW | RTLD_LOCAL);
    if (!*bound) {
        const char *why = dlerror();
        cv_err_at(err, errlen, 0, path, 0, "cannot load: %s", why ? why : "unknown error");
        free(obj);
        return -ENOEXEC;
    }
    free(obj);
    return 0;
}

/* A module folder or file anyone may write to: anyone could make the host
 * run their code (ssh refuses keys for less; this warns, once per path). */
static void warn_if_world_writable(const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & S_IWOTH) &&
        !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX)))
        cv_warn("%s '%s' can be written by every user: anyone could replace the code the "
                "pipeline runs (chmod o-w)", what, path);
}

static int open_module(cv_loader *l, const char *dir, const char *name, cv_module **out, char *err,
                       size_t errlen)
{
    char *base = cv_asprintf("%s/%s", dir, name);
    char *la = cv_asprintf("%s.la", base), *so = cv_asprintf("%s.so", base);
    char *path = file_exists(la) ? la : file_exists(so) ? so : NULL;
    int rc = 0;
    *out = NULL;
    if (!path) {
        rc = -ENOENT;
        goto done;
    }
    warn_if_world_writable(dir, "the plugin folder");
    warn_if_world_writable(path, "the plugin module");
    void *bound;
    if ((rc = bind_now(dir, path, so, &bound, err, errlen)) < 0)
        goto done;
    lt_dlhandle h = lt_dlopenext(base);
    if (!h) {
        if (bound)
            dlclose(bound);
        const char *why = lt_dlerror();
        cv_err_at(err, errlen, 0, path, 0, "cannot load: %s", why ? why : "unknown error");
        rc = -ENOEXEC;
        goto done;
    }
    const conveyor_module *d = lt_dlsym(h, "conveyor_module_v1");
    if (!d) {
        cv_err_at(err, errlen, 0, path, 0, "not a Conveyor plugin: it has no conveyor_module_v1 "
                  "symbol (define it with CONVEYOR_MODULE)");
        lt_dlclose(h);
        if (bound)
            dlclose(bound);
        rc = -ENOEXEC;
        goto done;
    }
    size_t stride = 0, pstride = 0;
    if ((rc = check_descriptor(path, d, &stride, &pstride, err, errlen)) < 0) {
        lt_dlclose(h);
        if (bound)
            dlclose(bound);
        goto done;
    }
    cv_module *m = cv_calloc(1, sizeof *m);
    m->name = cv_strdup(name);
    m->path = cv_strdup(path);
    m->handle = h;
    m->bound = bound;
    m->desc = d;
    l->mods = cv_realloc(l->mods, (l->nmods + 1) * sizeof *l->mods);
    l->mods[l->nmods++] = m;  /* released by cv_loader_fini, even when refused */
    if ((rc = read_stages(path, d, stride, pstride, m, err, errlen)) < 0) {
        m->refused = cv_strdup(err);
        goto done;
    }
    cv_debug("plugin module '%s': loaded %s (%s %s, plugin ABI %u.%u, %zu stage%s)", name, path,
             d->name, d->version ? d->version : "", d->abi_major, d->abi_minor, m->nstages,
             m->nstages == 1 ? "" : "s");
    *out = m;
done:
    free(base);
    free(la);
    free(so);
    return rc;
}

static int find_module(cv_loader *l, const char *name, cv_module **out, char *err, size_t errlen)
{
    for (size_t i = 0; i < l->nmods; i++)
        if (strcmp(l->mods[i]->name, name) == 0) {
            if (l->mods[i]->refused) {
                snprintf(err, errlen, "%s", l->mods[i]->refused);
                return -ENOEXEC;
            }
            *out = l->mods[i];
            return 0;
        }
    if (!*name || strchr(name, '/')) {
        snprintf(err, errlen, "'%s' is not a module name", name);
        return -ENOENT;
    }
    if (cv_log_level >= 3) {
        char *sp = search_path_text(l);
        cv_debug("plugin module '%s': searching %s", name, sp);
        free(sp);
    }
    for (size_t i = 0; i < l->ndirs; i++) {
        int rc = open_module(l, l->dirs[i], name, out, err, errlen);
        if (rc != -ENOENT)
            return rc;
        cv_debug("plugin module '%s': no %s.la or %s.so in %s", name, name, name, l->dirs[i]);
    }
    char *sp = search_path_text(l);
    snprintf(err, errlen, "plugin module '%s' not found (looked for %s.la and %s.so in %s)", name,
             name, name, sp);
    free(sp);
    return -ENOENT;
}

int cv_loader_stage(cv_loader *l, const char *module, const char *stage,
                    const conveyor_stage **out, char *err, size_t errlen)
{
    cv_module *m;
    int rc = find_module(l, module, &m, err, errlen);
    *out = NULL;
    if (rc < 0)
        return rc;
    size_t n = m->nstages;
    for (const conveyor_stage *s = m->stages; s->name; s++)
        if (strcmp(s->name, stage) == 0) {
            if (!s->process && !s->produce) {
                snprintf(err, errlen, "%s: stage '%s' has no process function (it is required, "
                         "or produce for a source)", m->path, stage);
                return -ENOEXEC;
            }
            *out = s;
            return 0;
        }
    const char **names = cv_calloc(n + 1, sizeof *names);
    size_t used = 0;
    char list[512] = "";
    for (size_t i = 0; i < n; i++) {
        names[i] = m->stages[i].name;
        used += (size_t)snprintf(list + used, used < sizeof list ? sizeof list - used : 0, "%s%s",
                                 i ? ", " : "", names[i]);
        if (used >= sizeof list)
            used = sizeof list - 1;
    }
    const char *s = cv_suggest(stage, names);
    if (s)
        snprintf(err, errlen, "module '%s' (%s) has no stage '%s' (did you mean '%s'?)", module,
                 m->path, stage, s);
    else
        snprintf(err, errlen, "module '%s' (%s) has no stage '%s'; it has: %s", module, m->path,
                 stage, list);
    free(names);
    return -ENOENT;
}

/* A stage that declares no params takes every key: each is worth a
 * warning, since nothing tells a misspelt key from a read one. */
static void warn_undeclared(const cv_config *cfg, const cv_stage_cfg *st)
{
    for (size_t i = 0; i < st->nparams; i++)
        cv_warn("%s:%d: [%s] '%s' is passed to %s:%s unchecked: the stage declares no "
                "parameters", cfg->path, st->params[i].line, st->name, st->params[i].key,
                st->module, st->stage);
}

/* Every CONVEYOR_PARAM_REQUIRED key is set; the error names the section's
 * header line, where the key belongs. */
static int check_required(const cv_config *cfg, const cv_stage_cfg *st, const conveyor_stage *sd,
                          char *err, size_t errlen)
{
    for (const conveyor_param_spec *p = sd->params; p->name; p++)
        if ((p->flags & CONVEYOR_PARAM_REQUIRED) && !cv_stage_param(st, p->name))
            return cv_err_at(err, errlen, -EINVAL, cfg->path, st->line,
                             "[%s] %s:%s requires '%s' (%s), and the section does not set it",
                             st->name, st->module, st->stage, p->name,
                             p->summary ? p->summary : "no summary");
    return 0;
}

static int check_params(const cv_config *cfg, const cv_stage_cfg *st, const conveyor_stage *sd,
                        char *err, size_t errlen)
{
    if (!sd->params) {
        warn_undeclared(cfg, st);
        return 0;
    }
    size_t n = 0;
    while (sd->params[n].name)
        n++;
    /* The framework's stage keys are suggested too, for a misspelled one. */
    size_t nkeys = 0;
    while (cv_config_stage_key(nkeys))
        nkeys++;
    const char **cands = cv_calloc(n + nkeys + 1, sizeof *cands);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        cands[k++] = sd->params[i].name;
    for (size_t i = 0; i < nkeys; i++)
        cands[k++] = cv_config_stage_key(i);
    int rc = 0;
    for (size_t i = 0; i < st->nparams && rc == 0; i++) {
        const cv_kv *kv = &st->params[i];
        size_t j;
        for (j = 0; j < n && strcmp(sd->params[j].name, kv->key) != 0; j++)
            ;
        if (j < n)
            continue;
        const char *s = cv_suggest(kv->key, cands);
        char known[512] = "";
        size_t used = 0;
        for (size_t q = 0; q < n; q++) {
            used += (size_t)snprintf(known + used, used < sizeof known ? sizeof known - used : 0,
                                     "%s%s", q ? ", " : "", sd->params[q].name);
            if (used >= sizeof known)
                used = sizeof known - 1;
        }
        if (s)
            cv_err_at(err, errlen, 0, cfg->path, kv->line, "[%s] '%s' is not a parameter of %s:%s "
                      "(did you mean '%s'?)", st->name, kv->key, st->module, st->stage, s);
        else
            cv_err_at(err, errlen, 0, cfg->path, kv->line, "[%s] '%s' is not a parameter of %s:%s "
                      "(%s)", st->name, kv->key, st->module, st->stage, n ? known : "it takes none");
        if (s && n) {
            size_t len = strlen(err);
            snprintf(err + len, errlen - len, "; it takes: %s", known);
        }
        rc = -EINVAL;
    }
    free(cands);
    return rc < 0 ? rc : check_required(cfg, st, sd, err, errlen);
}

/* A source stage needs produce, a processor process: the type says which
 * the section wants, and a plugin that offers only the other is named. */
static int check_role(const cv_config *cfg, const cv_stage_cfg *st, const conveyor_stage *sd,
                      char *err, size_t errlen)
{
    if (st->type == CV_TYPE_SOURCE && !sd->produce)
        return cv_err_at(err, errlen, -ENOEXEC, cfg->path, st->plugin_line,
                         "[%s] is a source, but %s:%s has no produce function: it is a "
                         "processor (drop type = source)", st->name, st->module, st->stage);
    if (st->type == CV_TYPE_PROCESSOR && !sd->process)
        return cv_err_at(err, errlen, -ENOEXEC, cfg->path, st->plugin_line,
                         "[%s] plugin = %s:%s is a source (it has produce and no process): "
                         "write type = source in its section", st->name, st->module, st->stage);
    return 0;
}

int cv_loader_resolve(cv_loader *l, const cv_config *cfg, const conveyor_stage **stages,
                      char *err, size_t errlen)
{
    char why[CV_ERR_MAX];
    for (size_t i = 0; i < cfg->nstages; i++) {
        const cv_stage_cfg *st = &cfg->stages[i];
        stages[i] = NULL;
        if (st->type != CV_TYPE_PROCESSOR && st->type != CV_TYPE_SOURCE)
            continue;
        int rc = cv_loader_stage(l, st->module, st->stage, &stages[i], why, sizeof why);
        if (rc < 0) {
            return cv_err_at(err, errlen, rc, cfg->path, st->plugin_line, "[%s] plugin = %s:%s: %s",
                             st->name, st->module, st->stage, why);
        }
        if ((rc = check_role(cfg, st, stages[i], err, errlen)) < 0)
            return rc;
        if ((rc = check_params(cfg, st, stages[i], err, errlen)) < 0)
            return rc;
    }
    return 0;
}

/* VALUE as pipeline.ini would write it: in quotes when it is empty, has
 * white space at an end, a ';' or starts with a quote. */
static void print_value(FILE *out, const char *value)
{
    size_t n = strlen(value);
    if (n && !isspace((unsigned char)value[0]) && !isspace((unsigned char)value[n - 1]) &&
        !strchr(value, ';') && value[0] != '"') {
        fputs(value, out);
        return;
    }
    fputc('"', out);
    for (const char *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            fputc('\\', out);
        fputc(*c, out);
    }
    fputc('"', out);
}

/* One module: its stages with their summaries, and each stage's params
 * with their summaries, defaults and whether they are required. */
static void print_module(const cv_module *m, const char *name, FILE *out)
{
    fprintf(out, "%s %s (%s)\n", m->desc->name, m->desc->version ? m->desc->version : "",
            m->path);
    for (const conveyor_stage *s = m->stages; s->name; s++) {
        char full[256];
        snprintf(full, sizeof full, "%s:%s", name, s->name);
        fprintf(out, "  %-24s %s%s\n", full, s->summary ? s->summary : "",
                s->process || s->produce ? (s->process ? "" : " (a source)")
                                         : " (unusable: no process function)");
        if (!s->params)
            continue;
        for (const conveyor_param_spec *p = s->params; p->name; p++) {
            fprintf(out, "      %-20s %s", p->name, p->summary ? p->summary : "");
            if (p->flags & CONVEYOR_PARAM_REQUIRED)
                fputs(" (required)", out);
            if (p->default_value) {
                fputs(" (default: ", out);
                print_value(out, p->default_value);
                fputc(')', out);
            }
            fputc('\n', out);
        }
    }
    fputc('\n', out);
}

int cv_loader_list_module(cv_loader *l, const char *name, FILE *out, char *err, size_t errlen)
{
    cv_module *m;
    int rc = find_module(l, name, &m, err, errlen);
    if (rc < 0)
        return rc;
    print_module(m, name, out);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cv_loader_list(cv_loader *l, FILE *out)
{
    char **names = NULL;
    size_t nnames = 0;
    for (size_t i = 0; i < l->ndirs; i++) {
        DIR *d = opendir(l->dirs[i]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (len < 4 || e->d_name[0] == '.')
                continue;
            const char *ext = e->d_name + len - 3;
            if (strcmp(ext, ".la") != 0 && strcmp(ext, ".so") != 0)
                continue;
            char *name = cv_strndup(e->d_name, len - 3);
            size_t k;
            for (k = 0; k < nnames && strcmp(names[k], name) != 0; k++)
                ;
            if (k < nnames) {
                free(name);
                continue;
            }
            names = cv_realloc(names, (nnames + 1) * sizeof *names);
            names[nnames++] = name;
        }
        closedir(d);
    }
    if (nnames)
        qsort(names, nnames, sizeof *names, cmp_str);
    int listed = 0;
    for (size_t k = 0; k < nnames; k++) {
        cv_module *m;
        char err[CV_ERR_MAX];
        if (find_module(l, names[k], &m, err, sizeof err) < 0) {
            fprintf(out, "%s: not usable: %s\n\n", names[k], err);
            free(names[k]);
            continue;
        }
        print_module(m, names[k], out);
        listed++;
        free(names[k]);
    }
    free(names);
    if (listed == 0 && nnames == 0) {
        char *sp = search_path_text(l);
        fprintf(out, "no plugin modules found in %s\n", sp);
        free(sp);
    }
    return listed;
}
