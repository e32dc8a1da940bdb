/* The task service: the API the taskhost CLI uses and embedders link (libtaskhost).
 * Add jobs by task name, look at them, cancel and clean, and run them with a processor. */
#ifndef TH_SERVICE_H
#define TH_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "job.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct th_service th_service;
struct th_plugin;

/* Options only an LMDB store has (th_service_opts.lmdb). */
typedef struct th_lmdb_opts {
	uint64_t map_size;     /* initial map size in bytes; 0: TH_LMDB_MAP_DEFAULT */
	uint64_t max_map_size; /* the map grows up to this; 0: TH_LMDB_MAX_MAP_DEFAULT */
} th_lmdb_opts;

#define TH_LMDB_MAP_DEFAULT (64ull << 20)
#define TH_LMDB_MAX_MAP_DEFAULT (16ull << 30)

/* The defaults of th_service_opts (and of the config keys that set them). */
#define TH_DEFAULT_MAX_INPUT (16u << 20)  /* bytes */
#define TH_DEFAULT_MAX_RESULT (16u << 20) /* bytes */
#define TH_DEFAULT_LEASE_TIME 30          /* seconds */

typedef struct th_service_opts {
	const char *data_dir;   /* the host's directory (and its LMDB store unless `store`
				   names another); it must exist, belong to this user and be
				   writable by no one else */
	const char *store;      /* the store's URL: "lmdb:DIR", a directory, or
				   "postgresql://..."; NULL: data_dir as an LMDB store */
	const th_lmdb_opts *lmdb; /* options of an LMDB store; NULL: its defaults */
	bool migrate;           /* a store with a schema (PostgreSQL) is created or upgraded
				   at open; else an older schema is refused */
	const char *data_dir_group; /* a group whose members share the data dir: it may
				   then be writable by that group; NULL: none */
	const char *plugin_dir; /* every *.so here is loaded; NULL: none */
	bool inspect_only;      /* read plugin descriptors without running init: enough to
				   add jobs and list tasks, not to run jobs */
	int durability;         /* 0: durable (fsync per commit), 1: relaxed */
	size_t max_input;       /* bytes; 0: TH_DEFAULT_MAX_INPUT */
	size_t max_result;      /* bytes; 0: TH_DEFAULT_MAX_RESULT */
	double lease_time;      /* seconds a claim lasts unless its host renews it; 0:
				   TH_DEFAULT_LEASE_TIME */
	uint32_t max_attempts;  /* default for new jobs, host crashes included; 0:
				   TH_DEFAULT_MAX_ATTEMPTS */
	bool allow_insecure_plugins; /* load plugins other users could have written */
	double keep_finished;   /* seconds: finished jobs older than this are removed by a
				   running processor; 0: kept until cleaned */
	/* Plugins run only in worker processes (the process strategy): this process never
	 * loads them, so no plugin code can take it down. Adding jobs then cannot check
	 * task names: a job for a task no plugin provides ends in error when it runs. */
	bool isolate_plugins;
	const char *runner;     /* the worker program; NULL: taskhost-runner next to this
				   program's executable, else in the installed libexec dir */
	/* Called once, from a thread of the service, when processing finds that the store
	 * can no longer be used (lock.mdb or data.mdb removed or replaced, a read of the
	 * map faulted: TH_ELOCKLOST, TH_EDAMAGED): every write is refused from then on, so
	 * the embedder should stop and close the service. NULL: only logged. */
	void (*on_fatal)(void *ud, int rc);
	void *on_fatal_ud;
} th_service_opts;

/* Opens the store and loads the plugins (a refused plugin is logged, not an error; a
 * plugin_dir that cannot be read or is refused as insecure is TH_EPLUGIN). */
int th_service_open(th_service **out, const th_service_opts *opts);
/* Stops processing (waiting for running jobs) and closes everything. NULL is fine. */
void th_service_close(th_service *svc);

/* ---- jobs ---- */

/* How a job is added: all zero is a plain job, queued now. */
typedef struct th_add_opts {
	const char *queue;     /* NULL: the task's queue, else the default queue */
	int32_t priority;      /* higher first; FIFO within a priority */
	uint32_t max_attempts; /* 0: the task's, else the service's */
	double timeout;        /* seconds; 0: the task's, else none */
	double backoff;        /* seconds before the first retry; 0: the task's, else 1 */
	int64_t at_us;         /* queued at this time (microseconds since the epoch, UTC) */
	double delay;          /* or this many seconds from now */
	bool hold;             /* held until th_service_start */
	const char *unique;    /* while a job with this key is delayed, held, queued or
				  running, adding another returns its id instead */
	const char *cron;      /* a cron job with this schedule (standard 5 fields,
				  lovely.remotetask's "minute=0,10 ...", or "every 90s") */
	bool catchup;          /* cron: fire times missed while no host ran run once */
} th_add_opts;

