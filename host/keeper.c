/* One keeper per host: lease renewal, recovery, in-flight notes and retention once per
 * interval for the whole host; cancels and timeouts for every attached processor. */
#include "keeper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "service.h"

#define MAX_ATTACHED (TH_QUEUES_MAX + 1)

struct th_keeper {
	th_keeper_env env;
	pthread_t thread;
	atomic_bool stop;
	bool fatal_told;
	_Atomic int64_t renewed_us; /* monotonic: when the last renewal that worked began */
	bool renew_failed;          /* the last renewal failed (logged) */
	atomic_bool lapse_told;     /* the lapse was logged and has not ended */
	/* the lease watcher logs a lapse as it begins, while a store call may block the
	 * keeper's thread (a connection being made again, a lost COMMIT asked about) */
	pthread_t watcher;
	pthread_mutex_t watch_mu; /* with watch_cv: the watcher's sleep, ended on stop */
	pthread_cond_t watch_cv;
	pthread_mutex_t mu; /* guards procs */
	th_processor *procs[MAX_ATTACHED];
	size_t nprocs;
};

/* th_coord_notes_collect's callback: counts the attempts of jobs a dead host started. */
static int recover_started(void *ud, const uint64_t *pairs, size_t n)
{
	th_keeper *k = ud;
	size_t done = 0;
	int rc = th_store_recover_started(k->env.store, pairs, n, &done);
	if (rc)
		th_log_error("processor", "counting the attempts of a dead host failed: %s",
			     th_strerror(rc));
	else if (done)
		th_log_warn("processor", "counted the attempt of %zu job%s a dead host had "
			    "started", done, done == 1 ? "" : "s");
	return rc;
}

static void kick_all(th_keeper *k)
{
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nprocs; i++)
		th_processor_kick(k->procs[i]);
	pthread_mutex_unlock(&k->mu);
}

/* A store that refuses every write from now on is the host's end, not a passing error. */
static void check_fatal(th_keeper *k, int rc)
{
	if ((rc != TH_ELOCKLOST && rc != TH_EDAMAGED) || k->fatal_told)
		return;
	k->fatal_told = true;
	if (k->env.fatal)
		k->env.fatal(k->env.fatal_ud, rc);
}

int th_keeper_recover(th_store *store, const th_owner *self, th_coord *coord,
		      th_metrics *metrics, size_t *n)
{
	th_recovered by = {0};
	int rc = th_store_recover(store, self, th_coord_alive_cb, coord, n, &by);
	for (size_t i = 0; rc == 0 && i < by.ngroups; i++)
		th_metrics_job(metrics, TH_METRIC_RECOVERED, by.groups[i].task,
			       by.groups[i].queue, by.groups[i].n);
	th_recovered_clear(&by);
	return rc;
}

bool th_keeper_lapsed(const th_keeper *k)
{
	return th_clock_mono_us() - atomic_load(&k->renewed_us) > k->env.lease_us;
}

/* A lapse is logged once as it begins (by the watcher or after a renewal that failed)
 * and once as it ends. */
static void tell_lapse(th_keeper *k)
{
	if (th_keeper_lapsed(k) && !atomic_exchange(&k->lapse_told, true))
		th_log_warn("processor", "leases not renewed for lease_time (%.3g s): this host "
			    "claims no jobs until they are renewed; the jobs it runs go on, and "
			    "their outcomes are recorded unless another host took them back",
			    (double)k->env.lease_us / 1e6);
}

/* After a renewal that worked from `renewed` on (monotonic), or failed (0). The end of
 * a lapse is logged before claims resume, and kicks the processors, which claimed
 * nothing meanwhile. */
static void renewal_done(th_keeper *k, int64_t renewed)
{
	if (!renewed) {
		tell_lapse(k);
		return;
	}
	bool lapsed = th_clock_mono_us() - renewed > k->env.lease_us; /* it took that long */
	if (!lapsed && atomic_load(&k->lapse_told))
		th_log_info("processor", "leases renewed: claiming again");
	atomic_store(&k->renewed_us, renewed);
	if (!lapsed && atomic_exchange(&k->lapse_told, false))
		kick_all(k);
}

