/* SPDX-License-Identifier: MIT */
/* The APIG codec: URLs, bodies, list/error parsing, classification. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "apig.h"
#include "sign.h"

#define PROJECT "0123456789abcdef0123456789abcdef"
#define CERT "a27be832f2e9441c8127fe48e3b5ac67"
#define INST "f0fa1789-3b76-433b-a787-9892951c620e"
#define HW "https://apig.cn-north-4.myhuaweicloud.com"

/* ---- URLs -------------------------------------------------------------- */

static void test_url_list(void **state)
{
  struct apig_url u;

  (void)state;
  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 500, 0, NULL, &u), 0);
  assert_string_equal(u.url, HW "/v2/" PROJECT "/apigw/certificates/" CERT
                                "/attached-domains?limit=500&offset=0");
  assert_string_equal(u.path, "/v2/" PROJECT "/apigw/certificates/" CERT
                              "/attached-domains");
  assert_string_equal(u.query, "limit=500&offset=0");
  assert_string_equal(u.host, "apig.cn-north-4.myhuaweicloud.com");
  apig_url_free(&u);

  /* Port kept in Host, trailing slash dropped, '*' percent-encoded. */
  assert_int_equal(apig_url_list("https://127.0.0.1:8443/", PROJECT, CERT, 100,
                                 200, "*.Example.com", &u),
                   0);
  assert_string_equal(u.host, "127.0.0.1:8443");
  assert_string_equal(u.query,
                      "limit=100&offset=200&url_domain=%2A.Example.com");
  assert_string_equal(u.url,
                      "https://127.0.0.1:8443/v2/" PROJECT
                      "/apigw/certificates/" CERT "/attached-domains"
                      "?limit=100&offset=200&url_domain=%2A.Example.com");
  apig_url_free(&u);
}

/* A parsed endpoint gives the same URLs as the endpoint's text, for every
 * form of endpoint; an unparsed (zeroed) one gives none. */
static void test_url_parsed_endpoint(void **state)
{
  static const char *const endpoints[] = {
      HW, "https://127.0.0.1:8443/", "https://apig.example.com:443",
      "https://[::1]:9443", "https://gw.internal/apig/"};
  struct apig_endpoint ep, zero = {0};
  struct apig_url a, b;

  (void)state;
  for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++) {
    assert_int_equal(apig_endpoint_parse(endpoints[i], &ep), 0);
    assert_int_equal(apig_url_list(endpoints[i], PROJECT, CERT, 500, 1000,
                                   "*.example.com", &a),
                     0);
    assert_int_equal(
        apig_url_list_at(&ep, PROJECT, CERT, 500, 1000, "*.example.com", &b),
        0);
    assert_string_equal(a.url, b.url);
    assert_string_equal(a.path, b.path);
    assert_string_equal(a.query, b.query);
    assert_string_equal(a.host, b.host);
    apig_url_free(&a);
    apig_url_free(&b);
    assert_int_equal(
        apig_url_write(endpoints[i], PROJECT, CERT, APIG_OP_DETACH, &a), 0);
    assert_int_equal(apig_url_write_at(&ep, PROJECT, CERT, APIG_OP_DETACH, &b),
                     0);
    assert_string_equal(a.url, b.url);
    assert_string_equal(a.path, b.path);
    assert_string_equal(a.query, "");
    assert_string_equal(b.query, "");
    assert_string_equal(a.host, b.host);
    apig_url_free(&a);
    apig_url_free(&b);
    /* the checks of the ids stay with the parsed endpoint */
    assert_int_equal(apig_url_write_at(&ep, "p/x", CERT, APIG_OP_ATTACH, &b),
                     -EINVAL);
    assert_null(b.url);
    apig_endpoint_free(&ep);
  }
  assert_int_equal(apig_endpoint_parse("http://apig.example.com", &ep),
                   -EINVAL);
  assert_null(ep.host);
  assert_int_equal(apig_endpoint_parse("https://u@apig.example.com", &ep),
                   -EINVAL);
  assert_int_equal(apig_endpoint_parse("https://apig.example.com/?q=1", &ep),
                   -EINVAL);
  assert_int_equal(apig_endpoint_parse(NULL, &ep), -EINVAL);
  apig_endpoint_free(&ep);
  assert_int_equal(apig_url_list_at(&zero, PROJECT, CERT, 500, 0, NULL, &b),
                   -EINVAL);
  assert_null(b.url);
  assert_int_equal(apig_url_write_at(NULL, PROJECT, CERT, APIG_OP_ATTACH, &b),
                   -EINVAL);
}

