/* SPDX-License-Identifier: MIT */
/*
 * ledger: entries + linear-probing hash index (backward-shift deletion, so
 * no tombstones pile up), ledger.json through util/json.h (one entry table
 * for writing and reading).
 */
#include "ledger.h"

#include "json.h"
#include "statefile.h"

#include <errno.h>
#include <ctype.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LEDGER_VERSION 1

/* ---- the index ---- */

static uint64_t fnv1a(uint64_t h, const char *s, bool fold)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;

    if (fold && c >= 'A' && c <= 'Z')
      c = (unsigned char)(c - 'A' + 'a');
    h = (h ^ c) * 0x100000001b3ull;
  }
  return (h ^ 0xff) * 0x100000001b3ull; /* field separator */
}

static uint64_t key_hash(const char *cert, const char *inst, const char *dom)
{
  uint64_t h = 0xcbf29ce484222325ull;

  h = fnv1a(h, cert, false);
  h = fnv1a(h, inst, false);
  return fnv1a(h, dom, true);
}

static bool key_equal(const struct ledger_entry *e, const char *cert,
                      const char *inst, const char *dom)
{
  return strcmp(e->certificate_id, cert) == 0 &&
         strcmp(e->instance_id, inst) == 0 && strcasecmp(e->domain, dom) == 0;
}

/* The slot holding the key, or the empty slot where it would go. */
static size_t probe(const struct ledger *l, uint64_t h, const char *cert,
                    const char *inst, const char *dom)
{
  size_t mask = l->nslots - 1, s = (size_t)h & mask;

  while (l->slots[s] != 0) {
    size_t i = l->slots[s] - 1;

    if (l->hashes[i] == h && key_equal(&l->entries[i], cert, inst, dom))
      return s;
    s = (s + 1) & mask;
  }
  return s;
}

/* The slot that points at entry i. */
static size_t slot_of(const struct ledger *l, size_t i)
{
  size_t mask = l->nslots - 1, s = (size_t)l->hashes[i] & mask;

  while (l->slots[s] != i + 1)
    s = (s + 1) & mask;
  return s;
}

static int rehash(struct ledger *l, size_t nslots)
{
  uint32_t *slots = calloc(nslots, sizeof(*slots));

  if (!slots)
    return -ENOMEM;
  free(l->slots);
  l->slots = slots;
  l->nslots = nslots;
  for (size_t i = 0; i < l->count; i++) {
    size_t s = (size_t)l->hashes[i] & (nslots - 1);

    while (slots[s] != 0)
      s = (s + 1) & (nslots - 1);
    slots[s] = (uint32_t)(i + 1);
  }
  return 0;
}

/* The entries' arrays at cap entries (cap >= count). */
static int resize_entries(struct ledger *l, size_t cap)
{
  struct ledger_entry *e = realloc(l->entries, cap * sizeof(*e));
  uint64_t *h;

  if (!e)
    return -ENOMEM;
  l->entries = e;
  h = realloc(l->hashes, cap * sizeof(*h));
  if (!h)
    return -ENOMEM;
  l->hashes = h;
  l->cap = cap;
  return 0;
}

int ledger_reserve(struct ledger *l, size_t n)
{
  size_t nslots = l->nslots ? l->nslots : 128;
  int rc = 0;

  if (n >= UINT32_MAX - 1)
    return -ENOMEM;
  if (n > l->cap)
    rc = resize_entries(l, n);
  while (rc == 0 && (n + 1) * 2 > nslots)
    nslots *= 2;
  if (rc == 0 && nslots != l->nslots)
    rc = rehash(l, nslots);
  return rc;
}

/* Room for one more entry, the index at most half full. */
static int reserve(struct ledger *l)
{
  if (l->count >= UINT32_MAX - 1) /* slots hold index + 1 in 32 bits */
    return -ENOMEM;
  if (l->count == l->cap) {
    int rc = resize_entries(l, l->cap ? l->cap * 2 : 64);

    if (rc < 0)
      return rc;
  }
  if ((l->count + 1) * 2 > l->nslots)
    return rehash(l, l->nslots ? l->nslots * 2 : 128);
  return 0;
}

