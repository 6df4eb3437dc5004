/* SPDX-License-Identifier: MIT */
/*
 * test_pass_cert: the lifecycle of a certificate given as files
 * (engine/pass_cert.c), a real pass against the fake transport and the
 * in-memory APIG (world.c), on the fast clock, with real PEM files made by
 * tests/certs/make-leaf-certs.sh:
 *
 *  - no object holds the leaf: one is created (once), recorded as created,
 *    and the bindings go to it; plan and --dry-run create nothing;
 *  - an object someone else made holding the same leaf is adopted on proof
 *    (show: serial, expiry, names), recorded as NOT created; one that only
 *    has the name is not;
 *  - a create whose answer was lost is found by its name, never resent;
 *  - the ledger's record is used without any lookup;
 *  - renewed files: a new object, every binding moved by attach alone,
 *    and the previous object deleted once unbound (retire_after_s 0), or
 *    kept until retire_after_s has passed since it was last bound;
 *  - a delete refused is kept and logged; the bindings do not fail;
 *  - update: in_place PUTs the new content into the same object;
 *  - a full quota fails that certificate with a message naming it;
 *  - objects left behind (their certificate gone from the file) whose
 *    record names an account of the file are shown once: gone (404) they
 *    are not listed and a writing pass forgets their record (plan keeps
 *    it); there (200) or unknown (500) they stay listed; a record without
 *    an account is never looked up; records learn their account.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "ledger.h"
#include "metrics.h"
#include "status.h"

/* Made once for the whole binary by make-leaf-certs.sh. */
static char certs_dir[64];

#define NAMES "m.example.com,*.m.example.com"

struct ctx {
  struct harness h;
  struct ledger ledger;
};

static int group_setup(void **state)
{
  char cmd[512];

  (void)state;
  snprintf(certs_dir, sizeof(certs_dir), "/tmp/cbcerts-XXXXXX");
  if (!mkdtemp(certs_dir))
    return -1;
  snprintf(cmd, sizeof(cmd), "sh %s %s '%s' >/dev/null 2>&1",
           CERTBIND_LEAF_SCRIPT, certs_dir, NAMES);
  return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf %s", certs_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
  struct ctx *c = calloc(1, sizeof(*c));

  assert_non_null(c);
  harness_setup(&c->h);
  c->h.ledger = &c->ledger;
  *state = c;
  return 0;
}

static int teardown(void **state)
{
  struct ctx *c = *state;

  harness_teardown(&c->h);
  ledger_free(&c->ledger);
  free(c);
  return 0;
}

/* ---- helpers --------------------------------------------------------- */

static char *read_text(const char *name)
{
  char path[128];
  FILE *f;
  char *buf = calloc(1, 65536);
  size_t n;

  snprintf(path, sizeof(path), "%s/%s", certs_dir, name);
  f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(buf);
  n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* The file's certificate "web" from pem/key of the certificates made, two
 * domains on g1 and g2, and the policy line given. */
static void load_web(struct harness *h, const char *pem, const char *key,
                     const char *policy)
{
  char *yaml;

  assert_true(asprintf(&yaml,
                       "certificates:\n"
                       "  web: {account: acct, cert_file: %s/%s, key: {file: "
                       "%s/%s}%s}\n"
                       "bindings:\n"
                       "  - certificate: web\n"
                       "    gateways: [g1, g2]\n"
                       "    domains: [d1.m.example.com, d2.m.example.com]\n"
                       "policy: %s\n",
                       certs_dir, pem, certs_dir, key,
                       strstr(policy, "in_place") ? ", update: in_place" : "",
                       strstr(policy, "in_place") ? "{mode: sync}" : policy) >
              0);
  harness_load(h, yaml);
  free(yaml);
}

static size_t count_op(const struct harness *h, int op)
{
  size_t n = 0;

  for (size_t i = 0; i < h->net.ncalls; i++)
    n += h->net.calls[i]->op == op;
  return n;
}

static const struct fake_call *first_op(const struct harness *h, int op)
{
  for (size_t i = 0; i < h->net.ncalls; i++) {
    if (h->net.calls[i]->op == op)
      return h->net.calls[i];
  }
  return NULL;
}

/* Every (domain, gateway) of load_web bound to object id. */
static void assert_all_on(const struct harness *h, const char *id)
{
  static const char *const d[] = {"d1.m.example.com", "d2.m.example.com"};

  for (size_t i = 0; i < 2; i++) {
    assert_true(world_has(&h->world, id, d[i], HARNESS_GW1));
    assert_true(world_has(&h->world, id, d[i], HARNESS_GW2));
  }
}

static void bind_all(struct harness *h, const char *id)
{
  static const char *const d[] = {"d1.m.example.com", "d2.m.example.com"};

  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(world_bind(&h->world, id, d[i], HARNESS_GW1, false), 0);
    assert_int_equal(world_bind(&h->world, id, d[i], HARNESS_GW2, false), 0);
  }
}

