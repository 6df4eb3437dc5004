/* SPDX-License-Identifier: MIT */
/* The certificate-object calls: generated names, URLs, the create/update
 * body, show and list parsing, times, serials, error meanings and classes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apig.h"
#include "cert.h"

#define PROJECT "0123456789abcdef0123456789abcdef"
#define CERT "a27be832f2e9441c8127fe48e3b5ac67"
#define INST "f0fa1789-3b76-433b-a787-9892951c620e"
#define HW "https://apig.cn-north-4.myhuaweicloud.com"
#define SHA "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
#define SECRET "MC4CAQAwBQYDK2VwBCIEIKEYBYTESTHATMUSTNOTLEAK"

/* ---- the generated name ------------------------------------------------- */

static void assert_name(const char *yaml, const char *want)
{
  char out[APIG_CERT_NAME_MAX + 1];

  assert_int_equal(apig_cert_name(yaml, SHA, out), 0);
  assert_string_equal(out, want);
  assert_true(strlen(out) <= APIG_CERT_NAME_MAX);
  assert_true(apig_cert_name_valid(out));
}

static void test_name(void **state)
{
  char out[APIG_CERT_NAME_MAX + 1];
  char longname[80];

  (void)state;
  /* '-' and '.' are outside APIG's set; the hash is written lowercase. */
  assert_name("star-example", "cb_star_example_9f86d081");
  assert_name("api.example.com_2026", "cb_api_example_com_2026_9f86d081");
  /* digits first: the prefix keeps the first character a letter */
  assert_name("2026", "cb_2026_9f86d081");
  /* every character invalid, one '_' each */
  assert_name(".-.-", "cb______9f86d081");
  /* empty: still 12 characters, at least APIG's 4 */
  assert_name("", "cb__9f86d081");
  /* one '_' per character, not per byte: 证 is 3 bytes, é 2 */
  assert_name("\xe8\xaf\x81\xe4\xb9\xa6-\xc3\xa9t\xc3\xa9",
              "cb_____t__9f86d081");
  /* stray bytes and a cut sequence: one '_' per byte */
  assert_name("a\xff\xe8\xaf", "cb_a____9f86d081");

  /* long: the name part is cut to 38, the hash never */
  memset(longname, 'x', 64);
  longname[64] = '\0';
  assert_int_equal(apig_cert_name(longname, SHA, out), 0);
  assert_int_equal(strlen(out), APIG_CERT_NAME_MAX);
  assert_memory_equal(out, "cb_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_", 42);
  assert_string_equal(out + 42, "9f86d081");
  assert_true(apig_cert_name_valid(out));
  /* 38 characters fit exactly; 39 are cut to 38 */
  longname[38] = '\0';
  assert_int_equal(apig_cert_name(longname, SHA, out), 0);
  assert_int_equal(strlen(out), APIG_CERT_NAME_MAX);
  /* long and multi-byte: 40 characters of 3 bytes, cut by characters */
  char wide[128] = "";
  for (int i = 0; i < 40; i++)
    strcat(wide, "\xe8\xaf\x81");
  assert_int_equal(apig_cert_name(wide, SHA, out), 0);
  assert_int_equal(strlen(out), APIG_CERT_NAME_MAX);
  assert_string_equal(out + 42, "9f86d081");

  /* two names differing past the cut still differ by their hash only */
  assert_int_equal(apig_cert_name("a", "0123456789", out), 0);
  assert_string_equal(out, "cb_a_01234567");

  /* refused: no hash of 8 hex digits */
  assert_int_equal(apig_cert_name("a", "abc", out), -EINVAL);
  assert_string_equal(out, "");
  assert_int_equal(apig_cert_name("a", "0123456g", out), -EINVAL);
  assert_int_equal(apig_cert_name("a", NULL, out), -EINVAL);
  assert_int_equal(apig_cert_name(NULL, SHA, out), -EINVAL);
}

static void test_name_valid(void **state)
{
  (void)state;
  assert_true(apig_cert_name_valid("cert_demo"));
  assert_true(apig_cert_name_valid("abcd"));
  assert_false(apig_cert_name_valid("abc"));        /* under 4 */
  assert_false(apig_cert_name_valid("1abc"));       /* digit first */
  assert_false(apig_cert_name_valid("_abc"));       /* '_' first */
  assert_false(apig_cert_name_valid("a-bc"));       /* '-' */
  assert_false(apig_cert_name_valid("a.bc"));       /* '.' */
  assert_false(apig_cert_name_valid("ab\xc3\xa9")); /* non-ASCII */
  assert_false(apig_cert_name_valid(NULL));
  char n[52];
  memset(n, 'a', 51);
  n[51] = '\0';
  assert_false(apig_cert_name_valid(n)); /* 51 */
  n[50] = '\0';
  assert_true(apig_cert_name_valid(n)); /* 50 */
}

/* ---- URLs --------------------------------------------------------------- */

/* The URL calls take the account's endpoint parsed once; these parse it
 * for each call, as the tests give it as text. */
static int cert_url(const char *endpoint, const char *project_id,
                    enum apig_op op, const char *cert_id, struct apig_url *out)
{
  struct apig_endpoint ep;
  int err = apig_endpoint_parse(endpoint, &ep);

