/* SPDX-License-Identifier: MIT */
/*
 * queue: request scheduling (see queue.h for the rules).
 *
 * Layout: every queued job whose turn may come is in one global min-heap
 * keyed by (not_before_ms, push order) until it is due; queue_pop() moves
 * due jobs to their account's ready list (writes and reads apart), then
 * serves accounts round-robin. A write is only in the heap or a ready list
 * while it heads its certificate's FIFO and the certificate has no write
 * in flight; the others wait in the FIFO (state WAIT). The heap's capacity
 * is kept >= the number of queued jobs at push time, so the moves made by
 * queue_complete()/queue_remove() never allocate.
 */
#include "queue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum job_state {
  JOB_NONE,     /* not the queue's */
  JOB_WAIT,     /* write behind another write of its certificate */
  JOB_DELAYED,  /* in the heap */
  JOB_READY,    /* in its account's ready list */
  JOB_INFLIGHT, /* released, not completed */
};

#define NO_HEAP UINT32_MAX
#define TOKEN_EPS 1e-9 /* float slack so a computed wake time really wakes */

struct queue_account {
  struct queue_account_limits lim;
  double rate;         /* current (possibly cut) rate, req/s */
  double tokens;       /* token bucket */
  uint64_t refill_ms;  /* bucket last refilled */
  uint64_t cut_ms;     /* last adaptive cut */
  uint64_t recover_ms; /* recovery accrues from here */
  bool cut_ever;
  bool open;             /* gate: a job of this account has succeeded */
  bool blocked;          /* auth failure: release nothing */
  uint64_t paused_until; /* Retry-After: release nothing before this */
  double retry_tokens;
  uint32_t in_flight;
  struct queue_list ready_w; /* due writes, FIFO */
  struct queue_list ready_r; /* due reads, FIFO */
  struct queue_list queued;  /* every queued job, for draining */
};

struct queue_cert {
  struct queue_list writes; /* queued writes in push order */
  bool busy;                /* a write is in flight */
};

enum link_kind { LINK_CERT, LINK_READY, LINK_ACCT };

static struct queue_link *link_of(struct queue_job *j, enum link_kind k)
{
  switch (k) {
  case LINK_CERT:
    return &j->in.cert;
  case LINK_READY:
    return &j->in.ready;
  default:
    return &j->in.acct;
  }
}

static void list_append(struct queue_list *l, struct queue_job *j,
                        enum link_kind k)
{
  struct queue_link *ln = link_of(j, k);
  ln->prev = l->tail;
  ln->next = NULL;
  if (l->tail)
    link_of(l->tail, k)->next = j;
  else
    l->head = j;
  l->tail = j;
}

static void list_remove(struct queue_list *l, struct queue_job *j,
                        enum link_kind k)
{
  struct queue_link *ln = link_of(j, k);
  if (ln->prev)
    link_of(ln->prev, k)->next = ln->next;
  else
    l->head = ln->next;
  if (ln->next)
    link_of(ln->next, k)->prev = ln->prev;
  else
    l->tail = ln->prev;
  ln->prev = ln->next = NULL;
}

/* ---- delay heap ---- */

static bool heap_less(const struct queue_job *a, const struct queue_job *b)
{
  if (a->not_before_ms != b->not_before_ms)
    return a->not_before_ms < b->not_before_ms;
  return a->in.seq < b->in.seq;
}

static void heap_set(struct queue *q, uint32_t i, struct queue_job *j)
{
  q->heap[i] = j;
  j->in.heap_idx = i;
}

static void heap_up(struct queue *q, uint32_t i)
{
  struct queue_job *j = q->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (!heap_less(j, q->heap[parent]))
      break;
    heap_set(q, i, q->heap[parent]);
    i = parent;
  }
  heap_set(q, i, j);
}

