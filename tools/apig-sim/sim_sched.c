/* SPDX-License-Identifier: MIT */
/* Event loops: each loop is one thread that owns one MHD daemon (external
 * epoll mode, its own SO_REUSEPORT listening socket) and a binary min-heap
 * of wake-up deadlines. Simulated latency never blocks the thread: a
 * handler suspends its connection and adds a deadline to its own loop's
 * heap; the loop resumes every connection that is due, then runs MHD, so a
 * wake-up costs no thread switch and due connections are resumed in
 * batches (deadlines are served in 0.25 ms ticks, never early).
 * The kernel spreads new connections over the loops' sockets. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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

static struct sim_wake heap_pop(struct sim_loop *l)
{
  struct sim_wake top = l->heap[0];
  l->heap[0] = l->heap[--l->len];
  sift_down(l->heap, l->len, 0);
  return top;
}

static bool loop_stopping(const struct sim_loop *l)
{
  return __atomic_load_n(l->stopping, __ATOMIC_ACQUIRE);
}

/* Resume what is due (everything once stopping); true if any. */
static bool resume_due(struct sim_loop *l, int64_t now)
{
  bool all = loop_stopping(l), any = false;
  while (l->len && (all || l->heap[0].at_ns <= now)) {
    MHD_resume_connection(heap_pop(l).conn);
    any = true;
  }
  return any;
}

/* Deadlines are served in ticks of this many ns: a wake-up resumes every
 * connection due in its tick at once, at most one tick late, never early. */
#define TICK_NS 250000

/* How long epoll may sleep: until the first deadline's tick ends or MHD's
 * own timeout, whichever is first; -1 = no limit. */
/* MHD 0.9.75 reports a zero timeout for as long as a TLS handshake waits
 * for the client's next flight, so a loop that obeys it spins (strace:
 * ~30 empty epoll rounds per handshake; 1,024 fresh connections then burn
 * a core). A zero after an idle round is therefore taken as this long:
 * socket events still end the wait at once, only data MHD buffered itself
 * (which MHD_run drains anyway) could wait for it. */
#define IDLE_ZERO_NS 100000

static int64_t wait_ns(struct sim_loop *l, int64_t now, bool idle)
{
  int64_t ns = -1;
  MHD_UNSIGNED_LONG_LONG mhd;
  if (MHD_get_timeout(l->daemon, &mhd) == MHD_YES)
    ns = mhd > 3600000 ? 3600000000000 : (int64_t)mhd * 1000000;
  if (ns == 0 && idle)
    ns = IDLE_ZERO_NS;
  if (l->len) {
    int64_t at = l->heap[0].at_ns;
    int64_t d = at + (TICK_NS - at % TICK_NS) % TICK_NS - now;
    d = d < 0 ? 0 : d;
    ns = ns < 0 || d < ns ? d : ns;
  }
  return ns;
}

static int wait_events(struct sim_loop *l, struct epoll_event *ev, int max,
                       int64_t ns)
{
  if (!l->no_pwait2) {
    struct timespec ts = {.tv_sec = ns / 1000000000,
                          .tv_nsec = ns % 1000000000};
    int n = epoll_pwait2(l->epfd, ev, max, ns < 0 ? NULL : &ts, NULL);
    if (n >= 0 || errno != ENOSYS)
      return n;
    l->no_pwait2 = true; /* kernel before 5.11: millisecond timeouts */
  }
  return epoll_wait(l->epfd, ev, max,
                    ns < 0 ? -1 : (int)((ns + 999999) / 1000000));
}

static void *loop_main(void *arg)
{
  struct sim_loop *l = arg;
  struct epoll_event ev[4];
  bool idle = false; /* the last wait ended with no event */
  while (!loop_stopping(l)) {
    if (resume_due(l, mono_ns())) {
      MHD_run(l->daemon);
      idle = false;
    }
    int n = wait_events(l, ev, 4, wait_ns(l, mono_ns(), idle));
    idle = n == 0;
    for (int i = 0; i < n; i++)
      if (ev[i].data.fd == l->wake_fd) {
        uint64_t v;
        if (read(l->wake_fd, &v, sizeof(v)) < 0)
          continue;
      }
    MHD_run(l->daemon);
  }
  /* stopping: hand every parked connection back to MHD, which answers
   * it (handlers no longer suspend) or closes it in MHD_stop_daemon */
  resume_due(l, mono_ns());
  MHD_run(l->daemon);
  return NULL;
}

int sim_loop_start(struct sim_loop *l, struct MHD_Daemon *daemon,
                   bool *stopping)
{
  l->daemon = daemon;
  l->stopping = stopping;
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
  int rc = l->epfd < 0 || l->wake_fd < 0 || !di ? -EIO : 0;
  struct epoll_event ev = {.events = EPOLLIN};
  if (!rc) {
    ev.data.fd = di->epoll_fd;
    rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) ? -errno : 0;
  }
  if (!rc) {
    ev.data.fd = l->wake_fd;
    rc = epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) ? -errno : 0;
  }
  if (!rc)
    rc = -pthread_create(&l->thread, NULL, loop_main, l);
  if (rc) {
    if (l->epfd >= 0)
      close(l->epfd);
    if (l->wake_fd >= 0)
      close(l->wake_fd);
    l->epfd = l->wake_fd = -1;
    return rc;
  }
  l->started = true;
  return 0;
}

int sim_loop_add(struct sim_loop *l, int64_t at_ns, struct MHD_Connection *conn)
{
  if (loop_stopping(l))
    return -ECANCELED;
  if (l->len == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 256;
    struct sim_wake *n = realloc(l->heap, ncap * sizeof(*n));
    if (!n)
      return -ENOMEM;
    l->heap = n;
    l->cap = ncap;
  }
  l->heap[l->len] = (struct sim_wake){at_ns, conn};
  sift_up(l->heap, l->len);
  l->len++;
  return 0;
}

void sim_loop_stop(struct sim_loop *l)
{
  if (l->started) {
    uint64_t one = 1;
    /* the caller set *stopping first; the write only ends the wait */
    if (write(l->wake_fd, &one, sizeof(one)) < 0) {
      /* an eventfd write fails only on overflow: it is awake anyway */
    }
    pthread_join(l->thread, NULL);
    l->started = false;
  }
  if (l->epfd >= 0)
    close(l->epfd);
  if (l->wake_fd >= 0)
    close(l->wake_fd);
  l->epfd = l->wake_fd = -1;
  free(l->heap);
  l->heap = NULL;
  l->len = l->cap = 0;
}

int64_t sim_sched_now_ns(void)
{
  return mono_ns();
}
