/* The JSON of a job, one module for every front door (the CLI's --json output and the
 * HTTP API): a job's fields, times as UTC strings, bytes as text or base64. */
#ifndef TH_JOBJSON_H
#define TH_JOBJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "service.h"

/* A new object with the job's fields (id, task, status, queue, priority, attempts,
 * times, sizes, and what its status adds); json null when out of memory. */
json_t *th_jobjson_job(const th_job *j);
/* A time (microseconds since the epoch) as th_clock_format writes it; null for 0. */
json_t *th_jobjson_time(int64_t us);
/* Sets obj[key] to the bytes when they are UTF-8 text, else obj["<key>_base64"]. */
void th_jobjson_set_bytes(json_t *obj, const char *key, const void *data, size_t len);
/* The lines of text as an array of strings (null for a line that is not UTF-8). */
json_t *th_jobjson_lines(const char *text);
/* {"counts": {status: n}, "queues": {queue: {status: n}}, "jobs_per_second": r (jobs
 * completed or failed per second over the last whole minute and the one under way),
 * "oldest_queued": job or null}: what `taskhost stats --json` prints and GET /v1/stats
 * answers, from the store's counts, minutes and indexes. NULL (and *rc) when the store
 * cannot be read. */
json_t *th_jobjson_stats(th_service *svc, int *rc);
/* {"minutes": [{"start": seconds since the epoch, "added", "completed", "failed"}, ...]}:
 * the last n minutes (1..TH_MINUTES_MAX), oldest first, the current one last, of one
 * queue (NULL: all): GET /v1/stats/history and `taskhost stats --history --json`. NULL
 * (and *rc) when the store cannot be read or n or the queue is bad (TH_EINVAL). */
json_t *th_jobjson_history(th_service *svc, const char *queue, size_t n, int *rc);
/* {"tasks": [...], "refused": [...]}: what `taskhost tasks --json` prints. */
json_t *th_jobjson_tasks(th_service *svc);

#endif
