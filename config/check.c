/* SPDX-License-Identifier: MIT */
/*
 * Allow-list checks for every value that ends up in a URL, a request body
 * or a log line, and strict number parsing. Reject, never escape.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

static bool is_lower(char ch)
{
  return ch >= 'a' && ch <= 'z';
}

static bool is_alnum(char ch)
{
  return is_digit(ch) || is_lower(ch) || (ch >= 'A' && ch <= 'Z');
}

static bool is_hex(char ch)
{
  return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static char to_lower(char ch)
{
  return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

const char *config__check_id32(const char *s, size_t len)
{
  if (len != 32)
    return "must be exactly 32 letters and digits";
  for (size_t i = 0; i < len; i++)
    if (!is_alnum(s[i]))
      return "must be exactly 32 letters and digits";
  return NULL;
}

const char *config__check_instance_id(const char *s, size_t len)
{
  static const char why[] =
      "must be 32 hex digits or a UUID (8-4-4-4-12 hex digits)";

  if (len == 32) {
    for (size_t i = 0; i < len; i++)
      if (!is_hex(s[i]))
        return why;
    return NULL;
  }
  if (len != 36)
    return why;
  for (size_t i = 0; i < len; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i]))
      return why;
  }
  return NULL;
}

void config__instance_key(const char *s, char key[33])
{
  size_t n = 0;

  for (; *s != '\0' && n < 32; s++)
    if (*s != '-')
      key[n++] = to_lower(*s);
  key[n] = '\0';
}

const char *config__check_region(const char *s, size_t len)
{
  if (len == 0 || len > 63)
    return "must be 1 to 63 characters of a-z, 0-9 and '-'";
  for (size_t i = 0; i < len; i++)
    if (!is_digit(s[i]) && !is_lower(s[i]) && s[i] != '-')
      return "must be 1 to 63 characters of a-z, 0-9 and '-'";
  return NULL;
}

const char *config__check_name(const char *s, size_t len)
{
  static const char why[] = "names must be 1 to 64 characters of A-Z, a-z, "
                            "0-9, '-', '_' and '.'";

  if (len == 0 || len > CONFIG__MAX_NAME)
    return why;
  for (size_t i = 0; i < len; i++)
    if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
      return why;
  return NULL;
}

const char *config__check_env_name(const char *s, size_t len)
{
  if (len == 0 || is_digit(s[0]))
    return "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)";
  for (size_t i = 0; i < len; i++)
    if (!is_alnum(s[i]) && s[i] != '_')
      return "must be a variable name ([A-Za-z_][A-Za-z0-9_]*)";
  return NULL;
}

const char *config__check_credential_name(const char *s, size_t len)
{
  if (len == 0 || (len == 1 && s[0] == '.') ||
      (len == 2 && s[0] == '.' && s[1] == '.'))
    return "must be a file name in $CREDENTIALS_DIRECTORY (not empty, . or "
           "..)";
  if (len > 255)
    return "is longer than 255 characters (a file name)";
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '/')
      return "must be a plain file name in $CREDENTIALS_DIRECTORY (no '/')";
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
      return "contains control characters";
  }
  return NULL;
}

/* One LDH label, already lowercased: 1-63 of [a-z0-9-], no edge '-'. */
static const char *check_label(const char *s, size_t len)
{
  if (len == 0)
    return "has an empty label";
  if (len > 63)
    return "has a label longer than 63 characters";
  if (s[0] == '-' || s[len - 1] == '-')
    return "has a label that starts or ends with '-'";
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] >= 0x80)
      return "is not ASCII (write IDNs as A-labels, xn--...)";
    if (!is_digit(s[i]) && !is_lower(s[i]) && s[i] != '-')
      return "has a character other than a-z, 0-9, '-' and '.'";
  }
  return NULL;
}

/* One label of a domain's A-label form, already lowercased: LDH, and an
 * xn-- label must be punycode that decodes to a valid U-label and encodes
 * back to itself (libidn2's lookup does that round trip), or "xn--a" would
 * reach APIG as a name no browser can ask for. */
