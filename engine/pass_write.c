/* SPDX-License-Identifier: MIT */
/*
 * pass_write: the bindings' results (items) and the writes that change
 * them. Writes go in batches of up to policy.batch_size domains per
 * request, attaches before detaches, one in flight per certificate (the
 * queue); write_dispatch is the one place a write is sent, and refuses it
 * on a dry run. A binding's attempts are the write requests made for it,
 * at most retry.max_attempts, splits and retries alike. A refused batch
 * of many domains is split (in halves while max_attempts allows, in more
 * parts when it does not) until the bad domain stands alone; a write of
 * unknown outcome is re-read before anything is sent again; a
 * certificate's last write is followed by confirmation reads until its
 * bindings show or confirm_timeout_s passes.
 */
#include "pass_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void item_set_error(struct pass *p, struct pass_item *it, const char *code,
                    const char *msg, const char *request_id)
{
  it->error_code = pass_keep(p, code);
  it->error_msg = pass_keep(p, msg);
  it->request_id = pass_keep(p, request_id);
}

void item_fail(struct pass *p, size_t i, const struct apig_error *why)
{
  struct pass_item *it = &p->items[i];

  if (it->state == ITEM_CONVERGED || it->state == ITEM_FAILED)
    return;
  it->state = ITEM_FAILED;
  item_set_error(p, it, why->code, why->msg, why->request_id);
}

void item_converge(struct pass *p, size_t i)
{
  if (p->items[i].state == ITEM_CONVERGED)
    return;
  p->items[i].state = ITEM_CONVERGED;
  owner_converged(p, i);
}

static int cmp_size_domain(const void *a, const void *b, void *arg)
{
  const struct plan *pl = arg;
  const struct plan_item *x = &pl->items[*(const size_t *)a];
  const struct plan_item *y = &pl->items[*(const size_t *)b];
  int c = strcmp(x->domain, y->domain);

  if (c)
    return c;
  if (x->verify_client != y->verify_client)
    return x->verify_client ? 1 : -1;
  return strcmp(x->instance_id, y->instance_id);
}

/* Queue the writes of plan items [lo, hi) of one certificate: attaches and
 * changes first, then detaches, batch_size domains per request. */
int write_queue_cert(struct pass *p, uint32_t cert, size_t lo, size_t hi)
{
  size_t *idx = malloc((hi - lo + 1) * sizeof(*idx));
  uint32_t batch = p->cfg->policy.batch_size;
  int rc = 0;

  if (!idx)
    return -ENOMEM;
  for (int pass_detach = 0; rc == 0 && pass_detach < 2; pass_detach++) {
    size_t n = 0;
    for (size_t i = lo; i < hi; i++) {
      bool det = p->plan.items[i].op == PLAN_DETACH;
      if (det == (pass_detach == 1) && p->items[i].state == ITEM_PENDING &&
          !p->items[i].held)
        idx[n++] = i;
    }
    /* plan order is (op, domain, gateway): usually this order already */
    bool sorted = true;
    for (size_t k = 1; sorted && k < n; k++)
      sorted = cmp_size_domain(&idx[k - 1], &idx[k], &p->plan) <= 0;
    if (!sorted)
      qsort_r(idx, n, sizeof(*idx), cmp_size_domain, &p->plan);
    for (size_t k = 0; rc == 0 && k < n;) {
      size_t start = k, ndom = 0;
      /* up to batch_size domains, each with all its instances */
      while (k < n) {
        const struct plan_item *it = &p->plan.items[idx[k]];
        const struct plan_item *prev =
            k > start ? &p->plan.items[idx[k - 1]] : NULL;
        bool new_dom = !prev || strcmp(it->domain, prev->domain) != 0 ||
                       it->verify_client != prev->verify_client;
        if (new_dom && ndom == batch)
          break;
        ndom += new_dom;
        k++;
      }
      struct job *j = job_new(p, JOB_WRITE, cert);
      if (!j) {
        rc = -ENOMEM;
        break;
      }
      j->op = pass_detach ? APIG_OP_DETACH : APIG_OP_ATTACH;
      j->nitems = k - start;
      j->items = malloc(j->nitems * sizeof(*j->items));
      if (!j->items) {
        job_free(j);
        rc = -ENOMEM;
        break;
      }
      memcpy(j->items, idx + start, j->nitems * sizeof(*j->items));
      p->certs[cert].writes_left++;
      rc = job_push(p, j, 0);
      if (rc < 0) {
        p->certs[cert].writes_left--;
        job_free(j);
      }
    }
  }
  free(idx);
  return rc;
}

