/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the tests/state and tests/util programs: a private temp directory
 * per test, removed afterwards.
 */
#ifndef CERTBIND_TESTS_STATUS_TESTUTIL_H
#define CERTBIND_TESTS_STATUS_TESTUTIL_H

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdtemp under $TMPDIR (or /tmp); NULL on failure. free() the result. */
static inline char *testutil_mkdtemp(void)
{
  const char *base = getenv("TMPDIR");
  char *dir;

  if (!base || !*base)
    base = "/tmp";
  if (asprintf(&dir, "%s/certbind-status-XXXXXX", base) < 0)
    return NULL;
  if (!mkdtemp(dir)) {
    free(dir);
    return NULL;
  }
  return dir;
}

/* Remove the files of a flat directory, then the directory. */
static inline void testutil_rmdir(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *de;
  char path[PATH_MAX];

  if (d) {
    while ((de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Number of entries in dir whose name starts with prefix. */
static inline int testutil_count(const char *dir, const char *prefix)
{
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;

  if (!d)
    return -1;
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
      n++;
  }
  closedir(d);
  return n;
}

static inline char *testutil_join(const char *dir, const char *name)
{
  char *p;

  if (asprintf(&p, "%s/%s", dir, name) < 0)
    return NULL;
  return p;
}

static inline int testutil_mode(const char *path)
{
  struct stat st;

  if (stat(path, &st) < 0)
    return -1;
  return (int)(st.st_mode & 07777);
}

#endif
