/* The store interface: what a backend persists (jobs, their bytes, the ready queue,
 * claims, schedules, pauses) as a table of operations, and the registry that picks a
 * backend by store URL. Backends only persist; the job rules are in lifecycle.h. */
#ifndef TH_STORE_STORE_H
#define TH_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "owner.h"
#include "service.h" /* th_lmdb_opts */

typedef struct th_store th_store;

enum th_durability {
	TH_DURABLE = 0, /* every commit is on disk before it returns */
	TH_RELAXED = 1  /* commits survive a crash of the process, not of the machine */
};

typedef struct th_store_opts {
	int durability;             /* enum th_durability */
	const char *data_dir_group; /* the group that shares the data dir; NULL: none */
	const th_lmdb_opts *lmdb;   /* NULL: LMDB's defaults; other backends ignore it */
	bool migrate;               /* a backend with a schema creates or upgrades it */
	int64_t lease_us;           /* claims' lease: a backend on a network notices a dead
				       connection within it (0: not known) */
} th_store_opts;

/* A new job as the service hands it to the store (checked by th_lifecycle_check_new). */
typedef struct th_store_new {
	const char *task;
	const char *queue; /* NULL or "": the default queue */
	int32_t priority;
	uint32_t max_attempts; /* 0: TH_DEFAULT_MAX_ATTEMPTS */
	const void *input;
	size_t input_len;
	int64_t due_us;        /* later than now: delayed until then */
	bool hold;             /* held until th_store_start */
	uint32_t timeout_ms;
	uint32_t backoff_ms;
	const char *unique;    /* while a job with this key is waiting or running, adding
				  another gives that job's id instead */
	const char *cron;      /* a cron job with this schedule (see cron.h) */
	bool catchup;          /* cron: fire times missed while no host ran run once */
} th_store_new;

enum th_blob {
	TH_BLOB_INPUT = 1,
	TH_BLOB_RESULT = 2,
	TH_BLOB_ERROR = 3,  /* the latest error */
	TH_BLOB_ERRORS = 4, /* every attempt's error, "attempt N: message" lines */
	TH_BLOB_CRON = 5,   /* a cron job's schedule */
	TH_BLOB_UNIQUE = 6  /* the unique key */
};

typedef struct th_claim {
	th_job job;  /* as recorded by the claim: processing, attempts and claim_gen bumped */
	void *input; /* malloc'd copy; NULL when empty */
	size_t input_len;
} th_claim;

void th_claim_clear(th_claim *c);

typedef struct th_outcome {
	uint64_t id;
	uint64_t gen;          /* the claim_gen of the claim this outcome belongs to */
	th_job_status status;  /* completed, error, cancelled, or queued to put it back */
	bool not_started;      /* with queued: the run never began, do not count it */
	bool retry;            /* with error: run again later (with backoff) if it has
				  attempts left */
	const void *result;
	size_t result_len;
	const char *error;     /* NUL-terminated, or NULL */
} th_outcome;

/* One write transaction of a processor: record finished jobs, queue the scheduled jobs
 * that are due (firing cron jobs), then claim the next ready ones. */
typedef struct th_cycle {
	const th_outcome *outs; /* recorded first; an outcome whose job is no longer held
				   by `owner` under that claim_gen is refused and logged */
	size_t nout;
	const th_owner *owner;
	const char *queue;      /* NULL: the default queue */
	size_t max;             /* claim up to this many ready jobs, in order */
	int64_t lease_us;       /* claims are held this long unless renewed */
	th_claim *claims;       /* room for max claims */
	size_t nclaimed;        /* out */
	size_t stale;           /* out: outcomes refused */
	size_t promoted;        /* out: scheduled jobs queued (or cron runs fired) */
	int64_t next_due;       /* out: when the next scheduled job is due; 0: none */
	/* Optional: called with the claims once they are made, before they commit, to start
	 * them at once. No other writer can take them meanwhile: this transaction holds the
	 * write lock until it commits. The claims (their input too) pass to start, which
	 * must not block on the store; nclaimed is then 0 and `started` counts them. If the
	 * commit fails, they run without a claim on disk and may run again later. */
	void (*start)(void *ud, th_claim *claims, size_t n);
	void *start_ud;
	size_t started;         /* out */
	size_t lost;            /* out: started, then taken by another writer while a
				   commit was retried (their claims could not be made again) */
} th_cycle;

/* What a recover took back, by task and queue (th_recovered_add fills it). */
typedef struct th_recovered_group {
	char task[TH_TASK_NAME_MAX + 1];
	char queue[TH_QUEUE_NAME_MAX + 1]; /* "" is the default queue */
	size_t n;
} th_recovered_group;
typedef struct th_recovered {
	th_recovered_group *groups; /* malloc'd: th_recovered_clear frees it */
	size_t ngroups, cap;
} th_recovered;

