/* SPDX-License-Identifier: MIT */
/* Authentication as the APIG front door does it: IAM tokens (X-Auth-Token,
 * issued by POST /v3/auth/tokens) and AK/SK SDK-HMAC-SHA256 signatures,
 * verified with certbind's own signing code (api/sign.h), with the
 * consecutive-failure lockout of docs/apig-api.md §7. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sign.h"
#include "sim.h"

#define MAX_SIGNED_HEADERS 32
#define IAM_PREFIX "Incorrect IAM authentication information: "

static void fail(struct sim_auth_result *out, int status, const char *code,
                 const char *msg)
{
  out->status = status;
  out->code = code;
  snprintf(out->msg, sizeof(out->msg), "%s", msg);
}

/* ---- AK/SK ------------------------------------------------------------- */

/* Count one failure against a known AK; more than lockout_failures in a
 * row locks it for lockout_ms. */
static void ak_failed(struct sim *sim, struct sim_cred *c)
{
  c->fails++;
  if (c->fails > sim->settings.lockout_failures) {
    c->locked_until_ms = sim_mono_ms() + sim->settings.lockout_ms;
    c->fails = 0;
  }
}

static int collect_headers(const struct sim_req_view *rv, char *names,
                           struct sign_header *hs, size_t *n, bool *have_date)
{
  *n = 0;
  *have_date = false;
  for (char *save = NULL, *tok = strtok_r(names, ";", &save); tok;
       tok = strtok_r(NULL, ";", &save)) {
    if (*n == MAX_SIGNED_HEADERS)
      return -E2BIG;
    const char *v = MHD_lookup_connection_value(rv->conn, MHD_HEADER_KIND, tok);
    if (!v)
      return -ENOENT; /* a signed header that was not sent */
    if (!strcmp(tok, "x-sdk-date"))
      *have_date = true;
    hs[(*n)++] = (struct sign_header){tok, v};
  }
  return 0;
}

static bool signature_ok(const struct sim_req_view *rv,
                         const struct sign_authz *az, const char *sk,
                         const char *date)
{
  char *names = strdup(az->signed_headers);
  struct sign_header hs[MAX_SIGNED_HEADERS];
  size_t n;
  bool have_date;
  if (!names)
    return false;
  int rc = collect_headers(rv, names, hs, &n, &have_date);
  bool ok = false;
  if (!rc && have_date) {
    struct sign_input in = {
        .method = rv->method,
        .path = rv->raw_path,
        .query = rv->raw_query,
        .headers = hs,
        .nheaders = n,
        .body = rv->body_len ? rv->body : NULL,
        .body_len = rv->body_len,
        .sdk_date = date,
    };
    char hex[SIGN_HEX_LEN + 1];
    ok = sign_signature_hex(&in, sk, strlen(sk), hex) == 0 &&
         sign_signature_equal(hex, az->signature);
  }
  free(names);
  return ok;
}

static bool clock_ok(struct sim *sim, const char *date)
{
  time_t t;
  if (sign_parse_date(date, &t) != 0)
    return false;
  if (!sim->settings.clock_check)
    return true;
  int64_t d = (int64_t)t * 1000 - sim_now_ms(sim);
  return d <= sim->settings.clock_skew_ms && -d <= sim->settings.clock_skew_ms;
}

static void check_aksk(struct sim *sim, const struct sim_req_view *rv,
                       const char *authz, struct sim_auth_result *out)
{
  struct sign_authz az;
  if (sign_parse_authorization(authz, &az) != 0) {
    fail(out, 401, "APIG.0301", IAM_PREFIX "verify aksk signature fail");
    return;
  }
  size_t ix;
  if (!sim_map_get(&sim->ak_ix, az.access, &ix)) {
    fail(out, 401, "APIG.0301",
         IAM_PREFIX "Get secretKey failed, ak not exist");
    sign_authz_free(&az);
    return;
  }
  struct sim_project *p = &sim->projects[ix >> 16];
  struct sim_cred *c = &p->creds[ix & 0xffff];
  const char *date =
      MHD_lookup_connection_value(rv->conn, MHD_HEADER_KIND, "X-Sdk-Date");
  if (c->locked_until_ms && sim_mono_ms() < c->locked_until_ms) {
    fail(out, 401, "APIG.0301",
         IAM_PREFIX "AK access failed to reach the limit,forbidden");
  } else if (!date || !clock_ok(sim, date)) {
    ak_failed(sim, c);
    fail(out, 401, "APIG.0301",
         IAM_PREFIX "verify aksk signature fail, the X-Sdk-Date time "
                    "differs from the server time by more than the allowed "
                    "15 minutes or is invalid");
  } else if (!signature_ok(rv, &az, c->sk, date)) {
    ak_failed(sim, c);
    fail(out, 401, "APIG.0301", IAM_PREFIX "verify aksk signature fail");
  } else {
    c->fails = 0;
    out->status = 0;
    out->project = (long)(ix >> 16);
    out->perms = c->perms;
  }
  sign_authz_free(&az);
}

