/* SPDX-License-Identifier: MIT */
/*
 * tserver: a small HTTPS test server (libmicrohttpd, thread per connection)
 * on 127.0.0.1 with a certificate made at test time by `openssl req`.
 *
 * Routes:
 *   /echo?i=N      200 "m=METHOD ct=CT expect=E x=XTEST i=N len=L\n" + body
 *   /big?n=N       200 with N bytes of 'a'..'z'
 *   /slow?ms=M     sleeps M ms, then 200 "slow"
 *   /hdr           200 with X-Request-Id, Retry-After: 7, X-Subject-Token
 *   /hdrdate       200 with Retry-After as an HTTP-date 30 s ahead
 *   /status?code=C C with an APIG error envelope
 *   /reset         reads the request, then resets the TCP connection
 */
#ifndef TSERVER_H
#define TSERVER_H

struct tserver;

/* Self-signed cert (EC P-256), subject CN=NAME (distinct subjects: OpenSSL
 * looks issuers up by name), with the given subjectAltName, written to
 * DIR/NAME.crt and DIR/NAME.key. 0 or -1. */
int tserver_make_cert(const char *dir, const char *name, const char *san);

/* Replace TO with a copy of FROM through TO.tmp and a rename: a new inode,
 * as an editor's save or a package upgrade makes. 0 or -1. */
int tserver_replace_file(const char *from, const char *to);

int tserver_start(struct tserver **out, const char *cert_file,
                  const char *key_file);
unsigned short tserver_port(const struct tserver *s);
unsigned long tserver_requests(const struct tserver *s);
/* Of those, the requests that came on a resumed TLS session. */
unsigned long tserver_resumed(const struct tserver *s);
void tserver_stop(struct tserver *s);

#endif
