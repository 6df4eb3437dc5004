/* SPDX-License-Identifier: MIT */
/*
 * ledger: the ownership ledger, state_dir/ledger.json (docs/cli.md,
 * `ledger.json`).
 *
 * It records the bindings (certificate_id, instance_id, domain) that
 * certbind saw itself attach (a 204, or its own re-read after an unknown
 * outcome), and when: what it owns. `sync` mode detaches only owned
 * bindings; a missing ledger means nothing is owned.
 *
 * Beside ownership it keeps intents: attaches about to be sent in sync
 * mode, written ahead so that a crash between an attach and the end of
 * the pass is noticed. An intent is never ownership. The pass that wrote
 * an intent resolves it before it ends (owned when the attach was applied,
 * dropped otherwise); an intent found at the start of a pass was left by
 * a crash, and when its binding is live it is *uncertain*: never detached,
 * owned only after `certbind adopt`.
 *
 * In memory: an array of entries plus an open-addressing hash index, so
 * lookups are O(1) and 100,000 entries are cheap. Domains are compared
 * case-insensitively and stored lowercase (DNS names). Entry order in
 * memory is unspecified (removal moves the last entry into the hole); the
 * file is always sorted, so it is stable and diffable.
 *
 * File: {"version":1,"entries":[{"certificate_id":…,"instance_id":…,
 * "domain":…,"attached_at":<unix s>}, …],"intents":[same fields],
 * "certificates":[{"sha256":…,"object_id":…,"name":…,"certificate":…,
 * "account":…,"created":bool,"bound_at":<unix s>,"superseded_at":<unix s>},
 * …]}, mode
 * 0600, written atomically. "entries" are owned; "intents" (optional, an
 * older certbind skips it) are not. One key is in at most one of them.
 * "certificates" (optional: a ledger written before it loads as having
 * none, and an older certbind skips it) are the APIG certificate objects
 * of certificates given as files (cert_file + key): which object holds
 * which leaf, and whether certbind created it (only those are ever
 * deleted). A record's "account" (optional: written only when known; a
 * record without it loads with it empty, and an older certbind skips it)
 * is the account the object lives in, as "ENDPOINT PROJECT_ID" (the
 * account's API endpoint and project ID, not its name, which the file may
 * change): with it, an object the file no longer names can still be
 * looked up at APIG.
 *
 * A zero-initialised struct ledger is a valid empty ledger.
 */
#ifndef CERTBIND_LEDGER_H
#define CERTBIND_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_FILE "ledger.json"
#define LEDGER_MAX_FILE_SIZE (256u * 1024u * 1024u)
/* The account key of a record, NUL included: an https:// endpoint (a host
 * name of at most 253 characters, a port), a space and a 32-character
 * project ID fit. A key that does not is not recorded. */
#define LEDGER_ACCOUNT_MAX 320

/* Owned by the ledger: read only, valid until the entry is removed or the
 * ledger freed. The certificate and instance IDs are shared by every
 * entry that has them (struct ledger_name), the domain is the entry's. */
struct ledger_entry {
  char *certificate_id;
  char *instance_id;
  char *domain;
  int64_t attached_at; /* unix seconds: the attach, or the intent's time */
  bool intent;         /* an attach about to be sent: not owned */
};

struct ledger_name; /* ledger.c */

/* An APIG certificate object holding a managed certificate's leaf. */
struct ledger_cert {
  char sha256[65];       /* the leaf's SHA-256 (DER), lower-case hex */
  char object_id[65];    /* APIG's id of the object */
  char name[64];         /* the object's name at APIG */
  char certificate[256]; /* the file's certificate name it was made for */
  /* "ENDPOINT PROJECT_ID" of its account (the form of visibility.h's
   * visibility_key), "" when not known (a record written before certbind
   * kept it) */
  char account[LEDGER_ACCOUNT_MAX];
  bool created;          /* certbind created it: it may delete it */
  int64_t bound_at;      /* unix s it was last seen with a binding, 0 never */
  int64_t superseded_at; /* unix s it stopped holding a current leaf of the
                            file, 0 while it holds one */
};

