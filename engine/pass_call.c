/* SPDX-License-Identifier: MIT */
/*
 * pass_call: one request of the pass. call_submit signs and sends it
 * (http.h); on_call_done turns the answer into one struct outcome (class,
 * unknown outcome, the error, Retry-After), counts it, updates the queue
 * and the account (rate cut, pause, unreachable, blocked) and hands it to
 * the read, write or token code. Retries and their budget are here too.
 */
#include "pass_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "metrics.h"

static void on_call_done(struct http_request *rq, struct http_response *rs,
                         void *arg);

void call_free(struct call *c)
{
  apig_url_free(&c->url);
  if (c->body) {
    OPENSSL_cleanse(c->body, c->body_len);
    free(c->body);
  }
  free(c);
}

/* Sign and submit. Takes ownership of c. */
int call_submit(struct pass *p, struct call *c,
                const struct config_account *acct, const char *method,
                bool sign)
{
  struct curl_slist *headers = NULL;
  int rc = 0;

  if (sign) {
    const char *token = acct->auth_method == CONFIG_AUTH_PASSWORD
                            ? p->accounts[c->account].token.value
                            : NULL;
    rc = auth_add_headers_key(acct, p->accounts[c->account].sign_key, token,
                              method, c->url.host, c->url.path, c->url.query,
                              c->body, c->body_len, pass_unix_s(p), &headers);
    if (c->job)
      c->job->token_gen = p->accounts[c->account].token_gen;
  } else {
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/json;charset=utf8");
    if (!h)
      rc = -ENOMEM;
    headers = h;
  }
  if (rc == 0) {
    c->rq.method = method;
    c->rq.url = c->url.url;
    c->rq.headers = headers;
    c->rq.body = c->body;
    c->rq.body_len = c->body_len;
    c->rq.ca_file = acct->ca_file;
    c->rq.user = c;
    c->rq.take_headers = true; /* wiped and freed by http, not copied */
    headers = NULL;
    rc = http_submit(p->http, &c->rq, on_call_done, p);
  }
  auth_headers_free(headers); /* only when not submitted */
  if (rc == 0) {
    p->in_flight++;
    p->res.counts.requests++;
  }
  return rc;
}

/* A bounded copy of a short text (snprintf's engine for "%s" cost more
 * than the copy, on every answer). */
static void copy_text(char *dst, size_t size, const char *src)
{
  size_t n = strnlen(src, size - 1);

  memcpy(dst, src, n);
  dst[n] = '\0';
}

static void read_outcome(const struct call *c, const struct http_response *rs,
                         struct outcome *o)
{
  /* A cut or aborted body has a status but is still a transport failure. */
  bool transport = rs->curl_code != CURLE_OK || rs->status == 0;

  memset(o, 0, sizeof(*o));
  o->status = rs->status;
  if (rs->status >= 300 && rs->body)
    apig_parse_error(rs->body, rs->body_len, &o->err);
  if (!o->err.request_id[0])
    copy_text(o->err.request_id, sizeof(o->err.request_id), rs->request_id);
  if (transport) {
    snprintf(o->err.code, sizeof(o->err.code), "%s",
             rs->too_large ? "response-too-large" : "transport");
    snprintf(o->err.msg, sizeof(o->err.msg), "%s", rs->error);
  }
  o->cls = apig_classify(c->op, rs->status, transport, o->err.code, o->err.msg);
  o->unknown =
      apig_outcome_unknown(c->op, rs->status, transport, rs->maybe_sent);
  o->retry_after_ms =
      rs->retry_after_s > 0 ? (uint64_t)rs->retry_after_s * 1000 : 0;
}

static void count_request(struct pass *p, enum apig_op op,
                          const struct outcome *o)
{
  char status[24];
  const char *code = o->err.code;

  if (!p->metrics)
    return;
  if (!code[0]) {
    snprintf(status, sizeof(status), "%ld", o->status);
    code = status;
  }
  metrics_count_request(p->metrics, apig_op_name(op), code);
}

/* What the queue learns from an answer to a call of op. A Show refused
 * with 403 says that these credentials may not show certificates, not
 * that they are wrong: the account's lists and writes go on (show_done in
 * pass_read.c), so the queue must not block the account for it. */
