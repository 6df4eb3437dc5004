/* SPDX-License-Identifier: MIT */
/*
 * test_queue: each scheduling property of queue.h under a fake clock:
 * token bucket rate and burst, max_in_flight, one write per certificate,
 * FIFO per certificate, writes before reads, round-robin, delays, the
 * account gate, the Retry-After pause of a whole account, adaptive rate
 * cut and recovery, backoff bounds and
 * distribution, the retry budget under a failure storm, and scale.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue.h"

#define FAST                                                                   \
  {                                                                            \
    .rps = 1e6, .burst = 1000000, .max_in_flight = 0                           \
  }

static struct queue_job *new_jobs(size_t n, enum queue_kind kind,
                                  uint32_t account)
{
  struct queue_job *v = calloc(n, sizeof(*v));
  assert_non_null(v);
  for (size_t i = 0; i < n; i++) {
    v[i].kind = kind;
    v[i].account = account;
    v[i].data = (void *)(uintptr_t)i;
  }
  return v;
}

static void push_all(struct queue *q, struct queue_job *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    assert_int_equal(queue_push(q, &v[i]), 0);
}

/* Release the first job of an account and succeed it: opens the gate. */
static void open_gate(struct queue *q, uint32_t account, uint64_t now)
{
  struct queue_job j = {.kind = QUEUE_READ, .account = account};
  assert_int_equal(queue_push(q, &j), 0);
  uint64_t wake;
  struct queue_job *got = queue_pop(q, now, &wake);
  assert_ptr_equal(got, &j);
  queue_complete(q, got, QUEUE_SUCCESS, now);
  assert_true(queue_account_open(q, account));
}

