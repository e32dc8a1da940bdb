/* The HTTP API's client (libcurl): each call is one request to /v1/ on the host's unix
 * socket or URL, over one kept-alive connection; answers and errors map back to TH_E*. */
#include "client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base64.h"
#include "clock.h"
#include "server/api.h"

#define CLIENT_TIMEOUT_S 60L /* a call without a wait of its own gives up after this */

struct th_client {
	CURL *curl;
	char *base;     /* "http://localhost" on the socket, else the URL */
	char *where;    /* "unix socket PATH" or the URL, for messages */
	char *auth;     /* "Authorization: Bearer ..." or NULL */
	long status;    /* of the last answer; 0: none */
	int64_t idle_since; /* monotonic us: when the last call ended; 0: none yet */
	bool once;      /* the call under way changes something: sent once */
	int sends;      /* requests libcurl began for it */
	char error[1536];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Whether libcurl takes url as one with a host in it. */
static bool url_ok(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* Called by libcurl before each request it sends: a second one in a call is libcurl
 * sending the call again on a new connection, the first lost before its answer came,
 * when the host may have done it. */
static int before_send(void *ud, char *ip, char *local_ip, int port, int local_port)
{
	(void)ip, (void)local_ip, (void)port, (void)local_port;
	th_client *c = ud;
	return c->sends++ && c->once ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

int th_client_open(th_client **out, const char *target, const char *token)
{
	pthread_once(&curl_once, curl_init);
	th_client *c = calloc(1, sizeof(*c));
	if (!c || !(c->curl = curl_easy_init())) {
		free(c);
		return TH_ENOMEM;
	}
	bool url = strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0;
	size_t n = strlen(target);
	c->base = url ? strndup(target, n && target[n - 1] == '/' ? n - 1 : n)
		      : strdup("http://localhost");
	if (url)
		c->where = strdup(c->base ? c->base : "");
	else if (asprintf(&c->where, "unix socket %s", target) < 0)
		c->where = NULL;
	if (!url)
		curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, target);
	curl_easy_setopt(c->curl, CURLOPT_PREREQFUNCTION, before_send);
	curl_easy_setopt(c->curl, CURLOPT_PREREQDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_MAXCONNECTS, 1L); /* a fresh one replaces the last */
	if (token && asprintf(&c->auth, "Authorization: Bearer %s", token) < 0)
		c->auth = NULL;
	if (!c->base || !c->where || (token && !c->auth)) {
		th_client_close(c);
		return TH_ENOMEM;
	}
	*out = c;
	if (url && !url_ok(c->base)) {
		snprintf(c->error, sizeof(c->error), "bad URL '%.1000s': expected http://HOST:PORT "
			 "or https://HOST:PORT (or the path of a host's unix socket)", target);
		return TH_EINVAL;
	}
	return 0;
}

void th_client_close(th_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->where);
	free(c->auth);
	free(c);
}

const char *th_client_error(const th_client *c)
{
	return c->error;
}

int th_client_set_ca_file(th_client *c, const char *path)
{
	return curl_easy_setopt(c->curl, CURLOPT_CAINFO, path) == CURLE_OK ? 0 : TH_ENOMEM;
}

long th_client_status(const th_client *c)
{
	return c->status;
}

struct buf {
	char *p;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	char *p = realloc(b->p, b->len + size * n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, data, size * n);
	b->p = p;
	b->len += size * n;
	p[b->len] = 0;
	return size * n;
}

static const struct {
	const char *code;
	int rc;
} codes[] = {
	{"not_found", TH_ENOTFOUND}, {"unknown_task", TH_EUNKNOWNTASK}, {"conflict", TH_ESTATE},
	{"too_large", TH_ETOOBIG},   {"full", TH_EFULL},               {"busy", TH_EBUSY},
	{"stopping", TH_EBUSY},      {"unauthorized", TH_EINSECURE},  {"forbidden", TH_EINSECURE},
	{"bad_request", TH_EINVAL},  {"bad_json", TH_EINVAL},
};

/* One call: method, path (after /v1), a body (NULL: none; taken). *answer gets the
 * parsed answer of a 2xx status; else the error's code maps to the return value. */
static int call(th_client *c, const char *method, const char *path, json_t *body,
		long timeout, json_t **answer, long *status)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL, url[1024];
	json_decref(body);
	snprintf(url, sizeof(url), "%s/v1%s", c->base, path);
	struct buf b = {0};
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	if (c->auth)
		h = curl_slist_append(h, c->auth);
	CURL *e = c->curl;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	if (text) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	} else {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L); /* no body from the call before */
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	/* a wait only reads; every other call but a GET changes something */
	c->once = strcmp(method, "GET") != 0 && strcmp(path, "/wait") != 0;
	c->sends = 0;
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT,
			 c->once && c->idle_since && th_clock_mono_us() - c->idle_since >
							     TH_CLIENT_WRITE_IDLE_MAX * 1e6
				 ? 1L : 0L);
	char detail[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, detail);
	CURLcode cc = curl_easy_perform(e);
	c->idle_since = th_clock_mono_us();
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(h);
	free(text);
	long st = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
	c->status = cc == CURLE_OK ? st : 0;
	if (status)
		*status = st;
	json_t *doc = b.p ? json_loadb(b.p, b.len, JSON_ALLOW_NUL, NULL) : NULL;
	free(b.p);
	int rc = 0;
	const char *why = cc == CURLE_ABORTED_BY_CALLBACK && c->sends > 1
				  ? "the connection closed before the answer came (not sent again)"
			  : *detail ? detail : curl_easy_strerror(cc);
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
		snprintf(c->error, sizeof(c->error), "cannot reach the host at %s (%s /v1%s): %s",
			 c->where, method, path, why);
		rc = TH_EIO;
	} else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CONNECT_ERROR ||
		   cc == CURLE_SSL_CACERT_BADFILE) {
		snprintf(c->error, sizeof(c->error), "cannot reach the host at %s (%s /v1%s) over "
			 "TLS: %s", c->where, method, path, why);
		rc = TH_EIO;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(c->error, sizeof(c->error), "the host at %s did not answer %s /v1%s in "
			 "%ld s: %s", c->where, method, path, timeout, why);
		rc = TH_EIO;
	} else if (cc != CURLE_OK) {
		snprintf(c->error, sizeof(c->error), "lost the host at %s during %s /v1%s: %s%s",
			 c->where, method, path, why, strcmp(method, "GET")
			 ? " (what it asked for may or may not have been done)" : "");
		rc = TH_EIO;
	} else if (!doc) {
		snprintf(c->error, sizeof(c->error), "the host at %s answered %s /v1%s with status "
			 "%ld and no JSON: is it a taskhost?", c->where, method, path, st);
		rc = TH_EIO;
	} else if (st >= 300) {
		json_t *err = json_object_get(doc, "error");
		const char *code = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		snprintf(c->error, sizeof(c->error), "%s", msg ? msg : "error");
		rc = TH_EIO;
		for (size_t i = 0; code && i < sizeof(codes) / sizeof(codes[0]); i++)
			if (strcmp(code, codes[i].code) == 0)
				rc = codes[i].rc;
	}
	if (rc || !answer)
		json_decref(doc);
	else
		*answer = doc;
	return rc;
}