static void test_url_host_forms(void **state)
{
  struct apig_url u;

  (void)state;
  /* The default port is not sent in Host (curl leaves it out too). */
  assert_int_equal(apig_url_write("https://apig.example.com:443", PROJECT, CERT,
                                  APIG_OP_ATTACH, &u),
                   0);
  assert_string_equal(u.host, "apig.example.com");
  assert_string_equal(u.url, "https://apig.example.com/v2/" PROJECT
                             "/apigw/certificates/" CERT "/domains/attach");
  assert_string_equal(u.query, "");
  apig_url_free(&u);

  assert_int_equal(
      apig_url_write("https://[::1]:9443", PROJECT, CERT, APIG_OP_DETACH, &u),
      0);
  assert_string_equal(u.host, "[::1]:9443");
  assert_string_equal(u.path, "/v2/" PROJECT "/apigw/certificates/" CERT
                              "/domains/detach");
  apig_url_free(&u);

  /* A base path (private endpoint behind a prefix) is kept. */
  assert_int_equal(apig_url_write("https://gw.internal/apig/", PROJECT, CERT,
                                  APIG_OP_ATTACH, &u),
                   0);
  assert_string_equal(u.path, "/apig/v2/" PROJECT "/apigw/certificates/" CERT
                              "/domains/attach");
  apig_url_free(&u);

  assert_int_equal(apig_url_token("https://iam.myhuaweicloud.com/", &u), 0);
  assert_string_equal(u.url, "https://iam.myhuaweicloud.com/v3/auth/tokens"
                             "?nocatalog=true");
  assert_string_equal(u.path, "/v3/auth/tokens");
  assert_string_equal(u.query, "nocatalog=true");
  assert_string_equal(u.host, "iam.myhuaweicloud.com");
  apig_url_free(&u);
}

static void test_url_refused(void **state)
{
  struct apig_url u;
  const char *bad_ids[] = {"",
                           "a/b",
                           "../x",
                           "a b",
                           "a?b",
                           "a%2Fb",
                           "a.b",
                           "a_b",
                           "é",
                           "a\nb",
                           ("0123456789012345678901234567890123456789012345678"
                            "9012345678901234") /* 65 */};
  const char *bad_endpoints[] = {
      "http://apig.example.com",
      "https://apig.example.com/?x=1",
      "https://u:p@apig.example.com",
      "https://apig.example.com/#frag",
      "not a url",
      "ftp://apig.example.com",
      "",
  };

  (void)state;
  for (size_t i = 0; i < sizeof bad_ids / sizeof *bad_ids; i++) {
    assert_false(apig_id_valid(bad_ids[i]));
    assert_int_equal(apig_url_list(HW, bad_ids[i], CERT, 10, 0, NULL, &u),
                     -EINVAL);
    assert_int_equal(
        apig_url_write(HW, PROJECT, bad_ids[i], APIG_OP_ATTACH, &u), -EINVAL);
    assert_null(u.url);
  }
  assert_true(apig_id_valid(INST));
  assert_true(apig_id_valid("0123456789012345678901234567890123456789012345"
                            "678901234567890123")); /* 64: the longest */
  assert_true(apig_id_valid(PROJECT));
  for (size_t i = 0; i < sizeof bad_endpoints / sizeof *bad_endpoints; i++) {
    assert_int_equal(
        apig_url_list(bad_endpoints[i], PROJECT, CERT, 10, 0, NULL, &u),
        -EINVAL);
    assert_null(u.url);
  }
  assert_int_equal(apig_url_list(NULL, PROJECT, CERT, 10, 0, NULL, &u),
                   -EINVAL);
  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 0, 0, NULL, &u), -EINVAL);
  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 501, 0, NULL, &u), -EINVAL);
  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 10, -1, NULL, &u), -EINVAL);
  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 10, 0, "a&b=c", &u),
                   -EINVAL);
  assert_int_equal(apig_url_write(HW, PROJECT, CERT, APIG_OP_LIST, &u),
                   -EINVAL);
}

/* ---- bodies ------------------------------------------------------------- */

static void test_body_reference(void **state)
{
  const char *inst[] = {INST};
  struct apig_domain_item it = {.domain = "api.example.com",
                                .instance_ids = inst,
                                .n_instances = 1,
                                .verify_client = false};
  const char *want = "{\"domains\":[{\"domain\":\"api.example.com\","
                     "\"instance_ids\":[\"" INST "\"],"
                     "\"verified_client_certificate_enabled\":false}]}";
  char *body;
  size_t len;

  (void)state;
  assert_int_equal(apig_write_body(&it, 1, &body, &len), 0);
  assert_int_equal(len, 142); /* docs/apig-api.md §8.1, derived vectors */
  assert_string_equal(body, want);
  free(body);
}

static void test_body_many(void **state)
{
  const char *a[] = {"i1", "i2"};
  const char *b[] = {"7d39549681c54d968ec2910da9da95cd"};
  struct apig_domain_item it[] = {
      {.domain = "a.example.com",
       .instance_ids = a,
       .n_instances = 2,
       .verify_client = true},
      {.domain = "*.b.example.com", .instance_ids = b, .n_instances = 1},
  };
  char *body;
  size_t len;

  (void)state;
  assert_int_equal(apig_write_body(it, 2, &body, &len), 0);
  assert_string_equal(
      body, "{\"domains\":[{\"domain\":\"a.example.com\",\"instance_ids\":"
            "[\"i1\",\"i2\"],\"verified_client_certificate_enabled\":true},"
            "{\"domain\":\"*.b.example.com\",\"instance_ids\":"
            "[\"7d39549681c54d968ec2910da9da95cd\"],"
            "\"verified_client_certificate_enabled\":false}]}");
  assert_int_equal(len, strlen(body));
  free(body);
}