/* Tiny deterministic PRNG for the tests' own random choices. */
static uint64_t test_rand(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void test_bucket_rate_and_burst(void **state)
{
  (void)state;
  const double rps = 5;
  const uint32_t burst = 10;
  struct queue q;
  struct queue_account_limits lim = {.rps = rps, .burst = burst};
  assert_int_equal(queue_init(&q, 1, &lim, 0, 1, 0), 0);
  open_gate(&q, 0, 0); /* takes one token */
  enum { N = 1000 };
  struct queue_job *v = new_jobs(N, QUEUE_READ, 0);
  push_all(&q, v, N);
  unsigned per_window[60] = {0};
  uint64_t now = 0, released = 0, wake = 0;
  while (now < 60000) {
    struct queue_job *j = queue_pop(&q, now, &wake);
    if (!j) {
      assert_true(wake > now);
      assert_true(wake != UINT64_MAX);
      now = wake; /* the wake time is exact: something runs then */
      j = queue_pop(&q, now, &wake);
      assert_non_null(j);
      if (now >= 60000) {
        queue_complete(&q, j, QUEUE_SUCCESS, now);
        break;
      }
    }
    per_window[now / 1000]++;
    released++;
    queue_complete(&q, j, QUEUE_SUCCESS, now);
  }
  /* window 0: the bucket (burst less the token held back for arrival
   * skew) minus the gate probe at t=0, then refills at 200, 400, 600 and
   * 800 ms; afterwards exactly rps per second */
  assert_int_equal(per_window[0], burst - 2 + (unsigned)rps - 1);
  for (int w = 0; w < 60; w++)
    assert_true(per_window[w] <= rps + burst);
  for (int w = 1; w < 60; w++)
    assert_int_equal(per_window[w], (unsigned)rps);
  double mean = (double)(released - (burst - 2)) / 60.0;
  assert_true(fabs(mean - rps) < 0.05);
  queue_free(&q);
  free(v);
}

static void test_max_in_flight(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim = {
      .rps = 1000, .burst = 1000, .max_in_flight = 3};
  assert_int_equal(queue_init(&q, 1, &lim, 0, 1, 0), 0);
  open_gate(&q, 0, 0);
  struct queue_job *v = new_jobs(20, QUEUE_READ, 0);
  push_all(&q, v, 20);
  struct queue_job *fl[3];
  uint64_t wake = 0;
  for (int i = 0; i < 3; i++)
    assert_non_null(fl[i] = queue_pop(&q, 0, &wake));
  assert_null(queue_pop(&q, 0, &wake));
  assert_true(wake == UINT64_MAX); /* only a completion can help */
  assert_int_equal(queue_account_in_flight(&q, 0), 3);
  queue_complete(&q, fl[1], QUEUE_FAILURE, 1);
  assert_non_null(queue_pop(&q, 1, &wake));
  assert_null(queue_pop(&q, 1, &wake));
  assert_int_equal(queue_pending(&q), 19); /* 16 queued + 3 in flight */
  queue_free(&q);
  free(v);
}

/* Many writes on few certificates, completed in random order: never two
 * in flight for one certificate, and each certificate's in push order. */
static void test_one_write_per_cert_fifo(void **state)
{
  (void)state;
  enum { CERTS = 10, PER = 30, N = CERTS * PER };
  struct queue q;
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 1, &lim, CERTS, 7, 0), 0);
  open_gate(&q, 0, 0);
  struct queue_job *v = new_jobs(N, QUEUE_WRITE, 0);
  uint64_t rs = 88172645463325252ULL;
  uint32_t pushed_per_cert[CERTS] = {0};
  uint32_t seq_of[N];
  for (size_t i = 0; i < N; i++) {
    v[i].cert = (uint32_t)(test_rand(&rs) % CERTS);
    seq_of[i] = pushed_per_cert[v[i].cert]++;
  }
  push_all(&q, v, N);
  struct queue_job *inflight[N];
  size_t nfl = 0, done = 0;
  uint32_t next_seq[CERTS] = {0};
  int busy[CERTS] = {0};
  uint64_t wake;
  while (done < N) {
    struct queue_job *j;
    while ((j = queue_pop(&q, 0, &wake))) {
      size_t idx = (size_t)(j - v);
      assert_int_equal(busy[j->cert], 0);
      busy[j->cert] = 1;
      assert_int_equal(seq_of[idx], next_seq[j->cert]);
      next_seq[j->cert]++;
      inflight[nfl++] = j;
    }
    assert_true(nfl > 0 && nfl <= CERTS);
    size_t k = test_rand(&rs) % nfl;
    struct queue_job *c = inflight[k];
    inflight[k] = inflight[--nfl];
    busy[c->cert] = 0;
    queue_complete(&q, c, QUEUE_SUCCESS, 0);
    done++;
  }
  assert_int_equal(queue_pending(&q), 0);
  queue_free(&q);
  free(v);
}

static void test_writes_before_reads(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 1, &lim, 100, 1, 0), 0);
  open_gate(&q, 0, 0);
  struct queue_job *r = new_jobs(10, QUEUE_READ, 0);
  struct queue_job *w = new_jobs(10, QUEUE_WRITE, 0);
  for (uint32_t i = 0; i < 10; i++)
    w[i].cert = i;
  push_all(&q, r, 10); /* reads first ... */
  push_all(&q, w, 10);
  uint64_t wake;
  for (int i = 0; i < 10; i++) /* ... yet writes come out first */
    assert_int_equal(queue_pop(&q, 0, &wake)->kind, QUEUE_WRITE);
  for (int i = 0; i < 10; i++)
    assert_int_equal(queue_pop(&q, 0, &wake)->kind, QUEUE_READ);
  assert_null(queue_pop(&q, 0, &wake));
  queue_free(&q);
  free(r);
  free(w);
}

