/* SPDX-License-Identifier: MIT */
/*
 * pass_owner: ownership in the ledger (ledger.h). A binding certbind saw
 * applied is owned (owner_converged); in sync mode the ownership changes
 * of a wave go to disk before its writes are sent (owner_write_ahead);
 * the end of the pass resolves its intents (owner_settle); owned bindings
 * no longer live are forgotten (owner_forget_stale).
 */
#include "pass_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "statefile.h"

/* A move shows (the attach to the new certificate is confirmed, so APIG
 * took the domain off the old one): the old certificate's ledger entry
 * goes now, not on the next pass. */
static void forget_moved_from(struct pass *p, const struct plan_item *pi)
{
  const struct plan_move *m = p->plan.moves;
  size_t lo = 0, hi = p->plan.nmoves;

  while (lo < hi) { /* first move of this binding */
    size_t mid = lo + (hi - lo) / 2;
    if (m[mid].binding < pi->binding)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (; lo < p->plan.nmoves && m[lo].binding == pi->binding; lo++)
    ledger_remove(p->ledger, p->cfg->certificates[m[lo].from_cert].id,
                  pi->instance_id, pi->domain);
}

/* The ledger records what certbind attached, in both modes, so that
 * switching to sync later knows what it owns. */
void owner_converged(struct pass *p, size_t i)
{
  const struct plan_item *pi = &p->plan.items[i];
  const char *cert_id = p->cfg->certificates[pi->cert].id;

  if (!p->ledger)
    return;
  if (pi->op == PLAN_DETACH)
    ledger_remove(p->ledger, cert_id, pi->instance_id, pi->domain);
  else if (pi->op == PLAN_ATTACH)
    ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain,
               (int64_t)pass_unix_s(p));
  if (pi->op == PLAN_ATTACH && pi->binding != SIZE_MAX)
    forget_moved_from(p, pi);
  p->ledger_dirty = true;
}

/* The ledger file, for messages. */
static void ledger_write_error(const struct pass *p, int rc, char *why,
                               size_t size)
{
  char path[4096];

  if (statefile_path(path, sizeof(path), p->cfg->daemon.state_dir,
                     LEDGER_FILE) < 0)
    snprintf(path, sizeof(path), "%s", p->cfg->daemon.state_dir);
  statefile_strerror(rc, "write", path, why, size);
}

/* The ownership changes of items [lo, hi) go to disk before any of their
 * writes is sent: an attach's intent (a crash after the attach
 * leaves it to be found: uncertain, never detached), a detach's loss of
 * ownership (a crash after the detach must not leave certbind owning a
 * binding a person may attach again). Sync mode only: upsert detaches
 * nothing, and an attach a crash left unrecorded is merely not owned.
 * When the ledger cannot be written, none of those writes is sent: they
 * fail with the reason, and the in-memory ledger is put back. */
