/* SPDX-License-Identifier: MIT */
/*
 * report: plan printing and the JSON plan file.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "json.h"
#include "pass.h"
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

/* Items with the same certificate, op, domain, flag and previous value
 * form one line. */
static bool same_line(const struct plan_item *a, const struct plan_item *b)
{
  return a->cert == b->cert && a->op == b->op &&
         a->verify_client == b->verify_client && a->has_from == b->has_from &&
         (!a->has_from || (a->from_cert == b->from_cert &&
                           a->from_verify_client == b->from_verify_client)) &&
         strcmp(a->domain, b->domain) == 0;
}

static size_t line_len(const struct plan_item *it, size_t n)
{
  size_t k = 1;

  while (k < n && same_line(it, &it[k]))
    k++;
  return k;
}

static int cmp_label(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "gw-a, gw-b": gateway names in name order (items come in instance-ID
 * order), malloc'd, or NULL. */
static char *gateways_str(const struct config *cfg, const struct plan_item *it,
                          size_t n)
{
  const char **names = malloc(n * sizeof(*names));
  char *buf = NULL;
  size_t len = 0;
  FILE *f;

  if (!names)
    return NULL;
  for (size_t i = 0; i < n; i++)
    names[i] = gateway_label(cfg, &it[i]);
  qsort(names, n, sizeof(*names), cmp_label);
  f = open_memstream(&buf, &len);
  if (f) {
    for (size_t i = 0; i < n; i++)
      fprintf(f, "%s%s", i ? ", " : "", names[i]);
    if (fclose(f) != 0) {
      free(buf);
      buf = NULL;
    }
  }
  free(names);
  return buf;
}

static const char *flag_name(bool on)
{
  return on ? "on" : "off";
}

/* The last column: what the change does beyond its op (malloc'd "" for a
 * plain attach), or NULL. */
static char *detail_str(const struct config *cfg, const struct plan_item *it)
{
  char *s = NULL;
  int rc;

  if (plan_item_is_move(it) && it->from_verify_client != it->verify_client)
    rc = asprintf(
        &s, "%s -> %s, client verification %s -> %s",
        cfg->certificates[it->from_cert].name, cfg->certificates[it->cert].name,
        flag_name(it->from_verify_client), flag_name(it->verify_client));
  else if (plan_item_is_move(it))
    rc = asprintf(&s, "%s -> %s", cfg->certificates[it->from_cert].name,
                  cfg->certificates[it->cert].name);
  else if (it->op == PLAN_CHANGE)
    rc = asprintf(&s, "client verification %s -> %s",
                  flag_name(!it->verify_client), flag_name(it->verify_client));
  else if (it->op == PLAN_DETACH)
    rc = asprintf(&s, "owned by certbind, no longer wanted");
  else
    rc = asprintf(&s, "%s", "");
  return rc < 0 ? NULL : s;
}

/* How a line's change is shown: the op column. */
static const char *shown_op(const struct plan_item *it)
{
  return plan_item_is_move(it) ? "move" : plan_op_name(it->op);
}

/* One line of a certificate group, its columns made before printing so
 * that they can be padded to the widest of the group. */
struct text_line {
  const struct plan_item *it;
  char *gateways;
  char *detail;
};

struct text_widths {
  int op, domain, gateways;
};

static void print_line(const struct text_line *l, const struct text_widths *w,
                       FILE *out, bool color)
{
  /* indexed by enum plan_op; a move is an attach shown as a change is */
  static const char *const sign[] = {"+", "~", "-"};
  static const char *const colour[] = {"\033[32m", "\033[33m", "\033[31m"};
  const struct plan_item *it = l->it;
  size_t op = plan_item_is_move(it) ? PLAN_CHANGE : it->op;

  fprintf(out, "    %s%s %s%s%*s   %-*s   on ", color ? colour[op] : "",
          sign[op], shown_op(it), color ? "\033[0m" : "",
          w->op - (int)strlen(shown_op(it)), "", w->domain, it->domain);
  if (l->detail[0])
    fprintf(out, "%-*s   %s\n", w->gateways, l->gateways, l->detail);
  else
    fprintf(out, "%s\n", l->gateways);
}

static int max_int(int a, size_t b)
{
  return (size_t)a > b ? a : (int)b;
}

/* The lines of one certificate (items [0, n) are its), aligned. */
static int print_certificate(const struct config *cfg,
                             const struct plan_item *items, size_t n, FILE *out,
                             bool color)
{
  struct text_line *lines = calloc(n, sizeof(*lines));
  struct text_widths w = {0, 0, 0};
  size_t nl = 0;
  int rc = 0;

  if (!lines)
    return -ENOMEM;
  for (size_t i = 0; i < n && rc == 0; nl++) {
    size_t k = line_len(&items[i], n - i);
    struct text_line *l = &lines[nl];
    l->it = &items[i];
    l->gateways = gateways_str(cfg, &items[i], k);
    l->detail = detail_str(cfg, &items[i]);
    if (!l->gateways || !l->detail)
      rc = -ENOMEM;
    i += k;
  }
  for (size_t j = 0; j < nl && rc == 0; j++) {
    w.op = max_int(w.op, strlen(shown_op(lines[j].it)));
    w.domain = max_int(w.domain, strlen(lines[j].it->domain));
    if (lines[j].detail[0])
      w.gateways = max_int(w.gateways, strlen(lines[j].gateways));
  }
  for (size_t j = 0; j < nl && rc == 0; j++)
    print_line(&lines[j], &w, out, color);
  for (size_t j = 0; j < nl; j++) {
    free(lines[j].gateways);
    free(lines[j].detail);
  }
  free(lines);
  return rc;
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

/* ---- certificates: days left and the plan errors of their rules ------- */

#define C_RED "\033[31m"
#define C_YELLOW "\033[33m"
#define C_RESET "\033[0m"

/* ", 43 days left" / ", expires in 3 days" (yellow within the warning
 * days) / ", EXPIRED on 2026-03-01" (red); "" when the end is unknown. */
static void print_days_left(const struct config *cfg, const struct plan *p,
                            uint32_t cert, FILE *out, bool color)
{
  int64_t end = p->not_after ? p->not_after[cert] : 0;
  long days;
  char date[16];

  if (!end || !p->now_s)
    return;
  days = plan_days_left(end, p->now_s);
  if (end <= p->now_s) {
    plan_format_date(end, date);
    fprintf(out, ", %sEXPIRED on %s%s", color ? C_RED : "", date,
            color ? C_RESET : "");
  } else if (days <= (long)cfg->policy.expiry_warning_days) {
    fprintf(out, ", %sexpires in %ld day%s%s", color ? C_YELLOW : "", days,
            days == 1 ? "" : "s", color ? C_RESET : "");
  } else {
    fprintf(out, ", %ld days left", days);
  }
}

static void print_cert_header(const struct config *cfg, const struct plan *p,
                              uint32_t cert, FILE *out, bool color)
{
  const struct config_certificate *c = &cfg->certificates[cert];
  char b[16];

  fprintf(out, "  certificate %s (%s)", c->name,
          c->id ? short_id(c->id, b) : "not uploaded");
  print_days_left(cfg, p, cert, out, color);
  fputc('\n', out);
}

/* "*.example.com, example.com": the names a refusal saw. */
static void names_text(const struct plan_refusal *r, FILE *out)
{
  for (size_t k = 0; k < r->nsans && k < 4; k++)
    fprintf(out, "%s%s", k ? ", " : "", r->sans[k]);
  if (r->nsans > 4)
    fprintf(out, ", … (%zu names)", r->nsans);
  if (r->nsans == 0)
    fputs("no DNS name", out);
}

/* "    ! not covered  x.other.com   on gw-1   star-2026 covers *.example.com"
 * and "    ! expired  a.example.com   on gw-1   expired on 2026-03-01": the
 * attaches and changes certificate cert's rules refused (never sent). */
static int print_refusals(const struct config *cfg, const struct plan *p,
                          uint32_t cert, FILE *out, bool color)
{
  char date[16];

  for (size_t i = 0; i < p->nrefused; i++) {
    const struct plan_refusal *r = &p->refused[i];
    if (r->cert != cert)
      continue;
    fprintf(out, "    %s! %s%s   %s   on %s   ", color ? C_RED : "",
            r->why == PLAN_REFUSE_EXPIRED ? "expired" : "not covered",
            color ? C_RESET : "", cfg->bindings[r->binding].domain,
            cfg->gateways[r->gateway].name);
    if (r->why == PLAN_REFUSE_EXPIRED) {
      plan_format_date(r->not_after, date);
      fprintf(out, "expired on %s, never bound\n", date);
    } else {
      fprintf(out, "%s covers ", cfg->certificates[cert].name);
      names_text(r, out);
      fputc('\n', out);
    }
  }
  return ferror(out) ? -EIO : 0;
}

static bool cert_has_items(const struct plan *p, uint32_t cert)
{
  for (size_t i = 0; i < p->nitems; i++) {
    if (p->items[i].cert == cert)
      return true;
  }
  return false;
}

static bool cert_has_refusals(const struct plan *p, uint32_t cert)
{
  for (size_t i = 0; i < p->nrefused; i++) {
    if (p->refused[i].cert == cert)
      return true;
  }
  return false;
}

/* Whether certificate cert ends within policy.expiry_warning_days (or has
 * ended): shown even when it has nothing to change. */
static bool cert_expiring(const struct config *cfg, const struct plan *p,
                          uint32_t cert)
{
  int64_t end = p->not_after ? p->not_after[cert] : 0;

  return end && p->now_s &&
         plan_days_left(end, p->now_s) <= (long)cfg->policy.expiry_warning_days;
}

/* Account a's certificates with no change but plan errors or an end
 * within the warning days: their header and errors. */
static int print_other_certs(const struct config *cfg, const struct plan *p,
                             size_t a, bool *header, FILE *out, bool color)
{
  const struct config_account *acct = &cfg->accounts[a];
  char b[16];
  int rc = 0;

  for (uint32_t c = 0; c < cfg->ncertificates && rc == 0; c++) {
    if (cfg->certificates[c].account != a || cert_has_items(p, c) ||
        (!cert_has_refusals(p, c) && !cert_expiring(cfg, p, c)))
      continue;
    if (!*header) {
      fprintf(out, "account %s (%s, project %s)\n", acct->name, acct->region,
              short_id(acct->project_id, b));
      *header = true;
    }
    print_cert_header(cfg, p, c, out, color);
    rc = print_refusals(cfg, p, c, out, color);
  }
  return rc;
}

/* ", 2 errors (not sent)" for the summary line, or "". */
static const char *errors_note(const struct plan *p, char buf[48])
{
  buf[0] = '\0';
  if (p->nrefused)
    snprintf(buf, 48, ", %zu error%s (not sent)", p->nrefused,
             p->nrefused == 1 ? "" : "s");
  return buf;
}

/* The certificate this object is for: a previous object's line names
 * the file's certificate it was made for. */
static const char *cert_op_for(const struct config *cfg,
                               const struct plan_cert *op)
{
  return cfg->certificates[op->cert].name;
}

/* Uploads, updates and deletes of the objects of certificates given as
 * files. */
static void print_cert_ops(const struct config *cfg, const struct plan *p,
                           FILE *out, bool color)
{
  static const char *const sign[] = {"+", "~", "-"};
  static const char *const colour[] = {"\033[32m", "\033[33m", "\033[31m"};

  if (p->ncert_ops == 0 && p->nleft == 0)
    return;
  fprintf(out, "Certificate objects:\n");
  for (size_t i = 0; i < p->ncert_ops; i++) {
    const struct plan_cert *op = &p->cert_ops[i];
    char b[16];

    fprintf(out, "    %s%s %s%s", color ? colour[op->op] : "", sign[op->op],
            op->op == PLAN_CERT_UPLOAD ? "upload" : plan_cert_op_name(op->op),
            color ? "\033[0m" : "");
    if (op->op == PLAN_CERT_UPLOAD)
      fprintf(out, " %s   certificate %s\n", op->name, cert_op_for(cfg, op));
    else
      fprintf(out, " certificate %s (%s)   %s\n", op->name,
              short_id(op->object_id, b), cert_op_for(cfg, op));
  }
}

/* Objects certbind created for certificates the file no longer names:
 * not changes (never deleted), said after them so that the operator
 * knows what fills the account's certificate quota. */
static void print_left_objects(const struct plan *p, FILE *out, bool color)
{
  for (size_t i = 0; i < p->nleft; i++) {
    const struct plan_left *l = &p->left[i];
    char b[16];

    fprintf(out,
            "    %s? left%s   certificate %s (%s)   %s: no longer in the "
            "file, created by certbind, not deleted\n",
            color ? "\033[33m" : "", color ? "\033[0m" : "",
            l->name[0] ? l->name : l->object_id, short_id(l->object_id, b),
            l->certificate);
  }
}

/* ", 1 to upload, 1 certificate to delete": only the kinds there are. */
static void print_cert_counts(const struct plan *p, FILE *out)
{
  if (p->nupload)
    fprintf(out, ", %zu to upload", p->nupload);
  if (p->nupdate)
    fprintf(out, ", %zu certificate%s to update", p->nupdate,
            p->nupdate == 1 ? "" : "s");
  if (p->ndelete_cert)
    fprintf(out, ", %zu certificate%s to delete", p->ndelete_cert,
            p->ndelete_cert == 1 ? "" : "s");
}

int report_plan_text(const struct config *cfg, const struct plan *p, FILE *out,
                     bool color)
{
  char b1[16], note[48];
  int rc = 0;

  for (size_t a = 0; a < cfg->naccounts && rc == 0; a++) {
    const struct config_account *acct = &cfg->accounts[a];
    bool header = false;

    /* items come sorted by certificate: one group per run */
    for (size_t i = 0; i < p->nitems && rc == 0;) {
      uint32_t cert = p->items[i].cert;
      const struct config_certificate *c = &cfg->certificates[cert];
      size_t n = 1;

      while (i + n < p->nitems && p->items[i + n].cert == cert)
        n++;
      if (c->account == a) {
        if (!header) {
          fprintf(out, "account %s (%s, project %s)\n", acct->name,
                  acct->region, short_id(acct->project_id, b1));
          header = true;
        }
        print_cert_header(cfg, p, cert, out, color);
        rc = print_certificate(cfg, &p->items[i], n, out, color);
        if (rc == 0)
          rc = print_refusals(cfg, p, cert, out, color);
      }
      i += n;
    }
    if (rc == 0)
      rc = print_other_certs(cfg, p, a, &header, out, color);
  }
  print_cert_ops(cfg, p, out, color);
  print_left_objects(p, out, color);
  print_uncertain(cfg, p, out);
  if (p->nitems == 0 && p->nrefused == 0 && p->ncert_ops == 0) {
    fprintf(out, "No changes: %zu bindings in place.\n", p->unchanged);
  } else {
    fprintf(out,
            "Plan: %zu to attach, %zu to move, %zu to change, %zu to "
            "detach, %zu unchanged",
            p->nattach - p->nmoved, p->nmoved, p->nchange, p->ndetach,
            p->unchanged);
    print_cert_counts(p, out);
    fprintf(out, "%s.\n", errors_note(p, note));
  }
  if (rc == 0 && ferror(out))
    rc = -EIO;
  return rc;
}

#define GEN_OK(expr)                                                           \
  do {                                                                         \
    if ((expr) != yajl_gen_status_ok)                                          \
      goto fail;                                                               \
  } while (0)

/* The previous value: the certificate (and its flag) that holds the
 * binding before the change. */
static int gen_from(yajl_gen g, const struct config *cfg,
                    const struct plan_item *it)
{
  const struct config_certificate *c = &cfg->certificates[it->from_cert];

  GEN_OK(json_gen_str(g, "from"));
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "certificate", c->name));
  GEN_OK(json_gen_key_str(g, "certificate_id", c->id));
  GEN_OK(json_gen_str(g, "verify_client"));
  GEN_OK(yajl_gen_bool(g, it->from_verify_client));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
fail:
  return -ENOMEM;
}

