/* SPDX-License-Identifier: MIT */
/*
 * Valid files, one test per section: what the loader builds, including
 * every documented default (docs/cli.md).
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

static void test_accounts_and_defaults(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_HEAD T_BIND, &cfg);
  assert_int_equal(cfg.naccounts, 2);
  const struct config_account *a = &cfg.accounts[0];
  assert_string_equal(a->name, "a1");
  assert_string_equal(a->region, "ap-southeast-1");
  assert_string_equal(a->project_id, "0123456789abcdef0123456789abcdef");
  assert_string_equal(a->endpoint,
                      "https://apig.ap-southeast-1.myhuaweicloud.com");
  assert_int_equal(a->auth_method, CONFIG_AUTH_TOKEN);
  assert_null(a->ca_file);
  assert_null(a->iam_endpoint);
  assert_null(a->access_key.value);
  /* limits defaults: 5 req/s, burst 10, 32 in flight */
  assert_true(a->limits.requests_per_second == 5.0);
  assert_int_equal(a->limits.burst, 10);
  assert_int_equal(a->limits.max_in_flight, 32);
  assert_string_equal(cfg.accounts[1].name, "a2");
  assert_string_equal(cfg.accounts[1].project_id,
                      "0123456789ABCDEF0123456789abcdeZ");
  assert_string_equal(cfg.accounts[1].endpoint,
                      "https://apig.eu-west-101.myhuaweicloud.com");
  /* section defaults when policy has only mode and the rest is absent */
  assert_int_equal(cfg.policy.mode, CONFIG_MODE_UPSERT);
  assert_int_equal(cfg.policy.batch_size, 50);
  assert_true(cfg.policy.max_detach_ratio == 0.3);
  assert_int_equal(cfg.policy.max_detach_count, 100);
  assert_int_equal(cfg.policy.confirm_timeout_s, 60);
  assert_int_equal(cfg.policy.confirm_delay_ms, 1000);
  assert_int_equal(cfg.retry.max_attempts, 6);
  assert_int_equal(cfg.retry.base_delay_ms, 500);
  assert_int_equal(cfg.retry.max_delay_ms, 60000);
  assert_false(cfg.rollout.enabled);
  assert_int_equal(cfg.rollout.nwaves, 0);
  assert_int_equal(cfg.daemon.resync_interval_s, 300);
  assert_string_equal(cfg.daemon.state_dir, "/var/lib/certbind");
  assert_null(cfg.daemon.metrics_file);
  assert_string_equal(cfg.path, "t.yaml");
  config_free(&cfg);
  assert_null(cfg.accounts);
}

static void test_endpoint_override(void **state)
{
  static const char *const in[] = {"https://APIG.Example.COM:8443/",
                                   "https://127.0.0.1:8443",
                                   "https://[::1]:443", "https://localhost"};
  static const char *const out[] = {"https://apig.example.com:8443",
                                    "https://127.0.0.1:8443",
                                    "https://[::1]:443", "https://localhost"};
  (void)state;
  for (size_t i = 0; i < 4; i++) {
    struct config cfg;
    char *doc = t_fmt(
        "version: 1\n"
        "accounts:\n"
        "  a1:\n"
        "    region: r1\n"
        "    project_id: 0123456789abcdef0123456789abcdef\n"
        "    endpoint: %s\n"
        "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n"
        "gateways: {}\ncertificates: {}\nbindings: []\npolicy: {mode: sync}\n",
        in[i]);
    t_expect_ok(doc, &cfg);
    assert_string_equal(cfg.accounts[0].endpoint, out[i]);
    config_free(&cfg);
    free(doc);
  }
}

