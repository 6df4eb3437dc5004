/* SPDX-License-Identifier: MIT */
/*
 * log: one event per line on stderr, JSON or logfmt text (docs/cli.md, "Log
 * events").
 *
 * The level is tested before anything is formatted. Fields are the documented
 * names; a NULL string or a negative number means "absent". Never pass a
 * secret in any field: nothing here can tell one from other text.
 *
 * Numbers are written as a person would: milliseconds with at most one
 * decimal and no trailing zeros (28.3, 0.5, 1200), booleans as true/false.
 * When stderr is the journal (JOURNAL_STREAM names its device and inode),
 * each line starts with its syslog priority, "<3>" to "<7>", so that
 * journalctl -p filters by level.
 */
#ifndef CERTBIND_LOG_H
#define CERTBIND_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

struct log {
  enum log_level level;
  enum log_format format;
  FILE *out;    /* stderr unless a test redirects it */
  bool color;   /* text on a terminal without NO_COLOR, TERM not dumb */
  bool journal; /* out is the journal's stream: "<N>" priority prefixes */
  bool redraw;  /* a terminal that can redraw a line (TERM not dumb): a
                   text event first clears the live progress line */
};

/* An extra integer field, e.g. the counts of pass.done. */
struct log_kv {
  const char *key;
  long long value;
};

/* An extra boolean field, written true / false (e.g. pass.start's dry_run).
 * A type of its own rather than a kind inside struct log_kv, so that every
 * { "key", number } initializer stays complete under -Wextra. */
struct log_flag {
  const char *key;
  bool value;
};

struct log_fields {
  const char *account;
  const char *certificate;
  const char *gateway;
  const char *instance_id;
  const char *const *domains;
  size_t ndomains;
  const char *op; /* list | attach | detach | token */
  long attempt;   /* < 0: absent */
  long http_status;
  const char *error_code;
  const char *error_msg;
  const char *request_id;
  double latency_ms; /* < 0: absent */
  const struct log_kv *kv;
  size_t nkv;
  const struct log_flag *flags; /* after the kv fields */
  size_t nflags;
};

/* All numbers absent. Use as: struct log_fields f = LOG_FIELDS_INIT; */
#define LOG_FIELDS_INIT                                                        \
  {                                                                            \
    .attempt = -1, .http_status = -1, .latency_ms = -1                         \
  }

/* Defaults: info, JSON unless out is a terminal, colour on a terminal
 * unless NO_COLOR is set or TERM is "dumb", priority prefixes when out is
 * the stream JOURNAL_STREAM ("DEV:INODE", set by systemd) names. */
void log_init(struct log *lg, FILE *out);

/* Whether fd is the journal's stream: JOURNAL_STREAM is set and equal to
 * fd's "st_dev:st_ino" (systemd.exec(5)). */
bool log_is_journal(int fd);

/* Milliseconds as logged: at most one decimal, trailing ".0" dropped
 * ("28.3", "0.5", "1200", "0"). Returns buf. */
const char *log_format_ms(double ms, char *buf, size_t size);
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);

static inline bool log_enabled(const struct log *lg, enum log_level level)
{
  return lg && level >= lg->level;
}

/* Log one event; fields may be NULL; fmt (may be NULL) becomes "msg". */
void log_event(const struct log *lg, enum log_level level, const char *event,
               const struct log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
