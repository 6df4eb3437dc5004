/* SPDX-License-Identifier: MIT */
/*
 * report: what certbind shows of a plan: the human diff (coloured on a
 * terminal), the JSON plan (`plan --json`, `plan --out`), and reading a
 * stored plan back for `apply --plan`.
 */
#ifndef CERTBIND_REPORT_H
#define CERTBIND_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "plan.h"

#define REPORT_PLAN_VERSION 1

/* Colour on f: a terminal, NO_COLOR unset or empty, and TERM not "dumb". */
bool report_want_color(FILE *f);

/* Grouped by account and certificate; one line per domain with the
 * gateways it concerns; then "Plan: ..." (or "No changes."). */
int report_plan_text(const struct config *cfg, const struct plan *p, FILE *out,
                     bool color);

/* The plan as JSON (malloc'd, NUL-terminated): version, checksum,
 * config_sha256, mode, summary counts and every change. */
int report_plan_json(const struct config *cfg, const struct plan *p, char **out,
                     size_t *len);

/* Read a stored plan's checksum (strictly: version, checksum present, a
 * 64-hex string). On error *why says what is wrong. */
int report_plan_read(const char *path, char checksum[65], const char **why);

#endif
