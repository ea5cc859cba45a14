/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_redis.c - the redis module end to end, against a real
 * redis-server started for each test (on a unix socket in a fresh folder,
 * and on a free local port for the tcp url): redis:read through stages
 * into redis:write, pending entries re-read after a host was killed, two
 * hosts sharing a group, a stop by SIGTERM, Redis restarted mid-run, a
 * poison entry moved to the dead stream, and the mistakes (a bad url, a
 * missing key, a key of the wrong type, an error reply to XADD).
 *
 * The suite redis_ack holds the tests of acknowledgements, which follow
 * the pipeline's completion watermark (conveyor_completed): everything
 * finished is acknowledged, an empty XPENDING at the end, nothing read
 * twice after a clean stop.
 *
 * Every test skips itself when redis-server is not installed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* --- the server ------------------------------------------------------------ */

static struct server {
    pid_t pid;
    char dir[64];       /* /tmp: a unix socket path has at most 107 bytes */
    char sock[128];
    int port;           /* 0: unix socket only */
    redisContext *c;    /* the test's own connection */
} srv;

static const char *server_binary(void)
{
    static char found[4096];
    const char *path = getenv("PATH");
    if (getenv("CONVEYOR_REDIS_SERVER"))
        return getenv("CONVEYOR_REDIS_SERVER");
    if (!path)
        return NULL;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/redis-server", (int)n, p);
        if (access(found, X_OK) == 0)
            return found;
        p += n + (p[n] == ':');
    }
    return NULL;
}

/* A port nothing listens on now: bound to port 0, read back, closed. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts redis-server on srv.sock (and srv.port unless 0), its data in
 * srv.dir, and connects to it. */
static void server_run(void)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", srv.port);
    snprintf(log, sizeof log, "%s/redis.log", srv.dir);
    srv.pid = fork();
    cr_assert(srv.pid >= 0);
    if (srv.pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        /* A test process that dies takes its server with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(server_binary(), "redis-server", "--port", port, "--bind", "127.0.0.1",
              "--unixsocket", srv.sock, "--save", "", "--appendonly", "no", "--daemonize",
              "no", "--dir", srv.dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {     /* 20 s */
        struct timeval tv = {2, 0};
        redisContext *c = redisConnectUnixWithTimeout(srv.sock, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            if (r && r->type == REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                srv.c = c;
                return;
            }
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
        sleep_ms(50);
    }
    cr_assert_fail("redis-server did not answer PING in 20 s (see %s)", log);
}

/* A fresh server for one test; TCP: on a free local port too. */
static void server_start(int tcp)
{
    const char *bin = server_binary();
    if (!bin)
        cr_skip_test("redis-server is not installed (Debian: the redis-server package)");
    snprintf(srv.dir, sizeof srv.dir, "/tmp/cv-redis.XXXXXX");
    cr_assert(mkdtemp(srv.dir));
    snprintf(srv.sock, sizeof srv.sock, "%s/redis.sock", srv.dir);
    srv.port = tcp ? free_port() : 0;
    server_run();
}

/* Ends the server: SHUTDOWN SAVE keeps its data for server_run(). */
static void server_stop(int save)
{
    if (srv.c) {
        redisReply *r = redisCommand(srv.c, save ? "SHUTDOWN SAVE" : "SHUTDOWN NOSAVE");
        if (r)
            freeReplyObject(r);
        redisFree(srv.c);
        srv.c = NULL;
    }
    if (srv.pid > 0) {
        int st;
        for (int i = 0; i < 200 && waitpid(srv.pid, &st, WNOHANG) == 0; i++)
            sleep_ms(50);
        if (waitpid(srv.pid, &st, WNOHANG) == 0) {
            kill(srv.pid, SIGKILL);
            waitpid(srv.pid, &st, 0);
        }
        srv.pid = 0;
    }
}

static void teardown(void)
{
    char cmd[160];
    server_stop(0);
    if (srv.dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", srv.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", srv.dir);
    }
}

/* --- talking to it ----------------------------------------------------------- */

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(srv.c, fmt, ap);
    va_end(ap);
    cr_assert(r, "redis: %s", srv.c->errstr);
    return r;
}

static long long cmd_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(srv.c, fmt, ap);
    va_end(ap);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "%s: %s", fmt,
              r ? (r->str ? r->str : "not an integer") : srv.c->errstr);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* "PREFIX-00001" .. for entry I */
static void value_of(char *buf, size_t n, const char *prefix, int i)
{
    snprintf(buf, n, "%s-%05d", prefix, i);
}

/* XADDs entries FROM .. TO (pipelined) to STREAM with field data. */
static void add_entries(const char *stream, const char *prefix, int from, int to)
{
    char v[64];
    for (int i = from; i <= to; i++) {
        value_of(v, sizeof v, prefix, i);
        redisAppendCommand(srv.c, "XADD %s * data %s", stream, v);
    }
    for (int i = from; i <= to; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(srv.c, (void **)&r), REDIS_OK);
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
}

/* The values of FIELD in STREAM's entries, in order (XRANGE - +). */
typedef struct values { char **v; size_t n; } values;

