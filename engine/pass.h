/* SPDX-License-Identifier: MIT */
/*
 * pass: one reconciliation pass on a libuv loop: read every certificate's
 * live bindings, diff, write the difference in batches through the queue
 * (rate limits, one write in flight per certificate, retries), confirm by
 * re-reading, and report every binding's outcome.
 *
 * The data flow is file (config) → plan (plan.h) → queue (queue.h) →
 * requests (apig.h + auth.h over http.h) → results (pass_result) →
 * status (status.h), ledger (ledger.h) and metrics (metrics.h).
 *
 * A pass is an opaque handle: pass_new() makes one, pass_start() returns
 * at once and the loop runs it, and done() is called once from the loop
 * when it is over and every handle of the pass is closed. Nothing of the
 * pass runs after done(); done() may pass_free() it.
 *
 * This header pulls in neither libuv, curl nor OpenSSL: the loop and the
 * transport are forward-declared, the caller that makes them includes
 * their headers.
 */
#ifndef CERTBIND_PASS_H
#define CERTBIND_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "memo.h"
#include "plan.h"
#include "visibility.h"

struct uv_loop_s; /* uv_loop_t */
struct http;
struct auth_token_cache;
struct config;
struct ledger;
struct log;
struct metrics;
struct status;
struct show_cache;
struct pass;

enum pass_outcome {
  PASS_CONVERGED,   /* every binding is as the file wants */
  PASS_PLANNED,     /* plan only or dry run: nothing written */
  PASS_PARTIAL,     /* some bindings failed or did not show */
  PASS_FAILED,      /* nothing could be done (auth, every read failed) */
  PASS_REFUSED,     /* a guard said no (detach threshold, stale plan) */
  PASS_ABORTED,     /* a rollout wave failed too much */
  PASS_INTERRUPTED, /* stopped (SIGTERM) before the end */
};

/*
 * Where the pass reads time. Every read of time in the engine goes
 * through it, and every timer the pass arms is armed for
 * timer_ms(arg, <delay in clock ms>) real milliseconds; so a test can run
 * a pass on a fast clock (clock time = K x real time, timers = delay / K)
 * and assert lower bounds in clock time.
 *
 * NULL (struct pass_deps.clock) is the real clock: mono_ms is the loop's
 * time (uv_now), unix_ms the wall clock (gettimeofday), timer_ms the
 * identity; the rollout's soak is measured on uv_hrtime() (never shorter
 * than asked, however long the callback before it). An injected clock's
 * mono_ms must answer the current time on every call (the soak relies on
 * it) and never go back.
 */
struct pass_clock {
  uint64_t (*mono_ms)(void *arg); /* monotonic ms, any origin */
  int64_t (*unix_ms)(void *arg);  /* ms since the epoch: requests' signing
                                     time, tokens, ledger, memos, results */
  uint64_t (*timer_ms)(void *arg, uint64_t clock_ms); /* real ms to wait */
  void *arg;
};

/* What a pass works with; the caller owns all of it, and it must outlive
 * the pass (until done(), or pass_free() when pass_start() failed). */
struct pass_deps {
  struct uv_loop_s *loop;
  struct http *http;
  const struct config *cfg;
  struct ledger *ledger;   /* NULL: ownership unknown, nothing detached */
  struct metrics *metrics; /* NULL: not counted */
  const struct log *log;
  const struct pass_clock *clock; /* NULL: real time */
};

struct pass_opts {
  bool write;                  /* false: read and diff only (plan) */
  bool dry_run;                /* apply --dry-run: never submit a write */
  const char *expect_checksum; /* apply --plan: the stored plan's */
  /* apply --plan: the stored plan's config_sha256 (NULL: not known), and
   * what it assumed of the bindings it changes: a refusal as stale names
   * the file, or a binding that differs (plan_explain_stale) */
  const char *expect_config_sha256;
  const struct plan_expect *expect;
  size_t nexpect;
  bool force;    /* apply --force: the detach thresholds do not refuse (warn) */
  bool progress; /* one live progress line on stderr */
  uint64_t seed; /* jitter; 0 = from the clock */
  const char *command;       /* "plan" | "apply" | "run": for the status file */
  uint32_t confirm_delay_ms; /* first re-read after a write; 0 = policy */
  const struct memo_set *memory; /* daemon: earlier failures, or NULL */
  /* daemon: IAM tokens kept across passes (taken while before their
   * renewal time, new ones stored back), or NULL */
  struct auth_token_cache *tokens;
  /* import: each certificate is read with every account to find the one
   * that holds it; a read answered 404 (not in that project) is then
   * logged at info, not as an error */
  bool probe;
  /* the accounts' write-to-visible delays (visibility.h) that earlier
   * passes learnt (the daemon's memory, or apply's from
   * state_dir/visibility.json): read at the start and updated as the pass
   * learns, each change stamped with the pass's unix time; or NULL (start
   * from confirm_delay_ms) */
  struct visibility_set *visibility;
  /* the daemon's Shows of id certificates kept across passes
   * (show_cache.h), or NULL: every id certificate is shown. An entry
   * stands for the certificate's Show when it is younger than
   * SHOW_CACHE_MAX_AGE_MS, its not_after is beyond
   * policy.expiry_warning_days from now and its SANs cover every domain
   * the file wants on it (certificate.show_cached at debug); else the
   * certificate is shown and the answer stored. Any Show sent evicts the
   * entry first (a failed or 404 Show leaves none), and so does a failed
   * first read of the certificate. */
  struct show_cache *shows;
};

