/* SPDX-License-Identifier: MIT */
/*
 * test_pass: the pass (engine/pass.c) driven against a scripted fake
 * transport (fake_http.c) and an in-memory APIG (world.c), with a fast
 * clock (harness.h): the rules that keep writes safe, asserted on the
 * requests the pass sends, in clock time.
 *
 *  - at most one write in flight per certificate, while writes of
 *    different certificates overlap;
 *  - a batch refused for one binding is split in halves until that binding
 *    stands alone, and the others are applied;
 *  - a write whose answer was lost is re-read before anything is re-sent:
 *    no resend when the read shows it, exactly one when it does not;
 *  - rollout waves wait soak_s of clock time after the last confirmation;
 *  - a stopped pass sends nothing new;
 *  - a converged world gets reads only; a long list is read in pages.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "metrics.h"
#include "show_cache.h"
#include "status.h"

/* certificate cN with the ID harness_cert_id(N) (N < 10) */
#define CERT_YAML(n)                                                           \
  "  c" #n ": {account: acct, id: cert000000000000000000000000000" #n "}\n"

/* ---- helpers --------------------------------------------------------- */

/* cmocka runs the teardown after a failed test too: no temp files left */
static int setup(void **state)
{
  struct harness *h = calloc(1, sizeof(*h));

  assert_non_null(h);
  harness_setup(h);
  *state = h;
  return 0;
}

static int teardown(void **state)
{
  harness_teardown(*state);
  free(*state);
  return 0;
}

static void assert_all_authorized(const struct harness *h)
{
  for (size_t i = 0; i < h->net.ncalls; i++)
    assert_true(h->net.calls[i]->authorized);
}

/* The calls of one certificate, in the order sent (malloc'd). */
static size_t cert_calls(const struct harness *h, const char *cert_id,
                         struct fake_call ***out)
{
  size_t n = 0;

  *out = calloc(h->net.ncalls + 1, sizeof(**out));
  assert_non_null(*out);
  for (size_t i = 0; i < h->net.ncalls; i++) {
    if (strcmp(h->net.calls[i]->cert_id, cert_id) == 0)
      (*out)[n++] = h->net.calls[i];
  }
  return n;
}

static size_t count_op(const struct harness *h, int op)
{
  size_t n = 0;

  for (size_t i = 0; i < h->net.ncalls; i++)
    n += h->net.calls[i]->op == op;
  return n;
}

/* "- {certificate: C, gateways: [G], domains: [P1.example.com, ...]}" */
static char *binding_line(const char *cert, const char *gateways,
                          const char *prefix, unsigned from, unsigned to)
{
  size_t cap = 128 + (size_t)(to - from + 1) * 48;
  char *s = malloc(cap);
  size_t len;

  assert_non_null(s);
  len = (size_t)snprintf(s, cap,
                         "- {certificate: %s, gateways: [%s], "
                         "domains: [",
                         cert, gateways);
  for (unsigned k = from; k <= to; k++)
    len += (size_t)snprintf(s + len, cap - len, "%s%s%u.example.com",
                            k == from ? "" : ", ", prefix, k);
  snprintf(s + len, cap - len, "]}\n");
  return s;
}

static char *join3(const char *a, const char *b, const char *c)
{
  char *s = NULL;

  assert_true(asprintf(&s, "%s%s%s", a, b, c) > 0);
  return s;
}

/* ---- 1. one write in flight per certificate -------------------------- */

/* Four certificates, three one-domain batches each (two gateways per
 * domain), writes that take 2 s: every certificate's writes go one after
 * the other, while the four certificates write at the same time. */
static void test_one_write_in_flight_per_certificate(void **state)
{
  struct harness *h = *state;
  char *b[4], *yaml;
  struct fake_call **w = NULL;
  size_t nw, max_overlap = 0;

  for (unsigned c = 0; c < 4; c++) {
    char cert[8], prefix[8];
    snprintf(cert, sizeof(cert), "c%u", c + 1);
    snprintf(prefix, sizeof(prefix), "c%ud", c + 1);
    b[c] = binding_line(cert, "g1, g2", prefix, 1, 3);
  }
  assert_true(
      asprintf(
          &yaml,
          "certificates:\n" CERT_YAML(1) CERT_YAML(2) CERT_YAML(3)
              CERT_YAML(4) "bindings:\n%s%s%s%s"
                           "policy: {mode: upsert, batch_size: 1, "
                           "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n",
          b[0], b[1], b[2], b[3]) > 0);
  h->world.write_latency_ms = 2000;
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 4 * 3 * 2);
  nw = fake_net_writes(&h->net, NULL, &w);
  assert_int_equal(nw, 4 * 3);
  for (size_t k = 0; k < nw; k++) {
    assert_int_equal(w[k]->op, APIG_OP_ATTACH);
    assert_int_equal(w[k]->ndomains, 1);
    /* the rule: none of its certificate's writes was in flight */
    assert_int_equal(w[k]->cert_writes_in_flight, 0);
    if (w[k]->writes_in_flight > max_overlap)
      max_overlap = w[k]->writes_in_flight;
  }
  /* and the others' were: all four certificates wrote at once */
  assert_int_equal(max_overlap, 3);
  for (unsigned c = 1; c <= 4; c++) {
    struct fake_call **cw = NULL;
    assert_int_equal(fake_net_writes(&h->net, harness_cert_id(c), &cw), 3);
    free(cw);
    assert_int_equal(world_count(&h->world, harness_cert_id(c)), 6);
  }
  assert_all_authorized(h);
  free(w);
  for (unsigned c = 0; c < 4; c++)
    free(b[c]);
  free(yaml);
}

/* ---- 2. bisect of a failing batch ------------------------------------ */

/* Eight domains in one batch; the certificate does not cover d6 (400
 * APIG.2103, a permanent error of that binding). The batch is split in
 * halves, each half written after the one before it, until d6 is alone:
 * 8 (refused) -> 4 ok, 4 (refused) -> 2 (refused), 2 ok -> 1 ok, 1
 * (refused). d6 is failed for good, sent once alone, and never again. */
static void test_bisect_of_failing_batch(void **state)
{
  static const size_t sizes[] = {8, 4, 4, 2, 2, 1, 1};
  static const long statuses[] = {400, 204, 400, 400, 204, 204, 400};
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "d", 1, 8);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, batch_size: 8, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n");
  struct fake_call **w = NULL;
  size_t nw;

  h->world.refuse_domain = "d6.example.com";
  harness_load(h, yaml);
  harness_run(h, NULL);

  nw = fake_net_writes(&h->net, NULL, &w);
  assert_int_equal(nw, sizeof(sizes) / sizeof(sizes[0]));
  for (size_t k = 0; k < nw; k++) {
    assert_int_equal(w[k]->ndomains, sizes[k]);
    assert_int_equal(w[k]->status, statuses[k]);
    /* refused exactly when it names d6 */
    assert_int_equal(fake_call_has_domain(w[k], "d6.example.com"),
                     statuses[k] == 400);
    assert_int_equal(w[k]->cert_writes_in_flight, 0);
  }
  assert_true(fake_call_has_domain(w[nw - 1], "d6.example.com"));
  /* every other domain was written exactly once with success */
  for (unsigned d = 1; d <= 8; d++) {
    char name[48];
    size_t ok = 0;
    snprintf(name, sizeof(name), "d%u.example.com", d);
    for (size_t k = 0; k < nw; k++)
      ok += w[k]->status == 204 && fake_call_has_domain(w[k], name);
    assert_int_equal(ok, d == 6 ? 0 : 1);
    assert_int_equal(
        world_has(&h->world, harness_cert_id(1), name, HARNESS_GW1), d != 6);
  }
  assert_int_equal(harness_outcome(h), PASS_PARTIAL);
  assert_int_equal(harness_counts(h)->attached, 7);
  assert_int_equal(harness_counts(h)->failed, 1);
  assert_int_equal(harness_counts(h)->pending, 0);
  assert_true(pass_succeeded(h->pass)); /* a permanent, lone failure */
  free(w);
  free(b);
  free(yaml);
}

