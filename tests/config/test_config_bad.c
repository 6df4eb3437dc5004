/* SPDX-License-Identifier: MIT */
/*
 * Invalid files: one test per validation rule, each asserting the
 * diagnostic's line, column and key phrase ("t.yaml:LINE:COL: ...").
 */
#include "helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One account, body lines start at line 4, column 5. */
#define ACC_PRE "version: 1\naccounts:\n  a1:\n"
#define ACC_REGION "    region: r1\n"
#define ACC_PROJ "    project_id: 0123456789abcdef0123456789abcdef\n"
#define ACC_AUTH "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n"
#define ACC_POST                                                               \
  "gateways: {}\ncertificates: {}\nbindings: []\npolicy: {mode: upsert}\n"
#define ACC_DOC(extra) ACC_PRE ACC_REGION ACC_PROJ ACC_AUTH extra ACC_POST
/* T_HEAD without its policy line: policy goes on line 21 after T_BIND */
#define NO_POLICY T_ACCOUNTS T_GATEWAYS T_CERTS T_BIND

static int setup(void **state)
{
  (void)state;
  test_env_setup();
  return 0;
}

/* ---- unknown and duplicate keys ---- */

static void test_unknown_keys(void **state)
{
  (void)state;
  t_expect_one(T_HEAD T_BIND "colour: blue\n", 22, 1, "colour: unknown key");
  t_expect_one(ACC_DOC("    zone: x\n"), 7, 5, "accounts.a1.zone: unknown key");
  t_expect_one(ACC_DOC("    limits: {rps: 5}\n"), 7, 14,
               "accounts.a1.limits.rps: unknown key");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                      "domains: [a.example.com], verify: true}\n",
               21, 63, "bindings[0].verify: unknown key");
}

static void test_duplicate_keys(void **state)
{
  (void)state;
  t_expect_one(T_HEAD T_BIND "version: 1\n", 22, 1,
               "version: duplicate key (first given at line 1)");
  t_expect_one(ACC_DOC("    region: r2\n"), 7, 5,
               "accounts.a1.region: duplicate key (first given at line 4)");
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ ACC_AUTH
               "  a1:\n" ACC_REGION ACC_PROJ ACC_AUTH ACC_POST,
               7, 3, "accounts.a1: duplicate key (first given at line 3)");
  t_expect_one(T_ACCOUNTS "gateways:\n"
                          "  g1: {account: a1, instance_id: "
                          "0123456789abcdef0123456789abcdef}\n"
                          "  g1: {account: a1, instance_id: "
                          "0123456789abcdef0123456789abcdef}\n"
                          "certificates: {}\nbindings: []\n" T_POLICY,
               13, 3, "gateways.g1: duplicate key (first given at line 12)");
}

/* ---- types ---- */

static void test_wrong_types(void **state)
{
  (void)state;
  /* a string where a number is needed */
  t_expect_one(NO_POLICY "policy: {mode: upsert, batch_size: \"50\"}\n", 21, 36,
               "policy.batch_size: expected an integer, got the string");
  /* a mapping where a list is needed */
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                      "domains: {a: b}}\n",
               21, 46, "bindings[0].domains: expected a list, got a mapping");
  /* a list where a mapping is needed */
  t_expect_one("version: 1\naccounts: []\n" ACC_POST, 2, 11,
               "accounts: expected a mapping");
  /* a scalar where a mapping is needed */
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ "    auth: token\n" ACC_POST, 6, 11,
               "accounts.a1.auth: expected a mapping, got \"token\"");
  /* null where a string is needed */
  t_expect_one(ACC_PRE "    region:\n" ACC_PROJ ACC_AUTH ACC_POST, 4, 12,
               "accounts.a1.region: expected a string, got null");
  t_expect_one("- version: 1\n", 1, 1,
               "expected a mapping at the top level, got a list");
  t_expect_one(T_HEAD "bindings: {}\n", 20, 11,
               "bindings: expected a list, got a mapping");
}

/* ---- required keys: reported at the mapping that lacks them ---- */