static enum queue_outcome queue_outcome_of(enum apig_op op,
                                           const struct outcome *o)
{
  if (op == APIG_OP_CERT_SHOW && o->status == 403)
    return QUEUE_FAILURE;
  switch (o->cls) {
  case APIG_OK:
  case APIG_DONE_ALREADY:
  case APIG_PERMANENT: /* the server accepted who we are */
    return QUEUE_SUCCESS;
  case APIG_THROTTLED:
    return QUEUE_THROTTLED;
  case APIG_AUTH_FATAL:
    return QUEUE_AUTH_FAILED;
  case APIG_RETRY:
  case APIG_REAUTH:
    break;
  }
  return QUEUE_FAILURE;
}

__attribute__((format(printf, 8, 9))) void
call_log(struct pass *p, enum log_level lvl, const char *event,
         const struct job *j, enum apig_op op, const struct outcome *o,
         double latency, const char *fmt, ...)
{
  struct log_fields f = LOG_FIELDS_INIT;
  const char *doms[64];
  size_t nd = 0;
  char msg[256] = "";
  va_list ap;

  if (!log_enabled(p->log, lvl))
    return;
  pass_job_fields(p, j, &f);
  f.op = apig_op_name(op);
  f.attempt = (long)j->q.attempt + 1;
  if (o) {
    f.http_status = o->status;
    f.error_code = o->err.code[0] ? o->err.code : NULL;
    f.error_msg = o->err.msg[0] ? o->err.msg : NULL;
    f.request_id = o->err.request_id[0] ? o->err.request_id : NULL;
  }
  f.latency_ms = latency;
  for (size_t k = 0; k < j->nitems && nd < 64; k++) {
    const char *d = p->plan.items[j->items[k]].domain;
    if (nd == 0 || strcmp(doms[nd - 1], d) != 0)
      doms[nd++] = d;
  }
  f.domains = doms;
  f.ndomains = nd;
  if (fmt) {
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
  }
  log_event(p->log, lvl, event, &f, fmt ? "%s" : NULL, msg);
}

bool call_retry_paid(struct pass *p, uint32_t account, enum job_type kind,
                     const struct outcome *o)
{
  struct pass_account *pa = &p->accounts[account];

  if (o->cls == APIG_THROTTLED)
    return true;
  if (pa->retry_credit[kind] >= 1) {
    pa->retry_credit[kind] -= 1;
    return true;
  }
  return queue_retry_allowed(&p->queue, account);
}

/* Retry a job after backoff, or give up when attempts or budget say so. */
void call_retry(struct pass *p, struct job *j, const struct outcome *o)
{
  const struct config_retry *r = &p->cfg->retry;
  uint32_t attempt = j->q.attempt + 1;
  uint64_t delay;
  bool out_of_attempts = attempt >= r->max_attempts;

  /* Out of attempts or of retry budget: a storm of failures must not
   * multiply the traffic. */
  if (out_of_attempts || !call_retry_paid(p, j->q.account, j->type, o)) {
    call_log(p, LOG_WARN,
             j->type == JOB_WRITE      ? "write.failed"
             : j->purpose == LIST_SHOW ? "certificate.show_failed"
                                       : "list.failed",
             j,
             j->type == JOB_WRITE || j->purpose == LIST_SHOW ? j->op
                                                             : APIG_OP_LIST,
             o, -1,
             out_of_attempts ? "giving up after %u attempts"
                             : "retry budget exhausted after %u attempt(s)",
             attempt);
    job_abandon(p, j, &o->err);
    return;
  }
  delay = queue_backoff_ms(&p->queue, attempt, r->base_delay_ms,
                           r->max_delay_ms, o->retry_after_ms);
  j->q.attempt = attempt;
  p->res.counts.retries++;
  if (p->metrics)
    p->metrics->retries_total++;
  if (job_push(p, j, delay) < 0)
    job_abandon(p, j, &o->err);
}

/* Nothing more of account a is sent in this pass. Its certificates not
 * started yet are queued first, so that the caller's drain of its queue
 * ends them with its other jobs. */
static void stop_sending(struct pass *p, uint32_t a)
{
  pass_feed(p, a, true);
  p->accounts[a].blocked = true;
  queue_block_account(&p->queue, a);
}

void account_block(struct pass *p, uint32_t a, const struct apig_error *why)
{
  struct pass_account *acct = &p->accounts[a];
  struct queue_job *qj;
  struct log_fields f = LOG_FIELDS_INIT;

  if (acct->blocked)
    return;
  stop_sending(p, a);
  f.account = p->cfg->accounts[a].name;
  f.error_code = why->code[0] ? why->code : NULL;
  f.error_msg = why->msg[0] ? why->msg : NULL;
  f.request_id = why->request_id[0] ? why->request_id : NULL;
  log_event(p->log, LOG_ERROR, "account.blocked", &f,
            "authentication or permission failure: no more requests for "
            "this account in this pass (retrying could lock the key)");
  while ((qj = queue_drain_account(&p->queue, a)))
    job_abandon(p, qj->data, why);
  for (size_t k = 0; k < acct->nparked; k++)
    job_abandon(p, acct->parked[k], why);
  acct->nparked = 0;
}