/* An object of the world holding pem, recorded in the ledger as the
 * object of leaf sha256 made for "web". */
static const char *record_object(struct ctx *c, const char *pem,
                                 const char *sha256, bool created,
                                 int64_t bound_at)
{
  char *text = read_text(pem);
  const struct world_object *o =
      world_add_object(&c->h.world, NULL, "cb_web_old", text);
  struct ledger_cert rec = {
      .created = created, .bound_at = bound_at, .superseded_at = bound_at};

  free(text);
  assert_non_null(o);
  snprintf(rec.sha256, sizeof(rec.sha256), "%s", sha256);
  snprintf(rec.object_id, sizeof(rec.object_id), "%s", o->id);
  snprintf(rec.name, sizeof(rec.name), "%s", o->name);
  snprintf(rec.certificate, sizeof(rec.certificate), "web");
  assert_int_equal(ledger_cert_put(&c->ledger, &rec), 0);
  return o->id;
}

/* The SHA-256 of rsa.pem's leaf, by loading it as the file once. */
static void leaf_sha(const char *pem, const char *key, char out[65])
{
  struct harness h;

  harness_setup(&h);
  load_web(&h, pem, key, "{mode: sync}");
  snprintf(out, 65, "%s", h.cfg.certificates[0].managed->file.sha256);
  harness_teardown(&h);
}

static void assert_no_key_in_log(const struct harness *h, const char *key)
{
  char *text = read_text(key);
  char *line = strchr(text, '\n'); /* the first base64 line of the key */

  assert_non_null(line);
  line[65] = '\0';
  fflush(h->log_out);
  assert_null(memmem(h->log_text, h->log_len, line + 1, 64));
  assert_null(memmem(h->log_text, h->log_len, "PRIVATE KEY", 11));
  free(text);
}

/* ---- tests ----------------------------------------------------------- */

static void test_upload_then_bind(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  const struct fake_call *create;
  struct ledger_cert *rec;

  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 1);
  create = first_op(h, APIG_OP_CERT_CREATE);
  assert_non_null(strstr(create->body, "\"name\":\"cb_web_"));
  /* looked for one holding the leaf first, by its common name */
  assert_true(first_op(h, APIG_OP_CERT_LIST)->index < create->index);
  assert_non_null(
      strstr(first_op(h, APIG_OP_CERT_LIST)->url, "common_name=m.example.com"));
  assert_int_equal(h->world.nobjs, 1);
  assert_all_on(h, h->world.objs[0].id);
  rec =
      ledger_cert_find(&c->ledger, h->cfg.certificates[0].managed->file.sha256);
  assert_non_null(rec);
  assert_true(rec->created);
  assert_string_equal(rec->object_id, h->world.objs[0].id);
  assert_true(pass_ledger_dirty(h->pass));
  assert_no_key_in_log(h, "rsa.key");
}

static void test_dry_run_uploads_nothing(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  struct pass_opts o = {.write = true, .dry_run = true, .command = "apply"};
  const struct plan *pl;

  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, &o);

  assert_int_equal(harness_outcome(h), PASS_PLANNED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 0);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 0);
  assert_int_equal(h->world.nobjs, 0);
  pl = pass_result(h->pass)->plan;
  assert_int_equal(pl->ncert_ops, 1);
  assert_int_equal(pl->cert_ops[0].op, PLAN_CERT_UPLOAD);
  assert_int_equal(pl->nattach, 4);
  assert_int_equal(c->ledger.ncerts, 0);
}