/* One more job of its task and queue; TH_ENOMEM when it cannot be noted. */
int th_recovered_add(th_recovered *r, const th_job *job);
/* Forgets the groups (a transaction tried again counts afresh), keeping the memory. */
void th_recovered_reset(th_recovered *r);
void th_recovered_clear(th_recovered *r);

/* One write of th_store_writes. */
typedef enum th_write_kind {
	TH_WRITE_ADD, TH_WRITE_CANCEL, TH_WRITE_START, TH_WRITE_RETRY, TH_WRITE_CRON,
	TH_WRITE_PAUSE_QUEUE
} th_write_kind;
typedef struct th_store_write {
	th_write_kind kind;
	const th_store_new *jobs; /* add: as th_store_add */
	size_t n;
	uint64_t *ids;
	bool *existed;
	uint64_t id;              /* cancel, start, retry, cron */
	const char *spec;         /* cron: a new schedule, NULL: keep it */
	int catchup, paused;      /* cron: -1 keep; pause_queue: paused (0 or 1) */
	const char *queue;        /* pause_queue */
	int rc;                   /* out: as the write's own call would return */
} th_store_write;

typedef int (*th_store_list_fn)(const th_job *job, void *ud);
typedef void (*th_store_problem_fn)(void *ud, const char *line);
/* Whether a claim's owner lives, as the coordination sees it (th_coord_alive). */
typedef enum th_liveness (*th_store_alive_fn)(void *ud, const th_owner *o);
struct th_coord;
/* One queue's jobs per status (counts[status], 1..TH_JOB_STATUS_MAX; "" is the default
 * queue); returns non-zero to stop. */
typedef int (*th_store_queue_fn)(void *ud, const char *queue,
				 const uint64_t counts[TH_JOB_STATUS_MAX + 1]);

/* What a backend implements. Every write is one transaction: all of it or none of it
 * is stored. Each returns 0 or a negative TH_E* (error.h); TH_ENOTFOUND for an unknown
 * id, TH_ESTATE for a job whose status does not allow the change. The rules about what
 * a change does to a job come from lifecycle.h, so every backend applies the same. */
typedef struct th_store_ops {
	const char *name;   /* "lmdb" */
	const char *scheme; /* the URL scheme that picks it: "lmdb" for lmdb:PATH */

	/* `where` is the URL without its scheme (a directory for LMDB). */
	int (*open)(th_store **out, const char *where, const th_store_opts *opts);
	void (*close)(th_store *st);
	/* the coordination that goes with this store (coord.h): LMDB's is host/local/ */
	int (*coord_open)(th_store *st, struct th_coord **out);

	/* ---- writes ---- */
	/* n jobs (checked by the front) in one transaction; ids[i] the new id, or that of the job holding the
	 * unique key (existed[i] then true; existed may be NULL). */
	int (*add)(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
		   bool *existed);
	/* outcomes, due schedules and cron fires, then claims: one transaction */
	int (*cycle)(th_store *st, th_cycle *c);
	/* a processor's cycles that gain from running at the same time, each on its own
	 * connection and its own jobs (0 or 1: one at a time, as LMDB's single writer runs
	 * them anyway) */
	unsigned txns_at_once;
	/* the claims (id, gen pairs) of a cycle whose commit failed once they started */
	int (*confirm)(th_store *st, const th_owner *owner, int64_t lease_us,
		       const uint64_t *pairs, size_t n, bool *lost);
	int (*renew)(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n);
	/* give back jobs of owners that are gone (lifecycle: th_lifecycle_orphaned), their
	 * liveness asked through alive; by (may be NULL) gets them by task and queue */
	int (*recover)(th_store *st, const th_owner *self, th_store_alive_fn alive, void *ud,
		       size_t *n, th_recovered *by);
	int (*recover_started)(th_store *st, const uint64_t *pairs, size_t n, size_t *done);
	int (*cancel)(th_store *st, uint64_t id); /* TH_EBUSY: running, asked to stop */
	int (*start)(th_store *st, uint64_t id);
	int (*retry)(th_store *st, uint64_t id);
	/* n jobs changed in one transaction, each one's outcome in rcs[i] (th_store_change) */
	int (*change)(th_store *st, th_change what, const uint64_t *ids, size_t n, int *rcs);
	int (*cron_update)(th_store *st, uint64_t id, const char *spec, int catchup);
	int (*cron_pause)(th_store *st, uint64_t id, bool paused);
	int (*pause_queue)(th_store *st, const char *queue, bool paused);
	int (*clean)(th_store *st, int64_t before, uint64_t *removed);
	/* optional: what the backend keeps small by itself, called by each host about once
	 * a second (PostgreSQL: folds the deltas of the counts and the minutes when no read
	 * did) */
	int (*tidy)(th_store *st);
	/* optional: n writes in one transaction, in order, each refusal (found before the
	 * write changes anything) in its rc; any other error fails them all */
	int (*writes)(th_store *st, th_store_write *w, size_t n);

	/* ---- reads: a consistent snapshot each ---- */
	int (*get)(th_store *st, uint64_t id, th_job *out);
	int (*blob)(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len);
	/* jobs whose status bit is in mask, by id after `from` (0: all), newest first when
	 * reverse; fn runs with nothing of the store held and may call it */
	int (*list)(th_store *st, unsigned mask, uint64_t from, bool reverse,
		    th_store_list_fn fn, void *ud);
	/* count and count_queues read counts the writes keep in their transaction, not the
	 * jobs; count_queues (optional: NULL walks every job) gives each queue with jobs */
	int (*count)(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1]);
	int (*count_queues)(th_store *st, th_store_queue_fn fn, void *ud);
	/* jobs finished at or after `since` (optional: NULL walks every job) */
	int (*finished_since)(th_store *st, int64_t since, uint64_t *n);
	/* adds to out[m - first] the jobs each minute m (seconds since the epoch / 60) of
	 * first .. first + n - 1 added, completed and failed, of queue (NULL: all), as the
	 * writes counted them in their transactions (optional: NULL gives zeros) */
	int (*minutes)(th_store *st, const char *queue, int64_t first, size_t n,
		       th_minute *out);
	int (*pending)(th_store *st, uint64_t *queued, uint64_t *processing);
	int (*peek)(th_store *st, const char *queue, bool *ready, int64_t *next_due);
	int (*queue_paused)(th_store *st, const char *queue, bool *paused);
	int (*cancel_requested)(th_store *st, const uint64_t *ids, size_t n, bool *requested);
	/* every record against every index, and the counts against a recount of the
	 * records: one line per problem (th_store_check) */
	int (*check)(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		     uint64_t *problems);
} th_store_ops;

