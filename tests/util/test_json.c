/* SPDX-License-Identifier: MIT */
/*
 * json: the table-driven reader (what a document may hold, how unknown
 * keys, wrong types, repeated keys, nesting and broken input are treated,
 * the reasons it gives) and the writer helpers, on a small document that
 * uses every kind of field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the test document ---- */

#define MAX_ITEMS 3

struct item {
  char *name;
  int64_t n;
  bool on;
};

struct inner {
  char *s;
};

struct doc {
  char *title;
  uint64_t count;
  uint32_t small;
  bool flag;
  char code[16];
  struct inner inner;
  struct item items[MAX_ITEMS];
  size_t nitems;
  size_t closed; /* items whose close hook ran */
};

/* "code": a string or an integer, kept as text (like IAM's "code"). */
static int set_code(struct json_reader *r, const struct json_field *f,
                    void *dst, const struct json_value *v)
{
  (void)r;
  if (v->type == JSON_INT)
    snprintf(dst, f->max, "%lld", v->i);
  else
    snprintf(dst, f->max, "%.*s", (int)v->len, v->s);
  return 0;
}

static yajl_gen_status put_code(yajl_gen g, const struct json_field *f,
                                const void *src)
{
  (void)f;
  return json_gen_str(g, src);
}

static int item_open(struct json_reader *r, void *parent, void **base)
{
  struct doc *d = parent;

  if (d->nitems == MAX_ITEMS)
    return json_fail(r, -E2BIG, NULL, "too many items");
  *base = &d->items[d->nitems++];
  return 0;
}

static int item_close(struct json_reader *r, void *base)
{
  struct doc *d = json_ctx(r);

  (void)base;
  d->closed++;
  return 0;
}

static const struct json_field item_fields[] = {
    {.name = "name",
     .kind = JSON_K_STR,
     .offset = offsetof(struct item, name),
     .flags = JSON_REQUIRED | JSON_NONEMPTY | JSON_LOWER,
     .max = 8},
    {.name = "n", .kind = JSON_K_I64, .offset = offsetof(struct item, n)},
    {.name = "on",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct item, on),
     .flags = JSON_ONCE | JSON_NULLABLE},
};

static const struct json_object item_object = {
    .name = "items element",
    .fields = item_fields,
    .nfields = sizeof item_fields / sizeof *item_fields,
    .open = item_open,
    .close = item_close,
};

static const struct json_field inner_fields[] = {
    {.name = "s",
     .kind = JSON_K_STR,
     .offset = offsetof(struct inner, s),
     .flags = JSON_REQUIRED | JSON_NULLABLE},
};

static const struct json_object inner_object = {
    .name = "inner",
    .fields = inner_fields,
    .nfields = 1,
};

static const struct json_field doc_fields[] = {
    {.name = "version",
     .kind = JSON_K_CUSTOM,
     .flags = JSON_REQUIRED,
     .max = 1,
     .accept = JSON_INT,
     .set = json_set_version},
    {.name = "title",
     .kind = JSON_K_STR,
     .offset = offsetof(struct doc, title),
     .flags = JSON_NULLABLE | JSON_LOSSY},
    {.name = "count",
     .kind = JSON_K_U64,
     .offset = offsetof(struct doc, count),
     .flags = JSON_ONCE},
    {.name = "small",
     .kind = JSON_K_U32,
     .offset = offsetof(struct doc, small)},
    {.name = "flag",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct doc, flag),
     .flags = JSON_LOOSE},
    {.name = "code",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct doc, code),
     .max = sizeof(((struct doc *)0)->code),
     .accept = JSON_STRING | JSON_INT,
     .set = set_code,
     .put = put_code},
    {.name = "inner",
     .kind = JSON_K_OBJECT,
     .offset = offsetof(struct doc, inner),
     .flags = JSON_ONCE,
     .object = &inner_object},
    {.name = "items",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &item_object},
};

static const struct json_object doc_object = {
    .name = "doc",
    .fields = doc_fields,
    .nfields = sizeof doc_fields / sizeof *doc_fields,
};

static const struct json_doc doc_capped = {.root = &doc_object, .max_depth = 4};
static const struct json_doc doc_uncapped = {.root = &doc_object};

