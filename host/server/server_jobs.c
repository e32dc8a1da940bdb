/* The API's job routes: add one or many (group-committed), get a job and its bytes,
 * cancel, start, retry, list with filters and a cursor, progress, and long-poll waits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "cron.h"
#include "jobjson.h"

/* ---- adding ---- */

struct adds {
	size_t n;
	bool batch;
	th_new_job *jobs;
	th_add_opts *opts;
	void **inputs;
	uint64_t *ids;
	bool *existed;
};

static void adds_free(void *p)
{
	struct adds *a = p;
	for (size_t i = 0; i < a->n; i++)
		free(a->inputs[i]);
	free(a->jobs);
	free(a->opts);
	free(a->inputs);
	free(a->ids);
	free(a->existed);
	free(a);
}

static void add_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	struct adds *a = r->scratch;
	if (c->rc) {
		th_api_fail(r, c->rc, 0, a->batch ? "batch" : "add");
	} else if (!a->batch) {
		th_api_ok(r, a->existed[0] ? 200 : 201,
			  json_pack("{s:I, s:b}", "id", (json_int_t)a->ids[0], "existed",
				    a->existed[0]));
	} else {
		json_t *ids = json_array(), *ex = json_array();
		for (size_t i = 0; i < a->n; i++) {
			json_array_append_new(ids, json_integer((json_int_t)a->ids[i]));
			json_array_append_new(ex, json_boolean(a->existed[i]));
		}
		th_api_ok(r, 201, json_pack("{s:o, s:o}", "ids", ids, "existed", ex));
	}
	th_api_later_done(r);
}

/* Checks one decoded job as an add would, so that a bad job is answered at once and
 * never fails the commit it would share with other requests. */
static int check_job(th_api_req *r, const th_new_job *j, const char *which)
{
	int rc = th_service_add_check(r->svc, j);
	if (rc == TH_EINVAL)
		return th_api_error(r, 400, "bad_request", "%sbad task name '%.100s', queue name "
				    "or unique key (1 to 255 bytes)", which, j->task), -1;
	if (rc == TH_EUNKNOWNTASK)
		return th_api_error(r, 400, "unknown_task", "%sno loaded plugin provides task "
				    "'%.100s'", which, j->task), -1;
	if (rc)
		return th_api_fail(r, rc, 0, *which ? which : "add"), -1;
	if (j->opts->cron) {
		th_cron cron;
		char err[256];
		if (th_cron_parse(j->opts->cron, &cron, err, sizeof(err)))
			return th_api_error(r, 400, "bad_request", "%sbad cron schedule '%.100s': %s",
					    which, j->opts->cron, err), -1;
		if (th_cron_next(&cron, th_clock_now_us()) < 0)
			return th_api_error(r, 400, "bad_request", "%scron schedule '%.100s' never "
					    "fires", which, j->opts->cron), -1;
	}
	return 0;
}

static int add_jobs(th_api_req *r, json_t *list, bool batch, bool cron)
{
	size_t n = batch ? json_array_size(list) : 1;
	if (batch && !json_is_array(list))
		return th_api_error(r, 400, "bad_request", "expected {\"jobs\": [job, ...]}");
	if (batch && n == 0)
		return th_api_error(r, 400, "bad_request", "jobs: the batch is empty");
	if (n > r->max_batch)
		return th_api_error(r, 413, "too_large", "jobs: %zu jobs in one batch, more than "
				    "max_batch (%u)", n, r->max_batch);
	struct adds *a = calloc(1, sizeof(*a));
	if (a) {
		a->batch = batch;
		a->jobs = calloc(n, sizeof(*a->jobs));
		a->opts = calloc(n, sizeof(*a->opts));
		a->inputs = calloc(n, sizeof(*a->inputs));
		a->ids = calloc(n, sizeof(*a->ids));
		a->existed = calloc(n, sizeof(*a->existed));
	}
	if (!a || !a->jobs || !a->opts || !a->inputs || !a->ids || !a->existed) {
		if (a)
			adds_free(a);
		return th_api_error(r, 503, "no_memory", "out of memory");
	}
	r->scratch = a;
	r->free_scratch = adds_free;
	for (size_t i = 0; i < n; i++) {
		char err[256], which[48] = "";
		if (batch)
			snprintf(which, sizeof(which), "jobs[%zu]: ", i);
		json_t *o = batch ? json_array_get(list, i) : list;
		int rc = th_api_decode_job(o, &a->jobs[i], &a->opts[i], &a->inputs[i], err,
					   sizeof(err));
		a->n = i + 1;
		if (rc)
			return th_api_error(r, 400, "bad_request", "%s%s", which, err);
		if (cron && !a->opts[i].cron)
			return th_api_error(r, 400, "bad_request", "cron: missing: a cron job needs "
					    "its schedule");
		if (check_job(r, &a->jobs[i], which))
			return 0;
	}
	r->commit = (th_commit_req){.w = {.s = {.kind = TH_WRITE_ADD, .n = n, .ids = a->ids,
						 .existed = a->existed},
					  .jobs = a->jobs},
				    .done = add_done, .ud = r};
	return th_api_submit(r);
}

