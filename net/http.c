/* SPDX-License-Identifier: MIT */
/*
 * http: libcurl multi driven by libuv (curl docs/examples/multi-uv.c, with
 * the pitfalls of c-style-anchors.md P1-P13 handled).
 *
 * Context levels: struct http (SOCKETDATA/TIMERDATA), struct http_sock per
 * socket (curl_multi_assign), struct http_xfer per transfer
 * (CURLOPT_PRIVATE). Easy handles are recycled (curl_easy_reset) and all
 * share the one multi, whose connection pool gives keep-alive and reuse.
 *
 * Re-entrancy: nothing here calls curl_multi_* from a curl callback. User
 * callbacks run only from our own libuv callbacks (or http_abort_all), after
 * their easy handle left the multi. http_submit only queues: the "kick" idle
 * handle adds queued transfers on the next loop iteration. The curl side is
 * torn down only when no dispatch of ours is on the stack (depth == 0).
 */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/ssl.h>

#define HTTP_CONNECT_MS 10000L
#define HTTP_TOTAL_MS 30000L
#define HTTP_MAX_BODY ((size_t)8 << 20)
#define HTTP_MAX_BUFFERED ((size_t)64 << 20)
#define HTTP_CA_PATH "/etc/ssl/certs"
#define HTTP_MAX_TOKEN ((size_t)64 << 10)
/* Idle connections kept for reuse when max_total_connections is 0.
 * libcurl's default keeps 4 x the transfers currently added, so the pool
 * shrinks as a burst drains and the next burst (a pass's writes after its
 * reads) pays a TLS handshake per connection again. */
#define HTTP_MAX_IDLE 1024L
/* CURLOPT_UPLOAD_BUFFERSIZE: libcurl's minimum (its default is 64 KiB). */
#define HTTP_UPLOAD_BUFFER 16384L
/* CURLOPT_BUFFERSIZE: each transfer's receive buffer. 256 transfers in
 * flight hold 256 of them; 4 KiB instead of 8 is 1 MB less at that peak
 * for the same instructions (a pass of 200 pages of 250 KB: 5.19 G both). */
#define HTTP_RECV_BUFFER 4096L

enum xfer_state { XFER_SPARE, XFER_PENDING, XFER_ACTIVE, XFER_DONE };

struct http_xfer {
  struct http *h;
  struct http_xfer *prev, *next;
  enum xfer_state state;
  CURL *easy;
  struct curl_slist *headers; /* our copy, wiped when freed */
  struct http_request *rq;
  http_done_cb cb;
  void *cb_arg;
  char errbuf[CURL_ERROR_SIZE];
  char *body;
  size_t len, cap; /* cap: counted in h->buffered */
  size_t max_body; /* this transfer's */
  bool too_large;
  bool over_budget; /* too_large because of h->opts.max_buffered */
  char request_id[80];
  char *subject_token;
  long retry_after_s;
  size_t up_off;   /* no_resend: request body bytes handed to curl */
  size_t trust_id; /* the request's trust domain */
  char trust_why[CURL_ERROR_SIZE]; /* why its CA file was refused */
};

struct http_sock {
  struct http *h;
  struct http_sock *prev, *next;
  uv_poll_t poll;
  curl_socket_t fd;
  bool has_poll;    /* uv_poll_init_socket succeeded */
  bool err_pending; /* report CURL_CSELECT_ERR after socket_action */
};

/* ---- small helpers ---------------------------------------------------- */

static void list_push(struct http_list *l, struct http_xfer *x)
{
  x->next = NULL;
  x->prev = l->tail;
  if (l->tail)
    l->tail->next = x;
  else
    l->head = x;
  l->tail = x;
  l->n++;
}

static void list_unlink(struct http_list *l, struct http_xfer *x)
{
  if (x->prev)
    x->prev->next = x->next;
  else
    l->head = x->next;
  if (x->next)
    x->next->prev = x->prev;
  else
    l->tail = x->prev;
  x->prev = x->next = NULL;
  l->n--;
}

static struct http_xfer *list_pop(struct http_list *l)
{
  struct http_xfer *x = l->head;

  if (x)
    list_unlink(l, x);
  return x;
}

