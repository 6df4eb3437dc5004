/* SPDX-License-Identifier: MIT */
/*
 * log: numbers and booleans as a person writes them, logfmt quoting, the
 * journal's priority prefixes (on a real file named by JOURNAL_STREAM),
 * and when colour is used (on a real pseudo-terminal).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "log.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Everything one log_event wrote, through a memory stream. */
struct capture {
  struct log lg;
  FILE *f;
  char *buf;
  size_t len;
};

static void capture_open(struct capture *c, enum log_format format)
{
  memset(c, 0, sizeof(*c));
  c->f = open_memstream(&c->buf, &c->len);
  assert_non_null(c->f);
  log_init(&c->lg, c->f);
  c->lg.level = LOG_DEBUG;
  c->lg.format = format;
  c->lg.color = false;
}

static const char *captured(struct capture *c)
{
  fflush(c->f);
  return c->buf ? c->buf : "";
}

static void capture_close(struct capture *c)
{
  fclose(c->f);
  free(c->buf);
}

static void expect_ms(double ms, const char *want)
{
  char buf[64];
  struct capture c;
  struct log_fields f = LOG_FIELDS_INIT;
  char *json = NULL, *text = NULL;

  assert_string_equal(log_format_ms(ms, buf, sizeof(buf)), want);
  assert_non_null(json = malloc(strlen(want) + 32));
  assert_non_null(text = malloc(strlen(want) + 32));
  sprintf(json, "\"latency_ms\":%s,", want);
  sprintf(text, " latency_ms=%s ", want);
  f.latency_ms = ms;
  f.op = "list";
  capture_open(&c, LOG_FORMAT_JSON);
  log_event(&c.lg, LOG_INFO, "write.ok", &f, "m");
  if (strstr(captured(&c), json) == NULL)
    print_error("json: %s", captured(&c));
  assert_non_null(strstr(captured(&c), json));
  capture_close(&c);
  capture_open(&c, LOG_FORMAT_TEXT);
  log_event(&c.lg, LOG_INFO, "write.ok", &f, "m");
  if (strstr(captured(&c), text) == NULL)
    print_error("text: %s", captured(&c));
  assert_non_null(strstr(captured(&c), text));
  capture_close(&c);
  free(json);
  free(text);
}

/* At most one decimal, no trailing zero; never yajl's 17 digits. */
static void test_numbers_as_written(void **state)
{
  (void)state;
  expect_ms(28.3, "28.3");
  expect_ms(0.5, "0.5");
  expect_ms(1200, "1200");
  expect_ms(1200.04, "1200");
  expect_ms(1e-3, "0");
  expect_ms(0, "0");
  expect_ms(0.06, "0.1");
  expect_ms(99.96, "100");
  expect_ms(123456789.25, "123456789.2");
  /* beyond any latency: still one short JSON number */
  expect_ms(1e300, "1e+300");
}

static void test_booleans(void **state)
{
  struct capture c;
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[] = {{"bindings", 3}};
  struct log_flag flags[] = {{"dry_run", true}, {"forced", false}};

  (void)state;
  f.kv = kv;
  f.nkv = 1;
  f.flags = flags;
  f.nflags = 2;
  capture_open(&c, LOG_FORMAT_JSON);
  log_event(&c.lg, LOG_INFO, "pass.start", &f, NULL);
  assert_non_null(strstr(captured(&c),
                         "\"bindings\":3,\"dry_run\":true,\"forced\":false}"));
  capture_close(&c);
  capture_open(&c, LOG_FORMAT_TEXT);
  log_event(&c.lg, LOG_INFO, "pass.start", &f, NULL);
  assert_non_null(
      strstr(captured(&c), " bindings=3 dry_run=true forced=false\n"));
  capture_close(&c);
}

/* ts=... level=... event=... then the fields, msg last; a value with a
 * space, '=', '"' or a control byte is quoted and escaped. */
