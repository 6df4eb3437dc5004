/* SPDX-License-Identifier: MIT */
/*
 * bindings: each entry names one certificate, some gateways and some
 * domains, and expands to one struct config_binding per (certificate,
 * gateway, domain). A hash table on (gateway, domain) finds both kinds of
 * conflict in O(1) per binding: the same triple twice, and one (gateway,
 * domain) wanting two certificates.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pair_arg {
  const struct config *cfg;
  size_t gateway;
  const char *domain;
};

static bool eq_pair(size_t val, const void *arg)
{
  const struct pair_arg *a = arg;
  const struct config_binding *b = &a->cfg->bindings[val];

  return b->gateway == a->gateway && strcmp(b->domain, a->domain) == 0;
}

struct entry {
  bool verify_client;
};

enum { B_CERT, B_GATEWAYS, B_DOMAINS, B_VERIFY };
#define BF(n, t, ...)                                                          \
  {                                                                            \
    .name = n, .type = t, __VA_ARGS__                                          \
  }
static const struct config__field binding_fields[] = {
    [B_CERT] = BF("certificate", CONFIG__F_CUSTOM, .required = true,
                  .custom = config__noop),
    [B_GATEWAYS] = BF("gateways", CONFIG__F_CUSTOM, .required = true,
                      .custom = config__noop),
    [B_DOMAINS] = BF("domains", CONFIG__F_CUSTOM, .required = true,
                     .custom = config__noop),
    [B_VERIFY] = BF("verify_client", CONFIG__F_BOOL,
                    .off = offsetof(struct entry, verify_client), .def = 0),
};

static const char *account_name(const struct config *cfg, size_t i)
{
  return i < cfg->naccounts && cfg->accounts[i].name ? cfg->accounts[i].name
                                                     : "?";
}

/* Gateways of one entry, checked against the certificate's account. */
static size_t entry_gateways(struct config__loader *l,
                             const struct config__node *seq, const char *path,
                             size_t cert, size_t *out)
{
  const struct config *cfg = l->cfg;
  char sub[512];
  size_t j = 0, n = 0;

  for (const struct config__node *v = seq->first; v != NULL; v = v->next) {
    config__path_index(sub, sizeof(sub), path, j++);
    size_t g = config__resolve(l, v, sub, &l->gateways, cfg->gateways,
                               sizeof(*cfg->gateways), "gateway");
    if (g == NO_INDEX)
      continue;
    bool dup = false;
    for (size_t k = 0; k < n && !dup; k++)
      dup = out[k] == g;
    if (dup) {
      config__error(l->c, v->line, v->col, "%s: gateway \"%s\" listed twice",
                    sub, v->str);
      continue;
    }
    if (cert != NO_INDEX) {
      size_t ga = cfg->gateways[g].account;
      size_t ca = cfg->certificates[cert].account;
      if (ga != NO_INDEX && ca != NO_INDEX && ga != ca) {
        config__error(l->c, v->line, v->col,
                      "%s: gateway \"%s\" belongs to account \"%s\" but "
                      "certificate \"%s\" belongs to account \"%s\"",
                      sub, v->str, account_name(cfg, ga),
                      cfg->certificates[cert].name, account_name(cfg, ca));
        continue;
      }
    }
    out[n++] = g;
  }
  return n;
}

/* Room for one more binding. load_bindings reserves the file's count up
 * front, so this grows only past that (never for a valid file). */
