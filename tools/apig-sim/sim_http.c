/* SPDX-License-Identifier: MIT */
/* The HTTP side of apig-sim: routing, the APIG endpoints, IAM, the admin
 * endpoints, fault injection and latency (connections are suspended and
 * resumed by the scheduler, never slept on). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define MAX_BODY (4u << 20)
#define DOC_SUFFIX ". Please refer to the support documentation"

enum phase { PH_RECEIVING, PH_WAITING, PH_DONE };
struct list_ctx;

struct sim_req {
  struct sim *sim;
  struct sim_loop *loop; /* the event loop (thread) serving it */
  struct MHD_Connection *conn;
  char *uri;       /* raw request-target as received */
  char *raw_path;  /* its path part */
  char *raw_query; /* its query part ("" when none) */
  char *body;
  size_t body_len;
  size_t body_cap;
  bool too_large;
  bool seen_first;
  bool counted; /* counted in stats.in_flight */
  enum phase phase;
  int op;
  uint64_t generation;
  int64_t start_ns;
  int64_t delay_ns;
  /* route */
  char *project_id;
  char *cert_id;
  long project;
  /* decision made on arrival */
  int status;
  char code[32];
  char msg[256];
  bool write_marked;
  bool reset_before;
  bool reset_after;
  bool held; /* drawn by the hold fault: waits for the fault set to let go */
  bool slow;
  bool closed; /* reset: connection closed without a response */
  bool admin;
  yajl_val json;         /* parsed write body */
  struct list_ctx *list; /* a list page waiting to be rendered */
  /* response */
  char *resp;
  size_t resp_len;
  char *subject_token;
  char request_id[33];
  size_t slow_chunk;
  int64_t slow_interval_ms;
  bool slow_paused;
};

static void lock(struct sim *sim)
{
  pthread_mutex_lock(&sim->mu);
}

static void unlock(struct sim *sim)
{
  pthread_mutex_unlock(&sim->mu);
}

static bool stopping(struct sim *sim)
{
  return __atomic_load_n(&sim->stopping, __ATOMIC_ACQUIRE);
}

/* ---- small response builders ------------------------------------------ */

static void set_error(struct sim_req *r, int status, const char *code,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct sim_req *r, int status, const char *code,
                      const char *fmt, ...)
{
  va_list ap;
  r->status = status;
  snprintf(r->code, sizeof(r->code), "%s", code);
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
  va_end(ap);
}

static void bad_param(struct sim_req *r, const char *name)
{
  set_error(r, 400, "APIG.2012",
            "Invalid parameter value,parameterName:%s" DOC_SUFFIX, name);
}

static void missing_param(struct sim_req *r, const char *name)
{
  set_error(
      r, 400, "APIG.2001",
      "The request parameters must be specified,parameterName:%s" DOC_SUFFIX,
      name);
}

/* The error envelope; front-door (APIG.0xxx) errors also carry the
 * request id in the body, as the APIG FAQ shows. */
static void build_error_body(struct sim_req *r)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return;
  yajl_gen_map_open(g);
  sim_gen_kv_str(g, "error_code", r->code);
  sim_gen_kv_str(g, "error_msg", r->msg);
  if (!strncmp(r->code, "APIG.0", 6))
    sim_gen_kv_str(g, "request_id", r->request_id);
  yajl_gen_map_close(g);
  free(r->resp);
  r->resp = NULL;
  sim_gen_take(g, &r->resp, &r->resp_len);
  yajl_gen_free(g);
}

typedef int (*gen_fn)(yajl_gen g, const void *arg);

static int respond_json(struct sim_req *r, int status, gen_fn fn,
                        const void *arg)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return -ENOMEM;
  int rc = fn(g, arg);
  if (!rc) {
    free(r->resp);
    r->resp = NULL;
    rc = sim_gen_take(g, &r->resp, &r->resp_len);
  }
  yajl_gen_free(g);
  if (!rc)
    r->status = status;
  else
    set_error(r, 500, "APIG.9999", "System error");
  return rc;
}

/* ---- routing ----------------------------------------------------------- */

/* Split "/v2/{p}/apigw/certificates/{c}[/tail...]". */
static int route_apig(struct sim_req *r, const char *url, const char *method)
{
  char buf[512];
  if (strlen(url) >= sizeof(buf))
    return SIM_OP_OTHER;
  snprintf(buf, sizeof(buf), "%s", url);
  char *seg[8] = {0};
  size_t n = 0;
  for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 8;
       t = strtok_r(NULL, "/", &save))
    seg[n++] = t;
  if (n < 4 || strcmp(seg[0], "v2") || strcmp(seg[2], "apigw") ||
      strcmp(seg[3], "certificates"))
    return SIM_OP_OTHER;
  int op = SIM_OP_OTHER;
  bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
  bool put = !strcmp(method, "PUT"), del = !strcmp(method, "DELETE");
  if (n == 4 && get)
    op = SIM_OP_CERTS;
  else if (n == 4 && post)
    op = SIM_OP_CREATE;
  else if (n == 5 && put)
    op = SIM_OP_UPDATE;
  else if (n == 5 && del)
    op = SIM_OP_DELETE;
  else if (n == 5 && get)
    op = SIM_OP_SHOW;
  else if (n == 6 && get && !strcmp(seg[5], "attached-domains"))
    op = SIM_OP_LIST;
  else if (n == 7 && post && !strcmp(seg[5], "domains") &&
           !strcmp(seg[6], "attach"))
    op = SIM_OP_ATTACH;
  else if (n == 7 && post && !strcmp(seg[5], "domains") &&
           !strcmp(seg[6], "detach"))
    op = SIM_OP_DETACH;
  if (op != SIM_OP_OTHER) {
    r->project_id = strdup(seg[1]);
    r->cert_id = strdup(n > 4 ? seg[4] : "");
    if (!r->project_id || !r->cert_id)
      return SIM_OP_OTHER;
  }
  return op;
}

static int route(struct sim_req *r, const char *url, const char *method)
{
  if (!strncmp(url, "/__sim/", 7)) {
    r->admin = true;
    return SIM_OP_ADMIN;
  }
  if (!strcmp(url, "/v3/auth/tokens") && !strcmp(method, "POST"))
    return SIM_OP_TOKEN;
  return route_apig(r, url, method);
}

static bool is_write(int op)
{
  return op == SIM_OP_ATTACH || op == SIM_OP_DETACH;
}

/* ---- faults drawn on arrival ------------------------------------------ */

static bool op_matches(int want, int op)
{
  return want == SIM_OP_ANY || want == op;
}

static int64_t draw_latency_ms(struct sim *sim)
{
  const struct sim_faults *f = &sim->faults;
  int64_t ms = 0;
  if (f->lat_kind == SIM_LAT_FIXED)
    ms = f->lat_ms;
  else if (f->lat_kind == SIM_LAT_UNIFORM)
    ms = f->lat_min_ms + (int64_t)(sim_rng_unit(&sim->rng) *
                                   (double)(f->lat_max_ms - f->lat_min_ms + 1));
  if (f->tail_percent > 0 && f->tail_ms > 0 &&
      sim_rng_hit(&sim->rng, f->tail_percent / 100.0))
    ms += f->tail_ms;
  return ms;
}

