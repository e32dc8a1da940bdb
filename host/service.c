/* The task service: ties the store, the plugin registry, wake-ups and the processor
 * together behind the API the CLI and embedders use. */
#include "service.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "coord.h"
#include "keeper.h"
#include "lifecycle.h"
#include "log.h"
#include "metrics.h"
#include "plugin/plugin.h"
#include "proc/proc.h"
#include "proc/proc_run.h"
#include "service_test.h"
#include "service_writes.h"
#include "store/store.h"
#include "store/store_lmdb.h"
#include "store/store_pg.h"

#define MAX_QUEUES (1 + TH_QUEUES_MAX) /* the default queue and the named ones */

/* A queue with its processor. */
struct qproc {
	char name[TH_QUEUE_NAME_MAX + 1]; /* "" is the default queue */
	const th_strategy *strategy;
	th_processor_args args;
	th_processor *proc;
	th_processor *stopping; /* being stopped: still lists its threads, can be interrupted */
};

struct th_service {
	th_store *store;
	th_plugins *plugins;
	th_coord *coord; /* wake-ups, progress, in-flight notes: the store's */
	th_metrics *metrics; /* what this host counts since it started */
	th_owner owner;
	char *plugin_dir;
	char *data_dir;
	char *runner;
	bool inspect_only;
	bool isolate;
	bool allow_insecure_plugins;
	size_t max_input, max_result;
	int64_t lease_us;
	uint32_t max_attempts;
	int64_t keep_finished_us;
	pthread_mutex_t proc_mu; /* guards the queues */
	struct qproc queues[MAX_QUEUES]; /* [0] is the default queue */
	size_t nqueues;
	pthread_mutex_t stop_mu; /* one stop at a time, and close waits for it */
	th_keeper *keeper;       /* while processing: one for every queue */
	int64_t started_us;      /* when processing started, for the hosts' records */
	char host_name[TH_HOST_NAME_MAX + 1]; /* this machine's, read when processing started */
	void (*on_fatal)(void *ud, int rc);
	void *on_fatal_ud;
	atomic_int fatal;        /* what made the store unusable; 0: nothing */
	/* jobs claimed through th_service_claim_next and not yet run: only these may be
	 * run by id, and close puts them back in the queue */
	pthread_mutex_t claims_mu;
	th_job *claimed;
	size_t nclaimed, cap_claimed;
};

/* The worker program of the process strategy: as given, else next to this program's
 * executable (an uninstalled build), else where it is installed. */
static char *find_runner(const char *given)
{
	if (given)
		return strdup(given);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			strcpy(slash + 1, "taskhost-runner");
			if (access(exe, X_OK) == 0)
				return strdup(exe);
		}
	}
	return strdup(TH_RUNNER_PATH);
}

int th_service_open(th_service **out, const th_service_opts *opts)
{
	*out = NULL;
	if (!opts || !opts->data_dir)
		return TH_EINVAL;
	th_service *svc = calloc(1, sizeof(*svc));
	if (!svc)
		return TH_ENOMEM;
	pthread_mutex_init(&svc->proc_mu, NULL);
	pthread_mutex_init(&svc->stop_mu, NULL);
	pthread_mutex_init(&svc->claims_mu, NULL);
	svc->queues[0].strategy = &th_strategy_simple;
	svc->queues[0].args = (th_processor_args)TH_PROCESSOR_ARGS_DEFAULT;
	svc->nqueues = 1;
	svc->keep_finished_us = (int64_t)(opts->keep_finished * 1e6);
	svc->inspect_only = opts->inspect_only;
	svc->isolate = opts->isolate_plugins;
	svc->allow_insecure_plugins = opts->allow_insecure_plugins;
	svc->on_fatal = opts->on_fatal;
	svc->on_fatal_ud = opts->on_fatal_ud;
	svc->max_input = opts->max_input ? opts->max_input : TH_DEFAULT_MAX_INPUT;
	svc->max_result = opts->max_result ? opts->max_result : TH_DEFAULT_MAX_RESULT;
	th_owner_self(&svc->owner);
	svc->max_attempts = opts->max_attempts ? opts->max_attempts : TH_DEFAULT_MAX_ATTEMPTS;
	svc->lease_us = opts->lease_time > 0 ? (int64_t)(opts->lease_time * 1e6) : TH_DEFAULT_LEASE_TIME * 1000000LL;
	th_store_opts so = {opts->durability, opts->data_dir_group, opts->lmdb, opts->migrate,
			    svc->lease_us};
	int rc;
	if ((rc = th_metrics_new(&svc->metrics)) ||
	    (rc = th_store_open(&svc->store, opts->store ? opts->store : opts->data_dir, &so)) ||
	    (rc = th_store_coord_open(svc->store, &svc->coord)) ||
	    (rc = th_plugins_new(&svc->plugins,
				 opts->inspect_only ? TH_PLUGINS_INSPECT : TH_PLUGINS_RUN,
				 th_run_api())))
		goto fail;
	th_plugins_allow_insecure_plugins(svc->plugins, opts->allow_insecure_plugins);
	if (!(svc->data_dir = strdup(opts->data_dir)) ||
	    !(svc->runner = find_runner(opts->runner)) ||
	    (opts->plugin_dir && !(svc->plugin_dir = strdup(opts->plugin_dir)))) {
		rc = TH_ENOMEM;
		goto fail;
	}
	if (svc->isolate) {
		if (!svc->plugin_dir) {
			rc = TH_EINVAL;
			goto fail;
		}
	} else if (svc->plugin_dir &&
		   th_plugins_load_dir(svc->plugins, svc->plugin_dir, NULL, NULL)) {
		rc = TH_EPLUGIN; /* the directory itself: unreadable or refused */
		goto fail;
	}
	*out = svc;
	return 0;
fail:
	th_service_close(svc);
	return rc;
}

