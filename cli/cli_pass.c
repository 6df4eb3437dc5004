/*
 * cli_pass: the commands that run one pass against the API (plan, apply,
 * adopt) and `status`, which reads what the last pass left. Each holds
 * state_dir/lock (statelock.h) while it reads or writes the state files:
 * exclusive for apply and adopt, shared for plan and status.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "cli.h"
#include "http.h"
#include "ledger.h"
#include "metrics.h"
#include "pass.h"
#include "report.h"
#include "statefile.h"
#include "statelock.h"
#include "status.h"

#define DRAIN_DEADLINE_MS 30000

struct one_pass {
  uv_loop_t loop;
  struct http http;
  struct pass *pass;
  uv_signal_t sigint, sigterm;
  uv_timer_t drain;
  const struct log *log;
  int signals;
};

static void on_closed(uv_handle_t *h)
{
  (void)h;
}

static void on_pass_done(struct pass *p, void *arg)
{
  struct one_pass *op = arg;

  (void)p;
  uv_close((uv_handle_t *)&op->sigint, on_closed);
  uv_close((uv_handle_t *)&op->sigterm, on_closed);
  uv_close((uv_handle_t *)&op->drain, on_closed);
  http_close(&op->http, NULL);
}

static void on_drain_deadline(uv_timer_t *t)
{
  struct one_pass *op = t->data;

  log_event(op->log, LOG_WARN, "shutdown", NULL,
            "drain deadline reached: aborting requests in flight");
  http_abort_all(&op->http);
}

/* First signal: stop sending, let requests in flight finish (bounded by a
 * deadline). Second signal: abort them now. */
static void on_signal(uv_signal_t *s, int signum)
{
  struct one_pass *op = s->data;

  if (op->signals++ == 0) {
    log_event(op->log, LOG_WARN, "shutdown", NULL,
              "signal %d: no new requests, finishing those in flight", signum);
    pass_stop(op->pass);
    uv_timer_start(&op->drain, on_drain_deadline, DRAIN_DEADLINE_MS, 0);
  } else {
    log_event(op->log, LOG_WARN, "shutdown", NULL,
              "second signal: aborting requests in flight");
    http_abort_all(&op->http);
  }
}

static int init_signals(struct one_pass *op)
{
  int rc = uv_signal_init(&op->loop, &op->sigint);
  if (!rc)
    rc = uv_signal_init(&op->loop, &op->sigterm);
  if (!rc)
    rc = uv_timer_init(&op->loop, &op->drain);
  if (!rc)
    rc = uv_signal_start(&op->sigint, on_signal, SIGINT);
  if (!rc)
    rc = uv_signal_start(&op->sigterm, on_signal, SIGTERM);
  op->sigint.data = op->sigterm.data = op->drain.data = op;
  /* The signals must not keep the loop alive once the pass is over. */
  uv_unref((uv_handle_t *)&op->sigint);
  uv_unref((uv_handle_t *)&op->sigterm);
  return rc;
}

/* Run one pass to its end on a private loop. */
static int run_pass(const struct cli_args *a, const struct config *cfg,
                    struct ledger *ledger, struct metrics *m,
                    const struct pass_opts *po, struct one_pass *op)
{
  struct http_opts ho = {0};
  int rc;

  memset(op, 0, sizeof(*op));
  op->log = &a->log;
  rc = uv_loop_init(&op->loop);
  if (rc < 0)
    return rc;
  rc = http_init(&op->http, &op->loop, &ho);
  if (rc == 0)
    rc = init_signals(op);
  if (rc == 0) {
    struct pass_deps deps = {.loop = &op->loop,
                             .http = &op->http,
                             .cfg = cfg,
                             .ledger = ledger,
                             .metrics = m,
                             .log = &a->log};
    op->pass = pass_new(&deps, po);
    rc = op->pass ? pass_start(op->pass, on_pass_done, op) : -ENOMEM;
  }
  if (rc < 0) {
    log_event(&a->log, LOG_ERROR, "pass.failed", NULL, "could not start: %s",
              strerror(-rc));
    pass_stop(op->pass);
    uv_close((uv_handle_t *)&op->sigint, on_closed);
    uv_close((uv_handle_t *)&op->sigterm, on_closed);
    uv_close((uv_handle_t *)&op->drain, on_closed);
    http_close(&op->http, NULL);
  }
  uv_run(&op->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&op->loop) != 0)
    log_event(&a->log, LOG_ERROR, "internal", NULL,
              "event loop closed with handles still open");
  return rc;
}

