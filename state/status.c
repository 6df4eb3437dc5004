/* SPDX-License-Identifier: MIT */
/*
 * status: status.json through util/json.h (one field table per object,
 * used to write the file and to read it: the streaming reader puts the
 * values straight into the struct, so a 100,000-binding file needs no JSON
 * tree) and the text shown by `certbind status`.
 */
#include "status.h"

#include "json.h"
#include "statefile.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATUS_VERSION 1

static const char *const state_names[] = {
    [STATUS_CONVERGED] = "converged",
    [STATUS_PENDING] = "pending",
    [STATUS_FAILED] = "failed",
};

const char *status_state_name(enum status_state s)
{
  if ((unsigned)s > STATUS_FAILED)
    return "unknown";
  return state_names[s];
}

int status_state_parse(const char *s, enum status_state *out)
{
  for (unsigned i = 0; i <= STATUS_FAILED; i++) {
    if (s && strcmp(s, state_names[i]) == 0) {
      *out = (enum status_state)i;
      return 0;
    }
  }
  return -EINVAL;
}

/* ---- field tables: one row per JSON key of a pass or a binding, used
 * to write the file and to read it (util/json.h) ---- */

/* A state is written and read by its name. */
static int set_state(struct json_reader *r, const struct json_field *f,
                     void *dst, const struct json_value *v)
{
  char buf[16];

  if (v->len >= sizeof(buf))
    return json_fail(r, -EBADMSG, f->name, "is not a state");
  memcpy(buf, v->s, v->len);
  buf[v->len] = '\0';
  if (status_state_parse(buf, dst) < 0)
    return json_fail(r, -EBADMSG, f->name, "is not a state");
  return 0;
}

static yajl_gen_status put_state(yajl_gen g, const struct json_field *f,
                                 const void *src)
{
  (void)f;
  return json_gen_text(g, status_state_name(*(const enum status_state *)src));
}

/* Every key at most once: a key given twice (e.g. a string, then null over
 * it) is not a file status_write made, and guessing which one is meant is
 * worse than refusing it. Strings may be null (absent); a string from the
 * API that is not UTF-8 is written with '?' for its odd bytes. */
#define ONCE JSON_ONCE
#define REQ (JSON_ONCE | JSON_REQUIRED)
#define STR (JSON_ONCE | JSON_NULLABLE | JSON_LOSSY)
#define PF(n, k, fl)                                                           \
  {                                                                            \
    .name = #n, .kind = k, .offset = offsetof(struct status_pass, n),          \
    .flags = fl                                                                \
  }
static const struct json_field pass_fields[] = {
    PF(started_ms, JSON_K_I64, REQ),
    PF(ended_ms, JSON_K_I64, REQ),
    PF(outcome, JSON_K_STR, STR | JSON_REQUIRED),
    PF(command, JSON_K_STR, STR),
    PF(mode, JSON_K_STR, STR),
    PF(config_sha256, JSON_K_STR, STR),
    PF(attached, JSON_K_U64, ONCE),
    PF(changed, JSON_K_U64, ONCE),
    PF(detached, JSON_K_U64, ONCE),
    PF(unchanged, JSON_K_U64, ONCE),
    PF(failed, JSON_K_U64, ONCE),
    PF(pending, JSON_K_U64, ONCE),
    PF(requests, JSON_K_U64, ONCE),
    PF(retries, JSON_K_U64, ONCE),
    PF(uncertain, JSON_K_U64, ONCE),
    PF(message, JSON_K_STR, STR),
};
#undef PF

#define SF(n, k, fl)                                                           \
  {                                                                            \
    .name = #n, .kind = k, .offset = offsetof(struct status_served, n),        \
    .flags = fl                                                                \
  }
static const struct json_field served_fields[] = {
    SF(address, JSON_K_STR, STR | JSON_REQUIRED),
    SF(result, JSON_K_STR, STR | JSON_REQUIRED),
    SF(sha256, JSON_K_STR, STR),
    SF(serial, JSON_K_STR, STR),
    SF(subject, JSON_K_STR, STR),
    SF(not_after, JSON_K_I64, ONCE),
    SF(error, JSON_K_STR, STR),
    SF(checked, JSON_K_I64, ONCE),
};
#undef SF