static void test_missing_top_level(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  assert_int_equal(t_load("policy: {mode: upsert}\n", &cfg, &d), -EINVAL);
  assert_true(t_has(&d, 1, 1, "missing required key \"version\""));
  assert_true(t_has(&d, 1, 1, "missing required key \"accounts\""));
  assert_true(t_has(&d, 1, 1, "missing required key \"gateways\""));
  assert_true(t_has(&d, 1, 1, "missing required key \"certificates\""));
  assert_true(t_has(&d, 1, 1, "missing required key \"bindings\""));
  assert_int_equal(d.count, 5);
  config_diag_free(&d);
  t_expect_one(NO_POLICY, 1, 1, "missing required key \"policy\"");
  t_expect_one(NO_POLICY "policy: {batch_size: 5}\n", 21, 9,
               "policy: missing required key \"mode\"");
  t_expect_one("", 1, 1, "the file is empty");
  t_expect_one("# only a comment\n", 1, 1, "the file is empty");
}

static void test_missing_account_keys(void **state)
{
  (void)state;
  t_expect_one(ACC_PRE ACC_PROJ ACC_AUTH ACC_POST, 4, 5,
               "accounts.a1: missing required key \"region\"");
  t_expect_one(ACC_PRE ACC_REGION ACC_AUTH ACC_POST, 4, 5,
               "accounts.a1: missing required key \"project_id\"");
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ ACC_POST, 4, 5,
               "accounts.a1: missing required key \"auth\"");
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ
               "    auth: {token: {env: CB_TEST_TOKEN}}\n" ACC_POST,
               6, 11, "accounts.a1.auth: missing required key \"method\"");
  t_expect_one("version: 1\naccounts: {}\n" ACC_POST, 2, 11,
               "at least one account is required");
}

static void test_missing_auth_secrets(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  t_expect_one(
      ACC_PRE ACC_REGION ACC_PROJ
      "    auth: {method: aksk, access_key: {env: CB_TEST_AK}}\n" ACC_POST,
      6, 11, "missing required key \"secret_key\" (method aksk)");
  t_expect_one(
      ACC_PRE ACC_REGION ACC_PROJ
      "    auth: {method: aksk, secret_key: {env: CB_TEST_SK}}\n" ACC_POST,
      6, 11, "missing required key \"access_key\" (method aksk)");
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ
               "    auth: {method: token}\n" ACC_POST,
               6, 11, "missing required key \"token\" (method token)");
  assert_int_equal(t_load(ACC_PRE ACC_REGION ACC_PROJ
                          "    auth: {method: password}\n" ACC_POST,
                          &cfg, &d),
                   -EINVAL);
  assert_true(t_has(&d, 6, 11, "\"user\" (method password)"));
  assert_true(t_has(&d, 6, 11, "\"domain\" (method password)"));
  assert_true(t_has(&d, 6, 11, "\"password\" (method password)"));
  assert_int_equal(d.count, 3);
  config_diag_free(&d);
  /* a key of another method is an error, not silently ignored */
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ
               "    auth: {method: token, token: {env: CB_TEST_TOKEN}, "
               "user: x}\n" ACC_POST,
               6, 62, "accounts.a1.auth.user: not used with method token");
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ
               "    auth: {method: kerberos}\n" ACC_POST,
               6, 20, "unknown method \"kerberos\"");
}

static void test_missing_entry_keys(void **state)
{
  (void)state;
  t_expect_one(T_ACCOUNTS "gateways:\n  g1: {account: a1}\n"
                          "certificates: {}\nbindings: []\n" T_POLICY,
               12, 7, "gateways.g1: missing required key \"instance_id\"");
  t_expect_one(T_ACCOUNTS
               "gateways: {}\ncertificates:\n  c1: {id: "
               "a27be832f2e9441c8127fe48e3b5ac67}\nbindings: []\n" T_POLICY,
               13, 7, "certificates.c1: missing required key \"account\"");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1]}\n", 21, 3,
               "bindings[0]: missing required key \"domains\"");
  t_expect_one(T_HEAD "bindings:\n- {gateways: [g1], domains: [a.b.c]}\n", 21,
               3, "bindings[0]: missing required key \"certificate\"");
  t_expect_one(T_HEAD T_BIND "rollout: {soak_s: 5}\n", 22, 10,
               "rollout: missing required key \"waves\"");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [], "
                      "domains: [a.example.com]}\n",
               21, 31, "bindings[0].gateways: must not be empty");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                      "domains: []}\n",
               21, 46, "bindings[0].domains: must not be empty");
}

