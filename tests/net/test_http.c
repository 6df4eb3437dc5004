/* SPDX-License-Identifier: MIT */
/*
 * The HTTP engine against a real HTTPS server on 127.0.0.1 (tserver, with a
 * certificate made by openssl at test time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "http.h"
#include "tserver.h"

/* File-static fixture: the servers and certificates of the whole group. */
static struct {
  char dir[64];
  char good_crt[128], good_key[128], wrong_crt[128], wrong_key[128];
  struct tserver *good;  /* cert valid for 127.0.0.1 */
  struct tserver *wrong; /* cert for another name */
  char capath[96], other_crt[128], other_key[128];
  struct tserver *other; /* cert trusted only through capath */
} W;

struct ctx {
  uv_loop_t loop;
  struct http h;
  int done;
  bool closed;
};

struct call {
  struct ctx *ctx;
  struct http_request rq;
  char url[256];
  struct curl_slist *hdrs;
  int index;
  bool done;
  long status;
  CURLcode code;
  bool maybe_sent, too_large, aborted;
  char *body;
  size_t body_len;
  char request_id[80];
  long retry_after;
  char *token;
  size_t in_flight_at_cb;
  char error[256];
};

/* ---- fixture ---------------------------------------------------------- */

static int group_setup(void **state)
{
  (void)state;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -1;
  strcpy(W.dir, "/tmp/certbind-http-XXXXXX");
  if (!mkdtemp(W.dir))
    return -1;
  snprintf(W.good_crt, sizeof W.good_crt, "%s/good.crt", W.dir);
  snprintf(W.good_key, sizeof W.good_key, "%s/good.key", W.dir);
  snprintf(W.wrong_crt, sizeof W.wrong_crt, "%s/wrong.crt", W.dir);
  snprintf(W.wrong_key, sizeof W.wrong_key, "%s/wrong.key", W.dir);
  if (tserver_make_cert(W.dir, "good", "IP:127.0.0.1,DNS:localhost") ||
      tserver_make_cert(W.dir, "wrong", "DNS:wrong.example"))
    return -1;
  /* A hashed CA directory standing in for the system store. */
  snprintf(W.capath, sizeof W.capath, "%s/capath", W.dir);
  snprintf(W.other_crt, sizeof W.other_crt, "%s/other.crt", W.capath);
  snprintf(W.other_key, sizeof W.other_key, "%s/other.key", W.dir);
  char made[128];
  snprintf(made, sizeof made, "%s/other.crt", W.dir);
  if (mkdir(W.capath, 0700) ||
      tserver_make_cert(W.dir, "other", "IP:127.0.0.1") ||
      rename(made, W.other_crt))
    return -1;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "openssl rehash '%s' >/dev/null 2>&1", W.capath);
  if (system(cmd) != 0)
    return -1;
  if (tserver_start(&W.good, W.good_crt, W.good_key) ||
      tserver_start(&W.wrong, W.wrong_crt, W.wrong_key) ||
      tserver_start(&W.other, W.other_crt, W.other_key))
    return -1;
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  tserver_stop(W.good);
  tserver_stop(W.wrong);
  tserver_stop(W.other);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", W.capath);
  if (system(cmd) != 0)
    return -1;
  unlink(W.other_key);
  unlink(W.good_crt);
  unlink(W.good_key);
  unlink(W.wrong_crt);
  unlink(W.wrong_key);
  rmdir(W.dir);
  curl_global_cleanup();
  return 0;
}

static void ctx_init(struct ctx *c, const struct http_opts *o)
{
  memset(c, 0, sizeof *c);
  assert_int_equal(uv_loop_init(&c->loop), 0);
  assert_int_equal(http_init(&c->h, &c->loop, o), 0);
}

static void on_closed(struct http *h)
{
  struct ctx *c = (struct ctx *)((char *)h - offsetof(struct ctx, h));
  c->closed = true;
}

/* Close and prove nothing is left on the loop. */
static void ctx_finish(struct ctx *c)
{
  http_close(&c->h, on_closed);
  assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
  assert_true(c->closed);
  assert_int_equal(uv_loop_close(&c->loop), 0);
}

static void run_until(struct ctx *c, int done)
{
  while (c->done < done)
    uv_run(&c->loop, UV_RUN_ONCE);
}