/* A served element opens: one more struct at the end of the binding's. */
static int served_open(struct json_reader *r, void *parent, void **base);

static const struct json_object served_object = {
    .name = "served element",
    .fields = served_fields,
    .nfields = sizeof(served_fields) / sizeof(served_fields[0]),
    .open = served_open,
};

#define BF(n, k, fl)                                                           \
  {                                                                            \
    .name = #n, .kind = k, .offset = offsetof(struct status_binding, n),       \
    .flags = fl                                                                \
  }
static const struct json_field binding_fields[] = {
    BF(account, JSON_K_STR, STR | JSON_REQUIRED),
    BF(certificate, JSON_K_STR, STR | JSON_REQUIRED),
    BF(certificate_id, JSON_K_STR, STR | JSON_REQUIRED),
    BF(gateway, JSON_K_STR, STR | JSON_REQUIRED),
    BF(instance_id, JSON_K_STR, STR | JSON_REQUIRED),
    BF(domain, JSON_K_STR, STR | JSON_REQUIRED),
    BF(verify_client, JSON_K_BOOL, ONCE),
    {.name = "state",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct status_binding, state),
     .flags = REQ,
     .accept = JSON_STRING,
     .set = set_state,
     .put = put_state},
    BF(error_code, JSON_K_STR, STR),
    BF(error_msg, JSON_K_STR, STR),
    BF(request_id, JSON_K_STR, STR),
    BF(attempts, JSON_K_U32, ONCE),
    BF(next_retry, JSON_K_I64, ONCE),
    {.name = "served",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &served_object},
};
#undef BF

#define CF(n, k, fl)                                                           \
  {                                                                            \
    .name = #n, .kind = k, .offset = offsetof(struct status_cert, n),          \
    .flags = fl                                                                \
  }
static const struct json_field cert_fields[] = {
    CF(certificate, JSON_K_STR, STR | JSON_REQUIRED),
    CF(certificate_id, JSON_K_STR, STR),
    CF(account, JSON_K_STR, STR),
    CF(not_after, JSON_K_I64, ONCE),
    CF(expiry_warning_days, JSON_K_U32, ONCE),
};
#undef CF

#define LF(n)                                                                  \
  {                                                                            \
    .name = #n, .kind = JSON_K_STR, .offset = offsetof(struct status_left, n), \
    .flags = STR | JSON_REQUIRED                                               \
  }
static const struct json_field left_fields[] = {
    LF(object_id),
    LF(name),
    LF(certificate),
    LF(sha256),
};
#undef LF
#undef ONCE
#undef REQ
#undef STR

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* A binding element opens: one more struct at the end of st->bindings. */
static int binding_open(struct json_reader *r, void *parent, void **base);

/* A certificates element opens: one more struct at the end of st->certs. */
static int cert_open(struct json_reader *r, void *parent, void **base);

/* A left_objects element opens: one more struct at the end of st->left. */
static int left_open(struct json_reader *r, void *parent, void **base);

static const struct json_object pass_object = {
    .name = "pass",
    .fields = pass_fields,
    .nfields = NFIELDS(pass_fields),
};

static const struct json_object binding_object = {
    .name = "bindings element",
    .fields = binding_fields,
    .nfields = NFIELDS(binding_fields),
    .open = binding_open,
};

static const struct json_object cert_object = {
    .name = "certificates element",
    .fields = cert_fields,
    .nfields = NFIELDS(cert_fields),
    .open = cert_open,
};

static const struct json_object left_object = {
    .name = "left_objects element",
    .fields = left_fields,
    .nfields = NFIELDS(left_fields),
    .open = left_open,
};

/* "version" is read first by a later certbind too: another number is
 * -EPROTONOSUPPORT. Unknown top-level keys are skipped. */
static const struct json_field status_fields[] = {
    {.name = "version",
     .kind = JSON_K_CUSTOM,
     .flags = JSON_REQUIRED,
     .max = STATUS_VERSION,
     .accept = JSON_INT,
     .set = json_set_version},
    {.name = "pass",
     .kind = JSON_K_OBJECT,
     .offset = offsetof(struct status, pass),
     .flags = JSON_REQUIRED | JSON_ONCE,
     .object = &pass_object},
    {.name = "bindings",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &binding_object},
    {.name = "certificates",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &cert_object},
    {.name = "left_objects",
     .kind = JSON_K_ARRAY,
     .flags = JSON_ONCE,
     .object = &left_object},
};