static void test_version(void **state)
{
  (void)state;
  t_expect_one("version: 2\naccounts: {a: {region: r, project_id: "
               "0123456789abcdef0123456789abcdef, auth: {method: token, "
               "token: {env: CB_TEST_TOKEN}}}}\n" ACC_POST,
               1, 10, "version: unsupported version 2");
  t_expect_one("version: \"1\"\naccounts: {a: {region: r, project_id: "
               "0123456789abcdef0123456789abcdef, auth: {method: token, "
               "token: {env: CB_TEST_TOKEN}}}}\n" ACC_POST,
               1, 10, "version: expected an integer");
}

/* ---- cross-references ---- */

static void test_undefined_references(void **state)
{
  (void)state;
  t_expect_one(T_ACCOUNTS "gateways:\n  g1: {account: nope, instance_id: "
                          "f0fa1789-3b76-433b-a787-9892951c620e}\n"
                          "certificates: {}\nbindings: []\n" T_POLICY,
               12, 17, "gateways.g1.account: undefined account \"nope\"");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1, "
                      "sg-edge-9], domains: [a.example.com]}\n",
               21, 36,
               "bindings[0].gateways[1]: undefined gateway \"sg-edge-9\"");
  t_expect_one(T_HEAD "bindings:\n- {certificate: cx, gateways: [g1], "
                      "domains: [a.example.com]}\n",
               21, 17, "bindings[0].certificate: undefined certificate \"cx\"");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1, g1], "
                      "domains: [a.example.com]}\n",
               21, 36, "bindings[0].gateways[1]: gateway \"g1\" listed twice");
}

static void test_account_mismatch(void **state)
{
  (void)state;
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1, g3], "
                      "domains: [a.example.com]}\n",
               21, 36,
               "bindings[0].gateways[1]: gateway \"g3\" belongs to account "
               "\"a2\" but certificate \"c1\" belongs to account \"a1\"");
}

static void test_binding_conflicts(void **state)
{
  (void)state;
  /* the same (certificate, gateway, domain) twice, case-insensitively */
  t_expect_one(
      T_HEAD "bindings:\n"
             "- {certificate: c1, gateways: [g1], domains: [a.example.com]}\n"
             "- {certificate: c1, gateways: [g1, g2], domains: "
             "[A.example.com]}\n",
      22, 51,
      "bindings[1].domains[0]: \"A.example.com\" (a.example.com) on "
      "gateway \"g1\" with certificate \"c1\" is given twice (first at "
      "line 21)");
  /* within one entry, and with a different verify_client: still twice */
  t_expect_one(T_HEAD
               "bindings:\n"
               "- {certificate: c1, gateways: [g1], domains: [a.example.com]}\n"
               "- {certificate: c1, gateways: [g1], domains: [b.example.com, "
               "b.example.com], verify_client: true}\n",
               22, 62, "is given twice (first at line 22)");
  /* one (gateway, domain) wanting two certificates: both lines named */
  t_expect_one(
      T_HEAD "bindings:\n"
             "- {certificate: c1, gateways: [g1], domains: [a.example.com]}\n"
             "- {certificate: c2, gateways: [g1], domains: [a.example.com]}\n",
      22, 47,
      "bindings[1].domains[0]: \"a.example.com\" on gateway \"g1\" "
      "wants certificate \"c2\" here and certificate \"c1\" at line "
      "21");
}

/* Duplicates are found on the normalised name: one trailing dot, a U-label
 * and its A-label, and case are the same binding; the message names the
 * spelling of the line it is at and the form it is the same as. */