/* Queues a job for `task` with `len` bytes of input; the new id goes to *id.
 * TH_EINVAL for a task name that is not 1..255 printable ASCII characters without
 * spaces, TH_EUNKNOWNTASK when no loaded plugin provides the task, TH_ETOOBIG past
 * max_input, TH_EFULL when the database is full. */
int th_service_add(th_service *svc, const char *task, const void *input, size_t len,
		   uint64_t *id);
/* With options: TH_EINVAL also for a bad queue name, cron schedule or option.
 * *existed (may be NULL) tells that a job with the unique key was there already and
 * *id is that job. */
int th_service_add_ex(th_service *svc, const char *task, const void *input, size_t len,
		      const th_add_opts *opts, uint64_t *id, bool *existed);
/* Adds n jobs in one transaction. */
typedef struct th_new_job {
	const char *task;
	const void *input;
	size_t len;
	const th_add_opts *opts; /* may be NULL */
} th_new_job;
int th_service_add_many(th_service *svc, const th_new_job *jobs, size_t n, uint64_t *ids);
/* The same, with existed[i] (may be NULL) telling which unique keys were taken. */
int th_service_add_batch(th_service *svc, const th_new_job *jobs, size_t n, uint64_t *ids,
			 bool *existed);
/* The checks of an add without adding: 0 when the store would take the job (its cron
 * schedule is checked when it is added). */
int th_service_add_check(th_service *svc, const th_new_job *job);

/* TH_ENOTFOUND for an unknown id in all of these. */
int th_service_get(th_service *svc, uint64_t id, th_job *out);
int th_service_status(th_service *svc, uint64_t id, th_job_status *out);
/* malloc'd copies (NUL-terminated past len); empty when the job has none (yet). */
int th_service_result(th_service *svc, uint64_t id, void **data, size_t *len);
int th_service_error(th_service *svc, uint64_t id, char **msg);
/* Every error message of the job, one "attempt N: message" line per failed attempt. */
int th_service_errors(th_service *svc, uint64_t id, char **text);
/* A job's input, malloc'd (NUL-terminated past len). */
int th_service_input(th_service *svc, uint64_t id, void **data, size_t *len);
/* A job's unique key ("" when it has none). */
int th_service_unique(th_service *svc, uint64_t id, char **key);
/* A cron job's schedule. */
int th_service_cron_spec(th_service *svc, uint64_t id, char **spec);
/* What th_service_change_many does to each job. */
typedef enum th_change {
	TH_CHANGE_CANCEL = 1, /* as th_service_cancel */
	TH_CHANGE_RETRY = 2,  /* as th_service_retry */
	TH_CHANGE_REMOVE = 3  /* a finished job (completed, error, cancelled) is removed with
				 its bytes; TH_ESTATE for any other */
} th_change;
/* Changes n jobs in one transaction; rcs[i] is each job's outcome: 0, TH_EBUSY (a
 * running job asked to stop), TH_ESTATE (its status does not allow the change) or
 * TH_ENOTFOUND. Any other error leaves every job as it was and is returned. */
int th_service_change_many(th_service *svc, th_change what, const uint64_t *ids, size_t n,
			   int *rcs);
/* Cancels a job: a queued, delayed, held or cron job at once (a cron job fires no
 * more). A running job is asked to stop: TH_EBUSY, and it ends cancelled when its task
 * returns. TH_ESTATE for a finished job. */
int th_service_cancel(th_service *svc, uint64_t id);
/* A held (or delayed) job is queued now; TH_ESTATE for other statuses. */
int th_service_start(th_service *svc, uint64_t id);
/* A job that ended in error or was cancelled is queued again, its attempts reset. */
int th_service_retry(th_service *svc, uint64_t id);
/* A cron job's new schedule (NULL: keep) and catch-up choice (-1: keep), its next
 * fire time computed from now; pausing stops its fires until resumed. */