static void test_round_robin(void **state)
{
  (void)state;
  enum { A = 3, PER = 20 };
  struct queue q;
  struct queue_account_limits lim[A] = {FAST, FAST, FAST};
  assert_int_equal(queue_init(&q, A, lim, 0, 1, 0), 0);
  struct queue_job *v[A];
  for (uint32_t a = 0; a < A; a++) {
    open_gate(&q, a, 0);
    v[a] = new_jobs(PER, QUEUE_READ, a);
  }
  /* account 0 pushes everything first; it must still take turns */
  for (uint32_t a = 0; a < A; a++)
    push_all(&q, v[a], PER);
  unsigned count[A] = {0};
  uint64_t wake;
  for (int i = 0; i < A * PER; i++) {
    struct queue_job *j = queue_pop(&q, 0, &wake);
    assert_non_null(j);
    count[j->account]++;
    for (int a = 0; a < A; a++)
      for (int b = 0; b < A; b++)
        assert_true(count[a] <= count[b] + 1);
  }
  queue_free(&q);
  for (int a = 0; a < A; a++)
    free(v[a]);
}

static void test_delayed_jobs(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 1, &lim, 4, 1, 0), 0);
  open_gate(&q, 0, 0);
  struct queue_job late = {.kind = QUEUE_READ, .not_before_ms = 900};
  struct queue_job mid = {.kind = QUEUE_READ, .not_before_ms = 500};
  struct queue_job now = {.kind = QUEUE_READ, .not_before_ms = 0};
  assert_int_equal(queue_push(&q, &late), 0);
  assert_int_equal(queue_push(&q, &mid), 0);
  assert_int_equal(queue_push(&q, &now), 0);
  uint64_t wake = 0;
  assert_ptr_equal(queue_pop(&q, 10, &wake), &now);
  assert_null(queue_pop(&q, 10, &wake));
  assert_int_equal(wake, 500);
  assert_null(queue_pop(&q, 499, &wake));
  assert_ptr_equal(queue_pop(&q, 500, &wake), &mid);
  assert_null(queue_pop(&q, 500, &wake));
  assert_int_equal(wake, 900);
  assert_ptr_equal(queue_pop(&q, 1000, &wake), &late);
  assert_null(queue_pop(&q, 1000, &wake));
  assert_true(wake == UINT64_MAX);

  /* a delayed head write holds back later writes of its certificate, and
   * removing it lets the next one through */
  struct queue_job w1 = {.kind = QUEUE_WRITE, .cert = 2, .not_before_ms = 5000};
  struct queue_job w2 = {.kind = QUEUE_WRITE, .cert = 2};
  struct queue_job w3 = {.kind = QUEUE_WRITE, .cert = 3};
  assert_int_equal(queue_push(&q, &w1), 0);
  assert_int_equal(queue_push(&q, &w2), 0);
  assert_int_equal(queue_push(&q, &w3), 0);
  assert_int_equal(queue_push(&q, &w2), -EBUSY);
  assert_ptr_equal(queue_pop(&q, 1000, &wake), &w3);
  assert_null(queue_pop(&q, 1000, &wake));
  assert_int_equal(wake, 5000);
  assert_int_equal(queue_remove(&q, &w1), 0);
  assert_int_equal(queue_remove(&q, &w1), -EINVAL);
  assert_ptr_equal(queue_pop(&q, 1000, &wake), &w2);
  assert_int_equal(queue_remove(&q, &w2), -EINVAL); /* in flight */
  queue_free(&q);
}

