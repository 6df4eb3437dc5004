/* SPDX-License-Identifier: MIT */
/*
 * world: an in-memory APIG answering the fake transport (see world.h).
 */
#include "world.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

void world_init(struct world *w)
{
  memset(w, 0, sizeof(*w));
}

void world_free(struct world *w)
{
  for (size_t c = 0; c < w->ncerts; c++) {
    struct world_cert *wc = &w->certs[c];
    for (size_t i = 0; i < wc->n; i++) {
      free(wc->b[i].domain);
      free(wc->b[i].instance);
    }
    free(wc->b);
    free(wc->id);
    for (size_t i = 0; i < wc->nsan; i++)
      free(wc->san[i]);
    free(wc->san);
  }
  free(w->certs);
  for (size_t i = 0; i < w->nobjs; i++) {
    struct world_object *o = &w->objs[i];
    for (size_t k = 0; k < o->nsan; k++)
      free(o->san[k]);
    free(o->san);
    free(o->id);
    free(o->name);
    free(o->common_name);
    free(o->serial);
    free(o->not_after);
  }
  free(w->objs);
  memset(w, 0, sizeof(*w));
}

static struct world_cert *find_cert(const struct world *w, const char *id)
{
  for (size_t c = 0; c < w->ncerts; c++) {
    if (strcmp(w->certs[c].id, id) == 0)
      return &w->certs[c];
  }
  return NULL;
}

static struct world_cert *get_cert(struct world *w, const char *id)
{
  struct world_cert *wc = find_cert(w, id), *grown;

  if (wc)
    return wc;
  grown = realloc(w->certs, (w->ncerts + 1) * sizeof(*grown));
  if (!grown)
    return NULL;
  w->certs = grown;
  wc = &w->certs[w->ncerts];
  memset(wc, 0, sizeof(*wc));
  if (!(wc->id = strdup(id)))
    return NULL;
  w->ncerts++;
  return wc;
}

static struct world_binding *find_binding(const struct world_cert *wc,
                                          const char *domain,
                                          const char *instance)
{
  for (size_t i = 0; wc && i < wc->n; i++) {
    if (strcmp(wc->b[i].domain, domain) == 0 &&
        strcmp(wc->b[i].instance, instance) == 0)
      return &wc->b[i];
  }
  return NULL;
}

static void remove_binding(struct world_cert *wc, struct world_binding *b)
{
  free(b->domain);
  free(b->instance);
  *b = wc->b[--wc->n];
}

static int add_binding(struct world_cert *wc, const char *domain,
                       const char *instance, bool verify)
{
  if (wc->n == wc->cap) {
    size_t cap = wc->cap ? wc->cap * 2 : 8;
    struct world_binding *grown = realloc(wc->b, cap * sizeof(*grown));
    if (!grown)
      return -ENOMEM;
    wc->b = grown;
    wc->cap = cap;
  }
  wc->b[wc->n].domain = strdup(domain);
  wc->b[wc->n].instance = strdup(instance);
  wc->b[wc->n].verify = verify;
  if (!wc->b[wc->n].domain || !wc->b[wc->n].instance) {
    free(wc->b[wc->n].domain);
    free(wc->b[wc->n].instance);
    return -ENOMEM;
  }
  wc->n++;
  return 0;
}

int world_bind(struct world *w, const char *cert_id, const char *domain,
               const char *instance, bool verify)
{
  struct world_cert *wc = get_cert(w, cert_id);

  return wc ? add_binding(wc, domain, instance, verify) : -ENOMEM;
}

int world_cert_show(struct world *w, const char *cert_id,
                    const char *const *san, size_t nsan, int64_t not_after)
{
  struct world_cert *wc = get_cert(w, cert_id);

  if (wc) { /* an object updated in place: its new names replace the old */
    for (size_t i = 0; i < wc->nsan; i++)
      free(wc->san[i]);
    free(wc->san);
    wc->san = NULL;
    wc->nsan = 0;
  }
  if (!wc || !(wc->san = calloc(nsan ? nsan : 1, sizeof(*wc->san))))
    return -ENOMEM;
  for (size_t i = 0; i < nsan; i++) {
    if (!(wc->san[i] = strdup(san[i])))
      return -ENOMEM;
    wc->nsan++;
  }
  wc->not_after = not_after;
  wc->shown = true;
  return 0;
}

