/* SPDX-License-Identifier: MIT */
/*
 * probe: TLS handshakes on the loop against real servers started by the
 * test on loopback (a thread per connection, OpenSSL, certificates made
 * here with OpenSSL): the leaf read, SNI, refused, stalled, reset, a
 * flood, expired and self-signed leaves, a 100 KB chain, IPv6, the bound
 * of 32 at once and many names on dead addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "probe.h"

/* CERTBIND_TEST_TIME_SCALE (e.g. 10 under valgrind) stretches the upper
 * bounds on time, never the lower ones. */
static double scaled_ms(double ms)
{
  const char *s = getenv("CERTBIND_TEST_TIME_SCALE");
  double k = s ? atof(s) : 1;

  return ms * (k > 1 ? k : 1);
}

static double now_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- certificates --------------------------------------------------- */

struct tcert {
  EVP_PKEY *key;
  X509 *x;
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;

  X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  assert_non_null(ext);
  assert_int_equal(X509_add_ext(x, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

/* Self-signed (EC P-256), CN=cn, SAN DNS:cn, valid from now+nb_s to
 * now+na_s; comment (NULL: none) of comment_len bytes makes it fat. */
static struct tcert make_cert(const char *cn, long serial, long nb_s, long na_s,
                              size_t comment_len)
{
  struct tcert c = {0};
  X509_NAME *name;
  char san[300];
  time_t now = time(NULL);

  c.key = EVP_EC_gen("P-256");
  assert_non_null(c.key);
  c.x = X509_new();
  assert_non_null(c.x);
  X509_set_version(c.x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial);
  /* one "now" for both ends: two clock reads can straddle a second (seen
   * under valgrind), and a test checks the span exactly */
  X509_time_adj(X509_getm_notBefore(c.x), nb_s, &now);
  X509_time_adj(X509_getm_notAfter(c.x), na_s, &now);
  X509_set_pubkey(c.x, c.key);
  name = X509_get_subject_name(c.x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(c.x, name);
  snprintf(san, sizeof(san), "DNS:%s", cn);
  add_ext(c.x, c.x, NID_subject_alt_name, san);
  if (comment_len) {
    char *comment = malloc(comment_len + 1);

    assert_non_null(comment);
    memset(comment, 'x', comment_len);
    comment[comment_len] = '\0';
    add_ext(c.x, c.x, NID_netscape_comment, comment);
    free(comment);
  }
  assert_true(X509_sign(c.x, c.key, EVP_sha256()) > 0);
  return c;
}

static void free_cert(struct tcert *c)
{
  X509_free(c->x);
  EVP_PKEY_free(c->key);
}

static void sha256_of(X509 *x, unsigned char out[32])
{
  unsigned int len = 0;

  assert_int_equal(X509_digest(x, EVP_sha256(), out, &len), 1);
}

/* ---- the test server ---------------------------------------------------
 */

enum mode {
  M_TLS,    /* a handshake: the certificate chosen by SNI */
  M_DELAY,  /* hold 300 ms after accept (counted), then M_TLS */
  M_SILENT, /* accept, read, never answer */
  M_RESET,  /* read the ClientHello, then reset */
  M_FLOOD,  /* send 10 MB of bytes that are no TLS */
};

#define MAX_NAMES 4

struct server {
  int fd;
  int family;
  unsigned short port;
  enum mode mode;
  SSL_CTX *def;                 /* the certificate for any other name */
  const char *names[MAX_NAMES]; /* SNI → ctxs[i] */
  SSL_CTX *ctxs[MAX_NAMES];
  size_t nnames;
  bool strict; /* an unknown name: alert unrecognized_name */
  pthread_t thread;
  atomic_bool stop;
  atomic_int live, current, peak;
  atomic_long accepted, flooded;
};

struct handler {
  struct server *s;
  int fd;
};

static SSL_CTX *server_ctx(struct tcert *leaf, struct tcert *extra, int nextra)
{
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

  assert_non_null(ctx);
  assert_int_equal(SSL_CTX_use_certificate(ctx, leaf->x), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(ctx, leaf->key), 1);
  for (int i = 0; i < nextra; i++)
    assert_int_equal(SSL_CTX_add1_chain_cert(ctx, extra->x), 1);
  return ctx;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
  struct server *s = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

  for (size_t i = 0; name && i < s->nnames; i++)
    if (strcmp(name, s->names[i]) == 0) {
      SSL_set_SSL_CTX(ssl, s->ctxs[i]);
      return SSL_TLSEXT_ERR_OK;
    }
  if (s->strict) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

/* Wait for the client's bytes or its close, checking stop every 50 ms:
 * > 0 readable, 0 stopped. */
static int wait_readable(struct server *s, int fd)
{
  struct pollfd pfd = {.fd = fd, .events = POLLIN};

  while (!atomic_load(&s->stop))
    if (poll(&pfd, 1, 50) > 0)
      return 1;
  return 0;
}

static void handle_tls(struct server *s, int fd)
{
  SSL *ssl = SSL_new(s->def);
  struct timeval tv = {.tv_sec = 10};

  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    char b[64];

    /* until the client closes: it sends nothing */
    wait_readable(s, fd);
    (void)SSL_read(ssl, b, sizeof(b));
  }
  SSL_free(ssl);
  ERR_clear_error();
}

static void drain_until_closed(struct server *s, int fd)
{
  char b[4096];

  while (wait_readable(s, fd) > 0)
    if (read(fd, b, sizeof(b)) <= 0)
      return;
}

static void handle_reset(struct server *s, int fd)
{
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  char b[4096];

  if (wait_readable(s, fd) > 0)
    (void)read(fd, b, sizeof(b));
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void handle_flood(struct server *s, int fd)
{
  char b[65536];
  long sent = 0;

  memset(b, 0x16, sizeof(b));
  while (sent < 10L * 1024 * 1024 && !atomic_load(&s->stop)) {
    ssize_t n = send(fd, b, sizeof(b), MSG_NOSIGNAL);

    if (n <= 0)
      break;
    sent += n;
  }
  atomic_fetch_add(&s->flooded, sent);
}

static void *handler_main(void *arg)
{
  struct handler *h = arg;
  struct server *s = h->s;

  switch (s->mode) {
  case M_DELAY: {
    /* Counted while held, before the handshake: the client cannot have
     * closed such a connection, so the peak here is never more than the
     * client had open at once. */
    int cur = atomic_fetch_add(&s->current, 1) + 1;
    int peak = atomic_load(&s->peak);

    while (cur > peak && !atomic_compare_exchange_weak(&s->peak, &peak, cur))
      ;
    usleep(300000);
    atomic_fetch_sub(&s->current, 1);
    handle_tls(s, h->fd);
    break;
  }
  case M_TLS:
    handle_tls(s, h->fd);
    break;
  case M_SILENT:
    drain_until_closed(s, h->fd);
    break;
  case M_RESET:
    handle_reset(s, h->fd);
    break;
  case M_FLOOD:
    handle_flood(s, h->fd);
    break;
  }
  close(h->fd);
  atomic_fetch_sub(&s->live, 1);
  free(h);
  return NULL;
}

static void *accept_main(void *arg)
{
  struct server *s = arg;
  struct pollfd pfd = {.fd = s->fd, .events = POLLIN};

  while (!atomic_load(&s->stop)) {
    struct handler *h;
    pthread_t t;
    int fd;

    if (poll(&pfd, 1, 50) <= 0)
      continue;
    fd = accept(s->fd, NULL, NULL);
    if (fd < 0)
      continue;
    atomic_fetch_add(&s->accepted, 1);
    h = malloc(sizeof(*h));
    assert_non_null(h);
    h->s = s;
    h->fd = fd;
    atomic_fetch_add(&s->live, 1);
    if (pthread_create(&t, NULL, handler_main, h) != 0) {
      atomic_fetch_sub(&s->live, 1);
      close(fd);
      free(h);
      continue;
    }
    pthread_detach(t);
  }
  return NULL;
}

/* A listening socket on loopback (IPv4 or IPv6) with the given backlog;
 * -1 when the family is not available. */
static int listen_loopback(int family, int backlog, unsigned short *port)
{
  struct sockaddr_storage ss = {0};
  socklen_t len;
  int fd = socket(family, SOCK_STREAM, 0), one = 1;

  if (fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;

    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*a);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    len = sizeof(*a);
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return fd;
}

/* Start a server; false when the family is not available (IPv6). */
static bool server_start(struct server *s, int family, enum mode mode,
                         SSL_CTX *def)
{
  s->family = family;
  s->mode = mode;
  s->def = def;
  s->fd = listen_loopback(family, 256, &s->port);
  if (s->fd < 0)
    return false;
  if (def)
    SSL_CTX_set_tlsext_servername_callback(def, on_servername);
  if (def)
    SSL_CTX_set_tlsext_servername_arg(def, s);
  assert_int_equal(pthread_create(&s->thread, NULL, accept_main, s), 0);
  return true;
}

static void server_stop(struct server *s)
{
  atomic_store(&s->stop, true);
  pthread_join(s->thread, NULL);
  while (atomic_load(&s->live) > 0)
    usleep(10000);
  close(s->fd);
}

static struct sockaddr_storage addr_of(int family, unsigned short port)
{
  struct sockaddr_storage ss;
  char text[64];

  if (family == AF_INET)
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
  else
    snprintf(text, sizeof(text), "[::1]:%u", port);
  assert_int_equal(probe_parse_address(text, &ss), 0);
  return ss;
}

/* A port nothing listens on: bound, then closed. */
static unsigned short closed_port(void)
{
  unsigned short port;
  int fd = listen_loopback(AF_INET, 1, &port);

  assert_true(fd >= 0);
  close(fd);
  return port;
}

/* A port whose accept queue is full (backlog 0, never accepted, filled by
 * our own connects): further SYNs are dropped, a connect only times out. */
struct blackhole {
  int fd;
  int fill[4];
  unsigned short port;
};

static void blackhole_open(struct blackhole *b)
{
  struct sockaddr_storage ss;

  b->fd = listen_loopback(AF_INET, 0, &b->port);
  assert_true(b->fd >= 0);
  ss = addr_of(AF_INET, b->port);
  for (int i = 0; i < 4; i++) {
    b->fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(b->fill[i] >= 0);
    (void)connect(b->fill[i], (struct sockaddr *)&ss,
                  sizeof(struct sockaddr_in));
  }
  usleep(100000); /* the handshakes of the first ones complete */
}

static void blackhole_close(struct blackhole *b)
{
  for (int i = 0; i < 4; i++)
    close(b->fill[i]);
  close(b->fd);
}

/* ---- running probes ------------------------------------------------------
 */

struct got {
  bool done;
  struct probe_result r;
  char sni[256];
};

struct run {
  uv_loop_t loop;
  struct probe *p;
  struct got *got;
  size_t n, done;
  bool closed;
};

static void on_done(const struct probe_target *t, const struct probe_result *r,
                    void *arg)
{
  struct got *g = arg;

  assert_false(g->done);
  g->done = true;
  g->r = *r;
  snprintf(g->sni, sizeof(g->sni), "%s", t->sni ? t->sni : "");
}

static void on_closed(void *arg)
{
  *(bool *)arg = true;
}

/* Probe n targets to their end with opts o (NULL: defaults); the results
 * in got[]. */
static void probe_all(const struct probe_opts *o,
                      const struct probe_target *targets, size_t n,
                      struct got *got, unsigned *peak)
{
  /* the defaults, but with the timeouts stretched like every other upper
   * bound on time: under valgrind on a busy machine a local handshake took
   * longer than 5 s (and a starved accept thread can leave a connect in a
   * full backlog) */
  const struct probe_opts stretched = {
      .connect_timeout_ms =
          (uint64_t)scaled_ms(PROBE_DEFAULT_CONNECT_TIMEOUT_MS),
      .handshake_timeout_ms =
          (uint64_t)scaled_ms(PROBE_DEFAULT_HANDSHAKE_TIMEOUT_MS)};
  uv_loop_t loop;
  struct probe *p;
  bool closed = false;

  assert_int_equal(uv_loop_init(&loop), 0);
  p = probe_new(&loop, o ? o : &stretched);
  assert_non_null(p);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(probe_add(p, &targets[i], on_done, &got[i]), 0);
  /* nothing runs inside probe_add */
  for (size_t i = 0; i < n; i++)
    assert_false(got[i].done);
  while (probe_pending(p) > 0)
    uv_run(&loop, UV_RUN_ONCE);
  if (peak)
    *peak = probe_peak_concurrent(p);
  probe_close(p, on_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (size_t i = 0; i < n; i++)
    assert_true(got[i].done);
}

static struct got probe_one(const struct probe_opts *o,
                            const struct sockaddr_storage *addr,
                            const char *sni)
{
  struct probe_target t = {.addr = *addr, .sni = sni};
  struct got g = {0};

  probe_all(o, &t, 1, &g, NULL);
  return g;
}

/* ---- the tests ---------------------------------------------------------
 */

static void test_ok_leaf(void **state)
{
  struct tcert a = make_cert("a.example", 0x1234abcd, -3600, 86400, 0);
  SSL_CTX *ctx = server_ctx(&a, NULL, 0);
  struct server s = {0};
  struct sockaddr_storage addr;
  struct probe_want w = {.has_sha256 = true};
  unsigned char want[32];
  struct got g;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_TLS, ctx));
  addr = addr_of(AF_INET, s.port);
  g = probe_one(NULL, &addr, "a.example");
  assert_int_equal(g.r.status, PROBE_OK);
  sha256_of(a.x, want);
  assert_memory_equal(g.r.leaf.sha256, want, 32);
  assert_int_equal(strlen(g.r.leaf.sha256_hex), 64);
  assert_string_equal(g.r.leaf.serial, "1234ABCD");
  assert_string_equal(g.r.leaf.serial_dec, "305441741");
  assert_int_equal(g.r.leaf.not_after - g.r.leaf.not_before, 86400 + 3600);
  assert_true(g.r.leaf.not_after > time(NULL));
  assert_string_equal(g.r.leaf.subject, "CN=a.example");
  memcpy(w.sha256, want, 32);
  assert_int_equal(probe_judge(&g.r, &w, time(NULL)), PROBE_VERDICT_OK);
  w.sha256[0] ^= 1;
  assert_int_equal(probe_judge(&g.r, &w, time(NULL)), PROBE_VERDICT_MISMATCH);
  /* no request is sent: the server read nothing but the handshake */
  server_stop(&s);
  assert_int_equal(atomic_load(&s.accepted), 1);
  SSL_CTX_free(ctx);
  free_cert(&a);
}

static void test_sni_selects(void **state)
{
  struct tcert a = make_cert("a.example", 1, -60, 86400, 0);
  struct tcert b = make_cert("b.example", 2, -60, 86400, 0);
  SSL_CTX *ca = server_ctx(&a, NULL, 0), *cb = server_ctx(&b, NULL, 0);
  struct server s = {.names = {"b.example"}, .ctxs = {cb}, .nnames = 1};
  struct probe_target t[3];
  struct got g[3] = {0};
  unsigned char ha[32], hb[32];

  (void)state;
  assert_true(server_start(&s, AF_INET, M_TLS, ca));
  t[0] = (struct probe_target){addr_of(AF_INET, s.port), "b.example"};
  t[1] = (struct probe_target){addr_of(AF_INET, s.port), "a.example"};
  t[2] = (struct probe_target){addr_of(AF_INET, s.port), NULL};
  probe_all(NULL, t, 3, g, NULL);
  sha256_of(a.x, ha);
  sha256_of(b.x, hb);
  for (int i = 0; i < 3; i++)
    assert_int_equal(g[i].r.status, PROBE_OK);
  assert_memory_equal(g[0].r.leaf.sha256, hb, 32);
  assert_memory_equal(g[1].r.leaf.sha256, ha, 32);
  assert_memory_equal(g[2].r.leaf.sha256, ha, 32);
  assert_string_equal(g[0].sni, "b.example");
  /* a name the server does not know: its alert, in words */
  s.strict = true;
  g[0] = probe_one(NULL, &t[0].addr, "c.example");
  assert_int_equal(g[0].r.status, PROBE_UNREACHABLE);
  assert_int_equal(g[0].r.err, -EPROTO);
  assert_non_null(strstr(g[0].r.error, "unrecognized name"));
  server_stop(&s);
  SSL_CTX_free(ca);
  SSL_CTX_free(cb);
  free_cert(&a);
  free_cert(&b);
}

static void test_refused(void **state)
{
  struct sockaddr_storage addr = addr_of(AF_INET, closed_port());
  struct probe_target t[3] = {
      {addr, "a.example"}, {addr, "b.example"}, {addr, "c.example"}};
  struct got g[3] = {0};

  (void)state;
  probe_all(NULL, t, 3, g, NULL);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].r.status, PROBE_UNREACHABLE);
    assert_int_equal(g[i].r.err, -ECONNREFUSED);
    assert_string_equal(g[i].r.error, "connect: connection refused");
  }
}

static void test_silent_times_out(void **state)
{
  struct server s = {0};
  struct probe_opts o = {.handshake_timeout_ms = 400};
  struct probe_target t[3];
  struct got g[3] = {0};
  double t0;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_SILENT, NULL));
  for (int i = 0; i < 3; i++)
    t[i] = (struct probe_target){addr_of(AF_INET, s.port), "a.example"};
  t0 = now_ms();
  probe_all(&o, t, 3, g, NULL);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].r.status, PROBE_UNREACHABLE);
    assert_int_equal(g[i].r.err, -ETIMEDOUT);
    assert_string_equal(g[i].r.error, "handshake timed out after 400 ms");
  }
  /* the first one waited its timeout; the others connected in parallel
   * and timed out with it, or failed at once after it: one timeout, not
   * three in a row */
  assert_true(g[0].r.elapsed_ms >= 400);
  assert_true(now_ms() - t0 < scaled_ms(2 * 400 + 1000));
  server_stop(&s);
}

