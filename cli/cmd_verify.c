/* SPDX-License-Identifier: MIT */
/*
 * verify: what the gateways actually serve. First one read-only pass (as
 * `plan` reads: lists and Shows, no write), then the check (served.h) on a
 * loop of its own, with SIGINT/SIGTERM, and the matrix. Writes nothing to
 * APIG and touches neither the ledger nor state_dir.
 *
 * A certificate from files is compared by its leaf's SHA-256, one given by
 * `id` by the serial number and not_after the pass's Show answered (a
 * failed Show: its cells `unknown`, with why). Only the bindings the live
 * state shows on the wanted certificate are checked: a wanted binding not
 * in place is `-` in the matrix, listed under it, and does not fail the
 * command (that is `certbind plan`'s question, not what is served).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>
#include <yajl/yajl_gen.h>

#include "cli.h"
#include "config.h"
#include "oneshot.h"
#include "json.h"
#include "log.h"
#include "probe.h"
#include "served.h"

/* A run of the command: the file, the loop, the check, and its cells in
 * the matrix's order (by domain, then column). */
struct verify {
  const struct cli_args *args;
  struct oneshot o; /* the file (o.cfg) and the read-only pass (o.pass) */
  struct served *served;
  const struct served_cell **cells; /* sorted */
  size_t ncells;
  size_t ncolumns;
};

static const char *domain_of(const struct verify *v,
                             const struct served_cell *c)
{
  return v->o.cfg.bindings[c->binding].domain;
}

static const struct config_gateway *gateway_of(const struct verify *v,
                                               const struct served_cell *c)
{
  return &v->o.cfg.gateways[v->o.cfg.bindings[c->binding].gateway];
}

static const char *address_of(const struct verify *v,
                              const struct served_cell *c)
{
  return gateway_of(v, c)->ingress[c->ingress].text;
}

static const char *certificate_of(const struct verify *v,
                                  const struct served_cell *c)
{
  return v->o.cfg.certificates[v->o.cfg.bindings[c->binding].certificate].name;
}

/* ---- what is printed ------------------------------------------------- */

static void format_time(int64_t t, char *buf, size_t size)
{
  time_t tt = (time_t)t;
  struct tm tm;

  if (t && gmtime_r(&tt, &tm))
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
  else
    snprintf(buf, size, "unknown");
}

static int compare_cells(const void *a, const void *b, void *arg)
{
  const struct verify *v = arg;
  const struct served_cell *x = *(const struct served_cell *const *)a;
  const struct served_cell *y = *(const struct served_cell *const *)b;
  int d = strcmp(domain_of(v, x), domain_of(v, y));

  if (d)
    return d;
  return (x->column > y->column) - (x->column < y->column);
}

/* The matrix's order: by domain, then column (qsort_r is glibc's). */
static int sort_cells(struct verify *v)
{
  size_t n;
  const struct served_cell *cells = served_cells(v->served, &n);

  v->cells = calloc(n ? n : 1, sizeof(*v->cells));
  if (!v->cells)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    v->cells[i] = &cells[i];
  v->ncells = n;
  qsort_r(v->cells, n, sizeof(*v->cells), compare_cells, v);
  for (size_t g = 0; g < v->o.cfg.ngateways; g++)
    v->ncolumns += v->o.cfg.gateways[g].ningress;
  return 0;
}

/* "gateway address" of column j */
static void column_label(const struct verify *v, size_t j, char *buf,
                         size_t size)
{
  for (size_t g = 0; g < v->o.cfg.ngateways; g++) {
    const struct config_gateway *gw = &v->o.cfg.gateways[g];

    if (j < gw->ningress) {
      snprintf(buf, size, "%s %s", gw->name, gw->ingress[j].text);
      return;
    }
    j -= gw->ningress;
  }
  snprintf(buf, size, "?");
}

static int column_width(const struct verify *v, size_t j)
{
  char label[200];
  size_t n;

  column_label(v, j, label, sizeof(label));
  n = strlen(label);
  return (int)(n < strlen("unreachable") ? strlen("unreachable") : n);
}

static int domain_width(const struct verify *v)
{
  size_t w = strlen("domain");

  for (size_t i = 0; i < v->ncells; i++) {
    size_t n = strlen(domain_of(v, v->cells[i]));

    if (n > w)
      w = n;
  }
  return (int)w;
}

