/* SPDX-License-Identifier: MIT */
/*
 * apig: URLs, bodies, response parsing and outcome classes for the APIG
 * certificate-binding calls. Responses are read with util/json.h's
 * streaming reader (field tables below), bodies written with its yajl_gen
 * helpers; curl's URL API splits the configured endpoint. No I/O.
 */
#include "apig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <yajl/yajl_gen.h>

#include "json.h"

#define APIG_MAX_ID 64
#define APIG_MAX_DOMAIN 253

/* ---- URLs --------------------------------------------------------------- */

bool apig_id_valid(const char *s)
{
  size_t n = s ? strlen(s) : 0;

  if (n == 0 || n > APIG_MAX_ID)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-')
      return false;
  return true;
}

void apig_url_free(struct apig_url *u)
{
  if (!u)
    return;
  free(u->url);
  free(u->path);
  free(u->query);
  free(u->host);
  memset(u, 0, sizeof *u);
}

static bool part_absent(CURLU *u, CURLUPart what)
{
  char *p = NULL;
  CURLUcode rc = curl_url_get(u, what, &p, 0);

  curl_free(p);
  return rc != CURLUE_OK;
}

static int endpoint_host(CURLU *u, struct apig_endpoint *e)
{
  char *host = NULL, *port = NULL;
  int err = 0;

  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    curl_free(host);
    return -EINVAL;
  }
  /* curl leaves the default port out of Host: (and an absent one too). */
  if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
      strcmp(port, "443") != 0) {
    if (asprintf(&e->host, "%s:%s", host, port) < 0)
      e->host = NULL;
  } else {
    e->host = strdup(host);
  }
  if (!e->host)
    err = -ENOMEM;
  curl_free(host);
  curl_free(port);
  return err;
}

static int endpoint_base(CURLU *u, struct apig_endpoint *e)
{
  char *path = NULL;

  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
    return -EINVAL;
  size_t n = strlen(path);
  while (n > 0 && path[n - 1] == '/')
    n--; /* "https://h/" must not give "//v2" */
  e->base = strndup(path, n);
  curl_free(path);
  return e->base ? 0 : -ENOMEM;
}

void apig_endpoint_free(struct apig_endpoint *e)
{
  if (!e)
    return;
  free(e->host);
  free(e->base);
  memset(e, 0, sizeof *e);
}

/* https only; no user info, query or fragment in a configured endpoint. */
int apig_endpoint_parse(const char *endpoint, struct apig_endpoint *e)
{
  char *scheme = NULL;
  int err = -EINVAL;
  CURLU *u = curl_url();

  memset(e, 0, sizeof *e);
  if (!u)
    return -ENOMEM;
  if (!endpoint || curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK)
    goto out;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      strcasecmp(scheme, "https") != 0)
    goto out;
  if (!part_absent(u, CURLUPART_USER) || !part_absent(u, CURLUPART_QUERY) ||
      !part_absent(u, CURLUPART_FRAGMENT))
    goto out;
  err = endpoint_host(u, e);
  if (!err)
    err = endpoint_base(u, e);
  if (!err) {
    e->host_len = strlen(e->host);
    e->base_len = strlen(e->base);
  }
out:
  curl_free(scheme);
  curl_url_cleanup(u);
  if (err)
    apig_endpoint_free(e);
  return err;
}

/* Concatenation by lengths: this runs for every request (printf's engine
 * cost more than the rest of the URL's making). */
static char *concat(const char *const *parts, const size_t *lens, size_t n)
{
  size_t total = 1;

  for (size_t i = 0; i < n; i++)
    total += lens[i];
  char *out = malloc(total), *w = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    memcpy(w, parts[i], lens[i]);
    w += lens[i];
  }
  *w = '\0';
  return out;
}

/* out takes query; path is base + rest; the URL https://host path [?query]. */
static int url_build(const struct apig_endpoint *e, const char *rest,
                     char *query, struct apig_url *out)
{
  memset(out, 0, sizeof *out);
  out->query = query;
  if (!e || !e->host || !e->base) {
    free(query);
    memset(out, 0, sizeof *out);
    return -EINVAL;
  }
  size_t rest_len = strlen(rest), query_len = query ? strlen(query) : 0;
  const char *path_parts[] = {e->base, rest};
  const size_t path_lens[] = {e->base_len, rest_len};
  out->path = concat(path_parts, path_lens, 2);
  out->host = strndup(e->host, e->host_len);
  if (out->path && query) {
    const char *url_parts[] = {"https://", e->host, out->path, "?", query};
    const size_t url_lens[] = {8, e->host_len, e->base_len + rest_len,
                               query_len ? 1 : 0, query_len};
    out->url = concat(url_parts, url_lens, 5);
  }
  if (!out->url || !out->path || !out->query || !out->host) {
    apig_url_free(out);
    return -ENOMEM;
  }
  return 0;
}

