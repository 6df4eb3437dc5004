/* SPDX-License-Identifier: MIT */
/*
 * trust: the certificate stores TLS peers are verified against, built once
 * per CA file and rebuilt when the file changes.
 *
 * A store is the certificates of one PEM file plus the hashed CA directory
 * (the system store, looked up on demand). Handing libcurl CURLOPT_CAINFO
 * instead makes it parse the whole file again for every new connection:
 * OpenSSL 3 decodes each certificate's key through its provider machinery,
 * which was a quarter of certbind's CPU per TLS handshake with a one-
 * certificate file and is ~140 times that with the Debian bundle.
 *
 * Freshness: trust_get stats the file and the directory (device, inode,
 * size, mtime, ctime) and rebuilds the store when either changed, so a
 * rotated or removed anchor is what the next connection sees.
 *
 * Single-threaded; callers own struct trust (embed it).
 */
#ifndef CERTBIND_TRUST_H
#define CERTBIND_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509_vfy.h>

struct trust_file; /* private */

struct trust {
  char *dir;          /* hashed CA directory, or NULL */
  char *default_file; /* the file for a NULL ca_file, or NULL */
  struct trust_file *files;
  size_t n, cap;
  uint64_t generation; /* of the last build */
};

/* dir: the hashed CA directory every store consults (NULL: none);
 * default_file: the PEM file used when trust_get is given NULL (NULL: the
 * directory alone). Both are copied. 0 or -ENOMEM. */
int trust_init(struct trust *t, const char *dir, const char *default_file);

/* The entry of ca_file (NULL: the default file), added on first use and
 * stable for the life of t: a small index that names the trust domain
 * (http.c tags connections with it). No I/O. -ENOMEM or the index. */
long trust_id(struct trust *t, const char *ca_file);

/* The store of entry id, built on first use and rebuilt when the file or
 * the directory changed since (one stat of each per call: call it per new
 * connection, not per request). *store is borrowed: valid until the next
 * trust_get of the same id or trust_free (take a reference, e.g.
 * SSL_CTX_set1_cert_store, to keep it). *generation identifies the build.
 * 0, -EINVAL (no such id), or -ENOENT/-EACCES/-EBADMSG/-ENOMEM with a
 * reason in why (the file
 * could not be read or holds no certificate): fail closed, never fall back
 * to a store without it. */
int trust_get(struct trust *t, size_t id, X509_STORE **store,
              uint64_t *generation, char *why, size_t why_len);

void trust_free(struct trust *t);

#endif
