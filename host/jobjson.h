/* The JSON of a job, one module for every front door (the CLI's --json output, and the
 * HTTP API next): a job's fields, times as UTC strings, bytes as text or base64. */
#ifndef TH_JOBJSON_H
#define TH_JOBJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* A new object with the job's fields (id, task, status, queue, priority, attempts,
 * times, sizes, and what its status adds); json null when out of memory. */
json_t *th_jobjson_job(const th_job *j);
/* A time (microseconds since the epoch) as th_clock_format writes it; null for 0. */
json_t *th_jobjson_time(int64_t us);
/* Sets obj[key] to the bytes when they are UTF-8 text, else obj["<key>_base64"]. */
void th_jobjson_set_bytes(json_t *obj, const char *key, const void *data, size_t len);

#endif
