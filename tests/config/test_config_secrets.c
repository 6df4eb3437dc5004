/* SPDX-License-Identifier: MIT */
/*
 * Secrets: file permissions and shape, env variables, and that no
 * diagnostic ever carries a secret's value. Files are made at run time.
 */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The secret (an aksk secret_key) is on line 8, its value node at col 19 */
#define DOC_FMT                                                                \
  "version: 1\n"                                                               \
  "accounts:\n"                                                                \
  "  a1:\n"                                                                    \
  "    region: r1\n"                                                           \
  "    project_id: 0123456789abcdef0123456789abcdef\n"                         \
  "    auth:\n"                                                                \
  "      method: aksk\n"                                                       \
  "      secret_key: %s\n"                                                     \
  "      access_key: {env: CB_TEST_AK}\n"                                      \
  "gateways: {}\ncertificates: {}\nbindings: []\npolicy: {mode: upsert}\n"

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

/* Load with secret_key given as spec; on success return the value. */
static int load_secret(const char *spec, struct config *cfg,
                       struct config_diag *d)
{
  char *doc = t_fmt(DOC_FMT, spec);
  int rc = t_load(doc, cfg, d);

  free(doc);
  return rc;
}

static void expect_file_error(const char *path, const char *why)
{
  struct config cfg;
  struct config_diag d = {0};
  char *spec = t_fmt("{file: \"%s\"}", path);
  char *phrase =
      t_fmt("accounts.a1.auth.secret_key: secret file \"%s\" %s", path, why);

  assert_int_equal(load_secret(spec, &cfg, &d), -EINVAL);
  if (!t_has(&d, 8, 26, phrase))
    t_dump(&d);
  assert_true(t_has(&d, 8, 26, phrase));
  assert_int_equal(d.count, 1);
  config_diag_free(&d);
  free(phrase);
  free(spec);
}

static void test_file_ok_and_newlines(void **state)
{
  static const struct {
    const char *content, *value;
  } cases[] = {
      {"s3cr3t\n", "s3cr3t"},
      {"s3cr3t\r\n", "s3cr3t"},
      {"s3cr3t", "s3cr3t"},
      {"with space=+/", "with space=+/"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct config cfg;
    struct config_diag d = {0};
    char *path =
        t_secret_file(cases[i].content, strlen(cases[i].content), 0600);
    char *spec = t_fmt("{ file: %s }", path);
    char *source = t_fmt("file %s", path);

    assert_int_equal(load_secret(spec, &cfg, &d), 0);
    assert_string_equal(cfg.accounts[0].secret_key.value, cases[i].value);
    assert_int_equal(cfg.accounts[0].secret_key.len, strlen(cases[i].value));
    assert_string_equal(cfg.accounts[0].secret_key.source, source);
    config_free(&cfg);
    free(source);
    free(spec);
    t_rm(path);
  }
}

static void test_file_permissions(void **state)
{
  static const unsigned bad[] = {0640, 0644, 0604, 0620, 0602, 0660, 0606};
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *path = t_secret_file("value\n", 6, bad[i]);
    char *why = t_fmt("is accessible by group or others (mode %04o)", bad[i]);
    expect_file_error(path, why);
    free(why);
    t_rm(path);
  }
  /* 0400 is fine too */
  char *path = t_secret_file("value\n", 6, 0400);
  char *spec = t_fmt("{file: %s}", path);
  struct config cfg;
  struct config_diag d = {0};
  assert_int_equal(load_secret(spec, &cfg, &d), 0);
  config_free(&cfg);
  free(spec);
  t_rm(path);
}

static void test_file_shapes(void **state)
{
  char dir[] = "/tmp/cbtest-dir-XXXXXX";
  char *path;

  (void)state;
  path = t_secret_file("", 0, 0600);
  expect_file_error(path, "is empty");
  t_rm(path);
  path = t_secret_file("\n", 1, 0600);
  expect_file_error(path, "is empty");
  t_rm(path);
  /* only one trailing newline is dropped; a second line is refused */
  path = t_secret_file("abc\n\n", 5, 0600);
  expect_file_error(path, "contains control characters");
  t_rm(path);
  path = t_secret_file("ab\0c", 4, 0600);
  expect_file_error(path, "contains control characters");
  t_rm(path);
  expect_file_error("/nonexistent/certbind/secret",
                    "cannot be opened: No such file or directory");
  assert_non_null(mkdtemp(dir));
  chmod(dir, 0700);
  expect_file_error(dir, "is not a regular file");
  rmdir(dir);
}