static const char *check_alabel(struct config__domain *d, const char *s,
                                size_t len)
{
  char label[CONFIG__DOMAIN_MAX + 1];
  uint8_t *back = NULL;
  const char *why = check_label(s, len);
  int rc;

  if (why != NULL || len < 4 || strncmp(s, "xn--", 4) != 0)
    return why;
  memcpy(label, s, len);
  label[len] = '\0';
  rc = idn2_lookup_u8((const uint8_t *)label, &back, IDN2_NONTRANSITIONAL);
  if (rc == IDN2_OK && strcmp((const char *)back, label) != 0)
    rc = IDN2_ALABEL_ROUNDTRIP_FAILED;
  idn2_free(back);
  if (rc == IDN2_OK)
    return NULL;
  snprintf(d->why, sizeof(d->why), "has an invalid A-label \"%s\": %s", label,
           idn2_strerror(rc));
  return d->why;
}

static bool is_ascii(const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)s[i] >= 0x80)
      return false;
  return true;
}

/* Append one label of the input to d->name (at *n): ASCII lowercased, a
 * label with non-ASCII bytes converted to its A-label by libidn2 (UTS #46
 * non-transitional mapping: case folded, "ß" kept as ß). */
static const char *append_label(struct config__domain *d, size_t *n,
                                const char *s, size_t len)
{
  char label[CONFIG__DOMAIN_INPUT_MAX + 1];
  char *ascii = NULL;
  size_t alen;
  int rc;

  if (is_ascii(s, len)) {
    if (*n + len > CONFIG__DOMAIN_MAX)
      return "is longer than 253 characters";
    for (size_t i = 0; i < len; i++)
      d->name[(*n)++] = to_lower(s[i]);
    return NULL;
  }
  memcpy(label, s, len);
  label[len] = '\0';
  rc = idn2_to_ascii_8z(label, &ascii, IDN2_NONTRANSITIONAL);
  if (rc != IDN2_OK) {
    snprintf(d->why, sizeof(d->why),
             "has a label \"%.64s\" that is not a valid internationalised "
             "name: %s",
             label, idn2_strerror(rc));
    return d->why;
  }
  alen = strlen(ascii);
  if (*n + alen > CONFIG__DOMAIN_MAX) {
    idn2_free(ascii);
    return "is longer than 253 characters (as A-labels)";
  }
  memcpy(d->name + *n, ascii, alen);
  *n += alen;
  idn2_free(ascii);
  return NULL;
}

/* Build d->name from the input: the wildcard kept, one trailing dot
 * dropped, every label appended in its A-label form. */
static const char *normalise_domain(struct config__domain *d, const char *s,
                                    size_t len)
{
  size_t i, start = 0, n = 0;
  bool first = true;
  const char *why;

  if (len > 0 && s[len - 1] == '.')
    len--; /* the absolute form, api.example.com., is the same name */
  if (len >= 2 && s[0] == '*' && s[1] == '.') {
    memcpy(d->name, "*.", 2);
    n = start = 2;
  }
  for (i = start; i <= len; i++) {
    if (i < len && s[i] != '.')
      continue;
    if (i == start)
      return "has an empty label";
    if (!first) {
      if (n >= CONFIG__DOMAIN_MAX)
        return "is longer than 253 characters";
      d->name[n++] = '.';
    }
    first = false;
    why = append_label(d, &n, s + start, i - start);
    if (why != NULL)
      return why;
    start = i + 1;
  }
  d->name[n] = '\0';
  return NULL;
}

const char *config__check_domain(const char *s, size_t len,
                                 struct config__domain *d)
{
  size_t i, start = 0, labels = 0, n;
  const char *why;

