/* SPDX-License-Identifier: MIT */
/*
 * certbind: keep APIG certificate bindings equal to a desired-state file.
 *
 * main() parses the command line and hands over to one command (cli.h).
 * The exit codes are the same for every command.
 *
 * Two tables are the whole command line: commands[] (name, what it does,
 * its exit codes) and option_uses[] (which command takes which option,
 * with what text). The per-command help, the synopsis, the getopt table
 * and the check that a command was given only its own options are all
 * made from them, so the help and the checks cannot disagree.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <yajl/yajl_version.h>
#include <yaml.h>

#include "cli.h"
#include "config.h"
#include "log.h"

#ifndef CERTBIND_COMMIT
#define CERTBIND_COMMIT "unknown"
#endif

/* ---- the commands ---------------------------------------------------- */

enum {
  CMD_VALIDATE = 1u << 0,
  CMD_PLAN = 1u << 1,
  CMD_APPLY = 1u << 2,
  CMD_RUN = 1u << 3,
  CMD_STATUS = 1u << 4,
  CMD_ADOPT = 1u << 5,
  CMD_IMPORT = 1u << 6,
  CMD_HELP = 1u << 7,
  CMD_VERIFY = 1u << 8,
  CMD_ANY = (1u << 9) - 1,
  /* the commands that read a desired-state file */
  CMD_WITH_FILE = CMD_ANY & ~(CMD_STATUS | CMD_HELP),
  /* the commands that make HTTPS transfers, so need libcurl's global
   * state (and, through it, OpenSSL's libssl and its configuration file);
   * validate and status start faster without them */
  CMD_WITH_NETWORK = CMD_ANY & ~(CMD_VALIDATE | CMD_STATUS | CMD_HELP),
};

struct command {
  const char *name;
  unsigned bit;
  int (*run)(const struct cli_args *);
  const char *operands; /* after the options in the synopsis, or NULL */
  const char *summary;  /* one line of the overview */
  const char *about;    /* the paragraph of its help */
  const char *exits;    /* the exit codes that apply, one per line */
};