static void test_reset_after_hello(void **state)
{
  struct server s = {0};
  struct sockaddr_storage addr;
  struct got g;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_RESET, NULL));
  addr = addr_of(AF_INET, s.port);
  g = probe_one(NULL, &addr, "a.example");
  assert_int_equal(g.r.status, PROBE_UNREACHABLE);
  assert_int_equal(g.r.err, -ECONNRESET);
  assert_non_null(strstr(g.r.error, "reset"));
  server_stop(&s);
}

static void test_flood_is_cut(void **state)
{
  struct server s = {0};
  struct sockaddr_storage addr;
  struct got g;
  double t0 = now_ms();

  (void)state;
  assert_true(server_start(&s, AF_INET, M_FLOOD, NULL));
  addr = addr_of(AF_INET, s.port);
  g = probe_one(NULL, &addr, "a.example");
  assert_int_equal(g.r.status, PROBE_UNREACHABLE);
  assert_true(g.r.err == -EPROTO || g.r.err == -EMSGSIZE);
  assert_true(strncmp(g.r.error, "TLS: ", 5) == 0 ||
              strstr(g.r.error, "bytes before the handshake"));
  assert_true(now_ms() - t0 < scaled_ms(5000));
  server_stop(&s);
  /* the server could not push its 10 MB through: the client stopped
   * reading and closed */
  assert_true(atomic_load(&s.flooded) < 10L * 1024 * 1024);
}

