/* The API's routes beyond single jobs: stats, queues (pause, resume), cron jobs (list,
 * add, update, pause, resume, remove, next fire times), clean, tasks, health, hosts and
 * the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "config.h"
#include "cron.h"
#include "jobjson.h"

int th_api_stats(th_api_req *r)
{
	int rc;
	json_t *doc = th_jobjson_stats(r->svc, &rc);
	if (!doc)
		return th_api_fail(r, rc, 0, "stats");
	th_commit_stats cs;
	th_commit_get_stats(r->api->commit, &cs);
	json_object_set_new(doc, "group_commit",
			    json_pack("{s:I, s:I, s:I}", "writes", (json_int_t)cs.writes,
				      "jobs_added", (json_int_t)cs.jobs, "commits",
				      (json_int_t)cs.commits));
	json_object_set_new(doc, "waits", json_integer((json_int_t)atomic_load(&r->api->waits)));
	return th_api_ok(r, 200, doc);
}

/* ?minutes=N (1..TH_MINUTES_MAX, default all of them) &queue=NAME (default every one) */
int th_api_stats_history(th_api_req *r)
{
	const char *ms = r->arg(r, "minutes"), *queue = r->arg(r, "queue");
	char *end;
	long n = ms ? strtol(ms, &end, 10) : TH_MINUTES_MAX;
	if (ms && (!*ms || *end || n < 1 || n > TH_MINUTES_MAX))
		return th_api_error(r, 400, "bad_request", "minutes: expected a whole number from "
				    "1 to %d", TH_MINUTES_MAX);
	if (queue && !th_queue_name_valid(queue))
		return th_api_error(r, 400, "bad_request", "queue: '%.70s' is no queue name "
				    "(letters, digits, '_', '.', '-', up to %d)", queue,
				    TH_QUEUE_NAME_MAX);
	int rc;
	json_t *doc = th_jobjson_history(r->svc, queue, (size_t)n, &rc);
	return doc ? th_api_ok(r, 200, doc) : th_api_fail(r, rc, 0, "stats history");
}

static json_t *queue_json(th_api_req *r, const char *name, const char *strategy)
{
	bool paused = false;
	th_service_queue_paused(r->svc, name, &paused);
	return json_pack("{s:s, s:s, s:b}", "name", name, "strategy", strategy, "paused", paused);
}

int th_api_queues(th_api_req *r)
{
	const th_config *cfg = r->api->cfg;
	json_t *arr = json_array();
	json_array_append_new(arr, queue_json(r, "default", cfg->strategy));
	for (unsigned i = 0; i < cfg->nqueues; i++)
		json_array_append_new(arr, queue_json(r, cfg->queues[i].name,
						      cfg->queues[i].strategy));
	return th_api_ok(r, 200, json_pack("{s:o}", "queues", arr));
}

static void queue_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	if (c->rc)
		th_api_fail(r, c->rc, 0, r->name);
	else
		th_api_ok(r, 200, json_pack("{s:s, s:b}", "queue", r->name, "paused",
					    strstr(r->path, "/pause") != NULL));
	th_api_later_done(r);
}

int th_api_queue_pause(th_api_req *r)
{
	if (!th_queue_name_valid(r->name))
		return th_api_error(r, 400, "bad_request", "bad queue name '%s' (1 to 64 letters, "
				    "digits, '_', '.', '-'; the default queue is 'default')",
				    r->name);
	r->commit = (th_commit_req){.w = {.s = {.kind = TH_WRITE_PAUSE_QUEUE, .queue = r->name,
						 .paused = strstr(r->path, "/pause") != NULL}},
				    .done = queue_done, .ud = r};
	return th_api_submit(r);
}

/* ---- cron ---- */

/* A cron job with its schedule and how its last run (while that is kept) went. */
static json_t *cron_json(th_service *svc, const th_job *job)
{
	char *spec = NULL;
	th_service_cron_spec(svc, job->id, &spec);
	json_t *o = th_jobjson_job(job);
	json_object_set_new(o, "schedule", json_string(spec ? spec : ""));
	free(spec);
	th_job run;
	if (job->last_run && th_service_get(svc, job->last_run, &run) == 0) {
		json_object_set_new(o, "last_run_status",
				    json_string(th_job_status_name(run.status)));
		json_object_set_new(o, "last_run_finished", th_jobjson_time(run.finished_us));
	}
	return o;
}

