/* SPDX-License-Identifier: MIT */
/*
 * Internal to the config module: shared by the .c files of config/ only.
 * Symbols use the config__ prefix (module-internal, non-static).
 *
 * Calls between the files go one way, never in a circle: util.c (arena,
 * diagnostics, hash table) and check.c (formats) call no other file;
 * tree.c, schema.c (typed values, sections, references) and secret.c call
 * those two; accounts.c, certificates.c, bindings.c and files.c call any of
 * the above (accounts.c and certificates.c each other's one handler, and
 * bindings.c certificates.c's coverage check), and config.c calls them
 * all.
 */
#ifndef CERTBIND_CONFIG_INTERNAL_H
#define CERTBIND_CONFIG_INTERNAL_H

#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Diagnostics beyond this many are counted, not stored: a generated file
 * with 100k bad lines must not need 100k messages to say so. */
#define CONFIG__MAX_DIAGS 1000
/* Secret files larger than this are refused (a key or token is small). */
#define CONFIG__MAX_SECRET 65536
/* Longest account, gateway or certificate name. */
#define CONFIG__MAX_NAME 64
/* Most ingress addresses of one gateway (a gateway has a few: its
 * load balancer's or its nodes' addresses). */
#define CONFIG__MAX_INGRESS 256

/* ---- arena: the YAML tree lives here and is freed in one go ---- */
struct config__chunk;
struct config__arena {
  struct config__chunk *head;
};
void *config__arena_alloc(struct config__arena *a, size_t n);
void config__arena_free(struct config__arena *a);

/* ---- packed strings: NUL-terminated copies end to end in 64 KiB blocks,
 * freed together (the bindings' domains: 100,000 of them were as many
 * mallocs, ~10 bytes of overhead each) ---- */
char *config__strings_add(struct config__strblock **head, const char *s,
                          size_t n);
void config__strings_free(struct config__strblock **head);

/* ---- the parsed YAML tree ---- */
enum config__ntype {
  CONFIG__SCALAR,
  CONFIG__MAP,
  CONFIG__SEQ,
};

struct config__node {
  enum config__ntype type;
  bool plain;         /* scalar: plain style (may be a number, bool or null) */
  uint32_t line, col; /* 1-based, from libyaml's start mark */
  const char *str;    /* scalar: NUL-terminated copy (may hold NULs) */
  size_t len;
  /* children: a sequence's items; a mapping's key, value, key, value... */
  struct config__node *first, *last, *next;
  size_t n; /* number of child nodes (a mapping has n / 2 pairs) */
};

/* ---- diagnostics collected during one load ---- */
struct config__diagent {
  uint32_t line, col;
  size_t seq;
  char *msg;
};

struct config__ctx {
  const char *name;
  struct config__arena arena;
  struct config__diagent *diags;
  size_t ndiags, cap, dropped;
  bool oom;
};