static void heap_down(struct queue *q, uint32_t i)
{
  struct queue_job *j = q->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= q->heap_len)
      break;
    if (c + 1 < q->heap_len && heap_less(q->heap[c + 1], q->heap[c]))
      c++;
    if (!heap_less(q->heap[c], j))
      break;
    heap_set(q, i, q->heap[c]);
    i = c;
  }
  heap_set(q, i, j);
}

static int heap_reserve(struct queue *q, size_t need)
{
  if (need <= q->heap_cap)
    return 0;
  if (need > UINT32_MAX / 2)
    return -ENOMEM;
  uint32_t cap = q->heap_cap ? q->heap_cap : 64;
  while (cap < need)
    cap *= 2;
  struct queue_job **h = realloc(q->heap, cap * sizeof(*h));
  if (!h)
    return -ENOMEM;
  q->heap = h;
  q->heap_cap = cap;
  return 0;
}

/* Capacity was reserved at push time: cannot fail. */
static void heap_insert(struct queue *q, struct queue_job *j)
{
  j->in.state = JOB_DELAYED;
  heap_set(q, q->heap_len++, j);
  heap_up(q, j->in.heap_idx);
}

static void heap_delete(struct queue *q, struct queue_job *j)
{
  uint32_t i = j->in.heap_idx;
  struct queue_job *last = q->heap[--q->heap_len];
  j->in.heap_idx = NO_HEAP;
  if (i == q->heap_len)
    return;
  heap_set(q, i, last);
  heap_up(q, i);
  heap_down(q, last->in.heap_idx);
}

/* ---- xoshiro256** seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [lo, hi] without modulo bias (rejection sampling). */
static uint64_t rng_range(uint64_t s[4], uint64_t lo, uint64_t hi)
{
  uint64_t span = hi - lo + 1;
  if (span == 0) /* the full 64-bit range */
    return rng_next(s);
  uint64_t threshold = -span % span;
  uint64_t r;
  do
    r = rng_next(s);
  while (r < threshold);
  return lo + r % span;
}

/* ---- accounts ---- */

/* The tokens the bucket stores at most: burst, less one held back when
 * the burst allows. The server's bucket counts a request when it arrives,
 * the queue when it releases it, and a request that opens a connection
 * arrives tens of ms later than one on a reused connection: released
 * exactly at the server's rate, such a pair reaches a server with the
 * same bucket closer together than its rate allows (a 429 and Retry-After
 * for the whole account). One token in hand absorbs up to 1/rps of that
 * skew; the pace (rps) is the same. */
static double capacity(const struct queue_account_limits *l)
{
  return l->burst >= 2 ? (double)l->burst - 1 : 1;
}

static void refill(struct queue_account *a, uint64_t now)
{
  if (now <= a->refill_ms)
    return;
  double burst = capacity(&a->lim);
  a->tokens += a->rate * (double)(now - a->refill_ms) / 1000.0;
  if (a->tokens > burst)
    a->tokens = burst;
  a->refill_ms = now;
}

static bool has_ready(const struct queue_account *a)
{
  return a->ready_w.head || a->ready_r.head;
}

/* May the account release a job now, tokens and pause aside? */
static bool may_release(const struct queue_account *a)
{
  if (a->blocked || !has_ready(a))
    return false;
  if (!a->open && a->in_flight > 0)
    return false; /* the gate: the first request goes alone */
  return a->lim.max_in_flight == 0 || a->in_flight < a->lim.max_in_flight;
}

/* When the bucket will hold one token again. */
static uint64_t token_time(const struct queue_account *a, uint64_t now)
{
  double need = 1.0 - a->tokens;
  if (need <= TOKEN_EPS)
    return now;
  double ms = ceil(need * 1000.0 / a->rate);
  uint64_t t = a->refill_ms + (uint64_t)ms;
  return t > now ? t : now + 1;
}

static double rate_floor(const struct queue_account *a)
{
  return a->lim.rps < QUEUE_RATE_FLOOR ? a->lim.rps : QUEUE_RATE_FLOOR;
}

