/* SPDX-License-Identifier: MIT */
/*
 * persist: what a pass leaves in state_dir for the next one and for
 * people: status.json, the ledger, the counters and the metrics textfile.
 * Used by apply and adopt and by every pass of the daemon. Every failure
 * is logged naming the file and its cause: a state file that cannot be
 * written fails the pass.
 */
#ifndef CERTBIND_PERSIST_H
#define CERTBIND_PERSIST_H

#include "config.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pass.h"
#include "served.h"

/* After a pass (also an interrupted or refused one): status.json (the
 * bindings the pass did not reach keep their earlier state), the ledger
 * (when the pass changed it and ledger is not NULL), the counters kept in
 * state_dir (m's counts are added to them, then m counts from zero) and
 * the metrics textfile. served (NULL: none) is the verification of what
 * the gateways serve that followed the pass (policy.verify): its cells go
 * into the bindings' "served" and into m's served gauges. Every file is
 * attempted. 0, or the first failure's negative errno. */
int persist_pass(const struct log *log, const struct config *cfg,
                 const struct pass *p, struct ledger *ledger, struct metrics *m,
                 const struct served *served);

/* The ledger into dir: 0, or a negative errno after logging it
 * (ledger.failed). */
int persist_ledger(const struct log *log, const char *dir,
                   const struct ledger *l);

#endif
