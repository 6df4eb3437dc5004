/* SPDX-License-Identifier: MIT */
/* apig-sim: command line, TLS material, port file, signals. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static void usage(FILE *f)
{
  fputs("usage: apig-sim --listen 127.0.0.1:PORT --seed-file world.json\n"
        "         [--port-file F] [--tls-cert C --tls-key K]\n"
        "         [--visibility-delay-ms N] [--latency-ms N] [--seed N]\n"
        "         [--token-ttl-s N] [--threads N] [--clock-skew-ok]\n"
        "         [--faults JSON] [--settings JSON] [--log-requests]\n"
        "         [--tls-priorities GNUTLS-PRIORITY-STRING]\n"
        "         [--data-plane 127.0.0.1:0] [--data-plane-port-file F]\n"
        "PORT 0 picks a free port; the port file is written (atomically)\n"
        "once listening. SIGTERM/SIGINT stop it with exit status 0.\n"
        "--data-plane: a TLS listener per gateway without a seed ingress;\n"
        "its port file has one line per listener: INSTANCE_ID ADDRESS:PORT.\n"
        "--clock-skew-ok disables the X-Sdk-Date window (tests only).\n",
        f);
}

static int num_arg(const char *s, long long lo, long long hi, long long *out)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi)
    return -EINVAL;
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, struct sim_options *o)
{
  enum {
    O_PORTFILE = 256,
    O_SEEDFILE,
    O_CERT,
    O_KEY,
    O_VIS,
    O_LAT,
    O_SEED,
    O_THREADS,
    O_LOG,
    O_TTL,
    O_SKEW,
    O_HELP,
    O_FAULTS,
    O_SETTINGS,
    O_PRIO,
    O_DP,
    O_DP_PORTFILE
  };
  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'l'},
      {"port-file", required_argument, NULL, O_PORTFILE},
      {"seed-file", required_argument, NULL, O_SEEDFILE},
      {"tls-cert", required_argument, NULL, O_CERT},
      {"tls-key", required_argument, NULL, O_KEY},
      {"visibility-delay-ms", required_argument, NULL, O_VIS},
      {"latency-ms", required_argument, NULL, O_LAT},
      {"seed", required_argument, NULL, O_SEED},
      {"threads", required_argument, NULL, O_THREADS},
      {"token-ttl-s", required_argument, NULL, O_TTL},
      {"clock-skew-ok", no_argument, NULL, O_SKEW},
      {"log-requests", no_argument, NULL, O_LOG},
      {"help", no_argument, NULL, O_HELP},
      {"faults", required_argument, NULL, O_FAULTS},
      {"settings", required_argument, NULL, O_SETTINGS},
      {"tls-priorities", required_argument, NULL, O_PRIO},
      {"data-plane", required_argument, NULL, O_DP},
      {"data-plane-port-file", required_argument, NULL, O_DP_PORTFILE},
      {NULL, 0, NULL, 0}};
  memset(o, 0, sizeof(*o));
  o->listen = "127.0.0.1:0";
  o->visibility_delay_ms = o->latency_ms = o->token_ttl_s = -1;
  o->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  o->threads = 2;
  int c;
  long long v;
  while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
    int rc = 0;
    switch (c) {
    case 'l':
      o->listen = optarg;
      break;
    case O_PORTFILE:
      o->port_file = optarg;
      break;
    case O_SEEDFILE:
      o->seed_file = optarg;
      break;
    case O_CERT:
      o->tls_cert = optarg;
      break;
    case O_KEY:
      o->tls_key = optarg;
      break;
    case O_VIS:
      rc = num_arg(optarg, 0, 3600000, &v);
      o->visibility_delay_ms = v;
      break;
    case O_LAT:
      rc = num_arg(optarg, 0, 600000, &v);
      o->latency_ms = v;
      break;
    case O_SEED:
      rc = num_arg(optarg, 0, INT64_MAX, &v);
      o->seed = (uint64_t)v;
      break;
    case O_THREADS:
      rc = num_arg(optarg, 1, 64, &v);
      o->threads = (unsigned)v;
      break;
    case O_TTL:
      rc = num_arg(optarg, 1, 86400 * 365, &v);
      o->token_ttl_s = v;
      break;
    case O_SKEW:
      o->clock_skew_ok = true;
      break;
    case O_LOG:
      o->log_requests = true;
      break;
    case O_FAULTS:
      o->faults_json = optarg;
      break;
    case O_SETTINGS:
      o->settings_json = optarg;
      break;
    case O_PRIO:
      o->tls_priorities = optarg;
      break;
    case O_DP:
      o->data_plane = optarg;
      break;
    case O_DP_PORTFILE:
      o->data_plane_port_file = optarg;
      break;
    case O_HELP:
      usage(stdout);
      exit(0);
    default:
      return -EINVAL;
    }
    if (rc) {
      fprintf(stderr, "apig-sim: bad value for an option: %s\n", optarg);
      return rc;
    }
  }
  if (optind != argc || !o->seed_file || !o->tls_cert != !o->tls_key)
    return -EINVAL;
  return 0;
}

static char *read_pem(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if (!buf || n == 0) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* Written to a temporary name and renamed: a reader never sees half. */
static int write_port_file(const char *path, unsigned port)
{
  char tmp[4096];
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof(tmp))
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  char buf[16];
  int len = snprintf(buf, sizeof(buf), "%u\n", port);
  int rc = write(fd, buf, (size_t)len) == len && fsync(fd) == 0 ? 0 : -EIO;
  close(fd);
  if (!rc && rename(tmp, path) != 0)
    rc = -errno;
  if (rc)
    unlink(tmp);
  return rc;
}

