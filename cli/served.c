/* SPDX-License-Identifier: MIT */
/*
 * served: the rounds of handshakes of a verification (served.h), as
 * callbacks on the loop: a round's probe, its close, the backoff timer,
 * the next round or the end. One timer handle; done() runs from its close.
 */
#include "served.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000

struct served {
  uv_loop_t *loop;
  const struct config *cfg;
  struct served_opts o;
  struct probe_opts probe_opts;
  struct served_cell *cells;
  size_t ncells;
  struct served **backs; /* per cell: the check (probe callbacks' arg) */
  struct probe *probe;   /* the round in progress */
  size_t outstanding;    /* its handshakes not yet answered */
  uv_timer_t wait;       /* between rounds; closed at the end */
  uint64_t deadline;     /* loop ms */
  uint64_t backoff_ms;
  unsigned rounds;
  bool started, stopping, ending, stopped;
  void (*done)(struct served *s, void *arg);
  void *done_arg;
};

/* ---- the cells --------------------------------------------------------- */

static int hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned v;

    if (sscanf(hex + 2 * i, "%2x", &v) != 1)
      return -EINVAL;
    out[i] = (unsigned char)v;
  }
  return 0;
}

/* A certificate from files is known by its leaf's SHA-256; one given by
 * id by the serial and not_after of its Show in the pass (they point into
 * the pass). false: an id certificate whose Show is not known. */
static bool want_of(const struct config_certificate *c, const struct pass *p,
                    size_t cert, struct probe_want *w)
{
  const struct apig_cert *shown = p ? pass_cert_shown(p, cert) : NULL;

  memset(w, 0, sizeof(*w));
  if (c->managed) {
    w->has_sha256 = hex_to_bytes(c->managed->file.sha256, w->sha256, 32) == 0;
    return true;
  }
  if (!shown)
    return false;
  w->serial = shown->serial_number;
  w->not_after = shown->not_after;
  return true;
}

/* Why an id certificate's cells cannot be judged: its Show (or every read
 * of it) failed in the pass. */
static void unknown_why(const struct served *s, size_t cert, char *buf,
                        size_t size)
{
  const struct config_certificate *c = &s->cfg->certificates[cert];
  const struct apig_error *e = pass_read_error(s->o.pass, cert);

  if (e && e->code[0])
    snprintf(buf, size,
             "certificate %s (id %s) could not be read (%.24s: %.60s): "
             "its serial and not_after are unknown",
             c->name, c->id, e->code, e->msg);
  else
    snprintf(buf, size,
             "certificate %s (id %s): its Show failed "
             "(certificate.show_failed in the log): its serial and not_after "
             "are unknown",
             c->name, c->id);
}

/* Whether the pass's live state shows binding b on its certificate; true
 * when that certificate's bindings are not known (nothing says it is not
 * there, so it is checked). */
static bool is_bound(const struct served *s, const struct config_binding *b)
{
  const struct pass_result *r;
  const struct live_cert *lc;

  if (!s->o.pass || !s->o.bound_only)
    return true;
  r = pass_result(s->o.pass);
  if (!r->live || b->certificate >= r->live->ncerts)
    return true;
  lc = &r->live->certs[b->certificate];
  if (!lc->known)
    return true;
  return live_cert_find(lc, s->cfg->gateways[b->gateway].instance_id,
                        b->domain) != NULL;
}

static char *sni_of(const char *domain)
{
  size_t len = strlen(domain) + sizeof(SERVED_WILDCARD_LABEL) + 1;
  char *s = malloc(len);

  if (!s)
    return NULL;
  if (strncmp(domain, "*.", 2) == 0)
    snprintf(s, len, "%s.%s", SERVED_WILDCARD_LABEL, domain + 2);
  else
    snprintf(s, len, "%s", domain);
  return s;
}

/* The column of (gateway g, address i): every gateway's addresses in the
 * file's order. */
static size_t column_of(const struct config *cfg, size_t g, size_t i)
{
  size_t col = 0;

  for (size_t k = 0; k < g; k++)
    col += cfg->gateways[k].ningress;
  return col + i;
}

/* A cell's state before any handshake: not checked yet; settled at once
 * when it is not bound or its certificate's Show failed (unknown). */
