/* SPDX-License-Identifier: MIT */
/*
 * memo: what a daemon's passes remember about each binding that failed,
 * so that a binding that keeps failing is not hammered. A permanent error
 * (a 4xx answer to a write of that binding's domain alone) is not retried
 * until the binding's entry in the file changes: the key holds everything
 * the entry says, so a changed entry has another key and starts fresh.
 * Any other failure waits for its next retry, 1, 2, 4 … minutes after the
 * pass that failed (at most an hour).
 *
 * Pure data, no I/O and no clock: the engine reads the set of the last
 * pass while it plans (memo_find, memo_holds) and builds the next one
 * when the pass is over (memo_set_add, memo_next, memo_set_sort).
 *
 * A zero-initialised struct memo_set is a valid empty set.
 */
#ifndef CERTBIND_MEMO_H
#define CERTBIND_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for a key: two IDs, a DNS name (at most 253) and the flag. */
#define MEMO_KEY_MAX 512

struct memo {
  char *key; /* memo_key(): "cert_id instance_id domain verify" */
  bool permanent;
  int64_t next_retry; /* unix s; 0 = none */
  uint32_t failures;  /* consecutive failed passes */
  uint32_t attempts;  /* requests spent on it over those passes */
  char error_code[64];
  char *error_msg;
  char request_id[80];
};

struct memo_set {
  struct memo *memos; /* sorted by key once memo_set_sort() ran */
  size_t n, cap;
};

/* The key of one binding of the file into buf; -ENAMETOOLONG when it does
 * not fit in len bytes. */
int memo_key(char *buf, size_t len, const char *certificate_id,
             const char *instance_id, const char *domain, bool verify_client);

/* The memo of key in a sorted set, or NULL (also when s is NULL). */
const struct memo *memo_find(const struct memo_set *s, const char *key);

/* Whether m still holds its binding back at now_s (unix s): a permanent
 * failure always, another until its next retry. */
bool memo_holds(const struct memo *m, int64_t now_s);

/* The wait before the next retry of a binding that failed `failures`
 * passes in a row: 60 s, doubled per failure, at most 3600 s. */
int64_t memo_delay_s(uint32_t failures);

/* The failure counters of a binding that failed once more in a pass that
 * ended at ended_s (old: its memo from the pass before, or NULL): sets
 * m's permanent, failures and next_retry; leaves the rest of m alone. */
void memo_next(struct memo *m, const struct memo *old, bool permanent,
               int64_t ended_s);

/* Append a copy of m (its key and error_msg are copied; a NULL error_msg
 * becomes ""); 0 or -ENOMEM (s unchanged). */
int memo_set_add(struct memo_set *s, const struct memo *m);

/* Sort by key, for memo_find. */
void memo_set_sort(struct memo_set *s);

void memo_set_free(struct memo_set *s);

#endif
