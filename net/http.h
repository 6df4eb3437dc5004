/* SPDX-License-Identifier: MIT */
/*
 * http: one libuv loop driving one libcurl multi handle (HTTPS only).
 *
 * Generic: knows nothing about APIG. Every call happens on the loop thread.
 *
 * Ownership:
 *  - struct http is owned by the caller (embed it); it must stay alive until
 *    the closed_cb of http_close() has run.
 *  - struct http_request and everything it points to (url, body, user) is
 *    owned by the caller and must stay valid until its completion callback
 *    runs; it may be freed inside that callback. The headers list is COPIED
 *    by http_submit() (and the copy wiped when freed), so the caller may free
 *    its list as soon as http_submit() returns.
 *  - struct http_response is owned by http and valid only during the
 *    callback. The callback may take rs->body or rs->subject_token by
 *    setting the field to NULL (it then owns and must free, resp. wipe and
 *    free, it); otherwise http frees them (the token wiped) after the call.
 *
 * Completion callbacks run from loop context after the transfer has been
 * removed from the multi handle: they may call http_submit(),
 * http_abort_all() and http_close().
 *
 * TLS: HTTPS only (no redirects), peer and host verification always on,
 * TLS >= 1.2, HTTP/2 when the server offers it, keep-alive connections
 * shared by all transfers (one multi handle).
 *
 * Caveat (libcurl 7.88): when a kept-alive connection turns out dead
 * before any response byte arrives, curl itself re-sends the request once
 * on a new connection; no option disables that. Two ways out, per request:
 * never reuse a connection (http_request.fresh_connection: one TLS
 * handshake per request), or no_resend (the body cannot be rewound, so the
 * re-send fails with a maybe_sent transport error: no extra handshake).
 * Callers must still treat every write whose outcome is unknown as
 * "re-read before resending".
 */
#ifndef CERTBIND_HTTP_H
#define CERTBIND_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "trust.h"

/* Zero fields take the defaults shown. */
struct http_opts {
  /* Extra trust anchor (PEM file) used in addition to the system store
   * (the hashed directory ca_path); a request may override it. NULL:
   * libcurl's built-in CA bundle instead. Each file is parsed once into a
   * store (trust.h), again only when it changes; connections and TLS
   * sessions (shared by all transfers) are not reused across files or
   * versions of a file. */
  const char *ca_file;
  const char *ca_path;     /* NULL: "/etc/ssl/certs" */
  long connect_timeout_ms; /* 10000: TCP + TLS handshake */
  long total_timeout_ms;   /* 30000: whole transfer */
  size_t max_body;         /* 8 MiB: larger responses fail */
  /* Response bodies held at once by the transfers in progress, all
   * together (what a server can make certbind hold in memory, whatever it
   * answers): a transfer whose body would take the total past it fails
   * like a body over max_body (too_large). 0: 64 MiB. */
  size_t max_buffered;
  long max_host_connections;  /* 0: unlimited */
  long max_total_connections; /* 0: unlimited (up to 1024 kept idle) */
  /* When set, curl's informational text (never headers or data, so never
   * secrets) is passed here, one line at a time without the newline. It
   * runs inside a curl callback: it must not call any http_* function. */
  void (*debug)(void *debug_arg, const char *text, size_t len);
  void *debug_arg;
};

struct http_request {
  const char *method; /* "GET", "POST", "PUT", "DELETE" */
  const char *url;    /* https://... */
  /* May be NULL; copied by http_submit, or taken (take_headers). The
   * only headers curl adds are Host, Accept and Content-Length: no
   * "Expect: 100-continue", and no default Content-Type (a body's type
   * comes only from this list). */
  struct curl_slist *headers;
  /* http_submit takes headers instead of copying them, whatever it
   * returns: they are wiped and freed with the transfer (or at once on a
   * failure), and headers is NULL after the call. Saves a copy of every
   * line of every request. */
  bool take_headers;
  const char *body; /* may be NULL; not copied */
  size_t body_len;
  const char *ca_file; /* NULL: http_opts.ca_file */
  /* Send on a new connection (CURLOPT_FRESH_CONNECT). curl re-sends a
   * request by itself only on a reused connection (the caveat above), so
   * this is how a write is guaranteed to be sent at most once per
   * http_submit(). The connection then joins the pool as usual. */
  bool fresh_connection;
  /* A request with a body that curl must never re-send by itself: the body
   * is streamed by a read callback that refuses to rewind, so curl's
   * re-send on a dead reused connection fails (CURLE_SEND_FAIL_REWIND,
   * maybe_sent) and the request was sent at most once. Reuses pooled
   * connections, unlike fresh_connection. */
  bool no_resend;
  size_t max_body; /* 0: http_opts.max_body */
  void *user;      /* caller context, untouched */
};

