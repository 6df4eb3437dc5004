/* SPDX-License-Identifier: MIT */
/*
 * probe: TLS handshakes on the loop (probe.h). One connection is a
 * uv_tcp_t, a timer (connect, then handshake timeout) and an OpenSSL
 * client whose two memory BIOs are fed from the stream and flushed to it,
 * so OpenSSL never touches the socket and nothing blocks.
 */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define READ_CHUNK 16384

/* What is known of an address in this probe's life. */
enum addr_state {
  ADDR_UNTRIED, /* no connect yet */
  ADDR_TRYING,  /* the first connect is in progress: others wait */
  ADDR_UP,      /* a connect succeeded: connect in parallel */
  ADDR_DOWN,    /* a connect failed: later targets fail with its error */
};

struct probe_addr {
  struct sockaddr_storage ss;
  enum addr_state state;
  int err;
  char error[200];
  struct probe_addr *next;
};

struct probe_item {
  struct probe_target t;
  char *sni; /* our copy; t.sni points to it */
  struct probe_addr *addr;
  probe_done_cb cb;
  void *arg;
  struct probe_item *next;
};

struct probe_conn {
  struct probe *p;
  struct probe_item *item;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect_req;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl once it exists */
  size_t nread;
  uint64_t start_ms; /* uv_now() at the start */
  int open_handles;
  bool connected;
  bool finished;
  struct probe_conn *prev, *next; /* the active list */
  char buf[READ_CHUNK];
};

struct probe_write {
  uv_write_t req;
  struct probe_conn *c;
  char data[];
};

struct probe {
  uv_loop_t *loop;
  struct probe_opts o;
  SSL_CTX *ctx;
  uv_idle_t kick; /* runs the queue from loop context */
  struct probe_item *head, *tail;
  size_t queued;
  struct probe_conn *active;
  unsigned nactive, peak;
  size_t alive; /* connections whose handles are not closed yet */
  struct probe_addr *addrs;
  bool closing, kick_closed;
  void (*closed_cb)(void *arg);
  void *closed_arg;
};

static void pump(struct probe *p);

/* ---- addresses ------------------------------------------------------- */

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b)
{
  if (a->ss_family != b->ss_family)
    return false;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

  return x->sin6_port == y->sin6_port &&
         memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
         x->sin6_scope_id == y->sin6_scope_id;
}

static struct probe_addr *find_or_add_address(struct probe *p,
                                              const struct sockaddr_storage *s)
{
  struct probe_addr *a;

  for (a = p->addrs; a; a = a->next)
    if (same_address(&a->ss, s))
      return a;
  a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->ss = *s;
  a->next = p->addrs;
  p->addrs = a;
  return a;
}

int probe_parse_address(const char *s, struct sockaddr_storage *out)
{
  char host[INET6_ADDRSTRLEN + 1];
  const char *port_s, *end;
  unsigned long port;
  char *stop;
  size_t hl;
  bool v6 = s && s[0] == '[';

  if (!s || !out)
    return -EINVAL;
  memset(out, 0, sizeof(*out));
  if (v6) {
    end = strchr(s, ']');
    if (!end || end[1] != ':')
      return -EINVAL;
    hl = (size_t)(end - s - 1);
    port_s = end + 2;
    s++;
  } else {
    end = strrchr(s, ':');
    if (!end)
      return -EINVAL;
    hl = (size_t)(end - s);
    port_s = end + 1;
  }
  if (hl == 0 || hl >= sizeof(host) || !*port_s || *port_s == '+' ||
      *port_s == '-')
    return -EINVAL;
  memcpy(host, s, hl);
  host[hl] = '\0';
  errno = 0;
  port = strtoul(port_s, &stop, 10);
  if (errno || *stop || port < 1 || port > 65535)
    return -EINVAL;
  if (v6) {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
      return -EINVAL;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    return 0;
  }
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;

  if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
    return -EINVAL;
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)port);
  return 0;
}

