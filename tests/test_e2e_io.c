/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_io.c - the run's own edges: standard descriptors that are closed
 * or non-blocking when conveyor-host starts, and the input and output files
 * the user gave (never destroyed: not the same file, not truncated by a run
 * that is refused).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Runs SCRIPT with /bin/sh, $H set to the host and $D to the test's
 * folder: the redirections are the point of these tests, and the shell
 * does them exactly as a user's would.  Returns the exit status. */
static int sh(const char *script)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("H", host_binary(), 1);
        setenv("D", test_dir(), 1);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "the shell was killed: %d", status);
    return WEXITSTATUS(status);
}

static char *path_in_dir(const char *name)
{
    size_t n = strlen(test_dir()) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", test_dir(), name);
    return p;
}

static void expect_file(const char *name, const char *want)
{
    char *path = path_in_dir(name);
    char *got = read_file(path, NULL);
    cr_assert_not_null(got, "%s is missing", path);
    cr_assert_str_eq(got, want, "%s", path);
    free(got);
    free(path);
}

/* Closed stderr: the output file must not become descriptor 2, or every
 * warning would land inside it. */
Test(io, closed_stderr_keeps_warnings_out_of_the_output_file, .timeout = 20)
{
    write_file("in.txt", "a\nb\nc\nd\n");
    write_file("p.ini", "[pipeline]\noutput = out.txt\n"
                        "[f]\nplugin = testplug:fail\nat = 2\non_error = skip\n");
    int rc = sh("exec \"$H\" -c \"$D/p.ini\" < \"$D/in.txt\" 2>&-");
    cr_assert_eq(rc, 0);
    expect_file("out.txt", "a\nc\nd\n");
}

/* Closed stdout with output = -: refused, not written to /dev/null. */
Test(io, closed_stdout_with_output_dash_is_refused, .timeout = 20)
{
    write_file("p.ini", "[a]\nplugin = text:identity\n");
    int rc = sh("echo x | \"$H\" -c \"$D/p.ini\" >&- 2>\"$D/err.txt\"");
    cr_assert_eq(rc, 2);
    char *ini = path_in_dir("p.ini");
    char want[512];
    snprintf(want, sizeof want, "conveyor-host: error: %s: output = - but standard output is "
             "closed; give output = PATH\n", ini);
    expect_file("err.txt", want);
    free(ini);
}

/* Closed stdout with the output in a file: a channel must not take
 * descriptor 1, which every stage points at its stderr. */
Test(io, closed_stdout_with_output_file_runs, .timeout = 20)
{
    write_file("in.txt", "1\n2\n3\n");
    write_file("p.ini", "[pipeline]\noutput = out.txt\n"
                        "[a]\nplugin = text:identity\n[b]\nplugin = text:upper\n"
                        "[c]\nplugin = text:identity\n");
    int rc = sh("exec \"$H\" -c \"$D/p.ini\" < \"$D/in.txt\" >&-");
    cr_assert_eq(rc, 0);
    expect_file("out.txt", "1\n2\n3\n");
}

Test(io, closed_stdin_with_input_dash_is_refused, .timeout = 20)
{
    write_file("p.ini", "[a]\nplugin = text:identity\n");
    int rc = sh("exec \"$H\" -c \"$D/p.ini\" <&- 2>\"$D/err.txt\"");
    cr_assert_eq(rc, 2);
    char *err = read_file(path_in_dir("err.txt"), NULL);
    cr_assert(strstr(err, "input = - but standard input is closed; give input = PATH"), "%s", err);
    free(err);
}

/* An inherited O_NONBLOCK on stdout: the writer waits for room instead of
 * failing with EAGAIN once the pipe is full. */
Test(io, nonblocking_stdout_is_waited_for, .timeout = 30)
{
    enum { LINES = 100000 };
    char *text = malloc(LINES * 8);
    size_t len = 0;
    for (int i = 0; i < LINES; i++)
        len += (size_t)sprintf(text + len, "%06d\n", i);
    write_bytes("in.txt", text, len);
    char *ini = write_file("p.ini", "[pipeline]\ninput = in.txt\n[a]\nplugin = text:identity\n");

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(host_binary(), "conveyor-host", "-c", ini, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* Let the host fill the pipe before anything is read. */
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    char *got = malloc(len + 1);
    size_t have = 0;
    ssize_t n;
    while ((n = read(fds[0], got + have, len + 1 - have)) > 0)
        have += (size_t)n;
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    cr_assert_eq(have, len);
    cr_assert(memcmp(got, text, len) == 0);
    free(got);
    free(text);
    free(ini);
}

/* --- the user's files ------------------------------------------------------ */

static void check_same_file(const char *ini_text, const char *script, const char *name_in_msg)
{
    write_file("data.txt", "precious\nlines\n");
    write_file("p.ini", ini_text);
    int rc = sh(script);
    cr_assert_eq(rc, 2);
    expect_file("data.txt", "precious\nlines\n");
    char *err = read_file(path_in_dir("err.txt"), NULL);
    cr_assert(strstr(err, "are the same file; the run would destroy it"), "%s", err);
    cr_assert(strstr(err, name_in_msg), "%s", err);
    free(err);
}

Test(io, input_and_output_the_same_file_is_refused, .timeout = 20)
{
    check_same_file("[pipeline]\ninput = data.txt\noutput = data.txt\n[a]\nplugin = text:upper\n",
                    "exec \"$H\" -c \"$D/p.ini\" 2>\"$D/err.txt\"", "data.txt");
}

Test(io, input_and_output_the_same_file_through_a_link_is_refused, .timeout = 20)
{
    char *data = path_in_dir("data.txt"), *link = path_in_dir("link.txt");
    write_file("data.txt", "precious\nlines\n");
    unlink(link);
    cr_assert_eq(symlink(data, link), 0);
    check_same_file("[pipeline]\ninput = data.txt\noutput = link.txt\n[a]\nplugin = text:upper\n",
                    "exec \"$H\" -c \"$D/p.ini\" 2>\"$D/err.txt\"", "link.txt");
    free(data);
    free(link);
}

Test(io, stdin_redirected_from_the_output_file_is_refused, .timeout = 20)
{
    check_same_file("[pipeline]\noutput = data.txt\n[a]\nplugin = text:upper\n",
                    "exec \"$H\" -c \"$D/p.ini\" < \"$D/data.txt\" 2>\"$D/err.txt\"",
                    "standard input");
}

/* A run refused after the configuration was read (here: the dataset is
 * missing) leaves the output file as it was. */
Test(io, refused_run_does_not_truncate_the_output, .timeout = 20)
{
    write_file("out.txt", "keep\n");
    write_file("p.ini", "[pipeline]\noutput = out.txt\nshared_memory_file = missing.bin\n"
                        "[a]\nplugin = text:identity\n");
    int rc = sh("echo x | \"$H\" -c \"$D/p.ini\" 2>\"$D/err.txt\"");
    cr_assert_eq(rc, 2);
    expect_file("out.txt", "keep\n");
    char *err = read_file(path_in_dir("err.txt"), NULL);
    cr_assert(strstr(err, "missing.bin"), "%s", err);
    free(err);
}