/* ---- tokens ------------------------------------------------------------ */

static void check_token(struct sim *sim, const char *tok,
                        struct sim_auth_result *out)
{
  size_t ix;
  if (!sim_map_get(&sim->token_ix, tok, &ix) || sim->tokens[ix].revoked) {
    fail(out, 401, "APIG.1002", "Incorrect token or token resolution failed");
    return;
  }
  const struct sim_token *t = &sim->tokens[ix];
  if (sim_mono_ms() >= t->expires_ms) {
    fail(out, 401, "APIG.1001", "The token has expired");
    return;
  }
  out->status = 0;
  out->project = (long)t->project;
  out->perms = sim->projects[t->project].users[t->user].perms;
}

void sim_auth_check(struct sim *sim, const struct sim_req_view *rv,
                    struct sim_auth_result *out)
{
  memset(out, 0, sizeof(*out));
  out->project = -1;
  const char *authz =
      MHD_lookup_connection_value(rv->conn, MHD_HEADER_KIND, "Authorization");
  const char *tok =
      MHD_lookup_connection_value(rv->conn, MHD_HEADER_KIND, "X-Auth-Token");
  if (authz)
    check_aksk(sim, rv, authz, out);
  else if (tok)
    check_token(sim, tok, out);
  else
    fail(out, 401, "APIG.1000", "The token is missing");
  if (out->status)
    sim->stats.auth_failures++;
}

size_t sim_tokens_revoke(struct sim *sim, long project)
{
  size_t n = 0;
  for (size_t i = 0; i < sim->ntokens; i++) {
    struct sim_token *t = &sim->tokens[i];
    if (!t->revoked && (project < 0 || (long)t->project == project)) {
      t->revoked = true;
      n++;
    }
  }
  return n;
}

/* ---- IAM POST /v3/auth/tokens ------------------------------------------ */

struct iam_req {
  const char *user;
  const char *password;
  const char *domain;
  const char *project_id;
  const char *project_name;
  bool password_method;
};

static const char *tree_str(yajl_val root, const char **path)
{
  return YAJL_GET_STRING(yajl_tree_get(root, path, yajl_t_string));
}

static void iam_parse(yajl_val root, struct iam_req *r)
{
  const char *pm[] = {"auth", "identity", "methods", NULL};
  const char *pu[] = {"auth", "identity", "password", "user", "name", NULL};
  const char *pp[] = {"auth", "identity", "password", "user", "password", NULL};
  const char *pd[] = {"auth",   "identity", "password", "user",
                      "domain", "name",     NULL};
  const char *pi[] = {"auth", "scope", "project", "id", NULL};
  const char *pn[] = {"auth", "scope", "project", "name", NULL};
  memset(r, 0, sizeof(*r));
  yajl_val m = yajl_tree_get(root, pm, yajl_t_array);
  for (size_t i = 0; m && i < m->u.array.len; i++) {
    const char *s = YAJL_GET_STRING(m->u.array.values[i]);
    if (s && !strcmp(s, "password"))
      r->password_method = true;
  }
  r->user = tree_str(root, pu);
  r->password = tree_str(root, pp);
  r->domain = tree_str(root, pd);
  r->project_id = tree_str(root, pi);
  r->project_name = tree_str(root, pn);
}

static int iam_error(int status, const char *title, const char *msg,
                     char **resp, size_t *len)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return 500;
  yajl_gen_map_open(g);
  sim_gen_str(g, "error");
  yajl_gen_map_open(g);
  sim_gen_kv_int(g, "code", status);
  sim_gen_kv_str(g, "message", msg);
  sim_gen_kv_str(g, "title", title);
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  int rc = sim_gen_take(g, resp, len);
  yajl_gen_free(g);
  return rc ? 500 : status;
}

static long iam_project(const struct sim *sim, const struct iam_req *r)
{
  for (size_t i = 0; i < sim->nprojects; i++) {
    const struct sim_project *p = &sim->projects[i];
    if ((r->project_id && !strcmp(r->project_id, p->id)) ||
        (!r->project_id && r->project_name &&
         !strcmp(r->project_name, p->region)))
      return (long)i;
  }
  return -1;
}

static long iam_user(const struct sim_project *p, const struct iam_req *r)
{
  for (size_t i = 0; i < p->nusers; i++) {
    const struct sim_user *u = &p->users[i];
    if (!strcmp(u->name, r->user) && !strcmp(u->domain, r->domain) &&
        !strcmp(u->password, r->password))
      return (long)i;
  }
  return -1;
}

static void iso_time(int64_t ms, char out[40])
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char base[24];
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 40, "%s.%03d000Z", base, (int)(ms % 1000));
}

