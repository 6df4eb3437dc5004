/* SPDX-License-Identifier: MIT */
/*
 * pass_confirm: when a certificate's confirmation read goes.
 *
 * APIG shows a write only some seconds after it answered it (5-10 s), and
 * every read counts against the account's quota (about 5 requests/s,
 * shared with everything else the account runs). So a confirmation should
 * go once, when the writes show: each account learns its
 * write-to-visible delay from what its confirmations see, as an interval:
 *  - lo: the largest time after a write at which a read did not show it
 *    (the delay is longer);
 *  - hi: the smallest time after a write at which a read showed it (the
 *    delay is at most that; "known" once one did).
 * A certificate's confirmation goes at its last write + hi (and a small
 * margin), so that it shows everything at once. While hi is unknown the reads
 * climb from policy.confirm_delay_ms (1.5x the last time that did not show).
 * While hi - lo is wider than PASS_CONFIRM_TOLERANCE, one certificate at a time
 * probes the middle (a failed probe costs one read and tightens lo; one
 * that shows tightens hi). policy.confirm_delay_ms is the floor of every
 * wait (the configured least delay).
 *
 * When the interval changes, the queued confirmations of the account that
 * have not gone yet move to the new time (a delay that grew mid-pass makes
 * them wait rather than fail). A delay that grows past hi shows as a read
 * after hi that did not show: hi is forgotten and the climb starts again
 * from there. The daemon keeps each account's interval between passes
 * (pass_opts.visibility), so that its next pass starts where the last one
 * ended, and apply and the daemon keep it in state_dir/visibility.json
 * (visibility.h), so that a one-shot apply starts from what earlier
 * processes learnt too.
 *
 * A delay that shrinks is seen only by a read that goes before the old
 * delay, and once the interval is narrow none does. So an interval that
 * has not changed for PASS_CONFIRM_RECHECK_MS loses its lo when a pass
 * that started from it times its first confirmation: hi stays (every
 * confirmation still goes once, at hi), and the probes narrow the interval
 * again from the configured floor, at one read each that does not show, a few
 * per account and recheck.
 */
#include "pass_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A confirmation's re-read never goes sooner than this after the last one:
 * a floor of 0 (policy.confirm_delay_ms: 0) cannot make a read loop. */
#define PASS_CONFIRM_MIN_GAP_MS 100u

/* A confirmation goes a little after hi: hi is the least time at which a
 * read showed the writes, measured between the write's answer and the
 * read's start here, and the time each takes to and from the server
 * varies by some ms (more on a busy machine). */
static uint64_t margin(uint64_t hi)
{
  return hi / 50 > 50 ? hi / 50 : 50;
}

/* An account's interval unchanged for this long is checked again (a day:
 * the API's delay changes seldom, and a recheck costs a few reads). */
#define PASS_CONFIRM_RECHECK_MS (24 * 3600 * 1000LL)

/* hi - lo narrower than this (ms) is precise enough: no more probes. */
static uint64_t tolerance(uint64_t hi)
{
  return hi / 20 > 100 ? hi / 20 : 100;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
  return a > b ? a : b;
}

/* policy.confirm_delay_ms, or pass_opts' override. */
static uint64_t confirm_floor(const struct pass *p)
{
  return p->opts.confirm_delay_ms ? p->opts.confirm_delay_ms
                                  : p->cfg->policy.confirm_delay_ms;
}

static struct pass_account *cert_account(struct pass *p, uint32_t cert)
{
  return &p->accounts[pass_cert_account_index(p, cert)];
}

/* ---- what earlier passes learnt (pass_opts.visibility) ----------------- */

/* An account's delay is the API's (endpoint) for its project. */
static int memory_key(const struct config_account *acct, char *buf, size_t len)
{
  return visibility_key(buf, len, acct->endpoint, acct->project_id);
}

static void memory_put(struct pass *p, uint32_t account)
{
  const struct pass_account *a = &p->accounts[account];
  char key[VISIBILITY_KEY_MAX];
  struct visibility_entry e = {.key = key,
                               .lo_ms = a->vis_lo,
                               .hi_ms = a->vis_known ? a->vis_hi : 0,
                               .known = a->vis_known,
                               .learnt_ms = pass_unix_ms(p)};

  if (!p->opts.visibility ||
      memory_key(&p->cfg->accounts[account], key, sizeof(key)) < 0)
    return;
  /* out of memory: not remembered, the next pass learns again */
  (void)visibility_put(p->opts.visibility, &e);
}

/* The interval was learnt so long ago that a shrunk delay could hide
 * below its lo. */
