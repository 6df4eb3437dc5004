/* SPDX-License-Identifier: MIT */
/*
 * Secrets: { file: PATH } or { env: NAME }. Values are kept only in
 * struct config_secret and wiped before they are freed. Messages name the
 * file or variable and the problem, never a byte of the value.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void config__secret_wipe(struct config_secret *s)
{
  if (s->value != NULL) {
    explicit_bzero(s->value, s->len);
    free(s->value);
  }
  free(s->source);
  memset(s, 0, sizeof(*s));
}

/* A secret goes into HTTP headers and HMAC keys: a control byte inside it
 * (a second line, a NUL) is a mistake or a header injection. */
static bool has_control(const char *v, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] == 0x7f)
      return true;
  return false;
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

static void load_file(struct config__ctx *c, const struct config__node *at,
                      const char *path, const char *file,
                      struct config_secret *out)
{
  struct stat st;
  char *buf;
  size_t len = 0;
  const char *why;
  int fd;

  fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    config__error(c, at->line, at->col,
                  "%s: secret file \"%s\" cannot be opened: %s", path, file,
                  strerror(errno));
    return;
  }
  /* fstat the open file: what we check is what we read */
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
    config__error(c, at->line, at->col,
                  "%s: secret file \"%s\" is not a regular file", path, file);
    close(fd);
    return;
  }
  if (st.st_mode & 077) {
    config__error(c, at->line, at->col,
                  "%s: secret file \"%s\" is accessible by group or others "
                  "(mode %04o); chmod 600 it",
                  path, file, (unsigned)(st.st_mode & 07777));
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
    else if (has_control(buf, len))
      why = "contains control characters (only one trailing newline is "
            "allowed)";
  }
  if (why != NULL) {
    config__error(c, at->line, at->col, "%s: secret file \"%s\" %s", path, file,
                  why);
    explicit_bzero(buf, CONFIG__MAX_SECRET + 1);
    free(buf);
    return;
  }
  out->value = malloc(len + 1);
  if (out->value == NULL || asprintf(&out->source, "file %s", file) < 0) {
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

static void load_env(struct config__ctx *c, const struct config__node *at,
                     const char *path, const char *name,
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
  if (has_control(v, len)) {
    config__error(c, at->line, at->col,
                  "%s: environment variable %s contains control characters",
                  path, name);
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

void config__load_secret(struct config__ctx *c, const struct config__node *n,
                         const char *path, struct config_secret *out)
{
  const struct config__node *k, *v, *which = NULL;
  bool is_file = false;

  if (n->type != CONFIG__MAP) {
    config__error(c, n->line, n->col,
                  "%s: expected { file: PATH } or { env: NAME } (secrets are "
                  "never written inline)",
                  path);
    return;
  }
  for (k = n->first; k != NULL && k->next != NULL; k = v->next) {
    v = k->next;
    bool f = strcmp(k->str, "file") == 0;
    if (!f && strcmp(k->str, "env") != 0) {
      config__error(c, k->line, k->col,
                    "%s.%s: unknown key (expected file or env)", path, k->str);
      continue;
    }
    if (which != NULL) {
      config__error(c, k->line, k->col,
                    "%s: give exactly one of file and env (first at line %u)",
                    path, (unsigned)which->line);
      return;
    }
    which = v;
    is_file = f;
  }
  if (which == NULL) {
    config__error(c, n->line, n->col, "%s: missing file or env", path);
    return;
  }
  if (which->type != CONFIG__SCALAR || config__is_null(which) ||
      memchr(which->str, '\0', which->len) != NULL) {
    config__error(c, which->line, which->col, "%s.%s: expected a %s", path,
                  is_file ? "file" : "env",
                  is_file ? "file path" : "variable name");
    return;
  }
  if (is_file) {
    load_file(c, which, path, which->str, out);
    return;
  }
  const char *why = config__check_env_name(which->str, which->len);
  if (why != NULL) {
    config__error(c, which->line, which->col, "%s.env: \"%s\" %s", path,
                  which->str, why);
    return;
  }
  load_env(c, which, path, which->str, out);
}