static void rate_cut(struct queue_account *a, const struct queue_job *j,
                     uint64_t now)
{
  /* Jobs released before the last cut were sent at the old rate: their
   * throttles are old news and must not cut again. */
  if (a->cut_ever && j->in.released_ms < a->cut_ms)
    return;
  refill(a, now);
  a->rate /= 2;
  if (a->rate < rate_floor(a))
    a->rate = rate_floor(a);
  a->tokens = 0;
  a->cut_ms = now;
  a->recover_ms = now;
  a->cut_ever = true;
}

static void rate_recover(struct queue_account *a, uint64_t now)
{
  if (a->rate >= a->lim.rps || now <= a->recover_ms)
    return;
  refill(a, now); /* tokens so far accrued at the old rate */
  double secs = (double)(now - a->recover_ms) / 1000.0;
  a->rate += QUEUE_RATE_RECOVERY * a->lim.rps * secs;
  if (a->rate > a->lim.rps)
    a->rate = a->lim.rps;
  a->recover_ms = now;
}

void queue_limit_rate(struct queue *q, uint32_t account, double rps,
                      uint64_t now_ms)
{
  if (!q || account >= q->naccounts || !(rps > 0) || !isfinite(rps))
    return;
  struct queue_account *a = &q->accounts[account];
  if (rps >= a->lim.rps)
    return;
  refill(a, now_ms); /* tokens so far accrued at the old rate */
  a->lim.rps = rps;
  if (a->rate > rps)
    a->rate = rps;
}

/* ---- job placement ---- */

/* A read, or the head write of an idle certificate, goes to the heap; pop
 * moves it on when due. */
static void activate(struct queue *q, struct queue_job *j)
{
  heap_insert(q, j);
}

static void activate_cert_head(struct queue *q, struct queue_cert *c)
{
  if (!c->busy && c->writes.head && c->writes.head->in.state == JOB_WAIT)
    activate(q, c->writes.head);
}

static struct queue_list *ready_list(struct queue_account *a,
                                     const struct queue_job *j)
{
  return j->kind == QUEUE_WRITE ? &a->ready_w : &a->ready_r;
}

static void promote_due(struct queue *q, uint64_t now)
{
  while (q->heap_len && q->heap[0]->not_before_ms <= now) {
    struct queue_job *j = q->heap[0];
    heap_delete(q, j);
    j->in.state = JOB_READY;
    list_append(ready_list(&q->accounts[j->account], j), j, LINK_READY);
  }
}

/* ---- public API ---- */

int queue_init(struct queue *q, uint32_t naccounts,
               const struct queue_account_limits *limits, uint32_t ncerts,
               uint64_t seed, uint64_t now_ms)
{
  if (!q || !naccounts || !limits)
    return -EINVAL;
  for (uint32_t i = 0; i < naccounts; i++)
    if (!(limits[i].rps > 0) || !isfinite(limits[i].rps))
      return -EINVAL;
  memset(q, 0, sizeof(*q));
  q->accounts = calloc(naccounts, sizeof(*q->accounts));
  q->certs = calloc(ncerts ? ncerts : 1, sizeof(*q->certs));
  if (!q->accounts || !q->certs) {
    queue_free(q);
    return -ENOMEM;
  }
  q->naccounts = naccounts;
  q->ncerts = ncerts;
  for (uint32_t i = 0; i < naccounts; i++) {
    struct queue_account *a = &q->accounts[i];
    a->lim = limits[i];
    a->rate = limits[i].rps;
    a->tokens = capacity(&limits[i]);
    a->refill_ms = now_ms;
    a->retry_tokens = QUEUE_RETRY_MIN;
  }
  for (int i = 0; i < 4; i++)
    q->rng[i] = splitmix64(&seed);
  return 0;
}

void queue_free(struct queue *q)
{
  if (!q)
    return;
  free(q->accounts);
  free(q->certs);
  free(q->heap);
  memset(q, 0, sizeof(*q));
}