bool world_has(const struct world *w, const char *cert_id, const char *domain,
               const char *instance)
{
  return find_binding(find_cert(w, cert_id), domain, instance) != NULL;
}

size_t world_count(const struct world *w, const char *cert_id)
{
  const struct world_cert *wc = find_cert(w, cert_id);

  return wc ? wc->n : 0;
}

static void answer_error(struct fake_answer *a, long status, const char *code,
                         const char *msg)
{
  a->status = status;
  if (asprintf(&a->body,
               "{\"error_code\":\"%s\",\"error_msg\":\"%s\","
               "\"request_id\":\"req-%s\"}",
               code, msg, code) < 0)
    a->body = NULL;
}

/* A gateway serves one certificate per domain: attaching it here takes it
 * off any other certificate on that instance (the move certbind assumes). */
static void take_from_others(struct world *w, const struct world_cert *to,
                             const char *domain, const char *instance)
{
  for (size_t c = 0; c < w->ncerts; c++) {
    struct world_binding *b;
    if (&w->certs[c] == to)
      continue;
    b = find_binding(&w->certs[c], domain, instance);
    if (b)
      remove_binding(&w->certs[c], b);
  }
}

static void apply_attach(struct world *w, struct world_cert *wc,
                         const struct fake_call *c, struct fake_answer *a)
{
  for (size_t k = 0; w->refuse_domain && k < c->ndomains; k++) {
    if (strcmp(c->domains[k].domain, w->refuse_domain) == 0) {
      answer_error(a, 400, "APIG.2103",
                   "The certificate does not match the domain name");
      return;
    }
  }
  for (size_t k = 0; k < c->ndomains; k++) {
    const struct fake_domain *d = &c->domains[k];
    for (size_t i = 0; i < d->ninstances; i++) {
      struct world_binding *b = find_binding(wc, d->domain, d->instances[i]);
      take_from_others(w, wc, d->domain, d->instances[i]);
      if (b)
        b->verify = d->verify;
      else if (add_binding(wc, d->domain, d->instances[i], d->verify) < 0)
        abort();
    }
  }
  w->writes_applied++;
  a->status = 204;
}

static void apply_detach(struct world *w, struct world_cert *wc,
                         const struct fake_call *c, struct fake_answer *a)
{
  size_t removed = 0;

  for (size_t k = 0; k < c->ndomains; k++) {
    const struct fake_domain *d = &c->domains[k];
    for (size_t i = 0; i < d->ninstances; i++) {
      struct world_binding *b = find_binding(wc, d->domain, d->instances[i]);
      if (b) {
        remove_binding(wc, b);
        removed++;
      }
    }
  }
  if (removed == 0) {
    answer_error(a, 400, "APIG.2000", "no valid domain name");
    return;
  }
  w->writes_applied++;
  a->status = 204;
}

void world_apply(struct world *w, const struct fake_call *c,
                 struct fake_answer *a)
{
  struct world_cert *wc = get_cert(w, c->cert_id);

  if (!wc)
    abort();
  if (!c->body_ok) {
    answer_error(a, 400, "APIG.2012", "Invalid parameter value");
    return;
  }
  if (c->op == APIG_OP_ATTACH)
    apply_attach(w, wc, c, a);
  else
    apply_detach(w, wc, c, a);
}

/* ---- certificate objects ------------------------------------------------ */

static void object_clear(struct world_object *o)
{
  for (size_t k = 0; k < o->nsan; k++)
    free(o->san[k]);
  free(o->san);
  free(o->common_name);
  free(o->serial);
  free(o->not_after);
  o->san = NULL;
  o->nsan = 0;
  o->common_name = o->serial = o->not_after = NULL;
}

