/* SPDX-License-Identifier: MIT */
/* The data plane: what each gateway serves. Per gateway, TLS listeners on
 * loopback that present, for each SNI name, the certificate reads show
 * bound to (gateway, name) -- the visibility delay applied, as a list of
 * attached domains shows it -- with that certificate's own chain and key,
 * and fail the handshake when nothing servable is bound.
 *
 * OpenSSL (libssl) on one thread with its own epoll loop: non-blocking
 * sockets, one SSL object per connection, the certificate set on it in the
 * servername callback (SSL_use_cert_and_key). Parsed certificates are kept
 * per (certificate id, SHA-256 of its PEM), so an update (PUT) is served at
 * once and a reset's new world finds the same entries. Bounded: at most
 * DP_MAX_CONNS connections, each with a deadline; a slow client holds one
 * slot, never the thread. Sessions are never resumed: a resumed TLS 1.3
 * handshake carries no certificate, and every handshake is a check. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define DP_MAX_CONNS 1024
#define DP_HANDSHAKE_MS 10000 /* a handshake, then the wait for a close */
#define DP_STALL_MS 120000    /* how long a stalled connection is kept */
#define DP_CACHE_MAX 1024
/* DER bytes of filler after the real chain: with it the certificate
 * message stays under OpenSSL's default 100 KiB limit (max_cert_list), so
 * a default OpenSSL client receives the whole chain */
#define DP_HUGE_BYTES 96000
#define DP_TAG_LISTEN (1ull << 62)
#define DP_TAG_WAKE (1ull << 61)

enum dp_state { DP_FREE, DP_HANDSHAKE, DP_OPEN, DP_RESET, DP_STALL };

struct dp_listener {
  int fd;
  char *instance_id; /* a copy: the world is rebuilt by /__sim/reset */
  char address[64];  /* 127.0.0.1:PORT or [::1]:PORT */
};

struct dp_conn {
  int fd;
  SSL *ssl;
  size_t listener;
  enum dp_state st;
  uint32_t events;
  int64_t deadline_ms;
};

/* A certificate's parsed content, as served. */
struct dp_material {
  char *id;
  unsigned char sha[32];
  X509 *leaf;
  STACK_OF(X509) * chain;
  EVP_PKEY *key;
};

struct dp_counters {
  _Atomic uint64_t accepted, handshakes, handshake_failures, refused, resets,
      stalled, over_capacity, open;
};

struct sim_dataplane {
  struct sim *sim;
  SSL_CTX *ctx;
  struct dp_listener *ls;
  size_t nls;
  struct dp_conn conns[DP_MAX_CONNS];
  size_t nopen;
  int epfd;
  int wake_fd;
  pthread_t thread;
  bool started;
  struct dp_material *cache;
  size_t ncache;
  /* for the faults: one key, a CA made from it, and the filler chain */
  EVP_PKEY *fault_key;
  X509 *fault_ca;
  STACK_OF(X509) * filler;
  struct dp_counters n;
};

static const char *const fault_names[SIM_DP_COUNT] = {
    "none",  "stale",   "refuse",      "reset",
    "stall", "expired", "self_signed", "huge_chain"};

/* ---- faults: JSON in and out ------------------------------------------- */

static int add_rule(struct sim_faults *f, const char *gw, int kind, char *err,
                    size_t errlen)
{
  if (!*gw || strlen(gw) >= sizeof(f->dp[0].gw)) {
    snprintf(err, errlen, "faults: dataplane: bad gateway \"%.80s\"", gw);
    return -EINVAL;
  }
  size_t i = 0;
  while (i < f->ndp && strcmp(f->dp[i].gw, gw) != 0)
    i++;
  if (i == SIM_MAX_DP_RULES) {
    snprintf(err, errlen, "faults: dataplane: more than %d gateways",
             SIM_MAX_DP_RULES);
    return -EINVAL;
  }
  snprintf(f->dp[i].gw, sizeof(f->dp[i].gw), "%s", gw);
  f->dp[i].kind = kind;
  if (i == f->ndp)
    f->ndp++;
  return 0;
}

static int fault_kind(const char *s)
{
  for (int k = 0; s && k < SIM_DP_COUNT; k++)
    if (!strcmp(s, fault_names[k]))
      return k;
  return -1;
}

