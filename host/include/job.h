/* A job as the task service shows it (id, task, status, times, attempts, sizes), and
 * the description of a task.
 * Part of the public API for embedders. */
#ifndef TH_JOB_H
#define TH_JOB_H

#include <stdbool.h>
#include <stdint.h>

#define TH_TASK_NAME_MAX 255
#define TH_QUEUE_NAME_MAX 64

/* Values are stored on disk: never renumber. */
typedef enum th_job_status {
	TH_JOB_QUEUED = 1,
	TH_JOB_PROCESSING = 2,
	TH_JOB_COMPLETED = 3,
	TH_JOB_ERROR = 4,
	TH_JOB_CANCELLED = 5,
	TH_JOB_DELAYED = 6, /* waits for its time (due_us): added with a delay, or a retry */
	TH_JOB_HELD = 7,    /* waits for th_service_start */
	TH_JOB_CRONJOB = 8  /* a cron job: fires a run of its task at each fire time */
} th_job_status;

#define TH_JOB_STATUS_MAX 8

/* Runs a job may get (its host's crashes included) unless it or its task says. */
#define TH_DEFAULT_MAX_ATTEMPTS 3
#define TH_MAX_ATTEMPTS_LIMIT 1000 /* the most runs a job may be given */

/* th_job.flags */
#define TH_JOB_CANCEL_REQUESTED 0x1 /* running, asked to stop: it ends cancelled */
#define TH_JOB_CRON_PAUSED 0x2      /* a cron job that does not fire until resumed */
#define TH_JOB_CRON_CATCHUP 0x4     /* a cron job that runs once for fire times missed */
#define TH_JOB_UNIQUE 0x8           /* has a unique key */

typedef struct th_job {
	uint64_t id;
	th_job_status status;
	char task[TH_TASK_NAME_MAX + 1];
	char queue[TH_QUEUE_NAME_MAX + 1]; /* "" is the default queue */
	int32_t priority;
	uint32_t attempts;     /* runs started so far */
	uint32_t max_attempts; /* runs it may get, crashes of its host included */
	int64_t added_us;      /* microseconds since the epoch, UTC */
	int64_t started_us;    /* 0 until first claimed */
	int64_t finished_us;   /* 0 until finished */
	uint64_t input_len;
	uint64_t result_len;
	uint64_t claim_gen;    /* bumped by every claim; fences stale outcomes */
	uint64_t owner;        /* instance id of the claiming service, 0 when unclaimed */
	uint32_t owner_pid;
	uint32_t flags;        /* TH_JOB_* flags */
	int64_t due_us;        /* delayed: when it is queued; cronjob: its next fire time */
	uint32_t timeout_ms;   /* a run is asked to stop after this; 0: none */
	uint32_t backoff_ms;   /* first retry delay, doubled for each further one; 0: 1 s */
	uint64_t parent;       /* the cron job that fired this run, or 0 */
	uint64_t last_run;     /* cronjob: its latest run */
	uint32_t fires;        /* cronjob: runs fired so far */
} th_job;

/* A task some loaded plugin provides. */
typedef struct th_task_info {
	const char *name;
	const char *description;
	const char *file;    /* the plugin's file, or its label */
	const char *plugin;  /* the plugin's name */
	const char *version; /* the plugin's version */
} th_task_info;

/* "queued", "processing", ... ; NULL for a value out of range. */
const char *th_job_status_name(th_job_status s);
/* The inverse; 0 or TH_EINVAL. */
int th_job_status_parse(const char *name, th_job_status *out);
/* A task name: 1..255 printable ASCII characters, no spaces. */
bool th_task_name_valid(const char *name);
/* A queue name: up to 64 of [A-Za-z0-9_.-] ("" and "default" are the default queue). */
bool th_queue_name_valid(const char *name);

/* completed, error and cancelled: nothing more will happen to the job. */
bool th_job_status_final(th_job_status s);
/* Seconds its last run took, from start to finish; -1 while unfinished or never run. */
double th_job_took(const th_job *j);

#endif
