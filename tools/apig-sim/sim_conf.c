/* SPDX-License-Identifier: MIT */
/* Settings and faults: defaults, JSON parsing (seed "settings"/"faults",
 * POST /__sim/settings and /__sim/faults) and JSON output; random draws;
 * small yajl_gen helpers. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sign.h"
#include "sim.h"

static const char *const op_names[SIM_OP_COUNT] = {
    "token",  "list",   "attach", "detach", "show", "certs",
    "create", "update", "delete", "admin",  "other"};

const char *sim_op_name(int op)
{
  if (op == SIM_OP_ANY)
    return "any";
  if (op < 0 || op >= SIM_OP_COUNT)
    return "?";
  return op_names[op];
}

int sim_op_parse(const char *s)
{
  if (!strcmp(s, "any"))
    return SIM_OP_ANY;
  for (int i = 0; i < SIM_OP_COUNT; i++)
    if (!strcmp(s, op_names[i]))
      return i;
  return -2;
}

void sim_settings_default(struct sim_settings *s)
{
  memset(s, 0, sizeof(*s));
  s->visibility_delay_ms = 0;
  s->lockout_failures = 5;
  s->lockout_ms = 300000;
  s->clock_skew_ms = 15 * 60 * 1000;
  s->clock_check = true;
  s->token_ttl_s = 24 * 3600;
  s->atomic_batches = true;
  s->noop_write_error = false;
  s->overlap_fail_rate = 1.0;
  s->max_batch = 500;
  s->reject_unknown_fields = true;
}

void sim_faults_default(struct sim_faults *f)
{
  memset(f, 0, sizeof(*f));
  f->reset_before.op = SIM_OP_ANY;
  f->reset_after.op = SIM_OP_ANY;
  f->hold.op = SIM_OP_ANY;
  f->slow_op = SIM_OP_ANY;
  f->slow_chunk = 16;
  f->slow_interval_ms = 50;
}

/* ---- random ------------------------------------------------------------ */

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
  r->s = seed ^ 0x9e3779b97f4a7c15ull;
}

/* splitmix64: tiny, good enough for fault draws, fully repeatable */
uint64_t sim_rng_next(struct sim_rng *r)
{
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double sim_rng_unit(struct sim_rng *r)
{
  return (double)(sim_rng_next(r) >> 11) / 9007199254740992.0;
}

bool sim_rng_hit(struct sim_rng *r, double rate)
{
  if (rate <= 0)
    return false;
  if (rate >= 1)
    return true;
  return sim_rng_unit(r) < rate;
}

/* ---- tree helpers ------------------------------------------------------ */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int get_num(yajl_val v, const char *key, double lo, double hi,
                   double *out, char *err, size_t errlen)
{
  if (!YAJL_IS_NUMBER(v)) {
    seterr(err, errlen, "%s: expected a number", key);
    return -EINVAL;
  }
  double d = YAJL_GET_DOUBLE(v);
  if (YAJL_IS_INTEGER(v))
    d = (double)YAJL_GET_INTEGER(v);
  if (!(d >= lo && d <= hi)) {
    seterr(err, errlen, "%s: out of range [%g, %g]", key, lo, hi);
    return -EINVAL;
  }
  *out = d;
  return 0;
}

static int get_i64(yajl_val v, const char *key, double lo, double hi,
                   int64_t *out, char *err, size_t errlen)
{
  double d;
  int rc = get_num(v, key, lo, hi, &d, err, errlen);
  if (!rc)
    *out = (int64_t)d;
  return rc;
}

static int get_bool(yajl_val v, const char *key, bool *out, char *err,
                    size_t errlen)
{
  if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
    seterr(err, errlen, "%s: expected true or false", key);
    return -EINVAL;
  }
  *out = YAJL_IS_TRUE(v);
  return 0;
}

