/* SPDX-License-Identifier: MIT */
/*
 * test_auth: request headers per auth method (aksk checked against the
 * reference vectors through a fixed clock), Host derivation, the IAM
 * password body and expiry parsing, token renewal and wiping, and that no
 * secret shows up anywhere it should not.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "auth.h"
#include "sign.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define PROJECT "0123456789abcdef0123456789abcdef"
#define CERT "a27be832f2e9441c8127fe48e3b5ac67"
#define APIG_HOST "apig.cn-north-4.myhuaweicloud.com"
#define T_20250101 ((time_t)1735689600) /* 20250101T000000Z */
#define SK "SecretKey"
#define PASSWORD "pa55-W0rd!\"quoted\""
#define TOKEN "MIIToken-abc.def"

static const char attach_body[] =
    "{\"domains\":[{\"domain\":\"api.example.com\",\"instance_ids\":"
    "[\"f0fa1789-3b76-433b-a787-9892951c620e\"],"
    "\"verified_client_certificate_enabled\":false}]}";

static struct config_account aksk_account(void)
{
  return (struct config_account){
      .name = "sg",
      .region = "cn-north-4",
      .project_id = PROJECT,
      .endpoint = "https://" APIG_HOST,
      .auth_method = CONFIG_AUTH_AKSK,
      .access_key = {.value = "AccessKey", .len = 9},
      .secret_key = {.value = SK, .len = strlen(SK)},
  };
}

static struct config_account password_account(void)
{
  return (struct config_account){
      .name = "pw",
      .project_id = PROJECT,
      .endpoint = "https://" APIG_HOST,
      .auth_method = CONFIG_AUTH_PASSWORD,
      .password = {.value = PASSWORD, .len = strlen(PASSWORD)},
      .iam_endpoint = "https://iam.cn-north-4.myhuaweicloud.com/",
      .user = "alice",
      .domain = "acme",
  };
}

static size_t list_len(const struct curl_slist *l)
{
  size_t n = 0;
  for (; l; l = l->next)
    n++;
  return n;
}

static const char *list_at(const struct curl_slist *l, size_t i)
{
  for (; l && i; l = l->next)
    i--;
  assert_non_null(l);
  return l->data;
}

/* The value of header name in the list ("Name: value"), or NULL. */
static const char *list_get(const struct curl_slist *l, const char *name)
{
  size_t n = strlen(name);
  for (; l; l = l->next)
    if (strncmp(l->data, name, n) == 0 && l->data[n] == ':')
      return l->data + n + 2;
  return NULL;
}

static void test_aksk_attach_matches_vector(void **state)
{
  (void)state;
  struct config_account a = aksk_account();
  struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
  assert_int_equal(auth_add_headers(&a, NULL, "POST", APIG_HOST,
                                    "/v2/" PROJECT "/apigw/certificates/" CERT
                                    "/domains/attach",
                                    NULL, attach_body, strlen(attach_body),
                                    T_20250101, &h),
                   0);
  assert_int_equal(list_len(h), 6);
  assert_string_equal(list_at(h, 0), "Accept: application/json");
  assert_string_equal(list_get(h, "Content-Type"), "application/json");
  assert_string_equal(list_get(h, "Host"), APIG_HOST);
  assert_string_equal(list_get(h, "X-Sdk-Date"), "20250101T000000Z");
  assert_string_equal(list_get(h, "X-Project-Id"), PROJECT);
  assert_string_equal(list_get(h, "Authorization"),
                      "SDK-HMAC-SHA256 Access=AccessKey, "
                      "SignedHeaders=content-type;host;x-sdk-date, "
                      "Signature=fc9d808642c6af428b1e88efc0161310d7eafe72d5a04"
                      "47bd138589b791a9790");
  auth_headers_free(h);
}

static void test_aksk_list_matches_vector(void **state)
{
  (void)state;
  struct config_account a = aksk_account();
  struct curl_slist *h = NULL;
  assert_int_equal(auth_add_headers(&a, NULL, "GET", APIG_HOST,
                                    "/v2/" PROJECT "/apigw/certificates/" CERT
                                    "/attached-domains",
                                    "limit=100&offset=0", NULL, 0, T_20250101,
                                    &h),
                   0);
  assert_int_equal(list_len(h), 4); /* no Content-Type without a body */
  assert_null(list_get(h, "Content-Type"));
  assert_string_equal(list_get(h, "Authorization"),
                      "SDK-HMAC-SHA256 Access=AccessKey, "
                      "SignedHeaders=host;x-sdk-date, "
                      "Signature=453f538bb1ea6762233d7aaba7d87b4581aefb350ec40"
                      "e1dbf8d2fbca374140f");
  auth_headers_free(h);
}

