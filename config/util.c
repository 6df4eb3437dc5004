/* SPDX-License-Identifier: MIT */
/*
 * Arena, diagnostics and the hash table used by the loader. This file
 * calls no other file of config/ (schema.c and the loaders call it).
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

#define CHUNK_SIZE (64u * 1024u)

struct config__chunk {
  struct config__chunk *next;
  size_t used, size;
  max_align_t data[];
};

void *config__arena_alloc(struct config__arena *a, size_t n)
{
  struct config__chunk *ch = a->head;
  size_t need = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

  if (need < n)
    return NULL;
  if (ch == NULL || ch->size - ch->used < need) {
    size_t size = need > CHUNK_SIZE ? need : CHUNK_SIZE;

    ch = malloc(sizeof(*ch) + size);
    if (ch == NULL)
      return NULL;
    ch->used = 0;
    ch->size = size;
    ch->next = a->head;
    a->head = ch;
  }
  void *p = (char *)ch->data + ch->used;
  ch->used += need;
  return p;
}

void config__arena_free(struct config__arena *a)
{
  struct config__chunk *ch = a->head;

  while (ch != NULL) {
    struct config__chunk *next = ch->next;
    free(ch);
    ch = next;
  }
  a->head = NULL;
}

/* ---- packed strings ---- */

#define STRBLOCK_SIZE (64u * 1024u)

struct config__strblock {
  struct config__strblock *next;
  size_t used, size;
  char data[];
};

char *config__strings_add(struct config__strblock **head, const char *s,
                          size_t n)
{
  struct config__strblock *b = *head;

  if (n >= SIZE_MAX - sizeof(*b) - STRBLOCK_SIZE)
    return NULL;
  if (b == NULL || b->size - b->used < n + 1) {
    size_t size = n + 1 > STRBLOCK_SIZE ? n + 1 : STRBLOCK_SIZE;

    b = malloc(sizeof(*b) + size);
    if (b == NULL)
      return NULL;
    b->used = 0;
    b->size = size;
    b->next = *head;
    *head = b;
  }
  char *out = b->data + b->used;
  memcpy(out, s, n);
  out[n] = '\0';
  b->used += n + 1;
  return out;
}

void config__strings_free(struct config__strblock **head)
{
  while (*head != NULL) {
    struct config__strblock *next = (*head)->next;
    free(*head);
    *head = next;
  }
}

/* ---- diagnostics ---- */

void config__verror(struct config__ctx *c, uint32_t line, uint32_t col,
                    const char *fmt, va_list ap)
{
  if (c->ndiags >= CONFIG__MAX_DIAGS) {
    c->dropped++;
    return;
  }
  if (c->ndiags == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct config__diagent *d = realloc(c->diags, cap * sizeof(*d));

    if (d == NULL) {
      c->oom = true;
      return;
    }
    c->diags = d;
    c->cap = cap;
  }
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) {
    c->oom = true;
    return;
  }
  c->diags[c->ndiags] = (struct config__diagent){
      .line = line, .col = col, .seq = c->ndiags, .msg = msg};
  c->ndiags++;
}

void config__error(struct config__ctx *c, uint32_t line, uint32_t col,
                   const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  config__verror(c, line, col, fmt, ap);
  va_end(ap);
}

size_t config__nerrors(const struct config__ctx *c)
{
  return c->ndiags + c->dropped;
}