  memset(out, 0, sizeof *out);
  if (!err)
    err = apig_cert_url(&ep, project_id, op, cert_id, out);
  apig_endpoint_free(&ep);
  return err;
}

static int cert_url_list(const char *endpoint, const char *project_id,
                         const struct apig_cert_query *q, struct apig_url *out)
{
  struct apig_endpoint ep;
  int err = apig_endpoint_parse(endpoint, &ep);

  memset(out, 0, sizeof *out);
  if (!err)
    err = apig_cert_url_list(&ep, project_id, q, out);
  apig_endpoint_free(&ep);
  return err;
}

static void test_urls(void **state)
{
  struct apig_url u;
  const char *base = HW "/v2/" PROJECT "/apigw/certificates";

  (void)state;
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_CERT_CREATE, NULL, &u), 0);
  assert_string_equal(u.url, base);
  assert_string_equal(u.path, "/v2/" PROJECT "/apigw/certificates");
  assert_string_equal(u.query, "");
  assert_string_equal(u.host, "apig.cn-north-4.myhuaweicloud.com");
  apig_url_free(&u);

  const enum apig_op one[] = {APIG_OP_CERT_SHOW, APIG_OP_CERT_UPDATE,
                              APIG_OP_CERT_DELETE};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(cert_url(HW, PROJECT, one[i], CERT, &u), 0);
    assert_string_equal(u.url, HW "/v2/" PROJECT "/apigw/certificates/" CERT);
    assert_string_equal(u.path, "/v2/" PROJECT "/apigw/certificates/" CERT);
    assert_string_equal(u.query, "");
    apig_url_free(&u);
  }
  assert_string_equal(apig_op_method(APIG_OP_CERT_CREATE), "POST");
  assert_string_equal(apig_op_method(APIG_OP_CERT_SHOW), "GET");
  assert_string_equal(apig_op_method(APIG_OP_CERT_LIST), "GET");
  assert_string_equal(apig_op_method(APIG_OP_CERT_UPDATE), "PUT");
  assert_string_equal(apig_op_method(APIG_OP_CERT_DELETE), "DELETE");
  assert_string_equal(apig_op_method(APIG_OP_ATTACH), "POST");
  assert_string_equal(apig_op_method(APIG_OP_LIST), "GET");

  /* A base path and a port are kept as for the binding calls. */
  assert_int_equal(cert_url("https://127.0.0.1:8443/apig/", PROJECT,
                            APIG_OP_CERT_DELETE, CERT, &u),
                   0);
  assert_string_equal(u.host, "127.0.0.1:8443");
  assert_string_equal(u.path, "/apig/v2/" PROJECT "/apigw/certificates/" CERT);
  apig_url_free(&u);

  /* Refused: an id that could change the path, a create with an id, a
   * show without one, an op that is not a certificate call, http. */
  memset(&u, 'x', sizeof u);
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_CERT_SHOW, "../" CERT, &u),
                   -EINVAL);
  assert_null(u.url);
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_CERT_SHOW, NULL, &u), -EINVAL);
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_CERT_CREATE, CERT, &u),
                   -EINVAL);
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_CERT_LIST, NULL, &u), -EINVAL);
  assert_int_equal(cert_url(HW, PROJECT, APIG_OP_ATTACH, CERT, &u), -EINVAL);
  assert_int_equal(cert_url(HW, "p/x", APIG_OP_CERT_DELETE, CERT, &u), -EINVAL);
  assert_int_equal(cert_url("http://apig.example.com", PROJECT,
                            APIG_OP_CERT_DELETE, CERT, &u),
                   -EINVAL);
  assert_null(u.url);
}

static void test_url_list(void **state)
{
  struct apig_url u;
  struct apig_cert_query q = {.limit = 500, .offset = 0};

  (void)state;
  assert_int_equal(cert_url_list(HW, PROJECT, &q, &u), 0);
  assert_string_equal(u.url, HW "/v2/" PROJECT
                                "/apigw/certificates?limit=500&offset=0");
  assert_string_equal(u.query, "limit=500&offset=0");
  apig_url_free(&u);

  /* Filters percent-encoded with the signer's unreserved set. */
  q = (struct apig_cert_query){.limit = 100,
                               .offset = 200,
                               .name = "cb_star_example_9f86d081",
                               .common_name = "*.Example.com",
                               .instance_id = INST};
  assert_int_equal(cert_url_list(HW, PROJECT, &q, &u), 0);
  assert_string_equal(u.query, "limit=100&offset=200"
                               "&name=cb_star_example_9f86d081"
                               "&common_name=%2A.Example.com"
                               "&instance_id=" INST);
  assert_string_equal(u.path, "/v2/" PROJECT "/apigw/certificates");
  apig_url_free(&u);
  q = (struct apig_cert_query){
      .limit = 1, .offset = 0, .common_name = "a b&c=\xe8\xaf\x81"};
  assert_int_equal(cert_url_list(HW, PROJECT, &q, &u), 0);
  assert_string_equal(u.query,
                      "limit=1&offset=0&common_name=a%20b%26c%3D%E8%AF%81");
  apig_url_free(&u);

  /* Refused. */
  char longf[300];
  memset(longf, 'a', 256);
  longf[256] = '\0';
  const struct apig_cert_query bad[] = {
      {.limit = 0},
      {.limit = APIG_LIST_LIMIT + 1},
      {.limit = 10, .offset = -1},
      {.limit = 10, .name = ""},
      {.limit = 10, .name = "a\nb"},
      {.limit = 10, .common_name = longf},
      {.limit = 10, .instance_id = "i/../x"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&u, 'x', sizeof u);
    assert_int_equal(cert_url_list(HW, PROJECT, &bad[i], &u), -EINVAL);
    assert_null(u.url);
  }
  longf[255] = '\0'; /* 255 is the longest */
  q = (struct apig_cert_query){.limit = 10, .name = longf};
  assert_int_equal(cert_url_list(HW, PROJECT, &q, &u), 0);
  apig_url_free(&u);
  assert_int_equal(cert_url_list(HW, PROJECT, NULL, &u), -EINVAL);
}

