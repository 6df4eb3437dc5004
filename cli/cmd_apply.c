/* SPDX-License-Identifier: MIT */
/*
 * apply: one pass that writes (plan, write, confirm), or with --dry-run
 * the plan it would carry out; --plan refuses to write when the live
 * state or the file changed since that plan was stored, naming which.
 * state_dir/lock is held from the ledger's read to the last state file's
 * write, so that a daemon's pass cannot write an older ledger over this
 * one's.
 *
 * On a terminal (stdin and stdout), without --plan, --yes or --dry-run,
 * apply first runs a pass that only reads, prints its plan and asks for
 * `yes` (as Terraform does); the pass that writes then carries the shown
 * plan's checksum, as --plan does, so that what is written is exactly
 * what was shown, or nothing (refused as stale, exit 4). Anything but
 * `yes`, end of input or SIGINT/SIGTERM at the question: "Apply
 * cancelled.", exit 1, nothing written.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oneshot.h"
#include "persist.h"
#include "report.h"

#define APPLY_PROMPT                                                           \
  "Do you want to apply these changes? Only 'yes' will be accepted: "

static int apply_exit_code(const struct pass_result *r)
{
  switch (r->outcome) {
  case PASS_CONVERGED:
  case PASS_PLANNED:
    return CLI_EXIT_OK;
  case PASS_REFUSED:
  case PASS_ABORTED:
    return CLI_EXIT_REFUSED;
  default:
    return CLI_EXIT_FAILURE;
  }
}

/* A dry run shows the plan, and what the guards would say of it. */
static int finish_dry_run(struct oneshot *o)
{
  const struct pass_result *r = o->result;
  char why[200];

  report_plan_text(pass_config(o->pass), r->plan, stdout,
                   report_want_color(stdout));
  if (!o->args->force && plan_guards(pass_config(o->pass), r->plan, why,
                                     sizeof(why)) != PLAN_GUARD_OK) {
    printf("apply would refuse: %s\n", why);
    puts("dry run: nothing was written");
    return CLI_EXIT_REFUSED;
  }
  puts("dry run: nothing was written");
  return CLI_EXIT_OK;
}

/* The result on stdout, the verification of what the gateways serve when
 * policy.verify asks (logged, into the state files; it does not change
 * the exit code), the state files (not for a dry run: it writes nothing
 * to state_dir), and the exit code: a state file that cannot be written
 * fails the pass. */
static int finish(struct oneshot *o, struct visibility_set *learnt)
{
  const struct cli_args *a = o->args;
  const struct pass_result *r = o->result;
  struct served *served = NULL;
  int rc;

  if (a->dry_run && r->outcome == PASS_PLANNED)
    return finish_dry_run(o);
  pass_print_summary(o->pass, stdout, report_want_color(stdout));
  report_log_left(&a->log, r->plan, NULL);
  rc = apply_exit_code(r);
  if (!a->dry_run && served_wanted(&o->cfg, r)) {
    /* id certificates are compared with this pass's Show of them */
    struct served_opts so = {.pass = o->pass};

    (void)served_run(&o->cfg, &a->log, &so, &served); /* logged */
  }
  if (!a->dry_run &&
      persist_pass(&a->log, &o->cfg, o->pass, o->ledger, &o->metrics, served,
                   learnt) < 0 &&
      rc == CLI_EXIT_OK)
    rc = CLI_EXIT_FAILURE;
  served_free(served);
  return rc;
}

static bool wants_prompt(const struct cli_args *a)
{
  return !a->plan_path && !a->yes && !a->dry_run && isatty(STDIN_FILENO) &&
         isatty(STDOUT_FILENO);
}

/* The write end of ask_yes's pipe, or -1. A signal may be delivered to any
 * thread that does not block it (libuv's and libcurl's threads included),
 * so the handler cannot count on interrupting the main thread's read: it
 * wakes the poll below through this pipe instead. The one global of the
 * command, because a signal handler can reach nothing else. */
static volatile sig_atomic_t prompt_wake_fd = -1;

static void on_prompt_signal(int signum)
{
  int saved = errno;
  int fd = prompt_wake_fd;

  (void)signum;
  if (fd >= 0)
    (void)!write(fd, "", 1);
  errno = saved;
}

/* Wait until stdin has a line or a signal came: true for a line. */
static bool wait_for_line(int wake)
{
  struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
                          {.fd = wake, .events = POLLIN}};

  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (fds[1].revents)
      return false;
    if (fds[0].revents)
      return true;
  }
}

