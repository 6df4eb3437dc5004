/* SPDX-License-Identifier: MIT */
/*
 * persist: the state files after a pass (see persist.h).
 */
#include "persist.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <string.h>

#include "statefile.h"
#include "status.h"

static void log_write_error(const struct log *log, const char *event, int rc,
                            const char *path)
{
  char why[512];

  statefile_strerror(rc, "write", path, why, sizeof(why));
  log_event(log, LOG_ERROR, event, NULL, "%s", why);
}

/* The status an earlier pass left, for the bindings this pass did not
 * reach: true when *prev was read (status_free it); an unreadable one is
 * logged and left out. */
static bool read_earlier_status(const struct log *log, const char *dir,
                                const char *path, struct status *prev)
{
  char why[512];
  int rc = status_read(dir, prev);

  if (rc == 0)
    return true;
  if (rc != -ENOENT) {
    statefile_strerror(rc, "read", path, why, sizeof(why));
    log_event(log, LOG_WARN, "status.unreadable", NULL,
              "%s: the bindings this pass did not reach are shown pending",
              why);
  }
  status_free(prev);
  return false;
}

/* status.json: this pass's bindings, and those it did not reach as the
 * earlier status.json has them. n: the bindings by state, for the
 * gauges. */
static int save_status(const struct log *log, const char *dir,
                       const struct pass *p, const struct served *served,
                       uint64_t n[STATUS_FAILED + 1])
{
  struct status prev, st;
  bool have_prev = false;
  char path[PATH_MAX];
  int rc;

  statefile_path(path, sizeof(path), dir, STATUS_FILE);
  if (!pass_reached_all(p))
    have_prev = read_earlier_status(log, dir, path, &prev);
  rc = pass_status(p, have_prev ? &prev : NULL, &st);
  if (have_prev)
    status_free(&prev);
  if (rc == 0 && served) {
    rc = served_to_status(served, &st);
    if (rc < 0)
      status_free(&st);
  }
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
 * last saved them, written back: 0 or a negative errno (logged). *total
 * is that sum (from zero when the file is missing or corrupt: it never
 * stops a pass). */
static int save_counters(const struct log *log, const char *dir,
                         struct metrics *m, struct metrics *total)
{
  char path[PATH_MAX], why[512];
  int rc;

  statefile_path(path, sizeof(path), dir, METRICS_COUNTERS_FILE);
  rc = metrics_counters_read(dir, total);
  if (rc < 0) {
    statefile_strerror(rc, "read", path, why, sizeof(why));
    log_event(log, LOG_WARN, "metrics.counters", NULL,
              "%s: the counters start from zero", why);
    metrics_free(total);
    memset(total, 0, sizeof(*total));
  }
  rc = metrics_add(total, m);
  if (rc == 0)
    rc = metrics_counters_write(dir, total);
  if (rc < 0)
    log_write_error(log, "metrics.failed", rc, path);
  else
    metrics_saved(m); /* else added again, to the same file, next time */
  return rc;
}

/* The counters, then the textfile from their sum and this pass's gauges:
 * the counters of the textfile never go down, whoever writes it. */
static int save_metrics(const struct log *log, const struct config *cfg,
                        const struct pass *p, struct metrics *m,
                        const uint64_t n[STATUS_FAILED + 1])
{
  const struct pass_result *r = pass_result(p);
  struct metrics total;
  int rc, err;

  m->passes_total++;
  if (pass_succeeded(p))
    m->last_success_ts = r->ended_ms / 1000;
  err = save_counters(log, cfg->daemon.state_dir, m, &total);
  total.converged = n[STATUS_CONVERGED];
  total.pending = n[STATUS_PENDING];
  total.failed = n[STATUS_FAILED];
  total.uncertain = r->counts.uncertain;
  total.last_pass_ts = r->ended_ms / 1000;
  total.pass_duration_s = (double)(r->ended_ms - r->started_ms) / 1000.0;
  if (pass_certificate_metrics(p, &total) < 0 && err == 0)
    err = -ENOMEM; /* the textfile is still written, without them */
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

int persist_ledger(const struct log *log, const char *dir,
                   const struct ledger *l)
{
  char path[PATH_MAX];
  int rc = ledger_save(dir, l);

  if (rc < 0) {
    statefile_path(path, sizeof(path), dir, LEDGER_FILE);
    log_write_error(log, "ledger.failed", rc, path);
  }
  return rc;
}

void persist_visibility_load(const struct log *log, const char *dir,
                             struct visibility_set *v)
{
  char path[PATH_MAX], why[512], detail[200];
  int rc = visibility_read(dir, v, detail, sizeof(detail));

  if (rc == 0 || rc == -ENOENT) {
    if (rc < 0)
      visibility_set_free(v);
    return;
  }
  visibility_set_free(v);
  statefile_path(path, sizeof(path), dir, VISIBILITY_FILE);
  statefile_strerror(rc, "read", path, why, sizeof(why));
  log_event(log, LOG_WARN, "visibility.unreadable", NULL,
            "%s%s%s: the write-to-visible delays are learnt again from "
            "policy.confirm_delay_ms",
            why, detail[0] ? ": " : "", detail);
}

int persist_visibility_save(const struct log *log, const char *dir,
                            struct visibility_set *v)
{
  struct visibility_set file = {0};
  char path[PATH_MAX];
  int rc;

  /* a corrupt file was logged when it was read: it is replaced */
  if (visibility_read(dir, &file, NULL, 0) == 0)
    rc = visibility_merge(v, &file);
  else
    rc = 0;
  visibility_set_free(&file);
  if (rc == 0 && v->n == 0)
    return 0;
  if (rc == 0)
    rc = visibility_write(dir, v);
  if (rc < 0) {
    statefile_path(path, sizeof(path), dir, VISIBILITY_FILE);
    log_write_error(log, "visibility.failed", rc, path);
  }
  return rc;
}

int persist_pass(const struct log *log, const struct config *cfg,
                 const struct pass *p, struct ledger *ledger, struct metrics *m,
                 const struct served *served, struct visibility_set *visibility)
{
  const char *dir = cfg->daemon.state_dir;
  const struct pass_counts *k = &pass_result(p)->counts;
  uint64_t n[STATUS_FAILED + 1] = {
      [STATUS_CONVERGED] = k->attached + k->changed + k->unchanged,
      [STATUS_PENDING] = k->pending,
      [STATUS_FAILED] = k->failed,
  }; /* replaced by the status's own count when it can be made */
  int rc, err;

  /* The pass has freed its jobs, requests and list pages, but glibc keeps
   * free heap pages resident; the status model (96 B a binding) then comes
   * from fresh pages on top of them. Giving them back first keeps the
   * process's peak at the pass's: 100,000 bindings peaked at 73 MB here,
   * 63 MB with the trim (bench/RESULTS.md, issue 18). */
  malloc_trim(0);
  (void)statefile_mkdir(dir); /* the writes below report the real problem */
  err = save_status(log, dir, p, served, n);
  /* the served gauges of this verification (metrics_add carries them
   * into the textfile's sum) */
  if (served && served_to_metrics(served, m) < 0)
    err = err ? err : -ENOMEM;
  if (ledger && pass_ledger_dirty(p)) {
    rc = persist_ledger(log, dir, ledger);
    err = err ? err : rc;
  }
  rc = save_metrics(log, cfg, p, m, n);
  if (visibility)
    (void)persist_visibility_save(log, dir, visibility);
  return err ? err : rc;
}
