/* SPDX-License-Identifier: MIT */
/*
 * log: structured events, one per line (docs/cli.md, "Log events").
 *
 * JSON lines are produced with yajl_gen so that every string is escaped
 * correctly whatever the API sent us; text lines are logfmt (key=value,
 * a value quoted when it holds a space, '=', '"' or a control character)
 * with the same facts.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};
/* syslog priorities: debug 7, info 6, warning 4, err 3 */
static const char level_priority[] = {'7', '6', '4', '3'};

static bool env_set(const char *name)
{
  const char *v = getenv(name);

  return v != NULL && *v != '\0';
}

bool log_is_journal(int fd)
{
  const char *v = getenv("JOURNAL_STREAM");
  uintmax_t dev, ino;
  struct stat st;
  char *end;

  if (v == NULL || fd < 0)
    return false;
  errno = 0;
  dev = strtoumax(v, &end, 10);
  if (errno != 0 || end == v || *end != ':')
    return false;
  v = end + 1;
  ino = strtoumax(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0')
    return false;
  if (fstat(fd, &st) < 0)
    return false;
  return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void log_init(struct log *lg, FILE *out)
{
  int tty = isatty(fileno(out));
  const char *term = getenv("TERM");
  bool dumb = term != NULL && strcmp(term, "dumb") == 0;

  lg->level = LOG_INFO;
  lg->out = out;
  lg->format = tty ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
  lg->color = tty && !env_set("NO_COLOR") && !dumb;
  lg->redraw = tty && !dumb;
  lg->journal = log_is_journal(fileno(out));
}

const char *log_format_ms(double ms, char *buf, size_t size)
{
  int n = snprintf(buf, size, "%.1f", ms);

  /* beyond any real latency: the short exponent form, still a number */
  if (n < 0 || (size_t)n >= size)
    n = snprintf(buf, size, "%.6g", ms);
  if (n >= 2 && (size_t)n < size && buf[n - 2] == '.' && buf[n - 1] == '0')
    buf[n - 2] = '\0';
  if (strcmp(buf, "-0") == 0)
    strcpy(buf, "0");
  return buf;
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

static void gen_flag(yajl_gen g, const struct log_flag *fl)
{
  yajl_gen_string(g, (const unsigned char *)fl->key, strlen(fl->key));
  yajl_gen_bool(g, fl->value);
}

/* yajl_gen_double prints 17 significant digits (28.300000000000000711):
 * the number goes out as a person would write it instead. */
static void gen_ms(yajl_gen g, const char *key, double ms)
{
  char num[64];

  log_format_ms(ms, num, sizeof(num));
  yajl_gen_string(g, (const unsigned char *)key, strlen(key));
  yajl_gen_number(g, num, strlen(num));
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
    if (f->latency_ms >= 0)
      gen_ms(g, "latency_ms", f->latency_ms);
    for (size_t i = 0; i < f->nkv; i++)
      gen_int(g, f->kv[i].key, f->kv[i].value);
    for (size_t i = 0; i < f->nflags; i++)
      gen_flag(g, &f->flags[i]);
  }
  gen_str(g, "msg", msg);
  yajl_gen_map_close(g);
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
    if (lg->journal)
      fprintf(lg->out, "<%c>", level_priority[level]);
    fprintf(lg->out, "%.*s\n", (int)len, (const char *)buf);
  }
  yajl_gen_free(g);
}

/* logfmt: a value is quoted when it is empty or holds a space, '=', '"'
 * or a control byte, so that an event always stays on one line and splits
 * into the same pairs whatever a message or an API answer contains. */
static bool needs_quotes(const char *v)
{
  if (*v == '\0')
    return true;
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
      return true;
  return false;
}

/* The inside of a quoted value: '"' and '\\' escaped, control bytes as
 * \n, \r, \t or \u00XX (as logfmt parsers read them). */
static void put_escaped(FILE *out, const char *v)
{
  for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p == '\n')
      fputs("\\n", out);
    else if (*p == '\r')
      fputs("\\r", out);
    else if (*p == '\t')
      fputs("\\t", out);
    else if (*p < ' ' || *p == 0x7f)
      fprintf(out, "\\u%04x", *p);
    else
      fputc(*p, out);
  }
}

static void text_value(FILE *out, const char *v)
{
  if (!needs_quotes(v)) {
    fputs(v, out);
    return;
  }
  fputc('"', out);
  put_escaped(out, v);
  fputc('"', out);
}

static void text_str(FILE *out, const char *key, const char *val)
{
  if (!val)
    return;
  fprintf(out, " %s=", key);
  text_value(out, val);
}

/* domains=a.example.com,b.example.com: one value, quoted as a whole when
 * any part needs it */
static void text_domains(FILE *out, const char *const *d, size_t n)
{
  bool quote = false;

  for (size_t i = 0; i < n && !quote; i++)
    quote = needs_quotes(d[i]);
  fputs(" domains=", out);
  if (quote)
    fputc('"', out);
  for (size_t i = 0; i < n; i++) {
    if (i)
      fputc(',', out);
    if (quote)
      put_escaped(out, d[i]);
    else
      fputs(d[i], out);
  }
  if (quote)
    fputc('"', out);
}

static void text_fields(FILE *out, const struct log_fields *f)
{
  char num[64];

  text_str(out, "account", f->account);
  text_str(out, "certificate", f->certificate);
  text_str(out, "gateway", f->gateway);
  text_str(out, "instance_id", f->instance_id);
  if (f->domains && f->ndomains)
    text_domains(out, f->domains, f->ndomains);
  text_str(out, "op", f->op);
  if (f->attempt >= 0)
    fprintf(out, " attempt=%ld", f->attempt);
  if (f->http_status >= 0)
    fprintf(out, " http_status=%ld", f->http_status);
  text_str(out, "error_code", f->error_code);
  text_str(out, "error_msg", f->error_msg);
  text_str(out, "request_id", f->request_id);
  if (f->latency_ms >= 0)
    fprintf(out, " latency_ms=%s",
            log_format_ms(f->latency_ms, num, sizeof(num)));
  for (size_t i = 0; i < f->nkv; i++)
    fprintf(out, " %s=%lld", f->kv[i].key, f->kv[i].value);
  for (size_t i = 0; i < f->nflags; i++)
    fprintf(out, " %s=%s", f->flags[i].key,
            f->flags[i].value ? "true" : "false");
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
  if (lg->redraw)
    fputs("\r\033[K", out);
  if (lg->journal)
    fprintf(out, "<%c>", level_priority[level]);
  if (lg->color && *colors[level])
    fprintf(out, "ts=%s level=%s%s\033[0m event=", ts, colors[level],
            level_names[level]);
  else
    fprintf(out, "ts=%s level=%s event=", ts, level_names[level]);
  text_value(out, event);
  if (f)
    text_fields(out, f);
  if (msg && *msg)
    text_str(out, "msg", msg);
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
