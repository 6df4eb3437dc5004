/* SPDX-License-Identifier: MIT */
/*
 * fuzz_apig_cert: libFuzzer target for the certificate-object answers
 * (apig_cert_parse for show/create/update, apig_cert_parse_list for a list
 * page) and apig_cert_time on their timestamps: what a hostile or broken
 * server can make certbind read about certificate objects.
 *
 * What must hold for any input: success gives a valid id (it goes into
 * URLs), lowercase SANs, at most APIG_MAX_CERT_SAN of them and at most
 * APIG_LIST_LIMIT items a page; failure leaves the output empty and a
 * reason in why. The same input is read both ways.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cert(const struct apig_cert *c)
{
  if (!apig_id_valid(c->id) || c->nsan > APIG_MAX_CERT_SAN ||
      (c->nsan > 0 && c->san == NULL))
    abort();
  for (size_t i = 0; i < c->nsan; i++)
    for (const char *p = c->san[i]; *p; p++)
      if (isupper((unsigned char)*p))
        abort();
  /* the serial, if any, compares without crashing either way */
  (void)apig_cert_serial_matches(c->serial_number, "1", "01");
}

static void check_failed(int rc, const char *why)
{
  if (rc != -EBADMSG && rc != -E2BIG && rc != -ENOMEM)
    abort();
  if (memchr(why, '\0', 128) == NULL || why[0] == '\0')
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *body = (const char *)data;
  struct apig_cert c;
  struct apig_cert_page p;
  char why[128];
  int rc;

  rc = apig_cert_parse(body, size, &c, why, sizeof why);
  if (rc == 0)
    check_cert(&c);
  else if (check_failed(rc, why), c.id != NULL || c.san != NULL)
    abort();
  apig_cert_free(&c);

  rc = apig_cert_parse_list(body, size, &p, why, sizeof why);
  if (rc == 0) {
    if (p.n > APIG_LIST_LIMIT || p.total < -1 || p.size < -1)
      abort();
    for (size_t i = 0; i < p.n; i++)
      check_cert(&p.items[i]);
  } else {
    check_failed(rc, why);
    if (p.n != 0 || p.items != NULL || p.total != -1)
      abort();
  }
  apig_cert_page_free(&p);

  /* the input as one timestamp (NUL-terminated copy) */
  char *s = malloc(size + 1);
  if (s) {
    int64_t t;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)apig_cert_time(s, &t);
    free(s);
  }
  return 0;
}