/* ---- jobs ---- */

static json_t *job_doc(const th_new_job *j)
{
	static const th_add_opts none;
	const th_add_opts *o = j->opts ? j->opts : &none;
	json_t *d = json_pack("{s:s}", "task", j->task ? j->task : "");
	json_t *in = j->len && memchr(j->input, 0, j->len) ? NULL : json_stringn(j->input, j->len);
	if (in) {
		json_object_set_new(d, "input", in);
	} else {
		char *b = th_base64_encode(j->input, j->len);
		json_object_set_new(d, "input_base64", b ? json_string(b) : json_null());
		free(b);
	}
	if (o->queue)
		json_object_set_new(d, "queue", json_string(o->queue));
	if (o->priority)
		json_object_set_new(d, "priority", json_integer(o->priority));
	if (o->max_attempts)
		json_object_set_new(d, "max_attempts", json_integer(o->max_attempts));
	if (o->delay > 0)
		json_object_set_new(d, "delay", json_real(o->delay));
	if (o->at_us)
		json_object_set_new(d, "at", json_integer(o->at_us / 1000000));
	if (o->hold)
		json_object_set_new(d, "hold", json_true());
	if (o->timeout > 0)
		json_object_set_new(d, "timeout", json_real(o->timeout));
	if (o->backoff > 0)
		json_object_set_new(d, "backoff", json_real(o->backoff));
	if (o->unique)
		json_object_set_new(d, "unique", json_string(o->unique));
	if (o->cron)
		json_object_set_new(d, "cron", json_string(o->cron));
	if (o->catchup)
		json_object_set_new(d, "catchup", json_true());
	return d;
}