static void wipe_free(char *s)
{
  if (!s)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

/* Header values may carry secrets (X-Auth-Token, Authorization). */
static void slist_wipe_free(struct curl_slist *l)
{
  for (struct curl_slist *i = l; i; i = i->next)
    explicit_bzero(i->data, strlen(i->data));
  curl_slist_free_all(l);
}

static int curl_to_errno(CURLcode rc)
{
  return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* ---- per-transfer curl callbacks ---------------------------------------- */

/* no_resend bodies: curl reads the body from here, and can never rewind it
 * once any of it was read, so its own re-send of a request on a dead
 * reused connection fails (CURLE_SEND_FAIL_REWIND) instead of sending it
 * twice. */
static size_t cb_read(char *buf, size_t size, size_t nitems, void *userdata)
{
  struct http_xfer *x = userdata;
  size_t left = x->rq->body_len - x->up_off;
  size_t n = size * nitems < left ? size * nitems : left;

  memcpy(buf, x->rq->body + x->up_off, n);
  x->up_off += n;
  return n;
}

static int cb_seek(void *userdata, curl_off_t offset, int origin)
{
  struct http_xfer *x = userdata;

  if (origin == SEEK_SET && offset == 0 && x->up_off == 0)
    return CURL_SEEKFUNC_OK; /* nothing read yet: nothing to rewind */
  return CURL_SEEKFUNC_FAIL;
}

/* The body leaves the transfer (handed out or freed): it no longer counts
 * in what the transfers hold. */
static void body_uncount(struct http_xfer *x)
{
  x->h->buffered -= x->cap;
  x->cap = 0;
}

static size_t cb_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
  struct http_xfer *x = userdata;
  struct http *h = x->h;
  size_t n = size * nmemb;

  if (n > x->max_body - x->len) {
    x->too_large = true;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (x->len + n + 1 > x->cap) {
    size_t cap = x->cap ? x->cap : 1024;
    while (cap < x->len + n + 1)
      cap *= 2;
    if (cap > x->max_body + 1)
      cap = x->max_body + 1; /* never more than the body may need */
    if (h->buffered - x->cap + cap > h->opts.max_buffered) {
      x->too_large = x->over_budget = true;
      return 0;
    }
    char *b = realloc(x->body, cap);
    if (!b)
      return 0;
    x->body = b;
    h->buffered += cap - x->cap;
    x->cap = cap;
  }
  memcpy(x->body + x->len, ptr, n);
  x->len += n;
  x->body[x->len] = '\0';
  return n;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3). */
static long parse_retry_after(const char *v, size_t len)
{
  char buf[64];
  char *end;

  if (len == 0 || len >= sizeof buf)
    return -1;
  memcpy(buf, v, len);
  buf[len] = '\0';
  if (buf[0] >= '0' && buf[0] <= '9') {
    errno = 0;
    long s = strtol(buf, &end, 10);
    if (*end || errno == ERANGE)
      return -1;
    return s;
  }
  time_t t = curl_getdate(buf, NULL);
  if (t == (time_t)-1)
    return -1;
  time_t now = time(NULL);
  return t > now ? (long)(t - now) : 0;
}

static bool header_is(const char *name, size_t nlen, const char *want)
{
  return nlen == strlen(want) && strncasecmp(name, want, nlen) == 0;
}

static void capture_header(struct http_xfer *x, const char *name, size_t nlen,
                           const char *v, size_t vlen)
{
  if (header_is(name, nlen, "x-request-id")) {
    size_t n = 0;
    for (size_t i = 0; i < vlen && n + 1 < sizeof x->request_id; i++)
      if (v[i] > ' ' && v[i] < 0x7f) /* printable only: it gets logged */
        x->request_id[n++] = v[i];
    x->request_id[n] = '\0';
  } else if (header_is(name, nlen, "retry-after")) {
    x->retry_after_s = parse_retry_after(v, vlen);
  } else if (header_is(name, nlen, "x-subject-token")) {
    wipe_free(x->subject_token);
    x->subject_token = NULL;
    if (vlen > 0 && vlen <= HTTP_MAX_TOKEN)
      x->subject_token = strndup(v, vlen);
  }
}

static void reset_captured(struct http_xfer *x)
{
  x->request_id[0] = '\0';
  x->retry_after_s = -1;
  wipe_free(x->subject_token);
  x->subject_token = NULL;
}

static size_t cb_header(char *buf, size_t size, size_t nitems, void *userdata)
{
  struct http_xfer *x = userdata;
  size_t len = size * nitems;

  /* A new status line (after a 1xx) starts a new header set. */
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    reset_captured(x);
    return len;
  }
  const char *colon = memchr(buf, ':', len);
  if (!colon)
    return len;
  size_t nlen = (size_t)(colon - buf);
  const char *v = colon + 1;
  const char *end = buf + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                     end[-1] == '\t'))
    end--;
  capture_header(x, buf, nlen, v, (size_t)(end - v));
  return len;
}

static int cb_debug(CURL *easy, curl_infotype type, char *data, size_t size,
                    void *userp)
{
  struct http *h = userp;

  (void)easy;
  /* Only curl's own text: headers and data may hold secrets. */
  if (type != CURLINFO_TEXT || !h->opts.debug)
    return 0;
  while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
    size--;
  h->opts.debug(h->opts.debug_arg, data, size);
  return 0;
}

/* ---- multi-level curl callbacks ------------------------------------------ */

static void on_uv_handle_close(uv_handle_t *handle);
static void on_uv_sock_close(uv_handle_t *handle);
static void on_uv_poll(uv_poll_t *p, int status, int events);
static void on_uv_timeout(uv_timer_t *t);