static void *watch_lease(void *arg)
{
	th_keeper *k = arg;
	pthread_setname_np(pthread_self(), "th-lease");
	pthread_mutex_lock(&k->watch_mu);
	while (!atomic_load(&k->stop)) {
		tell_lapse(k);
		/* the next look: as the last renewal's lease ends, or a lease from now */
		int64_t now = th_clock_mono_us();
		int64_t next = atomic_load(&k->renewed_us) + k->env.lease_us + 1;
		if (next <= now)
			next = now + k->env.lease_us;
		struct timespec until = {(time_t)(next / 1000000), (long)(next % 1000000) * 1000};
		pthread_cond_timedwait(&k->watch_cv, &k->watch_mu, &until);
	}
	pthread_mutex_unlock(&k->watch_mu);
	return NULL;
}

/* Takes back jobs of dead or expired owners, logging what it did. */
static void recover(th_keeper *k)
{
	size_t n = 0;
	int rc = th_keeper_recover(k->env.store, &k->env.owner, k->env.coord, k->env.metrics,
				   &n);
	check_fatal(k, rc);
	if (rc)
		th_log_error("processor", "recovering jobs of dead hosts failed: %s", th_strerror(rc));
	else if (n)
		th_log_warn("processor", "recovered %zu job%s of hosts that died or lost their lease",
			    n, n == 1 ? "" : "s");
	if (n)
		kick_all(k);
	th_coord_notes_collect(k->env.coord, &k->env.owner, recover_started, k);
}

/* Finished jobs older than keep_finished go. */
static void retain(th_keeper *k)
{
	uint64_t removed = 0;
	int rc = th_store_clean(k->env.store, th_clock_now_us() - k->env.keep_finished_us,
				&removed);
	if (rc)
		th_log_error("processor", "removing old finished jobs failed: %s", th_strerror(rc));
	else if (removed)
		th_log_info("processor", "removed %llu finished job%s older than keep_finished",
			    (unsigned long long)removed, removed == 1 ? "" : "s");
}

/* Timeouts of every processor's running jobs; returns the earliest deadline ahead. */
static int64_t check_deadlines(th_keeper *k, int64_t now)
{
	int64_t next = 0;
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nprocs; i++) {
		int64_t d = th_processor_check_deadlines(k->procs[i], now);
		if (d && (!next || d < next))
			next = d;
	}
	pthread_mutex_unlock(&k->mu);
	return next;
}

static void check_cancels(th_keeper *k)
{
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nprocs; i++)
		th_processor_check_cancels(k->procs[i]);
	pthread_mutex_unlock(&k->mu);
}

