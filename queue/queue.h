/* SPDX-License-Identifier: MIT */
/*
 * queue: pure scheduling logic for APIG requests.
 *
 * No I/O, no libuv, no curl, no wall clock: every call that depends on time
 * takes now_ms, a monotonic millisecond clock supplied by the caller (the
 * injectable clock of the tests). Randomness (backoff jitter) comes from a
 * xoshiro256** generator seeded at queue_init(), so runs are reproducible.
 *
 * Jobs are intrusive: the caller owns each struct queue_job, fills the
 * public fields and pushes it; the queue links it internally (no
 * allocation per job, except amortised growth of the delay heap). A job is
 * in one of: not queued, queued (delayed / waiting / ready), in flight.
 *
 * What queue_pop() releases, per account:
 *  - Token bucket: `rps` tokens per second, at most `burst` - 1 stored
 *    (`burst` when it is 1; the bucket starts full): one is held back for
 *    the time between a release and the request's arrival, which differs
 *    from request to request (new connections), so that a server counting
 *    arrivals with the same bucket never sees more than it allows. One
 *    token per released job.
 *  - At most `max_in_flight` jobs in flight (0 = no limit).
 *  - Account gate: until one job of the account completes with
 *    QUEUE_SUCCESS, at most one job of it is in flight (the first request
 *    goes alone; after a plain failure the next single job may go).
 *    QUEUE_AUTH_FAILED, or queue_block_account(), blocks the account:
 *    nothing more of it is released and pushes are refused (-EPERM) until
 *    queue_unblock_account(), which also closes the gate again.
 *  - Adaptive rate: QUEUE_THROTTLED halves the account's current rate
 *    (floor QUEUE_RATE_FLOOR) and empties its bucket, at most once per
 *    release window (a throttle of a job released before the last cut does
 *    not cut again). Each QUEUE_SUCCESS then adds back
 *    QUEUE_RATE_RECOVERY x rps per second elapsed since the last cut or
 *    the last recovery step, up to the configured rps.
 *  - Writes: one write in flight per certificate, writes of a certificate
 *    released in push order (FIFO; a delayed head also holds back later
 *    writes of its certificate). Reads are not serialised per certificate.
 *  - Writes before reads when both are runnable for an account; accounts
 *    are served round-robin.
 *  - not_before_ms delays a job (backoff, confirmation polling).
 *  - Pause: queue_pause_account() (a Retry-After) holds every job of the
 *    account, reads and writes, until the pause has passed; jobs already
 *    in flight are not affected.
 *
 * Cost: push, pop, complete and remove are O(log n) in queued jobs plus
 * O(accounts) for the round-robin scan; nothing scans certificates.
 */
#ifndef CERTBIND_QUEUE_H
#define CERTBIND_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_RATE_FLOOR 0.1    /* req/s: an adaptive cut stops here */
#define QUEUE_RATE_RECOVERY 0.1 /* of rps, per second of success */
#define QUEUE_RETRY_RATIO 0.2   /* retry tokens earned per first attempt */
#define QUEUE_RETRY_MIN 10.0    /* retry tokens an account starts with */
#define QUEUE_RETRY_MAX 100.0   /* retry tokens stored at most */
#define QUEUE_RETRY_AFTER_MAX_MS 300000u /* Retry-After is clamped to 300 s */

enum queue_kind {
  QUEUE_WRITE, /* attach/detach: one in flight per certificate */
  QUEUE_READ,  /* list/confirm */
};

enum queue_outcome {
  QUEUE_SUCCESS,     /* opens the account gate, lets the rate recover */
  QUEUE_FAILURE,     /* anything else that is not below */
  QUEUE_THROTTLED,   /* 429 / APIG.0308 / APIG.9008: halves the rate */
  QUEUE_AUTH_FAILED, /* signature/permission: blocks the account */
};

struct queue_link {
  struct queue_job *prev;
  struct queue_job *next;
};

struct queue_job {
  /* Public: set before queue_push(), read-only while queued/in flight. */
  enum queue_kind kind;
  uint32_t account;       /* < naccounts */
  uint32_t cert;          /* < ncerts for writes; free for reads */
  uint64_t not_before_ms; /* not released before this time (0 = now) */
  uint32_t attempt;       /* 0 = first attempt (earns retry budget) */
  void *data;             /* the caller's */
  /* Internal: owned by the queue. */
  struct {
    struct queue_link cert;  /* certificate's write FIFO */
    struct queue_link ready; /* account's ready list */
    struct queue_link acct;  /* account's queued jobs (for draining) */
    uint64_t seq;            /* push order */
    uint64_t released_ms;
    uint32_t heap_idx;
    uint8_t state;
  } in;
};

struct queue_account_limits {
  double rps;             /* > 0 */
  uint32_t burst;         /* tokens stored at most (0 is taken as 1) */
  uint32_t max_in_flight; /* 0 = no limit */
};

struct queue_list {
  struct queue_job *head;
  struct queue_job *tail;
};

/* Per-account and per-certificate state: internal. */
struct queue_account;
struct queue_cert;