static int grow(struct config__loader *l)
{
  struct config *cfg = l->cfg;

  if (cfg->nbindings < l->bcap)
    return 0;
  size_t cap = l->bcap ? l->bcap * 2 : 64;
  struct config_binding *b = realloc(cfg->bindings, cap * sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  cfg->bindings = b;
  l->bcap = cap;
  return 0;
}

static const struct config__node *entry_list(const struct config__node *e,
                                             const char *key)
{
  if (e->type != CONFIG__MAP)
    return NULL;
  for (const struct config__node *k = e->first; k && k->next; k = k->next->next)
    if (k->type == CONFIG__SCALAR && strcmp(k->str, key) == 0)
      return k->next->type == CONFIG__SEQ ? k->next : NULL;
  return NULL;
}

/* The bindings the file asks for (domains x gateways of every entry): the
 * array is made this size once instead of doubling up to it (100,000
 * bindings: 5.2 MB for 4.0 MB of bindings). */
static int reserve_bindings(struct config__loader *l,
                            const struct config__node *seq)
{
  size_t n = 0;

  for (const struct config__node *e = seq->first; e != NULL; e = e->next) {
    const struct config__node *d = entry_list(e, "domains");
    const struct config__node *g = entry_list(e, "gateways");
    /* a gateway listed twice is an error: at most ngateways count */
    size_t ngw = g ? (g->n < l->cfg->ngateways ? g->n : l->cfg->ngateways) : 0;

    if (!d || ngw == 0)
      continue;
    if (d->n > (SIZE_MAX / sizeof(struct config_binding) - n) / ngw)
      return 0; /* no reservation: the doubling finds out */
    n += d->n * ngw;
  }
  if (n == 0 || n <= l->bcap)
    return 0;
  struct config_binding *b = realloc(l->cfg->bindings, n * sizeof(*b));
  if (b == NULL)
    return -ENOMEM;
  l->cfg->bindings = b;
  l->bcap = n;
  return 0;
}

/* The domain for a person: as written, and its normalised form when that
 * differs ("bücher.example.com" (xn--bcher-kva.example.com)), since two
 * spellings of one name are what makes a duplicate hard to see. */
static void spelling(char *buf, size_t size, const struct config__node *v,
                     const char *domain)
{
  if (v->len == strlen(domain) && memcmp(v->str, domain, v->len) == 0)
    snprintf(buf, size, "\"%s\"", domain);
  else
    snprintf(buf, size, "\"%.80s\" (%s)", v->str, domain);
}

/* domain: the packed copy every gateway's binding of it shares */
static void add_binding(struct config__loader *l, const struct config__node *v,
                        const char *path, size_t cert, size_t gw, char *domain,
                        bool verify)
{
  struct config *cfg = l->cfg;
  struct pair_arg a = {cfg, gw, domain};
  size_t found;
  int rc;

  if (grow(l) < 0) {
    l->c->oom = true;
    return;
  }
  rc = config__htab_upsert(&l->pairs,
                           config__hash(domain, strlen(domain), gw + 1),
                           cfg->nbindings, eq_pair, &a, &found);
  if (rc < 0) {
    l->c->oom = true;
    return;
  }
  if (rc == 1) {
    const struct config_binding *first = &cfg->bindings[found];
    char name[400];
    spelling(name, sizeof(name), v, domain);
    if (first->certificate == cert)
      config__error(l->c, v->line, v->col,
                    "%s: %s on gateway \"%s\" with certificate \"%s\" is "
                    "given twice (first at line %u)",
                    path, name, cfg->gateways[gw].name,
                    cfg->certificates[cert].name, (unsigned)first->line);
    else
      config__error(
          l->c, v->line, v->col,
          "%s: %s on gateway \"%s\" wants certificate \"%s\" "
          "here and certificate \"%s\" at line %u (a domain on a "
          "gateway has one certificate)",
          path, name, cfg->gateways[gw].name, cfg->certificates[cert].name,
          cfg->certificates[first->certificate].name, (unsigned)first->line);
    return;
  }
  struct config_binding *b = &cfg->bindings[cfg->nbindings];
  b->certificate = cert;
  b->gateway = gw;
  b->domain = domain;
  b->verify_client = verify;
  b->line = v->line;
  b->col = v->col;
  cfg->nbindings++;
}

static bool nonempty_list(struct config__loader *l,
                          const struct config__node *v, const char *path)
{
  if (v->type != CONFIG__SEQ) {
    config__error(l->c, v->line, v->col, "%s: expected a list, got %s", path,
                  config__kind(v));
    return false;
  }
  if (v->n == 0) {
    config__error(l->c, v->line, v->col, "%s: must not be empty", path);
    return false;
  }
  return true;
}

static void one_entry(struct config__loader *l, const struct config__node *e,
                      size_t i, size_t *gws)
{
  const struct config *cfg = l->cfg;
  const struct config__node *seen[NELEM(binding_fields)];
  struct entry ent;
  char path[64], sub[512];
  size_t cert = NO_INDEX, ngw = 0, j = 0;

  config__path_index(path, sizeof(path), "bindings", i);
  if (!config__section(l->c, e, path, binding_fields, NELEM(binding_fields),
                       &ent, seen, l))
    return;
  if (seen[B_CERT] != NULL) {
    config__path_key(sub, sizeof(sub), path, "certificate");
    cert = config__resolve(l, seen[B_CERT], sub, &l->certificates,
                           cfg->certificates, sizeof(*cfg->certificates),
                           "certificate");
  }
  if (seen[B_GATEWAYS] != NULL) {
    config__path_key(sub, sizeof(sub), path, "gateways");
    if (nonempty_list(l, seen[B_GATEWAYS], sub))
      ngw = entry_gateways(l, seen[B_GATEWAYS], sub, cert, gws);
  }
  if (seen[B_DOMAINS] == NULL)
    return;
  config__path_key(sub, sizeof(sub), path, "domains");
  if (!nonempty_list(l, seen[B_DOMAINS], sub))
    return;
  for (const struct config__node *v = seen[B_DOMAINS]->first; v != NULL;
       v = v->next) {
    char dpath[600];
    struct config__domain d;
    const char *why;

    config__path_index(dpath, sizeof(dpath), sub, j++);
    if (!config__get_str(l->c, v, dpath))
      continue;
    why = config__check_domain(v->str, v->len, &d);
    if (why != NULL) {
      config__error(l->c, v->line, v->col, "%s: \"%.80s\" %s", dpath, v->str,
                    why);
      continue;
    }
    if (cert == NO_INDEX)
      continue;
    config__check_covered(l, v, dpath, cert, d.name);
    if (ngw == 0)
      continue;
    char *domain =
        config__strings_add(&l->cfg->domain_blocks, d.name, strlen(d.name));
    if (domain == NULL) {
      l->c->oom = true;
      return;
    }
    for (size_t g = 0; g < ngw; g++)
      add_binding(l, v, dpath, cert, gws[g], domain, ent.verify_client);
  }
}

void config__load_bindings(struct config__loader *l,
                           const struct config__node *seq)
{
  size_t i = 0;
  size_t *gws;

  if (seq->type != CONFIG__SEQ) {
    config__error(l->c, seq->line, seq->col,
                  "bindings: expected a list, got %s", config__kind(seq));
    return;
  }
  /* the widest gateway list bounds every entry's */
  gws = malloc((l->cfg->ngateways + 1) * sizeof(*gws));
  if (gws == NULL || reserve_bindings(l, seq) < 0) {
    free(gws);
    l->c->oom = true;
    return;
  }
  for (const struct config__node *e = seq->first; e != NULL; e = e->next)
    one_entry(l, e, i++, gws);
  free(gws);
}
