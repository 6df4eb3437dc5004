/* SPDX-License-Identifier: MIT */
/*
 * json: the table-driven streaming reader (yajl_parse callbacks walking a
 * stack of the known containers open, plus a counter for a skipped
 * subtree) and the writer helpers (yajl_gen).
 */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* Known containers open at once. Our tables nest three deep (a document,
 * an array, its elements); deeper is a table bug, reported as -EINVAL. */
#define JSON_MAX_FRAMES 8
#define JSON_WHY_MAX 128

/* A known container being read. */
struct frame {
  const struct json_object *obj; /* an object's table; an array's elements' */
  const struct json_field *arr;  /* an array: the field it is the value of */
  void *base; /* an object: its struct; an array: the holder's struct */
  const struct json_field *cur; /* object: the last key's field, NULL when
                                   unknown (its value is skipped) */
  uint32_t present;             /* fields given (bit i: fields[i]) */
  uint32_t seen;                /* ... and given as something other than null */
  size_t name_len[JSON_MAX_FIELDS]; /* object: strlen of each field's name */
};

struct json_reader {
  const struct json_doc *doc;
  void *root_base, *ctx;
  struct frame stack[JSON_MAX_FRAMES];
  unsigned nframes;
  unsigned depth; /* containers open, known or skipped */
  unsigned skip;  /* > 0: inside a skipped value, this many levels */
  bool done;      /* the top-level object closed */
  int err;        /* the first error; it cancels the parse */
  char why[JSON_WHY_MAX];
};

void *json_ctx(const struct json_reader *r)
{
  return r->ctx;
}

__attribute__((format(printf, 3, 4))) static int
failf(struct json_reader *r, int err, const char *fmt, ...)
{
  va_list ap;

  if (r->err)
    return err;
  r->err = err;
  va_start(ap, fmt);
  vsnprintf(r->why, sizeof(r->why), fmt, ap);
  va_end(ap);
  return err;
}

int json_fail(struct json_reader *r, int err, const char *field,
              const char *what)
{
  if (field)
    return failf(r, err, "%s %s", field, what);
  return failf(r, err, "%s", what);
}

/* A callback's result for yajl: 1 goes on, 0 cancels the parse. */
static int go_on(struct json_reader *r, int rc)
{
  if (rc >= 0)
    return 1;
  failf(r, rc, "invalid input"); /* a hook failed without saying why */
  return 0;
}

static struct frame *top(struct json_reader *r)
{
  return &r->stack[r->nframes - 1];
}

static uint32_t field_bit(const struct frame *fr, const struct json_field *f)
{
  return 1u << (f - fr->obj->fields);
}

/* The JSON types a field takes. */
static unsigned accepted(const struct json_field *f)
{
  static const unsigned by_kind[] = {
      [JSON_K_STR] = JSON_STRING,  [JSON_K_I64] = JSON_INT,
      [JSON_K_U64] = JSON_INT,     [JSON_K_U32] = JSON_INT,
      [JSON_K_BOOL] = JSON_BOOL,   [JSON_K_OBJECT] = JSON_OBJECT,
      [JSON_K_ARRAY] = JSON_ARRAY, [JSON_K_CUSTOM] = 0,
      [JSON_K_STRS] = JSON_ARRAY,
  };
  unsigned t = by_kind[f->kind];

  if (f->kind == JSON_K_CUSTOM)
    t = f->accept & ~(unsigned)(JSON_OBJECT | JSON_ARRAY);
  if (f->flags & JSON_NULLABLE)
    t |= JSON_NULL;
  return t;
}

/* "NAME is not an integer", "code is not a string or an integer". */
static int type_error(struct json_reader *r, const struct json_field *f)
{
  static const struct {
    unsigned type;
    const char *name;
  } names[] = {
      {JSON_STRING, "a string"},  {JSON_INT, "an integer"},
      {JSON_DOUBLE, "a number"},  {JSON_BOOL, "a boolean"},
      {JSON_OBJECT, "an object"}, {JSON_ARRAY, "an array"},
  };
  unsigned t = accepted(f) & ~(unsigned)JSON_NULL;
  char what[96] = "";
  size_t n = 0;

  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (t & names[i].type)
      n += (size_t)snprintf(what + n, sizeof(what) - n, "%s%s", n ? " or " : "",
                            names[i].name);
    if (n >= sizeof(what))
      break;
  }
  return failf(r, -EBADMSG, "%s is not %s", f->name, what);
}

