/* SPDX-License-Identifier: MIT */
/*
 * pass_cert: the APIG objects of certificates given as files (cert_file +
 * key). Such a certificate is known by its leaf's SHA-256; before its
 * bindings are read, the pass finds the object that holds that leaf:
 *
 *   1. the ledger's record for the hash;
 *   2. else an object it can prove holds the same leaf: listed by the
 *      leaf's common name, then shown (serial number, not_after and SANs
 *      all equal); adopted and recorded as NOT created by certbind;
 *   3. else (writing) it creates one named apig_cert_name() and records
 *      it as created. A create of unknown outcome is never resent
 *      blindly: the objects of that name are listed first (one that was
 *      not there before the create, and that holds the leaf, is it).
 *   `update: in_place` with a previous object instead PUTs the new
 *   content into that object.
 *
 * Once found, the certificate has an object id and is read, planned and
 * written like an `id` certificate. The pass's view of the file (p->cfg)
 * holds those ids, and each previous object of the certificate (a record
 * of the ledger for the same certificate name and another leaf: the files
 * were renewed) as one more certificate after the file's own, without
 * bindings: its live bindings are read, and the plan moves them to the
 * current object by attaching them there (never an unbound window).
 *
 * Retire (PHASE_RETIRE, after the last wave): a previous object certbind
 * created, seen with no binding for policy.retire_after_s (0: at once),
 * is re-read and, still unbound, deleted. Never an object it did not
 * create, nor one of a certificate the file no longer names: those are
 * only listed (plan.left, plan_left_objects) for plan, status and the
 * log. A delete that fails is logged and tried again by a later pass;
 * it never fails a binding.
 *
 * Objects left behind (CSTEP_LEFT_SHOW, in the read phase): each listed
 * object whose record names an account of the file (struct ledger_cert
 * account: endpoint and project ID, recorded with every record certbind
 * makes or finds while writing) is shown once per pass. A 404 (APIG.3025,
 * APIG.3021): deleted at APIG, so left out of plan.left, and a pass that
 * writes forgets its record (certificate.left_gone). Any other answer, or
 * none, leaves it listed; such a job is of an account, not of a
 * certificate (PASS_NO_CERT), and never fails a binding or the pass.
 *
 * The private key: the create/update body is built (apig_cert_body) into
 * the call, which wipes it (call_free) once the request is over; nothing
 * logs a body. --dry-run and plan never create, update or delete: the
 * write steps are refused in cert_dispatch itself.
 */
#include "pass_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cert.h"
#include "ledger.h"
#include "visibility.h"

/* What a certificate of the view shows as id before its object exists:
 * never sent (its bindings are not read). */
static char new_object_id[] = PASS_NEW_OBJECT_ID;

static bool writing(const struct pass *p)
{
  return p->opts.write && !p->opts.dry_run;
}

static const struct config_certificate *file_cert(const struct pass *p,
                                                  uint32_t cert)
{
  return &p->view.certificates[cert];
}

/* The files of managed certificate cert (never a previous object's). */
static const struct config_managed_cert *cert_files(const struct pass *p,
                                                    uint32_t cert)
{
  return file_cert(p, cert)->managed;
}

static bool is_managed(const struct pass *p, uint32_t cert)
{
  return p->mcerts && cert < p->nfile_certs && file_cert(p, cert)->managed;
}

/* ---- accounts of records ------------------------------------------------ */

/* Account a's key as a record holds it (ledger.h: endpoint and project
 * ID, not the account's name, which the file may change). 0, or
 * -ENAMETOOLONG (then it is never recorded). */
static int account_key(const struct pass *p, uint32_t a, char *buf, size_t len)
{
  const struct config_account *acct = &p->cfg->accounts[a];

  return visibility_key(buf, len, acct->endpoint, acct->project_id);
}

/* Record r learns its account a when it has none (a record written before
 * certbind kept it learns it while its certificate is in the file): true
 * when it did. */
static bool fill_account(const struct pass *p, struct ledger_cert *r,
                         uint32_t a)
{
  char key[LEDGER_ACCOUNT_MAX];

  if (r->account[0] || account_key(p, a, key, sizeof(key)) < 0)
    return false;
  memcpy(r->account, key, sizeof(key));
  return true;
}

/* The file's account whose key is key: true and *a, or false. */
static bool file_account(const struct pass *p, const char *key, uint32_t *a)
{
  char k[LEDGER_ACCOUNT_MAX];

  for (uint32_t i = 0; key[0] && i < p->cfg->naccounts; i++) {
    if (account_key(p, i, k, sizeof(k)) == 0 && strcmp(k, key) == 0) {
      *a = i;
      return true;
    }
  }
  return false;
}

/* ---- the view ---------------------------------------------------------- */

static bool is_previous(const struct ledger_cert *r,
                        const struct config_certificate *c)
{
  return strcmp(r->certificate, c->name) == 0 &&
         strcasecmp(r->sha256, c->managed->file.sha256) != 0;
}

static size_t count_previous(const struct pass *p, const struct config *f)
{
  size_t n = 0;

  for (size_t c = 0; p->ledger && c < f->ncertificates; c++) {
    for (size_t i = 0; f->certificates[c].managed && i < p->ledger->ncerts; i++)
      n += is_previous(&p->ledger->certs[i], &f->certificates[c]);
  }
  return n;
}

/* Previous object r of managed certificate c: a certificate of the view
 * after the file's own, or (update: in_place, the first one) the object
 * the new content goes into. */
