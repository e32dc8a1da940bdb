/* The JSON of a job, shared by the CLI and the HTTP API: fields, times, bytes. */
#include "jobjson.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"

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
			      "max_attempts", (int)j->max_attempts,
			      "added", th_jobjson_time(j->added_us),
			      "started", th_jobjson_time(j->started_us),
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

static char *base64(const unsigned char *p, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* Bytes as a JSON string when they are UTF-8 text, else under "<key>_base64". */
void th_jobjson_set_bytes(json_t *obj, const char *key, const void *data, size_t len)
{
	json_t *s = json_stringn(data, len);
	if (s) {
		json_object_set_new(obj, key, s);
		return;
	}
	char k[64], *b = base64(data, len);
	snprintf(k, sizeof(k), "%s_base64", key);
	json_object_set_new(obj, k, b ? json_string(b) : json_null());
	free(b);
}