/* A verifier that knows the SK accepts what auth_add_headers produced, for
 * every method, and the clock moves the date. */
static void test_aksk_each_method_verifies(void **state)
{
  (void)state;
  static const char *methods[] = {"GET", "POST", "PUT", "DELETE"};
  struct config_account a = aksk_account();
  for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
    bool body =
        strcmp(methods[i], "POST") == 0 || strcmp(methods[i], "PUT") == 0;
    time_t now = T_20250101 + 3723 * (time_t)i;
    struct curl_slist *h = NULL;
    assert_int_equal(auth_add_headers(&a, NULL, methods[i], "127.0.0.1:8443",
                                      "/v2/" PROJECT "/apigw/certificates",
                                      "offset=0&limit=5", body ? "{}" : NULL,
                                      body ? 2 : 0, now, &h),
                     0);
    char date[SIGN_DATE_LEN + 1];
    assert_int_equal(sign_format_date(now, date), 0);
    assert_string_equal(list_get(h, "X-Sdk-Date"), date);
    struct sign_authz z;
    assert_int_equal(sign_parse_authorization(list_get(h, "Authorization"), &z),
                     0);
    assert_string_equal(z.access, "AccessKey");
    assert_string_equal(z.signed_headers, body ? "content-type;host;x-sdk-date"
                                               : "host;x-sdk-date");
    struct sign_header sh[] = {{"host", list_get(h, "Host")},
                               {"x-sdk-date", list_get(h, "X-Sdk-Date")},
                               {"content-type", list_get(h, "Content-Type")}};
    struct sign_input in = {.method = methods[i],
                            .path = "/v2/" PROJECT "/apigw/certificates",
                            .query = "limit=5&offset=0",
                            .headers = sh,
                            .nheaders = body ? 3 : 2,
                            .body = body ? "{}" : NULL,
                            .body_len = body ? 2 : 0};
    char sig[SIGN_HEX_LEN + 1];
    assert_int_equal(sign_signature_hex(&in, SK, strlen(SK), sig), 0);
    assert_true(sign_signature_equal(sig, z.signature));
    sign_authz_free(&z);
    auth_headers_free(h);
  }
}

static void test_token_and_password_headers(void **state)
{
  (void)state;
  struct config_account t = {.project_id = PROJECT,
                             .auth_method = CONFIG_AUTH_TOKEN,
                             .token = {.value = TOKEN, .len = strlen(TOKEN)}};
  struct curl_slist *h = NULL;
  assert_int_equal(auth_add_headers(&t, NULL, "GET", APIG_HOST, "/x", NULL,
                                    NULL, 0, T_20250101, &h),
                   0);
  assert_int_equal(list_len(h), 1);
  assert_string_equal(list_get(h, "X-Auth-Token"), TOKEN);
  auth_headers_free(h);

  struct config_account p = password_account();
  h = NULL;
  assert_int_equal(auth_add_headers(&p, "iam-token", "POST", APIG_HOST, "/x",
                                    NULL, "{}", 2, T_20250101, &h),
                   0);
  assert_int_equal(list_len(h), 2);
  assert_string_equal(list_get(h, "Content-Type"), AUTH_CONTENT_TYPE);
  assert_string_equal(list_get(h, "X-Auth-Token"), "iam-token");
  assert_null(list_get(h, "Authorization"));
  auth_headers_free(h);

  /* password without a token yet, or a token that would split the header */
  h = NULL;
  assert_int_equal(auth_add_headers(&p, NULL, "GET", APIG_HOST, "/x", NULL,
                                    NULL, 0, T_20250101, &h),
                   -EINVAL);
  assert_int_equal(auth_add_headers(&p, "a\r\nX-Evil: 1", "GET", APIG_HOST,
                                    "/x", NULL, NULL, 0, T_20250101, &h),
                   -EINVAL);
  assert_null(h);
}