static bool domain_chars_ok(const char *d)
{
  size_t n = strlen(d);

  if (n == 0 || n > APIG_MAX_DOMAIN)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)d[i]) && !strchr(".-_*", d[i]))
      return false;
  return true;
}

/* v in decimal at buf (room for 20 digits), not terminated: its length. */
static size_t put_decimal(char *buf, unsigned long v)
{
  char tmp[24], *d = tmp + sizeof(tmp);
  size_t n;

  do
    *--d = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  n = (size_t)(tmp + sizeof(tmp) - d);
  memcpy(buf, d, n);
  return n;
}

/* limit and offset: checked non-negative by the caller */
static int list_query(long limit, long offset, const char *url_domain,
                      char **out)
{
  char *dom = NULL;
  int rc;

  if (url_domain) {
    if (!domain_chars_ok(url_domain))
      return -EINVAL;
    /* Unreserved characters stay, the rest (e.g. '*') is %XX: the same set
     * the signer's canonical query uses. */
    dom = curl_easy_escape(NULL, url_domain, 0);
    if (!dom)
      return -ENOMEM;
    rc =
        asprintf(out, "limit=%ld&offset=%ld&url_domain=%s", limit, offset, dom);
  } else {
    /* every read's query: joined by lengths, not asprintf */
    char l[24], o[24];
    size_t ln = put_decimal(l, (unsigned long)limit);
    size_t on = put_decimal(o, (unsigned long)offset);
    const char *parts[] = {"limit=", l, "&offset=", o};
    const size_t lens[] = {6, ln, 8, on};
    *out = concat(parts, lens, 4);
    rc = *out ? 0 : -1;
  }
  curl_free(dom);
  return rc < 0 ? -ENOMEM : 0;
}

int apig_url_build(const struct apig_endpoint *ep, const char *rest,
                   const char *query, struct apig_url *out)
{
  char *q = query ? strdup(query) : NULL;

  memset(out, 0, sizeof *out);
  if (!rest || rest[0] != '/' || !query) {
    free(q);
    return -EINVAL;
  }
  if (!q)
    return -ENOMEM;
  return url_build(ep, rest, q, out);
}

/* "/v2/{project}/apigw/certificates/{cert}" + tail into rest (256 bytes:
 * ids are checked to be at most 64 characters, tails are short). */
static void cert_rest(char rest[256], const char *project_id,
                      const char *cert_id, const char *tail)
{
  size_t pn = strlen(project_id), cn = strlen(cert_id), tn = strlen(tail);
  char *w = rest;

  memcpy(w, "/v2/", 4);
  w += 4;
  memcpy(w, project_id, pn);
  w += pn;
  memcpy(w, "/apigw/certificates/", 20);
  w += 20;
  memcpy(w, cert_id, cn);
  w += cn;
  memcpy(w, tail, tn + 1);
}

int apig_url_list_at(const struct apig_endpoint *ep, const char *project_id,
                     const char *cert_id, long limit, long offset,
                     const char *url_domain, struct apig_url *out)
{
  char rest[256], *query = NULL;

  memset(out, 0, sizeof *out);
  if (!apig_id_valid(project_id) || !apig_id_valid(cert_id) || limit < 1 ||
      limit > APIG_LIST_LIMIT || offset < 0)
    return -EINVAL;
  int err = list_query(limit, offset, url_domain, &query);
  if (err)
    return err;
  cert_rest(rest, project_id, cert_id, "/attached-domains");
  return url_build(ep, rest, query, out);
}

int apig_url_list(const char *endpoint, const char *project_id,
                  const char *cert_id, long limit, long offset,
                  const char *url_domain, struct apig_url *out)
{
  struct apig_endpoint ep;
  int err = apig_endpoint_parse(endpoint, &ep);

  memset(out, 0, sizeof *out);
  if (err)
    return err;
  err = apig_url_list_at(&ep, project_id, cert_id, limit, offset, url_domain,
                         out);
  apig_endpoint_free(&ep);
  return err;
}

