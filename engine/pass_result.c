/* SPDX-License-Identifier: MIT */
/*
 * pass_result: what a pass leaves. Its counts (result_count), its
 * bindings as a status model (pass_status: what the pass found, and what
 * an earlier status knew of the bindings it did not reach), the summary
 * printed after apply, the outcome names, and the memory of failures for
 * the daemon's next pass (pass_remember).
 */
#include "pass_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "status.h"

void result_count(struct pass *p)
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
  k->failed += p->plan.nrefused; /* plan errors: never sent */
}

/* The one table of outcome names: the command line's, and the status
 * file's, which has no "planned" (a plan changes nothing: what the status
 * says of the bindings still holds). */
static const struct {
  const char *name;
  const char *status;
} outcome_names[] = {
    [PASS_CONVERGED] = {"converged", "converged"},
    [PASS_PLANNED] = {"planned", "converged"},
    [PASS_PARTIAL] = {"partial", "partial"},
    [PASS_FAILED] = {"failed", "failed"},
    [PASS_REFUSED] = {"refused", "refused"},
    [PASS_ABORTED] = {"aborted", "aborted"},
    [PASS_INTERRUPTED] = {"interrupted", "interrupted"},
};

const char *pass_outcome_name(enum pass_outcome o)
{
  return outcome_names[o].name;
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
    snprintf(m.error_code, sizeof(m.error_code), "%s",
             item_str(it->error_code));
    m.error_msg = (char *)item_str(it->error_msg);
    snprintf(m.request_id, sizeof(m.request_id), "%s",
             item_str(it->request_id));
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

/* dup_or_null(src) gave copy: whether it ran out of memory. */
static bool dup_failed(const char *copy, const char *src)
{
  return !copy && src && *src;
}

/* What the status says of one binding. */
struct binding_fill {
  uint32_t cert;
  uint32_t gateway; /* UINT32_MAX: none of the file's (a detach) */
  const char *instance_id, *domain;
  bool verify_client;
  enum status_state state;
  const char *error_code, *error_msg, *request_id; /* failed only */
  uint32_t attempts;
};

static int fill_binding(const struct pass *p, struct status_binding *sb,
                        const struct binding_fill *b)
{
  const struct config_certificate *c = &p->cfg->certificates[b->cert];

  /* borrowed: the pass and its file outlive the status (pass.h) */
  sb->names_borrowed = true;
  sb->account = p->cfg->accounts[c->account].name;
  sb->certificate = c->name;
  sb->certificate_id = c->id;
  sb->gateway =
      b->gateway == UINT32_MAX ? "" : p->cfg->gateways[b->gateway].name;
  sb->instance_id = (char *)b->instance_id;
  sb->domain = (char *)b->domain;
  sb->verify_client = b->verify_client;
  sb->state = b->state;
  sb->attempts = b->attempts;
  if (b->state == STATUS_FAILED) {
    sb->error_code = dup_or_null(b->error_code);
    sb->error_msg = dup_or_null(b->error_msg);
    sb->request_id = dup_or_null(b->request_id);
  }
  return b->state == STATUS_FAILED &&
                 (dup_failed(sb->error_code, b->error_code) ||
                  dup_failed(sb->error_msg, b->error_msg) ||
                  dup_failed(sb->request_id, b->request_id))
             ? -ENOMEM
             : 0;
}

/* A pending binding with why it is pending (an unreachable account). */
static int pending_reason(struct status_binding *sb,
                          const struct apig_error *why)
{
  sb->error_code = dup_or_null(why->code);
  sb->error_msg = dup_or_null(why->msg);
  return sb->error_code && sb->error_msg ? 0 : -ENOMEM;
}

static int status_pass_fields(const struct pass *p, struct status_pass *sp)
{
  sp->started_ms = p->res.started_ms;
  sp->ended_ms = p->res.ended_ms;
  sp->outcome = strdup(outcome_names[p->res.outcome].status);
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
  uint32_t i = p->binding_item ? p->binding_item[b] : UINT32_MAX;

  return p->items && i != UINT32_MAX ? &p->items[i] : NULL;
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

/* Binding b is a plan error (plan_refusal): failed with its reason, which
 * names the certificate and the problem. */
static bool refused_binding(const struct pass *p, size_t b,
                            struct binding_fill *f, char *msg, size_t len)
{
  const struct plan_refusal *r = plan_refusal_of(&p->plan, b);

  if (!r)
    return false;
  plan_refusal_describe(p->cfg, r, msg, len);
  f->state = STATUS_FAILED;
  f->error_code = plan_refusal_code(r->why);
  f->error_msg = msg;
  return true;
}

static int status_binding_of(const struct pass *p, size_t b,
                             struct status_binding *sb)
{
  const struct config *cfg = p->cfg;
  const struct config_binding *cb = &cfg->bindings[b];
  const struct pass_cert *pc = &p->certs[cb->certificate];
  const struct pass_item *it = binding_item(p, b);
  char refusal[300];
  struct binding_fill f = {
      .cert = (uint32_t)cb->certificate,
      .gateway = (uint32_t)cb->gateway,
      .instance_id = cfg->gateways[cb->gateway].instance_id,
      .domain = cb->domain,
      .verify_client = cb->verify_client,
      .state = STATUS_CONVERGED,
  };
  int rc;

  if (p->items && refused_binding(p, b, &f, refusal, sizeof(refusal))) {
    /* a plan error of the certificate rules: failed, never sent */
  } else if (it) {
    f.state = item_status(it);
    f.error_code = it->error_code;
    f.error_msg = it->error_msg;
    f.request_id = it->request_id;
    f.attempts = it->attempts;
  } else if (pc->read_failed) {
    /* an unreachable account's bindings were not reached: pending */
    f.state = pc->unreachable ? STATUS_PENDING : STATUS_FAILED;
    f.error_code = pc->read_error->code;
    f.error_msg = pc->read_error->msg;
    f.request_id = pc->read_error->request_id;
  } else if (!p->items) {
    f.state = STATUS_PENDING; /* the pass ended before its plan */
  }
  rc = fill_binding(p, sb, &f);
  sb->next_retry = it && it->held ? it->held->next_retry : 0;
  if (rc == 0 && !it && pc->unreachable)
    rc = pending_reason(sb, pc->read_error);
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

/* The file's own certificates: the pass's view of the file adds, after
 * them, the previous objects of certificates from files (pass_cert.c),
 * which are not certificates of the file to report or alert on. */
static size_t own_certificates(const struct pass *p)
{
  return p->nfile_certs ? p->nfile_certs : p->cfg->ncertificates;
}

/* Each certificate of the file and its end as this pass knows it. */
static int status_certs(const struct pass *p, struct status *st)
{
  const struct config *cfg = p->cfg;
  size_t n = own_certificates(p);

  if (n == 0)
    return 0;
  st->certs = calloc(n, sizeof(*st->certs));
  if (!st->certs)
    return -ENOMEM;
  for (size_t c = 0; c < n; c++) {
    const struct config_certificate *cc = &cfg->certificates[c];
    struct status_cert *sc = &st->certs[st->ncerts++];
    sc->certificate = strdup(cc->name);
    sc->certificate_id = cc->id ? strdup(cc->id) : NULL;
    sc->account = strdup(cfg->accounts[cc->account].name);
    sc->not_after = pass_cert_not_after(p, c);
    sc->expiry_warning_days = cfg->policy.expiry_warning_days;
    if (!sc->certificate || !sc->account || (cc->id && !sc->certificate_id))
      return -ENOMEM;
  }
  return 0;
}

const struct apig_cert *pass_cert_shown(const struct pass *p, size_t cert)
{
  if (cert >= p->live.ncerts || !p->live.certs[cert].shown)
    return NULL;
  return &p->live.certs[cert].show;
}

int64_t pass_cert_not_after(const struct pass *p, size_t cert)
{
  if (cert >= p->cfg->ncertificates)
    return 0;
  return plan_cert_not_after(p->cfg, p->live.ncerts ? &p->live : NULL, cert);
}

int pass_certificate_metrics(const struct pass *p, struct metrics *m)
{
  metrics_clear_certificates(m);
  for (size_t c = 0; c < own_certificates(p); c++) {
    const struct config_certificate *cc = &p->cfg->certificates[c];
    int rc =
        metrics_add_certificate(m, cc->name, cc->id, pass_cert_not_after(p, c));
    if (rc < 0)
      return rc;
  }
  return 0;
}

static int left_copy(struct status_left *d, const char *object_id,
                     const char *name, const char *certificate,
                     const char *sha256)
{
  d->object_id = strdup(object_id ? object_id : "");
  d->name = strdup(name ? name : "");
  d->certificate = strdup(certificate ? certificate : "");
  d->sha256 = strdup(sha256 ? sha256 : "");
  return d->object_id && d->name && d->certificate && d->sha256 ? 0 : -ENOMEM;
}

/* The objects certbind created for certificates the file no longer names:
 * this pass's list (plan_left_objects) once it planned; before that, the
 * earlier status's, which this pass did not get to recompute. */
static int status_left(const struct pass *p, const struct status *prev,
                       struct status *st)
{
  bool planned = p->res.has_plan;
  size_t n = planned ? p->plan.nleft : prev ? prev->nleft : 0;
  int rc = 0;

  if (n == 0)
    return 0;
  st->left = calloc(n, sizeof(*st->left));
  if (!st->left)
    return -ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct status_left *d = &st->left[st->nleft++];
    if (planned) {
      const struct plan_left *l = &p->plan.left[i];
      rc = left_copy(d, l->object_id, l->name, l->certificate, l->sha256);
    } else {
      const struct status_left *l = &prev->left[i];
      rc = left_copy(d, l->object_id, l->name, l->certificate, l->sha256);
    }
  }
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
  if (rc == 0)
    rc = status_certs(p, st);
  if (rc == 0)
    rc = status_left(p, prev, st);
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
    rc = fill_binding(p, sb,
                      &(struct binding_fill){.cert = pi->cert,
                                             .gateway = pi->gateway,
                                             .instance_id = pi->instance_id,
                                             .domain = pi->domain,
                                             .verify_client = pi->verify_client,
                                             .state = item_status(it),
                                             .error_code = it->error_code,
                                             .error_msg = it->error_msg,
                                             .request_id = it->request_id,
                                             .attempts = it->attempts});
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
              n == 1 ? "" : "s", first->read_error->code,
              first->read_error->msg);
  }
}

