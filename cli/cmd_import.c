/* SPDX-License-Identifier: MIT */
/*
 * import: print a desired-state file that reproduces the live bindings of
 * the certificates given. Not built yet: it refuses, so that nothing is
 * printed that plan would not reproduce.
 */
#include "cli.h"

#include <stdio.h>

int cli_import(const struct cli_args *a)
{
  (void)a;
  fputs("certbind: import is not available in this build\n", stderr);
  return CLI_EXIT_FAILURE;
}
