/* The job rules, as pure functions every store backend applies: the initial status of
 * a new job, what an outcome leads to (completed, retry after backoff with jitter,
 * error out of attempts, cancelled), the give-back of a dead owner's job and its
 * message, when an orphaned claim is taken back, the cron fire/skip/catch-up decision,
 * the error-history line, and the checks of a new job. No I/O: time and randomness
 * come in as arguments. */
#ifndef TH_LIFECYCLE_H
#define TH_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "job.h"
#include "owner.h"
#include "store/store.h"

#define TH_BACKOFF_DEFAULT_MS 1000     /* the first retry's delay when a job sets none */
#define TH_BACKOFF_MAX_MS 3600000      /* no retry waits longer than an hour */
#define TH_CRON_MISSED_US 60000000LL   /* a cron fire this late was missed */
#define TH_UNIQUE_KEY_MAX 255
#define TH_HISTORY_MAX (256u << 10) /* bytes of a job's error history kept: the latest */

/* 0 when a new job may be added at `now`; TH_EINVAL for an empty or too long task name
 * or unique key, a too long queue name, a cron schedule that does not parse or never
 * fires. */
int th_lifecycle_check_new(const th_store_new *n, int64_t now);

/* The record of a new job with id `id` added at `now`: its status (cron job, held,
 * delayed or queued), due time, flags and defaults. The schedule must have passed
 * th_lifecycle_check_new. */
void th_lifecycle_new_job(const th_store_new *n, uint64_t id, int64_t now, th_job *job);

/* The claim of a ready job by owner: processing, attempt and claim generation counted. */
void th_lifecycle_claim(th_job *job, const th_owner *owner, int64_t now);

/* Whether an outcome belongs to the claim the job is under (else it is stale). */
bool th_lifecycle_outcome_current(const th_job *job, const th_outcome *o,
				  const th_owner *owner);

/* What an outcome leads to, applied to the job: cancelled when asked while it ran,
 * delayed (due after backoff) for a retry with attempts left, queued again when put
 * back (the attempt not counted if the run never began), else the outcome's status
 * (completed, error or cancelled: finished at now). `random` draws the jitter. Returns
 * the new status; *history tells whether the outcome's error joins the history. */
th_job_status th_lifecycle_outcome(th_job *job, const th_outcome *o, int64_t now,
				   uint64_t random, bool *history);

/* The delay before the job's next run after failed attempt number job->attempts: its
 * backoff doubled per attempt, capped at TH_BACKOFF_MAX_MS, of which a random half
 * (drawn from `random`) so that jobs that failed together come back apart. */
int64_t th_lifecycle_backoff_us(const th_job *job, uint64_t random);

/* The job is done for good: completed, error or cancelled at now. */
void th_lifecycle_finish(th_job *job, th_job_status status, int64_t now);

/* Why a claim is taken back. */
enum th_gone {
	TH_GONE_DEAD = 0,     /* its host died while running it */
	TH_GONE_LEASE = 1,    /* its lease ran out */
	TH_GONE_STARTING = 2  /* its host died while starting it, before the claim committed */
};

/* Whether a claim whose owner is `live` and whose lease ends at lease_until (both on
 * the clock of now) is taken back: an owner known alive keeps it whatever its lease
 * says, a dead one loses it, any other owner by its lease alone. *why says which. */
bool th_lifecycle_orphaned(enum th_liveness live, int64_t lease_until, int64_t now,
			   enum th_gone *why);

/* Gives back a job taken from its owner: cancelled when a cancel was asked while it ran
 * (it is not run again), queued again while it has attempts left, else ended in error
 * at now. msg gets the line for the log (and, for an error, the job's
 * error); returns the new status. TH_GONE_STARTING counts the attempt first. */
th_job_status th_lifecycle_give_back(th_job *job, enum th_gone why, int64_t now, char *msg,
				     size_t msglen);

/* What a cron job does at its fire time `due`, seen at now. */
enum th_cron_step {
	TH_CRON_FIRE = 0, /* a run is queued */
	TH_CRON_SKIP = 1  /* the fire time was missed while no host ran, and no catch-up */
};
enum th_cron_step th_lifecycle_cron_step(const th_job *cron, int64_t due, int64_t now);
/* The next fire time after now, or 0 when paused or when it never fires again. */
int64_t th_lifecycle_cron_next(const th_job *cron, const th_cron *c, int64_t now);
/* A cron job's catch-up and paused choices (each -1: kept as it is). */
void th_lifecycle_cron_flags(th_job *cron, int catchup, int paused);
/* The run a cron job fires at now, with id `id`; the cron job records it. */
void th_lifecycle_cron_run(th_job *cron, uint64_t id, int64_t now, th_job *run);

/* The error history with "attempt N at START for S.SSS s: message\n" appended to old
 * (oldlen bytes): the attempt began at `began` (0: not known, then "attempt N: message")
 * and failed at `ended`. Only its latest TH_HISTORY_MAX bytes (whole lines) are kept: a
 * malloc'd buffer of *len bytes, or NULL when out of memory. An attempt numbered no
 * higher than old's last one follows a retry: the line TH_HISTORY_RETRIED comes first. */
#define TH_HISTORY_RETRIED "retried: its attempts are counted from 1 again"
char *th_lifecycle_history(const void *old, size_t oldlen, uint32_t attempt, int64_t began,
			   int64_t ended, const char *msg, size_t *len);

/* The user's changes: TH_ESTATE when the job's status does not allow them. */
/* Cancel: TH_EBUSY for a running job (now asked to stop: the flag is set), else the job
 * is cancelled at now. */
int th_lifecycle_cancel(th_job *job, int64_t now);
/* A held or delayed job is queued now. */
int th_lifecycle_start(th_job *job);
/* A job in error or cancelled is queued again, its attempts reset. */
int th_lifecycle_retry(th_job *job);
/* A finished job may be removed. */
int th_lifecycle_remove(const th_job *job);

#endif
