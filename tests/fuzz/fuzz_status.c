/* SPDX-License-Identifier: MIT */
/*
 * fuzz_status: libFuzzer target for the readers of the files certbind
 * keeps: status_from_json (status.json) and ledger_from_json (ledger.json).
 * Every input goes to both.
 *
 * What must hold for any input: failure is -EBADMSG, -EPROTONOSUPPORT (a
 * later version) or -ENOMEM and leaves an empty struct; success gives a model
 * that serialises, and whose JSON parses again to the same JSON (a fixed
 * point), so a file certbind wrote is always a file certbind reads. Ledger
 * lookups find every entry.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_status(const char *in, size_t size)
{
  struct status st, st2;
  char *j1 = NULL, *j2 = NULL;
  size_t l1, l2;
  int rc = status_from_json(in, size, &st);

  if (rc != 0) {
    if (rc != -EBADMSG && rc != -ENOMEM && rc != -EPROTONOSUPPORT)
      abort();
    if (st.bindings != NULL || st.nbindings != 0 || st.pass.outcome != NULL)
      abort();
    status_free(&st);
    return;
  }
  if (st.nbindings > 0 && st.bindings == NULL)
    abort();
  if (status_to_json(&st, &j1, &l1) != 0)
    abort();
  if (status_from_json(j1, l1, &st2) != 0)
    abort();
  if (status_to_json(&st2, &j2, &l2) != 0 || l1 != l2 || memcmp(j1, j2, l1))
    abort();
  free(j1);
  free(j2);
  status_free(&st);
  status_free(&st2);
}

static void fuzz_ledger(const char *in, size_t size)
{
  struct ledger l, l2;
  char *j1 = NULL, *j2 = NULL;
  size_t l1, n2;
  int rc = ledger_from_json(in, size, &l);

  if (rc != 0) {
    if (rc != -EBADMSG && rc != -ENOMEM && rc != -EPROTONOSUPPORT)
      abort();
    if (ledger_count(&l) != 0)
      abort();
    ledger_free(&l);
    return;
  }
  for (size_t i = 0; i < ledger_count(&l); i++) {
    const struct ledger_entry *e = ledger_at(&l, i);
    if (!ledger_contains(&l, e->certificate_id, e->instance_id, e->domain))
      abort();
  }
  if (ledger_to_json(&l, &j1, &l1) != 0)
    abort();
  if (ledger_from_json(j1, l1, &l2) != 0 ||
      ledger_count(&l2) != ledger_count(&l))
    abort();
  if (ledger_to_json(&l2, &j2, &n2) != 0 || l1 != n2 || memcmp(j1, j2, l1))
    abort();
  free(j1);
  free(j2);
  ledger_free(&l);
  ledger_free(&l2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_status((const char *)data, size);
  fuzz_ledger((const char *)data, size);
  return 0;
}
