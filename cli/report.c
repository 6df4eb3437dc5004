/* SPDX-License-Identifier: MIT */
/*
 * report: plan printing and the JSON plan file.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "json.h"
#include "statefile.h"

#define PLAN_FILE_MAX (64u * 1024u * 1024u)

bool report_want_color(FILE *f)
{
  const char *nc = getenv("NO_COLOR");
  const char *term = getenv("TERM");

  /* a dumb terminal shows escape sequences as text */
  return isatty(fileno(f)) && !(nc && *nc) &&
         !(term && strcmp(term, "dumb") == 0);
}

/* "0123…cdef": enough to recognise an ID without a wall of hex. */
static const char *short_id(const char *id, char buf[16])
{
  size_t n = strlen(id);

  if (n <= 10)
    return id;
  snprintf(buf, 16, "%.4s\xe2\x80\xa6%s", id, id + n - 4);
  return buf;
}

static const char *gateway_label(const struct config *cfg,
                                 const struct plan_item *it)
{
  return it->gateway == UINT32_MAX ? it->instance_id
                                   : cfg->gateways[it->gateway].name;
}

/* Items with the same certificate, op, domain and flag form one line. */
static bool same_line(const struct plan_item *a, const struct plan_item *b)
{
  return a->cert == b->cert && a->op == b->op &&
         a->verify_client == b->verify_client &&
         strcmp(a->domain, b->domain) == 0;
}

static int cmp_label(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Gateway names in name order (items come in instance-ID order). */
static void print_gateways(const struct config *cfg, const struct plan_item *it,
                           size_t n, FILE *out)
{
  const char **names = malloc(n * sizeof(*names));

  for (size_t i = 0; i < n; i++) {
    const char *label = gateway_label(cfg, &it[i]);
    if (names)
      names[i] = label;
    else
      fprintf(out, "%s%s", i ? ", " : "", label);
  }
  if (!names)
    return;
  qsort(names, n, sizeof(*names), cmp_label);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s%s", i ? ", " : "", names[i]);
  free(names);
}

static void print_line(const struct config *cfg, const struct plan_item *it,
                       size_t n, FILE *out, bool color)
{
  static const char *const sign[] = {"+", "~", "-"};
  static const char *const colour[] = {"\033[32m", "\033[33m", "\033[31m"};

  if (color)
    fprintf(out, "    %s%s %-8s\033[0m", colour[it->op], sign[it->op],
            plan_op_name(it->op));
  else
    fprintf(out, "    %s %-8s", sign[it->op], plan_op_name(it->op));
  fprintf(out, " %s   on ", it->domain);
  print_gateways(cfg, it, n, out);
  if (it->op == PLAN_CHANGE)
    fprintf(out, "   client verification %s -> %s",
            it->verify_client ? "off" : "on", it->verify_client ? "on" : "off");
  else if (it->op == PLAN_DETACH)
    fputs("   owned by certbind, no longer wanted", out);
  fputc('\n', out);
}

#define REPORT_MAX_UNCERTAIN_LINES 20

/* Bindings a crash left as unresolved intents: shown, never detached. */
static void print_uncertain(const struct config *cfg, const struct plan *p,
                            FILE *out)
{
  size_t n = p->nuncertain;

  if (n == 0)
    return;
  fprintf(out,
          "Uncertain: %zu live binding(s) that an interrupted pass may have "
          "attached; never detached, owned only after `certbind adopt`:\n",
          n);
  for (size_t i = 0; i < n && i < REPORT_MAX_UNCERTAIN_LINES; i++) {
    const struct plan_uncertain *u = &p->uncertain[i];
    fprintf(out, "    ? uncertain %s   on %s   certificate %s\n", u->domain,
            u->gateway == UINT32_MAX ? u->instance_id
                                     : cfg->gateways[u->gateway].name,
            cfg->certificates[u->cert].name);
  }
  if (n > REPORT_MAX_UNCERTAIN_LINES)
    fprintf(out, "    ... and %zu more (plan --json lists them all)\n",
            n - REPORT_MAX_UNCERTAIN_LINES);
}

int report_plan_text(const struct config *cfg, const struct plan *p, FILE *out,
                     bool color)
{
  char b1[16], b2[16];

  for (size_t a = 0; a < cfg->naccounts; a++) {
    const struct config_account *acct = &cfg->accounts[a];
    bool header = false;
    uint32_t last_cert = UINT32_MAX;

    for (size_t i = 0; i < p->nitems;) {
      const struct plan_item *it = &p->items[i];
      size_t n = 1;

      while (i + n < p->nitems && same_line(it, &p->items[i + n]))
        n++;
      if (cfg->certificates[it->cert].account == a) {
        const struct config_certificate *c = &cfg->certificates[it->cert];
        if (!header) {
          fprintf(out, "account %s (%s, project %s)\n", acct->name,
                  acct->region, short_id(acct->project_id, b1));
          header = true;
        }
        if (it->cert != last_cert) {
          fprintf(out, "  certificate %s (%s)\n", c->name, short_id(c->id, b2));
          last_cert = it->cert;
        }
        print_line(cfg, it, n, out, color);
      }
      i += n;
    }
  }
  print_uncertain(cfg, p, out);
  if (p->nitems == 0)
    fprintf(out, "No changes: %zu bindings in place.\n", p->unchanged);
  else
    fprintf(out,
            "Plan: %zu to attach, %zu to change, %zu to detach, %zu "
            "unchanged.\n",
            p->nattach, p->nchange, p->ndetach, p->unchanged);
  return ferror(out) ? -EIO : 0;
}

#define GEN_OK(expr)                                                           \
  do {                                                                         \
    if ((expr) != yajl_gen_status_ok)                                          \
      goto fail;                                                               \
  } while (0)

static int gen_change(yajl_gen g, const struct config *cfg,
                      const struct plan_item *it)
{
  const struct config_certificate *c = &cfg->certificates[it->cert];

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "op", plan_op_name(it->op)));
  GEN_OK(json_gen_key_str(g, "account", cfg->accounts[c->account].name));
  GEN_OK(json_gen_key_str(g, "certificate", c->name));
  GEN_OK(json_gen_key_str(g, "certificate_id", c->id));
  GEN_OK(json_gen_key_str(
      g, "gateway",
      it->gateway == UINT32_MAX ? "" : cfg->gateways[it->gateway].name));
  GEN_OK(json_gen_key_str(g, "instance_id", it->instance_id));
  GEN_OK(json_gen_key_str(g, "domain", it->domain));
  GEN_OK(json_gen_str(g, "verify_client"));
  GEN_OK(yajl_gen_bool(g, it->verify_client));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
