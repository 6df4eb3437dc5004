/* SPDX-License-Identifier: MIT */
/*
 * pass_token: IAM tokens of password accounts. A password account's
 * requests wait (parked) for its token; one near its end is renewed in
 * the background while it still serves; a token error renews it once per
 * job; the daemon's tokens outlive passes (auth.h's token cache).
 */
#include "pass_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The daemon's token of each password account, when an earlier pass got
 * one for the same credentials and it is not due for renewal: the pass
 * starts with it instead of asking IAM again. */
void token_take_cached(struct pass *p)
{
  for (size_t a = 0; p->opts.tokens && a < p->cfg->naccounts; a++) {
    const struct config_account *acct = &p->cfg->accounts[a];
    struct log_fields f = LOG_FIELDS_INIT;

    if (acct->auth_method != CONFIG_AUTH_PASSWORD ||
        auth_token_cache_get(p->opts.tokens, acct, pass_unix_s(p),
                             &p->accounts[a].token) < 0)
      continue;
    p->accounts[a].token_gen++;
    f.account = acct->name;
    f.op = "token";
    log_event(p->log, LOG_DEBUG, "token.reused", &f,
              "IAM token of an earlier pass reused");
  }
}

/* Password accounts wait for their token; a token near its end is
 * renewed in the background while it still serves. */
bool token_needed(struct pass *p, uint32_t a)
{
  struct pass_account *pa = &p->accounts[a];

  if (p->cfg->accounts[a].auth_method != CONFIG_AUTH_PASSWORD)
    return false;
  /* An expired token (with a second of margin for the way there) would
   * only earn a 401: drop it, so that requests wait for the new one. */
  if (pa->token.value && pass_unix_s(p) + 1 >= pa->token.expires_at)
    auth_token_clear(&pa->token);
  if (!pa->token.value)
    return true;
  if (!pa->token_fetching &&
      auth_token_needs_renewal(&pa->token, pass_unix_s(p)))
    token_fetch(p, a);
  return false;
}

void token_fetch(struct pass *p, uint32_t a)
{
  const struct config_account *acct = &p->cfg->accounts[a];
  struct pass_account *pa = &p->accounts[a];
  struct call *c = calloc(1, sizeof(*c));
  struct apig_error why;
  char *url = NULL;
  int rc = c ? 0 : -ENOMEM;

  if (rc == 0)
    rc = auth_iam_url(acct, &url);
  if (rc == 0)
    rc = apig_url_token(acct->iam_endpoint, &c->url);
  free(url);
  if (rc == 0)
    rc = auth_iam_request_body(acct, &c->body, &c->body_len);
  if (rc == 0) {
    c->p = p;
    c->op = APIG_OP_TOKEN;
    c->account = a;
    rc = call_submit(p, c, acct, "POST", false);
  }
  if (rc == 0) {
    pa->token_fetching = true;
    return;
  }
  if (c)
    call_free(c);
  why = pass_error("internal", strerror(-rc));
  account_block(p, a, &why);
}

void token_done(struct pass *p, struct call *c, struct http_response *rs,
                const struct outcome *o)
{
  struct pass_account *pa = &p->accounts[c->account];
  struct log_fields f = LOG_FIELDS_INIT;
  struct apig_error why;
  time_t expires = 0;

  pa->token_fetching = false;
  f.account = p->cfg->accounts[c->account].name;
  f.op = "token";
  f.http_status = o->status;
  f.latency_ms = rs->latency_ms;
  if (o->cls == APIG_OK && rs->subject_token &&
      auth_iam_parse_expiry(rs->body, rs->body_len, &expires) == 0 &&
      auth_token_set(&pa->token, rs->subject_token, strlen(rs->subject_token),
                     expires, pass_unix_s(p)) == 0) {
    pa->token_attempt = 0;
    pa->token_gen++;
    log_event(p->log, LOG_INFO, "token.ok", &f, "IAM token obtained");
    /* kept for the daemon's next passes (a failure only costs a fetch) */
    if (p->opts.tokens)
      (void)auth_token_cache_put(p->opts.tokens, &p->cfg->accounts[c->account],
                                 &pa->token);
    for (size_t k = 0; k < pa->nparked; k++) {
      if (job_push(p, pa->parked[k], 0) < 0) {
        struct apig_error err = pass_error("internal", "queue refused");
        job_abandon(p, pa->parked[k], &err);
      }
    }
    pa->nparked = 0;
    return;
  }
  f.error_code = o->err.code[0] ? o->err.code : NULL;
  f.error_msg = o->err.msg[0] ? o->err.msg : NULL;
  f.request_id = o->err.request_id[0] ? o->err.request_id : NULL;
  if (pa->token.value &&
      !auth_token_needs_renewal(&pa->token, pass_unix_s(p)) &&
      pa->token.expires_at > pass_unix_s(p)) {
    /* a background renewal failed; the current token still serves */
    log_event(p->log, LOG_WARN, "token.retry", &f,
              "IAM token renewal failed; the current token is still valid");
    return;
  }
  if ((o->cls == APIG_RETRY || o->cls == APIG_THROTTLED) &&
      ++pa->token_attempt < p->cfg->retry.max_attempts) {
    pa->token_next_ms =
        pass_now_ms(p) + queue_backoff_ms(&p->queue, pa->token_attempt,
                                          p->cfg->retry.base_delay_ms,
                                          p->cfg->retry.max_delay_ms,
                                          o->retry_after_ms);
    log_event(p->log, LOG_WARN, "token.retry", &f, "IAM token request failed");
    return;
  }
  log_event(p->log, LOG_ERROR, "token.failed", &f,
            "could not obtain an IAM token");
  why = o->err;
  if (!why.code[0])
    snprintf(why.code, sizeof(why.code), "token");
  if (!why.msg[0])
    snprintf(why.msg, sizeof(why.msg), "could not obtain an IAM token");
  account_block(p, c->account, &why);
}

void token_park(struct pass *p, struct job *j)
{
  struct pass_account *pa = &p->accounts[j->q.account];

  if (pa->nparked == pa->capparked) {
    size_t cap = pa->capparked ? pa->capparked * 2 : 16;
    struct job **n = realloc(pa->parked, cap * sizeof(*n));
    if (!n) {
      struct apig_error why = pass_error("internal", "out of memory");
      job_abandon(p, j, &why);
      return;
    }
    pa->parked = n;
    pa->capparked = cap;
  }
  pa->parked[pa->nparked++] = j;
}

/* Token errors: renew once (password), then it is an auth failure. */
bool token_reauth(struct pass *p, struct job *j)
{
  const struct config_account *acct = &p->cfg->accounts[j->q.account];
  struct pass_account *pa = &p->accounts[j->q.account];

  if (acct->auth_method != CONFIG_AUTH_PASSWORD || j->reauthed)
    return false;
  j->reauthed = true;
  if (pa->token.value && j->token_gen != pa->token_gen) {
    /* sent with an older token (a straggler of the last renewal): the
     * current one is newer, so use it rather than renewing again */
    if (job_push(p, j, 0) < 0) {
      struct apig_error why = pass_error("internal", "queue refused a job");
      job_abandon(p, j, &why);
    }
    return true;
  }
  if (!pa->token_fetching)
    auth_token_clear(&pa->token);
  if (p->opts.tokens) /* revoked or expired: not for the next pass either */
    auth_token_cache_drop(p->opts.tokens, acct);
  token_park(p, j);
  return true;
}