int sim_dp_faults_parse(const char *key, yajl_val v, struct sim_faults *f,
                        char *err, size_t errlen)
{
  if (!strcmp(key, "stale_gateway")) {
    if (!YAJL_IS_STRING(v)) {
      snprintf(err, errlen, "faults: stale_gateway: expected an instance id");
      return -EINVAL;
    }
    return add_rule(f, YAJL_GET_STRING(v), SIM_DP_STALE, err, errlen);
  }
  if (!YAJL_IS_OBJECT(v)) {
    snprintf(err, errlen,
             "faults: dataplane: expected an object {instance_id|\"*\": kind}");
    return -EINVAL;
  }
  for (size_t i = 0; i < v->u.object.len; i++) {
    const char *gw = v->u.object.keys[i];
    int kind = fault_kind(YAJL_GET_STRING(v->u.object.values[i]));
    if (kind < 0) {
      snprintf(err, errlen,
               "faults: dataplane: %.80s: kind must be one of stale, refuse, "
               "reset, stall, expired, self_signed, huge_chain, none",
               gw);
      return -EINVAL;
    }
    int rc = add_rule(f, gw, kind, err, errlen);
    if (rc)
      return rc;
  }
  return 0;
}

int sim_dp_faults_gen(yajl_gen g, const struct sim_faults *f)
{
  int rc = sim_gen_str(g, "dataplane");
  yajl_gen_map_open(g);
  for (size_t i = 0; i < f->ndp; i++)
    rc |= sim_gen_kv_str(g, f->dp[i].gw, fault_names[f->dp[i].kind]);
  yajl_gen_map_close(g);
  return rc;
}

/* sim->mu held: the rule for this gateway, else the one for "*". */
static int gateway_fault(const struct sim *sim, const char *instance_id)
{
  int any = SIM_DP_NONE;
  for (size_t i = 0; i < sim->faults.ndp; i++) {
    if (!strcmp(sim->faults.dp[i].gw, instance_id))
      return sim->faults.dp[i].kind;
    if (!strcmp(sim->faults.dp[i].gw, "*"))
      any = sim->faults.dp[i].kind;
  }
  return any;
}

/* ---- certificates: made for faults, parsed from PEM -------------------- */

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  int ok = e && X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
  return ok ? 0 : -EINVAL;
}

/* A certificate for name (a DNS name, or NULL for the fault CA) valid
 * from now+from_s to now+to_s, on the fault key, signed by the fault CA
 * (issuer) or by itself (issuer NULL). */
static X509 *make_cert(const struct sim_dataplane *dp, const char *name,
                       X509 *issuer, long from_s, long to_s)
{
  X509 *x = X509_new();
  uint64_t serial = 0;
  if (!x || RAND_bytes((unsigned char *)&serial, sizeof(serial)) != 1)
    goto fail;
  X509_NAME *subject = X509_get_subject_name(x);
  const char *cn = name ? name : "apig-sim data-plane fault CA";
  char san[300];
  snprintf(san, sizeof(san), "DNS:%s", name ? name : "");
  if (!X509_set_version(x, 2) ||
      !ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) ||
      !X509_gmtime_adj(X509_getm_notBefore(x), from_s) ||
      !X509_gmtime_adj(X509_getm_notAfter(x), to_s) ||
      (strlen(cn) <= 64 &&
       !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0)) ||
      !X509_set_issuer_name(x,
                            issuer ? X509_get_subject_name(issuer) : subject) ||
      !X509_set_pubkey(x, dp->fault_key))
    goto fail;
  if (name ? add_ext(x, issuer, NID_subject_alt_name, san)
           : add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE"))
    goto fail;
  if (X509_sign(x, dp->fault_key, EVP_sha256()) <= 0)
    goto fail;
  return x;
fail:
  X509_free(x);
  return NULL;
}

