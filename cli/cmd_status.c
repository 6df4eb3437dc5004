/* SPDX-License-Identifier: MIT */
/*
 * status: what the last pass left in state_dir, read under a shared
 * state_dir/lock so that a pass cannot rewrite it halfway.
 */
#include "cli.h"

#include <limits.h>
#include <stdio.h>

#include "oneshot.h"
#include "report.h"
#include "statefile.h"
#include "status.h"

int cli_status(const struct cli_args *a)
{
  const char *dir = a->state_dir ? a->state_dir : "/var/lib/certbind";
  struct status st;
  struct statelock lock;
  char path[PATH_MAX], why[512];
  int rc;

  if (oneshot_lock_dir(&a->log, dir, false, &lock) < 0)
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
  rc = status_print(
      &st, stdout,
      &(struct status_print_opts){
          .json = a->json, .color = report_want_color(stdout), .all = a->all});
  status_free(&st);
  return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
