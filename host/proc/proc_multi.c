/* The worker pool behind the multi and process strategies, and the multi strategy: up
 * to max_threads jobs run at once on a pool of threads. A dispatcher thread claims jobs
 * for idle workers and records finished jobs' outcomes, both in one transaction per
 * round, so many jobs share one commit. On a store whose cycles gain from running at
 * the same time (th_store_txns_at_once), a helper thread runs a second cycle, with the
 * jobs that finished and the claims wanted meanwhile, while the dispatcher's is in
 * progress. How a worker runs a job is its executor's business: on its own thread here,
 * in a worker process in process.c. */
#include "proc/proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "log.h"
#include "proc/proc_run.h"

struct done {
	th_outcome out;
	th_run_result res;
};

struct worker {
	struct multi *m;
	unsigned index;
	pthread_t thread;
	_Atomic uint64_t running; /* the job being run, 0 when idle */
};

struct multi {
	th_processor *p;
	const th_executor *ex;
	unsigned nthreads;
	size_t cap; /* jobs this processor holds at most: workers plus claimed ahead */
	struct worker *workers;
	pthread_t dispatcher;
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	/* claimed jobs no worker has taken yet: a ring of cap slots */
	th_claim *ready;
	size_t rhead, rlen;
	/* finished jobs whose outcome is not recorded yet */
	struct done *done;
	size_t ndone;
	unsigned busy;
	bool stopping;
	bool sleeping; /* the dispatcher waits for an event: a finished job must kick it */
	/* outcomes and claims that a cycle holds, in neither the ring nor done: the claims of
	 * the cycles in progress, and the outcomes taken for them (or kept after a failure) */
	size_t taken, claiming;
	/* the helper: runs cycles only while the dispatcher is in one (cycling) */
	bool helper_on, helper_waiting, helper_cycling, cycling;
	pthread_t helper;
	pthread_cond_t help_cv;
	size_t started; /* claims start_claims handed out this round (dispatcher only) */
	th_notes *inflight; /* NULL: jobs start only once their claim committed */
	bool confirming; /* the commit of started claims failed: make them again first
			    (dispatcher only) */
	uint64_t *lost;  /* (id, gen) of runs whose claim could not be made again: their
			    outcomes are dropped (dispatcher only) */
	size_t nlost;
};

static void *worker_loop(void *arg)
{
	struct worker *w = arg;
	struct multi *m = w->m;
	pthread_setname_np(pthread_self(), "th-worker");
	void *ew = NULL;
	int rc = m->ex->open(m->p, w->index, &ew);
	if (rc)
		th_log_error("processor", "worker %u cannot start: %s; its jobs go back to the "
			     "queue", w->index, th_strerror(rc));
	pthread_mutex_lock(&m->mu);
	for (;;) {
		while (m->rlen == 0 && !m->stopping)
			pthread_cond_wait(&m->work_cv, &m->mu);
		if (m->stopping) /* jobs not started yet go back to the queue */
			break;
		th_claim c = m->ready[m->rhead];
		m->rhead = (m->rhead + 1) % m->cap;
		m->rlen--;
		m->busy++;
		atomic_store(&w->running, c.job.id);
		pthread_mutex_unlock(&m->mu);

		struct done d;
		if (rc == 0) {
			m->ex->run(ew, &c, &d.out, &d.res);
		} else {
			memset(&d, 0, sizeof(d));
			d.out = (th_outcome){.id = c.job.id, .gen = c.job.claim_gen,
					     .status = TH_JOB_QUEUED, .not_started = true};
		}
		th_claim_clear(&c);

		pthread_mutex_lock(&m->mu);
		atomic_store(&w->running, 0);
		m->done[m->ndone++] = d;
		m->busy--;
		/* a busy dispatcher picks the outcome up on its next round anyway, or its
		 * helper does now */
		if (m->sleeping) {
			m->sleeping = false;
			th_processor_kick(m->p);
		} else if (m->cycling && m->helper_waiting) {
			m->helper_waiting = false;
			pthread_cond_signal(&m->help_cv);
		}
		if (rc) /* a worker that cannot run jobs stops taking them */
			break;
	}
	pthread_mutex_unlock(&m->mu);
	if (rc == 0)
		m->ex->close(ew);
	return NULL;
}

