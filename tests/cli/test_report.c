/* SPDX-License-Identifier: MIT */
/*
 * report: the plan as people read it (text) and as `plan --json` / `plan
 * --out` write it, and reading a stored plan back for `apply --plan`. The
 * config model and the plan are built by hand.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "report.h"

#define PROJECT "0123456789abcdef0123456789abcdef"
#define CERT_WWW "aaaa1111bbbb2222cccc3333dddd4444"
#define CERT_API "eeee5555ffff6666aaaa7777bbbb8888"
/* gw-b's instance sorts before gw-a's: the plan has them in that order */
#define INST_A "f0fa1789-3b76-433b-a787-9892951c620e"
#define INST_B "7d39549681c54d968ec2910da9da95cd"
#define INST_GONE "99999999aaaa4bbbbccccddddeeeeffff"
#define CHECKSUM                                                               \
  "cafebabecafebabecafebabecafebabecafebabecafebabecafebabecafebabe"

struct fixture {
  struct config cfg;
  struct config_account accts[2];
  struct config_gateway gws[2];
  struct config_certificate certs[2];
  struct plan plan;
  struct plan_item items[4];
  struct plan_uncertain uncertain[30];
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->accts[0] = (struct config_account){
      .name = "prod", .region = "eu-west-101", .project_id = PROJECT};
  f->accts[1] = (struct config_account){
      .name = "staging", .region = "ap-southeast-3", .project_id = "short"};
  f->gws[0] = (struct config_gateway){"gw-a", 0, INST_A};
  f->gws[1] = (struct config_gateway){"gw-b", 0, INST_B};
  f->certs[0] = (struct config_certificate){"www", 0, CERT_WWW};
  f->certs[1] = (struct config_certificate){"api", 1, CERT_API};
  f->cfg.path = "/etc/certbind/bindings.yaml";
  f->cfg.accounts = f->accts;
  f->cfg.naccounts = 2;
  f->cfg.gateways = f->gws;
  f->cfg.ngateways = 2;
  f->cfg.certificates = f->certs;
  f->cfg.ncertificates = 2;
  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  memset(f->cfg.sha256, '5', 64);

  /* sorted as plan_compute sorts: certificate, op, domain, gateway */
  f->items[0] = (struct plan_item){PLAN_ATTACH, 0,     1, "www.example.com",
                                   INST_B,      false, 0};
  f->items[1] = (struct plan_item){PLAN_ATTACH, 0,     0, "www.example.com",
                                   INST_A,      false, 1};
  f->items[2] = (struct plan_item){PLAN_CHANGE, 0,    0, "shop.example.com",
                                   INST_A,      true, 2};
  f->items[3] = (struct plan_item){
      PLAN_DETACH, 1, UINT32_MAX, "old.example.com", INST_GONE, true, SIZE_MAX};
  f->plan.items = f->items;
  f->plan.nitems = 4;
  f->plan.nattach = 2;
  f->plan.nchange = 1;
  f->plan.ndetach = 1;
  f->plan.unchanged = 5;
  memcpy(f->plan.checksum, CHECKSUM, 65);
  f->uncertain[0] = (struct plan_uncertain){1, 0, INST_A, "maybe.example.com"};
  f->plan.uncertain = f->uncertain;
  f->plan.nuncertain = 1;
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  free(*state);
  return 0;
}

/* What report_plan_text prints (malloc'd). */
static char *plan_text(const struct config *cfg, const struct plan *p,
                       bool color)
{
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);

  assert_non_null(out);
  assert_int_equal(report_plan_text(cfg, p, out, color), 0);
  assert_int_equal(fclose(out), 0);
  return buf;
}

static void test_text_groups_by_account_and_certificate(void **state)
{
  struct fixture *f = *state;
  char *text = plan_text(&f->cfg, &f->plan, false);

  assert_string_equal(
      text, "account prod (eu-west-101, project 0123\xe2\x80\xa6"
            "cdef)\n"
            "  certificate www (aaaa\xe2\x80\xa6"
            "4444)\n"
            "    + attach   www.example.com   on gw-a, gw-b\n"
            "    ~ change   shop.example.com   on gw-a   client verification "
            "off -> on\n"
            "account staging (ap-southeast-3, project short)\n"
            "  certificate api (eeee\xe2\x80\xa6"
            "8888)\n"
            "    - detach   old.example.com   on " INST_GONE
            "   owned by certbind, no longer wanted\n"
            "Uncertain: 1 live binding(s) that an interrupted pass may have "
            "attached; never detached, owned only after `certbind adopt`:\n"
            "    ? uncertain maybe.example.com   on gw-a   certificate api\n"
            "Plan: 2 to attach, 1 to change, 1 to detach, 5 unchanged.\n");
  free(text);
}