/* ---- the body ----------------------------------------------------------- */

#define CHAIN                                                                  \
  "-----BEGIN CERTIFICATE-----\nMIIBleaf/+==\n-----END CERTIFICATE-----\n"     \
  "-----BEGIN CERTIFICATE-----\nMIIBinter\n-----END CERTIFICATE-----\n"
#define CHAIN_JSON                                                             \
  "-----BEGIN CERTIFICATE-----\\nMIIBleaf/+==\\n-----END CERTIFICATE-----\\n"  \
  "-----BEGIN CERTIFICATE-----\\nMIIBinter\\n-----END CERTIFICATE-----\\n"
#define KEY                                                                    \
  "-----BEGIN PRIVATE KEY-----\r\n" SECRET "\r\n-----END PRIVATE KEY-----\n"
#define KEY_JSON                                                               \
  "-----BEGIN PRIVATE KEY-----\\r\\n" SECRET                                   \
  "\\r\\n-----END PRIVATE KEY-----\\n"

static void test_body(void **state)
{
  char *body;
  size_t len;
  struct apig_cert_form f = {.name = "cb_star_example_9f86d081",
                             .chain_pem = CHAIN,
                             .chain_len = strlen(CHAIN),
                             .key_pem = KEY,
                             .key_len = strlen(KEY),
                             .type = APIG_CERT_GLOBAL};
  const char *want = "{\"name\":\"cb_star_example_9f86d081\","
                     "\"cert_content\":\"" CHAIN_JSON "\","
                     "\"private_key\":\"" KEY_JSON "\","
                     "\"type\":\"global\"}";

  (void)state;
  assert_int_equal(apig_cert_body(&f, &body, &len), 0);
  assert_string_equal(body, want);
  assert_int_equal(len, strlen(want));
  free(body);

  /* The key is read by its length: no NUL needed after it. */
  char key[sizeof KEY + 8];
  memcpy(key, KEY, strlen(KEY));
  memset(key + strlen(KEY), 'Z', 8);
  f.key_pem = key;
  f.type = APIG_CERT_INSTANCE;
  f.instance_id = INST;
  assert_int_equal(apig_cert_body(&f, &body, &len), 0);
  assert_string_equal(body,
                      "{\"name\":\"cb_star_example_9f86d081\","
                      "\"cert_content\":\"" CHAIN_JSON "\","
                      "\"private_key\":\"" KEY_JSON "\","
                      "\"type\":\"instance\",\"instance_id\":\"" INST "\"}");
  free(body);

  /* Quotes, backslashes and control bytes are escaped exactly. */
  const char odd[] = "a\"b\\c\td\x01";
  f.chain_pem = odd;
  f.chain_len = strlen(odd);
  assert_int_equal(apig_cert_body(&f, &body, &len), 0);
  assert_non_null(strstr(body, "\"cert_content\":\"a\\\"b\\\\c\\td\\u0001\""));
  free(body);
}

static void test_body_refused(void **state)
{
  char *body = (char *)"x";
  size_t len = 1;
  const struct apig_cert_form good = {.name = "cb_a_01234567",
                                      .chain_pem = CHAIN,
                                      .chain_len = strlen(CHAIN),
                                      .key_pem = KEY,
                                      .key_len = strlen(KEY),
                                      .type = APIG_CERT_GLOBAL};
  struct apig_cert_form f[9];

  (void)state;
  for (size_t i = 0; i < 9; i++)
    f[i] = good;
  f[0].name = "cb-a";      /* not a valid name */
  f[1].key_len = 0;        /* empty key */
  f[2].chain_pem = NULL;   /* no chain */
  f[3].key_pem = "ab\0cd"; /* a NUL inside */
  f[3].key_len = 5;
  f[4].key_pem = SECRET "\xff"; /* not UTF-8 */
  f[4].key_len = strlen(SECRET) + 1;
  f[5].type = APIG_CERT_INSTANCE; /* without its gateway */
  f[6].type = APIG_CERT_INSTANCE;
  f[6].instance_id = "i\"d"; /* not an id */
  f[7].instance_id = INST;   /* global with a gateway */
  f[8].type = (enum apig_cert_type)7;
  for (size_t i = 0; i < 9; i++) {
    assert_int_equal(apig_cert_body(&f[i], &body, &len), -EINVAL);
    assert_null(body);
    assert_int_equal(len, 0);
  }
  assert_int_equal(apig_cert_body(NULL, &body, &len), -EINVAL);
}

