/* SPDX-License-Identifier: MIT */
/*
 * show_cache: the daemon's Shows kept between passes (show_cache.h). A
 * tsearch(3) tree from libc: a daemon watching 10,000 certificates looks
 * each up once per pass, which a list would make quadratic.
 */
#include "show_cache.h"

#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_entry(const void *a, const void *b)
{
  return strcmp(((const struct show_cache_entry *)a)->key,
                ((const struct show_cache_entry *)b)->key);
}

static void entry_free(void *e)
{
  struct show_cache_entry *x = e;

  free(x->key);
  apig_cert_free(&x->cert);
  free(x);
}

int show_cache_key(char *buf, size_t len, const struct config *cfg, size_t cert)
{
  const struct config_certificate *cc = &cfg->certificates[cert];
  const struct config_account *acct = &cfg->accounts[cc->account];
  int n;

  if (!cc->id || cc->managed)
    return -ENOENT;
  n = snprintf(buf, len, "%s %s %s", acct->endpoint, acct->project_id, cc->id);

  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct show_cache_entry *lookup(const struct show_cache *c,
                                       const char *key)
{
  struct show_cache_entry probe = {.key = (char *)key};
  void *const *node;

  if (!c || !c->root)
    return NULL;
  node = tfind(&probe, &c->root, cmp_entry);
  return node ? *(struct show_cache_entry *const *)node : NULL;
}

const struct show_cache_entry *show_cache_find(struct show_cache *c,
                                               const char *key)
{
  struct show_cache_entry *e = lookup(c, key);

  if (e)
    e->touched = true;
  return e;
}

int show_cache_cert_copy(struct apig_cert *dst, const struct apig_cert *src)
{
  memset(dst, 0, sizeof(*dst));
  dst->not_before = src->not_before;
  dst->not_after = src->not_after;
  if (!(dst->id = strdup(src->id)))
    goto nomem;
  if (src->serial_number && !(dst->serial_number = strdup(src->serial_number)))
    goto nomem;
  if (src->nsan && !(dst->san = calloc(src->nsan, sizeof(*dst->san))))
    goto nomem;
  for (; dst->nsan < src->nsan; dst->nsan++) {
    if (!(dst->san[dst->nsan] = strdup(src->san[dst->nsan])))
      goto nomem;
  }
  return 0;
nomem:
  apig_cert_free(dst);
  memset(dst, 0, sizeof(*dst));
  return -ENOMEM;
}

int show_cache_put(struct show_cache *c, const char *key,
                   const struct apig_cert *cert, int64_t shown_ms)
{
  struct show_cache_entry *e = lookup(c, key);
  struct apig_cert copy;
  void *node;

  if (show_cache_cert_copy(&copy, cert) < 0) {
    show_cache_evict(c, key);
    return -ENOMEM;
  }
  if (e) {
    apig_cert_free(&e->cert);
    e->cert = copy;
    e->shown_ms = shown_ms;
    e->touched = true;
    return 0;
  }
  e = calloc(1, sizeof(*e));
  if (!e || !(e->key = strdup(key))) {
    free(e);
    apig_cert_free(&copy);
    return -ENOMEM;
  }
  e->cert = copy;
  e->shown_ms = shown_ms;
  e->touched = true;
  node = tsearch(e, &c->root, cmp_entry);
  if (!node) {
    entry_free(e);
    return -ENOMEM;
  }
  c->n++;
  return 0;
}

void show_cache_evict(struct show_cache *c, const char *key)
{
  struct show_cache_entry *e = lookup(c, key);

  if (!e)
    return;
  tdelete(e, &c->root, cmp_entry);
  entry_free(e);
  c->n--;
}

/* The entries a sweep drops, gathered first: a tree is not changed while
 * twalk_r walks it. */
struct sweep {
  struct show_cache_entry **out;
  size_t n;
};

static void sweep_visit(const void *node, VISIT which, void *arg)
{
  struct show_cache_entry *e = *(struct show_cache_entry *const *)node;
  struct sweep *s = arg;

  if (which != postorder && which != leaf)
    return; /* each node once */
  if (e->touched)
    e->touched = false;
  else
    s->out[s->n++] = e;
}

size_t show_cache_sweep(struct show_cache *c)
{
  struct sweep s = {0};

  if (!c || c->n == 0)
    return 0;
  s.out = malloc(c->n * sizeof(*s.out));
  if (!s.out)
    return 0; /* out of memory: kept, bounded by the next sweep */
  twalk_r(c->root, sweep_visit, &s);
  for (size_t i = 0; i < s.n; i++) {
    tdelete(s.out[i], &c->root, cmp_entry);
    entry_free(s.out[i]);
  }
  c->n -= s.n;
  free(s.out);
  return s.n;
}

void show_cache_free(struct show_cache *c)
{
  if (!c)
    return;
  tdestroy(c->root, entry_free);
  c->root = NULL;
  c->n = 0;
}
