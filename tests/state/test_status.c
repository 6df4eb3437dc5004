/* SPDX-License-Identifier: MIT */
/*
 * status: status.json round trip, refusal of partial/garbage files,
 * `certbind status` text and JSON output, permissions and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "statefile.h"
#include "status.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <time.h>

/* 2026-03-01 12:00:00 UTC */
#define T0 1772366400LL

static char *xstrdup(const char *s)
{
  char *d = s ? strdup(s) : NULL;

  assert_true(!s || d);
  return d;
}

static void add_binding(struct status *st, const char *domain,
                        const char *gateway, enum status_state state)
{
  struct status_binding *b;

  st->bindings =
      realloc(st->bindings, (st->nbindings + 1) * sizeof(*st->bindings));
  assert_non_null(st->bindings);
  b = &st->bindings[st->nbindings++];
  memset(b, 0, sizeof(*b));
  b->account = xstrdup("sg-prod");
  b->certificate = xstrdup("star-example-2026");
  b->certificate_id = xstrdup("a27be832f2e9441c8127fe48e3b5ac67");
  b->gateway = xstrdup(gateway);
  b->instance_id = xstrdup("f0fa1789-3b76-433b-a787-9892951c620e");
  b->domain = xstrdup(domain);
  b->state = state;
  b->attempts = 1;
}

/* A partial pass: one converged, one failed, one pending binding. */
static void sample(struct status *st)
{
  struct status_binding *b;

  memset(st, 0, sizeof(*st));
  st->pass.started_ms = T0 * 1000 + 250;
  st->pass.ended_ms = T0 * 1000 + 2650;
  st->pass.outcome = xstrdup("partial");
  st->pass.command = xstrdup("apply");
  st->pass.mode = xstrdup("sync");
  st->pass.config_sha256 = xstrdup(
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  st->pass.attached = 85;
  st->pass.changed = 3;
  st->pass.detached = 1;
  st->pass.unchanged = 212;
  st->pass.failed = 1;
  st->pass.pending = 1;
  st->pass.requests = 9;
  st->pass.retries = 2;
  st->pass.message = xstrdup("");
  add_binding(st, "api.example.com", "sg-edge-1", STATUS_CONVERGED);
  st->bindings[0].verify_client = true;
  add_binding(st, "bad.example.com", "sg-edge-1", STATUS_FAILED);
  b = &st->bindings[1];
  b->error_code = xstrdup("APIG.3020");
  b->error_msg = xstrdup("The URL domain does not exist");
  b->request_id = xstrdup("5b1c2f0e9d8a4b7c");
  b->attempts = 3;
  add_binding(st, "slow.example.com", "sg-edge-2", STATUS_PENDING);
  b = &st->bindings[2];
  b->error_code = xstrdup("APIG.0308");
  b->attempts = 2;
  b->next_retry = T0 + 300;
}

static void assert_str_eq(const char *a, const char *b)
{
  if (!a || !b)
    assert_ptr_equal(a, b);
  else
    assert_string_equal(a, b);
}

static void assert_status_equal(const struct status *a, const struct status *b)
{
  const struct status_pass *p = &a->pass, *q = &b->pass;

  assert_int_equal(p->started_ms, q->started_ms);
  assert_int_equal(p->ended_ms, q->ended_ms);
  assert_str_eq(p->outcome, q->outcome);
  assert_str_eq(p->command, q->command);
  assert_str_eq(p->mode, q->mode);
  assert_str_eq(p->config_sha256, q->config_sha256);
  assert_str_eq(p->message, q->message);
  assert_int_equal(p->attached, q->attached);
  assert_int_equal(p->changed, q->changed);
  assert_int_equal(p->detached, q->detached);
  assert_int_equal(p->unchanged, q->unchanged);
  assert_int_equal(p->failed, q->failed);
  assert_int_equal(p->pending, q->pending);
  assert_int_equal(p->requests, q->requests);
  assert_int_equal(p->retries, q->retries);
  assert_int_equal(a->nbindings, b->nbindings);
  for (size_t i = 0; i < a->nbindings; i++) {
    const struct status_binding *x = &a->bindings[i], *y = &b->bindings[i];

    assert_str_eq(x->account, y->account);
    assert_str_eq(x->certificate, y->certificate);
    assert_str_eq(x->certificate_id, y->certificate_id);
    assert_str_eq(x->gateway, y->gateway);
    assert_str_eq(x->instance_id, y->instance_id);
    assert_str_eq(x->domain, y->domain);
    assert_int_equal(x->verify_client, y->verify_client);
    assert_int_equal(x->state, y->state);
    assert_str_eq(x->error_code, y->error_code);
    assert_str_eq(x->error_msg, y->error_msg);
    assert_str_eq(x->request_id, y->request_id);
    assert_int_equal(x->attempts, y->attempts);
    assert_int_equal(x->next_retry, y->next_retry);
  }
}

struct fixture {
  char *dir;
  char *path;
  struct status st;
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));

  assert_non_null(f);
  f->dir = testutil_mkdtemp();
  assert_non_null(f->dir);
  f->path = testutil_join(f->dir, STATUS_FILE);
  sample(&f->st);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;

  status_free(&f->st);
  testutil_rmdir(f->dir);
  free(f->dir);
  free(f->path);
  free(f);
  return 0;
}