static void test_adopted_on_proof(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char *pem = read_text("rsa.pem");
  const struct world_object *o =
      world_add_object(&h->world, NULL, "by_hand", pem);
  char id[65];
  struct ledger_cert *rec;

  free(pem);
  assert_non_null(o);
  snprintf(id, sizeof(id), "%s", o->id);
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  assert_all_on(h, id);
  rec = ledger_cert_find_id(&c->ledger, id);
  assert_non_null(rec);
  assert_false(rec->created);
}

static void test_same_name_without_proof_not_adopted(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char *other = read_text("other.pem");
  char sha[65], name[64];
  const struct world_object *o;
  char foreign[65];

  leaf_sha("rsa.chain.pem", "rsa.key", sha);
  snprintf(name, sizeof(name), "cb_web_%.8s", sha);
  /* same common name and names, another leaf: shown, not adopted */
  o = world_add_object(&h->world, NULL, name, other);
  free(other);
  assert_non_null(o);
  snprintf(foreign, sizeof(foreign), "%s", o->id);
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync, retire_after_s: 0}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 1);
  assert_int_equal(count_op(h, APIG_OP_CERT_DELETE), 0);
  assert_non_null(world_find_object(&h->world, foreign));
  assert_null(ledger_cert_find_id(&c->ledger, foreign));
  assert_int_equal(world_count(&h->world, foreign), 0);
}

static void test_lost_create_found_by_name(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  size_t lists = 0;

  h->world.lose_creates = 1;
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 1); /* never resent */
  for (size_t i = first_op(h, APIG_OP_CERT_CREATE)->index; i < h->net.ncalls;
       i++) {
    const struct fake_call *k = h->net.calls[i];
    lists += k->op == APIG_OP_CERT_LIST && strstr(k->url, "name=cb_web_");
  }
  assert_int_equal(lists, 1);
  assert_int_equal(h->world.nobjs, 1);
  assert_all_on(h, h->world.objs[0].id);
  assert_true(ledger_cert_find_id(&c->ledger, h->world.objs[0].id)->created);
}

static void test_ledger_record_used(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char sha[65];
  const char *id;

  leaf_sha("rsa.chain.pem", "rsa.key", sha);
  id = record_object(c, "rsa.pem", sha, true, 0);
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_LIST), 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 0);
  assert_all_on(h, id);
}

/* A renewal: A holds every binding; the files now hold B. */
static void renewal(struct ctx *c, const char *policy, char old_id[65])
{
  char sha_a[65];

  leaf_sha("rsa.chain.pem", "rsa.key", sha_a);
  snprintf(old_id, 65, "%s", record_object(c, "rsa.pem", sha_a, true, 0));
  bind_all(&c->h, old_id);
  load_web(&c->h, "other.pem", "other.key", policy);
  harness_run(&c->h, NULL);
}

static void test_renewal_moves_then_deletes(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char old_id[65];
  const char *new_id;
  const struct fake_call *del;

  renewal(c, "{mode: sync, retire_after_s: 0}", old_id);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 1);
  assert_int_equal(count_op(h, APIG_OP_DETACH), 0); /* never unbound */
  assert_int_equal(pass_result(h->pass)->plan->nmoved, 4);
  assert_null(world_find_object(&h->world, old_id));
  assert_int_equal(h->world.nobjs, 1);
  new_id = h->world.objs[0].id;
  assert_all_on(h, new_id);
  /* deleted after every attach, and after a read of its bindings */
  del = first_op(h, APIG_OP_CERT_DELETE);
  assert_non_null(del);
  for (size_t i = 0; i < h->net.ncalls; i++) {
    if (h->net.calls[i]->op == APIG_OP_ATTACH)
      assert_true(h->net.calls[i]->index < del->index);
  }
  assert_string_equal(h->net.calls[del->index - 1]->cert_id, old_id);
  assert_int_equal(h->net.calls[del->index - 1]->op, APIG_OP_LIST);
  assert_null(ledger_cert_find_id(&c->ledger, old_id));
  assert_true(ledger_cert_find_id(&c->ledger, new_id)->created);
  assert_int_equal(pass_result(h->pass)->plan->ndelete_cert, 1);
  assert_int_equal(pass_result(h->pass)->plan->nupload, 1);
}

