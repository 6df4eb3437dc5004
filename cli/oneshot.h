/* SPDX-License-Identifier: MIT */
/*
 * oneshot: what every command that talks to the API runs on, the daemon
 * included, implemented once:
 *
 *  - the event loop and its http, stopped by SIGINT/SIGTERM: the first
 *    signal asks the owner to stop (it stops its pass: no new requests)
 *    and the requests in flight get ONESHOT_DRAIN_DEADLINE_MS to finish;
 *    the deadline, or a second signal, aborts them;
 *  - state_dir/lock (statelock.h), each failure logged the same way;
 *  - the ledger of state_dir: a corrupt one is never used or overwritten.
 *
 * On top of them, the life of a one-shot command (plan, apply, adopt):
 * load the file, lock and open the ledger, run one pass to its end on a
 * private loop, release everything in one place.
 */
#ifndef CERTBIND_ONESHOT_H
#define CERTBIND_ONESHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "cli.h"
#include "config.h"
#include "http.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pass.h"
#include "statelock.h"

#define ONESHOT_DRAIN_DEADLINE_MS 30000

/* A loop, its http, and SIGINT/SIGTERM. Embed it; it must not move after
 * oneshot_loop_init(). loop and http are the owner's to use; the rest is
 * private. */
struct oneshot_loop {
  uv_loop_t loop;
  struct http http;
  /* Private. */
  uv_signal_t sigint, sigterm;
  uv_timer_t drain;
  uint64_t drain_ms; /* ONESHOT_DRAIN_DEADLINE_MS (a test shortens it) */
  const struct log *log;
  int signals;
  bool closing;
  void (*stop)(void *arg, int signum);
  void *arg;
};

/* Start the loop, its http and the signal handlers. stop(arg, signum)
 * runs from the loop on the first SIGINT or SIGTERM: the owner stops
 * submitting and calls oneshot_loop_drain(), or closes. A second signal
 * aborts every request in flight (http_abort_all). 0, or a negative errno
 * with nothing left open (the loop is closed). */
int oneshot_loop_init(struct oneshot_loop *l, const struct log *log,
                      void (*stop)(void *arg, int signum), void *arg);

/* The requests in flight get drain_ms more; then they are aborted. */
void oneshot_loop_drain(struct oneshot_loop *l);

/* Close the signal handlers, the drain timer and the http (once; later
 * calls do nothing). The owner closes its own handles. */
void oneshot_loop_close(struct oneshot_loop *l);

/* Run the loop until every handle is closed, then close it (logged when
 * it cannot be: a handle was left open). */
void oneshot_loop_run(struct oneshot_loop *l);

/* Log why state_dir/lock was not taken (event state.locked): the holder's
 * pid, or the file and its cause. then (NULL: nothing) is appended after
 * ": ", to say what happens now. */
void oneshot_log_locked(const struct log *log, int rc, const char *dir,
                        pid_t holder, const char *then);

/* Take state_dir/lock, waiting STATELOCK_WAIT_MS for another holder
 * (blocking): 0, or -1 after logging why. An exclusive lock creates the
 * directory first (the first pass). */
int oneshot_lock_dir(const struct log *log, const char *dir, bool exclusive,
                     struct statelock *lk);

/* The ledger of dir into *l: l, or NULL when it exists but cannot be read
 * (logged as ledger.unusable; l is freed). Then ownership is unknown:
 * nothing is detached and the file is left as it is, so an operator can
 * inspect it. */
struct ledger *oneshot_open_ledger(const struct log *log, const char *dir,
                                   struct ledger *l);

struct oneshot_run;

/* One one-shot command's state, from its file to its pass's results.
 * Zero it, then oneshot_open(); whatever happens after, oneshot_close(). */
struct oneshot {
  const struct cli_args *args;
  struct config cfg;
  struct ledger *ledger; /* after oneshot_lock: &ledger_store, or NULL */
  struct ledger ledger_store;
  struct metrics metrics;           /* what the pass counted */
  struct pass *pass;                /* after oneshot_run: the pass that ran */
  const struct pass_result *result; /* after oneshot_run: its results */
  struct statelock lock;
  struct oneshot_run *run;     /* private: the loop the pass ran on */
  struct oneshot_run *earlier; /* private: the run before (see oneshot_run) */
};

/* Load the file (every problem printed): 0, or CLI_EXIT_INVALID. */
int oneshot_open(struct oneshot *o, const struct cli_args *a);

/* state_dir/lock (exclusive for a pass that writes the state files,
 * shared for one that only reads them), then the ledger (o->ledger).
 * 0, or -1 after logging why. */
int oneshot_lock(struct oneshot *o, bool exclusive);

/* Release state_dir/lock early (a reader, once it has read). */
void oneshot_unlock(struct oneshot *o);

/* Run one pass to its end; the first SIGINT/SIGTERM stops it (drained as
 * above). po->progress is set when want_progress, stderr is a terminal
 * that can redraw a line (TERM is not "dumb") and the log is text. 0 (o->pass
 * and o->result are set), or a negative errno when it could not start (logged
 * as pass.failed; o->pass stays NULL). It may be called twice (apply's plan,
 * then its writes): the first pass, and the results that point into it, stay
 * valid until oneshot_close(). */
int oneshot_run(struct oneshot *o, struct pass_opts *po, bool want_progress);

/* Release everything: the lock, the pass, the ledger, the counts, the
 * file. */
void oneshot_close(struct oneshot *o);

#endif
