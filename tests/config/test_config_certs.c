/* SPDX-License-Identifier: MIT */
/*
 * Certificates from files in the desired-state file: `cert_file` + `key`
 * (a secret source), `type`, `gateway`, `update`; every refusal of the
 * offline checks at the YAML key that names the input at fault; the SAN
 * coverage of every bound domain; no byte of a private key in any
 * message or in config_emit's output; the key wiped when the model is
 * freed, and when a key beside `id` is refused (free() is wrapped at link
 * time: -Wl,--wrap=free). The
 * certificates are real, made by tests/certs/make-leaf-certs.sh for
 * "api.example.com,*.example.com".
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- free(), watched: is the key's buffer zero when it is freed? ---- */
void __real_free(void *p);
void __wrap_free(void *p);

struct watch {
  const char *p;
  size_t len;
  bool seen, clean;
};
static struct watch s_watch;

/* And, for a key the test cannot reach: does a buffer of the key's size
 * (size..size+32: malloc rounds up), freed while s_scan.needle is set,
 * still hold the needle (a piece of the key)? Only buffers of that size:
 * others (the loader's arenas) are partly uninitialised, which valgrind
 * reports when they are read; malloc_usable_size is the size asked for
 * under ASan and valgrind. */
struct scan {
  const char *needle;
  size_t len;
  size_t size;  /* of the buffer that holds the key's value */
  size_t sized; /* buffers of that size freed */
  bool dirty;
};
static struct scan s_scan;

static bool holds_needle(const void *p)
{
  size_t n = malloc_usable_size((void *)p);

  if (n < s_scan.size || n >= s_scan.size + 32)
    return false;
  s_scan.sized++;
  return memmem(p, n, s_scan.needle, s_scan.len) != NULL;
}

void __wrap_free(void *p)
{
  if (p != NULL && s_scan.needle != NULL && holds_needle(p))
    s_scan.dirty = true;
  if (p != NULL && p == s_watch.p) {
    s_watch.seen = true;
    s_watch.clean = true;
    for (size_t i = 0; i < s_watch.len; i++)
      if (s_watch.p[i] != 0)
        s_watch.clean = false;
    s_watch.p = NULL;
  }
  __real_free(p);
}

/* ---- the certificates ---- */
static char s_dir[] = "/tmp/cbtest-certs-XXXXXX";

static char *path_of(const char *name)
{
  static char buf[4][256];
  static int i;
  i = (i + 1) % 4;
  snprintf(buf[i], sizeof(buf[i]), "%s/%s", s_dir, name);
  return buf[i];
}

static char *slurp(const char *name)
{
  FILE *f = fopen(path_of(name), "rb");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 16);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void write_file(const char *name, const char *text, unsigned mode)
{
  int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static int group_setup(void **state)
{
  (void)state;
  test_env_setup();
  if (!mkdtemp(s_dir))
    return -1;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "'%s' '%s' >/dev/null", MAKE_LEAF_CERTS, s_dir);
  if (system(cmd) != 0)
    return -1;
  char *key = slurp("rsa.key");
  setenv("CB_TEST_KEY", key, 1);
  free(key);
  return 0;
}