/* Throttled: say so when the queue cut the account's rate. */
static void log_rate_cut(struct pass *p, const struct job *j, double before)
{
  double after = queue_account_rate(&p->queue, j->q.account);
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[] = {{"rate_milli_rps", (long long)llround(after * 1000)}};

  if (!(after < before))
    return;
  f.account = p->cfg->accounts[j->q.account].name;
  f.kv = kv;
  f.nkv = 1;
  log_event(p->log, LOG_WARN, "rate.cut", &f,
            "throttled: request rate cut from %.2f to %.2f req/s", before,
            after);
}

/* APIG's throttling answer names the account's limit ("policy user over
 * ratelimit,limit:5,time:1 second"): an account configured faster than
 * that is throttled again whenever its rate recovers, so its rate stays
 * at the server's for the rest of the pass. */
static void limit_to_server_rate(struct pass *p, const struct job *j,
                                 const struct outcome *o)
{
  const char *at = strstr(o->err.msg, "limit:");
  struct log_fields f = LOG_FIELDS_INIT;
  double before = queue_account_rate(&p->queue, j->q.account);
  double rps;
  long limit, secs;

  if (!at || sscanf(at, "limit:%ld,time:%ld second", &limit, &secs) != 2 ||
      limit <= 0 || secs <= 0)
    return;
  rps = (double)limit / (double)secs;
  if (!(rps < p->cfg->accounts[j->q.account].limits.requests_per_second))
    return;
  queue_limit_rate(&p->queue, j->q.account, rps, pass_now_ms(p));
  if (!(queue_account_rate(&p->queue, j->q.account) < before))
    return;
  f.account = p->cfg->accounts[j->q.account].name;
  log_event(p->log, LOG_WARN, "rate.limit", &f,
            "the server's limit is %.2f req/s: the account's rate stays "
            "below it",
            rps);
}

/*
 * A dead or silent endpoint bounds the pass. Until one of its
 * requests succeeds, an account has one request in flight (the queue's
 * gate). When that lone request fails max_attempts times in a row for a
 * transport reason (no HTTP answer: connect, TLS, timeout), the account is
 * unreachable for this pass: nothing more is sent to it, its certificates
 * are not read and their bindings stay pending with the reason (status),
 * and the pass ends (exit 1) once the other accounts are done.
 *
 * With the defaults (http: connect timeout 10 s, which covers the TLS
 * handshake, total 30 s; retry: max_attempts 6, base_delay_ms 500) an
 * endpoint that accepts TCP and never speaks TLS costs 6 x 10 s = 60 s,
 * plus at most the backoffs of one certificate's read between its
 * attempts, 1 + 2 + 4 + 8 + 16 = 31 s, so the pass ends within ~91 s
 * (< 3 min) however many certificates it has (the next lone request is
 * usually another certificate's read, due at once). One that completes
 * TLS and never answers HTTP costs the total timeout instead: at most
 * 6 x 30 + 31 = 211 s.
 */
static void cert_unreachable(struct pass *p, uint32_t cert,
                             const struct apig_error *why)
{
  pass_cert_read_failed(p, cert, why, true);
}

/* A job of an unreachable account leaves, its bindings pending. */
static void leave_unreached(struct pass *p, struct job *j,
                            const struct apig_error *why)
{
  if ((j->type == JOB_LIST && j->purpose == LIST_INITIAL) ||
      cert_job_first_read(j))
    cert_unreachable(p, j->cert, why);
  job_end(p, j, JOB_DROPPED, NULL);
}

static void account_unreachable(struct pass *p, struct job *failed,
                                const struct outcome *o)
{
  uint32_t a = failed->q.account;
  struct pass_account *acct = &p->accounts[a];
  struct queue_job *qj;
  struct log_fields f = LOG_FIELDS_INIT;
  struct apig_error why = {.code = "unreachable"};

  /* curl's text is short; %.200s keeps the line whole */
  snprintf(why.msg, sizeof(why.msg),
           "account %.64s unreachable: its first request failed %u times "
           "without an answer (%.200s); not read this pass",
           p->cfg->accounts[a].name, acct->first_failures,
           o->err.msg[0] ? o->err.msg : "transport error");
  stop_sending(p, a);
  f.account = p->cfg->accounts[a].name;
  f.error_code = why.code;
  f.error_msg = why.msg;
  log_event(p->log, LOG_ERROR, "account.unreachable", &f,
            "no more requests for this account in this pass");
  leave_unreached(p, failed, &why);
  while ((qj = queue_drain_account(&p->queue, a)))
    leave_unreached(p, qj->data, &why);
  for (size_t k = 0; k < acct->nparked; k++)
    leave_unreached(p, acct->parked[k], &why);
  acct->nparked = 0;
}

