/* SPDX-License-Identifier: MIT */
/*
 * pass_rollout: from the reads to the writes. The plan and its guards
 * (a stale plan, too many detaches), the waves the writes go in (the
 * rollout section: each wave's bindings, the abort ratio) and the soak
 * between two waves. The daemon's memory holds back what failed before.
 */
#include "pass_int.h"

#include "ledger.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int item_memo_key(const struct pass *p, const struct plan_item *it, char *buf,
                  size_t len)
{
  return memo_key(buf, len, p->cfg->certificates[it->cert].id, it->instance_id,
                  it->domain, it->verify_client);
}

/* The daemon does not rewrite what failed for good, nor what waits for its
 * next retry: it stays failed (permanent) or pending with the old error. */
static bool held_back(struct pass *p, size_t i)
{
  char key[MEMO_KEY_MAX];
  const struct memo *m;
  struct pass_item *it = &p->items[i];

  if (!p->opts.memory || item_memo_key(p, &p->plan.items[i], key, sizeof(key)))
    return false;
  m = memo_find(p->opts.memory, key);
  if (!m || !memo_holds(m, (int64_t)pass_unix_s(p)))
    return false;
  it->held = m;
  it->attempts = m->attempts;
  item_set_error(p, it, m->error_code, m->error_msg, m->request_id);
  if (m->permanent) {
    it->state = ITEM_FAILED;
    it->permanent = true;
  }
  return true;
}

static size_t wave_size(const struct config_wave *w, size_t total)
{
  if (!w->is_share)
    return w->count < total ? w->count : total;
  size_t n = (size_t)ceil(w->share * (double)total);
  return n < total ? n : total;
}

static int setup_waves(struct pass *p)
{
  const struct config_rollout *r = &p->cfg->rollout;
  size_t total = p->plan.nitems;

  p->nwaves = r->enabled && r->nwaves ? r->nwaves : 1;
  p->wave_end = calloc(p->nwaves + 1, sizeof(*p->wave_end));
  if (!p->wave_end)
    return -ENOMEM;
  for (size_t w = 0; w < p->nwaves; w++) {
    size_t end =
        r->enabled && r->nwaves ? wave_size(&r->waves[w], total) : total;
    if (w + 1 == p->nwaves)
      end = total; /* the last wave takes what is left */
    p->wave_end[w] = end;
  }
  return 0;
}

/* The plan items [*lo, *hi) of the current wave. */
static void wave_items(const struct pass *p, size_t *lo, size_t *hi)
{
  *lo = p->wave ? p->wave_end[p->wave - 1] : 0;
  *hi = p->wave_end[p->wave];
}

void rollout_start_wave(struct pass *p)
{
  size_t lo, hi;
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[3];

  wave_items(p, &lo, &hi);
  kv[0] = (struct log_kv){"wave", (long long)p->wave + 1};
  kv[1] = (struct log_kv){"waves", (long long)p->nwaves};
  kv[2] = (struct log_kv){"bindings", (long long)(hi - lo)};
  if (p->nwaves > 1) {
    f.kv = kv;
    f.nkv = 3;
    log_event(p->log, LOG_INFO, "wave.start", &f, NULL);
  }
  for (size_t i = lo; i < hi; i++) {
    if (p->items[i].state == ITEM_PENDING)
      held_back(p, i);
  }
  owner_write_ahead(p, lo, hi);
  pass_feed_rewind(p);
}

void rollout_queue_cert(struct pass *p, uint32_t cert)
{
  const struct pass_cert *c = &p->certs[cert];
  size_t lo, hi, from, to;

  wave_items(p, &lo, &hi);
  from = c->item_lo > lo ? c->item_lo : lo;
  to = c->item_hi < hi ? c->item_hi : hi;
  if (from >= to || write_queue_cert(p, cert, from, to) == 0)
    return;
  struct apig_error why = pass_error("internal", "out of memory");
  for (size_t k = from; k < to; k++)
    item_fail(p, k, &why);
}