int apig_url_write_at(const struct apig_endpoint *ep, const char *project_id,
                      const char *cert_id, enum apig_op op,
                      struct apig_url *out)
{
  char rest[256];

  memset(out, 0, sizeof *out);
  if (!apig_id_valid(project_id) || !apig_id_valid(cert_id) ||
      (op != APIG_OP_ATTACH && op != APIG_OP_DETACH))
    return -EINVAL;
  cert_rest(rest, project_id, cert_id,
            op == APIG_OP_ATTACH ? "/domains/attach" : "/domains/detach");
  char *query = strdup("");
  if (!query)
    return -ENOMEM;
  return url_build(ep, rest, query, out);
}

int apig_url_write(const char *endpoint, const char *project_id,
                   const char *cert_id, enum apig_op op, struct apig_url *out)
{
  struct apig_endpoint ep;
  int err = apig_endpoint_parse(endpoint, &ep);

  memset(out, 0, sizeof *out);
  if (err)
    return err;
  err = apig_url_write_at(&ep, project_id, cert_id, op, out);
  apig_endpoint_free(&ep);
  return err;
}

int apig_url_token(const char *iam_endpoint, struct apig_url *out)
{
  struct apig_endpoint ep;
  int err = apig_endpoint_parse(iam_endpoint, &ep);

  memset(out, 0, sizeof *out);
  if (err)
    return err;
  err = apig_url_build(&ep, "/v3/auth/tokens", "nocatalog=true", out);
  apig_endpoint_free(&ep);
  return err;
}

/* ---- attach/detach body --------------------------------------------- */

static yajl_gen_status gen_item(yajl_gen g, const struct apig_domain_item *it)
{
  yajl_gen_status st = yajl_gen_map_open(g);

  if (st == yajl_gen_status_ok)
    st = json_gen_key_str(g, "domain", it->domain);
  if (st == yajl_gen_status_ok)
    st = json_gen_str(g, "instance_ids");
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_open(g);
  for (size_t i = 0; i < it->n_instances && st == yajl_gen_status_ok; i++)
    st = json_gen_str(g, it->instance_ids[i]);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_close(g);
  if (st == yajl_gen_status_ok)
    st = json_gen_key_bool(g, "verified_client_certificate_enabled",
                           it->verify_client);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_map_close(g);
  return st;
}

static bool item_ok(const struct apig_domain_item *it)
{
  if (!it->domain || !*it->domain || it->n_instances == 0 || !it->instance_ids)
    return false;
  for (size_t i = 0; i < it->n_instances; i++)
    if (!it->instance_ids[i] || !*it->instance_ids[i])
      return false;
  return true;
}

int apig_write_body(const struct apig_domain_item *items, size_t n, char **body,
                    size_t *len)
{
  *body = NULL;
  *len = 0;
  if (!items || n == 0)
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!item_ok(&items[i]))
      return -EINVAL;
  yajl_gen g = json_gen_new(false, NULL, NULL);
  if (!g)
    return -ENOMEM;
  yajl_gen_status st = yajl_gen_map_open(g);
  if (st == yajl_gen_status_ok)
    st = json_gen_str(g, "domains");
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_open(g);
  for (size_t i = 0; i < n && st == yajl_gen_status_ok; i++)
    st = gen_item(g, &items[i]);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_close(g);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_map_close(g);
  int err = st == yajl_gen_status_ok ? json_gen_take(g, body, len) : -EINVAL;
  yajl_gen_free(g);
  return err;
}

/* ---- list response (streaming, util/json.h) ------------------------- */

/* One page being read: the entries go to out, the page's numbers to page;
 * cur is the entry being read. */
struct list_ctx {
  struct apig_bindings *out;
  struct apig_page *page;
  struct apig_binding cur;
};

#define APIG_STR_(x) #x
#define APIG_STR(x) APIG_STR_(x)

/* "total" and "size": a count, or null for "not given" (stays -1). */
static void binding_free(struct apig_binding *b)
{
  free(b->url_domain);
  if (!b->instance_shared)
    free(b->instance_id);
  memset(b, 0, sizeof *b);
}

/* More entries than the limit asked for: the parse stops at the first one
 * past it, so what follows is never read or kept. */