int th_api_jobs_add(th_api_req *r)
{
	return add_jobs(r, r->body, false, false);
}

int th_api_cron_add(th_api_req *r)
{
	return add_jobs(r, r->body, false, true);
}

int th_api_jobs_batch(th_api_req *r)
{
	json_t *jobs = json_object_get(r->body, "jobs");
	if (!json_is_object(r->body) || json_object_size(r->body) != 1 || !jobs)
		return th_api_error(r, 400, "bad_request", "expected {\"jobs\": [job, ...]}");
	return add_jobs(r, jobs, true, false);
}

/* ---- one job ---- */

int th_api_jobs_get(th_api_req *r)
{
	th_job job;
	int rc = th_service_get(r->svc, r->id, &job);
	if (rc)
		return th_api_fail(r, rc, r->id, "get");
	return th_api_ok(r, 200, th_jobjson_job(&job));
}

int th_api_jobs_bytes(th_api_req *r)
{
	const char *what = strrchr(r->path, '/') + 1;
	th_job job;
	int rc = th_service_get(r->svc, r->id, &job);
	if (rc)
		return th_api_fail(r, rc, r->id, what);
	void *data = NULL;
	size_t len = 0;
	if (strcmp(what, "result") == 0) {
		if (job.status != TH_JOB_COMPLETED &&
		    !(job.status == TH_JOB_CRONJOB && job.result_len))
			return th_api_error(r, 409, "conflict", "job %llu has no result: it is %s",
					    (unsigned long long)job.id,
					    th_job_status_name(job.status));
		rc = th_service_result(r->svc, job.id, &data, &len);
	} else if (strcmp(what, "input") == 0) {
		rc = th_service_input(r->svc, job.id, &data, &len);
	} else if (strcmp(what, "error") == 0) {
		rc = th_service_error(r->svc, job.id, (char **)&data);
		len = data ? strlen(data) : 0;
		if (rc == 0 && (!len || (job.status != TH_JOB_ERROR &&
					 job.status != TH_JOB_CRONJOB &&
					 job.status != TH_JOB_DELAYED))) {
			free(data);
			return th_api_error(r, 409, "conflict", "job %llu has no error: it is %s",
					    (unsigned long long)job.id,
					    th_job_status_name(job.status));
		}
	} else { /* errors: the history, one line per failed attempt */
		char *text = NULL;
		if ((rc = th_service_errors(r->svc, job.id, &text)))
			return th_api_fail(r, rc, job.id, what);
		json_t *arr = th_jobjson_lines(text);
		free(text);
		return th_api_ok(r, 200, json_pack("{s:I, s:o}", "id", (json_int_t)job.id,
						   "errors", arr));
	}
	if (rc)
		return th_api_fail(r, rc, job.id, what);
	json_t *o = json_pack("{s:I}", "id", (json_int_t)job.id);
	th_jobjson_set_bytes(o, what, data, len);
	free(data);
	return th_api_ok(r, 200, o);
}

int th_api_jobs_progress(th_api_req *r)
{
	th_job job;
	int rc = th_service_get(r->svc, r->id, &job);
	if (rc)
		return th_api_fail(r, rc, r->id, "progress");
	double done = 0;
	bool known = job.status == TH_JOB_PROCESSING && th_service_progress(r->svc, job.id, &done);
	if (job.status == TH_JOB_COMPLETED) {
		done = 1;
		known = true;
	}
	return th_api_ok(r, 200, json_pack("{s:I, s:s, s:o}", "id", (json_int_t)job.id, "status",
					   th_job_status_name(job.status), "progress",
					   known ? json_real(done) : json_null()));
}