/* The guards (plan_guards, the same for `plan`): refuse, or with --force
 * go on and say so at warn. */
static bool guards_ok(struct pass *p)
{
  char why[200], msg[256];
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[] = {{"detach", (long long)p->plan.ndetach},
                        {"live", (long long)p->plan.live_total}};

  if (plan_guards(p->cfg, &p->plan, why, sizeof(why)) == PLAN_GUARD_OK)
    return true;
  if (!p->opts.force) {
    snprintf(msg, sizeof(msg), "refused: %s", why);
    pass_refuse(p, PASS_REFUSED, "guard.refused", msg);
    return false;
  }
  f.kv = kv;
  f.nkv = 2;
  log_event(p->log, LOG_WARN, "guard.overridden", &f,
            "%s: overridden by --force", why);
  return true;
}

/* apply --plan: a stored plan that no longer matches is refused, naming
 * what changed: the file, or a binding of the live state. */
static void refuse_stale(struct pass *p)
{
  char what[300], msg[400];
  const struct pass_opts *o = &p->opts;

  if (o->expect_config_sha256 &&
      strcmp(o->expect_config_sha256, p->cfg->sha256) != 0)
    snprintf(msg, sizeof(msg),
             "refused: the file changed since the plan was made (its "
             "SHA-256 differs); run certbind plan again");
  else if (plan_explain_stale(p->cfg, &p->live, &p->plan, o->expect, o->nexpect,
                              what, sizeof(what)))
    snprintf(msg, sizeof(msg),
             "refused: live state changed since the plan was made: %s; run "
             "certbind plan again",
             what);
  else
    snprintf(msg, sizeof(msg),
             "refused: the live state or the ownership ledger changed since "
             "the plan was made (checksum mismatch); run certbind plan again");
  pass_refuse(p, PASS_REFUSED, "plan.stale", msg);
}

/* The reads are over: plan, and check the guards. PHASE_WRITE: the first
 * wave is to be written; PHASE_DONE: nothing to write (plan only, a guard
 * refused, or the plan could not be made). */
enum phase rollout_plan(struct pass *p)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[6];
  bool plan_only = !p->opts.write || p->opts.dry_run; /* shown, not made */
  int rc;

  /* A certificate that could not be read gets no plan: its bindings are
   * reported failed with the read's error (pass_status). */
  rc = plan_compute_wanted(p->cfg, &p->live, p->ledger,
                           p->wanted.by_cert ? &p->wanted : NULL, &p->plan);
  plan_wanted_free(&p->wanted); /* the plan has them now; 32 B a binding */
  if (rc == 0 && p->ledger && p->opts.write && !p->opts.dry_run)
    (void)ledger_reserve(p->ledger, ledger_count(p->ledger) + p->plan.nattach +
                                        p->plan.nchange); /* memory only */
  if (rc < 0) {
    pass_refuse(p, PASS_FAILED, "plan.failed", "could not compute the plan");
    return PHASE_DONE;
  }
  /* binding_item holds item indexes in 32 bits */
  p->items = p->plan.nitems < UINT32_MAX
                 ? calloc(p->plan.nitems + 1, sizeof(*p->items))
                 : NULL;
  if (!p->items) {
    pass_refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    return PHASE_DONE;
  }
  p->res.has_plan = true;
  if (cert_plan(p) < 0) {
    pass_refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    return PHASE_DONE;
  }
  for (size_t i = 0; i < p->plan.nitems; i++) {
    const struct plan_item *it = &p->plan.items[i];
    struct pass_cert *c = &p->certs[it->cert];
    if (c->item_hi == 0)
      c->item_lo = i;
    c->item_hi = i + 1;
    if (it->binding != SIZE_MAX)
      p->binding_item[it->binding] = (uint32_t)i;
  }
  kv[0] = (struct log_kv){"attach", (long long)p->plan.nattach};
  kv[1] = (struct log_kv){"change", (long long)p->plan.nchange};
  kv[2] = (struct log_kv){"detach", (long long)p->plan.ndetach};
  kv[3] = (struct log_kv){"unchanged", (long long)p->plan.unchanged};
  kv[4] = (struct log_kv){"uncertain", (long long)p->plan.nuncertain};
  kv[5] = (struct log_kv){"move", (long long)p->plan.nmoved};
  f.kv = kv;
  f.nkv = 6;
  log_event(p->log, LOG_INFO, "plan", &f, NULL);

  /* only a plan that is shown, saved or compared needs its checksum */
  if ((p->opts.expect_checksum || plan_only) &&
      plan_checksum(p->cfg, &p->live, &p->plan) < 0) {
    pass_refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    return PHASE_DONE;
  }
  if (p->opts.expect_checksum &&
      strcmp(p->opts.expect_checksum, p->plan.checksum) != 0) {
    refuse_stale(p);
    return PHASE_DONE;
  }
  if (plan_only) {
    p->res.outcome = PASS_PLANNED;
    return PHASE_DONE;
  }
  if (!guards_ok(p))
    return PHASE_DONE;
  owner_forget_stale(p);
  if (setup_waves(p) < 0) {
    pass_refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    return PHASE_DONE;
  }
  return PHASE_WRITE;
}

