/* SPDX-License-Identifier: MIT */
/* apig-sim end-to-end tests: start the real simulator as a child process
 * over HTTPS with a test CA made by make-certs.sh, talk to it with libcurl,
 * sign with certbind's api/sign.h, and check every endpoint, error path
 * and fault knob. A second, plain-HTTP instance with 600 bindings checks
 * the page-size clamp.
 *
 * No result may depend on how fast the machine is (CI is a busy 2-core
 * machine, and runs this under valgrind): "not yet" is checked with a
 * visibility delay or a hold no run comes near, then lifted by an admin
 * call; "after" is checked by sleeping longer than the span the simulator
 * enforces; a check that needs a request answered within a span (a TTL, a
 * lock) is made only when the test measured that it was, else tried again
 * with a longer span; waits for the simulator poll its stats, with caps
 * that CERTBIND_TEST_TIME_SCALE stretches. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "cert.h"
#include "sign.h"

#define PROJECT "0123456789abcdef0123456789abcdef"
#define OTHER_PROJECT "77b6a44cba5143ab91d13ab9a8ff44fd"
#define CERT_A "a27be832f2e9441c8127fe48e3b5ac67"
#define CERT_B "b27be832f2e9441c8127fe48e3b5ac67"
#define CERT_C "c27be832f2e9441c8127fe48e3b5ac67"
#define CERT_OTHER "d27be832f2e9441c8127fe48e3b5ac67"
#define GW1 "f0fa1789-3b76-433b-a787-9892951c620e"
#define GW2 "7d39549681c54d968ec2910da9da95cd"
#define CERTS_PATH "/v2/" PROJECT "/apigw/certificates/"

/* file-static fixture: the child processes and where they listen */
struct child {
  pid_t pid;
  char base[128];
  bool tls;
};
static char s_dir[256];
static char s_ca[300];
static struct child s_sim;
static struct child s_big;
static struct child s_batch; /* a world for batched writes (see below) */

/* ---- time -------------------------------------------------------------- */

/* CERTBIND_TEST_TIME_SCALE (10 under valgrind) stretches the caps that
 * assume native speed. */
static long time_scale(void)
{
  const char *s = getenv("CERTBIND_TEST_TIME_SCALE");
  long v = s ? strtol(s, NULL, 10) : 1;
  return v >= 1 && v <= 100 ? v : 1;
}

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- HTTP helper ------------------------------------------------------- */

struct resp {
  long status;
  CURLcode cc;
  char *body;
  size_t len;
  char reqid[80];
  char retry_after[16];
  char subject[256];
  double secs;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
  struct resp *r = ud;
  char *nb = realloc(r->body, r->len + sz * n + 1);
  if (!nb)
    return 0;
  memcpy(nb + r->len, p, sz * n);
  r->body = nb;
  r->len += sz * n;
  r->body[r->len] = '\0';
  return sz * n;
}

static void grab(const char *line, size_t n, const char *name, char *dst,
                 size_t dstlen)
{
  size_t k = strlen(name);
  if (n <= k || strncasecmp(line, name, k))
    return;
  size_t v = n - k;
  while (v && (line[k + v - 1] == '\r' || line[k + v - 1] == '\n'))
    v--;
  snprintf(dst, dstlen, "%.*s", (int)v, line + k);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
  struct resp *r = ud;
  grab(p, sz * n, "X-Request-Id: ", r->reqid, sizeof(r->reqid));
  grab(p, sz * n, "Retry-After: ", r->retry_after, sizeof(r->retry_after));
  grab(p, sz * n, "X-Subject-Token: ", r->subject, sizeof(r->subject));
  return sz * n;
}

static void resp_free(struct resp *r)
{
  free(r->body);
  memset(r, 0, sizeof(*r));
}

/* One request; hdrs is a NULL-terminated list of "Name: value". */
static void http_on(const struct child *c, const char *method,
                    const char *target, const char *body,
                    const char *const *hdrs, struct resp *out)
{
  memset(out, 0, sizeof(*out));
  CURL *e = curl_easy_init();
  assert_non_null(e);
  char url[1024];
  snprintf(url, sizeof(url), "%s%s", c->base, target);
  struct curl_slist *h = NULL;
  for (size_t i = 0; hdrs && hdrs[i]; i++)
    h = curl_slist_append(h, hdrs[i]);
  h = curl_slist_append(h, "Expect:");
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, out);
  curl_easy_setopt(e, CURLOPT_CAINFO, s_ca);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L * time_scale());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  out->cc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &out->secs);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
}

static void http(const char *method, const char *target, const char *body,
                 const char *const *hdrs, struct resp *out)
{
  http_on(&s_sim, method, target, body, hdrs, out);
}

/* ---- JSON helpers ------------------------------------------------------ */

static yajl_val parse(const struct resp *r)
{
  char err[128];
  assert_non_null(r->body);
  yajl_val v = yajl_tree_parse(r->body, err, sizeof(err));
  assert_non_null(v);
  return v;
}

static const char *jstr(yajl_val v, const char *a, const char *b)
{
  const char *p[] = {a, b, NULL};
  return YAJL_GET_STRING(yajl_tree_get(v, p, yajl_t_string));
}

static long long jint(yajl_val v, const char *a, const char *b)
{
  const char *p[] = {a, b, NULL};
  yajl_val x = yajl_tree_get(v, p, yajl_t_number);
  assert_non_null(x);
  return YAJL_GET_INTEGER(x);
}

static void expect_error(struct resp *r, long status, const char *code)
{
  assert_int_equal(r->cc, CURLE_OK);
  assert_int_equal(r->status, status);
  assert_true(strlen(r->reqid) > 0);
  yajl_val v = parse(r);
  const char *got = jstr(v, "error_code", NULL);
  assert_non_null(got);
  assert_string_equal(got, code);
  assert_non_null(jstr(v, "error_msg", NULL));
  yajl_tree_free(v);
}

static bool msg_has(const struct resp *r, const char *needle)
{
  return r->body && strstr(r->body, needle) != NULL;
}

/* ---- admin helpers ----------------------------------------------------- */

static void admin_post(const char *path, const char *json)
{
  struct resp r;
  http("POST", path, json, NULL, &r);
  assert_int_equal(r.cc, CURLE_OK);
  if (r.status != 200 && r.status != 204)
    fail_msg("%s -> %ld %s", path, r.status, r.body ? r.body : "");
  resp_free(&r);
}