static void test_binding_conflicts_after_normalising(void **state)
{
  (void)state;
  t_expect_one(
      T_HEAD "bindings:\n"
             "- {certificate: c1, gateways: [g1], domains: [api.example.com]}\n"
             "- {certificate: c1, gateways: [g1], domains: "
             "[api.example.com.]}\n",
      22, 47,
      "bindings[1].domains[0]: \"api.example.com.\" (api.example.com) "
      "on gateway \"g1\" with certificate \"c1\" is given twice (first "
      "at line 21)");
  t_expect_one(
      T_HEAD "bindings:\n"
             "- {certificate: c1, gateways: [g1], domains: "
             "[xn--bcher-kva.example.com]}\n"
             "- {certificate: c2, gateways: [g1], domains: "
             "[B\xc3\xbc"
             "cher.Example.com.]}\n",
      22, 47,
      "bindings[1].domains[0]: \"B\xc3\xbc"
      "cher.Example.com.\" "
      "(xn--bcher-kva.example.com) on gateway \"g1\" wants certificate "
      "\"c2\" here and certificate \"c1\" at line 21");
}

/* A gateway is its instance: two names for one instance_id are refused at
 * both names' instance_id, the dashed and undashed forms and any case
 * being one instance, whichever account names it. */
static void test_same_instance_two_names(void **state)
{
  static const char *const same[][2] = {
      {"f0fa1789-3b76-433b-a787-9892951c620e",
       "f0fa1789-3b76-433b-a787-9892951c620e"},
      {"f0fa1789-3b76-433b-a787-9892951c620e",
       "F0FA17893B76433BA7879892951C620E"},
      {"f0fa17893b76433ba7879892951c620e",
       "F0FA1789-3B76-433B-A787-9892951C620E"},
  };
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
    char *doc = t_fmt(T_ACCOUNTS "gateways:\n"
                                 "  g1: {account: a1, instance_id: %s}\n"
                                 "  g2: {account: a2, instance_id: %s}\n"
                                 "certificates: {}\nbindings: []\n" T_POLICY,
                      same[i][0], same[i][1]);
    assert_int_equal(t_load(doc, &cfg, &d), -EINVAL);
    t_dump(&d);
    assert_int_equal(d.count, 2);
    assert_true(t_has(&d, 12, 34,
                      "gateways.g1.instance_id: the same instance as gateway "
                      "\"g2\" (line 13)"));
    assert_true(t_has(&d, 13, 34,
                      "gateways.g2.instance_id: the same instance as gateway "
                      "\"g1\" (line 12)"));
    config_diag_free(&d);
    free(doc);
  }
  /* a third name: its own error, the first is not reported twice */
  assert_int_equal(t_load(T_ACCOUNTS
                          "gateways:\n"
                          "  g1: {account: a1, instance_id: "
                          "0123456789abcdef0123456789abcdef}\n"
                          "  g2: {account: a1, instance_id: "
                          "0123456789abcdef0123456789abcdef}\n"
                          "  g3: {account: a1, instance_id: "
                          "01234567-89ab-cdef-0123-456789abcdef}\n"
                          "  g4: {account: a1, instance_id: "
                          "11111111222233334444555555555555}\n"
                          "certificates: {}\nbindings: []\n" T_POLICY,
                          &cfg, &d),
                   -EINVAL);
  t_dump(&d);
  assert_int_equal(d.count, 3);
  assert_true(t_has(&d, 12, 34, "as gateway \"g2\" (line 13)"));
  assert_true(t_has(&d, 13, 34, "as gateway \"g1\" (line 12)"));
  assert_true(t_has(&d, 14, 34, "as gateway \"g1\" (line 12)"));
  config_diag_free(&d);
}

/* ---- formats ---- */

static void test_id_formats(void **state)
{
  static const char *const bad[] = {
      "0123456789abcdef0123456789abcde",   /* 31 */
      "0123456789abcdef0123456789abcdef0", /* 33 */
      "0123456789abcdef0123456789abcd-f",  /* not alphanumeric */
      "0123456789abcdef0123456789abc/..",  /* path injection */
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc =
        t_fmt(ACC_PRE ACC_REGION "    project_id: \"%s\"\n" ACC_AUTH ACC_POST,
              bad[i]);
    t_expect_one(doc, 5, 17, "must be exactly 32 letters and digits");
    free(doc);
    doc = t_fmt(T_ACCOUNTS "gateways: {}\ncertificates:\n  c1: {account: a1, "
                           "id: \"%s\"}\nbindings: []\n" T_POLICY,
                bad[i]);
    t_expect_one(doc, 13, 25, "certificates.c1.id: \"");
    free(doc);
  }
}