static int add_previous(struct pass *p, uint32_t c, const struct ledger_cert *r)
{
  struct pass_mcert *m = &p->mcerts[c];
  struct config_certificate *vc;
  struct pass_prev *pv;

  if (cert_files(p, c)->update == CONFIG_UPDATE_IN_PLACE && !m->resolved &&
      !m->update_id[0]) {
    snprintf(m->update_id, sizeof(m->update_id), "%s", r->object_id);
    p->view.certificates[c].id = m->update_id;
    return 0;
  }
  vc = &p->view.certificates[p->view.ncertificates];
  pv = &p->prev[p->nprev];
  memset(vc, 0, sizeof(*vc));
  vc->account = file_cert(p, c)->account;
  vc->gateway = CONFIG_NO_GATEWAY;
  vc->line = file_cert(p, c)->line;
  vc->col = file_cert(p, c)->col;
  if (asprintf(&vc->name, "%s (previous %.8s)", file_cert(p, c)->name,
               r->sha256) < 0)
    return -ENOMEM;
  *pv = (struct pass_prev){.cert = (uint32_t)p->view.ncertificates,
                           .owner = c,
                           .created = r->created};
  snprintf(pv->object_id, sizeof(pv->object_id), "%s", r->object_id);
  vc->id = pv->object_id;
  p->view.ncertificates++;
  p->nprev++;
  return 0;
}

static int view_cert(struct pass *p, uint32_t c)
{
  const struct config_certificate *fc = file_cert(p, c);
  struct pass_mcert *m = &p->mcerts[c];
  const char *sha256 = fc->managed->file.sha256;
  struct ledger_cert *r = ledger_cert_find(p->ledger, sha256);
  int rc;

  rc = apig_cert_name(fc->name, sha256, m->name);
  if (rc < 0)
    return rc;
  p->view.certificates[c].id = new_object_id;
  if (r) {
    snprintf(m->object_id, sizeof(m->object_id), "%s", r->object_id);
    m->resolved = true;
    p->view.certificates[c].id = m->object_id;
    if (writing(p) && fill_account(p, r, (uint32_t)fc->account))
      p->ledger_dirty = true;
  }
  for (size_t i = 0; p->ledger && i < p->ledger->ncerts && rc == 0; i++) {
    if (!is_previous(&p->ledger->certs[i], fc))
      continue;
    if (writing(p) &&
        fill_account(p, &p->ledger->certs[i], (uint32_t)fc->account))
      p->ledger_dirty = true;
    rc = add_previous(p, c, &p->ledger->certs[i]);
  }
  return rc;
}

int cert_view_make(struct pass *p)
{
  const struct config *f = p->cfg;
  bool any = false;
  size_t nprev;
  int rc = 0;

  p->nfile_certs = f->ncertificates;
  for (size_t c = 0; c < f->ncertificates; c++)
    any |= f->certificates[c].managed != NULL;
  if (!any)
    return 0;
  nprev = count_previous(p, f);
  p->view = *f;
  p->view.certificates =
      calloc(f->ncertificates + nprev + 1, sizeof(*p->view.certificates));
  p->mcerts = calloc(f->ncertificates, sizeof(*p->mcerts));
  p->prev = calloc(nprev + 1, sizeof(*p->prev));
  if (!p->view.certificates || !p->mcerts || !p->prev)
    return -ENOMEM;
  memcpy(p->view.certificates, f->certificates,
         f->ncertificates * sizeof(*f->certificates));
  p->cfg = &p->view;
  for (size_t c = 0; c < f->ncertificates && rc == 0; c++) {
    if (f->certificates[c].managed)
      rc = view_cert(p, (uint32_t)c);
  }
  return rc;
}

static void free_cands(struct pass_mcert *m)
{
  for (size_t i = 0; i < m->ncands; i++)
    free(m->cands[i]);
  free(m->cands);
  m->cands = NULL;
  m->ncands = m->next_cand = 0;
}

void cert_view_free(struct pass *p)
{
  if (!p->mcerts)
    return;
  for (size_t c = 0; c < p->nfile_certs; c++)
    free_cands(&p->mcerts[c]);
  for (size_t c = p->nfile_certs; c < p->view.ncertificates; c++)
    free(p->view.certificates[c].name);
  free(p->view.certificates);
  free(p->mcerts);
  free(p->prev);
  p->mcerts = NULL;
}

/* ---- logging ----------------------------------------------------------- */

__attribute__((format(printf, 5, 6))) static void
cert_log(struct pass *p, enum log_level lvl, const char *event, uint32_t cert,
         const char *fmt, ...)
{
  struct log_fields f = LOG_FIELDS_INIT;
  char msg[384];
  va_list ap;

  if (!log_enabled(p->log, lvl))
    return;
  pass_cert_fields(p, cert, &f);
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  log_event(p->log, lvl, event, &f, "%s", msg);
}

/* ---- jobs -------------------------------------------------------------- */

static bool step_writes(enum cert_step s)
{
  return s == CSTEP_CREATE || s == CSTEP_UPDATE || s == CSTEP_DELETE;
}

/* Queue a new job; a password account's first requests wait for its IAM
 * token. */
static int start_job(struct pass *p, struct job *j)
{
  const struct config_account *a = &p->cfg->accounts[j->q.account];

  if (a->auth_method == CONFIG_AUTH_PASSWORD &&
      !p->accounts[j->q.account].token.value) {
    token_park(p, j);
    return 0;
  }
  if (job_push(p, j, 0) < 0) {
    job_free(j);
    return -ECANCELED;
  }
  return 0;
}

static int push_step(struct pass *p, uint32_t cert, enum cert_step step,
                     uint32_t retire)
{
  struct job *j = job_new(p, JOB_CERT, cert);

  if (!j)
    return -ENOMEM;
  j->step = step;
  j->retire = retire;
  if (step_writes(step))
    j->q.kind = QUEUE_WRITE;
  return start_job(p, j);
}

