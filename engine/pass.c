/*
 * pass: one reconciliation pass (SPEC §1, §4).
 *
 * Phases: READ (list every certificate, all pages) → PLAN (diff, guards)
 * → WRITE (per wave: batched writes through the queue, each followed by
 * confirmation reads) → DONE. All work waits in the queue or is in flight,
 * so "nothing queued and nothing in flight" is the end of a phase.
 *
 * Every HTTP request goes through submit_call(); every write through
 * dispatch_write(), the one place that enforces --dry-run.
 */
#include "pass_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "apig.h"
#include "auth.h"
#include "ledger.h"
#include "memo.h"
#include "metrics.h"
#include "statefile.h"
#include "status.h"

enum phase { PHASE_READ, PHASE_WRITE, PHASE_SOAK, PHASE_DONE };

enum item_state {
  ITEM_PENDING,   /* not yet written */
  ITEM_WRITTEN,   /* written, waiting to show in a re-read */
  ITEM_CONVERGED, /* shows in the live state */
  ITEM_FAILED,
};

struct pass_item {
  uint8_t state;
  bool permanent;   /* failed with a 4xx: not retried by the daemon */
  bool intent;      /* sync attach: its intent is in the ledger (ahead) */
  bool disowned;    /* sync detach: its ownership was dropped ahead */
  int64_t owned_at; /* disowned: the entry's attached_at, to restore it */
  const struct memo *held; /* not written: an earlier failure holds it */
  uint32_t attempts;
  uint64_t written_ms; /* loop ms of the successful write */
  char error_code[64];
  char *error_msg;
  char request_id[80];
};

enum list_purpose { LIST_INITIAL, LIST_CONFIRM, LIST_VERIFY };

/* A certificate's list longer than this many pages (500 bindings each) is
 * a server that never ends, not a live state. */
#define LIST_MAX_PAGES 1000

/*
 * What a server's answers can make a pass hold in memory is bounded (SPEC
 * §4: at most 128 MB above what the file needs), whatever they say:
 *  - bodies being received: each list page at most APIG_MAX_LIST_BODY
 *    (1 MiB), each other answer at most APIG_MAX_ERROR_BODY (64 KiB), and
 *    all of them together at most PASS_BUFFER_BASE + PASS_BUFFER_PER_REQUEST
 *    per request the file lets be in flight (the sum of max_in_flight: a
 *    typical full page each, what legitimate answers need); a transfer past
 *    that fails like an oversized body and is retried (http max_buffered);
 *  - pages waiting for the thread pool: PARSE_OFF_LOOP_MAX_BYTES (16 MiB);
 *  - parsed entries (at most APIG_LIST_LIMIT a page, the parser stops at
 *    the first past it): PASS_LIVE_PER_BINDING per binding of the file (its
 *    live bindings, the API's duplicate per inbound port, a confirmation
 *    read's copy) plus PASS_LIVE_EXTRA, across every read of the pass;
 *    past that the certificate whose page crossed it fails. An entry is at
 *    most ~400 bytes of heap (a 253-character domain), ~120 typically.
 * Beyond the file's share: 32 + 16 + 1 (a page parsed in place) + 40 MB of
 * entries at the worst = 89 MB.
 */
#define PASS_BUFFER_BASE ((size_t)32 << 20)
#define PASS_BUFFER_PER_REQUEST ((size_t)256 << 10)
#define PASS_LIVE_PER_BINDING 4
#define PASS_LIVE_EXTRA 100000
enum job_type { JOB_LIST, JOB_WRITE };

struct job {
  struct queue_job q;
  struct pass *pass;
  enum job_type type;
  uint32_t cert;
  bool reauthed;      /* renewed the token once for this job */
  uint32_t token_gen; /* password: the account's token it was last sent with */
  /* list */
  enum list_purpose purpose;
  long offset;
  uint32_t pages; /* pages read so far (cut off at LIST_MAX_PAGES) */
  struct apig_bindings acc;
  size_t charged;     /* entries of acc counted in pass.live_entries */
  long long total0;   /* parent: its first page's total, -1 none (yet) */
  bool restart;       /* parent: a page showed the list changed meanwhile */
  struct job *verify; /* LIST_VERIFY: the write whose outcome is unknown */
  /* Pages after the first are read in parallel once its total is known:
   * each is a child job; the parent (the first page's job) collects them
   * and completes when the last child is resolved. */
  struct job *parent;
  uint32_t pages_left; /* parent: children not yet resolved */
  bool page_failed;    /* parent: a child failed for good */
  /* A confirmation read starts its pages all at once, as many as the
   * bindings the certificate should have after its writes: spec_end is
   * the offset where those speculative children end, and spec says the
   * parent's own reading still holds one count of pages_left. */
  bool spec;
  long spec_end;
  struct apig_error page_err;
  /* write */
  enum apig_op op;
  size_t *items; /* plan item indexes, grouped by domain */
  size_t nitems;
  uint64_t unknown_ms;   /* loop ms its outcome last became unknown */
  uint32_t verify_round; /* re-reads since then */
};

struct pass_cert {
  uint32_t writes_left; /* write jobs not finished */
  bool confirm_queued;  /* a confirmation read is queued or running */
  uint32_t confirm_round;
  bool read_failed;
  bool unreachable; /* read_failed: its account was unreachable (pending) */
  struct apig_error read_error;
  size_t item_lo, item_hi; /* the certificate's plan items */
};

struct pass_account {
  struct auth_token token; /* password method: value NULL until fetched */
  bool token_fetching;
  uint32_t token_gen; /* +1 per token obtained */
  uint32_t token_attempt;
  uint64_t token_next_ms;
  bool blocked;
  double retry_credit[2]; /* by enum job_type: retries paid by successes */
  struct job **parked;    /* popped while the token was missing */
  size_t nparked, capparked;
  uint32_t first_failures; /* transport failures in a row, gate closed */
};

struct call {
  struct http_request rq;
  struct apig_url url;
  char *body;
  size_t body_len;
  struct pass *p;
  struct job *job;  /* NULL for a token request */
  uint32_t account; /* token requests */
  enum apig_op op;
};

static void pump(struct pass *p);
static void finish(struct pass *p);
static void start_wave(struct pass *p);
static void schedule_confirm(struct pass *p, uint32_t cert);
static void spec_fan_out(struct pass *p, struct job *j, uint64_t delay);
static void page_resolved(struct pass *p, struct job *parent);

/* ---- the clock (pass.h: struct pass_clock) --------------------------- */

/* Monotonic ms: the queue's time, request and confirmation deadlines. */
static uint64_t now_ms(const struct pass *p)
{
  return p->clock ? p->clock->mono_ms(p->clock->arg) : uv_now(p->loop);
}

/* Wall-clock ms since the epoch. */
static int64_t unix_ms(const struct pass *p)
{
  struct timeval tv;

  if (p->clock)
    return p->clock->unix_ms(p->clock->arg);
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Wall-clock s: signing time, token expiry, ledger and memo times. */
static time_t unix_s(const struct pass *p)
{
  return p->clock ? (time_t)(unix_ms(p) / 1000) : time(NULL);
}

/* The real ms a timer waits for delay_ms of the pass's clock. */
static uint64_t timer_ms(const struct pass *p, uint64_t delay_ms)
{
  return p->clock ? p->clock->timer_ms(p->clock->arg, delay_ms) : delay_ms;
}

/* Monotonic ns for the soak: uv_hrtime() (the current time, not the
 * loop's cached one), or an injected clock's ms. */
static uint64_t soak_now_ns(const struct pass *p)
{
  return p->clock ? p->clock->mono_ms(p->clock->arg) * 1000000u : uv_hrtime();
}

static const struct config_account *cert_account(const struct pass *p,
                                                 uint32_t cert)
{
  return &p->cfg->accounts[p->cfg->certificates[cert].account];
}

static uint32_t cert_account_index(const struct pass *p, uint32_t cert)
{
  return (uint32_t)p->cfg->certificates[cert].account;
}

static void fields_for_cert(const struct pass *p, uint32_t cert,
                            struct log_fields *f)
{
  const struct config_certificate *c = &p->cfg->certificates[cert];
  f->account = p->cfg->accounts[c->account].name;
  f->certificate = c->name;
}

/* ---- items ---------------------------------------------------------- */

static void item_set_error(struct pass_item *it, const char *code,
                           const char *msg, const char *request_id)
{
  snprintf(it->error_code, sizeof(it->error_code), "%s", code ? code : "");
  free(it->error_msg);
  it->error_msg = strdup(msg ? msg : "");
  snprintf(it->request_id, sizeof(it->request_id), "%s",
           request_id ? request_id : "");
}

static void item_fail(struct pass *p, size_t i, const char *code,
                      const char *msg, const char *request_id)
{
  struct pass_item *it = &p->items[i];

  if (it->state == ITEM_CONVERGED || it->state == ITEM_FAILED)
    return;
  it->state = ITEM_FAILED;
  item_set_error(it, code, msg, request_id);
}

/* A move shows (the attach to the new certificate is confirmed, so APIG
 * took the domain off the old one): the old certificate's ledger entry
 * goes now, not on the next pass (SPEC §1 step 2). */
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

static void item_converge(struct pass *p, size_t i)
{
  const struct plan_item *pi = &p->plan.items[i];
  const char *cert_id = p->cfg->certificates[pi->cert].id;

  if (p->items[i].state == ITEM_CONVERGED)
    return;
  p->items[i].state = ITEM_CONVERGED;
  if (!p->ledger)
    return;
  /* The ledger records what certbind attached (SPEC §5), in both modes,
   * so that switching to sync later knows what it owns. */
  if (pi->op == PLAN_DETACH)
    ledger_remove(p->ledger, cert_id, pi->instance_id, pi->domain);
  else if (pi->op == PLAN_ATTACH)
    ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain,
               (int64_t)unix_s(p));
  if (pi->op == PLAN_ATTACH && pi->binding != SIZE_MAX)
    forget_moved_from(p, pi);
  p->ledger_dirty = true;
}

/* ---- jobs ----------------------------------------------------------- */

static struct job *job_new(struct pass *p, enum job_type type, uint32_t cert)
{
  struct job *j = calloc(1, sizeof(*j));

  if (!j)
    return NULL;
  j->pass = p;
  j->type = type;
  j->cert = cert;
  j->total0 = -1;
  j->q.kind = type == JOB_WRITE ? QUEUE_WRITE : QUEUE_READ;
  j->q.account = cert_account_index(p, cert);
  j->q.cert = cert;
  j->q.data = j;
  return j;
}

static void job_free(struct job *j)
{
  if (!j)
    return;
  j->pass->live_entries -= j->charged;
  apig_bindings_free(&j->acc);
  free(j->items);
  free(j);
}

static int job_push(struct pass *p, struct job *j, uint64_t delay_ms)
{
  int rc;

  if (p->stopping)
    return -ECANCELED;
  j->q.not_before_ms = now_ms(p) + delay_ms;
  rc = queue_push(&p->queue, &j->q);
  if (rc == 0 && j->type == JOB_LIST)
    p->requests_planned++;
  return rc;
}

/* ---- failure of whole certificates and accounts ---------------------- */

static void fail_write_job(struct pass *p, struct job *j, const char *code,
                           const char *msg, const char *request_id)
{
  struct pass_cert *c = &p->certs[j->cert];

  for (size_t k = 0; k < j->nitems; k++)
    item_fail(p, j->items[k], code, msg, request_id);
  /* The certificate's last write failed: what its earlier writes sent
   * still has to be confirmed, as after a successful last write. */
  if (--c->writes_left == 0) {
    for (size_t i = c->item_lo; i < c->item_hi; i++) {
      if (p->items[i].state == ITEM_WRITTEN) {
        schedule_confirm(p, j->cert);
        break;
      }
    }
  }
}