static void sock_release(struct http *h, struct http_sock *sk)
{
  if (sk->prev)
    sk->prev->next = sk->next;
  else
    h->socks = sk->next;
  if (sk->next)
    sk->next->prev = sk->prev;
  if (sk->has_poll) {
    /* Synchronously: curl may close the fd as soon as we return (P3). */
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_uv_sock_close);
  } else {
    free(sk);
  }
}

static struct http_sock *sock_new(struct http *h, curl_socket_t s)
{
  struct http_sock *sk = calloc(1, sizeof *sk);

  if (!sk)
    return NULL;
  sk->h = h;
  sk->fd = s;
  if (uv_poll_init_socket(h->loop, &sk->poll, s) == 0) {
    sk->has_poll = true;
    sk->poll.data = sk;
    h->open_handles++;
  } else {
    /* Cannot watch it: fail its transfer once curl has returned (P4). */
    sk->err_pending = true;
  }
  sk->next = h->socks;
  if (h->socks)
    h->socks->prev = sk;
  h->socks = sk;
  return sk;
}

/* P7: easy may be an internal handle, never read its CURLINFO_PRIVATE. */
static int cb_socket(CURL *easy, curl_socket_t s, int what, void *userp,
                     void *socketp)
{
  struct http *h = userp;
  struct http_sock *sk = socketp;

  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (sk) { /* NULL: a socket never announced (P3) */
      sock_release(h, sk);
      if (!h->closed) /* inside curl_multi_cleanup the hash is going */
        curl_multi_assign(h->multi, s, NULL);
    }
    return 0;
  }
  if (h->closed) /* tearing down: only REMOVE matters (P9) */
    return 0;
  if (!sk) {
    sk = sock_new(h, s);
    if (!sk)
      return -1;
    if (curl_multi_assign(h->multi, s, sk) != CURLM_OK)
      sk->err_pending = true;
  }
  if (!sk->has_poll)
    return 0;
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  if (events == 0)
    uv_poll_stop(&sk->poll);
  else if (uv_poll_start(&sk->poll, events, on_uv_poll) < 0)
    sk->err_pending = true;
  return 0;
}

static int cb_timer(CURLM *multi, long timeout_ms, void *userp)
{
  struct http *h = userp;

  (void)multi;
  if (h->closed)
    return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&h->timer);
    return 0;
  }
  /* 0 means "as soon as possible, but not from inside this callback"; and a
   * 0 ms timer busy-loops on libuv < 1.48 (P1). */
  if (timeout_ms == 0)
    timeout_ms = 1;
  if (uv_timer_start(&h->timer, on_uv_timeout, (uint64_t)timeout_ms, 0) < 0)
    return -1;
  return 0;
}

/* ---- completion ------------------------------------------------------- */

/* Could the request have reached the server? False only when curl failed
 * before any request byte could be sent. */
static bool maybe_sent(CURLcode rc, long status, curl_off_t request_size,
                       curl_off_t pretransfer_us)
{
  if (status > 0)
    return true;
  switch (rc) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_FAILED_INIT:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_UNKNOWN_OPTION:
    return false;
  case CURLE_SEND_ERROR:
  case CURLE_SEND_FAIL_REWIND: /* a no_resend request curl wanted to re-send */
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_WRITE_ERROR:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    /* Timeouts and the rest: sent once the connection was ready. */
    return request_size > 0 || pretransfer_us > 0;
  }
}

struct xfer_info {
  long status;
  long connects;
  curl_off_t request_size, header_size, up, down, total_us, pretransfer_us;
};

static void read_info(CURL *easy, struct xfer_info *in)
{
  long reqsz = 0, hdrsz = 0;

  memset(in, 0, sizeof *in);
  /* Each getinfo only fails for an unknown option: zeros are fine then. */
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &in->status);
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &in->connects);
  curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &reqsz);
  curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &hdrsz);
  curl_easy_getinfo(easy, CURLINFO_SIZE_UPLOAD_T, &in->up);
  curl_easy_getinfo(easy, CURLINFO_SIZE_DOWNLOAD_T, &in->down);
  curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &in->total_us);
  curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &in->pretransfer_us);
  in->request_size = reqsz;
  in->header_size = hdrsz;
}

static void xfer_destroy(struct http_xfer *x)
{
  if (x->easy)
    curl_easy_cleanup(x->easy);
  slist_wipe_free(x->headers);
  body_uncount(x);
  free(x->body);
  wipe_free(x->subject_token);
  free(x);
}

static void xfer_recycle(struct http *h, struct http_xfer *x)
{
  slist_wipe_free(x->headers);
  x->headers = NULL;
  body_uncount(x);
  free(x->body);
  x->body = NULL;
  x->len = 0;
  reset_captured(x);
  x->rq = NULL;
  x->cb = NULL;
  x->cb_arg = NULL;
  if (h->closed) {
    xfer_destroy(x);
    return;
  }
  x->state = XFER_SPARE;
  list_push(&h->spare, x);
}

