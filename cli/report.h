/* SPDX-License-Identifier: MIT */
/*
 * report: what certbind shows of a plan: the human diff (coloured on a
 * terminal), the JSON plan (`plan --json`, `plan --out`), and reading a
 * stored plan back for `apply --plan`.
 */
#ifndef CERTBIND_REPORT_H
#define CERTBIND_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "plan.h"

#define REPORT_PLAN_VERSION 1

/* Colour on f: a terminal, NO_COLOR unset or empty, and TERM not "dumb". */
bool report_want_color(FILE *f);

/* Grouped by account and certificate; one line per domain with the
 * gateways it concerns, columns padded to the widest of the certificate's
 * lines; a move is "~ move" and names the certificate it leaves; then
 * "Plan: ..." (moves counted apart from attaches) or "No changes...". */
int report_plan_text(const struct config *cfg, const struct plan *p, FILE *out,
                     bool color);

/* What the JSON plan says besides the plan itself. */
struct report_plan_meta {
  int64_t created_ms;  /* when the plan was made (unix ms): created_at */
  const char *refusal; /* why apply would refuse (plan_guards), or NULL */
};

/* The plan as JSON (malloc'd, NUL-terminated): version, certbind_version,
 * created_at (RFC 3339, UTC), checksum, config_sha256, mode, refused
 * (string or null), summary counts and every change, each with `from`
 * (certificate, certificate_id, verify_client) where it has a previous
 * value; a move's op is "move". */
int report_plan_json(const struct config *cfg, const struct plan *p,
                     const struct report_plan_meta *meta, char **out,
                     size_t *len);

/* The certificate.left event (info): the objects certbind created for
 * certificates the file no longer names (p->left), their count and names;
 * nothing when there are none. logged NULL: every call logs (one per
 * pass of apply). Else it keeps the list's digest (plan_left_digest;
 * zero-initialise it) and the event is logged only when the list differs
 * from the one the last call saw: the daemon's resyncs do not repeat it. */
void report_log_left(const struct log *log, const struct plan *p,
                     uint64_t *logged);

/* A stored plan, as `apply --plan` uses it. */
struct report_stored_plan {
  char checksum[65];
  char config_sha256[65]; /* "" when the plan does not have it */
  /* what it assumed of each binding it changes (from `from`); none in a
   * plan written before previous values were recorded */
  struct plan_expect *expect;
  size_t nexpect;
  void *root; /* private: the parsed file the strings point into */
};

/* Read a stored plan (strictly: version, checksum present, a 64-hex
 * string; every change with instance_id, domain and a well-formed from).
 * On error *why says what is wrong and sp holds nothing. */
int report_plan_read(const char *path, struct report_stored_plan *sp,
                     const char **why);
void report_stored_plan_free(struct report_stored_plan *sp);

#endif