static bool valid_key(const char *cert, const char *inst, const char *dom)
{
  return cert && inst && dom && cert[0] && inst[0] && dom[0];
}

/* ---- the shared IDs (struct ledger.names) ---- */

struct ledger_name {
  uint64_t hash;
  size_t refs; /* entries using it (twice when it is both IDs of one) */
  char text[];
};

static struct ledger_name *name_of(const char *text)
{
  return (struct ledger_name *)(text - offsetof(struct ledger_name, text));
}

/* The slot holding s, or the empty slot where it would go. */
static size_t name_probe(const struct ledger *l, uint64_t h, const char *s)
{
  size_t mask = l->names_cap - 1, i = (size_t)h & mask;

  while (l->names[i] &&
         !(l->names[i]->hash == h && strcmp(l->names[i]->text, s) == 0))
    i = (i + 1) & mask;
  return i;
}

/* Room for one more name, the table at most half full. */
static int names_reserve(struct ledger *l)
{
  size_t cap = l->names_cap ? l->names_cap * 2 : 64;
  struct ledger_name **t;

  if ((l->nnames + 1) * 2 <= l->names_cap)
    return 0;
  t = calloc(cap, sizeof(*t));
  if (!t)
    return -ENOMEM;
  for (size_t i = 0; i < l->names_cap; i++) {
    size_t j;

    if (!l->names[i])
      continue;
    j = (size_t)l->names[i]->hash & (cap - 1);
    while (t[j])
      j = (j + 1) & (cap - 1);
    t[j] = l->names[i];
  }
  free(l->names);
  l->names = t;
  l->names_cap = cap;
  return 0;
}

/* s, shared: its text with one more user, or NULL (out of memory). */
static char *name_ref(struct ledger *l, const char *s)
{
  uint64_t h = fnv1a(0xcbf29ce484222325ull, s, false);
  size_t i, len;

  if (names_reserve(l) < 0)
    return NULL;
  i = name_probe(l, h, s);
  if (!l->names[i]) {
    len = strlen(s) + 1;
    l->names[i] = malloc(sizeof(struct ledger_name) + len);
    if (!l->names[i])
      return NULL;
    l->names[i]->hash = h;
    l->names[i]->refs = 0;
    memcpy(l->names[i]->text, s, len);
    l->nnames++;
  }
  l->names[i]->refs++;
  return l->names[i]->text;
}

/* One user less; the last one frees it (backward-shift deletion). */
static void name_unref(struct ledger *l, const char *text)
{
  struct ledger_name *n = name_of(text);
  size_t mask = l->names_cap - 1, i, j;

  if (--n->refs > 0)
    return;
  i = j = name_probe(l, n->hash, n->text);
  for (;;) {
    size_t k;

    j = (j + 1) & mask;
    if (!l->names[j])
      break;
    k = (size_t)l->names[j]->hash & mask;
    if ((i < j) ? (k <= i || k > j) : (k <= i && k > j)) {
      l->names[i] = l->names[j];
      i = j;
    }
  }
  l->names[i] = NULL;
  l->nnames--;
  free(n);
}