static void test_env(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  setenv("CB_TEST_SET", "env-value", 1);
  assert_int_equal(load_secret("{env: CB_TEST_SET}", &cfg, &d), 0);
  assert_string_equal(cfg.accounts[0].secret_key.value, "env-value");
  assert_string_equal(cfg.accounts[0].secret_key.source, "env CB_TEST_SET");
  config_free(&cfg);

  unsetenv("CB_TEST_UNSET");
  assert_int_equal(load_secret("{env: CB_TEST_UNSET}", &cfg, &d), -EINVAL);
  assert_true(
      t_has(&d, 8, 25, "environment variable CB_TEST_UNSET is not set"));
  config_diag_free(&d);

  setenv("CB_TEST_EMPTY", "", 1);
  assert_int_equal(load_secret("{env: CB_TEST_EMPTY}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 25, "environment variable CB_TEST_EMPTY is empty"));
  config_diag_free(&d);

  assert_int_equal(load_secret("{env: \"1BAD-NAME\"}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 25, "must be a variable name"));
  config_diag_free(&d);
}

static void test_secret_shape(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  /* inline secrets are refused, and not echoed */
  assert_int_equal(load_secret("inline-Secret-Value", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 19, "expected { file: PATH } or { env: NAME }"));
  assert_null(strstr(d.lines[0], "inline-Secret-Value"));
  config_diag_free(&d);
  assert_int_equal(load_secret("{env: CB_TEST_AK, file: /x}", &cfg, &d),
                   -EINVAL);
  assert_true(t_has(&d, 8, 37, "give exactly one of file and env"));
  config_diag_free(&d);
  assert_int_equal(load_secret("{}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 19, "missing file or env"));
  config_diag_free(&d);
  assert_int_equal(load_secret("{path: /x}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 20, "secret_key.path: unknown key"));
  config_diag_free(&d);
}

/* Whatever goes wrong, no diagnostic carries a secret value. */
static void test_no_secret_in_diagnostics(void **state)
{
  static const char value[] = "TOP-SECRET-0123456789";
  char *f0600 = t_secret_file("TOP-SECRET-0123456789\n", 22, 0600);
  char *f0644 = t_secret_file("TOP-SECRET-0123456789\n", 22, 0644);
  char *fctl = t_secret_file("TOP-SECRET-0123456789\nmore", 26, 0600);
  struct config cfg;
  struct config_diag d = {0};
  char *doc;

  (void)state;
  setenv("CB_TEST_LEAK", value, 1);
  doc = t_fmt("version: 1\n"
              "accounts:\n"
              "  a1:\n"
              "    region: r1\n"
              "    project_id: bad\n"
              "    auth:\n"
              "      method: password\n"
              "      user: u\n"
              "      domain: d\n"
              "      password: {file: %s}\n"
              "      token: {file: %s}\n"
              "  a2:\n"
              "    region: r1\n"
              "    project_id: 0123456789abcdef0123456789abcdef\n"
              "    auth:\n"
              "      method: aksk\n"
              "      access_key: {env: CB_TEST_LEAK}\n"
              "      secret_key: {file: %s}\n"
              "gateways: {}\ncertificates: {}\nbindings: []\n"
              "policy: {mode: nope}\n",
              f0600, f0644, fctl);
  assert_int_equal(t_load(doc, &cfg, &d), -EINVAL);
  assert_true(d.count >= 5);
  for (size_t i = 0; i < d.count; i++)
    assert_null(strstr(d.lines[i], "TOP-SECRET"));
  config_diag_free(&d);
  free(doc);
  t_rm(f0600);
  t_rm(f0644);
  t_rm(fctl);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_file_ok_and_newlines),
      cmocka_unit_test(test_file_permissions),
      cmocka_unit_test(test_file_shapes),
      cmocka_unit_test(test_env),
      cmocka_unit_test(test_secret_shape),
      cmocka_unit_test(test_no_secret_in_diagnostics),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
