/* SPDX-License-Identifier: MIT */
/* The simulated world: loading the seed, the binding model (one certificate
 * per (gateway, domain)), the visibility log and the statistics. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sign.h"
#include "sim.h"

#define SEED_MAX_BYTES (256u << 20)

int64_t sim_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sim_now_ms(const struct sim *sim)
{
  if (sim->settings.now_ms)
    return sim->settings.now_ms;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lookups ----------------------------------------------------------- */

static long map_find(const struct sim_map *m, const char *key)
{
  size_t v;
  return sim_map_get(m, key, &v) ? (long)v : -1;
}

long sim_find_cert_any(const struct sim *sim, const char *id)
{
  return map_find(&sim->cert_ix, id);
}

long sim_find_cert(const struct sim *sim, const char *id)
{
  long c = map_find(&sim->cert_ix, id);
  return c >= 0 && sim->certs[c].deleted_ms ? -1 : c;
}

long sim_find_gw(const struct sim *sim, const char *instance_id)
{
  return map_find(&sim->gw_ix, instance_id);
}

long sim_find_project(const struct sim *sim, const char *id)
{
  return map_find(&sim->project_ix, id);
}

long sim_find_domain(const struct sim *sim, const char *domain)
{
  return map_find(&sim->domain_ix, domain);
}

long sim_domain_slot(const struct sim *sim, long run, size_t gw)
{
  if (run < 0)
    return -1;
  for (size_t r = (size_t)run;
       r < sim->nslots && sim->ranked[r].run == (size_t)run; r++)
    if (sim->ranked[r].gw == gw)
      return (long)sim->ranked[r].slot;
  return -1;
}

long sim_find_slot(const struct sim *sim, size_t gw, const char *domain)
{
  return sim_domain_slot(sim, sim_find_domain(sim, domain), gw);
}

/* A SAN entry covers the domain exactly, or as "*.parent" for exactly one
 * extra leftmost label (RFC 6125 §6.4.3 without partial wildcards). */
bool sim_san_covers(const struct sim_cert *c, const char *domain)
{
  for (size_t i = 0; i < c->nsan; i++) {
    const char *san = c->san[i];
    if (!strcasecmp(san, domain))
      return true;
    if (san[0] == '*' && san[1] == '.') {
      const char *dot = strchr(domain, '.');
      if (dot && dot != domain && domain[0] != '*' &&
          !strcasecmp(dot + 1, san + 2))
        return true;
    }
  }
  return false;
}

/* ---- per-certificate sorted slot lists -------------------------------- */

/* The order of lists and pages: by domain, then by instance id. */
static int slot_name_cmp(const struct sim *sim, size_t a, size_t b)
{
  const struct sim_slot *x = &sim->slots[a], *y = &sim->slots[b];
  int c = strcmp(x->domain, y->domain);
  if (c)
    return c;
  return strcmp(sim->gws[x->gw].instance_id, sim->gws[y->gw].instance_id);
}

static int slot_name_cmp_r(const void *a, const void *b, void *arg)
{
  return slot_name_cmp(arg, *(const size_t *)a, *(const size_t *)b);
}