static void write_raw(const char *path, const char *text, size_t len)
{
  FILE *fp = fopen(path, "w");

  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

static void test_round_trip(void **state)
{
  struct fixture *f = *state;
  struct status back;

  assert_int_equal(status_write(f->dir, &f->st), 0);
  assert_int_equal(testutil_mode(f->path), 0600);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_status_equal(&f->st, &back);
  status_free(&back);
  assert_int_equal(back.nbindings, 0);
  assert_null(back.bindings);
}

static void test_round_trip_empty_and_extremes(void **state)
{
  struct fixture *f = *state;
  struct status st = {0}, back;

  st.pass.outcome = xstrdup("refused");
  st.pass.message = xstrdup("sync would detach 40% of bindings (max 30%)");
  st.pass.requests = UINT64_C(9223372036854775807);
  assert_int_equal(status_write(f->dir, &st), 0);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_status_equal(&st, &back);
  assert_null(back.pass.command); /* absent strings stay NULL */
  status_free(&back);
  status_free(&st);
}

/* A file cut anywhere is refused, never half-read. */
static void test_truncated_files_refused(void **state)
{
  struct fixture *f = *state;
  char *json;
  size_t len;
  struct status back;

  assert_int_equal(status_to_json(&f->st, &json, &len), 0);
  for (size_t cut = 0; cut < len; cut += 7) {
    write_raw(f->path, json, cut);
    assert_int_equal(status_read(f->dir, &back), -EBADMSG);
    assert_int_equal(back.nbindings, 0);
  }
  write_raw(f->path, json, len);
  assert_int_equal(status_read(f->dir, &back), 0);
  status_free(&back);
  free(json);
}

static void expect_read(struct fixture *f, const char *text, int want)
{
  struct status back;

  write_raw(f->path, text, strlen(text));
  assert_int_equal(status_read(f->dir, &back), want);
  status_free(&back);
}

#define PASS_OK                                                                \
  "\"pass\":{\"started_ms\":1,\"ended_ms\":2,\"outcome\":\"converged\"}"
#define BIND_OK                                                                \
  "\"account\":\"a\",\"certificate\":\"c\",\"certificate_id\":\"i\","          \
  "\"gateway\":\"g\",\"instance_id\":\"n\",\"domain\":\"d\",\"state\":"

static void test_garbage_refused(void **state)
{
  struct fixture *f = *state;
  struct status back;
  char msg[512];

  expect_read(f, "", -EBADMSG);
  expect_read(f, "garbage", -EBADMSG);
  write_raw(f->path, "\0\0\0\0", 4);
  assert_int_equal(status_read(f->dir, &back), -EBADMSG);
  expect_read(f, "[]", -EBADMSG);
  expect_read(f, "{}", -EBADMSG);
  expect_read(f, "{\"version\":1}", -EBADMSG);
  expect_read(f, "{\"version\":1," PASS_OK "} trailing", -EBADMSG);
  expect_read(f, "{\"version\":1," PASS_OK "}{}", -EBADMSG);
  /* wrong types, bad enum, missing required field */
  expect_read(f,
              "{\"version\":1,\"pass\":{\"started_ms\":\"1\",\"ended_ms\":2,"
              "\"outcome\":\"x\"}}",
              -EBADMSG);
  expect_read(f, "{\"version\":1,\"pass\":{\"ended_ms\":2,\"outcome\":\"x\"}}",
              -EBADMSG);
  expect_read(
      f, "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK "\"bogus\"}]}",
      -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"failed\",\"attempts\":-1}]}",
              -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"failed\",\"attempts\":1.5}]}",
              -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"failed\",\"domain\":[\"x\"]}]}",
              -EBADMSG);
  expect_read(f, "{\"version\":1," PASS_OK ",\"bindings\":[{\"state\":1}]}",
              -EBADMSG);
  expect_read(f, "{\"version\":1," PASS_OK ",\"bindings\":[3]}", -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"failed\",\"attempts\":99999999999999999999999}]}",
              -EBADMSG);
  /* newer format: clear refusal, not a misreading */
  expect_read(f, "{\"version\":2," PASS_OK "}", -EPROTONOSUPPORT);

  statefile_strerror(-EBADMSG, "read", f->path, msg, sizeof(msg));
  assert_non_null(strstr(msg, f->path));
  assert_non_null(strstr(msg, "corrupt"));
}

/* Later versions may add keys; they are skipped, whatever their shape. */
static void test_unknown_keys_ignored(void **state)
{
  struct fixture *f = *state;
  struct status back;

  const char *text =
      "{\"future\":{\"a\":[1,{\"b\":null}]},\"version\":1,\"x\":[[]]," PASS_OK
      ",\"bindings\":[{\"new\":{\"k\":[true]}," BIND_OK
      "\"pending\",\"next_retry\":7,\"z\":1.5}]}";

  write_raw(f->path, text, strlen(text));
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_int_equal(back.nbindings, 1);
  assert_int_equal(back.bindings[0].state, STATUS_PENDING);
  assert_int_equal(back.bindings[0].next_retry, 7);
  assert_string_equal(back.pass.outcome, "converged");
  status_free(&back);
}

static void test_missing_file(void **state)
{
  struct fixture *f = *state;
  struct status back;

  assert_int_equal(status_read(f->dir, &back), -ENOENT);
  assert_int_equal(back.nbindings, 0);
}

static char *print_to_string(const struct status *st, bool json, bool color)
{
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);

  assert_non_null(out);
  assert_int_equal(
      status_print(st, out,
                   &(struct status_print_opts){.json = json, .color = color}),
      0);
  assert_int_equal(fclose(out), 0);
  return text;
}

