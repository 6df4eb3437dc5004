/* SPDX-License-Identifier: MIT */
/*
 * apig-sim: a simulator of the Huawei Cloud APIG certificate-binding API
 * (docs/apig-api.md) for certbind's tests, demo and benchmarks.
 *
 * This is the one internal header of the simulator program. Modules:
 *   sim_map.c    string -> index hash map
 *   sim_world.c  the seed, the world model, bindings, visibility log, stats
 *   sim_conf.c   settings and faults (JSON in and out), random draws
 *   sim_auth.c   IAM tokens and AK/SK signature verification
 *   sim_certs.c  the certificates API: create/show/list/update/delete, PEM
 * checks sim_sched.c  event loops: one thread + MHD daemon + wake-up heap each
 *   sim_http.c   the libmicrohttpd access handler, routing, responses
 *   sim_dataplane.c  the data plane: per gateway a TLS listener (OpenSSL)
 *                serving, per SNI name, the certificate reads show bound
 *   sim_main.c   command line, TLS files, port file, signals
 *
 * Concurrency: --threads event loops, each a thread running its own MHD
 * daemon; every access to struct sim's world, settings, faults and stats
 * holds sim->mu. A loop's wake-up heap belongs to its thread alone.
 */
#ifndef CERTBIND_SIM_H
#define CERTBIND_SIM_H

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* ---- sim_map.c: open addressing, keys copied, no deletion ------------- */
struct sim_map {
  char **keys;
  size_t *vals;
  size_t cap;
  size_t len;
};

int sim_map_put(struct sim_map *m, const char *key, size_t val);
bool sim_map_get(const struct sim_map *m, const char *key, size_t *val);
void sim_map_free(struct sim_map *m);

/* ---- operations (stats, faults, permissions) -------------------------- */
enum sim_op {
  SIM_OP_TOKEN,
  SIM_OP_LIST,
  SIM_OP_ATTACH,
  SIM_OP_DETACH,
  SIM_OP_SHOW,
  SIM_OP_CERTS,  /* list of certificates (sim_certs.c) */
  SIM_OP_CREATE, /* certificate create, update, delete */
  SIM_OP_UPDATE,
  SIM_OP_DELETE,
  SIM_OP_ADMIN,
  SIM_OP_OTHER,
  SIM_OP_COUNT
};
#define SIM_OP_ANY (-1)

const char *sim_op_name(int op);
int sim_op_parse(const char *s); /* SIM_OP_ANY for "any", -2 if unknown */

#define SIM_PERM_LIST (1u << 0)
#define SIM_PERM_ATTACH (1u << 1)
#define SIM_PERM_DETACH (1u << 2)
#define SIM_PERM_SHOW (1u << 3)
#define SIM_PERM_CERTS (1u << 4) /* certificate create/update/delete */
#define SIM_PERM_ALL 0x1fu

/* ---- world ------------------------------------------------------------ */
struct sim_cred {
  char *ak;
  char *sk;
  unsigned perms;
  int fails;               /* consecutive AK/SK failures */
  int64_t locked_until_ms; /* CLOCK_REALTIME ms; 0 = not locked */
};

struct sim_user {
  char *domain;
  char *name;
  char *password;
  char id[33];
  unsigned perms;
};

struct sim_project {
  char *id;
  char *region;
  struct sim_cred *creds;
  size_t ncreds;
  struct sim_user *users;
  size_t nusers;
  double bucket;       /* throttling token bucket */
  int64_t bucket_ms;   /* last refill (monotonic ms) */
  bool bucket_started; /* first request fills the bucket */
};

struct sim_gateway {
  char *instance_id;
  size_t project;
  char **ingress; /* seed "ingress": data-plane listen addresses */
  size_t ningress;
};

/* One domain registered on one gateway: the unit that carries at most one
 * certificate. cert < 0 means unbound. */
struct sim_slot {
  size_t gw;
  char *domain;
  char *group_id;
  char *group_name;
  char id[33];
  long cert;
  /* the certificate the slot carried before its latest change of
   * certificate (-1: none): what a stale data-plane node still serves */
  long prev_cert;
  bool verify;
  /* position of (domain, instance_id) among all slots, fixed at seed load:
   * the per-certificate lists compare ranks instead of strings */
  size_t rank;
};

/* A slot in rank order. The slots of one domain are adjacent in that order
 * (one per gateway that has it, by instance id); run is the rank of the
 * domain's first slot. gw is here so that a domain's run is searched for a
 * gateway without touching the slots themselves. */
struct sim_ranked {
  size_t slot;
  size_t gw;
  size_t run;
};

