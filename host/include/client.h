/* The client side of the host's HTTP API, for embedders and the CLI: the calls of the
 * service API made on a running host through its unix socket or a URL. Part of the
 * public API (libtaskhost). */
#ifndef TH_CLIENT_H
#define TH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "job.h"
#include "service.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct th_client th_client;

/* A call that changes something is sent once: when the connection it went out on is
 * lost before an answer, it fails (TH_EIO, "may or may not have been done") instead of
 * being sent again on a new one, as libcurl would. And it goes out on a new connection
 * when the one at hand has been idle longer than this (seconds): a host closes idle
 * connections after its connection_timeout (1 s at least), and one it closes as the
 * request comes would lose the request. */
#define TH_CLIENT_WRITE_IDLE_MAX 0.5

/* target: the host's socket ("var/api.sock": a path) or its URL ("http://host:7070",
 * "https://host:7070"); token: the bearer token for a URL (NULL on the socket).
 * TH_EINVAL for a URL that does not parse (th_client_error of *out says why, and *out
 * must still be closed). Nothing is sent yet: a host that is not there shows in the
 * first call (TH_EIO). */
int th_client_open(th_client **out, const char *target, const char *token);
void th_client_close(th_client *c);
/* The human line of the last failed call: the host's error message, or why it could not
 * be reached (naming the socket or URL and the request). */
const char *th_client_error(const th_client *c);
/* Trusts the certificates of the PEM file at path for an https:// URL, instead of the
 * system's (a host with a certificate of its own). */
int th_client_set_ca_file(th_client *c, const char *path);
/* The HTTP status of the last call's answer; 0 when none came (the host could not be
 * reached, or went away during the call). */
long th_client_status(const th_client *c);

/* The same as th_service_add_ex and th_service_add_many, and the same TH_E* codes for
 * the same refusals (TH_EIO when the host could not be reached or answered nonsense,
 * TH_EINSECURE for a token the host refused). The add is acknowledged once the host
 * committed it. */
int th_client_add(th_client *c, const char *task, const void *input, size_t len,
		  const th_add_opts *opts, uint64_t *id, bool *existed);
int th_client_add_many(th_client *c, const th_new_job *jobs, size_t n, uint64_t *ids);
int th_client_get(th_client *c, uint64_t id, th_job *out);
/* 0, or TH_EBUSY when the job runs and was asked to stop. */
int th_client_cancel(th_client *c, uint64_t id);
/* 0, or TH_ESTATE when the job is not held or delayed (start), or did not end in error
 * or cancelled (retry). */
int th_client_start(th_client *c, uint64_t id);
int th_client_retry(th_client *c, uint64_t id);
/* As th_service_result, th_service_input: malloc'd, NUL-terminated past len. A job
 * without a result is TH_ESTATE. */
int th_client_result(th_client *c, uint64_t id, void **data, size_t *len);
int th_client_input(th_client *c, uint64_t id, void **data, size_t *len);
/* As th_service_error (a job without an error: TH_ESTATE) and th_service_errors ("attempt
 * N: message" lines); job_ in the name as th_client_error is the last call's. */
int th_client_job_error(th_client *c, uint64_t id, char **msg);
int th_client_errors(th_client *c, uint64_t id, char **text);
/* How far a running job is: *known false when its task reports no progress. */
int th_client_progress(th_client *c, uint64_t id, bool *known, double *done);

/* Which jobs th_client_list_ex returns: all zero is every job, oldest first. */
typedef struct th_client_filter {
	unsigned mask;        /* statuses (TH_MASK); 0 or TH_MASK_ALL: all */
	const char *task, *queue, *unique; /* NULL: any */
	int64_t added_after, added_before, finished_after, finished_before; /* us; 0: any */
	bool newest_first;
} th_client_filter;
/* Jobs of the filter after the job `from` (0: from the first), a page of the host's at
 * a time, until fn returns non-zero. */
int th_client_list_ex(th_client *c, const th_client_filter *f, uint64_t from, th_job_fn fn,
		      void *ud);
/* Jobs whose status is in mask (TH_MASK_ALL: all), oldest first, after `from`. */
int th_client_list(th_client *c, unsigned mask, uint64_t from, th_job_fn fn, void *ud);
/* Waits until every job of ids finished, or timeout seconds: TH_ETIMEDOUT then. */
int th_client_wait(th_client *c, const uint64_t *ids, size_t n, double timeout);

/* ---- cron jobs (added with th_client_add and opts->cron) ---- */

/* A cron job's schedule, malloc'd; TH_ESTATE for a job that is no cron job. */
int th_client_cron_spec(th_client *c, uint64_t id, char **spec);
/* As th_service_cron_update: spec NULL keeps it, catchup -1 keeps it (both: the next
 * fire time is computed again from now). */
int th_client_cron_update(th_client *c, uint64_t id, const char *spec, int catchup);
int th_client_cron_pause(th_client *c, uint64_t id, bool paused);
/* The cron job fires no more (it ends cancelled). */
int th_client_cron_remove(th_client *c, uint64_t id);
/* The next fire times of a cron job (microseconds): up to max into times, *n of them;
 * none while it is paused. */
int th_client_cron_next(th_client *c, uint64_t id, size_t max, int64_t *times, size_t *n);

/* ---- queues, stats, tasks ---- */

/* Pauses a queue for every host on the data dir, or resumes it (an admin token). */
int th_client_pause_queue(th_client *c, const char *queue, bool paused);
/* Removes finished jobs, as th_service_clean (older_than 0) or th_service_clean_before
 * now less older_than seconds (an admin token); *removed gets how many. */
int th_client_clean(th_client *c, double older_than, uint64_t *removed);
/* JSON documents, malloc'd text: the queues ({"queues": [{name, strategy, paused}]}),
 * the stats ({"counts", "jobs_per_second", "oldest_queued", and the host's own
 * counters}), the tasks ({"tasks": [...], "refused": [...]}), as GET /v1/... answers. */
int th_client_queues(th_client *c, char **json);
int th_client_stats(th_client *c, char **json);
/* GET /v1/stats/history: {"minutes": [{"start", "added", "completed", "failed"}]}, the
 * last `minutes` (1..60) minutes, oldest first, of queue (NULL: every queue). */
int th_client_stats_history(th_client *c, const char *queue, int minutes, char **json);
int th_client_tasks(th_client *c, char **json);

#ifdef __cplusplus
}
#endif

#endif