static void assert_contains(const char *text, const char *needle)
{
  if (!strstr(text, needle))
    fail_msg("missing \"%s\" in:\n%s", needle, text);
}

static void test_print_text(void **state)
{
  struct fixture *f = *state;
  char *text;

  text = print_to_string(&f->st, false, false);
  assert_contains(text, "Last pass: apply (sync) at 2026-03-01 12:00:00 UTC, "
                        "took 2.4 s: partial\n");
  assert_contains(text, "  85 attached, 3 changed, 1 detached, 212 unchanged,"
                        " 1 failed, 1 pending; 9 requests, 2 retries\n");
  assert_contains(text, "bindings: 1 converged, 1 pending, 1 failed (of 3)");
  assert_contains(text, "  failed   bad.example.com on sg-edge-1 (certificate "
                        "star-example-2026, account sg-prod): APIG.3020 The "
                        "URL domain does not exist (request 5b1c2f0e9d8a4b7c)"
                        ", 3 attempts\n");
  assert_contains(text, "  pending  slow.example.com on sg-edge-2 (certificate"
                        " star-example-2026, account sg-prod): next retry "
                        "2026-03-01 12:05:00 UTC (2 attempts so far, last "
                        "APIG.0308)\n");
  /* converged bindings are counted, not listed; no colours asked */
  assert_null(strstr(text, "api.example.com"));
  assert_null(strchr(text, '\033'));
  assert_null(strstr(text, "reason:"));
  /* failed are listed before pending */
  assert_true(strstr(text, "failed   bad") < strstr(text, "pending  slow"));
  free(text);

  text = print_to_string(&f->st, false, true);
  assert_contains(text, "\033[31mfailed\033[0m");
  assert_contains(text, "\033[33mpending\033[0m");
  assert_contains(text, "\033[33mpartial");
  free(text);
}