static int new_token(struct sim *sim, size_t project, size_t user, char **value)
{
  unsigned char raw[48];
  if (RAND_bytes(raw, sizeof(raw)) != 1)
    return -EIO;
  char *v = malloc(6 + 2 * sizeof(raw) + 1);
  if (!v)
    return -ENOMEM;
  memcpy(v, "MIIsim", 6);
  for (size_t i = 0; i < sizeof(raw); i++)
    snprintf(v + 6 + 2 * i, 3, "%02x", raw[i]);
  if (sim->ntokens == sim->captokens) {
    size_t ncap = sim->captokens ? sim->captokens * 2 : 16;
    struct sim_token *n = realloc(sim->tokens, ncap * sizeof(*n));
    if (!n) {
      free(v);
      return -ENOMEM;
    }
    sim->tokens = n;
    sim->captokens = ncap;
  }
  int64_t now = sim_mono_ms();
  sim->tokens[sim->ntokens] = (struct sim_token){
      .value = v,
      .project = project,
      .user = user,
      .issued_ms = now,
      .expires_ms = now + sim->settings.token_ttl_s * 1000,
  };
  if (sim_map_put(&sim->token_ix, v, sim->ntokens) != 0) {
    free(v);
    return -ENOMEM;
  }
  sim->ntokens++;
  *value = strdup(v);
  return *value ? 0 : -ENOMEM;
}

static void gen_named(yajl_gen g, const char *key, const char *id,
                      const char *name, const char *dom_id,
                      const char *dom_name)
{
  sim_gen_str(g, key);
  yajl_gen_map_open(g);
  sim_gen_kv_str(g, "id", id);
  sim_gen_kv_str(g, "name", name);
  sim_gen_str(g, "domain");
  yajl_gen_map_open(g);
  sim_gen_kv_str(g, "id", dom_id);
  sim_gen_kv_str(g, "name", dom_name);
  yajl_gen_map_close(g);
  if (!strcmp(key, "user"))
    sim_gen_kv_str(g, "password_expires_at", "");
  yajl_gen_map_close(g);
}

static int iam_body(struct sim *sim, size_t pi, size_t ui, bool catalog,
                    char **resp, size_t *len)
{
  const struct sim_project *p = &sim->projects[pi];
  const struct sim_user *u = &p->users[ui];
  char issued[40], expires[40], dom_id[33];
  int64_t now = sim_now_ms(sim);
  iso_time(now, issued);
  iso_time(now + sim->settings.token_ttl_s * 1000, expires);
  snprintf(dom_id, sizeof(dom_id), "%.32s", u->id);
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return -ENOMEM;
  yajl_gen_map_open(g);
  sim_gen_str(g, "token");
  yajl_gen_map_open(g);
  sim_gen_kv_str(g, "expires_at", expires);
  sim_gen_kv_str(g, "issued_at", issued);
  sim_gen_str(g, "methods");
  yajl_gen_array_open(g);
  sim_gen_str(g, "password");
  yajl_gen_array_close(g);
  if (catalog) {
    sim_gen_str(g, "catalog");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
  }
  gen_named(g, "project", p->id, p->region, dom_id, u->domain);
  gen_named(g, "user", u->id, u->name, dom_id, u->domain);
  sim_gen_str(g, "roles");
  yajl_gen_array_open(g);
  yajl_gen_map_open(g);
  sim_gen_kv_str(g, "id", "0");
  sim_gen_kv_str(g, "name", "op_user");
  yajl_gen_map_close(g);
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  int rc = sim_gen_take(g, resp, len);
  yajl_gen_free(g);
  return rc;
}

int sim_iam_token(struct sim *sim, const char *body, size_t len, bool catalog,
                  char **token, char **resp, size_t *resp_len)
{
  *token = NULL;
  yajl_val root = sim_json_parse(body, len);
  struct iam_req r;
  if (root)
    iam_parse(root, &r);
  int status;
  if (!root || !r.password_method || !r.user || !r.password || !r.domain ||
      (!r.project_id && !r.project_name)) {
    status = iam_error(400, "Bad Request",
                       "The request body is invalid: password method, user "
                       "name, password, domain name and project scope are "
                       "required.",
                       resp, resp_len);
  } else {
    long pi = iam_project(sim, &r);
    long ui = pi >= 0 ? iam_user(&sim->projects[pi], &r) : -1;
    if (ui < 0) {
      status = iam_error(401, "Unauthorized",
                         "The username or password is wrong.", resp, resp_len);
    } else if (new_token(sim, (size_t)pi, (size_t)ui, token) != 0 ||
               iam_body(sim, (size_t)pi, (size_t)ui, catalog, resp, resp_len) !=
                   0) {
      free(*token);
      *token = NULL;
      status = iam_error(500, "Internal Server Error", "System error", resp,
                         resp_len);
    } else {
      status = 201;
    }
  }
  yajl_tree_free(root);
  return status;
}
