/* What every processor strategy shares: start and stop, the wake-up event, the cycle,
 * the slots of running jobs that the keeper (keeper.c) checks for cancels and timeouts.
 * A watcher thread turns cross-process wake-ups (local_wake.c) into a local eventfd. */
#include "proc/proc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "keeper.h"
#include "lifecycle.h"
#include "log.h"

struct th_processor {
	th_proc_env env;
	th_processor_args args;
	const th_strategy *strategy;
	void *state;
	atomic_bool stopping;
	atomic_bool interrupted; /* running jobs are asked to stop: the host is going away */
	int efd;
	uint32_t seq0;
	pthread_t watcher;
	th_slot *slots;
	unsigned nslots;
	_Atomic int64_t avg_run_ns; /* moving average of run times; 0: none seen yet */
	_Atomic int64_t avg_cycle_ns; /* moving average of the cycles' times */
	/* failed cycles in a row, and when the first failed (an outage is logged once) */
	atomic_uint fails;
	_Atomic int64_t failing_since;
};

static const th_strategy *const strategies[] = {&th_strategy_simple, &th_strategy_multi,
						 &th_strategy_process};

const th_strategy *th_strategy_find(const char *name)
{
	for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++)
		if (strcmp(strategies[i]->name, name) == 0)
			return strategies[i];
	return NULL;
}

int th_processor_check_args(const th_processor_args *args)
{
	if (!isfinite(args->wait_time) || args->wait_time < 0 || args->wait_time > 86400)
		return TH_EINVAL;
	if (args->max_threads < 1 || args->max_threads > 1024)
		return TH_EINVAL;
	if (args->max_workers < 1 || args->max_workers > 1024)
		return TH_EINVAL;
	if (!isfinite(args->job_timeout) || args->job_timeout < 0 || args->job_timeout > TH_JOB_TIMEOUT_MAX)
		return TH_EINVAL;
	if (!isfinite(args->kill_grace) || args->kill_grace < 0 || args->kill_grace > 3600)
		return TH_EINVAL;
	return 0;
}

static void *watch(void *arg)
{
	th_processor *p = arg;
	uint32_t seen = p->seq0;
	pthread_setname_np(pthread_self(), "th-watch");
	while (!atomic_load(&p->stopping)) {
		th_coord_wait(p->env.coord, TH_WAKE_ADDED, seen, -1);
		uint32_t now = th_coord_seq(p->env.coord, TH_WAKE_ADDED);
		if (now != seen) {
			seen = now;
			th_metrics_wakeup(p->env.metrics);
			th_processor_kick(p);
		}
	}
	return NULL;
}

int64_t th_processor_check_deadlines(th_processor *p, int64_t now)
{
	int64_t next = 0;
	for (unsigned i = 0; i < p->nslots; i++) {
		th_slot *s = &p->slots[i];
		int64_t d = atomic_load(&s->deadline);
		if (!d || !atomic_load(&s->id))
			continue;
		if (d <= now) {
			if (!atomic_exchange(&s->timed_out, true))
				atomic_store(&s->cancel, true);
		} else if (!next || d < next) {
			next = d;
		}
	}
	return next;
}

void th_processor_check_cancels(th_processor *p)
{
	uint64_t ids[64];
	bool asked[64];
	for (unsigned base = 0; base < p->nslots; base += 64) {
		unsigned n = p->nslots - base < 64 ? p->nslots - base : 64;
		for (unsigned i = 0; i < n; i++)
			ids[i] = atomic_load(&p->slots[base + i].id);
		if (th_store_cancel_requested(p->env.store, ids, n, asked))
			return;
		for (unsigned i = 0; i < n; i++)
			if (asked[i] && atomic_load(&p->slots[base + i].id) == ids[i])
				atomic_store(&p->slots[base + i].cancel, true);
	}
}

/* The event fd is closed here, not at stop: a processor being stopped can still be
 * kicked (interrupted) until its owner frees it. */
