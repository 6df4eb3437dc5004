/* SPDX-License-Identifier: MIT */
/*
 * pass_int: the inside of a pass (pass.h), shared by the engine's pass*.c
 * files and by nothing else.
 *
 * Who does what:
 *   pass.c          lifecycle (new, start, stop, free), the clock, the
 *                   pump (queue -> requests), and pass_transition(), the
 *                   one place the phase changes
 *   pass_call.c     one request: build, sign, submit, turn the answer into
 *                   one struct outcome; retries; accounts that fail (auth,
 *                   unreachable, Retry-After)
 *   pass_job.c      a job's life: made, queued, and its one end (job_end)
 *   pass_read.c     list reads: pages (sequential or fanned out), their
 *                   accounting (read_hold/read_release), parsing off the
 *                   loop, the live-state bound
 *   pass_write.c    binding results (items), write batches, split of a
 *                   refused batch, re-read after an unknown outcome,
 *                   confirmation reads
 *   pass_confirm.c  when a confirmation read goes: each account's learnt
 *                   write-to-visible delay
 *   pass_token.c    IAM tokens of password accounts
 *   pass_owner.c    ownership in the ledger: written ahead, settled at the
 *                   end, stale entries
 *   pass_rollout.c  the plan's guards, waves and the soak between them
 *   pass_result.c   counts, status conversion, summary, outcome names, the
 *                   memory for the next pass
 *   pass_cert.c     the APIG objects of certificates given as files: find,
 *                   adopt by proof, create or update (before their reads),
 *                   the previous objects read beside them, retire, the
 *                   Show of objects left behind (gone: not listed)
 */
#ifndef CERTBIND_PASS_INT_H
#define CERTBIND_PASS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "apig.h"
#include "auth.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "memo.h"
#include "pass.h"
#include "plan.h"
#include "queue.h"

/* The phases of a pass; pass_transition() (pass.c) is the one place
 * that changes them. */
enum phase {
  PHASE_READ,   /* list every certificate, all pages; plan when done */
  PHASE_WRITE,  /* one wave: batched writes, each certificate's followed by
                   confirmation reads */
  PHASE_SOAK,   /* between two waves: wait rollout.soak_s */
  PHASE_RETIRE, /* after the last wave: delete unbound objects certbind
                   created for certificates from files (pass_cert.c) */
  PHASE_DONE,   /* over: results final, handles closing */
};

/* Why the phase may change (pass_transition). */
enum pass_event {
  PASS_EV_IDLE,   /* nothing queued, in flight or on the thread pool */
  PASS_EV_STOP,   /* pass_stop(): idle, or soaking */
  PASS_EV_SOAKED, /* the soak's timer fired */
};

enum item_state {
  ITEM_PENDING,   /* not yet written */
  ITEM_WRITTEN,   /* written, waiting to show in a re-read */
  ITEM_CONVERGED, /* shows in the live state */
  ITEM_FAILED,
};

/* One per plan item, so kept small (a pass of 100,000 bindings has as
 * many): the strings are shared, in the pass's string store (pass_keep),
 * since a batch's bindings have one request ID and one error. NULL: none
 * (the items start zeroed); item_str() gives "" for it. */
struct pass_item {
  uint8_t state;
  bool permanent; /* failed with a 4xx: not retried by the daemon */
  bool intent;    /* sync attach: its intent is in the ledger (ahead) */
  bool disowned;  /* sync detach: its ownership was dropped ahead */
  uint32_t attempts;
  int64_t owned_at; /* disowned: the entry's attached_at, to restore it */
  const struct memo *held; /* not written: an earlier failure holds it */
  uint64_t written_ms;     /* loop ms of the successful write */
  const char *error_code;
  const char *error_msg;
  const char *request_id; /* the failure's, or the successful write's */
};

/* Strings a pass keeps until it is freed (pass_keep): chunks of at least
 * PASS_KEEP_CHUNK bytes, each string copied once. */