const char *probe_format_address(const struct sockaddr_storage *a, char *buf,
                                 size_t size)
{
  char host[INET6_ADDRSTRLEN];

  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *a4 = (const void *)a;

    inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
    snprintf(buf, size, "%s:%u", host, ntohs(a4->sin_port));
  } else if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a6 = (const void *)a;

    inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
    snprintf(buf, size, "[%s]:%u", host, ntohs(a6->sin6_port));
  } else {
    snprintf(buf, size, "?");
  }
  return buf;
}

/* ---- the queue --------------------------------------------------------- */

static void free_item(struct probe_item *it)
{
  if (!it)
    return;
  free(it->sni);
  free(it);
}

/* The first queued item whose address is not being tried, unlinked. */
static struct probe_item *take_next(struct probe *p)
{
  struct probe_item *prev = NULL;

  for (struct probe_item *it = p->head; it; prev = it, it = it->next) {
    if (it->addr->state == ADDR_TRYING)
      continue;
    if (prev)
      prev->next = it->next;
    else
      p->head = it->next;
    if (p->tail == it)
      p->tail = prev;
    it->next = NULL;
    p->queued--;
    return it;
  }
  return NULL;
}

/* The item's one callback, then it is freed. */
static void deliver(struct probe_item *it, const struct probe_result *r)
{
  it->cb(&it->t, r, it->arg);
  free_item(it);
}

static void deliver_error(struct probe_item *it, int err, const char *error,
                          double elapsed_ms)
{
  struct probe_result r = {.status = PROBE_UNREACHABLE, .err = err};

  snprintf(r.error, sizeof(r.error), "%s", error);
  r.elapsed_ms = elapsed_ms;
  deliver(it, &r);
}

/* ---- one connection ---------------------------------------------------- */

/* In the loop's time, which the timeouts are measured in: a connection
 * that timed out reports at least its timeout. */
static double elapsed_ms(const struct probe_conn *c)
{
  uv_loop_t *loop = c->p->loop;

  uv_update_time(loop);
  return (double)(uv_now(loop) - c->start_ms);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
  struct probe_conn *c = h->data;
  struct probe *p = c->p;

  if (--c->open_handles > 0)
    return;
  SSL_free(c->ssl); /* frees both BIOs; NULL: nothing */
  if (!c->ssl) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
  }
  free(c);
  p->alive--;
  if (p->closing && p->kick_closed && p->alive == 0) {
    void (*cb)(void *) = p->closed_cb;
    void *arg = p->closed_arg;

    SSL_CTX_free(p->ctx);
    free(p);
    if (cb)
      cb(arg);
  }
}

static void unlink_active(struct probe *p, struct probe_conn *c)
{
  if (c->prev)
    c->prev->next = c->next;
  else
    p->active = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  p->nactive--;
}

/* The one end of a connection: its handles closed, its result delivered,
 * the queue run again. */
static void finish(struct probe_conn *c, const struct probe_result *r)
{
  struct probe *p = c->p;
  struct probe_item *it = c->item;

  if (c->finished)
    return;
  c->finished = true;
  c->item = NULL;
  unlink_active(p, c);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  deliver(it, r);
  if (!p->closing)
    pump(p);
}

static void fail(struct probe_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct probe_conn *c, int err, const char *fmt, ...)
{
  struct probe_result r = {.status = PROBE_UNREACHABLE, .err = err};
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(r.error, sizeof(r.error), fmt, ap);
  va_end(ap);
  r.elapsed_ms = elapsed_ms(c);
  finish(c, &r);
}

/* A failed connect (or a stalled handshake) marks the address down: the
 * targets waiting for it fail at once with the same words. */
static void fail_connect(struct probe_conn *c, int err, const char *error)
{
  struct probe_addr *a = c->item->addr;

  a->state = ADDR_DOWN;
  a->err = err;
  snprintf(a->error, sizeof(a->error), "%s", error);
  fail(c, err, "%s", error);
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
  struct tm tm;

  if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
    return 0;
  return (int64_t)timegm(&tm);
}

