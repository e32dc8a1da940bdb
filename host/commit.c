/* The group committer: one thread takes every write queued since its last commit, adds
 * all their jobs in one store transaction and answers each writer after that commit. */
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

/* Adds the jobs of every request in list in one transaction. When that fails, each
 * request is tried on its own, so that one request's error (a unique key's cron
 * schedule, a full store) is its own and not its neighbours'. */
static uint64_t commit_adds(th_commit *c, th_commit_req *list, size_t njobs)
{
	th_new_job *jobs = njobs > 1 ? malloc(njobs * sizeof(*jobs)) : NULL;
	uint64_t *ids = jobs ? malloc(njobs * sizeof(*ids)) : NULL;
	bool *existed = ids ? calloc(njobs, sizeof(*existed)) : NULL;
	size_t nreq = 0;
	for (th_commit_req *r = list; r; r = r->next)
		nreq++;
	int rc = -1;
	uint64_t commits = 0;
	if (existed && nreq > 1) {
		size_t k = 0;
		for (th_commit_req *r = list; r; r = r->next)
			for (size_t i = 0; i < r->n; i++)
				jobs[k++] = r->jobs[i];
		rc = th_service_add_batch(c->svc, jobs, njobs, ids, existed);
		if (rc == 0) {
			commits++;
			k = 0;
			for (th_commit_req *r = list; r; r = r->next) {
				for (size_t i = 0; i < r->n; i++, k++) {
					r->ids[i] = ids[k];
					if (r->existed)
						r->existed[i] = existed[k];
				}
				r->rc = 0;
			}
		}
	}
	if (rc != 0) {
		for (th_commit_req *r = list; r; r = r->next) {
			r->rc = th_service_add_batch(c->svc, r->jobs, r->n, r->ids, r->existed);
			commits++;
		}
	}
	free(jobs);
	free(ids);
	free(existed);
	return commits;
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
		c->queued_jobs = 0;
		pthread_mutex_unlock(&c->mu);

		/* the adds go in one transaction; other writes follow, in arrival order */
		th_commit_req *adds = NULL, **at = &adds, *ops = NULL, **ot = &ops;
		size_t njobs = 0, writes = 0;
		for (th_commit_req *r = all, *next; r; r = next, writes++) {
			next = r->next;
			r->next = NULL;
			if (r->op) {
				*ot = r;
				ot = &r->next;
			} else {
				*at = r;
				at = &r->next;
				njobs += r->n;
			}
		}
		uint64_t commits = adds ? commit_adds(c, adds, njobs) : 0;
		for (th_commit_req *r = ops; r; r = r->next)
			r->rc = r->op(c->svc, r->arg);
		/* counted before anyone is answered, so an answered writer sees its write */
		pthread_mutex_lock(&c->mu);
		c->stats.commits += commits;
		c->stats.jobs += njobs;
		c->stats.writes += writes;
		pthread_mutex_unlock(&c->mu);
		*at = ops; /* adds, then the other writes */
		for (th_commit_req *r = adds, *next; r; r = next) {
			next = r->next;
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
	if (c->stopping || c->queued_jobs + r->n > TH_COMMIT_QUEUE_MAX) {
		pthread_mutex_unlock(&c->mu);
		return TH_EBUSY;
	}
	*c->tail = r;
	c->tail = &r->next;
	c->queued_jobs += r->n;
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
	th_log_debug("commit", "%llu writes, %llu jobs added in %llu commits",
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