int th_client_add(th_client *c, const char *task, const void *input, size_t len,
		  const th_add_opts *opts, uint64_t *id, bool *existed)
{
	th_new_job j = {task, input, len, opts};
	json_t *a = NULL;
	int rc = call(c, "POST", "/jobs", job_doc(&j), CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	*id = (uint64_t)json_integer_value(json_object_get(a, "id"));
	if (existed)
		*existed = json_is_true(json_object_get(a, "existed"));
	json_decref(a);
	return 0;
}

int th_client_add_many(th_client *c, const th_new_job *jobs, size_t n, uint64_t *ids)
{
	json_t *arr = json_array(), *a = NULL;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, job_doc(&jobs[i]));
	int rc = call(c, "POST", "/jobs/batch", json_pack("{s:o}", "jobs", arr),
		      CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	json_t *got = json_object_get(a, "ids");
	rc = json_array_size(got) == n ? 0 : TH_EIO;
	for (size_t i = 0; i < n; i++)
		ids[i] = (uint64_t)json_integer_value(json_array_get(got, i));
	json_decref(a);
	if (rc)
		snprintf(c->error, sizeof(c->error), "the host answered the batch with no ids");
	return rc;
}

/* "2026-12-01T08:00:00.123Z" -> microseconds; 0 for null or anything else. */
static int64_t time_of(json_t *v)
{
	const char *s = json_string_value(v);
	struct tm tm = {0};
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		return 0;
	int ms = 0;
	if (*end == '.')
		ms = atoi(end + 1);
	return (int64_t)timegm(&tm) * 1000000 + ms * 1000;
}

static uint64_t uint_of(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));
	return v > 0 ? (uint64_t)v : 0;
}

