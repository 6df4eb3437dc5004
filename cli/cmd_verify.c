/* SPDX-License-Identifier: MIT */
/*
 * verify: what the gateways actually serve. For every binding of the file
 * on a gateway that lists ingress addresses, and every such address, one
 * TLS handshake with SNI = the domain (a name under a wildcard), the leaf
 * compared with the certificate the file wants (probe.h). Cells that are
 * not ok are tried again, with backoff, until policy.confirm_timeout_s
 * has passed since the start: the data plane lags behind the API. Writes
 * nothing to APIG and touches neither the ledger nor state_dir.
 *
 * A certificate from files is compared by its leaf's SHA-256. For a
 * certificate given by `id` the serial number and not_after are not known
 * without a read of the API object: its cells are `unknown` (the leaf is
 * reported, not judged), and they are not ok.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>
#include <yajl/yajl_gen.h>

#include "cli.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "probe.h"

#define WILDCARD_PROBE_LABEL "certbind-verify"
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 8000

/* One (gateway, address, domain). */
struct cell {
  size_t binding; /* index into cfg.bindings */
  size_t ingress; /* index into the gateway's ingress */
  size_t column;  /* index into the matrix's columns */
  char *sni;
  struct probe_want want;
  enum probe_verdict verdict;
  struct probe_result last; /* the last handshake's result */
  unsigned attempts;
  bool settled; /* trying again would change nothing */
};

struct column {
  size_t gateway, ingress;
  char label[200]; /* "gateway address" */
};

struct verify {
  const struct cli_args *args;
  struct config cfg;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm;
  uv_timer_t wait;
  struct probe *probe;
  struct cell *cells;
  size_t ncells;
  struct column *columns;
  size_t ncolumns;
  size_t outstanding; /* handshakes of this round not yet answered */
  unsigned rounds;
  bool interrupted;
};

/* ---- the cells ------------------------------------------------------- */

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

static void want_of(const struct config_certificate *c, struct probe_want *w)
{
  memset(w, 0, sizeof(*w));
  if (c->managed && hex_to_bytes(c->file.sha256, w->sha256, 32) == 0)
    w->has_sha256 = true;
}

/* The name asked for: the domain, or for "*.rest" a name under it. */
static char *sni_of(const char *domain)
{
  size_t len = strlen(domain) + sizeof(WILDCARD_PROBE_LABEL) + 1;
  char *s = malloc(len);

  if (!s)
    return NULL;
  if (strncmp(domain, "*.", 2) == 0)
    snprintf(s, len, "%s.%s", WILDCARD_PROBE_LABEL, domain + 2);
  else
    snprintf(s, len, "%s", domain);
  return s;
}

static size_t column_of(const struct verify *v, size_t gateway, size_t ingress)
{
  for (size_t i = 0; i < v->ncolumns; i++)
    if (v->columns[i].gateway == gateway && v->columns[i].ingress == ingress)
      return i;
  return 0;
}

static int make_columns(struct verify *v)
{
  const struct config *cfg = &v->cfg;
  size_t n = 0;

  for (size_t g = 0; g < cfg->ngateways; g++)
    n += cfg->gateways[g].ningress;
  v->columns = calloc(n ? n : 1, sizeof(*v->columns));
  if (!v->columns)
    return -ENOMEM;
  for (size_t g = 0; g < cfg->ngateways; g++)
    for (size_t i = 0; i < cfg->gateways[g].ningress; i++) {
      struct column *c = &v->columns[v->ncolumns++];

      c->gateway = g;
      c->ingress = i;
      snprintf(c->label, sizeof(c->label), "%s %s", cfg->gateways[g].name,
               cfg->gateways[g].ingress[i].text);
    }
  return 0;
}

static int make_cells(struct verify *v)
{
  const struct config *cfg = &v->cfg;
  size_t n = 0;

  for (size_t b = 0; b < cfg->nbindings; b++)
    n += cfg->gateways[cfg->bindings[b].gateway].ningress;
  v->cells = calloc(n ? n : 1, sizeof(*v->cells));
  if (!v->cells)
    return -ENOMEM;
  for (size_t b = 0; b < cfg->nbindings; b++) {
    const struct config_binding *bd = &cfg->bindings[b];
    const struct config_gateway *g = &cfg->gateways[bd->gateway];

    for (size_t i = 0; i < g->ningress; i++) {
      struct cell *c = &v->cells[v->ncells];

      c->binding = b;
      c->ingress = i;
      c->column = column_of(v, bd->gateway, i);
      c->sni = sni_of(bd->domain);
      if (!c->sni)
        return -ENOMEM;
      want_of(&cfg->certificates[bd->certificate], &c->want);
      c->verdict = PROBE_VERDICT_UNREACHABLE;
      v->ncells++;
    }
  }
  return 0;
}