/* Each binding's attempts (the status) are the write requests that named
 * it, at most max_attempts. */
static void assert_attempts_are_requests(struct harness *h,
                                         struct fake_call **w, size_t nw,
                                         uint32_t max_attempts)
{
  struct status st;

  assert_int_equal(pass_status(h->pass, NULL, &st), 0);
  for (size_t b = 0; b < st.nbindings; b++) {
    uint32_t sent = 0;

    for (size_t k = 0; k < nw; k++)
      sent += fake_call_has_domain(w[k], st.bindings[b].domain);
    assert_int_equal(st.bindings[b].attempts, sent);
    assert_true(sent >= 1 && sent <= max_attempts);
  }
  status_free(&st);
}

/* Sixteen domains in one batch, d6 refused, max_attempts 4: halving would
 * send d6 five times (16, 8, 4, 2, 1). The batch is split in as many parts
 * as isolate d6 within the attempts left: 16 (3 left) in thirds, the
 * third of 6 with d6 (2 left) in thirds, the third of 2 with d6 (1 left)
 * in singles: d6 is sent 4 times, and every binding's attempts are the
 * requests that named it. */
static void test_split_within_max_attempts(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "d", 1, 16);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, batch_size: 16, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n"
                     "retry: {max_attempts: 4, base_delay_ms: 10}\n");
  struct fake_call **w = NULL;
  size_t nw, d6 = 0;

  h->world.refuse_domain = "d6.example.com";
  harness_load(h, yaml);
  harness_run(h, NULL);

  nw = fake_net_writes(&h->net, NULL, &w);
  assert_int_equal(w[0]->ndomains, 16);
  for (size_t k = 0; k < nw; k++)
    d6 += fake_call_has_domain(w[k], "d6.example.com");
  assert_int_equal(d6, 4);
  assert_int_equal(w[nw - 1]->ndomains, 1);
  assert_attempts_are_requests(h, w, nw, 4);
  assert_int_equal(harness_counts(h)->attached, 15);
  assert_int_equal(harness_counts(h)->failed, 1);
  assert_true(pass_succeeded(h->pass)); /* d6 alone, for good */
  free(w);
  free(b);
  free(yaml);
}

/* max_attempts 1: a refused batch is not split (that would be a second
 * request for its bindings). Its bindings fail, not for good: the bad
 * domain is not known, so the pass is no success and the daemon retries. */
static void test_no_split_when_attempts_spent(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "d", 1, 4);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, batch_size: 4, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n"
                     "retry: {max_attempts: 1, base_delay_ms: 10}\n");
  struct fake_call **w = NULL;
  size_t nw;

  h->world.refuse_domain = "d2.example.com";
  harness_load(h, yaml);
  harness_run(h, NULL);

  nw = fake_net_writes(&h->net, NULL, &w);
  assert_int_equal(nw, 1);
  assert_attempts_are_requests(h, w, nw, 1);
  assert_int_equal(harness_counts(h)->failed, 4);
  assert_false(pass_succeeded(h->pass));
  free(w);
  free(b);
  free(yaml);
}

/* ---- 3. re-read before resend of an unknown outcome ------------------ */

enum lost_answer {
  LOST_RESET, /* the connection reset after the request left */
  LOST_503,   /* a 5xx: APIG may have applied it */
};

struct lost_script {
  struct world *world;
  enum lost_answer how;
  bool apply; /* the lost write was applied */
  size_t writes;
};

/* The first write's answer is lost (applied or not); the world answers
 * everything else. */
static void lost_first_write(void *arg, struct fake_call *c,
                             struct fake_answer *a)
{
  struct lost_script *s = arg;

  if ((c->op != APIG_OP_ATTACH && c->op != APIG_OP_DETACH) || s->writes++ > 0) {
    world_script(s->world, c, a);
    return;
  }
  a->latency_ms = 500;
  if (s->apply)
    world_apply(s->world, c, a);
  free(a->body);
  a->body = NULL;
  if (s->how == LOST_RESET) {
    a->reset = true;
  } else {
    a->status = 503;
    a->body = strdup("{\"error_code\":\"APIG.9999\",\"error_msg\":"
                     "\"System error\"}");
  }
}

/* One certificate, two domains, one batch whose answer is lost. Returns
 * the harness after the pass; s says how the answer is lost. */
static void run_lost_answer(struct harness *h, struct lost_script *s)
{
  char *b = binding_line("c1", "g1", "u", 1, 2);
  /* confirm_timeout_s bounds how long an unknown outcome is re-read
   * before the write is sent again (at most 10 s) */
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, confirm_delay_ms: 0, "
                     "confirm_timeout_s: 5}\n");

  s->world = &h->world;
  h->net.script = lost_first_write;
  h->net.script_arg = s;
  harness_load(h, yaml);
  harness_run(h, NULL);
  free(b);
  free(yaml);
}

static void unknown_outcome_reread_shows_it_no_resend(struct harness *h,
                                                      enum lost_answer how)
{
  struct lost_script s = {.how = how, .apply = true};
  struct fake_call **c = NULL;
  size_t n, first = SIZE_MAX;

  run_lost_answer(h, &s);
  n = cert_calls(h, harness_cert_id(1), &c);

  for (size_t k = 0; k < n && first == SIZE_MAX; k++) {
    if (c[k]->op == APIG_OP_ATTACH)
      first = k;
  }
  assert_true(first != SIZE_MAX && first + 1 < n);
  assert_true(c[first]->reset == (s.how == LOST_RESET));
  /* the next request of the certificate is a read, sent after the answer
   * was lost */
  assert_int_equal(c[first + 1]->op, APIG_OP_LIST);
  assert_true(c[first + 1]->sent_ms >= c[first]->done_ms);
  /* it showed the write: nothing is sent again */
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 1);
  assert_int_equal(h->world.writes_applied, 1);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 2);
  assert_int_equal(harness_counts(h)->failed, 0);
  assert_all_authorized(h);
  free(c);
}

static void unknown_outcome_not_applied_one_resend(struct harness *h,
                                                   enum lost_answer how)
{
  struct lost_script s = {.how = how, .apply = false};
  struct fake_call **c = NULL, **w = NULL;
  size_t n, nw, at = 0;

  run_lost_answer(h, &s);
  n = cert_calls(h, harness_cert_id(1), &c);

  nw = fake_net_writes(&h->net, NULL, &w);
  /* exactly one resend, which APIG applied */
  assert_int_equal(nw, 2);
  assert_int_equal(w[1]->status, 204);
  assert_int_equal(h->world.writes_applied, 1);
  assert_string_equal(w[0]->body, w[1]->body); /* the same batch */
  /* between the lost answer and the resend: reads only, at least one */
  while (c[at] != w[0])
    at++;
  assert_true(at + 2 < n);
  assert_int_equal(c[at + 1]->op, APIG_OP_LIST);
  for (size_t k = at + 1; c[k] != w[1]; k++) {
    assert_int_equal(c[k]->op, APIG_OP_LIST);
    assert_true(c[k]->sent_ms >= w[0]->done_ms);
  }
  /* an applied write takes a while to show: the resend waits for the
   * re-read window (here policy.confirm_timeout_s, 5 s) */
  assert_true(w[1]->sent_ms >= w[0]->done_ms + 5000);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 2);
  free(w);
  free(c);
}

/* ---- 4. soak between rollout waves ----------------------------------- */

/* Waves of 2 then the rest, soak_s 30, one domain per write: the first
 * write of wave 2 leaves at least 30 s (clock) after the last
 * confirmation read of wave 1 was answered. */
