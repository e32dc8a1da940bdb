/* Running one job on the calling thread: the per-run context, the host function table
 * plugins call through, and what the run produced. */
#ifndef TH_RUN_H
#define TH_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "plugin/plugin.h"
#include "coord.h"
#include "store/store.h"
#include "taskhost.h"

/* The table every plugin gets at init. */
const th_host_api *th_run_api(void);

typedef struct th_run_opts {
	const atomic_bool *cancel;   /* the job is cancelled; may be NULL */
	const atomic_bool *stopping; /* the host is going away: th_cancelled too, and a run
					that then fails goes back to the queue; may be NULL */
	const atomic_bool *timed_out; /* set with cancel when the run's time was up: a failed
					 run then says "timed out after <timeout> s" */
	double timeout;
	size_t max_result;         /* larger results are refused; 0: no limit */
	th_coord *coord; /* where th_progress() reports go; may be NULL */
	void (*heartbeat)(void *ud, uint64_t job_id);
	void *ud;
} th_run_opts;

typedef struct th_run_result {
	th_ret ret;        /* what run returned; TH_FAIL when it could not run */
	void *result;      /* malloc'd, may be NULL */
	size_t result_len;
	char *error;       /* malloc'd message, set when ret is not TH_OK */
	int64_t took_us;
	bool final;        /* a failure running again cannot mend (a result too large) */
} th_run_result;

/* Runs task e for job (whose bytes are input) on this thread, with thread state t. */
void th_run_job(th_plugin_thread *t, const th_task_entry *e, const th_job *job,
		const void *input, size_t len, const th_run_opts *opts, th_run_result *out);
void th_run_result_clear(th_run_result *r);

/* Runs a claimed job with the task its plugin registry provides, logs how it went, and
 * fills *o with the outcome to record (pointing into *r, which the caller clears after
 * recording). A task no plugin provides any more ends the job in error. */
void th_run_claim(th_plugin_thread *t, th_plugins *reg, const th_claim *c,
		  const th_run_opts *opts, th_outcome *o, th_run_result *r);

#endif