/* Token bucket per project; the first request starts with a full bucket. */
static bool throttled(struct sim *sim, struct sim_project *p)
{
  const struct sim_faults *f = &sim->faults;
  if (f->throttle_rps <= 0)
    return false;
  int64_t now = sim_mono_ms();
  if (!p->bucket_started) {
    p->bucket_started = true;
    p->bucket = f->throttle_burst;
  } else {
    p->bucket += (double)(now - p->bucket_ms) * f->throttle_rps / 1000.0;
    if (p->bucket > f->throttle_burst)
      p->bucket = f->throttle_burst;
  }
  p->bucket_ms = now;
  if (p->bucket < 1.0)
    return true;
  p->bucket -= 1.0;
  return false;
}

static bool inject_error(struct sim *sim, struct sim_req *r)
{
  const struct sim_faults *f = &sim->faults;
  for (size_t i = 0; i < f->nerrs; i++) {
    const struct sim_fault_err *e = &f->errs[i];
    if (op_matches(e->op, r->op) && sim_rng_hit(&sim->rng, e->rate)) {
      set_error(r, e->status, e->code, "%s", e->msg);
      sim->stats.injected_errors++;
      return true;
    }
  }
  return false;
}

static void draw_transport_faults(struct sim *sim, struct sim_req *r)
{
  const struct sim_faults *f = &sim->faults;
  r->reset_before = op_matches(f->reset_before.op, r->op) &&
                    sim_rng_hit(&sim->rng, f->reset_before.rate);
  r->reset_after = op_matches(f->reset_after.op, r->op) &&
                   sim_rng_hit(&sim->rng, f->reset_after.rate);
  r->held =
      op_matches(f->hold.op, r->op) && sim_rng_hit(&sim->rng, f->hold.rate);
  r->slow =
      op_matches(f->slow_op, r->op) && sim_rng_hit(&sim->rng, f->slow_rate);
  r->slow_chunk = f->slow_chunk;
  r->slow_interval_ms = f->slow_interval_ms;
}

/* ---- write bodies ------------------------------------------------------ */

static bool valid_dns_name(const char *s)
{
  size_t len = strlen(s);
  if (len == 0 || len > 253)
    return false;
  if (s[0] == '*') {
    if (s[1] != '.')
      return false;
    s += 2;
  }
  size_t label = 0;
  char prev = '.';
  for (; *s; s++) {
    if (*s == '.') {
      if (label == 0 || prev == '-')
        return false;
      label = 0;
    } else if (isalnum((unsigned char)*s) || (*s == '-' && label > 0)) {
      if (++label > 63)
        return false;
    } else {
      return false;
    }
    prev = *s;
  }
  return label > 0 && prev != '-';
}

static yajl_val obj_get(yajl_val o, const char *k)
{
  for (size_t i = 0; i < o->u.object.len; i++)
    if (!strcmp(o->u.object.keys[i], k))
      return o->u.object.values[i];
  return NULL;
}

static bool check_entry_keys(struct sim *sim, struct sim_req *r, yajl_val e)
{
  if (!sim->settings.reject_unknown_fields)
    return true;
  for (size_t i = 0; i < e->u.object.len; i++) {
    const char *k = e->u.object.keys[i];
    if (strcmp(k, "domain") && strcmp(k, "instance_ids") &&
        strcmp(k, "verified_client_certificate_enabled")) {
      bad_param(r, k);
      return false;
    }
  }
  return true;
}

static bool validate_entry(struct sim *sim, struct sim_req *r, yajl_val e)
{
  if (!YAJL_IS_OBJECT(e)) {
    bad_param(r, "domains");
    return false;
  }
  if (!check_entry_keys(sim, r, e))
    return false;
  yajl_val d = obj_get(e, "domain");
  if (!d) {
    missing_param(r, "domain");
    return false;
  }
  if (!YAJL_IS_STRING(d) || !valid_dns_name(YAJL_GET_STRING(d))) {
    bad_param(r, "domain");
    return false;
  }
  yajl_val ids = obj_get(e, "instance_ids");
  if (ids) {
    bool ok = YAJL_IS_ARRAY(ids) && ids->u.array.len > 0;
    for (size_t i = 0; ok && i < ids->u.array.len; i++) {
      const char *s = YAJL_GET_STRING(ids->u.array.values[i]);
      ok = s && *s && strlen(s) <= 64;
    }
    if (!ok) {
      bad_param(r, "instance_ids");
      return false;
    }
  }
  yajl_val v = obj_get(e, "verified_client_certificate_enabled");
  if (v && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
    bad_param(r, "verified_client_certificate_enabled");
    return false;
  }
  return true;
}

/* Strict parse of {"domains":[...]}: 400 APIG.2012 / APIG.2001. */
static bool parse_write_body(struct sim *sim, struct sim_req *r)
{
  yajl_val root = r->body_len ? sim_json_parse(r->body, r->body_len) : NULL;
  if (!root || !YAJL_IS_OBJECT(root)) {
    yajl_tree_free(root);
    if (!r->body_len)
      missing_param(r, "domains");
    else
      bad_param(r, "body");
    return false;
  }
  r->json = root;
  for (size_t i = 0;
       sim->settings.reject_unknown_fields && i < root->u.object.len; i++)
    if (strcmp(root->u.object.keys[i], "domains")) {
      bad_param(r, root->u.object.keys[i]);
      return false;
    }
  yajl_val ds = obj_get(root, "domains");
  if (!ds) {
    missing_param(r, "domains");
    return false;
  }
  if (!YAJL_IS_ARRAY(ds) || ds->u.array.len == 0 ||
      ds->u.array.len > sim->settings.max_batch) {
    bad_param(r, "domains");
    return false;
  }
  for (size_t i = 0; i < ds->u.array.len; i++)
    if (!validate_entry(sim, r, ds->u.array.values[i]))
      return false;
  return true;
}

/* ---- applying writes --------------------------------------------------- */

#define PLAN_GW_MEMO 16

struct plan {
  struct sim_target *v;
  size_t n;
  size_t cap;
  bool failed; /* first failure recorded in the request */
  /* The entries of a write usually name the same few gateways: the ones
   * found so far (ids point into the request's JSON), so that each is
   * looked up in the gateway map once per request, not once per entry. */
  const char *gw_id[PLAN_GW_MEMO];
  long gw[PLAN_GW_MEMO];
  size_t ngw;
};

