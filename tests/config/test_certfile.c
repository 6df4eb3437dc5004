/* SPDX-License-Identifier: MIT */
/*
 * certfile: the offline checks of certificate files, on real files made at
 * run time by tests/certs/make-leaf-certs.sh (a test CA, an intermediate,
 * RSA / ECDSA / Ed25519 leaves, expired and not-yet-valid ones, an
 * encrypted key, a foreign key). Expected values come from the openssl
 * command, not from the code under test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "certfile.h"

static char s_dir[] = "/tmp/certfile-test-XXXXXX";

static char *path_of(const char *name)
{
  static char buf[4][256];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%s", s_dir, name);
  return buf[i];
}

static char *slurp(const char *name, size_t *len)
{
  FILE *f = fopen(path_of(name), "rb");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 16);
  assert_non_null(buf);
  *len = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  return buf;
}

/* One line of the openssl command's output, trailing newline dropped. */
static void run_line(char *out, size_t len, const char *fmt, ...)
{
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  assert_non_null(fgets(out, (int)len, p));
  assert_int_equal(pclose(p), 0);
  out[strcspn(out, "\n")] = '\0';
}

static int group_setup(void **state)
{
  (void)state;
  if (!mkdtemp(s_dir))
    return -1;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "'%s' '%s' >/dev/null", MAKE_LEAF_CERTS, s_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Every message names the file and holds no line of the key's PEM. */
static void assert_clean_message(const char *err, const char *cert,
                                 const char *key, size_t key_len)
{
  assert_non_null(strstr(err, path_of(cert)));
  assert_null(strstr(err, "PRIVATE KEY"));
  const char *line = key;
  while (line < key + key_len) {
    const char *nl = memchr(line, '\n', (size_t)(key + key_len - line));
    size_t n = nl ? (size_t)(nl - line) : (size_t)(key + key_len - line);
    if (n >= 16 && strncmp(line, "-----", 5) != 0) {
      char frag[17];
      memcpy(frag, line + n / 2 - 8, 16); /* a piece of the key's body */
      frag[16] = '\0';
      assert_null(strstr(err, frag));
    }
    line += n + 1;
  }
}

/* Load cert with key file keyname at now; returns rc, message in err. */
static int load_at(const char *cert, const char *keyname, int64_t now,
                   struct certfile *cf, char *err, size_t errlen)
{
  size_t klen;
  char *key = slurp(keyname, &klen);
  int rc = certfile_load(path_of(cert), key, klen, now, cf, err, errlen);
  if (rc)
    assert_clean_message(err, cert, key, klen);
  OPENSSL_cleanse(key, klen);
  free(key);
  return rc;
}

static int load(const char *cert, const char *keyname, struct certfile *cf,
                char *err, size_t errlen)
{
  return load_at(cert, keyname, (int64_t)time(NULL), cf, err, errlen);
}

static void expect_refused(const char *cert, const char *keyname,
                           const char *needle)
{
  struct certfile cf;
  char err[512];
  int rc = load(cert, keyname, &cf, err, sizeof(err));
  assert_int_not_equal(rc, 0);
  if (!strstr(err, needle))
    fail_msg("\"%s\" lacks \"%s\"", err, needle);
  assert_null(cf.chain_pem); /* nothing left behind */
}

static void assert_file_text(const char *got, const char *name)
{
  size_t len;
  char *want = slurp(name, &len);
  assert_string_equal(got, want);
  free(want);
}

static void test_rsa_chain_fields(void **state)
{
  (void)state;
  struct certfile cf;
  char err[512], want[256];
  assert_int_equal(load("rsa.chain.pem", "rsa.key", &cf, err, sizeof(err)), 0);
  assert_int_equal(cf.chain_count, 2);
  assert_file_text(cf.chain_pem, "rsa.chain.pem");
  assert_int_equal(cf.key_type, CERTFILE_KEY_RSA);
  assert_string_equal(cf.common_name, "api.example.com");
  assert_int_equal(cf.nsans, 2);
  assert_string_equal(cf.sans[0], "api.example.com");
  assert_string_equal(cf.sans[1], "*.example.com");

  run_line(want, sizeof(want),
           "openssl x509 -in '%s' -outform DER | openssl dgst -sha256 -r",
           path_of("rsa.pem"));
  want[64] = '\0';
  assert_string_equal(cf.sha256, want);
  run_line(want, sizeof(want), "openssl x509 -in '%s' -noout -serial",
           path_of("rsa.pem"));
  assert_string_equal(cf.serial_hex, want + strlen("serial="));
  run_line(want, sizeof(want),
           "date -u -d \"$(openssl x509 -in '%s' -noout -enddate | cut -d= "
           "-f2)\" +%%s",
           path_of("rsa.pem"));
  assert_int_equal(cf.not_after, strtoll(want, NULL, 10));
  assert_true(cf.not_before < cf.not_after);
  certfile_free(&cf);
}

static void test_ecdsa(void **state)
{
  (void)state;
  struct certfile cf;
  char err[512];
  assert_int_equal(load("ec.chain.pem", "ec.key", &cf, err, sizeof(err)), 0);
  assert_int_equal(cf.key_type, CERTFILE_KEY_EC);
  assert_file_text(cf.chain_pem, "ec.chain.pem");
  certfile_free(&cf);
}

/* Whatever the file's order, the leaf goes first; the root is left out;
 * a leaf alone stays alone. */
static void test_reordering(void **state)
{
  (void)state;
  static const char *const files[] = {"rsa.rev.pem", "rsa.full.pem"};
  for (size_t i = 0; i < 2; i++) {
    struct certfile cf;
    char err[512];
    assert_int_equal(load(files[i], "rsa.key", &cf, err, sizeof(err)), 0);
    assert_int_equal(cf.chain_count, 2);
    assert_file_text(cf.chain_pem, "rsa.chain.pem");
    certfile_free(&cf);
  }
  struct certfile cf;
  char err[512];
  assert_int_equal(load("rsa.pem", "rsa.key", &cf, err, sizeof(err)), 0);
  assert_int_equal(cf.chain_count, 1);
  assert_file_text(cf.chain_pem, "rsa.pem");
  certfile_free(&cf);
}

static void test_bad_inputs(void **state)
{
  (void)state;
  FILE *f = fopen(path_of("garbage.pem"), "w");
  assert_non_null(f);
  fputs("this is not a certificate\n", f);
  fclose(f);
  f = fopen(path_of("damaged.pem"), "w");
  assert_non_null(f);
  fputs("-----BEGIN CERTIFICATE-----\nMIIB!!notbase64\n"
        "-----END CERTIFICATE-----\n",
        f);
  fclose(f);
  expect_refused("garbage.pem", "rsa.key", "no PEM certificate");
  expect_refused("damaged.pem", "rsa.key", "not a valid PEM certificate");
  expect_refused("missing.pem", "rsa.key", "missing.pem");
  expect_refused("rsa.chain.pem", "other.key", "does not match");
  expect_refused("rsa.chain.pem", "enc.key", "encrypted");
  expect_refused("rsa.chain.pem", "rsa.pem", "not a PEM private key");
  expect_refused("ed.pem", "ed.key", "RSA or ECDSA");
  expect_refused("expired.chain.pem", "expired.key", "has expired");
  expect_refused("future.chain.pem", "future.key", "not valid yet");
  expect_refused("rsa.nolink.pem", "rsa.key", "does not link");
}

/* The check is against the time given, not the clock. */
static void test_now_is_given(void **state)
{
  (void)state;
  struct certfile cf;
  char err[512];
  assert_int_equal(load("rsa.chain.pem", "rsa.key", &cf, err, sizeof(err)), 0);
  int64_t end = cf.not_after, start = cf.not_before;
  certfile_free(&cf);
  assert_int_not_equal(
      load_at("rsa.chain.pem", "rsa.key", end + 1, &cf, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "has expired"));
  assert_int_not_equal(
      load_at("rsa.chain.pem", "rsa.key", start - 1, &cf, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "not valid yet"));
  /* and within the validity it passes, whatever the clock says */
  assert_int_equal(
      load_at("rsa.chain.pem", "rsa.key", end - 1, &cf, err, sizeof(err)), 0);
  certfile_free(&cf);
}

static void test_covers(void **state)
{
  (void)state;
  const char *const sans[] = {"api.example.com", "*.example.com",
                              "*.svc.example.org"};
  assert_true(certfile_covers(sans, 3, "api.example.com"));
  assert_true(certfile_covers(sans, 3, "API.Example.com"));
  assert_true(certfile_covers(sans, 3, "www.example.com"));
  assert_true(certfile_covers(sans, 3, "*.example.com"));
  assert_true(certfile_covers(sans, 3, "a.svc.example.org"));
  assert_false(certfile_covers(sans, 3, "example.com"));
  assert_false(certfile_covers(sans, 3, "deep.www.example.com"));
  assert_false(certfile_covers(sans, 3, "svc.example.org"));
  assert_false(certfile_covers(sans, 3, "*.svc.example.com"));
  assert_false(certfile_covers(sans, 3, "*.org"));
  const char *const exact[] = {"api.example.com"};
  assert_false(certfile_covers(exact, 1, "*.example.com"));
  assert_false(certfile_covers(exact, 1, "www.example.com"));
  assert_false(certfile_covers(NULL, 0, "api.example.com"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rsa_chain_fields),
      cmocka_unit_test(test_ecdsa),
      cmocka_unit_test(test_reordering),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_now_is_given),
      cmocka_unit_test(test_covers),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
