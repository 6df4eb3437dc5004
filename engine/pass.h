/*
 * pass: one reconciliation pass on a libuv loop (SPEC §1): read every
 * certificate's live bindings, diff, write the difference in batches
 * through the queue (rate limits, one write in flight per certificate,
 * retries), confirm by re-reading, and report every binding's outcome.
 *
 * The data flow is file (config) → plan (plan.h) → queue (queue.h) →
 * requests (apig.h + auth.h over http.h) → results (this struct) →
 * status (status.h), ledger (ledger.h) and metrics (metrics.h).
 *
 * A pass is asynchronous: pass_start() returns at once, the loop runs it,
 * and done() is called once from the loop when it is over and every handle
 * of the pass is closed. Nothing of the pass runs after done().
 */
#ifndef CERTBIND_PASS_H
#define CERTBIND_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "queue.h"

struct auth_token_cache;
struct ledger;
struct metrics;
struct status;

enum pass_outcome {
  PASS_CONVERGED,   /* every binding is as the file wants */
  PASS_PLANNED,     /* plan only or dry run: nothing written */
  PASS_PARTIAL,     /* some bindings failed or did not show */
  PASS_FAILED,      /* nothing could be done (auth, every read failed) */
  PASS_REFUSED,     /* a guard said no (detach threshold, stale plan) */
  PASS_ABORTED,     /* a rollout wave failed too much */
  PASS_INTERRUPTED, /* stopped (SIGTERM) before the end */
};

/* What earlier passes of the daemon learned about one binding, so that a
 * binding that keeps failing is not hammered (SPEC §7): a permanent error
 * (4xx) is not retried until the binding's entry in the file changes (the
 * key includes everything the entry says), other failures wait for
 * next_retry. Sorted by key. */
struct pass_memo {
  char *key; /* "cert_id instance_id domain verify" */
  bool permanent;
  int64_t next_retry; /* unix s; 0 = none */
  uint32_t failures;  /* consecutive failed passes */
  uint32_t attempts;  /* requests spent on it over those passes */
  char error_code[64];
  char *error_msg;
  char request_id[80];
};

struct pass_memory {
  struct pass_memo *memos;
  size_t n;
};

struct pass_opts {
  bool write;                  /* false: read and diff only (plan) */
  bool dry_run;                /* apply --dry-run: never submit a write */
  const char *expect_checksum; /* apply --plan: the stored plan's */
  bool progress;               /* one live progress line on stderr */
  uint64_t seed;               /* jitter; 0 = from the clock */
  const char *command;       /* "plan" | "apply" | "run": for the status file */
  uint32_t confirm_delay_ms; /* first re-read after a write; 0 = policy */
  const struct pass_memory *memory; /* daemon: earlier failures, or NULL */
  /* daemon: IAM tokens kept across passes (taken while before their
   * renewal time, new ones stored back), or NULL */
  struct auth_token_cache *tokens;
};

struct pass_counts {
  uint64_t attached, changed, detached, unchanged, failed, pending;
  uint64_t requests, retries, writes;
  /* bindings a crash left as an unresolved intent and that are live: never
   * detached, not owned until `certbind adopt` (SPEC §1) */
  uint64_t uncertain;
};

struct pass_cert;
struct pass_item;
struct pass_account;

struct pass {
  /* Results: valid in done() and until pass_free(). */
  enum pass_outcome outcome;
  char message[256]; /* why refused/aborted/failed, one line */
  struct plan plan;
  struct live_state live;
  struct pass_counts counts;
  int64_t started_ms, ended_ms; /* unix ms */

  /* Internal. */
  uv_loop_t *loop;
  struct http *http;
  const struct config *cfg;
  struct ledger *ledger;
  struct metrics *metrics;
  const struct log *log;
  struct pass_opts opts;
  struct queue queue;
  uv_timer_t timer;
  uv_timer_t soak;
  uint64_t soak_until_ns; /* uv_hrtime() when the rollout soak ends */
  struct pass_account *accounts;
  struct pass_cert *certs;
  struct pass_item *items;
  size_t *binding_item; /* config binding -> plan item, SIZE_MAX: none */
  int phase;
  size_t reads_left;
  size_t in_flight;
  size_t pool_work;   /* jobs out on libuv's thread pool: page parses, the
                         wanted bindings' sort */
  size_t parse_bytes; /* bodies of the pages waiting for the pool */

  /* List entries held (the live state and the reads under way), and the
   * most the file explains (more is the server's doing: refused). */
  size_t live_entries;
  size_t live_entries_max;

  struct plan_wanted wanted; /* sorted while the reads are out (by_cert
                                NULL: not yet, or it failed) */
  size_t wave, nwaves;
  size_t *wave_end; /* plan item index where each wave ends */
  bool stopping;
  bool ledger_dirty;
  int open_handles;
  uint64_t progress_ms;
  uint64_t requests_planned;
  void (*done)(struct pass *p, void *arg);
  void *done_arg;
};

int pass_start(struct pass *p, uv_loop_t *loop, struct http *http,
               const struct config *cfg, struct ledger *ledger,
               struct metrics *metrics, const struct log *log,
               const struct pass_opts *o,
               void (*done)(struct pass *p, void *arg), void *arg);

/* SIGTERM: submit nothing new; requests in flight finish (the caller
 * bounds that with http_abort_all after its deadline). */
void pass_stop(struct pass *p);

/* The pass's bindings and summary as a status model (status_free it).
 * prev (NULL: none) is the status an earlier pass left: the bindings this
 * pass did not reach keep their state from it. */
int pass_status(const struct pass *p, const struct status *prev,
                struct status *st);

/* Whether the pass reached every binding (else pass_status wants the
 * earlier status). */
bool pass_reached_all(const struct pass *p);

/* A success (the metric's last success): the pass ran to its end, nothing
 * is pending, and every failure is a permanent error (4xx) of one domain's
 * write. */
bool pass_succeeded(const struct pass *p);

/* Print the SPEC §9 summary ("done in 2.4 s: …" and the failures). */
void pass_print_summary(const struct pass *p, FILE *out, bool color);

const char *pass_outcome_name(enum pass_outcome o);

/* The memory for the next pass: this pass's failures, and the memos of
 * bindings it held back. Replaces *out (freed first). */
int pass_remember(const struct pass *p, struct pass_memory *out);
void pass_memory_free(struct pass_memory *m);

void pass_free(struct pass *p);

#endif