static int plan_add(struct plan *p, size_t slot, bool verify)
{
  if (p->n == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 16;
    struct sim_target *n = realloc(p->v, ncap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    p->v = n;
    p->cap = ncap;
  }
  p->v[p->n++] = (struct sim_target){slot, verify};
  return 0;
}

static long gw_in_project(struct sim *sim, struct sim_req *r, const char *id)
{
  long g = sim_find_gw(sim, id);
  if (g < 0 || (long)sim->gws[g].project != r->project) {
    set_error(r, 404, "APIG.3030", "The instance does not exist,id:%s", id);
    return -1;
  }
  return g;
}

static long plan_gw(struct sim *sim, struct sim_req *r, struct plan *p,
                    const char *id)
{
  for (size_t i = 0; i < p->ngw; i++)
    if (!strcmp(p->gw_id[i], id))
      return p->gw[i];
  long g = gw_in_project(sim, r, id);
  if (g >= 0 && p->ngw < PLAN_GW_MEMO) {
    p->gw_id[p->ngw] = id;
    p->gw[p->ngw++] = g;
  }
  return g;
}

/* The slots one attach entry names; the first error goes to r. */
static bool attach_targets(struct sim *sim, struct sim_req *r, long cert,
                           yajl_val e, struct plan *p)
{
  const char *dom = YAJL_GET_STRING(obj_get(e, "domain"));
  yajl_val ids = obj_get(e, "instance_ids");
  yajl_val vf = obj_get(e, "verified_client_certificate_enabled");
  bool verify = vf ? YAJL_IS_TRUE(vf) : sim->certs[cert].trusted_root_ca;
  long run = sim_find_domain(sim, dom); /* once for all the instance ids */
  size_t before = p->n;
  for (size_t i = 0; ids && i < ids->u.array.len; i++) {
    long g = plan_gw(sim, r, p, YAJL_GET_STRING(ids->u.array.values[i]));
    if (g < 0)
      return false;
    long s = sim_domain_slot(sim, run, (size_t)g);
    if (s < 0) {
      set_error(r, 404, "APIG.3020", "The URL domain does not exist");
      return false;
    }
    if (plan_add(p, (size_t)s, verify))
      return false;
  }
  /* no instance_ids: every gateway of the project with that domain */
  for (size_t g = 0; !ids && g < sim->ngws; g++) {
    long s = (long)sim->gws[g].project == r->project
                 ? sim_domain_slot(sim, run, g)
                 : -1;
    if (s >= 0 && plan_add(p, (size_t)s, verify))
      return false;
  }
  if (p->n == before) {
    set_error(r, 404, "APIG.3020", "The URL domain does not exist");
    return false;
  }
  if (!sim_san_covers(&sim->certs[cert], dom)) {
    set_error(r, 400, "APIG.2103",
              "The certificate common name does not match the domain name");
    return false;
  }
  return true;
}

static bool detach_targets(struct sim *sim, struct sim_req *r, long cert,
                           yajl_val e, struct plan *p)
{
  const char *dom = YAJL_GET_STRING(obj_get(e, "domain"));
  yajl_val ids = obj_get(e, "instance_ids");
  long run = ids ? sim_find_domain(sim, dom) : -1;
  for (size_t i = 0; ids && i < ids->u.array.len; i++) {
    long g = plan_gw(sim, r, p, YAJL_GET_STRING(ids->u.array.values[i]));
    if (g < 0)
      return false;
    long s = sim_domain_slot(sim, run, (size_t)g);
    if (s >= 0 && sim->slots[s].cert == cert && plan_add(p, (size_t)s, false))
      return false;
  }
  if (ids)
    return true;
  /* no instance_ids: the domain's run in the certificate's sorted list */
  size_t n = sim->certs[cert].nslots;
  for (size_t i = sim_cert_domain_start(sim, (size_t)cert, dom); i < n; i++) {
    size_t s = sim_cert_slot(sim, (size_t)cert, i);
    if (strcmp(sim->slots[s].domain, dom) != 0)
      break;
    if (plan_add(p, s, false))
      return false;
  }
  return true;
}

/* Collect every (slot, flag) of the request. Atomic batches stop at the
 * first invalid entry; partial ones skip it and keep the first error. */
static bool plan_write(struct sim *sim, struct sim_req *r, long cert,
                       struct plan *p)
{
  yajl_val ds = obj_get(r->json, "domains");
  struct {
    int status;
    char code[sizeof(r->code)];
    char msg[sizeof(r->msg)];
  } first = {0};
  for (size_t i = 0; i < ds->u.array.len; i++) {
    yajl_val e = ds->u.array.values[i];
    size_t mark = p->n;
    bool good = r->op == SIM_OP_ATTACH ? attach_targets(sim, r, cert, e, p)
                                       : detach_targets(sim, r, cert, e, p);
    if (good)
      continue;
    p->n = mark; /* drop the entry's partial targets */
    if (!first.status) {
      first.status = r->status;
      memcpy(first.code, r->code, sizeof(first.code));
      memcpy(first.msg, r->msg, sizeof(first.msg));
    }
    if (sim->settings.atomic_batches)
      break;
  }
  if (!first.status)
    return true;
  /* report the first failing entry, whatever came after it */
  r->status = first.status;
  memcpy(r->code, first.code, sizeof(first.code));
  memcpy(r->msg, first.msg, sizeof(first.msg));
  p->failed = true;
  return false;
}

static size_t count_noops(const struct sim *sim, long cert,
                          const struct plan *p)
{
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++) {
    const struct sim_slot *s = &sim->slots[p->v[i].slot];
    if (s->cert == cert && s->verify == p->v[i].verify)
      n++;
  }
  return n;
}

static void apply_write(struct sim *sim, struct sim_req *r, long cert)
{
  struct plan p = {0};
  char saved_code[32], saved_msg[256];
  int saved_status = 0;
  bool ok = plan_write(sim, r, cert, &p);
  if (!ok) {
    saved_status = r->status;
    memcpy(saved_code, r->code, sizeof(saved_code));
    memcpy(saved_msg, r->msg, sizeof(saved_msg));
  }
  if (!ok && (sim->settings.atomic_batches || p.n == 0))
    goto out;
  if (r->op == SIM_OP_DETACH && p.n == 0) {
    set_error(r, 400, "APIG.2000", "no valid domain name");
    goto out;
  }
  size_t noops = r->op == SIM_OP_ATTACH ? count_noops(sim, cert, &p) : 0;
  if (noops && sim->settings.noop_write_error) {
    set_error(r, 400, "APIG.3305",
              "The URL domain name already exists (already bound to this "
              "certificate)");
    ok = true; /* the error is final, not a saved one */
    goto out;
  }
  size_t changed =
      sim_slots_set(sim, p.v, p.n, r->op == SIM_OP_ATTACH ? cert : -1);
  sim->stats.writes_total++;
  if (!changed)
    sim->stats.writes_noop++;
  if (ok)
    r->status = 204;
out:
  if (!ok) {
    r->status = saved_status;
    memcpy(r->code, saved_code, sizeof(saved_code));
    memcpy(r->msg, saved_msg, sizeof(saved_msg));
  }
  free(p.v);
}

/* ---- reads ------------------------------------------------------------- */

struct list_ctx {
  struct sim *sim;
  const size_t *slots;
  const bool *vflags;
  size_t total;
  size_t offset;
  size_t size;
};

/* A slot's list item rendered once with verify false: json[vpos..vpos+5)
 * is the "false" that reads "true" when the binding is verified (the only
 * bytes that depend on the binding's state; not even the certificate
 * shows in an item). */
