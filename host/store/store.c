/* The store front and the backend registry: th_store_* check new jobs and schedules
 * (th_lifecycle_check_new) and call the backend's operations table; a store URL
 * ("lmdb:PATH", a plain directory, "postgresql://...") picks the backend. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "lifecycle.h"
#include "log.h"
#include "store/store_lmdb.h"
#include "store/store_pg.h"

/* A new backend: its table here, and its file in Makefile.am. */
const th_store_ops *const th_store_backends[] = {&th_store_lmdb, &th_store_pg, NULL};

const th_store_ops *th_store_backend(const char *url, const char **where)
{
	*where = url;
	const char *colon = strchr(url, ':');
	if (colon) {
		for (size_t i = 0; th_store_backends[i]; i++) {
			const char *scheme = th_store_backends[i]->scheme;
			if ((size_t)(colon - url) == strlen(scheme) &&
			    memcmp(url, scheme, (size_t)(colon - url)) == 0) {
				*where = colon + 1;
				return th_store_backends[i];
			}
		}
		if (strncmp(colon, "://", 3) == 0)
			return NULL; /* a URL of a backend this build does not have */
	}
	return &th_store_lmdb; /* a plain directory */
}

/* Every backend's store starts with its operations table. */
static const th_store_ops *ops(th_store *st)
{
	return *(const th_store_ops *const *)(const void *)st;
}

int th_store_open(th_store **out, const char *url, const th_store_opts *opts)
{
	*out = NULL;
	const char *where;
	const th_store_ops *be = th_store_backend(url, &where);
	if (!be) {
		th_log_error("store", "%s: no store backend for this URL (this build has lmdb: "
			     "and postgresql://)", url);
		return TH_EINVAL;
	}
	return be->open(out, where, opts);
}

void th_store_close(th_store *st)
{
	if (st)
		ops(st)->close(st);
}

int th_store_coord_open(th_store *st, struct th_coord **out)
{
	return ops(st)->coord_open(st, out);
}

int th_store_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
		 bool *existed)
{
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < n; i++)
		if (th_lifecycle_check_new(&jobs[i], now))
			return TH_EINVAL;
	return ops(st)->add(st, jobs, n, ids, existed);
}

int th_store_cycle(th_store *st, th_cycle *c)
{
	return ops(st)->cycle(st, c);
}

unsigned th_store_txns_at_once(th_store *st)
{
	return ops(st)->txns_at_once > 1 ? ops(st)->txns_at_once : 1;
}

int th_store_confirm(th_store *st, const th_owner *owner, int64_t lease_us,
		     const uint64_t *pairs, size_t n, bool *lost)
{
	return ops(st)->confirm(st, owner, lease_us, pairs, n, lost);
}

int th_store_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n)
{
	return ops(st)->renew(st, owner, lease_us, n);
}

int th_store_recover(th_store *st, const th_owner *self, th_store_alive_fn alive, void *ud,
		     size_t *n, th_recovered *by)
{
	if (by)
		th_recovered_reset(by);
	return ops(st)->recover(st, self, alive, ud, n, by);
}

int th_recovered_add(th_recovered *r, const th_job *job)
{
	if (!r)
		return 0;
	for (size_t i = 0; i < r->ngroups; i++) {
		th_recovered_group *g = &r->groups[i];
		if (strcmp(g->task, job->task) == 0 && strcmp(g->queue, job->queue) == 0) {
			g->n++;
			return 0;
		}
	}
	if (r->ngroups == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 4;
		th_recovered_group *m = realloc(r->groups, cap * sizeof(*m));
		if (!m)
			return TH_ENOMEM;
		r->groups = m;
		r->cap = cap;
	}
	th_recovered_group *g = &r->groups[r->ngroups++];
	snprintf(g->task, sizeof(g->task), "%s", job->task);
	snprintf(g->queue, sizeof(g->queue), "%s", job->queue);
	g->n = 1;
	return 0;
}

void th_recovered_reset(th_recovered *r)
{
	r->ngroups = 0;
}

void th_recovered_clear(th_recovered *r)
{
	if (!r)
		return;
	free(r->groups);
	*r = (th_recovered){0};
}

