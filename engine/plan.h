/* SPDX-License-Identifier: MIT */
/*
 * plan: the diff between the desired bindings (config) and the live ones
 * (what to attach, change and detach). Pure: no I/O, no clock.
 *
 * Live bindings are known per certificate named in the file. A binding on
 * a gateway the file does not name is never touched. In sync mode a live
 * binding is detached only when the ledger says certbind owns it (not a
 * mere intent), the file no longer wants it, and no other certificate of
 * the file wants the same (gateway, domain): that case is a move, done by
 * the attach alone. Intents a crash left are listed as uncertain.
 */
#ifndef CERTBIND_PLAN_H
#define CERTBIND_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apig.h"
#include "cert.h"
#include "config.h"

struct ledger;

/* The live bindings of one certificate of the file, as the list call
 * returns them (apig.h): url_domain, instance_id, verify_client. */
struct live_cert {
  struct apig_bindings b;
  bool known; /* every page was read */
  /* A certificate given by id: the object as Show answered it in this
   * pass (its SANs and not_after). shown false: unknown (not asked, or
   * the Show failed): then no SAN or expiry rule comes from it. */
  bool shown;
  struct apig_cert show;
};

/* Indexed like config.certificates. */
struct live_state {
  struct live_cert *certs;
  size_t ncerts;
  /* When the reads were made (Unix s): the expiry rule and the days left
   * count from it. 0: unknown, no expiry rule. */
  int64_t now_s;
};

enum plan_op {
  PLAN_ATTACH, /* missing */
  PLAN_CHANGE, /* bound, wrong client-verification flag */
  PLAN_DETACH, /* sync: owned, no longer wanted */
};

/* One per binding to write (100,000 at fleet scale): the fields are in
 * an order without padding, 48 bytes. */
struct plan_item {
  enum plan_op op;
  uint32_t cert;      /* index into config.certificates */
  uint32_t gateway;   /* index into config.gateways; UINT32_MAX: a gateway the
                         file no longer names (sync detach of an owned one) */
  uint32_t from_cert; /* has_from: index into config.certificates */
  const char *domain; /* points into config or live state */
  const char *instance_id; /* points into config */
  size_t binding;          /* index into config.bindings; SIZE_MAX for detach */
  bool verify_client;      /* the wanted flag (detach: the live one) */
  /* The previous value, where there is one (has_from): a change's old
   * flag (from_cert is cert), a detach's binding itself, and an attach of
   * a (gateway, domain) that another certificate of the file holds now: a
   * move (plan_item_is_move), which the attach alone does, leaving
   * from_cert. A zeroed item has none. */
  bool has_from;
  bool from_verify_client;
};

/* Why a wanted binding is a plan error instead of a write (never sent;
 * the binding fails with that reason, the others go on). */
enum plan_refusal_why {
  PLAN_REFUSE_NOT_COVERED, /* the certificate's SANs do not cover the domain
                              (a wildcard covers exactly one label) */
  PLAN_REFUSE_EXPIRED,     /* the certificate has expired: never bound */
};

/* An attach or change the rules refused: not in items, not counted
 * there. Bindings already in place are never refused (an expired
 * certificate's bindings are left alone, not detached). */
struct plan_refusal {
  size_t binding; /* index into config.bindings */
  uint32_t cert;  /* index into config.certificates */
  uint32_t gateway;
  enum plan_op op; /* what it would have been: PLAN_ATTACH or PLAN_CHANGE */
  enum plan_refusal_why why;
  /* the certificate's names and end the rule saw (point into cfg or the
   * live state, like the items) */
  const char *const *sans;
  size_t nsans;
  int64_t not_after;
};

struct plan_move {
  size_t binding;     /* index into config.bindings: the new certificate's */
  uint32_t from_cert; /* index into config.certificates: the old one */
};

/* A live binding that a crash left as an unresolved intent in the ledger:
 * certbind may have attached it, or a person may have. Never detached;
 * owned only after `certbind adopt`. */
struct plan_uncertain {
  uint32_t cert;           /* index into config.certificates */
  uint32_t gateway;        /* index into config.gateways, or UINT32_MAX */
  const char *instance_id; /* points into the live state */
  const char *domain;      /* points into the live state */
};

/* What happens to the APIG object of a certificate given as files
 * (cert_file + key): made by the pass (pass_cert.c), not by plan_make. */
enum plan_cert_op {
  PLAN_CERT_UPLOAD, /* no object holds its leaf: one is created */
  PLAN_CERT_UPDATE, /* update: in_place: the new content PUT into the old */
  PLAN_CERT_DELETE, /* an object certbind created, no longer used: deleted */
};

