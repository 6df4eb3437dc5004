/* SPDX-License-Identifier: MIT */
/*
 * pass_read: list reads. A read lists one certificate's bindings, page
 * after page; once its first page gives the total, the other pages are
 * read at once, each by a child job (a confirmation read starts them
 * before, from the count its writes should leave). The read's pieces
 * still out are counted in one place (read_hold, read_release), and the
 * read ends once, with its last piece (read_resolve). Big pages are
 * parsed on libuv's thread pool; what the pages may make the pass hold is
 * bounded (PASS_LIVE_PER_BINDING).
 */
#include "pass_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certfile.h"
#include "show_cache.h"

static void read_hold(struct job *head);
static void read_release(struct pass *p, struct job *head);
static void read_resolve(struct pass *p, struct job *head);

static void show_dispatch(struct pass *p, struct job *j);
static void show_done(struct pass *p, struct job *j, struct http_response *rs,
                      const struct outcome *o);

/* Send read call c (its URL built, or rc < 0) for job j; on failure the
 * job is abandoned with the reason. The one tail of every read. */
static void submit_read(struct pass *p, struct job *j, struct call *c,
                        enum apig_op op, size_t max_body, int rc)
{
  struct apig_error why;

  if (rc == 0) {
    c->p = p;
    c->job = j;
    c->op = op;
    c->account = j->q.account;
    c->rq.max_body = max_body;
    rc = call_submit(p, c, pass_cert_account(p, j->cert), "GET", true);
    if (rc == 0)
      return;
  }
  if (c)
    call_free(c);
  queue_complete(&p->queue, &j->q, QUEUE_FAILURE, pass_now_ms(p));
  why = pass_error("internal", strerror(-rc));
  job_abandon(p, j, &why);
}