static void test_account_gate(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim[2] = {FAST, FAST};
  assert_int_equal(queue_init(&q, 2, lim, 0, 1, 0), 0);
  struct queue_job *v = new_jobs(6, QUEUE_READ, 0);
  push_all(&q, v, 6);
  uint64_t wake;
  /* the first request goes alone */
  struct queue_job *first = queue_pop(&q, 0, &wake);
  assert_non_null(first);
  assert_null(queue_pop(&q, 0, &wake));
  assert_true(wake == UINT64_MAX);
  /* a plain failure keeps the gate closed: the next single job may go */
  queue_complete(&q, first, QUEUE_FAILURE, 1);
  assert_false(queue_account_open(&q, 0));
  struct queue_job *second = queue_pop(&q, 1, &wake);
  assert_non_null(second);
  assert_null(queue_pop(&q, 1, &wake));
  /* a success opens it: everything else goes at once */
  queue_complete(&q, second, QUEUE_SUCCESS, 2);
  assert_true(queue_account_open(&q, 0));
  for (int i = 0; i < 4; i++)
    assert_non_null(queue_pop(&q, 2, &wake));
  assert_null(queue_pop(&q, 2, &wake));
  free(v);

  /* auth failure on the probe: the account is blocked for good */
  v = new_jobs(5, QUEUE_READ, 1);
  push_all(&q, v, 5);
  struct queue_job *probe = queue_pop(&q, 3, &wake);
  assert_non_null(probe);
  assert_int_equal(probe->account, 1);
  queue_complete(&q, probe, QUEUE_AUTH_FAILED, 4);
  assert_true(queue_account_blocked(&q, 1));
  assert_null(queue_pop(&q, 5, &wake));
  assert_true(wake == UINT64_MAX);
  struct queue_job extra = {.kind = QUEUE_READ, .account = 1};
  assert_int_equal(queue_push(&q, &extra), -EPERM);
  /* the engine drains the blocked account's jobs */
  int drained = 0;
  while (queue_drain_account(&q, 1))
    drained++;
  assert_int_equal(drained, 4);
  assert_false(queue_account_blocked(&q, 0));
  /* new credentials: unblock, and the gate is closed again */
  queue_unblock_account(&q, 1);
  assert_false(queue_account_open(&q, 1));
  push_all(&q, v, 2);
  assert_non_null(queue_pop(&q, 6, &wake));
  assert_null(queue_pop(&q, 6, &wake));
  queue_block_account(&q, 1);
  assert_true(queue_account_blocked(&q, 1));
  free(v);
  queue_free(&q);
}

/* Retry-After pauses the whole account: after a 429 with
 * Retry-After 1 s, no job of that account, write or read, of that
 * certificate or another, is released before the second has passed; a
 * job already in flight completes normally, other accounts go on, a
 * shorter later pause does not shorten it, and a pause is clamped. */
static void test_retry_after_pauses_account(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim[2] = {FAST, FAST};
  assert_int_equal(queue_init(&q, 2, lim, 4, 1, 0), 0);
  open_gate(&q, 0, 0);
  open_gate(&q, 1, 0);
  struct queue_job w[4] = {
      {.kind = QUEUE_WRITE, .account = 0, .cert = 0},
      {.kind = QUEUE_WRITE, .account = 0, .cert = 0}, /* same certificate */
      {.kind = QUEUE_WRITE, .account = 0, .cert = 1},
      {.kind = QUEUE_READ, .account = 0},
  };
  struct queue_job other = {.kind = QUEUE_READ, .account = 1};
  push_all(&q, w, 4);
  uint64_t wake;
  struct queue_job *throttled = queue_pop(&q, 1000, &wake);
  struct queue_job *in_flight = queue_pop(&q, 1000, &wake);
  assert_ptr_equal(throttled, &w[0]);
  assert_ptr_equal(in_flight, &w[2]);
  /* the 429 comes back at 1000 with Retry-After: 1 */
  queue_complete(&q, throttled, QUEUE_THROTTLED, 1000);
  queue_pause_account(&q, 0, 1000, 1000);
  assert_true(queue_account_paused_until(&q, 0) == 2000);
  /* nothing of account 0 goes, not even the other write of certificate
   * 0 or the read; the wake time is the end of the pause */
  assert_null(queue_pop(&q, 1000, &wake));
  assert_true(wake == 2000);
  assert_int_equal(queue_push(&q, &other), 0);
  assert_ptr_equal(queue_pop(&q, 1001, &wake), &other); /* account 1 goes */
  queue_complete(&q, &other, QUEUE_SUCCESS, 1001);
  /* the job that was in flight before the 429 completes as usual */
  queue_complete(&q, in_flight, QUEUE_SUCCESS, 1500);
  /* a shorter pause (Retry-After 0.2 s at 1500) does not shorten it */
  queue_pause_account(&q, 0, 1500, 200);
  assert_true(queue_account_paused_until(&q, 0) == 2000);
  for (uint64_t t = 1000; t < 2000; t += 7)
    assert_null(queue_pop(&q, t, &wake));
  assert_null(queue_pop(&q, 1999, &wake));
  assert_true(wake == 2000);
  /* at 2000 the account goes again: the queued write, then the read */
  struct queue_job *a = queue_pop(&q, 2000, &wake);
  assert_ptr_equal(a, &w[1]);
  struct queue_job *b = queue_pop(&q, 2000, &wake);
  assert_ptr_equal(b, &w[3]);
  queue_complete(&q, a, QUEUE_SUCCESS, 2001);
  queue_complete(&q, b, QUEUE_SUCCESS, 2001);
  /* Retry-After is clamped to QUEUE_RETRY_AFTER_MAX_MS */
  queue_pause_account(&q, 1, 3000, UINT64_MAX / 2);
  assert_true(queue_account_paused_until(&q, 1) ==
              3000 + QUEUE_RETRY_AFTER_MAX_MS);
  assert_int_equal(queue_push(&q, &other), 0);
  assert_null(queue_pop(&q, 3000 + QUEUE_RETRY_AFTER_MAX_MS - 1, &wake));
  assert_true(wake == 3000 + QUEUE_RETRY_AFTER_MAX_MS);
  assert_ptr_equal(queue_pop(&q, 3000 + QUEUE_RETRY_AFTER_MAX_MS, &wake),
                   &other);
  queue_free(&q);
}

