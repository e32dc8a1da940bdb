/* Progress of running jobs, shared by all processes on one data directory: a small
 * table in a mapped file that hosts write and `taskhost wait` reads. Not durable, and
 * not meant to be: it only says how far a running job is. */
#ifndef TH_PROGRESS_H
#define TH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct th_progress_map th_progress_map;

int th_progress_open(th_progress_map **out, const char *dir);
void th_progress_close(th_progress_map *p);

/* done in 0..1 */
void th_progress_set(th_progress_map *p, uint64_t job_id, double done);
void th_progress_clear(th_progress_map *p, uint64_t job_id);
/* false when the job reported no progress (or its entry was evicted) */
bool th_progress_get(th_progress_map *p, uint64_t job_id, double *done);

#endif
