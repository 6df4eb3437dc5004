/* SPDX-License-Identifier: MIT */
/*
 * cert: the certificate-object calls of APIG. URLs through apig.c's
 * endpoint parser, the create/update body through util/json.h's writer
 * into one buffer of its final bound (it holds a private key), answers
 * through util/json.h's table-driven reader. No I/O.
 */
#include "cert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>

#include "json.h"

#define CERT_PREFIX "cb_"
#define CERT_MIN_NAME 4
#define CERT_MAX_FILTER 255

/* ---- the object name ---------------------------------------------------- */

static bool ascii_letter(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool name_char(unsigned char c)
{
  return ascii_letter(c) || (c >= '0' && c <= '9') || c == '_';
}

static bool hex_digit(unsigned char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* Bytes of the character at p: a whole UTF-8 sequence, else one byte. */
static size_t char_len(const unsigned char *p)
{
  size_t n = p[0] < 0x80             ? 1
             : (p[0] & 0xE0) == 0xC0 ? 2
             : (p[0] & 0xF0) == 0xE0 ? 3
             : (p[0] & 0xF8) == 0xF0 ? 4
                                     : 1;

  for (size_t i = 1; i < n; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 1; /* cut short (a NUL included): a stray byte */
  return n;
}

bool apig_cert_name_valid(const char *name)
{
  size_t n = name ? strlen(name) : 0;

  if (n < CERT_MIN_NAME || n > APIG_CERT_NAME_MAX ||
      !ascii_letter((unsigned char)name[0]))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!name_char((unsigned char)name[i]))
      return false;
  return true;
}

int apig_cert_name(const char *yaml_name, const char *sha256_hex,
                   char out[APIG_CERT_NAME_MAX + 1])
{
  /* what is left of 50 for the YAML name: "cb_" NAME "_" HASH */
  const size_t room =
      APIG_CERT_NAME_MAX - strlen(CERT_PREFIX) - 1 - APIG_CERT_NAME_HASH;
  const unsigned char *p = (const unsigned char *)yaml_name;
  size_t w = 0;

  out[0] = '\0';
  if (!yaml_name || !sha256_hex)
    return -EINVAL;
  for (size_t i = 0; i < APIG_CERT_NAME_HASH; i++)
    if (!hex_digit((unsigned char)sha256_hex[i]))
      return -EINVAL; /* a NUL stops here too */
  memcpy(out, CERT_PREFIX, strlen(CERT_PREFIX));
  w = strlen(CERT_PREFIX);
  for (size_t chars = 0; *p && chars < room; chars++) {
    size_t n = char_len(p);

    out[w++] = n == 1 && name_char(*p) ? (char)*p : '_';
    p += n;
  }
  out[w++] = '_';
  for (size_t i = 0; i < APIG_CERT_NAME_HASH; i++) {
    char c = sha256_hex[i];

    out[w++] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
  }
  out[w] = '\0';
  return 0;
}

/* ---- URLs --------------------------------------------------------------- */

const char *apig_op_method(enum apig_op op)
{
  switch (op) {
  case APIG_OP_LIST:
  case APIG_OP_CERT_SHOW:
  case APIG_OP_CERT_LIST:
    return "GET";
  case APIG_OP_ATTACH:
  case APIG_OP_DETACH:
  case APIG_OP_TOKEN:
  case APIG_OP_CERT_CREATE:
    return "POST";
  case APIG_OP_CERT_UPDATE:
    return "PUT";
  case APIG_OP_CERT_DELETE:
    return "DELETE";
  }
  return "GET";
}

int apig_cert_url(const struct apig_endpoint *ep, const char *project_id,
                  enum apig_op op, const char *cert_id, struct apig_url *out)
{
  char rest[256];
  bool one = op == APIG_OP_CERT_SHOW || op == APIG_OP_CERT_UPDATE ||
             op == APIG_OP_CERT_DELETE;

  memset(out, 0, sizeof *out);
  if (!apig_id_valid(project_id) || (op != APIG_OP_CERT_CREATE && !one) ||
      (one && !apig_id_valid(cert_id)) || (!one && cert_id))
    return -EINVAL;
  if (one)
    snprintf(rest, sizeof rest, "/v2/%s/apigw/certificates/%s", project_id,
             cert_id);
  else
    snprintf(rest, sizeof rest, "/v2/%s/apigw/certificates", project_id);
  return apig_url_build(ep, rest, "", out);
}

static bool filter_ok(const char *s)
{
  size_t n = strlen(s);

  if (n == 0 || n > CERT_MAX_FILTER)
    return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return false;
  return true;
}

/* "&key=value" percent-encoded (the signer's unreserved set) onto q. */
static int query_add(char *q, size_t q_len, const char *key, const char *value)
{
  if (!value)
    return 0;
  if (!filter_ok(value))
    return -EINVAL;
  char *enc = curl_easy_escape(NULL, value, 0);
  if (!enc)
    return -ENOMEM;
  size_t used = strlen(q);
  int n = snprintf(q + used, q_len - used, "&%s=%s", key, enc);
  curl_free(enc);
  return n < 0 || (size_t)n >= q_len - used ? -EINVAL : 0;
}

int apig_cert_url_list(const struct apig_endpoint *ep, const char *project_id,
                       const struct apig_cert_query *q, struct apig_url *out)
{
  /* three filters of 255 bytes, each at most 3x when encoded */
  char query[3 * 3 * CERT_MAX_FILTER + 128];
  char rest[128];
  int err;

  memset(out, 0, sizeof *out);
  if (!q || !apig_id_valid(project_id) || q->limit < 1 ||
      q->limit > APIG_LIST_LIMIT || q->offset < 0 ||
      (q->instance_id && !apig_id_valid(q->instance_id)))
    return -EINVAL;
  snprintf(query, sizeof query, "limit=%ld&offset=%ld", q->limit, q->offset);
  err = query_add(query, sizeof query, "name", q->name);
  if (!err)
    err = query_add(query, sizeof query, "common_name", q->common_name);
  if (!err)
    err = query_add(query, sizeof query, "instance_id", q->instance_id);
  if (err)
    return err;
  snprintf(rest, sizeof rest, "/v2/%s/apigw/certificates", project_id);
  return apig_url_build(ep, rest, query, out);
}

/* ---- the create/update body --------------------------------------------- */

/* The body is printed straight into one buffer sized for the worst case,
 * never grown: a grown buffer would leave copies of the key in freed
 * memory. */
struct sink {
  char *buf;
  size_t len, cap;
  bool overflow;
};

static void sink_print(void *ctx, const char *s, size_t n)
{
  struct sink *k = ctx;

  if (k->overflow || n >= k->cap - k->len) {
    k->overflow = true; /* cannot happen with the bound below */
    return;
  }
  memcpy(k->buf + k->len, s, n);
  k->len += n;
}

static bool text_ok(const char *s, size_t n)
{
  return s && n > 0 && !memchr(s, '\0', n);
}

static bool form_ok(const struct apig_cert_form *f)
{
  if (!apig_cert_name_valid(f->name) || !text_ok(f->chain_pem, f->chain_len) ||
      !text_ok(f->key_pem, f->key_len))
    return false;
  if (f->type == APIG_CERT_INSTANCE)
    return apig_id_valid(f->instance_id);
  return f->type == APIG_CERT_GLOBAL && !f->instance_id;
}

static yajl_gen_status gen_text(yajl_gen g, const char *key, const char *s,
                                size_t n)
{
  yajl_gen_status st = json_gen_str(g, key);

  return st == yajl_gen_status_ok
             ? yajl_gen_string(g, (const unsigned char *)s, n)
             : st;
}

static yajl_gen_status gen_form(yajl_gen g, const struct apig_cert_form *f)
{
  bool inst = f->type == APIG_CERT_INSTANCE;
  yajl_gen_status st = yajl_gen_map_open(g);

  if (st == yajl_gen_status_ok)
    st = json_gen_key_str(g, "name", f->name);
  if (st == yajl_gen_status_ok)
    st = gen_text(g, "cert_content", f->chain_pem, f->chain_len);
  if (st == yajl_gen_status_ok)
    st = gen_text(g, "private_key", f->key_pem, f->key_len);
  if (st == yajl_gen_status_ok)
    st = json_gen_key_str(g, "type", inst ? "instance" : "global");
  if (st == yajl_gen_status_ok && inst)
    st = json_gen_key_str(g, "instance_id", f->instance_id);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_map_close(g);
  return st;
}

int apig_cert_body(const struct apig_cert_form *f, char **body, size_t *len)
{
  struct sink k = {0};
  int err = -EINVAL;

  *body = NULL;
  *len = 0;
  if (!f || !form_ok(f))
    return -EINVAL;
  /* yajl writes a byte as at most 6 ("\u001f"); keys and punctuation are
   * a few dozen bytes */
  size_t texts = strlen(f->name) + f->chain_len + f->key_len +
                 (f->instance_id ? strlen(f->instance_id) : 0);
  if (texts > (SIZE_MAX - 256) / 6)
    return -EINVAL;
  k.cap = 6 * texts + 256;
  k.buf = malloc(k.cap);
  if (!k.buf)
    return -ENOMEM;
  yajl_gen g = json_gen_new(false, sink_print, &k);
  if (!g) {
    free(k.buf);
    return -ENOMEM;
  }
  if (gen_form(g, f) == yajl_gen_status_ok && !k.overflow) {
    k.buf[k.len] = '\0';
    *body = k.buf;
    *len = k.len;
    err = 0;
  } else {
    OPENSSL_cleanse(k.buf, k.len); /* part of the key may be there */
    free(k.buf);
  }
  yajl_gen_free(g);
  return err;
}

/* ---- answers ------------------------------------------------------------ */

/* An object being read: the result, and the fields that are converted
 * when it closes. */
struct cert_in {
  struct apig_cert c;
  struct json_strs san;
  char *not_before, *not_after;
};

static void cert_in_free(struct cert_in *in)
{
  apig_cert_free(&in->c);
  json_strs_free(&in->san);
  free(in->not_before);
  free(in->not_after);
  memset(in, 0, sizeof *in);
}

void apig_cert_free(struct apig_cert *c)
{
  if (!c)
    return;
  free(c->id);
  free(c->name);
  free(c->type);
  free(c->instance_id);
  free(c->project_id);
  free(c->common_name);
  for (size_t i = 0; i < c->nsan; i++)
    free(c->san[i]);
  free(c->san);
  free(c->serial_number);
  free(c->signature_algorithm);
  free(c->algorithm_type);
  memset(c, 0, sizeof *c);
}

void apig_cert_page_free(struct apig_cert_page *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->n; i++)
    apig_cert_free(&p->items[i]);
  free(p->items);
  memset(p, 0, sizeof *p);
  p->total = p->size = -1;
}

/* A time we cannot read is unknown (0), not an error: the format is not
 * published, and an unknown time only means "not proven equal". */
static int64_t time_or_zero(const char *s)
{
  int64_t t = 0;

  return s && apig_cert_time(s, &t) == 0 ? t : 0;
}

/* The object closed: check the id, convert the times, move the SANs. */
static int cert_close(struct json_reader *r, void *base)
{
  struct cert_in *in = base;

  if (!apig_id_valid(in->c.id))
    return json_fail(r, -EBADMSG, "id", "is not a valid id");
  in->c.not_before = time_or_zero(in->not_before);
  in->c.not_after = time_or_zero(in->not_after);
  free(in->not_before);
  free(in->not_after);
  in->not_before = in->not_after = NULL;
  in->c.san = in->san.v;
  in->c.nsan = in->san.n;
  in->san.v = NULL;
  in->san.n = 0;
  return 0;
}

/* serial_number: a string, or an integer kept as its digits. */
static int set_serial(struct json_reader *r, const struct json_field *f,
                      void *dst, const struct json_value *v)
{
  char **s = dst;
  char *copy;

  if (v->type == JSON_INT) {
    if (asprintf(&copy, "%lld", v->i) < 0)
      copy = NULL;
  } else {
    if (v->len == 0 || v->len > f->max || memchr(v->s, '\0', v->len))
      return json_fail(r, -EBADMSG, f->name, "is empty or too long");
    copy = strndup(v->s, v->len);
  }
  if (!copy)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  free(*s);
  *s = copy;
  return 0;
}

#define STR_FIELD(key, member, extra, maxlen)                                  \
  {                                                                            \
    .name = key, .kind = JSON_K_STR,                                           \
    .offset = offsetof(struct cert_in, member),                                \
    .flags = JSON_ONCE | JSON_NULLABLE | (extra), .max = (maxlen)              \
  }

/* Every field we use is refused when given twice: an answer that says two
 * things about one object is not read as either. */
static const struct json_field cert_fields[] = {
    {.name = "id",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_in, c.id),
     .flags = JSON_REQUIRED | JSON_ONCE | JSON_NONEMPTY,
     .max = 64},
    STR_FIELD("name", c.name, 0, 255),
    STR_FIELD("type", c.type, 0, 32),
    STR_FIELD("instance_id", c.instance_id, 0, 64),
    STR_FIELD("project_id", c.project_id, 0, 64),
    STR_FIELD("common_name", c.common_name, 0, 1024),
    {.name = "san",
     .kind = JSON_K_STRS,
     .offset = offsetof(struct cert_in, san),
     .flags = JSON_ONCE | JSON_NULLABLE | JSON_LOWER,
     .max = 1024,
     .max_items = APIG_MAX_CERT_SAN},
    {.name = "serial_number",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct cert_in, c.serial_number),
     .flags = JSON_ONCE | JSON_NULLABLE,
     .max = 128,
     .accept = JSON_STRING | JSON_INT,
     .set = set_serial},
    STR_FIELD("signature_algorithm", c.signature_algorithm, 0, 128),
    STR_FIELD("algorithm_type", c.algorithm_type, 0, 32),
    STR_FIELD("not_before", not_before, 0, 64),
    STR_FIELD("not_after", not_after, 0, 64),
    {.name = "is_has_trusted_root_ca",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct cert_in, c.has_trusted_root_ca),
     .flags = JSON_ONCE | JSON_NULLABLE},
};
#undef STR_FIELD

