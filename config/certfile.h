/* SPDX-License-Identifier: MIT */
/*
 * certfile: the offline checks of a certificate given as files (a PEM
 * certificate file, usually leaf + intermediates, and a private key), made
 * with OpenSSL before anything is uploaded:
 *
 *   - the file holds PEM certificates, the key is a PEM private key;
 *   - the key is not encrypted, and is RSA or ECDSA;
 *   - the key matches one certificate of the file: that one is the leaf;
 *   - the leaf and the intermediates kept are valid at `now`;
 *   - every other certificate of the file is on the leaf's issuing path.
 *
 * What is sent is the chain as APIG wants it, whatever order the file holds
 * it in: the leaf first, then each issuer in turn, a self-signed root left
 * out.
 *
 * The private key is a secret. certfile_load() reads it in place from the
 * caller's buffer (it makes no copy of its own: the caller wipes its buffer
 * with OPENSSL_cleanse when done) and no message it writes ever holds a
 * byte of it: messages name the certificate file and what is wrong.
 */
#ifndef CERTBIND_CERTFILE_H
#define CERTBIND_CERTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Larger certificate files are refused (a chain is a few KiB). */
#define CERTFILE_MAX_SIZE (1u << 20)

enum certfile_key_type {
  CERTFILE_KEY_RSA,
  CERTFILE_KEY_EC,
};

struct certfile {
  char *chain_pem; /* leaf, then intermediates in issuing order; no root */
  size_t chain_len;
  size_t chain_count; /* certificates in chain_pem */
  char sha256[65];    /* of the leaf's DER, lower-case hex */
  char *serial_hex;   /* the leaf's serial number, upper-case hex */
  char *serial_dec;   /* the same, decimal */
  int64_t not_before; /* Unix seconds */
  int64_t not_after;  /* Unix seconds */
  char *common_name;  /* the leaf's subject CN, "" when it has none */
  char **sans;        /* the leaf's DNS names, lower-case */
  size_t nsans;
  enum certfile_key_type key_type;
};

/* Load and check the certificate file at cert_path against the private
 * key key[0..key_len) at time now (Unix seconds). 0 and *out filled (free
 * it with certfile_free), or -EINVAL (or -errno for an unreadable file,
 * -ENOMEM) with a one-line message in err naming cert_path and the
 * problem; *out is then left zeroed. */
int certfile_load(const char *cert_path, const char *key, size_t key_len,
                  int64_t now, struct certfile *out, char *err, size_t errlen);

/* Which of the two inputs a refusal is about, so that a caller can point
 * at the place that named it: the key (not a PEM key, encrypted, not RSA
 * or ECDSA, matching no certificate of the file) or the certificate file
 * (everything else). */
enum certfile_input {
  CERTFILE_INPUT_CERT,
  CERTFILE_INPUT_KEY,
};

/* certfile_load, and on a refusal *blame (when not NULL) says which input
 * it is about. */
int certfile_load_blame(const char *cert_path, const char *key, size_t key_len,
                        int64_t now, struct certfile *out, char *err,
                        size_t errlen, enum certfile_input *blame);

void certfile_free(struct certfile *cf);

/* Whether one of the names covers domain: an equal name (case-insensitive),
 * or "*.parent" for a domain of exactly one more label under parent. A
 * wildcard domain ("*.example.com") is covered only by that same
 * wildcard name. */
bool certfile_covers(const char *const *sans, size_t nsans, const char *domain);

#endif
