/* SPDX-License-Identifier: MIT */
/*
 * statelock: one process at a time writes a state directory (docs/cli.md, "The state directory lock").
 *
 * A pass that writes (apply, adopt, each pass of the daemon) holds an
 * exclusive flock(2) on state_dir/lock from before it reads the ledger
 * until its state files are written; a reader (plan, status) holds it
 * shared while it reads them. A second writer waits up to
 * STATELOCK_WAIT_MS and then gives up, naming the holder's pid. flock
 * locks die with their process, so a crash never leaves the directory
 * locked. The exclusive holder writes its pid into the file, for the
 * message; /proc/locks names any holder, shared ones too.
 */
#ifndef CERTBIND_STATELOCK_H
#define CERTBIND_STATELOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define STATELOCK_FILE "lock"
#define STATELOCK_WAIT_MS 10000u

struct statelock {
  int fd; /* -1 (or 0 from a zeroed struct): not held */
  bool held;
};

/* One attempt: 0 (held), -EWOULDBLOCK (another process holds it; *holder
 * its pid, or 0 when unknown), or another negative errno (the file could
 * not be opened or is not a regular file). A reader finds no lock file to
 * take when the directory or the file does not exist yet, or cannot be
 * written by it: then 0 with nothing held (no writer has been there, or
 * it cannot be told apart: reading is harmless). */
int statelock_try(const char *dir, bool exclusive, struct statelock *lk,
                  pid_t *holder);

/* statelock_try every 100 ms for up to wait_ms (blocking the caller). */
int statelock_wait(const char *dir, bool exclusive, unsigned wait_ms,
                   struct statelock *lk, pid_t *holder);

void statelock_release(struct statelock *lk);

/* A one-line message for an error of statelock_try/wait on dir, e.g.
 * "state directory /var/lib/certbind is locked by pid 4242 (another
 * certbind pass); gave up after 10 s". */
void statelock_strerror(int rc, const char *dir, pid_t holder,
                        unsigned waited_ms, char *buf, size_t size);

#endif