/* "certificate_id": the object's id, or null for a certificate from
 * files that has none yet (it is uploaded first). */
static yajl_gen_status gen_cert_id(yajl_gen g,
                                   const struct config_certificate *c)
{
  if (c->managed && strcmp(c->id, PASS_NEW_OBJECT_ID) == 0) {
    yajl_gen_status gs = json_gen_str(g, "certificate_id");
    return gs == yajl_gen_status_ok ? yajl_gen_null(g) : gs;
  }
  return json_gen_key_str(g, "certificate_id", c->id);
}

static int gen_change(yajl_gen g, const struct config *cfg,
                      const struct plan_item *it)
{
  const struct config_certificate *c = &cfg->certificates[it->cert];

  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "op", shown_op(it)));
  GEN_OK(json_gen_key_str(g, "account", cfg->accounts[c->account].name));
  GEN_OK(json_gen_key_str(g, "certificate", c->name));
  GEN_OK(gen_cert_id(g, c));
  GEN_OK(json_gen_key_str(
      g, "gateway",
      it->gateway == UINT32_MAX ? "" : cfg->gateways[it->gateway].name));
  GEN_OK(json_gen_key_str(g, "instance_id", it->instance_id));
  GEN_OK(json_gen_key_str(g, "domain", it->domain));
  GEN_OK(json_gen_str(g, "verify_client"));
  GEN_OK(yajl_gen_bool(g, it->verify_client));
  if (it->has_from && gen_from(g, cfg, it) < 0)
    goto fail;
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