void read_dispatch(struct pass *p, struct job *j)
{
  const struct config_account *acct = pass_cert_account(p, j->cert);
  struct call *c;
  int rc;

  if (j->purpose == LIST_SHOW) {
    show_dispatch(p, j);
    return;
  }
  confirm_sent(p, j);
  c = calloc(1, sizeof(*c));
  rc = c ? 0 : -ENOMEM;
  if (rc == 0)
    rc = apig_url_list_at(pass_cert_endpoint(p, j->cert), acct->project_id,
                          p->cfg->certificates[j->cert].id, APIG_LIST_LIMIT,
                          j->offset, NULL, &c->url);
  submit_read(p, j, c, APIG_OP_LIST, APIG_MAX_LIST_BODY, rc);
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

/* A child read of the page of j's certificate at offset off; j counts it
 * once it is pushed (read_hold). NULL when out of memory. */
static struct job *page_child(struct pass *p, struct job *j, long off)
{
  struct job *c = job_new(p, JOB_LIST, j->cert);

  if (!c)
    return NULL;
  c->purpose = j->purpose;
  c->parent = j;
  c->offset = off;
  c->pages_left = 0; /* a piece of j's read, not a read of its own */
  return c;
}

/* A confirmation read does not wait for its first page's total to read
 * the others: the pages the expected count needs start with the first
 * (fan_out_pages adds what the total shows beyond them, and a short list
 * only makes a page come back empty). Saves a round trip per pass. */
void read_spec_fan_out(struct pass *p, struct job *j, uint64_t delay)
{
  size_t want = expected_live(p, j->cert);
  long end = APIG_LIST_LIMIT;

  if (want <= APIG_LIST_LIMIT ||
      want / APIG_LIST_LIMIT >= (size_t)LIST_MAX_PAGES)
    return;
  j->spec = true;
  for (; (size_t)end < want; end += APIG_LIST_LIMIT) {
    struct job *c = page_child(p, j, end);
    if (!c)
      break;
    if (job_push(p, c, delay) < 0) {
      job_free(c);
      break;
    }
    read_hold(j);
  }
  j->spec_end = end;
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

/* All pages of one certificate read: the read ends (job_end) before its
 * live state is used, so that a confirmation it schedules is the next. */
static void on_list_complete(struct pass *p, struct job *j)
{
  struct live_cert lc = {0};
  struct job *w = j->verify;
  enum list_purpose purpose = j->purpose;
  uint32_t cert = j->cert;

  if (purpose == LIST_INITIAL) {
    struct live_cert *dst = &p->live.certs[cert];
    p->live.now_s = pass_unix_s(p); /* the expiry rule's time: the reads' */
    dst->b = j->acc;
    memset(&j->acc, 0, sizeof(j->acc));
    j->charged = 0; /* the live state's now, for the whole pass */
    live_cert_finish(dst);
    /* kept for the whole pass: its entries share their gateway's ID, and
     * its array is trimmed (10,000 certificates of 10 bindings held 64
     * slots each, 15 MB instead of 2.4) */
    apig_bindings_share_instances(
        &dst->b, 0, (const char *const *)p->instance_ids, p->ninstance_ids);
    apig_bindings_trim(&dst->b);
    job_end(p, j, JOB_DONE, NULL);
    return;
  }
  lc.b = j->acc;
  memset(&j->acc, 0, sizeof(j->acc));
  j->verify = NULL;              /* w goes on (on_verify_read) */
  job_end(p, j, JOB_DONE, NULL); /* uncharges what lc holds */
  live_cert_finish(&lc);
  if (purpose == LIST_CONFIRM)
    write_confirm_read(p, cert, &lc);
  else
    write_verify_read(p, w, &lc);
  live_cert_clear(&lc);
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
    return false;  /* the sequential path refuses it with a clear error */
  j->spec = false; /* its own hold keeps it while the children are made */
  for (long off = from; off < total; off += stride) {
    struct job *c = page_child(p, j, off);
    if (!c)
      break;
    read_hold(j);
    if (job_push(p, c, 0) < 0) {
      struct apig_error why = pass_error("internal", "queue refused a read");
      job_abandon(p, c, &why);
      continue;
    }
    n++;
  }
  if (n == 0 && from < total && !j->page_failed && j->pages_left == 1)
    return false;     /* nothing started: read on sequentially */
  read_release(p, j); /* its own reading is over */
  return true;
}

/* A read starts over from its first page (it is retried: max_attempts and
 * the retry budget bound how often). */
static void read_again(struct pass *p, struct job *j, struct outcome *bad)
{
  call_log(p, LOG_WARN, "list.retry", j, APIG_OP_LIST, bad, -1, NULL);
  if (!j->spec) /* a speculative parent's acc holds its children's pages */
    acc_free(j);
  if (!j->parent) { /* a parent starts over; a child re-reads its page */
    j->offset = 0;
    j->pages = 0;
    j->total0 = -1;
  }
  call_retry(p, j, bad);
}

static void bad_page(struct outcome *bad, const struct outcome *o,
                     const char *msg)
{
  *bad = *o;
  bad->cls = APIG_RETRY;
  snprintf(bad->err.code, sizeof(bad->err.code), "bad-response");
  snprintf(bad->err.msg, sizeof(bad->err.msg), "%s", msg);
}

/* One more piece of head's read is out: a child that entered the pass. */
static void read_hold(struct job *head)
{
  head->pages_left++;
}

/* One piece of head's read is over; the last one ends the read. */
static void read_release(struct pass *p, struct job *head)
{
  if (--head->pages_left == 0)
    read_resolve(p, head);
}

/* Every piece of head's read is over: it ends as its pieces said. */
static void read_resolve(struct pass *p, struct job *head)
{
  if (head->page_dropped) {
    job_end(p, head, JOB_DROPPED, NULL);
    return;
  }
  if (head->page_failed) {
    struct apig_error e = job_page_err(head);
    log_event(p->log, LOG_ERROR, "list.failed", NULL, "%s: %s", e.code, e.msg);
    job_abandon(p, head, &e);
    return;
  }
  if (head->restart) { /* a page said the list changed: read it again */
    struct outcome bad;
    struct outcome none = {.cls = APIG_RETRY, .err = job_page_err(head)};
    head->restart = false;
    read_hold(head); /* its own reading again */
    bad_page(&bad, &none, none.err.msg);
    read_again(p, head, &bad);
    return;
  }
  on_list_complete(p, head);
}

/* A job of a read ends (job_end) while other pieces of that read are out:
 * a child, or a parent whose speculative children are out. Its read is
 * marked (the first failure, or dropped) and released, and ends with its
 * last piece. false: j is the read's last piece, to end as a whole. */
bool read_piece_end(struct pass *p, struct job *j, enum job_end how,
                    const struct apig_error *why)
{
  struct job *head = j->parent ? j->parent : j;

  if (!j->parent && j->pages_left <= 1)
    return false;
  if (how == JOB_DROPPED) {
    head->page_dropped = true;
  } else if (how == JOB_FAILED && !head->page_failed) {
    head->page_failed = true;
    job_set_page_err(head, why);
  }
  if (j->parent)
    job_free(j);
  else
    j->spec = false; /* its own reading is over */
  read_release(p, head);
  return true;
}

/* A page's total is larger than its read's first page said: the list
 * changed while it was read (or the server makes it up as it goes, never
 * ending). The whole read starts over, which fails the certificate once
 * its attempts are spent (an error for that certificate alone). */
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
    struct apig_error e = pass_error("", msg);
    snprintf(e.request_id, sizeof(e.request_id), "%s", o->err.request_id);
    job_set_page_err(head, &e);
  }
  job_end(p, j, JOB_DONE, NULL); /* head reads again once all are over */
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
  call_log(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, &bad, -1, NULL);
  if (!j->spec)
    acc_free(j);
  job_abandon(p, j, &bad.err);
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
    job_end(p, j, JOB_DONE, NULL);
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
      call_log(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, &bad, -1, NULL);
      acc_free(j);
      job_abandon(p, j, &bad.err);
      return;
    }
    j->offset += (long)page->count;
    j->q.attempt = 0;
    if (job_push(p, j, 0) < 0) {
      struct apig_error err = pass_error("internal", "queue refused a read");
      job_abandon(p, j, &err);
    }
    return;
  }
  j->spec = false;    /* its speculative children may still be out */
  read_release(p, j); /* its own reading is over */
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
    /* cancelled: as an aborted read, nothing learnt */
    job_end(p, w->j, JOB_DROPPED, NULL);
  } else {
    append_bindings(&w->j->acc, &w->out);
    on_list_page(p, w->j, &w->o, w->rc, &w->page, w->why);
  }
  apig_bindings_free(&w->out);
  free(w->body);
  free(w);
  pass_pump(p);
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