/* Stopping: a job leaves without changing what we know of its bindings
 * (writes not sent stay pending). */
static void drop_job(struct pass *p, struct job *j)
{
  struct job *parent = j->type == JOB_LIST ? j->parent : NULL;

  if (parent) {
    job_free(j);
    if (--parent->pages_left == 0)
      drop_job(p, parent);
    return;
  }
  if (j->type == JOB_LIST && j->spec) {
    j->spec = false; /* its own hold; the last child drops the rest */
    if (--j->pages_left > 0)
      return;
  }
  if (j->type == JOB_WRITE) {
    p->certs[j->cert].writes_left--;
  } else if (j->purpose == LIST_INITIAL) {
    p->reads_left--;
  } else if (j->purpose == LIST_CONFIRM) {
    p->certs[j->cert].confirm_queued = false;
  } else {
    p->certs[j->cert].writes_left--;
    job_free(j->verify);
  }
  job_free(j);
}

/* A job leaves the pass for good without its normal outcome. */
static void abandon_job(struct pass *p, struct job *j, const char *code,
                        const char *msg, const char *request_id)
{
  if (p->stopping) {
    drop_job(p, j);
    return;
  }
  if (j->type == JOB_LIST && j->parent) {
    struct job *parent = j->parent;
    if (!parent->page_failed) {
      parent->page_failed = true;
      snprintf(parent->page_err.code, sizeof(parent->page_err.code), "%s",
               code);
      snprintf(parent->page_err.msg, sizeof(parent->page_err.msg), "%s", msg);
      snprintf(parent->page_err.request_id, sizeof(parent->page_err.request_id),
               "%s", request_id ? request_id : "");
    }
    job_free(j);
    page_resolved(p, parent);
    return;
  }
  if (j->type == JOB_LIST && j->spec) {
    /* a parent whose speculative children are still out: it fails with
     * the last of them */
    j->spec = false;
    if (j->pages_left > 1) {
      if (!j->page_failed) {
        j->page_failed = true;
        snprintf(j->page_err.code, sizeof(j->page_err.code), "%s", code);
        snprintf(j->page_err.msg, sizeof(j->page_err.msg), "%s", msg);
        snprintf(j->page_err.request_id, sizeof(j->page_err.request_id), "%s",
                 request_id ? request_id : "");
      }
      page_resolved(p, j);
      return;
    }
    j->pages_left = 0;
  }
  if (j->type == JOB_WRITE) {
    fail_write_job(p, j, code, msg, request_id);
  } else if (j->purpose == LIST_INITIAL) {
    struct pass_cert *c = &p->certs[j->cert];
    c->read_failed = true;
    snprintf(c->read_error.code, sizeof(c->read_error.code), "%s", code);
    snprintf(c->read_error.msg, sizeof(c->read_error.msg), "%s", msg);
    snprintf(c->read_error.request_id, sizeof(c->read_error.request_id), "%s",
             request_id ? request_id : "");
    p->reads_left--;
  } else if (j->purpose == LIST_CONFIRM) {
    struct pass_cert *c = &p->certs[j->cert];
    c->confirm_queued = false;
    for (size_t i = c->item_lo; i < c->item_hi; i++) {
      if (p->items[i].state == ITEM_WRITTEN)
        item_fail(p, i, code, msg, request_id);
    }
  } else { /* LIST_VERIFY */
    fail_write_job(p, j->verify, code, msg, request_id);
    job_free(j->verify);
  }
  job_free(j);
}

static void block_account(struct pass *p, uint32_t a, const char *code,
                          const char *msg, const char *request_id)
{
  struct pass_account *acct = &p->accounts[a];
  struct queue_job *qj;
  struct log_fields f = LOG_FIELDS_INIT;

  if (acct->blocked)
    return;
  acct->blocked = true;
  queue_block_account(&p->queue, a);
  f.account = p->cfg->accounts[a].name;
  f.error_code = code;
  f.error_msg = msg;
  f.request_id = request_id;
  log_event(p->log, LOG_ERROR, "account.blocked", &f,
            "authentication or permission failure: no more requests for "
            "this account in this pass (retrying could lock the key)");
  while ((qj = queue_drain_account(&p->queue, a)))
    abandon_job(p, qj->data, code, msg, request_id);
  for (size_t k = 0; k < acct->nparked; k++)
    abandon_job(p, acct->parked[k], code, msg, request_id);
  acct->nparked = 0;
}

/* ---- requests ------------------------------------------------------- */

static void on_call_done(struct http_request *rq, struct http_response *rs,
                         void *arg);

static void call_free(struct call *c)
{
  apig_url_free(&c->url);
  if (c->body) {
    OPENSSL_cleanse(c->body, c->body_len);
    free(c->body);
  }
  free(c);
}

/* Sign and submit. Takes ownership of c. */
static int submit_call(struct pass *p, struct call *c,
                       const struct config_account *acct, const char *method,
                       bool sign)
{
  struct curl_slist *headers = NULL;
  int rc = 0;

  if (sign) {
    const char *token = acct->auth_method == CONFIG_AUTH_PASSWORD
                            ? p->accounts[c->account].token.value
                            : NULL;
    rc = auth_add_headers(acct, token, method, c->url.host, c->url.path,
                          c->url.query, c->body, c->body_len, unix_s(p),
                          &headers);
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
    rc = http_submit(p->http, &c->rq, on_call_done, p);
  }
  auth_headers_free(headers);
  if (rc == 0) {
    p->in_flight++;
    p->res.counts.requests++;
  }
  return rc;
}

static void dispatch_list(struct pass *p, struct job *j)
{
  const struct config_account *acct = cert_account(p, j->cert);
  struct call *c = calloc(1, sizeof(*c));
  int rc = c ? 0 : -ENOMEM;

  if (rc == 0)
    rc = apig_url_list(acct->endpoint, acct->project_id,
                       p->cfg->certificates[j->cert].id, APIG_LIST_LIMIT,
                       j->offset, NULL, &c->url);
  if (rc == 0) {
    c->p = p;
    c->job = j;
    c->op = APIG_OP_LIST;
    c->account = j->q.account;
    c->rq.max_body = APIG_MAX_LIST_BODY;
    rc = submit_call(p, c, acct, "GET", true);
    if (rc == 0)
      return;
  }
  if (c)
    call_free(c);
  queue_complete(&p->queue, &j->q, QUEUE_FAILURE, now_ms(p));
  abandon_job(p, j, "internal", strerror(-rc), NULL);
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

/* The one place a write is submitted. */
static void dispatch_write(struct pass *p, struct job *j)
{
  const struct config_account *acct = cert_account(p, j->cert);
  struct call *c;
  int rc;

  if (p->opts.dry_run || !p->opts.write) {
    log_event(p->log, LOG_ERROR, "write.refused", NULL,
              "dry run: a write reached the submission point and was not "
              "sent");
    queue_complete(&p->queue, &j->q, QUEUE_FAILURE, now_ms(p));
    abandon_job(p, j, "dry-run", "not written (dry run)", NULL);
    return;
  }
  c = calloc(1, sizeof(*c));
  rc = c ? 0 : -ENOMEM;
  if (rc == 0)
    rc = apig_url_write(acct->endpoint, acct->project_id,
                        p->cfg->certificates[j->cert].id, j->op, &c->url);
  if (rc == 0)
    rc = build_write_body(p, j, &c->body, &c->body_len);
  if (rc == 0) {
    c->p = p;
    c->job = j;
    c->op = j->op;
    c->account = j->q.account;
    for (size_t k = 0; k < j->nitems; k++)
      p->items[j->items[k]].attempts++;
    /* curl must never re-send it blindly if a reused connection turns out
     * dead (http.h): no_resend makes that re-send fail (outcome unknown,
     * re-read first) without a TLS handshake per write, which
     * fresh_connection cost (bench/RESULTS.md) */
    c->rq.no_resend = true;
    c->rq.max_body = APIG_MAX_ERROR_BODY; /* 204, or an error envelope */
    rc = submit_call(p, c, acct, "POST", true);
    if (rc == 0) {
      p->res.counts.writes++;
      return;
    }
  }
  if (c)
    call_free(c);
  queue_complete(&p->queue, &j->q, QUEUE_FAILURE, now_ms(p));
  abandon_job(p, j, "internal", strerror(-rc), NULL);
}

static void start_token_fetch(struct pass *p, uint32_t a)
{
  const struct config_account *acct = &p->cfg->accounts[a];
  struct pass_account *pa = &p->accounts[a];
  struct call *c = calloc(1, sizeof(*c));
  char *url = NULL;
  int rc = c ? 0 : -ENOMEM;

  if (rc == 0)
    rc = auth_iam_url(acct, &url);
  if (rc == 0)
    rc = apig_url_token(acct->iam_endpoint, &c->url);
  free(url);
  if (rc == 0)
    rc = auth_iam_request_body(acct, &c->body, &c->body_len);
  if (rc == 0) {
    c->p = p;
    c->op = APIG_OP_TOKEN;
    c->account = a;
    rc = submit_call(p, c, acct, "POST", false);
  }
  if (rc == 0) {
    pa->token_fetching = true;
    return;
  }
  if (c)
    call_free(c);
  block_account(p, a, "internal", strerror(-rc), NULL);
}

/* ---- completions ---------------------------------------------------- */

struct outcome {
  enum apig_class cls;
  bool unknown; /* a write that may have been applied */
  long status;
  struct apig_error err;
  uint64_t retry_after_ms;
};

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
    snprintf(o->err.request_id, sizeof(o->err.request_id), "%s",
             rs->request_id);
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
  char code[64];

  if (!p->metrics)
    return;
  if (o->err.code[0])
    snprintf(code, sizeof(code), "%s", o->err.code);
  else
    snprintf(code, sizeof(code), "%ld", o->status);
  metrics_count_request(p->metrics, apig_op_name(op), code);
}