/* The filler of huge_chain: copies of the fault CA (each a reference). */
static int make_filler(struct sim_dataplane *dp)
{
  int der = i2d_X509(dp->fault_ca, NULL);
  dp->filler = sk_X509_new_null();
  if (der <= 0 || !dp->filler)
    return -ENOMEM;
  for (int total = 0; total < DP_HUGE_BYTES; total += der) {
    if (!X509_up_ref(dp->fault_ca))
      return -ENOMEM;
    if (!sk_X509_push(dp->filler, dp->fault_ca)) {
      X509_free(dp->fault_ca);
      return -ENOMEM;
    }
  }
  return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0; /* encrypted keys are refused by the certificates API anyway */
}

static void material_free(struct dp_material *m)
{
  free(m->id);
  X509_free(m->leaf);
  sk_X509_pop_free(m->chain, X509_free);
  EVP_PKEY_free(m->key);
  memset(m, 0, sizeof(*m));
}

static int parse_material(const struct sim_cert *c, struct dp_material *m)
{
  BIO *b = BIO_new_mem_buf(c->cert_pem, -1);
  BIO *kb = BIO_new_mem_buf(c->key_pem, -1);
  m->id = strdup(c->id);
  m->chain = sk_X509_new_null();
  int rc = b && kb && m->id && m->chain ? 0 : -ENOMEM;
  if (!rc && !(m->leaf = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)))
    rc = -EINVAL;
  for (X509 *x; !rc && (x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL));)
    if (!sk_X509_push(m->chain, x)) {
      X509_free(x);
      rc = -ENOMEM;
    }
  if (!rc && !(m->key = PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL)))
    rc = -EINVAL;
  ERR_clear_error(); /* the end of the chain reads as an error */
  BIO_free(b);
  BIO_free(kb);
  if (rc)
    material_free(m);
  return rc;
}

static void cache_clear(struct sim_dataplane *dp)
{
  for (size_t i = 0; i < dp->ncache; i++)
    material_free(&dp->cache[i]);
  dp->ncache = 0;
}

/* sim->mu held (c's strings belong to the world): c's parsed content, from
 * the cache or parsed now; NULL when it has no key pair. */
static const struct dp_material *material(struct sim_dataplane *dp,
                                          const struct sim_cert *c)
{
  unsigned char sha[32];
  if (!c->cert_pem || !c->key_pem ||
      !EVP_Digest(c->cert_pem, strlen(c->cert_pem), sha, NULL, EVP_sha256(),
                  NULL))
    return NULL;
  for (size_t i = 0; i < dp->ncache; i++)
    if (!memcmp(dp->cache[i].sha, sha, sizeof(sha)) &&
        !strcmp(dp->cache[i].id, c->id))
      return &dp->cache[i];
  if (dp->ncache == DP_CACHE_MAX)
    cache_clear(dp); /* simpler than an LRU; a world this large is rare */
  struct dp_material *m = &dp->cache[dp->ncache];
  if (parse_material(c, m) != 0)
    return NULL;
  memcpy(m->sha, sha, sizeof(sha));
  dp->ncache++;
  return m;
}

/* ---- choosing what to serve -------------------------------------------- */

/* SNI as a lower-case DNS name; false for anything else. */
static bool sni_name(const char *in, char *out, size_t outlen)
{
  size_t n = in ? strlen(in) : 0;
  if (n && in[n - 1] == '.')
    n--;
  if (!n || n >= outlen || n > 253)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = in[i];
    if (ch >= 'A' && ch <= 'Z')
      ch = (char)(ch - 'A' + 'a');
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
          ch == '.'))
      return false;
    out[i] = ch;
  }
  out[n] = '\0';
  return true;
}

/* sim->mu held: the certificate reads show bound to name on gateway gw,
 * exactly or through a "*.parent" binding (one label); and the slot. */
static long bound_cert(struct sim *sim, size_t gw, const char *name, long *slot)
{
  long s = sim_find_slot(sim, gw, name);
  long c = s >= 0 ? sim_slot_visible_cert(sim, (size_t)s) : -1;
  const char *dot = strchr(name, '.');
  if (c < 0 && dot && dot[1]) {
    char wild[300];
    snprintf(wild, sizeof(wild), "*.%s", dot + 1);
    long ws = sim_find_slot(sim, gw, wild);
    long wc = ws >= 0 ? sim_slot_visible_cert(sim, (size_t)ws) : -1;
    if (wc >= 0) {
      s = ws;
      c = wc;
    }
  }
  *slot = s;
  return c;
}

