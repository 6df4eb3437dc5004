/* SPDX-License-Identifier: MIT */
/*
 * served: what the gateways actually serve, checked on an event loop.
 *
 * For every binding of the file on a gateway that lists ingress
 * addresses, and every such address, one cell: a TLS handshake with SNI =
 * the domain (for "*.rest", the name "certbind-verify.rest" under it), the
 * leaf compared with the certificate the file wants (net/probe.h): a
 * certificate from files by its leaf's SHA-256, one given by id by the
 * serial number and not_after its Show answered in the pass the check
 * follows (served_opts.pass). With bound_only, a wanted binding that the
 * pass's live state does not show bound to the wanted certificate is a
 * cell that is not bound: never tried, not counted, not ok nor bad. The
 * cells that are not settled (mismatch, unreachable, an expired leaf that
 * is not the wanted one) are tried again in rounds, 0.5 s after the first
 * and then twice as long each time up to 8 s, until the deadline (from
 * the start); a round is one struct probe, so a dead address is tried
 * again each round. Nothing is sent to the API, no state file is touched.
 *
 * Used by `certbind verify` (cmd_verify.c); the results can be put into a
 * status model and the metrics (served_to_status, served_to_metrics).
 *
 * Ownership: the config must outlive the check. Every call on the loop's
 * thread. done() runs once, from the loop, when the last round is over
 * and every handle of the check is closed; it may served_free().
 */
#ifndef CERTBIND_SERVED_H
#define CERTBIND_SERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pass.h"
#include "probe.h"
#include "status.h"

#define SERVED_WILDCARD_LABEL "certbind-verify"

/* One (binding, ingress address). Read-only for the caller. */
struct served_cell {
  size_t binding; /* index into cfg->bindings */
  size_t ingress; /* index into the binding's gateway's ingress */
  size_t column;  /* index of (gateway, ingress) over every gateway's
                     addresses, in the file's order */
  char *sni;
  struct probe_want want;
  enum probe_verdict verdict;
  struct probe_result last; /* the last handshake */
  int64_t checked;          /* unix s of the last handshake */
  unsigned attempts;
  bool settled; /* trying again would change nothing */
  /* false: the live state shows the binding not in place (not on the
   * wanted certificate): not tried, not in the results */
  bool bound;
};

struct served_opts {
  uint64_t deadline_ms;           /* 0: policy.confirm_timeout_s */
  const struct probe_opts *probe; /* NULL: the defaults */
  /* The pass the check follows (it must outlive the check), or NULL. An id
   * certificate is compared with that pass's Show of it (pass_cert_shown);
   * when its Show failed, its cells are unknown at once (never tried) and
   * last.error says why. When that Show was kept from an earlier pass
   * (pass_cert_shown_cached), a leaf other than it is unknown, not a
   * mismatch (the object may have been updated in place since), and
   * last.error says so. NULL: id certificates' cells are unknown after
   * their handshake (the leaf reported, not judged). */
  const struct pass *pass;
  /* With pass: only the bindings its live state shows on the wanted
   * certificate are checked; the others are cells with bound false. A
   * certificate whose bindings could not be read: all its bindings are
   * checked (whether they are in place is unknown). */
  bool bound_only;
};

struct served;

/* A check of cfg on loop, or NULL (-ENOMEM). Its cells exist from here on
 * (served_cells), every one unreachable with 0 attempts until checked. */
struct served *served_new(uv_loop_t *loop, const struct config *cfg,
                          const struct served_opts *o);

/* Start the first round. 0: done() will run; < 0: it will not (and the
 * check holds no handle: served_free may follow). With no cell, done()
 * runs at once from the loop. */
int served_start(struct served *s, void (*done)(struct served *s, void *arg),
                 void *arg);

/* SIGINT: the handshakes in progress are cancelled (their cells
 * unreachable, "cancelled"), no further round; done() runs. No effect
 * when not started or over. */
void served_stop(struct served *s);

const struct served_cell *served_cells(const struct served *s, size_t *n);
unsigned served_rounds(const struct served *s);
bool served_stopped(const struct served *s);

/* Whether every bound cell is ok (true with none). */
bool served_all_ok(const struct served *s);

/* Free a check that never started, whose start failed, or whose done()
 * ran. NULL: nothing. */
void served_free(struct served *s);

/* One event per bound cell: verify.ok (info), verify.mismatch (warn: mismatch,
 * expired and unknown cells, the word in msg) or verify.unreachable
 * (warn), with the certificate, gateway, domain, the last handshake's
 * latency and the attempts. */
void served_log(const struct served *s, const struct log *log);

/* Whether policy.verify asks for a check after a pass with result r:
 * every_pass (unless interrupted), or after_write after a converged pass
 * that attached or changed bindings. */
bool served_wanted(const struct config *cfg, const struct pass_result *r);

/* A whole check of cfg on a loop of its own (o: NULL or its options),
 * SIGINT/SIGTERM stopping it, its cells logged (served_log): for a command
 * outside any loop (verify, and apply after its pass). 0 with *out set
 * (served_free it), or a negative errno with *out NULL. */
int served_run(const struct config *cfg, const struct log *log,
               const struct served_opts *o, struct served **out);

/* The bound cells into st's bindings: each binding of st whose (gateway,
 * domain, certificate) names a binding of cfg gets one served entry per
 * address of its gateway (what it had is replaced). 0 or -ENOMEM. */
int served_to_status(const struct served *s, struct status *st);

/* The cells into m: the earliest not_after per (gateway, domain) of the
 * leaves served, and the cells that are mismatch or expired. Replaces m's
 * last verification. 0 or -ENOMEM. */
int served_to_metrics(const struct served *s, struct metrics *m);

#endif