struct keep_chunk;
struct pass_keep {
  struct keep_chunk *head;
  /* the strings kept last: kept again, they are shared (an item's code,
   * message and request ID, then the next item's, the same) */
  const char *recent[4];
  unsigned next;
};
#define PASS_KEEP_CHUNK ((size_t)16 << 10)

/* LIST_SHOW is not a list: the one Show (GET .../certificates/{id}) of an
 * id certificate per pass, a read job like the lists (pass_read.c). */
enum list_purpose { LIST_INITIAL, LIST_CONFIRM, LIST_VERIFY, LIST_SHOW };

/* A certificate's list longer than this many pages (500 bindings each) is
 * a server that never ends, not a live state. */
#define LIST_MAX_PAGES 1000

/*
 * What a server's answers can make a pass hold in memory is bounded (at
 * most 128 MB above what the file needs), whatever they say:
 *  - bodies being received: each list page at most APIG_MAX_LIST_BODY
 *    (1 MiB), each other answer at most APIG_MAX_ERROR_BODY (64 KiB), and
 *    all of them together at most PASS_BUFFER_BASE + PASS_BUFFER_PER_REQUEST
 *    per request the file lets be in flight (the sum of max_in_flight: a
 *    typical full page each, what legitimate answers need); a transfer past
 *    that fails like an oversized body and is retried (http max_buffered);
 *  - pages waiting for the thread pool: PARSE_OFF_LOOP_MAX_BYTES (16 MiB);
 *  - parsed entries (at most APIG_LIST_LIMIT a page, the parser stops at
 *    the first past it): PASS_LIVE_PER_BINDING per binding of the file (its
 *    live bindings, the API's duplicate per inbound port, a confirmation
 *    read's copy) plus PASS_LIVE_EXTRA, across every read of the pass;
 *    past that the certificate whose page crossed it fails. An entry is at
 *    most ~400 bytes of heap (a 253-character domain), ~120 typically.
 * Beyond the file's share: 32 + 16 + 1 (a page parsed in place) + 40 MB of
 * entries at the worst = 89 MB.
 */
#define PASS_BUFFER_BASE ((size_t)32 << 20)
#define PASS_BUFFER_PER_REQUEST ((size_t)256 << 10)
#define PASS_LIVE_PER_BINDING 4
#define PASS_LIVE_EXTRA 100000

/* The jobs that start each certificate of an account (its first read and
 * Show in the read phase, its writes of the wave in a write phase) are
 * made as the account sends them (pass.c pass_feed), with at most this
 * many of them queued, or two per request the account may have in flight
 * when that is more; not all at the start of the phase: 10,000
 * certificates queued 20,000 reads (5.9 MB) and then 10,000 writes behind
 * the same 256 connections. An account's certificates start in the
 * file's order either way; one of up to 256 certificates has all of its
 * jobs queued at once, as before. */
#define PASS_FEED_WINDOW 512u

/* JOB_CERT: a call on a certificate object (pass_cert.c). */
enum job_type { JOB_LIST, JOB_WRITE, JOB_CERT };

/* The steps of a JOB_CERT job (pass_cert.c). */
enum cert_step {
  CSTEP_FIND,        /* list objects by the leaf's common name */
  CSTEP_PROVE,       /* show a candidate: serial, not_after, SANs */
  CSTEP_CREATE,      /* POST the content */
  CSTEP_FIND_NAME,   /* a create of unknown outcome: list by its name */
  CSTEP_UPDATE,      /* update: in_place: PUT into the previous object */
  CSTEP_RETIRE_READ, /* an old object's bindings, just before its delete */
  CSTEP_DELETE,
  CSTEP_LEFT_SHOW, /* show an object left behind: still at APIG? (a job of
                      an account, no certificate: cert is PASS_NO_CERT) */
};

/* The cert of a job that belongs to an account, not to a certificate of
 * the pass (job_new_account). */
#define PASS_NO_CERT UINT32_MAX

/* How a job that entered the pass leaves it (job_end). */
enum job_end {
  JOB_DONE,    /* its result was used */
  JOB_FAILED,  /* for good: its bindings or certificate fail with why */
  JOB_DROPPED, /* stopping, or its account unreachable: nothing learnt */
};

