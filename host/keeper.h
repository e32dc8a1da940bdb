/* The keeper: one thread per host, whatever the number of queues, that renews the
 * leases of the jobs this host holds, takes back the jobs of hosts that are gone
 * (claims and in-flight notes), removes old finished jobs, and passes cancel requests
 * and timeouts on to the running jobs of every processor attached to it. */
#ifndef TH_KEEPER_H
#define TH_KEEPER_H

#include <stdbool.h>
#include <stdint.h>

#include "coord.h"
#include "metrics.h"
#include "owner.h"
#include "proc/proc.h"
#include "store/store.h"

typedef struct th_keeper th_keeper;

typedef struct th_keeper_env {
	th_store *store;
	th_coord *coord;
	th_owner owner;
	int64_t lease_us;         /* leases are renewed every third of this */
	int64_t keep_finished_us; /* finished jobs older than this are removed; 0: kept */
	/* called once when the store refuses every write from now on (TH_ELOCKLOST,
	 * TH_EDAMAGED): its files were removed or its map faulted; NULL: only logged */
	void (*fatal)(void *ud, int rc);
	void *fatal_ud;
	th_metrics *metrics;      /* NULL: none counted */
	/* called at every lease renewal, from the keeper's thread: the host's heartbeat */
	void (*beat)(void *ud);
	void *beat_ud;
} th_keeper_env;

/* Takes back the jobs of owners that are gone (th_store_recover) and counts them in
 * metrics (may be NULL) by task and queue: the keeper's pass, and th_service_recover's. */
int th_keeper_recover(th_store *store, const th_owner *self, th_coord *coord,
		      th_metrics *metrics, size_t *n);

/* Whether the host's leases lapsed: no renewal worked for lease_time (the store could
 * not be reached), so other hosts may take back its jobs. Its processors claim nothing
 * meanwhile; the lapse ends with the next renewal that works. Safe from any thread. */
bool th_keeper_lapsed(const th_keeper *k);

/* Takes back what hosts that died while none ran left (before any claim of this host),
 * then starts the thread. */
int th_keeper_start(th_keeper **out, const th_keeper_env *env);
/* Stops the thread; the processors attached must be stopped already. NULL is fine. */
void th_keeper_stop(th_keeper *k);

/* The keeper passes cancels and timeouts to p's running jobs, and kicks p when jobs
 * come back, until detached. At most TH_QUEUES_MAX + 1 at once (TH_EINVAL). */
int th_keeper_attach(th_keeper *k, th_processor *p);
void th_keeper_detach(th_keeper *k, th_processor *p);

#endif