static int item_open(struct json_reader *r, void *parent, void **base)
{
  struct list_ctx *c = json_ctx(r);

  (void)parent;
  if (c->page->count >= APIG_LIST_LIMIT)
    return json_fail(r, -E2BIG, NULL,
                     "more entries in one page than the limit asked "
                     "for (" APIG_STR(APIG_LIST_LIMIT) ")");
  binding_free(&c->cur);
  *base = &c->cur;
  return 0;
}

static int list_push(struct apig_bindings *b, struct apig_binding *it)
{
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    struct apig_binding *p = realloc(b->items, cap * sizeof *p);
    if (!p)
      return -ENOMEM;
    b->items = p;
    b->cap = cap;
  }
  b->items[b->n++] = *it;
  memset(it, 0, sizeof *it);
  return 0;
}

static int item_close(struct json_reader *r, void *base)
{
  struct list_ctx *c = json_ctx(r);

  if (list_push(c->out, base) < 0)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  c->page->count++;
  return 0;
}

/* Every field we use is refused when given twice: a page that says two
 * things about one binding is not read as either. */
static const struct json_field item_fields[] = {
    {.name = "url_domain",
     .kind = JSON_K_STR,
     .offset = offsetof(struct apig_binding, url_domain),
     .flags = JSON_REQUIRED | JSON_ONCE | JSON_NONEMPTY | JSON_LOWER,
     .max = APIG_MAX_DOMAIN},
    {.name = "instance_id",
     .kind = JSON_K_STR,
     .offset = offsetof(struct apig_binding, instance_id),
     .flags = JSON_REQUIRED | JSON_ONCE | JSON_NONEMPTY,
     .max = APIG_MAX_ID},
    {.name = "verified_client_certificate_enabled",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct apig_binding, verify_client),
     .flags = JSON_ONCE | JSON_NULLABLE},
};

static const struct json_object list_item = {
    .name = "bound_domains element",
    .fields = item_fields,
    .nfields = sizeof item_fields / sizeof *item_fields,
    .open = item_open,
    .close = item_close,
};

/* Absent bound_domains is an error: never read "no field" as "none
 * bound". */