int queue_push(struct queue *q, struct queue_job *job)
{
  if (!q || !job || job->account >= q->naccounts ||
      (job->kind != QUEUE_WRITE && job->kind != QUEUE_READ) ||
      (job->kind == QUEUE_WRITE && job->cert >= q->ncerts))
    return -EINVAL;
  if (job->in.state != JOB_NONE)
    return -EBUSY;
  struct queue_account *a = &q->accounts[job->account];
  if (a->blocked)
    return -EPERM;
  int rc = heap_reserve(q, q->pending + 1);
  if (rc)
    return rc;
  memset(&job->in, 0, sizeof(job->in));
  job->in.seq = q->seq++;
  job->in.heap_idx = NO_HEAP;
  list_append(&a->queued, job, LINK_ACCT);
  q->pending++;
  if (job->kind == QUEUE_READ) {
    activate(q, job);
    return 0;
  }
  struct queue_cert *c = &q->certs[job->cert];
  job->in.state = JOB_WAIT;
  list_append(&c->writes, job, LINK_CERT);
  activate_cert_head(q, c);
  return 0;
}

static void release(struct queue *q, struct queue_account *a,
                    struct queue_job *j, uint64_t now)
{
  list_remove(ready_list(a, j), j, LINK_READY);
  list_remove(&a->queued, j, LINK_ACCT);
  if (j->kind == QUEUE_WRITE) {
    struct queue_cert *c = &q->certs[j->cert];
    list_remove(&c->writes, j, LINK_CERT);
    c->busy = true;
  }
  j->in.state = JOB_INFLIGHT;
  j->in.released_ms = now;
  a->in_flight++;
  a->tokens -= 1;
  if (a->tokens < 0)
    a->tokens = 0; /* the epsilon slack must not turn into debt */
  if (j->attempt == 0) {
    a->retry_tokens += QUEUE_RETRY_RATIO;
    if (a->retry_tokens > QUEUE_RETRY_MAX)
      a->retry_tokens = QUEUE_RETRY_MAX;
  }
}

/* Earliest time anything may become runnable without a completion. */
static uint64_t next_wake(struct queue *q, uint64_t now)
{
  uint64_t wake = q->heap_len ? q->heap[0]->not_before_ms : UINT64_MAX;
  for (uint32_t i = 0; i < q->naccounts; i++) {
    struct queue_account *a = &q->accounts[i];
    if (!may_release(a))
      continue;
    uint64_t t = token_time(a, now);
    if (t < a->paused_until)
      t = a->paused_until;
    if (t < wake)
      wake = t;
  }
  return wake;
}

struct queue_job *queue_pop(struct queue *q, uint64_t now_ms, uint64_t *wake_ms)
{
  if (!q)
    return NULL;
  promote_due(q, now_ms);
  for (uint32_t n = 0; n < q->naccounts; n++) {
    uint32_t i = (q->rr + n) % q->naccounts;
    struct queue_account *a = &q->accounts[i];
    if (!may_release(a) || now_ms < a->paused_until)
      continue;
    refill(a, now_ms);
    if (a->tokens < 1.0 - TOKEN_EPS)
      continue;
    struct queue_job *j = a->ready_w.head ? a->ready_w.head : a->ready_r.head;
    release(q, a, j, now_ms);
    q->rr = (i + 1) % q->naccounts;
    return j;
  }
  if (wake_ms)
    *wake_ms = next_wake(q, now_ms);
  return NULL;
}

void queue_complete(struct queue *q, struct queue_job *job,
                    enum queue_outcome outcome, uint64_t now_ms)
{
  if (!q || !job || job->in.state != JOB_INFLIGHT ||
      job->account >= q->naccounts)
    return;
  struct queue_account *a = &q->accounts[job->account];
  a->in_flight--;
  q->pending--;
  job->in.state = JOB_NONE;
  if (job->kind == QUEUE_WRITE) {
    struct queue_cert *c = &q->certs[job->cert];
    c->busy = false;
    activate_cert_head(q, c);
  }
  switch (outcome) {
  case QUEUE_SUCCESS:
    a->open = true;
    rate_recover(a, now_ms);
    break;
  case QUEUE_THROTTLED:
    rate_cut(a, job, now_ms);
    break;
  case QUEUE_AUTH_FAILED:
    a->blocked = true;
    break;
  case QUEUE_FAILURE:
    break;
  }
}