static void fill_response(struct http_xfer *x, const struct xfer_info *in,
                          CURLcode rc, bool aborted, struct http_response *rs)
{
  memset(rs, 0, sizeof *rs);
  rs->status = in->status;
  rs->curl_code = rc;
  rs->aborted = aborted;
  rs->too_large = x->too_large;
  if (x->over_budget)
    snprintf(x->errbuf, sizeof x->errbuf,
             "responses held at once would exceed %zu bytes",
             x->h->opts.max_buffered);
  else if (x->too_large)
    snprintf(x->errbuf, sizeof x->errbuf, "response body over %zu bytes",
             x->max_body);
  else if (rc == CURLE_SSL_CACERT_BADFILE && x->trust_why[0])
    snprintf(x->errbuf, sizeof x->errbuf, "%s", x->trust_why);
  else if (rc != CURLE_OK && !x->errbuf[0])
    snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_easy_strerror(rc));
  rs->error = rc == CURLE_OK ? "" : x->errbuf;
  rs->maybe_sent =
      rc == CURLE_OK ||
      maybe_sent(rc, in->status, in->request_size, in->pretransfer_us);
  if (x->too_large) { /* a cut body is never handed out */
    free(x->body);
    x->body = NULL;
    x->len = 0;
  }
  body_uncount(x); /* the caller's now (or freed after its callback) */
  if (!x->body)
    x->body = calloc(1, 1);
  rs->body = x->body;
  rs->body_len = x->body ? x->len : 0;
  x->body = NULL;
  memcpy(rs->request_id, x->request_id, sizeof rs->request_id);
  rs->retry_after_s = x->retry_after_s;
  rs->subject_token = x->subject_token;
  x->subject_token = NULL;
  rs->latency_ms = (double)in->total_us / 1000.0;
}

static void count(struct http *h, const struct xfer_info *in, CURLcode rc)
{
  h->stats.requests++;
  if (rc != CURLE_OK)
    h->stats.failures++;
  h->stats.connects += (uint64_t)(in->connects > 0 ? in->connects : 0);
  h->stats.bytes_sent += (uint64_t)(in->request_size + in->up);
  h->stats.bytes_received += (uint64_t)(in->header_size + in->down);
}

/* x is already unlinked from pending/active. Runs the user callback. */
static void xfer_finish(struct http *h, struct http_xfer *x, CURLcode rc,
                        bool aborted)
{
  struct xfer_info in;
  struct http_response rs;

  memset(&in, 0, sizeof in);
  if (x->state == XFER_ACTIVE) {
    read_info(x->easy, &in);
    curl_multi_remove_handle(h->multi, x->easy);
  }
  x->state = XFER_DONE;
  count(h, &in, rc);
  fill_response(x, &in, rc, aborted, &rs);
  /* Drop curl's pointers to the caller's url/body before the caller may
   * free them in its callback. */
  curl_easy_reset(x->easy);
  x->cb(x->rq, &rs, x->cb_arg);
  free(rs.body);
  wipe_free(rs.subject_token);
  xfer_recycle(h, x);
}

/* P6: drain every completion after every socket_action. The message is
 * copied before its handle is removed. */
static void reap(struct http *h)
{
  for (;;) {
    int left;
    if (h->closing)
      return; /* http_close aborted everything still running */
    CURLMsg *m = curl_multi_info_read(h->multi, &left);
    if (!m)
      return;
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *easy = m->easy_handle;
    CURLcode rc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct http_xfer *x = (struct http_xfer *)(void *)priv;
    if (!x || x->state != XFER_ACTIVE)
      continue;
    list_unlink(&h->active, x);
    xfer_finish(h, x, rc, false);
  }
}

static void abort_list(struct http *h, struct http_list *victims, CURLcode rc,
                       const char *why)
{
  for (;;) {
    struct http_xfer *x = list_pop(victims);
    if (!x)
      return;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", why);
    xfer_finish(h, x, rc, true);
  }
}

static void teardown(struct http *h);

static void after_dispatch(struct http *h)
{
  if (h->depth == 0 && h->closing && !h->closed)
    teardown(h);
}

/* Abort everything currently queued or running (not later submissions). */
static void abort_current(struct http *h, CURLcode rc, const char *why)
{
  struct http_list victims = h->active;

  /* Move both lists, running transfers first, then the queued ones. */
  for (struct http_xfer *x = h->pending.head; x;) {
    struct http_xfer *next = x->next;
    list_push(&victims, x);
    x = next;
  }
  memset(&h->active, 0, sizeof h->active);
  memset(&h->pending, 0, sizeof h->pending);
  h->depth++;
  abort_list(h, &victims, rc, why);
  h->depth--;
}

