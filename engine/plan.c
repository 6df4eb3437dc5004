/* SPDX-License-Identifier: MIT */
/*
 * plan: desired (config) against live (APIG) by sorted merge, per
 * certificate. Sorting instead of hashing keeps the whole diff at
 * O(n log n) with no table to size, and gives a stable order for the
 * human diff, the JSON plan and the checksum.
 */
#include "plan.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "ledger.h"

int live_state_init(struct live_state *ls, size_t ncerts)
{
  ls->certs = calloc(ncerts ? ncerts : 1, sizeof(*ls->certs));
  ls->ncerts = ncerts;
  return ls->certs ? 0 : -ENOMEM;
}

int live_cert_add(struct live_cert *lc, const char *domain,
                  const char *instance_id, bool verify_client)
{
  struct apig_bindings *b = &lc->b;
  struct apig_binding *e;

  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    struct apig_binding *p = realloc(b->items, cap * sizeof(*p));
    if (!p)
      return -ENOMEM;
    b->items = p;
    b->cap = cap;
  }
  e = &b->items[b->n];
  *e = (struct apig_binding){0}; /* instance_shared false: its own copy */
  e->url_domain = strdup(domain);
  e->instance_id = strdup(instance_id);
  if (!e->url_domain || !e->instance_id) {
    free(e->url_domain);
    free(e->instance_id);
    return -ENOMEM;
  }
  for (char *p = e->url_domain; *p; p++)
    *p = (char)tolower((unsigned char)*p);
  e->verify_client = verify_client;
  b->n++;
  return 0;
}

static int cmp_pair(const char *inst_a, const char *dom_a, const char *inst_b,
                    const char *dom_b)
{
  int c = strcmp(dom_a, dom_b);
  return c ? c : strcmp(inst_a, inst_b);
}

/* The order of apig_bindings_dedupe: (url_domain, instance_id). */
static int cmp_live(const void *a, const void *b)
{
  const struct apig_binding *x = a, *y = b;
  return cmp_pair(x->instance_id, x->url_domain, y->instance_id, y->url_domain);
}

void live_cert_finish(struct live_cert *lc)
{
  apig_bindings_dedupe(&lc->b);
  lc->known = true;
}

void live_cert_clear(struct live_cert *lc)
{
  apig_bindings_free(&lc->b);
  lc->known = false;
  apig_cert_free(&lc->show);
  lc->shown = false;
}

void live_state_free(struct live_state *ls)
{
  for (size_t i = 0; i < ls->ncerts; i++)
    live_cert_clear(&ls->certs[i]);
  free(ls->certs);
  ls->certs = NULL;
  ls->ncerts = 0;
}

const struct apig_binding *live_cert_find(const struct live_cert *lc,
                                          const char *instance_id,
                                          const char *domain)
{
  struct apig_binding key = {.url_domain = (char *)domain,
                             .instance_id = (char *)instance_id};
  if (lc->b.n == 0) /* items may be NULL: bsearch's is declared nonnull */
    return NULL;
  return bsearch(&key, lc->b.items, lc->b.n, sizeof(*lc->b.items), cmp_live);
}

bool plan_item_shows(const struct live_cert *lc, const struct plan_item *it)
{
  const struct apig_binding *e =
      live_cert_find(lc, it->instance_id, it->domain);

  if (it->op == PLAN_DETACH)
    return e == NULL;
  return e != NULL && e->verify_client == it->verify_client;
}

const char *plan_cert_op_name(enum plan_cert_op op)
{
  switch (op) {
  case PLAN_CERT_UPLOAD:
    return "upload";
  case PLAN_CERT_UPDATE:
    return "update";
  case PLAN_CERT_DELETE:
    break;
  }
  return "delete";
}

/* What names a certificate in the checksum: its id, or for a certificate
 * given as files its leaf's hash (its object may not exist when `plan`
 * runs and be created by `apply` before its reads). */
static const char *cert_key(const struct config_certificate *c)
{
  return c->managed ? c->managed->file.sha256 : c->id;
}

const char *plan_op_name(enum plan_op op)
{
  switch (op) {
  case PLAN_ATTACH:
    return "attach";
  case PLAN_CHANGE:
    return "change";
  case PLAN_DETACH:
    return "detach";
  }
  return "?";
}

/* A (certificate, instance, domain) triple wanted by the file. */
struct wanted {
  uint32_t cert;
  const char *instance_id;
  const char *domain;
  size_t binding;
};

static int cmp_wanted_pair(const void *a, const void *b)
{
  const struct wanted *x = a, *y = b;
  return cmp_pair(x->instance_id, x->domain, y->instance_id, y->domain);
}

static int cmp_wanted(const void *a, const void *b)
{
  const struct wanted *x = a, *y = b;
  if (x->cert != y->cert)
    return x->cert < y->cert ? -1 : 1;
  return cmp_wanted_pair(a, b);
}

static int cmp_item(const void *a, const void *b)
{
  const struct plan_item *x = a, *y = b;
  int c;

  if (x->cert != y->cert)
    return x->cert < y->cert ? -1 : 1;
  if (x->op != y->op)
    return x->op < y->op ? -1 : 1;
  c = strcmp(x->domain, y->domain);
  return c ? c : strcmp(x->instance_id, y->instance_id);
}

