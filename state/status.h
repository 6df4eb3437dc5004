/* SPDX-License-Identifier: MIT */
/*
 * status: the last pass and every binding's state, kept in
 * state_dir/status.json, and `certbind status` printing.
 *
 * The engine fills a struct status during and after a pass and writes it
 * with status_write (atomic, mode 0600). The file is a JSON object:
 *   {"version":1,
 *    "pass":{"started_ms":…,"ended_ms":…,"started":"<RFC 3339>", …counts},
 *    "bindings":[{"account":…,"certificate":…,"certificate_id":…,
 *                 "gateway":…,"instance_id":…,"domain":…,
 *                 "verify_client":false,"state":"failed",
 *                 "error_code":…,"error_msg":…,"request_id":…,
 *                 "attempts":3,"next_retry":0,
 *                 "served":[{"address":…,"result":"ok","sha256":…,
 *                            "serial":…,"subject":…,"not_after":…,
 *                            "error":null,"checked":…}]}, …],
 *    "certificates":[{"certificate":…,"certificate_id":…,"account":…,
 *                     "not_after":1767225600,"expiry_warning_days":21,
 *                     "not_after_at":"<RFC 3339>","days_left":43}, …],
 *    "left_objects":[{"object_id":…,"name":…,"certificate":…,
 *                     "sha256":…}, …]}
 * "served" is there only for a binding whose served certificate was
 * checked. A certificate's not_after is 0 (not_after_at and days_left null)
 * when the pass did not learn it (its Show failed); days_left counts from
 * the end of the pass (status_print counts from the time it prints).
 * "left_objects" (optional: a file without it has none) are the objects
 * certbind created for certificates the file no longer names.
 * Absent strings are JSON null. Unknown keys are ignored when reading, so
 * later versions may add fields; a wrong type, a missing required field,
 * a truncated or garbage file is -EBADMSG.
 *
 * All strings are owned by the struct (status_free frees them), but for
 * the names of a binding marked names_borrowed. Nothing secret belongs
 * here: error messages are the API's, never request data.
 */
#ifndef CERTBIND_STATUS_H
#define CERTBIND_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATUS_FILE "status.json"
/* status_read refuses bigger files (100,000 bindings take ~40 MiB). */
#define STATUS_MAX_FILE_SIZE (256u * 1024u * 1024u)

enum status_state { STATUS_CONVERGED, STATUS_PENDING, STATUS_FAILED };

/* What one ingress address of the binding's gateway served at the last
 * verification of what the gateways serve (docs/cli.md, verify). */
struct status_served {
  char *address;     /* "IP:PORT" or "[IPv6]:PORT" */
  char *result;      /* ok | mismatch | expired | unreachable | unknown */
  char *sha256;      /* the leaf served (lowercase hex); NULL: unreachable */
  char *serial;      /* uppercase hex */
  char *subject;     /* RFC 2253 */
  int64_t not_after; /* unix s; 0: unreachable */
  char *error;       /* unreachable: why; else NULL */
  int64_t checked;   /* unix s of the handshake */
};

struct status_binding {
  char *account;
  char *certificate; /* name in the file */
  char *certificate_id;
  char *gateway; /* name in the file */
  char *instance_id;
  char *domain;
  bool verify_client;
  enum status_state state;
  char *error_code; /* failed: the API's code, message and request id */
  char *error_msg;
  char *request_id;
  uint32_t attempts;
  int64_t next_retry; /* unix seconds, 0 = none */
  /* account … domain point into memory the status does not own (a pass's
   * file model and live state, which outlive it): status_free leaves
   * them, status_binding_copy copies them. 100,000 bindings would take
   * 15 MB of copies. */
  bool names_borrowed;
  /* the last verification, one per ingress address ("served" in the
   * file, left out when empty) */
  struct status_served *served;
  size_t nserved;
};

struct status_pass {
  int64_t started_ms, ended_ms; /* unix ms */
  /* "converged" | "partial" | "failed" | "refused" | "aborted" |
   * "interrupted" */
  char *outcome;
  char *command; /* apply | run */
  char *mode;    /* upsert | sync */
  char *config_sha256;
  uint64_t attached, changed, detached, unchanged, failed, pending, requests,
      retries;
  uint64_t uncertain; /* live bindings with a crash-left intent (ledger.h) */
  char *message;      /* one line: why refused/aborted, or "" */
};