static void op_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	const char *what = strrchr(r->path, '/') + 1;
	th_job job;
	int rc = c->rc == TH_EBUSY ? 0 : c->rc;
	if (rc == TH_ESTATE && th_service_get(r->svc, r->id, &job) == 0)
		th_api_error(r, 409, "conflict", "cannot %s job %llu: it is %s", what,
			     (unsigned long long)r->id, th_job_status_name(job.status));
	else if (rc || (rc = th_service_get(r->svc, r->id, &job)))
		th_api_fail(r, rc, r->id, what);
	else /* 202: a running job was asked to stop and ends cancelled when it returns */
		th_api_ok(r, c->rc == TH_EBUSY ? 202 : 200, th_jobjson_job(&job));
	th_api_later_done(r);
}

int th_api_jobs_op(th_api_req *r)
{
	const char *what = strrchr(r->path, '/') + 1;
	th_job job;
	int rc = th_service_get(r->svc, r->id, &job);
	if (rc)
		return th_api_fail(r, rc, r->id, what);
	/* made by the committer, in order with the other writes */
	th_write_kind kind = strcmp(what, "cancel") == 0  ? TH_WRITE_CANCEL
			     : strcmp(what, "start") == 0 ? TH_WRITE_START : TH_WRITE_RETRY;
	r->commit = (th_commit_req){.w = {.s = {.kind = kind, .id = r->id}}, .done = op_done,
				    .ud = r};
	return th_api_submit(r);
}

/* ---- listing ---- */

/* What GET /v1/jobs and a bulk change by filter match. */
struct filter {
	th_service *svc;
	unsigned mask;
	const char *task, *queue, *unique;
	int64_t added_after, added_before, finished_after, finished_before;
	th_job *jobs;
	size_t n, max;
	uint64_t last; /* the last job looked at */
};

static const char *const filter_keys[] = {
	"status", "task", "queue", "unique", "added_after", "added_before", "finished_after",
	"finished_before", NULL};

static int filter_job(const th_job *j, void *ud)
{
	struct filter *f = ud;
	f->last = j->id;
	if ((f->task && strcmp(j->task, f->task)) ||
	    (f->queue && strcmp(*j->queue ? j->queue : "default", f->queue)) ||
	    (f->added_after && j->added_us <= f->added_after) ||
	    (f->added_before && j->added_us >= f->added_before) ||
	    (f->finished_after && j->finished_us <= f->finished_after) ||
	    (f->finished_before && (!j->finished_us || j->finished_us >= f->finished_before)))
		return 0;
	if (f->unique) { /* read only for the jobs that pass the rest */
		char *key = NULL;
		bool same = (j->flags & TH_JOB_UNIQUE) && th_service_unique(f->svc, j->id, &key) == 0 &&
			    strcmp(key, f->unique) == 0;
		free(key);
		if (!same)
			return 0;
	}
	f->jobs[f->n++] = *j;
	return f->n == f->max;
}

/* The next jobs of f from the cursor `from`, up to max, into jobs; *more when the walk
 * stopped with jobs left to look at, and f->last is where the next one starts. */
static int filter_next(struct filter *f, uint64_t from, bool newest, th_job *jobs,
		       size_t max, bool *more)
{
	f->jobs = jobs;
	f->n = 0;
	f->max = max;
	f->last = from;
	int rc = th_service_list(f->svc, f->mask ? f->mask : TH_MASK_ALL, from, newest,
				 filter_job, f);
	*more = f->n == f->max;
	return rc;
}

/* Fills f from the filter's keys as get(ctx, key) gives them (NULL: missing); -1 when
 * one is bad (r is answered, the message starting with `where`). */
static int filter_parse(th_api_req *r, const char *where,
			const char *(*get)(void *ctx, const char *key), void *ctx,
			struct filter *f)
{
	*f = (struct filter){.svc = r->svc, .task = get(ctx, "task"),
			     .queue = get(ctx, "queue"), .unique = get(ctx, "unique")};
	struct { const char *key; int64_t *out; } times[] = {
		{"added_after", &f->added_after}, {"added_before", &f->added_before},
		{"finished_after", &f->finished_after}, {"finished_before", &f->finished_before}};
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		const char *v = get(ctx, times[i].key);
		if (v && th_api_parse_time(v, times[i].out))
			return th_api_error(r, 400, "bad_request", "%s%s: expected a time such as "
					    "2026-12-01T08:00:00Z or seconds since the epoch",
					    where, times[i].key), -1;
	}
	const char *status = get(ctx, "status");
	if (!status)
		return 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", status);
	char *save = NULL;
	for (char *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		th_job_status st;
		if (th_job_status_parse(s, &st))
			return th_api_error(r, 400, "bad_request", "%sstatus: unknown status "
					    "'%.40s' (queued, processing, completed, error, "
					    "cancelled, delayed, held, cronjob)", where, s), -1;
		f->mask |= TH_MASK(st);
	}
	return 0;
}