struct job {
  struct queue_job q;
  struct pass *pass;
  enum job_type type;
  uint32_t cert;
  bool reauthed;      /* renewed the token once for this job */
  bool fed;           /* made by pass_feed, not sent yet */
  uint32_t token_gen; /* password: the account's token it was last sent with */
  /* list */
  enum list_purpose purpose;
  long offset;
  uint32_t pages; /* pages read so far (cut off at LIST_MAX_PAGES) */
  struct apig_bindings acc;
  size_t charged;     /* entries of acc counted in pass.live_entries */
  long long total0;   /* parent: its first page's total, -1 none (yet) */
  bool restart;       /* parent: a page showed the list changed meanwhile */
  struct job *verify; /* LIST_VERIFY: the write whose outcome is unknown */
  /* Pages after the first are read in parallel once its total is known:
   * each is a child job; the parent (the first page's job) collects them.
   * pages_left counts the parent's pieces still out: its own reading (one,
   * from job_new until its last page) and each child that entered the
   * pass. Only read_hold() and read_release() change it; the read ends
   * (read_resolve) when it reaches 0. */
  struct job *parent;
  uint32_t pages_left;
  bool page_failed;  /* parent: a piece failed for good (page_err) */
  bool page_dropped; /* parent: a piece was dropped (stopping) */
  /* A confirmation read starts its pages all at once, as many as the
   * bindings the certificate should have after its writes, before its
   * first page says how many there are: spec says those speculative
   * children are out, spec_end is the offset where they end. */
  bool spec;
  long spec_end;
  struct apig_error *page_err; /* job_page_err(): a pointer, since the
                                  10,000 jobs of a pass rarely have one */
  /* write */
  enum apig_op op;
  size_t *items; /* plan item indexes, grouped by domain */
  size_t nitems;
  uint64_t unknown_ms;   /* loop ms its outcome last became unknown */
  uint32_t verify_round; /* re-reads since then */
  /* JOB_CERT */
  enum cert_step step;
  uint32_t retire; /* CSTEP_RETIRE_READ, CSTEP_DELETE: index in p->prev;
                      CSTEP_LEFT_SHOW: index in p->left_checks */
};

/* A certificate given as files (indexed like the file's certificates;
 * unused for `id` ones). */
struct pass_mcert {
  char object_id[65]; /* its object, once known */
  char name[64];      /* the name certbind gives the object it creates */
  bool resolved;      /* object_id known (ledger, proof, create, update) */
  bool upload;        /* no object yet: created (or, dry run, would be) */
  bool created_now;   /* created by this pass */
  char update_id[65]; /* update: in_place: the object PUT into, or "" */
  char **cands;       /* FIND: ids of the objects of the same common name */
  size_t ncands, next_cand;
  uint32_t creates; /* creates sent (an unknown outcome is looked up) */
};

/* An older object of a certificate given as files: read like a
 * certificate of the file (index cert, after the file's own), so that
 * its bindings move to the current object, then retired. */
struct pass_prev {
  uint32_t cert;  /* index into p->cfg->certificates (the pass's view) */
  uint32_t owner; /* the file's certificate it was made for */
  char object_id[65];
  bool created;     /* certbind created it: it may be deleted */
  bool delete_plan; /* the plan shows it deleted */
  bool deleted;
};

/* An object left behind (plan_left_objects) whose record names an account
 * of the file: shown once in the read phase (CSTEP_LEFT_SHOW). */
struct pass_left_check {
  char object_id[65];
  char certificate[256]; /* the file's former certificate name (logs) */
  uint32_t account;      /* index into the file's accounts */
  bool gone;             /* the Show answered 404: no longer at APIG */
};