static void test_soak_between_waves(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "w", 1, 4);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, batch_size: 1, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n"
                     "rollout: {waves: [2, \"100%\"], soak_s: 30}\n");
  struct fake_call **w = NULL;
  uint64_t confirmed = 0;
  size_t nw, confirms = 0;

  harness_load(h, yaml);
  harness_run(h, NULL);

  nw = fake_net_writes(&h->net, NULL, &w);
  assert_int_equal(nw, 4);
  /* the waves are the plan's order: w1, w2, then w3, w4 */
  for (size_t k = 0; k < nw; k++) {
    char name[48];
    snprintf(name, sizeof(name), "w%zu.example.com", k + 1);
    assert_true(fake_call_has_domain(w[k], name));
  }
  /* wave 1's confirmation: reads sent after its last write's answer and
   * answered before wave 2's first write */
  for (size_t i = 0; i < h->net.ncalls; i++) {
    const struct fake_call *c = h->net.calls[i];
    if (c->op != APIG_OP_LIST || c->sent_ms < w[1]->done_ms ||
        c->index > w[2]->index)
      continue;
    assert_true(c->completed);
    confirms++;
    if (c->done_ms > confirmed)
      confirmed = c->done_ms;
  }
  assert_true(confirms >= 1);
  assert_true(w[2]->sent_ms >= confirmed + 30000);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 4);
  free(w);
  free(b);
  free(yaml);
}

/* ---- 5. a stopped pass sends nothing new ----------------------------- */

struct stop_at {
  size_t seen;          /* answers the hook counted */
  size_t calls_at_stop; /* SIZE_MAX: not stopped yet */
};

/* Run the pass with hook, which stops it (harness_stop) and records
 * calls_at_stop: it was stopped, and sent nothing after. */
static void run_until_stopped(struct harness *h, const char *yaml,
                              void (*hook)(struct harness *h,
                                           struct fake_call *c),
                              struct stop_at *s)
{
  *s = (struct stop_at){.calls_at_stop = SIZE_MAX};
  h->user = s;
  h->before_answer = hook;
  harness_load(h, yaml);
  harness_run(h, NULL);
  assert_true(s->calls_at_stop != SIZE_MAX);
  assert_int_equal(h->net.ncalls, s->calls_at_stop);
}

/* SIGTERM arrives while the second write is in flight. */
static void stop_during_second_write(struct harness *h, struct fake_call *c)
{
  struct stop_at *s = h->user;

  if (c->op != APIG_OP_ATTACH || ++s->seen != 2)
    return;
  harness_stop(h);
  s->calls_at_stop = h->net.ncalls;
}

static void test_stop_sends_nothing_new(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "s", 1, 6);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, batch_size: 1, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n");
  struct stop_at s;
  const struct pass_counts *k;

  run_until_stopped(h, yaml, stop_during_second_write, &s);
  /* the write in flight was answered */
  for (size_t i = 0; i < h->net.ncalls; i++)
    assert_true(h->net.calls[i]->completed);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 2);
  assert_int_equal(world_count(&h->world, harness_cert_id(1)), 2);
  assert_int_equal(harness_outcome(h), PASS_INTERRUPTED);
  k = harness_counts(h);
  assert_int_equal(k->failed, 0);
  assert_int_equal(k->attached + k->pending, 6);
  assert_true(k->pending >= 4); /* the four never sent */
  free(b);
  free(yaml);
}

/* ---- 6. reads only when nothing differs ------------------------------ */

static void test_converged_world_gets_reads_only(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1, g2", "r", 1, 5);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert}\n");

  for (unsigned d = 1; d <= 5; d++) {
    char name[48];
    snprintf(name, sizeof(name), "r%u.example.com", d);
    assert_int_equal(
        world_bind(&h->world, harness_cert_id(1), name, HARNESS_GW1, false), 0);
    assert_int_equal(
        world_bind(&h->world, harness_cert_id(1), name, HARNESS_GW2, false), 0);
  }
  harness_load(h, yaml);
  harness_run(h, NULL);

  /* one list and the certificate's one Show */
  assert_int_equal(h->net.ncalls, 2);
  assert_int_equal(count_op(h, APIG_OP_LIST), 1);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  for (size_t i = 0; i < h->net.ncalls; i++)
    assert_int_equal(h->net.calls[i]->offset, 0);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->unchanged, 10);
  assert_int_equal(harness_counts(h)->writes, 0);
  /* the pass bounded the answers' bodies held at once (http.h) */
  assert_true(h->net.max_buffered > 0);
  assert_all_authorized(h);
  free(b);
  free(yaml);
}

/* ---- 7. a long list is read in pages, at once ------------------------ */

/* 1,100 bindings live, the file wants them and one more: the first page
 * says total 1,100, so pages 500 and 1,000 are asked together, then the
 * one missing binding is attached. */
static void test_paged_read_then_one_write(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "p", 1, 1101);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, confirm_delay_ms: 0, "
                     "confirm_timeout_s: 3600}\n");
  struct fake_call **w = NULL;
  bool seen[3] = {false, false, false};
  const struct fake_call *lists[3] = {NULL, NULL, NULL};

  for (unsigned d = 1; d <= 1100; d++) {
    char name[48];
    snprintf(name, sizeof(name), "p%u.example.com", d);
    assert_int_equal(
        world_bind(&h->world, harness_cert_id(1), name, HARNESS_GW1, false), 0);
  }
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(fake_net_writes(&h->net, NULL, &w), 1);
  assert_int_equal(w[0]->ndomains, 1);
  assert_true(fake_call_has_domain(w[0], "p1101.example.com"));
  /* before the write: the three pages, each once; 500 and 1,000 sent
   * together, after the first page's answer */
  for (size_t i = 0; i < w[0]->index; i++) {
    const struct fake_call *c = h->net.calls[i];
    if (c->op == APIG_OP_CERT_SHOW)
      continue; /* the certificate's Show goes alongside */
    assert_int_equal(c->op, APIG_OP_LIST);
    assert_true(c->offset % 500 == 0 && c->offset <= 1000);
    assert_false(seen[c->offset / 500]);
    lists[c->offset / 500] = c;
    seen[c->offset / 500] = true;
  }
  assert_true(seen[0] && seen[1] && seen[2]);
  assert_int_equal(w[0]->index, 4); /* three pages and the Show */
  assert_true(lists[1]->sent_ms >= lists[0]->done_ms);
  assert_true(lists[2]->sent_ms <= lists[1]->done_ms);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 1);
  assert_int_equal(harness_counts(h)->unchanged, 1100);
  free(w);
  free(b);
  free(yaml);
}

/* ---- confirmation reads at the learnt write-to-visible delay ---------- */

/* An APIG that shows a write only delay_ms after it answered it (from the
 * moment the answer reached the pass): reads see the world `seen`, writes
 * reach it that long after they were answered. */
struct late_world {
  struct world seen;
  uint64_t delay_ms;
  struct fake_call *pending[64];
  size_t npending;
};

static void late_settle(struct late_world *v, uint64_t now)
{
  size_t keep = 0;

  for (size_t i = 0; i < v->npending; i++) {
    struct fake_call *w = v->pending[i];
    if (w->completed && w->done_ms + v->delay_ms <= now) {
      struct fake_answer a = {0};
      world_apply(&v->seen, w, &a);
      free(a.body);
    } else {
      v->pending[keep++] = w;
    }
  }
  v->npending = keep;
}

static void late_script(void *arg, struct fake_call *c, struct fake_answer *a)
{
  struct late_world *v = arg;

  late_settle(v, c->sent_ms);
  if (c->authorized && (c->op == APIG_OP_ATTACH || c->op == APIG_OP_DETACH)) {
    assert_true(v->npending < 64);
    v->pending[v->npending++] = c;
    a->status = 204;
    a->latency_ms = 1;
    snprintf(a->request_id, sizeof(a->request_id), "req-%zu", c->index);
    return;
  }
  world_script(&v->seen, c, a);
}

/* Nine certificates, one binding each to write, confirmation reads of
 * calls [from, to): how many, and whether those before the first one that
 * showed its writes went one at a time (each after the last one's answer). */
