/* What a host counts since it started, for GET /metrics: jobs added and ended by task
 * and queue, run times, commit times, wake-ups, worker processes. */
#ifndef TH_METRICS_H
#define TH_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct th_metrics th_metrics;

/* What happened to jobs, counted by task and queue. */
enum th_metric_job {
	TH_METRIC_ADDED = 0,
	TH_METRIC_COMPLETED,
	TH_METRIC_FAILED,  /* ended in error */
	TH_METRIC_RETRIED, /* a run failed and the job runs again */
	TH_METRIC_CANCELLED,
	TH_METRIC_RECOVERED, /* taken back from a host that died or lost its lease */
	TH_METRIC_JOB_MAX
};

/* Commits timed, by what they do. */
enum th_metric_commit { TH_COMMIT_ADD = 0, TH_COMMIT_CYCLE, TH_COMMIT_MAX };

int th_metrics_new(th_metrics **out);
void th_metrics_free(th_metrics *m);

/* Every call below accepts a NULL m and then does nothing. */
void th_metrics_job(th_metrics *m, enum th_metric_job what, const char *task,
		    const char *queue, uint64_t n);
/* A run of task that took `seconds`, started `delay` seconds after it was due. */
void th_metrics_run(th_metrics *m, const char *task, double seconds, double delay);
/* A commit of the store that took `seconds`; jobs: the jobs it added (TH_COMMIT_ADD). */
void th_metrics_commit(th_metrics *m, enum th_metric_commit what, double seconds, size_t jobs);
void th_metrics_wakeup(th_metrics *m);
void th_metrics_worker(th_metrics *m, bool crashed); /* started, or crashed */

/* Appends the counters in the Prometheus text format (version 0.0.4) to a buffer the
 * caller extends with th_metrics_printf. */
typedef struct th_metrics_out {
	char *buf;
	size_t len, cap;
	bool failed; /* out of memory */
} th_metrics_out;

void th_metrics_printf(th_metrics_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A label value as the text format writes it (\\, \" and \n escaped). */
void th_metrics_label(th_metrics_out *o, const char *value);
void th_metrics_write(th_metrics *m, th_metrics_out *o);

/* The counters of a service (service.c): what its processors, keeper and adds count. */
struct th_service;
th_metrics *th_service_metrics(struct th_service *svc);
/* Of a service on an LMDB store: its map's size and the bytes in use; else TH_EINVAL. */
int th_service_store_usage(struct th_service *svc, uint64_t *map_size, uint64_t *used);
/* Of a service on a PostgreSQL store: its connection's state (th_store_pg_connection);
 * else TH_EINVAL. */
int th_service_store_connection(struct th_service *svc, bool *connected, uint64_t *reconnects);

#endif