  d->name[0] = '\0';
  d->why[0] = '\0';
  if (len == 0)
    return "is empty";
  if (len > CONFIG__DOMAIN_INPUT_MAX)
    return "is longer than 253 characters";
  if (memchr(s, '\0', len) != NULL)
    return "contains a NUL byte";
  why = normalise_domain(d, s, len);
  if (why != NULL)
    return why;
  n = strlen(d->name);
  if (n > 2 && d->name[0] == '*' && d->name[1] == '.')
    start = 2;
  for (i = start; i <= n; i++) {
    if (i < n && d->name[i] != '.')
      continue;
    why = check_alabel(d, d->name + start, i - start);
    if (why != NULL)
      return why;
    labels++;
    start = i + 1;
  }
  if (labels < 2)
    return "needs at least two labels (like example.com)";
  return NULL;
}

/* host: a bracketed IPv6 literal, an IPv4 address or a DNS name. */
static const char *check_host(char *h, size_t len)
{
  char tmp[64];
  struct in6_addr a6;

  if (len == 0)
    return "has no host";
  if (h[0] == '[') {
    if (len < 3 || h[len - 1] != ']' || len - 2 >= sizeof(tmp))
      return "has a malformed IPv6 address";
    memcpy(tmp, h + 1, len - 2);
    tmp[len - 2] = '\0';
    return inet_pton(AF_INET6, tmp, &a6) == 1 ? NULL
                                              : "has a malformed IPv6 address";
  }
  if (len > 253)
    return "has a host name longer than 253 characters";
  for (size_t i = 0; i < len; i++)
    h[i] = to_lower(h[i]);
  for (size_t i = 0, start = 0; i <= len; i++) {
    if (i < len && h[i] != '.')
      continue;
    if (check_label(h + start, i - start) != NULL)
      return "has an invalid host name";
    start = i + 1;
  }
  return NULL;
}

const char *config__check_endpoint(const char *s, size_t len, char **out)
{
  static const char scheme[] = "https://";
  const size_t sl = sizeof(scheme) - 1;
  size_t i, hend, end = len;
  char *u;
  const char *why;

  *out = NULL;
  if (len < sl || strncmp(s, scheme, sl) != 0)
    return "must start with https://";
  if (memchr(s, '\0', len) != NULL)
    return "contains a NUL byte";
  for (i = sl; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch <= 0x20 || ch >= 0x7f)
      return "contains a space, control or non-ASCII character";
    if (ch == '@')
      return "must not contain user information (user@)";
    if (ch == '?' || ch == '#')
      return "must not contain a query or fragment";
  }
  /* One trailing '/' is the empty path: tolerate it, drop it. */
  if (end > sl && s[end - 1] == '/')
    end--;
  if (memchr(s + sl, '/', end - sl) != NULL)
    return "must not contain a path (only https://host[:port])";
  u = strndup(s, end);
  if (u == NULL)
    return "out of memory";
  /* the port, if any, follows the last ':' outside brackets */
  hend = end;
  for (i = end; i > sl; i--) {
    if (u[i - 1] == ']')
      break;
    if (u[i - 1] == ':') {
      hend = i - 1;
      break;
    }
  }
  if (hend != end) {
    long long port;
    if (config__parse_int(u + hend + 1, end - hend - 1, &port) < 0 ||
        port < 1 || port > 65535) {
      free(u);
      return "has an invalid port (1-65535)";
    }
  }
  why = check_host(u + sl, hend - sl);
  if (why != NULL) {
    free(u);
    return why;
  }
  *out = u;
  return NULL;
}

/* "[ADDR]:PORT" or "ADDR:PORT" -> the address (in host) and the port's
 * text (*port, *plen). */
static const char *split_host_port(const char *s, size_t len, char *host,
                                   size_t hsize, bool *v6, const char **port,
                                   size_t *plen)
{
  const char *h = s, *colon;
  size_t hlen;

  *v6 = len > 0 && s[0] == '[';
  if (*v6) {
    const char *close = memchr(s, ']', len);
    if (close == NULL)
      return "has a '[' without its ']'";
    if (close + 1 == s + len || close[1] != ':')
      return "needs a port: [IPv6]:PORT";
    h = s + 1;
    hlen = (size_t)(close - h);
    colon = close + 1;
  } else {
    colon = memrchr(s, ':', len);
    if (colon == NULL)
      return "needs a port: IPv4:PORT or [IPv6]:PORT";
    hlen = (size_t)(colon - s);
    if (memchr(s, ':', hlen) != NULL)
      return "is an IPv6 address without brackets: write [IPv6]:PORT";
  }
  if (hlen == 0 || hlen >= hsize)
    return "is not IPv4:PORT or [IPv6]:PORT";
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  *port = colon + 1;
  *plen = (size_t)(s + len - *port);
  return NULL;
}

