/*
 * apig: URLs, bodies, response parsing and outcome classes for the APIG
 * certificate-binding calls. yajl is confined to this file (streaming
 * parser for responses, yajl_gen for bodies); curl's URL API splits the
 * configured endpoint. No I/O.
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
#include <yajl/yajl_parse.h>

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

struct endpoint {
  char *host; /* as curl sends it in Host: */
  char *base; /* path prefix without a trailing '/', maybe "" */
};

static void endpoint_free(struct endpoint *e)
{
  free(e->host);
  free(e->base);
}

static bool part_absent(CURLU *u, CURLUPart what)
{
  char *p = NULL;
  CURLUcode rc = curl_url_get(u, what, &p, 0);

  curl_free(p);
  return rc != CURLUE_OK;
}

static int endpoint_host(CURLU *u, struct endpoint *e)
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

static int endpoint_base(CURLU *u, struct endpoint *e)
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

/* https only; no user info, query or fragment in a configured endpoint. */
static int endpoint_parse(const char *endpoint, struct endpoint *e)
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
out:
  curl_free(scheme);
  curl_url_cleanup(u);
  if (err)
    endpoint_free(e);
  return err;
}

/* out takes e's host; path is base + rest. */
static int url_build(struct endpoint *e, const char *rest, char *query,
                     struct apig_url *out)
{
  memset(out, 0, sizeof *out);
  out->query = query;
  out->host = e->host;
  e->host = NULL;
  if (asprintf(&out->path, "%s%s", e->base, rest) < 0)
    out->path = NULL;
  if (out->path && out->query &&
      asprintf(&out->url, "https://%s%s%s%s", out->host, out->path,
               *query ? "?" : "", query) < 0)
    out->url = NULL;
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
    rc = asprintf(out, "limit=%ld&offset=%ld", limit, offset);
  }
  curl_free(dom);
  return rc < 0 ? -ENOMEM : 0;
}

static int url_for(const char *endpoint, const char *rest, char *query,
                   struct apig_url *out)
{
  struct endpoint e;
  int err = endpoint_parse(endpoint, &e);

  if (err) {
    free(query);
    memset(out, 0, sizeof *out);
    return err;
  }
  err = url_build(&e, rest, query, out);
  endpoint_free(&e);
  return err;
}

int apig_url_list(const char *endpoint, const char *project_id,
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
  snprintf(rest, sizeof rest, "/v2/%s/apigw/certificates/%s/attached-domains",
           project_id, cert_id);
  return url_for(endpoint, rest, query, out);
}

int apig_url_write(const char *endpoint, const char *project_id,
                   const char *cert_id, enum apig_op op, struct apig_url *out)
{
  char rest[256];

  memset(out, 0, sizeof *out);
  if (!apig_id_valid(project_id) || !apig_id_valid(cert_id) ||
      (op != APIG_OP_ATTACH && op != APIG_OP_DETACH))
    return -EINVAL;
  snprintf(rest, sizeof rest, "/v2/%s/apigw/certificates/%s/domains/%s",
           project_id, cert_id, op == APIG_OP_ATTACH ? "attach" : "detach");
  char *query = strdup("");
  if (!query)
    return -ENOMEM;
  return url_for(endpoint, rest, query, out);
}

int apig_url_token(const char *iam_endpoint, struct apig_url *out)
{
  char *query = strdup("nocatalog=true");

  memset(out, 0, sizeof *out);
  if (!query)
    return -ENOMEM;
  return url_for(iam_endpoint, "/v3/auth/tokens", query, out);
}

/* ---- attach/detach body --------------------------------------------- */