/* The entry's IDs shared, its domain its own (lowercased). */
static int entry_set(struct ledger *l, struct ledger_entry *e, const char *cert,
                     const char *inst, const char *dom)
{
  size_t ld = strlen(dom) + 1;
  char *d = malloc(ld), *c = NULL, *i = NULL;

  if (d)
    c = name_ref(l, cert);
  if (c)
    i = name_ref(l, inst);
  if (!i) {
    if (c)
      name_unref(l, c);
    free(d);
    return -ENOMEM;
  }
  for (size_t k = 0; k < ld; k++) {
    char ch = dom[k];
    d[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
  }
  e->certificate_id = c;
  e->instance_id = i;
  e->domain = d;
  return 0;
}

static void entry_free(struct ledger *l, struct ledger_entry *e)
{
  name_unref(l, e->certificate_id);
  name_unref(l, e->instance_id);
  free(e->domain);
}

/* The entry of the key, created (not an intent, attached_at `when`) when
 * it is not there yet: *created says which. */
static int entry_get(struct ledger *l, const char *cert_id,
                     const char *instance_id, const char *domain, int64_t when,
                     struct ledger_entry **out, bool *created)
{
  struct ledger_entry *e;
  uint64_t h;
  size_t s;
  int rc;

  if (!l || !valid_key(cert_id, instance_id, domain))
    return -EINVAL;
  rc = reserve(l); /* first: a rehash would move the slot found below */
  if (rc < 0)
    return rc;
  h = key_hash(cert_id, instance_id, domain);
  s = probe(l, h, cert_id, instance_id, domain); /* one hash, one probe */
  *created = l->slots[s] == 0;
  if (!*created) {
    *out = &l->entries[l->slots[s] - 1];
    return 0;
  }
  e = &l->entries[l->count];
  if (entry_set(l, e, cert_id, instance_id, domain) < 0)
    return -ENOMEM;
  e->attached_at = when;
  e->intent = false;
  l->hashes[l->count] = h;
  l->slots[s] = (uint32_t)++l->count;
  *out = e;
  return 0;
}

int ledger_add(struct ledger *l, const char *cert_id, const char *instance_id,
               const char *domain, int64_t when)
{
  struct ledger_entry *e;
  bool created;
  int rc = entry_get(l, cert_id, instance_id, domain, when, &e, &created);

  if (rc == 0 && e->intent) { /* the attach it announced was applied */
    e->intent = false;
    e->attached_at = when;
  }
  return rc;
}

int ledger_add_intent(struct ledger *l, const char *cert_id,
                      const char *instance_id, const char *domain, int64_t when,
                      bool *added)
{
  struct ledger_entry *e;
  bool created;
  int rc = entry_get(l, cert_id, instance_id, domain, when, &e, &created);

  if (added)
    *added = false;
  if (rc < 0 || (!created && !e->intent))
    return rc; /* owned stays owned */
  e->intent = true;
  e->attached_at = when;
  if (added)
    *added = true;
  return 0;
}

/* Empty slot s and close the gap (Knuth's algorithm R for linear probing). */
static void unslot(struct ledger *l, size_t s)
{
  size_t mask = l->nslots - 1, j = s;

  for (;;) {
    size_t k;

    j = (j + 1) & mask;
    if (l->slots[j] == 0)
      break;
    k = (size_t)l->hashes[l->slots[j] - 1] & mask;
    /* Move j's entry back unless its home k lies cyclically in (s, j]. */
    if ((s < j) ? (k <= s || k > j) : (k <= s && k > j)) {
      l->slots[s] = l->slots[j];
      s = j;
    }
  }
  l->slots[s] = 0;
}

int ledger_remove(struct ledger *l, const char *cert_id,
                  const char *instance_id, const char *domain)
{
  size_t s, i, last;
  uint64_t h;

  if (!l || !valid_key(cert_id, instance_id, domain) || l->count == 0)
    return -ENOENT;
  h = key_hash(cert_id, instance_id, domain);
  s = probe(l, h, cert_id, instance_id, domain);
  if (l->slots[s] == 0)
    return -ENOENT;
  i = l->slots[s] - 1;
  unslot(l, s);
  entry_free(l, &l->entries[i]);
  last = l->count - 1;
  if (i != last) {
    l->slots[slot_of(l, last)] = (uint32_t)(i + 1);
    l->entries[i] = l->entries[last];
    l->hashes[i] = l->hashes[last];
  }
  l->count--;
  return 0;
}

const struct ledger_entry *ledger_find(const struct ledger *l,
                                       const char *cert_id,
                                       const char *instance_id,
                                       const char *domain)
{
  size_t s;

  if (!l || l->count == 0 || !valid_key(cert_id, instance_id, domain))
    return NULL;
  s = probe(l, key_hash(cert_id, instance_id, domain), cert_id, instance_id,
            domain);
  return l->slots[s] ? &l->entries[l->slots[s] - 1] : NULL;
}

bool ledger_contains(const struct ledger *l, const char *cert_id,
                     const char *instance_id, const char *domain)
{
  return ledger_find(l, cert_id, instance_id, domain) != NULL;
}

bool ledger_owns(const struct ledger *l, const char *cert_id,
                 const char *instance_id, const char *domain)
{
  const struct ledger_entry *e = ledger_find(l, cert_id, instance_id, domain);

  return e && !e->intent;
}

int ledger_remove_intent(struct ledger *l, const char *cert_id,
                         const char *instance_id, const char *domain)
{
  const struct ledger_entry *e = ledger_find(l, cert_id, instance_id, domain);

  if (!e || !e->intent)
    return -ENOENT;
  return ledger_remove(l, cert_id, instance_id, domain);
}

size_t ledger_count(const struct ledger *l)
{
  return l ? l->count : 0;
}

const struct ledger_entry *ledger_at(const struct ledger *l, size_t i)
{
  return l && i < l->count ? &l->entries[i] : NULL;
}

void ledger_free(struct ledger *l)
{
  if (!l)
    return;
  for (size_t i = 0; i < l->count; i++)
    entry_free(l, &l->entries[i]);
  free(l->entries);
  free(l->hashes);
  free(l->slots);
  free(l->certs);
  free(l->names); /* every name went with its last entry */
  memset(l, 0, sizeof(*l));
}

/* ---- certificate objects ---- */

struct ledger_cert *ledger_cert_find(struct ledger *l, const char *sha256)
{
  for (size_t i = 0; l && sha256 && i < l->ncerts; i++) {
    if (strcasecmp(l->certs[i].sha256, sha256) == 0)
      return &l->certs[i];
  }
  return NULL;
}

struct ledger_cert *ledger_cert_find_id(struct ledger *l, const char *object_id)
{
  for (size_t i = 0; l && object_id && i < l->ncerts; i++) {
    if (strcmp(l->certs[i].object_id, object_id) == 0)
      return &l->certs[i];
  }
  return NULL;
}

int ledger_cert_put(struct ledger *l, const struct ledger_cert *c)
{
  struct ledger_cert *old, *grown;

  if (!l || !c || !c->sha256[0] || !c->object_id[0])
    return -EINVAL;
  old = ledger_cert_find(l, c->sha256);
  if (!old)
    old = ledger_cert_find_id(l, c->object_id);
  if (old) {
    *old = *c;
    for (size_t i = 0; old->sha256[i]; i++) /* stored lower-case */
      old->sha256[i] = (char)tolower((unsigned char)old->sha256[i]);
    return 0;
  }
  grown = realloc(l->certs, (l->ncerts + 1) * sizeof(*grown));
  if (!grown)
    return -ENOMEM;
  l->certs = grown;
  l->certs[l->ncerts] = *c;
  for (size_t i = 0; l->certs[l->ncerts].sha256[i]; i++)
    l->certs[l->ncerts].sha256[i] =
        (char)tolower((unsigned char)l->certs[l->ncerts].sha256[i]);
  l->ncerts++;
  return 0;
}

int ledger_cert_remove(struct ledger *l, const char *object_id)
{
  struct ledger_cert *c = ledger_cert_find_id(l, object_id);

  if (!c)
    return -ENOENT;
  *c = l->certs[--l->ncerts];
  return 0;
}

/* ---- the file's tables (util/json.h) ---- */

/* One entry, in "entries" (owned) or "intents". Of a key given twice in an
 * entry the later one counts. */
static const struct json_field entry_fields[] = {
    {.name = "certificate_id",
     .kind = JSON_K_STR,
     .offset = offsetof(struct ledger_entry, certificate_id),
     .flags = JSON_REQUIRED | JSON_NONEMPTY},
    {.name = "instance_id",
     .kind = JSON_K_STR,
     .offset = offsetof(struct ledger_entry, instance_id),
     .flags = JSON_REQUIRED | JSON_NONEMPTY},
    {.name = "domain",
     .kind = JSON_K_STR,
     .offset = offsetof(struct ledger_entry, domain),
     .flags = JSON_REQUIRED | JSON_NONEMPTY},
    {.name = "attached_at",
     .kind = JSON_K_I64,
     .offset = offsetof(struct ledger_entry, attached_at),
     .flags = JSON_REQUIRED},
};

/* A certificate object: its strings are read into the reading's buffers
 * (cert_str) and copied into the fixed fields on close. */
struct cert_reading {
  char *sha256, *object_id, *name, *certificate, *account;
  bool created;
  int64_t bound_at, superseded_at;
};

static const struct json_field cert_fields[] = {
    {.name = "sha256",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_reading, sha256),
     .flags = JSON_REQUIRED | JSON_NONEMPTY,
     .max = 64},
    {.name = "object_id",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_reading, object_id),
     .flags = JSON_REQUIRED | JSON_NONEMPTY,
     .max = 64},
    {.name = "name",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_reading, name),
     .max = 63},
    {.name = "certificate",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_reading, certificate),
     .max = 255},
    {.name = "account",
     .kind = JSON_K_STR,
     .offset = offsetof(struct cert_reading, account),
     .max = LEDGER_ACCOUNT_MAX - 1},
    {.name = "created",
     .kind = JSON_K_BOOL,
     .offset = offsetof(struct cert_reading, created),
     .flags = JSON_REQUIRED},
    {.name = "bound_at",
     .kind = JSON_K_I64,
     .offset = offsetof(struct cert_reading, bound_at)},
    {.name = "superseded_at",
     .kind = JSON_K_I64,
     .offset = offsetof(struct cert_reading, superseded_at)},
};

