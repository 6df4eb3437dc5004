/* SPDX-License-Identifier: MIT */
/*
 * fake_http: net/http.h answered by a test's script on the libuv loop
 * (see fake_http.h). Implements every function of http.h, so that no
 * object of net's http.c is ever needed by the test binary.
 */
#include "fake_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define FAKE_DEFAULT_MAX_BODY ((size_t)8 << 20)

struct fake_xfer {
  uv_timer_t timer; /* the answer's latency */
  struct fake_net *net;
  struct fake_call *call;
  struct http_request *rq;
  http_done_cb cb;
  void *cb_arg;
  struct fake_answer answer;
  bool aborted;
  struct fake_xfer *prev, *next;
};

static struct fake_net *net_of(const struct http *h)
{
  return (struct fake_net *)((char *)h - offsetof(struct fake_net, http));
}

/* ---- what a request is ---------------------------------------------- */

static bool is_write(const struct fake_call *c)
{
  return c->op == APIG_OP_ATTACH || c->op == APIG_OP_DETACH;
}

/* ".../certificates/{id}/attached-domains?limit=L&offset=O" and
 * ".../certificates/{id}/domains/attach|detach". */
/* ".../apigw/certificates[?query]" (create, list) and
 * ".../certificates/{id}" (show, update, delete). */
static void parse_object_url(struct fake_call *c, const char *p)
{
  size_t len;

  if (!p) {
    p = strstr(c->url, "/apigw/certificates");
    if (!p || (p[19] != '\0' && p[19] != '?'))
      return;
    if (strcmp(c->method, "POST") == 0)
      c->op = APIG_OP_CERT_CREATE;
    else if (strcmp(c->method, "GET") == 0)
      c->op = APIG_OP_CERT_LIST;
    return;
  }
  len = strcspn(p, "?");
  if (len == 0 || len >= sizeof(c->cert_id))
    return;
  memcpy(c->cert_id, p, len);
  c->cert_id[len] = '\0';
  if (strcmp(c->method, "GET") == 0)
    c->op = APIG_OP_CERT_SHOW;
  else if (strcmp(c->method, "PUT") == 0)
    c->op = APIG_OP_CERT_UPDATE;
  else if (strcmp(c->method, "DELETE") == 0)
    c->op = APIG_OP_CERT_DELETE;
}

static void parse_url(struct fake_call *c)
{
  const char *p = strstr(c->url, "/certificates/");
  const char *end, *rest, *off;
  size_t len;

  c->op = -1;
  if (!p) {
    parse_object_url(c, NULL);
    return;
  }
  p += strlen("/certificates/");
  end = strchr(p, '/');
  if (!end) {
    parse_object_url(c, p);
    return;
  }
  if ((len = (size_t)(end - p)) >= sizeof(c->cert_id))
    return;
  memcpy(c->cert_id, p, len);
  c->cert_id[len] = '\0';
  rest = end;
  if (strncmp(rest, "/attached-domains", 17) == 0 &&
      strcmp(c->method, "GET") == 0) {
    c->op = APIG_OP_LIST;
    off = strstr(rest, "offset=");
    c->offset = off ? strtol(off + 7, NULL, 10) : 0;
  } else if (strcmp(rest, "/domains/attach") == 0 &&
             strcmp(c->method, "POST") == 0) {
    c->op = APIG_OP_ATTACH;
  } else if (strcmp(rest, "/domains/detach") == 0 &&
             strcmp(c->method, "POST") == 0) {
    c->op = APIG_OP_DETACH;
  }
}

static char *dup_string(const yajl_val v)
{
  const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;

  return s ? strdup(s) : NULL;
}

