/* SPDX-License-Identifier: MIT */
/* apig-sim's certificates API: create, show, list, update and delete
 * certificate objects, validating the PEM like APIG does (with OpenSSL's
 * libcrypto, which the simulator already links for its signatures).
 * Certificate content (the chain and the private key) is kept in memory
 * and never returned, logged or shown in /__sim/state. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sim.h"

#define MAX_CHAIN 16
#define SEED_PEM_MAX (1u << 20)
#define DEFAULT_ISSUER "CN=apig-sim test CA"
#define DEFAULT_TIME "2026-01-01T00:00:00Z"

static void reply_error(struct sim_cert_reply *out, int status,
                        const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_error(struct sim_cert_reply *out, int status,
                        const char *code, const char *fmt, ...)
{
  va_list ap;
  out->status = status;
  snprintf(out->code, sizeof(out->code), "%s", code);
  va_start(ap, fmt);
  vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
  va_end(ap);
}

static void bad_param(struct sim_cert_reply *out, const char *name)
{
  reply_error(out, 400, "APIG.2012",
              "Invalid parameter value,parameterName:%s. Please refer to the "
              "support documentation",
              name);
}

static void missing_param(struct sim_cert_reply *out, const char *name)
{
  reply_error(out, 400, "APIG.2001",
              "The request parameters must be specified,parameterName:%s. "
              "Please refer to the support documentation",
              name);
}

static void not_found(struct sim_cert_reply *out)
{
  reply_error(out, 404, "APIG.3025", "The certificate does not exist");
}

/* ---- visibility -------------------------------------------------------- */

/* A create shows to reads once the visibility delay has passed; a delete
 * hides the certificate from reads only then. As for bindings, what reads
 * could see once stays seen: a change older than the delay is settled
 * (lowering the delay shows every older change; raising it later hides
 * nothing again). Called before every read. */
static void settle(struct sim *sim)
{
  int64_t now = sim_mono_ms(), delay = sim->settings.visibility_delay_ms;
  for (size_t i = 0; i < sim->ncerts; i++) {
    struct sim_cert *c = &sim->certs[i];
    if (c->created_ms && now - c->created_ms >= delay)
      c->created_ms = 0;
    if (c->deleted_ms && now - c->deleted_ms >= delay)
      c->gone = true;
  }
}

static bool visible(const struct sim_cert *c)
{
  return !c->created_ms && !c->gone;
}

/* ---- JSON out ---------------------------------------------------------- */

static int gen_strs(yajl_gen g, const char *k, char *const *v, size_t n)
{
  int rc = sim_gen_str(g, k);
  yajl_gen_array_open(g);
  for (size_t i = 0; i < n; i++)
    rc |= sim_gen_str(g, v[i]);
  yajl_gen_array_close(g);
  return rc;
}

/* Show/create/update return every field; list items (CertBase) have no
 * serial_number, not_before or issuer. */
static int gen_cert(yajl_gen g, const struct sim *sim, const struct sim_cert *c,
                    bool full)
{
  int rc = 0;
  const char *updated = c->update_time ? c->update_time : c->create_time;
  yajl_gen_map_open(g);
  rc |= sim_gen_kv_str(g, "id", c->id);
  rc |= sim_gen_kv_str(g, "name", c->name);
  rc |= sim_gen_kv_str(g, "type", c->type);
  rc |= sim_gen_kv_str(g, "instance_id", c->instance_id);
  rc |= sim_gen_kv_str(g, "project_id", sim->projects[c->project].id);
  rc |= sim_gen_kv_str(g, "common_name", c->common_name);
  rc |= gen_strs(g, "san", c->san, c->nsan);
  rc |= sim_gen_kv_str(g, "not_after", c->not_after);
  if (full)
    rc |= sim_gen_kv_str(g, "not_before", c->not_before);
  rc |= sim_gen_kv_str(g, "signature_algorithm", c->signature_algorithm);
  rc |= sim_gen_kv_str(g, "create_time", c->create_time);
  rc |= sim_gen_kv_str(g, "update_time", updated);
  rc |= sim_gen_kv_bool(g, "is_has_trusted_root_ca", c->trusted_root_ca);
  rc |= sim_gen_kv_str(g, "algorithm_type", c->algorithm_type);
  if (full) {
    static const char *const empty[] = {"organization", "organizational_unit",
                                        "locality", "state", "country"};
    rc |= sim_gen_kv_int(g, "version", 3);
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
      rc |= gen_strs(g, empty[i], NULL, 0);
    const char *issuer = c->issuer ? c->issuer : DEFAULT_ISSUER;
    rc |= gen_strs(g, "issuer", (char *const *)&issuer, 1);
    rc |= sim_gen_kv_str(g, "serial_number", c->serial ? c->serial : c->id);
  }
  yajl_gen_map_close(g);
  return rc ? -EINVAL : 0;
}