static void free_processor(th_processor *p)
{
	close(p->efd);
	free(p->slots);
	free(p);
}

/* claim ahead what the workers finish in 5 ms, or in two cycles' time if that is longer
 * (on a database over a network): the claims of the next cycle come that much later */
#define PREFETCH_HORIZON_NS 5000000

void th_processor_note_run(th_processor *p, int64_t took_us)
{
	int64_t ns = took_us * 1000 + 1000; /* and about a microsecond of handling */
	int64_t old = atomic_load_explicit(&p->avg_run_ns, memory_order_relaxed);
	/* racing updates may lose one sample: it is an estimate */
	atomic_store_explicit(&p->avg_run_ns, old ? old + (ns - old) / 8 : ns, memory_order_relaxed);
}

void th_processor_note_outcome(th_processor *p, const th_claim *c, const th_outcome *o,
			       int64_t took_us)
{
	th_processor_note_run(p, took_us);
	th_metrics *m = p->env.metrics;
	if (!m || (o->status == TH_JOB_QUEUED && !o->retry))
		return; /* put back: not the job's run */
	th_job job = c->job;
	bool history;
	int64_t now = th_clock_now_us();
	th_job_status to = th_lifecycle_outcome(&job, o, now, 0, &history);
	enum th_metric_job what = to == TH_JOB_COMPLETED ? TH_METRIC_COMPLETED
				  : to == TH_JOB_ERROR ? TH_METRIC_FAILED
				  : to == TH_JOB_CANCELLED ? TH_METRIC_CANCELLED
				  : TH_METRIC_RETRIED;
	th_metrics_job(m, what, c->job.task, c->job.queue, 1);
	int64_t due = c->job.due_us > c->job.added_us ? c->job.due_us : c->job.added_us;
	th_metrics_run(m, c->job.task, took_us / 1e6, (now - took_us - due) / 1e6);
}

size_t th_processor_prefetch(th_processor *p, unsigned workers)
{
	int64_t avg = atomic_load_explicit(&p->avg_run_ns, memory_order_relaxed);
	if (avg <= 0)
		return 0; /* nothing known yet: claim for idle workers only */
	int64_t horizon = 2 * atomic_load_explicit(&p->avg_cycle_ns, memory_order_relaxed);
	if (horizon < PREFETCH_HORIZON_NS)
		horizon = PREFETCH_HORIZON_NS;
	int64_t n = (int64_t)workers * horizon / avg;
	return n <= 0 ? 0 : n > TH_PREFETCH_MAX ? TH_PREFETCH_MAX : (size_t)n;
}

th_slot *th_processor_slot(th_processor *p, unsigned index)
{
	return &p->slots[index % p->nslots];
}

void th_slot_begin(th_processor *p, th_slot *s, const th_job *job)
{
	double timeout = job->timeout_ms ? job->timeout_ms / 1000.0 : p->args.job_timeout;
	atomic_store(&s->cancel, false);
	atomic_store(&s->timed_out, false);
	s->timeout = timeout;
	atomic_store(&s->deadline, timeout > 0 ? th_clock_mono_us() + (int64_t)(timeout * 1e6) : 0);
	atomic_store(&s->id, job->id);
	if (timeout > 0) /* the keeper may be asleep for a while: tell it */
		th_coord_notify(p->env.coord, TH_WAKE_CANCEL);
	if (job->flags & TH_JOB_CANCEL_REQUESTED)
		atomic_store(&s->cancel, true);
}

void th_slot_end(th_slot *s)
{
	atomic_store(&s->id, 0);
	atomic_store(&s->deadline, 0);
}