/* A cell's word: "-" for a binding not in place. */
static const char *word_of(const struct served_cell *c)
{
  return c->bound ? probe_verdict_name(c->verdict) : "-";
}

/* octodns-report's shape: one row per domain, one column per gateway
 * address, one word per cell ("-": not bound there). */
static void print_matrix(const struct verify *v, FILE *out)
{
  int dw = domain_width(v);
  char label[200];

  fprintf(out, "%-*s", dw, "domain");
  for (size_t j = 0; j < v->ncolumns; j++) {
    column_label(v, j, label, sizeof(label));
    fprintf(out, "  %s", label);
  }
  fputc('\n', out);
  for (size_t i = 0; i < v->ncells;) {
    const char *domain = domain_of(v, v->cells[i]);
    size_t first = i;

    fprintf(out, "%-*s", dw, domain);
    for (size_t j = 0; j < v->ncolumns; j++) {
      const char *word = "-";

      if (i < v->ncells && v->cells[i]->column == j &&
          strcmp(domain_of(v, v->cells[i]), domain) == 0)
        word = word_of(v->cells[i++]);
      /* no padding after the last column */
      fprintf(out, "  %-*s", j + 1 < v->ncolumns ? column_width(v, j) : 0,
              word);
    }
    fputc('\n', out);
    if (i == first)
      i++; /* cannot happen: every cell has its column */
  }
}

static void print_detail(const struct verify *v, const struct served_cell *c,
                         FILE *out)
{
  const struct probe_leaf *l = &c->last.leaf;
  char na[32];

  fprintf(out, "  %-11s %s on %s %s", probe_verdict_name(c->verdict),
          domain_of(v, c), gateway_of(v, c)->name, address_of(v, c));
  if (strcmp(c->sni, domain_of(v, c)) != 0)
    fprintf(out, " (as %s)", c->sni);
  if (c->last.status != PROBE_OK) { /* unreachable, or never tried */
    fprintf(out, ": %s\n", c->last.error);
    return;
  }
  format_time(l->not_after, na, sizeof(na));
  fprintf(out, ": serves %s, serial %s, not_after %s, sha256 %s",
          l->subject[0] ? l->subject : "(no subject)", l->serial, na,
          l->sha256_hex);
  if (c->verdict == PROBE_VERDICT_EXPIRED)
    fputs(probe_matches(&c->last, &c->want) ? " (the wanted certificate)"
                                            : " (not the wanted certificate)",
          out);
  if (c->verdict == PROBE_VERDICT_UNKNOWN)
    fprintf(out, " (certificate %s: nothing known to compare it with)",
            certificate_of(v, c));
  fputc('\n', out);
}

/* The certificate of the file that the live state shows on binding c's
 * (gateway, domain) instead of the wanted one, or NULL. */
static const char *bound_instead(const struct verify *v,
                                 const struct served_cell *c)
{
  const struct config_binding *b = &v->o.cfg.bindings[c->binding];
  const struct live_state *live = v->o.result ? v->o.result->live : NULL;

  /* the live state may hold more than the file's certificates (a
   * renewal's previous objects, after them): only the file's are named */
  size_t n = live ? live->ncerts : 0;

  if (n > v->o.cfg.ncertificates)
    n = v->o.cfg.ncertificates;
  for (size_t k = 0; k < n; k++) {
    if (k != b->certificate && live->certs[k].known &&
        live_cert_find(&live->certs[k],
                       v->o.cfg.gateways[b->gateway].instance_id, b->domain))
      return v->o.cfg.certificates[k].name;
  }
  return NULL;
}

/* The wanted bindings not in place, once each (not per address). */
static void print_not_bound(const struct verify *v, FILE *out)
{
  bool header = false;

  for (size_t i = 0; i < v->ncells; i++) {
    const struct served_cell *c = v->cells[i];
    const char *other;

    if (c->bound || c->ingress != 0)
      continue;
    if (!header)
      fprintf(out, "not bound (not checked: `certbind plan` shows what "
                   "apply would change):\n");
    header = true;
    other = bound_instead(v, c);
    fprintf(out, "  %s on %s: wanted on certificate %s, %s%s\n",
            domain_of(v, c), gateway_of(v, c)->name, certificate_of(v, c),
            other ? "bound to certificate " : "not bound", other ? other : "");
  }
}