static void call_free(struct call *k)
{
  curl_slist_free_all(k->hdrs);
  free(k->body);
  free(k->token);
}

static void on_done(struct http_request *rq, struct http_response *rs,
                    void *arg)
{
  struct call *k = arg;

  assert_ptr_equal(rq, &k->rq);
  assert_false(k->done); /* exactly once */
  k->done = true;
  k->status = rs->status;
  k->code = rs->curl_code;
  k->maybe_sent = rs->maybe_sent;
  k->too_large = rs->too_large;
  k->aborted = rs->aborted;
  assert_non_null(rs->body);
  k->body = rs->body; /* take ownership */
  k->body_len = rs->body_len;
  rs->body = NULL;
  k->token = rs->subject_token;
  rs->subject_token = NULL;
  memcpy(k->request_id, rs->request_id, sizeof k->request_id);
  k->retry_after = rs->retry_after_s;
  snprintf(k->error, sizeof k->error, "%s", rs->error);
  k->in_flight_at_cb = http_in_flight(&k->ctx->h);
  k->ctx->done++;
}

static void call_setup(struct call *k, struct ctx *c, unsigned short port,
                       const char *method, const char *path)
{
  memset(k, 0, sizeof *k);
  k->ctx = c;
  snprintf(k->url, sizeof k->url, "https://127.0.0.1:%u%s", port, path);
  k->rq.method = method;
  k->rq.url = k->url;
}

static void submit(struct call *k)
{
  assert_int_equal(http_submit(&k->ctx->h, &k->rq, on_done, k), 0);
}

static unsigned short good_port(void)
{
  return tserver_port(W.good);
}

/* ---- tests ------------------------------------------------------------ */

static void test_concurrent_reuse(void **state)
{
  enum { N = 200 };
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt, .max_host_connections = 8};
  struct call *calls = calloc(N, sizeof *calls);
  unsigned long before = tserver_requests(W.good);
  char path[64], want[128];

  (void)state;
  assert_non_null(calls);
  ctx_init(&c, &o);
  for (int i = 0; i < N; i++) {
    snprintf(path, sizeof path, "/echo?i=%d", i);
    call_setup(&calls[i], &c, good_port(), "GET", path);
    submit(&calls[i]);
  }
  assert_int_equal(http_in_flight(&c.h), N);
  run_until(&c, N);
  for (int i = 0; i < N; i++) {
    snprintf(want, sizeof want, "m=GET ct=- expect=- x=- i=%d len=0\n", i);
    assert_int_equal(calls[i].status, 200);
    assert_int_equal(calls[i].code, CURLE_OK);
    assert_string_equal(calls[i].body, want);
    assert_int_equal(calls[i].body_len, strlen(want));
    call_free(&calls[i]);
  }
  assert_int_equal(http_in_flight(&c.h), 0);
  assert_int_equal(tserver_requests(W.good) - before, N);
  struct http_stats st;
  http_get_stats(&c.h, &st);
  assert_int_equal(st.requests, N);
  assert_int_equal(st.failures, 0);
  /* Connection reuse: at most one handshake per allowed connection. */
  assert_true(st.connects >= 1 && st.connects <= 8);
  assert_true(st.bytes_received > N * 20);
  ctx_finish(&c);
  free(calls);
}

struct debug_log {
  char text[16384];
  size_t len;
  int lines;
};

static void on_debug(void *arg, const char *text, size_t len)
{
  struct debug_log *d = arg;
  if (len < sizeof d->text - d->len - 1) {
    memcpy(d->text + d->len, text, len);
    d->len += len;
    d->text[d->len++] = '\n';
    d->text[d->len] = '\0';
  }
  d->lines++;
}

