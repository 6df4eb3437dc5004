/* SPDX-License-Identifier: MIT */
/*
 * accounts, gateways and certificates: three mappings of name -> entry.
 * Each name goes into a hash table so that bindings resolve in O(1).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Resolve a reference to an account: *dst = its index, or NO_INDEX. */
void config__ref_account(void *ud, const struct config__node *v,
                         const char *path, void *dst)
{
  struct config__loader *l = ud;

  *(size_t *)dst = config__resolve(l, v, path, &l->accounts, l->cfg->accounts,
                                   sizeof(*l->cfg->accounts), "account");
}

static void endpoint(void *ud, const struct config__node *v, const char *path,
                     void *dst)
{
  struct config__loader *l = ud;
  char **out = dst;
  const char *why;

  if (!config__get_str(l->c, v, path))
    return;
  why = config__check_endpoint(v->str, v->len, out);
  if (why != NULL)
    config__error(l->c, v->line, v->col, "%s: \"%.80s\" %s", path, v->str, why);
}

static void secret(void *ud, const struct config__node *v, const char *path,
                   void *dst)
{
  struct config__loader *l = ud;

  config__load_secret(l->c, v, path, dst);
}

static const char *const method_names[] = {"aksk", "token", "password"};

static void method(void *ud, const struct config__node *v, const char *path,
                   void *dst)
{
  struct config__loader *l = ud;
  int *out = dst;

  *out = -1;
  if (!config__get_str(l->c, v, path))
    return;
  for (size_t i = 0; i < NELEM(method_names); i++)
    if (strcmp(v->str, method_names[i]) == 0) {
      *out = (int)i;
      return;
    }
  config__error(l->c, v->line, v->col,
                "%s: unknown method \"%.40s\" (expected aksk, token or "
                "password)",
                path, v->str);
}

static const char *check_file(const char *s, size_t len)
{
  struct stat st;

  if (s[0] != '/')
    return "must be an absolute path";
  if (stat(s, &st) < 0 || access(s, R_OK) < 0)
    return "cannot be read";
  if (!S_ISREG(st.st_mode))
    return "is not a regular file";
  return NULL;
}

/* The parsed auth block, before it is copied into the account. */
struct auth {
  int method;
  char *iam_endpoint, *user, *domain;
  struct config_secret access_key, secret_key, token, password;
};

#define AF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct auth, f), __VA_ARGS__         \
  }
static const struct config__field auth_fields[] = {
    AF("method", CONFIG__F_CUSTOM, method, .required = true, .custom = method),
    AF("access_key", CONFIG__F_CUSTOM, access_key, .custom = secret),
    AF("secret_key", CONFIG__F_CUSTOM, secret_key, .custom = secret),
    AF("token", CONFIG__F_CUSTOM, token, .custom = secret),
    AF("iam_endpoint", CONFIG__F_CUSTOM, iam_endpoint, .custom = endpoint),
    AF("user", CONFIG__F_STR, user),
    AF("domain", CONFIG__F_STR, domain),
    AF("password", CONFIG__F_CUSTOM, password, .custom = secret),
};

/* Which auth_fields rows each method needs ('r'), allows ('o') or
 * forbids ('-'), in the table's order. */
static const char *const auth_use[] = {
    [CONFIG_AUTH_AKSK] = "rrr-----",
    [CONFIG_AUTH_TOKEN] = "r--r----",
    [CONFIG_AUTH_PASSWORD] = "r---orrr",
};

static void auth_block(struct config__loader *l, const struct config__node *v,
                       const char *path, struct config_account *acc)
{
  const struct config__node *seen[NELEM(auth_fields)];
  struct auth a = {.method = -1};

  if (config__section(l->c, v, path, auth_fields, NELEM(auth_fields), &a, seen,
                      l) &&
      a.method >= 0) {
    const char *use = auth_use[a.method];
    for (size_t i = 0; i < NELEM(auth_fields); i++) {
      if (use[i] == 'r' && seen[i] == NULL)
        config__error(l->c, v->line, v->col,
                      "%s: missing required key \"%s\" (method %s)", path,
                      auth_fields[i].name, method_names[a.method]);
      if (use[i] == '-' && seen[i] != NULL)
        config__error(l->c, seen[i]->line, seen[i]->col,
                      "%s.%s: not used with method %s", path,
                      auth_fields[i].name, method_names[a.method]);
    }
    acc->auth_method = (enum config_auth_method)a.method;
  }
  acc->access_key = a.access_key;
  acc->secret_key = a.secret_key;
  acc->token = a.token;
  acc->password = a.password;
  acc->iam_endpoint = a.iam_endpoint;
  acc->user = a.user;
  acc->domain = a.domain;
  if (a.method == CONFIG_AUTH_PASSWORD && acc->iam_endpoint == NULL &&
      acc->region != NULL &&
      asprintf(&acc->iam_endpoint, "https://iam.%s.myhuaweicloud.com",
               acc->region) < 0) {
    acc->iam_endpoint = NULL;
    l->c->oom = true;
  }
}