/* ---- show ------------------------------------------------------------- */

/* What apig-sim's show/create/update answer (tools/apig-sim/sim_certs.c). */
static const char sim_show[] =
    "{\"id\":\"" CERT "\",\"name\":\"cb_star_example_9f86d081\","
    "\"type\":\"global\",\"instance_id\":\"common\","
    "\"project_id\":\"" PROJECT "\",\"common_name\":\"*.example.com\","
    "\"san\":[\"*.Example.com\",\"example.com\"],"
    "\"not_after\":\"2031-08-16T06:36:13Z\","
    "\"not_before\":\"2026-01-01T00:00:00Z\","
    "\"signature_algorithm\":\"SHA256-RSA\","
    "\"create_time\":\"2026-01-01T00:00:00Z\","
    "\"update_time\":\"2026-01-01T00:00:00Z\","
    "\"is_has_trusted_root_ca\":false,\"algorithm_type\":\"RSA\","
    "\"version\":3,\"organization\":[],\"organizational_unit\":[],"
    "\"locality\":[],\"state\":[],\"country\":[],"
    "\"issuer\":[\"CN=apig-sim test CA\"],\"serial_number\":\"13010\"}";

static void test_show_sim(void **state)
{
  struct apig_cert c;
  char why[128];

  (void)state;
  assert_int_equal(
      apig_cert_parse(sim_show, strlen(sim_show), &c, why, sizeof why), 0);
  assert_string_equal(why, "");
  assert_string_equal(c.id, CERT);
  assert_string_equal(c.name, "cb_star_example_9f86d081");
  assert_string_equal(c.type, "global");
  assert_string_equal(c.instance_id, "common");
  assert_string_equal(c.project_id, PROJECT);
  assert_string_equal(c.common_name, "*.example.com");
  assert_int_equal(c.nsan, 2);
  assert_string_equal(c.san[0], "*.example.com"); /* lowercased */
  assert_string_equal(c.san[1], "example.com");
  assert_string_equal(c.serial_number, "13010");
  assert_string_equal(c.signature_algorithm, "SHA256-RSA");
  assert_string_equal(c.algorithm_type, "RSA");
  assert_int_equal(c.not_after, 1944628573);  /* 2031-08-16T06:36:13Z */
  assert_int_equal(c.not_before, 1767225600); /* 2026-01-01T00:00:00Z */
  assert_false(c.has_trusted_root_ca);
  apig_cert_free(&c);
  assert_null(c.id);
}

static void test_show_reference(void **state)
{
  struct apig_cert c;
  /* the reference's illustrative shape: "..." times, no serial_number */
  const char *ref =
      "{\"id\":\"" CERT "\",\"name\":\"cert_demo\",\"type\":\"instance\","
      "\"instance_id\":\"" INST "\",\"project_id\":\"" PROJECT "\","
      "\"common_name\":\"api.example.com\","
      "\"san\":[\"api.example.com\",\"www.example.com\"],"
      "\"not_before\":\"...\",\"not_after\":\"...\","
      "\"signature_algorithm\":\"SHA256-RSA\",\"create_time\":\"...\","
      "\"update_time\":\"...\",\"is_has_trusted_root_ca\":true,"
      "\"algorithm_type\":\"RSA\"}";

  (void)state;
  assert_int_equal(apig_cert_parse(ref, strlen(ref), &c, NULL, 0), 0);
  assert_string_equal(c.instance_id, INST);
  assert_null(c.serial_number);
  assert_int_equal(c.not_after, 0); /* unreadable: unknown */
  assert_int_equal(c.not_before, 0);
  assert_true(c.has_trusted_root_ca);
  assert_int_equal(c.nsan, 2);
  apig_cert_free(&c);

  /* Only the id is needed; nulls are absent; a numeric serial is kept as
   * its digits; other time forms read. */
  const char *min = "{\"id\":\"" CERT "\",\"name\":null,\"san\":null,"
                    "\"serial_number\":13010,"
                    "\"not_after\":\"2031-08-16 14:36:13\","
                    "\"not_before\":\"2031-08-16T14:36:13+08:00\"}";
  assert_int_equal(apig_cert_parse(min, strlen(min), &c, NULL, 0), 0);
  assert_null(c.name);
  assert_int_equal(c.nsan, 0);
  assert_null(c.san);
  assert_string_equal(c.serial_number, "13010");
  assert_int_equal(c.not_after, 1944628573 + 8 * 3600);
  assert_int_equal(c.not_before, 1944628573);
  apig_cert_free(&c);
}

