/* SPDX-License-Identifier: MIT */
/*
 * certificates: an entry is an existing APIG object (`id`) or a
 * certificate from files (`cert_file` + `key`), exactly one of the two. A
 * certificate from files is read and checked offline here, at load time,
 * with certfile (parse, key match, key type, validity, chain order), so
 * that `validate` refuses what APIG or clients would refuse; every domain
 * bound to it must then be one of its names (config__check_covered, from
 * bindings.c).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void key(void *ud, const struct config__node *v, const char *path,
                void *dst)
{
  struct config__loader *l = ud;

  config__load_key(l->c, v, path, dst);
}

/* A scalar that must be one of names[0..n): its index in *(int *)dst, or
 * -1 after reporting what is allowed. */
static void one_of(struct config__loader *l, const struct config__node *v,
                   const char *path, const char *const *names, size_t n,
                   int *dst)
{
  *dst = -1;
  if (!config__get_str(l->c, v, path))
    return;
  for (size_t i = 0; i < n; i++)
    if (strcmp(v->str, names[i]) == 0) {
      *dst = (int)i;
      return;
    }
  config__error(l->c, v->line, v->col,
                "%s: unknown value \"%.40s\" (expected %s or %s)", path, v->str,
                names[0], names[1]);
}

static const char *const type_names[] = {"global", "instance"};
static const char *const update_names[] = {"replace", "in_place"};

/* The parsed entry, before it is copied into the model: the enums may be
 * -1 (invalid, reported). */
struct entry {
  size_t account;
  char *id, *cert_file;
  struct config_secret key;
  int type, update;
};

/* What the entry read of the files' form, when the model does not take
 * it: the key (read even beside an `id`, an error) is wiped. */
static void entry_files_free(struct entry *e)
{
  free(e->cert_file);
  e->cert_file = NULL;
  config__secret_wipe(&e->key);
}

/* A managed certificate gets its own fields, moved from the entry. false
 * (out of memory, flagged) leaves them in the entry. */
static bool adopt_files(struct config__loader *l, struct entry *e,
                        struct config_certificate *cert)
{
  struct config_managed_cert *m = calloc(1, sizeof(*m));

  if (m == NULL) {
    l->c->oom = true;
    return false;
  }
  m->cert_file = e->cert_file;
  m->key = e->key;
  m->type = e->type > 0 ? CONFIG_CERT_INSTANCE : CONFIG_CERT_GLOBAL;
  m->update = e->update > 0 ? CONFIG_UPDATE_IN_PLACE : CONFIG_UPDATE_REPLACE;
  cert->managed = m;
  return true;
}

static void type(void *ud, const struct config__node *v, const char *path,
                 void *dst)
{
  one_of(ud, v, path, type_names, NELEM(type_names), dst);
}

static void update(void *ud, const struct config__node *v, const char *path,
                   void *dst)
{
  one_of(ud, v, path, update_names, NELEM(update_names), dst);
}

enum { C_ACCOUNT, C_ID, C_CERT_FILE, C_KEY, C_TYPE, C_GATEWAY, C_UPDATE };
#define CF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct entry, f), __VA_ARGS__        \
  }
static const struct config__field certificate_fields[] = {
    [C_ACCOUNT] = CF("account", CONFIG__F_CUSTOM, account, .required = true,
                     .custom = config__ref_account),
    [C_ID] = CF("id", CONFIG__F_STR, id, .check = config__check_id32),
    [C_CERT_FILE] = CF("cert_file", CONFIG__F_STR, cert_file),
    [C_KEY] = CF("key", CONFIG__F_CUSTOM, key, .custom = key),
    [C_TYPE] = CF("type", CONFIG__F_CUSTOM, type, .custom = type),
    /* resolved once the type is known */
    [C_GATEWAY] =
        CF("gateway", CONFIG__F_CUSTOM, account, .custom = config__noop),
    [C_UPDATE] = CF("update", CONFIG__F_CUSTOM, update, .custom = update),
};

/* Exactly one form: `id`, or `cert_file` + `key`. The keys of the files'
 * form make no sense with `id` (the object's type and content are APIG's):
 * each is its own error. Returns whether the entry is a managed one. */
static bool check_form(struct config__loader *l, const struct config__node *v,
                       const char *path, const struct config__node **seen)
{
  static const int files_only[] = {C_KEY, C_TYPE, C_GATEWAY, C_UPDATE};

  if (seen[C_ID] == NULL && seen[C_CERT_FILE] == NULL) {
    config__error(l->c, v->line, v->col,
                  "%s: give id (an existing APIG certificate) or cert_file "
                  "and key (a certificate from files)",
                  path);
    return false;
  }
  if (seen[C_ID] != NULL && seen[C_CERT_FILE] != NULL) {
    config__error(l->c, seen[C_CERT_FILE]->line, seen[C_CERT_FILE]->col,
                  "%s.cert_file: give either id or cert_file and key, not "
                  "both (id at line %u)",
                  path, (unsigned)seen[C_ID]->line);
    return false;
  }
  if (seen[C_ID] != NULL) {
    for (size_t i = 0; i < NELEM(files_only); i++) {
      const struct config__node *at = seen[files_only[i]];
      if (at != NULL)
        config__error(l->c, at->line, at->col,
                      "%s.%s: only for a certificate from files (cert_file), "
                      "not with id",
                      path, certificate_fields[files_only[i]].name);
    }
    return false;
  }
  if (seen[C_KEY] == NULL)
    config__error(l->c, v->line, v->col,
                  "%s: missing required key \"key\" (the private key of "
                  "cert_file: { file: PATH }, { env: NAME } or "
                  "{ credential: NAME })",
                  path);
  return true;
}

