/* SPDX-License-Identifier: MIT */
/*
 * daemon: `certbind run`.
 *
 * One loop: passes at the jittered resync interval, at once when the file
 * or a file it names changes (their directories are watched, see inputs.h)
 * or on SIGHUP; a change during a pass starts one more pass after it
 * (coalesced). A file that fails validation is logged and the last good
 * one stays; it is validated again when something it depends on changes,
 * not on every event. SIGTERM/SIGINT stop new requests, let those in
 * flight finish within a deadline, write the status and exit 0; a second
 * signal aborts what is in flight at once (the loop, its signals and the
 * drain are oneshot.h's, as for the one-shot commands). systemd hears
 * READY, RELOADING, STOPPING, STATUS and WATCHDOG from the loop itself.
 * IAM tokens of password accounts outlive passes (auth.h's token cache).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "auth.h"
#include "cli.h"
#include "inputs.h"
#include "ledger.h"
#include "metrics.h"
#include "oneshot.h"
#include "pass.h"
#include "persist.h"
#include "report.h"
#include "served.h"
#include "show_cache.h"
#include "statefile.h"
#include "statelock.h"

#define DEBOUNCE_MS 300
#define DEBOUNCE_MAX_MS 2000 /* a busy directory cannot hold a reload back */

struct daemon {
  const struct cli_args *args;
  const struct log *log;
  struct oneshot_loop ol; /* the loop, its http, SIGINT/SIGTERM, the drain */
  struct config cfg;      /* in force */
  struct config next_cfg; /* validated, waiting for the pass to end */
  bool have_next;
  /* What each was validated with (inputs.h): the file in force, the one
   * waiting, and the newest one, when it was rejected. */
  struct inputs_ident cfg_ident, next_ident, rejected_ident;
  bool rejected; /* the newest file failed validation */
  struct inputs inputs;
  /* IAM tokens of password accounts, kept across passes (auth.h) */
  struct auth_token_cache tokens;
  /* each account's write-to-visible delay, learnt by the passes (and by
   * other processes: state_dir/visibility.json, read at start and merged
   * after every pass) */
  struct visibility_set visibility;
  /* the Shows of id certificates, kept across passes (show_cache.h) */
  struct show_cache shows;
  struct ledger ledger; /* read again at the start of every pass */
  bool ledger_ok;
  struct statelock lock; /* state_dir/lock, held for each pass */
  uint64_t lock_wait_ms; /* loop ms the wait for the lock began, or 0 */
  const char *lock_why;  /* the trigger of the pass waiting for it */
  struct metrics metrics;
  struct memo_set memory;
  /* the objects left behind that certificate.left last named (report.h):
   * logged again only when the list changes */
  uint64_t left_logged;
  struct pass *pass; /* the running pass, or NULL */
  /* the verification after it (policy.verify): the pass is kept until it
   * ends, and the state files are written then, with its results */
  struct served *served;
  bool rerun; /* something changed during the pass */
  bool stopping;
  uv_signal_t sighup;
  uv_timer_t resync, debounce, watchdog, lockwait;
  uint64_t debounce_first; /* loop ms of the first event being debounced */
  uint64_t seed;
};

static void start_pass(struct daemon *d, const char *why);