static void doc_free(struct doc *d)
{
  free(d->title);
  free(d->inner.s);
  for (size_t i = 0; i < d->nitems; i++)
    free(d->items[i].name);
  memset(d, 0, sizeof *d);
}

/* Read json into *d with doc_capped: the return code, the reason in why. */
static int read_with(const struct json_doc *jd, const char *json, struct doc *d,
                     char why[128])
{
  memset(d, 0, sizeof *d);
  return json_read(jd, json, strlen(json), d, d, why, 128);
}

static int read_doc(const char *json, struct doc *d, char why[128])
{
  return read_with(&doc_capped, json, d, why);
}

/* The reason json gives with doc_capped (and that it fails with err). */
static void assert_refused(const char *json, int err, const char *why_want)
{
  struct doc d;
  char why[128];
  int rc = read_doc(json, &d, why);

  if (rc != err || strcmp(why, why_want) != 0)
    fail_msg("%s: rc %d why \"%s\", want %d \"%s\"", json, rc, why, err,
             why_want);
  doc_free(&d);
}

static const char *const full =
    "{\"version\":1,\"title\":\"T\",\"count\":7,\"small\":4294967295,"
    "\"flag\":true,\"code\":401,\"inner\":{\"s\":\"in\"},"
    "\"items\":[{\"name\":\"AbC\",\"n\":-5,\"on\":true},{\"name\":\"x\"}]}";

/* ---- reader ---- */

static void test_reads_every_kind(void **state)
{
  struct doc d;
  char why[128] = "unset";

  (void)state;
  assert_int_equal(read_doc(full, &d, why), 0);
  assert_string_equal(why, "");
  assert_string_equal(d.title, "T");
  assert_int_equal(d.count, 7);
  assert_int_equal(d.small, UINT32_MAX);
  assert_true(d.flag);
  assert_string_equal(d.code, "401");
  assert_string_equal(d.inner.s, "in");
  assert_int_equal(d.nitems, 2);
  assert_int_equal(d.closed, 2);
  assert_string_equal(d.items[0].name, "abc"); /* JSON_LOWER */
  assert_int_equal(d.items[0].n, -5);
  assert_true(d.items[0].on);
  assert_string_equal(d.items[1].name, "x");
  assert_false(d.items[1].on);
  doc_free(&d);
}

/* An unknown key's value is skipped whole, whatever it holds (known key
 * names included), at the top, in a nested object and in an element. */
static void test_unknown_subtrees_skipped_at_every_depth(void **state)
{
  const char *json =
      "{\"zz\":{\"count\":\"no\",\"items\":5,\"inner\":[1,{\"s\":2}]},"
      "\"version\":1,\"count\":3,\"yy\":[[null,true,1.5,-2,\"s\",{}]],"
      "\"inner\":{\"s\":\"ok\",\"deep\":{\"s\":{\"s\":[]}},\"n\":null},"
      "\"items\":[{\"name\":\"a\",\"extra\":{\"name\":7,\"on\":\"x\"},"
      "\"on\":false,\"more\":[{\"on\":1}]}],\"count2\":[]}";
  struct doc d;
  char why[128];

  (void)state;
  assert_int_equal(read_with(&doc_uncapped, json, &d, why), 0);
  assert_int_equal(d.count, 3); /* "count" inside zz was not a repeat */
  assert_string_equal(d.inner.s, "ok");
  assert_int_equal(d.nitems, 1);
  assert_string_equal(d.items[0].name, "a");
  assert_false(d.items[0].on);
  doc_free(&d);
}

/* Containers deeper than max_depth fail, skipped ones too; the top-level
 * object is level 1. */
