/* SPDX-License-Identifier: MIT */
/*
 * statefile: atomic replace, modes, failure paths, stale temp cleanup,
 * size-capped reads, operator messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "statefile.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

struct fixture {
  char *dir;
  char *path; /* dir/state.json */
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->dir = testutil_mkdtemp();
  assert_non_null(f->dir);
  f->path = testutil_join(f->dir, "state.json");
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;

  testutil_rmdir(f->dir);
  free(f->dir);
  free(f->path);
  free(f);
  return 0;
}

static void assert_content(const char *path, const char *want)
{
  char *buf = NULL;
  size_t len = 0;

  assert_int_equal(statefile_read(path, 1 << 20, &buf, &len), 0);
  assert_int_equal(len, strlen(want));
  assert_string_equal(buf, want);
  free(buf);
}

static void test_mode_ignores_umask(void **state)
{
  struct fixture *f = *state;
  mode_t old = umask(022);

  assert_int_equal(statefile_write_atomic(f->path, "a", 1, 0600), 0);
  assert_int_equal(testutil_mode(f->path), 0600);
  umask(077); /* as under the unit's UMask=0077 */
  assert_int_equal(statefile_write_atomic(f->path, "bb", 2, 0644), 0);
  assert_int_equal(testutil_mode(f->path), 0644);
  umask(old);
  assert_content(f->path, "bb");
}

static void test_replace_leaves_no_temp(void **state)
{
  struct fixture *f = *state;

  for (int i = 0; i < 5; i++) {
    char text[32];

    snprintf(text, sizeof(text), "version %d", i);
    assert_int_equal(statefile_write_atomic(f->path, text, strlen(text), 0600),
                     0);
    assert_content(f->path, text);
  }
  assert_int_equal(testutil_count(f->dir, ".state.json."), 0);
  assert_int_equal(testutil_count(f->dir, ""), 3); /* ., .., state.json */
}

static void test_empty_file(void **state)
{
  struct fixture *f = *state;

  assert_int_equal(statefile_write_atomic(f->path, NULL, 0, 0600), 0);
  assert_content(f->path, "");
}

/* The rename fails (target is a non-empty directory): the temp file goes
 * and the target is untouched. */
static void test_failed_rename_cleans_up(void **state)
{
  struct fixture *f = *state;
  char *sub = testutil_join(f->dir, "sub");
  char *inner = testutil_join(sub, "keep");

  assert_int_equal(mkdir(sub, 0700), 0);
  assert_int_equal(statefile_write_atomic(inner, "x", 1, 0600), 0);
  assert_int_equal(statefile_write_atomic(sub, "y", 1, 0600), -EISDIR);
  assert_int_equal(testutil_count(f->dir, ".sub."), 0);
  assert_content(inner, "x");
  unlink(inner);
  rmdir(sub);
  free(inner);
  free(sub);
}

static void test_missing_directory(void **state)
{
  struct fixture *f = *state;
  char *path = testutil_join(f->dir, "nope/state.json");
  char msg[512];
  int rc = statefile_write_atomic(path, "x", 1, 0600);

  assert_int_equal(rc, -ENOENT);
  statefile_strerror(rc, "write", path, msg, sizeof(msg));
  assert_non_null(strstr(msg, path));
  assert_non_null(strstr(msg, "does not exist"));
  free(path);
}

/* The state directory is made private on first use, an existing one is
 * fine, a missing parent is an error (not created). */
static void test_mkdir(void **state)
{
  struct fixture *f = *state;
  char *sub = testutil_join(f->dir, "state");
  char *deep = testutil_join(f->dir, "no/state");
  mode_t old = umask(022);

  assert_int_equal(statefile_mkdir(sub), 0);
  assert_int_equal(testutil_mode(sub), 0700);
  assert_int_equal(statefile_mkdir(sub), 0);
  assert_int_equal(statefile_mkdir(deep), -ENOENT);
  umask(old);
  assert_int_equal(rmdir(sub), 0);
  free(sub);
  free(deep);
}

static void make_file(const char *dir, const char *name)
{
  char *p = testutil_join(dir, name);
  int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0600);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, "partial", 7), 7);
  close(fd);
  free(p);
}

static bool exists(const char *dir, const char *name)
{
  char *p = testutil_join(dir, name);
  bool yes = access(p, F_OK) == 0;

  free(p);
  return yes;
}

/* A killed writer's temp file (no lock) goes; a live writer's (locked)
 * stays; other files are never touched. */