/* The job of th_jobjson_job's JSON. */
static int job_of(json_t *o, th_job *j)
{
	memset(j, 0, sizeof(*j));
	const char *st = json_string_value(json_object_get(o, "status"));
	const char *task = json_string_value(json_object_get(o, "task"));
	const char *queue = json_string_value(json_object_get(o, "queue"));
	if (!st || !task || !queue || th_job_status_parse(st, &j->status))
		return TH_EIO;
	j->id = uint_of(o, "id");
	snprintf(j->task, sizeof(j->task), "%s", task);
	snprintf(j->queue, sizeof(j->queue), "%s", strcmp(queue, "default") ? queue : "");
	j->priority = (int32_t)json_integer_value(json_object_get(o, "priority"));
	j->attempts = (uint32_t)uint_of(o, "attempts");
	j->max_attempts = (uint32_t)uint_of(o, "max_attempts");
	j->added_us = time_of(json_object_get(o, "added"));
	j->started_us = time_of(json_object_get(o, "started"));
	j->finished_us = time_of(json_object_get(o, "finished"));
	json_t *took = json_object_get(o, "took");
	if (j->started_us && j->finished_us && json_is_number(took)) {
		/* the times come in milliseconds, took in microseconds: move them within
		 * their milliseconds so that they are as far apart as took says */
		int64_t d = llround(json_number_value(took) * 1e6);
		int64_t b = d - (j->finished_us - j->started_us); /* how far each must move */
		if (b > -1000 && b < 1000) {
			j->started_us += b < 0 ? -b : 0;
			j->finished_us += b < 0 ? 0 : b;
		}
	}
	j->input_len = uint_of(o, "input_size");
	j->result_len = uint_of(o, "result_size");
	j->due_us = time_of(json_object_get(o, j->status == TH_JOB_CRONJOB ? "next_fire" : "due"));
	j->timeout_ms = (uint32_t)(json_number_value(json_object_get(o, "timeout")) * 1000 + 0.5);
	j->parent = uint_of(o, "cron_job");
	j->last_run = uint_of(o, "last_run");
	j->fires = (uint32_t)uint_of(o, "fires");
	if (json_is_true(json_object_get(o, "paused")))
		j->flags |= TH_JOB_CRON_PAUSED;
	if (json_is_true(json_object_get(o, "catch_up")))
		j->flags |= TH_JOB_CRON_CATCHUP;
	if (json_is_true(json_object_get(o, "cancel_requested")))
		j->flags |= TH_JOB_CANCEL_REQUESTED;
	return 0;
}

/* A call on /jobs/ID, or /jobs/ID/what; answer and status as call's. */
static int job_call(th_client *c, const char *method, uint64_t id, const char *what,
		    json_t **answer, long *status)
{
	char path[80];
	snprintf(path, sizeof(path), "/jobs/%llu%s%s", (unsigned long long)id, what ? "/" : "",
		 what ? what : "");
	return call(c, method, path, NULL, CLIENT_TIMEOUT_S, answer, status);
}

int th_client_get(th_client *c, uint64_t id, th_job *out)
{
	json_t *a = NULL;
	int rc = job_call(c, "GET", id, NULL, &a, NULL);
	if (rc)
		return rc;
	rc = job_of(a, out);
	json_decref(a);
	return rc;
}

int th_client_cancel(th_client *c, uint64_t id)
{
	long status = 0;
	int rc = job_call(c, "POST", id, "cancel", NULL, &status);
	return rc ? rc : status == 202 ? TH_EBUSY : 0;
}

/* Appends "&key=value" to q, the value URL-encoded. */
static void query_add(CURL *e, char *q, size_t qlen, const char *key, const char *value)
{
	char *v = curl_easy_escape(e, value, 0);
	size_t used = strlen(q);
	if (v && used < qlen)
		snprintf(q + used, qlen - used, "&%s=%s", key, v);
	curl_free(v);
}

static void query_time(CURL *e, char *q, size_t qlen, const char *key, int64_t us)
{
	char t[32];
	if (!us)
		return;
	snprintf(t, sizeof(t), "%lld", (long long)(us / 1000000)); /* the host takes seconds */
	query_add(e, q, qlen, key, t);
}

