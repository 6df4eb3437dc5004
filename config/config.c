/* SPDX-License-Identifier: MIT */
/*
 * config: load, validate and free the desired-state file (docs/cli.md, "The
 * desired-state file").
 *
 * The order of work: size check, SHA-256, libyaml events -> tree (all the
 * anti-bomb limits, tree.c), then the schema tables top-down, then the
 * cross-references. Every error is collected with its position and they
 * are all reported at once, sorted by position.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- policy ---- */

static void mode(void *ud, const struct config__node *v, const char *path,
                 void *dst)
{
  struct config__loader *l = ud;
  enum config_mode *out = dst;

  if (!config__get_str(l->c, v, path))
    return;
  if (strcmp(v->str, "upsert") == 0)
    *out = CONFIG_MODE_UPSERT;
  else if (strcmp(v->str, "sync") == 0)
    *out = CONFIG_MODE_SYNC;
  else
    config__error(l->c, v->line, v->col,
                  "%s: unknown mode \"%.40s\" (expected upsert or sync)", path,
                  v->str);
}

static const char *const verify_names[] = {
    [CONFIG_VERIFY_OFF] = "off",
    [CONFIG_VERIFY_AFTER_WRITE] = "after_write",
    [CONFIG_VERIFY_EVERY_PASS] = "every_pass",
};

static void verify(void *ud, const struct config__node *v, const char *path,
                   void *dst)
{
  struct config__loader *l = ud;
  enum config_verify *out = dst;

  if (!config__get_str(l->c, v, path))
    return;
  for (size_t i = 0; i < NELEM(verify_names); i++)
    if (strcmp(v->str, verify_names[i]) == 0) {
      *out = (enum config_verify)i;
      return;
    }
  config__error(l->c, v->line, v->col,
                "%s: unknown value \"%.40s\" (expected off, after_write or "
                "every_pass)",
                path, v->str);
}

#define PF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_policy, f),            \
    __VA_ARGS__                                                                \
  }
enum {
  P_MODE,
  P_BATCH,
  P_RATIO,
  P_COUNT,
  P_CONFIRM_TIMEOUT,
  P_CONFIRM_DELAY,
  P_RETIRE,
  P_EXPIRY,
  P_VERIFY
};
static const struct config__field policy_fields[] = {
    [P_MODE] =
        PF("mode", CONFIG__F_CUSTOM, mode, .required = true, .custom = mode),
    [P_BATCH] = PF("batch_size", CONFIG__F_U32, batch_size, .min = 1,
                   .max = 500, .def = 50),
    [P_RATIO] = PF("max_detach_ratio", CONFIG__F_DOUBLE, max_detach_ratio,
                   .min = 0, .max = 1, .def = 0.3),
    [P_COUNT] = PF("max_detach_count", CONFIG__F_U32, max_detach_count,
                   .min = 0, .max = 4294967295.0, .def = 100),
    [P_CONFIRM_TIMEOUT] =
        PF("confirm_timeout_s", CONFIG__F_U32, confirm_timeout_s, .min = 1,
           .max = 3600, .def = 60),
    [P_CONFIRM_DELAY] = PF("confirm_delay_ms", CONFIG__F_U32, confirm_delay_ms,
                           .min = 0, .max = 60000, .def = 1000),
    /* up to a year: longer is "never", which nobody with a quota wants */
    [P_RETIRE] = PF("retire_after_s", CONFIG__F_U32, retire_after_s, .min = 0,
                    .max = 31536000, .def = 86400),
    [P_EXPIRY] = PF("expiry_warning_days", CONFIG__F_U32, expiry_warning_days,
                    .min = 0, .max = 365, .def = 21),
    [P_VERIFY] = PF("verify", CONFIG__F_CUSTOM, verify, .custom = verify),
};

/* policy.verify defaults to checking after writes when there is something
 * to check: any gateway with ingress addresses. */
static enum config_verify default_verify(const struct config *cfg)
{
  for (size_t i = 0; i < cfg->ngateways; i++)
    if (cfg->gateways[i].ningress > 0)
      return CONFIG_VERIFY_AFTER_WRITE;
  return CONFIG_VERIFY_OFF;
}