static int rank_cmp(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static size_t lower_bound(const struct sim_cert *c, size_t rank)
{
  size_t lo = 0, hi = c->nslots;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->ranks[mid] < rank)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

size_t sim_cert_domain_start(const struct sim *sim, size_t cert,
                             const char *domain)
{
  const struct sim_cert *c = &sim->certs[cert];
  size_t lo = 0, hi = c->nslots;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(sim->slots[sim->ranked[c->ranks[mid]].slot].domain, domain) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int cert_reserve(struct sim_cert *c, size_t more)
{
  if (c->nslots + more <= c->capslots)
    return 0;
  size_t ncap = c->capslots ? c->capslots : 8;
  while (ncap < c->nslots + more)
    ncap *= 2;
  size_t *n = realloc(c->ranks, ncap * sizeof(*n));
  if (!n)
    return -ENOMEM;
  c->ranks = n;
  c->capslots = ncap;
  return 0;
}

static int cert_add_slot(struct sim *sim, struct sim_cert *c, size_t slot)
{
  if (cert_reserve(c, 1) != 0)
    return -ENOMEM;
  size_t rank = sim->slots[slot].rank, at = lower_bound(c, rank);
  memmove(&c->ranks[at + 1], &c->ranks[at],
          (c->nslots - at) * sizeof(*c->ranks));
  c->ranks[at] = rank;
  c->nslots++;
  return 0;
}

static void cert_del_slot(struct sim *sim, struct sim_cert *c, size_t slot)
{
  size_t rank = sim->slots[slot].rank, at = lower_bound(c, rank);
  if (at < c->nslots && c->ranks[at] == rank) {
    memmove(&c->ranks[at], &c->ranks[at + 1],
            (c->nslots - at - 1) * sizeof(*c->ranks));
    c->nslots--;
  }
}

/* ---- visibility log ---------------------------------------------------- */

/* Drop changes that every read can already see. */
static void log_trim(struct sim *sim, int64_t now)
{
  int64_t cutoff = now - sim->settings.visibility_delay_ms;
  size_t k = 0;
  while (k < sim->nlog && sim->log[k].at_ms <= cutoff)
    k++;
  if (k) {
    memmove(sim->log, sim->log + k, (sim->nlog - k) * sizeof(*sim->log));
    sim->nlog -= k;
  }
}

static int log_push(struct sim *sim, int64_t at_ms, size_t slot, long old_cert,
                    bool old_verify)
{
  if (sim->nlog == sim->caplog) {
    size_t ncap = sim->caplog ? sim->caplog * 2 : 64;
    struct sim_change *n = realloc(sim->log, ncap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    sim->log = n;
    sim->caplog = ncap;
  }
  sim->log[sim->nlog++] = (struct sim_change){
      .at_ms = at_ms,
      .slot = slot,
      .old_cert = old_cert,
      .old_verify = old_verify,
  };
  return 0;
}

bool sim_slot_set(struct sim *sim, size_t slot, long cert, bool verify)
{
  struct sim_slot *s = &sim->slots[slot];
  if (s->cert == cert && (cert < 0 || s->verify == verify))
    return false;
  if (sim->settings.visibility_delay_ms > 0) {
    int64_t now = sim_mono_ms();
    log_trim(sim, now);
    /* without memory the change is simply visible at once */
    (void)log_push(sim, now, slot, s->cert, s->verify);
  }
  if (s->cert != cert) {
    s->prev_cert = s->cert;
    if (s->cert >= 0)
      cert_del_slot(sim, &sim->certs[s->cert], slot);
    if (cert >= 0 && cert_add_slot(sim, &sim->certs[cert], slot) != 0)
      cert = -1; /* out of memory: leave it unbound rather than lie */
    if (cert < 0 && s->cert >= 0)
      sim->stats.unbound_transitions++;
  }
  s->cert = cert;
  s->verify = cert >= 0 ? verify : false;
  sim->stats.bindings_changed++;
  return true;
}

/* ---- batched binding changes (one write) ------------------------------- */

/* A slot leaving a certificate's list. */
struct departure {
  long cert;
  size_t rank;
};

static int departure_cmp(const void *a, const void *b)
{
  const struct departure *x = a, *y = b;
  if (x->cert != y->cert)
    return x->cert < y->cert ? -1 : 1;
  return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Drop the ranks of d[0..n) (one certificate's, ascending) from its list in
 * one pass, from the first of them on. */
static void cert_del_ranks(struct sim_cert *c, const struct departure *d,
                           size_t n)
{
  size_t out = lower_bound(c, d[0].rank), j = 0;
  for (size_t i = out; i < c->nslots; i++) {
    while (j < n && d[j].rank < c->ranks[i])
      j++;
    if (j < n && d[j].rank == c->ranks[i])
      continue;
    c->ranks[out++] = c->ranks[i];
  }
  c->nslots = out;
}

/* Merge add[0..n) (ascending, none in the list, capacity reserved) into the
 * list from the back, so that no entry moves more than once. */
static void cert_add_ranks(struct sim_cert *c, const size_t *add, size_t n)
{
  size_t i = c->nslots, j = n, out = c->nslots + n;
  while (j > 0) {
    if (i > 0 && c->ranks[i - 1] > add[j - 1])
      c->ranks[--out] = c->ranks[--i];
    else
      c->ranks[--out] = add[--j];
  }
  c->nslots += n;
}

static void leave_lists(struct sim *sim, struct departure *d, size_t n)
{
  qsort(d, n, sizeof(*d), departure_cmp);
  for (size_t i = 0, k; i < n; i += k) {
    for (k = 1; i + k < n && d[i + k].cert == d[i].cert; k++)
      ;
    cert_del_ranks(&sim->certs[d[i].cert], &d[i], k);
  }
}

static size_t slots_set_one_by_one(struct sim *sim, const struct sim_target *t,
                                   size_t n, long cert)
{
  size_t changed = 0;
  for (size_t i = 0; i < n; i++)
    changed += sim_slot_set(sim, t[i].slot, cert, t[i].verify);
  return changed;
}

/* The slots' own state, the log and the counters change in request order,
 * exactly as sim_slot_set does them; the list moves are collected and done
 * per certificate at the end. With every target going to the one cert, a
 * slot changes certificate at most once, so no move is undone later. */
size_t sim_slots_set(struct sim *sim, const struct sim_target *t, size_t n,
                     long cert)
{
  struct departure *dep = malloc((n + 1) * sizeof(*dep));
  size_t *arrivals = malloc((n + 1) * sizeof(*arrivals));
  /* reserved up front, so that the merge cannot fail half-way */
  if (!dep || !arrivals ||
      (cert >= 0 && cert_reserve(&sim->certs[cert], n) != 0)) {
    free(dep);
    free(arrivals);
    return slots_set_one_by_one(sim, t, n, cert);
  }
  bool logged = sim->settings.visibility_delay_ms > 0;
  int64_t now = sim_mono_ms();
  if (logged)
    log_trim(sim, now);
  size_t changed = 0, ndep = 0, narr = 0;
  for (size_t i = 0; i < n; i++) {
    struct sim_slot *s = &sim->slots[t[i].slot];
    if (s->cert == cert && (cert < 0 || s->verify == t[i].verify))
      continue;
    if (logged)
      (void)log_push(sim, now, t[i].slot, s->cert, s->verify);
    if (s->cert != cert && s->cert >= 0)
      dep[ndep++] = (struct departure){s->cert, s->rank};
    if (s->cert != cert && cert >= 0)
      arrivals[narr++] = s->rank;
    if (cert < 0 && s->cert >= 0)
      sim->stats.unbound_transitions++;
    if (s->cert != cert)
      s->prev_cert = s->cert;
    s->cert = cert;
    s->verify = cert >= 0 ? t[i].verify : false;
    sim->stats.bindings_changed++;
    changed++;
  }
  leave_lists(sim, dep, ndep);
  qsort(arrivals, narr, sizeof(*arrivals), rank_cmp);
  if (narr)
    cert_add_ranks(&sim->certs[cert], arrivals, narr);
  free(dep);
  free(arrivals);
  return changed;
}

struct override {
  size_t slot;
  size_t order;
  long cert;
  bool verify;
};

long sim_slot_visible_cert(struct sim *sim, size_t slot)
{
  log_trim(sim, sim_mono_ms());
  /* the log is in time order: the slot's oldest pending change holds the
   * value reads still see */
  for (size_t i = 0; i < sim->nlog; i++)
    if (sim->log[i].slot == slot)
      return sim->log[i].old_cert;
  return sim->slots[slot].cert;
}

static int override_cmp(const void *a, const void *b)
{
  const struct override *x = a, *y = b;
  if (x->slot != y->slot)
    return x->slot < y->slot ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

static int visible_cmp(const void *a, const void *b, void *arg)
{
  const struct sim *sim = arg;
  size_t x = sim->slots[*(const size_t *)a].rank;
  size_t y = sim->slots[*(const size_t *)b].rank;
  return x < y ? -1 : x > y;
}

static const struct override *find_override(const struct override *ov, size_t n,
                                            size_t slot)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ov[mid].slot < slot)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && ov[lo].slot == slot ? &ov[lo] : NULL;
}

/* The oldest pending change of each slot holds the value reads still see. */
static size_t build_overrides(const struct sim *sim, struct override *ov)
{
  for (size_t i = 0; i < sim->nlog; i++)
    ov[i] = (struct override){sim->log[i].slot, i, sim->log[i].old_cert,
                              sim->log[i].old_verify};
  qsort(ov, sim->nlog, sizeof(*ov), override_cmp);
  size_t n = 0;
  for (size_t i = 0; i < sim->nlog; i++)
    if (n == 0 || ov[n - 1].slot != ov[i].slot)
      ov[n++] = ov[i];
  return n;
}

int sim_visible(struct sim *sim, size_t cert, size_t **out, bool **vflags,
                size_t *n)
{
  const struct sim_cert *c = &sim->certs[cert];
  log_trim(sim, sim_mono_ms());
  size_t cap = c->nslots + sim->nlog + 1;
  size_t *res = malloc(cap * sizeof(*res));
  bool *vf = malloc(cap * sizeof(*vf));
  struct override *ov = sim->nlog ? malloc(sim->nlog * sizeof(*ov)) : NULL;
  if (!res || !vf || (sim->nlog && !ov)) {
    free(res);
    free(vf);
    free(ov);
    return -ENOMEM;
  }
  size_t nov = sim->nlog ? build_overrides(sim, ov) : 0, k = 0;
  for (size_t i = 0; i < c->nslots; i++) {
    size_t slot = sim->ranked[c->ranks[i]].slot;
    if (!find_override(ov, nov, slot))
      res[k++] = slot;
  }
  for (size_t i = 0; i < nov; i++)
    if (ov[i].cert == (long)cert)
      res[k++] = ov[i].slot;
  if (nov)
    qsort_r(res, k, sizeof(*res), visible_cmp, sim);
  for (size_t i = 0; i < k; i++) {
    const struct override *o = find_override(ov, nov, res[i]);
    vf[i] = o ? o->verify : sim->slots[res[i]].verify;
  }
  free(ov);
  *out = res;
  *vflags = vf;
  *n = k;
  return 0;
}

/* ---- seed loading ------------------------------------------------------ */

struct loader {
  struct sim *sim;
  char *err;
  size_t errlen;
};

#define LERR(L, ...) (snprintf((L)->err, (L)->errlen, __VA_ARGS__), -EINVAL)

static yajl_val field(yajl_val obj, const char *key)
{
  const char *path[] = {key, NULL};
  return yajl_tree_get(obj, path, yajl_t_any);
}

static int req_str(struct loader *L, yajl_val obj, const char *key,
                   const char *what, char **out)
{
  const char *s = YAJL_GET_STRING(field(obj, key));
  if (!s || !*s)
    return LERR(L, "%s: missing string \"%s\"", what, key);
  *out = strdup(s);
  return *out ? 0 : -ENOMEM;
}

static int opt_str(yajl_val obj, const char *key, const char *def, char **out)
{
  const char *s = YAJL_GET_STRING(field(obj, key));
  *out = strdup(s ? s : def);
  return *out ? 0 : -ENOMEM;
}

static void hex_id(const char *a, const char *b, char out[33])
{
  char hex[SIGN_HEX_LEN + 1];
  char buf[640];
  int n = snprintf(buf, sizeof(buf), "%s\n%s", a, b);
  if (n < 0 || (size_t)n >= sizeof(buf) ||
      sign_sha256_hex(buf, (size_t)n, hex) != 0)
    snprintf(hex, sizeof(hex), "%064d", 0);
  memcpy(out, hex, 32);
  out[32] = '\0';
}

static unsigned parse_perms(yajl_val v)
{
  if (!YAJL_IS_ARRAY(v))
    return SIM_PERM_ALL;
  unsigned p = 0;
  for (size_t i = 0; i < v->u.array.len; i++) {
    const char *s = YAJL_GET_STRING(v->u.array.values[i]);
    if (!s)
      continue;
    p |= !strcmp(s, "list")           ? SIM_PERM_LIST
         : !strcmp(s, "attach")       ? SIM_PERM_ATTACH
         : !strcmp(s, "detach")       ? SIM_PERM_DETACH
         : !strcmp(s, "show")         ? SIM_PERM_SHOW
         : !strcmp(s, "certificates") ? SIM_PERM_CERTS
         : !strcmp(s, "all")          ? SIM_PERM_ALL
                                      : 0;
  }
  return p;
}

static yajl_val arr(yajl_val root, const char *key)
{
  yajl_val v = field(root, key);
  return YAJL_IS_ARRAY(v) ? v : NULL;
}

static int load_creds(struct loader *L, struct sim_project *p, yajl_val a,
                      size_t pi)
{
  size_t n = a ? a->u.array.len : 0;
  p->creds = calloc(n + 1, sizeof(*p->creds));
  if (!p->creds)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yajl_val c = a->u.array.values[i];
    struct sim_cred *cr = &p->creds[i];
    p->ncreds++;
    int rc = req_str(L, c, "ak", "credential", &cr->ak);
    if (!rc)
      rc = req_str(L, c, "sk", "credential", &cr->sk);
    if (rc)
      return rc;
    cr->perms = parse_perms(field(c, "permissions"));
    if (i > 0xffff)
      return LERR(L, "too many credentials in one project");
    size_t dummy;
    if (sim_map_get(&L->sim->ak_ix, cr->ak, &dummy))
      return LERR(L, "credential: duplicate ak");
    rc = sim_map_put(&L->sim->ak_ix, cr->ak, pi << 16 | i);
    if (rc)
      return rc;
  }
  return 0;
}

static int load_users(struct loader *L, struct sim_project *p, yajl_val a)
{
  size_t n = a ? a->u.array.len : 0;
  p->users = calloc(n + 1, sizeof(*p->users));
  if (!p->users)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yajl_val u = a->u.array.values[i];
    struct sim_user *us = &p->users[i];
    p->nusers++;
    int rc = req_str(L, u, "domain", "user", &us->domain);
    if (!rc)
      rc = req_str(L, u, "name", "user", &us->name);
    if (!rc)
      rc = req_str(L, u, "password", "user", &us->password);
    if (rc)
      return rc;
    us->perms = parse_perms(field(u, "permissions"));
    hex_id(us->domain, us->name, us->id);
  }
  return 0;
}

static int load_projects(struct loader *L, yajl_val root)
{
  struct sim *sim = L->sim;
  yajl_val a = arr(root, "projects");
  if (!a || !a->u.array.len)
    return LERR(L, "seed: \"projects\" must be a non-empty array");
  sim->projects = calloc(a->u.array.len, sizeof(*sim->projects));
  if (!sim->projects)
    return -ENOMEM;
  for (size_t i = 0; i < a->u.array.len; i++) {
    yajl_val pv = a->u.array.values[i];
    struct sim_project *p = &sim->projects[i];
    sim->nprojects++;
    int rc = req_str(L, pv, "id", "project", &p->id);
    if (!rc)
      rc = opt_str(pv, "region", "cn-north-4", &p->region);
    if (!rc && sim_find_project(sim, p->id) >= 0)
      rc = LERR(L, "project %s: duplicate", p->id);
    if (!rc)
      rc = sim_map_put(&sim->project_ix, p->id, i);
    if (!rc)
      rc = load_creds(L, p, arr(pv, "credentials"), i);
    if (!rc)
      rc = load_users(L, p, arr(pv, "users"));
    if (rc)
      return rc;
  }
  return 0;
}

static int project_ref(struct loader *L, yajl_val obj, const char *what,
                       size_t *out)
{
  const char *p = YAJL_GET_STRING(field(obj, "project"));
  long ix = p ? sim_find_project(L->sim, p) : -1;
  if (ix < 0)
    return LERR(L, "%s: unknown or missing project", what);
  *out = (size_t)ix;
  return 0;
}

static int add_slot(struct loader *L, size_t gw, yajl_val d)
{
  struct sim *sim = L->sim;
  const char *name = YAJL_IS_STRING(d) ? YAJL_GET_STRING(d)
                                       : YAJL_GET_STRING(field(d, "domain"));
  if (!name || !*name || strlen(name) > 255)
    return LERR(L, "gateway %s: bad domain entry", sim->gws[gw].instance_id);
  struct sim_slot *s = &sim->slots[sim->nslots];
  memset(s, 0, sizeof(*s));
  s->gw = gw;
  s->cert = -1;
  s->prev_cert = -1;
  s->domain = strdup(name);
  if (!s->domain)
    return -ENOMEM;
  sim->nslots++;
  char gid[33];
  hex_id(sim->gws[gw].instance_id, "group:default", gid);
  int rc = opt_str(YAJL_IS_OBJECT(d) ? d : NULL, "group_id", gid, &s->group_id);
  if (!rc)
    rc = opt_str(YAJL_IS_OBJECT(d) ? d : NULL, "group_name", "default",
                 &s->group_name);
  if (rc)
    return rc;
  hex_id(sim->gws[gw].instance_id, name, s->id);
  return 0;
}

/* Slots never change after the seed is loaded, so their order is computed
 * once: ranks, the rank -> slot table and the domain index. A domain listed
 * twice on one gateway shows as two adjacent equal slots. */
static int rank_slots(struct loader *L)
{
  struct sim *sim = L->sim;
  size_t n = sim->nslots, *order = malloc((n + 1) * sizeof(*order));
  sim->ranked = malloc((n + 1) * sizeof(*sim->ranked));
  int rc = order && sim->ranked ? 0 : -ENOMEM;
  for (size_t i = 0; !rc && i < n; i++)
    order[i] = i;
  if (!rc)
    qsort_r(order, n, sizeof(*order), slot_name_cmp_r, sim);
  for (size_t r = 0, run = 0; !rc && r < n; r++) {
    struct sim_slot *s = &sim->slots[order[r]];
    const struct sim_slot *prev = r ? &sim->slots[order[r - 1]] : NULL;
    if (prev && slot_name_cmp(sim, order[r - 1], order[r]) == 0) {
      rc = LERR(L, "gateway %s: domain %s listed twice",
                sim->gws[s->gw].instance_id, s->domain);
    } else if (!prev || strcmp(prev->domain, s->domain) != 0) {
      run = r; /* the first slot of a domain */
      rc = sim_map_put(&sim->domain_ix, s->domain, run);
    }
    s->rank = r;
    sim->ranked[r] = (struct sim_ranked){order[r], s->gw, run};
  }
  free(order);
  return rc;
}

/* The data plane's listen addresses; checked when it binds them. */
static int load_ingress(struct loader *L, struct sim_gateway *gw, yajl_val g)
{
  yajl_val a = arr(g, "ingress");
  size_t n = a ? a->u.array.len : 0;
  gw->ingress = calloc(n + 1, sizeof(*gw->ingress));
  if (!gw->ingress)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *s = YAJL_GET_STRING(a->u.array.values[i]);
    if (!s || !*s)
      return LERR(L, "gateway %s: ingress entries must be strings",
                  gw->instance_id);
    gw->ingress[gw->ningress] = strdup(s);
    if (!gw->ingress[gw->ningress])
      return -ENOMEM;
    gw->ningress++;
  }
  return 0;
}

static int load_gateways(struct loader *L, yajl_val root)
{
  struct sim *sim = L->sim;
  yajl_val a = arr(root, "gateways");
  size_t n = a ? a->u.array.len : 0, total = 0;
  for (size_t i = 0; i < n; i++) {
    yajl_val d = arr(a->u.array.values[i], "domains");
    total += d ? d->u.array.len : 0;
  }
  sim->gws = calloc(n + 1, sizeof(*sim->gws));
  sim->slots = calloc(total + 1, sizeof(*sim->slots));
  sim->items = calloc(total + 1, sizeof(*sim->items));
  if (!sim->gws || !sim->slots || !sim->items)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    yajl_val g = a->u.array.values[i];
    struct sim_gateway *gw = &sim->gws[i];
    sim->ngws++;
    int rc = req_str(L, g, "instance_id", "gateway", &gw->instance_id);
    if (!rc)
      rc = project_ref(L, g, gw->instance_id, &gw->project);
    if (!rc && sim_find_gw(sim, gw->instance_id) >= 0)
      rc = LERR(L, "gateway %s: duplicate", gw->instance_id);
    if (!rc)
      rc = sim_map_put(&sim->gw_ix, gw->instance_id, i);
    if (!rc)
      rc = load_ingress(L, gw, g);
    yajl_val d = arr(g, "domains");
    for (size_t j = 0; !rc && d && j < d->u.array.len; j++)
      rc = add_slot(L, i, d->u.array.values[j]);
    if (rc)
      return rc;
  }
  return rank_slots(L);
}

