/* SPDX-License-Identifier: MIT */
/*
 * fuzz_apig_error: libFuzzer target for the error-envelope parser
 * (apig_parse_error) and the classification that consumes its result.
 *
 * What must hold for any input: it never fails, every field is a
 * NUL-terminated string within its array, and classifying the parsed code
 * for every op and a spread of statuses gives a defined class.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const long statuses[] = {0,   200, 204, 400, 401, 403,
                                  404, 408, 409, 429, 500, 503};
  static const enum apig_op ops[] = {APIG_OP_LIST, APIG_OP_ATTACH,
                                     APIG_OP_DETACH, APIG_OP_TOKEN};
  struct apig_error e;

  apig_parse_error((const char *)data, size, &e);
  if (memchr(e.code, '\0', sizeof e.code) == NULL ||
      memchr(e.msg, '\0', sizeof e.msg) == NULL ||
      memchr(e.request_id, '\0', sizeof e.request_id) == NULL)
    abort();
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    for (size_t s = 0; s < sizeof statuses / sizeof statuses[0]; s++) {
      enum apig_class c =
          apig_classify(ops[o], statuses[s], statuses[s] == 0, e.code, e.msg);
      if (c < APIG_OK || c > APIG_PERMANENT || apig_class_name(c) == NULL)
        abort();
      (void)apig_outcome_unknown(ops[o], statuses[s], statuses[s] == 0, true);
    }
  return 0;
}
