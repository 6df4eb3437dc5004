/* SPDX-License-Identifier: MIT */
/*
 * sign: Huawei Cloud AK/SK request signing, "SDK-HMAC-SHA256"
 * (docs/apig-api.md §8.1), byte-exact with the official SDKs.
 *
 *   CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n
 *                      CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
 *   StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA256(CR))
 *   Signature        = hex(HMAC-SHA256(key = SK bytes, StringToSign))
 *
 * Pure functions over libcrypto: no I/O, no globals, no curl. Used both by
 * the daemon (signing) and by apig-sim (verifying). Every function returns
 * 0 or a negative errno (-EINVAL for malformed input, -ENOMEM); outputs
 * returned through char ** are malloc'd and owned by the caller. No error
 * path ever formats a key or a signature into a message.
 */
#ifndef CERTBIND_SIGN_H
#define CERTBIND_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SIGN_ALGORITHM "SDK-HMAC-SHA256"
#define SIGN_DATE_HEADER "X-Sdk-Date"
#define SIGN_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */
#define SIGN_HEX_LEN 64  /* SHA-256 / HMAC-SHA256 in lowercase hex */

/* One request header; the name in any case, the value as sent (it is
 * trimmed of surrounding spaces/tabs for signing). */
struct sign_header {
  const char *name;
  const char *value;
};

struct sign_input {
  const char *method; /* "GET", "POST", ...: required */
  /* Wire path, percent-encoded as sent ("/v2/p/apigw/..."); each segment is
   * decoded then re-encoded with the unreserved set A-Za-z0-9-_.~ and a
   * trailing '/' is added when missing. NULL or "" means "/". */
  const char *path;
  /* Wire query without '?', or NULL/"" for none. '+' decodes to a space
   * (like Go's url.ParseQuery). Pairs are re-encoded and sorted by key, then
   * by value. */
  const char *query;
  /* Exactly the headers to sign (names unique case-insensitively). */
  const struct sign_header *headers;
  size_t nheaders;
  const void *body; /* the exact bytes sent; NULL with body_len 0 = none */
  size_t body_len;
  /* YYYYMMDDTHHMMSSZ, or NULL. Signing (string to sign and beyond) needs
   * an x-sdk-date header among headers (the gateway requires it signed);
   * its value is the date used, and must equal sdk_date when that is set.
   * The canonical request alone needs neither. */
  const char *sdk_date;
};

/* The canonical request text (no trailing newline). */
int sign_canonical_request(const struct sign_input *in, char **out);

/* "h1;h2;..." : lowercase, sorted, ';'-joined. */
int sign_signed_headers(const struct sign_input *in, char **out);

/* "SDK-HMAC-SHA256\n<date>\n<hex sha256 of canonical request>". */
int sign_string_to_sign(const struct sign_input *in, char **out);

/* Lowercase hex HMAC-SHA256(sk, StringToSign), NUL-terminated. */
int sign_signature_hex(const struct sign_input *in, const char *sk,
                       size_t sk_len, char hex[SIGN_HEX_LEN + 1]);

/* "SDK-HMAC-SHA256 Access=<ak>, SignedHeaders=<...>, Signature=<hex>". */
int sign_authorization(const struct sign_input *in, const char *ak,
                       const char *sk, size_t sk_len, char **out);

/* A secret key made ready once for many signatures: HMAC-SHA256 keyed
 * (the key's inner and outer pads hashed) when made, so each signature
 * only hashes its string to sign (keying was a third of a signature's
 * instructions). Holds the key inside OpenSSL; sign_key_free wipes it.
 * Not for two threads at once: each signature resets it for the next. */
struct sign_key;
/* 0, -EINVAL (empty or over-long key), -ENOMEM or -EIO. */
int sign_key_new(const char *sk, size_t sk_len, struct sign_key **out);
void sign_key_free(struct sign_key *key); /* NULL is fine */
/* sign_authorization with a key from sign_key_new: the same header. */
int sign_authorization_key(const struct sign_input *in, const char *ak,
                           struct sign_key *key, char **out);

/* Lowercase hex SHA-256 of data (the payload hash). */
int sign_sha256_hex(const void *data, size_t len, char hex[SIGN_HEX_LEN + 1]);

/* UTC "20250101T000000Z". */
int sign_format_date(time_t t, char out[SIGN_DATE_LEN + 1]);

/* Strict inverse of sign_format_date (range-checked fields). */
int sign_parse_date(const char *s, time_t *out);

/* A parsed Authorization header value (for the verifier). */
struct sign_authz {
  char *access;         /* the AK */
  char *signed_headers; /* "h1;h2" as sent: lowercase names, ';'-joined */
  char signature[SIGN_HEX_LEN + 1];
};

/* Parse "SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...".
 * Parameters in any order, each exactly once, optional spaces after ','.
 * Signature must be 64 lowercase hex digits. On error *out holds nothing
 * to free. */
int sign_parse_authorization(const char *value, struct sign_authz *out);
void sign_authz_free(struct sign_authz *a);

/* Constant-time comparison of two 64-char hex signatures (CRYPTO_memcmp);
 * false when either is not exactly 64 characters long. */
bool sign_signature_equal(const char *a, const char *b);

#endif