static void test_depth_cap(void **state)
{
  struct doc d;
  char why[128];

  (void)state;
  /* levels: doc 1, zz 2, 3, 4 */
  assert_int_equal(read_doc("{\"version\":1,\"zz\":[[{}]]}", &d, why), 0);
  doc_free(&d);
  assert_refused("{\"version\":1,\"zz\":[[{\"a\":[]}]]}", -EBADMSG,
                 "nesting too deep");
  assert_refused("{\"version\":1,\"items\":[{\"name\":\"a\",\"x\":[[]]}]}",
                 -EBADMSG, "nesting too deep");
  assert_int_equal(
      read_doc("{\"version\":1,\"items\":[{\"name\":\"a\",\"x\":[]}]}", &d,
               why),
      0);
  doc_free(&d);

  /* 0: no cap, and no memory per level beyond yajl's byte */
  size_t levels = 100000;
  char *deep = malloc(levels * 2 + 64);
  size_t n = (size_t)sprintf(deep, "{\"version\":1,\"zz\":");
  memset(deep + n, '[', levels);
  memset(deep + n + levels, ']', levels);
  strcpy(deep + n + 2 * levels, "}");
  assert_int_equal(read_with(&doc_uncapped, deep, &d, why), 0);
  doc_free(&d);
  assert_int_equal(read_doc(deep, &d, why), -EBADMSG);
  assert_string_equal(why, "nesting too deep");
  doc_free(&d);
  free(deep);
}

/* A known key with a value of another type: the error names the field
 * and what it must be. */
static void test_type_errors_named(void **state)
{
  static const struct {
    const char *json, *why;
  } rows[] = {
      {"{\"version\":1,\"count\":\"7\"}", "count is not an integer"},
      {"{\"version\":1,\"count\":1.5}", "count is not an integer"},
      {"{\"version\":1,\"count\":{}}", "count is not an integer"},
      {"{\"version\":1,\"count\":null}", "count is not an integer"},
      {"{\"version\":1,\"title\":7}", "title is not a string"},
      {"{\"version\":1,\"title\":[]}", "title is not a string"},
      {"{\"version\":1,\"code\":true}", "code is not a string or an integer"},
      {"{\"version\":1,\"inner\":[]}", "inner is not an object"},
      {"{\"version\":1,\"inner\":\"s\"}", "inner is not an object"},
      {"{\"version\":1,\"items\":{}}", "items is not an array"},
      {"{\"version\":1,\"items\":null}", "items is not an array"},
      {"{\"version\":1,\"items\":[1]}", "items element is not an object"},
      {"{\"version\":1,\"items\":[[]]}", "items element is not an object"},
      {"{\"version\":1,\"items\":[{\"name\":\"a\",\"on\":0}]}",
       "on is not a boolean"},
      {"{\"version\":\"1\"}", "version is not an integer"},
      {"[]", "doc is not an object"},
      {"\"doc\"", "doc is not an object"},
      {"null", "doc is not an object"},
  };

  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
    assert_refused(rows[i].json, -EBADMSG, rows[i].why);
}

static void test_values_checked(void **state)
{
  (void)state;
  assert_refused("{\"version\":1,\"count\":-1}", -EBADMSG, "count is negative");
  assert_refused("{\"version\":1,\"small\":4294967296}", -EBADMSG,
                 "small is out of range");
  assert_refused("{\"version\":1,\"small\":-1}", -EBADMSG,
                 "small is out of range");
  assert_refused("{\"version\":1,\"items\":[{\"name\":\"123456789\"}]}",
                 -EBADMSG, "name is longer than 8 bytes");
  assert_refused("{\"version\":1,\"items\":[{\"name\":\"\"}]}", -EBADMSG,
                 "name is empty");
  assert_refused("{\"version\":1,\"items\":[{\"name\":\"a\\u0000b\"}]}",
                 -EBADMSG, "name contains a NUL byte");
  assert_refused("{\"version\":2}", -EPROTONOSUPPORT,
                 "version is not supported");
  assert_refused("{\"title\":\"t\"}", -EBADMSG, "doc without version");
  assert_refused("{\"version\":1,\"items\":[{\"n\":1}]}", -EBADMSG,
                 "items element without name");
  /* A required field given as null is missing. */
  assert_refused("{\"version\":1,\"inner\":{\"s\":null}}", -EBADMSG,
                 "inner without s");
}

/* null: only where JSON_NULLABLE says so; a string becomes NULL, other
 * fields keep their value. */
static void test_null(void **state)
{
  struct doc d;
  char why[128];

  (void)state;
  assert_int_equal(read_doc("{\"version\":1,\"title\":\"a\",\"title\":null,"
                            "\"items\":[{\"name\":\"x\",\"on\":null}]}",
                            &d, why),
                   0);
  assert_null(d.title);
  assert_false(d.items[0].on);
  doc_free(&d);
}