static void assert_show_bad(const char *body, size_t len, int err,
                            const char *why_want)
{
  struct apig_cert c;
  char why[128];

  memset(&c, 'x', sizeof c);
  assert_int_equal(apig_cert_parse(body, len, &c, why, sizeof why), err);
  assert_string_equal(why, why_want);
  assert_null(c.id);
  assert_null(c.san);
  assert_int_equal(c.nsan, 0);
}

#define BAD(s, err, why) assert_show_bad(s, strlen(s), err, why)

static void test_show_bad(void **state)
{
  (void)state;
  BAD("{\"name\":\"x\"}", -EBADMSG, "response without id");
  BAD("{\"id\":null}", -EBADMSG, "id is not a string");
  BAD("{\"id\":\"\"}", -EBADMSG, "id is empty");
  BAD("{\"id\":\"../" CERT "\"}", -EBADMSG, "id is not a valid id");
  BAD("{\"id\":\"" CERT "\",\"id\":\"" CERT "\"}", -EBADMSG,
      "duplicate field id");
  BAD("{\"id\":7}", -EBADMSG, "id is not a string");
  BAD("{\"id\":\"" CERT "\",\"san\":\"a.example.com\"}", -EBADMSG,
      "san is not an array");
  BAD("{\"id\":\"" CERT "\",\"san\":[\"a\",7]}", -EBADMSG,
      "san element is not a string");
  BAD("{\"id\":\"" CERT "\",\"san\":[null]}", -EBADMSG,
      "san element is not a string");
  BAD("{\"id\":\"" CERT "\",\"san\":[[\"a\"]]}", -EBADMSG,
      "san element is not a string");
  BAD("{\"id\":\"" CERT "\",\"san\":[{\"a\":1}]}", -EBADMSG,
      "san element is not a string");
  BAD("{\"id\":\"" CERT "\",\"not_after\":1944628573}", -EBADMSG,
      "not_after is not a string");
  BAD("{\"id\":\"" CERT "\",\"is_has_trusted_root_ca\":\"" SECRET "\"}",
      -EBADMSG, "is_has_trusted_root_ca is not a boolean");
  BAD("{\"id\":\"" CERT "\",\"serial_number\":\"\"}", -EBADMSG,
      "serial_number is empty or too long");
  BAD("{\"id\":\"" CERT "\",\"serial_number\":1.5}", -EBADMSG,
      "serial_number is not a string or an integer");
  BAD("[\"" CERT "\"]", -EBADMSG, "response is not an object");
  BAD("{\"id\":\"" CERT "\"", -EBADMSG, "malformed JSON or invalid UTF-8");
  BAD("{\"id\":\"" CERT "\",\"name\":\"\xff\"}", -EBADMSG,
      "malformed JSON or invalid UTF-8");
  BAD("", -EBADMSG, "malformed JSON or invalid UTF-8");
  assert_show_bad(NULL, 0, -EBADMSG, "malformed JSON or invalid UTF-8");

  /* an unknown field nested too deep */
  char deep[256] = "{\"id\":\"" CERT "\",\"x\":";
  for (int i = 0; i < 20; i++)
    strcat(deep, "[");
  for (int i = 0; i < 20; i++)
    strcat(deep, "]");
  strcat(deep, "}");
  BAD(deep, -EBADMSG, "nesting too deep");

  /* More SANs than any certificate holds: refused at the first past it. */
  size_t cap = 64 + (APIG_MAX_CERT_SAN + 1) * 8;
  char *many = malloc(cap);
  int k = sprintf(many, "{\"id\":\"" CERT "\",\"san\":[");
  for (int i = 0; i <= APIG_MAX_CERT_SAN; i++)
    k += sprintf(many + k, "%s\"s%d\"", i ? "," : "", i % 10);
  sprintf(many + k, "]}");
  BAD(many, -EBADMSG, "san has more than 1000 elements");
  /* exactly the limit is read */
  strcpy(strrchr(many, ','), "]}");
  struct apig_cert c;
  assert_int_equal(apig_cert_parse(many, strlen(many), &c, NULL, 0), 0);
  assert_int_equal(c.nsan, APIG_MAX_CERT_SAN);
  apig_cert_free(&c);
  free(many);

  /* over the size cap: refused before reading */
  size_t n = APIG_MAX_CERT_BODY + 1;
  char *big = malloc(n);
  memset(big, ' ', n);
  memcpy(big, "{\"id\":\"" CERT "\"}", strlen("{\"id\":\"" CERT "\"}"));
  assert_show_bad(big, n, -E2BIG, "response too large");
  assert_int_equal(apig_cert_parse(big, n - 1, &c, NULL, 0), 0);
  assert_string_equal(c.id, CERT);
  apig_cert_free(&c);
  free(big);
}

/* ---- list --------------------------------------------------------------- */