/* The field of the key k[0..len) in fr's object, or NULL. Lengths first:
 * most keys of a page are not ours, and most differ from ours in length
 * or in their first byte, so memcmp runs (almost) only for a match. It
 * compares all len bytes, a key holding a NUL byte included. */
static const struct json_field *find_field(const struct frame *fr,
                                           const unsigned char *k, size_t len)
{
  const struct json_field *fields = fr->obj->fields;

  for (size_t i = 0; i < fr->obj->nfields; i++) {
    if (fr->name_len[i] == len && len > 0 && fields[i].name[0] == (char)k[0] &&
        memcmp(fields[i].name, k, len) == 0)
      return &fields[i];
  }
  return NULL;
}

static int store_str(struct json_reader *r, const struct json_field *f,
                     char **dst, const struct json_value *v)
{
  char *s;

  if ((f->flags & JSON_NONEMPTY) && v->len == 0)
    return json_fail(r, -EBADMSG, f->name, "is empty");
  if (f->max && v->len > f->max)
    return failf(r, -EBADMSG, "%s is longer than %zu bytes", f->name, f->max);
  if (memchr(v->s, '\0', v->len))
    return json_fail(r, -EBADMSG, f->name, "contains a NUL byte");
  s = malloc(v->len + 1);
  if (!s)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  memcpy(s, v->s, v->len);
  s[v->len] = '\0';
  if (f->flags & JSON_LOWER) {
    for (char *p = s; *p; p++) {
      if (*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
    }
  }
  free(*dst);
  *dst = s;
  return 0;
}

/* v, of a type the field takes and not null, into dst. */
static int store_value(struct json_reader *r, const struct json_field *f,
                       void *dst, const struct json_value *v)
{
  int rc;

  switch (f->kind) {
  case JSON_K_STR:
    return store_str(r, f, dst, v);
  case JSON_K_I64:
    *(int64_t *)dst = v->i;
    return 0;
  case JSON_K_U64:
    if (v->i < 0)
      return json_fail(r, -EBADMSG, f->name, "is negative");
    *(uint64_t *)dst = (uint64_t)v->i;
    return 0;
  case JSON_K_U32:
    if (v->i < 0 || v->i > UINT32_MAX)
      return json_fail(r, -EBADMSG, f->name, "is out of range");
    *(uint32_t *)dst = (uint32_t)v->i;
    return 0;
  case JSON_K_BOOL:
    *(bool *)dst = v->b;
    return 0;
  case JSON_K_CUSTOM:
    rc = f->set(r, f, dst, v);
    if (rc < 0)
      failf(r, rc, "%s is invalid", f->name); /* unless set said why */
    return rc;
  case JSON_K_OBJECT:
  case JSON_K_ARRAY:
  case JSON_K_STRS:
    break; /* containers never get here */
  }
  return json_fail(r, -EINVAL, f->name, "has a kind the reader does not know");
}

void json_strs_free(struct json_strs *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* One element of the JSON_K_STRS array f, appended at dst. */
static int store_element(struct json_reader *r, const struct json_field *f,
                         struct json_strs *dst, const struct json_value *v)
{
  char **grown;

  if (v->type != JSON_STRING)
    return failf(r, -EBADMSG, "%s element is not a string", f->name);
  if (f->max_items && dst->n >= f->max_items)
    return failf(r, -EBADMSG, "%s has more than %zu elements", f->name,
                 f->max_items);
  grown = realloc(dst->v, (dst->n + 1) * sizeof(*dst->v));
  if (!grown)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  dst->v = grown;
  dst->v[dst->n] = NULL;
  int rc = store_str(r, f, &dst->v[dst->n], v);
  if (rc == 0)
    dst->n++;
  return rc;
}

static int on_scalar(struct json_reader *r, const struct json_value *v)
{
  struct frame *fr;
  const struct json_field *f;
  int rc;

  if (r->skip)
    return 1;
  if (r->nframes == 0)
    return go_on(r,
                 failf(r, -EBADMSG, "%s is not an object", r->doc->root->name));
  fr = top(r);
  if (fr->arr && fr->arr->kind == JSON_K_STRS)
    return go_on(r, store_element(r, fr->arr,
                                  (void *)((char *)fr->base + fr->arr->offset),
                                  v));
  if (fr->arr)
    return go_on(r, failf(r, -EBADMSG, "%s is not an object", fr->obj->name));
  f = fr->cur;
  fr->cur = NULL;
  if (!f)
    return 1; /* an unknown key's value */
  if (!(v->type & accepted(f)))
    return f->flags & JSON_LOOSE ? 1 : go_on(r, type_error(r, f));
  if (v->type == JSON_NULL) {
    if (f->kind == JSON_K_STR) {
      char **s = (char **)((char *)fr->base + f->offset);

      free(*s);
      *s = NULL;
    }
    return 1; /* present, not seen */
  }
  rc = store_value(r, f, (char *)fr->base + f->offset, v);
  if (rc == 0)
    fr->seen |= field_bit(fr, f);
  return go_on(r, rc);
}

static int on_null(void *ctx)
{
  struct json_value v = {.type = JSON_NULL};

  return on_scalar(ctx, &v);
}

static int on_bool(void *ctx, int b)
{
  struct json_value v = {.type = JSON_BOOL, .b = b != 0};

  return on_scalar(ctx, &v);
}

static int on_integer(void *ctx, long long i)
{
  struct json_value v = {.type = JSON_INT, .i = i};

  return on_scalar(ctx, &v);
}

static int on_double(void *ctx, double d)
{
  struct json_value v = {.type = JSON_DOUBLE};

  (void)d;
  return on_scalar(ctx, &v);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
  struct json_value v = {.type = JSON_STRING, .s = (const char *)s, .len = len};

  return on_scalar(ctx, &v);
}

static int on_key(void *ctx, const unsigned char *k, size_t len)
{
  struct json_reader *r = ctx;
  struct frame *fr;
  const struct json_field *f;

  if (r->skip)
    return 1;
  fr = top(r); /* yajl gives keys inside objects only */
  f = find_field(fr, k, len);
  fr->cur = f;
  if (!f)
    return 1;
  if ((fr->present & field_bit(fr, f)) && (f->flags & JSON_ONCE))
    return go_on(r, failf(r, -EBADMSG, "duplicate field %s", f->name));
  fr->present |= field_bit(fr, f);
  return 1;
}

static int push(struct json_reader *r, const struct json_object *obj,
                const struct json_field *arr, void *base)
{
  struct frame *fr;

  if (r->nframes == JSON_MAX_FRAMES)
    return json_fail(r, -EINVAL, obj ? obj->name : arr->name,
                     "is nested too deep in the tables");
  if (!arr && obj->nfields > JSON_MAX_FIELDS)
    return json_fail(r, -EINVAL, obj->name, "has too many fields");
  fr = &r->stack[r->nframes++];
  fr->obj = obj;
  fr->arr = arr;
  fr->base = base;
  fr->cur = NULL;
  fr->present = fr->seen = 0;
  for (size_t i = 0; !arr && i < obj->nfields; i++)
    fr->name_len[i] = strlen(obj->fields[i].name);
  return 0;
}

/* An object opens as an element of the known array fr. */
static int open_element(struct json_reader *r, struct frame *fr, bool map)
{
  void *base = NULL;
  int rc;

  if (fr->arr->kind == JSON_K_STRS)
    return failf(r, -EBADMSG, "%s element is not a string", fr->arr->name);
  if (!map)
    return failf(r, -EBADMSG, "%s is not an object", fr->obj->name);
  if (!fr->obj->open)
    return json_fail(r, -EINVAL, fr->obj->name, "has no open hook");
  rc = fr->obj->open(r, fr->base, &base);
  if (rc < 0)
    return rc;
  return push(r, fr->obj, NULL, base);
}

/* A container opens as the value of the field of the last key of fr. */
static int open_value(struct json_reader *r, struct frame *fr, bool map)
{
  const struct json_field *f = fr->cur;
  void *base;
  int rc;

  fr->cur = NULL;
  if (!f || !(accepted(f) & (map ? JSON_OBJECT : JSON_ARRAY))) {
    if (f && !(f->flags & JSON_LOOSE))
      return type_error(r, f);
    r->skip = 1; /* unknown, or loose: the whole value is skipped */
    return 0;
  }
  fr->seen |= field_bit(fr, f);
  if (f->kind == JSON_K_STRS) /* a later value replaces an earlier one */
    json_strs_free((void *)((char *)fr->base + f->offset));
  if (!map)
    return push(r, f->object, f, fr->base);
  base = (char *)fr->base + f->offset;
  if (f->object->open) {
    rc = f->object->open(r, fr->base, &base);
    if (rc < 0)
      return rc;
  }
  return push(r, f->object, NULL, base);
}

static int on_open(struct json_reader *r, bool map)
{
  r->depth++;
  if (r->doc->max_depth && r->depth > r->doc->max_depth)
    return go_on(r, json_fail(r, -EBADMSG, NULL, "nesting too deep"));
  if (r->skip) {
    r->skip++;
    return 1;
  }
  if (r->nframes == 0) {
    if (!map || r->done)
      return go_on(
          r, failf(r, -EBADMSG, "%s is not an object", r->doc->root->name));
    return go_on(r, push(r, r->doc->root, NULL, r->root_base));
  }
  if (top(r)->arr)
    return go_on(r, open_element(r, top(r), map));
  return go_on(r, open_value(r, top(r), map));
}

static int on_start_map(void *ctx)
{
  return on_open(ctx, true);
}

static int on_start_array(void *ctx)
{
  return on_open(ctx, false);
}

static int close_object(struct json_reader *r, const struct frame *fr)
{
  const struct json_object *o = fr->obj;

  for (size_t i = 0; i < o->nfields; i++) {
    if ((o->fields[i].flags & JSON_REQUIRED) && !(fr->seen & (1u << i)))
      return failf(r, -EBADMSG, "%s without %s", o->name, o->fields[i].name);
  }
  return o->close ? o->close(r, fr->base) : 0;
}

static int on_close(void *ctx)
{
  struct json_reader *r = ctx;
  struct frame fr;

  r->depth--;
  if (r->skip) {
    r->skip--;
    return 1;
  }
  fr = r->stack[--r->nframes];
  if (r->nframes == 0)
    r->done = true;
  return fr.arr ? 1 : go_on(r, close_object(r, &fr));
}

static const yajl_callbacks reader_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_integer = on_integer,
    .yajl_double = on_double,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_close,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_close,
};

int json_read(const struct json_doc *doc, const char *buf, size_t len,
              void *base, void *ctx, char *why, size_t why_len)
{
  struct json_reader r = {.doc = doc, .root_base = base, .ctx = ctx};
  yajl_handle y = yajl_alloc(&reader_callbacks, NULL, &r);
  yajl_status st = yajl_status_error;

  if (y) {
    st = yajl_parse(y, (const unsigned char *)(buf ? buf : ""), buf ? len : 0);
    if (st == yajl_status_ok)
      st = yajl_complete_parse(y);
    yajl_free(y);
  } else {
    json_fail(&r, -ENOMEM, NULL, "out of memory");
  }
  if (!r.err && (st != yajl_status_ok || !r.done))
    json_fail(&r, -EBADMSG, NULL, "malformed JSON or invalid UTF-8");
  if (why && why_len)
    snprintf(why, why_len, "%s", r.err ? r.why : "");
  return r.err;
}

int json_set_version(struct json_reader *r, const struct json_field *f,
                     void *dst, const struct json_value *v)
{
  (void)dst;
  if (v->i != (long long)f->max)
    return json_fail(r, -EPROTONOSUPPORT, f->name, "is not supported");
  return 0;
}

/* ---- writer ---- */

yajl_gen json_gen_new(bool pretty, yajl_print_t print, void *print_ctx)
{
  yajl_gen g = yajl_gen_alloc(NULL);

  if (!g)
    return NULL;
  if (!yajl_gen_config(g, yajl_gen_validate_utf8, 1) ||
      (pretty && (!yajl_gen_config(g, yajl_gen_beautify, 1) ||
                  !yajl_gen_config(g, yajl_gen_indent_string, "  "))) ||
      (print &&
       !yajl_gen_config(g, yajl_gen_print_callback, print, print_ctx))) {
    yajl_gen_free(g);
    return NULL;
  }
  return g;
}

yajl_gen_status json_gen_str(yajl_gen g, const char *s)
{
  if (!s)
    return yajl_gen_null(g);
  return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

yajl_gen_status json_gen_text(yajl_gen g, const char *s)
{
  yajl_gen_status gs = json_gen_str(g, s);
  size_t n;
  char *copy;

  if (gs != yajl_gen_invalid_string)
    return gs;
  n = strlen(s);
  copy = strdup(s);
  if (!copy)
    return yajl_gen_generation_complete; /* any error will do */
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)copy[i] >= 0x80)
      copy[i] = '?';
  }
  gs = yajl_gen_string(g, (const unsigned char *)copy, n);
  free(copy);
  return gs;
}