/* Puts back the jobs claim_next claimed and nobody ran. */
static void release_api_claims(th_service *svc)
{
	pthread_mutex_lock(&svc->claims_mu);
	for (size_t i = 0; i < svc->nclaimed; i++) {
		th_outcome o = {.id = svc->claimed[i].id, .gen = svc->claimed[i].claim_gen,
				.status = TH_JOB_QUEUED, .not_started = true};
		th_cycle cy = {.outs = &o, .nout = 1, .owner = &svc->owner};
		th_store_cycle(svc->store, &cy);
	}
	svc->nclaimed = 0;
	pthread_mutex_unlock(&svc->claims_mu);
}

void th_service_close(th_service *svc)
{
	if (!svc)
		return;
	th_service_stop_processing(svc);
	if (svc->store)
		release_api_claims(svc);
	free(svc->claimed);
	th_plugins_free(svc->plugins);
	th_coord_close(svc->coord);
	th_store_close(svc->store);
	th_metrics_free(svc->metrics);
	pthread_mutex_destroy(&svc->proc_mu);
	pthread_mutex_destroy(&svc->stop_mu);
	pthread_mutex_destroy(&svc->claims_mu);
	free(svc->plugin_dir);
	free(svc->data_dir);
	free(svc->runner);
	free(svc);
}

/* ---- jobs ---- */

/* The queue a name stands for: "default" is "". */
static const char *queue_of(const char *name)
{
	return !name || strcmp(name, "default") == 0 ? "" : name;
}

static uint32_t ms_of(double s)
{
	return s <= 0 ? 0 : s >= 4e6 ? 4000000000u : (uint32_t)(s * 1000.0 + 0.5);
}

/* One job for the store, from the caller's options and the task's defaults. */
static int prepare(th_service *svc, const th_new_job *j, th_store_new *n)
{
	static const th_add_opts none;
	const th_add_opts *o = j->opts ? j->opts : &none;
	if (!j->task)
		return TH_EUNKNOWNTASK;
	if (!th_task_name_valid(j->task) || (o->queue && !th_queue_name_valid(o->queue)) ||
	    (o->unique && (!*o->unique || strlen(o->unique) > 255)) || o->delay < 0 ||
	    o->timeout < 0 || o->backoff < 0 || (o->hold && o->cron))
		return TH_EINVAL;
	if (j->len > svc->max_input)
		return TH_ETOOBIG;
	th_task_defaults def = {0};
	/* with isolated plugins this process knows no tasks: the workers decide */
	if (!svc->isolate) {
		const th_task_entry *e = th_plugins_find(svc->plugins, j->task);
		if (!e)
			return TH_EUNKNOWNTASK;
		th_task_entry_defaults(e, &def);
	}
	int64_t due = o->at_us ? o->at_us : o->delay > 0 ? th_clock_now_us() + (int64_t)(o->delay * 1e6) : 0;
	*n = (th_store_new){
		.task = j->task,
		.queue = o->queue ? queue_of(o->queue) : def.queue ? def.queue : "",
		.priority = o->priority,
		.max_attempts = o->max_attempts ? o->max_attempts
			      : def.max_attempts ? def.max_attempts : svc->max_attempts,
		.input = j->input,
		.input_len = j->len,
		.due_us = due,
		.hold = o->hold,
		.timeout_ms = o->timeout > 0 ? ms_of(o->timeout) : def.timeout_ms,
		.backoff_ms = o->backoff > 0 ? ms_of(o->backoff) : def.backoff_ms,
		.unique = o->unique,
		.cron = o->cron,
		.catchup = o->catchup,
	};
	if (!th_queue_name_valid(n->queue))
		n->queue = ""; /* a plugin's bad default queue: the default one */
	return 0;
}

