/* SPDX-License-Identifier: MIT */
/*
 * import: print a desired-state file that reproduces the live bindings of
 * the certificates given by ID, so that `plan` on it right after shows no
 * changes (what terraform import or octodns-dump are for their tools).
 *
 * One pass that only reads, on a copy of the file's model whose
 * certificates are the IDs asked for, each once per account of the file:
 * the account that holds a certificate is the one whose read answers (the
 * others answer 404, no such certificate in their project). The copy has
 * no bindings and the pass no ledger, so it plans nothing and writes
 * nothing, neither to APIG nor to state_dir, and no lock is taken. The
 * live state then becomes a model that config_emit() prints, after it has
 * been loaded back as a check: nothing is printed that would not load.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "oneshot.h"

/* A name made from an ID: "gw-" + a dashed UUID, "cert-" + 32, and room. */
#define IMPORT_NAME_MAX 72

struct import {
  const struct cli_args *args;
  const struct config *file;
  const char **ids; /* asked for: sorted, each once */
  size_t nids;
  /* The pass's model: certificate i * naccounts + k is ids[i] in account
   * k. Borrows everything else from file. */
  struct config probe;
  /* The printed model: file's accounts and settings (borrowed), gateways,
   * certificates and bindings of its own; names made here live in
   * gw_names and cert_names. */
  struct config out;
  char (*gw_names)[IMPORT_NAME_MAX];
  char (*cert_names)[IMPORT_NAME_MAX];
};

static int by_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* What APIG takes as a certificate ID: it goes into a URL path. */
static bool is_cert_id(const char *s)
{
  size_t n = 0;

  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z')))
      return false;
  }
  return n == 32;
}

/* The IDs asked for, checked, sorted, each once: 0 or CLI_EXIT_USAGE. */
static int take_ids(struct import *im)
{
  const struct cli_args *a = im->args;
  size_t n = 0;

  im->ids = calloc(a->ncertificates + 1, sizeof(*im->ids));
  if (!im->ids)
    return CLI_EXIT_FAILURE;
  for (size_t i = 0; i < a->ncertificates; i++) {
    if (!is_cert_id(a->certificates[i])) {
      fprintf(stderr,
              "certbind: import: --certificate \"%.80s\" is not a "
              "certificate ID (32 letters and digits)\n",
              a->certificates[i]);
      return CLI_EXIT_USAGE;
    }
    im->ids[n++] = a->certificates[i];
  }
  qsort(im->ids, n, sizeof(*im->ids), by_str);
  im->nids = 0;
  for (size_t i = 0; i < n; i++) {
    if (im->nids == 0 || strcmp(im->ids[im->nids - 1], im->ids[i]) != 0)
      im->ids[im->nids++] = im->ids[i];
  }
  return 0;
}

/* The file's certificate with this ID, or NULL. */
static const struct config_certificate *file_cert(const struct config *f,
                                                  const char *id)
{
  for (size_t i = 0; i < f->ncertificates; i++) {
    if (f->certificates[i].id && strcmp(f->certificates[i].id, id) == 0)
      return &f->certificates[i];
  }
  return NULL;
}

/* ---- the read ----------------------------------------------------------- */

/* The file's model with the IDs as its certificates, in every account;
 * no bindings (nothing to plan), upsert (nothing to detach). */
static int make_probe(struct import *im)
{
  const struct config *f = im->file;
  size_t n = im->nids * f->naccounts;
  struct config_certificate *c = calloc(n + 1, sizeof(*c));

  if (!c)
    return -ENOMEM;
  for (size_t i = 0; i < im->nids; i++) {
    const struct config_certificate *known = file_cert(f, im->ids[i]);
    for (size_t k = 0; k < f->naccounts; k++) {
      struct config_certificate *x = &c[i * f->naccounts + k];
      x->name = known ? known->name : (char *)im->ids[i];
      x->account = k;
      x->id = (char *)im->ids[i];
    }
  }
  im->probe = *f;
  im->probe.certificates = c;
  im->probe.ncertificates = n;
  im->probe.bindings = NULL;
  im->probe.nbindings = 0;
  im->probe.policy.mode = CONFIG_MODE_UPSERT;
  return 0;
}

/* The answer of an account that does not hold the certificate. */
static bool not_found(const struct apig_error *e)
{
  return strcmp(e->code, "APIG.3025") == 0 || strcmp(e->code, "APIG.3021") == 0;
}

/* Which account holds ids[i]: the probe certificate that was read. -1
 * after saying why: a read failed, none or several hold it. */