static void test_post_body_and_headers(void **state)
{
  struct ctx c;
  static struct debug_log dbg;
  struct http_opts o = {
      .ca_file = W.good_crt, .debug = on_debug, .debug_arg = &dbg};
  struct call a, b;
  char *body = malloc(4096);
  char want[256];

  (void)state;
  for (int i = 0; i < 4096; i++)
    body[i] = (char)('A' + i % 23);
  ctx_init(&c, &o);
  /* No Content-Type given: none is sent; no Expect: 100-continue. */
  call_setup(&a, &c, good_port(), "POST", "/echo?i=1");
  a.hdrs = curl_slist_append(NULL, "X-Test: s3cr3t-marker");
  a.rq.headers = a.hdrs;
  a.rq.body = body;
  a.rq.body_len = 4096;
  submit(&a);
  /* The header list is copied: freeing it now must be harmless. */
  curl_slist_free_all(a.hdrs);
  a.hdrs = NULL;
  call_setup(&b, &c, good_port(), "POST", "/echo?i=2");
  b.hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  b.rq.headers = b.hdrs;
  b.rq.body = "{}";
  b.rq.body_len = 2;
  submit(&b);
  run_until(&c, 2);
  assert_int_equal(a.status, 200);
  snprintf(want, sizeof want,
           "m=POST ct=- expect=- x=s3cr3t-marker i=1 len=4096\n");
  assert_int_equal(a.body_len, strlen(want) + 4096);
  assert_memory_equal(a.body, want, strlen(want));
  assert_memory_equal(a.body + strlen(want), body, 4096);
  if (b.status != 200)
    fail_msg("b: %d %s", (int)b.code, b.error);
  assert_int_equal(b.status, 200);
  assert_string_equal(b.body,
                      "m=POST ct=application/json expect=- x=- i=2 len=2\n{}");
  call_free(&a);
  call_free(&b);
  free(body);
  ctx_finish(&c);
  /* curl's text arrived, but never a header or a body byte. */
  assert_true(dbg.lines > 0);
  assert_null(strstr(dbg.text, "s3cr3t"));
  assert_null(strstr(dbg.text, "X-Test"));
  assert_null(strstr(dbg.text, "ABCDEFG"));
}

/* Taken headers reach the server like copied ones (the Content-Type
 * found in them, Expect: still off), and are gone after the call whatever
 * it returned: NULL in the request, freed by http (LeakSanitizer). */
static void test_taken_headers(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call a, g, bad;

  (void)state;
  ctx_init(&c, &o);
  call_setup(&a, &c, good_port(), "POST", "/echo?i=3");
  a.rq.headers = curl_slist_append(NULL, "Content-Type: application/json");
  a.rq.headers = curl_slist_append(a.rq.headers, "X-Test: taken-marker");
  a.rq.take_headers = true;
  a.rq.body = "{}";
  a.rq.body_len = 2;
  submit(&a);
  assert_null(a.rq.headers);
  call_setup(&g, &c, good_port(), "GET", "/echo?i=4");
  g.rq.headers = curl_slist_append(NULL, "X-Test: get-marker");
  g.rq.take_headers = true;
  submit(&g);
  assert_null(g.rq.headers);
  call_setup(&bad, &c, good_port(), "get", "/echo"); /* refused method */
  bad.rq.headers = curl_slist_append(NULL, "X-Test: refused");
  bad.rq.take_headers = true;
  assert_int_equal(http_submit(&c.h, &bad.rq, on_done, &bad), -EINVAL);
  assert_null(bad.rq.headers);
  run_until(&c, 2);
  assert_int_equal(a.status, 200);
  assert_string_equal(
      a.body,
      "m=POST ct=application/json expect=- x=taken-marker i=3 len=2\n{}");
  assert_int_equal(g.status, 200);
  assert_string_equal(g.body, "m=GET ct=- expect=- x=get-marker i=4 len=0\n");
  assert_false(bad.done);
  call_free(&a);
  call_free(&g);
  ctx_finish(&c);
}

static void test_body_limit(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt, .max_body = 256 * 1024};
  struct call ok, big;

  (void)state;
  ctx_init(&c, &o);
  call_setup(&ok, &c, good_port(), "GET", "/big?n=200000");
  call_setup(&big, &c, good_port(), "GET", "/big?n=300000");
  submit(&ok);
  submit(&big);
  run_until(&c, 2);
  assert_int_equal(ok.code, CURLE_OK);
  assert_int_equal(ok.body_len, 200000);
  for (size_t i = 0; i < ok.body_len; i++)
    if (ok.body[i] != (char)('a' + i % 26))
      fail_msg("byte %zu differs", i);
  assert_false(ok.too_large);
  assert_int_equal(big.code, CURLE_WRITE_ERROR);
  assert_true(big.too_large);
  assert_int_equal(big.body_len, 0);
  assert_non_null(strstr(big.error, "over 262144 bytes"));
  call_free(&ok);
  call_free(&big);
  ctx_finish(&c);
}