static bool due_recheck(const struct pass *p, const struct visibility_entry *e)
{
  return e->lo_ms > 0 &&
         pass_unix_ms(p) - e->learnt_ms >= PASS_CONFIRM_RECHECK_MS;
}

/* The first confirmation of an account due a recheck: its lo goes. */
static void start_recheck(struct pass *p, uint32_t account)
{
  struct pass_account *a = &p->accounts[account];
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[2] = {
      {"not_shown_ms", (long long)a->vis_lo},
      {"shown_ms", a->vis_known ? (long long)a->vis_hi : -1},
  };

  a->vis_recheck = false;
  a->vis_lo = 0;
  f.account = p->cfg->accounts[account].name;
  f.kv = kv;
  f.nkv = 2;
  log_event(p->log, LOG_INFO, "confirm.recheck", &f, "%s",
            "the account's write-to-visible delay estimate is a day old or "
            "more: probes check whether the delay has shrunk");
}

void confirm_init(struct pass *p)
{
  char key[VISIBILITY_KEY_MAX];

  for (size_t a = 0; p->opts.visibility && a < p->cfg->naccounts; a++) {
    const struct visibility_entry *e;
    if (memory_key(&p->cfg->accounts[a], key, sizeof(key)) < 0 ||
        !(e = visibility_find(p->opts.visibility, key)))
      continue;
    p->accounts[a].vis_lo = e->lo_ms;
    p->accounts[a].vis_hi = e->known ? e->hi_ms : 0;
    p->accounts[a].vis_known = e->known;
    p->accounts[a].vis_recheck = due_recheck(p, e);
  }
}

/* ---- when a confirmation goes ------------------------------------------ */

/* The time after its last write at which a certificate's confirmation
 * should go, UINT64_MAX to hold it until the account's probe has answered;
 * *probe when it is to be the account's probe. */
static uint64_t confirm_target(struct pass *p, const struct pass_cert *c,
                               const struct pass_account *a, bool *probe)
{
  uint64_t floor = confirm_floor(p);
  uint64_t lo = max_u64(a->vis_lo, floor);

  *probe = false;
  if (!a->vis_known) {
    /* one certificate climbs, the others wait for what it finds */
    if (a->vis_probing)
      return UINT64_MAX;
    *probe = true;
    if (!a->vis_lo)
      return floor;
    return max_u64(
        floor, max_u64(a->vis_lo * 3 / 2, a->vis_lo + PASS_CONFIRM_MIN_GAP_MS));
  }
  /* a certificate whose read did not show its writes waits for hi */
  if (!c->confirm_missed && !a->vis_probing &&
      a->vis_hi > lo + tolerance(a->vis_hi)) {
    *probe = true;
    return lo + (a->vis_hi - lo) / 2;
  }
  return max_u64(a->vis_hi + margin(a->vis_hi), floor);
}

/* The latest answer among the certificate's writes still to confirm. */
static uint64_t last_write_ms(const struct pass *p, uint32_t cert)
{
  const struct pass_cert *c = &p->certs[cert];
  uint64_t last = 0;

  for (size_t i = c->item_lo; i < c->item_hi; i++) {
    if (p->items[i].state == ITEM_WRITTEN)
      last = max_u64(last, p->items[i].written_ms);
  }
  return last;
}

/* ms from now until cert's confirmation should go; the certificate
 * becomes its account's probe when the target says so. */
static uint64_t delay_for(struct pass *p, uint32_t cert)
{
  struct pass_cert *c = &p->certs[cert];
  struct pass_account *a = cert_account(p, cert);
  uint64_t now = pass_now_ms(p);
  uint64_t last = last_write_ms(p, cert);
  uint64_t since = last && now > last ? now - last : 0;
  uint64_t timeout = (uint64_t)p->cfg->policy.confirm_timeout_s * 1000;
  bool probe;

  if (a->vis_recheck)
    start_recheck(p, pass_cert_account_index(p, cert));
  uint64_t at = confirm_target(p, c, a, &probe);

  c->confirm_probe = probe;
  c->confirm_held = at == UINT64_MAX;
  a->vis_probing |= probe;
  /* a read at the timeout decides what never showed (and a held read
   * goes then if no probe answers) */
  if (at > timeout)
    at = timeout;
  if (c->confirm_missed)
    at = max_u64(at, since + PASS_CONFIRM_MIN_GAP_MS);
  return at > since ? at - since : 0;
}

uint64_t confirm_delay(struct pass *p, uint32_t cert)
{
  return delay_for(p, cert);
}