static void test_instance_id_formats(void **state)
{
  static const char *const bad[] = {
      "0123456789abcdef0123456789abcde",      /* 31 hex */
      "0123456789abcdef0123456789abcdeg",     /* not hex */
      "f0fa1789-3b76-433b-a787-9892951c620",  /* short UUID */
      "f0fa17893-b76-433b-a787-9892951c620e", /* dash misplaced */
      "f0fa1789-3b76-433b-a787-9892951c620g", /* not hex */
      "f0fa1789/3b76/433b/a787/9892951c620e", /* injection */
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = t_fmt(T_ACCOUNTS "gateways:\n  g1: {account: a1, "
                                 "instance_id: \"%s\"}\n"
                                 "certificates: {}\nbindings: []\n" T_POLICY,
                      bad[i]);
    t_expect_one(doc, 12, 34, "must be 32 hex digits or a UUID");
    free(doc);
  }
}

static void test_domain_formats(void **state)
{
  static const struct {
    const char *domain, *why;
  } bad[] = {
      {"a_b.example.com", "has a character other than"},
      {"-a.example.com", "starts or ends with '-'"},
      {"a-.example.com", "starts or ends with '-'"},
      {"com", "at least two labels"},
      {"*.com", "at least two labels"},
      {"a.*.example.com", "has a character other than"},
      {"**.example.com", "has a character other than"},
      {"a..example.com", "empty label"},
      {"example.com..", "empty label"},
      {".", "empty label"},
      {".example.com", "empty label"},
      {"*..example.com", "empty label"},
      /* xn-- labels must be punycode of a valid U-label */
      {"xn--a.example.com", "has an invalid A-label \"xn--a\": "},
      {"XN--A.example.com", "has an invalid A-label \"xn--a\": "},
      {"xn--.example.com", "starts or ends with '-'"},
      {"xn--abc-.example.com", "starts or ends with '-'"},
      {"api.xn--ab.example.com", "has an invalid A-label \"xn--ab\""},
      {"xn--ls8h.example.com", "has an invalid A-label \"xn--ls8h\": "
                               "string contains a disallowed character"},
      /* U-labels that IDNA refuses */
      {"b\xc3\xbc cher.example", "is not a valid internationalised name"},
      {"\xf0\x9f\x92\xa9.example", "has a label \"\xf0\x9f\x92\xa9\" that is "
                                   "not a valid internationalised name"},
      {"\xcc\x81"
       "a.example",
       "is not a valid internationalised name"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
       "longer than 63"},
      {"a/b.example.com", "has a character other than"},
      {"", "is empty"},
  };
  char longname[400] = "";

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = t_fmt(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                             "domains: [\"%s\"]}\n",
                      bad[i].domain);
    t_expect_one(doc, 21, 47, bad[i].why);
    free(doc);
  }
  /* 254 characters in labels of 50 */
  while (strlen(longname) < 251)
    strcat(longname, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
  strcat(longname, "com");
  assert_true(strlen(longname) > 253);
  char *doc = t_fmt(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                           "domains: [%s]}\n",
                    longname);
  t_expect_one(doc, 21, 47, "longer than 253 characters");
  free(doc);
}