/* JSON_LOOSE: a value of another type is skipped as if the key were
 * unknown (apig's error envelope reads this way). */
static void test_loose(void **state)
{
  struct doc d;
  char why[128];

  (void)state;
  assert_int_equal(read_doc("{\"version\":1,\"flag\":\"yes\",\"flag\":{\"a\":"
                            "[1]},\"flag\":[true]}",
                            &d, why),
                   0);
  assert_false(d.flag);
  doc_free(&d);
  assert_int_equal(
      read_doc("{\"version\":1,\"flag\":true,\"flag\":7}", &d, why), 0);
  assert_true(d.flag);
  doc_free(&d);
}

/* A key given twice: JSON_ONCE refuses it (apig's list fields, every field
 * of status.json and counters.json, the arrays of ledger.json); otherwise
 * the later value counts (ledger entries' fields, apig's error envelope). */
static void test_duplicate_keys(void **state)
{
  struct doc d;
  char why[128];

  (void)state;
  assert_refused("{\"version\":1,\"count\":1,\"count\":1}", -EBADMSG,
                 "duplicate field count");
  assert_refused("{\"version\":1,\"inner\":{\"s\":\"a\"},\"inner\":{}}",
                 -EBADMSG, "duplicate field inner");
  assert_refused("{\"version\":1,\"items\":[],\"items\":[]}", -EBADMSG,
                 "duplicate field items");
  assert_refused(
      "{\"version\":1,\"items\":[{\"name\":\"a\",\"on\":null,\"on\":true}]}",
      -EBADMSG, "duplicate field on");
  /* once per object: each element has its own */
  assert_int_equal(read_doc("{\"version\":1,\"items\":[{\"name\":\"a\",\"on\":"
                            "true},{\"name\":\"b\",\"on\":true}]}",
                            &d, why),
                   0);
  doc_free(&d);
  /* the later one counts; the earlier string is freed (ASan) */
  assert_int_equal(
      read_doc("{\"version\":1,\"version\":1,\"title\":\"a\",\"title\":\"b\","
               "\"items\":[{\"name\":\"a\",\"name\":\"Z\",\"n\":1,\"n\":2}]}",
               &d, why),
      0);
  assert_string_equal(d.title, "b");
  assert_string_equal(d.items[0].name, "z");
  assert_int_equal(d.items[0].n, 2);
  doc_free(&d);
}

/* Every proper prefix of a good document is refused as malformed, and
 * what it filled in is freed by the caller's usual free (ASan). */
static void test_truncated(void **state)
{
  size_t len = strlen(full);

  (void)state;
  for (size_t n = 0; n < len; n++) {
    struct doc d = {0};
    char why[128];
    int rc = json_read(&doc_capped, full, n, &d, &d, why, sizeof why);

    if (rc != -EBADMSG || strcmp(why, "malformed JSON or invalid UTF-8"))
      fail_msg("prefix of %zu bytes: rc %d, why \"%s\"", n, rc, why);
    doc_free(&d);
  }
}

static void test_malformed(void **state)
{
  static const char *const bad[] = {
      "",
      "   ",
      "{\"version\":1} x",
      "{\"version\":1}{}",
      "{\"version\":1,/* c */\"count\":1}",
      "{\"version\":1,}",
      "{'version':1}",
      "{\"version\":1,\"title\":\"\xff\"}",
      "{\"version\":1,\"zz\":\"\xc3\x28\"}",
      "{\"version\":1,\"zz\":99999999999999999999}",
  };
  struct doc d = {0};
  char why[128];

  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_refused(bad[i], -EBADMSG, "malformed JSON or invalid UTF-8");
  assert_int_equal(json_read(&doc_capped, NULL, 0, &d, &d, why, sizeof why),
                   -EBADMSG);
}

static int bad_open(struct json_reader *r, void *parent, void **base)
{
  (void)r;
  (void)parent;
  (void)base;
  return -EIO; /* without json_fail */
}

static int bad_set(struct json_reader *r, const struct json_field *f, void *dst,
                   const struct json_value *v)
{
  (void)r;
  (void)f;
  (void)dst;
  (void)v;
  return -ERANGE; /* without json_fail */
}