static void test_stale_temps_removed(void **state)
{
  struct fixture *f = *state;
  char *live = testutil_join(f->dir, ".state.json.LiVe01");
  int fd;

  make_file(f->dir, ".state.json.dead01");
  make_file(f->dir, ".state.json.dead02");
  make_file(f->dir, ".state.json.toolong7");
  make_file(f->dir, ".other.json.dead03");
  make_file(f->dir, "state.json.dead04");
  make_file(f->dir, ".state.json.LiVe01");
  fd = open(live, O_RDONLY);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);

  assert_int_equal(statefile_write_atomic(f->path, "new", 3, 0600), 0);
  assert_false(exists(f->dir, ".state.json.dead01"));
  assert_false(exists(f->dir, ".state.json.dead02"));
  assert_true(exists(f->dir, ".state.json.LiVe01"));
  assert_true(exists(f->dir, ".state.json.toolong7"));
  assert_true(exists(f->dir, ".other.json.dead03"));
  assert_true(exists(f->dir, "state.json.dead04"));

  close(fd); /* the "writer" died: next write removes its file */
  assert_int_equal(statefile_write_atomic(f->path, "newer", 5, 0600), 0);
  assert_false(exists(f->dir, ".state.json.LiVe01"));
  assert_content(f->path, "newer");
  free(live);
}

static void test_read_limits(void **state)
{
  struct fixture *f = *state;
  char big[100];
  char *buf = NULL;
  size_t len = 0;

  memset(big, 'z', sizeof(big));
  assert_int_equal(statefile_write_atomic(f->path, big, sizeof(big), 0600), 0);
  assert_int_equal(statefile_read(f->path, 99, &buf, &len), -EFBIG);
  assert_null(buf);
  assert_int_equal(statefile_read(f->path, 100, &buf, &len), 0);
  assert_int_equal(len, 100);
  assert_int_equal(buf[100], '\0');
  free(buf);
  buf = NULL;
  assert_int_equal(statefile_read(f->dir, 100, &buf, &len), -EISDIR);
  unlink(f->path);
  assert_int_equal(statefile_read(f->path, 100, &buf, &len), -ENOENT);
  assert_null(buf);
}

static void test_read_messages(void **state)
{
  char msg[256];

  (void)state;
  statefile_strerror(-EBADMSG, "read", "/s/status.json", msg, sizeof(msg));
  assert_string_equal(msg, "/s/status.json is truncated or corrupt (not a "
                           "valid certbind state file)");
  statefile_strerror(-ENOENT, "read", "/s/status.json", msg, sizeof(msg));
  assert_string_equal(msg, "/s/status.json does not exist");
  statefile_strerror(-EACCES, "write", "/s/status.json", msg, sizeof(msg));
  assert_string_equal(msg, "cannot write /s/status.json: directory /s is not "
                           "writable (Permission denied)");
  statefile_strerror(-ENOSPC, "write", "rel.json", msg, sizeof(msg));
  assert_non_null(strstr(msg, "no space left in ."));
  statefile_strerror(-EIO, "write", "/a/b", msg, 8); /* truncated safely */
  assert_int_equal(strlen(msg), 7);
}

/* CERTBIND_TEST_TIME_SCALE (10 under valgrind) stretches the bound. */
static long time_scale(void)
{
  const char *s = getenv("CERTBIND_TEST_TIME_SCALE");
  long v = s ? strtol(s, NULL, 10) : 1;

  return v > 0 ? v : 1;
}

/* statefile_read(path) in a child: its rc (as a positive errno), or -1
 * when it was still blocked after a bound no working read comes near (it
 * is then killed). The child is how a test survives the hang it checks. */
static int read_in_child(const char *path)
{
  long waited_ms = 0, bound_ms = 10000 * time_scale();
  int status = 0;
  pid_t pid = fork();

  assert_true(pid >= 0);
  if (pid == 0) {
    char *buf = NULL;
    size_t len = 0;
    int rc = statefile_read(path, 1 << 20, &buf, &len);

    free(buf);
    _exit(rc < 0 ? -rc : 0);
  }
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (waited_ms >= bound_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    waited_ms += 10;
  }
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void assert_message(int rc, const char *op, const char *path,
                           const char *kind)
{
  char msg[512], want[512];

  statefile_strerror(rc, op, path, msg, sizeof(msg));
  if (strcmp(op, "write") == 0)
    snprintf(want, sizeof(want),
             "cannot write %s: it is not a regular file (%s); only a regular "
             "file is replaced, remove it",
             path, kind);
  else
    snprintf(want, sizeof(want), "%s is not a regular file (%s)", path, kind);
  assert_string_equal(msg, want);
}

static int gen_hello(struct statefile_buf *b, void *arg)
{
  (void)arg;
  statefile_buf_print(b, "hello", 5);
  return 0;
}

/* The FIFO is left as it was: not replaced, no temp file beside it. */
static void assert_fifo_intact(const struct fixture *f)
{
  struct stat st;

  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISFIFO(st.st_mode));
  assert_int_equal(testutil_count(f->dir, ".state.json."), 0);
}

/* A FIFO as a state file: reading it returns at once (an open for reading
 * would wait for a writer forever: plan, apply, status and the daemon's
 * start hung), and a write refuses to rename over it. Both errors say
 * what is there. */