static void test_list(void **state)
{
  struct apig_cert_page p;
  char why[128];
  /* apig-sim's list: CertBase items, no serial_number/not_before/issuer */
  const char *sim =
      "{\"certs\":[{\"id\":\"" CERT "\",\"name\":\"cb_a_9f86d081\","
      "\"type\":\"global\",\"instance_id\":\"common\",\"project_id\":\"" PROJECT
      "\",\"common_name\":\"a.example.com\",\"san\":[\"a.example.com\"],"
      "\"not_after\":\"2031-08-16T06:36:13Z\","
      "\"signature_algorithm\":\"SHA256-ECDSA\","
      "\"create_time\":\"2026-01-01T00:00:00Z\","
      "\"update_time\":\"2026-01-01T00:00:00Z\","
      "\"is_has_trusted_root_ca\":false,\"algorithm_type\":\"ECC\"},"
      "{\"id\":\"b27be832f2e9441c8127fe48e3b5ac67\",\"name\":\"other\","
      "\"type\":\"instance\",\"instance_id\":\"" INST "\",\"san\":[]}],"
      "\"size\":2,\"total\":7}";

  (void)state;
  assert_int_equal(apig_cert_parse_list(sim, strlen(sim), &p, why, sizeof why),
                   0);
  assert_int_equal(p.n, 2);
  assert_int_equal(p.size, 2);
  assert_int_equal(p.total, 7);
  assert_string_equal(p.items[0].id, CERT);
  assert_string_equal(p.items[0].name, "cb_a_9f86d081");
  assert_null(p.items[0].serial_number);
  assert_int_equal(p.items[0].not_before, 0);
  assert_int_equal(p.items[0].not_after, 1944628573);
  assert_string_equal(p.items[0].algorithm_type, "ECC");
  assert_int_equal(p.items[0].nsan, 1);
  assert_string_equal(p.items[1].instance_id, INST);
  assert_int_equal(p.items[1].nsan, 0);
  apig_cert_page_free(&p);
  assert_int_equal(p.n, 0);

  const char *empty = "{\"certs\":[],\"total\":0,\"size\":0}";
  assert_int_equal(apig_cert_parse_list(empty, strlen(empty), &p, NULL, 0), 0);
  assert_int_equal(p.n, 0);
  assert_int_equal(p.total, 0);
  apig_cert_page_free(&p);
  const char *nocount = "{\"certs\":[],\"total\":null}";
  assert_int_equal(apig_cert_parse_list(nocount, strlen(nocount), &p, NULL, 0),
                   0);
  assert_int_equal(p.total, -1);
  assert_int_equal(p.size, -1);
  apig_cert_page_free(&p);
}

static void assert_list_bad(const char *body, size_t len, int err,
                            const char *why_want)
{
  struct apig_cert_page p;
  char why[128];

  assert_int_equal(apig_cert_parse_list(body, len, &p, why, sizeof why), err);
  assert_string_equal(why, why_want);
  assert_int_equal(p.n, 0);
  assert_null(p.items);
  assert_int_equal(p.total, -1);
  assert_int_equal(p.size, -1);
}

#define LBAD(s, err, why) assert_list_bad(s, strlen(s), err, why)

static void test_list_bad(void **state)
{
  (void)state;
  LBAD("{\"total\":0,\"size\":0}", -EBADMSG, "response without certs");
  LBAD("{\"certs\":null}", -EBADMSG, "certs is not an array");
  LBAD("{\"certs\":{}}", -EBADMSG, "certs is not an array");
  LBAD("{\"certs\":[\"" CERT "\"]}", -EBADMSG,
       "certs element is not an object");
  LBAD("{\"certs\":[{\"id\":\"" CERT "\"},{\"name\":\"x\"}]}", -EBADMSG,
       "certs element without id");
  LBAD("{\"certs\":[{\"id\":\"" CERT "\",\"san\":[1]}]}", -EBADMSG,
       "san element is not a string");
  LBAD("{\"certs\":[],\"total\":-1}", -EBADMSG, "total is negative");
  LBAD("{\"certs\":[],\"certs\":[]}", -EBADMSG, "duplicate field certs");
  LBAD("{\"certs\":[{\"id\":\"" CERT "\"}]", -EBADMSG,
       "malformed JSON or invalid UTF-8");

  /* More items than a page holds: refused at the first past the limit. */
  size_t per = 64, n = APIG_LIST_LIMIT + 1;
  char *big = malloc(32 + n * per);
  int k = sprintf(big, "{\"certs\":[");
  for (size_t i = 0; i < n; i++)
    k += sprintf(big + k, "%s{\"id\":\"%032zx\",\"san\":[\"a\"]}", i ? "," : "",
                 i);
  sprintf(big + k, "]}");
  assert_list_bad(big, strlen(big), -E2BIG,
                  "more certificates in one page than the limit asked for "
                  "(500)");
  strcpy(strstr(big, ",{\"id\":\""
                     "000000000000000000000000000001f4"),
         "]}"); /* exactly 500 (0x1f4 is the 501st) */
  struct apig_cert_page p;
  assert_int_equal(apig_cert_parse_list(big, strlen(big), &p, NULL, 0), 0);
  assert_int_equal(p.n, APIG_LIST_LIMIT);
  apig_cert_page_free(&p);
  free(big);

  size_t over = APIG_MAX_CERT_LIST_BODY + 1;
  char *huge = malloc(over);
  memset(huge, ' ', over);
  memcpy(huge, "{\"certs\":[]}", 12);
  assert_list_bad(huge, over, -E2BIG, "response too large");
  free(huge);
}

/* ---- times and serials ------------------------------------------------ */