static void init_cell(struct served *s, struct served_cell *c, bool bound,
                      bool known)
{
  const struct config_binding *bd = &s->cfg->bindings[c->binding];

  c->bound = bound;
  c->verdict = PROBE_VERDICT_UNREACHABLE;
  c->last.status = PROBE_UNREACHABLE;
  snprintf(c->last.error, sizeof(c->last.error), "not checked");
  if (!bound) {
    c->settled = true;
    snprintf(c->last.error, sizeof(c->last.error), "not bound");
  } else if (!known) {
    c->settled = true;
    c->verdict = PROBE_VERDICT_UNKNOWN;
    unknown_why(s, bd->certificate, c->last.error, sizeof(c->last.error));
  }
}

static int make_cells(struct served *s)
{
  const struct config *cfg = s->cfg;
  size_t n = 0;

  for (size_t b = 0; b < cfg->nbindings; b++)
    n += cfg->gateways[cfg->bindings[b].gateway].ningress;
  s->cells = calloc(n ? n : 1, sizeof(*s->cells));
  s->backs = calloc(n ? n : 1, sizeof(*s->backs));
  if (!s->cells || !s->backs)
    return -ENOMEM;
  for (size_t b = 0; b < cfg->nbindings; b++) {
    const struct config_binding *bd = &cfg->bindings[b];
    const struct config_gateway *g = &cfg->gateways[bd->gateway];
    bool bound = g->ningress && is_bound(s, bd);

    for (size_t i = 0; i < g->ningress; i++) {
      struct served_cell *c = &s->cells[s->ncells];
      bool known;

      c->binding = b;
      c->ingress = i;
      c->column = column_of(cfg, bd->gateway, i);
      c->sni = sni_of(bd->domain);
      if (!c->sni)
        return -ENOMEM;
      /* without a pass an id certificate is tried and left unknown */
      known = want_of(&cfg->certificates[bd->certificate], s->o.pass,
                      bd->certificate, &c->want) ||
              !s->o.pass;
      init_cell(s, c, bound, known);
      s->backs[s->ncells] = s;
      s->ncells++;
    }
  }
  return 0;
}

/* ---- the rounds -------------------------------------------------------- */

static void on_wait_closed(uv_handle_t *h)
{
  struct served *s = h->data;

  s->done(s, s->done_arg);
}

static void end(struct served *s)
{
  if (s->ending)
    return;
  s->ending = true;
  uv_timer_stop(&s->wait);
  uv_close((uv_handle_t *)&s->wait, on_wait_closed);
}

static bool all_settled(const struct served *s)
{
  for (size_t i = 0; i < s->ncells; i++)
    if (!s->cells[i].settled)
      return false;
  return true;
}

static void start_round(struct served *s);

static void on_wait(uv_timer_t *t)
{
  start_round(t->data);
}

/* A round is over (its probe closed): the end, or the next after the
 * backoff, when it still ends before the deadline. */
