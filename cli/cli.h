/*
 * cli: the commands of SPEC §2, each taking the parsed command line and
 * returning the process exit code.
 */
#ifndef CERTBIND_CLI_H
#define CERTBIND_CLI_H

#include <stdbool.h>

#include "config.h"
#include "log.h"

enum cli_exit {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1, /* runtime failure */
  CLI_EXIT_CHANGES = 2, /* plan: there are changes */
  CLI_EXIT_INVALID = 3, /* the file is invalid */
  CLI_EXIT_REFUSED = 4, /* a guard refused */
  CLI_EXIT_USAGE = 64,
};

struct cli_args {
  const char *command;
  const char *config_path;
  const char *out_path;
  const char *plan_path;
  const char *state_dir;
  const char *certificate; /* adopt --certificate NAME */
  bool json;
  bool dry_run;
  struct log log;
};

/* Load the file; on failure print every problem to stderr and return
 * CLI_EXIT_INVALID, else 0. */
int cli_load_config(const char *path, struct config *cfg);

struct pass;
struct ledger;
struct metrics;

/* After a pass (also an interrupted or refused one): status.json (the
 * bindings the pass did not reach keep their earlier state), the ledger
 * (when the pass changed it and ledger is not NULL), the counters kept in
 * state_dir (m's counts are added to them, then m counts from zero) and
 * the metrics textfile. Every file is attempted; each failure is logged
 * naming the file and its cause. 0, or the first failure's negative
 * errno: a state file that cannot be written fails the pass. */
int cli_save_pass(const struct log *log, const struct config *cfg,
                  const struct pass *p, struct ledger *ledger,
                  struct metrics *m);

int cli_validate(const struct cli_args *a);
int cli_plan(const struct cli_args *a);
int cli_apply(const struct cli_args *a);
int cli_run(const struct cli_args *a);
int cli_status(const struct cli_args *a);
int cli_adopt(const struct cli_args *a);

#endif
