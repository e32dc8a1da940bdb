/* The interface between the peers benchmark's workloads (peers.c) and the systems it
 * measures (peer_*.c): how a client adds a job, and how consumers claim and complete them. */
#ifndef PEERS_H
#define PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A job's payload is "SEQ NS": its sequence number in the run and the monotonic time just
 * before its add was called (0 for jobs queued before the clock started). */
#define BP_PAYLOAD_MAX 48
/* Most jobs a consumer claims at once, where the system claims in batches. */
#define BP_CLAIM_MAX 100
/* Most hosts of one column (taskhost on PostgreSQL). */
#define BP_HOSTS_MAX 3

typedef struct bp_job {
	uint64_t id; /* the system's id, where it has one */
	size_t len;
	char payload[BP_PAYLOAD_MAX];
} bp_job;

typedef struct bp_run bp_run;

/* A client that adds jobs: one connection per producer process. */
typedef struct bp_adder {
	void *(*open)(bp_run *r); /* NULL on failure, with the cause on stderr */
	/* Returns once the job is acknowledged (durable in the durable class); 0 or -1. */
	int (*add)(void *conn, const char *payload, size_t len);
	void (*close)(void *conn);
} bp_adder;

/* Consumers that run in a host of the system's own (taskhost): it claims and completes. */
typedef struct bp_host {
	/* Ready to run `consumers` jobs at once, not running yet. */
	int (*start)(bp_run *r, unsigned consumers);
	int (*go)(bp_run *r);
	/* Until n jobs were started (bp_started) and completed; -1 after the deadline. */
	int (*wait)(bp_run *r, size_t n, double timeout);
	void (*stop)(bp_run *r);
} bp_host;

/* A system: where its jobs live, and how consumers claim and complete them. */
typedef struct bp_system {
	const char *name;
	const char *pid_env;  /* the variable holding its server's pid; NULL: no server */
	const char *wake;     /* how an idle consumer learns of a new job */
	const char *bytes_of; /* whose write_bytes the bytes-per-job row counts */
	const char *config[2]; /* the server's configuration in the durable and relaxed class */
	/* Once before the runs (r has no queue): brings the server to a steady state. May be
	 * NULL. */
	int (*prepare)(bp_run *r);
	/* Per run, in the harness's process: a fresh, empty queue. */
	int (*setup)(bp_run *r);
	void (*teardown)(bp_run *r);
	/* Queues k jobs with sequence numbers 0..k-1, as fast as the system allows. */
	int (*fill)(bp_run *r, size_t k);
	/* Before the clock starts and before the bytes written are read: lets the server put
	 * its earlier work on disk (PostgreSQL: CHECKPOINT). May be NULL. */
	void (*settle)(bp_run *r);
	/* Whether the system's final state holds exactly n completed jobs and nothing else;
	 * 0, or -1 with the cause in why. */
	int (*check)(bp_run *r, size_t n, char *why, size_t whylen);
	/* Consumers that the harness runs, one thread and connection each, claiming and
	 * completing through these ... */
	void *(*copen)(bp_run *r);
	/* Claims 1..max jobs into jobs[], waiting as long as none is there; -1 on an error or
	 * after cinterrupt. */
	int (*claim)(void *c, bp_job *jobs, size_t max, size_t *n);
	int (*complete)(void *c, const bp_job *jobs, size_t n); /* acknowledged on return */
	void (*cinterrupt)(void *c); /* from another thread: a waiting claim returns -1 */
	void (*cclose)(void *c);
	/* ... or that run in a host of its own (then the five above are NULL). */
	const bp_host *host;
} bp_system;

/* One column of the table: a system and the client that adds to it. */
typedef struct bp_column {
	const char *title;
	const char *key; /* selects it on the command line */
	bool ours;       /* a taskhost column: compared with the best of the others */
	const bp_system *sys;
	const bp_adder *adder;
	int variant; /* the system's own choice among its ways to run (enum bp_taskhost_via) */
} bp_column;

struct bp_run {
	const bp_column *col;
	bool relaxed;  /* the durability class */
	unsigned tag;  /* differs from run to run: names for fresh queues */
	char *dir;     /* scratch space for this run, on the disk measured */
	pid_t server;  /* the server's main process, 0 for none */
	void *state;   /* the system's */
	unsigned consumers; /* jobs the workload's consumers run at once */
	/* the HTTP front doors of the system's hosts: a producer adds through one of them */
	char url[BP_HOSTS_MAX][64];
	unsigned nurls;
};

/* Called by a consumer when it starts a job, with the job's payload. */
void bp_started(const char *payload, size_t len);
/* The same, from another process: the job started at ns (bu_now_ns's clock). */
void bp_started_at(const char *payload, size_t len, int64_t ns);
/* Jobs started so far in this workload. */
size_t bp_started_count(void);

/* The systems (peer_*.c). */
/* taskhost's columns: producers add through the C API (each add its own commit, no host
 * while they add), or through a host that runs during the whole workload: HTTP over TCP
 * (th_client_*) or one `taskhost add` process per job on the host's socket. */
enum bp_taskhost_via { BP_VIA_CAPI, BP_VIA_HTTP, BP_VIA_CLI };
extern const bp_system bp_taskhost;
extern const bp_adder bp_taskhost_capi, bp_taskhost_http, bp_taskhost_cli;
/* taskhost on its PostgreSQL store (BP_PG): the column's variant is how many hosts, each a
 * `taskhost run` process with its HTTP API, which the producers add through. */
extern const bp_system bp_taskhost_pg;
/* How long each of `repeat` claims (th_service_claim_next) takes on each of n PostgreSQL
 * stores, which hold queued jobs enough, one claim on each in turn: us[k * repeat + i] for
 * store k. 0, or -1 with the cause on stderr. */
int bp_taskhost_pg_claims(const char *const *stores, int n, int repeat, double *us);
#define BP_CLAIM_WARMUP 20 /* claims on each before those: not timed */
#define BP_CLAIM_STORES 8  /* stores at most */
/* Helpers both share (peer_taskhost.c): the producers' token, written to path as a
 * write token; queueing jobs 0..k-1 in batches; until n jobs started and none is queued
 * or running in svc's store; whether svc's store holds exactly n completed jobs. */
struct th_service;
#define BP_TASKHOST_TOKEN "peers-bench-token-0123456789abcdef"
int bp_taskhost_tokens(const char *path);
int bp_taskhost_fill(struct th_service *svc, size_t k);
int bp_taskhost_wait(struct th_service *svc, size_t n, double timeout);
int bp_taskhost_check(struct th_service *svc, size_t n, char *why, size_t len);
extern const bp_system bp_beanstalkd;
extern const bp_adder bp_beanstalkd_put;
extern const bp_system bp_redis;
extern const bp_adder bp_redis_lpush;
extern const bp_system bp_postgres;
extern const bp_adder bp_postgres_insert;
/* Runs sql on a connection of its own to BP_PG (db: in that database instead); 0 or -1
 * with the cause on stderr. */
int bp_pg_exec(const char *db, const char *sql);

/* A stream socket connected to the unix socket at path, or -1 with the cause on stderr. */
int bp_unix_connect(const char *path);
/* The payload of job seq (ns: when its add is called, 0 before the clock); its length. */
size_t bp_payload(char buf[BP_PAYLOAD_MAX], size_t seq, int64_t ns);

#endif