/* One slot a write names, with the verify flag it asks for. */
struct sim_target {
  size_t slot;
  bool verify;
};

struct sim_cert {
  char *id;
  size_t project;
  char *name;
  char **san;
  size_t nsan;
  char *type;
  char *instance_id;
  char *common_name;
  char *not_before;
  char *not_after;
  char *create_time;
  char *signature_algorithm;
  char *algorithm_type;
  bool trusted_root_ca;
  /* the certificates API (sim_certs.c). Seeds without PEM have no
   * content: serial_number is then the id, and they never expire. */
  char *update_time;
  char *serial;       /* decimal; NULL = the id */
  char *issuer;       /* NULL = the test CA's name */
  char *cert_pem;     /* the chain as uploaded; never returned */
  char *key_pem;      /* never returned; wiped when freed */
  int64_t created_ms; /* sim_mono_ms() of a create; 0 = seed */
  int64_t deleted_ms; /* sim_mono_ms() of its delete; 0 = live */
  bool gone;          /* deleted, and reads have seen it go */
  /* bound slots as their ranks, ascending (sim->ranked maps a rank back to
   * its slot): merges and searches compare integers, not strings */
  size_t *ranks;
  size_t nslots;
  size_t capslots;
  int writes_in_flight;
  int peak_writes;
};

/* Applied change kept while it is not yet visible to reads. */
struct sim_change {
  int64_t at_ms;
  size_t slot;
  long old_cert;
  bool old_verify;
};

struct sim_token {
  char *value;
  size_t project;
  size_t user;
  int64_t issued_ms;
  int64_t expires_ms;
  bool revoked;
};

/* ---- settings and faults (sim_conf.c) --------------------------------- */
struct sim_settings {
  int64_t visibility_delay_ms;
  int lockout_failures;  /* lock after more than this many failures */
  int64_t lockout_ms;    /* lock duration */
  int64_t clock_skew_ms; /* allowed |X-Sdk-Date - now| */
  bool clock_check;      /* false = --clock-skew-ok (test only) */
  int64_t now_ms;        /* test-only clock override; 0 = real time */
  int64_t token_ttl_s;
  bool atomic_batches;
  bool noop_write_error; /* re-attach of a bound domain -> 400 APIG.3305 */
  double overlap_fail_rate;
  size_t max_batch; /* max domains[] entries per write */
  bool reject_unknown_fields;
  size_t cert_quota; /* certificates per project; 0 = no limit */
};

struct sim_fault_err {
  int op;
  double rate;
  int status;
  char code[32];
  char msg[160];
};

struct sim_fault_reset {
  int op;
  double rate;
};

#define SIM_MAX_FAULT_ERRS 16

/* Data-plane faults (sim_dataplane.c), per gateway or for all ("*"). */
enum sim_dp_fault {
  SIM_DP_NONE,
  SIM_DP_STALE,       /* the previous certificate, or a wrong one */
  SIM_DP_REFUSE,      /* close at accept */
  SIM_DP_RESET,       /* RST once the ClientHello arrives */
  SIM_DP_STALL,       /* accept, read, never answer */
  SIM_DP_EXPIRED,     /* a certificate for the name that has expired */
  SIM_DP_SELF_SIGNED, /* a self-signed certificate for the name */
  SIM_DP_HUGE_CHAIN,  /* the right leaf, then ~100 KB of chain */
  SIM_DP_COUNT
};
struct sim_dp_rule {
  char gw[80]; /* instance id, or "*" */
  int kind;    /* enum sim_dp_fault */
};
#define SIM_MAX_DP_RULES 16
enum sim_lat_kind { SIM_LAT_NONE, SIM_LAT_FIXED, SIM_LAT_UNIFORM };

struct sim_faults {
  enum sim_lat_kind lat_kind;
  int64_t lat_ms;
  int64_t lat_min_ms;
  int64_t lat_max_ms;
  double tail_percent;
  int64_t tail_ms;
  struct sim_fault_err errs[SIM_MAX_FAULT_ERRS];
  size_t nerrs;
  double throttle_rps; /* 0 = off */
  double throttle_burst;
  int retry_after_s; /* 0 = no Retry-After header */
  struct sim_fault_reset reset_before;
  struct sim_fault_reset reset_after;
  /* test control: a request it draws is held (its response undecided, a
   * write still in progress) until the fault set no longer holds its op */
  struct sim_fault_reset hold;
  int slow_op;
  double slow_rate;
  size_t slow_chunk;
  int64_t slow_interval_ms;
  struct sim_dp_rule dp[SIM_MAX_DP_RULES];
  size_t ndp;
};