static const struct json_doc status_doc = {
    .root = &(const struct json_object){.name = "status",
                                        .fields = status_fields,
                                        .nfields = NFIELDS(status_fields)},
    .max_depth = 0, /* our own file: its size is capped, not its depth */
};

/* ---- writing ---- */

/* "2026-11-27T17:33:48.123Z", for people reading the file. */
static void format_rfc3339(int64_t ms, char *buf, size_t size)
{
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  char date[32];

  if (!gmtime_r(&secs, &tm) ||
      strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    snprintf(buf, size, "?");
    return;
  }
  snprintf(buf, size, "%s.%03dZ", date, (int)(ms % 1000));
}

static yajl_gen_status gen_pass(yajl_gen g, const struct status_pass *p)
{
  char when[48];
  yajl_gen_status gs = json_gen_str(g, "pass");

  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_open(g);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &pass_object, p);
  format_rfc3339(p->started_ms, when, sizeof(when));
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "started");
  if (gs == yajl_gen_status_ok)
    gs = json_gen_text(g, when);
  format_rfc3339(p->ended_ms, when, sizeof(when));
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "ended");
  if (gs == yajl_gen_status_ok)
    gs = p->ended_ms ? json_gen_text(g, when) : yajl_gen_null(g);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* "KEY": [{...}, ...]: the fields of o for each of n structs of size
 * stride from base. */
static yajl_gen_status gen_objects(yajl_gen g, const char *key,
                                   const struct json_object *o,
                                   const void *base, size_t n, size_t stride)
{
  yajl_gen_status gs = json_gen_str(g, key);

  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < n && gs == yajl_gen_status_ok; i++) {
    gs = yajl_gen_map_open(g);
    if (gs == yajl_gen_status_ok)
      gs = json_gen_fields(g, o, (const char *)base + i * stride);
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_close(g);
  }
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  return gs;
}

/* "served": [...], only when the binding has been verified. */
static yajl_gen_status gen_served(yajl_gen g, const struct status_binding *b)
{
  if (b->nserved == 0)
    return yajl_gen_status_ok;
  return gen_objects(g, "served", &served_object, b->served, b->nserved,
                     sizeof(*b->served));
}

/* Whole days from now to not_after, rounded down. */
static long days_until(int64_t not_after, int64_t now)
{
  int64_t d = not_after - now;

  return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

/* One certificate: its fields, then for people and scripts reading the
 * file the end as RFC 3339 and the days left at the end of the pass. */
static yajl_gen_status gen_cert(yajl_gen g, const struct status_cert *c,
                                int64_t ended_ms)
{
  char when[48];
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &cert_object, c);
  format_rfc3339(c->not_after * 1000, when, sizeof(when));
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "not_after_at");
  if (gs == yajl_gen_status_ok)
    gs = c->not_after ? json_gen_text(g, when) : yajl_gen_null(g);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "days_left");
  if (gs == yajl_gen_status_ok)
    gs = c->not_after && ended_ms
             ? yajl_gen_integer(g, days_until(c->not_after, ended_ms / 1000))
             : yajl_gen_null(g);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

static yajl_gen_status gen_left(yajl_gen g, const struct status *st)
{
  return gen_objects(g, "left_objects", &left_object, st->left, st->nleft,
                     sizeof(*st->left));
}

static yajl_gen_status gen_status(yajl_gen g, const struct status *st)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_int(g, "version", STATUS_VERSION);
  if (gs == yajl_gen_status_ok)
    gs = gen_pass(g, &st->pass);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "bindings");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < st->nbindings && gs == yajl_gen_status_ok; i++) {
    gs = yajl_gen_map_open(g);
    if (gs == yajl_gen_status_ok)
      gs = json_gen_fields(g, &binding_object, &st->bindings[i]);
    if (gs == yajl_gen_status_ok)
      gs = gen_served(g, &st->bindings[i]);
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_close(g);
  }
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "certificates");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < st->ncerts && gs == yajl_gen_status_ok; i++)
    gs = gen_cert(g, &st->certs[i], st->pass.ended_ms);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  if (gs == yajl_gen_status_ok)
    gs = gen_left(g, st);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

