/* SPDX-License-Identifier: MIT */
/*
 * visibility: the accounts' learnt write-to-visible delays in
 * state_dir/visibility.json. What is written reads back the same (mode
 * 0644, no temp file left); a missing file is -ENOENT; a corrupt,
 * truncated or impossible one (shown before not shown) is -EBADMSG with a
 * reason that names the field; a merge keeps each account's later
 * estimate; a set copies its keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "statefile.h"
#include "testutil.h"
#include "visibility.h"

#define EP "https://apig.example.com"

static int setup(void **state)
{
  *state = testutil_mkdtemp();
  return *state ? 0 : -1;
}

static int teardown(void **state)
{
  testutil_rmdir(*state);
  free(*state);
  return 0;
}

static void put(struct visibility_set *s, const char *project, uint64_t lo,
                uint64_t hi, bool known, int64_t when)
{
  char key[VISIBILITY_KEY_MAX];
  struct visibility_entry e = {
      .key = key, .lo_ms = lo, .hi_ms = hi, .known = known, .learnt_ms = when};

  assert_int_equal(visibility_key(key, sizeof(key), EP, project), 0);
  assert_int_equal(visibility_put(s, &e), 0);
}

static const struct visibility_entry *get(const struct visibility_set *s,
                                          const char *project)
{
  char key[VISIBILITY_KEY_MAX];

  assert_int_equal(visibility_key(key, sizeof(key), EP, project), 0);
  return visibility_find(s, key);
}

static void write_text(const char *dir, const char *text)
{
  char *path = testutil_join(dir, VISIBILITY_FILE);

  assert_non_null(path);
  assert_int_equal(statefile_write_atomic(path, text, strlen(text), 0644), 0);
  free(path);
}

static void test_round_trip(void **state)
{
  const char *dir = *state;
  struct visibility_set s = {0}, back = {0};
  const struct visibility_entry *e;
  char *path = testutil_join(dir, VISIBILITY_FILE);
  char why[200];

  put(&s, "p1", 4100, 5200, true, 1796640000123);
  put(&s, "p2", 1500, 0, false, 1796640000456);
  assert_int_equal(visibility_write(dir, &s), 0);
  assert_int_equal(testutil_mode(path), 0644);
  assert_int_equal(testutil_count(dir, ".visibility"), 0);

  assert_int_equal(visibility_read(dir, &back, why, sizeof(why)), 0);
  assert_string_equal(why, "");
  assert_int_equal(back.n, 2);
  e = get(&back, "p1");
  assert_non_null(e);
  assert_int_equal(e->lo_ms, 4100);
  assert_int_equal(e->hi_ms, 5200);
  assert_true(e->known);
  assert_int_equal(e->learnt_ms, 1796640000123);
  e = get(&back, "p2");
  assert_non_null(e);
  assert_int_equal(e->lo_ms, 1500);
  assert_false(e->known);
  assert_null(get(&back, "p3"));

  /* read again into a set that holds entries: it is emptied first */
  assert_int_equal(visibility_read(dir, &back, NULL, 0), 0);
  assert_int_equal(back.n, 2);
  visibility_set_free(&s);
  visibility_set_free(&back);
  assert_null(back.v);
  assert_int_equal(back.n, 0);
  free(path);
}

static void test_missing_file(void **state)
{
  struct visibility_set s = {0};

  assert_int_equal(visibility_read(*state, &s, NULL, 0), -ENOENT);
  assert_int_equal(s.n, 0);
  visibility_set_free(&s);
}