void read_done(struct pass *p, struct job *j, struct http_response *rs,
               const struct outcome *o)
{
  struct apig_page page;
  char why[128] = "";
  int rc;

  if (j->purpose == LIST_SHOW) {
    show_done(p, j, rs, o);
    return;
  }
  switch (o->cls) {
  case APIG_OK:
    if (parse_page_off_loop(p, j, rs, o) == 0)
      return;
    rc = apig_parse_list(rs->body, rs->body_len, &j->acc, &page, why,
                         sizeof(why));
    on_list_page(p, j, o, rc, &page, why);
    return;
  case APIG_REAUTH:
    if (token_reauth(p, j))
      return;
    /* fall through */
  case APIG_AUTH_FATAL:
    call_log(p, LOG_ERROR, "list.failed", j, APIG_OP_LIST, o, rs->latency_ms,
             NULL);
    account_block(p, j->q.account, &o->err);
    job_abandon(p, j, &o->err);
    return;
  case APIG_PERMANENT:
  case APIG_DONE_ALREADY:
    /* a probe asks every account: "not in this project" is an answer */
    call_log(p, p->opts.probe && o->status == 404 ? LOG_INFO : LOG_ERROR,
             "list.failed", j, APIG_OP_LIST, o, rs->latency_ms, NULL);
    job_abandon(p, j, &o->err);
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    call_log(p, LOG_WARN, "list.retry", j, APIG_OP_LIST, o, rs->latency_ms,
             NULL);
    call_retry(p, j, o);
    return;
  }
}

/* ---- the Show of an id certificate: its SANs and not_after ------------- */

/* Within policy.expiry_warning_days of its end (and not yet over: an
 * expired certificate's attaches are plan errors, said there): one
 * certificate.expiring warning, once per pass, with the certificate, its
 * id, not_after and the days left. */