/* socket_action + reap, then report sockets we could not watch. */
static void drive(struct http *h, curl_socket_t fd, int flags)
{
  int running = 0;
  CURLMcode mc = curl_multi_socket_action(h->multi, fd, flags, &running);

  if (mc != CURLM_OK) {
    /* "the state of all transfers are uncertain" (P6) */
    abort_current(h, CURLE_ABORTED_BY_CALLBACK, curl_multi_strerror(mc));
    return;
  }
  reap(h);
  for (;;) {
    struct http_sock *sk = h->socks;
    while (sk && !sk->err_pending)
      sk = sk->next;
    if (!sk || h->closing)
      return;
    sk->err_pending = false;
    mc = curl_multi_socket_action(h->multi, sk->fd, CURL_CSELECT_ERR, &running);
    if (mc != CURLM_OK) {
      abort_current(h, CURLE_ABORTED_BY_CALLBACK, curl_multi_strerror(mc));
      return;
    }
    reap(h);
  }
}

/* ---- libuv callbacks ------------------------------------------------- */

static void on_uv_poll(uv_poll_t *p, int status, int events)
{
  struct http_sock *sk = p->data;
  struct http *h = sk->h;
  int flags = 0;

  if (status < 0) { /* P5: POLLERR must reach curl */
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
      flags |= CURL_CSELECT_OUT;
  }
  if (h->closing)
    return;
  h->depth++;
  drive(h, sk->fd, flags);
  h->depth--;
  after_dispatch(h);
}

static void on_uv_timeout(uv_timer_t *t)
{
  struct http *h = t->data;

  if (h->closing)
    return;
  h->depth++;
  drive(h, CURL_SOCKET_TIMEOUT, 0);
  h->depth--;
  after_dispatch(h);
}

/* Adds the queued transfers from loop context, then drives curl at once. */
static void on_uv_kick(uv_idle_t *idle)
{
  struct http *h = idle->data;

  uv_idle_stop(idle);
  if (h->closing)
    return;
  h->depth++;
  bool added = false;
  for (;;) {
    struct http_xfer *x = list_pop(&h->pending);
    if (!x)
      break;
    CURLMcode mc = curl_multi_add_handle(h->multi, x->easy);
    if (mc != CURLM_OK) {
      snprintf(x->errbuf, sizeof x->errbuf, "%s", curl_multi_strerror(mc));
      xfer_finish(h, x, CURLE_FAILED_INIT, false);
      continue;
    }
    x->state = XFER_ACTIVE;
    list_push(&h->active, x);
    added = true;
  }
  if (added && !h->closing)
    drive(h, CURL_SOCKET_TIMEOUT, 0);
  h->depth--;
  after_dispatch(h);
}

static void maybe_closed(struct http *h)
{
  if (h->closed && h->open_handles == 0 && h->closed_cb) {
    void (*cb)(struct http *) = h->closed_cb;
    h->closed_cb = NULL;
    cb(h);
  }
}

static void on_uv_sock_close(uv_handle_t *handle)
{
  struct http_sock *sk = handle->data;
  struct http *h = sk->h;

  free(sk);
  h->open_handles--;
  maybe_closed(h);
}

static void on_uv_handle_close(uv_handle_t *handle)
{
  struct http *h = handle->data;

  h->open_handles--;
  maybe_closed(h);
}

/* ---- request setup --------------------------------------------------- */

static int copy_headers(struct http_xfer *x, struct http_request *rq,
                        bool has_body_method)
{
  bool has_ct = false;
  struct curl_slist *l = NULL, *t;

  if (rq->take_headers) {
    l = rq->headers;
    rq->headers = NULL;
    for (const struct curl_slist *i = l; i; i = i->next)
      has_ct |= strncasecmp(i->data, "content-type:", 13) == 0;
  }
  for (const struct curl_slist *i = l ? NULL : rq->headers; i; i = i->next) {
    if (strncasecmp(i->data, "content-type:", 13) == 0)
      has_ct = true;
    t = curl_slist_append(l, i->data);
    if (!t)
      goto oom;
    l = t;
  }
  /* No Expect: 100-continue (curl sends it only with a body, and a GET
   * has none); no Content-Type the caller did not choose. */
  if (has_body_method) {
    t = curl_slist_append(l, "Expect:");
    if (!t)
      goto oom;
    l = t;
  }
  if (has_body_method && !has_ct) {
    t = curl_slist_append(l, "Content-Type:");
    if (!t)
      goto oom;
    l = t;
  }
  x->headers = l;
  return 0;
oom:
  slist_wipe_free(l);
  return -ENOMEM;
}

static bool method_ok(const char *m)
{
  size_t n = strlen(m);

  if (n == 0 || n > 16)
    return false;
  for (size_t i = 0; i < n; i++)
    if (m[i] < 'A' || m[i] > 'Z')
      return false;
  return true;
}