int queue_remove(struct queue *q, struct queue_job *job)
{
  if (!q || !job || job->account >= q->naccounts)
    return -EINVAL;
  struct queue_account *a = &q->accounts[job->account];
  switch (job->in.state) {
  case JOB_DELAYED:
    heap_delete(q, job);
    break;
  case JOB_READY:
    list_remove(ready_list(a, job), job, LINK_READY);
    break;
  case JOB_WAIT:
    break;
  default:
    return -EINVAL;
  }
  list_remove(&a->queued, job, LINK_ACCT);
  if (job->kind == QUEUE_WRITE) {
    struct queue_cert *c = &q->certs[job->cert];
    list_remove(&c->writes, job, LINK_CERT);
    activate_cert_head(q, c); /* the next write may now head the FIFO */
  }
  job->in.state = JOB_NONE;
  q->pending--;
  return 0;
}

struct queue_job *queue_drain_account(struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return NULL;
  struct queue_job *j = q->accounts[account].queued.head;
  if (j)
    queue_remove(q, j);
  return j;
}

void queue_pause_account(struct queue *q, uint32_t account, uint64_t now_ms,
                         uint64_t pause_ms)
{
  uint64_t until;

  if (!q || account >= q->naccounts)
    return;
  if (pause_ms > QUEUE_RETRY_AFTER_MAX_MS)
    pause_ms = QUEUE_RETRY_AFTER_MAX_MS;
  until = now_ms + pause_ms;
  if (until > q->accounts[account].paused_until)
    q->accounts[account].paused_until = until;
}

uint64_t queue_account_paused_until(const struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return 0;
  return q->accounts[account].paused_until;
}

void queue_block_account(struct queue *q, uint32_t account)
{
  if (q && account < q->naccounts)
    q->accounts[account].blocked = true;
}

void queue_unblock_account(struct queue *q, uint32_t account)
{
  if (q && account < q->naccounts) {
    q->accounts[account].blocked = false;
    q->accounts[account].open = false; /* probe the new credentials alone */
  }
}

bool queue_account_blocked(const struct queue *q, uint32_t account)
{
  return q && account < q->naccounts && q->accounts[account].blocked;
}

bool queue_account_open(const struct queue *q, uint32_t account)
{
  return q && account < q->naccounts && q->accounts[account].open;
}

uint64_t queue_backoff_ms(struct queue *q, uint32_t attempt, uint32_t base_ms,
                          uint32_t max_ms, uint64_t retry_after_ms)
{
  uint64_t base = base_ms;
  uint64_t max = max_ms > base_ms ? max_ms : base_ms;
  uint64_t cap = attempt >= 32 ? max : base << attempt;
  if (cap > max)
    cap = max;
  uint64_t d = rng_range(q->rng, base, cap);
  uint64_t floor = retry_after_ms < QUEUE_RETRY_AFTER_MAX_MS
                       ? retry_after_ms
                       : QUEUE_RETRY_AFTER_MAX_MS;
  return d > floor ? d : floor;
}

bool queue_retry_allowed(struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return false;
  struct queue_account *a = &q->accounts[account];
  if (a->retry_tokens < 1.0)
    return false;
  a->retry_tokens -= 1.0;
  return true;
}

double queue_retry_budget(const struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return 0;
  return q->accounts[account].retry_tokens;
}

size_t queue_pending(const struct queue *q)
{
  return q ? q->pending : 0;
}

uint32_t queue_account_in_flight(const struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return 0;
  return q->accounts[account].in_flight;
}

double queue_account_rate(const struct queue *q, uint32_t account)
{
  if (!q || account >= q->naccounts)
    return 0;
  return q->accounts[account].rate;
}
