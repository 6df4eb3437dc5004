/* SPDX-License-Identifier: MIT */
/*
 * config_named_files: the input files a document names (secret files,
 * systemd credentials, CA and certificate files), taken from the YAML
 * alone so that a document that fails validation still has its list.
 */
#include "helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void expect_files(const char *doc, const char *const *want, size_t n)
{
  struct config_files f;

  assert_int_equal(config_named_files(doc, strlen(doc), &f), 0);
  assert_int_equal(f.n, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(f.paths[i], want[i]);
  config_files_free(&f);
  assert_null(f.paths);
  assert_int_equal(f.n, 0);
}

static void test_secrets_ca_and_cert_files_sorted_once(void **state)
{
  (void)state;
  static const char doc[] =
      "version: 1\n"
      "accounts:\n"
      "  b:\n"
      "    auth: {method: aksk, access_key: {file: /s/b-ak},\n"
      "           secret_key: {file: /s/b-sk}}\n"
      "    tls: {ca_file: /etc/ca.pem}\n"
      "  a:\n"
      "    auth: {method: password, password: {file: /s/b-ak}}\n"
      "    tls: {ca_file: /etc/ca.pem}\n"
      "certificates:\n"
      "  c: {account: a, cert_file: /le/c.pem, key: {file: /le/c.key}}\n"
      "daemon: {metrics_file: /m/certbind.prom, state_dir: /var/lib/x}\n";
  static const char *const want[] = {"/etc/ca.pem", "/le/c.key", "/le/c.pem",
                                     "/s/b-ak", "/s/b-sk"};

  expect_files(doc, want, 5);
}

/* Invalid documents still parse: their named files are what a fix of a
 * file outside the document (a chmod) must be noticed by. */
static void test_invalid_document_still_names_its_files(void **state)
{
  (void)state;
  static const char doc[] =
      "version: 7\n"
      "accounts:\n"
      "  a:\n"
      "    bogus: true\n"
      "    auth: {method: aksk, secret_key: {file: rel/sk, env: X}}\n";
  static const char *const want[] = {"rel/sk"};

  expect_files(doc, want, 1);
}

static void test_credentials_directory(void **state)
{
  (void)state;
  static const char doc[] =
      "accounts: {a: {auth: {token: {credential: tok}}}}\n"
      "x: {credential: ../escape}\n"
      "y: {credential: ..}\n"
      "z: {credential: .}\n";
  static const char *const want[] = {"/run/credentials/u.service/tok"};

  unsetenv("CREDENTIALS_DIRECTORY");
  expect_files(doc, NULL, 0);
  setenv("CREDENTIALS_DIRECTORY", "/run/credentials/u.service", 1);
  expect_files(doc, want, 1);
  unsetenv("CREDENTIALS_DIRECTORY");
}

/* A certificate from files names two inputs: a renewal (certbot rewrites
 * both) must make the daemon validate again, whichever source the key
 * has. An env: key names no file. */
static void test_certificate_files_and_key_sources(void **state)
{
  (void)state;
  static const char doc[] =
      "certificates:\n"
      "  a: {account: x, cert_file: /le/a/fullchain.pem,\n"
      "      key: {file: /le/a/privkey.pem}, type: global}\n"
      "  b: {account: x, cert_file: /le/b/fullchain.pem,\n"
      "      key: {credential: b-key}}\n"
      "  c: {account: x, cert_file: /le/c/fullchain.pem, key: {env: C_KEY}}\n"
      "  d: {account: x, id: a27be832f2e9441c8127fe48e3b5ac67}\n";
  static const char *const want[] = {"/le/a/fullchain.pem", "/le/a/privkey.pem",
                                     "/le/b/fullchain.pem",
                                     "/le/c/fullchain.pem", "/run/cred/b-key"};

  setenv("CREDENTIALS_DIRECTORY", "/run/cred", 1);
  expect_files(doc, want, 5);
  unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_empty_null_and_non_scalar_values_are_skipped(void **state)
{
  (void)state;
  expect_files("", NULL, 0);
  expect_files("a: {file: ~}\nb: {file: ''}\nc: {file: [x]}\nd: {ca_file: {}}"
               "\n",
               NULL, 0);
}

static void test_unparseable_document_is_einval(void **state)
{
  (void)state;
  static const char doc[] = "a: &x {file: /s/a}\nb: *x\n";
  struct config_files f = {0};

  assert_int_equal(config_named_files(doc, strlen(doc), &f), -EINVAL);
  assert_int_equal(f.n, 0);
  assert_null(f.paths);
  assert_int_equal(config_named_files("a: [", 4, &f), -EINVAL);
  assert_int_equal(f.n, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_secrets_ca_and_cert_files_sorted_once),
      cmocka_unit_test(test_invalid_document_still_names_its_files),
      cmocka_unit_test(test_credentials_directory),
      cmocka_unit_test(test_certificate_files_and_key_sources),
      cmocka_unit_test(test_empty_null_and_non_scalar_values_are_skipped),
      cmocka_unit_test(test_unparseable_document_is_einval),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
