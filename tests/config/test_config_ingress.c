/* SPDX-License-Identifier: MIT */
/*
 * gateways.NAME.ingress (addresses ready for connect(2)), policy.verify
 * and its default, policy.retire_after_s and policy.expiry_warning_days:
 * good values in the model, bad ones at their FILE:LINE:COL, and
 * config_emit writing them back.
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

/* Lines 1-10 T_ACCOUNTS, then:
 *   11 gateways:
 *   12   g1: {account: a1, instance_id: ..., ingress: INGRESS}
 *   13   g2: {account: a1, instance_id: ...}
 *   14 certificates: ... (T_CERTS from line 15 on: one line early here)
 * POLICY is the policy line (line 18). */
#define G1_PREFIX                                                              \
  "  g1: {account: a1, instance_id: f0fa1789-3b76-433b-a787-9892951c620e, "    \
  "ingress: "
static char *doc(const char *ingress, const char *policy)
{
  return t_fmt(T_ACCOUNTS
               "gateways:\n" G1_PREFIX "%s}\n"
               "  g2: {account: a1, instance_id: "
               "7D39549681C54D968EC2910DA9DA95CD}\n"
               "certificates:\n"
               "  c1: {account: a1, id: a27be832f2e9441c8127fe48e3b5ac67}\n"
               "bindings: []\n"
               "policy: %s\n",
               ingress, policy);
}

#define INGRESS_COL ((unsigned)strlen(G1_PREFIX) + 1)

static void load_ok(char *text, struct config *cfg)
{
  t_expect_ok(text, cfg);
  free(text);
}

static void expect_one(char *text, unsigned line, unsigned col,
                       const char *phrase)
{
  t_expect_one(text, line, col, phrase);
  free(text);
}

static void test_ingress_v4_and_v6(void **state)
{
  (void)state;
  struct config cfg;

  load_ok(doc("[\"203.0.113.10:443\", \"[::1]:8443\", "
              "\"[2001:DB8:0:0::7]:65535\", 127.0.0.1:1]",
              "{mode: upsert}"),
          &cfg);
  const struct config_gateway *g = &cfg.gateways[0];
  assert_int_equal(g->ningress, 4);
  assert_int_equal(cfg.gateways[1].ningress, 0);
  assert_null(cfg.gateways[1].ingress);

  const struct sockaddr_in *v4 =
      (const struct sockaddr_in *)&g->ingress[0].addr;
  assert_int_equal(v4->sin_family, AF_INET);
  assert_int_equal(g->ingress[0].addrlen, sizeof(struct sockaddr_in));
  assert_int_equal(ntohs(v4->sin_port), 443);
  assert_int_equal(ntohl(v4->sin_addr.s_addr), 0xCB00710Au);
  assert_string_equal(g->ingress[0].text, "203.0.113.10:443");
  assert_int_equal(g->ingress[0].line, 12);
  assert_int_equal(g->ingress[0].col, INGRESS_COL + 1);

  const struct sockaddr_in6 *v6 =
      (const struct sockaddr_in6 *)&g->ingress[1].addr;
  assert_int_equal(v6->sin6_family, AF_INET6);
  assert_int_equal(g->ingress[1].addrlen, sizeof(struct sockaddr_in6));
  assert_int_equal(ntohs(v6->sin6_port), 8443);
  assert_true(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
  assert_string_equal(g->ingress[1].text, "[::1]:8443");
  /* stored in inet_ntop's normal form */
  assert_string_equal(g->ingress[2].text, "[2001:db8::7]:65535");
  assert_string_equal(g->ingress[3].text, "127.0.0.1:1");
  config_free(&cfg);
}

static void test_ingress_refused(void **state)
{
  (void)state;
  static const struct {
    const char *addr, *why;
  } bad[] = {
      {"gw.example.com:443", "is not an IP address"},
      {"10.0.0.1", "needs a port"},
      {"10.0.0.1:0", "has a port that is not 1-65535"},
      {"10.0.0.1:65536", "has a port that is not 1-65535"},
      {"10.0.0.1:0443", "has a port that is not 1-65535"},
      {"10.0.0.1:https", "has a port that is not 1-65535"},
      {"10.0.0.1:", "has a port that is not 1-65535"},
      {"10.0.0:443", "is not an IP address"},
      {"::1:443", "is an IPv6 address without brackets"},
      {"[::1]", "needs a port: [IPv6]:PORT"},
      {"[::1]443", "needs a port: [IPv6]:PORT"},
      {"[::1:443", "has a '[' without its ']'"},
      {"[10.0.0.1]:443", "is not an IPv6 address in brackets"},
      {"[fe80::1%eth0]:443", "is not an IPv6 address in brackets"},
      {"[gw.example.com]:443", "is not an IPv6 address in brackets"},
      {"0.0.0.0:443", "is the unspecified address"},
      {"[::]:443", "is the unspecified address"},
      {":443", "is not IPv4:PORT or [IPv6]:PORT"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *ingress = t_fmt("[\"%s\"]", bad[i].addr);
    char *want =
        t_fmt("gateways.g1.ingress[0]: \"%s\" %s", bad[i].addr, bad[i].why);
    expect_one(doc(ingress, "{mode: upsert}"), 12, INGRESS_COL + 1, want);
    free(ingress);
    free(want);
  }
  expect_one(doc("[]", "{mode: upsert}"), 12, INGRESS_COL,
             "gateways.g1.ingress: expected a list of 1 to 256 addresses");
  expect_one(doc("\"10.0.0.1:443\"", "{mode: upsert}"), 12, INGRESS_COL,
             "gateways.g1.ingress: expected a list");
  expect_one(doc("[10.0.0.1:443, ~]", "{mode: upsert}"), 12, INGRESS_COL + 15,
             "gateways.g1.ingress[1]: expected a string, got null");
  /* the same address twice, in two spellings */
  expect_one(doc("[\"[::1]:443\", \"[0:0::1]:443\"]", "{mode: upsert}"), 12,
             INGRESS_COL + 14,
             "gateways.g1.ingress[1]: \"[0:0::1]:443\" is listed twice (as "
             "[::1]:443 at line 12)");
}

/* verify: after_write by default when there is something to verify. */
static void test_verify_default_and_values(void **state)
{
  (void)state;
  struct config cfg;
  char *text = t_fmt(T_HEAD T_BIND);

  t_expect_ok(text, &cfg);
  free(text);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_OFF);
  assert_int_equal(cfg.policy.retire_after_s, 86400);
  assert_int_equal(cfg.policy.expiry_warning_days, 21);
  config_free(&cfg);

  load_ok(doc("[\"10.0.0.1:443\"]", "{mode: upsert}"), &cfg);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_AFTER_WRITE);
  config_free(&cfg);
  load_ok(doc("[\"10.0.0.1:443\"]", "{mode: upsert, verify: off}"), &cfg);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_OFF);
  config_free(&cfg);
  load_ok(doc("[\"10.0.0.1:443\"]", "{mode: upsert, verify: every_pass}"),
          &cfg);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_EVERY_PASS);
  config_free(&cfg);
  load_ok(doc("[\"10.0.0.1:443\"]", "{mode: upsert, verify: after_write, "
                                    "retire_after_s: 0, "
                                    "expiry_warning_days: 365}"),
          &cfg);
  assert_int_equal(cfg.policy.verify, CONFIG_VERIFY_AFTER_WRITE);
  assert_int_equal(cfg.policy.retire_after_s, 0);
  assert_int_equal(cfg.policy.expiry_warning_days, 365);
  config_free(&cfg);
  load_ok(doc("[\"10.0.0.1:443\"]", "{mode: upsert, retire_after_s: 31536000, "
                                    "expiry_warning_days: 0}"),
          &cfg);
  assert_int_equal(cfg.policy.retire_after_s, 31536000);
  assert_int_equal(cfg.policy.expiry_warning_days, 0);
  config_free(&cfg);
}