struct pass_cert {
  uint32_t writes_left; /* write jobs not finished */
  uint32_t feed_after;  /* the next certificate of its account (file
                           order, pass_feed), UINT32_MAX: none */
  bool confirm_queued;  /* a confirmation read is queued or running */
  uint32_t confirm_round;
  bool read_failed;
  bool unreachable; /* read_failed: its account was unreachable (pending) */
  /* read_failed: why (pass_cert_read_failed; never NULL then). A pointer,
   * not the struct: 10,000 certificates would carry 6.5 MB of it. */
  const struct apig_error *read_error;
  size_t item_lo, item_hi; /* the certificate's plan items */
  bool show_cached;        /* its Show is an earlier pass's (pass_opts.shows) */
  /* pass_confirm.c */
  struct job *confirm_job;  /* its confirmation read, queued, not sent */
  uint64_t confirm_sent_ms; /* when its last confirmation read went */
  bool confirm_probe;       /* that read is its account's probe */
  bool confirm_missed;      /* a confirmation read did not show its writes */
  bool confirm_held;        /* it waits for its account's probe */
};

struct pass_account {
  struct auth_token token; /* password method: value NULL until fetched */
  bool token_fetching;
  uint32_t token_gen; /* +1 per token obtained */
  uint32_t token_attempt;
  uint64_t token_next_ms;
  bool blocked;
  double retry_credit[3]; /* by enum job_type: retries paid by successes */
  struct job **parked;    /* popped while the token was missing */
  size_t nparked, capparked;
  uint32_t first_failures; /* transport failures in a row, gate closed */
  /* pass.c pass_feed: its first certificate, the next one to start in
   * this phase (UINT32_MAX: all started), and the jobs it made that are
   * not sent yet */
  uint32_t feed_first;
  uint32_t feed_next;
  uint32_t fed_out;
  /* The write-to-visible delay (pass_confirm.c), in ms after a write's
   * answer: a read vis_lo after did not show it; one vis_hi after showed
   * it (when vis_known). vis_probing: a confirmation below vis_hi is out.
   * vis_probe_read: the probe was read, and what it saw is learnt next.
   * vis_recheck: the interval is a day old; its vis_lo is forgotten when
   * the first confirmation is timed (a pass with none changes nothing). */
  uint64_t vis_lo, vis_hi;
  bool vis_known;
  bool vis_probing;
  bool vis_probe_read;
  bool vis_recheck;
  struct apig_endpoint endpoint; /* the account's, parsed once per pass */
  /* aksk: its secret key made ready once per pass (NULL: signed with the
   * secret key each time) */
  struct sign_key *sign_key;
};

struct call {
  struct http_request rq;
  struct apig_url url;
  char *body;
  size_t body_len;
  struct pass *p;
  struct job *job;  /* NULL for a token request */
  uint32_t account; /* token requests */
  enum apig_op op;
};

struct outcome {
  enum apig_class cls;
  bool unknown; /* a write that may have been applied */
  long status;
  struct apig_error err;
  uint64_t retry_after_ms;
};

/* Each success of an account pays for one retry of the same kind (a read
 * for a read, a write for a write; stored up to QUEUE_RETRY_MAX), on top
 * of the queue's budget of QUEUE_RETRY_RATIO per first attempt: a storm
 * where nothing of a kind succeeds ends after about QUEUE_RETRY_MIN + 20 %
 * extra requests instead of max_attempts x (and reads that work do not pay
 * for resending writes that all fail), while a partial storm (under ~50 %
 * failures) keeps retrying to convergence. The re-read after a write of
 * unknown outcome is that write's retry. Each kind starts with a few
 * credits of its own, so that the writes are not left without any because
 * the reads spent the queue's budget. Throttling (429) is not paid for: the
 * account's rate is already cut and Retry-After waited, and max_attempts
 * still bounds it; failing a binding for a burst of 429s would be wrong. */
#define PASS_RETRY_CREDIT_PER_SUCCESS 1.0
#define PASS_RETRY_CREDIT_START 5.0

struct pass {
  /* Results: pass_result() hands out res; its pointers point below. */
  struct pass_result res;
  char message[256]; /* res.message */
  struct plan plan;
  struct live_state live;

  /* What it works with (pass_deps). */
  uv_loop_t *loop;
  struct http *http;
  const struct config *cfg;
  struct ledger *ledger;
  struct metrics *metrics;
  const struct log *log;
  const struct pass_clock *clock; /* NULL: real time */
  struct pass_opts opts;