static void test_auth_aksk(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok("version: 1\n"
              "accounts:\n"
              "  sg:\n"
              "    region: ap-southeast-1\n"
              "    project_id: 0123456789abcdef0123456789abcdef\n"
              "    auth:\n"
              "      method: aksk\n"
              "      access_key: { env: CB_TEST_AK }\n"
              "      secret_key: { env: CB_TEST_SK }\n"
              "gateways: {}\ncertificates: {}\nbindings: []\n"
              "policy: {mode: upsert}\n",
              &cfg);
  const struct config_account *a = &cfg.accounts[0];
  assert_int_equal(a->auth_method, CONFIG_AUTH_AKSK);
  assert_string_equal(a->access_key.value, T_AK_VALUE);
  assert_int_equal(a->access_key.len, strlen(T_AK_VALUE));
  assert_string_equal(a->access_key.source, "env CB_TEST_AK");
  assert_string_equal(a->secret_key.value, T_SK_VALUE);
  assert_null(a->token.value);
  assert_null(a->password.value);
  config_free(&cfg);
}

static void test_auth_token(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_HEAD T_BIND, &cfg);
  assert_int_equal(cfg.accounts[0].auth_method, CONFIG_AUTH_TOKEN);
  assert_string_equal(cfg.accounts[0].token.value, T_TOKEN_VALUE);
  assert_string_equal(cfg.accounts[0].token.source, "env CB_TEST_TOKEN");
  config_free(&cfg);
}

static void test_auth_password(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok("version: 1\n"
              "accounts:\n"
              "  p1:\n"
              "    region: cn-north-4\n"
              "    project_id: 0123456789abcdef0123456789abcdef\n"
              "    auth:\n"
              "      method: password\n"
              "      user: certbind\n"
              "      domain: acme-iam\n"
              "      password: { env: CB_TEST_SK }\n"
              "  p2:\n"
              "    region: cn-north-4\n"
              "    project_id: 0123456789abcdef0123456789abcdef\n"
              "    auth:\n"
              "      method: password\n"
              "      iam_endpoint: https://iam.example.net:8443\n"
              "      user: u2\n"
              "      domain: d2\n"
              "      password: { env: CB_TEST_AK }\n"
              "gateways: {}\ncertificates: {}\nbindings: []\n"
              "policy: {mode: upsert}\n",
              &cfg);
  const struct config_account *a = &cfg.accounts[0];
  assert_int_equal(a->auth_method, CONFIG_AUTH_PASSWORD);
  assert_string_equal(a->user, "certbind");
  assert_string_equal(a->domain, "acme-iam");
  assert_string_equal(a->password.value, T_SK_VALUE);
  assert_string_equal(a->iam_endpoint,
                      "https://iam.cn-north-4.myhuaweicloud.com");
  assert_string_equal(cfg.accounts[1].iam_endpoint,
                      "https://iam.example.net:8443");
  assert_string_equal(cfg.accounts[1].password.value, T_AK_VALUE);
  config_free(&cfg);
}

static void test_tls_and_limits(void **state)
{
  struct config cfg;
  char *ca = t_secret_file("-----BEGIN CERTIFICATE-----\n", 28, 0644);
  char *doc = t_fmt(
      "version: 1\n"
      "accounts:\n"
      "  a1:\n"
      "    region: r1\n"
      "    project_id: 0123456789abcdef0123456789abcdef\n"
      "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n"
      "    tls: { ca_file: %s }\n"
      "    limits: {requests_per_second: 2.5, burst: 20, max_in_flight: 4096}\n"
      "gateways: {}\ncertificates: {}\nbindings: []\npolicy: {mode: sync}\n",
      ca);

  (void)state;
  t_expect_ok(doc, &cfg);
  assert_string_equal(cfg.accounts[0].ca_file, ca);
  assert_true(cfg.accounts[0].limits.requests_per_second == 2.5);
  assert_int_equal(cfg.accounts[0].limits.burst, 20);
  assert_int_equal(cfg.accounts[0].limits.max_in_flight, 4096);
  config_free(&cfg);
  free(doc);
  t_rm(ca);
}

static void test_gateways_and_certificates(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_HEAD T_BIND, &cfg);
  assert_int_equal(cfg.ngateways, 3);
  assert_string_equal(cfg.gateways[0].name, "g1");
  assert_int_equal(cfg.gateways[0].account, 0);
  assert_string_equal(cfg.gateways[0].instance_id,
                      "f0fa1789-3b76-433b-a787-9892951c620e");
  /* APIG reports instance IDs in lowercase */
  assert_string_equal(cfg.gateways[1].instance_id,
                      "7d39549681c54d968ec2910da9da95cd");
  assert_int_equal(cfg.gateways[2].account, 1);
  assert_int_equal(cfg.ncertificates, 3);
  assert_string_equal(cfg.certificates[1].name, "c2");
  assert_int_equal(cfg.certificates[1].account, 0);
  assert_string_equal(cfg.certificates[1].id,
                      "B27BE832F2E9441C8127FE48E3B5AC67");
  assert_int_equal(cfg.certificates[2].account, 1);
  config_free(&cfg);
}