static void test_logfmt(void **state)
{
  struct capture c;
  struct log_fields f = LOG_FIELDS_INIT;
  const char *domains[] = {"a.example.com", "b.example.com"};
  const char *out;

  (void)state;
  f.account = "sg-prod";
  f.error_msg = "bad \"thing\" a=b\\c";
  f.error_code = "";
  f.request_id = "line1\nline2\ttab\x01";
  f.domains = domains;
  f.ndomains = 2;
  f.attempt = 2;
  capture_open(&c, LOG_FORMAT_TEXT);
  log_event(&c.lg, LOG_WARN, "write.retry", &f, "will retry in %d ms", 500);
  out = captured(&c);
  assert_true(strncmp(out, "ts=", 3) == 0);
  assert_non_null(strstr(out, "Z level=warn event=write.retry account=sg-prod "
                              "domains=a.example.com,b.example.com attempt=2 "
                              "error_code=\"\" "
                              "error_msg=\"bad \\\"thing\\\" a=b\\\\c\" "
                              "request_id=\"line1\\nline2\\ttab\\u0001\" "
                              "msg=\"will retry in 500 ms\"\n"));
  /* one event, one line */
  assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
  capture_close(&c);

  /* a plain word stays unquoted; a domain list that needs quotes is one
   * quoted value */
  const char *odd[] = {"a.example.com", "b c"};
  f = (struct log_fields)LOG_FIELDS_INIT;
  f.domains = odd;
  f.ndomains = 2;
  capture_open(&c, LOG_FORMAT_TEXT);
  log_event(&c.lg, LOG_INFO, "plan", &f, "ok");
  assert_non_null(strstr(captured(&c), " event=plan domains=\"a.example.com,b "
                                       "c\" msg=ok\n"));
  capture_close(&c);
}

/* What JOURNAL_STREAM holds for the test's file */
enum js { JS_UNSET, JS_SAME, JS_OTHER_INODE, JS_TRAILING, JS_JUNK };

/* A real file as the log's stream, JOURNAL_STREAM naming it or not. */
static char *journal_run(enum js js, enum log_format fmt)
{
  char path[] = "/tmp/test_log.XXXXXX";
  int fd = mkstemp(path);
  struct stat st;
  struct log lg;
  FILE *out;
  char env[64], *buf;
  long n;

  assert_true(fd >= 0);
  assert_int_equal(fstat(fd, &st), 0);
  out = fdopen(fd, "w+");
  assert_non_null(out);
  uintmax_t dev = (uintmax_t)st.st_dev, ino = (uintmax_t)st.st_ino;
  if (js == JS_SAME)
    snprintf(env, sizeof(env), "%ju:%ju", dev, ino);
  else if (js == JS_OTHER_INODE)
    snprintf(env, sizeof(env), "%ju:%ju", dev, ino + 1);
  else if (js == JS_TRAILING)
    snprintf(env, sizeof(env), "%ju:%ju:", dev, ino);
  else
    snprintf(env, sizeof(env), "x%ju:%ju", dev, ino);
  if (js == JS_UNSET)
    unsetenv("JOURNAL_STREAM");
  else
    setenv("JOURNAL_STREAM", env, 1);
  log_init(&lg, out);
  unsetenv("JOURNAL_STREAM");
  lg.level = LOG_DEBUG;
  lg.format = fmt;
  lg.color = false;
  log_event(&lg, LOG_DEBUG, "e.debug", NULL, "d");
  log_event(&lg, LOG_INFO, "e.info", NULL, "i");
  log_event(&lg, LOG_WARN, "e.warn", NULL, "w");
  log_event(&lg, LOG_ERROR, "e.error", NULL, "e");
  fflush(out);
  n = ftell(out);
  assert_true(n > 0);
  buf = calloc(1, (size_t)n + 1);
  assert_non_null(buf);
  rewind(out);
  assert_int_equal(fread(buf, 1, (size_t)n, out), (size_t)n);
  fclose(out);
  unlink(path);
  return buf;
}

static void expect_prefixes(const char *log, bool want)
{
  static const char *const first[] = {"<7>", "<6>", "<4>", "<3>"};
  const char *line = log;

  for (size_t i = 0; i < 4; i++) {
    assert_non_null(line);
    if (want)
      assert_true(strncmp(line, first[i], 3) == 0);
    else
      assert_true(line[0] != '<');
    line = strchr(line, '\n');
    if (line)
      line++;
  }
}

