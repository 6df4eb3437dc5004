/* SPDX-License-Identifier: MIT */
/* Offline checks of a certificate given as files (certfile.h), with
 * OpenSSL: parsing, key match, key type, validity, chain order. */
#include "certfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "statefile.h"

/* A chain longer than this is not a TLS chain. */
#define MAX_CERTS 16

struct loader {
  const char *path;
  char *err;
  size_t errlen;
  X509 *certs[MAX_CERTS]; /* as the file holds them */
  size_t ncerts;
  bool used[MAX_CERTS];   /* put in the chain (or the root left out) */
  X509 *chain[MAX_CERTS]; /* leaf first, borrowed from certs */
  size_t nchain;
  EVP_PKEY *key;
  enum certfile_input blame; /* of the refusal, if any */
};

static int fail(struct loader *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct loader *L, const char *fmt, ...)
{
  va_list ap;
  int n = snprintf(L->err, L->errlen, "%s: ", L->path);
  if (n < 0 || (size_t)n >= L->errlen)
    return -EINVAL;
  va_start(ap, fmt);
  vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* "CN=…" of a certificate's subject, for messages (never key material). */
static void subject_of(X509 *x, char *buf, size_t len)
{
  X509_NAME_oneline(X509_get_subject_name(x), buf, (int)len);
}

static int read_certs(struct loader *L, const char *text, size_t len)
{
  BIO *b = BIO_new_mem_buf(text, (int)len);
  if (!b)
    return -ENOMEM;
  X509 *x;
  while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    if (L->ncerts == MAX_CERTS) {
      X509_free(x);
      BIO_free(b);
      return fail(L, "more than %d certificates", MAX_CERTS);
    }
    L->certs[L->ncerts++] = x;
  }
  BIO_free(b);
  /* the loop ends on "no start line" at the end of the file; anything else
   * (a damaged PEM block) is an error */
  unsigned long e = ERR_peek_last_error();
  bool at_end = ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!at_end)
    return fail(L, "certificate %zu is not a valid PEM certificate",
                L->ncerts + 1);
  if (!L->ncerts)
    return fail(L, "no PEM certificate in the file (is it a certificate?)");
  return 0;
}

/* OpenSSL asks for a passphrase only for an encrypted key: none is given,
 * the question itself is the answer. */
static int no_passphrase(char *buf, int size, int rwflag, void *asked)
{
  *(bool *)asked = true;
  return -1;
}

static int read_key(struct loader *L, const char *key, size_t key_len)
{
  L->blame = CERTFILE_INPUT_KEY;
  if (key_len > CERTFILE_MAX_SIZE)
    return fail(L, "the private key is too large");
  BIO *b = BIO_new_mem_buf(key, (int)key_len);
  if (!b)
    return -ENOMEM;
  bool asked = false;
  L->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &asked);
  BIO_free(b);
  ERR_clear_error();
  if (asked)
    return fail(L, "the private key is encrypted (APIG needs it unencrypted)");
  if (!L->key)
    return fail(L, "the private key is not a PEM private key");
  int id = EVP_PKEY_get_base_id(L->key);
  if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC)
    return fail(L, "the private key is %s; APIG takes RSA or ECDSA keys",
                OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "of an unknown type");
  return 0;
}

/* The leaf is the certificate the key belongs to, wherever it is. */
static int find_leaf(struct loader *L)
{
  for (size_t i = 0; i < L->ncerts; i++) {
    if (EVP_PKEY_eq(X509_get0_pubkey(L->certs[i]), L->key) == 1) {
      ERR_clear_error();
      L->used[i] = true;
      L->chain[L->nchain++] = L->certs[i];
      return 0;
    }
  }
  ERR_clear_error();
  char subj[256];
  subject_of(L->certs[0], subj, sizeof(subj));
  L->blame = CERTFILE_INPUT_KEY;
  return fail(L, "the private key does not match the certificate (%s)", subj);
}

static bool self_signed(X509 *x)
{
  return X509_check_issued(x, x) == X509_V_OK;
}

/* x issued by candidate: names and key identifiers agree, and the
 * signature verifies with the candidate's key. */
static bool issued_by(X509 *x, X509 *candidate)
{
  bool ok = X509_check_issued(candidate, x) == X509_V_OK &&
            X509_verify(x, X509_get0_pubkey(candidate)) == 1;
  ERR_clear_error();
  return ok;
}

