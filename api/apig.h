/* SPDX-License-Identifier: MIT */
/*
 * apig: the APIG management-API codec (docs/apig-api.md: the calls, their
 * bodies, answers and error classes). No I/O: builds URLs and bodies, parses
 * responses, classifies outcomes.
 *
 * Every function returns 0 or a negative errno; outputs are allocated for
 * and owned by the caller (free with the matching *_free).
 */
#ifndef CERTBIND_APIG_H
#define CERTBIND_APIG_H

#include <stdbool.h>
#include <stddef.h>

/* The calls certbind makes. The certificate-object calls (CERT_*) are
 * built and read by cert.h; their names and classes are here, with the
 * others'. */
enum apig_op {
  APIG_OP_LIST, /* a certificate's attached domains */
  APIG_OP_ATTACH,
  APIG_OP_DETACH,
  APIG_OP_TOKEN,
  APIG_OP_CERT_CREATE,
  APIG_OP_CERT_SHOW,
  APIG_OP_CERT_LIST,
  APIG_OP_CERT_UPDATE,
  APIG_OP_CERT_DELETE,
};

/* A request target, split the way the signer needs it. */
struct apig_url {
  char *url;  /* full URL for curl */
  char *path; /* wire path, e.g. "/v2/P/apigw/certificates/C/domains/attach" */
  char *
      query; /* wire query without '?', e.g. "limit=500&offset=0"; "" if none */
  char *host; /* Host header as curl sends it: "host" or "host:port" */
};

#define APIG_LIST_LIMIT 500 /* the API's maximum page size */

/* A configured endpoint, split once (curl's URL parser): what every URL
 * of its account starts with. Parse it once per pass and build each
 * request's URL with the *_at calls: parsing it for every request was
 * ~4 % of a request's instructions. */
struct apig_endpoint {
  char *host; /* Host header as curl sends it: "host" or "host:port" */
  char *base; /* path prefix without a trailing '/', maybe "" */
  size_t host_len, base_len;
};

/* endpoint: "https://host[:port][/base]" (no query, user info or
 * fragment), else -EINVAL (out zeroed); -ENOMEM. */
int apig_endpoint_parse(const char *endpoint, struct apig_endpoint *out);
/* Safe on a zeroed or failed one. */
void apig_endpoint_free(struct apig_endpoint *e);

/* endpoint: "https://host[:port][/base]" (no query, no user info).
 * project_id and cert_id: [A-Za-z0-9-]{1,64}, else -EINVAL.
 * url_domain may be NULL (no filter); it is percent-encoded. */
int apig_url_list(const char *endpoint, const char *project_id,
                  const char *cert_id, long limit, long offset,
                  const char *url_domain, struct apig_url *out);
/* op: APIG_OP_ATTACH or APIG_OP_DETACH. */
int apig_url_write(const char *endpoint, const char *project_id,
                   const char *cert_id, enum apig_op op, struct apig_url *out);
/* The same two from a parsed endpoint (-EINVAL for an unparsed one). */
int apig_url_list_at(const struct apig_endpoint *ep, const char *project_id,
                     const char *cert_id, long limit, long offset,
                     const char *url_domain, struct apig_url *out);
int apig_url_write_at(const struct apig_endpoint *ep, const char *project_id,
                      const char *cert_id, enum apig_op op,
                      struct apig_url *out);
/* {iam_endpoint}/v3/auth/tokens?nocatalog=true */
int apig_url_token(const char *iam_endpoint, struct apig_url *out);
void apig_url_free(struct apig_url *u);

/* A parsed endpoint + rest (a path beginning with '/', made of safe
 * characters by the caller) + query ("" or "k=v&...", percent-encoded by
 * the caller). For cert.c. */
int apig_url_build(const struct apig_endpoint *ep, const char *rest,
                   const char *query, struct apig_url *out);

/* true when s is a non-empty [A-Za-z0-9-] id of at most 64 characters. */
bool apig_id_valid(const char *s);

/* One entry of an attach/detach body. */
struct apig_domain_item {
  const char *domain;
  const char *const *instance_ids;
  size_t n_instances;
  bool verify_client; /* verified_client_certificate_enabled */
};

/* {"domains":[{"domain":D,"instance_ids":[...],
 *   "verified_client_certificate_enabled":B},...]}, compact, no newline.
 * *body is malloc'd and NUL-terminated. -EINVAL on n == 0, a NULL/empty
 * domain or instance id, an item without instance ids (the API would then
 * act on every gateway), or invalid UTF-8. */
int apig_write_body(const struct apig_domain_item *items, size_t n, char **body,
                    size_t *len);

/* One bound_domains[] entry of the list response. */
struct apig_binding {
  char *url_domain; /* lowercased */
  char *instance_id;
  bool verify_client; /* verified_client_certificate_enabled (absent: false) */
  /* instance_id is not the entry's own (apig_bindings_share_instances):
   * not freed with it */
  bool instance_shared;
};