/* The fields of the first certificate of pem; -1 when there is none. */
static int object_fields(struct world_object *o, const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  char cn[256] = "", when[32];
  BIGNUM *bn;
  struct tm tm;
  GENERAL_NAMES *names;

  BIO_free(bio);
  if (!x)
    return -1;
  object_clear(o);
  X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                            sizeof(cn));
  o->common_name = strdup(cn);
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  o->serial = bn ? BN_bn2dec(bn) : NULL;
  BN_free(bn);
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 &&
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
    o->not_after = strdup(when);
  names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  o->san = calloc((size_t)sk_GENERAL_NAME_num(names) + 1, sizeof(*o->san));
  for (int i = 0; o->san && i < sk_GENERAL_NAME_num(names); i++) {
    GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    if (g->type == GEN_DNS)
      o->san[o->nsan++] =
          strndup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                  (size_t)ASN1_STRING_length(g->d.dNSName));
  }
  GENERAL_NAMES_free(names);
  X509_free(x);
  return o->common_name && o->serial && o->not_after && o->san ? 0 : -1;
}

const struct world_object *world_find_object(const struct world *w,
                                             const char *id)
{
  for (size_t i = 0; i < w->nobjs; i++) {
    if (strcmp(w->objs[i].id, id) == 0)
      return &w->objs[i];
  }
  return NULL;
}

const struct world_object *world_add_object(struct world *w, const char *id,
                                            const char *name, const char *pem)
{
  struct world_object *grown, *o;
  char made[33];

  grown = realloc(w->objs, (w->nobjs + 1) * sizeof(*grown));
  if (!grown)
    return NULL;
  w->objs = grown;
  o = &w->objs[w->nobjs];
  memset(o, 0, sizeof(*o));
  if (!id) {
    snprintf(made, sizeof(made), "obj%029zu", ++w->objs_made);
    id = made;
  }
  o->id = strdup(id);
  o->name = strdup(name);
  if (!o->id || !o->name || object_fields(o, pem) < 0) {
    free(o->id);
    free(o->name);
    object_clear(o);
    return NULL;
  }
  w->nobjs++;
  return o;
}

static void gen_str(yajl_gen g, const char *s);

static void gen_object(yajl_gen g, const struct world_object *o, bool full)
{
  yajl_gen_map_open(g);
  gen_str(g, "id");
  gen_str(g, o->id);
  gen_str(g, "name");
  gen_str(g, o->name);
  gen_str(g, "type");
  gen_str(g, "global");
  gen_str(g, "instance_id");
  gen_str(g, "common");
  gen_str(g, "common_name");
  gen_str(g, o->common_name);
  gen_str(g, "san");
  yajl_gen_array_open(g);
  for (size_t k = 0; k < o->nsan; k++)
    gen_str(g, o->san[k]);
  yajl_gen_array_close(g);
  gen_str(g, "not_after");
  gen_str(g, o->not_after);
  if (full) {
    gen_str(g, "serial_number");
    gen_str(g, o->serial);
  }
  yajl_gen_map_close(g);
}

static char *gen_take(yajl_gen g)
{
  const unsigned char *buf;
  size_t len;
  char *out = NULL;

  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
    out = strndup((const char *)buf, len);
  yajl_gen_free(g);
  if (!out)
    abort();
  return out;
}

static char *render_object(const struct world_object *o)
{
  yajl_gen g = yajl_gen_alloc(NULL);

  gen_object(g, o, true);
  return gen_take(g);
}

/* The value of query parameter key (not decoded: the tests' names need
 * no escaping), or "" when absent. */
static void query_value(const char *url, const char *key, char *out, size_t len)
{
  const char *q = strchr(url, '?');
  size_t klen = strlen(key);

  out[0] = '\0';
  while (q && *q) {
    q++;
    if (strncmp(q, key, klen) == 0 && q[klen] == '=') {
      size_t n = strcspn(q + klen + 1, "&");
      snprintf(out, len, "%.*s", (int)n, q + klen + 1);
      return;
    }
    q = strchr(q, '&');
  }
}