static int get_op(yajl_val v, const char *key, int *out, char *err,
                  size_t errlen)
{
  const char *s = YAJL_GET_STRING(v);
  int op = s ? sim_op_parse(s) : -2;
  if (op == -2) {
    seterr(err, errlen,
           "%s: expected any|token|list|attach|detach|show|certs|"
           "create|update|delete",
           key);
    return -EINVAL;
  }
  *out = op;
  return 0;
}

/* ---- settings ---------------------------------------------------------- */

static int parse_now(yajl_val v, int64_t *out, char *err, size_t errlen)
{
  if (YAJL_IS_STRING(v)) {
    time_t t;
    if (sign_parse_date(YAJL_GET_STRING(v), &t) != 0) {
      seterr(err, errlen, "now: expected YYYYMMDDTHHMMSSZ");
      return -EINVAL;
    }
    *out = (int64_t)t * 1000;
    return 0;
  }
  int64_t s;
  int rc = get_i64(v, "now", 0, 4e9, &s, err, errlen);
  if (!rc)
    *out = s * 1000;
  return rc;
}

static int parse_lockout(yajl_val v, struct sim_settings *s, char *err,
                         size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "lockout: expected an object");
    return -EINVAL;
  }
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    yajl_val x = v->u.object.values[i];
    int64_t n;
    int rc;
    if (!strcmp(k, "max_failures")) {
      rc = get_i64(x, k, 1, 1000, &n, err, errlen);
      s->lockout_failures = (int)n;
    } else if (!strcmp(k, "lock_s")) {
      rc = get_i64(x, k, 0, 86400, &n, err, errlen);
      s->lockout_ms = n * 1000;
    } else {
      seterr(err, errlen, "lockout: unknown key %s", k);
      rc = -EINVAL;
    }
    if (rc)
      return rc;
  }
  return 0;
}

static int parse_setting(const char *k, yajl_val x, struct sim_settings *s,
                         char *err, size_t errlen)
{
  int64_t n;
  double d;
  int rc;
  if (!strcmp(k, "visibility_delay_ms")) {
    rc = get_i64(x, k, 0, 3600000, &s->visibility_delay_ms, err, errlen);
  } else if (!strcmp(k, "lockout")) {
    rc = parse_lockout(x, s, err, errlen);
  } else if (!strcmp(k, "clock_skew_s")) {
    rc = get_i64(x, k, 0, 86400 * 365, &n, err, errlen);
    s->clock_skew_ms = n * 1000;
  } else if (!strcmp(k, "clock_check")) {
    rc = get_bool(x, k, &s->clock_check, err, errlen);
  } else if (!strcmp(k, "now")) {
    rc = YAJL_IS_NULL(x) ? (s->now_ms = 0, 0)
                         : parse_now(x, &s->now_ms, err, errlen);
  } else if (!strcmp(k, "token_ttl_s")) {
    rc = get_i64(x, k, 1, 86400 * 365, &s->token_ttl_s, err, errlen);
  } else if (!strcmp(k, "atomic_batches")) {
    rc = get_bool(x, k, &s->atomic_batches, err, errlen);
  } else if (!strcmp(k, "noop_write_error")) {
    rc = get_bool(x, k, &s->noop_write_error, err, errlen);
  } else if (!strcmp(k, "overlap_fail_rate")) {
    rc = get_num(x, k, 0, 1, &s->overlap_fail_rate, err, errlen);
  } else if (!strcmp(k, "max_batch")) {
    rc = get_num(x, k, 1, 100000, &d, err, errlen);
    s->max_batch = (size_t)d;
  } else if (!strcmp(k, "reject_unknown_fields")) {
    rc = get_bool(x, k, &s->reject_unknown_fields, err, errlen);
  } else if (!strcmp(k, "cert_quota")) {
    rc = get_i64(x, k, 0, 1000000, &n, err, errlen);
    s->cert_quota = (size_t)n;
  } else {
    seterr(err, errlen, "settings: unknown key %s", k);
    rc = -EINVAL;
  }
  return rc;
}