/* Body items: one per domain, with every instance ID it needs. */
static int build_write_body(struct pass *p, struct job *j, char **body,
                            size_t *len)
{
  struct apig_domain_item *di = calloc(j->nitems, sizeof(*di));
  const char **ids = calloc(j->nitems, sizeof(*ids));
  size_t n = 0;
  int rc;

  if (!di || !ids) {
    free(di);
    free(ids);
    return -ENOMEM;
  }
  for (size_t k = 0; k < j->nitems; k++) {
    const struct plan_item *it = &p->plan.items[j->items[k]];
    ids[k] = it->instance_id;
    if (n && strcmp(di[n - 1].domain, it->domain) == 0 &&
        di[n - 1].verify_client == it->verify_client) {
      di[n - 1].n_instances++;
      continue;
    }
    di[n].domain = it->domain;
    di[n].instance_ids = &ids[k];
    di[n].n_instances = 1;
    di[n].verify_client = it->verify_client;
    n++;
  }
  rc = apig_write_body(di, n, body, len);
  free(di);
  free(ids);
  return rc;
}

/* A write of more than one domain (its items are sorted by domain). */
static bool write_many_domains(const struct pass *p, const struct job *j)
{
  return j->nitems > 1 &&
         strcmp(p->plan.items[j->items[0]].domain,
                p->plan.items[j->items[j->nitems - 1]].domain) != 0;
}

/* The requests made so far for the bindings of j: retry.max_attempts
 * bounds them per binding, whatever splits and retries they went through,
 * and they are the "attempts" of the status and the logs. */
static uint32_t write_requests_made(const struct pass *p, const struct job *j)
{
  uint32_t n = 0;

  for (size_t k = 0; k < j->nitems; k++) {
    uint32_t a = p->items[j->items[k]].attempts;
    n = a > n ? a : n;
  }
  return n;
}

/* The one place a write is submitted. */
void write_dispatch(struct pass *p, struct job *j)
{
  const struct config_account *acct = pass_cert_account(p, j->cert);
  struct apig_error why;
  struct call *c;
  int rc;

  if (p->opts.dry_run || !p->opts.write) {
    log_event(p->log, LOG_ERROR, "write.refused", NULL,
              "dry run: a write reached the submission point and was not "
              "sent");
    queue_complete(&p->queue, &j->q, QUEUE_FAILURE, pass_now_ms(p));
    why = pass_error("dry-run", "not written (dry run)");
    job_abandon(p, j, &why);
    return;
  }
  c = calloc(1, sizeof(*c));
  rc = c ? 0 : -ENOMEM;
  if (rc == 0)
    rc = apig_url_write_at(pass_cert_endpoint(p, j->cert), acct->project_id,
                           p->cfg->certificates[j->cert].id, j->op, &c->url);
  if (rc == 0)
    rc = build_write_body(p, j, &c->body, &c->body_len);
  if (rc == 0) {
    c->p = p;
    c->job = j;
    c->op = j->op;
    c->account = j->q.account;
    /* attempt n of its bindings, also after a split or a resend after a
     * token renewal */
    j->q.attempt = write_requests_made(p, j);
    for (size_t k = 0; k < j->nitems; k++)
      p->items[j->items[k]].attempts = j->q.attempt + 1;
    /* curl must never re-send it blindly if a reused connection turns out
     * dead (http.h): no_resend makes that re-send fail (outcome unknown,
     * re-read first) without a TLS handshake per write, which
     * fresh_connection cost (bench/RESULTS.md) */
    c->rq.no_resend = true;
    c->rq.max_body = APIG_MAX_ERROR_BODY; /* 204, or an error envelope */
    rc = call_submit(p, c, acct, "POST", true);
    if (rc == 0) {
      p->res.counts.writes++;
      return;
    }
  }
  if (c)
    call_free(c);
  queue_complete(&p->queue, &j->q, QUEUE_FAILURE, pass_now_ms(p));
  why = pass_error("internal", strerror(-rc));
  job_abandon(p, j, &why);
}

/* Into how many parts a refused batch of ndom domains is split so that,
 * split the same way again and again, the bad domain stands alone within
 * left more requests: halves when they can, more parts when max_attempts
 * leaves too few requests for halving (k^left >= ndom). */
