/* SPDX-License-Identifier: MIT */
/*
 * harness: one pass of the engine on a real libuv loop, against the fake
 * transport (fake_http.h) answered by an in-memory APIG (world.h), with a
 * fast clock.
 *
 * The clock: clock ms = HARNESS_K x real ms since the harness started, and
 * a timer the pass arms for d clock ms runs ceil(d / HARNESS_K) real ms. A
 * 30 s soak or a 10 s re-read window costs milliseconds. Assertions are in
 * clock time and are lower bounds (or orders), which a slow machine only
 * makes easier to meet: a busy loop makes the clock run further, never
 * less far.
 *
 * The configuration is a real file loaded by the real loader: one account
 * "acct" (token auth, the token in a secret file of mode 0600, endpoint
 * https://apig.test, fast limits) and two gateways g1 and g2 (HARNESS_GW1,
 * HARNESS_GW2), then the test's own YAML (certificates, bindings, policy,
 * retry, rollout).
 */
#ifndef CERTBIND_TEST_HARNESS_H
#define CERTBIND_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "config.h"
#include "fake_http.h"
#include "log.h"
#include "pass.h"
#include "world.h"

#define HARNESS_K 1000

#define HARNESS_PROJECT "0123456789abcdef0123456789abcdef"
#define HARNESS_GW1 "f0fa1789-3b76-433b-a787-9892951c620e"
#define HARNESS_GW2 "7d39549681c54d968ec2910da9da95cd"
#define HARNESS_TOKEN "tok-engine-test-must-not-leak"

struct harness {
  uv_loop_t loop;
  uint64_t k;       /* clock ms per real ms */
  uint64_t t0_ns;   /* uv_hrtime() at setup */
  int64_t unix0_ms; /* the wall clock at setup, ms */
  struct fake_net net;
  struct world world;
  struct config cfg;
  bool cfg_loaded;
  char dir[32]; /* temp dir: the token and the YAML file */
  struct log log;
  FILE *log_out;  /* the log: stderr, or a memory stream into log_text */
  char *log_text; /* what the pass logged (at debug level) */
  size_t log_len;
  struct pass_clock clock; /* given to the pass */
  struct ledger *ledger;   /* given to the pass (NULL: none) */
  struct pass *pass;
  bool started;
  bool done;
  uint64_t done_ms; /* clock ms when done() ran */
  /* Runs from the loop before each answer is delivered (fake_net's
   * before_answer), with the harness. */
  void (*before_answer)(struct harness *h, struct fake_call *c);
  void *user; /* the test's */
};

/* Loop, fake transport scripted by the world, clock, log, temp dir. */
void harness_setup(struct harness *h);

/* Write the configuration (the fixed head, then yaml) and load it. */
void harness_load(struct harness *h, const char *yaml);

/* Start an apply pass (opts: NULL for apply with a fixed seed), run the
 * loop until its done() and every handle is closed; asserts done ran. */
void harness_run(struct harness *h, const struct pass_opts *opts);

/* The clock, in ms. */
uint64_t harness_now(const struct harness *h);

/* A slower clock (k clock ms per real ms) for a test that needs an upper
 * bound on when something goes to hold on a busy machine; call it before
 * harness_load. CERTBIND_TEST_CLOCK_K still wins when set. */
void harness_slow_clock(struct harness *h, uint64_t k);

enum pass_outcome harness_outcome(const struct harness *h);
const struct pass_counts *harness_counts(const struct harness *h);

/* SIGTERM as the daemon gives it: pass_stop(). */
void harness_stop(struct harness *h);

/* Free everything and remove the files; the loop must close cleanly. */
void harness_teardown(struct harness *h);

/* Certificate IDs: 32 letters and digits, "cert...0N". */
const char *harness_cert_id(unsigned n);

#endif
