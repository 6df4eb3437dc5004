/* SPDX-License-Identifier: MIT */
/*
 * pass: one reconciliation pass. Its lifecycle (pass.h), its clock, the
 * pump that turns queued jobs into requests, and pass_transition(), the
 * one place its phase changes. The rest of the engine's pass is in the
 * pass_*.c files (pass_int.h says which does what).
 *
 * Phases (enum phase):
 *   READ   every certificate's bindings are listed, all pages, while the
 *          file's bindings are sorted on the thread pool. Then the plan is
 *          made and its guards checked: a plan-only pass, or a plan that
 *          is refused or cannot be made, ends here.
 *   WRITE  one wave: its bindings' writes in batches through the queue,
 *          each certificate's followed by confirmation reads. Then the
 *          wave is judged (rollout.abort_failure_ratio).
 *   SOAK   between two waves: rollout.soak_s, then the next wave.
 *   DONE   ownership settled, counts and outcome made, handles closed;
 *          done() follows once they are.
 * All work of a phase waits in the queue, is in flight or is on the
 * thread pool, so "none of those" (which the pump sees) is the end of a
 * READ or WRITE phase.
 *
 * Every HTTP request goes through call_submit(); every write through
 * write_dispatch(), the one place that enforces --dry-run.
 */
#include "pass_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "sign.h"

/* ---- the clock (pass.h: struct pass_clock) ------------------------- */

/* Monotonic ms: the queue's time, request and confirmation deadlines. */
uint64_t pass_now_ms(const struct pass *p)
{
  return p->clock ? p->clock->mono_ms(p->clock->arg) : uv_now(p->loop);
}

/* The loop's time brought up to date first: uv_now() is the time the
 * loop last woke, which under load (or valgrind) lags by tens of ms; a
 * pause that must last at least Retry-After from now starts from this. */
uint64_t pass_fresh_ms(struct pass *p)
{
  if (!p->clock)
    uv_update_time(p->loop);
  return pass_now_ms(p);
}

