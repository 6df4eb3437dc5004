/* SPDX-License-Identifier: MIT */
/*
 * config_emit: a loaded model printed and loaded again is the same model
 * (every section, every binding), secrets stay references, the bindings
 * are regrouped one entry per (certificate, gateway set, flag), and the
 * same model gives the same bytes whatever order the file had.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

/* Every section, settings off their defaults, bindings given in an order
 * and grouping of their own. */
#define RICH                                                                   \
  "version: 1\n"                                                               \
  "accounts:\n"                                                                \
  "  zz:\n"                                                                    \
  "    region: eu-west-101\n"                                                  \
  "    project_id: 0123456789abcdef0123456789abcdef\n"                         \
  "    endpoint: https://127.0.0.1:8443/\n"                                    \
  "    auth: {method: aksk, access_key: {env: CB_TEST_AK},\n"                  \
  "           secret_key: {env: CB_TEST_SK}}\n"                                \
  "    limits: {requests_per_second: 2.5, burst: 3, max_in_flight: 7}\n"       \
  "  aa:\n"                                                                    \
  "    region: ap-southeast-1\n"                                               \
  "    project_id: 0123456789ABCDEF0123456789abcdeZ\n"                         \
  "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n"                   \
  "gateways:\n"                                                                \
  "  g2: {account: zz, instance_id: 7D39549681C54D968EC2910DA9DA95CD}\n"       \
  "  g1: {account: zz, instance_id: f0fa1789-3b76-433b-a787-9892951c620e}\n"   \
  "certificates:\n"                                                            \
  "  c1: {account: zz, id: a27be832f2e9441c8127fe48e3b5ac67}\n"                \
  "bindings:\n"                                                                \
  "- {certificate: c1, gateways: [g2], domains: [b.example.com]}\n"            \
  "- {certificate: c1, gateways: [g1, g2], domains: [z.example.com]}\n"        \
  "- {certificate: c1, gateways: [g1], domains: [b.example.com]}\n"            \
  "- {certificate: c1, gateways: [g2, g1], domains: ['*.w.example.com']}\n"    \
  "- {certificate: c1, gateways: [g1], domains: [m.example.com],\n"            \
  "   verify_client: true}\n"                                                  \
  "policy: {mode: sync, batch_size: 7, max_detach_ratio: 0.15,\n"              \
  "         max_detach_count: 9, confirm_timeout_s: 11, confirm_delay_ms: "    \
  "0}\n"                                                                       \
  "retry: {max_attempts: 2, base_delay_ms: 3, max_delay_ms: 4}\n"              \
  "rollout: {waves: [1, \"12.5%\", \"100%\"], soak_s: 5, "                     \
  "abort_failure_ratio: 0.25}\n"                                               \
  "daemon: {resync_interval_s: 60, state_dir: /tmp/x y,\n"                     \
  "         metrics_file: /tmp/m.prom}\n"

static char *emit(const struct config *cfg, const char *header)
{
  char *out = NULL;
  size_t len = 0;

  assert_int_equal(config_emit(cfg, header, &out, &len), 0);
  assert_int_equal(strlen(out), len);
  return out;
}

/* A binding as one comparable line. */
static char **binding_lines(const struct config *c)
{
  char **v = calloc(c->nbindings + 1, sizeof(*v));

  assert_non_null(v);
  for (size_t i = 0; i < c->nbindings; i++) {
    const struct config_binding *b = &c->bindings[i];
    v[i] = t_fmt("%s %s %s %d", c->certificates[b->certificate].name,
                 c->gateways[b->gateway].name, b->domain, b->verify_client);
  }
  return v;
}

static int by_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_same_bindings(const struct config *x, const struct config *y)
{
  char **a = binding_lines(x), **b = binding_lines(y);

  assert_int_equal(x->nbindings, y->nbindings);
  qsort(a, x->nbindings, sizeof(*a), by_str);
  qsort(b, y->nbindings, sizeof(*b), by_str);
  for (size_t i = 0; i < x->nbindings; i++) {
    assert_string_equal(a[i], b[i]);
    free(a[i]);
    free(b[i]);
  }
  free(a);
  free(b);
}

static void test_round_trip(void **state)
{
  struct config a, b;
  char *text;

  (void)state;
  t_expect_ok(RICH, &a);
  text = emit(&a, NULL);
  t_expect_ok(text, &b);
  assert_same_bindings(&a, &b);
  assert_int_equal(b.naccounts, 2);
  assert_string_equal(b.accounts[0].name, "aa"); /* sorted by name */
  assert_string_equal(b.accounts[0].endpoint,
                      "https://apig.ap-southeast-1.myhuaweicloud.com");
  assert_string_equal(b.accounts[1].endpoint, "https://127.0.0.1:8443");
  assert_string_equal(b.accounts[1].secret_key.source, "env CB_TEST_SK");
  assert_true(b.accounts[1].limits.requests_per_second == 2.5);
  assert_int_equal(b.accounts[1].limits.max_in_flight, 7);
  assert_string_equal(b.gateways[0].instance_id,
                      "f0fa1789-3b76-433b-a787-9892951c620e");
  assert_int_equal(b.policy.mode, CONFIG_MODE_SYNC);
  assert_true(b.policy.max_detach_ratio == 0.15);
  assert_int_equal(b.policy.confirm_delay_ms, 0);
  assert_int_equal(b.retry.max_delay_ms, 4);
  assert_true(b.rollout.enabled);
  assert_int_equal(b.rollout.nwaves, 3);
  assert_true(b.rollout.waves[1].is_share && b.rollout.waves[1].share == 0.125);
  assert_true(b.rollout.abort_failure_ratio == 0.25);
  assert_string_equal(b.daemon.state_dir, "/tmp/x y");
  assert_string_equal(b.daemon.metrics_file, "/tmp/m.prom");
  /* the secret values are read again, never printed */
  assert_null(strstr(text, T_SK_VALUE));
  assert_null(strstr(text, T_AK_VALUE));
  assert_null(strstr(text, T_TOKEN_VALUE));
  assert_non_null(strstr(text, "secret_key: {env: CB_TEST_SK}"));
  free(text);
  config_free(&a);
  config_free(&b);
}

static void test_grouping_and_bytes(void **state)
{
  struct config a, b;
  char *text, *again;

  (void)state;
  t_expect_ok(RICH, &a);
  text = emit(&a, "made by a test\nsecond line");
  assert_true(
      strncmp(text, "# made by a test\n# second line\nversion: 1\n", 42) == 0);
  /* b.example.com is on g1 and g2 from two entries: one entry now, with
   * the wildcard; z on the same set; m alone (its flag) */
  assert_non_null(strstr(text,
                         "- certificate: c1\n  gateways: [g1, g2]\n  domains:\n"
                         "  - '*.w.example.com'\n  - b.example.com\n"
                         "  - z.example.com\n"));
  assert_non_null(strstr(text, "- certificate: c1\n  gateways: [g1]\n"
                               "  domains:\n  - m.example.com\n"
                               "  verify_client: true\n"));
  assert_non_null(strstr(text, "waves: [1, 12.5%, 100%]"));
  /* loaded again and printed again: the same bytes */
  t_expect_ok(text, &b);
  again = emit(&b, "made by a test\nsecond line");
  assert_string_equal(text, again);
  free(text);
  free(again);
  config_free(&a);
  config_free(&b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_grouping_and_bytes),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