static values stream_values(const char *stream, const char *field)
{
    values out = {NULL, 0};
    redisReply *r = cmd("XRANGE %s - +", stream);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    out.v = calloc(r->elements + 1, sizeof *out.v);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (strcmp(f->element[j]->str, field) == 0)
                out.v[out.n++] = strdup(f->element[j + 1]->str);
    }
    freeReplyObject(r);
    return out;
}

static void values_free(values *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
}

/* How many times WANT is among V. */
static int count_of(const values *v, const char *want)
{
    int n = 0;
    for (size_t i = 0; i < v->n; i++)
        n += strcmp(v->v[i], want) == 0;
    return n;
}

/* The id of STREAM's last entry (malloc'd). */
static char *last_id(const char *stream)
{
    redisReply *r = cmd("XREVRANGE %s + - COUNT 1", stream);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    char *id = strdup(r->element[0]->element[0]->str);
    freeReplyObject(r);
    return id;
}

/* GROUP's last-delivered-id in STREAM (malloc'd), or "" without the group. */
static char *last_delivered(const char *stream, const char *group)
{
    redisReply *r = redisCommand(srv.c, "XINFO GROUPS %s", stream);
    char *id = strdup("");
    cr_assert(r);
    for (size_t g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
        redisReply *info = r->element[g];
        int ours = 0;
        for (size_t i = 0; i + 1 < info->elements; i += 2)
            if (strcmp(info->element[i]->str, "name") == 0)
                ours = strcmp(info->element[i + 1]->str, group) == 0;
        for (size_t i = 0; ours && i + 1 < info->elements; i += 2)
            if (strcmp(info->element[i]->str, "last-delivered-id") == 0) {
                free(id);
                id = strdup(info->element[i + 1]->str);
            }
    }
    freeReplyObject(r);
    return id;
}

static host_run *running[4];

/* Fails the test, with the host's messages, when a running host ended. */
static void hosts_alive(void)
{
    for (size_t i = 0; i < sizeof running / sizeof *running; i++) {
        char state;
        pid_t parent;
        host_run *r = running[i];
        if (!r || (proc_stat(r->pid, &state, &parent) == 0 && state != 'Z'))
            continue;
        running[i] = NULL;
        host_finish(r, NULL, 0, 10);
        cr_assert_fail("the host ended early, status %d: %s", r->status, r->err);
    }
}

/* Waits (60 s at most) until GROUP was given every entry of STREAM. */
static void wait_all_delivered(const char *stream, const char *group)
{
    char *want = last_id(stream);
    for (int i = 0; i < 1200; i++) {
        char *have = last_delivered(stream, group);
        int done = strcmp(have, want) == 0;
        free(have);
        if (done) {
            free(want);
            return;
        }
        hosts_alive();
        sleep_ms(50);
    }
    cr_assert_fail("group %s was not given all of %s (up to %s) in 60 s", group, stream, want);
}

/* Waits (60 s at most) until STREAM holds at least N entries. */
static void wait_xlen(const char *stream, long long n)
{
    long long have = 0;
    for (int i = 0; i < 1200; i++) {
        if ((have = cmd_int("XLEN %s", stream)) >= n)
            return;
        hosts_alive();
        sleep_ms(50);
    }
    cr_assert_fail("%s holds %lld entries, not %lld, after 60 s", stream, have, n);
}

/* --- the host ---------------------------------------------------------------- */

/* The url of the test's server. */
static const char *url(void)
{
    static char u[160];
    snprintf(u, sizeof u, "unix://%s", srv.sock);
    return u;
}

/* The hosts running now (declared above): a wait fails at once when one
 * of them ended. */

static void unwatch(host_run *r)
{
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (running[i] == r)
            running[i] = NULL;
}

/* Waits for R after it ended (or kills it after TIMEOUT s). */
static void host_end(host_run *r, int timeout)
{
    unwatch(r);
    host_finish(r, NULL, 0, timeout);
}

static void host_begin(host_run *r, const char *name, const char *ini)
{
    for (size_t i = 0; i < sizeof running / sizeof *running; i++)
        if (!running[i]) {
            running[i] = r;
            break;
        }
    char *path = write_file(name, ini);
    const char *args[] = {"-c", path, NULL};
    host_start(r, args);
    free(path);
}

/* Asks the host to stop (SIGTERM) and waits: it ends with 143. */
static void host_stop(host_run *r)
{
    cr_assert_eq(kill(r->pid, SIGTERM), 0);
    host_end(r, 60);
    cr_assert_eq(r->status, 143, "status %d, stderr: %s", r->status, r->err);
    cr_assert_eq(shm_left(r->pid), 0);
}

/* The run said nothing but the stop and its summary. */
static void assert_quiet_stop(const host_run *r)
{
    static const char head[] = "conveyor-host: received SIGTERM: finishing the items in flight (";
    static const char tail[] = "); send it again to stop at once\n";
    char *msgs = messages_of(r->err);
    const char *p = msgs + strlen(head);
    cr_assert(strncmp(msgs, head, strlen(head)) == 0, "stderr: %s", r->err);
    while (*p >= '0' && *p <= '9')      /* how many were in flight */
        p++;
    cr_assert_str_eq(p, tail, "stderr: %s", r->err);
    free(msgs);
}

