/* SPDX-License-Identifier: MIT */
/*
 * metrics: Prometheus text exposition format 0.0.4, built in memory with
 * open_memstream and written with statefile_write_atomic; the counters
 * file is JSON through util/json.h (one table per object, both ways).
 */
#include "metrics.h"

#include "json.h"
#include "statefile.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CERTBIND_VERSION
#define CERTBIND_VERSION "unknown"
#endif

#define COUNTERS_VERSION 1

/* Label values are UTF-8 in the exposition format and in the counters
 * file: a byte outside ASCII (a server's code, or a character cut in two
 * at METRICS_MAX_LABEL) is stored as '?'. */
static char label_byte(char c)
{
  return (unsigned char)c >= 0x80 ? '?' : c;
}

/* A label value as stored: cut to METRICS_MAX_LABEL bytes, never empty. */
static char *label_dup(const char *s)
{
  size_t n = strnlen(s, METRICS_MAX_LABEL);
  char *d;

  if (n == 0)
    return strdup("none");
  d = strndup(s, n);
  for (size_t i = 0; d && i < n; i++)
    d[i] = label_byte(d[i]);
  return d;
}

static bool label_equal(const char *stored, const char *s)
{
  size_t n = strnlen(s, METRICS_MAX_LABEL);

  if (n == 0)
    return strcmp(stored, "none") == 0;
  if (strlen(stored) != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    if (stored[i] != label_byte(s[i]))
      return false;
  }
  return true;
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

static int add_request(struct metrics *m, const char *op, const char *code,
                       uint64_t count)
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
  r->count = count;
  if (!r->op || !r->code) {
    free(r->op);
    free(r->code);
    return -ENOMEM;
  }
  m->nrequests++;
  return 0;
}

static int add_to_request(struct metrics *m, const char *op, const char *code,
                          uint64_t count)
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
    r->count += count;
    return 0;
  }
  return add_request(m, op, code, count);
}