static long find_holder(const struct import *im, const struct oneshot *o,
                        size_t i)
{
  const struct config *f = im->file;
  const struct config_certificate *known = file_cert(f, im->ids[i]);
  size_t na = f->naccounts, nfound = 0;
  long holder = -1, chosen = -1;
  bool failed = false;

  for (size_t k = 0; k < na; k++) {
    size_t c = i * na + k;
    const struct apig_error *e = pass_read_error(o->pass, c);
    if (o->result->live->certs[c].known) {
      nfound++;
      holder = (long)c;
      if (known && known->account == k)
        chosen = (long)c;
    } else if (!e || !not_found(e)) {
      fprintf(stderr,
              "certbind: import: certificate %s could not be read with "
              "account %s: %s%s%s%s%s%s\n",
              im->ids[i], f->accounts[k].name,
              e && e->code[0] ? e->code : "no answer", e ? " " : "",
              e ? e->msg : "", e && e->request_id[0] ? " (request " : "",
              e && e->request_id[0] ? e->request_id : "",
              e && e->request_id[0] ? ")" : "");
      failed = true;
    }
  }
  if (failed)
    return -1;
  if (nfound == 0) {
    fprintf(stderr,
            "certbind: import: certificate %s is in none of the %zu "
            "account(s) of %s (each answered that it does not exist)\n",
            im->ids[i], na, f->path);
    return -1;
  }
  if (nfound == 1)
    return holder;
  if (chosen >= 0) {
    fprintf(stderr,
            "certbind: import: certificate %s is readable with %zu accounts; "
            "using %s, as %s names it\n",
            im->ids[i], nfound, f->accounts[known->account].name, f->path);
    return chosen;
  }
  fprintf(stderr,
          "certbind: import: certificate %s is readable with %zu accounts of "
          "%s (they share a project); name it in the file's certificates "
          "under the account to use\n",
          im->ids[i], nfound, f->path);
  return -1;
}

/* ---- the printed model -------------------------------------------------- */

/* Instance IDs are equal ignoring case and dashes (as the loader says). */
static bool same_instance(const char *a, const char *b)
{
  for (;;) {
    while (*a == '-')
      a++;
    while (*b == '-')
      b++;
    if (!*a || !*b)
      return !*a && !*b;
    if (strncasecmp(a++, b++, 1) != 0)
      return false;
  }
}

/* The name the file gives this instance of this account, or NULL. */
static const char *file_gateway_name(const struct config *f,
                                     const char *instance, size_t account)
{
  for (size_t g = 0; g < f->ngateways; g++) {
    if (f->gateways[g].account == account &&
        same_instance(f->gateways[g].instance_id, instance))
      return f->gateways[g].name;
  }
  return NULL;
}

/* The printed gateway of a live instance, added on first use. */
static size_t gateway_of(struct import *im, const char *instance,
                         size_t account)
{
  struct config *o = &im->out;
  const char *name;

  for (size_t g = 0; g < o->ngateways; g++) {
    if (o->gateways[g].account == account &&
        strcmp(o->gateways[g].instance_id, instance) == 0)
      return g;
  }
  name = file_gateway_name(im->file, instance, account);
  snprintf(im->gw_names[o->ngateways], IMPORT_NAME_MAX, "%s%.60s",
           name ? "" : "gw-", name ? name : instance);
  o->gateways[o->ngateways] =
      (struct config_gateway){.name = im->gw_names[o->ngateways],
                              .account = account,
                              .instance_id = (char *)instance};
  return o->ngateways++;
}

/* Certificate i, read as probe certificate h, and its live bindings. */
static void add_certificate(struct import *im, const struct live_cert *lc,
                            size_t i, size_t h)
{
  struct config *o = &im->out;
  const struct config_certificate *known = file_cert(im->file, im->ids[i]);
  size_t account = im->probe.certificates[h].account;
  size_t c = o->ncertificates++;

  /* the list's ssl_name comes back empty (a known APIG quirk): the file's
   * name, or one made from the ID */
  snprintf(im->cert_names[c], IMPORT_NAME_MAX, "%s%s", known ? "" : "cert-",
           known ? known->name : im->ids[i]);
  o->certificates[c] = (struct config_certificate){
      .name = im->cert_names[c], .account = account, .id = (char *)im->ids[i]};
  for (size_t j = 0; j < lc->b.n; j++) {
    const struct apig_binding *e = &lc->b.items[j];
    o->bindings[o->nbindings++] = (struct config_binding){
        .certificate = c,
        .gateway = gateway_of(im, e->instance_id, account),
        .domain = e->url_domain,
        .verify_client = e->verify_client};
  }
}

/* The model to print from the holders' live state: 0 or -ENOMEM. */
static int make_out(struct import *im, const struct live_state *live,
                    const long *holder)
{
  size_t n = 0;

  for (size_t i = 0; i < im->nids; i++)
    n += live->certs[holder[i]].b.n;
  im->out = *im->file;
  im->out.gateways = calloc(n + 1, sizeof(*im->out.gateways));
  im->out.certificates = calloc(im->nids + 1, sizeof(*im->out.certificates));
  im->out.bindings = calloc(n + 1, sizeof(*im->out.bindings));
  im->gw_names = calloc(n + 1, sizeof(*im->gw_names));
  im->cert_names = calloc(im->nids + 1, sizeof(*im->cert_names));
  im->out.ngateways = im->out.ncertificates = im->out.nbindings = 0;
  if (!im->out.gateways || !im->out.certificates || !im->out.bindings ||
      !im->gw_names || !im->cert_names)
    return -ENOMEM;
  for (size_t i = 0; i < im->nids; i++)
    add_certificate(im, &live->certs[holder[i]], i, (size_t)holder[i]);
  return 0;
}