static void test_renewal_keeps_old_until_retire_after(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char old_id[65];

  renewal(c, "{mode: sync, retire_after_s: 3600}", old_id);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_DELETE), 0);
  assert_non_null(world_find_object(&h->world, old_id));
  assert_int_equal(world_count(&h->world, old_id), 0);
  /* seen bound by this pass: the wait starts now */
  assert_true(ledger_cert_find_id(&c->ledger, old_id)->bound_at > 0);
  /* its bindings are read, and its Show only once, by the lookup of the
   * renewed leaf (a candidate of the same common name): no per-pass Show
   * of its own, as its end is not the file's */
  {
    size_t shows = 0;

    for (size_t i = 0; i < h->net.ncalls; i++)
      shows += h->net.calls[i]->op == APIG_OP_CERT_SHOW &&
               strcmp(h->net.calls[i]->cert_id, old_id) == 0;
    assert_int_equal(shows, 1);
  }
  /* the previous object was read as a certificate of the pass, but the
   * file has one certificate: status and the metric report that one */
  {
    struct status st;
    struct metrics m = {0};

    assert_int_equal(pass_status(h->pass, NULL, &st), 0);
    assert_int_equal(st.ncerts, 1);
    assert_string_equal(st.certs[0].certificate, "web");
    status_free(&st);
    assert_int_equal(pass_certificate_metrics(h->pass, &m), 0);
    assert_int_equal(m.ncerts, 1);
    assert_string_equal(m.certs[0].certificate, "web");
    metrics_free(&m);
  }
}

static void test_old_unbound_past_retire_after_deleted(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char sha_a[65], sha_b[65];
  const char *a, *b;
  char a_id[65];

  leaf_sha("rsa.chain.pem", "rsa.key", sha_a);
  leaf_sha("other.pem", "other.key", sha_b);
  a = record_object(c, "rsa.pem", sha_a, true, (int64_t)time(NULL) - 7200);
  snprintf(a_id, sizeof(a_id), "%s", a);
  b = record_object(c, "other.pem", sha_b, true, 0);
  bind_all(h, b);
  load_web(h, "other.pem", "other.key", "{mode: sync, retire_after_s: 3600}");
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_DELETE), 1);
  assert_null(world_find_object(&h->world, a_id));
}

static void test_delete_refused_kept(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char old_id[65];

  h->world.refuse_deletes = true;
  renewal(c, "{mode: sync, retire_after_s: 0}", old_id);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->failed, 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_DELETE), 1);
  assert_non_null(world_find_object(&h->world, old_id));
  assert_non_null(ledger_cert_find_id(&c->ledger, old_id));
  fflush(h->log_out);
  assert_non_null(memmem(h->log_text, h->log_len, "certificate.delete_failed",
                         strlen("certificate.delete_failed")));
}

static void test_in_place_update(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char old_id[65], sha_b[65];

  leaf_sha("other.pem", "other.key", sha_b);
  renewal(c, "in_place", old_id);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_CERT_CREATE), 0);
  assert_int_equal(count_op(h, APIG_OP_CERT_UPDATE), 1);
  assert_string_equal(first_op(h, APIG_OP_CERT_UPDATE)->cert_id, old_id);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 0);
  assert_all_on(h, old_id);
  assert_string_equal(ledger_cert_find_id(&c->ledger, old_id)->sha256, sha_b);
}

static void test_quota_full_fails_that_certificate(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char *other = read_text("other.pem");
  const struct apig_error *e;

  assert_non_null(world_add_object(&h->world, NULL, "someone_else", other));
  free(other);
  h->world.cert_quota = 1;
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  harness_run(h, NULL);

  assert_int_not_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 0);
  e = pass_read_error(h->pass, 0);
  assert_non_null(e);
  assert_string_equal(e->code, "APIG.3199");
  assert_non_null(strstr(e->msg, "certificate web"));
  assert_non_null(strstr(e->msg, "quota"));
}

