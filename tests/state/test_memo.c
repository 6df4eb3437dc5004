/* SPDX-License-Identifier: MIT */
/*
 * memo: the per-binding memory between a daemon's passes. A key names
 * everything a binding's entry says (a changed entry is another key); a
 * permanent failure holds its binding back for good, another until its
 * next retry, which waits 60 s doubled per failure in a row, at most an
 * hour; a set is found by key once sorted, copies what it is given, and a
 * zeroed set is empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memo.h"

static void test_key_names_the_whole_entry(void **state)
{
  char a[MEMO_KEY_MAX], b[MEMO_KEY_MAX], small[8];

  (void)state;
  assert_int_equal(memo_key(a, sizeof(a), "cert", "inst", "a.example", false),
                   0);
  assert_string_equal(a, "cert inst a.example 0");
  assert_int_equal(memo_key(b, sizeof(b), "cert", "inst", "a.example", true),
                   0);
  assert_string_not_equal(a, b); /* client verification is part of it */
  assert_int_equal(
      memo_key(small, sizeof(small), "cert", "inst", "a.example", false),
      -ENAMETOOLONG);
}

static void test_delay_doubles_to_an_hour(void **state)
{
  (void)state;
  assert_int_equal(memo_delay_s(0), 60);
  assert_int_equal(memo_delay_s(1), 60);
  assert_int_equal(memo_delay_s(2), 120);
  assert_int_equal(memo_delay_s(3), 240);
  assert_int_equal(memo_delay_s(6), 1920);
  assert_int_equal(memo_delay_s(7), 3600);
  assert_int_equal(memo_delay_s(1000), 3600);
}

static void test_next_counts_failures_in_a_row(void **state)
{
  struct memo first = {0}, second = {0}, perm = {0};

  (void)state;
  memo_next(&first, NULL, false, 1000);
  assert_int_equal(first.failures, 1);
  assert_int_equal(first.next_retry, 1000 + 60);
  assert_false(first.permanent);
  memo_next(&second, &first, false, 2000);
  assert_int_equal(second.failures, 2);
  assert_int_equal(second.next_retry, 2000 + 120);
  memo_next(&perm, &second, true, 3000);
  assert_true(perm.permanent);
  assert_int_equal(perm.failures, 3);
  assert_int_equal(perm.next_retry, 0);
}

static void test_holds_until_next_retry(void **state)
{
  struct memo m = {.next_retry = 500};
  struct memo p = {.permanent = true};

  (void)state;
  assert_true(memo_holds(&m, 499));
  assert_false(memo_holds(&m, 500));
  assert_false(memo_holds(&m, 501));
  assert_true(memo_holds(&p, 0));
  assert_true(memo_holds(&p, 1L << 40));
}

static void test_set_copies_sorts_and_finds(void **state)
{
  struct memo_set s = {0};
  char key[16], msg[16];
  const char *keys[] = {"c 1 x 0", "a 1 x 0", "b 1 x 0"};

  (void)state;
  assert_null(memo_find(NULL, "a 1 x 0"));
  assert_null(memo_find(&s, "a 1 x 0"));
  for (size_t i = 0; i < 3; i++) {
    struct memo m = {.key = key, .error_msg = msg, .attempts = (uint32_t)i};
    snprintf(key, sizeof(key), "%s", keys[i]);
    snprintf(msg, sizeof(msg), "msg %zu", i);
    snprintf(m.error_code, sizeof(m.error_code), "E%zu", i);
    assert_int_equal(memo_set_add(&s, &m), 0);
  }
  /* the caller's buffers are not kept */
  memset(key, 'z', sizeof(key) - 1);
  memset(msg, 'z', sizeof(msg) - 1);
  memo_set_sort(&s);
  assert_int_equal(s.n, 3);
  for (size_t i = 0; i < 3; i++) {
    const struct memo *m = memo_find(&s, keys[i]);
    char want[16];
    assert_non_null(m);
    assert_string_equal(m->key, keys[i]);
    snprintf(want, sizeof(want), "msg %zu", i);
    assert_string_equal(m->error_msg, want);
    assert_int_equal(m->attempts, i);
  }
  assert_null(memo_find(&s, "d 1 x 0"));
  memo_set_free(&s);
  assert_int_equal(s.n, 0);
  assert_null(s.memos);
}

static void test_null_message_becomes_empty(void **state)
{
  struct memo_set s = {0};
  struct memo m = {.key = "k 1 x 0"};

  (void)state;
  assert_int_equal(memo_set_add(&s, &m), 0);
  assert_string_equal(s.memos[0].error_msg, "");
  memo_set_free(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_names_the_whole_entry),
      cmocka_unit_test(test_delay_doubles_to_an_hour),
      cmocka_unit_test(test_next_counts_failures_in_a_row),
      cmocka_unit_test(test_holds_until_next_retry),
      cmocka_unit_test(test_set_copies_sorts_and_finds),
      cmocka_unit_test(test_null_message_becomes_empty),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
