/* SPDX-License-Identifier: MIT */
/*
 * metrics: the Prometheus textfile (docs/cli.md, "Metrics"), for
 * node-exporter's textfile collector, written atomically (mode 0644) after
 * every pass.
 *
 * The counters (requests, retries, passes) and the last success are kept
 * in state_dir/counters.json, so that `apply` and the daemon add to the
 * same ones and they never go down between two writes of the textfile:
 * a process counts into its own struct metrics (what it did since it last
 * saved), and after each pass the caller reads the file, adds its counts
 * (metrics_add), writes the file back and the textfile from the sum, and
 * then forgets what it saved (metrics_saved). The binding and pass gauges
 * describe the last pass. Series written:
 *   certbind_bindings{state="converged|pending|failed"}      gauge
 *   certbind_bindings_uncertain                              gauge
 *   certbind_requests_total{op="…",code="…"}                 counter
 *   certbind_retries_total                                   counter
 *   certbind_passes_total                                    counter
 *   certbind_last_success_timestamp_seconds                  gauge
 *   certbind_last_pass_timestamp_seconds                     gauge
 *   certbind_pass_duration_seconds                           gauge
 *   certbind_config_last_reload_successful                   gauge (0/1)
 *   certbind_build_info{version="…"}                         gauge (1)
 *   certbind_certificate_not_after_timestamp_seconds{certificate="…",id="…"}
 *                                                            gauge (0 =
 *                                                            unknown)
 * and, once a verification of what the gateways serve has run
 * (served_checked):
 *   certbind_served_certificate_mismatches                   gauge
 *   certbind_served_certificate_not_after_timestamp_seconds{gateway,domain}
 *                                                            gauge
 * A zero-initialised struct metrics is valid.
 */
#ifndef CERTBIND_METRICS_H
#define CERTBIND_METRICS_H

#include <stdbool.h>
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

/* Whether the daemon's last (re)load of the file was accepted. Only the
 * daemon knows (`apply` leaves it UNKNOWN and the kept value stands);
 * written 1 unless FAILED. */
enum metrics_reload {
  METRICS_RELOAD_UNKNOWN = 0,
  METRICS_RELOAD_OK,
  METRICS_RELOAD_FAILED,
};

/* The earliest not_after among the leaves the addresses of gateway
 * presented for domain at the last verification. */
struct metrics_served {
  char *gateway; /* names in the file, whole */
  char *domain;
  int64_t not_after; /* unix s */
};

/* One certificate of the file and its end as the last pass knew it. */
struct metrics_certificate {
  char *certificate; /* its name in the file */
  char *id;          /* its APIG id; "none" when it has none yet */
  int64_t not_after; /* Unix s; 0: unknown (its Show failed, say) */
};

struct metrics {
  uint64_t converged, pending, failed; /* bindings after the last pass */
  uint64_t uncertain; /* unresolved intents of a crash that are live */
  uint64_t retries_total;
  uint64_t passes_total;
  int64_t last_success_ts; /* unix s of the last successful pass, 0 = never */
  int64_t last_pass_ts;    /* unix s of the end of the last pass, 0 = never */
  double pass_duration_s;  /* of the last pass */
  enum metrics_reload reload;
  struct metrics_request *requests;
  size_t nrequests, caprequests;
  /* the last verification of what the gateways serve; nothing of it is
   * written until served_checked */
  bool served_checked;
  uint64_t served_mismatches;    /* (address, domain) cells serving another
                                    certificate than the one wanted, or an
                                    expired one */
  struct metrics_served *served; /* sorted by (gateway, domain) */
  size_t nserved, capserved;
  /* gauges of the last pass, one series each, sorted by name when written;
   * not counters: metrics_add and metrics_saved leave them alone */
  struct metrics_certificate *certs;
  size_t ncerts;
};

#define METRICS_COUNTERS_FILE "counters.json"
/* metrics_counters_read refuses bigger files. */
#define METRICS_COUNTERS_MAX_SIZE (1u << 20)

/* Count one response (or transport failure) of operation op. 0, -EINVAL,
 * -ENOMEM. */
int metrics_count_request(struct metrics *m, const char *op, const char *code);

/* A leaf gateway served for domain, ending at not_after: the pair keeps
 * the earliest not_after of its addresses. Sets served_checked. 0,
 * -EINVAL, -ENOMEM. */
int metrics_served_leaf(struct metrics *m, const char *gateway,
                        const char *domain, int64_t not_after);

/* Forget the last verification (before recording a new one). */
void metrics_served_clear(struct metrics *m);

/* Render the textfile into a new NUL-terminated buffer (free() it). */
int metrics_format(const struct metrics *m, char **out, size_t *len);

/* Write the textfile to path atomically, mode 0644 (node-exporter runs as
 * another user). 0 or a negative errno (see statefile_strerror). */
int metrics_write(const char *path, const struct metrics *m);

/* Read state_dir/counters.json into *m (initialised here; metrics_free
 * it, also after an error): the request counters, retries, passes, the
 * last success and the last reload result. -ENOENT when there is none,
 * -EBADMSG when it is not a complete, valid counters file. */
int metrics_counters_read(const char *state_dir, struct metrics *m);

/* Write m's counters to state_dir/counters.json atomically, mode 0600.
 * 0 or a negative errno (see statefile_strerror). */
int metrics_counters_write(const char *state_dir, const struct metrics *m);

/* Add src's counters to dst's; dst keeps the later last success, and
 * src's reload result unless src does not know it, and src's last
 * verification (the served gauges) when it has one. 0 or -ENOMEM. */
int metrics_add(struct metrics *dst, const struct metrics *src);

/* src's counters are saved (added to the file): start counting from zero
 * again. The gauges, the last success and the reload result stay. */
void metrics_saved(struct metrics *m);

/* Add one certificate's series (label values cut as every label). 0,
 * -EINVAL, -ENOMEM. */
int metrics_add_certificate(struct metrics *m, const char *certificate,
                            const char *id, int64_t not_after);
/* Forget every certificate series (before a pass's are added). */
void metrics_clear_certificates(struct metrics *m);

void metrics_free(struct metrics *m);

#endif
