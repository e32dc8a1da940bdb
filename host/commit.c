/* The group committer: one thread takes every write queued since its last commit, makes
 * them in one store transaction, in arrival order, and answers each writer after it. */
#include "commit.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"

struct th_commit {
	th_service *svc;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	th_commit_req *head, **tail; /* arrival order */
	size_t queued_jobs;
	bool stopping;
	th_commit_stats stats;
};

#define BATCH_STACK 64 /* writes of one transaction without a malloc */

/* The writes from r up to the next op (or the end) in one transaction: their answers
 * in their rc. Returns the request after them; *commits counts the transactions. */
static th_commit_req *commit_run(th_commit *c, th_commit_req *r, th_write *batch,
				 size_t cap, uint64_t *commits)
{
	th_commit_req *first = r;
	size_t n = 0;
	for (; r && !r->op && n < cap; r = r->next)
		batch[n++] = r->w;
	uint64_t made = 0;
	th_service_writes(c->svc, batch, n, &made);
	*commits += made;
	n = 0;
	for (th_commit_req *q = first; q != r; q = q->next)
		q->rc = batch[n++].s.rc;
	return r;
}

static void *committer(void *arg)
{
	th_commit *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->head)
			break;
		th_commit_req *all = c->head;
		c->head = NULL;
		c->tail = &c->head;
		size_t njobs = c->queued_jobs, writes = 0;
		c->queued_jobs = 0;
		pthread_mutex_unlock(&c->mu);

		for (th_commit_req *r = all; r; r = r->next)
			writes++;
		th_write stack[BATCH_STACK], *batch = malloc(writes * sizeof(*batch));
		size_t cap = batch ? writes : BATCH_STACK;
		if (!batch)
			batch = stack;
		/* in arrival order: the writes between two ops share one transaction */
		uint64_t commits = 0;
		for (th_commit_req *r = all; r;) {
			if (r->op) {
				r->rc = r->op(c->svc, r->arg);
				r = r->next;
			} else {
				r = commit_run(c, r, batch, cap, &commits);
			}
		}
		if (batch != stack)
			free(batch);
		/* counted before anyone is answered, so an answered writer sees its write */
		pthread_mutex_lock(&c->mu);
		c->stats.commits += commits;
		c->stats.jobs += njobs;
		c->stats.writes += writes;
		pthread_mutex_unlock(&c->mu);
		for (th_commit_req *r = all, *next; r; r = next) {
			next = r->next; /* done may hand r on: a bulk change queues its next part */
			r->done(r);
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int th_commit_start(th_commit **out, th_service *svc)
{
	th_commit *c = calloc(1, sizeof(*c));
	if (!c)
		return TH_ENOMEM;
	c->svc = svc;
	c->tail = &c->head;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, committer, c)) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return TH_ESYS;
	}
	*out = c;
	return 0;
}

int th_commit_submit(th_commit *c, th_commit_req *r)
{
	r->next = NULL;
	r->rc = 0;
	pthread_mutex_lock(&c->mu);
	size_t n = r->op ? 0 : r->w.s.n;
	if (c->stopping || c->queued_jobs + n > TH_COMMIT_QUEUE_MAX) {
		pthread_mutex_unlock(&c->mu);
		return TH_EBUSY;
	}
	*c->tail = r;
	c->tail = &r->next;
	c->queued_jobs += n;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

void th_commit_stop(th_commit *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	th_log_debug("commit", "%llu writes, %llu jobs added, in %llu commits",
		     (unsigned long long)c->stats.writes, (unsigned long long)c->stats.jobs,
		     (unsigned long long)c->stats.commits);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void th_commit_get_stats(th_commit *c, th_commit_stats *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->stats;
	pthread_mutex_unlock(&c->mu);
}
