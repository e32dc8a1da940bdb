/* The group committer: writes from many threads (the HTTP API's connections) queue up,
 * and one thread makes all the writes queued meanwhile in one store transaction. */
#ifndef TH_COMMIT_H
#define TH_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service.h"
#include "service_writes.h"

typedef struct th_commit th_commit;

/* Jobs queued at most, past which th_commit_submit refuses (TH_EBUSY): a bound on the
 * memory waiting writers hold and on how long the last of them waits. */
#define TH_COMMIT_QUEUE_MAX 100000

/* One write. The submitter owns it until done is called (on the committer thread),
 * which happens once its change is committed (durable in durable mode) or refused. */
typedef struct th_commit_req {
	/* a write (an add: w.s.n jobs w.jobs, their ids to w.s.ids), made in one
	 * transaction with the writes queued next to it, in arrival order */
	th_write w;
	/* or, when op is set, a write that makes transactions of its own (a bulk change, a
	 * clean), run on the committer thread between the others */
	int (*op)(th_service *svc, void *arg);
	void *arg;
	void (*done)(struct th_commit_req *r);
	void *ud;
	int rc; /* out: 0 or TH_E* */
	struct th_commit_req *next;
} th_commit_req;

typedef struct th_commit_stats {
	uint64_t commits; /* store transactions the committer made for its writes */
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
