/* SPDX-License-Identifier: MIT */
/*
 * statelock: flock(2) on state_dir/lock, the holder named from /proc/locks.
 */
#include "statelock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "statefile.h"

/* The pid of a process holding a lock on the file (dev, ino), from
 * /proc/locks ("1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"; lines
 * of waiters have "->" and are skipped), or 0. */
static pid_t holder_from_proc(dev_t dev, ino_t ino)
{
  FILE *f = fopen("/proc/locks", "re");
  char line[256];
  pid_t pid = 0;

  if (!f)
    return 0;
  while (pid == 0 && fgets(line, sizeof(line), f)) {
    char kind[16], mode[16], rw[16];
    unsigned maj, min;
    unsigned long long inode;
    long p;
    if (strstr(line, "->"))
      continue;
    if (sscanf(line, "%*[^:]: %15s %15s %15s %ld %x:%x:%llu", kind, mode, rw,
               &p, &maj, &min, &inode) != 7)
      continue;
    if (strcmp(kind, "FLOCK") == 0 && maj == major(dev) && min == minor(dev) &&
        inode == (unsigned long long)ino && p > 0)
      pid = (pid_t)p;
  }
  fclose(f);
  return pid;
}

/* The pid an exclusive holder wrote into the file, or 0. */
static pid_t holder_from_file(int fd)
{
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  long pid;

  if (n <= 0)
    return 0;
  buf[n] = '\0';
  pid = strtol(buf, NULL, 10);
  return pid > 0 ? (pid_t)pid : 0;
}

static int open_lock_file(const char *path, bool exclusive, int *fd)
{
  struct stat st;
  int rc;
  int flags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;

  *fd = open(path, flags | O_RDWR | O_CREAT, 0600);
  if (*fd < 0 && !exclusive && (errno == EACCES || errno == EROFS))
    *fd = open(path, flags | O_RDONLY); /* a reader without write access */
  if (*fd < 0)
    return -errno;
  if (fstat(*fd, &st) < 0)
    rc = -errno;
  else if (!S_ISREG(st.st_mode))
    rc = -EINVAL; /* a FIFO or device would block or mislead */
  else
    return 0;
  close(*fd);
  *fd = -1;
  return rc;
}

int statelock_try(const char *dir, bool exclusive, struct statelock *lk,
                  pid_t *holder)
{
  char path[4096];
  struct stat st;
  int fd, rc;

  lk->fd = -1;
  lk->held = false;
  if (holder)
    *holder = 0;
  rc = statefile_path(path, sizeof(path), dir, STATELOCK_FILE);
  if (rc < 0)
    return rc;
  rc = open_lock_file(path, exclusive, &fd);
  if (rc < 0) {
    /* a reader of a directory no writer made, or may not write to */
    if (!exclusive && (rc == -ENOENT || rc == -EACCES || rc == -EROFS))
      return 0;
    return rc;
  }
  if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
    rc = -errno;
    if (rc == -EWOULDBLOCK && holder && fstat(fd, &st) == 0) {
      *holder = holder_from_proc(st.st_dev, st.st_ino);
      if (*holder == 0)
        *holder = holder_from_file(fd);
    }
    close(fd);
    return rc;
  }
  if (exclusive) {
    char pid[24];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    /* only for the message of a waiter: a failure changes nothing */
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0)
      (void)0;
  }
  lk->fd = fd;
  lk->held = true;
  return 0;
}

int statelock_wait(const char *dir, bool exclusive, unsigned wait_ms,
                   struct statelock *lk, pid_t *holder)
{
  const struct timespec step = {0, 100 * 1000 * 1000};
  struct timespec start, now;
  int rc;

  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    rc = statelock_try(dir, exclusive, lk, holder);
    if (rc != -EWOULDBLOCK)
      return rc;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 +
            (now.tv_nsec - start.tv_nsec) / 1000000 >=
        (long)wait_ms)
      return rc;
    nanosleep(&step, NULL);
  }
}

void statelock_release(struct statelock *lk)
{
  if (!lk->held)
    return;
  close(lk->fd); /* drops the flock */
  lk->fd = -1;
  lk->held = false;
}

void statelock_strerror(int rc, const char *dir, pid_t holder,
                        unsigned waited_ms, char *buf, size_t size)
{
  char path[4096];

  if (rc == -EWOULDBLOCK) {
    if (holder > 0)
      snprintf(buf, size,
               "state directory %s is locked by pid %ld (another certbind "
               "pass); gave up after %u s",
               dir, (long)holder, waited_ms / 1000);
    else
      snprintf(buf, size,
               "state directory %s is locked by another process; gave up "
               "after %u s",
               dir, waited_ms / 1000);
    return;
  }
  if (statefile_path(path, sizeof(path), dir, STATELOCK_FILE) < 0)
    snprintf(path, sizeof(path), "%s", dir);
  if (rc == -EINVAL || rc == -ELOOP)
    snprintf(buf, size, "cannot lock %s: not a regular file", path);
  else
    statefile_strerror(rc, "write", path, buf, size);
}