int th_store_recover_started(th_store *st, const uint64_t *pairs, size_t n, size_t *done)
{
	return ops(st)->recover_started(st, pairs, n, done);
}

int th_store_cancel(th_store *st, uint64_t id)
{
	return ops(st)->cancel(st, id);
}

int th_store_start(th_store *st, uint64_t id)
{
	return ops(st)->start(st, id);
}

int th_store_retry(th_store *st, uint64_t id)
{
	return ops(st)->retry(st, id);
}

int th_store_change(th_store *st, th_change what, const uint64_t *ids, size_t n, int *rcs)
{
	if (what < TH_CHANGE_CANCEL || what > TH_CHANGE_REMOVE)
		return TH_EINVAL;
	return n ? ops(st)->change(st, what, ids, n, rcs) : 0;
}

int th_store_cron_update(th_store *st, uint64_t id, const char *spec, int catchup)
{
	th_store_new check = {.task = "-", .cron = spec};
	if (spec && th_lifecycle_check_new(&check, th_clock_now_us()))
		return TH_EINVAL;
	return ops(st)->cron_update(st, id, spec, catchup);
}

int th_store_cron_pause(th_store *st, uint64_t id, bool paused)
{
	return ops(st)->cron_pause(st, id, paused);
}

int th_store_pause_queue(th_store *st, const char *queue, bool paused)
{
	return ops(st)->pause_queue(st, queue, paused);
}

int th_store_clean(th_store *st, int64_t before, uint64_t *removed)
{
	return ops(st)->clean(st, before, removed);
}

int th_store_tidy(th_store *st)
{
	return ops(st)->tidy ? ops(st)->tidy(st) : 0;
}

/* One write in a transaction of its own. */
static int write_alone(th_store *st, th_store_write *w)
{
	switch (w->kind) {
	case TH_WRITE_ADD:
		return th_store_add(st, w->jobs, w->n, w->ids, w->existed);
	case TH_WRITE_CANCEL:
		return th_store_cancel(st, w->id);
	case TH_WRITE_START:
		return th_store_start(st, w->id);
	case TH_WRITE_RETRY:
		return th_store_retry(st, w->id);
	case TH_WRITE_CRON:
		return w->paused >= 0 ? th_store_cron_pause(st, w->id, w->paused)
				      : th_store_cron_update(st, w->id, w->spec, w->catchup);
	case TH_WRITE_PAUSE_QUEUE:
		return th_store_pause_queue(st, w->queue, w->paused);
	}
	return TH_EINVAL;
}

/* Whether a write passes what the front checks of it alone (the jobs of an add, the
 * schedule of a cron update). */
static bool write_valid(const th_store_write *w, int64_t now)
{
	th_store_new cron = {.task = "-", .cron = w->spec};
	for (size_t j = 0; w->kind == TH_WRITE_ADD && j < w->n; j++)
		if (th_lifecycle_check_new(&w->jobs[j], now))
			return false;
	return !(w->kind == TH_WRITE_CRON && w->spec && th_lifecycle_check_new(&cron, now));
}

void th_store_writes(th_store *st, th_store_write *w, size_t n, uint64_t *commits)
{
	int64_t now = th_clock_now_us();
	th_store_write *ok = ops(st)->writes && n > 1 ? calloc(n, sizeof(*ok)) : NULL;
	size_t m = 0;
	for (size_t i = 0; ok && i < n; i++) {
		w[i].rc = write_valid(&w[i], now) ? 0 : TH_EINVAL;
		if (w[i].rc == 0)
			ok[m++] = w[i];
	}
	*commits = 0;
	if (ok && m && ops(st)->writes(st, ok, m) == 0) {
		*commits = 1;
		for (size_t i = 0, j = 0; i < n; i++)
			if (w[i].rc == 0)
				w[i].rc = ok[j++].rc;
		free(ok);
		return;
	}
	*commits = ok && m;
	free(ok);
	/* each alone: so one write's error is its own, not its neighbours' */
	for (size_t i = 0; i < n; i++, ++*commits)
		w[i].rc = write_alone(st, &w[i]);
}

int th_store_get(th_store *st, uint64_t id, th_job *out)
{
	return ops(st)->get(st, id, out);
}

int th_store_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len)
{
	return ops(st)->blob(st, id, kind, data, len);
}