struct sim_item {
  uint32_t len;
  uint32_t vpos;
  char json[];
};

/* Rendered with yajl_gen, once per slot (the page's envelope is the only
 * text written here). */
static struct sim_item *make_item(const struct sim *sim, size_t slot)
{
  const struct sim_slot *s = &sim->slots[slot];
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return NULL;
  const unsigned char *buf;
  size_t vkey = 0, n = 0;
  int rc = 0;
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_str(g, "id", s->id);
  rc |= sim_gen_kv_str(g, "url_domain", s->domain);
  rc |= sim_gen_kv_int(g, "status", 3);
  rc |= sim_gen_kv_str(g, "min_ssl_version", "TLSv1.2");
  rc |= sim_gen_kv_bool(g, "is_http_redirect_to_https", false);
  rc |= sim_gen_str(g, "verified_client_certificate_enabled");
  if (yajl_gen_get_buf(g, &buf, &vkey) != yajl_gen_status_ok)
    rc = -EINVAL;
  rc |= yajl_gen_bool(g, false) == yajl_gen_status_ok ? 0 : -EINVAL;
  /* reference §0.11 / TF PR #7896: these come back empty */
  rc |= sim_gen_kv_str(g, "ssl_id", "");
  rc |= sim_gen_kv_str(g, "ssl_name", "");
  rc |= sim_gen_kv_int(g, "ingress_http_port", -1);
  rc |= sim_gen_kv_int(g, "ingress_https_port", -1);
  rc |= sim_gen_kv_str(g, "instance_id", sim->gws[s->gw].instance_id);
  rc |= sim_gen_kv_str(g, "api_group_id", s->group_id);
  rc |= sim_gen_kv_str(g, "api_group_name", s->group_name);
  yajl_gen_map_close(g);
  if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
    rc = -EINVAL;
  struct sim_item *it = NULL;
  size_t v = vkey + (vkey < n && buf[vkey] == ':'); /* yajl: ':' with value */
  if (!rc && n <= UINT32_MAX && v + 5 <= n && !memcmp(buf + v, "false", 5))
    it = malloc(sizeof(*it) + n);
  if (it) {
    it->len = (uint32_t)n;
    it->vpos = (uint32_t)v;
    memcpy(it->json, buf, n);
  }
  yajl_gen_free(g);
  return it;
}

/* The slot's cached item, made on first use. Callers hold world_rw for
 * reading, so the slots' strings are stable; a racing renderer's copy is
 * equal, so the loser of the CAS frees its own and uses the winner's. */
