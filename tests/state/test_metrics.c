/* SPDX-License-Identifier: MIT */
/*
 * metrics: the textfile parses as Prometheus text format, carries every
 * required family with HELP/TYPE, the right labels and values, escapes
 * label values, bounds the series count, and is written 0644. The
 * counters file (state_dir/counters.json) round-trips, a corrupt one is
 * refused, and two writers adding to it never make a counter go down.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "metrics.h"
#include "statefile.h"
#include "testutil.h"

#include <errno.h>

/* One parsed sample line: name, raw label text (without braces), value. */
struct sample {
  char name[128];
  char labels[512];
  double value;
};

struct parsed {
  struct sample samples[600];
  size_t n;
  char help[16][128]; /* families with a # HELP line */
  char type[16][160]; /* "name type" of each # TYPE line */
  size_t nhelp, ntype;
};

/* A deliberately small parser of the exposition format, strict enough to
 * catch a malformed line: NAME[{LABELS}] VALUE. */
static void parse(const char *text, struct parsed *p)
{
  const char *line = text;

  memset(p, 0, sizeof(*p));
  while (*line) {
    const char *end = strchr(line, '\n');
    char buf[1024];
    size_t len;

    assert_non_null(end); /* every line ends with \n */
    len = (size_t)(end - line);
    assert_true(len < sizeof(buf));
    memcpy(buf, line, len);
    buf[len] = '\0';
    if (strncmp(buf, "# HELP ", 7) == 0) {
      assert_true(p->nhelp < 16);
      sscanf(buf + 7, "%127s", p->help[p->nhelp++]);
    } else if (strncmp(buf, "# TYPE ", 7) == 0) {
      assert_true(p->ntype < 16);
      snprintf(p->type[p->ntype++], 160, "%.159s", buf + 7);
    } else {
      struct sample *s = &p->samples[p->n++];
      char *brace = strchr(buf, '{'), *space, *endp;

      assert_true(p->n < 600);
      if (brace) {
        char *close = strrchr(buf, '}');

        assert_non_null(close);
        *brace = '\0';
        *close = '\0';
        snprintf(s->labels, sizeof(s->labels), "%.511s", brace + 1);
        space = close + 1;
      } else {
        space = strchr(buf, ' ');
        assert_non_null(space);
        *space = '\0';
      }
      snprintf(s->name, sizeof(s->name), "%.127s", buf);
      if (brace)
        assert_int_equal(*space, ' '); /* NAME{...} VALUE */
      errno = 0;
      s->value = strtod(space + 1, &endp);
      assert_int_equal(errno, 0);
      assert_int_equal(*endp, '\0');
      for (const char *c = s->name; *c; c++)
        assert_true(strchr("abcdefghijklmnopqrstuvwxyz_", *c) != NULL);
    }
    line = end + 1;
  }
}

static const struct sample *find(const struct parsed *p, const char *name,
                                 const char *labels)
{
  for (size_t i = 0; i < p->n; i++) {
    if (strcmp(p->samples[i].name, name) == 0 &&
        strcmp(p->samples[i].labels, labels ? labels : "") == 0)
      return &p->samples[i];
  }
  return NULL;
}

static double value_of(const struct parsed *p, const char *name,
                       const char *labels)
{
  const struct sample *s = find(p, name, labels);

  if (!s)
    fail_msg("no sample %s{%s}", name, labels ? labels : "");
  return s->value;
}

static void assert_family(const struct parsed *p, const char *name,
                          const char *type)
{
  char want[160];
  bool help = false, typed = false;

  snprintf(want, sizeof(want), "%s %s", name, type);
  for (size_t i = 0; i < p->nhelp; i++)
    help |= strcmp(p->help[i], name) == 0;
  for (size_t i = 0; i < p->ntype; i++)
    typed |= strcmp(p->type[i], want) == 0;
  if (!help || !typed)
    fail_msg("family %s (%s) lacks # HELP or # TYPE", name, type);
}

static struct parsed parsed; /* large: not on the stack */