struct http_response {
  long status;        /* 0 when no HTTP response was received */
  CURLcode curl_code; /* CURLE_OK or the transport error */
  const char *error;  /* "" on success; curl's text, never secrets */
  bool maybe_sent;    /* the request may have reached the server */
  bool too_large;     /* aborted: body over max_body, or the bodies held
                         at once over max_buffered (error says which) */
  bool aborted;       /* aborted by http_abort_all / http_close */
  char *body;         /* NUL-terminated, never NULL unless taken */
  size_t body_len;
  char request_id[80]; /* X-Request-Id response header, "" if absent */
  long retry_after_s;  /* Retry-After (seconds or HTTP-date), -1 absent */
  char *subject_token; /* X-Subject-Token header or NULL; a SECRET */
  double latency_ms;   /* curl's total time of the transfer */
};

typedef void (*http_done_cb)(struct http_request *rq, struct http_response *rs,
                             void *arg);

struct http_stats {
  uint64_t requests;       /* completed (any outcome) */
  uint64_t failures;       /* transport errors, incl. aborted */
  uint64_t connects;       /* new connections (TLS handshakes) */
  uint64_t bytes_sent;     /* request headers + bodies */
  uint64_t bytes_received; /* response headers + bodies */
};

struct http_xfer;
struct http_sock;

/* Private: a FIFO of transfers. */
struct http_list {
  struct http_xfer *head, *tail;
  size_t n;
};

/* Private: use only through the functions below. */
struct http {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer; /* curl's timeout */
  uv_idle_t kick;   /* adds submitted transfers from loop context */
  struct http_opts opts;
  struct http_list pending; /* submitted, not yet in the multi */
  struct http_list active;  /* in the multi */
  struct http_list spare;   /* reusable easy handles */
  struct http_sock *socks;  /* live per-socket contexts */
  struct http_stats stats;
  size_t buffered;    /* response body bytes allocated by transfers */
  struct trust trust; /* the CA stores, one per CA file */
  CURLSH *share;      /* TLS sessions, shared by every transfer */
  int depth;          /* nesting of our libuv callbacks */
  int open_handles;
  bool closing; /* http_close called */
  bool closed;  /* curl side torn down */
  void (*closed_cb)(struct http *h);
};

/* 0 or a negative errno. The loop must outlive the http. */
int http_init(struct http *h, uv_loop_t *loop, const struct http_opts *o);

/* Queue a request; cb runs exactly once, later, from the loop (never from
 * inside http_submit). On error (-EINVAL, -ENOMEM, -ESHUTDOWN) cb is never
 * called. */
int http_submit(struct http *h, struct http_request *rq, http_done_cb cb,
                void *arg);

size_t http_in_flight(const struct http *h);

/* Change http_opts.max_buffered (0: the default) for transfers from now
 * on; bodies already held are not cut. */
void http_set_max_buffered(struct http *h, size_t bytes);

/* Complete every queued or running transfer now with aborted = true (and
 * curl_code CURLE_ABORTED_BY_CALLBACK) so the caller can requeue it.
 * Transfers submitted from inside those callbacks are not aborted. */
void http_abort_all(struct http *h);

/* Abort everything (callbacks run), clean up curl while the loop and timer
 * are alive, then close the uv handles; closed_cb (may be NULL) runs from the
 * loop once the handles are closed. After it, uv_loop_close() can succeed. */
void http_close(struct http *h, void (*closed_cb)(struct http *h));

void http_get_stats(const struct http *h, struct http_stats *out);

#endif
