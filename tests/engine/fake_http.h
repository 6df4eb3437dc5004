/* SPDX-License-Identifier: MIT */
/*
 * fake_http: net/http.h for the engine's unit tests, without curl or a
 * network. The test binary links this file instead of net's http.c, so the
 * pass talks to it through the same functions (http_submit, ...).
 *
 * Each request the pass submits is recorded (struct fake_call: method, URL,
 * body, and what it is in APIG terms), answered by a script the test
 * supplies (a function that sees the call and fills a struct fake_answer),
 * and completed later on the real libuv loop by a timer of the answer's
 * latency. Times are read from the test's clock (fake_net.now), so a test
 * can assert the order, spacing and overlap of requests in clock time.
 *
 * Ownership: struct fake_net is the caller's (embed or allocate it); the
 * struct http inside it is what the pass is given. Calls stay in the log
 * until fake_net_free(). Every call happens on the loop thread.
 */
#ifndef CERTBIND_TEST_FAKE_HTTP_H
#define CERTBIND_TEST_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "apig.h"
#include "http.h"

/* One domain of an attach/detach body. */
struct fake_domain {
  char *domain;
  char **instances;
  size_t ninstances;
  bool verify;
};

/* One request the pass sent, in the order sent. */
struct fake_call {
  size_t index; /* position in the log */
  char method[8];
  char *url;
  char *body;
  size_t body_len;
  bool authorized; /* carried "X-Auth-Token: <fake_net.token>" */

  /* What the request is (parsed from the URL and body). */
  int op;           /* enum apig_op, or -1: not an APIG call we know */
  char cert_id[65]; /* list, attach, detach; show, update, delete */
  long offset;      /* list: the offset query parameter */
  struct fake_domain *domains; /* attach, detach: the body's domains */
  size_t ndomains;
  bool body_ok; /* a write body parsed */

  /* Timeline in clock ms. */
  uint64_t sent_ms;
  uint64_t done_ms; /* when its answer was delivered */
  bool completed;
  bool aborted;
  /* Writes (attach or detach) in flight when this one was sent, itself
   * not counted: of every certificate, and of its own certificate. */
  size_t writes_in_flight;
  size_t cert_writes_in_flight;

  /* The answer as delivered. */
  long status;
  bool reset;
};

/* What the script answers. Zeroed before the script runs. */
struct fake_answer {
  long status; /* HTTP status; ignored when reset */
  /* No HTTP answer: the connection was reset after the request left
   * (curl_code CURLE_RECV_ERROR, maybe_sent): an unknown outcome. */
  bool reset;
  char *body;          /* malloc'd, taken by the fake; NULL: empty */
  char request_id[80]; /* X-Request-Id */
  long retry_after_s;  /* 0: none */
  uint64_t latency_ms; /* clock ms from send to answer */
};

struct fake_net;

typedef void (*fake_script_fn)(void *arg, struct fake_call *call,
                               struct fake_answer *answer);

struct fake_net {
  struct http http; /* give &fake_net.http to the pass */
  uv_loop_t *loop;

  /* The test's clock, in ms, and how long a timer must run (real ms) for
   * clock_ms of the clock to pass. */
  uint64_t (*now)(void *clock_arg);
  uint64_t (*timer_ms)(void *clock_arg, uint64_t clock_ms);
  void *clock_arg;

  fake_script_fn script;
  void *script_arg;
  /* When set, runs from the loop just before a call's answer is delivered
   * (as a signal handler would run between two callbacks). */
  void (*before_answer)(void *arg, struct fake_call *call);
  void *before_answer_arg;

  const char *token; /* the X-Auth-Token every request must carry */

  struct fake_call **calls; /* the log */
  size_t ncalls, capcalls;
  struct fake_xfer *xfers; /* in flight */
  size_t in_flight;
  size_t max_buffered; /* last http_set_max_buffered */
};

/* 0 or a negative errno. Everything but the loop may be set afterwards. */
int fake_net_init(struct fake_net *n, uv_loop_t *loop);

/* Free the log. Nothing may be in flight (the loop ran to its end). */
void fake_net_free(struct fake_net *n);

/* Writes (attach or detach) in the log, in order; *out is malloc'd (the
 * caller frees it), NULL when there are none. */
size_t fake_net_writes(const struct fake_net *n, const char *cert_id,
                       struct fake_call ***out);

/* Whether call c's body names domain. */
bool fake_call_has_domain(const struct fake_call *c, const char *domain);

#endif