static char *render_objects(const struct world *w, const char *url)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  char name[128], cn[256];
  size_t n = 0;

  query_value(url, "name", name, sizeof(name));
  query_value(url, "common_name", cn, sizeof(cn));
  yajl_gen_map_open(g);
  gen_str(g, "certs");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < w->nobjs; i++) {
    const struct world_object *o = &w->objs[i];
    if ((name[0] && !strstr(o->name, name)) ||
        (cn[0] && strcmp(o->common_name, cn) != 0))
      continue;
    gen_object(g, o, false);
    n++;
  }
  yajl_gen_array_close(g);
  gen_str(g, "total");
  yajl_gen_integer(g, (long long)n);
  gen_str(g, "size");
  yajl_gen_integer(g, (long long)n);
  yajl_gen_map_close(g);
  return gen_take(g);
}

/* The body's name and cert_content (strings of the parsed tree), or -1. */
static int form_fields(const struct fake_call *c, yajl_val *tree,
                       const char **name, const char **pem)
{
  static const char *name_path[] = {"name", NULL};
  static const char *pem_path[] = {"cert_content", NULL};
  static const char *key_path[] = {"private_key", NULL};

  *tree = c->body ? yajl_tree_parse(c->body, NULL, 0) : NULL;
  *name = YAJL_GET_STRING(yajl_tree_get(*tree, name_path, yajl_t_string));
  *pem = YAJL_GET_STRING(yajl_tree_get(*tree, pem_path, yajl_t_string));
  if (!*name || !*pem ||
      !YAJL_GET_STRING(yajl_tree_get(*tree, key_path, yajl_t_string)))
    return -1;
  return 0;
}

static void cert_create(struct world *w, const struct fake_call *c,
                        struct fake_answer *a)
{
  const char *name, *pem;
  yajl_val tree;
  const struct world_object *o;

  if (form_fields(c, &tree, &name, &pem) < 0) {
    answer_error(a, 400, "APIG.2001", "missing field");
  } else if (w->cert_quota && w->nobjs >= w->cert_quota) {
    answer_error(a, 400, "APIG.3199", "certificate quota exceeded");
  } else if (!(o = world_add_object(w, NULL, name, pem))) {
    answer_error(a, 400, "APIG.2106", "Invalid certificate or private key");
  } else if (w->lose_creates) {
    w->lose_creates--;
    answer_error(a, 500, "APIG.9999", "System error");
  } else {
    a->status = 200;
    a->body = render_object(o);
  }
  yajl_tree_free(tree);
}

static void cert_update(struct world *w, const struct fake_call *c,
                        struct fake_answer *a)
{
  struct world_object *o =
      (struct world_object *)world_find_object(w, c->cert_id);
  const char *name, *pem;
  yajl_val tree;

  if (!o) {
    answer_error(a, 404, "APIG.3025", "certificate not found");
    return;
  }
  if (form_fields(c, &tree, &name, &pem) < 0 || object_fields(o, pem) < 0)
    answer_error(a, 400, "APIG.2106", "Invalid certificate or private key");
  else {
    a->status = 200;
    a->body = render_object(o);
  }
  yajl_tree_free(tree);
}

static void cert_delete(struct world *w, const struct fake_call *c,
                        struct fake_answer *a)
{
  const struct world_object *o = world_find_object(w, c->cert_id);
  size_t i;

  if (!o) {
    answer_error(a, 404, "APIG.3025", "certificate not found");
    return;
  }
  if (w->refuse_deletes || world_count(w, c->cert_id) > 0) {
    answer_error(a, 400, "APIG.3400", "certificate is bound to domains");
    return;
  }
  i = (size_t)(o - w->objs);
  object_clear(&w->objs[i]);
  free(w->objs[i].id);
  free(w->objs[i].name);
  w->objs[i] = w->objs[--w->nobjs];
  a->status = 204;
}