yajl_gen_status json_gen_key_str(yajl_gen g, const char *key, const char *s)
{
  yajl_gen_status gs = json_gen_str(g, key);

  return gs == yajl_gen_status_ok ? json_gen_str(g, s) : gs;
}

yajl_gen_status json_gen_key_int(yajl_gen g, const char *key, long long v)
{
  yajl_gen_status gs = json_gen_str(g, key);

  return gs == yajl_gen_status_ok ? yajl_gen_integer(g, v) : gs;
}

static long long clamp_u64(uint64_t v)
{
  return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)v;
}

yajl_gen_status json_gen_key_u64(yajl_gen g, const char *key, uint64_t v)
{
  return json_gen_key_int(g, key, clamp_u64(v));
}

yajl_gen_status json_gen_key_bool(yajl_gen g, const char *key, bool v)
{
  yajl_gen_status gs = json_gen_str(g, key);

  return gs == yajl_gen_status_ok ? yajl_gen_bool(g, v) : gs;
}

static yajl_gen_status gen_value(yajl_gen g, const struct json_field *f,
                                 const void *src)
{
  switch (f->kind) {
  case JSON_K_STR:
    if (f->flags & JSON_LOSSY)
      return json_gen_text(g, *(char *const *)src);
    return json_gen_str(g, *(char *const *)src);
  case JSON_K_I64:
    return yajl_gen_integer(g, (long long)*(const int64_t *)src);
  case JSON_K_U64:
    return yajl_gen_integer(g, clamp_u64(*(const uint64_t *)src));
  case JSON_K_U32:
    return yajl_gen_integer(g, (long long)*(const uint32_t *)src);
  case JSON_K_BOOL:
    return yajl_gen_bool(g, *(const bool *)src);
  case JSON_K_CUSTOM:
    return f->put(g, f, src);
  case JSON_K_OBJECT:
  case JSON_K_ARRAY:
  case JSON_K_STRS:
    break;
  }
  return yajl_gen_status_ok;
}