/* Called by the dispatcher inside its claiming transaction: the workers start the jobs
 * while the claim commits (see th_processor_cycle). The round sized its claims to fit
 * the ring. */
static void start_claims(void *ud, th_claim *claims, size_t n)
{
	struct multi *m = ud;
	/* noted first: if this host dies before the commit, the next one counts the attempt */
	for (size_t i = 0; i < n; i++)
		th_coord_notes_add(th_processor_env(m->p)->coord, m->inflight, claims[i].job.id, claims[i].job.claim_gen);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++)
		m->ready[(m->rhead + m->rlen++) % m->cap] = claims[i];
	pthread_cond_broadcast(&m->work_cv);
	pthread_mutex_unlock(&m->mu);
	m->started += n;
}

/* After the commit of started claims failed: the same claims again (the jobs run).
 * Outcomes and new claims wait until this succeeds. */
static void confirm(struct multi *m)
{
	const th_proc_env *env = th_processor_env(m->p);
	const uint64_t *pairs;
	size_t n = th_coord_notes_pairs(env->coord, m->inflight, &pairs);
	bool *lost = calloc(n ? n : 1, sizeof(*lost));
	int rc = lost ? th_store_confirm(env->store, &env->owner, env->lease_us, pairs, n, lost)
		      : TH_ENOMEM;
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!lost[i])
				continue;
			th_log_warn("processor", "job %llu: claimed elsewhere before its claim could "
				    "be written again; the outcome of its run here will be dropped",
				    (unsigned long long)pairs[2 * i]);
			if (m->nlost == m->cap) /* no more runs than that are in flight */
				continue;
			m->lost[2 * m->nlost] = pairs[2 * i];
			m->lost[2 * m->nlost++ + 1] = pairs[2 * i + 1];
		}
		th_coord_notes_clear(th_processor_env(m->p)->coord, m->inflight);
		m->confirming = false;
	} else {
		th_log_error("processor", "claiming %zu started job(s) again failed: %s; trying "
			     "again", n, th_strerror(rc));
	}
	free(lost);
}

/* Drops the outcomes of runs whose claim another claimer holds under the same
 * generation (see confirm): recording them would overwrite that claimer's. */
static size_t drop_lost(struct multi *m, struct done *batch, size_t n)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		size_t j = 0;
		while (j < m->nlost && (m->lost[2 * j] != batch[i].out.id ||
					m->lost[2 * j + 1] != batch[i].out.gen))
			j++;
		if (j == m->nlost) {
			batch[kept++] = batch[i];
			continue;
		}
		th_run_result_clear(&batch[i].res);
		m->nlost--;
		m->lost[2 * j] = m->lost[2 * m->nlost];
		m->lost[2 * j + 1] = m->lost[2 * m->nlost + 1];
	}
	return kept;
}

/* Claims to make now (m->mu held): for the idle workers plus those ahead, less what
 * cycles in progress claim already, within what the ring holds. */
static size_t claims_wanted(struct multi *m, size_t prefetch)
{
	size_t held = m->busy + m->rlen + m->ndone + m->taken;
	size_t idle = m->nthreads > m->busy + m->rlen ? m->nthreads - m->busy - m->rlen : 0;
	if (held >= m->cap || m->confirming)
		return 0;
	size_t ahead = m->rlen < prefetch ? prefetch - m->rlen : 0;
	size_t want = idle + ahead > m->claiming ? idle + ahead - m->claiming : 0;
	return want > m->cap - held ? m->cap - held : want;
}

/* The helper: while the dispatcher is in a cycle, records the jobs finished since and
 * claims what the workers want, in a cycle of its own. What it does not record goes back
 * to done, for the dispatcher's next round. */