static int cert_open(struct json_reader *r, void *parent, void **base);
static int cert_close(struct json_reader *r, void *base);

static const struct json_object cert_object = {
    .name = "certificates element",
    .fields = cert_fields,
    .nfields = sizeof(cert_fields) / sizeof(cert_fields[0]),
    .open = cert_open,
    .close = cert_close,
};

static int entry_open(struct json_reader *r, void *parent, void **base);
static int owned_close(struct json_reader *r, void *base);
static int intent_close(struct json_reader *r, void *base);

static const struct json_object owned_object = {
    .name = "entries element",
    .fields = entry_fields,
    .nfields = sizeof(entry_fields) / sizeof(entry_fields[0]),
    .open = entry_open,
    .close = owned_close,
};

static const struct json_object intent_object = {
    .name = "intents element",
    .fields = entry_fields,
    .nfields = sizeof(entry_fields) / sizeof(entry_fields[0]),
    .open = entry_open,
    .close = intent_close,
};

/* "intents" is optional (an older certbind skips it as unknown); the
 * arrays at most once each. */
static const struct json_field ledger_fields[] = {
    {.name = "version",
     .kind = JSON_K_CUSTOM,
     .flags = JSON_REQUIRED,
     .max = LEDGER_VERSION,
     .accept = JSON_INT,
     .set = json_set_version},
    {.name = "entries",
     .kind = JSON_K_ARRAY,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .object = &owned_object},
    {.name = "intents",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &intent_object},
    {.name = "certificates",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &cert_object},
};

