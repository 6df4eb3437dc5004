/* SPDX-License-Identifier: MIT */
/*
 * The table-driven part of validation: a section is a mapping whose keys
 * are described by a table of struct config__field rows.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *config__kind(const struct config__node *n)
{
  if (n->type == CONFIG__MAP)
    return "a mapping";
  if (n->type == CONFIG__SEQ)
    return "a list";
  if (config__is_null(n))
    return "null";
  return "a string";
}

/* "expected X, got Y": scalars are shown (a short prefix of them). */
static void wrong(struct config__ctx *c, const struct config__node *v,
                  const char *path, const char *expected)
{
  if (v->type == CONFIG__SCALAR && !config__is_null(v))
    config__error(c, v->line, v->col, "%s: expected %s, got %s\"%.40s\"", path,
                  expected, v->plain ? "" : "the string ", v->str);
  else
    config__error(c, v->line, v->col, "%s: expected %s, got %s", path, expected,
                  config__kind(v));
}

static void range_error(struct config__ctx *c, const struct config__node *v,
                        const char *path, double min, double max, bool min_excl)
{
  if (max >= 4294967295.0)
    config__error(c, v->line, v->col,
                  "%s: %s is out of range (must be %s %.15g)", path, v->str,
                  min_excl ? ">" : ">=", min);
  else
    config__error(c, v->line, v->col,
                  "%s: %s is out of range (must be %s %.15g and <= %.15g)",
                  path, v->str, min_excl ? ">" : ">=", min, max);
}

bool config__get_u32(struct config__ctx *c, const struct config__node *v,
                     const char *path, double min, double max, uint32_t *out)
{
  long long x;
  int rc;

  if (v->type != CONFIG__SCALAR || !v->plain || config__is_null(v)) {
    wrong(c, v, path, "an integer");
    return false;
  }
  rc = config__parse_int(v->str, v->len, &x);
  if (rc == -EINVAL) {
    wrong(c, v, path, "an integer");
    return false;
  }
  if (rc == -ERANGE || (double)x < min || (double)x > max) {
    range_error(c, v, path, min, max, false);
    return false;
  }
  *out = (uint32_t)x;
  return true;
}

bool config__get_double(struct config__ctx *c, const struct config__node *v,
                        const char *path, double min, double max, bool min_excl,
                        double *out)
{
  double x;
  int rc;

  if (v->type != CONFIG__SCALAR || !v->plain || config__is_null(v)) {
    wrong(c, v, path, "a number");
    return false;
  }
  rc = config__parse_double(v->str, v->len, &x);
  if (rc == -EINVAL) {
    wrong(c, v, path, "a number");
    return false;
  }
  if (rc == -ERANGE || x < min || (min_excl && x == min) || x > max) {
    range_error(c, v, path, min, max, min_excl);
    return false;
  }
  *out = x;
  return true;
}

bool config__get_bool(struct config__ctx *c, const struct config__node *v,
                      const char *path, bool *out)
{
  static const char *const yaml11[] = {"yes", "no",  "on", "off", "y",   "n",
                                       "Yes", "No",  "On", "Off", "YES", "NO",
                                       "ON",  "OFF", "Y",  "N"};

  if (v->type == CONFIG__SCALAR && v->plain) {
    if (!strcmp(v->str, "true") || !strcmp(v->str, "True") ||
        !strcmp(v->str, "TRUE")) {
      *out = true;
      return true;
    }
    if (!strcmp(v->str, "false") || !strcmp(v->str, "False") ||
        !strcmp(v->str, "FALSE")) {
      *out = false;
      return true;
    }
    for (size_t i = 0; i < sizeof(yaml11) / sizeof(yaml11[0]); i++)
      if (!strcmp(v->str, yaml11[i])) {
        config__error(c, v->line, v->col,
                      "%s: \"%s\" is a YAML 1.1 boolean that YAML 1.2 reads "
                      "as a string: write true or false",
                      path, v->str);
        return false;
      }
  }
  wrong(c, v, path, "true or false");
  return false;
}

bool config__get_str(struct config__ctx *c, const struct config__node *v,
                     const char *path)
{
  if (v->type != CONFIG__SCALAR || config__is_null(v)) {
    wrong(c, v, path, "a string");
    return false;
  }
  if (memchr(v->str, '\0', v->len) != NULL) {
    config__error(c, v->line, v->col, "%s: contains a NUL byte", path);
    return false;
  }
  return true;
}