static void auth(void *ud, const struct config__node *v, const char *path,
                 void *dst)
{
  (void)dst; /* auth needs the region: done after the account's section */
  (void)ud;
  (void)v;
  (void)path;
}

#define TF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_account, f),           \
    __VA_ARGS__                                                                \
  }
static const struct config__field tls_fields[] = {
    TF("ca_file", CONFIG__F_STR, ca_file, .check = check_file),
};

static void tls(void *ud, const struct config__node *v, const char *path,
                void *dst)
{
  struct config__loader *l = ud;
  const struct config__node *seen[NELEM(tls_fields)];

  config__section(l->c, v, path, tls_fields, NELEM(tls_fields), dst, seen, l);
}

#define LF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_limits, f),            \
    __VA_ARGS__                                                                \
  }
static const struct config__field limits_fields[] = {
    LF("requests_per_second", CONFIG__F_DOUBLE, requests_per_second, .min = 0,
       .min_excl = true, .max = 10000, .def = 5),
    LF("burst", CONFIG__F_U32, burst, .min = 1, .max = 4294967295.0, .def = 10),
    LF("max_in_flight", CONFIG__F_U32, max_in_flight, .min = 1, .max = 4096,
       .def = 32),
};

static void limits(void *ud, const struct config__node *v, const char *path,
                   void *dst)
{
  struct config__loader *l = ud;
  const struct config__node *seen[NELEM(limits_fields)];

  config__section(l->c, v, path, limits_fields, NELEM(limits_fields), dst, seen,
                  l);
}

enum { A_REGION, A_PROJECT, A_ENDPOINT, A_AUTH, A_TLS, A_LIMITS };
static const struct config__field account_fields[] = {
    [A_REGION] = TF("region", CONFIG__F_STR, region, .required = true,
                    .check = config__check_region),
    [A_PROJECT] = TF("project_id", CONFIG__F_STR, project_id, .required = true,
                     .check = config__check_id32),
    [A_ENDPOINT] =
        TF("endpoint", CONFIG__F_CUSTOM, endpoint, .custom = endpoint),
    [A_AUTH] =
        TF("auth", CONFIG__F_CUSTOM, name, .required = true, .custom = auth),
    [A_TLS] = TF("tls", CONFIG__F_CUSTOM, name, .custom = tls),
    [A_LIMITS] = TF("limits", CONFIG__F_CUSTOM, limits, .custom = limits),
};

static void one_account(struct config__loader *l, const struct config__node *v,
                        const char *path, void *elem)
{
  struct config_account *acc = elem;
  const struct config__node *seen[NELEM(account_fields)];
  char sub[512];

  config__defaults(l->c, limits_fields, NELEM(limits_fields), &acc->limits);
  if (!config__section(l->c, v, path, account_fields, NELEM(account_fields),
                       acc, seen, l))
    return;
  if (seen[A_AUTH] != NULL) {
    config__pathf(sub, sizeof(sub), "%s.auth", path);
    auth_block(l, seen[A_AUTH], sub, acc);
  }
  if (acc->endpoint == NULL && seen[A_ENDPOINT] == NULL &&
      acc->region != NULL &&
      asprintf(&acc->endpoint, "https://apig.%s.myhuaweicloud.com",
               acc->region) < 0) {
    acc->endpoint = NULL;
    l->c->oom = true;
  }
}

#define GF(n, t, f, ...)                                                       \
  {                                                                            \
    .name = n, .type = t, .off = offsetof(struct config_gateway, f),           \
    __VA_ARGS__                                                                \
  }