  struct queue queue;
  uv_timer_t timer;
  uv_timer_t soak;
  uint64_t soak_until_ns; /* when the rollout soak ends (pass_soak_now_ns) */
  struct pass_account *accounts;
  struct pass_cert *certs;
  /* entries of certs: the file's certificates when the pass started (its
   * caller may change the config's struct before pass_free, as import
   * does) */
  size_t ncerts;
  /* Certificates given as files (pass_cert.c): cfg then points to view,
   * the file's model with each one's object id and their previous
   * objects as certificates after the file's own. */
  struct config view;
  struct pass_mcert *mcerts; /* NULL: the file has none */
  struct pass_prev *prev;
  size_t nprev;
  size_t nfile_certs; /* the file's own certificates */
  /* Objects left behind shown in this pass (pass_cert.c) */
  struct pass_left_check *left_checks;
  size_t nleft_checks;
  struct pass_item *items;
  struct pass_keep keep; /* the items' strings */
  /* config binding -> plan item, UINT32_MAX: none (32 bits: 100,000
   * bindings, 0.4 MB less; a plan never has 2^32 items) */
  uint32_t *binding_item;
  enum phase phase;
  size_t reads_left;
  bool feeding; /* job_new makes jobs for pass_feed (fed) */
  size_t in_flight;
  size_t pool_work;   /* jobs out on libuv's thread pool: page parses, the
                         wanted bindings' sort */
  size_t parse_bytes; /* bodies of the pages waiting for the pool */

  /* List entries held (the live state and the reads under way), and the
   * most the file explains (more is the server's doing: refused). */
  size_t live_entries;
  size_t live_entries_max;

  /* the gateways' instance IDs, sorted, that live bindings share */
  char **instance_ids;
  size_t ninstance_ids;
  /* pass_opts.shows: the file's bindings grouped by certificate (the
   * domains a kept Show must cover): certificate c's are
   * show_bindings[show_binding_lo[c] .. show_binding_lo[c + 1]) */
  uint32_t *show_binding_lo;
  uint32_t *show_bindings;
  struct plan_wanted wanted; /* sorted while the reads are out (by_cert
                                NULL: not yet, or it failed) */
  size_t wave, nwaves;
  size_t *wave_end; /* plan item index where each wave ends */
  bool stopping;
  bool ledger_dirty;
  bool started;      /* pass_start() succeeded: its handles exist */
  bool free_pending; /* pass_free() waits for the handles to close */
  int open_handles;
  /* the live progress line (pass.c): when it was last drawn, and when
   * the plan was made (its rate counts from there, not from the reads) */
  uint64_t progress_ms;
  uint64_t progress_from_ms;
  bool progress_planned;
  void (*done)(struct pass *p, void *arg);
  void *done_arg;
};

/* ---- pass.c ------------------------------------------------------------ */

/* The clock (pass.h: struct pass_clock). Monotonic ms: the queue's time,
 * request and confirmation deadlines. */
uint64_t pass_now_ms(const struct pass *p);
/* pass_now_ms after bringing the loop's time up to date (not cached). */
uint64_t pass_fresh_ms(struct pass *p);
/* Wall-clock ms since the epoch. */
int64_t pass_unix_ms(const struct pass *p);
/* Wall-clock s: signing time, token expiry, ledger and memo times. */
time_t pass_unix_s(const struct pass *p);
/* The real ms a timer waits for delay_ms of the pass's clock. */
uint64_t pass_timer_ms(const struct pass *p, uint64_t delay_ms);
/* Monotonic ns for the soak: uv_hrtime() (the current time, not the
 * loop's cached one), or an injected clock's ms. */
uint64_t pass_soak_now_ns(const struct pass *p);

const struct config_account *pass_cert_account(const struct pass *p,
                                               uint32_t cert);
uint32_t pass_cert_account_index(const struct pass *p, uint32_t cert);
/* The endpoint of a certificate's account, parsed once per pass. */
const struct apig_endpoint *pass_cert_endpoint(const struct pass *p,
                                               uint32_t cert);
/* The log fields naming a certificate and its account. */
void pass_cert_fields(const struct pass *p, uint32_t cert,
                      struct log_fields *f);