static int gen_cert_op(yajl_gen g, const struct config *cfg,
                       const struct plan_cert *op)
{
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_str(g, "op", plan_cert_op_name(op->op)));
  GEN_OK(json_gen_key_str(g, "certificate", cert_op_for(cfg, op)));
  GEN_OK(json_gen_key_str(g, "object_name", op->name));
  GEN_OK(json_gen_str(g, "certificate_id"));
  if (op->object_id[0])
    GEN_OK(json_gen_str(g, op->object_id));
  else
    GEN_OK(yajl_gen_null(g));
  GEN_OK(yajl_gen_map_close(g));
  return 0;
fail:
  return -ENOMEM;
}

static int gen_left(yajl_gen g, const struct plan *p)
{
  GEN_OK(json_gen_str(g, "left_objects"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < p->nleft; i++) {
    const struct plan_left *l = &p->left[i];

    GEN_OK(yajl_gen_map_open(g));
    GEN_OK(json_gen_key_str(g, "object_id", l->object_id));
    GEN_OK(json_gen_key_str(g, "name", l->name));
    GEN_OK(json_gen_key_str(g, "certificate", l->certificate));
    GEN_OK(json_gen_key_str(g, "sha256", l->sha256));
    GEN_OK(yajl_gen_map_close(g));
  }
  GEN_OK(yajl_gen_array_close(g));
  return 0;
fail:
  return -ENOMEM;
}

/* RFC 3339, UTC, to the second. */
static void rfc3339(int64_t unix_ms, char buf[32])
{
  time_t t = (time_t)(unix_ms / 1000);
  struct tm tm;

  if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, 32, "1970-01-01T00:00:00Z");
}