/* Accumulates the entries of all pages of one certificate. */
struct apig_bindings {
  struct apig_binding *items;
  size_t n, cap;
};

struct apig_page {
  long long total; /* "total", -1 if absent */
  long long size;  /* "size", -1 if absent */
  size_t count;    /* entries of bound_domains in this page (duplicates too) */
};

/* A list page's body is refused past this size (SPEC §4: answers are
 * bounded). A full page of 500 bindings is ~250 KB as APIG and apig-sim
 * render it (~500 bytes an entry); with every field at its longest (a
 * 253-character domain, 64-character group name) ~750 bytes, ~370 KB. 1 MiB
 * is ~2.8x that, and keeps what a hostile server can make certbind hold
 * per list read small (http caps it while receiving: http_request.max_body). */
#define APIG_MAX_LIST_BODY ((size_t)1 << 20)
#define APIG_MAX_DEPTH 16

/* Parse one page with yajl's streaming parser, appending its entries to
 * *out. Unknown fields are ignored; a field we use with a wrong type, a
 * missing bound_domains array or url_domain/instance_id in an entry, a
 * duplicate field, malformed JSON or invalid UTF-8 is
 * -EBADMSG; a body over APIG_MAX_LIST_BODY -E2BIG; nesting over
 * APIG_MAX_DEPTH -EBADMSG. certbind always asks for pages of
 * APIG_LIST_LIMIT: a page with more entries is -E2BIG, and parsing stops
 * at the first entry past the limit (a server sending 140,000 entries a
 * page costs no more than 500). On error *out keeps only its earlier
 * entries. why (may be NULL) receives a short reason without any input
 * bytes. */
int apig_parse_list(const char *body, size_t len, struct apig_bindings *out,
                    struct apig_page *page, char *why, size_t why_len);

/* Sort by (url_domain, instance_id) and merge duplicates (the API lists a
 * domain once per inbound port). Merged entries keep verify_client only if
 * every duplicate has it, so a disagreement shows as a difference. */
void apig_bindings_dedupe(struct apig_bindings *b);
void apig_bindings_free(struct apig_bindings *b);
/* Give back the unused end of b's array (it grows by doubling from 64
 * entries, so a certificate with 10 bindings holds 64 slots): for what is
 * kept for long. */
void apig_bindings_trim(struct apig_bindings *b);
/* Entries [from, n) of b whose instance_id equals one of ids[0..nids)
 * (sorted by strcmp) point at that string instead of their own copy,
 * which is freed: a fleet's bindings name a few gateways, and 100,000
 * copies of a 36-character ID are 4.8 MB. The strings of ids must outlive
 * b's entries. */
void apig_bindings_share_instances(struct apig_bindings *b, size_t from,
                                   const char *const *ids, size_t nids);

/* The error envelope. Strings are truncated, always NUL-terminated, ""
 * when absent or when the body is not JSON. */
struct apig_error {
  char code[64];
  char msg[512];
  char request_id[80];
};

#define APIG_MAX_ERROR_BODY ((size_t)64 << 10)

/* {"error_code","error_msg","request_id"}; falls back to {"code","message"}
 * and to IAM's {"error":{"code","message"}}. Never fails: garbage, or a
 * body over APIG_MAX_ERROR_BODY, gives empty fields. */
void apig_parse_error(const char *body, size_t len, struct apig_error *out);

enum apig_class {
  APIG_OK,           /* 2xx */
  APIG_DONE_ALREADY, /* detach: 400 APIG.2000, nothing left to unbind;
                        cert delete: 404 APIG.3021/3025, already gone */
  APIG_RETRY,        /* transport, 408, 5xx, 409 APIG.3711: back off */
  APIG_THROTTLED,    /* 429, APIG(W).0308, APIG.9008: retry + cut rate */
  APIG_REAUTH,       /* token invalid/expired: renew once, retry once */
  APIG_AUTH_FATAL,   /* signature/permission: stop writes, never retry */
  APIG_PERMANENT,    /* other 4xx: failed until the file changes */
};

/* status: HTTP status (0 if none); transport_error: no HTTP response. */
enum apig_class apig_classify(enum apig_op op, long status,
                              bool transport_error, const char *error_code,
                              const char *error_msg);

/* A write (attach/detach, certificate create) whose effect is unknown: a
 * transport error after the request may have been sent, or a 5xx. Re-read
 * before any resend (a create: list by its name). A certificate update
 * (PUT of the same body) and delete (already gone answers 404, class
 * APIG_DONE_ALREADY) may be resent as they are. */
bool apig_outcome_unknown(enum apig_op op, long status, bool transport_error,
                          bool maybe_sent);

/* Whether error_code is APIG.<num> or APIGW.<num> (the front door's
 * prefix), e.g. apig_code_is(code, "3025"). false for NULL. */
bool apig_code_is(const char *error_code, const char *num);

const char *apig_class_name(enum apig_class c);
const char *apig_op_name(enum apig_op op);

#endif