/* The log fields of job j: its certificate's (pass_cert_fields), or, of
 * a job of an account (PASS_NO_CERT), the account and what it is about. */
void pass_job_fields(const struct pass *p, const struct job *j,
                     struct log_fields *f);
/* An error of the pass itself, not of an answer: no request ID. */
struct apig_error pass_error(const char *code, const char *msg);
/* A copy of s that lives as long as the pass, shared with the string kept
 * just before when equal; NULL for NULL, "" or out of memory. */
const char *pass_keep(struct pass *p, const char *s);
/* Certificate cert's live state could not be read, because of why. */
void pass_cert_read_failed(struct pass *p, uint32_t cert,
                           const struct apig_error *why, bool unreachable);
/* A plan item's error strings, "" when it has none. */
static inline const char *item_str(const char *s)
{
  return s ? s : "";
}
/* The pass ends with outcome o and why (logged as event). */
void pass_refuse(struct pass *p, enum pass_outcome o, const char *event,
                 const char *msg);
/* Release what the queue allows, then sleep until the next thing can go;
 * when the phase's work is over, pass_transition(). */
void pass_pump(struct pass *p);
void pass_transition(struct pass *p, enum pass_event ev);
/* Start more of account a's certificates in this phase (read: their
 * first read and Show; write: their writes of the wave): as many as keep
 * PASS_FEED_WINDOW of the jobs it made (or two per request it may have
 * in flight) queued, or, with all, every one left (before its queue is
 * drained). A certificate whose first read cannot be queued fails its
 * read; one whose writes cannot, those bindings. */
void pass_feed(struct pass *p, uint32_t a, bool all);
/* A write phase starts: each account's certificates start over. */
void pass_feed_rewind(struct pass *p);

/* ---- pass_call.c ------------------------------------------------------- */

/* Sign (when sign) and submit c, a request of job c->job (NULL: a token
 * request); takes ownership of c. < 0: not submitted (c is the caller's
 * to free). */
int call_submit(struct pass *p, struct call *c,
                const struct config_account *acct, const char *method,
                bool sign);
void call_free(struct call *c);
/* One log line of a job's request (o: its outcome, NULL none). */
__attribute__((format(printf, 8, 9))) void
call_log(struct pass *p, enum log_level lvl, const char *event,
         const struct job *j, enum apig_op op, const struct outcome *o,
         double latency, const char *fmt, ...);
/* Whether a retry of that kind is paid for (credits, the queue's budget;
 * throttling always is). */
bool call_retry_paid(struct pass *p, uint32_t account, enum job_type kind,
                     const struct outcome *o);
/* Retry a job after backoff, or give up (job_abandon) when attempts or
 * budget say so. */
void call_retry(struct pass *p, struct job *j, const struct outcome *o);
/* Auth or permission failure: no more requests for account a in this
 * pass; its queued and parked jobs are abandoned with why. */
void account_block(struct pass *p, uint32_t a, const struct apig_error *why);

/* ---- pass_job.c -------------------------------------------------------- */

struct job *job_new(struct pass *p, enum job_type type, uint32_t cert);
/* A job of account a that is about no certificate of the pass (cert
 * PASS_NO_CERT): never counted as a read or write of one. */
struct job *job_new_account(struct pass *p, enum job_type type, uint32_t a);
/* Free a job no counter knows of: it never entered the pass (job_push
 * failed or was not called), or job_end() has done its accounting. */
void job_free(struct job *j);
/* Queue j to go in delay_ms (not when stopping: -ECANCELED). */
int job_push(struct pass *p, struct job *j, uint64_t delay_ms);
/* The one way a job that entered the pass leaves it (see pass_job.c). */
void job_end(struct pass *p, struct job *j, enum job_end how,
             const struct apig_error *why);
/* A read's page error (parent job head): set (copied), and what it is
 * (an out-of-memory error when it could not be kept). */
void job_set_page_err(struct job *head, const struct apig_error *why);
struct apig_error job_page_err(const struct job *head);
/* job_end with FAILED, or DROPPED when the pass is stopping. */
void job_abandon(struct pass *p, struct job *j, const struct apig_error *why);