static void test_print_refused_and_running(void **state)
{
  struct fixture *f = *state;
  char *text;

  free(f->st.pass.outcome);
  f->st.pass.outcome = xstrdup("refused");
  free(f->st.pass.message);
  f->st.pass.message = xstrdup("would detach 150 bindings (max_detach_count "
                               "100)");
  f->st.pass.ended_ms = f->st.pass.started_ms + 95000;
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "took 1m35s: refused\n");
  assert_contains(text, "  reason: would detach 150 bindings "
                        "(max_detach_count 100)\n");
  free(text);

  f->st.pass.ended_ms = 0;
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "Pass in progress: apply started 2026-03-01 12:00:00 "
                        "UTC\n");
  free(text);
}

/* API text reaching a terminal cannot carry escape sequences. */
static void test_print_sanitises(void **state)
{
  struct fixture *f = *state;
  char *text;

  free(f->st.bindings[1].error_msg);
  f->st.bindings[1].error_msg = xstrdup("evil\033[2J\nline");
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "APIG.3020 evil?[2J?line");
  assert_null(strchr(text, '\033'));
  free(text);
}

static size_t count_lines_with(const char *text, const char *needle)
{
  size_t n = 0;

  for (const char *l = text; *l;) {
    const char *end = strchr(l, '\n');
    const char *hit = strstr(l, needle);

    if (!end)
      end = l + strlen(l);
    n += hit && hit < end;
    l = *end ? end + 1 : end;
  }
  return n;
}

/* 45 pending and 21 failed: 20 lines of each, then how many more; --all
 * lists every one; JSON is always complete. */
static void test_print_per_state_limit(void **state)
{
  struct fixture *f = *state;
  struct status back;
  char *text = NULL, name[64];
  size_t len = 0;
  FILE *out;

  for (int i = 0; i < 44; i++) {
    snprintf(name, sizeof(name), "p%02d.example.com", i);
    add_binding(&f->st, name, "sg-edge-2", STATUS_PENDING);
  }
  for (int i = 0; i < 20; i++) {
    snprintf(name, sizeof(name), "f%02d.example.com", i);
    add_binding(&f->st, name, "sg-edge-1", STATUS_FAILED);
  }
  text = print_to_string(&f->st, false, false);
  assert_int_equal(count_lines_with(text, "  pending  "), 20);
  assert_int_equal(count_lines_with(text, "  failed   "), 20);
  assert_contains(text, "  \xe2\x80\xa6 and 25 more (--all)\n");
  assert_contains(text, "  \xe2\x80\xa6 and 1 more (--all)\n");
  /* the first ones, in the file's order */
  assert_contains(text, "slow.example.com");
  assert_null(strstr(text, "p19.example.com"));
  assert_contains(text, "p18.example.com");
  free(text);

  out = open_memstream(&text, &len);
  assert_non_null(out);
  assert_int_equal(
      status_print(&f->st, out, &(struct status_print_opts){.all = true}), 0);
  assert_int_equal(fclose(out), 0);
  assert_int_equal(count_lines_with(text, "  pending  "), 45);
  assert_int_equal(count_lines_with(text, "  failed   "), 21);
  assert_null(strstr(text, "more (--all)"));
  free(text);

  text = print_to_string(&f->st, true, false);
  assert_int_equal(status_from_json(text, strlen(text), &back), 0);
  assert_int_equal(back.nbindings, f->st.nbindings);
  status_free(&back);
  free(text);
}

static void test_print_json(void **state)
{
  struct fixture *f = *state;
  struct status back;
  char *text = print_to_string(&f->st, true, true);

  assert_int_equal(text[0], '{');
  assert_null(strchr(text, '\033')); /* never colours in JSON */
  assert_contains(text, "\"started\": \"2026-03-01T12:00:00.250Z\"");
  assert_contains(text, "\"state\": \"failed\"");
  assert_int_equal(status_from_json(text, strlen(text), &back), 0);
  assert_status_equal(&f->st, &back);
  status_free(&back);
  free(text);
}

