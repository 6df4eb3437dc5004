/* SPDX-License-Identifier: MIT */
/*
 * auth: credentials applied to requests (see auth.h).
 */
#include "auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "sign.h"

/* Longest header line we build: keeps snprintf bounded and rejects
 * absurd inputs instead of truncating them. */
#define AUTH_MAX_LINE 16384

/* A value that goes into a header line must not end it early. */
static bool header_safe(const char *s)
{
  return s && *s && !strpbrk(s, "\r\n");
}

/* Append "name: value" to a private list; the line buffer is wiped since
 * the value may be a secret. Joined by lengths: snprintf's engine cost
 * more than the rest of the line's making (four lines a request). */
static int list_add(struct curl_slist **list, const char *name,
                    const char *value)
{
  char line[AUTH_MAX_LINE];
  size_t nlen = strlen(name), vlen = strlen(value);
  if (nlen + 2 + vlen >= sizeof(line))
    return -EINVAL;
  memcpy(line, name, nlen);
  memcpy(line + nlen, ": ", 2);
  memcpy(line + nlen + 2, value, vlen + 1);
  struct curl_slist *l = curl_slist_append(*list, line);
  OPENSSL_cleanse(line, nlen + 2 + vlen);
  if (!l)
    return -ENOMEM;
  *list = l;
  return 0;
}

static int add_aksk(const struct config_account *acct, struct sign_key *key,
                    const char *method, const char *url_host, const char *path,
                    const char *query, const void *body, size_t body_len,
                    time_t now, struct curl_slist **list)
{
  const struct config_secret *ak = &acct->access_key, *sk = &acct->secret_key;
  if (!header_safe(ak->value) || !sk->value || sk->len == 0 ||
      !header_safe(url_host) || !header_safe(acct->project_id))
    return -EINVAL;
  char date[SIGN_DATE_LEN + 1];
  int rc = sign_format_date(now, date);
  if (rc)
    return rc;
  struct sign_header h[3];
  size_t nh = 0;
  if (body_len)
    h[nh++] = (struct sign_header){"Content-Type", AUTH_CONTENT_TYPE};
  h[nh++] = (struct sign_header){"Host", url_host};
  h[nh++] = (struct sign_header){SIGN_DATE_HEADER, date};
  struct sign_input in = {.method = method,
                          .path = path,
                          .query = query,
                          .headers = h,
                          .nheaders = nh,
                          .body = body,
                          .body_len = body_len,
                          .sdk_date = date};
  char *authz = NULL;
  rc = key ? sign_authorization_key(&in, ak->value, key, &authz)
           : sign_authorization(&in, ak->value, sk->value, sk->len, &authz);
  for (size_t i = 0; !rc && i < nh; i++)
    rc = list_add(list, h[i].name, h[i].value);
  if (!rc)
    rc = list_add(list, "X-Project-Id", acct->project_id);
  if (!rc)
    rc = list_add(list, "Authorization", authz);
  if (authz) {
    OPENSSL_cleanse(authz, strlen(authz));
    free(authz);
  }
  return rc;
}

static int add_token(const struct config_account *acct, const char *token,
                     size_t body_len, struct curl_slist **list)
{
  if (!token && acct->auth_method == CONFIG_AUTH_TOKEN)
    token = acct->token.value;
  if (!header_safe(token))
    return -EINVAL;
  int rc = 0;
  if (body_len)
    rc = list_add(list, "Content-Type", AUTH_CONTENT_TYPE);
  if (!rc)
    rc = list_add(list, "X-Auth-Token", token);
  return rc;
}

int auth_add_headers(const struct config_account *acct, const char *token,
                     const char *method, const char *url_host, const char *path,
                     const char *query, const void *body, size_t body_len,
                     time_t now, struct curl_slist **headers)
{
  return auth_add_headers_key(acct, NULL, token, method, url_host, path, query,
                              body, body_len, now, headers);
}