static long long stat_of(const char *key)
{
  struct resp r;
  http("GET", "/__sim/stats", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  long long n = jint(v, key, NULL);
  yajl_tree_free(v);
  resp_free(&r);
  return n;
}

/* Polls the stats until key reaches at least want: how a test waits for
 * the simulator to have seen a request, whatever the machine's speed. */
static void wait_stat(const char *key, long long want)
{
  int64_t give_up = mono_ms() + 30000 * time_scale();
  long long n;
  while ((n = stat_of(key)) < want) {
    if (mono_ms() > give_up)
      fail_msg("stats: %s stayed %lld, waited for %lld", key, n, want);
    sleep_ms(2);
  }
}

static long long op_count(const char *op, const char *status)
{
  struct resp r;
  http("GET", "/__sim/stats", NULL, NULL, &r);
  yajl_val v = parse(&r);
  const char *p[] = {"by_op", op, status, NULL};
  yajl_val x = yajl_tree_get(v, p, yajl_t_number);
  long long n = x ? YAJL_GET_INTEGER(x) : 0;
  yajl_tree_free(v);
  resp_free(&r);
  return n;
}

/* -1 unbound, else the verify flag of (cert, gateway, domain) in the truth */
static int bound(const char *cert, const char *gw, const char *domain)
{
  struct resp r;
  http("GET", "/__sim/state", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  const char *p[] = {"bindings", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(a);
  int res = -1;
  for (size_t i = 0; i < a->u.array.len; i++) {
    yajl_val b = a->u.array.values[i];
    if (!strcmp(jstr(b, "certificate_id", NULL), cert) &&
        !strcmp(jstr(b, "instance_id", NULL), gw) &&
        !strcmp(jstr(b, "domain", NULL), domain)) {
      const char *q[] = {"verified_client_certificate_enabled", NULL};
      res = YAJL_IS_TRUE(yajl_tree_get(b, q, yajl_t_any));
    }
  }
  yajl_tree_free(v);
  resp_free(&r);
  return res;
}

/* ---- signing ----------------------------------------------------------- */

/* AK/SK-signed request to c through api/sign.h, signing host,
 * content-type (with a body) and x-sdk-date, dated t. */
static void signed_at_on(const struct child *c, const char *ak, const char *sk,
                         time_t t, const char *method, const char *path,
                         const char *query, const char *body, struct resp *out)
{
  char date[SIGN_DATE_LEN + 1], host[128], target[1024];
  assert_int_equal(sign_format_date(t, date), 0);
  const char *hp = strstr(c->base, "//") + 2;
  snprintf(host, sizeof(host), "%s", hp);
  struct sign_header hs[3] = {{"Host", host},
                              {"X-Sdk-Date", date},
                              {"Content-Type", "application/json"}};
  struct sign_input in = {
      .method = method,
      .path = path,
      .query = query,
      .headers = hs,
      .nheaders = body ? 3 : 2,
      .body = body,
      .body_len = body ? strlen(body) : 0,
  };
  char *authz = NULL;
  assert_int_equal(sign_authorization(&in, ak, sk, strlen(sk), &authz), 0);
  char h_host[160], h_date[64], h_auth[512];
  snprintf(h_host, sizeof(h_host), "Host: %s", host);
  snprintf(h_date, sizeof(h_date), "X-Sdk-Date: %s", date);
  snprintf(h_auth, sizeof(h_auth), "Authorization: %s", authz);
  free(authz);
  const char *hdrs[] = {h_host, h_date, h_auth,
                        "Content-Type: application/json", NULL};
  snprintf(target, sizeof(target), "%s%s%s", path, query ? "?" : "",
           query ? query : "");
  http_on(c, method, target, body, hdrs, out);
}

static void signed_at(const char *ak, const char *sk, time_t t,
                      const char *method, const char *path, const char *query,
                      const char *body, struct resp *out)
{
  signed_at_on(&s_sim, ak, sk, t, method, path, query, body, out);
}

static void signed_req(const char *method, const char *path, const char *query,
                       const char *body, struct resp *out)
{
  signed_at("AccessKey", "SecretKey", time(NULL), method, path, query, body,
            out);
}

/* attach/detach one domain on one gateway with AccessKey */
static void write1(const char *op, const char *cert, const char *gw,
                   const char *domain, const char *flag, struct resp *out)
{
  char path[256], body[512];
  snprintf(path, sizeof(path), CERTS_PATH "%s/domains/%s", cert, op);
  snprintf(body, sizeof(body),
           "{\"domains\":[{\"domain\":\"%s\",\"instance_ids\":[\"%s\"]%s%s}]}",
           domain, gw, flag ? ",\"verified_client_certificate_enabled\":" : "",
           flag ? flag : "");
  signed_req("POST", path, NULL, body, out);
}

static void expect_write(const char *op, const char *cert, const char *gw,
                         const char *domain, const char *flag)
{
  struct resp r;
  write1(op, cert, gw, domain, flag, &r);
  if (r.status != 204)
    fail_msg("%s %s -> %ld %s", op, domain, r.status, r.body ? r.body : "");
  assert_true(strlen(r.reqid) > 0);
  resp_free(&r);
}

static void list(const char *cert, const char *query, struct resp *out)
{
  char path[256];
  snprintf(path, sizeof(path), CERTS_PATH "%s/attached-domains", cert);
  signed_req("GET", path, query, NULL, out);
}

/* ---- child process ----------------------------------------------------- */

static int run_cmd(char *const argv[])
{
  pid_t p = fork();
  if (p == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  int st;
  if (p < 0 || waitpid(p, &st, 0) != p)
    return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int stop_sim(struct child *c)
{
  if (c->pid <= 0)
    return 0;
  kill(c->pid, SIGTERM);
  int st = 0;
  waitpid(c->pid, &st, 0);
  c->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int start_sim(struct child *c, const char *seed, bool tls,
                     const char *tag)
{
  char port_file[300], cert[300], key[300];
  snprintf(port_file, sizeof(port_file), "%s/%s.port", s_dir, tag);
  snprintf(cert, sizeof(cert), "%s/server.pem", s_dir);
  snprintf(key, sizeof(key), "%s/server.key", s_dir);
  char *argv[] = {SIM_BIN,   "--listen",    "127.0.0.1:0", "--port-file",
                  port_file, "--seed-file", (char *)seed,  "--seed",
                  "42",      "--tls-cert",  cert,          "--tls-key",
                  key,       NULL};
  if (!tls) { /* the plain-HTTP instance also checks --faults */
    argv[9] = "--faults";
    argv[10] = "{\"errors\":[{\"op\":\"show\",\"rate\":1,\"status\":"
               "503,\"code\":\"APIG.0201\"}]}";
    argv[11] = NULL;
  }
  c->tls = tls;
  c->pid = fork();
  if (c->pid == 0) {
    execv(argv[0], argv);
    _exit(127);
  }
  if (c->pid < 0)
    return -1;
  /* it starts in well under a second; the cap is for a loaded machine */
  for (int64_t give_up = mono_ms() + 30000 * time_scale();
       mono_ms() < give_up;) {
    FILE *f = fopen(port_file, "r");
    unsigned port = 0;
    if (f && fscanf(f, "%u", &port) == 1 && port) {
      fclose(f);
      snprintf(c->base, sizeof(c->base), "%s://127.0.0.1:%u",
               tls ? "https" : "http", port);
      return 0;
    }
    if (f)
      fclose(f);
    if (waitpid(c->pid, NULL, WNOHANG) == c->pid) {
      c->pid = 0; /* exited (bad arguments?): nothing to stop */
      return -1;
    }
    sleep_ms(20);
  }
  stop_sim(c);
  return -1;
}

/* 600 domains on one gateway, all bound to one certificate */
static int write_big_seed(const char *path)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fprintf(f,
          "{\"projects\":[{\"id\":\"%s\",\"credentials\":[{\"ak\":"
          "\"AccessKey\",\"sk\":\"SecretKey\"}]}],\"gateways\":[{"
          "\"instance_id\":\"%s\",\"project\":\"%s\",\"domains\":[",
          PROJECT, GW2, PROJECT);
  for (int i = 0; i < 600; i++)
    fprintf(f, "%s\"d%03d.example.com\"", i ? "," : "", i);
  fprintf(f,
          "]}],\"certificates\":[{\"id\":\"%s\",\"project\":\"%s\","
          "\"san\":[\"*.example.com\"]}],\"bindings\":[",
          CERT_A, PROJECT);
  for (int i = 0; i < 600; i++)
    fprintf(f,
            "%s{\"certificate\":\"%s\",\"instance_id\":\"%s\",\"domain\":"
            "\"d%03d.example.com\"}",
            i ? "," : "", CERT_A, GW2, i);
  fprintf(f, "]}\n");
  return fclose(f);
}

/* Three gateways whose instance-id order (a < b < c) differs from their
 * seed order (c, a, b), each with b00..b39 registered in a scrambled order
 * (gw-b lacks b39), so that neither slot nor gateway numbering matches
 * list order. X holds the even domains everywhere, Y every 4th (from b01)
 * on gw-a. */
#define CERT_X "e17be832f2e9441c8127fe48e3b5ac67"
#define CERT_Y "e27be832f2e9441c8127fe48e3b5ac67"
#define X_PATH CERTS_PATH CERT_X "/domains/"
#define Y_PATH CERTS_PATH CERT_Y "/domains/"
static const char *const s_bgw[] = {"gw-c", "gw-a", "gw-b"};

static int write_batch_seed(const char *path)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fprintf(f,
          "{\"projects\":[{\"id\":\"%s\",\"credentials\":[{\"ak\":"
          "\"AccessKey\",\"sk\":\"SecretKey\"}]}],\"gateways\":[",
          PROJECT);
  for (int g = 0; g < 3; g++) {
    fprintf(f, "%s{\"instance_id\":\"%s\",\"project\":\"%s\",\"domains\":[",
            g ? "," : "", s_bgw[g], PROJECT);
    for (int i = 0, n = 0; i < 40; i++) {
      int d = (i * 7 + g * 3) % 40; /* 7 and 40 are coprime */
      if (!(g == 2 && d == 39))
        fprintf(f, "%s\"b%02d.example.com\"", n++ ? "," : "", d);
    }
    fprintf(f, "]}");
  }
  fprintf(f,
          "],\"certificates\":[{\"id\":\"%s\",\"project\":\"%s\",\"san\":"
          "[\"*.example.com\"]},{\"id\":\"%s\",\"project\":\"%s\",\"san\":"
          "[\"*.example.com\"]}],\"bindings\":[",
          CERT_X, PROJECT, CERT_Y, PROJECT);
  const char *sep = "";
  for (int d = 0; d < 40; d++)
    for (int g = 0; g < 3; g++) {
      const char *cert = d % 2 == 0             ? CERT_X
                         : d % 4 == 1 && g == 1 ? CERT_Y
                                                : NULL;
      if (cert)
        fprintf(f,
                "%s{\"certificate\":\"%s\",\"instance_id\":\"%s\","
                "\"domain\":\"b%02d.example.com\"}",
                sep, cert, s_bgw[g], d);
      sep = cert ? "," : sep;
    }
  fprintf(f, "]}\n");
  return fclose(f);
}

static int group_setup(void **state)
{
  snprintf(s_dir, sizeof(s_dir), "/tmp/apig-sim-test.XXXXXX");
  if (!mkdtemp(s_dir))
    return -1;
  char *mk[] = {MAKE_CERTS, s_dir, NULL};
  if (run_cmd(mk) != 0)
    return -1;
  /* leaf certificates for the certificates API, for api.example.com only */
  char *leaves[] = {MAKE_LEAF_CERTS, s_dir, "api.example.com", NULL};
  if (run_cmd(leaves) != 0)
    return -1;
  snprintf(s_ca, sizeof(s_ca), "%s/ca.pem", s_dir);
  char big[300];
  snprintf(big, sizeof(big), "%s/big.json", s_dir);
  if (write_big_seed(big) != 0)
    return -1;
  char batch[300];
  snprintf(batch, sizeof(batch), "%s/batch.json", s_dir);
  if (write_batch_seed(batch) != 0)
    return -1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (start_sim(&s_sim, SIM_DIR "/world-test.json", true, "main") != 0 ||
      start_sim(&s_batch, batch, true, "batch") != 0)
    return -1;
  return start_sim(&s_big, big, false, "big");
}

static int group_teardown(void **state)
{
  int a = stop_sim(&s_sim), b = stop_sim(&s_big), c = stop_sim(&s_batch);
  curl_global_cleanup();
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
  if (system(cmd) != 0)
    return -1;
  /* apig-sim exits 0 on SIGTERM */
  return a == 0 && b == 0 && c == 0 ? 0 : -1;
}

static int reset_world(void **state)
{
  admin_post("/__sim/reset", NULL);
  return 0;
}

/* ---- tests: basics ----------------------------------------------------- */

static void test_request_id_everywhere(void **state)
{
  struct resp a, b, c;
  http("GET", "/__sim/state", NULL, NULL, &a);
  list(CERT_B, NULL, &b);
  http("GET", CERTS_PATH CERT_B "/attached-domains", NULL, NULL, &c);
  assert_int_equal(a.status, 200);
  assert_int_equal(b.status, 200);
  expect_error(&c, 401, "APIG.1000");
  assert_int_equal(strlen(a.reqid), 32);
  assert_int_equal(strlen(b.reqid), 32);
  assert_string_not_equal(a.reqid, b.reqid);
  assert_string_not_equal(b.reqid, c.reqid);
  resp_free(&a);
  resp_free(&b);
  resp_free(&c);
}

/* One unsigned API request (refused with 401) on a new connection of its
 * own, sharing TLS sessions through sh; curl's informational text goes
 * to log. */
struct tls_log {
  char text[8192];
  size_t len;
};

static int on_tls_debug(CURL *e, curl_infotype type, char *data, size_t n,
                        void *ud)
{
  struct tls_log *l = ud;
  (void)e;
  if (type == CURLINFO_TEXT && n < sizeof(l->text) - l->len - 1) {
    memcpy(l->text + l->len, data, n);
    l->len += n;
    l->text[l->len] = '\0';
  }
  return 0;
}

static void api_on_new_connection(CURLSH *sh, struct tls_log *log)
{
  char url[600];
  struct resp r = {0};
  CURL *e = curl_easy_init();
  assert_non_null(e);
  snprintf(url, sizeof(url), "%s/v2/%s/apigw/instances", s_sim.base, PROJECT);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_SHARE, sh);
  curl_easy_setopt(e, CURLOPT_CAINFO, s_ca);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_tls_debug);
  curl_easy_setopt(e, CURLOPT_DEBUGDATA, log);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L * time_scale());
  assert_int_equal(curl_easy_perform(e), CURLE_OK);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  curl_easy_cleanup(e); /* the connection goes with the handle */
}

/* HTTPS issues TLS 1.3 session tickets: a client's next connection
 * resumes the session instead of a full handshake. The stats count both
 * connections and the one resumption (admin calls, as stat_of's, are not
 * counted). */
static void test_tls_session_resumed(void **state)
{
  struct tls_log first = {0}, second = {0};
  long long conns = stat_of("tls_connections"),
            resumed = stat_of("tls_resumed");
  CURLSH *sh = curl_share_init();
  (void)state;
  assert_non_null(sh);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  api_on_new_connection(sh, &first);
  api_on_new_connection(sh, &second);
  assert_null(strstr(first.text, "SSL re-using session ID"));
  if (!strstr(second.text, "SSL re-using session ID"))
    fail_msg("second connection not resumed:\n%s", second.text);
  assert_int_equal(stat_of("tls_connections"), conns + 2);
  assert_int_equal(stat_of("tls_resumed"), resumed + 1);
  curl_share_cleanup(sh);
}

static void test_unknown_route(void **state)
{
  struct resp r;
  signed_req("GET", "/v2/" PROJECT "/apigw/instances", NULL, NULL, &r);
  expect_error(&r, 404, "APIG.0101");
  resp_free(&r);
}

static void test_show(void **state)
{
  struct resp r;
  signed_req("GET", CERTS_PATH CERT_A, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_string_equal(jstr(v, "id", NULL), CERT_A);
  assert_string_equal(jstr(v, "name", NULL), "cert_demo");
  assert_string_equal(jstr(v, "type", NULL), "global");
  assert_string_equal(jstr(v, "instance_id", NULL), "common");
  assert_string_equal(jstr(v, "project_id", NULL), PROJECT);
  const char *p[] = {"san", NULL};
  yajl_val san = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(san);
  assert_int_equal(san->u.array.len, 1);
  assert_string_equal(YAJL_GET_STRING(san->u.array.values[0]), "*.example.com");
  yajl_tree_free(v);
  /* the seed gives no dates: valid from before now to a year after it,
   * whatever the day (fixed dates expired every world on 2027-01-01) */
  struct apig_cert c;
  char why[128];
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(apig_cert_parse(r.body, r.len, &c, why, sizeof(why)), 0);
  assert_true(c.not_before > 0 && c.not_before < now);
  assert_true(c.not_after > now + 364 * 86400LL);
  assert_true(c.not_after < now + 366 * 86400LL);
  apig_cert_free(&c);
  resp_free(&r);
  signed_req("GET", CERTS_PATH "ffffffffffffffffffffffffffffffff", NULL, NULL,
             &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  /* a certificate of another project is not visible from this one */
  signed_req("GET", CERTS_PATH CERT_OTHER, NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
}

/* ---- tests: IAM tokens ------------------------------------------------- */

#define TOKEN_BODY(pw, scope)                                                  \
  "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{"         \
  "\"user\":{\"name\":\"deployer\",\"password\":\"" pw "\",\"domain\":{"       \
  "\"name\":\"acme\"}}}},\"scope\":{\"project\":{" scope "}}}}"

static void get_token(const char *scope_json, char *tok, size_t len)
{
  char body[512];
  snprintf(body, sizeof(body),
           "{\"auth\":{\"identity\":{\"methods\":[\"password\"],"
           "\"password\":{\"user\":{\"name\":\"deployer\",\"password\":"
           "\"correct horse\",\"domain\":{\"name\":\"acme\"}}}},\"scope\":{"
           "\"project\":{%s}}}}",
           scope_json);
  const char *h[] = {"Content-Type: application/json;charset=utf8", NULL};
  struct resp r;
  http("POST", "/v3/auth/tokens?nocatalog=true", body, h, &r);
  assert_int_equal(r.status, 201);
  assert_true(strlen(r.subject) > 20);
  yajl_val v = parse(&r);
  const char *exp = jstr(v, "token", "expires_at");
  assert_non_null(exp);
  assert_int_equal(exp[strlen(exp) - 1], 'Z');
  const char *p[] = {"token", "project", "id", NULL};
  assert_string_equal(YAJL_GET_STRING(yajl_tree_get(v, p, yajl_t_string)),
                      PROJECT);
  const char *m[] = {"token", "methods", NULL};
  yajl_val methods = yajl_tree_get(v, m, yajl_t_array);
  assert_non_null(methods);
  assert_string_equal(YAJL_GET_STRING(methods->u.array.values[0]), "password");
  const char *cat[] = {"token", "catalog", NULL};
  assert_null(yajl_tree_get(v, cat, yajl_t_any)); /* nocatalog */
  yajl_tree_free(v);
  snprintf(tok, len, "%s", r.subject);
  resp_free(&r);
}

static void token_list(const char *tok, const char *project, struct resp *out)
{
  char h[400], target[256];
  snprintf(h, sizeof(h), "X-Auth-Token: %s", tok);
  snprintf(target, sizeof(target),
           "/v2/%s/apigw/certificates/" CERT_B "/attached-domains", project);
  const char *hdrs[] = {h, NULL};
  http("GET", target, NULL, hdrs, out);
}

static void test_token_issue_and_use(void **state)
{
  char tok[256];
  struct resp r;
  get_token("\"id\":\"" PROJECT "\"", tok, sizeof(tok));
  token_list(tok, PROJECT, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* scope by project name (the region) works too */
  get_token("\"name\":\"cn-north-4\"", tok, sizeof(tok));
  token_list(tok, PROJECT, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* a token of one project does not open another */
  token_list(tok, OTHER_PROJECT, &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
  /* wrong password: IAM-style 401 */
  http("POST", "/v3/auth/tokens", TOKEN_BODY("wrong", "\"id\":\"" PROJECT "\""),
       NULL, &r);
  assert_int_equal(r.status, 401);
  assert_int_equal(strlen(r.subject), 0);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "error", "code"), 401);
  assert_non_null(jstr(v, "error", "message"));
  yajl_tree_free(v);
  assert_false(msg_has(&r, "wrong\""));
  resp_free(&r);
  http("POST", "/v3/auth/tokens", "{\"auth\":{}}", NULL, &r);
  assert_int_equal(r.status, 400);
  resp_free(&r);
  /* a made-up token */
  token_list("MIInotatoken", PROJECT, &r);
  expect_error(&r, 401, "APIG.1002");
  resp_free(&r);
}

/* A token works until its TTL and not after. That it still works is
 * asserted only when its first use was answered within the TTL of asking
 * for it (the test measures); a machine too slow for that gets a TTL
 * twice as long. That it has expired is asserted after sleeping past the
 * TTL, a bound the simulator guarantees. */
static void test_token_expiry_and_revocation(void **state)
{
  char tok[256], ttl_json[64];
  struct resp r;
  int ttl_s = 2;
  for (;; ttl_s *= 2) {
    snprintf(ttl_json, sizeof(ttl_json), "{\"token_ttl_s\":%d}", ttl_s);
    admin_post("/__sim/settings", ttl_json);
    int64_t asked = mono_ms();
    get_token("\"id\":\"" PROJECT "\"", tok, sizeof(tok));
    token_list(tok, PROJECT, &r);
    bool in_time = mono_ms() - asked < ttl_s * 1000LL;
    long status = r.status;
    resp_free(&r);
    if (in_time) {
      assert_int_equal(status, 200);
      break;
    }
    assert_true(ttl_s < 64);
    print_message("token: first use not within %d s; again\n", ttl_s);
  }
  sleep_ms(ttl_s * 1000LL + 100);
  token_list(tok, PROJECT, &r);
  expect_error(&r, 401, "APIG.1001");
  resp_free(&r);
  admin_post("/__sim/settings", "{\"token_ttl_s\":3600}");
  get_token("\"id\":\"" PROJECT "\"", tok, sizeof(tok));
  token_list(tok, PROJECT, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  admin_post("/__sim/tokens/revoke", "{\"project\":\"" PROJECT "\"}");
  token_list(tok, PROJECT, &r);
  expect_error(&r, 401, "APIG.1002");
  resp_free(&r);
}

/* ---- tests: AK/SK ------------------------------------------------------ */

static void raw_signed(const char *method, const char *target, const char *body,
                       const char *const *hdrs, struct resp *out)
{
  http(method, target, body, hdrs, out);
}

/* reference §3.2, the published vector: SK MFyf..., 20191115T033655Z */
static void test_published_vector(void **state)
{
  struct resp r;
  admin_post("/__sim/settings", "{\"now\":\"20191115T033655Z\"}");
  const char *good[] = {
      "Content-Type: application/json", "Host: service.region.example.com",
      "X-Sdk-Date: 20191115T033655Z",
      "Authorization: SDK-HMAC-SHA256 Access=PublishedVectorAK, "
      "SignedHeaders=content-type;host;x-sdk-date, "
      "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f"
      "6ebe",
      NULL};
  const char *target = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs?limit=2&"
                       "marker=13551d6b-755d-4757-b956-536f674975c0";
  /* signature accepted: the front door routes it, and there is no VPC API */
  raw_signed("GET", target, NULL, good, &r);
  expect_error(&r, 404, "APIG.0101");
  resp_free(&r);
  const char *bad[] = {
      good[0], good[1], good[2],
      "Authorization: SDK-HMAC-SHA256 Access=PublishedVectorAK, "
      "SignedHeaders=content-type;host;x-sdk-date, "
      "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f"
      "6ebf",
      NULL};
  raw_signed("GET", target, NULL, bad, &r);
  expect_error(&r, 401, "APIG.0301");
  assert_true(msg_has(&r, "verify aksk signature fail"));
  resp_free(&r);
  /* the same vector outside the clock window */
  admin_post("/__sim/settings", "{\"now\":null}");
  raw_signed("GET", target, NULL, good, &r);
  expect_error(&r, 401, "APIG.0301");
  assert_true(msg_has(&r, "time"));
  resp_free(&r);
}

/* reference §3.2, the Go SDK unit-test vectors (signed x-sdk-date only) */
static void test_go_sdk_vectors(void **state)
{
  struct resp r;
  admin_post("/__sim/settings", "{\"now\":\"20060102T150405Z\"}");
  const char *get[] = {
      "X-Sdk-Date: 20060102T150405Z",
      "Authorization: SDK-HMAC-SHA256 Access=AccessKey, "
      "SignedHeaders=x-sdk-date, "
      "Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac7"
      "9624",
      NULL};
  raw_signed("GET", "/path?limit=1", NULL, get, &r);
  expect_error(&r, 404, "APIG.0101");
  resp_free(&r);
  const char *post[] = {
      "X-Sdk-Date: 20060102T150405Z", "Content-Type: application/json",
      "Authorization: SDK-HMAC-SHA256 Access=AccessKey, "
      "SignedHeaders=x-sdk-date, "
      "Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db"
      "4f59",
      NULL};
  raw_signed("POST", "/path?key=value", "{\"Name\":\"test\",\"Id\":1}\n", post,
             &r);
  expect_error(&r, 404, "APIG.0101");
  resp_free(&r);
  /* the body without its trailing newline no longer matches */
  raw_signed("POST", "/path?key=value", "{\"Name\":\"test\",\"Id\":1}", post,
             &r);
  expect_error(&r, 401, "APIG.0301");
  resp_free(&r);
}

/* reference §3.2, the derived attach and list vectors, end to end */
static void test_derived_vectors(void **state)
{
  struct resp r;
  admin_post("/__sim/settings", "{\"now\":\"20250101T000000Z\"}");
  const char *attach[] = {
      "Content-Type: application/json",
      "Host: apig.cn-north-4.myhuaweicloud.com", "X-Sdk-Date: 20250101T000000Z",
      "Authorization: SDK-HMAC-SHA256 Access=AccessKey, "
      "SignedHeaders=content-type;host;x-sdk-date, "
      "Signature=fc9d808642c6af428b1e88efc0161310d7eafe72d5a0447bd138589b791a"
      "9790",
      NULL};
  raw_signed("POST", CERTS_PATH CERT_A "/domains/attach",
             "{\"domains\":[{\"domain\":\"api.example.com\",\"instance_ids\":"
             "[\"f0fa1789-3b76-433b-a787-9892951c620e\"],\"verified_client_"
             "certificate_enabled\":false}]}",
             attach, &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
  const char *lst[] = {
      "Host: apig.cn-north-4.myhuaweicloud.com", "X-Sdk-Date: 20250101T000000Z",
      "Authorization: SDK-HMAC-SHA256 Access=AccessKey, "
      "SignedHeaders=host;x-sdk-date, "
      "Signature=453f538bb1ea6762233d7aaba7d87b4581aefb350ec40e1dbf8d2fbca374"
      "140f",
      NULL};
  raw_signed("GET", CERTS_PATH CERT_A "/attached-domains?limit=100&offset=0",
             NULL, lst, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "total", NULL), 1);
  yajl_tree_free(v);
  resp_free(&r);
}

static void test_wrong_sk_and_lockout(void **state)
{
  struct resp r;
  const char *path = CERTS_PATH CERT_B "/attached-domains";
  signed_at("NoSuchKey", "x", time(NULL), "GET", path, NULL, NULL, &r);
  expect_error(&r, 401, "APIG.0301");
  assert_true(msg_has(&r, "ak not exist"));
  resp_free(&r);
  /* five failures, then a success resets the count */
  for (int i = 0; i < 5; i++) {
    signed_at("LockMeKey", "WrongSecret", time(NULL), "GET", path, NULL, NULL,
              &r);
    expect_error(&r, 401, "APIG.0301");
    assert_true(msg_has(&r, "verify aksk signature fail"));
    resp_free(&r);
  }
  signed_at("LockMeKey", "LockMeSecret", time(NULL), "GET", path, NULL, NULL,
            &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  /* more than five in a row lock the key, even for a good signature */
  for (int i = 0; i < 6; i++) {
    signed_at("LockMeKey", "WrongSecret", time(NULL), "GET", path, NULL, NULL,
              &r);
    expect_error(&r, 401, "APIG.0301");
    resp_free(&r);
  }
  signed_at("LockMeKey", "LockMeSecret", time(NULL), "GET", path, NULL, NULL,
            &r);
  expect_error(&r, 401, "APIG.0301");
  assert_true(msg_has(&r, "AK access failed to reach the limit,forbidden"));
  resp_free(&r);
  /* other keys are unaffected */
  list(CERT_B, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_true(stat_of("auth_failures") >= 13);
}

static void lock_me_wrong(const char *path)
{
  struct resp r;
  signed_at("LockMeKey", "WrongSecret", time(NULL), "GET", path, NULL, NULL,
            &r);
  expect_error(&r, 401, "APIG.0301");
  resp_free(&r);
}

/* The third failure in a row locks the key for lock_s, then it works again.
 * As with tokens: "locked" is asserted only when the good request was
 * answered within lock_s of sending the locking failure (else again with
 * a longer lock, once this one has run out); "works again" after sleeping
 * past the lock. */
static void test_lockout_expires(void **state)
{
  struct resp r;
  const char *path = CERTS_PATH CERT_B "/attached-domains";
  char lockout[96];
  int lock_s = 2;
  for (;; lock_s *= 2) {
    snprintf(lockout, sizeof(lockout),
             "{\"lockout\":{\"max_failures\":2,\"lock_s\":%d}}", lock_s);
    admin_post("/__sim/settings", lockout);
    lock_me_wrong(path);
    lock_me_wrong(path);
    int64_t locking = mono_ms();
    lock_me_wrong(path);
    signed_at("LockMeKey", "LockMeSecret", time(NULL), "GET", path, NULL, NULL,
              &r);
    bool in_time = mono_ms() - locking < lock_s * 1000LL;
    bool refused = msg_has(&r, "limit,forbidden");
    resp_free(&r);
    if (in_time) {
      assert_true(refused);
      break;
    }
    assert_true(lock_s < 64);
    print_message("lockout: not back within %d s; again\n", lock_s);
    sleep_ms(lock_s * 1000LL + 100); /* this lock runs out: start afresh */
  }
  sleep_ms(lock_s * 1000LL + 100);
  signed_at("LockMeKey", "LockMeSecret", time(NULL), "GET", path, NULL, NULL,
            &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
}

static void test_clock_window(void **state)
{
  struct resp r;
  const char *path = CERTS_PATH CERT_B "/attached-domains";
  signed_at("AccessKey", "SecretKey", time(NULL) - 14 * 60, "GET", path, NULL,
            NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  signed_at("AccessKey", "SecretKey", time(NULL) - 16 * 60, "GET", path, NULL,
            NULL, &r);
  expect_error(&r, 401, "APIG.0301");
  assert_true(msg_has(&r, "time"));
  resp_free(&r);
  signed_at("AccessKey", "SecretKey", time(NULL) + 16 * 60, "GET", path, NULL,
            NULL, &r);
  expect_error(&r, 401, "APIG.0301");
  resp_free(&r);
}

static void test_permissions(void **state)
{
  struct resp r;
  signed_at("ReadOnlyKey", "ReadOnlySecret", time(NULL), "GET",
            CERTS_PATH CERT_B "/attached-domains", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  signed_at("ReadOnlyKey", "ReadOnlySecret", time(NULL), "POST",
            CERTS_PATH CERT_A "/domains/attach", NULL,
            "{\"domains\":[{\"domain\":\"api.example.com\"}]}", &r);
  expect_error(&r, 403, "APIG.1005");
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  /* a key of one project on another project's path */
  signed_at("PublishedVectorAK", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
            time(NULL), "GET", CERTS_PATH CERT_B "/attached-domains", NULL,
            NULL, &r);
  assert_int_equal(r.status, 401);
  resp_free(&r);
}

/* ---- tests: attach / detach semantics ---------------------------------- */

static void attach_body(const char *cert, const char *body, struct resp *r)
{
  char path[256];
  snprintf(path, sizeof(path), CERTS_PATH "%s/domains/attach", cert);
  signed_req("POST", path, NULL, body, r);
}

static void expect_attach_error(const char *cert, const char *body, long status,
                                const char *code)
{
  struct resp r;
  attach_body(cert, body, &r);
  if (r.status != status)
    fail_msg("%s -> %ld %s", body, r.status, r.body ? r.body : "");
  expect_error(&r, status, code);
  resp_free(&r);
}

static void test_attach_validation(void **state)
{
  expect_attach_error(CERT_A, "not json", 400, "APIG.2012");
  expect_attach_error(CERT_A, "{}", 400, "APIG.2001");
  expect_attach_error(CERT_A, "{\"domains\":{}}", 400, "APIG.2012");
  expect_attach_error(CERT_A, "{\"domains\":[]}", 400, "APIG.2012");
  expect_attach_error(CERT_A, "{\"domains\":[{}]}", 400, "APIG.2001");
  expect_attach_error(CERT_A, "{\"domains\":[{\"domain\":7}]}", 400,
                      "APIG.2012");
  expect_attach_error(CERT_A, "{\"domains\":[{\"domain\":\"bad..name\"}]}", 400,
                      "APIG.2012");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"api.example.com\","
                      "\"instance_ids\":\"" GW1 "\"}]}",
                      400, "APIG.2012");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"api.example.com\","
                      "\"verified_client_certificate_enabled\":\"yes\"}]}",
                      400, "APIG.2012");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"api.example.com\","
                      "\"colour\":1}]}",
                      400, "APIG.2012");
  expect_attach_error("ffffffffffffffffffffffffffffffff",
                      "{\"domains\":[{\"domain\":\"api.example.com\"}]}", 404,
                      "APIG.3025");
  expect_attach_error(CERT_OTHER,
                      "{\"domains\":[{\"domain\":\"api.example.com\"}]}", 404,
                      "APIG.3025");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"api.example.com\","
                      "\"instance_ids\":[\"00000000000000000000000000000000\"]"
                      "}]}",
                      404, "APIG.3030");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"nope.example.com\","
                      "\"instance_ids\":[\"" GW1 "\"]}]}",
                      404, "APIG.3020");
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"other.test\","
                      "\"instance_ids\":[\"" GW1 "\"]}]}",
                      400, "APIG.2103");
  /* a wildcard covers exactly one label */
  expect_attach_error(CERT_A,
                      "{\"domains\":[{\"domain\":\"deep.api.example.com\"}]}",
                      400, "APIG.2103");
  /* hostile nesting is refused before a tree is built */
  size_t deep = 200000;
  char *nest = malloc(deep + 16);
  assert_non_null(nest);
  memcpy(nest, "{\"domains\":", 11);
  memset(nest + 11, '[', deep);
  nest[11 + deep] = '\0';
  expect_attach_error(CERT_A, nest, 400, "APIG.2012");
  free(nest);
  assert_int_equal(stat_of("writes_total"), 0);
}

static void test_attach_atomic_and_partial(void **state)
{
  /* good, SAN mismatch, unregistered: the first failure is reported */
  const char *body = "{\"domains\":[{\"domain\":\"api.example.com\","
                     "\"instance_ids\":[\"" GW1 "\"]},{\"domain\":"
                     "\"other.test\",\"instance_ids\":[\"" GW1 "\"]},"
                     "{\"domain\":\"nope.example.com\"}]}";
  expect_attach_error(CERT_A, body, 400, "APIG.2103");
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  admin_post("/__sim/settings", "{\"atomic_batches\":false}");
  expect_attach_error(CERT_A, body, 400, "APIG.2103");
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
}

static void test_attach_all_gateways_and_flags(void **state)
{
  struct resp r;
  /* no instance_ids: every gateway of the project with that domain */
  attach_body(CERT_A, "{\"domains\":[{\"domain\":\"api.example.com\"}]}", &r);
  assert_int_equal(r.status, 204);
  assert_null(r.body);
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
  assert_int_equal(bound(CERT_A, GW2, "api.example.com"), 0);
  /* flipping the client-verification flag is a real change */
  expect_write("attach", CERT_A, GW1, "api.example.com", "true");
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 1);
  assert_int_equal(bound(CERT_A, GW2, "api.example.com"), 0);
  /* the default flag follows trusted_root_ca */
  attach_body(CERT_C,
              "{\"domains\":[{\"domain\":\"api.example.com\","
              "\"instance_ids\":[\"" GW2 "\"]}]}",
              &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  assert_int_equal(bound(CERT_C, GW2, "api.example.com"), 1);
}

static void test_move_and_noop(void **state)
{
  /* the seed binds www.example.com on GW1 to CERT_B */
  assert_int_equal(bound(CERT_B, GW1, "www.example.com"), 0);
  expect_write("attach", CERT_A, GW1, "www.example.com", "false");
  assert_int_equal(bound(CERT_A, GW1, "www.example.com"), 0);
  assert_int_equal(bound(CERT_B, GW1, "www.example.com"), -1);
  assert_int_equal(stat_of("unbound_transitions"), 0);
  /* the same attach again: 204, a write that changed nothing */
  expect_write("attach", CERT_A, GW1, "www.example.com", "false");
  assert_int_equal(stat_of("writes_total"), 2);
  assert_int_equal(stat_of("writes_noop"), 1);
  admin_post("/__sim/settings", "{\"noop_write_error\":true}");
  struct resp r;
  write1("attach", CERT_A, GW1, "www.example.com", "false", &r);
  expect_error(&r, 400, "APIG.3305");
  resp_free(&r);
}

static void test_detach(void **state)
{
  struct resp r;
  write1("detach", CERT_A, GW1, "www.example.com", NULL, &r);
  expect_error(&r, 400, "APIG.2000");
  assert_true(msg_has(&r, "no valid domain name"));
  resp_free(&r);
  write1("detach", CERT_B, GW1, "nope.example.com", NULL, &r);
  expect_error(&r, 400, "APIG.2000");
  resp_free(&r);
  write1("detach", CERT_B, "00000000000000000000000000000000",
         "www.example.com", NULL, &r);
  expect_error(&r, 404, "APIG.3030");
  resp_free(&r);
  expect_write("detach", CERT_B, GW1, "www.example.com", NULL);
  assert_int_equal(bound(CERT_B, GW1, "www.example.com"), -1);
  assert_int_equal(stat_of("unbound_transitions"), 1);
  /* detach without instance_ids takes it off every gateway of this cert */
  expect_write("attach", CERT_A, GW1, "api.example.com", NULL);
  expect_write("attach", CERT_A, GW2, "api.example.com", NULL);
  char path[256];
  snprintf(path, sizeof(path), CERTS_PATH CERT_A "/domains/detach");
  signed_req("POST", path, NULL,
             "{\"domains\":[{\"domain\":\"api.example.com\"}]}", &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  assert_int_equal(bound(CERT_A, GW2, "api.example.com"), -1);
  assert_int_equal(stat_of("unbound_transitions"), 3);
}

/* ---- tests: list ------------------------------------------------------- */

static void bind_six(void)
{
  const char *d1[] = {"api.example.com", "pay.example.com", "shop.example.com"};
  for (size_t i = 0; i < 3; i++)
    expect_write("attach", CERT_B, GW1, d1[i], NULL);
  expect_write("attach", CERT_B, GW2, "api.example.com", NULL);
  expect_write("attach", CERT_B, GW2, "www.example.com", "true");
}

static void check_page(const char *query, long long total, long long size,
                       const char *first_domain)
{
  struct resp r;
  list(CERT_B, query, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "total", NULL), total);
  assert_int_equal(jint(v, "size", NULL), size);
  const char *p[] = {"bound_domains", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(a);
  assert_int_equal(a->u.array.len, size);
  if (first_domain)
    assert_string_equal(jstr(a->u.array.values[0], "url_domain", NULL),
                        first_domain);
  yajl_tree_free(v);
  resp_free(&r);
}

static void test_list_fields_and_order(void **state)
{
  bind_six();
  struct resp r, r2;
  list(CERT_B, NULL, &r);
  list(CERT_B, NULL, &r2);
  assert_string_equal(r.body, r2.body); /* stable */
  yajl_val v = parse(&r);
  const char *p[] = {"bound_domains", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_int_equal(a->u.array.len, 6);
  /* sorted by domain, then instance id */
  const char *want[][2] = {{"api.example.com", GW2}, {"api.example.com", GW1},
                           {"pay.example.com", GW1}, {"shop.example.com", GW1},
                           {"www.example.com", GW2}, {"www.example.com", GW1}};
  for (size_t i = 0; i < 6; i++) {
    yajl_val b = a->u.array.values[i];
    assert_string_equal(jstr(b, "url_domain", NULL), want[i][0]);
    assert_string_equal(jstr(b, "instance_id", NULL), want[i][1]);
    assert_int_equal(strlen(jstr(b, "id", NULL)), 32);
    assert_int_equal(jint(b, "status", NULL), 3);
    assert_string_equal(jstr(b, "ssl_id", NULL), "");
    assert_string_equal(jstr(b, "ssl_name", NULL), "");
    assert_non_null(jstr(b, "min_ssl_version", NULL));
    assert_non_null(jstr(b, "api_group_id", NULL));
    const char *q[] = {"is_http_redirect_to_https", NULL};
    assert_true(YAJL_IS_FALSE(yajl_tree_get(b, q, yajl_t_any)));
  }
  assert_string_equal(jstr(a->u.array.values[3], "api_group_name", NULL),
                      "shop");
  const char *q[] = {"verified_client_certificate_enabled", NULL};
  assert_true(YAJL_IS_TRUE(yajl_tree_get(a->u.array.values[4], q, yajl_t_any)));
  yajl_tree_free(v);
  resp_free(&r);
  resp_free(&r2);
}

static void test_list_pagination_and_filter(void **state)
{
  bind_six();
  check_page("limit=2", 6, 2, "api.example.com");
  check_page("offset=2&limit=2", 6, 2, "pay.example.com");
  check_page("offset=5&limit=2", 6, 1, "www.example.com");
  check_page("offset=6", 6, 0, NULL);
  check_page("offset=-5&limit=1", 6, 1, "api.example.com");
  check_page("limit=0", 6, 6, NULL);
  check_page("limit=-3", 6, 6, NULL);
  check_page("url_domain=www.example.com", 2, 2, "www.example.com");
  check_page("url_domain=nope.example.com", 0, 0, NULL);
  struct resp r;
  list(CERT_B, "offset=abc", &r);
  expect_error(&r, 400, "APIG.2012");
  resp_free(&r);
  list("ffffffffffffffffffffffffffffffff", NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
}

/* yajl_gen's rendering of a parsed document (keys in their order, numbers
 * as written): what the sim's pages were before items were cached. */
static void regen(yajl_gen g, yajl_val v)
{
  if (YAJL_IS_OBJECT(v)) {
    yajl_gen_map_open(g);
    for (size_t i = 0; i < v->u.object.len; i++) {
      const char *k = v->u.object.keys[i];
      yajl_gen_string(g, (const unsigned char *)k, strlen(k));
      regen(g, v->u.object.values[i]);
    }
    yajl_gen_map_close(g);
  } else if (YAJL_IS_ARRAY(v)) {
    yajl_gen_array_open(g);
    for (size_t i = 0; i < v->u.array.len; i++)
      regen(g, v->u.array.values[i]);
    yajl_gen_array_close(g);
  } else if (YAJL_IS_STRING(v)) {
    const char *x = YAJL_GET_STRING(v);
    yajl_gen_string(g, (const unsigned char *)x, strlen(x));
  } else if (YAJL_IS_NUMBER(v)) {
    yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
  } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
    yajl_gen_bool(g, YAJL_IS_TRUE(v));
  } else {
    yajl_gen_null(g);
  }
}

/* the page's bytes are yajl_gen's, its keys in the API's order, and its
 * verify flags are verify[] (NULL: not checked) */
static void check_page_bytes(const char *query, size_t size, const int *verify)
{
  static const char *const keys[] = {"id",
                                     "url_domain",
                                     "status",
                                     "min_ssl_version",
                                     "is_http_redirect_to_https",
                                     "verified_client_certificate_enabled",
                                     "ssl_id",
                                     "ssl_name",
                                     "ingress_http_port",
                                     "ingress_https_port",
                                     "instance_id",
                                     "api_group_id",
                                     "api_group_name"};
  struct resp r;
  list(CERT_B, query, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_int_equal(v->u.object.len, 3);
  assert_string_equal(v->u.object.keys[0], "total");
  assert_string_equal(v->u.object.keys[1], "size");
  assert_string_equal(v->u.object.keys[2], "bound_domains");
  const char *p[] = {"bound_domains", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(a);
  assert_int_equal(a->u.array.len, size);
  for (size_t i = 0; i < size; i++) {
    yajl_val b = a->u.array.values[i];
    assert_int_equal(b->u.object.len, sizeof(keys) / sizeof(keys[0]));
    for (size_t k = 0; k < b->u.object.len; k++)
      assert_string_equal(b->u.object.keys[k], keys[k]);
    if (verify && verify[i] >= 0)
      assert_int_equal(YAJL_IS_TRUE(b->u.object.values[5]), verify[i]);
  }
  yajl_gen g = yajl_gen_alloc(NULL);
  assert_non_null(g);
  regen(g, v);
  const unsigned char *buf;
  size_t n;
  assert_int_equal(yajl_gen_get_buf(g, &buf, &n), yajl_gen_status_ok);
  assert_int_equal(n, r.len);
  assert_memory_equal(buf, r.body, n);
  yajl_gen_free(g);
  yajl_tree_free(v);
  resp_free(&r);
}

/* pages are assembled from per-binding items rendered once: the bytes
 * stay yajl_gen's whatever the verify flag, page, filter or reset */
static void test_list_bytes(void **state)
{
  bind_six();
  /* api GW2, api GW1, pay, shop, www GW2 (verified), www GW1 */
  const int v6[] = {0, 0, 0, 0, 1, 0};
  check_page_bytes(NULL, 6, v6);
  /* www GW2's group strings need escaping */
  struct resp r;
  list(CERT_B, "url_domain=www.example.com", &r);
  yajl_val v = parse(&r);
  const char *p[] = {"bound_domains", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(a);
  assert_string_equal(jstr(a->u.array.values[0], "api_group_name", NULL),
                      "caf\xc3\xa9 \"q\" \\ \t\x01/x");
  assert_string_equal(jstr(a->u.array.values[0], "api_group_id", NULL),
                      "grp/2");
  assert_string_equal(jstr(a->u.array.values[1], "api_group_name", NULL),
                      "default");
  yajl_tree_free(v);
  resp_free(&r);
  check_page_bytes("limit=2&offset=3", 2, v6 + 3);
  check_page_bytes("offset=6", 0, NULL);
  check_page_bytes("url_domain=www.example.com", 2, v6 + 4);
  /* the flag flips both ways on items already rendered */
  expect_write("attach", CERT_B, GW2, "www.example.com", "false");
  expect_write("attach", CERT_B, GW1, "pay.example.com", "true");
  const int flipped[] = {0, 0, 1, 0, 0, 0};
  check_page_bytes(NULL, 6, flipped);
  /* after a reset the items are rendered again from the new world */
  http("POST", "/__sim/reset", NULL, NULL, &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  bind_six();
  check_page_bytes(NULL, 6, v6);
}

static void big_page(const char *query, long long size)
{
  char target[256];
  snprintf(target, sizeof(target), CERTS_PATH CERT_A "/attached-domains?%s",
           query);
  /* the big instance speaks plain HTTP: sign for its host */
  char date[SIGN_DATE_LEN + 1], host[64], auth[400], h_host[80], h_date[40];
  sign_format_date(time(NULL), date);
  snprintf(host, sizeof(host), "%s", strstr(s_big.base, "//") + 2);
  struct sign_header hs[] = {{"host", host}, {"x-sdk-date", date}};
  struct sign_input in = {.method = "GET",
                          .path = CERTS_PATH CERT_A "/attached-domains",
                          .query = query,
                          .headers = hs,
                          .nheaders = 2};
  char *a = NULL;
  assert_int_equal(sign_authorization(&in, "AccessKey", "SecretKey", 9, &a), 0);
  snprintf(auth, sizeof(auth), "Authorization: %s", a);
  free(a);
  snprintf(h_host, sizeof(h_host), "Host: %s", host);
  snprintf(h_date, sizeof(h_date), "X-Sdk-Date: %s", date);
  const char *hdrs[] = {h_host, h_date, auth, NULL};
  struct resp r;
  http_on(&s_big, "GET", target, NULL, hdrs, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "total", NULL), 600);
  assert_int_equal(jint(v, "size", NULL), size);
  yajl_tree_free(v);
  resp_free(&r);
}

static void test_cli(void **state)
{
  /* --faults given at start applies (and survives /__sim/reset) */
  struct resp r;
  http_on(&s_big, "POST", "/__sim/reset", NULL, NULL, &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  http_on(&s_big, "GET", "/__sim/faults", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(msg_has(&r, "APIG.0201"));
  resp_free(&r);
  /* bad option values are usage errors (64); a bad seed fails with 1 */
  char *bad_faults[] = {SIM_BIN,    "--seed-file",  SIM_DIR "/world-test.json",
                        "--faults", "{\"nope\":1}", NULL};
  assert_int_equal(run_cmd(bad_faults), 64);
  char *no_seed[] = {SIM_BIN, "--listen", "127.0.0.1:0", NULL};
  assert_int_equal(run_cmd(no_seed), 64);
  char *missing[] = {SIM_BIN, "--seed-file", "/nonexistent/world.json", NULL};
  assert_int_equal(run_cmd(missing), 1);
}

static void test_list_clamp_500(void **state)
{
  big_page("limit=1000", 500);
  big_page("limit=500&offset=500", 100);
  big_page("offset=590&limit=100", 10);
  big_page("limit=0", 20);
  big_page("offset=0", 20);
}

/* ---- tests: visibility, overlap --------------------------------------- */

static long long list_total(const char *cert)
{
  struct resp r;
  list(cert, NULL, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  long long n = jint(v, "total", NULL);
  yajl_tree_free(v);
  resp_free(&r);
  return n;
}

/* Reads show the state as of now - visibility_delay_ms. "Not yet visible"
 * is checked under a delay of an hour, which no run comes near; lowering
 * the delay then shows every write older than the new one. */
static void test_visibility_delay(void **state)
{
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":3600000}");
  assert_int_equal(list_total(CERT_A), 0);
  expect_write("attach", CERT_A, GW1, "api.example.com", NULL);
  /* applied at once in the truth, not yet visible to reads */
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
  assert_int_equal(list_total(CERT_A), 0);
  /* a move shows the old owner until the delay passes */
  expect_write("attach", CERT_A, GW1, "www.example.com", NULL);
  assert_int_equal(bound(CERT_A, GW1, "www.example.com"), 0);
  assert_int_equal(list_total(CERT_B), 1);
  assert_int_equal(list_total(CERT_A), 0);
  /* at 200 ms, writes more than 300 ms old are visible */
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":200}");
  sleep_ms(300);
  assert_int_equal(list_total(CERT_A), 2);
  assert_int_equal(list_total(CERT_B), 0);
  /* and a write made under that delay shows once it has passed */
  expect_write("detach", CERT_A, GW1, "api.example.com", NULL);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  sleep_ms(300);
  assert_int_equal(list_total(CERT_A), 1);
}

struct par {
  const char *domain;
  struct resp r;
};

static void *par_attach(void *arg)
{
  struct par *p = arg;
  write1("attach", CERT_A, GW1, p->domain, NULL, &p->r);
  return NULL;
}

#define HOLD_ATTACH "{\"hold\":{\"op\":\"attach\",\"rate\":1}}"

/* Write a, then write b to the same certificate while a is in progress:
 * the hold fault keeps a's response undecided (nothing applied yet) until
 * b has arrived too, whatever the machine's speed. Then both go. */
static void overlap_a_then_b(struct par *a, struct par *b)
{
  pthread_t ta, tb;
  long long applied = stat_of("writes_total");
  admin_post("/__sim/faults", HOLD_ATTACH);
  assert_int_equal(pthread_create(&ta, NULL, par_attach, a), 0);
  wait_stat("in_flight", 1);
  assert_int_equal(stat_of("writes_total"), applied); /* held, not applied */
  assert_int_equal(pthread_create(&tb, NULL, par_attach, b), 0);
  wait_stat("in_flight", 2);
  admin_post("/__sim/faults", "{}"); /* lets both go */
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
}

static void test_overlapping_writes(void **state)
{
  /* static: if a check fails the threads may outlive this frame */
  static struct par a = {"api.example.com", {0}}, b = {"pay.example.com", {0}};
  overlap_a_then_b(&a, &b);
  assert_int_equal(a.r.status, 204);
  expect_error(&b.r, 500, "APIG.3500");
  resp_free(&a.r);
  resp_free(&b.r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
  assert_int_equal(bound(CERT_A, GW1, "pay.example.com"), -1);
  assert_int_equal(stat_of("peak_concurrent_writes_max"), 2);
  assert_int_equal(stat_of("overlap_rejections"), 1);
  assert_int_equal(stat_of("in_flight"), 0);
  /* with the overlap rate at 0 both go through */
  admin_post("/__sim/settings", "{\"overlap_fail_rate\":0}");
  overlap_a_then_b(&a, &b);
  assert_int_equal(a.r.status, 204);
  assert_int_equal(b.r.status, 204);
  resp_free(&a.r);
  resp_free(&b.r);
  assert_int_equal(bound(CERT_A, GW1, "pay.example.com"), 0);
  assert_int_equal(stat_of("overlap_rejections"), 1);
}

/* ---- tests: faults ----------------------------------------------------- */

static void test_fault_error_rates(void **state)
{
  admin_post("/__sim/faults", "{\"errors\":[{\"op\":\"attach\",\"rate\":1,"
                              "\"status\":500,\"code\":\"APIG.9999\"}]}");
  struct resp r;
  write1("attach", CERT_A, GW1, "api.example.com", NULL, &r);
  expect_error(&r, 500, "APIG.9999");
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  assert_int_equal(list_total(CERT_B), 1); /* other ops unaffected */
  http("GET", "/__sim/faults", NULL, NULL, &r);
  assert_true(msg_has(&r, "APIG.9999"));
  resp_free(&r);
  admin_post("/__sim/faults", "{\"errors\":[{\"op\":\"list\",\"rate\":0.5,"
                              "\"status\":500,\"code\":\"APIG.9008\"}]}");
  int fails = 0;
  for (int i = 0; i < 40; i++) {
    list(CERT_B, NULL, &r);
    fails += r.status == 500;
    assert_true(r.status == 500 || r.status == 200);
    resp_free(&r);
  }
  assert_true(fails > 5 && fails < 35);
  assert_int_equal(op_count("list", "500"), fails);
  /* POST replaces the whole fault set */
  admin_post("/__sim/faults", "{}");
  list(CERT_B, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  http("POST", "/__sim/faults", "{\"nonsense\":1}", NULL, &r);
  assert_int_equal(r.status, 400);
  resp_free(&r);
}

/* One list request: 1 if it passed, 0 if throttled (429 APIG.0308 with
 * the limit and Retry-After: 3). */
static int list_passes(const char *limit)
{
  struct resp r;
  char want[96];
  list(CERT_B, NULL, &r);
  int passed = r.status == 200;
  if (!passed) {
    expect_error(&r, 429, "APIG.0308");
    snprintf(want, sizeof(want),
             "policy user over ratelimit,limit:%s,time:1 second", limit);
    assert_true(msg_has(&r, want));
    assert_string_equal(r.retry_after, "3");
  }
  resp_free(&r);
  return passed;
}

/* The bucket starts full (2) and refills at rps per second. At 0.01/s a
 * refill takes 100 s, far more than any run of this test: of four
 * requests, 200 ms apart at the end, the first two pass and the last two
 * are refused, however slow the machine (a refill counted per ms would
 * let the fourth through). At 10/s, 200 ms refill it. */
static void test_fault_throttle(void **state)
{
  admin_post("/__sim/faults", "{\"throttle\":{\"rps\":0.01,\"burst\":2,"
                              "\"retry_after_s\":3}}");
  assert_int_equal(list_passes("0.01"), 1);
  assert_int_equal(list_passes("0.01"), 1);
  assert_int_equal(list_passes("0.01"), 0);
  sleep_ms(200);
  assert_int_equal(list_passes("0.01"), 0);
  admin_post("/__sim/faults", "{\"throttle\":{\"rps\":10,\"burst\":2,"
                              "\"retry_after_s\":3}}");
  sleep_ms(200);
  assert_int_equal(list_passes("10"), 1);
  assert_int_equal(stat_of("throttled"), 2);
}

static void test_fault_latency(void **state)
{
  struct resp r;
  admin_post("/__sim/faults", "{\"latency\":{\"kind\":\"fixed\",\"ms\":200}}");
  list(CERT_B, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(r.secs >= 0.19 && r.secs < 10.0 * time_scale());
  resp_free(&r);
  admin_post("/__sim/faults", "{\"latency\":{\"kind\":\"uniform\","
                              "\"min_ms\":100,\"max_ms\":150},\"tail\":{"
                              "\"percent\":100,\"extra_ms\":200}}");
  list(CERT_B, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(r.secs >= 0.29 && r.secs < 10.0 * time_scale());
  resp_free(&r);
}

static void test_fault_resets(void **state)
{
  struct resp r;
  admin_post("/__sim/faults", "{\"reset_before_apply\":{\"op\":\"attach\","
                              "\"rate\":1}}");
  write1("attach", CERT_A, GW1, "api.example.com", NULL, &r);
  assert_int_not_equal(r.cc, CURLE_OK); /* a transport error, no status */
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  admin_post("/__sim/faults", "{\"reset_after_apply\":{\"op\":\"attach\","
                              "\"rate\":1}}");
  write1("attach", CERT_A, GW1, "api.example.com", NULL, &r);
  assert_int_not_equal(r.cc, CURLE_OK);
  resp_free(&r);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), 0);
  assert_int_equal(stat_of("resets"), 2);
  assert_int_equal(op_count("attach", "0"), 2);
  /* reads are unaffected by a fault on attach */
  assert_int_equal(list_total(CERT_B), 1);
}

static void test_fault_slow_body(void **state)
{
  struct resp r;
  admin_post("/__sim/faults", "{\"slow\":{\"op\":\"list\",\"rate\":1,"
                              "\"chunk_bytes\":64,\"interval_ms\":40}}");
  list(CERT_B, NULL, &r);
  assert_int_equal(r.status, 200);
  /* ~430 bytes in 64-byte chunks 40 ms apart */
  assert_true(r.secs >= 0.2);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "total", NULL), 1);
  yajl_tree_free(v);
  resp_free(&r);
}

static void test_stats_and_reset(void **state)
{
  expect_write("attach", CERT_A, GW1, "api.example.com", NULL);
  struct resp r;
  list(CERT_A, NULL, &r);
  resp_free(&r);
  http("GET", CERTS_PATH CERT_A, NULL, NULL, &r); /* unauthenticated */
  resp_free(&r);
  assert_int_equal(stat_of("requests"), 3);
  assert_int_equal(op_count("attach", "204"), 1);
  assert_int_equal(op_count("list", "200"), 1);
  assert_int_equal(op_count("show", "401"), 1);
  assert_int_equal(stat_of("auth_failures"), 1);
  assert_int_equal(stat_of("peak_concurrent_requests"), 1);
  assert_int_equal(stat_of("peak_concurrent_writes_max"), 1);
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":5000}");
  admin_post("/__sim/reset", NULL);
  assert_int_equal(stat_of("requests"), 0);
  assert_int_equal(stat_of("writes_total"), 0);
  assert_int_equal(bound(CERT_A, GW1, "api.example.com"), -1);
  assert_int_equal(bound(CERT_B, GW1, "www.example.com"), 0);
  http("GET", "/__sim/settings", NULL, NULL, &r);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "visibility_delay_ms", NULL), 0);
  yajl_tree_free(v);
  resp_free(&r);
}

/* ---- tests: batched writes (s_batch) ----------------------------------- */

/* One entry of a write body: domain bNN, the gateways named by ids
 * ("cab" = gw-c, gw-a, gw-b; NULL = no instance_ids), flag or NULL. */
struct entry {
  const char *domain; /* full name, or NULL for b%02d of num */
  int num;
  const char *ids;
  const char *flag;
};

static void entry_json(char *buf, size_t len, const struct entry *e)
{
  char dom[64], ids[128] = "";
  if (e->domain)
    snprintf(dom, sizeof(dom), "%s", e->domain);
  else
    snprintf(dom, sizeof(dom), "b%02d.example.com", e->num);
  for (size_t i = 0; e->ids && e->ids[i]; i++) {
    size_t at = strlen(ids);
    const char *gw = e->ids[i] == 'x' ? "gw-unknown" : NULL;
    char tmp[16];
    if (!gw) {
      snprintf(tmp, sizeof(tmp), "gw-%c", e->ids[i]);
      gw = tmp;
    }
    snprintf(ids + at, sizeof(ids) - at, "%s\"%s\"", i ? "," : "", gw);
  }
  snprintf(buf, len, "{\"domain\":\"%s\"%s%s%s%s%s}", dom,
           e->ids ? ",\"instance_ids\":[" : "", e->ids ? ids : "",
           e->ids ? "]" : "",
           e->flag ? ",\"verified_client_certificate_"
                     "enabled\":"
                   : "",
           e->flag ? e->flag : "");
}

/* POST {"domains":[entries]} to s_batch; returns the status */
static long batch_write(const char *path, const struct entry *e, size_t n,
                        struct resp *out)
{
  size_t cap = 256 * (n + 1), at;
  char *body = malloc(cap);
  assert_non_null(body);
  at = (size_t)snprintf(body, cap, "{\"domains\":[");
  for (size_t i = 0; i < n; i++) {
    char one[256];
    entry_json(one, sizeof(one), &e[i]);
    at += (size_t)snprintf(body + at, cap - at, "%s%s", i ? "," : "", one);
  }
  snprintf(body + at, cap - at, "]}");
  signed_at_on(&s_batch, "AccessKey", "SecretKey", time(NULL), "POST", path,
               NULL, body, out);
  free(body);
  return out->status;
}

/* The same entries one write per (domain, instance id) binding, in order
 * (an entry without instance_ids stays one write). */
static void one_by_one(const char *path, const struct entry *e, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    size_t k = e[i].ids ? strlen(e[i].ids) : 1;
    for (size_t j = 0; j < k; j++) {
      struct entry one = e[i];
      char id[2] = {e[i].ids ? e[i].ids[j] : 0, 0};
      one.ids = e[i].ids ? id : NULL;
      struct resp r;
      batch_write(path, &one, 1, &r);
      resp_free(&r);
    }
  }
}

static void batch_admin(const char *method, const char *path, const char *json,
                        struct resp *out)
{
  http_on(&s_batch, method, path, json, NULL, out);
  assert_int_equal(out->cc, CURLE_OK);
  assert_true(out->status == 200 || out->status == 204);
}

static void batch_reset(void)
{
  struct resp r;
  batch_admin("POST", "/__sim/reset", NULL, &r);
  resp_free(&r);
}

/* What a batch must leave exactly as the one-by-one writes do: the truth
 * (every certificate's list, in list order), both lists as read, and the
 * binding counters. */
struct outcome {
  char *state;
  char *list_x;
  char *list_y;
  long long changed;
  long long unbound;
};

static char *take_body(struct resp *r)
{
  char *b = r->body;
  r->body = NULL;
  resp_free(r);
  assert_non_null(b);
  return b;
}

static char *batch_list(const char *cert)
{
  char path[256];
  struct resp r;
  snprintf(path, sizeof(path), CERTS_PATH "%s/attached-domains", cert);
  signed_at_on(&s_batch, "AccessKey", "SecretKey", time(NULL), "GET", path,
               "limit=500", NULL, &r);
  assert_int_equal(r.status, 200);
  return take_body(&r);
}

static void outcome_get(struct outcome *o)
{
  struct resp r;
  batch_admin("GET", "/__sim/state", NULL, &r);
  o->state = take_body(&r);
  batch_admin("GET", "/__sim/stats", NULL, &r);
  yajl_val v = parse(&r);
  o->changed = jint(v, "bindings_changed", NULL);
  o->unbound = jint(v, "unbound_transitions", NULL);
  yajl_tree_free(v);
  resp_free(&r);
  o->list_x = batch_list(CERT_X);
  o->list_y = batch_list(CERT_Y);
}

static void outcome_equal(struct outcome *a, struct outcome *b)
{
  assert_string_equal(a->state, b->state);
  assert_string_equal(a->list_x, b->list_x);
  assert_string_equal(a->list_y, b->list_y);
  assert_int_equal(a->changed, b->changed);
  assert_int_equal(a->unbound, b->unbound);
  struct outcome *o[] = {a, b};
  for (size_t i = 0; i < 2; i++) {
    free(o[i]->state);
    free(o[i]->list_x);
    free(o[i]->list_y);
  }
}

/* Every certificate's bindings in /__sim/state come in list order (domain,
 * then instance id, strictly increasing); returns how many cert has. */
static size_t check_sorted(const char *state, const char *cert)
{
  char err[128];
  yajl_val v = yajl_tree_parse(state, err, sizeof(err));
  assert_non_null(v);
  const char *p[] = {"bindings", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  assert_non_null(a);
  size_t n = 0;
  for (size_t i = 0; i < a->u.array.len; i++) {
    yajl_val b = a->u.array.values[i];
    const char *c = jstr(b, "certificate_id", NULL);
    n += !strcmp(c, cert);
    if (i == 0 ||
        strcmp(c, jstr(a->u.array.values[i - 1], "certificate_id", NULL)))
      continue;
    yajl_val q = a->u.array.values[i - 1];
    int d = strcmp(jstr(q, "domain", NULL), jstr(b, "domain", NULL));
    assert_true(d < 0 || (d == 0 && strcmp(jstr(q, "instance_id", NULL),
                                           jstr(b, "instance_id", NULL)) < 0));
  }
  yajl_tree_free(v);
  return n;
}

static int batch_verify(const char *domain, const char *gw)
{
  struct resp r;
  batch_admin("GET", "/__sim/state", NULL, &r);
  yajl_val v = parse(&r);
  const char *p[] = {"bindings", NULL};
  yajl_val a = yajl_tree_get(v, p, yajl_t_array);
  int res = -1;
  for (size_t i = 0; a && i < a->u.array.len; i++) {
    yajl_val b = a->u.array.values[i];
    const char *q[] = {"verified_client_certificate_enabled", NULL};
    if (!strcmp(jstr(b, "domain", NULL), domain) &&
        !strcmp(jstr(b, "instance_id", NULL), gw))
      res = YAJL_IS_TRUE(yajl_tree_get(b, q, yajl_t_any));
  }
  yajl_tree_free(v);
  resp_free(&r);
  return res;
}

static void test_batch_attach_moves(void **state)
{
  /* b07 twice (flag on, then off again), b29..b00 from X, Y or unbound
   * on all three gateways, and b39 on every gateway that has it */
  struct entry e[32] = {{NULL, 7, "cab", "true"}};
  for (int i = 0; i < 30; i++)
    e[1 + i] = (struct entry){NULL, 29 - i, "acb", "false"};
  e[31] = (struct entry){NULL, 39, NULL, NULL};
  struct outcome batch, single;
  struct resp r;
  batch_reset();
  assert_int_equal(batch_write(Y_PATH "attach", e, 32, &r), 204);
  resp_free(&r);
  outcome_get(&batch);
  /* X keeps b30..b38 (5 domains x 3 gateways); Y has b00..b29 everywhere,
   * b39 on gw-a and gw-c, and its own b33 and b37 on gw-a */
  assert_int_equal(check_sorted(batch.state, CERT_X), 15);
  assert_int_equal(check_sorted(batch.state, CERT_Y), 90 + 2 + 2);
  assert_int_equal(batch_verify("b07.example.com", "gw-b"), 0);
  batch_reset();
  one_by_one(Y_PATH "attach", e, 32);
  outcome_get(&single);
  outcome_equal(&batch, &single);
}

static void test_batch_detach(void **state)
{
  /* with and without instance_ids, a binding of another certificate (b01
   * on gw-a is Y's) and a domain already gone */
  const struct entry e[] = {{NULL, 2, "ba", NULL},  {NULL, 4, NULL, NULL},
                            {NULL, 1, "a", NULL},   {NULL, 6, "c", NULL},
                            {NULL, 4, NULL, NULL},  {NULL, 38, NULL, NULL},
                            {NULL, 10, "cab", NULL}};
  size_t n = sizeof(e) / sizeof(e[0]);
  struct outcome batch, single;
  struct resp r;
  batch_reset();
  assert_int_equal(batch_write(X_PATH "detach", e, n, &r), 204);
  resp_free(&r);
  outcome_get(&batch);
  assert_int_equal(check_sorted(batch.state, CERT_X), 60 - 2 - 3 - 1 - 3 - 3);
  assert_int_equal(check_sorted(batch.state, CERT_Y), 10);
  assert_int_equal(batch.unbound, 12);
  batch_reset();
  one_by_one(X_PATH "detach", e, n);
  outcome_get(&single);
  outcome_equal(&batch, &single);
}

static void test_batch_partial_and_atomic(void **state)
{
  /* b10 is fine, nope.example.com is not registered (the error reported),
   * b11 names an unknown gateway (dropped whole), b12 is fine */
  const struct entry e[] = {{NULL, 10, "a", NULL},
                            {"nope.example.com", 0, "a", NULL},
                            {NULL, 11, "ax", NULL},
                            {NULL, 12, "bc", "true"}};
  const struct entry good[] = {e[0], e[3]};
  struct outcome before, batch, single;
  struct resp r;
  batch_reset();
  outcome_get(&before);
  /* atomic (the default): nothing at all */
  assert_int_equal(batch_write(Y_PATH "attach", e, 4, &r), 404);
  expect_error(&r, 404, "APIG.3020");
  resp_free(&r);
  outcome_get(&batch);
  outcome_equal(&before, &batch);
  /* partial: the valid entries, the first error */
  batch_admin("POST", "/__sim/settings", "{\"atomic_batches\":false}", &r);
  resp_free(&r);
  assert_int_equal(batch_write(Y_PATH "attach", e, 4, &r), 404);
  expect_error(&r, 404, "APIG.3020");
  resp_free(&r);
  outcome_get(&batch);
  assert_int_equal(check_sorted(batch.state, CERT_Y), 10 + 3);
  assert_int_equal(batch_verify("b11.example.com", "gw-a"), -1);
  assert_int_equal(batch_verify("b12.example.com", "gw-c"), 1);
  batch_reset();
  one_by_one(Y_PATH "attach", good, 2);
  outcome_get(&single);
  outcome_equal(&batch, &single);
}

/* A batch move under a visibility delay: reads see the old lists until
 * the delay is over (here: lowered to 0), then the new ones. */
static void test_batch_visibility(void **state)
{
  struct entry e[10];
  for (int i = 0; i < 10; i++)
    e[i] = (struct entry){NULL, 2 * i, "abc", NULL};
  struct resp r;
  batch_reset();
  char *x0 = batch_list(CERT_X), *y0 = batch_list(CERT_Y);
  /* an hour: "not yet" holds however slow the run; 0 then shows it all */
  batch_admin("POST", "/__sim/settings", "{\"visibility_delay_ms\":3600000}",
              &r);
  resp_free(&r);
  assert_int_equal(batch_write(Y_PATH "attach", e, 10, &r), 204);
  resp_free(&r);
  char *x1 = batch_list(CERT_X), *y1 = batch_list(CERT_Y);
  assert_string_equal(x0, x1);
  assert_string_equal(y0, y1);
  batch_admin("POST", "/__sim/settings", "{\"visibility_delay_ms\":0}", &r);
  resp_free(&r);
  char *y2 = batch_list(CERT_Y);
  assert_true(strstr(y2, "\"total\":40"));
  free(x0);
  free(y0);
  free(x1);
  free(y1);
  free(y2);
}

/* The seed check for a domain listed twice on one gateway survives the
 * move of slot lookups to the domain index. */
static void test_seed_duplicate_domain(void **state)
{
  char path[300];
  snprintf(path, sizeof(path), "%s/dup.json", s_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "{\"projects\":[{\"id\":\"%s\"}],\"gateways\":[{\"instance_id\":"
          "\"g1\",\"project\":\"%s\",\"domains\":[\"a.example.com\","
          "\"b.example.com\"]},{\"instance_id\":\"g2\",\"project\":\"%s\","
          "\"domains\":[\"a.example.com\",\"b.example.com\","
          "\"a.example.com\"]}]}\n",
          PROJECT, PROJECT, PROJECT);
  assert_int_equal(fclose(f), 0);
  char *argv[] = {SIM_BIN, "--seed-file", path, NULL};
  assert_int_equal(run_cmd(argv), 1);
}

/* ---- certificates API -------------------------------------------------- */

/* s_dir holds make-leaf-certs.sh's files for "api.example.com" alone. */
static char *slurp_cert_file(const char *name)
{
  char path[400];
  snprintf(path, sizeof(path), "%s/%s", s_dir, name);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 16);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}

/* A CertificateForm body: name, cert_content and private_key from files
 * (NULL: left out), and extra JSON members (may be ""). */
static char *cert_form(const char *name, const char *pem, const char *key,
                       const char *extra)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  assert_non_null(g);
  yajl_gen_map_open(g);
  const char *keys[] = {"name", "cert_content", "private_key"};
  const char *files[] = {NULL, pem, key};
  for (int i = 0; i < 3; i++) {
    char *text = i == 0 ? (name ? strdup(name) : NULL)
                        : (files[i] ? slurp_cert_file(files[i]) : NULL);
    if (!text)
      continue;
    yajl_gen_string(g, (const unsigned char *)keys[i], strlen(keys[i]));
    yajl_gen_string(g, (const unsigned char *)text, strlen(text));
    free(text);
  }
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  char *out = malloc(len + strlen(extra) + 2);
  assert_non_null(out);
  memcpy(out, buf, len - 1); /* without the closing brace */
  snprintf(out + len - 1, strlen(extra) + 3, "%s%s}", *extra ? "," : "", extra);
  yajl_gen_free(g);
  return out;
}

/* No certificate or key text in any response. */
static void assert_no_pem(const struct resp *r)
{
  assert_false(msg_has(r, "BEGIN"));
  assert_false(msg_has(r, "PRIVATE"));
  assert_false(msg_has(r, "MII")); /* the start of any DER in base64 */
}

static void cert_call(const char *method, const char *id, const char *body,
                      const char *query, struct resp *out)
{
  char path[256];
  snprintf(path, sizeof(path), "/v2/" PROJECT "/apigw/certificates%s%s",
           id ? "/" : "", id ? id : "");
  signed_req(method, path, query, body, out);
  assert_no_pem(out);
}

/* Create; returns the new id (static buffer) after asserting 200. */
static const char *create_cert(const char *name, const char *pem,
                               const char *key)
{
  static char id[4][64];
  static int k;
  k = (k + 1) % 4;
  char *body = cert_form(name, pem, key, "");
  struct resp r;
  cert_call("POST", NULL, body, NULL, &r);
  free(body);
  if (r.status != 200)
    fail_msg("create %s -> %ld %s", name, r.status, r.body ? r.body : "");
  yajl_val v = parse(&r);
  assert_non_null(jstr(v, "id", NULL));
  snprintf(id[k], sizeof(id[k]), "%s", jstr(v, "id", NULL));
  assert_int_equal(strlen(id[k]), 32);
  yajl_tree_free(v);
  resp_free(&r);
  return id[k];
}

static void expect_create_error(const char *name, const char *pem,
                                const char *key, const char *extra, long status,
                                const char *code)
{
  char *body = cert_form(name, pem, key, extra);
  struct resp r;
  cert_call("POST", NULL, body, NULL, &r);
  free(body);
  expect_error(&r, status, code);
  resp_free(&r);
}

static long long certs_total(const char *query)
{
  struct resp r;
  cert_call("GET", NULL, NULL, query, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  long long n = jint(v, "total", NULL);
  yajl_tree_free(v);
  resp_free(&r);
  return n;
}

static void test_cert_create_show_update(void **state)
{
  const char *id = create_cert("cb_api_1", "rsa.chain.pem", "rsa.key");
  struct resp r;
  cert_call("GET", id, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_string_equal(jstr(v, "id", NULL), id);
  assert_string_equal(jstr(v, "name", NULL), "cb_api_1");
  assert_string_equal(jstr(v, "common_name", NULL), "api.example.com");
  assert_string_equal(jstr(v, "type", NULL), "global");
  assert_string_equal(jstr(v, "instance_id", NULL), "common");
  assert_string_equal(jstr(v, "algorithm_type", NULL), "RSA");
  assert_string_equal(jstr(v, "signature_algorithm", NULL), "SHA256-ECDSA");
  const char *san[] = {"san", NULL};
  yajl_val sans = yajl_tree_get(v, san, yajl_t_array);
  assert_non_null(sans);
  assert_int_equal(sans->u.array.len, 1);
  assert_string_equal(YAJL_GET_STRING(sans->u.array.values[0]),
                      "api.example.com");
  /* serial_number is the leaf's serial in decimal (make-leaf-certs.sh
   * numbers from hex 1000: the intermediate, then rsa = 0x1001) */
  assert_string_equal(jstr(v, "serial_number", NULL), "4097");
  assert_non_null(strstr(jstr(v, "not_after", NULL), "Z"));
  yajl_tree_free(v);
  resp_free(&r);

  /* update in place: same id, new content, bindings kept */
  expect_write("attach", id, GW1, "api.example.com", NULL);
  char *body = cert_form("cb_api_1", "ec.chain.pem", "ec.key", "");
  cert_call("PUT", id, body, NULL, &r);
  free(body);
  assert_int_equal(r.status, 200);
  v = parse(&r);
  assert_string_equal(jstr(v, "id", NULL), id);
  assert_string_equal(jstr(v, "algorithm_type", NULL), "ECC");
  yajl_tree_free(v);
  resp_free(&r);
  assert_int_equal(bound(id, GW1, "api.example.com"), 0); /* bound */
  body = cert_form("cb_api_1", "rsa.chain.pem", "other.key", "");
  cert_call("PUT", id, body, NULL, &r);
  free(body);
  expect_error(&r, 400, "APIG.2101");
  resp_free(&r);

  /* the admin state lists it, without content */
  http("GET", "/__sim/state", NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_true(msg_has(&r, id));
  assert_no_pem(&r);
  resp_free(&r);
  assert_int_equal(op_count("create", "200"), 1);
  assert_int_equal(op_count("update", "200"), 1);
}

static void test_cert_errors(void **state)
{
  FILE *f;
  char path[400];
  snprintf(path, sizeof(path), "%s/garbage.pem", s_dir);
  assert_non_null(f = fopen(path, "w"));
  fputs("not a certificate\n", f);
  fclose(f);
  expect_create_error("cb_bad", "rsa.chain.pem", "other.key", "", 400,
                      "APIG.2101");
  expect_create_error("cb_bad", "expired.chain.pem", "expired.key", "", 400,
                      "APIG.2102");
  expect_create_error("cb_bad", "rsa.rev.pem", "rsa.key", "", 400, "APIG.2104");
  expect_create_error("cb_bad", "rsa.nolink.pem", "rsa.key", "", 400,
                      "APIG.2104");
  expect_create_error("cb_bad", "rsa.chain.pem", "enc.key", "", 400,
                      "APIG.2105");
  expect_create_error("cb_bad", "garbage.pem", "rsa.key", "", 400, "APIG.2106");
  expect_create_error("cb_bad", "ed.pem", "ed.key", "", 400, "APIG.2106");
  expect_create_error("cb_bad", "rsa.chain.pem", "garbage.pem", "", 400,
                      "APIG.2106");
  static const char *const bad_names[] = {
      "abc",
      "1abc",
      "_abc",
      "api.example.com",
      "a-bc",
      "star*",
      "a123456789012345678901234567890123456789012345678901"};
  for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
    expect_create_error(bad_names[i], "rsa.chain.pem", "rsa.key", "", 400,
                        "APIG.2012");
  expect_create_error(NULL, "rsa.chain.pem", "rsa.key", "", 400, "APIG.2001");
  expect_create_error("cb_ok_name", "rsa.chain.pem", NULL, "", 400,
                      "APIG.2001");
  expect_create_error("cb_ok_name", "rsa.chain.pem", "rsa.key",
                      "\"surprise\":\"x\"", 400, "APIG.2012");
  expect_create_error("cb_ok_name", "rsa.chain.pem", "rsa.key",
                      "\"type\":\"instance\",\"instance_id\":\"nope\"", 404,
                      "APIG.3030");
  /* a leaf with its root is accepted (the chain links), and a name of
   * 4 and of 50 characters */
  create_cert("abcd", "rsa.full.pem", "rsa.key");
  create_cert("a1234567890123456789012345678901234567890123456789", "rsa.pem",
              "rsa.key");
  struct resp r;
  cert_call("GET", "ffffffffffffffffffffffffffffffff", NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  cert_call("DELETE", "ffffffffffffffffffffffffffffffff", NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  /* a key without the certificates permission may not create */
  char *body = cert_form("cb_ro", "rsa.chain.pem", "rsa.key", "");
  signed_at("ReadOnlyKey", "ReadOnlySecret", time(NULL), "POST",
            "/v2/" PROJECT "/apigw/certificates", NULL, body, &r);
  free(body);
  expect_error(&r, 403, "APIG.1005");
  resp_free(&r);
}

/* certbind's own codec (api/cert.h) against the simulator: the body it
 * builds from real PEM files is accepted, its parsers read what the
 * simulator answers, and the answers get the classes and problems the
 * engine relies on. */
static void cert_codec_call(enum apig_op op, const char *id,
                            const struct apig_cert_query *q, const char *body,
                            struct resp *r)
{
  struct apig_url u;
  struct apig_endpoint ep;
  assert_int_equal(apig_endpoint_parse("https://127.0.0.1:1", &ep), 0);
  int rc = op == APIG_OP_CERT_LIST ? apig_cert_url_list(&ep, PROJECT, q, &u)
                                   : apig_cert_url(&ep, PROJECT, op, id, &u);
  apig_endpoint_free(&ep);
  assert_int_equal(rc, 0);
  signed_req(apig_op_method(op), u.path, *u.query ? u.query : NULL, body, r);
  apig_url_free(&u);
  assert_no_pem(r);
}

static char *cert_codec_body(const char *name, const char *pem_file,
                             const char *key_file)
{
  char *pem = slurp_cert_file(pem_file), *key = slurp_cert_file(key_file);
  struct apig_cert_form f = {.name = name,
                             .chain_pem = pem,
                             .chain_len = strlen(pem),
                             .key_pem = key,
                             .key_len = strlen(key),
                             .type = APIG_CERT_GLOBAL};
  char *body;
  size_t len;
  assert_int_equal(apig_cert_body(&f, &body, &len), 0);
  OPENSSL_cleanse(key, strlen(key));
  free(key);
  free(pem);
  return body;
}

static enum apig_class cert_codec_class(enum apig_op op, const struct resp *r,
                                        enum apig_cert_problem *problem)
{
  struct apig_error e;
  apig_parse_error(r->body, r->len, &e);
  *problem = apig_cert_problem(op, r->status, e.code);
  return apig_classify(op, r->status, false, e.code, e.msg);
}

static void test_cert_codec_round_trip(void **state)
{
  char name[APIG_CERT_NAME_MAX + 1];
  struct apig_cert c;
  struct apig_cert_page page;
  enum apig_cert_problem problem;
  struct resp r;
  char why[128], id[64];

  assert_int_equal(apig_cert_name("api.example-com", "1a2b3c4d5e", name), 0);
  assert_string_equal(name, "cb_api_example_com_1a2b3c4d");
  char *body = cert_codec_body(name, "rsa.chain.pem", "rsa.key");
  cert_codec_call(APIG_OP_CERT_CREATE, NULL, NULL, body, &r);
  OPENSSL_cleanse(body, strlen(body));
  free(body);
  assert_int_equal(r.status, 200);
  assert_int_equal(apig_cert_parse(r.body, r.len, &c, why, sizeof(why)), 0);
  resp_free(&r);
  snprintf(id, sizeof(id), "%s", c.id);
  assert_string_equal(c.name, name);
  assert_string_equal(c.common_name, "api.example.com");
  assert_int_equal(c.nsan, 1);
  assert_string_equal(c.san[0], "api.example.com");
  /* the leaf's serial is 0x1001 (make-leaf-certs.sh) */
  assert_true(apig_cert_serial_matches(c.serial_number, "4097", "1001"));
  assert_true(c.not_after > (int64_t)time(NULL));
  assert_true(c.not_before > 0 && c.not_before < c.not_after);
  int64_t not_after = c.not_after;
  apig_cert_free(&c);

  cert_codec_call(APIG_OP_CERT_SHOW, id, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(apig_cert_parse(r.body, r.len, &c, why, sizeof(why)), 0);
  assert_string_equal(c.id, id);
  assert_int_equal(c.not_after, not_after);
  apig_cert_free(&c);
  resp_free(&r);

  /* found by its name, without a serial in the list item */
  struct apig_cert_query q = {.limit = APIG_LIST_LIMIT, .name = name};
  cert_codec_call(APIG_OP_CERT_LIST, NULL, &q, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(apig_cert_parse_list(r.body, r.len, &page, why, sizeof(why)),
                   0);
  assert_int_equal(page.n, 1);
  assert_int_equal(page.total, 1);
  assert_string_equal(page.items[0].id, id);
  assert_null(page.items[0].serial_number);
  assert_int_equal(page.items[0].not_after, not_after);
  apig_cert_page_free(&page);
  resp_free(&r);

  /* update in place with the same body shape */
  body = cert_codec_body(name, "ec.chain.pem", "ec.key");
  cert_codec_call(APIG_OP_CERT_UPDATE, id, NULL, body, &r);
  OPENSSL_cleanse(body, strlen(body));
  free(body);
  assert_int_equal(r.status, 200);
  assert_int_equal(apig_cert_parse(r.body, r.len, &c, why, sizeof(why)), 0);
  assert_string_equal(c.algorithm_type, "ECC");
  apig_cert_free(&c);
  resp_free(&r);

  /* a key for another certificate: permanent, named */
  body = cert_codec_body("cb_other_1a2b3c4d", "rsa.chain.pem", "other.key");
  cert_codec_call(APIG_OP_CERT_CREATE, NULL, NULL, body, &r);
  OPENSSL_cleanse(body, strlen(body));
  free(body);
  assert_int_equal(cert_codec_class(APIG_OP_CERT_CREATE, &r, &problem),
                   APIG_PERMANENT);
  assert_int_equal(problem, APIG_CERT_KEY_MISMATCH);
  resp_free(&r);

  /* delete while bound: permanent, in use; then deleted; then gone */
  expect_write("attach", id, GW1, "api.example.com", NULL);
  cert_codec_call(APIG_OP_CERT_DELETE, id, NULL, NULL, &r);
  assert_int_equal(cert_codec_class(APIG_OP_CERT_DELETE, &r, &problem),
                   APIG_PERMANENT);
  assert_int_equal(problem, APIG_CERT_IN_USE);
  resp_free(&r);
  expect_write("detach", id, GW1, "api.example.com", NULL);
  cert_codec_call(APIG_OP_CERT_DELETE, id, NULL, NULL, &r);
  assert_int_equal(cert_codec_class(APIG_OP_CERT_DELETE, &r, &problem),
                   APIG_OK);
  resp_free(&r);
  cert_codec_call(APIG_OP_CERT_DELETE, id, NULL, NULL, &r);
  assert_int_equal(cert_codec_class(APIG_OP_CERT_DELETE, &r, &problem),
                   APIG_DONE_ALREADY);
  assert_int_equal(problem, APIG_CERT_NOT_FOUND);
  resp_free(&r);
  (void)state;
}

static void test_cert_list(void **state)
{
  /* the seed has three certificates in this project; C's common name is
   * api.example.com (its first SAN) */
  assert_int_equal(certs_total(NULL), 3);
  create_cert("cb_page_0", "rsa.chain.pem", "rsa.key");
  create_cert("cb_page_1", "ec.chain.pem", "ec.key");
  create_cert("cb_page_2", "rsa.chain.pem", "rsa.key");
  assert_int_equal(certs_total(NULL), 6);
  assert_int_equal(certs_total("name=cb_page"), 3);
  assert_int_equal(certs_total("name=cb_page_1"), 1);
  assert_int_equal(certs_total("common_name=api.example.com"), 4);
  assert_int_equal(certs_total("common_name=example.com"), 0);
  assert_int_equal(certs_total("algorithm_type=ECC"), 1);

  struct resp r;
  cert_call("GET", NULL, NULL, "name=cb_page&limit=2&offset=1", &r);
  assert_int_equal(r.status, 200);
  yajl_val v = parse(&r);
  assert_int_equal(jint(v, "total", NULL), 3);
  assert_int_equal(jint(v, "size", NULL), 2);
  const char *cp[] = {"certs", NULL};
  yajl_val certs = yajl_tree_get(v, cp, yajl_t_array);
  assert_non_null(certs);
  assert_int_equal(certs->u.array.len, 2);
  yajl_val first = certs->u.array.values[0];
  assert_string_equal(jstr(first, "name", NULL), "cb_page_1");
  /* list items (CertBase) have no serial_number, not_before, issuer */
  assert_null(jstr(first, "serial_number", NULL));
  assert_null(jstr(first, "not_before", NULL));
  assert_non_null(jstr(first, "not_after", NULL));
  yajl_tree_free(v);
  resp_free(&r);
  cert_call("GET", NULL, NULL, "limit=abc", &r);
  expect_error(&r, 400, "APIG.2012");
  resp_free(&r);
}

static void test_cert_delete_and_moves(void **state)
{
  const char *x = create_cert("cb_old", "rsa.chain.pem", "rsa.key");
  char old[64];
  snprintf(old, sizeof(old), "%s", x);
  expect_write("attach", old, GW1, "api.example.com", NULL);
  expect_write("attach", old, GW2, "api.example.com", NULL);
  struct resp r;
  cert_call("DELETE", old, NULL, NULL, &r);
  expect_error(&r, 400, "APIG.3400");
  resp_free(&r);
  /* a renewal: the new object takes each binding by attach alone */
  const char *y = create_cert("cb_new", "ec.chain.pem", "ec.key");
  expect_write("attach", y, GW1, "api.example.com", NULL);
  cert_call("DELETE", old, NULL, NULL, &r);
  expect_error(&r, 400, "APIG.3400"); /* still bound on GW2 */
  resp_free(&r);
  expect_write("attach", y, GW2, "api.example.com", NULL);
  assert_int_equal(stat_of("unbound_transitions"), 0);
  cert_call("DELETE", old, NULL, NULL, &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  cert_call("GET", old, NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  cert_call("DELETE", old, NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  /* a detach of the last certificate leaves the domain unbound */
  expect_write("detach", y, GW1, "api.example.com", NULL);
  assert_int_equal(stat_of("unbound_transitions"), 1);
}

static void test_cert_quota(void **state)
{
  /* three seed certificates already count */
  admin_post("/__sim/settings", "{\"cert_quota\":4}");
  create_cert("cb_quota_1", "rsa.chain.pem", "rsa.key");
  expect_create_error("cb_quota_2", "rsa.chain.pem", "rsa.key", "", 400,
                      "APIG.3199");
  admin_post("/__sim/settings", "{\"cert_quota\":0}");
  create_cert("cb_quota_2", "rsa.chain.pem", "rsa.key");
}

static void test_cert_san_on_attach(void **state)
{
  const char *id = create_cert("cb_san", "rsa.chain.pem", "rsa.key");
  struct resp r;
  write1("attach", id, GW1, "www.example.com", NULL, &r);
  expect_error(&r, 400, "APIG.2103");
  resp_free(&r);
  expect_write("attach", id, GW1, "api.example.com", NULL);
}

static void test_cert_visibility(void **state)
{
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":3600000}");
  const char *x = create_cert("cb_late", "rsa.chain.pem", "rsa.key");
  char id[64];
  snprintf(id, sizeof(id), "%s", x);
  struct resp r;
  cert_call("GET", id, NULL, NULL, &r);
  expect_error(&r, 404, "APIG.3025");
  resp_free(&r);
  assert_int_equal(certs_total("name=cb_late"), 0);
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":0}");
  cert_call("GET", id, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_int_equal(certs_total("name=cb_late"), 1);
  /* a delete hides it only after the delay */
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":3600000}");
  cert_call("DELETE", id, NULL, NULL, &r);
  assert_int_equal(r.status, 204);
  resp_free(&r);
  cert_call("GET", id, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  resp_free(&r);
  assert_int_equal(certs_total("name=cb_late"), 1);
  admin_post("/__sim/settings", "{\"visibility_delay_ms\":0}");
  assert_int_equal(certs_total("name=cb_late"), 0);
}

/* Seeds may hold PEM content (inline or as files beside the seed); bad
 * content makes the seed fail to load. */
static void test_cert_seed_pem(void **state)
{
  char path[300];
  snprintf(path, sizeof(path), "%s/pem-seed.json", s_dir);
#define PEM_SEED_FMT                                                           \
  "{\"projects\":[{\"id\":\"%s\",\"credentials\":[{\"ak\":\"AccessKey\","      \
  "\"sk\":\"SecretKey\"}]}],\"certificates\":[{\"id\":\"%s\",\"project\":"     \
  "\"%s\",\"name\":\"cb_seeded\",\"cert_file\":\"rsa.chain.pem\","             \
  "\"key_file\":\"%s\"}]}\n"
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, PEM_SEED_FMT, PROJECT, CERT_A, PROJECT, "other.key");
  assert_int_equal(fclose(f), 0);
  char *argv[] = {SIM_BIN, "--seed-file", path, NULL};
  assert_int_equal(run_cmd(argv), 1);

  assert_non_null(f = fopen(path, "w"));
  fprintf(f, PEM_SEED_FMT, PROJECT, CERT_A, PROJECT, "rsa.key");
  assert_int_equal(fclose(f), 0);
  struct child c = {0};
  assert_int_equal(start_sim(&c, path, true, "pem"), 0);
  struct resp r;
  signed_at_on(&c, "AccessKey", "SecretKey", time(NULL), "GET",
               CERTS_PATH CERT_A, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_no_pem(&r);
  yajl_val v = parse(&r);
  assert_string_equal(jstr(v, "common_name", NULL), "api.example.com");
  assert_string_equal(jstr(v, "serial_number", NULL), "4097");
  yajl_tree_free(v);
  resp_free(&r);
  assert_int_equal(stop_sim(&c), 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_request_id_everywhere, reset_world),
      cmocka_unit_test_setup(test_unknown_route, reset_world),
      cmocka_unit_test(test_tls_session_resumed),
      cmocka_unit_test_setup(test_show, reset_world),
      cmocka_unit_test_setup(test_token_issue_and_use, reset_world),
      cmocka_unit_test_setup(test_token_expiry_and_revocation, reset_world),
      cmocka_unit_test_setup(test_published_vector, reset_world),
      cmocka_unit_test_setup(test_go_sdk_vectors, reset_world),
      cmocka_unit_test_setup(test_derived_vectors, reset_world),
      cmocka_unit_test_setup(test_wrong_sk_and_lockout, reset_world),
      cmocka_unit_test_setup(test_lockout_expires, reset_world),
      cmocka_unit_test_setup(test_clock_window, reset_world),
      cmocka_unit_test_setup(test_permissions, reset_world),
      cmocka_unit_test_setup(test_attach_validation, reset_world),
      cmocka_unit_test_setup(test_attach_atomic_and_partial, reset_world),
      cmocka_unit_test_setup(test_attach_all_gateways_and_flags, reset_world),
      cmocka_unit_test_setup(test_move_and_noop, reset_world),
      cmocka_unit_test_setup(test_detach, reset_world),
      cmocka_unit_test_setup(test_list_fields_and_order, reset_world),
      cmocka_unit_test_setup(test_list_pagination_and_filter, reset_world),
      cmocka_unit_test_setup(test_list_bytes, reset_world),
      cmocka_unit_test(test_list_clamp_500),
      cmocka_unit_test(test_cli),
      cmocka_unit_test_setup(test_visibility_delay, reset_world),
      cmocka_unit_test_setup(test_overlapping_writes, reset_world),
      cmocka_unit_test_setup(test_fault_error_rates, reset_world),
      cmocka_unit_test_setup(test_fault_throttle, reset_world),
      cmocka_unit_test_setup(test_fault_latency, reset_world),
      cmocka_unit_test_setup(test_fault_resets, reset_world),
      cmocka_unit_test_setup(test_fault_slow_body, reset_world),
      cmocka_unit_test_setup(test_stats_and_reset, reset_world),
      cmocka_unit_test(test_batch_attach_moves),
      cmocka_unit_test(test_batch_detach),
      cmocka_unit_test(test_batch_partial_and_atomic),
      cmocka_unit_test(test_batch_visibility),
      cmocka_unit_test(test_seed_duplicate_domain),
      cmocka_unit_test_setup(test_cert_create_show_update, reset_world),
      cmocka_unit_test_setup(test_cert_errors, reset_world),
      cmocka_unit_test_setup(test_cert_list, reset_world),
      cmocka_unit_test_setup(test_cert_codec_round_trip, reset_world),
      cmocka_unit_test_setup(test_cert_delete_and_moves, reset_world),
      cmocka_unit_test_setup(test_cert_quota, reset_world),
      cmocka_unit_test_setup(test_cert_san_on_attach, reset_world),
      cmocka_unit_test_setup(test_cert_visibility, reset_world),
      cmocka_unit_test(test_cert_seed_pem),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