/* A source section reading stream in, group g, at URL, with EXTRA keys. */
static char *pipeline(const char *extra_src, const char *rest)
{
    size_t n = 4096 + strlen(rest);
    char *ini = malloc(n);
    snprintf(ini, n, "[src]\ntype = source\nplugin = redis:read\nurl = %s\nstream = in\ngroup = g\n"
                     "%s%s", url(), extra_src, rest);
    return ini;
}

/* --- the suite -------------------------------------------------------------- */

TestSuite(redis, .fini = teardown, .timeout = 180);

Test(redis, ten_thousand_entries_through_upper_into_another_stream)
{
    server_start(0);
    add_entries("in", "item", 1, 10000);
    char rest[512];
    snprintf(rest, sizeof rest, "[up]\nplugin = text:upper\n"
                                "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *ini = pipeline("", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    host_stop(&r);
    assert_quiet_stop(&r);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 10000, "%zu entries in out", out.n);
    for (int i = 1; i <= 10000; i++) {
        char want[64];
        value_of(want, sizeof want, "ITEM", i);
        cr_assert_str_eq(out.v[i - 1], want);
    }
    values_free(&out);
    free(ini);
    host_run_free(&r);
}

Test(redis, a_tcp_url_with_a_database)
{
    server_start(1);
    freeReplyObject(cmd("SELECT 2"));
    add_entries("in", "tcp", 1, 100);
    char ini[1024];
    snprintf(ini, sizeof ini, "[src]\ntype = source\nplugin = redis:read\n"
                              "url = redis://127.0.0.1:%d/2\nstream = in\ngroup = g\n"
                              "[w]\nplugin = redis:write\nurl = redis://127.0.0.1:%d/2\n"
                              "stream = out\nbatch = 7\n", srv.port, srv.port);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    host_stop(&r);
    assert_quiet_stop(&r);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 100);
    cr_assert_str_eq(out.v[0], "tcp-00001");
    cr_assert_str_eq(out.v[99], "tcp-00100");
    values_free(&out);
    /* Nothing went to database 0. */
    freeReplyObject(cmd("SELECT 0"));
    cr_assert_eq(cmd_int("EXISTS out in"), 0);
    host_run_free(&r);
}