static void test_body_refused(void **state)
{
  const char *inst[] = {INST};
  const char *empty[] = {""};
  struct apig_domain_item it = {
      .domain = "a.example.com", .instance_ids = inst, .n_instances = 1};
  char *body = (char *)1;
  size_t len = 9;

  (void)state;
  assert_int_equal(apig_write_body(&it, 0, &body, &len), -EINVAL);
  assert_null(body);
  it.n_instances = 0; /* would act on every gateway */
  assert_int_equal(apig_write_body(&it, 1, &body, &len), -EINVAL);
  it.n_instances = 1;
  it.instance_ids = empty;
  assert_int_equal(apig_write_body(&it, 1, &body, &len), -EINVAL);
  it.instance_ids = inst;
  it.domain = "";
  assert_int_equal(apig_write_body(&it, 1, &body, &len), -EINVAL);
  it.domain = "bad\xff.example.com";
  assert_int_equal(apig_write_body(&it, 1, &body, &len), -EINVAL);
  assert_null(body);
}

/* ---- list responses --------------------------------------------------- */

static const char *official =
    "{\n  \"total\" : 1,\n  \"size\" : 1,\n  \"bound_domains\" : [ {\n"
    "    \"id\" : \"b9be707660c5406394f8973e087bae20\",\n"
    "    \"url_domain\" : \"APIGtest.Example.com\",\n    \"status\" : 3,\n"
    "    \"min_ssl_version\" : \"TLSv1.1\",\n"
    "    \"ssl_id\" : \"a27be832f2e9441c8127fe48e3b5ac67\",\n"
    "    \"ssl_name\" : \"cert_demo\",\n"
    "    \"instance_id\" : \"f0fa1789-3b76-433b-a787-9892951c620e\",\n"
    "    \"api_group_id\" : \"c77f5e81d9cb4424bf704ef2b0ac7600\",\n"
    "    \"api_group_name\" : \"default\"\n  } ]\n}";

static int parse(const char *json, struct apig_bindings *b, struct apig_page *p)
{
  char why[128];
  int rc = apig_parse_list(json, strlen(json), b, p, why, sizeof why);
  assert_true(rc == 0 ? why[0] == '\0' : why[0] != '\0');
  return rc;
}

static void test_list_official(void **state)
{
  struct apig_bindings b = {0};
  struct apig_page p;

  (void)state;
  assert_int_equal(parse(official, &b, &p), 0);
  assert_int_equal(p.total, 1);
  assert_int_equal(p.size, 1);
  assert_int_equal(p.count, 1);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.items[0].url_domain, "apigtest.example.com");
  assert_string_equal(b.items[0].instance_id, INST);
  assert_false(b.items[0].verify_client);
  apig_bindings_free(&b);
}

static void test_list_pages_and_dedupe(void **state)
{
  struct apig_bindings b = {0};
  struct apig_page p;
  const char *page1 =
      "{\"total\":4,\"size\":3,\"extra\":{\"a\":[1,2,{\"b\":null}]},"
      "\"bound_domains\":["
      "{\"url_domain\":\"b.example.com\",\"instance_id\":\"i1\","
      "\"verified_client_certificate_enabled\":true,\"ingress_https_port\":"
      "443,\"tags\":[\"x\",{\"y\":1.5}]},"
      "{\"url_domain\":\"a.example.com\",\"instance_id\":\"i2\","
      "\"verified_client_certificate_enabled\":null},"
      "{\"url_domain\":\"B.example.com\",\"instance_id\":\"i1\","
      "\"verified_client_certificate_enabled\":true,\"ingress_https_port\":"
      "8443}]}";
  const char *page2 =
      "{\"bound_domains\":[{\"instance_id\":\"i1\",\"url_domain\":"
      "\"a.example.com\",\"verified_client_certificate_enabled\":true}],"
      "\"size\":1,\"total\":null}";

  (void)state;
  assert_int_equal(parse(page1, &b, &p), 0);
  assert_int_equal(p.total, 4);
  assert_int_equal(p.size, 3);
  assert_int_equal(p.count, 3);
  assert_int_equal(parse(page2, &b, &p), 0);
  assert_int_equal(p.total, -1);
  assert_int_equal(p.size, 1);
  assert_int_equal(p.count, 1);
  assert_int_equal(b.n, 4);
  apig_bindings_dedupe(&b);
  assert_int_equal(b.n, 3);
  assert_string_equal(b.items[0].url_domain, "a.example.com");
  assert_string_equal(b.items[0].instance_id, "i1");
  assert_true(b.items[0].verify_client);
  assert_string_equal(b.items[1].url_domain, "a.example.com");
  assert_string_equal(b.items[1].instance_id, "i2");
  assert_false(b.items[1].verify_client);
  assert_string_equal(b.items[2].url_domain, "b.example.com");
  assert_true(b.items[2].verify_client);
  apig_bindings_free(&b);

  /* Ports disagreeing on the flag: the merged entry says false. */
  const char *split =
      "{\"bound_domains\":[{\"url_domain\":\"c.example.com\",\"instance_id\":"
      "\"i1\",\"verified_client_certificate_enabled\":true},{\"url_domain\":"
      "\"c.example.com\",\"instance_id\":\"i1\","
      "\"verified_client_certificate_enabled\":false}]}";
  assert_int_equal(parse(split, &b, &p), 0);
  apig_bindings_dedupe(&b);
  assert_int_equal(b.n, 1);
  assert_false(b.items[0].verify_client);
  apig_bindings_free(&b);

  assert_int_equal(
      parse("{\"total\":0,\"size\":0,\"bound_domains\":[]}", &b, &p), 0);
  assert_int_equal(b.n, 0);
  assert_int_equal(p.count, 0);
  apig_bindings_free(&b);
}