static const struct json_doc show_doc = {
    .root = &(const struct json_object){.name = "response",
                                        .fields = cert_fields,
                                        .nfields = sizeof cert_fields /
                                                   sizeof *cert_fields,
                                        .close = cert_close},
    .max_depth = APIG_MAX_DEPTH,
};

static void set_why(char *why, size_t why_len, const char *text)
{
  if (why && why_len)
    snprintf(why, why_len, "%s", text);
}

int apig_cert_parse(const char *body, size_t len, struct apig_cert *out,
                    char *why, size_t why_len)
{
  struct cert_in in = {0};

  memset(out, 0, sizeof *out);
  set_why(why, why_len, "");
  if (len > APIG_MAX_CERT_BODY) {
    set_why(why, why_len, "response too large");
    return -E2BIG;
  }
  int err = json_read(&show_doc, body, body ? len : 0, &in, NULL, why, why_len);
  if (err) {
    cert_in_free(&in);
    return err;
  }
  *out = in.c;
  return 0;
}

/* ---- the list ----------------------------------------------------------- */

struct list_ctx {
  struct apig_cert_page *page;
  size_t cap;
  struct cert_in cur;
};

#define CERT_STR_(x) #x
#define CERT_STR(x) CERT_STR_(x)

static int item_open(struct json_reader *r, void *parent, void **base)
{
  struct list_ctx *c = json_ctx(r);

  (void)parent;
  if (c->page->n >= APIG_LIST_LIMIT)
    return json_fail(r, -E2BIG, NULL,
                     "more certificates in one page than the limit asked "
                     "for (" CERT_STR(APIG_LIST_LIMIT) ")");
  cert_in_free(&c->cur);
  *base = &c->cur;
  return 0;
}