/* Print st into b (in memory, or streamed by statefile_write_atomic_gen):
 * never into yajl's doubling buffer and then copied, which made the status
 * the largest allocation of a pass of 10^5 bindings. */
static int print_status(struct statefile_buf *b, void *arg)
{
  const struct status *st = arg;
  yajl_gen g = json_gen_new(true, statefile_buf_print, b);
  int rc = 0;

  if (!g)
    return -ENOMEM;
  if (gen_status(g, st) != yajl_gen_status_ok)
    rc = -ENOMEM; /* every other yajl_gen error is a bug of ours */
  else if (b->err)
    rc = b->err;
  yajl_gen_free(g);
  return rc;
}

int status_to_json(const struct status *st, char **out, size_t *len)
{
  if (!st || (st->nbindings && !st->bindings))
    return -EINVAL;
  return statefile_gen_string(print_status, (void *)st, out, len);
}

int status_write(const char *state_dir, const struct status *st)
{
  char path[PATH_MAX];
  int rc;

  if (!state_dir)
    return -EINVAL;
  if (!st || (st->nbindings && !st->bindings))
    return -EINVAL;
  rc = statefile_path(path, sizeof(path), state_dir, STATUS_FILE);
  if (rc < 0)
    return rc;
  return statefile_write_atomic_gen(path, 0600, print_status, (void *)st);
}

/* ---- reading: a streaming parse straight into the struct ---- */

struct reading {
  struct status *st;
  size_t cap;      /* allocated bindings */
  size_t cert_cap; /* allocated certificates */
};

static int binding_open(struct json_reader *r, void *parent, void **base)
{
  struct reading *rd = json_ctx(r);
  struct status *st = parent;

  if (st->nbindings == rd->cap) {
    size_t cap = rd->cap ? rd->cap * 2 : 64;
    struct status_binding *nb = realloc(st->bindings, cap * sizeof(*nb));

    if (!nb)
      return json_fail(r, -ENOMEM, NULL, "out of memory");
    st->bindings = nb;
    rd->cap = cap;
  }
  *base = memset(&st->bindings[st->nbindings++], 0, sizeof(*st->bindings));
  return 0;
}

/* A binding has a few addresses: grown one at a time. */
static int served_open(struct json_reader *r, void *parent, void **base)
{
  struct status_binding *b = parent;
  struct status_served *n =
      realloc(b->served, (b->nserved + 1) * sizeof(*b->served));

  if (!n)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  b->served = n;
  *base = memset(&b->served[b->nserved++], 0, sizeof(*b->served));
  return 0;
}

static int cert_open(struct json_reader *r, void *parent, void **base)
{
  struct reading *rd = json_ctx(r);
  struct status *st = parent;

  if (st->ncerts == rd->cert_cap) {
    size_t cap = rd->cert_cap ? rd->cert_cap * 2 : 8;
    struct status_cert *nc = realloc(st->certs, cap * sizeof(*nc));

    if (!nc)
      return json_fail(r, -ENOMEM, NULL, "out of memory");
    st->certs = nc;
    rd->cert_cap = cap;
  }
  *base = memset(&st->certs[st->ncerts++], 0, sizeof(*st->certs));
  return 0;
}

/* A few objects at most: grown one at a time. */
static int left_open(struct json_reader *r, void *parent, void **base)
{
  struct status *st = parent;
  struct status_left *n = realloc(st->left, (st->nleft + 1) * sizeof(*n));

  if (!n)
    return json_fail(r, -ENOMEM, NULL, "out of memory");
  st->left = n;
  *base = memset(&st->left[st->nleft++], 0, sizeof(*st->left));
  return 0;
}

int status_from_json(const char *json, size_t len, struct status *st)
{
  struct reading rd = {.st = st};
  int rc;

  if (!json || !st)
    return -EINVAL;
  memset(st, 0, sizeof(*st));
  rc = json_read(&status_doc, json, len, st, &rd, NULL, 0);
  if (rc < 0)
    status_free(st);
  return rc;
}