/* "errors": the plan errors of the certificate rules (never sent). */
static int gen_errors(yajl_gen g, const struct config *cfg,
                      const struct plan *p)
{
  char msg[300];

  GEN_OK(json_gen_str(g, "errors"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < p->nrefused; i++) {
    const struct plan_refusal *r = &p->refused[i];
    const struct config_certificate *c = &cfg->certificates[r->cert];
    const struct config_binding *b = &cfg->bindings[r->binding];
    plan_refusal_describe(cfg, r, msg, sizeof(msg));
    GEN_OK(yajl_gen_map_open(g));
    GEN_OK(json_gen_key_str(g, "op", plan_op_name(r->op)));
    GEN_OK(json_gen_key_str(g, "account", cfg->accounts[c->account].name));
    GEN_OK(json_gen_key_str(g, "certificate", c->name));
    GEN_OK(json_gen_key_str(g, "certificate_id", c->id ? c->id : ""));
    GEN_OK(json_gen_key_str(g, "gateway", cfg->gateways[b->gateway].name));
    GEN_OK(json_gen_key_str(g, "instance_id",
                            cfg->gateways[b->gateway].instance_id));
    GEN_OK(json_gen_key_str(g, "domain", b->domain));
    GEN_OK(json_gen_key_str(g, "error_code", plan_refusal_code(r->why)));
    GEN_OK(json_gen_key_str(g, "error_msg", msg));
    GEN_OK(yajl_gen_map_close(g));
  }
  GEN_OK(yajl_gen_array_close(g));
  return 0;
fail:
  return -ENOMEM;
}

/* "certificates": each certificate's end (null: unknown) and days left
 * from when the plan was made. */
static int gen_certificates(yajl_gen g, const struct config *cfg,
                            const struct plan *p)
{
  char when[32];

  GEN_OK(json_gen_str(g, "certificates"));
  GEN_OK(yajl_gen_array_open(g));
  for (uint32_t c = 0; c < cfg->ncertificates; c++) {
    const struct config_certificate *cc = &cfg->certificates[c];
    int64_t end = p->not_after ? p->not_after[c] : 0;
    GEN_OK(yajl_gen_map_open(g));
    GEN_OK(json_gen_key_str(g, "certificate", cc->name));
    GEN_OK(json_gen_key_str(g, "certificate_id", cc->id ? cc->id : ""));
    GEN_OK(json_gen_key_str(g, "account", cfg->accounts[cc->account].name));
    GEN_OK(json_gen_str(g, "not_after"));
    if (end) {
      rfc3339(end * 1000, when);
      GEN_OK(json_gen_str(g, when));
    } else {
      GEN_OK(yajl_gen_null(g));
    }
    GEN_OK(json_gen_str(g, "days_left"));
    if (end && p->now_s)
      GEN_OK(yajl_gen_integer(g, plan_days_left(end, p->now_s)));
    else
      GEN_OK(yajl_gen_null(g));
    GEN_OK(yajl_gen_map_close(g));
  }
  GEN_OK(yajl_gen_array_close(g));
  return 0;
fail:
  return -ENOMEM;
}

int report_plan_json(const struct config *cfg, const struct plan *p,
                     const struct report_plan_meta *meta, char **out,
                     size_t *len)
{
  yajl_gen g = yajl_gen_alloc(NULL);
  const unsigned char *buf;
  size_t blen;
  char created[32];
  int rc = -ENOMEM;

  if (!g)
    return -ENOMEM;
  rfc3339(meta->created_ms, created);
  yajl_gen_config(g, yajl_gen_beautify, 1);
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_int(g, "version", REPORT_PLAN_VERSION));
  GEN_OK(json_gen_key_str(g, "certbind_version", CERTBIND_VERSION));
  GEN_OK(json_gen_key_str(g, "created_at", created));
  GEN_OK(json_gen_key_str(g, "checksum", p->checksum));
  GEN_OK(json_gen_key_str(g, "config", cfg->path ? cfg->path : ""));
  GEN_OK(json_gen_key_str(g, "config_sha256", cfg->sha256));
  GEN_OK(json_gen_key_str(g, "mode", config_mode_name(cfg->policy.mode)));
  GEN_OK(json_gen_str(g, "refused"));
  if (meta->refusal)
    GEN_OK(json_gen_str(g, meta->refusal));
  else
    GEN_OK(yajl_gen_null(g));
  GEN_OK(json_gen_str(g, "summary"));
  GEN_OK(yajl_gen_map_open(g));
  GEN_OK(json_gen_key_int(g, "attach", (long long)(p->nattach - p->nmoved)));
  GEN_OK(json_gen_key_int(g, "move", (long long)p->nmoved));
  GEN_OK(json_gen_key_int(g, "change", (long long)p->nchange));
  GEN_OK(json_gen_key_int(g, "detach", (long long)p->ndetach));
  GEN_OK(json_gen_key_int(g, "unchanged", (long long)p->unchanged));
  GEN_OK(json_gen_key_int(g, "uncertain", (long long)p->nuncertain));
  GEN_OK(json_gen_key_int(g, "errors", (long long)p->nrefused));
  GEN_OK(json_gen_key_int(g, "upload", (long long)p->nupload));
  GEN_OK(json_gen_key_int(g, "update_certificate", (long long)p->nupdate));
  GEN_OK(json_gen_key_int(g, "delete_certificate", (long long)p->ndelete_cert));
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
  if (gen_errors(g, cfg, p) < 0 || gen_certificates(g, cfg, p) < 0)
    goto fail;
  GEN_OK(json_gen_str(g, "certificate_objects"));
  GEN_OK(yajl_gen_array_open(g));
  for (size_t i = 0; i < p->ncert_ops; i++) {
    if (gen_cert_op(g, cfg, &p->cert_ops[i]) < 0)
      goto fail;
  }
  GEN_OK(yajl_gen_array_close(g));
  if (gen_left(g, p) < 0)
    goto fail;
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

/* The change's expectation: who held (instance, domain) before it. */
static bool read_expect(yajl_val c, struct plan_expect *x)
{
  const char *inst_path[] = {"instance_id", NULL};
  const char *dom_path[] = {"domain", NULL};
  const char *from_path[] = {"from", NULL};
  const char *id_path[] = {"certificate_id", NULL};
  const char *flag_path[] = {"verify_client", NULL};
  yajl_val inst = yajl_tree_get(c, inst_path, yajl_t_string);
  yajl_val dom = yajl_tree_get(c, dom_path, yajl_t_string);
  yajl_val from = yajl_tree_get(c, from_path, yajl_t_object);
  yajl_val id, flag;

  if (!inst || !dom)
    return false;
  *x = (struct plan_expect){.instance_id = YAJL_GET_STRING(inst),
                            .domain = YAJL_GET_STRING(dom)};
  if (!from)
    return true; /* an attach: no certificate of the file held it */
  id = yajl_tree_get(from, id_path, yajl_t_string);
  flag = yajl_tree_get(from, flag_path, yajl_t_any);
  if (!id || !flag || !(YAJL_IS_TRUE(flag) || YAJL_IS_FALSE(flag)))
    return false;
  x->holder_id = YAJL_GET_STRING(id);
  x->verify_client = YAJL_IS_TRUE(flag);
  return true;
}

/* The expectations of a plan that records previous values (one with
 * created_at); an older plan file has none, and a stale one is then
 * explained without naming a binding. */
static int read_expects(yajl_val root, struct report_stored_plan *sp)
{
  const char *created_path[] = {"created_at", NULL};
  const char *changes_path[] = {"changes", NULL};
  yajl_val ch = yajl_tree_get(root, changes_path, yajl_t_array);
  size_t n = ch ? YAJL_GET_ARRAY(ch)->len : 0;

  if (!yajl_tree_get(root, created_path, yajl_t_string) || n == 0)
    return 0;
  sp->expect = calloc(n, sizeof(*sp->expect));
  if (!sp->expect)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!read_expect(YAJL_GET_ARRAY(ch)->values[i], &sp->expect[sp->nexpect]))
      return -EBADMSG;
    sp->nexpect++;
  }
  return 0;
}