static void read_leaf(X509 *x, struct probe_leaf *l)
{
  unsigned int len = 0;
  BIGNUM *bn;
  BIO *mem;

  memset(l, 0, sizeof(*l));
  if (X509_digest(x, EVP_sha256(), l->sha256, &len) == 1)
    for (unsigned i = 0; i < 32; i++)
      snprintf(l->sha256_hex + 2 * i, 3, "%02x", l->sha256[i]);
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
  if (bn) {
    char *hex = BN_bn2hex(bn);

    char *dec = BN_bn2dec(bn);

    if (hex)
      snprintf(l->serial, sizeof(l->serial), "%s", hex);
    if (dec)
      snprintf(l->serial_dec, sizeof(l->serial_dec), "%s", dec);
    OPENSSL_free(hex);
    OPENSSL_free(dec);
    BN_free(bn);
  }
  l->not_before = asn1_time_unix(X509_get0_notBefore(x));
  l->not_after = asn1_time_unix(X509_get0_notAfter(x));
  mem = BIO_new(BIO_s_mem());
  if (mem) {
    if (X509_NAME_print_ex(mem, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >=
        0) {
      int n = BIO_read(mem, l->subject, (int)sizeof(l->subject) - 1);

      l->subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(mem);
  }
}

static void on_write(uv_write_t *req, int status)
{
  struct probe_write *w = (struct probe_write *)req;
  struct probe_conn *c = w->c;

  free(w);
  if (status < 0 && status != UV_ECANCELED && !c->finished)
    fail(c,
         status == UV_EPIPE || status == UV_ECONNRESET ? -ECONNRESET : status,
         "send: %s", uv_strerror(status));
}

/* Send what OpenSSL has written to its memory BIO. 0 or a negative errno
 * (the connection is then finished). */
static int flush(struct probe_conn *c)
{
  size_t n;

  while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
    struct probe_write *w = malloc(sizeof(*w) + n);
    uv_buf_t b;
    int rc;

    if (!w) {
      fail(c, -ENOMEM, "out of memory");
      return -ENOMEM;
    }
    w->c = c;
    rc = BIO_read(c->wbio, w->data, (int)n);
    if (rc <= 0) {
      free(w);
      break;
    }
    b = uv_buf_init(w->data, (unsigned)rc);
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
      free(w);
      fail(c, rc, "send: %s", uv_strerror(rc));
      return rc;
    }
  }
  return 0;
}

/* "tlsv1 alert unrecognized name": the reason of the first error OpenSSL
 * queued (the alert a server sent, or what the client refused). Returns
 * that reason's code (0: none). */
static int tls_error_text(char *buf, size_t size)
{
  unsigned long e = ERR_get_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;

  if (reason)
    snprintf(buf, size, "%s", reason);
  else if (e)
    snprintf(buf, size, "error %lx", e);
  else
    snprintf(buf, size, "the peer ended the handshake");
  ERR_clear_error();
  return e ? ERR_GET_REASON(e) : 0;
}