static void test_failure_leaves_list_untouched(void **state)
{
  (void)state;
  struct curl_slist *h = curl_slist_append(NULL, "Accept: */*");
  struct config_account a = aksk_account();
  /* bad path escape, missing SK, missing method, bad host */
  assert_int_equal(auth_add_headers(&a, NULL, "GET", APIG_HOST, "/a%zz", NULL,
                                    NULL, 0, T_20250101, &h),
                   -EINVAL);
  a.secret_key.value = NULL;
  assert_int_equal(auth_add_headers(&a, NULL, "GET", APIG_HOST, "/a", NULL,
                                    NULL, 0, T_20250101, &h),
                   -EINVAL);
  a = aksk_account();
  assert_int_equal(auth_add_headers(&a, NULL, NULL, APIG_HOST, "/a", NULL, NULL,
                                    0, T_20250101, &h),
                   -EINVAL);
  assert_int_equal(auth_add_headers(&a, NULL, "GET", "h\nX: y", "/a", NULL,
                                    NULL, 0, T_20250101, &h),
                   -EINVAL);
  assert_int_equal(auth_add_headers(&a, NULL, "POST", APIG_HOST, "/a", NULL,
                                    NULL, 5, T_20250101, &h),
                   -EINVAL);
  assert_int_equal(list_len(h), 1);
  assert_string_equal(h->data, "Accept: */*");
  auth_headers_free(h);
}

static void assert_host(const char *url, const char *want)
{
  char *host = NULL;
  assert_int_equal(auth_url_host(url, &host), 0);
  assert_string_equal(host, want);
  free(host);
}

static void test_url_host(void **state)
{
  (void)state;
  assert_host("https://" APIG_HOST, APIG_HOST);
  assert_host("https://" APIG_HOST "/v2/x?y=1", APIG_HOST);
  assert_host("https://h.example:443/", "h.example");
  assert_host("https://h.example:8443/", "h.example:8443");
  assert_host("http://h.example:80", "h.example");
  assert_host("http://h.example:443", "h.example:443");
  assert_host("https://127.0.0.1:39443", "127.0.0.1:39443");
  assert_host("https://[::1]:9443/x", "[::1]:9443");
  char *host = (char *)0x1;
  assert_int_equal(auth_url_host("ftp://h.example", &host), -EINVAL);
  assert_int_equal(auth_url_host("not a url", &host), -EINVAL);
  assert_int_equal(auth_url_host(NULL, &host), -EINVAL);
  assert_ptr_equal(host, (char *)0x1);
}

static void test_iam_url(void **state)
{
  (void)state;
  struct config_account p = password_account();
  char *url = NULL;
  assert_int_equal(auth_iam_url(&p, &url), 0);
  assert_string_equal(
      url,
      "https://iam.cn-north-4.myhuaweicloud.com/v3/auth/tokens?nocatalog=true");
  free(url);
  p.iam_endpoint = NULL;
  assert_int_equal(auth_iam_url(&p, &url), -EINVAL);
}

static const char *tree_str(yajl_val root, const char *const *path)
{
  yajl_val v = yajl_tree_get(root, (const char **)path, yajl_t_string);
  assert_non_null(v);
  return YAJL_GET_STRING(v);
}

static void test_iam_body(void **state)
{
  (void)state;
  struct config_account p = password_account();
  char *body = NULL;
  size_t len = 0;
  assert_int_equal(auth_iam_request_body(&p, &body, &len), 0);
  assert_int_equal(strlen(body), len);
  char err[128];
  yajl_val root = yajl_tree_parse(body, err, sizeof(err));
  assert_non_null(root);
  const char *m[] = {"auth", "identity", "methods", NULL};
  yajl_val methods = yajl_tree_get(root, m, yajl_t_array);
  assert_non_null(methods);
  assert_int_equal(YAJL_GET_ARRAY(methods)->len, 1);
  assert_string_equal(YAJL_GET_STRING(YAJL_GET_ARRAY(methods)->values[0]),
                      "password");
  assert_string_equal(
      tree_str(root, (const char *const[]){"auth", "identity", "password",
                                           "user", "name", NULL}),
      "alice");
  assert_string_equal(
      tree_str(root, (const char *const[]){"auth", "identity", "password",
                                           "user", "password", NULL}),
      PASSWORD);
  assert_string_equal(
      tree_str(root, (const char *const[]){"auth", "identity", "password",
                                           "user", "domain", "name", NULL}),
      "acme");
  assert_string_equal(
      tree_str(root,
               (const char *const[]){"auth", "scope", "project", "id", NULL}),
      PROJECT);
  /* nothing but "auth" at the top, nothing but identity+scope below it */
  assert_int_equal(YAJL_GET_OBJECT(root)->len, 1);
  const char *ap[] = {"auth", NULL};
  assert_int_equal(YAJL_GET_OBJECT(yajl_tree_get(root, ap, yajl_t_object))->len,
                   2);
  yajl_tree_free(root);
  free(body);

  /* only password accounts, with every field */
  struct config_account a = aksk_account();
  assert_int_equal(auth_iam_request_body(&a, &body, &len), -EINVAL);
  p.domain = NULL;
  assert_int_equal(auth_iam_request_body(&p, &body, &len), -EINVAL);
  p = password_account();
  p.password.value = NULL;
  assert_int_equal(auth_iam_request_body(&p, &body, &len), -EINVAL);
  p = password_account();
  p.user = "\xff\xfe"; /* not UTF-8: yajl refuses rather than emitting junk */
  assert_int_equal(auth_iam_request_body(&p, &body, &len), -EINVAL);
}