static const char *domain_of(const struct verify *v, const struct cell *c)
{
  return v->cfg.bindings[c->binding].domain;
}

static const struct config_gateway *gateway_of(const struct verify *v,
                                               const struct cell *c)
{
  return &v->cfg.gateways[v->cfg.bindings[c->binding].gateway];
}

static const char *address_of(const struct verify *v, const struct cell *c)
{
  return gateway_of(v, c)->ingress[c->ingress].text;
}

static const char *certificate_of(const struct verify *v, const struct cell *c)
{
  return v->cfg.certificates[v->cfg.bindings[c->binding].certificate].name;
}

/* ---- the rounds ------------------------------------------------------ */

static void on_probe_done(const struct probe_target *t,
                          const struct probe_result *r, void *arg)
{
  struct cell *c = arg;

  (void)t;
  c->last = *r;
  c->attempts++;
  c->verdict = probe_judge(r, &c->want, (int64_t)time(NULL));
  /* an expired leaf that is not the one wanted may be a lagging node's */
  c->settled =
      c->verdict == PROBE_VERDICT_OK || c->verdict == PROBE_VERDICT_UNKNOWN ||
      (c->verdict == PROBE_VERDICT_EXPIRED && probe_matches(r, &c->want));
}

static void on_probe_closed(void *arg)
{
  struct verify *v = arg;

  v->probe = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
  struct verify *v = h->data;

  (void)signum;
  v->interrupted = true;
  if (v->probe)
    probe_close(v->probe, on_probe_closed, v);
  uv_timer_stop(&v->wait);
}

/* One handshake per cell not yet settled; the loop runs until all are
 * answered. */
static int run_round(struct verify *v)
{
  int rc = 0;

  v->probe = probe_new(&v->loop, NULL);
  if (!v->probe)
    return -ENOMEM;
  for (size_t i = 0; i < v->ncells && rc == 0; i++) {
    struct cell *c = &v->cells[i];
    struct probe_target t;

    if (c->settled)
      continue;
    t.addr = gateway_of(v, c)->ingress[c->ingress].addr;
    t.sni = c->sni;
    rc = probe_add(v->probe, &t, on_probe_done, c);
  }
  while (rc == 0 && v->probe && probe_pending(v->probe) > 0 && !v->interrupted)
    uv_run(&v->loop, UV_RUN_ONCE);
  if (v->probe)
    probe_close(v->probe, on_probe_closed, v);
  while (v->probe)
    uv_run(&v->loop, UV_RUN_ONCE);
  v->rounds++;
  return rc;
}

static bool all_settled(const struct verify *v)
{
  for (size_t i = 0; i < v->ncells; i++)
    if (!v->cells[i].settled)
      return false;
  return true;
}

static void on_wait(uv_timer_t *t)
{
  (void)t;
}

static void sleep_ms(struct verify *v, uint64_t ms)
{
  uv_timer_start(&v->wait, on_wait, ms, 0);
  uv_run(&v->loop, UV_RUN_ONCE);
  uv_timer_stop(&v->wait);
}

/* Rounds until every cell is settled or confirm_timeout_s is over. */
static int run_rounds(struct verify *v)
{
  uint64_t start = uv_now(&v->loop);
  uint64_t deadline = start + (uint64_t)v->cfg.policy.confirm_timeout_s * 1000;
  uint64_t backoff = BACKOFF_FIRST_MS;

  for (;;) {
    int rc = run_round(v);

    if (rc < 0)
      return rc;
    uv_update_time(&v->loop);
    if (v->interrupted || all_settled(v) ||
        uv_now(&v->loop) + backoff >= deadline)
      return 0;
    sleep_ms(v, backoff);
    if (v->interrupted)
      return 0;
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
  }
}

/* ---- what is printed ------------------------------------------------- */