static void reply_cert(const struct sim *sim, const struct sim_cert *c,
                       int status, struct sim_cert_reply *out)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g && !gen_cert(g, sim, c, true) &&
      !sim_gen_take(g, &out->body, &out->body_len))
    out->status = status;
  else
    reply_error(out, 500, "APIG.9999", "System error");
  if (g)
    yajl_gen_free(g);
}

void sim_certs_show(struct sim *sim, long cert, struct sim_cert_reply *out)
{
  const struct sim_cert *c = &sim->certs[cert];
  settle(sim);
  if (!visible(c))
    not_found(out);
  else
    reply_cert(sim, c, 200, out);
}

/* ---- PEM content ------------------------------------------------------- */

/* What a certificate's content says about it: the fields of struct
 * sim_cert that come from the leaf. */
struct meta {
  char *common_name;
  char **san;
  size_t nsan;
  char *not_before;
  char *not_after;
  char *serial;
  char *issuer;
  char *signature_algorithm;
  char *algorithm_type;
  int64_t not_after_s;
};

static void meta_free(struct meta *m)
{
  free(m->common_name);
  for (size_t i = 0; i < m->nsan; i++)
    free(m->san[i]);
  free(m->san);
  free(m->not_before);
  free(m->not_after);
  free(m->serial);
  free(m->issuer);
  free(m->signature_algorithm);
  free(m->algorithm_type);
  memset(m, 0, sizeof(*m));
}

struct content {
  X509 *chain[MAX_CHAIN];
  size_t n;
  EVP_PKEY *key;
  bool encrypted;
};

static void content_free(struct content *k)
{
  for (size_t i = 0; i < k->n; i++)
    X509_free(k->chain[i]);
  EVP_PKEY_free(k->key);
  memset(k, 0, sizeof(*k));
}

static int asked_for_passphrase(char *buf, int size, int rwflag, void *u)
{
  *(bool *)u = true;
  return -1;
}

