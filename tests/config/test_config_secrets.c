/* SPDX-License-Identifier: MIT */
/*
 * Secrets: file permissions and shape, env variables, and that no
 * diagnostic ever carries a secret's value. Files are made at run time.
 */
#include "helpers.h"

#include <errno.h>
#include <libgen.h>
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
  assert_true(t_has(&d, 8, 19,
                    "expected { file: PATH }, { env: NAME } or "
                    "{ credential: NAME }"));
  assert_null(strstr(d.lines[0], "inline-Secret-Value"));
  config_diag_free(&d);
  assert_int_equal(load_secret("{env: CB_TEST_AK, file: /x}", &cfg, &d),
                   -EINVAL);
  assert_true(t_has(&d, 8, 37, "give exactly one of file, env and credential"));
  config_diag_free(&d);
  assert_int_equal(load_secret("{}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, 19, "missing file, env or credential"));
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

/* A credential: the file t_secret_file made, named by its base name, with
 * CREDENTIALS_DIRECTORY set to its directory (as systemd sets it). */
struct cred {
  char *path, *name, *spec;
};

static struct cred make_cred(const char *content, unsigned mode)
{
  struct cred c;
  char *dir;

  c.path = t_secret_file(content, strlen(content), mode);
  dir = strdup(c.path);
  assert_non_null(dir);
  assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dirname(dir), 1), 0);
  free(dir);
  c.name = strrchr(c.path, '/') + 1;
  c.spec = t_fmt("{credential: %s}", c.name);
  return c;
}

static void drop_cred(struct cred *c)
{
  free(c->spec);
  t_rm(c->path);
  unsetenv("CREDENTIALS_DIRECTORY");
}

/* The value node of "      secret_key: {credential: X}" */
#define CRED_COL 32

static void test_credential_ok(void **state)
{
  /* 0440 is what systemd makes where the file system has ACLs: a 0400
   * root file with an ACL entry for the service user, whose mask stat()
   * shows in the group bits */
  static const unsigned modes[] = {0400, 0600, 0440};

  (void)state;
  for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
    struct cred c = make_cred("SK-from-credential\n", modes[i]);
    struct config cfg;
    struct config_diag d = {0};
    char *source = t_fmt("credential %s", c.name);

    int rc = load_secret(c.spec, &cfg, &d);
    if (rc != 0)
      t_dump(&d);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.accounts[0].secret_key.value, "SK-from-credential");
    assert_string_equal(cfg.accounts[0].secret_key.source, source);
    /* the full path, as a file: secret gives it (the daemon watches it) */
    assert_string_equal(cfg.accounts[0].secret_key.path, c.path);
    config_free(&cfg);
    free(source);
    drop_cred(&c);
  }
}

static void test_credential_modes(void **state)
{
  static const unsigned bad[] = {0404, 0444, 0460, 0402, 0660, 0644};

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct cred c = make_cred("value\n", bad[i]);
    struct config cfg;
    struct config_diag d = {0};
    char *why = t_fmt("accounts.a1.auth.secret_key: credential \"%s\" (%s) "
                      "is writable by group or accessible by others "
                      "(mode %04o)",
                      c.name, c.path, bad[i]);

    assert_int_equal(load_secret(c.spec, &cfg, &d), -EINVAL);
    if (!t_has(&d, 8, CRED_COL, why))
      t_dump(&d);
    assert_true(t_has(&d, 8, CRED_COL, why));
    config_diag_free(&d);
    free(why);
    drop_cred(&c);
  }
}

static void test_credential_directory_unset(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  unsetenv("CREDENTIALS_DIRECTORY");
  assert_int_equal(load_secret("{credential: sg-sk}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, CRED_COL,
                    "accounts.a1.auth.secret_key.credential: \"sg-sk\" is a "
                    "systemd credential but $CREDENTIALS_DIRECTORY is not "
                    "set"));
  assert_int_equal(d.count, 1);
  config_diag_free(&d);
  setenv("CREDENTIALS_DIRECTORY", "", 1);
  assert_int_equal(load_secret("{credential: sg-sk}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, CRED_COL, "$CREDENTIALS_DIRECTORY is empty"));
  config_diag_free(&d);
  unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_credential_names(void **state)
{
  static const struct {
    const char *spec, *why;
  } bad[] = {
      {"{credential: ../sg-sk}", "\"../sg-sk\" must be a plain file name"},
      {"{credential: a/b}", "\"a/b\" must be a plain file name"},
      {"{credential: /etc/passwd}", "\"/etc/passwd\" must be a plain file"},
      {"{credential: .}", "\".\" must be a file name"},
      {"{credential: ..}", "\"..\" must be a file name"},
      {"{credential: \"\"}", "\"\" must be a file name"},
      {"{credential: \"a\\tb\"}", "\"a?b\" contains control characters"},
      {"{credential: [x]}", "expected a credential name"},
  };
  struct cred c = make_cred("value\n", 0400);

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct config cfg;
    struct config_diag d = {0};
    char *phrase =
        t_fmt("accounts.a1.auth.secret_key.credential: %s", bad[i].why);

    assert_int_equal(load_secret(bad[i].spec, &cfg, &d), -EINVAL);
    if (!t_has(&d, 8, CRED_COL, phrase))
      t_dump(&d);
    assert_true(t_has(&d, 8, CRED_COL, phrase));
    assert_int_equal(d.count, 1);
    config_diag_free(&d);
    free(phrase);
  }
  /* a name that is not there */
  struct config cfg;
  struct config_diag d = {0};
  assert_int_equal(load_secret("{credential: not-there}", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 8, CRED_COL, "credential \"not-there\" (/tmp/cbtest-"));
  assert_true(
      t_has(&d, 8, CRED_COL, "/not-there) cannot be opened: No such file"));
  config_diag_free(&d);
  /* and two sources at once */
  assert_int_equal(load_secret("{credential: x, env: CB_TEST_AK}", &cfg, &d),
                   -EINVAL);
  assert_true(t_has(&d, 8, 35, "give exactly one of file, env and credential"));
  config_diag_free(&d);
  drop_cred(&c);
}

/* A credential that is refused never shows its bytes. */
static void test_credential_no_secret_in_diagnostics(void **state)
{
  static const char *const contents[] = {
      "CRED-SECRET-0123\nsecond line", /* control characters */
      "CRED-SECRET-0123\n",            /* refused for its mode below */
  };
  static const unsigned modes[] = {0400, 0644};

  (void)state;
  for (size_t i = 0; i < 2; i++) {
    struct cred c = make_cred(contents[i], modes[i]);
    struct config cfg;
    struct config_diag d = {0};

    assert_int_equal(load_secret(c.spec, &cfg, &d), -EINVAL);
    assert_int_equal(d.count, 1);
    assert_non_null(strstr(d.lines[0], c.name));
    assert_null(strstr(d.lines[0], "CRED-SECRET"));
    assert_null(strstr(d.lines[0], "second line"));
    config_diag_free(&d);
    drop_cred(&c);
  }
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
      cmocka_unit_test(test_credential_ok),
      cmocka_unit_test(test_credential_modes),
      cmocka_unit_test(test_credential_directory_unset),
      cmocka_unit_test(test_credential_names),
      cmocka_unit_test(test_credential_no_secret_in_diagnostics),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
