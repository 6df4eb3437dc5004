/*
 * metrics: Prometheus text exposition format 0.0.4, built in memory with
 * open_memstream and written with statefile_write_atomic.
 */
#include "metrics.h"

#include "statefile.h"

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A label value as stored: cut to METRICS_MAX_LABEL bytes, never empty. */
static char *label_dup(const char *s)
{
  size_t n = strnlen(s, METRICS_MAX_LABEL);

  return n ? strndup(s, n) : strdup("none");
}

static bool label_equal(const char *stored, const char *s)
{
  size_t n = strnlen(s, METRICS_MAX_LABEL);

  if (n == 0)
    return strcmp(stored, "none") == 0;
  return strlen(stored) == n && strncmp(stored, s, n) == 0;
}

static struct metrics_request *find_request(struct metrics *m, const char *op,
                                            const char *code)
{
  for (size_t i = 0; i < m->nrequests; i++) {
    if (label_equal(m->requests[i].op, op) &&
        label_equal(m->requests[i].code, code))
      return &m->requests[i];
  }
  return NULL;
}

static int add_request(struct metrics *m, const char *op, const char *code)
{
  struct metrics_request *r;

  if (m->nrequests == m->caprequests) {
    size_t cap = m->caprequests ? m->caprequests * 2 : 16;

    r = realloc(m->requests, cap * sizeof(*r));
    if (!r)
      return -ENOMEM;
    m->requests = r;
    m->caprequests = cap;
  }
  r = &m->requests[m->nrequests];
  r->op = label_dup(op);
  r->code = label_dup(code);
  r->count = 1;
  if (!r->op || !r->code) {
    free(r->op);
    free(r->code);
    return -ENOMEM;
  }
  m->nrequests++;
  return 0;
}

int metrics_count_request(struct metrics *m, const char *op, const char *code)
{
  struct metrics_request *r;

  if (!m || !op || !code)
    return -EINVAL;
  r = find_request(m, op, code);
  if (!r && m->nrequests >= METRICS_MAX_REQUEST_SERIES - 1) {
    /* The last series is reserved for the overflow bucket. */
    code = "other";
    r = find_request(m, op, code);
  }
  if (r) {
    r->count++;
    return 0;
  }
  return add_request(m, op, code);
}

/* Label values escape backslash, double quote and newline. */
static void put_label(FILE *f, const char *s)
{
  for (; *s; s++) {
    if (*s == '\\')
      fputs("\\\\", f);
    else if (*s == '"')
      fputs("\\\"", f);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void put_header(FILE *f, const char *name, const char *type,
                       const char *help)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int request_cmp(const void *a, const void *b)
{
  const struct metrics_request *x = *(const struct metrics_request *const *)a;
  const struct metrics_request *y = *(const struct metrics_request *const *)b;
  int c = strcmp(x->op, y->op);

  return c ? c : strcmp(x->code, y->code);
}

/* Sorted, so the file does not reshuffle from one pass to the next. */
static int put_requests(FILE *f, const struct metrics *m)
{
  const struct metrics_request **sorted =
      malloc((m->nrequests ? m->nrequests : 1) * sizeof(*sorted));

  if (!sorted)
    return -ENOMEM;
  for (size_t i = 0; i < m->nrequests; i++)
    sorted[i] = &m->requests[i];
  qsort(sorted, m->nrequests, sizeof(*sorted), request_cmp);
  put_header(f, "certbind_requests_total", "counter",
             "APIG and IAM requests by operation and result code.");
  for (size_t i = 0; i < m->nrequests; i++) {
    fputs("certbind_requests_total{op=\"", f);
    put_label(f, sorted[i]->op);
    fputs("\",code=\"", f);
    put_label(f, sorted[i]->code);
    fprintf(f, "\"} %" PRIu64 "\n", sorted[i]->count);
  }
  free(sorted);
  return 0;
}

static int put_all(FILE *f, const struct metrics *m)
{
  put_header(f, "certbind_bindings", "gauge",
             "Bindings by state after the last pass.");
  fprintf(f, "certbind_bindings{state=\"converged\"} %" PRIu64 "\n",
          m->converged);
  fprintf(f, "certbind_bindings{state=\"pending\"} %" PRIu64 "\n", m->pending);
  fprintf(f, "certbind_bindings{state=\"failed\"} %" PRIu64 "\n", m->failed);
  if (put_requests(f, m) < 0)
    return -ENOMEM;
  put_header(f, "certbind_retries_total", "counter",
             "Requests sent again after a retryable failure.");
  fprintf(f, "certbind_retries_total %" PRIu64 "\n", m->retries_total);
  put_header(f, "certbind_passes_total", "counter",
             "Reconciliation passes run.");
  fprintf(f, "certbind_passes_total %" PRIu64 "\n", m->passes_total);
  put_header(f, "certbind_last_success_timestamp_seconds", "gauge",
             "End of the last pass that converged, unix time (0: never).");
  fprintf(f, "certbind_last_success_timestamp_seconds %" PRId64 "\n",
          m->last_success_ts);
  put_header(f, "certbind_last_pass_timestamp_seconds", "gauge",
             "End of the last pass, unix time (0: never).");
  fprintf(f, "certbind_last_pass_timestamp_seconds %" PRId64 "\n",
          m->last_pass_ts);
  put_header(f, "certbind_pass_duration_seconds", "gauge",
             "Duration of the last pass in seconds.");
  fprintf(f, "certbind_pass_duration_seconds %.3f\n", m->pass_duration_s);
  return 0;
}

int metrics_format(const struct metrics *m, char **out, size_t *len)
{
  FILE *f;
  int rc;

  if (!m || !out || !len)
    return -EINVAL;
  *out = NULL;
  f = open_memstream(out, len);
  if (!f)
    return -ENOMEM;
  rc = put_all(f, m);
  if (ferror(f))
    rc = -ENOMEM;
  if (fclose(f) != 0 && rc == 0)
    rc = -ENOMEM;
  if (rc < 0) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

int metrics_write(const char *path, const struct metrics *m)
{
  char *text;
  size_t len;
  int rc;

  if (!path)
    return -EINVAL;
  rc = metrics_format(m, &text, &len);
  if (rc < 0)
    return rc;
  rc = statefile_write_atomic(path, text, len, 0644);
  free(text);
  return rc;
}

void metrics_free(struct metrics *m)
{
  if (!m)
    return;
  for (size_t i = 0; i < m->nrequests; i++) {
    free(m->requests[i].op);
    free(m->requests[i].code);
  }
  free(m->requests);
  m->requests = NULL;
  m->nrequests = m->caprequests = 0;
}