static bool want_color(FILE *f)
{
  const char *nc = getenv("NO_COLOR");
  return isatty(fileno(f)) && !(nc && *nc);
}

/* Take state_dir/lock (SPEC §5), waiting STATELOCK_WAIT_MS for another
 * holder: 0, or -1 after logging why (the holder's pid, or the file). */
static int lock_state_dir(const struct log *log, const char *dir,
                          bool exclusive, struct statelock *lk)
{
  char why[600];
  pid_t holder = 0;
  int rc;

  if (exclusive)
    (void)statefile_mkdir(dir); /* the first pass: statelock says why not */
  rc = statelock_wait(dir, exclusive, STATELOCK_WAIT_MS, lk, &holder);
  if (rc == 0)
    return 0;
  statelock_strerror(rc, dir, holder, STATELOCK_WAIT_MS, why, sizeof(why));
  log_event(log, LOG_ERROR, "state.locked", NULL, "%s", why);
  return -1;
}

/* The ledger of state_dir: a corrupt one is not used (nothing is detached
 * and it is not overwritten), so an operator can inspect it. */
static struct ledger *open_ledger(const struct cli_args *a,
                                  const struct config *cfg, struct ledger *l)
{
  int rc = ledger_load(cfg->daemon.state_dir, l);
  char path[PATH_MAX], why[512];

  if (rc == 0 || rc == -ENOENT)
    return l;
  statefile_path(path, sizeof(path), cfg->daemon.state_dir, LEDGER_FILE);
  statefile_strerror(rc, "read", path, why, sizeof(why));
  log_event(&a->log, LOG_ERROR, "ledger.unusable", NULL,
            "%s: ownership unknown, nothing will be detached and the "
            "ledger is left as it is",
            why);
  ledger_free(l);
  return NULL;
}

static void log_write_error(const struct log *log, const char *event, int rc,
                            const char *path)
{
  char why[512];

  statefile_strerror(rc, "write", path, why, sizeof(why));
  log_event(log, LOG_ERROR, event, NULL, "%s", why);
}

/* status.json: this pass's bindings, and those it did not reach as the
 * earlier status.json has them (an unreadable one is logged and left
 * out). n: the bindings by state, for the gauges. */
static int save_status(const struct log *log, const char *dir,
                       const struct pass *p, uint64_t n[STATUS_FAILED + 1])
{
  struct status prev, st;
  bool have_prev = false;
  char path[PATH_MAX], why[512];
  int rc;

  statefile_path(path, sizeof(path), dir, STATUS_FILE);
  if (!pass_reached_all(p)) {
    rc = status_read(dir, &prev);
    have_prev = rc == 0;
    if (rc < 0 && rc != -ENOENT) {
      statefile_strerror(rc, "read", path, why, sizeof(why));
      log_event(log, LOG_WARN, "status.unreadable", NULL,
                "%s: the bindings this pass did not reach are shown pending",
                why);
    }
    if (!have_prev)
      status_free(&prev);
  }
  rc = pass_status(p, have_prev ? &prev : NULL, &st);
  if (have_prev)
    status_free(&prev);
  if (rc < 0) {
    log_write_error(log, "status.failed", rc, path);
    return rc;
  }
  status_count(&st, n);
  rc = status_write(dir, &st);
  status_free(&st);
  if (rc < 0)
    log_write_error(log, "status.failed", rc, path);
  return rc;
}

/* The counters kept in state_dir plus what this process counted since it
 * last saved them, written back, then the textfile from that sum: the
 * counters of the textfile never go down, whoever writes it. A missing or
 * corrupt counters file starts them from zero; it never stops a pass. */
