/* SPDX-License-Identifier: MIT */
/*
 * world: a tiny in-memory APIG for the engine's unit tests: certificates,
 * the (domain, instance) bindings of each, and the answers APIG gives to
 * certbind's three calls (docs/apig-api.md §3, §4):
 *  - GET .../attached-domains: 200 {"total","size","bound_domains":[...]},
 *    paged by offset and limit;
 *  - POST .../domains/attach: 204, the bindings added (client verification
 *    updated; a domain bound to another certificate on that instance moves);
 *  - POST .../domains/detach: 204, removed; 400 APIG.2000 when none of the
 *    body's bindings was bound;
 *  - GET .../certificates/{id} (Show): 200 {"id","name","san","not_after"}
 *    for a certificate given names by world_cert_show, else (below) an
 *    object made by the calls, else 404;
 *  - the certificate-object calls (docs/apig-api.md §1.6): create, show,
 *    list (filters name: part of the name, common_name: exact), update,
 *    delete (400 APIG.3400 while bound); the fields of an object are read
 *    from the PEM it was given (OpenSSL), the PEM is never returned.
 * A request without the account's token gets 401 APIG.1002.
 *
 * world_script() is a fake_script_fn answering every call that way; a test
 * wraps it to inject faults (world_apply() then applies a write without
 * answering, for "applied, but the answer was lost").
 */
#ifndef CERTBIND_TEST_WORLD_H
#define CERTBIND_TEST_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_http.h"

struct world_binding {
  char *domain;
  char *instance;
  bool verify;
};

struct world_cert {
  char *id;
  struct world_binding *b;
  size_t n, cap;
  /* What its Show answers (world_cert_show); shown false: 404 APIG.3025,
   * as for a certificate of another project. */
  bool shown;
  char **san;
  size_t nsan;
  int64_t not_after; /* Unix s */
};

/* A certificate object (its bindings are the world_cert of the same id). */
struct world_object {
  char *id, *name, *common_name, *serial, *not_after;
  char **san;
  size_t nsan;
};

struct world {
  struct world_cert *certs;
  size_t ncerts;
  struct world_object *objs;
  size_t nobjs;
  size_t objs_made;      /* ids given so far */
  size_t cert_quota;     /* objects at most (create: 400 APIG.3199); 0: none */
  unsigned lose_creates; /* the next N creates are applied, answered 500 */
  bool refuse_deletes;   /* every delete: 400 APIG.3400, as if bound */
  /* Attaches naming this domain are refused with 400 APIG.2103 (the
   * certificate does not cover it), and apply nothing. NULL: none. */
  const char *refuse_domain;
  uint64_t read_latency_ms;  /* clock ms; 0: 1 */
  uint64_t write_latency_ms; /* clock ms; 0: 1 */
  size_t writes_applied;     /* attaches and detaches that changed it */
  /* Shows are answered 500 APIG.9999 (a transient failure). */
  bool show_fails;
};

void world_init(struct world *w);
void world_free(struct world *w);

/* Add a binding to certificate cert_id (created when new). */
int world_bind(struct world *w, const char *cert_id, const char *domain,
               const char *instance, bool verify);

/* Give certificate cert_id (created when new) what its Show answers:
 * its SANs (nsan of them, replacing any) and not_after (Unix s). 0 or
 * -ENOMEM. */
int world_cert_show(struct world *w, const char *cert_id,
                    const char *const *san, size_t nsan, int64_t not_after);

/* Whether the certificate has the binding (any client verification). */
bool world_has(const struct world *w, const char *cert_id, const char *domain,
               const char *instance);
size_t world_count(const struct world *w, const char *cert_id);

/* Apply a write call to the world and fill answer with what APIG says
 * (204, 400 APIG.2000/APIG.2103, 404 for an unknown certificate). */
void world_apply(struct world *w, const struct fake_call *c,
                 struct fake_answer *answer);

/* Add an object holding the first certificate of pem (a NUL-terminated
 * PEM text); id NULL: a new one. Returns the object, or NULL. */
const struct world_object *world_add_object(struct world *w, const char *id,
                                            const char *name, const char *pem);
/* The object of that id, or NULL. */
const struct world_object *world_find_object(const struct world *w,
                                             const char *id);

/* fake_script_fn: arg is the struct world. */
void world_script(void *arg, struct fake_call *c, struct fake_answer *answer);

#endif
