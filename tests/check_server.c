/* The HTTP API's parts without HTTP: the route table against the OpenAPI document, the
 * request decoders, the token file, and the group committer sharing commits. */
#include <check.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "commit.h"
#include "config.h"
#include "error.h"
#include "server/server.h"
#include "server/api.h"
#include "server/server_auth.h"
#include "testutil.h"

START_TEST(routes_are_documented)
{
	json_error_t e;
	json_t *doc = json_loads(th_api_openapi, 0, &e);
	ck_assert_msg(doc, "openapi.json: %s", e.text);
	json_t *paths = json_object_get(doc, "paths");
	size_t routes = 0;
	const th_api_route *r = th_api_routes;
	for (bool root = false; r->method || !root; r++, routes++) {
		if (!r->method) { /* then those not under /v1 */
			r = th_api_root_routes;
			root = true;
		}
		char path[128], method[16];
		snprintf(path, sizeof(path), "%s%s", root ? "" : "/v1", r->pattern);
		size_t i;
		for (i = 0; r->method[i] && i < sizeof(method) - 1; i++)
			method[i] = (char)tolower((unsigned char)r->method[i]);
		method[i] = 0;
		json_t *op = json_object_get(json_object_get(paths, path), method);
		ck_assert_msg(op, "%s %s is not in openapi.json", r->method, path);
		static const char *const scopes[] = {"none", "read", "write", "admin"};
		ck_assert_str_eq(json_string_value(json_object_get(op, "x-scope")), scopes[r->scope]);
	}
	/* and nothing documented that is not served */
	size_t documented = 0;
	const char *key;
	json_t *v;
	json_object_foreach(paths, key, v)
		documented += json_object_size(v);
	ck_assert_uint_eq(documented, routes);
	json_decref(doc);
}
END_TEST

static int decode(const char *text, th_new_job *job, th_add_opts *o, void **input, char *err)
{
	json_t *j = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(j);
	int rc = th_api_decode_job(j, job, o, input, err, 256);
	json_decref(j); /* the strings are copied by the caller below when needed */
	return rc;
}

START_TEST(decode_job_fields)
{
	th_new_job job;
	th_add_opts o;
	void *input;
	char err[256];
	json_t *j = json_loads("{\"task\":\"echo\",\"input\":\"hi\",\"queue\":\"q1\",\"priority\":-4,"
			       "\"max_attempts\":7,\"delay\":2.5,\"hold\":true,\"timeout\":9,"
			       "\"backoff\":3,\"unique\":\"u\",\"catchup\":true}", 0, NULL);
	ck_assert_int_eq(th_api_decode_job(j, &job, &o, &input, err, sizeof(err)), 0);
	ck_assert_str_eq(job.task, "echo");
	ck_assert_uint_eq(job.len, 2);
	ck_assert_int_eq(memcmp(job.input, "hi", 2), 0);
	ck_assert_str_eq(o.queue, "q1");
	ck_assert_int_eq(o.priority, -4);
	ck_assert_uint_eq(o.max_attempts, 7);
	ck_assert(o.delay == 2.5 && o.hold && o.timeout == 9 && o.backoff == 3 && o.catchup);
	ck_assert_str_eq(o.unique, "u");
	free(input);
	json_decref(j);

	j = json_loads("{\"task\":\"t\",\"input_base64\":\"AAEC/w==\",\"at\":4000000000}", 0, NULL);
	ck_assert_int_eq(th_api_decode_job(j, &job, &o, &input, err, sizeof(err)), 0);
	ck_assert_uint_eq(job.len, 4);
	ck_assert_int_eq(memcmp(job.input, "\0\1\2\377", 4), 0);
	ck_assert(o.at_us == 4000000000LL * 1000000);
	free(input);
	json_decref(j);
}
END_TEST