static void fill(struct metrics *m)
{
  memset(m, 0, sizeof(*m));
  m->converged = 297;
  m->pending = 2;
  m->failed = 1;
  m->retries_total = 7;
  m->passes_total = 3;
  m->last_success_ts = 1772366400;
  m->last_pass_ts = 1772366460;
  m->pass_duration_s = 2.4;
  m->uncertain = 4;
  for (int i = 0; i < 9; i++)
    assert_int_equal(metrics_count_request(m, "attach", "204"), 0);
  assert_int_equal(metrics_count_request(m, "attach", "APIG.3020"), 0);
  assert_int_equal(metrics_count_request(m, "list", "200"), 0);
  assert_int_equal(metrics_count_request(m, "list", "transport"), 0);
  assert_int_equal(metrics_count_request(m, "list", "200"), 0);
}

static void test_content(void **state)
{
  struct metrics m;
  char *text;
  size_t len;

  (void)state;
  fill(&m);
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  assert_int_equal(strlen(text), len);
  parse(text, &parsed);
  assert_family(&parsed, "certbind_bindings", "gauge");
  assert_family(&parsed, "certbind_requests_total", "counter");
  assert_family(&parsed, "certbind_retries_total", "counter");
  assert_family(&parsed, "certbind_passes_total", "counter");
  assert_family(&parsed, "certbind_last_success_timestamp_seconds", "gauge");
  assert_family(&parsed, "certbind_last_pass_timestamp_seconds", "gauge");
  assert_family(&parsed, "certbind_pass_duration_seconds", "gauge");
  assert_family(&parsed, "certbind_bindings_uncertain", "gauge");
  assert_family(&parsed, "certbind_config_last_reload_successful", "gauge");
  assert_family(&parsed, "certbind_build_info", "gauge");
  assert_true(value_of(&parsed, "certbind_bindings", "state=\"converged\"") ==
              297);
  assert_true(value_of(&parsed, "certbind_bindings", "state=\"pending\"") == 2);
  assert_true(value_of(&parsed, "certbind_bindings", "state=\"failed\"") == 1);
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"attach\",code=\"204\"") == 9);
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"attach\",code=\"APIG.3020\"") == 1);
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"list\",code=\"200\"") == 2);
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"list\",code=\"transport\"") == 1);
  assert_true(value_of(&parsed, "certbind_retries_total", NULL) == 7);
  assert_true(value_of(&parsed, "certbind_passes_total", NULL) == 3);
  assert_true(value_of(&parsed, "certbind_last_success_timestamp_seconds",
                       NULL) == 1772366400);
  assert_true(value_of(&parsed, "certbind_pass_duration_seconds", NULL) == 2.4);
  assert_true(value_of(&parsed, "certbind_bindings_uncertain", NULL) == 4);
  /* reload unknown (apply): not a failure */
  assert_true(
      value_of(&parsed, "certbind_config_last_reload_successful", NULL) == 1);
  assert_true(value_of(&parsed, "certbind_build_info",
                       "version=\"" CERTBIND_VERSION "\"") == 1);
  assert_int_equal(parsed.n, 3 + 1 + 4 + 5 + 2);
  /* request series sorted by op, then code: stable between passes */
  assert_true(strstr(text, "code=\"204\"") < strstr(text, "code=\"APIG.3020"));
  assert_true(strstr(text, "op=\"attach\"") < strstr(text, "op=\"list\""));
  free(text);
  metrics_free(&m);
  assert_int_equal(m.nrequests, 0);
}

static void test_label_escaping(void **state)
{
  struct metrics m = {0};
  char *text;
  size_t len;

  (void)state;
  assert_int_equal(metrics_count_request(&m, "attach", "a\"b\\c\nd"), 0);
  assert_int_equal(metrics_count_request(&m, "attach", ""), 0);
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  assert_non_null(strstr(
      text,
      "certbind_requests_total{op=\"attach\",code=\"a\\\"b\\\\c\\nd\"} 1\n"));
  assert_non_null(
      strstr(text, "certbind_requests_total{op=\"attach\",code=\"none\"} 1\n"));
  parse(text, &parsed); /* still one sample per line */
  free(text);
  metrics_free(&m);
}

