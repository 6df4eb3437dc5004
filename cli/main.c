/* SPDX-License-Identifier: MIT */
/*
 * certbind: keep APIG certificate bindings equal to a desired-state file.
 *
 * main() parses the command line and hands over to one command (cli.h).
 * The exit codes are the same for every command.
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

#include "cli.h"
#include "config.h"
#include "log.h"

static const char usage_text[] =
    "usage: certbind COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  validate -c FILE                          check the file offline\n"
    "  plan     -c FILE [--json] [--out PLAN]    read live state, print the "
    "diff\n"
    "  apply    -c FILE [--plan PLAN] [--dry-run] one pass: plan, write, "
    "confirm\n"
    "  run      -c FILE                          the daemon\n"
    "  status   [--state-dir DIR] [--json]       the last pass\n"
    "  adopt    -c FILE [--certificate NAME]     own the live bindings the "
    "file wants\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        the desired-state file\n"
    "      --log-format FMT     text | json (json when stderr is not a "
    "terminal)\n"
    "      --log-level LEVEL    debug | info | warn | error (default info;\n"
    "                           warn on a terminal, except for run)\n"
    "  -h, --help               this text\n"
    "      --version            print the version\n"
    "\n"
    "exit codes: 0 success (plan: no changes), 1 runtime failure, 2 plan has "
    "changes,\n"
    "            3 invalid file, 4 refused by a guard, 64 usage error\n";

enum {
  OPT_LOG_FORMAT = 256,
  OPT_LOG_LEVEL,
  OPT_JSON,
  OPT_OUT,
  OPT_PLAN,
  OPT_DRY_RUN,
  OPT_STATE_DIR,
  OPT_CERTIFICATE,
  OPT_VERSION,
  OPT_FORCE,
  OPT_YES,
  OPT_ALL,
};

static const struct option long_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"json", no_argument, NULL, OPT_JSON},
    {"out", required_argument, NULL, OPT_OUT},
    {"plan", required_argument, NULL, OPT_PLAN},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"certificate", required_argument, NULL, OPT_CERTIFICATE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"force", no_argument, NULL, OPT_FORCE},
    {"yes", no_argument, NULL, OPT_YES},
    {"all", no_argument, NULL, OPT_ALL},
    {NULL, 0, NULL, 0},
};

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt,
                                                             ...)
{
  va_list ap;

  fputs("certbind: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\ntry 'certbind --help'\n", stderr);
  return CLI_EXIT_USAGE;
}

/* Which options each command accepts: a usage error beats a silently
 * ignored flag. */
static int check_options(const struct cli_args *a)
{
  const char *cmd = a->command;
  bool needs_config = strcmp(cmd, "status") != 0;

  if (needs_config && !a->config_path)
    return usage_error("%s needs -c FILE", cmd);
  if (!needs_config && a->config_path)
    return usage_error("%s does not take -c", cmd);
  if (a->json && strcmp(cmd, "plan") && strcmp(cmd, "status"))
    return usage_error("--json is for plan and status, not %s", cmd);
  if (a->out_path && strcmp(cmd, "plan"))
    return usage_error("--out is for plan, not %s", cmd);
  if ((a->plan_path || a->dry_run) && strcmp(cmd, "apply"))
    return usage_error("--plan and --dry-run are for apply, not %s", cmd);
  if (a->state_dir && strcmp(cmd, "status"))
    return usage_error("--state-dir is for status, not %s", cmd);
  if (a->certificate && strcmp(cmd, "adopt") && strcmp(cmd, "import"))
    return usage_error("--certificate is for adopt and import, not %s", cmd);
  if (a->ncertificates > 1 && strcmp(cmd, "import"))
    return usage_error("%s takes one --certificate", cmd);
  if (!a->certificate && strcmp(cmd, "import") == 0)
    return usage_error("%s", "import needs --certificate ID");
  if ((a->force || a->yes) && strcmp(cmd, "apply"))
    return usage_error("--force and --yes are for apply, not %s", cmd);
  if (a->all && strcmp(cmd, "status"))
    return usage_error("--all is for status, not %s", cmd);
  return 0;
}

/* certs: room for every argument (argc), so that --certificate may be
 * given any number of times. */
static int parse_args(int argc, char **argv, struct cli_args *a,
                      const char **certs, bool *done)
{
  int c;

  *done = false;
  while ((c = getopt_long(argc, argv, "+c:h", long_options, NULL)) != -1) {
    switch (c) {
    case 'c':
      a->config_path = optarg;
      break;
    case OPT_LOG_FORMAT:
      if (log_parse_format(optarg, &a->log.format) < 0)
        return usage_error("--log-format must be text or json, not '%s'",
                           optarg);
      break;
    case OPT_LOG_LEVEL:
      if (log_parse_level(optarg, &a->log.level) < 0)
        return usage_error(
            "--log-level must be debug, info, warn or error, not '%s'", optarg);
      a->log_level_set = true;
      break;
    case OPT_JSON:
      a->json = true;
      break;
    case OPT_OUT:
      a->out_path = optarg;
      break;
    case OPT_PLAN:
      a->plan_path = optarg;
      break;
    case OPT_DRY_RUN:
      a->dry_run = true;
      break;
    case OPT_STATE_DIR:
      a->state_dir = optarg;
      break;
    case OPT_CERTIFICATE:
      a->certificate = optarg;
      certs[a->ncertificates++] = optarg;
      break;
    case OPT_FORCE:
      a->force = true;
      break;
    case OPT_YES:
      a->yes = true;
      break;
    case OPT_ALL:
      a->all = true;
      break;
    case 'h':
      fputs(usage_text, stdout);
      *done = true;
      return 0;
    case OPT_VERSION:
      printf("certbind %s\n", CERTBIND_VERSION);
      *done = true;
      return 0;
    default:
      return usage_error("%s", "invalid option");
    }
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

static int run_command(int argc, char **argv, struct cli_args *args,
                       const char **certs)
{
  bool done;
  int rc;

  /* Options may come before the command (--version) or after it. */
  rc = parse_args(argc, argv, args, certs, &done);
  if (rc || done)
    return rc;
  if (optind >= argc)
    return usage_error("%s", "missing command");
  args->command = argv[optind];
  argc -= optind;
  argv += optind;
  optind = 1;
  rc = parse_args(argc, argv, args, certs, &done);
  if (rc || done)
    return rc;
  if (optind < argc)
    return usage_error("unexpected argument '%s'", argv[optind]);

  static const struct {
    const char *name;
    int (*fn)(const struct cli_args *);
  } commands[] = {
      {"validate", cli_validate}, {"plan", cli_plan},     {"apply", cli_apply},
      {"run", cli_run},           {"status", cli_status}, {"adopt", cli_adopt},
      {"import", cli_import},
  };
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    if (strcmp(args->command, commands[i].name) == 0) {
      rc = check_options(args);
      if (rc)
        return rc;
      quiet_on_terminal(args);
      if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("certbind: libcurl could not be initialised\n", stderr);
        return CLI_EXIT_FAILURE;
      }
      rc = commands[i].fn(args);
      curl_global_cleanup();
      return rc;
    }
  }
  return usage_error("unknown command '%s'", args->command);
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
