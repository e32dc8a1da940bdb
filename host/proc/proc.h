/* Processors: the loops that claim queued jobs and run them, one strategy per file
 * (proc_simple.c, proc_multi.c, proc_process.c). This header is the common part: start/stop, the wake-up event
 * every strategy sleeps on, and what a strategy provides. */
#ifndef TH_PROCESSOR_H
#define TH_PROCESSOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"
#include "metrics.h"
#include "plugin/plugin.h"
#include "proc/proc_run.h"
#include "service.h"
#include "store/store.h"

typedef struct th_processor th_processor;

/* What a processor works with; owned by the service, outlives the processor. */
typedef struct th_proc_env {
	th_store *store;
	th_plugins *plugins;
	th_coord *coord; /* wake-ups, progress, in-flight notes */
	th_owner owner;
	size_t max_result;
	const char *queue; /* NULL: the default queue */
	int64_t lease_us;  /* claims are renewed while held; lost after this long */
	/* renews the leases; while they lapsed (th_keeper_lapsed) nothing is claimed.
	 * NULL: claims are never held back */
	const struct th_keeper *keeper;
	const char *data_dir;
	/* for the process strategy's worker processes */
	const char *runner;     /* the taskhost-runner program */
	const char *plugin_dir;
	bool allow_insecure_plugins;
	th_metrics *metrics; /* NULL: none counted */
} th_proc_env;

/* A strategy: start its threads, stop them (waiting for running jobs), list them, and
 * take up plugins added since start (NULL when plugins load in this process). */
typedef struct th_strategy {
	const char *name;
	int (*start)(th_processor *p, void **state);
	void (*stop)(void *state);
	size_t (*threads)(void *state, uint64_t *ids, size_t max);
	void (*reload)(void *state);
} th_strategy;

extern const th_strategy th_strategy_simple;
extern const th_strategy th_strategy_multi;
extern const th_strategy th_strategy_process;

/* NULL for an unknown name. */
const th_strategy *th_strategy_find(const char *name);
/* TH_EINVAL with a message for arguments the strategy cannot use. */
int th_processor_check_args(const th_processor_args *args);

int th_processor_start(th_processor **out, const th_proc_env *env, const th_strategy *s,
		       const th_processor_args *args);
/* Stops claiming, waits for running jobs, releases claimed jobs that did not start.
 * The processor stays readable (threads, interrupt) until th_processor_free. */
void th_processor_stop(th_processor *p);
void th_processor_free(th_processor *p);
/* Stops claiming and asks the running jobs to stop (th_cancelled becomes true for them):
 * the host is going away. Jobs that then end without success go back to the queue. */
void th_processor_interrupt(th_processor *p);
const atomic_bool *th_processor_interrupted(th_processor *p);
size_t th_processor_threads(th_processor *p, uint64_t *ids, size_t max);
/* Lets the strategy take up plugins added since start; false when it has nothing to do
 * for it (plugins load in this process, and the registry already did). */
bool th_processor_reload(th_processor *p);

/* ---- for strategies ---- */

const th_proc_env *th_processor_env(th_processor *p);

/* ---- for the keeper ---- */

/* Running jobs whose deadline passed are asked to stop; returns the earliest deadline
 * still ahead (0: none). */
int64_t th_processor_check_deadlines(th_processor *p, int64_t now);
/* A cancel was requested somewhere: passes it on to the running jobs it is for. */
void th_processor_check_cancels(th_processor *p);
const th_processor_args *th_processor_args_of(th_processor *p);
/* What the strategy's start stored through its `state` argument. */
void *th_processor_strategy_state(th_processor *p);
bool th_processor_stopping(th_processor *p);
/* Wakes the strategy's wait (from its worker threads, or on stop). */
void th_processor_kick(th_processor *p);
/* Sleeps until a kick, a job added anywhere on the data dir, or timeout_us. Events
 * that happened since the last wait make it return at once. */
void th_processor_wait(th_processor *p, int64_t timeout_us);

/* How a worker of the pool (multi.c) runs a claimed job: open and close run on the
 * worker's thread, around all the jobs it runs. */
typedef struct th_executor {
	int (*open)(th_processor *p, unsigned index, void **worker);
	void (*run)(void *worker, const th_claim *c, th_outcome *o, th_run_result *r);
	void (*close)(void *worker);
} th_executor;

/* A pool of n workers fed by a dispatcher; the multi and process strategies. */
int th_pool_start(th_processor *p, const th_executor *ex, unsigned n, void **state);
void th_pool_stop(void *state);
size_t th_pool_threads(void *state, uint64_t *ids, size_t max);

/* One store cycle for the strategy: record outcomes, queue scheduled jobs that are due,
 * claim up to max (none while the host's leases lapsed: th_keeper_lapsed). Logs
 * failures; on failure nothing is claimed, and *nrecorded of the outcomes, from the
 * first, were recorded (one at a time, after the batch failed): the caller keeps the
 * rest for the next cycle (all are recorded when it returns 0). *wait_us (may be NULL)
 * is how long the strategy may sleep before the next cycle unless woken: wait_time, or
 * less when a scheduled job is due sooner.
 * With `start` (may be NULL), the claims go to start(ud, claims, n) before they commit
 * (see th_cycle.start), so that their runs overlap the commit's fsync; *nclaimed is then
 * 0. Workers fed by start run jobs whose claim is exclusive but not yet durable: a
 * crash before the commit leaves them queued, as a crash during the run would. If the
 * commit fails after start, the outcomes are not recorded either, and the caller must
 * make the same claims again (th_store_confirm) before its next cycle. */
int th_processor_cycle(th_processor *p, const th_outcome *outs, size_t nout,
		       size_t *nrecorded, size_t max, th_claim *claims, size_t *nclaimed,
		       int64_t *wait_us, void (*start)(void *ud, th_claim *claims, size_t n),
		       void *ud);

/* Claiming ahead: a processor claims more jobs than it has idle workers when its jobs
 * are short, so that many jobs share one commit; as many as its workers finish in a
 * few milliseconds, and none ahead while runs take longer than that (so that one host
 * does not hoard long jobs another host could run). */
#define TH_PREFETCH_MAX 1024
/* Feeds the average run time; how many jobs to claim beyond idle workers. */
void th_processor_note_run(th_processor *p, int64_t took_us);
/* A run of claim c that took took_us and ended in outcome o: note_run, and counted in
 * the metrics by what the outcome does to the job (lifecycle.h). */
void th_processor_note_outcome(th_processor *p, const th_claim *c, const th_outcome *o,
			       int64_t took_us);
size_t th_processor_prefetch(th_processor *p, unsigned workers);

/* A job one worker runs: the keeper passes cancel requests and timeouts on to it. */
typedef struct th_slot {
	_Atomic uint64_t id;     /* 0: idle */
	atomic_bool cancel;      /* th_cancelled for the job */
	atomic_bool timed_out;
	_Atomic int64_t deadline; /* monotonic microseconds; 0: none */
	double timeout;          /* seconds, for messages */
} th_slot;

/* The slot of worker `index` (one per worker: max_threads, or max_workers). */
th_slot *th_processor_slot(th_processor *p, unsigned index);
/* Marks the slot busy with job: its timeout (the job's, else job_timeout) starts now. */
void th_slot_begin(th_processor *p, th_slot *s, const th_job *job);
void th_slot_end(th_slot *s);
/* Runs a claim on this thread through its slot, filling the outcome: a timeout turns
 * a failed run into "timed out after N s". */
void th_processor_run(th_processor *p, th_slot *slot, th_plugin_thread *t, const th_claim *c,
		      th_outcome *o, th_run_result *r);

#endif