/* Ask; true only for a line that is exactly "yes". */
static bool ask_yes(void)
{
  struct sigaction sa, old_int, old_term;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = -1;
  int wake[2];
  bool yes;

  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
    return false;
  prompt_wake_fd = wake[1];
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_prompt_signal;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGINT, &sa, &old_int);
  (void)sigaction(SIGTERM, &sa, &old_term);
  fputs("\n" APPLY_PROMPT, stdout);
  fflush(stdout);
  if (wait_for_line(wake[0]))
    n = getline(&line, &cap, stdin);
  (void)sigaction(SIGINT, &old_int, NULL);
  (void)sigaction(SIGTERM, &old_term, NULL);
  prompt_wake_fd = -1;
  close(wake[0]);
  close(wake[1]);
  if (n > 0 && line[n - 1] == '\n')
    line[--n] = '\0';
  yes = n == 3 && strcmp(line, "yes") == 0;
  if (n < 0)
    fputc('\n', stdout); /* after ^C or ^D the cursor is on the prompt */
  free(line);
  return yes;
}

/* What the shown plan assumed of each binding it changes: who held it
 * before (so that a refusal as stale names the binding that moved). */
static struct plan_expect *expectations(const struct config *cfg,
                                        const struct plan *p)
{
  struct plan_expect *x = calloc(p->nitems ? p->nitems : 1, sizeof(*x));

  for (size_t i = 0; x && i < p->nitems; i++) {
    const struct plan_item *it = &p->items[i];
    x[i] = (struct plan_expect){
        .instance_id = it->instance_id,
        .domain = it->domain,
        .holder_id = it->has_from ? cfg->certificates[it->from_cert].id : NULL,
        .verify_client = it->from_verify_client,
    };
  }
  return x;
}

/* Plan (a pass that only reads), print it and ask. -1: go on and write
 * (po expects the shown plan when there was a question); else the exit
 * code. */
static int confirm(struct oneshot *o, struct pass_opts *po,
                   struct plan_expect **expect)
{
  struct pass_opts ro = {.write = false, .command = "apply"};
  const struct pass_result *r;
  char why[200];
  bool color = report_want_color(stdout);

  if (oneshot_run(o, &ro, true) < 0)
    return CLI_EXIT_FAILURE;
  r = o->result;
  if (r->outcome != PASS_PLANNED) { /* nothing to show: the reads failed */
    pass_print_summary(o->pass, stdout, color);
    return apply_exit_code(r);
  }
  report_plan_text(pass_config(o->pass), r->plan, stdout, color);
  /* nothing to ask: no change, or the guards refuse (the pass that
   * writes refuses in turn, and records it) */
  if (r->plan->nitems == 0 ||
      (!o->args->force && plan_guards(pass_config(o->pass), r->plan, why,
                                      sizeof(why)) != PLAN_GUARD_OK))
    return -1;
  if (!ask_yes()) {
    puts("Apply cancelled.");
    return CLI_EXIT_FAILURE;
  }
  *expect = expectations(pass_config(o->pass), r->plan);
  if (!*expect)
    return CLI_EXIT_FAILURE;
  /* the checksum and the expectations point into the first pass, which
   * oneshot keeps until oneshot_close() */
  po->expect_checksum = r->plan->checksum;
  po->expect = *expect;
  po->nexpect = r->plan->nitems;
  return -1;
}

/* apply --plan FILE: what the pass must find to write. */
static int use_stored_plan(const char *path, struct report_stored_plan *sp,
                           struct pass_opts *po)
{
  const char *why;

  if (report_plan_read(path, sp, &why) < 0) {
    fprintf(stderr, "certbind: %s: %s\n", path, why);
    return CLI_EXIT_USAGE;
  }
  po->expect_checksum = sp->checksum;
  po->expect_config_sha256 = sp->config_sha256[0] ? sp->config_sha256 : NULL;
  po->expect = sp->expect;
  po->nexpect = sp->nexpect;
  return 0;
}

int cli_apply(const struct cli_args *a)
{
  struct oneshot o = {0};
  struct pass_opts po = {.write = true,
                         .dry_run = a->dry_run,
                         .force = a->force,
                         .command = "apply"};
  struct report_stored_plan sp = {0};
  struct plan_expect *shown = NULL;
  struct visibility_set learnt = {0}; /* visibility.json: the delays */
  int rc = oneshot_open(&o, a);

  if (rc == 0 && a->plan_path)
    rc = use_stored_plan(a->plan_path, &sp, &po);
  if (rc)
    goto out;
  if (oneshot_lock(&o, true) < 0) {
    rc = CLI_EXIT_FAILURE;
    goto out;
  }
  if (wants_prompt(a) && (rc = confirm(&o, &po, &shown)) >= 0)
    goto out;
  /* confirm at the delays earlier passes learnt, not from the floor */
  persist_visibility_load(&a->log, o.cfg.daemon.state_dir, &learnt);
  po.visibility = &learnt;
  if (oneshot_run(&o, &po, true) < 0)
    rc = CLI_EXIT_FAILURE;
  else
    rc = finish(&o, &learnt);
out:
  oneshot_close(&o);
  visibility_set_free(&learnt);
  free(shown);
  report_stored_plan_free(&sp);
  return rc;
}
