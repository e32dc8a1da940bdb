/* A job and its bytes as JSON, the same for `taskhost ... --json` and the HTTP API. */
#ifndef TH_JOBJSON_H
#define TH_JOBJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "service.h"

/* "2026-12-01T08:00:00.000000Z", or null for 0. */
json_t *th_jobjson_time(int64_t us);
/* Seconds from start to finish; -1 when it has not finished. */
double th_jobjson_took(const th_job *j);
/* The job as an object (id, task, status, queue, times, sizes, cron fields...). */
json_t *th_jobjson_job(const th_job *j);
/* Sets obj[key] to the bytes when they are UTF-8 text, else obj["<key>_base64"]. */
void th_jobjson_bytes(json_t *obj, const char *key, const void *data, size_t len);
/* The lines of text as an array of strings (null for a line that is not UTF-8). */
json_t *th_jobjson_lines(const char *text);
/* {"counts": {status: n}, "jobs_per_second": r, "oldest_queued": job or null}: what
 * `taskhost stats --json` prints. NULL (and *rc) when the store cannot be read. */
json_t *th_jobjson_stats(th_service *svc, int *rc);
/* {"tasks": [...], "refused": [...]}: what `taskhost tasks --json` prints. */
json_t *th_jobjson_tasks(th_service *svc);

#endif
