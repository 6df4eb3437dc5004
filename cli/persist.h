/* SPDX-License-Identifier: MIT */
/*
 * persist: what a pass leaves in state_dir for the next one and for
 * people: status.json, the ledger, the counters, the metrics textfile and
 * the accounts' learnt write-to-visible delays (visibility.json).
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
#include "visibility.h"

/* After a pass (also an interrupted or refused one): status.json (the
 * bindings the pass did not reach keep their earlier state), the ledger
 * (when the pass changed it and ledger is not NULL), the counters kept in
 * state_dir (m's counts are added to them, then m counts from zero), the
 * metrics textfile, and, when visibility is not NULL (the set the pass
 * learnt into), visibility.json (persist_visibility_save). served (NULL:
 * none) is the verification of what the gateways serve that followed the
 * pass (policy.verify): its cells go into the bindings' "served" and into
 * m's served gauges. Every file is attempted. 0, or the first failure's
 * negative errno; visibility.json is a cache, its failure is only logged. */
int persist_pass(const struct log *log, const struct config *cfg,
                 const struct pass *p, struct ledger *ledger, struct metrics *m,
                 const struct served *served,
                 struct visibility_set *visibility);

/* The delays earlier passes learnt, from dir/visibility.json into *v
 * (emptied first), for a pass to start from. Missing: *v is empty. Corrupt
 * or unreadable: *v is empty and it is logged (visibility.unreadable,
 * naming the file and the problem): the pass starts from
 * policy.confirm_delay_ms, and the file is replaced after it. Never
 * fails. */
void persist_visibility_load(const struct log *log, const char *dir,
                             struct visibility_set *v);

/* *v (what this process learnt) merged with dir/visibility.json (another
 * process's later estimate of an account wins, and comes into *v too),
 * written back atomically: 0, or a negative errno after logging it
 * (visibility.failed). Nothing is written while *v and the file are
 * empty. */
int persist_visibility_save(const struct log *log, const char *dir,
                            struct visibility_set *v);

/* The ledger into dir: 0, or a negative errno after logging it
 * (ledger.failed). */
int persist_ledger(const struct log *log, const char *dir,
                   const struct ledger *l);

#endif