/* The plan errors (never sent), after the failed writes, within the same
 * 20 lines. */
static void print_refusals(const struct pass *p, FILE *out, bool color,
                           size_t *shown)
{
  char msg[300];

  for (size_t i = 0; i < p->plan.nrefused; i++) {
    const struct plan_refusal *r = &p->plan.refused[i];
    if ((*shown)++ == 20) {
      fprintf(out, "  … and more (certbind status --all lists them all)\n");
      return;
    }
    plan_refusal_describe(p->cfg, r, msg, sizeof(msg));
    fprintf(out, "  %sfailed%s  %s on %s: %s %s (never sent)\n",
            color ? "\033[31m" : "", color ? "\033[0m" : "",
            p->cfg->bindings[r->binding].domain,
            p->cfg->gateways[r->gateway].name, plan_refusal_code(r->why), msg);
  }
}

void pass_print_summary(const struct pass *p, FILE *out, bool color)
{
  const struct pass_counts *k = &p->res.counts;
  double secs = (double)(p->res.ended_ms - p->res.started_ms) / 1000.0;
  uint64_t written = k->attached + k->changed + k->detached;
  size_t shown = 0;

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
      fprintf(out, "  … and %llu more (certbind status --all lists them all)\n",
              (unsigned long long)(k->failed - 20));
      break;
    }
    fprintf(out, "  %sfailed%s  %s on %s: %s %s", color ? "\033[31m" : "",
            color ? "\033[0m" : "", pi->domain,
            pi->gateway == UINT32_MAX ? pi->instance_id
                                      : p->cfg->gateways[pi->gateway].name,
            item_str(it->error_code), item_str(it->error_msg));
    if (it->request_id)
      fprintf(out, " (request %s)", it->request_id);
    fputc('\n', out);
  }
  print_refusals(p, out, color, &shown);
  /* A certificate whose live state could not be read was not planned:
   * say so, or "0 failed" with exit 1 would explain nothing. */
  for (size_t c = 0; p->certs && c < p->cfg->ncertificates; c++) {
    const struct pass_cert *pc = &p->certs[c];
    if (!pc->read_failed || pc->unreachable)
      continue;
    fprintf(out, "  %sfailed%s  certificate %s: live state unreadable: %s %s",
            color ? "\033[31m" : "", color ? "\033[0m" : "",
            p->cfg->certificates[c].name, pc->read_error->code,
            pc->read_error->msg);
    if (pc->read_error->request_id[0])
      fprintf(out, " (request %s)", pc->read_error->request_id);
    fputc('\n', out);
  }
  print_unreachable(p, out, color);
}
