/* SPDX-License-Identifier: MIT */
/*
 * validate: check the file offline. cli_load_config() is how every
 * command loads it, with the same messages.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int cli_load_config(const char *path, struct config *cfg)
{
  struct config_diag diag = {0};
  int rc = config_load(path, cfg, &diag);

  for (size_t i = 0; i < diag.count; i++)
    fprintf(stderr, "%s\n", diag.lines[i]);
  if (rc < 0 && diag.count == 0)
    fprintf(stderr, "%s: %s\n", path, strerror(-rc));
  if (rc < 0 && diag.count > 1)
    fprintf(stderr, "%s: %zu problems\n", path, diag.count);
  config_diag_free(&diag);
  return rc < 0 ? CLI_EXIT_INVALID : 0;
}

int cli_validate(const struct cli_args *a)
{
  struct config cfg = {0};
  int rc = cli_load_config(a->config_path, &cfg);

  if (rc)
    return rc;
  printf("%s: ok: %zu account%s, %zu gateway%s, %zu certificate%s, "
         "%zu binding%s (%s mode)\n",
         a->config_path, cfg.naccounts, cfg.naccounts == 1 ? "" : "s",
         cfg.ngateways, cfg.ngateways == 1 ? "" : "s", cfg.ncertificates,
         cfg.ncertificates == 1 ? "" : "s", cfg.nbindings,
         cfg.nbindings == 1 ? "" : "s", config_mode_name(cfg.policy.mode));
  config_free(&cfg);
  return CLI_EXIT_OK;
}
