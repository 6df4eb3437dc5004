/*
 * metrics: the Prometheus textfile (SPEC §5), for node-exporter's textfile
 * collector, written atomically (mode 0644) after every pass.
 *
 * The engine keeps one struct metrics for the life of the process: the
 * binding gauges and the pass gauges describe the last pass, the *_total
 * counters only grow. Series written:
 *   certbind_bindings{state="converged|pending|failed"}      gauge
 *   certbind_requests_total{op="…",code="…"}                 counter
 *   certbind_retries_total                                   counter
 *   certbind_passes_total                                    counter
 *   certbind_last_success_timestamp_seconds                  gauge
 *   certbind_last_pass_timestamp_seconds                     gauge
 *   certbind_pass_duration_seconds                           gauge
 * A zero-initialised struct metrics is valid.
 */
#ifndef CERTBIND_METRICS_H
#define CERTBIND_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Distinct (op, code) pairs kept; further pairs count under code "other",
 * so a server inventing codes cannot grow the file without bound. */
#define METRICS_MAX_REQUEST_SERIES 256
/* Longer label values are cut to this many bytes. */
#define METRICS_MAX_LABEL 64

struct metrics_request {
  char *op;   /* list | attach | detach | token */
  char *code; /* HTTP status, APIG error code, or "transport" */
  uint64_t count;
};

struct metrics {
  uint64_t converged, pending, failed; /* bindings after the last pass */
  uint64_t retries_total;
  uint64_t passes_total;
  int64_t last_success_ts; /* unix s of the last converged pass, 0 = never */
  int64_t last_pass_ts;    /* unix s of the end of the last pass, 0 = never */
  double pass_duration_s;  /* of the last pass */
  struct metrics_request *requests;
  size_t nrequests, caprequests;
};

/* Count one response (or transport failure) of operation op. 0, -EINVAL,
 * -ENOMEM. */
int metrics_count_request(struct metrics *m, const char *op, const char *code);

/* Render the textfile into a new NUL-terminated buffer (free() it). */
int metrics_format(const struct metrics *m, char **out, size_t *len);

/* Write the textfile to path atomically, mode 0644 (node-exporter runs as
 * another user). 0 or a negative errno (see statefile_strerror). */
int metrics_write(const char *path, const struct metrics *m);

void metrics_free(struct metrics *m);

#endif