/* After a completion: true when it made the job's account unreachable
 * (the job is then gone). */
static bool first_request_failed(struct pass *p, struct job *j,
                                 const struct http_response *rs,
                                 const struct outcome *o)
{
  struct pass_account *acct = &p->accounts[j->q.account];

  if (queue_account_open(&p->queue, j->q.account) || acct->blocked)
    return false;
  if (rs->status != 0) { /* it answered: reachable, whatever it said */
    acct->first_failures = 0;
    return false;
  }
  if (++acct->first_failures < p->cfg->retry.max_attempts)
    return false;
  account_unreachable(p, j, o);
  return true;
}

/* A Retry-After holds back the whole account, not only the request that
 * got it: APIG throttles per user. The request itself waits at
 * least as long (queue_backoff_ms takes Retry-After as its floor). */
static void pause_account(struct pass *p, const struct job *j,
                          const struct outcome *o)
{
  struct log_fields f = LOG_FIELDS_INIT;
  uint64_t now = pass_fresh_ms(p);
  uint64_t before = queue_account_paused_until(&p->queue, j->q.account);
  uint64_t until;

  if (o->retry_after_ms == 0 ||
      (o->cls != APIG_THROTTLED && o->cls != APIG_RETRY))
    return;
  queue_pause_account(&p->queue, j->q.account, now, o->retry_after_ms);
  until = queue_account_paused_until(&p->queue, j->q.account);
  if (until == before)
    return;
  pass_job_fields(p, j, &f);
  f.http_status = o->status;
  f.error_code = o->err.code[0] ? o->err.code : NULL;
  f.request_id = o->err.request_id[0] ? o->err.request_id : NULL;
  log_event(p->log, LOG_WARN, "account.paused", &f,
            "Retry-After: no request of this account for %.1f s",
            (double)(until - now) / 1000.0);
}

static void on_call_done(struct http_request *rq, struct http_response *rs,
                         void *arg)
{
  struct pass *p = arg;
  struct call *c = rq->user;
  struct job *j = c->job;
  struct outcome o;

  p->in_flight--;
  read_outcome(c, rs, &o);
  count_request(p, c->op, &o);
  if (!j) {
    token_done(p, c, rs, &o);
  } else if (rs->aborted) {
    /* Stopped before an answer: a write may have been applied, so its
     * bindings stay pending for the next pass to read. */
    queue_complete(&p->queue, &j->q, QUEUE_FAILURE, pass_now_ms(p));
    job_end(p, j, JOB_DROPPED, NULL);
  } else {
    struct pass_account *pa = &p->accounts[j->q.account];
    double rate = queue_account_rate(&p->queue, j->q.account);
    enum queue_outcome qo = queue_outcome_of(c->op, &o);
    /* The queue blocks the account for it: the account's certificates not
     * started yet are queued first, to leave with its other jobs. */
    if (qo == QUEUE_AUTH_FAILED)
      pass_feed(p, j->q.account, true);
    queue_complete(&p->queue, &j->q, qo, pass_now_ms(p));
    if (o.cls == APIG_OK || o.cls == APIG_DONE_ALREADY)
      pa->retry_credit[j->type] =
          fmin(pa->retry_credit[j->type] + PASS_RETRY_CREDIT_PER_SUCCESS,
               QUEUE_RETRY_MAX);
    if (o.cls == APIG_THROTTLED) {
      log_rate_cut(p, j, rate);
      limit_to_server_rate(p, j, &o);
    }
    pause_account(p, j, &o);
    if (first_request_failed(p, j, rs, &o))
      ; /* the account is unreachable: j left with its other jobs */
    else if (p->accounts[j->q.account].blocked)
      job_abandon(p, j, &o.err);
    else if (j->type == JOB_LIST)
      read_done(p, j, rs, &o);
    else if (j->type == JOB_CERT)
      cert_done(p, j, rs, &o);
    else
      write_done(p, j, &o, rs->latency_ms);
  }
  call_free(c);
  pass_pump(p);
}