int sim_settings_parse(const yajl_val v, struct sim_settings *out, char *err,
                       size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "settings: expected an object");
    return -EINVAL;
  }
  struct sim_settings s = *out;
  for (size_t i = 0; i < v->u.object.len; i++) {
    int rc = parse_setting(v->u.object.keys[i], v->u.object.values[i], &s, err,
                           errlen);
    if (rc)
      return rc;
  }
  *out = s;
  return 0;
}

/* ---- faults ------------------------------------------------------------ */

/* Messages of docs/apig-api.md §6 for codes given without "msg". */
static const char *default_msg(const char *code)
{
  static const struct {
    const char *code, *msg;
  } t[] = {
      {"APIG.9999", "System error"},
      {"APIG.9008", "Too many requests"},
      {"APIG.9004", "IAM request failed"},
      {"APIG.3500", "Failed to synchronize data to etcd"},
      {"APIG.0308", "The throttling threshold has been reached"},
      {"APIG.0201", "Backend unavailable"},
      {"APIG.1005", "No permissions to request this method"},
      {"APIG.3711",
       "A configuration parameter can be modified only once per minute"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (!strcmp(code, t[i].code))
      return t[i].msg;
  return "Injected fault";
}

static int parse_err(yajl_val v, struct sim_fault_err *e, char *err,
                     size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "errors[]: expected an object");
    return -EINVAL;
  }
  memset(e, 0, sizeof(*e));
  e->op = SIM_OP_ANY;
  e->status = 500;
  snprintf(e->code, sizeof(e->code), "APIG.9999");
  bool have_msg = false;
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    yajl_val x = v->u.object.values[i];
    int64_t n;
    int rc = 0;
    if (!strcmp(k, "op")) {
      rc = get_op(x, k, &e->op, err, errlen);
    } else if (!strcmp(k, "rate")) {
      rc = get_num(x, k, 0, 1, &e->rate, err, errlen);
    } else if (!strcmp(k, "status")) {
      rc = get_i64(x, k, 400, 599, &n, err, errlen);
      e->status = (int)n;
    } else if (!strcmp(k, "code") && YAJL_IS_STRING(x)) {
      snprintf(e->code, sizeof(e->code), "%s", YAJL_GET_STRING(x));
    } else if (!strcmp(k, "msg") && YAJL_IS_STRING(x)) {
      snprintf(e->msg, sizeof(e->msg), "%s", YAJL_GET_STRING(x));
      have_msg = true;
    } else {
      seterr(err, errlen, "errors[]: bad key or value %s", k);
      rc = -EINVAL;
    }
    if (rc)
      return rc;
  }
  if (!have_msg)
    snprintf(e->msg, sizeof(e->msg), "%s", default_msg(e->code));
  return 0;
}

static int parse_latency(yajl_val v, struct sim_faults *f, char *err,
                         size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "latency: expected an object");
    return -EINVAL;
  }
  const char *kind_path[] = {"kind", NULL};
  const char *kind = YAJL_GET_STRING(yajl_tree_get(v, kind_path, yajl_t_any));
  if (!kind) {
    seterr(err, errlen, "latency.kind: fixed|uniform|none");
    return -EINVAL;
  }
  f->lat_kind = !strcmp(kind, "fixed")     ? SIM_LAT_FIXED
                : !strcmp(kind, "uniform") ? SIM_LAT_UNIFORM
                                           : SIM_LAT_NONE;
  if (f->lat_kind == SIM_LAT_NONE && strcmp(kind, "none") != 0) {
    seterr(err, errlen, "latency.kind: fixed|uniform|none");
    return -EINVAL;
  }
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    yajl_val x = v->u.object.values[i];
    int rc = 0;
    if (!strcmp(k, "kind"))
      continue;
    if (!strcmp(k, "ms"))
      rc = get_i64(x, k, 0, 600000, &f->lat_ms, err, errlen);
    else if (!strcmp(k, "min_ms"))
      rc = get_i64(x, k, 0, 600000, &f->lat_min_ms, err, errlen);
    else if (!strcmp(k, "max_ms"))
      rc = get_i64(x, k, 0, 600000, &f->lat_max_ms, err, errlen);
    else {
      seterr(err, errlen, "latency: unknown key %s", k);
      rc = -EINVAL;
    }
    if (rc)
      return rc;
  }
  if (f->lat_kind == SIM_LAT_UNIFORM && f->lat_max_ms < f->lat_min_ms) {
    seterr(err, errlen, "latency: max_ms < min_ms");
    return -EINVAL;
  }
  return 0;
}