static size_t confirm_reads(const struct harness *h, size_t from, size_t to,
                            bool *one_at_a_time)
{
  const struct fake_call *last = NULL;
  size_t n = 0, writes = 0;
  bool shown = false;

  *one_at_a_time = true;
  for (size_t i = from; i < to; i++) {
    const struct fake_call *c = h->net.calls[i];
    if (c->op == APIG_OP_ATTACH)
      writes++;
    if (c->op != APIG_OP_LIST || writes == 0)
      continue; /* the first reads */
    n++;
    if (!shown && last && c->sent_ms < last->done_ms)
      *one_at_a_time = false;
    last = c;
    /* the body's total: a certificate's one binding shows */
    shown |= c->status == 200 && c->done_ms >= c->sent_ms;
  }
  return n;
}

#define LATE_CERTS                                                             \
  CERT_YAML(1)                                                                 \
  CERT_YAML(2)                                                                 \
  CERT_YAML(3)                                                                 \
  CERT_YAML(4) CERT_YAML(5) CERT_YAML(6) CERT_YAML(7) CERT_YAML(8) CERT_YAML(9)
#define LATE_BINDING(n)                                                        \
  "- {certificate: c" #n ", gateways: [g1], domains: [d" #n ".example.com]}\n"

/* A delay of 20 s and confirm_delay_ms 8 s: before, every certificate read
 * at 8, 24 and 56 s (27 reads). Now one certificate at a time reads the
 * delay out (8, 12, 18, 27 s) while the others wait, then a few probes
 * narrow it: far fewer reads. The daemon's next pass starts from what this
 * one learnt. (Counts are asserted loosely: at 1,000 clock ms per real ms,
 * a busy machine moves the times the delay is learnt from.) */
static void test_confirmation_at_learnt_delay(void **state)
{
  struct harness *h = *state;
  static struct late_world v;
  struct visibility_set memory = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .visibility = &memory};
  bool one_at_a_time;
  size_t first, second;
  uint64_t lo;

  memset(&v, 0, sizeof(v));
  world_init(&v.seen);
  v.delay_ms = 20000;
  h->net.script = late_script;
  h->net.script_arg = &v;
  harness_load(
      h, "certificates:\n" LATE_CERTS "bindings:\n" LATE_BINDING(1)
             LATE_BINDING(2) LATE_BINDING(3) LATE_BINDING(4) LATE_BINDING(5)
                 LATE_BINDING(6) LATE_BINDING(7) LATE_BINDING(8) LATE_BINDING(
                     9) "policy: {mode: upsert, confirm_delay_ms: 8000, "
                        "confirm_timeout_s: 3600}\n");
  harness_run(h, &o);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 9);
  first = confirm_reads(h, 0, h->net.ncalls, &one_at_a_time);
  assert_true(one_at_a_time);
  assert_true(first >= 9);
  assert_true(first < 2 * 9);
  assert_int_equal(memory.n, 1);
  assert_true(memory.v[0].lo_ms < 20000);
  /* policy.confirm_delay_ms is the least wait anyway */
  lo = memory.v[0].lo_ms > 8000 ? memory.v[0].lo_ms : 8000;

  /* the daemon's next pass: the same bindings to write again */
  size_t mark = h->net.ncalls;
  world_free(&v.seen);
  world_init(&v.seen);
  v.npending = 0;
  pass_free(h->pass);
  h->pass = NULL;
  h->started = h->done = false;
  harness_run(h, &o);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 9);
  second = confirm_reads(h, mark, h->net.ncalls, &one_at_a_time);
  assert_true(second >= 9);
  /* it started from what the first pass learnt: no confirmation read went
   * before the longest time at which a read had not shown a write (a
   * bound that a slow machine, which only makes reads later, keeps) */
  for (size_t i = mark; i < h->net.ncalls; i++) {
    const struct fake_call *w = h->net.calls[i];
    if (w->op != APIG_OP_ATTACH)
      continue;
    for (size_t k = i + 1; k < h->net.ncalls; k++) {
      const struct fake_call *c = h->net.calls[k];
      if (c->op == APIG_OP_LIST && !strcmp(c->cert_id, w->cert_id))
        assert_true(c->sent_ms >= w->done_ms + lo);
    }
  }
  world_free(&v.seen);
  visibility_set_free(&memory);
}

/* A delay of 0 ms is a delay like any other: with confirm_delay_ms 0 the
 * probe's read can go in the very ms its write was answered and show it
 * (hi 0), as an earlier pass kept it here. "No read has failed to show"
 * (lo 0) is no contradiction with it. (lo 0 >= hi 0 was read as "the
 * delay grew past what showed": the estimate was forgotten at the first
 * answer and read out again by a probe, which in a rollout held every other
 * confirmation for one more round trip.) */
static void test_confirmation_delay_zero_is_kept(void **state)
{
  struct harness *h = *state;
  static struct late_world v;
  struct visibility_set memory = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .visibility = &memory};
  char key[VISIBILITY_KEY_MAX];
  struct visibility_entry zero = {.key = key, .known = true};
  size_t reads = 0;
  bool writes = false;

  assert_int_equal(
      visibility_key(key, sizeof(key), "https://apig.test", HARNESS_PROJECT),
      0);
  assert_int_equal(visibility_put(&memory, &zero), 0);
  memset(&v, 0, sizeof(v));
  world_init(&v.seen);
  h->net.script = late_script;
  h->net.script_arg = &v;
  harness_load(h, "certificates:\n" LATE_CERTS
                  "bindings:\n" LATE_BINDING(1) LATE_BINDING(2) LATE_BINDING(3)
                      LATE_BINDING(4) LATE_BINDING(5) LATE_BINDING(6)
                          LATE_BINDING(7) LATE_BINDING(8) LATE_BINDING(
                              9) "policy: {mode: upsert, confirm_delay_ms: 0, "
                                 "confirm_timeout_s: 3600}\n");
  harness_run(h, &o);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 9);
  for (size_t i = 0; i < h->net.ncalls; i++) {
    writes |= h->net.calls[i]->op == APIG_OP_ATTACH;
    reads += writes && h->net.calls[i]->op == APIG_OP_LIST;
  }
  assert_int_equal(reads, 9); /* one confirmation each */
  /* every read showed its writes, later than 0 ms: nothing to learn */
  assert_int_equal(memory.n, 1);
  assert_true(memory.v[0].known);
  assert_int_equal(memory.v[0].hi_ms, 0);
  assert_int_equal(memory.v[0].lo_ms, 0);
  world_free(&v.seen);
  visibility_set_free(&memory);
}

/* An earlier pass learnt a delay of 19-20 s, AGE_MS ago; the server now
 * shows writes after 5 s. Runs nine certificates' writes and returns the
 * earliest time after its write at which a confirmation read went (the
 * interval after the pass is in *after). At 10 clock ms per real ms a
 * probe (at 10.5 s) reads before 19 s unless the loop stalls 850 ms. */
