/* SPDX-License-Identifier: MIT */
/*
 * visibility: the accounts' learnt write-to-visible delays, in memory and
 * in state_dir/visibility.json (see visibility.h). The file is JSON
 * through util/json.h, one table per object, both ways:
 *
 *   {"version": 1, "accounts": [{"account": "ENDPOINT PROJECT",
 *     "not_shown_ms": 4100, "shown_ms": 5200, "known": true,
 *     "learnt_unix_ms": 1796640000000}]}
 */
#include "visibility.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "statefile.h"

#define VISIBILITY_VERSION 1

int visibility_key(char *buf, size_t len, const char *endpoint,
                   const char *project_id)
{
  int n = snprintf(buf, len, "%s %s", endpoint, project_id);

  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct visibility_entry *visibility_find(const struct visibility_set *s,
                                         const char *key)
{
  for (size_t i = 0; s && i < s->n; i++) {
    if (!strcmp(s->v[i].key, key))
      return &s->v[i];
  }
  return NULL;
}

int visibility_put(struct visibility_set *s, const struct visibility_entry *e)
{
  struct visibility_entry *dst = visibility_find(s, e->key);
  char *key = dst ? dst->key : NULL;

  if (!dst) {
    struct visibility_entry *v = realloc(s->v, (s->n + 1) * sizeof(*v));
    if (!v)
      return -ENOMEM;
    s->v = v;
    key = strdup(e->key);
    if (!key)
      return -ENOMEM;
    dst = &s->v[s->n++];
  }
  *dst = *e;
  dst->key = key;
  return 0;
}

int visibility_merge(struct visibility_set *dst,
                     const struct visibility_set *src)
{
  for (size_t i = 0; src && i < src->n; i++) {
    const struct visibility_entry *mine = visibility_find(dst, src->v[i].key);
    int rc;
    if (mine && mine->learnt_ms >= src->v[i].learnt_ms)
      continue;
    rc = visibility_put(dst, &src->v[i]);
    if (rc < 0)
      return rc;
  }
  return 0;
}

void visibility_set_free(struct visibility_set *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i].key);
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* ---- the file (util/json.h) -------------------------------------------- */

static int set_unix_ms(struct json_reader *r, const struct json_field *f,
                       void *dst, const struct json_value *v)
{
  if (v->i < 0)
    return json_fail(r, -EBADMSG, f->name, "is negative");
  *(int64_t *)dst = v->i;
  return 0;
}

static yajl_gen_status put_unix_ms(yajl_gen g, const struct json_field *f,
                                   const void *src)
{
  int64_t v = *(const int64_t *)src;

  (void)f;
  return yajl_gen_integer(g, v > 0 ? v : 0);
}

static const struct json_field entry_fields[] = {
    {.name = "account",
     .kind = JSON_K_STR,
     .offset = offsetof(struct visibility_entry, key),
     .flags = JSON_REQUIRED | JSON_ONCE | JSON_NONEMPTY,
     .max = VISIBILITY_KEY_MAX - 1},
    {.name = "not_shown_ms",
     .kind = JSON_K_U64,
     .offset = offsetof(struct visibility_entry, lo_ms),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "shown_ms",
     .kind = JSON_K_U64,
     .offset = offsetof(struct visibility_entry, hi_ms),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "known",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct visibility_entry, known),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "learnt_unix_ms",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct visibility_entry, learnt_ms),
     .flags = JSON_REQUIRED | JSON_ONCE,
     .accept = JSON_INT,
     .set = set_unix_ms,
     .put = put_unix_ms},
};

static int entry_open(struct json_reader *r, void *parent, void **base);
static int entry_close(struct json_reader *r, void *base);

static const struct json_object entry_object = {
    .name = "accounts element",
    .fields = entry_fields,
    .nfields = sizeof(entry_fields) / sizeof(entry_fields[0]),
    .open = entry_open,
    .close = entry_close,
};

static const struct json_field file_fields[] = {
    {.name = "version",
     .kind = JSON_K_CUSTOM,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .max = VISIBILITY_VERSION,
     .accept = JSON_INT,
     .set = json_set_version},
    {.name = "accounts",
     .kind = JSON_K_ARRAY,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .object = &entry_object},
};

static const struct json_doc file_doc = {
    .root = &(const struct json_object){.name = "visibility",
                                        .fields = file_fields,
                                        .nfields = sizeof(file_fields) /
                                                   sizeof(file_fields[0])},
    .max_depth = 0, /* our own file: its size is capped, not its depth */
};

struct reading {
  struct visibility_set *s;
  struct visibility_entry cur; /* the element being read */
};

static void clear_entry(struct visibility_entry *e)
{
  free(e->key);
  memset(e, 0, sizeof(*e));
}

static int entry_open(struct json_reader *r, void *parent, void **base)
{
  struct reading *rd = json_ctx(r);

  (void)parent;
  clear_entry(&rd->cur);
  *base = &rd->cur;
  return 0;
}

/* An interval the engine could not have learnt would make it confirm
 * before the writes show: the file is not used. */
static int entry_close(struct json_reader *r, void *base)
{
  struct reading *rd = json_ctx(r);
  const struct visibility_entry *e = base;
  int rc;

  if (e->known && e->hi_ms <= e->lo_ms)
    return json_fail(r, -EBADMSG, "shown_ms", "is not above not_shown_ms");
  if (!e->known && e->hi_ms)
    return json_fail(r, -EBADMSG, "shown_ms", "is set but not known");
  rc = visibility_put(rd->s, e);
  clear_entry(&rd->cur);
  return rc < 0 ? json_fail(r, rc, NULL, "out of memory") : 0;
}

int visibility_read(const char *state_dir, struct visibility_set *s, char *why,
                    size_t why_len)
{
  struct reading rd = {.s = s};
  char path[PATH_MAX];
  char *buf;
  size_t len;
  int rc;

  if (why && why_len)
    why[0] = '\0';
  if (!state_dir || !s)
    return -EINVAL;
  visibility_set_free(s);
  rc = statefile_path(path, sizeof(path), state_dir, VISIBILITY_FILE);
  if (rc < 0)
    return rc;
  rc = statefile_read(path, VISIBILITY_MAX_SIZE, &buf, &len);
  if (rc < 0)
    return rc;
  rc = json_read(&file_doc, buf, len, s, &rd, why, why_len);
  clear_entry(&rd.cur);
  free(buf);
  return rc;
}

static yajl_gen_status gen_entry(yajl_gen g, const struct visibility_entry *e)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &entry_object, e);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

static yajl_gen_status gen_file(yajl_gen g, const struct visibility_set *s)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_u64(g, "version", VISIBILITY_VERSION);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "accounts");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < s->n && gs == yajl_gen_status_ok; i++)
    gs = gen_entry(g, &s->v[i]);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

int visibility_write(const char *state_dir, const struct visibility_set *s)
{
  char path[PATH_MAX];
  const unsigned char *buf;
  size_t len;
  yajl_gen g;
  int rc;

  if (!state_dir || !s)
    return -EINVAL;
  rc = statefile_path(path, sizeof(path), state_dir, VISIBILITY_FILE);
  if (rc < 0)
    return rc;
  g = json_gen_new(true, NULL, NULL);
  if (!g)
    return -ENOMEM;
  if (gen_file(g, s) != yajl_gen_status_ok ||
      yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
    rc = -ENOMEM; /* every other yajl_gen error is a bug of ours */
  else
    rc = statefile_write_atomic(path, buf, len, 0644);
  yajl_gen_free(g);
  return rc;
}
