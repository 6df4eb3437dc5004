/* SPDX-License-Identifier: MIT */
/*
 * The files a desired-state file names (see config_named_files() in
 * config.h). Only the YAML tree is read: nothing is validated, opened or
 * resolved, so the list is there for a file that fails validation too
 * (which is when the daemon needs it most: a secret file chmod'ed back to
 * 0600 must make it validate the file again).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct collect {
  char **paths;
  size_t n, cap;
  bool oom;
};

static void add(struct collect *k, char *path)
{
  if (path == NULL) {
    k->oom = true;
    return;
  }
  if (k->n == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 8;
    char **p = realloc(k->paths, cap * sizeof(*p));
    if (p == NULL) {
      free(path);
      k->oom = true;
      return;
    }
    k->paths = p;
    k->cap = cap;
  }
  k->paths[k->n++] = path;
}

static bool usable_scalar(const struct config__node *v)
{
  return v->type == CONFIG__SCALAR && !config__is_null(v) && v->len > 0 &&
         memchr(v->str, '\0', v->len) == NULL;
}

/* A key that names a file the load reads: a secret's { file: P } and
 * { credential: NAME }, tls.ca_file, a certificate's cert_file. Outputs
 * (daemon.metrics_file) and directories (state_dir) are not inputs. */
static void pair(struct collect *k, const struct config__node *key,
                 const struct config__node *v)
{
  const char *dir;

  if (key->type != CONFIG__SCALAR || !usable_scalar(v))
    return;
  if (strcmp(key->str, "file") == 0 || strcmp(key->str, "ca_file") == 0 ||
      strcmp(key->str, "cert_file") == 0) {
    add(k, strdup(v->str));
    return;
  }
  if (strcmp(key->str, "credential") == 0 &&
      (dir = getenv("CREDENTIALS_DIRECTORY")) != NULL && *dir &&
      config__check_credential_name(v->str, v->len) == NULL) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, v->str) < 0)
      p = NULL;
    add(k, p);
  }
}

static void walk(struct collect *k, const struct config__node *n)
{
  if (n->type == CONFIG__SEQ) {
    for (const struct config__node *i = n->first; i != NULL; i = i->next)
      walk(k, i);
    return;
  }
  if (n->type != CONFIG__MAP)
    return;
  for (const struct config__node *key = n->first;
       key != NULL && key->next != NULL; key = key->next->next) {
    pair(k, key, key->next);
    walk(k, key->next);
  }
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, each path once. */
static void sort_unique(struct collect *k)
{
  size_t w = 0;

  if (k->n == 0)
    return;
  qsort(k->paths, k->n, sizeof(*k->paths), cmp_str);
  for (size_t r = 1; r < k->n; r++) {
    if (strcmp(k->paths[r], k->paths[w]) == 0)
      free(k->paths[r]);
    else
      k->paths[++w] = k->paths[r];
  }
  k->n = w + 1;
}

int config_named_files(const char *buf, size_t len, struct config_files *out)
{
  struct config__ctx c = {.name = "<named files>"};
  struct config__node *root = NULL;
  struct collect k = {0};
  int rc;

  memset(out, 0, sizeof(*out));
  if (len > CONFIG_MAX_FILE_SIZE)
    return -EINVAL;
  rc = config__parse(&c, buf ? buf : "", buf ? len : 0, &root);
  if (rc == 0 && c.oom)
    rc = -ENOMEM;
  if (rc == 0 && root != NULL)
    walk(&k, root);
  config__ctx_free(&c);
  if (rc == 0 && k.oom)
    rc = -ENOMEM;
  if (rc < 0) {
    out->paths = k.paths;
    out->n = k.n;
    config_files_free(out);
    return rc;
  }
  sort_unique(&k);
  out->paths = k.paths;
  out->n = k.n;
  return 0;
}

void config_files_free(struct config_files *f)
{
  if (f == NULL)
    return;
  for (size_t i = 0; i < f->n; i++)
    free(f->paths[i]);
  free(f->paths);
  f->paths = NULL;
  f->n = 0;
}