static CURLcode set_method(struct http_xfer *x, const struct http_request *rq)
{
  CURL *e = x->easy;
  CURLcode rc = CURLE_OK;
  const char *body = rq->body ? rq->body : "";
  bool get = strcmp(rq->method, "GET") == 0;

  if (get && rq->body_len == 0)
    return curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  if (strcmp(rq->method, "DELETE") == 0 && rq->body_len == 0)
    return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
  x->up_off = 0;
  if (rq->no_resend && rq->body_len > 0) {
    rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
    if (!rc)
      rc = curl_easy_setopt(e, CURLOPT_READFUNCTION, cb_read);
    if (!rc)
      rc = curl_easy_setopt(e, CURLOPT_READDATA, (void *)x);
    if (!rc)
      rc = curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, cb_seek);
    if (!rc)
      rc = curl_easy_setopt(e, CURLOPT_SEEKDATA, (void *)x);
  } else {
    /* Not copied: the caller keeps the body alive until completion. */
    rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  }
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                          (curl_off_t)rq->body_len);
  if (!rc && strcmp(rq->method, "POST") != 0)
    rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
  return rc;
}

/* OpenSSL 3 ends every TLS 1.3 client handshake by taking the session out
 * of the client cache, which marks that SSL_SESSION not resumable: a
 * ticket is single-use (RFC 8446 C.4, so that an observer cannot link two
 * connections). curl 7.88 keeps one session per host and offers that same
 * object to every new connection, so in a burst, once the first resumed
 * handshake is done, the connections that start before its new ticket is
 * read make full handshakes: 14 to 63 of scenario 2's 200
 * (bench/RESULTS.md). Every connection here goes to one API endpoint as one
 * identity, so there is nothing to unlink; a server that does enforce
 * single use answers with a full handshake, as before.
 *
 * So the cache mode loses SSL_SESS_CACHE_CLIENT from the start of a
 * handshake until it is done, unless the handshake turns out to be TLS 1.2
 * (whose session is cached at its end, under that mode). A TLS 1.3 ticket
 * comes after the handshake and needs the mode to reach curl's cache. The
 * mode is the SSL_CTX's: curl 7.88 makes one per connection. */
static void keep_tls13_session(const SSL *ssl, int where, int ret)
{
  SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
  long mode = SSL_CTX_get_session_cache_mode(ctx);

  (void)ret;
  if (where & SSL_CB_HANDSHAKE_START)
    mode &= ~SSL_SESS_CACHE_CLIENT;
  else if ((where & SSL_CB_HANDSHAKE_DONE) ||
           ((where & SSL_CB_LOOP) && SSL_version(ssl) < TLS1_3_VERSION))
    mode |= SSL_SESS_CACHE_CLIENT;
  else
    return;
  SSL_CTX_set_session_cache_mode(ctx, mode);
}

/* A new connection's SSL_CTX gets the cached store of its trust domain
 * (trust.h); curl was given no CA file, so it parsed none. */
static CURLcode cb_ssl_ctx(CURL *e, void *ssl_ctx, void *arg)
{
  struct http_xfer *x = arg;
  X509_STORE *store;
  uint64_t generation;

  (void)e;
  if (trust_get(&x->h->trust, x->trust_id, &store, &generation, x->trust_why,
                sizeof x->trust_why) < 0)
    return CURLE_SSL_CACERT_BADFILE; /* fail closed */
  SSL_CTX_set1_cert_store(ssl_ctx, store);
  SSL_CTX_set_info_callback(ssl_ctx, keep_tls13_session);
  return CURLE_OK;
}

/* curl matches pooled connections and cached TLS sessions to requests by
 * their TLS options, the CA file and directory names among them. The CA
 * file is no longer one, so the directory option carries a tag of the
 * store's build as a second, never-consulted path entry (OpenSSL splits
 * the option at ':' and looks directories up lazily; cb_ssl_ctx replaces
 * the store before any lookup). A connection or session verified against
 * one CA file, or an older version of it, thus never serves a request
 * set up after the file changed: the server is verified again. (A request
 * set up just before a change may still resume a session of the build it
 * was set up with: the same server, verified then.) */
static int trust_tag(const struct http *h, uint64_t generation, char *buf,
                     size_t len)
{
  static const char mark[] = ":certbind-trust-";
  char digits[24], *d = digits + sizeof(digits);
  const char *path = h->opts.ca_path ? h->opts.ca_path : "";
  size_t pn = strlen(path), mn = sizeof(mark) - 1, dn;

  /* by lengths, not snprintf: this is made for every request */
  do
    *--d = (char)('0' + generation % 10);
  while ((generation /= 10) != 0);
  dn = (size_t)(digits + sizeof(digits) - d);
  if (pn + mn + dn >= len)
    return -ENAMETOOLONG;
  memcpy(buf, path, pn);
  memcpy(buf + pn, mark, mn);
  memcpy(buf + pn + mn, d, dn);
  buf[pn + mn + dn] = '\0';
  return 0;
}