Test(redis, pending_entries_are_read_first_after_the_host_was_killed)
{
    server_start(0);
    add_entries("in", "k", 1, 3000);
    char rest[512];
    snprintf(rest, sizeof rest, "[slow]\nplugin = testplug:slow\nusec = 200\n"
                                "[w]\nplugin = redis:write\nurl = %s\nstream = out\nbatch = 16\n",
             url());
    char *ini = pipeline("consumer = c1\ncount = 100\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_xlen("out", 200);
    cr_assert_eq(kill(r.pid, SIGKILL), 0);
    host_end(&r, 30);
    cr_assert_eq(r.status, 128 + SIGKILL);
    char *read_by_first = last_delivered("in", "g");
    long long before = cmd_int("XLEN out");
    host_run_free(&r);

    /* What c1 had read and not acknowledged, in order: the second host
     * with the same name reads exactly these first. */
    redisReply *pend = cmd("XPENDING in g - + 100000 c1");
    cr_assert(pend->elements > 0);
    add_entries("in", "k", 3001, 4000);
    host_begin(&r, "p2.ini", ini);
    wait_all_delivered("in", "g");
    host_stop(&r);

    values out = stream_values("out", "data"), in = stream_values("in", "data");
    cr_assert_eq(in.n, 4000);
    for (size_t i = 0; i < pend->elements; i++) {
        redisReply *e = cmd("XRANGE in %s %s", pend->element[i]->element[0]->str,
                            pend->element[i]->element[0]->str);
        cr_assert_str_eq(out.v[before + (long long)i], e->element[0]->element[1]->element[1]->str,
                         "entry %zu of the second host", i);
        freeReplyObject(e);
    }
    /* Nothing lost; a value twice only if the first host had read it. */
    for (size_t i = 0; i < in.n; i++) {
        int n = count_of(&out, in.v[i]);
        cr_assert(n >= 1, "%s was lost", in.v[i]);
        if (n > 1) {
            redisReply *e = cmd("XRANGE in - %s", read_by_first);
            int first_read = 0;
            for (size_t j = 0; j < e->elements && !first_read; j++)
                first_read = strcmp(e->element[j]->element[1]->element[1]->str, in.v[i]) == 0;
            freeReplyObject(e);
            cr_assert(first_read, "%s written %d times though the first host never read it",
                      in.v[i], n);
        }
    }
    values_free(&out);
    values_free(&in);
    freeReplyObject(pend);
    free(read_by_first);
    free(ini);
    host_run_free(&r);
}

Test(redis, two_hosts_in_one_group_share_the_stream)
{
    server_start(0);
    char rest[512];
    snprintf(rest, sizeof rest, "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *a = pipeline("consumer = a\ncount = 50\n", rest);
    char *b = pipeline("consumer = b\ncount = 50\n", rest);
    host_run ra, rb;
    host_begin(&ra, "a.ini", a);
    host_begin(&rb, "b.ini", b);
    /* Both are in the group (a consumer exists once it has read). */
    for (int i = 0; i < 400; i++) {
        redisReply *c = redisCommand(srv.c, "XINFO CONSUMERS in g");
        int n = c && c->type == REDIS_REPLY_ARRAY ? (int)c->elements : 0;
        if (c)
            freeReplyObject(c);
        if (n == 2)
            break;
        sleep_ms(50);
    }
    for (int k = 0; k < 10; k++) {      /* in steps, so both have a chance */
        add_entries("in", "s", k * 1000 + 1, k * 1000 + 1000);
        sleep_ms(20);
    }
    wait_all_delivered("in", "g");
    host_stop(&ra);
    host_stop(&rb);
    assert_quiet_stop(&ra);
    assert_quiet_stop(&rb);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 10000, "%zu entries in out", out.n);
    for (int i = 1; i <= 10000; i++) {
        char want[64];
        value_of(want, sizeof want, "s", i);
        cr_assert_eq(count_of(&out, want), 1, "%s is there %d times", want, count_of(&out, want));
    }
    values_free(&out);
    free(a);
    free(b);
    host_run_free(&ra);
    host_run_free(&rb);
}

Test(redis, a_bad_url_is_named)
{
    server_start(0);
    host_run r;
    run_text(&r, "[src]\ntype = source\nplugin = redis:read\nurl = redis://localhost:99999/0\n"
                 "stream = in\ngroup = g\n", NULL);
    cr_assert_neq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "url 'redis://localhost:99999/0': the port must be a number from 1 "
                            "to 65535\n"), "stderr: %s", r.err);
    host_run_free(&r);
    static const char *const bad[][2] = {
        {"http://127.0.0.1/", "a url starts with redis:// or unix://"},
        {"redis://", "the url has no host"},
        {"redis://h:0", "the port must be a number from 1 to 65535"},
        {"redis://h:6379/", "the database after '/' must be a number"},
        {"redis://h:6379/0/x", "unexpected characters after HOST[:PORT][/DB]"},
        {"redis://user:secret@h", "a user or password in the url is not supported"},
        {"redis://[::1", "an IPv6 address is written [ADDRESS]"},
        {"unix://relative.sock", "a unix url names an absolute path: unix:///PATH"},
        {"unix:///tmp/x.sock?timeout=1", "the only query a unix url takes is ?db=N"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char ini[512], want[256];
        snprintf(ini, sizeof ini, "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", bad[i][0]);
        /* Refused by the stage's check, before anything starts. */
        snprintf(want, sizeof want, "p.ini:1: [w] url '%s': %s\n", bad[i][0], bad[i][1]);
        run_text(&r, ini, "x\n");
        cr_assert_eq(r.status, 2, "status %d for %s", r.status, bad[i][0]);
        cr_assert(strstr(r.err, want), "want %s, stderr: %s", want, r.err);
        host_run_free(&r);
    }
    run_text(&r, "[src]\ntype = source\nplugin = redis:read\nurl = unix:///tmp/x.sock?db=a\n"
                 "stream = in\ngroup = g\n", NULL);
    cr_assert_neq(r.status, 0, "stderr: %s", r.err);
    cr_assert(strstr(r.err, "url 'unix:///tmp/x.sock?db=a': db= must be a number\n"),
              "stderr: %s", r.err);
    host_run_free(&r);
}