/* The index of the first address of list[0..n) equal to a, or n. */
static size_t same_address(const struct config_ingress *list, size_t n,
                           const struct config_ingress *a)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i].text, a->text) == 0)
      return i;
  return n;
}

/* ingress: a non-empty list of addresses, each once (compared in their
 * normal form: "[::1]:443" and "[0::1]:443" are one address). */
static void ingress(void *ud, const struct config__node *v, const char *path,
                    void *dst)
{
  struct config__loader *l = ud;
  struct config_gateway *gw =
      (struct config_gateway *)((char *)dst -
                                offsetof(struct config_gateway, ingress));
  char sub[600];
  size_t i = 0;

  if (v->type != CONFIG__SEQ || v->n == 0 || v->n > CONFIG__MAX_INGRESS) {
    config__error(l->c, v->line, v->col,
                  "%s: expected a list of 1 to %d addresses (\"IPv4:PORT\" "
                  "or \"[IPv6]:PORT\")",
                  path, CONFIG__MAX_INGRESS);
    return;
  }
  gw->ingress = calloc(v->n, sizeof(*gw->ingress));
  if (gw->ingress == NULL) {
    l->c->oom = true;
    return;
  }
  for (const struct config__node *a = v->first; a != NULL; a = a->next) {
    struct config_ingress *cur = &gw->ingress[gw->ningress];
    const char *why;
    size_t first;

    config__path_index(sub, sizeof(sub), path, i++);
    if (!config__get_str(l->c, a, sub))
      continue;
    why = config__check_ingress(a->str, a->len, cur);
    if (why != NULL) {
      config__error(l->c, a->line, a->col, "%s: \"%.80s\" %s", sub, a->str,
                    why);
      continue;
    }
    cur->line = a->line;
    cur->col = a->col;
    first = same_address(gw->ingress, gw->ningress, cur);
    if (first < gw->ningress) {
      config__error(l->c, a->line, a->col,
                    "%s: \"%.80s\" is listed twice (as %s at line %u)", sub,
                    a->str, cur->text, (unsigned)gw->ingress[first].line);
      continue;
    }
    gw->ningress++;
  }
}

enum { G_ACCOUNT, G_INSTANCE, G_INGRESS };
static const struct config__field gateway_fields[] = {
    [G_ACCOUNT] = GF("account", CONFIG__F_CUSTOM, account, .required = true,
                     .custom = config__ref_account),
    [G_INSTANCE] = GF("instance_id", CONFIG__F_STR, instance_id,
                      .required = true, .check = config__check_instance_id),
    [G_INGRESS] = GF("ingress", CONFIG__F_CUSTOM, ingress, .custom = ingress),
};

static bool instance_eq(size_t val, const void *arg)
{
  const struct config__loader *l = arg;

  return strcmp(l->inst[val].key, l->inst[l->ninst].key) == 0;
}

static void report_same_instance(struct config__loader *l,
                                 const struct config__instance *at,
                                 const struct config__instance *other)
{
  config__error(l->c, at->node->line, at->node->col,
                "gateways.%s.instance_id: the same instance as gateway \"%s\" "
                "(line %u): an instance has one gateway name (instance IDs "
                "compare without case and dashes)",
                at->gateway, other->gateway, (unsigned)other->node->line);
}

/*
 * Two gateway names for one instance would each plan the instance's
 * bindings and undo each other's writes, pass after pass: refuse them, at
 * both places. APIG takes an instance ID dashed or not and in any case,
 * so the key is the 32 hex digits, lowercased. Any account: an instance
 * ID is a UUID, one instance whichever account names it.
 */
static void index_instance(struct config__loader *l, const char *gateway,
                           const struct config__node *node, const char *id)
{
  struct config__instance *cur;
  size_t found;
  int rc;

  if (l->inst == NULL)
    return; /* out of memory: reported */
  cur = &l->inst[l->ninst];
  config__instance_key(id, cur->key);
  cur->gateway = gateway;
  cur->node = node;
  cur->reported = false;
  rc = config__htab_upsert(&l->instances,
                           config__hash(cur->key, strlen(cur->key), 0),
                           l->ninst, instance_eq, l, &found);
  if (rc < 0) {
    l->c->oom = true;
    return;
  }
  if (rc == 0) {
    l->ninst++;
    return;
  }
  struct config__instance *first = &l->inst[found];
  if (!first->reported) {
    report_same_instance(l, first, cur);
    first->reported = true;
  }
  report_same_instance(l, cur, first);
}

