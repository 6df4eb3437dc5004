/* SPDX-License-Identifier: MIT */
/*
 * log: one event per line on stderr, JSON or text (docs/cli.md, "Log events").
 *
 * The level is tested before anything is formatted. Fields are the documented
 * names; a NULL string or a negative number means "absent". Never pass a
 * secret in any field: nothing here can tell one from other text.
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
  FILE *out;  /* stderr unless a test redirects it */
  bool color; /* text on a terminal without NO_COLOR */
};

/* An extra integer field, e.g. the counts of pass.done. */
struct log_kv {
  const char *key;
  long long value;
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
};

/* All numbers absent. Use as: struct log_fields f = LOG_FIELDS_INIT; */
#define LOG_FIELDS_INIT                                                        \
  {                                                                            \
    .attempt = -1, .http_status = -1, .latency_ms = -1                         \
  }

/* Defaults: info, JSON unless stderr is a terminal, colour on a terminal
 * unless NO_COLOR is set. */
void log_init(struct log *lg, FILE *out);
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
