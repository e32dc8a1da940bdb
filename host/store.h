/* The job store: jobs, their input/result/error bytes, the ready queue and the claims,
 * kept in one LMDB environment. The only module that includes lmdb.h; every state
 * change is one write transaction, and a batch of changes can share one. */
#ifndef TH_STORE_H
#define TH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "owner.h"

typedef struct th_store th_store;

#define TH_DEFAULT_MAX_ATTEMPTS 3

enum th_durability {
	TH_DURABLE = 0, /* every commit is on disk before it returns */
	TH_RELAXED = 1  /* commits survive a crash of the process, not of the machine */
};

typedef struct th_store_opts {
	uint64_t map_size;     /* initial map size in bytes; 0: 64 MiB */
	uint64_t max_map_size; /* the map grows up to this; 0: 16 GiB */
	int durability;        /* enum th_durability */
} th_store_opts;

/* Opens (creating if needed) the environment in the existing directory `dir`. */
int th_store_open(th_store **out, const char *dir, const th_store_opts *opts);
void th_store_close(th_store *st);

typedef struct th_store_new {
	const char *task;
	const char *queue; /* NULL or "": the default queue */
	int32_t priority;
	uint32_t max_attempts; /* 0: TH_DEFAULT_MAX_ATTEMPTS */
	const void *input;
	size_t input_len;
} th_store_new;

/* Adds n jobs in one transaction; their ids (increasing) go to ids[0..n). */
int th_store_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids);

/* TH_ENOTFOUND for an unknown id. */
int th_store_get(th_store *st, uint64_t id, th_job *out);

enum th_blob { TH_BLOB_INPUT = 1, TH_BLOB_RESULT = 2, TH_BLOB_ERROR = 3 };
/* A malloc'd copy of a job's bytes, NUL-terminated past len for convenience. A job
 * without such bytes gives an empty buffer; an unknown job TH_ENOTFOUND. */
int th_store_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len);

/* A queued job becomes cancelled; TH_ESTATE for any other status. */
int th_store_cancel(th_store *st, uint64_t id);

/* Removes completed, error and cancelled jobs; *removed counts them. */
int th_store_clean(th_store *st, uint64_t *removed);

/* Calls fn for each job whose status bit (1u << status) is in mask, in id order
 * (newest first when reverse), starting after `from` (0: from the start). fn returns
 * non-zero to stop. */
typedef int (*th_store_list_fn)(const th_job *job, void *ud);
int th_store_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		  th_store_list_fn fn, void *ud);

/* Number of jobs per status: counts[status] for 1..TH_JOB_STATUS_MAX. */
int th_store_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1]);

int th_store_has_ready(th_store *st, const char *queue, bool *out);

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
	const void *result;
	size_t result_len;
	const char *error;     /* NUL-terminated, or NULL */
} th_outcome;

/* One write transaction of a processor: record finished jobs, then claim the next. */
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
} th_cycle;

int th_store_cycle(th_store *st, th_cycle *c);

/* Extends the lease of every job `owner` holds to now + lease_us; *n counts them. */
int th_store_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n);

/* Takes back the jobs of owners that are gone (th_owner_alive) or whose lease ran out,
 * except self's: each goes back to queued with its attempt counted, or to error when it
 * has no attempts left. *n counts them. */
int th_store_recover(th_store *st, const th_owner *self, size_t *n);

/* Tests inject failures here: called before every commit with what the transaction
 * does; a non-zero TH_E* return aborts the transaction and is returned instead. */
typedef int (*th_store_commit_hook)(void *ud, const char *what);
void th_store_set_commit_hook(th_store *st, th_store_commit_hook fn, void *ud);

/* Size of the map now, and how much of it is in use, in bytes. */
int th_store_usage(th_store *st, uint64_t *map_size, uint64_t *used);

#endif