/* Generic "object of numeric/op fields" parser for the small knobs. */
struct knob {
  const char *key;
  int kind; /* 0 double, 1 int64, 2 op, 3 size_t, 4 int */
  double lo, hi;
  void *dst;
};

static int parse_knobs(yajl_val v, const char *what, const struct knob *kn,
                       size_t nkn, char *err, size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "%s: expected an object", what);
    return -EINVAL;
  }
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *k = v->u.object.keys[i];
    yajl_val x = v->u.object.values[i];
    const struct knob *m = NULL;
    for (size_t j = 0; j < nkn && !m; j++)
      if (!strcmp(kn[j].key, k))
        m = &kn[j];
    if (!m) {
      seterr(err, errlen, "%s: unknown key %s", what, k);
      return -EINVAL;
    }
    double d = 0;
    int rc = m->kind == 2 ? get_op(x, k, (int *)m->dst, err, errlen)
                          : get_num(x, k, m->lo, m->hi, &d, err, errlen);
    if (rc)
      return rc;
    if (m->kind == 0)
      *(double *)m->dst = d;
    else if (m->kind == 1)
      *(int64_t *)m->dst = (int64_t)d;
    else if (m->kind == 3)
      *(size_t *)m->dst = (size_t)d;
    else if (m->kind == 4)
      *(int *)m->dst = (int)d;
  }
  return 0;
}

static int parse_errors(yajl_val x, struct sim_faults *f, char *err,
                        size_t errlen)
{
  if (!YAJL_IS_ARRAY(x) || x->u.array.len > SIM_MAX_FAULT_ERRS) {
    seterr(err, errlen, "errors: expected an array of at most %d",
           SIM_MAX_FAULT_ERRS);
    return -EINVAL;
  }
  f->nerrs = 0;
  for (size_t j = 0; j < x->u.array.len; j++) {
    int rc = parse_err(x->u.array.values[j], &f->errs[j], err, errlen);
    if (rc)
      return rc;
    f->nerrs++;
  }
  return 0;
}

static int parse_fault(const char *k, yajl_val x, struct sim_faults *f,
                       char *err, size_t errlen)
{
  if (!strcmp(k, "latency"))
    return parse_latency(x, f, err, errlen);
  if (!strcmp(k, "latency_ms")) {
    f->lat_kind = SIM_LAT_FIXED;
    return get_i64(x, k, 0, 600000, &f->lat_ms, err, errlen);
  }
  if (!strcmp(k, "errors"))
    return parse_errors(x, f, err, errlen);
  if (!strcmp(k, "tail")) {
    const struct knob kn[] = {{"percent", 0, 0, 100, &f->tail_percent},
                              {"extra_ms", 1, 0, 600000, &f->tail_ms}};
    return parse_knobs(x, k, kn, 2, err, errlen);
  }
  if (!strcmp(k, "throttle")) {
    const struct knob kn[] = {{"rps", 0, 0, 1e7, &f->throttle_rps},
                              {"burst", 0, 0, 1e7, &f->throttle_burst},
                              {"retry_after_s", 4, 0, 3600, &f->retry_after_s}};
    return parse_knobs(x, k, kn, 3, err, errlen);
  }
  if (!strcmp(k, "reset_before_apply") || !strcmp(k, "reset_after_apply") ||
      !strcmp(k, "hold")) {
    struct sim_fault_reset *r = k[0] == 'h'   ? &f->hold
                                : k[6] == 'b' ? &f->reset_before
                                              : &f->reset_after;
    const struct knob kn[] = {{"op", 2, 0, 0, &r->op},
                              {"rate", 0, 0, 1, &r->rate}};
    return parse_knobs(x, k, kn, 2, err, errlen);
  }
  if (!strcmp(k, "slow")) {
    const struct knob kn[] = {
        {"op", 2, 0, 0, &f->slow_op},
        {"rate", 0, 0, 1, &f->slow_rate},
        {"chunk_bytes", 3, 1, 1 << 20, &f->slow_chunk},
        {"interval_ms", 1, 0, 600000, &f->slow_interval_ms}};
    return parse_knobs(x, k, kn, 4, err, errlen);
  }
  if (!strcmp(k, "dataplane") || !strcmp(k, "stale_gateway"))
    return sim_dp_faults_parse(k, x, f, err, errlen);
  seterr(err, errlen, "faults: unknown key %s", k);
  return -EINVAL;
}

