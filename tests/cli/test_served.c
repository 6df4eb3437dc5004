/* SPDX-License-Identifier: MIT */
/*
 * served: the verification's rounds on a real loop against real closed
 * ports (the TLS side is net/test_probe's and it_test_verify's): cells
 * per (binding, address), a name under a wildcard, rounds with backoff
 * until the deadline, stop, and the results put into a status model and
 * the metrics.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "served.h"

static double now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A port nothing listens on: bound, then closed. */
static unsigned short closed_port(void)
{
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static struct config_ingress ingress_of(unsigned short port)
{
  struct config_ingress in = {0};

  snprintf(in.text, sizeof(in.text), "127.0.0.1:%u", port);
  assert_int_equal(probe_parse_address(in.text, &in.addr), 0);
  in.addrlen = sizeof(struct sockaddr_in);
  return in;
}

/* gw-a: one dead address, gw-b: two, gw-c: none; certificate c1 (by id)
 * on a.example.com everywhere and on *.w.example.com on gw-b. */
struct world {
  struct config cfg;
  struct config_gateway gw[3];
  struct config_ingress in[3];
  struct config_certificate cert[1];
  struct config_binding b[4];
};

static void make_world(struct world *w)
{
  memset(w, 0, sizeof(*w));
  for (int i = 0; i < 3; i++)
    w->in[i] = ingress_of(closed_port());
  w->gw[0] = (struct config_gateway){
      .name = "gw-a", .ingress = &w->in[0], .ningress = 1};
  w->gw[1] = (struct config_gateway){
      .name = "gw-b", .ingress = &w->in[1], .ningress = 2};
  w->gw[2] = (struct config_gateway){.name = "gw-c"};
  w->cert[0] = (struct config_certificate){
      .name = "c1", .id = "a27be832f2e9441c8127fe48e3b5ac67"};
  w->b[0] = (struct config_binding){0, 0, "a.example.com", false, 1, 1};
  w->b[1] = (struct config_binding){0, 1, "a.example.com", false, 1, 1};
  w->b[2] = (struct config_binding){0, 1, "*.w.example.com", false, 1, 1};
  w->b[3] = (struct config_binding){0, 2, "a.example.com", false, 1, 1};
  w->cfg.gateways = w->gw;
  w->cfg.ngateways = 3;
  w->cfg.certificates = w->cert;
  w->cfg.ncertificates = 1;
  w->cfg.bindings = w->b;
  w->cfg.nbindings = 4;
  w->cfg.policy.confirm_timeout_s = 60;
}

static void on_done(struct served *s, void *arg)
{
  (void)s;
  ++*(int *)arg;
}

/* Run a check to its end; stop_at_start: served_stop right after start. */
static struct served *run(const struct config *cfg, uint64_t deadline_ms,
                          bool stop_at_start)
{
  struct served_opts o = {.deadline_ms = deadline_ms};
  uv_loop_t loop;
  struct served *s;
  int done = 0;

  assert_int_equal(uv_loop_init(&loop), 0);
  s = served_new(&loop, cfg, &o);
  assert_non_null(s);
  assert_int_equal(served_start(s, on_done, &done), 0);
  assert_int_equal(done, 0); /* never from inside served_start */
  if (stop_at_start)
    served_stop(s);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(done, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
  return s;
}

static void test_rounds_until_the_deadline(void **state)
{
  struct world w;
  struct served *s;
  const struct served_cell *c;
  size_t n;
  double t0;

  (void)state;
  make_world(&w);
  t0 = now_ms();
  s = run(&w.cfg, 1400, false);
  c = served_cells(s, &n);
  /* one per (binding, address): gw-c has none */
  assert_int_equal(n, 5);
  assert_string_equal(c[0].sni, "a.example.com");
  assert_string_equal(c[3].sni, "certbind-verify.w.example.com");
  assert_int_equal(c[1].column, 1);
  assert_int_equal(c[2].column, 2);
  /* the first round, then one 500 ms later (unless the first took 900 ms
   * on a busy machine); a third, 1 s after the second, would end past the
   * deadline */
  assert_true(served_rounds(s) >= 1 && served_rounds(s) <= 2);
  if (served_rounds(s) == 2)
    assert_true(now_ms() - t0 >= 500);
  for (size_t i = 0; i < n; i++) {
    /* without a pass nothing says a binding is not in place */
    assert_true(c[i].bound);
    assert_int_equal(c[i].verdict, PROBE_VERDICT_UNREACHABLE);
    assert_int_equal(c[i].attempts, served_rounds(s));
    assert_false(c[i].settled);
    assert_string_equal(c[i].last.error, "connect: connection refused");
    assert_true(c[i].checked > 0);
  }
  assert_false(served_all_ok(s));
  assert_false(served_stopped(s));
  served_free(s);
}

static void test_stop_and_nothing_to_check(void **state)
{
  struct world w;
  struct served *s;
  size_t n;

  (void)state;
  make_world(&w);
  s = run(&w.cfg, 60000, true);
  assert_true(served_stopped(s));
  assert_false(served_all_ok(s));
  assert_true(served_rounds(s) <= 1);
  served_free(s);
  /* no gateway with ingress: no cell, done at once, all ok */
  w.gw[0].ningress = w.gw[1].ningress = 0;
  s = run(&w.cfg, 0, false);
  served_cells(s, &n);
  assert_int_equal(n, 0);
  assert_true(served_all_ok(s));
  served_free(s);
}

static void add_status_binding(struct status *st, const char *cert,
                               const char *gateway, const char *domain)
{
  struct status_binding *b;

  st->bindings =
      realloc(st->bindings, (st->nbindings + 1) * sizeof(*st->bindings));
  assert_non_null(st->bindings);
  b = &st->bindings[st->nbindings++];
  memset(b, 0, sizeof(*b));
  b->account = strdup("acct");
  b->certificate = strdup(cert);
  b->certificate_id = strdup("a27be832f2e9441c8127fe48e3b5ac67");
  b->gateway = strdup(gateway);
  b->instance_id = strdup("i");
  b->domain = strdup(domain);
}

static void test_into_status_and_metrics(void **state)
{
  struct world w;
  struct status st = {0};
  struct metrics m = {0};
  struct served *s;

  (void)state;
  make_world(&w);
  s = run(&w.cfg, 1, false);
  add_status_binding(&st, "c1", "gw-a", "a.example.com");
  add_status_binding(&st, "c1", "gw-b", "*.w.example.com");
  add_status_binding(&st, "c1", "gw-c", "a.example.com");
  /* another certificate's binding (a detach): not judged */
  add_status_binding(&st, "old", "gw-b", "a.example.com");
  for (int twice = 0; twice < 2; twice++) {
    assert_int_equal(served_to_status(s, &st), 0);
    assert_int_equal(st.bindings[0].nserved, 1);
    assert_string_equal(st.bindings[0].served[0].address, w.in[0].text);
    assert_string_equal(st.bindings[0].served[0].result, "unreachable");
    assert_string_equal(st.bindings[0].served[0].error,
                        "connect: connection refused");
    assert_null(st.bindings[0].served[0].sha256);
    assert_int_equal(st.bindings[1].nserved, 2);
    assert_string_equal(st.bindings[1].served[1].address, w.in[2].text);
    assert_int_equal(st.bindings[2].nserved, 0);
    assert_int_equal(st.bindings[3].nserved, 0);
  }
  assert_int_equal(served_to_metrics(s, &m), 0);
  assert_true(m.served_checked);
  assert_int_equal(m.served_mismatches, 0);
  assert_int_equal(m.nserved, 0); /* no leaf was served */
  metrics_free(&m);
  status_free(&st);
  served_free(s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rounds_until_the_deadline),
      cmocka_unit_test(test_stop_and_nothing_to_check),
      cmocka_unit_test(test_into_status_and_metrics),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