/* Each completion submits the next request from inside its callback. */
struct chain {
  struct ctx *c;
  struct call calls[30];
  int next;
};

static void on_chain_done(struct http_request *rq, struct http_response *rs,
                          void *arg)
{
  struct chain *ch = arg;
  struct call *k = &ch->calls[ch->next - 1];

  k->ctx = ch->c;
  on_done(rq, rs, k);
  assert_int_equal(k->in_flight_at_cb, 0); /* already removed */
  if (ch->next < 30) {
    struct call *n = &ch->calls[ch->next++];
    call_setup(n, ch->c, good_port(), "GET", "/echo?i=7");
    assert_int_equal(http_submit(&ch->c->h, &n->rq, on_chain_done, ch), 0);
  }
}

static void test_submit_from_callback(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct chain *ch = calloc(1, sizeof *ch);

  (void)state;
  ctx_init(&c, &o);
  ch->c = &c;
  call_setup(&ch->calls[0], &c, good_port(), "GET", "/echo?i=7");
  ch->next = 1;
  assert_int_equal(http_submit(&c.h, &ch->calls[0].rq, on_chain_done, ch), 0);
  run_until(&c, 30);
  for (int i = 0; i < 30; i++) {
    assert_int_equal(ch->calls[i].status, 200);
    call_free(&ch->calls[i]);
  }
  struct http_stats st;
  http_get_stats(&c.h, &st);
  assert_int_equal(st.requests, 30);
  assert_int_equal(st.connects, 1); /* sequential: one kept-alive link */
  ctx_finish(&c);
  free(ch);
}

static void test_reset_is_maybe_sent(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call k;
  unsigned long before = tserver_requests(W.good);

  (void)state;
  ctx_init(&c, &o);
  call_setup(&k, &c, good_port(), "POST", "/reset");
  k.rq.body = "{\"domains\":[]}";
  k.rq.body_len = strlen(k.rq.body);
  submit(&k);
  run_until(&c, 1);
  assert_int_not_equal(k.code, CURLE_OK);
  assert_int_equal(k.status, 0);
  assert_true(k.maybe_sent);
  assert_false(k.aborted);
  assert_true(k.error[0] != '\0');
  assert_true(tserver_requests(W.good) - before >= 1);
  call_free(&k);
  ctx_finish(&c);
}

/* A bound but not listening socket: connection refused, port reserved. */
static int closed_port(unsigned short *port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof sa;

  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static void test_refused_not_sent(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call k;
  unsigned short port;
  int fd = closed_port(&port);

  (void)state;
  ctx_init(&c, &o);
  call_setup(&k, &c, port, "POST", "/echo");
  submit(&k);
  run_until(&c, 1);
  assert_int_equal(k.code, CURLE_COULDNT_CONNECT);
  assert_int_equal(k.status, 0);
  assert_false(k.maybe_sent);
  call_free(&k);
  ctx_finish(&c);
  close(fd);
}

static void test_untrusted_fails_closed(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = NULL}; /* system store only */
  struct call k, m, plain;
  unsigned long good0 = tserver_requests(W.good);
  unsigned long wrong0 = tserver_requests(W.wrong);
  char url[128];

  (void)state;
  ctx_init(&c, &o);
  call_setup(&k, &c, good_port(), "POST", "/echo");
  submit(&k);
  /* Trusted issuer but a name that is not 127.0.0.1. */
  call_setup(&m, &c, tserver_port(W.wrong), "POST", "/echo");
  m.rq.ca_file = W.wrong_crt;
  submit(&m);
  /* Plain HTTP is refused before any connection. */
  call_setup(&plain, &c, good_port(), "GET", "/echo");
  snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", good_port());
  strcpy(plain.url, url);
  submit(&plain);
  run_until(&c, 3);
  assert_int_equal(k.code, CURLE_PEER_FAILED_VERIFICATION);
  assert_false(k.maybe_sent);
  assert_int_equal(m.code, CURLE_PEER_FAILED_VERIFICATION);
  assert_false(m.maybe_sent);
  assert_int_equal(plain.code, CURLE_UNSUPPORTED_PROTOCOL);
  assert_false(plain.maybe_sent);
  /* Nothing reached a handler. */
  assert_int_equal(tserver_requests(W.good), good0);
  assert_int_equal(tserver_requests(W.wrong), wrong0);
  call_free(&k);
  call_free(&m);
  call_free(&plain);
  ctx_finish(&c);
}

