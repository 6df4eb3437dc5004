/* SPDX-License-Identifier: MIT */
/*
 * inputs: the desired-state file's inputs, their ident and their watches
 * (see inputs.h).
 */
#include "inputs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "statefile.h"

#define HASH_CHUNK 65536

struct inputs_watch {
  uv_fs_event_t h;
  struct inputs *in;
  char *dir;
  bool failed; /* could not be watched (said once) */
};

void inputs_init(struct inputs *in, uv_loop_t *loop, const struct log *log,
                 const char *path, void (*changed)(void *arg), void *arg)
{
  memset(in, 0, sizeof(*in));
  in->loop = loop;
  in->log = log;
  in->path = path;
  in->changed = changed;
  in->arg = arg;
  in->salted = RAND_bytes(in->salt, sizeof(in->salt)) == 1;
}

bool inputs_same(const struct inputs_ident *a, const struct inputs_ident *b)
{
  return a->valid && b->valid && memcmp(a->md, b->md, sizeof(a->md)) == 0;
}

/* The list of named files follows the file's bytes: parsed again only when
 * they changed (a busy directory costs a hash, not a YAML parse). A file
 * that does not parse names nothing. */
static void refresh_named(struct inputs *in, const char *buf, size_t len,
                          const unsigned char md[32])
{
  struct config_files fresh;

  if (in->have_named && memcmp(md, in->named_md, 32) == 0)
    return;
  if (config_named_files(buf, len, &fresh) == -ENOMEM)
    return; /* keep the old list; the next event tries again */
  config_files_free(&in->named);
  in->named = fresh;
  memcpy(in->named_md, md, 32);
  in->have_named = true;
}

/* The bytes of an open regular file into the digest, in chunks wiped
 * after use (a secret file's bytes are a secret); a file that grew past
 * INPUTS_MAX_HASHED since its fstat is cut there. */
static int digest_content(EVP_MD_CTX *ctx, int fd)
{
  unsigned char *buf = malloc(HASH_CHUNK);
  size_t total = 0;
  int rc = 0;

  if (!buf)
    return -ENOMEM;
  while (total < INPUTS_MAX_HASHED) {
    ssize_t r = read(fd, buf, HASH_CHUNK);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = r < 0 ? -errno : 0;
      break;
    }
    EVP_DigestUpdate(ctx, buf, (size_t)r);
    total += (size_t)r;
  }
  OPENSSL_cleanse(buf, HASH_CHUNK);
  free(buf);
  return rc;
}

/* One named file's part of the ident: what the loader's checks see (can
 * it be opened, is it a regular file, its mode and owner) and its bytes.
 * Not its inode or time stamps: config management rewriting a secret
 * with the same bytes changes nothing. */
static void digest_file(EVP_MD_CTX *ctx, const char *path)
{
  struct stat st;
  int64_t v[6];
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

  memset(v, 0, sizeof(v));
  if (fd < 0 || fstat(fd, &st) < 0) {
    v[0] = -errno;
  } else {
    v[1] = (int64_t)st.st_mode;
    v[2] = (int64_t)st.st_uid;
    v[3] = (int64_t)st.st_gid;
    if ((uint64_t)st.st_size > INPUTS_MAX_HASHED) {
      v[4] = (int64_t)st.st_size;
      v[5] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
  }
  EVP_DigestUpdate(ctx, path, strlen(path) + 1);
  if (fd >= 0 && v[0] == 0 && S_ISREG(st.st_mode) && v[4] == 0)
    v[0] = digest_content(ctx, fd);
  EVP_DigestUpdate(ctx, v, sizeof(v));
  if (fd >= 0)
    close(fd);
}

void inputs_ident(struct inputs *in, struct inputs_ident *out)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[32];
  unsigned int mdlen = 0;
  char *buf = NULL;
  size_t len = 0;
  int rc;

  memset(out, 0, sizeof(*out));
  if (!in->salted || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return;
  }
  EVP_DigestUpdate(ctx, in->salt, sizeof(in->salt));
  rc = statefile_read(in->path, CONFIG_MAX_FILE_SIZE + 1, &buf, &len);
  if (rc == 0 && EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) == 1) {
    refresh_named(in, buf, len, md);
    EVP_DigestUpdate(ctx, "F", 1);
    EVP_DigestUpdate(ctx, md, sizeof(md));
  } else {
    /* missing or unreadable: the loader will say why; the reason is the
     * state (a second event while it stays missing changes nothing) */
    int64_t err = rc;
    EVP_DigestUpdate(ctx, "E", 1);
    EVP_DigestUpdate(ctx, &err, sizeof(err));
  }
  free(buf);
  for (size_t i = 0; i < in->named.n; i++)
    digest_file(ctx, in->named.paths[i]);
  if (EVP_DigestFinal_ex(ctx, out->md, &mdlen) == 1 && mdlen == 32)
    out->valid = true;
  EVP_MD_CTX_free(ctx);
}

/* ---- watches ---------------------------------------------------------- */

static void on_event(uv_fs_event_t *h, const char *filename, int events,
                     int status)
{
  struct inputs_watch *w = h->data;

  (void)filename;
  (void)events;
  if (status < 0)
    return;
  w->in->changed(w->in->arg);
}

