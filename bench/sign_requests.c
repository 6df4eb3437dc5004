/* SPDX-License-Identifier: MIT */
/*
 * sign_requests: turn a list of APIG requests into a curl config file
 * (`curl --parallel -K FILE`) whose every request carries the same AK/SK
 * headers certbind would send (api/sign.h: Host, X-Sdk-Date and, with a
 * body, Content-Type signed; X-Project-Id unsigned).
 *
 *   sign_requests BASE_URL PROJECT_ID AK_FILE SK_FILE CA_FILE < reqs.tsv
 *
 * Input lines: METHOD TAB PATH[?QUERY] [TAB BODY]. The body is sent with
 * --data-binary exactly as given. X-Sdk-Date is the current time: the
 * server accepts it for 15 minutes, so generate the file just before the
 * run. Benchmark helper only: the secret key is read from a file and the
 * output holds signatures, so keep it in a private directory.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sign.h"

static int read_secret(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  size_t n;

  if (!f)
    return -errno;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    n--;
  buf[n] = '\0';
  return n ? 0 : -EINVAL;
}

/* A curl config string: double-quoted, with \ and " escaped. */
static void put_quoted(FILE *out, const char *s)
{
  fputc('"', out);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    fputc(*s, out);
  }
  fputc('"', out);
}

static void put_option(FILE *out, const char *name, const char *value)
{
  fputs(name, out);
  fputs(" = ", out);
  put_quoted(out, value);
  fputc('\n', out);
}

static void put_header(FILE *out, const char *name, const char *value)
{
  fputs("header = ", out);
  fputc('"', out);
  fputs(name, out);
  fputs(": ", out);
  for (const char *s = value; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', out);
    fputc(*s, out);
  }
  fputs("\"\n", out);
}

static int sign_one(FILE *out, const char *base, const char *host,
                    const char *project, const char *ak, const char *sk,
                    const char *ca, const char *date, bool first, char *line)
{
  char *method = line, *target, *body = NULL, *query = NULL, *url = NULL;
  char *authz = NULL;
  struct sign_header h[3];
  size_t nh = 0;
  int rc;

  target = strchr(line, '\t');
  if (!target)
    return -EINVAL;
  *target++ = '\0';
  body = strchr(target, '\t');
  if (body)
    *body++ = '\0';
  if (asprintf(&url, "%s%s", base, target) < 0)
    return -ENOMEM;
  query = strchr(target, '?');
  if (query)
    *query++ = '\0';
  if (body && *body)
    h[nh++] = (struct sign_header){"Content-Type", "application/json"};
  h[nh++] = (struct sign_header){"Host", host};
  h[nh++] = (struct sign_header){SIGN_DATE_HEADER, date};
  struct sign_input in = {
      .method = method,
      .path = target,
      .query = query,
      .headers = h,
      .nheaders = nh,
      .body = body && *body ? body : NULL,
      .body_len = body ? strlen(body) : 0,
      .sdk_date = date,
  };
  rc = sign_authorization(&in, ak, sk, strlen(sk), &authz);
  if (rc == 0) {
    if (!first)
      fputs("next\n", out); /* between requests: a trailing one is an error */
    fputs("silent\nshow-error\n", out);
    put_option(out, "url", url);
    put_option(out, "request", method);
    put_header(out, "Host", host);
    put_header(out, SIGN_DATE_HEADER, date);
    put_header(out, "X-Project-Id", project);
    put_header(out, "Authorization", authz);
    put_header(out, "Expect", ""); /* as certbind: no 100-continue */
    if (body && *body) {
      put_header(out, "Content-Type", "application/json");
      put_option(out, "data-binary", body);
    }
    put_option(out, "cacert", ca);
    put_option(out, "output", "/dev/null");
    put_option(out, "write-out", "%{http_code} %{num_connects}\\n");
  }
  free(authz);
  free(url);
  return rc;
}

int main(int argc, char **argv)
{
  char ak[256], sk[256], date[SIGN_DATE_LEN + 1];
  const char *base, *host;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long n = 0;

  if (argc != 6) {
    fprintf(stderr,
            "usage: %s BASE_URL PROJECT_ID AK_FILE SK_FILE CA_FILE "
            "< requests.tsv > curl.cfg\n",
            argv[0]);
    return 64;
  }
  base = argv[1];
  if (strncmp(base, "https://", 8) != 0) {
    fprintf(stderr, "sign_requests: BASE_URL must be https://host[:port]\n");
    return 64;
  }
  host = base + 8;
  if (read_secret(argv[3], ak, sizeof ak) < 0 ||
      read_secret(argv[4], sk, sizeof sk) < 0) {
    fprintf(stderr, "sign_requests: cannot read the key files\n");
    return 1;
  }
  if (sign_format_date(time(NULL), date) < 0)
    return 1;
  while ((len = getline(&line, &cap, stdin)) > 0) {
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (!len)
      continue;
    if (sign_one(stdout, base, host, argv[2], ak, sk, argv[5], date, n == 0,
                 line) < 0) {
      fprintf(stderr, "sign_requests: line %ld: cannot sign\n", n + 1);
      free(line);
      return 1;
    }
    n++;
  }
  free(line);
  memset(sk, 0, sizeof sk);
  return fflush(stdout) == 0 ? 0 : 1;
}