static uint64_t run_after_learnt_delay(struct harness *h, int64_t age_ms,
                                       struct visibility_entry *after)
{
  static struct late_world v;
  struct visibility_set memory = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .visibility = &memory};
  char key[VISIBILITY_KEY_MAX];
  struct visibility_entry old = {.key = key,
                                 .lo_ms = 19000,
                                 .hi_ms = 20000,
                                 .known = true,
                                 .learnt_ms = h->unix0_ms - age_ms};
  uint64_t earliest = UINT64_MAX;
  size_t reads = 0;

  assert_int_equal(
      visibility_key(key, sizeof(key), "https://apig.test", HARNESS_PROJECT),
      0);
  assert_int_equal(visibility_put(&memory, &old), 0);
  harness_slow_clock(h, 10);
  memset(&v, 0, sizeof(v));
  world_init(&v.seen);
  v.delay_ms = 5000;
  h->net.script = late_script;
  h->net.script_arg = &v;
  harness_load(
      h, "certificates:\n" LATE_CERTS "bindings:\n" LATE_BINDING(1)
             LATE_BINDING(2) LATE_BINDING(3) LATE_BINDING(4) LATE_BINDING(5)
                 LATE_BINDING(6) LATE_BINDING(7) LATE_BINDING(8)
                     LATE_BINDING(9) "policy: {mode: upsert, confirm_delay_ms: "
                                     "1000, confirm_timeout_s: 3600}\n");
  harness_run(h, &o);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 9);
  for (size_t i = 0; i < h->net.ncalls; i++) {
    const struct fake_call *w = h->net.calls[i];
    if (w->op != APIG_OP_ATTACH)
      continue;
    for (size_t k = i + 1; k < h->net.ncalls; k++) {
      const struct fake_call *c = h->net.calls[k];
      if (c->op != APIG_OP_LIST || strcmp(c->cert_id, w->cert_id))
        continue;
      reads++;
      if (c->sent_ms - w->done_ms < earliest)
        earliest = c->sent_ms - w->done_ms;
    }
  }
  /* at most one read that did not show per certificate: the probes */
  assert_true(reads >= 9);
  assert_true(reads <= 2 * 9);
  assert_int_equal(memory.n, 1);
  *after = memory.v[0];
  after->key = NULL;
  world_free(&v.seen);
  visibility_set_free(&memory);
  return earliest;
}

/* An interval learnt two days ago loses its lo: probes read below it, find
 * that writes now show after 5 s, and the account's delay comes down. */
static void test_learnt_delay_rechecked_after_a_day(void **state)
{
  struct harness *h = *state;
  struct visibility_entry after;
  uint64_t earliest = run_after_learnt_delay(h, 48 * 3600 * 1000LL, &after);

  fflush(h->log_out); /* the memory stream's text is current */
  assert_non_null(strstr(h->log_text, "\"event\":\"confirm.recheck\""));
  assert_true(earliest < 19000);
  assert_true(after.known);
  assert_true(after.hi_ms < 20000);
  assert_true(after.hi_ms >= 5000);
  assert_true(after.lo_ms < 5000);
  assert_true(after.learnt_ms >= h->unix0_ms);
}

/* Learnt an hour ago: trusted as it is, no read goes before its lo (a
 * shrunk delay costs time, not reads, until the day is over). */
static void test_learnt_delay_trusted_within_a_day(void **state)
{
  struct harness *h = *state;
  struct visibility_entry after;
  uint64_t earliest = run_after_learnt_delay(h, 3600 * 1000LL, &after);

  fflush(h->log_out);
  assert_null(strstr(h->log_text, "\"event\":\"confirm.recheck\""));
  assert_true(earliest >= 19000);
  assert_int_equal(after.lo_ms, 19000);
  assert_int_equal(after.hi_ms, 20000);
}

/* The daemon's usual pass writes nothing: a day-old interval stays as it
 * is (nothing logged, nothing probed) until a pass has a write to
 * confirm. */
static void test_learnt_delay_kept_by_pass_without_writes(void **state)
{
  struct harness *h = *state;
  struct visibility_set memory = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .visibility = &memory};
  char key[VISIBILITY_KEY_MAX];
  const int64_t learnt = h->unix0_ms - 48 * 3600 * 1000LL;
  struct visibility_entry old = {.key = key,
                                 .lo_ms = 19000,
                                 .hi_ms = 20000,
                                 .known = true,
                                 .learnt_ms = learnt};

  assert_int_equal(
      visibility_key(key, sizeof(key), "https://apig.test", HARNESS_PROJECT),
      0);
  assert_int_equal(visibility_put(&memory, &old), 0);
  assert_int_equal(world_bind(&h->world, harness_cert_id(1), "d1.example.com",
                              HARNESS_GW1, false),
                   0);
  harness_load(h, "certificates:\n" CERT_YAML(1) "bindings:\n" LATE_BINDING(
                      1) "policy: {mode: upsert}\n");
  harness_run(h, &o);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->writes, 0);
  fflush(h->log_out);
  assert_null(strstr(h->log_text, "\"event\":\"confirm.recheck\""));
  assert_int_equal(memory.n, 1);
  assert_int_equal(memory.v[0].lo_ms, 19000);
  assert_int_equal(memory.v[0].hi_ms, 20000);
  assert_int_equal(memory.v[0].learnt_ms, learnt);
  visibility_set_free(&memory);
}

static void test_lost_reset_applied_reread_no_resend(void **state)
{
  unknown_outcome_reread_shows_it_no_resend(*state, LOST_RESET);
}

static void test_lost_503_applied_reread_no_resend(void **state)
{
  unknown_outcome_reread_shows_it_no_resend(*state, LOST_503);
}

static void test_lost_reset_not_applied_one_resend(void **state)
{
  unknown_outcome_not_applied_one_resend(*state, LOST_RESET);
}

static void test_lost_503_not_applied_one_resend(void **state)
{
  unknown_outcome_not_applied_one_resend(*state, LOST_503);
}

/* ---- 8. the Show of id certificates: names and expiry ----------------- */

/* The status the pass gives binding domain (on g1), failed or not. */
static const struct status_binding *status_of(const struct status *st,
                                              const char *domain)
{
  for (size_t i = 0; i < st->nbindings; i++) {
    if (strcmp(st->bindings[i].domain, domain) == 0)
      return &st->bindings[i];
  }
  return NULL;
}

/* c1 covers *.example.com for 40 days; c2 has expired. One Show each,
 * alongside the lists; x.other.com and c2's attach are never sent, and
 * fail in the status with their reason; c2's binding in place stays. */
static void test_show_names_and_expiry_refuse_writes(void **state)
{
  struct harness *h = *state;
  const char *san[] = {"*.example.com"};
  int64_t now = h->unix0_ms / 1000;
  char *yaml = join3("certificates:\n" CERT_YAML(1) CERT_YAML(2),
                     "bindings:\n"
                     "  - {certificate: c1, gateways: [g1], domains: "
                     "[a.example.com, x.other.com]}\n"
                     "  - {certificate: c2, gateways: [g1], domains: "
                     "[old.example.com, new.example.com]}\n",
                     "policy: {mode: upsert, confirm_delay_ms: 0, "
                     "confirm_timeout_s: 3600}\n");
  struct fake_call **w = NULL;
  struct status st;
  const struct status_binding *b;

  assert_int_equal(
      world_cert_show(&h->world, harness_cert_id(1), san, 1, now + 40 * 86400),
      0);
  assert_int_equal(
      world_cert_show(&h->world, harness_cert_id(2), san, 1, now - 86400), 0);
  assert_int_equal(world_bind(&h->world, harness_cert_id(2), "old.example.com",
                              HARNESS_GW1, false),
                   0);
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 2);
  assert_int_equal(fake_net_writes(&h->net, NULL, &w), 1);
  assert_int_equal(w[0]->ndomains, 1);
  assert_true(fake_call_has_domain(w[0], "a.example.com"));
  /* the Shows went before the plan: before the first write */
  for (size_t i = w[0]->index; i < h->net.ncalls; i++)
    assert_int_not_equal(h->net.calls[i]->op, APIG_OP_CERT_SHOW);
  assert_int_equal(harness_outcome(h), PASS_PARTIAL);
  assert_int_equal(harness_counts(h)->failed, 2);
  assert_int_equal(harness_counts(h)->attached, 1);
  assert_int_equal(harness_counts(h)->unchanged, 1);
  assert_true(
      world_has(&h->world, harness_cert_id(2), "old.example.com", HARNESS_GW1));
  assert_int_equal(pass_cert_not_after(h->pass, 0), now + 40 * 86400);
  assert_non_null(pass_cert_shown(h->pass, 0));
  assert_string_equal(pass_cert_shown(h->pass, 0)->serial_number, "13010");
  /* what the pass uses of a Show stays; the strings it does not use
   * (10,000 certificates: 2.5 MB) are dropped when it is parsed */
  assert_string_equal(pass_cert_shown(h->pass, 0)->id, harness_cert_id(1));
  assert_int_equal(pass_cert_shown(h->pass, 0)->nsan, 1);
  assert_int_equal(pass_cert_shown(h->pass, 0)->not_after, now + 40 * 86400);
  assert_null(pass_cert_shown(h->pass, 0)->name);
  assert_null(pass_cert_shown(h->pass, 0)->common_name);
  assert_null(pass_cert_shown(h->pass, 0)->type);
  assert_true(pass_succeeded(h->pass)); /* failures of single bindings */

  assert_int_equal(pass_status(h->pass, NULL, &st), 0);
  b = status_of(&st, "x.other.com");
  assert_non_null(b);
  assert_int_equal(b->state, STATUS_FAILED);
  assert_string_equal(b->error_code, "certificate-not-covered");
  assert_string_equal(b->error_msg,
                      "certificate c1 covers *.example.com, not x.other.com");
  b = status_of(&st, "new.example.com");
  assert_int_equal(b->state, STATUS_FAILED);
  assert_string_equal(b->error_code, "certificate-expired");
  assert_int_equal(status_of(&st, "old.example.com")->state, STATUS_CONVERGED);
  assert_int_equal(st.ncerts, 2);
  assert_string_equal(st.certs[0].certificate, "c1");
  assert_int_equal(st.certs[0].not_after, now + 40 * 86400);
  assert_int_equal(st.certs[1].not_after, now - 86400);
  status_free(&st);
  fflush(h->log_out); /* the memory stream's text is current */
  assert_non_null(strstr(h->log_text, "\"event\":\"certificate.expired\""));
  free(w);
  free(yaml);
}

