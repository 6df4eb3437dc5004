/* SPDX-License-Identifier: MIT */
/*
 * plan: the diff between the file and the live state, and sync ownership.
 * The config model is built by hand: plan.c takes a validated model.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ledger.h"
#include "plan.h"

#define GW_A "f0fa1789-3b76-433b-a787-9892951c620e"
#define GW_B "7d39549681c54d968ec2910da9da95cd"
#define CERT_OLD "a27be832f2e9441c8127fe48e3b5ac67"
#define CERT_NEW "b27be832f2e9441c8127fe48e3b5ac67"

struct fixture {
  struct config cfg;
  struct config_account acct;
  struct config_gateway gws[2];
  struct config_certificate certs[2];
  struct config_binding b[8];
  struct live_state live;
  struct ledger ledger;
};

static void add_binding(struct fixture *f, size_t cert, size_t gw,
                        const char *domain, bool verify)
{
  struct config_binding *b = &f->b[f->cfg.nbindings++];
  b->certificate = cert;
  b->gateway = gw;
  b->domain = (char *)domain;
  b->verify_client = verify;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  f->acct.name = "prod";
  f->gws[0] = (struct config_gateway){.name = "edge-a", .instance_id = GW_A};
  f->gws[1] = (struct config_gateway){.name = "edge-b", .instance_id = GW_B};
  f->certs[0] = (struct config_certificate){.name = "old", .id = CERT_OLD};
  f->certs[1] = (struct config_certificate){.name = "new", .id = CERT_NEW};
  f->cfg.accounts = &f->acct;
  f->cfg.naccounts = 1;
  f->cfg.gateways = f->gws;
  f->cfg.ngateways = 2;
  f->cfg.certificates = f->certs;
  f->cfg.ncertificates = 2;
  f->cfg.bindings = f->b;
  f->cfg.policy.mode = CONFIG_MODE_UPSERT;
  strcpy(f->cfg.sha256, "00");
  assert_int_equal(live_state_init(&f->live, 2), 0);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  live_state_free(&f->live);
  ledger_free(&f->ledger);
  free(f);
  return 0;
}

static void live(struct fixture *f, size_t cert, const char *gw,
                 const char *domain, bool verify)
{
  assert_int_equal(live_cert_add(&f->live.certs[cert], domain, gw, verify), 0);
}

static void finish_live(struct fixture *f)
{
  for (size_t c = 0; c < f->live.ncerts; c++)
    live_cert_finish(&f->live.certs[c]);
}

static const struct plan_item *find(const struct plan *p, enum plan_op op,
                                    const char *domain, const char *gw)
{
  for (size_t i = 0; i < p->nitems; i++) {
    const struct plan_item *it = &p->items[i];
    if (it->op == op && !strcmp(it->domain, domain) &&
        !strcmp(it->instance_id, gw))
      return it;
  }
  return NULL;
}

static void test_attach_change_unchanged(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  add_binding(f, 0, 0, "api.example.com", false); /* in place */
  add_binding(f, 0, 1, "api.example.com", false); /* missing */
  add_binding(f, 0, 0, "pay.example.com", true);  /* flag off -> on */
  live(f, 0, GW_A, "API.example.com", false);     /* case-insensitive */
  live(f, 0, GW_A, "api.example.com", false);     /* second inbound port */
  live(f, 0, GW_A, "pay.example.com", false);
  live(f, 0, "ffffffffffffffffffffffffffffffff", "x.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nattach, 1);
  assert_int_equal(p.nchange, 1);
  assert_int_equal(p.ndetach, 0);
  assert_int_equal(p.unchanged, 1);
  assert_non_null(find(&p, PLAN_ATTACH, "api.example.com", GW_B));
  const struct plan_item *c = find(&p, PLAN_CHANGE, "pay.example.com", GW_A);
  assert_non_null(c);
  assert_true(c->verify_client);
  /* the binding on a gateway the file does not name is not counted */
  assert_int_equal(p.live_total, 2);
  plan_free(&p);
}