int status_read(const char *state_dir, struct status *st)
{
  char path[PATH_MAX];
  char *buf;
  size_t len;
  int rc;

  if (!state_dir || !st)
    return -EINVAL;
  memset(st, 0, sizeof(*st));
  rc = statefile_path(path, sizeof(path), state_dir, STATUS_FILE);
  if (rc < 0)
    return rc;
  rc = statefile_read(path, STATUS_MAX_FILE_SIZE, &buf, &len);
  if (rc < 0)
    return rc;
  rc = status_from_json(buf, len, st);
  free(buf);
  return rc;
}

static void free_strings(const struct json_field *fields, size_t n, void *base)
{
  for (size_t i = 0; i < n; i++) {
    if (fields[i].kind == JSON_K_STR) {
      char **s = (char **)((char *)base + fields[i].offset);

      free(*s);
      *s = NULL;
    }
  }
}

static void free_served(struct status_binding *b)
{
  for (size_t i = 0; i < b->nserved; i++)
    free_strings(served_fields, NFIELDS(served_fields), &b->served[i]);
  free(b->served);
  b->served = NULL;
  b->nserved = 0;
}

void status_free(struct status *st)
{
  if (!st)
    return;
  free_strings(pass_fields, NFIELDS(pass_fields), &st->pass);
  for (size_t i = 0; i < st->nbindings; i++) {
    struct status_binding *b = &st->bindings[i];

    if (b->names_borrowed) {
      free(b->error_code);
      free(b->error_msg);
      free(b->request_id);
    } else {
      free_strings(binding_fields, NFIELDS(binding_fields), b);
    }
    free_served(b);
  }
  free(st->bindings);
  for (size_t i = 0; i < st->ncerts; i++)
    free_strings(cert_fields, NFIELDS(cert_fields), &st->certs[i]);
  free(st->certs);
  for (size_t i = 0; i < st->nleft; i++)
    free_strings(left_fields, NFIELDS(left_fields), &st->left[i]);
  free(st->left);
  memset(st, 0, sizeof(*st));
}

/* ---- what an earlier pass knew ---- */

void status_count(const struct status *st, uint64_t n[STATUS_FAILED + 1])
{
  for (unsigned s = 0; s <= STATUS_FAILED; s++)
    n[s] = 0;
  for (size_t i = 0; st && i < st->nbindings; i++) {
    if ((unsigned)st->bindings[i].state <= STATUS_FAILED)
      n[st->bindings[i].state]++;
  }
}

static int cmp_triple(const char *cert, const char *iid, const char *domain,
                      const struct status_binding *b)
{
  int c = strcmp(cert, b->certificate_id);

  if (c == 0)
    c = strcmp(iid, b->instance_id);
  return c ? c : strcmp(domain, b->domain);
}

static int cmp_indexed(const void *a, const void *b)
{
  const struct status_binding *x = *(const struct status_binding *const *)a;
  const struct status_binding *y = *(const struct status_binding *const *)b;
  int c = cmp_triple(x->certificate_id, x->instance_id, x->domain, y);

  /* equal triples keep the file's order: the first one is found */
  return c ? c : (x < y ? -1 : x > y);
}

int status_index_build(const struct status *st, struct status_index *ix)
{
  memset(ix, 0, sizeof(*ix));
  if (!st || st->nbindings == 0)
    return 0;
  ix->sorted = malloc(st->nbindings * sizeof(*ix->sorted));
  if (!ix->sorted)
    return -ENOMEM;
  for (size_t i = 0; i < st->nbindings; i++)
    ix->sorted[i] = &st->bindings[i];
  ix->n = st->nbindings;
  qsort(ix->sorted, ix->n, sizeof(*ix->sorted), cmp_indexed);
  return 0;
}