void sim_settings_default(struct sim_settings *s);
void sim_faults_default(struct sim_faults *f);
/* Parse a settings / faults JSON object (a yajl tree) on top of *out.
 * On error returns -EINVAL and writes a reason into err. */
int sim_settings_parse(const yajl_val v, struct sim_settings *out, char *err,
                       size_t errlen);
int sim_faults_parse(const yajl_val v, struct sim_faults *out, char *err,
                     size_t errlen);
int sim_settings_gen(yajl_gen g, const struct sim_settings *s);
int sim_faults_gen(yajl_gen g, const struct sim_faults *f);

/* xoshiro-style generator: a --seed makes the draws repeatable. */
struct sim_rng {
  uint64_t s;
};
void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_unit(struct sim_rng *r); /* [0,1) */
bool sim_rng_hit(struct sim_rng *r, double rate);

/* ---- stats ------------------------------------------------------------ */
#define SIM_MAX_STATUS 24
struct sim_status_count {
  int status;
  uint64_t n;
};

struct sim_stats {
  struct sim_status_count by_op[SIM_OP_COUNT][SIM_MAX_STATUS];
  uint64_t requests;
  uint64_t auth_failures;
  uint64_t in_flight;
  uint64_t peak_in_flight;
  uint64_t writes_total; /* write requests applied (204) */
  uint64_t writes_noop;  /* applied writes that changed nothing */
  uint64_t bindings_changed;
  uint64_t unbound_transitions;
  uint64_t overlap_rejections;
  uint64_t resets;
  uint64_t throttled;
  uint64_t injected_errors;
  uint64_t tls_connections; /* HTTPS connections that made a request */
  uint64_t tls_resumed;     /* of those, the ones that resumed a session */
};

/* ---- event loops (sim_sched.c) --------------------------------------- */
struct sim_wake {
  int64_t at_ns;
  struct MHD_Connection *conn;
};

/* One thread, one MHD daemon in external epoll mode, one heap of wake-up
 * deadlines. The heap is touched only by the loop's own thread (handlers
 * run there), so it needs no lock. */
struct sim_loop {
  struct sim *sim;
  struct MHD_Daemon *daemon;
  pthread_t thread;
  int epfd;    /* the daemon's epoll fd and wake_fd */
  int wake_fd; /* eventfd: stop */
  const bool *stopping;
  bool no_pwait2; /* epoll_pwait2 missing: millisecond waits */
  struct sim_wake *heap;
  size_t len;
  size_t cap;
  bool started;
};

/* Start the loop's thread (epfd and wake_fd must be -1 before). */
int sim_loop_start(struct sim_loop *l, struct MHD_Daemon *daemon,
                   bool *stopping);
/* From a handler on l's thread: resume conn (already suspended by the
 * caller) at CLOCK_MONOTONIC at_ns. -ECANCELED once stopping: the caller
 * then resumes the connection itself. */
int sim_loop_add(struct sim_loop *l, int64_t at_ns,
                 struct MHD_Connection *conn);
/* After *stopping was set: wake the thread, which resumes every parked
 * connection and exits; join it and free the heap. */
void sim_loop_stop(struct sim_loop *l);
int64_t sim_sched_now_ns(void); /* CLOCK_MONOTONIC */

/* ---- the simulator ---------------------------------------------------- */
struct sim_options {
  const char *listen;
  const char *port_file;
  const char *seed_file;
  const char *tls_cert;
  const char *tls_key;
  int64_t visibility_delay_ms; /* -1 = from seed */
  int64_t latency_ms;          /* -1 = from seed */
  int64_t token_ttl_s;         /* -1 = from seed */
  uint64_t seed;
  unsigned threads;
  bool log_requests;
  bool clock_skew_ok;
  const char *faults_json;    /* --faults: replaces the seed's faults */
  const char *settings_json;  /* --settings: merged over the seed's */
  const char *tls_priorities; /* NULL = sim_http.c's default */
  const char *data_plane;     /* listen address of gateways without ingress */
  const char *data_plane_port_file;
};

struct sim_item;      /* sim_http.c */
struct sim_dataplane; /* sim_dataplane.c */