static void test_iam_expiry(void **state)
{
  (void)state;
  time_t t = 0;
  static const char ok[] =
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13.855000Z\","
      "\"issued_at\":\"2019-02-12T06:52:13.855000Z\",\"methods\":"
      "[\"password\"],\"catalog\":[],\"user\":{\"name\":\"alice\"}}}";
  assert_int_equal(auth_iam_parse_expiry(ok, strlen(ok), &t), 0);
  assert_int_equal((long long)t, 1550040733LL);
  static const char noz[] =
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13Z\"}}";
  assert_int_equal(auth_iam_parse_expiry(noz, strlen(noz), &t), 0);
  assert_int_equal((long long)t, 1550040733LL);
  static const char off[] =
      "{\"token\":{\"expires_at\":\"2019-02-13T14:52:13.1+08:00\"}}";
  assert_int_equal(auth_iam_parse_expiry(off, strlen(off), &t), 0);
  assert_int_equal((long long)t, 1550040733LL);
  /* the length bounds the input: trailing garbage past len is ignored */
  char buf[sizeof(ok) + 8];
  memcpy(buf, ok, sizeof(ok) - 1);
  memcpy(buf + sizeof(ok) - 1, "garbage", 8);
  assert_int_equal(auth_iam_parse_expiry(buf, sizeof(ok) - 1, &t), 0);

  static const char *bad[] = {
      "",
      "{",
      "[]",
      "{\"token\":{}}",
      "{\"token\":{\"expires_at\":1550040733}}",
      "{\"token\":{\"expires_at\":\"\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13 06:52:13Z\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13.Z\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-30T06:52:13Z\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13T25:52:13Z\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13+8:00\"}}",
      "{\"token\":{\"expires_at\":\"2019-02-13T06:52:13Zjunk\"}}",
      "{\"expires_at\":\"2019-02-13T06:52:13Z\"}",
  };
  for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
    t = 42;
    assert_int_equal(auth_iam_parse_expiry(bad[i], strlen(bad[i]), &t),
                     -EINVAL);
    assert_int_equal((long long)t, 42);
  }
}

static void test_token_renewal(void **state)
{
  (void)state;
  struct auth_token t = {0};
  assert_true(auth_token_needs_renewal(&t, 0));
  assert_true(auth_token_needs_renewal(NULL, 0));
  /* 24 h token: 80 % (19.2 h) comes before 23 h */
  assert_int_equal(auth_token_set(&t, " tok\r\n", 6, 1000 + 86400, 1000), 0);
  assert_string_equal(t.value, "tok");
  assert_false(auth_token_needs_renewal(&t, 1000));
  assert_false(auth_token_needs_renewal(&t, 1000 + 69119));
  assert_true(auth_token_needs_renewal(&t, 1000 + 69120));
  /* 2 h token: 1 h before expiry (3600) comes before 80 % (5760) */
  assert_int_equal(auth_token_set(&t, "tok2", 4, 7200, 0), 0);
  assert_string_equal(t.value, "tok2");
  assert_false(auth_token_needs_renewal(&t, 3599));
  assert_true(auth_token_needs_renewal(&t, 3600));
  /* shorter than 2 h: at half its life, not on every request; expired or
   * inverted: renew */
  assert_int_equal(auth_token_set(&t, "tok3", 4, 1800, 0), 0);
  assert_false(auth_token_needs_renewal(&t, 0));
  assert_false(auth_token_needs_renewal(&t, 899));
  assert_true(auth_token_needs_renewal(&t, 900));
  assert_int_equal(auth_token_set(&t, "tok4", 4, 100, 200), 0);
  assert_true(auth_token_needs_renewal(&t, 200));
  /* a bad value leaves the old token in place */
  assert_int_equal(auth_token_set(&t, " \r\n", 3, 9, 0), -EINVAL);
  assert_int_equal(auth_token_set(&t, "a\nb", 3, 9, 0), -EINVAL);
  assert_string_equal(t.value, "tok4");
  auth_token_clear(&t);
  assert_null(t.value);
  assert_int_equal((long long)t.expires_at, 0);
  assert_int_equal((long long)t.obtained_at, 0);
  auth_token_clear(&t); /* idempotent */
}