/* ---- pass_read.c ------------------------------------------------------- */

/* Certificate cert's start of the pass: an id certificate's Show is
 * queued (a read like its list; password accounts' parked for the token),
 * a managed one's end is known from its file (certificate.expiring).
 * 0 or -ENOMEM. */
int read_start_show(struct pass *p, uint32_t cert);
/* pass_opts.shows: index the file's bindings by certificate. 0 or
 * -ENOMEM; nothing without the cache. Freed by read_shows_free. */
int read_shows_init(struct pass *p);
void read_shows_free(struct pass *p);
/* pass_opts.shows: certificate cert's first read failed: its kept Show
 * goes (the next pass shows it). */
void read_show_forget(struct pass *p, uint32_t cert);
/* Submit the request of a list job the queue released. */
void read_dispatch(struct pass *p, struct job *j);
/* A list request answered (not aborted, account not blocked). */
void read_done(struct pass *p, struct job *j, struct http_response *rs,
               const struct outcome *o);
/* A confirmation read j, queued to go in delay: start the pages the
 * certificate should have after its writes at once. */
void read_spec_fan_out(struct pass *p, struct job *j, uint64_t delay);
/* job_end's branch for a page of a read with other pages out: true when
 * it took j (the read ends with its last piece). */
bool read_piece_end(struct pass *p, struct job *j, enum job_end how,
                    const struct apig_error *why);

/* ---- pass_write.c ------------------------------------------------------ */

void item_set_error(struct pass *p, struct pass_item *it, const char *code,
                    const char *msg, const char *request_id);
/* Binding i failed with why (unless it converged or failed already). */
void item_fail(struct pass *p, size_t i, const struct apig_error *why);
/* Binding i shows as the file wants: converged, and owned. */
void item_converge(struct pass *p, size_t i);
/* Queue the writes of plan items [lo, hi) of one certificate. */
int write_queue_cert(struct pass *p, uint32_t cert, size_t lo, size_t hi);
/* Submit a write the queue released (the one place a write is sent). */
void write_dispatch(struct pass *p, struct job *j);
/* A write answered (not aborted, account not blocked). */
void write_done(struct pass *p, struct job *j, const struct outcome *o,
                double latency);
/* Queue a confirmation read of cert's written bindings. */
void write_schedule_confirm(struct pass *p, uint32_t cert);
/* What a confirmation read (write_confirm_read) or a re-read after an
 * unknown outcome of write w (write_verify_read) found. */
void write_confirm_read(struct pass *p, uint32_t cert, struct live_cert *lc);
void write_verify_read(struct pass *p, struct job *w, struct live_cert *lc);

/* ---- pass_confirm.c ---------------------------------------------------- */

/* What one confirmation read saw of its certificate's written bindings, in
 * ms from each one's write to the read: the least at which one showed,
 * the most at which one did not. */
struct confirm_seen {
  bool shown, unshown;
  uint64_t shown_ms, unshown_ms;
};

/* The accounts' delays the daemon remembered (pass_opts.visibility). */
void confirm_init(struct pass *p);
/* ms from now until cert's next confirmation read should go (its last
 * write + the account's delay; marks the account's probe, or the
 * certificate as held until the probe has answered: confirm_held). */
uint64_t confirm_delay(struct pass *p, uint32_t cert);
/* Its confirmation read j is queued (moved when the delay changes). */
void confirm_queued(struct pass *p, struct job *j);
/* A read job j is being sent (a confirmation's first page: its time). */
void confirm_sent(struct pass *p, struct job *j);
/* cert's confirmation read ended, whatever its outcome (learns: it was
 * read, and confirm_learn follows). */
void confirm_ended(struct pass *p, uint32_t cert, bool learns);
/* What cert's confirmation read saw: the account's delay learns from it,
 * and its queued confirmations move to the new time. */
void confirm_learn(struct pass *p, uint32_t cert, const struct confirm_seen *s);

/* ---- pass_token.c ------------------------------------------------------ */