/* ---- retry ---- */

enum { R_ATTEMPTS, R_BASE, R_MAX };
#define RF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_retry, f), __VA_ARGS__ \
  }
static const struct config__field retry_fields[] = {
    [R_ATTEMPTS] = RF("max_attempts", CONFIG__F_U32, max_attempts, .min = 1,
                      .max = 100, .def = 6),
    [R_BASE] = RF("base_delay_ms", CONFIG__F_U32, base_delay_ms, .min = 1,
                  .max = 3600000, .def = 500),
    [R_MAX] = RF("max_delay_ms", CONFIG__F_U32, max_delay_ms, .min = 1,
                 .max = 86400000, .def = 60000),
};

static void retry_section(struct config__loader *l,
                          const struct config__node *v)
{
  const struct config__node *seen[NELEM(retry_fields)];
  struct config_retry *r = &l->cfg->retry;

  if (!config__section(l->c, v, "retry", retry_fields, NELEM(retry_fields), r,
                       seen, l))
    return;
  if (r->max_delay_ms < r->base_delay_ms) {
    const struct config__node *at = seen[R_MAX] ? seen[R_MAX] : seen[R_BASE];
    config__error(l->c, at->line, at->col,
                  "retry: max_delay_ms (%u) must be >= base_delay_ms (%u)",
                  (unsigned)r->max_delay_ms, (unsigned)r->base_delay_ms);
  }
}

/* ---- rollout ---- */

#define MAX_WAVES 100

static bool one_wave(struct config__loader *l, const struct config__node *v,
                     const char *path, struct config_wave *w)
{
  double pct;

  if (v->type == CONFIG__SCALAR && v->len > 1 && v->str[v->len - 1] == '%') {
    if (config__parse_double(v->str, v->len - 1, &pct) < 0 || pct <= 0 ||
        pct > 100) {
      config__error(l->c, v->line, v->col,
                    "%s: \"%.40s\" must be a share 0%% < N%% <= 100%%", path,
                    v->str);
      return false;
    }
    *w = (struct config_wave){.is_share = true, .share = pct / 100.0};
    return true;
  }
  if (v->type == CONFIG__SCALAR && !v->plain) {
    config__error(l->c, v->line, v->col,
                  "%s: expected a count or \"N%%\", got the string \"%.40s\"",
                  path, v->str);
    return false;
  }
  *w = (struct config_wave){.is_share = false};
  return config__get_u32(l->c, v, path, 1, 4294967295.0, &w->count);
}

static void waves(void *ud, const struct config__node *v, const char *path,
                  void *dst)
{
  struct config__loader *l = ud;
  /* dst is &rollout->waves: the handler fills waves and nwaves */
  struct config_rollout *r =
      (struct config_rollout *)((char *)dst -
                                offsetof(struct config_rollout, waves));
  const struct config_wave *last_count = NULL, *last_share = NULL;
  char sub[64];
  size_t i = 0;
  bool ok = true;

  if (v->type != CONFIG__SEQ || v->n == 0 || v->n > MAX_WAVES) {
    config__error(l->c, v->line, v->col,
                  "%s: expected a list of 1 to %d waves (counts or \"N%%\")",
                  path, MAX_WAVES);
    return;
  }
  r->waves = calloc(v->n, sizeof(*r->waves));
  if (r->waves == NULL) {
    l->c->oom = true;
    return;
  }
  for (const struct config__node *w = v->first; w != NULL; w = w->next, i++) {
    struct config_wave *cur = &r->waves[i];
    config__path_index(sub, sizeof(sub), path, i);
    if (!one_wave(l, w, sub, cur)) {
      ok = false;
      continue;
    }
    /* cumulative: each kind must grow; counts and shares are not
     * comparable before the pass's size is known */
    const struct config_wave **prev = cur->is_share ? &last_share : &last_count;
    if (*prev != NULL && (cur->is_share ? cur->share <= (*prev)->share
                                        : cur->count <= (*prev)->count)) {
      config__error(l->c, w->line, w->col,
                    "%s: waves are cumulative and must strictly increase", sub);
      ok = false;
    }
    *prev = cur;
  }
  r->nwaves = v->n;
  if (ok && !(r->waves[v->n - 1].is_share && r->waves[v->n - 1].share == 1.0))
    config__error(l->c, v->last->line, v->last->col,
                  "%s: the last wave must be \"100%%\" so that every pass "
                  "completes",
                  path);
}

