/*
 * ledger: the ownership ledger (SPEC §1, §5), state_dir/ledger.json.
 *
 * It records the bindings (certificate_id, instance_id, domain) that
 * certbind itself attached, and when. `sync` mode detaches only bindings
 * found here; a missing ledger means nothing is owned.
 *
 * In memory: an array of entries plus an open-addressing hash index, so
 * lookups are O(1) and 100,000 entries are cheap. Domains are compared
 * case-insensitively and stored lowercase (DNS names). Entry order in
 * memory is unspecified (removal moves the last entry into the hole); the
 * file is always sorted, so it is stable and diffable.
 *
 * File: {"version":1,"entries":[{"certificate_id":…,"instance_id":…,
 * "domain":…,"attached_at":<unix s>}, …]}, mode 0600, written atomically.
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

/* Owned by the ledger (one allocation for the three strings): read only,
 * valid until the entry is removed or the ledger freed. */
struct ledger_entry {
  char *certificate_id;
  char *instance_id;
  char *domain;
  int64_t attached_at; /* unix seconds */
};

struct ledger {
  struct ledger_entry *entries;
  uint64_t *hashes; /* hashes[i] belongs to entries[i] */
  size_t count, cap;
  size_t *slots; /* index + 1 into entries; 0 = empty */
  size_t nslots; /* a power of two, or 0 */
};

/* Load state_dir/ledger.json into *l (initialised here). A missing file
 * gives an empty ledger and 0; a corrupt one -EBADMSG (the caller decides:
 * refusing to detach anything is the safe reading) and an empty *l. */
int ledger_load(const char *state_dir, struct ledger *l);

/* Write state_dir/ledger.json atomically, sorted, mode 0600. */
int ledger_save(const char *state_dir, const struct ledger *l);

/* Record an attach. Idempotent: an entry already present keeps its
 * attached_at. 0, -EINVAL (an empty or NULL field) or -ENOMEM. */
int ledger_add(struct ledger *l, const char *cert_id, const char *instance_id,
               const char *domain, int64_t when);

/* Forget a binding: 0, or -ENOENT when it was not there. */
int ledger_remove(struct ledger *l, const char *cert_id,
                  const char *instance_id, const char *domain);

bool ledger_contains(const struct ledger *l, const char *cert_id,
                     const char *instance_id, const char *domain);

/* The entry for a binding, or NULL. Valid until the next add/remove. */
const struct ledger_entry *ledger_find(const struct ledger *l,
                                       const char *cert_id,
                                       const char *instance_id,
                                       const char *domain);

size_t ledger_count(const struct ledger *l);

/* Entry i < ledger_count(l), in unspecified order. */
const struct ledger_entry *ledger_at(const struct ledger *l, size_t i);

void ledger_free(struct ledger *l);

/* Serialise / parse the file's JSON (used by load/save; for tests). */
int ledger_to_json(const struct ledger *l, char **out, size_t *len);
int ledger_from_json(const char *json, size_t len, struct ledger *l);

#endif
