/* SPDX-License-Identifier: MIT */
/*
 * replay: run a libFuzzer target's LLVMFuzzerTestOneInput over files and
 * directories (the seed corpus and saved crash reproducers), without
 * libFuzzer, so that every build (plain, ASan+UBSan) replays them as an
 * ordinary ctest case. A missing directory is skipped; a crash fails.
 *
 *   replay_config tests/fuzz/corpus/config tests/fuzz/regressions/config
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* optional in a target */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;

  if (f == NULL) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return -1;
  }
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *n = realloc(buf, cap);
      if (n == NULL) {
        free(buf);
        fclose(f);
        return -1;
      }
      buf = n;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    if (r == 0)
      break;
    len += r;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

static int cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, size_t *count)
{
  struct stat st;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0;
  int rc = 0;
  DIR *d;

  if (stat(path, &st) < 0)
    return errno == ENOENT ? 0 : -1; /* e.g. no regressions yet */
  if (!S_ISDIR(st.st_mode)) {
    (*count)++;
    return run_file(path);
  }
  d = opendir(path);
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char **v = realloc(names, (n + 1) * sizeof(*v));
    if (v == NULL)
      break;
    names = v;
    if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
      break;
    n++;
  }
  closedir(d);
  if (n > 0) /* qsort(NULL, 0) is undefined */
    qsort(names, n, sizeof(*names), cmp);
  for (size_t i = 0; i < n; i++) {
    if (rc == 0 && run_path(names[i], count) < 0)
      rc = -1;
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv)
{
  size_t count = 0;

  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i], &count) < 0) {
      fprintf(stderr, "replay: %s: cannot read\n", argv[i]);
      return 1;
    }
  printf("replay: %zu inputs, no crash\n", count);
  return count > 0 ? 0 : 1;
}