/* Wall-clock ms since the epoch. */
int64_t pass_unix_ms(const struct pass *p)
{
  struct timeval tv;

  if (p->clock)
    return p->clock->unix_ms(p->clock->arg);
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Wall-clock s: signing time, token expiry, ledger and memo times. */
time_t pass_unix_s(const struct pass *p)
{
  return p->clock ? (time_t)(pass_unix_ms(p) / 1000) : time(NULL);
}

/* The real ms a timer waits for delay_ms of the pass's clock. */
uint64_t pass_timer_ms(const struct pass *p, uint64_t delay_ms)
{
  return p->clock ? p->clock->timer_ms(p->clock->arg, delay_ms) : delay_ms;
}

/* Monotonic ns for the soak: uv_hrtime() (the current time, not the
 * loop's cached one), or an injected clock's ms. */
uint64_t pass_soak_now_ns(const struct pass *p)
{
  return p->clock ? p->clock->mono_ms(p->clock->arg) * 1000000u : uv_hrtime();
}

/* ---- small shared things ----------------------------------------------- */

const struct config_account *pass_cert_account(const struct pass *p,
                                               uint32_t cert)
{
  return &p->cfg->accounts[p->cfg->certificates[cert].account];
}

uint32_t pass_cert_account_index(const struct pass *p, uint32_t cert)
{
  return (uint32_t)p->cfg->certificates[cert].account;
}

const struct apig_endpoint *pass_cert_endpoint(const struct pass *p,
                                               uint32_t cert)
{
  return &p->accounts[p->cfg->certificates[cert].account].endpoint;
}

void pass_cert_fields(const struct pass *p, uint32_t cert, struct log_fields *f)
{
  const struct config_certificate *c = &p->cfg->certificates[cert];
  f->account = p->cfg->accounts[c->account].name;
  f->certificate = c->name;
}

void pass_job_fields(const struct pass *p, const struct job *j,
                     struct log_fields *f)
{
  if (j->cert != PASS_NO_CERT) {
    pass_cert_fields(p, j->cert, f);
    return;
  }
  f->account = p->cfg->accounts[j->q.account].name;
  f->certificate = cert_left_name(p, j);
}

/* An error of the pass itself, not of an answer: no request ID. */
struct apig_error pass_error(const char *code, const char *msg)
{
  struct apig_error e = {.request_id = ""};

  snprintf(e.code, sizeof(e.code), "%s", code);
  snprintf(e.msg, sizeof(e.msg), "%s", msg);
  return e;
}

struct keep_chunk {
  struct keep_chunk *next;
  size_t used, size;
  char text[];
};

/* A bump allocator, not obstack (glibc): obstack's out-of-memory handler
 * is one for the whole process, and it exits. */
const char *pass_keep(struct pass *p, const char *s)
{
  struct pass_keep *k = &p->keep;
  struct keep_chunk *c = k->head;
  size_t len;
  char *out;

  if (!s || !*s)
    return NULL;
  for (size_t r = 0; r < sizeof(k->recent) / sizeof(k->recent[0]); r++) {
    if (k->recent[r] && strcmp(k->recent[r], s) == 0)
      return k->recent[r];
  }
  len = strlen(s) + 1;
  if (!c || c->size - c->used < len) {
    size_t size = len > PASS_KEEP_CHUNK ? len : PASS_KEEP_CHUNK;
    if (!(c = malloc(sizeof(*c) + size)))
      return NULL;
    c->next = k->head;
    c->used = 0;
    c->size = size;
    k->head = c;
  }
  out = memcpy(c->text + c->used, s, len);
  c->used += len;
  k->recent[k->next++ % (sizeof(k->recent) / sizeof(k->recent[0]))] = out;
  return out;
}

static void keep_free(struct pass_keep *k)
{
  while (k->head) {
    struct keep_chunk *next = k->head->next;
    free(k->head);
    k->head = next;
  }
  memset(k, 0, sizeof(*k));
}

/* When a copy cannot be made: the certificate still fails, with this. */
static const struct apig_error read_error_nomem = {
    .code = "out-of-memory", .msg = "out of memory", .request_id = ""};

void pass_cert_read_failed(struct pass *p, uint32_t cert,
                           const struct apig_error *why, bool unreachable)
{
  struct pass_cert *c = &p->certs[cert];
  struct apig_error *e = NULL;

  c->read_failed = true;
  read_show_forget(p, cert);
  c->unreachable = c->unreachable || unreachable;
  if (c->read_error && c->read_error != &read_error_nomem)
    e = (struct apig_error *)c->read_error;
  else
    e = malloc(sizeof(*e));
  if (e)
    *e = *why;
  c->read_error = e ? e : &read_error_nomem;
}

static void certs_free(struct pass *p)
{
  for (size_t c = 0; c < p->ncerts; c++) {
    if (p->certs[c].read_error != &read_error_nomem)
      free((void *)p->certs[c].read_error);
  }
  free(p->certs);
}

void pass_refuse(struct pass *p, enum pass_outcome o, const char *event,
                 const char *msg)
{
  p->res.outcome = o;
  snprintf(p->message, sizeof(p->message), "%s", msg);
  log_event(p->log, LOG_ERROR, event, NULL, "%s", msg);
}

/* ---- the pump --------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
  pass_pump(t->data);
}

/* The bindings this pass writes (all but those the daemon's memory holds
 * back: known once the plan is made, then fixed), those of them done with
 * (written, converged or failed) and, of those, the written ones that
 * wait for a confirmation read to show them. */
struct progress_counts {
  uint64_t done, total, confirming;
};

static struct progress_counts progress_counts(const struct pass *p)
{
  struct progress_counts k = {0};

  for (size_t i = 0; p->items && i < p->plan.nitems; i++) {
    const struct pass_item *it = &p->items[i];

    if (it->held)
      continue;
    k.total++;
    k.done += it->state != ITEM_PENDING;
    k.confirming += it->state == ITEM_WRITTEN;
  }
  return k;
}

/* "eta 42s", "eta 3m05s"; "eta ?" before the first binding is done (no
 * rate yet). Rounded up: never "0s" while work remains. */
static void format_eta(char *buf, size_t size, uint64_t done, uint64_t total,
                       uint64_t elapsed_ms)
{
  uint64_t left_s;

  if (done == 0 || elapsed_ms == 0) {
    snprintf(buf, size, "eta ?");
    return;
  }
  left_s = ((total - done) * elapsed_ms + done * 1000 - 1) / (done * 1000);
  if (left_s < 60)
    snprintf(buf, size, "eta %llus", (unsigned long long)left_s);
  else
    snprintf(buf, size, "eta %llum%02llus", (unsigned long long)(left_s / 60),
             (unsigned long long)(left_s % 60));
}

static void progress_bar(char bar[27], uint64_t done, uint64_t total)
{
  size_t fill = total ? (size_t)(25 * done / total) : 25;

  for (size_t i = 0; i < 25; i++)
    bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[25] = '\0';
}

/* One live line on stderr (opts.progress: a terminal that can redraw, text
 * logs), at most every 200 ms: the certificates read while the reads are
 * out, then the bindings written of those the pass writes, their rate
 * since the plan was made and the time left at that rate; once all are
 * written, how many wait for their confirmation read. */
static void progress_line(struct pass *p, bool final)
{
  uint64_t now = pass_now_ms(p), done, total;
  struct progress_counts k;
  char bar[27], tail[48] = "", rate[32] = "";

  if (!p->opts.progress)
    return;
  if (p->items && !p->progress_planned) {
    p->progress_planned = true;
    p->progress_from_ms = now;
  }
  if (final) {
    fputs("\r\033[K", stderr);
    return;
  }
  if (now - p->progress_ms < 200)
    return;
  p->progress_ms = now;
  if (!p->items) {
    total = p->cfg->ncertificates;
    done = total - p->reads_left;
    progress_bar(bar, done, total);
    fprintf(stderr, "\r[%s] %llu/%llu certificates read\033[K", bar,
            (unsigned long long)done, (unsigned long long)total);
    return;
  }
  k = progress_counts(p);
  progress_bar(bar, k.done, k.total);
  if (k.done < k.total) {
    uint64_t el = now - p->progress_from_ms;

    format_eta(tail, sizeof(tail), k.done, k.total, el);
    if (k.done && el)
      snprintf(rate, sizeof(rate), "  %.*f/s", k.done * 1000 < 10 * el ? 1 : 0,
               (double)k.done * 1000.0 / (double)el);
  } else if (k.confirming) {
    snprintf(tail, sizeof(tail), "confirming %llu",
             (unsigned long long)k.confirming);
  }
  fprintf(stderr, "\r[%s] %llu/%llu bindings%s%s%s\033[K", bar,
          (unsigned long long)k.done, (unsigned long long)k.total, rate,
          *tail ? "  " : "", tail);
}

/* Release what the queue allows, then sleep until the next thing can go. */
void pass_pump(struct pass *p)
{
  uint64_t now = pass_now_ms(p), wake = UINT64_MAX;
  struct queue_job *qj;

  if (p->phase == PHASE_DONE)
    return;
  while (!p->stopping && (qj = queue_pop(&p->queue, now, &wake))) {
    struct job *j = qj->data;
    uint32_t a = qj->account;
    bool fed = j->fed;
    if (token_needed(p, a)) {
      /* Not sent: the job waits for the token (renewed after a token
       * error), and the gate is unchanged. */
      queue_complete(&p->queue, qj, QUEUE_FAILURE, now);
      token_park(p, j);
      continue;
    }
    if (fed) { /* sent: the account may make one more */
      j->fed = false;
      p->accounts[a].fed_out--;
    }
    if (j->type == JOB_WRITE)
      write_dispatch(p, j);
    else if (j->type == JOB_CERT)
      cert_dispatch(p, j);
    else
      read_dispatch(p, j);
    if (fed)
      pass_feed(p, a, false);
  }
  for (uint32_t a = 0; !p->stopping && a < p->cfg->naccounts; a++) {
    struct pass_account *pa = &p->accounts[a];
    if (!pa->blocked && !pa->token.value && !pa->token_fetching &&
        pa->nparked) {
      if (pa->token_next_ms <= now)
        token_fetch(p, a);
      else if (pa->token_next_ms < wake)
        wake = pa->token_next_ms;
    }
  }
  progress_line(p, false);

  if (p->in_flight == 0 && p->pool_work == 0 &&
      (p->stopping || queue_pending(&p->queue) == 0)) {
    bool parked = false;
    for (uint32_t a = 0; a < p->cfg->naccounts; a++)
      parked |= p->accounts[a].nparked > 0 && !p->accounts[a].blocked;
    if (parked && !p->stopping) {
      /* waiting for a token fetch retry */
    } else if (p->phase == PHASE_READ || p->phase == PHASE_WRITE ||
               p->phase == PHASE_RETIRE) {
      pass_transition(p, PASS_EV_IDLE);
      return;
    }
  }
  if (wake != UINT64_MAX && !p->stopping)
    uv_timer_start(&p->timer, on_timer,
                   pass_timer_ms(p, wake > now ? wake - now : 1), 0);
}

/* ---- phases ----------------------------------------------------------- */

static void release(struct pass *p);

static void on_handle_closed(uv_handle_t *h)
{
  struct pass *p = h->data;

  if (--p->open_handles > 0)
    return;
  if (p->free_pending) /* pass_start failed half-way; pass_free ran */
    release(p);
  else if (p->done)
    p->done(p, p->done_arg); /* may free p */
}

static void finish(struct pass *p)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[10];
  struct http_stats hs;
  bool any_read = false;

  p->res.ended_ms = pass_unix_ms(p);
  owner_settle(p);
  result_count(p);
  for (size_t c = 0; c < p->cfg->ncertificates; c++)
    any_read |= !p->certs[c].read_failed;
  if (p->res.outcome == PASS_CONVERGED) {
    if (p->stopping && p->res.counts.pending)
      p->res.outcome = PASS_INTERRUPTED;
    else if (!any_read && p->cfg->ncertificates)
      p->res.outcome = PASS_FAILED;
    else if (p->res.counts.failed || p->res.counts.pending)
      p->res.outcome = PASS_PARTIAL;
    else {
      for (size_t c = 0; c < p->cfg->ncertificates; c++) {
        if (p->certs[c].read_failed)
          p->res.outcome = PASS_PARTIAL;
      }
    }
  }
  progress_line(p, true);
  kv[0] = (struct log_kv){"attached", (long long)p->res.counts.attached};
  kv[1] = (struct log_kv){"changed", (long long)p->res.counts.changed};
  kv[2] = (struct log_kv){"detached", (long long)p->res.counts.detached};
  kv[3] = (struct log_kv){"unchanged", (long long)p->res.counts.unchanged};
  kv[4] = (struct log_kv){"failed", (long long)p->res.counts.failed};
  kv[5] = (struct log_kv){"pending", (long long)p->res.counts.pending};
  kv[6] = (struct log_kv){"requests", (long long)p->res.counts.requests};
  kv[7] = (struct log_kv){"retries", (long long)p->res.counts.retries};
  /* for benchmarks and operators: TLS handshakes, pass wall time */
  http_get_stats(p->http, &hs);
  kv[8] = (struct log_kv){"connections", (long long)hs.connects};
  kv[9] = (struct log_kv){"duration_ms",
                          (long long)(p->res.ended_ms - p->res.started_ms)};
  f.kv = kv;
  f.nkv = 10;
  log_event(p->log, LOG_INFO, "pass.done", &f, "outcome %s in %.1f s",
            pass_outcome_name(p->res.outcome),
            (double)(p->res.ended_ms - p->res.started_ms) / 1000.0);
  uv_timer_stop(&p->timer);
  uv_timer_stop(&p->soak);
  uv_close((uv_handle_t *)&p->timer, on_handle_closed);
  uv_close((uv_handle_t *)&p->soak, on_handle_closed);
}