static int save_metrics(const struct log *log, const struct config *cfg,
                        const struct pass *p, struct metrics *m,
                        const uint64_t n[STATUS_FAILED + 1])
{
  const char *dir = cfg->daemon.state_dir;
  struct metrics total;
  char path[PATH_MAX], why[512];
  int rc, err = 0;

  const struct pass_result *r = pass_result(p);

  m->passes_total++;
  if (pass_succeeded(p))
    m->last_success_ts = r->ended_ms / 1000;
  statefile_path(path, sizeof(path), dir, METRICS_COUNTERS_FILE);
  rc = metrics_counters_read(dir, &total);
  if (rc < 0) {
    statefile_strerror(rc, "read", path, why, sizeof(why));
    log_event(log, LOG_WARN, "metrics.counters", NULL,
              "%s: the counters start from zero", why);
    metrics_free(&total);
    memset(&total, 0, sizeof(total));
  }
  err = metrics_add(&total, m);
  if (err == 0)
    err = metrics_counters_write(dir, &total);
  if (err < 0)
    log_write_error(log, "metrics.failed", err, path);
  else
    metrics_saved(m); /* else added again, to the same file, next time */
  total.converged = n[STATUS_CONVERGED];
  total.pending = n[STATUS_PENDING];
  total.failed = n[STATUS_FAILED];
  total.uncertain = r->counts.uncertain;
  total.last_pass_ts = r->ended_ms / 1000;
  total.pass_duration_s = (double)(r->ended_ms - r->started_ms) / 1000.0;
  if (cfg->daemon.metrics_file) {
    rc = metrics_write(cfg->daemon.metrics_file, &total);
    if (rc < 0)
      log_write_error(log, "metrics.failed", rc, cfg->daemon.metrics_file);
    if (err == 0)
      err = rc;
  }
  metrics_free(&total);
  return err;
}

int cli_save_pass(const struct log *log, const struct config *cfg,
                  const struct pass *p, struct ledger *ledger,
                  struct metrics *m)
{
  const char *dir = cfg->daemon.state_dir;
  const struct pass_counts *k = &pass_result(p)->counts;
  uint64_t n[STATUS_FAILED + 1] = {
      [STATUS_CONVERGED] = k->attached + k->changed + k->unchanged,
      [STATUS_PENDING] = k->pending,
      [STATUS_FAILED] = k->failed,
  }; /* replaced by the status's own count when it can be made */
  char path[PATH_MAX];
  int rc, err;

  (void)statefile_mkdir(dir); /* the writes below report the real problem */
  err = save_status(log, dir, p, n);
  if (ledger && pass_ledger_dirty(p)) {
    rc = ledger_save(dir, ledger);
    if (rc < 0) {
      statefile_path(path, sizeof(path), dir, LEDGER_FILE);
      log_write_error(log, "ledger.failed", rc, path);
      err = err ? err : rc;
    }
  }
  rc = save_metrics(log, cfg, p, m, n);
  return err ? err : rc;
}

static bool any_read_failed(const struct pass *p)
{
  const struct pass_result *r = pass_result(p);

  for (size_t c = 0; c < r->live->ncerts; c++) {
    if (!r->live->certs[c].known)
      return true;
  }
  return r->outcome == PASS_FAILED || r->outcome == PASS_INTERRUPTED ||
         r->counts.failed > 0;
}

static int write_plan_file(const struct cli_args *a, const struct config *cfg,
                           const struct pass *p)
{
  char *json;
  size_t len;
  char why[512];
  int rc = report_plan_json(cfg, pass_result(p)->plan, &json, &len);

  if (rc == 0)
    rc = statefile_write_atomic(a->out_path, json, len, 0644);
  if (rc == 0)
    free(json);
  if (rc < 0) {
    statefile_strerror(rc, "write", a->out_path, why, sizeof(why));
    fprintf(stderr, "certbind: %s\n", why);
  }
  return rc;
}

int cli_plan(const struct cli_args *a)
{
  struct config cfg = {0};
  struct ledger ledger_store = {0}, *ledger;
  struct metrics m = {0};
  struct pass_opts po = {.write = false, .command = "plan"};
  const struct pass_result *res;
  struct statelock lock;
  struct one_pass *op;
  int rc = cli_load_config(a->config_path, &cfg);

  if (rc)
    return rc;
  op = calloc(1, sizeof(*op));
  if (!op) {
    config_free(&cfg);
    return CLI_EXIT_FAILURE;
  }
  /* the ledger decides what sync would detach: read it whole, not while
   * a pass rewrites it */
  if (lock_state_dir(&a->log, cfg.daemon.state_dir, false, &lock) < 0) {
    free(op);
    config_free(&cfg);
    return CLI_EXIT_FAILURE;
  }
  ledger = open_ledger(a, &cfg, &ledger_store);
  statelock_release(&lock);
  po.progress = a->log.format == LOG_FORMAT_TEXT && isatty(STDERR_FILENO);
  rc = run_pass(a, &cfg, ledger, &m, &po, op);
  res = op->pass ? pass_result(op->pass) : NULL;
  if (rc == 0 && res->outcome == PASS_PLANNED) {
    if (a->json) {
      char *json;
      size_t len;
      if (report_plan_json(&cfg, res->plan, &json, &len) == 0) {
        fwrite(json, 1, len, stdout);
        fputc('\n', stdout);
        free(json);
      }
    } else {
      report_plan_text(&cfg, res->plan, stdout, want_color(stdout));
    }
    if (a->out_path && write_plan_file(a, &cfg, op->pass) < 0)
      rc = -EIO;
  }
  if (rc < 0 || res->outcome != PASS_PLANNED || any_read_failed(op->pass))
    rc = CLI_EXIT_FAILURE;
  else
    rc = res->plan->nitems ? CLI_EXIT_CHANGES : CLI_EXIT_OK;
  if (rc == CLI_EXIT_FAILURE && res && res->has_plan)
    pass_print_summary(op->pass, stderr, want_color(stderr));
  pass_free(op->pass);
  free(op);
  ledger_free(&ledger_store);
  metrics_free(&m);
  config_free(&cfg);
  return rc;
}

