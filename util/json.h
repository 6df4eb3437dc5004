/* SPDX-License-Identifier: MIT */
/*
 * json: the one JSON reader and the one set of writer helpers of certbind,
 * both on yajl.
 *
 * READER. json_read() runs yajl's streaming parser over a buffer and puts
 * the values straight into the caller's structs, as told by field tables:
 * one struct json_object per kind of JSON object (its name for messages,
 * one struct json_field row per key it knows, optional open/close hooks),
 * one struct json_doc per document (its top-level object and depth cap).
 * No JSON tree is built, so a file of 10^5 entries costs its structs only.
 *
 * The contract, the same for every document:
 * - The top-level value must be an object (else "<root> is not an object").
 * - A key the table does not know is skipped with its whole value,
 *   whatever it holds and however deep (under the depth cap), at every
 *   level: later versions of a file or an API may add fields.
 * - A known key with a value of another type is an error naming the field
 *   ("total is not an integer"); with JSON_LOOSE the value is skipped
 *   instead, as if the key were unknown.
 * - null is a value of its own type: accepted only with JSON_NULLABLE (a
 *   string field becomes NULL, any other keeps what it held). A null never
 *   satisfies JSON_REQUIRED.
 * - A key given twice: the later value replaces the earlier one, unless
 *   the field has JSON_ONCE ("duplicate field NAME").
 * - JSON_REQUIRED fields missing when an object closes: "<object> without
 *   NAME".
 * - Containers (the top-level object included, skipped ones too) nested
 *   deeper than doc->max_depth: "nesting too deep" (0: no cap).
 * - Malformed JSON, invalid UTF-8, trailing text, comments, an empty
 *   buffer: -EBADMSG "malformed JSON or invalid UTF-8". An integer beyond
 *   long long is malformed too (yajl refuses it).
 * - Strings (JSON_K_STR) never hold a NUL byte ("NAME contains a NUL
 *   byte"); they are malloc'd copies owned by the caller's struct.
 * - Errors are found in reading order, and the first one ends the parse
 *   (what follows it is never read): json_read returns its negative errno
 *   (-EBADMSG for the checks above, or what a hook returned) and why
 *   receives one line that names only our own keys, never input bytes.
 *   What the structs received before the error stays there: the caller
 *   frees it (typically with the same free function as on success).
 * - Tables nested more than 8 deep or with more than JSON_MAX_FIELDS rows,
 *   and an array element object without an open hook, are bugs of ours:
 *   -EINVAL.
 *
 * WRITER. A yajl_gen made by json_gen_new() (UTF-8 validated, compact or
 * indented by two spaces) and helpers that take C strings and "key": value
 * pairs; json_gen_fields() writes the scalar fields of a table, so one
 * table describes a file both ways.
 */
#ifndef CERTBIND_JSON_H
#define CERTBIND_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_gen.h>

/* The type of a JSON value, as a bit (struct json_field.accept). */
enum json_type {
  JSON_NULL = 1u << 0,
  JSON_BOOL = 1u << 1,
  JSON_INT = 1u << 2,    /* an integer (fits a long long) */
  JSON_DOUBLE = 1u << 3, /* any other number */
  JSON_STRING = 1u << 4,
  JSON_OBJECT = 1u << 5,
  JSON_ARRAY = 1u << 6,
};

/* A scalar as a custom setter sees it. s points into yajl's buffer: valid
 * during the call only, not NUL-terminated, UTF-8 checked by yajl. */
struct json_value {
  enum json_type type;
  bool b;      /* JSON_BOOL */
  long long i; /* JSON_INT */
  const char *s;
  size_t len; /* JSON_STRING */
};

/* Where a field's value goes (at base + offset of its object's struct). */
enum json_kind {
  JSON_K_STR,    /* char *: a malloc'd copy, the old value freed */
  JSON_K_I64,    /* int64_t */
  JSON_K_U64,    /* uint64_t: a negative value is an error */
  JSON_K_U32,    /* uint32_t: outside 0..UINT32_MAX is an error */
  JSON_K_BOOL,   /* bool */
  JSON_K_OBJECT, /* an object, read with .object into base + offset */
  JSON_K_ARRAY,  /* an array of objects, each read with .object into the
                    struct its open hook gives */
  JSON_K_CUSTOM, /* .set stores a scalar of a type in .accept */
  JSON_K_STRS,   /* an array of strings into a struct json_strs: each
                    element checked as a JSON_K_STR value (flags, .max);
                    .max_items caps their number; another element type,
                    null included, is an error. Never written by
                    json_gen_fields. */
};

/* The value of a JSON_K_STRS field: n malloc'd strings, owned by the
 * caller (json_strs_free), appended to what it holds. */
struct json_strs {
  char **v;
  size_t n;
};

void json_strs_free(struct json_strs *s);

/* struct json_field.flags */
#define JSON_REQUIRED (1u << 0) /* must be given, and not as null */
#define JSON_ONCE (1u << 1)     /* a second occurrence is an error */
#define JSON_NULLABLE (1u << 2) /* null accepted (see above) */
#define JSON_NONEMPTY (1u << 3) /* STR: "" is an error */
#define JSON_LOWER (1u << 4)    /* STR: ASCII letters stored lowercase */
#define JSON_LOOSE (1u << 5)    /* another type is skipped, not an error */
#define JSON_LOSSY (1u << 6)    /* writer, STR: see json_gen_text */