/* Each corrupt file and the field its reason names. */
static void test_corrupt_files(void **state)
{
  static const struct {
    const char *text, *why;
  } cases[] = {
      {"{\"version\": 1, \"accounts\": [", "malformed"},
      {"", "malformed"},
      {"[]", "not an object"},
      {"{\"version\": 2, \"accounts\": []}", ""},
      {"{\"accounts\": []}", "version"},
      {"{\"version\": 1, \"accounts\": [{\"account\": \"a b\", "
       "\"not_shown_ms\": 5000, \"shown_ms\": 4000, \"known\": true, "
       "\"learnt_unix_ms\": 1}]}",
       "shown_ms"},
      {"{\"version\": 1, \"accounts\": [{\"account\": \"a b\", "
       "\"not_shown_ms\": -1, \"shown_ms\": 4000, \"known\": true, "
       "\"learnt_unix_ms\": 1}]}",
       "not_shown_ms"},
      {"{\"version\": 1, \"accounts\": [{\"account\": \"\", "
       "\"not_shown_ms\": 1, \"shown_ms\": 4000, \"known\": true, "
       "\"learnt_unix_ms\": 1}]}",
       "account"},
      {"{\"version\": 1, \"accounts\": [{\"account\": \"a b\", "
       "\"not_shown_ms\": 1, \"shown_ms\": 4000, \"known\": true}]}",
       "learnt_unix_ms"},
  };
  const char *dir = *state;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct visibility_set s = {0};
    char why[200];
    int rc;

    write_text(dir, cases[i].text);
    rc = visibility_read(dir, &s, why, sizeof(why));
    if (rc >= 0 || !strstr(why, cases[i].why))
      fail_msg("case %zu: rc %d, why \"%s\"", i, rc, why);
    visibility_set_free(&s);
  }
}

/* A file of a later certbind with fields this one does not know. */
static void test_unknown_fields_skipped(void **state)
{
  const char *dir = *state;
  struct visibility_set s = {0};

  write_text(dir, "{\"version\": 1, \"later\": {\"x\": [1]}, \"accounts\": "
                  "[{\"account\": \"" EP " p1\", \"not_shown_ms\": 10, "
                  "\"shown_ms\": 20, \"known\": true, \"learnt_unix_ms\": 5, "
                  "\"extra\": \"y\"}]}");
  assert_int_equal(visibility_read(dir, &s, NULL, 0), 0);
  assert_int_equal(s.n, 1);
  assert_int_equal(get(&s, "p1")->hi_ms, 20);
  visibility_set_free(&s);
}

/* Another process's later estimate of an account wins; an earlier one
 * does not; an account only one side knows is kept. */
static void test_merge_keeps_the_later(void **state)
{
  struct visibility_set mine = {0}, file = {0};

  (void)state;
  put(&mine, "p1", 4000, 5000, true, 200);
  put(&mine, "p2", 9000, 10000, true, 200);
  put(&file, "p1", 1000, 2000, true, 300); /* later: wins */
  put(&file, "p2", 1000, 2000, true, 100); /* earlier: loses */
  put(&file, "p3", 7000, 7500, true, 50);  /* only in the file: kept */
  assert_int_equal(visibility_merge(&mine, &file), 0);
  assert_int_equal(mine.n, 3);
  assert_int_equal(get(&mine, "p1")->hi_ms, 2000);
  assert_int_equal(get(&mine, "p1")->learnt_ms, 300);
  assert_int_equal(get(&mine, "p2")->hi_ms, 10000);
  assert_int_equal(get(&mine, "p3")->lo_ms, 7000);
  /* the merged set owns its keys */
  visibility_set_free(&file);
  assert_int_equal(get(&mine, "p3")->hi_ms, 7500);
  visibility_set_free(&mine);
}

static void test_put_replaces_and_copies(void **state)
{
  struct visibility_set s = {0};
  char key[VISIBILITY_KEY_MAX], small[8];
  struct visibility_entry e = {.key = key, .lo_ms = 1, .learnt_ms = 1};

  (void)state;
  assert_int_equal(visibility_key(key, sizeof(key), EP, "p1"), 0);
  assert_string_equal(key, EP " p1");
  assert_int_equal(visibility_key(small, sizeof(small), EP, "p1"),
                   -ENAMETOOLONG);
  assert_int_equal(visibility_put(&s, &e), 0);
  e.lo_ms = 2;
  assert_int_equal(visibility_put(&s, &e), 0);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].lo_ms, 2);
  assert_ptr_not_equal(s.v[0].key, key);
  key[0] = 'X'; /* the caller's buffer changes, the set's key does not */
  assert_string_equal(s.v[0].key, EP " p1");
  visibility_set_free(&s);
  visibility_set_free(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_fields_skipped, setup,
                                      teardown),
      cmocka_unit_test(test_merge_keeps_the_later),
      cmocka_unit_test(test_put_replaces_and_copies),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