static void test_upsert_never_detaches(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  live(f, 0, GW_A, "old.example.com", false);
  finish_live(f);
  assert_int_equal(ledger_add(&f->ledger, CERT_OLD, GW_A, "old.example.com", 1),
                   0);
  assert_int_equal(plan_compute(&f->cfg, &f->live, &f->ledger, &p), 0);
  assert_int_equal(p.nitems, 0);
  plan_free(&p);
}

static void test_sync_detaches_only_owned(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  add_binding(f, 0, 0, "keep.example.com", false);
  live(f, 0, GW_A, "keep.example.com", false);
  live(f, 0, GW_A, "owned.example.com", true);    /* ours, unwanted */
  live(f, 0, GW_B, "foreign.example.com", false); /* not ours */
  finish_live(f);
  ledger_add(&f->ledger, CERT_OLD, GW_A, "keep.example.com", 1);
  ledger_add(&f->ledger, CERT_OLD, GW_A, "owned.example.com", 1);
  ledger_add(&f->ledger, CERT_OLD, GW_B, "gone.example.com", 1); /* not live */
  assert_int_equal(plan_compute(&f->cfg, &f->live, &f->ledger, &p), 0);
  assert_int_equal(p.ndetach, 1);
  const struct plan_item *d = find(&p, PLAN_DETACH, "owned.example.com", GW_A);
  assert_non_null(d);
  assert_int_equal(d->binding, SIZE_MAX);
  assert_null(find(&p, PLAN_DETACH, "foreign.example.com", GW_B));
  assert_int_equal(p.nstale_ledger, 1);
  assert_string_equal(ledger_at(&f->ledger, p.stale_ledger[0])->domain,
                      "gone.example.com");
  plan_free(&p);
}

/* A crash-left intent: live → uncertain in both modes, never detached
 * (even in sync mode, unwanted); not live → stale (to be forgotten). */
static void test_intent_is_uncertain_never_detached(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  for (int mode = 0; mode < 2; mode++) {
    f->cfg.policy.mode = mode ? CONFIG_MODE_SYNC : CONFIG_MODE_UPSERT;
    live_state_free(&f->live);
    ledger_free(&f->ledger);
    assert_int_equal(live_state_init(&f->live, 2), 0);
    live(f, 0, GW_A, "maybe.example.com", false); /* unwanted, live */
    finish_live(f);
    ledger_add_intent(&f->ledger, CERT_OLD, GW_A, "maybe.example.com", 1, NULL);
    ledger_add_intent(&f->ledger, CERT_OLD, GW_B, "never.example.com", 1, NULL);
    assert_int_equal(plan_compute(&f->cfg, &f->live, &f->ledger, &p), 0);
    assert_int_equal(p.nitems, 0);
    assert_int_equal(p.nuncertain, 1);
    assert_string_equal(p.uncertain[0].domain, "maybe.example.com");
    assert_int_equal(p.uncertain[0].gateway, 0);
    assert_int_equal(p.uncertain[0].cert, 0);
    assert_int_equal(p.nstale_ledger, 1);
    assert_string_equal(ledger_at(&f->ledger, p.stale_ledger[0])->domain,
                        "never.example.com");
    plan_free(&p);
  }
}

/* A rollout old -> new is moved by the attach alone: the old binding is
 * never detached, even though certbind owns it and the file dropped it. */