Test(redis, a_server_that_is_not_there_is_named)
{
    server_start(0);
    char ini[512];
    snprintf(ini, sizeof ini, "[src]\ntype = source\nplugin = redis:read\n"
                              "url = unix://%s/none.sock\nstream = in\ngroup = g\n", srv.dir);
    host_run r;
    run_text(&r, ini, NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    char want[256];
    snprintf(want, sizeof want, "stream 'in': cannot connect to unix://%s/none.sock: ", srv.dir);
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(redis, a_missing_stream_key_is_named)
{
    server_start(0);
    char ini[512];
    snprintf(ini, sizeof ini, "[src]\ntype = source\nplugin = redis:read\nurl = %s\ngroup = g\n",
             url());
    host_run r;
    run_text(&r, ini, NULL);
    /* 1 when the stage refuses to start, 2 when the host refuses the
     * section for its required key first. */
    cr_assert(r.status == 1 || r.status == 2, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stream"), "stderr: %s", r.err);
    cr_assert_eq(cmd_int("DBSIZE"), 0);
    host_run_free(&r);
}

Test(redis, a_key_of_the_wrong_type_is_named)
{
    server_start(0);
    freeReplyObject(cmd("SET in notastream"));
    host_run r;
    char *ini = pipeline("", "");
    run_text(&r, ini, NULL);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: src: error: stream 'in', group 'g': XGROUP CREATE "
                            "failed: WRONGTYPE Operation against a key holding the wrong kind of "
                            "value\n"), "stderr: %s", r.err);
    free(ini);
    host_run_free(&r);
}

Test(redis, a_stream_deleted_mid_run_fails_produce)
{
    server_start(0);
    add_entries("in", "w", 1, 10);
    host_run r;
    char *ini = pipeline("", "[c]\nplugin = testplug:count\n");
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    freeReplyObject(cmd("DEL in"));
    host_end(&r, 60);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    /* Redis's words: UNBLOCKED to a reader waiting in XREADGROUP, NOGROUP
     * to one that comes after the DEL. */
    cr_assert(strstr(r.err, "conveyor-host: src: error: stream 'in', group 'g': XREADGROUP "
                            "failed: UNBLOCKED the stream key no longer exists\n") ||
              strstr(r.err, "conveyor-host: src: error: stream 'in', group 'g': XREADGROUP "
                            "failed: NOGROUP "), "stderr: %s", r.err);
    cr_assert(strstr(r.err, "stage 'src': produce failed (Input/output error, returned -5)"),
              "stderr: %s", r.err);
    free(ini);
    host_run_free(&r);
}

Test(redis, sigterm_stops_the_source_nothing_is_duplicated)
{
    server_start(0);
    add_entries("in", "t", 1, 20000);
    char rest[512];
    snprintf(rest, sizeof rest, "[slow]\nplugin = testplug:slow\nusec = 100\n"
                                "[w]\nplugin = redis:write\nurl = %s\nstream = out\nbatch = 32\n",
             url());
    char *ini = pipeline("count = 64\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_xlen("out", 500);
    host_stop(&r);
    assert_quiet_stop(&r);
    /* One host, one process per stage: what the group delivered drains,
     * in order, each entry once. */
    char *last = last_delivered("in", "g");
    redisReply *delivered = cmd("XRANGE in - %s", last);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, delivered->elements, "%zu entries written, %zu delivered", out.n,
                 delivered->elements);
    freeReplyObject(delivered);
    free(last);
    for (size_t i = 0; i < out.n; i++) {
        char want[64];
        value_of(want, sizeof want, "t", (int)i + 1);
        cr_assert_str_eq(out.v[i], want);
    }
    values_free(&out);
    free(ini);
    host_run_free(&r);
}

/* Reads what is in FILE (malloc'd, "" when missing). */
static char *file_text(const char *path)
{
    size_t n;
    char *s = read_file(path, &n);
    return s ? s : strdup("");
}

/* Waits (60 s at most) until FILE holds every line "PREFIX-i" for i in 1 .. N. */
static void wait_lines(const char *file, const char *prefix, int n)
{
    for (int t = 0; t < 1200; t++) {
        char *s = file_text(file);
        int all = 1;
        for (int i = 1; i <= n && all; i++) {
            char want[64];
            value_of(want, sizeof want, prefix, i);
            strcat(want, "\n");
            all = strstr(s, want) != NULL;
        }
        free(s);
        if (all)
            return;
        hosts_alive();
        sleep_ms(50);
    }
    cr_assert_fail("%s did not get every %s-N up to %d in 60 s", file, prefix, n);
}

Test(redis, a_restarted_server_is_reconnected_to_nothing_lost)
{
    server_start(0);
    add_entries("in", "r", 1, 2000);
    char out[4200], rest[4400];
    snprintf(out, sizeof out, "%s/out.txt", test_dir());
    snprintf(rest, sizeof rest, "[pipeline]\noutput = %s\n", out);
    char *ini = pipeline("", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    /* The data survives (SHUTDOWN SAVE, then the same folder); the source
     * sees its connection closed while it waits in XREADGROUP. */
    server_stop(1);
    sleep_ms(300);
    server_run();
    add_entries("in", "r", 2001, 3000);
    wait_lines(out, "r", 3000);
    host_stop(&r);
    char want[512];
    snprintf(want, sizeof want, "conveyor-host: src: warning: stream 'in': lost the connection to "
                                "%s (", url());
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    snprintf(want, sizeof want, "); reconnecting\n");
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    snprintf(want, sizeof want, "conveyor-host: src: warning: stream 'in': connected to %s again "
                                "after ", url());
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    cr_assert(strstr(r.err, " s; re-reading this consumer's pending entries\n"), "stderr: %s",
              r.err);
    free(ini);
    host_run_free(&r);
}

/* The entries of STREAM as (value of FIELD, value of original_id) checks:
 * whether STREAM has an entry with data = VALUE. */
static redisReply *dead_entry(const char *value)
{
    redisReply *r = cmd("XRANGE dead - +");
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2)
            if (strcmp(f->element[j]->str, "data") == 0 && strcmp(f->element[j + 1]->str, value) == 0) {
                redisReply *copy = cmd("XRANGE dead %s %s", r->element[i]->element[0]->str,
                                       r->element[i]->element[0]->str);
                freeReplyObject(r);
                return copy;
            }
    }
    freeReplyObject(r);
    return NULL;
}

/* The field NAME of the one entry in R (an XRANGE reply), or NULL. */
static const char *field_of(redisReply *r, const char *name)
{
    redisReply *f = r->element[0]->element[1];
    for (size_t j = 0; j + 1 < f->elements; j += 2)
        if (strcmp(f->element[j]->str, name) == 0)
            return f->element[j + 1]->str;
    return NULL;
}

/* A poison entry makes a stage crash every time: the first run stops; a
 * second run moves what was delivered too often to the dead stream. */