static CURLcode set_trust(struct http *h, struct http_xfer *x,
                          const struct http_request *rq)
{
  long id = trust_id(&h->trust, rq->ca_file ? rq->ca_file : h->opts.ca_file);
  X509_STORE *store;
  uint64_t generation = 0; /* unreadable: a tag no connection has */
  char tag[PATH_MAX];
  CURLcode rc;

  if (id < 0)
    return CURLE_OUT_OF_MEMORY;
  x->trust_id = (size_t)id;
  x->trust_why[0] = '\0';
  /* a file changed since the last request gets a new build (and tag) now;
   * a bad one is refused when a connection needs it (cb_ssl_ctx) */
  if (trust_get(&h->trust, x->trust_id, &store, &generation, NULL, 0) < 0)
    generation = 0;
  if (trust_tag(h, generation, tag, sizeof tag) < 0)
    return CURLE_BAD_FUNCTION_ARGUMENT;
  rc = curl_easy_setopt(x->easy, CURLOPT_CAINFO, NULL);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_CAPATH, tag);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_SSL_CTX_FUNCTION, cb_ssl_ctx);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_SSL_CTX_DATA, (void *)x);
  if (!rc && h->share)
    rc = curl_easy_setopt(x->easy, CURLOPT_SHARE, h->share);
  return rc;
}

static CURLcode set_tls(struct http *h, struct http_xfer *x,
                        const struct http_request *rq)
{
  CURL *e = x->easy;
  CURLcode rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");

  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  if (!rc)
    rc = set_trust(h, x, rq);
  return rc;
}

static CURLcode set_transport(struct http *h, struct http_xfer *x)
{
  CURL *e = x->easy;
  CURLcode rc = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);

  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                          h->opts.connect_timeout_ms);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->opts.total_timeout_ms);
  if (!rc)
    rc =
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  if (!rc) /* wait for a multiplexable connection rather than open more */
    rc = curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* curl keeps a 64 KiB upload buffer in every handle that ever sent a
   * body: 16 MB at 256 in flight. Its smallest, 16 KiB, takes a write's
   * body (50 bindings, ~5 KB) in one piece; larger ones in a few. */
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, cb_write);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, cb_header);
  if (!rc)
    rc = curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)x);
  if (!rc && h->opts.debug)
    rc = curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, cb_debug);
  if (!rc && h->opts.debug)
    rc = curl_easy_setopt(e, CURLOPT_DEBUGDATA, (void *)h);
  if (!rc && h->opts.debug)
    rc = curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
  return rc;
}

static int xfer_setup(struct http *h, struct http_xfer *x,
                      struct http_request *rq)
{
  bool body_method = strcmp(rq->method, "GET") != 0;
  int err = copy_headers(x, rq, body_method);
  if (err)
    return err;
  x->errbuf[0] = '\0';
  x->too_large = x->over_budget = false;
  x->max_body = rq->max_body ? rq->max_body : h->opts.max_body;
  x->len = 0;
  reset_captured(x);
  CURLcode rc = set_transport(h, x);
  if (!rc)
    rc = set_tls(h, x, rq);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_URL, rq->url);
  if (!rc)
    rc = set_method(x, rq);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
  if (!rc)
    rc = curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT,
                          rq->fresh_connection ? 1L : 0L);
  return rc ? curl_to_errno(rc) : 0;
}

static struct http_xfer *xfer_get(struct http *h)
{
  struct http_xfer *x = list_pop(&h->spare);

  if (x)
    return x;
  x = calloc(1, sizeof *x);
  if (!x)
    return NULL;
  x->h = h;
  x->retry_after_s = -1;
  x->easy = curl_easy_init();
  if (!x->easy) {
    free(x);
    return NULL;
  }
  return x;
}

/* ---- public API ------------------------------------------------------ */

static int multi_setup(struct http *h)
{
  CURLM *m = h->multi;
  CURLMcode mc = curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, cb_socket);

  if (!mc)
    mc = curl_multi_setopt(m, CURLMOPT_SOCKETDATA, (void *)h);
  if (!mc)
    mc = curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, cb_timer);
  if (!mc)
    mc = curl_multi_setopt(m, CURLMOPT_TIMERDATA, (void *)h);
  if (!mc)
    mc = curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  if (!mc && h->opts.max_host_connections > 0)
    mc = curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                           h->opts.max_host_connections);
  if (!mc && h->opts.max_total_connections > 0)
    mc = curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                           h->opts.max_total_connections);
  if (!mc)
    mc = curl_multi_setopt(m, CURLMOPT_MAXCONNECTS,
                           h->opts.max_total_connections > 0
                               ? h->opts.max_total_connections
                               : HTTP_MAX_IDLE);
  return mc == CURLM_OK ? 0 : (mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL);
}

/* Requests without a CA file trust what curl would by default: its
 * built-in bundle (CURLINFO_CAINFO, libcurl >= 7.84). */
static int init_trust(struct http *h)
{
  CURL *e = curl_easy_init();
  char *bundle = NULL;
  int err;

  if (!e)
    return -ENOMEM;
  if (curl_easy_getinfo(e, CURLINFO_CAINFO, &bundle) != CURLE_OK)
    bundle = NULL;
  err = trust_init(&h->trust, h->opts.ca_path, bundle);
  curl_easy_cleanup(e);
  return err;
}