START_TEST(decode_job_errors_name_the_field)
{
	static const struct {
		const char *body, *err;
	} cases[] = {
		{"[]", "job: expected an object"},
		{"{}", "task: missing"},
		{"{\"task\":\"t\",\"x\":1}", "unknown field 'x'"},
		{"{\"task\":7}", "task: expected a string (without NUL)"},
		{"{\"task\":\"t\",\"priority\":1.5}", "priority: expected a whole number"},
		{"{\"task\":\"t\",\"max_attempts\":0}", "max_attempts: expected a number from 1 to 1000"},
		{"{\"task\":\"t\",\"delay\":-1}", "delay: expected a number from 0 to 3.1536e+09"},
		{"{\"task\":\"t\",\"hold\":1}", "hold: expected true or false"},
		{"{\"task\":\"t\",\"input\":\"a\",\"input_base64\":\"YQ==\"}",
		 "input: give input or input_base64, not both"},
		{"{\"task\":\"t\",\"input_base64\":\"YQ=a\"}", "input_base64: not base64"},
		{"{\"task\":\"t\",\"input_base64\":\"AAEC/u==\"}", "input_base64: not base64"},
		{"{\"task\":\"t\",\"at\":\"tomorrow\"}",
		 "at: expected a time such as 2026-12-01T08:00:00Z or seconds since the epoch"},
		{"{\"task\":\"t\",\"at\":5,\"delay\":1}", "at: at and delay both say when: give one"},
		{"{\"task\":\"t\",\"hold\":true,\"cron\":\"every 5s\"}", "hold: a cron job cannot be held"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		th_new_job job;
		th_add_opts o;
		void *input;
		char err[256] = "";
		ck_assert_int_eq(decode(cases[i].body, &job, &o, &input, err), TH_EINVAL);
		ck_assert_str_eq(err, cases[i].err);
		free(input);
	}
}
END_TEST

START_TEST(decode_wait_and_cron)
{
	uint64_t *ids;
	size_t n;
	double t;
	char err[256];
	json_t *j = json_loads("{\"ids\":[3,4],\"timeout\":1.5}", 0, NULL);
	ck_assert_int_eq(th_api_decode_wait(j, &ids, &n, &t, err, sizeof(err)), 0);
	ck_assert(n == 2 && ids[0] == 3 && ids[1] == 4 && t == 1.5);
	free(ids);
	json_decref(j);
	j = json_loads("{\"ids\":[0]}", 0, NULL);
	ck_assert_int_eq(th_api_decode_wait(j, &ids, &n, &t, err, sizeof(err)), TH_EINVAL);
	ck_assert_str_eq(err, "ids: expected job ids (whole numbers from 1)");
	json_decref(j);
	j = json_loads("{\"ids\":[]}", 0, NULL);
	ck_assert_int_eq(th_api_decode_wait(j, &ids, &n, &t, err, sizeof(err)), TH_EINVAL);
	ck_assert_str_eq(err, "ids: expected an array of 1 to 1000 job ids");
	json_decref(j);
	const char *spec;
	int catchup;
	j = json_loads("{\"catchup\":false}", 0, NULL);
	ck_assert_int_eq(th_api_decode_cron_update(j, &spec, &catchup, err, sizeof(err)), 0);
	ck_assert(spec == NULL && catchup == 0);
	json_decref(j);
}
END_TEST

static char *write_tokens(const char *dir, const char *text, mode_t mode)
{
	char *path;
	ck_assert_int_ge(asprintf(&path, "%s/tokens", dir), 0);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

START_TEST(token_file)
{
	char *dir = tu_tmpdir(), err[512];
	char *path = write_tokens(dir, "# who scope token\n\nr read rrrrrrrrrrrrrrrr\n"
				  "w write wwwwwwwwwwwwwwwwwwww\na admin aaaaaaaaaaaaaaaa\n", 0600);
	th_auth *a;
	ck_assert_int_eq(th_auth_load(&a, path, err, sizeof(err)), 0);
	const char *who;
	ck_assert_int_eq(th_auth_check(a, "rrrrrrrrrrrrrrrr", &who), TH_SCOPE_READ);
	ck_assert_str_eq(who, "r");
	ck_assert_int_eq(th_auth_check(a, "wwwwwwwwwwwwwwwwwwww", &who), TH_SCOPE_WRITE);
	ck_assert_int_eq(th_auth_check(a, "aaaaaaaaaaaaaaaa", &who), TH_SCOPE_ADMIN);
	ck_assert_int_eq(th_auth_check(a, "aaaaaaaaaaaaaaab", &who), TH_SCOPE_NONE);
	ck_assert_int_eq(th_auth_check(a, "aaaaaaaaaaaaaaaaa", &who), TH_SCOPE_NONE);
	ck_assert_int_eq(th_auth_check(a, NULL, &who), TH_SCOPE_NONE);
	th_auth_free(a);
	free(path);

	static const struct {
		const char *text, *why;
	} bad[] = {
		{"x read\n", ":1: expected NAME SCOPE TOKEN"},
		{"x root aaaaaaaaaaaaaaaa\n", ":1: scope must be read, write or admin"},
		{"# c\nx read short\n", ":2: a token is 16 to 256 characters"},
		{"x read aaaaaaaaaaaaaaaa extra\n", ":1: expected NAME SCOPE TOKEN"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		path = write_tokens(dir, bad[i].text, 0600);
		ck_assert_int_eq(th_auth_load(&a, path, err, sizeof(err)), TH_ECONFIG);
		ck_assert_msg(strstr(err, bad[i].why) && strstr(err, path), "%s", err);
		free(path);
	}
	path = write_tokens(dir, "x read aaaaaaaaaaaaaaaa\n", 0640);
	ck_assert_int_eq(th_auth_load(&a, path, err, sizeof(err)), TH_EINSECURE);
	ck_assert_msg(strstr(err, path) && strstr(err, "(mode 0640)"), "%s", err);
	free(path);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* ---- the group committer ---- */

#define WRITERS 8
#define ADDS 25

struct writer {
	th_commit *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	uint64_t id;
	bool existed;
	char input[32];
	th_new_job job;
};

static void writer_done(th_commit_req *r)
{
	struct writer *w = r->ud;
	pthread_mutex_lock(&w->mu);
	w->rc = r->rc;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *writer(void *arg)
{
	struct writer *w = arg;
	for (int k = 0; k < ADDS; k++) {
		th_commit_req r = {.w = {.s = {.n = 1, .ids = &w->id, .existed = &w->existed},
					 .jobs = &w->job},
				   .done = writer_done, .ud = w};
		w->done = false;
		ck_assert_int_eq(th_commit_submit(w->c, &r), 0);
		pthread_mutex_lock(&w->mu);
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		ck_assert_int_eq(w->rc, 0);
		ck_assert_uint_gt(w->id, 0);
	}
	return NULL;
}

/* Every job of the service, whatever its status. */
static uint64_t total_jobs(th_service *svc)
{
	uint64_t counts[TH_JOB_STATUS_MAX + 1], total = 0;
	ck_assert_int_eq(th_service_count(svc, counts), 0);
	for (int st = 1; st <= TH_JOB_STATUS_MAX; st++)
		total += counts[st];
	return total;
}

/* A server on svc with a config's defaults, its data dir dir/data, its socket's path
 * in sock; timeout: its connection_timeout (0: the default). */
static th_server *serve(const char *dir, th_service *svc, th_config *cfg, double timeout,
			char *sock, size_t socklen)
{
	char err[512];
	snprintf(sock, socklen, "%s/taskhost.ini", dir);
	ck_assert_int_eq(th_config_defaults(cfg, sock), 0);
	free(cfg->data_dir);
	ck_assert_int_ge(asprintf(&cfg->data_dir, "%s/data", dir), 0);
	if (timeout > 0)
		cfg->connection_timeout = timeout;
	th_server *srv;
	ck_assert_msg(th_server_start(&srv, svc, cfg, err, sizeof(err)) == 0, "%s", err);
	snprintf(sock, socklen, "%s/data/api.sock", dir);
	return srv;
}

START_TEST(group_commit_shares_commits)
{
	char *dir = tu_tmpdir(), *pdir = tu_plugin_dir(dir, "echo", NULL);
	th_service *svc = tu_service(dir, pdir);
	th_commit *c;
	ck_assert_int_eq(th_commit_start(&c, svc), 0);
	static struct writer w[WRITERS];
	pthread_t t[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.c = c};
		pthread_mutex_init(&w[i].mu, NULL);
		pthread_cond_init(&w[i].cv, NULL);
		snprintf(w[i].input, sizeof(w[i].input), "writer %d", i);
		w[i].job = (th_new_job){"echo", w[i].input, strlen(w[i].input), NULL};
		pthread_create(&t[i], NULL, writer, &w[i]);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	th_commit_stats st;
	th_commit_get_stats(c, &st);
	ck_assert_uint_eq(st.writes, WRITERS * ADDS);
	ck_assert_uint_eq(st.jobs, WRITERS * ADDS);
	ck_assert_uint_le(st.commits, st.jobs);
	/* a bad job of one writer fails that writer alone */
	struct writer bad = {.c = c};
	pthread_mutex_init(&bad.mu, NULL);
	pthread_cond_init(&bad.cv, NULL);
	bad.job = (th_new_job){"echo", "x", 1, &(th_add_opts){.cron = "not a schedule"}};
	th_commit_req r = {.w = {.s = {.n = 1, .ids = &bad.id}, .jobs = &bad.job},
			   .done = writer_done, .ud = &bad};
	ck_assert_int_eq(th_commit_submit(c, &r), 0);
	th_commit_stop(c);
	ck_assert(bad.done);
	ck_assert_int_eq(bad.rc, TH_EINVAL);
	ck_assert_uint_eq(total_jobs(svc), WRITERS * ADDS);
	th_service_close(svc);
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}
END_TEST

/* ---- mixed writes that arrive while a commit runs share the next one ---- */

/* An op that holds the committer until opened, so that writes queue up behind it. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
	int answered;
};

static int gate_op(th_service *svc, void *arg)
{
	(void)svc;
	struct gate *g = arg;
	pthread_mutex_lock(&g->mu);
	g->entered = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static void gate_done(th_commit_req *r)
{
	struct gate *g = r->ud;
	pthread_mutex_lock(&g->mu);
	g->answered++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static uint64_t add_one(th_service *svc, const th_add_opts *o)
{
	uint64_t id;
	ck_assert_int_eq(th_service_add_ex(svc, "echo", "x", 1, o, &id, NULL), 0);
	return id;
}

START_TEST(group_commit_mixed_writes)
{
	char *dir = tu_tmpdir(), *pdir = tu_plugin_dir(dir, "echo", NULL);
	th_service *svc = tu_service(dir, pdir);
	uint64_t held = add_one(svc, &(th_add_opts){.hold = true}), queued = add_one(svc, NULL),
		 queued2 = add_one(svc, NULL), cancelled = add_one(svc, NULL),
		 cron = add_one(svc, &(th_add_opts){.cron = "every 1h"});
	ck_assert_int_eq(th_service_cancel(svc, cancelled), 0);
	th_commit *c;
	ck_assert_int_eq(th_commit_start(&c, svc), 0);
	struct gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	th_commit_req first = {.op = gate_op, .arg = &g, .done = gate_done, .ud = &g};
	ck_assert_int_eq(th_commit_submit(c, &first), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.entered)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	th_commit_stats before;
	th_commit_get_stats(c, &before);

	/* while the committer is held, writes of every kind queue up, in this order */
	uint64_t id_a = 0, id_bad = 0, id_none = 0;
	th_new_job a = {"echo", "a", 1, NULL},
		   bad = {"echo", "b", 1, &(th_add_opts){.cron = "not a schedule"}},
		   none = {"nosuchtask", "", 0, NULL};
	struct {
		th_store_write s;
		const th_new_job *job;
		int want;
	} w[] = {
		{{.kind = TH_WRITE_ADD, .n = 1, .ids = &id_a}, &a, 0},
		{{.kind = TH_WRITE_START, .id = held}, NULL, 0},
		{{.kind = TH_WRITE_CANCEL, .id = queued}, NULL, 0},
		{{.kind = TH_WRITE_CANCEL, .id = 99999}, NULL, TH_ENOTFOUND},
		{{.kind = TH_WRITE_RETRY, .id = queued2}, NULL, TH_ESTATE},
		{{.kind = TH_WRITE_RETRY, .id = cancelled}, NULL, 0},
		{{.kind = TH_WRITE_CRON, .id = cron, .spec = "0 3 * * *", .catchup = 1,
		  .paused = -1}, NULL, 0},
		{{.kind = TH_WRITE_CRON, .id = cron, .catchup = -1, .paused = 1}, NULL, 0},
		{{.kind = TH_WRITE_PAUSE_QUEUE, .queue = "q1", .paused = 1}, NULL, 0},
		{{.kind = TH_WRITE_PAUSE_QUEUE, .queue = "bad name", .paused = 1}, NULL, TH_EINVAL},
		{{.kind = TH_WRITE_ADD, .n = 1, .ids = &id_bad}, &bad, TH_EINVAL},
		{{.kind = TH_WRITE_ADD, .n = 1, .ids = &id_none}, &none, TH_EUNKNOWNTASK},
		{{.kind = TH_WRITE_CANCEL, .id = cron}, NULL, 0},
		/* after those before them: the cron job is cancelled, the held job queued */
		{{.kind = TH_WRITE_CRON, .id = cron, .catchup = -1, .paused = 0}, NULL, TH_ESTATE},
		{{.kind = TH_WRITE_START, .id = held}, NULL, TH_ESTATE},
	};
	enum { N = sizeof(w) / sizeof(w[0]) };
	th_commit_req r[N];
	for (int i = 0; i < N; i++) {
		r[i] = (th_commit_req){.w = {.s = w[i].s, .jobs = w[i].job}, .done = gate_done,
				       .ud = &g, .rc = 12345};
		ck_assert_int_eq(th_commit_submit(c, &r[i]), 0);
	}
	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	while (g.answered < N + 1)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	th_commit_stats after;
	th_commit_get_stats(c, &after);
	/* each got its own answer, and the refusals failed no other write */
	for (int i = 0; i < N; i++)
		ck_assert_msg(r[i].rc == w[i].want, "write %d: %s, expected %s", i,
			      th_strerror(r[i].rc), th_strerror(w[i].want));
	/* all of them in one transaction */
	ck_assert_uint_eq(after.writes - before.writes, N + 1);
	ck_assert_uint_eq(after.commits - before.commits, 1);
	th_commit_stop(c);

	th_job job;
	struct {
		uint64_t id;
		th_job_status status;
	} want[] = {{id_a, TH_JOB_QUEUED},        {held, TH_JOB_QUEUED},
		    {queued, TH_JOB_CANCELLED},   {queued2, TH_JOB_QUEUED},
		    {cancelled, TH_JOB_QUEUED},   {cron, TH_JOB_CANCELLED}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_int_eq(th_service_get(svc, want[i].id, &job), 0);
		ck_assert_msg(job.status == want[i].status, "job %llu is %s",
			      (unsigned long long)want[i].id, th_job_status_name(job.status));
	}
	ck_assert_uint_eq(id_a, cron + 1);
	char *spec;
	ck_assert_int_eq(th_service_cron_spec(svc, cron, &spec), 0);
	ck_assert_str_eq(spec, "0 3 * * *");
	free(spec);
	bool paused = false;
	ck_assert_int_eq(th_service_queue_paused(svc, "q1", &paused), 0);
	ck_assert(paused);
	th_service_close(svc);
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}
END_TEST

/* ---- the client, against a server on a service in this process ---- */

static int count_job(const th_job *job, void *ud)
{
	(void)job;
	(*(size_t *)ud)++;
	return 0;
}

static int first_job(const th_job *job, void *ud)
{
	*(uint64_t *)ud = job->id;
	return 1;
}

START_TEST(client_calls)
{
	char *dir = tu_tmpdir(), *pdir = tu_plugin_dir(dir, "echo", NULL), path[4096];
	th_service *svc = tu_service(dir, pdir);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	th_config cfg;
	th_server *srv = serve(dir, svc, &cfg, 0, path, sizeof(path));
	th_client *c;
	ck_assert_int_eq(th_client_open(&c, path, NULL), 0);

	uint64_t id, ids[3];
	bool existed = true;
	ck_assert_int_eq(th_client_add(c, "echo", "hi", 2, NULL, &id, &existed), 0);
	ck_assert(!existed);
	ck_assert_int_eq(th_client_wait(c, &id, 1, 10), 0);
	th_job job;
	ck_assert_int_eq(th_client_get(c, id, &job), 0);
	ck_assert_uint_eq(job.id, id);
	ck_assert_str_eq(job.task, "echo");
	ck_assert_int_eq(job.status, TH_JOB_COMPLETED);
	ck_assert_uint_eq(job.input_len, 2);
	ck_assert(job.added_us > 0 && job.finished_us >= job.added_us);

	th_new_job many[3] = {{"echo", "a", 1, NULL}, {"echo", "\0\1", 2, NULL}, {"noop", "", 0, NULL}};
	ck_assert_msg(th_client_add_many(c, many, 3, ids) == 0, "%s", th_client_error(c));
	ck_assert_uint_eq(ids[2], ids[0] + 2);
	ck_assert_int_eq(th_client_get(c, ids[1], &job), 0);
	ck_assert_uint_eq(job.input_len, 2); /* sent as base64 */

	th_add_opts held = {.hold = true, .queue = "q1", .priority = 4, .unique = "k"};
	ck_assert_int_eq(th_client_add(c, "echo", "", 0, &held, &id, NULL), 0);
	ck_assert_int_eq(th_client_get(c, id, &job), 0);
	ck_assert_int_eq(job.status, TH_JOB_HELD);
	ck_assert_str_eq(job.queue, "q1");
	ck_assert_int_eq(job.priority, 4);
	ck_assert_int_eq(th_client_wait(c, &id, 1, 0.2), TH_ETIMEDOUT);
	ck_assert_int_eq(th_client_cancel(c, id), 0);
	ck_assert_int_eq(th_client_cancel(c, id), TH_ESTATE);
	ck_assert_int_eq(th_client_get(c, 99999, &job), TH_ENOTFOUND);
	ck_assert_str_eq(th_client_error(c), "job 99999 not found");
	ck_assert_int_eq(th_client_add(c, "nope", "", 0, NULL, &id, NULL), TH_EUNKNOWNTASK);
	size_t n = 0;
	ck_assert_int_eq(th_client_list(c, TH_MASK_ALL, 0, count_job, &n), 0);
	ck_assert_uint_eq(n, 5);
	n = 0;
	ck_assert_int_eq(th_client_list(c, TH_MASK(TH_JOB_CANCELLED), 0, count_job, &n), 0);
	ck_assert_uint_eq(n, 1);

	/* bytes of a job: input and result, text and not */
	void *data;
	size_t len;
	ck_assert_int_eq(th_client_wait(c, ids, 3, 10), 0);
	ck_assert_int_eq(th_client_result(c, ids[1], &data, &len), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(memcmp(data, "\0\1", 3), 0); /* NUL-terminated past len */
	free(data);
	ck_assert_int_eq(th_client_input(c, ids[0], &data, &len), 0);
	ck_assert_str_eq(data, "a");
	free(data);
	char *text;
	ck_assert_int_eq(th_client_job_error(c, ids[0], &text), TH_ESTATE); /* it has none */
	ck_assert_int_eq(th_client_errors(c, ids[0], &text), 0);
	ck_assert_str_eq(text, "");
	free(text);
	ck_assert_int_eq(th_client_result(c, id, &data, &len), TH_ESTATE); /* cancelled */
	/* start and retry */
	ck_assert_int_eq(th_client_start(c, ids[0]), TH_ESTATE);
	ck_assert_int_eq(th_client_retry(c, id), 0);
	ck_assert_int_eq(th_client_get(c, id, &job), 0);
	ck_assert(job.status == TH_JOB_QUEUED || th_job_status_final(job.status));
	ck_assert_int_eq(th_client_retry(c, 99999), TH_ENOTFOUND);
	bool known = true;
	double done = 0;
	ck_assert_int_eq(th_client_progress(c, ids[0], &known, &done), 0);
	ck_assert(known && done == 1); /* completed */
	/* the newest first, and a filter */
	uint64_t first = 0;
	th_client_filter f = {.newest_first = true};
	ck_assert_int_eq(th_client_list_ex(c, &f, 0, first_job, &first), 0);
	ck_assert_uint_eq(first, id);
	f = (th_client_filter){.task = "noop"};
	first = 0;
	ck_assert_int_eq(th_client_list_ex(c, &f, 0, first_job, &first), 0);
	ck_assert_uint_eq(first, ids[2]);

	/* cron jobs */
	th_add_opts cron = {.cron = "every 1h"};
	uint64_t cid;
	ck_assert_int_eq(th_client_add(c, "echo", "", 0, &cron, &cid, NULL), 0);
	ck_assert_int_eq(th_client_cron_spec(c, cid, &text), 0);
	ck_assert_str_eq(text, "every 1h");
	free(text);
	ck_assert_int_eq(th_client_cron_spec(c, ids[0], &text), TH_ESTATE);
	ck_assert_int_eq(th_client_cron_update(c, cid, "0 3 * * *", 1), 0);
	ck_assert_int_eq(th_client_cron_spec(c, cid, &text), 0);
	ck_assert_str_eq(text, "0 3 * * *");
	free(text);
	ck_assert_int_eq(th_client_cron_update(c, cid, "nonsense", -1), TH_EINVAL);
	ck_assert_int_eq(th_client_cron_pause(c, cid, true), 0);
	ck_assert_int_eq(th_client_get(c, cid, &job), 0);
	ck_assert(job.flags & TH_JOB_CRON_PAUSED && job.flags & TH_JOB_CRON_CATCHUP);
	int64_t times[3];
	ck_assert_int_eq(th_client_cron_next(c, cid, 3, times, &n), 0);
	ck_assert_uint_eq(n, 0); /* paused: it fires at no time */
	ck_assert_int_eq(th_client_cron_pause(c, cid, false), 0);
	ck_assert_int_eq(th_client_cron_next(c, cid, 3, times, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert(times[1] - times[0] == 86400 * INT64_C(1000000));
	ck_assert_int_eq(th_client_cron_remove(c, cid), 0);
	ck_assert_int_eq(th_client_get(c, cid, &job), 0);
	ck_assert_int_eq(job.status, TH_JOB_CANCELLED);

	/* queues, stats, tasks */
	ck_assert_int_eq(th_client_pause_queue(c, "q1", true), 0);
	ck_assert_int_eq(th_client_queues(c, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"default\""));
	free(text);
	bool paused = false;
	ck_assert_int_eq(th_service_queue_paused(svc, "q1", &paused), 0);
	ck_assert(paused);
	ck_assert_int_eq(th_client_pause_queue(c, "q1", false), 0);
	ck_assert_int_eq(th_client_pause_queue(c, "bad name", false), TH_EINVAL);
	ck_assert_int_eq(th_client_stats(c, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"counts\":{"));
	free(text);
	ck_assert_int_eq(th_client_stats_history(c, "q1", 3, &text), 0);
	json_t *h = json_loads(text, 0, NULL);
	free(text);
	ck_assert_uint_eq(json_array_size(json_object_get(h, "minutes")), 3);
	json_decref(h);
	ck_assert_int_eq(th_client_stats_history(c, NULL, 0, &text), TH_EINVAL);
	ck_assert_ptr_nonnull(strstr(th_client_error(c), "minutes: expected a whole number"));
	/* clean */
	uint64_t removed = 99;
	ck_assert_int_eq(th_client_clean(c, -1, &removed), TH_EINVAL);
	ck_assert_str_eq(th_client_error(c), "clean: older_than: out of range (from 0 to 36500d)");
	ck_assert_int_eq(th_client_clean(c, 3600, &removed), 0);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(th_client_wait(c, ids, 3, 10), 0);
	ck_assert_int_eq(th_client_clean(c, 0, &removed), 0);
	ck_assert_uint_ge(removed, 3);
	ck_assert_int_eq(th_client_get(c, ids[0], &job), TH_ENOTFOUND);
	ck_assert_int_eq(th_client_tasks(c, &text), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"noop\""));
	free(text);
	ck_assert_int_eq(th_client_status(c), 200);
	th_client_close(c);

	ck_assert_int_eq(th_client_open(&c, "http://", NULL), TH_EINVAL);
	ck_assert_ptr_nonnull(strstr(th_client_error(c), "bad URL 'http://'"));
	th_client_close(c);

	th_server_stop(srv);
	ck_assert_int_eq(th_client_open(&c, path, NULL), 0);
	ck_assert_int_eq(th_client_get(c, 1, &job), TH_EIO); /* no host there now */
	ck_assert_ptr_nonnull(strstr(th_client_error(c), "/v1/jobs/1"));
	ck_assert_ptr_nonnull(strstr(th_client_error(c), "cannot reach the host at unix socket "));
	ck_assert_int_eq(th_client_status(c), 0);
	th_client_close(c);
	th_config_free(&cfg);
	th_service_close(svc);
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}
END_TEST

/* ---- the client against a fake host that loses a connection with a write on it ---- */

/* The fake host on a unix socket: on each connection it answers one request, then reads
 * the next and closes without an answer (as a host does that is killed after its
 * commit, or that closes an idle connection as a request comes). */
#define FAKE_CONNS 8
struct fake_host {
	int lfd;
	char path[4200];
	int connections, requests;
	pthread_t thread;
};

/* Reads one request (its headers and Content-Length bytes of body); false at its end. */
static bool fake_read(int fd)
{
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	while (!(end = len ? strstr(buf, "\r\n\r\n") : NULL)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		buf[len += (size_t)n] = 0;
	}
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	size_t want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
	while (len < want) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
	}
	return true;
}

static void *fake_host_run(void *arg)
{
	struct fake_host *f = arg;
	struct pollfd p[FAKE_CONNS + 1] = {{.fd = f->lfd, .events = POLLIN}};
	int answered[FAKE_CONNS + 1] = {0};
	size_t n = 1;
	while (poll(p, n, -1) > 0 && !(p[0].revents & (POLLERR | POLLHUP | POLLNVAL))) {
		if (p[0].revents & POLLIN && n <= FAKE_CONNS) {
			p[n] = (struct pollfd){.fd = accept(f->lfd, NULL, NULL), .events = POLLIN};
			answered[n++] = 0;
			f->connections++;
		}
		for (size_t i = n - 1; i >= 1; i--) {
			if (!p[i].revents)
				continue;
			bool lose = answered[i] == 1, got = fake_read(p[i].fd);
			f->requests += got;
			if (got && !lose) {
				char out[256], body[64];
				int len = snprintf(body, sizeof(body), "{\"id\":%d,\"existed\":false}",
						   f->requests);
				len = snprintf(out, sizeof(out), "HTTP/1.1 201 Created\r\nContent-Type: "
					       "application/json\r\nContent-Length: %d\r\n\r\n%s",
					       len, body);
				ck_assert_int_eq(write(p[i].fd, out, (size_t)len), len);
				answered[i]++;
				continue;
			}
			close(p[i].fd); /* its end, or lost unanswered */
			p[i] = p[--n];
			answered[i] = answered[n];
		}
	}
	for (size_t i = 1; i < n; i++)
		close(p[i].fd);
	return NULL;
}

static void fake_host_start(struct fake_host *f, const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", dir);
	ck_assert_uint_lt(strlen(f->path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_host_run, f), 0);
}

static void fake_host_stop(struct fake_host *f)
{
	shutdown(f->lfd, SHUT_RDWR); /* its poll sees the end: the thread ends */
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

START_TEST(client_sends_a_write_once)
{
	char *dir = tu_tmpdir();
	struct fake_host f = {0};
	fake_host_start(&f, dir);
	th_client *c;
	ck_assert_int_eq(th_client_open(&c, f.path, NULL), 0);
	uint64_t id;
	ck_assert_int_eq(th_client_add(c, "echo", "a", 1, NULL, &id, NULL), 0);
	ck_assert_uint_eq(id, 1);
	/* the connection is lost with the add on it: it is not sent again */
	ck_assert_int_eq(th_client_add(c, "echo", "b", 1, NULL, &id, NULL), TH_EIO);
	ck_assert_msg(strstr(th_client_error(c), "lost the host at unix socket ") &&
		      strstr(th_client_error(c), "during POST /v1/jobs: ") &&
		      strstr(th_client_error(c), "may or may not have been done"), "%s",
		      th_client_error(c));
	/* idle longer than a write reuses a connection for: a fresh one, its first answered */
	ck_assert_int_eq(th_client_add(c, "echo", "c", 1, NULL, &id, NULL), 0);
	ck_assert_uint_eq(id, 3);
	nanosleep(&(struct timespec){.tv_nsec = (long)(TH_CLIENT_WRITE_IDLE_MAX * 1e9) + 100000000},
		  NULL);
	ck_assert_msg(th_client_add(c, "echo", "d", 1, NULL, &id, NULL) == 0, "%s",
		      th_client_error(c));
	ck_assert_uint_eq(id, 4);
	th_client_close(c);
	fake_host_stop(&f);
	ck_assert_int_eq(f.requests, 4); /* b once */
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* A host that closed a connection for being idle (connection_timeout): the adds after
 * it each make one job. */
START_TEST(client_after_the_host_closed_idle)
{
	char *dir = tu_tmpdir(), *pdir = tu_plugin_dir(dir, "echo", NULL), path[4096];
	th_service *svc = tu_service(dir, pdir);
	th_config cfg;
	th_server *srv = serve(dir, svc, &cfg, 1, path, sizeof(path));
	th_client *c;
	ck_assert_int_eq(th_client_open(&c, path, NULL), 0);
	uint64_t id;
	for (int i = 0; i < 3; i++) {
		if (i) /* past the host's connection_timeout */
			nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 300000000}, NULL);
		ck_assert_msg(th_client_add(c, "echo", "x", 1, NULL, &id, NULL) == 0, "%s",
			      th_client_error(c));
		ck_assert_uint_eq(id, (uint64_t)i + 1);
	}
	th_client_close(c);
	th_server_stop(srv);
	ck_assert_uint_eq(total_jobs(svc), 3);
	th_config_free(&cfg);
	th_service_close(svc);
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}
END_TEST

Suite *server_suite(void);
Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("api");
	tcase_add_test(tc, routes_are_documented);
	tcase_add_test(tc, decode_job_fields);
	tcase_add_test(tc, decode_job_errors_name_the_field);
	tcase_add_test(tc, decode_wait_and_cron);
	tcase_add_test(tc, token_file);
	tcase_add_test(tc, group_commit_shares_commits);
	tcase_add_test(tc, group_commit_mixed_writes);
	tcase_add_test(tc, client_calls);
	tcase_add_test(tc, client_sends_a_write_once);
	tcase_add_test(tc, client_after_the_host_closed_idle);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}
