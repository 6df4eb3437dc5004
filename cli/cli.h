/* SPDX-License-Identifier: MIT */
/*
 * cli: the certbind commands, each taking the parsed command line (main.c)
 * and returning the process exit code; the exit codes are the same for
 * every command (docs/cli.md).
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
  const char *certificate; /* adopt --certificate NAME: the last given */
  /* import --certificate ID...: every one given, in order (main owns the
   * array for the process's life) */
  const char *const *certificates;
  size_t ncertificates;
  bool json;
  bool dry_run;
  bool force;         /* apply --force: the detach thresholds do not refuse */
  bool yes;           /* apply --yes: no prompt on a terminal */
  bool all;           /* status --all: every binding, not the first 20 */
  bool log_level_set; /* --log-level was given */
  struct log log;
};

/* Load the file; on failure print every problem to stderr and return
 * CLI_EXIT_INVALID, else 0. Every command loads it so (cmd_validate.c). */
int cli_load_config(const char *path, struct config *cfg);

/* Each command: the process's exit code. validate, status: offline
 * (cmd_validate.c, cmd_status.c); plan, apply, adopt, import: one pass
 * each (cmd_plan.c, cmd_apply.c, cmd_adopt.c, cmd_import.c on oneshot.h); run:
 * the daemon (daemon.c). */
int cli_validate(const struct cli_args *a);
int cli_plan(const struct cli_args *a);
int cli_apply(const struct cli_args *a);
int cli_run(const struct cli_args *a);
int cli_status(const struct cli_args *a);
int cli_adopt(const struct cli_args *a);
int cli_import(const struct cli_args *a);
/* verify: what the gateways' ingress addresses serve (cmd_verify.c);
 * reads no API and writes no state file */
int cli_verify(const struct cli_args *a);

#endif
