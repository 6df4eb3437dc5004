/* SPDX-License-Identifier: MIT */
/*
 * oneshot: the loop, signals and drain, state_dir/lock, the ledger, and
 * the life of a one-shot command (see oneshot.h).
 */
#include "oneshot.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statefile.h"

/* ---- the loop and its signals ---------------------------------------- */

static void on_closed(uv_handle_t *h)
{
  (void)h;
}

static void abort_in_flight(struct oneshot_loop *l, const char *why)
{
  log_event(l->log, LOG_WARN, "shutdown", NULL,
            "%s: aborting requests in flight", why);
  http_abort_all(&l->http);
}

static void on_drain_deadline(uv_timer_t *t)
{
  abort_in_flight(t->data, "drain deadline reached");
}

/* First signal: the owner stops (no new requests; those in flight finish,
 * bounded by the drain deadline). Second signal: abort them now. */
static void on_signal(uv_signal_t *s, int signum)
{
  struct oneshot_loop *l = s->data;

  if (l->signals++ == 0)
    l->stop(l->arg, signum);
  else
    abort_in_flight(l, "second signal");
}

/* The first uv_signal_init creates the loop's signal pipe, the one thing
 * that can fail here; once it exists the other inits cannot. */
static int init_handles(struct oneshot_loop *l)
{
  int rc = uv_signal_init(&l->loop, &l->sigint);

  if (rc < 0)
    return rc;
  (void)uv_signal_init(&l->loop, &l->sigterm);
  (void)uv_timer_init(&l->loop, &l->drain);
  l->sigint.data = l->sigterm.data = l->drain.data = l;
  rc = uv_signal_start(&l->sigint, on_signal, SIGINT);
  if (rc == 0)
    rc = uv_signal_start(&l->sigterm, on_signal, SIGTERM);
  if (rc < 0)
    oneshot_loop_close(l);
  return rc;
}

int oneshot_loop_init(struct oneshot_loop *l, const struct log *log,
                      void (*stop)(void *arg, int signum), void *arg)
{
  struct http_opts ho = {0};
  int rc;

  memset(l, 0, sizeof(*l));
  l->log = log;
  l->stop = stop;
  l->arg = arg;
  l->drain_ms = ONESHOT_DRAIN_DEADLINE_MS;
  rc = uv_loop_init(&l->loop);
  if (rc < 0)
    return rc;
  rc = http_init(&l->http, &l->loop, &ho); /* nothing open when it fails */
  if (rc == 0) {
    rc = init_handles(l);
    if (rc < 0)
      http_close(&l->http, NULL);
  }
  if (rc < 0) {
    uv_run(&l->loop, UV_RUN_DEFAULT); /* the close callbacks */
    (void)uv_loop_close(&l->loop);
  }
  return rc;
}

void oneshot_loop_drain(struct oneshot_loop *l)
{
  uv_timer_start(&l->drain, on_drain_deadline, l->drain_ms, 0);
}

void oneshot_loop_close(struct oneshot_loop *l)
{
  if (l->closing)
    return;
  l->closing = true;
  uv_close((uv_handle_t *)&l->sigint, on_closed);
  uv_close((uv_handle_t *)&l->sigterm, on_closed);
  uv_close((uv_handle_t *)&l->drain, on_closed);
  http_close(&l->http, NULL);
}

void oneshot_loop_run(struct oneshot_loop *l)
{
  uv_run(&l->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&l->loop) != 0)
    log_event(l->log, LOG_ERROR, "internal", NULL,
              "event loop closed with handles still open");
}

/* ---- state_dir: the lock and the ledger ------------------------------- */

void oneshot_log_locked(const struct log *log, int rc, const char *dir,
                        pid_t holder, const char *then)
{
  char why[600];

  statelock_strerror(rc, dir, holder, STATELOCK_WAIT_MS, why, sizeof(why));
  if (then)
    log_event(log, LOG_ERROR, "state.locked", NULL, "%s: %s", why, then);
  else
    log_event(log, LOG_ERROR, "state.locked", NULL, "%s", why);
}

int oneshot_lock_dir(const struct log *log, const char *dir, bool exclusive,
                     struct statelock *lk)
{
  pid_t holder = 0;
  int rc;

  if (exclusive)
    (void)statefile_mkdir(dir); /* the first pass: statelock says why not */
  rc = statelock_wait(dir, exclusive, STATELOCK_WAIT_MS, lk, &holder);
  if (rc == 0)
    return 0;
  oneshot_log_locked(log, rc, dir, holder, NULL);
  return -1;
}

