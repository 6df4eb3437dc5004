/* SPDX-License-Identifier: MIT */
/*
 * config: the desired-state file (docs/cli.md, version 1), loaded with libyaml
 * into a plain, validated C model.
 *
 * The model is immutable once loaded. Indexes (account, gateway,
 * certificate) refer into the arrays of the same struct config. Secret
 * values are read from their files or environment variables at load time
 * and held only here, in memory; nothing in this module ever prints them.
 */
#ifndef CERTBIND_CONFIG_H
#define CERTBIND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_FILE_SIZE (4u * 1024u * 1024u)
#define CONFIG_MAX_DEPTH 32

enum config_auth_method {
  CONFIG_AUTH_AKSK,
  CONFIG_AUTH_TOKEN,
  CONFIG_AUTH_PASSWORD,
};

enum config_mode {
  CONFIG_MODE_UPSERT, /* attach only */
  CONFIG_MODE_SYNC,   /* also detach what certbind owns */
};

/* A secret's value, without a trailing newline. NULL when not configured. */
struct config_secret {
  char *value;
  size_t len;
  /* "KIND WHERE" as the file gives it: "file /path", "env NAME" or
   * "credential NAME"; safe to print */
  char *source;
  /* the file read: a file: secret's path, or a credential's full path
   * ($CREDENTIALS_DIRECTORY/NAME); NULL for env: */
  char *path;
};

struct config_limits {
  double requests_per_second; /* default 5 */
  uint32_t burst;             /* default 10 */
  uint32_t max_in_flight;     /* default 32 */
};

struct config_account {
  char *name;
  char *region;
  char *project_id; /* 32 alphanumerics */
  char *endpoint; /* always set: default https://apig.<region>.myhuaweicloud.com
                   */
  enum config_auth_method auth_method;
  struct config_secret access_key; /* aksk */
  struct config_secret secret_key; /* aksk */
  struct config_secret token;      /* token */
  struct config_secret password;   /* password */
  char *iam_endpoint;              /* password: default
                                      https://iam.<region>.myhuaweicloud.com */
  char *user;                      /* password */
  char *domain;                    /* password: the IAM account (domain) name */
  char *ca_file;                   /* tls.ca_file, or NULL */
  struct config_limits limits;
};

struct config_gateway {
  char *name;
  size_t account; /* index into config.accounts */
  char *instance_id;
};

struct config_certificate {
  char *name;
  size_t account; /* index into config.accounts */
  char *id;       /* 32 alphanumerics */
};

/* One expanded binding: (certificate, gateway, domain) + client verification.
 * Domains are stored normalised: lowercase A-labels (an IDN's U-labels
 * converted), no trailing dot, a leading "*." kept. line/col point at the
 * domain's scalar. */
struct config_binding {
  size_t certificate; /* index into config.certificates */
  size_t gateway;     /* index into config.gateways */
  char *domain;
  bool verify_client;
  uint32_t line;
  uint32_t col;
};

struct config_policy {
  enum config_mode mode;      /* required */
  uint32_t batch_size;        /* 1..500, default 50 */
  double max_detach_ratio;    /* 0..1, default 0.3 */
  uint32_t max_detach_count;  /* default 100 */
  uint32_t confirm_timeout_s; /* default 60 */
  /* first re-read of a certificate after its writes (later re-reads back
   * off from max(this, 100 ms)); 0..60000, default 1000 */
  uint32_t confirm_delay_ms;
};

struct config_retry {
  uint32_t max_attempts;  /* default 6 */
  uint32_t base_delay_ms; /* default 500 */
  uint32_t max_delay_ms;  /* default 60000 */
};

/* A wave's cumulative size: a count, or a share of the pass (0 < share <= 1) */
struct config_wave {
  bool is_share;
  uint32_t count;
  double share;
};

struct config_rollout {
  bool enabled; /* the rollout section is present */
  struct config_wave *waves;
  size_t nwaves;
  uint32_t soak_s;            /* default 30 */
  double abort_failure_ratio; /* default 0.1 */
};

struct config_daemon {
  uint32_t resync_interval_s; /* default 300 */
  char *state_dir;            /* default /var/lib/certbind */
  char *metrics_file;         /* optional, NULL when absent */
};

struct config {
  char *path;
  struct config_account *accounts;
  size_t naccounts;
  struct config_gateway *gateways;
  size_t ngateways;
  struct config_certificate *certificates;
  size_t ncertificates;
  struct config_binding *bindings;
  size_t nbindings;
  struct config_policy policy;
  struct config_retry retry;
  struct config_rollout rollout;
  struct config_daemon daemon;
  /* SHA-256 of the file's bytes, lowercase hex: used by plan checksums */
  char sha256[65];
};

/* Every problem found, each formatted "FILE:LINE:COL: message". */
struct config_diag {
  char **lines;
  size_t count;
};

/*
 * Load and validate the file at path into *cfg (zeroed by the caller or
 * not: it is overwritten). Returns 0 on success; -EINVAL when the file is
 * invalid, with every problem appended to *diag; another negative errno
 * when the file cannot be read (also described in *diag). On failure *cfg
 * holds nothing that needs freeing.
 */
int config_load(const char *path, struct config *cfg, struct config_diag *diag);

/* Same, from a buffer; name is used in diagnostics. */
int config_load_buffer(const char *name, const char *buf, size_t len,
                       struct config *cfg, struct config_diag *diag);

/* Free everything, wiping secret values first. Safe on a zeroed config. */
void config_free(struct config *cfg);

void config_diag_free(struct config_diag *diag);

/*
 * The files a desired-state file names as inputs: secret sources
 * ({ file: PATH }, and { credential: NAME } under $CREDENTIALS_DIRECTORY),
 * tls.ca_file and certificate files (cert_file). A change to any of them
 * can change what the file validates to, so the daemon watches them.
 * Taken from the YAML alone (config_named_files works for a file that
 * fails validation, as long as it parses); paths as written (a relative
 * one is relative to the working directory, as the loader reads it),
 * sorted, each once.
 */
struct config_files {
  char **paths;
  size_t n;
};

/* 0 with *out filled (maybe empty); -EINVAL when buf is not YAML the
 * loader would parse (anchors, too deep, too big), -ENOMEM. *out is empty
 * on failure. */
int config_named_files(const char *buf, size_t len, struct config_files *out);
void config_files_free(struct config_files *f);

/*
 * The model as a desired-state file (version 1) that config_load reads
 * back to the same bindings, accounts, gateways, certificates and
 * settings: secrets as their references ({ file: PATH }, { env: NAME }),
 * never a value; an endpoint equal to its default left out; maps sorted by
 * name; the bindings regrouped, one entry per (certificate, set of
 * gateways, client verification) with its domains, entries and domains
 * sorted. So the same model always gives the same bytes. header (NULL:
 * none) comes first, each of its lines as a "# " comment. *out is
 * malloc'd and NUL-terminated (free it). 0, -ENOMEM, or -EINVAL (a secret
 * source the emitter does not know).
 */
int config_emit(const struct config *cfg, const char *header, char **out,
                size_t *len);

const char *config_mode_name(enum config_mode mode);
const char *config_auth_method_name(enum config_auth_method method);

#endif
