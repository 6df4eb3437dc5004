/* SPDX-License-Identifier: MIT */
/*
 * log: structured events, one per line (docs/cli.md, "Log events").
 *
 * JSON lines are produced with yajl_gen so that every string is escaped
 * correctly whatever the API sent us; text lines carry the same facts as
 * key=value pairs after the event name.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(struct log *lg, FILE *out)
{
  int tty = isatty(fileno(out));
  const char *no_color = getenv("NO_COLOR");

  lg->level = LOG_INFO;
  lg->out = out;
  lg->format = tty ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
  lg->color = tty && !(no_color && *no_color);
}

int log_parse_level(const char *s, enum log_level *out)
{
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  return -EINVAL;
}

int log_parse_format(const char *s, enum log_format *out)
{
  if (strcmp(s, "text") == 0)
    *out = LOG_FORMAT_TEXT;
  else if (strcmp(s, "json") == 0)
    *out = LOG_FORMAT_JSON;
  else
    return -EINVAL;
  return 0;
}

static void format_timestamp(char *buf, size_t len)
{
  struct timeval tv;
  struct tm tm;

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

static void gen_str(yajl_gen g, const char *key, const char *val)
{
  if (!val)
    return;
  yajl_gen_string(g, (const unsigned char *)key, strlen(key));
  yajl_gen_string(g, (const unsigned char *)val, strlen(val));
}

static void gen_int(yajl_gen g, const char *key, long long val)
{
  yajl_gen_string(g, (const unsigned char *)key, strlen(key));
  yajl_gen_integer(g, val);
}

static void emit_json(const struct log *lg, enum log_level level,
                      const char *event, const struct log_fields *f,
                      const char *msg)
{
  char ts[40];
  const unsigned char *buf;
  size_t len;
  yajl_gen g = yajl_gen_alloc(NULL);

  if (!g)
    return;
  format_timestamp(ts, sizeof(ts));
  yajl_gen_map_open(g);
  gen_str(g, "ts", ts);
  gen_str(g, "level", level_names[level]);
  gen_str(g, "event", event);
  if (f) {
    gen_str(g, "account", f->account);
    gen_str(g, "certificate", f->certificate);
    gen_str(g, "gateway", f->gateway);
    gen_str(g, "instance_id", f->instance_id);
    if (f->domains && f->ndomains) {
      yajl_gen_string(g, (const unsigned char *)"domains", 7);
      yajl_gen_array_open(g);
      for (size_t i = 0; i < f->ndomains; i++)
        yajl_gen_string(g, (const unsigned char *)f->domains[i],
                        strlen(f->domains[i]));
      yajl_gen_array_close(g);
    }
    gen_str(g, "op", f->op);
    if (f->attempt >= 0)
      gen_int(g, "attempt", f->attempt);
    if (f->http_status >= 0)
      gen_int(g, "http_status", f->http_status);
    gen_str(g, "error_code", f->error_code);
    gen_str(g, "error_msg", f->error_msg);
    gen_str(g, "request_id", f->request_id);
    if (f->latency_ms >= 0) {
      yajl_gen_string(g, (const unsigned char *)"latency_ms", 10);
      yajl_gen_double(g, (double)(long long)(f->latency_ms * 10) / 10.0);
    }
    for (size_t i = 0; i < f->nkv; i++)
      gen_int(g, f->kv[i].key, f->kv[i].value);
  }
  gen_str(g, "msg", msg);
  yajl_gen_map_close(g);
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
    fprintf(lg->out, "%.*s\n", (int)len, (const char *)buf);
  yajl_gen_free(g);
}

/* Text values are quoted when they hold spaces, quotes or control bytes,
 * so that one event always stays on one line. */
static void text_value(FILE *out, const char *v)
{
  bool quote = !*v;

  for (const char *p = v; *p && !quote; p++)
    quote = (unsigned char)*p <= ' ' || *p == '"' || *p == '=';
  if (!quote) {
    fputs(v, out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < ' ' || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static void text_str(FILE *out, const char *key, const char *val)
{
  if (!val)
    return;
  fprintf(out, " %s=", key);
  text_value(out, val);
}

static void emit_text(const struct log *lg, enum log_level level,
                      const char *event, const struct log_fields *f,
                      const char *msg)
{
  static const char *const colors[] = {"\033[2m", "", "\033[33m", "\033[31m"};
  char ts[40];
  FILE *out = lg->out;

  format_timestamp(ts, sizeof(ts));
  /* On a terminal the live progress line (pass.c) may hold the current
   * line: clear it, or the event would be glued to its end. */
  if (isatty(fileno(out)))
    fputs("\r\033[K", out);
  if (lg->color && *colors[level])
    fprintf(out, "%s %s%-5s\033[0m %s", ts, colors[level], level_names[level],
            event);
  else
    fprintf(out, "%s %-5s %s", ts, level_names[level], event);
  if (msg && *msg) {
    fputc(' ', out);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
      fputc(*p < ' ' ? ' ' : *p, out);
  }
  if (f) {
    text_str(out, "account", f->account);
    text_str(out, "certificate", f->certificate);
    text_str(out, "gateway", f->gateway);
    text_str(out, "instance_id", f->instance_id);
    if (f->domains && f->ndomains) {
      fputs(" domains=", out);
      for (size_t i = 0; i < f->ndomains; i++) {
        if (i)
          fputc(',', out);
        text_value(out, f->domains[i]);
      }
    }
    text_str(out, "op", f->op);
    if (f->attempt >= 0)
      fprintf(out, " attempt=%ld", f->attempt);
    if (f->http_status >= 0)
      fprintf(out, " http_status=%ld", f->http_status);
    text_str(out, "error_code", f->error_code);
    text_str(out, "error_msg", f->error_msg);
    text_str(out, "request_id", f->request_id);
    if (f->latency_ms >= 0)
      fprintf(out, " latency_ms=%.1f", f->latency_ms);
    for (size_t i = 0; i < f->nkv; i++)
      fprintf(out, " %s=%lld", f->kv[i].key, f->kv[i].value);
  }
  fputc('\n', out);
}

void log_event(const struct log *lg, enum log_level level, const char *event,
               const struct log_fields *fields, const char *fmt, ...)
{
  char msg[1024];

  if (!log_enabled(lg, level))
    return;
  msg[0] = '\0';
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
  }
  if (lg->format == LOG_FORMAT_JSON)
    emit_json(lg, level, event, fields, fmt ? msg : NULL);
  else
    emit_text(lg, level, event, fields, msg);
  fflush(lg->out);
}