void th_processor_run(th_processor *p, th_slot *slot, th_plugin_thread *t, const th_claim *c,
		      th_outcome *o, th_run_result *r)
{
	const th_proc_env *env = &p->env;
	th_slot_begin(p, slot, &c->job);
	th_run_opts opts = {.cancel = &slot->cancel, .stopping = &p->interrupted,
			    .timed_out = &slot->timed_out, .timeout = slot->timeout,
			    .max_result = env->max_result, .coord = env->coord};
	th_run_claim(t, env->plugins, c, &opts, o, r);
	th_slot_end(slot);
	th_processor_note_outcome(p, c, o, r->took_us);
}

int th_processor_start(th_processor **out, const th_proc_env *env, const th_strategy *s,
		       const th_processor_args *args)
{
	*out = NULL;
	if (th_processor_check_args(args))
		return TH_EINVAL;
	th_processor *p = calloc(1, sizeof(*p));
	if (!p)
		return TH_ENOMEM;
	p->env = *env;
	p->args = *args;
	p->strategy = s;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		free(p);
		return TH_ESYS;
	}
	p->nslots = args->max_threads > args->max_workers ? args->max_threads : args->max_workers;
	if (!(p->slots = calloc(p->nslots, sizeof(*p->slots)))) {
		close(p->efd);
		free(p);
		return TH_ENOMEM;
	}
	/* read before the first claim: an add after this point wakes the watcher, an add
	 * before it is seen by that claim */
	p->seq0 = th_coord_seq(env->coord, TH_WAKE_ADDED);
	int rc = TH_ESYS;
	if (pthread_create(&p->watcher, NULL, watch, p))
		goto fail_watcher;
	if ((rc = s->start(p, &p->state)) == 0)
		goto started;
	atomic_store(&p->stopping, true);
	th_coord_notify(env->coord, TH_WAKE_ADDED);
	pthread_join(p->watcher, NULL);
fail_watcher:
	free_processor(p);
	return rc;
started:
	if (s == &th_strategy_simple)
		th_log_info("processor", "started: strategy simple, wait_time %g s",
			    args->wait_time);
	else if (s == &th_strategy_process)
		th_log_info("processor", "started: strategy process, max_workers %u, wait_time "
			    "%g s, job_timeout %g s", args->max_workers, args->wait_time,
			    args->job_timeout);
	else
		th_log_info("processor", "started: strategy %s, max_threads %u, wait_time %g s",
			    s->name, args->max_threads, args->wait_time);
	*out = p;
	return 0;
}

void th_processor_free(th_processor *p)
{
	if (p)
		free_processor(p);
}

void th_processor_interrupt(th_processor *p)
{
	atomic_store(&p->stopping, true); /* no new claims either */
	atomic_store(&p->interrupted, true);
	th_processor_kick(p);
}

const atomic_bool *th_processor_interrupted(th_processor *p)
{
	return &p->interrupted;
}

void th_processor_stop(th_processor *p)
{
	if (!p)
		return;
	atomic_store(&p->stopping, true);
	th_processor_kick(p);
	p->strategy->stop(p->state);
	th_coord_notify(p->env.coord, TH_WAKE_ADDED); /* lets the watcher see `stopping` */
	pthread_join(p->watcher, NULL);
	th_log_info("processor", "stopped");
}

size_t th_processor_threads(th_processor *p, uint64_t *ids, size_t max)
{
	return p->strategy->threads(p->state, ids, max);
}

bool th_processor_reload(th_processor *p)
{
	if (!p->strategy->reload)
		return false;
	p->strategy->reload(p->state);
	return true;
}

void *th_processor_strategy_state(th_processor *p)
{
	return p->state;
}

const th_proc_env *th_processor_env(th_processor *p)
{
	return &p->env;
}

const th_processor_args *th_processor_args_of(th_processor *p)
{
	return &p->args;
}

bool th_processor_stopping(th_processor *p)
{
	return atomic_load(&p->stopping);
}