/* Entering a phase. */
static void enter(struct pass *p, enum phase next)
{
  p->phase = next;
  switch (next) {
  case PHASE_READ:
    break;
  case PHASE_WRITE:
    rollout_start_wave(p);
    pass_pump(p);
    break;
  case PHASE_SOAK:
    if (rollout_arm_soak(p) < 0)
      enter(p, PHASE_DONE);
    break;
  case PHASE_RETIRE:
    pass_pump(p);
    break;
  case PHASE_DONE:
    finish(p);
    break;
  }
}

/*
 * The one place the phase changes, when the work of the phase is over
 * (ev says how it is known):
 *
 *   READ  -idle->  plan (rollout_plan): WRITE (wave 1), or DONE when nothing
 *                  is to be written (plan only, refused, failed)
 *   READ  -idle or stop, stopping->  DONE (interrupted)
 *   WRITE -idle->  the wave is over (rollout_wave_over): SOAK before the next
 *                  wave, or DONE (the last wave, aborted, stopping)
 *   WRITE -stop->  DONE (nothing in flight: what was queued is dropped)
 *   SOAK  -soaked->  WRITE (the next wave) once soak_until_ns has
 *                  passed, else the soak waits on (its timer can fire
 *                  early); DONE when stopping
 *   SOAK  -stop->  DONE
 *   READ or WRITE -> DONE, a pass that writes and was not refused,
 *                  aborted or stopped: RETIRE first when a previous
 *                  object of a certificate from files is due
 *                  (cert_retire_start)
 *   RETIRE -idle or stop->  DONE
 *
 * DONE is final: finish() settles ownership, counts, logs and closes the
 * handles; done() follows once they are closed.
 */
