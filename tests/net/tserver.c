/* SPDX-License-Identifier: MIT */
/* tserver: see tserver.h. Test-only code. */
#include "tserver.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

struct tserver {
  struct MHD_Daemon *d;
  char *cert, *key;
  unsigned short port;
  atomic_ulong requests;
  atomic_ulong resumed;      /* requests on a resumed TLS session */
  atomic_bool stopping;      /* ends /slow sleeps early */
  gnutls_datum_t ticket_key; /* written before the daemon starts */
};

struct treq {
  char *body;
  size_t len;
};

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = calloc(1, 65536);
  size_t n = buf ? fread(buf, 1, 65535, f) : 0;
  fclose(f);
  if (buf && n == 0) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

int tserver_replace_file(const char *from, const char *to)
{
  char tmp[PATH_MAX], buf[8192];
  FILE *in, *out;
  size_t n;
  int rc = 0;

  if (snprintf(tmp, sizeof tmp, "%s.tmp", to) >= (int)sizeof tmp)
    return -1;
  in = fopen(from, "rb");
  out = in ? fopen(tmp, "wb") : NULL;
  if (!out) {
    if (in)
      fclose(in);
    return -1;
  }
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n)
      rc = -1;
  fclose(in);
  if (fclose(out) != 0 || rc != 0 || rename(tmp, to) != 0)
    return -1;
  return 0;
}

int tserver_make_cert(const char *dir, const char *name, const char *san)
{
  char cmd[1024];
  int n = snprintf(cmd, sizeof cmd,
                   "openssl req -x509 -newkey ec -pkeyopt "
                   "ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=%s' "
                   "-addext 'subjectAltName=%s' -keyout '%s/%s.key' "
                   "-out '%s/%s.crt' >/dev/null 2>&1",
                   name, san, dir, name, dir, name);
  if (n < 0 || (size_t)n >= sizeof cmd)
    return -1;
  int st = system(cmd);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static const char *arg(struct MHD_Connection *c, const char *k)
{
  return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, k);
}

static const char *hdr(struct MHD_Connection *c, const char *k)
{
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, k);
  return v ? v : "-";
}

static enum MHD_Result finish(struct MHD_Connection *c, unsigned code,
                              struct MHD_Response *r)
{
  enum MHD_Result ret = MHD_queue_response(c, code, r);
  MHD_destroy_response(r);
  return ret;
}

/* 200 with a malloc'd body that MHD frees. */
static enum MHD_Result send_free(struct MHD_Connection *c, char *buf,
                                 size_t len)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(buf);
    return MHD_NO;
  }
  return finish(c, 200, r);
}

static enum MHD_Result route_echo(struct MHD_Connection *c, const char *method,
                                  struct treq *q)
{
  const char *i = arg(c, "i");
  char head[512];
  int n =
      snprintf(head, sizeof head, "m=%s ct=%s expect=%s x=%s i=%s len=%zu\n",
               method, hdr(c, "Content-Type"), hdr(c, "Expect"),
               hdr(c, "X-Test"), i ? i : "-", q->len);
  if (n < 0 || (size_t)n >= sizeof head)
    return MHD_NO;
  char *buf = malloc((size_t)n + q->len + 1);
  if (!buf)
    return MHD_NO;
  memcpy(buf, head, (size_t)n);
  if (q->len)
    memcpy(buf + n, q->body, q->len);
  return send_free(c, buf, (size_t)n + q->len);
}

static enum MHD_Result route_big(struct MHD_Connection *c)
{
  const char *a = arg(c, "n");
  size_t n = a ? strtoul(a, NULL, 10) : 0;
  char *buf = malloc(n ? n : 1);
  if (!buf)
    return MHD_NO;
  for (size_t k = 0; k < n; k++)
    buf[k] = (char)('a' + k % 26);
  return send_free(c, buf, n);
}

static enum MHD_Result route_static(struct MHD_Connection *c, unsigned code,
                                    const char *text, const char *h1,
                                    const char *v1)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  if (h1)
    MHD_add_response_header(r, h1, v1);
  return finish(c, code, r);
}

static enum MHD_Result route_hdr(struct MHD_Connection *c, bool date)
{
  struct MHD_Response *r =
      MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
  if (!r)
    return MHD_NO;
  if (date) {
    char buf[64];
    time_t t = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    MHD_add_response_header(r, "Retry-After", buf);
  } else {
    MHD_add_response_header(r, "X-Request-Id", "abc-123");
    MHD_add_response_header(r, "Retry-After", "7");
    MHD_add_response_header(r, "X-Subject-Token", "tok-secret-value");
  }
  return finish(c, 201, r);
}