static int cron_one(const th_job *job, void *ud)
{
	void **a = ud;
	json_array_append_new(a[1], cron_json(a[0], job));
	return 0;
}

int th_api_cron_list(th_api_req *r)
{
	json_t *arr = json_array();
	void *a[2] = {r->svc, arr};
	int rc = th_service_list(r->svc, TH_MASK(TH_JOB_CRONJOB), 0, false, cron_one, a);
	if (rc) {
		json_decref(arr);
		return th_api_fail(r, rc, 0, "cron list");
	}
	return th_api_ok(r, 200, json_pack("{s:o}", "cron", arr));
}

/* The cron job of the route, or the answer that it is none (-1). */
static int cron_job(th_api_req *r, th_job *job)
{
	int rc = th_service_get(r->svc, r->id, job);
	if (rc)
		return th_api_fail(r, rc, r->id, "cron"), -1;
	if (job->status != TH_JOB_CRONJOB)
		return th_api_error(r, 409, "conflict", "job %llu is %s, not a cron job",
				    (unsigned long long)job->id, th_job_status_name(job->status)),
		       -1;
	return 0;
}

struct cron_change {
	const char *schedule;
	int catchup;
};

static void cron_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	th_job job;
	int rc = c->rc;
	if (rc || (rc = th_service_get(r->svc, r->id, &job)))
		th_api_fail(r, rc, r->id, "cron");
	else
		th_api_ok(r, 200, cron_json(r->svc, &job));
	th_api_later_done(r);
}

/* A change of the route's cron job: removed (DELETE: cancelled), updated (PATCH: ch) or
 * paused and resumed, made by the committer in order with the other writes. */
static int cron_change(th_api_req *r, const struct cron_change *ch)
{
	th_job job;
	if (cron_job(r, &job))
		return 0;
	th_store_write w = {.kind = TH_WRITE_CRON, .id = r->id, .catchup = -1, .paused = -1};
	if (strcmp(r->method, "DELETE") == 0)
		w.kind = TH_WRITE_CANCEL;
	else if (ch)
		w.spec = ch->schedule, w.catchup = ch->catchup;
	else
		w.paused = strstr(r->path, "/pause") != NULL;
	r->commit = (th_commit_req){.w = {.s = w}, .done = cron_done, .ud = r};
	return th_api_submit(r);
}

int th_api_cron_update(th_api_req *r)
{
	struct cron_change *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return th_api_error(r, 503, "no_memory", "out of memory");
	r->scratch = ch;
	r->free_scratch = free;
	char err[256];
	if (th_api_decode_cron_update(r->body, &ch->schedule, &ch->catchup, err, sizeof(err)))
		return th_api_error(r, 400, "bad_request", "%s", err);
	th_cron cron;
	if (ch->schedule && th_cron_parse(ch->schedule, &cron, err, sizeof(err)))
		return th_api_error(r, 400, "bad_request", "schedule: bad cron schedule '%.100s': "
				    "%s", ch->schedule, err);
	if (ch->schedule && th_cron_next(&cron, th_clock_now_us()) < 0)
		return th_api_error(r, 400, "bad_request", "schedule: '%.100s' never fires",
				    ch->schedule);
	return cron_change(r, ch);
}

int th_api_cron_pause(th_api_req *r)
{
	return cron_change(r, NULL);
}

int th_api_cron_remove(th_api_req *r)
{
	return cron_change(r, NULL);
}