const struct status_binding *status_index_find(const struct status_index *ix,
                                               const char *certificate_id,
                                               const char *instance_id,
                                               const char *domain, size_t *pos)
{
  size_t lo = 0, hi = ix ? ix->n : 0;

  if (!certificate_id || !instance_id || !domain)
    return NULL;
  while (lo < hi) { /* the first entry not below the triple */
    size_t mid = lo + (hi - lo) / 2;
    if (cmp_triple(certificate_id, instance_id, domain, ix->sorted[mid]) > 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == (ix ? ix->n : 0) ||
      cmp_triple(certificate_id, instance_id, domain, ix->sorted[lo]) != 0)
    return NULL;
  if (pos)
    *pos = lo;
  return ix->sorted[lo];
}

void status_index_free(struct status_index *ix)
{
  free(ix->sorted);
  memset(ix, 0, sizeof(*ix));
}

/* dst (a copy of one served entry's scalars) gets its own strings: 0, or
 * -ENOMEM with none left allocated. */
static int dup_strings(const struct json_field *fields, size_t n, void *dst)
{
  bool ok = true;

  for (size_t i = 0; i < n; i++) {
    char **s = (char **)((char *)dst + fields[i].offset);

    if (fields[i].kind != JSON_K_STR || !*s)
      continue;
    *s = ok ? strdup(*s) : NULL;
    ok = ok && *s;
  }
  if (!ok)
    free_strings(fields, n, dst);
  return ok ? 0 : -ENOMEM;
}

void status_binding_clear_served(struct status_binding *b)
{
  free_served(b);
}

int status_binding_add_served(struct status_binding *b,
                              const struct status_served *sv)
{
  struct status_served *n =
      realloc(b->served, (b->nserved + 1) * sizeof(*b->served));

  if (!n)
    return -ENOMEM;
  b->served = n;
  n[b->nserved] = *sv;
  if (dup_strings(served_fields, NFIELDS(served_fields), &n[b->nserved]) < 0)
    return -ENOMEM;
  b->nserved++;
  return 0;
}

int status_binding_copy(struct status_binding *dst,
                        const struct status_binding *src)
{
  *dst = *src;
  dst->names_borrowed = false;
  dst->served = NULL;
  dst->nserved = 0;
  if (dup_strings(binding_fields, NFIELDS(binding_fields), dst) < 0) {
    memset(dst, 0, sizeof(*dst));
    return -ENOMEM;
  }
  for (size_t i = 0; i < src->nserved; i++) {
    if (status_binding_add_served(dst, &src->served[i]) < 0) {
      free_strings(binding_fields, NFIELDS(binding_fields), dst);
      free_served(dst);
      memset(dst, 0, sizeof(*dst));
      return -ENOMEM;
    }
  }
  return 0;
}

/* ---- printing ---- */

#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"
#define C_BOLD "\033[1m"
#define C_RESET "\033[0m"

struct printer {
  FILE *out;
  bool color;
};

static const char *paint(const struct printer *pr, const char *c)
{
  return pr->color ? c : "";
}

/* Text from the API goes to a terminal: control bytes (escape sequences)
 * are shown as '?'. */
static void put_safe(FILE *out, const char *s)
{
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;

    fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
  }
}

static void format_local(int64_t secs, char *buf, size_t size)
{
  time_t t = (time_t)secs;
  struct tm tm;

  if (!localtime_r(&t, &tm) ||
      strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
    snprintf(buf, size, "@%" PRId64, secs);
}

static void format_duration(int64_t ms, char *buf, size_t size)
{
  if (ms < 0)
    ms = 0;
  if (ms < 60000)
    snprintf(buf, size, "%.1f s", (double)ms / 1000.0);
  else if (ms < 3600000)
    snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", ms / 60000,
             ms / 1000 % 60);
  else
    snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", ms / 3600000,
             ms / 60000 % 60);
}

static const char *outcome_color(const char *outcome)
{
  if (!outcome)
    return C_YELLOW;
  if (strcmp(outcome, "converged") == 0)
    return C_GREEN;
  if (strcmp(outcome, "partial") == 0 || strcmp(outcome, "interrupted") == 0)
    return C_YELLOW;
  return C_RED;
}

