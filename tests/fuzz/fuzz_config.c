/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config: libFuzzer target for the desired-state loader.
 *
 * Feeds the input to config_load_buffer and checks what must hold for any
 * input: success means no diagnostics and a model whose indexes are in
 * range; failure with -EINVAL means at least one "fuzz.yaml:..." line.
 * Built as fuzz_config with -DFUZZ=ON (clang) and as replay_config, with
 * tests/fuzz/replay.c, in every build (see CMakeLists.txt).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid corpus files reference their secrets as { env: CB_FUZZ_SECRET }. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  setenv("CB_FUZZ_SECRET", "fuzz-secret-value", 1);
  return 0;
}

static void check_model(const struct config *cfg)
{
  if (cfg->naccounts == 0 || cfg->path == NULL || strlen(cfg->sha256) != 64)
    abort();
  for (size_t i = 0; i < cfg->naccounts; i++)
    if (cfg->accounts[i].endpoint == NULL ||
        strncmp(cfg->accounts[i].endpoint, "https://", 8) != 0)
      abort();
  for (size_t i = 0; i < cfg->ngateways; i++)
    if (cfg->gateways[i].account >= cfg->naccounts)
      abort();
  for (size_t i = 0; i < cfg->ncertificates; i++)
    if (cfg->certificates[i].account >= cfg->naccounts)
      abort();
  for (size_t i = 0; i < cfg->nbindings; i++) {
    const struct config_binding *b = &cfg->bindings[i];
    if (b->certificate >= cfg->ncertificates || b->gateway >= cfg->ngateways ||
        b->domain == NULL || b->line == 0 ||
        cfg->gateways[b->gateway].account !=
            cfg->certificates[b->certificate].account)
      abort();
  }
  if (cfg->rollout.enabled && cfg->rollout.nwaves == 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct config cfg;
  struct config_diag diag = {0};
  int rc =
      config_load_buffer("fuzz.yaml", (const char *)data, size, &cfg, &diag);

  if (rc == 0) {
    if (diag.count != 0)
      abort();
    check_model(&cfg);
    config_free(&cfg);
  } else {
    if (rc == -EINVAL && diag.count == 0)
      abort();
    for (size_t i = 0; i < diag.count; i++)
      if (strncmp(diag.lines[i], "fuzz.yaml:", 10) != 0)
        abort();
  }
  config_diag_free(&diag);
  return 0;
}