int th_client_list_ex(th_client *c, const th_client_filter *f, uint64_t from, th_job_fn fn,
		      void *ud)
{
	static const th_client_filter all;
	char query[2048] = "";
	if (!f)
		f = &all;
	char statuses[160] = "";
	for (int s = 1; s <= TH_JOB_STATUS_MAX && f->mask && f->mask != TH_MASK_ALL; s++) {
		if (!(f->mask & TH_MASK(s)))
			continue;
		size_t used = strlen(statuses);
		snprintf(statuses + used, sizeof(statuses) - used, "%s%s", used ? "," : "",
			 th_job_status_name((th_job_status)s));
	}
	if (*statuses)
		query_add(c->curl, query, sizeof(query), "status", statuses);
	if (f->task)
		query_add(c->curl, query, sizeof(query), "task", f->task);
	if (f->queue)
		query_add(c->curl, query, sizeof(query), "queue", f->queue);
	if (f->unique)
		query_add(c->curl, query, sizeof(query), "unique", f->unique);
	query_time(c->curl, query, sizeof(query), "added_after", f->added_after);
	query_time(c->curl, query, sizeof(query), "added_before", f->added_before);
	query_time(c->curl, query, sizeof(query), "finished_after", f->finished_after);
	query_time(c->curl, query, sizeof(query), "finished_before", f->finished_before);
	if (f->newest_first)
		query_add(c->curl, query, sizeof(query), "order", "newest");
	char cursor[24];
	snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)from);
	for (;;) {
		char path[2300];
		snprintf(path, sizeof(path), "/jobs?limit=%d&cursor=%s%s", TH_API_LIST_MAX, cursor, query);
		json_t *a = NULL;
		int rc = call(c, "GET", path, NULL, CLIENT_TIMEOUT_S, &a, NULL);
		if (rc)
			return rc;
		size_t i;
		json_t *o;
		json_array_foreach(json_object_get(a, "jobs"), i, o) {
			th_job j;
			if ((rc = job_of(o, &j)) || fn(&j, ud)) {
				json_decref(a);
				if (rc)
					snprintf(c->error, sizeof(c->error), "the host at %s sent a job "
						 "that is not one", c->where);
				return rc;
			}
		}
		const char *next = json_string_value(json_object_get(a, "next_cursor"));
		if (next)
			snprintf(cursor, sizeof(cursor), "%s", next);
		json_decref(a);
		if (!next)
			return 0;
	}
}

int th_client_list(th_client *c, unsigned mask, uint64_t from, th_job_fn fn, void *ud)
{
	th_client_filter f = {.mask = mask};
	return th_client_list_ex(c, &f, from, fn, ud);
}

/* One wait of the host's, for at most TH_API_WAIT_IDS_MAX ids. */
static int wait_some(th_client *c, const uint64_t *ids, size_t n, double timeout)
{
	json_t *arr = json_array(), *a = NULL;
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_integer((json_int_t)ids[i]));
	int rc = call(c, "POST", "/wait", json_pack("{s:o, s:f}", "ids", arr, "timeout", timeout),
		      (long)timeout + CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	rc = json_is_true(json_object_get(a, "timed_out")) ? TH_ETIMEDOUT : 0;
	json_decref(a);
	return rc;
}