static int push_first_read(struct pass *p, uint32_t cert)
{
  struct job *j = job_new(p, JOB_LIST, cert);

  if (!j)
    return -ENOMEM;
  j->purpose = LIST_INITIAL;
  return start_job(p, j);
}

int cert_start_read(struct pass *p, uint32_t cert)
{
  struct pass_mcert *m = is_managed(p, cert) ? &p->mcerts[cert] : NULL;

  if (!m || (m->resolved && !m->update_id[0]))
    return push_first_read(p, cert);
  if (m->update_id[0]) {
    if (!writing(p)) { /* the old object is read; the plan shows the PUT */
      m->resolved = true;
      return push_first_read(p, cert);
    }
    return push_step(p, cert, CSTEP_UPDATE, 0);
  }
  if (!cert_files(p, cert)->file.common_name[0])
    return push_step(p, cert, writing(p) ? CSTEP_CREATE : CSTEP_FIND, 0);
  return push_step(p, cert, CSTEP_FIND, 0);
}

/* The certificate's object is known: its first read follows (a new one
 * has no binding yet: nothing to read). The read's count passes to it. */
static void resolved(struct pass *p, struct job *j, const char *id,
                     bool created, bool adopted)
{
  struct pass_mcert *m = &p->mcerts[j->cert];
  const struct config_certificate *fc = file_cert(p, j->cert);
  struct ledger_cert rec = {.created = created};
  struct ledger_cert *old = ledger_cert_find_id(p->ledger, id);

  snprintf(m->object_id, sizeof(m->object_id), "%s", id);
  m->resolved = true;
  p->view.certificates[j->cert].id = m->object_id;
  if (old) /* updated in place: the same object, a new leaf */
    rec = *old;
  snprintf(rec.sha256, sizeof(rec.sha256), "%s", fc->managed->file.sha256);
  snprintf(rec.object_id, sizeof(rec.object_id), "%s", id);
  snprintf(rec.name, sizeof(rec.name), "%s", m->name);
  snprintf(rec.certificate, sizeof(rec.certificate), "%s", fc->name);
  (void)fill_account(p, &rec, (uint32_t)fc->account); /* put: dirty */
  rec.superseded_at = 0;
  if (p->ledger && ledger_cert_put(p->ledger, &rec) == 0)
    p->ledger_dirty = true;
  if (adopted)
    cert_log(p, LOG_INFO, "certificate.adopted", j->cert,
             "object %s holds this certificate (same serial number, "
             "expiry and names): used, and never deleted by certbind",
             id);
  if (created) {
    m->created_now = true;
    cert_log(p, LOG_INFO, "certificate.uploaded", j->cert,
             "created object %s (%s)", id, m->name);
    live_cert_finish(&p->live.certs[j->cert]); /* new: no binding */
    job_end(p, j, JOB_DONE, NULL);
    return;
  }
  if (push_first_read(p, j->cert) < 0) {
    struct apig_error why = pass_error("internal", "cannot queue the read");
    job_end(p, j, JOB_FAILED, &why);
    return;
  }
  j->step = CSTEP_PROVE; /* its end no longer counts the read */
  j->retire = UINT32_MAX;
  job_end(p, j, JOB_DONE, NULL);
}

/* No object holds the leaf: create one, or (plan, dry run) show that it
 * would be. */
static void no_object(struct pass *p, struct job *j)
{
  struct pass_mcert *m = &p->mcerts[j->cert];

  if (!writing(p)) {
    m->upload = true;
    live_cert_finish(&p->live.certs[j->cert]);
    job_end(p, j, JOB_DONE, NULL);
    return;
  }
  j->step = CSTEP_CREATE;
  j->q.kind = QUEUE_WRITE;
  j->q.attempt = 0;
  if (job_push(p, j, 0) < 0) {
    struct apig_error why = pass_error("internal", "stopping");
    job_abandon(p, j, &why);
  }
}

/* The next step of the same job (a read: list or show). */
static void next_read(struct pass *p, struct job *j, enum cert_step step)
{
  j->step = step;
  j->q.kind = QUEUE_READ;
  j->q.attempt = 0;
  if (job_push(p, j, 0) < 0) {
    struct apig_error why = pass_error("internal", "stopping");
    job_abandon(p, j, &why);
  }
}

/* ---- requests ---------------------------------------------------------- */

static const char *cert_instance(const struct pass *p, uint32_t cert)
{
  const struct config_certificate *fc = file_cert(p, cert);

  if (fc->managed == NULL || fc->managed->type != CONFIG_CERT_INSTANCE ||
      fc->gateway == CONFIG_NO_GATEWAY)
    return NULL;
  return p->cfg->gateways[fc->gateway].instance_id;
}

static int cert_body(const struct pass *p, uint32_t cert, struct call *c)
{
  const struct config_certificate *fc = file_cert(p, cert);
  struct apig_cert_form f = {
      .name = p->mcerts[cert].name,
      .chain_pem = fc->managed->file.chain_pem,
      .chain_len = fc->managed->file.chain_len,
      .key_pem = fc->managed->key.value,
      .key_len = fc->managed->key.len,
      .type = cert_instance(p, cert) ? APIG_CERT_INSTANCE : APIG_CERT_GLOBAL,
      .instance_id = cert_instance(p, cert),
  };

  return apig_cert_body(&f, &c->body, &c->body_len);
}