int th_api_cron_next(th_api_req *r)
{
	th_job job;
	if (cron_job(r, &job))
		return 0;
	const char *cs = r->arg(r, "count");
	char *end;
	long count = cs ? strtol(cs, &end, 10) : 5;
	if (cs && (!*cs || *end || count < 1 || count > TH_API_NEXT_MAX))
		return th_api_error(r, 400, "bad_request", "count: expected a whole number from 1 "
				    "to %d", TH_API_NEXT_MAX);
	bool paused = job.flags & TH_JOB_CRON_PAUSED; /* it fires at no time until resumed */
	if (paused)
		return th_api_ok(r, 200, json_pack("{s:I, s:b, s:[]}", "id", (json_int_t)job.id,
						   "paused", paused, "next"));
	char *spec = NULL, err[256];
	th_cron cron;
	int rc = th_service_cron_spec(r->svc, job.id, &spec);
	if (rc)
		return th_api_fail(r, rc, job.id, "cron next");
	rc = th_cron_parse(spec, &cron, err, sizeof(err));
	free(spec);
	if (rc)
		return th_api_error(r, 500, "internal", "job %llu: its schedule does not parse: %s",
				    (unsigned long long)job.id, err);
	json_t *arr = json_array();
	int64_t t = th_clock_now_us();
	for (long i = 0; i < count && (t = th_cron_next(&cron, t)) >= 0; i++)
		json_array_append_new(arr, th_jobjson_time(t));
	return th_api_ok(r, 200, json_pack("{s:I, s:b, s:o}", "id", (json_int_t)job.id,
					   "paused", paused, "next", arr));
}

/* ---- clean: finished jobs removed, all or those older than older_than ---- */

struct clean {
	double older_than; /* seconds; 0: every finished job */
	uint64_t removed;
};

static int op_clean(th_service *svc, void *arg)
{
	struct clean *cl = ((th_api_req *)arg)->scratch;
	return th_service_clean_older(svc, cl->older_than, &cl->removed);
}

static void clean_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	struct clean *cl = r->scratch;
	if (c->rc)
		th_api_fail(r, c->rc, 0, "clean");
	else
		th_api_ok(r, 200, json_pack("{s:I}", "removed", (json_int_t)cl->removed));
	th_api_later_done(r);
}

int th_api_clean(th_api_req *r)
{
	struct clean *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return th_api_error(r, 503, "no_memory", "out of memory");
	r->scratch = cl;
	r->free_scratch = free;
	char err[256];
	if (th_api_decode_clean(r->body, &cl->older_than, err, sizeof(err)))
		return th_api_error(r, 400, "bad_request", "clean: %s", err);
	r->commit = (th_commit_req){.op = op_clean, .arg = r, .done = clean_done, .ud = r};
	return th_api_submit(r);
}

/* ---- the rest ---- */

int th_api_tasks(th_api_req *r)
{
	json_t *doc = th_jobjson_tasks(r->svc);
	return doc ? th_api_ok(r, 200, doc) : th_api_error(r, 503, "no_memory", "out of memory");
}

int th_api_health(th_api_req *r)
{
	uint64_t queued = 0, processing = 0;
	int rc = th_service_pending(r->svc, &queued, &processing);
	if (rc)
		return th_api_error(r, 503, "unhealthy", "the store cannot be read: %s",
				    th_strerror(rc));
	return th_api_ok(r, 200, json_pack("{s:s, s:I, s:I, s:b}", "status", "ok", "queued",
					   (json_int_t)queued, "processing",
					   (json_int_t)processing, "processors_running",
					   th_service_is_processing(r->svc)));
}

int th_api_hosts(th_api_req *r)
{
	th_host_info *h;
	size_t n;
	int rc = th_service_hosts(r->svc, &h, &n);
	if (rc)
		return th_api_error(r, 503, "unhealthy", "the hosts' records cannot be read: %s",
				    th_strerror(rc));
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		char inst[17];
		snprintf(inst, sizeof(inst), "%016llx", (unsigned long long)h[i].instance);
		json_array_append_new(arr, json_pack(
			"{s:s, s:s, s:I, s:s, s:I, s:I, s:o, s:o, s:f, s:b}", "instance", inst,
			"name", h[i].name, "pid", (json_int_t)h[i].pid, "strategy", h[i].strategy,
			"workers", (json_int_t)h[i].workers, "running", (json_int_t)h[i].running,
			"started", th_jobjson_time(h[i].started_us),
			"heartbeat", th_jobjson_time(h[i].heartbeat_us),
			"lease_seconds", h[i].lease_us / 1e6, "gone", h[i].gone));
	}
	free(h);
	return th_api_ok(r, 200, json_pack("{s:o}", "hosts", arr));
}

int th_api_openapi_doc(th_api_req *r)
{
	json_error_t e;
	json_t *doc = json_loads(th_api_openapi, 0, &e);
	return doc ? th_api_ok(r, 200, doc)
		   : th_api_error(r, 500, "internal", "the compiled-in OpenAPI document does not "
				  "parse: %s", e.text);
}
