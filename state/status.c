/*
 * status: status.json with yajl (generator; streaming parser into the
 * struct, so a 100,000-binding file needs no JSON tree) and the text shown
 * by `certbind status`.
 */
#include "status.h"

#include "statefile.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

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

/* ---- field tables: one row per JSON key of a pass or a binding ---- */

enum field_type { F_STR, F_I64, F_U64, F_U32, F_BOOL, F_STATE };

struct field {
  const char *name;
  enum field_type type;
  size_t offset;
  bool required;
};

#define PF(n, t, req)                                                          \
  {                                                                            \
#n, t, offsetof(struct status_pass, n), req                                \
  }
static const struct field pass_fields[] = {
    PF(started_ms, F_I64, true), PF(ended_ms, F_I64, true),
    PF(outcome, F_STR, true),    PF(command, F_STR, false),
    PF(mode, F_STR, false),      PF(config_sha256, F_STR, false),
    PF(attached, F_U64, false),  PF(changed, F_U64, false),
    PF(detached, F_U64, false),  PF(unchanged, F_U64, false),
    PF(failed, F_U64, false),    PF(pending, F_U64, false),
    PF(requests, F_U64, false),  PF(retries, F_U64, false),
    PF(uncertain, F_U64, false), PF(message, F_STR, false),
};
#undef PF

#define BF(n, t, req)                                                          \
  {                                                                            \
#n, t, offsetof(struct status_binding, n), req                             \
  }
static const struct field binding_fields[] = {
    BF(account, F_STR, true),         BF(certificate, F_STR, true),
    BF(certificate_id, F_STR, true),  BF(gateway, F_STR, true),
    BF(instance_id, F_STR, true),     BF(domain, F_STR, true),
    BF(verify_client, F_BOOL, false), BF(state, F_STATE, true),
    BF(error_code, F_STR, false),     BF(error_msg, F_STR, false),
    BF(request_id, F_STR, false),     BF(attempts, F_U32, false),
    BF(next_retry, F_I64, false),
};
#undef BF

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* ---- writing ---- */

/* Strings are emitted as valid UTF-8: an API message with stray bytes
 * must not make the whole file unwritable, so those bytes become '?'. */
static yajl_gen_status gen_string(yajl_gen g, const char *s)
{
  yajl_gen_status gs;
  size_t n;
  char *copy;

  if (!s)
    return yajl_gen_null(g);
  n = strlen(s);
  gs = yajl_gen_string(g, (const unsigned char *)s, n);
  if (gs != yajl_gen_invalid_string)
    return gs;
  copy = strdup(s);
  if (!copy)
    return yajl_gen_generation_complete; /* any error will do */
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)copy[i] >= 0x80)
      copy[i] = '?';
  }
  gs = yajl_gen_string(g, (const unsigned char *)copy, n);
  free(copy);
  return gs;
}

static yajl_gen_status gen_key(yajl_gen g, const char *key)
{
  return yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

static long long clamp_u64(uint64_t v)
{
  return v > (uint64_t)LLONG_MAX ? LLONG_MAX : (long long)v;
}

static yajl_gen_status gen_field(yajl_gen g, const struct field *f,
                                 const void *base)
{
  const char *p = (const char *)base + f->offset;
  yajl_gen_status gs = gen_key(g, f->name);

  if (gs != yajl_gen_status_ok)
    return gs;
  switch (f->type) {
  case F_STR:
    return gen_string(g, *(char *const *)p);
  case F_I64:
    return yajl_gen_integer(g, (long long)*(const int64_t *)p);
  case F_U64:
    return yajl_gen_integer(g, clamp_u64(*(const uint64_t *)p));
  case F_U32:
    return yajl_gen_integer(g, (long long)*(const uint32_t *)p);
  case F_BOOL:
    return yajl_gen_bool(g, *(const bool *)p);
  case F_STATE:
    return gen_string(g, status_state_name(*(const enum status_state *)p));
  }
  return yajl_gen_status_ok;
}

static yajl_gen_status gen_object(yajl_gen g, const struct field *fields,
                                  size_t nfields, const void *base)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  for (size_t i = 0; i < nfields && gs == yajl_gen_status_ok; i++)
    gs = gen_field(g, &fields[i], base);
  return gs;
}

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
  yajl_gen_status gs = gen_key(g, "pass");

  if (gs == yajl_gen_status_ok)
    gs = gen_object(g, pass_fields, NFIELDS(pass_fields), p);
  format_rfc3339(p->started_ms, when, sizeof(when));
  if (gs == yajl_gen_status_ok)
    gs = gen_key(g, "started");
  if (gs == yajl_gen_status_ok)
    gs = gen_string(g, when);
  format_rfc3339(p->ended_ms, when, sizeof(when));
  if (gs == yajl_gen_status_ok)
    gs = gen_key(g, "ended");
  if (gs == yajl_gen_status_ok)
    gs = p->ended_ms ? gen_string(g, when) : yajl_gen_null(g);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