void config__defaults(struct config__ctx *c, const struct config__field *f,
                      size_t nf, void *vbase)
{
  char *base = vbase;

  for (size_t i = 0; i < nf; i++) {
    void *dst = base + f[i].off;
    switch (f[i].type) {
    case CONFIG__F_U32:
      *(uint32_t *)dst = (uint32_t)f[i].def;
      break;
    case CONFIG__F_DOUBLE:
      *(double *)dst = f[i].def;
      break;
    case CONFIG__F_BOOL:
      *(bool *)dst = f[i].def != 0;
      break;
    case CONFIG__F_STR:
      if (f[i].def_str != NULL && *(char **)dst == NULL) {
        *(char **)dst = strdup(f[i].def_str);
        if (*(char **)dst == NULL)
          c->oom = true;
      }
      break;
    case CONFIG__F_CUSTOM:
      break;
    }
  }
}

/* The handler of a key whose value the caller reads from seen[]. */
void config__noop(void *ud, const struct config__node *v, const char *path,
                  void *dst)
{
  (void)ud;
  (void)v;
  (void)path;
  (void)dst;
}

static void parse_field(struct config__ctx *c, const struct config__field *f,
                        const struct config__node *v, const char *path,
                        void *dst, void *ud)
{
  const char *why;

  switch (f->type) {
  case CONFIG__F_U32:
    config__get_u32(c, v, path, f->min, f->max, dst);
    return;
  case CONFIG__F_DOUBLE:
    config__get_double(c, v, path, f->min, f->max, f->min_excl, dst);
    return;
  case CONFIG__F_BOOL:
    config__get_bool(c, v, path, dst);
    return;
  case CONFIG__F_STR:
    if (!config__get_str(c, v, path))
      return;
    why = f->check ? f->check(v->str, v->len) : NULL;
    if (why == NULL && v->len == 0)
      why = "must not be empty";
    if (why != NULL) {
      config__error(c, v->line, v->col, "%s: \"%.80s\" %s", path, v->str, why);
      return;
    }
    char *s = strdup(v->str);
    if (s == NULL) {
      c->oom = true;
      return;
    }
    free(*(char **)dst);
    *(char **)dst = s;
    return;
  case CONFIG__F_CUSTOM:
    f->custom(ud, v, path, dst);
    return;
  }
}

bool config__section(struct config__ctx *c, const struct config__node *map,
                     const char *path, const struct config__field *f, size_t nf,
                     void *base, const struct config__node **seen, void *ud)
{
  const struct config__node *k, *v;
  const struct config__node *keys[CONFIG__SECTION_MAX] = {0};
  char sub[512];

  if (nf > CONFIG__SECTION_MAX)
    abort(); /* a table bigger than keys[]: a programming error */
  for (size_t i = 0; i < nf; i++)
    seen[i] = NULL;
  config__defaults(c, f, nf, base);
  if (map->type != CONFIG__MAP) {
    wrong(c, map, path, "a mapping");
    return false;
  }
  for (k = map->first; k != NULL && k->next != NULL; k = v->next) {
    size_t i;

    v = k->next;
    config__path_key(sub, sizeof(sub), path, k->str);
    for (i = 0; i < nf && strcmp(f[i].name, k->str) != 0; i++)
      ;
    if (i == nf || k->len != strlen(k->str)) {
      config__error(c, k->line, k->col, "%s: unknown key", sub);
      continue;
    }
    if (keys[i] != NULL) {
      config__error(c, k->line, k->col,
                    "%s: duplicate key (first given at line %u)", sub,
                    (unsigned)keys[i]->line);
      continue;
    }
    keys[i] = k;
    seen[i] = v;
    parse_field(c, &f[i], v, sub, (char *)base + f[i].off, ud);
  }
  for (size_t i = 0; i < nf; i++)
    if (f[i].required && seen[i] == NULL)
      config__error(c, map->line, map->col, "%s%smissing required key \"%s\"",
                    path, *path ? ": " : "", f[i].name);
  return true;
}

/* A reference to a named entry reads like any string value (and is
 * reported like one), then is looked up in that table's index. */
size_t config__resolve(struct config__loader *l, const struct config__node *v,
                       const char *path, const struct config__htab *idx,
                       const void *arr, size_t size, const char *what)
{
  struct config__named a = {v->str, arr, size};
  size_t found;

  if (!config__get_str(l->c, v, path))
    return NO_INDEX;
  if (config__htab_find(idx, config__hash(v->str, v->len, 0), config__name_eq,
                        &a, &found) == 1)
    return found;
  config__error(l->c, v->line, v->col, "%s: undefined %s \"%.80s\"", path, what,
                v->str);
  return NO_INDEX;
}