static int step_url(struct pass *p, struct job *j, struct call *c)
{
  const struct config_account *a = pass_cert_account(p, j->cert);
  const struct apig_endpoint *ep = pass_cert_endpoint(p, j->cert);
  struct pass_mcert *m =
      j->cert < p->nfile_certs && p->mcerts ? &p->mcerts[j->cert] : NULL;
  const struct config_certificate *fc = file_cert(p, j->cert);
  struct apig_cert_query q = {.limit = APIG_LIST_LIMIT,
                              .instance_id = cert_instance(p, j->cert)};

  switch (j->step) {
  case CSTEP_FIND:
    c->op = APIG_OP_CERT_LIST;
    q.common_name = fc->managed->file.common_name;
    return apig_cert_url_list(ep, a->project_id, &q, &c->url);
  case CSTEP_FIND_NAME:
    c->op = APIG_OP_CERT_LIST;
    q.name = m->name;
    return apig_cert_url_list(ep, a->project_id, &q, &c->url);
  case CSTEP_PROVE:
    c->op = APIG_OP_CERT_SHOW;
    return apig_cert_url(ep, a->project_id, c->op, m->cands[m->next_cand],
                         &c->url);
  case CSTEP_CREATE:
    c->op = APIG_OP_CERT_CREATE;
    return apig_cert_url(ep, a->project_id, c->op, NULL, &c->url);
  case CSTEP_UPDATE:
    c->op = APIG_OP_CERT_UPDATE;
    return apig_cert_url(ep, a->project_id, c->op, m->update_id, &c->url);
  case CSTEP_RETIRE_READ:
    c->op = APIG_OP_LIST;
    return apig_url_list_at(ep, a->project_id, p->prev[j->retire].object_id, 1,
                            0, NULL, &c->url);
  case CSTEP_DELETE:
    c->op = APIG_OP_CERT_DELETE;
    return apig_cert_url(ep, a->project_id, c->op, p->prev[j->retire].object_id,
                         &c->url);
  case CSTEP_LEFT_SHOW: /* left_url: no certificate of the pass */
    break;
  }
  return -EINVAL;
}

/* The Show of an object left behind: the request CSTEP_PROVE sends, in
 * the account its record names. */
static int left_url(struct pass *p, struct job *j, struct call *c)
{
  const struct config_account *a = &p->cfg->accounts[j->q.account];

  c->op = APIG_OP_CERT_SHOW;
  return apig_cert_url(&p->accounts[j->q.account].endpoint, a->project_id,
                       c->op, p->left_checks[j->retire].object_id, &c->url);
}

/* Submit a JOB_CERT job's request. Creates, updates and deletes are never
 * sent by a pass that does not write (plan, --dry-run): this is where
 * that is enforced for certificate objects, as write_dispatch does for
 * bindings. */
void cert_dispatch(struct pass *p, struct job *j)
{
  const struct config_account *a = &p->cfg->accounts[j->q.account];
  struct call *c = calloc(1, sizeof(*c));
  struct apig_error why;
  int rc = c ? 0 : -ENOMEM;

  if (rc == 0 && step_writes(j->step) && !writing(p))
    rc = -EPERM;
  if (rc == 0)
    rc = j->step == CSTEP_LEFT_SHOW ? left_url(p, j, c) : step_url(p, j, c);
  if (rc == 0 && (j->step == CSTEP_CREATE || j->step == CSTEP_UPDATE)) {
    rc = cert_body(p, j->cert, c);
    if (j->step == CSTEP_CREATE)
      p->mcerts[j->cert].creates++;
  }
  if (rc == 0) {
    c->p = p;
    c->job = j;
    c->account = j->q.account;
    /* curl must not send a create again by itself (on a reused connection
     * that died): a second object would be made that nothing records */
    c->rq.no_resend = j->step == CSTEP_CREATE;
    c->rq.max_body = j->step == CSTEP_FIND || j->step == CSTEP_FIND_NAME
                         ? APIG_MAX_CERT_LIST_BODY
                     : j->step == CSTEP_RETIRE_READ ? APIG_MAX_LIST_BODY
                                                    : APIG_MAX_CERT_BODY;
    rc = call_submit(p, c, a, apig_op_method(c->op), true);
    if (rc == 0)
      return;
  }
  if (c)
    call_free(c); /* wipes a body that holds the key */
  queue_complete(&p->queue, &j->q, QUEUE_FAILURE, pass_now_ms(p));
  why = pass_error("internal", strerror(-rc));
  job_abandon(p, j, &why);
}

/* ---- answers ----------------------------------------------------------- */

static bool same_sans(const struct apig_cert *o, const struct certfile *f)
{
  if (o->nsan != f->nsans)
    return false;
  for (size_t i = 0; i < o->nsan; i++) {
    bool found = false;
    for (size_t k = 0; k < f->nsans && !found; k++)
      found = strcasecmp(o->san[i], f->sans[k]) == 0;
    if (!found)
      return false;
  }
  return true;
}

/* Whether a shown object holds the file's leaf: the serial number, the
 * end of validity and the names all equal (the content itself is never
 * returned). */
static bool proves_leaf(const struct apig_cert *o, const struct certfile *f)
{
  return o->serial_number && o->not_after == f->not_after &&
         apig_cert_serial_matches(o->serial_number, f->serial_dec,
                                  f->serial_hex) &&
         same_sans(o, f);
}

/* A list item worth a show: the same end and names (serials are not in
 * list items). */
static bool may_hold_leaf(const struct apig_cert *o, const struct certfile *f)
{
  return (o->not_after == 0 || o->not_after == f->not_after) &&
         (o->nsan == 0 || same_sans(o, f));
}

