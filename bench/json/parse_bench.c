/* SPDX-License-Identifier: MIT */
/*
 * parse_bench: time the JSON readers through their public functions, so
 * the same file builds against any revision of api/apig.c and state/
 * (bench/json/run.sh builds an old and a new one).
 *
 *   parse_bench list N ITEMS     apig_parse_list of one page of ITEMS
 *                                bindings shaped like APIG's (unknown
 *                                fields to skip), N times
 *   parse_bench status N ITEMS   status_from_json of a status.json of
 *                                ITEMS bindings, N times
 *   parse_bench ledger N ITEMS   ledger_from_json of a ledger.json of ITEMS
 *                                entries, N times
 *
 * Prints one line: "<what> <items> <n> <total ms> <us per parse>": the CPU
 * time (CLOCK_PROCESS_CPUTIME_ID) of the parse loop alone, which includes
 * freeing each result.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apig.h"
#include "ledger.h"
#include "status.h"

static double cpu_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A page as APIG renders it: ~500 bytes an entry. */
static char *list_page(size_t items, size_t *len)
{
  size_t cap = 256 + items * 640, n = 0;
  char *s = malloc(cap);

  if (!s)
    exit(1);
  n += (size_t)snprintf(s + n, cap - n,
                        "{\"total\":%zu,\"size\":%zu,\"bound_domains\":[",
                        items, items);
  for (size_t i = 0; i < items; i++)
    n += (size_t)snprintf(
        s + n, cap - n,
        "%s{\"url_domain\":\"Host-%zu.Example.com\",\"id\":"
        "\"7a1c%028zu\",\"status\":3,\"min_ssl_version\":\"TLSv1.2\","
        "\"is_http_redirect_to_https\":false,"
        "\"verified_client_certificate_enabled\":%s,"
        "\"ssl_id\":\"a27be832f2e9441c8127fe48e3b5ac67\","
        "\"ssl_name\":\"cert_demo\",\"instance_id\":"
        "\"f0fa1789-3b76-433b-a787-9892951c620e\",\"api_group_id\":"
        "\"c77f5e81d9cb4424bf704ef2b0ac7600\",\"api_group_name\":"
        "\"group-%zu\",\"ingress_http_port\":80,\"ingress_https_port\":443}",
        i ? "," : "", i, i, i % 3 ? "false" : "true", i % 7);
  n += (size_t)snprintf(s + n, cap - n, "]}");
  *len = n;
  return s;
}

static int bench_list(long n, size_t items, double *ms)
{
  size_t len;
  char *page = list_page(items, &len), why[128];
  struct apig_bindings b = {0};
  struct apig_page p;
  double t0 = cpu_ms();

  for (long i = 0; i < n; i++) {
    if (apig_parse_list(page, len, &b, &p, why, sizeof why) != 0 ||
        p.count != items) {
      fprintf(stderr, "parse failed: %s\n", why);
      return 1;
    }
    apig_bindings_free(&b);
  }
  *ms = cpu_ms() - t0;
  free(page);
  return 0;
}

static char *status_json(size_t items, size_t *len)
{
  struct status st = {0};
  char *out;

  st.pass.started_ms = 1700000000000;
  st.pass.ended_ms = 1700000012345;
  st.pass.outcome = "partial";
  st.pass.command = "apply";
  st.pass.mode = "sync";
  st.pass.message = "";
  st.bindings = calloc(items, sizeof(*st.bindings));
  st.nbindings = items;
  for (size_t i = 0; i < items; i++) {
    struct status_binding *b = &st.bindings[i];
    char *d;

    if (asprintf(&d, "host-%zu.example.com", i) < 0)
      exit(1);
    b->account = "prod";
    b->certificate = "star-example-2026";
    b->certificate_id = "a27be832f2e9441c8127fe48e3b5ac67";
    b->gateway = "sg-edge-1";
    b->instance_id = "f0fa1789-3b76-433b-a787-9892951c620e";
    b->domain = d;
    b->state = i % 10 ? STATUS_CONVERGED : STATUS_FAILED;
    if (b->state == STATUS_FAILED) {
      b->error_code = "APIG.3020";
      b->error_msg = "The URL domain does not exist";
      b->request_id = "5b1c2d";
      b->attempts = 3;
    }
  }
  if (status_to_json(&st, &out, len) != 0)
    exit(1);
  for (size_t i = 0; i < items; i++)
    free(st.bindings[i].domain);
  free(st.bindings);
  return out;
}

static int bench_status(long n, size_t items, double *ms)
{
  size_t len;
  char *json = status_json(items, &len);
  struct status st;
  double t0 = cpu_ms();

  for (long i = 0; i < n; i++) {
    if (status_from_json(json, len, &st) != 0 || st.nbindings != items)
      return 1;
    status_free(&st);
  }
  *ms = cpu_ms() - t0;
  free(json);
  return 0;
}

static int bench_ledger(long n, size_t items, double *ms)
{
  struct ledger l = {0};
  char *json, dom[64];
  size_t len;

  for (size_t i = 0; i < items; i++) {
    snprintf(dom, sizeof dom, "host-%zu.example.com", i);
    if (ledger_add(&l, "a27be832f2e9441c8127fe48e3b5ac67",
                   "f0fa1789-3b76-433b-a787-9892951c620e", dom,
                   1700000000 + (int64_t)i) != 0)
      return 1;
  }
  if (ledger_to_json(&l, &json, &len) != 0)
    return 1;
  ledger_free(&l);
  double t0 = cpu_ms();
  for (long i = 0; i < n; i++) {
    if (ledger_from_json(json, len, &l) != 0 || ledger_count(&l) != items)
      return 1;
    ledger_free(&l);
  }
  *ms = cpu_ms() - t0;
  free(json);
  return 0;
}

int main(int argc, char **argv)
{
  long n;
  size_t items;
  double ms = 0;
  int rc;

  if (argc != 4) {
    fprintf(stderr, "usage: parse_bench list|status|ledger N ITEMS\n");
    return 2;
  }
  n = strtol(argv[2], NULL, 10);
  items = (size_t)strtoul(argv[3], NULL, 10);
  if (strcmp(argv[1], "list") == 0)
    rc = bench_list(n, items, &ms);
  else if (strcmp(argv[1], "status") == 0)
    rc = bench_status(n, items, &ms);
  else if (strcmp(argv[1], "ledger") == 0)
    rc = bench_ledger(n, items, &ms);
  else
    rc = 2;
  if (rc)
    return rc;
  printf("%s %zu %ld %.1f %.2f\n", argv[1], items, n, ms, ms * 1e3 / (double)n);
  return 0;
}