/* Run 1 reads a1..a5 (finished, and acknowledged once the completion
 * watermark passes them), then the poison entry, which crashes stage f
 * every time: the run stops.  b1..b5 are added after it, so run 2 reads
 * them for the first time, beside the poison's second delivery.  (Entries
 * emitted with the poison, in one completion interval, would be delivered
 * again too: scaling-out.md, "Poison entries".) */
static void poison_runs(char **first_out, char **second_out, host_run *second, char **poison_id)
{
    add_entries("in", "a", 1, 5);
    char out[4200], rest[4600];
    snprintf(out, sizeof out, "%s/out.txt", test_dir());
    snprintf(rest, sizeof rest, "[pipeline]\ntransport = ring\noutput = %s\n[f]\nplugin = testplug:crash_on\n"
                                "item = poison\nrestart = on-failure\nmax_restarts = 2\n", out);
    char *ini = pipeline("consumer = c1\nmax_deliveries = 1\ndead_stream = dead\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    sleep_ms(300);      /* a completion marker after the a's, alone */
    freeReplyObject(cmd("XADD in * data poison note bad"));
    *poison_id = last_id("in");
    host_end(&r, 60);
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "stage 'f' was killed by SIGSEGV"), "stderr: %s", r.err);
    host_run_free(&r);
    *first_out = file_text(out);    /* run 2 writes the file anew */
    add_entries("in", "b", 1, 5);

    host_begin(second, "p2.ini", ini);
    for (int i = 0; i < 1200 && !cmd_int("EXISTS dead"); i++)
        sleep_ms(50);
    wait_all_delivered("in", "g");
    sleep_ms(500);
    host_stop(second);
    *second_out = file_text(out);
    free(ini);
}

Test(redis, an_entry_delivered_too_often_goes_to_the_dead_stream)
{
    server_start(0);
    host_run r;
    char *first, *out, *poison_id;
    poison_runs(&first, &out, &r, &poison_id);
    redisReply *d = dead_entry("poison");
    cr_assert(d, "no poison in the dead stream; stderr: %s", r.err);
    cr_assert_str_eq(field_of(d, "note"), "bad");
    cr_assert_str_eq(field_of(d, "original_id"), poison_id);
    cr_assert_str_eq(field_of(d, "original_stream"), "in");
    cr_assert_str_eq(field_of(d, "deliveries"), "2");
    char want[256];
    snprintf(want, sizeof want, "conveyor-host: src: warning: stream 'in': entry %s was delivered "
                                "2 times (max_deliveries = 1); moved to dead_stream 'dead'\n",
             poison_id);
    cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    cr_assert_null(strstr(out, "poison"));
    /* Every other entry is in the output or in the dead stream. */
    for (int i = 1; i <= 5; i++)
        for (const char *p = "a"; p; p = *p == 'a' ? "b" : NULL) {
            char v[64], line[70];
            value_of(v, sizeof v, p, i);
            snprintf(line, sizeof line, "%s\n", v);
            redisReply *e = dead_entry(v);
            cr_assert(strstr(first, line) || strstr(out, line) || e, "%s is lost", v);
            if (e)
                freeReplyObject(e);
        }
    /* The dead entry is acknowledged: not pending any more. */
    redisReply *p = cmd("XPENDING in g %s %s 1", poison_id, poison_id);
    cr_assert_eq(p->elements, 0);
    freeReplyObject(p);
    freeReplyObject(d);
    free(first);
    free(out);
    free(poison_id);
    host_run_free(&r);
}

Test(redis, an_entry_without_the_field_is_skipped_with_a_warning)
{
    server_start(0);
    add_entries("in", "f", 1, 2);
    freeReplyObject(cmd("XADD in * other x"));
    char *id = last_id("in");
    add_entries("in", "f", 3, 4);
    char out[4200], rest[4400];
    snprintf(out, sizeof out, "%s/out.txt", test_dir());
    snprintf(rest, sizeof rest, "[pipeline]\noutput = %s\n", out);
    char *ini = pipeline("", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_lines(out, "f", 4);
    host_stop(&r);
    char *text = file_text(out);
    cr_assert_str_eq(text, "f-00001\nf-00002\nf-00003\nf-00004\n");
    char *msgs = messages_of(r.err), want[512];
    snprintf(want, sizeof want, "conveyor-host: src: warning: stream 'in': entry %s has no field "
                                "'data'; acknowledged and skipped\n", id);
    cr_assert(strncmp(msgs, want, strlen(want)) == 0, "stderr: %s", r.err);
    redisReply *p = cmd("XPENDING in g %s %s 1", id, id);
    cr_assert_eq(p->elements, 0);
    freeReplyObject(p);
    free(msgs);
    free(text);
    free(id);
    free(ini);
    host_run_free(&r);
}

Test(redis, an_error_reply_to_xadd_fails_the_item)
{
    server_start(0);
    freeReplyObject(cmd("SET out notastream"));
    char ini[512];
    snprintf(ini, sizeof ini, "[w]\nplugin = redis:write\nurl = %s\nstream = out\nbatch = 1\n",
             url());
    host_run r;
    run_text(&r, ini, "x\ny\n");
    cr_assert_eq(r.status, 1, "status %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "conveyor-host: w: error: stream 'out': XADD of item 1 failed: "
                            "WRONGTYPE Operation against a key holding the wrong kind of value\n"),
              "stderr: %s", r.err);
    host_run_free(&r);
}