static const struct json_doc ledger_doc = {
    .root = &(const struct json_object){.name = "ledger",
                                        .fields = ledger_fields,
                                        .nfields = sizeof(ledger_fields) /
                                                   sizeof(ledger_fields[0])},
    .max_depth = 0, /* our own file: its size is capped, not its depth */
};

/* ---- writing ---- */

static int entry_cmp(const void *a, const void *b)
{
  const struct ledger_entry *x = *(const struct ledger_entry *const *)a;
  const struct ledger_entry *y = *(const struct ledger_entry *const *)b;
  int c = strcmp(x->certificate_id, y->certificate_id);

  if (c == 0)
    c = strcmp(x->instance_id, y->instance_id);
  if (c == 0)
    c = strcmp(x->domain, y->domain);
  return c;
}

static yajl_gen_status gen_entry(yajl_gen g, const struct ledger_entry *e)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &owned_object, e);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* One array under key: the sorted entries whose intent flag is `intent`. */
static yajl_gen_status gen_array(yajl_gen g, const char *key,
                                 const struct ledger_entry *const *sorted,
                                 size_t n, bool intent)
{
  yajl_gen_status gs = json_gen_str(g, key);

  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < n && gs == yajl_gen_status_ok; i++) {
    if (sorted[i]->intent == intent)
      gs = gen_entry(g, sorted[i]);
  }
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  return gs;
}