static void note_expiry(struct pass *p, uint32_t cert, int64_t not_after)
{
  const struct config_certificate *cc = &p->cfg->certificates[cert];
  int64_t now = (int64_t)pass_unix_s(p);
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[2];
  long days;
  char date[16];

  if (not_after == 0)
    return;
  days = plan_days_left(not_after, now);
  if (days > (long)p->cfg->policy.expiry_warning_days)
    return;
  plan_format_date(not_after, date);
  pass_cert_fields(p, cert, &f);
  kv[0] = (struct log_kv){"not_after", (long long)not_after};
  kv[1] = (struct log_kv){"days_left", (long long)days};
  f.kv = kv;
  f.nkv = 2;
  if (not_after <= now)
    log_event(p->log, LOG_ERROR, "certificate.expired", &f,
              "certificate %s (id %s) expired on %s: it is never bound",
              cc->name, cc->id ? cc->id : "none", date);
  else
    log_event(p->log, LOG_WARN, "certificate.expiring", &f,
              "certificate %s (id %s) expires on %s, in %ld day%s "
              "(policy.expiry_warning_days %u)",
              cc->name, cc->id ? cc->id : "none", date, days,
              days == 1 ? "" : "s", p->cfg->policy.expiry_warning_days);
}

/* ---- the daemon's kept Shows (pass_opts.shows) ------------------------- */

int read_shows_init(struct pass *p)
{
  const struct config *cfg = p->cfg;
  uint32_t *lo;

  if (!p->opts.shows)
    return 0;
  lo = calloc(cfg->ncertificates + 1, sizeof(*lo));
  p->show_bindings =
      malloc((cfg->nbindings ? cfg->nbindings : 1) * sizeof(*p->show_bindings));
  p->show_binding_lo = lo;
  if (!lo || !p->show_bindings)
    return -ENOMEM;
  /* a counting sort: lo[c] is where c's bindings start, then end */
  for (size_t b = 0; b < cfg->nbindings; b++)
    lo[cfg->bindings[b].certificate + 1]++;
  for (size_t c = 0; c < cfg->ncertificates; c++)
    lo[c + 1] += lo[c];
  for (size_t b = 0; b < cfg->nbindings; b++)
    p->show_bindings[lo[cfg->bindings[b].certificate]++] = (uint32_t)b;
  memmove(lo + 1, lo, cfg->ncertificates * sizeof(*lo));
  lo[0] = 0;
  return 0;
}

void read_shows_free(struct pass *p)
{
  free(p->show_binding_lo);
  free(p->show_bindings);
  p->show_binding_lo = p->show_bindings = NULL;
}

/* An id certificate of the file's key in pass_opts.shows: < 0 when there
 * is none (no cache, not an id certificate of the file, too long). */
static int show_key(const struct pass *p, uint32_t cert, char *buf, size_t len)
{
  if (!p->opts.shows || cert >= p->nfile_certs)
    return -ENOENT;
  return show_cache_key(buf, len, p->cfg, cert);
}

/* The plan's SAN rule (certfile_covers) for every domain the file wants
 * on cert: a kept Show that does not cover one is shown again, so that a
 * certificate-not-covered error never comes from an old answer. */
static bool show_covers_file(const struct pass *p, uint32_t cert,
                             const struct apig_cert *show)
{
  for (uint32_t k = p->show_binding_lo[cert]; k < p->show_binding_lo[cert + 1];
       k++) {
    const char *domain = p->cfg->bindings[p->show_bindings[k]].domain;
    if (!certfile_covers((const char *const *)show->san, show->nsan, domain))
      return false;
  }
  return true;
}

/* A kept Show may stand for this pass's: young enough, its end beyond
 * policy.expiry_warning_days (near its end a certificate is the one
 * another tool renews in place: shown fresh, so that the warnings and
 * the expired rule are current), and covering the file's domains. */