struct dp_choice {
  int fault;
  const struct dp_material *m; /* NULL: a made-up certificate */
};

/* sim->mu held. 0, or the TLS alert that ends the handshake. */
static int choose(struct sim_dataplane *dp, const char *instance_id,
                  const char *name, struct dp_choice *out)
{
  struct sim *sim = dp->sim;
  long gw = sim_find_gw(sim, instance_id);
  if (gw < 0)
    return SSL_AD_UNRECOGNIZED_NAME;
  out->fault = gateway_fault(sim, instance_id);
  out->m = NULL;
  if (out->fault == SIM_DP_EXPIRED || out->fault == SIM_DP_SELF_SIGNED)
    return 0;
  long slot, c = bound_cert(sim, (size_t)gw, name, &slot);
  if (out->fault == SIM_DP_STALE) {
    /* a node that missed the latest change: the slot's previous
     * certificate, or (none servable) a made-up one */
    long prev = slot >= 0 ? sim->slots[slot].prev_cert : -1;
    out->m = prev >= 0 ? material(dp, &sim->certs[prev]) : NULL;
    return 0;
  }
  if (c < 0)
    return SSL_AD_UNRECOGNIZED_NAME;
  out->m = material(dp, &sim->certs[c]);
  return out->m ? 0 : SSL_AD_HANDSHAKE_FAILURE;
}

static int serve_made_up(struct sim_dataplane *dp, SSL *ssl, const char *name,
                         bool expired)
{
  const long day = 86400;
  X509 *x = expired ? make_cert(dp, name, dp->fault_ca, -30 * day, -day)
                    : make_cert(dp, name, NULL, -day, 30 * day);
  STACK_OF(X509) *chain = sk_X509_new_null();
  int ok = x && chain && (!expired || sk_X509_push(chain, dp->fault_ca)) &&
           SSL_use_cert_and_key(ssl, x, dp->fault_key, chain, 1) == 1;
  X509_free(x);
  sk_X509_free(chain); /* SSL_use_cert_and_key took references */
  return ok ? 0 : -EINVAL;
}