static void test_time(void **state)
{
  int64_t t;
  const struct {
    const char *s;
    int64_t want;
  } ok[] = {
      {"2031-08-16T06:36:13Z", 1944628573},
      {"2031-08-16T06:36:13", 1944628573},
      {"2031-08-16 06:36:13", 1944628573},
      {"2031-08-16T14:36:13+08:00", 1944628573},
      {"2031-08-16T01:06:13-05:30", 1944628573},
      {"2031-08-16T06:36:13.123456Z", 1944628573},
      {"1970-01-01T00:00:00Z", 0},
      {"2028-02-29T00:00:00Z", 1835395200},
  };
  const char *bad[] = {
      "",
      "...",
      "2031-08-16",
      "2031-08-16T06:36",
      "2031-8-16T06:36:13Z",
      "2031-08-16T06:36:13ZZ",
      "2031-08-16T06:36:13 Z",
      "2031-08-16T06:36:13+8:00",
      "2031-08-16T06:36:13+0800",
      "2031-08-16T06:36:13.Z",
      "2031-13-01T00:00:00Z",
      "2031-02-30T00:00:00Z",
      "2031-02-29T00:00:00Z",
      "2031-08-16T24:00:00Z",
      "2031-08-16T06:60:00Z",
      "2031-08-16t06:36:13Z",
  };

  (void)state;
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    t = -1;
    assert_int_equal(apig_cert_time(ok[i].s, &t), 0);
    assert_int_equal(t, ok[i].want);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t = 42;
    assert_int_equal(apig_cert_time(bad[i], &t), -EINVAL);
    assert_int_equal(t, 42);
  }
  assert_int_equal(apig_cert_time(NULL, &t), -EINVAL);
}

static void test_serial(void **state)
{
  (void)state;
  /* 0x32D2 = 13010 */
  assert_true(apig_cert_serial_matches("13010", "13010", "32D2"));
  assert_true(apig_cert_serial_matches("32d2", "13010", "32D2"));
  assert_true(apig_cert_serial_matches("00:32:D2", "13010", "32D2"));
  assert_true(apig_cert_serial_matches("0x32D2", "13010", "32D2"));
  assert_true(apig_cert_serial_matches("32D2", "13010", "0032D2"));
  assert_false(apig_cert_serial_matches("13011", "13010", "32D2"));
  assert_false(apig_cert_serial_matches("32D3", "13010", "32D2"));
  assert_false(apig_cert_serial_matches("", "13010", "32D2"));
  assert_false(apig_cert_serial_matches(NULL, "13010", "32D2"));
  assert_false(apig_cert_serial_matches(":", "13010", ""));
  assert_false(apig_cert_serial_matches("32-D2", NULL, "32D2"));
  assert_false(apig_cert_serial_matches("13010", NULL, NULL));
}

/* ---- errors and classes ------------------------------------------------- */

static void test_problem(void **state)
{
  const enum apig_op C = APIG_OP_CERT_CREATE, U = APIG_OP_CERT_UPDATE,
                     X = APIG_OP_CERT_DELETE, S = APIG_OP_CERT_SHOW,
                     A = APIG_OP_ATTACH;
  const struct {
    enum apig_op op;
    long status;
    const char *code;
    enum apig_cert_problem want;
  } rows[] = {
      {C, 400, "APIG.2101", APIG_CERT_KEY_MISMATCH},
      {U, 400, "APIG.2102", APIG_CERT_EXPIRED},
      {A, 400, "APIG.2103", APIG_CERT_NAMES_MISS},
      {C, 400, "APIG.2104", APIG_CERT_CHAIN_ORDER},
      {C, 400, "APIG.2105", APIG_CERT_KEY_ENCRYPTED},
      {C, 400, "APIG.2106", APIG_CERT_INVALID},
      {C, 400, "APIG.2012", APIG_CERT_BAD_PARAM},
      {U, 400, "APIG.2012", APIG_CERT_BAD_PARAM},
      {A, 400, "APIG.2012", APIG_CERT_OK_OR_OTHER},
      {C, 400, "APIG.3199", APIG_CERT_QUOTA},
      {X, 400, "APIG.3199", APIG_CERT_OK_OR_OTHER},
      {X, 400, "APIG.3400", APIG_CERT_IN_USE},
      {C, 400, "APIG.3400", APIG_CERT_OK_OR_OTHER},
      {S, 404, "APIG.3025", APIG_CERT_NOT_FOUND},
      {X, 404, "APIG.3021", APIG_CERT_NOT_FOUND},
      {U, 403, "APIG.1115", APIG_CERT_FORBIDDEN},
      {C, 500, "APIG.9999", APIG_CERT_OK_OR_OTHER},
      {C, 200, NULL, APIG_CERT_OK_OR_OTHER},
      {C, 400, NULL, APIG_CERT_OK_OR_OTHER},
  };

  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    enum apig_cert_problem p =
        apig_cert_problem(rows[i].op, rows[i].status, rows[i].code);
    if (p != rows[i].want)
      fail_msg("row %zu: %d, want %d", i, p, rows[i].want);
    const char *text = apig_cert_problem_text(p);
    assert_true(p == APIG_CERT_OK_OR_OTHER ? !*text : *text != '\0');
  }
}