static void test_expired_and_self_signed(void **state)
{
  struct tcert old = make_cert("old.example", 7, -3 * 86400, -86400, 0);
  SSL_CTX *ctx = server_ctx(&old, NULL, 0);
  struct server s = {0};
  struct sockaddr_storage addr;
  struct probe_want w = {.has_sha256 = true};
  struct got g;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_TLS, ctx));
  addr = addr_of(AF_INET, s.port);
  /* no CA check: an expired self-signed leaf is read, not refused */
  g = probe_one(NULL, &addr, "old.example");
  assert_int_equal(g.r.status, PROBE_OK);
  assert_true(g.r.leaf.not_after < time(NULL));
  sha256_of(old.x, w.sha256);
  assert_int_equal(probe_judge(&g.r, &w, time(NULL)), PROBE_VERDICT_EXPIRED);
  /* the one wanted by serial and not_after: expired too */
  w = (struct probe_want){.serial = "00:07", .not_after = g.r.leaf.not_after};
  assert_int_equal(probe_judge(&g.r, &w, time(NULL)), PROBE_VERDICT_EXPIRED);
  assert_true(probe_matches(&g.r, &w));
  /* another one wanted: still expired (clients refuse it), not the one */
  w.serial = "08";
  assert_int_equal(probe_judge(&g.r, &w, time(NULL)), PROBE_VERDICT_EXPIRED);
  assert_false(probe_matches(&g.r, &w));
  /* before its end it was a mismatch */
  assert_int_equal(probe_judge(&g.r, &w, g.r.leaf.not_after - 1),
                   PROBE_VERDICT_MISMATCH);
  server_stop(&s);
  SSL_CTX_free(ctx);
  free_cert(&old);
}