struct sim {
  pthread_mutex_t mu;
  /* HTTPS: the key of the TLS 1.3 session tickets every loop issues (a
   * client may resume on any loop's socket); set before the loops start */
  gnutls_datum_t ticket_key;
  /* held for reading while a response renders world strings outside mu;
   * written (after mu) only by /__sim/reset, which frees them */
  pthread_rwlock_t world_rw;
  struct sim_options opt;
  /* world */
  struct sim_project *projects;
  size_t nprojects;
  struct sim_gateway *gws;
  size_t ngws;
  struct sim_cert *certs; /* created ones appended; deleted ones stay */
  size_t ncerts;
  size_t capcerts;
  struct sim_slot *slots;
  size_t nslots;
  struct sim_ranked *ranked; /* rank -> slot (see sim_slot.rank) */
  /* domain -> the rank of its first slot: one lookup finds the domain on
   * every gateway (no per-gateway key to build or hash) */
  struct sim_map domain_ix;
  /* per slot, the rendered JSON of its list item (sim_http.c), made on
   * first use under world_rw (read) and published with a CAS; freed
   * with the slots (sim_world_free, under world_rw written) */
  _Atomic(struct sim_item *) *items;
  struct sim_map project_ix;
  struct sim_map gw_ix;
  struct sim_map cert_ix;
  struct sim_map ak_ix; /* ak -> project << 16 | cred */
  struct sim_change *log;
  size_t nlog;
  size_t caplog;
  struct sim_token *tokens;
  size_t ntokens;
  size_t captokens;
  struct sim_map token_ix;
  /* behaviour */
  struct sim_settings settings;
  struct sim_faults faults;
  struct sim_rng rng;
  struct sim_stats stats;
  uint64_t request_counter;
  bool stopping;       /* __atomic access */
  uint64_t generation; /* bumped by /__sim/reset */
  /* unix s (real clock) a seed's dateless certificates count from: set by
   * the first load and kept, so that /__sim/reset makes the same world */
  int64_t dates_base_s;
  struct sim_loop *loops; /* opt.threads of them */
  size_t nloops;
  struct sim_dataplane *dp; /* NULL without listeners; fixed once started */
};

/* sim_world.c. Seed loading reads opt.seed_file; all other functions
 * expect sim->mu held. */
int sim_world_load(struct sim *sim, char *err, size_t errlen);
void sim_world_free(struct sim *sim);
/* The command-line overrides on top of the seed's settings and faults.
 * Fails (-EINVAL, reason in err) only for a bad --faults/--settings. */
int sim_apply_options(struct sim *sim, char *err, size_t errlen);
/* Back to the seed (and the command line): bindings, tokens, lockouts,
 * settings, faults; statistics zeroed. */
int sim_reset(struct sim *sim, char *err, size_t errlen);
int64_t sim_now_ms(const struct sim *sim); /* realtime, or the override */
int64_t sim_mono_ms(void);
/* A live certificate (not deleted); sim_find_cert_any also finds deleted
 * ones (reads still show them during the visibility delay). */
long sim_find_cert(const struct sim *sim, const char *id);
long sim_find_cert_any(const struct sim *sim, const char *id);
long sim_find_gw(const struct sim *sim, const char *instance_id);
long sim_find_slot(const struct sim *sim, size_t gw, const char *domain);
/* The run (rank of the first slot) of a domain on any gateway, -1 if no
 * gateway has it; then its slot on gateway gw, -1 if gw does not have it.
 * A write looks a domain up once for all of its instance ids. */
long sim_find_domain(const struct sim *sim, const char *domain);
long sim_domain_slot(const struct sim *sim, long run, size_t gw);
long sim_find_project(const struct sim *sim, const char *id);
bool sim_san_covers(const struct sim_cert *c, const char *domain);
/* The certificate reads show on slot now (the visibility delay applied),
 * -1 if none. */
long sim_slot_visible_cert(struct sim *sim, size_t slot);
/* Bind slot to cert (or unbind with cert < 0); keeps the per-certificate
 * lists, the stats and the visibility log. Returns true if anything
 * changed. */
bool sim_slot_set(struct sim *sim, size_t slot, long cert, bool verify);
/* What n calls of sim_slot_set(t[i].slot, cert, t[i].verify) in order do
 * (same slots, flags, stats and visibility log), but each certificate's
 * list is updated once, by one pass over it, instead of one binary search
 * and memmove per slot. Returns how many of the calls changed something. */
size_t sim_slots_set(struct sim *sim, const struct sim_target *t, size_t n,
                     long cert);
/* The index in certs[cert].ranks of the first slot with that domain (or
 * where it would be): the slots of one domain are adjacent there. */
size_t sim_cert_domain_start(const struct sim *sim, size_t cert,
                             const char *domain);