static void print_summary(const struct printer *pr, const struct status *st)
{
  const struct status_pass *p = &st->pass;
  char when[64], took[32];

  format_local(p->started_ms / 1000, when, sizeof(when));
  if (p->ended_ms == 0) {
    fprintf(pr->out, "Pass in progress: ");
    put_safe(pr->out, p->command ? p->command : "pass");
    fprintf(pr->out, " started %s\n", when);
  } else {
    format_duration(p->ended_ms - p->started_ms, took, sizeof(took));
    fprintf(pr->out, "Last pass: ");
    put_safe(pr->out, p->command ? p->command : "pass");
    fprintf(pr->out, " (");
    put_safe(pr->out, p->mode ? p->mode : "?");
    fprintf(pr->out, ") at %s, took %s: %s%s", when, took, paint(pr, C_BOLD),
            paint(pr, outcome_color(p->outcome)));
    put_safe(pr->out, p->outcome ? p->outcome : "unknown");
    fprintf(pr->out, "%s\n", paint(pr, C_RESET));
  }
  fprintf(pr->out,
          "  %" PRIu64 " attached, %" PRIu64 " changed, %" PRIu64
          " detached, %" PRIu64 " unchanged, %" PRIu64 " failed, %" PRIu64
          " pending; %" PRIu64 " requests, %" PRIu64 " retries\n",
          p->attached, p->changed, p->detached, p->unchanged, p->failed,
          p->pending, p->requests, p->retries);
  if (p->uncertain)
    fprintf(pr->out,
            "  %" PRIu64 " uncertain: live bindings an interrupted pass may "
            "have attached; never detached (certbind plan lists them, "
            "certbind adopt owns those the file wants)\n",
            p->uncertain);
  if (p->message && p->message[0]) {
    fprintf(pr->out, "  reason: ");
    put_safe(pr->out, p->message);
    fputc('\n', pr->out);
  }
}

/* "certificate star-2026 (a27b…ac67, account sg-prod): 43 days left, until
 * 2026-03-01", highlighted within its warning days; nothing for an unknown
 * end. Counted from now: the file may be days old. */
static void print_certs(const struct printer *pr, const struct status *st,
                        int64_t now)
{
  for (size_t i = 0; i < st->ncerts; i++) {
    const struct status_cert *c = &st->certs[i];
    long days;
    char date[48];
    const char *col;

    if (c->not_after <= 0)
      continue;
    days = days_until(c->not_after, now);
    format_rfc3339(c->not_after * 1000, date, sizeof(date));
    date[10] = '\0'; /* the day is enough here */
    col = c->not_after <= now                    ? C_RED
          : days <= (long)c->expiry_warning_days ? C_YELLOW
                                                 : "";
    fprintf(pr->out, "  certificate ");
    put_safe(pr->out, c->certificate);
    if (c->certificate_id) {
      fprintf(pr->out, " (");
      put_safe(pr->out, c->certificate_id);
      fputc(')', pr->out);
    }
    fprintf(pr->out, ": %s", paint(pr, col));
    if (c->not_after <= now)
      fprintf(pr->out, "EXPIRED on %s", date);
    else if (days <= (long)c->expiry_warning_days)
      fprintf(pr->out, "expires in %ld day%s, on %s", days,
              days == 1 ? "" : "s", date);
    else
      fprintf(pr->out, "%ld days left, until %s", days, date);
    fprintf(pr->out, "%s\n", paint(pr, col[0] ? C_RESET : ""));
  }
}

/* One line: the objects certbind created whose certificates left the
 * file. Never deleted by certbind; the operator decides. */
static void print_left(const struct printer *pr, const struct status *st)
{
  bool one = st->nleft == 1;

  if (st->nleft == 0)
    return;
  fprintf(pr->out,
          "  %s%zu certificate object%s certbind created %s no "
          "longer in the file%s: ",
          paint(pr, C_YELLOW), st->nleft, one ? "" : "s", one ? "is" : "are",
          paint(pr, C_RESET));
  for (size_t i = 0; i < st->nleft; i++) {
    const struct status_left *l = &st->left[i];
    if (i)
      fprintf(pr->out, ", ");
    put_safe(pr->out, l->name && l->name[0] ? l->name : l->object_id);
  }
  fprintf(pr->out, " (delete %s at APIG, or put %s back in the file)\n",
          one ? "it" : "them", one ? "its certificate" : "their certificates");
}