static int order_chain(struct loader *L)
{
  X509 *cur = L->chain[0];
  while (!self_signed(cur)) {
    size_t i;
    for (i = 0; i < L->ncerts; i++)
      if (!L->used[i] && issued_by(cur, L->certs[i]))
        break;
    if (i == L->ncerts)
      break; /* the rest of the path is not in the file: fine */
    L->used[i] = true;
    cur = L->certs[i];
    if (self_signed(cur))
      break; /* the root: clients have it, APIG wants it left out */
    L->chain[L->nchain++] = cur;
  }
  for (size_t i = 0; i < L->ncerts; i++) {
    if (L->used[i])
      continue;
    char subj[256];
    subject_of(L->certs[i], subj, sizeof(subj));
    return fail(L,
                "the chain does not link: certificate %zu (%s) is not an "
                "issuer on the path of the certificate the key matches",
                i + 1, subj);
  }
  return 0;
}

static int check_times(struct loader *L, int64_t now)
{
  time_t t = (time_t)now;
  for (size_t i = 0; i < L->nchain; i++) {
    X509 *x = L->chain[i];
    char subj[256];
    const char *what = i ? "intermediate certificate" : "certificate";
    subject_of(x, subj, sizeof(subj));
    if (X509_cmp_time(X509_get0_notAfter(x), &t) < 0)
      return fail(L, "the %s (%s) has expired", what, subj);
    if (X509_cmp_time(X509_get0_notBefore(x), &t) > 0)
      return fail(L, "the %s (%s) is not valid yet", what, subj);
  }
  return 0;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
  struct tm tm;
  if (ASN1_TIME_to_tm(t, &tm) != 1)
    return -EINVAL;
  *out = (int64_t)timegm(&tm);
  return 0;
}

static int leaf_serial(X509 *leaf, struct certfile *out)
{
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  char *dec = bn ? BN_bn2dec(bn) : NULL;
  BN_free(bn);
  if (hex)
    out->serial_hex = strdup(hex);
  if (dec)
    out->serial_dec = strdup(dec);
  OPENSSL_free(hex);
  OPENSSL_free(dec);
  return out->serial_hex && out->serial_dec ? 0 : -ENOMEM;
}

static int leaf_cn(X509 *leaf, struct certfile *out)
{
  X509_NAME *n = X509_get_subject_name(leaf);
  int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
  unsigned char *utf8 = NULL;
  if (i >= 0 && ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
                                               X509_NAME_get_entry(n, i))) < 0)
    utf8 = NULL;
  out->common_name = strdup(utf8 ? (char *)utf8 : "");
  OPENSSL_free(utf8);
  return out->common_name ? 0 : -ENOMEM;
}

static char *lower_dup(const unsigned char *s, int len)
{
  char *d = malloc((size_t)len + 1);
  if (!d)
    return NULL;
  for (int i = 0; i < len; i++)
    d[i] = (char)tolower(s[i]);
  d[len] = '\0';
  return d;
}

static int leaf_sans(X509 *leaf, struct certfile *out)
{
  GENERAL_NAMES *gens =
      X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
  int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
  int rc = 0;
  out->sans = calloc((size_t)n + 1, sizeof(*out->sans));
  if (!out->sans)
    rc = -ENOMEM;
  for (int i = 0; !rc && i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type != GEN_DNS)
      continue;
    const ASN1_IA5STRING *s = g->d.dNSName;
    char *name = lower_dup(ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
    if (!name)
      rc = -ENOMEM;
    else
      out->sans[out->nsans++] = name;
  }
  GENERAL_NAMES_free(gens);
  ERR_clear_error();
  return rc;
}

static int chain_text(struct loader *L, struct certfile *out)
{
  BIO *b = BIO_new(BIO_s_mem());
  int rc = b ? 0 : -ENOMEM;
  for (size_t i = 0; !rc && i < L->nchain; i++)
    if (PEM_write_bio_X509(b, L->chain[i]) != 1)
      rc = -ENOMEM;
  char *p = NULL;
  long n = rc ? 0 : BIO_get_mem_data(b, &p);
  if (!rc && (n <= 0 || !(out->chain_pem = malloc((size_t)n + 1))))
    rc = -ENOMEM;
  if (!rc) {
    memcpy(out->chain_pem, p, (size_t)n);
    out->chain_pem[n] = '\0';
    out->chain_len = (size_t)n;
    out->chain_count = L->nchain;
  }
  BIO_free(b);
  return rc;
}