static void gen_str(yajl_gen g, const char *s)
{
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* One page, in the order the bindings were made (as stable as APIG's). */
static char *render_page(const struct world_cert *wc, long offset, long limit)
{
  size_t total = wc ? wc->n : 0;
  size_t from = offset > 0 ? (size_t)offset : 0;
  size_t to = from + (size_t)(limit > 0 ? limit : 20);
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t len;
  char *out = NULL;

  if (!g)
    return NULL;
  if (from > total)
    from = total;
  if (to > total)
    to = total;
  yajl_gen_map_open(g);
  gen_str(g, "total");
  yajl_gen_integer(g, (long long)total);
  gen_str(g, "size");
  yajl_gen_integer(g, (long long)(to - from));
  gen_str(g, "bound_domains");
  yajl_gen_array_open(g);
  for (size_t i = from; i < to; i++) {
    yajl_gen_map_open(g);
    gen_str(g, "url_domain");
    gen_str(g, wc->b[i].domain);
    gen_str(g, "instance_id");
    gen_str(g, wc->b[i].instance);
    gen_str(g, "verified_client_certificate_enabled");
    yajl_gen_bool(g, wc->b[i].verify);
    gen_str(g, "status");
    yajl_gen_integer(g, 3);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
    out = strndup((const char *)buf, len);
  yajl_gen_free(g);
  return out;
}

/* "2026-03-01T12:00:00Z" for t, the form APIG's examples give. */
static void iso_time(int64_t t, char buf[32])
{
  time_t tt = (time_t)t;
  struct tm tm;

  gmtime_r(&tt, &tm);
  strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *render_show(const struct world_cert *wc)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t len;
  char when[32], *out = NULL;

  if (!g)
    return NULL;
  iso_time(wc->not_after, when);
  yajl_gen_map_open(g);
  gen_str(g, "id");
  gen_str(g, wc->id);
  gen_str(g, "name");
  gen_str(g, "cert_world");
  gen_str(g, "san");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < wc->nsan; i++)
    gen_str(g, wc->san[i]);
  yajl_gen_array_close(g);
  gen_str(g, "not_after");
  gen_str(g, when);
  gen_str(g, "serial_number");
  gen_str(g, "13010");
  yajl_gen_map_close(g);
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
    out = strndup((const char *)buf, len);
  yajl_gen_free(g);
  return out;
}

static void answer_show(const struct world *w, const struct fake_call *c,
                        struct fake_answer *a)
{
  const struct world_cert *wc = find_cert(w, c->cert_id);

  if (w->show_fails) {
    answer_error(a, 500, "APIG.9999", "System error");
    return;
  }
  if (!wc || !wc->shown) {
    answer_error(a, 404, "APIG.3025", "certificate not found");
    return;
  }
  a->status = 200;
  if (!(a->body = render_show(wc)))
    abort();
}

static long query_limit(const char *url)
{
  const char *l = strstr(url, "limit=");

  return l ? strtol(l + 6, NULL, 10) : 20;
}

void world_script(void *arg, struct fake_call *c, struct fake_answer *a)
{
  struct world *w = arg;

  a->latency_ms = w->read_latency_ms ? w->read_latency_ms : 1;
  snprintf(a->request_id, sizeof(a->request_id), "req-%zu", c->index);
  if (!c->authorized) {
    answer_error(a, 401, "APIG.1002",
                 "Incorrect token or token resolution "
                 "failed");
    return;
  }
  switch (c->op) {
  case APIG_OP_LIST:
    a->status = 200;
    a->body =
        render_page(find_cert(w, c->cert_id), c->offset, query_limit(c->url));
    if (!a->body)
      abort();
    return;
  case APIG_OP_ATTACH:
  case APIG_OP_DETACH:
    a->latency_ms = w->write_latency_ms ? w->write_latency_ms : 1;
    world_apply(w, c, a);
    return;
  case APIG_OP_CERT_LIST:
    a->status = 200;
    a->body = render_objects(w, c->url);
    return;
  case APIG_OP_CERT_SHOW: {
    /* an object made through the calls below, else a certificate given
     * names by world_cert_show (an id certificate of the file) */
    const struct world_object *o = world_find_object(w, c->cert_id);
    if (!o) {
      answer_show(w, c, a);
      return;
    }
    a->status = 200;
    a->body = render_object(o);
    return;
  }
  case APIG_OP_CERT_CREATE:
    cert_create(w, c, a);
    return;
  case APIG_OP_CERT_UPDATE:
    cert_update(w, c, a);
    return;
  case APIG_OP_CERT_DELETE:
    cert_delete(w, c, a);
    return;
  default:
    answer_error(a, 404, "APIG.3002", "not found");
    return;
  }
}