static int cert_cmp(const void *a, const void *b)
{
  return strcmp(((const struct ledger_cert *)a)->object_id,
                ((const struct ledger_cert *)b)->object_id);
}

static yajl_gen_status gen_cert(yajl_gen g, const struct ledger_cert *c)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_str(g, "sha256", c->sha256);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_str(g, "object_id", c->object_id);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_str(g, "name", c->name);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_str(g, "certificate", c->certificate);
  if (gs == yajl_gen_status_ok && c->account[0]) /* unknown: no key */
    gs = json_gen_key_str(g, "account", c->account);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_bool(g, "created", c->created);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_int(g, "bound_at", c->bound_at);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_int(g, "superseded_at", c->superseded_at);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* "certificates", sorted by object id (a copy: the ledger is const). */
static yajl_gen_status gen_certs(yajl_gen g, const struct ledger *l)
{
  struct ledger_cert *sorted =
      malloc((l->ncerts ? l->ncerts : 1) * sizeof(*sorted));
  yajl_gen_status gs =
      sorted ? json_gen_str(g, "certificates") : yajl_gen_generation_complete;

  if (sorted && l->ncerts)
    memcpy(sorted, l->certs, l->ncerts * sizeof(*sorted));
  if (sorted)
    qsort(sorted, l->ncerts, sizeof(*sorted), cert_cmp);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < l->ncerts && gs == yajl_gen_status_ok; i++)
    gs = gen_cert(g, &sorted[i]);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  free(sorted);
  return gs;
}

static yajl_gen_status gen_ledger(yajl_gen g, const struct ledger *l,
                                  const struct ledger_entry *const *sorted,
                                  size_t n)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_int(g, "version", LEDGER_VERSION);
  if (gs == yajl_gen_status_ok)
    gs = gen_array(g, "entries", sorted, n, false);
  if (gs == yajl_gen_status_ok)
    gs = gen_array(g, "intents", sorted, n, true);
  if (gs == yajl_gen_status_ok)
    gs = gen_certs(g, l);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* Print l into b (in memory, or streamed by statefile_write_atomic_gen). */
static int print_ledger(struct statefile_buf *b, void *arg)
{
  const struct ledger *l = arg;
  const struct ledger_entry **sorted;
  yajl_gen g;
  int rc;

  sorted = malloc((l->count ? l->count : 1) * sizeof(*sorted));
  if (!sorted)
    return -ENOMEM;
  for (size_t i = 0; i < l->count; i++)
    sorted[i] = &l->entries[i];
  qsort(sorted, l->count, sizeof(*sorted), entry_cmp);
  /* Printed straight into b (no copy of yajl's buffer). IDs and domains
   * were validated by the config loader; a byte that is not UTF-8 would
   * still be refused here rather than written. */
  g = json_gen_new(true, statefile_buf_print, b);
  if (!g)
    rc = -ENOMEM;
  else if (gen_ledger(g, l, sorted, l->count) != yajl_gen_status_ok)
    rc = -EINVAL;
  else
    rc = b->err;
  if (g)
    yajl_gen_free(g);
  free(sorted);
  return rc;
}

int ledger_to_json(const struct ledger *l, char **out, size_t *len)
{
  if (!l)
    return -EINVAL;
  return statefile_gen_string(print_ledger, (void *)l, out, len);
}

int ledger_save(const char *state_dir, const struct ledger *l)
{
  char path[PATH_MAX];
  int rc;

  if (!state_dir || !l)
    return -EINVAL;
  rc = statefile_path(path, sizeof(path), state_dir, LEDGER_FILE);
  if (rc < 0)
    return rc;
  return statefile_write_atomic_gen(path, 0600, print_ledger, (void *)l);
}

/* ---- reading ---- */