#define OF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_rollout, f),           \
    __VA_ARGS__                                                                \
  }
static const struct config__field rollout_fields[] = {
    OF("waves", CONFIG__F_CUSTOM, waves, .required = true, .custom = waves),
    OF("soak_s", CONFIG__F_U32, soak_s, .min = 0, .max = 86400, .def = 30),
    OF("abort_failure_ratio", CONFIG__F_DOUBLE, abort_failure_ratio, .min = 0,
       .max = 1, .def = 0.1),
};

/* ---- daemon ---- */

static const char *check_abs_path(const char *s, size_t len)
{
  (void)len;
  return s[0] == '/' ? NULL : "must be an absolute path";
}

#define DF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_daemon, f),            \
    __VA_ARGS__                                                                \
  }
static const struct config__field daemon_fields[] = {
    DF("resync_interval_s", CONFIG__F_U32, resync_interval_s, .min = 10,
       .max = 86400, .def = 300),
    DF("state_dir", CONFIG__F_STR, state_dir, .def_str = "/var/lib/certbind",
       .check = check_abs_path),
    DF("metrics_file", CONFIG__F_STR, metrics_file, .check = check_abs_path),
};

/* ---- top level ---- */

static void version(void *ud, const struct config__node *v, const char *path,
                    void *dst)
{
  struct config__loader *l = ud;
  uint32_t ver;

  (void)dst;
  if (config__get_u32(l->c, v, path, 0, 4294967295.0, &ver) && ver != 1)
    config__error(l->c, v->line, v->col,
                  "%s: unsupported version %u (this certbind reads version 1)",
                  path, (unsigned)ver);
}

enum {
  T_VERSION,
  T_ACCOUNTS,
  T_GATEWAYS,
  T_CERTIFICATES,
  T_BINDINGS,
  T_POLICY,
  T_RETRY,
  T_ROLLOUT,
  T_DAEMON,
};
#define XF(n, req, fn)                                                         \
  {                                                                            \
    .name = n, .type = CONFIG__F_CUSTOM, .required = req, .custom = fn         \
  }
static const struct config__field top_fields[] = {
    [T_VERSION] = XF("version", true, version),
    [T_ACCOUNTS] = XF("accounts", true, config__noop),
    [T_GATEWAYS] = XF("gateways", true, config__noop),
    [T_CERTIFICATES] = XF("certificates", true, config__noop),
    [T_BINDINGS] = XF("bindings", true, config__noop),
    [T_POLICY] = XF("policy", true, config__noop),
    [T_RETRY] = XF("retry", false, config__noop),
    [T_ROLLOUT] = XF("rollout", false, config__noop),
    [T_DAEMON] = XF("daemon", false, config__noop),
};