static char *nest(int depth)
{
  /* {"x": [[...]]} : the object is level 1, each '[' one more. */
  char *s = malloc((size_t)depth * 2 + 64);
  int n = sprintf(s, "{\"bound_domains\":[],\"x\":");
  for (int i = 1; i < depth; i++)
    s[n++] = '[';
  for (int i = 1; i < depth; i++)
    s[n++] = ']';
  strcpy(s + n, "}");
  return s;
}
/* Trimmed, the array holds exactly its entries (and none: no array);
 * the entries are unchanged. */
static void test_list_trim(void **state)
{
  struct apig_bindings b = {0};
  struct apig_page p;
  const char *page =
      "{\"bound_domains\":["
      "{\"url_domain\":\"a.example.com\",\"instance_id\":\"i1\"},"
      "{\"url_domain\":\"b.example.com\",\"instance_id\":\"i2\"}]}";

  (void)state;
  assert_int_equal(parse(page, &b, &p), 0);
  assert_true(b.cap > b.n);
  apig_bindings_trim(&b);
  assert_int_equal(b.cap, 2);
  assert_int_equal(b.n, 2);
  assert_string_equal(b.items[1].url_domain, "b.example.com");
  assert_string_equal(b.items[1].instance_id, "i2");
  apig_bindings_free(&b);
  assert_int_equal(parse("{\"bound_domains\":[]}", &b, &p), 0);
  apig_bindings_trim(&b);
  assert_null(b.items);
  assert_int_equal(b.cap, 0);
  apig_bindings_trim(NULL);
  apig_bindings_free(&b);
}

/* Entries naming a known gateway point at its one copy of the ID (and
 * are freed without freeing it); an unknown ID keeps its own; entries
 * before `from` are left as they are; dedupe frees shared duplicates. */
static void test_list_shares_instance_ids(void **state)
{
  const char *ids[] = {"i1", "i3"}; /* sorted */
  struct apig_bindings b = {0};
  struct apig_page p;
  const char *page =
      "{\"bound_domains\":["
      "{\"url_domain\":\"a.example.com\",\"instance_id\":\"i1\"},"
      "{\"url_domain\":\"b.example.com\",\"instance_id\":\"i2\"},"
      "{\"url_domain\":\"c.example.com\",\"instance_id\":\"i3\"},"
      "{\"url_domain\":\"a.example.com\",\"instance_id\":\"i1\"}]}";

  (void)state;
  assert_int_equal(parse(page, &b, &p), 0);
  apig_bindings_share_instances(&b, 1, ids, 2);
  assert_false(b.items[0].instance_shared); /* before from */
  assert_false(b.items[1].instance_shared); /* not a known gateway */
  assert_string_equal(b.items[1].instance_id, "i2");
  assert_true(b.items[2].instance_shared);
  assert_ptr_equal(b.items[2].instance_id, ids[1]);
  assert_true(b.items[3].instance_shared);
  assert_ptr_equal(b.items[3].instance_id, ids[0]);
  apig_bindings_share_instances(&b, 0, ids, 2);
  assert_ptr_equal(b.items[0].instance_id, ids[0]);
  apig_bindings_dedupe(&b); /* the two a.example.com on i1: one freed */
  assert_int_equal(b.n, 3);
  assert_ptr_equal(b.items[0].instance_id, ids[0]);
  apig_bindings_free(&b); /* ids untouched: ASan and valgrind say so */
  assert_string_equal(ids[0], "i1");
  apig_bindings_share_instances(&b, 0, NULL, 0); /* empty: nothing */
}