int th_service_cron_update(th_service *svc, uint64_t id, const char *spec, int catchup);
int th_service_cron_pause(th_service *svc, uint64_t id, bool paused);
/* Removes completed, error and cancelled jobs; keeps the others. */
int th_service_clean(th_service *svc, uint64_t *removed);
/* Only those that finished before `before` (microseconds since the epoch). */
int th_service_clean_before(th_service *svc, int64_t before, uint64_t *removed);
/* Those that finished more than older_than seconds ago (0: every one). */
int th_service_clean_older(th_service *svc, double older_than, uint64_t *removed);
/* Pauses a queue (for every host on the data dir: its jobs stay queued) or resumes it. */
int th_service_pause_queue(th_service *svc, const char *queue, bool paused);
int th_service_queue_paused(th_service *svc, const char *queue, bool *paused);

#define TH_MASK(status) (1u << (status))
#define TH_MASK_ALL (~0u)
/* Jobs whose status is in mask, by id (newest first if reverse), after `from` (0: all).
 * fn returns non-zero to stop. */
typedef int (*th_job_fn)(const th_job *job, void *ud);
int th_service_list(th_service *svc, unsigned mask, uint64_t from, bool reverse,
		    th_job_fn fn, void *ud);
/* counts[status] for each status. */
int th_service_count(th_service *svc, uint64_t counts[TH_JOB_STATUS_MAX + 1]);
/* The same per queue ("" the default queue), fn called for each queue with jobs; fn
 * returns non-zero to stop. */
int th_service_count_queues(th_service *svc,
			    int (*fn)(void *ud, const char *queue,
				      const uint64_t counts[TH_JOB_STATUS_MAX + 1]),
			    void *ud);
/* Jobs finished (completed, error, cancelled) at or after `since` (µs since the epoch). */
int th_service_finished_since(th_service *svc, int64_t since, uint64_t *n);
/* Jobs added, completed and ended in error in one minute, as the store counted them in
 * the transactions that made the changes (th_service_minutes). */
typedef struct th_minute {
	int64_t start; /* seconds since the epoch, a multiple of 60 */
	uint64_t added, completed, failed;
} th_minute;
#define TH_MINUTES_MAX 60 /* the store keeps the last hour */
/* The last n minutes (1..TH_MINUTES_MAX), oldest first, the current one last, of one
 * queue (NULL: every queue; "default" or "" the default queue): out[0..n). */
int th_service_minutes(th_service *svc, const char *queue, size_t n, th_minute *out);
/* Jobs queued and processing, without reading every job (th_store_pending). */
int th_service_pending(th_service *svc, uint64_t *queued, uint64_t *processing);
/* Walks every job record and index of the data dir, read-only (hosts may run), and
 * calls fn with one line per inconsistency found; *jobs counts the records, *problems
 * the lines (th_store_check). */
int th_service_check(th_service *svc, void (*fn)(void *ud, const char *line), void *ud,
		     uint64_t *jobs, uint64_t *problems);
/* Where the service's jobs are, for messages: the data dir, or a PostgreSQL store's
 * connection string with its password as ***. */
const char *th_service_store_shown(th_service *svc);

/* ---- the processor calls of the seed ---- */

int th_service_has_jobs_waiting(th_service *svc, bool *out);
/* Claims the next queued job for this service: it becomes processing, owned by this
 * service, and no other thread or process can claim it. TH_ENOJOB when none waits. A
 * claimed job not run by th_service_process_next goes back to the queue at close. */
int th_service_claim_next(th_service *svc, uint64_t *id);
/* Takes back the jobs of hosts that died or lost their lease (a started processor does
 * this by itself, at start and then continuously); *n counts them. */
int th_service_recover(th_service *svc, size_t *n);
/* Runs the job `id` that th_service_claim_next claimed (id 0: claims the next one
 * first) on the calling thread and records its outcome. *ran tells whether a job ran.
 * TH_ESTATE for a job this service did not claim that way, or whose outcome was refused
 * because the job was taken back meanwhile. */
int th_service_process_next(th_service *svc, uint64_t id, bool *ran);

/* ---- processors ---- */

typedef struct th_processor_args {
	double wait_time;     /* seconds an idle processor waits before looking again when no
				 wake-up came; 1.0 (at least 0.001 is used) */
	unsigned max_threads; /* multi: jobs at once; 5 */
	/* process: jobs run in worker processes (taskhost-runner) */
	unsigned max_workers;         /* worker processes, so jobs at once; 2 */
	uint64_t worker_memory_limit; /* address space of each worker (RLIMIT_AS); 0: none */
	unsigned worker_max_jobs;     /* a worker is replaced after this many jobs; 0: never */
	double job_timeout;           /* seconds; then the job is asked to stop; 0: none */
	double kill_grace;            /* seconds after that before the worker is killed; 5 */
} th_processor_args;