static int item_close(struct json_reader *r, void *base)
{
  struct list_ctx *c = json_ctx(r);
  struct apig_cert_page *p = c->page;
  int err = cert_close(r, base);

  if (err)
    return err;
  if (p->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct apig_cert *grown = realloc(p->items, cap * sizeof *grown);
    if (!grown)
      return json_fail(r, -ENOMEM, NULL, "out of memory");
    p->items = grown;
    c->cap = cap;
  }
  p->items[p->n++] = c->cur.c;
  memset(&c->cur, 0, sizeof c->cur);
  return 0;
}

static const struct json_object list_item = {
    .name = "certs element",
    .fields = cert_fields,
    .nfields = sizeof cert_fields / sizeof *cert_fields,
    .open = item_open,
    .close = item_close,
};

/* "total" and "size": a count, or null for "not given" (stays -1). */
/* Absent certs is an error: never read "no field" as "no certificate". */
static const struct json_field page_fields[] = {
    {.name = "total",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct apig_cert_page, total),
     .flags = JSON_ONCE | JSON_NULLABLE,
     .accept = JSON_INT,
     .set = json_set_count},
    {.name = "size",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct apig_cert_page, size),
     .flags = JSON_ONCE | JSON_NULLABLE,
     .accept = JSON_INT,
     .set = json_set_count},
    {.name = "certs",
     .kind = JSON_K_ARRAY,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .object = &list_item},
};