static void test_list_bad(void **state)
{
  const char *bad[] = {
      "",
      "   ",
      "{\"total\":1,",
      "{\"bound_domains\":[{\"url_domain\":\"a.example.com\",\"instance_id\"",
      "[]",
      "\"str\"",
      "42",
      "null",
      "{}", /* no bound_domains: never "nothing bound" */
      "{\"bound_domains\":null}",
      "{\"bound_domains\":{}}",
      "{\"bound_domains\":[1]}",
      "{\"bound_domains\":[[]]}",
      "{\"total\":\"1\",\"bound_domains\":[]}",
      "{\"total\":1.5,\"bound_domains\":[]}",
      "{\"total\":-1,\"bound_domains\":[]}",
      "{\"size\":[],\"bound_domains\":[]}",
      "{\"total\":1,\"total\":2,\"bound_domains\":[]}",
      "{\"bound_domains\":[],\"bound_domains\":[]}",
      "{\"bound_domains\":[{\"url_domain\":5,\"instance_id\":\"i\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\",\"instance_id\":null}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\",\"instance_id\":{}}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\"}]}",
      "{\"bound_domains\":[{\"instance_id\":\"i\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"\",\"instance_id\":\"i\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\",\"url_domain\":\"b\","
      "\"instance_id\":\"i\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\",\"instance_id\":\"i\","
      "\"verified_client_certificate_enabled\":\"true\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\\u0000b\",\"instance_id\":"
      "\"i\"}]}",
      "{\"bound_domains\":[{\"url_domain\":\"a\xff\",\"instance_id\":\"i\"}]}",
      "{\"ignored\":\"\xc3\x28\",\"bound_domains\":[]}",
      "{\"bound_domains\":[]} trailing",
      "{\"bound_domains\":[]}{}",
      "{\"bound_domains\":[]/* comment */}",
      "{'bound_domains':[]}",
      "{\"bound_domains\":[],}",
  };
  struct apig_bindings b = {0};
  struct apig_page p;

  (void)state;
  /* One good page first: failures must not touch it. */
  assert_int_equal(parse(official, &b, &p), 0);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int rc = parse(bad[i], &b, &p);
    if (rc != -EBADMSG)
      fail_msg("case %zu (%s) gave %d", i, bad[i], rc);
    assert_int_equal(b.n, 1);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.total, -1);
  }
  /* A partial second page is rolled back entirely. */
  const char *half =
      "{\"bound_domains\":[{\"url_domain\":\"x.example.com\",\"instance_id\":"
      "\"i\"},{\"url_domain\":7}]}";
  assert_int_equal(parse(half, &b, &p), -EBADMSG);
  assert_int_equal(b.n, 1);
  assert_string_equal(b.items[0].url_domain, "apigtest.example.com");
  apig_bindings_free(&b);
}

static void test_list_limits(void **state)
{
  struct apig_bindings b = {0};
  struct apig_page p;
  char why[64];

  (void)state;
  char *ok = nest(APIG_MAX_DEPTH);
  char *deep = nest(APIG_MAX_DEPTH + 1);
  assert_int_equal(parse(ok, &b, &p), 0);
  assert_int_equal(parse(deep, &b, &p), -EBADMSG);
  free(ok);
  free(deep);
  char *huge = nest(100000); /* no stack growth: streaming */
  assert_int_equal(parse(huge, &b, &p), -EBADMSG);
  free(huge);

  size_t n = APIG_MAX_LIST_BODY + 1;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  memcpy(big + n - 20, "\"bound_domains\":[]}", 19);
  big[n] = '\0';
  assert_int_equal(apig_parse_list(big, n, &b, &p, why, sizeof why), -E2BIG);
  assert_string_equal(why, "response too large");
  /* Just under the cap is parsed. */
  assert_int_equal(apig_parse_list(big, n - 1, &b, &p, NULL, 0), 0);
  free(big);

  char long_domain[400];
  memset(long_domain, 'a', sizeof long_domain);
  long_domain[sizeof long_domain - 1] = '\0';
  char *json;
  assert_true(asprintf(&json,
                       "{\"bound_domains\":[{\"url_domain\":\"%s\","
                       "\"instance_id\":\"i\"}]}",
                       long_domain) > 0);
  assert_int_equal(parse(json, &b, &p), -EBADMSG);
  free(json);
  assert_int_equal(b.n, 0);
  apig_bindings_free(&b);
}

/* A page of n entries {"url_domain":"dK.example.com","instance_id":"i"},
 * then tail (what follows the array: "]}" for a complete page). */
static char *page_of(size_t n, const char *tail)
{
  size_t cap = 64 + n * 64 + strlen(tail), len = 0;
  char *s = malloc(cap);

  assert_non_null(s);
  len += (size_t)snprintf(s + len, cap - len,
                          "{\"total\":%zu,\"bound_domains\":[", n);
  for (size_t i = 0; i < n; i++)
    len += (size_t)snprintf(s + len, cap - len,
                            "%s{\"url_domain\":\"d%zu.example.com\","
                            "\"instance_id\":\"i\"}",
                            i ? "," : "", i);
  snprintf(s + len, cap - len, "%s", tail);
  return s;
}