/* ---- objects left behind ---------------------------------------------- */

#define HARNESS_ACCOUNT_KEY "https://apig.test " HARNESS_PROJECT

/* A record of an object certbind created for "old", a certificate the file
 * no longer names, in account key ("": none). */
static void record_left(struct ctx *c, const char *id, const char *key)
{
  struct ledger_cert rec = {.created = true};

  snprintf(rec.sha256, sizeof(rec.sha256), "%064zx",
           strlen(id) + c->ledger.ncerts);
  snprintf(rec.object_id, sizeof(rec.object_id), "%s", id);
  snprintf(rec.name, sizeof(rec.name), "cb_old_%.8s", rec.sha256);
  snprintf(rec.certificate, sizeof(rec.certificate), "old");
  snprintf(rec.account, sizeof(rec.account), "%s", key);
  assert_int_equal(ledger_cert_put(&c->ledger, &rec), 0);
}

static size_t shows_of(const struct harness *h, const char *id)
{
  size_t n = 0;

  for (size_t i = 0; i < h->net.ncalls; i++)
    n += h->net.calls[i]->op == APIG_OP_CERT_SHOW &&
         strcmp(h->net.calls[i]->cert_id, id) == 0;
  return n;
}

static bool listed(const struct harness *h, const char *id)
{
  const struct plan *pl = pass_result(h->pass)->plan;

  for (size_t i = 0; i < pl->nleft; i++) {
    if (strcmp(pl->left[i].object_id, id) == 0)
      return true;
  }
  return false;
}

static bool logged(const struct harness *h, const char *text)
{
  fflush(h->log_out);
  return memmem(h->log_text, h->log_len, text, strlen(text)) != NULL;
}

/* "web" in the file, its object in the ledger without an account (an
 * older ledger); "gone" (account known, not at APIG) and "noacct" (no
 * account, not at APIG either) left behind by "old". */
