/* SPDX-License-Identifier: MIT */
/*
 * statefile: crash-safe whole-file writes and size-capped reads for the
 * files certbind keeps (docs/cli.md, "Outputs"): status.json, ledger.json, the metrics
 * textfile.
 *
 * A write goes to a temp file ".NAME.XXXXXX" in the target's directory,
 * is fsync'ed, renamed over NAME, and the directory is fsync'ed. On any
 * failure the previous NAME is intact and the temp file is removed; a
 * failed fsync is reported, never retried (the caller rewrites the whole
 * file from memory next time).
 *
 * A writer holds an exclusive flock(2) on its temp file until it is done.
 * Temp files left behind by a killed writer carry no lock any more; every
 * successful write removes such stale ".NAME.*" files of its own target,
 * and leaves alone the temp files of writers that are still running.
 *
 * State files are regular files: a read never blocks on a FIFO (opened
 * O_NONBLOCK, then fstat'ed) and a write never replaces a FIFO, device,
 * socket or directory; either is an error the caller reports naming the
 * file (statefile_strerror says what is there instead).
 */
#ifndef CERTBIND_STATEFILE_H
#define CERTBIND_STATEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Atomically replace path with buf[0..len), file mode exactly mode (umask
 * does not apply). Returns 0 or a negative errno. Only a regular file (or
 * nothing, or a dangling symlink) at path is replaced: a directory there is
 * -EISDIR, a FIFO, device or socket -EINVAL, and nothing is written (a
 * symlink counts as what it points to). */
int statefile_write_atomic(const char *path, const void *buf, size_t len,
                           mode_t mode);

/* Read all of path into a new NUL-terminated *buf (free() it), its length
 * without the NUL in *len. -ENOENT when missing, -EFBIG when larger than
 * max bytes, -EISDIR/-EINVAL when not a regular file (-ENXIO: a socket).
 * Never blocks: path is opened O_NONBLOCK, so a FIFO is refused at once
 * instead of waiting for a writer. */
int statefile_read(const char *path, size_t max, char **buf, size_t *len);

/* A growable output buffer for a generator's print callback (yajl_gen
 * print_callback): the text is built once, in place, and handed out as a
 * NUL-terminated malloc'd string, with no copy and growth by 1.5x. A
 * failed allocation sets err (-ENOMEM) and drops further output.
 * Inside statefile_write_atomic_gen() the buffer instead streams to the
 * temp file in 64 KiB pieces (fd > 0; a write error sets err). */
struct statefile_buf {
  char *p;
  size_t len, cap;
  int err;
  int fd; /* 0: in memory */
};
void statefile_buf_print(void *ctx, const char *s, size_t n);

/* statefile_write_atomic() of what gen prints through
 * statefile_buf_print(b, ...): streamed to the temp file, never held
 * whole in memory (status.json of 10^5 bindings is ~40 MB). gen returns 0
 * or a negative errno; on any error the previous file is intact. */
int statefile_write_atomic_gen(const char *path, mode_t mode,
                               int (*gen)(struct statefile_buf *b, void *arg),
                               void *arg);

/* What gen prints through statefile_buf_print(b, ...), as one new
 * NUL-terminated string in *out (free() it), its length in *len: 0, gen's
 * negative errno, or -ENOMEM. */
int statefile_gen_string(int (*gen)(struct statefile_buf *b, void *arg),
                         void *arg, char **out, size_t *len);

/* Create the state directory dir (mode 0700) when it does not exist yet:
 * 0 (also when it exists), or a negative errno. Not recursive: its parent
 * is the operator's (or systemd's StateDirectory=). */
int statefile_mkdir(const char *dir);

/* Join dir and name into buf: 0, or -ENAMETOOLONG. */
int statefile_path(char *buf, size_t size, const char *dir, const char *name);

/* A one-line operator message for an error rc of statefile_write_atomic
 * ("write") or statefile_read/a parser ("read") on path, e.g.
 * "cannot write /var/lib/certbind/status.json: directory /var/lib/certbind
 * is not writable (Permission denied)". path must be the file itself, not
 * its directory: a "not a regular file" error looks at it (stat, which
 * never blocks) to say what it is, e.g. "/var/lib/certbind/ledger.json is
 * not a regular file (a FIFO)". Always NUL-terminates buf. */
void statefile_strerror(int rc, const char *op, const char *path, char *buf,
                        size_t size);

#endif