/* a page never holds more entries than the limit asked for
 * (certbind always asks APIG_LIST_LIMIT); the parser stops at the first
 * entry past it, so what follows is never read or kept. */
static void test_list_more_entries_than_the_limit(void **state)
{
  struct apig_bindings b = {0};
  struct apig_page p;
  char why[128];

  (void)state;
  char *full = page_of(APIG_LIST_LIMIT, "]}");
  assert_int_equal(parse(full, &b, &p), 0);
  assert_int_equal(p.count, APIG_LIST_LIMIT);
  assert_int_equal(b.n, APIG_LIST_LIMIT);
  free(full);

  char *over = page_of(APIG_LIST_LIMIT + 1, "]}");
  assert_int_equal(apig_parse_list(over, strlen(over), &b, &p, why, sizeof why),
                   -E2BIG);
  assert_non_null(strstr(why, "more entries in one page than the limit"));
  assert_int_equal(b.n, APIG_LIST_LIMIT); /* only the earlier page's */
  assert_int_equal(p.count, 0);
  free(over);

  /* The parse stops at entry 501: garbage after it is never reached, the
   * error is the entry count, not the JSON. */
  char *then_garbage = page_of(APIG_LIST_LIMIT + 1, ",{\"url_domain\":7 \xff");
  assert_int_equal(apig_parse_list(then_garbage, strlen(then_garbage), &b, &p,
                                   why, sizeof why),
                   -E2BIG);
  free(then_garbage);

  /* 140,000 entries in one page (what a hostile server sent), as much of
   * it as the body cap lets in: the count, not the cut JSON, stops it. */
  char *huge = page_of(140000, "]}");
  assert_true(strlen(huge) > APIG_MAX_LIST_BODY);
  assert_int_equal(
      apig_parse_list(huge, APIG_MAX_LIST_BODY, &b, &p, why, sizeof why),
      -E2BIG);
  assert_int_equal(b.n, APIG_LIST_LIMIT);
  free(huge);
  apig_bindings_free(&b);
}

/* ---- error envelopes ------------------------------------------------- */

static void test_error_envelope(void **state)
{
  struct apig_error e;
  const char *apig = "{\"error_code\":\"APIG.3020\",\"error_msg\":\"The URL "
                     "domain does not exist\",\"request_id\":\"5b1c2d\"}";
  const char *alt = "{\"code\":\"APIGW.0308\",\"message\":\"throttled\"}";
  const char *iam = "{\"error\":{\"message\":\"The username or password is "
                    "wrong.\",\"code\":401,\"title\":\"Unauthorized\"}}";

  (void)state;
  apig_parse_error(apig, strlen(apig), &e);
  assert_string_equal(e.code, "APIG.3020");
  assert_string_equal(e.msg, "The URL domain does not exist");
  assert_string_equal(e.request_id, "5b1c2d");
  apig_parse_error(alt, strlen(alt), &e);
  assert_string_equal(e.code, "APIGW.0308");
  assert_string_equal(e.msg, "throttled");
  assert_string_equal(e.request_id, "");
  apig_parse_error(iam, strlen(iam), &e);
  assert_string_equal(e.code, "401");
  assert_string_equal(e.msg, "The username or password is wrong.");
  /* error_code wins over code; nested unknowns are skipped. */
  const char *both = "{\"x\":{\"error_code\":\"no\"},\"code\":\"C\","
                     "\"error_code\":\"APIG.1002\",\"error_msg\":\"m\"}";
  apig_parse_error(both, strlen(both), &e);
  assert_string_equal(e.code, "APIG.1002");
}

static void test_error_garbage(void **state)
{
  struct apig_error e;
  const char *bad[] = {
      "",
      "<html><body>502 Bad Gateway</body></html>",
      "{\"error_code\":\"APIG.9999\",\"error_msg\":\"Sys",
      "[\"APIG.9999\"]",
      "{\"error_code\":\"APIG.\xff\"}",
      "{\"error_code\":9999}",
      "\"APIG.9999\"",
  };

  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    memset(&e, 'x', sizeof e);
    apig_parse_error(bad[i], strlen(bad[i]), &e);
    assert_string_equal(e.code, "");
    assert_string_equal(e.msg, "");
    assert_string_equal(e.request_id, "");
  }
  apig_parse_error(NULL, 0, &e);
  assert_string_equal(e.code, "");

  /* Over 64 KiB: not parsed. */
  size_t n = APIG_MAX_ERROR_BODY + 1;
  char *big = malloc(n);
  const char *head = "{\"error_code\":\"APIG.9999\",\"x\":\"";
  memset(big, 'a', n);
  memcpy(big, head, strlen(head));
  memcpy(big + n - 2, "\"}", 2);
  apig_parse_error(big, n, &e);
  assert_string_equal(e.code, "");
  apig_parse_error(big, n - 1, &e); /* one byte short: broken JSON */
  assert_string_equal(e.code, "");
  free(big);

  /* A long message is cut on a UTF-8 boundary; control chars end it. */
  char msg[4096];
  int k = sprintf(msg, "{\"error_code\":\"APIG.2012\",\"error_msg\":\"");
  for (int i = 0; i < 600; i++)
    k += sprintf(msg + k, "\xc3\xa9");
  sprintf(msg + k, "\"}");
  apig_parse_error(msg, strlen(msg), &e);
  assert_int_equal(strlen(e.msg), 510);
  assert_int_equal((unsigned char)e.msg[508], 0xc3);
  const char *ctl = "{\"error_msg\":\"line1\\nline2\"}";
  apig_parse_error(ctl, strlen(ctl), &e);
  assert_string_equal(e.msg, "line1");
}