static void on_probe_closed(void *arg)
{
  struct served *s = arg;

  s->probe = NULL;
  s->rounds++;
  uv_update_time(s->loop);
  if (s->stopping || all_settled(s) ||
      uv_now(s->loop) + s->backoff_ms >= s->deadline) {
    end(s);
    return;
  }
  uv_timer_start(&s->wait, on_wait, s->backoff_ms, 0);
  s->backoff_ms =
      s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

/* Whether the cell's certificate is an id one whose Show in the pass was
 * kept from an earlier pass (pass_cert_shown_cached). */
static bool shown_earlier(const struct served *s, const struct served_cell *c)
{
  size_t cert = s->cfg->bindings[c->binding].certificate;

  return s->o.pass && !s->cfg->certificates[cert].managed &&
         pass_cert_shown_cached(s->o.pass, cert);
}

/* A leaf other than an earlier pass's Show of the certificate may be its
 * object updated in place since: not a mismatch, which stale data cannot
 * tell, but unknown (the daemon forgets that Show: the next pass shows
 * the certificate again). */
static void mismatch_unknown(const struct served *s, struct served_cell *c)
{
  const struct config_certificate *cc =
      &s->cfg->certificates[s->cfg->bindings[c->binding].certificate];

  c->verdict = PROBE_VERDICT_UNKNOWN;
  snprintf(c->last.error, sizeof(c->last.error),
           "certificate %s (id %s): the leaf served is not the one an earlier "
           "pass's Show of it gave: it is shown again next pass",
           cc->name, cc->id);
}

static void on_probe_done(const struct probe_target *t,
                          const struct probe_result *r, void *arg)
{
  struct served **back = arg;
  struct served *s = *back;
  struct served_cell *c = &s->cells[back - s->backs];

  (void)t;
  c->last = *r;
  c->checked = (int64_t)time(NULL);
  c->attempts++;
  c->verdict = probe_judge(r, &c->want, c->checked);
  if (c->verdict == PROBE_VERDICT_MISMATCH && shown_earlier(s, c))
    mismatch_unknown(s, c);
  /* an expired leaf that is not the one wanted may be a lagging node's */
  c->settled =
      c->verdict == PROBE_VERDICT_OK || c->verdict == PROBE_VERDICT_UNKNOWN ||
      (c->verdict == PROBE_VERDICT_EXPIRED && probe_matches(r, &c->want));
  if (--s->outstanding == 0)
    probe_close(s->probe, on_probe_closed, s);
}

static void start_round(struct served *s)
{
  s->probe = probe_new(s->loop, &s->probe_opts);
  if (!s->probe) {
    end(s); /* out of memory: the cells keep what they have */
    return;
  }
  for (size_t i = 0; i < s->ncells; i++) {
    struct served_cell *c = &s->cells[i];
    const struct config_binding *bd = &s->cfg->bindings[c->binding];
    struct probe_target t;

    if (c->settled)
      continue;
    t.addr = s->cfg->gateways[bd->gateway].ingress[c->ingress].addr;
    t.sni = c->sni;
    if (probe_add(s->probe, &t, on_probe_done, &s->backs[i]) == 0)
      s->outstanding++;
  }
  if (s->outstanding == 0)
    probe_close(s->probe, on_probe_closed, s);
}

/* ---- the check --------------------------------------------------------- */

struct served *served_new(uv_loop_t *loop, const struct config *cfg,
                          const struct served_opts *o)
{
  struct served *s = calloc(1, sizeof(*s));

  if (!s)
    return NULL;
  s->loop = loop;
  s->cfg = cfg;
  if (o)
    s->o = *o;
  if (s->o.probe)
    s->probe_opts = *s->o.probe;
  if (make_cells(s) < 0) {
    served_free(s);
    return NULL;
  }
  return s;
}

int served_start(struct served *s, void (*done)(struct served *s, void *arg),
                 void *arg)
{
  uint64_t budget = s->o.deadline_ms
                        ? s->o.deadline_ms
                        : (uint64_t)s->cfg->policy.confirm_timeout_s * 1000;
  int rc;

  if (s->started)
    return -EALREADY;
  rc = uv_timer_init(s->loop, &s->wait);
  if (rc < 0)
    return rc;
  s->started = true;
  s->wait.data = s;
  s->done = done;
  s->done_arg = arg;
  s->backoff_ms = BACKOFF_FIRST_MS;
  uv_update_time(s->loop);
  s->deadline = uv_now(s->loop) + budget;
  /* from the loop, never inside served_start; 1 ms, not 0 (libuv < 1.48
   * busy-loops on a 0 ms timer started from a timer callback) */
  uv_timer_start(&s->wait, on_wait, 1, 0);
  return 0;
}

void served_stop(struct served *s)
{
  if (!s || !s->started || s->ending || s->stopping)
    return;
  s->stopping = true;
  s->stopped = true;
  if (s->probe) {
    probe_close(s->probe, on_probe_closed, s);
    return;
  }
  end(s);
}

const struct served_cell *served_cells(const struct served *s, size_t *n)
{
  *n = s->ncells;
  return s->cells;
}

unsigned served_rounds(const struct served *s)
{
  return s->rounds;
}

bool served_stopped(const struct served *s)
{
  return s->stopped;
}

bool served_all_ok(const struct served *s)
{
  for (size_t i = 0; i < s->ncells; i++)
    if (s->cells[i].bound && s->cells[i].verdict != PROBE_VERDICT_OK)
      return false;
  return !s->stopped;
}

void served_free(struct served *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->ncells; i++)
    free(s->cells[i].sni);
  free(s->cells);
  free(s->backs);
  free(s);
}

/* ---- the results into status and metrics ------------------------------ */

static const struct config_binding *binding_of(const struct served *s,
                                               const struct served_cell *c)
{
  return &s->cfg->bindings[c->binding];
}

static int served_entry(const struct served *s, const struct served_cell *c,
                        struct status_binding *b)
{
  const struct config_binding *bd = binding_of(s, c);
  const struct probe_leaf *l = &c->last.leaf;
  struct status_served e = {
      .address = (char *)s->cfg->gateways[bd->gateway].ingress[c->ingress].text,
      .result = (char *)probe_verdict_name(c->verdict),
      .checked = c->checked,
  };