int th_client_wait(th_client *c, const uint64_t *ids, size_t n, double timeout)
{
	int64_t end = th_clock_mono_us() + (int64_t)(timeout * 1e6);
	for (size_t i = 0; i < n; i += TH_API_WAIT_IDS_MAX) {
		size_t k = n - i < TH_API_WAIT_IDS_MAX ? n - i : TH_API_WAIT_IDS_MAX;
		double left = (double)(end - th_clock_mono_us()) / 1e6;
		int rc = wait_some(c, ids + i, k, left > 0 ? left : 0);
		if (rc == TH_ETIMEDOUT)
			snprintf(c->error, sizeof(c->error), "timed out after %g s", timeout);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- one job's bytes, start, retry, progress ---- */

/* GET /jobs/{id}/what: the answer's bytes of key `what` (or what_base64), malloc'd and
 * NUL-terminated past *len. */
static int job_bytes(th_client *c, uint64_t id, const char *what, void **data, size_t *len)
{
	json_t *a = NULL;
	int rc = job_call(c, "GET", id, what, &a, NULL);
	if (rc)
		return rc;
	char key[32];
	snprintf(key, sizeof(key), "%s_base64", what);
	json_t *text = json_object_get(a, what), *b64 = json_object_get(a, key);
	unsigned char *out = NULL;
	size_t n = 0;
	if (json_is_string(text)) {
		n = json_string_length(text);
		if ((out = malloc(n + 1))) {
			memcpy(out, json_string_value(text), n);
			out[n] = 0;
		}
		rc = out ? 0 : TH_ENOMEM;
	} else if (json_is_string(b64)) {
		unsigned char *raw = NULL;
		rc = th_base64_decode(json_string_value(b64), json_string_length(b64), &raw, &n)
			     ? TH_EIO : 0;
		if (!rc && !(out = realloc(raw, n + 1))) {
			free(raw);
			rc = TH_ENOMEM;
		}
		if (out)
			out[n] = 0;
	} else {
		rc = TH_EIO;
	}
	json_decref(a);
	if (rc == TH_EIO)
		snprintf(c->error, sizeof(c->error), "the host at %s answered GET /v1/jobs/%llu/%s "
			 "without its %s", c->where, (unsigned long long)id, what, what);
	if (rc)
		return rc;
	*data = out;
	if (len)
		*len = n;
	return 0;
}

int th_client_result(th_client *c, uint64_t id, void **data, size_t *len)
{
	return job_bytes(c, id, "result", data, len);
}

int th_client_input(th_client *c, uint64_t id, void **data, size_t *len)
{
	return job_bytes(c, id, "input", data, len);
}

int th_client_job_error(th_client *c, uint64_t id, char **msg)
{
	return job_bytes(c, id, "error", (void **)msg, NULL);
}

int th_client_errors(th_client *c, uint64_t id, char **text)
{
	json_t *a = NULL;
	int rc = job_call(c, "GET", id, "errors", &a, NULL);
	if (rc)
		return rc;
	size_t len = 0, i;
	json_t *l, *lines = json_object_get(a, "errors");
	json_array_foreach(lines, i, l)
		len += json_string_length(l) + 1;
	char *out = malloc(len + 1), *p = out;
	if (out) {
		json_array_foreach(lines, i, l) {
			size_t n = json_string_length(l); /* a line not UTF-8 comes as null */
			memcpy(p, json_string_value(l) ? json_string_value(l) : "", n);
			p[n] = '\n';
			p += n + 1;
		}
		*p = 0;
	}
	json_decref(a);
	if (!out)
		return TH_ENOMEM;
	*text = out;
	return 0;
}

int th_client_start(th_client *c, uint64_t id)
{
	return job_call(c, "POST", id, "start", NULL, NULL);
}

int th_client_retry(th_client *c, uint64_t id)
{
	return job_call(c, "POST", id, "retry", NULL, NULL);
}

int th_client_progress(th_client *c, uint64_t id, bool *known, double *done)
{
	json_t *a = NULL;
	int rc = job_call(c, "GET", id, "progress", &a, NULL);
	if (rc)
		return rc;
	json_t *p = json_object_get(a, "progress");
	*known = json_is_number(p);
	*done = *known ? json_number_value(p) : 0;
	json_decref(a);
	return 0;
}

/* ---- cron ---- */

int th_client_cron_spec(th_client *c, uint64_t id, char **spec)
{
	json_t *a = NULL;
	int rc = call(c, "GET", "/cron", NULL, CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	size_t i;
	json_t *o;
	rc = TH_ESTATE;
	json_array_foreach(json_object_get(a, "cron"), i, o) {
		const char *s = json_string_value(json_object_get(o, "schedule"));
		if (uint_of(o, "id") != id || !s)
			continue;
		rc = (*spec = strdup(s)) ? 0 : TH_ENOMEM;
		break;
	}
	json_decref(a);
	if (rc == TH_ESTATE)
		snprintf(c->error, sizeof(c->error), "job %llu is no cron job",
			 (unsigned long long)id);
	return rc;
}

int th_client_cron_update(th_client *c, uint64_t id, const char *spec, int catchup)
{
	char path[64];
	snprintf(path, sizeof(path), "/cron/%llu", (unsigned long long)id);
	if (!spec && catchup < 0) { /* the API wants a change: the same catch-up */
		th_job job;
		int rc = th_client_get(c, id, &job);
		if (rc)
			return rc;
		catchup = (job.flags & TH_JOB_CRON_CATCHUP) != 0;
	}
	json_t *body = json_object();
	if (spec)
		json_object_set_new(body, "schedule", json_string(spec));
	if (catchup >= 0)
		json_object_set_new(body, "catchup", json_boolean(catchup));
	return call(c, "PATCH", path, body, CLIENT_TIMEOUT_S, NULL, NULL);
}

int th_client_cron_pause(th_client *c, uint64_t id, bool paused)
{
	char path[64];
	snprintf(path, sizeof(path), "/cron/%llu/%s", (unsigned long long)id,
		 paused ? "pause" : "resume");
	return call(c, "POST", path, NULL, CLIENT_TIMEOUT_S, NULL, NULL);
}

int th_client_cron_remove(th_client *c, uint64_t id)
{
	char path[64];
	snprintf(path, sizeof(path), "/cron/%llu", (unsigned long long)id);
	return call(c, "DELETE", path, NULL, CLIENT_TIMEOUT_S, NULL, NULL);
}

int th_client_cron_next(th_client *c, uint64_t id, size_t max, int64_t *times, size_t *n)
{
	char path[80];
	snprintf(path, sizeof(path), "/cron/%llu/next?count=%zu", (unsigned long long)id,
		 max ? max : 1);
	json_t *a = NULL;
	int rc = call(c, "GET", path, NULL, CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	size_t i;
	json_t *t;
	*n = 0;
	json_array_foreach(json_object_get(a, "next"), i, t)
		if (*n < max)
			times[(*n)++] = time_of(t);
	json_decref(a);
	return 0;
}

/* ---- queues, stats, tasks ---- */

int th_client_pause_queue(th_client *c, const char *queue, bool paused)
{
	char path[160], *q = curl_easy_escape(c->curl, queue, 0);
	if (!q)
		return TH_ENOMEM;
	snprintf(path, sizeof(path), "/queues/%s/%s", q, paused ? "pause" : "resume");
	curl_free(q);
	return call(c, "POST", path, NULL, CLIENT_TIMEOUT_S, NULL, NULL);
}

int th_client_clean(th_client *c, double older_than, uint64_t *removed)
{
	json_t *a = NULL;
	int rc = call(c, "POST", "/clean", json_pack("{s:f}", "older_than", older_than),
		      CLIENT_TIMEOUT_S, &a, NULL);
	if (rc == 0)
		*removed = uint_of(a, "removed");
	json_decref(a);
	return rc;
}

static int get_doc(th_client *c, const char *path, char **json)
{
	json_t *a = NULL;
	int rc = call(c, "GET", path, NULL, CLIENT_TIMEOUT_S, &a, NULL);
	if (rc)
		return rc;
	*json = json_dumps(a, JSON_PRESERVE_ORDER | JSON_COMPACT);
	json_decref(a);
	return *json ? 0 : TH_ENOMEM;
}

int th_client_queues(th_client *c, char **json)
{
	return get_doc(c, "/queues", json);
}

int th_client_stats(th_client *c, char **json)
{
	return get_doc(c, "/stats", json);
}

int th_client_stats_history(th_client *c, const char *queue, int minutes, char **json)
{
	char path[200], *q = queue ? curl_easy_escape(c->curl, queue, 0) : NULL;
	if (queue && !q)
		return TH_ENOMEM;
	snprintf(path, sizeof(path), "/stats/history?minutes=%d%s%s", minutes, q ? "&queue=" : "",
		 q ? q : "");
	curl_free(q);
	return get_doc(c, path, json);
}

int th_client_tasks(th_client *c, char **json)
{
	return get_doc(c, "/tasks", json);
}