static int group_teardown(void **state)
{
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
  unsetenv("CB_TEST_KEY");
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- documents ---- */

/* Lines 1-14 are T_ACCOUNTS T_GATEWAYS; then:
 *   15 certificates:
 *   16   m1:
 *   17     account: a1
 *   18     cert_file: CERT          (the value at column 16)
 *   19     key: KEY                 (the value at column 10)
 *   20...  EXTRA, one key per line
 *   then policy, and the binding of m1 to g1 and g2 with DOMAINS. */
#define LINE_CERT 18
#define COL_CERT 16
#define LINE_KEY 19
#define COL_KEY 10
#define BIND_PREFIX "- {certificate: m1, gateways: [g1, g2], domains: ["

static char *doc(const char *cert, const char *key, const char *extra,
                 const char *domains)
{
  return t_fmt("%s%s"
               "certificates:\n"
               "  m1:\n"
               "    account: a1\n"
               "    cert_file: %s\n"
               "    key: %s\n"
               "%s"
               "policy: {mode: upsert}\n"
               "bindings:\n" BIND_PREFIX "%s]}\n",
               T_ACCOUNTS, T_GATEWAYS, path_of(cert), key, extra, domains);
}

static char *key_file(const char *name)
{
  return t_fmt("{file: %s}", path_of(name));
}

/* The line of the binding in doc() with extra. */
static unsigned bind_line(const char *extra)
{
  unsigned n = 0;
  for (const char *p = extra; *p; p++)
    n += *p == '\n';
  return 22 + n;
}

/* No 16-byte piece of any key's PEM body in any message. */
static const char *const key_names[] = {"rsa.key",   "ec.key",    "ed.key",
                                        "enc.key",   "other.key", "expired.key",
                                        "future.key"};

static void assert_no_key_bytes(const char *text)
{
  assert_null(strstr(text, "PRIVATE KEY"));
  for (size_t k = 0; k < sizeof(key_names) / sizeof(key_names[0]); k++) {
    char *key = slurp(key_names[k]);
    for (char *line = strtok(key, "\n"); line; line = strtok(NULL, "\n")) {
      size_t n = strlen(line);
      if (strncmp(line, "-----", 5) == 0)
        continue;
      for (size_t off = 0; off + 16 <= n; off += 8) {
        char piece[17];
        memcpy(piece, line + off, 16);
        piece[16] = '\0';
        if (strstr(text, piece) != NULL)
          fail_msg("a piece of %s is in \"%s\"", key_names[k], text);
      }
    }
    free(key);
  }
}

/* Rejected, with exactly one diagnostic, at line:col, holding phrase and
 * no key byte. Takes text. */
static void expect_one(char *text, unsigned line, unsigned col,
                       const char *phrase)
{
  struct config cfg;
  struct config_diag diag = {0};
  int rc = t_load(text, &cfg, &diag);

  if (rc != -EINVAL || diag.count != 1 || !t_has(&diag, line, col, phrase)) {
    print_message("expected exactly %u:%u \"%s\", rc %d, got:\n", line, col,
                  phrase, rc);
    t_dump(&diag);
  }
  assert_int_equal(rc, -EINVAL);
  assert_int_equal(diag.count, 1);
  assert_true(t_has(&diag, line, col, phrase));
  assert_no_key_bytes(diag.lines[0]);
  assert_null(cfg.certificates);
  config_diag_free(&diag);
  free(text);
}

static void load_ok(char *text, struct config *cfg)
{
  t_expect_ok(text, cfg);
  free(text);
}

/* ---- the good forms ---- */

static void test_managed_certificate_model(void **state)
{
  (void)state;
  struct config cfg;
  char *key = key_file("rsa.key");
  char *want = slurp("rsa.chain.pem");
  char *pem = slurp("rsa.key");

  /* the file holds the intermediate first: the model has the leaf first */
  load_ok(doc("rsa.rev.pem", key, "",
              "api.example.com, www.example.com, \"*.example.com\""),
          &cfg);
  const struct config_certificate *c = &cfg.certificates[0];
  assert_true(c->managed);
  assert_null(c->id);
  assert_string_equal(c->managed->cert_file, path_of("rsa.rev.pem"));
  assert_int_equal(c->managed->type, CONFIG_CERT_GLOBAL);
  assert_int_equal(c->gateway, CONFIG_NO_GATEWAY);
  assert_int_equal(c->managed->update, CONFIG_UPDATE_REPLACE);
  assert_int_equal(c->line, 17);
  assert_string_equal(c->managed->file.chain_pem, want);
  assert_int_equal(c->managed->file.chain_count, 2);
  assert_int_equal(strlen(c->managed->file.sha256), 64);
  assert_string_equal(c->managed->file.common_name, "api.example.com");
  assert_int_equal(c->managed->file.nsans, 2);
  assert_int_equal(c->managed->file.key_type, CERTFILE_KEY_RSA);
  /* the key is the file's PEM, its trailing newline dropped */
  assert_int_equal(c->managed->key.len, strlen(pem) - 1);
  assert_memory_equal(c->managed->key.value, pem, c->managed->key.len);
  char *source = t_fmt("file %s", path_of("rsa.key"));
  assert_string_equal(c->managed->key.source, source);
  free(source);
  assert_int_equal(cfg.nbindings, 6);
  config_free(&cfg);
  free(key);
  free(want);
  free(pem);
}

static void test_instance_type_and_update(void **state)
{
  (void)state;
  struct config cfg;
  char *key = key_file("ec.key");

  load_ok(doc("ec.chain.pem", key,
              "    type: instance\n"
              "    gateway: g2\n"
              "    update: in_place\n",
              "api.example.com"),
          &cfg);
  const struct config_certificate *c = &cfg.certificates[0];
  assert_int_equal(c->managed->type, CONFIG_CERT_INSTANCE);
  assert_string_equal(cfg.gateways[c->gateway].name, "g2");
  assert_int_equal(c->managed->update, CONFIG_UPDATE_IN_PLACE);
  assert_int_equal(c->managed->file.key_type, CERTFILE_KEY_EC);
  config_free(&cfg);
  load_ok(doc("ec.chain.pem", key, "    type: global\n    update: replace\n",
              "api.example.com"),
          &cfg);
  assert_int_equal(cfg.certificates[0].managed->type, CONFIG_CERT_GLOBAL);
  assert_int_equal(cfg.certificates[0].managed->update, CONFIG_UPDATE_REPLACE);
  config_free(&cfg);
  free(key);
}

/* env: and credential: work as for any secret; a PEM's lines are fine. */
static void test_key_from_env_and_credential(void **state)
{
  (void)state;
  struct config cfg;
  char *pem = slurp("rsa.key");

  load_ok(doc("rsa.chain.pem", "{env: CB_TEST_KEY}", "", "api.example.com"),
          &cfg);
  assert_string_equal(cfg.certificates[0].managed->key.source,
                      "env CB_TEST_KEY");
  assert_memory_equal(cfg.certificates[0].managed->key.value, pem,
                      cfg.certificates[0].managed->key.len);
  config_free(&cfg);

  setenv("CREDENTIALS_DIRECTORY", s_dir, 1);
  load_ok(doc("rsa.chain.pem", "{credential: rsa.key}", "", "api.example.com"),
          &cfg);
  assert_string_equal(cfg.certificates[0].managed->key.source,
                      "credential rsa.key");
  config_free(&cfg);
  unsetenv("CREDENTIALS_DIRECTORY");
  free(pem);
}

/* ---- the forms refused ---- */

#define CERTS_HEAD T_ACCOUNTS T_GATEWAYS "certificates:\n" /* 15 */
#define POLICY_EMPTY "policy: {mode: upsert}\nbindings: []\n"

static void test_one_form_only(void **state)
{
  (void)state;
  char *key = key_file("rsa.key");

  expect_one(t_fmt(CERTS_HEAD "  m1: {account: a1}\n" POLICY_EMPTY), 16, 7,
             "certificates.m1: give id (an existing APIG certificate) or "
             "cert_file and key");
  expect_one(
      t_fmt(CERTS_HEAD "  m1: {account: a1, key: %s}\n" POLICY_EMPTY, key), 16,
      7, "certificates.m1: give id");
  expect_one(t_fmt(CERTS_HEAD "  m1:\n"
                              "    account: a1\n"
                              "    id: a27be832f2e9441c8127fe48e3b5ac67\n"
                              "    cert_file: %s\n"
                              "    key: %s\n" POLICY_EMPTY,
                   path_of("rsa.chain.pem"), key),
             19, 16,
             "certificates.m1.cert_file: give either id or cert_file and "
             "key, not both (id at line 18)");
  expect_one(t_fmt(CERTS_HEAD
                   "  m1: {account: a1, cert_file: %s}\n" POLICY_EMPTY,
                   path_of("rsa.chain.pem")),
             16, 7, "certificates.m1: missing required key \"key\"");
  /* the files' keys make no sense with id: each is an error */
  struct config cfg;
  struct config_diag diag = {0};
  char *text = t_fmt(CERTS_HEAD "  c1:\n"
                                "    account: a1\n"
                                "    id: a27be832f2e9441c8127fe48e3b5ac67\n"
                                "    type: instance\n"
                                "    gateway: g1\n"
                                "    update: in_place\n" POLICY_EMPTY);
  assert_int_equal(t_load(text, &cfg, &diag), -EINVAL);
  t_dump(&diag);
  assert_int_equal(diag.count, 3);
  assert_true(t_has(&diag, 19, 11,
                    "certificates.c1.type: only for a "
                    "certificate from files (cert_file)"));
  assert_true(t_has(&diag, 20, 14, "certificates.c1.gateway: only for"));
  assert_true(t_has(&diag, 21, 13, "certificates.c1.update: only for"));
  config_diag_free(&diag);
  free(text);
  free(key);
}

static void test_type_gateway_update_refused(void **state)
{
  (void)state;
  char *key = key_file("rsa.key");
  const unsigned l = 20; /* the first extra line */

  expect_one(doc("rsa.chain.pem", key, "    type: instance\n", "a.example.com"),
             17, 5, "certificates.m1: missing required key \"gateway\"");
  expect_one(doc("rsa.chain.pem", key, "    gateway: g1\n", "a.example.com"), l,
             14, "certificates.m1.gateway: only with type: instance");
  expect_one(doc("rsa.chain.pem", key, "    type: global\n    gateway: g1\n",
                 "a.example.com"),
             l + 1, 14, "certificates.m1.gateway: only with type: instance");
  expect_one(doc("rsa.chain.pem", key, "    type: instance\n    gateway: g9\n",
                 "a.example.com"),
             l + 1, 14, "certificates.m1.gateway: undefined gateway \"g9\"");
  expect_one(doc("rsa.chain.pem", key, "    type: instance\n    gateway: g3\n",
                 "a.example.com"),
             l + 1, 14,
             "certificates.m1.gateway: gateway \"g3\" belongs to account "
             "\"a2\", not to the certificate's account \"a1\"");
  expect_one(doc("rsa.chain.pem", key, "    type: regional\n", "a.example.com"),
             l, 11,
             "certificates.m1.type: unknown value \"regional\" (expected "
             "global or instance)");
  expect_one(doc("rsa.chain.pem", key, "    update: patch\n", "a.example.com"),
             l, 13,
             "certificates.m1.update: unknown value \"patch\" (expected "
             "replace or in_place)");
  expect_one(doc("rsa.chain.pem", key, "    colour: blue\n", "a.example.com"),
             l, 5, "certificates.m1.colour: unknown key");
  free(key);
}

/* ---- the offline checks, each at its place ---- */

static void test_certfile_refusals_at_their_key(void **state)
{
  (void)state;
  char *rsa = key_file("rsa.key");
  char *other = key_file("other.key");
  char *enc = key_file("enc.key");
  char *ed = key_file("ed.key");
  char *exp = key_file("expired.key");
  char *fut = key_file("future.key");
  char *cert_pem = slurp("rsa.pem");
  write_file("cert-as-key.pem", cert_pem, 0600);
  free(cert_pem);
  char *notkey = key_file("cert-as-key.pem");
  const char *d = "api.example.com";

  write_file("garbage.pem", "not a certificate\n", 0644);
  /* the certificate file's problems: at cert_file */
  expect_one(doc("garbage.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "certificates.m1.cert_file: ");
  expect_one(doc("garbage.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "garbage.pem: no PEM certificate");
  expect_one(doc("missing.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "missing.pem");
  expect_one(doc("", rsa, "", d), LINE_CERT, COL_CERT, "not a regular file");
  /* a FIFO must not hang the load; a huge file is refused unread */
  assert_int_equal(mkfifo(path_of("fifo.pem"), 0644), 0);
  expect_one(doc("fifo.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "not a regular file");
  FILE *big = fopen(path_of("big.pem"), "w");
  assert_non_null(big);
  assert_int_equal(fseek(big, 1 << 20, SEEK_SET), 0);
  fputc('\n', big);
  fclose(big);
  expect_one(doc("big.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "big.pem: is larger than 1048576 bytes");
  expect_one(doc("expired.chain.pem", exp, "", d), LINE_CERT, COL_CERT,
             "has expired");
  expect_one(doc("future.chain.pem", fut, "", d), LINE_CERT, COL_CERT,
             "not valid yet");
  expect_one(doc("rsa.nolink.pem", rsa, "", d), LINE_CERT, COL_CERT,
             "the chain does not link");
  /* the key's: at key */
  expect_one(doc("rsa.chain.pem", other, "", d), LINE_KEY, COL_KEY,
             "certificates.m1.key: ");
  expect_one(doc("rsa.chain.pem", other, "", d), LINE_KEY, COL_KEY,
             "the private key does not match the certificate");
  expect_one(doc("rsa.chain.pem", enc, "", d), LINE_KEY, COL_KEY,
             "the private key is encrypted");
  expect_one(doc("ed.pem", ed, "", d), LINE_KEY, COL_KEY,
             "APIG takes RSA or ECDSA keys");
  expect_one(doc("rsa.chain.pem", notkey, "", d), LINE_KEY, COL_KEY,
             "not a PEM private key");
  free(rsa);
  free(other);
  free(enc);
  free(ed);
  free(exp);
  free(fut);
  free(notkey);
}

/* The key is a secret: the mode rules of secret files, and its value never
 * in a message, from a file or from the environment. */
static void test_key_is_a_secret(void **state)
{
  (void)state;
  char *pem = slurp("other.key");
  char *open_key;

  write_file("open.key", pem, 0644);
  open_key = key_file("open.key");
  expect_one(doc("rsa.chain.pem", open_key, "", "api.example.com"), LINE_KEY,
             COL_KEY + 7, "certificates.m1.key: key file \"");
  expect_one(doc("rsa.chain.pem", open_key, "", "api.example.com"), LINE_KEY,
             COL_KEY + 7,
             "open.key\" is accessible by group or others (mode "
             "0644)");
  setenv("CB_TEST_OTHER_KEY", pem, 1);
  expect_one(
      doc("rsa.chain.pem", "{env: CB_TEST_OTHER_KEY}", "", "api.example.com"),
      LINE_KEY, COL_KEY, "does not match");
  /* a key with a NUL-free control character other than a line end */
  setenv("CB_TEST_BAD_KEY", "-----BEGIN PRIVATE KEY-----\n\x01\n", 1);
  expect_one(
      doc("rsa.chain.pem", "{env: CB_TEST_BAD_KEY}", "", "api.example.com"),
      LINE_KEY, COL_KEY + 6,
      "environment variable CB_TEST_BAD_KEY contains control "
      "characters other than line ends");
  expect_one(
      doc("rsa.chain.pem", "{file: /nonexistent/k.pem}", "", "api.example.com"),
      LINE_KEY, COL_KEY + 7,
      "key file \"/nonexistent/k.pem\" cannot be "
      "opened");
  unsetenv("CB_TEST_OTHER_KEY");
  unsetenv("CB_TEST_BAD_KEY");
  free(open_key);
  free(pem);
}

/* ---- SAN coverage ---- */

static void test_bound_domains_must_be_covered(void **state)
{
  (void)state;
  char *key = key_file("rsa.key");
  const unsigned col = (unsigned)strlen(BIND_PREFIX) + 1;

  /* api.example.com and *.example.com: a wildcard covers one label */
  expect_one(doc("rsa.chain.pem", key, "", "deep.www.example.com"),
             bind_line(""), col,
             "bindings[0].domains[0]: \"deep.www.example.com\" is not "
             "covered by certificate \"m1\" (its names: api.example.com, "
             "*.example.com; a wildcard covers one label)");
  expect_one(doc("rsa.chain.pem", key, "", "example.com"), bind_line(""), col,
             "\"example.com\" is not covered by certificate \"m1\"");
  /* reported once per domain, not per gateway; the others still load */
  expect_one(doc("rsa.chain.pem", key, "",
                 "www.example.com, api.example.org, API.Example.com."),
             bind_line(""), col + 17,
             "bindings[0].domains[1]: \"api.example.org\" is not covered");
  /* a wildcard binding needs the same wildcard name */
  struct config cfg;
  load_ok(doc("rsa.chain.pem", key, "", "\"*.example.com\""), &cfg);
  config_free(&cfg);
  /* an expired certificate is one error, not one more per domain */
  char *exp = key_file("expired.key");
  expect_one(doc("expired.chain.pem", exp, "", "nothing.example.org"),
             LINE_CERT, COL_CERT, "has expired");
  free(exp);
  free(key);
}

/* ---- the key wiped; nothing of it in emit's output ---- */

static void test_free_wipes_the_key(void **state)
{
  (void)state;
  struct config cfg;
  char *key = key_file("rsa.key");

  load_ok(doc("rsa.chain.pem", key, "", "api.example.com"), &cfg);
  s_watch = (struct watch){.p = cfg.certificates[0].managed->key.value,
                           .len = cfg.certificates[0].managed->key.len};
  assert_true(s_watch.len > 1000);
  config_free(&cfg);
  assert_true(s_watch.seen);
  assert_true(s_watch.clean);
  free(key);
}

/* A key given beside `id` is read (the form is checked after the keys),
 * then refused: the model does not keep it, and it is wiped before it is
 * freed, like a kept one. */
static void test_key_beside_id_wiped(void **state)
{
  (void)state;
  char *key = key_file("rsa.key");
  char *pem = slurp("rsa.key");
  char *line = strchr(pem, '\n'); /* the first base64 line of the key */
  struct config cfg;
  struct config_diag diag = {0};
  char *text = t_fmt(CERTS_HEAD "  c1:\n"
                                "    account: a1\n"
                                "    id: a27be832f2e9441c8127fe48e3b5ac67\n"
                                "    key: %s\n" POLICY_EMPTY,
                     key);

  assert_non_null(line);
  /* the value: the PEM without its trailing newline, NUL-terminated */
  s_scan = (struct scan){.needle = line + 1, .len = 64, .size = strlen(pem)};
  assert_int_equal(t_load(text, &cfg, &diag), -EINVAL);
  s_scan.needle = NULL;
  assert_true(s_scan.sized >= 1); /* the key was read, then freed */
  assert_false(s_scan.dirty);
  assert_int_equal(diag.count, 1);
  assert_true(t_has(&diag, 19, 10,
                    "certificates.c1.key: only for a certificate from files "
                    "(cert_file), not with id"));
  config_diag_free(&diag);
  free(text);
  free(pem);
  free(key);
}

static void test_emit_round_trip(void **state)
{
  (void)state;
  struct config a, b;
  char *key = key_file("rsa.key");
  char *out1 = NULL, *out2 = NULL;
  size_t n1, n2;

  load_ok(doc("rsa.chain.pem", key,
              "    type: instance\n    gateway: g1\n    update: in_place\n",
              "api.example.com"),
          &a);
  assert_int_equal(config_emit(&a, NULL, &out1, &n1), 0);
  assert_no_key_bytes(out1);
  char *want_cert = t_fmt("cert_file: %s", path_of("rsa.chain.pem"));
  char *want_key = t_fmt("key: {file: %s}", path_of("rsa.key"));
  assert_non_null(strstr(out1, want_cert));
  assert_non_null(strstr(out1, want_key));
  free(want_cert);
  free(want_key);
  assert_non_null(
      strstr(out1, "type: instance, gateway: g1, update: in_place"));
  struct config_diag diag = {0};
  assert_int_equal(config_load_buffer("e.yaml", out1, n1, &b, &diag), 0);
  assert_true(b.certificates[0].managed);
  assert_string_equal(b.certificates[0].managed->file.sha256,
                      a.certificates[0].managed->file.sha256);
  assert_int_equal(b.certificates[0].managed->type, CONFIG_CERT_INSTANCE);
  assert_int_equal(b.certificates[0].managed->update, CONFIG_UPDATE_IN_PLACE);
  assert_int_equal(config_emit(&b, NULL, &out2, &n2), 0);
  assert_string_equal(out1, out2);
  config_free(&a);
  config_free(&b);
  free(out1);
  free(out2);
  free(key);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_managed_certificate_model),
      cmocka_unit_test(test_instance_type_and_update),
      cmocka_unit_test(test_key_from_env_and_credential),
      cmocka_unit_test(test_one_form_only),
      cmocka_unit_test(test_type_gateway_update_refused),
      cmocka_unit_test(test_certfile_refusals_at_their_key),
      cmocka_unit_test(test_key_is_a_secret),
      cmocka_unit_test(test_bound_domains_must_be_covered),
      cmocka_unit_test(test_free_wipes_the_key),
      cmocka_unit_test(test_key_beside_id_wiped),
      cmocka_unit_test(test_emit_round_trip),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