static void validate(struct config__loader *l, const struct config__node *root)
{
  const struct config__node *seen[NELEM(top_fields)];
  struct config *cfg = l->cfg;

  config__defaults(l->c, policy_fields, NELEM(policy_fields), &cfg->policy);
  config__defaults(l->c, retry_fields, NELEM(retry_fields), &cfg->retry);
  config__defaults(l->c, rollout_fields, NELEM(rollout_fields), &cfg->rollout);
  config__defaults(l->c, daemon_fields, NELEM(daemon_fields), &cfg->daemon);
  if (root == NULL) {
    config__error(l->c, 1, 1,
                  "the file is empty (expected a mapping with version: 1)");
    return;
  }
  if (root->type != CONFIG__MAP) {
    config__error(l->c, root->line, root->col,
                  "expected a mapping at the top level, got %s",
                  config__kind(root));
    return;
  }
  config__section(l->c, root, "", top_fields, NELEM(top_fields), cfg, seen, l);
  /* in dependency order, whatever the order in the file */
  if (seen[T_ACCOUNTS])
    config__load_accounts(l, seen[T_ACCOUNTS]);
  if (seen[T_GATEWAYS])
    config__load_gateways(l, seen[T_GATEWAYS]);
  if (seen[T_CERTIFICATES])
    config__load_certificates(l, seen[T_CERTIFICATES]);
  if (seen[T_BINDINGS])
    config__load_bindings(l, seen[T_BINDINGS]);
  cfg->policy.verify = default_verify(cfg);
  if (seen[T_POLICY]) {
    const struct config__node *ps[NELEM(policy_fields)];
    config__section(l->c, seen[T_POLICY], "policy", policy_fields,
                    NELEM(policy_fields), &cfg->policy, ps, l);
  }
  if (seen[T_RETRY])
    retry_section(l, seen[T_RETRY]);
  if (seen[T_ROLLOUT]) {
    const struct config__node *rs[NELEM(rollout_fields)];
    cfg->rollout.enabled =
        config__section(l->c, seen[T_ROLLOUT], "rollout", rollout_fields,
                        NELEM(rollout_fields), &cfg->rollout, rs, l);
  }
  if (seen[T_DAEMON]) {
    const struct config__node *ds[NELEM(daemon_fields)];
    config__section(l->c, seen[T_DAEMON], "daemon", daemon_fields,
                    NELEM(daemon_fields), &cfg->daemon, ds, l);
  }
}

