/* SPDX-License-Identifier: MIT */
/*
 * visibility: each account's write-to-visible delay as the passes learnt
 * it (engine/pass_confirm.c), kept in memory by the daemon and in
 * state_dir/visibility.json between processes, so that a pass starts from
 * what earlier ones learnt (a one-shot `apply` too) instead of reading the
 * delay out again.
 *
 * An account is keyed by its API endpoint and project ("ENDPOINT
 * PROJECT"): the delay is the API's, for that project. Each entry holds
 * the interval learnt: a read lo_ms after a write did not show it, one
 * hi_ms after showed it (when known), and when it last changed. Nothing
 * in it is a secret; the file is mode 0644.
 *
 * A zero-initialised struct visibility_set is a valid empty set.
 */
#ifndef CERTBIND_VISIBILITY_H
#define CERTBIND_VISIBILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VISIBILITY_FILE "visibility.json"
/* visibility_read refuses bigger files. */
#define VISIBILITY_MAX_SIZE (1u << 20)
/* Room for a key: an endpoint URL and a project ID. */
#define VISIBILITY_KEY_MAX 1024

struct visibility_entry {
  char *key;         /* the account's endpoint and project */
  uint64_t lo_ms;    /* a read this long after a write did not show it */
  uint64_t hi_ms;    /* a read this long after a write showed it (known) */
  bool known;        /* hi_ms is known */
  int64_t learnt_ms; /* unix ms when the interval last changed (0: never) */
};

struct visibility_set {
  struct visibility_entry *v;
  size_t n;
};

/* The key of an account into buf: 0, or -ENAMETOOLONG when it does not
 * fit in len bytes. */
int visibility_key(char *buf, size_t len, const char *endpoint,
                   const char *project_id);

/* The entry of key, or NULL (also when s is NULL). */
struct visibility_entry *visibility_find(const struct visibility_set *s,
                                         const char *key);

/* Set the entry of e->key to *e (a copy of the key is taken; the entry is
 * added when there is none). 0 or -ENOMEM (s unchanged). */
int visibility_put(struct visibility_set *s, const struct visibility_entry *e);

/* Every entry of src that dst lacks, or that was learnt later than dst's,
 * into dst: the newer estimate of each account wins. 0 or -ENOMEM (dst
 * may hold some of src's entries). */
int visibility_merge(struct visibility_set *dst,
                     const struct visibility_set *src);

/* Free what *s holds; it is empty and usable again. NULL: nothing. */
void visibility_set_free(struct visibility_set *s);

/* Read state_dir/visibility.json into *s (emptied first; visibility_set_free
 * it, also after an error): 0, -ENOENT when there is none, -EBADMSG when
 * it is not a valid file (why, when not NULL, says what is wrong), or
 * another negative errno (see statefile_strerror). */
int visibility_read(const char *state_dir, struct visibility_set *s, char *why,
                    size_t why_len);

/* Write s to state_dir/visibility.json atomically, mode 0644. 0 or a
 * negative errno (see statefile_strerror). */
int visibility_write(const char *state_dir, const struct visibility_set *s);

#endif