struct queue {
  /* All internal; use the functions below. */
  struct queue_account *accounts;
  uint32_t naccounts;
  struct queue_cert *certs;
  uint32_t ncerts;
  struct queue_job **heap; /* delayed jobs, min-heap on (not_before, seq) */
  uint32_t heap_len;
  uint32_t heap_cap;
  uint32_t rr;    /* round-robin cursor */
  uint64_t seq;   /* next push sequence number */
  size_t pending; /* queued + in flight */
  uint64_t rng[4];
};

/* limits[naccounts]; ncerts bounds certificate indexes of writes.
 * -EINVAL on a bad limit (rps <= 0 or not finite), -ENOMEM. */
int queue_init(struct queue *q, uint32_t naccounts,
               const struct queue_account_limits *limits, uint32_t ncerts,
               uint64_t seed, uint64_t now_ms);

/* Free the queue's own memory; jobs are the caller's (not touched). */
void queue_free(struct queue *q);

/* Queue a job. -EINVAL for a bad account/cert/kind, -EBUSY when the job is
 * already queued or in flight, -EPERM when its account is blocked,
 * -ENOMEM. */
int queue_push(struct queue *q, struct queue_job *job);

/* Release one runnable job (now in flight, one token taken), or NULL with
 * *wake_ms (if wake_ms is not NULL) = the earliest time something may
 * become runnable without a completion: UINT64_MAX when nothing is queued,
 * or all that is queued waits for completions or blocked accounts. */
struct queue_job *queue_pop(struct queue *q, uint64_t now_ms,
                            uint64_t *wake_ms);

/* An in-flight job finished (see enum queue_outcome). The job is no longer
 * the queue's: the caller may free it or push it again (e.g. with a larger
 * attempt and not_before_ms). */
void queue_complete(struct queue *q, struct queue_job *job,
                    enum queue_outcome outcome, uint64_t now_ms);

/* Take a queued (not in-flight) job out. -EINVAL if it is not queued. */
int queue_remove(struct queue *q, struct queue_job *job);

/* Remove and return one queued job of the account (e.g. to fail the jobs
 * of a blocked account, or on shutdown), or NULL when none is left. */
struct queue_job *queue_drain_account(struct queue *q, uint32_t account);

/* Retry-After (docs/apig-api.md §7): APIG throttles per user, so a Retry-After holds
 * back the whole account, not only the request that got it. Nothing of
 * the account is released before now_ms + pause_ms (pause_ms clamped to
 * QUEUE_RETRY_AFTER_MAX_MS); a pause that would end earlier than the one
 * in force does not shorten it. */
void queue_pause_account(struct queue *q, uint32_t account, uint64_t now_ms,
                         uint64_t pause_ms);
/* When the account's pause ends (0 or a past time: not paused). */
uint64_t queue_account_paused_until(const struct queue *q, uint32_t account);

/* The server said the account may send at most rps requests a second (a
 * throttling answer that names its limit): the account's configured rate
 * is lowered to it (never raised), and its current rate too if above. */
void queue_limit_rate(struct queue *q, uint32_t account, double rps,
                      uint64_t now_ms);

void queue_block_account(struct queue *q, uint32_t account);
void queue_unblock_account(struct queue *q, uint32_t account);
bool queue_account_blocked(const struct queue *q, uint32_t account);

/* True once a job of the account has succeeded (the gate is open). */
bool queue_account_open(const struct queue *q, uint32_t account);

/*
 * Retry delay, "full jitter between base and cap" (docs/cli.md, `retry`):
 *   max' = max(max_ms, base_ms)
 *   cap  = min(max', base_ms * 2^attempt)     attempt = 1 for the 1st retry
 *   d    = uniform integer in [base_ms, cap]
 *   d    = max(d, min(retry_after_ms, QUEUE_RETRY_AFTER_MAX_MS))
 * Retry-After (0 = none) is a floor and may exceed max_ms, up to 300 s.
 */
uint64_t queue_backoff_ms(struct queue *q, uint32_t attempt, uint32_t base_ms,
                          uint32_t max_ms, uint64_t retry_after_ms);

/*
 * Retry budget (like gRPC retry throttling / Envoy retry budgets): each
 * account holds retry tokens, QUEUE_RETRY_MIN at start, +QUEUE_RETRY_RATIO
 * per released first attempt (attempt == 0), at most QUEUE_RETRY_MAX.
 * queue_retry_allowed() takes one token and says true, or says false when
 * fewer than one is left: then the engine fails the job or defers it (and
 * asks again later). Over any period, retries allowed <= QUEUE_RETRY_MIN
 * + QUEUE_RETRY_RATIO x first attempts released, so a 100 % failure storm
 * adds at most ~20 % traffic.
 */
bool queue_retry_allowed(struct queue *q, uint32_t account);
double queue_retry_budget(const struct queue *q, uint32_t account);

size_t queue_pending(const struct queue *q); /* queued + in flight */
uint32_t queue_account_in_flight(const struct queue *q, uint32_t account);
double queue_account_rate(const struct queue *q, uint32_t account);

#endif