void confirm_queued(struct pass *p, struct job *j)
{
  p->certs[j->cert].confirm_job = j;
}

void confirm_sent(struct pass *p, struct job *j)
{
  struct pass_cert *c = &p->certs[j->cert];

  if (j->purpose != LIST_CONFIRM || j->parent)
    return;
  c->confirm_job = NULL;
  c->confirm_sent_ms = pass_now_ms(p);
}

/* The account's interval changed, or its probe ended: its confirmations
 * not yet sent go at the new time (one of them may become the probe; a
 * probe keeps its time). */
static void retime(struct pass *p, uint32_t account)
{
  uint64_t now = pass_now_ms(p);

  for (uint32_t cert = 0; cert < p->cfg->ncertificates; cert++) {
    struct pass_cert *c = &p->certs[cert];
    struct job *j = c->confirm_job;
    if (!j || j->spec || c->confirm_probe ||
        pass_cert_account_index(p, cert) != account)
      continue;
    uint64_t at = now + delay_for(p, cert);
    if (at == j->q.not_before_ms || queue_remove(&p->queue, &j->q) < 0)
      continue;
    j->q.not_before_ms = at;
    if (queue_push(&p->queue, &j->q) < 0) {
      struct apig_error why = pass_error("internal", "queue refused a read");
      job_abandon(p, j, &why);
    }
  }
}

void confirm_ended(struct pass *p, uint32_t cert, bool learns)
{
  struct pass_cert *c = &p->certs[cert];
  struct pass_account *a = cert_account(p, cert);
  bool was_probe = c->confirm_probe;

  c->confirm_job = NULL;
  c->confirm_probe = false;
  if (!was_probe)
    return;
  a->vis_probing = false;
  /* the next probe is picked once confirm_learn has what this one saw
   * (picked now, it would go at a time the answer is about to move) */
  a->vis_probe_read = learns;
  /* a probe that failed for good: another certificate probes */
  if (!learns)
    retime(p, pass_cert_account_index(p, cert));
}

void confirm_learn(struct pass *p, uint32_t cert, const struct confirm_seen *s)
{
  uint32_t account = pass_cert_account_index(p, cert);
  struct pass_account *a = &p->accounts[account];
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[2];
  const uint64_t lo_was = a->vis_lo, hi_was = a->vis_hi;
  const bool known_was = a->vis_known;
  const bool probe_read = a->vis_probe_read;
  bool changed = false;

  a->vis_probe_read = false;

  if (s->unshown && s->unshown_ms >= a->vis_lo) {
    changed |= s->unshown_ms > a->vis_lo || !a->vis_lo;
    a->vis_lo = s->unshown_ms;
  }
  if (s->shown && (!a->vis_known || s->shown_ms < a->vis_hi)) {
    /* a few ms less moves no confirmation: not worth a retime */
    changed |= !a->vis_known || s->shown_ms + margin(a->vis_hi) < a->vis_hi;
    a->vis_hi = s->shown_ms;
    a->vis_known = true;
  }
  if (a->vis_known && a->vis_lo && a->vis_lo >= a->vis_hi) {
    /* the delay grew past what showed before: climb again from lo. (lo 0
     * is "no read has failed to show yet": with confirm_delay_ms 0 the
     * first probe can show its writes 0 ms after them, hi 0, and that is
     * no contradiction.) */
    a->vis_known = false;
    a->vis_hi = 0;
    changed = true;
  }
  if (!changed) {
    /* A few ms at a time add up: the confirmations that go late, one
     * after the other, each show a little sooner after their writes.
     * The next pass starts from where they ended. */
    if (a->vis_lo != lo_was || a->vis_hi != hi_was || a->vis_known != known_was)
      memory_put(p, account);
    /* Nothing moved: the queued confirmations keep their times, unless
     * this was the probe, whose answer frees the held ones or picks the
     * next probe. Retiming after every answer walked every certificate
     * per confirmation: quadratic in a large pass. */
    if (probe_read)
      retime(p, account);
    return;
  }
  pass_cert_fields(p, cert, &f);
  kv[0] = (struct log_kv){"not_shown_ms", (long long)a->vis_lo};
  kv[1] = (struct log_kv){"shown_ms", a->vis_known ? (long long)a->vis_hi : -1};
  f.kv = kv;
  f.nkv = 2;
  log_event(p->log, LOG_INFO, "confirm.delay", &f, "%s",
            "the account's write-to-visible delay estimate changed");
  memory_put(p, account);
  retime(p, account);
}
