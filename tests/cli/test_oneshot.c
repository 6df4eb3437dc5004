/* SPDX-License-Identifier: MIT */
/*
 * oneshot: the loop every API command runs on. Real signals are sent to
 * this process; a request held open by a server that never answers (a
 * listening socket nobody accepts on: curl waits for the TLS handshake up
 * to its 10 s connect timeout) shows whether what is in flight is aborted.
 * Also state_dir/lock and the ledger opening.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "oneshot.h"
#include "statefile.h"

#define DRAIN_MS 300

struct fixture {
  struct oneshot_loop l;
  struct log log;
  FILE *logf;
  char *logbuf;
  size_t loglen;
  int listen_fd;
  char url[64];
  struct http_request rq;
  uv_timer_t kick; /* sends the first signal once the request is out */
  bool drain;      /* the owner drains on stop (else: a second signal) */
  int stops, stop_signum;
  uint64_t stop_ms;
  int done;
  bool aborted;
  uint64_t done_ms;
  char dir[64];
};

/* A TCP port that accepts connections (the kernel's backlog) and never
 * says anything. */
static int silent_server(char url[64])
{
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  assert_true(fd >= 0);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 8), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(url, 64, "https://127.0.0.1:%u/", ntohs(sa.sin_port));
  return fd;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->logf = open_memstream(&f->logbuf, &f->loglen);
  assert_non_null(f->logf);
  log_init(&f->log, f->logf);
  f->log.format = LOG_FORMAT_TEXT;
  f->log.color = false;
  f->listen_fd = silent_server(f->url);
  strcpy(f->dir, "/tmp/test_oneshot.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static void remove_dir(const char *dir)
{
  char cmd[128];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static int teardown(void **state)
{
  struct fixture *f = *state;

  fclose(f->logf);
  free(f->logbuf);
  close(f->listen_fd);
  remove_dir(f->dir);
  free(f);
  return 0;
}

static const char *logged(struct fixture *f)
{
  fflush(f->logf);
  return f->logbuf ? f->logbuf : "";
}

static void on_closed(uv_handle_t *h)
{
  (void)h;
}

static void on_done(struct http_request *rq, struct http_response *rs,
                    void *arg)
{
  struct fixture *f = arg;

  (void)rq;
  f->done++;
  f->aborted = rs->aborted;
  f->done_ms = uv_now(&f->l.loop);
  uv_close((uv_handle_t *)&f->kick, on_closed);
  oneshot_loop_close(&f->l);
}

/* The owner's side of the first signal: a one-shot command stops its pass
 * and drains; this one either drains or sends the second signal itself. */
static void on_stop(void *arg, int signum)
{
  struct fixture *f = arg;

  f->stops++;
  f->stop_signum = signum;
  f->stop_ms = uv_now(&f->l.loop);
  if (f->drain)
    oneshot_loop_drain(&f->l);
  else
    assert_int_equal(raise(SIGINT), 0);
}

static void on_kick(uv_timer_t *t)
{
  assert_int_equal(raise(SIGTERM), 0);
  (void)t;
}

/* A loop with one request out to the silent server and SIGTERM sent
 * 100 ms later; runs until the request is over. */
static void run_with_request(struct fixture *f)
{
  assert_int_equal(oneshot_loop_init(&f->l, &f->log, on_stop, f), 0);
  f->l.drain_ms = DRAIN_MS;
  f->rq = (struct http_request){.method = "GET", .url = f->url};
  assert_int_equal(http_submit(&f->l.http, &f->rq, on_done, f), 0);
  assert_int_equal(uv_timer_init(&f->l.loop, &f->kick), 0);
  assert_int_equal(uv_timer_start(&f->kick, on_kick, 100, 0), 0);
  oneshot_loop_run(&f->l);
}

static void test_second_signal_aborts_requests_in_flight(void **state)
{
  struct fixture *f = *state;

  run_with_request(f);
  assert_int_equal(f->stops, 1); /* the second signal is not a stop */
  assert_int_equal(f->stop_signum, SIGTERM);
  assert_int_equal(f->done, 1);
  assert_true(f->aborted); /* not the connect timeout */
  assert_non_null(
      strstr(logged(f), "second signal: aborting requests in flight"));
  assert_null(strstr(logged(f), "drain deadline"));
  assert_null(strstr(logged(f), "handles still open"));
}

static void test_drain_deadline_aborts_requests_in_flight(void **state)
{
  struct fixture *f = *state;

  f->drain = true;
  run_with_request(f);
  assert_int_equal(f->stops, 1);
  assert_int_equal(f->done, 1);
  assert_true(f->aborted);
  /* not before the deadline: the requests had their time to finish */
  assert_true(f->done_ms - f->stop_ms >= DRAIN_MS);
  assert_non_null(
      strstr(logged(f), "drain deadline reached: aborting requests in flight"));
  assert_null(strstr(logged(f), "second signal"));
}

/* Closed without a signal (the pass ended): the run returns, nothing is
 * left open, and the signals are the default ones again. */
static void on_idle_close(uv_timer_t *t)
{
  struct fixture *f = t->data;

  uv_close((uv_handle_t *)t, on_closed);
  oneshot_loop_close(&f->l);
  oneshot_loop_close(&f->l); /* twice: nothing more */
}

static void test_close_ends_the_run(void **state)
{
  struct fixture *f = *state;
  struct sigaction sa;

  assert_int_equal(oneshot_loop_init(&f->l, &f->log, on_stop, f), 0);
  assert_int_equal(uv_timer_init(&f->l.loop, &f->kick), 0);
  f->kick.data = f;
  assert_int_equal(uv_timer_start(&f->kick, on_idle_close, 10, 0), 0);
  oneshot_loop_run(&f->l);
  assert_int_equal(f->stops, 0);
  assert_null(strstr(logged(f), "handles still open"));
  assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_DFL);
}

static void test_lock_dir_creates_and_holds_the_lock(void **state)
{
  struct fixture *f = *state;
  struct statelock lk = {0}, other = {0};
  char dir[96];
  struct stat st;
  pid_t holder = 0;

  snprintf(dir, sizeof(dir), "%s/state", f->dir);
  assert_int_equal(oneshot_lock_dir(&f->log, dir, true, &lk), 0);
  assert_int_equal(stat(dir, &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  /* another open file description of the lock cannot take it */
  assert_int_equal(statelock_try(dir, true, &other, &holder), -EWOULDBLOCK);
  assert_int_equal(holder, getpid());
  statelock_release(&lk);
  assert_int_equal(statelock_try(dir, true, &other, &holder), 0);
  statelock_release(&other);
  assert_null(strstr(logged(f), "state.locked"));
}

static void test_log_locked_names_the_holder(void **state)
{
  struct fixture *f = *state;

  oneshot_log_locked(&f->log, -EWOULDBLOCK, f->dir, 4242,
                     "this pass is skipped");
  assert_non_null(strstr(logged(f), "state.locked"));
  assert_non_null(strstr(logged(f), "4242"));
  /* the message is the last logfmt pair, quoted */
  assert_non_null(strstr(logged(f), ": this pass is skipped\"\n"));
}

static void write_ledger(const char *dir, const char *bytes)
{
  char path[128];

  statefile_path(path, sizeof(path), dir, LEDGER_FILE);
  assert_int_equal(statefile_write_atomic(path, bytes, strlen(bytes), 0600), 0);
}

static void test_open_ledger(void **state)
{
  struct fixture *f = *state;
  struct ledger l;

  /* none yet: an empty ledger, nothing said */
  memset(&l, 0xff, sizeof(l));
  assert_ptr_equal(oneshot_open_ledger(&f->log, f->dir, &l), &l);
  assert_int_equal(l.count, 0);
  ledger_free(&l);
  assert_null(strstr(logged(f), "ledger.unusable"));

  /* corrupt: not used (and so never written over), and said why */
  write_ledger(f->dir, "{\"version\": 1, \"entries\": [");
  assert_null(oneshot_open_ledger(&f->log, f->dir, &l));
  assert_int_equal(l.count, 0);
  assert_non_null(strstr(logged(f), "ledger.unusable"));
  assert_non_null(strstr(logged(f), "ownership unknown"));
  assert_non_null(strstr(logged(f), LEDGER_FILE));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_second_signal_aborts_requests_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_drain_deadline_aborts_requests_in_flight, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_ends_the_run, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_dir_creates_and_holds_the_lock,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_locked_names_the_holder, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_open_ledger, setup, teardown),
  };
  int rc;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