struct plan_cert {
  enum plan_cert_op op;
  uint32_t cert;      /* index into config.certificates (the pass's view) */
  char name[64];      /* the object's name at APIG */
  char object_id[65]; /* update, delete: the object's id; upload: "" */
};

/* An APIG certificate object certbind created (ledger.h, struct
 * ledger_cert, created) for a certificate the file no longer names: left
 * alone (never deleted: the operator may manage it by hand now) and
 * reported, since old objects fill an account's certificate quota. Not a
 * change: not in the Plan: line's counts, not in the exit code. */
struct plan_left {
  char object_id[65];    /* APIG's id of the object */
  char name[64];         /* the object's name at APIG */
  char certificate[256]; /* the file's certificate name it was made for */
  char sha256[65];       /* its leaf's SHA-256 (hex): the one datum shown */
};

struct plan {
  struct plan_item *items; /* sorted by certificate, op, domain, gateway */
  size_t nitems;
  size_t nattach, nchange, ndetach;
  size_t nmoved;        /* of the attaches, the moves (plan_item_is_move) */
  size_t unchanged;     /* wanted and already in place */
  size_t live_total;    /* live bindings on the file's gateways */
  size_t unknown_certs; /* certificates skipped: live state unknown */
  /* SHA-256 over the config file and the live state the plan was computed
   * from: a stored plan is stale when it no longer matches. "" until
   * plan_checksum() (only plans that are shown or compared need it). */
  char checksum[65];
  /* Ledger entries to forget: owned bindings no longer live on their
   * certificate (detached by someone, or moved to another certificate). */
  size_t *stale_ledger; /* indexes for ledger_at() */
  size_t nstale_ledger;
  /* Sync: owned bindings that move to another certificate of the file (a
   * rollout), sorted by binding: once the attach of config binding
   * `binding` shows, the ledger entry of the old certificate `from_cert`
   * (same instance and domain) goes. */
  struct plan_move *moves;
  size_t nmoves;
  /* Both modes: live bindings with a crash-left intent (unsorted). Their
   * intents that are no longer live are in stale_ledger. */
  struct plan_uncertain *uncertain;
  size_t nuncertain;
  /* The certificate rules (plan_refusal), sorted by binding. */
  struct plan_refusal *refused;
  size_t nrefused;
  /* Per certificate of the file (indexed like config.certificates): its
   * not_after in Unix s, 0 when unknown (plan_cert_not_after). NULL when
   * there are no certificates. */
  int64_t *not_after;
  int64_t now_s; /* live_state.now_s: what days left count from */
  /* Certificate objects created, updated or deleted (plan_cert_op). */
  struct plan_cert *cert_ops;
  size_t ncert_ops;
  size_t nupload, nupdate, ndelete_cert;
  /* Objects certbind created for certificates the file no longer names
   * (plan_left_objects), sorted by certificate, then name; a pass leaves
   * out those its Show found gone from APIG (engine/pass_cert.c). */
  struct plan_left *left;
  size_t nleft;
};

int live_state_init(struct live_state *ls, size_t ncerts);
/* Add one live binding (domain is lowercased). */
int live_cert_add(struct live_cert *lc, const char *domain,
                  const char *instance_id, bool verify_client);
/* All pages read: sort, merge duplicates (one per inbound port), mark
 * known. */
void live_cert_finish(struct live_cert *lc);
void live_cert_clear(struct live_cert *lc);
/* The entry for (instance_id, domain) of a finished certificate, or NULL. */
const struct apig_binding *live_cert_find(const struct live_cert *lc,
                                          const char *instance_id,
                                          const char *domain);
void live_state_free(struct live_state *ls);

/* Compute the diff. ledger (may be NULL): owned entries are consulted in
 * sync mode only, intents in both modes.
 * A certificate whose live state is not known (not finished: its read
 * failed) gets no items, and its ledger entries are left alone. Items
 * point into cfg and live, which must outlive the plan. */
int plan_compute(const struct config *cfg, struct live_state *live,
                 const struct ledger *ledger, struct plan *out);
struct wanted; /* private to plan.c */

/* The file's wanted bindings sorted as plan_compute needs them. They
 * depend on the file alone, so a pass sorts them while its reads are out
 * (on the thread pool), not between its last read and its first write. */
struct plan_wanted {
  struct wanted *by_cert; /* by certificate, domain, instance */
  struct wanted *by_pair; /* by instance, domain: sync mode only, or NULL */
  size_t n;
};

/* Safe on any thread (reads cfg only). 0 or -ENOMEM. */
int plan_wanted_make(const struct config *cfg, struct plan_wanted *out);
void plan_wanted_free(struct plan_wanted *w);

/* plan_compute with the sorted wanted bindings made beforehand from the
 * same cfg (NULL: sorted here). */