/* Ask IAM for account a's token. */
void token_fetch(struct pass *p, uint32_t a);
/* The token answer of call c. */
void token_done(struct pass *p, struct call *c, struct http_response *rs,
                const struct outcome *o);
/* j waits for its account's token. */
void token_park(struct pass *p, struct job *j);
/* A token error of j: true when j waits for a renewed token (or goes
 * again with a newer one); false: an auth failure. */
bool token_reauth(struct pass *p, struct job *j);
/* Take the daemon's cached tokens of password accounts. */
void token_take_cached(struct pass *p);
/* Whether account a's requests wait for a token (renewing one near its
 * end in the background). */
bool token_needed(struct pass *p, uint32_t a);

/* ---- pass_owner.c ------------------------------------------------------ */

/* Binding i converged: the ledger follows (attach owned, detach gone). */
void owner_converged(struct pass *p, size_t i);
/* Sync: ownership changes of items [lo, hi) go to disk before their
 * writes; a ledger that cannot be written fails them. */
void owner_write_ahead(struct pass *p, size_t lo, size_t hi);
/* The end of the pass: its intents resolved, ownership put back. */
void owner_settle(struct pass *p);
/* Owned bindings no longer live are owned no more. */
void owner_forget_stale(struct pass *p);

/* ---- pass_rollout.c ---------------------------------------------------- */

/* The reads are over: plan and check the guards. PHASE_WRITE or
 * PHASE_DONE. */
enum phase rollout_plan(struct pass *p);
/* Start the current wave: its writes are queued as pass_feed makes
 * them. */
void rollout_start_wave(struct pass *p);
/* Queue cert's writes of the current wave; when they cannot be (out of
 * memory), its bindings of the wave fail. */
void rollout_queue_cert(struct pass *p, uint32_t cert);
/* A wave is over: PHASE_SOAK (soak_until_ns set) or PHASE_DONE. */
enum phase rollout_wave_over(struct pass *p);
/* Arm the soak's timer for what is left of it. */
int rollout_arm_soak(struct pass *p);
/* The memo key (memo.h) of a plan item. */
int item_memo_key(const struct pass *p, const struct plan_item *it, char *buf,
                  size_t len);

/* ---- pass_cert.c ------------------------------------------------------ */

/* Make the pass's view of the file (p->cfg) when it has certificates
 * given as files. 0 or -ENOMEM. */
int cert_view_make(struct pass *p);
void cert_view_free(struct pass *p);
/* pass_start: certificate cert's first read, or the steps that find its
 * object before it (a JOB_CERT job). 0 or -ENOMEM. */
int cert_start_read(struct pass *p, uint32_t cert);
void cert_dispatch(struct pass *p, struct job *j);
void cert_done(struct pass *p, struct job *j, struct http_response *rs,
               const struct outcome *o);
/* job_end's part for a JOB_CERT job. */
void cert_job_end(struct pass *p, struct job *j, enum job_end how,
                  const struct apig_error *why);
/* Whether j is a JOB_CERT job that stands for its certificate's first
 * read (finding its object). */
bool cert_job_first_read(const struct job *j);
/* The first read of cert failed with why: true when that is no failure
 * (a previous object deleted by someone: forgotten, read as empty). */
bool cert_read_gone(struct pass *p, uint32_t cert,
                    const struct apig_error *why);
/* The plan is made: its certificate lines (uploads, updates, deletes). */
int cert_plan(struct pass *p);
/* The writes are over: start the retirement (true: PHASE_RETIRE). */
bool cert_retire_start(struct pass *p);
/* pass_start: one Show per object left behind whose record names an
 * account of the file (objects gone from APIG are then not listed). Never
 * fails the pass: what cannot be shown stays listed. */
void cert_left_start(struct pass *p);
void cert_left_free(struct pass *p);
/* What a left check's log lines name (its former certificate), "" for
 * any other job. */
const char *cert_left_name(const struct pass *p, const struct job *j);

/* ---- pass_result.c ----------------------------------------------------- */

/* The counts of the results (p->res.counts), from the items. */
void result_count(struct pass *p);

#endif
