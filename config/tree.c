/* SPDX-License-Identifier: MIT */
/*
 * libyaml event stream -> a small node tree with line/column marks.
 *
 * The limits are enforced while the events arrive, so a hostile file costs
 * no more than the events read before its first offending one: an anchor
 * (billion laughs) or the 33rd nested '[' stops everything at once. libyaml
 * is confined to this file.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <yaml.h>

struct tree {
  struct config__ctx *c;
  struct config__node *stack[CONFIG_MAX_DEPTH];
  size_t depth;
  struct config__node *root;
  unsigned ndocs;
};

static uint32_t mark_line(yaml_mark_t m)
{
  return (uint32_t)m.line + 1;
}

static uint32_t mark_col(yaml_mark_t m)
{
  return (uint32_t)m.column + 1;
}

static struct config__node *node_new(struct tree *t, enum config__ntype type,
                                     yaml_mark_t m)
{
  struct config__node *n = config__arena_alloc(&t->c->arena, sizeof(*n));

  if (n == NULL)
    return NULL;
  memset(n, 0, sizeof(*n));
  n->type = type;
  n->line = mark_line(m);
  n->col = mark_col(m);
  return n;
}

/* The parent of the next node, and whether that node is a mapping key. */
static struct config__node *parent(const struct tree *t, bool *is_key)
{
  struct config__node *p = t->depth ? t->stack[t->depth - 1] : NULL;

  *is_key = p != NULL && p->type == CONFIG__MAP && p->n % 2 == 0;
  return p;
}

static void attach(struct tree *t, struct config__node *n)
{
  bool is_key;
  struct config__node *p = parent(t, &is_key);

  if (p == NULL) {
    t->root = n;
    return;
  }
  if (p->last)
    p->last->next = n;
  else
    p->first = n;
  p->last = n;
  p->n++;
}

/* Anchors and tags are refused wherever they appear. */
static int check_props(struct tree *t, yaml_mark_t m, const yaml_char_t *anchor,
                       const yaml_char_t *tag)
{
  if (anchor != NULL) {
    config__error(t->c, mark_line(m), mark_col(m),
                  "YAML anchors are not allowed (&%s)", (const char *)anchor);
    return -EINVAL;
  }
  if (tag != NULL) {
    config__error(t->c, mark_line(m), mark_col(m),
                  "YAML tags are not allowed (%s)", (const char *)tag);
    return -EINVAL;
  }
  return 0;
}

static int on_scalar(struct tree *t, const yaml_event_t *ev)
{
  bool is_key;
  struct config__node *p = parent(t, &is_key);
  const char *v = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  int rc = check_props(t, ev->start_mark, ev->data.scalar.anchor,
                       ev->data.scalar.tag);

  (void)p;
  if (rc < 0)
    return rc;
  if (is_key && plain && len == 2 && memcmp(v, "<<", 2) == 0) {
    config__error(t->c, mark_line(ev->start_mark), mark_col(ev->start_mark),
                  "YAML merge keys (<<) are not allowed");
    return -EINVAL;
  }
  struct config__node *n = node_new(t, CONFIG__SCALAR, ev->start_mark);
  char *s = n ? config__arena_alloc(&t->c->arena, len + 1) : NULL;
  if (s == NULL)
    return -ENOMEM;
  memcpy(s, v, len);
  s[len] = '\0';
  n->str = s;
  n->len = len;
  n->plain = plain;
  attach(t, n);
  return 0;
}

static int on_start(struct tree *t, const yaml_event_t *ev,
                    enum config__ntype type)
{
  bool is_key;
  const yaml_char_t *anchor, *tag;
  int rc;