static bool show_reusable(const struct pass *p, uint32_t cert,
                          const struct show_cache_entry *e, int64_t age)
{
  if (age < 0 || age >= SHOW_CACHE_MAX_AGE_MS || e->cert.not_after == 0)
    return false;
  if (plan_days_left(e->cert.not_after, (int64_t)pass_unix_s(p)) <=
      (long)p->cfg->policy.expiry_warning_days)
    return false;
  return show_covers_file(p, cert, &e->cert);
}

static void log_show_cached(struct pass *p, uint32_t cert, int64_t age_ms)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[1] = {{"age_s", (long long)(age_ms / 1000)}};

  pass_cert_fields(p, cert, &f);
  f.kv = kv;
  f.nkv = 1;
  log_event(p->log, LOG_DEBUG, "certificate.show_cached", &f,
            "its Show of %lld s ago stands for this pass's (kept up to %lld s)",
            (long long)(age_ms / 1000),
            (long long)(SHOW_CACHE_MAX_AGE_MS / 1000));
}

/* The kept Show of cert as this pass's, when it may; else its entry goes:
 * the Show about to be sent replaces it, and one that fails (404: the
 * object is gone) must leave none. */
static bool show_from_cache(struct pass *p, uint32_t cert)
{
  struct live_cert *lc = &p->live.certs[cert];
  const struct show_cache_entry *e;
  char key[SHOW_CACHE_KEY_MAX];
  int64_t age;

  if (show_key(p, cert, key, sizeof(key)) < 0 ||
      !(e = show_cache_find(p->opts.shows, key)))
    return false;
  age = pass_unix_ms(p) - e->shown_ms;
  if (!show_reusable(p, cert, e, age) ||
      show_cache_cert_copy(&lc->show, &e->cert) < 0) {
    show_cache_evict(p->opts.shows, key);
    return false;
  }
  lc->shown = true;
  p->certs[cert].show_cached = true;
  p->live.now_s = pass_unix_s(p);
  log_show_cached(p, cert, age);
  return true;
}

/* This pass's Show of cert, kept for the next passes (out of memory: not
 * kept, shown again). */
static void show_store(struct pass *p, uint32_t cert,
                       const struct apig_cert *show)
{
  char key[SHOW_CACHE_KEY_MAX];

  if (show_key(p, cert, key, sizeof(key)) == 0)
    (void)show_cache_put(p->opts.shows, key, show, pass_unix_ms(p));
}

void read_show_forget(struct pass *p, uint32_t cert)
{
  char key[SHOW_CACHE_KEY_MAX];

  if (show_key(p, cert, key, sizeof(key)) == 0)
    show_cache_evict(p->opts.shows, key);
}

bool pass_cert_shown_cached(const struct pass *p, size_t cert)
{
  return p->certs && cert < p->ncerts && p->certs[cert].show_cached &&
         pass_cert_shown(p, cert) != NULL;
}

int read_start_show(struct pass *p, uint32_t cert)
{
  const struct config_certificate *cc = &p->cfg->certificates[cert];
  struct job *j;

  if (cc->managed) {
    note_expiry(p, cert, cc->managed->file.not_after);
    return 0;
  }
  /* A previous object of a certificate from files (pass_cert.c) is read
   * only for the bindings that move off it: its end is not the file's
   * concern, and a warning about it would be noise while it retires. */
  if (!cc->id || cert >= p->nfile_certs || show_from_cache(p, cert))
    return 0;
  j = job_new(p, JOB_LIST, cert);
  if (!j)
    return -ENOMEM;
  j->purpose = LIST_SHOW;
  j->op = APIG_OP_CERT_SHOW;
  if (pass_cert_account(p, cert)->auth_method == CONFIG_AUTH_PASSWORD &&
      !p->accounts[cc->account].token.value) {
    token_park(p, j);
    return 0;
  }
  if (job_push(p, j, 0) < 0) {
    job_free(j);
    return -ENOMEM;
  }
  return 0;
}

static void show_dispatch(struct pass *p, struct job *j)
{
  const struct config_account *acct = pass_cert_account(p, j->cert);
  struct call *c = calloc(1, sizeof(*c));
  int rc = c ? 0 : -ENOMEM;

  if (rc == 0)
    rc = apig_cert_url(pass_cert_endpoint(p, j->cert), acct->project_id,
                       APIG_OP_CERT_SHOW, p->cfg->certificates[j->cert].id,
                       &c->url);
  submit_read(p, j, c, APIG_OP_CERT_SHOW, APIG_MAX_CERT_BODY, rc);
}