static void print_details(const struct verify *v, FILE *out)
{
  for (size_t i = 0; i < v->ncells; i++)
    if (v->cells[i]->bound && v->cells[i]->verdict != PROBE_VERDICT_OK)
      print_detail(v, v->cells[i], out);
  print_not_bound(v, out);
}

struct counts {
  size_t n[PROBE_VERDICT_UNKNOWN + 1];
  size_t not_bound;
  size_t checks;
};

static struct counts count_cells(const struct verify *v)
{
  struct counts k = {{0}, 0, 0};

  for (size_t i = 0; i < v->ncells; i++) {
    if (!v->cells[i]->bound) {
      k.not_bound++;
      continue;
    }
    k.n[v->cells[i]->verdict]++;
    k.checks++;
  }
  return k;
}

static void print_text(const struct verify *v, FILE *out, double secs)
{
  struct counts k = count_cells(v);
  unsigned rounds = served_rounds(v->served);

  if (v->ncells == 0) {
    fprintf(out, "nothing to verify: no binding is on a gateway with "
                 "ingress addresses\n");
    return;
  }
  print_matrix(v, out);
  print_details(v, out);
  fprintf(out,
          "verify: %zu ok, %zu mismatch, %zu expired, %zu unreachable, "
          "%zu unknown, %zu not bound (%zu checks, %u round%s, %.1f s)%s\n",
          k.n[PROBE_VERDICT_OK], k.n[PROBE_VERDICT_MISMATCH],
          k.n[PROBE_VERDICT_EXPIRED], k.n[PROBE_VERDICT_UNREACHABLE],
          k.n[PROBE_VERDICT_UNKNOWN], k.not_bound, k.checks, rounds,
          rounds == 1 ? "" : "s", secs,
          served_stopped(v->served) ? " (interrupted)" : "");
}

#define GEN_OK(expr)                                                           \
  do {                                                                         \
    if ((expr) != yajl_gen_status_ok)                                          \
      return -EINVAL;                                                          \
  } while (0)

static int gen_leaf(yajl_gen g, const char *key, const struct probe_leaf *l)
{
  char nb[32], na[32];

  format_time(l->not_before, nb, sizeof(nb));
  format_time(l->not_after, na, sizeof(na));
  GEN_OK(json_gen_str(g, key));
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "sha256", l->sha256_hex));
  GEN_OK(json_gen_key_str(g, "serial", l->serial));
  GEN_OK(json_gen_str(g, "subject"));
  GEN_OK(json_gen_text(g, l->subject));
  GEN_OK(json_gen_key_str(g, "not_before", nb));
  GEN_OK(json_gen_key_str(g, "not_after", na));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
}

static int gen_wanted(yajl_gen g, const struct verify *v,
                      const struct served_cell *c)
{
  const struct config_certificate *cert =
      &v->o.cfg.certificates[v->o.cfg.bindings[c->binding].certificate];
  char na[32];

  if (c->want.has_sha256)
    GEN_OK(json_gen_key_str(g, "wanted_sha256", cert->managed->file.sha256));
  if (c->want.serial) {
    format_time(c->want.not_after, na, sizeof(na));
    GEN_OK(json_gen_key_str(g, "wanted_serial", c->want.serial));
    GEN_OK(json_gen_key_str(g, "wanted_not_after", na));
  }
  return 0;
}

