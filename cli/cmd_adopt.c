/* SPDX-License-Identifier: MIT */
/*
 * adopt: the live bindings that the file wants become owned, so that sync
 * mode can manage a fleet certbind did not build, and bindings a crash
 * left uncertain are owned again. A pass that only reads; nothing is
 * written to APIG, only the ledger. Its own command, not an apply option:
 * it writes no status or metrics, and owns only what a read showed.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "oneshot.h"
#include "persist.h"

struct adopt_counts {
  size_t adopted, uncertain, owned, missing, unread;
};

/* The index of the certificate named `name` in cfg, or -1. */
static long find_certificate(const struct config *cfg, const char *name)
{
  for (size_t i = 0; i < cfg->ncertificates; i++) {
    if (strcmp(cfg->certificates[i].name, name) == 0)
      return (long)i;
  }
  return -1;
}

/* Own every live binding the file wants (of certificate `only`, or all
 * when -1): what a read showed, never what it did not. */
static void adopt_live(const struct config *cfg, const struct live_state *live,
                       long only, struct ledger *l, struct adopt_counts *n)
{
  int64_t now = (int64_t)time(NULL);

  for (size_t i = 0; i < cfg->nbindings; i++) {
    const struct config_binding *b = &cfg->bindings[i];
    const struct live_cert *lc = &live->certs[b->certificate];
    const char *cert_id = cfg->certificates[b->certificate].id;
    const char *inst = cfg->gateways[b->gateway].instance_id;
    if (only >= 0 && b->certificate != (size_t)only)
      continue;
    if (!lc->known) {
      n->unread++;
      continue;
    }
    if (!live_cert_find(lc, inst, b->domain)) {
      n->missing++;
      continue;
    }
    if (ledger_owns(l, cert_id, inst, b->domain)) {
      n->owned++;
      continue;
    }
    n->uncertain += ledger_contains(l, cert_id, inst, b->domain);
    if (ledger_add(l, cert_id, inst, b->domain, now) == 0)
      n->adopted++;
  }
}

static void print_counts(const struct adopt_counts *n)
{
  printf("adopted %zu binding(s) (%zu were uncertain), %zu already owned, "
         "%zu wanted but not live (apply attaches them)\n",
         n->adopted, n->uncertain, n->owned, n->missing);
  if (n->unread)
    printf("%zu binding(s) not adopted: their certificate could not be "
           "read\n",
           n->unread);
}

/* After the pass: own, save the ledger, say what was done. */
static int adopt(struct oneshot *o, long only)
{
  struct adopt_counts n = {0};
  int rc;

  adopt_live(pass_config(o->pass), o->result->live, only, o->ledger, &n);
  rc = n.unread ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
  if (n.adopted &&
      persist_ledger(&o->args->log, o->cfg.daemon.state_dir, o->ledger) < 0) {
    n.adopted = n.uncertain = 0;
    rc = CLI_EXIT_FAILURE;
  }
  print_counts(&n);
  return rc;
}

int cli_adopt(const struct cli_args *a)
{
  struct oneshot o = {0};
  struct pass_opts po = {.write = false, .command = "adopt"};
  long only = -1;
  int rc = oneshot_open(&o, a);

  if (rc)
    goto out;
  if (a->certificate && (only = find_certificate(&o.cfg, a->certificate)) < 0) {
    fprintf(stderr, "certbind: adopt: %s names no certificate '%s'\n",
            a->config_path, a->certificate);
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  rc = CLI_EXIT_FAILURE;
  if (oneshot_lock(&o, true) < 0)
    goto out;
  /* an unreadable ledger is never written over (oneshot_lock said why) */
  if (!o.ledger || oneshot_run(&o, &po, false) < 0 ||
      o.result->outcome != PASS_PLANNED)
    goto out;
  rc = adopt(&o, only);
out:
  oneshot_close(&o);
  return rc;
}