/* The soak's timer: pass_transition decides whether it is over. */
static void on_soak_done(uv_timer_t *t)
{
  pass_transition(t->data, PASS_EV_SOAKED);
}

/* The soak is measured on the monotonic clock (pass_soak_now_ns) from
 * when it starts, not from the loop's cached time: uv_now() is when this
 * loop iteration began, so a long callback before this point (the last
 * confirmations of a big wave, or a slow machine) would shorten it, and
 * libuv's millisecond timers may fire up to 1 ms before the time asked. A
 * soak is never shorter than rollout.soak_s: pass_transition re-arms until
 * soak_until_ns has passed. */
int rollout_arm_soak(struct pass *p)
{
  uint64_t now = pass_soak_now_ns(p);
  uint64_t left = p->soak_until_ns > now ? p->soak_until_ns - now : 0;

  uv_update_time(p->loop);
  return uv_timer_start(&p->soak, on_soak_done,
                        pass_timer_ms(p, (left + 999999) / 1000000), 0);
}

/* A wave's writes and confirmations are over: check the abort ratio.
 * PHASE_SOAK: another wave follows (soak_until_ns is set); PHASE_DONE: the
 * last wave, aborted, or stopping. */
enum phase rollout_wave_over(struct pass *p)
{
  size_t lo, hi;
  size_t failed = 0;
  const struct config_rollout *r = &p->cfg->rollout;

  wave_items(p, &lo, &hi);
  for (size_t i = lo; i < hi; i++)
    failed += p->items[i].state == ITEM_FAILED;
  if (p->nwaves > 1) {
    struct log_fields f = LOG_FIELDS_INIT;
    struct log_kv kv[] = {{"wave", (long long)p->wave + 1},
                          {"failed", (long long)failed},
                          {"bindings", (long long)(hi - lo)}};
    f.kv = kv;
    f.nkv = 3;
    log_event(p->log, LOG_INFO, "wave.done", &f, NULL);
  }
  if (r->enabled && hi > lo &&
      (double)failed > r->abort_failure_ratio * (double)(hi - lo)) {
    char msg[256];
    snprintf(msg, sizeof(msg),
             "rollout aborted: wave %zu of %zu failed %zu of %zu bindings "
             "(more than rollout.abort_failure_ratio %.2f)",
             p->wave + 1, p->nwaves, failed, hi - lo, r->abort_failure_ratio);
    pass_refuse(p, PASS_ABORTED, "rollout.aborted", msg);
    return PHASE_DONE;
  }
  if (p->wave + 1 >= p->nwaves || p->stopping)
    return PHASE_DONE;
  p->soak_until_ns = pass_soak_now_ns(p) + (uint64_t)r->soak_s * 1000000000u;
  return PHASE_SOAK;
}