static void test_secret_header_names(void **state)
{
  (void)state;
  assert_true(auth_header_is_secret("Authorization: SDK-HMAC-SHA256 x"));
  assert_true(auth_header_is_secret("x-auth-token:abc"));
  assert_true(auth_header_is_secret("X-Subject-Token : abc"));
  assert_true(auth_header_is_secret("X-Security-Token: abc"));
  assert_false(auth_header_is_secret("X-Sdk-Date: 20250101T000000Z"));
  assert_false(auth_header_is_secret("X-Auth-Tokens: x"));
  assert_false(auth_header_is_secret("Host: h"));
  assert_false(auth_header_is_secret(NULL));
}

/* The auth API returns only errno values (never text); its outputs carry a
 * secret only where the protocol puts it, in lines flagged as secret. */
static void test_no_secret_leaks(void **state)
{
  (void)state;
  struct config_account a = aksk_account();
  struct curl_slist *h = NULL;
  assert_int_equal(auth_add_headers(&a, NULL, "POST", APIG_HOST, "/p", "a=b",
                                    "{}", 2, T_20250101, &h),
                   0);
  for (struct curl_slist *l = h; l; l = l->next) {
    assert_null(strstr(l->data, SK));
    if (strstr(l->data, "Signature="))
      assert_true(auth_header_is_secret(l->data));
  }
  auth_headers_free(h);

  struct config_account p = password_account();
  h = NULL;
  assert_int_equal(auth_add_headers(&p, TOKEN, "GET", APIG_HOST, "/p", NULL,
                                    NULL, 0, T_20250101, &h),
                   0);
  for (struct curl_slist *l = h; l; l = l->next) {
    assert_null(strstr(l->data, PASSWORD));
    if (strstr(l->data, TOKEN))
      assert_true(auth_header_is_secret(l->data));
  }
  auth_headers_free(h);

  /* errors are plain errnos whose text holds no secret */
  int rcs[] = {auth_add_headers(&p, NULL, "GET", APIG_HOST, "/p", NULL, NULL, 0,
                                T_20250101, &h),
               auth_iam_request_body(&a, NULL, NULL)};
  for (size_t i = 0; i < ARRAY_LEN(rcs); i++) {
    assert_true(rcs[i] < 0);
    const char *msg = strerror(-rcs[i]);
    assert_null(strstr(msg, SK));
    assert_null(strstr(msg, PASSWORD));
  }
}

/* The daemon's token cache (issue 13 item 9): a token is reused until its
 * renewal time, never for other credentials, and dropped on a token error
 * or when its account leaves the file. */
static void cache_store(struct auth_token_cache *c,
                        const struct config_account *a, const char *value,
                        time_t expires, time_t now)
{
  struct auth_token t = {0};

  assert_int_equal(auth_token_set(&t, value, strlen(value), expires, now), 0);
  assert_int_equal(auth_token_cache_put(c, a, &t), 0);
  auth_token_clear(&t);
}

static bool cache_has(struct auth_token_cache *c,
                      const struct config_account *a, time_t now,
                      const char *value)
{
  struct auth_token t = {0};
  int rc = auth_token_cache_get(c, a, now, &t);
  bool ok = rc == 0 && strcmp(t.value, value) == 0;

  if (rc != 0)
    assert_int_equal(rc, -ENOENT);
  auth_token_clear(&t);
  return ok;
}

