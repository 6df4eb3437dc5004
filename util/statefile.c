/* SPDX-License-Identifier: MIT */
/*
 * statefile: temp file + fsync + rename + fsync(dir) (reliability C.6).
 */
#include "statefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_SUFFIX_LEN 6 /* the XXXXXX of mkostemp */

/* The parts of a target path: its directory and its last component. */
struct target {
  char dir[PATH_MAX];
  const char *base; /* points into the caller's path */
};

int statefile_mkdir(const char *dir)
{
  if (mkdir(dir, 0700) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int statefile_path(char *buf, size_t size, const char *dir, const char *name)
{
  int n = snprintf(buf, size, "%s/%s", dir, name);

  if (n < 0 || (size_t)n >= size)
    return -ENAMETOOLONG;
  return 0;
}

static int split_target(const char *path, struct target *t)
{
  const char *slash = strrchr(path, '/');
  size_t dlen;

  if (!slash) {
    strcpy(t->dir, ".");
    t->base = path;
  } else {
    dlen = slash == path ? 1 : (size_t)(slash - path);
    if (dlen >= sizeof(t->dir))
      return -ENAMETOOLONG;
    memcpy(t->dir, path, dlen);
    t->dir[dlen] = '\0';
    t->base = slash + 1;
  }
  if (t->base[0] == '\0' || strcmp(t->base, ".") == 0 ||
      strcmp(t->base, "..") == 0)
    return -EINVAL;
  return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = write(fd, p, len);

    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/*
 * Create and lock a fresh temp file. A concurrent cleaner may unlink a temp
 * file between its creation and our lock (it saw an unlocked stale file);
 * it unlinks while holding the lock, so once we hold it a link count of 0
 * tells us to start over.
 */
static int create_temp(const struct target *t, char *tmp, size_t size)
{
  for (int tries = 0; tries < 8; tries++) {
    struct stat st;
    int fd;

    if (snprintf(tmp, size, "%s/.%s.XXXXXX", t->dir, t->base) >= (int)size)
      return -ENAMETOOLONG;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
      return -errno;
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
      int rc = -errno;

      unlink(tmp);
      close(fd);
      return rc;
    }
    if (st.st_nlink > 0)
      return fd;
    close(fd);
  }
  return -EAGAIN;
}

static bool is_temp_of(const char *name, const char *base)
{
  size_t blen = strlen(base);

  return name[0] == '.' && strncmp(name + 1, base, blen) == 0 &&
         name[1 + blen] == '.' && strlen(name + 2 + blen) == TEMP_SUFFIX_LEN;
}

/* Remove one temp file if no live writer holds its lock. */
static void remove_if_stale(int dirfd, const char *name)
{
  struct stat held, now;
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

  if (fd < 0)
    return;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 &&
      fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
      held.st_ino == now.st_ino && held.st_dev == now.st_dev &&
      S_ISREG(now.st_mode))
    unlinkat(dirfd, name, 0);
  close(fd);
}

/* Best effort: a leftover temp file costs disk space, not correctness. */
static void remove_stale_temps(int dirfd, const struct target *t,
                               const char *own)
{
  int fd = dup(dirfd);
  DIR *d;
  struct dirent *de;

  if (fd < 0)
    return;
  d = fdopendir(fd);
  if (!d) {
    close(fd);
    return;
  }
  while ((de = readdir(d)) != NULL) {
    if (is_temp_of(de->d_name, t->base) && strcmp(de->d_name, own) != 0)
      remove_if_stale(dirfd, de->d_name);
  }
  closedir(d);
}

/* Fill, flush and publish the locked temp file fd as t's target. */
static int publish(int fd, int dirfd, const char *tmp, const struct target *t,
                   const void *buf, size_t len, mode_t mode)
{
  const char *tmpbase = strrchr(tmp, '/') + 1;
  int rc;

  if (fchmod(fd, mode) < 0)
    return -errno;
  rc = write_all(fd, buf, len);
  if (rc < 0)
    return rc;
  /* Never retry a failed fsync: the kernel may have dropped the pages. */
  if (fsync(fd) < 0)
    return -errno;
  if (renameat(dirfd, tmpbase, dirfd, t->base) < 0)
    return -errno;
  return 0;
}

#define STREAM_CHUNK ((size_t)64 << 10)

void statefile_buf_print(void *ctx, const char *s, size_t n)
{
  struct statefile_buf *b = ctx;

  if (b->err)
    return;
  if (b->fd > 0 && b->len + n >= b->cap) { /* streaming: flush */
    b->err = write_all(b->fd, b->p, b->len);
    b->len = 0;
    if (!b->err && n >= b->cap)
      b->err = write_all(b->fd, s, n);
    if (b->err || n >= b->cap)
      return;
  }
  if (b->cap - b->len <= n) { /* keep room for the NUL */
    size_t cap = b->cap < 65536 ? 65536 : b->cap + b->cap / 2;
    char *p;
    if (cap - b->len <= n)
      cap = b->len + n + 1;
    p = realloc(b->p, cap);
    if (!p) {
      b->err = -ENOMEM;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/*
 * Only a regular file (or nothing) is replaced. A FIFO, device, socket or
 * directory at a state file's name is a mistake (or a trick) that the
 * reader would trip on; renaming over it would hide it, so it is refused
 * and the error names it. A symlink counts as what it points to (a
 * dangling one as nothing). The check races with whoever owns the
 * directory, who can do worse anyway: it is there for mistakes.
 */
static int check_target(int dirfd, const char *base)
{
  struct stat st;

  if (fstatat(dirfd, base, &st, 0) < 0)
    return errno == ENOENT ? 0 : -errno;
  if (S_ISREG(st.st_mode))
    return 0;
  return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
}

/* buf/len, or (gen set) what gen prints, streamed. */
static int write_atomic(const char *path, const void *buf, size_t len,
                        mode_t mode,
                        int (*gen)(struct statefile_buf *b, void *arg),
                        void *arg)
{
  struct target t;
  char tmp[PATH_MAX];
  int dirfd, fd, rc;

  rc = split_target(path, &t);
  if (rc < 0)
    return rc;
  dirfd = open(t.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return -errno;
  rc = check_target(dirfd, t.base);
  if (rc < 0) {
    close(dirfd);
    return rc;
  }
  fd = create_temp(&t, tmp, sizeof(tmp));
  if (fd < 0) {
    close(dirfd);
    return fd;
  }
  if (gen) {
    struct statefile_buf b = {
        .p = malloc(STREAM_CHUNK), .cap = STREAM_CHUNK, .fd = fd};
    rc = b.p ? gen(&b, arg) : -ENOMEM;
    if (rc == 0)
      rc = b.err;
    if (rc == 0)
      rc = write_all(fd, b.p, b.len);
    free(b.p);
    buf = NULL;
    len = 0;
  }
  if (rc == 0)
    rc = publish(fd, dirfd, tmp, &t, buf, len, mode);
  if (rc < 0) {
    unlink(tmp);
  } else {
    /* The rename is durable only once the directory is. */
    if (fsync(dirfd) < 0)
      rc = -errno;
    remove_stale_temps(dirfd, &t, strrchr(tmp, '/') + 1);
  }
  close(fd);
  close(dirfd);
  return rc;
}

int statefile_write_atomic(const char *path, const void *buf, size_t len,
                           mode_t mode)
{
  if (!path || (!buf && len > 0))
    return -EINVAL;
  return write_atomic(path, buf, len, mode, NULL, NULL);
}

int statefile_write_atomic_gen(const char *path, mode_t mode,
                               int (*gen)(struct statefile_buf *b, void *arg),
                               void *arg)
{
  if (!path || !gen)
    return -EINVAL;
  return write_atomic(path, NULL, 0, mode, gen, arg);
}

int statefile_gen_string(int (*gen)(struct statefile_buf *b, void *arg),
                         void *arg, char **out, size_t *len)
{
  struct statefile_buf b = {0};
  int rc;

  if (!gen || !out || !len)
    return -EINVAL;
  rc = gen(&b, arg);
  if (rc == 0 && !b.p)
    rc = -ENOMEM;
  if (rc < 0) {
    free(b.p);
    return rc;
  }
  *out = b.p;
  *len = b.len;
  return 0;
}

static int read_fd(int fd, size_t max, char **buf, size_t *len)
{
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);

  if (!b)
    return -ENOMEM;
  for (;;) {
    ssize_t r;

    if (n + 1 >= cap) {
      char *nb;

      if (cap > max + 1) {
        free(b);
        return -EFBIG;
      }
      nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        return -ENOMEM;
      }
      b = nb;
      cap *= 2;
    }
    r = read(fd, b + n, cap - n - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int rc = -errno;

      free(b);
      return rc;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    free(b);
    return -EFBIG;
  }
  b[n] = '\0';
  *buf = b;
  *len = n;
  return 0;
}

int statefile_read(const char *path, size_t max, char **buf, size_t *len)
{
  struct stat st;
  int fd, rc;

  if (!path || !buf || !len)
    return -EINVAL;
  /* O_NONBLOCK: opening a FIFO for reading would wait for a writer
   * forever; with it the open returns and fstat refuses it. (A regular
   * file's reads ignore the flag.) */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) < 0)
    rc = -errno;
  else if (S_ISDIR(st.st_mode))
    rc = -EISDIR;
  else if (!S_ISREG(st.st_mode))
    rc = -EINVAL;
  else if ((unsigned long long)st.st_size > max)
    rc = -EFBIG;
  else
    rc = read_fd(fd, max, buf, len);
  close(fd);
  return rc;
}

static void write_message(int err, const char *path, const char *dir, char *buf,
                          size_t size)
{
  switch (err) {
  case EACCES:
  case EPERM:
  case EROFS:
    snprintf(buf, size, "cannot write %s: directory %s is not writable (%s)",
             path, dir, strerror(err));
    break;
  case ENOENT:
    snprintf(buf, size, "cannot write %s: directory %s does not exist", path,
             dir);
    break;
  case ENOTDIR:
    snprintf(buf, size, "cannot write %s: %s is not a directory", path, dir);
    break;
  case ENOSPC:
  case EDQUOT:
    snprintf(buf, size, "cannot write %s: no space left in %s (%s)", path, dir,
             strerror(err));
    break;
  default:
    snprintf(buf, size, "cannot write %s: %s", path, strerror(err));
  }
}

static void read_message(int err, const char *path, char *buf, size_t size)
{
  switch (err) {
  case ENOENT:
    snprintf(buf, size, "%s does not exist", path);
    break;
  case EBADMSG:
    snprintf(buf, size,
             "%s is truncated or corrupt (not a valid certbind state file)",
             path);
    break;
  case EPROTONOSUPPORT:
    snprintf(buf, size, "%s has an unsupported format version", path);
    break;
  case EFBIG:
    snprintf(buf, size, "%s is too large to be a certbind state file", path);
    break;
  default:
    snprintf(buf, size, "cannot read %s: %s", path, strerror(err));
  }
}

/* What path is when an error says it is not a regular file: "a FIFO"...,
 * or NULL when it is a regular file after all (the error had another
 * cause) or cannot be looked at. stat() opens nothing: it never blocks. */
static const char *irregular_kind(int err, const char *path)
{
  struct stat st;

  if ((err != EISDIR && err != EINVAL && err != ENXIO) || stat(path, &st) < 0)
    return NULL;
  if (S_ISDIR(st.st_mode))
    return err == EISDIR ? "a directory" : NULL;
  if (err == EISDIR || S_ISREG(st.st_mode))
    return NULL;
  if (S_ISFIFO(st.st_mode))
    return "a FIFO";
  if (S_ISCHR(st.st_mode))
    return "a character device";
  if (S_ISBLK(st.st_mode))
    return "a block device";
  if (S_ISSOCK(st.st_mode))
    return "a socket";
  return "not a file";
}

void statefile_strerror(int rc, const char *op, const char *path, char *buf,
                        size_t size)
{
  struct target t;
  int err = rc < 0 ? -rc : rc;
  bool writing = op && strcmp(op, "write") == 0;
  const char *kind;

  if (!buf || size == 0)
    return;
  if (!path)
    path = "(null)";
  kind = irregular_kind(err, path);
  if (kind && writing) {
    snprintf(buf, size,
             "cannot write %s: it is not a regular file (%s); only a regular "
             "file is replaced, remove it",
             path, kind);
  } else if (kind) {
    snprintf(buf, size, "%s is not a regular file (%s)", path, kind);
  } else if (writing) {
    if (split_target(path, &t) < 0)
      strcpy(t.dir, ".");
    write_message(err, path, t.dir, buf, size);
  } else {
    read_message(err, path, buf, size);
  }
}