static void *help_loop(void *arg)
{
	struct multi *m = arg;
	th_processor *p = m->p;
	pthread_setname_np(pthread_self(), "th-helper");
	struct done *batch = calloc(m->cap, sizeof(*batch));
	th_outcome *outs = calloc(m->cap, sizeof(*outs));
	th_claim *claims = calloc(m->cap, sizeof(*claims));
	pthread_mutex_lock(&m->mu);
	while (batch && outs && claims && !m->stopping) {
		/* a cycle's cost is mostly per job, but not only: worth it for enough jobs */
		size_t prefetch = th_processor_prefetch(p, m->nthreads), want = 0;
		size_t enough = prefetch / 2 > m->nthreads ? prefetch / 2 : m->nthreads;
		if (m->cycling && m->ndone < enough &&
		    (want = claims_wanted(m, prefetch)) < enough)
			want = 0;
		if (!m->cycling || (m->ndone < enough && !want)) {
			m->helper_waiting = true;
			pthread_cond_wait(&m->help_cv, &m->mu);
			m->helper_waiting = false;
			continue;
		}
		size_t nb = m->ndone;
		memcpy(batch, m->done, nb * sizeof(*batch));
		m->ndone = 0;
		m->taken += nb + want;
		m->claiming += want;
		m->helper_cycling = true;
		pthread_mutex_unlock(&m->mu);

		for (size_t i = 0; i < nb; i++)
			outs[i] = batch[i].out;
		size_t done = 0, n = 0;
		int64_t wait_us;
		int rc = th_processor_cycle(p, outs, nb, &done, want, claims, &n, &wait_us, NULL,
					    NULL);
		size_t recorded = done < nb ? done : nb;
		for (size_t i = 0; i < recorded; i++)
			th_run_result_clear(&batch[i].res);

		pthread_mutex_lock(&m->mu);
		memcpy(m->done + m->ndone, batch + recorded, (nb - recorded) * sizeof(*batch));
		m->ndone += nb - recorded;
		for (size_t i = 0; i < n; i++)
			m->ready[(m->rhead + m->rlen++) % m->cap] = claims[i];
		if (n)
			pthread_cond_broadcast(&m->work_cv);
		m->taken -= nb + want;
		m->claiming -= want;
		m->helper_cycling = false;
		/* a dispatcher that went to sleep while this cycle claimed counted on its
		 * claims: fewer came (the queue ran dry, a failure), or outcomes came back */
		if (m->sleeping) {
			m->sleeping = false;
			th_processor_kick(p);
		}
		if (rc) { /* the dispatcher's rounds try again, and log */
			struct timespec t;
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 100000000;
			t.tv_sec += t.tv_nsec / 1000000000;
			t.tv_nsec %= 1000000000;
			m->helper_waiting = true;
			pthread_cond_timedwait(&m->help_cv, &m->mu, &t);
			m->helper_waiting = false;
		}
	}
	pthread_mutex_unlock(&m->mu);
	free(batch);
	free(outs);
	free(claims);
	return NULL;
}

/* The dispatcher: each round records the finished jobs and claims new ones for the
 * idle workers (and, for short jobs, ahead of them) in one transaction. */