static void test_token_cache_reuse_until_renewal(void **state)
{
  (void)state;
  struct auth_token_cache c = {0};
  struct config_account a = password_account();
  struct config_account b = password_account();
  b.name = "other";

  assert_false(cache_has(&c, &a, 1000, "t1"));
  cache_store(&c, &a, "t1", 1000 + 86400, 1000);
  cache_store(&c, &b, "t-b", 1000 + 86400, 1000);
  /* a copy, for as long as it is before its renewal time (80 %) */
  assert_true(cache_has(&c, &a, 1000, "t1"));
  assert_true(cache_has(&c, &a, 1000 + 69119, "t1"));
  assert_false(cache_has(&c, &a, 1000 + 69120, "t1"));
  /* a renewal replaces it */
  cache_store(&c, &a, "t2", 5000 + 86400, 5000);
  assert_true(cache_has(&c, &a, 5000, "t2"));
  assert_true(cache_has(&c, &b, 5000, "t-b"));
  /* a token error drops it, for that account only */
  auth_token_cache_drop(&c, &a);
  assert_false(cache_has(&c, &a, 5000, "t2"));
  assert_true(cache_has(&c, &b, 5000, "t-b"));
  auth_token_cache_free(&c);
  assert_int_equal(c.n, 0);
  assert_false(cache_has(&c, &b, 5000, "t-b"));
  auth_token_cache_free(&c);
}

static void test_token_cache_never_serves_other_credentials(void **state)
{
  (void)state;
  struct config_account base = password_account();
  struct config_account changed[7];
  for (size_t i = 0; i < ARRAY_LEN(changed); i++)
    changed[i] = base;
  changed[0].password = (struct config_secret){.value = "x", .len = 1};
  changed[1].user = "bob";
  changed[2].domain = "other-domain";
  changed[3].project_id = "fedcba9876543210fedcba9876543210";
  changed[4].iam_endpoint = "https://iam.example.test";
  changed[5].endpoint = "https://apig.example.test";
  changed[6].region = "ap-southeast-1";

  for (size_t i = 0; i < ARRAY_LEN(changed); i++) {
    struct auth_token_cache c = {0};
    cache_store(&c, &base, "tok", 1000 + 86400, 1000);
    assert_true(cache_has(&c, &base, 1000, "tok"));
    /* the same account name after a reload with other credentials */
    assert_false(cache_has(&c, &changed[i], 1000, "tok"));
    /* and the token is gone, not kept for a reload back */
    assert_false(cache_has(&c, &base, 1000, "tok"));
    auth_token_cache_free(&c);
  }
}

static void test_token_cache_retain(void **state)
{
  (void)state;
  struct auth_token_cache c = {0};
  struct config_account acc[3] = {password_account(), password_account(),
                                  password_account()};
  acc[1].name = "kept";
  acc[2].name = "gone";
  struct config_account now[2] = {acc[0], acc[1]};
  now[0].user = "bob"; /* same name, other credentials */
  struct config cfg = {.accounts = now, .naccounts = 2};

  for (size_t i = 0; i < 3; i++)
    cache_store(&c, &acc[i], "tok", 1000 + 86400, 1000);
  assert_int_equal(c.n, 3);
  auth_token_cache_retain(&c, &cfg);
  assert_int_equal(c.n, 1);
  assert_true(cache_has(&c, &acc[1], 1000, "tok"));
  assert_false(cache_has(&c, &acc[0], 1000, "tok"));
  assert_false(cache_has(&c, &acc[2], 1000, "tok"));
  auth_token_cache_free(&c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_aksk_attach_matches_vector),
      cmocka_unit_test(test_aksk_list_matches_vector),
      cmocka_unit_test(test_aksk_each_method_verifies),
      cmocka_unit_test(test_token_and_password_headers),
      cmocka_unit_test(test_failure_leaves_list_untouched),
      cmocka_unit_test(test_url_host),
      cmocka_unit_test(test_iam_url),
      cmocka_unit_test(test_iam_body),
      cmocka_unit_test(test_iam_expiry),
      cmocka_unit_test(test_token_renewal),
      cmocka_unit_test(test_secret_header_names),
      cmocka_unit_test(test_no_secret_leaks),
      cmocka_unit_test(test_token_cache_reuse_until_renewal),
      cmocka_unit_test(test_token_cache_never_serves_other_credentials),
      cmocka_unit_test(test_token_cache_retain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