int sim_faults_parse(const yajl_val v, struct sim_faults *out, char *err,
                     size_t errlen)
{
  if (!YAJL_IS_OBJECT(v)) {
    seterr(err, errlen, "faults: expected an object");
    return -EINVAL;
  }
  struct sim_faults f = *out;
  for (size_t i = 0; i < v->u.object.len; i++) {
    int rc = parse_fault(v->u.object.keys[i], v->u.object.values[i], &f, err,
                         errlen);
    if (rc)
      return rc;
  }
  if (f.throttle_rps > 0 && f.throttle_burst < 1)
    f.throttle_burst = f.throttle_rps < 1 ? 1 : f.throttle_rps;
  *out = f;
  return 0;
}

/* ---- JSON output ------------------------------------------------------- */

int sim_gen_str(yajl_gen g, const char *s)
{
  s = s ? s : "";
  return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) ==
                 yajl_gen_status_ok
             ? 0
             : -EINVAL;
}

int sim_gen_kv_str(yajl_gen g, const char *k, const char *v)
{
  int rc = sim_gen_str(g, k);
  return rc ? rc : sim_gen_str(g, v);
}

int sim_gen_kv_int(yajl_gen g, const char *k, long long v)
{
  int rc = sim_gen_str(g, k);
  if (rc)
    return rc;
  return yajl_gen_integer(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int sim_gen_kv_bool(yajl_gen g, const char *k, bool v)
{
  int rc = sim_gen_str(g, k);
  if (rc)
    return rc;
  return yajl_gen_bool(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int sim_gen_kv_double(yajl_gen g, const char *k, double v)
{
  int rc = sim_gen_str(g, k);
  if (rc)
    return rc;
  if (!isfinite(v))
    v = 0;
  return yajl_gen_double(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

#define SIM_JSON_MAX_DEPTH 32

static bool depth_ok(const char *buf, size_t len)
{
  int depth = 0;
  bool in_str = false, esc = false;
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    if (in_str) {
      if (esc)
        esc = false;
      else if (c == '\\')
        esc = true;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > SIM_JSON_MAX_DEPTH)
        return false;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return true;
}

yajl_val sim_json_parse(const char *buf, size_t len)
{
  if (!buf || !depth_ok(buf, len))
    return NULL;
  char *copy = strndup(buf, len);
  if (!copy)
    return NULL;
  char perr[128];
  yajl_val v = yajl_tree_parse(copy, perr, sizeof(perr));
  free(copy);
  return v;
}

int sim_gen_take(yajl_gen g, char **out, size_t *len)
{
  const unsigned char *buf;
  size_t n;
  if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
    return -EINVAL;
  char *s = malloc(n + 1);
  if (!s)
    return -ENOMEM;
  memcpy(s, buf, n);
  s[n] = '\0';
  *out = s;
  *len = n;
  return 0;
}

int sim_settings_gen(yajl_gen g, const struct sim_settings *s)
{
  int rc = 0;
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_int(g, "visibility_delay_ms", s->visibility_delay_ms);
  rc |= sim_gen_str(g, "lockout");
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_int(g, "max_failures", s->lockout_failures);
  rc |= sim_gen_kv_int(g, "lock_s", s->lockout_ms / 1000);
  yajl_gen_map_close(g);
  rc |= sim_gen_kv_int(g, "clock_skew_s", s->clock_skew_ms / 1000);
  rc |= sim_gen_kv_bool(g, "clock_check", s->clock_check);
  if (s->now_ms)
    rc |= sim_gen_kv_int(g, "now", s->now_ms / 1000);
  rc |= sim_gen_kv_int(g, "token_ttl_s", s->token_ttl_s);
  rc |= sim_gen_kv_bool(g, "atomic_batches", s->atomic_batches);
  rc |= sim_gen_kv_bool(g, "noop_write_error", s->noop_write_error);
  rc |= sim_gen_kv_double(g, "overlap_fail_rate", s->overlap_fail_rate);
  rc |= sim_gen_kv_int(g, "max_batch", (long long)s->max_batch);
  rc |= sim_gen_kv_bool(g, "reject_unknown_fields", s->reject_unknown_fields);
  rc |= sim_gen_kv_int(g, "cert_quota", (long long)s->cert_quota);
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}

static int gen_reset(yajl_gen g, const char *k, const struct sim_fault_reset *r)
{
  int rc = sim_gen_str(g, k);
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_str(g, "op", sim_op_name(r->op));
  rc |= sim_gen_kv_double(g, "rate", r->rate);
  yajl_gen_map_close(g);
  return rc;
}

static int gen_latency(yajl_gen g, const struct sim_faults *f)
{
  static const char *const kinds[] = {"none", "fixed", "uniform"};
  int rc = sim_gen_str(g, "latency");
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_str(g, "kind", kinds[f->lat_kind]);
  if (f->lat_kind == SIM_LAT_FIXED)
    rc |= sim_gen_kv_int(g, "ms", f->lat_ms);
  if (f->lat_kind == SIM_LAT_UNIFORM) {
    rc |= sim_gen_kv_int(g, "min_ms", f->lat_min_ms);
    rc |= sim_gen_kv_int(g, "max_ms", f->lat_max_ms);
  }
  yajl_gen_map_close(g);
  rc |= sim_gen_str(g, "tail");
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_double(g, "percent", f->tail_percent);
  rc |= sim_gen_kv_int(g, "extra_ms", f->tail_ms);
  yajl_gen_map_close(g);
  return rc;
}

int sim_faults_gen(yajl_gen g, const struct sim_faults *f)
{
  int rc = 0;
  yajl_gen_map_open(g);
  rc |= gen_latency(g, f);
  rc |= sim_gen_str(g, "errors");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < f->nerrs; i++) {
    yajl_gen_map_open(g);
    rc |= sim_gen_kv_str(g, "op", sim_op_name(f->errs[i].op));
    rc |= sim_gen_kv_double(g, "rate", f->errs[i].rate);
    rc |= sim_gen_kv_int(g, "status", f->errs[i].status);
    rc |= sim_gen_kv_str(g, "code", f->errs[i].code);
    rc |= sim_gen_kv_str(g, "msg", f->errs[i].msg);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  rc |= sim_gen_str(g, "throttle");
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_double(g, "rps", f->throttle_rps);
  rc |= sim_gen_kv_double(g, "burst", f->throttle_burst);
  rc |= sim_gen_kv_int(g, "retry_after_s", f->retry_after_s);
  yajl_gen_map_close(g);
  rc |= gen_reset(g, "reset_before_apply", &f->reset_before);
  rc |= gen_reset(g, "reset_after_apply", &f->reset_after);
  rc |= gen_reset(g, "hold", &f->hold);
  rc |= sim_gen_str(g, "slow");
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_str(g, "op", sim_op_name(f->slow_op));
  rc |= sim_gen_kv_double(g, "rate", f->slow_rate);
  rc |= sim_gen_kv_int(g, "chunk_bytes", (long long)f->slow_chunk);
  rc |= sim_gen_kv_int(g, "interval_ms", f->slow_interval_ms);
  yajl_gen_map_close(g);
  rc |= sim_dp_faults_gen(g, f);
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}