static int serve_material(struct sim_dataplane *dp, SSL *ssl,
                          const struct dp_material *m, bool huge)
{
  STACK_OF(X509) *chain = huge ? sk_X509_dup(m->chain) : m->chain;
  int ok = chain != NULL;
  for (int i = 0; huge && ok && i < sk_X509_num(dp->filler); i++)
    ok = sk_X509_push(chain, sk_X509_value(dp->filler, i)) > 0;
  ok = ok && SSL_use_cert_and_key(ssl, m->leaf, m->key, chain, 1) == 1;
  if (huge)
    sk_X509_free(chain);
  return ok ? 0 : -EINVAL;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
  struct sim_dataplane *dp = arg;
  const struct dp_conn *c = SSL_get_app_data(ssl);
  char name[256];
  if (!sni_name(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), name,
                sizeof(name))) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  struct dp_choice ch;
  pthread_mutex_lock(&dp->sim->mu);
  int al = choose(dp, dp->ls[c->listener].instance_id, name, &ch);
  pthread_mutex_unlock(&dp->sim->mu);
  /* the material is the data plane's own: used outside the mutex */
  int rc =
      al                               ? -1
      : ch.fault == SIM_DP_EXPIRED     ? serve_made_up(dp, ssl, name, true)
      : ch.fault == SIM_DP_SELF_SIGNED ? serve_made_up(dp, ssl, name, false)
      : !ch.m                          ? serve_made_up(dp, ssl, name, false)
              : serve_material(dp, ssl, ch.m, ch.fault == SIM_DP_HUGE_CHAIN);
  if (rc) {
    *alert = al ? al : SSL_AD_INTERNAL_ERROR;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct sim_dataplane *dp, struct dp_conn *c, bool rst)
{
  if (rst) {
    /* SO_LINGER 0: close sends RST instead of FIN */
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  epoll_ctl(dp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  SSL_free(c->ssl);
  close(c->fd);
  *c = (struct dp_conn){.fd = -1, .st = DP_FREE};
  dp->nopen--;
  atomic_store(&dp->n.open, dp->nopen);
}

static void conn_want(struct sim_dataplane *dp, struct dp_conn *c,
                      uint32_t events)
{
  if (c->events == events)
    return;
  struct epoll_event ev = {.events = events,
                           .data.u64 = (uint64_t)(c - dp->conns)};
  if (epoll_ctl(dp->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
    c->events = events;
}

/* 1 done, 0 waiting (the wanted events set), -1 failed. */
static int ssl_wait(struct sim_dataplane *dp, struct dp_conn *c, int ret)
{
  int e = SSL_get_error(c->ssl, ret);
  ERR_clear_error();
  if (e == SSL_ERROR_WANT_READ)
    conn_want(dp, c, EPOLLIN);
  else if (e == SSL_ERROR_WANT_WRITE)
    conn_want(dp, c, EPOLLOUT);
  else
    return -1;
  return 0;
}

static void conn_handshake(struct sim_dataplane *dp, struct dp_conn *c)
{
  int ret = SSL_do_handshake(c->ssl);
  if (ret == 1) {
    atomic_fetch_add(&dp->n.handshakes, 1);
    c->st = DP_OPEN;
    c->deadline_ms = sim_mono_ms() + DP_HANDSHAKE_MS;
    conn_want(dp, c, EPOLLIN);
  } else if (ssl_wait(dp, c, ret) < 0) {
    atomic_fetch_add(&dp->n.handshake_failures, 1);
    conn_close(dp, c, false);
  }
}

/* After the handshake nothing is served: a request gets a 404, a close a
 * close. */
static void conn_open(struct sim_dataplane *dp, struct dp_conn *c)
{
  static const char resp[] = "HTTP/1.1 404 Not Found\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n";
  char buf[4096];
  int ret = SSL_read(c->ssl, buf, sizeof(buf));
  if (ret > 0) {
    (void)SSL_write(c->ssl, resp, sizeof(resp) - 1);
    (void)SSL_shutdown(c->ssl);
  } else if (ssl_wait(dp, c, ret) == 0) {
    return;
  } else if (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN) {
    (void)SSL_shutdown(c->ssl);
  }
  ERR_clear_error();
  conn_close(dp, c, false);
}

/* reset and stall: the bytes are read (to see the close), never answered */
static void conn_raw(struct sim_dataplane *dp, struct dp_conn *c)
{
  char buf[4096];
  ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
  if (n > 0 && c->st == DP_RESET) {
    atomic_fetch_add(&dp->n.resets, 1);
    conn_close(dp, c, true);
  } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    conn_close(dp, c, false);
  }
}

static struct dp_conn *conn_free_slot(struct sim_dataplane *dp)
{
  if (dp->nopen == DP_MAX_CONNS)
    return NULL;
  for (size_t i = 0; i < DP_MAX_CONNS; i++)
    if (dp->conns[i].st == DP_FREE)
      return &dp->conns[i];
  return NULL;
}

static void conn_start(struct sim_dataplane *dp, struct dp_conn *c, int fd,
                       size_t li, int fault)
{
  *c = (struct dp_conn){.fd = fd, .listener = li, .events = EPOLLIN};
  c->st = fault == SIM_DP_RESET   ? DP_RESET
          : fault == SIM_DP_STALL ? DP_STALL
                                  : DP_HANDSHAKE;
  c->deadline_ms =
      sim_mono_ms() + (c->st == DP_STALL ? DP_STALL_MS : DP_HANDSHAKE_MS);
  if (c->st == DP_HANDSHAKE) {
    c->ssl = SSL_new(dp->ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
      SSL_free(c->ssl);
      close(fd);
      *c = (struct dp_conn){.fd = -1, .st = DP_FREE};
      return;
    }
    SSL_set_accept_state(c->ssl);
    SSL_set_app_data(c->ssl, c);
  }
  struct epoll_event ev = {.events = EPOLLIN,
                           .data.u64 = (uint64_t)(c - dp->conns)};
  dp->nopen++;
  atomic_store(&dp->n.open, dp->nopen);
  if (epoll_ctl(dp->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    conn_close(dp, c, false);
  else if (fault == SIM_DP_STALL)
    atomic_fetch_add(&dp->n.stalled, 1);
}

static void on_accept(struct sim_dataplane *dp, size_t li)
{
  for (;;) {
    int fd = accept4(dp->ls[li].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; /* EAGAIN, or an aborted connection: the next event retries */
    atomic_fetch_add(&dp->n.accepted, 1);
    pthread_mutex_lock(&dp->sim->mu);
    int fault = gateway_fault(dp->sim, dp->ls[li].instance_id);
    pthread_mutex_unlock(&dp->sim->mu);
    struct dp_conn *c = fault == SIM_DP_REFUSE ? NULL : conn_free_slot(dp);
    if (!c) {
      atomic_fetch_add(
          fault == SIM_DP_REFUSE ? &dp->n.refused : &dp->n.over_capacity, 1);
      close(fd);
      continue;
    }
    conn_start(dp, c, fd, li, fault);
  }
}

static void conn_event(struct sim_dataplane *dp, struct dp_conn *c)
{
  switch (c->st) {
  case DP_HANDSHAKE:
    conn_handshake(dp, c);
    break;
  case DP_OPEN:
    conn_open(dp, c);
    break;
  case DP_RESET:
  case DP_STALL:
    conn_raw(dp, c);
    break;
  case DP_FREE:
    break;
  }
}

/* ---- the loop ---------------------------------------------------------- */

static int next_timeout_ms(const struct sim_dataplane *dp, int64_t now)
{
  int64_t first = -1;
  for (size_t i = 0; dp->nopen && i < DP_MAX_CONNS; i++)
    if (dp->conns[i].st != DP_FREE &&
        (first < 0 || dp->conns[i].deadline_ms < first))
      first = dp->conns[i].deadline_ms;
  if (first < 0)
    return -1;
  return first <= now ? 0 : (int)(first - now);
}

static void expire(struct sim_dataplane *dp, int64_t now)
{
  for (size_t i = 0; dp->nopen && i < DP_MAX_CONNS; i++) {
    struct dp_conn *c = &dp->conns[i];
    if (c->st != DP_FREE && c->deadline_ms <= now) {
      if (c->st == DP_HANDSHAKE)
        atomic_fetch_add(&dp->n.handshake_failures, 1);
      conn_close(dp, c, false);
    }
  }
}

static void *dp_thread(void *arg)
{
  struct sim_dataplane *dp = arg;
  struct epoll_event ev[64];
  for (;;) {
    int n = epoll_wait(dp->epfd, ev, 64, next_timeout_ms(dp, sim_mono_ms()));
    for (int i = 0; i < n; i++) {
      uint64_t tag = ev[i].data.u64;
      if (tag == DP_TAG_WAKE)
        return NULL;
      if (tag & DP_TAG_LISTEN)
        on_accept(dp, (size_t)(tag & ~DP_TAG_LISTEN));
      else
        conn_event(dp, &dp->conns[tag]);
    }
    expire(dp, sim_mono_ms());
  }
}

/* ---- listeners --------------------------------------------------------- */

/* HOST:PORT with HOST an IPv4 or [IPv6] loopback address or localhost. */
static int parse_addr(const char *s, struct sockaddr_storage *ss,
                      socklen_t *len, const char **why)
{
  char host[64];
  const char *port;
  const char *end = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
  size_t hl = end ? (size_t)(end - s) - (s[0] == '[') : 0;
  *why = "expected HOST:PORT (an IPv6 address in brackets)";
  if (!end || hl == 0 || hl >= sizeof(host) ||
      (s[0] == '[' ? end[1] != ':' : strchr(s, ':') != end))
    return -EINVAL;
  memcpy(host, s + (s[0] == '['), hl);
  host[hl] = '\0';
  port = end + (s[0] == '[' ? 2 : 1);
  char *pe;
  long p = strtol(port, &pe, 10);
  if (!*port || *pe || p < 0 || p > 65535) {
    *why = "bad port";
    return -EINVAL;
  }
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof(host), "127.0.0.1");
  if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)p);
    *len = sizeof(*v4);
  } else if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)p);
    *len = sizeof(*v6);
  } else {
    *why = "not an IP address";
    return -EINVAL;
  }
  bool loop = ss->ss_family == AF_INET
                  ? (ntohl(v4->sin_addr.s_addr) >> 24) == 127
                  : IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
  *why = "not a loopback address (the data plane serves test keys)";
  return loop ? 0 : -EINVAL;
}

