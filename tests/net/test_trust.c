/* SPDX-License-Identifier: MIT */
/*
 * trust: CA stores built once per file, rebuilt when the file or the CA
 * directory changes, refused (never emptied) when the file is bad. Real
 * files made by openssl at test time.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "trust.h"
#include "tserver.h"

static struct {
  char dir[64];
  char a_crt[128], b_crt[128], ca[128], capath[128];
} W;

static int group_setup(void **state)
{
  char cmd[512];

  (void)state;
  strcpy(W.dir, "/tmp/certbind-trust-XXXXXX");
  if (!mkdtemp(W.dir))
    return -1;
  snprintf(W.a_crt, sizeof W.a_crt, "%s/a.crt", W.dir);
  snprintf(W.b_crt, sizeof W.b_crt, "%s/b.crt", W.dir);
  snprintf(W.ca, sizeof W.ca, "%s/ca.pem", W.dir);
  snprintf(W.capath, sizeof W.capath, "%s/capath", W.dir);
  if (tserver_make_cert(W.dir, "a", "DNS:a.example") ||
      tserver_make_cert(W.dir, "b", "DNS:b.example") || mkdir(W.capath, 0700))
    return -1;
  snprintf(cmd, sizeof cmd, "cp '%s' '%s/' && openssl rehash '%s' >/dev/null",
           W.b_crt, W.capath, W.capath);
  return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
  char cmd[160];

  (void)state;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", W.dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void copy_file(const char *from, const char *to)
{
  assert_int_equal(tserver_replace_file(from, to), 0);
}

static void write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

/* Does the store hold a certificate with this file's subject? */
static bool store_has(X509_STORE *s, const char *crt_file)
{
  FILE *f = fopen(crt_file, "r");
  X509 *want;
  bool found = false;

  assert_non_null(f);
  want = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  assert_non_null(want);
  STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(s);
  for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
    X509 *c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
    if (c && X509_cmp(c, want) == 0)
      found = true;
  }
  X509_free(want);
  return found;
}

static void test_built_once_rebuilt_on_change(void **state)
{
  struct trust t;
  X509_STORE *s1, *s2;
  uint64_t g1, g2;
  char why[256];

  (void)state;
  copy_file(W.a_crt, W.ca);
  assert_int_equal(trust_init(&t, W.capath, NULL), 0);
  long id = trust_id(&t, W.ca);
  assert_true(id >= 0);
  assert_int_equal(trust_id(&t, W.ca), id); /* stable */
  assert_int_equal(trust_get(&t, (size_t)id, &s1, &g1, why, sizeof why), 0);
  assert_true(store_has(s1, W.a_crt));
  /* unchanged: the same build, the file is not parsed again */
  assert_int_equal(trust_get(&t, (size_t)id, &s2, &g2, why, sizeof why), 0);
  assert_ptr_equal(s1, s2);
  assert_int_equal(g1, g2);
  /* replaced: the next call sees the new anchor only */
  copy_file(W.b_crt, W.ca);
  assert_int_equal(trust_get(&t, (size_t)id, &s2, &g2, why, sizeof why), 0);
  assert_true(g2 > g1);
  assert_true(store_has(s2, W.b_crt));
  assert_false(store_has(s2, W.a_crt));
  trust_free(&t);
}

static void test_bad_file_fails_closed(void **state)
{
  struct trust t;
  X509_STORE *s;
  uint64_t g;
  char why[256];

  (void)state;
  copy_file(W.a_crt, W.ca);
  assert_int_equal(trust_init(&t, W.capath, NULL), 0);
  long id = trust_id(&t, W.ca);
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g, why, sizeof why), 0);
  /* not PEM: refused, and the old store is not kept */
  write_text(W.ca, "not a certificate\n");
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g, why, sizeof why),
                   -EBADMSG);
  assert_non_null(strstr(why, W.ca));
  /* removed: refused, naming the file and the reason */
  assert_int_equal(unlink(W.ca), 0);
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g, why, sizeof why), -ENOENT);
  assert_non_null(strstr(why, W.ca));
  assert_non_null(strstr(why, "No such file"));
  /* back: trusted again without a restart */
  copy_file(W.a_crt, W.ca);
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g, why, sizeof why), 0);
  assert_true(store_has(s, W.a_crt));
  assert_int_equal(trust_get(&t, 99, &s, &g, why, sizeof why), -EINVAL);
  trust_free(&t);
}

/* NULL names the default file; separate files are separate entries. */
static void test_default_and_separate_files(void **state)
{
  struct trust t;
  X509_STORE *sd, *sb;
  uint64_t gd, gb;
  char why[256];

  (void)state;
  assert_int_equal(trust_init(&t, NULL, W.a_crt), 0);
  long d = trust_id(&t, NULL), b = trust_id(&t, W.b_crt);
  assert_true(d >= 0 && b >= 0 && d != b);
  assert_int_equal(trust_get(&t, (size_t)d, &sd, &gd, why, sizeof why), 0);
  assert_int_equal(trust_get(&t, (size_t)b, &sb, &gb, why, sizeof why), 0);
  assert_true(store_has(sd, W.a_crt));
  assert_false(store_has(sd, W.b_crt));
  assert_true(store_has(sb, W.b_crt));
  assert_false(store_has(sb, W.a_crt));
  trust_free(&t);
}

/* A change of the CA directory (a package update of the system store)
 * also rebuilds, so certificates it cached from the old one are gone. */
static void test_directory_change_rebuilds(void **state)
{
  struct trust t;
  X509_STORE *s;
  uint64_t g1, g2;
  char why[256], extra[160];

  (void)state;
  copy_file(W.a_crt, W.ca);
  assert_int_equal(trust_init(&t, W.capath, NULL), 0);
  long id = trust_id(&t, W.ca);
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g1, why, sizeof why), 0);
  snprintf(extra, sizeof extra, "%s/extra.pem", W.capath);
  copy_file(W.b_crt, extra); /* a new entry: the directory's mtime moves */
  assert_int_equal(trust_get(&t, (size_t)id, &s, &g2, why, sizeof why), 0);
  assert_true(g2 > g1);
  assert_int_equal(unlink(extra), 0);
  trust_free(&t);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_built_once_rebuilt_on_change),
      cmocka_unit_test(test_bad_file_fails_closed),
      cmocka_unit_test(test_default_and_separate_files),
      cmocka_unit_test(test_directory_change_rebuilds),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