static const char *left_setup(struct ctx *c)
{
  char sha[65];
  const char *web;

  leaf_sha("rsa.chain.pem", "rsa.key", sha);
  web = record_object(c, "rsa.pem", sha, true, 0);
  record_left(c, "gone0000000000000000000000000000", HARNESS_ACCOUNT_KEY);
  record_left(c, "noacct00000000000000000000000000", "");
  load_web(&c->h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  return web;
}

static void test_left_gone_forgotten(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char web[65];

  snprintf(web, sizeof(web), "%s", left_setup(c));
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(shows_of(h, "gone0000000000000000000000000000"), 1);
  assert_int_equal(shows_of(h, "noacct00000000000000000000000000"), 0);
  assert_false(listed(h, "gone0000000000000000000000000000"));
  assert_true(listed(h, "noacct00000000000000000000000000"));
  assert_int_equal(pass_result(h->pass)->plan->nleft, 1);
  assert_null(
      ledger_cert_find_id(&c->ledger, "gone0000000000000000000000000000"));
  assert_non_null(
      ledger_cert_find_id(&c->ledger, "noacct00000000000000000000000000"));
  assert_true(pass_ledger_dirty(h->pass));
  assert_true(logged(h, "certificate.left_gone"));
  /* the file's certificate's record learnt its account */
  assert_string_equal(ledger_cert_find_id(&c->ledger, web)->account,
                      HARNESS_ACCOUNT_KEY);
}

static void test_left_gone_plan_keeps_record(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  struct pass_opts o = {.write = false, .command = "plan"};
  char web[65];

  snprintf(web, sizeof(web), "%s", left_setup(c));
  harness_run(h, &o);

  assert_int_equal(shows_of(h, "gone0000000000000000000000000000"), 1);
  assert_false(listed(h, "gone0000000000000000000000000000"));
  assert_true(listed(h, "noacct00000000000000000000000000"));
  /* plan never changes the ledger */
  assert_non_null(
      ledger_cert_find_id(&c->ledger, "gone0000000000000000000000000000"));
  assert_string_equal(ledger_cert_find_id(&c->ledger, web)->account, "");
  assert_false(logged(h, "certificate.left_gone"));
}

/* The Show of one object answers an error every time; the world answers
 * the rest. */
struct show_error {
  struct harness *h;
  const char *id;
  long status;
  const char *body;
};

static void show_error(void *arg, struct fake_call *call, struct fake_answer *a)
{
  const struct show_error *e = arg;

  if (call->op == APIG_OP_CERT_SHOW && strcmp(call->cert_id, e->id) == 0) {
    a->status = e->status;
    a->body = strdup(e->body);
    return;
  }
  world_script(&e->h->world, call, a);
}

static void test_left_there_or_unknown_stays(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  char *pem = read_text("other.pem");
  const struct world_object *o =
      world_add_object(&h->world, NULL, "cb_old_x", pem);
  char there[65], sha[65];

  free(pem);
  assert_non_null(o);
  snprintf(there, sizeof(there), "%s", o->id);
  /* web's object known: no lookup of its leaf shows "there" */
  leaf_sha("rsa.chain.pem", "rsa.key", sha);
  (void)record_object(c, "rsa.pem", sha, true, 0);
  record_left(c, there, HARNESS_ACCOUNT_KEY);
  record_left(c, "fail0000000000000000000000000000", HARNESS_ACCOUNT_KEY);
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  static struct show_error e = {
      .id = "fail0000000000000000000000000000",
      .status = 500,
      .body = "{\"error_code\":\"APIG.9999\",\"error_msg\":\"System error\"}"};
  e.h = h;
  h->net.script = show_error;
  h->net.script_arg = &e;
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->failed, 0);
  assert_int_equal(shows_of(h, there), 1);
  assert_true(shows_of(h, "fail0000000000000000000000000000") >
              1); /* retried */
  assert_true(listed(h, there));
  assert_true(listed(h, "fail0000000000000000000000000000"));
  assert_non_null(ledger_cert_find_id(&c->ledger, there));
  assert_non_null(
      ledger_cert_find_id(&c->ledger, "fail0000000000000000000000000000"));
  assert_false(logged(h, "certificate.left_gone"));
}

/* A left object's Show refused (403: no permission on that object) says
 * nothing of whether it is there: listed, record kept, shown once (not
 * retried), and the account is not blocked: the file's certificate is
 * uploaded and bound as without it. */
static void test_left_forbidden_stays_account_goes_on(void **state)
{
  struct ctx *c = *state;
  struct harness *h = &c->h;
  const char *deny = "deny0000000000000000000000000000";

  record_left(c, deny, HARNESS_ACCOUNT_KEY);
  load_web(h, "rsa.chain.pem", "rsa.key", "{mode: sync}");
  static struct show_error e = {
      .id = "deny0000000000000000000000000000",
      .status = 403,
      .body = "{\"error_code\":\"APIG.1115\",\"error_msg\":\"No "
              "permissions to access the certificate\"}"};
  e.h = h;
  h->net.script = show_error;
  h->net.script_arg = &e;
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->failed, 0);
  assert_true(harness_counts(h)->attached > 0);
  assert_int_equal(shows_of(h, deny), 1);
  assert_true(listed(h, deny));
  assert_non_null(ledger_cert_find_id(&c->ledger, deny));
  assert_false(logged(h, "certificate.left_gone"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_upload_then_bind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dry_run_uploads_nothing, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_adopted_on_proof, setup, teardown),
      cmocka_unit_test_setup_teardown(test_same_name_without_proof_not_adopted,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_create_found_by_name, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ledger_record_used, setup, teardown),
      cmocka_unit_test_setup_teardown(test_renewal_moves_then_deletes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_renewal_keeps_old_until_retire_after,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_old_unbound_past_retire_after_deleted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delete_refused_kept, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_in_place_update, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quota_full_fails_that_certificate,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_left_gone_forgotten, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_left_gone_plan_keeps_record, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_left_there_or_unknown_stays, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_left_forbidden_stays_account_goes_on,
                                      setup, teardown),
  };

  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
