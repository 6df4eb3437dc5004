/* SPDX-License-Identifier: MIT */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void test_env_setup(void)
{
  setenv("CB_TEST_TOKEN", T_TOKEN_VALUE, 1);
  setenv("CB_TEST_AK", T_AK_VALUE, 1);
  setenv("CB_TEST_SK", T_SK_VALUE, 1);
}

int t_load(const char *text, struct config *cfg, struct config_diag *diag)
{
  return config_load_buffer("t.yaml", text, strlen(text), cfg, diag);
}

void t_dump(const struct config_diag *diag)
{
  for (size_t i = 0; i < diag->count; i++)
    print_message("  diag: %s\n", diag->lines[i]);
}

int t_has(const struct config_diag *diag, unsigned line, unsigned col,
          const char *phrase)
{
  char prefix[64];

  snprintf(prefix, sizeof(prefix), "t.yaml:%u:%u: ", line, col);
  for (size_t i = 0; i < diag->count; i++)
    if (strncmp(diag->lines[i], prefix, strlen(prefix)) == 0 &&
        strstr(diag->lines[i], phrase) != NULL)
      return 1;
  return 0;
}

static void expect(const char *text, unsigned line, unsigned col,
                   const char *phrase, int only)
{
  struct config cfg;
  struct config_diag diag = {0};
  int rc = t_load(text, &cfg, &diag);

  if (rc != -EINVAL || !t_has(&diag, line, col, phrase) ||
      (only && diag.count != 1)) {
    print_message("expected %s%u:%u \"%s\", rc %d, got:\n",
                  only ? "exactly " : "", line, col, phrase, rc);
    t_dump(&diag);
  }
  assert_int_equal(rc, -EINVAL);
  assert_true(t_has(&diag, line, col, phrase));
  if (only)
    assert_int_equal(diag.count, 1);
  /* the fixtures' env secrets all end so: none may reach a message */
  for (size_t i = 0; i < diag.count; i++)
    assert_null(strstr(diag.lines[i], "must-not-leak"));
  /* a failed load leaves nothing to free */
  assert_null(cfg.accounts);
  assert_null(cfg.bindings);
  assert_null(cfg.path);
  config_diag_free(&diag);
}

void t_expect_one(const char *text, unsigned line, unsigned col,
                  const char *phrase)
{
  expect(text, line, col, phrase, 1);
}

void t_expect(const char *text, unsigned line, unsigned col, const char *phrase)
{
  expect(text, line, col, phrase, 0);
}

void t_expect_ok(const char *text, struct config *cfg)
{
  struct config_diag diag = {0};
  int rc = t_load(text, cfg, &diag);

  if (rc != 0)
    t_dump(&diag);
  assert_int_equal(rc, 0);
  assert_int_equal(diag.count, 0);
  config_diag_free(&diag);
}

char *t_fmt(const char *fmt, ...)
{
  char *s = NULL;
  va_list ap;

  va_start(ap, fmt);
  assert_true(vasprintf(&s, fmt, ap) >= 0);
  va_end(ap);
  return s;
}

char *t_secret_file(const char *content, size_t len, unsigned mode)
{
  char dir[] = "/tmp/cbtest-XXXXXX";
  char *path;
  int fd;

  assert_non_null(mkdtemp(dir));
  path = t_fmt("%s/secret-XXXXXX", dir);
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, content, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

void t_rm(char *path)
{
  char *copy = strdup(path);

  unlink(path);
  rmdir(dirname(copy));
  free(copy);
  free(path);
}
