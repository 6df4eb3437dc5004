/* SPDX-License-Identifier: MIT */
/* A small string -> size_t hash map (FNV-1a, linear probing). The world is
 * built once from the seed, so there is no deletion. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static size_t probe(char *const *keys, size_t cap, const char *key)
{
  size_t i = (size_t)hash_str(key) & (cap - 1);
  while (keys[i] && strcmp(keys[i], key) != 0)
    i = (i + 1) & (cap - 1);
  return i;
}

static int grow(struct sim_map *m)
{
  size_t ncap = m->cap ? m->cap * 2 : 64;
  char **nkeys = calloc(ncap, sizeof(*nkeys));
  size_t *nvals = calloc(ncap, sizeof(*nvals));
  if (!nkeys || !nvals) {
    free(nkeys);
    free(nvals);
    return -ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i])
      continue;
    size_t j = probe(nkeys, ncap, m->keys[i]);
    nkeys[j] = m->keys[i];
    nvals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = nkeys;
  m->vals = nvals;
  m->cap = ncap;
  return 0;
}

int sim_map_put(struct sim_map *m, const char *key, size_t val)
{
  /* keep the load factor under 1/2 so probes stay short */
  if ((m->len + 1) * 2 > m->cap) {
    int rc = grow(m);
    if (rc)
      return rc;
  }
  size_t i = probe(m->keys, m->cap, key);
  if (!m->keys[i]) {
    m->keys[i] = strdup(key);
    if (!m->keys[i])
      return -ENOMEM;
    m->len++;
  }
  m->vals[i] = val;
  return 0;
}

bool sim_map_get(const struct sim_map *m, const char *key, size_t *val)
{
  if (!m->cap)
    return false;
  size_t i = probe(m->keys, m->cap, key);
  if (!m->keys[i])
    return false;
  *val = m->vals[i];
  return true;
}

void sim_map_free(struct sim_map *m)
{
  for (size_t i = 0; i < m->cap; i++)
    free(m->keys[i]);
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}