static void parse_content(const char *cert_pem, const char *key_pem,
                          struct content *k)
{
  BIO *b = BIO_new_mem_buf(cert_pem, -1);
  X509 *x;
  while (b && k->n < MAX_CHAIN &&
         (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
    k->chain[k->n++] = x;
  BIO_free(b);
  b = BIO_new_mem_buf(key_pem, -1);
  if (b)
    k->key =
        PEM_read_bio_PrivateKey(b, NULL, asked_for_passphrase, &k->encrypted);
  BIO_free(b);
  ERR_clear_error();
}

static bool links(X509 *child, X509 *issuer)
{
  bool ok = X509_check_issued(issuer, child) == X509_V_OK &&
            X509_verify(child, X509_get0_pubkey(issuer)) == 1;
  ERR_clear_error();
  return ok;
}

static char *iso_time(const ASN1_TIME *t, int64_t *unix_s)
{
  struct tm tm;
  char buf[32];
  if (ASN1_TIME_to_tm(t, &tm) != 1)
    return NULL;
  if (unix_s)
    *unix_s = (int64_t)timegm(&tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return strdup(buf);
}

static char *upper_dup(const char *s)
{
  char *d = strdup(s ? s : "");
  for (char *p = d; p && *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return d;
}

/* "SHA256-RSA", "SHA256-ECDSA": the shape of APIG's example. */
static char *sig_name(X509 *x)
{
  int md = NID_undef, pk = NID_undef;
  char buf[64];
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(x), &md, &pk))
    return strdup("UNKNOWN");
  char *m = upper_dup(OBJ_nid2sn(md));
  snprintf(buf, sizeof(buf), "%s-%s", m ? m : "",
           pk == NID_rsaEncryption          ? "RSA"
           : pk == NID_X9_62_id_ecPublicKey ? "ECDSA"
                                            : "OTHER");
  free(m);
  return strdup(buf);
}

static int meta_names(X509 *leaf, struct meta *m)
{
  X509_NAME *subj = X509_get_subject_name(leaf);
  int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
  unsigned char *cn = NULL;
  if (i < 0 || ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(
                                            X509_NAME_get_entry(subj, i))) < 0)
    cn = NULL;
  m->common_name = strdup(cn ? (char *)cn : "");
  OPENSSL_free(cn);
  GENERAL_NAMES *gens =
      X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
  int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
  m->san = calloc((size_t)n + 2, sizeof(*m->san));
  for (int j = 0; m->san && j < n; j++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, j);
    if (g->type == GEN_DNS)
      m->san[m->nsan++] =
          strndup((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                  (size_t)ASN1_STRING_length(g->d.dNSName));
  }
  GENERAL_NAMES_free(gens);
  /* an old-style certificate without DNS SANs is matched by its CN */
  if (m->san && !m->nsan && m->common_name && *m->common_name)
    m->san[m->nsan++] = strdup(m->common_name);
  for (size_t j = 0; m->san && j < m->nsan; j++)
    if (!m->san[j])
      return -ENOMEM;
  return m->common_name && m->san ? 0 : -ENOMEM;
}

static int meta_fill(X509 *leaf, EVP_PKEY *key, struct meta *m)
{
  int rc = meta_names(leaf, m);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
  char *dec = bn ? BN_bn2dec(bn) : NULL;
  m->serial = dec ? strdup(dec) : NULL;
  OPENSSL_free(dec);
  BN_free(bn);
  char issuer[256];
  X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof(issuer));
  m->issuer = strdup(issuer[0] == '/' ? issuer + 1 : issuer);
  m->not_before = iso_time(X509_get0_notBefore(leaf), NULL);
  m->not_after = iso_time(X509_get0_notAfter(leaf), &m->not_after_s);
  m->signature_algorithm = sig_name(leaf);
  m->algorithm_type =
      strdup(EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? "RSA" : "ECC");
  ERR_clear_error();
  if (!rc && !(m->serial && m->issuer && m->not_before && m->not_after &&
               m->signature_algorithm && m->algorithm_type))
    rc = -ENOMEM;
  return rc;
}

/* APIG's checks, in the order of its error table: not a certificate or
 * key (2106), encrypted key (2105), key and leaf differ (2101), expired
 * (2102), chain out of order (2104). The leaf is the first certificate;
 * each next one must have issued the one before it. */
static bool check_content(const struct content *k, int64_t now_s,
                          struct sim_cert_reply *out)
{
  if (k->encrypted) {
    reply_error(out, 400, "APIG.2105",
                "Encrypted private keys are not supported");
    return false;
  }
  int id = k->key ? EVP_PKEY_get_base_id(k->key) : NID_undef;
  if (!k->n || !k->key || (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)) {
    reply_error(out, 400, "APIG.2106", "Invalid certificate or private key");
    return false;
  }
  bool match = EVP_PKEY_eq(X509_get0_pubkey(k->chain[0]), k->key) == 1;
  /* the key's certificate further down: the order is wrong */
  for (size_t i = 1; !match && i < k->n; i++)
    if (EVP_PKEY_eq(X509_get0_pubkey(k->chain[i]), k->key) == 1) {
      ERR_clear_error();
      reply_error(out, 400, "APIG.2104",
                  "The certificate chain is not matched");
      return false;
    }
  ERR_clear_error();
  if (!match) {
    reply_error(out, 400, "APIG.2101",
                "The certificate and private key do not match");
    return false;
  }
  time_t t = (time_t)now_s;
  if (X509_cmp_time(X509_get0_notAfter(k->chain[0]), &t) < 0) {
    reply_error(out, 400, "APIG.2102", "The certificate has expired");
    return false;
  }
  for (size_t i = 1; i < k->n; i++)
    if (!links(k->chain[i - 1], k->chain[i])) {
      reply_error(out, 400, "APIG.2104",
                  "The certificate chain is not matched");
      return false;
    }
  return true;
}

/* ---- the world --------------------------------------------------------- */