static void test_sync_move_is_not_detached(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  add_binding(f, 1, 0, "api.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  finish_live(f);
  ledger_add(&f->ledger, CERT_OLD, GW_A, "api.example.com", 1);
  assert_int_equal(plan_compute(&f->cfg, &f->live, &f->ledger, &p), 0);
  assert_int_equal(p.ndetach, 0);
  assert_int_equal(p.nattach, 1);
  const struct plan_item *a = find(&p, PLAN_ATTACH, "api.example.com", GW_A);
  assert_non_null(a);
  assert_int_equal(a->cert, 1);
  plan_free(&p);
}

static void test_checksum_follows_live_state(void **state)
{
  struct fixture *f = *state;
  struct plan p1, p2, p3;

  add_binding(f, 0, 0, "api.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p1), 0);
  assert_string_equal(p1.checksum, ""); /* made only when asked for */
  assert_int_equal(plan_checksum(&f->cfg, &f->live, &p1), 0);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p2), 0);
  assert_int_equal(plan_checksum(&f->cfg, &f->live, &p2), 0);
  assert_string_equal(p1.checksum, p2.checksum);
  assert_int_equal(strlen(p1.checksum), 64);
  live(f, 1, GW_B, "other.example.com", false);
  live_cert_finish(&f->live.certs[1]);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p3), 0);
  assert_int_equal(plan_checksum(&f->cfg, &f->live, &p3), 0);
  assert_string_not_equal(p1.checksum, p3.checksum);
  plan_free(&p1);
  plan_free(&p2);
  plan_free(&p3);
}

/* An unread certificate gets no plan, and its owned bindings are neither
 * detached nor forgotten. */
static void test_unknown_live_state_is_skipped(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  add_binding(f, 1, 0, "new.example.com", false);
  add_binding(f, 0, 0, "a.example.com", false);
  ledger_add(&f->ledger, CERT_NEW, GW_A, "owned.example.com", 1);
  live_cert_finish(&f->live.certs[0]); /* certs[1] never read */
  assert_int_equal(plan_compute(&f->cfg, &f->live, &f->ledger, &p), 0);
  assert_int_equal(p.unknown_certs, 1);
  assert_int_equal(p.nitems, 1);
  assert_int_equal(p.items[0].cert, 0);
  assert_int_equal(p.ndetach, 0);
  assert_int_equal(p.nstale_ledger, 0);
  plan_free(&p);
}