/* The Shows fail (500): retried within max_attempts, then the names and
 * end are unknown: nothing refused, the pass converges, the end is 0. */
static void test_show_failure_leaves_names_unknown(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "s", 1, 2);
  char *yaml = join3("certificates:\n" CERT_YAML(1) "bindings:\n", b,
                     "policy: {mode: upsert, confirm_delay_ms: 0, "
                     "confirm_timeout_s: 3600}\n"
                     "retry: {max_attempts: 3, base_delay_ms: 10, "
                     "max_delay_ms: 100}\n");
  struct metrics m = {0};

  h->world.show_fails = true;
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 3);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 2);
  assert_null(pass_cert_shown(h->pass, 0));
  assert_int_equal(pass_cert_not_after(h->pass, 0), 0);
  assert_int_equal(pass_certificate_metrics(h->pass, &m), 0);
  assert_int_equal(m.ncerts, 1);
  assert_string_equal(m.certs[0].certificate, "c1");
  assert_string_equal(m.certs[0].id, harness_cert_id(1));
  assert_int_equal(m.certs[0].not_after, 0);
  metrics_free(&m);
  fflush(h->log_out);
  assert_non_null(strstr(h->log_text, "\"event\":\"certificate.show_failed\""));
  free(b);
  free(yaml);
}

/* Within policy.expiry_warning_days: one certificate.expiring per pass,
 * with the days left and not_after; outside it, none. */
static void test_expiring_logged_once(void **state)
{
  struct harness *h = *state;
  const char *san[] = {"*.example.com"};
  int64_t now = h->unix0_ms / 1000;
  char *yaml = join3("certificates:\n" CERT_YAML(1) CERT_YAML(2),
                     "bindings:\n"
                     "  - {certificate: c1, gateways: [g1], domains: "
                     "[a.example.com]}\n"
                     "  - {certificate: c2, gateways: [g1], domains: "
                     "[b.example.com]}\n",
                     "policy: {mode: upsert, expiry_warning_days: 10, "
                     "confirm_delay_ms: 0, confirm_timeout_s: 3600}\n");
  char want[160];
  const char *at;

  assert_int_equal(world_cert_show(&h->world, harness_cert_id(1), san, 1,
                                   now + 5 * 86400 + 3600),
                   0);
  assert_int_equal(world_cert_show(&h->world, harness_cert_id(2), san, 1,
                                   now + 11 * 86400 + 3600),
                   0);
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  fflush(h->log_out);
  at = strstr(h->log_text, "\"event\":\"certificate.expiring\"");
  assert_non_null(at);
  assert_null(strstr(at + 1, "\"event\":\"certificate.expiring\""));
  snprintf(want, sizeof(want),
           "\"certificate\":\"c1\",\"not_after\":%lld,\"days_left\":5",
           (long long)(now + 5 * 86400 + 3600));
  assert_non_null(strstr(at, want));
  free(yaml);
}

/* ---- 12. many certificates: jobs made as they are sent ---------------- */

/* N certificates c1..cN of the harness's account (max_in_flight 32), each
 * wanting f<i>.example.com on g1; malloc'd. */
#define MANY 600
static char *many_certs_yaml(unsigned n, const char *policy)
{
  size_t cap = 256 + (size_t)n * 160;
  char *s = malloc(cap);
  size_t len = 0;

  assert_non_null(s);
  len += (size_t)snprintf(s + len, cap - len, "certificates:\n");
  for (unsigned i = 1; i <= n; i++)
    len += (size_t)snprintf(s + len, cap - len,
                            "  c%u: {account: acct, id: cert%028u}\n", i, i);
  len += (size_t)snprintf(s + len, cap - len, "bindings:\n");
  for (unsigned i = 1; i <= n; i++)
    len += (size_t)snprintf(s + len, cap - len,
                            "  - {certificate: c%u, gateways: [g1], "
                            "domains: [f%u.example.com]}\n",
                            i, i);
  snprintf(s + len, cap - len, "%s", policy);
  return s;
}

static const char *many_cert_id(unsigned i, char buf[33])
{
  snprintf(buf, 33, "cert%028u", i);
  return buf;
}

/* The status of certificate i's binding (many_certs_yaml). */
static const struct status_binding *many_binding(const struct status *st,
                                                 unsigned i)
{
  char domain[32];

  snprintf(domain, sizeof(domain), "f%u.example.com", i);
  for (size_t b = 0; b < st->nbindings; b++) {
    if (strcmp(st->bindings[b].domain, domain) == 0)
      return &st->bindings[b];
  }
  fail_msg("no binding %s in the status", domain);
  return NULL;
}

/* The first Show of certificate 1 is answered 503 (a transient error):
 * it is retried at once (base_delay_ms 1). */
struct show_503 {
  struct world *world;
  bool done;
};

static void first_show_503(void *arg, struct fake_call *c,
                           struct fake_answer *a)
{
  struct show_503 *s = arg;
  char id[33];

  if (!s->done && c->op == APIG_OP_CERT_SHOW &&
      strcmp(c->cert_id, many_cert_id(1, id)) == 0) {
    s->done = true;
    a->status = 503;
    a->body = strdup("{\"error_code\":\"APIG.9999\",\"error_msg\":"
                     "\"System error\"}");
    return;
  }
  world_script(s->world, c, a);
}

/* 600 certificates: 1,200 starting requests (a first read and a Show
 * each). They are queued as the account sends them, at most 512 at a
 * time, so a retry (certificate 1's Show, answered 503 among the first
 * requests) waits behind at most those 512 and the requests in flight,
 * not behind the starting requests of all 600 certificates (queued all
 * at once, it was sent after request 1,150 or so). Everything converges. */
static void test_many_certificates_start_as_sent(void **state)
{
  struct harness *h = *state;
  char *yaml = many_certs_yaml(MANY, "policy: {mode: upsert, "
                                     "confirm_delay_ms: 0, "
                                     "confirm_timeout_s: 3600}\n"
                                     "retry: {max_attempts: 3, "
                                     "base_delay_ms: 1, max_delay_ms: 2}\n");
  struct show_503 s = {.world = &h->world};
  char id[33];
  size_t shows = 0, retry = SIZE_MAX, seen = 0;

  h->net.script = first_show_503;
  h->net.script_arg = &s;
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, MANY);
  for (size_t i = 0; i < h->net.ncalls; i++) {
    const struct fake_call *c = h->net.calls[i];
    if (c->op != APIG_OP_CERT_SHOW)
      continue;
    shows++;
    if (strcmp(c->cert_id, many_cert_id(1, id)) == 0 && ++seen == 2)
      retry = i;
  }
  assert_true(s.done);
  assert_int_equal(shows, MANY + 1);
  /* sent among the first 34, the 503 is answered before any request
   * sent after those; the retry then waits behind at most 512 queued
   * starting requests and 32 in flight */
  assert_true(retry != SIZE_MAX && retry < 900);
  free(yaml);
}

