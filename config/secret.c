/* SPDX-License-Identifier: MIT */
/*
 * Secrets: { file: PATH }, { env: NAME } or { credential: NAME } (a file
 * under $CREDENTIALS_DIRECTORY, where systemd puts what LoadCredential=
 * names). Values are kept only in struct config_secret and wiped before
 * they are freed. Messages name the file, credential or variable and the
 * problem, never a byte of the value.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void config__secret_wipe(struct config_secret *s)
{
  if (s->value != NULL) {
    OPENSSL_cleanse(s->value, s->len);
    free(s->value);
  }
  free(s->source);
  free(s->path);
  memset(s, 0, sizeof(*s));
}

/* A secret goes into HTTP headers and HMAC keys: a control byte inside it
 * (a second line, a NUL) is a mistake or a header injection. A PEM private
 * key is made of lines: there line ends are allowed, nothing else. */
static bool has_control(const char *v, size_t len, bool pem)
{
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (pem && (ch == '\n' || ch == '\r'))
      continue;
    if (ch < 0x20 || ch == 0x7f)
      return true;
  }
  return false;
}

static const char *control_problem(bool pem)
{
  return pem ? "contains control characters other than line ends"
             : "contains control characters (only one trailing newline is "
               "allowed)";
}

static size_t strip_newline(const char *v, size_t len)
{
  if (len > 0 && v[len - 1] == '\n') {
    len--;
    if (len > 0 && v[len - 1] == '\r')
      len--;
  }
  return len;
}

/* Read at most CONFIG__MAX_SECRET bytes; the caller wipes buf. */
static const char *read_secret_fd(int fd, char *buf, size_t *len)
{
  size_t got = 0;

  for (;;) {
    ssize_t r = read(fd, buf + got, CONFIG__MAX_SECRET + 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return strerror(errno);
    if (r == 0)
      break;
    got += (size_t)r;
    if (got > CONFIG__MAX_SECRET)
      return "is larger than 64 KiB";
  }
  *len = got;
  return NULL;
}

/* What is being read, for the messages: "secret file \"/p\"" or
 * "credential \"sg-ak\" (/run/credentials/u/sg-ak)". */
struct source {
  const char *path;
  const char *credential; /* the credential's name, or NULL for file: */
  bool pem;               /* a PEM private key: many lines */
  char what[600];
};

/* A file: secret must have no group or other bits at all. systemd writes a
 * credential 0400 and, where the file system has ACLs, gives the service
 * user read access by an ACL entry, whose mask stat() shows in the group
 * bits (0440, though no group can read it): so a credential may have the
 * group read bit, never a write bit for group or others and no bit for
 * others. */
static const char *mode_problem(const struct source *src, mode_t mode)
{
  if (src->credential == NULL)
    return (mode & 077) ? "is accessible by group or others" : NULL;
  return (mode & 027) ? "is writable by group or accessible by others" : NULL;
}

static void load_file(struct config__ctx *c, const struct config__node *at,
                      const char *path, const struct source *src,
                      struct config_secret *out)
{
  struct stat st;
  char *buf;
  size_t len = 0;
  const char *why;
  int fd;

  fd = open(src->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    config__error(c, at->line, at->col, "%s: %s cannot be opened: %s", path,
                  src->what, strerror(errno));
    return;
  }
  /* fstat the open file: what we check is what we read */
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    config__error(c, at->line, at->col, "%s: %s is not a regular file", path,
                  src->what);
    close(fd);
    return;
  }
  why = mode_problem(src, st.st_mode);
  if (why != NULL) {
    config__error(c, at->line, at->col, "%s: %s %s (mode %04o); chmod 600 it",
                  path, src->what, why, (unsigned)(st.st_mode & 07777));
    close(fd);
    return;
  }
  buf = malloc(CONFIG__MAX_SECRET + 1);
  if (buf == NULL) {
    c->oom = true;
    close(fd);
    return;
  }
  why = read_secret_fd(fd, buf, &len);
  close(fd);
  if (why == NULL) {
    len = strip_newline(buf, len);
    if (len == 0)
      why = "is empty";
    else if (has_control(buf, len, src->pem))
      why = control_problem(src->pem);
  }
  if (why != NULL) {
    config__error(c, at->line, at->col, "%s: %s %s", path, src->what, why);
    explicit_bzero(buf, CONFIG__MAX_SECRET + 1);
    free(buf);
    return;
  }
  out->value = malloc(len + 1);
  out->path = strdup(src->path);
  if (out->value == NULL || out->path == NULL ||
      (src->credential
           ? asprintf(&out->source, "credential %s", src->credential)
           : asprintf(&out->source, "file %s", src->path)) < 0) {
    c->oom = true;
    out->source = NULL;
  } else {
    memcpy(out->value, buf, len);
    out->value[len] = '\0';
    out->len = len;
  }
  explicit_bzero(buf, CONFIG__MAX_SECRET + 1);
  free(buf);
}

static void load_secret_file(struct config__ctx *c,
                             const struct config__node *at, const char *path,
                             const char *file, bool pem,
                             struct config_secret *out)
{
  struct source src = {.path = file, .pem = pem};

