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
  struct plan_item items[5];
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
  f->gws[0] = (struct config_gateway){.name = "gw-a", .instance_id = INST_A};
  f->gws[1] = (struct config_gateway){.name = "gw-b", .instance_id = INST_B};
  f->certs[0] = (struct config_certificate){.name = "www", .id = CERT_WWW};
  f->certs[1] = (struct config_certificate){.name = "api", .account = 1, .id = CERT_API};
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
  f->items[0] = (struct plan_item){.op = PLAN_ATTACH,
                                   .cert = 0,
                                   .gateway = 0,
                                   .domain = "api.example.com",
                                   .instance_id = INST_A,
                                   .binding = 3,
                                   .has_from = true,
                                   .from_cert = 1}; /* a move api -> www */
  f->items[1] = (struct plan_item){.op = PLAN_ATTACH,
                                   .cert = 0,
                                   .gateway = 1,
                                   .domain = "www.example.com",
                                   .instance_id = INST_B,
                                   .binding = 0};
  f->items[2] = (struct plan_item){.op = PLAN_ATTACH,
                                   .cert = 0,
                                   .gateway = 0,
                                   .domain = "www.example.com",
                                   .instance_id = INST_A,
                                   .binding = 1};
  f->items[3] = (struct plan_item){.op = PLAN_CHANGE,
                                   .cert = 0,
                                   .gateway = 0,
                                   .domain = "shop.example.com",
                                   .instance_id = INST_A,
                                   .verify_client = true,
                                   .binding = 2,
                                   .has_from = true,
                                   .from_cert = 0};
  f->items[4] = (struct plan_item){.op = PLAN_DETACH,
                                   .cert = 1,
                                   .gateway = UINT32_MAX,
                                   .domain = "old.example.com",
                                   .instance_id = INST_GONE,
                                   .verify_client = true,
                                   .binding = SIZE_MAX,
                                   .has_from = true,
                                   .from_cert = 1,
                                   .from_verify_client = true};
  f->plan.items = f->items;
  f->plan.nitems = 5;
  f->plan.nattach = 3;
  f->plan.nmoved = 1;
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

/* Columns padded to the widest of the certificate's lines; a move names
 * the certificate it leaves; moves counted apart. */
static void test_text_groups_by_account_and_certificate(void **state)
{
  struct fixture *f = *state;
  char *text = plan_text(&f->cfg, &f->plan, false);

  assert_string_equal(
      text, "account prod (eu-west-101, project 0123\xe2\x80\xa6"
            "cdef)\n"
            "  certificate www (aaaa\xe2\x80\xa6"
            "4444)\n"
            "    ~ move     api.example.com    on gw-a   api -> www\n"
            "    + attach   www.example.com    on gw-a, gw-b\n"
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
            "Plan: 2 to attach, 1 to move, 1 to change, 1 to detach, 5 "
            "unchanged.\n");
  free(text);
}

/* A move that also turns client verification on says both; moves from
 * two certificates are two lines. */
static void test_text_move_with_flag_and_two_sources(void **state)
{
  struct fixture *f = *state;
  char *text;

  f->items[0].verify_client = true;
  f->items[1] = f->items[0];
  f->items[1].gateway = 1;
  f->items[1].instance_id = INST_B;
  f->items[1].from_cert = 0;
  f->items[1].verify_client = false;
  f->plan.nitems = 2;
  text = plan_text(&f->cfg, &f->plan, false);
  assert_non_null(strstr(text, "    ~ move   api.example.com   on gw-a   api "
                               "-> www, client verification off -> on\n"
                               "    ~ move   api.example.com   on gw-b   www "
                               "-> www\n"));
  free(text);
}