static const char *query_get(void *ctx, const char *key)
{
	th_api_req *r = ctx;
	return r->arg(r, key);
}

static int whole_arg(th_api_req *r, const char *key, long lo, long hi, long def, long *out)
{
	const char *v = r->arg(r, key);
	char *end;
	*out = def;
	if (!v)
		return 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n < lo || n > hi) {
		th_api_error(r, 400, "bad_request", "%s: expected a whole number from %ld to %ld",
			     key, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

int th_api_jobs_list(th_api_req *r)
{
	struct filter f;
	const char *order = r->arg(r, "order");
	if (order && strcmp(order, "oldest") && strcmp(order, "newest"))
		return th_api_error(r, 400, "bad_request", "order: expected oldest or newest");
	bool newest = order && strcmp(order, "newest") == 0;
	long limit, cursor;
	if (filter_parse(r, "", query_get, r, &f) ||
	    whole_arg(r, "limit", 1, TH_API_LIST_MAX, TH_API_LIST_DEFAULT, &limit) ||
	    whole_arg(r, "cursor", 0, 0x7fffffffffffffffL, 0, &cursor))
		return 0;
	json_t *arr = json_array();
	th_job chunk[64];
	uint64_t from = (uint64_t)cursor;
	bool more = true;
	while (json_array_size(arr) < (size_t)limit && more) {
		size_t want = (size_t)limit - json_array_size(arr);
		int rc = filter_next(&f, from, newest, chunk, want < 64 ? want : 64, &more);
		if (rc) {
			json_decref(arr);
			return th_api_fail(r, rc, 0, "list");
		}
		for (size_t i = 0; i < f.n; i++)
			json_array_append_new(arr, th_jobjson_job(&chunk[i]));
		from = f.last;
	}
	char next[24];
	snprintf(next, sizeof(next), "%llu", (unsigned long long)from);
	return th_api_ok(r, 200, json_pack("{s:o, s:o}", "jobs", arr, "next_cursor",
					   more ? json_string(next) : json_null()));
}

/* ---- bulk changes: the jobs named, or every job a filter matches ---- */

#define BULK_CHUNK 500 /* jobs one transaction of a bulk change looks at, at most */

struct bulk {
	th_change what;
	uint64_t *ids; /* by ids: in increasing order */
	size_t nids, at;
	bool by_filter;
	struct filter f;
	uint64_t from;  /* by filter: the cursor of the walk */
	bool more;
	char times[4][24]; /* the filter's times given as numbers, as text */
	th_job jobs[BULK_CHUNK];
	uint64_t batch[BULK_CHUNK];
	int rcs[BULK_CHUNK];
	size_t n;
	uint64_t changed, stopping, skipped, missing;
};

static void bulk_free(void *p)
{
	struct bulk *b = p;
	free(b->ids);
	free(b);
}

/* One batch, on the committer thread: the next jobs, changed in one transaction. */
static int bulk_op(th_service *svc, void *arg)
{
	struct bulk *b = ((th_api_req *)arg)->scratch;
	b->n = 0;
	if (b->by_filter) {
		int rc = filter_next(&b->f, b->from, false, b->jobs, BULK_CHUNK, &b->more);
		if (rc)
			return rc;
		for (size_t i = 0; i < b->f.n; i++)
			b->batch[b->n++] = b->jobs[i].id;
		b->from = b->f.last;
	} else {
		while (b->n < BULK_CHUNK && b->at < b->nids)
			b->batch[b->n++] = b->ids[b->at++];
		b->more = b->at < b->nids;
	}
	return th_service_change_many(svc, b->what, b->batch, b->n, b->rcs);
}

static void bulk_done(th_commit_req *c)
{
	th_api_req *r = c->ud;
	struct bulk *b = r->scratch;
	int rc = c->rc;
	for (size_t i = 0; i < b->n && !rc; i++) {
		int k = b->rcs[i];
		b->changed += k == 0;
		b->stopping += k == TH_EBUSY;
		b->skipped += k == TH_ESTATE;
		b->missing += k == TH_ENOTFOUND;
	}
	/* the next batch queues behind the writes that came meanwhile */
	if (!rc && b->more && (rc = th_commit_submit(r->api->commit, &r->commit)) == 0)
		return;
	if (rc == TH_EBUSY)
		th_api_error(r, 503, "stopping", "bulk: the host is stopping; %llu jobs changed "
			     "before it", (unsigned long long)(b->changed + b->stopping));
	else if (rc)
		th_api_error(r, rc == TH_EFULL || rc == TH_ENOSPC ? 503 : 500,
			     rc == TH_EFULL || rc == TH_ENOSPC ? "full" : "internal",
			     "bulk: %s; %llu jobs changed before it", th_strerror(rc),
			     (unsigned long long)(b->changed + b->stopping));
	else
		th_api_ok(r, 200, json_pack("{s:s, s:I, s:I, s:I, s:I}", "action",
					    b->what == TH_CHANGE_CANCEL  ? "cancel"
					    : b->what == TH_CHANGE_RETRY ? "retry" : "delete",
					    "changed", (json_int_t)b->changed, "stopping",
					    (json_int_t)b->stopping, "skipped", (json_int_t)b->skipped,
					    "not_found", (json_int_t)b->missing));
	th_api_later_done(r);
}

struct json_filter {
	json_t *obj;
	struct bulk *b;
};

/* A key of the body's filter: strings, and times also as seconds since the epoch. */
static const char *json_get(void *ctx, const char *key)
{
	struct json_filter *jf = ctx;
	json_t *v = json_object_get(jf->obj, key);
	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_integer(v))
		return NULL;
	size_t i = 4; /* filter_keys[4..7] are the times */
	while (filter_keys[i] && strcmp(filter_keys[i], key))
		i++;
	if (!filter_keys[i])
		return NULL;
	char *buf = jf->b->times[i - 4];
	snprintf(buf, sizeof(jf->b->times[0]), "%lld", (long long)json_integer_value(v));
	return buf;
}

int th_api_jobs_bulk(th_api_req *r)
{
	struct bulk *b = calloc(1, sizeof(*b));
	if (!b)
		return th_api_error(r, 503, "no_memory", "out of memory");
	r->scratch = b;
	r->free_scratch = bulk_free;
	char err[256];
	json_t *filter;
	int rc = th_api_decode_bulk(r->body, r->max_batch, &b->what, &b->ids, &b->nids, &filter,
				    err, sizeof(err));
	if (rc == TH_ETOOBIG)
		return th_api_error(r, 413, "too_large", "%s", err);
	if (rc == TH_ENOMEM)
		return th_api_error(r, 503, "no_memory", "out of memory");
	if (rc)
		return th_api_error(r, 400, "bad_request", "%s", err);
	if (filter) {
		const char *key;
		json_t *v;
		json_object_foreach(filter, key, v) {
			size_t i = 0;
			while (filter_keys[i] && strcmp(filter_keys[i], key))
				i++;
			if (!filter_keys[i])
				return th_api_error(r, 400, "bad_request", "filter: unknown field "
						    "'%.100s' (status, task, queue, unique, added_after, "
						    "added_before, finished_after, finished_before)", key);
			if (!json_is_string(v) && !(i >= 4 && json_is_integer(v)))
				return th_api_error(r, 400, "bad_request", "filter.%s: expected a "
						    "string%s", key, i >= 4 ? " or seconds since the "
						    "epoch" : "");
		}
		struct json_filter jf = {filter, b};
		if (filter_parse(r, "filter.", json_get, &jf, &b->f))
			return 0;
		b->by_filter = true;
	}
	r->commit = (th_commit_req){.op = bulk_op, .arg = r, .done = bulk_done, .ud = r};
	return th_api_submit(r);
}

/* ---- waiting ---- */

bool th_api_wait_check(th_api_req *r, bool timed_out)
{
	json_t *arr = json_array();
	bool all = true;
	for (size_t i = 0; i < r->nwait; i++) {
		th_job job;
		int rc = th_service_get(r->svc, r->wait_ids[i], &job);
		if (rc) {
			json_decref(arr);
			th_api_fail(r, rc, r->wait_ids[i], "wait");
			return true;
		}
		all &= th_job_status_final(job.status);
		json_array_append_new(arr, th_jobjson_job(&job));
	}
	if (!all && !timed_out) {
		json_decref(arr);
		return false;
	}
	th_api_ok(r, 200, json_pack("{s:o, s:b}", "jobs", arr, "timed_out", !all));
	return true;
}

int th_api_wait_jobs(th_api_req *r)
{
	char err[256];
	double timeout;
	int rc = th_api_decode_wait(r->body, &r->wait_ids, &r->nwait, &timeout, err, sizeof(err));
	if (rc)
		return th_api_error(r, 400, "bad_request", "%s", err);
	if (th_api_wait_check(r, timeout <= 0))
		return 0;
	r->wait_end = th_clock_mono_us() + (int64_t)(timeout * 1e6);
	return th_api_wait(r);
}