static yajl_gen_status gen_status(yajl_gen g, const struct status *st)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = gen_key(g, "version");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_integer(g, STATUS_VERSION);
  if (gs == yajl_gen_status_ok)
    gs = gen_pass(g, &st->pass);
  if (gs == yajl_gen_status_ok)
    gs = gen_key(g, "bindings");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < st->nbindings && gs == yajl_gen_status_ok; i++) {
    gs = gen_object(g, binding_fields, NFIELDS(binding_fields),
                    &st->bindings[i]);
    if (gs == yajl_gen_status_ok)
      gs = yajl_gen_map_close(g);
  }
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
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
  yajl_gen g = yajl_gen_alloc(NULL);
  int rc = 0;

  if (!g)
    return -ENOMEM;
  if (!yajl_gen_config(g, yajl_gen_beautify, 1) ||
      !yajl_gen_config(g, yajl_gen_indent_string, "  ") ||
      !yajl_gen_config(g, yajl_gen_validate_utf8, 1) ||
      !yajl_gen_config(g, yajl_gen_print_callback, statefile_buf_print, b) ||
      gen_status(g, st) != yajl_gen_status_ok)
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

/* ---- reading: a streaming parser straight into the struct ---- */

enum where { W_START, W_TOP, W_PASS, W_BINDINGS, W_BINDING, W_DONE };

struct jval {
  enum { JV_NULL, JV_BOOL, JV_INT, JV_DOUBLE, JV_STR } kind;
  bool b;
  long long i;
  const unsigned char *s;
  size_t slen;
};

struct parser {
  struct status *st;
  enum where where;
  unsigned skip;    /* > 0: inside the value of an unknown key */
  char key[40];     /* the current key; "" when too long to be ours */
  size_t cap;       /* allocated bindings */
  uint32_t seen;    /* fields of the current pass/binding seen so far */
  uint32_t present; /* ... and those given at all, null included */
  bool version_ok, have_pass;
  int err; /* why we cancelled the parse */
};

static int fail(struct parser *p, int err)
{
  p->err = err;
  return 0; /* cancels yajl_parse */
}

static const struct field *find_field(const struct field *fields, size_t n,
                                      const char *key)
{
  for (size_t i = 0; i < n; i++) {
    if (strcmp(fields[i].name, key) == 0)
      return &fields[i];
  }
  return NULL;
}