static int cmp_diag(const void *a, const void *b)
{
  const struct config__diagent *x = a, *y = b;

  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  if (x->col != y->col)
    return x->col < y->col ? -1 : 1;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void config__pathf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

/* Appends s[0..n) at *at, stopping one short of end (snprintf's cut). */
static void path_put(char **at, char *end, const char *s, size_t n)
{
  size_t room = (size_t)(end - *at);

  if (n > room)
    n = room;
  memcpy(*at, s, n);
  *at += n;
}

/* The two forms every node's path takes, joined by hand: vsnprintf for
 * each of them was a tenth of the loader's time (one path per key and per
 * list item, made in case of an error). */
void config__path_key(char *buf, size_t size, const char *base, const char *key)
{
  char *at = buf, *end = buf + size - 1;

  if (size == 0)
    return;
  path_put(&at, end, base, strlen(base));
  if (*base)
    path_put(&at, end, ".", 1);
  path_put(&at, end, key, strlen(key));
  *at = '\0';
}

void config__path_index(char *buf, size_t size, const char *base, size_t i)
{
  char digits[24], *d = digits + sizeof(digits);
  char *at = buf, *end = buf + size - 1;

  if (size == 0)
    return;
  do
    *--d = (char)('0' + i % 10);
  while ((i /= 10) != 0);
  path_put(&at, end, base, strlen(base));
  path_put(&at, end, "[", 1);
  path_put(&at, end, d, (size_t)(digits + sizeof(digits) - d));
  path_put(&at, end, "]", 1);
  *at = '\0';
}

int config__diag_add(struct config_diag *diag, const char *fmt, ...)
{
  char *line = NULL;
  va_list ap;
  char **v;
  int rc;

  if (diag == NULL)
    return 0;
  v = realloc(diag->lines, (diag->count + 1) * sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  diag->lines = v;
  va_start(ap, fmt);
  rc = vasprintf(&line, fmt, ap);
  va_end(ap);
  if (rc < 0)
    return -ENOMEM;
  diag->lines[diag->count++] = line;
  return 0;
}

int config__flush(struct config__ctx *c, struct config_diag *diag)
{
  int rc = 0;

  qsort(c->diags, c->ndiags, sizeof(*c->diags), cmp_diag);
  for (size_t i = 0; i < c->ndiags && rc == 0; i++) {
    /* a message quotes the file's text: keep it on one printable line */
    for (char *p = c->diags[i].msg; *p != '\0'; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        *p = '?';
    rc = config__diag_add(diag, "%s:%u:%u: %s", c->name,
                          (unsigned)c->diags[i].line, (unsigned)c->diags[i].col,
                          c->diags[i].msg);
  }
  if (rc == 0 && c->dropped)
    rc = config__diag_add(diag, "%s: %zu more errors not shown", c->name,
                          c->dropped);
  if (rc == 0 && c->oom)
    rc = config__diag_add(diag, "%s: out of memory", c->name);
  return rc;
}

void config__ctx_free(struct config__ctx *c)
{
  for (size_t i = 0; i < c->ndiags; i++)
    free(c->diags[i].msg);
  free(c->diags);
  c->diags = NULL;
  c->ndiags = c->cap = c->dropped = 0;
  config__arena_free(&c->arena);
}

/* ---- hash table (linear probing; values are indexes) ---- */

struct config__hslot {
  uint64_t h;
  size_t val;
  bool used;
};

uint64_t config__hash(const void *p, size_t len, uint64_t seed)
{
  const unsigned char *s = p;
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);

  for (size_t i = 0; i < len; i++) {
    h ^= s[i];
    h *= 1099511628211ull;
  }
  /* final avalanche so that the low bits used for the slot are mixed */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

static int htab_grow(struct config__htab *t)
{
  size_t cap = t->cap ? t->cap * 2 : 64;
  struct config__hslot *s = calloc(cap, sizeof(*s));

  if (s == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < t->cap; i++) {
    if (!t->slots[i].used)
      continue;
    size_t j = t->slots[i].h & (cap - 1);
    while (s[j].used)
      j = (j + 1) & (cap - 1);
    s[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = s;
  t->cap = cap;
  return 0;
}

int config__htab_find(const struct config__htab *t, uint64_t h, config__heq eq,
                      const void *arg, size_t *found)
{
  if (t->cap == 0)
    return 0;
  for (size_t j = h & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
    const struct config__hslot *s = &t->slots[j];

    if (!s->used)
      return 0;
    if (s->h == h && eq(s->val, arg)) {
      *found = s->val;
      return 1;
    }
  }
}

int config__htab_upsert(struct config__htab *t, uint64_t h, size_t val,
                        config__heq eq, const void *arg, size_t *found)
{
  if (config__htab_find(t, h, eq, arg, found))
    return 1;
  /* keep the load factor under 1/2 */
  if ((t->n + 1) * 2 > t->cap && htab_grow(t) < 0)
    return -ENOMEM;
  size_t j = h & (t->cap - 1);
  while (t->slots[j].used)
    j = (j + 1) & (t->cap - 1);
  t->slots[j] = (struct config__hslot){.h = h, .val = val, .used = true};
  t->n++;
  return 0;
}

void config__htab_free(struct config__htab *t)
{
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
}

bool config__name_eq(size_t val, const void *arg)
{
  const struct config__named *a = arg;
  const char *const *name =
      (const char *const *)((const char *)a->arr + val * a->size);

  return *name != NULL && strcmp(*name, a->name) == 0;
}