const char *config__check_ingress(const char *s, size_t len,
                                  struct config_ingress *out)
{
  char host[INET6_ADDRSTRLEN + 1], shown[INET6_ADDRSTRLEN];
  const char *port, *why;
  size_t plen;
  long long p;
  bool v6;

  memset(out, 0, sizeof(*out));
  if (memchr(s, '\0', len) != NULL)
    return "contains a NUL byte";
  why = split_host_port(s, len, host, sizeof(host), &v6, &port, &plen);
  if (why != NULL)
    return why;
  if (config__parse_int(port, plen, &p) < 0 || p < 1 || p > 65535)
    return "has a port that is not 1-65535";
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->addr;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
      return "is not an IPv6 address in brackets (no host names, no zone)";
    if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
      return "is the unspecified address [::], not one to connect to";
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)p);
    out->addrlen = sizeof(*a);
    inet_ntop(AF_INET6, &a->sin6_addr, shown, sizeof(shown));
    snprintf(out->text, sizeof(out->text), "[%s]:%lld", shown, p);
    return NULL;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)&out->addr;
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
    return "is not an IP address (IPv4 A.B.C.D:PORT or [IPv6]:PORT; no host "
           "names)";
  if (a->sin_addr.s_addr == htonl(INADDR_ANY))
    return "is the unspecified address 0.0.0.0, not one to connect to";
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)p);
  out->addrlen = sizeof(*a);
  inet_ntop(AF_INET, &a->sin_addr, shown, sizeof(shown));
  snprintf(out->text, sizeof(out->text), "%s:%lld", shown, p);
  return NULL;
}

int config__parse_int(const char *s, size_t len, long long *out)
{
  size_t i = 0;
  long long v = 0;
  bool neg = false;

  if (len > 0 && s[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == len)
    return -EINVAL;
  if (s[i] == '0' && len - i > 1)
    return -EINVAL; /* YAML 1.1 reads 010 as octal: refuse the ambiguity */
  for (; i < len; i++) {
    if (!is_digit(s[i]))
      return -EINVAL;
    int d = s[i] - '0';
    if (v > (__LONG_LONG_MAX__ - d) / 10)
      return -ERANGE;
    v = v * 10 + d;
  }
  *out = neg ? -v : v;
  return 0;
}

int config__parse_double(const char *s, size_t len, double *out)
{
  char buf[64];
  char *end;
  double v;

  if (len == 0 || len >= sizeof(buf))
    return -EINVAL;
  /* allow-list first: strtod would also take "inf", "nan" and "0x1p3" */
  for (size_t i = 0; i < len; i++)
    if (!is_digit(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '+' &&
        s[i] != 'e' && s[i] != 'E')
      return -EINVAL;
  if (!is_digit(s[0]) && !(s[0] == '-' && len > 1 && is_digit(s[1])) &&
      s[0] != '.')
    return -EINVAL;
  memcpy(buf, s, len);
  buf[len] = '\0';
  errno = 0;
  v = strtod(buf, &end);
  if (end != buf + len)
    return -EINVAL;
  if (errno == ERANGE || !isfinite(v))
    return -ERANGE;
  *out = v;
  return 0;
}

bool config__is_null(const struct config__node *n)
{
  if (n->type != CONFIG__SCALAR || !n->plain)
    return false;
  return n->len == 0 || strcmp(n->str, "~") == 0 ||
         strcmp(n->str, "null") == 0 || strcmp(n->str, "Null") == 0 ||
         strcmp(n->str, "NULL") == 0;
}
