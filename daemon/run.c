/* certbind run: the daemon (SPEC §7). */
#include <stdio.h>

#include "cli.h"

int cli_run(const struct cli_args *a)
{
  fprintf(stderr, "certbind: %s is not available in this build yet\n",
          a->command);
  return CLI_EXIT_FAILURE;
}