static const struct config_binding *find(const struct config *cfg,
                                         const char *cert, const char *gw,
                                         const char *domain)
{
  for (size_t i = 0; i < cfg->nbindings; i++) {
    const struct config_binding *b = &cfg->bindings[i];
    if (!strcmp(cfg->certificates[b->certificate].name, cert) &&
        !strcmp(cfg->gateways[b->gateway].name, gw) &&
        !strcmp(b->domain, domain))
      return b;
  }
  return NULL;
}

static void test_bindings_expansion(void **state)
{
  struct config cfg;
  const struct config_binding *b;

  (void)state;
  t_expect_ok(
      T_HEAD
      "bindings:\n"            /* 20 */
      "- certificate: c1\n"    /* 21 */
      "  gateways: [g1, g2]\n" /* 22 */
      "  domains: [API.Example.com, \"*.example.com\", "
      "xn--bcher-kva.example]\n" /* 23 */
      "  verify_client: true\n"  /* 24 */
      "- {certificate: c3, gateways: [g3], domains: [api.example.com]}\n",
      &cfg);
  /* 2 gateways x 3 domains + 1 */
  assert_int_equal(cfg.nbindings, 7);
  b = find(&cfg, "c1", "g1", "api.example.com"); /* lowercased */
  assert_non_null(b);
  assert_true(b->verify_client);
  assert_int_equal(b->line, 23);
  assert_int_equal(b->col, 13);
  b = find(&cfg, "c1", "g2", "*.example.com");
  assert_non_null(b);
  assert_int_equal(b->line, 23);
  assert_int_equal(b->col, 30);
  assert_non_null(find(&cfg, "c1", "g1", "xn--bcher-kva.example"));
  assert_non_null(find(&cfg, "c1", "g2", "xn--bcher-kva.example"));
  assert_non_null(find(&cfg, "c1", "g1", "*.example.com"));
  assert_non_null(find(&cfg, "c1", "g2", "api.example.com"));
  b = find(&cfg, "c3", "g3", "api.example.com");
  assert_non_null(b);
  assert_false(b->verify_client); /* the default */
  assert_int_equal(b->line, 25);
  config_free(&cfg);
}

/* A file of many bindings (more than one 64 KiB block of domains): every
 * binding is there once, the gateways of one domain share its stored copy
 * (one copy a domain, not one a binding), and config_free frees the
 * blocks. A model built by hand (no blocks) still has each domain freed. */
static void test_bindings_many_share_domains(void **state)
{
  enum { N = 4000 };
  size_t cap = 64 + N * 24, len;
  char *doc = malloc(sizeof(T_HEAD) + cap);
  struct config cfg;

  (void)state;
  assert_non_null(doc);
  len = (size_t)snprintf(doc, sizeof(T_HEAD) + cap, "%s%s", T_HEAD,
                         "bindings:\n- certificate: c1\n  gateways: [g1, g2]\n"
                         "  domains:\n");
  for (size_t i = 0; i < N; i++)
    len += (size_t)snprintf(doc + len, sizeof(T_HEAD) + cap - len,
                            "  - d%zu.Example.com\n", i);
  t_expect_ok(doc, &cfg);
  free(doc);
  assert_int_equal(cfg.nbindings, 2 * N);
  assert_non_null(cfg.domain_blocks);
  /* in file order: each domain on g1, then on g2 */
  for (size_t i = 0; i < N; i++) {
    char want[32];
    const struct config_binding *a = &cfg.bindings[2 * i];
    const struct config_binding *b = &cfg.bindings[2 * i + 1];

    snprintf(want, sizeof want, "d%zu.example.com", i);
    assert_string_equal(a->domain, want);
    assert_string_equal(cfg.gateways[a->gateway].name, "g1");
    assert_string_equal(cfg.gateways[b->gateway].name, "g2");
    assert_ptr_equal(a->domain, b->domain);
    assert_int_equal(a->line, 24 + i);
  }
  config_free(&cfg);
  assert_null(cfg.domain_blocks);
  assert_null(cfg.bindings);

  struct config_binding *hand = calloc(2, sizeof(*hand));
  assert_non_null(hand);
  hand[0].domain = strdup("a.example.com");
  hand[1].domain = strdup("b.example.com");
  cfg = (struct config){.bindings = hand, .nbindings = 2};
  config_free(&cfg); /* LeakSanitizer: both domains freed */
}