static void answer_failed(struct pass *p, struct job *j, const char *what,
                          const struct outcome *o)
{
  struct apig_error e = o->err;
  enum apig_cert_problem pr = apig_cert_problem(
      j->step == CSTEP_CREATE ? APIG_OP_CERT_CREATE : APIG_OP_CERT_UPDATE,
      o->status, o->err.code);
  const char *text = apig_cert_problem_text(pr);
  char msg[sizeof(e.msg)];

  if (pr == APIG_CERT_BAD_PARAM && j->step == CSTEP_CREATE)
    text = "APIG refused the object's name or a field (an object of that "
           "name that certbind did not create and that does not hold this "
           "certificate is never adopted)";
  else if (pr == APIG_CERT_QUOTA)
    text = "the project's certificate quota is full: delete unused "
           "certificate objects, or ask for a larger quota";
  snprintf(msg, sizeof(msg),
           "certificate %.64s: %s of object %s failed: %.100s%s%.200s",
           file_cert(p, j->cert)->name, what, p->mcerts[j->cert].name,
           text[0] ? text : o->err.msg, text[0] && o->err.msg[0] ? ": " : "",
           text[0] ? o->err.msg : "");
  snprintf(e.msg, sizeof(e.msg), "%s", msg);
  cert_log(p, LOG_ERROR, "certificate.failed", j->cert, "%s", msg);
  job_abandon(p, j, &e);
}

static void on_find(struct pass *p, struct job *j, struct http_response *rs)
{
  struct pass_mcert *m = &p->mcerts[j->cert];
  const struct certfile *f = &cert_files(p, j->cert)->file;
  struct apig_cert_page page;
  char why[128] = "";

  if (apig_cert_parse_list(rs->body, rs->body_len, &page, why, sizeof(why)) <
      0) {
    struct apig_error e = pass_error("bad-answer", why);
    job_abandon(p, j, &e);
    return;
  }
  free_cands(m);
  m->cands = calloc(page.n + 1, sizeof(*m->cands));
  for (size_t i = 0; m->cands && i < page.n; i++) {
    if (may_hold_leaf(&page.items[i], f))
      m->cands[m->ncands++] = strdup(page.items[i].id);
  }
  apig_cert_page_free(&page);
  for (size_t i = 0; i < m->ncands; i++) {
    if (!m->cands[i]) {
      struct apig_error e = pass_error("internal", "out of memory");
      job_abandon(p, j, &e);
      return;
    }
  }
  if (m->ncands)
    next_read(p, j, CSTEP_PROVE);
  else
    no_object(p, j);
}

static void on_prove(struct pass *p, struct job *j, struct http_response *rs)
{
  struct pass_mcert *m = &p->mcerts[j->cert];
  struct apig_cert o;
  bool holds;

  holds = apig_cert_parse(rs->body, rs->body_len, &o, NULL, 0) == 0 &&
          proves_leaf(&o, &cert_files(p, j->cert)->file);
  if (holds) {
    char id[65];
    snprintf(id, sizeof(id), "%s", o.id);
    apig_cert_free(&o);
    resolved(p, j, id, false, true);
    return;
  }
  apig_cert_free(&o);
  if (++m->next_cand < m->ncands)
    next_read(p, j, CSTEP_PROVE);
  else
    no_object(p, j);
}

/* After a create of unknown outcome: an object of the generated name that
 * was not among those listed before the create, and that holds the leaf,
 * is the one created; none: create (again). */
static void on_find_name(struct pass *p, struct job *j,
                         struct http_response *rs)
{
  struct pass_mcert *m = &p->mcerts[j->cert];
  const struct certfile *f = &cert_files(p, j->cert)->file;
  struct apig_cert_page page;
  char found[65] = "";

  if (apig_cert_parse_list(rs->body, rs->body_len, &page, NULL, 0) < 0) {
    struct apig_error e =
        pass_error("bad-answer", "the certificate list could not be read");
    job_abandon(p, j, &e);
    return;
  }
  for (size_t i = 0; i < page.n && !found[0]; i++) {
    const struct apig_cert *o = &page.items[i];
    bool before = false;
    for (size_t k = 0; k < m->ncands; k++)
      before |= strcmp(m->cands[k], o->id) == 0;
    if (!before && o->name && strcmp(o->name, m->name) == 0 &&
        may_hold_leaf(o, f))
      snprintf(found, sizeof(found), "%s", o->id);
  }
  apig_cert_page_free(&page);
  if (found[0]) {
    resolved(p, j, found, true, false);
    return;
  }
  if (m->creates >= p->cfg->retry.max_attempts) {
    struct apig_error e = pass_error(
        "unknown-outcome", "certificate upload: outcome unknown and not found");
    job_abandon(p, j, &e);
    return;
  }
  no_object(p, j);
}

static void on_created(struct pass *p, struct job *j, struct http_response *rs,
                       const struct outcome *o)
{
  struct apig_cert c;

  if (apig_cert_parse(rs->body, rs->body_len, &c, NULL, 0) < 0) {
    /* it exists, its id unknown: look it up by name */
    cert_log(p, LOG_WARN, "certificate.retry", j->cert,
             "create answered without a readable object: looking it up by "
             "name (request %s)",
             o->err.request_id);
    next_read(p, j, CSTEP_FIND_NAME);
    return;
  }
  char id[65];
  snprintf(id, sizeof(id), "%s", c.id);
  apig_cert_free(&c);
  resolved(p, j, id, true, false);
}

static void on_updated(struct pass *p, struct job *j)
{
  struct pass_mcert *m = &p->mcerts[j->cert];
  char id[65];

  cert_log(p, LOG_INFO, "certificate.updated", j->cert,
           "new content put into object %s (update: in_place)", m->update_id);
  snprintf(id, sizeof(id), "%s", m->update_id);
  resolved(p, j, id, false, false);
}

static void retire_read(struct pass *p, struct job *j,
                        struct http_response *rs);
static void retire_deleted(struct pass *p, struct job *j,
                           const struct outcome *o);