int metrics_count_request(struct metrics *m, const char *op, const char *code)
{
  return add_to_request(m, op, code, 1);
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

/* ---- what the gateways serve ---- */

static int served_cmp(const struct metrics_served *x, const char *gateway,
                      const char *domain)
{
  int c = strcmp(x->gateway, gateway);

  return c ? c : strcmp(x->domain, domain);
}

/* Where (gateway, domain) is or would go in the sorted array. */
static size_t served_pos(const struct metrics *m, const char *gateway,
                         const char *domain, bool *found)
{
  size_t lo = 0, hi = m->nserved;

  *found = false;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = served_cmp(&m->served[mid], gateway, domain);

    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int served_insert(struct metrics *m, size_t at, const char *gateway,
                         const char *domain, int64_t not_after)
{
  struct metrics_served e = {strdup(gateway), strdup(domain), not_after};

  if (!e.gateway || !e.domain)
    goto nomem;
  if (m->nserved == m->capserved) {
    size_t cap = m->capserved ? m->capserved * 2 : 16;
    struct metrics_served *n = realloc(m->served, cap * sizeof(*n));

    if (!n)
      goto nomem;
    m->served = n;
    m->capserved = cap;
  }
  memmove(&m->served[at + 1], &m->served[at],
          (m->nserved - at) * sizeof(*m->served));
  m->served[at] = e;
  m->nserved++;
  return 0;
nomem:
  free(e.gateway);
  free(e.domain);
  return -ENOMEM;
}

int metrics_served_leaf(struct metrics *m, const char *gateway,
                        const char *domain, int64_t not_after)
{
  bool found;
  size_t at;

  if (!m || !gateway || !domain)
    return -EINVAL;
  m->served_checked = true;
  at = served_pos(m, gateway, domain, &found);
  if (!found)
    return served_insert(m, at, gateway, domain, not_after);
  if (not_after < m->served[at].not_after)
    m->served[at].not_after = not_after;
  return 0;
}

void metrics_served_clear(struct metrics *m)
{
  for (size_t i = 0; i < m->nserved; i++) {
    free(m->served[i].gateway);
    free(m->served[i].domain);
  }
  free(m->served);
  m->served = NULL;
  m->nserved = m->capserved = 0;
  m->served_mismatches = 0;
  m->served_checked = false;
}

/* dst's last verification becomes a copy of src's. */
static int served_copy(struct metrics *dst, const struct metrics *src)
{
  metrics_served_clear(dst);
  for (size_t i = 0; i < src->nserved; i++) {
    int rc = served_insert(dst, i, src->served[i].gateway,
                           src->served[i].domain, src->served[i].not_after);

    if (rc < 0)
      return rc;
  }
  dst->served_mismatches = src->served_mismatches;
  dst->served_checked = true;
  return 0;
}

static void put_served(FILE *f, const struct metrics *m)
{
  const char *na = "certbind_served_certificate_not_after_timestamp_seconds";

  if (!m->served_checked)
    return;
  put_header(f, "certbind_served_certificate_mismatches", "gauge",
             "Gateway addresses and domains that served another certificate "
             "than the one wanted, or an expired one, at the last "
             "verification.");
  fprintf(f, "certbind_served_certificate_mismatches %" PRIu64 "\n",
          m->served_mismatches);
  put_header(f, na, "gauge",
             "The earliest end of validity of the leaves a gateway's "
             "addresses served for a domain at the last verification, unix "
             "time.");
  for (size_t i = 0; i < m->nserved; i++) {
    fprintf(f, "%s{gateway=\"", na);
    put_label(f, m->served[i].gateway);
    fputs("\",domain=\"", f);
    put_label(f, m->served[i].domain);
    fprintf(f, "\"} %" PRId64 "\n", m->served[i].not_after);
  }
}

static int cert_cmp(const void *a, const void *b)
{
  const struct metrics_certificate *x = a, *y = b;
  int c = strcmp(x->certificate, y->certificate);

  return c ? c : strcmp(x->id, y->id);
}

/* Sorted by name (the caller's array is const: a sorted copy). */
static int put_certificates(FILE *f, const struct metrics *m)
{
  struct metrics_certificate *sorted;

  if (m->ncerts == 0)
    return 0;
  sorted = malloc(m->ncerts * sizeof(*sorted));
  if (!sorted)
    return -ENOMEM;
  memcpy(sorted, m->certs, m->ncerts * sizeof(*sorted));
  qsort(sorted, m->ncerts, sizeof(*sorted), cert_cmp);
  put_header(f, "certbind_certificate_not_after_timestamp_seconds", "gauge",
             "End of validity of each certificate of the file, unix time, as "
             "the last pass knew it (0: unknown).");
  for (size_t i = 0; i < m->ncerts; i++) {
    fputs("certbind_certificate_not_after_timestamp_seconds{certificate=\"", f);
    put_label(f, sorted[i].certificate);
    fputs("\",id=\"", f);
    put_label(f, sorted[i].id);
    fprintf(f, "\"} %" PRId64 "\n", sorted[i].not_after);
  }
  free(sorted);
  return 0;
}

int metrics_add_certificate(struct metrics *m, const char *certificate,
                            const char *id, int64_t not_after)
{
  struct metrics_certificate *c;

  if (!m || !certificate)
    return -EINVAL;
  c = realloc(m->certs, (m->ncerts + 1) * sizeof(*c));
  if (!c)
    return -ENOMEM;
  m->certs = c;
  c = &m->certs[m->ncerts];
  c->certificate = label_dup(certificate);
  c->id = label_dup(id ? id : "");
  c->not_after = not_after > 0 ? not_after : 0;
  if (!c->certificate || !c->id) {
    free(c->certificate);
    free(c->id);
    return -ENOMEM;
  }
  m->ncerts++;
  return 0;
}

void metrics_clear_certificates(struct metrics *m)
{
  for (size_t i = 0; m && i < m->ncerts; i++) {
    free(m->certs[i].certificate);
    free(m->certs[i].id);
  }
  if (!m)
    return;
  free(m->certs);
  m->certs = NULL;
  m->ncerts = 0;
}

static int put_all(FILE *f, const struct metrics *m)
{
  put_header(f, "certbind_bindings", "gauge",
             "Bindings by state after the last pass.");
  fprintf(f, "certbind_bindings{state=\"converged\"} %" PRIu64 "\n",
          m->converged);
  fprintf(f, "certbind_bindings{state=\"pending\"} %" PRIu64 "\n", m->pending);
  fprintf(f, "certbind_bindings{state=\"failed\"} %" PRIu64 "\n", m->failed);
  put_header(f, "certbind_bindings_uncertain", "gauge",
             "Live bindings left as unresolved intents by a crash: never "
             "detached, not owned until certbind adopt.");
  fprintf(f, "certbind_bindings_uncertain %" PRIu64 "\n", m->uncertain);
  if (put_requests(f, m) < 0)
    return -ENOMEM;
  put_header(f, "certbind_retries_total", "counter",
             "Requests sent again after a retryable failure.");
  fprintf(f, "certbind_retries_total %" PRIu64 "\n", m->retries_total);
  put_header(f, "certbind_passes_total", "counter",
             "Reconciliation passes run.");
  fprintf(f, "certbind_passes_total %" PRIu64 "\n", m->passes_total);
  put_header(f, "certbind_last_success_timestamp_seconds", "gauge",
             "End of the last successful pass (nothing pending, every failure "
             "a permanent error of one binding), unix time (0: never).");
  fprintf(f, "certbind_last_success_timestamp_seconds %" PRId64 "\n",
          m->last_success_ts);
  put_header(f, "certbind_last_pass_timestamp_seconds", "gauge",
             "End of the last pass, unix time (0: never).");
  fprintf(f, "certbind_last_pass_timestamp_seconds %" PRId64 "\n",
          m->last_pass_ts);
  put_header(f, "certbind_pass_duration_seconds", "gauge",
             "Duration of the last pass in seconds.");
  fprintf(f, "certbind_pass_duration_seconds %.3f\n", m->pass_duration_s);
  put_header(f, "certbind_config_last_reload_successful", "gauge",
             "Whether the daemon accepted the last (re)load of the file.");
  fprintf(f, "certbind_config_last_reload_successful %d\n",
          m->reload != METRICS_RELOAD_FAILED);
  put_header(f, "certbind_build_info", "gauge",
             "The running certbind's version, always 1.");
  fputs("certbind_build_info{version=\"", f);
  put_label(f, CERTBIND_VERSION);
  fputs("\"} 1\n", f);
  put_served(f, m);
  return put_certificates(f, m);
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

/* ---- the counters file (util/json.h) ---- */

/* One (op, code) counter; the reader adds it to the struct metrics. */
static const struct json_field request_fields[] = {
    {.name = "op",
     .kind = JSON_K_STR,
     .offset = offsetof(struct metrics_request, op),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "code",
     .kind = JSON_K_STR,
     .offset = offsetof(struct metrics_request, code),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "count",
     .kind = JSON_K_U64,
     .offset = offsetof(struct metrics_request, count),
     .flags = JSON_REQUIRED | JSON_ONCE},
};

static int request_open(struct json_reader *r, void *parent, void **base);
static int request_close(struct json_reader *r, void *base);

static const struct json_object request_object = {
    .name = "requests element",
    .fields = request_fields,
    .nfields = sizeof(request_fields) / sizeof(request_fields[0]),
    .open = request_open,
    .close = request_close,
};

/* Unix seconds, never negative. */
static int set_seconds(struct json_reader *r, const struct json_field *f,
                       void *dst, const struct json_value *v)
{
  if (v->i < 0)
    return json_fail(r, -EBADMSG, f->name, "is negative");
  *(int64_t *)dst = v->i;
  return 0;
}

static int set_reload(struct json_reader *r, const struct json_field *f,
                      void *dst, const struct json_value *v)
{
  (void)r;
  (void)f;
  *(enum metrics_reload *)dst =
      v->b ? METRICS_RELOAD_OK : METRICS_RELOAD_FAILED;
  return 0;
}

/* Every key once: a file certbind wrote has no key twice, and a counter
 * read twice would count twice. */
static const struct json_field counters_fields[] = {
    {.name = "version",
     .kind = JSON_K_CUSTOM,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .max = COUNTERS_VERSION,
     .accept = JSON_INT,
     .set = json_set_version},
    {.name = "requests",
     .kind = JSON_K_ARRAY,
     .flags = JSON_REQUIRED | JSON_ONCE,
     .object = &request_object},
    {.name = "retries_total",
     .kind = JSON_K_U64,
     .offset = offsetof(struct metrics, retries_total),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "passes_total",
     .kind = JSON_K_U64,
     .offset = offsetof(struct metrics, passes_total),
     .flags = JSON_REQUIRED | JSON_ONCE},
    {.name = "last_success_timestamp_seconds",
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct metrics, last_success_ts),
     .flags = JSON_REQUIRED | JSON_ONCE,
     .accept = JSON_INT,
     .set = set_seconds},
    {.name = "config_last_reload_successful", /* absent: not known */
     .kind = JSON_K_CUSTOM,
     .offset = offsetof(struct metrics, reload),
     .flags = JSON_ONCE,
     .accept = JSON_BOOL,
     .set = set_reload},
};

static const struct json_doc counters_doc = {
    .root = &(const struct json_object){.name = "counters",
                                        .fields = counters_fields,
                                        .nfields = sizeof(counters_fields) /
                                                   sizeof(counters_fields[0])},
    .max_depth = 0, /* our own file: its size is capped, not its depth */
};

static yajl_gen_status gen_request(yajl_gen g, const struct metrics_request *r)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_fields(g, &request_object, r);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

static yajl_gen_status gen_counters(yajl_gen g, const struct metrics *m)
{
  yajl_gen_status gs = yajl_gen_map_open(g);

  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_u64(g, "version", COUNTERS_VERSION);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_str(g, "requests");
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_open(g);
  for (size_t i = 0; i < m->nrequests && gs == yajl_gen_status_ok; i++)
    gs = gen_request(g, &m->requests[i]);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_array_close(g);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_u64(g, "retries_total", m->retries_total);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_u64(g, "passes_total", m->passes_total);
  if (gs == yajl_gen_status_ok)
    gs = json_gen_key_u64(g, "last_success_timestamp_seconds",
                          m->last_success_ts > 0 ? (uint64_t)m->last_success_ts
                                                 : 0);
  if (gs == yajl_gen_status_ok && m->reload != METRICS_RELOAD_UNKNOWN)
    gs = json_gen_key_bool(g, "config_last_reload_successful",
                           m->reload == METRICS_RELOAD_OK);
  if (gs == yajl_gen_status_ok)
    gs = yajl_gen_map_close(g);
  return gs;
}

int metrics_counters_write(const char *state_dir, const struct metrics *m)
{
  char path[PATH_MAX];
  const unsigned char *buf;
  size_t len;
  yajl_gen g;
  int rc;

  if (!state_dir || !m)
    return -EINVAL;
  rc = statefile_path(path, sizeof(path), state_dir, METRICS_COUNTERS_FILE);
  if (rc < 0)
    return rc;
  g = json_gen_new(false, NULL, NULL);
  if (!g)
    return -ENOMEM;
  if (gen_counters(g, m) != yajl_gen_status_ok ||
      yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
    rc = -ENOMEM; /* every other yajl_gen error is a bug of ours */
  else
    rc = statefile_write_atomic(path, buf, len, 0600);
  yajl_gen_free(g);
  return rc;
}

struct reading {
  struct metrics *m;
  struct metrics_request cur; /* the element being read */
};

static void clear_request(struct metrics_request *r)
{
  free(r->op);
  free(r->code);
  memset(r, 0, sizeof(*r));
}

static int request_open(struct json_reader *r, void *parent, void **base)
{
  struct reading *rd = json_ctx(r);

  (void)parent;
  clear_request(&rd->cur);
  *base = &rd->cur;
  return 0;
}

static int request_close(struct json_reader *r, void *base)
{
  struct reading *rd = json_ctx(r);
  const struct metrics_request *q = base;
  int rc = add_to_request(rd->m, q->op, q->code, q->count);

  clear_request(&rd->cur);
  return rc < 0 ? json_fail(r, rc, NULL, "out of memory") : 0;
}

int metrics_counters_read(const char *state_dir, struct metrics *m)
{
  struct reading rd = {.m = m};
  char path[PATH_MAX];
  char *buf;
  size_t len;
  int rc;

  if (!state_dir || !m)
    return -EINVAL;
  memset(m, 0, sizeof(*m));
  rc = statefile_path(path, sizeof(path), state_dir, METRICS_COUNTERS_FILE);
  if (rc < 0)
    return rc;
  rc = statefile_read(path, METRICS_COUNTERS_MAX_SIZE, &buf, &len);
  if (rc < 0)
    return rc;
  rc = json_read(&counters_doc, buf, len, m, &rd, NULL, 0);
  clear_request(&rd.cur);
  free(buf);
  return rc;
}

int metrics_add(struct metrics *dst, const struct metrics *src)
{
  for (size_t i = 0; i < src->nrequests; i++) {
    int rc = add_to_request(dst, src->requests[i].op, src->requests[i].code,
                            src->requests[i].count);
    if (rc < 0)
      return rc;
  }
  dst->retries_total += src->retries_total;
  dst->passes_total += src->passes_total;
  if (src->last_success_ts > dst->last_success_ts)
    dst->last_success_ts = src->last_success_ts;
  if (src->reload != METRICS_RELOAD_UNKNOWN)
    dst->reload = src->reload;
  if (src->served_checked)
    return served_copy(dst, src);
  return 0;
}

void metrics_saved(struct metrics *m)
{
  for (size_t i = 0; i < m->nrequests; i++) {
    free(m->requests[i].op);
    free(m->requests[i].code);
  }
  m->nrequests = 0;
  m->retries_total = 0;
  m->passes_total = 0;
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
  metrics_served_clear(m);
  metrics_clear_certificates(m);
}