/* A backend defines struct th_store for itself, its first member being
 * `const th_store_ops *ops`: the front functions below call through it. */

/* ---- the front: what the service and the processors call ---- */

/* Opens (creating if needed) the store a URL names: "lmdb:DIR" or a directory, which
 * must exist. TH_EINVAL for an unknown scheme. */
int th_store_open(th_store **out, const char *url, const th_store_opts *opts);
void th_store_close(th_store *st);
/* Opens the coordination of the hosts that share this store (coord.h). */
int th_store_coord_open(th_store *st, struct th_coord **out);

/* Adds n jobs in one transaction; their ids (increasing) go to ids[0..n). A job whose
 * unique key is taken gets the id of the job that holds it, and existed[i] (when
 * existed is not NULL) tells. TH_EINVAL for a bad cron schedule or unique key. */
int th_store_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
		 bool *existed);
/* TH_ENOTFOUND for an unknown id. */
int th_store_get(th_store *st, uint64_t id, th_job *out);
/* A malloc'd copy of a job's bytes, NUL-terminated past len for convenience. A job
 * without such bytes gives an empty buffer; an unknown job TH_ENOTFOUND. */
int th_store_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len);

/* Cancels a job: a queued, delayed, held or cron job at once; a running one is asked to
 * stop (TH_EBUSY: it ends cancelled when its task returns). TH_ESTATE when finished. */
int th_store_cancel(th_store *st, uint64_t id);
/* A held (or delayed) job is queued now. TH_ESTATE for other statuses. */
int th_store_start(th_store *st, uint64_t id);
/* A job that ended in error or was cancelled is queued again, its attempts reset. */
int th_store_retry(th_store *st, uint64_t id);
/* Cancels, retries or removes n jobs in one transaction: rcs[i] is 0, TH_EBUSY (a
 * running job asked to stop), TH_ESTATE or TH_ENOTFOUND for each; any other error
 * leaves them all as they were. */
int th_store_change(th_store *st, th_change what, const uint64_t *ids, size_t n, int *rcs);
/* A cron job's new schedule (NULL: keep it) and catch-up choice; its next fire time is
 * computed from now. TH_EINVAL for a bad schedule, TH_ESTATE for a job not a cron job. */
int th_store_cron_update(th_store *st, uint64_t id, const char *spec, int catchup);
/* Pauses (no fires until resumed) or resumes a cron job. */
int th_store_cron_pause(th_store *st, uint64_t id, bool paused);

/* n writes in order, in one transaction where the backend can, else each in its own;
 * *commits gets the transactions tried. Each write's rc is what its own call would
 * return: a refusal (TH_ESTATE, TH_ENOTFOUND, a running job asked to stop: TH_EBUSY)
 * is that write's alone, and when the shared transaction fails for another reason (a
 * full database, a bad schedule) each is made alone, so each error is its own. */
void th_store_writes(th_store *st, th_store_write *w, size_t n, uint64_t *commits);