static void notify(struct daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void notify(struct daemon *d, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  (void)d;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  sd_notify(0, msg);
}

static uint64_t jittered_interval_ms(struct daemon *d)
{
  double base = (double)d->cfg.daemon.resync_interval_s * 1000.0;
  /* ±10 %, xorshift so that no global PRNG state is touched */
  d->seed ^= d->seed << 13;
  d->seed ^= d->seed >> 7;
  d->seed ^= d->seed << 17;
  double u = (double)(d->seed % 10001) / 10000.0; /* [0, 1] */
  return (uint64_t)(base * (0.9 + 0.2 * u));
}

static bool reload(struct daemon *d, bool force);

static void on_resync(uv_timer_t *t)
{
  struct daemon *d = t->data;

  /* A change no watch saw (a directory that could not be watched) is
   * taken now; a reload that is taken starts the pass itself. */
  if (!reload(d, false))
    start_pass(d, "resync");
}

static void schedule_resync(struct daemon *d)
{
  uv_timer_start(&d->resync, on_resync, jittered_interval_ms(d), 0);
}

/* Nothing the last validation depended on changed since: validating
 * again would give the same answer. A rejected file waits for a change of
 * its own inputs, even back to those of the file in force (that is a fix
 * too, and says so). */
static bool unchanged(const struct daemon *d, const struct inputs_ident *now)
{
  if (d->rejected)
    return inputs_same(now, &d->rejected_ident);
  return inputs_same(now, &d->cfg_ident) ||
         (d->have_next && inputs_same(now, &d->next_ident));
}

/* Remember what was rejected only when it is surely what was validated:
 * the inputs were the same before and after the load. A file deleted and
 * re-created during it (config management) may have been read new: taking
 * it for the rejected one would never load it. */
static void remember_rejected(struct daemon *d,
                              const struct inputs_ident *before)
{
  struct inputs_ident after;

  inputs_ident(&d->inputs, &after);
  d->rejected = true;
  d->rejected_ident = *before;
  if (!inputs_same(before, &after))
    d->rejected_ident.valid = false; /* the next event validates again */
}

/* Every problem, a summary, and systemd's STATUS= (frees diag). */
static void report_rejected(struct daemon *d, struct config_diag *diag)
{
  const char *path = d->args->config_path;
  size_t problems = diag->count; /* config_diag_free() zeroes it */

  for (size_t i = 0; i < diag->count; i++)
    log_event(d->log, LOG_ERROR, "config.rejected", NULL, "%s", diag->lines[i]);
  log_event(d->log, LOG_ERROR, "config.rejected", NULL,
            "%s: %zu problem(s); the last good file stays in force", path,
            problems);
  config_diag_free(diag);
  notify(d,
         "READY=1\nSTATUS=file rejected (%zu problems); last good file "
         "in force",
         problems);
}

/* Load the file again when it or a file it names changed (force: SIGHUP,
 * even when nothing did). Returns true when it started a pass. */
static bool reload(struct daemon *d, bool force)
{
  struct config fresh = {0};
  struct config_diag diag = {0};
  struct inputs_ident before;
  const char *path = d->args->config_path;
  int rc;

  inputs_ident(&d->inputs, &before);
  inputs_watch(&d->inputs); /* the files it names now, even if rejected */
  if (!force && unchanged(d, &before))
    return false; /* nothing new (an editor's temp file, a touch) */
  notify(d, "RELOADING=1\nSTATUS=reloading %s", path);
  uv_update_time(&d->ol.loop);
  rc = config_load(path, &fresh, &diag);
  uv_update_time(&d->ol.loop); /* a big file takes a while (P13) */
  if (rc < 0) {
    remember_rejected(d, &before); /* first: as close to the load as can be */
    report_rejected(d, &diag);
    d->metrics.reload = METRICS_RELOAD_FAILED;
    return false;
  }
  config_diag_free(&diag);
  d->rejected = false;
  d->metrics.reload = METRICS_RELOAD_OK;
  log_event(d->log, LOG_INFO, "config.reload", NULL,
            "%s: %zu bindings (sha256 %.12s)", path, fresh.nbindings,
            fresh.sha256);
  if (d->have_next)
    config_free(&d->next_cfg);
  d->next_cfg = fresh;
  d->next_ident = before; /* a change during the load is an event to come */
  d->have_next = true;
  notify(d, "READY=1");
  start_pass(d, force ? "SIGHUP" : "file changed");
  return true;
}

static void on_debounce(uv_timer_t *t)
{
  (void)reload(t->data, false);
}

static void on_inputs_event(void *arg)
{
  struct daemon *d = arg;

  if (d->stopping)
    return;
  /* Any change in a watched directory: the file itself, a rename over it,
   * a symlink swap, a chmod of a secret. The ident decides whether
   * anything the file depends on changed. Events keep pushing the reload
   * back, but not beyond DEBOUNCE_MAX_MS: another file of the directory
   * written all the time must not starve it. */
  uint64_t now = uv_now(&d->ol.loop);
  if (!uv_is_active((uv_handle_t *)&d->debounce))
    d->debounce_first = now;
  else if (now - d->debounce_first >= DEBOUNCE_MAX_MS)
    return;
  uv_timer_start(&d->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void shutdown_handles(struct daemon *d);

static void on_pass_done(struct pass *p, void *arg);

static void on_served(struct served *s, void *arg)
{
  struct daemon *d = arg;

  served_log(s, d->log);
  on_pass_done(d->pass, d);
}

/* policy.verify: the check of what the gateways serve, on the loop, before
 * the state files are written. true: it runs (on_pass_done comes again
 * from on_served). */
static bool start_verify(struct daemon *d, const struct pass_result *r)
{
  if (d->served || d->stopping || !served_wanted(&d->cfg, r))
    return false;
  /* id certificates are compared with this pass's Show of them */
  d->served =
      served_new(&d->ol.loop, &d->cfg, &(struct served_opts){.pass = d->pass});
  if (d->served && served_start(d->served, on_served, d) == 0)
    return true;
  log_event(d->log, LOG_ERROR, "verify.failed", NULL,
            "the check of what the gateways serve could not start");
  served_free(d->served);
  d->served = NULL;
  return false;
}

/* policy.verify found a gateway serving, for an id certificate, a leaf
 * other than its Show in the pass: that Show is not kept, so that the
 * next pass shows the certificate again (it may have been updated in
 * place). */
static void forget_contradicted_shows(struct daemon *d)
{
  const struct served_cell *cells;
  char key[SHOW_CACHE_KEY_MAX];
  size_t n;

  if (!d->served)
    return;
  cells = served_cells(d->served, &n);
  for (size_t i = 0; i < n; i++) {
    const struct served_cell *c = &cells[i];

    if (!c->bound || c->last.status != PROBE_OK ||
        probe_matches(&c->last, &c->want))
      continue;
    if (show_cache_key(key, sizeof(key), &d->cfg,
                       d->cfg.bindings[c->binding].certificate) == 0)
      show_cache_evict(&d->shows, key);
  }
}

/* The kept Shows of the file's id certificates stay for the sweep, also
 * those a pass that stopped early (a signal, a blocked account) did not
 * reach; those of certificates no longer in the file go. */
static void keep_file_shows(struct daemon *d)
{
  char key[SHOW_CACHE_KEY_MAX];

  for (size_t c = 0; c < d->cfg.ncertificates; c++) {
    if (show_cache_key(key, sizeof(key), &d->cfg, c) == 0)
      (void)show_cache_find(&d->shows, key); /* marks it touched */
  }
}

static void on_pass_done(struct pass *p, void *arg)
{
  struct daemon *d = arg;
  const struct pass_result *r = pass_result(p);
  time_t now = time(NULL);
  struct tm tm;
  char when[16];
  bool saved;

  if (start_verify(d, r))
    return;
  /* a state file that cannot be written fails the pass: the file and the
   * cause are logged (state.*.failed), STATUS says so */
  saved = persist_pass(d->log, &d->cfg, p, d->ledger_ok ? &d->ledger : NULL,
                       &d->metrics, d->served, &d->visibility) == 0;
  forget_contradicted_shows(d);
  keep_file_shows(d);
  show_cache_sweep(&d->shows);
  served_free(d->served);
  d->served = NULL;
  pass_remember(p, &d->memory);
  if (r->has_plan) /* else the pass did not look: the list is not known */
    report_log_left(d->log, r->plan, &d->left_logged);
  localtime_r(&now, &tm);
  strftime(when, sizeof(when), "%H:%M:%S", &tm);
  notify(d,
         "STATUS=last pass %s%s at %s: %llu in place, %llu written, "
         "%llu failed, %llu pending",
         pass_outcome_name(r->outcome),
         saved ? "" : " (state files not written)", when,
         (unsigned long long)r->counts.unchanged,
         (unsigned long long)(r->counts.attached + r->counts.changed +
                              r->counts.detached),
         (unsigned long long)r->counts.failed,
         (unsigned long long)r->counts.pending);
  pass_free(p);
  d->pass = NULL;
  statelock_release(&d->lock);
  if (d->stopping) {
    shutdown_handles(d);
    return;
  }
  /* A file validated during the pass is adopted by the next one (per-
   * binding memory is keyed by the entry, so changed entries start fresh;
   * unchanged ones keep their backoff). */
  if (d->rerun || d->have_next) {
    d->rerun = false;
    start_pass(d, "changed during the last pass");
    return;
  }
  schedule_resync(d);
}

static void open_daemon_ledger(struct daemon *d);

static void on_lockwait(uv_timer_t *t)
{
  struct daemon *d = t->data;

  start_pass(d, d->lock_why);
}

/* state_dir/lock for one pass, without blocking the loop: while
 * another process (an apply) holds it, try again every 100 ms, for at most
 * STATELOCK_WAIT_MS; then this pass is skipped (logged with the holder's
 * pid) and the next one comes at the resync interval. 0: held; -EAGAIN:
 * waiting; another negative errno: skipped. */
static int lock_for_pass(struct daemon *d, const char *why)
{
  const char *dir = d->cfg.daemon.state_dir;
  pid_t holder = 0;
  uint64_t now = uv_now(&d->ol.loop);
  int rc;

  (void)statefile_mkdir(dir);
  rc = statelock_try(dir, true, &d->lock, &holder);
  if (rc == 0) {
    d->lock_wait_ms = 0;
    return 0;
  }
  if (rc == -EWOULDBLOCK) {
    if (d->lock_wait_ms == 0)
      d->lock_wait_ms = now ? now : 1;
    if (now - d->lock_wait_ms < STATELOCK_WAIT_MS) {
      d->lock_why = why;
      uv_timer_start(&d->lockwait, on_lockwait, 100, 0);
      return -EAGAIN;
    }
  }
  oneshot_log_locked(d->log, rc, dir, holder, "this pass is skipped");
  d->lock_wait_ms = 0;
  return rc;
}

/* A pass on the file in force, with what earlier passes learned. */
static struct pass *new_pass(struct daemon *d)
{
  struct pass_opts po = {.write = true,
                         .command = "run",
                         .seed = d->seed,
                         .memory = &d->memory,
                         .tokens = &d->tokens,
                         .visibility = &d->visibility,
                         .shows = &d->shows};
  struct pass_deps deps = {.loop = &d->ol.loop,
                           .http = &d->ol.http,
                           .cfg = &d->cfg,
                           .ledger = d->ledger_ok ? &d->ledger : NULL,
                           .metrics = &d->metrics,
                           .log = d->log};

  return pass_new(&deps, &po);
}

static void start_pass(struct daemon *d, const char *why)
{
  int rc;

  if (d->stopping)
    return;
  if (d->pass || uv_is_active((uv_handle_t *)&d->lockwait)) {
    d->rerun = true; /* coalesced: one more pass after this one */
    return;
  }
  if (d->have_next) {
    config_free(&d->cfg);
    d->cfg = d->next_cfg;
    memset(&d->next_cfg, 0, sizeof(d->next_cfg));
    d->cfg_ident = d->next_ident;
    d->have_next = false;
    /* no token outlives its account or credentials */
    auth_token_cache_retain(&d->tokens, &d->cfg);
  }
  uv_timer_stop(&d->resync);
  rc = lock_for_pass(d, why);
  if (rc == -EAGAIN)
    return;
  if (rc < 0) {
    schedule_resync(d);
    return;
  }
  /* another process (apply, adopt) may have changed it since the last
   * pass, and a reload may have moved state_dir */
  open_daemon_ledger(d);
  d->pass = new_pass(d);
  if (!d->pass) {
    statelock_release(&d->lock);
    schedule_resync(d);
    return;
  }
  log_event(d->log, LOG_DEBUG, "pass.trigger", NULL, "%s", why);
  rc = pass_start(d->pass, on_pass_done, d);
  if (rc < 0) {
    log_event(d->log, LOG_ERROR, "pass.failed", NULL, "could not start: %s",
              strerror(-rc));
    pass_free(d->pass);
    d->pass = NULL;
    statelock_release(&d->lock);
    schedule_resync(d);
  }
}

static void on_closed(uv_handle_t *h)
{
  (void)h;
}

static void close_handle(uv_handle_t *h)
{
  if (!uv_is_closing(h))
    uv_close(h, on_closed);
}

static void shutdown_handles(struct daemon *d)
{
  close_handle((uv_handle_t *)&d->sighup);
  close_handle((uv_handle_t *)&d->resync);
  close_handle((uv_handle_t *)&d->debounce);
  close_handle((uv_handle_t *)&d->watchdog);
  close_handle((uv_handle_t *)&d->lockwait);
  inputs_stop(&d->inputs);
  oneshot_loop_close(&d->ol);
}

/* The first SIGTERM/SIGINT (oneshot.h: a second one aborts the requests
 * in flight). */
static void begin_shutdown(void *arg, int signum)
{
  struct daemon *d = arg;

  d->stopping = true;
  notify(d, "STOPPING=1\nSTATUS=stopping (signal %d)", signum);
  log_event(d->log, LOG_INFO, "shutdown", NULL,
            "signal %d: no new requests; finishing those in flight (at most "
            "%d s)",
            signum, ONESHOT_DRAIN_DEADLINE_MS / 1000);
  uv_timer_stop(&d->resync);
  uv_timer_stop(&d->debounce);
  uv_timer_stop(&d->lockwait);
  inputs_stop(&d->inputs);
  if (d->pass) {
    pass_stop(d->pass);
    served_stop(d->served); /* NULL: nothing */
    oneshot_loop_drain(&d->ol);
  } else {
    shutdown_handles(d);
  }
}

static void on_sighup(uv_signal_t *s, int signum)
{
  struct daemon *d = s->data;

  (void)signum;
  if (!d->stopping)
    (void)reload(d, true);
}

static void on_watchdog(uv_timer_t *t)
{
  (void)t;
  sd_notify(0, "WATCHDOG=1");
}

/* The daemon's own handles, on the loop oneshot_loop_init() made: its
 * signal pipe exists, so none of these inits can fail. */
static int init_handles(struct daemon *d)
{
  uint64_t wd_usec = 0;
  int rc;

  (void)uv_signal_init(&d->ol.loop, &d->sighup);
  (void)uv_timer_init(&d->ol.loop, &d->resync);
  (void)uv_timer_init(&d->ol.loop, &d->debounce);
  (void)uv_timer_init(&d->ol.loop, &d->watchdog);
  (void)uv_timer_init(&d->ol.loop, &d->lockwait);
  d->sighup.data = d->resync.data = d->debounce.data = d->watchdog.data =
      d->lockwait.data = d;
  rc = uv_signal_start(&d->sighup, on_sighup, SIGHUP);
  if (!rc && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec >= 2000)
    rc = uv_timer_start(&d->watchdog, on_watchdog, wd_usec / 2000,
                        wd_usec / 2000);
  return rc;
}

static void daemon_free(struct daemon *d)
{
  config_free(&d->cfg);
  if (d->have_next)
    config_free(&d->next_cfg);
  ledger_free(&d->ledger);
  metrics_free(&d->metrics);
  memo_set_free(&d->memory);
  auth_token_cache_free(&d->tokens);
  visibility_set_free(&d->visibility);
  show_cache_free(&d->shows);
  inputs_free(&d->inputs);
}

static void open_daemon_ledger(struct daemon *d)
{
  const char *dir = d->cfg.daemon.state_dir;
  int rc;

  ledger_free(&d->ledger);
  rc = statefile_mkdir(dir);
  if (rc < 0)
    log_event(d->log, LOG_WARN, "state.dir", NULL, "cannot create %s: %s", dir,
              strerror(-rc));
  d->ledger_ok = oneshot_open_ledger(d->log, dir, &d->ledger) != NULL;
}

int cli_run(const struct cli_args *a)
{
  struct daemon *d = calloc(1, sizeof(*d));
  int rc;

  if (!d)
    return CLI_EXIT_FAILURE;
  d->args = a;
  d->log = &a->log;
  d->seed =
      (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  /* Errors at start-up are fatal (exit 1, or 3 for an invalid file);
   * later ones are logged and contained. */
  inputs_init(&d->inputs, &d->ol.loop, d->log, a->config_path, on_inputs_event,
              d);
  /* what the file in force was validated with: taken before the load, so
   * that a change during it is a difference later */
  inputs_ident(&d->inputs, &d->cfg_ident);
  rc = cli_load_config(a->config_path, &d->cfg);
  if (rc) {
    inputs_free(&d->inputs);
    free(d);
    return rc;
  }
  d->metrics.reload = METRICS_RELOAD_OK; /* the file it starts with */
  rc = oneshot_loop_init(&d->ol, d->log, begin_shutdown, d);
  if (rc == 0) {
    rc = init_handles(d);
    if (rc < 0) {
      shutdown_handles(d);
      oneshot_loop_run(&d->ol);
    }
  }
  if (rc < 0) {
    log_event(d->log, LOG_ERROR, "startup.failed", NULL, "%s", uv_strerror(rc));
    daemon_free(d);
    free(d);
    return CLI_EXIT_FAILURE;
  }
  inputs_watch(&d->inputs);
  /* the first pass confirms at the delays earlier processes learnt */
  persist_visibility_load(d->log, d->cfg.daemon.state_dir, &d->visibility);
  log_event(d->log, LOG_INFO, "daemon.start", NULL,
            "certbind %s: %zu bindings, resync every %u s (±10 %%)",
            CERTBIND_VERSION, d->cfg.nbindings,
            d->cfg.daemon.resync_interval_s);
  notify(d, "READY=1\nSTATUS=first pass running");
  start_pass(d, "start");
  oneshot_loop_run(&d->ol);
  log_event(d->log, LOG_INFO, "shutdown", NULL, "stopped");
  daemon_free(d);
  free(d);
  return CLI_EXIT_OK;
}