static size_t split_parts(size_t ndom, uint32_t left)
{
  for (size_t k = 2; k < ndom; k++) {
    size_t reach = 1;

    for (uint32_t i = 0; i < left && reach < ndom; i++)
      reach *= k;
    if (reach >= ndom)
      return k;
  }
  return ndom;
}

/* The index in j->items where domain number d (0-based) begins. */
static size_t domain_start(const struct pass *p, const struct job *j, size_t d)
{
  size_t seen = 0;

  for (size_t k = 0; k < j->nitems; k++) {
    if (k > 0 && strcmp(p->plan.items[j->items[k]].domain,
                        p->plan.items[j->items[k - 1]].domain) != 0)
      seen++;
    if (seen == d)
      return k;
  }
  return j->nitems;
}

/* Split a refused multi-domain write (split_parts says in how many parts)
 * so that the bad domain ends up alone and the others are written. False
 * when it cannot be: one domain, max_attempts spent, or out of memory. */
static bool split_write(struct pass *p, struct job *j)
{
  uint32_t made = j->q.attempt + 1, max = p->cfg->retry.max_attempts;
  size_t ndom = 0, parts, *cuts;
  struct job **more;
  struct apig_error why;
  bool ok;

  for (size_t k = 0; k < j->nitems; k++)
    ndom += k == 0 || strcmp(p->plan.items[j->items[k]].domain,
                             p->plan.items[j->items[k - 1]].domain) != 0;
  if (ndom < 2 || made >= max)
    return false;
  parts = split_parts(ndom, max - made);
  cuts = malloc((parts + 1) * sizeof(*cuts));
  more = calloc(parts, sizeof(*more));
  ok = cuts && more;
  for (size_t i = 0; ok && i <= parts; i++)
    cuts[i] = domain_start(p, j, i * ndom / parts);
  /* parts 1.. in new jobs; j keeps part 0 */
  for (size_t i = 1; ok && i < parts; i++) {
    struct job *b = more[i] = job_new(p, JOB_WRITE, j->cert);

    ok = b && (b->items = malloc((cuts[i + 1] - cuts[i]) * sizeof(size_t)));
    if (!ok)
      break;
    b->op = j->op;
    b->nitems = cuts[i + 1] - cuts[i];
    memcpy(b->items, j->items + cuts[i], b->nitems * sizeof(*b->items));
    b->q.attempt = made;
  }
  if (ok) {
    why = pass_error("internal", "queue refused a split batch");
    j->nitems = cuts[1];
    j->q.attempt = made;
    p->certs[j->cert].writes_left += parts - 1;
    for (size_t i = 0; i < parts; i++) {
      struct job *b = i ? more[i] : j;

      if (job_push(p, b, 0) < 0)
        job_abandon(p, b, &why);
    }
  }
  for (size_t i = 1; !ok && more && i < parts; i++)
    job_free(more[i]);
  free(cuts);
  free(more);
  return ok;
}

/* Unknown outcome: re-read the certificate before anything is re-sent. */
static void verify_write(struct pass *p, struct job *w, const struct outcome *o)
{
  const struct config_retry *r = &p->cfg->retry;
  struct job *v;
  uint64_t delay;

  if (w->q.attempt + 1 >= r->max_attempts ||
      !call_retry_paid(p, w->q.account, JOB_WRITE, o)) {
    call_log(p, LOG_WARN, "write.failed", w, w->op, o, -1, "%s",
             w->q.attempt + 1 >= r->max_attempts
                 ? "outcome unknown after the last attempt"
                 : "outcome unknown; retry budget exhausted");
    job_end(p, w, JOB_FAILED, &o->err);
    return;
  }
  v = job_new(p, JOB_LIST, w->cert);
  if (!v) {
    struct apig_error why = pass_error("internal", "out of memory");
    job_end(p, w, JOB_FAILED, &why);
    return;
  }
  v->purpose = LIST_VERIFY;
  v->verify = w;
  v->q.attempt = 1; /* part of the write's retry: earns no retry budget */
  w->unknown_ms = pass_now_ms(p);
  w->verify_round = 0;
  w->q.attempt++;
  p->res.counts.retries++;
  if (p->metrics)
    p->metrics->retries_total++;
  delay = queue_backoff_ms(&p->queue, w->q.attempt, r->base_delay_ms,
                           r->max_delay_ms, o->retry_after_ms);
  if (job_push(p, v, delay) < 0)
    job_abandon(p, v, &o->err); /* its write ends with it */
}