static void step_ok(struct pass *p, struct job *j, struct http_response *rs,
                    const struct outcome *o)
{
  switch (j->step) {
  case CSTEP_FIND:
    on_find(p, j, rs);
    return;
  case CSTEP_PROVE:
    on_prove(p, j, rs);
    return;
  case CSTEP_FIND_NAME:
    on_find_name(p, j, rs);
    return;
  case CSTEP_CREATE:
    on_created(p, j, rs, o);
    return;
  case CSTEP_UPDATE:
    on_updated(p, j);
    return;
  case CSTEP_RETIRE_READ:
    retire_read(p, j, rs);
    return;
  case CSTEP_DELETE:
    retire_deleted(p, j, o);
    return;
  case CSTEP_LEFT_SHOW: /* left_done, before */
    return;
  }
}

static const char *step_what(enum cert_step s)
{
  switch (s) {
  case CSTEP_CREATE:
    return "upload";
  case CSTEP_UPDATE:
    return "update";
  case CSTEP_DELETE:
    return "delete";
  default:
    break;
  }
  return "lookup";
}

static void left_done(struct pass *p, struct job *j, const struct outcome *o);

void cert_done(struct pass *p, struct job *j, struct http_response *rs,
               const struct outcome *o)
{
  if (j->step == CSTEP_LEFT_SHOW) {
    left_done(p, j, o);
    return;
  }
  switch (o->cls) {
  case APIG_OK:
    step_ok(p, j, rs, o);
    return;
  case APIG_DONE_ALREADY:
    if (j->step == CSTEP_DELETE) {
      retire_deleted(p, j, o);
      return;
    }
    /* fall through */
  case APIG_PERMANENT:
    if (j->step == CSTEP_PROVE) { /* gone meanwhile: the next candidate */
      if (++p->mcerts[j->cert].next_cand < p->mcerts[j->cert].ncands)
        next_read(p, j, CSTEP_PROVE);
      else
        no_object(p, j);
      return;
    }
    if (j->step == CSTEP_DELETE || j->step == CSTEP_RETIRE_READ) {
      retire_deleted(p, j, o);
      return;
    }
    answer_failed(p, j, step_what(j->step), o);
    return;
  case APIG_REAUTH:
    if (token_reauth(p, j))
      return;
    /* fall through */
  case APIG_AUTH_FATAL:
    cert_log(p, LOG_ERROR, "certificate.failed", j->cert,
             "%s refused: authentication or permission (%s)",
             step_what(j->step), o->err.code[0] ? o->err.code : "no code");
    account_block(p, j->q.account, &o->err);
    job_abandon(p, j, &o->err);
    return;
  case APIG_RETRY:
  case APIG_THROTTLED:
    if (j->step == CSTEP_CREATE && o->unknown) {
      cert_log(p, LOG_WARN, "certificate.retry", j->cert,
               "upload outcome unknown (%s): looking the object up by its "
               "name before any resend",
               o->err.code[0] ? o->err.code : "no answer");
      next_read(p, j, CSTEP_FIND_NAME);
      return;
    }
    call_retry(p, j, o);
    return;
  }
}

/* ---- the end of a job -------------------------------------------------- */

void cert_job_end(struct pass *p, struct job *j, enum job_end how,
                  const struct apig_error *why)
{

  if (j->step == CSTEP_RETIRE_READ || j->step == CSTEP_DELETE ||
      j->step == CSTEP_LEFT_SHOW)
    return; /* retirement, objects left: never a binding's business */
  if (j->retire == UINT32_MAX)
    return; /* resolved: its first read carries the count */
  if (how == JOB_FAILED)
    pass_cert_read_failed(p, j->cert, why, false);
  p->reads_left--;
}

/* The first read of cert failed with why: when the object is gone (404),
 * a previous object is simply forgotten (nothing to move, nothing to
 * retire: true, the read counts as an empty one), and the current object
 * of a certificate from files loses its record, so that the next pass
 * finds or uploads it again (false: the read still fails). */
bool cert_read_gone(struct pass *p, uint32_t cert, const struct apig_error *why)
{
  bool gone = why && (strcmp(why->code, "APIG.3025") == 0 ||
                      strcmp(why->code, "APIG.3021") == 0);
  const char *id = p->cfg->certificates[cert].id;

  if (!gone || !p->mcerts || !ledger_cert_find_id(p->ledger, id))
    return false;
  if (ledger_cert_remove(p->ledger, id) == 0)
    p->ledger_dirty = true;
  if (cert < p->nfile_certs) {
    cert_log(p, LOG_WARN, "certificate.forgotten", cert,
             "object %s is gone: the next pass finds or uploads the "
             "certificate again",
             id);
    return false;
  }
  for (size_t i = 0; i < p->nprev; i++)
    p->prev[i].created &= p->prev[i].cert != cert; /* never deleted now */
  cert_log(p, LOG_INFO, "certificate.forgotten", cert,
           "previous object %s is gone: forgotten", id);
  live_cert_finish(&p->live.certs[cert]);
  return true;
}

bool cert_job_first_read(const struct job *j)
{
  return j->type == JOB_CERT && j->step != CSTEP_RETIRE_READ &&
         j->step != CSTEP_DELETE && j->step != CSTEP_LEFT_SHOW &&
         j->retire != UINT32_MAX;
}

/* ---- what the first reads found --------------------------------------- */

/* Previous objects seen bound: their retirement waits from now. */
static void previous_seen(struct pass *p)
{
  for (size_t i = 0; i < p->nprev; i++) {
    struct pass_prev *pv = &p->prev[i];
    struct ledger_cert *r = ledger_cert_find_id(p->ledger, pv->object_id);

    if (!r || !p->live.certs[pv->cert].known)
      continue;
    if (p->live.certs[pv->cert].b.n > 0)
      r->bound_at = pass_unix_s(p);
    if (!r->superseded_at)
      r->superseded_at = pass_unix_s(p);
    p->ledger_dirty = true;
  }
}

/* ---- the plan's certificate lines -------------------------------------- */