int auth_add_headers_key(const struct config_account *acct,
                         struct sign_key *key, const char *token,
                         const char *method, const char *url_host,
                         const char *path, const char *query, const void *body,
                         size_t body_len, time_t now,
                         struct curl_slist **headers)
{
  if (!acct || !headers || !method || (!body && body_len))
    return -EINVAL;
  struct curl_slist *mine = NULL;
  int rc;
  switch (acct->auth_method) {
  case CONFIG_AUTH_AKSK:
    rc = add_aksk(acct, key, method, url_host, path, query, body, body_len, now,
                  &mine);
    break;
  case CONFIG_AUTH_TOKEN:
  case CONFIG_AUTH_PASSWORD:
    rc = add_token(acct, token, body_len, &mine);
    break;
  default:
    rc = -EINVAL;
  }
  if (rc) {
    auth_headers_free(mine);
    return rc;
  }
  /* Splice: the caller's list is untouched on every failure above. */
  if (!*headers) {
    *headers = mine;
  } else {
    struct curl_slist *tail = *headers;
    while (tail->next)
      tail = tail->next;
    tail->next = mine;
  }
  return 0;
}

int auth_url_host(const char *url, char **host)
{
  if (!url || !host)
    return -EINVAL;
  CURLU *u = curl_url();
  if (!u)
    return -ENOMEM;
  char *scheme = NULL, *name = NULL, *port = NULL;
  int rc = -EINVAL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &name, 0) != CURLUE_OK)
    goto out;
  bool https = strcasecmp(scheme, "https") == 0;
  if (!https && strcasecmp(scheme, "http") != 0)
    goto out;
  /* Without CURLU_DEFAULT_PORT only an explicit port is returned. */
  if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
    port = NULL;
  if (port && strcmp(port, https ? "443" : "80") == 0) {
    curl_free(port);
    port = NULL;
  }
  size_t n = strlen(name) + (port ? strlen(port) + 1 : 0) + 1;
  *host = malloc(n);
  if (!*host) {
    rc = -ENOMEM;
    goto out;
  }
  snprintf(*host, n, port ? "%s:%s" : "%s", name, port);
  rc = 0;
out:
  curl_free(scheme);
  curl_free(name);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

void auth_headers_free(struct curl_slist *headers)
{
  for (struct curl_slist *h = headers; h; h = h->next)
    if (h->data)
      OPENSSL_cleanse(h->data, strlen(h->data));
  curl_slist_free_all(headers);
}

bool auth_header_is_secret(const char *line)
{
  static const char *const names[] = {"authorization", "x-auth-token",
                                      "x-subject-token", "x-security-token"};
  if (!line)
    return false;
  const char *colon = strchr(line, ':');
  size_t n = colon ? (size_t)(colon - line) : strlen(line);
  while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
    n--;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strlen(names[i]) == n && strncasecmp(line, names[i], n) == 0)
      return true;
  return false;
}

int auth_iam_url(const struct config_account *acct, char **url)
{
  static const char suffix[] = "/v3/auth/tokens?nocatalog=true";
  if (!acct || !url || !acct->iam_endpoint || !*acct->iam_endpoint)
    return -EINVAL;
  size_t n = strlen(acct->iam_endpoint);
  while (n && acct->iam_endpoint[n - 1] == '/')
    n--; /* "https://iam.x/" must not give "//v3" */
  char *s = malloc(n + sizeof(suffix));
  if (!s)
    return -ENOMEM;
  memcpy(s, acct->iam_endpoint, n);
  memcpy(s + n, suffix, sizeof(suffix));
  *url = s;
  return 0;
}

/* yajl output sink that never leaves a copy of the password in freed
 * memory: growing moves the bytes and wipes the old block. */
struct wipe_buf {
  char *p;
  size_t len;
  size_t cap;
  int err;
};

