/*
 * run: the daemon (SPEC §7).
 *
 * One loop: passes at the jittered resync interval, at once when the file
 * or a file it names changes (their directories are watched, see inputs.h)
 * or on SIGHUP; a change during a pass starts one more pass after it
 * (coalesced). A file that fails validation is logged and the last good
 * one stays; it is validated again when something it depends on changes,
 * not on every event. SIGTERM/SIGINT stop new requests, let those in
 * flight finish within a deadline, write the status and exit 0; a second
 * signal aborts what is in flight at once. systemd hears READY, RELOADING,
 * STOPPING, STATUS and WATCHDOG from the loop itself. IAM tokens of
 * password accounts outlive passes (auth.h's token cache).
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
#include "http.h"
#include "inputs.h"
#include "ledger.h"
#include "metrics.h"
#include "pass.h"
#include "statefile.h"
#include "statelock.h"
#include "status.h"

#define DRAIN_DEADLINE_MS 30000
#define DEBOUNCE_MS 300
#define DEBOUNCE_MAX_MS 2000 /* a busy directory cannot hold a reload back */

struct daemon {
  const struct cli_args *args;
  const struct log *log;
  uv_loop_t loop;
  struct http http;
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
  struct ledger ledger; /* read again at the start of every pass */
  bool ledger_ok;
  struct statelock lock;  /* state_dir/lock, held for each pass */
  uint64_t lock_wait_ms;  /* loop ms the wait for the lock began, or 0 */
  const char *lock_why;   /* the trigger of the pass waiting for it */
  struct metrics metrics;
  struct memo_set memory;
  struct pass *pass; /* the running pass, or NULL */
  bool rerun;        /* something changed during the pass */
  bool stopping;
  int signals;
  uv_signal_t sighup, sigterm, sigint;
  uv_timer_t resync, debounce, drain, watchdog, lockwait;
  uint64_t debounce_first; /* loop ms of the first event being debounced */
  uint64_t seed;
  int open_handles;
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
  uv_update_time(&d->loop);
  rc = config_load(path, &fresh, &diag);
  uv_update_time(&d->loop); /* a big file takes a while (P13) */
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
  uint64_t now = uv_now(&d->loop);
  if (!uv_is_active((uv_handle_t *)&d->debounce))
    d->debounce_first = now;
  else if (now - d->debounce_first >= DEBOUNCE_MAX_MS)
    return;
  uv_timer_start(&d->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void shutdown_handles(struct daemon *d);

static void on_pass_done(struct pass *p, void *arg)
{
  struct daemon *d = arg;
  const struct pass_result *r = pass_result(p);
  time_t now = time(NULL);
  struct tm tm;
  char when[16];

  /* a state file that cannot be written fails the pass: the file and the
   * cause are logged (state.*.failed), STATUS says so */
  bool saved = cli_save_pass(d->log, &d->cfg, p,
                             d->ledger_ok ? &d->ledger : NULL,
                             &d->metrics) == 0;
  pass_remember(p, &d->memory);
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

/* state_dir/lock for one pass (SPEC §5), without blocking the loop: while
 * another process (an apply) holds it, try again every 100 ms, for at most
 * STATELOCK_WAIT_MS; then this pass is skipped (logged with the holder's
 * pid) and the next one comes at the resync interval. 0: held; -EAGAIN:
 * waiting; another negative errno: skipped. */
static int lock_for_pass(struct daemon *d, const char *why)
{
  const char *dir = d->cfg.daemon.state_dir;
  char msg[600];
  pid_t holder = 0;
  uint64_t now = uv_now(&d->loop);
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
  statelock_strerror(rc, dir, holder, STATELOCK_WAIT_MS, msg, sizeof(msg));
  log_event(d->log, LOG_ERROR, "state.locked", NULL,
            "%s: this pass is skipped", msg);
  d->lock_wait_ms = 0;
  return rc;
}

static void start_pass(struct daemon *d, const char *why)
{
  struct pass_opts po = {.write = true, .command = "run"};
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
  po.seed = d->seed;
  po.memory = &d->memory;
  po.tokens = &d->tokens;
  struct pass_deps deps = {.loop = &d->loop,
                           .http = &d->http,
                           .cfg = &d->cfg,
                           .ledger = d->ledger_ok ? &d->ledger : NULL,
                           .metrics = &d->metrics,
                           .log = d->log};
  d->pass = pass_new(&deps, &po);
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

static void on_drain_deadline(uv_timer_t *t)
{
  struct daemon *d = t->data;

  log_event(d->log, LOG_WARN, "shutdown", NULL,
            "drain deadline reached: aborting requests in flight");
  http_abort_all(&d->http);
}

static void on_handle_closed(uv_handle_t *h)
{
  struct daemon *d = h->data;
  d->open_handles--;
}

static void close_handle(struct daemon *d, uv_handle_t *h)
{
  if (!uv_is_closing(h))
    uv_close(h, on_handle_closed);
  (void)d;
}

static void shutdown_handles(struct daemon *d)
{
  close_handle(d, (uv_handle_t *)&d->sighup);
  close_handle(d, (uv_handle_t *)&d->sigterm);
  close_handle(d, (uv_handle_t *)&d->sigint);
  close_handle(d, (uv_handle_t *)&d->resync);
  close_handle(d, (uv_handle_t *)&d->debounce);
  close_handle(d, (uv_handle_t *)&d->drain);
  close_handle(d, (uv_handle_t *)&d->watchdog);
  close_handle(d, (uv_handle_t *)&d->lockwait);
  inputs_stop(&d->inputs);
  http_close(&d->http, NULL);
}

static void begin_shutdown(struct daemon *d, int signum)
{
  d->stopping = true;
  notify(d, "STOPPING=1\nSTATUS=stopping (signal %d)", signum);
  log_event(d->log, LOG_INFO, "shutdown", NULL,
            "signal %d: no new requests; finishing those in flight (at most "
            "%d s)",
            signum, DRAIN_DEADLINE_MS / 1000);
  uv_timer_stop(&d->resync);
  uv_timer_stop(&d->debounce);
  uv_timer_stop(&d->lockwait);
  inputs_stop(&d->inputs);
  if (d->pass) {
    pass_stop(d->pass);
    uv_timer_start(&d->drain, on_drain_deadline, DRAIN_DEADLINE_MS, 0);
  } else {
    shutdown_handles(d);
  }
}

static void on_signal(uv_signal_t *s, int signum)
{
  struct daemon *d = s->data;

  if (signum == SIGHUP) {
    if (!d->stopping)
      (void)reload(d, true);
    return;
  }
  if (d->signals++ == 0) {
    begin_shutdown(d, signum);
    return;
  }
  log_event(d->log, LOG_WARN, "shutdown", NULL,
            "second signal: aborting requests in flight now");
  http_abort_all(&d->http);
}

static void on_watchdog(uv_timer_t *t)
{
  (void)t;
  sd_notify(0, "WATCHDOG=1");
}

static int init_handles(struct daemon *d)
{
  uint64_t wd_usec = 0;
  int rc = 0;
  uv_handle_t *hs[] = {
      (uv_handle_t *)&d->sighup,   (uv_handle_t *)&d->sigterm,
      (uv_handle_t *)&d->sigint,   (uv_handle_t *)&d->resync,
      (uv_handle_t *)&d->debounce, (uv_handle_t *)&d->drain,
      (uv_handle_t *)&d->watchdog, (uv_handle_t *)&d->lockwait,
  };

  if (!rc)
    rc = uv_signal_init(&d->loop, &d->sighup);
  if (!rc)
    rc = uv_signal_init(&d->loop, &d->sigterm);
  if (!rc)
    rc = uv_signal_init(&d->loop, &d->sigint);
  if (!rc)
    rc = uv_timer_init(&d->loop, &d->resync);
  if (!rc)
    rc = uv_timer_init(&d->loop, &d->debounce);
  if (!rc)
    rc = uv_timer_init(&d->loop, &d->drain);
  if (!rc)
    rc = uv_timer_init(&d->loop, &d->watchdog);
  if (!rc)
    rc = uv_timer_init(&d->loop, &d->lockwait);
  if (rc)
    return rc;
  d->open_handles = (int)(sizeof(hs) / sizeof(hs[0]));
  for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
    hs[i]->data = d;
  rc = uv_signal_start(&d->sighup, on_signal, SIGHUP);
  if (!rc)
    rc = uv_signal_start(&d->sigterm, on_signal, SIGTERM);
  if (!rc)
    rc = uv_signal_start(&d->sigint, on_signal, SIGINT);
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
  inputs_free(&d->inputs);
}

static void open_daemon_ledger(struct daemon *d)
{
  char path[PATH_MAX], why[512];
  int rc;

  ledger_free(&d->ledger);
  rc = statefile_mkdir(d->cfg.daemon.state_dir);
  if (rc < 0)
    log_event(d->log, LOG_WARN, "state.dir", NULL, "cannot create %s: %s",
              d->cfg.daemon.state_dir, strerror(-rc));
  rc = ledger_load(d->cfg.daemon.state_dir, &d->ledger);
  d->ledger_ok = rc == 0 || rc == -ENOENT;
  if (!d->ledger_ok) {
    statefile_path(path, sizeof(path), d->cfg.daemon.state_dir, LEDGER_FILE);
    statefile_strerror(rc, "read", path, why, sizeof(why));
    log_event(d->log, LOG_ERROR, "ledger.unusable", NULL,
              "%s: ownership unknown, nothing will be detached and the "
              "ledger is left as it is",
              why);
  }
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
  /* Errors at start-up are fatal (SPEC §2 exit codes); later ones are
   * logged and contained. */
  inputs_init(&d->inputs, &d->loop, d->log, a->config_path, on_inputs_event, d);
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
  rc = uv_loop_init(&d->loop);
  if (rc == 0) {
    struct http_opts ho = {0};
    rc = http_init(&d->http, &d->loop, &ho);
    if (rc == 0)
      rc = init_handles(d);
    if (rc == 0)
      inputs_watch(&d->inputs);
  }
  if (rc < 0) {
    log_event(d->log, LOG_ERROR, "startup.failed", NULL, "%s", uv_strerror(rc));
    daemon_free(d);
    free(d);
    return CLI_EXIT_FAILURE;
  }
  log_event(d->log, LOG_INFO, "daemon.start", NULL,
            "certbind %s: %zu bindings, resync every %u s (±10 %%)",
            CERTBIND_VERSION, d->cfg.nbindings,
            d->cfg.daemon.resync_interval_s);
  notify(d, "READY=1\nSTATUS=first pass running");
  start_pass(d, "start");
  uv_run(&d->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&d->loop);
  if (rc != 0)
    log_event(d->log, LOG_ERROR, "internal", NULL,
              "event loop closed with handles still open");
  log_event(d->log, LOG_INFO, "shutdown", NULL, "stopped");
  daemon_free(d);
  free(d);
  return CLI_EXIT_OK;
}
