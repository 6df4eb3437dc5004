/* Wake-up scheduler: simulated latency must never block a polling thread,
 * so a handler suspends its connection and this thread resumes it when the
 * deadline passes (a binary min-heap of deadlines, one condition variable
 * on CLOCK_MONOTONIC). */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "sim.h"

static int64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void heap_swap(struct sim_wake *h, size_t a, size_t b)
{
  struct sim_wake t = h[a];
  h[a] = h[b];
  h[b] = t;
}

static void sift_up(struct sim_wake *h, size_t i)
{
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h[p].at_ns <= h[i].at_ns)
      break;
    heap_swap(h, p, i);
    i = p;
  }
}

static void sift_down(struct sim_wake *h, size_t n, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && h[l].at_ns < h[m].at_ns)
      m = l;
    if (r < n && h[r].at_ns < h[m].at_ns)
      m = r;
    if (m == i)
      return;
    heap_swap(h, m, i);
    i = m;
  }
}

static struct sim_wake heap_pop(struct sim_sched *s)
{
  struct sim_wake top = s->heap[0];
  s->heap[0] = s->heap[--s->len];
  sift_down(s->heap, s->len, 0);
  return top;
}

static void *sched_main(void *arg)
{
  struct sim_sched *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    int64_t now = mono_ns();
    /* resume outside the lock: MHD may take its own locks */
    while (s->len && (s->stop || s->heap[0].at_ns <= now)) {
      struct sim_wake w = heap_pop(s);
      pthread_mutex_unlock(&s->mu);
      MHD_resume_connection(w.conn);
      pthread_mutex_lock(&s->mu);
    }
    if (s->stop)
      break;
    if (!s->len) {
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    int64_t at = s->heap[0].at_ns;
    struct timespec ts = {.tv_sec = at / 1000000000,
                          .tv_nsec = at % 1000000000};
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int sim_sched_start(struct sim_sched *s)
{
  pthread_condattr_t ca;
  int rc = pthread_condattr_init(&ca);
  if (!rc)
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  if (!rc)
    rc = pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc)
    return -rc;
  rc = pthread_mutex_init(&s->mu, NULL);
  if (!rc)
    rc = pthread_create(&s->thread, NULL, sched_main, s);
  if (rc)
    return -rc;
  s->started = true;
  return 0;
}

int sim_sched_add(struct sim_sched *s, int64_t at_ns,
                  struct MHD_Connection *conn)
{
  pthread_mutex_lock(&s->mu);
  if (s->stop) {
    pthread_mutex_unlock(&s->mu);
    return -ECANCELED;
  }
  if (s->len == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 256;
    struct sim_wake *n = realloc(s->heap, ncap * sizeof(*n));
    if (!n) {
      pthread_mutex_unlock(&s->mu);
      return -ENOMEM;
    }
    s->heap = n;
    s->cap = ncap;
  }
  s->heap[s->len] = (struct sim_wake){at_ns, conn};
  sift_up(s->heap, s->len);
  s->len++;
  /* only an earlier deadline needs to shorten the current wait */
  if (s->heap[0].conn == conn)
    pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void sim_sched_stop(struct sim_sched *s)
{
  if (!s->started)
    return;
  pthread_mutex_lock(&s->mu);
  s->stop = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s->heap);
  s->heap = NULL;
  s->len = s->cap = 0;
  s->started = false;
}

int64_t sim_sched_now_ns(void)
{
  return mono_ns();
}