/* Removes finished jobs (completed, error, cancelled) that finished before `before`
 * (microseconds since the epoch; 0: all of them). */
int th_store_clean(th_store *st, int64_t before, uint64_t *removed);

/* The backend's own upkeep (th_store_ops.tidy); 0 when it has none. */
int th_store_tidy(th_store *st);

/* Pauses a queue (its jobs stay queued, nothing claims them) or resumes it; for every
 * process on the store. */
int th_store_pause_queue(th_store *st, const char *queue, bool paused);
int th_store_queue_paused(th_store *st, const char *queue, bool *paused);

/* Ids of jobs (of those in ids) asked to stop while running. */
int th_store_cancel_requested(th_store *st, const uint64_t *ids, size_t n, bool *requested);

/* Calls fn for each job whose status bit (1u << status) is in mask, in id order
 * (newest first when reverse), starting after `from` (0: from the start). fn returns
 * non-zero to stop. */
int th_store_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		  th_store_list_fn fn, void *ud);
/* Number of jobs per status: counts[status] for 1..TH_JOB_STATUS_MAX, from counts kept
 * in the transaction of every change (LMDB), not by reading the jobs. */
int th_store_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1]);
/* The same per queue: fn for each queue that has jobs, in queue name order. */
int th_store_count_queues(th_store *st, th_store_queue_fn fn, void *ud);
/* Jobs that finished (completed, error, cancelled) at or after `since` (microseconds
 * since the epoch), from the finished index. */
int th_store_finished_since(th_store *st, int64_t since, uint64_t *n);
/* Jobs added, completed and ended in error per minute: out[0..n) for the n minutes up
 * to the one holding `now` (seconds since the epoch), oldest first, n at most
 * TH_MINUTES_MAX (older minutes are not kept). Every write counts them in its own
 * transaction: a new job is added (cron runs too), a job whose status becomes
 * completed or error counts there. queue NULL: every queue. */
int th_store_minutes(th_store *st, const char *queue, int64_t now, size_t n, th_minute *out);
/* Jobs queued (every queue, paused ones too) and processing, without reading the jobs,
 * however many there are. */
int th_store_pending(th_store *st, uint64_t *queued, uint64_t *processing);
/* Whether the queue has a job to claim (or a scheduled job is due, which a cycle would
 * queue first), and when the next scheduled job is due (0: none). */
int th_store_peek(th_store *st, const char *queue, bool *ready, int64_t *next_due);

int th_store_cycle(th_store *st, th_cycle *c);
/* the store's txns_at_once, at least 1 */
unsigned th_store_txns_at_once(th_store *st);
/* After a cycle whose commit failed once its claims had started: makes the same claims
 * (id, generation pairs) again, each job still queued one generation behind; lost[i]
 * tells which could not be (the job moved on meanwhile). */
int th_store_confirm(th_store *st, const th_owner *owner, int64_t lease_us,
		     const uint64_t *pairs, size_t n, bool *lost);
/* Extends the lease of every job `owner` holds to now + lease_us; *n counts them. */
int th_store_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n);
/* Takes back the jobs of owners that are gone or whose lease ran out, except self's:
 * each goes back to queued with its attempt counted, or to error when it has no
 * attempts left (th_lifecycle_give_back). alive(ud, owner) tells whether an owner
 * lives (NULL: unknown for all, the lease alone speaks). *n counts them; by (NULL: not
 * wanted) gets them by task and queue, reset first. */
int th_store_recover(th_store *st, const th_owner *self, th_store_alive_fn alive, void *ud,
		     size_t *n, th_recovered *by);
/* Pairs (id, claim generation) of jobs a dead host started before their claim committed
 * (coord.h's notes): each job still queued one generation behind that claim has the
 * attempt counted, and ends in error when it has none left. *done counts them. */
int th_store_recover_started(th_store *st, const uint64_t *pairs, size_t n, size_t *done);

/* Walks every record and every index in one read transaction and reports each
 * inconsistency as one line ("job 42: in the ready index but its record says
 * completed"; "the counts: queue "q", queued: 5 kept, 4 in the records") through fn; *jobs counts the records, *problems the lines. A record whose
 * bytes were damaged but still decode is not seen (LMDB keeps no checksums). Works while
 * hosts write. TH_EDAMAGED when a read faulted (then the store is closed to use). */
int th_store_check(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		   uint64_t *problems);

/* The name of the store's backend ("lmdb"). */
const char *th_store_name(th_store *st);

/* ---- the registry ---- */

/* The backend a store URL names ("lmdb:PATH"; a plain path is an LMDB directory), and
 * in *where the rest of the URL; NULL for an unknown scheme. */
const th_store_ops *th_store_backend(const char *url, const char **where);
/* The registered backends, NULL-terminated (the conformance suite runs on each). */
extern const th_store_ops *const th_store_backends[];

#endif