static int leaf_digest(X509 *leaf, struct certfile *out)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(leaf, EVP_sha256(), md, &n) != 1 || n != 32)
    return -ENOMEM;
  for (unsigned int i = 0; i < n; i++)
    snprintf(out->sha256 + 2 * i, 3, "%02x", md[i]);
  return 0;
}

static int describe(struct loader *L, struct certfile *out)
{
  X509 *leaf = L->chain[0];
  int rc = chain_text(L, out);
  if (!rc)
    rc = leaf_digest(leaf, out);
  if (!rc)
    rc = leaf_serial(leaf, out);
  if (!rc)
    rc = leaf_cn(leaf, out);
  if (!rc)
    rc = leaf_sans(leaf, out);
  if (!rc && (asn1_time_unix(X509_get0_notBefore(leaf), &out->not_before) ||
              asn1_time_unix(X509_get0_notAfter(leaf), &out->not_after)))
    rc = fail(L, "the certificate's validity dates cannot be read");
  out->key_type = EVP_PKEY_get_base_id(L->key) == EVP_PKEY_RSA
                      ? CERTFILE_KEY_RSA
                      : CERTFILE_KEY_EC;
  return rc;
}

static int check_all(struct loader *L, const char *key, size_t key_len,
                     int64_t now, struct certfile *out)
{
  char *text = NULL;
  size_t len = 0;
  int rc = statefile_read(L->path, CERTFILE_MAX_SIZE, &text, &len);
  if (rc == -EFBIG)
    return fail(L, "is larger than %u bytes (a certificate chain is a few KiB)",
                CERTFILE_MAX_SIZE);
  if (rc) {
    statefile_strerror(rc, "read", L->path, L->err, L->errlen);
    return rc;
  }
  rc = read_certs(L, text, len);
  free(text);
  if (!rc)
    rc = read_key(L, key, key_len);
  if (!rc) {
    L->blame = CERTFILE_INPUT_CERT;
    rc = find_leaf(L);
  }
  if (!rc)
    rc = order_chain(L);
  if (!rc)
    rc = check_times(L, now);
  if (!rc)
    rc = describe(L, out);
  return rc;
}

int certfile_load(const char *cert_path, const char *key, size_t key_len,
                  int64_t now, struct certfile *out, char *err, size_t errlen)
{
  return certfile_load_blame(cert_path, key, key_len, now, out, err, errlen,
                             NULL);
}

int certfile_load_blame(const char *cert_path, const char *key, size_t key_len,
                        int64_t now, struct certfile *out, char *err,
                        size_t errlen, enum certfile_input *blame)
{
  struct loader L = {.path = cert_path, .err = err, .errlen = errlen};
  memset(out, 0, sizeof(*out));
  if (errlen)
    err[0] = '\0';
  int rc = check_all(&L, key, key_len, now, out);
  for (size_t i = 0; i < L.ncerts; i++)
    X509_free(L.certs[i]);
  EVP_PKEY_free(L.key); /* OpenSSL wipes a private key it frees */
  ERR_clear_error();
  if (rc) {
    certfile_free(out);
    if (errlen && !err[0])
      snprintf(err, errlen, "%s: out of memory", cert_path);
    if (blame)
      *blame = L.blame;
  }
  return rc;
}

void certfile_free(struct certfile *cf)
{
  if (!cf)
    return;
  free(cf->chain_pem);
  free(cf->serial_hex);
  free(cf->serial_dec);
  free(cf->common_name);
  for (size_t i = 0; i < cf->nsans; i++)
    free(cf->sans[i]);
  free(cf->sans);
  memset(cf, 0, sizeof(*cf));
}

bool certfile_covers(const char *const *sans, size_t nsans, const char *domain)
{
  bool wild_domain = domain[0] == '*';
  const char *dot = strchr(domain, '.');
  for (size_t i = 0; i < nsans; i++) {
    const char *san = sans[i];
    if (!strcasecmp(san, domain))
      return true;
    /* "*.parent" covers "label.parent": one label, never "parent" itself
     * nor a deeper name, and never another wildcard */
    if (!wild_domain && san[0] == '*' && san[1] == '.' && dot &&
        dot != domain && !strcasecmp(dot + 1, san + 2))
      return true;
  }
  return false;
}