struct reading {
  struct ledger *l;
  struct ledger_entry cur;  /* the entry being read: three malloc'd strings */
  struct cert_reading cert; /* the certificate object being read */
};

static void clear_cert(struct cert_reading *c)
{
  free(c->sha256);
  free(c->object_id);
  free(c->name);
  free(c->certificate);
  free(c->account);
  memset(c, 0, sizeof(*c));
}

static int cert_open(struct json_reader *r, void *parent, void **base)
{
  struct reading *rd = json_ctx(r);

  (void)parent;
  clear_cert(&rd->cert);
  *base = &rd->cert;
  return 0;
}

static int cert_close(struct json_reader *r, void *base)
{
  struct reading *rd = json_ctx(r);
  struct cert_reading *c = base;
  struct ledger_cert lc = {.created = c->created,
                           .bound_at = c->bound_at,
                           .superseded_at = c->superseded_at};
  int rc;

  snprintf(lc.sha256, sizeof(lc.sha256), "%s", c->sha256);
  snprintf(lc.object_id, sizeof(lc.object_id), "%s", c->object_id);
  snprintf(lc.name, sizeof(lc.name), "%s", c->name ? c->name : "");
  snprintf(lc.certificate, sizeof(lc.certificate), "%s",
           c->certificate ? c->certificate : "");
  snprintf(lc.account, sizeof(lc.account), "%s", c->account ? c->account : "");
  if (ledger_cert_find(rd->l, lc.sha256) ||
      ledger_cert_find_id(rd->l, lc.object_id))
    rc = json_fail(r, -EBADMSG, NULL, "a certificate object is listed twice");
  else
    rc = ledger_cert_put(rd->l, &lc);
  clear_cert(c);
  return rc;
}

static void clear_entry(struct ledger_entry *e)
{
  free(e->certificate_id);
  free(e->instance_id);
  free(e->domain);
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

/* A complete entry goes into the ledger; a key in both arrays is a
 * corrupt file: ownership would be unclear. */
static int entry_close(struct json_reader *r, const struct ledger_entry *e,
                       bool intent)
{
  struct reading *rd = json_ctx(r);
  const struct ledger_entry *dup =
      ledger_find(rd->l, e->certificate_id, e->instance_id, e->domain);
  int rc;

  if (dup && dup->intent != intent)
    rc = json_fail(r, -EBADMSG, NULL, "an entry is both owned and an intent");
  else if (intent)
    rc = ledger_add_intent(rd->l, e->certificate_id, e->instance_id, e->domain,
                           e->attached_at, NULL);
  else
    rc = ledger_add(rd->l, e->certificate_id, e->instance_id, e->domain,
                    e->attached_at);
  clear_entry(&rd->cur);
  return rc;
}

static int owned_close(struct json_reader *r, void *base)
{
  return entry_close(r, base, false);
}

static int intent_close(struct json_reader *r, void *base)
{
  return entry_close(r, base, true);
}

int ledger_from_json(const char *json, size_t len, struct ledger *l)
{
  struct reading rd = {.l = l};
  int rc;

  if (!json || !l)
    return -EINVAL;
  memset(l, 0, sizeof(*l));
  rc = json_read(&ledger_doc, json, len, l, &rd, NULL, 0);
  clear_entry(&rd.cur);
  clear_cert(&rd.cert);
  if (rc < 0)
    ledger_free(l);
  return rc;
}

int ledger_load(const char *state_dir, struct ledger *l)
{
  char path[PATH_MAX];
  char *buf;
  size_t len;
  int rc;

  if (!state_dir || !l)
    return -EINVAL;
  memset(l, 0, sizeof(*l));
  rc = statefile_path(path, sizeof(path), state_dir, LEDGER_FILE);
  if (rc < 0)
    return rc;
  rc = statefile_read(path, LEDGER_MAX_FILE_SIZE, &buf, &len);
  if (rc == -ENOENT)
    return 0; /* nothing owned yet */
  if (rc < 0)
    return rc;
  rc = ledger_from_json(buf, len, l);
  free(buf);
  return rc;
}