void write_done(struct pass *p, struct job *j, const struct outcome *o,
                double latency)
{
  uint64_t now = pass_now_ms(p);

  switch (o->cls) {
  case APIG_OK:
    for (size_t k = 0; k < j->nitems; k++) {
      struct pass_item *it = &p->items[j->items[k]];
      it->state = ITEM_WRITTEN;
      it->written_ms = now;
      it->request_id = pass_keep(p, o->err.request_id);
    }
    call_log(p, LOG_INFO, "write.ok", j, j->op, o, latency, NULL);
    job_end(p, j, JOB_DONE, NULL);
    return;
  case APIG_DONE_ALREADY:
    for (size_t k = 0; k < j->nitems; k++)
      item_converge(p, j->items[k]);
    call_log(p, LOG_INFO, "write.ok", j, j->op, o, latency, "%s",
             "already detached");
    job_end(p, j, JOB_DONE, NULL);
    return;
  case APIG_REAUTH:
    if (token_reauth(p, j))
      return;
    /* A token that cannot be renewed is an auth failure. */
    /* fall through */
  case APIG_AUTH_FATAL:
    call_log(p, LOG_ERROR, "write.failed", j, j->op, o, latency, NULL);
    account_block(p, j->q.account, &o->err);
    job_end(p, j, JOB_FAILED, &o->err);
    return;
  case APIG_PERMANENT:
    if (write_many_domains(p, j) &&
        j->q.attempt + 1 < p->cfg->retry.max_attempts) {
      call_log(p, LOG_WARN, "write.retry", j, j->op, o, latency, "%s",
               "batch failed: split to isolate the bad domain(s)");
      if (split_write(p, j))
        return;
    }
    if (write_many_domains(p, j)) {
      /* the bad domain is not known: the others are not failed for good */
      call_log(p, LOG_WARN, "write.failed", j, j->op, o, latency, "%s",
               "batch failed and not split further (retry.max_attempts "
               "spent)");
      job_end(p, j, JOB_FAILED, &o->err);
      return;
    }
    call_log(p, LOG_WARN, "write.failed", j, j->op, o, latency, NULL);
    for (size_t k = 0; k < j->nitems; k++)
      p->items[j->items[k]].permanent = true;
    job_end(p, j, JOB_FAILED, &o->err);
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    if (o->unknown) {
      call_log(p, LOG_WARN, "write.retry", j, j->op, o, latency, "%s",
               "outcome unknown: re-reading before any resend");
      verify_write(p, j, o);
      return;
    }
    call_log(p, LOG_WARN, "write.retry", j, j->op, o, latency, NULL);
    if (j->q.attempt + 1 >= p->cfg->retry.max_attempts) {
      call_log(p, LOG_WARN, "write.failed", j, j->op, o, latency, NULL);
      job_end(p, j, JOB_FAILED, &o->err);
      return;
    }
    call_retry(p, j, o);
    return;
  }
}

/* APIG shows a write only seconds after it was applied (5-10 s), so one re-read
 * right after an unknown outcome cannot tell "not applied" from "not visible
 * yet". A write whose outcome is unknown is re-read (1 s, 2 s, 4 s, 8 s apart)
 * for up to this long, capped by policy.confirm_timeout_s, before it is
 * re-sent: an applied write is not sent twice; one that was not applied waits
 * that long for its resend. */
#define PASS_VERIFY_WINDOW_MS 10000u

static bool verify_again(struct pass *p, struct job *w)
{
  uint64_t window = (uint64_t)p->cfg->policy.confirm_timeout_s * 1000;
  uint64_t elapsed = pass_now_ms(p) - w->unknown_ms;
  uint64_t delay = 1000ull << (w->verify_round < 3 ? w->verify_round : 3);
  struct job *v;

  if (window > PASS_VERIFY_WINDOW_MS)
    window = PASS_VERIFY_WINDOW_MS;
  if (elapsed >= window || !(v = job_new(p, JOB_LIST, w->cert)))
    return false;
  if (delay > window - elapsed)
    delay = window - elapsed;
  v->purpose = LIST_VERIFY;
  v->verify = w;
  v->q.attempt = 1;
  if (job_push(p, v, delay) < 0) {
    v->verify = NULL;
    job_free(v);
    return false;
  }
  w->verify_round++;
  return true;
}