/* ---- classification --------------------------------------------------- */

struct row {
  enum apig_op op;
  long status;
  bool transport;
  const char *code, *msg;
  enum apig_class want;
};

static void test_classify(void **state)
{
  const enum apig_op W = APIG_OP_ATTACH, D = APIG_OP_DETACH, L = APIG_OP_LIST,
                     T = APIG_OP_TOKEN;
  const struct row rows[] = {
      {W, 0, true, NULL, NULL, APIG_RETRY},
      {L, 0, false, NULL, NULL, APIG_RETRY},
      {W, 204, false, NULL, NULL, APIG_OK},
      {L, 200, false, NULL, NULL, APIG_OK},
      {T, 201, false, NULL, NULL, APIG_OK},
      {D, 400, false, "APIG.2000", "no valid domain name", APIG_DONE_ALREADY},
      {W, 400, false, "APIG.2000", "Parameter error", APIG_PERMANENT},
      {W, 429, false, NULL, NULL, APIG_THROTTLED},
      {W, 429, false, "APIGW.0308", "over ratelimit", APIG_THROTTLED},
      {L, 429, false, "APIG.0308", NULL, APIG_THROTTLED},
      {W, 500, false, "APIG.9008", "Too many requests", APIG_THROTTLED},
      {W, 500, false, "APIG.3500", NULL, APIG_RETRY},
      {W, 500, false, "APIG.9999", "System error", APIG_RETRY},
      {L, 500, false, "APIG.9004", "IAM request failed", APIG_RETRY},
      {W, 502, false, "APIGW.0201", NULL, APIG_RETRY},
      {W, 503, false, NULL, NULL, APIG_RETRY},
      {L, 504, false, "", "", APIG_RETRY},
      {W, 409, false, "APIG.3711", NULL, APIG_RETRY},
      {W, 409, false, "APIG.3305", NULL, APIG_PERMANENT},
      {W, 408, false, NULL, NULL, APIG_RETRY},
      {W, 401, false, "APIG.1000", NULL, APIG_REAUTH},
      {W, 401, false, "APIG.1001", NULL, APIG_REAUTH},
      {L, 401, false, "APIG.1002", NULL, APIG_REAUTH},
      {W, 401, false, "APIGW.0307", "The token must be updated", APIG_REAUTH},
      {W, 401, false, "APIG.0307", NULL, APIG_REAUTH},
      {W, 401, false, "APIG.0301",
       "Incorrect IAM authentication "
       "information: token expires",
       APIG_REAUTH},
      {W, 401, false, "APIGW.0301", "decrypt Token fail", APIG_REAUTH},
      {W, 401, false, "APIGW.0301", "verify aksk signature fail",
       APIG_AUTH_FATAL},
      {W, 401, false, "APIG.0301",
       "AK access failed to reach the "
       "limit,forbidden",
       APIG_AUTH_FATAL},
      {W, 401, false, "APIG.0301", NULL, APIG_AUTH_FATAL},
      {W, 403, false, "APIG.1005", NULL, APIG_AUTH_FATAL},
      {W, 401, false, "APIG.1005", NULL, APIG_AUTH_FATAL},
      {W, 403, false, "APIGW.0302", NULL, APIG_AUTH_FATAL},
      {W, 403, false, "APIG.1115", NULL, APIG_AUTH_FATAL},
      {W, 403, false, NULL, NULL, APIG_AUTH_FATAL},
      {W, 401, false, "APIG.1012", NULL, APIG_AUTH_FATAL},
      {W, 401, false, NULL, NULL, APIG_AUTH_FATAL},
      {T, 401, false, "401", "The username or password is wrong.",
       APIG_AUTH_FATAL},
      {T, 401, false, "APIG.1002", NULL, APIG_AUTH_FATAL},
      {T, 500, false, NULL, NULL, APIG_RETRY},
      {W, 404, false, "APIG.3020", NULL, APIG_PERMANENT},
      {W, 404, false, "APIG.3030", NULL, APIG_PERMANENT},
      {W, 400, false, "APIG.2012", NULL, APIG_PERMANENT},
      {W, 400, false, "APIG.2103", NULL, APIG_PERMANENT},
      {W, 413, false, "APIG.0201", NULL, APIG_PERMANENT},
      {W, 302, false, NULL, NULL, APIG_PERMANENT},
      {W, 400, false, "APIGX.0308", NULL, APIG_PERMANENT},
  };

  (void)state;
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
    const struct row *r = &rows[i];
    enum apig_class got =
        apig_classify(r->op, r->status, r->transport, r->code, r->msg);
    if (got != r->want)
      fail_msg("row %zu: %s %ld %s: got %s want %s", i, apig_op_name(r->op),
               r->status, r->code ? r->code : "-", apig_class_name(got),
               apig_class_name(r->want));
  }
}