static bool items_sorted(const struct plan_item *it, size_t n)
{
  for (size_t i = 1; i < n; i++) {
    if (cmp_item(&it[i - 1], &it[i]) > 0)
      return false;
  }
  return true;
}

struct builder {
  struct plan *p;
  size_t cap;
  size_t stale_cap;
  size_t move_cap;
  size_t uncertain_cap;
  size_t refused_cap;
};

static int push_item(struct builder *b, const struct plan_item *it)
{
  struct plan *p = b->p;

  if (p->nitems == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    struct plan_item *n = realloc(p->items, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->items = n;
    b->cap = cap;
  }
  p->items[p->nitems++] = *it;
  switch (it->op) {
  case PLAN_ATTACH:
    p->nattach++;
    break;
  case PLAN_CHANGE:
    p->nchange++;
    break;
  case PLAN_DETACH:
    p->ndetach++;
    break;
  }
  return 0;
}

static int push_stale(struct builder *b, size_t idx)
{
  struct plan *p = b->p;

  if (p->nstale_ledger == b->stale_cap) {
    size_t cap = b->stale_cap ? b->stale_cap * 2 : 16;
    size_t *n = realloc(p->stale_ledger, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->stale_ledger = n;
    b->stale_cap = cap;
  }
  p->stale_ledger[p->nstale_ledger++] = idx;
  return 0;
}

static int push_uncertain(struct builder *b, const struct plan_uncertain *u)
{
  struct plan *p = b->p;

  if (p->nuncertain == b->uncertain_cap) {
    size_t cap = b->uncertain_cap ? b->uncertain_cap * 2 : 16;
    struct plan_uncertain *n = realloc(p->uncertain, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->uncertain = n;
    b->uncertain_cap = cap;
  }
  p->uncertain[p->nuncertain++] = *u;
  return 0;
}

static int push_move(struct builder *b, size_t binding, uint32_t from_cert)
{
  struct plan *p = b->p;

  if (p->nmoves == b->move_cap) {
    size_t cap = b->move_cap ? b->move_cap * 2 : 16;
    struct plan_move *n = realloc(p->moves, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->moves = n;
    b->move_cap = cap;
  }
  p->moves[p->nmoves++] = (struct plan_move){binding, from_cert};
  return 0;
}

static int cmp_move(const void *a, const void *b)
{
  const struct plan_move *x = a, *y = b;
  if (x->binding != y->binding)
    return x->binding < y->binding ? -1 : 1;
  return x->from_cert < y->from_cert ? -1 : x->from_cert > y->from_cert;
}

static int cmp_refusal(const void *a, const void *b)
{
  const struct plan_refusal *x = a, *y = b;
  return x->binding < y->binding ? -1 : x->binding > y->binding;
}

/* Wanted triples sorted by certificate then (domain, instance). */
static struct wanted *collect_wanted(const struct config *cfg)
{
  struct wanted *w = malloc((cfg->nbindings ? cfg->nbindings : 1) * sizeof(*w));

  if (!w)
    return NULL;
  for (size_t i = 0; i < cfg->nbindings; i++) {
    const struct config_binding *b = &cfg->bindings[i];
    w[i].cert = (uint32_t)b->certificate;
    w[i].instance_id = cfg->gateways[b->gateway].instance_id;
    w[i].domain = b->domain;
    w[i].binding = i;
  }
  qsort(w, cfg->nbindings, sizeof(*w), cmp_wanted);
  return w;
}

/* Whether the live instance belongs to a gateway of the file (of the
 * certificate's account). Gateways are few; a sorted copy would pay off
 * only for very large fleets, so this is a sorted-array lookup. */
struct gw_index {
  const char *instance_id;
  uint32_t gateway;
};

static int cmp_gw_index(const void *a, const void *b)
{
  return strcmp(((const struct gw_index *)a)->instance_id,
                ((const struct gw_index *)b)->instance_id);
}

static int diff_certificate(struct builder *bld, const struct config *cfg,
                            uint32_t c, const struct wanted *w, size_t nw,
                            const struct live_cert *lc,
                            const struct gw_index *gws)
{
  size_t i = 0, j = 0;
  int rc = 0;

  /* w[0..nw) and lc->b.items are both sorted by (domain, instance). */
  while (rc == 0 && (i < nw || j < lc->b.n)) {
    int cmp;
    if (i == nw)
      cmp = 1;
    else if (j == lc->b.n)
      cmp = -1;
    else
      cmp = cmp_pair(w[i].instance_id, w[i].domain, lc->b.items[j].instance_id,
                     lc->b.items[j].url_domain);
    if (cmp > 0) { /* live only: a detach candidate, decided by the ledger */
      struct gw_index key = {.instance_id = lc->b.items[j].instance_id};
      if (bsearch(&key, gws, cfg->ngateways, sizeof(*gws), cmp_gw_index))
        bld->p->live_total++;
      j++;
      continue;
    }
    const struct config_binding *b = &cfg->bindings[w[i].binding];
    struct plan_item it = {
        .cert = c,
        .gateway = (uint32_t)b->gateway,
        .domain = b->domain,
        .instance_id = w[i].instance_id,
        .verify_client = b->verify_client,
        .binding = w[i].binding,
    };
    if (cmp < 0) {
      it.op = PLAN_ATTACH;
      rc = push_item(bld, &it);
    } else {
      bld->p->live_total++;
      if (lc->b.items[j].verify_client == b->verify_client) {
        bld->p->unchanged++;
      } else {
        it.op = PLAN_CHANGE;
        it.has_from = true;
        it.from_cert = c;
        it.from_verify_client = lc->b.items[j].verify_client;
        rc = push_item(bld, &it);
      }
      j++;
    }
    i++;
  }
  return rc;
}

struct cert_id {
  const char *id;
  uint32_t cert;
};

static int cmp_cert_id(const void *a, const void *b)
{
  return strcmp(((const struct cert_id *)a)->id,
                ((const struct cert_id *)b)->id);
}

/* A crash-left intent (ledger.h): live → uncertain, never detached; no
 * longer live → forgotten (its attach never showed, or it went). */
static int diff_intent(struct builder *bld, const struct ledger_entry *le,
                       size_t k, uint32_t cert, const struct live_cert *lc,
                       const struct gw_index *gws, size_t ngws)
{
  const struct apig_binding *e =
      live_cert_find(lc, le->instance_id, le->domain);
  struct gw_index gk = {.instance_id = le->instance_id};
  const struct gw_index *g;

  if (!e)
    return push_stale(bld, k);
  g = bsearch(&gk, gws, ngws, sizeof(*gws), cmp_gw_index);
  return push_uncertain(bld, &(struct plan_uncertain){
                                 .cert = cert,
                                 .gateway = g ? g->gateway : UINT32_MAX,
                                 .instance_id = e->instance_id,
                                 .domain = e->url_domain,
                             });
}

/* Owned entries, sync mode only: owned, live, unwanted and not moving →
 * detach; owned and no longer live on its certificate → forget. Intents,
 * in both modes: diff_intent. */
static int diff_ledger(struct builder *bld, const struct config *cfg,
                       const struct live_state *live,
                       const struct ledger *ledger, const struct wanted *w,
                       const struct wanted *by_pair, const struct gw_index *gws)
{
  size_t n = ledger_count(ledger);
  bool sync = cfg->policy.mode == CONFIG_MODE_SYNC;
  struct cert_id *ids =
      malloc((cfg->ncertificates ? cfg->ncertificates : 1) * sizeof(*ids));
  int rc = 0;

  if (!ids)
    return -ENOMEM;
  for (size_t i = 0; i < cfg->ncertificates; i++)
    ids[i] = (struct cert_id){cfg->certificates[i].id, (uint32_t)i};
  qsort(ids, cfg->ncertificates, sizeof(*ids), cmp_cert_id);

  for (size_t k = 0; rc == 0 && k < n; k++) {
    const struct ledger_entry *le = ledger_at(ledger, k);
    if (!sync && !le->intent)
      continue; /* upsert detaches nothing: ownership is only kept */
    struct cert_id key = {.id = le->certificate_id};
    const struct cert_id *ci =
        bsearch(&key, ids, cfg->ncertificates, sizeof(*ids), cmp_cert_id);
    if (!ci) /* a certificate the file no longer names is not read */
      continue;
    const struct live_cert *lc = &live->certs[ci->cert];
    if (!lc->known)
      continue; /* unread: ownership stays as it is */
    if (le->intent) {
      rc = diff_intent(bld, le, k, ci->cert, lc, gws, cfg->ngateways);
      continue;
    }
    const struct apig_binding *e =
        live_cert_find(lc, le->instance_id, le->domain);
    if (!e) {
      rc = push_stale(bld, k);
      continue;
    }
    struct wanted probe = {
        .cert = ci->cert, .instance_id = le->instance_id, .domain = le->domain};
    if (bsearch(&probe, w, cfg->nbindings, sizeof(*w), cmp_wanted))
      continue; /* still wanted here */
    const struct wanted *to = bsearch(&probe, by_pair, cfg->nbindings,
                                      sizeof(*by_pair), cmp_wanted_pair);
    if (to) { /* a move: the attach to the new certificate does it */
      rc = push_move(bld, to->binding, ci->cert);
      continue;
    }
    struct gw_index gk = {.instance_id = le->instance_id};
    const struct gw_index *g =
        bsearch(&gk, gws, cfg->ngateways, sizeof(*gws), cmp_gw_index);
    struct plan_item it = {
        .op = PLAN_DETACH,
        .cert = ci->cert,
        .gateway = g ? g->gateway : UINT32_MAX,
        .domain = e->url_domain,
        .instance_id = e->instance_id,
        .verify_client = e->verify_client,
        .binding = SIZE_MAX,
        .has_from = true,
        .from_cert = ci->cert,
        .from_verify_client = e->verify_client,
    };
    if (!g)
      bld->p->live_total++; /* counted for the ratio guard all the same */
    rc = push_item(bld, &it);
  }
  free(ids);
  return rc;
}

/* ---- moves: an attach of a (gateway, domain) another certificate holds */

bool plan_item_is_move(const struct plan_item *it)
{
  return it->op == PLAN_ATTACH && it->has_from;
}

/* One live binding of any read certificate. */
struct live_ref {
  const char *domain;
  const char *instance_id;
  uint32_t cert;
  bool verify_client;
};

static int cmp_live_ref(const void *a, const void *b)
{
  const struct live_ref *x = a, *y = b;
  return cmp_pair(x->instance_id, x->domain, y->instance_id, y->domain);
}

static void set_move(struct plan *p, struct plan_item *it, uint32_t from,
                     bool from_verify)
{
  it->has_from = true;
  it->from_cert = from;
  it->from_verify_client = from_verify;
  p->nmoved++;
}

/* Few attaches: look each one up in every other read certificate. */
static void mark_moves_by_lookup(struct plan *p, const struct live_state *live)
{
  for (size_t i = 0; i < p->nitems; i++) {
    struct plan_item *it = &p->items[i];
    if (it->op != PLAN_ATTACH)
      continue;
    for (uint32_t c = 0; c < live->ncerts; c++) {
      const struct apig_binding *e;
      if (c == it->cert || !live->certs[c].known)
        continue;
      e = live_cert_find(&live->certs[c], it->instance_id, it->domain);
      if (e) {
        set_move(p, it, c, e->verify_client);
        break;
      }
    }
  }
}

/* Many attaches: one sorted index of every live binding, then one search
 * per attach. -ENOMEM or 0. */
static int mark_moves_by_index(struct plan *p, const struct live_state *live,
                               size_t nlive)
{
  struct live_ref *ix = malloc(nlive * sizeof(*ix));
  size_t n = 0;

  if (!ix)
    return -ENOMEM;
  for (uint32_t c = 0; c < live->ncerts; c++) {
    const struct live_cert *lc = &live->certs[c];
    for (size_t j = 0; lc->known && j < lc->b.n; j++)
      ix[n++] = (struct live_ref){lc->b.items[j].url_domain,
                                  lc->b.items[j].instance_id, c,
                                  lc->b.items[j].verify_client};
  }
  qsort(ix, n, sizeof(*ix), cmp_live_ref);
  for (size_t i = 0; i < p->nitems; i++) {
    struct plan_item *it = &p->items[i];
    struct live_ref key = {.domain = it->domain,
                           .instance_id = it->instance_id};
    const struct live_ref *e;
    if (it->op != PLAN_ATTACH)
      continue;
    /* the attach's own certificate does not hold the pair: any match is
     * another's (APIG binds one certificate per gateway and domain) */
    e = bsearch(&key, ix, n, sizeof(*ix), cmp_live_ref);
    if (e)
      set_move(p, it, e->cert, e->verify_client);
  }
  free(ix);
  return 0;
}

/* Mark the attaches that are moves. Sorting every live binding costs more
 * than a few lookups per attach when the attaches are few (the usual
 * steady state), so the cheaper of the two is taken. */
static int mark_moves(struct plan *p, const struct live_state *live)
{
  size_t nlive = 0, nknown = 0;

  if (p->nattach == 0)
    return 0;
  for (size_t c = 0; c < live->ncerts; c++) {
    if (live->certs[c].known) {
      nknown++;
      nlive += live->certs[c].b.n;
    }
  }
  if (nknown < 2 || nlive == 0)
    return 0;
  if (p->nattach * nknown <= nlive)
    mark_moves_by_lookup(p, live);
  else
    return mark_moves_by_index(p, live, nlive);
  return 0;
}

/* EVP_DigestUpdate costs more than the bytes of one binding: the checksum
 * gathers its small pieces into 4 KiB before each update (the same bytes,
 * so the same digest). */
struct hash_buf {
  EVP_MD_CTX *ctx;
  bool ok;
  size_t n;
  char buf[4096];
};

static void hash_put(struct hash_buf *h, const char *s, size_t len)
{
  if (h->n + len > sizeof(h->buf)) {
    h->ok = h->ok && EVP_DigestUpdate(h->ctx, h->buf, h->n);
    h->n = 0;
  }
  if (len > sizeof(h->buf)) {
    h->ok = h->ok && EVP_DigestUpdate(h->ctx, s, len);
    return;
  }
  memcpy(h->buf + h->n, s, len);
  h->n += len;
}

static void hash_str(struct hash_buf *h, const char *s)
{
  hash_put(h, s, strlen(s));
}

/* Over the file, the live state and the resulting changes (which in sync
 * mode also depend on the ledger). */
static int compute_checksum(const struct config *cfg,
                            const struct live_state *live, const struct plan *p,
                            char out[65])
{
  struct hash_buf *h = malloc(sizeof(*h));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  bool ok;

  if (!h)
    return -ENOMEM;
  h->ctx = EVP_MD_CTX_new();
  h->n = 0;
  h->ok = h->ctx && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL);
  hash_str(h, cfg->sha256);
  for (size_t c = 0; h->ok && c < live->ncerts; c++) {
    const struct live_cert *lc = &live->certs[c];
    hash_str(h, lc->known ? "\ncert " : "\nunread ");
    hash_str(h, cert_key(&cfg->certificates[c]));
    for (size_t j = 0; j < lc->b.n; j++) {
      const struct apig_binding *e = &lc->b.items[j];
      hash_put(h, "\n", 1);
      hash_str(h, e->instance_id);
      hash_put(h, " ", 1);
      hash_str(h, e->url_domain);
      hash_put(h, e->verify_client ? " 1" : " 0", 2);
    }
  }
  for (size_t i = 0; h->ok && i < p->nitems; i++) {
    const struct plan_item *it = &p->items[i];
    hash_put(h, "\nplan ", 6);
    hash_str(h, plan_op_name(it->op));
    hash_str(h, cert_key(&cfg->certificates[it->cert]));
    hash_str(h, it->instance_id);
    hash_put(h, " ", 1);
    hash_str(h, it->domain);
    hash_put(h, it->verify_client ? " 1" : " 0", 2);
  }
  ok = h->ok && EVP_DigestUpdate(h->ctx, h->buf, h->n) &&
       EVP_DigestFinal_ex(h->ctx, md, &mdlen);
  EVP_MD_CTX_free(h->ctx);
  free(h);
  if (!ok)
    return -EIO;
  for (unsigned int i = 0; i < mdlen; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  return 0;
}

/* ---- certificate rules: names and expiry ------------------------------ */

int64_t plan_cert_not_after(const struct config *cfg,
                            const struct live_state *live, size_t c)
{
  const struct config_certificate *cc = &cfg->certificates[c];

  if (cc->managed)
    return cc->managed->file.not_after;
  if (live && c < live->ncerts && live->certs[c].shown)
    return live->certs[c].show.not_after;
  return 0;
}

bool plan_cert_names(const struct config *cfg, const struct live_state *live,
                     size_t c, const char *const **sans, size_t *n)
{
  const struct config_certificate *cc = &cfg->certificates[c];

  if (cc->managed) {
    *sans = (const char *const *)cc->managed->file.sans;
    *n = cc->managed->file.nsans;
    return true;
  }
  if (live && c < live->ncerts && live->certs[c].shown) {
    *sans = (const char *const *)live->certs[c].show.san;
    *n = live->certs[c].show.nsan;
    return true;
  }
  return false;
}

long plan_days_left(int64_t not_after, int64_t now_s)
{
  int64_t d = not_after - now_s;

  /* floor, not truncation: one second past the end is day -1 */
  return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

void plan_format_date(int64_t t, char buf[16])
{
  time_t tt = (time_t)t;
  struct tm tm;

  if (!gmtime_r(&tt, &tm) || strftime(buf, 16, "%Y-%m-%d", &tm) == 0)
    snprintf(buf, 16, "?");
}

/* Why certificate c may not get (gateway, domain) in this pass, or -1:
 * expired (known not_after at or before the reads), or names known that
 * do not cover the domain. A managed certificate's names were checked
 * against its domains when the file was loaded. */
static int cert_rule(const struct config *cfg, const struct live_state *live,
                     uint32_t c, const char *domain)
{
  int64_t end = plan_cert_not_after(cfg, live, c);
  const char *const *sans;
  size_t n;

  if (end && live->now_s && end <= live->now_s)
    return PLAN_REFUSE_EXPIRED;
  if (!cfg->certificates[c].managed &&
      plan_cert_names(cfg, live, c, &sans, &n) &&
      !certfile_covers(sans, n, domain))
    return PLAN_REFUSE_NOT_COVERED;
  return -1;
}

static int push_refusal(struct builder *b, const struct config *cfg,
                        const struct live_state *live,
                        const struct plan_item *it, enum plan_refusal_why why)
{
  struct plan *p = b->p;
  const char *const *sans = NULL;
  size_t nsans = 0;

  if (p->nrefused == b->refused_cap) {
    size_t cap = b->refused_cap ? b->refused_cap * 2 : 16;
    struct plan_refusal *n = realloc(p->refused, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->refused = n;
    b->refused_cap = cap;
  }
  p->refused[p->nrefused++] = (struct plan_refusal){
      .binding = it->binding,
      .cert = it->cert,
      .gateway = it->gateway,
      .op = it->op,
      .why = why,
      .not_after = plan_cert_not_after(cfg, live, it->cert),
  };
  if (plan_cert_names(cfg, live, it->cert, &sans, &nsans)) {
    p->refused[p->nrefused - 1].sans = sans;
    p->refused[p->nrefused - 1].nsans = nsans;
  }
  return 0;
}

/* The attaches and changes the certificate rules refuse leave the items
 * for the refusals (sorted by binding for plan_refusal_of). Run before the
 * detaches are added: a detach is never refused. */
static int apply_cert_rules(struct builder *bld, const struct config *cfg,
                            const struct live_state *live)
{
  struct plan *p = bld->p;
  size_t keep = 0;
  int rc = 0;

  for (size_t i = 0; i < p->nitems; i++) {
    struct plan_item *it = &p->items[i];
    int why =
        it->op == PLAN_DETACH ? -1 : cert_rule(cfg, live, it->cert, it->domain);
    if (why < 0 || rc < 0) {
      p->items[keep++] = *it;
      continue;
    }
    rc = push_refusal(bld, cfg, live, it, (enum plan_refusal_why)why);
    if (rc < 0) {
      p->items[keep++] = *it;
      continue;
    }
    if (it->op == PLAN_ATTACH)
      p->nattach--;
    else
      p->nchange--;
  }
  p->nitems = keep;
  if (p->nrefused > 1)
    qsort(p->refused, p->nrefused, sizeof(*p->refused), cmp_refusal);
  return rc;
}

static int record_not_after(struct plan *p, const struct config *cfg,
                            const struct live_state *live)
{
  p->now_s = live->now_s;
  if (cfg->ncertificates == 0)
    return 0;
  p->not_after = calloc(cfg->ncertificates, sizeof(*p->not_after));
  if (!p->not_after)
    return -ENOMEM;
  for (size_t c = 0; c < cfg->ncertificates; c++)
    p->not_after[c] = plan_cert_not_after(cfg, live, c);
  return 0;
}

const struct plan_refusal *plan_refusal_of(const struct plan *p, size_t b)
{
  struct plan_refusal key = {.binding = b};

  if (p->nrefused == 0)
    return NULL;
  return bsearch(&key, p->refused, p->nrefused, sizeof(*p->refused),
                 cmp_refusal);
}

const char *plan_refusal_code(enum plan_refusal_why why)
{
  return why == PLAN_REFUSE_EXPIRED ? "certificate-expired"
                                    : "certificate-not-covered";
}

/* "*.example.com, example.com" (the first few) into buf. */
static void names_str(const char *const *sans, size_t n, char *buf, size_t len)
{
  size_t off = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < n && off < len; i++) {
    int w =
        i == 4 ? snprintf(buf + off, len - off, ", … (%zu names)", n)
               : snprintf(buf + off, len - off, "%s%s", i ? ", " : "", sans[i]);
    if (w < 0)
      break;
    off += (size_t)w;
    if (i == 4)
      break;
  }
  if (n == 0)
    snprintf(buf, len, "no DNS name");
}

void plan_refusal_describe(const struct config *cfg,
                           const struct plan_refusal *r, char *msg, size_t len)
{
  const struct config_certificate *cc = &cfg->certificates[r->cert];
  const char *domain = cfg->bindings[r->binding].domain;
  char names[200], date[16];

  if (r->why == PLAN_REFUSE_EXPIRED) {
    plan_format_date(r->not_after, date);
    snprintf(msg, len,
             "certificate %s expired on %s: an expired certificate is never "
             "bound",
             cc->name, date);
    return;
  }
  names_str(r->sans, r->nsans, names, sizeof(names));
  snprintf(msg, len, "certificate %s covers %s, not %s", cc->name, names,
           domain);
}

int plan_wanted_make(const struct config *cfg, struct plan_wanted *out)
{
  memset(out, 0, sizeof(*out));
  out->n = cfg->nbindings;
  out->by_cert = collect_wanted(cfg);
  if (!out->by_cert)
    return -ENOMEM;
  if (cfg->policy.mode != CONFIG_MODE_SYNC)
    return 0;
  out->by_pair = malloc((out->n ? out->n : 1) * sizeof(*out->by_pair));
  if (!out->by_pair) {
    plan_wanted_free(out);
    return -ENOMEM;
  }
  memcpy(out->by_pair, out->by_cert, out->n * sizeof(*out->by_cert));
  qsort(out->by_pair, out->n, sizeof(*out->by_pair), cmp_wanted_pair);
  return 0;
}

void plan_wanted_free(struct plan_wanted *w)
{
  free(w->by_cert);
  free(w->by_pair);
  memset(w, 0, sizeof(*w));
}

/* A plan has an item per binding to write: keep the struct unpadded. */
_Static_assert(sizeof(struct plan_item) <= 6 * sizeof(void *),
               "struct plan_item grew: 100,000 items are kept for a pass");

int plan_compute(const struct config *cfg, struct live_state *live,
                 const struct ledger *ledger, struct plan *out)
{
  return plan_compute_wanted(cfg, live, ledger, NULL, out);
}

/* The items array grew by doubling: give back what it does not use (up
 * to half of it; 1.5 MB at 100,000 items), since the plan lives as long
 * as the pass. */
static void shrink_items(struct plan *p, size_t cap)
{
  struct plan_item *n;

  if (p->nitems == 0 || p->nitems == cap)
    return;
  n = realloc(p->items, p->nitems * sizeof(*n));
  if (n)
    p->items = n;
}

int plan_compute_wanted(const struct config *cfg, struct live_state *live,
                        const struct ledger *ledger,
                        const struct plan_wanted *wanted, struct plan *out)
{
  struct builder bld = {.p = out};
  struct plan_wanted mine = {0};
  const struct wanted *w;
  struct gw_index *gws = NULL;
  int rc;

  memset(out, 0, sizeof(*out));
  if (live->ncerts != cfg->ncertificates ||
      (wanted && wanted->n != cfg->nbindings))
    return -EINVAL;
  if (!wanted || (!wanted->by_pair && cfg->policy.mode == CONFIG_MODE_SYNC)) {
    rc = plan_wanted_make(cfg, &mine);
    if (rc)
      return rc;
    wanted = &mine;
  }
  w = wanted->by_cert;
  rc = -ENOMEM;
  gws = malloc((cfg->ngateways ? cfg->ngateways : 1) * sizeof(*gws));
  if (!gws)
    goto done;
  for (size_t g = 0; g < cfg->ngateways; g++)
    gws[g] = (struct gw_index){cfg->gateways[g].instance_id, (uint32_t)g};
  qsort(gws, cfg->ngateways, sizeof(*gws), cmp_gw_index);

  rc = 0;
  for (size_t i = 0, c = 0; rc == 0 && c < cfg->ncertificates; c++) {
    size_t start = i;
    while (i < cfg->nbindings && w[i].cert == c)
      i++;
    if (!live->certs[c].known) {
      out->unknown_certs++;
      continue; /* unread: nothing is planned for it */
    }
    rc = diff_certificate(&bld, cfg, (uint32_t)c, w + start, i - start,
                          &live->certs[c], gws);
  }
  if (rc == 0)
    rc = apply_cert_rules(&bld, cfg, live);
  if (rc == 0)
    rc = record_not_after(out, cfg, live);
  if (rc == 0 && ledger)
    rc = diff_ledger(&bld, cfg, live, ledger, w, wanted->by_pair, gws);
  if (rc == 0)
    rc = mark_moves(out, live);
  if (rc == 0) {
    /* items is NULL when empty; diff_certificate pushes them in order
     * unless a certificate mixes ops or sync added detaches */
    if (out->nitems > 1 && !items_sorted(out->items, out->nitems))
      qsort(out->items, out->nitems, sizeof(*out->items), cmp_item);
    if (out->nmoves > 1)
      qsort(out->moves, out->nmoves, sizeof(*out->moves), cmp_move);
    shrink_items(out, bld.cap);
  }
done:
  plan_wanted_free(&mine);
  free(gws);
  if (rc)
    plan_free(out);
  return rc;
}

int plan_checksum(const struct config *cfg, const struct live_state *live,
                  struct plan *p)
{
  return compute_checksum(cfg, live, p, p->checksum);
}

void plan_free(struct plan *p)
{
  free(p->items);
  free(p->stale_ledger);
  free(p->moves);
  free(p->uncertain);
  free(p->refused);
  free(p->not_after);
  free(p->cert_ops);
  free(p->left);
  memset(p, 0, sizeof(*p));
}

/* ---- guards ------------------------------------------------------------ */

enum plan_guard plan_guards(const struct config *cfg, const struct plan *p,
                            char *msg, size_t len)
{
  const struct config_policy *pol = &cfg->policy;
  size_t nd = p->ndetach;

  msg[0] = '\0';
  if (pol->mode != CONFIG_MODE_SYNC || nd == 0)
    return PLAN_GUARD_OK;
  if (nd > pol->max_detach_count) {
    snprintf(msg, len, "%zu detaches exceed policy.max_detach_count %u", nd,
             pol->max_detach_count);
    return PLAN_GUARD_DETACH_COUNT;
  }
  if (p->live_total &&
      (double)nd > pol->max_detach_ratio * (double)p->live_total) {
    snprintf(msg, len,
             "%zu detaches of %zu live bindings exceed "
             "policy.max_detach_ratio %.2f",
             nd, p->live_total, pol->max_detach_ratio);
    return PLAN_GUARD_DETACH_RATIO;
  }
  return PLAN_GUARD_OK;
}

/* ---- why a stored plan is stale ---------------------------------------- */

static const char *gateway_name(const struct config *cfg,
                                const char *instance_id)
{
  for (size_t g = 0; g < cfg->ngateways; g++) {
    if (strcmp(cfg->gateways[g].instance_id, instance_id) == 0)
      return cfg->gateways[g].name;
  }
  return instance_id;
}

/* The read certificate of the file that holds (instance, domain) now. */
static const struct apig_binding *holder_now(const struct live_state *live,
                                             const char *instance_id,
                                             const char *domain, uint32_t *cert)
{
  for (uint32_t c = 0; c < live->ncerts; c++) {
    const struct apig_binding *e;
    if (!live->certs[c].known)
      continue;
    e = live_cert_find(&live->certs[c], instance_id, domain);
    if (e) {
      *cert = c;
      return e;
    }
  }
  return NULL;
}

static void describe_now(const struct config *cfg,
                         const struct live_state *live, const char *instance_id,
                         const char *domain, bool flag_changed, char *msg,
                         size_t len)
{
  uint32_t c = 0;
  const struct apig_binding *e = holder_now(live, instance_id, domain, &c);
  const char *gw = gateway_name(cfg, instance_id);

  if (!e)
    snprintf(msg, len, "%s on %s now bound to no certificate of the file",
             domain, gw);
  else if (flag_changed)
    snprintf(msg, len, "%s on %s now bound to %s with client verification %s",
             domain, gw, cfg->certificates[c].name,
             e->verify_client ? "on" : "off");
  else
    snprintf(msg, len, "%s on %s now bound to %s", domain, gw,
             cfg->certificates[c].name);
}

static int cmp_expect(const void *a, const void *b)
{
  const struct plan_expect *x = a, *y = b;
  return cmp_pair(x->instance_id, x->domain, y->instance_id, y->domain);
}

/* An expectation the live state no longer meets: described in msg. */
static bool expect_broken(const struct config *cfg,
                          const struct live_state *live,
                          const struct plan_expect *x, char *msg, size_t len)
{
  uint32_t c = 0;
  const struct apig_binding *e =
      holder_now(live, x->instance_id, x->domain, &c);
  bool same_holder =
      e ? x->holder_id && strcmp(x->holder_id, cfg->certificates[c].id) == 0
        : x->holder_id == NULL;

  if (same_holder && (!e || e->verify_client == x->verify_client))
    return false;
  describe_now(cfg, live, x->instance_id, x->domain, same_holder, msg, len);
  return true;
}

bool plan_explain_stale(const struct config *cfg, const struct live_state *live,
                        const struct plan *p, const struct plan_expect *expect,
                        size_t nexpect, char *msg, size_t len)
{
  struct plan_expect *sorted;

  msg[0] = '\0';
  for (size_t i = 0; i < nexpect; i++) {
    if (expect_broken(cfg, live, &expect[i], msg, len))
      return true;
  }
  /* a change the stored plan did not have: the binding was in place */
  sorted = malloc((nexpect ? nexpect : 1) * sizeof(*sorted));
  if (!sorted)
    return false;
  if (nexpect)
    memcpy(sorted, expect, nexpect * sizeof(*sorted));
  qsort(sorted, nexpect, sizeof(*sorted), cmp_expect);
  for (size_t i = 0; i < p->nitems; i++) {
    const struct plan_item *it = &p->items[i];
    struct plan_expect key = {.instance_id = it->instance_id,
                              .domain = it->domain};
    if (nexpect && bsearch(&key, sorted, nexpect, sizeof(*sorted), cmp_expect))
      continue;
    describe_now(cfg, live, it->instance_id, it->domain, it->op == PLAN_CHANGE,
                 msg, len);
    free(sorted);
    return true;
  }
  free(sorted);
  return false;
}

/* ---- objects left behind ------------------------------------------------ */

static int cmp_name_ptr(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_left(const void *a, const void *b)
{
  const struct plan_left *x = a, *y = b;
  int c = strcmp(x->certificate, y->certificate);

  return c ? c : strcmp(x->name, y->name);
}

/* The file's certificate names, sorted for bsearch (NULL when none). */
static const char **sorted_cert_names(const struct config *cfg, int *rc)
{
  const char **names;

  *rc = 0;
  if (cfg->ncertificates == 0)
    return NULL;
  names = malloc(cfg->ncertificates * sizeof(*names));
  if (!names) {
    *rc = -ENOMEM;
    return NULL;
  }
  for (size_t c = 0; c < cfg->ncertificates; c++)
    names[c] = cfg->certificates[c].name;
  qsort(names, cfg->ncertificates, sizeof(*names), cmp_name_ptr);
  return names;
}

static bool left_behind(const struct ledger_cert *r, const char **names,
                        size_t n)
{
  const char *key = r->certificate;

  return r->created &&
         (!names || !bsearch(&key, names, n, sizeof(*names), cmp_name_ptr));
}

int plan_left_objects(const struct config *cfg, const struct ledger *ledger,
                      struct plan_left **out, size_t *n)
{
  const char **names;
  size_t k = 0;
  int rc;

  *out = NULL;
  *n = 0;
  if (!ledger || ledger->ncerts == 0)
    return 0;
  names = sorted_cert_names(cfg, &rc);
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < ledger->ncerts; i++)
    k += left_behind(&ledger->certs[i], names, cfg->ncertificates);
  if (k && !(*out = calloc(k, sizeof(**out)))) {
    free(names);
    return -ENOMEM;
  }
  for (size_t i = 0; k && i < ledger->ncerts; i++) {
    const struct ledger_cert *r = &ledger->certs[i];
    struct plan_left *l;

    if (!left_behind(r, names, cfg->ncertificates))
      continue;
    l = &(*out)[(*n)++];
    snprintf(l->object_id, sizeof(l->object_id), "%s", r->object_id);
    snprintf(l->name, sizeof(l->name), "%s", r->name);
    snprintf(l->certificate, sizeof(l->certificate), "%s", r->certificate);
    snprintf(l->sha256, sizeof(l->sha256), "%s", r->sha256);
  }
  free(names);
  if (*n > 1)
    qsort(*out, *n, sizeof(**out), cmp_left);
  return 0;
}

/* FNV-1a over the objects' ids: a change of the list, not a secret. */
uint64_t plan_left_digest(const struct plan_left *left, size_t n)
{
  uint64_t h = n ? 14695981039346656037ull : 0;

  for (size_t i = 0; i < n; i++) {
    for (const char *s = left[i].object_id; *s; s++)
      h = (h ^ (unsigned char)*s) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* the end of one id */
  }
  return h;
}