static void wipe_buf_print(void *ctx, const char *s, size_t n)
{
  struct wipe_buf *b = ctx;
  if (b->err)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = malloc(cap);
    if (!p) {
      b->err = -ENOMEM;
      return;
    }
    if (b->p) {
      memcpy(p, b->p, b->len);
      OPENSSL_cleanse(b->p, b->cap);
      free(b->p);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static int gen_str(yajl_gen g, const char *s)
{
  return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) ==
                 yajl_gen_status_ok
             ? 0
             : -EINVAL;
}

/* gen_str over a NULL-terminated list; stops at the first failure. */
static int gen_strs(yajl_gen g, const char *const *v)
{
  int rc = 0;
  for (; !rc && *v; v++)
    rc = gen_str(g, *v);
  return rc;
}

static int gen_open(yajl_gen g, const char *key)
{
  int rc = key ? gen_str(g, key) : 0;
  if (!rc && yajl_gen_map_open(g) != yajl_gen_status_ok)
    rc = -EINVAL;
  return rc;
}

static int gen_close(yajl_gen g, int n)
{
  for (int i = 0; i < n; i++)
    if (yajl_gen_map_close(g) != yajl_gen_status_ok)
      return -EINVAL;
  return 0;
}

static int gen_iam_body(yajl_gen g, const struct config_account *a)
{
  int rc = gen_open(g, NULL);
  if (!rc)
    rc = gen_open(g, "auth");
  if (!rc)
    rc = gen_open(g, "identity");
  if (!rc)
    rc = gen_str(g, "methods");
  if (!rc && yajl_gen_array_open(g) != yajl_gen_status_ok)
    rc = -EINVAL;
  if (!rc)
    rc = gen_str(g, "password");
  if (!rc && yajl_gen_array_close(g) != yajl_gen_status_ok)
    rc = -EINVAL;
  if (!rc)
    rc = gen_open(g, "password");
  if (!rc)
    rc = gen_open(g, "user");
  if (!rc)
    rc = gen_strs(g, (const char *const[]){"name", a->user, "password",
                                           a->password.value, NULL});
  if (!rc)
    rc = gen_open(g, "domain");
  if (!rc)
    rc = gen_strs(g, (const char *const[]){"name", a->domain, NULL});
  if (!rc)
    rc = gen_close(g, 4); /* domain, user, password, identity */
  if (!rc)
    rc = gen_open(g, "scope");
  if (!rc)
    rc = gen_open(g, "project");
  if (!rc)
    rc = gen_strs(g, (const char *const[]){"id", a->project_id, NULL});
  if (!rc)
    rc = gen_close(g, 4); /* project, scope, auth, root */
  return rc;
}

int auth_iam_request_body(const struct config_account *acct, char **body,
                          size_t *len)
{
  if (!acct || !body || !len || acct->auth_method != CONFIG_AUTH_PASSWORD ||
      !acct->user || !*acct->user || !acct->domain || !*acct->domain ||
      !acct->password.value || !acct->project_id || !*acct->project_id)
    return -EINVAL;
  struct wipe_buf b = {0};
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g)
    return -ENOMEM;
  int rc = 0;
  if (!yajl_gen_config(g, yajl_gen_print_callback, wipe_buf_print, &b) ||
      !yajl_gen_config(g, yajl_gen_validate_utf8, 1))
    rc = -EINVAL;
  if (!rc)
    rc = gen_iam_body(g, acct);
  yajl_gen_free(g);
  if (!rc)
    rc = b.err;
  if (rc) {
    if (b.p)
      OPENSSL_cleanse(b.p, b.cap);
    free(b.p);
    return rc;
  }
  *body = b.p;
  *len = b.len;
  return 0;
}