static void test_journal_prefix(void **state)
{
  char *log;

  (void)state;
  /* JSON and text both: journald strips the prefix and keeps the level */
  log = journal_run(JS_SAME, LOG_FORMAT_JSON);
  expect_prefixes(log, true);
  assert_non_null(strstr(log, "<4>{\"ts\":"));
  free(log);
  log = journal_run(JS_SAME, LOG_FORMAT_TEXT);
  expect_prefixes(log, true);
  assert_non_null(strstr(log, "<3>ts="));
  free(log);
  /* not when JOURNAL_STREAM is unset, names another inode or is junk */
  log = journal_run(JS_UNSET, LOG_FORMAT_JSON);
  expect_prefixes(log, false);
  free(log);
  log = journal_run(JS_OTHER_INODE, LOG_FORMAT_JSON);
  expect_prefixes(log, false);
  free(log);
  log = journal_run(JS_TRAILING, LOG_FORMAT_TEXT);
  expect_prefixes(log, false);
  free(log);
  log = journal_run(JS_JUNK, LOG_FORMAT_TEXT);
  expect_prefixes(log, false);
  free(log);
}

/* colour only on a terminal, and not with NO_COLOR or TERM=dumb */
static bool color_on_pty(const char *term, const char *no_color)
{
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  int slave;
  FILE *out;
  struct log lg;

  assert_true(master >= 0);
  assert_int_equal(grantpt(master), 0);
  assert_int_equal(unlockpt(master), 0);
  slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  assert_true(slave >= 0);
  out = fdopen(slave, "w");
  assert_non_null(out);
  if (term)
    setenv("TERM", term, 1);
  else
    unsetenv("TERM");
  if (no_color)
    setenv("NO_COLOR", no_color, 1);
  else
    unsetenv("NO_COLOR");
  log_init(&lg, out);
  assert_int_equal(lg.format, LOG_FORMAT_TEXT);
  fclose(out);
  close(master);
  return lg.color;
}

static void test_colour(void **state)
{
  (void)state;
  assert_true(color_on_pty("xterm-256color", NULL));
  assert_true(color_on_pty(NULL, NULL));
  assert_true(color_on_pty("xterm", "")); /* NO_COLOR empty: not set */
  assert_false(color_on_pty("dumb", NULL));
  assert_false(color_on_pty("xterm", "1"));
  unsetenv("NO_COLOR");
}

/* What one text event written to a pty starts with, for TERM=term:
 * true when it clears the line first (the live progress line's). */
static bool clears_line_on_pty(const char *term)
{
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  char buf[512];
  struct log lg;
  ssize_t n;
  FILE *out;
  int slave;

  assert_true(master >= 0);
  assert_int_equal(grantpt(master), 0);
  assert_int_equal(unlockpt(master), 0);
  slave = open(ptsname(master), O_RDWR | O_NOCTTY);
  assert_true(slave >= 0);
  out = fdopen(slave, "w");
  assert_non_null(out);
  setenv("TERM", term, 1);
  setenv("NO_COLOR", "1", 1);
  log_init(&lg, out);
  log_event(&lg, LOG_WARN, "write.retry", NULL, "again");
  fflush(out);
  n = read(master, buf, sizeof(buf) - 1);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "event=write.retry"));
  fclose(out);
  close(master);
  unsetenv("NO_COLOR");
  return strstr(buf, "\033[K") != NULL;
}

/* A dumb terminal cannot redraw: no erase sequence before an event. */
static void test_redraw_only_where_the_terminal_can(void **state)
{
  (void)state;
  assert_true(clears_line_on_pty("xterm"));
  assert_false(clears_line_on_pty("dumb"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_numbers_as_written),
      cmocka_unit_test(test_booleans),
      cmocka_unit_test(test_logfmt),
      cmocka_unit_test(test_journal_prefix),
      cmocka_unit_test(test_colour),
      cmocka_unit_test(test_redraw_only_where_the_terminal_can),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