static int bound_address(int fd, char *out, size_t outlen)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char host[INET6_ADDRSTRLEN];
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -errno;
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
  bool is4 = ss.ss_family == AF_INET;
  if (!inet_ntop(ss.ss_family,
                 is4 ? (const void *)&v4->sin_addr
                     : (const void *)&v6->sin6_addr,
                 host, sizeof(host)))
    return -errno;
  snprintf(out, outlen, is4 ? "%s:%u" : "[%s]:%u", host,
           ntohs(is4 ? v4->sin_port : v6->sin6_port));
  return 0;
}

static int open_listener(struct dp_listener *l, const char *addr,
                         const char **why)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = parse_addr(addr, &ss, &len, why);
  if (rc)
    return rc;
  l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  *why = strerror(errno);
  if (l->fd < 0)
    return -errno;
  (void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    (void)setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(l->fd, (struct sockaddr *)&ss, len) != 0 ||
      listen(l->fd, 512) != 0) {
    *why = strerror(errno);
    return -errno;
  }
  rc = bound_address(l->fd, l->address, sizeof(l->address));
  *why = "getsockname failed";
  return rc;
}

/* One line per listener, to a temporary name renamed over path: a reader
 * never sees half of it. */
static int write_port_file(const struct sim_dataplane *dp, const char *path)
{
  char tmp[4096];
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof(tmp))
    return -ENAMETOOLONG;
  FILE *f = fopen(tmp, "we");
  if (!f)
    return -errno;
  for (size_t i = 0; i < dp->nls; i++)
    fprintf(f, "%s %s\n", dp->ls[i].instance_id, dp->ls[i].address);
  int rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -EIO;
  if (fclose(f) != 0)
    rc = -EIO;
  if (!rc && rename(tmp, path) != 0)
    rc = -errno;
  if (rc)
    unlink(tmp);
  return rc;
}