static const struct json_doc list_doc = {
    .root = &(const struct json_object){.name = "response",
                                        .fields = page_fields,
                                        .nfields = sizeof page_fields /
                                                   sizeof *page_fields},
    .max_depth = APIG_MAX_DEPTH,
};

int apig_cert_parse_list(const char *body, size_t len,
                         struct apig_cert_page *out, char *why, size_t why_len)
{
  struct list_ctx c = {.page = out};

  memset(out, 0, sizeof *out);
  out->total = out->size = -1;
  set_why(why, why_len, "");
  if (len > APIG_MAX_CERT_LIST_BODY) {
    set_why(why, why_len, "response too large");
    return -E2BIG;
  }
  int err = json_read(&list_doc, body, body ? len : 0, out, &c, why, why_len);
  cert_in_free(&c.cur);
  if (err)
    apig_cert_page_free(out);
  return err;
}

/* ---- times and serials -------------------------------------------------- */

/* n decimal digits at *p into *v. */
static bool take_digits(const char **p, int n, int *v)
{
  *v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9')
      return false;
    *v = *v * 10 + (c - '0');
  }
  *p += n;
  return true;
}

static bool take_char(const char **p, const char *any)
{
  if (**p == '\0' || !strchr(any, **p))
    return false;
  (*p)++;
  return true;
}

