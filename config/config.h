/* SPDX-License-Identifier: MIT */
/*
 * config: the desired-state file (docs/cli.md, version 1), loaded with libyaml
 * into a plain, validated C model.
 *
 * The model is immutable once loaded. Indexes (account, gateway,
 * certificate) refer into the arrays of the same struct config. Secret
 * values (private keys included) are read from their files or environment
 * variables at load time and held only here, in memory; nothing in this
 * module ever prints them. Certificate files are read and checked
 * (certfile.h) at load time too, against the clock of the load.
 */
#ifndef CERTBIND_CONFIG_H
#define CERTBIND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "certfile.h"

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

/* An address where a gateway serves its domains (ingress), ready for
 * connect(2): addr holds a struct sockaddr_in or sockaddr_in6 with the
 * port, in network byte order. */
struct config_ingress {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  /* normalised "A.B.C.D:PORT" or "[IPv6]:PORT" (inet_ntop's form): for
   * messages, labels and config_emit */
  char text[64];
  uint32_t line, col; /* the scalar in the file */
};

struct config_gateway {
  char *name;
  size_t account; /* index into config.accounts */
  char *instance_id;
  struct config_ingress *ingress; /* NULL when the gateway lists none */
  size_t ningress;                /* each address once */
};

/* Where a certificate's object lives in APIG. */
enum config_cert_type {
  CONFIG_CERT_GLOBAL,   /* default */
  CONFIG_CERT_INSTANCE, /* an instance certificate: of gateway only */
};

/* How a managed certificate's renewed content reaches APIG. */
enum config_cert_update {
  CONFIG_UPDATE_REPLACE,  /* default: a new object, bindings move to it */
  CONFIG_UPDATE_IN_PLACE, /* PUT the new content into the same object */
};

/*
 * What only a certificate managed from files (`cert_file` + `key`) has.
 *
 * It is loaded and checked offline at load time (certfile_load at the
 * time of the load): `file` is the result, with the chain in the order
 * APIG wants, the leaf's SHA-256 (its identity), serial, validity, CN and
 * SANs. Every domain bound to it is covered by one of its SANs (else the
 * file does not load).
 *
 * `key` is the private key PEM, a secret: read like any secret source
 * ({ file }, { env }, { credential }, the same mode rules), held only
 * here and wiped by config_free. Whoever uses it (the engine builds the
 * create or update body from it) must wipe every copy it makes
 * (OPENSSL_cleanse) as soon as the body is built, and never log it, a
 * body that holds it, or any part of either.
 */
struct config_managed_cert {
  char *cert_file;                /* the path as written */
  struct config_secret key;       /* the private key (PEM) */
  struct certfile file;           /* what certfile_load found */
  enum config_cert_type type;     /* default global */
  enum config_cert_update update; /* default replace */
};

/*
 * A certificate is either an existing APIG object (`id`) or managed from
 * files (`cert_file` + `key`): exactly one of the two.
 *
 * A file may name many thousands of certificates by id, so an entry holds
 * only what both forms have; the files' form's own fields are behind
 * `managed`, allocated for a managed certificate only and freed (its key
 * wiped) by config_free. A model built by hand sets `managed` to a
 * malloc'd struct that config_free then owns.
 */
struct config_certificate {
  char *name;
  char *id; /* 32 alphanumerics; NULL for a managed certificate */
  /* given by cert_file + key: its own fields; NULL for an id certificate */
  struct config_managed_cert *managed;
  size_t account;     /* index into config.accounts */
  size_t gateway;     /* CONFIG_CERT_INSTANCE: index into config.gateways;
                         else CONFIG_NO_GATEWAY */
  uint32_t line, col; /* the certificate's mapping in the file */
};

/* One entry per certificate of the file, each a few words: keep it so. */
_Static_assert(sizeof(struct config_certificate) <= 6 * sizeof(void *),
               "struct config_certificate grew: managed-only fields belong "
               "in struct config_managed_cert");

#define CONFIG_NO_GATEWAY ((size_t)-1)

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

enum config_verify {
  CONFIG_VERIFY_OFF,
  CONFIG_VERIFY_AFTER_WRITE, /* after a pass's writes are confirmed */
  CONFIG_VERIFY_EVERY_PASS,
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
  /* an unbound object certbind created for a managed certificate is
   * deleted this long after its last binding left; 0..31536000, default
   * 86400 */
  uint32_t retire_after_s;
  /* warn about a certificate ending within this many days; 0..365,
   * default 21 */
  uint32_t expiry_warning_days;
  /* when the pass checks what the gateways' ingress addresses serve;
   * default after_write when any gateway lists ingress, else off */
  enum config_verify verify;
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

struct config__strblock; /* config/'s own */

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
  /* A loaded file's binding domains live in these blocks, not in a malloc
   * each (config_free frees them); NULL for a model built by hand, whose
   * domains config_free frees one by one. */
  struct config__strblock *domain_blocks;
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

/* Free everything, wiping secret values (private keys included) first with
 * OPENSSL_cleanse. Safe on a zeroed config. */
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
 * never a value; a certificate from files as its cert_file and its key's
 * reference (type, gateway and update when not the defaults), never the
 * key; ingress addresses in their normal form; an endpoint equal to its default
 * left out; maps sorted by name; the bindings regrouped, one entry per
 * (certificate, set of gateways, client verification) with its domains, entries
 * and domains sorted. So the same model always gives the same bytes. header
 * (NULL: none) comes first, each of its lines as a "# " comment. *out is
 * malloc'd and NUL-terminated (free it). 0, -ENOMEM, or -EINVAL (a secret
 * source the emitter does not know).
 */
int config_emit(const struct config *cfg, const char *header, char **out,
                size_t *len);

const char *config_mode_name(enum config_mode mode);
const char *config_verify_name(enum config_verify verify);
const char *config_cert_type_name(enum config_cert_type type);
const char *config_cert_update_name(enum config_cert_update update);
const char *config_auth_method_name(enum config_auth_method method);

#endif