static int open_listeners(struct sim_dataplane *dp, char *err, size_t errlen)
{
  const struct sim *sim = dp->sim;
  size_t n = 0;
  for (size_t g = 0; g < sim->ngws; g++)
    n += sim->gws[g].ningress ? sim->gws[g].ningress : !!sim->opt.data_plane;
  dp->ls = calloc(n + 1, sizeof(*dp->ls));
  if (!dp->ls)
    return -ENOMEM;
  for (size_t g = 0; g < sim->ngws; g++) {
    const struct sim_gateway *gw = &sim->gws[g];
    size_t na = gw->ningress ? gw->ningress : !!sim->opt.data_plane;
    for (size_t a = 0; a < na; a++) {
      const char *addr = gw->ningress ? gw->ingress[a] : sim->opt.data_plane;
      struct dp_listener *l = &dp->ls[dp->nls++];
      const char *why = "";
      l->fd = -1;
      l->instance_id = strdup(gw->instance_id);
      int rc = l->instance_id ? open_listener(l, addr, &why) : -ENOMEM;
      if (rc) {
        snprintf(err, errlen, "gateway %s: ingress %s: %s", gw->instance_id,
                 addr, why);
        return rc;
      }
    }
  }
  return 0;
}

static int make_fault_material(struct sim_dataplane *dp)
{
  dp->fault_key = EVP_EC_gen("P-256");
  dp->fault_ca =
      dp->fault_key ? make_cert(dp, NULL, NULL, -86400, 86400 * 365) : NULL;
  return dp->fault_ca ? make_filler(dp) : -ENOMEM;
}

static int make_ctx(struct sim_dataplane *dp)
{
  SSL_CTX *ctx = dp->ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
    return -ENOMEM;
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
  SSL_CTX_set_tlsext_servername_arg(ctx, dp);
  return 0;
}

static int watch(struct sim_dataplane *dp)
{
  dp->epfd = epoll_create1(EPOLL_CLOEXEC);
  dp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dp->epfd < 0 || dp->wake_fd < 0)
    return -errno;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DP_TAG_WAKE};
  if (epoll_ctl(dp->epfd, EPOLL_CTL_ADD, dp->wake_fd, &ev) != 0)
    return -errno;
  for (size_t i = 0; i < dp->nls; i++) {
    ev.data.u64 = DP_TAG_LISTEN | i;
    if (epoll_ctl(dp->epfd, EPOLL_CTL_ADD, dp->ls[i].fd, &ev) != 0)
      return -errno;
  }
  return 0;
}