/* type: instance names the gateway (of the same account) whose instance
 * holds the object; a gateway is meaningless for a global one. */
static void instance_gateway(struct config__loader *l,
                             const struct config__node *v, const char *path,
                             const struct config__node **seen,
                             struct config_certificate *cert)
{
  const struct config *cfg = l->cfg;
  const struct config__node *g = seen[C_GATEWAY];
  char sub[600];

  if (cert->managed->type != CONFIG_CERT_INSTANCE) {
    if (g != NULL)
      config__error(l->c, g->line, g->col,
                    "%s.gateway: only with type: instance", path);
    return;
  }
  if (g == NULL) {
    config__error(l->c, v->line, v->col,
                  "%s: missing required key \"gateway\" (type: instance "
                  "names the gateway whose instance holds the certificate)",
                  path);
    return;
  }
  config__pathf(sub, sizeof(sub), "%s.gateway", path);
  size_t gw = config__resolve(l, g, sub, &l->gateways, cfg->gateways,
                              sizeof(*cfg->gateways), "gateway");
  if (gw == NO_INDEX)
    return;
  size_t ga = cfg->gateways[gw].account;
  if (ga != NO_INDEX && cert->account != NO_INDEX && ga != cert->account) {
    config__error(l->c, g->line, g->col,
                  "%s: gateway \"%s\" belongs to account \"%s\", not to the "
                  "certificate's account \"%s\"",
                  sub, g->str, cfg->accounts[ga].name,
                  cfg->accounts[cert->account].name);
    return;
  }
  cert->gateway = gw;
}

/* The offline checks, reported at the key that names the input at fault
 * (the message names the certificate file and the problem, never a byte
 * of the key). */
static void load_files(struct config__loader *l, const char *path,
                       const struct config__node **seen,
                       struct config_certificate *cert)
{
  struct config_managed_cert *m = cert->managed;
  enum certfile_input blame = CERTFILE_INPUT_CERT;
  char err[1024];
  int rc;

  if (m->cert_file == NULL || m->key.value == NULL)
    return; /* missing or invalid: reported */
  rc = certfile_load_blame(m->cert_file, m->key.value, m->key.len,
                           (int64_t)time(NULL), &m->file, err, sizeof(err),
                           &blame);
  if (rc == -ENOMEM) {
    l->c->oom = true;
    return;
  }
  if (rc < 0) {
    int at = blame == CERTFILE_INPUT_KEY ? C_KEY : C_CERT_FILE;
    config__error(l->c, seen[at]->line, seen[at]->col, "%s.%s: %s", path,
                  certificate_fields[at].name, err);
  }
}

void config__one_certificate(struct config__loader *l,
                             const struct config__node *v, const char *path,
                             void *elem)
{
  struct config_certificate *cert = elem;
  const struct config__node *seen[NELEM(certificate_fields)];
  struct entry e = {.account = NO_INDEX};

  cert->account = NO_INDEX;
  cert->gateway = CONFIG_NO_GATEWAY;
  cert->line = v->line;
  cert->col = v->col;
  if (!config__section(l->c, v, path, certificate_fields,
                       NELEM(certificate_fields), &e, seen, l))
    return;
  /* owned by the model from here on, whatever else is wrong */
  cert->account = e.account;
  cert->id = e.id;
  if (!check_form(l, v, path, seen) || !adopt_files(l, &e, cert)) {
    entry_files_free(&e);
    return;
  }
  if (e.type >= 0)
    instance_gateway(l, v, path, seen, cert);
  load_files(l, path, seen, cert);
}

/* "a, b, c" of the names; a list too long for buf ends in ", ...". */
static void names_list(char *buf, size_t size, const struct certfile *f)
{
  static const char more[] = ", ...";
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < f->nsans; i++) {
    size_t need = (i ? 2 : 0) + strlen(f->sans[i]);
    if (used + need + sizeof(more) > size) {
      memcpy(buf + used, more, sizeof(more));
      return;
    }
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                             f->sans[i]);
  }
}

void config__check_covered(struct config__loader *l,
                           const struct config__node *v, const char *path,
                           size_t cert, const char *domain)
{
  const struct config_certificate *c = &l->cfg->certificates[cert];
  const struct config_managed_cert *m = c->managed;
  char names[400];

  if (m == NULL || m->file.chain_pem == NULL)
    return; /* an id certificate's names are read from APIG, later */
  if (certfile_covers((const char *const *)m->file.sans, m->file.nsans, domain))
    return;
  if (m->file.nsans == 0) {
    config__error(l->c, v->line, v->col,
                  "%s: \"%s\" is not covered by certificate \"%s\": %s has "
                  "no DNS names (subjectAltName)",
                  path, domain, c->name, m->cert_file);
    return;
  }
  names_list(names, sizeof(names), &m->file);
  config__error(l->c, v->line, v->col,
                "%s: \"%s\" is not covered by certificate \"%s\" (its names: "
                "%s; a wildcard covers one label)",
                path, domain, c->name, names);
}

void config__certificate_free(struct config_certificate *cert)
{
  struct config_managed_cert *m = cert->managed;

  free(cert->name);
  free(cert->id);
  if (m == NULL)
    return;
  free(m->cert_file);
  config__secret_wipe(&m->key);
  certfile_free(&m->file);
  free(m);
  cert->managed = NULL;
}
