/* SPDX-License-Identifier: MIT */
/*
 * harness: run one pass against the fake transport (see harness.h).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HEAD_FMT                                                               \
  "version: 1\n"                                                               \
  "accounts:\n"                                                                \
  "  acct:\n"                                                                  \
  "    region: ap-southeast-1\n"                                               \
  "    project_id: " HARNESS_PROJECT "\n"                                      \
  "    endpoint: https://apig.test\n"                                          \
  "    auth: {method: token, token: {file: %s/token}}\n"                       \
  "    limits: {requests_per_second: 1000, burst: 100, max_in_flight: 32}\n"   \
  "gateways:\n"                                                                \
  "  g1: {account: acct, instance_id: " HARNESS_GW1 "}\n"                      \
  "  g2: {account: acct, instance_id: " HARNESS_GW2 "}\n"

static uint64_t clock_ms(void *arg)
{
  const struct harness *h = arg;

  return (uv_hrtime() - h->t0_ns) * h->k / 1000000u;
}

/* Real ms for d clock ms, rounded up: the timer never ends before the
 * clock has moved d. */
static uint64_t clock_timer_ms(void *arg, uint64_t d)
{
  const struct harness *h = arg;

  return (d + h->k - 1) / h->k;
}

/* The wall clock moves with the fast clock, from the real time at setup. */
static int64_t clock_unix_ms(void *arg)
{
  const struct harness *h = arg;

  return h->unix0_ms + (int64_t)clock_ms(arg);
}

uint64_t harness_now(const struct harness *h)
{
  return clock_ms((void *)h);
}

void harness_slow_clock(struct harness *h, uint64_t k)
{
  assert_true(k >= 1);
  assert_false(h->started);
  if (getenv("CERTBIND_TEST_CLOCK_K"))
    return;
  /* the clock restarts at 0: nothing has read it yet */
  h->t0_ns = uv_hrtime();
  h->k = k;
}

static void on_before_answer(void *arg, struct fake_call *c)
{
  struct harness *h = arg;

  if (h->before_answer)
    h->before_answer(h, c);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  size_t len = strlen(text);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  assert_int_equal(close(fd), 0);
}

void harness_setup(struct harness *h)
{
  const char *lvl = getenv("CERTBIND_TEST_LOG");
  char path[64];

  memset(h, 0, sizeof(*h));
  /* CERTBIND_TEST_CLOCK_K: another speed-up, e.g. a huge one to see that
   * the assertions hold on a machine that is slow against the clock */
  h->k = getenv("CERTBIND_TEST_CLOCK_K")
             ? strtoull(getenv("CERTBIND_TEST_CLOCK_K"), NULL, 10)
             : HARNESS_K;
  assert_true(h->k >= 1);
  h->t0_ns = uv_hrtime();
  h->unix0_ms = (int64_t)time(NULL) * 1000;
  h->clock = (struct pass_clock){.mono_ms = clock_ms,
                                 .unix_ms = clock_unix_ms,
                                 .timer_ms = clock_timer_ms,
                                 .arg = h};
  assert_int_equal(uv_loop_init(&h->loop), 0);
  assert_int_equal(fake_net_init(&h->net, &h->loop), 0);
  world_init(&h->world);
  h->net.now = clock_ms;
  h->net.timer_ms = clock_timer_ms;
  h->net.clock_arg = h;
  h->net.script = world_script;
  h->net.script_arg = &h->world;
  h->net.before_answer = on_before_answer;
  h->net.before_answer_arg = h;
  h->net.token = HARNESS_TOKEN;

  snprintf(h->dir, sizeof(h->dir), "/tmp/cbpass-XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  snprintf(path, sizeof(path), "%s/token", h->dir);
  write_file(path, HARNESS_TOKEN "\n", 0600);

  /* Every log line is formatted (the code runs) and kept, to be searched
   * for the token at the end; shown only on request. */
  h->log_out = lvl ? stderr : open_memstream(&h->log_text, &h->log_len);
  assert_non_null(h->log_out);
  log_init(&h->log, h->log_out);
  h->log.level = LOG_DEBUG;
  if (lvl)
    assert_int_equal(log_parse_level(lvl, &h->log.level), 0);
}

void harness_load(struct harness *h, const char *yaml)
{
  struct config_diag diag = {0};
  char path[64];
  char *text = NULL;
  int rc;

  assert_true(asprintf(&text, HEAD_FMT "%s", h->dir, yaml) > 0);
  snprintf(path, sizeof(path), "%s/bindings.yaml", h->dir);
  write_file(path, text, 0644);
  free(text);
  rc = config_load(path, &h->cfg, &diag);
  for (size_t i = 0; i < diag.count; i++)
    print_message("config: %s\n", diag.lines[i]);
  config_diag_free(&diag);
  assert_int_equal(rc, 0);
  h->cfg_loaded = true;
}

static void on_pass_done(struct pass *p, void *arg)
{
  struct harness *h = arg;

  (void)p;
  assert_false(h->done); /* once */
  h->done = true;
  h->done_ms = harness_now(h);
}

void harness_run(struct harness *h, const struct pass_opts *opts)
{
  struct pass_opts o = {.write = true, .command = "apply", .seed = 1};
  struct pass_deps d = {.loop = &h->loop,
                        .http = &h->net.http,
                        .cfg = &h->cfg,
                        .ledger = h->ledger,
                        .log = &h->log,
                        .clock = &h->clock};

  if (opts)
    o = *opts;
  assert_false(h->started);
  h->pass = pass_new(&d, &o);
  assert_non_null(h->pass);
  h->started = true;
  assert_int_equal(pass_start(h->pass, on_pass_done, h), 0);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  assert_true(h->done);
  assert_int_equal(h->net.in_flight, 0);
}

enum pass_outcome harness_outcome(const struct harness *h)
{
  return pass_result(h->pass)->outcome;
}

const struct pass_counts *harness_counts(const struct harness *h)
{
  return &pass_result(h->pass)->counts;
}

void harness_stop(struct harness *h)
{
  pass_stop(h->pass);
}

void harness_teardown(struct harness *h)
{
  char path[64];

  pass_free(h->pass);
  if (h->cfg_loaded)
    config_free(&h->cfg);
  fake_net_free(&h->net);
  world_free(&h->world);
  uv_run(&h->loop, UV_RUN_DEFAULT); /* close callbacks still due */
  assert_int_equal(uv_loop_close(&h->loop), 0);
  if (h->log_out != stderr) {
    assert_int_equal(fclose(h->log_out), 0);
    /* the secret never reaches a log line */
    assert_true(h->log_len > 0 || !h->started);
    assert_null(
        memmem(h->log_text, h->log_len, HARNESS_TOKEN, strlen(HARNESS_TOKEN)));
    free(h->log_text);
  }
  snprintf(path, sizeof(path), "%s/token", h->dir);
  unlink(path);
  snprintf(path, sizeof(path), "%s/bindings.yaml", h->dir);
  unlink(path);
  rmdir(h->dir);
}

const char *harness_cert_id(unsigned n)
{
  static const char *const ids[] = {
      "cert0000000000000000000000000001", "cert0000000000000000000000000002",
      "cert0000000000000000000000000003", "cert0000000000000000000000000004",
      "cert0000000000000000000000000005", "cert0000000000000000000000000006",
  };

  assert_true(n >= 1 && n <= sizeof(ids) / sizeof(ids[0]));
  return ids[n - 1];
}