/* A byte sequence that is not UTF-8 (from an API message) must not make
 * the status unwritable. */
static void test_invalid_utf8_written(void **state)
{
  struct fixture *f = *state;
  struct status back;

  free(f->st.bindings[1].error_msg);
  f->st.bindings[1].error_msg = xstrdup("bad \xff\xfe byte");
  assert_int_equal(status_write(f->dir, &f->st), 0);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_string_equal(back.bindings[1].error_msg, "bad ?? byte");
  status_free(&back);
}

/* Drop to an unprivileged user when root (root ignores directory modes). */
static void become_unprivileged(void)
{
  if (geteuid() != 0)
    return;
  if (setgid(65534) != 0 || setuid(65534) != 0)
    _exit(99);
}

static void test_unwritable_dir(void **state)
{
  struct fixture *f = *state;
  char msg[512] = "";
  int fds[2];
  pid_t pid;
  int wst;

  assert_int_equal(status_write(f->dir, &f->st), 0);
  assert_int_equal(chmod(f->dir, 0555), 0);
  assert_int_equal(pipe(fds), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int rc;

    close(fds[0]);
    become_unprivileged();
    rc = status_write(f->dir, &f->st);
    statefile_strerror(rc, "write", f->path, msg, sizeof(msg));
    if (write(fds[1], msg, strlen(msg)) < 0)
      _exit(98);
    _exit(rc == -EACCES ? 0 : 1);
  }
  close(fds[1]);
  assert_true(read(fds[0], msg, sizeof(msg) - 1) > 0);
  close(fds[0]);
  assert_int_equal(waitpid(pid, &wst, 0), pid);
  chmod(f->dir, 0700);
  assert_true(WIFEXITED(wst));
  assert_int_equal(WEXITSTATUS(wst), 0);
  assert_contains(msg, f->path);
  assert_contains(msg, "not writable");
  /* the previous file is intact */
  {
    struct status back;

    assert_int_equal(status_read(f->dir, &back), 0);
    assert_status_equal(&f->st, &back);
    status_free(&back);
  }
}

/* A fleet-sized file: 100,000 bindings write and read back (the ctest
 * timeout bounds the time; the parser streams, no JSON tree). */
static void test_hundred_thousand(void **state)
{
  struct fixture *f = *state;
  struct status big = {0}, back;
  const size_t n = 100000;
  clock_t t0 = clock();

  big.pass.outcome = xstrdup("converged");
  big.bindings = calloc(n, sizeof(*big.bindings));
  assert_non_null(big.bindings);
  for (size_t i = 0; i < n; i++) {
    struct status_binding *b = &big.bindings[i];
    char dom[64];

    snprintf(dom, sizeof(dom), "host-%zu.example.com", i);
    b->account = xstrdup("sg-prod");
    b->certificate = xstrdup("star-example-2026");
    b->certificate_id = xstrdup("a27be832f2e9441c8127fe48e3b5ac67");
    b->gateway = xstrdup(i % 2 ? "sg-edge-1" : "sg-edge-2");
    b->instance_id = xstrdup("f0fa1789-3b76-433b-a787-9892951c620e");
    b->domain = xstrdup(dom);
    b->state = i % 1000 == 0 ? STATUS_FAILED : STATUS_CONVERGED;
    big.nbindings++;
  }
  assert_int_equal(status_write(f->dir, &big), 0);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_status_equal(&big, &back);
  print_message("100k bindings: write + read %.2f s CPU\n",
                (double)(clock() - t0) / CLOCKS_PER_SEC);
  status_free(&back);
  status_free(&big);
}

/* What an earlier pass knew, looked up by (certificate_id, instance_id,
 * domain), copied whole into the next status, counted by state. */