static enum MHD_Result route_reset(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (ci) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    shutdown(ci->connect_fd, SHUT_RDWR);
  }
  return MHD_NO; /* MHD closes the socket: RST because of linger 0 */
}

/* Sleep in small steps so that stopping the server never waits long. */
static void slow_sleep(struct tserver *s, int ms)
{
  for (int t = 0; t < ms && !atomic_load(&s->stopping); t += 20)
    usleep(20 * 1000);
}

static enum MHD_Result route(struct tserver *s, struct MHD_Connection *c,
                             const char *url, const char *method,
                             struct treq *q)
{
  if (strcmp(url, "/echo") == 0)
    return route_echo(c, method, q);
  if (strcmp(url, "/big") == 0)
    return route_big(c);
  if (strcmp(url, "/slow") == 0) {
    const char *ms = arg(c, "ms");
    slow_sleep(s, ms ? atoi(ms) : 100);
    return route_static(c, 200, "slow", NULL, NULL);
  }
  if (strcmp(url, "/hdr") == 0)
    return route_hdr(c, false);
  if (strcmp(url, "/hdrdate") == 0)
    return route_hdr(c, true);
  if (strcmp(url, "/status") == 0) {
    const char *code = arg(c, "code");
    return route_static(c, code ? (unsigned)atoi(code) : 500,
                        "{\"error_code\":\"APIG.9999\",\"error_msg\":"
                        "\"System error\"}",
                        "Content-Type", "application/json");
  }
  if (strcmp(url, "/reset") == 0)
    return route_reset(c);
  return route_static(c, 404, "not found", NULL, NULL);
}

static bool session_resumed(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);

  return ci && ci->tls_session && gnutls_session_is_resumed(ci->tls_session);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct tserver *s = cls;
  struct treq *q = *con_cls;

  (void)version;
  if (!q) {
    q = calloc(1, sizeof *q);
    if (!q)
      return MHD_NO;
    *con_cls = q;
    atomic_fetch_add(&s->requests, 1);
    if (session_resumed(c))
      atomic_fetch_add(&s->resumed, 1);
    return MHD_YES;
  }
  if (*upload_size) {
    char *b = realloc(q->body, q->len + *upload_size);
    if (!b)
      return MHD_NO;
    memcpy(b + q->len, upload, *upload_size);
    q->body = b;
    q->len += *upload_size;
    *upload_size = 0;
    return MHD_YES;
  }
  return route(s, c, url, method, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct treq *q = *con_cls;

  (void)cls;
  (void)c;
  (void)toe;
  if (q) {
    free(q->body);
    free(q);
    *con_cls = NULL;
  }
}

/* TLS 1.3 session tickets, as public HTTPS endpoints issue them (MHD
 * leaves them off): the session is made, its handshake not yet run. */
static void on_connection(void *cls, struct MHD_Connection *c, void **sock_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
  struct tserver *s = cls;
  const union MHD_ConnectionInfo *ci;

  (void)sock_ctx;
  if (code != MHD_CONNECTION_NOTIFY_STARTED)
    return;
  ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (ci && ci->tls_session)
    gnutls_session_ticket_enable_server(ci->tls_session, &s->ticket_key);
}

int tserver_start(struct tserver **out, const char *cert_file,
                  const char *key_file)
{
  struct tserver *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  s->cert = slurp(cert_file);
  s->key = slurp(key_file);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s->cert && s->key &&
      gnutls_session_ticket_key_generate(&s->ticket_key) == 0)
    s->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            &sa, MHD_OPTION_HTTPS_MEM_CERT, s->cert,
                            MHD_OPTION_HTTPS_MEM_KEY, s->key,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
  if (!s->d) {
    gnutls_free(s->ticket_key.data);
    free(s->cert);
    free(s->key);
    free(s);
    return -1;
  }
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : 0;
  *out = s;
  return 0;
}

unsigned short tserver_port(const struct tserver *s)
{
  return s->port;
}

unsigned long tserver_requests(const struct tserver *s)
{
  return atomic_load(&((struct tserver *)s)->requests);
}

unsigned long tserver_resumed(const struct tserver *s)
{
  return atomic_load(&((struct tserver *)s)->resumed);
}

void tserver_stop(struct tserver *s)
{
  if (!s)
    return;
  atomic_store(&s->stopping, true);
  MHD_stop_daemon(s->d);
  gnutls_free(s->ticket_key.data);
  free(s->cert);
  free(s->key);
  free(s);
}