static void free_strs(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void wipe_free(char *s)
{
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

void sim_cert_free_content(struct sim_cert *c)
{
  free(c->cert_pem);
  wipe_free(c->key_pem);
  free(c->update_time);
  free(c->serial);
  free(c->issuer);
  c->cert_pem = c->key_pem = c->update_time = c->serial = c->issuer = NULL;
}

/* The leaf's fields replace the certificate's (m is emptied). */
static void take_meta(struct sim_cert *c, struct meta *m)
{
  free(c->common_name);
  free_strs(c->san, c->nsan);
  free(c->not_before);
  free(c->not_after);
  free(c->serial);
  free(c->issuer);
  free(c->signature_algorithm);
  free(c->algorithm_type);
  c->common_name = m->common_name;
  c->san = m->san;
  c->nsan = m->nsan;
  c->not_before = m->not_before;
  c->not_after = m->not_after;
  c->serial = m->serial;
  c->issuer = m->issuer;
  c->signature_algorithm = m->signature_algorithm;
  c->algorithm_type = m->algorithm_type;
  memset(m, 0, sizeof(*m));
}

static char *now_iso(const struct sim *sim)
{
  time_t t = (time_t)(sim_now_ms(sim) / 1000);
  struct tm tm;
  char buf[32];
  gmtime_r(&t, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return strdup(buf);
}

static long cert_in_project(const struct sim *sim, long project, const char *id)
{
  long c = sim_find_cert(sim, id);
  return c >= 0 && (long)sim->certs[c].project == project ? c : -1;
}

static size_t live_certs(const struct sim *sim, long project)
{
  size_t n = 0;
  for (size_t i = 0; i < sim->ncerts; i++)
    n += (long)sim->certs[i].project == project && !sim->certs[i].deleted_ms;
  return n;
}

static long new_cert(struct sim *sim, long project)
{
  if (sim->ncerts == sim->capcerts) {
    size_t ncap = sim->capcerts ? sim->capcerts * 2 : 8;
    struct sim_cert *n = realloc(sim->certs, ncap * sizeof(*n));
    if (!n)
      return -1;
    memset(n + sim->capcerts, 0, (ncap - sim->capcerts) * sizeof(*n));
    sim->certs = n;
    sim->capcerts = ncap;
  }
  struct sim_cert *c = &sim->certs[sim->ncerts];
  char id[33];
  do
    snprintf(id, sizeof(id), "%016" PRIx64 "%016" PRIx64,
             sim_rng_next(&sim->rng), sim_rng_next(&sim->rng));
  while (sim_find_cert_any(sim, id) >= 0);
  memset(c, 0, sizeof(*c));
  c->project = (size_t)project;
  c->id = strdup(id);
  if (!c->id || sim_map_put(&sim->cert_ix, c->id, sim->ncerts) != 0) {
    free(c->id);
    c->id = NULL;
    return -1;
  }
  return (long)sim->ncerts++;
}

/* ---- request bodies ---------------------------------------------------- */

struct form {
  const char *name;
  const char *cert_content;
  const char *private_key;
  const char *type;
  const char *instance_id;
  const char *trusted_root_ca;
};

static yajl_val obj_get(yajl_val o, const char *k)
{
  for (size_t i = 0; i < o->u.object.len; i++)
    if (!strcmp(o->u.object.keys[i], k))
      return o->u.object.values[i];
  return NULL;
}

/* 4-50 characters (UTF-8 code points): letters, digits, '_' and Chinese
 * characters (any non-ASCII character here), starting with a letter or
 * a Chinese character. */
static bool name_ok(const char *s)
{
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    bool ascii = *p < 0x80;
    if ((*p & 0xc0) == 0x80)
      continue; /* a continuation byte: same character */
    if (ascii && !(isalnum(*p) || *p == '_'))
      return false;
    if (chars == 0 && ascii && !isalpha(*p))
      return false;
    chars++;
  }
  return chars >= 4 && chars <= 50;
}

static const char *const form_keys[] = {
    "name",           "cert_content",      "private_key",
    "type",           "instance_id",       "trusted_root_ca",
    "algorithm_type", "cert_content_sign", "private_key_sign"};

static bool read_form(const struct sim *sim, yajl_val root, struct form *f,
                      struct sim_cert_reply *out)
{
  if (!root || !YAJL_IS_OBJECT(root)) {
    bad_param(out, "body");
    return false;
  }
  for (size_t i = 0; i < root->u.object.len; i++) {
    const char *k = root->u.object.keys[i];
    size_t j = 0, n = sizeof(form_keys) / sizeof(form_keys[0]);
    while (j < n && strcmp(k, form_keys[j]))
      j++;
    if (j == n && sim->settings.reject_unknown_fields) {
      bad_param(out, k);
      return false;
    }
    if (j < n && !YAJL_IS_STRING(root->u.object.values[i])) {
      bad_param(out, k);
      return false;
    }
  }
  const char **slots[] = {&f->name, &f->cert_content, &f->private_key,
                          &f->type, &f->instance_id,  &f->trusted_root_ca};
  for (size_t i = 0; i < 6; i++) {
    yajl_val v = obj_get(root, form_keys[i]);
    *slots[i] = v ? YAJL_GET_STRING(v) : NULL;
  }
  for (size_t i = 0; i < 3; i++)
    if (!*slots[i] || !**slots[i]) {
      missing_param(out, form_keys[i]);
      return false;
    }
  if (!name_ok(f->name)) {
    bad_param(out, "name");
    return false;
  }
  if (f->type && strcmp(f->type, "global") && strcmp(f->type, "instance")) {
    bad_param(out, "type");
    return false;
  }
  return true;
}

/* "instance" certificates belong to a gateway of the project. */
static bool form_scope(const struct sim *sim, long project,
                       const struct form *f, struct sim_cert_reply *out)
{
  if (!f->type || strcmp(f->type, "instance"))
    return true;
  if (!f->instance_id || !*f->instance_id) {
    missing_param(out, "instance_id");
    return false;
  }
  long g = sim_find_gw(sim, f->instance_id);
  if (g < 0 || (long)sim->gws[g].project != project) {
    reply_error(out, 404, "APIG.3030", "The instance does not exist,id:%s",
                f->instance_id);
    return false;
  }
  return true;
}

/* Parse and check the content; on success *m holds the leaf's fields. */
static bool form_content(const struct sim *sim, const struct form *f,
                         struct meta *m, struct sim_cert_reply *out)
{
  struct content k = {0};
  parse_content(f->cert_content, f->private_key, &k);
  bool ok = check_content(&k, sim_now_ms(sim) / 1000, out);
  if (ok && meta_fill(k.chain[0], k.key, m) != 0) {
    meta_free(m);
    reply_error(out, 500, "APIG.9999", "System error");
    ok = false;
  }
  content_free(&k);
  return ok;
}

static int store_form(struct sim *sim, struct sim_cert *c, const struct form *f,
                      struct meta *m)
{
  char *name = strdup(f->name), *pem = strdup(f->cert_content);
  char *key = strdup(f->private_key), *now = now_iso(sim);
  if (!name || !pem || !key || !now) {
    free(name);
    free(pem);
    wipe_free(key);
    free(now);
    return -ENOMEM;
  }
  take_meta(c, m);
  free(c->name);
  c->name = name;
  free(c->cert_pem);
  c->cert_pem = pem;
  wipe_free(c->key_pem);
  c->key_pem = key;
  c->trusted_root_ca = f->trusted_root_ca && *f->trusted_root_ca;
  if (!c->create_time) {
    c->create_time = now;
    now = strdup(now);
  }
  free(c->update_time);
  c->update_time = now;
  return 0;
}

/* ---- the operations ---------------------------------------------------- */

static void do_create(struct sim *sim, long project, yajl_val body,
                      struct sim_cert_reply *out)
{
  struct form f = {0};
  struct meta m = {0};
  if (!read_form(sim, body, &f, out) || !form_scope(sim, project, &f, out))
    return;
  if (sim->settings.cert_quota &&
      live_certs(sim, project) >= sim->settings.cert_quota) {
    reply_error(out, 400, "APIG.3199",
                "The number of certificates exceeds the maximum allowed "
                "limit (%zu)",
                sim->settings.cert_quota);
    return;
  }
  if (!form_content(sim, &f, &m, out))
    return;
  bool inst = f.type && !strcmp(f.type, "instance");
  long ci = new_cert(sim, project);
  struct sim_cert *c = ci >= 0 ? &sim->certs[ci] : NULL;
  if (c) {
    c->type = strdup(inst ? "instance" : "global");
    c->instance_id = strdup(inst ? f.instance_id : "common");
    c->created_ms = sim_mono_ms();
  }
  if (!c || !c->type || !c->instance_id || store_form(sim, c, &f, &m)) {
    meta_free(&m);
    reply_error(out, 500, "APIG.9999", "System error");
    return;
  }
  reply_cert(sim, c, 200, out);
}

static void do_update(struct sim *sim, long project, const char *id,
                      yajl_val body, struct sim_cert_reply *out)
{
  long ci = cert_in_project(sim, project, id);
  struct form f = {0};
  struct meta m = {0};
  if (ci < 0) {
    not_found(out);
    return;
  }
  if (!read_form(sim, body, &f, out) || !form_scope(sim, project, &f, out))
    return;
  struct sim_cert *c = &sim->certs[ci];
  /* type and instance_id cannot change (Terraform: ForceNew) */
  if (f.type && strcmp(f.type, c->type)) {
    bad_param(out, "type");
    return;
  }
  if (!form_content(sim, &f, &m, out))
    return;
  if (store_form(sim, c, &f, &m)) {
    meta_free(&m);
    reply_error(out, 500, "APIG.9999", "System error");
    return;
  }
  reply_cert(sim, c, 200, out);
}

static void do_delete(struct sim *sim, long project, const char *id,
                      struct sim_cert_reply *out)
{
  long ci = cert_in_project(sim, project, id);
  if (ci < 0) {
    not_found(out);
    return;
  }
  struct sim_cert *c = &sim->certs[ci];
  if (c->nslots) {
    reply_error(out, 400, "APIG.3400",
                "The resource cannot be changed: the certificate is bound to "
                "%zu domain name(s)",
                c->nslots);
    return;
  }
  c->deleted_ms = sim_mono_ms();
  free(c->cert_pem);
  wipe_free(c->key_pem);
  c->cert_pem = c->key_pem = NULL;
  out->status = 204;
}

/* ---- list -------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *conn, const char *k)
{
  const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, k);
  return v && *v ? v : NULL;
}

static bool arg_long(struct MHD_Connection *conn, const char *k, long long def,
                     long long *out, struct sim_cert_reply *reply)
{
  const char *v = arg(conn, k);
  char *end;
  *out = def;
  if (!v)
    return true;
  errno = 0;
  *out = strtoll(v, &end, 10);
  if (*end || errno) {
    bad_param(reply, k);
    return false;
  }
  return true;
}

/* name matches as a part of the name (APIG's list filters on names are
 * fuzzy); the other filters are exact. */
static bool list_match(const struct sim_cert *c, struct MHD_Connection *conn)
{
  const char *name = arg(conn, "name"), *cn = arg(conn, "common_name");
  const char *type = arg(conn, "type"), *inst = arg(conn, "instance_id");
  const char *sig = arg(conn, "signature_algorithm");
  const char *alg = arg(conn, "algorithm_type");
  return (!name || strstr(c->name, name)) &&
         (!cn || !strcmp(c->common_name, cn)) &&
         (!type || !strcmp(c->type, type)) &&
         (!inst || !strcmp(c->instance_id, inst)) &&
         (!sig || !strcmp(c->signature_algorithm, sig)) &&
         (!alg || !strcmp(c->algorithm_type, alg));
}

/* offset < 0 -> 0; limit <= 0 -> 20, > 500 -> 500; in creation order. */
static void do_list(struct sim *sim, long project, struct MHD_Connection *conn,
                    struct sim_cert_reply *out)
{
  long long off, lim;
  if (!arg_long(conn, "offset", 0, &off, out) ||
      !arg_long(conn, "limit", 20, &lim, out))
    return;
  off = off < 0 ? 0 : off;
  lim = lim <= 0 ? 20 : lim > 500 ? 500 : lim;
  settle(sim);
  size_t total = 0, size = 0;
  yajl_gen g = yajl_gen_alloc(NULL);
  int rc = g ? 0 : -ENOMEM;
  if (g) {
    yajl_gen_map_open(g);
    rc |= sim_gen_str(g, "certs");
    yajl_gen_array_open(g);
  }
  for (size_t i = 0; !rc && i < sim->ncerts; i++) {
    const struct sim_cert *c = &sim->certs[i];
    if ((long)c->project != project || !visible(c) || !list_match(c, conn))
      continue;
    if (total++ >= (unsigned long long)off && size < (size_t)lim) {
      rc |= gen_cert(g, sim, c, false);
      size++;
    }
  }
  if (g) {
    yajl_gen_array_close(g);
    rc |= sim_gen_kv_int(g, "size", (long long)size);
    rc |= sim_gen_kv_int(g, "total", (long long)total);
    yajl_gen_map_close(g);
  }
  if (!rc && !sim_gen_take(g, &out->body, &out->body_len))
    out->status = 200;
  else
    reply_error(out, 500, "APIG.9999", "System error");
  if (g)
    yajl_gen_free(g);
}

void sim_certs_handle(struct sim *sim, int op, long project,
                      const char *cert_id, const char *body, size_t len,
                      struct MHD_Connection *conn, struct sim_cert_reply *out)
{
  if (op == SIM_OP_CERTS) {
    do_list(sim, project, conn, out);
    return;
  }
  if (op == SIM_OP_DELETE) {
    do_delete(sim, project, cert_id, out);
    return;
  }
  yajl_val root = len ? sim_json_parse(body, len) : NULL;
  if (op == SIM_OP_CREATE)
    do_create(sim, project, root, out);
  else
    do_update(sim, project, cert_id, root, out);
  yajl_tree_free(root); /* the key's text in the tree is the request's */
}

/* ---- seeds and state --------------------------------------------------- */

static char *seed_text(yajl_val v, const char *inline_key, const char *file_key,
                       const char *dir, char *err, size_t errlen)
{
  const char *s = YAJL_GET_STRING(
      yajl_tree_get(v, (const char *[]){inline_key, NULL}, yajl_t_string));
  if (s)
    return strdup(s);
  const char *f = YAJL_GET_STRING(
      yajl_tree_get(v, (const char *[]){file_key, NULL}, yajl_t_string));
  if (!f)
    return NULL;
  char path[4096];
  snprintf(path, sizeof(path), "%s%s%s", f[0] == '/' ? "" : dir,
           f[0] == '/' ? "" : "/", f);
  FILE *fp = fopen(path, "rb");
  char *buf = fp ? calloc(1, SEED_PEM_MAX + 1) : NULL;
  if (buf)
    (void)fread(buf, 1, SEED_PEM_MAX, fp);
  if (fp)
    fclose(fp);
  if (!buf)
    snprintf(err, errlen, "%s: cannot read", path);
  return buf;
}

int sim_cert_seed_pem(struct sim *sim, struct sim_cert *c, yajl_val v,
                      const char *seed_dir, char *err, size_t errlen)
{
  err[0] = '\0';
  char *pem = seed_text(v, "cert_pem", "cert_file", seed_dir, err, errlen);
  char *key =
      pem ? seed_text(v, "key_pem", "key_file", seed_dir, err, errlen) : NULL;
  if (!pem || !key) {
    free(pem);
    wipe_free(key);
    if (!err[0] && !pem && !key)
      return 0; /* a certificate without content, as before */
    if (!err[0])
      snprintf(err, errlen, "certificate %s: cert_pem needs key_pem", c->id);
    return -EINVAL;
  }
  /* a seed may hold an expired certificate (to test expiry handling):
   * every check but the dates */
  struct content k = {0};
  struct sim_cert_reply r = {0};
  struct meta m = {0};
  parse_content(pem, key, &k);
  bool ok = check_content(&k, 0, &r) || !strcmp(r.code, "APIG.2102");
  ok = ok && meta_fill(k.chain[0], k.key, &m) == 0;
  content_free(&k);
  if (!ok) {
    meta_free(&m);
    free(pem);
    wipe_free(key);
    snprintf(err, errlen, "certificate %s: %s", c->id,
             r.msg[0] ? r.msg : "bad PEM content");
    return -EINVAL;
  }
  take_meta(c, &m);
  c->cert_pem = pem;
  c->key_pem = key;
  (void)sim;
  return 0;
}

int sim_certs_state_gen(yajl_gen g, const struct sim *sim)
{
  int rc = sim_gen_str(g, "certificates");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < sim->ncerts; i++) {
    const struct sim_cert *c = &sim->certs[i];
    if (c->deleted_ms)
      continue;
    yajl_gen_map_open(g);
    rc |= sim_gen_kv_str(g, "id", c->id);
    rc |= sim_gen_kv_str(g, "project", sim->projects[c->project].id);
    rc |= sim_gen_kv_str(g, "name", c->name);
    rc |= sim_gen_kv_str(g, "type", c->type);
    rc |= sim_gen_kv_str(g, "common_name", c->common_name);
    rc |= gen_strs(g, "san", c->san, c->nsan);
    rc |= sim_gen_kv_str(g, "not_after", c->not_after);
    rc |= sim_gen_kv_str(g, "serial_number", c->serial ? c->serial : c->id);
    rc |= sim_gen_kv_bool(g, "has_content", c->cert_pem != NULL);
    rc |= sim_gen_kv_int(g, "bindings", (long long)c->nslots);
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  return rc;
}