static void test_index_copy_count(void **state)
{
  struct fixture *f = *state;
  struct status_index ix;
  struct status_binding copy;
  struct status one = {0};
  const struct status_binding *b;
  uint64_t n[STATUS_FAILED + 1];
  size_t pos = SIZE_MAX;

  add_binding(&f->st, "a.example.com", "sg-edge-1", STATUS_CONVERGED);
  free(f->st.bindings[3].certificate_id);
  f->st.bindings[3].certificate_id = xstrdup("0000another");
  status_count(&f->st, n);
  assert_int_equal(n[STATUS_CONVERGED], 2);
  assert_int_equal(n[STATUS_PENDING], 1);
  assert_int_equal(n[STATUS_FAILED], 1);

  assert_int_equal(status_index_build(&f->st, &ix), 0);
  assert_int_equal(ix.n, 4);
  b = status_index_find(&ix, "a27be832f2e9441c8127fe48e3b5ac67",
                        "f0fa1789-3b76-433b-a787-9892951c620e",
                        "bad.example.com", &pos);
  assert_ptr_equal(b, &f->st.bindings[1]);
  assert_ptr_equal(ix.sorted[pos], b);
  /* same domain, another certificate: another binding */
  b = status_index_find(&ix, "0000another",
                        "f0fa1789-3b76-433b-a787-9892951c620e", "a.example.com",
                        NULL);
  assert_ptr_equal(b, &f->st.bindings[3]);
  assert_null(status_index_find(&ix, "a27be832f2e9441c8127fe48e3b5ac67",
                                "f0fa1789-3b76-433b-a787-9892951c620e",
                                "a.example.com", NULL));
  assert_null(status_index_find(&ix, "a27be832f2e9441c8127fe48e3b5ac67",
                                "another-instance", "bad.example.com", NULL));
  assert_null(status_index_find(&ix, NULL, "x", "y", NULL));

  assert_int_equal(status_binding_copy(&copy, &f->st.bindings[1]), 0);
  assert_true(copy.error_msg != f->st.bindings[1].error_msg);
  assert_string_equal(copy.error_msg, "The URL domain does not exist");
  assert_string_equal(copy.request_id, "5b1c2f0e9d8a4b7c");
  assert_int_equal(copy.state, STATUS_FAILED);
  assert_int_equal(copy.attempts, 3);
  one.bindings = malloc(sizeof(copy));
  assert_non_null(one.bindings);
  one.bindings[0] = copy;
  one.nbindings = 1;
  status_free(&one); /* frees the copy's strings, not the original's */
  assert_string_equal(f->st.bindings[1].error_msg,
                      "The URL domain does not exist");
  status_index_free(&ix);
  assert_null(ix.sorted);

  /* nothing known yet */
  assert_int_equal(status_index_build(NULL, &ix), 0);
  assert_null(status_index_find(&ix, "a", "b", "c", NULL));
  status_index_free(&ix);
}

/* The served entries of a binding: written only when there are some, read
 * back field by field, copied deeply, refused without their address. */