static void one_gateway(struct config__loader *l, const struct config__node *v,
                        const char *path, void *elem)
{
  struct config_gateway *gw = elem;
  const struct config__node *seen[NELEM(gateway_fields)];

  gw->account = NO_INDEX;
  config__section(l->c, v, path, gateway_fields, NELEM(gateway_fields), gw,
                  seen, l);
  if (gw->instance_id == NULL || seen[G_INSTANCE] == NULL)
    return; /* missing or invalid: reported */
  /* APIG returns instance IDs in lowercase: compare like with like */
  for (char *p = gw->instance_id; *p != '\0'; p++)
    if (*p >= 'A' && *p <= 'F')
      *p = (char)(*p - 'A' + 'a');
  index_instance(l, gw->name, seen[G_INSTANCE], gw->instance_id);
}

typedef void (*one_fn)(struct config__loader *l, const struct config__node *v,
                       const char *path, void *elem);

/* A mapping of name -> entry: check each name, index it, parse the entry.
 * Returns the array (calloc'ed, *n entries) or NULL. */
static void *named_map(struct config__loader *l, const struct config__node *map,
                       const char *what, struct config__htab *idx, size_t size,
                       size_t *n, one_fn one)
{
  const struct config__node *k, *v;
  char path[512];
  char *arr;

  *n = 0;
  if (map->type != CONFIG__MAP) {
    config__error(l->c, map->line, map->col,
                  "%s: expected a mapping of name: entry, got %s", what,
                  config__kind(map));
    return NULL;
  }
  arr = calloc(map->n / 2 + 1, size);
  if (arr == NULL) {
    l->c->oom = true;
    return NULL;
  }
  for (k = map->first; k != NULL && k->next != NULL; k = v->next) {
    struct config__named a = {k->str, arr, size};
    const char *why = config__check_name(k->str, k->len);
    size_t found;
    int rc;

    v = k->next;
    if (why != NULL) {
      config__error(l->c, k->line, k->col, "%s: \"%.80s\": %s", what, k->str,
                    why);
      continue;
    }
    char *elem = arr + *n * size;
    rc = config__htab_upsert(idx, config__hash(k->str, k->len, 0), *n,
                             config__name_eq, &a, &found);
    if (rc < 0) {
      l->c->oom = true;
      break;
    }
    if (rc == 1) {
      const struct config__node *first = map->first;
      /* find the first key of that name for its line */
      while (first != NULL && strcmp(first->str, k->str) != 0)
        first = first->next->next;
      config__error(l->c, k->line, k->col,
                    "%s.%s: duplicate key (first given at line %u)", what,
                    k->str, first ? (unsigned)first->line : 0u);
      continue;
    }
    *(char **)elem = strdup(k->str);
    if (*(char **)elem == NULL)
      l->c->oom = true;
    (*n)++;
    config__path_key(path, sizeof(path), what, k->str);
    one(l, v, path, elem);
  }
  return arr;
}

void config__load_accounts(struct config__loader *l,
                           const struct config__node *map)
{
  l->cfg->accounts =
      named_map(l, map, "accounts", &l->accounts, sizeof(struct config_account),
                &l->cfg->naccounts, one_account);
  if (map->type == CONFIG__MAP && map->n == 0)
    config__error(l->c, map->line, map->col,
                  "accounts: at least one account is required");
}

void config__load_gateways(struct config__loader *l,
                           const struct config__node *map)
{
  /* one slot per gateway, plus the one index_instance() fills to look up */
  l->inst = calloc(map->n / 2 + 1, sizeof(*l->inst));
  if (l->inst == NULL)
    l->c->oom = true;
  l->cfg->gateways =
      named_map(l, map, "gateways", &l->gateways, sizeof(struct config_gateway),
                &l->cfg->ngateways, one_gateway);
  config__htab_free(&l->instances);
  free(l->inst);
  l->inst = NULL;
  l->ninst = 0;
}

void config__load_certificates(struct config__loader *l,
                               const struct config__node *map)
{
  l->cfg->certificates =
      named_map(l, map, "certificates", &l->certificates,
                sizeof(struct config_certificate), &l->cfg->ncertificates,
                config__one_certificate);
}