static void test_text_colours_only_the_sign_and_op(void **state)
{
  struct fixture *f = *state;
  char *text = plan_text(&f->cfg, &f->plan, true);

  assert_non_null(
      strstr(text, "    \033[33m~ move\033[0m     api.example.com    on "));
  assert_non_null(
      strstr(text, "    \033[32m+ attach\033[0m   www.example.com    on "));
  assert_non_null(
      strstr(text, "    \033[33m~ change\033[0m   shop.example.com   on "));
  assert_non_null(
      strstr(text, "    \033[31m- detach\033[0m   old.example.com   on "));
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

#define LEFT_SHA                                                               \
  "d6451f0e9a3b7c2d8e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e760ab"
#define LEFT_ID "d6459b0c8a7e4f3d2c1b0a9f8e7d60ab"

static struct plan_left left_object(void)
{
  struct plan_left l = {.object_id = LEFT_ID,
                        .name = "cb_old_4c221453",
                        .certificate = "old",
                        .sha256 = LEFT_SHA};
  return l;
}

/* An object left behind is said after the certificate objects, with its
 * name, id and the certificate it was made for; it is not a change: a plan
 * with nothing else still says "No changes". */
static void test_text_lists_objects_left_behind(void **state)
{
  struct fixture *f = *state;
  struct plan_left l = left_object();
  struct plan only = {.unchanged = 3, .left = &l, .nleft = 1};
  char *text = plan_text(&f->cfg, &only, false);

  assert_string_equal(
      text, "Certificate objects:\n"
            "    ? left   certificate cb_old_4c221453 (d645\xe2\x80\xa6"
            "60ab)   old: no longer in the file, created by certbind, not "
            "deleted\n"
            "No changes: 3 bindings in place.\n");
  free(text);
  f->plan.left = &l;
  f->plan.nleft = 1;
  text = plan_text(&f->cfg, &f->plan, false);
  assert_non_null(strstr(text, "    ? left   certificate cb_old_4c221453 "));
  /* the Plan: line counts the changes only */
  assert_non_null(strstr(text, "Plan: 2 to attach, 1 to move, 1 to change, 1 "
                               "to detach, 5 unchanged.\n"));
  /* the leaf's hash is in the JSON, not in the text */
  assert_null(strstr(text, LEFT_SHA));
  free(text);
  f->plan.left = NULL;
  f->plan.nleft = 0;
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

/* 2026-03-01T12:34:56.789Z */
#define CREATED_MS 1772368496789LL

static yajl_val plan_json_refused(const struct fixture *f, const char *refusal)
{
  struct report_plan_meta meta = {.created_ms = CREATED_MS, .refusal = refusal};
  char *json, err[128];
  size_t len;
  yajl_val root;

  assert_int_equal(report_plan_json(&f->cfg, &f->plan, &meta, &json, &len), 0);
  assert_int_equal(strlen(json), len);
  root = yajl_tree_parse(json, err, sizeof(err));
  free(json);
  assert_non_null(root);
  return root;
}

static yajl_val plan_json(const struct fixture *f)
{
  return plan_json_refused(f, NULL);
}

static void test_json_header_and_summary(void **state)
{
  struct fixture *f = *state;
  yajl_val root = plan_json(f), sum;

  assert_int(root, "version", REPORT_PLAN_VERSION);
  assert_str(root, "certbind_version", CERTBIND_VERSION);
  assert_str(root, "created_at", "2026-03-01T12:34:56Z");
  assert_true(YAJL_IS_NULL(get(root, "refused", yajl_t_any)));
  assert_str(root, "checksum", CHECKSUM);
  assert_str(root, "config", "/etc/certbind/bindings.yaml");
  assert_str(root, "config_sha256", f->cfg.sha256);
  assert_str(root, "mode", "sync");
  sum = get(root, "summary", yajl_t_object);
  assert_int(sum, "attach", 2);
  assert_int(sum, "move", 1);
  assert_int(sum, "change", 1);
  assert_int(sum, "detach", 1);
  assert_int(sum, "unchanged", 5);
  assert_int(sum, "uncertain", 1);
  yajl_tree_free(root);
}

static void test_json_refusal(void **state)
{
  struct fixture *f = *state;
  yajl_val root =
      plan_json_refused(f, "9 detaches exceed policy.max_detach_count 3");

  assert_str(root, "refused", "9 detaches exceed policy.max_detach_count 3");
  yajl_tree_free(root);
}

static void assert_from(yajl_val c, const char *cert, const char *id,
                        bool verify)
{
  yajl_val from = get(c, "from", yajl_t_object);

  assert_str(from, "certificate", cert);
  assert_str(from, "certificate_id", id);
  assert_int_equal(YAJL_IS_TRUE(get(from, "verify_client", yajl_t_any)),
                   verify);
}

static void test_json_lists_every_change(void **state)
{
  struct fixture *f = *state;
  yajl_val root = plan_json(f);
  yajl_val ch = get(root, "changes", yajl_t_array), c;
  const char *from_path[] = {"from", NULL};

  assert_int_equal(YAJL_GET_ARRAY(ch)->len, 5);
  /* a move: its op, and the certificate it leaves */
  c = YAJL_GET_ARRAY(ch)->values[0];
  assert_str(c, "op", "move");
  assert_str(c, "certificate", "www");
  assert_str(c, "domain", "api.example.com");
  assert_from(c, "api", CERT_API, false);
  c = YAJL_GET_ARRAY(ch)->values[1];
  assert_str(c, "op", "attach");
  assert_str(c, "account", "prod");
  assert_str(c, "certificate", "www");
  assert_str(c, "certificate_id", CERT_WWW);
  assert_str(c, "gateway", "gw-b");
  assert_str(c, "instance_id", INST_B);
  assert_str(c, "domain", "www.example.com");
  assert_true(YAJL_IS_FALSE(get(c, "verify_client", yajl_t_any)));
  assert_null(yajl_tree_get(c, from_path, yajl_t_any)); /* nothing before */
  c = YAJL_GET_ARRAY(ch)->values[3];
  assert_str(c, "op", "change");
  assert_str(c, "domain", "shop.example.com");
  assert_true(YAJL_IS_TRUE(get(c, "verify_client", yajl_t_any)));
  assert_from(c, "www", CERT_WWW, false);
  /* a gateway the file no longer names: no name, its instance */
  c = YAJL_GET_ARRAY(ch)->values[4];
  assert_str(c, "op", "detach");
  assert_str(c, "account", "staging");
  assert_str(c, "certificate", "api");
  assert_str(c, "gateway", "");
  assert_str(c, "instance_id", INST_GONE);
  assert_from(c, "api", CERT_API, true);
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

static void test_json_lists_objects_left_behind(void **state)
{
  struct fixture *f = *state;
  struct plan_left l = left_object();
  yajl_val root, arr, o;

  root = plan_json(f);
  assert_int_equal(YAJL_GET_ARRAY(get(root, "left_objects", yajl_t_array))->len,
                   0);
  yajl_tree_free(root);
  f->plan.left = &l;
  f->plan.nleft = 1;
  root = plan_json(f);
  arr = get(root, "left_objects", yajl_t_array);
  assert_int_equal(YAJL_GET_ARRAY(arr)->len, 1);
  o = YAJL_GET_ARRAY(arr)->values[0];
  assert_str(o, "object_id", LEFT_ID);
  assert_str(o, "name", "cb_old_4c221453");
  assert_str(o, "certificate", "old");
  assert_str(o, "sha256", LEFT_SHA);
  /* not a change: the summary is as without it */
  assert_int(get(root, "summary", yajl_t_object), "delete_certificate", 0);
  yajl_tree_free(root);
  f->plan.left = NULL;
  f->plan.nleft = 0;
}

/* How many lines report_log_left wrote for p (a JSON log in memory),
 * the text in *text (malloc'd). */
static size_t log_left(const struct plan *p, uint64_t *logged, char **text)
{
  struct log lg;
  size_t len = 0, lines = 0;
  FILE *out;

  *text = NULL;
  out = open_memstream(text, &len);
  assert_non_null(out);
  log_init(&lg, out);
  lg.format = LOG_FORMAT_JSON;
  report_log_left(&lg, p, logged);
  assert_int_equal(fclose(out), 0);
  for (const char *s = *text; s && *s; s++)
    lines += *s == '\n';
  return lines;
}

/* One certificate.left per call (apply), or (the daemon, which keeps the
 * digest) only when the list changed; nothing for an empty list. */
static void test_log_left_once_per_list(void **state)
{
  struct plan_left l[2] = {left_object(), left_object()};
  struct plan p = {.left = l, .nleft = 1};
  uint64_t logged = 0;
  char *text;

  (void)state;
  snprintf(l[1].object_id, sizeof(l[1].object_id), "%s", "other1234");
  snprintf(l[1].name, sizeof(l[1].name), "%s", "cb_x_12345678");
  assert_int_equal(log_left(&p, NULL, &text), 1);
  assert_non_null(strstr(text, "\"event\":\"certificate.left\""));
  assert_non_null(strstr(text, "\"count\":1"));
  assert_non_null(strstr(text, "cb_old_4c221453"));
  assert_null(strstr(text, LEFT_SHA));
  free(text);
  assert_int_equal(log_left(&p, NULL, &text), 1);
  free(text);
  assert_int_equal(log_left(&p, &logged, &text), 1);
  free(text);
  assert_int_equal(log_left(&p, &logged, &text), 0); /* a resync */
  free(text);
  p.nleft = 2;
  assert_int_equal(log_left(&p, &logged, &text), 1);
  assert_non_null(strstr(text, "cb_old_4c221453, cb_x_12345678"));
  assert_non_null(strstr(text, "\"count\":2"));
  free(text);
  p.nleft = 0;
  assert_int_equal(log_left(&p, &logged, &text), 0);
  free(text);
  p.nleft = 1; /* back after it was gone: said again */
  assert_int_equal(log_left(&p, &logged, &text), 1);
  free(text);
}

static void test_plan_read_round_trip(void **state)
{
  struct fixture *f = *state;
  struct report_plan_meta meta = {.created_ms = CREATED_MS};
  struct report_stored_plan sp;
  char path[64];
  const char *why = "unset";
  char *json;
  size_t len;

  assert_int_equal(report_plan_json(&f->cfg, &f->plan, &meta, &json, &len), 0);
  write_file(path, json);
  free(json);
  assert_int_equal(report_plan_read(path, &sp, &why), 0);
  assert_string_equal(sp.checksum, CHECKSUM);
  assert_string_equal(sp.config_sha256, f->cfg.sha256);
  assert_null(why);
  /* what the plan assumed of each binding it changes, in its order */
  assert_int_equal(sp.nexpect, 5);
  assert_string_equal(sp.expect[0].domain, "api.example.com");
  assert_string_equal(sp.expect[0].instance_id, INST_A);
  assert_string_equal(sp.expect[0].holder_id, CERT_API);
  assert_false(sp.expect[0].verify_client);
  assert_null(sp.expect[1].holder_id); /* an attach: nobody held it */
  assert_string_equal(sp.expect[4].holder_id, CERT_API);
  assert_true(sp.expect[4].verify_client);
  report_stored_plan_free(&sp);
  unlink(path);
}

/* A plan from before previous values were recorded (no created_at):
 * read, with no expectations and no config_sha256 when it lacks one. */
static void test_plan_read_older_plan(void **state)
{
  struct report_stored_plan sp;
  char path[64];
  const char *why = "unset";

  (void)state;
  write_file(path, "{\"version\": 1, \"checksum\": \"" CHECKSUM
                   "\", \"changes\": [{\"op\": \"attach\"}]}");
  assert_int_equal(report_plan_read(path, &sp, &why), 0);
  assert_string_equal(sp.checksum, CHECKSUM);
  assert_string_equal(sp.config_sha256, "");
  assert_int_equal(sp.nexpect, 0);
  report_stored_plan_free(&sp);
  unlink(path);
}

static void expect_refused(const char *bytes, const char *want_why)
{
  struct report_stored_plan sp;
  char path[64];
  const char *why = NULL;

  write_file(path, bytes);
  assert_int_equal(report_plan_read(path, &sp, &why), -EBADMSG);
  assert_non_null(why);
  assert_string_equal(why, want_why);
  assert_string_equal(sp.checksum, "");
  assert_null(sp.expect);
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
  /* a plan with previous values whose change lacks its binding */
  expect_refused("{\"version\": 1, \"checksum\": \"" CHECKSUM
                 "\", \"created_at\": \"2026-03-01T12:34:56Z\", "
                 "\"changes\": [{\"op\": \"attach\"}]}",
                 "a change of the plan has no instance_id, domain or valid "
                 "from");
}

static void test_plan_read_missing_file(void **state)
{
  struct report_stored_plan sp;
  const char *why = NULL;

  (void)state;
  assert_int_equal(report_plan_read("/nonexistent/plan.json", &sp, &why),
                   -ENOENT);
  assert_non_null(why);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_text_groups_by_account_and_certificate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_move_with_flag_and_two_sources,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_colours_only_the_sign_and_op,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_no_changes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_text_caps_the_uncertain_lines, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_text_lists_objects_left_behind,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_lists_objects_left_behind,
                                      setup, teardown),
      cmocka_unit_test(test_log_left_once_per_list),
      cmocka_unit_test_setup_teardown(test_json_header_and_summary, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_refusal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_json_lists_every_change, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_json_lists_every_uncertain_binding,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_plan_read_round_trip, setup,
                                      teardown),
      cmocka_unit_test(test_plan_read_older_plan),
      cmocka_unit_test(test_plan_read_refuses_what_plan_did_not_write),
      cmocka_unit_test(test_plan_read_missing_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
