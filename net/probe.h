/* SPDX-License-Identifier: MIT */
/*
 * probe: TLS handshakes on the libuv loop that read which certificate a
 * server presents for a name (SNI), without sending any request.
 *
 * Generic: knows nothing of APIG or of the desired-state file. Every call
 * happens on the loop thread; there is no thread per handshake: a
 * non-blocking TCP connect (uv_tcp_t), then an OpenSSL client handshake
 * over memory BIOs fed from the stream. The peer's certificate is NOT
 * verified against any CA (what is served is compared by the caller, an
 * expired or self-signed leaf included); the leaf is read, the connection
 * closed.
 *
 * Bounds, all per struct probe:
 *  - at most max_concurrent handshakes at once; the others wait in a FIFO;
 *  - a connect timeout, then a handshake timeout (from the connect);
 *  - at most max_bytes read from one peer before the handshake ends;
 *  - one connect at a time to an address that has not yet accepted one,
 *    and an address whose connect failed (refused, timed out) or that let
 *    a handshake time out fails every later target at once with the same
 *    error: a dead or stalling address costs one timeout, however many
 *    names it is asked for (make a new probe to try it again).
 *
 * Ownership: struct probe is made by probe_new() and freed by the loop
 * after probe_close(). A target (its sni included) is copied by
 * probe_add(). struct probe_result is owned by the probe and valid only
 * during the callback.
 */
#ifndef CERTBIND_PROBE_H
#define CERTBIND_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#define PROBE_DEFAULT_MAX_CONCURRENT 32
#define PROBE_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define PROBE_DEFAULT_HANDSHAKE_TIMEOUT_MS 5000
#define PROBE_DEFAULT_MAX_BYTES (256u * 1024u)

/* Zero fields take the defaults above. */
struct probe_opts {
  unsigned max_concurrent;
  uint64_t connect_timeout_ms;   /* TCP connect */
  uint64_t handshake_timeout_ms; /* from the connect to the leaf */
  size_t max_bytes;              /* read from one peer */
};

struct probe_target {
  struct sockaddr_storage addr; /* IPv4 or IPv6, with the port */
  const char *sni;              /* the name asked for; NULL: no SNI */
};

/* The leaf certificate a peer presented. */
struct probe_leaf {
  unsigned char sha256[32]; /* of the DER */
  char sha256_hex[65];      /* lowercase */
  char serial[130];         /* uppercase hex, no separators ("0A1B…") */
  char serial_dec[160];     /* the same number in decimal */
  int64_t not_before;       /* unix seconds */
  int64_t not_after;        /* unix seconds */
  char subject[256];        /* RFC 2253, cut to fit */
};

enum probe_status {
  PROBE_OK,          /* the handshake gave a leaf */
  PROBE_UNREACHABLE, /* no leaf: error says why */
};

struct probe_result {
  enum probe_status status;
  struct probe_leaf leaf; /* PROBE_OK only */
  /* PROBE_UNREACHABLE: -ECONNREFUSED, -ECONNRESET (reset or closed by the
   * peer), -ETIMEDOUT (connect or handshake), -EPROTO (a TLS error or
   * alert), -EMSGSIZE (over max_bytes), or another negative errno */
  int err;
  char error[200];   /* PROBE_UNREACHABLE: one line, e.g. "connect timed out
                        after 3000 ms", "TLS: tlsv1 alert unrecognized name" */
  double elapsed_ms; /* from the connect's start */
};

typedef void (*probe_done_cb)(const struct probe_target *t,
                              const struct probe_result *r, void *arg);

struct probe;

/* A probe on loop, or NULL (-ENOMEM, or OpenSSL could not make a
 * context). The loop must outlive it. */
struct probe *probe_new(uv_loop_t *loop, const struct probe_opts *o);

/* Queue one handshake; cb runs exactly once, later, from the loop (never
 * from inside probe_add). cb may call probe_add() and probe_close().
 * 0, -EINVAL (not IPv4/IPv6), -ENOMEM or -ESHUTDOWN (closing); on error
 * cb is never called. */
int probe_add(struct probe *p, const struct probe_target *t, probe_done_cb cb,
              void *arg);

/* Targets queued or in progress. */
size_t probe_pending(const struct probe *p);

/* The most handshakes that were in progress at once. */
unsigned probe_peak_concurrent(const struct probe *p);

/* Fail everything queued or in progress with -ECANCELED (their callbacks
 * run, from the loop), close every handle and free the probe once they
 * are closed; closed_cb (may be NULL) runs then. Call once. */
void probe_close(struct probe *p, void (*closed_cb)(void *arg), void *arg);

/* "IP:PORT" or "[IPv6]:PORT" (port 1..65535) into *out: 0 or -EINVAL. */
int probe_parse_address(const char *s, struct sockaddr_storage *out);

/* The address as "IP:PORT" or "[IPv6]:PORT" into buf (>= 64 bytes). */
const char *probe_format_address(const struct sockaddr_storage *a, char *buf,
                                 size_t size);

/* ---- comparing a leaf with the certificate wanted ------------------- */

/* What is wanted: the leaf's SHA-256 (a certificate from files), or its
 * serial number and not_after (a certificate known by its API object);
 * neither: unknown, the leaf is reported but not judged. */
struct probe_want {
  bool has_sha256;
  unsigned char sha256[32];
  /* as the API gives it: the leaf's serial in decimal, or in hex (any
   * case, ':' and leading zeros ignored); either form matches, since
   * which one APIG gives is not published. NULL: unknown */
  const char *serial;
  int64_t not_after; /* unix seconds; 0: unknown */
};

enum probe_verdict {
  PROBE_VERDICT_OK,
  PROBE_VERDICT_MISMATCH,    /* a leaf other than the one wanted */
  PROBE_VERDICT_EXPIRED,     /* a leaf past its not_after, wanted or not */
  PROBE_VERDICT_UNREACHABLE, /* no leaf */
  PROBE_VERDICT_UNKNOWN,     /* a leaf, and nothing to compare it with */
};

/* Whether r has a leaf and it is the one w wants (false when w wants
 * nothing known). */
bool probe_matches(const struct probe_result *r, const struct probe_want *w);

/* The verdict of result r against w at now_s (unix seconds). A served leaf
 * past its not_after is EXPIRED whichever certificate it is (clients
 * refuse it); probe_matches() tells whether it is the one wanted. */
enum probe_verdict probe_judge(const struct probe_result *r,
                               const struct probe_want *w, int64_t now_s);

/* "ok", "mismatch", "expired", "unreachable", "unknown" */
const char *probe_verdict_name(enum probe_verdict v);

#endif