/* A hook's error ends the parse with its errno and its reason (or a
 * generic one naming the field). */
static void test_hook_errors(void **state)
{
  static const struct json_object bad_items = {.name = "bad element",
                                               .fields = item_fields,
                                               .nfields = 1,
                                               .open = bad_open};
  static const struct json_field fields[] = {
      {.name = "a", .kind = JSON_K_ARRAY, .object = &bad_items},
      {.name = "b", .kind = JSON_K_CUSTOM, .accept = JSON_INT, .set = bad_set},
  };
  static const struct json_object root = {
      .name = "x", .fields = fields, .nfields = 2};
  static const struct json_doc jd = {.root = &root};
  struct doc d;
  char why[128];

  (void)state;
  assert_refused("{\"version\":1,\"items\":[{\"name\":\"a\"},{\"name\":\"b\"},"
                 "{\"name\":\"c\"},{\"name\":\"d\"},\"never read\" 7}",
                 -E2BIG, "too many items");
  assert_int_equal(read_with(&jd, "{\"a\":[{}]}", &d, why), -EIO);
  assert_string_equal(why, "invalid input");
  assert_int_equal(read_with(&jd, "{\"b\":1}", &d, why), -ERANGE);
  assert_string_equal(why, "b is invalid");
}

/* JSON_K_STRS: an array of strings, each checked as a string field, capped
 * in number; a later value replaces an earlier one. */
struct strs_doc {
  struct json_strs names;
};

static void test_string_arrays(void **state)
{
  static const struct json_field fields[] = {
      {.name = "names",
       .kind = JSON_K_STRS,
       .offset = offsetof(struct strs_doc, names),
       .flags = JSON_NULLABLE | JSON_LOWER | JSON_NONEMPTY,
       .max = 8,
       .max_items = 3},
  };
  static const struct json_object root = {
      .name = "x", .fields = fields, .nfields = 1};
  static const struct json_doc jd = {.root = &root, .max_depth = 4};
  static const struct {
    const char *json, *why;
  } bad[] = {
      {"{\"names\":\"a\"}", "names is not an array"},
      {"{\"names\":{}}", "names is not an array"},
      {"{\"names\":[\"a\",1]}", "names element is not a string"},
      {"{\"names\":[null]}", "names element is not a string"},
      {"{\"names\":[[]]}", "names element is not a string"},
      {"{\"names\":[{}]}", "names element is not a string"},
      {"{\"names\":[\"\"]}", "names is empty"},
      {"{\"names\":[\"123456789\"]}", "names is longer than 8 bytes"},
      {"{\"names\":[\"a\",\"b\",\"c\",\"d\"]}",
       "names has more than 3 elements"},
  };
  struct strs_doc d = {0};
  char why[128];

  (void)state;
  const char *ok = "{\"names\":[\"X\",\"y\"],\"names\":[\"A\",\"bB\",\"c\"]}";
  assert_int_equal(json_read(&jd, ok, strlen(ok), &d, NULL, why, sizeof why),
                   0);
  assert_int_equal(d.names.n, 3);
  assert_string_equal(d.names.v[0], "a");
  assert_string_equal(d.names.v[1], "bb");
  assert_string_equal(d.names.v[2], "c");
  json_strs_free(&d.names);
  assert_null(d.names.v);
  const char *empty = "{\"names\":[]}";
  assert_int_equal(
      json_read(&jd, empty, strlen(empty), &d, NULL, why, sizeof why), 0);
  assert_int_equal(d.names.n, 0);
  json_strs_free(&d.names);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = json_read(&jd, bad[i].json, strlen(bad[i].json), &d, NULL, why,
                       sizeof why);
    assert_int_equal(rc, -EBADMSG);
    assert_string_equal(why, bad[i].why);
    json_strs_free(&d.names); /* what was read before the error */
  }
}

static void test_why_buffer(void **state)
{
  struct doc d;
  char why[8];

  (void)state;
  memset(&d, 0, sizeof d);
  assert_int_equal(json_read(&doc_capped, "[]", 2, &d, &d, NULL, 0), -EBADMSG);
  assert_int_equal(json_read(&doc_capped, "[]", 2, &d, &d, why, sizeof why),
                   -EBADMSG);
  assert_string_equal(why, "doc is ");
}

