/* SPDX-License-Identifier: MIT */
/*
 * emit: a model back to a desired-state file (config_emit, config.h).
 * libyaml's emitter writes it, so every scalar is quoted exactly when
 * YAML needs it (a wildcard domain, a path with ": "); this file only
 * decides the order and the grouping of the bindings.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct emit {
  yaml_emitter_t e;
  yaml_event_t ev;
  char *buf;
  size_t len, cap;
  int err; /* the first failure; every later call does nothing */
  const struct config *cfg;
};

static int on_output(void *data, unsigned char *bytes, size_t size)
{
  struct emit *m = data;

  if (m->len + size + 1 > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->len + size + 1)
      cap *= 2;
    char *b = realloc(m->buf, cap);
    if (!b)
      return 0;
    m->buf = b;
    m->cap = cap;
  }
  memcpy(m->buf + m->len, bytes, size);
  m->len += size;
  m->buf[m->len] = '\0';
  return 1;
}

/* Emit the event just initialised (made: its initialiser's answer). */
static void put(struct emit *m, int made)
{
  if (m->err) {
    if (made)
      yaml_event_delete(&m->ev);
    return;
  }
  if (!made)
    m->err = -ENOMEM;
  else if (!yaml_emitter_emit(&m->e, &m->ev))
    m->err = m->e.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
}

static void scalar_styled(struct emit *m, const char *s,
                          yaml_scalar_style_t style)
{
  put(m, yaml_scalar_event_initialize(&m->ev, NULL, NULL, (yaml_char_t *)s,
                                      (int)strlen(s), 1, 1, style));
}

/* A string: plain when YAML allows, quoted when it must be. */
static void str(struct emit *m, const char *s)
{
  scalar_styled(m, s, YAML_ANY_SCALAR_STYLE);
}

static void u32(struct emit *m, uint32_t v)
{
  char b[16];

  snprintf(b, sizeof(b), "%u", (unsigned)v);
  scalar_styled(m, b, YAML_PLAIN_SCALAR_STYLE);
}

/* The shortest decimal that reads back as v; a whole number as one
 * (1000, not 1e+03). */
