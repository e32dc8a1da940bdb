/* The job rules as pure functions: new jobs, claims, outcomes and retries with backoff,
 * give-back of orphaned claims, cron fires, the error history, the user's changes. */
#include "lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"

int th_lifecycle_check_new(const th_store_new *n, int64_t now)
{
	size_t tn = n->task ? strlen(n->task) : 0;
	size_t qn = n->queue ? strlen(n->queue) : 0;
	size_t un = n->unique ? strlen(n->unique) : 1;
	if (tn == 0 || tn > TH_TASK_NAME_MAX || qn > TH_QUEUE_NAME_MAX || un == 0 ||
	    un > TH_UNIQUE_KEY_MAX)
		return TH_EINVAL;
	th_cron cron;
	char err[160];
	if (n->cron && (th_cron_parse(n->cron, &cron, err, sizeof(err)) ||
			th_cron_next(&cron, now) < 0))
		return TH_EINVAL; /* a schedule that never fires is a mistake too */
	return 0;
}

void th_lifecycle_new_job(const th_store_new *n, uint64_t id, int64_t now, th_job *job)
{
	*job = (th_job){.id = id, .status = TH_JOB_QUEUED, .priority = n->priority,
			.added_us = now, .input_len = n->input_len,
			.max_attempts = n->max_attempts ? n->max_attempts
							: TH_DEFAULT_MAX_ATTEMPTS,
			.timeout_ms = n->timeout_ms, .backoff_ms = n->backoff_ms};
	snprintf(job->task, sizeof(job->task), "%s", n->task);
	snprintf(job->queue, sizeof(job->queue), "%s", n->queue ? n->queue : "");
	th_cron cron;
	char err[160];
	if (n->cron && th_cron_parse(n->cron, &cron, err, sizeof(err)) == 0) {
		job->status = TH_JOB_CRONJOB;
		job->flags |= n->catchup ? TH_JOB_CRON_CATCHUP : 0;
		job->due_us = th_cron_next(&cron, now);
	} else if (n->hold) {
		job->status = TH_JOB_HELD;
	} else if (n->due_us > now) {
		job->status = TH_JOB_DELAYED;
		job->due_us = n->due_us;
	}
	if (n->unique)
		job->flags |= TH_JOB_UNIQUE;
}

void th_lifecycle_claim(th_job *job, const th_owner *owner, int64_t now)
{
	job->status = TH_JOB_PROCESSING;
	job->attempts++;
	job->claim_gen++;
	job->started_us = now;
	job->owner = owner->instance;
	job->owner_pid = owner->pid;
}

bool th_lifecycle_outcome_current(const th_job *job, const th_outcome *o,
				  const th_owner *owner)
{
	return job->status == TH_JOB_PROCESSING && job->claim_gen == o->gen &&
	       job->owner == owner->instance;
}

int64_t th_lifecycle_backoff_us(const th_job *job, uint64_t random)
{
	uint64_t base = job->backoff_ms ? job->backoff_ms : TH_BACKOFF_DEFAULT_MS;
	unsigned shift = job->attempts > 1 ? job->attempts - 1 : 0;
	uint64_t ms = shift >= 32 ? TH_BACKOFF_MAX_MS : base << shift;
	if (ms > TH_BACKOFF_MAX_MS || ms < base)
		ms = TH_BACKOFF_MAX_MS;
	uint64_t half = ms / 2;
	return (int64_t)(half + (half ? random % (half + 1) : 0)) * 1000;
}

void th_lifecycle_finish(th_job *job, th_job_status status, int64_t now)
{
	job->status = status;
	job->finished_us = now;
	job->owner = 0;
	job->owner_pid = 0;
	job->due_us = 0;
}