int report_plan_read(const char *path, struct report_stored_plan *sp,
                     const char **why)
{
  const char *version_path[] = {"version", NULL};
  const char *checksum_path[] = {"checksum", NULL};
  const char *config_path[] = {"config_sha256", NULL};
  const char *sum;
  char *buf = NULL;
  size_t len;
  char err[128];
  yajl_val root, v;
  int rc = statefile_read(path, PLAN_FILE_MAX, &buf, &len);

  memset(sp, 0, sizeof(*sp));
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
  memcpy(sp->checksum, sum, 65);
  v = yajl_tree_get(root, config_path, yajl_t_string);
  sum = v ? YAJL_GET_STRING(v) : NULL;
  if (sum && is_hex64(sum))
    memcpy(sp->config_sha256, sum, 65);
  rc = read_expects(root, sp);
  if (rc < 0) {
    *why = rc == -ENOMEM ? strerror(ENOMEM)
                         : "a change of the plan has no instance_id, domain "
                           "or valid from";
    goto done;
  }
  sp->root = root;
  *why = NULL;
  return 0;
done:
  yajl_tree_free(root);
  free(sp->expect);
  memset(sp, 0, sizeof(*sp));
  return rc;
}

void report_stored_plan_free(struct report_stored_plan *sp)
{
  free(sp->expect);
  yajl_tree_free(sp->root);
  memset(sp, 0, sizeof(*sp));
}