/* Releases per second of a saturated account over [from, to) ms. */
static double measured_rate(struct queue *q, struct queue_job *v, size_t n,
                            uint64_t from, uint64_t to)
{
  push_all(q, v, n);
  uint64_t now = from, wake;
  size_t released = 0;
  while (now < to) {
    struct queue_job *j = queue_pop(q, now, &wake);
    if (j) {
      released++;
      queue_complete(q, j, QUEUE_FAILURE, now); /* neutral outcome */
    } else {
      now = wake;
    }
  }
  while (queue_drain_account(q, 0))
    ;
  return (double)released / ((double)(to - from) / 1000.0);
}

static void test_rate_cut_and_recovery(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim = {.rps = 8, .burst = 1};
  assert_int_equal(queue_init(&q, 1, &lim, 0, 1, 0), 0);
  open_gate(&q, 0, 0);
  struct queue_job a = {.kind = QUEUE_READ}, b = {.kind = QUEUE_READ};
  uint64_t wake;
  assert_int_equal(queue_push(&q, &a), 0);
  assert_int_equal(queue_push(&q, &b), 0);
  assert_ptr_equal(queue_pop(&q, 1000, &wake), &a);
  assert_ptr_equal(queue_pop(&q, 1125, &wake), &b);
  queue_complete(&q, &a, QUEUE_THROTTLED, 1200);
  assert_true(queue_account_rate(&q, 0) == 4.0);
  /* b was sent before the cut: its throttle is not a new signal */
  queue_complete(&q, &b, QUEUE_THROTTLED, 1210);
  assert_true(queue_account_rate(&q, 0) == 4.0);
  /* a job released after the cut and throttled cuts again */
  assert_int_equal(queue_push(&q, &a), 0);
  struct queue_job *j = queue_pop(&q, 1210, &wake);
  assert_null(j); /* the cut emptied the bucket */
  assert_int_equal(wake, 1200 + 250);
  assert_ptr_equal(queue_pop(&q, wake, &wake), &a);
  queue_complete(&q, &a, QUEUE_THROTTLED, 1500);
  assert_true(queue_account_rate(&q, 0) == 2.0);
  /* floor */
  for (int i = 0; i < 10; i++) {
    uint64_t t = 2000 + (uint64_t)i * 100000;
    assert_int_equal(queue_push(&q, &a), 0);
    assert_ptr_equal(queue_pop(&q, t, &wake), &a);
    queue_complete(&q, &a, QUEUE_THROTTLED, t);
  }
  assert_true(queue_account_rate(&q, 0) == QUEUE_RATE_FLOOR);
  uint64_t cut_at = 2000 + 9 * 100000;

  /* the cut rate is what the bucket releases */
  struct queue_job *v = new_jobs(200, QUEUE_READ, 0);
  double r = measured_rate(&q, v, 200, cut_at, cut_at + 100000);
  assert_true(fabs(r - QUEUE_RATE_FLOOR) < 0.02);

  while (queue_drain_account(&q, 0))
    ;
  queue_free(&q);

  /* recovery: +10 % of rps (0.8/s) per second since the cut, on success */
  assert_int_equal(queue_init(&q, 1, &lim, 0, 1, 0), 0);
  open_gate(&q, 0, 0);
  uint64_t t = 1000;
  assert_int_equal(queue_push(&q, &a), 0);
  assert_ptr_equal(queue_pop(&q, t, &wake), &a);
  queue_complete(&q, &a, QUEUE_THROTTLED, t);
  assert_true(queue_account_rate(&q, 0) == 4.0);
  static const struct {
    uint64_t at;
    double rate;
  } steps[] = {{1000, 4.8}, {3000, 6.4}, {3500, 6.8}, {60000, 8.0}};
  for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    assert_int_equal(queue_push(&q, &a), 0);
    j = queue_pop(&q, t, &wake);
    if (!j)
      j = queue_pop(&q, wake, &wake);
    assert_ptr_equal(j, &a);
    queue_complete(&q, &a, QUEUE_SUCCESS, t + steps[i].at);
    assert_true(fabs(queue_account_rate(&q, 0) - steps[i].rate) < 1e-9);
  }
  t += 60000;
  /* a plain failure neither cuts nor recovers */
  assert_int_equal(queue_push(&q, &a), 0);
  assert_ptr_equal(queue_pop(&q, t, &wake), &a);
  queue_complete(&q, &a, QUEUE_FAILURE, t);
  assert_true(queue_account_rate(&q, 0) == 8.0);
  r = measured_rate(&q, v, 200, t + 1000, t + 21000);
  assert_true(fabs(r - 8.0) < 0.2);
  free(v);
  queue_free(&q);
}