/* A table holds at most this many fields. */
#define JSON_MAX_FIELDS 32

struct json_reader; /* one parse in progress (opaque) */
struct json_field;
struct json_object;

/* Store v (a type in f->accept, never null: null is handled as for any
 * field) at dst = base + f->offset. 0, or a negative errno, best after
 * json_fail() to say why (else the reason is "NAME is invalid"). */
typedef int (*json_set_fn)(struct json_reader *r, const struct json_field *f,
                           void *dst, const struct json_value *v);
/* Write the value at src = base + f->offset (json_gen_fields). */
typedef yajl_gen_status (*json_put_fn)(yajl_gen g, const struct json_field *f,
                                       const void *src);

struct json_field {
  const char *name; /* the key; in messages too */
  enum json_kind kind;
  size_t offset;  /* of the value in the object's struct */
  unsigned flags; /* JSON_REQUIRED | JSON_ONCE | ... */
  /* STR: longest length accepted, in bytes (0: no limit). CUSTOM: the
   * setter's parameter (json_set_version: the one version read). */
  size_t max;
  size_t max_items;                 /* STRS: most elements (0: no limit) */
  unsigned accept;                  /* CUSTOM: enum json_type bits */
  json_set_fn set;                  /* CUSTOM */
  json_put_fn put;                  /* CUSTOM, for json_gen_fields */
  const struct json_object *object; /* OBJECT, ARRAY */
};

struct json_object {
  /* In messages: "response", "pass", "bound_domains element". */
  const char *name;
  const struct json_field *fields;
  size_t nfields; /* at most JSON_MAX_FIELDS */
  /* Optional. An element of a JSON_K_ARRAY opens: *base gets the struct
   * its fields go into (parent: the struct of the object that holds the
   * array). Required for array elements; for a JSON_K_OBJECT it replaces
   * base + offset. 0 or a negative errno. */
  int (*open)(struct json_reader *r, void *parent, void **base);
  /* Optional. The object closed, its required fields checked. */
  int (*close)(struct json_reader *r, void *base);
};

struct json_doc {
  const struct json_object *root;
  unsigned max_depth; /* containers nested deeper are an error; 0: no cap */
};

/* Parse buf[0..len) as doc into base (the root object's struct). ctx is
 * for the hooks (json_ctx). why (may be NULL) gets "" or the reason of the
 * error. 0 or a negative errno (see the contract above; -ENOMEM). */
int json_read(const struct json_doc *doc, const char *buf, size_t len,
              void *base, void *ctx, char *why, size_t why_len);

/* The ctx given to json_read. */
void *json_ctx(const struct json_reader *r);

/* Record the error that ends the parse (the first one counts) and return
 * err. The reason is "FIELD WHAT", or WHAT when field is NULL. Both must
 * be our own text, never input bytes. */
int json_fail(struct json_reader *r, int err, const char *field,
              const char *what);

/* A JSON_K_CUSTOM setter for a count (a page's total or size): a
 * non-negative integer stored as long long at the field's offset. */
int json_set_count(struct json_reader *r, const struct json_field *f, void *dst,
                   const struct json_value *v);

/* A CUSTOM setter for a file's "version" (accept JSON_INT): f->max is the
 * version this reader knows; any other number is -EPROTONOSUPPORT. */
int json_set_version(struct json_reader *r, const struct json_field *f,
                     void *dst, const struct json_value *v);

/* ---- writer ---- */

/* A generator that refuses strings which are not UTF-8; pretty: one value
 * a line, indented by two spaces. print (may be NULL: yajl's own buffer,
 * see json_gen_take) receives the text. NULL when out of memory. Free it
 * with yajl_gen_free. */
yajl_gen json_gen_new(bool pretty, yajl_print_t print, void *print_ctx);

/* A C string; NULL is written as null. */
yajl_gen_status json_gen_str(yajl_gen g, const char *s);
/* The same, except that a string which is not valid UTF-8 (a server's
 * message) is written with every byte >= 0x80 as '?' instead of failing:
 * it must not make a whole file unwritable. */
yajl_gen_status json_gen_text(yajl_gen g, const char *s);
/* "key": value */
yajl_gen_status json_gen_key_str(yajl_gen g, const char *key, const char *s);
yajl_gen_status json_gen_key_int(yajl_gen g, const char *key, long long v);
/* Above LLONG_MAX written as LLONG_MAX (the reader's integers are long
 * long). */
yajl_gen_status json_gen_key_u64(yajl_gen g, const char *key, uint64_t v);
yajl_gen_status json_gen_key_bool(yajl_gen g, const char *key, bool v);

/* The scalar fields of o at base, in table order, as "key": value pairs
 * (without the braces: the caller may add pairs). STR with JSON_LOSSY goes
 * through json_gen_text, other STR through json_gen_str; U64 is clamped as
 * in json_gen_key_u64; CUSTOM through f->put (skipped when NULL); OBJECT
 * and ARRAY fields are the caller's to write. */
yajl_gen_status json_gen_fields(yajl_gen g, const struct json_object *o,
                                const void *base);

/* yajl's buffer (json_gen_new with print NULL) as a new NUL-terminated
 * string in *out (free() it), its length in *len: 0, -EINVAL (the
 * generator failed) or -ENOMEM. */
int json_gen_take(yajl_gen g, char **out, size_t *len);

#endif
