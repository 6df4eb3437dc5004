/* SPDX-License-Identifier: MIT */
/*
 * plan: read the live state, print the diff (text, or --json), and store
 * it for `apply --plan` (--out). Nothing is written to APIG or state_dir.
 * A plan that apply would refuse (plan_guards) says so and exits 4.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "oneshot.h"
#include "report.h"
#include "statefile.h"

/* The plan is not the whole truth when a read failed: exit 1, not 0/2. */
static bool any_read_failed(const struct pass_result *r)
{
  for (size_t c = 0; c < r->live->ncerts; c++) {
    if (!r->live->certs[c].known)
      return true;
  }
  return r->outcome == PASS_FAILED || r->outcome == PASS_INTERRUPTED ||
         r->counts.failed > 0;
}

/* The plan's JSON, with when it was made and what apply would refuse. */
static int plan_json(const struct config *cfg, const struct pass_result *r,
                     const char *refusal, char **json, size_t *len)
{
  struct report_plan_meta meta = {.created_ms = r->ended_ms,
                                  .refusal = refusal};

  return report_plan_json(cfg, r->plan, &meta, json, len);
}

static void print_plan(const struct cli_args *a, const struct config *cfg,
                       const struct pass_result *r, const char *refusal)
{
  char *json;
  size_t len;

  if (!a->json) {
    report_plan_text(cfg, r->plan, stdout, report_want_color(stdout));
    if (refusal)
      printf("apply would refuse: %s\n", refusal);
    return;
  }
  if (plan_json(cfg, r, refusal, &json, &len) == 0) {
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    free(json);
  }
}

static int write_plan_file(const char *path, const struct config *cfg,
                           const struct pass_result *r, const char *refusal)
{
  char *json;
  size_t len;
  char why[512];
  int rc = plan_json(cfg, r, refusal, &json, &len);

  if (rc == 0)
    rc = statefile_write_atomic(path, json, len, 0644);
  if (rc == 0)
    free(json);
  if (rc < 0) {
    statefile_strerror(rc, "write", path, why, sizeof(why));
    fprintf(stderr, "certbind: %s\n", why);
  }
  return rc;
}

int cli_plan(const struct cli_args *a)
{
  struct oneshot o = {0};
  struct pass_opts po = {.write = false, .command = "plan"};
  const struct pass_result *res;
  char why[200];
  const char *refusal = NULL;
  int rc = oneshot_open(&o, a);

  if (rc)
    goto out;
  /* the ledger decides what sync would detach: read it whole, not while
   * a pass rewrites it */
  if (oneshot_lock(&o, false) < 0) {
    rc = CLI_EXIT_FAILURE;
    goto out;
  }
  oneshot_unlock(&o);
  rc = oneshot_run(&o, &po, true);
  res = o.result;
  if (rc == 0 && res->outcome == PASS_PLANNED) {
    /* the guards apply would check, by the same function */
    if (plan_guards(pass_config(o.pass), res->plan, why, sizeof(why)) !=
        PLAN_GUARD_OK)
      refusal = why;
    print_plan(a, pass_config(o.pass), res, refusal);
    if (a->out_path &&
        write_plan_file(a->out_path, pass_config(o.pass), res, refusal) < 0)
      rc = -EIO;
  }
  if (rc < 0 || res->outcome != PASS_PLANNED || any_read_failed(res))
    rc = CLI_EXIT_FAILURE;
  else if (refusal)
    rc = CLI_EXIT_REFUSED;
  else
    rc = res->plan->nitems || res->plan->ncert_ops ? CLI_EXIT_CHANGES
                                                   : CLI_EXIT_OK;
  if (rc == CLI_EXIT_FAILURE && res && res->has_plan)
    pass_print_summary(o.pass, stderr, report_want_color(stderr));
out:
  oneshot_close(&o);
  return rc;
}
