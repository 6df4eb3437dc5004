/* SPDX-License-Identifier: MIT */
/*
 * conn_cost URL CA_FILE N: client CPU of a request on a new TLS connection,
 * through certbind's own HTTP engine (net/http.c). Three rounds of N
 * GETs at once: new connections (full handshakes: no session yet), new
 * connections again (sessions resumed when the server issues tickets),
 * then pooled connections. Prints CPU (getrusage) per request per round.
 * bench/conn_cost.sh runs it against apig-sim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "http.h"

struct run {
  int done, failed;
};

static void on_done(struct http_request *rq, struct http_response *rs,
                    void *arg)
{
  struct run *r = arg;

  (void)rq;
  r->done++;
  if (rs->status != 200) {
    r->failed++;
    fprintf(stderr, "conn_cost: status %ld: %s\n", rs->status, rs->error);
  }
}

static double cpu_s(void)
{
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
  static const char *const names[] = {"new connection, full handshake",
                                      "new connection, session resumed",
                                      "pooled connection"};
  int n = argc == 4 ? atoi(argv[3]) : 0;
  struct http_opts o = {.ca_file = argc == 4 ? argv[2] : NULL};
  struct http_request *rq;
  struct http h;
  uv_loop_t loop;

  if (n <= 0) {
    fprintf(stderr, "usage: conn_cost URL CA_FILE N\n");
    return 64;
  }
  rq = calloc((size_t)n, sizeof(*rq));
  if (!rq || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
      uv_loop_init(&loop) != 0 || http_init(&h, &loop, &o) != 0)
    return 1;
  for (int round = 0; round < 3; round++) {
    struct run r = {0};
    double c0 = cpu_s();
    for (int i = 0; i < n; i++) {
      rq[i] = (struct http_request){.method = "GET", .url = argv[1]};
      rq[i].fresh_connection = round < 2;
      if (http_submit(&h, &rq[i], on_done, &r) != 0)
        return 1;
    }
    while (r.done < n)
      uv_run(&loop, UV_RUN_ONCE);
    if (r.failed)
      return 1;
    printf("%-32s %4d requests  %6.0f us CPU per request\n", names[round], n,
           (cpu_s() - c0) * 1e6 / n);
  }
  return 0; /* the process ends: the engine is not closed */
}