static void test_big_chain(void **state)
{
  struct tcert leaf = make_cert("big.example", 9, -60, 86400, 0);
  struct tcert fat = make_cert("fat.example", 10, -60, 86400, 20000);
  SSL_CTX *ctx = server_ctx(&leaf, &fat, 5); /* about 100 KB */
  struct server s = {0};
  struct sockaddr_storage addr;
  struct probe_opts small = {.max_bytes = 16384};
  unsigned char want[32];
  struct got g;

  (void)state;
  assert_true(i2d_X509(fat.x, NULL) > 20000);
  assert_true(server_start(&s, AF_INET, M_TLS, ctx));
  addr = addr_of(AF_INET, s.port);
  g = probe_one(NULL, &addr, "big.example");
  assert_int_equal(g.r.status, PROBE_OK);
  sha256_of(leaf.x, want);
  assert_memory_equal(g.r.leaf.sha256, want, 32);
  /* a smaller bound refuses it cleanly */
  g = probe_one(&small, &addr, "big.example");
  assert_int_equal(g.r.status, PROBE_UNREACHABLE);
  assert_int_equal(g.r.err, -EMSGSIZE);
  server_stop(&s);
  SSL_CTX_free(ctx);
  free_cert(&leaf);
  free_cert(&fat);
}