struct ledger *oneshot_open_ledger(const struct log *log, const char *dir,
                                   struct ledger *l)
{
  int rc = ledger_load(dir, l);
  char path[PATH_MAX], why[512];

  if (rc == 0 || rc == -ENOENT)
    return l;
  statefile_path(path, sizeof(path), dir, LEDGER_FILE);
  statefile_strerror(rc, "read", path, why, sizeof(why));
  log_event(log, LOG_ERROR, "ledger.unusable", NULL,
            "%s: ownership unknown, nothing will be detached and the "
            "ledger is left as it is",
            why);
  ledger_free(l);
  return NULL;
}

/* ---- one one-shot command --------------------------------------------- */

/* The loop of a one-shot command and the pass it runs. */
struct oneshot_run {
  struct oneshot_loop l;
  struct pass *pass;
};

int oneshot_open(struct oneshot *o, const struct cli_args *a)
{
  int rc;

  o->args = a;
  rc = cli_load_config(a->config_path, &o->cfg);
  return rc;
}

int oneshot_lock(struct oneshot *o, bool exclusive)
{
  const char *dir = o->cfg.daemon.state_dir;

  if (oneshot_lock_dir(&o->args->log, dir, exclusive, &o->lock) < 0)
    return -1;
  o->ledger = oneshot_open_ledger(&o->args->log, dir, &o->ledger_store);
  return 0;
}

void oneshot_unlock(struct oneshot *o)
{
  statelock_release(&o->lock);
}

static void on_stop(void *arg, int signum)
{
  struct oneshot_run *r = arg;

  log_event(r->l.log, LOG_WARN, "shutdown", NULL,
            "signal %d: no new requests, finishing those in flight", signum);
  pass_stop(r->pass);
  oneshot_loop_drain(&r->l);
}

static void on_pass_done(struct pass *p, void *arg)
{
  struct oneshot_run *r = arg;

  (void)p;
  oneshot_loop_close(&r->l);
}

/* The live progress line rewrites itself with "\r" and an erase-line
 * escape, which a dumb terminal (TERM=dumb: Emacs shell buffers, some CI
 * consoles) prints as text: there, no live line at all. */
static bool terminal_redraws(void)
{
  const char *term = getenv("TERM");

  return !(term && strcmp(term, "dumb") == 0);
}

/* A pass on the loop of r, with o's file, ledger and counts. */
static int start_pass(struct oneshot *o, struct oneshot_run *r,
                      const struct pass_opts *po)
{
  struct pass_deps deps = {.loop = &r->l.loop,
                           .http = &r->l.http,
                           .cfg = &o->cfg,
                           .ledger = o->ledger,
                           .metrics = &o->metrics,
                           .log = &o->args->log};

  r->pass = pass_new(&deps, po);
  return r->pass ? pass_start(r->pass, on_pass_done, r) : -ENOMEM;
}

int oneshot_run(struct oneshot *o, struct pass_opts *po, bool want_progress)
{
  const struct log *log = &o->args->log;
  struct oneshot_run *r = calloc(1, sizeof(*r));
  int rc;

  if (!r)
    return -ENOMEM;
  if (o->run) { /* a second pass: the first one's results stay valid */
    pass_free(o->earlier ? o->earlier->pass : NULL);
    free(o->earlier);
    o->earlier = o->run;
  }
  o->run = r;
  o->pass = NULL;
  o->result = NULL;
  po->progress = want_progress && log->format == LOG_FORMAT_TEXT &&
                 isatty(STDERR_FILENO) && terminal_redraws();
  rc = oneshot_loop_init(&r->l, log, on_stop, r);
  if (rc == 0) {
    /* The signals must not keep the loop alive once the pass is over. */
    uv_unref((uv_handle_t *)&r->l.sigint);
    uv_unref((uv_handle_t *)&r->l.sigterm);
    rc = start_pass(o, r, po);
    if (rc < 0)
      oneshot_loop_close(&r->l);
    oneshot_loop_run(&r->l); /* also what a failed start left closing */
  }
  if (rc < 0) {
    log_event(log, LOG_ERROR, "pass.failed", NULL, "could not start: %s",
              strerror(-rc));
    return rc;
  }
  o->pass = r->pass;
  o->result = pass_result(r->pass);
  return 0;
}

void oneshot_close(struct oneshot *o)
{
  statelock_release(&o->lock);
  if (o->run)
    pass_free(o->run->pass);
  free(o->run);
  if (o->earlier)
    pass_free(o->earlier->pass);
  free(o->earlier);
  ledger_free(&o->ledger_store);
  metrics_free(&o->metrics);
  config_free(&o->cfg);
}
