/* SPDX-License-Identifier: MIT */
/*
 * inputs: what a validation of the desired-state file depends on (SPEC §7),
 * for the daemon.
 *
 * A file can be rejected, or validate to something else, for a reason
 * outside it: a secret file chmod'ed 0640, a secret file that does not
 * exist yet, a CA file replaced. So "what was validated" is the file's
 * bytes plus, for every file it names (config_named_files()), its bytes,
 * type, mode and owner, or why it cannot be opened. inputs_ident()
 * digests that into one value, salted with random bytes of this process
 * (secret files' bytes go into it; the value is never shown): when it
 * differs from the one a validation was made with, something it depends
 * on changed and the file must be validated again; when it does not,
 * nothing did (a touch, an editor's temp file, another file of the
 * directory), and validating again would only repeat the same answer.
 *
 * Watching: the file's own directory (editors and config management
 * replace it by rename, which a watch on the file would lose) and the
 * directory of every file it names; a directory that does not exist yet is
 * watched through its nearest existing parent until it does. Any event in
 * them calls changed(); the caller debounces and compares idents.
 */
#ifndef CERTBIND_INPUTS_H
#define CERTBIND_INPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "config.h"
#include "log.h"

/* At most this many directories are watched; changes in the others are
 * noticed at the next resync pass (the daemon compares idents then too)
 * or SIGHUP. inotify watches are a per-user kernel budget. */
#define INPUTS_MAX_WATCHED_DIRS 256
/* A named file larger than this counts by its size and mtime instead of
 * its bytes (the loader reads secrets of at most 64 KiB; a CA bundle or a
 * certificate chain is well under it). */
#define INPUTS_MAX_HASHED (4u * 1024u * 1024u)

struct inputs_ident {
  unsigned char md[32]; /* SHA-256 */
  bool valid;           /* false: could not be computed (out of memory) */
};

struct inputs_watch;

struct inputs {
  uv_loop_t *loop;
  const struct log *log;
  const char *path; /* the desired-state file (borrowed) */
  /* the files the file's bytes named when they were last readable */
  struct config_files named;
  unsigned char named_md[32]; /* SHA-256 of those bytes */
  bool have_named;
  struct inputs_watch **watches;
  size_t nwatches;
  bool over_limit; /* said once that some directories are not watched */
  unsigned char salt[32];
  bool salted; /* false: no ident can be made (every event validates) */
  void (*changed)(void *arg);
  void *arg;
};

/* Nothing is watched until inputs_watch(). */
void inputs_init(struct inputs *in, uv_loop_t *loop, const struct log *log,
                 const char *path, void (*changed)(void *arg), void *arg);

/* The ident of the file and what it names, now. Re-reads the list of
 * named files when the file's bytes changed. Never fails: what cannot be
 * read is part of the ident (as its errno). */
void inputs_ident(struct inputs *in, struct inputs_ident *out);

bool inputs_same(const struct inputs_ident *a, const struct inputs_ident *b);

/* Watch the directories the last inputs_ident() found (adds new ones,
 * drops those no longer named). A directory that cannot be watched is
 * logged once and left to the resync. */
void inputs_watch(struct inputs *in);

/* Stop every watch (shutdown). Their handles close on the loop. */
void inputs_stop(struct inputs *in);

/* Free the list; the watches must be stopped and the loop run since. */
void inputs_free(struct inputs *in);

#endif