static int sha256_hex(const char *buf, size_t len, char out[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
    return -ENOMEM;
  for (unsigned i = 0; i < mdlen; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  out[64] = '\0';
  return 0;
}

int config_load_buffer(const char *name, const char *buf, size_t len,
                       struct config *cfg, struct config_diag *diag)
{
  struct config__ctx c = {.name = name ? name : "<buffer>"};
  struct config__loader l = {.c = &c, .cfg = cfg};
  struct config__node *root = NULL;
  int rc;

  memset(cfg, 0, sizeof(*cfg));
  if (buf == NULL) {
    if (len != 0)
      return -EINVAL;
    buf = ""; /* libyaml asserts on a NULL input */
  }
  if (len > CONFIG_MAX_FILE_SIZE) {
    config__diag_add(diag, "%s:1:1: the file is larger than %u bytes (4 MiB)",
                     c.name, CONFIG_MAX_FILE_SIZE);
    return -EINVAL;
  }
  rc = config__parse(&c, buf, len, &root);
  if (rc == 0)
    validate(&l, root);
  config__htab_free(&l.accounts);
  config__htab_free(&l.gateways);
  config__htab_free(&l.certificates);
  config__htab_free(&l.pairs);
  if (rc == 0 && !c.oom && config__nerrors(&c) == 0) {
    cfg->path = strdup(c.name);
    if (cfg->path == NULL || sha256_hex(buf, len, cfg->sha256) < 0)
      c.oom = true;
  }
  if (c.oom)
    rc = -ENOMEM;
  else if (rc == 0 && config__nerrors(&c) > 0)
    rc = -EINVAL;
  if (rc < 0) {
    config_free(cfg);
    if (config__flush(&c, diag) < 0 && rc == -EINVAL)
      rc = -ENOMEM;
  }
  config__ctx_free(&c);
  return rc;
}

/* Read the whole file, refusing it before reading when it is too big. */
static int read_file(const char *path, char **out, size_t *len,
                     struct config_diag *diag)
{
  struct stat st;
  char *buf = NULL;
  size_t got = 0;
  int fd, err;

  /* O_NONBLOCK: a FIFO given by mistake must not hang the open */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    err = errno;
    config__diag_add(diag, "%s: cannot open: %s", path, strerror(err));
    return -err;
  }
  if (fstat(fd, &st) < 0) {
    err = errno;
    config__diag_add(diag, "%s: cannot stat: %s", path, strerror(err));
    close(fd);
    return -err;
  }
  if (!S_ISREG(st.st_mode)) {
    err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    config__diag_add(diag, "%s: not a regular file", path);
    close(fd);
    return -err;
  }
  if ((uint64_t)st.st_size > CONFIG_MAX_FILE_SIZE) {
    config__diag_add(diag, "%s:1:1: the file is larger than %u bytes (4 MiB)",
                     path, CONFIG_MAX_FILE_SIZE);
    close(fd);
    return -EINVAL;
  }
  /* one byte more than allowed: a file that grew since fstat is caught */
  buf = malloc(CONFIG_MAX_FILE_SIZE + 1);
  if (buf == NULL) {
    close(fd);
    return -ENOMEM;
  }
  for (;;) {
    ssize_t r = read(fd, buf + got, CONFIG_MAX_FILE_SIZE + 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      err = errno;
      config__diag_add(diag, "%s: cannot read: %s", path, strerror(err));
      free(buf);
      close(fd);
      return -err;
    }
    if (r == 0)
      break;
    got += (size_t)r;
    if (got > CONFIG_MAX_FILE_SIZE)
      break;
  }
  close(fd);
  *out = buf;
  *len = got;
  return 0;
}

int config_load(const char *path, struct config *cfg, struct config_diag *diag)
{
  char *buf = NULL;
  size_t len = 0;
  int rc;

  memset(cfg, 0, sizeof(*cfg));
  rc = read_file(path, &buf, &len, diag);
  if (rc < 0)
    return rc;
  rc = config_load_buffer(path, buf, len, cfg, diag);
  free(buf);
  return rc;
}

static void free_account(struct config_account *a)
{
  free(a->name);
  free(a->region);
  free(a->project_id);
  free(a->endpoint);
  config__secret_wipe(&a->access_key);
  config__secret_wipe(&a->secret_key);
  config__secret_wipe(&a->token);
  config__secret_wipe(&a->password);
  free(a->iam_endpoint);
  free(a->user);
  free(a->domain);
  free(a->ca_file);
}

void config_free(struct config *cfg)
{
  if (cfg == NULL)
    return;
  for (size_t i = 0; cfg->accounts != NULL && i < cfg->naccounts; i++)
    free_account(&cfg->accounts[i]);
  free(cfg->accounts);
  for (size_t i = 0; cfg->gateways != NULL && i < cfg->ngateways; i++) {
    free(cfg->gateways[i].name);
    free(cfg->gateways[i].instance_id);
    free(cfg->gateways[i].ingress);
  }
  free(cfg->gateways);
  for (size_t i = 0; cfg->certificates != NULL && i < cfg->ncertificates; i++)
    config__certificate_free(&cfg->certificates[i]);
  free(cfg->certificates);
  if (cfg->domain_blocks != NULL)
    config__strings_free(&cfg->domain_blocks);
  else
    for (size_t i = 0; cfg->bindings != NULL && i < cfg->nbindings; i++)
      free(cfg->bindings[i].domain);
  free(cfg->bindings);
  free(cfg->rollout.waves);
  free(cfg->daemon.state_dir);
  free(cfg->daemon.metrics_file);
  free(cfg->path);
  memset(cfg, 0, sizeof(*cfg));
}

void config_diag_free(struct config_diag *diag)
{
  if (diag == NULL)
    return;
  for (size_t i = 0; i < diag->count; i++)
    free(diag->lines[i]);
  free(diag->lines);
  diag->lines = NULL;
  diag->count = 0;
}

const char *config_mode_name(enum config_mode m)
{
  switch (m) {
  case CONFIG_MODE_UPSERT:
    return "upsert";
  case CONFIG_MODE_SYNC:
    return "sync";
  }
  return "unknown";
}

const char *config_verify_name(enum config_verify v)
{
  return (size_t)v < NELEM(verify_names) ? verify_names[v] : "unknown";
}

const char *config_cert_type_name(enum config_cert_type type)
{
  return type == CONFIG_CERT_INSTANCE ? "instance" : "global";
}

const char *config_cert_update_name(enum config_cert_update update)
{
  return update == CONFIG_UPDATE_IN_PLACE ? "in_place" : "replace";
}

const char *config_auth_method_name(enum config_auth_method method)
{
  switch (method) {
  case CONFIG_AUTH_AKSK:
    return "aksk";
  case CONFIG_AUTH_TOKEN:
    return "token";
  case CONFIG_AUTH_PASSWORD:
    return "password";
  }
  return "unknown";
}