Test(redis, error_replies_in_a_batch_are_each_named)
{
    server_start(0);
    freeReplyObject(cmd("SET out notastream"));
    char ini[512];
    snprintf(ini, sizeof ini, "[w]\nplugin = redis:write\nurl = %s\nstream = out\nbatch = 3\n"
                              "on_error = skip\n", url());
    host_run r;
    run_text(&r, ini, "x\ny\nz\n");
    for (int i = 1; i <= 3; i++) {
        char want[256];
        snprintf(want, sizeof want, "stream 'out': XADD of item %d failed: WRONGTYPE", i);
        cr_assert(strstr(r.err, want), "stderr: %s", r.err);
    }
    cr_assert(strstr(r.err, "w: 3 in, 0 out, 1 failed"), "stderr: %s", r.err);
    host_run_free(&r);
}

Test(redis, write_with_maxlen_trims_the_stream)
{
    server_start(0);
    char ini[512];
    snprintf(ini, sizeof ini, "[w]\nplugin = redis:write\nurl = %s\nstream = out\nmaxlen = 10\n"
                              "field = line\n", url());
    char *in = malloc(5000 * 8);
    in[0] = '\0';
    for (int i = 1; i <= 5000; i++)
        sprintf(in + strlen(in), "%d\n", i);
    host_run r;
    run_text(&r, ini, in);
    cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
    long long n = cmd_int("XLEN out");
    /* MAXLEN ~ trims whole macro nodes: about 10, never all 5000. */
    cr_assert(n >= 10 && n < 5000, "XLEN %lld", n);
    values v = stream_values("out", "line");
    cr_assert_str_eq(v.v[v.n - 1], "5000");
    values_free(&v);
    free(in);
    host_run_free(&r);
}

Test(redis, entries_idle_with_a_dead_consumer_are_claimed)
{
    server_start(0);
    add_entries("in", "cl", 1, 1000);
    /* A consumer that read everything and died. */
    freeReplyObject(cmd("XGROUP CREATE in g 0"));
    freeReplyObject(cmd("XREADGROUP GROUP g gone COUNT 1000 STREAMS in >"));
    /* Idle long enough to be claimed at once, before the new consumer
     * has read its own pending entries (none). */
    sleep_ms(700);
    char rest[512];
    snprintf(rest, sizeof rest, "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *ini = pipeline("consumer = alive\nclaim_idle = 500ms\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    for (int i = 0; i < 1200; i++) {
        redisReply *p = cmd("XPENDING in g - + 1 gone");
        size_t left = p->elements;
        freeReplyObject(p);
        if (!left)
            break;
        sleep_ms(50);
    }
    /* Claimed once each, and never this consumer's own entries again
     * (they stay pending until the pipeline has finished them). */
    sleep_ms(1500);
    host_stop(&r);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 1000, "%zu entries in out", out.n);
    for (int i = 1; i <= 1000; i++) {
        char want[64];
        value_of(want, sizeof want, "cl", i);
        cr_assert_eq(count_of(&out, want), 1, "%s is there %d times", want, count_of(&out, want));
    }
    values_free(&out);
    free(ini);
    host_run_free(&r);
}

/* --- acknowledgements: they need the completion watermark --------------------- */

TestSuite(redis_ack, .fini = teardown, .timeout = 180);