static void format_double(char *out, size_t n, double v)
{
  if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
    snprintf(out, n, "%lld", (long long)v);
    return;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(out, n, "%.*g", p, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

static void dbl(struct emit *m, double v)
{
  char b[40];

  format_double(b, sizeof(b), v);
  scalar_styled(m, b, YAML_PLAIN_SCALAR_STYLE);
}

static void map_open(struct emit *m, bool flow)
{
  put(m, yaml_mapping_start_event_initialize(&m->ev, NULL, NULL, 1,
                                             flow ? YAML_FLOW_MAPPING_STYLE
                                                  : YAML_BLOCK_MAPPING_STYLE));
}

static void map_close(struct emit *m)
{
  put(m, yaml_mapping_end_event_initialize(&m->ev));
}

static void seq_open(struct emit *m, bool flow)
{
  put(m, yaml_sequence_start_event_initialize(
             &m->ev, NULL, NULL, 1,
             flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_close(struct emit *m)
{
  put(m, yaml_sequence_end_event_initialize(&m->ev));
}

static void kv_str(struct emit *m, const char *k, const char *v)
{
  str(m, k);
  str(m, v);
}

static void kv_u32(struct emit *m, const char *k, uint32_t v)
{
  str(m, k);
  u32(m, v);
}

static void kv_dbl(struct emit *m, const char *k, double v)
{
  str(m, k);
  dbl(m, v);
}

/* ---- accounts ---------------------------------------------------------- */

/* A secret as its reference: source is "KIND WHERE" ("file /path",
 * "env NAME"), which is { KIND: WHERE } in the file. The value is never
 * looked at. */
static void secret_ref(struct emit *m, const char *key,
                       const struct config_secret *s)
{
  const char *sp = s->source ? strchr(s->source, ' ') : NULL;
  char kind[32];

  if (!sp || (size_t)(sp - s->source) >= sizeof(kind)) {
    if (s->source)
      m->err = m->err ? m->err : -EINVAL;
    return;
  }
  memcpy(kind, s->source, (size_t)(sp - s->source));
  kind[sp - s->source] = '\0';
  str(m, key);
  map_open(m, true);
  kv_str(m, kind, sp + 1);
  map_close(m);
}

/* key: url, unless url is what the loader would default it to. */
static void endpoint(struct emit *m, const char *key, const char *url,
                     const char *service, const char *region)
{
  char def[256];

  snprintf(def, sizeof(def), "https://%s.%s.myhuaweicloud.com", service,
           region);
  if (url && strcmp(url, def) != 0)
    kv_str(m, key, url);
}

static void auth(struct emit *m, const struct config_account *a)
{
  str(m, "auth");
  map_open(m, false);
  kv_str(m, "method", config_auth_method_name(a->auth_method));
  secret_ref(m, "access_key", &a->access_key);
  secret_ref(m, "secret_key", &a->secret_key);
  secret_ref(m, "token", &a->token);
  if (a->auth_method == CONFIG_AUTH_PASSWORD) {
    endpoint(m, "iam_endpoint", a->iam_endpoint, "iam", a->region);
    kv_str(m, "user", a->user);
    kv_str(m, "domain", a->domain);
  }
  secret_ref(m, "password", &a->password);
  map_close(m);
}

static void account(struct emit *m, const struct config_account *a)
{
  str(m, a->name);
  map_open(m, false);
  kv_str(m, "region", a->region);
  kv_str(m, "project_id", a->project_id);
  endpoint(m, "endpoint", a->endpoint, "apig", a->region);
  auth(m, a);
  if (a->ca_file) {
    str(m, "tls");
    map_open(m, true);
    kv_str(m, "ca_file", a->ca_file);
    map_close(m);
  }
  str(m, "limits");
  map_open(m, true);
  kv_dbl(m, "requests_per_second", a->limits.requests_per_second);
  kv_u32(m, "burst", a->limits.burst);
  kv_u32(m, "max_in_flight", a->limits.max_in_flight);
  map_close(m);
  map_close(m);
}

/* ---- maps sorted by name ------------------------------------------------- */

/* Every named element starts with its name: sort pointers to them by it. */
_Static_assert(offsetof(struct config_account, name) == 0, "name first");
_Static_assert(offsetof(struct config_gateway, name) == 0, "name first");
_Static_assert(offsetof(struct config_certificate, name) == 0, "name first");

static int by_name(const void *a, const void *b)
{
  return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

/* Pointers to the n elements of size sz at base, sorted by name. */
static const void **sorted(const void *base, size_t n, size_t sz)
{
  const void **v = calloc(n + 1, sizeof(*v));

  for (size_t i = 0; v && i < n; i++)
    v[i] = (const char *)base + i * sz;
  if (v)
    qsort(v, n, sizeof(*v), by_name);
  return v;
}

static void accounts(struct emit *m)
{
  const struct config *c = m->cfg;
  const void **v = sorted(c->accounts, c->naccounts, sizeof(*c->accounts));

  if (!v) {
    m->err = -ENOMEM;
    return;
  }
  str(m, "accounts");
  map_open(m, false);
  for (size_t i = 0; i < c->naccounts; i++)
    account(m, v[i]);
  map_close(m);
  free(v);
}

static void gateways(struct emit *m)
{
  const struct config *c = m->cfg;
  const void **v = sorted(c->gateways, c->ngateways, sizeof(*c->gateways));

  if (!v) {
    m->err = -ENOMEM;
    return;
  }
  str(m, "gateways");
  map_open(m, false);
  for (size_t i = 0; i < c->ngateways; i++) {
    const struct config_gateway *g = v[i];
    str(m, g->name);
    map_open(m, true);
    kv_str(m, "account", c->accounts[g->account].name);
    kv_str(m, "instance_id", g->instance_id);
    if (g->ningress > 0) {
      str(m, "ingress");
      seq_open(m, true);
      for (size_t a = 0; a < g->ningress; a++)
        str(m, g->ingress[a].text);
      seq_close(m);
    }
    map_close(m);
  }
  map_close(m);
  free(v);
}

/* A certificate from files: its paths and the key's reference, never the
 * key; type and update only when they are not the defaults. */
static void managed_certificate(struct emit *m,
                                const struct config_certificate *x)
{
  const struct config_managed_cert *f = x->managed;

  kv_str(m, "cert_file", f->cert_file);
  secret_ref(m, "key", &f->key);
  if (f->type == CONFIG_CERT_INSTANCE) {
    kv_str(m, "type", config_cert_type_name(f->type));
    kv_str(m, "gateway", m->cfg->gateways[x->gateway].name);
  }
  if (f->update != CONFIG_UPDATE_REPLACE)
    kv_str(m, "update", config_cert_update_name(f->update));
}

static void certificates(struct emit *m)
{
  const struct config *c = m->cfg;
  const void **v =
      sorted(c->certificates, c->ncertificates, sizeof(*c->certificates));

  if (!v) {
    m->err = -ENOMEM;
    return;
  }
  str(m, "certificates");
  map_open(m, false);
  for (size_t i = 0; i < c->ncertificates; i++) {
    const struct config_certificate *x = v[i];
    str(m, x->name);
    map_open(m, true);
    kv_str(m, "account", c->accounts[x->account].name);
    if (x->managed)
      managed_certificate(m, x);
    else
      kv_str(m, "id", x->id);
    map_close(m);
  }
  map_close(m);
  free(v);
}

/* ---- bindings, grouped --------------------------------------------------- */

/* One (certificate, domain, client verification) with the gateways that
 * have it, their names sorted. */
struct domain_set {
  const char *cert;
  const char *domain;
  bool verify;
  const char **gws; /* into the names array of group_bindings */
  size_t ngws;
};

/* A binding as names, to sort by. */
struct row {
  const char *cert, *domain, *gw;
  bool verify;
};

static int row_cmp(const void *a, const void *b)
{
  const struct row *x = a, *y = b;
  int c = strcmp(x->cert, y->cert);

  if (!c)
    c = strcmp(x->domain, y->domain);
  if (!c)
    c = (int)x->verify - (int)y->verify;
  return c ? c : strcmp(x->gw, y->gw);
}

static int gws_cmp(const struct domain_set *x, const struct domain_set *y)
{
  for (size_t i = 0; i < x->ngws && i < y->ngws; i++) {
    int c = strcmp(x->gws[i], y->gws[i]);
    if (c)
      return c;
  }
  return (x->ngws > y->ngws) - (x->ngws < y->ngws);
}

/* The order of the file's entries: certificate, gateway set, flag; then
 * the domains of one entry. */
static int set_cmp(const void *a, const void *b)
{
  const struct domain_set *x = a, *y = b;
  int c = strcmp(x->cert, y->cert);

  if (!c)
    c = gws_cmp(x, y);
  if (!c)
    c = (int)x->verify - (int)y->verify;
  return c ? c : strcmp(x->domain, y->domain);
}

static bool same_entry(const struct domain_set *x, const struct domain_set *y)
{
  return strcmp(x->cert, y->cert) == 0 && gws_cmp(x, y) == 0 &&
         x->verify == y->verify;
}

/* The model's bindings as sorted domain sets (*sets and *names to free):
 * 0 or -ENOMEM. */
static int group_bindings(const struct config *c, struct domain_set **sets,
                          size_t *nsets, const char ***names)
{
  struct row *r = calloc(c->nbindings + 1, sizeof(*r));
  const char **gw = calloc(c->nbindings + 1, sizeof(*gw));
  struct domain_set *s = calloc(c->nbindings + 1, sizeof(*s));
  size_t n = 0;

  if (!r || !gw || !s) {
    free(r);
    free(gw);
    free(s);
    return -ENOMEM;
  }
  for (size_t i = 0; i < c->nbindings; i++) {
    const struct config_binding *b = &c->bindings[i];
    r[i] = (struct row){c->certificates[b->certificate].name, b->domain,
                        c->gateways[b->gateway].name, b->verify_client};
  }
  qsort(r, c->nbindings, sizeof(*r), row_cmp);
  for (size_t i = 0; i < c->nbindings; i++) {
    gw[i] = r[i].gw;
    if (n && strcmp(s[n - 1].cert, r[i].cert) == 0 &&
        strcmp(s[n - 1].domain, r[i].domain) == 0 &&
        s[n - 1].verify == r[i].verify) {
      s[n - 1].ngws++;
      continue;
    }
    s[n++] =
        (struct domain_set){r[i].cert, r[i].domain, r[i].verify, &gw[i], 1};
  }
  free(r);
  qsort(s, n, sizeof(*s), set_cmp);
  *sets = s;
  *nsets = n;
  *names = gw;
  return 0;
}

/* One entry: the sets s[0..n), which share certificate, gateways, flag. */
static void binding_entry(struct emit *m, const struct domain_set *s, size_t n)
{
  map_open(m, false);
  kv_str(m, "certificate", s->cert);
  str(m, "gateways");
  seq_open(m, true);
  for (size_t g = 0; g < s->ngws; g++)
    str(m, s->gws[g]);
  seq_close(m);
  str(m, "domains");
  seq_open(m, false);
  for (size_t i = 0; i < n; i++)
    str(m, s[i].domain);
  seq_close(m);
  if (s->verify) {
    str(m, "verify_client");
    scalar_styled(m, "true", YAML_PLAIN_SCALAR_STYLE);
  }
  map_close(m);
}

static void bindings(struct emit *m)
{
  struct domain_set *s;
  const char **names;
  size_t n, start = 0;

  if (group_bindings(m->cfg, &s, &n, &names) < 0) {
    m->err = -ENOMEM;
    return;
  }
  str(m, "bindings");
  seq_open(m, false);
  for (size_t i = 1; i <= n; i++) {
    if (i == n || !same_entry(&s[start], &s[i])) {
      binding_entry(m, &s[start], i - start);
      start = i;
    }
  }
  seq_close(m);
  free(s);
  free(names);
}

/* ---- policy, retry, rollout, daemon ---------------------------------------
 */

static void policy(struct emit *m)
{
  const struct config_policy *p = &m->cfg->policy;

  str(m, "policy");
  map_open(m, false);
  kv_str(m, "mode", config_mode_name(p->mode));
  kv_u32(m, "batch_size", p->batch_size);
  kv_dbl(m, "max_detach_ratio", p->max_detach_ratio);
  kv_u32(m, "max_detach_count", p->max_detach_count);
  kv_u32(m, "confirm_timeout_s", p->confirm_timeout_s);
  kv_u32(m, "confirm_delay_ms", p->confirm_delay_ms);
  kv_u32(m, "retire_after_s", p->retire_after_s);
  kv_u32(m, "expiry_warning_days", p->expiry_warning_days);
  kv_str(m, "verify", config_verify_name(p->verify));
  map_close(m);
}

static void retry(struct emit *m)
{
  const struct config_retry *r = &m->cfg->retry;

  str(m, "retry");
  map_open(m, true);
  kv_u32(m, "max_attempts", r->max_attempts);
  kv_u32(m, "base_delay_ms", r->base_delay_ms);
  kv_u32(m, "max_delay_ms", r->max_delay_ms);
  map_close(m);
}

static void rollout(struct emit *m)
{
  const struct config_rollout *r = &m->cfg->rollout;
  char b[48];

  if (!r->enabled)
    return;
  str(m, "rollout");
  map_open(m, false);
  str(m, "waves");
  seq_open(m, true);
  for (size_t i = 0; i < r->nwaves; i++) {
    if (!r->waves[i].is_share) {
      u32(m, r->waves[i].count);
      continue;
    }
    format_double(b, sizeof(b) - 1, r->waves[i].share * 100.0);
    strcat(b, "%");
    str(m, b);
  }
  seq_close(m);
  kv_u32(m, "soak_s", r->soak_s);
  kv_dbl(m, "abort_failure_ratio", r->abort_failure_ratio);
  map_close(m);
}

static void daemon_section(struct emit *m)
{
  const struct config_daemon *d = &m->cfg->daemon;

  str(m, "daemon");
  map_open(m, false);
  kv_u32(m, "resync_interval_s", d->resync_interval_s);
  if (d->state_dir)
    kv_str(m, "state_dir", d->state_dir);
  if (d->metrics_file)
    kv_str(m, "metrics_file", d->metrics_file);
  map_close(m);
}

/* ---- the document ----------------------------------------------------------
 */

/* Each line of header as a comment line. */
static void comment(struct emit *m, const char *header)
{
  while (header && *header && !m->err) {
    size_t n = strcspn(header, "\n");
    if (!on_output(m, (unsigned char *)"# ", 2) ||
        !on_output(m, (unsigned char *)header, n) ||
        !on_output(m, (unsigned char *)"\n", 1))
      m->err = -ENOMEM;
    header += n + (header[n] == '\n');
  }
}

static void document(struct emit *m)
{
  put(m, yaml_stream_start_event_initialize(&m->ev, YAML_UTF8_ENCODING));
  put(m, yaml_document_start_event_initialize(&m->ev, NULL, NULL, NULL, 1));
  map_open(m, false);
  kv_u32(m, "version", 1);
  accounts(m);
  gateways(m);
  certificates(m);
  bindings(m);
  policy(m);
  retry(m);
  rollout(m);
  daemon_section(m);
  map_close(m);
  put(m, yaml_document_end_event_initialize(&m->ev, 1));
  put(m, yaml_stream_end_event_initialize(&m->ev));
}

int config_emit(const struct config *cfg, const char *header, char **out,
                size_t *len)
{
  struct emit m = {.cfg = cfg};

  *out = NULL;
  *len = 0;
  if (!yaml_emitter_initialize(&m.e))
    return -ENOMEM;
  yaml_emitter_set_output(&m.e, on_output, &m);
  yaml_emitter_set_unicode(&m.e, 1);
  yaml_emitter_set_indent(&m.e, 2);
  yaml_emitter_set_width(&m.e, -1); /* a long line beats a folded scalar */
  comment(&m, header);
  document(&m);
  if (!m.err && !yaml_emitter_flush(&m.e))
    m.err = -ENOMEM;
  yaml_emitter_delete(&m.e);
  if (m.err) {
    free(m.buf);
    return m.err;
  }
  *out = m.buf;
  *len = m.len;
  return 0;
}