struct pass_counts {
  uint64_t attached, changed, detached, unchanged, failed, pending;
  uint64_t requests, retries, writes;
  /* bindings a crash left as an unresolved intent and that are live: never
   * detached, not owned until `certbind adopt` */
  uint64_t uncertain;
};

/* The results: complete in done() and valid until pass_free(). */
struct pass_result {
  enum pass_outcome outcome;
  const char *message;     /* why refused/aborted/failed, one line, or "" */
  const struct plan *plan; /* empty when the pass ended before it */
  const struct live_state *live; /* what the reads found */
  bool has_plan; /* the plan was made: the bindings have results */
  struct pass_counts counts;
  int64_t started_ms, ended_ms; /* unix ms (the pass's clock) */
};

/* A pass that has not started, or NULL (out of memory). Takes copies of
 * *d and *o (the strings and objects they point to are borrowed). */
struct pass *pass_new(const struct pass_deps *d, const struct pass_opts *o);

/* Start reading. 0: done() will be called once, from the loop. < 0
 * (negative errno): done() is never called, and the pass holds no open
 * handle, so pass_free() may follow at once. Call it once. */
int pass_start(struct pass *p, void (*done)(struct pass *p, void *arg),
               void *arg);

/* SIGTERM: submit nothing new; requests in flight finish (the caller
 * bounds that with http_abort_all after its deadline). No effect on a
 * pass that is NULL, not started, or over. */
void pass_stop(struct pass *p);

/* Free a pass that never started, whose pass_start() failed, or whose
 * done() was called (from done() itself too). NULL: nothing. */
void pass_free(struct pass *p);

const struct pass_result *pass_result(const struct pass *p);

/* The id a certificate from files has in pass_config() while no object
 * holds it (plan, --dry-run): never sent. */
#define PASS_NEW_OBJECT_ID "new"

/* The file's model as the pass sees it, to print its plan and status
 * with: the file's own (deps.cfg) unless it has certificates given as
 * files (cert_file + key). Then a copy where each of those has the id of
 * its APIG object (PASS_NEW_OBJECT_ID while none exists), followed
 * by one certificate per previous object of theirs (named "NAME (previous
 * HASH)", no binding of the file) whose bindings the plan moves.
 * Certificate indexes of the plan and the live state are into this one.
 * Valid until pass_free(). */
const struct config *pass_config(const struct pass *p);

/* Why the first read of certificate cert (an index into the file's
 * certificates) failed: the answer's error (code "APIG.3025": no such
 * certificate in the account's project; "" when there was no answer), or
 * NULL when it was read or never tried. Valid until pass_free(). */
const struct apig_error *pass_read_error(const struct pass *p, size_t cert);

/* The object Show answered for id certificate cert in this pass, or NULL
 * when unknown (a managed certificate, a failed Show, not read yet). Only
 * id, SANs, serial, not_before and not_after are kept (what the plan's
 * rules and `certbind verify` use); the other strings are NULL. Valid
 * until pass_free(). */
const struct apig_cert *pass_cert_shown(const struct pass *p, size_t cert);

/* Whether pass_cert_shown(p, cert) came from pass_opts.shows (an earlier
 * pass's Show) rather than from a Show of this pass. */
bool pass_cert_shown_cached(const struct pass *p, size_t cert);

/* Certificate cert's end (Unix s) as this pass knows it: a managed one's
 * from its file, an id one's from its Show; 0 when unknown. */
int64_t pass_cert_not_after(const struct pass *p, size_t cert);

/* The metric certbind_certificate_not_after_timestamp_seconds: m's
 * certificate series replaced by one per certificate of the file (0 for
 * an unknown end). 0 or -ENOMEM. */
int pass_certificate_metrics(const struct pass *p, struct metrics *m);

/* Whether the pass changed the ledger it was given (to be saved). */
bool pass_ledger_dirty(const struct pass *p);

/* The pass's bindings and summary as a status model (status_free it
 * before pass_free: its bindings' names point into the pass and its
 * file model, names_borrowed). prev (NULL: none) is the status an earlier
 * pass left: the bindings this pass did not reach keep their state from
 * it. */
int pass_status(const struct pass *p, const struct status *prev,
                struct status *st);

/* Whether the pass reached every binding (else pass_status wants the
 * earlier status). */
bool pass_reached_all(const struct pass *p);

/* A success (the metric's last success): the pass ran to its end, nothing
 * is pending, and every failure is a permanent error (4xx) of one domain's
 * write. */
bool pass_succeeded(const struct pass *p);

/* Print the summary ("done in 2.4 s: …" and the first 20 failures, each
 * with its whole request ID: operators quote it to support). */
void pass_print_summary(const struct pass *p, FILE *out, bool color);

/* "converged", "planned", … */
const char *pass_outcome_name(enum pass_outcome o);

/* The memory for the next pass: this pass's failures, and the memos of
 * bindings it held back (memo.h). Replaces *out (freed first). */
int pass_remember(const struct pass *p, struct memo_set *out);

#endif
