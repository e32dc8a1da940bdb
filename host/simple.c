/* The simple processor: one thread runs one job at a time, strictly in queue order.
 * Recording a job's outcome and claiming the next share one transaction. */
#include "processor.h"

#include <pthread.h>
#include <stdlib.h>

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
	const th_proc_env *env = th_processor_env(p);
	th_slot *slot = th_processor_slot(p, 0);
	th_plugin_thread *t;
	if (th_plugin_thread_new(env->plugins, &t))
		return NULL;
	th_outcome out;
	th_run_result res = {0};
	size_t nout = 0;
	for (;;) {
		bool stop = th_processor_stopping(p);
		th_claim c;
		size_t n = 0;
		int64_t wait_us;
		int rc = th_processor_cycle(p, &out, nout, stop ? 0 : 1, &c, &n, &wait_us);
		if (rc == 0 && nout) {
			th_run_result_clear(&res);
			nout = 0;
		}
		if (stop && (nout == 0 || rc)) /* an unrecorded outcome is left to recovery */
			break;
		if (n == 1) {
			atomic_store(&s->running, c.job.id);
			th_processor_run(p, slot, t, &c, &out, &res);
			atomic_store(&s->running, 0);
			th_claim_clear(&c);
			nout = 1;
			continue;
		}
		th_processor_wait(p, wait_us);
	}
	th_run_result_clear(&res);
	th_plugin_thread_free(t);
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