static void test_fifo_refused_without_blocking(void **state)
{
  struct fixture *f = *state;
  int rc;

  assert_int_equal(mkfifo(f->path, 0600), 0);
  rc = read_in_child(f->path);
  if (rc < 0)
    fail_msg("statefile_read(%s) was still blocked on a FIFO after %ld s",
             f->path, 10 * time_scale());
  assert_int_equal(rc, EINVAL);
  assert_message(-rc, "read", f->path, "a FIFO");

  rc = statefile_write_atomic(f->path, "x", 1, 0600);
  assert_int_equal(rc, -EINVAL);
  assert_message(rc, "write", f->path, "a FIFO");
  assert_fifo_intact(f);
  assert_int_equal(statefile_write_atomic_gen(f->path, 0600, gen_hello, NULL),
                   -EINVAL);
  assert_fifo_intact(f);
}

/* A device (through a symlink: a symlink counts as what it points to), a
 * socket and a directory are refused the same way; the symlink and the
 * socket stay. */
static void test_other_irregular_files(void **state)
{
  struct fixture *f = *state;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  char *buf = NULL;
  size_t len = 0;
  struct stat st;
  int sock, rc;

  assert_int_equal(symlink("/dev/null", f->path), 0);
  rc = statefile_read(f->path, 100, &buf, &len);
  assert_int_equal(rc, -EINVAL);
  assert_message(rc, "read", f->path, "a character device");
  rc = statefile_write_atomic(f->path, "x", 1, 0600);
  assert_int_equal(rc, -EINVAL);
  assert_message(rc, "write", f->path, "a character device");
  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_int_equal(unlink(f->path), 0);

  sock = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(sock >= 0);
  assert_true(strlen(f->path) < sizeof(sa.sun_path));
  strcpy(sa.sun_path, f->path);
  assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
  rc = statefile_read(f->path, 100, &buf, &len);
  assert_int_equal(rc, -ENXIO);
  assert_message(rc, "read", f->path, "a socket");
  rc = statefile_write_atomic(f->path, "x", 1, 0600);
  assert_int_equal(rc, -EINVAL);
  assert_message(rc, "write", f->path, "a socket");
  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  close(sock);
  assert_int_equal(unlink(f->path), 0);

  assert_int_equal(mkdir(f->path, 0700), 0);
  rc = statefile_read(f->path, 100, &buf, &len);
  assert_int_equal(rc, -EISDIR);
  assert_message(rc, "read", f->path, "a directory");
  rc = statefile_write_atomic(f->path, "x", 1, 0600);
  assert_int_equal(rc, -EISDIR);
  assert_message(rc, "write", f->path, "a directory");
  assert_int_equal(rmdir(f->path), 0);
  assert_null(buf);

  /* a dangling symlink is nothing: replaced by the regular file */
  assert_int_equal(symlink("nowhere", f->path), 0);
  assert_int_equal(statefile_write_atomic(f->path, "ok", 2, 0600), 0);
  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_content(f->path, "ok");
}

/* A regular file that makes a parser fail with EINVAL is not called "not
 * a regular file": the message looks at what is there. */
static void test_einval_on_a_regular_file(void **state)
{
  struct fixture *f = *state;
  char msg[512];

  assert_int_equal(statefile_write_atomic(f->path, "x", 1, 0600), 0);
  statefile_strerror(-EINVAL, "read", f->path, msg, sizeof(msg));
  assert_null(strstr(msg, "not a regular file"));
  assert_non_null(strstr(msg, f->path));
  /* a directory given for an EINVAL (not EISDIR) is not blamed either */
  statefile_strerror(-EINVAL, "write", f->dir, msg, sizeof(msg));
  assert_null(strstr(msg, "not a regular file"));
}

static void test_bad_arguments(void **state)
{
  struct fixture *f = *state;
  char path[PATH_MAX];

  assert_int_equal(statefile_write_atomic(NULL, "x", 1, 0600), -EINVAL);
  assert_int_equal(statefile_write_atomic(f->path, NULL, 1, 0600), -EINVAL);
  assert_int_equal(statefile_write_atomic("/tmp/", "x", 1, 0600), -EINVAL);
  assert_int_equal(statefile_path(path, 8, "/var/lib/x", "y"), -ENAMETOOLONG);
  assert_int_equal(statefile_path(path, sizeof(path), "/d", "f"), 0);
  assert_string_equal(path, "/d/f");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mode_ignores_umask, setup, teardown),
      cmocka_unit_test_setup_teardown(test_replace_leaves_no_temp, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_rename_cleans_up, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mkdir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stale_temps_removed, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
      cmocka_unit_test(test_read_messages),
      cmocka_unit_test_setup_teardown(test_fifo_refused_without_blocking, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_other_irregular_files, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_einval_on_a_regular_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