void pass_transition(struct pass *p, enum pass_event ev)
{
  enum phase next = PHASE_DONE;

  switch (p->phase) {
  case PHASE_READ:
    if (p->stopping)
      p->res.outcome = PASS_INTERRUPTED;
    else
      next = rollout_plan(p);
    break;
  case PHASE_WRITE:
    if (ev == PASS_EV_IDLE)
      next = rollout_wave_over(p);
    break;
  case PHASE_SOAK:
    if (ev == PASS_EV_IDLE)
      return; /* the soak's timer ends it */
    if (ev == PASS_EV_SOAKED && !p->stopping) {
      if (pass_soak_now_ns(p) < p->soak_until_ns) {
        if (rollout_arm_soak(p) == 0)
          return;
        break; /* no timer: done */
      }
      p->wave++;
      next = PHASE_WRITE;
    }
    break;
  case PHASE_RETIRE:
    break;
  case PHASE_DONE:
    return;
  }
  if (next == PHASE_DONE && p->phase != PHASE_RETIRE &&
      p->phase != PHASE_SOAK && p->res.outcome == PASS_CONVERGED &&
      !p->stopping && cert_retire_start(p))
    next = PHASE_RETIRE;
  enter(p, next);
}

/* ---- lifecycle --------------------------------------------------------- */