static void test_ipv6_loopback(void **state)
{
  struct tcert a = make_cert("v6.example", 6, -60, 86400, 0);
  SSL_CTX *ctx = server_ctx(&a, NULL, 0);
  struct server s = {0};
  struct sockaddr_storage addr;
  unsigned char want[32];
  char text[64];
  struct got g;

  (void)state;
  if (!server_start(&s, AF_INET6, M_TLS, ctx)) {
    SSL_CTX_free(ctx);
    free_cert(&a);
    skip();
  }
  addr = addr_of(AF_INET6, s.port);
  probe_format_address(&addr, text, sizeof(text));
  assert_int_equal(strncmp(text, "[::1]:", 6), 0);
  g = probe_one(NULL, &addr, "v6.example");
  assert_int_equal(g.r.status, PROBE_OK);
  sha256_of(a.x, want);
  assert_memory_equal(g.r.leaf.sha256, want, 32);
  server_stop(&s);
  SSL_CTX_free(ctx);
  free_cert(&a);
}

static void test_at_most_32_at_once(void **state)
{
  struct tcert a = make_cert("a.example", 3, -60, 86400, 0);
  SSL_CTX *ctx = server_ctx(&a, NULL, 0);
  struct server s = {0};
  enum { N = 80 };
  struct probe_target *t = calloc(N, sizeof(*t));
  struct got *g = calloc(N, sizeof(*g));
  unsigned peak = 0;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_DELAY, ctx));
  for (int i = 0; i < N; i++)
    t[i] = (struct probe_target){addr_of(AF_INET, s.port), "a.example"};
  probe_all(NULL, t, N, g, &peak);
  for (int i = 0; i < N; i++) {
    if (g[i].r.status != PROBE_OK)
      print_error("probe %d: %s after %.0f ms\n", i, g[i].r.error,
                  g[i].r.elapsed_ms);
    assert_int_equal(g[i].r.status, PROBE_OK);
  }
  server_stop(&s);
  /* each handshake holds its connection 300 ms at the server: the probe
   * fills its 32 slots, and the server never sees more */
  assert_int_equal(peak, 32);
  assert_true(atomic_load(&s.peak) <= 32);
  assert_true(atomic_load(&s.peak) >= 1);
  assert_int_equal(atomic_load(&s.accepted), N);
  free(t);
  free(g);
  SSL_CTX_free(ctx);
  free_cert(&a);
}