fail:
  return -ENOMEM;
}

static int gen_uncertain(yajl_gen g, const struct config *cfg,
                         const struct plan_uncertain *u)
{
  const struct config_certificate *c = &cfg->certificates[u->cert];

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "certificate", c->name));
  GEN_OK(json_gen_key_str(g, "certificate_id", c->id));
  GEN_OK(json_gen_key_str(
      g, "gateway",
      u->gateway == UINT32_MAX ? "" : cfg->gateways[u->gateway].name));
  GEN_OK(json_gen_key_str(g, "instance_id", u->instance_id));
  GEN_OK(json_gen_key_str(g, "domain", u->domain));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
fail:
  return -ENOMEM;
}

int report_plan_json(const struct config *cfg, const struct plan *p, char **out,
                     size_t *len)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t blen;
  int rc = -ENOMEM;

  if (!g)
    return -ENOMEM;
  yajl_gen_config(g, yajl_gen_beautify, 1);
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_int(g, "version", REPORT_PLAN_VERSION));
  GEN_OK(json_gen_key_str(g, "checksum", p->checksum));
  GEN_OK(json_gen_key_str(g, "config", cfg->path ? cfg->path : ""));
  GEN_OK(json_gen_key_str(g, "config_sha256", cfg->sha256));
  GEN_OK(json_gen_key_str(g, "mode", config_mode_name(cfg->policy.mode)));
  GEN_OK(json_gen_str(g, "summary"));
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_int(g, "attach", (long long)p->nattach));
  GEN_OK(json_gen_key_int(g, "change", (long long)p->nchange));
  GEN_OK(json_gen_key_int(g, "detach", (long long)p->ndetach));
  GEN_OK(json_gen_key_int(g, "unchanged", (long long)p->unchanged));
  GEN_OK(json_gen_key_int(g, "uncertain", (long long)p->nuncertain));
  GEN_OK(yajl_gen_map_close(g));
  GEN_OK(json_gen_str(g, "changes"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < p->nitems; i++) {
    if (gen_change(g, cfg, &p->items[i]) < 0)
      goto fail;
  }
  GEN_OK(yajl_gen_array_close(g));
  GEN_OK(json_gen_str(g, "uncertain"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < p->nuncertain; i++) {
    if (gen_uncertain(g, cfg, &p->uncertain[i]) < 0)
      goto fail;
  }
  GEN_OK(yajl_gen_array_close(g));
  GEN_OK(yajl_gen_map_close(g));
  GEN_OK(yajl_gen_get_buf(g, &buf, &blen));
  *out = malloc(blen + 1);
  if (*out) {
    memcpy(*out, buf, blen);
    (*out)[blen] = '\0';
    *len = blen;
    rc = 0;
  }
fail:
  yajl_gen_free(g);
  return rc;
}

static bool is_hex64(const char *s)
{
  size_t n = 0;

  for (; s[n]; n++) {
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
      return false;
  }
  return n == 64;
}

int report_plan_read(const char *path, char checksum[65], const char **why)
{
  const char *version_path[] = {"version", NULL};
  const char *checksum_path[] = {"checksum", NULL};
  const char *sum;
  char *buf = NULL;
  size_t len;
  char err[128];
  yajl_val root, v;
  int rc = statefile_read(path, PLAN_FILE_MAX, &buf, &len);

  if (rc < 0) {
    *why = strerror(-rc);
    return rc;
  }
  root = yajl_tree_parse(buf, err, sizeof(err));
  free(buf);
  rc = -EBADMSG;
  *why = "not a JSON plan written by certbind plan --out";
  if (!root || !YAJL_IS_OBJECT(root))
    goto done;
  v = yajl_tree_get(root, version_path, yajl_t_number);
  if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) != REPORT_PLAN_VERSION) {
    *why = "unsupported plan version";
    goto done;
  }
  v = yajl_tree_get(root, checksum_path, yajl_t_string);
  sum = v ? YAJL_GET_STRING(v) : NULL;
  if (!sum || !is_hex64(sum)) {
    *why = "the plan has no valid checksum";
    goto done;
  }
  memcpy(checksum, sum, 65);
  rc = 0;
  *why = NULL;
done:
  yajl_tree_free(root);
  return rc;
}