static enum queue_outcome queue_outcome_of(enum apig_class cls)
{
  switch (cls) {
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

__attribute__((format(printf, 8, 9))) static void
log_call(struct pass *p, enum log_level lvl, const char *event,
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
  fields_for_cert(p, j->cert, &f);
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

/* Each success of an account pays for one retry of the same kind (a read
 * for a read, a write for a write; stored up to QUEUE_RETRY_MAX), on top
 * of the queue's budget of QUEUE_RETRY_RATIO per first attempt: a storm
 * where nothing of a kind succeeds ends after about QUEUE_RETRY_MIN + 20 %
 * extra requests instead of max_attempts x (and reads that work do not pay
 * for resending writes that all fail), while a partial storm (under ~50 %
 * failures) keeps retrying to convergence. The re-read after a write of
 * unknown outcome is that write's retry. Each kind starts with a few
 * credits of its own, so that the writes are not left without any because
 * the reads spent the queue's budget. Throttling (429) is not paid for: the
 * account's rate is already cut and Retry-After waited, and max_attempts
 * still bounds it; failing a binding for a burst of 429s would be wrong. */
#define PASS_RETRY_CREDIT_PER_SUCCESS 1.0
#define PASS_RETRY_CREDIT_START 5.0

static bool retry_paid(struct pass *p, uint32_t account, enum job_type kind,
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
static void retry_job(struct pass *p, struct job *j, const struct outcome *o)
{
  const struct config_retry *r = &p->cfg->retry;
  uint32_t attempt = j->q.attempt + 1;
  uint64_t delay;
  bool out_of_attempts = attempt >= r->max_attempts;

  /* Out of attempts or of retry budget: a storm of failures must not
   * multiply the traffic. */
  if (out_of_attempts || !retry_paid(p, j->q.account, j->type, o)) {
    log_call(p, LOG_WARN, j->type == JOB_WRITE ? "write.failed" : "list.failed",
             j, j->type == JOB_WRITE ? j->op : APIG_OP_LIST, o, -1,
             out_of_attempts ? "giving up after %u attempts"
                             : "retry budget exhausted after %u attempt(s)",
             attempt);
    abandon_job(p, j, o->err.code, o->err.msg, o->err.request_id);
    return;
  }
  delay = queue_backoff_ms(&p->queue, attempt, r->base_delay_ms,
                           r->max_delay_ms, o->retry_after_ms);
  j->q.attempt = attempt;
  p->res.counts.retries++;
  if (p->metrics)
    p->metrics->retries_total++;
  if (job_push(p, j, delay) < 0)
    abandon_job(p, j, o->err.code, o->err.msg, o->err.request_id);
}

static void park_job(struct pass *p, struct job *j)
{
  struct pass_account *pa = &p->accounts[j->q.account];

  if (pa->nparked == pa->capparked) {
    size_t cap = pa->capparked ? pa->capparked * 2 : 16;
    struct job **n = realloc(pa->parked, cap * sizeof(*n));
    if (!n) {
      abandon_job(p, j, "internal", "out of memory", NULL);
      return;
    }
    pa->parked = n;
    pa->capparked = cap;
  }
  pa->parked[pa->nparked++] = j;
}

/* Token errors: renew once (password), then it is an auth failure. */
static bool try_reauth(struct pass *p, struct job *j)
{
  const struct config_account *acct = cert_account(p, j->cert);
  struct pass_account *pa = &p->accounts[j->q.account];

  if (acct->auth_method != CONFIG_AUTH_PASSWORD || j->reauthed)
    return false;
  j->reauthed = true;
  if (pa->token.value && j->token_gen != pa->token_gen) {
    /* sent with an older token (a straggler of the last renewal): the
     * current one is newer, so use it rather than renewing again */
    if (job_push(p, j, 0) < 0)
      abandon_job(p, j, "internal", "queue refused a job", NULL);
    return true;
  }
  if (!pa->token_fetching)
    auth_token_clear(&pa->token);
  if (p->opts.tokens) /* revoked or expired: not for the next pass either */
    auth_token_cache_drop(p->opts.tokens, acct);
  park_job(p, j);
  return true;
}

/* How many bindings the certificate should list once its writes show:
 * what the first read found plus the attaches minus the detaches. */
static size_t expected_live(const struct pass *p, uint32_t cert)
{
  const struct pass_cert *c = &p->certs[cert];
  size_t n = cert < p->live.ncerts ? p->live.certs[cert].b.n : 0;

  for (size_t i = c->item_lo; i < c->item_hi; i++) {
    if (p->plan.items[i].op == PLAN_ATTACH)
      n++;
    else if (p->plan.items[i].op == PLAN_DETACH && n > 0)
      n--;
  }
  return n;
}

/* A child read of the page of j's certificate at offset off; j's
 * pages_left counts it. NULL when out of memory. */
static struct job *page_child(struct pass *p, struct job *j, long off)
{
  struct job *c = job_new(p, JOB_LIST, j->cert);

  if (!c)
    return NULL;
  c->purpose = j->purpose;
  c->parent = j;
  c->offset = off;
  j->pages_left++;
  return c;
}

/* A confirmation read does not wait for its first page's total to read
 * the others: the pages the expected count needs start with the first
 * (fan_out_pages adds what the total shows beyond them, and a short list
 * only makes a page come back empty). Saves a round trip per pass. */
static void spec_fan_out(struct pass *p, struct job *j, uint64_t delay)
{
  size_t want = expected_live(p, j->cert);
  long end = APIG_LIST_LIMIT;

  if (want <= APIG_LIST_LIMIT ||
      want / APIG_LIST_LIMIT >= (size_t)LIST_MAX_PAGES)
    return;
  j->spec = true;
  j->pages_left = 1; /* the parent's own reading */
  for (; (size_t)end < want; end += APIG_LIST_LIMIT) {
    struct job *c = page_child(p, j, end);
    if (!c)
      break;
    if (job_push(p, c, delay) < 0) {
      j->pages_left--;
      job_free(c);
      break;
    }
  }
  j->spec_end = end;
}

static void schedule_confirm(struct pass *p, uint32_t cert)
{
  struct pass_cert *c = &p->certs[cert];
  /* policy.confirm_delay_ms (pass_opts overrides when set); re-reads
   * after the first back off from at least 100 ms, so a 0 delay cannot
   * turn into a re-read loop while a write is not yet visible */
  uint32_t base = p->opts.confirm_delay_ms ? p->opts.confirm_delay_ms
                                           : p->cfg->policy.confirm_delay_ms;
  uint64_t delay = c->confirm_round == 0
                       ? base
                       : (uint64_t)(base < 100 ? 100 : base)
                             << (c->confirm_round < 3 ? c->confirm_round : 3);
  struct job *j;

  if (c->confirm_queued || p->stopping)
    return;
  j = job_new(p, JOB_LIST, cert);
  if (!j)
    return;
  j->purpose = LIST_CONFIRM;
  c->confirm_queued = true;
  c->confirm_round++;
  if (job_push(p, j, delay) < 0) {
    c->confirm_queued = false;
    job_free(j);
    return;
  }
  spec_fan_out(p, j, delay);
}

static void write_finished(struct pass *p, struct job *j)
{
  struct pass_cert *c = &p->certs[j->cert];

  c->writes_left--;
  if (c->writes_left == 0)
    schedule_confirm(p, j->cert);
  job_free(j);
}

/* Split a failing multi-domain write in halves (SPEC §1 step 5). */
static bool split_write(struct pass *p, struct job *j)
{
  size_t ndom = 0, half, cut = 0, seen = 0;
  struct job *b;

  for (size_t k = 0; k < j->nitems; k++) {
    if (k == 0 || strcmp(p->plan.items[j->items[k]].domain,
                         p->plan.items[j->items[k - 1]].domain) != 0)
      ndom++;
  }
  if (ndom < 2)
    return false;
  half = ndom / 2;
  for (size_t k = 0; k < j->nitems; k++) {
    if (k == 0 || strcmp(p->plan.items[j->items[k]].domain,
                         p->plan.items[j->items[k - 1]].domain) != 0) {
      if (seen++ == half) {
        cut = k;
        break;
      }
    }
  }
  b = job_new(p, JOB_WRITE, j->cert);
  if (!b)
    return false;
  b->op = j->op;
  b->items = malloc((j->nitems - cut) * sizeof(*b->items));
  if (!b->items) {
    job_free(b);
    return false;
  }
  memcpy(b->items, j->items + cut, (j->nitems - cut) * sizeof(*b->items));
  b->nitems = j->nitems - cut;
  j->nitems = cut;
  j->q.attempt = 0;
  p->certs[j->cert].writes_left++;
  if (job_push(p, j, 0) < 0)
    abandon_job(p, j, "internal", "queue refused a split batch", NULL);
  if (job_push(p, b, 0) < 0)
    abandon_job(p, b, "internal", "queue refused a split batch", NULL);
  return true;
}

/* Unknown outcome: re-read the certificate before anything is re-sent. */
static void verify_write(struct pass *p, struct job *w, const struct outcome *o)
{
  const struct config_retry *r = &p->cfg->retry;
  struct job *v;
  uint64_t delay;

  if (w->q.attempt + 1 >= r->max_attempts ||
      !retry_paid(p, w->q.account, JOB_WRITE, o)) {
    log_call(p, LOG_WARN, "write.failed", w, w->op, o, -1, "%s",
             w->q.attempt + 1 >= r->max_attempts
                 ? "outcome unknown after the last attempt"
                 : "outcome unknown; retry budget exhausted");
    fail_write_job(p, w, o->err.code, o->err.msg, o->err.request_id);
    job_free(w);
    return;
  }
  v = job_new(p, JOB_LIST, w->cert);
  if (!v) {
    fail_write_job(p, w, "internal", "out of memory", NULL);
    job_free(w);
    return;
  }
  v->purpose = LIST_VERIFY;
  v->verify = w;
  v->q.attempt = 1; /* part of the write's retry: earns no retry budget */
  w->unknown_ms = now_ms(p);
  w->verify_round = 0;
  w->q.attempt++;
  p->res.counts.retries++;
  if (p->metrics)
    p->metrics->retries_total++;
  delay = queue_backoff_ms(&p->queue, w->q.attempt, r->base_delay_ms,
                           r->max_delay_ms, o->retry_after_ms);
  if (job_push(p, v, delay) < 0)
    abandon_job(p, v, o->err.code, o->err.msg, o->err.request_id);
}

static void on_write_done(struct pass *p, struct job *j,
                          const struct outcome *o, double latency)
{
  uint64_t now = now_ms(p);

  switch (o->cls) {
  case APIG_OK:
    for (size_t k = 0; k < j->nitems; k++) {
      struct pass_item *it = &p->items[j->items[k]];
      it->state = ITEM_WRITTEN;
      it->written_ms = now;
      snprintf(it->request_id, sizeof(it->request_id), "%s", o->err.request_id);
    }
    log_call(p, LOG_INFO, "write.ok", j, j->op, o, latency, NULL);
    write_finished(p, j);
    return;
  case APIG_DONE_ALREADY:
    for (size_t k = 0; k < j->nitems; k++)
      item_converge(p, j->items[k]);
    log_call(p, LOG_INFO, "write.ok", j, j->op, o, latency, "%s",
             "already detached");
    write_finished(p, j);
    return;
  case APIG_REAUTH:
    if (try_reauth(p, j))
      return;
    /* A token that cannot be renewed is an auth failure. */
    /* fall through */
  case APIG_AUTH_FATAL:
    log_call(p, LOG_ERROR, "write.failed", j, j->op, o, latency, NULL);
    block_account(p, j->q.account, o->err.code, o->err.msg, o->err.request_id);
    fail_write_job(p, j, o->err.code, o->err.msg, o->err.request_id);
    job_free(j);
    return;
  case APIG_PERMANENT:
    if (j->nitems > 1 &&
        strcmp(p->plan.items[j->items[0]].domain,
               p->plan.items[j->items[j->nitems - 1]].domain)) {
      log_call(p, LOG_WARN, "write.retry", j, j->op, o, latency, "%s",
               "batch failed: split in halves to isolate the bad domain(s)");
      if (split_write(p, j))
        return;
    }
    log_call(p, LOG_WARN, "write.failed", j, j->op, o, latency, NULL);
    for (size_t k = 0; k < j->nitems; k++)
      p->items[j->items[k]].permanent = true;
    fail_write_job(p, j, o->err.code, o->err.msg, o->err.request_id);
    job_free(j);
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    if (o->unknown) {
      log_call(p, LOG_WARN, "write.retry", j, j->op, o, latency, "%s",
               "outcome unknown: re-reading before any resend");
      verify_write(p, j, o);
      return;
    }
    log_call(p, LOG_WARN, "write.retry", j, j->op, o, latency, NULL);
    if (j->q.attempt + 1 >= p->cfg->retry.max_attempts) {
      log_call(p, LOG_WARN, "write.failed", j, j->op, o, latency, NULL);
      fail_write_job(p, j, o->err.code, o->err.msg, o->err.request_id);
      job_free(j);
      return;
    }
    retry_job(p, j, o);
    return;
  }
}

/* APIG shows a write only seconds after it was applied (reference §0: 5-10
 * s), so one re-read right after an unknown outcome cannot tell "not
 * applied" from "not visible yet". A write whose outcome is unknown is
 * re-read (1 s, 2 s, 4 s, 8 s apart) for up to this long, capped by
 * policy.confirm_timeout_s, before it is re-sent: an applied write is not
 * sent twice; one that was not applied waits that long for its resend. */
#define PASS_VERIFY_WINDOW_MS 10000u

static bool verify_again(struct pass *p, struct job *w)
{
  uint64_t window = (uint64_t)p->cfg->policy.confirm_timeout_s * 1000;
  uint64_t elapsed = now_ms(p) - w->unknown_ms;
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
static void on_verify_read(struct pass *p, struct job *v, struct live_cert *lc)
{
  struct job *w = v->verify;
  size_t keep = 0;

  v->verify = NULL;
  for (size_t k = 0; k < w->nitems; k++) {
    size_t i = w->items[k];
    if (plan_item_shows(lc, &p->plan.items[i]))
      item_converge(p, i);
    else
      w->items[keep++] = i;
  }
  w->nitems = keep;
  if (keep == 0) {
    write_finished(p, w);
    return;
  }
  if (verify_again(p, w))
    return;
  if (job_push(p, w, 0) < 0)
    abandon_job(p, w, "internal", "queue refused a write", NULL);
}

static void on_confirm_read(struct pass *p, uint32_t cert, struct live_cert *lc)
{
  struct pass_cert *c = &p->certs[cert];
  uint64_t now = now_ms(p);
  uint64_t timeout = (uint64_t)p->cfg->policy.confirm_timeout_s * 1000;
  size_t confirmed = 0, waiting = 0, timed_out = 0;
  struct log_fields f = LOG_FIELDS_INIT;

  c->confirm_queued = false;
  for (size_t i = c->item_lo; i < c->item_hi; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    struct pass_item *it = &p->items[i];
    if (it->state != ITEM_WRITTEN)
      continue;
    if (plan_item_shows(lc, pi)) {
      item_converge(p, i);
      confirmed++;
    } else if (now - it->written_ms >= timeout) {
      item_fail(p, i, "confirm-timeout",
                "the write was accepted but did not show within "
                "policy.confirm_timeout_s",
                it->request_id);
      timed_out++;
    } else {
      waiting++;
    }
  }
  fields_for_cert(p, cert, &f);
  f.op = "list";
  if (confirmed)
    log_event(p->log, LOG_INFO, "confirm.ok", &f, "%zu binding(s) show",
              confirmed);
  if (timed_out)
    log_event(p->log, LOG_WARN, "confirm.timeout", &f,
              "%zu binding(s) did not show in time", timed_out);
  if (waiting)
    schedule_confirm(p, cert);
}

/* All pages of one certificate read. */
static void on_list_complete(struct pass *p, struct job *j)
{
  struct live_cert lc = {0};

  if (j->purpose == LIST_INITIAL) {
    struct live_cert *dst = &p->live.certs[j->cert];
    dst->b = j->acc;
    memset(&j->acc, 0, sizeof(j->acc));
    j->charged = 0; /* the live state's now, for the whole pass */
    live_cert_finish(dst);
    p->reads_left--;
    job_free(j);
    return;
  }
  lc.b = j->acc;
  memset(&j->acc, 0, sizeof(j->acc));
  live_cert_finish(&lc);
  if (j->purpose == LIST_CONFIRM)
    on_confirm_read(p, j->cert, &lc);
  else
    on_verify_read(p, j, &lc);
  live_cert_clear(&lc);
  job_free(j); /* uncharges what lc held */
}

/* Move b's entries to the end of a (both from apig_parse_list). */
static void append_bindings(struct apig_bindings *a, struct apig_bindings *b)
{
  if (b->n && a->n + b->n > a->cap) {
    size_t cap = a->n + b->n;
    struct apig_binding *n = realloc(a->items, cap * sizeof(*n));
    if (!n)
      return; /* the caller's page stays with b and is freed: the read is
                 then incomplete, which confirmation re-reads tolerate */
    a->items = n;
    a->cap = cap;
  }
  if (b->n)
    memcpy(a->items + a->n, b->items, b->n * sizeof(*b->items));
  a->n += b->n;
  b->n = 0;
}

/* The first page says how many follow: read them all at once instead of
 * one after the other (a certificate on 8 gateways with 200 domains has 4
 * pages). The parent completes when its last child does. */
static bool fan_out_pages(struct pass *p, struct job *j,
                          const struct apig_page *page)
{
  long stride = (long)page->count;
  long total = (long)page->total;
  uint32_t n = 0;
  /* speculative children already read [APIG_LIST_LIMIT, spec_end) when
   * the server's pages are that size (a smaller page size: all again,
   * the duplicates merge) */
  long from = j->spec && stride == APIG_LIST_LIMIT ? j->spec_end : stride;

  if ((total - stride + stride - 1) / stride >= LIST_MAX_PAGES)
    return false; /* the sequential path refuses it with a clear error */
  if (j->spec)
    j->spec = false; /* its own hold becomes the creation hold */
  else
    j->pages_left = 1; /* held while the children are created */
  for (long off = from; off < total; off += stride) {
    struct job *c = page_child(p, j, off);
    if (!c)
      break;
    if (job_push(p, c, 0) < 0) {
      abandon_job(p, c, "internal", "queue refused a read", NULL);
      continue;
    }
    n++;
  }
  if (n == 0 && from < total && !j->page_failed && j->pages_left == 1) {
    j->pages_left = 0;
    return false; /* nothing started: read on sequentially */
  }
  page_resolved(p, j); /* drop the hold */
  return true;
}

/* The entries a page added to j's acc count in what the pass holds;
 * -E2BIG when that is more than a live state the file explains. */
static int acc_charge(struct pass *p, struct job *j)
{
  p->live_entries += j->acc.n - j->charged;
  j->charged = j->acc.n;
  return p->live_entries > p->live_entries_max ? -E2BIG : 0;
}

static void acc_free(struct job *j)
{
  j->pass->live_entries -= j->charged;
  j->charged = 0;
  apig_bindings_free(&j->acc);
}

/* A read starts over from its first page (it is retried: max_attempts and
 * the retry budget bound how often). */
static void read_again(struct pass *p, struct job *j, struct outcome *bad)
{
  log_call(p, LOG_WARN, "list.retry", j, APIG_OP_LIST, bad, -1, NULL);
  if (!j->spec) /* a speculative parent's acc holds its children's pages */
    acc_free(j);
  if (!j->parent) { /* a parent starts over; a child re-reads its page */
    j->offset = 0;
    j->pages = 0;
    j->total0 = -1;
  }
  retry_job(p, j, bad);
}

static void bad_page(struct outcome *bad, const struct outcome *o,
                     const char *msg)
{
  *bad = *o;
  bad->cls = APIG_RETRY;
  snprintf(bad->err.code, sizeof(bad->err.code), "bad-response");
  snprintf(bad->err.msg, sizeof(bad->err.msg), "%s", msg);
}

/* One child of a fanned-out read is over (read or failed for good). */
static void page_resolved(struct pass *p, struct job *parent)
{
  if (--parent->pages_left > 0)
    return;
  if (parent->page_failed) {
    struct apig_error e = parent->page_err;
    log_event(p->log, LOG_ERROR, "list.failed", NULL, "%s: %s", e.code, e.msg);
    abandon_job(p, parent, e.code, e.msg, e.request_id);
    return;
  }
  if (parent->restart) { /* a page said the list changed: read it again */
    struct outcome bad;
    struct outcome none = {.cls = APIG_RETRY, .err = parent->page_err};
    parent->restart = false;
    bad_page(&bad, &none, parent->page_err.msg);
    read_again(p, parent, &bad);
    return;
  }
  on_list_complete(p, parent);
}

/* A page's total is larger than its read's first page said: the list
 * changed while it was read (or the server makes it up as it goes, never
 * ending). The whole read starts over, which fails the certificate once
 * its attempts are spent (SPEC §4: an error for that certificate). */
static bool total_grew(struct pass *p, struct job *j, const struct outcome *o,
                       const struct apig_page *page)
{
  struct job *head = j->parent ? j->parent : j;
  struct outcome bad;
  char msg[160];

  if (head->total0 < 0 || page->total <= head->total0)
    return false;
  snprintf(msg, sizeof(msg),
           "the list's total grew from %lld to %lld between its pages",
           head->total0, page->total);
  if (!j->parent) {
    bad_page(&bad, o, msg);
    read_again(p, j, &bad);
    return true;
  }
  if (!head->page_failed && !head->restart) {
    head->restart = true;
    snprintf(head->page_err.msg, sizeof(head->page_err.msg), "%s", msg);
    snprintf(head->page_err.request_id, sizeof(head->page_err.request_id), "%s",
             o->err.request_id);
  }
  job_free(j);
  page_resolved(p, head);
  return true;
}

/* The live state read so far is larger than the file explains: the
 * certificate whose page crossed the line fails (reading it again would
 * find the same). */
static void live_too_large(struct pass *p, struct job *j,
                           const struct outcome *o)
{
  struct outcome bad;
  char msg[200];

  snprintf(msg, sizeof(msg),
           "the live state read exceeds %zu bindings (%d per binding in the "
           "file + %d): not believed",
           p->live_entries_max, PASS_LIVE_PER_BINDING, PASS_LIVE_EXTRA);
  bad_page(&bad, o, msg);
  snprintf(bad.err.code, sizeof(bad.err.code), "live-state-too-large");
  log_call(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, &bad, -1, NULL);
  if (!j->spec)
    acc_free(j);
  abandon_job(p, j, bad.err.code, bad.err.msg, bad.err.request_id);
}

/* One page of a list read, parsed (rc < 0: unreadable, why says how):
 * read on, fan out, or complete the read. */
static void on_list_page(struct pass *p, struct job *j, const struct outcome *o,
                         int rc, const struct apig_page *page, const char *why)
{
  struct outcome bad;
  char msg[200];

  if (rc < 0) {
    snprintf(msg, sizeof(msg), "the list response could not be read: %s", why);
    bad_page(&bad, o, msg);
    read_again(p, j, &bad);
    return;
  }
  if (total_grew(p, j, o, page))
    return;
  if (acc_charge(p, j) < 0) {
    live_too_large(p, j, o);
    return;
  }
  if (j->parent) {
    struct job *parent = j->parent;
    size_t moved = j->acc.n;
    append_bindings(&parent->acc, &j->acc);
    moved -= j->acc.n; /* what did not move is freed with j */
    j->charged -= moved;
    parent->charged += moved;
    job_free(j);
    page_resolved(p, parent);
    return;
  }
  if (j->offset == 0)
    j->total0 = page->total;
  if (j->offset == 0 && page->total > (long long)page->count &&
      page->count > 0 && fan_out_pages(p, j, page))
    return;
  /* More pages: by total when given, else while pages are full. A
   * server that never ends (total never reached, the same page again
   * and again) is cut off at LIST_MAX_PAGES: the live state is then
   * unknown, never taken as complete. */
  if (page->count > 0 &&
      (page->total >= 0 ? j->offset + (long)page->count < page->total
                        : page->count >= APIG_LIST_LIMIT)) {
    if (++j->pages >= LIST_MAX_PAGES) {
      bad = *o;
      snprintf(bad.err.code, sizeof(bad.err.code), "bad-response");
      snprintf(bad.err.msg, sizeof(bad.err.msg),
               "the list did not end after %d pages", LIST_MAX_PAGES);
      log_call(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, &bad, -1, NULL);
      acc_free(j);
      abandon_job(p, j, bad.err.code, bad.err.msg, bad.err.request_id);
      return;
    }
    j->offset += (long)page->count;
    j->q.attempt = 0;
    if (job_push(p, j, 0) < 0)
      abandon_job(p, j, "internal", "queue refused a read", NULL);
    return;
  }
  if (j->spec) { /* its speculative children may still be out */
    j->spec = false;
    page_resolved(p, j);
    return;
  }
  on_list_complete(p, j);
}

/* Pages at least this large are parsed on libuv's thread pool: a full
 * page (500 bindings, ~250 KB) is ~0.26 ms of yajl that would otherwise
 * hold up every other transfer on the loop thread, and a rollout's
 * confirmation reads arrive together. Smaller pages are parsed in place. */
#define PARSE_OFF_LOOP_MIN ((size_t)32 << 10)
/* A page waiting for the pool holds its body and no longer counts as in
 * flight, so more reads may arrive meanwhile: past this many bytes
 * waiting, pages are parsed in place again. (Scenario 2 of bench/, 200
 * pages of 250 KB arriving together, peaks at ~12 MB.) It bounds what a
 * server's answers can make the pass hold (see PASS_BUFFER_BASE). */
#define PARSE_OFF_LOOP_MAX_BYTES ((size_t)16 << 20)

struct page_parse {
  uv_work_t req; /* first: the request is the struct */
  struct pass *p;
  struct job *j;
  struct outcome o;
  char *body;
  size_t len;
  struct apig_bindings out;
  struct apig_page page;
  char why[128];
  int rc;
};

/* Thread pool: touches nothing but its own struct page_parse. */
static void parse_page_work(uv_work_t *req)
{
  struct page_parse *w = (struct page_parse *)req;

  w->rc = apig_parse_list(w->body, w->len, &w->out, &w->page, w->why,
                          sizeof(w->why));
  free(w->body);
  w->body = NULL;
}

static void parse_page_done(uv_work_t *req, int status)
{
  struct page_parse *w = (struct page_parse *)req;
  struct pass *p = w->p;

  p->pool_work--;
  p->parse_bytes -= w->len;
  if (status < 0) {
    drop_job(p, w->j); /* cancelled: as an aborted read, nothing learnt */
  } else {
    append_bindings(&w->j->acc, &w->out);
    on_list_page(p, w->j, &w->o, w->rc, &w->page, w->why);
  }
  apig_bindings_free(&w->out);
  free(w->body);
  free(w);
  pump(p);
}

/* Hand the body to the thread pool; 0, or -1 to parse it here. */
static int parse_page_off_loop(struct pass *p, struct job *j,
                               struct http_response *rs,
                               const struct outcome *o)
{
  struct page_parse *w;

  if (rs->body_len < PARSE_OFF_LOOP_MIN ||
      p->parse_bytes + rs->body_len > PARSE_OFF_LOOP_MAX_BYTES ||
      !(w = calloc(1, sizeof(*w))))
    return -1;
  w->p = p;
  w->j = j;
  w->o = *o;
  w->body = rs->body;
  w->len = rs->body_len;
  if (uv_queue_work(p->loop, &w->req, parse_page_work, parse_page_done) < 0) {
    free(w);
    return -1;
  }
  rs->body = NULL; /* taken (http.h) */
  p->pool_work++;
  p->parse_bytes += w->len;
  return 0;
}

static void on_list_done(struct pass *p, struct job *j,
                         struct http_response *rs, const struct outcome *o)
{
  struct apig_page page;
  char why[128] = "";
  int rc;

  switch (o->cls) {
  case APIG_OK:
    if (parse_page_off_loop(p, j, rs, o) == 0)
      return;
    rc = apig_parse_list(rs->body, rs->body_len, &j->acc, &page, why,
                         sizeof(why));
    on_list_page(p, j, o, rc, &page, why);
    return;
  case APIG_REAUTH:
    if (try_reauth(p, j))
      return;
    /* fall through */
  case APIG_AUTH_FATAL:
    log_call(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, o, rs->latency_ms,
             NULL);
    block_account(p, j->q.account, o->err.code, o->err.msg, o->err.request_id);
    abandon_job(p, j, o->err.code, o->err.msg, o->err.request_id);
    return;
  case APIG_PERMANENT:
  case APIG_DONE_ALREADY:
    log_call(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, o, rs->latency_ms,
             NULL);
    abandon_job(p, j, o->err.code, o->err.msg, o->err.request_id);
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    log_call(p, LOG_WARN, "list.retry", j, APIG_OP_LIST, o, rs->latency_ms,
             NULL);
    retry_job(p, j, o);
    return;
  }
}

static void on_token_done(struct pass *p, struct call *c,
                          struct http_response *rs, const struct outcome *o)
{
  struct pass_account *pa = &p->accounts[c->account];
  struct log_fields f = LOG_FIELDS_INIT;
  time_t expires = 0;

  pa->token_fetching = false;
  f.account = p->cfg->accounts[c->account].name;
  f.op = "token";
  f.http_status = o->status;
  f.latency_ms = rs->latency_ms;
  if (o->cls == APIG_OK && rs->subject_token &&
      auth_iam_parse_expiry(rs->body, rs->body_len, &expires) == 0 &&
      auth_token_set(&pa->token, rs->subject_token, strlen(rs->subject_token),
                     expires, unix_s(p)) == 0) {
    pa->token_attempt = 0;
    pa->token_gen++;
    log_event(p->log, LOG_INFO, "token.ok", &f, "IAM token obtained");
    /* kept for the daemon's next passes (a failure only costs a fetch) */
    if (p->opts.tokens)
      (void)auth_token_cache_put(p->opts.tokens, &p->cfg->accounts[c->account],
                                 &pa->token);
    for (size_t k = 0; k < pa->nparked; k++) {
      if (job_push(p, pa->parked[k], 0) < 0)
        abandon_job(p, pa->parked[k], "internal", "queue refused", NULL);
    }
    pa->nparked = 0;
    return;
  }
  f.error_code = o->err.code[0] ? o->err.code : NULL;
  f.error_msg = o->err.msg[0] ? o->err.msg : NULL;
  f.request_id = o->err.request_id[0] ? o->err.request_id : NULL;
  if (pa->token.value && !auth_token_needs_renewal(&pa->token, unix_s(p)) &&
      pa->token.expires_at > unix_s(p)) {
    /* a background renewal failed; the current token still serves */
    log_event(p->log, LOG_WARN, "token.retry", &f,
              "IAM token renewal failed; the current token is still valid");
    return;
  }
  if ((o->cls == APIG_RETRY || o->cls == APIG_THROTTLED) &&
      ++pa->token_attempt < p->cfg->retry.max_attempts) {
    pa->token_next_ms =
        now_ms(p) + queue_backoff_ms(&p->queue, pa->token_attempt,
                                     p->cfg->retry.base_delay_ms,
                                     p->cfg->retry.max_delay_ms,
                                     o->retry_after_ms);
    log_event(p->log, LOG_WARN, "token.retry", &f, "IAM token request failed");
    return;
  }
  log_event(p->log, LOG_ERROR, "token.failed", &f,
            "could not obtain an IAM token");
  block_account(p, c->account, o->err.code[0] ? o->err.code : "token",
                o->err.msg[0] ? o->err.msg : "could not obtain an IAM token",
                o->err.request_id);
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

/*
 * A dead or silent endpoint bounds the pass (SPEC §4). Until one of its
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
  struct pass_cert *c = &p->certs[cert];

  c->read_failed = true;
  c->unreachable = true;
  c->read_error = *why;
}

/* A job of an unreachable account leaves, its bindings pending. */
static void leave_unreached(struct pass *p, struct job *j,
                            const struct apig_error *why)
{
  if (j->type == JOB_LIST && j->purpose == LIST_INITIAL)
    cert_unreachable(p, j->cert, why);
  drop_job(p, j);
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
  acct->blocked = true;
  queue_block_account(&p->queue, a);
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
 * got it: APIG throttles per user (SPEC §4). The request itself waits at
 * least as long (queue_backoff_ms takes Retry-After as its floor). */
static void pause_account(struct pass *p, const struct job *j,
                          const struct outcome *o)
{
  struct log_fields f = LOG_FIELDS_INIT;
  uint64_t now = now_ms(p);
  uint64_t before = queue_account_paused_until(&p->queue, j->q.account);
  uint64_t until;

  if (o->retry_after_ms == 0 ||
      (o->cls != APIG_THROTTLED && o->cls != APIG_RETRY))
    return;
  queue_pause_account(&p->queue, j->q.account, now, o->retry_after_ms);
  until = queue_account_paused_until(&p->queue, j->q.account);
  if (until == before)
    return;
  fields_for_cert(p, j->cert, &f);
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
    on_token_done(p, c, rs, &o);
  } else if (rs->aborted) {
    /* Stopped before an answer: a write may have been applied, so its
     * bindings stay pending for the next pass to read. */
    queue_complete(&p->queue, &j->q, QUEUE_FAILURE, now_ms(p));
    drop_job(p, j);
  } else {
    struct pass_account *pa = &p->accounts[j->q.account];
    double rate = queue_account_rate(&p->queue, j->q.account);
    queue_complete(&p->queue, &j->q, queue_outcome_of(o.cls), now_ms(p));
    if (o.cls == APIG_OK || o.cls == APIG_DONE_ALREADY)
      pa->retry_credit[j->type] =
          fmin(pa->retry_credit[j->type] + PASS_RETRY_CREDIT_PER_SUCCESS,
               QUEUE_RETRY_MAX);
    if (o.cls == APIG_THROTTLED)
      log_rate_cut(p, j, rate);
    pause_account(p, j, &o);
    if (first_request_failed(p, j, rs, &o))
      ; /* the account is unreachable: j left with its other jobs */
    else if (p->accounts[j->q.account].blocked)
      abandon_job(p, j, o.err.code, o.err.msg, o.err.request_id);
    else if (j->type == JOB_LIST)
      on_list_done(p, j, rs, &o);
    else
      on_write_done(p, j, &o, rs->latency_ms);
  }
  call_free(c);
  pump(p);
}

/* ---- planning and waves --------------------------------------------- */

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

static int item_memo_key(const struct pass *p, const struct plan_item *it,
                         char *buf, size_t len)
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
  if (!m || !memo_holds(m, (int64_t)unix_s(p)))
    return false;
  it->held = m;
  it->attempts = m->attempts;
  item_set_error(it, m->error_code, m->error_msg, m->request_id);
  if (m->permanent) {
    it->state = ITEM_FAILED;
    it->permanent = true;
  }
  return true;
}

/* Queue the writes of plan items [lo, hi) of one certificate: attaches and
 * changes first, then detaches, batch_size domains per request. */
static int queue_cert_writes(struct pass *p, uint32_t cert, size_t lo,
                             size_t hi)
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
      p->requests_planned += 2; /* the write and its confirmation */
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
 * writes is sent (SPEC §1): an attach's intent (a crash after the attach
 * leaves it to be found: uncertain, never detached), a detach's loss of
 * ownership (a crash after the detach must not leave certbind owning a
 * binding a person may attach again). Sync mode only: upsert detaches
 * nothing, and an attach a crash left unrecorded is merely not owned.
 * When the ledger cannot be written, none of those writes is sent: they
 * fail with the reason, and the in-memory ledger is put back. */
static void write_ownership_ahead(struct pass *p, size_t lo, size_t hi)
{
  int64_t now = (int64_t)unix_s(p);
  bool changed = false;
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
        item_fail(p, i, "internal", "out of memory", NULL);
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
    item_fail(p, i, "state-file", why, NULL);
  }
}

/* At the end of a pass its own intents are resolved (SPEC §1): an attach
 * that answered 204 (or showed) is owned, in both modes; any other intent
 * (refused, never sent, outcome never resolved) is dropped. A detach whose
 * ownership went ahead but that was never sent, or that APIG refused for
 * good, left the binding in place: owned again. One whose outcome stayed
 * unknown is not: owning too little is the safe side. */
static void settle_ownership(struct pass *p)
{
  for (size_t i = 0; p->ledger && p->items && i < p->plan.nitems; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    const struct pass_item *it = &p->items[i];
    const char *cert_id = p->cfg->certificates[pi->cert].id;
    bool applied = it->state == ITEM_CONVERGED || it->written_ms != 0;
    if (pi->op == PLAN_ATTACH && applied) {
      if (!ledger_owns(p->ledger, cert_id, pi->instance_id, pi->domain))
        ledger_add(p->ledger, cert_id, pi->instance_id, pi->domain,
                   (int64_t)unix_s(p));
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

static void start_wave(struct pass *p)
{
  size_t lo = p->wave ? p->wave_end[p->wave - 1] : 0;
  size_t hi = p->wave_end[p->wave];
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[] = {{"wave", (long long)p->wave + 1},
                        {"waves", (long long)p->nwaves},
                        {"bindings", (long long)(hi - lo)}};

  p->phase = PHASE_WRITE;
  if (p->nwaves > 1) {
    f.kv = kv;
    f.nkv = 3;
    log_event(p->log, LOG_INFO, "wave.start", &f, NULL);
  }
  for (size_t i = lo; i < hi; i++) {
    if (p->items[i].state == ITEM_PENDING)
      held_back(p, i);
  }
  write_ownership_ahead(p, lo, hi);
  for (size_t i = lo; i < hi;) {
    uint32_t cert = p->plan.items[i].cert;
    size_t end = i;
    while (end < hi && p->plan.items[end].cert == cert)
      end++;
    if (queue_cert_writes(p, cert, i, end) < 0) {
      for (size_t k = i; k < end; k++)
        item_fail(p, k, "internal", "out of memory", NULL);
    }
    i = end;
  }
}

static void refuse(struct pass *p, enum pass_outcome o, const char *event,
                   const char *msg)
{
  p->res.outcome = o;
  snprintf(p->message, sizeof(p->message), "%s", msg);
  log_event(p->log, LOG_ERROR, event, NULL, "%s", msg);
}

/* Sync: refuse a pass that would detach too much (SPEC §3 policy). */
static bool detach_guard_ok(struct pass *p)
{
  const struct config_policy *pol = &p->cfg->policy;
  size_t nd = p->plan.ndetach;
  char msg[256];

  if (nd == 0)
    return true;
  if (nd > pol->max_detach_count) {
    snprintf(msg, sizeof(msg),
             "refused: %zu detaches exceed policy.max_detach_count %u", nd,
             pol->max_detach_count);
    refuse(p, PASS_REFUSED, "guard.refused", msg);
    return false;
  }
  if (p->plan.live_total &&
      (double)nd > pol->max_detach_ratio * (double)p->plan.live_total) {
    snprintf(msg, sizeof(msg),
             "refused: %zu detaches of %zu live bindings exceed "
             "policy.max_detach_ratio %.2f",
             nd, p->plan.live_total, pol->max_detach_ratio);
    refuse(p, PASS_REFUSED, "guard.refused", msg);
    return false;
  }
  return true;
}

/* Owned bindings no longer live on their certificate (detached by someone
 * else, or moved by a rollout) are owned no more. Entries are copied out
 * first: a removal moves another entry into the hole. */
static void forget_stale_ownership(struct pass *p)
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
    /* attached, or an intent (write_ownership_ahead), too recently to show
     * yet, as APIG takes seconds to show a write: keep it */
    if (e->attached_at >
        (int64_t)unix_s(p) - (int64_t)p->cfg->policy.confirm_timeout_s)
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

static void on_reads_done(struct pass *p)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[5];
  bool plan_only = !p->opts.write || p->opts.dry_run; /* shown, not made */
  int rc;

  /* A certificate that could not be read gets no plan: its bindings are
   * reported failed with the read's error (pass_status). */
  rc = plan_compute_wanted(p->cfg, &p->live, p->ledger,
                           p->wanted.by_cert ? &p->wanted : NULL, &p->plan);
  if (rc < 0) {
    refuse(p, PASS_FAILED, "plan.failed", "could not compute the plan");
    finish(p);
    return;
  }
  p->items = calloc(p->plan.nitems + 1, sizeof(*p->items));
  if (!p->items) {
    refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    finish(p);
    return;
  }
  p->res.has_plan = true;
  for (size_t i = 0; i < p->plan.nitems; i++) {
    const struct plan_item *it = &p->plan.items[i];
    struct pass_cert *c = &p->certs[it->cert];
    if (c->item_hi == 0)
      c->item_lo = i;
    c->item_hi = i + 1;
    if (it->binding != SIZE_MAX)
      p->binding_item[it->binding] = i;
  }
  kv[0] = (struct log_kv){"attach", (long long)p->plan.nattach};
  kv[1] = (struct log_kv){"change", (long long)p->plan.nchange};
  kv[2] = (struct log_kv){"detach", (long long)p->plan.ndetach};
  kv[3] = (struct log_kv){"unchanged", (long long)p->plan.unchanged};
  kv[4] = (struct log_kv){"uncertain", (long long)p->plan.nuncertain};
  f.kv = kv;
  f.nkv = 5;
  log_event(p->log, LOG_INFO, "plan", &f, NULL);

  /* only a plan that is shown, saved or compared needs its checksum */
  if ((p->opts.expect_checksum || plan_only) &&
      plan_checksum(p->cfg, &p->live, &p->plan) < 0) {
    refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    finish(p);
    return;
  }
  if (p->opts.expect_checksum &&
      strcmp(p->opts.expect_checksum, p->plan.checksum) != 0) {
    refuse(p, PASS_REFUSED, "plan.stale",
           "refused: the live state or the file changed since the plan was "
           "made (checksum mismatch); run certbind plan again");
    finish(p);
    return;
  }
  if (plan_only) {
    p->res.outcome = PASS_PLANNED;
    finish(p);
    return;
  }
  if (p->cfg->policy.mode == CONFIG_MODE_SYNC && !detach_guard_ok(p)) {
    finish(p);
    return;
  }
  forget_stale_ownership(p);
  if (setup_waves(p) < 0) {
    refuse(p, PASS_FAILED, "plan.failed", "out of memory");
    finish(p);
    return;
  }
  start_wave(p);
}

static void on_soak_done(uv_timer_t *t);

/* The soak is measured on the monotonic clock (soak_now_ns) from when it
 * starts, not
 * from the loop's cached time: uv_now() is when this loop iteration
 * began, so a long callback before this point (the last confirmations of a big
 * wave, or a slow machine) would shorten it, and libuv's millisecond timers
 * may fire up to 1 ms before the time asked. A soak is never shorter than
 * rollout.soak_s: on_soak_done re-arms until soak_until_ns has passed. */
static int arm_soak(struct pass *p)
{
  uint64_t now = soak_now_ns(p);
  uint64_t left = p->soak_until_ns > now ? p->soak_until_ns - now : 0;

  uv_update_time(p->loop);
  return uv_timer_start(&p->soak, on_soak_done,
                        timer_ms(p, (left + 999999) / 1000000), 0);
}

/* A wave is over: check the abort ratio, soak, start the next. */
static void on_soak_done(uv_timer_t *t)
{
  struct pass *p = t->data;

  if (p->stopping) {
    finish(p);
    return;
  }
  if (soak_now_ns(p) < p->soak_until_ns) {
    if (arm_soak(p) < 0)
      finish(p);
    return;
  }
  p->wave++;
  start_wave(p);
  pump(p);
}

static void on_wave_done(struct pass *p)
{
  size_t lo = p->wave ? p->wave_end[p->wave - 1] : 0;
  size_t hi = p->wave_end[p->wave];
  size_t failed = 0;
  const struct config_rollout *r = &p->cfg->rollout;

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
    refuse(p, PASS_ABORTED, "rollout.aborted", msg);
    finish(p);
    return;
  }
  if (p->wave + 1 >= p->nwaves || p->stopping) {
    finish(p);
    return;
  }
  p->phase = PHASE_SOAK;
  p->soak_until_ns = soak_now_ns(p) + (uint64_t)r->soak_s * 1000000000u;
  if (arm_soak(p) < 0)
    finish(p);
}

/* ---- the pump ------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
  pump(t->data);
}

static void progress_line(struct pass *p, bool final)
{
  uint64_t now = now_ms(p);
  double el = (double)(unix_ms(p) - p->res.started_ms) / 1000.0;
  uint64_t done = p->res.counts.requests - p->in_flight;
  uint64_t total = p->requests_planned > done ? p->requests_planned : done;
  double rate = el > 0 ? (double)done / el : 0;
  char bar[27];
  size_t fill;

  if (!p->opts.progress || (!final && now - p->progress_ms < 200))
    return;
  p->progress_ms = now;
  fill = total ? (size_t)(25.0 * (double)done / (double)total) : 25;
  for (size_t i = 0; i < 25; i++)
    bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[25] = '\0';
  fprintf(stderr, "\r[%s] %llu/%llu requests  %.0f req/s  eta %.0fs\033[K", bar,
          (unsigned long long)done, (unsigned long long)total, rate,
          rate > 0 ? (double)(total - done) / rate : 0.0);
  if (final)
    fputs("\r\033[K", stderr);
}

/* The daemon's token of each password account, when an earlier pass got
 * one for the same credentials and it is not due for renewal: the pass
 * starts with it instead of asking IAM again (SPEC §4). */
static void take_cached_tokens(struct pass *p)
{
  for (size_t a = 0; p->opts.tokens && a < p->cfg->naccounts; a++) {
    const struct config_account *acct = &p->cfg->accounts[a];
    struct log_fields f = LOG_FIELDS_INIT;

    if (acct->auth_method != CONFIG_AUTH_PASSWORD ||
        auth_token_cache_get(p->opts.tokens, acct, unix_s(p),
                             &p->accounts[a].token) < 0)
      continue;
    p->accounts[a].token_gen++;
    f.account = acct->name;
    f.op = "token";
    log_event(p->log, LOG_DEBUG, "token.reused", &f,
              "IAM token of an earlier pass reused");
  }
}

/* Password accounts wait for their token; a token near its end is
 * renewed in the background while it still serves. */
static bool account_needs_token(struct pass *p, uint32_t a)
{
  struct pass_account *pa = &p->accounts[a];

  if (p->cfg->accounts[a].auth_method != CONFIG_AUTH_PASSWORD)
    return false;
  /* An expired token (with a second of margin for the way there) would
   * only earn a 401: drop it, so that requests wait for the new one. */
  if (pa->token.value && unix_s(p) + 1 >= pa->token.expires_at)
    auth_token_clear(&pa->token);
  if (!pa->token.value)
    return true;
  if (!pa->token_fetching && auth_token_needs_renewal(&pa->token, unix_s(p)))
    start_token_fetch(p, a);
  return false;
}

/* Release what the queue allows, then sleep until the next thing can go. */
static void pump(struct pass *p)
{
  uint64_t now = now_ms(p), wake = UINT64_MAX;
  struct queue_job *qj;

  if (p->phase == PHASE_DONE)
    return;
  while (!p->stopping && (qj = queue_pop(&p->queue, now, &wake))) {
    struct job *j = qj->data;
    uint32_t a = qj->account;
    if (account_needs_token(p, a)) {
      /* Not sent: the job waits for the token (renewed after a token
       * error), and the gate is unchanged. */
      queue_complete(&p->queue, qj, QUEUE_FAILURE, now);
      park_job(p, j);
      continue;
    }
    if (j->type == JOB_WRITE)
      dispatch_write(p, j);
    else
      dispatch_list(p, j);
  }
  for (uint32_t a = 0; !p->stopping && a < p->cfg->naccounts; a++) {
    struct pass_account *pa = &p->accounts[a];
    if (!pa->blocked && !pa->token.value && !pa->token_fetching &&
        pa->nparked) {
      if (pa->token_next_ms <= now)
        start_token_fetch(p, a);
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
    } else if (p->phase == PHASE_READ) {
      if (p->stopping) {
        p->res.outcome = PASS_INTERRUPTED;
        finish(p);
        return;
      }
      on_reads_done(p);
      if (p->phase == PHASE_DONE)
        return;
      pump(p);
      return;
    } else if (p->phase == PHASE_WRITE) {
      on_wave_done(p);
      return;
    }
  }
  if (wake != UINT64_MAX && !p->stopping)
    uv_timer_start(&p->timer, on_timer,
                   timer_ms(p, wake > now ? wake - now : 1), 0);
}

/* ---- start, stop, finish -------------------------------------------- */

static void compute_counts(struct pass *p)
{
  struct pass_counts *k = &p->res.counts;

  k->unchanged = p->plan.unchanged;
  k->uncertain = p->plan.nuncertain;
  k->attached = k->changed = k->detached = k->failed = k->pending = 0;
  for (size_t i = 0; i < p->plan.nitems && p->items; i++) {
    const struct pass_item *it = &p->items[i];
    enum plan_op op = p->plan.items[i].op;
    if (it->state == ITEM_CONVERGED)
      *(op == PLAN_ATTACH   ? &k->attached
        : op == PLAN_CHANGE ? &k->changed
                            : &k->detached) += 1;
    else if (it->state == ITEM_FAILED)
      k->failed++;
    else
      k->pending++;
  }
  if (!p->items)
    k->pending = p->plan.nitems;
}

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

  if (p->phase == PHASE_DONE)
    return;
  p->phase = PHASE_DONE;
  p->res.ended_ms = unix_ms(p);
  settle_ownership(p);
  compute_counts(p);
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
  p->binding_item =
      malloc((cfg->nbindings ? cfg->nbindings : 1) * sizeof(*p->binding_item));
  if (!lim || !p->accounts || !p->certs || !p->binding_item) {
    free(lim);
    return -ENOMEM;
  }
  for (size_t i = 0; i < cfg->nbindings; i++)
    p->binding_item[i] = SIZE_MAX;
  for (size_t a = 0; a < cfg->naccounts; a++) {
    lim[a].rps = cfg->accounts[a].limits.requests_per_second;
    lim[a].burst = cfg->accounts[a].limits.burst;
    lim[a].max_in_flight = cfg->accounts[a].limits.max_in_flight;
    p->accounts[a].retry_credit[JOB_LIST] = PASS_RETRY_CREDIT_START;
    p->accounts[a].retry_credit[JOB_WRITE] = PASS_RETRY_CREDIT_START;
  }
  rc = queue_init(&p->queue, (uint32_t)cfg->naccounts, lim,
                  (uint32_t)(cfg->ncertificates ? cfg->ncertificates : 1),
                  p->opts.seed ? p->opts.seed
                               : (uint64_t)unix_ms(p) ^ (uint64_t)getpid(),
                  now_ms(p));
  free(lim);
  if (rc == 0)
    rc = live_state_init(&p->live, cfg->ncertificates);
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
  pump(p);
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
  struct log_kv kv[3];
  int rc;

  p->res.started_ms = unix_ms(p);
  rc = alloc_state(p);
  if (rc < 0)
    return rc; /* pass_free() cleans up; done is never called */
  set_memory_bounds(p);

  kv[0] = (struct log_kv){"certificates", (long long)cfg->ncertificates};
  kv[1] = (struct log_kv){"bindings", (long long)cfg->nbindings};
  kv[2] = (struct log_kv){"dry_run", p->opts.dry_run || !p->opts.write};
  f.kv = kv;
  f.nkv = 3;
  log_event(p->log, LOG_INFO, "pass.start", &f, "mode %s",
            config_mode_name(cfg->policy.mode));
  take_cached_tokens(p);

  for (size_t c = 0; c < cfg->ncertificates; c++) {
    struct job *j = job_new(p, JOB_LIST, (uint32_t)c);
    if (!j)
      return -ENOMEM;
    j->purpose = LIST_INITIAL;
    p->reads_left++;
    /* A password account's reads wait for its IAM token. */
    if (cert_account(p, (uint32_t)c)->auth_method == CONFIG_AUTH_PASSWORD &&
        !p->accounts[cfg->certificates[c].account].token.value) {
      park_job(p, j);
      p->requests_planned++;
    } else if (job_push(p, j, 0) < 0) {
      job_free(j);
      return -ENOMEM;
    }
  }
  /* Handles last: once they exist, the pass ends only through done(). */
  rc = init_handles(p);
  if (rc < 0)
    return rc;
  p->started = true;
  p->done = done;
  p->done_arg = arg;
  sort_wanted_off_loop(p);
  pump(p);
  return 0;
}

void pass_stop(struct pass *p)
{
  struct queue_job *qj;

  if (!p || !p->started || p->stopping || p->phase == PHASE_DONE)
    return;
  p->stopping = true;
  uv_timer_stop(&p->timer);
  /* Queued work is dropped: writes stay pending, nothing is sent. */
  for (uint32_t a = 0; a < p->cfg->naccounts; a++) {
    while ((qj = queue_drain_account(&p->queue, a)))
      drop_job(p, qj->data);
    for (size_t k = 0; k < p->accounts[a].nparked; k++)
      drop_job(p, p->accounts[a].parked[k]);
    p->accounts[a].nparked = 0;
  }
  if (p->phase == PHASE_SOAK) {
    uv_timer_stop(&p->soak);
    finish(p);
    return;
  }
  if (p->in_flight == 0 && p->pool_work == 0) {
    if (p->phase == PHASE_READ)
      p->res.outcome = PASS_INTERRUPTED;
    finish(p);
  }
}

int pass_remember(const struct pass *p, struct memo_set *out)
{
  struct memo_set next = {0};
  char key[MEMO_KEY_MAX];
  int rc = 0;

  for (size_t i = 0; rc == 0 && p->items && i < p->plan.nitems; i++) {
    const struct pass_item *it = &p->items[i];
    struct memo m = {0};

    if (item_memo_key(p, &p->plan.items[i], key, sizeof(key)))
      continue;
    if (it->held) {
      rc = memo_set_add(&next, it->held);
      continue;
    }
    if (it->state != ITEM_FAILED)
      continue;
    m.key = key;
    memo_next(&m, memo_find(p->opts.memory, key), it->permanent,
              p->res.ended_ms / 1000);
    m.attempts = it->attempts;
    snprintf(m.error_code, sizeof(m.error_code), "%s", it->error_code);
    m.error_msg = it->error_msg;
    snprintf(m.request_id, sizeof(m.request_id), "%s", it->request_id);
    rc = memo_set_add(&next, &m);
  }
  if (rc < 0) {
    memo_set_free(&next);
    return rc;
  }
  memo_set_sort(&next);
  memo_set_free(out);
  *out = next;
  return 0;
}

const char *pass_outcome_name(enum pass_outcome o)
{
  static const char *const names[] = {"converged",  "planned", "partial",
                                      "failed",     "refused", "aborted",
                                      "interrupted"};
  return names[o];
}

static void release(struct pass *p)
{
  if (p->accounts) {
    for (size_t a = 0; a < p->cfg->naccounts; a++) {
      auth_token_clear(&p->accounts[a].token);
      free(p->accounts[a].parked);
    }
  }
  for (size_t i = 0; p->items && i < p->plan.nitems; i++)
    free(p->items[i].error_msg);
  free(p->items);
  free(p->accounts);
  free(p->certs);
  free(p->binding_item);
  free(p->wave_end);
  plan_free(&p->plan);
  plan_wanted_free(&p->wanted);
  live_state_free(&p->live);
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

bool pass_ledger_dirty(const struct pass *p)
{
  return p->ledger_dirty;
}

/* ---- results -------------------------------------------------------- */

static enum status_state item_status(const struct pass_item *it)
{
  switch (it->state) {
  case ITEM_CONVERGED:
    return STATUS_CONVERGED;
  case ITEM_FAILED:
    return STATUS_FAILED;
  default:
    return STATUS_PENDING;
  }
}

static char *dup_or_null(const char *s)
{
  return s && *s ? strdup(s) : NULL;
}

static int fill_binding(const struct pass *p, struct status_binding *sb,
                        uint32_t cert, uint32_t gw, const char *instance_id,
                        const char *domain, bool verify,
                        enum status_state state, const char *code,
                        const char *msg, const char *request_id,
                        uint32_t attempts)
{
  const struct config_certificate *c = &p->cfg->certificates[cert];

  sb->account = strdup(p->cfg->accounts[c->account].name);
  sb->certificate = strdup(c->name);
  sb->certificate_id = strdup(c->id);
  sb->gateway = strdup(gw == UINT32_MAX ? "" : p->cfg->gateways[gw].name);
  sb->instance_id = strdup(instance_id);
  sb->domain = strdup(domain);
  sb->verify_client = verify;
  sb->state = state;
  sb->attempts = attempts;
  if (state == STATUS_FAILED) {
    sb->error_code = dup_or_null(code);
    sb->error_msg = dup_or_null(msg);
    sb->request_id = dup_or_null(request_id);
  }
  return sb->account && sb->certificate && sb->certificate_id && sb->gateway &&
                 sb->instance_id && sb->domain
             ? 0
             : -ENOMEM;
}

/* A pending binding with why it is pending (an unreachable account). */
static int pending_reason(struct status_binding *sb, const char *code,
                          const char *msg)
{
  sb->error_code = dup_or_null(code);
  sb->error_msg = dup_or_null(msg);
  return sb->error_code && sb->error_msg ? 0 : -ENOMEM;
}

static int status_pass_fields(const struct pass *p, struct status_pass *sp)
{
  static const char *const outcome_names[] = {
      "converged", "converged", "partial",    "failed",
      "refused",   "aborted",   "interrupted"};

  sp->started_ms = p->res.started_ms;
  sp->ended_ms = p->res.ended_ms;
  sp->outcome = strdup(outcome_names[p->res.outcome]);
  sp->command = strdup(p->opts.command ? p->opts.command : "apply");
  sp->mode = strdup(config_mode_name(p->cfg->policy.mode));
  sp->config_sha256 = strdup(p->cfg->sha256);
  sp->message = strdup(p->message);
  sp->attached = p->res.counts.attached;
  sp->changed = p->res.counts.changed;
  sp->detached = p->res.counts.detached;
  sp->unchanged = p->res.counts.unchanged;
  sp->failed = p->res.counts.failed;
  sp->pending = p->res.counts.pending;
  sp->uncertain = p->res.counts.uncertain;
  sp->requests = p->res.counts.requests;
  sp->retries = p->res.counts.retries;
  return sp->outcome && sp->command && sp->mode && sp->config_sha256 &&
                 sp->message
             ? 0
             : -ENOMEM;
}

/* The pass did not reach a binding of the file, which then keeps what an
 * earlier pass knew of it (docs/cli.md, status.json): the pass ended
 * before its plan and the certificate's read did not fail, or the binding
 * needed a write that was never sent (the pass was stopped, refused, or
 * aborted before its wave). A binding the daemon's memory held back is
 * reached: that memory is what is known of it. */
static bool binding_unreached(const struct pass *p, const struct pass_cert *pc,
                              const struct pass_item *it)
{
  if (!p->items)
    return pc && !pc->read_failed;
  return it && it->state == ITEM_PENDING && !it->held && it->attempts == 0;
}

static const struct pass_item *binding_item(const struct pass *p, size_t b)
{
  size_t i = p->binding_item ? p->binding_item[b] : SIZE_MAX;

  return p->items && i != SIZE_MAX ? &p->items[i] : NULL;
}

static int replace_str(char **dst, const char *src)
{
  char *s = src ? strdup(src) : NULL;

  if (src && !s)
    return -ENOMEM;
  free(*dst);
  *dst = s;
  return 0;
}

/* sb, not reached by this pass, takes old's state: all of it when the pass
 * never planned it; when the pass saw that it needs a write, a known
 * failure or wait still holds, "converged" no longer does. An entry for
 * another client-verification flag is another binding. */
static int take_previous(struct status_binding *sb,
                         const struct status_binding *old, bool planned)
{
  int rc;

  if (old->verify_client != sb->verify_client ||
      (planned && old->state == STATUS_CONVERGED))
    return 0;
  sb->state = old->state;
  sb->attempts = old->attempts;
  sb->next_retry = old->next_retry;
  rc = replace_str(&sb->error_code, old->error_code);
  if (rc == 0)
    rc = replace_str(&sb->error_msg, old->error_msg);
  if (rc == 0)
    rc = replace_str(&sb->request_id, old->request_id);
  return rc;
}

static int status_binding_of(const struct pass *p, size_t b,
                             struct status_binding *sb)
{
  const struct config *cfg = p->cfg;
  const struct config_binding *cb = &cfg->bindings[b];
  const struct pass_cert *pc = &p->certs[cb->certificate];
  const struct pass_item *it = binding_item(p, b);
  enum status_state state = STATUS_CONVERGED;
  const char *code = NULL, *msg = NULL, *rid = NULL;
  uint32_t attempts = 0;
  int rc;

  if (it) {
    state = item_status(it);
    code = it->error_code;
    msg = it->error_msg;
    rid = it->request_id;
    attempts = it->attempts;
  } else if (pc->read_failed) {
    /* an unreachable account's bindings were not reached: pending */
    state = pc->unreachable ? STATUS_PENDING : STATUS_FAILED;
    code = pc->read_error.code;
    msg = pc->read_error.msg;
    rid = pc->read_error.request_id;
  } else if (!p->items) {
    state = STATUS_PENDING; /* the pass ended before its plan */
  }
  rc = fill_binding(p, sb, (uint32_t)cb->certificate, (uint32_t)cb->gateway,
                    cfg->gateways[cb->gateway].instance_id, cb->domain,
                    cb->verify_client, state, code, msg, rid, attempts);
  sb->next_retry = it && it->held ? it->held->next_retry : 0;
  if (rc == 0 && !it && pc->unreachable)
    rc = pending_reason(sb, code, msg);
  return rc;
}

static int cmp_cert_id(const void *a, const void *b)
{
  return strcmp((*(const struct config_certificate *const *)a)->id,
                (*(const struct config_certificate *const *)b)->id);
}

/* The file's certificate of that id whose live state this pass does not
 * know (no plan, or its read failed), or NULL. */
static const struct config_certificate *
unread_cert(const struct pass *p, const struct config_certificate **by_id,
            const char *id)
{
  struct config_certificate probe = {.id = (char *)id};
  const struct config_certificate *pk = &probe, **hit;
  size_t c;

  hit = bsearch(&pk, by_id, p->cfg->ncertificates, sizeof(*by_id), cmp_cert_id);
  if (!hit)
    return NULL;
  c = (size_t)(*hit - p->cfg->certificates);
  return !p->items || p->certs[c].read_failed ? *hit : NULL;
}

/* Entries of the earlier status that are no binding of the file (detaches
 * that were pending or failed), of certificates whose live state this
 * pass does not know: kept as they were. used: the entries (by position in
 * ix) that are bindings of the file. */
static int keep_previous_detaches(const struct pass *p,
                                  const struct status_index *ix,
                                  const bool *used, struct status *st)
{
  const struct config_certificate **by_id;
  struct status_binding *grown;
  size_t keep = 0, n = p->cfg->ncertificates;
  int rc = 0;

  by_id = malloc((n ? n : 1) * sizeof(*by_id));
  if (!by_id)
    return -ENOMEM;
  for (size_t c = 0; c < n; c++)
    by_id[c] = &p->cfg->certificates[c];
  qsort(by_id, n, sizeof(*by_id), cmp_cert_id);
  for (size_t k = 0; k < ix->n; k++)
    keep += !used[k] && unread_cert(p, by_id, ix->sorted[k]->certificate_id);
  grown = keep ? realloc(st->bindings,
                         (st->nbindings + keep) * sizeof(*st->bindings))
               : st->bindings;
  if (!grown)
    rc = -ENOMEM;
  else
    st->bindings = grown;
  for (size_t k = 0; rc == 0 && keep && k < ix->n; k++) {
    if (used[k] || !unread_cert(p, by_id, ix->sorted[k]->certificate_id))
      continue;
    rc = status_binding_copy(&st->bindings[st->nbindings], ix->sorted[k]);
    st->nbindings += rc == 0;
  }
  free(by_id);
  return rc;
}

int pass_status(const struct pass *p, const struct status *prev,
                struct status *st)
{
  const struct config *cfg = p->cfg;
  struct status_index ix = {0};
  bool *used = NULL;
  size_t n = cfg->nbindings, pos;
  int rc;

  memset(st, 0, sizeof(*st));
  for (size_t i = 0; p->items && i < p->plan.nitems; i++)
    n += p->plan.items[i].op == PLAN_DETACH &&
         p->items[i].state != ITEM_CONVERGED;
  st->bindings = calloc(n ? n : 1, sizeof(*st->bindings));
  rc = st->bindings ? status_index_build(prev, &ix) : -ENOMEM;
  if (rc == 0 && ix.n && !(used = calloc(ix.n, sizeof(*used))))
    rc = -ENOMEM;
  if (rc == 0)
    rc = status_pass_fields(p, &st->pass);
  for (size_t b = 0; rc == 0 && b < cfg->nbindings; b++) {
    const struct config_binding *cb = &cfg->bindings[b];
    const struct pass_item *it = binding_item(p, b);
    struct status_binding *sb = &st->bindings[st->nbindings++];
    const struct status_binding *old;

    rc = status_binding_of(p, b, sb);
    old = status_index_find(&ix, sb->certificate_id, sb->instance_id,
                            sb->domain, &pos);
    if (old)
      used[pos] = true;
    if (rc == 0 && old && binding_unreached(p, &p->certs[cb->certificate], it))
      rc = take_previous(sb, old, it != NULL);
  }
  for (size_t i = 0; rc == 0 && p->items && i < p->plan.nitems; i++) {
    const struct plan_item *pi = &p->plan.items[i];
    const struct pass_item *it = &p->items[i];
    struct status_binding *sb;
    const struct status_binding *old;

    if (pi->op != PLAN_DETACH || it->state == ITEM_CONVERGED)
      continue;
    sb = &st->bindings[st->nbindings++];
    rc = fill_binding(p, sb, pi->cert, pi->gateway, pi->instance_id, pi->domain,
                      pi->verify_client, item_status(it), it->error_code,
                      it->error_msg, it->request_id, it->attempts);
    old = status_index_find(&ix, sb->certificate_id, sb->instance_id,
                            sb->domain, &pos);
    if (old)
      used[pos] = true;
    if (rc == 0 && old && binding_unreached(p, NULL, it))
      rc = take_previous(sb, old, true);
  }
  if (rc == 0 && ix.n)
    rc = keep_previous_detaches(p, &ix, used, st);
  free(used);
  status_index_free(&ix);
  if (rc < 0)
    status_free(st);
  return rc;
}

bool pass_reached_all(const struct pass *p)
{
  if (!p->items)
    return false;
  for (size_t c = 0; p->certs && c < p->cfg->ncertificates; c++) {
    if (p->certs[c].read_failed)
      return false;
  }
  for (size_t i = 0; i < p->plan.nitems; i++) {
    if (binding_unreached(p, NULL, &p->items[i]))
      return false;
  }
  return true;
}

bool pass_succeeded(const struct pass *p)
{
  if ((p->res.outcome != PASS_CONVERGED && p->res.outcome != PASS_PARTIAL) ||
      !p->items || p->res.counts.pending)
    return false;
  for (size_t c = 0; p->certs && c < p->cfg->ncertificates; c++) {
    if (p->certs[c].read_failed)
      return false;
  }
  /* a permanent failure is only ever recorded for a write of one domain
   * (a failed batch is split until the bad domain stands alone) */
  for (size_t i = 0; i < p->plan.nitems; i++) {
    const struct pass_item *it = &p->items[i];
    if (it->state != ITEM_CONVERGED &&
        !(it->state == ITEM_FAILED && it->permanent))
      return false;
  }
  return true;
}

static const char *short_request(const char *rid, char buf[16])
{
  if (strlen(rid) <= 12)
    return rid;
  snprintf(buf, 16, "%.4s\xe2\x80\xa6", rid);
  return buf;
}

/* One line per unreachable account: its certificates were not read. */
static void print_unreachable(const struct pass *p, FILE *out, bool color)
{
  for (size_t a = 0; p->certs && a < p->cfg->naccounts; a++) {
    const struct pass_cert *first = NULL;
    size_t n = 0;
    for (size_t c = 0; c < p->cfg->ncertificates; c++) {
      if (p->certs[c].unreachable && p->cfg->certificates[c].account == a) {
        first = first ? first : &p->certs[c];
        n++;
      }
    }
    if (n)
      fprintf(out, "  %spending%s  %zu certificate%s not read: %s %s\n",
              color ? "\033[33m" : "", color ? "\033[0m" : "", n,
              n == 1 ? "" : "s", first->read_error.code, first->read_error.msg);
  }
}

void pass_print_summary(const struct pass *p, FILE *out, bool color)
{
  const struct pass_counts *k = &p->res.counts;
  double secs = (double)(p->res.ended_ms - p->res.started_ms) / 1000.0;
  uint64_t written = k->attached + k->changed + k->detached;
  size_t shown = 0;
  char rbuf[16];

  if (p->res.outcome == PASS_REFUSED || p->res.outcome == PASS_ABORTED) {
    fprintf(out, "%s%s%s\n", color ? "\033[31m" : "", p->message,
            color ? "\033[0m" : "");
    if (p->res.outcome == PASS_REFUSED)
      return;
  }
  fprintf(out,
          "done in %.1f s: %llu binding%s written in %llu request%s, "
          "%llu unchanged, %llu failed",
          secs, (unsigned long long)written, written == 1 ? "" : "s",
          (unsigned long long)k->writes, k->writes == 1 ? "" : "s",
          (unsigned long long)k->unchanged, (unsigned long long)k->failed);
  if (k->pending)
    fprintf(out, ", %llu pending", (unsigned long long)k->pending);
  fputc('\n', out);
  for (size_t i = 0; p->items && i < p->plan.nitems; i++) {
    const struct pass_item *it = &p->items[i];
    const struct plan_item *pi = &p->plan.items[i];
    if (it->state != ITEM_FAILED)
      continue;
    if (shown++ == 20) {
      fprintf(out, "  … and %llu more (certbind status lists them all)\n",
              (unsigned long long)(k->failed - 20));
      break;
    }
    fprintf(out, "  %sfailed%s  %s on %s: %s %s", color ? "\033[31m" : "",
            color ? "\033[0m" : "", pi->domain,
            pi->gateway == UINT32_MAX ? pi->instance_id
                                      : p->cfg->gateways[pi->gateway].name,
            it->error_code, it->error_msg ? it->error_msg : "");
    if (it->request_id[0])
      fprintf(out, " (request %s)", short_request(it->request_id, rbuf));
    fputc('\n', out);
  }
  /* A certificate whose live state could not be read was not planned:
   * say so, or "0 failed" with exit 1 would explain nothing. */
  for (size_t c = 0; p->certs && c < p->cfg->ncertificates; c++) {
    const struct pass_cert *pc = &p->certs[c];
    if (!pc->read_failed || pc->unreachable)
      continue;
    fprintf(out, "  %sfailed%s  certificate %s: live state unreadable: %s %s",
            color ? "\033[31m" : "", color ? "\033[0m" : "",
            p->cfg->certificates[c].name, pc->read_error.code,
            pc->read_error.msg);
    if (pc->read_error.request_id[0])
      fprintf(out, " (request %s)",
              short_request(pc->read_error.request_id, rbuf));
    fputc('\n', out);
  }
  print_unreachable(p, out, color);
}