/* The i-th bound slot of a certificate, in list order. */
static inline size_t sim_cert_slot(const struct sim *sim, size_t cert, size_t i)
{
  return sim->ranked[sim->certs[cert].ranks[i]].slot;
}
/* The slots of a certificate visible to reads now (state as of now -
 * visibility delay), sorted. *out is malloc'd; verify flags in *vflags. */
int sim_visible(struct sim *sim, size_t cert, size_t **out, bool **vflags,
                size_t *n);
void sim_stats_count(struct sim *sim, int op, int status);
int sim_stats_gen(yajl_gen g, const struct sim *sim);
int sim_state_gen(yajl_gen g, const struct sim *sim);

/* sim_certs.c: the certificates API (sim->mu held). */
struct sim_cert_reply {
  int status; /* 0 = closed by a reset fault */
  char code[32];
  char msg[256];
  char *body; /* malloc'd JSON or NULL */
  size_t body_len;
};
/* SIM_OP_CERTS/CREATE/UPDATE/DELETE of project (cert_id for update and
 * delete); query arguments are read from conn. */
void sim_certs_handle(struct sim *sim, int op, long project,
                      const char *cert_id, const char *body, size_t len,
                      struct MHD_Connection *conn, struct sim_cert_reply *out);
/* Show: 200 and the certificate's JSON, or 404 while a create is not yet
 * visible or a delete is (the visibility delay). */
void sim_certs_show(struct sim *sim, long cert, struct sim_cert_reply *out);
/* A seed certificate's cert_pem/key_pem (or cert_file/key_file, relative
 * to seed_dir): its fields come from the PEM. 0, or -EINVAL with err. */
int sim_cert_seed_pem(struct sim *sim, struct sim_cert *c, yajl_val v,
                      const char *seed_dir, char *err, size_t errlen);
void sim_cert_free_content(struct sim_cert *c);
/* The certificates (without content) for /__sim/state. */
int sim_certs_state_gen(yajl_gen g, const struct sim *sim);

/* sim_auth.c (sim->mu held) */
struct sim_auth_result {
  int status; /* 0 = authenticated */
  const char *code;
  char msg[240];
  long project;
  unsigned perms;
};
struct sim_req_view {
  struct MHD_Connection *conn;
  const char *method;
  const char *raw_path;
  const char *raw_query;
  const char *body;
  size_t body_len;
};
void sim_auth_check(struct sim *sim, const struct sim_req_view *rv,
                    struct sim_auth_result *out);
/* IAM password token. On success *token is a malloc'd string and
 * *body the malloc'd JSON response. Returns HTTP status. */
int sim_iam_token(struct sim *sim, const char *body, size_t len, bool catalog,
                  char **token, char **resp, size_t *resp_len);
size_t sim_tokens_revoke(struct sim *sim, long project);

/* sim_http.c */
int sim_http_start(struct sim *sim, const char *tls_cert_pem,
                   const char *tls_key_pem, uint16_t *port);
void sim_http_stop(struct sim *sim);

/* sim_dataplane.c. Start: per gateway one listener for each seed ingress
 * address (else opt.data_plane, if set), the port file written once all
 * listen, then one thread serving them all. 0 with no listener to make;
 * -errno with a reason in err. Stop joins the thread and frees it all. */
int sim_dataplane_start(struct sim *sim, char *err, size_t errlen);
void sim_dataplane_stop(struct sim *sim);
/* GET /__sim/dataplane: listeners and counters (no lock needed). */
int sim_dataplane_gen(yajl_gen g, const struct sim *sim);
/* The "dataplane" and "stale_gateway" fault keys (sim_conf.c calls them):
 * parse on top of f (-EINVAL with err), and the "dataplane" output. */
int sim_dp_faults_parse(const char *key, yajl_val v, struct sim_faults *f,
                        char *err, size_t errlen);
int sim_dp_faults_gen(yajl_gen g, const struct sim_faults *f);

/* JSON helpers (sim_conf.c) */
int sim_gen_str(yajl_gen g, const char *s);
int sim_gen_kv_str(yajl_gen g, const char *k, const char *v);
int sim_gen_kv_int(yajl_gen g, const char *k, long long v);
int sim_gen_kv_bool(yajl_gen g, const char *k, bool v);
int sim_gen_kv_double(yajl_gen g, const char *k, double v);
/* Parse an untrusted request body (len bytes, no NUL needed) with
 * yajl_tree after refusing nesting deeper than 32: yajl_tree_free
 * recurses, so depth is bounded before anything is built. NULL if invalid. */
yajl_val sim_json_parse(const char *buf, size_t len);
/* Copies yajl_gen's buffer into a malloc'd string. */
int sim_gen_take(yajl_gen g, char **out, size_t *len);

#endif