  parent(t, &is_key);
  if (type == CONFIG__MAP) {
    anchor = ev->data.mapping_start.anchor;
    tag = ev->data.mapping_start.tag;
  } else {
    anchor = ev->data.sequence_start.anchor;
    tag = ev->data.sequence_start.tag;
  }
  rc = check_props(t, ev->start_mark, anchor, tag);
  if (rc < 0)
    return rc;
  if (is_key) {
    config__error(t->c, mark_line(ev->start_mark), mark_col(ev->start_mark),
                  "mapping keys must be scalars");
    return -EINVAL;
  }
  if (t->depth == CONFIG_MAX_DEPTH) {
    config__error(t->c, mark_line(ev->start_mark), mark_col(ev->start_mark),
                  "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
    return -EINVAL;
  }
  struct config__node *n = node_new(t, type, ev->start_mark);
  if (n == NULL)
    return -ENOMEM;
  attach(t, n);
  t->stack[t->depth++] = n;
  return 0;
}

static int on_event(struct tree *t, const yaml_event_t *ev, bool *done)
{
  switch (ev->type) {
  case YAML_STREAM_START_EVENT:
  case YAML_DOCUMENT_END_EVENT:
  case YAML_NO_EVENT:
    return 0;
  case YAML_STREAM_END_EVENT:
    *done = true;
    return 0;
  case YAML_DOCUMENT_START_EVENT:
    if (++t->ndocs > 1) {
      config__error(t->c, mark_line(ev->start_mark), mark_col(ev->start_mark),
                    "only one YAML document is allowed");
      return -EINVAL;
    }
    return 0;
  case YAML_ALIAS_EVENT:
    config__error(t->c, mark_line(ev->start_mark), mark_col(ev->start_mark),
                  "YAML aliases are not allowed (*%s)",
                  (const char *)ev->data.alias.anchor);
    return -EINVAL;
  case YAML_SCALAR_EVENT:
    return on_scalar(t, ev);
  case YAML_SEQUENCE_START_EVENT:
    return on_start(t, ev, CONFIG__SEQ);
  case YAML_MAPPING_START_EVENT:
    return on_start(t, ev, CONFIG__MAP);
  case YAML_SEQUENCE_END_EVENT:
  case YAML_MAPPING_END_EVENT:
    if (t->depth > 0)
      t->depth--;
    return 0;
  }
  return 0;
}

static void syntax_error(struct config__ctx *c, const yaml_parser_t *p)
{
  if (p->error == YAML_MEMORY_ERROR) {
    c->oom = true;
    return;
  }
  const char *problem = p->problem ? p->problem : "invalid YAML";
  /* the usual cause: a wildcard domain written without quotes */
  if (p->context != NULL && strcmp(p->context, "while scanning an alias") == 0)
    config__error(c, mark_line(p->problem_mark), mark_col(p->problem_mark),
                  "YAML syntax error: %s %s (line %u): a value starting "
                  "with '*' must be quoted, e.g. \"*.example.com\"",
                  problem, p->context, (unsigned)mark_line(p->context_mark));
  else if (p->context != NULL)
    config__error(c, mark_line(p->problem_mark), mark_col(p->problem_mark),
                  "YAML syntax error: %s %s (line %u)", problem, p->context,
                  (unsigned)mark_line(p->context_mark));
  else
    config__error(c, mark_line(p->problem_mark), mark_col(p->problem_mark),
                  "YAML syntax error: %s", problem);
}

int config__parse(struct config__ctx *c, const char *buf, size_t len,
                  struct config__node **root)
{
  struct tree t = {.c = c};
  yaml_parser_t p;
  bool done = false;
  int rc = 0;

  *root = NULL;
  if (!yaml_parser_initialize(&p))
    return -ENOMEM;
  /* libyaml asserts on a NULL input, even of length 0 (an empty file) */
  yaml_parser_set_input_string(&p, (const unsigned char *)(buf ? buf : ""),
                               buf ? len : 0);
  while (!done && rc == 0) {
    yaml_event_t ev;

    if (!yaml_parser_parse(&p, &ev)) {
      syntax_error(c, &p);
      rc = p.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
      break;
    }
    rc = on_event(&t, &ev, &done);
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  if (rc == -ENOMEM)
    c->oom = true;
  if (rc == 0)
    *root = t.root;
  return rc;
}
