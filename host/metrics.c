/* The host's counters since it started (metrics.h) and their text in the Prometheus
 * exposition format; one mutex guards them, taken for a few adds per job. */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "job.h"

/* Upper bounds of the histograms' buckets (and +Inf) */
static const double seconds_le[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
				    1, 2.5, 5, 10, 30, 60, 300, 1800};
#define NSECONDS (sizeof(seconds_le) / sizeof(seconds_le[0]))
static const double commit_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
				   0.025, 0.05, 0.1, 0.25, 1};
#define NCOMMIT (sizeof(commit_le) / sizeof(commit_le[0]))
static const double batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define NBATCH (sizeof(batch_le) / sizeof(batch_le[0]))
#define NBUCKETS_MAX NSECONDS

struct hist {
	uint64_t bucket[NBUCKETS_MAX + 1]; /* not cumulative; the last: past every bound */
	uint64_t count;
	double sum;
};

struct series { /* one task and queue */
	char task[TH_TASK_NAME_MAX + 1];
	char queue[TH_QUEUE_NAME_MAX + 1];
	uint64_t n[TH_METRIC_JOB_MAX];
};

struct task_hist {
	char task[TH_TASK_NAME_MAX + 1];
	struct hist run;
};

struct th_metrics {
	pthread_mutex_t mu;
	struct series *series;
	size_t nseries, cap_series;
	struct task_hist *runs;
	size_t nruns, cap_runs;
	struct hist delay;
	struct hist commit[TH_COMMIT_MAX];
	struct hist batch;
	uint64_t wakeups, workers_started, workers_crashed;
};

int th_metrics_new(th_metrics **out)
{
	th_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return TH_ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void th_metrics_free(th_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->series);
	free(m->runs);
	free(m);
}

/* Grows an array of n elements of size sz to hold one more; NULL when out of memory. */
static void *room(void **arr, size_t *n, size_t *cap, size_t sz)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		void *a = realloc(*arr, c * sz);
		if (!a)
			return NULL;
		*arr = a;
		*cap = c;
	}
	return (char *)*arr + (*n)++ * sz;
}

static void observe(struct hist *h, const double *le, size_t nle, double v)
{
	size_t i = 0;
	while (i < nle && v > le[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void th_metrics_job(th_metrics *m, enum th_metric_job what, const char *task,
		    const char *queue, uint64_t n)
{
	if (!m || what >= TH_METRIC_JOB_MAX || !n)
		return;
	queue = queue && *queue ? queue : "default";
	pthread_mutex_lock(&m->mu);
	struct series *s = NULL;
	for (size_t i = 0; i < m->nseries && !s; i++)
		if (strcmp(m->series[i].task, task) == 0 && strcmp(m->series[i].queue, queue) == 0)
			s = &m->series[i];
	if (!s && (s = room((void **)&m->series, &m->nseries, &m->cap_series, sizeof(*s)))) {
		memset(s, 0, sizeof(*s));
		snprintf(s->task, sizeof(s->task), "%s", task);
		snprintf(s->queue, sizeof(s->queue), "%s", queue);
	}
	if (s)
		s->n[what] += n;
	pthread_mutex_unlock(&m->mu);
}

void th_metrics_run(th_metrics *m, const char *task, double seconds, double delay)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	struct task_hist *t = NULL;
	for (size_t i = 0; i < m->nruns && !t; i++)
		if (strcmp(m->runs[i].task, task) == 0)
			t = &m->runs[i];
	if (!t && (t = room((void **)&m->runs, &m->nruns, &m->cap_runs, sizeof(*t)))) {
		memset(t, 0, sizeof(*t));
		snprintf(t->task, sizeof(t->task), "%s", task);
	}
	if (t)
		observe(&t->run, seconds_le, NSECONDS, seconds);
	observe(&m->delay, seconds_le, NSECONDS, delay > 0 ? delay : 0);
	pthread_mutex_unlock(&m->mu);
}

void th_metrics_commit(th_metrics *m, enum th_metric_commit what, double seconds, size_t jobs)
{
	if (!m || what >= TH_COMMIT_MAX)
		return;
	pthread_mutex_lock(&m->mu);
	observe(&m->commit[what], commit_le, NCOMMIT, seconds);
	if (what == TH_COMMIT_ADD)
		observe(&m->batch, batch_le, NBATCH, (double)jobs);
	pthread_mutex_unlock(&m->mu);
}

static void bump(th_metrics *m, uint64_t *v, uint64_t n)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->mu);
	*v += n;
	pthread_mutex_unlock(&m->mu);
}

void th_metrics_wakeup(th_metrics *m)
{
	if (m)
		bump(m, &m->wakeups, 1);
}

void th_metrics_worker(th_metrics *m, bool crashed)
{
	if (m)
		bump(m, crashed ? &m->workers_crashed : &m->workers_started, 1);
}

/* ---- the text format ---- */