/* Run the handshake as far as the bytes received allow. */
static void drive(struct probe_conn *c)
{
  char why[160];
  int rc, e;

  ERR_clear_error(); /* the error queue is the thread's, shared with curl */
  rc = SSL_do_handshake(c->ssl);
  if (rc == 1) {
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    struct probe_result r = {.status = PROBE_OK};

    if (!x) {
      fail(c, -EPROTO, "TLS: the server presented no certificate");
      return;
    }
    read_leaf(x, &r.leaf);
    r.elapsed_ms = elapsed_ms(c);
    /* our Finished (TLS 1.3), so that the server sees a whole handshake;
     * libuv writes it at once when the socket takes it */
    if (flush(c) < 0)
      return;
    finish(c, &r);
    return;
  }
  e = SSL_get_error(c->ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    flush(c);
    return;
  }
  (void)flush(c); /* an alert of ours, if any */
  if (c->finished)
    return;
  if (tls_error_text(why, sizeof(why)) == SSL_R_EXCESSIVE_MESSAGE_SIZE)
    fail(c, -EMSGSIZE, "TLS: %s", why);
  else
    fail(c, -EPROTO, "TLS: %s", why);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
  struct probe_conn *c = h->data;

  (void)suggested;
  *b = uv_buf_init(c->buf, sizeof(c->buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
  struct probe_conn *c = s->data;

  if (c->finished || nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF)
      fail(c, -ECONNRESET,
           "the server closed the connection during the handshake");
    else if (nread == UV_ECONNRESET)
      fail(c, -ECONNRESET,
           "the server reset the connection during the "
           "handshake");
    else
      fail(c, (int)nread, "receive: %s", uv_strerror((int)nread));
    return;
  }
  c->nread += (size_t)nread;
  if (c->nread > c->p->o.max_bytes) {
    fail(c, -EMSGSIZE, "more than %zu bytes before the handshake ended: cut",
         c->p->o.max_bytes);
    return;
  }
  if (BIO_write(c->rbio, b->base, (int)nread) != (int)nread) {
    fail(c, -ENOMEM, "out of memory");
    return;
  }
  drive(c);
}

static void on_timeout(uv_timer_t *t)
{
  struct probe_conn *c = t->data;
  char error[80];

  /* A stalled handshake marks the address down too: a gateway that
   * stalls one name stalls the others, and without this an address that
   * accepts and never answers would cost a handshake timeout per name. */
  if (c->connected)
    snprintf(error, sizeof(error), "handshake timed out after %llu ms",
             (unsigned long long)c->p->o.handshake_timeout_ms);
  else
    snprintf(error, sizeof(error), "connect timed out after %llu ms",
             (unsigned long long)c->p->o.connect_timeout_ms);
  fail_connect(c, -ETIMEDOUT, error);
}

static int start_tls(struct probe_conn *c)
{
  c->ssl = SSL_new(c->p->ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->rbio || !c->wbio) {
    /* freed with the connection (SSL_free or BIO_free) */
    return -ENOMEM;
  }
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_connect_state(c->ssl);
  if (c->item->t.sni && SSL_set_tlsext_host_name(c->ssl, c->item->t.sni) != 1)
    return -EINVAL;
  return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
  struct probe_conn *c = req->data;
  char error[200];
  int rc;

  if (c->finished)
    return; /* closed under it (timeout, probe_close): UV_ECANCELED */
  if (status < 0) {
    snprintf(error, sizeof(error), "connect: %s", uv_strerror(status));
    fail_connect(c, status == UV_ECONNREFUSED ? -ECONNREFUSED : status, error);
    return;
  }
  c->connected = true;
  c->item->addr->state = ADDR_UP;
  uv_timer_start(&c->timer, on_timeout, c->p->o.handshake_timeout_ms, 0);
  rc = start_tls(c);
  if (rc < 0) {
    fail(c, rc, "TLS: %s",
         rc == -EINVAL ? "the name is no valid SNI" : "out of memory");
    return;
  }
  rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rc < 0) {
    fail(c, rc, "receive: %s", uv_strerror(rc));
    return;
  }
  drive(c);
  /* the address may now take the targets that waited for it */
  if (!c->p->closing)
    pump(c->p);
}