/* A server inventing a new code per response cannot grow the file. */
static void test_series_bounded(void **state)
{
  struct metrics m = {0};
  char code[32];
  char *text;
  size_t len;
  char longcode[200];

  (void)state;
  for (int i = 0; i < 1000; i++) {
    snprintf(code, sizeof(code), "APIG.%d", i);
    assert_int_equal(metrics_count_request(&m, "attach", code), 0);
  }
  assert_true(m.nrequests <= METRICS_MAX_REQUEST_SERIES);
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  parse(text, &parsed);
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"attach\",code=\"other\"") ==
              1000 - (METRICS_MAX_REQUEST_SERIES - 1));
  assert_true(value_of(&parsed, "certbind_requests_total",
                       "op=\"attach\",code=\"APIG.0\"") == 1);
  free(text);
  metrics_free(&m);

  memset(longcode, 'X', sizeof(longcode) - 1);
  longcode[sizeof(longcode) - 1] = '\0';
  assert_int_equal(metrics_count_request(&m, "list", longcode), 0);
  assert_int_equal(metrics_count_request(&m, "list", longcode), 0);
  assert_int_equal(m.nrequests, 1);
  assert_int_equal(strlen(m.requests[0].code), METRICS_MAX_LABEL);
  assert_int_equal(m.requests[0].count, 2);
  assert_int_equal(metrics_count_request(&m, NULL, "x"), -EINVAL);
  metrics_free(&m);
}

static void test_write_file(void **state)
{
  struct metrics m;
  char *dir = testutil_mkdtemp();
  char *path = testutil_join(dir, "certbind.prom");
  char *text = NULL, *want = NULL;
  size_t len, wlen;
  mode_t old = umask(077);

  (void)state;
  fill(&m);
  assert_int_equal(metrics_write(path, &m), 0);
  umask(old);
  assert_int_equal(testutil_mode(path), 0644);
  assert_int_equal(statefile_read(path, 1 << 20, &text, &len), 0);
  assert_int_equal(metrics_format(&m, &want, &wlen), 0);
  assert_int_equal(len, wlen);
  assert_memory_equal(text, want, len);
  assert_int_equal(testutil_count(dir, ".certbind.prom."), 0);
  free(text);
  free(want);
  metrics_free(&m);
  testutil_rmdir(dir);
  free(path);
  free(dir);
}

static void test_reload_gauge(void **state)
{
  struct metrics m = {0};
  char *text;
  size_t len;

  (void)state;
  m.reload = METRICS_RELOAD_FAILED;
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  parse(text, &parsed);
  assert_true(
      value_of(&parsed, "certbind_config_last_reload_successful", NULL) == 0);
  free(text);
  m.reload = METRICS_RELOAD_OK;
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  parse(text, &parsed);
  assert_true(
      value_of(&parsed, "certbind_config_last_reload_successful", NULL) == 1);
  free(text);
  metrics_free(&m);
}

static uint64_t request_count(const struct metrics *m, const char *op,
                              const char *code)
{
  for (size_t i = 0; i < m->nrequests; i++) {
    if (strcmp(m->requests[i].op, op) == 0 &&
        strcmp(m->requests[i].code, code) == 0)
      return m->requests[i].count;
  }
  return 0;
}

static void test_counters_round_trip(void **state)
{
  struct metrics m, back;
  char *dir = testutil_mkdtemp();
  char *path = testutil_join(dir, METRICS_COUNTERS_FILE);
  mode_t old = umask(0);

  (void)state;
  fill(&m);
  m.reload = METRICS_RELOAD_FAILED;
  assert_int_equal(metrics_count_request(&m, "token", "\xc3\xa9t\xc3"), 0);
  assert_int_equal(metrics_counters_write(dir, &m), 0);
  umask(old);
  assert_int_equal(testutil_mode(path), 0600);
  assert_int_equal(metrics_counters_read(dir, &back), 0);
  assert_int_equal(back.nrequests, m.nrequests);
  for (size_t i = 0; i < m.nrequests; i++)
    assert_int_equal(request_count(&back, m.requests[i].op, m.requests[i].code),
                     m.requests[i].count);
  /* bytes outside ASCII are stored as '?': the file stays valid JSON */
  assert_int_equal(request_count(&back, "token", "??t?"), 1);
  assert_int_equal(back.retries_total, 7);
  assert_int_equal(back.passes_total, 3);
  assert_int_equal(back.last_success_ts, 1772366400);
  assert_int_equal(back.reload, METRICS_RELOAD_FAILED);
  /* gauges are not counters: not kept */
  assert_int_equal(back.converged, 0);
  assert_int_equal(back.uncertain, 0);
  metrics_free(&back);

  m.reload = METRICS_RELOAD_UNKNOWN; /* apply: says nothing about it */
  assert_int_equal(metrics_counters_write(dir, &m), 0);
  assert_int_equal(metrics_counters_read(dir, &back), 0);
  assert_int_equal(back.reload, METRICS_RELOAD_UNKNOWN);
  metrics_free(&back);
  metrics_free(&m);
  testutil_rmdir(dir);
  free(path);
  free(dir);
}

