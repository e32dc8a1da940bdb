/* The JSON of a job, shared by the CLI and the HTTP API: fields, times, bytes (base64
 * when not text), error lines, stats and tasks. */
#include "jobjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "clock.h"
#include "error.h"

json_t *th_jobjson_time(int64_t us)
{
	if (!us)
		return json_null();
	char buf[32];
	th_clock_format(us, buf, sizeof(buf));
	return json_string(buf);
}

json_t *th_jobjson_job(const th_job *j)
{
	double took = th_job_took(j);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:i, s:i, s:i, s:o, s:o, s:o, s:o, s:I, s:I}",
			      "id", (json_int_t)j->id, "task", j->task, "status",
			      th_job_status_name(j->status), "queue", *j->queue ? j->queue : "default",
			      "priority", (int)j->priority, "attempts", (int)j->attempts,
			      "max_attempts", (int)j->max_attempts, "added",
			      th_jobjson_time(j->added_us), "started", th_jobjson_time(j->started_us),
			      "finished", th_jobjson_time(j->finished_us), "took",
			      took >= 0 ? json_real(took) : json_null(), "input_size",
			      (json_int_t)j->input_len, "result_size", (json_int_t)j->result_len);
	if (!o)
		return json_null();
	if (j->due_us)
		json_object_set_new(o, j->status == TH_JOB_CRONJOB ? "next_fire" : "due",
				    th_jobjson_time(j->due_us));
	if (j->timeout_ms)
		json_object_set_new(o, "timeout", json_real(j->timeout_ms / 1000.0));
	if (j->parent)
		json_object_set_new(o, "cron_job", json_integer((json_int_t)j->parent));
	if (j->status == TH_JOB_CRONJOB) {
		json_object_set_new(o, "fires", json_integer(j->fires));
		json_object_set_new(o, "paused", json_boolean(j->flags & TH_JOB_CRON_PAUSED));
		json_object_set_new(o, "catch_up", json_boolean(j->flags & TH_JOB_CRON_CATCHUP));
		if (j->last_run)
			json_object_set_new(o, "last_run", json_integer((json_int_t)j->last_run));
	}
	if (j->flags & TH_JOB_CANCEL_REQUESTED)
		json_object_set_new(o, "cancel_requested", json_true());
	return o;
}

void th_jobjson_set_bytes(json_t *obj, const char *key, const void *data, size_t len)
{
	json_t *s = json_stringn(data, len);
	if (s) {
		json_object_set_new(obj, key, s);
		return;
	}
	char k[64], *b = th_base64_encode(data, len);
	snprintf(k, sizeof(k), "%s_base64", key);
	json_object_set_new(obj, k, b ? json_string(b) : json_null());
	free(b);
}

json_t *th_jobjson_lines(const char *text)
{
	json_t *arr = json_array();
	for (const char *p = text; p && *p;) {
		size_t n = strcspn(p, "\n");
		json_t *l = n ? json_stringn(p, n) : NULL;
		if (n)
			json_array_append_new(arr, l ? l : json_null());
		p += n + (p[n] == '\n');
	}
	return arr;
}

/* ---- stats and tasks ---- */

static int first_job(const th_job *job, void *ud)
{
	*(th_job *)ud = *job;
	return 1;
}

static int queue_counts(void *ud, const char *queue, const uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	json_t *o = json_object();
	for (int st = 1; st <= TH_JOB_STATUS_MAX; st++)
		json_object_set_new(o, th_job_status_name((th_job_status)st),
				    json_integer((json_int_t)counts[st]));
	json_object_set_new(ud, *queue ? queue : "default", o);
	return 0;
}

/* From the store's counts and indexes: as quick at ten million jobs as at ten. */
json_t *th_jobjson_stats(th_service *svc, int *rc)
{
	int64_t now = th_clock_now_us();
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	th_minute m[2]; /* the last whole minute and the one under way */
	th_job oldest = {0};
	json_t *queues = json_object();
	if ((*rc = th_service_count(svc, c)) ||
	    (*rc = th_service_count_queues(svc, queue_counts, queues)) ||
	    (*rc = th_service_minutes(svc, NULL, 2, m)) ||
	    (*rc = th_service_list(svc, 1u << TH_JOB_QUEUED, 0, false, first_job, &oldest))) {
		json_decref(queues);
		return NULL;
	}
	double span = 60 + (double)(now - m[1].start * 1000000LL) / 1e6;
	double rate = (double)(m[0].completed + m[0].failed + m[1].completed + m[1].failed) /
		      (span > 60 ? span : 60);
	double waiting = oldest.id ? (double)(now - oldest.added_us) / 1e6 : 0;
	json_t *counts = json_object();
	for (int st = 1; st <= TH_JOB_STATUS_MAX; st++)
		json_object_set_new(counts, th_job_status_name((th_job_status)st),
				    json_integer((json_int_t)c[st]));
	json_t *old = oldest.id
		? json_pack("{s:I, s:s, s:o, s:f}", "id", (json_int_t)oldest.id, "task",
			    oldest.task, "added", th_jobjson_time(oldest.added_us), "waiting",
			    waiting)
		: json_null();
	return json_pack("{s:o, s:o, s:f, s:o}", "counts", counts, "queues", queues,
			 "jobs_per_second", rate, "oldest_queued", old);
}

json_t *th_jobjson_history(th_service *svc, const char *queue, size_t n, int *rc)
{
	th_minute m[TH_MINUTES_MAX];
	if ((*rc = th_service_minutes(svc, queue, n, m)))
		return NULL;
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:I}", "start",
						     (json_int_t)m[i].start, "added",
						     (json_int_t)m[i].added, "completed",
						     (json_int_t)m[i].completed, "failed",
						     (json_int_t)m[i].failed));
	return json_pack("{s:o}", "minutes", arr);
}

json_t *th_jobjson_tasks(th_service *svc)
{
	json_t *arr = json_array(), *refused = json_array();
	th_task_info ti;
	for (size_t i = 0; th_service_task_info(svc, i, &ti) == 0; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", ti.name,
						     "plugin", ti.plugin, "file", ti.file,
						     "version", ti.version, "description",
						     ti.description));
	char file[4096], why[512];
	size_t nref = th_service_refused(svc, 0, file, sizeof(file), why, sizeof(why));
	for (size_t i = 0; i < nref; i++) {
		th_service_refused(svc, i, file, sizeof(file), why, sizeof(why));
		json_array_append_new(refused, json_pack("{s:s, s:s}", "file", file, "reason", why));
	}
	return json_pack("{s:o, s:o}", "tasks", arr, "refused", refused);
}