th_job_status th_lifecycle_outcome(th_job *job, const th_outcome *o, int64_t now,
				   uint64_t random, bool *history)
{
	job->owner = 0;
	job->owner_pid = 0;
	th_job_status status = o->status;
	*history = o->error && status != TH_JOB_COMPLETED;
	if (job->flags & TH_JOB_CANCEL_REQUESTED) {
		status = TH_JOB_CANCELLED; /* asked while it ran: however the run ended */
		job->flags &= ~(uint32_t)TH_JOB_CANCEL_REQUESTED;
	} else if (status == TH_JOB_ERROR && o->retry && job->attempts < job->max_attempts) {
		status = TH_JOB_DELAYED; /* again later, with backoff */
	}
	if (status == TH_JOB_QUEUED || status == TH_JOB_DELAYED) {
		if (o->not_started && job->attempts > 0)
			job->attempts--;
		job->status = status;
		if (status == TH_JOB_DELAYED)
			job->due_us = now + th_lifecycle_backoff_us(job, random);
		return status;
	}
	th_lifecycle_finish(job, status, now);
	job->result_len = o->result_len;
	return status;
}

bool th_lifecycle_orphaned(enum th_liveness live, int64_t lease_until, int64_t now,
			   enum th_gone *why)
{
	/* an owner known to be alive keeps its jobs whatever its lease says (it may be
	 * stopped, or its clock jumped); the lease speaks only for owners not seen */
	*why = live == TH_OWNER_DEAD ? TH_GONE_DEAD : TH_GONE_LEASE;
	if (live == TH_OWNER_ALIVE)
		return false;
	return live == TH_OWNER_DEAD || lease_until <= now;
}

static const char *const gone_why[] = {
	[TH_GONE_DEAD] = "host died while running",
	[TH_GONE_LEASE] = "lease expired",
	[TH_GONE_STARTING] = "host died while starting it",
};

th_job_status th_lifecycle_give_back(th_job *job, enum th_gone why, int64_t now, char *msg,
				     size_t msglen)
{
	if (why == TH_GONE_STARTING) {
		job->claim_gen++; /* that claim's generation is spent: counted once */
		job->attempts++;
	}
	job->owner = 0;
	job->owner_pid = 0;
	if (job->flags & TH_JOB_CANCEL_REQUESTED) { /* the cancel asked while it ran holds */
		job->flags &= ~(uint32_t)TH_JOB_CANCEL_REQUESTED;
		snprintf(msg, msglen, "cancelled while running (%s before its task returned)",
			 gone_why[why]);
		th_lifecycle_finish(job, TH_JOB_CANCELLED, now);
	} else if (job->attempts < job->max_attempts) {
		job->status = TH_JOB_QUEUED;
		snprintf(msg, msglen, "%s (attempt %u of %u): queued again", gone_why[why],
			 job->attempts, job->max_attempts);
	} else {
		snprintf(msg, msglen, "%s, attempts exhausted (%u of %u)", gone_why[why],
			 job->attempts, job->max_attempts);
		th_lifecycle_finish(job, TH_JOB_ERROR, now);
	}
	return job->status;
}

enum th_cron_step th_lifecycle_cron_step(const th_job *cron, int64_t due, int64_t now)
{
	bool missed = now - due > TH_CRON_MISSED_US;
	return !missed || (cron->flags & TH_JOB_CRON_CATCHUP) ? TH_CRON_FIRE : TH_CRON_SKIP;
}

int64_t th_lifecycle_cron_next(const th_job *cron, const th_cron *c, int64_t now)
{
	if (cron->flags & TH_JOB_CRON_PAUSED)
		return 0;
	/* each fire time once: the next one is always after now */
	int64_t next = th_cron_next(c, now);
	return next < 0 ? 0 : next;
}

void th_lifecycle_cron_flags(th_job *cron, int catchup, int paused)
{
	if (catchup >= 0)
		cron->flags = catchup ? cron->flags | TH_JOB_CRON_CATCHUP
				      : cron->flags & ~(uint32_t)TH_JOB_CRON_CATCHUP;
	if (paused >= 0)
		cron->flags = paused ? cron->flags | TH_JOB_CRON_PAUSED
				     : cron->flags & ~(uint32_t)TH_JOB_CRON_PAUSED;
}

