/* Decoding the JSON bodies of API requests into service calls' arguments: every field
 * checked, errors naming the field. No I/O, so tests/fuzz/fuzz_request.c fuzzes it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "base64.h"
#include "clock.h"
#include "config.h"

/* The longest duration a field takes (delay, older_than): 100 years. */
#define DURATION_MAX (36500 * 86400.0)

int th_api_parse_time(const char *s, int64_t *us)
{
	return th_clock_parse(s, us);
}

static int bad(char *err, size_t errlen, const char *field, const char *why)
{
	snprintf(err, errlen, "%s: %s", field, why);
	return TH_EINVAL;
}

/* A number from lo to hi into *out, for a field that may be missing. */
static int number(json_t *obj, const char *field, double lo, double hi, double *out,
		  char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, field);
	if (!v)
		return 0;
	double d = json_number_value(v);
	if (!json_is_number(v) || !isfinite(d) || d < lo || d > hi) {
		char why[96];
		snprintf(why, sizeof(why), "expected a number from %g to %g", lo, hi);
		return bad(err, errlen, field, why);
	}
	*out = d;
	return 0;
}

static int string(json_t *obj, const char *field, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, field);
	if (!v)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return bad(err, errlen, field, "expected a string (without NUL)");
	*out = json_string_value(v);
	return 0;
}

static int boolean(json_t *obj, const char *field, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, field);
	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return bad(err, errlen, field, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static const char *const job_fields[] = {
	"task", "input", "input_base64", "queue", "priority", "max_attempts", "delay", "at",
	"hold", "timeout", "backoff", "unique", "cron", "catchup", NULL};

/* The first key of obj not in fields, or NULL. */
static const char *unknown_field(json_t *obj, const char *const *fields)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t i = 0;
		while (fields[i] && strcmp(fields[i], key) != 0)
			i++;
		if (!fields[i])
			return key;
	}
	return NULL;
}

/* 0 when obj is an object with only keys from fields; else TH_EINVAL and err says why
 * (what names the body for "expected an object"). */
static int only_fields(json_t *obj, const char *what, const char *const *fields, char *err,
		       size_t errlen)
{
	if (!json_is_object(obj))
		return bad(err, errlen, what, "expected an object");
	const char *unknown = unknown_field(obj, fields);
	if (unknown) {
		snprintf(err, errlen, "unknown field '%.100s'", unknown);
		return TH_EINVAL;
	}
	return 0;
}

int th_api_decode_job(json_t *obj, th_new_job *job, th_add_opts *o, void **input, char *err,
		      size_t errlen)
{
	*input = NULL;
	memset(o, 0, sizeof(*o));
	*job = (th_new_job){.opts = o};
	if (only_fields(obj, "job", job_fields, err, errlen))
		return TH_EINVAL;
	const char *text = NULL, *b64 = NULL, *at = NULL;
	double prio = 0, attempts = 0;
	int rc;
	if ((rc = string(obj, "task", &job->task, err, errlen)) ||
	    (rc = string(obj, "input", &text, err, errlen)) ||
	    (rc = string(obj, "input_base64", &b64, err, errlen)) ||
	    (rc = string(obj, "queue", &o->queue, err, errlen)) ||
	    (rc = string(obj, "unique", &o->unique, err, errlen)) ||
	    (rc = string(obj, "cron", &o->cron, err, errlen)) ||
	    (rc = number(obj, "priority", -2147483648.0, 2147483647.0, &prio, err, errlen)) ||
	    (rc = number(obj, "max_attempts", 1, TH_MAX_ATTEMPTS_LIMIT, &attempts, err, errlen)) ||
	    (rc = number(obj, "delay", 0, DURATION_MAX, &o->delay, err, errlen)) ||
	    (rc = number(obj, "timeout", 0, TH_JOB_TIMEOUT_MAX, &o->timeout, err, errlen)) ||
	    (rc = number(obj, "backoff", 0, 86400, &o->backoff, err, errlen)) ||
	    (rc = boolean(obj, "hold", &o->hold, err, errlen)) ||
	    (rc = boolean(obj, "catchup", &o->catchup, err, errlen)))
		return rc;
	if (prio != floor(prio) || attempts != floor(attempts))
		return bad(err, errlen, prio != floor(prio) ? "priority" : "max_attempts",
			   "expected a whole number");
	o->priority = (int32_t)prio;
	o->max_attempts = (uint32_t)attempts;
	if (!job->task)
		return bad(err, errlen, "task", "missing");
	if (text && b64)
		return bad(err, errlen, "input", "give input or input_base64, not both");
	json_t *atv = json_object_get(obj, "at");
	if (atv) {
		char buf[32];
		if (json_is_integer(atv) && json_integer_value(atv) >= 0)
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(atv));
		else if (json_is_string(atv))
			at = json_string_value(atv);
		if ((!at && !json_is_integer(atv)) || th_api_parse_time(at ? at : buf, &o->at_us))
			return bad(err, errlen, "at", "expected a time such as 2026-12-01T08:00:00Z "
				   "or seconds since the epoch");
		if (o->delay > 0)
			return bad(err, errlen, "at", "at and delay both say when: give one");
	}
	if (o->hold && o->cron)
		return bad(err, errlen, "hold", "a cron job cannot be held");
	if (b64) {
		size_t len;
		if (th_base64_decode(b64, strlen(b64), (unsigned char **)input, &len))
			return bad(err, errlen, "input_base64", "not base64");
		job->input = *input;
		job->len = len;
	} else if (text) {
		size_t len = json_string_length(json_object_get(obj, "input"));
		/* its own copy: the body may be freed before the commit is done */
		if (!(*input = malloc(len + 1)))
			return TH_ENOMEM;
		memcpy(*input, json_string_value(json_object_get(obj, "input")), len + 1);
		job->input = *input;
		job->len = len;
	}
	return 0;
}