/* ---- printing ------------------------------------------------------------ */

/* When the file is made: SOURCE_DATE_EPOCH when set (the reproducible
 * builds convention: the same live state then gives the same bytes), else
 * now. */
static time_t made_at(void)
{
  const char *s = getenv("SOURCE_DATE_EPOCH");
  char *end;
  long long t;

  if (s && *s) {
    errno = 0;
    t = strtoll(s, &end, 10);
    if (!*end && errno == 0 && t >= 0)
      return (time_t)t;
  }
  return time(NULL);
}

static char *header(const struct import *im)
{
  time_t t = made_at();
  struct tm tm;
  char when[32];
  size_t len = 512 + strlen(im->file->path) + im->nids * 34;
  char *h = malloc(len);
  size_t off;

  if (!h)
    return NULL;
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
  off = (size_t)snprintf(h, len,
                         "Generated by certbind import at %s\n"
                         "from the live bindings of certificate(s) ",
                         when);
  for (size_t i = 0; i < im->nids; i++)
    off +=
        (size_t)snprintf(h + off, len - off, "%s%s", i ? ", " : "", im->ids[i]);
  snprintf(h + off, len - off,
           ",\nread with the accounts of %s.\n"
           "`certbind plan -c` on this file shows no changes while the live "
           "state\nstays as read.",
           im->file->path);
  return h;
}

/* Load the text back as the check that it is a valid file: 0, or -EINVAL
 * after printing why. */
static int check_loads(const char *text, size_t len, size_t nbindings)
{
  struct config back = {0};
  struct config_diag diag = {0};
  int rc = config_load_buffer("(import output)", text, len, &back, &diag);

  if (rc == 0 && back.nbindings != nbindings)
    rc = -EINVAL;
  if (rc < 0) {
    fputs("certbind: import: the file made from the live state does not "
          "load back; nothing printed:\n",
          stderr);
    for (size_t i = 0; i < diag.count; i++)
      fprintf(stderr, "  %s\n", diag.lines[i]);
  }
  config_diag_free(&diag);
  config_free(&back);
  return rc;
}

static int print_out(const struct import *im)
{
  char *h = header(im), *text = NULL;
  size_t len;
  int rc = h ? config_emit(&im->out, h, &text, &len) : -ENOMEM;

  if (rc < 0)
    fprintf(stderr, "certbind: import: %s\n", strerror(-rc));
  else
    rc = check_loads(text, len, im->out.nbindings);
  if (rc == 0 && (fwrite(text, 1, len, stdout) != len || fflush(stdout))) {
    fprintf(stderr, "certbind: import: writing the output: %s\n",
            strerror(errno));
    rc = -EIO;
  }
  free(text);
  free(h);
  return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* ---- the command -----------------------------------------------------------
 */

/* The pass on the probe model (o->cfg). */
static int read_live(struct oneshot *o)
{
  struct pass_opts po = {.write = false, .command = "import", .probe = true};
  int rc = oneshot_run(o, &po, false);

  if (rc < 0)
    return rc;
  if (o->result->outcome == PASS_INTERRUPTED ||
      o->result->outcome == PASS_FAILED) {
    fprintf(stderr, "certbind: import: the reads did not complete (%s%s%s)\n",
            pass_outcome_name(o->result->outcome),
            *o->result->message ? ": " : "", o->result->message);
  }
  return o->result->outcome == PASS_INTERRUPTED ? -EINTR : 0;
}

static int import(struct import *im, struct oneshot *o)
{
  long *holder = calloc(im->nids + 1, sizeof(*holder));
  int rc = CLI_EXIT_FAILURE;
  bool all = true;

  if (!holder || make_probe(im) < 0)
    goto out;
  /* the pass runs on o->cfg, and keeps pointing at it until it is freed:
   * the probe stays there until then, and the file is put back for
   * oneshot_close to free */
  o->cfg = im->probe;
  if (read_live(o) < 0)
    goto out;
  for (size_t i = 0; i < im->nids; i++) {
    holder[i] = find_holder(im, o, i);
    all &= holder[i] >= 0;
  }
  if (!all)
    goto out;
  if (make_out(im, o->result->live, holder) < 0)
    fputs("certbind: import: out of memory\n", stderr);
  else
    rc = print_out(im);
out:
  free(holder);
  return rc;
}

int cli_import(const struct cli_args *a)
{
  struct oneshot o = {0};
  struct import im = {.args = a};
  int rc = oneshot_open(&o, a);
  struct config file = o.cfg;

  im.file = &file;
  if (rc == 0)
    rc = take_ids(&im);
  if (rc == 0)
    rc = import(&im, &o);
  o.cfg = file;
  oneshot_close(&o); /* the pass first: its results point into im */
  free(im.probe.certificates);
  free(im.out.gateways);
  free(im.out.certificates);
  free(im.out.bindings);
  free(im.gw_names);
  free(im.cert_names);
  free(im.ids);
  return rc;
}