void th_processor_kick(th_processor *p)
{
	uint64_t one = 1;
	while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* Drains the event after a poll saw it readable. */
static void event_clear(th_processor *p)
{
	uint64_t n;
	while (read(p->efd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

void th_processor_wait(th_processor *p, int64_t timeout_us)
{
	struct pollfd pfd = {p->efd, POLLIN, 0};
	/* wake-ups do the real work; a zero wait_time must not turn into a busy loop */
	int ms = timeout_us < 0 ? -1 : timeout_us < 1000 ? 1 : (int)((timeout_us + 999) / 1000);
	if (poll(&pfd, 1, ms) > 0)
		event_clear(p);
}

struct starter {
	void (*fn)(void *ud, th_claim *claims, size_t n);
	void *ud;
	size_t started; /* out */
};

/* Claims of a cycle that outlasted the lease (it waited on a lost COMMIT's fate across
 * an outage): their leases may have run out and other hosts taken them, so they are not
 * started here but given back (refused as stale if taken already). */
static void give_back_late(th_processor *p, th_cycle *c)
{
	th_outcome *back = calloc(c->nclaimed, sizeof(*back));
	for (size_t i = 0; back && i < c->nclaimed; i++)
		back[i] = (th_outcome){.id = c->claims[i].job.id, .gen = c->claims[i].job.claim_gen,
				       .status = TH_JOB_QUEUED, .not_started = true};
	th_cycle g = {.outs = back, .nout = back ? c->nclaimed : 0, .owner = &p->env.owner};
	int rc = back ? th_store_cycle(p->env.store, &g) : TH_ENOMEM;
	th_log_warn("processor", "%zu job(s) claimed in a cycle that took longer than "
		    "lease_time: not started, %s", c->nclaimed,
		    rc ? "left to recovery" : "given back to the queue");
	free(back);
	for (size_t i = 0; i < c->nclaimed; i++)
		th_claim_clear(&c->claims[i]);
	c->nclaimed = 0;
}

static int cycle(th_processor *p, const th_outcome *outs, size_t nout, size_t max,
		 th_claim *claims, size_t *nclaimed, int64_t *next_due, struct starter *s)
{
	th_cycle c = {.outs = outs, .nout = nout, .owner = &p->env.owner, .queue = p->env.queue,
		      .max = max, .lease_us = p->env.lease_us, .claims = claims,
		      .start = s ? s->fn : NULL, .start_ud = s ? s->ud : NULL};
	int64_t t0 = th_clock_mono_us();
	int rc = th_store_cycle(p->env.store, &c);
	int64_t took_ns = (th_clock_mono_us() - t0) * 1000;
	if (rc == 0) {
		th_metrics_commit(p->env.metrics, TH_COMMIT_CYCLE, took_ns / 1e9, 0);
		int64_t old = atomic_load_explicit(&p->avg_cycle_ns, memory_order_relaxed);
		/* racing updates may lose one sample: it is an estimate */
		atomic_store_explicit(&p->avg_cycle_ns, old ? old + (took_ns - old) / 8 : took_ns,
				      memory_order_relaxed);
	}
	if (rc == 0 && c.nclaimed && th_clock_mono_us() - t0 > p->env.lease_us)
		give_back_late(p, &c);
	if (nclaimed)
		*nclaimed = c.nclaimed;
	if (s)
		s->started = c.started;
	if (rc && c.started)
		th_log_warn("processor", "%zu job(s) started while their claim was written, and "
			    "writing it failed: claiming them again", c.started);
	if (c.lost)
		th_log_warn("processor", "%zu job(s) started here were taken by another host "
			    "while the map grew: their outcomes here will be refused", c.lost);
	if (next_due && rc == 0)
		*next_due = c.next_due;
	if (rc == 0 && c.promoted) /* other queues' processors, other hosts: look */
		th_coord_notify(p->env.coord, TH_WAKE_ADDED);
	return rc;
}

/* A batch of outcomes failed to commit: record them one at a time, so that one that
 * cannot be recorded (a damaged record; at a full map the store records an outcome
 * without its bytes) holds up neither the others nor the jobs queued behind it. It
 * stops at the first that fails otherwise (the store cannot be reached): *done of them
 * are recorded, from the first, and the caller keeps the rest; recorded twice, an
 * outcome would be refused as stale. */
static int record_one_by_one(th_processor *p, const th_outcome *outs, size_t nout,
			     size_t *done)
{
	for (*done = 0; *done < nout; (*done)++) {
		int rc = cycle(p, &outs[*done], 1, 0, NULL, NULL, NULL, NULL);
		if (rc == TH_EDAMAGED)
			th_log_error("processor", "job %llu: outcome dropped: the job's record is "
				     "damaged", (unsigned long long)outs[*done].id);
		else if (rc)
			return rc;
	}
	return 0;
}

int th_processor_cycle(th_processor *p, const th_outcome *outs, size_t nout,
		       size_t *nrecorded, size_t max, th_claim *claims, size_t *nclaimed,
		       int64_t *wait_us, void (*start)(void *ud, th_claim *claims, size_t n),
		       void *ud)
{
	struct starter s = {start, ud, 0};
	*nclaimed = 0;
	*nrecorded = 0;
	if (max && p->env.keeper && th_keeper_lapsed(p->env.keeper))
		max = 0; /* other hosts may be taking this host's jobs back: take no more */
	int64_t next_due = 0;
	int rc = 0;
	bool ready = true, slow = false;
	if (nout == 0) {
		/* a read transaction is enough to see there is nothing to claim, and costs far
		 * less than the write one when many idle processors are woken */
		rc = th_store_peek(p->env.store, p->env.queue, &ready, &next_due);
		if (rc)
			ready = false;
	}
	if (ready && (nout || max)) {
		rc = cycle(p, outs, nout, max, claims, nclaimed, &next_due, start ? &s : NULL);
		/* jobs started under claims that failed to commit: the caller makes the same
		 * claims again (th_store_confirm) before anything else, outcomes included */
		if (rc && nout && !s.started) {
			rc = record_one_by_one(p, outs, nout, nrecorded);
			/* the outcomes are recorded now: claims that start only once committed,
			 * and whose failure is not theirs (recorded twice, they would be refused
			 * as stale) */
			int crc = rc == 0 && max ? cycle(p, NULL, 0, max, claims, nclaimed, &next_due,
							 NULL) : 0;
			if (crc) {
				th_log_error("processor", "claiming failed: %s", th_strerror(crc));
				slow = true;
			}
		}
		if (rc && atomic_fetch_add(&p->fails, 1) == 0) {
			atomic_store(&p->failing_since, th_clock_mono_us());
			th_log_error("processor", "recording %zu outcome(s) and claiming failed: %s "
				     "(trying again every 100 ms; said once until it works again)",
				     nout - *nrecorded, th_strerror(rc));
		}
		if (rc == 0 || *nrecorded)
			th_coord_notify(p->env.coord, TH_WAKE_FINISHED);
	}
	if (rc == 0)
		*nrecorded = nout;
	unsigned failed;
	if (rc == 0 && ready && (nout || max) && (failed = atomic_exchange(&p->fails, 0)))
		th_log_info("processor", "recording outcomes and claiming work again, after %u "
			    "failed cycle(s) over %.1f s", failed,
			    (th_clock_mono_us() - atomic_load(&p->failing_since)) / 1e6);
	if (rc == TH_EDAMAGED && !atomic_exchange(&p->stopping, true))
		th_log_error("processor", "the data dir is damaged: this host claims no more jobs "
			     "(stop it, then run 'taskhost check')");
	/* how long the strategy may sleep: wait_time, or until the next scheduled job */
	int64_t w = (int64_t)(p->args.wait_time * 1e6);
	if (rc || slow)
		w = 100000; /* look again soon after a failure, but do not spin */
	if (next_due) {
		int64_t until = next_due - th_clock_now_us();
		if (until < w)
			w = until > 0 ? until : 0;
	}
	if (wait_us)
		*wait_us = w;
	return rc;
}