static void test_served(void **state)
{
  struct fixture *f = *state;
  struct status_served ok = {.address = "127.0.0.1:8443",
                             .result = "ok",
                             .sha256 = "890f246f49d26dcdfedf77205a5eacb5",
                             .serial = "0A1B",
                             .subject = "CN=api.example.com",
                             .not_after = T0 + 86400,
                             .checked = T0};
  struct status_served down = {.address = "[::1]:8443",
                               .result = "unreachable",
                               .error = "connect: connection refused",
                               .checked = T0};
  struct status_binding copy;
  struct status back, one = {0};
  char *json;
  size_t len;

  assert_int_equal(status_to_json(&f->st, &json, &len), 0);
  assert_null(strstr(json, "served"));
  free(json);
  assert_int_equal(status_binding_add_served(&f->st.bindings[0], &ok), 0);
  assert_int_equal(status_binding_add_served(&f->st.bindings[0], &down), 0);
  assert_true(f->st.bindings[0].served[0].address != ok.address);
  assert_int_equal(status_write(f->dir, &f->st), 0);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_status_equal(&f->st, &back);
  assert_int_equal(back.bindings[0].nserved, 2);
  assert_int_equal(back.bindings[1].nserved, 0);
  assert_string_equal(back.bindings[0].served[0].address, "127.0.0.1:8443");
  assert_string_equal(back.bindings[0].served[0].result, "ok");
  assert_string_equal(back.bindings[0].served[0].sha256, ok.sha256);
  assert_string_equal(back.bindings[0].served[0].serial, "0A1B");
  assert_string_equal(back.bindings[0].served[0].subject, "CN=api.example.com");
  assert_true(back.bindings[0].served[0].not_after == T0 + 86400);
  assert_null(back.bindings[0].served[0].error);
  assert_string_equal(back.bindings[0].served[1].result, "unreachable");
  assert_null(back.bindings[0].served[1].sha256);
  assert_string_equal(back.bindings[0].served[1].error,
                      "connect: connection refused");
  assert_true(back.bindings[0].served[1].checked == T0);
  /* a deep copy outlives the original */
  assert_int_equal(status_binding_copy(&copy, &back.bindings[0]), 0);
  status_free(&back);
  assert_int_equal(copy.nserved, 2);
  assert_string_equal(copy.served[1].address, "[::1]:8443");
  one.bindings = malloc(sizeof(copy));
  assert_non_null(one.bindings);
  one.bindings[0] = copy;
  one.nbindings = 1;
  status_free(&one);
  /* an entry without its address is not a file status_write made */
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"converged\",\"served\":[{\"result\":\"ok\"}]}]}",
              -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"converged\",\"served\":[{\"address\":\"a\","
              "\"result\":\"ok\",\"not_after\":\"x\"}]}]}",
              -EBADMSG);
  expect_read(f,
              "{\"version\":1," PASS_OK ",\"bindings\":[{" BIND_OK
              "\"converged\",\"served\":[{\"address\":\"a\","
              "\"result\":\"ok\"}]}]}",
              0);
}

/* Each certificate's end: kept through the file, printed as days left
 * from now (highlighted within its warning days, EXPIRED once over), an
 * unknown end not printed; the file also says it for people. */
static void test_certificates_days_left(void **state)
{
  struct fixture *f = *state;
  int64_t now = (int64_t)time(NULL);
  struct status_cert certs[4] = {
      {.certificate = "far",
       .certificate_id = "a27be832f2e9441c8127fe48e3b5ac67",
       .account = "prod",
       .not_after = now + 43 * 86400 + 3600,
       .expiry_warning_days = 21},
      {.certificate = "near",
       .certificate_id = "b27be832f2e9441c8127fe48e3b5ac67",
       .account = "prod",
       .not_after = now + 3 * 86400 + 3600,
       .expiry_warning_days = 21},
      {.certificate = "gone",
       .certificate_id = "c27be832f2e9441c8127fe48e3b5ac67",
       .account = "prod",
       .not_after = 1772366400,
       .expiry_warning_days = 21},
      {.certificate = "unknown", .account = "prod"},
  };
  struct status back;
  char *text;

  f->st.certs = certs;
  f->st.ncerts = 4;
  f->st.pass.ended_ms = (now - 60) * 1000;
  assert_int_equal(status_write(f->dir, &f->st), 0);
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "  certificate far (a27be832f2e9441c8127fe48e3b5ac67)"
                        ": 43 days left, until ");
  assert_contains(text, "  certificate near (b27be832f2e9441c8127fe48e3b5ac67)"
                        ": expires in 3 days, on ");
  assert_contains(text, "  certificate gone (c27be832f2e9441c8127fe48e3b5ac67)"
                        ": EXPIRED on 2026-03-01\n");
  assert_null(strstr(text, "certificate unknown"));
  free(text);
  text = print_to_string(&f->st, false, true);
  assert_contains(text, "\033[33mexpires in 3 days");
  assert_contains(text, "\033[31mEXPIRED on 2026-03-01");
  free(text);
  text = print_to_string(&f->st, true, false);
  assert_contains(text, "\"not_after_at\": \"2026-03-01T12:00:00.000Z\"");
  assert_contains(text, "\"days_left\": 43");
  assert_contains(text, "\"days_left\": null");
  free(text);
  f->st.certs = NULL; /* the fixture's status does not own them */
  f->st.ncerts = 0;

  assert_int_equal(status_read(f->dir, &back), 0);
  assert_int_equal(back.ncerts, 4);
  for (size_t i = 0; i < 4; i++) {
    assert_string_equal(back.certs[i].certificate, certs[i].certificate);
    assert_int_equal(back.certs[i].not_after, certs[i].not_after);
    assert_int_equal(back.certs[i].expiry_warning_days,
                     certs[i].expiry_warning_days);
  }
  assert_string_equal(back.certs[0].certificate_id, certs[0].certificate_id);
  assert_null(back.certs[3].certificate_id);
  status_free(&back);
  assert_null(back.certs);
}