/* An aksk account's secret key, keyed into HMAC once for the pass's
 * signatures. One that cannot be made (an empty key) stays NULL: each
 * request then fails to sign as before. */
static int ready_sign_key(const struct config_account *acct,
                          struct pass_account *pa)
{
  if (acct->auth_method != CONFIG_AUTH_AKSK || !acct->secret_key.value)
    return 0;
  int rc =
      sign_key_new(acct->secret_key.value, acct->secret_key.len, &pa->sign_key);
  return rc == -ENOMEM ? rc : 0;
}

/* ---- feeding the queue ------------------------------------------------ */

/* Each account's certificates in the file's order, linked through
 * pass_cert.feed_after (one walk, whatever the number of accounts). */
static void feed_link(struct pass *p)
{
  for (uint32_t a = 0; a < p->cfg->naccounts; a++)
    p->accounts[a].feed_first = UINT32_MAX;
  for (size_t c = p->cfg->ncertificates; c-- > 0;) {
    struct pass_account *pa =
        &p->accounts[pass_cert_account_index(p, (uint32_t)c)];
    p->certs[c].feed_after = pa->feed_first;
    pa->feed_first = (uint32_t)c;
  }
  for (uint32_t a = 0; a < p->cfg->naccounts; a++)
    p->accounts[a].feed_next = p->accounts[a].feed_first;
}

static uint32_t feed_window(const struct pass *p, uint32_t a)
{
  uint32_t most = p->cfg->accounts[a].limits.max_in_flight;

  return most > PASS_FEED_WINDOW / 2 ? 2 * most : PASS_FEED_WINDOW;
}