/* Read n digits at *p, advancing it. */
static int take_num(const char **p, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9')
      return -EINVAL;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int take_char(const char **p, char c)
{
  if (**p != c)
    return -EINVAL;
  (*p)++;
  return 0;
}

/* "+hh:mm", "-hh:mm" or "Z" at the end of s; seconds east of UTC. */
static int parse_offset(const char *s, long *offset)
{
  if (strcmp(s, "Z") == 0) {
    *offset = 0;
    return 0;
  }
  int sign = *s == '+' ? 1 : *s == '-' ? -1 : 0;
  int h, m;
  if (!sign)
    return -EINVAL;
  s++;
  if (take_num(&s, 2, &h) || take_char(&s, ':') || take_num(&s, 2, &m) || *s ||
      h > 23 || m > 59)
    return -EINVAL;
  *offset = sign * (h * 3600L + m * 60L);
  return 0;
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)", fraction truncated. */
static int parse_rfc3339(const char *s, time_t *out)
{
  int y, mo, d, h, mi, se;
  if (take_num(&s, 4, &y) || take_char(&s, '-') || take_num(&s, 2, &mo) ||
      take_char(&s, '-') || take_num(&s, 2, &d) || take_char(&s, 'T') ||
      take_num(&s, 2, &h) || take_char(&s, ':') || take_num(&s, 2, &mi) ||
      take_char(&s, ':') || take_num(&s, 2, &se))
    return -EINVAL;
  if (*s == '.') {
    s++;
    if (*s < '0' || *s > '9')
      return -EINVAL;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  long offset;
  if (parse_offset(s, &offset))
    return -EINVAL;
  /* Reuse sign's strict calendar check via its compact date form. */
  char compact[32]; /* room for any int, so no truncation warning */
  snprintf(compact, sizeof(compact), "%04d%02d%02dT%02d%02d%02dZ", y, mo, d, h,
           mi, se);
  time_t t;
  if (sign_parse_date(compact, &t))
    return -EINVAL;
  *out = t - offset;
  return 0;
}

int auth_iam_parse_expiry(const char *body, size_t len, time_t *expires_at)
{
  if (!body || !expires_at || len == 0 || memchr(body, '\0', len))
    return -EINVAL;
  char *copy = strndup(body, len); /* yajl_tree wants a C string */
  if (!copy)
    return -ENOMEM;
  yajl_val root = yajl_tree_parse(copy, NULL, 0);
  free(copy);
  if (!root)
    return -EINVAL;
  const char *path[] = {"token", "expires_at", NULL};
  yajl_val v = yajl_tree_get(root, path, yajl_t_string);
  int rc = v ? parse_rfc3339(YAJL_GET_STRING(v), expires_at) : -EINVAL;
  yajl_tree_free(root);
  return rc;
}

int auth_token_set(struct auth_token *t, const char *value, size_t len,
                   time_t expires_at, time_t now)
{
  if (!t || !value)
    return -EINVAL;
  while (len && (*value == ' ' || *value == '\t')) {
    value++;
    len--;
  }
  while (len && strchr(" \t\r\n", value[len - 1]))
    len--;
  if (len == 0 || memchr(value, '\0', len) || memchr(value, '\r', len) ||
      memchr(value, '\n', len))
    return -EINVAL;
  char *v = strndup(value, len);
  if (!v)
    return -ENOMEM;
  auth_token_clear(t);
  t->value = v;
  t->expires_at = expires_at;
  t->obtained_at = now;
  return 0;
}

bool auth_token_needs_renewal(const struct auth_token *t, time_t now)
{
  if (!t || !t->value || t->expires_at <= t->obtained_at)
    return true;
  time_t life = t->expires_at - t->obtained_at;
  time_t at80 = t->obtained_at + life / 5 * 4 + life % 5 * 4 / 5;
  time_t hour_before = t->expires_at - 3600;
  time_t half = t->obtained_at + life / 2;
  time_t renew_at = at80 < hour_before ? at80 : hour_before;
  if (renew_at < half)
    renew_at = half;
  return now >= renew_at;
}

void auth_token_clear(struct auth_token *t)
{
  if (!t)
    return;
  if (t->value) {
    OPENSSL_cleanse(t->value, strlen(t->value));
    free(t->value);
  }
  memset(t, 0, sizeof(*t));
}

/* ---- tokens kept across passes -------------------------------------- */

struct auth_token_slot {
  char *account;
  unsigned char key[32]; /* credentials_key() it was stored with */
  struct auth_token token;
};

static void digest_field(EVP_MD_CTX *ctx, const char *s, size_t len)
{
  uint64_t n = s ? (uint64_t)len : UINT64_MAX; /* NULL differs from "" */

  EVP_DigestUpdate(ctx, &n, sizeof(n));
  if (s)
    EVP_DigestUpdate(ctx, s, len);
}

static void digest_str(EVP_MD_CTX *ctx, const char *s)
{
  digest_field(ctx, s, s ? strlen(s) : 0);
}

/* Everything the token was obtained with and for, salted. */
static int credentials_key(struct auth_token_cache *c,
                           const struct config_account *a,
                           unsigned char out[32])
{
  EVP_MD_CTX *ctx;
  unsigned int len = 0;
  int ok;

  if (!c->salted) {
    if (RAND_bytes(c->salt, sizeof(c->salt)) != 1)
      return -EIO;
    c->salted = true;
  }
  ctx = EVP_MD_CTX_new();
  if (!ctx)
    return -ENOMEM;
  ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  if (ok) {
    EVP_DigestUpdate(ctx, c->salt, sizeof(c->salt));
    digest_str(ctx, a->name);
    digest_str(ctx, a->region);
    digest_str(ctx, a->project_id);
    digest_str(ctx, a->endpoint);
    digest_str(ctx, a->iam_endpoint);
    digest_str(ctx, a->user);
    digest_str(ctx, a->domain);
    digest_field(ctx, a->password.value, a->password.len);
    ok = EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
  }
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -ENOMEM;
}

static struct auth_token_slot *find_slot(struct auth_token_cache *c,
                                         const char *account)
{
  for (size_t i = 0; account && i < c->n; i++)
    if (strcmp(c->slots[i].account, account) == 0)
      return &c->slots[i];
  return NULL;
}

static void remove_slot(struct auth_token_cache *c, struct auth_token_slot *s)
{
  auth_token_clear(&s->token);
  free(s->account);
  OPENSSL_cleanse(s->key, sizeof(s->key));
  *s = c->slots[--c->n];
}

int auth_token_cache_get(struct auth_token_cache *c,
                         const struct config_account *acct, time_t now,
                         struct auth_token *out)
{
  struct auth_token_slot *s = c ? find_slot(c, acct->name) : NULL;
  unsigned char key[32];
  int rc;

  if (!s)
    return -ENOENT;
  rc = credentials_key(c, acct, key);
  if (rc < 0)
    return rc;
  if (CRYPTO_memcmp(key, s->key, sizeof(key)) != 0) {
    remove_slot(c, s); /* made for other credentials: never again */
    return -ENOENT;
  }
  if (auth_token_needs_renewal(&s->token, now))
    return -ENOENT;
  return auth_token_set(out, s->token.value, strlen(s->token.value),
                        s->token.expires_at, s->token.obtained_at);
}

int auth_token_cache_put(struct auth_token_cache *c,
                         const struct config_account *acct,
                         const struct auth_token *t)
{
  struct auth_token_slot *s;
  unsigned char key[32];
  int rc;

  if (!c || !acct->name || !t || !t->value)
    return -EINVAL;
  rc = credentials_key(c, acct, key);
  if (rc < 0)
    return rc;
  s = find_slot(c, acct->name);
  if (!s) {
    struct auth_token_slot *n = realloc(c->slots, (c->n + 1) * sizeof(*n));
    if (!n)
      return -ENOMEM;
    c->slots = n;
    s = &c->slots[c->n];
    memset(s, 0, sizeof(*s));
    s->account = strdup(acct->name);
    if (!s->account)
      return -ENOMEM;
    c->n++;
  }
  memcpy(s->key, key, sizeof(key));
  rc = auth_token_set(&s->token, t->value, strlen(t->value), t->expires_at,
                      t->obtained_at);
  if (rc < 0)
    remove_slot(c, s); /* never leave a stale token under a new key */
  return rc;
}

void auth_token_cache_drop(struct auth_token_cache *c,
                           const struct config_account *acct)
{
  struct auth_token_slot *s = c ? find_slot(c, acct->name) : NULL;

  if (s)
    remove_slot(c, s);
}

void auth_token_cache_retain(struct auth_token_cache *c,
                             const struct config *cfg)
{
  for (size_t i = 0; c && i < c->n;) {
    const struct config_account *a = NULL;
    unsigned char key[32];
    for (size_t k = 0; k < cfg->naccounts && !a; k++)
      if (strcmp(cfg->accounts[k].name, c->slots[i].account) == 0)
        a = &cfg->accounts[k];
    if (a && a->auth_method == CONFIG_AUTH_PASSWORD &&
        credentials_key(c, a, key) == 0 &&
        CRYPTO_memcmp(key, c->slots[i].key, sizeof(key)) == 0)
      i++;
    else
      remove_slot(c, &c->slots[i]); /* the last slot moves to i */
  }
}

void auth_token_cache_free(struct auth_token_cache *c)
{
  if (!c)
    return;
  while (c->n)
    remove_slot(c, &c->slots[c->n - 1]);
  free(c->slots);
  OPENSSL_cleanse(c->salt, sizeof(c->salt));
  memset(c, 0, sizeof(*c));
}