static int parse_domain(yajl_val item, struct fake_domain *d)
{
  static const char *domain_path[] = {"domain", NULL};
  static const char *ids_path[] = {"instance_ids", NULL};
  static const char *verify_path[] = {"verified_client_certificate_enabled",
                                      NULL};
  yajl_val ids = yajl_tree_get(item, ids_path, yajl_t_array);
  yajl_val verify = yajl_tree_get(item, verify_path, yajl_t_any);

  d->domain = dup_string(yajl_tree_get(item, domain_path, yajl_t_string));
  if (!d->domain || !ids || !verify ||
      !(YAJL_IS_TRUE(verify) || YAJL_IS_FALSE(verify)))
    return -EBADMSG;
  d->verify = YAJL_IS_TRUE(verify);
  d->instances = calloc(ids->u.array.len + 1, sizeof(*d->instances));
  if (!d->instances)
    return -ENOMEM;
  for (size_t k = 0; k < ids->u.array.len; k++) {
    d->instances[k] = dup_string(ids->u.array.values[k]);
    if (!d->instances[k])
      return -EBADMSG;
    d->ninstances++;
  }
  return 0;
}

/* {"domains":[{"domain","instance_ids":[...],
 *   "verified_client_certificate_enabled"},...]} */
static void parse_write_body(struct fake_call *c)
{
  static const char *domains_path[] = {"domains", NULL};
  char err[128];
  yajl_val root, arr;

  if (!c->body)
    return;
  root = yajl_tree_parse(c->body, err, sizeof(err));
  arr = root ? yajl_tree_get(root, domains_path, yajl_t_array) : NULL;
  if (arr && arr->u.array.len) {
    c->domains = calloc(arr->u.array.len, sizeof(*c->domains));
    c->body_ok = c->domains != NULL;
    for (size_t k = 0; c->domains && k < arr->u.array.len; k++) {
      c->ndomains++;
      if (parse_domain(arr->u.array.values[k], &c->domains[k]) < 0)
        c->body_ok = false;
    }
  }
  yajl_tree_free(root);
}

static bool carries_token(const struct fake_net *n,
                          const struct curl_slist *headers)
{
  static const char name[] = "X-Auth-Token: ";

  for (; n->token && headers; headers = headers->next) {
    if (strncmp(headers->data, name, sizeof(name) - 1) == 0)
      return strcmp(headers->data + sizeof(name) - 1, n->token) == 0;
  }
  return false;
}

static void call_free(struct fake_call *c)
{
  for (size_t k = 0; k < c->ndomains; k++) {
    struct fake_domain *d = &c->domains[k];
    for (size_t i = 0; i < d->ninstances; i++)
      free(d->instances[i]);
    free(d->instances);
    free(d->domain);
  }
  free(c->domains);
  free(c->url);
  free(c->body);
  free(c);
}

static struct fake_call *record_call(struct fake_net *n,
                                     const struct http_request *rq)
{
  struct fake_call *c = calloc(1, sizeof(*c));

  if (!c)
    return NULL;
  if (n->ncalls == n->capcalls) {
    size_t cap = n->capcalls ? n->capcalls * 2 : 64;
    struct fake_call **grown = realloc(n->calls, cap * sizeof(*grown));
    if (!grown) {
      free(c);
      return NULL;
    }
    n->calls = grown;
    n->capcalls = cap;
  }
  snprintf(c->method, sizeof(c->method), "%s", rq->method);
  c->url = strdup(rq->url);
  c->body = rq->body ? strndup(rq->body, rq->body_len) : NULL;
  c->body_len = rq->body_len;
  if (!c->url || (rq->body && !c->body)) {
    call_free(c);
    return NULL;
  }
  c->authorized = carries_token(n, rq->headers);
  parse_url(c);
  if (is_write(c))
    parse_write_body(c);
  c->index = n->ncalls;
  c->sent_ms = n->now(n->clock_arg);
  for (struct fake_xfer *x = n->xfers; is_write(c) && x; x = x->next) {
    if (!is_write(x->call))
      continue;
    c->writes_in_flight++;
    c->cert_writes_in_flight += strcmp(x->call->cert_id, c->cert_id) == 0;
  }
  n->calls[n->ncalls++] = c;
  return c;
}

/* ---- completion ------------------------------------------------------ */

static void on_xfer_closed(uv_handle_t *h)
{
  struct fake_xfer *x = h->data;

  free(x->answer.body);
  free(x);
}