/* 4 gateways x 300 names on dead addresses, default timeouts: each
 * address costs one connect timeout, not 300. */
static void test_dead_addresses_bounded(void **state)
{
  struct blackhole bh[2];
  struct sockaddr_storage addrs[4];
  enum { NAMES = 300, N = 4 * NAMES };
  struct probe_target *t = calloc(N, sizeof(*t));
  struct got *g = calloc(N, sizeof(*g));
  char(*names)[32] = calloc(NAMES, sizeof(*names));
  /* the default connect timeout, not the stretched one probe_all uses */
  const struct probe_opts dead_opts = {.connect_timeout_ms =
                                           PROBE_DEFAULT_CONNECT_TIMEOUT_MS};
  double t0;

  (void)state;
  blackhole_open(&bh[0]);
  blackhole_open(&bh[1]);
  addrs[0] = addr_of(AF_INET, bh[0].port);
  addrs[1] = addr_of(AF_INET, bh[1].port);
  addrs[2] = addr_of(AF_INET, closed_port());
  addrs[3] = addr_of(AF_INET, closed_port());
  for (int i = 0; i < NAMES; i++)
    snprintf(names[i], sizeof(names[i]), "d%d.example", i);
  for (int i = 0; i < N; i++)
    t[i] = (struct probe_target){addrs[i % 4], names[i / 4]};
  t0 = now_ms();
  probe_all(&dead_opts, t, N, g, NULL);
  assert_true(now_ms() - t0 < scaled_ms(30000));
  for (int i = 0; i < N; i++) {
    assert_int_equal(g[i].r.status, PROBE_UNREACHABLE);
    if (i % 4 < 2) {
      assert_int_equal(g[i].r.err, -ETIMEDOUT);
      assert_string_equal(g[i].r.error, "connect timed out after 3000 ms");
    } else {
      assert_int_equal(g[i].r.err, -ECONNREFUSED);
    }
  }
  /* a connect that timed out waited its whole timeout */
  assert_true(g[0].r.elapsed_ms >= 3000);
  blackhole_close(&bh[0]);
  blackhole_close(&bh[1]);
  free(names);
  free(t);
  free(g);
}