static void test_text_colours_only_the_sign_and_op(void **state)
{
  struct fixture *f = *state;
  char *text = plan_text(&f->cfg, &f->plan, true);

  assert_non_null(
      strstr(text, "    \033[32m+ attach  \033[0m www.example.com   on "));
  assert_non_null(
      strstr(text, "    \033[33m~ change  \033[0m shop.example.com   on "));
  assert_non_null(
      strstr(text, "    \033[31m- detach  \033[0m old.example.com   on "));
  free(text);
}

static void test_text_no_changes(void **state)
{
  struct fixture *f = *state;
  struct plan empty = {.unchanged = 3};
  char *text = plan_text(&f->cfg, &empty, false);

  assert_string_equal(text, "No changes: 3 bindings in place.\n");
  free(text);
}

/* The text lists 20 uncertain bindings; the JSON has them all. */
static void test_text_caps_the_uncertain_lines(void **state)
{
  struct fixture *f = *state;
  size_t lines = 0;
  char *text;

  for (size_t i = 0; i < 23; i++)
    f->uncertain[i] = (struct plan_uncertain){0, 1, INST_B, "u.example.com"};
  f->plan.nuncertain = 23;
  text = plan_text(&f->cfg, &f->plan, false);
  for (const char *s = text; (s = strstr(s, "    ? uncertain ")); s++)
    lines++;
  assert_int_equal(lines, 20);
  assert_non_null(strstr(text, "Uncertain: 23 live binding(s)"));
  assert_non_null(
      strstr(text, "    ... and 3 more (plan --json lists them all)\n"));
  free(text);
}

static yajl_val get(yajl_val v, const char *key, yajl_type type)
{
  const char *path[] = {key, NULL};
  yajl_val r = yajl_tree_get(v, path, type);

  assert_non_null(r);
  return r;
}

static void assert_str(yajl_val v, const char *key, const char *want)
{
  assert_string_equal(YAJL_GET_STRING(get(v, key, yajl_t_string)), want);
}

static void assert_int(yajl_val v, const char *key, long long want)
{
  assert_int_equal(YAJL_GET_INTEGER(get(v, key, yajl_t_number)), want);
}

static yajl_val plan_json(const struct fixture *f)
{
  char *json, err[128];
  size_t len;
  yajl_val root;

  assert_int_equal(report_plan_json(&f->cfg, &f->plan, &json, &len), 0);
  assert_int_equal(strlen(json), len);
  root = yajl_tree_parse(json, err, sizeof(err));
  free(json);
  assert_non_null(root);
  return root;
}

static void test_json_header_and_summary(void **state)
{
  struct fixture *f = *state;
  yajl_val root = plan_json(f), sum;

  assert_int(root, "version", REPORT_PLAN_VERSION);
  assert_str(root, "checksum", CHECKSUM);
  assert_str(root, "config", "/etc/certbind/bindings.yaml");
  assert_str(root, "config_sha256", f->cfg.sha256);
  assert_str(root, "mode", "sync");
  sum = get(root, "summary", yajl_t_object);
  assert_int(sum, "attach", 2);
  assert_int(sum, "change", 1);
  assert_int(sum, "detach", 1);
  assert_int(sum, "unchanged", 5);
  assert_int(sum, "uncertain", 1);
  yajl_tree_free(root);
}

static void test_json_lists_every_change(void **state)
{
  struct fixture *f = *state;
  yajl_val root = plan_json(f);
  yajl_val ch = get(root, "changes", yajl_t_array), c;

  assert_int_equal(YAJL_GET_ARRAY(ch)->len, 4);
  c = YAJL_GET_ARRAY(ch)->values[0];
  assert_str(c, "op", "attach");
  assert_str(c, "account", "prod");
  assert_str(c, "certificate", "www");
  assert_str(c, "certificate_id", CERT_WWW);
  assert_str(c, "gateway", "gw-b");
  assert_str(c, "instance_id", INST_B);
  assert_str(c, "domain", "www.example.com");
  assert_true(YAJL_IS_FALSE(get(c, "verify_client", yajl_t_any)));
  c = YAJL_GET_ARRAY(ch)->values[2];
  assert_str(c, "op", "change");
  assert_str(c, "domain", "shop.example.com");
  assert_true(YAJL_IS_TRUE(get(c, "verify_client", yajl_t_any)));
  /* a gateway the file no longer names: no name, its instance */
  c = YAJL_GET_ARRAY(ch)->values[3];
  assert_str(c, "op", "detach");
  assert_str(c, "account", "staging");
  assert_str(c, "certificate", "api");
  assert_str(c, "gateway", "");
  assert_str(c, "instance_id", INST_GONE);
  yajl_tree_free(root);
}