static void unlink_xfer(struct fake_net *n, struct fake_xfer *x)
{
  if (x->prev)
    x->prev->next = x->next;
  else
    n->xfers = x->next;
  if (x->next)
    x->next->prev = x->prev;
  x->prev = x->next = NULL;
  n->in_flight--;
}

static void fill_response(const struct fake_xfer *x, struct http_response *rs)
{
  const struct fake_answer *a = &x->answer;
  size_t max = x->rq->max_body ? x->rq->max_body : FAKE_DEFAULT_MAX_BODY;
  size_t len = a->body ? strlen(a->body) : 0;

  memset(rs, 0, sizeof(*rs));
  rs->retry_after_s = a->retry_after_s > 0 ? a->retry_after_s : -1;
  rs->error = "";
  snprintf(rs->request_id, sizeof(rs->request_id), "%s", a->request_id);
  if (x->aborted) {
    rs->curl_code = CURLE_ABORTED_BY_CALLBACK;
    rs->error = "aborted";
    rs->aborted = rs->maybe_sent = true;
  } else if (a->reset) {
    rs->curl_code = CURLE_RECV_ERROR;
    rs->error = "Connection reset by peer";
    rs->maybe_sent = true;
  } else if (len > max) {
    rs->status = a->status;
    rs->curl_code = CURLE_WRITE_ERROR;
    rs->error = "response body too large";
    rs->too_large = rs->maybe_sent = true;
  } else {
    rs->status = a->status;
    rs->body = strdup(a->body ? a->body : "");
    rs->body_len = len;
  }
  rs->latency_ms = (double)a->latency_ms;
}

static void deliver(struct fake_xfer *x)
{
  struct fake_net *n = x->net;
  struct fake_call *c = x->call;
  struct http_response rs;

  unlink_xfer(n, x);
  uv_timer_stop(&x->timer);
  if (n->before_answer && !x->aborted)
    n->before_answer(n->before_answer_arg, c);
  fill_response(x, &rs);
  if (!x->aborted && !x->answer.reset && !rs.body) {
    rs.curl_code = CURLE_OUT_OF_MEMORY; /* strdup failed: a local error */
    rs.error = "out of memory";
    rs.status = 0;
  }
  c->completed = true;
  c->aborted = x->aborted;
  c->status = rs.status;
  c->reset = x->answer.reset;
  c->done_ms = n->now(n->clock_arg);
  n->http.stats.requests++;
  n->http.stats.failures += rs.curl_code != CURLE_OK;
  n->http.stats.bytes_received += rs.body_len;
  x->cb(x->rq, &rs, x->cb_arg);
  free(rs.body); /* NULL when the callback took it */
  uv_close((uv_handle_t *)&x->timer, on_xfer_closed);
}

static void on_answer_due(uv_timer_t *t)
{
  deliver(t->data);
}

/* ---- http.h ---------------------------------------------------------- */

int http_init(struct http *h, uv_loop_t *loop, const struct http_opts *o)
{
  memset(h, 0, sizeof(*h));
  h->loop = loop;
  if (o)
    h->opts = *o;
  return 0;
}

int http_submit(struct http *h, struct http_request *rq, http_done_cb cb,
                void *arg)
{
  struct fake_net *n = net_of(h);
  struct fake_xfer *x;
  struct fake_call *c;
  uint64_t real_ms;

  if (!rq || !rq->method || !rq->url || !cb)
    return -EINVAL;
  if (h->closing)
    return -ESHUTDOWN;
  x = calloc(1, sizeof(*x));
  c = x ? record_call(n, rq) : NULL;
  if (!c) {
    free(x);
    return -ENOMEM;
  }
  x->net = n;
  x->call = c;
  x->rq = rq;
  x->cb = cb;
  x->cb_arg = arg;
  if (n->script)
    n->script(n->script_arg, c, &x->answer);
  else
    x->answer.status = 404;
  /* At least a millisecond: an answer never arrives in the loop iteration
   * that sent its request (as over a network), and a zero timer started
   * from a timer callback would run in the same pass of libuv 1.44. */
  real_ms = n->timer_ms ? n->timer_ms(n->clock_arg, x->answer.latency_ms) : 1;
  if (uv_timer_init(n->loop, &x->timer) < 0) {
    free(x->answer.body);
    free(x);
    return -ENOMEM; /* the call stays in the log, never answered */
  }
  x->timer.data = x;
  uv_timer_start(&x->timer, on_answer_due, real_ms ? real_ms : 1, 0);
  x->next = n->xfers;
  if (n->xfers)
    n->xfers->prev = x;
  n->xfers = x;
  n->in_flight++;
  h->stats.bytes_sent += rq->body_len;
  if (h->stats.connects == 0)
    h->stats.connects = 1; /* one kept-alive connection */
  return 0;
}