static bool writes(const struct json_field *f)
{
  return f->kind != JSON_K_OBJECT && f->kind != JSON_K_ARRAY &&
         f->kind != JSON_K_STRS && (f->kind != JSON_K_CUSTOM || f->put);
}

yajl_gen_status json_gen_fields(yajl_gen g, const struct json_object *o,
                                const void *base)
{
  yajl_gen_status gs = yajl_gen_status_ok;

  for (size_t i = 0; i < o->nfields && gs == yajl_gen_status_ok; i++) {
    const struct json_field *f = &o->fields[i];

    if (!writes(f))
      continue;
    gs = json_gen_str(g, f->name);
    if (gs == yajl_gen_status_ok)
      gs = gen_value(g, f, (const char *)base + f->offset);
  }
  return gs;
}

int json_gen_take(yajl_gen g, char **out, size_t *len)
{
  const unsigned char *buf;
  size_t n;

  *out = NULL;
  *len = 0;
  if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
    return -EINVAL;
  *out = malloc(n + 1);
  if (!*out)
    return -ENOMEM;
  memcpy(*out, buf, n);
  (*out)[n] = '\0';
  *len = n;
  return 0;
}

int json_set_count(struct json_reader *r, const struct json_field *f, void *dst,
                   const struct json_value *v)
{
  if (v->i < 0)
    return json_fail(r, -EBADMSG, f->name, "is negative");
  *(long long *)dst = v->i;
  return 0;
}