static void test_json_lists_every_uncertain_binding(void **state)
{
  struct fixture *f = *state;
  yajl_val root, un, u;

  for (size_t i = 1; i < 25; i++)
    f->uncertain[i] = (struct plan_uncertain){0, 1, INST_B, "u.example.com"};
  f->plan.nuncertain = 25;
  root = plan_json(f);
  un = get(root, "uncertain", yajl_t_array);
  assert_int_equal(YAJL_GET_ARRAY(un)->len, 25);
  u = YAJL_GET_ARRAY(un)->values[0];
  assert_str(u, "certificate", "api");
  assert_str(u, "certificate_id", CERT_API);
  assert_str(u, "gateway", "gw-a");
  assert_str(u, "instance_id", INST_A);
  assert_str(u, "domain", "maybe.example.com");
  u = YAJL_GET_ARRAY(un)->values[24];
  assert_str(u, "certificate", "www");
  assert_str(u, "gateway", "gw-b");
  assert_int(get(root, "summary", yajl_t_object), "uncertain", 25);
  yajl_tree_free(root);
}

/* A file in a fresh directory with these bytes; path filled. */
static void write_file(char path[64], const char *bytes)
{
  int fd;

  strcpy(path, "/tmp/test_report.XXXXXX");
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
  close(fd);
}

static void test_plan_read_round_trip(void **state)
{
  struct fixture *f = *state;
  char path[64], checksum[65] = "";
  const char *why = "unset";
  char *json;
  size_t len;

  assert_int_equal(report_plan_json(&f->cfg, &f->plan, &json, &len), 0);
  write_file(path, json);
  free(json);
  assert_int_equal(report_plan_read(path, checksum, &why), 0);
  assert_string_equal(checksum, CHECKSUM);
  assert_null(why);
  unlink(path);
}

static void expect_refused(const char *bytes, const char *want_why)
{
  char path[64], checksum[65] = "";
  const char *why = NULL;

  write_file(path, bytes);
  assert_int_equal(report_plan_read(path, checksum, &why), -EBADMSG);
  assert_non_null(why);
  assert_string_equal(why, want_why);
  assert_string_equal(checksum, "");
  unlink(path);
}

static void test_plan_read_refuses_what_plan_did_not_write(void **state)
{
  (void)state;
  expect_refused("not json", "not a JSON plan written by certbind plan --out");
  expect_refused("[1, 2]", "not a JSON plan written by certbind plan --out");
  expect_refused("{\"version\": 2, \"checksum\": \"" CHECKSUM "\"}",
                 "unsupported plan version");
  expect_refused("{\"checksum\": \"" CHECKSUM "\"}",
                 "unsupported plan version");
  expect_refused("{\"version\": 1}", "the plan has no valid checksum");
  expect_refused("{\"version\": 1, \"checksum\": \"CAFEBABE" CHECKSUM "\"}",
                 "the plan has no valid checksum");
  /* upper-case hex: plan never writes it */
  expect_refused("{\"version\": 1, \"checksum\": "
                 "\"CAFEBABEcafebabecafebabecafebabecafebabecafebabecafebabe"
                 "cafebabe\"}",
                 "the plan has no valid checksum");
}

static void test_plan_read_missing_file(void **state)
{
  char checksum[65];
  const char *why = NULL;

  (void)state;
  assert_int_equal(report_plan_read("/nonexistent/plan.json", checksum, &why),
                   -ENOENT);
  assert_non_null(why);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_text_groups_by_account_and_certificate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_colours_only_the_sign_and_op,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_no_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_caps_the_uncertain_lines, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_header_and_summary, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_lists_every_change, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_lists_every_uncertain_binding,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_plan_read_round_trip, setup,
                                      teardown),
      cmocka_unit_test(test_plan_read_refuses_what_plan_did_not_write),
      cmocka_unit_test(test_plan_read_missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