static int apply_exit_code(const struct pass *p)
{
  switch (pass_result(p)->outcome) {
  case PASS_CONVERGED:
  case PASS_PLANNED:
    return CLI_EXIT_OK;
  case PASS_REFUSED:
  case PASS_ABORTED:
    return CLI_EXIT_REFUSED;
  default:
    return CLI_EXIT_FAILURE;
  }
}

int cli_apply(const struct cli_args *a)
{
  struct config cfg = {0};
  struct ledger ledger_store = {0}, *ledger;
  struct metrics m = {0};
  struct pass_opts po = {
      .write = true, .dry_run = a->dry_run, .command = "apply"};
  char checksum[65];
  struct statelock lock;
  struct one_pass *op;
  int rc = cli_load_config(a->config_path, &cfg);

  if (rc)
    return rc;
  if (a->plan_path) {
    const char *why;
    if (report_plan_read(a->plan_path, checksum, &why) < 0) {
      fprintf(stderr, "certbind: %s: %s\n", a->plan_path, why);
      config_free(&cfg);
      return CLI_EXIT_USAGE;
    }
    po.expect_checksum = checksum;
  }
  op = calloc(1, sizeof(*op));
  if (!op) {
    config_free(&cfg);
    return CLI_EXIT_FAILURE;
  }
  /* held from the ledger's read to the last state file's write, so that
   * a daemon's pass cannot write an older ledger over this one's */
  if (lock_state_dir(&a->log, cfg.daemon.state_dir, true, &lock) < 0) {
    free(op);
    config_free(&cfg);
    return CLI_EXIT_FAILURE;
  }
  ledger = open_ledger(a, &cfg, &ledger_store);
  po.progress = a->log.format == LOG_FORMAT_TEXT && isatty(STDERR_FILENO);
  rc = run_pass(a, &cfg, ledger, &m, &po, op);
  if (rc < 0) {
    rc = CLI_EXIT_FAILURE;
  } else if (a->dry_run && pass_result(op->pass)->outcome == PASS_PLANNED) {
    report_plan_text(&cfg, pass_result(op->pass)->plan, stdout,
                     want_color(stdout));
    puts("dry run: nothing was written");
    rc = CLI_EXIT_OK;
  } else {
    pass_print_summary(op->pass, stdout, want_color(stdout));
    rc = apply_exit_code(op->pass);
    /* a dry run writes nothing to state_dir; a state file that cannot be
     * written fails the pass */
    if (!a->dry_run && cli_save_pass(&a->log, &cfg, op->pass, ledger, &m) < 0 &&
        rc == CLI_EXIT_OK)
      rc = CLI_EXIT_FAILURE;
  }
  statelock_release(&lock);
  pass_free(op->pass);
  free(op);
  ledger_free(&ledger_store);
  metrics_free(&m);
  config_free(&cfg);
  return rc;
}

int cli_status(const struct cli_args *a)
{
  const char *dir = a->state_dir ? a->state_dir : "/var/lib/certbind";
  struct status st;
  struct statelock lock;
  char path[4096], why[512];
  int rc;

  if (lock_state_dir(&a->log, dir, false, &lock) < 0)
    return CLI_EXIT_FAILURE;
  rc = status_read(dir, &st);
  statelock_release(&lock);
  if (rc < 0) {
    statefile_path(path, sizeof(path), dir, STATUS_FILE);
    statefile_strerror(rc, "read", path, why, sizeof(why));
    fprintf(stderr, "certbind: %s\n", why);
    status_free(&st);
    return CLI_EXIT_FAILURE;
  }
  rc = status_print(&st, stdout, a->json, want_color(stdout));
  status_free(&st);
  return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}