static void print_states(const struct printer *pr, const struct status *st)
{
  uint64_t n[STATUS_FAILED + 1];

  status_count(st, n);
  fprintf(pr->out,
          "  bindings: %" PRIu64 " converged, %" PRIu64 " pending, %" PRIu64
          " failed (of %zu)\n",
          n[STATUS_CONVERGED], n[STATUS_PENDING], n[STATUS_FAILED],
          st->nbindings);
}

/* "bad.example.com on sg-edge-1 (certificate star-example-2026)" */
static void print_where(FILE *out, const struct status_binding *b)
{
  put_safe(out, b->domain);
  fprintf(out, " on ");
  put_safe(out, b->gateway);
  fprintf(out, " (certificate ");
  put_safe(out, b->certificate);
  fprintf(out, ", account ");
  put_safe(out, b->account);
  fprintf(out, ")");
}

static void print_failed(const struct printer *pr,
                         const struct status_binding *b)
{
  fprintf(pr->out, "  %sfailed%s   ", paint(pr, C_RED), paint(pr, C_RESET));
  print_where(pr->out, b);
  fprintf(pr->out, ": ");
  put_safe(pr->out, b->error_code ? b->error_code : "error");
  if (b->error_msg) {
    fputc(' ', pr->out);
    put_safe(pr->out, b->error_msg);
  }
  if (b->request_id) {
    fprintf(pr->out, " (request ");
    put_safe(pr->out, b->request_id);
    fputc(')', pr->out);
  }
  fprintf(pr->out, ", %" PRIu32 " attempt%s\n", b->attempts,
          b->attempts == 1 ? "" : "s");
}

static void print_pending(const struct printer *pr,
                          const struct status_binding *b)
{
  char when[64];

  fprintf(pr->out, "  %spending%s  ", paint(pr, C_YELLOW), paint(pr, C_RESET));
  print_where(pr->out, b);
  if (b->next_retry > 0) {
    format_local(b->next_retry, when, sizeof(when));
    fprintf(pr->out, ": next retry %s", when);
  } else {
    fprintf(pr->out, ": waiting");
  }
  fprintf(pr->out, " (%" PRIu32 " attempt%s so far", b->attempts,
          b->attempts == 1 ? "" : "s");
  if (b->error_code) {
    fprintf(pr->out, ", last ");
    put_safe(pr->out, b->error_code);
  }
  fprintf(pr->out, ")\n");
}

static int print_json(const struct status *st, FILE *out)
{
  char *json;
  size_t len;
  int rc = status_to_json(st, &json, &len);

  if (rc < 0)
    return rc;
  if (fwrite(json, 1, len, out) != len || fputc('\n', out) == EOF)
    rc = -EIO;
  free(json);
  return rc;
}

/* One line per binding of that state, the first STATUS_PRINT_PER_STATE
 * unless all, then how many more there are. */
static void print_state_list(const struct printer *pr, const struct status *st,
                             enum status_state state, bool all)
{
  size_t shown = 0, more = 0;

  for (size_t i = 0; i < st->nbindings; i++) {
    const struct status_binding *b = &st->bindings[i];

    if (b->state != state)
      continue;
    if (!all && shown == STATUS_PRINT_PER_STATE) {
      more++;
      continue;
    }
    shown++;
    if (state == STATUS_FAILED)
      print_failed(pr, b);
    else
      print_pending(pr, b);
  }
  if (more)
    fprintf(pr->out, "  \xe2\x80\xa6 and %zu more (--all)\n", more);
}

int status_print(const struct status *st, FILE *out,
                 const struct status_print_opts *opts)
{
  struct printer pr = {.out = out, .color = opts && opts->color};
  int rc;

  if (!st || !out || !opts)
    return -EINVAL;
  if (opts->json) {
    rc = print_json(st, out);
    if (rc == 0 && fflush(out) != 0)
      rc = -EIO;
    return rc;
  }
  print_summary(&pr, st);
  print_certs(&pr, st, (int64_t)time(NULL));
  print_left(&pr, st);
  print_states(&pr, st);
  print_state_list(&pr, st, STATUS_FAILED, opts->all);
  print_state_list(&pr, st, STATUS_PENDING, opts->all);
  return ferror(out) || fflush(out) != 0 ? -EIO : 0;
}
