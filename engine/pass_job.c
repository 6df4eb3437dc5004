/* SPDX-License-Identifier: MIT */
/*
 * pass_job: a job's life. A job is one read of a certificate's list (its
 * first read, a confirmation read after its writes, or a re-read after a
 * write of unknown outcome; a read of many pages has a child job per page
 * after the first) or one write batch. job_new makes it, job_push queues
 * it (queue.h), and job_end is the one way it leaves the pass once it has
 * entered it: the accounting of its kind, then free.
 */
#include "pass_int.h"

#include <errno.h>
#include <stdlib.h>

static struct job *job_make(struct pass *p, enum job_type type, uint32_t cert,
                            uint32_t account)
{
  struct job *j = calloc(1, sizeof(*j));

  if (!j)
    return NULL;
  j->pass = p;
  j->type = type;
  j->cert = cert;
  j->total0 = -1;
  j->pages_left = type == JOB_LIST; /* a read's own reading */
  j->q.kind = type == JOB_WRITE ? QUEUE_WRITE : QUEUE_READ;
  j->q.account = account;
  j->q.cert = cert;
  j->q.data = j;
  if (p->feeding) {
    j->fed = true;
    p->accounts[j->q.account].fed_out++;
  }
  return j;
}

struct job *job_new(struct pass *p, enum job_type type, uint32_t cert)
{
  return job_make(p, type, cert, pass_cert_account_index(p, cert));
}

struct job *job_new_account(struct pass *p, enum job_type type, uint32_t a)
{
  return job_make(p, type, PASS_NO_CERT, a);
}

/* Free a job no counter knows of: it never entered the pass (job_push
 * failed or was not called), or job_end() has done its accounting. */
void job_free(struct job *j)
{
  if (!j)
    return;
  if (j->fed)
    j->pass->accounts[j->q.account].fed_out--;
  j->pass->live_entries -= j->charged;
  apig_bindings_free(&j->acc);
  free(j->items);
  free(j->page_err);
  free(j);
}

void job_set_page_err(struct job *head, const struct apig_error *why)
{
  if (!head->page_err)
    head->page_err = malloc(sizeof(*head->page_err));
  if (head->page_err)
    *head->page_err = *why;
}

struct apig_error job_page_err(const struct job *head)
{
  return head->page_err ? *head->page_err
                        : pass_error("out-of-memory", "out of memory");
}

int job_push(struct pass *p, struct job *j, uint64_t delay_ms)
{
  if (p->stopping)
    return -ECANCELED;
  j->q.not_before_ms = pass_now_ms(p) + delay_ms;
  return queue_push(&p->queue, &j->q);
}

/* A write leaves: its certificate's last write schedules the confirmation
 * read of what its writes sent (also when that last one failed). */
static void write_end(struct pass *p, struct job *j, enum job_end how,
                      const struct apig_error *why)
{
  struct pass_cert *c = &p->certs[j->cert];
  bool sent = how == JOB_DONE;

  for (size_t k = 0; how == JOB_FAILED && k < j->nitems; k++)
    item_fail(p, j->items[k], why);
  if (--c->writes_left > 0 || how == JOB_DROPPED)
    return;
  for (size_t i = c->item_lo; !sent && i < c->item_hi; i++)
    sent = p->items[i].state == ITEM_WRITTEN;
  if (sent)
    write_schedule_confirm(p, j->cert);
}

/*
 * The one way a job that entered the pass leaves it: its kind's
 * accounting, then free. A read's page with other pages of the same read
 * still out ends as one piece of that read (read_piece_end); the read
 * ends with its last piece.
 *  DONE     the caller used its result (a read's live state, a write's
 *           204) before;
 *  FAILED   for good (why): a write's bindings fail, a first read's
 *           certificate fails, a confirmation read's written bindings
 *           fail, a re-read after an unknown outcome fails its write;
 *  DROPPED  stopping, or its account unreachable: what is known of its
 *           bindings does not change (writes not sent stay pending).
 */
void job_end(struct pass *p, struct job *j, enum job_end how,
             const struct apig_error *why)
{
  /* NULL for a job of an account (PASS_NO_CERT: JOB_CERT only) */
  struct pass_cert *c = j->cert != PASS_NO_CERT ? &p->certs[j->cert] : NULL;

  if (j->type == JOB_LIST && read_piece_end(p, j, how, why))
    return;
  if (j->type == JOB_CERT) {
    cert_job_end(p, j, how, why);
  } else if (j->type == JOB_WRITE) {
    write_end(p, j, how, why);
  } else if (j->purpose == LIST_INITIAL) {
    if (how == JOB_FAILED && !cert_read_gone(p, j->cert, why))
      pass_cert_read_failed(p, j->cert, why, false);
    p->reads_left--;
  } else if (j->purpose == LIST_CONFIRM) {
    c->confirm_queued = false;
    confirm_ended(p, j->cert, how == JOB_DONE);
    for (size_t i = c->item_lo; how == JOB_FAILED && i < c->item_hi; i++) {
      if (p->items[i].state == ITEM_WRITTEN)
        item_fail(p, i, why);
    }
  } else if (j->verify) { /* LIST_VERIFY: its write ends with it */
    job_end(p, j->verify, how, why);
  }
  job_free(j);
}

/* A job leaves for good without its normal outcome: it fails, or, when the
 * pass is stopping, it is dropped. */
void job_abandon(struct pass *p, struct job *j, const struct apig_error *why)
{
  job_end(p, j, p->stopping ? JOB_DROPPED : JOB_FAILED, why);
}
