/* The group committer: writes from many threads (the HTTP API's connections) queue up,
 * and one thread commits all the adds queued meanwhile in one store transaction. */
#ifndef TH_COMMIT_H
#define TH_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service.h"

typedef struct th_commit th_commit;

/* Jobs queued at most, past which th_commit_submit refuses (TH_EBUSY): a bound on the
 * memory waiting writers hold and on how long the last of them waits. */
#define TH_COMMIT_QUEUE_MAX 100000

/* One write. The submitter owns it until done is called (on the committer thread),
 * which happens once its change is committed (durable in durable mode) or refused. */
typedef struct th_commit_req {
	/* an add: n jobs, their ids to ids[0..n), existed[0..n) (may be NULL) */
	const th_new_job *jobs;
	size_t n;
	uint64_t *ids;
	bool *existed;
	/* or, when op is set, any other write, run on the committer thread */
	int (*op)(th_service *svc, void *arg);
	void *arg;
	void (*done)(struct th_commit_req *r);
	void *ud;
	int rc; /* out: 0 or TH_E* */
	struct th_commit_req *next;
} th_commit_req;

typedef struct th_commit_stats {
	uint64_t commits; /* store transactions the committer made for adds */
	uint64_t jobs;    /* jobs they added */
	uint64_t writes;  /* requests answered */
} th_commit_stats;

int th_commit_start(th_commit **out, th_service *svc);
/* Queues r; done is called later. TH_EBUSY when stopping or the queue is full (r is
 * then not queued and done is not called). */
int th_commit_submit(th_commit *c, th_commit_req *r);
/* Commits what is queued, answers it, and ends the thread. NULL is fine. */
void th_commit_stop(th_commit *c);
void th_commit_get_stats(th_commit *c, th_commit_stats *out);

#endif