static int add_all(th_service *svc, const th_new_job *jobs, size_t n, uint64_t *ids,
		   bool *existed)
{
	th_store_new stack[16] = {{0}}, *nj = n <= 16 ? stack : calloc(n, sizeof(*nj));
	if (!nj)
		return TH_ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = prepare(svc, &jobs[i], &nj[i]);
	int64_t t0 = th_clock_mono_us();
	if (rc == 0)
		rc = th_store_add(svc->store, nj, n, ids, existed);
	if (rc == 0) {
		th_metrics_commit(svc->metrics, TH_COMMIT_ADD, (th_clock_mono_us() - t0) / 1e6, n);
		for (size_t i = 0; i < n; i++)
			if (!existed || !existed[i])
				th_metrics_job(svc->metrics, TH_METRIC_ADDED, nj[i].task, nj[i].queue, 1);
	}
	if (nj != stack)
		free(nj);
	if (rc == 0)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

/* The checks of th_service_*'s before the store: 0, or the write's refusal. */
static int prepare_write(th_service *svc, th_write *w, th_store_new *nj)
{
	th_store_write *s = &w->s;
	int rc = 0;
	if (s->kind == TH_WRITE_ADD) {
		for (size_t i = 0; i < s->n && rc == 0; i++)
			rc = prepare(svc, &w->jobs[i], &nj[i]);
		s->jobs = nj;
	} else if (s->kind == TH_WRITE_PAUSE_QUEUE) {
		if (!s->queue || !th_queue_name_valid(queue_of(s->queue)))
			rc = TH_EINVAL;
		s->queue = queue_of(s->queue);
	}
	return rc;
}

void th_service_writes(th_service *svc, th_write *w, size_t n, uint64_t *commits)
{
	size_t njobs = 0, m = 0;
	for (size_t i = 0; i < n; i++)
		njobs += w[i].s.kind == TH_WRITE_ADD ? w[i].s.n : 0;
	th_store_new *nj = calloc(njobs + 1, sizeof(*nj));
	th_store_write *sw = calloc(n + 1, sizeof(*sw));
	size_t *at = calloc(n + 1, sizeof(*at));
	*commits = 0;
	if (!nj || !sw || !at) {
		for (size_t i = 0; i < n; i++)
			w[i].s.rc = TH_ENOMEM;
		goto out;
	}
	njobs = 0;
	for (size_t i = 0; i < n; i++) {
		w[i].s.rc = prepare_write(svc, &w[i], nj + njobs);
		njobs += w[i].s.kind == TH_WRITE_ADD ? w[i].s.n : 0;
		if (w[i].s.rc == 0) {
			at[m] = i;
			sw[m++] = w[i].s;
		}
	}
	int64_t t0 = th_clock_mono_us();
	th_store_writes(svc->store, sw, m, commits);
	double took = (th_clock_mono_us() - t0) / 1e6;
	size_t added = 0;
	bool wake_added = false, wake_finished = false, wake_cancel = false;
	for (size_t j = 0; j < m; j++) {
		th_store_write *s = &sw[j];
		w[at[j]].s.rc = s->rc;
		wake_cancel |= s->kind == TH_WRITE_CANCEL && s->rc == TH_EBUSY;
		if (s->rc)
			continue;
		wake_finished |= s->kind == TH_WRITE_CANCEL;
		/* a resumed cron job or queue, a new schedule: sooner than hosts sleep for */
		wake_added |= s->kind == TH_WRITE_ADD || s->kind == TH_WRITE_START ||
			      s->kind == TH_WRITE_RETRY ||
			      (s->kind == TH_WRITE_CRON && s->paused != 1) ||
			      (s->kind == TH_WRITE_PAUSE_QUEUE && !s->paused);
		for (size_t i = 0; s->kind == TH_WRITE_ADD && i < s->n; i++) {
			added++;
			if (!s->existed || !s->existed[i])
				th_metrics_job(svc->metrics, TH_METRIC_ADDED, s->jobs[i].task,
					       s->jobs[i].queue, 1);
		}
	}
	if (added)
		th_metrics_commit(svc->metrics, TH_COMMIT_ADD, took, added);
	if (wake_added)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	if (wake_finished)
		th_coord_notify(svc->coord, TH_WAKE_FINISHED);
	if (wake_cancel)
		th_coord_notify(svc->coord, TH_WAKE_CANCEL);
out:
	free(nj);
	free(sw);
	free(at);
}

int th_service_add_many(th_service *svc, const th_new_job *jobs, size_t n, uint64_t *ids)
{
	return add_all(svc, jobs, n, ids, NULL);
}

int th_service_add_batch(th_service *svc, const th_new_job *jobs, size_t n, uint64_t *ids,
			 bool *existed)
{
	return add_all(svc, jobs, n, ids, existed);
}

int th_service_add_check(th_service *svc, const th_new_job *job)
{
	th_store_new n;
	return prepare(svc, job, &n);
}

int th_service_add_ex(th_service *svc, const char *task, const void *input, size_t len,
		      const th_add_opts *opts, uint64_t *id, bool *existed)
{
	th_new_job j = {task, input, len, opts};
	return add_all(svc, &j, 1, id, existed);
}

int th_service_add(th_service *svc, const char *task, const void *input, size_t len,
		   uint64_t *id)
{
	return th_service_add_ex(svc, task, input, len, NULL, id, NULL);
}

int th_service_get(th_service *svc, uint64_t id, th_job *out)
{
	return th_store_get(svc->store, id, out);
}

int th_service_status(th_service *svc, uint64_t id, th_job_status *out)
{
	th_job job;
	int rc = th_store_get(svc->store, id, &job);
	if (rc == 0)
		*out = job.status;
	return rc;
}

int th_service_result(th_service *svc, uint64_t id, void **data, size_t *len)
{
	return th_store_blob(svc->store, id, TH_BLOB_RESULT, data, len);
}

int th_service_error(th_service *svc, uint64_t id, char **msg)
{
	size_t len;
	return th_store_blob(svc->store, id, TH_BLOB_ERROR, (void **)msg, &len);
}

int th_service_errors(th_service *svc, uint64_t id, char **text)
{
	size_t len;
	return th_store_blob(svc->store, id, TH_BLOB_ERRORS, (void **)text, &len);
}

int th_service_input(th_service *svc, uint64_t id, void **data, size_t *len)
{
	return th_store_blob(svc->store, id, TH_BLOB_INPUT, data, len);
}

int th_service_unique(th_service *svc, uint64_t id, char **key)
{
	size_t len;
	return th_store_blob(svc->store, id, TH_BLOB_UNIQUE, (void **)key, &len);
}

int th_service_cron_spec(th_service *svc, uint64_t id, char **spec)
{
	size_t len;
	return th_store_blob(svc->store, id, TH_BLOB_CRON, (void **)spec, &len);
}

int th_service_cancel(th_service *svc, uint64_t id)
{
	int rc = th_store_cancel(svc->store, id);
	if (rc == 0)
		th_coord_notify(svc->coord, TH_WAKE_FINISHED);
	else if (rc == TH_EBUSY) /* the host running it hears of it at once */
		th_coord_notify(svc->coord, TH_WAKE_CANCEL);
	return rc;
}

int th_service_start(th_service *svc, uint64_t id)
{
	int rc = th_store_start(svc->store, id);
	if (rc == 0)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

int th_service_retry(th_service *svc, uint64_t id)
{
	int rc = th_store_retry(svc->store, id);
	if (rc == 0)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

int th_service_change_many(th_service *svc, th_change what, const uint64_t *ids, size_t n,
			   int *rcs)
{
	int rc = th_store_change(svc->store, what, ids, n, rcs);
	if (rc)
		return rc;
	bool done = false, stop = false;
	for (size_t i = 0; i < n; i++) {
		done |= rcs[i] == 0;
		stop |= rcs[i] == TH_EBUSY;
	}
	if (done && what == TH_CHANGE_RETRY)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	if (done && what == TH_CHANGE_CANCEL)
		th_coord_notify(svc->coord, TH_WAKE_FINISHED);
	if (stop)
		th_coord_notify(svc->coord, TH_WAKE_CANCEL);
	return 0;
}

int th_service_cron_update(th_service *svc, uint64_t id, const char *spec, int catchup)
{
	int rc = th_store_cron_update(svc->store, id, spec, catchup);
	if (rc == 0) /* its next fire may be sooner than what the hosts sleep for */
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

int th_service_cron_pause(th_service *svc, uint64_t id, bool paused)
{
	int rc = th_store_cron_pause(svc->store, id, paused);
	if (rc == 0 && !paused)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

int th_service_clean(th_service *svc, uint64_t *removed)
{
	return th_store_clean(svc->store, 0, removed);
}

int th_service_clean_before(th_service *svc, int64_t before, uint64_t *removed)
{
	return before > 0 ? th_store_clean(svc->store, before, removed) : TH_EINVAL;
}

int th_service_clean_older(th_service *svc, double older_than, uint64_t *removed)
{
	if (!(older_than >= 0))
		return TH_EINVAL;
	int64_t before = th_clock_now_us() - (int64_t)(older_than * 1e6);
	*removed = 0;
	if (older_than == 0)
		return th_service_clean(svc, removed);
	return before > 0 ? th_service_clean_before(svc, before, removed) : 0; /* before 1970 */
}

int th_service_pause_queue(th_service *svc, const char *queue, bool paused)
{
	if (!queue || !th_queue_name_valid(queue_of(queue)))
		return TH_EINVAL;
	int rc = th_store_pause_queue(svc->store, queue_of(queue), paused);
	if (rc == 0 && !paused)
		th_coord_notify(svc->coord, TH_WAKE_ADDED);
	return rc;
}

int th_service_queue_paused(th_service *svc, const char *queue, bool *paused)
{
	if (!queue || !th_queue_name_valid(queue_of(queue)))
		return TH_EINVAL;
	return th_store_queue_paused(svc->store, queue_of(queue), paused);
}

int th_service_list(th_service *svc, unsigned mask, uint64_t from, bool reverse,
		    th_job_fn fn, void *ud)
{
	return th_store_list(svc->store, mask, from, reverse, fn, ud);
}

int th_service_count(th_service *svc, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	return th_store_count(svc->store, counts);
}

int th_service_count_queues(th_service *svc,
			    int (*fn)(void *ud, const char *queue,
				      const uint64_t counts[TH_JOB_STATUS_MAX + 1]),
			    void *ud)
{
	return th_store_count_queues(svc->store, fn, ud);
}

int th_service_finished_since(th_service *svc, int64_t since, uint64_t *n)
{
	return th_store_finished_since(svc->store, since, n);
}

int th_service_minutes(th_service *svc, const char *queue, size_t n, th_minute *out)
{
	if (n < 1 || n > TH_MINUTES_MAX || (queue && !th_queue_name_valid(queue_of(queue))))
		return TH_EINVAL;
	return th_store_minutes(svc->store, queue ? queue_of(queue) : NULL,
				th_clock_now_us() / 1000000, n, out);
}

int th_service_pending(th_service *svc, uint64_t *queued, uint64_t *processing)
{
	return th_store_pending(svc->store, queued, processing);
}

int th_service_check(th_service *svc, void (*fn)(void *ud, const char *line), void *ud,
		     uint64_t *jobs, uint64_t *problems)
{
	return th_store_check(svc->store, fn, ud, jobs, problems);
}

const char *th_service_store_shown(th_service *svc)
{
	return strcmp(th_store_name(svc->store), th_store_pg.name) == 0
		       ? th_store_pg_shown(svc->store)
		       : svc->data_dir;
}

/* ---- the processor calls ---- */

int th_service_has_jobs_waiting(th_service *svc, bool *out)
{
	int64_t next_due;
	return th_store_peek(svc->store, NULL, out, &next_due);
}

/* Claims the next job for this service into *c; TH_ENOJOB when none waits. */
static int claim_one(th_service *svc, th_claim *c)
{
	th_cycle cy = {.owner = &svc->owner, .max = 1, .lease_us = svc->lease_us, .claims = c};
	int rc = th_store_cycle(svc->store, &cy);
	return rc ? rc : cy.nclaimed ? 0 : TH_ENOJOB;
}

/* Records one outcome of this service's claim; TH_ESTATE when it was refused as stale. */
static int record(th_service *svc, const th_outcome *o)
{
	th_cycle cy = {.outs = o, .nout = 1, .owner = &svc->owner};
	int rc = th_store_cycle(svc->store, &cy);
	if (rc == 0)
		th_coord_notify(svc->coord, TH_WAKE_FINISHED);
	return rc ? rc : cy.stale ? TH_ESTATE : 0;
}

int th_service_claim_next(th_service *svc, uint64_t *id)
{
	th_claim c;
	int rc = claim_one(svc, &c);
	if (rc)
		return rc;
	*id = c.job.id;
	th_claim_clear(&c);
	pthread_mutex_lock(&svc->claims_mu);
	if (svc->nclaimed == svc->cap_claimed) {
		size_t cap = svc->cap_claimed ? svc->cap_claimed * 2 : 8;
		th_job *j = realloc(svc->claimed, cap * sizeof(*j));
		if (j) {
			svc->claimed = j;
			svc->cap_claimed = cap;
		}
	}
	if (svc->nclaimed < svc->cap_claimed)
		svc->claimed[svc->nclaimed++] = c.job;
	else
		rc = TH_ENOMEM; /* the claim stays ours until recovery: better than lost */
	pthread_mutex_unlock(&svc->claims_mu);
	return rc;
}

/* Takes job id out of the claims made by claim_next; false when it is not one. */
static bool take_api_claim(th_service *svc, uint64_t id)
{
	bool found = false;
	pthread_mutex_lock(&svc->claims_mu);
	for (size_t i = 0; i < svc->nclaimed && !found; i++) {
		if (svc->claimed[i].id == id) {
			svc->claimed[i] = svc->claimed[--svc->nclaimed];
			found = true;
		}
	}
	pthread_mutex_unlock(&svc->claims_mu);
	return found;
}

int th_service_recover(th_service *svc, size_t *n)
{
	return th_keeper_recover(svc->store, &svc->owner, svc->coord, svc->metrics, n);
}

th_metrics *th_service_metrics(th_service *svc)
{
	return svc->metrics;
}

int th_service_store_usage(th_service *svc, uint64_t *map_size, uint64_t *used)
{
	if (strcmp(th_store_name(svc->store), th_store_lmdb.name) != 0)
		return TH_EINVAL;
	return th_store_usage(svc->store, map_size, used);
}

int th_service_store_connection(th_service *svc, bool *connected, uint64_t *reconnects)
{
	if (strcmp(th_store_name(svc->store), th_store_pg.name) != 0)
		return TH_EINVAL;
	th_store_pg_connection(svc->store, connected, reconnects);
	return 0;
}

/* The claim of job id, which th_service_claim_next of this service must have made (a
 * job its processor claimed belongs to the processor). */
static int load_claim(th_service *svc, uint64_t id, th_claim *c)
{
	int rc = th_store_get(svc->store, id, &c->job);
	if (rc)
		return rc;
	if (c->job.status != TH_JOB_PROCESSING || c->job.owner != svc->owner.instance ||
	    !take_api_claim(svc, id))
		return TH_ESTATE;
	return th_store_blob(svc->store, id, TH_BLOB_INPUT, &c->input, &c->input_len);
}

int th_service_process_next(th_service *svc, uint64_t id, bool *ran)
{
	*ran = false;
	if (svc->inspect_only || svc->isolate)
		return TH_EINVAL;
	th_claim c = {0};
	int rc = id ? load_claim(svc, id, &c) : claim_one(svc, &c);
	if (rc) {
		th_claim_clear(&c);
		return rc == TH_ENOJOB ? 0 : rc;
	}
	th_plugin_thread *t;
	if ((rc = th_plugin_thread_new(svc->plugins, &t))) {
		th_claim_clear(&c);
		return rc;
	}
	th_run_opts opts = {.max_result = svc->max_result, .coord = svc->coord};
	/* the seed's processNext: no timeouts or cancel requests reach a job run here */
	th_outcome o;
	th_run_result r;
	th_run_claim(t, svc->plugins, &c, &opts, &o, &r);
	th_plugin_thread_free(t);
	th_claim_clear(&c);
	rc = record(svc, &o);
	th_run_result_clear(&r);
	*ran = true; /* it ran, even if its outcome was refused */
	return rc;
}

/* ---- processors ---- */

int th_service_set_queue(th_service *svc, const char *queue, const char *strategy,
			 const th_processor_args *args)
{
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	if (args)
		a = *args;
	if (a.max_workers == 0)
		a.max_workers = 2;
	const th_strategy *s = strategy ? th_strategy_find(strategy) : NULL;
	if (!s || th_processor_check_args(&a) || !queue || !th_queue_name_valid(queue_of(queue)))
		return TH_EINVAL;
	if (svc->isolate && s != &th_strategy_process)
		return TH_EINVAL; /* plugins run in worker processes only */
	queue = queue_of(queue);
	pthread_mutex_lock(&svc->proc_mu);
	int rc = 0;
	size_t i = 0;
	while (i < svc->nqueues && strcmp(svc->queues[i].name, queue) != 0)
		i++;
	if (i == MAX_QUEUES) {
		rc = TH_EINVAL;
	} else {
		if (i == svc->nqueues)
			snprintf(svc->queues[svc->nqueues++].name, TH_QUEUE_NAME_MAX + 1, "%s", queue);
		svc->queues[i].strategy = s;
		svc->queues[i].args = a;
	}
	pthread_mutex_unlock(&svc->proc_mu);
	return rc;
}

int th_service_set_processor(th_service *svc, const char *strategy,
			     const th_processor_args *args)
{
	return th_service_set_queue(svc, "", strategy, args);
}

void th_service_processor(th_service *svc, const char **strategy, th_processor_args *args)
{
	pthread_mutex_lock(&svc->proc_mu);
	if (strategy)
		*strategy = svc->queues[0].strategy->name;
	if (args)
		*args = svc->queues[0].args;
	pthread_mutex_unlock(&svc->proc_mu);
}

/* The keeper's word that the store can no longer be used: told once. */
static void store_lost(void *ud, int rc)
{
	th_service *svc = ud;
	int none = 0;
	if (atomic_compare_exchange_strong(&svc->fatal, &none, rc) && svc->on_fatal)
		svc->on_fatal(svc->on_fatal_ud, rc);
}

int th_service_fatal(th_service *svc)
{
	return atomic_load(&svc->fatal);
}

static th_processor *active(th_service *svc, size_t i);

/* Jobs a queue's processor runs at once. */
static unsigned workers_of(const struct qproc *q)
{
	return q->strategy == &th_strategy_simple ? 1
	       : q->strategy == &th_strategy_multi ? q->args.max_threads : q->args.max_workers;
}

/* The heartbeat: this host's record, with its queues and the jobs its workers run. */
static void beat(void *ud)
{
	th_service *svc = ud;
	th_host_rec h = {.owner = svc->owner};
	th_host_info *i = &h.info;
	i->instance = svc->owner.instance;
	i->pid = svc->owner.pid;
	memcpy(i->name, svc->host_name, sizeof(i->name));
	i->started_us = svc->started_us;
	i->heartbeat_us = th_clock_now_us();
	i->lease_us = svc->lease_us;
	size_t len = 0;
	pthread_mutex_lock(&svc->proc_mu);
	for (size_t q = 0; q < svc->nqueues; q++) {
		const struct qproc *qp = &svc->queues[q];
		if (len < sizeof(i->strategy))
			len += (size_t)snprintf(i->strategy + len, sizeof(i->strategy) - len,
						"%s%s: %s", q ? ", " : "", q ? qp->name : "default",
						qp->strategy->name);
		unsigned n = workers_of(qp);
		i->workers += n;
		th_processor *p = active(svc, q);
		for (unsigned w = 0; p && w < n; w++)
			i->running += atomic_load(&th_processor_slot(p, w)->id) != 0;
	}
	pthread_mutex_unlock(&svc->proc_mu);
	th_coord_host_put(svc->coord, &h);
}

int th_service_hosts(th_service *svc, th_host_info **out, size_t *n)
{
	return th_coord_hosts(svc->coord, th_clock_now_us(), out, n);
}

int th_service_start_processing(th_service *svc)
{
	if (svc->inspect_only)
		return TH_EINVAL;
	pthread_mutex_lock(&svc->proc_mu);
	int rc = svc->queues[0].proc ? TH_EBUSY : 0;
	if (rc == 0 && !svc->keeper) {
		th_keeper_env ke = {.store = svc->store, .coord = svc->coord, .owner = svc->owner,
				    .lease_us = svc->lease_us,
				    .keep_finished_us = svc->keep_finished_us,
				    .fatal = store_lost, .fatal_ud = svc,
				    .metrics = svc->metrics, .beat = beat, .beat_ud = svc};
		svc->started_us = th_clock_now_us();
		memset(svc->host_name, 0, sizeof(svc->host_name));
		if (gethostname(svc->host_name, sizeof(svc->host_name) - 1))
			snprintf(svc->host_name, sizeof(svc->host_name), "unknown");
		rc = th_keeper_start(&svc->keeper, &ke);
	}
	for (size_t i = 0; i < svc->nqueues && rc == 0; i++) {
		struct qproc *q = &svc->queues[i];
		if (q->proc)
			continue;
		th_proc_env env = {.store = svc->store,
				   .plugins = svc->plugins,
				   .coord = svc->coord,
				   .owner = svc->owner,
				   .max_result = svc->max_result,
				   .queue = q->name,
				   .lease_us = svc->lease_us,
				   .keeper = svc->keeper,
				   .runner = svc->runner,
				   .plugin_dir = svc->plugin_dir,
				   .data_dir = svc->data_dir,
				   .allow_insecure_plugins = svc->allow_insecure_plugins,
				   .metrics = svc->metrics};
		rc = th_processor_start(&q->proc, &env, q->strategy, &q->args);
		if (rc == 0)
			th_keeper_attach(svc->keeper, q->proc);
	}
	pthread_mutex_unlock(&svc->proc_mu);
	if (rc && rc != TH_EBUSY)
		th_service_stop_processing(svc); /* all or none */
	else if (rc == 0)
		beat(svc);
	return rc;
}

int th_service_stop_processing(th_service *svc)
{
	pthread_mutex_lock(&svc->stop_mu);
	pthread_mutex_lock(&svc->proc_mu);
	for (size_t i = 0; i < svc->nqueues; i++) {
		svc->queues[i].stopping = svc->queues[i].proc;
		svc->queues[i].proc = NULL;
	}
	size_t n = svc->nqueues;
	pthread_mutex_unlock(&svc->proc_mu);
	/* every processor stops claiming first, then each waits for its jobs */
	for (size_t i = 0; i < n; i++)
		th_processor_stop(svc->queues[i].stopping);
	/* the keeper renewed their leases and passed cancels until their jobs ended */
	pthread_mutex_lock(&svc->proc_mu);
	th_processor *done[MAX_QUEUES];
	for (size_t i = 0; i < n; i++) {
		done[i] = svc->queues[i].stopping;
		svc->queues[i].stopping = NULL;
		if (done[i])
			th_keeper_detach(svc->keeper, done[i]);
	}
	th_keeper *k = svc->keeper;
	svc->keeper = NULL;
	pthread_mutex_unlock(&svc->proc_mu);
	th_keeper_stop(k);
	if (k)
		th_coord_host_remove(svc->coord, &svc->owner);
	for (size_t i = 0; i < n; i++)
		th_processor_free(done[i]);
	pthread_mutex_unlock(&svc->stop_mu);
	return 0;
}

/* The processor of queue i, running or being stopped; NULL when none. */
static th_processor *active(th_service *svc, size_t i)
{
	return svc->queues[i].proc ? svc->queues[i].proc : svc->queues[i].stopping;
}

void th_service_interrupt(th_service *svc)
{
	pthread_mutex_lock(&svc->proc_mu);
	for (size_t i = 0; i < svc->nqueues; i++)
		if (active(svc, i))
			th_processor_interrupt(active(svc, i));
	pthread_mutex_unlock(&svc->proc_mu);
}

bool th_service_is_processing(th_service *svc)
{
	pthread_mutex_lock(&svc->proc_mu);
	bool on = false;
	for (size_t i = 0; i < svc->nqueues; i++)
		on |= svc->queues[i].proc != NULL;
	pthread_mutex_unlock(&svc->proc_mu);
	return on;
}

int th_service_threads(th_service *svc, uint64_t *ids, size_t max, size_t *n)
{
	pthread_mutex_lock(&svc->proc_mu);
	*n = 0;
	for (size_t i = 0; i < svc->nqueues; i++)
		if (active(svc, i))
			*n += th_processor_threads(active(svc, i), ids + *n, max - *n);
	pthread_mutex_unlock(&svc->proc_mu);
	return 0;
}

/* ---- tasks ---- */

int th_service_register(th_service *svc, const struct th_plugin *desc, const char *label)
{
	return th_plugins_add_static(svc->plugins, desc, label);
}

int th_service_reload_plugins(th_service *svc, unsigned *loaded, unsigned *refused)
{
	if (svc->isolate) { /* the worker processes load them */
		pthread_mutex_lock(&svc->proc_mu);
		for (size_t i = 0; i < svc->nqueues; i++)
			if (svc->queues[i].proc)
				th_processor_reload(svc->queues[i].proc);
		pthread_mutex_unlock(&svc->proc_mu);
	}
	if (!svc->plugin_dir || svc->isolate) {
		if (loaded)
			*loaded = 0;
		if (refused)
			*refused = 0;
		return 0;
	}
	return th_plugins_load_dir(svc->plugins, svc->plugin_dir, loaded, refused);
}

size_t th_service_task_count(th_service *svc)
{
	return th_plugins_task_count(svc->plugins);
}

size_t th_service_refused(th_service *svc, size_t i, char *file, size_t filelen, char *why,
			  size_t whylen)
{
	return th_plugins_refused(svc->plugins, i, file, filelen, why, whylen);
}

int th_service_task_info(th_service *svc, size_t i, th_task_info *out)
{
	return th_plugins_task_info(svc->plugins, i, out);
}

/* ---- waiting ---- */

bool th_service_progress(th_service *svc, uint64_t id, double *done)
{
	return th_coord_progress_get(svc->coord, id, done);
}

uint32_t th_service_finished_seq(th_service *svc)
{
	return th_coord_seq(svc->coord, TH_WAKE_FINISHED);
}

void th_service_wait_finished(th_service *svc, uint32_t seq, int64_t timeout_us)
{
	th_coord_wait(svc->coord, TH_WAKE_FINISHED, seq, timeout_us);
}

th_store *th_testing_store(th_service *svc)
{
	return svc->store;
}

int th_testing_fault(th_service *svc, th_store_fault_fn fn, void *ud)
{
	th_store *wrapped;
	int rc = th_store_fault_open(&wrapped, svc->store, fn, ud);
	if (rc == 0)
		svc->store = wrapped;
	return rc;
}
