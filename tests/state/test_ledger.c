/* SPDX-License-Identifier: MIT */
/*
 * ledger: add/remove/contains, idempotence, file round trip (sorted,
 * 0600), missing = empty, corrupt = -EBADMSG, 100,000 entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ledger.h"
#include "statefile.h"
#include "testutil.h"

#include <errno.h>
#include <time.h>

#define CERT_A "a27be832f2e9441c8127fe48e3b5ac67"
#define CERT_B "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
#define GW_1 "f0fa1789-3b76-433b-a787-9892951c620e"
#define GW_2 "7d39549681c54d968ec2910da9da95cd"

struct fixture {
  char *dir;
  char *path;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->dir = testutil_mkdtemp();
  assert_non_null(f->dir);
  f->path = testutil_join(f->dir, LEDGER_FILE);
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

static void test_add_contains_remove(void **state)
{
  struct ledger l = {0};
  const struct ledger_entry *e;

  (void)state;
  assert_int_equal(ledger_count(&l), 0);
  assert_false(ledger_contains(&l, CERT_A, GW_1, "api.example.com"));
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "api.example.com", 100), 0);
  assert_int_equal(ledger_add(&l, CERT_A, GW_2, "api.example.com", 101), 0);
  assert_int_equal(ledger_add(&l, CERT_B, GW_1, "api.example.com", 102), 0);
  assert_int_equal(ledger_count(&l), 3);
  assert_true(ledger_contains(&l, CERT_A, GW_1, "api.example.com"));
  assert_true(ledger_contains(&l, CERT_A, GW_2, "api.example.com"));
  assert_true(ledger_contains(&l, CERT_B, GW_1, "api.example.com"));
  assert_false(ledger_contains(&l, CERT_B, GW_2, "api.example.com"));
  assert_false(ledger_contains(&l, CERT_A, GW_1, "www.example.com"));

  /* idempotent: the first attached_at stays */
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "api.example.com", 999), 0);
  assert_int_equal(ledger_count(&l), 3);
  e = ledger_find(&l, CERT_A, GW_1, "api.example.com");
  assert_non_null(e);
  assert_int_equal(e->attached_at, 100);

  /* DNS names are case-insensitive, stored lowercase */
  assert_true(ledger_contains(&l, CERT_A, GW_1, "API.Example.COM"));
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "API.example.com", 5), 0);
  assert_int_equal(ledger_count(&l), 3);
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "WWW.Example.com", 5), 0);
  e = ledger_find(&l, CERT_A, GW_1, "www.example.com");
  assert_non_null(e);
  assert_string_equal(e->domain, "www.example.com");

  assert_int_equal(ledger_remove(&l, CERT_A, GW_1, "api.example.com"), 0);
  assert_false(ledger_contains(&l, CERT_A, GW_1, "api.example.com"));
  assert_int_equal(ledger_remove(&l, CERT_A, GW_1, "api.example.com"), -ENOENT);
  assert_true(ledger_contains(&l, CERT_A, GW_2, "api.example.com"));
  assert_true(ledger_contains(&l, CERT_B, GW_1, "api.example.com"));
  assert_true(ledger_contains(&l, CERT_A, GW_1, "www.example.com"));
  assert_int_equal(ledger_count(&l), 3);
  for (size_t i = 0; i < ledger_count(&l); i++)
    assert_non_null(ledger_at(&l, i));
  assert_null(ledger_at(&l, 3));

  assert_int_equal(ledger_add(&l, "", GW_1, "x.example.com", 1), -EINVAL);
  assert_int_equal(ledger_add(&l, CERT_A, NULL, "x.example.com", 1), -EINVAL);
  ledger_free(&l);
  assert_int_equal(ledger_count(&l), 0);
}

static void test_missing_is_empty(void **state)
{
  struct fixture *f = *state;
  struct ledger l;

  assert_int_equal(ledger_load(f->dir, &l), 0);
  assert_int_equal(ledger_count(&l), 0);
  ledger_free(&l);
}