/* Answers the second first read of the pass (or, with writes, the tenth
 * attach) 403 APIG.1005: the account is blocked. */
struct forbid_at {
  struct world *world;
  bool writes;
  size_t seen;
};

static void forbid_one(void *arg, struct fake_call *c, struct fake_answer *a)
{
  struct forbid_at *f = arg;
  int op = f->writes ? APIG_OP_ATTACH : APIG_OP_LIST;

  if (c->op == op && ++f->seen == (f->writes ? 10 : 2)) {
    a->status = 403;
    a->body = strdup("{\"error_code\":\"APIG.1005\",\"error_msg\":"
                     "\"No permissions to request this method\"}");
    return;
  }
  world_script(f->world, c, a);
}

/* A certificate not started yet when its account is blocked ends as a
 * started one does: its binding failed with the account's error, and
 * nothing more is sent. */
static void run_blocked_many(struct harness *h, bool writes)
{
  char *yaml = many_certs_yaml(MANY, "policy: {mode: upsert, "
                                     "confirm_delay_ms: 0, "
                                     "confirm_timeout_s: 3600}\n");
  struct forbid_at f = {.world = &h->world, .writes = writes};
  struct status st;
  size_t failed = 0;

  h->net.script = forbid_one;
  h->net.script_arg = &f;
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(harness_outcome(h), PASS_PARTIAL);
  /* a blocked account sends nothing more: what was in flight (32 at
   * most) and what replaced the answers before it, nothing near the
   * 1,200 starting requests or 600 writes */
  if (writes)
    assert_true(count_op(h, APIG_OP_ATTACH) <= 10 + 2 * 32);
  else
    assert_true(h->net.ncalls <= 2 + 2 * 32);
  assert_int_equal(pass_status(h->pass, NULL, &st), 0);
  assert_int_equal(st.nbindings, MANY);
  for (size_t b = 0; b < st.nbindings; b++)
    failed += st.bindings[b].state == STATUS_FAILED;
  assert_true(failed >= MANY - (writes ? 9 : 0) - 32);
  for (unsigned i = MANY - 10; i <= MANY; i++) {
    const struct status_binding *b = many_binding(&st, i);
    assert_int_equal(b->state, STATUS_FAILED);
    assert_string_equal(b->error_code, "APIG.1005");
  }
  status_free(&st);
  free(yaml);
}

static void test_blocked_account_fails_certificates_not_started(void **state)
{
  run_blocked_many(*state, false);
}

static void test_blocked_account_fails_writes_not_queued(void **state)
{
  run_blocked_many(*state, true);
}

/* SIGTERM while most certificates are not started: nothing new is sent
 * and the pass ends interrupted, before any plan. */
static void stop_at_fifth_answer(struct harness *h, struct fake_call *c)
{
  struct stop_at *s = h->user;

  (void)c;
  if (++s->seen != 5)
    return;
  harness_stop(h);
  s->calls_at_stop = h->net.ncalls;
}

static void test_stop_with_certificates_not_started(void **state)
{
  struct harness *h = *state;
  char *yaml = many_certs_yaml(MANY, "policy: {mode: upsert}\n");
  struct stop_at s;

  run_until_stopped(h, yaml, stop_at_fifth_answer, &s);
  assert_int_equal(harness_outcome(h), PASS_INTERRUPTED);
  assert_false(pass_result(h->pass)->has_plan);
  assert_int_equal(count_op(h, APIG_OP_ATTACH), 0);
  free(yaml);
}

/* A Show refused with 403 (no permission to show certificates) leaves the
 * names unknown; the account's lists and writes go on. */
static void forbid_shows(void *arg, struct fake_call *c, struct fake_answer *a)
{
  if (c->op == APIG_OP_CERT_SHOW) {
    a->status = 403;
    a->body = strdup("{\"error_code\":\"APIG.1005\",\"error_msg\":"
                     "\"No permissions to request this method\"}");
    return;
  }
  world_script(arg, c, a);
}

static void test_show_forbidden_lists_and_writes_go_on(void **state)
{
  struct harness *h = *state;
  char *b = binding_line("c1", "g1", "s", 1, 2);
  char *yaml =
      join3("certificates:\n" CERT_YAML(1) CERT_YAML(2) "bindings:\n", b,
            "- {certificate: c2, gateways: [g1], domains: "
            "[t.example.com]}\n"
            "policy: {mode: upsert, confirm_delay_ms: 0, "
            "confirm_timeout_s: 3600}\n");

  h->net.script = forbid_shows;
  h->net.script_arg = &h->world;
  harness_load(h, yaml);
  harness_run(h, NULL);

  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 2);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 3);
  assert_null(pass_cert_shown(h->pass, 0));
  free(b);
  free(yaml);
}

/* ---- 13. the daemon's kept Shows (pass_opts.shows) -------------------- */

static size_t count_op_since(const struct harness *h, size_t from, int op)
{
  size_t n = 0;

  for (size_t i = from; i < h->net.ncalls; i++)
    n += h->net.calls[i]->op == op;
  return n;
}

/* The daemon's next pass on the same harness: the Shows sent in it. */
static size_t next_pass_shows(struct harness *h, const struct pass_opts *o)
{
  size_t mark = h->net.ncalls;

  pass_free(h->pass);
  h->pass = NULL;
  h->started = h->done = false;
  harness_run(h, o);
  return count_op_since(h, mark, APIG_OP_CERT_SHOW);
}

#define SHOWS_POLICY                                                           \
  "policy: {mode: upsert, expiry_warning_days: 10, confirm_delay_ms: 0, "      \
  "confirm_timeout_s: 3600}\n"

/* c1 on g1 with a.example.com; its Show: *.example.com, ending in days. */
static void shows_world(struct harness *h, long days)
{
  const char *san[] = {"*.example.com"};
  int64_t now = h->unix0_ms / 1000;

  assert_int_equal(world_cert_show(&h->world, harness_cert_id(1), san, 1,
                                   now + days * 86400 + 3600),
                   0);
  harness_load(h, "certificates:\n" CERT_YAML(
                      1) "bindings:\n"
                         "  - {certificate: c1, gateways: [g1], domains: "
                         "[a.example.com]}\n" SHOWS_POLICY);
}

/* The key of the harness's c1 in a kept-Show cache: its account's
 * endpoint and project, and its id. */
static const char *shows_key(const struct harness *h,
                             char buf[SHOW_CACHE_KEY_MAX])
{
  char want[SHOW_CACHE_KEY_MAX];

  snprintf(want, sizeof(want), "https://apig.test %s %s", HARNESS_PROJECT,
           harness_cert_id(1));
  assert_int_equal(show_cache_key(buf, SHOW_CACHE_KEY_MAX, &h->cfg, 0), 0);
  assert_string_equal(buf, want);
  return buf;
}

/* The daemon's second pass uses the first one's Show (no request), and
 * the pass sees the same names, serial and end as from a Show; without
 * the cache every pass shows. */