/* Domains are stored in the one form APIG and the ledger see: U-labels as
 * A-labels, one trailing dot dropped, lowercase; the wildcard kept. */
static void test_domains_normalised(void **state)
{
  static const struct {
    const char *written, *stored;
  } cases[] = {
      {"b\xc3\xbc"
       "cher.example.com",
       "xn--bcher-kva.example.com"},
      {"B\xc3\x9c"
       "CHER.Example.COM",
       "xn--bcher-kva.example.com"},
      {"api.example.com.", "api.example.com"},
      {"API.Example.com.", "api.example.com"},
      {"*.b\xc3\xbc"
       "cher.example.",
       "*.xn--bcher-kva.example"},
      {"xn--bcher-kva.example.com", "xn--bcher-kva.example.com"},
      {"XN--BCHER-KVA.example.com", "xn--bcher-kva.example.com"},
      /* non-transitional: sharp s stays itself, not "ss" */
      {"fa\xc3\x9f.example", "xn--fa-hia.example"},
      {"\xe5\x85\xac\xe5\x8f\xb8.example.cn", "xn--55qx5d.example.cn"},
      /* an ASCII label with "--" that is not xn-- is an ordinary name */
      {"ab--cd.example.com", "ab--cd.example.com"},
  };

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct config cfg;
    char *doc = t_fmt(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                             "domains: [\"%s\"]}\n",
                      cases[i].written);
    t_expect_ok(doc, &cfg);
    assert_int_equal(cfg.nbindings, 1);
    assert_string_equal(cfg.bindings[0].domain, cases[i].stored);
    config_free(&cfg);
    free(doc);
  }
}

static void test_policy_retry(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_ACCOUNTS T_GATEWAYS T_CERTS T_BIND
              "policy:\n"
              "  mode: sync\n"
              "  batch_size: 500\n"
              "  max_detach_ratio: 1\n"
              "  max_detach_count: 0\n"
              "  confirm_timeout_s: 3600\n"
              "  confirm_delay_ms: 0\n"
              "retry: {max_attempts: 100, base_delay_ms: 1, "
              "max_delay_ms: 1}\n",
              &cfg);
  assert_int_equal(cfg.policy.mode, CONFIG_MODE_SYNC);
  assert_int_equal(cfg.policy.batch_size, 500);
  assert_true(cfg.policy.max_detach_ratio == 1.0);
  assert_int_equal(cfg.policy.max_detach_count, 0);
  assert_int_equal(cfg.policy.confirm_timeout_s, 3600);
  assert_int_equal(cfg.policy.confirm_delay_ms, 0);
  assert_int_equal(cfg.retry.max_attempts, 100);
  assert_int_equal(cfg.retry.base_delay_ms, 1);
  assert_int_equal(cfg.retry.max_delay_ms, 1);
  config_free(&cfg);
}

static void test_rollout(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_HEAD T_BIND "rollout:\n"
                            "  waves: [1, \"10%\", 25, 12.5%, \"100%\"]\n"
                            "  abort_failure_ratio: 0\n",
              &cfg);
  assert_true(cfg.rollout.enabled);
  assert_int_equal(cfg.rollout.nwaves, 5);
  assert_false(cfg.rollout.waves[0].is_share);
  assert_int_equal(cfg.rollout.waves[0].count, 1);
  assert_true(cfg.rollout.waves[1].is_share);
  assert_true(cfg.rollout.waves[1].share == 0.1);
  assert_int_equal(cfg.rollout.waves[2].count, 25);
  assert_true(cfg.rollout.waves[3].share == 0.125);
  assert_true(cfg.rollout.waves[4].share == 1.0);
  assert_int_equal(cfg.rollout.soak_s, 30); /* default */
  assert_true(cfg.rollout.abort_failure_ratio == 0.0);
  config_free(&cfg);
}