/* "Z", "+hh:mm", "-hh:mm" or nothing, into seconds east of UTC. */
static bool take_zone(const char **p, long *east)
{
  int hh, mm, sign;

  *east = 0;
  if (**p == '\0')
    return true;
  if (take_char(p, "Z"))
    return **p == '\0';
  sign = **p == '-' ? -1 : 1;
  if (!take_char(p, "+-") || !take_digits(p, 2, &hh) || !take_char(p, ":") ||
      !take_digits(p, 2, &mm) || hh > 23 || mm > 59 || **p != '\0')
    return false;
  *east = sign * (hh * 3600L + mm * 60L);
  return true;
}

int apig_cert_time(const char *s, int64_t *out)
{
  struct tm tm = {0}, back;
  const char *p = s;
  int y, mo, d, h, mi, se;
  long east;

  if (!s || !take_digits(&p, 4, &y) || !take_char(&p, "-") ||
      !take_digits(&p, 2, &mo) || !take_char(&p, "-") ||
      !take_digits(&p, 2, &d) || !take_char(&p, "T ") ||
      !take_digits(&p, 2, &h) || !take_char(&p, ":") ||
      !take_digits(&p, 2, &mi) || !take_char(&p, ":") ||
      !take_digits(&p, 2, &se))
    return -EINVAL;
  if (take_char(&p, ".")) {
    if (*p < '0' || *p > '9')
      return -EINVAL;
    while (*p >= '0' && *p <= '9')
      p++; /* certificates count whole seconds */
  }
  if (!take_zone(&p, &east) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
      mi > 59 || se > 60)
    return -EINVAL;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  time_t t = timegm(&tm);
  /* timegm moves "02-30" to March: such a date is not a date */
  if (!gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
    return -EINVAL;
  *out = (int64_t)t - east;
  return 0;
}

/* Hex digits without ':' and leading zeros, uppercase, into out; false
 * when s holds anything else or no digit at all. */
static bool hex_norm(const char *s, char *out, size_t out_len)
{
  size_t w = 0;
  bool digit = false;

  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    s += 2;
  for (; *s; s++) {
    if (*s == ':')
      continue;
    if (!hex_digit((unsigned char)*s))
      return false;
    digit = true;
    if (w == 0 && *s == '0')
      continue;
    if (w + 1 >= out_len)
      return false;
    out[w++] = *s >= 'a' ? (char)(*s - 'a' + 'A') : *s;
  }
  out[w] = '\0';
  return digit;
}

bool apig_cert_serial_matches(const char *api_serial, const char *serial_dec,
                              const char *serial_hex)
{
  char a[160], b[160];

  if (!api_serial || !*api_serial)
    return false;
  if (serial_dec && strcmp(api_serial, serial_dec) == 0)
    return true;
  return serial_hex && hex_norm(api_serial, a, sizeof a) &&
         hex_norm(serial_hex, b, sizeof b) && strcmp(a, b) == 0;
}

/* ---- what an error means ------------------------------------------------ */

enum apig_cert_problem apig_cert_problem(enum apig_op op, long status,
                                         const char *error_code)
{
  static const struct {
    const char *num;
    enum apig_cert_problem p;
  } content[] = {
      {"2101", APIG_CERT_KEY_MISMATCH},  {"2102", APIG_CERT_EXPIRED},
      {"2103", APIG_CERT_NAMES_MISS},    {"2104", APIG_CERT_CHAIN_ORDER},
      {"2105", APIG_CERT_KEY_ENCRYPTED}, {"2106", APIG_CERT_INVALID},
  };
  bool write = op == APIG_OP_CERT_CREATE || op == APIG_OP_CERT_UPDATE;

  if (status < 400)
    return APIG_CERT_OK_OR_OTHER;
  for (size_t i = 0; i < sizeof content / sizeof *content; i++)
    if (apig_code_is(error_code, content[i].num))
      return content[i].p;
  if (write && apig_code_is(error_code, "2012"))
    return APIG_CERT_BAD_PARAM;
  if (op == APIG_OP_CERT_CREATE && apig_code_is(error_code, "3199"))
    return APIG_CERT_QUOTA;
  if (op == APIG_OP_CERT_DELETE && apig_code_is(error_code, "3400"))
    return APIG_CERT_IN_USE;
  if (apig_code_is(error_code, "3021") || apig_code_is(error_code, "3025"))
    return APIG_CERT_NOT_FOUND;
  if (apig_code_is(error_code, "1115"))
    return APIG_CERT_FORBIDDEN;
  return APIG_CERT_OK_OR_OTHER;
}

const char *apig_cert_problem_text(enum apig_cert_problem p)
{
  switch (p) {
  case APIG_CERT_OK_OR_OTHER:
    return "";
  case APIG_CERT_KEY_MISMATCH:
    return "the private key does not match the certificate";
  case APIG_CERT_EXPIRED:
    return "the certificate has expired";
  case APIG_CERT_NAMES_MISS:
    return "the certificate's names do not cover the domain";
  case APIG_CERT_CHAIN_ORDER:
    return "the chain is not in order (leaf first, then each issuer)";
  case APIG_CERT_KEY_ENCRYPTED:
    return "the private key is encrypted";
  case APIG_CERT_INVALID:
    return "not a valid PEM certificate or private key";
  case APIG_CERT_BAD_PARAM:
    return "APIG refused a field of the certificate (see its message)";
  case APIG_CERT_QUOTA:
    return "the project's certificate quota is full";
  case APIG_CERT_IN_USE:
    return "the certificate object still has domains bound";
  case APIG_CERT_NOT_FOUND:
    return "the certificate object does not exist";
  case APIG_CERT_FORBIDDEN:
    return "no permission on this certificate object";
  }
  return "";
}