/* ---- writer ---- */

static char *gen_done(yajl_gen g)
{
  char *out;
  size_t len;

  assert_int_equal(json_gen_take(g, &out, &len), 0);
  assert_int_equal(strlen(out), len);
  yajl_gen_free(g);
  return out;
}

static void test_writer_helpers(void **state)
{
  yajl_gen g = json_gen_new(false, NULL, NULL);
  char *out;

  (void)state;
  assert_non_null(g);
  assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_str(g, "s", "a\"b\n"), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_str(g, "null", NULL), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_int(g, "i", -3), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_u64(g, "u", UINT64_MAX), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_bool(g, "b", true), yajl_gen_status_ok);
  assert_int_equal(json_gen_str(g, "t"), yajl_gen_status_ok);
  assert_int_equal(json_gen_text(g, "caf\xc3\xa9 \xff!"), yajl_gen_status_ok);
  /* not UTF-8: refused by json_gen_str, written with '?' by json_gen_text */
  assert_int_equal(json_gen_str(g, "\xff"), yajl_gen_invalid_string);
  assert_int_equal(json_gen_str(g, "e"), yajl_gen_status_ok);
  assert_int_equal(json_gen_text(g, "caf\xc3\xa9"), yajl_gen_status_ok);
  assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
  out = gen_done(g);
  assert_string_equal(out, "{\"s\":\"a\\\"b\\n\",\"null\":null,\"i\":-3,"
                           "\"u\":9223372036854775807,\"b\":true,"
                           "\"t\":\"caf?? ?!\",\"e\":\"caf\xc3\xa9\"}");
  free(out);
}

static void collect(void *ctx, const char *s, size_t n)
{
  char **buf = ctx;
  size_t have = *buf ? strlen(*buf) : 0;

  *buf = realloc(*buf, have + n + 1);
  memcpy(*buf + have, s, n);
  (*buf)[have + n] = '\0';
}

/* One table both ways: json_gen_fields writes the scalar fields in table
 * order (containers are the caller's), and the reader reads them back. */
static void test_fields_round_trip(void **state)
{
  struct doc d = {.title = "caf\xc3\xa9\xff",
                  .count = UINT64_MAX,
                  .small = 9,
                  .flag = true,
                  .code = "C1"};
  struct doc back;
  char *text = NULL, why[128];
  yajl_gen g = json_gen_new(true, collect, &text);

  (void)state;
  assert_non_null(g);
  assert_int_equal(yajl_gen_map_open(g), yajl_gen_status_ok);
  assert_int_equal(json_gen_key_int(g, "version", 1), yajl_gen_status_ok);
  assert_int_equal(json_gen_fields(g, &doc_object, &d), yajl_gen_status_ok);
  assert_int_equal(yajl_gen_map_close(g), yajl_gen_status_ok);
  yajl_gen_free(g);
  assert_string_equal(text, "{\n"
                            "  \"version\": 1,\n"
                            "  \"title\": \"caf???\",\n"
                            "  \"count\": 9223372036854775807,\n"
                            "  \"small\": 9,\n"
                            "  \"flag\": true,\n"
                            "  \"code\": \"C1\"\n"
                            "}\n");
  assert_int_equal(read_doc(text, &back, why), 0);
  assert_string_equal(back.title, "caf???");
  assert_int_equal(back.count, LLONG_MAX);
  assert_int_equal(back.small, 9);
  assert_true(back.flag);
  assert_string_equal(back.code, "C1");
  doc_free(&back);
  free(text);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reads_every_kind),
      cmocka_unit_test(test_unknown_subtrees_skipped_at_every_depth),
      cmocka_unit_test(test_depth_cap),
      cmocka_unit_test(test_type_errors_named),
      cmocka_unit_test(test_values_checked),
      cmocka_unit_test(test_null),
      cmocka_unit_test(test_loose),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_hook_errors),
      cmocka_unit_test(test_string_arrays),
      cmocka_unit_test(test_why_buffer),
      cmocka_unit_test(test_writer_helpers),
      cmocka_unit_test(test_fields_round_trip),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
