/* SPDX-License-Identifier: MIT */
/*
 * test_params.c - a stage's parameters as a plugin reads them
 * (framework/api/params.c): the typed getters on good and bad values with
 * the exact message each bad one writes, the declared default standing in
 * for a key the section does not set, and conveyor_replicas; in the host's
 * check context (a ctx with no run), as check() sees them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <conveyor/plugin.h>
#include "base/log.h"
#include "load/config.h"
#include "run/run.h"

/* The keys a test section sets ("key = value" lines) and the stage's specs. */
static const conveyor_param_spec specs[] = {
    { .name = "n" }, { .name = "size" }, { .name = "flag" }, { .name = "wait" },
    { .name = "dn", .default_value = "42" },
    { .name = "dsize", .default_value = "4K" },
    { .name = "dflag", .default_value = "on" },
    { .name = "dwait", .default_value = "2s" },
    { .name = "dtext", .default_value = "plain" },
    { .name = "broken", .default_value = "lots" },
    { .name = NULL },
};
static const conveyor_stage stage = { .name = "t", .process = NULL, .params = specs };

/* One section [s] holding BODY, and a check context over it. */
struct fixture {
    cv_config *cfg;
    conveyor_ctx ctx;
};

static void setup(struct fixture *f, const char *body)
{
    char text[4096], err[CV_ERR_MAX] = "";
    snprintf(text, sizeof text, "[s]\nplugin = m:t\nreplicas = 3\n%s", body);
    cr_assert_eq(cv_config_load_string("p.ini", text, &f->cfg, err, sizeof err), 0, "%s", err);
    f->ctx = (conveyor_ctx){.run = NULL, .pipeline = f->cfg, .proc = -1,
                            .cfg = &f->cfg->stages[0], .stage = &stage};
}

/* Standard error, caught while a getter runs: cv_log writes to fd 2. */
static int saved_fd = -1;
static FILE *caught;

static void catch_stderr(void)
{
    fflush(stderr);
    caught = tmpfile();
    cr_assert(caught);
    saved_fd = dup(STDERR_FILENO);
    dup2(fileno(caught), STDERR_FILENO);
}

/* What was written since catch_stderr() (static buffer). */
static const char *released_stderr(void)
{
    static char buf[8192];
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    rewind(caught);
    size_t n = fread(buf, 1, sizeof buf - 1, caught);
    buf[n] = '\0';
    fclose(caught);
    return buf;
}

/* The line the getter writes for a bad value at line LINE of p.ini. */
static const char *msg(int line, const char *key, const char *value, const char *why)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "conveyor-host: error: p.ini:%d: [s] key '%s' = '%s': %s\n", line,
             key, value, why);
    return buf;
}

#define NOT_INT "not a whole number (decimal digits, an optional sign)"

Test(params, int_good_values)
{
    static const struct { const char *v; int64_t want; } ok[] = {
        {"0", 0}, {"7", 7}, {"+7", 7}, {"-5", -5}, {"1000", 1000}, {"007", 7},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct fixture f;
        char body[64];
        int64_t v = -99;
        snprintf(body, sizeof body, "n = %s\n", ok[i].v);
        setup(&f, body);
        cr_expect_eq(conveyor_param_int(&f.ctx, "n", -5, 1000, &v), 1, "'%s'", ok[i].v);
        cr_expect_eq(v, ok[i].want, "'%s' gave %lld", ok[i].v, (long long)v);
        cv_config_free(f.cfg);
    }
}

Test(params, int_extremes_of_int64)
{
    struct fixture f;
    int64_t v = 0;
    setup(&f, "n = -9223372036854775808\nsize = 9223372036854775807\n");
    cr_expect_eq(conveyor_param_int(&f.ctx, "n", INT64_MIN, INT64_MAX, &v), 1);
    cr_expect_eq(v, INT64_MIN);
    cr_expect_eq(conveyor_param_int(&f.ctx, "size", INT64_MIN, INT64_MAX, &v), 1);
    cr_expect_eq(v, INT64_MAX);
    cv_config_free(f.cfg);
}