/* ca_file is ADDED to the store (ca_path stands in for /etc/ssl/certs). */
static void test_ca_file_adds_anchor(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt, .ca_path = W.capath};
  struct call a, b;

  (void)state;
  ctx_init(&c, &o);
  call_setup(&a, &c, good_port(), "GET", "/echo?i=1");
  call_setup(&b, &c, tserver_port(W.other), "GET", "/echo?i=2");
  submit(&a);
  submit(&b);
  run_until(&c, 2);
  assert_int_equal(a.status, 200);
  if (b.status != 200)
    fail_msg("b: %d %s", (int)b.code, b.error);
  assert_int_equal(b.status, 200);
  call_free(&a);
  call_free(&b);
  ctx_finish(&c);
}

static void copy_file(const char *from, const char *to)
{
  assert_int_equal(tserver_replace_file(from, to), 0);
}

/* One GET on a fresh connection (the previous one is dropped by /reset
 * first): its curl code. */
static CURLcode get_on_new_connection_err(struct ctx *c, int *done, char *error,
                                          size_t error_len)
{
  struct call r, k;
  CURLcode code;

  call_setup(&r, c, good_port(), "GET", "/reset");
  submit(&r);
  run_until(c, ++*done);
  call_setup(&k, c, good_port(), "GET", "/echo");
  submit(&k);
  run_until(c, ++*done);
  code = k.code;
  if (code == CURLE_OK)
    assert_int_equal(k.status, 200);
  if (error)
    snprintf(error, error_len, "%s", k.error);
  call_free(&r);
  call_free(&k);
  return code;
}

static CURLcode get_on_new_connection(struct ctx *c, int *done)
{
  return get_on_new_connection_err(c, done, NULL, 0);
}

/* A CA file replaced while the engine runs (a rotated anchor) is what the
 * next new connection trusts, with no restart; a removed one fails closed. */
static void test_ca_file_change_seen_by_new_connections(void **state)
{
  char ca[160], err[256];
  struct ctx c;
  struct http_stats st;
  int done = 0;

  (void)state;
  snprintf(ca, sizeof ca, "%s/rotating-ca.crt", W.dir);
  copy_file(W.good_crt, ca);
  struct http_opts o = {.ca_file = ca, .ca_path = W.capath};
  ctx_init(&c, &o);
  assert_int_equal(get_on_new_connection(&c, &done), CURLE_OK);
  assert_int_equal(get_on_new_connection(&c, &done), CURLE_OK);
  copy_file(W.wrong_crt, ca); /* no longer trusts the server */
  assert_int_equal(get_on_new_connection(&c, &done),
                   CURLE_PEER_FAILED_VERIFICATION);
  copy_file(W.good_crt, ca);
  assert_int_equal(get_on_new_connection(&c, &done), CURLE_OK);
  assert_int_equal(unlink(ca), 0);
  assert_int_equal(get_on_new_connection_err(&c, &done, err, sizeof err),
                   CURLE_SSL_CACERT_BADFILE);
  /* the error names the file and why */
  assert_non_null(strstr(err, ca));
  assert_non_null(strstr(err, "No such file"));
  http_get_stats(&c.h, &st);
  assert_true(st.connects >= 5);
  ctx_finish(&c);
}

/* Connections and TLS sessions belong to a trust domain (the CA file):
 * a request naming a CA file that does not trust the server neither
 * reuses the connection another file verified nor resumes its session.
 * Within a domain, a new connection resumes the session (tserver issues
 * TLS 1.3 tickets), and all easy handles share it. */