static void write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void test_counters_corrupt_or_missing(void **state)
{
  static const char *const bad[] = {
      "",
      "{not json",
      "[]",
      "{\"version\":1,\"requests\":[],\"retries_total\":1,\"passes_total\":2",
      "{\"version\":1,\"retries_total\":1,\"passes_total\":2,"
      "\"last_success_timestamp_seconds\":0}",
      "{\"version\":1,\"requests\":[{\"op\":\"list\",\"code\":\"200\","
      "\"count\":-1}],\"retries_total\":1,\"passes_total\":2,"
      "\"last_success_timestamp_seconds\":0}",
      "{\"version\":1,\"requests\":[{\"op\":\"list\",\"count\":1}],"
      "\"retries_total\":1,\"passes_total\":2,"
      "\"last_success_timestamp_seconds\":0}",
      "{\"version\":1,\"requests\":[],\"retries_total\":\"1\","
      "\"passes_total\":2,\"last_success_timestamp_seconds\":0}",
      "{\"version\":1,\"requests\":[],\"retries_total\":1.5,"
      "\"passes_total\":2,\"last_success_timestamp_seconds\":0}",
      "{\"version\":1,\"requests\":[],\"retries_total\":1,"
      "\"passes_total\":2,\"last_success_timestamp_seconds\":0,"
      "\"config_last_reload_successful\":1}",
  };
  char *dir = testutil_mkdtemp();
  char *path = testutil_join(dir, METRICS_COUNTERS_FILE);
  struct metrics m;

  (void)state;
  assert_int_equal(metrics_counters_read(dir, &m), -ENOENT);
  metrics_free(&m);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    write_text(path, bad[i]);
    if (metrics_counters_read(dir, &m) != -EBADMSG)
      fail_msg("accepted: %s", bad[i]);
    metrics_free(&m);
  }
  write_text(path, "{\"version\":2,\"requests\":[],\"retries_total\":1,"
                   "\"passes_total\":2,\"last_success_timestamp_seconds\":0}");
  assert_int_equal(metrics_counters_read(dir, &m), -EPROTONOSUPPORT);
  metrics_free(&m);
  /* a later version may add keys */
  write_text(path, "{\"version\":1,\"requests\":[],\"retries_total\":1,"
                   "\"passes_total\":2,\"last_success_timestamp_seconds\":5,"
                   "\"later\":{\"x\":[1]}}");
  assert_int_equal(metrics_counters_read(dir, &m), 0);
  assert_int_equal(m.passes_total, 2);
  assert_int_equal(m.last_success_ts, 5);
  metrics_free(&m);
  testutil_rmdir(dir);
  free(path);
  free(dir);
}

/* What cli_save_pass does after a pass: the kept counters plus what this
 * process counted, saved, and the textfile from the sum. */
static void save_like_a_pass(const char *dir, struct metrics *mine,
                             struct parsed *out)
{
  struct metrics total;
  char *text;
  size_t len;