void config__error(struct config__ctx *c, uint32_t line, uint32_t col,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void config__verror(struct config__ctx *c, uint32_t line, uint32_t col,
                    const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
size_t config__nerrors(const struct config__ctx *c);
/* Sort and move the messages into diag as "FILE:LINE:COL: msg". */
int config__flush(struct config__ctx *c, struct config_diag *diag);
void config__ctx_free(struct config__ctx *c);
/* snprintf for key paths: a path that does not fit is cut, never
 * overflowed (names are at most 64 characters, so it does not happen). */
void config__pathf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* base.key (key alone when base is ""), and base[i]: the same as
 * config__pathf with "%s.%s" and "%s[%zu]", cut the same way. */
void config__path_key(char *buf, size_t size, const char *base,
                      const char *key);
void config__path_index(char *buf, size_t size, const char *base, size_t i);
/* Append one preformatted line ("FILE: msg") to diag. */
int config__diag_add(struct config_diag *diag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Parse buf with libyaml's event API into a tree in c->arena. Anchors,
 * aliases, tags, merge keys, complex keys, several documents and nesting
 * deeper than CONFIG_MAX_DEPTH stop the parse at once with one error at
 * their position. Returns 0 (with *root NULL for an empty stream) or
 * -EINVAL / -ENOMEM.
 */
int config__parse(struct config__ctx *c, const char *buf, size_t len,
                  struct config__node **root);

/* ---- open-addressing hash table of indexes ---- */
struct config__hslot;
struct config__htab {
  struct config__hslot *slots;
  size_t cap, n;
};
typedef bool (*config__heq)(size_t val, const void *arg);
/* Find an entry whose hash is h and for which eq(val, arg) holds. If there
 * is one, store its value in *found and return 1; otherwise insert val and
 * return 0. -ENOMEM on allocation failure. */
int config__htab_upsert(struct config__htab *t, uint64_t h, size_t val,
                        config__heq eq, const void *arg, size_t *found);
/* 1 and *found when present, 0 when absent. */
int config__htab_find(const struct config__htab *t, uint64_t h, config__heq eq,
                      const void *arg, size_t *found);
void config__htab_free(struct config__htab *t);
uint64_t config__hash(const void *p, size_t len, uint64_t seed);

/* ---- format checks (check.c); each returns NULL or why it failed ---- */
const char *config__check_id32(const char *s, size_t len);
const char *config__check_instance_id(const char *s, size_t len);
/* The comparison key of a valid instance ID (32 hex digits or a dashed
 * UUID): its 32 hex digits, lowercased, in key (33 bytes). */
void config__instance_key(const char *s, char key[33]);
const char *config__check_region(const char *s, size_t len);
const char *config__check_name(const char *s, size_t len);
/* A domain's longest A-label form, and the longest input taken (a
 * U-label is longer in UTF-8 bytes than in characters). */
#define CONFIG__DOMAIN_MAX 253
#define CONFIG__DOMAIN_INPUT_MAX 1024
struct config__domain {
  char name[CONFIG__DOMAIN_MAX + 1]; /* the normalised A-label form */
  char why[320];                     /* a reason that names a label */
};
/* A domain as written -> d->name: one trailing dot dropped, ASCII
 * lowercased, U-labels converted to A-labels (libidn2, UTS #46
 * non-transitional), every label LDH and every xn-- label valid punycode
 * of a valid U-label; a leading "*." kept. NULL, or why not (a static
 * string or d->why). */
const char *config__check_domain(const char *s, size_t len,
                                 struct config__domain *d);
/* *out: malloc'd normalised "https://host[:port]". */
const char *config__check_endpoint(const char *s, size_t len, char **out);
const char *config__check_env_name(const char *s, size_t len);
/* An ingress address: "A.B.C.D:PORT" or "[IPv6]:PORT", port 1..65535,
 * no host name, not the unspecified address -> out (addr, addrlen and
 * the normalised text; line/col left 0). NULL or why not. */
const char *config__check_ingress(const char *s, size_t len,
                                  struct config_ingress *out);
/* A systemd credential's name: a plain file name (no '/', not "." or
 * ".."), so that it cannot leave $CREDENTIALS_DIRECTORY. */
const char *config__check_credential_name(const char *s, size_t len);
/* Strict decimal integer: no sign other than '-', no leading zeros, no
 * trailing junk. Returns 0, -EINVAL or -ERANGE. */
int config__parse_int(const char *s, size_t len, long long *out);
/* Strict finite decimal number. Returns 0 or -EINVAL / -ERANGE. */
int config__parse_double(const char *s, size_t len, double *out);
/* A plain scalar that YAML reads as null: "", "~", "null", "Null", "NULL". */
bool config__is_null(const struct config__node *n);

/* ---- secrets (secret.c) ---- */
/* Read a secret described by node ({ file: P }, { env: N } or
 * { credential: N }) into *out.
 * Problems are reported at their position, under path. */
void config__load_secret(struct config__ctx *c, const struct config__node *n,
                         const char *path, struct config_secret *out);
/* The same for a PEM private key (a certificate's key): the same sources
 * and mode rules, but lines are allowed (line ends are its only control
 * characters). */
void config__load_key(struct config__ctx *c, const struct config__node *n,
                      const char *path, struct config_secret *out);
/* Wipe the value (OPENSSL_cleanse), then free everything. */
void config__secret_wipe(struct config_secret *s);

/* ---- table-driven sections (schema.c) ---- */
enum config__ftype {
  CONFIG__F_U32,    /* plain integer in [min, max] -> uint32_t */
  CONFIG__F_DOUBLE, /* plain number in [min, max] (or (min, max]) -> double */
  CONFIG__F_BOOL,   /* true / false -> bool */
  CONFIG__F_STR,    /* any non-null scalar, checked by check -> char * */
  CONFIG__F_CUSTOM, /* parsed by custom() */
};

typedef void (*config__fcustom)(void *ud, const struct config__node *v,
                                const char *path, void *dst);

/* One row per key: name, type, required, range, default, where it goes. */
struct config__field {
  const char *name;
  enum config__ftype type;
  bool required;
  double min, max;
  bool min_excl;       /* F_DOUBLE: min itself is out of range */
  double def;          /* F_U32, F_DOUBLE, F_BOOL: the default */
  const char *def_str; /* F_STR: the default (strdup'ed), or NULL */
  size_t off;          /* offset of the destination in the section struct */
  const char *(*check)(const char *s, size_t len); /* F_STR: NULL or why */
  config__fcustom custom;                          /* F_CUSTOM */
};

#define CONFIG__SECTION_MAX 16

/*
 * Apply the table to map: defaults first, then every key (unknown and
 * duplicate keys, wrong types and ranges are reported), then the missing
 * required keys (at the mapping's mark). seen[i] gets field i's value node
 * or NULL. Returns false when map is not a mapping (reported).
 */
bool config__section(struct config__ctx *c, const struct config__node *map,
                     const char *path, const struct config__field *f, size_t nf,
                     void *base, const struct config__node **seen, void *ud);
const char *config__kind(const struct config__node *n);
bool config__get_u32(struct config__ctx *c, const struct config__node *v,
                     const char *path, double min, double max, uint32_t *out);
bool config__get_double(struct config__ctx *c, const struct config__node *v,
                        const char *path, double min, double max, bool min_excl,
                        double *out);
bool config__get_bool(struct config__ctx *c, const struct config__node *v,
                      const char *path, bool *out);
/* A non-null scalar with no NUL byte; reports and returns false if not. */
bool config__get_str(struct config__ctx *c, const struct config__node *v,
                     const char *path);

/* Apply a table's defaults only (for an absent section). */
void config__defaults(struct config__ctx *c, const struct config__field *f,
                      size_t nf, void *base);

/* One gateway's instance while the gateways load (accounts.c): a gateway
 * is its instance, so two names for one instance are an error. */
struct config__instance {
  char key[33];                    /* 32 lowercase hex digits, no dashes */
  const char *gateway;             /* the gateway's name (in cfg) */
  const struct config__node *node; /* its instance_id scalar */
  bool reported;                   /* its own diagnostic is out */
};

/* ---- one load in progress (config.c, accounts.c, bindings.c) ---- */
struct config__loader {
  struct config__ctx *c;
  struct config *cfg;
  struct config__htab accounts, gateways, certificates;
  struct config__htab pairs; /* (gateway, domain) -> binding index */
  size_t bcap;               /* capacity of cfg->bindings */
  /* instance key -> index into inst; only while the gateways load */
  struct config__htab instances;
  struct config__instance *inst;
  size_t ninst;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NO_INDEX ((size_t)-1)

/* A lookup key for the named tables (accounts, gateways, certificates),
 * whose entry structs all start with their char *name. */
struct config__named {
  const char *name;
  const void *arr;
  size_t size;
};

/* config__heq for the named tables' hash indexes. */
bool config__name_eq(size_t val, const void *arg);

/* Resolve a reference to a named entry (the string node v, read as
 * config__get_str reads it; in schema.c): its index, or NO_INDEX after
 * reporting "undefined WHAT" at v. */
size_t config__resolve(struct config__loader *l, const struct config__node *v,
                       const char *path, const struct config__htab *idx,
                       const void *arr, size_t size, const char *what);

void config__load_accounts(struct config__loader *l,
                           const struct config__node *map);
void config__load_gateways(struct config__loader *l,
                           const struct config__node *map);
void config__load_certificates(struct config__loader *l,
                               const struct config__node *map);
/* A custom field handler: a reference to an account -> its index (size_t)
 * or NO_INDEX (accounts.c). */
void config__ref_account(void *ud, const struct config__node *v,
                         const char *path, void *dst);
/* One entry of certificates (certificates.c): an `id` one, or one from
 * files, loaded and checked with certfile. */
void config__one_certificate(struct config__loader *l,
                             const struct config__node *v, const char *path,
                             void *elem);
/* A domain bound to a certificate from files must be one of its names
 * (certificates.c): reported at v, under path, when it is not. */
void config__check_covered(struct config__loader *l,
                           const struct config__node *v, const char *path,
                           size_t cert, const char *domain);
/* Free one certificate's fields, wiping its key (certificates.c). */
void config__certificate_free(struct config_certificate *cert);
void config__load_bindings(struct config__loader *l,
                           const struct config__node *seq);
/* A custom field handler that does nothing: the caller reads seen[]
 * (schema.c). */
void config__noop(void *ud, const struct config__node *v, const char *path,
                  void *dst);

#endif