static const struct command commands[] = {
    {"validate", CMD_VALIDATE, cli_validate, NULL, "check the file offline",
     "Loads and checks FILE without any network access, secret files\n"
     "included (regular, not readable by group or others, not empty).\n"
     "Prints a one-line summary, or every problem as FILE:LINE:COL.",
     "0   the file is valid\n"
     "3   the file is invalid\n"
     "64  usage error\n"},
    {"plan", CMD_PLAN, cli_plan, NULL, "read live state, print the diff",
     "Reads the live bindings of every certificate in FILE, computes what\n"
     "apply would attach, change or detach, and prints it. Writes nothing\n"
     "to the API.",
     "0   nothing to change\n"
     "1   a certificate could not be read\n"
     "2   there are changes\n"
     "3   the file is invalid\n"
     "4   apply would refuse (a guard)\n"
     "64  usage error\n"},
    {"apply", CMD_APPLY, cli_apply, NULL, "one pass: plan, write, confirm",
     "One reconciliation pass: reads the live state, plans, checks the\n"
     "guards, writes the changes and reads them back until they show.\n"
     "On a terminal without --plan it shows the plan and asks first.\n"
     "Writes status.json, ledger.json and the counters to daemon.state_dir.",
     "0   every binding converged (--dry-run: the plan was printed)\n"
     "1   a binding failed or is still pending, or a state file could not\n"
     "    be written\n"
     "3   the file is invalid\n"
     "4   refused by a guard: detach threshold, stale --plan, rollout "
     "aborted\n"
     "64  usage error, or a --plan file that is not a readable plan\n"},
    {"run", CMD_RUN, cli_run, NULL, "the daemon",
     "Runs a pass at start, then every daemon.resync_interval_s, at once\n"
     "when FILE or a file it names changes, and on SIGHUP. SIGTERM or\n"
     "SIGINT stops it after the requests in flight (a second one aborts\n"
     "them). Talks to systemd (Type=notify, watchdog).",
     "0   stopped by SIGTERM or SIGINT\n"
     "1   could not start\n"
     "3   the file is invalid at start\n"
     "64  usage error\n"},
    {"status", CMD_STATUS, cli_status, NULL, "the last pass, from status.json",
     "Prints the last pass and the bindings that are not converged from\n"
     "DIR/status.json. Needs no file and no network.",
     "0   printed\n"
     "1   no status file yet, or it is unreadable\n"
     "64  usage error\n"},
    {"adopt", CMD_ADOPT, cli_adopt, NULL,
     "own the live bindings the file wants",
     "Reads the live bindings of FILE's certificates and records every one\n"
     "that FILE wants as owned in the ledger, so that sync mode can manage\n"
     "a fleet certbind did not build. Writes nothing to the API.",
     "0   adopted\n"
     "1   a certificate could not be read, or the ledger could not be\n"
     "    read or written\n"
     "3   the file is invalid\n"
     "64  usage error, or --certificate names no certificate of FILE\n"},
    {"import", CMD_IMPORT, cli_import, NULL,
     "print a file that reproduces live bindings",
     "Reads the live bindings of the certificates given, with the accounts\n"
     "of FILE, and prints a desired-state file that reproduces them, so\n"
     "that plan right after is empty. Writes nothing to the API.",
     "0   printed\n"
     "1   a certificate could not be read\n"
     "3   the file is invalid\n"
     "64  usage error\n"},
    {"verify", CMD_VERIFY, cli_verify, NULL,
     "check what the gateways serve, per address",
     "For every binding on a gateway that lists ingress addresses, and\n"
     "every such address: a TLS handshake with the domain as SNI (a name\n"
     "under a wildcard), and the certificate presented compared with the\n"
     "one FILE wants. Prints a matrix, domain by gateway address: ok,\n"
     "mismatch, expired, unreachable or unknown; what is not ok is tried\n"
     "again until policy.confirm_timeout_s. Writes nothing to the API and\n"
     "touches no state file.",
     "0   every address serves the wanted certificate for every domain\n"
     "1   a mismatch, an expired or unknown certificate, an unreachable\n"
     "    address, or interrupted\n"
     "3   the file is invalid\n"
     "64  usage error\n"},
    {"help", CMD_HELP, NULL, "[COMMAND]", "the help of certbind or a command",
     "Prints the help of COMMAND, as 'certbind COMMAND --help' does, or\n"
     "the overview.",
     "0   printed\n"
     "64  usage error\n"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- the options ----------------------------------------------------- */

enum opt_id {
  O_CONFIG,
  O_JSON,
  O_OUT,
  O_PLAN,
  O_DRY_RUN,
  O_FORCE,
  O_YES,
  O_STATE_DIR,
  O_ALL,
  O_CERTIFICATE,
  O_LOG_FORMAT,
  O_LOG_LEVEL,
  O_HELP,
  O_VERSION,
  O_COUNT,
};

struct opt_spec {
  const char *name;
  char short_name; /* 0: long only */
  bool has_arg;
};

static const struct opt_spec opt_specs[O_COUNT] = {
    [O_CONFIG] = {"config", 'c', true},
    [O_JSON] = {"json", 0, false},
    [O_OUT] = {"out", 0, true},
    [O_PLAN] = {"plan", 0, true},
    [O_DRY_RUN] = {"dry-run", 0, false},
    [O_FORCE] = {"force", 0, false},
    [O_YES] = {"yes", 0, false},
    [O_STATE_DIR] = {"state-dir", 0, true},
    [O_ALL] = {"all", 0, false},
    [O_CERTIFICATE] = {"certificate", 0, true},
    [O_LOG_FORMAT] = {"log-format", 0, true},
    [O_LOG_LEVEL] = {"log-level", 0, true},
    [O_HELP] = {"help", 'h', false},
    [O_VERSION] = {"version", 0, false},
};

/* USE_ONCE: given twice is an error, not "the last one wins" (adopt's
 * --certificate, which import takes many times) */
enum { USE_REQUIRED = 1u << 0, USE_REPEATABLE = 1u << 1, USE_ONCE = 1u << 2 };

/* One row per (option, commands, meaning): an option whose meaning
 * differs between commands has one row each. */
struct opt_use {
  enum opt_id id;
  unsigned commands;
  unsigned flags;
  const char *metavar; /* NULL for a flag */
  const char *help;
};

static const struct opt_use option_uses[] = {
    {O_CONFIG, CMD_WITH_FILE, USE_REQUIRED, "FILE", "the desired-state file"},
    {O_JSON, CMD_PLAN, 0, NULL, "print the plan as JSON instead of text"},
    {O_JSON, CMD_STATUS, 0, NULL, "print status.json itself"},
    {O_JSON, CMD_VERIFY, 0, NULL,
     "print every check as JSON, with what is served"},
    {O_OUT, CMD_PLAN, 0, "PLAN",
     "also write the plan as JSON, with its checksum,\nto PLAN (for apply "
     "--plan)"},
    {O_PLAN, CMD_APPLY, 0, "PLAN",
     "apply only if the file and the live state still\nmatch PLAN (made by "
     "plan --out), else exit 4"},
    {O_DRY_RUN, CMD_APPLY, 0, NULL, "read, diff and print; write nothing"},
    {O_FORCE, CMD_APPLY, 0, NULL,
     "the detach thresholds do not refuse this run"},
    {O_YES, CMD_APPLY, 0, NULL, "do not ask before writing on a terminal"},
    {O_STATE_DIR, CMD_STATUS, 0, "DIR",
     "where status.json is (default /var/lib/certbind)"},
    {O_ALL, CMD_STATUS, 0, NULL, "every binding, not 20 per state"},
    {O_CERTIFICATE, CMD_ADOPT, USE_ONCE, "NAME",
     "only the bindings of this certificate (its name\nin the file)"},
    {O_CERTIFICATE, CMD_IMPORT, USE_REQUIRED | USE_REPEATABLE, "ID",
     "a certificate ID whose live bindings to print;\ngive it once per "
     "certificate"},
    {O_LOG_FORMAT, CMD_ANY, 0, "FMT",
     "text | json (default json, text when stderr is\na terminal)"},
    {O_LOG_LEVEL, CMD_ANY, 0, "LEVEL",
     "debug | info | warn | error (default info; warn\non a terminal, except "
     "for run)"},
    {O_HELP, CMD_ANY, 0, NULL, "this text"},
};

#define NUSES (sizeof(option_uses) / sizeof(option_uses[0]))

/* getopt's value of an option: its letter, or a number past every char */
static int opt_value(enum opt_id id)
{
  return opt_specs[id].short_name ? opt_specs[id].short_name : 256 + (int)id;
}

static int opt_of_value(int val)
{
  for (int i = 0; i < O_COUNT; i++)
    if (opt_value((enum opt_id)i) == val)
      return i;
  return -1;
}

static void make_long_options(struct option out[O_COUNT + 1])
{
  for (int i = 0; i < O_COUNT; i++)
    out[i] =
        (struct option){opt_specs[i].name,
                        opt_specs[i].has_arg ? required_argument : no_argument,
                        NULL, opt_value((enum opt_id)i)};
  out[O_COUNT] = (struct option){NULL, 0, NULL, 0};
}

/* "+": stop at the command (options may come before it and after it);
 * ":": a missing value is reported as ':' and getopt prints nothing, so
 * that every usage error is our one line. */
static const char short_options[] = "+:c:h";

/* ---- did you mean ---------------------------------------------------- */

#define SUGGEST_MAX 64

/* Optimal string alignment distance: Levenshtein plus the swap of two
 * neighbours, the commonest typo ("plna"). */
static size_t edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b);
  size_t d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];

  if (la > SUGGEST_MAX || lb > SUGGEST_MAX)
    return (size_t)-1;
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    for (size_t j = 1; j <= lb; j++) {
      size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  }
  return d[la][lb];
}