static const struct sim_item *slot_item(struct sim *sim, size_t slot)
{
  struct sim_item *it =
      atomic_load_explicit(&sim->items[slot], memory_order_acquire);
  if (it)
    return it;
  struct sim_item *mine = make_item(sim, slot);
  if (!mine)
    return NULL;
  if (atomic_compare_exchange_strong_explicit(&sim->items[slot], &it, mine,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
    return mine;
  free(mine);
  return it;
}

/* Every slot's item, made when the world is loaded (start, reset) rather
 * than on its first listing: a rollout lists every binding once, right after
 * its writes, and yajl_gen (~0.7 us per item) was then the simulator's
 * largest cost, on the cores it shares with the client under test. A slot whose
 * item cannot be made now is made on first use, as before. */
static void prerender_items(struct sim *sim)
{
  for (size_t i = 0; i < sim->nslots; i++)
    (void)slot_item(sim, i);
}

/* {"total":N,"size":M,"bound_domains":[items]} assembled from the cached
 * items: the bytes yajl_gen (no beautify: no spaces, "%lld" integers) made
 * when it rendered the whole page. */
static int render_page(struct sim *sim, const struct list_ctx *c, char **out,
                       size_t *len)
{
  const struct sim_item **items =
      malloc((c->size ? c->size : 1) * sizeof(*items));
  if (!items)
    return -ENOMEM;
  char head[96];
  int nh = snprintf(head, sizeof(head),
                    "{\"total\":%zu,\"size\":%zu,\"bound_domains\":[", c->total,
                    c->size);
  size_t n = (size_t)nh + 2 + (c->size ? c->size - 1 : 0);
  for (size_t i = 0; i < c->size; i++) {
    items[i] = slot_item(sim, c->slots[c->offset + i]);
    if (!items[i]) {
      free(items);
      return -ENOMEM;
    }
    n += items[i]->len - (c->vflags[c->offset + i] ? 1 : 0);
  }
  char *buf = malloc(n + 1), *w = buf;
  if (!buf) {
    free(items);
    return -ENOMEM;
  }
  memcpy(w, head, (size_t)nh);
  w += nh;
  for (size_t i = 0; i < c->size; i++) {
    const struct sim_item *it = items[i];
    if (i)
      *w++ = ',';
    if (c->vflags[c->offset + i]) {
      memcpy(w, it->json, it->vpos);
      w += it->vpos;
      memcpy(w, "true", 4);
      w += 4;
      memcpy(w, it->json + it->vpos + 5, it->len - it->vpos - 5);
      w += it->len - it->vpos - 5;
    } else {
      memcpy(w, it->json, it->len);
      w += it->len;
    }
  }
  *w++ = ']';
  *w++ = '}';
  *w = '\0';
  free(items);
  *out = buf;
  *len = n;
  return 0;
}

/* offset < 0 -> 0; limit <= 0 -> 20, > 500 -> 500 (reference §1.5). */
static bool query_long(struct sim_req *r, const char *name, long long def,
                       long long *out)
{
  const char *v =
      MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
  *out = def;
  if (!v || !*v)
    return true;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (*end || errno) {
    bad_param(r, name);
    return false;
  }
  *out = x;
  return true;
}

static void filter_domain(struct sim *sim, const char *want, size_t *slots,
                          bool *vf, size_t *n)
{
  size_t k = 0;
  for (size_t i = 0; i < *n; i++)
    if (!strcmp(sim->slots[slots[i]].domain, want)) {
      slots[k] = slots[i];
      vf[k++] = vf[i];
    }
  *n = k;
}

static void do_list(struct sim *sim, struct sim_req *r, long cert)
{
  long long off, lim;
  if (!query_long(r, "offset", 0, &off) || !query_long(r, "limit", 20, &lim))
    return;
  off = off < 0 ? 0 : off;
  lim = lim <= 0 ? 20 : lim > 500 ? 500 : lim;
  size_t *slots;
  bool *vf;
  size_t n;
  if (sim_visible(sim, (size_t)cert, &slots, &vf, &n) != 0) {
    set_error(r, 500, "APIG.9999", "System error");
    return;
  }
  const char *want =
      MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "url_domain");
  if (want && *want)
    filter_domain(sim, want, slots, vf, &n);
  struct list_ctx *c = malloc(sizeof(*c));
  if (!c) {
    free(slots);
    free(vf);
    set_error(r, 500, "APIG.9999", "System error");
    return;
  }
  *c = (struct list_ctx){sim, slots, vf, n, 0, 0};
  c->offset = (unsigned long long)off < n ? (size_t)off : n;
  c->size = n - c->offset < (size_t)lim ? n - c->offset : (size_t)lim;
  r->list = c; /* rendered by render_list() outside sim->mu */
  r->status = 200;
}

static void free_list(struct sim_req *r)
{
  if (!r->list)
    return;
  free((void *)r->list->slots);
  free((void *)r->list->vflags);
  free(r->list);
  r->list = NULL;
}

/* The page was chosen under sim->mu; its JSON is built under the world
 * read lock only, so list responses render in parallel on all threads
 * (the strings it reads change only on /__sim/reset, a writer). */
static void render_list(struct sim *sim, struct sim_req *r)
{
  pthread_rwlock_rdlock(&sim->world_rw);
  if (r->generation == sim->generation) {
    char *body;
    size_t len;
    if (render_page(sim, r->list, &body, &len) == 0) {
      free(r->resp);
      r->resp = body;
      r->resp_len = len;
      r->status = 200;
    } else
      set_error(r, 500, "APIG.9999", "System error");
  } else
    set_error(r, 503, "APIG.9999", "System error (simulator was reset)");
  pthread_rwlock_unlock(&sim->world_rw);
  free_list(r);
  if (r->status >= 400)
    build_error_body(r);
}

/* ---- arrival (phase A) and completion (phase B) ------------------------ */

static long path_cert(struct sim *sim, struct sim_req *r)
{
  long c = sim_find_cert(sim, r->cert_id);
  if (c < 0 || (long)sim->certs[c].project != r->project)
    return -1;
  return c;
}

static void mark_write(struct sim *sim, struct sim_req *r)
{
  long c = path_cert(sim, r);
  if (c < 0)
    return; /* 404 follows in phase B */
  struct sim_cert *cert = &sim->certs[c];
  r->write_marked = true;
  if (++cert->writes_in_flight > cert->peak_writes)
    cert->peak_writes = cert->writes_in_flight;
  if (cert->writes_in_flight > 1 &&
      sim_rng_hit(&sim->rng, sim->settings.overlap_fail_rate)) {
    sim->stats.overlap_rejections++;
    set_error(r, 500, "APIG.3500", "Failed to synchronize data to etcd");
  }
}

static void unmark_write(struct sim *sim, struct sim_req *r)
{
  if (!r->write_marked)
    return;
  r->write_marked = false;
  if (r->generation != sim->generation)
    return; /* the world was reset under this request */
  long c = path_cert(sim, r);
  if (c >= 0 && sim->certs[c].writes_in_flight > 0)
    sim->certs[c].writes_in_flight--;
}

static void project_mismatch(struct sim_req *r, bool token)
{
  if (token)
    set_error(r, 401, "APIG.0307", "The token must be updated");
  else
    set_error(r, 401, "APIG.0301",
              "Incorrect IAM authentication information: the project id "
              "does not belong to this credential");
}

static unsigned op_perm(int op)
{
  return op == SIM_OP_LIST     ? SIM_PERM_LIST
         : op == SIM_OP_ATTACH ? SIM_PERM_ATTACH
         : op == SIM_OP_DETACH ? SIM_PERM_DETACH
         : op == SIM_OP_CREATE || op == SIM_OP_UPDATE || op == SIM_OP_DELETE
             ? SIM_PERM_CERTS
             : SIM_PERM_SHOW;
}

static void arrive_apig(struct sim *sim, struct sim_req *r, const char *method)
{
  struct sim_req_view rv = {r->conn,      method,  r->raw_path,
                            r->raw_query, r->body, r->body_len};
  struct sim_auth_result a;
  sim_auth_check(sim, &rv, &a);
  long pp = sim_find_project(sim, r->project_id);
  if (a.status) {
    set_error(r, a.status, a.code, "%s", a.msg);
    return;
  }
  if (pp != a.project) {
    project_mismatch(r, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                    "Authorization") == NULL);
    return;
  }
  r->project = pp;
  if (throttled(sim, &sim->projects[pp])) {
    sim->stats.throttled++;
    set_error(r, 429, "APIG.0308",
              "The throttling threshold has been reached: policy user over "
              "ratelimit,limit:%g,time:1 second",
              sim->faults.throttle_rps);
    return;
  }
  if (!(a.perms & op_perm(r->op))) {
    set_error(r, 403, "APIG.1005", "No permissions to request this method");
    return;
  }
  if (inject_error(sim, r))
    return;
  if (is_write(r->op) && parse_write_body(sim, r))
    mark_write(sim, r);
}

/* The front door authenticates before it routes, so a signed request to
 * any path (e.g. the published signing vectors) is verified first. */
static void arrive_other(struct sim *sim, struct sim_req *r, const char *method)
{
  struct sim_req_view rv = {r->conn,      method,  r->raw_path,
                            r->raw_query, r->body, r->body_len};
  struct sim_auth_result a;
  sim_auth_check(sim, &rv, &a);
  if (a.status)
    set_error(r, a.status, a.code, "%s", a.msg);
  else
    set_error(r, 404, "APIG.0101",
              "The API does not exist or has not been published in the "
              "environment");
}

/* Per connection: whether its TLS session was counted in the stats (on
 * its first request, once the handshake is done). */
struct sim_conn {
  bool tls_counted;
};

/* The stats count TLS connections, and those that resumed a session, on
 * their first API request (admin calls are not the API's traffic).
 * Called with the world locked. */
static void count_tls_connection(struct sim *sim, struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *sc =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  struct sim_conn *c = sc ? sc->socket_context : NULL;

  if (!c || c->tls_counted || !ci || !ci->tls_session)
    return;
  c->tls_counted = true;
  sim->stats.tls_connections++;
  if (gnutls_session_is_resumed(ci->tls_session))
    sim->stats.tls_resumed++;
}

static void arrive(struct sim *sim, struct sim_req *r, const char *method)
{
  count_tls_connection(sim, r->conn);
  sim->stats.requests++;
  if (++sim->stats.in_flight > sim->stats.peak_in_flight)
    sim->stats.peak_in_flight = sim->stats.in_flight;
  r->counted = true;
  if (r->too_large)
    set_error(r, 413, "APIG.0201", "Request entity too large");
  else if (r->op == SIM_OP_OTHER)
    arrive_other(sim, r, method);
  else if (r->op == SIM_OP_TOKEN)
    inject_error(sim, r);
  else
    arrive_apig(sim, r, method);
  draw_transport_faults(sim, r);
  r->delay_ns = draw_latency_ms(sim) * 1000000;
}

static void finish_token(struct sim *sim, struct sim_req *r)
{
  const char *nc =
      MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "nocatalog");
  free(r->resp);
  r->resp = NULL;
  r->status = sim_iam_token(sim, r->body, r->body_len, !(nc && *nc),
                            &r->subject_token, &r->resp, &r->resp_len);
}