  if (c->last.status == PROBE_OK) {
    e.sha256 = (char *)l->sha256_hex;
    e.serial = (char *)l->serial;
    e.subject = (char *)l->subject;
    e.not_after = l->not_after;
  } else {
    e.error = (char *)c->last.error;
  }
  return status_binding_add_served(b, &e);
}

/* cfg's bindings by (gateway name, domain): one binding per pair */
struct by_pair {
  const struct config *cfg;
  size_t *order;
};

static int cmp_pair(const struct config *cfg, size_t x, const char *gateway,
                    const char *domain)
{
  const struct config_binding *b = &cfg->bindings[x];
  int c = strcmp(cfg->gateways[b->gateway].name, gateway);

  return c ? c : strcmp(b->domain, domain);
}

static int cmp_order(const void *x, const void *y, void *arg)
{
  const struct config *cfg = arg;
  const struct config_binding *b = &cfg->bindings[*(const size_t *)y];

  return cmp_pair(cfg, *(const size_t *)x, cfg->gateways[b->gateway].name,
                  b->domain);
}

/* The binding of (gateway, domain), or SIZE_MAX. */
static size_t find_pair(const struct by_pair *ix, const char *gateway,
                        const char *domain)
{
  size_t lo = 0, hi = ix->cfg->nbindings;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_pair(ix->cfg, ix->order[mid], gateway, domain);

    if (c == 0)
      return ix->order[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return SIZE_MAX;
}

int served_to_status(const struct served *s, struct status *st)
{
  const struct config *cfg = s->cfg;
  struct by_pair ix = {cfg, calloc(cfg->nbindings + 1, sizeof(size_t))};
  size_t *first = calloc(cfg->nbindings + 1, sizeof(size_t));
  int rc = 0;

  if (!ix.order || !first) {
    free(ix.order);
    free(first);
    return -ENOMEM;
  }
  for (size_t b = 0; b < cfg->nbindings; b++)
    ix.order[b] = b;
  qsort_r(ix.order, cfg->nbindings, sizeof(size_t), cmp_order, (void *)cfg);
  /* the cells of a binding are together, from first[b] on (a binding
   * without any starts nowhere: the loop below finds none of its own) */
  for (size_t i = s->ncells; i-- > 0;)
    first[s->cells[i].binding] = i;
  for (size_t k = 0; rc == 0 && k < st->nbindings; k++) {
    struct status_binding *sb = &st->bindings[k];
    size_t b = find_pair(&ix, sb->gateway, sb->domain);

    /* what a gateway serves is judged for the certificate the file wants
     * there: not for a binding of another one (a detach) */
    if (b == SIZE_MAX ||
        strcmp(cfg->certificates[cfg->bindings[b].certificate].name,
               sb->certificate) != 0)
      continue;
    status_binding_clear_served(sb);
    for (size_t i = first[b];
         rc == 0 && i < s->ncells && s->cells[i].binding == b; i++)
      if (s->cells[i].bound)
        rc = served_entry(s, &s->cells[i], sb);
  }
  free(ix.order);
  free(first);
  return rc;
}

int served_to_metrics(const struct served *s, struct metrics *m)
{
  uint64_t bad = 0;

  metrics_served_clear(m);
  m->served_checked = true;
  for (size_t i = 0; i < s->ncells; i++) {
    const struct served_cell *c = &s->cells[i];
    const struct config_binding *bd = binding_of(s, c);
    int rc;

    if (!c->bound)
      continue;
    if (c->verdict == PROBE_VERDICT_MISMATCH ||
        c->verdict == PROBE_VERDICT_EXPIRED)
      bad++;
    if (c->last.status != PROBE_OK || !c->last.leaf.not_after)
      continue;
    rc = metrics_served_leaf(m, s->cfg->gateways[bd->gateway].name, bd->domain,
                             c->last.leaf.not_after);
    if (rc < 0)
      return rc;
  }
  m->served_mismatches = bad;
  return 0;
}

bool served_wanted(const struct config *cfg, const struct pass_result *r)
{
  const struct pass_counts *k = &r->counts;

  if (cfg->policy.verify == CONFIG_VERIFY_EVERY_PASS)
    return r->outcome != PASS_INTERRUPTED;
  return cfg->policy.verify == CONFIG_VERIFY_AFTER_WRITE &&
         r->outcome == PASS_CONVERGED && k->attached + k->changed > 0;
}

/* ---- a check on a loop of its own ------------------------------------- */

static void format_time(int64_t t, char *buf, size_t size)
{
  time_t tt = (time_t)t;
  struct tm tm;

  if (t && gmtime_r(&tt, &tm))
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
  else
    snprintf(buf, size, "unknown");
}

static void log_cell(const struct served *s, const struct served_cell *c,
                     const struct log *log)
{
  const struct config_binding *bd = binding_of(s, c);
  const struct config_gateway *g = &s->cfg->gateways[bd->gateway];
  const char *address = g->ingress[c->ingress].text;
  const struct probe_leaf *l = &c->last.leaf;
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[] = {{"attempts", (long long)c->attempts}};
  char na[32];

  f.gateway = g->name;
  f.certificate = s->cfg->certificates[bd->certificate].name;
  f.domains = (const char *const *)&bd->domain;
  f.ndomains = 1;
  f.latency_ms = c->last.elapsed_ms;
  f.kv = kv;
  f.nkv = 1;
  switch (c->verdict) {
  case PROBE_VERDICT_OK:
    log_event(log, LOG_INFO, "verify.ok", &f, "%s serves sha256 %s", address,
              l->sha256_hex);
    break;
  case PROBE_VERDICT_UNREACHABLE:
    f.error_msg = c->last.error;
    log_event(log, LOG_WARN, "verify.unreachable", &f, "%s: %s", address,
              c->last.error);
    break;
  case PROBE_VERDICT_UNKNOWN:
    if (c->last.status != PROBE_OK) { /* never tried: nothing to compare */
      f.error_msg = c->last.error;
      log_event(log, LOG_WARN, "verify.mismatch", &f, "%s unknown: %s", address,
                c->last.error);
      break;
    }
    if (c->last.error[0]) { /* a leaf, and why it is not judged */
      format_time(l->not_after, na, sizeof(na));
      f.error_msg = c->last.error;
      log_event(log, LOG_WARN, "verify.mismatch", &f,
                "%s unknown: serves %s, serial %s, not_after %s, sha256 %s: "
                "%s",
                address, l->subject, l->serial, na, l->sha256_hex,
                c->last.error);
      break;
    }
    /* fall through */
  default:
    format_time(l->not_after, na, sizeof(na));
    log_event(log, LOG_WARN, "verify.mismatch", &f,
              "%s %s: serves %s, serial %s, not_after %s, sha256 %s", address,
              probe_verdict_name(c->verdict), l->subject, l->serial, na,
              l->sha256_hex);
    break;
  }
}

void served_log(const struct served *s, const struct log *log)
{
  for (size_t i = 0; i < s->ncells; i++)
    if (s->cells[i].bound)
      log_cell(s, &s->cells[i], log);
}

struct private_loop {
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  struct served *s;
  bool over;
};

static void on_signal(uv_signal_t *h, int signum)
{
  struct private_loop *pl = h->data;

  (void)signum;
  served_stop(pl->s);
}

static void on_run_done(struct served *s, void *arg)
{
  struct private_loop *pl = arg;

  (void)s;
  pl->over = true;
}

int served_run(const struct config *cfg, const struct log *log,
               const struct served_opts *o, struct served **out)
{
  struct private_loop pl = {0};
  int rc = uv_loop_init(&pl.loop);

  *out = NULL;
  if (rc < 0)
    return rc;
  uv_signal_init(&pl.loop, &pl.sigint);
  uv_signal_init(&pl.loop, &pl.sigterm);
  pl.sigint.data = pl.sigterm.data = &pl;
  uv_signal_start(&pl.sigint, on_signal, SIGINT);
  uv_signal_start(&pl.sigterm, on_signal, SIGTERM);
  /* the signals alone do not keep the loop running */
  uv_unref((uv_handle_t *)&pl.sigint);
  uv_unref((uv_handle_t *)&pl.sigterm);
  pl.s = served_new(&pl.loop, cfg, o);
  rc = pl.s ? served_start(pl.s, on_run_done, &pl) : -ENOMEM;
  if (rc == 0)
    uv_run(&pl.loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&pl.sigint, NULL);
  uv_close((uv_handle_t *)&pl.sigterm, NULL);
  uv_run(&pl.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&pl.loop) != 0)
    log_event(log, LOG_ERROR, "verify.failed", NULL,
              "the event loop could not be closed: a handle was left open");
  if (rc == 0 && !pl.over)
    rc = -EINTR; /* the loop ended before the check: cannot happen */
  if (rc < 0) {
    served_free(pl.s);
    return rc;
  }
  served_log(pl.s, log);
  *out = pl.s;
  return 0;
}
