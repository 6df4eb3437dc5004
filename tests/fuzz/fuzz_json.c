/* SPDX-License-Identifier: MIT */
/*
 * fuzz_json: libFuzzer target for util/json.h's reader on a document that
 * uses every kind of field (strings with limits, integers, booleans, a
 * custom setter, a nested object, an array of objects with open/close
 * hooks and a cap), and for its writer.
 *
 * What must hold for any input:
 * - the result is 0 or -EBADMSG, -EPROTONOSUPPORT, -E2BIG (the hook's cap)
 *   or -ENOMEM; why is NUL-terminated, empty exactly on success;
 * - on success every required field is there and within its limits, each
 *   element opened was closed;
 * - a document read with the depth cap reads the same without it;
 * - what the writer makes of a result reads back to the same text (a
 *   fixed point), and everything is freed (ASan/LSan).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ITEMS 4
#define MAX_NAME 16

struct item {
  char *name;
  int64_t n;
  bool on;
};

struct doc {
  char *title;
  uint64_t count;
  uint32_t small;
  char code[16];
  struct {
    char *s;
  } inner;
  struct item items[MAX_ITEMS];
  size_t nitems, closed;
};

static int set_code(struct json_reader *r, const struct json_field *f,
                    void *dst, const struct json_value *v)
{
  (void)r;
  if (v->type == JSON_INT)
    snprintf(dst, f->max, "%lld", v->i);
  else
    snprintf(dst, f->max, "%.*s", (int)(v->len < 15 ? v->len : 15), v->s);
  return 0;
}

static yajl_gen_status put_code(yajl_gen g, const struct json_field *f,
                                const void *src)
{
  (void)f;
  return json_gen_text(g, src); /* a cut string may end mid-character */
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

  if (base != &d->items[d->closed])
    abort();
  d->closed++;
  return 0;
}

static const struct json_field item_fields[] = {
    {.name = "name",
     .kind = JSON_K_STR,
     .offset = offsetof(struct item, name),
     .flags = JSON_REQUIRED | JSON_NONEMPTY | JSON_LOWER | JSON_ONCE,
     .max = MAX_NAME},
    {.name = "n", .kind = JSON_K_I64, .offset = offsetof(struct item, n)},
    {.name = "on",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct item, on),
     .flags = JSON_NULLABLE | JSON_LOOSE},
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
     .offset = 0,
     .flags = JSON_REQUIRED | JSON_NULLABLE},
};

static const struct json_object inner_object = {
    .name = "inner", .fields = inner_fields, .nfields = 1};

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
    {.name = "code",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct doc, code),
     .flags = JSON_LOOSE,
     .max = sizeof(((struct doc *)0)->code),
     .accept = JSON_STRING | JSON_INT,
     .set = set_code,
     .put = put_code},
    {.name = "inner",
     .kind = JSON_K_OBJECT,
     .offset = offsetof(struct doc, inner),
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

static const struct json_doc capped = {.root = &doc_object, .max_depth = 8};
static const struct json_doc uncapped = {.root = &doc_object};

static void doc_free(struct doc *d)
{
  free(d->title);
  free(d->inner.s);
  for (size_t i = 0; i < d->nitems; i++)
    free(d->items[i].name);
  memset(d, 0, sizeof *d);
}

static int read_doc(const struct json_doc *jd, const char *in, size_t size,
                    struct doc *d)
{
  char why[128];
  int rc;

  memset(d, 0, sizeof *d);
  memset(why, 'x', sizeof why);
  rc = json_read(jd, in, size, d, d, why, sizeof why);
  if (memchr(why, '\0', sizeof why) == NULL || (rc == 0) != (why[0] == '\0'))
    abort();
  if (rc != 0 && rc != -EBADMSG && rc != -EPROTONOSUPPORT && rc != -E2BIG &&
      rc != -ENOMEM)
    abort();
  return rc;
}

static void check_doc(const struct doc *d)
{
  if (d->nitems > MAX_ITEMS || d->closed != d->nitems)
    abort();
  for (size_t i = 0; i < d->nitems; i++) {
    const char *name = d->items[i].name;

    if (!name || !*name || strlen(name) > MAX_NAME)
      abort();
    for (const char *p = name; *p; p++)
      if (*p >= 'A' && *p <= 'Z')
        abort();
  }
}

static yajl_gen_status gen_doc(yajl_gen g, const struct doc *d)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_int(g, "version", 1);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &doc_object, d);
  if (gs == yajl_gen_status_ok && d->inner.s) {
    gs = json_gen_str(g, "inner");
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_open(g);
    if (gs == yajl_gen_status_ok)
      gs = json_gen_fields(g, &inner_object, &d->inner);
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_close(g);
  }
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "items");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < d->nitems && gs == yajl_gen_status_ok; i++) {
    gs = yajl_gen_map_open(g);
    if (gs == yajl_gen_status_ok)
      gs = json_gen_fields(g, &item_object, &d->items[i]);
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_close(g);
  }
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* The writer's text for d. Everything read is valid UTF-8 without NUL
 * bytes, except a code cut mid-character, which json_gen_text repairs:
 * writing never fails. */
static char *write_doc(const struct doc *d, size_t *len)
{
  yajl_gen g = json_gen_new(false, NULL, NULL);
  char *out = NULL;

  if (!g || gen_doc(g, d) != yajl_gen_status_ok ||
      json_gen_take(g, &out, len) != 0)
    abort();
  yajl_gen_free(g);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct doc d, u, again;
  char *j1, *j2;
  size_t l1, l2;
  int rc = read_doc(&capped, (const char *)data, size, &d);
  int rc_u = read_doc(&uncapped, (const char *)data, size, &u);

  if (rc == 0) {
    check_doc(&d);
    if (rc_u != 0 || u.nitems != d.nitems)
      abort();
    j1 = write_doc(&d, &l1);
    if (read_doc(&capped, j1, l1, &again) != 0)
      abort();
    j2 = write_doc(&again, &l2);
    if (l1 != l2 || memcmp(j1, j2, l1) != 0)
      abort();
    doc_free(&again);
    free(j1);
    free(j2);
  }
  doc_free(&d);
  doc_free(&u);
  return 0;
}
