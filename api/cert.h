/* SPDX-License-Identifier: MIT */
/*
 * cert: the APIG certificate-object calls (create, show, list, update,
 * delete of an SSL certificate object): URLs, the create/update body, the
 * answers parsed into plain structs, the object name certbind gives the
 * certificates it uploads, and what each certificate error code means.
 * No I/O, like apig.h, whose struct apig_url, apig_parse_error(),
 * apig_classify() and apig_outcome_unknown() serve these calls too (ops
 * APIG_OP_CERT_*).
 *
 * Every function returns 0 or a negative errno; outputs are allocated for
 * and owned by the caller (free with the matching *_free).
 *
 * Classes of the answers (apig_classify), beyond those of every call:
 *   - delete answered 404 APIG.3021/3025: APIG_DONE_ALREADY (gone);
 *   - the content and name errors (APIG.2101-2106, 2012), the quota and a
 *     delete refused while bound: APIG_PERMANENT; apig_cert_problem() says
 *     which, for a message that names the problem;
 *   - a create whose outcome is unknown (transport error after it may have
 *     left, any 5xx; apig_outcome_unknown() is true) is NOT resent blindly:
 *     the object may exist. The caller lists by the generated name first
 *     (the name holds the leaf's hash, so an object of that name holds this
 *     content) and creates only when none is found. The same holds for a
 *     2xx create whose body apig_cert_parse() refuses: the object exists
 *     but its id is unknown.
 *   - update (PUT of the same body) and delete may be resent as they are.
 * What APIG answers is not all published; the codes below that are marked
 * apig-sim are the simulator's, and any other 4xx is permanent as well, so
 * an unknown code still fails the one certificate, never worse.
 */
#ifndef CERTBIND_CERT_H
#define CERTBIND_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apig.h"

/* ---- the object name ---------------------------------------------------- */

#define APIG_CERT_NAME_MAX 50 /* characters, APIG's limit */
#define APIG_CERT_NAME_HASH 8 /* hex digits of the leaf's SHA-256 */

/* The name of an object certbind creates: "cb_" + yaml_name with every
 * character other than an ASCII letter, digit or '_' as one '_' (a
 * multi-byte UTF-8 character or a stray byte counts as one) + "_" + the
 * first 8 hex digits of the leaf's SHA-256 (sha256_hex, at least 8 hex
 * digits, either case; written lowercase). The yaml_name part is cut so the
 * whole is at most 50 characters; the hash is never cut. The result always
 * passes apig_cert_name_valid(). APIG also accepts Chinese characters;
 * certbind writes ASCII only, since what APIG counts as one is not
 * documented. out: at least APIG_CERT_NAME_MAX + 1 bytes. -EINVAL for a
 * NULL yaml_name or a sha256_hex that does not start with 8 hex digits. */
int apig_cert_name(const char *yaml_name, const char *sha256_hex,
                   char out[APIG_CERT_NAME_MAX + 1]);

/* APIG's name rule, ASCII part: 4-50 characters of [A-Za-z0-9_], the first
 * a letter. */
bool apig_cert_name_valid(const char *name);

/* ---- URLs --------------------------------------------------------------- */

/* op: APIG_OP_CERT_CREATE (cert_id NULL: POST .../certificates), or
 * APIG_OP_CERT_SHOW / _UPDATE / _DELETE (GET / PUT / DELETE
 * .../certificates/{cert_id}). ep: the account's endpoint, parsed once
 * (apig_endpoint_parse); project_id, cert_id as in apig_url_list();
 * -EINVAL otherwise. */
int apig_cert_url(const struct apig_endpoint *ep, const char *project_id,
                  enum apig_op op, const char *cert_id, struct apig_url *out);

/* "POST", "GET", "PUT" or "DELETE" for a CERT_* op; "GET" for LIST, "POST"
 * for ATTACH, DETACH and TOKEN. */
const char *apig_op_method(enum apig_op op);

/* A list request. The filters are sent percent-encoded when not NULL. */
struct apig_cert_query {
  long limit;              /* 1..APIG_LIST_LIMIT */
  long offset;             /* >= 0 */
  const char *name;        /* may match part of a name: compare the items */
  const char *common_name; /* exact */
  /* The API marks instance_id mandatory, but what to send for global
   * certificates is not published: send a gateway's id for instance
   * certificates, NULL (not sent) for global ones. */
  const char *instance_id;
};

/* GET .../certificates?limit=L&offset=O[&name=N][&common_name=C]
 * [&instance_id=I]. A filter that is empty, longer than 255 bytes or holds
 * a control character, and an instance_id that is not an id, are -EINVAL. */
int apig_cert_url_list(const struct apig_endpoint *ep, const char *project_id,
                       const struct apig_cert_query *q, struct apig_url *out);

/* ---- the create/update body --------------------------------------------- */

enum apig_cert_type { APIG_CERT_GLOBAL, APIG_CERT_INSTANCE };

/* CertificateForm, the same body for create and update (PUT needs name,
 * content and key again on every update). */
struct apig_cert_form {
  const char *name;      /* apig_cert_name_valid() */
  const char *chain_pem; /* the leaf first, then the intermediates in order */
  size_t chain_len;
  const char *key_pem; /* SECRET: PEM, not encrypted; not NUL-terminated */
  size_t key_len;
  enum apig_cert_type type;
  const char *instance_id; /* APIG_CERT_INSTANCE only: the gateway's id */
};

