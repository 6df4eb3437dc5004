/* SPDX-License-Identifier: MIT */
/*
 * status_writer STATE_DIR: rewrite STATE_DIR/status.json forever, each
 * version with a different size, so test_status_kill can SIGKILL it at
 * random moments. Writes "R" on stdout once it is about to start.
 *
 * Version i has pass.requests = i and 150 + i % 100 bindings, so a reader
 * can tell a complete version from a mix of two.
 */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BINDINGS 250

static int fill(struct status *st)
{
  st->bindings = calloc(MAX_BINDINGS, sizeof(*st->bindings));
  st->pass.outcome = strdup("converged");
  st->pass.command = strdup("run");
  st->pass.mode = strdup("sync");
  if (!st->bindings || !st->pass.outcome || !st->pass.command || !st->pass.mode)
    return -1;
  for (size_t i = 0; i < MAX_BINDINGS; i++) {
    struct status_binding *b = &st->bindings[i];
    char dom[64];

    snprintf(dom, sizeof(dom), "host-%zu.example.com", i);
    b->account = strdup("sg-prod");
    b->certificate = strdup("star-example-2026");
    b->certificate_id = strdup("a27be832f2e9441c8127fe48e3b5ac67");
    b->gateway = strdup("sg-edge-1");
    b->instance_id = strdup("f0fa1789-3b76-433b-a787-9892951c620e");
    b->domain = strdup(dom);
    b->error_msg = strdup("The URL domain does not exist");
    b->state = i % 7 == 0 ? STATUS_FAILED : STATUS_CONVERGED;
    if (!b->account || !b->certificate || !b->certificate_id || !b->gateway ||
        !b->instance_id || !b->domain || !b->error_msg)
      return -1;
  }
  st->nbindings = MAX_BINDINGS; /* so status_free frees them all */
  return 0;
}

int main(int argc, char **argv)
{
  struct status st = {0};

  if (argc != 2 || fill(&st) < 0) {
    fprintf(stderr, "usage: status_writer STATE_DIR\n");
    return 2;
  }
  if (write(STDOUT_FILENO, "R", 1) != 1)
    return 2;
  for (uint64_t i = 1;; i++) {
    int rc;

    st.pass.requests = i;
    st.nbindings = 150 + i % 100;
    rc = status_write(argv[1], &st);
    if (rc < 0) {
      fprintf(stderr, "status_writer: status_write: %s\n", strerror(-rc));
      st.nbindings = MAX_BINDINGS;
      status_free(&st);
      return 1;
    }
  }
}