static void test_outcome_unknown(void **state)
{
  (void)state;
  assert_true(apig_outcome_unknown(APIG_OP_ATTACH, 0, true, true));
  assert_false(apig_outcome_unknown(APIG_OP_ATTACH, 0, true, false));
  assert_true(apig_outcome_unknown(APIG_OP_DETACH, 0, true, true));
  assert_true(apig_outcome_unknown(APIG_OP_ATTACH, 500, false, true));
  assert_true(apig_outcome_unknown(APIG_OP_DETACH, 503, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_ATTACH, 429, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_ATTACH, 400, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_ATTACH, 401, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_ATTACH, 204, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_LIST, 0, true, true));
  assert_false(apig_outcome_unknown(APIG_OP_LIST, 500, false, true));
  assert_false(apig_outcome_unknown(APIG_OP_TOKEN, 502, false, true));
  assert_string_equal(apig_class_name(APIG_DONE_ALREADY), "done_already");
  assert_string_equal(apig_op_name(APIG_OP_DETACH), "detach");
}

/* URL parts and body from the codec, signed by sign.c, give the derived
 * vectors of docs/apig-api.md §8.1: every byte the signer sees is
 * right. */
static void test_signed_vectors(void **state)
{
  const char *inst[] = {INST};
  struct apig_domain_item it = {
      .domain = "api.example.com", .instance_ids = inst, .n_instances = 1};
  struct apig_url u;
  char *body, *auth;
  size_t len;

  (void)state;
  assert_int_equal(apig_url_write(HW, PROJECT, CERT, APIG_OP_ATTACH, &u), 0);
  assert_int_equal(apig_write_body(&it, 1, &body, &len), 0);
  struct sign_header h[] = {{"Content-Type", "application/json"},
                            {"Host", u.host},
                            {"X-Sdk-Date", "20250101T000000Z"}};
  struct sign_input in = {.method = "POST",
                          .path = u.path,
                          .query = u.query,
                          .headers = h,
                          .nheaders = 3,
                          .body = body,
                          .body_len = len};
  assert_int_equal(sign_authorization(&in, "AccessKey", "SecretKey", 9, &auth),
                   0);
  assert_string_equal(
      auth, "SDK-HMAC-SHA256 Access=AccessKey, "
            "SignedHeaders=content-type;host;x-sdk-date, "
            "Signature=fc9d808642c6af428b1e88efc0161310d7eafe72d5a0447bd138589"
            "b791a9790");
  free(auth);
  free(body);
  apig_url_free(&u);

  assert_int_equal(apig_url_list(HW, PROJECT, CERT, 100, 0, NULL, &u), 0);
  struct sign_header g[] = {{"Host", u.host},
                            {"X-Sdk-Date", "20250101T000000Z"}};
  struct sign_input gin = {.method = "GET",
                           .path = u.path,
                           .query = u.query,
                           .headers = g,
                           .nheaders = 2};
  assert_int_equal(sign_authorization(&gin, "AccessKey", "SecretKey", 9, &auth),
                   0);
  assert_non_null(strstr(auth, "Signature=453f538bb1ea6762233d7aaba7d87b4581a"
                               "efb350ec40e1dbf8d2fbca374140f"));
  free(auth);
  apig_url_free(&u);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_list),
      cmocka_unit_test(test_url_host_forms),
      cmocka_unit_test(test_url_parsed_endpoint),
      cmocka_unit_test(test_url_refused),
      cmocka_unit_test(test_body_reference),
      cmocka_unit_test(test_body_many),
      cmocka_unit_test(test_body_refused),
      cmocka_unit_test(test_list_official),
      cmocka_unit_test(test_list_pages_and_dedupe),
      cmocka_unit_test(test_list_shares_instance_ids),
      cmocka_unit_test(test_list_trim),
      cmocka_unit_test(test_list_bad),
      cmocka_unit_test(test_list_limits),
      cmocka_unit_test(test_list_more_entries_than_the_limit),
      cmocka_unit_test(test_error_envelope),
      cmocka_unit_test(test_error_garbage),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_outcome_unknown),
      cmocka_unit_test(test_signed_vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