/* The longest job_timeout (and timeout of a job), in seconds: 7 days. */
#define TH_JOB_TIMEOUT_MAX (7 * 86400)

/* The defaults of th_processor_args. */
#define TH_PROCESSOR_ARGS_DEFAULT \
	{.wait_time = 1.0, .max_threads = 5, .max_workers = 2, .kill_grace = 5}

/* The strategy ("simple", "multi" or "process") and its arguments used by the next
 * start; TH_EINVAL for an unknown strategy or a bad argument. NULL args: the defaults. */
int th_service_set_processor(th_service *svc, const char *strategy,
			     const th_processor_args *args);
/* Named queues one service runs processors for, besides the default queue. */
#define TH_QUEUES_MAX 32
/* The same for a named queue: starting processing starts a processor for the default
 * queue and one for each queue set here (TH_EINVAL past TH_QUEUES_MAX). */
int th_service_set_queue(th_service *svc, const char *queue, const char *strategy,
			 const th_processor_args *args);
/* The strategy and arguments the next start uses. */
void th_service_processor(th_service *svc, const char **strategy, th_processor_args *args);
int th_service_start_processing(th_service *svc); /* TH_EBUSY when already started */
/* Stops claiming, waits for running jobs to finish; queued jobs stay queued. */
int th_service_stop_processing(th_service *svc);
/* Asks running jobs to stop now (their th_cancelled turns true), for a shutdown that
 * cannot wait: a job that then ends without success goes back to the queue. */
void th_service_interrupt(th_service *svc);
bool th_service_is_processing(th_service *svc);

/* A host that processes jobs of this store, as it last told (every third of its lease
 * while it processes; its record goes when it stops). */
#define TH_HOST_NAME_MAX 64
#define TH_HOST_STRATEGY_MAX 256
typedef struct th_host_info {
	uint64_t instance;       /* its service instance (th_job.owner of its claims) */
	uint32_t pid;
	char name[TH_HOST_NAME_MAX + 1];         /* its machine's host name */
	char strategy[TH_HOST_STRATEGY_MAX + 1]; /* "queue: strategy" per queue, ", " between */
	uint32_t workers;        /* jobs it can run at once */
	uint32_t running;        /* jobs it ran at its last heartbeat */
	int64_t started_us;      /* when it started processing, Unix microseconds */
	int64_t heartbeat_us;    /* when it last told */
	int64_t lease_us;        /* its lease: no heartbeat for this long and it is gone */
	bool gone;               /* no heartbeat within its lease, or its process died */
} th_host_info;
/* Every host that told, oldest start first: *out (free() it), *n. Records of hosts
 * gone for over an hour are removed. */
int th_service_hosts(th_service *svc, th_host_info **out, size_t *n);
/* 0, or the TH_E* code of what made the store unusable while processing (on_fatal). */
int th_service_fatal(th_service *svc);
/* The worker threads running a job now: the job ids go to ids[0..*n). */
int th_service_threads(th_service *svc, uint64_t *ids, size_t max, size_t *n);

/* ---- waiting for jobs ---- */

/* How far a running job is (0..1), when its task reports progress. */
bool th_service_progress(th_service *svc, uint64_t id, double *done);
/* To wait for any job to finish anywhere on the data dir: read the sequence, check the
 * jobs, then sleep until it moves (or timeout_us passes; < 0: no limit). */
uint32_t th_service_finished_seq(th_service *svc);
void th_service_wait_finished(th_service *svc, uint32_t seq, int64_t timeout_us);

/* ---- tasks ---- */

/* Registers a plugin descriptor linked into the program (label names it in the log). */
int th_service_register(th_service *svc, const struct th_plugin *desc, const char *label);
/* Loads plugins added to plugin_dir since the last load. */
int th_service_reload_plugins(th_service *svc, unsigned *loaded, unsigned *refused);
size_t th_service_task_count(th_service *svc);
/* Plugin files refused and why: returns how many; copies file and why of the i-th. */
size_t th_service_refused(th_service *svc, size_t i, char *file, size_t filelen, char *why,
			  size_t whylen);
int th_service_task_info(th_service *svc, size_t i, th_task_info *out);

#ifdef __cplusplus
}
#endif

#endif