  snprintf(src.what, sizeof(src.what), "%s file \"%s\"", pem ? "key" : "secret",
           file);
  load_file(c, at, path, &src, out);
}

/* { credential: NAME }: $CREDENTIALS_DIRECTORY/NAME, as systemd's
 * LoadCredential= made it when the unit started. */
static void load_credential(struct config__ctx *c,
                            const struct config__node *at, const char *path,
                            const char *name, bool pem,
                            struct config_secret *out)
{
  const char *dir = getenv("CREDENTIALS_DIRECTORY");
  struct source src = {.credential = name, .pem = pem};
  char *file = NULL;

  if (dir == NULL || *dir == '\0') {
    config__error(c, at->line, at->col,
                  "%s.credential: \"%s\" is a systemd credential but "
                  "$CREDENTIALS_DIRECTORY is %s (systemd sets it for a "
                  "unit with LoadCredential=; outside systemd, set it to the "
                  "directory that holds the file)",
                  path, name, dir == NULL ? "not set" : "empty");
    return;
  }
  if (asprintf(&file, "%s/%s", dir, name) < 0) {
    c->oom = true;
    return;
  }
  src.path = file;
  snprintf(src.what, sizeof(src.what), "credential \"%s\" (%.500s)", name,
           file);
  load_file(c, at, path, &src, out);
  free(file);
}

static void load_env(struct config__ctx *c, const struct config__node *at,
                     const char *path, const char *name, bool pem,
                     struct config_secret *out)
{
  const char *v = getenv(name);
  size_t len = v ? strlen(v) : 0;

  if (v == NULL) {
    config__error(c, at->line, at->col,
                  "%s: environment variable %s is not set", path, name);
    return;
  }
  if (len == 0) {
    config__error(c, at->line, at->col, "%s: environment variable %s is empty",
                  path, name);
    return;
  }
  if (has_control(v, len, pem)) {
    config__error(c, at->line, at->col, "%s: environment variable %s %s", path,
                  name, control_problem(pem));
    return;
  }
  out->value = strdup(v);
  if (out->value == NULL || asprintf(&out->source, "env %s", name) < 0) {
    c->oom = true;
    out->source = NULL;
    return;
  }
  out->len = len;
}

enum kind { K_FILE, K_ENV, K_CREDENTIAL, K_UNKNOWN };

static enum kind kind_of(const char *key)
{
  if (strcmp(key, "file") == 0)
    return K_FILE;
  if (strcmp(key, "env") == 0)
    return K_ENV;
  if (strcmp(key, "credential") == 0)
    return K_CREDENTIAL;
  return K_UNKNOWN;
}

static const char *const kind_key[] = {"file", "env", "credential"};
static const char *const kind_value[] = {"file path", "variable name",
                                         "credential name"};

static void load_source(struct config__ctx *c, const struct config__node *n,
                        const char *path, bool pem, struct config_secret *out)
{
  const struct config__node *k, *v, *which = NULL;
  enum kind kind = K_UNKNOWN;
  const char *why;

  if (n->type != CONFIG__MAP) {
    config__error(c, n->line, n->col,
                  "%s: expected { file: PATH }, { env: NAME } or "
                  "{ credential: NAME } (secrets are never written inline)",
                  path);
    return;
  }
  for (k = n->first; k != NULL && k->next != NULL; k = v->next) {
    v = k->next;
    enum kind this = kind_of(k->str);
    if (this == K_UNKNOWN) {
      config__error(c, k->line, k->col,
                    "%s.%s: unknown key (expected file, env or credential)",
                    path, k->str);
      continue;
    }
    if (which != NULL) {
      config__error(c, k->line, k->col,
                    "%s: give exactly one of file, env and credential (first "
                    "at line %u)",
                    path, (unsigned)which->line);
      return;
    }
    which = v;
    kind = this;
  }
  if (which == NULL) {
    config__error(c, n->line, n->col, "%s: missing file, env or credential",
                  path);
    return;
  }
  if (which->type != CONFIG__SCALAR || config__is_null(which) ||
      memchr(which->str, '\0', which->len) != NULL) {
    config__error(c, which->line, which->col, "%s.%s: expected a %s", path,
                  kind_key[kind], kind_value[kind]);
    return;
  }
  switch (kind) {
  case K_FILE:
    load_secret_file(c, which, path, which->str, pem, out);
    return;
  case K_ENV:
    why = config__check_env_name(which->str, which->len);
    break;
  case K_CREDENTIAL:
    why = config__check_credential_name(which->str, which->len);
    break;
  default:
    return;
  }
  if (why != NULL) {
    config__error(c, which->line, which->col, "%s.%s: \"%.80s\" %s", path,
                  kind_key[kind], which->str, why);
    return;
  }
  if (kind == K_ENV)
    load_env(c, which, path, which->str, pem, out);
  else
    load_credential(c, which, path, which->str, pem, out);
}

void config__load_secret(struct config__ctx *c, const struct config__node *n,
                         const char *path, struct config_secret *out)
{
  load_source(c, n, path, false, out);
}

void config__load_key(struct config__ctx *c, const struct config__node *n,
                      const char *path, struct config_secret *out)
{
  load_source(c, n, path, true, out);
}