static void test_round_trip_sorted(void **state)
{
  struct fixture *f = *state;
  struct ledger l = {0}, back;
  char *text = NULL;
  size_t len;

  assert_int_equal(ledger_add(&l, CERT_B, GW_1, "b.example.com", 3), 0);
  assert_int_equal(ledger_add(&l, CERT_A, GW_2, "z.example.com", 2), 0);
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "z.example.com", 1), 0);
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "a.example.com", 4), 0);
  assert_int_equal(ledger_save(f->dir, &l), 0);
  assert_int_equal(testutil_mode(f->path), 0600);

  assert_int_equal(ledger_load(f->dir, &back), 0);
  assert_int_equal(ledger_count(&back), 4);
  for (size_t i = 0; i < ledger_count(&l); i++) {
    const struct ledger_entry *e = ledger_at(&l, i), *g;

    g = ledger_find(&back, e->certificate_id, e->instance_id, e->domain);
    assert_non_null(g);
    assert_int_equal(g->attached_at, e->attached_at);
  }

  /* sorted by certificate, instance, domain: stable across runs
   * (CERT_B "0b1c…" < CERT_A "a27b…"; GW_2 "7d39…" < GW_1 "f0fa…") */
  assert_int_equal(statefile_read(f->path, 1 << 20, &text, &len), 0);
  {
    const char *pb = strstr(text, "\"b.example.com\"");
    const char *pz2 = strstr(text, "\"z.example.com\"");
    const char *pa = strstr(text, "\"a.example.com\"");
    const char *pz1 = pz2 ? strstr(pz2 + 1, "\"z.example.com\"") : NULL;

    assert_true(pb && pz2 && pa && pz1);
    assert_true(pb < pz2 && pz2 < pa && pa < pz1);
    assert_true(strstr(text, CERT_B) < strstr(text, CERT_A));
  }
  free(text);

  /* saving what was loaded gives the same bytes */
  {
    char *a, *b;
    size_t la, lb;

    assert_int_equal(ledger_to_json(&l, &a, &la), 0);
    assert_int_equal(ledger_to_json(&back, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
  }
  ledger_free(&back);
  ledger_free(&l);
}

static void expect_load(struct fixture *f, const char *text, int want)
{
  struct ledger l;
  FILE *fp = fopen(f->path, "w");

  assert_non_null(fp);
  fputs(text, fp);
  assert_int_equal(fclose(fp), 0);
  assert_int_equal(ledger_load(f->dir, &l), want);
  if (want < 0)
    assert_int_equal(ledger_count(&l), 0);
  ledger_free(&l);
}

#define ENTRY(c, i, d, t)                                                      \
  "{\"certificate_id\":" c ",\"instance_id\":" i ",\"domain\":" d              \
  ",\"attached_at\":" t "}"

static void test_corrupt_refused(void **state)
{
  struct fixture *f = *state;
  const char *good =
      "{\"version\":1,\"entries\":[" ENTRY("\"c\"", "\"i\"", "\"d\"", "1") "]}";

  expect_load(f, good, 0);
  for (size_t cut = 0; cut < strlen(good); cut++) {
    char buf[256];

    memcpy(buf, good, cut);
    buf[cut] = '\0';
    expect_load(f, buf, -EBADMSG);
  }
  expect_load(f, "nonsense", -EBADMSG);
  expect_load(f, "{\"version\":1}", -EBADMSG);
  expect_load(f, "{\"entries\":[]}", -EBADMSG);
  expect_load(f, "{\"version\":7,\"entries\":[]}", -EPROTONOSUPPORT);
  expect_load(f, "{\"version\":1,\"entries\":{}}", -EBADMSG);
  expect_load(f, "{\"version\":1,\"entries\":[1]}", -EBADMSG);
  expect_load(
      f,
      "{\"version\":1,\"entries\":[" ENTRY("\"c\"", "\"i\"", "\"\"", "1") "]}",
      -EBADMSG);
  expect_load(f,
              "{\"version\":1,\"entries\":[" ENTRY("\"c\"", "\"i\"", "\"d\"",
                                                   "\"1\"") "]}",
              -EBADMSG);
  expect_load(
      f, "{\"version\":1,\"entries\":[" ENTRY("\"c\"", "3", "\"d\"", "1") "]}",
      -EBADMSG);
  expect_load(f,
              "{\"version\":1,\"entries\":[{\"certificate_id\":\"c\","
              "\"domain\":\"d\",\"attached_at\":1}]}",
              -EBADMSG);
  /* unknown keys are skipped; a duplicate entry counts once */
  expect_load(f,
              "{\"version\":1,\"by\":{\"x\":[1]},\"entries\":[" ENTRY(
                  "\"c\"", "\"i\"", "\"d\"", "1") "," ENTRY("\"c\"", "\"i\"",
                                                            "\"D\"", "2") "]}",
              0);
  {
    struct ledger l;

    assert_int_equal(ledger_load(f->dir, &l), 0);
    assert_int_equal(ledger_count(&l), 1);
    ledger_free(&l);
  }
}

/* Intents are kept apart from ownership: an intent never counts as owned,
 * an applied attach upgrades it, an owned entry is never turned back into
 * an intent, and both survive the file (two arrays). */
static void test_intents_apart_from_ownership(void **state)
{
  struct fixture *f = *state;
  struct ledger l = {0}, back;
  bool added;

  assert_int_equal(
      ledger_add_intent(&l, CERT_A, GW_1, "a.example.com", 5, &added), 0);
  assert_true(added);
  assert_true(ledger_contains(&l, CERT_A, GW_1, "a.example.com"));
  assert_false(ledger_owns(&l, CERT_A, GW_1, "a.example.com"));
  /* the applied attach: owned, at its own time */
  assert_int_equal(ledger_add(&l, CERT_A, GW_1, "A.example.com", 9), 0);
  assert_true(ledger_owns(&l, CERT_A, GW_1, "a.example.com"));
  assert_int_equal(ledger_find(&l, CERT_A, GW_1, "a.example.com")->attached_at,
                   9);
  /* owned stays owned */
  assert_int_equal(
      ledger_add_intent(&l, CERT_A, GW_1, "a.example.com", 11, &added), 0);
  assert_false(added);
  assert_true(ledger_owns(&l, CERT_A, GW_1, "a.example.com"));
  assert_int_equal(ledger_remove_intent(&l, CERT_A, GW_1, "a.example.com"),
                   -ENOENT);
  assert_true(ledger_owns(&l, CERT_A, GW_1, "a.example.com"));
  /* an intent is dropped by remove_intent */
  ledger_add_intent(&l, CERT_B, GW_2, "b.example.com", 7, NULL);
  ledger_add_intent(&l, CERT_B, GW_2, "c.example.com", 7, NULL);
  assert_int_equal(ledger_remove_intent(&l, CERT_B, GW_2, "c.example.com"), 0);
  assert_false(ledger_contains(&l, CERT_B, GW_2, "c.example.com"));
  /* the file: owned under "entries", intents under "intents" */
  assert_int_equal(ledger_save(f->dir, &l), 0);
  assert_int_equal(ledger_load(f->dir, &back), 0);
  assert_int_equal(ledger_count(&back), 2);
  assert_true(ledger_owns(&back, CERT_A, GW_1, "a.example.com"));
  assert_true(ledger_contains(&back, CERT_B, GW_2, "b.example.com"));
  assert_false(ledger_owns(&back, CERT_B, GW_2, "b.example.com"));
  {
    char *json;
    size_t len;
    assert_int_equal(ledger_to_json(&back, &json, &len), 0);
    char *intents = strstr(json, "\"intents\"");
    assert_non_null(intents);
    assert_true(strstr(json, "a.example.com") < intents);
    assert_true(strstr(json, "b.example.com") > intents);
    free(json);
  }
  ledger_free(&back);
  ledger_free(&l);
  /* a file from before intents existed loads as owned entries only; one
   * that has a key both owned and intended is corrupt */
  expect_load(
      f,
      "{\"version\":1,\"entries\":[" ENTRY("\"c\"", "\"i\"", "\"d\"", "1") "]}",
      0);
  expect_load(
      f,
      "{\"version\":1,\"entries\":[" ENTRY(
          "\"c\"", "\"i\"", "\"d\"",
          "1") "],\"intents\":[" ENTRY("\"c\"", "\"i\"", "\"D\"", "2") "]}",
      -EBADMSG);
}

static void make_key(size_t i, char cert[33], char inst[37], char dom[64])
{
  snprintf(cert, 33, "%032zx", i % 97);
  snprintf(inst, 37, "%032zx", i % 13);
  snprintf(dom, 64, "host-%zu.example.com", i);
}

/* 100,000 entries: adds, file round trip and lookups stay fast (the ctest
 * timeout bounds them), removal of every other keeps the rest findable. */
static void test_hundred_thousand(void **state)
{
  struct fixture *f = *state;
  const size_t n = 100000;
  struct ledger l = {0}, back;
  char cert[33], inst[37], dom[64];
  clock_t t0 = clock();

  for (size_t i = 0; i < n; i++) {
    make_key(i, cert, inst, dom);
    assert_int_equal(ledger_add(&l, cert, inst, dom, (int64_t)i), 0);
  }
  assert_int_equal(ledger_count(&l), n);
  assert_int_equal(ledger_save(f->dir, &l), 0);
  assert_int_equal(ledger_load(f->dir, &back), 0);
  assert_int_equal(ledger_count(&back), n);
  for (size_t i = 0; i < n; i += 2) {
    make_key(i, cert, inst, dom);
    assert_int_equal(ledger_remove(&back, cert, inst, dom), 0);
  }
  assert_int_equal(ledger_count(&back), n / 2);
  for (size_t i = 0; i < n; i++) {
    const struct ledger_entry *e;

    make_key(i, cert, inst, dom);
    e = ledger_find(&back, cert, inst, dom);
    if (i % 2 == 0) {
      assert_null(e);
    } else {
      assert_non_null(e);
      assert_int_equal(e->attached_at, (int64_t)i);
    }
  }
  print_message("100k: %.2f s CPU\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
  ledger_free(&back);
  ledger_free(&l);
}

/* Certificate objects: recorded, found by leaf hash (any case) and by id,
 * saved and loaded back; a ledger written before they existed loads with
 * none; a record listed twice is a corrupt file. */
static void test_certificate_objects(void **state)
{
  struct ledger l = {0}, back = {0};
  struct ledger_cert a = {.sha256 = "aa11",
                          .object_id = "id_a",
                          .name = "cb_web_aa11",
                          .certificate = "web",
                          .created = true,
                          .bound_at = 100};
  struct ledger_cert b = {.sha256 = "BB22",
                          .object_id = "id_b",
                          .created = false,
                          .superseded_at = 50};
  const char *old = "{\"version\":1,\"entries\":[]}";
  const char *twice =
      "{\"version\":1,\"entries\":[],\"certificates\":["
      "{\"sha256\":\"aa\",\"object_id\":\"x\",\"created\":true},"
      "{\"sha256\":\"aa\",\"object_id\":\"y\",\"created\":true}]}";
  char *json;
  size_t len;

  (void)state;
  assert_int_equal(ledger_cert_put(&l, &a), 0);
  assert_int_equal(ledger_cert_put(&l, &b), 0);
  assert_non_null(ledger_cert_find(&l, "bb22"));
  assert_string_equal(ledger_cert_find(&l, "AA11")->object_id, "id_a");
  assert_null(ledger_cert_find(&l, "cc"));
  a.bound_at = 200; /* replaces by hash */
  assert_int_equal(ledger_cert_put(&l, &a), 0);
  assert_int_equal(l.ncerts, 2);
  assert_int_equal(ledger_to_json(&l, &json, &len), 0);
  assert_int_equal(ledger_from_json(json, len, &back), 0);
  free(json);
  assert_int_equal(back.ncerts, 2);
  assert_true(ledger_cert_find_id(&back, "id_a")->created);
  assert_int_equal(ledger_cert_find_id(&back, "id_a")->bound_at, 200);
  assert_string_equal(ledger_cert_find_id(&back, "id_a")->certificate, "web");
  assert_false(ledger_cert_find_id(&back, "id_b")->created);
  assert_int_equal(ledger_cert_find_id(&back, "id_b")->superseded_at, 50);
  assert_string_equal(ledger_cert_find_id(&back, "id_b")->sha256, "bb22");
  assert_int_equal(ledger_cert_remove(&back, "id_a"), 0);
  assert_int_equal(ledger_cert_remove(&back, "id_a"), -ENOENT);
  assert_int_equal(back.ncerts, 1);
  ledger_free(&back);
  ledger_free(&l);
  assert_int_equal(ledger_from_json(old, strlen(old), &back), 0);
  assert_int_equal(back.ncerts, 0);
  ledger_free(&back);
  assert_int_equal(ledger_from_json(twice, strlen(twice), &back), -EBADMSG);
}

/* A record's account (endpoint and project ID) is saved and loaded back;
 * a record without one is written without the key and loads with it
 * empty, as does a ledger written before the key existed. */
static void test_certificate_account(void **state)
{
  static const char key[] =
      "https://apig.example.test 0123456789abcdef0123456789abcdef";
  struct ledger l = {0}, back = {0};
  struct ledger_cert a = {
      .sha256 = "aa11", .object_id = "id_a", .created = true};
  struct ledger_cert b = {
      .sha256 = "bb22", .object_id = "id_b", .created = true};
  const char *before =
      "{\"version\":1,\"entries\":[],\"certificates\":["
      "{\"sha256\":\"aa\",\"object_id\":\"x\",\"name\":\"n\","
      "\"certificate\":\"web\",\"created\":true,\"bound_at\":0,"
      "\"superseded_at\":0}]}";
  char *json;
  size_t len;

  (void)state;
  snprintf(a.account, sizeof(a.account), "%s", key);
  assert_int_equal(ledger_cert_put(&l, &a), 0);
  assert_int_equal(ledger_cert_put(&l, &b), 0);
  assert_int_equal(ledger_to_json(&l, &json, &len), 0);
  /* the key once: the record without an account has none */
  assert_non_null(strstr(json, "\"account\": \"https://apig.example.test "));
  assert_null(strstr(strstr(json, "\"account\"") + 1, "\"account\""));
  assert_int_equal(ledger_from_json(json, len, &back), 0);
  free(json);
  assert_string_equal(ledger_cert_find_id(&back, "id_a")->account, key);
  assert_string_equal(ledger_cert_find_id(&back, "id_b")->account, "");
  ledger_free(&back);
  ledger_free(&l);
  assert_int_equal(ledger_from_json(before, strlen(before), &back), 0);
  assert_int_equal(back.ncerts, 1);
  assert_string_equal(ledger_cert_find_id(&back, "x")->account, "");
  assert_string_equal(ledger_cert_find_id(&back, "x")->certificate, "web");
  ledger_free(&back);
}

/* Entries share their certificate and instance IDs (one copy each, gone
 * with its last entry); ledger_reserve(n) leaves room for n entries, so
 * adding them moves nothing. */
/* Like make_key, with instance IDs apart from certificate IDs. */
static void shared_key(size_t i, char cert[33], char inst[37], char dom[64])
{
  snprintf(cert, 33, "c%031zx", i % 97);
  snprintf(inst, 37, "i%031zx", i % 13);
  snprintf(dom, 64, "host-%zu.example.com", i);
}

static void test_shared_ids_and_reserve(void **state)
{
  struct ledger l = {0};
  char cert[33], inst[37], dom[64];
  const struct ledger_entry *a, *b;
  const struct ledger_entry *entries;

  (void)state;
  assert_int_equal(ledger_reserve(&l, 1000), 0);
  entries = l.entries;
  for (size_t i = 0; i < 1000; i++) {
    shared_key(i, cert, inst, dom);
    assert_int_equal(ledger_add(&l, cert, inst, dom, 1), 0);
  }
  assert_ptr_equal(l.entries, entries); /* reserved: never grown */
  assert_int_equal(l.nnames, 97 + 13);
  shared_key(0, cert, inst, dom);
  a = ledger_find(&l, cert, inst, dom);
  shared_key(97, cert, inst, dom); /* a's certificate, another instance */
  b = ledger_find(&l, cert, inst, dom);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_equal(a->certificate_id, b->certificate_id);
  assert_string_equal(b->domain, dom);
  shared_key(13, cert, inst, dom); /* a's instance, another certificate */
  b = ledger_find(&l, cert, inst, dom);
  assert_non_null(b);
  assert_ptr_equal(a->instance_id, b->instance_id);
  assert_ptr_not_equal(a->certificate_id, b->certificate_id);
  /* every entry of certificate 0 gone: its ID with them */
  for (size_t i = 0; i < 1000; i += 97) {
    shared_key(i, cert, inst, dom);
    assert_int_equal(ledger_remove(&l, cert, inst, dom), 0);
  }
  assert_int_equal(l.nnames, 96 + 13);
  for (size_t i = 1; i < 1000; i++) {
    shared_key(i, cert, inst, dom);
    assert_true((i % 97 == 0) != ledger_contains(&l, cert, inst, dom));
  }
  ledger_free(&l);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_contains_remove),
      cmocka_unit_test(test_certificate_objects),
      cmocka_unit_test(test_certificate_account),
      cmocka_unit_test_setup_teardown(test_missing_is_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_round_trip_sorted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_intents_apart_from_ownership, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_hundred_thousand, setup, teardown),
      cmocka_unit_test(test_shared_ids_and_reserve),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
