/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the config tests: load an inline document under the
 * name "t.yaml" and check diagnostics by position and key phrase.
 */
#ifndef CERTBIND_TEST_CONFIG_HELPERS_H
#define CERTBIND_TEST_CONFIG_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

/* Env secrets used by the inline fixtures (set by test_env_setup). */
#define T_TOKEN_VALUE "tok-VALUE-must-not-leak"
#define T_AK_VALUE "AK-VALUE-must-not-leak"
#define T_SK_VALUE "SK-VALUE-must-not-leak"

/* Sets CB_TEST_TOKEN, CB_TEST_AK, CB_TEST_SK. */
void test_env_setup(void);

/* config_load_buffer(text) as "t.yaml". */
int t_load(const char *text, struct config *cfg, struct config_diag *diag);

/* Print the diagnostics (on failure, for the reader of the test log). */
void t_dump(const struct config_diag *diag);

/* True if some line starts "t.yaml:LINE:COL: " and contains phrase. */
int t_has(const struct config_diag *diag, unsigned line, unsigned col,
          const char *phrase);

/* Assert the document is rejected with exactly one diagnostic, at
 * LINE:COL, containing phrase. */
void t_expect_one(const char *text, unsigned line, unsigned col,
                  const char *phrase);

/* Assert the document is rejected and one diagnostic matches. */
void t_expect(const char *text, unsigned line, unsigned col,
              const char *phrase);

/* Assert the document loads; the caller frees cfg. */
void t_expect_ok(const char *text, struct config *cfg);

/* printf into a static-free heap buffer (caller frees). */
char *t_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Make a file with content and mode in a fresh temp dir; returns its path
 * (caller frees; t_rm removes file and dir). */
char *t_secret_file(const char *content, size_t len, unsigned mode);
void t_rm(char *path);

/*
 * A valid head shared by many tests. Line numbers are in the comments:
 * a test that appends text starts at line 20.
 */
#define T_ACCOUNTS                                                             \
  "version: 1\n"                                             /* 1 */           \
  "accounts:\n"                                              /* 2 */           \
  "  a1:\n"                                                  /* 3 */           \
  "    region: ap-southeast-1\n"                             /* 4 */           \
  "    project_id: 0123456789abcdef0123456789abcdef\n"       /* 5 */           \
  "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n" /* 6 */           \
  "  a2:\n"                                                  /* 7 */           \
  "    region: eu-west-101\n"                                /* 8 */           \
  "    project_id: 0123456789ABCDEF0123456789abcdeZ\n"       /* 9 */           \
  "    auth: {method: token, token: {env: CB_TEST_TOKEN}}\n" /* 10 */
#define T_GATEWAYS                                                             \
  "gateways:\n" /* 11 */                                                       \
  "  g1: {account: a1, instance_id: f0fa1789-3b76-433b-a787-9892951c620e}\n"   \
  "  g2: {account: a1, instance_id: 7D39549681C54D968EC2910DA9DA95CD}\n"       \
  "  g3: {account: a2, instance_id: 11111111222233334444555555555555}\n"
#define T_CERTS                                                                \
  "certificates:\n" /* 15 */                                                   \
  "  c1: {account: a1, id: a27be832f2e9441c8127fe48e3b5ac67}\n"                \
  "  c2: {account: a1, id: B27BE832F2E9441C8127FE48E3B5AC67}\n"                \
  "  c3: {account: a2, id: c27be832f2e9441c8127fe48e3b5ac67}\n"
#define T_POLICY "policy: {mode: upsert}\n" /* 19 */
#define T_HEAD T_ACCOUNTS T_GATEWAYS T_CERTS T_POLICY
/* lines 20 and 21 */
#define T_BIND                                                                 \
  "bindings:\n"                                                                \
  "- {certificate: c1, gateways: [g1], domains: [a.example.com]}\n"

#endif