static bool retire_due(struct pass *p, const struct pass_prev *pv)
{
  struct ledger_cert *r = ledger_cert_find_id(p->ledger, pv->object_id);
  int64_t since;

  if (!pv->created || !r || p->certs[pv->cert].read_failed)
    return false;
  if (p->cfg->policy.retire_after_s == 0)
    return true;
  since = r->bound_at > r->superseded_at ? r->bound_at : r->superseded_at;
  return pass_unix_s(p) - since >= (int64_t)p->cfg->policy.retire_after_s;
}

/* Whether the plan leaves previous object pv without a binding: each of
 * its live bindings moves to the current object. */
static bool plan_empties(const struct pass *p, const struct pass_prev *pv)
{
  size_t live = p->live.certs[pv->cert].b.n, moved = 0;

  for (size_t i = 0; i < p->plan.nitems; i++) {
    const struct plan_item *it = &p->plan.items[i];
    moved += plan_item_is_move(it) && it->from_cert == pv->cert;
  }
  return moved >= live;
}

static int add_cert_op(struct plan *pl, enum plan_cert_op op, uint32_t cert,
                       const char *name, const char *id)
{
  struct plan_cert *n = realloc(pl->cert_ops, (pl->ncert_ops + 1) * sizeof(*n));

  if (!n)
    return -ENOMEM;
  pl->cert_ops = n;
  n = &n[pl->ncert_ops++];
  memset(n, 0, sizeof(*n));
  n->op = op;
  n->cert = cert;
  snprintf(n->name, sizeof(n->name), "%s", name);
  snprintf(n->object_id, sizeof(n->object_id), "%s", id ? id : "");
  pl->nupload += op == PLAN_CERT_UPLOAD;
  pl->nupdate += op == PLAN_CERT_UPDATE;
  pl->ndelete_cert += op == PLAN_CERT_DELETE;
  return 0;
}

/* The objects certbind created for certificates the file no longer
 * names (plan_left_objects). The file's own certificates only: the
 * view's previous objects are not names of the file. */
static int file_left(const struct pass *p, struct plan_left **out, size_t *n)
{
  struct config file = *p->cfg;

  file.ncertificates = p->nfile_certs;
  return plan_left_objects(&file, p->ledger, out, n);
}

static const struct pass_left_check *left_check(const struct pass *p,
                                                const char *object_id)
{
  for (size_t i = 0; i < p->nleft_checks; i++) {
    if (strcmp(p->left_checks[i].object_id, object_id) == 0)
      return &p->left_checks[i];
  }
  return NULL;
}

/* Left object l is gone from APIG (its Show answered 404): not listed;
 * a pass that writes forgets its record. */
static void left_gone(struct pass *p, const struct plan_left *l,
                      const struct pass_left_check *lc)
{
  struct log_fields f = LOG_FIELDS_INIT;

  if (!writing(p) || ledger_cert_remove(p->ledger, l->object_id) < 0)
    return;
  p->ledger_dirty = true;
  f.account = p->cfg->accounts[lc->account].name;
  f.certificate = l->certificate;
  log_event(p->log, LOG_INFO, "certificate.left_gone", &f,
            "object %s (%s), left behind by certificate %s, is gone from "
            "APIG: its record is forgotten",
            l->object_id, l->name, l->certificate);
}

/* The objects left behind, reported (never deleted: the operator may
 * have taken the certificate over by hand), but those this pass's Show
 * found gone: plan, status and the log all see this one list. */
static int left_objects(struct pass *p)
{
  int rc = file_left(p, &p->plan.left, &p->plan.nleft);
  size_t k = 0;

  for (size_t i = 0; rc == 0 && i < p->plan.nleft; i++) {
    const struct plan_left *l = &p->plan.left[i];
    const struct pass_left_check *lc = left_check(p, l->object_id);
    if (lc && lc->gone)
      left_gone(p, l, lc);
    else if (k++ != i)
      p->plan.left[k - 1] = *l;
  }
  if (rc == 0)
    p->plan.nleft = k;
  return rc;
}

int cert_plan(struct pass *p)
{
  int rc = left_objects(p);

  if (rc < 0)
    return rc;
  previous_seen(p);
  for (uint32_t c = 0; p->mcerts && c < p->nfile_certs && rc == 0; c++) {
    struct pass_mcert *m = &p->mcerts[c];
    if (!is_managed(p, c))
      continue;
    if (m->upload || m->created_now)
      rc = add_cert_op(&p->plan, PLAN_CERT_UPLOAD, c, m->name, m->object_id);
    else if (m->update_id[0] && !writing(p))
      rc = add_cert_op(&p->plan, PLAN_CERT_UPDATE, c, m->name, m->update_id);
  }
  for (size_t i = 0; i < p->nprev && rc == 0; i++) {
    struct pass_prev *pv = &p->prev[i];
    struct ledger_cert *r = ledger_cert_find_id(p->ledger, pv->object_id);
    if (p->certs[pv->cert].read_failed || !plan_empties(p, pv))
      continue;
    pv->delete_plan = retire_due(p, pv) ||
                      (p->cfg->policy.retire_after_s == 0 && pv->created);
    if (pv->delete_plan)
      rc =
          add_cert_op(&p->plan, PLAN_CERT_DELETE, pv->cert,
                      r && r->name[0] ? r->name : pv->object_id, pv->object_id);
  }
  return rc;
}

/* ---- retirement --------------------------------------------------------- */

bool cert_retire_start(struct pass *p)
{
  bool any = false;

  if (!writing(p) || p->stopping)
    return false;
  for (uint32_t i = 0; i < p->nprev; i++) {
    if (!p->prev[i].delete_plan ||
        p->accounts[pass_cert_account_index(p, p->prev[i].cert)].blocked)
      continue;
    if (push_step(p, p->prev[i].cert, CSTEP_RETIRE_READ, i) == 0)
      any = true;
  }
  return any;
}