struct ledger {
  struct ledger_cert *certs; /* certificate objects, in no order */
  size_t ncerts;
  struct ledger_entry *entries;
  uint64_t *hashes; /* hashes[i] belongs to entries[i] */
  size_t count, cap;
  uint32_t *slots; /* index + 1 into entries; 0 = empty */
  size_t nslots;   /* a power of two, or 0 */
  /* The IDs of the entries, each once with a count of its users: 100,000
   * bindings name a few gateways and certificates (6 MB less than a copy
   * in every entry). Open addressing, names_cap a power of two or 0. */
  struct ledger_name **names;
  size_t nnames, names_cap;
};

/* Load state_dir/ledger.json into *l (initialised here). A missing file
 * gives an empty ledger and 0; a corrupt one -EBADMSG (the caller decides:
 * refusing to detach anything is the safe reading) and an empty *l. */
int ledger_load(const char *state_dir, struct ledger *l);

/* Write state_dir/ledger.json atomically, sorted, mode 0600. */
int ledger_save(const char *state_dir, const struct ledger *l);

/* Room for n entries in all, so that adding up to n grows nothing (a
 * pass that will own its attaches says how many: arrays grown by doubling
 * would leave up to half of them unused). 0 or -ENOMEM. */
int ledger_reserve(struct ledger *l, size_t n);

/* Record an applied attach: owned from now on. An owned entry already
 * present keeps its attached_at; an intent for the key becomes owned at
 * `when`. 0, -EINVAL (an empty or NULL field) or -ENOMEM. */
int ledger_add(struct ledger *l, const char *cert_id, const char *instance_id,
               const char *domain, int64_t when);

/* Record the intent to attach: a new entry with intent set (an intent
 * already there takes `when`). An owned key stays owned and unchanged
 * (*added false). *added (may be NULL): whether an intent was written. */
int ledger_add_intent(struct ledger *l, const char *cert_id,
                      const char *instance_id, const char *domain, int64_t when,
                      bool *added);

/* Forget a binding, owned or intent: 0, or -ENOENT when it was not there. */
int ledger_remove(struct ledger *l, const char *cert_id,
                  const char *instance_id, const char *domain);

/* Drop an intent; an owned entry is left alone (-ENOENT). */
int ledger_remove_intent(struct ledger *l, const char *cert_id,
                         const char *instance_id, const char *domain);

/* Any entry, owned or intent. */
bool ledger_contains(const struct ledger *l, const char *cert_id,
                     const char *instance_id, const char *domain);

/* An owned entry (not an intent). */
bool ledger_owns(const struct ledger *l, const char *cert_id,
                 const char *instance_id, const char *domain);

/* The entry for a binding (owned or intent), or NULL. Valid until the
 * next add/remove. */
const struct ledger_entry *ledger_find(const struct ledger *l,
                                       const char *cert_id,
                                       const char *instance_id,
                                       const char *domain);

/* Entries, owned and intents alike. */
size_t ledger_count(const struct ledger *l);

/* Entry i < ledger_count(l), in unspecified order. */
const struct ledger_entry *ledger_at(const struct ledger *l, size_t i);

/* The record of the object holding leaf sha256 (hex, any case), or NULL.
 * Valid until the next ledger_cert_put/remove. */
struct ledger_cert *ledger_cert_find(struct ledger *l, const char *sha256);
/* The record of object object_id, or NULL. */
struct ledger_cert *ledger_cert_find_id(struct ledger *l,
                                        const char *object_id);
/* Record c (copied), replacing the record of the same sha256 or
 * object_id. 0, -EINVAL (an empty sha256 or object_id) or -ENOMEM. */
int ledger_cert_put(struct ledger *l, const struct ledger_cert *c);
/* Forget the record of object object_id: 0 or -ENOENT. */
int ledger_cert_remove(struct ledger *l, const char *object_id);

void ledger_free(struct ledger *l);

/* Serialise / parse the file's JSON (used by load/save; for tests). */
int ledger_to_json(const struct ledger *l, char **out, size_t *len);
int ledger_from_json(const char *json, size_t len, struct ledger *l);

#endif