/* {"name":N,"cert_content":PEM,"private_key":KEY,"type":"global"}, or with
 * "type":"instance","instance_id":I; compact, no newline, the PEM texts
 * escaped exactly ("\n" for a newline). *body is malloc'd and
 * NUL-terminated.
 *
 * The body holds the private key: the caller wipes it with
 * OPENSSL_cleanse(*body, *len) before free() once it is sent (or on any
 * error of its own), and never logs it; nothing in api/ logs a body. The
 * body is written once into a buffer of its final bound, so no copy of the
 * key is left in freed memory; on error nothing is returned and what was
 * written is wiped.
 *
 * -EINVAL: a name that is not valid, an empty chain or key, a key or chain
 * that is not UTF-8 or holds a NUL byte, an instance certificate without a
 * valid instance_id, or a global one with one. */
int apig_cert_body(const struct apig_cert_form *f, char **body, size_t *len);

/* ---- answers ------------------------------------------------------------ */

/* A certificate object as show, create and update answer it (every field),
 * or as a list item (CertBase: serial_number and not_before are absent
 * there). Strings are NULL when absent or null. */
struct apig_cert {
  char *id; /* always set: a valid id (apig_id_valid) */
  char *name;
  char *type;        /* "global" | "instance" */
  char *instance_id; /* "common" for global certificates */
  char *project_id;
  char *common_name;
  char **san; /* lowercased */
  size_t nsan;
  char *serial_number; /* as given: decimal or hex is not published */
  char *signature_algorithm;
  char *algorithm_type;
  /* Unix seconds; 0 when absent, null or in a form apig_cert_time() does
   * not read (then unknown: never equal to a known time). */
  int64_t not_before;
  int64_t not_after;
  bool has_trusted_root_ca; /* is_has_trusted_root_ca */
};

/* An answer over these sizes is refused (-E2BIG). A list item is ~600
 * bytes plus its SANs: a full page of 500 items with 100 SANs of 30
 * characters each is ~1.8 MB. */
#define APIG_MAX_CERT_BODY ((size_t)1 << 20)
#define APIG_MAX_CERT_LIST_BODY ((size_t)4 << 20)
#define APIG_MAX_CERT_SAN 1000 /* SANs per certificate (public CAs: 100) */

/* Parse a show, create or update answer. Unknown fields are ignored; a
 * missing or invalid id, a field we use of a wrong type or given twice, a
 * san element that is not a string, more than APIG_MAX_CERT_SAN SANs,
 * malformed JSON and nesting over APIG_MAX_DEPTH are -EBADMSG, with a
 * reason in why (may be NULL) that names our fields only, never input
 * bytes. On error *out is zeroed. */
int apig_cert_parse(const char *body, size_t len, struct apig_cert *out,
                    char *why, size_t why_len);

/* One page of a certificate list. */
struct apig_cert_page {
  struct apig_cert *items;
  size_t n;
  long long total; /* "total", -1 if absent */
  long long size;  /* "size", -1 if absent */
};

/* Parse one list page into *out (emptied first). As apig_cert_parse, and:
 * a missing certs array is -EBADMSG (never "no certificates"); more than
 * APIG_LIST_LIMIT items -E2BIG (parsing stops there). On error *out is
 * empty. */
int apig_cert_parse_list(const char *body, size_t len,
                         struct apig_cert_page *out, char *why, size_t why_len);

void apig_cert_free(struct apig_cert *c);
void apig_cert_page_free(struct apig_cert_page *p);

/* APIG's timestamps: "YYYY-MM-DDThh:mm:ss" or with a space for the T, an
 * optional fraction (ignored), then "Z", "+hh:mm"/"-hh:mm" or nothing
 * (read as UTC). 0 and *out in Unix seconds, or -EINVAL. */
int apig_cert_time(const char *s, int64_t *out);

/* Whether an answer's serial_number is this leaf's serial: equal to its
 * decimal form, or to its hex form ignoring case, ':' separators and
 * leading zeros (which of the two APIG gives is not published). */
bool apig_cert_serial_matches(const char *api_serial, const char *serial_dec,
                              const char *serial_hex);

/* ---- what an error means ------------------------------------------------ */

enum apig_cert_problem {
  APIG_CERT_OK_OR_OTHER,   /* not a certificate-specific answer */
  APIG_CERT_KEY_MISMATCH,  /* 400 APIG.2101 */
  APIG_CERT_EXPIRED,       /* 400 APIG.2102 */
  APIG_CERT_NAMES_MISS,    /* 400 APIG.2103 (attach: SANs miss the domain) */
  APIG_CERT_CHAIN_ORDER,   /* 400 APIG.2104 */
  APIG_CERT_KEY_ENCRYPTED, /* 400 APIG.2105 */
  APIG_CERT_INVALID,       /* 400 APIG.2106: not a certificate or key */
  APIG_CERT_BAD_PARAM,     /* 400 APIG.2012 on create/update: the name or
                              another field refused (error_msg names it) */
  APIG_CERT_QUOTA,         /* create: 400 APIG.3199 (apig-sim; APIG's code
                              is not published) */
  APIG_CERT_IN_USE,        /* delete: 400 APIG.3400 (apig-sim; APIG's code
                              is not published) */
  APIG_CERT_NOT_FOUND,     /* 404 APIG.3021 / APIG.3025 */
  APIG_CERT_FORBIDDEN,     /* 403 APIG.1115: no permission on it */
};

/* The problem an answer names (error_code of apig_parse_error), or
 * APIG_CERT_OK_OR_OTHER. */
enum apig_cert_problem apig_cert_problem(enum apig_op op, long status,
                                         const char *error_code);

/* One line for a message: "the private key does not match the
 * certificate", ... ("" for APIG_CERT_OK_OR_OTHER). */
const char *apig_cert_problem_text(enum apig_cert_problem p);

#endif