static void test_close_cancels(void **state)
{
  struct server s = {0};
  uv_loop_t loop;
  struct probe *p;
  struct probe_target t[40];
  struct got g[40] = {0};
  bool closed = false;

  (void)state;
  assert_true(server_start(&s, AF_INET, M_SILENT, NULL));
  assert_int_equal(uv_loop_init(&loop), 0);
  p = probe_new(&loop, NULL);
  for (int i = 0; i < 40; i++) {
    t[i] = (struct probe_target){addr_of(AF_INET, s.port), "a.example"};
    assert_int_equal(probe_add(p, &t[i], on_done, &g[i]), 0);
  }
  /* let some connect */
  for (int i = 0; i < 20 && probe_peak_concurrent(p) < 32; i++)
    uv_run(&loop, UV_RUN_ONCE);
  probe_close(p, on_closed, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(closed);
  assert_int_equal(uv_loop_close(&loop), 0);
  for (int i = 0; i < 40; i++) {
    assert_true(g[i].done);
    assert_int_equal(g[i].r.err, -ECANCELED);
  }
  server_stop(&s);
}

static void test_parse_address(void **state)
{
  struct sockaddr_storage ss;
  char buf[64];

  (void)state;
  assert_int_equal(probe_parse_address("203.0.113.10:443", &ss), 0);
  assert_string_equal(probe_format_address(&ss, buf, sizeof(buf)),
                      "203.0.113.10:443");
  assert_int_equal(probe_parse_address("[2001:db8::1]:8443", &ss), 0);
  assert_string_equal(probe_format_address(&ss, buf, sizeof(buf)),
                      "[2001:db8::1]:8443");
  const char *bad[] = {
      "",           "1.2.3.4",  "1.2.3.4:0",       "1.2.3.4:65536",
      "1.2.3.4:-1", "host:443", "2001:db8::1:443", "[2001:db8::1]443",
      "[::1]:",     ":443"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(probe_parse_address(bad[i], &ss), -EINVAL);
}

static void test_judge(void **state)
{
  struct probe_result r = {.status = PROBE_OK};
  struct probe_want w = {0};

  (void)state;
  snprintf(r.leaf.serial, sizeof(r.leaf.serial), "0A1B");
  snprintf(r.leaf.serial_dec, sizeof(r.leaf.serial_dec), "2587");
  r.leaf.not_after = 2000000000;
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_UNKNOWN);
  w.serial = "0a:1b";
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_OK);
  w.serial = "00:0a:1b";
  w.not_after = 2000000000;
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_OK);
  w.not_after = 2000000001; /* same serial, another certificate */
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_MISMATCH);
  w.serial = "2587"; /* the decimal form */
  w.not_after = 2000000000;
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_OK);
  w.serial = "0A1C";
  w.not_after = 0;
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_MISMATCH);
  r.status = PROBE_UNREACHABLE;
  assert_int_equal(probe_judge(&r, &w, 1), PROBE_VERDICT_UNREACHABLE);
  assert_string_equal(probe_verdict_name(PROBE_VERDICT_EXPIRED), "expired");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_address),
      cmocka_unit_test(test_judge),
      cmocka_unit_test(test_ok_leaf),
      cmocka_unit_test(test_sni_selects),
      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_silent_times_out),
      cmocka_unit_test(test_reset_after_hello),
      cmocka_unit_test(test_flood_is_cut),
      cmocka_unit_test(test_expired_and_self_signed),
      cmocka_unit_test(test_big_chain),
      cmocka_unit_test(test_ipv6_loopback),
      cmocka_unit_test(test_at_most_32_at_once),
      cmocka_unit_test(test_dead_addresses_bounded),
      cmocka_unit_test(test_close_cancels),
  };

  /* as certbind's main() does: a peer that closed is an error, not a
   * signal (the servers write to clients that hung up) */
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