int th_store_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		  th_store_list_fn fn, void *ud)
{
	return ops(st)->list(st, mask, from, reverse, fn, ud);
}

int th_store_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	return ops(st)->count(st, counts);
}

/* For a backend without count_queues or finished_since: every job read. */
struct queue_count {
	char queue[TH_QUEUE_NAME_MAX + 1];
	uint64_t counts[TH_JOB_STATUS_MAX + 1];
};

struct walk_counts {
	struct queue_count *q; /* NULL: finished_since only */
	size_t n, cap;
	int64_t since;
	uint64_t finished;
	int rc;
};

static int walk_count(const th_job *job, void *ud)
{
	struct walk_counts *w = ud;
	if (th_job_status_final(job->status) && job->finished_us >= w->since)
		w->finished++;
	if (!w->q)
		return 0;
	size_t i = 0;
	while (i < w->n && strcmp(w->q[i].queue, job->queue) != 0)
		i++;
	if (i == w->n) {
		if (w->n == w->cap) {
			struct queue_count *m = realloc(w->q, 2 * w->cap * sizeof(*m));
			if (!m) {
				w->rc = TH_ENOMEM;
				return 1;
			}
			w->q = m;
			w->cap *= 2;
		}
		memset(&w->q[i], 0, sizeof(w->q[i]));
		snprintf(w->q[i].queue, sizeof(w->q[i].queue), "%s", job->queue);
		w->n++;
	}
	w->q[i].counts[job->status]++;
	return 0;
}

static int queue_order(const void *a, const void *b)
{
	return strcmp(((const struct queue_count *)a)->queue,
		      ((const struct queue_count *)b)->queue);
}

int th_store_count_queues(th_store *st, th_store_queue_fn fn, void *ud)
{
	if (ops(st)->count_queues)
		return ops(st)->count_queues(st, fn, ud);
	struct walk_counts w = {.cap = 8, .since = INT64_MAX};
	if (!(w.q = malloc(w.cap * sizeof(*w.q))))
		return TH_ENOMEM;
	int rc = th_store_list(st, ~0u, 0, false, walk_count, &w);
	rc = rc ? rc : w.rc;
	qsort(w.q, w.n, sizeof(*w.q), queue_order);
	for (size_t i = 0; rc == 0 && i < w.n; i++)
		if (fn(ud, w.q[i].queue, w.q[i].counts))
			break;
	free(w.q);
	return rc;
}

int th_store_finished_since(th_store *st, int64_t since, uint64_t *n)
{
	if (ops(st)->finished_since)
		return ops(st)->finished_since(st, since, n);
	struct walk_counts w = {.since = since};
	int rc = th_store_list(st, ~0u, 0, false, walk_count, &w);
	*n = rc ? 0 : w.finished;
	return rc;
}

int th_store_minutes(th_store *st, const char *queue, int64_t now, size_t n, th_minute *out)
{
	if (n < 1 || n > TH_MINUTES_MAX)
		return TH_EINVAL;
	int64_t first = now / 60 - (int64_t)n + 1;
	for (size_t i = 0; i < n; i++)
		out[i] = (th_minute){.start = (first + (int64_t)i) * 60};
	return ops(st)->minutes ? ops(st)->minutes(st, queue, first, n, out) : 0;
}

int th_store_pending(th_store *st, uint64_t *queued, uint64_t *processing)
{
	return ops(st)->pending(st, queued, processing);
}

int th_store_peek(th_store *st, const char *queue, bool *ready, int64_t *next_due)
{
	return ops(st)->peek(st, queue, ready, next_due);
}

int th_store_queue_paused(th_store *st, const char *queue, bool *paused)
{
	return ops(st)->queue_paused(st, queue, paused);
}

int th_store_cancel_requested(th_store *st, const uint64_t *ids, size_t n, bool *requested)
{
	return ops(st)->cancel_requested(st, ids, n, requested);
}

int th_store_check(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		   uint64_t *problems)
{
	return ops(st)->check(st, fn, ud, jobs, problems);
}

const char *th_store_name(th_store *st)
{
	return ops(st)->name;
}

void th_claim_clear(th_claim *c)
{
	free(c->input);
	c->input = NULL;
	c->input_len = 0;
}