static void test_backoff_distribution(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 1, &lim, 0, 42, 0), 0);
  enum { N = 10000, BUCKETS = 10 };
  /* attempt 3, base 100: uniform in [100, 800] */
  unsigned hist[BUCKETS] = {0};
  double sum = 0;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < N; i++) {
    uint64_t d = queue_backoff_ms(&q, 3, 100, 60000, 0);
    assert_true(d >= 100 && d <= 800);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    sum += (double)d;
    hist[(d - 100) * BUCKETS / 701]++;
  }
  assert_true(fabs(sum / N - 450.0) < 450.0 * 0.02);
  assert_true(lo < 110 && hi > 790); /* the whole range is used */
  for (int b = 0; b < BUCKETS; b++)
    assert_true(hist[b] > N / BUCKETS * 0.85 && hist[b] < N / BUCKETS * 1.15);

  /* the cap: large attempts stay within [base, max] */
  sum = 0;
  for (int i = 0; i < N; i++) {
    uint64_t d = queue_backoff_ms(&q, 40, 500, 60000, 0);
    assert_true(d >= 500 && d <= 60000);
    sum += (double)d;
  }
  assert_true(fabs(sum / N - 30250.0) < 30250.0 * 0.03);
  /* the first retry already jitters, in [base, 2 base] */
  for (int i = 0; i < 1000; i++) {
    uint64_t d = queue_backoff_ms(&q, 1, 500, 60000, 0);
    assert_true(d >= 500 && d <= 1000);
  }
  /* max below base: base */
  assert_int_equal(queue_backoff_ms(&q, 5, 500, 100, 0), 500);
  /* Retry-After is a floor, above max_delay too, clamped to 300 s */
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(queue_backoff_ms(&q, 1, 100, 1000, 5000), 5000);
    uint64_t d = queue_backoff_ms(&q, 10, 100, 60000, 1000);
    assert_true(d >= 1000 && d <= 60000);
  }
  assert_int_equal(queue_backoff_ms(&q, 1, 100, 1000, 10ULL * 3600 * 1000),
                   QUEUE_RETRY_AFTER_MAX_MS);
  queue_free(&q);

  /* same seed, same draws; another seed, other draws */
  struct queue q1, q2, q3;
  assert_int_equal(queue_init(&q1, 1, &lim, 0, 5, 0), 0);
  assert_int_equal(queue_init(&q2, 1, &lim, 0, 5, 0), 0);
  assert_int_equal(queue_init(&q3, 1, &lim, 0, 6, 0), 0);
  int same = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t d1 = queue_backoff_ms(&q1, 20, 1, 1000000, 0);
    assert_int_equal(d1, queue_backoff_ms(&q2, 20, 1, 1000000, 0));
    same += d1 == queue_backoff_ms(&q3, 20, 1, 1000000, 0);
  }
  assert_true(same < 5);
  queue_free(&q1);
  queue_free(&q2);
  queue_free(&q3);
}