/* The re-read just before a delete: still unbound, delete. */
static void retire_read(struct pass *p, struct job *j, struct http_response *rs)
{
  struct pass_prev *pv = &p->prev[j->retire];
  struct apig_bindings b = {0};
  struct apig_page page;
  int rc = apig_parse_list(rs->body, rs->body_len, &b, &page, NULL, 0);
  bool bound = rc < 0 || page.total != 0 || b.n != 0;

  apig_bindings_free(&b);
  if (bound) {
    struct ledger_cert *r = ledger_cert_find_id(p->ledger, pv->object_id);
    if (r && rc == 0) {
      r->bound_at = pass_unix_s(p);
      p->ledger_dirty = true;
    }
    cert_log(p, LOG_INFO, "certificate.kept", j->cert,
             "previous object %s is %s: not deleted", pv->object_id,
             rc < 0 ? "not readable" : "still bound");
    job_end(p, j, JOB_DONE, NULL);
    return;
  }
  j->step = CSTEP_DELETE;
  j->q.kind = QUEUE_WRITE;
  j->q.attempt = 0;
  if (job_push(p, j, 0) < 0)
    job_end(p, j, JOB_DROPPED, NULL);
}

static void retire_deleted(struct pass *p, struct job *j,
                           const struct outcome *o)
{
  struct pass_prev *pv = &p->prev[j->retire];

  if (o->cls == APIG_OK || o->cls == APIG_DONE_ALREADY) {
    pv->deleted = true;
    if (ledger_cert_remove(p->ledger, pv->object_id) == 0)
      p->ledger_dirty = true;
    cert_log(p, LOG_INFO, "certificate.deleted", j->cert,
             "deleted previous object %s: created by certbind, unbound",
             pv->object_id);
  } else {
    cert_log(p, LOG_WARN, "certificate.delete_failed", j->cert,
             "previous object %s not deleted (%s%s%s): kept, tried again by "
             "the next pass",
             pv->object_id, o->err.code[0] ? o->err.code : "error",
             o->err.msg[0] ? ": " : "", o->err.msg);
  }
  job_end(p, j, JOB_DONE, NULL);
}

/* ---- objects left behind: still at APIG? -------------------------------- */

/* The Show of one left object: a job of the account its record names. */
static void left_show_start(struct pass *p, const struct ledger_cert *r,
                            uint32_t a)
{
  struct pass_left_check *lc = &p->left_checks[p->nleft_checks];
  struct job *j = job_new_account(p, JOB_CERT, a);

  if (!j)
    return;
  snprintf(lc->object_id, sizeof(lc->object_id), "%s", r->object_id);
  snprintf(lc->certificate, sizeof(lc->certificate), "%s", r->certificate);
  lc->account = a;
  j->step = CSTEP_LEFT_SHOW;
  j->retire = (uint32_t)p->nleft_checks++;
  /* a failure is logged as a Show's (call_retry) */
  j->purpose = LIST_SHOW;
  j->op = APIG_OP_CERT_SHOW;
  (void)start_job(p, j); /* not queued: it stays listed */
}

/* One Show per left object of an account of the file, with the reads
 * (the read phase ends when they are answered): one request each per
 * pass. A record without an account, or of an account the file no
 * longer has, is listed as it is, never looked up. */
void cert_left_start(struct pass *p)
{
  struct plan_left *left = NULL;
  size_t n = 0;

  if (p->opts.probe || !p->ledger || file_left(p, &left, &n) < 0 || n == 0 ||
      !(p->left_checks = calloc(n, sizeof(*p->left_checks)))) {
    free(left);
    return;
  }
  for (size_t i = 0; i < n && !p->stopping; i++) {
    const struct ledger_cert *r =
        ledger_cert_find_id(p->ledger, left[i].object_id);
    uint32_t a;
    if (r && file_account(p, r->account, &a))
      left_show_start(p, r, a);
  }
  free(left);
}

void cert_left_free(struct pass *p)
{
  free(p->left_checks);
  p->left_checks = NULL;
  p->nleft_checks = 0;
}

const char *cert_left_name(const struct pass *p, const struct job *j)
{
  if (j->type != JOB_CERT || j->step != CSTEP_LEFT_SHOW ||
      j->retire >= p->nleft_checks)
    return NULL;
  return p->left_checks[j->retire].certificate;
}

/* Gone: a 404 APIG.3025 or APIG.3021 (the object is not there). Any other
 * answer, or none, leaves the object listed and its record as it is. */
static void left_done(struct pass *p, struct job *j, const struct outcome *o)
{
  struct pass_left_check *lc = &p->left_checks[j->retire];

  switch (o->cls) {
  case APIG_RETRY:
  case APIG_THROTTLED:
    call_retry(p, j, o);
    return;
  case APIG_REAUTH:
    if (token_reauth(p, j))
      return;
    /* fall through */
  case APIG_AUTH_FATAL:
    if (o->status != 403) {
      /* the key itself is refused (the queue stops the account for it):
       * as for any request of the account */
      call_log(p, LOG_ERROR, "certificate.show_failed", j, APIG_OP_CERT_SHOW, o,
               -1, NULL);
      account_block(p, j->q.account, &o->err);
      job_abandon(p, j, &o->err);
      return;
    }
    break;
  case APIG_PERMANENT:
  case APIG_DONE_ALREADY:
    lc->gone = o->status == 404 && (apig_code_is(o->err.code, "3025") ||
                                    apig_code_is(o->err.code, "3021"));
    break;
  case APIG_OK:
    break;
  }
  job_end(p, j, JOB_DONE, NULL);
}