/* A Show that cannot help: the certificate's names and end stay unknown
 * for this pass (no SAN or expiry rule, the metric 0) and the pass goes
 * on; the list read decides what happens to its bindings. */
static void show_unknown(struct pass *p, struct job *j, const struct outcome *o,
                         double latency, const char *why)
{
  /* a probe (import) asks every account: "not in this project" is an
   * answer, as for its lists */
  enum log_level lvl = p->opts.probe && o->status == 404 ? LOG_INFO : LOG_WARN;

  call_log(p, lvl, "certificate.show_failed", j, APIG_OP_CERT_SHOW, o, latency,
           "%s: names and expiry unknown in this pass", why);
  job_abandon(p, j, &o->err);
}

/* What a pass uses of a Show is its id, SANs (the plan's SAN rule),
 * not_before and not_after (the expiry rule) and serial (what `verify`
 * compares a served leaf with: pass_cert_shown). The other strings are
 * dropped as soon as they are parsed: seven small blocks a certificate,
 * 2.5 MB at 10,000 certificates kept for the whole pass. NULL is what
 * apig_cert_free expects of a field it has nothing for. */
static void show_drop_unused(struct apig_cert *c)
{
  char **unused[] = {&c->name,          &c->type,
                     &c->instance_id,   &c->project_id,
                     &c->common_name,   &c->signature_algorithm,
                     &c->algorithm_type};

  for (size_t i = 0; i < sizeof(unused) / sizeof(unused[0]); i++) {
    free(*unused[i]);
    *unused[i] = NULL;
  }
}

/* The Show's answer parsed into the live state. */
static void show_keep(struct pass *p, struct job *j, struct http_response *rs,
                      const struct outcome *o)
{
  struct live_cert *lc = &p->live.certs[j->cert];
  const char *id = p->cfg->certificates[j->cert].id;
  struct apig_cert cert;
  struct outcome bad;
  char why[128] = "";

  if (apig_cert_parse(rs->body, rs->body_len, &cert, why, sizeof(why)) < 0) {
    bad_page(&bad, o, why);
    show_unknown(p, j, &bad, rs->latency_ms, "the answer could not be read");
    return;
  }
  if (strcmp(cert.id, id) != 0) {
    apig_cert_free(&cert);
    bad_page(&bad, o, "the answer is of another certificate");
    show_unknown(p, j, &bad, rs->latency_ms, "the answer is of another id");
    return;
  }
  show_drop_unused(&cert);
  show_store(p, j->cert, &cert);
  apig_cert_free(&lc->show);
  lc->show = cert;
  lc->shown = true;
  p->live.now_s = pass_unix_s(p);
  note_expiry(p, j->cert, cert.not_after);
  job_end(p, j, JOB_DONE, NULL);
}

static void show_done(struct pass *p, struct job *j, struct http_response *rs,
                      const struct outcome *o)
{
  switch (o->cls) {
  case APIG_OK:
  case APIG_DONE_ALREADY:
    show_keep(p, j, rs, o);
    return;
  case APIG_REAUTH:
    if (token_reauth(p, j))
      return;
    /* fall through */
  case APIG_AUTH_FATAL:
    if (o->status == 403) { /* no permission to show: the lists may work */
      show_unknown(p, j, o, rs->latency_ms, "no permission to show it");
      return;
    }
    call_log(p, LOG_ERROR, "certificate.show_failed", j, APIG_OP_CERT_SHOW, o,
             rs->latency_ms, NULL);
    account_block(p, j->q.account, &o->err);
    job_abandon(p, j, &o->err);
    return;
  case APIG_PERMANENT:
    show_unknown(p, j, o, rs->latency_ms, "refused");
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    call_log(p, LOG_WARN, "certificate.show_retry", j, APIG_OP_CERT_SHOW, o,
             rs->latency_ms, NULL);
    call_retry(p, j, o);
    return;
  }
}