/* A certificate starts with its first read (one from files may first
 * need its object found) and its Show. Either that cannot be queued
 * (out of memory) leaves the certificate as a failed read or Show would. */
static void start_cert(struct pass *p, uint32_t cert)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct apig_error why;

  if (cert_start_read(p, cert) < 0) {
    why = pass_error("internal", "cannot queue the certificate's first read");
    pass_cert_read_failed(p, cert, &why, false);
    p->reads_left--;
  } else if (read_start_show(p, cert) < 0) {
    pass_cert_fields(p, cert, &f);
    log_event(p->log, LOG_WARN, "certificate.show_failed", &f,
              "cannot queue its Show: names and expiry unknown in this pass");
  }
}

void pass_feed(struct pass *p, uint32_t a, bool all)
{
  struct pass_account *pa = &p->accounts[a];
  uint32_t window = feed_window(p, a);

  if (p->phase != PHASE_READ && p->phase != PHASE_WRITE)
    return;
  p->feeding = true;
  while (pa->feed_next != UINT32_MAX && (all || pa->fed_out < window)) {
    uint32_t cert = pa->feed_next;
    pa->feed_next = p->certs[cert].feed_after;
    if (p->phase == PHASE_READ)
      start_cert(p, cert);
    else
      rollout_queue_cert(p, cert);
  }
  p->feeding = false;
}

void pass_feed_rewind(struct pass *p)
{
  for (uint32_t a = 0; a < p->cfg->naccounts; a++) {
    p->accounts[a].feed_next = p->accounts[a].feed_first;
    pass_feed(p, a, false);
  }
}