#define LEFT_SHA                                                               \
  "d6451f0e9a3b7c2d8e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e760ab"

/* The objects certbind created for certificates the file no longer names:
 * written, read back, one line in the text and the array in --json; a
 * file without the key (an older certbind's) reads as none. */
static void test_left_objects(void **state)
{
  struct fixture *f = *state;
  struct status_left left[2] = {
      {.object_id = "d6459b0c8a7e4f3d2c1b0a9f8e7d60ab",
       .name = "cb_old_4c221453",
       .certificate = "old",
       .sha256 = LEFT_SHA},
      {.object_id = "e6459b0c8a7e4f3d2c1b0a9f8e7d60ab",
       .name = "cb_x_12345678",
       .certificate = "x",
       .sha256 = LEFT_SHA},
  };
  struct status back;
  char *text;

  text = print_to_string(&f->st, false, false);
  assert_null(strstr(text, "no longer in the file"));
  free(text);
  f->st.left = left;
  f->st.nleft = 2;
  assert_int_equal(status_write(f->dir, &f->st), 0);
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "  2 certificate objects certbind created are no "
                        "longer in the file: cb_old_4c221453, cb_x_12345678 "
                        "(delete them at APIG, or put their certificates "
                        "back in the file)\n");
  assert_null(strstr(text, LEFT_SHA));
  free(text);
  f->st.nleft = 1;
  text = print_to_string(&f->st, false, false);
  assert_contains(text, "  1 certificate object certbind created is no longer "
                        "in the file: cb_old_4c221453 (delete it at APIG, or "
                        "put its certificate back in the file)\n");
  free(text);
  text = print_to_string(&f->st, true, false);
  assert_contains(text, "\"left_objects\": [");
  assert_contains(text, "\"name\": \"cb_old_4c221453\"");
  free(text);
  f->st.left = NULL; /* the fixture's status does not own them */
  f->st.nleft = 0;

  assert_int_equal(status_read(f->dir, &back), 0);
  assert_int_equal(back.nleft, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_string_equal(back.left[i].object_id, left[i].object_id);
    assert_string_equal(back.left[i].name, left[i].name);
    assert_string_equal(back.left[i].certificate, left[i].certificate);
    assert_string_equal(back.left[i].sha256, LEFT_SHA);
  }
  status_free(&back);
  assert_null(back.left);

  expect_read(f, "{\"version\":1," PASS_OK ",\"bindings\":[]}", 0);
  assert_int_equal(status_read(f->dir, &back), 0);
  assert_int_equal(back.nleft, 0);
  status_free(&back);
  /* an element without its fields is not a status certbind wrote */
  expect_read(f, "{\"version\":1," PASS_OK ",\"left_objects\":[{}]}", -EBADMSG);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_round_trip_empty_and_extremes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_truncated_files_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_garbage_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_keys_ignored, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_print_text, setup, teardown),
      cmocka_unit_test_setup_teardown(test_print_refused_and_running, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_print_sanitises, setup, teardown),
      cmocka_unit_test_setup_teardown(test_print_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_print_per_state_limit, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_invalid_utf8_written, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hundred_thousand, setup, teardown),
      cmocka_unit_test_setup_teardown(test_index_copy_count, setup, teardown),
      cmocka_unit_test_setup_teardown(test_served, setup, teardown),
      cmocka_unit_test_setup_teardown(test_left_objects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_certificates_days_left, setup,
                                      teardown),
  };

  /* Times print in local time: pin it. */
  setenv("TZ", "UTC", 1);
  tzset();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