/* TLS sessions shared by every transfer, so a new connection resumes one
 * any easy handle made (curl matches them by host and TLS options, the
 * trust tag among them). Without a share each handle keeps its own. */
static void init_share(struct http *h)
{
  h->share = curl_share_init();
  if (h->share && curl_share_setopt(h->share, CURLSHOPT_SHARE,
                                    CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
    curl_share_cleanup(h->share);
    h->share = NULL;
  }
}

int http_init(struct http *h, uv_loop_t *loop, const struct http_opts *o)
{
  if (!h || !loop)
    return -EINVAL;
  memset(h, 0, sizeof *h);
  h->loop = loop;
  if (o)
    h->opts = *o;
  if (h->opts.connect_timeout_ms <= 0)
    h->opts.connect_timeout_ms = HTTP_CONNECT_MS;
  if (h->opts.total_timeout_ms <= 0)
    h->opts.total_timeout_ms = HTTP_TOTAL_MS;
  if (h->opts.max_body == 0)
    h->opts.max_body = HTTP_MAX_BODY;
  if (h->opts.max_buffered == 0)
    h->opts.max_buffered = HTTP_MAX_BUFFERED;
  if (!h->opts.ca_path)
    h->opts.ca_path = HTTP_CA_PATH;
  int err = init_trust(h);
  if (err)
    return err;
  h->multi = curl_multi_init();
  err = h->multi ? multi_setup(h) : -ENOMEM;
  if (err) {
    if (h->multi)
      curl_multi_cleanup(h->multi);
    h->multi = NULL;
    trust_free(&h->trust);
    return err;
  }
  init_share(h);
  /* Both inits cannot fail on Unix (they only fill the struct); the timer
   * must exist before the first curl_multi_add_handle (P2). */
  uv_timer_init(loop, &h->timer);
  uv_idle_init(loop, &h->kick);
  h->timer.data = h;
  h->kick.data = h;
  h->open_handles = 2;
  return 0;
}

static int submit(struct http *h, struct http_request *rq, http_done_cb cb,
                  void *arg)
{
  if (!h || !cb || !rq->url || !rq->method || !method_ok(rq->method))
    return -EINVAL;
  if (rq->body_len > 0 && !rq->body)
    return -EINVAL;
  if (h->closing)
    return -ESHUTDOWN;
  struct http_xfer *x = xfer_get(h);
  if (!x)
    return -ENOMEM;
  int err = xfer_setup(h, x, rq);
  if (err) {
    curl_easy_reset(x->easy);
    xfer_recycle(h, x);
    return err;
  }
  err = uv_idle_start(&h->kick, on_uv_kick);
  if (err) {
    curl_easy_reset(x->easy);
    xfer_recycle(h, x);
    return err;
  }
  x->rq = rq;
  x->cb = cb;
  x->cb_arg = arg;
  x->state = XFER_PENDING;
  list_push(&h->pending, x);
  return 0;
}

int http_submit(struct http *h, struct http_request *rq, http_done_cb cb,
                void *arg)
{
  if (!rq)
    return -EINVAL;
  int err = submit(h, rq, cb, arg);
  if (rq->take_headers) { /* taken whatever happened: not left behind */
    slist_wipe_free(rq->headers);
    rq->headers = NULL;
  }
  return err;
}

size_t http_in_flight(const struct http *h)
{
  return h->pending.n + h->active.n;
}

void http_set_max_buffered(struct http *h, size_t bytes)
{
  h->opts.max_buffered = bytes ? bytes : HTTP_MAX_BUFFERED;
}

void http_abort_all(struct http *h)
{
  if (h->closed)
    return;
  abort_current(h, CURLE_ABORTED_BY_CALLBACK, "aborted");
  after_dispatch(h);
}

/* The curl side goes first, while the loop and timer are alive (P9). */
static void teardown(struct http *h)
{
  h->closed = true;
  uv_idle_stop(&h->kick);
  curl_multi_cleanup(h->multi); /* may call cb_socket with REMOVE */
  h->multi = NULL;
  while (h->socks)
    sock_release(h, h->socks);
  for (;;) {
    struct http_xfer *x = list_pop(&h->spare);
    if (!x)
      break;
    xfer_destroy(x);
  }
  trust_free(&h->trust); /* live SSL_CTXs hold their own references */
  if (h->share)
    curl_share_cleanup(h->share);
  h->share = NULL;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_uv_handle_close);
  uv_close((uv_handle_t *)&h->kick, on_uv_handle_close);
}

void http_close(struct http *h, void (*closed_cb)(struct http *h))
{
  if (h->closing)
    return;
  h->closing = true;
  h->closed_cb = closed_cb;
  /* closing is set first, so these callbacks cannot submit more. */
  abort_current(h, CURLE_ABORTED_BY_CALLBACK, "aborted: shutting down");
  after_dispatch(h);
}

void http_get_stats(const struct http *h, struct http_stats *out)
{
  *out = h->stats;
}