static void test_kept_show_saves_the_next_pass_its_show(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};
  struct pass_opts none = {.write = true, .command = "run", .seed = 1};
  const struct apig_cert *c;
  char key[SHOW_CACHE_KEY_MAX];

  shows_world(h, 100);
  harness_run(h, &o);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  assert_int_equal(harness_counts(h)->attached, 1);
  assert_false(pass_cert_shown_cached(h->pass, 0));
  assert_int_equal(shows.n, 1);
  assert_non_null(show_cache_find(&shows, shows_key(h, key)));

  assert_int_equal(next_pass_shows(h, &o), 0);
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->unchanged, 1);
  c = pass_cert_shown(h->pass, 0);
  assert_non_null(c);
  assert_true(pass_cert_shown_cached(h->pass, 0));
  assert_string_equal(c->id, harness_cert_id(1));
  assert_string_equal(c->serial_number, "13010");
  assert_int_equal(c->nsan, 1);
  assert_string_equal(c->san[0], "*.example.com");
  assert_int_equal(pass_cert_not_after(h->pass, 0),
                   h->unix0_ms / 1000 + 100 * 86400 + 3600);
  fflush(h->log_out);
  assert_non_null(strstr(h->log_text, "\"event\":\"certificate.show_cached\""));

  /* no cache: a Show every pass */
  assert_int_equal(next_pass_shows(h, &none), 1);
  assert_int_equal(next_pass_shows(h, &none), 1);
  show_cache_free(&shows);
}

/* A kept Show an hour old is shown again (and the new answer kept). */
static void test_kept_show_older_than_an_hour_is_shown(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};

  shows_world(h, 100);
  harness_run(h, &o);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  h->unix0_ms += SHOW_CACHE_MAX_AGE_MS; /* the clock an hour on */
  assert_int_equal(next_pass_shows(h, &o), 1);
  assert_false(pass_cert_shown_cached(h->pass, 0));
  assert_int_equal(next_pass_shows(h, &o), 0); /* the new one is kept */
  show_cache_free(&shows);
}

/* Within policy.expiry_warning_days of its end a certificate is shown
 * every pass (and warned about every pass). */
static void test_certificate_near_its_end_shown_every_pass(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};
  const char *at;

  shows_world(h, 5);
  harness_run(h, &o);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  assert_int_equal(next_pass_shows(h, &o), 1);
  assert_int_equal(next_pass_shows(h, &o), 1);
  fflush(h->log_out);
  at = strstr(h->log_text, "\"event\":\"certificate.expiring\"");
  assert_non_null(at);
  at = strstr(at + 1, "\"event\":\"certificate.expiring\"");
  assert_non_null(at);
  assert_non_null(strstr(at + 1, "\"event\":\"certificate.expiring\""));
  assert_null(strstr(h->log_text, "\"event\":\"certificate.show_cached\""));
  show_cache_free(&shows);
}

/* A domain added to the file that the kept Show's SANs do not cover: the
 * certificate is shown again, and the refusal comes from that Show. */
static void test_kept_show_not_covering_a_new_domain_is_shown(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};
  const char *san[] = {"*.example.com", "x.other.com"};
  struct status st;
  const struct status_binding *b;

  shows_world(h, 100);
  harness_run(h, &o);
  assert_int_equal(count_op(h, APIG_OP_CERT_SHOW), 1);
  /* the object was updated in place to cover x.other.com, and the file
   * now wants it */
  assert_int_equal(world_cert_show(&h->world, harness_cert_id(1), san, 2,
                                   h->unix0_ms / 1000 + 100 * 86400),
                   0);
  pass_free(h->pass);
  h->pass = NULL;
  h->started = h->done = false;
  config_free(&h->cfg);
  harness_load(h, "certificates:\n" CERT_YAML(
                      1) "bindings:\n"
                         "  - {certificate: c1, gateways: [g1], domains: "
                         "[a.example.com, x.other.com]}\n" SHOWS_POLICY);
  assert_int_equal(next_pass_shows(h, &o), 1);
  assert_false(pass_cert_shown_cached(h->pass, 0));
  assert_int_equal(harness_outcome(h), PASS_CONVERGED);
  assert_int_equal(harness_counts(h)->attached, 1);
  assert_true(
      world_has(&h->world, harness_cert_id(1), "x.other.com", HARNESS_GW1));
  assert_int_equal(pass_status(h->pass, NULL, &st), 0);
  b = status_of(&st, "x.other.com");
  assert_non_null(b);
  assert_null(b->error_code);
  status_free(&st);
  show_cache_free(&shows);
}

/* A Show that fails (500 until its attempts are spent) or is answered 404
 * (the object is gone) leaves no kept Show: the next pass shows again. */
static void test_failed_or_404_show_evicts(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};
  char key[SHOW_CACHE_KEY_MAX];

  shows_world(h, 100);
  harness_run(h, &o);
  assert_non_null(show_cache_find(&shows, shows_key(h, key)));

  h->unix0_ms += SHOW_CACHE_MAX_AGE_MS;
  h->world.show_fails = true;
  assert_true(next_pass_shows(h, &o) >= 1);
  assert_null(pass_cert_shown(h->pass, 0));
  assert_null(show_cache_find(&shows, key));
  h->world.show_fails = false;
  assert_int_equal(next_pass_shows(h, &o), 1);
  assert_non_null(show_cache_find(&shows, key));

  /* 404: the world no longer answers its Show */
  h->unix0_ms += SHOW_CACHE_MAX_AGE_MS;
  for (size_t i = 0; i < h->world.ncerts; i++)
    if (!strcmp(h->world.certs[i].id, harness_cert_id(1)))
      h->world.certs[i].shown = false;
  assert_int_equal(next_pass_shows(h, &o), 1);
  assert_null(pass_cert_shown(h->pass, 0));
  assert_null(show_cache_find(&shows, key));
  assert_int_equal(shows.n, 0);
  show_cache_free(&shows);
}

/* The cache holds only certificates of the file: a sweep after a pass
 * drops the others. */
static void test_show_cache_swept_to_the_file(void **state)
{
  struct harness *h = *state;
  struct show_cache shows = {0};
  struct pass_opts o = {
      .write = true, .command = "run", .seed = 1, .shows = &shows};
  struct apig_cert other = {.id = (char *)"other", .not_after = 1};
  char key[SHOW_CACHE_KEY_MAX];

  shows_world(h, 100);
  assert_int_equal(show_cache_put(&shows, "elsewhere", &other, 0), 0);
  assert_int_equal(show_cache_sweep(&shows), 0); /* touched by the put */
  harness_run(h, &o);
  assert_int_equal(shows.n, 2);
  assert_int_equal(show_cache_sweep(&shows), 1);
  assert_int_equal(shows.n, 1);
  assert_null(show_cache_find(&shows, "elsewhere"));
  assert_int_equal(next_pass_shows(h, &o), 0); /* found: touched */
  assert_int_equal(show_cache_sweep(&shows), 0);
  assert_non_null(show_cache_find(&shows, shows_key(h, key)));
  show_cache_free(&shows);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_one_write_in_flight_per_certificate,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_split_within_max_attempts, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_no_split_when_attempts_spent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_bisect_of_failing_batch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_lost_reset_applied_reread_no_resend,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_503_applied_reread_no_resend,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_reset_not_applied_one_resend,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_lost_503_not_applied_one_resend,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_soak_between_waves, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_sends_nothing_new, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_converged_world_gets_reads_only,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_confirmation_at_learnt_delay, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_confirmation_delay_zero_is_kept,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_learnt_delay_rechecked_after_a_day,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_learnt_delay_trusted_within_a_day,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_learnt_delay_kept_by_pass_without_writes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_paged_read_then_one_write, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_show_names_and_expiry_refuse_writes,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_show_failure_leaves_names_unknown,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_many_certificates_start_as_sent,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_blocked_account_fails_certificates_not_started, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_blocked_account_fails_writes_not_queued, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_with_certificates_not_started,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_show_forbidden_lists_and_writes_go_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiring_logged_once, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          test_kept_show_saves_the_next_pass_its_show, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_kept_show_older_than_an_hour_is_shown, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_certificate_near_its_end_shown_every_pass, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_kept_show_not_covering_a_new_domain_is_shown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_or_404_show_evicts, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_show_cache_swept_to_the_file, setup,
                                      teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