static void start(struct probe *p, struct probe_item *it)
{
  struct probe_conn *c = calloc(1, sizeof(*c));
  int rc;

  if (!c) {
    deliver_error(it, -ENOMEM, "out of memory", 0);
    return;
  }
  c->p = p;
  c->item = it;
  /* the timers count from the loop's time: bring it up to now first */
  uv_update_time(p->loop);
  c->start_ms = uv_now(p->loop);
  rc = uv_tcp_init(p->loop, &c->tcp);
  if (rc < 0) {
    free(c);
    deliver_error(it, rc, uv_strerror(rc), 0);
    return;
  }
  c->tcp.data = c;
  uv_timer_init(p->loop, &c->timer); /* cannot fail on unix */
  c->timer.data = c;
  c->connect_req.data = c;
  c->open_handles = 2;
  p->alive++;
  c->next = p->active;
  if (p->active)
    p->active->prev = c;
  p->active = c;
  if (++p->nactive > p->peak)
    p->peak = p->nactive;
  if (it->addr->state == ADDR_UNTRIED)
    it->addr->state = ADDR_TRYING;
  uv_timer_start(&c->timer, on_timeout, p->o.connect_timeout_ms, 0);
  rc = uv_tcp_connect(&c->connect_req, &c->tcp,
                      (const struct sockaddr *)&it->t.addr, on_connect);
  if (rc < 0) {
    char error[200];

    snprintf(error, sizeof(error), "connect: %s", uv_strerror(rc));
    fail_connect(c, rc == UV_ECONNREFUSED ? -ECONNREFUSED : rc, error);
  }
}

/* Start what the bound allows; targets of a dead address fail at once. */
static void pump(struct probe *p)
{
  while (!p->closing && p->nactive < p->o.max_concurrent) {
    struct probe_item *it = take_next(p);

    if (!it)
      return;
    if (it->addr->state == ADDR_DOWN)
      deliver_error(it, it->addr->err, it->addr->error, 0);
    else
      start(p, it);
  }
}

/* ---- the probe ------------------------------------------------------ */

static void on_kick_closed(uv_handle_t *h)
{
  struct probe *p = h->data;

  p->kick_closed = true;
  if (p->alive == 0) {
    void (*cb)(void *) = p->closed_cb;
    void *arg = p->closed_arg;

    SSL_CTX_free(p->ctx);
    free(p);
    if (cb)
      cb(arg);
  }
}

static void cancel_all(struct probe *p)
{
  struct probe_item *it;

  while (p->active) {
    struct probe_conn *c = p->active;

    fail(c, -ECANCELED, "cancelled");
  }
  while ((it = p->head)) {
    p->head = it->next;
    p->queued--;
    deliver_error(it, -ECANCELED, "cancelled", 0);
  }
  p->tail = NULL;
}

static void free_addresses(struct probe *p)
{
  while (p->addrs) {
    struct probe_addr *a = p->addrs;

    p->addrs = a->next;
    free(a);
  }
}

static void on_kick(uv_idle_t *h)
{
  struct probe *p = h->data;

  uv_idle_stop(h);
  if (!p->closing) {
    pump(p);
    return;
  }
  cancel_all(p);
  free_addresses(p);
  uv_close((uv_handle_t *)&p->kick, on_kick_closed);
}

struct probe *probe_new(uv_loop_t *loop, const struct probe_opts *o)
{
  struct probe *p = calloc(1, sizeof(*p));

  if (!p)
    return NULL;
  p->loop = loop;
  if (o)
    p->o = *o;
  if (!p->o.max_concurrent)
    p->o.max_concurrent = PROBE_DEFAULT_MAX_CONCURRENT;
  if (!p->o.connect_timeout_ms)
    p->o.connect_timeout_ms = PROBE_DEFAULT_CONNECT_TIMEOUT_MS;
  if (!p->o.handshake_timeout_ms)
    p->o.handshake_timeout_ms = PROBE_DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (!p->o.max_bytes)
    p->o.max_bytes = PROBE_DEFAULT_MAX_BYTES;
  p->ctx = SSL_CTX_new(TLS_client_method());
  if (!p->ctx) {
    free(p);
    return NULL;
  }
  /* what is served is compared by the caller, expired or self-signed */
  SSL_CTX_set_verify(p->ctx, SSL_VERIFY_NONE, NULL);
  /* a long chain is read up to the byte bound, not refused at 100 KiB */
  SSL_CTX_set_max_cert_list(p->ctx, (long)p->o.max_bytes);
  SSL_CTX_set_session_cache_mode(p->ctx, SSL_SESS_CACHE_OFF);
  uv_idle_init(loop, &p->kick);
  p->kick.data = p;
  return p;
}