static void take_reply(struct sim_req *r, struct sim_cert_reply *x)
{
  r->status = x->status;
  memcpy(r->code, x->code, sizeof(r->code));
  memcpy(r->msg, x->msg, sizeof(r->msg));
  free(r->resp);
  r->resp = x->body;
  r->resp_len = x->body_len;
}

static bool is_cert_op(int op)
{
  return op == SIM_OP_CERTS || op == SIM_OP_CREATE || op == SIM_OP_UPDATE ||
         op == SIM_OP_DELETE;
}

/* The certificates API (sim_certs.c); its writes take the reset faults
 * like binding writes do. Show reads deleted certificates too: a delete
 * is visible to reads only after the visibility delay. */
static void finish_certs(struct sim *sim, struct sim_req *r)
{
  struct sim_cert_reply x = {0};
  if (r->op == SIM_OP_SHOW) {
    long c = sim_find_cert_any(sim, r->cert_id);
    if (c < 0 || (long)sim->certs[c].project != r->project)
      set_error(r, 404, "APIG.3025", "The certificate does not exist");
    else {
      sim_certs_show(sim, c, &x);
      take_reply(r, &x);
    }
    return;
  }
  if (r->op != SIM_OP_CERTS && r->reset_before) {
    r->closed = true;
    return;
  }
  sim_certs_handle(sim, r->op, r->project, r->cert_id, r->body, r->body_len,
                   r->conn, &x);
  take_reply(r, &x);
  if (r->op != SIM_OP_CERTS)
    r->closed = r->reset_after;
}

static void finish_apig(struct sim *sim, struct sim_req *r)
{
  if (is_cert_op(r->op) || r->op == SIM_OP_SHOW) {
    finish_certs(sim, r);
    return;
  }
  long c = path_cert(sim, r);
  if (c < 0) {
    set_error(r, 404, "APIG.3025", "The certificate does not exist");
    return;
  }
  if (r->op == SIM_OP_LIST) {
    do_list(sim, r, c);
  } else if (r->reset_before) {
    r->closed = true;
  } else {
    apply_write(sim, r, c);
    r->closed = r->reset_after;
  }
}

/* A request stops counting as in flight once its response is decided, so
 * a client's next request never overlaps it in the statistics. */
static void release_request(struct sim *sim, struct sim_req *r)
{
  if (r->counted && r->generation == sim->generation &&
      sim->stats.in_flight > 0)
    sim->stats.in_flight--;
  r->counted = false;
}

static void finish(struct sim *sim, struct sim_req *r)
{
  if (r->generation != sim->generation)
    set_error(r, 503, "APIG.9999", "System error (simulator was reset)");
  else if (r->status == 0 && r->op == SIM_OP_TOKEN)
    finish_token(sim, r);
  else if (r->status == 0)
    finish_apig(sim, r);
  /* reads and failed writes: a reset fault still drops the connection */
  if (r->reset_before || r->reset_after)
    r->closed = true;
  unmark_write(sim, r);
  release_request(sim, r);
  /* IAM errors come with their own (Keystone-style) body and no code */
  if (r->status >= 400 && !r->closed && r->code[0])
    build_error_body(r);
  if (r->closed)
    sim->stats.resets++;
  sim_stats_count(sim, r->op, r->closed ? 0 : r->status);
}

/* ---- admin ------------------------------------------------------------- */

static bool is_loopback(struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!ci || !ci->client_addr)
    return false;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

static int gen_state(yajl_gen g, const void *arg)
{
  return sim_state_gen(g, arg);
}

static int gen_dataplane(yajl_gen g, const void *arg)
{
  return sim_dataplane_gen(g, arg);
}

static int gen_stats(yajl_gen g, const void *arg)
{
  return sim_stats_gen(g, arg);
}

static int gen_faults(yajl_gen g, const void *arg)
{
  return sim_faults_gen(g, arg);
}

static int gen_settings(yajl_gen g, const void *arg)
{
  return sim_settings_gen(g, arg);
}

static int gen_count(yajl_gen g, const void *arg)
{
  yajl_gen_map_open(g);
  int rc = sim_gen_kv_int(g, "revoked", (long long)*(const size_t *)arg);
  yajl_gen_map_close(g);
  return rc;
}

static yajl_val admin_body(struct sim_req *r)
{
  yajl_val v = r->body_len ? sim_json_parse(r->body, r->body_len)
                           : sim_json_parse("{}", 2);
  if (!v || !YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    set_error(r, 400, "SIM.0400", "body must be a JSON object");
    return NULL;
  }
  return v;
}

static void admin_post_conf(struct sim *sim, struct sim_req *r, bool faults)
{
  yajl_val v = admin_body(r);
  if (!v)
    return;
  char err[200];
  int rc;
  if (faults) {
    struct sim_faults f;
    sim_faults_default(&f);
    rc = sim_faults_parse(v, &f, err, sizeof(err));
    if (!rc)
      sim->faults = f;
  } else {
    rc = sim_settings_parse(v, &sim->settings, err, sizeof(err));
  }
  yajl_tree_free(v);
  if (rc)
    set_error(r, 400, "SIM.0400", "%s", err);
  else if (faults)
    respond_json(r, 200, gen_faults, &sim->faults);
  else
    respond_json(r, 200, gen_settings, &sim->settings);
}

static void admin_revoke(struct sim *sim, struct sim_req *r)
{
  yajl_val v = admin_body(r);
  if (!v)
    return;
  yajl_val p = obj_get(v, "project");
  long pi = -1;
  if (p && (!YAJL_IS_STRING(p) ||
            (pi = sim_find_project(sim, YAJL_GET_STRING(p))) < 0)) {
    set_error(r, 404, "SIM.0404", "unknown project");
  } else {
    size_t n = sim_tokens_revoke(sim, pi);
    respond_json(r, 200, gen_count, &n);
  }
  yajl_tree_free(v);
}

static void admin(struct sim *sim, struct sim_req *r, const char *url,
                  const char *method)
{
  bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
  char err[200];
  if (!is_loopback(r->conn))
    set_error(r, 403, "SIM.0403", "admin endpoints are loopback only");
  else if (get && !strcmp(url, "/__sim/state"))
    respond_json(r, 200, gen_state, sim);
  else if (get && !strcmp(url, "/__sim/stats"))
    respond_json(r, 200, gen_stats, sim);
  else if (get && !strcmp(url, "/__sim/dataplane"))
    respond_json(r, 200, gen_dataplane, sim);
  else if (get && !strcmp(url, "/__sim/faults"))
    respond_json(r, 200, gen_faults, &sim->faults);
  else if (get && !strcmp(url, "/__sim/settings"))
    respond_json(r, 200, gen_settings, &sim->settings);
  else if (post && !strcmp(url, "/__sim/faults"))
    admin_post_conf(sim, r, true);
  else if (post && !strcmp(url, "/__sim/settings"))
    admin_post_conf(sim, r, false);
  else if (post && !strcmp(url, "/__sim/tokens/revoke"))
    admin_revoke(sim, r);
  else if (post && !strcmp(url, "/__sim/reset")) {
    pthread_rwlock_wrlock(&sim->world_rw);
    int rc = sim_reset(sim, err, sizeof(err));
    if (!rc)
      prerender_items(sim);
    pthread_rwlock_unlock(&sim->world_rw);
    if (rc)
      set_error(r, 500, "SIM.0500", "reset failed: %s", err);
    else
      r->status = 204;
  } else
    set_error(r, 404, "SIM.0404", "no such admin endpoint");
  if (r->status >= 400)
    build_error_body(r);
  sim_stats_count(sim, SIM_OP_ADMIN, r->status);
}

