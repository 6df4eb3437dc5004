/* SPDX-License-Identifier: MIT */
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* What a file or directory looked like when its store was built. */
struct trust_stamp {
  bool present;
  int err; /* stat's errno when not present */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
};

struct trust_file {
  char *path; /* NULL: the default file */
  X509_STORE *store;
  uint64_t generation;
  struct trust_stamp file, dir;
};

static struct trust_stamp stamp_of(const char *path)
{
  struct trust_stamp s = {0};
  struct stat st;

  if (!path)
    return s;
  if (stat(path, &st) != 0) {
    s.err = errno;
    return s;
  }
  s.present = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  s.ctime = st.st_ctim;
  return s;
}

static bool same_time(struct timespec a, struct timespec b)
{
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool stamp_equal(const struct trust_stamp *a,
                        const struct trust_stamp *b)
{
  if (a->present != b->present)
    return false;
  return !a->present ||
         (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
          same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime));
}

static char *dup_or_null(const char *s, bool *oom)
{
  char *d = s ? strdup(s) : NULL;

  if (s && !d)
    *oom = true;
  return d;
}

int trust_init(struct trust *t, const char *dir, const char *default_file)
{
  bool oom = false;

  memset(t, 0, sizeof *t);
  t->dir = dup_or_null(dir, &oom);
  t->default_file = dup_or_null(default_file, &oom);
  if (oom) {
    trust_free(t);
    return -ENOMEM;
  }
  return 0;
}

static bool same_path(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

static struct trust_file *find_file(struct trust *t, const char *path)
{
  for (size_t i = 0; i < t->n; i++)
    if (same_path(t->files[i].path, path))
      return &t->files[i];
  return NULL;
}

static struct trust_file *add_file(struct trust *t, const char *path)
{
  bool oom = false;

  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4;
    struct trust_file *n = realloc(t->files, cap * sizeof *n);
    if (!n)
      return NULL;
    t->files = n;
    t->cap = cap;
  }
  struct trust_file *f = &t->files[t->n];
  memset(f, 0, sizeof *f);
  f->path = dup_or_null(path, &oom);
  if (oom)
    return NULL;
  t->n++;
  return f;
}

/* OpenSSL's reason for the last failure, or fallback. */
static void ssl_reason(char *why, size_t why_len, const char *file,
                       const char *fallback)
{
  unsigned long e = ERR_peek_last_error();
  char buf[256];

  if (e)
    ERR_error_string_n(e, buf, sizeof buf);
  else
    snprintf(buf, sizeof buf, "%s", fallback);
  ERR_clear_error();
  if (why && why_len)
    snprintf(why, why_len, "CA file %s: %s", file, buf);
}

/* A new store for f from what is on disk now; the old one is dropped
 * first, so a failure leaves no store (fail closed). */
static int build(struct trust *t, struct trust_file *f,
                 const struct trust_stamp *file_now,
                 const struct trust_stamp *dir_now, char *why, size_t why_len)
{
  const char *path = f->path ? f->path : t->default_file;
  X509_STORE *s;

  X509_STORE_free(f->store);
  f->store = NULL;
  if (path && !file_now->present) {
    int err = file_now->err ? -file_now->err : -ENOENT;
    if (why && why_len)
      snprintf(why, why_len, "CA file %s: %s", path, strerror(-err));
    return err;
  }
  s = X509_STORE_new();
  if (!s)
    return -ENOMEM;
  if (path && X509_STORE_load_file(s, path) != 1) {
    ssl_reason(why, why_len, path, "no certificate could be read");
    X509_STORE_free(s);
    return -EBADMSG;
  }
  /* the directory is consulted lazily, per issuer name; a missing one
   * simply adds nothing */
  if (t->dir && X509_STORE_load_path(s, t->dir) != 1)
    ERR_clear_error();
  f->store = s;
  f->file = *file_now;
  f->dir = *dir_now;
  f->generation = ++t->generation;
  return 0;
}

long trust_id(struct trust *t, const char *ca_file)
{
  struct trust_file *f = find_file(t, ca_file);

  if (!f && !(f = add_file(t, ca_file)))
    return -ENOMEM;
  return (long)(f - t->files);
}

int trust_get(struct trust *t, size_t id, X509_STORE **store,
              uint64_t *generation, char *why, size_t why_len)
{
  struct trust_file *f;
  struct trust_stamp file_now, dir_now;

  if (why && why_len)
    why[0] = '\0';
  if (id >= t->n)
    return -EINVAL;
  f = &t->files[id];
  file_now = stamp_of(f->path ? f->path : t->default_file);
  dir_now = stamp_of(t->dir);
  if (!f->store || !stamp_equal(&f->file, &file_now) ||
      !stamp_equal(&f->dir, &dir_now)) {
    int err = build(t, f, &file_now, &dir_now, why, why_len);
    if (err)
      return err;
  }
  *store = f->store;
  *generation = f->generation;
  return 0;
}

void trust_free(struct trust *t)
{
  for (size_t i = 0; i < t->n; i++) {
    X509_STORE_free(t->files[i].store);
    free(t->files[i].path);
  }
  free(t->files);
  free(t->dir);
  free(t->default_file);
  memset(t, 0, sizeof *t);
}