/* The index of the certificate named `name` in cfg, or -1. */
static long find_certificate(const struct config *cfg, const char *name)
{
  for (size_t i = 0; i < cfg->ncertificates; i++) {
    if (strcmp(cfg->certificates[i].name, name) == 0)
      return (long)i;
  }
  return -1;
}

struct adopt_counts {
  size_t adopted, uncertain, owned, missing, unread;
};

/* Own every live binding the file wants (of certificate `only`, or all
 * when -1): what a read showed, never what it did not. */
static void adopt_live(const struct config *cfg, const struct live_state *live,
                       long only, struct ledger *l, struct adopt_counts *n)
{
  int64_t now = (int64_t)time(NULL);

  for (size_t i = 0; i < cfg->nbindings; i++) {
    const struct config_binding *b = &cfg->bindings[i];
    const struct live_cert *lc = &live->certs[b->certificate];
    const char *cert_id = cfg->certificates[b->certificate].id;
    const char *inst = cfg->gateways[b->gateway].instance_id;
    if (only >= 0 && b->certificate != (size_t)only)
      continue;
    if (!lc->known) {
      n->unread++;
      continue;
    }
    if (!live_cert_find(lc, inst, b->domain)) {
      n->missing++;
      continue;
    }
    if (ledger_owns(l, cert_id, inst, b->domain)) {
      n->owned++;
      continue;
    }
    n->uncertain += ledger_contains(l, cert_id, inst, b->domain);
    if (ledger_add(l, cert_id, inst, b->domain, now) == 0)
      n->adopted++;
  }
}

/* certbind adopt (SPEC §2): the live bindings that the file wants become
 * owned, so that sync mode can manage a fleet certbind did not build, and
 * bindings left uncertain by a crash are owned again. Nothing is written
 * to APIG. */
int cli_adopt(const struct cli_args *a)
{
  struct config cfg = {0};
  struct ledger ledger_store = {0}, *ledger;
  struct metrics m = {0};
  struct pass_opts po = {.write = false, .command = "adopt"};
  struct adopt_counts n = {0};
  struct statelock lock;
  struct one_pass *op;
  long only = -1;
  char why[600];
  int rc = cli_load_config(a->config_path, &cfg);

  if (rc)
    return rc;
  if (a->certificate && (only = find_certificate(&cfg, a->certificate)) < 0) {
    fprintf(stderr, "certbind: adopt: %s names no certificate '%s'\n",
            a->config_path, a->certificate);
    config_free(&cfg);
    return CLI_EXIT_USAGE;
  }
  op = calloc(1, sizeof(*op));
  if (!op || lock_state_dir(&a->log, cfg.daemon.state_dir, true, &lock) < 0) {
    free(op);
    config_free(&cfg);
    return CLI_EXIT_FAILURE;
  }
  ledger = open_ledger(a, &cfg, &ledger_store);
  if (!ledger) { /* unreadable: never written over (open_ledger said why) */
    rc = CLI_EXIT_FAILURE;
    goto out;
  }
  rc = run_pass(a, &cfg, ledger, &m, &po, op);
  if (rc < 0 || pass_result(op->pass)->outcome != PASS_PLANNED) {
    rc = CLI_EXIT_FAILURE;
    goto out;
  }
  adopt_live(&cfg, pass_result(op->pass)->live, only, ledger, &n);
  rc = n.unread ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
  if (n.adopted) {
    int err = ledger_save(cfg.daemon.state_dir, ledger);
    if (err < 0) {
      char path[4096];
      statefile_path(path, sizeof(path), cfg.daemon.state_dir, LEDGER_FILE);
      statefile_strerror(err, "write", path, why, sizeof(why));
      log_event(&a->log, LOG_ERROR, "ledger.failed", NULL, "%s", why);
      n.adopted = n.uncertain = 0;
      rc = CLI_EXIT_FAILURE;
    }
  }
  printf("adopted %zu binding(s) (%zu were uncertain), %zu already owned, "
         "%zu wanted but not live (apply attaches them)\n",
         n.adopted, n.uncertain, n.owned, n.missing);
  if (n.unread)
    printf("%zu binding(s) not adopted: their certificate could not be "
           "read\n",
           n.unread);
out:
  statelock_release(&lock);
  pass_free(op->pass);
  free(op);
  ledger_free(&ledger_store);
  metrics_free(&m);
  config_free(&cfg);
  return rc;
}