int sim_dataplane_start(struct sim *sim, char *err, size_t errlen)
{
  struct sim_dataplane *dp = calloc(1, sizeof(*dp));
  if (!dp)
    return -ENOMEM;
  dp->sim = sim;
  dp->epfd = dp->wake_fd = -1;
  dp->cache = calloc(DP_CACHE_MAX, sizeof(*dp->cache));
  for (size_t i = 0; i < DP_MAX_CONNS; i++)
    dp->conns[i] = (struct dp_conn){.fd = -1, .st = DP_FREE};
  sim->dp = dp;
  snprintf(err, errlen, "out of memory");
  int rc = dp->cache ? open_listeners(dp, err, errlen) : -ENOMEM;
  if (!rc && dp->nls) {
    snprintf(err, errlen, "cannot set up TLS or epoll");
    if ((rc = make_ctx(dp)) == 0 && (rc = make_fault_material(dp)) == 0)
      rc = watch(dp);
  }
  if (!rc && sim->opt.data_plane_port_file &&
      (rc = write_port_file(dp, sim->opt.data_plane_port_file)) != 0)
    snprintf(err, errlen, "cannot write %s", sim->opt.data_plane_port_file);
  if (!rc && dp->nls &&
      (rc = -pthread_create(&dp->thread, NULL, dp_thread, dp)) != 0)
    snprintf(err, errlen, "cannot start its thread");
  dp->started = rc == 0 && dp->nls;
  if (rc || !dp->nls)
    sim_dataplane_stop(sim); /* nothing to serve: no thread */
  return rc;
}

void sim_dataplane_stop(struct sim *sim)
{
  struct sim_dataplane *dp = sim->dp;
  if (!dp)
    return;
  if (dp->started) {
    uint64_t one = 1;
    (void)!write(dp->wake_fd, &one, sizeof(one));
    pthread_join(dp->thread, NULL);
  }
  for (size_t i = 0; i < DP_MAX_CONNS; i++)
    if (dp->conns[i].st != DP_FREE)
      conn_close(dp, &dp->conns[i], false);
  for (size_t i = 0; i < dp->nls; i++) {
    if (dp->ls[i].fd >= 0)
      close(dp->ls[i].fd);
    free(dp->ls[i].instance_id);
  }
  if (dp->cache)
    cache_clear(dp);
  free(dp->cache);
  free(dp->ls);
  if (dp->epfd >= 0)
    close(dp->epfd);
  if (dp->wake_fd >= 0)
    close(dp->wake_fd);
  sk_X509_pop_free(dp->filler, X509_free);
  X509_free(dp->fault_ca);
  EVP_PKEY_free(dp->fault_key);
  SSL_CTX_free(dp->ctx);
  free(dp);
  sim->dp = NULL;
}

/* ---- GET /__sim/dataplane ---------------------------------------------- */

int sim_dataplane_gen(yajl_gen g, const struct sim *sim)
{
  struct sim_dataplane *dp = sim->dp;
  int rc = 0;
  yajl_gen_map_open(g);
  rc |= sim_gen_str(g, "listeners");
  yajl_gen_array_open(g);
  for (size_t i = 0; dp && i < dp->nls; i++) {
    yajl_gen_map_open(g);
    rc |= sim_gen_kv_str(g, "instance_id", dp->ls[i].instance_id);
    rc |= sim_gen_kv_str(g, "address", dp->ls[i].address);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  static const char *const names[] = {
      "accepted", "handshakes", "handshake_failures", "refused",
      "resets",   "stalled",    "over_capacity",      "open_connections"};
  struct dp_counters zero = {0};
  struct dp_counters *n = dp ? &dp->n : &zero;
  _Atomic uint64_t *const vals[] = {
      &n->accepted, &n->handshakes, &n->handshake_failures, &n->refused,
      &n->resets,   &n->stalled,    &n->over_capacity,      &n->open};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    rc |= sim_gen_kv_int(g, names[i], (long long)atomic_load(vals[i]));
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}