/* Sleeps on the cancel wake-up, so a cancel reaches a running job at once. */
static void *keep(void *arg)
{
	th_keeper *k = arg;
	pthread_setname_np(pthread_self(), "th-keep");
	int64_t scan_us = k->env.lease_us / 3 < 1000000 ? k->env.lease_us / 3 : 1000000;
	int64_t renew_us = k->env.lease_us / 3, now = th_clock_mono_us();
	int64_t last_scan = now, last_retain = 0;
	int64_t retain_us = k->env.keep_finished_us / 10 < 60000000 ? k->env.keep_finished_us / 10
								    : 60000000;
	uint32_t seq = th_coord_seq(k->env.coord, TH_WAKE_CANCEL);
	int64_t deadline = 0;
	while (!atomic_load(&k->stop)) {
		now = th_clock_mono_us();
		int64_t wait = last_scan + scan_us - now;
		if (deadline && deadline - now < wait)
			wait = deadline - now;
		if (wait > 0)
			th_coord_wait(k->env.coord, TH_WAKE_CANCEL, seq, wait < 1000 ? 1000 : wait);
		if (atomic_load(&k->stop))
			break;
		uint32_t s = th_coord_seq(k->env.coord, TH_WAKE_CANCEL);
		if (s != seq) {
			seq = s;
			check_cancels(k);
		}
		now = th_clock_mono_us();
		deadline = check_deadlines(k, now);
		if (now - last_scan < scan_us)
			continue;
		last_scan = now;
		if (now - atomic_load(&k->renewed_us) >= renew_us) {
			/* the leases renewed run from after this moment */
			int64_t began = th_clock_mono_us();
			int rc = th_store_renew(k->env.store, &k->env.owner, k->env.lease_us, NULL);
			check_fatal(k, rc);
			if (rc && !k->renew_failed) /* once until a renewal works */
				th_log_error("processor", "renewing leases failed: %s", th_strerror(rc));
			k->renew_failed = rc != 0;
			renewal_done(k, rc ? 0 : began);
			if (k->env.beat)
				k->env.beat(k->env.beat_ud);
		}
		recover(k);
		/* a failure costs nothing but a later try (a read folds as well), and a lost
		 * connection is the store's to report */
		(void)th_store_tidy(k->env.store);
		if (k->env.keep_finished_us && (!last_retain || now - last_retain >= retain_us)) {
			last_retain = now;
			retain(k);
		}
		/* deadlines set since the last look */
		deadline = check_deadlines(k, th_clock_mono_us());
	}
	return NULL;
}

static void free_keeper(th_keeper *k)
{
	pthread_cond_destroy(&k->watch_cv);
	pthread_mutex_destroy(&k->watch_mu);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* Ends the keeper's thread (and tells the watcher, which looks at `stop`). */
static void stop_keep(th_keeper *k)
{
	atomic_store(&k->stop, true);
	th_coord_notify(k->env.coord, TH_WAKE_CANCEL);
	pthread_join(k->thread, NULL);
}

int th_keeper_start(th_keeper **out, const th_keeper_env *env)
{
	*out = NULL;
	th_keeper *k = calloc(1, sizeof(*k));
	if (!k)
		return TH_ENOMEM;
	k->env = *env;
	atomic_init(&k->renewed_us, th_clock_mono_us()); /* no claims held yet */
	pthread_mutex_init(&k->mu, NULL);
	pthread_mutex_init(&k->watch_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of renewed_us */
	pthread_cond_init(&k->watch_cv, &ca);
	pthread_condattr_destroy(&ca);
	recover(k); /* jobs left by hosts that died while none ran */
	if (pthread_create(&k->thread, NULL, keep, k)) {
		free_keeper(k);
		return TH_ESYS;
	}
	if (pthread_create(&k->watcher, NULL, watch_lease, k)) {
		stop_keep(k);
		free_keeper(k);
		return TH_ESYS;
	}
	*out = k;
	return 0;
}

void th_keeper_stop(th_keeper *k)
{
	if (!k)
		return;
	stop_keep(k);
	pthread_mutex_lock(&k->watch_mu);
	pthread_cond_signal(&k->watch_cv);
	pthread_mutex_unlock(&k->watch_mu);
	pthread_join(k->watcher, NULL);
	free_keeper(k);
}

int th_keeper_attach(th_keeper *k, th_processor *p)
{
	pthread_mutex_lock(&k->mu);
	int rc = k->nprocs < MAX_ATTACHED ? 0 : TH_EINVAL;
	if (rc == 0)
		k->procs[k->nprocs++] = p;
	pthread_mutex_unlock(&k->mu);
	return rc;
}

void th_keeper_detach(th_keeper *k, th_processor *p)
{
	pthread_mutex_lock(&k->mu);
	for (size_t i = 0; i < k->nprocs; i++) {
		if (k->procs[i] == p) {
			k->procs[i] = k->procs[--k->nprocs];
			break;
		}
	}
	pthread_mutex_unlock(&k->mu);
}