void th_lifecycle_cron_run(th_job *cron, uint64_t id, int64_t now, th_job *run)
{
	*run = (th_job){.id = id, .status = TH_JOB_QUEUED, .priority = cron->priority,
			.added_us = now, .input_len = cron->input_len,
			.max_attempts = cron->max_attempts, .timeout_ms = cron->timeout_ms,
			.backoff_ms = cron->backoff_ms, .parent = cron->id};
	memcpy(run->task, cron->task, sizeof(run->task));
	memcpy(run->queue, cron->queue, sizeof(run->queue));
	cron->last_run = id;
	cron->fires++;
}

/* The number of the attempt on the last line of a history, 0 when it names none. */
static uint32_t history_last_attempt(const char *h, size_t n)
{
	if (n && h[n - 1] == '\n')
		n--;
	size_t from = n;
	while (from > 0 && h[from - 1] != '\n')
		from--;
	const char *p = h + from, *end = h + n;
	if ((size_t)(end - p) < 9 || memcmp(p, "attempt ", 8) != 0)
		return 0;
	uint32_t k = 0;
	for (p += 8; p < end && *p >= '0' && *p <= '9' && k < UINT32_MAX / 10; p++)
		k = k * 10 + (uint32_t)(*p - '0');
	return k;
}

char *th_lifecycle_history(const void *old, size_t oldlen, uint32_t attempt, int64_t began,
			   int64_t ended, const char *msg, size_t *len)
{
	char head[160], at[32];
	int hn = 0;
	/* attempts only count up, but for a retry, which counts them from 1 again: said
	 * in a line of its own, or the history would name attempt 1 twice */
	if (oldlen && attempt <= history_last_attempt(old, oldlen))
		hn = snprintf(head, sizeof(head), "%s\n", TH_HISTORY_RETRIED);
	if (began > 0) {
		th_clock_format(began, at, sizeof(at));
		double took = ended > began ? (double)(ended - began) / 1e6 : 0;
		hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "attempt %u at %s for %.3f s: ",
			       attempt, at, took);
	} else {
		hn += snprintf(head + hn, sizeof(head) - (size_t)hn, "attempt %u: ", attempt);
	}
	size_t ml = strlen(msg), n = oldlen + (size_t)hn + ml + 1;
	char *buf = malloc(n);
	if (!buf)
		return NULL;
	if (oldlen)
		memcpy(buf, old, oldlen);
	memcpy(buf + oldlen, head, (size_t)hn);
	memcpy(buf + oldlen + hn, msg, ml);
	buf[n - 1] = '\n';
	if (n > TH_HISTORY_MAX) { /* the oldest lines go */
		char *nl = memchr(buf + n - TH_HISTORY_MAX, '\n', TH_HISTORY_MAX - 1);
		size_t from = nl ? (size_t)(nl + 1 - buf) : n - TH_HISTORY_MAX;
		memmove(buf, buf + from, n - from);
		n -= from;
	}
	*len = n;
	return buf;
}

int th_lifecycle_cancel(th_job *job, int64_t now)
{
	if (th_job_status_final(job->status))
		return TH_ESTATE;
	if (job->status == TH_JOB_PROCESSING) {
		/* its host sees the flag, the task sees th_cancelled, and the outcome of the
		 * run is recorded as cancelled */
		job->flags |= TH_JOB_CANCEL_REQUESTED;
		return TH_EBUSY;
	}
	th_lifecycle_finish(job, TH_JOB_CANCELLED, now);
	return 0;
}

int th_lifecycle_start(th_job *job)
{
	if (job->status != TH_JOB_HELD && job->status != TH_JOB_DELAYED)
		return TH_ESTATE;
	job->status = TH_JOB_QUEUED;
	job->due_us = 0;
	return 0;
}

int th_lifecycle_retry(th_job *job)
{
	if (job->status != TH_JOB_ERROR && job->status != TH_JOB_CANCELLED)
		return TH_ESTATE;
	job->status = TH_JOB_QUEUED;
	job->attempts = 0;
	job->finished_us = 0;
	job->flags &= ~(uint32_t)(TH_JOB_CANCEL_REQUESTED | TH_JOB_UNIQUE);
	return 0;
}

int th_lifecycle_remove(const th_job *job)
{
	return th_job_status_final(job->status) ? 0 : TH_ESTATE;
}
