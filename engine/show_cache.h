/* SPDX-License-Identifier: MIT */
/*
 * show_cache: the Shows of certificates given by id that the daemon keeps
 * from one pass to the next (in memory only), so that a resync does not
 * show every certificate again: an object's content changes only when
 * someone updates it in place, and an account's whole request quota is a
 * few requests a second.
 *
 * An entry is keyed by the account's API endpoint, its project and the
 * certificate's id ("ENDPOINT PROJECT ID", show_cache_key), and holds
 * what a pass keeps of a Show (id, SANs, serial, not_before, not_after)
 * and the unix ms it was answered. Whether an entry may stand for a Show
 * is the pass's rule (engine/pass_read.c): younger than
 * SHOW_CACHE_MAX_AGE_MS, its end beyond policy.expiry_warning_days, its
 * SANs covering every domain the file wants on it, and nothing served by
 * a gateway contradicting it.
 *
 * Bounded by the file: every lookup and store marks its entry, and
 * show_cache_sweep (the daemon, after each pass) drops the entries no
 * pass touched since the last sweep, i.e. those of certificates no longer
 * in the file.
 *
 * Nothing in it is a secret. Not thread-safe: the loop's thread only. A
 * zero-initialised struct show_cache is a valid empty cache.
 */
#ifndef CERTBIND_SHOW_CACHE_H
#define CERTBIND_SHOW_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "config.h"

/* How long a Show may stand for the next ones: an hour. A certificate
 * updated in place (another renewal tool) is seen within that time even
 * when it is not near its end; near its end it is shown every pass. */
#define SHOW_CACHE_MAX_AGE_MS ((int64_t)60 * 60 * 1000)

/* Room for a key: an endpoint URL, a project ID and a certificate id. */
#define SHOW_CACHE_KEY_MAX 1200

struct show_cache_entry {
  char *key;
  /* id, san, serial_number, not_before, not_after; the other strings
   * NULL */
  struct apig_cert cert;
  int64_t shown_ms; /* unix ms of the Show's answer */
  bool touched;     /* found or stored since the last sweep */
};

struct show_cache {
  void *root; /* tsearch(3) tree of struct show_cache_entry by key */
  size_t n;
};

/* The key of certificate cert of cfg into buf: 0, -ENOENT when it is not
 * given by id (a certificate from files is never shown), or -ENAMETOOLONG
 * when it does not fit in len bytes. */
int show_cache_key(char *buf, size_t len, const struct config *cfg,
                   size_t cert);

/* The entry of key (marked touched), or NULL (also when c is NULL). It is
 * valid until the next call that changes c. */
const struct show_cache_entry *show_cache_find(struct show_cache *c,
                                               const char *key);

/* Store a copy of what a pass keeps of Show cert (id, SANs, serial,
 * not_before, not_after), answered at shown_ms, as the entry of key
 * (replacing any; marked touched). 0, or -ENOMEM: then c has no entry of
 * key (an old one would be stale). */
int show_cache_put(struct show_cache *c, const char *key,
                   const struct apig_cert *cert, int64_t shown_ms);

/* Drop the entry of key, if any (NULL c: nothing). */
void show_cache_evict(struct show_cache *c, const char *key);

/* Drop every entry not touched since the last sweep, and clear the marks
 * of the others. Returns how many were dropped. */
size_t show_cache_sweep(struct show_cache *c);

/* Copy of the fields a pass keeps of a Show (id, san, serial_number,
 * not_before, not_after) into *dst (its other strings NULL; apig_cert_free
 * it). 0 or -ENOMEM (*dst then empty). */
int show_cache_cert_copy(struct apig_cert *dst, const struct apig_cert *src);

/* Free every entry; c is empty and usable again. NULL: nothing. */
void show_cache_free(struct show_cache *c);

#endif
