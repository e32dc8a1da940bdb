/* What the HTTP layer (server_http.c) and the route handlers (server_*.c) share: one
 * request, how a handler answers it now or later, the route table and the decoders. */
#ifndef TH_SERVER_API_H
#define TH_SERVER_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commit.h"
#include "server_auth.h"
#include "service.h"

/* The server's state the handlers need. */
typedef struct th_api {
	th_service *svc;
	const struct th_config *cfg;
	th_commit *commit;
	_Atomic size_t waits; /* long polls going on */
} th_api;
typedef struct th_api_req th_api_req;

/* Defaults and bounds of the list and wait calls. */
#define TH_API_LIST_DEFAULT 100
#define TH_API_LIST_MAX 1000
#define TH_API_WAIT_IDS_MAX 1000
#define TH_API_WAIT_MAX_S 3600.0
#define TH_API_NEXT_MAX 1000

struct th_api_req {
	th_api *api;
	th_service *svc;
	const char *method;
	const char *path;   /* after /v1, or the whole path (root) */
	bool root;          /* not under /v1: GET /metrics */
	uint64_t id;        /* {id} of the route */
	char name[80];      /* {name} of the route */
	json_t *body;       /* the parsed body: an object or array; NULL when empty */
	unsigned max_batch;
	/* query arguments: a lookup the HTTP layer provides */
	const char *(*arg)(th_api_req *r, const char *key);
	void *conn;
	/* the answer */
	unsigned status;
	json_t *answer;
	char *text;               /* instead of answer: malloc'd, sent as content_type */
	size_t text_len;
	const char *content_type;
	/* set by a handler that answers later: it calls th_api_later_done() */
	bool later;
	th_commit_req commit;
	void *scratch;                 /* freed with the request */
	void (*free_scratch)(void *);
	/* a long poll (POST /v1/wait) */
	uint64_t *wait_ids;
	size_t nwait;
	int64_t wait_end;              /* monotonic us */
	th_api_req *next_wait;
};

typedef int (*th_api_fn)(th_api_req *r);

typedef struct th_api_route {
	const char *method;
	const char *pattern; /* after /v1, with {id} (a job id) and {name} */
	enum th_scope scope;
	th_api_fn fn;
} th_api_route;

/* Every route, ended by a NULL method; th_api_root_routes are not under /v1. */
extern const th_api_route th_api_routes[];
extern const th_api_route th_api_root_routes[];
/* The OpenAPI document served at /v1/openapi.json (generated from openapi.json). */
extern const char th_api_openapi[];

/* Finds the route of method and path (after /v1): 0 and *route, or the HTTP status
 * for none (404 no such path, 405 no such method for it) with r's answer set. */
int th_api_match(th_api_req *r, const th_api_route **route);

/* Answers r with status and {"error":{"code":code,"message":...}}; returns 0. */
int th_api_error(th_api_req *r, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Answers r with the error of a service call rc about job id (0: none). */
int th_api_fail(th_api_req *r, int rc, uint64_t id, const char *doing);
/* Answers r with status and doc (taking the reference). */
int th_api_ok(th_api_req *r, unsigned status, json_t *doc);

/* Queues r->commit with the committer; r answers once it is done (r->commit.done
 * fills the answer, then th_api_later_done). */
int th_api_submit(th_api_req *r);
/* Resumes r's connection with the answer it has now (any thread). */
void th_api_later_done(th_api_req *r);
/* Adds r to the long polls (POST /v1/wait). */
int th_api_wait(th_api_req *r);
/* Answers a long poll when its jobs are all finished, or anyway when timed_out;
 * returns whether it answered. */
bool th_api_wait_check(th_api_req *r, bool timed_out);

/* ---- decoding request bodies (no I/O: fuzzed by tests/fuzz/fuzz_request.c) ---- */

/* One job of POST /v1/jobs or an element of POST /v1/jobs/batch: malloc'd input in
 * *input (free it), the options pointing into obj. err gets the field and the cause. */
int th_api_decode_job(json_t *obj, th_new_job *job, th_add_opts *opts, void **input,
		      char *err, size_t errlen);
/* POST /v1/wait: {"ids":[...], "timeout": seconds}. ids is malloc'd. */
int th_api_decode_wait(json_t *obj, uint64_t **ids, size_t *n, double *timeout, char *err,
		       size_t errlen);
/* PATCH /v1/cron/{id}: {"schedule": "...", "catchup": bool}, either may be missing. */
int th_api_decode_cron_update(json_t *obj, const char **schedule, int *catchup, char *err,
			      size_t errlen);
/* POST /v1/clean: {"older_than": seconds or "7d"}, or no body (0: every finished job). */
int th_api_decode_clean(json_t *obj, double *older_than, char *err, size_t errlen);
/* POST /v1/jobs/bulk: {"action": "retry|cancel|delete", "ids": [...]} or {"action": ...,
 * "filter": {...}}: the ids malloc'd, in increasing order without repeats, or *filter
 * (pointing into obj) the filter object, its keys checked by the handler. TH_ETOOBIG
 * for more than max_ids ids. */
int th_api_decode_bulk(json_t *obj, size_t max_ids, th_change *what, uint64_t **ids,
		       size_t *n, json_t **filter, char *err, size_t errlen);
/* A "2026-12-01T08:00:00Z" or seconds-since-the-epoch text (query or body) -> us. */
int th_api_parse_time(const char *s, int64_t *us);

/* route handlers */
int th_api_jobs_add(th_api_req *r);
int th_api_jobs_batch(th_api_req *r);
int th_api_jobs_get(th_api_req *r);
int th_api_jobs_bytes(th_api_req *r);
int th_api_jobs_op(th_api_req *r);
int th_api_jobs_list(th_api_req *r);
int th_api_jobs_bulk(th_api_req *r);
int th_api_jobs_progress(th_api_req *r);
int th_api_wait_jobs(th_api_req *r);
int th_api_stats(th_api_req *r);
int th_api_stats_history(th_api_req *r);
int th_api_queues(th_api_req *r);
int th_api_queue_pause(th_api_req *r);
int th_api_cron_list(th_api_req *r);
int th_api_cron_add(th_api_req *r);
int th_api_cron_update(th_api_req *r);
int th_api_cron_pause(th_api_req *r);
int th_api_cron_remove(th_api_req *r);
int th_api_cron_next(th_api_req *r);
int th_api_clean(th_api_req *r);
int th_api_tasks(th_api_req *r);
int th_api_health(th_api_req *r);
int th_api_hosts(th_api_req *r);
int th_api_openapi_doc(th_api_req *r);
int th_api_metrics(th_api_req *r);

#endif