static void test_trust_domains_do_not_share(void **state)
{
  struct ctx c;
  static struct debug_log dbg;
  struct http_opts o = {
      .ca_file = W.good_crt, .debug = on_debug, .debug_arg = &dbg};
  struct call a, b;
  int done = 0;

  (void)state;
  ctx_init(&c, &o);
  call_setup(&a, &c, good_port(), "GET", "/echo?i=1");
  submit(&a);
  run_until(&c, ++done);
  assert_int_equal(a.status, 200);
  call_setup(&b, &c, good_port(), "GET", "/echo?i=2");
  b.rq.ca_file = W.wrong_crt;
  submit(&b);
  run_until(&c, ++done);
  assert_int_equal(b.code, CURLE_PEER_FAILED_VERIFICATION);
  assert_false(b.maybe_sent);
  dbg.len = 0;
  dbg.text[0] = '\0';
  unsigned long resumed = tserver_resumed(W.good);
  struct http_stats st0, st1;
  http_get_stats(&c.h, &st0);
  assert_int_equal(get_on_new_connection(&c, &done), CURLE_OK);
  if (!strstr(dbg.text, "SSL re-using session ID"))
    fail_msg("no resumption:\n%s", dbg.text);
  /* and the server took it: every new connection since was resumed */
  http_get_stats(&c.h, &st1);
  assert_true(st1.connects > st0.connects);
  assert_int_equal(tserver_resumed(W.good) - resumed,
                   st1.connects - st0.connects);
  call_free(&a);
  call_free(&b);
  ctx_finish(&c);
}

/* A burst of new connections resumes the one cached TLS 1.3 session on
 * every one of them, not only on those that start before the first of them
 * has finished its handshake (OpenSSL would mark the session single-use
 * then; http.c keep_tls13_session). */
static void test_burst_resumes_every_connection(void **state)
{
  enum { N = 64 };
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call first, *calls = calloc(N, sizeof *calls);
  unsigned long resumed0;
  struct http_stats st;

  (void)state;
  assert_non_null(calls);
  ctx_init(&c, &o);
  call_setup(&first, &c, good_port(), "GET", "/echo?i=0");
  submit(&first);
  run_until(&c, 1); /* a full handshake; its ticket is cached */
  assert_int_equal(first.status, 200);
  resumed0 = tserver_resumed(W.good);
  /* all at once and slow, so each needs a connection of its own */
  for (int i = 0; i < N; i++) {
    call_setup(&calls[i], &c, good_port(), "GET", "/slow?ms=300");
    submit(&calls[i]);
  }
  run_until(&c, 1 + N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(calls[i].status, 200);
    call_free(&calls[i]);
  }
  http_get_stats(&c.h, &st);
  /* one of them may take the first connection, now idle */
  assert_true(st.connects >= N && st.connects <= 1 + N);
  assert_int_equal(tserver_resumed(W.good) - resumed0, st.connects - 1);
  call_free(&first);
  ctx_finish(&c);
  free(calls);
}

/* `openssl s_server -www` for protocol VERSION ("-tls1_2"), on a port of
 * its choosing: its page says whether the connection's session was "New"
 * or "Reused", and it closes every connection after its answer. Returns
 * the port (0 on failure). stop_s_server (the test's teardown, so that a
 * failed assertion does not leave it running) ends it. */
static pid_t s_server_pid = -1;

