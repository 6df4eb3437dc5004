/* SPDX-License-Identifier: MIT */
/*
 * fuzz_apig_list: libFuzzer target for the attached-domains page parser
 * (apig_parse_list) and apig_bindings_dedupe, i.e. what a hostile or broken
 * server can make certbind read.
 *
 * What must hold for any input: success appends exactly page.count entries,
 * each with a non-empty lowercase url_domain and an instance_id; failure
 * leaves the earlier entries untouched, a reason in why, and total/size -1.
 * The input is parsed twice into one accumulator (two pages), then deduped:
 * the result is sorted by (url_domain, instance_id) without duplicates.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_page(const struct apig_bindings *b, size_t before, int rc,
                       const struct apig_page *page, const char *why)
{
  if (memchr(why, '\0', 128) == NULL)
    abort();
  if (rc != 0) {
    if (rc != -EBADMSG && rc != -E2BIG && rc != -ENOMEM)
      abort();
    if (b->n != before || page->total != -1 || page->size != -1 ||
        why[0] == '\0')
      abort();
    return;
  }
  if (b->n != before + page->count || b->n > b->cap)
    abort();
  for (size_t i = before; i < b->n; i++) {
    const struct apig_binding *e = &b->items[i];
    if (e->url_domain == NULL || e->instance_id == NULL ||
        e->url_domain[0] == '\0')
      abort();
    for (const char *p = e->url_domain; *p; p++)
      if (isupper((unsigned char)*p))
        abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct apig_bindings b = {0};
  struct apig_page page;
  char why[128];

  for (int round = 0; round < 2; round++) {
    size_t before = b.n;
    int rc =
        apig_parse_list((const char *)data, size, &b, &page, why, sizeof why);
    check_page(&b, before, rc, &page, why);
  }
  apig_bindings_dedupe(&b);
  for (size_t i = 1; i < b.n; i++) {
    int c = strcmp(b.items[i - 1].url_domain, b.items[i].url_domain);
    if (c == 0)
      c = strcmp(b.items[i - 1].instance_id, b.items[i].instance_id);
    if (c >= 0)
      abort(); /* not sorted, or a duplicate survived */
  }
  apig_bindings_free(&b);
  if (b.n != 0 || b.items != NULL)
    abort();
  return 0;
}
