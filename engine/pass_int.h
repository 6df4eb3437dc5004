/*
 * pass_int: the inside of a pass (pass.h), shared by the engine's pass*.c
 * files and by nothing else: engine/ is the only target whose sources see
 * it.
 */
#ifndef CERTBIND_PASS_INT_H
#define CERTBIND_PASS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "pass.h"
#include "plan.h"
#include "queue.h"

struct pass_cert;
struct pass_item;
struct pass_account;

struct pass {
  /* Results: pass_result() hands out res; its pointers point below. */
  struct pass_result res;
  char message[256]; /* res.message */
  struct plan plan;
  struct live_state live;

  /* What it works with (pass_deps). */
  uv_loop_t *loop;
  struct http *http;
  const struct config *cfg;
  struct ledger *ledger;
  struct metrics *metrics;
  const struct log *log;
  const struct pass_clock *clock; /* NULL: real time */
  struct pass_opts opts;

  struct queue queue;
  uv_timer_t timer;
  uv_timer_t soak;
  uint64_t soak_until_ns; /* when the rollout soak ends (soak_now_ns) */
  struct pass_account *accounts;
  struct pass_cert *certs;
  struct pass_item *items;
  size_t *binding_item; /* config binding -> plan item, SIZE_MAX: none */
  int phase;
  size_t reads_left;
  size_t in_flight;
  size_t pool_work;   /* jobs out on libuv's thread pool: page parses, the
                         wanted bindings' sort */
  size_t parse_bytes; /* bodies of the pages waiting for the pool */

  /* List entries held (the live state and the reads under way), and the
   * most the file explains (more is the server's doing: refused). */
  size_t live_entries;
  size_t live_entries_max;

  struct plan_wanted wanted; /* sorted while the reads are out (by_cert
                                NULL: not yet, or it failed) */
  size_t wave, nwaves;
  size_t *wave_end; /* plan item index where each wave ends */
  bool stopping;
  bool ledger_dirty;
  bool started;      /* pass_start() was called */
  bool free_pending; /* pass_free() waits for the handles to close */
  int open_handles;
  uint64_t progress_ms;
  uint64_t requests_planned;
  void (*done)(struct pass *p, void *arg);
  void *done_arg;
};

#endif