static unsigned short start_s_server(const char *version)
{
  int fds[2];
  char line[128];
  unsigned port = 0;
  FILE *out;

  if (pipe(fds) < 0)
    return 0;
  s_server_pid = fork();
  if (s_server_pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(fds[1], STDOUT_FILENO);
    if (null >= 0) {
      dup2(null, STDERR_FILENO);
      close(null);
    }
    close(fds[0]);
    close(fds[1]);
    execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", version,
           "-www", "-cert", W.good_crt, "-key", W.good_key, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  out = fdopen(fds[0], "r");
  while (out && fgets(line, sizeof line, out))
    if (sscanf(line, "ACCEPT 127.0.0.1:%u", &port) == 1)
      break;
  if (out)
    fclose(out); /* the server writes nothing more to stdout */
  return (unsigned short)port;
}

static int stop_s_server(void **state)
{
  (void)state;
  if (s_server_pid > 0) {
    kill(s_server_pid, SIGTERM);
    waitpid(s_server_pid, NULL, 0);
  }
  s_server_pid = -1;
  return 0;
}

/* TLS 1.2 sessions are still cached at the end of their handshake
 * (keep_tls13_session keeps the client cache mode for them). */
static void test_tls12_session_resumed(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  unsigned short port = start_s_server("-tls1_2");

  (void)state;
  assert_true(port > 0);
  ctx_init(&c, &o);
  for (int i = 0; i < 3; i++) {
    struct call k;
    call_setup(&k, &c, port, "GET", "/");
    submit(&k);
    run_until(&c, i + 1);
    assert_int_equal(k.status, 200);
    assert_non_null(strstr(k.body, "TLSv1.2"));
    if (!strstr(k.body, i == 0 ? "\nNew, " : "\nReused, "))
      fail_msg("request %d:\n%s", i, k.body);
    call_free(&k);
  }
  ctx_finish(&c);
}

static void test_timeouts(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt,
                        .connect_timeout_ms = 300,
                        .total_timeout_ms = 400};
  struct call slow, silent;
  unsigned short port;
  int fd = closed_port(&port);

  (void)state;
  /* Listens but never speaks TLS: the handshake times out. */
  assert_int_equal(listen(fd, 8), 0);
  ctx_init(&c, &o);
  call_setup(&slow, &c, good_port(), "POST", "/slow?ms=4000");
  call_setup(&silent, &c, port, "POST", "/echo");
  uint64_t t0 = uv_hrtime();
  submit(&slow);
  submit(&silent);
  run_until(&c, 2);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(slow.code, CURLE_OPERATION_TIMEDOUT);
  assert_true(slow.maybe_sent); /* the server had the request */
  assert_int_equal(silent.code, CURLE_OPERATION_TIMEDOUT);
  assert_false(silent.maybe_sent); /* TLS never completed */
  assert_true(ms >= 300 && ms < 3000);
  call_free(&slow);
  call_free(&silent);
  ctx_finish(&c);
  close(fd);
}

static void test_headers_captured(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call a, b, e;

  (void)state;
  ctx_init(&c, &o);
  call_setup(&a, &c, good_port(), "POST", "/hdr");
  call_setup(&b, &c, good_port(), "GET", "/hdrdate");
  call_setup(&e, &c, good_port(), "GET", "/status?code=503");
  submit(&a);
  submit(&b);
  submit(&e);
  run_until(&c, 3);
  assert_int_equal(a.status, 201);
  assert_string_equal(a.request_id, "abc-123");
  assert_int_equal(a.retry_after, 7);
  assert_non_null(a.token);
  assert_string_equal(a.token, "tok-secret-value");
  assert_true(b.retry_after >= 25 && b.retry_after <= 31);
  assert_string_equal(b.request_id, "");
  assert_null(b.token);
  assert_int_equal(e.status, 503);
  assert_int_equal(e.code, CURLE_OK);
  assert_true(e.maybe_sent);
  assert_int_equal(e.retry_after, -1);
  assert_string_equal(e.body, "{\"error_code\":\"APIG.9999\",\"error_msg\":"
                              "\"System error\"}");
  call_free(&a);
  call_free(&b);
  call_free(&e);
  ctx_finish(&c);
}

/* CERTBIND_TEST_TIME_SCALE (e.g. 10 under valgrind) stretches the bounds
 * that assume native speed. */
static unsigned time_scale(void)
{
  const char *s = getenv("CERTBIND_TEST_TIME_SCALE");
  unsigned long v = s ? strtoul(s, NULL, 10) : 1;
  return v >= 1 && v <= 100 ? (unsigned)v : 1;
}

/* Aborts every transfer once the server has seen all of them: they are on
 * the wire, whatever the machine's speed. */
struct abort_when_sent {
  struct ctx *c;
  unsigned long before, n;
  uint64_t aborted_ns;
};

static void on_abort_timer(uv_timer_t *t)
{
  struct abort_when_sent *a = t->data;
  if (tserver_requests(W.good) - a->before < a->n)
    return;
  a->aborted_ns = uv_hrtime();
  http_abort_all(&a->c->h);
  uv_close((uv_handle_t *)t, NULL);
}