int probe_add(struct probe *p, const struct probe_target *t, probe_done_cb cb,
              void *arg)
{
  struct probe_item *it;

  if (!p || !t || !cb)
    return -EINVAL;
  if (p->closing)
    return -ESHUTDOWN;
  if (t->addr.ss_family != AF_INET && t->addr.ss_family != AF_INET6)
    return -EINVAL;
  it = calloc(1, sizeof(*it));
  if (!it)
    return -ENOMEM;
  it->t = *t;
  if (t->sni) {
    it->sni = strdup(t->sni);
    if (!it->sni) {
      free(it);
      return -ENOMEM;
    }
  }
  it->t.sni = it->sni;
  it->addr = find_or_add_address(p, &t->addr);
  if (!it->addr) {
    free_item(it);
    return -ENOMEM;
  }
  it->cb = cb;
  it->arg = arg;
  if (p->tail)
    p->tail->next = it;
  else
    p->head = it;
  p->tail = it;
  p->queued++;
  uv_idle_start(&p->kick, on_kick);
  return 0;
}

size_t probe_pending(const struct probe *p)
{
  return p->queued + p->nactive;
}

unsigned probe_peak_concurrent(const struct probe *p)
{
  return p->peak;
}

void probe_close(struct probe *p, void (*closed_cb)(void *arg), void *arg)
{
  if (!p || p->closing)
    return;
  p->closing = true;
  p->closed_cb = closed_cb;
  p->closed_arg = arg;
  uv_idle_start(&p->kick, on_kick);
}

/* ---- judging -------------------------------------------------------- */

/* A serial number as lowercase hex digits without ':' or leading zeros;
 * false when it is not hex or too long. */
static bool normal_serial(const char *in, char *out, size_t size)
{
  size_t n = 0;

  for (; *in; in++) {
    char ch = (char)(*in | 0x20);

    if (*in == ':')
      continue;
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
      return false;
    if (n == 0 && ch == '0')
      continue;
    if (n + 1 >= size)
      return false;
    out[n++] = ch;
  }
  if (n == 0)
    out[n++] = '0';
  out[n] = '\0';
  return true;
}

static bool same_serial(const char *a, const char *b)
{
  char x[130], y[130];

  return normal_serial(a, x, sizeof(x)) && normal_serial(b, y, sizeof(y)) &&
         strcmp(x, y) == 0;
}

bool probe_matches(const struct probe_result *r, const struct probe_want *w)
{
  if (r->status != PROBE_OK)
    return false;
  if (w->has_sha256)
    return memcmp(w->sha256, r->leaf.sha256, sizeof(w->sha256)) == 0;
  if (w->serial && w->serial[0])
    return (same_serial(w->serial, r->leaf.serial) ||
            strcmp(w->serial, r->leaf.serial_dec) == 0) &&
           (w->not_after == 0 || w->not_after == r->leaf.not_after);
  return false;
}

enum probe_verdict probe_judge(const struct probe_result *r,
                               const struct probe_want *w, int64_t now_s)
{
  if (r->status != PROBE_OK)
    return PROBE_VERDICT_UNREACHABLE;
  /* what clients get is refused, whichever certificate it is */
  if (r->leaf.not_after && r->leaf.not_after <= now_s)
    return PROBE_VERDICT_EXPIRED;
  if (!w->has_sha256 && !(w->serial && w->serial[0]))
    return PROBE_VERDICT_UNKNOWN;
  return probe_matches(r, w) ? PROBE_VERDICT_OK : PROBE_VERDICT_MISMATCH;
}

const char *probe_verdict_name(enum probe_verdict v)
{
  switch (v) {
  case PROBE_VERDICT_OK:
    return "ok";
  case PROBE_VERDICT_MISMATCH:
    return "mismatch";
  case PROBE_VERDICT_EXPIRED:
    return "expired";
  case PROBE_VERDICT_UNREACHABLE:
    return "unreachable";
  case PROBE_VERDICT_UNKNOWN:
    return "unknown";
  }
  return "?";
}
