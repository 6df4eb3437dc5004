/* SPDX-License-Identifier: MIT */
/*
 * memo: the per-binding memory between a daemon's passes (memo.h).
 */
#include "memo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int memo_key(char *buf, size_t len, const char *certificate_id,
             const char *instance_id, const char *domain, bool verify_client)
{
  int n = snprintf(buf, len, "%s %s %s %d", certificate_id, instance_id, domain,
                   verify_client ? 1 : 0);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int cmp_memo(const void *a, const void *b)
{
  return strcmp(((const struct memo *)a)->key, ((const struct memo *)b)->key);
}

const struct memo *memo_find(const struct memo_set *s, const char *key)
{
  struct memo probe = {.key = (char *)key};

  return s && s->n
             ? bsearch(&probe, s->memos, s->n, sizeof(*s->memos), cmp_memo)
             : NULL;
}

bool memo_holds(const struct memo *m, int64_t now_s)
{
  return m->permanent || m->next_retry > now_s;
}

int64_t memo_delay_s(uint32_t failures)
{
  int64_t d = 60;

  for (uint32_t k = 1; k < failures && d < 3600; k++)
    d *= 2;
  return d < 3600 ? d : 3600;
}

void memo_next(struct memo *m, const struct memo *old, bool permanent,
               int64_t ended_s)
{
  m->permanent = permanent;
  m->failures = (old ? old->failures : 0) + 1;
  m->next_retry = permanent ? 0 : ended_s + memo_delay_s(m->failures);
}

int memo_set_add(struct memo_set *s, const struct memo *m)
{
  struct memo *dst;

  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    struct memo *n = realloc(s->memos, cap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    s->memos = n;
    s->cap = cap;
  }
  dst = &s->memos[s->n];
  *dst = *m;
  dst->key = strdup(m->key);
  dst->error_msg = strdup(m->error_msg ? m->error_msg : "");
  if (!dst->key || !dst->error_msg) {
    free(dst->key);
    free(dst->error_msg);
    return -ENOMEM;
  }
  s->n++;
  return 0;
}

void memo_set_sort(struct memo_set *s)
{
  if (s->n > 1) /* memos is NULL when empty */
    qsort(s->memos, s->n, sizeof(*s->memos), cmp_memo);
}

void memo_set_free(struct memo_set *s)
{
  for (size_t i = 0; i < s->n; i++) {
    free(s->memos[i].key);
    free(s->memos[i].error_msg);
  }
  free(s->memos);
  s->memos = NULL;
  s->n = s->cap = 0;
}
