/* SPDX-License-Identifier: MIT */
/*
 * auth: per-account credentials applied to APIG requests (docs/apig-api.md
 * §8). No I/O and no event loop: the engine calls
 * these functions and owns the transfers.
 *
 *  - aksk: each request is signed (sign.h) over host, x-sdk-date and, when
 *    there is a body, content-type; X-Project-Id is added (unsigned).
 *  - token: X-Auth-Token with the configured token.
 *  - password: X-Auth-Token with a token the engine obtained from IAM with
 *    auth_iam_request_body(), stored in a struct auth_token and renewed
 *    when auth_token_needs_renewal() says so (or once on a token error).
 *
 * Functions return 0 or a negative errno and never produce error text, so
 * no secret can leak through an error path. Headers that carry a secret
 * (Authorization, X-Auth-Token) should be freed with auth_headers_free(),
 * which wipes them.
 */
#ifndef CERTBIND_AUTH_H
#define CERTBIND_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"

/* The Content-Type auth_add_headers() sends (and signs) with a body. */
#define AUTH_CONTENT_TYPE "application/json"

/*
 * Append the auth headers of one request to *headers, all or nothing.
 *
 * For aksk the headers are "Host: <url_host>", "Content-Type:
 * application/json" (only when body_len > 0), "X-Sdk-Date", "X-Project-Id"
 * and "Authorization". Host and Content-Type are appended explicitly so
 * that libcurl sends exactly the signed bytes: the caller must not add its
 * own Host or Content-Type. url_host is "host[:port]" as in the URL (see
 * auth_url_host()); path and query are the wire forms (query without '?',
 * NULL for none); now is the wall clock (X-Sdk-Date).
 *
 * For token and password, "X-Auth-Token: <token>" (token, or the account's
 * configured token when token is NULL and method is token) plus the same
 * Content-Type rule. -EINVAL on missing credentials or bad input,
 * -ENOMEM.
 */
int auth_add_headers(const struct config_account *acct, const char *token,
                     const char *method, const char *url_host, const char *path,
                     const char *query, const void *body, size_t body_len,
                     time_t now, struct curl_slist **headers);

/* The same, for an aksk account, signed with key: its secret key made
 * ready once (sign_key_new(acct->secret_key)); NULL signs with the
 * account's secret key as auth_add_headers does. Other methods ignore
 * key. */
struct sign_key;
int auth_add_headers_key(const struct config_account *acct,
                         struct sign_key *key, const char *token,
                         const char *method, const char *url_host,
                         const char *path, const char *query, const void *body,
                         size_t body_len, time_t now,
                         struct curl_slist **headers);

/* "host[:port]" of an http(s) URL as libcurl sends it in Host: the port
 * only when given and not the scheme's default (443 / 80). Malloc'd. */
int auth_url_host(const char *url, char **host);

/* Wipe every header string (they may hold a token or a signature), then
 * curl_slist_free_all(). NULL is fine. */
void auth_headers_free(struct curl_slist *headers);

/* True for a header line whose value must never be logged
 * (Authorization, X-Auth-Token, X-Subject-Token, X-Security-Token). */
bool auth_header_is_secret(const char *line);

/* "<iam_endpoint>/v3/auth/tokens?nocatalog=true" (password accounts). */
int auth_iam_url(const struct config_account *acct, char **url);

/*
 * The JSON body of the IAM password-token request (reference §3.1):
 * methods ["password"], user name/password/domain name, scoped to the
 * account's project id. Built with yajl into memory that is wiped when
 * grown; the caller must OPENSSL_cleanse() and free *body (it holds the
 * password). -EINVAL unless the account uses method password with user,
 * domain, password and project_id set.
 */
int auth_iam_request_body(const struct config_account *acct, char **body,
                          size_t *len);

/* token.expires_at of a 201 body ("2019-02-13T06:52:13.855000Z"; a
 * fraction is truncated; 'Z' or a +hh:mm/-hh:mm offset). -EINVAL when the
 * body is not JSON or the field is missing or malformed. */
int auth_iam_parse_expiry(const char *body, size_t len, time_t *expires_at);

/* A cached IAM token. Zero-initialise; value NULL means none. */
struct auth_token {
  char *value;
  time_t expires_at;
  time_t obtained_at;
};

/* Replace the token (the X-Subject-Token header value, surrounding
 * whitespace trimmed) and its times; the old value is wiped first. */
int auth_token_set(struct auth_token *t, const char *value, size_t len,
                   time_t expires_at, time_t now);

/* Renew at 80 % of the token's life or 1 h before expires_at, whichever is
 * earlier, but never before half its life (a token shorter than 2 h would
 * otherwise be renewed on every request); always true when there is no
 * token or its times are not sane. */
bool auth_token_needs_renewal(const struct auth_token *t, time_t now);

/* Wipe (OPENSSL_cleanse) and free the value; zero the struct. */
void auth_token_clear(struct auth_token *t);

/*
 * IAM tokens kept across passes (the daemon: a token is reused
 * until its renewal time). One slot per account name, with a digest of
 * everything the token was obtained with and for: the IAM endpoint, user,
 * domain, password, project, region and APIG endpoint. A reload that
 * changes any of them finds no token, so a token is never sent for other
 * credentials than those it was made with. The digest is a SHA-256
 * salted with random bytes of this cache: it says nothing about the
 * password outside the process. Tokens are wiped when replaced, dropped
 * or freed. Zero-initialise.
 */
struct auth_token_slot;
struct auth_token_cache {
  struct auth_token_slot *slots;
  size_t n;
  unsigned char salt[32];
  bool salted;
};

/* A copy of acct's cached token into *out (auth_token_clear it) when one
 * was stored for the same credentials and is not due for renewal at now
 * (auth_token_needs_renewal): 0. -ENOENT when there is none (a token
 * stored for other credentials is wiped then), -ENOMEM. */
int auth_token_cache_get(struct auth_token_cache *c,
                         const struct config_account *acct, time_t now,
                         struct auth_token *out);

/* Store a copy of t as acct's token (the previous one is wiped). */
int auth_token_cache_put(struct auth_token_cache *c,
                         const struct config_account *acct,
                         const struct auth_token *t);

/* Forget acct's token (it earned a token error: revoked or expired). */
void auth_token_cache_drop(struct auth_token_cache *c,
                           const struct config_account *acct);

/* Wipe the tokens of accounts that cfg no longer has, or whose
 * credentials changed (a reload). */
void auth_token_cache_retain(struct auth_token_cache *c,
                             const struct config *cfg);

/* Wipe and free every token; the cache is empty and usable again. */
void auth_token_cache_free(struct auth_token_cache *c);

#endif