static void test_daemon(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok(T_HEAD T_BIND "daemon:\n"
                            "  resync_interval_s: 10\n"
                            "  state_dir: /tmp/certbind-state\n"
                            "  metrics_file: /tmp/certbind.prom\n",
              &cfg);
  assert_int_equal(cfg.daemon.resync_interval_s, 10);
  assert_string_equal(cfg.daemon.state_dir, "/tmp/certbind-state");
  assert_string_equal(cfg.daemon.metrics_file, "/tmp/certbind.prom");
  config_free(&cfg);
}

/* Sections may come in any order: bindings before what they name. */
static void test_any_order_and_bools(void **state)
{
  struct config cfg;

  (void)state;
  t_expect_ok("bindings:\n"
              "- {certificate: c, gateways: [g], domains: [a.b.example],\n"
              "   verify_client: TRUE}\n"
              "- {certificate: c, gateways: [g], domains: [b.example],\n"
              "   verify_client: False}\n"
              "policy: {mode: upsert}\n"
              "certificates: {c: {account: x, id: "
              "0123456789abcdef0123456789abcdef}}\n"
              "gateways: {g: {account: x, instance_id: "
              "0123456789abcdef0123456789abcdef}}\n"
              "accounts:\n"
              "  x: {region: r, project_id: 0123456789abcdef0123456789abcdef,\n"
              "      auth: {method: token, token: {env: CB_TEST_TOKEN}}}\n"
              "version: 1\n",
              &cfg);
  assert_int_equal(cfg.nbindings, 2);
  assert_true(cfg.bindings[0].verify_client);
  assert_false(cfg.bindings[1].verify_client);
  config_free(&cfg);
}

static void test_load_file_sha256(void **state)
{
  static const char doc[] = T_HEAD T_BIND;
  unsigned char md[32];
  char hex[65];
  char path[] = "/tmp/cbtest-cfg-XXXXXX";
  struct config cfg;
  struct config_diag diag = {0};
  int fd = mkstemp(path);

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
  close(fd);
  assert_int_equal(config_load(path, &cfg, &diag), 0);
  assert_string_equal(cfg.path, path);
  assert_int_equal(EVP_Digest(doc, strlen(doc), md, NULL, EVP_sha256(), NULL),
                   1);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(cfg.sha256, hex);
  config_free(&cfg);
  config_free(&cfg); /* safe on a zeroed config */
  unlink(path);
}

/* Replace every occurrence of from by to (caller frees). */
static char *replace_all(const char *s, const char *from, const char *to)
{
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  const char *p;

  for (p = strstr(s, from); p != NULL; p = strstr(p + fl, from))
    n++;
  char *out = malloc(strlen(s) + n * (tl + 1) + 1), *o = out;
  assert_non_null(out);
  while ((p = strstr(s, from)) != NULL) {
    memcpy(o, s, (size_t)(p - s));
    o += p - s;
    memcpy(o, to, tl);
    o += tl;
    s = p + fl;
  }
  strcpy(o, s);
  return out;
}

/* docs/examples/bindings.yaml stays valid (its credentials made here, in a
 * directory CREDENTIALS_DIRECTORY names as systemd would) and expands as
 * its comments say. */