static int load_san(struct loader *L, struct sim_cert *c, yajl_val v)
{
  yajl_val a = arr(v, "san");
  size_t n = a ? a->u.array.len : 0;
  c->san = calloc(n + 1, sizeof(*c->san));
  if (!c->san)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const char *s = YAJL_GET_STRING(a->u.array.values[i]);
    if (!s)
      return LERR(L, "certificate %s: san entries must be strings", c->id);
    c->san[c->nsan] = strdup(s);
    if (!c->san[c->nsan])
      return -ENOMEM;
    c->nsan++;
  }
  return 0;
}

/* The real time of the simulator's first load + days, as APIG writes a
 * certificate's dates. Not settings.now: that is the server's clock as a
 * test skews it (years off), which must not expire the world's
 * certificates. */
static void iso_days_from_now(struct sim *sim, int days, char out[32])
{
  time_t t;
  struct tm tm;

  if (!sim->dates_base_s)
    sim->dates_base_s = (int64_t)time(NULL);
  t = (time_t)sim->dates_base_s + (time_t)days * 86400;

  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int load_cert_fields(struct loader *L, struct sim_cert *c, yajl_val v)
{
  /* A seed certificate without dates is valid from 30 days before the
   * simulator's now to a year after it. Fixed dates made every world's
   * certificates expire on one day (2027-01-01), and with them every test
   * and the demo (certbind never binds an expired certificate). A reset
   * keeps them (sim.dates_base_s). */
  char not_before[32], not_after[32];
  int rc = load_san(L, c, v);

  iso_days_from_now(L->sim, -30, not_before);
  iso_days_from_now(L->sim, 365, not_after);
  if (!rc)
    rc = opt_str(v, "name", c->id, &c->name);
  if (!rc)
    rc = opt_str(v, "type", "global", &c->type);
  if (!rc)
    rc = opt_str(v, "instance_id", "common", &c->instance_id);
  if (!rc)
    rc = opt_str(v, "common_name", c->nsan ? c->san[0] : "", &c->common_name);
  if (!rc)
    rc = opt_str(v, "not_before", not_before, &c->not_before);
  if (!rc)
    rc = opt_str(v, "not_after", not_after, &c->not_after);
  if (!rc)
    rc = opt_str(v, "create_time", "2026-01-01T00:00:00Z", &c->create_time);
  if (!rc)
    rc = opt_str(v, "signature_algorithm", "SHA256-RSA",
                 &c->signature_algorithm);
  if (!rc)
    rc = opt_str(v, "algorithm_type", "RSA", &c->algorithm_type);
  c->trusted_root_ca = YAJL_IS_TRUE(field(v, "trusted_root_ca"));
  return rc;
}

static int load_certs(struct loader *L, yajl_val root)
{
  struct sim *sim = L->sim;
  yajl_val a = arr(root, "certificates");
  size_t n = a ? a->u.array.len : 0;
  sim->certs = calloc(n + 1, sizeof(*sim->certs));
  if (!sim->certs)
    return -ENOMEM;
  sim->capcerts = n + 1;
  char *slash = strrchr(sim->opt.seed_file, '/');
  char dir[4096];
  snprintf(dir, sizeof(dir), "%.*s",
           slash ? (int)(slash - sim->opt.seed_file) : 1,
           slash ? sim->opt.seed_file : ".");
  for (size_t i = 0; i < n; i++) {
    yajl_val v = a->u.array.values[i];
    struct sim_cert *c = &sim->certs[i];
    sim->ncerts++;
    int rc = req_str(L, v, "id", "certificate", &c->id);
    if (!rc)
      rc = project_ref(L, v, c->id, &c->project);
    if (!rc && sim_find_cert(sim, c->id) >= 0)
      rc = LERR(L, "certificate %s: duplicate", c->id);
    if (!rc)
      rc = sim_map_put(&sim->cert_ix, c->id, i);
    if (!rc)
      rc = load_cert_fields(L, c, v);
    if (!rc)
      rc = sim_cert_seed_pem(sim, c, v, dir, L->err, L->errlen);
    if (rc)
      return rc;
  }
  return 0;
}

static int load_binding(struct loader *L, yajl_val b)
{
  struct sim *sim = L->sim;
  const char *cid = YAJL_GET_STRING(field(b, "certificate"));
  const char *iid = YAJL_GET_STRING(field(b, "instance_id"));
  const char *dom = YAJL_GET_STRING(field(b, "domain"));
  long c = cid ? sim_find_cert(sim, cid) : -1;
  long g = iid ? sim_find_gw(sim, iid) : -1;
  if (c < 0 || g < 0 || !dom)
    return LERR(L, "binding: unknown certificate/instance_id or no domain");
  long s = sim_find_slot(sim, (size_t)g, dom);
  if (s < 0)
    return LERR(L, "binding: %s is not registered on %s", dom, iid);
  if (sim->certs[c].project != sim->gws[g].project)
    return LERR(L, "binding: certificate and gateway in different projects");
  if (sim->slots[s].cert >= 0)
    return LERR(L, "binding: %s on %s bound twice", dom, iid);
  sim_slot_set(sim, (size_t)s, c,
               YAJL_IS_TRUE(field(b, "verified_client_certificate_enabled")));
  return sim->slots[s].cert == c ? 0 : -ENOMEM;
}

static int load_rest(struct loader *L, yajl_val root)
{
  struct sim *sim = L->sim;
  yajl_val a = arr(root, "bindings");
  /* seed bindings are the starting truth, visible at once */
  int64_t delay = sim->settings.visibility_delay_ms;
  sim->settings.visibility_delay_ms = 0;
  for (size_t i = 0; a && i < a->u.array.len; i++) {
    int rc = load_binding(L, a->u.array.values[i]);
    if (rc)
      return rc;
  }
  sim->settings.visibility_delay_ms = delay;
  memset(&sim->stats, 0, sizeof(sim->stats));
  yajl_val f = field(root, "faults");
  if (f && sim_faults_parse(f, &sim->faults, L->err, L->errlen) != 0)
    return -EINVAL;
  return 0;
}

static int read_file(const char *path, char **out, char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open", path);
    return -errno;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  int rc = buf ? 0 : -ENOMEM;
  while (!rc) {
    if (len + 1 >= cap) {
      char *n = cap < SEED_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
      if (!n) {
        snprintf(err, errlen, "%s: too large or out of memory", path);
        rc = -EFBIG;
        break;
      }
      buf = n;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len - 1, f);
    len += got;
    if (got == 0)
      break;
  }
  if (!rc && ferror(f)) {
    snprintf(err, errlen, "%s: read error", path);
    rc = -EIO;
  }
  fclose(f);
  if (rc) {
    free(buf);
    return rc;
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

int sim_world_load(struct sim *sim, char *err, size_t errlen)
{
  char *text = NULL;
  int rc = read_file(sim->opt.seed_file, &text, err, errlen);
  if (rc)
    return rc;
  char perr[256];
  yajl_val root = yajl_tree_parse(text, perr, sizeof(perr));
  free(text);
  if (!root || !YAJL_IS_OBJECT(root)) {
    snprintf(err, errlen, "%s: invalid JSON: %s", sim->opt.seed_file,
             root ? "not an object" : perr);
    yajl_tree_free(root);
    return -EINVAL;
  }
  struct loader L = {sim, err, errlen};
  sim_settings_default(&sim->settings);
  sim_faults_default(&sim->faults);
  yajl_val st = field(root, "settings");
  rc = st ? sim_settings_parse(st, &sim->settings, err, errlen) : 0;
  if (!rc)
    rc = load_projects(&L, root);
  if (!rc)
    rc = load_gateways(&L, root);
  if (!rc)
    rc = load_certs(&L, root);
  if (!rc)
    rc = load_rest(&L, root);
  yajl_tree_free(root);
  return rc;
}

static void free_cert(struct sim_cert *c)
{
  for (size_t j = 0; j < c->nsan; j++)
    free(c->san[j]);
  free(c->san);
  free(c->id);
  free(c->name);
  free(c->type);
  free(c->instance_id);
  free(c->common_name);
  free(c->not_before);
  free(c->not_after);
  free(c->create_time);
  free(c->signature_algorithm);
  free(c->algorithm_type);
  free(c->ranks);
  sim_cert_free_content(c);
}

static void free_project(struct sim_project *p)
{
  for (size_t j = 0; j < p->ncreds; j++) {
    free(p->creds[j].ak);
    free(p->creds[j].sk);
  }
  for (size_t j = 0; j < p->nusers; j++) {
    free(p->users[j].domain);
    free(p->users[j].name);
    free(p->users[j].password);
  }
  free(p->creds);
  free(p->users);
  free(p->id);
  free(p->region);
}

void sim_world_free(struct sim *sim)
{
  for (size_t i = 0; i < sim->nprojects; i++)
    free_project(&sim->projects[i]);
  for (size_t i = 0; i < sim->ngws; i++) {
    free(sim->gws[i].instance_id);
    for (size_t j = 0; j < sim->gws[i].ningress; j++)
      free(sim->gws[i].ingress[j]);
    free(sim->gws[i].ingress);
  }
  for (size_t i = 0; i < sim->ncerts; i++)
    free_cert(&sim->certs[i]);
  for (size_t i = 0; i < sim->nslots; i++) {
    free(sim->slots[i].domain);
    free(sim->slots[i].group_id);
    free(sim->slots[i].group_name);
  }
  if (sim->items)
    for (size_t i = 0; i < sim->nslots; i++)
      free(atomic_load_explicit(&sim->items[i], memory_order_relaxed));
  for (size_t i = 0; i < sim->ntokens; i++)
    free(sim->tokens[i].value);
  free(sim->projects);
  free(sim->gws);
  free(sim->certs);
  free(sim->slots);
  free(sim->ranked);
  free((void *)sim->items);
  free(sim->log);
  free(sim->tokens);
  sim_map_free(&sim->project_ix);
  sim_map_free(&sim->gw_ix);
  sim_map_free(&sim->cert_ix);
  sim_map_free(&sim->domain_ix);
  sim_map_free(&sim->ak_ix);
  sim_map_free(&sim->token_ix);
  sim->projects = NULL;
  sim->gws = NULL;
  sim->certs = NULL;
  sim->slots = NULL;
  sim->ranked = NULL;
  sim->items = NULL;
  sim->log = NULL;
  sim->tokens = NULL;
  sim->nprojects = sim->ngws = sim->ncerts = sim->nslots = 0;
  sim->capcerts = 0;
  sim->nlog = sim->caplog = sim->ntokens = sim->captokens = 0;
}

static int apply_json_option(struct sim *sim, const char *json, bool faults,
                             char *err, size_t errlen)
{
  yajl_val v = json ? sim_json_parse(json, strlen(json)) : NULL;
  int rc = 0;
  if (json && !v) {
    snprintf(err, errlen, "--%s: invalid JSON", faults ? "faults" : "settings");
    return -EINVAL;
  }
  if (v && faults) {
    struct sim_faults f;
    sim_faults_default(&f);
    rc = sim_faults_parse(v, &f, err, errlen);
    if (!rc)
      sim->faults = f;
  } else if (v) {
    rc = sim_settings_parse(v, &sim->settings, err, errlen);
  }
  yajl_tree_free(v);
  return rc;
}

int sim_apply_options(struct sim *sim, char *err, size_t errlen)
{
  const struct sim_options *o = &sim->opt;
  int rc = apply_json_option(sim, o->settings_json, false, err, errlen);
  if (!rc)
    rc = apply_json_option(sim, o->faults_json, true, err, errlen);
  if (rc)
    return rc;
  if (o->visibility_delay_ms >= 0)
    sim->settings.visibility_delay_ms = o->visibility_delay_ms;
  if (o->token_ttl_s > 0)
    sim->settings.token_ttl_s = o->token_ttl_s;
  if (o->clock_skew_ok)
    sim->settings.clock_check = false;
  if (o->latency_ms >= 0) {
    sim->faults.lat_kind = SIM_LAT_FIXED;
    sim->faults.lat_ms = o->latency_ms;
  }
  return 0;
}

int sim_reset(struct sim *sim, char *err, size_t errlen)
{
  sim_world_free(sim);
  int rc = sim_world_load(sim, err, errlen);
  if (rc)
    return rc;
  rc = sim_apply_options(sim, err, errlen);
  if (rc)
    return rc;
  memset(&sim->stats, 0, sizeof(sim->stats));
  sim->generation++;
  return 0;
}

/* ---- stats ------------------------------------------------------------- */

void sim_stats_count(struct sim *sim, int op, int status)
{
  if (op < 0 || op >= SIM_OP_COUNT)
    op = SIM_OP_OTHER;
  struct sim_status_count *t = sim->stats.by_op[op];
  for (size_t i = 0; i < SIM_MAX_STATUS; i++) {
    /* n == 0 marks a free entry; status 0 records a connection reset */
    if (t[i].status == status || t[i].n == 0) {
      t[i].status = status;
      t[i].n++;
      return;
    }
  }
}

static int gen_by_op(yajl_gen g, const struct sim *sim)
{
  int rc = sim_gen_str(g, "by_op");
  yajl_gen_map_open(g);
  for (int op = 0; op < SIM_OP_COUNT; op++) {
    rc |= sim_gen_str(g, sim_op_name(op));
    yajl_gen_map_open(g);
    for (size_t i = 0; i < SIM_MAX_STATUS; i++) {
      const struct sim_status_count *c = &sim->stats.by_op[op][i];
      if (!c->n)
        break;
      char k[8];
      snprintf(k, sizeof(k), "%d", c->status);
      rc |= sim_gen_kv_int(g, k, (long long)c->n);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
  return rc;
}

static int gen_peaks(yajl_gen g, const struct sim *sim)
{
  int max = 0, rc = sim_gen_str(g, "peak_concurrent_writes");
  yajl_gen_map_open(g);
  for (size_t i = 0; i < sim->ncerts; i++) {
    if (sim->certs[i].peak_writes > max)
      max = sim->certs[i].peak_writes;
    if (sim->certs[i].peak_writes)
      rc |= sim_gen_kv_int(g, sim->certs[i].id, sim->certs[i].peak_writes);
  }
  yajl_gen_map_close(g);
  rc |= sim_gen_kv_int(g, "peak_concurrent_writes_max", max);
  return rc;
}

int sim_stats_gen(yajl_gen g, const struct sim *sim)
{
  const struct sim_stats *s = &sim->stats;
  int rc = 0;
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_int(g, "requests", (long long)s->requests);
  rc |= gen_by_op(g, sim);
  rc |= sim_gen_kv_int(g, "auth_failures", (long long)s->auth_failures);
  rc |= sim_gen_kv_int(g, "in_flight", (long long)s->in_flight);
  rc |= sim_gen_kv_int(g, "peak_concurrent_requests",
                       (long long)s->peak_in_flight);
  rc |= gen_peaks(g, sim);
  rc |= sim_gen_kv_int(g, "writes_total", (long long)s->writes_total);
  rc |= sim_gen_kv_int(g, "writes_noop", (long long)s->writes_noop);
  rc |= sim_gen_kv_int(g, "bindings_changed", (long long)s->bindings_changed);
  rc |= sim_gen_kv_int(g, "unbound_transitions",
                       (long long)s->unbound_transitions);
  rc |=
      sim_gen_kv_int(g, "overlap_rejections", (long long)s->overlap_rejections);
  rc |= sim_gen_kv_int(g, "resets", (long long)s->resets);
  rc |= sim_gen_kv_int(g, "throttled", (long long)s->throttled);
  rc |= sim_gen_kv_int(g, "injected_errors", (long long)s->injected_errors);
  rc |= sim_gen_kv_int(g, "tls_connections", (long long)s->tls_connections);
  rc |= sim_gen_kv_int(g, "tls_resumed", (long long)s->tls_resumed);
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}

int sim_state_gen(yajl_gen g, const struct sim *sim)
{
  int rc = 0;
  size_t n = 0;
  yajl_gen_map_open(g);
  rc |= sim_gen_str(g, "bindings");
  yajl_gen_array_open(g);
  for (size_t c = 0; c < sim->ncerts; c++) {
    const struct sim_cert *cert = &sim->certs[c];
    for (size_t i = 0; i < cert->nslots; i++) {
      const struct sim_slot *s = &sim->slots[sim->ranked[cert->ranks[i]].slot];
      yajl_gen_map_open(g);
      rc |= sim_gen_kv_str(g, "certificate_id", cert->id);
      rc |= sim_gen_kv_str(g, "instance_id", sim->gws[s->gw].instance_id);
      rc |= sim_gen_kv_str(g, "domain", s->domain);
      rc |=
          sim_gen_kv_bool(g, "verified_client_certificate_enabled", s->verify);
      yajl_gen_map_close(g);
      n++;
    }
  }
  yajl_gen_array_close(g);
  rc |= sim_gen_kv_int(g, "count", (long long)n);
  rc |= sim_certs_state_gen(g, sim);
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}
