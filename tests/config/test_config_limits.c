/* SPDX-License-Identifier: MIT */
/*
 * Input limits: size, depth, anchors, aliases, tags, merge keys, YAML
 * bombs, several documents, and the cap on stored diagnostics. Each
 * hostile input must stop at its first offending event: the tests check
 * the single error and its position (the speed is measured in
 * bench/loader).
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

static char *repeat(const char *head, const char *unit, size_t n,
                    const char *tail)
{
  size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
  char *s = malloc(hl + ul * n + tl + 1);

  assert_non_null(s);
  memcpy(s, head, hl);
  for (size_t i = 0; i < n; i++)
    memcpy(s + hl + i * ul, unit, ul);
  memcpy(s + hl + n * ul, tail, tl + 1);
  return s;
}

static void test_size(void **state)
{
  struct config cfg;
  struct config_diag d = {0};
  size_t n = CONFIG_MAX_FILE_SIZE;
  char *buf;

  (void)state;
  /* exactly 4 MiB: a valid file padded with a comment */
  static const char head[] = T_HEAD T_BIND "#";
  buf = malloc(n + 1);
  assert_non_null(buf);
  memcpy(buf, head, strlen(head));
  memset(buf + strlen(head), 'x', n - strlen(head) - 1);
  buf[n - 1] = '\n';
  assert_int_equal(config_load_buffer("t.yaml", buf, n, &cfg, &d), 0);
  config_free(&cfg);
  /* one byte more is refused before parsing */
  buf[n] = '\n';
  assert_int_equal(config_load_buffer("t.yaml", buf, n + 1, &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 1);
  assert_true(t_has(&d, 1, 1, "larger than 4194304 bytes"));
  config_diag_free(&d);
  free(buf);

  /* a file is refused from its size, before it is read */
  char path[] = "/tmp/cbtest-big-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, 64 * 1024 * 1024), 0);
  close(fd);
  assert_int_equal(config_load(path, &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 1);
  assert_non_null(strstr(d.lines[0], ":1:1: the file is larger than"));
  assert_int_equal(strncmp(d.lines[0], path, strlen(path)), 0);
  config_diag_free(&d);
  unlink(path);
}

static void test_unreadable_file(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  assert_int_equal(config_load("/nonexistent/certbind.yaml", &cfg, &d),
                   -ENOENT);
  assert_int_equal(d.count, 1);
  assert_string_equal(d.lines[0], "/nonexistent/certbind.yaml: cannot open: "
                                  "No such file or directory");
  config_diag_free(&d);
  assert_int_equal(config_load("/tmp", &cfg, &d), -EISDIR);
  assert_int_equal(d.count, 1);
  config_diag_free(&d);
  /* a FIFO is refused at once, not waited on */
  char fifo[] = "/tmp/cbtest-fifo-XXXXXX";
  int fd = mkstemp(fifo);
  assert_true(fd >= 0);
  close(fd);
  unlink(fifo);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(config_load(fifo, &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 1);
  assert_non_null(strstr(d.lines[0], ": not a regular file"));
  config_diag_free(&d);
  unlink(fifo);
}

static void test_null_buffer(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  assert_int_equal(config_load_buffer("nul.yaml", NULL, 0, &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 1);
  assert_string_equal(d.lines[0], "nul.yaml:1:1: the file is empty "
                                  "(expected a mapping with version: 1)");
  config_diag_free(&d);
}

static void test_depth(void **state)
{
  char *doc;

  (void)state;
  /* the top mapping is level 1: 31 nested lists make 32, still fine */
  doc = repeat(T_HEAD T_BIND "x: ", "[", 31, "");
  char *full =
      t_fmt("%s%.31s\n", doc, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
  t_expect_one(full, 22, 1, "x: unknown key");
  free(full);
  free(doc);
  /* the 32nd list is level 33: stopped at its '[' */
  doc = repeat(T_HEAD T_BIND "x: ", "[", 32, "\n");
  t_expect_one(doc, 22, 35, "nesting deeper than 32 levels");
  free(doc);
  doc = repeat(T_HEAD T_BIND "x: ", "{a: ", 40, "\n");
  t_expect_one(doc, 22, 4 + 31 * 4, "nesting deeper than 32 levels");
  free(doc);
  /* block style too */
  doc = repeat("", "- ", 40, "x\n");
  t_expect_one(doc, 1, 33 * 2 - 1, "nesting deeper than 32 levels");
  free(doc);
}

/* 100 KB of '[' or '{': rejected at the 33rd, not parsed to the end */
static void test_deep_bombs(void **state)
{
  char *doc;

  (void)state;
  doc = repeat("", "[", 100 * 1024, "");
  t_expect_one(doc, 1, 33, "nesting deeper than 32 levels");
  free(doc);
  doc = repeat("", "{a: ", 25 * 1024, "");
  t_expect_one(doc, 1, 4 * 32 + 1, "nesting deeper than 32 levels");
  free(doc);
}

static void test_anchors_aliases(void **state)
{
  (void)state;
  t_expect_one("version: &v 1\n", 1, 10, "YAML anchors are not allowed (&v)");
  t_expect_one(T_ACCOUNTS T_GATEWAYS T_CERTS "policy: &p {mode: upsert}\n", 19,
               9, "YAML anchors are not allowed (&p)");
  t_expect_one(T_HEAD "bindings: *b\n", 20, 11,
               "YAML aliases are not allowed (*b)");
  /* self-reference: a naive tree walker would loop forever */
  t_expect_one("a: &a [*a]\n", 1, 4, "YAML anchors are not allowed (&a)");
}

static void test_billion_laughs(void **state)
{
  static const char bomb[] =
      "a: &a "
      "[\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
      "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
      "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
  (void)state;
  t_expect_one(bomb, 1, 4, "YAML anchors are not allowed (&a)");
}

static void test_tags(void **state)
{
  (void)state;
  t_expect_one("version: !!int 1\n", 1, 10,
               "YAML tags are not allowed (tag:yaml.org,2002:int)");
  t_expect_one("version: 1\naccounts: !custom {}\n", 2, 11,
               "YAML tags are not allowed (!custom)");
  t_expect_one("version: 1\nbindings: !!seq []\n", 2, 11,
               "YAML tags are not allowed");
  t_expect_one("version: ! 1\n", 1, 10, "YAML tags are not allowed (!)");
}

static void test_merge_keys(void **state)
{
  (void)state;
  t_expect_one(T_HEAD T_BIND "daemon: {<<: {resync_interval_s: 10}}\n", 22, 10,
               "YAML merge keys (<<) are not allowed");
  t_expect_one("<<: {version: 1}\n", 1, 1, "YAML merge keys (<<)");
  /* a quoted "<<" is an ordinary (here unknown) key */
  t_expect_one(T_HEAD T_BIND "daemon: {\"<<\": 1}\n", 22, 10,
               "daemon.<<: unknown key");
}

static void test_structure(void **state)
{
  (void)state;
  t_expect_one("? [a]\n: b\n", 1, 3, "mapping keys must be scalars");
  t_expect_one("{a: 1}: b\n", 1, 1, "mapping keys must be scalars");
  t_expect_one(T_HEAD T_BIND "---\nversion: 1\n", 22, 1,
               "only one YAML document is allowed");
}

/* A file with thousands of errors: the first 1000 kept, the rest counted. */
static void test_error_cap(void **state)
{
  struct config cfg;
  struct config_diag d = {0};
  char *doc = repeat(T_HEAD "bindings:\n- certificate: c1\n  gateways: [g1]\n"
                            "  domains:\n",
                     "  - bad_domain.example.com\n", 2500, "");

  (void)state;
  assert_int_equal(t_load(doc, &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 1001);
  assert_true(t_has(&d, 24, 5, "bindings[0].domains[0]"));
  assert_string_equal(d.lines[1000], "t.yaml: 1500 more errors not shown");
  config_diag_free(&d);
  free(doc);
}

/* Many bindings: the hash tables grow and every triple is kept once. */
static void test_many_bindings(void **state)
{
  struct config cfg;
  size_t n = 20000;
  size_t cap = 256 + n * 40;
  char *doc = malloc(cap);
  size_t off;

  (void)state;
  assert_non_null(doc);
  off = (size_t)snprintf(doc, cap, "%s",
                         T_HEAD "bindings:\n- certificate: c1\n"
                                "  gateways: [g1, g2]\n  domains:\n");
  for (size_t i = 0; i < n; i++)
    off += (size_t)snprintf(doc + off, cap - off, "  - d%zu.example.com\n", i);
  t_expect_ok(doc, &cfg);
  assert_int_equal(cfg.nbindings, 2 * n);
  config_free(&cfg);
  free(doc);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_size),
      cmocka_unit_test(test_unreadable_file),
      cmocka_unit_test(test_null_buffer),
      cmocka_unit_test(test_depth),
      cmocka_unit_test(test_deep_bombs),
      cmocka_unit_test(test_anchors_aliases),
      cmocka_unit_test(test_billion_laughs),
      cmocka_unit_test(test_tags),
      cmocka_unit_test(test_merge_keys),
      cmocka_unit_test(test_structure),
      cmocka_unit_test(test_error_cap),
      cmocka_unit_test(test_many_bindings),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
