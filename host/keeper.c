/* One keeper per host: lease renewal, recovery, in-flight notes and retention once per
 * interval for the whole host; cancels and timeouts for every attached processor. */
#include "keeper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

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
	int64_t last_renew = now, last_scan = now, last_retain = 0;
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
		if (now - last_renew >= renew_us) {
			int rc = th_store_renew(k->env.store, &k->env.owner, k->env.lease_us, NULL);
			check_fatal(k, rc);
			if (rc)
				th_log_error("processor", "renewing leases failed: %s", th_strerror(rc));
			else
				last_renew = now;
			if (k->env.beat)
				k->env.beat(k->env.beat_ud);
		}
		recover(k);
		if (k->env.keep_finished_us && (!last_retain || now - last_retain >= retain_us)) {
			last_retain = now;
			retain(k);
		}
		/* deadlines set since the last look */
		deadline = check_deadlines(k, th_clock_mono_us());
	}
	return NULL;
}

int th_keeper_start(th_keeper **out, const th_keeper_env *env)
{
	*out = NULL;
	th_keeper *k = calloc(1, sizeof(*k));
	if (!k)
		return TH_ENOMEM;
	k->env = *env;
	pthread_mutex_init(&k->mu, NULL);
	recover(k); /* jobs left by hosts that died while none ran */
	if (pthread_create(&k->thread, NULL, keep, k)) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return TH_ESYS;
	}
	*out = k;
	return 0;
}

void th_keeper_stop(th_keeper *k)
{
	if (!k)
		return;
	atomic_store(&k->stop, true);
	th_coord_notify(k->env.coord, TH_WAKE_CANCEL);
	pthread_join(k->thread, NULL);
	pthread_mutex_destroy(&k->mu);
	free(k);
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
