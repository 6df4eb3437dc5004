/* SPDX-License-Identifier: MIT */
/*
 * Crash safety of status.json: a writer process is SIGKILLed at
 * random moments, over and over; after every kill the file exists and is
 * one complete version. Temp files a kill leaves behind are removed by the
 * next successful write.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "status.h"
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define KILLS 120
#define MAX_DELAY_US 20000

/* Start the writer; returns its pid, *ready is the read end of its stdout. */
static pid_t start_writer(const char *dir, int *ready)
{
  int fds[2];
  pid_t pid;

  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (dup2(fds[1], STDOUT_FILENO) < 0)
      _exit(127);
    close(fds[1]);
    execl(STATUS_WRITER, STATUS_WRITER, dir, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  *ready = fds[0];
  return pid;
}

static void check_complete(const char *dir)
{
  struct status st;
  int rc = status_read(dir, &st);

  if (rc != 0)
    fail_msg("status.json unreadable after a kill: %s", strerror(-rc));
  /* version i has 150 + i % 100 bindings (status_writer.c) */
  assert_int_equal(st.nbindings, 150 + st.pass.requests % 100);
  status_free(&st);
}

static void kill_writer(pid_t pid)
{
  int wst;

  assert_int_equal(kill(pid, SIGKILL), 0);
  assert_int_equal(waitpid(pid, &wst, 0), pid);
  if (!WIFSIGNALED(wst))
    fail_msg("writer exited on its own (status %d)", wst);
}

/* Let one writer publish a first version, so that the file exists. */
static void first_version(const char *dir)
{
  char *path = testutil_join(dir, STATUS_FILE);
  int ready;
  char c;
  pid_t pid = start_writer(dir, &ready);

  assert_int_equal(read(ready, &c, 1), 1);
  close(ready);
  for (int i = 0; i < 5000 && access(path, F_OK) != 0; i++)
    usleep(1000);
  kill_writer(pid);
  check_complete(dir);
  free(path);
}

static void test_kill_loop(void **state)
{
  char *dir = testutil_mkdtemp();
  unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
  int left_temp = 0;

  (void)state;
  assert_non_null(dir);
  print_message("seed %u\n", seed);
  srand(seed);
  first_version(dir);
  for (int k = 0; k < KILLS; k++) {
    int ready;
    char c;
    pid_t pid = start_writer(dir, &ready);

    /* Kill at a random moment once the writer runs (not during exec). */
    assert_int_equal(read(ready, &c, 1), 1);
    close(ready);
    usleep((useconds_t)(rand() % (MAX_DELAY_US + 1)));
    kill_writer(pid);
    check_complete(dir);
    if (testutil_count(dir, ".status.json.") > 0)
      left_temp++;
  }
  print_message("%d of %d kills left a temp file behind\n", left_temp, KILLS);
  /* Some kills must have landed mid-write, or this test proved nothing. */
  assert_true(left_temp > 0);

  /* A clean write removes what the kills left. */
  {
    struct status st;

    assert_int_equal(status_read(dir, &st), 0);
    assert_int_equal(status_write(dir, &st), 0);
    status_free(&st);
  }
  assert_int_equal(testutil_count(dir, ".status.json."), 0);
  testutil_rmdir(dir);
  free(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill_loop),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
