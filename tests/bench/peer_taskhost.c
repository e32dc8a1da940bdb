/* taskhost in the peers benchmark: adds through the C API (th_service_add), HTTP over TCP
 * (th_client_add) or the CLI on the host's socket, one process per producer; consumers are
 * a host in the harness's process, the multi strategy, which also serves the API. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "client.h"
#include "config.h"
#include "peers.h"
#include "server/server.h"
#include "service.h"
#include "store/store.h"
#include "taskhost.h"

#define TASK "peer"
#define FILL_BATCH 10000

extern char **environ;

/* The host of a run: its service, and for the HTTP and CLI columns its API, which runs
 * from setup to teardown (the producers add through it); processing runs only between
 * the harness's host start and stop, as in the C API column. */
struct host {
	th_service *svc;
	th_server *srv;
	th_config cfg;
	bool has_cfg;
	char ini[4200];
};

static bool front(const bp_run *r)
{
	return r->col->variant != BP_VIA_CAPI;
}

/* The task: tells the harness that the job started. */
static th_ret run_peer(th_ctx *ctx)
{
	size_t len;
	const void *in = th_input(ctx, &len);
	bp_started(in, len);
	return TH_OK;
}

static const th_task tasks[] = {{.name = TASK, .description = "peers benchmark job",
				 .run = run_peer}};
TH_PLUGIN(.name = "peers", .version = "1", TH_TASKS(tasks))

static th_service *open_service(bp_run *r, bool inspect, bool relaxed)
{
	th_lmdb_opts lmdb = {.map_size = 1ull << 30};
	th_service_opts o = {.data_dir = r->dir, .inspect_only = inspect,
			     .durability = relaxed ? 1 : 0, .lmdb = &lmdb, .max_attempts = 1};
	th_service *svc;
	int rc = th_service_open(&svc, &o);
	if (rc == 0 && (rc = th_service_register(svc, taskhost_plugin(), "(peers)")) != 0)
		th_service_close(svc);
	if (rc) {
		fprintf(stderr, "bench: taskhost: opening %s: %s\n", r->dir, th_strerror(rc));
		return NULL;
	}
	return svc;
}

static void host_free(struct host *h)
{
	if (!h)
		return;
	th_server_stop(h->srv);
	th_service_close(h->svc);
	if (h->has_cfg)
		th_config_free(&h->cfg);
	free(h);
}

/* The HTTP and CLI columns: a host serving the API on TCP with a token and on its socket,
 * not processing yet; its config file is what the CLI reads. */
static int front_start(bp_run *r)
{
	struct host *h = calloc(1, sizeof(*h));
	char tokens[4200], err[512];
	unsigned port = bu_free_port();
	if (!h)
		return -1;
	snprintf(r->url[0], sizeof(r->url[0]), "http://127.0.0.1:%u", port);
	r->nurls = 1;
	snprintf(tokens, sizeof(tokens), "%s/tokens", r->dir);
	snprintf(h->ini, sizeof(h->ini), "%s/taskhost.ini", r->dir);
	FILE *f = fopen(h->ini, "w");
	bool ok = bp_taskhost_tokens(tokens) == 0 && f &&
		  fprintf(f, "[host]\ndata_dir = %s\nplugin_dir = %s\nlog_level = error\n"
			  "map_size = 1GiB\ndurability = %s\nmax_attempts = 1\n"
			  "listen = 127.0.0.1:%u\ntoken_file = %s\n", r->dir, r->dir,
			  r->relaxed ? "relaxed" : "durable", port, tokens) > 0;
	ok = (f ? fclose(f) == 0 : false) && ok;
	if (!ok || th_config_load(&h->cfg, h->ini, err, sizeof(err))) {
		fprintf(stderr, "bench: taskhost: the host's config: %s\n", ok ? err : "not written");
		free(h);
		return -1;
	}
	h->has_cfg = true;
	if (!(h->svc = open_service(r, false, r->relaxed)) ||
	    th_server_start(&h->srv, h->svc, &h->cfg, err, sizeof(err))) {
		if (h->svc)
			fprintf(stderr, "bench: taskhost: starting the API: %s\n", err);
		host_free(h);
		return -1;
	}
	r->state = h;
	r->server = getpid(); /* the bytes rows: the host's writes, not the producers' */
	return 0;
}