static void wipe_free(char *key)
{
  if (key)
    memset(key, 0, strlen(key));
  free(key);
}

static int run(struct sim *sim, const sigset_t *set)
{
  char *cert = NULL, *key = NULL;
  if (sim->opt.tls_cert) {
    cert = read_pem(sim->opt.tls_cert);
    key = read_pem(sim->opt.tls_key);
    if (!cert || !key) {
      fprintf(stderr, "apig-sim: cannot read the TLS certificate or key\n");
      free(cert);
      free(key);
      return 1;
    }
  }
  uint16_t port = 0;
  char err[512];
  /* the data plane first: once the API's port file shows, the data
   * plane's is there too */
  int rc = sim_dataplane_start(sim, err, sizeof(err));
  if (rc) {
    fprintf(stderr, "apig-sim: data plane: %s\n", err);
    free(cert);
    wipe_free(key);
    return 1;
  }
  rc = sim_http_start(sim, cert, key, &port);
  if (rc) {
    fprintf(stderr, "apig-sim: cannot listen on %s\n", sim->opt.listen);
  } else if (sim->opt.port_file &&
             write_port_file(sim->opt.port_file, port) != 0) {
    fprintf(stderr, "apig-sim: cannot write the port file\n");
    rc = -EIO;
  } else {
    fprintf(stderr, "apig-sim: listening on port %u (%s)\n", port,
            cert ? "https" : "http");
    int sig = 0;
    sigwait(set, &sig);
    fprintf(stderr, "apig-sim: signal %d, stopping\n", sig);
  }
  sim_http_stop(sim);
  sim_dataplane_stop(sim);
  /* MHD copies nothing: the key material lives until the daemon is gone */
  free(cert);
  wipe_free(key);
  return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
  struct sim sim;
  memset(&sim, 0, sizeof(sim));
  if (parse_args(argc, argv, &sim.opt) != 0) {
    usage(stderr);
    return 64;
  }
  /* block the stop signals in every thread; main waits for them */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  char err[512];
  if (sim_world_load(&sim, err, sizeof(err)) != 0) {
    fprintf(stderr, "apig-sim: seed: %s\n", err);
    sim_world_free(&sim);
    return 1;
  }
  if (sim_apply_options(&sim, err, sizeof(err)) != 0) {
    fprintf(stderr, "apig-sim: %s\n", err);
    sim_world_free(&sim);
    return 64;
  }
  sim_rng_seed(&sim.rng, sim.opt.seed);
  pthread_mutex_init(&sim.mu, NULL);
  pthread_rwlock_init(&sim.world_rw, NULL);
  int rc = run(&sim, &set);
  sim_world_free(&sim);
  pthread_mutex_destroy(&sim.mu);
  pthread_rwlock_destroy(&sim.world_rw);
  return rc;
}