static int cmp_id(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The gateways' instance IDs, sorted: the live bindings read share these
 * copies (apig_bindings_share_instances) instead of one each. The pass's
 * own, as the live state they serve. */
static int instance_ids_make(struct pass *p)
{
  const struct config *cfg = p->cfg;

  p->instance_ids =
      calloc(cfg->ngateways ? cfg->ngateways : 1, sizeof(*p->instance_ids));
  if (!p->instance_ids)
    return -ENOMEM;
  for (size_t g = 0; g < cfg->ngateways; g++) {
    if (!(p->instance_ids[g] = strdup(cfg->gateways[g].instance_id)))
      return -ENOMEM;
    p->ninstance_ids++;
  }
  qsort(p->instance_ids, p->ninstance_ids, sizeof(*p->instance_ids), cmp_id);
  return 0;
}

static void instance_ids_free(struct pass *p)
{
  for (size_t g = 0; g < p->ninstance_ids; g++)
    free(p->instance_ids[g]);
  free(p->instance_ids);
}

static int alloc_state(struct pass *p)
{
  const struct config *cfg = p->cfg;
  struct queue_account_limits *lim =
      calloc(cfg->naccounts ? cfg->naccounts : 1, sizeof(*lim));
  int rc;

  p->accounts =
      calloc(cfg->naccounts ? cfg->naccounts : 1, sizeof(*p->accounts));
  p->certs =
      calloc(cfg->ncertificates ? cfg->ncertificates : 1, sizeof(*p->certs));
  p->ncerts = p->certs ? cfg->ncertificates : 0;
  p->binding_item =
      malloc((cfg->nbindings ? cfg->nbindings : 1) * sizeof(*p->binding_item));
  if (!lim || !p->accounts || !p->certs || !p->binding_item) {
    free(lim);
    return -ENOMEM;
  }
  for (size_t i = 0; i < cfg->nbindings; i++)
    p->binding_item[i] = UINT32_MAX;
  for (size_t a = 0; a < cfg->naccounts; a++) {
    lim[a].rps = cfg->accounts[a].limits.requests_per_second;
    lim[a].burst = cfg->accounts[a].limits.burst;
    lim[a].max_in_flight = cfg->accounts[a].limits.max_in_flight;
    p->accounts[a].retry_credit[JOB_LIST] = PASS_RETRY_CREDIT_START;
    p->accounts[a].retry_credit[JOB_WRITE] = PASS_RETRY_CREDIT_START;
    p->accounts[a].retry_credit[JOB_CERT] = PASS_RETRY_CREDIT_START;
    /* once per pass, not per request; an invalid one stays zeroed and
     * each URL built from it fails (-EINVAL), as it did before */
    if (apig_endpoint_parse(cfg->accounts[a].endpoint,
                            &p->accounts[a].endpoint) == -ENOMEM ||
        ready_sign_key(&cfg->accounts[a], &p->accounts[a]) == -ENOMEM) {
      free(lim);
      return -ENOMEM;
    }
  }
  feed_link(p);
  confirm_init(p);
  rc = queue_init(&p->queue, (uint32_t)cfg->naccounts, lim,
                  (uint32_t)(cfg->ncertificates ? cfg->ncertificates : 1),
                  p->opts.seed ? p->opts.seed
                               : (uint64_t)pass_unix_ms(p) ^ (uint64_t)getpid(),
                  pass_now_ms(p));
  free(lim);
  if (rc == 0)
    rc = live_state_init(&p->live, cfg->ncertificates);
  if (rc == 0)
    rc = instance_ids_make(p);
  if (rc == 0)
    rc = read_shows_init(p);
  return rc;
}

/* The plan's sort of the file's bindings needs nothing live: it runs on
 * the thread pool while the reads are out, not between the last read and
 * the first write (80,000 bindings: a sort by strcmp over all of them).
 * The reads are not done (pump) until it is back. */
struct wanted_work {
  uv_work_t req; /* first: the request is the struct */
  struct pass *p;
  struct plan_wanted w;
  int rc;
};

static void sort_wanted_work(uv_work_t *req)
{
  struct wanted_work *ww = (struct wanted_work *)req;

  ww->rc = plan_wanted_make(ww->p->cfg, &ww->w);
}

static void sort_wanted_done(uv_work_t *req, int status)
{
  struct wanted_work *ww = (struct wanted_work *)req;
  struct pass *p = ww->p;

  p->pool_work--;
  if (status == 0 && ww->rc == 0) {
    p->wanted = ww->w; /* taken */
  } else {
    plan_wanted_free(&ww->w); /* the plan sorts them itself */
  }
  free(ww);
  pass_pump(p);
}

static void sort_wanted_off_loop(struct pass *p)
{
  struct wanted_work *ww = calloc(1, sizeof(*ww));

  if (!ww)
    return;
  ww->p = p;
  if (uv_queue_work(p->loop, &ww->req, sort_wanted_work, sort_wanted_done) <
      0) {
    free(ww);
    return;
  }
  p->pool_work++;
}

/* The bounds of what the server's answers can make this pass hold (see
 * PASS_BUFFER_BASE). */
static void set_memory_bounds(struct pass *p)
{
  size_t in_flight = 0;

  for (size_t a = 0; a < p->cfg->naccounts; a++)
    in_flight += p->cfg->accounts[a].limits.max_in_flight;
  http_set_max_buffered(p->http,
                        PASS_BUFFER_BASE + in_flight * PASS_BUFFER_PER_REQUEST);
  p->live_entries_max =
      PASS_LIVE_EXTRA + PASS_LIVE_PER_BINDING * p->cfg->nbindings;
}

struct pass *pass_new(const struct pass_deps *d, const struct pass_opts *o)
{
  struct pass *p = calloc(1, sizeof(*p));

  if (!p)
    return NULL;
  p->loop = d->loop;
  p->http = d->http;
  p->cfg = d->cfg;
  p->ledger = d->ledger;
  p->metrics = d->metrics;
  p->log = d->log;
  p->clock = d->clock;
  p->opts = *o;
  p->res.outcome = PASS_CONVERGED;
  p->res.message = p->message;
  p->res.plan = &p->plan;
  p->res.live = &p->live;
  p->phase = PHASE_READ;
  return p;
}

/* The pass's two timers; once they exist, the pass ends only through
 * done(). A half-made pair is closed (pass_free waits for that). */
static int init_handles(struct pass *p)
{
  int rc = uv_timer_init(p->loop, &p->timer);

  if (rc < 0)
    return rc;
  p->timer.data = p->soak.data = p;
  p->open_handles = 1;
  rc = uv_timer_init(p->loop, &p->soak);
  if (rc < 0) {
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
    return rc;
  }
  p->open_handles = 2;
  return 0;
}

int pass_start(struct pass *p, void (*done)(struct pass *p, void *arg),
               void *arg)
{
  const struct config *cfg = p->cfg;
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[2];
  struct log_flag flags[1];
  int rc;

  p->res.started_ms = pass_unix_ms(p);
  rc = cert_view_make(p);
  if (rc == 0)
    rc = alloc_state(p);
  /* Handles before the first job: once they exist the pass ends only
   * through done(), and nothing after them fails as a whole (a
   * certificate that cannot be started fails alone), so no queued job is
   * left behind by a start that failed. */
  if (rc == 0)
    rc = init_handles(p);
  if (rc < 0)
    return rc; /* pass_free() cleans up; done is never called */
  set_memory_bounds(p);

  kv[0] = (struct log_kv){"certificates", (long long)cfg->ncertificates};
  kv[1] = (struct log_kv){"bindings", (long long)cfg->nbindings};
  flags[0] = (struct log_flag){"dry_run", p->opts.dry_run || !p->opts.write};
  f.kv = kv;
  f.nkv = 2;
  f.flags = flags;
  f.nflags = 1;
  log_event(p->log, LOG_INFO, "pass.start", &f, "mode %s",
            config_mode_name(cfg->policy.mode));
  token_take_cached(p);

  p->reads_left = cfg->ncertificates;
  for (uint32_t a = 0; a < cfg->naccounts; a++)
    pass_feed(p, a, false);
  cert_left_start(p);
  p->started = true;
  p->done = done;
  p->done_arg = arg;
  sort_wanted_off_loop(p);
  pass_pump(p);
  return 0;
}

void pass_stop(struct pass *p)
{
  struct queue_job *qj;

  if (!p || !p->started || p->stopping || p->phase == PHASE_DONE)
    return;
  /* Certificates not started yet leave as their queued reads do. */
  for (uint32_t a = 0; a < p->cfg->naccounts; a++)
    pass_feed(p, a, true);
  p->stopping = true;
  uv_timer_stop(&p->timer);
  /* Queued work is dropped: writes stay pending, nothing is sent. */
  for (uint32_t a = 0; a < p->cfg->naccounts; a++) {
    while ((qj = queue_drain_account(&p->queue, a)))
      job_end(p, qj->data, JOB_DROPPED, NULL);
    for (size_t k = 0; k < p->accounts[a].nparked; k++)
      job_end(p, p->accounts[a].parked[k], JOB_DROPPED, NULL);
    p->accounts[a].nparked = 0;
  }
  if (p->phase == PHASE_SOAK || (p->in_flight == 0 && p->pool_work == 0))
    pass_transition(p, PASS_EV_STOP);
}

static void release(struct pass *p)
{
  if (p->accounts) {
    for (size_t a = 0; a < p->cfg->naccounts; a++) {
      auth_token_clear(&p->accounts[a].token);
      apig_endpoint_free(&p->accounts[a].endpoint);
      sign_key_free(p->accounts[a].sign_key);
      free(p->accounts[a].parked);
    }
  }
  free(p->items);
  keep_free(&p->keep);
  free(p->accounts);
  certs_free(p);
  free(p->binding_item);
  free(p->wave_end);
  cert_view_free(p);
  cert_left_free(p);
  plan_free(&p->plan);
  plan_wanted_free(&p->wanted);
  live_state_free(&p->live);
  instance_ids_free(p);
  read_shows_free(p);
  queue_free(&p->queue);
  free(p);
}

void pass_free(struct pass *p)
{
  if (!p)
    return;
  if (p->open_handles > 0) { /* its handles are closing: freed after */
    p->free_pending = true;
    return;
  }
  release(p);
}

const struct pass_result *pass_result(const struct pass *p)
{
  return &p->res;
}

const struct config *pass_config(const struct pass *p)
{
  return p->cfg;
}

const struct apig_error *pass_read_error(const struct pass *p, size_t cert)
{
  if (!p->certs || cert >= p->cfg->ncertificates || !p->certs[cert].read_failed)
    return NULL;
  return p->certs[cert].read_error;
}

bool pass_ledger_dirty(const struct pass *p)
{
  return p->ledger_dirty;
}