/* Close enough to be a typo: one edit in a short word, two in a longer. */
static bool is_close(const char *typed, const char *name)
{
  size_t len = strlen(typed);
  size_t limit = len < 5 ? 1 : 2;

  return edit_distance(typed, name) <= limit;
}

static const char *closest_command(const char *typed)
{
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (is_close(typed, commands[i].name))
      return commands[i].name;
  return NULL;
}

static const char *closest_option(const char *typed)
{
  for (int i = 0; i < O_COUNT; i++)
    if (is_close(typed, opt_specs[i].name))
      return opt_specs[i].name;
  return NULL;
}

/* ---- usage errors ---------------------------------------------------- */

/* One line naming the problem, then where to read more; exit 64. */
__attribute__((format(printf, 2, 3))) static int
usage_error(const struct command *cmd, const char *fmt, ...)
{
  va_list ap;

  fputs("certbind: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (cmd && cmd->bit != CMD_HELP)
    fprintf(stderr, "\ntry 'certbind %s --help'\n", cmd->name);
  else
    fputs("\ntry 'certbind --help' or 'certbind COMMAND --help'\n", stderr);
  return CLI_EXIT_USAGE;
}

static const struct command *find_command(const char *name)
{
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int unknown_command(const char *name)
{
  const char *near = closest_command(name);

  if (near)
    return usage_error(NULL, "unknown command '%s'; did you mean '%s'?", name,
                       near);
  return usage_error(NULL, "unknown command '%s'", name);
}

/* getopt takes a unique prefix of a long option ("--conf") and refuses one
 * that several options start with ("--c"). */
static bool ambiguous_prefix(const char *name, size_t len)
{
  int n = 0;

  for (int i = 0; i < O_COUNT; i++)
    if (strncmp(opt_specs[i].name, name, len) == 0)
      n++;
  return n > 1;
}

/* The word as typed, "--dry-rn=x" shown as "--dry-rn". */
static int unknown_long_option(const struct command *cmd, const char *word)
{
  const char *name = word + 2;
  size_t len = strcspn(name, "=");
  char typed[SUGGEST_MAX + 1];
  const char *near = NULL;

  if (len > 0 && ambiguous_prefix(name, len))
    return usage_error(cmd, "option '--%.*s' is ambiguous: give more of it",
                       (int)len, name);
  if (len <= SUGGEST_MAX) {
    memcpy(typed, name, len);
    typed[len] = '\0';
    near = closest_option(typed);
  }
  if (near)
    return usage_error(cmd, "unknown option '--%.*s'; did you mean '--%s'?",
                       (int)len, name, near);
  return usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
}

/* "FILE": what an option's value is, as the command's help names it */
static const char *value_name(const struct command *cmd, enum opt_id id)
{
  const char *any = "a value";

  for (size_t i = 0; i < NUSES; i++) {
    const struct opt_use *u = &option_uses[i];

    if (u->id != id || !u->metavar)
      continue;
    if (cmd && (u->commands & cmd->bit))
      return u->metavar;
    any = u->metavar;
  }
  return any;
}

/* getopt answered '?' or ':': say which option, as the user typed it. */
static int option_error(const struct command *cmd, int c, char **argv)
{
  const char *word = argv[optind - 1];
  int id = opt_of_value(optopt);

  if (c == ':') {
    const char *what = id >= 0 ? value_name(cmd, (enum opt_id)id) : "a value";

    if (strncmp(word, "--", 2) == 0)
      return usage_error(cmd, "option '%s' needs %s", word, what);
    return usage_error(cmd, "option '-%c' needs %s", optopt, what);
  }
  /* glibc: 0 for an unknown long option, the option's value for a value
   * given to a long option that takes none (--json=x) */
  if (optopt == 0)
    return unknown_long_option(cmd, word);
  if (id >= 0 && (optopt >= 256 || strncmp(word, "--", 2) == 0))
    return usage_error(cmd, "option '--%s' takes no value", opt_specs[id].name);
  return usage_error(cmd, "unknown option '-%c'", optopt);
}

/* ---- parsing --------------------------------------------------------- */

struct parse {
  unsigned count[O_COUNT]; /* how often each option was given */
  bool help;
  const char **certs; /* room for every argument */
};

static int take_option(const struct command *cmd, enum opt_id id,
                       struct cli_args *a, struct parse *p)
{
  p->count[id]++;
  switch (id) {
  case O_CONFIG:
    a->config_path = optarg;
    break;
  case O_LOG_FORMAT:
    if (log_parse_format(optarg, &a->log.format) < 0)
      return usage_error(cmd, "--log-format must be text or json, not '%s'",
                         optarg);
    break;
  case O_LOG_LEVEL:
    if (log_parse_level(optarg, &a->log.level) < 0)
      return usage_error(
          cmd, "--log-level must be debug, info, warn or error, not '%s'",
          optarg);
    a->log_level_set = true;
    break;
  case O_JSON:
    a->json = true;
    break;
  case O_OUT:
    a->out_path = optarg;
    break;
  case O_PLAN:
    a->plan_path = optarg;
    break;
  case O_DRY_RUN:
    a->dry_run = true;
    break;
  case O_STATE_DIR:
    a->state_dir = optarg;
    break;
  case O_CERTIFICATE:
    a->certificate = optarg;
    p->certs[a->ncertificates++] = optarg;
    break;
  case O_FORCE:
    a->force = true;
    break;
  case O_YES:
    a->yes = true;
    break;
  case O_ALL:
    a->all = true;
    break;
  case O_HELP:
    p->help = true;
    break;
  case O_VERSION:
  case O_COUNT:
    break;
  }
  return 0;
}

static void print_version(void)
{
  const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
  int yajl = yajl_version();

  /* What is linked at run time, not what the headers said at build. */
  printf("certbind %s\n", CERTBIND_VERSION);
  printf("commit   %s\n", CERTBIND_COMMIT);
  printf("libcurl  %s\n", curl->version);
  printf("OpenSSL  %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
  printf("libuv    %s\n", uv_version_string());
  printf("yajl     %d.%d.%d\n", yajl / 10000, yajl / 100 % 100, yajl % 100);
  printf("libyaml  %s\n", yaml_get_version_string());
}

/* One pass of getopt over argv: before the command (cmd NULL) or after.
 * *done: --version was printed. */
static int parse_args(int argc, char **argv, const struct command *cmd,
                      struct cli_args *a, struct parse *p, bool *done)
{
  struct option longopts[O_COUNT + 1];
  int c;

  make_long_options(longopts);
  *done = false;
  opterr = 0;
  optind = 0; /* glibc: start again from argv[1] */
  while ((c = getopt_long(argc, argv, short_options, longopts, NULL)) != -1) {
    int id = opt_of_value(c);
    int rc;

    if (c == '?' || c == ':' || id < 0)
      return option_error(cmd, c, argv);
    if (id == O_VERSION) {
      print_version();
      *done = true;
      return 0;
    }
    rc = take_option(cmd, (enum opt_id)id, a, p);
    if (rc)
      return rc;
  }
  return 0;
}

/* ---- help ------------------------------------------------------------ */

static const struct opt_use *use_of(enum opt_id id, unsigned cmd_bit)
{
  for (size_t i = 0; i < NUSES; i++)
    if (option_uses[i].id == id && (option_uses[i].commands & cmd_bit))
      return &option_uses[i];
  return NULL;
}

/* "-c FILE", "--out PLAN", "--json" */
static void option_word(char *buf, size_t size, const struct opt_use *u)
{
  const struct opt_spec *s = &opt_specs[u->id];

  if (s->short_name)
    snprintf(buf, size, "-%c%s%s", s->short_name, u->metavar ? " " : "",
             u->metavar ? u->metavar : "");
  else
    snprintf(buf, size, "--%s%s%s", s->name, u->metavar ? " " : "",
             u->metavar ? u->metavar : "");
}

static void print_synopsis(FILE *out, const struct command *cmd)
{
  fprintf(out, "usage: certbind %s", cmd->name);
  for (size_t i = 0; i < NUSES; i++) {
    const struct opt_use *u = &option_uses[i];
    char word[64];

    if (!(u->commands & cmd->bit) || u->commands == CMD_ANY)
      continue;

    option_word(word, sizeof(word), u);
    fprintf(out, u->flags & USE_REQUIRED ? " %s" : " [%s]", word);
    if (u->flags & USE_REPEATABLE)
      fputs("...", out);
  }
  if (cmd->operands)
    fprintf(out, " %s", cmd->operands);
  fputc('\n', out);
}

#define HELP_COLUMN 26

/* A help text's further lines are indented to its column. */
static void print_indented(FILE *out, const char *text, int column)
{
  for (const char *p = text; *p; p++) {
    fputc(*p, out);
    if (*p == '\n' && p[1])
      fprintf(out, "%*s", column, "");
  }
}

static void print_option_line(FILE *out, const struct opt_use *u)
{
  const struct opt_spec *s = &opt_specs[u->id];
  char label[64];
  int n;

  if (s->short_name)
    n = snprintf(label, sizeof(label), "  -%c, --%s%s%s", s->short_name,
                 s->name, u->metavar ? " " : "", u->metavar ? u->metavar : "");
  else
    n = snprintf(label, sizeof(label), "      --%s%s%s", s->name,
                 u->metavar ? " " : "", u->metavar ? u->metavar : "");
  if (n > HELP_COLUMN - 2)
    fprintf(out, "%s\n%*s", label, HELP_COLUMN, "");
  else
    fprintf(out, "%-*s", HELP_COLUMN, label);
  print_indented(out, u->help, HELP_COLUMN);
  if (u->flags & USE_REQUIRED)
    fputs(" (required)", out);
  fputc('\n', out);
}

static void print_exit_codes(FILE *out, const char *codes)
{
  fputs("\nexit codes:\n  ", out);
  print_indented(out, codes, 2);
}

static void print_command_help(FILE *out, const struct command *cmd)
{
  print_synopsis(out, cmd);
  fputc('\n', out);
  fputs(cmd->about, out);
  fputs("\n\noptions:\n", out);
  /* the command's own options first, then the common ones */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < NUSES; i++) {
      const struct opt_use *u = &option_uses[i];
      bool common = u->commands == CMD_ANY;

      if ((u->commands & cmd->bit) && common == (pass == 1))
        print_option_line(out, u);
    }
  print_exit_codes(out, cmd->exits);
}

static void print_overview(FILE *out)
{
  fputs("usage: certbind COMMAND [OPTIONS]\n"
        "\n"
        "Keeps the certificate bindings of Huawei Cloud API Gateway equal to "
        "a\ndesired-state file (YAML).\n"
        "\ncommands:\n",
        out);
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s%s\n", commands[i].name, commands[i].summary);
  fputs("\noptions of every command:\n", out);
  for (size_t i = 0; i < NUSES; i++)
    if (option_uses[i].commands == CMD_ANY)
      print_option_line(out, &option_uses[i]);
  fprintf(out, "      --%-16sthe version of certbind and its libraries\n",
          opt_specs[O_VERSION].name);
  print_exit_codes(out, "0   success (plan: nothing to change)\n"
                        "1   runtime failure\n"
                        "2   plan: there are changes\n"
                        "3   the file is invalid\n"
                        "4   refused by a guard\n"
                        "64  usage error\n");
  fputs("\n'certbind help COMMAND' or 'certbind COMMAND --help': a command's "
        "options.\nThe manual: certbind(1), and certbind.yaml(5) for the "
        "file.\n",
        out);
}

/* certbind help [TOPIC] */
static int run_help(int argc, char **argv)
{
  const struct command *topic;

  if (argc > 2)
    return usage_error(find_command("help"), "unexpected argument '%s'",
                       argv[2]);
  if (argc < 2) {
    print_overview(stdout);
    return CLI_EXIT_OK;
  }
  topic = find_command(argv[1]);
  if (!topic)
    return unknown_command(argv[1]);
  print_command_help(stdout, topic);
  return CLI_EXIT_OK;
}

/* ---- checks and dispatch --------------------------------------------- */

static int not_an_option_of(const struct command *cmd, enum opt_id id)
{
  char list[128] = "";
  size_t len = 0;

  for (size_t i = 0; i < NCOMMANDS; i++)
    if (use_of(id, commands[i].bit) && len < sizeof(list))
      len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                              len ? ", " : "", commands[i].name);
  return usage_error(cmd, "--%s is not an option of %s (it is for %s)",
                     opt_specs[id].name, cmd->name, list);
}

/* A usage error beats a silently ignored flag: every option given must
 * be one the command takes (option_uses[]), the required ones given; of
 * the others given twice, the last one wins. */
static int check_options(const struct command *cmd, const struct parse *p)
{
  for (int id = 0; id < O_COUNT; id++) {
    const struct opt_use *u = use_of((enum opt_id)id, cmd->bit);

    if (id == O_VERSION)
      continue;
    if (p->count[id] && !u)
      return not_an_option_of(cmd, (enum opt_id)id);
    if (!u)
      continue;
    if (!p->count[id] && (u->flags & USE_REQUIRED)) {
      char word[64];

      option_word(word, sizeof(word), u);
      return usage_error(cmd, "%s needs %s", cmd->name, word);
    }
    if (p->count[id] > 1 && (u->flags & USE_ONCE))
      return usage_error(cmd, "%s takes one --%s", cmd->name,
                         opt_specs[id].name);
  }
  return 0;
}

/* On a terminal the one-shot commands print a plan or a summary on
 * stdout; info lines on the same screen would break it up, so a person
 * sees warnings and errors only unless they ask (Terraform's default). The
 * daemon keeps info: its log is its output. */
static void quiet_on_terminal(struct cli_args *a)
{
  if (!a->log_level_set && strcmp(a->command, "run") != 0 &&
      isatty(fileno(a->log.out)))
    a->log.level = LOG_WARN;
}

static int dispatch(const struct command *cmd, struct cli_args *args)
{
  bool network = cmd->bit & CMD_WITH_NETWORK;
  int rc;

  quiet_on_terminal(args);
  if (network && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fputs("certbind: libcurl could not be initialised\n", stderr);
    return CLI_EXIT_FAILURE;
  }
  rc = cmd->run(args);
  if (network)
    curl_global_cleanup();
  return rc;
}

static int run_command(int argc, char **argv, struct cli_args *args,
                       const char **certs)
{
  struct parse p = {.certs = certs};
  const struct command *cmd;
  bool done;
  int rc;

  /* Options may come before the command (--version) or after it. */
  rc = parse_args(argc, argv, NULL, args, &p, &done);
  if (rc || done)
    return rc;
  if (optind >= argc) {
    if (p.help) {
      print_overview(stdout);
      return CLI_EXIT_OK;
    }
    return usage_error(NULL, "%s", "missing command");
  }
  args->command = argv[optind];
  cmd = find_command(args->command);
  if (!cmd)
    return unknown_command(args->command);
  argc -= optind;
  argv += optind;
  rc = parse_args(argc, argv, cmd, args, &p, &done);
  if (rc || done)
    return rc;
  if (p.help) {
    print_command_help(stdout, cmd);
    return CLI_EXIT_OK;
  }
  if (optind < argc && cmd->bit != CMD_HELP)
    return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  rc = check_options(cmd, &p);
  if (rc)
    return rc;
  if (cmd->bit == CMD_HELP)
    return run_help(argc - optind + 1, argv + optind - 1);
  return dispatch(cmd, args);
}

int main(int argc, char **argv)
{
  struct cli_args args = {0};
  const char **certs;
  int rc;

  /* Before any secret is read: a non-dumpable process leaves no core file
   * (with the AK/SK, a token, an Authorization header) and cannot be
   * ptrace'd or have its /proc memory read by other processes of its uid. */
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    fprintf(stderr, "certbind: cannot make the process non-dumpable: %s\n",
            strerror(errno));
    return CLI_EXIT_FAILURE;
  }
  /* libuv does not protect writes from SIGPIPE (libuv#45), and curl with
   * CURLOPT_NOSIGNAL does not ignore it either. */
  signal(SIGPIPE, SIG_IGN);
  /* glibc raises its mmap threshold to the size of each large block freed
   * (up to 32 MiB), so a pass's large arrays and list pages then come from
   * the heap and stay in the RSS after they are freed. Fixed at 128 KiB
   * (its initial value), they are mapped and given back: 100,000 bindings
   * peak at 79 MB instead of 85 MB (bench/RESULTS.md). */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  log_init(&args.log, stderr);
  certs = calloc((size_t)argc + 1, sizeof(*certs));
  if (!certs) {
    fputs("certbind: out of memory\n", stderr);
    return CLI_EXIT_FAILURE;
  }
  args.certificates = certs;
  rc = run_command(argc, argv, &args, certs);
  free(certs);
  return rc;
}