static void test_items_sorted_and_in_place_lookup(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  add_binding(f, 1, 1, "b.example.com", false);
  add_binding(f, 0, 1, "z.example.com", false);
  add_binding(f, 0, 0, "a.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nitems, 3);
  assert_int_equal(p.items[0].cert, 0);
  assert_string_equal(p.items[0].domain, "a.example.com");
  assert_string_equal(p.items[1].domain, "z.example.com");
  assert_int_equal(p.items[2].cert, 1);
  /* nothing is live yet: no attach shows */
  assert_false(plan_item_shows(&f->live.certs[0], &p.items[0]));
  live(f, 0, GW_A, "a.example.com", true); /* the wrong flag */
  live_cert_finish(&f->live.certs[0]);
  assert_false(plan_item_shows(&f->live.certs[0], &p.items[0]));
  struct plan_item gone = p.items[0];
  gone.op = PLAN_DETACH;
  assert_false(plan_item_shows(&f->live.certs[0], &gone));
  gone.domain = "z.example.com";
  assert_true(plan_item_shows(&f->live.certs[0], &gone));
  plan_free(&p);
}

/* The checksum is SHA-256 over a documented byte stream (a stored plan
 * compares against it across versions): the file's hash, each certificate
 * and its live bindings, then each item in plan order. Items of one
 * certificate with mixed ops are put in (op, domain, gateway) order. */
static void test_checksum_bytes_and_item_order(void **state)
{
  struct fixture *f = *state;
  struct plan p;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char hex[65];
  const char *stream =
      "00"
      "\ncert " CERT_OLD "\n" GW_A " a.example.com 0"
      "\ncert " CERT_NEW "\nplan attach" CERT_OLD GW_A " b.example.com 0"
      "\nplan change" CERT_OLD GW_A " a.example.com 1";

  add_binding(f, 0, 0, "a.example.com", true);
  add_binding(f, 0, 0, "b.example.com", false);
  live(f, 0, GW_A, "a.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(plan_checksum(&f->cfg, &f->live, &p), 0);
  assert_int_equal(p.nitems, 2);
  assert_int_equal(p.items[0].op, PLAN_ATTACH);
  assert_int_equal(p.items[1].op, PLAN_CHANGE);
  assert_int_equal(
      EVP_Digest(stream, strlen(stream), md, &mdlen, EVP_sha256(), NULL), 1);
  for (unsigned int i = 0; i < mdlen; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(p.checksum, hex);
  plan_free(&p);
}

/* An attach of a (gateway, domain) another certificate of the file holds
 * is a move, from that certificate and its flag; a change carries its old
 * flag; a fresh attach has no previous value. */
static void test_move_names_the_old_certificate(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  add_binding(f, 1, 0, "api.example.com", false); /* moves old -> new */
  add_binding(f, 1, 1, "new.example.com", false); /* a fresh attach */
  add_binding(f, 0, 1, "pay.example.com", true);  /* change off -> on */
  live(f, 0, GW_A, "api.example.com", true);
  live(f, 0, GW_B, "pay.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nattach, 2);
  assert_int_equal(p.nmoved, 1);
  const struct plan_item *m = find(&p, PLAN_ATTACH, "api.example.com", GW_A);
  assert_non_null(m);
  assert_true(plan_item_is_move(m));
  assert_int_equal(m->cert, 1);
  assert_int_equal(m->from_cert, 0);
  assert_true(m->from_verify_client);
  const struct plan_item *a = find(&p, PLAN_ATTACH, "new.example.com", GW_B);
  assert_non_null(a);
  assert_false(plan_item_is_move(a));
  assert_false(a->has_from);
  const struct plan_item *c = find(&p, PLAN_CHANGE, "pay.example.com", GW_B);
  assert_non_null(c);
  assert_false(plan_item_is_move(c));
  assert_true(c->has_from);
  assert_int_equal(c->from_cert, 0);
  assert_false(c->from_verify_client);
  plan_free(&p);
}

/* The same moves whichever way they are found: many attaches against few
 * live bindings take the sorted index, few attaches the lookups. */
static void test_move_found_by_index_and_by_lookup(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  /* 3 attaches x 2 read certificates > 1 live binding: the index */
  add_binding(f, 1, 0, "api.example.com", false);
  add_binding(f, 1, 0, "b.example.com", false);
  add_binding(f, 1, 1, "c.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nmoved, 1);
  assert_true(
      plan_item_is_move(find(&p, PLAN_ATTACH, "api.example.com", GW_A)));
  assert_false(plan_item_is_move(find(&p, PLAN_ATTACH, "b.example.com", GW_A)));
  plan_free(&p);

  /* 1 attach x 2 read certificates <= 4 live bindings: the lookups */
  live_state_free(&f->live);
  assert_int_equal(live_state_init(&f->live, 2), 0);
  f->cfg.nbindings = 0;
  add_binding(f, 1, 0, "api.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  live(f, 0, GW_A, "x.example.com", false);
  live(f, 0, GW_B, "y.example.com", false);
  live(f, 1, GW_B, "z.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nmoved, 1);
  assert_int_equal(p.items[0].from_cert, 0);
  plan_free(&p);
}

/* A certificate whose read failed is no source of a move. */
static void test_no_move_from_an_unread_certificate(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  add_binding(f, 1, 0, "api.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  live_cert_finish(&f->live.certs[1]); /* certs[0] never finished */
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nattach, 1);
  assert_int_equal(p.nmoved, 0);
  assert_false(p.items[0].has_from);
  plan_free(&p);
}

/* One function for plan and apply: the count first, then the ratio;
 * upsert never refuses. */
static void test_guards(void **state)
{
  struct fixture *f = *state;
  struct plan p = {.ndetach = 9, .live_total = 10};
  char msg[200];

  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  f->cfg.policy.max_detach_count = 3;
  f->cfg.policy.max_detach_ratio = 0.5;
  assert_int_equal(plan_guards(&f->cfg, &p, msg, sizeof(msg)),
                   PLAN_GUARD_DETACH_COUNT);
  assert_string_equal(msg, "9 detaches exceed policy.max_detach_count 3");
  f->cfg.policy.max_detach_count = 9;
  assert_int_equal(plan_guards(&f->cfg, &p, msg, sizeof(msg)),
                   PLAN_GUARD_DETACH_RATIO);
  assert_string_equal(msg, "9 detaches of 10 live bindings exceed "
                           "policy.max_detach_ratio 0.50");
  f->cfg.policy.max_detach_ratio = 0.9;
  assert_int_equal(plan_guards(&f->cfg, &p, msg, sizeof(msg)), PLAN_GUARD_OK);
  assert_string_equal(msg, "");
  f->cfg.policy.max_detach_count = 0;
  f->cfg.policy.mode = CONFIG_MODE_UPSERT;
  assert_int_equal(plan_guards(&f->cfg, &p, msg, sizeof(msg)), PLAN_GUARD_OK);
}

/* A stale stored plan names the binding that differs: one it changes
 * whose holder or flag moved, or one it did not change (it was in
 * place) that the new plan changes. */
static void test_explain_stale_names_a_binding(void **state)
{
  struct fixture *f = *state;
  struct plan p;
  char msg[200];
  struct plan_expect ex[] = {
      {GW_A, "api.example.com", CERT_OLD, false}, /* the move's old holder */
  };

  add_binding(f, 1, 0, "api.example.com", false);
  add_binding(f, 1, 0, "keep.example.com", false);
  live(f, 0, GW_A, "api.example.com", false);
  live(f, 1, GW_A, "keep.example.com", false);
  finish_live(f);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  /* as the stored plan assumed */
  assert_false(
      plan_explain_stale(&f->cfg, &f->live, &p, ex, 1, msg, sizeof(msg)));
  assert_string_equal(msg, "");
  /* it assumed nothing held it */
  ex[0].holder_id = NULL;
  assert_true(
      plan_explain_stale(&f->cfg, &f->live, &p, ex, 1, msg, sizeof(msg)));
  assert_string_equal(msg, "api.example.com on edge-a now bound to old");
  /* the same holder, another flag */
  ex[0].holder_id = CERT_OLD;
  ex[0].verify_client = true;
  assert_true(
      plan_explain_stale(&f->cfg, &f->live, &p, ex, 1, msg, sizeof(msg)));
  assert_string_equal(msg, "api.example.com on edge-a now bound to old with "
                           "client verification off");
  plan_free(&p);

  /* keep.example.com went away: the new plan attaches it, the stored one
   * did not */
  ex[0].verify_client = false;
  live_cert_clear(&f->live.certs[1]);
  live_cert_finish(&f->live.certs[1]);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_true(
      plan_explain_stale(&f->cfg, &f->live, &p, ex, 1, msg, sizeof(msg)));
  assert_string_equal(
      msg, "keep.example.com on edge-a now bound to no certificate of the "
           "file");
  plan_free(&p);
}

/* ---- certificate rules: names and expiry ------------------------------ */

#define NOW 1800000000 /* the reads' time in these tests */

/* Certificate cert as its Show answered: these names, that end. */
static void shown(struct fixture *f, size_t cert, const char *const *san,
                  size_t nsan, int64_t not_after)
{
  struct live_cert *lc = &f->live.certs[cert];

  lc->show.id = strdup(f->certs[cert].id);
  lc->show.san = calloc(nsan ? nsan : 1, sizeof(*lc->show.san));
  assert_non_null(lc->show.san);
  for (size_t i = 0; i < nsan; i++)
    lc->show.san[lc->show.nsan++] = strdup(san[i]);
  lc->show.not_after = not_after;
  lc->shown = true;
  f->live.now_s = NOW;
}

static void test_uncovered_domain_is_a_plan_error(void **state)
{
  struct fixture *f = *state;
  const char *san[] = {"*.example.com", "example.com"};
  struct plan p;
  const struct plan_refusal *r;
  char msg[200];

  add_binding(f, 0, 0, "api.example.com", false); /* covered */
  add_binding(f, 0, 0, "a.b.example.com", false); /* two labels: not */
  add_binding(f, 0, 1, "x.other.com", false);     /* not */
  add_binding(f, 0, 0, "pay.example.com", true);  /* change, covered */
  add_binding(f, 0, 1, "example.com", false);     /* covered exactly */
  live(f, 0, GW_A, "pay.example.com", false);
  finish_live(f);
  shown(f, 0, san, 2, NOW + 50 * 86400);
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  /* the covered ones are written, the others never */
  assert_int_equal(p.nattach, 2);
  assert_int_equal(p.nchange, 1);
  assert_int_equal(p.nitems, 3);
  assert_null(find(&p, PLAN_ATTACH, "a.b.example.com", GW_A));
  assert_null(find(&p, PLAN_ATTACH, "x.other.com", GW_B));
  assert_int_equal(p.nrefused, 2);
  r = plan_refusal_of(&p, 1);
  assert_non_null(r);
  assert_int_equal(r->why, PLAN_REFUSE_NOT_COVERED);
  assert_int_equal(r->op, PLAN_ATTACH);
  assert_int_equal(r->gateway, 0);
  assert_string_equal(plan_refusal_code(r->why), "certificate-not-covered");
  plan_refusal_describe(&f->cfg, r, msg, sizeof(msg));
  assert_string_equal(msg, "certificate old covers *.example.com, "
                           "example.com, not a.b.example.com");
  r = plan_refusal_of(&p, 2);
  assert_non_null(r);
  assert_int_equal(r->gateway, 1);
  assert_null(plan_refusal_of(&p, 0));
  assert_null(plan_refusal_of(&p, 3));
  /* the plan carries the end it saw */
  assert_int_equal(p.not_after[0], NOW + 50 * 86400);
  assert_int_equal(p.not_after[1], 0); /* not shown: unknown */
  assert_int_equal(p.now_s, NOW);
  plan_free(&p);
}

static void test_expired_certificate_is_never_bound(void **state)
{
  struct fixture *f = *state;
  const char *san[] = {"*.example.com"};
  struct plan p;
  char msg[200];

  add_binding(f, 0, 0, "api.example.com", false); /* missing: refused */
  add_binding(f, 0, 0, "pay.example.com", true);  /* change: refused */
  add_binding(f, 0, 1, "www.example.com", false); /* in place: kept */
  add_binding(f, 1, 1, "new.example.com", false); /* another certificate */
  live(f, 0, GW_A, "pay.example.com", false);
  live(f, 0, GW_B, "www.example.com", false);
  finish_live(f);
  shown(f, 0, san, 1, NOW); /* ends at the reads: expired */
  f->cfg.policy.mode = CONFIG_MODE_SYNC;
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nrefused, 2);
  assert_int_equal(plan_refusal_of(&p, 0)->why, PLAN_REFUSE_EXPIRED);
  assert_int_equal(plan_refusal_of(&p, 1)->op, PLAN_CHANGE);
  /* nothing of it is written, nothing detached; the other one goes on */
  assert_int_equal(p.nitems, 1);
  assert_non_null(find(&p, PLAN_ATTACH, "new.example.com", GW_B));
  assert_int_equal(p.ndetach, 0);
  assert_int_equal(p.unchanged, 1);
  plan_refusal_describe(&f->cfg, plan_refusal_of(&p, 0), msg, sizeof(msg));
  assert_string_equal(msg, "certificate old expired on 2027-01-15: an "
                           "expired certificate is never bound");
  plan_free(&p);

  /* one second before its end it is bound */
  f->live.now_s = NOW - 1;
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nrefused, 0);
  assert_int_equal(p.nattach, 2);
  plan_free(&p);
}

static void test_unknown_names_and_end_refuse_nothing(void **state)
{
  struct fixture *f = *state;
  struct plan p;

  add_binding(f, 0, 0, "x.other.com", false);
  finish_live(f);
  f->live.now_s = NOW; /* read, but no Show answered */
  assert_int_equal(plan_compute(&f->cfg, &f->live, NULL, &p), 0);
  assert_int_equal(p.nrefused, 0);
  assert_int_equal(p.nattach, 1);
  assert_int_equal(p.not_after[0], 0);
  plan_free(&p);
}

static void test_days_left_round_down(void **state)
{
  (void)state;
  assert_int_equal(plan_days_left(NOW + 86400, NOW), 1);
  assert_int_equal(plan_days_left(NOW + 86399, NOW), 0);
  assert_int_equal(plan_days_left(NOW, NOW), 0);
  assert_int_equal(plan_days_left(NOW - 1, NOW), -1);
  assert_int_equal(plan_days_left(NOW + 43 * 86400 + 5, NOW), 43);
}

static void put_object(struct ledger *l, const char *cert, const char *id,
                       char sha_digit, bool created)
{
  struct ledger_cert c = {.created = created};

  memset(c.sha256, sha_digit, 64);
  snprintf(c.object_id, sizeof(c.object_id), "%s", id);
  snprintf(c.name, sizeof(c.name), "cb_%s_%.8s", cert, c.sha256);
  snprintf(c.certificate, sizeof(c.certificate), "%s", cert);
  assert_int_equal(ledger_cert_put(l, &c), 0);
}

/* The objects certbind created for certificates the file no longer names,
 * sorted; those of names still in the file (of either kind) and those it
 * adopted are not listed; the ledger is left as it was. */
static void test_left_objects_are_created_and_unnamed(void **state)
{
  struct fixture *f = *state;
  struct plan_left *left;
  size_t n;

  assert_int_equal(plan_left_objects(&f->cfg, NULL, &left, &n), 0);
  assert_null(left);
  assert_int_equal(n, 0);
  assert_int_equal(plan_left_objects(&f->cfg, &f->ledger, &left, &n), 0);
  assert_int_equal(n, 0);
  put_object(&f->ledger, "old", "id-old-1", 'a', true); /* "old" is named */
  put_object(&f->ledger, "zeta", "id-zeta", 'b', true);
  put_object(&f->ledger, "gone", "id-gone-2", 'c', true);
  put_object(&f->ledger, "gone", "id-gone-1", 'd', true);
  put_object(&f->ledger, "adopted", "id-adopted", 'e', false);
  assert_int_equal(plan_left_objects(&f->cfg, &f->ledger, &left, &n), 0);
  assert_int_equal(n, 3);
  assert_string_equal(left[0].certificate, "gone");
  assert_string_equal(left[0].name, "cb_gone_cccccccc");
  assert_string_equal(left[0].object_id, "id-gone-2");
  assert_int_equal(strspn(left[0].sha256, "c"), 64);
  assert_string_equal(left[1].name, "cb_gone_dddddddd");
  assert_string_equal(left[2].certificate, "zeta");
  assert_int_equal(f->ledger.ncerts, 5);
  assert_int_not_equal(plan_left_digest(left, n), 0);
  assert_int_not_equal(plan_left_digest(left, n), plan_left_digest(left, 2));
  assert_int_equal(plan_left_digest(left, 0), 0);
  free(left);
  /* a file without certificates leaves every created one */
  f->cfg.ncertificates = 0;
  assert_int_equal(plan_left_objects(&f->cfg, &f->ledger, &left, &n), 0);
  assert_int_equal(n, 4);
  free(left);
  f->cfg.ncertificates = 2;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_attach_change_unchanged, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_upsert_never_detaches, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sync_detaches_only_owned, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_intent_is_uncertain_never_detached,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_sync_move_is_not_detached, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_checksum_bytes_and_item_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_checksum_follows_live_state, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unknown_live_state_is_skipped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_items_sorted_and_in_place_lookup,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_move_names_the_old_certificate,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_move_found_by_index_and_by_lookup,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_move_from_an_unread_certificate,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_guards, setup, teardown),
      cmocka_unit_test_setup_teardown(test_explain_stale_names_a_binding, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_uncovered_domain_is_a_plan_error,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_expired_certificate_is_never_bound,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_names_and_end_refuse_nothing,
                                      setup, teardown),
      cmocka_unit_test(test_days_left_round_down),
      cmocka_unit_test_setup_teardown(test_left_objects_are_created_and_unnamed,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