/* One certificate of the file and its end, as the pass knew it. */
struct status_cert {
  char *certificate;    /* name in the file */
  char *certificate_id; /* NULL: none yet */
  char *account;
  int64_t not_after;            /* unix s; 0 = unknown */
  uint32_t expiry_warning_days; /* the policy then: "expires in N days" */
};

/* An APIG certificate object certbind created for a certificate the file
 * no longer names (plan.h, struct plan_left): left alone, reported. */
struct status_left {
  char *object_id;
  char *name;        /* the object's name at APIG */
  char *certificate; /* the file's certificate name it was made for */
  char *sha256;      /* its leaf's SHA-256, hex */
};

struct status {
  struct status_pass pass;
  struct status_binding *bindings;
  size_t nbindings;
  struct status_cert *certs;
  size_t ncerts;
  struct status_left *left; /* "left_objects": none in an older file */
  size_t nleft;
};

/* Write state_dir/status.json atomically, mode 0600. 0 or a negative
 * errno; statefile_strerror(rc, "write", path, …) explains it. */
int status_write(const char *state_dir, const struct status *st);

/* Read state_dir/status.json into *st (initialised here; status_free it,
 * also after an error). -ENOENT when there is none yet, -EBADMSG when it
 * is not a complete, valid status file. */
int status_read(const char *state_dir, struct status *st);

void status_free(struct status *st);

/* Serialise to JSON (the file's content) into a new buffer. */
int status_to_json(const struct status *st, char **out, size_t *len);

/* Parse JSON text (as written by status_write) into *st. */
int status_from_json(const char *json, size_t len, struct status *st);

/* How status_print prints. */
struct status_print_opts {
  bool json;  /* the file's JSON instead (always every binding) */
  bool color; /* ANSI colours (the caller decides: a terminal, no NO_COLOR,
               * TERM not dumb) */
  bool all;   /* every failed and pending binding, not the first
               * STATUS_PRINT_PER_STATE of each */
};

/* Text lists at most this many bindings per state unless opts.all: an
 * interrupted pass of a big file would print pages of pending lines. */
#define STATUS_PRINT_PER_STATE 20

/* Print for an operator: a summary line and counts, each certificate's
 * days left ("expires in N days" highlighted within its
 * expiry_warning_days, "EXPIRED on DATE"; nothing for an unknown end),
 * one line naming the objects left behind (left_objects) when there are
 * any, then the failed
 * bindings with code, message, the whole request id (operators quote it
 * to support) and attempts, then the pending ones with their next retry;
 * past STATUS_PRINT_PER_STATE of a state one line
 * "… and N more (--all)". Times are local time. 0 or a negative errno
 * (-EIO when out fails). */
int status_print(const struct status *st, FILE *out,
                 const struct status_print_opts *opts);

/* Bindings by state: n[STATUS_CONVERGED], n[STATUS_PENDING], ... */
void status_count(const struct status *st, uint64_t n[STATUS_FAILED + 1]);

/* The bindings of a status looked up by (certificate_id, instance_id,
 * domain): what an earlier pass knew about a binding. Points into the
 * status, which must outlive it. */
struct status_index {
  const struct status_binding **sorted;
  size_t n;
};

/* 0 or -ENOMEM; status_index_free it either way. */
int status_index_build(const struct status *st, struct status_index *ix);

/* The binding of that triple (the first one, should there be several), or
 * NULL; *pos (when not NULL) gets its position in ix->sorted. */
const struct status_binding *status_index_find(const struct status_index *ix,
                                               const char *certificate_id,
                                               const char *instance_id,
                                               const char *domain, size_t *pos);

void status_index_free(struct status_index *ix);

/* A deep copy of src into *dst (its names too: dst->names_borrowed is
 * false): 0, or -ENOMEM with nothing allocated. */
int status_binding_copy(struct status_binding *dst,
                        const struct status_binding *src);

/* Append a deep copy of *sv to b->served: 0, or -ENOMEM with b as it
 * was. */
int status_binding_add_served(struct status_binding *b,
                              const struct status_served *sv);

/* Free b's served entries (a new verification replaces them). */
void status_binding_clear_served(struct status_binding *b);

/* "converged" | "pending" | "failed"; parse: 0 or -EINVAL. */
const char *status_state_name(enum status_state s);
int status_state_parse(const char *s, enum status_state *out);

#endif