Test(params, int_bad_values_say_why_at_their_line)
{
    static const struct { const char *v, *why; } bad[] = {
        {"abc", NOT_INT}, {"12abc", NOT_INT}, {"1.5", NOT_INT}, {"--1", NOT_INT}, {"-", NOT_INT},
        {"0x10", NOT_INT}, {"1 000", NOT_INT}, {"4K", NOT_INT},
        {"1001", "out of range: it must be from -5 to 1000"},
        {"-6", "out of range: it must be from -5 to 1000"},
        {"9223372036854775808", "out of range: it must be from -5 to 1000"},
        {"-99999999999999999999", "out of range: it must be from -5 to 1000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fixture f;
        char body[64];
        int64_t v = 123;
        snprintf(body, sizeof body, "\nn = %s\n", bad[i].v);
        setup(&f, body);
        catch_stderr();
        int rc = conveyor_param_int(&f.ctx, "n", -5, 1000, &v);
        const char *err = released_stderr();
        cr_expect_eq(rc, -EINVAL, "'%s' gave %d", bad[i].v, rc);
        cr_expect_eq(v, 123, "'%s' changed the value", bad[i].v);
        cr_expect_str_eq(err, msg(5, "n", bad[i].v, bad[i].why));
        cv_config_free(f.cfg);
    }
}

Test(params, empty_value_is_malformed_for_every_type)
{
    struct fixture f;
    int64_t i = 1;
    uint64_t u = 1;
    int b = 1;
    setup(&f, "n =\nsize =\nflag =\nwait =\n");
    catch_stderr();
    cr_expect_eq(conveyor_param_int(&f.ctx, "n", 0, 10, &i), -EINVAL);
    cr_expect_eq(conveyor_param_size(&f.ctx, "size", &u), -EINVAL);
    cr_expect_eq(conveyor_param_bool(&f.ctx, "flag", &b), -EINVAL);
    cr_expect_eq(conveyor_param_duration(&f.ctx, "wait", &u), -EINVAL);
    const char *err = released_stderr();
    char want[4096];
    snprintf(want, sizeof want, "%s", msg(4, "n", "", NOT_INT));
    strcat(want, msg(5, "size", "", "not a size (a number of bytes, or with K, M, G or T)"));
    strcat(want, msg(6, "flag", "", "not yes or no (nor true/false, on/off, 1/0)"));
    strcat(want, msg(7, "wait", "", "not a duration (a whole number with ms, s, m or h; "
                                    "seconds without one)"));
    cr_expect_str_eq(err, want);
    cr_expect_eq(i, 1);
    cr_expect_eq(u, 1);
    cr_expect_eq(b, 1);
    cv_config_free(f.cfg);
}

Test(params, size_good_values)
{
    static const struct { const char *v; uint64_t want; } ok[] = {
        {"0", 0}, {"512", 512}, {"512B", 512}, {"4K", 4096}, {"4k", 4096}, {"4KB", 4096},
        {"4KiB", 4096}, {"64M", 64ull << 20}, {"64MiB", 64ull << 20}, {"2G", 2ull << 30},
        {"3T", 3ull << 40}, {"1tib", 1ull << 40},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct fixture f;
        char body[64];
        uint64_t v = 1;
        snprintf(body, sizeof body, "size = %s\n", ok[i].v);
        setup(&f, body);
        cr_expect_eq(conveyor_param_size(&f.ctx, "size", &v), 1, "'%s'", ok[i].v);
        cr_expect_eq(v, ok[i].want, "'%s' gave %llu", ok[i].v, (unsigned long long)v);
        cv_config_free(f.cfg);
    }
}

Test(params, size_bad_values_say_why)
{
    static const struct { const char *v, *why; } bad[] = {
        {"K", "not a size (a number of bytes, or with K, M, G or T)"},
        {"-1", "not a size (a number of bytes, or with K, M, G or T)"},
        {"4Q", "not a size (a number of bytes, or with K, M, G or T)"},
        {"4iB", "not a size (a number of bytes, or with K, M, G or T)"},
        {"4KX", "not a size (a number of bytes, or with K, M, G or T)"},
        {"4 K", "not a size (a number of bytes, or with K, M, G or T)"},
        {"1.5M", "not a size (a number of bytes, or with K, M, G or T)"},
        {"16777216T", "too large a size"},
        {"99999999999999999999", "too large a size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fixture f;
        char body[64];
        uint64_t v = 9;
        snprintf(body, sizeof body, "size = %s\n", bad[i].v);
        setup(&f, body);
        catch_stderr();
        int rc = conveyor_param_size(&f.ctx, "size", &v);
        const char *err = released_stderr();
        cr_expect_eq(rc, -EINVAL, "'%s' gave %d", bad[i].v, rc);
        cr_expect_eq(v, 9);
        cr_expect_str_eq(err, msg(4, "size", bad[i].v, bad[i].why));
        cv_config_free(f.cfg);
    }
}

Test(params, bool_every_spelling)
{
    static const struct { const char *v; int want; } ok[] = {
        {"yes", 1}, {"YES", 1}, {"Yes", 1}, {"true", 1}, {"True", 1}, {"on", 1}, {"ON", 1},
        {"1", 1}, {"no", 0}, {"No", 0}, {"false", 0}, {"FALSE", 0}, {"off", 0}, {"Off", 0},
        {"0", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct fixture f;
        char body[64];
        int v = 7;
        snprintf(body, sizeof body, "flag = %s\n", ok[i].v);
        setup(&f, body);
        cr_expect_eq(conveyor_param_bool(&f.ctx, "flag", &v), 1, "'%s'", ok[i].v);
        cr_expect_eq(v, ok[i].want, "'%s' gave %d", ok[i].v, v);
        cv_config_free(f.cfg);
    }
}

Test(params, bool_bad_values_say_why)
{
    static const char *const bad[] = {"y", "n", "2", "yess", "t", "enabled", "on1", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fixture f;
        char body[64];
        int v = 7;
        snprintf(body, sizeof body, "flag = %s\n", bad[i]);
        setup(&f, body);
        catch_stderr();
        int rc = conveyor_param_bool(&f.ctx, "flag", &v);
        const char *err = released_stderr();
        cr_expect_eq(rc, -EINVAL, "'%s' gave %d", bad[i], rc);
        cr_expect_eq(v, 7);
        cr_expect_str_eq(err, msg(4, "flag", bad[i], "not yes or no (nor true/false, on/off, 1/0)"));
        cv_config_free(f.cfg);
    }
}

Test(params, duration_good_values)
{
    static const struct { const char *v; uint64_t want; } ok[] = {
        {"0", 0}, {"250", 250000}, {"250ms", 250}, {"3s", 3000}, {"2m", 120000},
        {"1h", 3600000}, {"0h", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct fixture f;
        char body[64];
        uint64_t v = 1;
        snprintf(body, sizeof body, "wait = %s\n", ok[i].v);
        setup(&f, body);
        cr_expect_eq(conveyor_param_duration(&f.ctx, "wait", &v), 1, "'%s'", ok[i].v);
        cr_expect_eq(v, ok[i].want, "'%s' gave %llu", ok[i].v, (unsigned long long)v);
        cv_config_free(f.cfg);
    }
}

Test(params, duration_bad_values_say_why)
{
    static const struct { const char *v, *why; } bad[] = {
        {"s", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"5x", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"1.5s", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"-1s", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"5 s", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"5S", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"2d", "not a duration (a whole number with ms, s, m or h; seconds without one)"},
        {"5124095576030432h", "too long a duration"},
        {"99999999999999999999ms", "too long a duration"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct fixture f;
        char body[64];
        uint64_t v = 9;
        snprintf(body, sizeof body, "wait = %s\n", bad[i].v);
        setup(&f, body);
        catch_stderr();
        int rc = conveyor_param_duration(&f.ctx, "wait", &v);
        const char *err = released_stderr();
        cr_expect_eq(rc, -EINVAL, "'%s' gave %d", bad[i].v, rc);
        cr_expect_eq(v, 9);
        cr_expect_str_eq(err, msg(4, "wait", bad[i].v, bad[i].why));
        cv_config_free(f.cfg);
    }
}

Test(params, absent_key_leaves_the_callers_default)
{
    struct fixture f;
    int64_t i = 5;
    uint64_t u = 6, ms = 7;
    int b = 8;
    setup(&f, "");
    catch_stderr();
    cr_expect_eq(conveyor_param_int(&f.ctx, "n", 0, 10, &i), 0);
    cr_expect_eq(conveyor_param_size(&f.ctx, "size", &u), 0);
    cr_expect_eq(conveyor_param_bool(&f.ctx, "flag", &b), 0);
    cr_expect_eq(conveyor_param_duration(&f.ctx, "wait", &ms), 0);
    cr_expect_eq(conveyor_param_int(&f.ctx, "undeclared", 0, 10, &i), 0);
    cr_expect_str_eq(released_stderr(), "");
    cr_expect(i == 5 && u == 6 && b == 8 && ms == 7);
    cr_expect_null(conveyor_param(&f.ctx, "n"));
    cv_config_free(f.cfg);
}

Test(params, declared_defaults_stand_in_for_unset_keys)
{
    struct fixture f;
    int64_t i = 0;
    uint64_t u = 0, ms = 0;
    int b = 0;
    setup(&f, "dn = 5\n");
    cr_expect_eq(conveyor_param_int(&f.ctx, "dn", 0, 100, &i), 1);
    cr_expect_eq(i, 5, "the section's value wins over the default");
    cr_expect_str_eq(conveyor_param(&f.ctx, "dn"), "5");
    cr_expect_eq(conveyor_param_size(&f.ctx, "dsize", &u), 1);
    cr_expect_eq(u, 4096);
    cr_expect_eq(conveyor_param_bool(&f.ctx, "dflag", &b), 1);
    cr_expect_eq(b, 1);
    cr_expect_eq(conveyor_param_duration(&f.ctx, "dwait", &ms), 1);
    cr_expect_eq(ms, 2000);
    cr_expect_str_eq(conveyor_param(&f.ctx, "dtext"), "plain");
    cr_expect_str_eq(conveyor_param(&f.ctx, "dsize"), "4K");
    cv_config_free(f.cfg);
}

Test(params, bad_default_names_the_section_line)
{
    struct fixture f;
    int64_t i = 3;
    setup(&f, "");
    catch_stderr();
    cr_expect_eq(conveyor_param_int(&f.ctx, "broken", 0, 100, &i), -EINVAL);
    cr_expect_str_eq(released_stderr(),
                     "conveyor-host: error: p.ini:1: [s] key 'broken' = 'lots': not a whole number "
                     "(decimal digits, an optional sign) (the default the plugin declares)\n");
    cr_expect_eq(i, 3);
    cv_config_free(f.cfg);
}

Test(params, replicas_and_the_check_context)
{
    struct fixture f;
    setup(&f, "");
    cr_expect_eq(conveyor_replicas(&f.ctx), 3);
    cr_expect_eq(conveyor_replica(&f.ctx), 0);
    cr_expect_str_eq(conveyor_stage_name(&f.ctx), "s");
    cr_expect_eq(conveyor_replicas(NULL), 0);
    /* Nothing runs in a check: no emit, no segment, no locks. */
    cr_expect_eq(conveyor_emit(&f.ctx, "x", 1), -EINVAL);
    errno = 0;
    cr_expect_null(conveyor_emit_begin(&f.ctx, 1));
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(conveyor_emit_commit(&f.ctx, 1), -EINVAL);
    cr_expect_eq(conveyor_forward(&f.ctx), -EINVAL);
    size_t size = 99;
    cr_expect_null(conveyor_shm(&f.ctx, &size));
    cr_expect_eq(size, 0);
    cr_expect_null(conveyor_shm_name(&f.ctx));
    cr_expect_eq(conveyor_lock(&f.ctx, 0), -EINVAL);
    cr_expect_eq(conveyor_unlock(&f.ctx, 0), -EINVAL);
    catch_stderr();
    conveyor_log(&f.ctx, CONVEYOR_LOG_WARNING, "about %s", "this");
    cr_expect_str_eq(released_stderr(), "conveyor-host: warning: p.ini:1: [s] about this\n");
    cv_config_free(f.cfg);
}

Test(params, null_arguments_are_refused)
{
    struct fixture f;
    int64_t i;
    setup(&f, "n = 1\n");
    cr_expect_eq(conveyor_param_int(&f.ctx, "n", 0, 10, NULL), -EINVAL);
    cr_expect_eq(conveyor_param_int(&f.ctx, "n", 10, 0, &i), -EINVAL);
    cr_expect_eq(conveyor_param_size(&f.ctx, "n", NULL), -EINVAL);
    cr_expect_eq(conveyor_param_bool(&f.ctx, "n", NULL), -EINVAL);
    cr_expect_eq(conveyor_param_duration(&f.ctx, "n", NULL), -EINVAL);
    cr_expect_eq(conveyor_param_int(NULL, "n", 0, 10, &i), 0);
    cr_expect_eq(conveyor_param_int(&f.ctx, NULL, 0, 10, &i), 0);
    cr_expect_null(conveyor_param(NULL, "n"));
    cv_config_free(f.cfg);
}