static int gen_cell(yajl_gen g, const struct verify *v,
                    const struct served_cell *c)
{
  const struct config_certificate *cert =
      &v->o.cfg.certificates[v->o.cfg.bindings[c->binding].certificate];

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "domain", domain_of(v, c)));
  GEN_OK(json_gen_key_str(g, "gateway", gateway_of(v, c)->name));
  GEN_OK(json_gen_key_str(g, "address", address_of(v, c)));
  GEN_OK(json_gen_key_str(g, "sni", c->sni));
  GEN_OK(json_gen_key_str(g, "certificate", cert->name));
  GEN_OK(json_gen_key_str(
      g, "result", c->bound ? probe_verdict_name(c->verdict) : "not_bound"));
  GEN_OK(json_gen_key_int(g, "attempts", c->attempts));
  if (gen_wanted(g, v, c) < 0)
    return -EINVAL;
  if (!c->bound) {
    const char *other = bound_instead(v, c);

    if (other)
      GEN_OK(json_gen_key_str(g, "bound_to", other));
  } else if (c->last.status != PROBE_OK) {
    GEN_OK(json_gen_str(g, "error"));
    GEN_OK(json_gen_text(g, c->last.error));
  } else {
    if (gen_leaf(g, "served", &c->last.leaf) < 0)
      return -EINVAL;
    GEN_OK(json_gen_key_bool(g, "served_is_wanted",
                             probe_matches(&c->last, &c->want)));
  }
  GEN_OK(yajl_gen_map_close(g));
  return 0;
}

static int gen_report(yajl_gen g, const struct verify *v)
{
  struct counts k = count_cells(v);

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_bool(g, "ok", served_all_ok(v->served)));
  GEN_OK(json_gen_key_bool(g, "interrupted", served_stopped(v->served)));
  GEN_OK(json_gen_key_int(g, "rounds", served_rounds(v->served)));
  GEN_OK(json_gen_str(g, "counts"));
  GEN_OK(yajl_gen_map_open(g));
  for (int i = 0; i <= PROBE_VERDICT_UNKNOWN; i++)
    GEN_OK(
        json_gen_key_u64(g, probe_verdict_name((enum probe_verdict)i), k.n[i]));
  GEN_OK(json_gen_key_u64(g, "not_bound", k.not_bound));
  GEN_OK(yajl_gen_map_close(g));
  GEN_OK(json_gen_str(g, "cells"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < v->ncells; i++)
    if (gen_cell(g, v, v->cells[i]) < 0)
      return -EINVAL;
  GEN_OK(yajl_gen_array_close(g));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
}

static int print_json(const struct verify *v, FILE *out)
{
  yajl_gen g = json_gen_new(true, NULL, NULL);
  char *text = NULL;
  size_t len = 0;
  int rc;

  if (!g)
    return -ENOMEM;
  rc = gen_report(g, v);
  if (rc == 0)
    rc = json_gen_take(g, &text, &len);
  yajl_gen_free(g);
  if (rc < 0)
    return rc;
  fwrite(text, 1, len, out);
  fputc('\n', out);
  free(text);
  return 0;
}

/* ---- the command ----------------------------------------------------- */

/* The read-only pass: lists and Shows, no write, no lock, no ledger (a
 * pass without one detaches nothing and owns nothing: it only reads). 0,
 * or CLI_EXIT_FAILURE after saying why. */
static int read_live(struct verify *v)
{
  struct pass_opts po = {.write = false, .command = "verify"};
  const struct pass_result *r;

  if (oneshot_run(&v->o, &po, true) < 0)
    return CLI_EXIT_FAILURE; /* logged */
  r = v->o.result;
  if (r->outcome == PASS_INTERRUPTED) {
    fprintf(stderr, "certbind: verify: interrupted while reading the API\n");
    return CLI_EXIT_FAILURE;
  }
  return 0;
}

static int verify_run(struct verify *v)
{
  uint64_t t0 = uv_hrtime();
  struct served_opts so = {.pass = v->o.pass, .bound_only = true};
  int rc = served_run(&v->o.cfg, &v->args->log, &so, &v->served);

  if (rc == 0)
    rc = sort_cells(v);
  if (rc < 0)
    return rc;
  if (v->args->json)
    rc = print_json(v, stdout);
  else
    print_text(v, stdout, (double)(uv_hrtime() - t0) / 1e9);
  if (rc < 0)
    return rc;
  return served_all_ok(v->served) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cli_verify(const struct cli_args *a)
{
  struct verify v = {.args = a};
  int rc = oneshot_open(&v.o, a);

  if (rc)
    goto out;
  rc = read_live(&v);
  if (rc == 0)
    rc = verify_run(&v);
  if (rc < 0) {
    log_event(&a->log, LOG_ERROR, "verify.failed", NULL, "%s", strerror(-rc));
    rc = CLI_EXIT_FAILURE;
  }
out:
  free(v.cells);
  served_free(v.served);
  oneshot_close(&v.o);
  return rc;
}