static void *dispatch_loop(void *arg)
{
	struct multi *m = arg;
	th_processor *p = m->p;
	int64_t wait_us = 0;
	pthread_setname_np(pthread_self(), "th-dispatch");
	struct done *batch = calloc(m->cap, sizeof(*batch));
	th_outcome *outs = calloc(2 * m->cap, sizeof(*outs));
	th_claim *claims = calloc(m->cap, sizeof(*claims));
	if (!batch || !outs || !claims) {
		th_log_error("processor", "out of memory: processor not running");
		free(batch);
		free(outs);
		free(claims);
		return NULL;
	}
	size_t nbatch = 0;
	for (;;) {
		size_t prefetch = th_processor_prefetch(p, m->nthreads);
		/* after a failed commit of started claims, the same claims again come first;
		 * the outcomes of runs that lost theirs are dropped as the batch is taken */
		bool confirm_round = m->confirming;
		if (confirm_round)
			confirm(m); /* on failure: logged, and m->confirming stays set */
		pthread_mutex_lock(&m->mu);
		bool stop = th_processor_stopping(p);
		if (stop && !m->stopping) {
			m->stopping = true;
			pthread_cond_broadcast(&m->work_cv);
			pthread_cond_broadcast(&m->help_cv);
		}
		memcpy(batch + nbatch, m->done, m->ndone * sizeof(*batch));
		nbatch += m->ndone;
		m->taken += m->ndone;
		m->ndone = 0;
		if (m->nlost) {
			size_t kept = drop_lost(m, batch, nbatch);
			m->taken -= nbatch - kept;
			nbatch = kept;
		}
		/* on stop, claimed jobs no worker took go back once the workers are idle (and
		 * the helper's cycle, whose claims come to the ring, is over) */
		size_t nrel = 0;
		bool last = stop && m->busy == 0 && !m->helper_cycling;
		if (last) {
			for (; m->rlen; m->rlen--, m->rhead = (m->rhead + 1) % m->cap) {
				th_claim *c = &m->ready[m->rhead];
				outs[nbatch + nrel++] = (th_outcome){.id = c->job.id,
					.gen = c->job.claim_gen, .status = TH_JOB_QUEUED,
					.not_started = true};
				th_claim_clear(c);
			}
		}
		size_t want = stop ? 0 : claims_wanted(m, prefetch);
		m->taken += want;
		m->claiming += want;
		m->cycling = m->helper_on && !m->confirming && (nbatch + nrel || want);
		pthread_mutex_unlock(&m->mu);

		for (size_t i = 0; i < nbatch; i++)
			outs[i] = batch[i].out;
		size_t n = 0, recorded = 0, done = 0;
		int rc = 0;
		m->started = 0;
		if (m->confirming) {
			/* outcomes and claims wait for the claims made again */
			wait_us = 100000; /* look again soon, without spinning */
		} else if (nbatch + nrel || want) {
			rc = th_processor_cycle(p, outs, nbatch + nrel, &done, want, claims, &n,
						&wait_us, m->inflight ? start_claims : NULL, m);
			if (m->started && rc)
				m->confirming = true; /* the outcomes wait for those claims */
			else if (m->started)
				th_coord_notes_clear(th_processor_env(m->p)->coord, m->inflight);
		} else if (!confirm_round) {
			wait_us = -1; /* nothing to claim room for: a finished job kicks */
		}
		/* the batch's outcomes recorded go; those not recorded come again */
		recorded = done < nbatch ? done : nbatch;
		for (size_t i = 0; i < recorded; i++)
			th_run_result_clear(&batch[i].res);
		memmove(batch, batch + recorded, (nbatch - recorded) * sizeof(*batch));
		nbatch -= recorded;
		pthread_mutex_lock(&m->mu);
		m->taken -= recorded + want;
		m->claiming -= want;
		m->cycling = false;
		if (last) {
			pthread_mutex_unlock(&m->mu);
			break;
		}
		for (size_t i = 0; i < n; i++)
			m->ready[(m->rhead + m->rlen++) % m->cap] = claims[i];
		if (n)
			pthread_cond_broadcast(&m->work_cv);
		/* sleep only when this round neither claimed nor recorded anything and nothing
		 * waits to be recorded: the outcomes recorded made room that the claims of
		 * this round (sized before) did not use yet; stopping, until a worker or the
		 * helper is done (each kicks a sleeping dispatcher) */
		bool sleep = (confirm_round && m->confirming) ||
			     (!confirm_round && n + m->started == 0 && recorded == 0 &&
			      m->ndone == 0);
		m->sleeping = sleep;
		pthread_mutex_unlock(&m->mu);
		if (sleep) {
			th_processor_wait(p, wait_us);
			pthread_mutex_lock(&m->mu);
			m->sleeping = false;
			pthread_mutex_unlock(&m->mu);
		}
	}
	for (size_t i = 0; i < nbatch; i++) /* unrecorded: left to recovery */
		th_run_result_clear(&batch[i].res);
	free(batch);
	free(outs);
	free(claims);
	return NULL;
}

static void free_multi(struct multi *m)
{
	pthread_cond_destroy(&m->help_cv);
	pthread_cond_destroy(&m->work_cv);
	pthread_mutex_destroy(&m->mu);
	free(m->ready);
	free(m->done);
	free(m->workers);
	free(m->lost);
	/* still confirming: the claims never reached the store; the file stays, so the
	 * host that finds this process gone counts their attempts */
	th_coord_notes_close(th_processor_env(m->p)->coord, m->inflight, m->confirming);
	free(m);
}