static void test_example_file(void **state)
{
  static const char *const names[] = {"certbind_sg-ak", "certbind_sg-sk",
                                      "certbind_eu-password"};
  char dir[] = "/tmp/cbtest-cred-XXXXXX";
  char *text = NULL, *t1, *t2, *ca;
  size_t len = 0;
  FILE *f = fopen(CERTBIND_SOURCE_DIR "/docs/examples/bindings.yaml", "r");
  struct config cfg;

  (void)state;
  assert_non_null(f);
  {
    char buf[4096];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), f)) > 0) {
      text = realloc(text, len + r + 1);
      assert_non_null(text);
      memcpy(text + len, buf, r);
      len += r;
    }
    text[len] = '\0';
  }
  fclose(f);
  assert_non_null(mkdtemp(dir));
  for (size_t i = 0; i < 3; i++) {
    char *p = t_fmt("%s/%s", dir, names[i]);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    close(fd);
    free(p);
  }
  ca = t_secret_file("ca\n", 3, 0644);
  setenv("CREDENTIALS_DIRECTORY", dir, 1);
  t1 = replace_all(text, "/run/credentials/certbind.service", dir);
  t2 = replace_all(t1, "/etc/ssl/certs/ca-certificates.crt", ca);
  /* certbot's live directory: links to a real certificate for the names
   * the example binds */
  char *live = t_fmt("%s/live", dir);
  char *make = t_fmt("'%s' '%s' 'shop.example.com,*.shop.example.com' "
                     ">/dev/null && ln -s rsa.chain.pem '%s/fullchain.pem' && "
                     "ln -s rsa.key '%s/privkey.pem'",
                     MAKE_LEAF_CERTS, live, live, live);
  assert_int_equal(system(make), 0);
  char *t3 = replace_all(t2, "/etc/letsencrypt/live/shop.example.com", live);
  t_expect_ok(t3, &cfg);
  assert_int_equal(cfg.naccounts, 2);
  assert_int_equal(cfg.ngateways, 3);
  assert_int_equal(cfg.ncertificates, 4);
  assert_int_equal(cfg.nbindings, 6 + 1 + 2 + 4);
  const struct config_certificate *shop = &cfg.certificates[3];
  assert_string_equal(shop->name, "shop-example");
  assert_true(shop->managed);
  /* given by id: nothing of the files' form */
  assert_non_null(cfg.certificates[0].id);
  assert_null(cfg.certificates[0].managed);
  assert_int_equal(shop->managed->file.chain_count, 2);
  assert_int_equal(cfg.gateways[0].ningress, 2);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_AFTER_WRITE);
  assert_int_equal(cfg.accounts[1].auth_method, CONFIG_AUTH_PASSWORD);
  assert_true(cfg.rollout.enabled);
  assert_non_null(
      find(&cfg, "star-example-eu", "eu-edge-1", "xn--bcher-kva.example.eu"));
  config_free(&cfg);
  unsetenv("CREDENTIALS_DIRECTORY");
  char *rm = t_fmt("rm -rf '%s'", dir);
  assert_int_equal(system(rm), 0);
  free(rm);
  free(live);
  free(make);
  t_rm(ca);
  free(t1);
  free(t2);
  free(t3);
  free(text);
}

static void test_names(void **state)
{
  (void)state;
  assert_string_equal(config_mode_name(CONFIG_MODE_UPSERT), "upsert");
  assert_string_equal(config_mode_name(CONFIG_MODE_SYNC), "sync");
  assert_string_equal(config_auth_method_name(CONFIG_AUTH_AKSK), "aksk");
  assert_string_equal(config_auth_method_name(CONFIG_AUTH_TOKEN), "token");
  assert_string_equal(config_auth_method_name(CONFIG_AUTH_PASSWORD),
                      "password");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accounts_and_defaults),
      cmocka_unit_test(test_endpoint_override),
      cmocka_unit_test(test_auth_aksk),
      cmocka_unit_test(test_auth_token),
      cmocka_unit_test(test_auth_password),
      cmocka_unit_test(test_tls_and_limits),
      cmocka_unit_test(test_gateways_and_certificates),
      cmocka_unit_test(test_bindings_expansion),
      cmocka_unit_test(test_bindings_many_share_domains),
      cmocka_unit_test(test_domains_normalised),
      cmocka_unit_test(test_policy_retry),
      cmocka_unit_test(test_rollout),
      cmocka_unit_test(test_daemon),
      cmocka_unit_test(test_any_order_and_bools),
      cmocka_unit_test(test_load_file_sha256),
      cmocka_unit_test(test_example_file),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
