/* SPDX-License-Identifier: MIT */
/*
 * apply: one pass that writes (plan, write, confirm), or with --dry-run
 * the plan it would carry out; --plan refuses to write when the live
 * state or the file changed since that plan was stored. state_dir/lock is
 * held from the ledger's read to the last state file's write, so that a
 * daemon's pass cannot write an older ledger over this one's.
 */
#include "cli.h"

#include <stdio.h>

#include "oneshot.h"
#include "persist.h"
#include "report.h"

static int apply_exit_code(const struct pass_result *r)
{
  switch (r->outcome) {
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

/* The result on stdout, the state files (not for a dry run: it writes
 * nothing to state_dir), and the exit code: a state file that cannot be
 * written fails the pass. */
static int finish(struct oneshot *o)
{
  const struct cli_args *a = o->args;
  const struct pass_result *r = o->result;
  int rc;

  if (a->dry_run && r->outcome == PASS_PLANNED) {
    report_plan_text(&o->cfg, r->plan, stdout, report_want_color(stdout));
    puts("dry run: nothing was written");
    return CLI_EXIT_OK;
  }
  pass_print_summary(o->pass, stdout, report_want_color(stdout));
  rc = apply_exit_code(r);
  if (!a->dry_run &&
      persist_pass(&a->log, &o->cfg, o->pass, o->ledger, &o->metrics) < 0 &&
      rc == CLI_EXIT_OK)
    rc = CLI_EXIT_FAILURE;
  return rc;
}

int cli_apply(const struct cli_args *a)
{
  struct oneshot o = {0};
  struct pass_opts po = {
      .write = true, .dry_run = a->dry_run, .command = "apply"};
  char checksum[65];
  const char *why;
  int rc = oneshot_open(&o, a);

  if (rc)
    goto out;
  if (a->plan_path) {
    if (report_plan_read(a->plan_path, checksum, &why) < 0) {
      fprintf(stderr, "certbind: %s: %s\n", a->plan_path, why);
      rc = CLI_EXIT_USAGE;
      goto out;
    }
    po.expect_checksum = checksum;
  }
  if (oneshot_lock(&o, true) < 0 || oneshot_run(&o, &po, true) < 0)
    rc = CLI_EXIT_FAILURE;
  else
    rc = finish(&o);
out:
  oneshot_close(&o);
  return rc;
}