void th_pool_stop(void *state)
{
	struct multi *m = state;
	pthread_join(m->dispatcher, NULL);
	/* the dispatcher leaves only when every worker is idle; wake those still waiting */
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_cond_broadcast(&m->work_cv);
	pthread_cond_broadcast(&m->help_cv);
	pthread_mutex_unlock(&m->mu);
	if (m->helper_on)
		pthread_join(m->helper, NULL);
	for (unsigned i = 0; i < m->nthreads; i++)
		pthread_join(m->workers[i].thread, NULL);
	free_multi(m);
}

int th_pool_start(th_processor *p, const th_executor *ex, unsigned n, void **state)
{
	struct multi *m = calloc(1, sizeof(*m));
	if (!m)
		return TH_ENOMEM;
	m->p = p;
	m->ex = ex;
	m->nthreads = n;
	m->cap = n + TH_PREFETCH_MAX;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->work_cv, NULL);
	pthread_cond_init(&m->help_cv, NULL);
	const th_proc_env *env = th_processor_env(p);
	if (env->data_dir &&
	    th_coord_notes_open(env->coord, &env->owner, m->cap, &m->inflight) != 0)
		th_log_warn("processor", "jobs start only once their claim is on disk");
	m->ready = calloc(m->cap, sizeof(*m->ready));
	m->lost = calloc(2 * m->cap, sizeof(*m->lost));
	m->done = calloc(m->cap, sizeof(*m->done));
	m->workers = calloc(m->nthreads, sizeof(*m->workers));
	if (!m->ready || !m->done || !m->workers || !m->lost) {
		free_multi(m);
		return TH_ENOMEM;
	}
	unsigned started = 0;
	for (; started < m->nthreads; started++) {
		m->workers[started].m = m;
		m->workers[started].index = started;
		if (pthread_create(&m->workers[started].thread, NULL, worker_loop,
				   &m->workers[started]))
			break;
	}
	/* a helper only where claims commit before their jobs start: a cycle whose started
	 * claims failed to commit is the dispatcher's to mend (confirm) */
	bool helper = !m->inflight && th_store_txns_at_once(env->store) > 1;
	if (started == m->nthreads && helper)
		m->helper_on = pthread_create(&m->helper, NULL, help_loop, m) == 0;
	if (started < m->nthreads || pthread_create(&m->dispatcher, NULL, dispatch_loop, m)) {
		pthread_mutex_lock(&m->mu);
		m->stopping = true;
		pthread_cond_broadcast(&m->work_cv);
		pthread_cond_broadcast(&m->help_cv);
		pthread_mutex_unlock(&m->mu);
		for (unsigned i = 0; i < started; i++)
			pthread_join(m->workers[i].thread, NULL);
		if (m->helper_on)
			pthread_join(m->helper, NULL);
		free_multi(m);
		return TH_ESYS;
	}
	*state = m;
	return 0;
}

size_t th_pool_threads(void *state, uint64_t *ids, size_t max)
{
	struct multi *m = state;
	size_t n = 0;
	for (unsigned i = 0; i < m->nthreads && n < max; i++) {
		uint64_t id = atomic_load(&m->workers[i].running);
		if (id)
			ids[n++] = id;
	}
	return n;
}

/* ---- the multi strategy: jobs run on the pool's own threads ---- */

struct thread_worker {
	th_processor *p;
	th_plugin_thread *t;
	th_slot *slot;
};

static int thread_open(th_processor *p, unsigned index, void **out)
{
	struct thread_worker *w = calloc(1, sizeof(*w));
	if (!w)
		return TH_ENOMEM;
	w->p = p;
	w->slot = th_processor_slot(p, index);
	int rc = th_plugin_thread_new(th_processor_env(p)->plugins, &w->t);
	if (rc) {
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static void thread_run(void *arg, const th_claim *c, th_outcome *o, th_run_result *r)
{
	struct thread_worker *w = arg;
	th_processor_run(w->p, w->slot, w->t, c, o, r);
}

static void thread_close(void *arg)
{
	struct thread_worker *w = arg;
	th_plugin_thread_free(w->t);
	free(w);
}

static const th_executor thread_executor = {thread_open, thread_run, thread_close};

static int multi_start(th_processor *p, void **state)
{
	return th_pool_start(p, &thread_executor, th_processor_args_of(p)->max_threads, state);
}

const th_strategy th_strategy_multi = {"multi", multi_start, th_pool_stop, th_pool_threads,
				       NULL};