static int th_setup(bp_run *r)
{
	r->dir = bu_fresh_dir();
	return front(r) ? front_start(r) : 0;
}

static void th_teardown(bp_run *r)
{
	if (front(r))
		host_free(r->state);
	else if (r->state)
		th_service_close(r->state);
	r->state = NULL;
	if (r->dir)
		bu_rm_dir(r->dir);
	free(r->dir);
	r->dir = NULL;
}

/* The service the harness's host runs (NULL for the C API's before host_start). */
static th_service *host_service(bp_run *r)
{
	return front(r) ? ((struct host *)r->state)->svc : r->state;
}

/* The fill is not measured: one commit per batch. */
int bp_taskhost_fill(th_service *svc, size_t k)
{
	th_new_job *jobs = calloc(FILL_BATCH, sizeof(*jobs));
	char(*payload)[BP_PAYLOAD_MAX] = calloc(FILL_BATCH, BP_PAYLOAD_MAX);
	uint64_t *ids = calloc(FILL_BATCH, sizeof(*ids));
	int rc = jobs && payload && ids ? 0 : TH_ENOMEM;
	for (size_t done = 0; rc == 0 && done < k;) {
		size_t b = k - done < FILL_BATCH ? k - done : FILL_BATCH;
		for (size_t i = 0; i < b; i++)
			jobs[i] = (th_new_job){TASK, payload[i], bp_payload(payload[i], done + i, 0),
					       NULL};
		rc = th_service_add_many(svc, jobs, b, ids);
		done += b;
	}
	if (rc)
		fprintf(stderr, "bench: taskhost: filling: %s\n", th_strerror(rc));
	free(jobs);
	free(payload);
	free(ids);
	return rc ? -1 : 0;
}

/* Relaxed, through a service of its own for the C API column. */
static int th_fill(bp_run *r, size_t k)
{
	th_service *svc = front(r) ? host_service(r) : open_service(r, true, true);
	int rc = svc ? bp_taskhost_fill(svc, k) : -1;
	if (!front(r))
		th_service_close(svc);
	return rc;
}

int bp_taskhost_tokens(const char *path)
{
	FILE *t = fopen(path, "w");
	bool ok = t && fprintf(t, "bench write %s\n", BP_TASKHOST_TOKEN) > 0;
	ok = (t ? fclose(t) == 0 : false) && ok && chmod(path, 0600) == 0;
	if (!ok)
		fprintf(stderr, "bench: taskhost: writing %s failed\n", path);
	return ok ? 0 : -1;
}

int bp_taskhost_check(th_service *svc, size_t n, char *why, size_t len)
{
	uint64_t counts[TH_JOB_STATUS_MAX + 1] = {0}, all = 0;
	if (!svc || th_service_count(svc, counts)) {
		snprintf(why, len, "could not count the jobs");
		return -1;
	}
	for (int s = 0; s <= TH_JOB_STATUS_MAX; s++)
		all += counts[s];
	if (counts[TH_JOB_COMPLETED] != n || all != n) {
		snprintf(why, len, "%llu jobs, %llu completed, %zu expected",
			 (unsigned long long)all, (unsigned long long)counts[TH_JOB_COMPLETED], n);
		return -1;
	}
	return 0;
}

static int th_check(bp_run *r, size_t n, char *why, size_t len)
{
	th_service *svc = front(r) ? host_service(r) : open_service(r, true, true);
	int rc = bp_taskhost_check(svc, n, why, len);
	if (!front(r))
		th_service_close(svc);
	return rc;
}

/* ---- the host ---- */

static int host_start(bp_run *r, unsigned consumers)
{
	th_service *svc = front(r) ? host_service(r) : open_service(r, false, r->relaxed);
	if (!svc)
		return -1;
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	a.max_threads = consumers;
	int rc = th_service_set_processor(svc, "multi", &a);
	if (rc && !front(r))
		th_service_close(svc);
	if (rc)
		return -1;
	if (!front(r))
		r->state = svc;
	return 0;
}