static const struct json_field page_fields[] = {
    {.name = "total",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct apig_page, total),
     .flags = JSON_ONCE | JSON_NULLABLE,
     .accept = JSON_INT,
     .set = json_set_count},
    {.name = "size",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct apig_page, size),
     .flags = JSON_ONCE | JSON_NULLABLE,
     .accept = JSON_INT,
     .set = json_set_count},
    {.name = "bound_domains",
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

static void set_why(char *why, size_t why_len, const char *text)
{
  if (why && why_len)
    snprintf(why, why_len, "%s", text);
}

int apig_parse_list(const char *body, size_t len, struct apig_bindings *out,
                    struct apig_page *page, char *why, size_t why_len)
{
  struct list_ctx c = {.out = out, .page = page};
  size_t start = out->n;

  memset(page, 0, sizeof *page);
  page->total = page->size = -1;
  set_why(why, why_len, "");
  if (len > APIG_MAX_LIST_BODY) {
    set_why(why, why_len, "response too large");
    return -E2BIG;
  }
  int err = json_read(&list_doc, body, body ? len : 0, page, &c, why, why_len);
  binding_free(&c.cur);
  if (err) {
    while (out->n > start)
      binding_free(&out->items[--out->n]);
    memset(page, 0, sizeof *page);
    page->total = page->size = -1;
  }
  return err;
}

static int binding_cmp(const void *a, const void *b)
{
  const struct apig_binding *x = a, *y = b;
  int r = strcmp(x->url_domain, y->url_domain);
  return r ? r : strcmp(x->instance_id, y->instance_id);
}

void apig_bindings_dedupe(struct apig_bindings *b)
{
  size_t w = 0;

  if (b->n < 2)
    return;
  qsort(b->items, b->n, sizeof *b->items, binding_cmp);
  for (size_t r = 1; r < b->n; r++) {
    if (binding_cmp(&b->items[w], &b->items[r]) == 0) {
      b->items[w].verify_client =
          b->items[w].verify_client && b->items[r].verify_client;
      binding_free(&b->items[r]);
    } else {
      b->items[++w] = b->items[r];
    }
  }
  b->n = w + 1;
}

void apig_bindings_free(struct apig_bindings *b)
{
  if (!b)
    return;
  for (size_t i = 0; i < b->n; i++)
    binding_free(&b->items[i]);
  free(b->items);
  memset(b, 0, sizeof *b);
}

void apig_bindings_trim(struct apig_bindings *b)
{
  struct apig_binding *items;

  if (!b || b->n == b->cap)
    return;
  if (b->n == 0) {
    free(b->items);
    b->items = NULL;
    b->cap = 0;
    return;
  }
  items = realloc(b->items, b->n * sizeof(*items));
  if (items) { /* else the larger array stays: still valid */
    b->items = items;
    b->cap = b->n;
  }
}

static int cmp_str_ptr(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void apig_bindings_share_instances(struct apig_bindings *b, size_t from,
                                   const char *const *ids, size_t nids)
{
  const char *last = NULL; /* a page's entries mostly name one gateway */

  for (size_t i = from; b && i < b->n; i++) {
    struct apig_binding *e = &b->items[i];
    const char *const *hit;

    if (e->instance_shared)
      continue;
    if (!last || strcmp(last, e->instance_id) != 0) {
      hit = nids
                ? bsearch(&e->instance_id, ids, nids, sizeof(*ids), cmp_str_ptr)
                : NULL;
      if (!hit)
        continue;
      last = *hit;
    }
    free(e->instance_id);
    e->instance_id = (char *)last;
    e->instance_shared = true;
  }
}

/* ---- error envelope (util/json.h) ----------------------------------- */

/* Where the envelope's strings go: APIG's own fields straight into the
 * result, the {"code","message"} forms (top level or under "error") aside,
 * used only when APIG's are absent. */
struct err_fields {
  struct apig_error e;
  char alt_code[64], alt_msg[512];
};

/* Copy at most dst_len-1 bytes, never cutting a UTF-8 sequence, and stop
 * at a NUL or control character. */
static void copy_trunc(char *dst, size_t dst_len, const char *s, size_t len)
{
  size_t n = 0;

  while (n < len && n + 1 < dst_len && (unsigned char)s[n] >= 0x20 &&
         s[n] != 0x7f)
    n++;
  if (n < len && n + 1 >= dst_len)
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--; /* s[n] is a continuation byte: back off to its lead byte */
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* A string into a char[f->max], cut (see copy_trunc); IAM gives "code":
 * 401 as a number, kept as its digits. */
static int set_text(struct json_reader *r, const struct json_field *f,
                    void *dst, const struct json_value *v)
{
  (void)r;
  if (v->type == JSON_INT)
    snprintf(dst, f->max, "%lld", v->i);
  else
    copy_trunc(dst, f->max, v->s, v->len);
  return 0;
}

/* Loose: a field of another type is ignored, like an unknown one; the
 * later of two equal keys counts. */
#define ERR_TEXT(key, member, types)                                           \
  {                                                                            \
    .name = key, .kind = JSON_K_CUSTOM,                                        \
    .offset = offsetof(struct err_fields, member), .flags = JSON_LOOSE,        \
    .max = sizeof(((struct err_fields *)0)->member), .accept = types,          \
    .set = set_text                                                            \
  }

static const struct json_field iam_fields[] = {
    ERR_TEXT("code", alt_code, JSON_STRING | JSON_INT),
    ERR_TEXT("message", alt_msg, JSON_STRING),
};

static const struct json_field err_fields[] = {
    ERR_TEXT("error_code", e.code, JSON_STRING),
    ERR_TEXT("error_msg", e.msg, JSON_STRING),
    ERR_TEXT("request_id", e.request_id, JSON_STRING),
    ERR_TEXT("code", alt_code, JSON_STRING | JSON_INT),
    ERR_TEXT("message", alt_msg, JSON_STRING),
    {.name = "error", /* IAM: {"error":{"code":401,"message":...}} */
     .kind = JSON_K_OBJECT,
     .offset = 0,
     .flags = JSON_LOOSE,
     .object = &(const struct json_object){.name = "error",
                                           .fields = iam_fields,
                                           .nfields = sizeof iam_fields /
                                                      sizeof *iam_fields}},
};
#undef ERR_TEXT

static const struct json_doc err_doc = {
    .root = &(const struct json_object){.name = "response",
                                        .fields = err_fields,
                                        .nfields = sizeof err_fields /
                                                   sizeof *err_fields},
    .max_depth = APIG_MAX_DEPTH,
};

void apig_parse_error(const char *body, size_t len, struct apig_error *out)
{
  struct err_fields f = {0};

  memset(out, 0, sizeof *out);
  if (!body || len == 0 || len > APIG_MAX_ERROR_BODY)
    return;
  if (json_read(&err_doc, body, len, &f, NULL, NULL, 0) != 0)
    return; /* garbage: nothing is trusted */
  *out = f.e;
  if (!out->code[0])
    memcpy(out->code, f.alt_code, sizeof out->code);
  if (!out->msg[0])
    memcpy(out->msg, f.alt_msg, sizeof out->msg);
}

/* ---- classification ---------------------------------------------------- */

/* "APIG.0308" and the front door's "APIGW.0308" are the same error. */
static bool code_is(const char *code, const char *num)
{
  if (!code)
    return false;
  if (strncasecmp(code, "APIGW.", 6) == 0)
    return strcmp(code + 6, num) == 0;
  if (strncasecmp(code, "APIG.", 5) == 0)
    return strcmp(code + 5, num) == 0;
  return false;
}

bool apig_code_is(const char *error_code, const char *num)
{
  return code_is(error_code, num);
}

static enum apig_class classify_auth(long status, const char *code,
                                     const char *msg)
{
  if (code_is(code, "0307") || code_is(code, "1000") || code_is(code, "1001") ||
      code_is(code, "1002"))
    return APIG_REAUTH;
  if (code_is(code, "0301"))
    return msg && strcasestr(msg, "token") ? APIG_REAUTH : APIG_AUTH_FATAL;
  if (code_is(code, "1005") || code_is(code, "0302") || status == 401 ||
      status == 403)
    return APIG_AUTH_FATAL;
  return APIG_PERMANENT; /* not an auth error */
}

enum apig_class apig_classify(enum apig_op op, long status,
                              bool transport_error, const char *error_code,
                              const char *error_msg)
{
  if (transport_error || status <= 0)
    return APIG_RETRY;
  if (status >= 200 && status < 300)
    return APIG_OK;
  if (status == 429 || code_is(error_code, "0308") ||
      code_is(error_code, "9008"))
    return APIG_THROTTLED;
  if (op == APIG_OP_DETACH && status == 400 && code_is(error_code, "2000"))
    return APIG_DONE_ALREADY;
  if (op == APIG_OP_CERT_DELETE && status == 404 &&
      (code_is(error_code, "3021") || code_is(error_code, "3025")))
    return APIG_DONE_ALREADY;
  enum apig_class c = classify_auth(status, error_code, error_msg);
  if (c != APIG_PERMANENT)
    /* IAM itself rejecting our password is not cured by a new token. */
    return op == APIG_OP_TOKEN && c == APIG_REAUTH ? APIG_AUTH_FATAL : c;
  if (status == 408 || status >= 500 ||
      (status == 409 && code_is(error_code, "3711")))
    return APIG_RETRY;
  return APIG_PERMANENT;
}

bool apig_outcome_unknown(enum apig_op op, long status, bool transport_error,
                          bool maybe_sent)
{
  if (op != APIG_OP_ATTACH && op != APIG_OP_DETACH && op != APIG_OP_CERT_CREATE)
    return false;
  if (transport_error)
    return maybe_sent;
  return status >= 500;
}

const char *apig_class_name(enum apig_class c)
{
  switch (c) {
  case APIG_OK:
    return "ok";
  case APIG_DONE_ALREADY:
    return "done_already";
  case APIG_RETRY:
    return "retry";
  case APIG_THROTTLED:
    return "throttled";
  case APIG_REAUTH:
    return "reauth";
  case APIG_AUTH_FATAL:
    return "auth_fatal";
  case APIG_PERMANENT:
    return "permanent";
  }
  return "unknown";
}

const char *apig_op_name(enum apig_op op)
{
  switch (op) {
  case APIG_OP_LIST:
    return "list";
  case APIG_OP_ATTACH:
    return "attach";
  case APIG_OP_DETACH:
    return "detach";
  case APIG_OP_TOKEN:
    return "token";
  case APIG_OP_CERT_CREATE:
    return "cert_create";
  case APIG_OP_CERT_SHOW:
    return "cert_show";
  case APIG_OP_CERT_LIST:
    return "cert_list";
  case APIG_OP_CERT_UPDATE:
    return "cert_update";
  case APIG_OP_CERT_DELETE:
    return "cert_delete";
  }
  return "unknown";
}