/* 100 % failures, max 6 attempts: retries stay within the budget. */
static void test_retry_budget_storm(void **state)
{
  (void)state;
  enum { FIRST = 2000, MAX_ATTEMPTS = 6 };
  struct queue q;
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 1, &lim, 0, 1, 0), 0);
  struct queue_job *v = new_jobs(FIRST, QUEUE_READ, 0);
  push_all(&q, v, FIRST);
  size_t first_attempts = 0, retries = 0, failed = 0, denied = 0;
  uint64_t now = 0, wake;
  while (queue_pending(&q)) {
    struct queue_job *j = queue_pop(&q, now, &wake);
    if (!j) {
      now = wake;
      continue;
    }
    if (j->attempt == 0)
      first_attempts++;
    else
      retries++;
    queue_complete(&q, j, QUEUE_FAILURE, now);
    if (j->attempt + 1 < MAX_ATTEMPTS && queue_retry_allowed(&q, 0)) {
      j->attempt++;
      j->not_before_ms = now + queue_backoff_ms(&q, j->attempt, 10, 1000, 0);
      assert_int_equal(queue_push(&q, j), 0);
    } else {
      denied += j->attempt + 1 < MAX_ATTEMPTS;
      failed++;
    }
    assert_true(queue_retry_budget(&q, 0) >= 0);
  }
  assert_int_equal(first_attempts, FIRST);
  assert_int_equal(failed, FIRST);
  /* without the budget the storm would be 6x; with it at most 20 % + 10 */
  assert_true(retries <= QUEUE_RETRY_RATIO * first_attempts + QUEUE_RETRY_MIN);
  assert_true(retries >= QUEUE_RETRY_RATIO * first_attempts * 0.9);
  assert_true(denied > 0);
  assert_false(queue_retry_allowed(&q, 0));
  free(v);
  queue_free(&q);
}

static void test_bad_input(void **state)
{
  (void)state;
  struct queue q;
  struct queue_account_limits bad = {.rps = 0};
  assert_int_equal(queue_init(&q, 1, &bad, 0, 1, 0), -EINVAL);
  bad.rps = NAN;
  assert_int_equal(queue_init(&q, 1, &bad, 0, 1, 0), -EINVAL);
  struct queue_account_limits lim = FAST;
  assert_int_equal(queue_init(&q, 0, &lim, 0, 1, 0), -EINVAL);
  assert_int_equal(queue_init(&q, 1, &lim, 3, 1, 0), 0);
  struct queue_job j = {.kind = QUEUE_WRITE, .cert = 3};
  assert_int_equal(queue_push(&q, &j), -EINVAL);
  j = (struct queue_job){.kind = QUEUE_READ, .account = 1};
  assert_int_equal(queue_push(&q, &j), -EINVAL);
  j = (struct queue_job){.kind = (enum queue_kind)7};
  assert_int_equal(queue_push(&q, &j), -EINVAL);
  assert_int_equal(queue_pending(&q), 0);
  /* completing a job that is not in flight changes nothing */
  j = (struct queue_job){.kind = QUEUE_READ};
  queue_complete(&q, &j, QUEUE_AUTH_FAILED, 0);
  assert_false(queue_account_blocked(&q, 0));
  queue_free(&q);
}