size_t http_in_flight(const struct http *h)
{
  return net_of(h)->in_flight;
}

void http_set_max_buffered(struct http *h, size_t bytes)
{
  net_of(h)->max_buffered = bytes;
  h->opts.max_buffered = bytes;
}

void http_abort_all(struct http *h)
{
  struct fake_net *n = net_of(h);
  struct fake_xfer **all;
  size_t k = 0, count = n->in_flight;

  if (count == 0)
    return;
  /* Only those in flight now: callbacks may submit new ones. */
  all = malloc(count * sizeof(*all));
  if (!all)
    abort();
  for (struct fake_xfer *x = n->xfers; x; x = x->next)
    all[k++] = x;
  for (k = 0; k < count; k++) {
    if (all[k]->call->completed)
      continue; /* a callback aborted it already (its memory lives on
                   until its timer's close callback) */
    all[k]->aborted = true;
    deliver(all[k]);
  }
  free(all);
}

struct close_req {
  uv_timer_t timer;
  struct http *h;
};

static void on_close_req_closed(uv_handle_t *t)
{
  free(t->data);
}

static void on_close_due(uv_timer_t *t)
{
  struct close_req *r = t->data;

  r->h->closed = true;
  if (r->h->closed_cb)
    r->h->closed_cb(r->h);
  uv_close((uv_handle_t *)&r->timer, on_close_req_closed);
}

void http_close(struct http *h, void (*closed_cb)(struct http *h))
{
  struct close_req *r = calloc(1, sizeof(*r));

  h->closing = true;
  h->closed_cb = closed_cb;
  http_abort_all(h);
  if (!r || uv_timer_init(h->loop, &r->timer) < 0)
    abort();
  r->h = h;
  r->timer.data = r;
  uv_timer_start(&r->timer, on_close_due, 1, 0);
}

void http_get_stats(const struct http *h, struct http_stats *out)
{
  *out = h->stats;
}

/* ---- the test's side ------------------------------------------------- */

int fake_net_init(struct fake_net *n, uv_loop_t *loop)
{
  memset(n, 0, sizeof(*n));
  n->loop = loop;
  return http_init(&n->http, loop, NULL);
}

void fake_net_free(struct fake_net *n)
{
  for (size_t i = 0; i < n->ncalls; i++)
    call_free(n->calls[i]);
  free(n->calls);
  n->calls = NULL;
  n->ncalls = n->capcalls = 0;
}

size_t fake_net_writes(const struct fake_net *n, const char *cert_id,
                       struct fake_call ***out)
{
  size_t count = 0;

  *out = NULL;
  for (size_t i = 0; i < n->ncalls; i++)
    count += is_write(n->calls[i]) &&
             (!cert_id || strcmp(n->calls[i]->cert_id, cert_id) == 0);
  if (count == 0 || !(*out = calloc(count, sizeof(**out))))
    return 0;
  count = 0;
  for (size_t i = 0; i < n->ncalls; i++) {
    if (is_write(n->calls[i]) &&
        (!cert_id || strcmp(n->calls[i]->cert_id, cert_id) == 0))
      (*out)[count++] = n->calls[i];
  }
  return count;
}

bool fake_call_has_domain(const struct fake_call *c, const char *domain)
{
  for (size_t k = 0; k < c->ndomains; k++) {
    if (c->domains[k].domain && strcmp(c->domains[k].domain, domain) == 0)
      return true;
  }
  return false;
}