static yajl_gen_status gen_str(yajl_gen g, const char *s)
{
  return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static yajl_gen_status gen_item(yajl_gen g, const struct apig_domain_item *it)
{
  yajl_gen_status st = yajl_gen_map_open(g);

  if (st == yajl_gen_status_ok)
    st = gen_str(g, "domain");
  if (st == yajl_gen_status_ok)
    st = gen_str(g, it->domain);
  if (st == yajl_gen_status_ok)
    st = gen_str(g, "instance_ids");
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_open(g);
  for (size_t i = 0; i < it->n_instances && st == yajl_gen_status_ok; i++)
    st = gen_str(g, it->instance_ids[i]);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_close(g);
  if (st == yajl_gen_status_ok)
    st = gen_str(g, "verified_client_certificate_enabled");
  if (st == yajl_gen_status_ok)
    st = yajl_gen_bool(g, it->verify_client);
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

static int gen_copy(yajl_gen g, char **body, size_t *len)
{
  const unsigned char *buf;
  size_t n;

  if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
    return -EINVAL;
  *body = malloc(n + 1);
  if (!*body)
    return -ENOMEM;
  memcpy(*body, buf, n);
  (*body)[n] = '\0';
  *len = n;
  return 0;
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
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return -ENOMEM;
  yajl_gen_config(g, yajl_gen_validate_utf8, 1);
  yajl_gen_status st = yajl_gen_map_open(g);
  if (st == yajl_gen_status_ok)
    st = gen_str(g, "domains");
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_open(g);
  for (size_t i = 0; i < n && st == yajl_gen_status_ok; i++)
    st = gen_item(g, &items[i]);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_array_close(g);
  if (st == yajl_gen_status_ok)
    st = yajl_gen_map_close(g);
  int err = st == yajl_gen_status_ok ? gen_copy(g, body, len) : -EINVAL;
  yajl_gen_free(g);
  return err;
}

/* ---- list response (streaming) --------------------------------------- */

enum list_key {
  K_OTHER,
  K_TOTAL,
  K_SIZE,
  K_DOMAINS,
  K_URL_DOMAIN,
  K_INSTANCE,
  K_VERIFY,
};

struct list_ctx {
  struct apig_bindings *out;
  struct apig_page *page;
  int depth;
  enum list_key key;
  bool in_domains, in_item;
  bool seen_total, seen_size, seen_domains;
  struct apig_binding cur;
  bool seen_verify;
  const char *why;
  int err;
};

static int list_fail(struct list_ctx *c, const char *why)
{
  if (!c->err) {
    c->err = -EBADMSG;
    c->why = why;
  }
  return 0; /* cancels the parse */
}

#define APIG_STR_(x) #x
#define APIG_STR(x) APIG_STR_(x)

/* More entries than the limit asked for: stop reading the page now. */
static int list_too_many(struct list_ctx *c)
{
  if (!c->err) {
    c->err = -E2BIG;
    c->why = "more entries in one page than the limit asked "
             "for (" APIG_STR(APIG_LIST_LIMIT) ")";
  }
  return 0; /* cancels the parse */
}

static int list_oom(struct list_ctx *c)
{
  c->err = -ENOMEM;
  c->why = "out of memory";
  return 0;
}

/* Where the next value goes: 1 = a top-level field, 2 = an element of
 * bound_domains, 3 = a field of an element, 0 = ignored. */
static int list_slot(const struct list_ctx *c)
{
  if (c->depth == 1)
    return 1;
  if (c->depth == 2 && c->in_domains)
    return 2;
  if (c->depth == 3 && c->in_item)
    return 3;
  return 0;
}

/* A scalar value arrived (type: 's', 'i', 'b', 'n' for null, 'd'). */
static int list_scalar_type(struct list_ctx *c, char type)
{
  int slot = list_slot(c);

  if (c->depth == 0)
    return list_fail(c, "response is not an object");
  if (slot == 2)
    return list_fail(c, "bound_domains element is not an object");
  if (slot == 1 && c->key == K_DOMAINS)
    return list_fail(c, "bound_domains is not an array");
  if (slot == 1 && (c->key == K_TOTAL || c->key == K_SIZE) && type != 'i' &&
      type != 'n')
    return list_fail(c, "total/size is not an integer");
  if (slot == 3 && (c->key == K_URL_DOMAIN || c->key == K_INSTANCE) &&
      type != 's')
    return list_fail(c, "url_domain/instance_id is not a string");
  if (slot == 3 && c->key == K_VERIFY && type != 'b' && type != 'n')
    return list_fail(c, "verified_client_certificate_enabled not boolean");
  return 1;
}

static int on_json_null(void *ctx)
{
  return list_scalar_type(ctx, 'n');
}

static int on_json_bool(void *ctx, int v)
{
  struct list_ctx *c = ctx;

  if (!list_scalar_type(c, 'b'))
    return 0;
  if (list_slot(c) == 3 && c->key == K_VERIFY)
    c->cur.verify_client = v != 0;
  return 1;
}

static int on_json_integer(void *ctx, long long v)
{
  struct list_ctx *c = ctx;

  if (!list_scalar_type(c, 'i'))
    return 0;
  if (list_slot(c) != 1 || (c->key != K_TOTAL && c->key != K_SIZE))
    return 1;
  if (v < 0)
    return list_fail(c, "negative total/size");
  if (c->key == K_TOTAL)
    c->page->total = v;
  else
    c->page->size = v;
  return 1;
}

static int on_json_double(void *ctx, double v)
{
  (void)v;
  return list_scalar_type(ctx, 'd');
}

static char *dup_field(const unsigned char *s, size_t len, size_t max,
                       bool lower)
{
  if (len == 0 || len > max || memchr(s, '\0', len))
    return NULL;
  char *d = malloc(len + 1);
  if (!d)
    return NULL;
  for (size_t i = 0; i < len; i++)
    d[i] = lower ? (char)tolower(s[i]) : (char)s[i];
  d[len] = '\0';
  return d;
}

static int on_json_string(void *ctx, const unsigned char *s, size_t len)
{
  struct list_ctx *c = ctx;

  if (!list_scalar_type(c, 's'))
    return 0;
  if (list_slot(c) != 3 || (c->key != K_URL_DOMAIN && c->key != K_INSTANCE))
    return 1;
  bool dom = c->key == K_URL_DOMAIN;
  char *d = dup_field(s, len, dom ? APIG_MAX_DOMAIN : APIG_MAX_ID, dom);
  if (!d)
    return list_fail(c, "empty, oversized or NUL in url_domain/instance_id");
  free(dom ? c->cur.url_domain : c->cur.instance_id);
  if (dom)
    c->cur.url_domain = d;
  else
    c->cur.instance_id = d;
  return 1;
}

static bool seen_once(bool *seen)
{
  bool was = *seen;
  *seen = true;
  return !was;
}

static int on_json_map_key(void *ctx, const unsigned char *k, size_t len)
{
  struct list_ctx *c = ctx;
  int slot = list_slot(c);
  bool ok = true;

#define KEY_IS(lit) (len == sizeof(lit) - 1 && memcmp(k, lit, len) == 0)
  c->key = K_OTHER;
  if (slot == 1 && KEY_IS("total")) {
    c->key = K_TOTAL;
    ok = seen_once(&c->seen_total);
  } else if (slot == 1 && KEY_IS("size")) {
    c->key = K_SIZE;
    ok = seen_once(&c->seen_size);
  } else if (slot == 1 && KEY_IS("bound_domains")) {
    c->key = K_DOMAINS;
    ok = seen_once(&c->seen_domains);
  } else if (slot == 3 && KEY_IS("url_domain")) {
    c->key = K_URL_DOMAIN;
    ok = c->cur.url_domain == NULL;
  } else if (slot == 3 && KEY_IS("instance_id")) {
    c->key = K_INSTANCE;
    ok = c->cur.instance_id == NULL;
  } else if (slot == 3 && KEY_IS("verified_client_certificate_enabled")) {
    c->key = K_VERIFY;
    ok = seen_once(&c->seen_verify);
  }
#undef KEY_IS
  return ok ? 1 : list_fail(c, "duplicate field");
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

static int list_open(struct list_ctx *c, bool is_map)
{
  int slot = list_slot(c);

  if (c->depth == 0 && !is_map)
    return list_fail(c, "response is not an object");
  if (slot == 1 && c->key == K_DOMAINS && !is_map)
    c->in_domains = true;
  else if (slot == 1 && c->key != K_OTHER)
    return list_fail(c, "wrong type for total/size/bound_domains");
  if (slot == 2 && !is_map)
    return list_fail(c, "bound_domains element is not an object");
  if (slot == 2 && c->page->count >= APIG_LIST_LIMIT)
    return list_too_many(c);
  if (slot == 2) {
    c->in_item = true;
    c->seen_verify = false;
  }
  if (slot == 3 && c->key != K_OTHER)
    return list_fail(c, "wrong type for a bound_domains field");
  if (++c->depth > APIG_MAX_DEPTH)
    return list_fail(c, "nesting too deep");
  c->key = K_OTHER;
  return 1;
}

static int on_json_start_map(void *ctx)
{
  return list_open(ctx, true);
}

static int on_json_start_array(void *ctx)
{
  return list_open(ctx, false);
}

static int on_json_end_map(void *ctx)
{
  struct list_ctx *c = ctx;

  c->depth--;
  if (c->depth == 2 && c->in_item) {
    c->in_item = false;
    if (!c->cur.url_domain || !c->cur.instance_id)
      return list_fail(c, "bound_domains element without url_domain or "
                          "instance_id");
    if (list_push(c->out, &c->cur) < 0)
      return list_oom(c);
    c->page->count++;
  }
  return 1;
}

static int on_json_end_array(void *ctx)
{
  struct list_ctx *c = ctx;

  c->depth--;
  if (c->depth == 1 && c->in_domains)
    c->in_domains = false;
  return 1;
}

static const yajl_callbacks list_callbacks = {
    .yajl_null = on_json_null,
    .yajl_boolean = on_json_bool,
    .yajl_integer = on_json_integer,
    .yajl_double = on_json_double,
    .yajl_string = on_json_string,
    .yajl_start_map = on_json_start_map,
    .yajl_map_key = on_json_map_key,
    .yajl_end_map = on_json_end_map,
    .yajl_start_array = on_json_start_array,
    .yajl_end_array = on_json_end_array,
};

static void binding_free(struct apig_binding *b)
{
  free(b->url_domain);
  free(b->instance_id);
  memset(b, 0, sizeof *b);
}

static void set_why(char *why, size_t why_len, const char *text)
{
  if (why && why_len)
    snprintf(why, why_len, "%s", text);
}

/* Runs a yajl streaming parse of the whole buffer. 0, or -EBADMSG when the
 * JSON itself is bad, or the callbacks' error in *cb_err. */
static int yajl_run(const yajl_callbacks *cbs, void *ctx, const char *body,
                    size_t len)
{
  yajl_handle y = yajl_alloc(cbs, NULL, ctx);
  if (!y)
    return -ENOMEM;
  yajl_status st = yajl_parse(y, (const unsigned char *)body, len);
  if (st == yajl_status_ok)
    st = yajl_complete_parse(y);
  yajl_free(y);
  return st == yajl_status_ok ? 0 : -EBADMSG;
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
  int err = yajl_run(&list_callbacks, &c, body ? body : "", body ? len : 0);
  if (c.err)
    err = c.err;
  else if (err)
    c.why = "malformed JSON or invalid UTF-8";
  else if (!c.seen_domains) { /* never read "no field" as "none bound" */
    list_fail(&c, "no bound_domains array");
    err = c.err;
  }
  binding_free(&c.cur);
  if (err) {
    while (out->n > start)
      binding_free(&out->items[--out->n]);
    memset(page, 0, sizeof *page);
    page->total = page->size = -1;
    set_why(why, why_len, c.why ? c.why : "malformed response");
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

/* ---- error envelope ------------------------------------------------- */

enum err_key { E_OTHER, E_CODE, E_MSG, E_RID, E_ALT_CODE, E_ALT_MSG, E_NEST };

struct err_ctx {
  int depth;
  enum err_key key;
  bool in_error; /* inside the top-level "error" object */
  char alt_code[64], alt_msg[512];
  struct apig_error *out;
};

/* Copy at most dst_len-1 bytes, never cutting a UTF-8 sequence, and stop
 * at a NUL or control character. */
static void copy_trunc(char *dst, size_t dst_len, const unsigned char *s,
                       size_t len)
{
  size_t n = 0;

  while (n < len && n + 1 < dst_len && s[n] >= 0x20 && s[n] != 0x7f)
    n++;
  if (n < len && n + 1 >= dst_len)
    while (n > 0 && (s[n] & 0xC0) == 0x80)
      n--; /* s[n] is a continuation byte: back off to its lead byte */
  memcpy(dst, s, n);
  dst[n] = '\0';
}

static char *err_slot(struct err_ctx *c, size_t *cap)
{
  if (c->depth == 1) {
    switch (c->key) {
    case E_CODE:
      *cap = sizeof c->out->code;
      return c->out->code;
    case E_MSG:
      *cap = sizeof c->out->msg;
      return c->out->msg;
    case E_RID:
      *cap = sizeof c->out->request_id;
      return c->out->request_id;
    case E_ALT_CODE:
      *cap = sizeof c->alt_code;
      return c->alt_code;
    case E_ALT_MSG:
      *cap = sizeof c->alt_msg;
      return c->alt_msg;
    default:
      return NULL;
    }
  }
  if (c->depth == 2 && c->in_error && c->key == E_ALT_CODE) {
    *cap = sizeof c->alt_code;
    return c->alt_code;
  }
  if (c->depth == 2 && c->in_error && c->key == E_ALT_MSG) {
    *cap = sizeof c->alt_msg;
    return c->alt_msg;
  }
  return NULL;
}

static int on_err_string(void *ctx, const unsigned char *s, size_t len)
{
  size_t cap;
  char *dst = err_slot(ctx, &cap);

  if (dst)
    copy_trunc(dst, cap, s, len);
  return 1;
}

/* IAM gives "code": 401 as a number. */
static int on_err_integer(void *ctx, long long v)
{
  struct err_ctx *c = ctx;
  size_t cap;
  char *dst = err_slot(c, &cap);

  if (dst && c->key == E_ALT_CODE)
    snprintf(dst, cap, "%lld", v);
  return 1;
}

static int on_err_key(void *ctx, const unsigned char *k, size_t len)
{
  struct err_ctx *c = ctx;

#define KEY_IS(lit) (len == sizeof(lit) - 1 && memcmp(k, lit, len) == 0)
  c->key = E_OTHER;
  if (c->depth == 1) {
    if (KEY_IS("error_code"))
      c->key = E_CODE;
    else if (KEY_IS("error_msg"))
      c->key = E_MSG;
    else if (KEY_IS("request_id"))
      c->key = E_RID;
    else if (KEY_IS("code"))
      c->key = E_ALT_CODE;
    else if (KEY_IS("message"))
      c->key = E_ALT_MSG;
    else if (KEY_IS("error"))
      c->key = E_NEST;
  } else if (c->depth == 2 && c->in_error) {
    if (KEY_IS("code"))
      c->key = E_ALT_CODE;
    else if (KEY_IS("message"))
      c->key = E_ALT_MSG;
  }
#undef KEY_IS
  return 1;
}

static int on_err_start_map(void *ctx)
{
  struct err_ctx *c = ctx;

  if (c->depth == 1 && c->key == E_NEST)
    c->in_error = true;
  c->key = E_OTHER;
  return ++c->depth <= APIG_MAX_DEPTH;
}

static int on_err_start_array(void *ctx)
{
  struct err_ctx *c = ctx;

  if (c->depth == 0)
    return 0; /* not an envelope */
  c->key = E_OTHER;
  return ++c->depth <= APIG_MAX_DEPTH;
}

static int on_err_end(void *ctx)
{
  struct err_ctx *c = ctx;

  c->depth--;
  if (c->depth == 1)
    c->in_error = false;
  return 1;
}

static const yajl_callbacks err_callbacks = {
    .yajl_integer = on_err_integer,
    .yajl_string = on_err_string,
    .yajl_start_map = on_err_start_map,
    .yajl_map_key = on_err_key,
    .yajl_end_map = on_err_end,
    .yajl_start_array = on_err_start_array,
    .yajl_end_array = on_err_end,
};

void apig_parse_error(const char *body, size_t len, struct apig_error *out)
{
  struct err_ctx c = {.out = out};

  memset(out, 0, sizeof *out);
  if (!body || len == 0 || len > APIG_MAX_ERROR_BODY)
    return;
  if (yajl_run(&err_callbacks, &c, body, len) != 0) {
    memset(out, 0, sizeof *out); /* garbage: nothing is trusted */
    return;
  }
  if (!out->code[0])
    memcpy(out->code, c.alt_code, sizeof out->code);
  if (!out->msg[0])
    memcpy(out->msg, c.alt_msg, sizeof out->msg);
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
  if (op != APIG_OP_ATTACH && op != APIG_OP_DETACH)
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
  }
  return "unknown";
}