/* "cb_old_4c221453, cb_x_12345678" into buf, cut with "…" when long. */
static void left_names(const struct plan *p, char *buf, size_t len)
{
  size_t used = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < p->nleft && used < len; i++) {
    const struct plan_left *l = &p->left[i];
    int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                     l->name[0] ? l->name : l->object_id);
    if (n < 0 || (size_t)n >= len - used) {
      if (len > 4)
        memcpy(buf + len - 4, "\xe2\x80\xa6", 4); /* "…" and the NUL */
      return;
    }
    used += (size_t)n;
  }
}

void report_log_left(const struct log *log, const struct plan *p,
                     uint64_t *logged)
{
  struct log_fields f = LOG_FIELDS_INIT;
  struct log_kv kv[1];
  uint64_t digest = plan_left_digest(p->left, p->nleft);
  char names[512];

  if (logged && *logged == digest)
    return;
  if (logged)
    *logged = digest;
  if (p->nleft == 0)
    return;
  left_names(p, names, sizeof(names));
  kv[0] = (struct log_kv){"count", (long long)p->nleft};
  f.kv = kv;
  f.nkv = 1;
  log_event(log, LOG_INFO, "certificate.left", &f,
            "%zu certificate object%s certbind created %s no longer in the "
            "file, not deleted: %s",
            p->nleft, p->nleft == 1 ? "" : "s", p->nleft == 1 ? "is" : "are",
            names);
}