static void log_cell(const struct verify *v, const struct cell *c)
{
  struct log_fields f = LOG_FIELDS_INIT;
  const char *domain = domain_of(v, c);
  const struct probe_leaf *l = &c->last.leaf;
  struct log_kv kv[] = {{"attempts", (long long)c->attempts}};

  f.gateway = gateway_of(v, c)->name;
  f.certificate = certificate_of(v, c);
  f.domains = &domain;
  f.ndomains = 1;
  f.latency_ms = c->last.elapsed_ms;
  f.kv = kv;
  f.nkv = 1;
  switch (c->verdict) {
  case PROBE_VERDICT_OK:
    log_event(&v->args->log, LOG_INFO, "verify.ok", &f, "%s serves sha256 %s",
              address_of(v, c), l->sha256_hex);
    break;
  case PROBE_VERDICT_UNREACHABLE:
    f.error_msg = c->last.error;
    log_event(&v->args->log, LOG_WARN, "verify.unreachable", &f, "%s: %s",
              address_of(v, c), c->last.error);
    break;
  default:
    log_event(&v->args->log, LOG_WARN, "verify.mismatch", &f,
              "%s %s: serves %s, serial %s, not_after %lld, sha256 %s",
              address_of(v, c), probe_verdict_name(c->verdict), l->subject,
              l->serial, (long long)l->not_after, l->sha256_hex);
    break;
  }
}

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
  const struct cell *x = a, *y = b;
  int d = strcmp(domain_of(v, x), domain_of(v, y));

  if (d)
    return d;
  return (x->column > y->column) - (x->column < y->column);
}

/* qsort_r is glibc's; the order is by domain, then column */
static void sort_cells(struct verify *v)
{
  qsort_r(v->cells, v->ncells, sizeof(*v->cells), compare_cells, v);
}

static size_t domain_width(const struct verify *v)
{
  size_t w = strlen("domain");

  for (size_t i = 0; i < v->ncells; i++) {
    size_t n = strlen(domain_of(v, &v->cells[i]));

    if (n > w)
      w = n;
  }
  return w;
}

static size_t column_width(const struct column *c)
{
  size_t n = strlen(c->label);

  return n < strlen("unreachable") ? strlen("unreachable") : n;
}

/* octodns-report's shape: one row per domain, one column per gateway
 * address, one word per cell ("-": not bound there). */
static void print_matrix(const struct verify *v, FILE *out)
{
  size_t dw = domain_width(v);

  fprintf(out, "%-*s", (int)dw, "domain");
  for (size_t j = 0; j < v->ncolumns; j++)
    fprintf(out, "  %-*s", (int)column_width(&v->columns[j]),
            v->columns[j].label);
  fputc('\n', out);
  for (size_t i = 0; i < v->ncells;) {
    const char *domain = domain_of(v, &v->cells[i]);
    size_t first = i;

    fprintf(out, "%-*s", (int)dw, domain);
    for (size_t j = 0; j < v->ncolumns; j++) {
      const char *word = "-";

      if (i < v->ncells && v->cells[i].column == j &&
          strcmp(domain_of(v, &v->cells[i]), domain) == 0)
        word = probe_verdict_name(v->cells[i++].verdict);
      fprintf(out, "  %-*s", (int)column_width(&v->columns[j]), word);
    }
    fputc('\n', out);
    if (i == first)
      i++; /* cannot happen: every cell has its column */
  }
}