static int host_go(bp_run *r)
{
	return th_service_start_processing(host_service(r)) ? -1 : 0;
}

/* A start reported from another process may come after its job finished: then, with
 * nothing left to run, look again soon rather than at the next finish. */
int bp_taskhost_wait(th_service *svc, size_t n, double timeout)
{
	double deadline = bu_now_s() + timeout;
	for (;;) {
		uint32_t seq = th_service_finished_seq(svc);
		uint64_t queued, processing;
		bool idle = th_service_pending(svc, &queued, &processing) == 0 && !queued &&
			    !processing;
		if (bp_started_count() >= n && idle)
			return 0;
		if (bu_now_s() > deadline)
			return -1;
		th_service_wait_finished(svc, seq, idle ? 1000 : 100000);
	}
}

static int host_wait(bp_run *r, size_t n, double timeout)
{
	return bp_taskhost_wait(host_service(r), n, timeout);
}

static void host_stop(bp_run *r)
{
	if (front(r)) {
		th_service_stop_processing(host_service(r));
		return;
	}
	th_service_close(r->state);
	r->state = NULL;
}

static const bp_host host = {host_start, host_go, host_wait, host_stop};

const bp_system bp_taskhost = {
	.name = "taskhost",
	.wake = "on a futex in the data dir that an add wakes (multi, 4 threads, 1 for the "
		"wake rows)",
	.bytes_of = "the adding process for the C API (LMDB writes from the process that "
		    "commits), the host's for HTTP and the CLI",
	.config = {"`durability = durable`", "`durability = relaxed`"},
	.setup = th_setup,
	.teardown = th_teardown,
	.fill = th_fill,
	.check = th_check,
	.host = &host,
};

/* ---- adding through the C API ---- */

static void *capi_open(bp_run *r)
{
	return open_service(r, true, r->relaxed);
}

static int capi_add(void *conn, const char *payload, size_t len)
{
	uint64_t id;
	int rc = th_service_add(conn, TASK, payload, len, &id);
	if (rc)
		fprintf(stderr, "bench: taskhost: add: %s\n", th_strerror(rc));
	return rc ? -1 : 0;
}

static void capi_close(void *conn)
{
	th_service_close(conn);
}

const bp_adder bp_taskhost_capi = {capi_open, capi_add, capi_close};

/* ---- adding through HTTP over TCP: one th_client (one kept connection) per producer ---- */

static void *http_open(bp_run *r)
{
	th_client *c = NULL;
	/* a host's front door; of several, the one this producer's pid picks */
	if (th_client_open(&c, r->url[(unsigned)getpid() % r->nurls], BP_TASKHOST_TOKEN)) {
		fprintf(stderr, "bench: taskhost: %s\n", th_client_error(c));
		th_client_close(c);
		return NULL;
	}
	return c;
}

static int http_add(void *conn, const char *payload, size_t len)
{
	uint64_t id;
	int rc = th_client_add(conn, TASK, payload, len, NULL, &id, NULL);
	if (rc)
		fprintf(stderr, "bench: taskhost: add over HTTP: %s\n", th_client_error(conn));
	return rc ? -1 : 0;
}

static void http_close(void *conn)
{
	th_client_close(conn);
}

const bp_adder bp_taskhost_http = {http_open, http_add, http_close};

/* ---- adding through the CLI: a `taskhost add peer PAYLOAD` process per job, which finds
 * the host by the socket in the config's data dir, as a shell user's would ---- */

static void *cli_open(bp_run *r)
{
	return ((struct host *)r->state)->ini;
}

static int cli_add(void *conn, const char *payload, size_t len)
{
	char input[BP_PAYLOAD_MAX + 1];
	snprintf(input, sizeof(input), "%.*s", (int)len, payload);
	char *argv[] = {"taskhost", "-c", conn, "add", TASK, input, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawn(&pid, bu_env("BENCH_TASKHOST"), &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench: taskhost: taskhost add failed\n");
		return -1;
	}
	return 0;
}

static void cli_close(void *conn)
{
	(void)conn;
}

const bp_adder bp_taskhost_cli = {cli_open, cli_add, cli_close};