static void on_closed(uv_handle_t *h)
{
  struct inputs_watch *w = h->data;

  free(w->dir);
  free(w);
}

static void drop_watch(struct inputs_watch *w)
{
  uv_close((uv_handle_t *)&w->h, on_closed);
}

/* The directory to watch for path: its own, or while that does not exist
 * its nearest existing parent (creating the directory is an event there;
 * the next inputs_watch() then moves to it). Malloc'd, NULL on ENOMEM. */
static char *dir_to_watch(const char *path)
{
  char *copy = strdup(path), *dir;
  struct stat st;

  if (!copy)
    return NULL;
  dir = strdup(dirname(copy));
  free(copy);
  while (dir && stat(dir, &st) < 0 && strcmp(dir, "/") != 0 &&
         strcmp(dir, ".") != 0) {
    char *up = strdup(dirname(dir));
    free(dir);
    dir = up;
  }
  return dir;
}

/* The directories to watch now: the file's, then those of the files it
 * names, each once, and one more than can be watched at most (enough to
 * know that some are not). A directory that could not be allocated is
 * left out: the next inputs_watch() tries again. */
static size_t wanted_dirs(struct inputs *in, char **dirs)
{
  size_t n = 0;

  for (size_t i = 0; i <= in->named.n && n <= INPUTS_MAX_WATCHED_DIRS; i++) {
    char *dir = dir_to_watch(i == 0 ? in->path : in->named.paths[i - 1]);
    bool dup = false;
    for (size_t k = 0; dir && k < n && !dup; k++)
      dup = strcmp(dirs[k], dir) == 0;
    if (dir && !dup)
      dirs[n++] = dir;
    else
      free(dir);
  }
  return n;
}

/* Watch dir (taken) with a new handle. A directory that cannot be watched
 * is said once, as long as it keeps failing (was_failed). */
static struct inputs_watch *new_watch(struct inputs *in, char *dir,
                                      bool was_failed)
{
  struct inputs_watch *w = calloc(1, sizeof(*w));
  int rc;

  if (!w || uv_fs_event_init(in->loop, &w->h) < 0) {
    free(w);
    free(dir);
    return NULL;
  }
  w->h.data = w;
  w->in = in;
  w->dir = dir;
  rc = uv_fs_event_start(&w->h, on_event, dir, 0);
  w->failed = rc < 0;
  if (rc < 0 && !was_failed)
    log_event(in->log, LOG_WARN, "watch.failed", NULL,
              "cannot watch %s (%s): changes there are noticed at the next "
              "resync or SIGHUP",
              dir, uv_strerror(rc));
  return w;
}

static const struct inputs_watch *find_watch(struct inputs_watch **ws, size_t n,
                                             const char *dir)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(ws[i]->dir, dir) == 0)
      return ws[i];
  return NULL;
}

/* Every wanted directory gets a fresh watch, then the old ones go. A
 * directory removed and made again under the same name is another one
 * (maybe with the same inode number), and the old watch hears nothing
 * from it; for a directory that did not change, inotify hands the new
 * handle the same kernel watch, so nothing is lost in between and it
 * costs a system call. */
void inputs_watch(struct inputs *in)
{
  char **dirs = calloc(INPUTS_MAX_WATCHED_DIRS + 1, sizeof(*dirs));
  struct inputs_watch **fresh;
  size_t n, nfresh = 0;
  bool over = false;

  if (!dirs)
    return;
  n = wanted_dirs(in, dirs);
  fresh = calloc(n ? n : 1, sizeof(*fresh));
  if (!fresh) {
    for (size_t k = 0; k < n; k++)
      free(dirs[k]);
    free(dirs);
    return;
  }
  for (size_t k = 0; k < n; k++) {
    if (nfresh >= INPUTS_MAX_WATCHED_DIRS) {
      if (!in->over_limit && !over)
        log_event(in->log, LOG_WARN, "watch.limit", NULL,
                  "the file names files in more than %d directories: "
                  "changes in %s and others are noticed at the next resync "
                  "or SIGHUP",
                  INPUTS_MAX_WATCHED_DIRS, dirs[k]);
      over = true;
      free(dirs[k]);
      continue;
    }
    const struct inputs_watch *old =
        find_watch(in->watches, in->nwatches, dirs[k]);
    struct inputs_watch *w = new_watch(in, dirs[k], old && old->failed);
    if (w)
      fresh[nfresh++] = w;
  }
  in->over_limit = over; /* said again only after it fitted once */
  for (size_t i = 0; i < in->nwatches; i++)
    drop_watch(in->watches[i]);
  free(in->watches);
  in->watches = fresh;
  in->nwatches = nfresh;
  free(dirs);
}

void inputs_stop(struct inputs *in)
{
  for (size_t i = 0; i < in->nwatches; i++)
    drop_watch(in->watches[i]);
  free(in->watches);
  in->watches = NULL;
  in->nwatches = 0;
}

void inputs_free(struct inputs *in)
{
  inputs_stop(in);
  config_files_free(&in->named);
  OPENSSL_cleanse(in->salt, sizeof(in->salt));
}
