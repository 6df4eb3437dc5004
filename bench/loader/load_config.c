/* SPDX-License-Identifier: MIT */
/*
 * load_config: load a desired-state file with config_load and print a
 * one-line summary (or every diagnostic). Exit 0 valid, 3 invalid, 1 when
 * the file cannot be read. Used by run.sh to time the loader alone,
 * without the rest of the daemon; `certbind validate -c FILE` does the
 * same through the CLI.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

int main(int argc, char **argv)
{
  struct config cfg;
  struct config_diag diag = {0};
  int rc;

  if (argc != 2) {
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 64;
  }
  rc = config_load(argv[1], &cfg, &diag);
  for (size_t i = 0; i < diag.count; i++)
    fprintf(stderr, "%s\n", diag.lines[i]);
  config_diag_free(&diag);
  if (rc < 0)
    return rc == -EINVAL ? 3 : 1;
  printf("%s: valid: %zu accounts, %zu gateways, %zu certificates, "
         "%zu bindings, mode %s, sha256 %s\n",
         cfg.path, cfg.naccounts, cfg.ngateways, cfg.ncertificates,
         cfg.nbindings, config_mode_name(cfg.policy.mode), cfg.sha256);
  config_free(&cfg);
  return 0;
}