  mine->passes_total++;
  if (metrics_counters_read(dir, &total) < 0) {
    metrics_free(&total);
    memset(&total, 0, sizeof(total));
  }
  assert_int_equal(metrics_add(&total, mine), 0);
  assert_int_equal(metrics_counters_write(dir, &total), 0);
  metrics_saved(mine);
  assert_int_equal(mine->nrequests, 0);
  assert_int_equal(mine->retries_total, 0);
  assert_int_equal(mine->passes_total, 0);
  assert_int_equal(metrics_format(&total, &text, &len), 0);
  parse(text, out);
  free(text);
  metrics_free(&total);
}

/* `apply` and the daemon take turns writing the textfile, each with its
 * own in-process counts: every counter of the file only grows, and ends as
 * the sum of everything both counted. */
static void test_two_writers_counters_only_grow(void **state)
{
  static struct parsed before, after;
  char *dir = testutil_mkdtemp();
  struct metrics daemon = {0}, apply = {0};
  const char *series[] = {"op=\"list\",code=\"200\"",
                          "op=\"attach\",code=\"204\""};

  (void)state;
  daemon.reload = METRICS_RELOAD_FAILED;
  memset(&before, 0, sizeof(before));
  for (int round = 0; round < 6; round++) {
    struct metrics *who = round % 2 ? &apply : &daemon;

    for (int k = 0; k <= round; k++) {
      assert_int_equal(metrics_count_request(who, "list", "200"), 0);
      assert_int_equal(metrics_count_request(who, "attach", "204"), 0);
      who->retries_total++;
    }
    save_like_a_pass(dir, who, &after);
    for (size_t s = 0; s < 2; s++) {
      if (round > 0)
        assert_true(value_of(&after, "certbind_requests_total", series[s]) >
                    value_of(&before, "certbind_requests_total", series[s]));
    }
    assert_true(value_of(&after, "certbind_passes_total", NULL) == round + 1);
    /* the daemon's rejected reload stands while apply writes */
    assert_true(
        value_of(&after, "certbind_config_last_reload_successful", NULL) == 0);
    before = after;
  }
  /* 1 + 2 + ... + 6 of each */
  assert_true(value_of(&after, "certbind_requests_total", series[0]) == 21);
  assert_true(value_of(&after, "certbind_retries_total", NULL) == 21);
  metrics_free(&daemon);
  metrics_free(&apply);
  testutil_rmdir(dir);
  free(dir);
}

static void test_add_keeps_the_later_success(void **state)
{
  struct metrics dst = {0}, src = {0};

  (void)state;
  dst.last_success_ts = 2000;
  src.last_success_ts = 1000;
  assert_int_equal(metrics_add(&dst, &src), 0);
  assert_int_equal(dst.last_success_ts, 2000);
  src.last_success_ts = 3000;
  src.reload = METRICS_RELOAD_OK;
  assert_int_equal(metrics_add(&dst, &src), 0);
  assert_int_equal(dst.last_success_ts, 3000);
  assert_int_equal(dst.reload, METRICS_RELOAD_OK);
  metrics_saved(&src);
  assert_int_equal(src.last_success_ts, 3000); /* a gauge: stays */
  metrics_free(&dst);
  metrics_free(&src);
}

/* What the gateways served: nothing written before a verification; the
 * earliest not_after per (gateway, domain) over its addresses; carried by
 * metrics_add into the sum the textfile is written from. */