/* ---- MHD glue ---------------------------------------------------------- */

static ssize_t slow_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct sim_req *r = cls;
  if (pos >= r->resp_len)
    return MHD_CONTENT_READER_END_OF_STREAM;
  if (r->slow_paused && !stopping(r->sim)) {
    /* between chunks: park the connection, the scheduler wakes it */
    r->slow_paused = false;
    MHD_suspend_connection(r->conn);
    if (sim_loop_add(r->loop,
                     sim_sched_now_ns() + r->slow_interval_ms * 1000000,
                     r->conn) != 0)
      MHD_resume_connection(r->conn);
    return 0;
  }
  size_t n = r->resp_len - (size_t)pos;
  n = n < r->slow_chunk ? n : r->slow_chunk;
  n = n < max ? n : max;
  memcpy(buf, r->resp + pos, n);
  r->slow_paused = true;
  return (ssize_t)n;
}

static int add_headers(struct sim_req *r, struct MHD_Response *resp,
                       int retry_after)
{
  int ok = MHD_add_response_header(resp, "X-Request-Id", r->request_id);
  if (r->resp)
    ok &= MHD_add_response_header(resp, "Content-Type",
                                  "application/json;charset=UTF-8");
  if (r->subject_token)
    ok &= MHD_add_response_header(resp, "X-Subject-Token", r->subject_token);
  if (r->status == 429 && retry_after > 0) {
    char v[16];
    snprintf(v, sizeof(v), "%d", retry_after);
    ok &= MHD_add_response_header(resp, "Retry-After", v);
  }
  return ok == MHD_YES ? 0 : -ENOMEM;
}

static enum MHD_Result send_response(struct sim_req *r, int retry_after)
{
  struct MHD_Response *resp;
  if (r->resp && r->slow && r->resp_len) {
    resp = MHD_create_response_from_callback(r->resp_len, 1024, slow_reader, r,
                                             NULL);
  } else if (r->resp) {
    resp = MHD_create_response_from_buffer(r->resp_len, r->resp,
                                           MHD_RESPMEM_PERSISTENT);
  } else {
    resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  }
  if (!resp)
    return MHD_NO;
  if (add_headers(r, resp, retry_after) != 0) {
    MHD_destroy_response(resp);
    return MHD_NO;
  }
  enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void log_request(struct sim_req *r, const char *method)
{
  double ms = (double)(sim_sched_now_ns() - r->start_ns) / 1e6;
  /* paths hold only project and certificate ids; never headers/bodies */
  /* at: when the request arrived, in ms of CLOCK_MONOTONIC (so that tests
   * can measure gaps between requests on the server's side) */
  fprintf(stderr, "apig-sim: %s %s -> %d %s %.1fms id=%s at=%.3f\n", method,
          r->raw_path, r->closed ? 0 : r->status, r->code, ms, r->request_id,
          (double)r->start_ns / 1e6);
}

static bool suspend_for(struct sim *sim, struct sim_req *r)
{
  if (r->delay_ns <= 0 || stopping(sim))
    return false;
  MHD_suspend_connection(r->conn);
  if (sim_loop_add(r->loop, sim_sched_now_ns() + r->delay_ns, r->conn)) {
    MHD_resume_connection(r->conn);
    return false;
  }
  return true;
}

/* A held request waits until the fault set no longer holds its op (or the
 * world is reset, or the server stops); it looks again every HOLD_POLL_NS.
 * Held, its response is undecided: a write stays in progress. */
#define HOLD_POLL_NS 1000000
static bool still_held(struct sim *sim, struct sim_req *r)
{
  if (!r->held)
    return false;
  lock(sim);
  r->held = !stopping(sim) && r->generation == sim->generation &&
            sim->faults.hold.rate > 0 && op_matches(sim->faults.hold.op, r->op);
  unlock(sim);
  if (!r->held)
    return false;
  r->delay_ns = HOLD_POLL_NS;
  return suspend_for(sim, r);
}

static void append_body(struct sim_req *r, const char *data, size_t n)
{
  if (r->too_large || r->body_len + n > MAX_BODY) {
    r->too_large = true;
    return;
  }
  if (r->body_len + n + 1 > r->body_cap) {
    size_t ncap = r->body_cap ? r->body_cap : 1024;
    while (ncap < r->body_len + n + 1)
      ncap *= 2;
    char *nb = realloc(r->body, ncap);
    if (!nb) {
      r->too_large = true;
      return;
    }
    r->body = nb;
    r->body_cap = ncap;
  }
  memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
  r->body[r->body_len] = '\0';
}

static void new_request_id(struct sim *sim, struct sim_req *r)
{
  uint64_t n = ++sim->request_counter;
  snprintf(r->request_id, sizeof(r->request_id), "%016" PRIx64 "%016" PRIx64,
           sim_rng_next(&sim->rng), n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct sim_loop *loop = cls;
  struct sim *sim = loop->sim;
  struct sim_req *r = *con_cls;
  if (!r)
    return MHD_NO;
  if (!r->seen_first) {
    r->seen_first = true;
    r->conn = conn;
    return MHD_YES;
  }
  if (*upload_size) {
    append_body(r, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->phase == PH_RECEIVING) {
    r->op = route(r, url, method);
    lock(sim);
    r->generation = sim->generation;
    new_request_id(sim, r);
    if (r->admin) {
      admin(sim, r, url, method);
      unlock(sim);
      r->phase = PH_DONE;
      return send_response(r, 0);
    }
    arrive(sim, r, method);
    unlock(sim);
    if (suspend_for(sim, r)) {
      r->phase = PH_WAITING;
      return MHD_YES;
    }
  }
  if (r->phase == PH_DONE)
    return MHD_YES;
  if (still_held(sim, r)) {
    r->phase = PH_WAITING;
    return MHD_YES;
  }
  r->phase = PH_DONE;
  lock(sim);
  finish(sim, r);
  int retry_after = sim->faults.retry_after_s;
  unlock(sim);
  if (r->list && !r->closed)
    render_list(sim, r);
  free_list(r);
  if (sim->opt.log_requests)
    log_request(r, method);
  if (r->closed)
    return MHD_NO; /* drop the connection: the client sees a reset */
  return send_response(r, retry_after);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  struct sim_loop *loop = cls;
  struct sim_req *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->sim = loop->sim;
  r->loop = loop;
  r->conn = conn;
  r->project = -1;
  r->start_ns = sim_sched_now_ns();
  r->uri = strdup(uri);
  const char *q = strchr(uri, '?');
  r->raw_path = q ? strndup(uri, (size_t)(q - uri)) : strdup(uri);
  r->raw_query = strdup(q ? q + 1 : "");
  if (!r->uri || !r->raw_path || !r->raw_query) {
    free(r->uri);
    free(r->raw_path);
    free(r->raw_query);
    free(r);
    return NULL;
  }
  return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct sim *sim = ((struct sim_loop *)cls)->sim;
  struct sim_req *r = *con_cls;
  if (!r)
    return;
  lock(sim);
  unmark_write(sim, r);
  release_request(sim, r);
  unlock(sim);
  free_list(r);
  yajl_tree_free(r->json);
  free(r->uri);
  free(r->raw_path);
  free(r->raw_query);
  free(r->body);
  free(r->project_id);
  free(r->cert_id);
  free(r->resp);
  free(r->subject_token);
  free(r);
  *con_cls = NULL;
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof(host))
    return -EINVAL;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end || port < 0 || port > 65535)
    return -EINVAL;
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof(host), "127.0.0.1");
  return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

/* One listening socket per loop, all on the same address with
 * SO_REUSEPORT: the kernel spreads connections evenly over the loops
 * (MHD's own thread pool lets whichever thread wakes first accept them,
 * which at 1,024 connections left one thread with most of them). */
static int listen_socket(const struct sockaddr_in *sa, int *fd_out)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  int rc = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
      bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) || listen(fd, 4096))
    rc = -errno;
  if (rc) {
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

/* GnuTLS's defaults with AES-128-GCM first and the server's order used:
 * TLS 1.3 then runs its key schedule on SHA-256 (SHA-NI on x86) instead of
 * SHA-384 (software), which made 1,024 fresh handshakes stall requests on
 * already open connections for ~0.3 s; X25519 first, since the server's
 * order now counts (clients send an X25519 key share: no retry round).
 * Every client still gets a suite and group it offers; nothing is
 * disabled. */
#define TLS_PRIORITIES                                                         \
  "NORMAL:%SERVER_PRECEDENCE:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:"     \
  "+AES-256-GCM:+AES-128-CCM:+AES-256-CCM:+AES-128-CBC:+AES-256-CBC:"          \
  "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"                \
  "+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:"            \
  "+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192"

/* MHD's per-connection pool (default 32 KB) is zeroed on every keep-alive
 * request; 16 KB still holds any request head a client sends here
 * (tokens are ~100 bytes, AK/SK Authorization ~300) and the response
 * head. */
#define CONN_MEMORY (16u * 1024)

/* SO_REUSEPORT would also let a second apig-sim (same user) join a port
 * that one already serves. So the port is claimed first with a plain
 * socket: in use -> refused, as before; port 0 -> a free port, which the
 * loops' sockets then bind (the probe is closed just before). */
static int claim_port(struct sockaddr_in *sa)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  socklen_t len = sizeof(*sa);
  int rc = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
                   bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) ||
                   getsockname(fd, (struct sockaddr *)sa, &len)
               ? -errno
               : 0;
  close(fd);
  return rc;
}