/* Re-read after an unknown outcome: what is in place is done, the rest is
 * re-read again for a while (verify_again), then written again. */
void write_verify_read(struct pass *p, struct job *w, struct live_cert *lc)
{
  size_t keep = 0;

  for (size_t k = 0; k < w->nitems; k++) {
    size_t i = w->items[k];
    if (plan_item_shows(lc, &p->plan.items[i]))
      item_converge(p, i);
    else
      w->items[keep++] = i;
  }
  w->nitems = keep;
  if (keep == 0) {
    job_end(p, w, JOB_DONE, NULL);
    return;
  }
  if (verify_again(p, w))
    return;
  if (job_push(p, w, 0) < 0) {
    struct apig_error why = pass_error("internal", "queue refused a write");
    job_abandon(p, w, &why);
  }
}

/* The confirmation goes when the account's writes should show
 * (pass_confirm.c); a certificate's reads that do not show its writes yet
 * wait longer each time. */
void write_schedule_confirm(struct pass *p, uint32_t cert)
{
  struct pass_cert *c = &p->certs[cert];
  uint64_t delay;
  struct job *j;

  if (c->confirm_queued || p->stopping)
    return;
  j = job_new(p, JOB_LIST, cert);
  if (!j)
    return;
  j->purpose = LIST_CONFIRM;
  delay = confirm_delay(p, cert);
  c->confirm_queued = true;
  c->confirm_round++;
  if (job_push(p, j, delay) < 0) {
    c->confirm_queued = false;
    confirm_ended(p, cert, false);
    job_free(j);
    return;
  }
  confirm_queued(p, j);
  /* a held read is moved when the probe answers, which its speculative
   * pages could not be: it reads its first page first */
  if (!c->confirm_held)
    read_spec_fan_out(p, j, delay);
}

/* What the read sent at sent_ms saw of written item it, for the delay. */
static void seen_add(struct confirm_seen *s, const struct pass_item *it,
                     uint64_t sent_ms, bool shows)
{
  uint64_t after;

  if (!sent_ms || it->written_ms > sent_ms)
    return;
  after = sent_ms - it->written_ms;
  if (shows && (!s->shown || after < s->shown_ms)) {
    s->shown = true;
    s->shown_ms = after;
  } else if (!shows && (!s->unshown || after > s->unshown_ms)) {
    s->unshown = true;
    s->unshown_ms = after;
  }
}

void write_confirm_read(struct pass *p, uint32_t cert, struct live_cert *lc)
{
  struct pass_cert *c = &p->certs[cert];
  uint64_t now = pass_now_ms(p);
  uint64_t timeout = (uint64_t)p->cfg->policy.confirm_timeout_s * 1000;
  size_t confirmed = 0, waiting = 0, timed_out = 0;
  struct log_fields f = LOG_FIELDS_INIT;
  struct confirm_seen seen = {0};

  c->confirm_queued = false;
  for (size_t i = c->item_lo; i < c->item_hi; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    struct pass_item *it = &p->items[i];
    bool shows;
    if (it->state != ITEM_WRITTEN)
      continue;
    /* one lookup per binding: a fleet rollout confirms 80,000 of them */
    shows = plan_item_shows(lc, pi);
    seen_add(&seen, it, c->confirm_sent_ms, shows);
    if (shows) {
      item_converge(p, i);
      confirmed++;
    } else if (now - it->written_ms >= timeout) {
      struct apig_error why = pass_error(
          "confirm-timeout", "the write was accepted but did not show within "
                             "policy.confirm_timeout_s");
      snprintf(why.request_id, sizeof(why.request_id), "%s",
               item_str(it->request_id));
      item_fail(p, i, &why);
      timed_out++;
    } else {
      waiting++;
    }
  }
  pass_cert_fields(p, cert, &f);
  f.op = "list";
  if (confirmed)
    log_event(p->log, LOG_INFO, "confirm.ok", &f, "%zu binding(s) show",
              confirmed);
  if (timed_out)
    log_event(p->log, LOG_WARN, "confirm.timeout", &f,
              "%zu binding(s) did not show in time", timed_out);
  c->confirm_missed |= waiting > 0;
  confirm_learn(p, cert, &seen);
  if (waiting)
    write_schedule_confirm(p, cert);
}
