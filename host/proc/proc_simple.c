/* The simple processor: one thread runs one job at a time, strictly in queue order.
 * Recording outcomes and claiming the next jobs share one transaction. */
#include "proc/proc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

struct simple {
	th_processor *p;
	pthread_t thread;
	_Atomic uint64_t running; /* the job being run, 0 when idle */
};

static void *simple_loop(void *arg)
{
	struct simple *s = arg;
	th_processor *p = s->p;
	pthread_setname_np(pthread_self(), "th-simple");
	const th_proc_env *env = th_processor_env(p);
	th_slot *slot = th_processor_slot(p, 0);
	size_t cap = 1 + TH_PREFETCH_MAX;
	th_plugin_thread *t = NULL;
	th_claim *claims = calloc(cap, sizeof(*claims));
	th_outcome *outs = calloc(cap, sizeof(*outs));
	th_run_result *res = calloc(cap, sizeof(*res));
	if (!claims || !outs || !res || th_plugin_thread_new(env->plugins, &t)) {
		th_log_error("processor", "out of memory: processor not running");
		goto out;
	}
	size_t nout = 0;
	for (;;) {
		/* record what ran and claim the next ones, in order, in one transaction: one
		 * job, or more when jobs are short */
		bool stop = th_processor_stopping(p);
		size_t want = stop ? 0 : 1 + th_processor_prefetch(p, 1), n = 0;
		int64_t wait_us;
		size_t done;
		int rc = th_processor_cycle(p, outs, nout, &done, want, claims, &n, &wait_us, NULL,
					    NULL);
		for (size_t i = 0; i < done; i++)
			th_run_result_clear(&res[i]);
		memmove(outs, outs + done, (nout - done) * sizeof(*outs));
		memmove(res, res + done, (nout - done) * sizeof(*res));
		nout -= done;
		if (stop && (nout == 0 || rc)) /* an unrecorded outcome is left to recovery */
			break;
		for (size_t i = 0; i < n; i++) {
			if (th_processor_stopping(p)) { /* not started: back to the queue */
				outs[nout] = (th_outcome){.id = claims[i].job.id,
							  .gen = claims[i].job.claim_gen,
							  .status = TH_JOB_QUEUED, .not_started = true};
				memset(&res[nout++], 0, sizeof(*res));
			} else {
				atomic_store(&s->running, claims[i].job.id);
				th_processor_run(p, slot, t, &claims[i], &outs[nout], &res[nout]);
				atomic_store(&s->running, 0);
				nout++;
			}
			th_claim_clear(&claims[i]);
		}
		if (n == 0)
			th_processor_wait(p, wait_us);
	}
	for (size_t i = 0; i < nout; i++)
		th_run_result_clear(&res[i]);
out:
	th_plugin_thread_free(t);
	free(claims);
	free(outs);
	free(res);
	return NULL;
}

static int simple_start(th_processor *p, void **state)
{
	struct simple *s = calloc(1, sizeof(*s));
	if (!s)
		return TH_ENOMEM;
	s->p = p;
	if (pthread_create(&s->thread, NULL, simple_loop, s)) {
		free(s);
		return TH_ESYS;
	}
	*state = s;
	return 0;
}

static void simple_stop(void *state)
{
	struct simple *s = state;
	pthread_join(s->thread, NULL);
	free(s);
}

static size_t simple_threads(void *state, uint64_t *ids, size_t max)
{
	struct simple *s = state;
	uint64_t id = atomic_load(&s->running);
	if (!id || max == 0)
		return 0;
	ids[0] = id;
	return 1;
}

const th_strategy th_strategy_simple = {"simple", simple_start, simple_stop, simple_threads,
					NULL};