int plan_compute_wanted(const struct config *cfg, struct live_state *live,
                        const struct ledger *ledger,
                        const struct plan_wanted *wanted, struct plan *out);

/* Fill p->checksum for the plan plan_compute made from cfg and live.
 * 0 or -ENOMEM/-EIO. */
int plan_checksum(const struct config *cfg, const struct live_state *live,
                  struct plan *p);
void plan_free(struct plan *p);

const char *plan_op_name(enum plan_op op);
/* "upload", "update", "delete". */
const char *plan_cert_op_name(enum plan_cert_op op);

/* An attach that takes its (gateway, domain) from another certificate. */
bool plan_item_is_move(const struct plan_item *it);

/* The guards a pass that writes obeys (sync mode; upsert never detaches):
 * more detaches than policy.max_detach_count, or a larger share of the
 * live bindings on the file's gateways than policy.max_detach_ratio. One
 * function for `plan` (which says that apply would refuse) and `apply`
 * (which refuses). */
enum plan_guard {
  PLAN_GUARD_OK,
  PLAN_GUARD_DETACH_COUNT,
  PLAN_GUARD_DETACH_RATIO,
};

/* The first guard p breaks, and when one is, what it is in one line
 * without a prefix ("9 detaches exceed policy.max_detach_count 3") in
 * msg (always NUL-terminated). */
enum plan_guard plan_guards(const struct config *cfg, const struct plan *p,
                            char *msg, size_t len);

/* What a stored plan (apply --plan) assumed of one (gateway, domain) it
 * changes: which certificate of the file held it then (holder_id, NULL:
 * none) with which flag. */
struct plan_expect {
  const char *instance_id;
  const char *domain;
  const char *holder_id;
  bool verify_client;
};

/* Why a stored plan is stale, for the operator: the first (gateway,
 * domain) whose live state is not what expect[] says, or that the new
 * plan p changes while the stored one did not (it was in place then), as
 * "api.example.com on sg-edge-1 now bound to star-2026" in msg. false
 * (msg "") when no binding the plans name differs (then a binding neither
 * plan changes did). */
bool plan_explain_stale(const struct config *cfg, const struct live_state *live,
                        const struct plan *p, const struct plan_expect *expect,
                        size_t nexpect, char *msg, size_t len);

/* The objects the ledger says certbind created (created) for a
 * certificate whose name is none of cfg's certificates: *out (malloc'd,
 * NULL when none; free it) and *n, sorted by certificate, then name.
 * Matched on the name alone (older records hold no account): a name in
 * the file, of any account, keeps its objects out of the list (retiring
 * those is the pass's job). Whether an object is still at APIG is the
 * pass's question (it shows those whose record names an account). Pure: neither
 * cfg nor the ledger changes. ledger NULL: none. 0 or -ENOMEM. */
int plan_left_objects(const struct config *cfg, const struct ledger *ledger,
                      struct plan_left **out, size_t *n);

/* A digest of a list plan_left_objects made (0 for none): two lists with
 * the same objects have the same one, so a caller that keeps it sees
 * whether the list changed. */
uint64_t plan_left_digest(const struct plan_left *left, size_t n);

/* ---- certificate rules and expiry ------------------------------------- */

/* What is known of certificate c's end: a managed certificate's from its
 * file, an id certificate's from this pass's Show; 0 when unknown. */
int64_t plan_cert_not_after(const struct config *cfg,
                            const struct live_state *live, size_t c);

/* The certificate's names (SANs) when known (managed: its file; id: the
 * Show): true with *sans, *n pointing into cfg or live. */
bool plan_cert_names(const struct config *cfg, const struct live_state *live,
                     size_t c, const char *const **sans, size_t *n);

/* Whole days from now_s to not_after, rounded down (negative once it has
 * passed). Both must be known (non-zero). */
long plan_days_left(int64_t not_after, int64_t now_s);

/* The refusal of config binding b in p, or NULL. */
const struct plan_refusal *plan_refusal_of(const struct plan *p, size_t b);

/* A refusal's error code ("certificate-not-covered", "certificate-expired")
 * and its reason in one line naming the certificate and what is wrong
 * ("star-2026 covers *.example.com, not x.other.com"; "certificate
 * star-2026 expired on 2026-03-01"), in msg (always NUL-terminated). */
const char *plan_refusal_code(enum plan_refusal_why why);
void plan_refusal_describe(const struct config *cfg,
                           const struct plan_refusal *r, char *msg, size_t len);

/* "2026-03-01" (UTC) for Unix seconds t, in buf. */
void plan_format_date(int64_t t, char buf[16]);

/* Whether a change shows on a finished live certificate: an attach or
 * change is there with the wanted flag, a detach is gone. */
bool plan_item_shows(const struct live_cert *lc, const struct plan_item *it);

#endif
