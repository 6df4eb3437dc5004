/* The live commands; replaced as the engine lands. */
#include <stdio.h>

#include "cli.h"

static int unavailable(const struct cli_args *a)
{
  fprintf(stderr, "certbind: %s is not available in this build yet\n",
          a->command);
  return CLI_EXIT_FAILURE;
}

int cli_plan(const struct cli_args *a)
{
  return unavailable(a);
}

int cli_apply(const struct cli_args *a)
{
  return unavailable(a);
}

int cli_run(const struct cli_args *a)
{
  return unavailable(a);
}

int cli_status(const struct cli_args *a)
{
  return unavailable(a);
}