int th_api_decode_wait(json_t *obj, uint64_t **ids, size_t *n, double *timeout, char *err,
		       size_t errlen)
{
	static const char *const fields[] = {"ids", "timeout", NULL};
	*ids = NULL;
	*n = 0;
	*timeout = 30;
	if (only_fields(obj, "body", fields, err, errlen))
		return TH_EINVAL;
	json_t *a = json_object_get(obj, "ids");
	if (!json_is_array(a) || !json_array_size(a) || json_array_size(a) > TH_API_WAIT_IDS_MAX)
		return bad(err, errlen, "ids", "expected an array of 1 to 1000 job ids");
	int rc = number(obj, "timeout", 0, TH_API_WAIT_MAX_S, timeout, err, errlen);
	if (rc)
		return rc;
	uint64_t *v = calloc(json_array_size(a), sizeof(*v));
	if (!v)
		return TH_ENOMEM;
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_integer(e) || json_integer_value(e) < 1) {
			free(v);
			return bad(err, errlen, "ids", "expected job ids (whole numbers from 1)");
		}
		v[i] = (uint64_t)json_integer_value(e);
	}
	*ids = v;
	*n = json_array_size(a);
	return 0;
}

int th_api_decode_clean(json_t *obj, double *older_than, char *err, size_t errlen)
{
	static const char *const fields[] = {"older_than", NULL};
	*older_than = 0;
	if (!obj)
		return 0;
	if (only_fields(obj, "body", fields, err, errlen))
		return TH_EINVAL;
	json_t *v = json_object_get(obj, "older_than");
	double d = json_number_value(v);
	if (v && !json_is_number(v) &&
	    (!json_is_string(v) || th_parse_duration(json_string_value(v), &d)))
		return bad(err, errlen, "older_than", "expected seconds, or a duration such as "
			   "500ms, 30s, 2m, 1h, 7d");
	if (!isfinite(d) || d < 0 || d > DURATION_MAX)
		return bad(err, errlen, "older_than", "out of range (from 0 to 36500d)");
	*older_than = d;
	return 0;
}

int th_api_decode_cron_update(json_t *obj, const char **schedule, int *catchup, char *err,
			      size_t errlen)
{
	static const char *const fields[] = {"schedule", "catchup", NULL};
	*schedule = NULL;
	*catchup = -1;
	if (only_fields(obj, "body", fields, err, errlen))
		return TH_EINVAL;
	bool c = false;
	int rc;
	if ((rc = string(obj, "schedule", schedule, err, errlen)) ||
	    (rc = boolean(obj, "catchup", &c, err, errlen)))
		return rc;
	if (json_object_get(obj, "catchup"))
		*catchup = c;
	if (!*schedule && *catchup < 0)
		return bad(err, errlen, "body", "expected schedule, catchup or both");
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int th_api_decode_bulk(json_t *obj, size_t max_ids, th_change *what, uint64_t **ids,
		       size_t *n, json_t **filter, char *err, size_t errlen)
{
	static const char *const fields[] = {"action", "ids", "filter", NULL};
	static const char *const actions[] = {"cancel", "retry", "delete"};
	*ids = NULL;
	*n = 0;
	*filter = NULL;
	if (only_fields(obj, "body", fields, err, errlen))
		return TH_EINVAL;
	const char *action = NULL;
	if (string(obj, "action", &action, err, errlen))
		return TH_EINVAL;
	if (!action)
		return bad(err, errlen, "action", "missing: retry, cancel or delete");
	int i = 0;
	while (i < 3 && strcmp(actions[i], action) != 0)
		i++;
	if (i == 3) {
		snprintf(err, errlen, "action: unknown action '%.40s' (retry, cancel or delete)",
			 action);
		return TH_EINVAL;
	}
	*what = (th_change)(TH_CHANGE_CANCEL + i);
	json_t *a = json_object_get(obj, "ids"), *f = json_object_get(obj, "filter");
	if (a && f)
		return bad(err, errlen, "body", "give ids or filter, not both");
	if (!a && !f)
		return bad(err, errlen, "body", "expected ids (the jobs) or filter (every job it "
			   "matches)");
	if (f) {
		if (!json_is_object(f))
			return bad(err, errlen, "filter", "expected an object ({} matches every job)");
		*filter = f;
		return 0;
	}
	if (!json_is_array(a) || !json_array_size(a))
		return bad(err, errlen, "ids", "expected an array of job ids, not empty");
	if (json_array_size(a) > max_ids) {
		snprintf(err, errlen, "ids: %zu job ids, more than max_batch (%zu)",
			 json_array_size(a), max_ids);
		return TH_ETOOBIG;
	}
	uint64_t *v = calloc(json_array_size(a), sizeof(*v));
	if (!v)
		return TH_ENOMEM;
	for (size_t k = 0; k < json_array_size(a); k++) {
		json_t *e = json_array_get(a, k);
		if (!json_is_integer(e) || json_integer_value(e) < 1) {
			free(v);
			snprintf(err, errlen, "ids[%zu]: expected a job id (a whole number from 1)", k);
			return TH_EINVAL;
		}
		v[k] = (uint64_t)json_integer_value(e);
	}
	/* in id order, each once: the order every writer locks jobs in */
	size_t m = json_array_size(a), k = 0;
	qsort(v, m, sizeof(*v), cmp_id);
	for (size_t j = 0; j < m; j++)
		if (!k || v[j] != v[k - 1])
			v[k++] = v[j];
	*ids = v;
	*n = k;
	return 0;
}