static void print_details(const struct verify *v, FILE *out)
{
  for (size_t i = 0; i < v->ncells; i++) {
    const struct cell *c = &v->cells[i];
    const struct probe_leaf *l = &c->last.leaf;
    char na[32];

    if (c->verdict == PROBE_VERDICT_OK)
      continue;
    fprintf(out, "  %-11s %s on %s %s", probe_verdict_name(c->verdict),
            domain_of(v, c), gateway_of(v, c)->name, address_of(v, c));
    if (strcmp(c->sni, domain_of(v, c)) != 0)
      fprintf(out, " (as %s)", c->sni);
    if (c->verdict == PROBE_VERDICT_UNREACHABLE) {
      fprintf(out, ": %s\n", c->last.error);
      continue;
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
      fprintf(out, " (certificate %s is known by id: nothing to compare)",
              certificate_of(v, c));
    fputc('\n', out);
  }
}

struct counts {
  size_t n[PROBE_VERDICT_UNKNOWN + 1];
};

static struct counts count_cells(const struct verify *v)
{
  struct counts k = {{0}};

  for (size_t i = 0; i < v->ncells; i++)
    k.n[v->cells[i].verdict]++;
  return k;
}

static void print_text(const struct verify *v, FILE *out, double secs)
{
  struct counts k = count_cells(v);

  if (v->ncells == 0) {
    fprintf(out, "nothing to verify: no binding is on a gateway with "
                 "ingress addresses\n");
    return;
  }
  print_matrix(v, out);
  print_details(v, out);
  fprintf(out,
          "verify: %zu ok, %zu mismatch, %zu expired, %zu unreachable, "
          "%zu unknown (%zu checks, %u round%s, %.1f s)%s\n",
          k.n[PROBE_VERDICT_OK], k.n[PROBE_VERDICT_MISMATCH],
          k.n[PROBE_VERDICT_EXPIRED], k.n[PROBE_VERDICT_UNREACHABLE],
          k.n[PROBE_VERDICT_UNKNOWN], v->ncells, v->rounds,
          v->rounds == 1 ? "" : "s", secs,
          v->interrupted ? " (interrupted)" : "");
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

static int gen_cell(yajl_gen g, const struct verify *v, const struct cell *c)
{
  const struct config_certificate *cert =
      &v->cfg.certificates[v->cfg.bindings[c->binding].certificate];

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "domain", domain_of(v, c)));
  GEN_OK(json_gen_key_str(g, "gateway", gateway_of(v, c)->name));
  GEN_OK(json_gen_key_str(g, "address", address_of(v, c)));
  GEN_OK(json_gen_key_str(g, "sni", c->sni));
  GEN_OK(json_gen_key_str(g, "certificate", cert->name));
  GEN_OK(json_gen_key_str(g, "result", probe_verdict_name(c->verdict)));
  GEN_OK(json_gen_key_int(g, "attempts", c->attempts));
  if (c->want.has_sha256)
    GEN_OK(json_gen_key_str(g, "wanted_sha256", cert->file.sha256));
  if (c->verdict == PROBE_VERDICT_UNREACHABLE) {
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
  GEN_OK(json_gen_key_bool(g, "ok", k.n[PROBE_VERDICT_OK] == v->ncells));
  GEN_OK(json_gen_key_bool(g, "interrupted", v->interrupted));
  GEN_OK(json_gen_key_int(g, "rounds", v->rounds));
  GEN_OK(json_gen_str(g, "counts"));
  GEN_OK(yajl_gen_map_open(g));
  for (int i = 0; i <= PROBE_VERDICT_UNKNOWN; i++)
    GEN_OK(
        json_gen_key_u64(g, probe_verdict_name((enum probe_verdict)i), k.n[i]));
  GEN_OK(yajl_gen_map_close(g));
  GEN_OK(json_gen_str(g, "cells"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < v->ncells; i++)
    if (gen_cell(g, v, &v->cells[i]) < 0)
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

static int open_loop(struct verify *v)
{
  int rc = uv_loop_init(&v->loop);

  if (rc < 0)
    return rc;
  uv_signal_init(&v->loop, &v->sigint);
  uv_signal_init(&v->loop, &v->sigterm);
  uv_timer_init(&v->loop, &v->wait);
  v->sigint.data = v->sigterm.data = v;
  uv_signal_start(&v->sigint, on_signal, SIGINT);
  uv_signal_start(&v->sigterm, on_signal, SIGTERM);
  /* the signals alone do not keep a round's loop running */
  uv_unref((uv_handle_t *)&v->sigint);
  uv_unref((uv_handle_t *)&v->sigterm);
  return 0;
}

static void close_loop(struct verify *v)
{
  uv_close((uv_handle_t *)&v->sigint, NULL);
  uv_close((uv_handle_t *)&v->sigterm, NULL);
  uv_close((uv_handle_t *)&v->wait, NULL);
  uv_run(&v->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&v->loop) != 0)
    log_event(&v->args->log, LOG_ERROR, "verify.failed", NULL,
              "the event loop could not be closed: a handle was left open");
}

static void free_verify(struct verify *v)
{
  for (size_t i = 0; i < v->ncells; i++)
    free(v->cells[i].sni);
  free(v->cells);
  free(v->columns);
  config_free(&v->cfg);
}

static int verify_run(struct verify *v)
{
  uint64_t t0 = uv_hrtime();
  struct counts k;
  int rc;

  rc = make_columns(v);
  if (rc == 0)
    rc = make_cells(v);
  if (rc < 0)
    return rc;
  rc = open_loop(v);
  if (rc < 0)
    return rc;
  if (v->ncells)
    rc = run_rounds(v);
  close_loop(v);
  if (rc < 0)
    return rc;
  sort_cells(v);
  for (size_t i = 0; i < v->ncells; i++)
    log_cell(v, &v->cells[i]);
  if (v->args->json)
    rc = print_json(v, stdout);
  else
    print_text(v, stdout, (double)(uv_hrtime() - t0) / 1e9);
  if (rc < 0)
    return rc;
  k = count_cells(v);
  return k.n[PROBE_VERDICT_OK] == v->ncells && !v->interrupted
             ? CLI_EXIT_OK
             : CLI_EXIT_FAILURE;
}

int cli_verify(const struct cli_args *a)
{
  struct verify v = {.args = a};
  int rc = cli_load_config(a->config_path, &v.cfg);

  if (rc)
    return rc;
  rc = verify_run(&v);
  if (rc < 0) {
    log_event(&a->log, LOG_ERROR, "verify.failed", NULL, "%s", strerror(-rc));
    rc = CLI_EXIT_FAILURE;
  }
  free_verify(&v);
  return rc;
}