static void test_policy_keys_refused(void **state)
{
  (void)state;
  const char *ing = "[\"10.0.0.1:443\"]";

  expect_one(doc(ing, "{mode: upsert, verify: always}"), 17, 32,
             "policy.verify: unknown value \"always\" (expected off, "
             "after_write or every_pass)");
  expect_one(doc(ing, "{mode: upsert, verify: false}"), 17, 32,
             "policy.verify: unknown value \"false\"");
  expect_one(doc(ing, "{mode: upsert, retire_after_s: 31536001}"), 17, 40,
             "policy.retire_after_s: 31536001 is out of range (must be >= 0 "
             "and <= 31536000)");
  expect_one(doc(ing, "{mode: upsert, retire_after_s: -1}"), 17, 40,
             "policy.retire_after_s: -1 is out of range");
  expect_one(doc(ing, "{mode: upsert, expiry_warning_days: 366}"), 17, 45,
             "policy.expiry_warning_days: 366 is out of range (must be >= 0 "
             "and <= 365)");
  expect_one(doc(ing, "{mode: upsert, expiry_warning_days: \"21\"}"), 17, 45,
             "policy.expiry_warning_days: expected an integer, got the "
             "string \"21\"");
}

static void test_emit_round_trip(void **state)
{
  (void)state;
  struct config a, b;
  struct config_diag diag = {0};
  char *out1 = NULL, *out2 = NULL;
  size_t n1, n2;

  load_ok(doc("[\"[::1]:8443\", \"10.0.0.1:443\"]",
              "{mode: upsert, verify: every_pass, retire_after_s: 60, "
              "expiry_warning_days: 7}"),
          &a);
  assert_int_equal(config_emit(&a, NULL, &out1, &n1), 0);
  assert_non_null(strstr(out1, "ingress: ['[::1]:8443', '10.0.0.1:443']"));
  assert_non_null(strstr(out1, "verify: every_pass"));
  assert_non_null(strstr(out1, "retire_after_s: 60"));
  assert_non_null(strstr(out1, "expiry_warning_days: 7"));
  assert_int_equal(config_load_buffer("e.yaml", out1, n1, &b, &diag), 0);
  assert_int_equal(b.gateways[0].ningress, 2);
  assert_memory_equal(&b.gateways[0].ingress[0].addr,
                      &a.gateways[0].ingress[0].addr,
                      sizeof(struct sockaddr_in6));
  assert_int_equal(b.policy.verify, CONFIG_VERIFY_EVERY_PASS);
  assert_int_equal(b.policy.retire_after_s, 60);
  assert_int_equal(b.policy.expiry_warning_days, 7);
  assert_int_equal(config_emit(&b, NULL, &out2, &n2), 0);
  assert_string_equal(out1, out2);
  config_free(&a);
  config_free(&b);
  free(out1);
  free(out2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ingress_v4_and_v6),
      cmocka_unit_test(test_ingress_refused),
      cmocka_unit_test(test_verify_default_and_values),
      cmocka_unit_test(test_policy_keys_refused),
      cmocka_unit_test(test_emit_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
