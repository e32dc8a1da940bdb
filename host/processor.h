/* Processors: the loops that claim queued jobs and run them, one strategy per file
 * (simple.c, multi.c). This header is the common part: start/stop, the wake-up event
 * every strategy sleeps on, and what a strategy provides. */
#ifndef TH_PROCESSOR_H
#define TH_PROCESSOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugins.h"
#include "progress.h"
#include "service.h"
#include "store.h"
#include "wake.h"

typedef struct th_processor th_processor;

/* What a processor works with; owned by the service, outlives the processor. */
typedef struct th_proc_env {
	th_store *store;
	th_plugins *plugins;
	th_wake *wake;
	th_progress_map *progress;
	th_owner owner;
	size_t max_result;
	const char *queue; /* NULL: the default queue */
	int64_t lease_us;  /* claims are renewed while held; lost after this long */
} th_proc_env;

/* A strategy: start its threads, stop them (waiting for running jobs), list them. */
typedef struct th_strategy {
	const char *name;
	int (*start)(th_processor *p, void **state);
	void (*stop)(void *state);
	size_t (*threads)(void *state, uint64_t *ids, size_t max);
} th_strategy;

extern const th_strategy th_strategy_simple;
extern const th_strategy th_strategy_multi;

/* NULL for an unknown name. */
const th_strategy *th_strategy_find(const char *name);
/* TH_EINVAL with a message for arguments the strategy cannot use. */
int th_processor_check_args(const th_processor_args *args);

int th_processor_start(th_processor **out, const th_proc_env *env, const th_strategy *s,
		       const th_processor_args *args);
/* Stops claiming, waits for running jobs, releases claimed jobs that did not start. */
void th_processor_stop(th_processor *p);
size_t th_processor_threads(th_processor *p, uint64_t *ids, size_t max);

/* ---- for strategies ---- */

const th_proc_env *th_processor_env(th_processor *p);
const th_processor_args *th_processor_args_of(th_processor *p);
bool th_processor_stopping(th_processor *p);
/* Wakes the strategy's wait (from its worker threads, or on stop). */
void th_processor_kick(th_processor *p);
/* Sleeps until a kick, a job added anywhere on the data dir, or timeout_us. Events
 * that happened since the last wait make it return at once. */
void th_processor_wait(th_processor *p, int64_t timeout_us);
/* The file descriptor th_processor_wait polls, for strategies that poll more. */
int th_processor_event_fd(th_processor *p);
/* Drains the event after a poll saw it readable. */
void th_processor_event_clear(th_processor *p);

/* One store cycle for the strategy: record outcomes, claim up to max. Logs failures;
 * on failure nothing is recorded and nothing claimed. */
int th_processor_cycle(th_processor *p, const th_outcome *outs, size_t nout, size_t max,
		       th_claim *claims, size_t *nclaimed);

#endif