/* Each connection gets its struct sim_conn (count_tls_connection), freed
 * when it closes. HTTPS connections also get TLS 1.3 session tickets, as
 * public HTTPS endpoints issue them (MHD leaves them off): a client's next
 * connection resumes the session instead of verifying the certificate
 * chain again. The session exists here, its handshake has not run yet. */
static void on_connection(void *cls, struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
  struct sim *sim = cls;
  const union MHD_ConnectionInfo *ci;

  if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    free(*socket_context);
    *socket_context = NULL;
    return;
  }
  if (code != MHD_CONNECTION_NOTIFY_STARTED)
    return;
  *socket_context = calloc(1, sizeof(struct sim_conn)); /* NULL: uncounted */
  if (!sim->ticket_key.data)
    return;
  ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (ci && ci->tls_session)
    (void)gnutls_session_ticket_enable_server(ci->tls_session,
                                              &sim->ticket_key);
}

static struct MHD_Daemon *start_daemon(struct sim *sim, struct sim_loop *loop,
                                       int fd, const char *tls_cert_pem,
                                       const char *tls_key_pem, unsigned limit)
{
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
  if (tls_cert_pem)
    flags |= MHD_USE_TLS;
  if (sim->opt.log_requests)
    flags |= MHD_USE_ERROR_LOG;
  struct MHD_OptionItem tls[] = {
      {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)tls_cert_pem},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tls_key_pem},
      {MHD_OPTION_HTTPS_PRIORITIES, 0,
       (void *)(sim->opt.tls_priorities ? sim->opt.tls_priorities
                                        : TLS_PRIORITIES)},
      {MHD_OPTION_END, 0, NULL}};
  struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
  return MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, loop, MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
      MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)120, MHD_OPTION_URI_LOG_CALLBACK, on_uri, loop,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, loop,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, sim, MHD_OPTION_ARRAY,
      tls_cert_pem ? tls : none, MHD_OPTION_END);
}

int sim_http_start(struct sim *sim, const char *tls_cert_pem,
                   const char *tls_key_pem, uint16_t *port)
{
  struct sockaddr_in sa;
  if (parse_listen(sim->opt.listen, &sa) != 0)
    return -EINVAL;
  size_t n = sim->opt.threads ? sim->opt.threads : 2;
  sim->loops = calloc(n, sizeof(*sim->loops));
  if (!sim->loops)
    return -ENOMEM;
  sim->nloops = n;
  for (size_t i = 0; i < n; i++) {
    sim->loops[i].sim = sim;
    sim->loops[i].epfd = sim->loops[i].wake_fd = -1;
  }
  int rc = claim_port(&sa);
  if (rc)
    return rc;
  if (tls_cert_pem && gnutls_session_ticket_key_generate(&sim->ticket_key))
    return -ENOMEM;
  prerender_items(sim);
  for (size_t i = 0; i < n; i++) {
    struct sim_loop *l = &sim->loops[i];
    int fd = -1;
    rc = listen_socket(&sa, &fd);
    if (rc)
      return rc;
    l->daemon = start_daemon(sim, l, fd, tls_cert_pem, tls_key_pem,
                             (unsigned)(8192 / n));
    if (!l->daemon) {
      close(fd);
      return -EADDRNOTAVAIL;
    }
    rc = sim_loop_start(l, l->daemon, &sim->stopping);
    if (rc)
      return rc;
  }
  *port = ntohs(sa.sin_port);
  return 0;
}

void sim_http_stop(struct sim *sim)
{
  __atomic_store_n(&sim->stopping, true, __ATOMIC_RELEASE);
  /* MHD must not be stopped with suspended connections: each loop resumes
   * its own before it exits */
  for (size_t i = 0; i < sim->nloops; i++)
    sim_loop_stop(&sim->loops[i]);
  for (size_t i = 0; i < sim->nloops; i++)
    if (sim->loops[i].daemon)
      MHD_stop_daemon(sim->loops[i].daemon);
  free(sim->loops);
  sim->loops = NULL;
  sim->nloops = 0;
  gnutls_free(sim->ticket_key.data);
  sim->ticket_key.data = NULL;
}