static void test_classify_cert(void **state)
{
  const enum apig_op C = APIG_OP_CERT_CREATE, U = APIG_OP_CERT_UPDATE,
                     X = APIG_OP_CERT_DELETE, S = APIG_OP_CERT_SHOW,
                     L = APIG_OP_CERT_LIST;
  const struct {
    enum apig_op op;
    long status;
    bool transport;
    const char *code, *msg;
    enum apig_class want;
  } rows[] = {
      {C, 200, false, NULL, NULL, APIG_OK},
      {X, 204, false, NULL, NULL, APIG_OK},
      {X, 404, false, "APIG.3025", "gone", APIG_DONE_ALREADY},
      {X, 404, false, "APIG.3021", "gone", APIG_DONE_ALREADY},
      {X, 404, false, NULL, NULL, APIG_PERMANENT}, /* no code: not sure */
      {S, 404, false, "APIG.3025", "gone", APIG_PERMANENT},
      {U, 404, false, "APIG.3025", "gone", APIG_PERMANENT},
      {X, 400, false, "APIG.3400", "bound", APIG_PERMANENT},
      {C, 400, false, "APIG.3199", "quota", APIG_PERMANENT},
      {C, 400, false, "APIG.2101", "", APIG_PERMANENT},
      {C, 400, false, "APIG.2012", "name", APIG_PERMANENT},
      {C, 500, false, "APIG.9999", "", APIG_RETRY},
      {C, 0, true, "transport", "", APIG_RETRY},
      {L, 429, false, "APIG.0308", "", APIG_THROTTLED},
      {C, 500, false, "APIG.9008", "", APIG_THROTTLED},
      {U, 401, false, "APIG.1002", "", APIG_REAUTH},
      {S, 403, false, "APIG.1115", "", APIG_AUTH_FATAL},
      {C, 401, false, "APIGW.0301", "verify aksk signature fail",
       APIG_AUTH_FATAL},
  };

  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    enum apig_class c =
        apig_classify(rows[i].op, rows[i].status, rows[i].transport,
                      rows[i].code, rows[i].msg);
    if (c != rows[i].want)
      fail_msg("row %zu: %s, want %s", i, apig_class_name(c),
               apig_class_name(rows[i].want));
  }
  /* a create that may have happened is re-read (listed by name) first */
  assert_true(apig_outcome_unknown(C, 0, true, true));
  assert_false(apig_outcome_unknown(C, 0, true, false));
  assert_true(apig_outcome_unknown(C, 500, false, false));
  assert_true(apig_outcome_unknown(C, 503, false, false));
  assert_false(apig_outcome_unknown(C, 400, false, false));
  /* update and delete may be resent as they are */
  assert_false(apig_outcome_unknown(U, 500, false, false));
  assert_false(apig_outcome_unknown(X, 0, true, true));
  assert_false(apig_outcome_unknown(S, 500, false, false));

  assert_string_equal(apig_op_name(C), "cert_create");
  assert_string_equal(apig_op_name(S), "cert_show");
  assert_string_equal(apig_op_name(L), "cert_list");
  assert_string_equal(apig_op_name(U), "cert_update");
  assert_string_equal(apig_op_name(X), "cert_delete");
  assert_true(apig_code_is("APIGW.3025", "3025"));
  assert_false(apig_code_is("APIG.30250", "3025"));
  assert_false(apig_code_is(NULL, "3025"));
}

/* The key is a secret: no reason a parser gives holds input bytes, and a
 * refused body returns nothing. */
static void test_secret_never_in_reasons(void **state)
{
  char why[128];
  struct apig_cert c;
  struct apig_cert_page p;
  const char *bodies[] = {
      "{\"id\":\"" SECRET "/\"}",
      "{\"id\":\"" CERT "\",\"san\":[\"" SECRET "\",{}]}",
      "{\"" SECRET "\":1,\"id\":" SECRET "}",
      "{\"certs\":[{\"id\":\"" CERT "\",\"name\":" SECRET "}]}",
  };

  (void)state;
  for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
    assert_int_not_equal(
        apig_cert_parse(bodies[i], strlen(bodies[i]), &c, why, sizeof why), 0);
    assert_null(strstr(why, "MC4CAQ"));
    assert_int_not_equal(
        apig_cert_parse_list(bodies[i], strlen(bodies[i]), &p, why, sizeof why),
        0);
    assert_null(strstr(why, "MC4CAQ"));
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name),
      cmocka_unit_test(test_name_valid),
      cmocka_unit_test(test_urls),
      cmocka_unit_test(test_url_list),
      cmocka_unit_test(test_body),
      cmocka_unit_test(test_body_refused),
      cmocka_unit_test(test_show_sim),
      cmocka_unit_test(test_show_reference),
      cmocka_unit_test(test_show_bad),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_list_bad),
      cmocka_unit_test(test_time),
      cmocka_unit_test(test_serial),
      cmocka_unit_test(test_problem),
      cmocka_unit_test(test_classify_cert),
      cmocka_unit_test(test_secret_never_in_reasons),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