static void test_served(void **state)
{
  const char *na = "certbind_served_certificate_not_after_timestamp_seconds";
  struct metrics m = {0}, total = {0};
  char *text;
  size_t len;

  (void)state;
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  assert_null(strstr(text, "certbind_served_"));
  free(text);
  assert_int_equal(metrics_served_leaf(&m, "gw-b", "api.example.com", 300), 0);
  assert_int_equal(metrics_served_leaf(&m, "gw-a", "api.example.com", 500), 0);
  /* a second address of gw-a serves one that ends earlier, a third later */
  assert_int_equal(metrics_served_leaf(&m, "gw-a", "api.example.com", 400), 0);
  assert_int_equal(metrics_served_leaf(&m, "gw-a", "api.example.com", 900), 0);
  assert_int_equal(metrics_served_leaf(&m, "gw-a", "*.example.com", 700), 0);
  m.served_mismatches = 2;
  assert_int_equal(m.nserved, 3);
  assert_int_equal(metrics_add(&total, &m), 0);
  assert_int_equal(metrics_format(&total, &text, &len), 0);
  parse(text, &parsed);
  assert_family(&parsed, "certbind_served_certificate_mismatches", "gauge");
  assert_family(&parsed, na, "gauge");
  assert_true(
      value_of(&parsed, "certbind_served_certificate_mismatches", NULL) == 2);
  assert_true(value_of(&parsed, na,
                       "gateway=\"gw-a\",domain=\"api.example.com\"") == 400);
  assert_true(value_of(&parsed, na,
                       "gateway=\"gw-a\",domain=\"*.example.com\"") == 700);
  assert_true(value_of(&parsed, na,
                       "gateway=\"gw-b\",domain=\"api.example.com\"") == 300);
  free(text);
  /* a new verification replaces the last one */
  metrics_served_clear(&m);
  assert_int_equal(metrics_served_leaf(&m, "gw-b", "www.example.com", 100), 0);
  assert_int_equal(metrics_add(&total, &m), 0);
  assert_int_equal(total.nserved, 1);
  assert_true(total.served_checked);
  assert_int_equal(total.served_mismatches, 0);
  /* one without a verification keeps it */
  metrics_served_clear(&m);
  assert_int_equal(metrics_add(&total, &m), 0);
  assert_int_equal(total.nserved, 1);
  metrics_free(&m);
  metrics_free(&total);
}

/* One series per certificate of the file, sorted by name, 0 for an
 * unknown end; gauges: neither saved nor added as counters. */
static void test_certificate_not_after(void **state)
{
  struct metrics m, total = {0};
  char *text;
  size_t len;
  const char *metric = "certbind_certificate_not_after_timestamp_seconds";

  (void)state;
  fill(&m);
  assert_int_equal(metrics_add_certificate(&m, "star-2026",
                                           "a27be832f2e9441c8127fe48e3b5ac67",
                                           1772366400),
                   0);
  assert_int_equal(metrics_add_certificate(
                       &m, "api \"x\"", "b27be832f2e9441c8127fe48e3b5ac67", 0),
                   0);
  assert_int_equal(metrics_add_certificate(&m, "managed", NULL, -5), 0);
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  parse(text, &parsed);
  assert_family(&parsed, metric, "gauge");
  assert_true(value_of(&parsed, metric,
                       "certificate=\"star-2026\","
                       "id=\"a27be832f2e9441c8127fe48e3b5ac67\"") ==
              1772366400);
  assert_true(value_of(&parsed, metric,
                       "certificate=\"api \\\"x\\\"\","
                       "id=\"b27be832f2e9441c8127fe48e3b5ac67\"") == 0);
  assert_true(
      value_of(&parsed, metric, "certificate=\"managed\",id=\"none\"") == 0);
  /* sorted by name, whatever the order given */
  assert_true(strstr(text, "certificate=\"api") <
              strstr(text, "certificate=\"managed"));
  assert_true(strstr(text, "certificate=\"managed") <
              strstr(text, "certificate=\"star-2026"));
  free(text);

  /* a gauge: saving the counters keeps it, adding them does not copy it */
  metrics_saved(&m);
  assert_int_equal(m.ncerts, 3);
  assert_int_equal(metrics_add(&total, &m), 0);
  assert_int_equal(total.ncerts, 0);
  metrics_clear_certificates(&m);
  assert_int_equal(m.ncerts, 0);
  assert_int_equal(metrics_format(&m, &text, &len), 0);
  assert_null(strstr(text, metric)); /* no certificate, no family */
  free(text);
  metrics_free(&total);
  metrics_free(&m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_certificate_not_after),
      cmocka_unit_test(test_content),
      cmocka_unit_test(test_label_escaping),
      cmocka_unit_test(test_series_bounded),
      cmocka_unit_test(test_write_file),
      cmocka_unit_test(test_reload_gauge),
      cmocka_unit_test(test_counters_round_trip),
      cmocka_unit_test(test_counters_corrupt_or_missing),
      cmocka_unit_test(test_two_writers_counters_only_grow),
      cmocka_unit_test(test_add_keeps_the_later_success),
      cmocka_unit_test(test_served),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