void owner_write_ahead(struct pass *p, size_t lo, size_t hi)
{
  int64_t now = (int64_t)pass_unix_s(p);
  bool changed = false;
  struct apig_error err;
  char why[600];
  int rc;

  if (!p->ledger || p->cfg->policy.mode != CONFIG_MODE_SYNC)
    return;
  for (size_t i = lo; i < hi; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    struct pass_item *it = &p->items[i];
    const char *cert_id = p->cfg->certificates[pi->cert].id;
    if (it->state != ITEM_PENDING || it->held)
      continue;
    if (pi->op == PLAN_ATTACH) {
      if (ledger_add_intent(p->ledger, cert_id, pi->instance_id, pi->domain,
                            now, &it->intent) < 0) {
        err = pass_error("internal", "out of memory");
        item_fail(p, i, &err);
        continue;
      }
      changed |= it->intent;
    } else if (pi->op == PLAN_DETACH) {
      const struct ledger_entry *e =
          ledger_find(p->ledger, cert_id, pi->instance_id, pi->domain);
      if (!e || e->intent)
        continue; /* plan_compute detaches only owned bindings */
      it->owned_at = e->attached_at;
      ledger_remove(p->ledger, cert_id, pi->instance_id, pi->domain);
      it->disowned = changed = true;
    }
  }
  if (!changed)
    return;
  p->ledger_dirty = true;
  (void)statefile_mkdir(p->cfg->daemon.state_dir); /* first pass: none yet */
  rc = ledger_save(p->cfg->daemon.state_dir, p->ledger);
  if (rc == 0)
    return;
  ledger_write_error(p, rc, why, sizeof(why));
  log_event(p->log, LOG_ERROR, "ledger.failed", NULL,
            "%s: the attaches and detaches that change ownership are not "
            "sent",
            why);
  err = pass_error("state-file", why);
  for (size_t i = lo; i < hi; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    struct pass_item *it = &p->items[i];
    const char *cert_id = p->cfg->certificates[pi->cert].id;
    if (it->intent)
      ledger_remove_intent(p->ledger, cert_id, pi->instance_id, pi->domain);
    else if (it->disowned)
      ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain, it->owned_at);
    else
      continue;
    it->intent = it->disowned = false;
    item_fail(p, i, &err);
  }
}

/* At the end of a pass its own intents are resolved: an attach
 * that answered 204 (or showed) is owned, in both modes; any other intent
 * (refused, never sent, outcome never resolved) is dropped. A detach whose
 * ownership went ahead but that was never sent, or that APIG refused for
 * good, left the binding in place: owned again. One whose outcome stayed
 * unknown is not: owning too little is the safe side. */
void owner_settle(struct pass *p)
{
  for (size_t i = 0; p->ledger && p->items && i < p->plan.nitems; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    const struct pass_item *it = &p->items[i];
    const char *cert_id = p->cfg->certificates[pi->cert].id;
    bool applied = it->state == ITEM_CONVERGED || it->written_ms != 0;
    if (pi->op == PLAN_ATTACH && applied) {
      if (!ledger_owns(p->ledger, cert_id, pi->instance_id, pi->domain))
        ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain,
                   (int64_t)pass_unix_s(p));
      p->ledger_dirty = true;
    } else if (it->intent) {
      ledger_remove_intent(p->ledger, cert_id, pi->instance_id, pi->domain);
      p->ledger_dirty = true;
    } else if (it->disowned && it->state != ITEM_CONVERGED &&
               (it->attempts == 0 || it->permanent)) {
      ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain, it->owned_at);
      p->ledger_dirty = true;
    }
  }
}

/* Owned bindings no longer live on their certificate (detached by someone
 * else, or moved by a rollout) are owned no more. Entries are copied out
 * first: a removal moves another entry into the hole. */
void owner_forget_stale(struct pass *p)
{
  size_t n = p->plan.nstale_ledger;
  struct ledger_entry *gone;

  if (!p->ledger || n == 0)
    return;
  gone = calloc(n, sizeof(*gone));
  if (!gone)
    return;
  for (size_t k = 0; k < n; k++) {
    const struct ledger_entry *e =
        ledger_at(p->ledger, p->plan.stale_ledger[k]);
    /* attached, or an intent (owner_write_ahead), too recently to show
     * yet, as APIG takes seconds to show a write: keep it */
    if (e->attached_at >
        (int64_t)pass_unix_s(p) - (int64_t)p->cfg->policy.confirm_timeout_s)
      continue;
    gone[k].certificate_id = strdup(e->certificate_id);
    gone[k].instance_id = strdup(e->instance_id);
    gone[k].domain = strdup(e->domain);
  }
  for (size_t k = 0; k < n; k++) {
    if (gone[k].certificate_id && gone[k].instance_id && gone[k].domain &&
        ledger_remove(p->ledger, gone[k].certificate_id, gone[k].instance_id,
                      gone[k].domain) == 0)
      p->ledger_dirty = true;
    free(gone[k].certificate_id);
    free(gone[k].instance_id);
    free(gone[k].domain);
  }
  free(gone);
}