static void test_endpoint_formats(void **state)
{
  static const struct {
    const char *url, *why;
  } bad[] = {
      {"http://apig.example.com", "must start with https://"},
      {"HTTPS://apig.example.com", "must start with https://"},
      {"https://apig.example.com/v2", "must not contain a path"},
      {"https://apig.example.com//", "must not contain a path"},
      {"https://apig.example.com?x=1", "query or fragment"},
      {"https://apig.example.com#x", "query or fragment"},
      {"https://user:pw@apig.example.com", "user information"},
      {"https://apig.example.com:0", "invalid port"},
      {"https://apig.example.com:65536", "invalid port"},
      {"https://apig.example.com:80x", "invalid port"},
      {"https://", "has no host"},
      {"https://apig_x.example.com", "invalid host name"},
      {"https://[::g]:443", "malformed IPv6"},
      {"https://apig.example.com\\\\@evil", "user information"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = t_fmt(ACC_DOC("    endpoint: \"%s\"\n"), bad[i].url);
    t_expect_one(doc, 7, 15, bad[i].why);
    free(doc);
  }
  t_expect_one(ACC_PRE ACC_REGION ACC_PROJ
               "    auth: {method: password, user: u, domain: d, password: "
               "{env: CB_TEST_SK}, iam_endpoint: http://iam}\n" ACC_POST,
               6, 93,
               "accounts.a1.auth.iam_endpoint: \"http://iam\" must "
               "start with https://");
}

static void test_region_and_names(void **state)
{
  (void)state;
  t_expect_one(ACC_PRE "    region: AP_1\n" ACC_PROJ ACC_AUTH ACC_POST, 4, 13,
               "accounts.a1.region: \"AP_1\" must be 1 to 63 characters");
  t_expect_one("version: 1\naccounts:\n  \"a 1\":\n" ACC_REGION ACC_PROJ
                   ACC_AUTH ACC_POST,
               3, 3, "accounts: \"a 1\": names must be");
  t_expect_one(NO_POLICY "policy: {mode: delete}\n", 21, 16,
               "policy.mode: unknown mode \"delete\"");
}

/* ---- numbers: strict parsing and every range ---- */

static void test_number_syntax(void **state)
{
  static const struct {
    const char *v, *why;
  } bad[] = {
      {"50x", "expected an integer, got \"50x\""},
      {"1.5", "expected an integer"},
      {"050", "expected an integer"},
      {"0x10", "expected an integer"},
      {"+5", "expected an integer"},
      {"1_000", "expected an integer"},
      {"99999999999999999999999", "out of range"},
      {"-1", "out of range"},
      {"[5]", "expected an integer, got a list"},
      {"~", "expected an integer, got null"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc =
        t_fmt(NO_POLICY "policy: {mode: upsert, batch_size: %s}\n", bad[i].v);
    t_expect_one(doc, 21, 36, bad[i].why);
    free(doc);
  }
  static const char *const bad_double[] = {
      "nan", ".nan", ".inf", "inf", "1e999", "0x1p-2", "0.5.1", "1e", "--1"};
  for (size_t i = 0; i < sizeof(bad_double) / sizeof(bad_double[0]); i++) {
    char *doc =
        t_fmt(NO_POLICY "policy: {mode: upsert, max_detach_ratio: %s}\n",
              bad_double[i]);
    t_expect(doc, 21, 42, "policy.max_detach_ratio: ");
    free(doc);
  }
}

struct range_case {
  const char *section; /* "policy: {mode: upsert, " or "retry: {" ... */
  const char *key, *value;
  const char *why;
};

/* Each section line goes at line 21 (policy) or 22 (others). */
static void check_ranges(const struct range_case *c, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    bool policy = strncmp(c[i].section, "policy", 6) == 0;
    char *doc = t_fmt("%s%s%s: %s}\n", policy ? NO_POLICY : T_HEAD T_BIND,
                      c[i].section, c[i].key, c[i].value);
    unsigned col = (unsigned)(strlen(c[i].section) + strlen(c[i].key) + 2 + 1);
    char *why =
        t_fmt("%s: %s is out of range (%s", c[i].key, c[i].value, c[i].why);
    t_expect_one(doc, policy ? 21 : 22, col, why);
    free(why);
    free(doc);
  }
}

static void test_ranges(void **state)
{
  static const struct range_case cases[] = {
      {"policy: {mode: upsert, ", "batch_size", "0", "must be >= 1 and <= 500"},
      {"policy: {mode: upsert, ", "batch_size", "501", "must be >= 1"},
      {"policy: {mode: upsert, ", "max_detach_ratio", "1.01", "must be >= 0"},
      {"policy: {mode: upsert, ", "max_detach_ratio", "-0.1", "must be >= 0"},
      {"policy: {mode: upsert, ", "confirm_timeout_s", "0", "must be >= 1"},
      {"policy: {mode: upsert, ", "confirm_timeout_s", "3601",
       "must be >= 1 and <= 3600"},
      {"policy: {mode: upsert, ", "confirm_delay_ms", "60001",
       "must be >= 0 and <= 60000"},
      {"policy: {mode: upsert, ", "confirm_delay_ms", "-1", "must be"},
      {"retry: {", "max_attempts", "0", "must be >= 1 and <= 100"},
      {"retry: {", "max_attempts", "101", "must be >= 1"},
      {"retry: {", "base_delay_ms", "0", "must be >= 1"},
      {"rollout: {waves: [\"100%\"], ", "soak_s", "86401", "must be >= 0"},
      {"rollout: {waves: [\"100%\"], ", "abort_failure_ratio", "1.5",
       "must be >= 0 and <= 1"},
      {"daemon: {", "resync_interval_s", "9", "must be >= 10 and <= 86400"},
      {"daemon: {", "resync_interval_s", "86401", "must be >= 10"},
  };
  (void)state;
  check_ranges(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_limits_ranges(void **state)
{
  static const struct {
    const char *kv, *why;
  } bad[] = {
      {"requests_per_second: 0", "must be > 0 and <= 10000"},
      {"requests_per_second: 10000.5", "must be > 0 and <= 10000"},
      {"burst: 0", "must be >= 1"},
      {"max_in_flight: 0", "must be >= 1 and <= 4096"},
      {"max_in_flight: 4097", "must be >= 1 and <= 4096"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = t_fmt(ACC_DOC("    limits: {%s}\n"), bad[i].kv);
    unsigned col = (unsigned)(14 + strcspn(bad[i].kv, ":") + 2);
    t_expect_one(doc, 7, col, bad[i].why);
    free(doc);
  }
}

static void test_retry_delays(void **state)
{
  (void)state;
  t_expect_one(
      T_HEAD T_BIND "retry: {base_delay_ms: 1000, max_delay_ms: 999}\n", 22, 44,
      "retry: max_delay_ms (999) must be >= base_delay_ms (1000)");
  /* against the default max_delay_ms: reported at base_delay_ms */
  t_expect_one(T_HEAD T_BIND "retry: {base_delay_ms: 100000}\n", 22, 24,
               "max_delay_ms (60000) must be >= base_delay_ms (100000)");
}

static void test_waves(void **state)
{
  static const struct {
    const char *waves;
    unsigned col;
    const char *why;
  } bad[] = {
      {"[1, 1, \"100%\"]", 22, "rollout.waves[1]: waves are cumulative"},
      {"[\"50%\", \"10%\", \"100%\"]", 26, "waves are cumulative"},
      {"[0, \"100%\"]", 19, "rollout.waves[0]: 0 is out of range"},
      {"[\"0%\", \"100%\"]", 19, "must be a share 0% < N% <= 100%"},
      {"[\"101%\"]", 19, "must be a share"},
      {"[\"abc%\"]", 19, "must be a share"},
      {"[\"5\", \"100%\"]", 19, "expected a count or \"N%\""},
      {"[1, 5]", 22, "the last wave must be \"100%\""},
      {"[]", 18, "expected a list of 1 to 100 waves"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *doc = t_fmt(T_HEAD T_BIND "rollout: {waves: %s}\n", bad[i].waves);
    t_expect_one(doc, 22, bad[i].col, bad[i].why);
    free(doc);
  }
}

static void test_verify_client(void **state)
{
  (void)state;
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                      "domains: [a.example.com], verify_client: yes}\n",
               21, 78, "\"yes\" is a YAML 1.1 boolean");
  t_expect_one(T_HEAD "bindings:\n- {certificate: c1, gateways: [g1], "
                      "domains: [a.example.com], verify_client: \"true\"}\n",
               21, 78, "expected true or false, got the string \"true\"");
}

static void test_paths(void **state)
{
  (void)state;
  t_expect_one(T_HEAD T_BIND "daemon: {state_dir: var/lib/certbind}\n", 22, 21,
               "daemon.state_dir: \"var/lib/certbind\" must be an "
               "absolute path");
  t_expect_one(ACC_DOC("    tls: {ca_file: /nonexistent/ca.pem}\n"), 7, 20,
               "accounts.a1.tls.ca_file: \"/nonexistent/ca.pem\" cannot be "
               "read");
}

/* ---- syntax errors: libyaml's problem mark ---- */

static void test_syntax_errors(void **state)
{
  (void)state;
  t_expect_one("version: 1\nkey: value: other\n", 2, 11,
               "YAML syntax error: mapping values are not allowed");
  t_expect_one("version: 1\n\tfoo: 1\n", 2, 1,
               "YAML syntax error: found a tab character");
  t_expect_one("version: 1\naccounts: \"open\n", 3, 1,
               "YAML syntax error: found unexpected end of stream");
  /* an unquoted wildcard domain is an alias to YAML: say how to fix it */
  t_expect_one("version: 1\nbindings:\n- {domains: [*.example.com]}\n", 3, 15,
               "a value starting with '*' must be quoted, e.g. "
               "\"*.example.com\"");
}

/* ---- everything at once, sorted by position ---- */

static void test_all_errors_at_once(void **state)
{
  struct config cfg;
  struct config_diag d = {0};
  /* errors are found in another order than they appear (bindings are
   * checked after accounts even when written first) */
  static const char doc[] =
      "bindings:\n"                                                 /* 1 */
      "- {certificate: nope, gateways: [g1], domains: [x_y.com]}\n" /* 2 */
      "version: 1\n"                                                /* 3 */
      "accounts:\n"                                                 /* 4 */
      "  a1:\n"                                                     /* 5 */
      "    region: r1\n"                                            /* 6 */
      "    project_id: short\n"                                     /* 7 */
      "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n"    /* 8 */
      "gateways:\n"                                                 /* 9 */
      "  g1: {account: a1, instance_id: f0fa1789-3b76-433b-a787-9892951c620e}\n"
      "certificates: {}\n"                      /* 11 */
      "policy: {mode: upsert, batch_size: 0}\n" /* 12 */
      "retry: {max_attempts: 1000}\n";          /* 13 */

  (void)state;
  assert_int_equal(t_load(doc, &cfg, &d), -EINVAL);
  t_dump(&d);
  assert_int_equal(d.count, 5);
  assert_true(t_has(&d, 2, 17, "undefined certificate \"nope\""));
  assert_true(t_has(&d, 2, 49, "bindings[0].domains[0]: \"x_y.com\""));
  assert_true(t_has(&d, 7, 17, "accounts.a1.project_id"));
  assert_true(t_has(&d, 12, 36, "policy.batch_size"));
  assert_true(t_has(&d, 13, 23, "retry.max_attempts"));
  /* sorted by position */
  assert_true(strncmp(d.lines[0], "t.yaml:2:17:", 12) == 0);
  assert_true(strncmp(d.lines[1], "t.yaml:2:49:", 12) == 0);
  assert_true(strncmp(d.lines[2], "t.yaml:7:17:", 12) == 0);
  assert_true(strncmp(d.lines[4], "t.yaml:13:23:", 13) == 0);
  config_diag_free(&d);
}

/* Diagnostics are appended to what the caller's diag already holds. */
static void test_diag_appends(void **state)
{
  struct config cfg;
  struct config_diag d = {0};

  (void)state;
  assert_int_equal(t_load("version: 2\n", &cfg, &d), -EINVAL);
  size_t first = d.count;
  assert_true(first > 0);
  assert_int_equal(t_load("version: 3\n", &cfg, &d), -EINVAL);
  assert_int_equal(d.count, 2 * first);
  config_diag_free(&d);
  assert_int_equal(d.count, 0);
  assert_null(d.lines);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unknown_keys),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_missing_top_level),
      cmocka_unit_test(test_missing_account_keys),
      cmocka_unit_test(test_missing_auth_secrets),
      cmocka_unit_test(test_missing_entry_keys),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_undefined_references),
      cmocka_unit_test(test_account_mismatch),
      cmocka_unit_test(test_binding_conflicts),
      cmocka_unit_test(test_same_instance_two_names),
      cmocka_unit_test(test_id_formats),
      cmocka_unit_test(test_instance_id_formats),
      cmocka_unit_test(test_domain_formats),
      cmocka_unit_test(test_binding_conflicts_after_normalising),
      cmocka_unit_test(test_endpoint_formats),
      cmocka_unit_test(test_region_and_names),
      cmocka_unit_test(test_number_syntax),
      cmocka_unit_test(test_ranges),
      cmocka_unit_test(test_limits_ranges),
      cmocka_unit_test(test_retry_delays),
      cmocka_unit_test(test_waves),
      cmocka_unit_test(test_verify_client),
      cmocka_unit_test(test_paths),
      cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_all_errors_at_once),
      cmocka_unit_test(test_diag_appends),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