static int set_string(char **dst, const struct jval *v)
{
  char *s;

  if (v->kind == JV_NULL) {
    free(*dst);
    *dst = NULL;
    return 1;
  }
  if (v->kind != JV_STR || memchr(v->s, '\0', v->slen))
    return -EBADMSG;
  s = strndup((const char *)v->s, v->slen);
  if (!s)
    return -ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

static int set_state(enum status_state *dst, const struct jval *v)
{
  char buf[16];

  if (v->kind != JV_STR || v->slen >= sizeof(buf))
    return -EBADMSG;
  memcpy(buf, v->s, v->slen);
  buf[v->slen] = '\0';
  return status_state_parse(buf, dst) < 0 ? -EBADMSG : 0;
}

/* Store v in the field f of base: 0 = set, 1 = null, or a negative errno. */
static int set_field(const struct field *f, void *base, const struct jval *v)
{
  char *p = (char *)base + f->offset;

  switch (f->type) {
  case F_STR:
    return set_string((char **)p, v);
  case F_STATE:
    return set_state((enum status_state *)p, v);
  case F_BOOL:
    if (v->kind != JV_BOOL)
      return -EBADMSG;
    *(bool *)p = v->b;
    return 0;
  case F_I64:
    if (v->kind != JV_INT)
      return -EBADMSG;
    *(int64_t *)p = v->i;
    return 0;
  case F_U64:
    if (v->kind != JV_INT || v->i < 0)
      return -EBADMSG;
    *(uint64_t *)p = (uint64_t)v->i;
    return 0;
  case F_U32:
    if (v->kind != JV_INT || v->i < 0 || v->i > UINT32_MAX)
      return -EBADMSG;
    *(uint32_t *)p = (uint32_t)v->i;
    return 0;
  }
  return -EBADMSG;
}

static int object_field(struct parser *p, const struct field *fields, size_t n,
                        void *base, const struct jval *v)
{
  const struct field *f = find_field(fields, n, p->key);
  int rc;

  if (!f)
    return 1; /* a key from a later version: ignored */
  /* A key given twice (e.g. a string, then null over it) is not a file
   * status_write made: refuse it rather than guess which one is meant. */
  if (p->present & (1u << (f - fields)))
    return fail(p, -EBADMSG);
  p->present |= 1u << (f - fields);
  rc = set_field(f, base, v);
  if (rc < 0)
    return fail(p, rc);
  if (rc == 0)
    p->seen |= 1u << (f - fields);
  return 1;
}

static bool required_seen(const struct field *fields, size_t n, uint32_t seen)
{
  for (size_t i = 0; i < n; i++) {
    if (fields[i].required && !(seen & (1u << i)))
      return false;
  }
  return true;
}

static int on_value(struct parser *p, const struct jval *v)
{
  if (p->skip > 0)
    return 1;
  switch (p->where) {
  case W_TOP:
    if (strcmp(p->key, "version") != 0)
      return 1;
    if (v->kind != JV_INT)
      return fail(p, -EBADMSG);
    if (v->i != STATUS_VERSION)
      return fail(p, -EPROTONOSUPPORT);
    p->version_ok = true;
    return 1;
  case W_PASS:
    return object_field(p, pass_fields, NFIELDS(pass_fields), &p->st->pass, v);
  case W_BINDING:
    return object_field(p, binding_fields, NFIELDS(binding_fields),
                        &p->st->bindings[p->st->nbindings - 1], v);
  default:
    return fail(p, -EBADMSG);
  }
}

static int on_json_null(void *ctx)
{
  struct jval v = {.kind = JV_NULL};

  return on_value(ctx, &v);
}

static int on_json_boolean(void *ctx, int b)
{
  struct jval v = {.kind = JV_BOOL, .b = b != 0};

  return on_value(ctx, &v);
}

static int on_json_integer(void *ctx, long long i)
{
  struct jval v = {.kind = JV_INT, .i = i};

  return on_value(ctx, &v);
}

static int on_json_double(void *ctx, double d)
{
  struct jval v = {.kind = JV_DOUBLE};

  (void)d;
  return on_value(ctx, &v);
}

static int on_json_string(void *ctx, const unsigned char *s, size_t len)
{
  struct jval v = {.kind = JV_STR, .s = s, .slen = len};

  return on_value(ctx, &v);
}

static int on_json_map_key(void *ctx, const unsigned char *key, size_t len)
{
  struct parser *p = ctx;

  if (p->skip > 0)
    return 1;
  if (len >= sizeof(p->key) || memchr(key, '\0', len))
    len = 0; /* no key of ours is that long */
  memcpy(p->key, key, len);
  p->key[len] = '\0';
  return 1;
}

/* A container where a known scalar field belongs is a type error; under an
 * unknown key it is skipped whole. */
static int container_in_object(struct parser *p, const struct field *fields,
                               size_t n)
{
  if (find_field(fields, n, p->key))
    return fail(p, -EBADMSG);
  p->skip = 1;
  return 1;
}

static int new_binding(struct parser *p)
{
  struct status *st = p->st;

  if (st->nbindings == p->cap) {
    size_t cap = p->cap ? p->cap * 2 : 64;
    struct status_binding *nb = realloc(st->bindings, cap * sizeof(*nb));

    if (!nb)
      return fail(p, -ENOMEM);
    st->bindings = nb;
    p->cap = cap;
  }
  memset(&st->bindings[st->nbindings++], 0, sizeof(*st->bindings));
  p->seen = p->present = 0;
  p->where = W_BINDING;
  return 1;
}

static int on_json_start_map(void *ctx)
{
  struct parser *p = ctx;

  if (p->skip > 0) {
    p->skip++;
    return 1;
  }
  switch (p->where) {
  case W_START:
    p->where = W_TOP;
    return 1;
  case W_TOP:
    if (strcmp(p->key, "pass") != 0) {
      p->skip = 1;
      return 1;
    }
    if (p->have_pass)
      return fail(p, -EBADMSG);
    p->have_pass = true;
    p->seen = p->present = 0;
    p->where = W_PASS;
    return 1;
  case W_BINDINGS:
    return new_binding(p);
  case W_PASS:
    return container_in_object(p, pass_fields, NFIELDS(pass_fields));
  case W_BINDING:
    return container_in_object(p, binding_fields, NFIELDS(binding_fields));
  default:
    return fail(p, -EBADMSG);
  }
}

static int on_json_end_map(void *ctx)
{
  struct parser *p = ctx;

  if (p->skip > 0) {
    p->skip--;
    return 1;
  }
  switch (p->where) {
  case W_TOP:
    p->where = W_DONE;
    return 1;
  case W_PASS:
    if (!required_seen(pass_fields, NFIELDS(pass_fields), p->seen))
      return fail(p, -EBADMSG);
    p->where = W_TOP;
    return 1;
  case W_BINDING:
    if (!required_seen(binding_fields, NFIELDS(binding_fields), p->seen))
      return fail(p, -EBADMSG);
    p->where = W_BINDINGS;
    return 1;
  default:
    return fail(p, -EBADMSG);
  }
}

static int on_json_start_array(void *ctx)
{
  struct parser *p = ctx;

  if (p->skip > 0) {
    p->skip++;
    return 1;
  }
  switch (p->where) {
  case W_TOP:
    if (strcmp(p->key, "bindings") != 0) {
      p->skip = 1;
      return 1;
    }
    if (p->cap > 0 || p->st->nbindings > 0)
      return fail(p, -EBADMSG); /* "bindings" twice */
    p->where = W_BINDINGS;
    return 1;
  case W_PASS:
    return container_in_object(p, pass_fields, NFIELDS(pass_fields));
  case W_BINDING:
    return container_in_object(p, binding_fields, NFIELDS(binding_fields));
  default:
    return fail(p, -EBADMSG);
  }
}

static int on_json_end_array(void *ctx)
{
  struct parser *p = ctx;

  if (p->skip > 0) {
    p->skip--;
    return 1;
  }
  if (p->where != W_BINDINGS)
    return fail(p, -EBADMSG);
  p->where = W_TOP;
  return 1;
}

static const yajl_callbacks status_callbacks = {
    .yajl_null = on_json_null,
    .yajl_boolean = on_json_boolean,
    .yajl_integer = on_json_integer,
    .yajl_double = on_json_double,
    .yajl_string = on_json_string,
    .yajl_start_map = on_json_start_map,
    .yajl_map_key = on_json_map_key,
    .yajl_end_map = on_json_end_map,
    .yajl_start_array = on_json_start_array,
    .yajl_end_array = on_json_end_array,
};

int status_from_json(const char *json, size_t len, struct status *st)
{
  struct parser p = {.st = st};
  yajl_handle h;
  yajl_status ys;
  int rc = 0;

  if (!json || !st)
    return -EINVAL;
  memset(st, 0, sizeof(*st));
  h = yajl_alloc(&status_callbacks, NULL, &p);
  if (!h)
    return -ENOMEM;
  ys = yajl_parse(h, (const unsigned char *)json, len);
  if (ys == yajl_status_ok)
    ys = yajl_complete_parse(h);
  yajl_free(h);
  if (ys != yajl_status_ok)
    rc = p.err ? p.err : -EBADMSG;
  else if (p.where != W_DONE || !p.have_pass)
    rc = -EBADMSG;
  else if (!p.version_ok)
    rc = -EBADMSG;
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

static void free_strings(const struct field *fields, size_t n, void *base)
{
  for (size_t i = 0; i < n; i++) {
    if (fields[i].type == F_STR) {
      char **s = (char **)((char *)base + fields[i].offset);

      free(*s);
      *s = NULL;
    }
  }
}

void status_free(struct status *st)
{
  if (!st)
    return;
  free_strings(pass_fields, NFIELDS(pass_fields), &st->pass);
  for (size_t i = 0; i < st->nbindings; i++)
    free_strings(binding_fields, NFIELDS(binding_fields), &st->bindings[i]);
  free(st->bindings);
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

int status_binding_copy(struct status_binding *dst,
                        const struct status_binding *src)
{
  *dst = *src;
  for (size_t i = 0; i < NFIELDS(binding_fields); i++) {
    char **s = (char **)((char *)dst + binding_fields[i].offset);

    if (binding_fields[i].type == F_STR && *s)
      *s = strdup(*s);
  }
  for (size_t i = 0; i < NFIELDS(binding_fields); i++) {
    const char *const *from =
        (const char *const *)((const char *)src + binding_fields[i].offset);
    char **to = (char **)((char *)dst + binding_fields[i].offset);

    if (binding_fields[i].type == F_STR && *from && !*to) {
      free_strings(binding_fields, NFIELDS(binding_fields), dst);
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

int status_print(const struct status *st, FILE *out, bool json, bool color)
{
  struct printer pr = {.out = out, .color = color};
  int rc;

  if (!st || !out)
    return -EINVAL;
  if (json) {
    rc = print_json(st, out);
    if (rc == 0 && fflush(out) != 0)
      rc = -EIO;
    return rc;
  }
  print_summary(&pr, st);
  print_states(&pr, st);
  for (size_t i = 0; i < st->nbindings; i++) {
    if (st->bindings[i].state == STATUS_FAILED)
      print_failed(&pr, &st->bindings[i]);
  }
  for (size_t i = 0; i < st->nbindings; i++) {
    if (st->bindings[i].state == STATUS_PENDING)
      print_pending(&pr, &st->bindings[i]);
  }
  return ferror(out) || fflush(out) != 0 ? -EIO : 0;
}