static void test_abort_all_then_close(void **state)
{
  enum { N = 6 };
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call k[N], late;
  uv_timer_t t;

  (void)state;
  unsigned scale = time_scale();
  char slow[32];

  /* the server would answer after 60 s; stopping it ends the sleeps */
  snprintf(slow, sizeof(slow), "/slow?ms=%u", 60000 * scale);
  ctx_init(&c, &o);
  struct abort_when_sent a = {
      .c = &c, .before = tserver_requests(W.good), .n = N};
  for (int i = 0; i < N; i++) {
    call_setup(&k[i], &c, good_port(), "POST", slow);
    submit(&k[i]);
  }
  assert_int_equal(uv_timer_init(&c.loop, &t), 0);
  t.data = &a;
  assert_int_equal(uv_timer_start(&t, on_abort_timer, 5, 5), 0);
  run_until(&c, N);
  assert_true(a.aborted_ns != 0);
  /* did not wait for the answers */
  assert_true((uv_hrtime() - a.aborted_ns) / 1000000 < 30000 * scale);
  for (int i = 0; i < N; i++) {
    assert_true(k[i].aborted);
    assert_int_equal(k[i].code, CURLE_ABORTED_BY_CALLBACK);
    assert_true(k[i].maybe_sent); /* they were on the wire */
    call_free(&k[i]);
  }
  assert_int_equal(http_in_flight(&c.h), 0);
  /* Queued but never started: aborted at once, certainly not sent. */
  call_setup(&late, &c, good_port(), "POST", "/echo");
  submit(&late);
  http_abort_all(&c.h);
  assert_true(late.done);
  assert_true(late.aborted);
  assert_false(late.maybe_sent);
  call_free(&late);
  ctx_finish(&c);
  /* After close nothing is accepted. */
  assert_int_equal(http_submit(&c.h, &late.rq, on_done, &late), -ESHUTDOWN);
}

/* http_close from inside a completion callback aborts the others. */
static void on_done_close(struct http_request *rq, struct http_response *rs,
                          void *arg)
{
  struct call *k = arg;
  on_done(rq, rs, k);
  http_close(&k->ctx->h, on_closed);
}

static void test_close_from_callback(void **state)
{
  struct ctx c;
  struct http_opts o = {.ca_file = W.good_crt};
  struct call fast, slow[3];

  (void)state;
  ctx_init(&c, &o);
  for (int i = 0; i < 3; i++) {
    call_setup(&slow[i], &c, good_port(), "GET", "/slow?ms=4000");
    submit(&slow[i]);
  }
  call_setup(&fast, &c, good_port(), "GET", "/echo?i=1");
  assert_int_equal(http_submit(&c.h, &fast.rq, on_done_close, &fast), 0);
  assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
  assert_true(c.closed);
  assert_int_equal(c.done, 4);
  assert_int_equal(fast.status, 200);
  for (int i = 0; i < 3; i++) {
    assert_true(slow[i].aborted);
    call_free(&slow[i]);
  }
  call_free(&fast);
  assert_int_equal(uv_loop_close(&c.loop), 0);
}

static void test_submit_rejects(void **state)
{
  struct ctx c;
  struct call k;

  (void)state;
  ctx_init(&c, NULL);
  call_setup(&k, &c, good_port(), "get", "/echo");
  assert_int_equal(http_submit(&c.h, &k.rq, on_done, &k), -EINVAL);
  k.rq.method = "GET";
  k.rq.url = NULL;
  assert_int_equal(http_submit(&c.h, &k.rq, on_done, &k), -EINVAL);
  k.rq.url = k.url;
  k.rq.body_len = 3; /* without a body */
  assert_int_equal(http_submit(&c.h, &k.rq, on_done, &k), -EINVAL);
  assert_int_equal(http_in_flight(&c.h), 0);
  assert_false(k.done);
  ctx_finish(&c);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrent_reuse),
      cmocka_unit_test(test_post_body_and_headers),
      cmocka_unit_test(test_taken_headers),
      cmocka_unit_test(test_body_limit),
      cmocka_unit_test(test_submit_from_callback),
      cmocka_unit_test(test_reset_is_maybe_sent),
      cmocka_unit_test(test_refused_not_sent),
      cmocka_unit_test(test_untrusted_fails_closed),
      cmocka_unit_test(test_ca_file_adds_anchor),
      cmocka_unit_test(test_ca_file_change_seen_by_new_connections),
      cmocka_unit_test(test_trust_domains_do_not_share),
      cmocka_unit_test(test_burst_resumes_every_connection),
      cmocka_unit_test_teardown(test_tls12_session_resumed, stop_s_server),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_headers_captured),
      cmocka_unit_test(test_abort_all_then_close),
      cmocka_unit_test(test_close_from_callback),
      cmocka_unit_test(test_submit_rejects),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