Test(redis_ack, everything_finished_is_acknowledged)
{
    server_start(0);
    add_entries("in", "ack", 1, 5000);
    char rest[512];
    snprintf(rest, sizeof rest, "[up]\nplugin = text:upper\n"
                                "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *ini = pipeline("", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    wait_xlen("out", 5000);
    /* The watermark moves at least every 100 ms and acknowledgements
     * follow it: XPENDING empties while the host runs. */
    long long pending = -1;
    for (int i = 0; i < 400; i++) {
        redisReply *p = cmd("XPENDING in g");
        pending = p->element[0]->integer;
        freeReplyObject(p);
        if (pending == 0)
            break;
        sleep_ms(50);
    }
    cr_assert_eq(pending, 0);
    host_stop(&r);
    assert_quiet_stop(&r);
    free(ini);
    host_run_free(&r);
}

Test(redis_ack, a_second_host_reads_only_what_was_not_finished)
{
    server_start(0);
    add_entries("in", "once", 1, 3000);
    char rest[512];
    snprintf(rest, sizeof rest, "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *ini = pipeline("consumer = c1\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_all_delivered("in", "g");
    wait_xlen("out", 3000);
    long long pending = -1;
    for (int i = 0; i < 400 && pending != 0; i++) {
        redisReply *p = cmd("XPENDING in g");
        pending = p->element[0]->integer;
        freeReplyObject(p);
        sleep_ms(50);
    }
    cr_assert_eq(pending, 0);
    host_stop(&r);
    host_run_free(&r);
    /* Everything was finished and acknowledged: a second host with the
     * same name has nothing pending to read again, and writes nothing. */
    host_begin(&r, "p2.ini", ini);
    sleep_ms(1000);
    host_stop(&r);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 3000, "%zu entries in out", out.n);
    values_free(&out);
    redisReply *p = cmd("XPENDING in g");
    cr_assert_eq(p->element[0]->integer, 0);
    freeReplyObject(p);
    free(ini);
    host_run_free(&r);
}

Test(redis_ack, only_the_poison_entry_goes_to_the_dead_stream)
{
    server_start(0);
    host_run r;
    char *first, *out, *poison_id;
    poison_runs(&first, &out, &r, &poison_id);
    cr_assert_eq(cmd_int("XLEN dead"), 1);
    redisReply *d = dead_entry("poison");
    cr_assert(d);
    cr_assert_str_eq(field_of(d, "original_id"), poison_id);
    /* What the first run finished is not read again: the second run
     * writes exactly the entries after the poison. */
    cr_assert_str_eq(out, "b-00001\nb-00002\nb-00003\nb-00004\nb-00005\n");
    redisReply *p = cmd("XPENDING in g");
    cr_assert_eq(p->element[0]->integer, 0);
    freeReplyObject(p);
    freeReplyObject(d);
    free(first);
    free(out);
    free(poison_id);
    host_run_free(&r);
}

Test(redis_ack, claimed_entries_of_a_dead_consumer_are_finished_by_another)
{
    server_start(0);
    add_entries("in", "cl", 1, 1000);
    /* A consumer that read everything and died. */
    freeReplyObject(cmd("XGROUP CREATE in g 0"));
    freeReplyObject(cmd("XREADGROUP GROUP g gone COUNT 1000 STREAMS in >"));
    char rest[512];
    snprintf(rest, sizeof rest, "[w]\nplugin = redis:write\nurl = %s\nstream = out\n", url());
    char *ini = pipeline("consumer = alive\nclaim_idle = 500ms\n", rest);
    host_run r;
    host_begin(&r, "p.ini", ini);
    wait_xlen("out", 1000);
    long long pending = -1;
    for (int i = 0; i < 400 && pending != 0; i++) {
        redisReply *p = cmd("XPENDING in g");
        pending = p->element[0]->integer;
        freeReplyObject(p);
        sleep_ms(50);
    }
    cr_assert_eq(pending, 0);
    host_stop(&r);
    values out = stream_values("out", "data");
    cr_assert_eq(out.n, 1000);
    values_free(&out);
    free(ini);
    host_run_free(&r);
}

/* Entries read beside a poison entry, in one completion step: redelivered
 * entries are marked apart (conveyor_mark), so the innocent ones complete
 * and are acknowledged in the second run, and with max_deliveries = 2 only
 * the poison entry reaches the dead stream, in the third.  (Entries queued
 * behind the poison in the stage it crashes are never reached while it
 * does: they are added for the third run.) */
Test(redis_ack, entries_read_beside_a_poison_entry_are_not_set_aside)
{
    server_start(0);
    add_entries("in", "a", 1, 3);
    freeReplyObject(cmd("XADD in * data poison"));
    char *poison_id = last_id("in");
    char out[4200], rest[4600], *outs[3];
    snprintf(out, sizeof out, "%s/out.txt", test_dir());
    snprintf(rest, sizeof rest, "[pipeline]\ntransport = ring\noutput = %s\n[f]\n"
                                "plugin = testplug:crash_on\nitem = poison\nrestart = on-failure\n",
             out);
    char *ini = pipeline("consumer = c1\nmax_deliveries = 2\ndead_stream = dead\n", rest);
    host_run r;
    for (int run = 0; run < 2; run++) {     /* the poison stops both */
        host_begin(&r, run ? "p2.ini" : "p1.ini", ini);
        host_end(&r, 60);
        cr_assert_eq(r.status, 1, "run %d: status %d, stderr: %s", run + 1, r.status, r.err);
        host_run_free(&r);
        outs[run] = file_text(out);
    }
    add_entries("in", "b", 1, 3);
    host_begin(&r, "p3.ini", ini);
    for (int i = 0; i < 1200 && !cmd_int("EXISTS dead"); i++)
        sleep_ms(50);
    wait_all_delivered("in", "g");
    sleep_ms(500);
    host_stop(&r);
    outs[2] = file_text(out);
    cr_assert_eq(cmd_int("XLEN dead"), 1, "run 3 stderr: %s", r.err);
    redisReply *d = dead_entry("poison");
    cr_assert(d);
    cr_assert_str_eq(field_of(d, "original_id"), poison_id);
    freeReplyObject(d);
    for (int i = 1; i <= 3; i++)
        for (const char *p = "a"; p; p = *p == 'a' ? "b" : NULL) {
            char v[64], line[70];
            value_of(v, sizeof v, p, i);
            snprintf(line, sizeof line, "%s\n", v);
            cr_assert(strstr(outs[0], line) || strstr(outs[1], line) || strstr(outs[2], line),
                      "%s is lost", v);
        }
    redisReply *p = cmd("XPENDING in g");
    cr_assert_eq(p->element[0]->integer, 0);
    freeReplyObject(p);
    for (int i = 0; i < 3; i++)
        free(outs[i]);
    free(poison_id);
    free(ini);
    host_run_free(&r);
}