void th_metrics_printf(th_metrics_out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0,
				  fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if (o->buf && o->len + (size_t)n < o->cap) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap ? o->cap * 2 : 16384;
		while (cap <= o->len + (size_t)n)
			cap *= 2;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

void th_metrics_label(th_metrics_out *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			th_metrics_printf(o, "\\%c", *v);
		else if (*v == '\n')
			th_metrics_printf(o, "\\n");
		else
			th_metrics_printf(o, "%c", *v);
	}
}

static void family(th_metrics_out *o, const char *name, const char *type, const char *help)
{
	th_metrics_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's samples; label: `task="x"` or "" */
static void hist(th_metrics_out *o, const char *name, const char *lname, const char *lvalue,
		 const struct hist *h, const double *le, size_t nle)
{
	uint64_t cum = 0;
	for (size_t i = 0; i <= nle; i++) {
		cum += h->bucket[i];
		th_metrics_printf(o, "%s_bucket{", name);
		if (lname) {
			th_metrics_printf(o, "%s=\"", lname);
			th_metrics_label(o, lvalue);
			th_metrics_printf(o, "\",");
		}
		if (i < nle)
			th_metrics_printf(o, "le=\"%g\"} %llu\n", le[i], (unsigned long long)cum);
		else
			th_metrics_printf(o, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	const char *parts[2] = {"sum", "count"};
	for (int k = 0; k < 2; k++) {
		th_metrics_printf(o, "%s_%s", name, parts[k]);
		if (lname) {
			th_metrics_printf(o, "{%s=\"", lname);
			th_metrics_label(o, lvalue);
			th_metrics_printf(o, "\"}");
		}
		if (k == 0)
			th_metrics_printf(o, " %.9g\n", h->sum);
		else
			th_metrics_printf(o, " %llu\n", (unsigned long long)h->count);
	}
}

static void simple(th_metrics_out *o, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	family(o, name, type, help);
	th_metrics_printf(o, "%s %llu\n", name, (unsigned long long)v);
}

void th_metrics_write(th_metrics *m, th_metrics_out *o)
{
	static const struct {
		const char *name, *help;
	} jobs[TH_METRIC_JOB_MAX] = {
		{"taskhost_jobs_added_total", "Jobs added through this host, by task and queue."},
		{"taskhost_jobs_completed_total", "Runs on this host that completed their job."},
		{"taskhost_jobs_failed_total", "Runs on this host that ended their job in error "
		 "(no attempts left, or the task said not to retry)."},
		{"taskhost_jobs_retried_total", "Runs on this host that failed, their job to run "
		 "again later."},
		{"taskhost_jobs_cancelled_total", "Runs on this host that ended their job "
		 "cancelled."},
		{"taskhost_jobs_recovered_total", "Jobs this host took back from hosts that "
		 "died or lost their lease, by task and queue."},
	};
	pthread_mutex_lock(&m->mu);
	for (int k = 0; k < TH_METRIC_JOB_MAX; k++) {
		family(o, jobs[k].name, "counter", jobs[k].help);
		for (size_t i = 0; i < m->nseries; i++) {
			th_metrics_printf(o, "%s{task=\"", jobs[k].name);
			th_metrics_label(o, m->series[i].task);
			th_metrics_printf(o, "\",queue=\"");
			th_metrics_label(o, m->series[i].queue);
			th_metrics_printf(o, "\"} %llu\n", (unsigned long long)m->series[i].n[k]);
		}
	}
	family(o, "taskhost_job_run_duration_seconds", "histogram",
	       "How long runs on this host took, by task.");
	for (size_t i = 0; i < m->nruns; i++)
		hist(o, "taskhost_job_run_duration_seconds", "task", m->runs[i].task,
		     &m->runs[i].run, seconds_le, NSECONDS);
	family(o, "taskhost_job_start_delay_seconds", "histogram",
	       "Time from when a job was due (added, or its delay over) to its run starting.");
	hist(o, "taskhost_job_start_delay_seconds", NULL, NULL, &m->delay, seconds_le, NSECONDS);
	family(o, "taskhost_store_commit_duration_seconds", "histogram",
	       "Store write transactions of this host, by what they did (add: adding jobs; "
	       "cycle: recording outcomes and claiming), and how long each took to commit.");
	static const char *const ops[TH_COMMIT_MAX] = {"add", "cycle"};
	for (int k = 0; k < TH_COMMIT_MAX; k++)
		hist(o, "taskhost_store_commit_duration_seconds", "op", ops[k], &m->commit[k],
		     commit_le, NCOMMIT);
	family(o, "taskhost_group_commit_batch_size", "histogram",
	       "Jobs added per commit (adds that arrive together are committed together).");
	hist(o, "taskhost_group_commit_batch_size", NULL, NULL, &m->batch, batch_le, NBATCH);
	simple(o, "taskhost_wakeups_total", "counter",
	       "Wake-ups of this host's processors by jobs added elsewhere.", m->wakeups);
	simple(o, "taskhost_worker_processes_started_total", "counter",
	       "Worker processes started (strategy = process).", m->workers_started);
	simple(o, "taskhost_worker_processes_crashed_total", "counter",
	       "Worker processes that died while running a job.", m->workers_crashed);
	pthread_mutex_unlock(&m->mu);
}
