/* The API's route table, how a path finds its route (and a job id in it), and the
 * error answers with the HTTP status that fits each service error. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#define R TH_SCOPE_READ
#define W TH_SCOPE_WRITE
#define A TH_SCOPE_ADMIN
const th_api_route th_api_routes[] = {
	{"POST", "/jobs", W, th_api_jobs_add},
	{"GET", "/jobs", R, th_api_jobs_list},
	{"POST", "/jobs/batch", W, th_api_jobs_batch},
	{"POST", "/jobs/bulk", W, th_api_jobs_bulk},
	{"GET", "/jobs/{id}", R, th_api_jobs_get},
	{"GET", "/jobs/{id}/input", R, th_api_jobs_bytes},
	{"GET", "/jobs/{id}/result", R, th_api_jobs_bytes},
	{"GET", "/jobs/{id}/error", R, th_api_jobs_bytes},
	{"GET", "/jobs/{id}/errors", R, th_api_jobs_bytes},
	{"GET", "/jobs/{id}/progress", R, th_api_jobs_progress},
	{"POST", "/jobs/{id}/cancel", W, th_api_jobs_op},
	{"POST", "/jobs/{id}/start", W, th_api_jobs_op},
	{"POST", "/jobs/{id}/retry", W, th_api_jobs_op},
	{"POST", "/wait", R, th_api_wait_jobs},
	{"GET", "/stats", R, th_api_stats},
	{"GET", "/stats/history", R, th_api_stats_history},
	{"GET", "/queues", R, th_api_queues},
	{"POST", "/queues/{name}/pause", A, th_api_queue_pause},
	{"POST", "/queues/{name}/resume", A, th_api_queue_pause},
	{"GET", "/cron", R, th_api_cron_list},
	{"POST", "/cron", W, th_api_cron_add},
	{"PATCH", "/cron/{id}", W, th_api_cron_update},
	{"DELETE", "/cron/{id}", W, th_api_cron_remove},
	{"POST", "/cron/{id}/pause", W, th_api_cron_pause},
	{"POST", "/cron/{id}/resume", W, th_api_cron_pause},
	{"GET", "/cron/{id}/next", R, th_api_cron_next},
	{"POST", "/clean", A, th_api_clean},
	{"GET", "/tasks", R, th_api_tasks},
	{"GET", "/health", R, th_api_health},
	{"GET", "/hosts", R, th_api_hosts},
	{"GET", "/openapi.json", R, th_api_openapi_doc},
	{NULL, NULL, 0, NULL},
};

const th_api_route th_api_root_routes[] = {
	{"GET", "/metrics", R, th_api_metrics},
	{NULL, NULL, 0, NULL},
};

/* Whether path fits pattern, filling r's id and name. *bad_id is set for a path that
 * fits but for an {id} that is no job id. */
static bool fits(const char *pattern, const char *path, th_api_req *r, bool *bad_id)
{
	const char *p = pattern, *s = path;
	while (*p && *s) {
		if (*p == '{') {
			const char *pe = strchr(p, '}');
			size_t n = strcspn(s, "/");
			if (strncmp(p, "{id}", 4) == 0) {
				char buf[32], *end;
				snprintf(buf, sizeof(buf), "%.*s", (int)(n < 31 ? n : 31), s);
				errno = 0;
				unsigned long long v = strtoull(buf, &end, 10);
				if (n > 20 || errno || *end || !v || buf[0] < '1' || buf[0] > '9')
					*bad_id = true;
				r->id = v;
			} else if (n == 0 || n >= sizeof(r->name)) {
				return false;
			} else {
				memcpy(r->name, s, n);
				r->name[n] = 0;
			}
			p = pe + 1;
			s += n;
			continue;
		}
		if (*p++ != *s++)
			return false;
	}
	return !*p && !*s;
}

int th_api_match(th_api_req *r, const th_api_route **route)
{
	bool path_known = false;
	for (const th_api_route *rt = r->root ? th_api_root_routes : th_api_routes; rt->method;
	     rt++) {
		bool bad_id = false;
		if (!fits(rt->pattern, r->path, r, &bad_id))
			continue;
		path_known = true;
		if (strcmp(rt->method, r->method) != 0)
			continue;
		if (bad_id) {
			th_api_error(r, 400, "bad_request", "'%s' is not a job id (1, 2, ...)",
				     r->path);
			return 400;
		}
		*route = rt;
		return 0;
	}
	if (path_known) {
		th_api_error(r, 405, "method_not_allowed", "%s is not allowed on %s%s", r->method,
			     r->root ? "" : "/v1", r->path);
		return 405;
	}
	if (r->root)
		th_api_error(r, 404, "no_route", "no such path: %s (the API is under /v1/)",
			     r->path);
	else
		th_api_error(r, 404, "no_route", "no such path: /v1%s", r->path);
	return 404;
}

int th_api_ok(th_api_req *r, unsigned status, json_t *doc)
{
	json_decref(r->answer);
	r->status = status;
	r->answer = doc ? doc : json_null();
	return 0;
}

int th_api_error(th_api_req *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *m = json_string(msg);
	if (!m) /* not UTF-8: what a client sent, echoed */
		m = json_string("the request holds text that is not UTF-8");
	return th_api_ok(r, status, json_pack("{s:{s:s, s:o}}", "error", "code", code,
					      "message", m));
}

int th_api_fail(th_api_req *r, int rc, uint64_t id, const char *doing)
{
	unsigned long long i = (unsigned long long)id;
	switch (rc) {
	case TH_ENOTFOUND:
		return th_api_error(r, 404, "not_found", "job %llu not found", i);
	case TH_EINVAL:
		return th_api_error(r, 400, "bad_request", "%s: %s", doing, th_strerror(rc));
	case TH_EUNKNOWNTASK:
		return th_api_error(r, 400, "unknown_task", "%s: no loaded plugin provides the task",
				    doing);
	case TH_ESTATE:
		return th_api_error(r, 409, "conflict", "%s: job %llu is not in a state that "
				    "allows it", doing, i);
	case TH_ETOOBIG:
		return th_api_error(r, 413, "too_large", "%s: input larger than max_input_size",
				    doing);
	case TH_EFULL:
	case TH_ENOSPC:
		return th_api_error(r, 503, "full", "%s: %s", doing, th_strerror(rc));
	case TH_EBUSY:
		return th_api_error(r, 429, "busy", "%s: too many writes waiting; try again",
				    doing);
	case TH_EIO: /* the store's own log says more: a lost connection, a disk error */
		return th_api_error(r, 503, "unhealthy", "%s: the store cannot be reached or "
				    "read; try again", doing);
	}
	return th_api_error(r, 500, "internal", "%s: %s", doing, th_strerror(rc));
}