/* 100,000 certificates, 100,000 writes + 100,000 reads over 4 accounts with
 * random delays and random completion order: everything is released
 * exactly once, the per-certificate rules hold throughout. */
static void test_scale(void **state)
{
  (void)state;
  enum { CERTS = 100000, N = 200000, A = 4 };
  struct queue q;
  struct queue_account_limits lim[A] = {FAST, FAST, FAST, FAST};
  for (int a = 0; a < A; a++)
    lim[a].max_in_flight = 64;
  assert_int_equal(queue_init(&q, A, lim, CERTS, 3, 0), 0);
  struct queue_job *v = calloc(N, sizeof(*v));
  uint8_t *seen = calloc(N, 1);
  uint8_t *busy = calloc(CERTS, 1);
  assert_true(v && seen && busy);
  uint64_t rs = 0x12345678;
  for (uint32_t i = 0; i < N; i++) {
    v[i].kind = i % 2 ? QUEUE_READ : QUEUE_WRITE;
    v[i].cert = (uint32_t)(test_rand(&rs) % CERTS);
    v[i].account = v[i].cert % A;
    v[i].not_before_ms = test_rand(&rs) % 10000;
    assert_int_equal(queue_push(&q, &v[i]), 0);
  }
  assert_int_equal(queue_pending(&q), N);
  struct queue_job **fl = calloc(N, sizeof(*fl));
  assert_non_null(fl);
  size_t nfl = 0, done = 0;
  uint64_t now = 0, wake;
  while (done < N) {
    struct queue_job *j;
    while ((j = queue_pop(&q, now, &wake))) {
      size_t idx = (size_t)(j - v);
      assert_int_equal(seen[idx], 0);
      seen[idx] = 1;
      assert_true(j->not_before_ms <= now);
      if (j->kind == QUEUE_WRITE) {
        assert_int_equal(busy[j->cert], 0);
        busy[j->cert] = 1;
      }
      fl[nfl++] = j;
    }
    if (nfl == 0) {
      assert_true(wake > now && wake != UINT64_MAX);
      now = wake;
      continue;
    }
    /* complete about half of what is in flight, in random order */
    size_t m = nfl / 2 + 1;
    for (size_t k = 0; k < m && nfl; k++) {
      size_t x = test_rand(&rs) % nfl;
      struct queue_job *c = fl[x];
      fl[x] = fl[--nfl];
      if (c->kind == QUEUE_WRITE)
        busy[c->cert] = 0;
      queue_complete(&q, c, QUEUE_SUCCESS, now);
      done++;
    }
    now += 1;
  }
  assert_int_equal(queue_pending(&q), 0);
  assert_null(queue_pop(&q, now, &wake));
  assert_true(wake == UINT64_MAX);
  free(fl);
  free(v);
  free(seen);
  free(busy);
  queue_free(&q);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bucket_rate_and_burst),
      cmocka_unit_test(test_max_in_flight),
      cmocka_unit_test(test_one_write_per_cert_fifo),
      cmocka_unit_test(test_writes_before_reads),
      cmocka_unit_test(test_round_robin),
      cmocka_unit_test(test_delayed_jobs),
      cmocka_unit_test(test_account_gate),
      cmocka_unit_test(test_retry_after_pauses_account),
      cmocka_unit_test(test_rate_cut_and_recovery),
      cmocka_unit_test(test_backoff_distribution),
      cmocka_unit_test(test_retry_budget_storm),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_scale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
