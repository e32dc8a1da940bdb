/* taskhost in the peers benchmark: adds through the C API (th_service_add), one process per
 * producer; consumers are a host in the harness's process, the multi strategy. */
#include <stdio.h>
#include <stdlib.h>

#include "benchutil.h"
#include "peers.h"
#include "service.h"
#include "store/store.h"
#include "taskhost.h"

#define TASK "peer"
#define FILL_BATCH 10000

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

static int th_setup(bp_run *r)
{
	r->dir = bu_fresh_dir();
	return 0;
}

static void th_teardown(bp_run *r)
{
	if (r->state)
		th_service_close(r->state);
	r->state = NULL;
	if (r->dir)
		bu_rm_dir(r->dir);
	free(r->dir);
	r->dir = NULL;
}

/* The fill is not measured: one relaxed commit per batch. */
static int th_fill(bp_run *r, size_t k)
{
	th_service *svc = open_service(r, true, true);
	if (!svc)
		return -1;
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
	th_service_close(svc);
	return rc ? -1 : 0;
}

static int th_check(bp_run *r, size_t n, char *why, size_t len)
{
	th_service *svc = open_service(r, true, true);
	uint64_t counts[TH_JOB_STATUS_MAX + 1] = {0}, all = 0;
	if (!svc || th_service_count(svc, counts)) {
		snprintf(why, len, "could not count the jobs");
		th_service_close(svc);
		return -1;
	}
	th_service_close(svc);
	for (int s = 0; s <= TH_JOB_STATUS_MAX; s++)
		all += counts[s];
	if (counts[TH_JOB_COMPLETED] != n || all != n) {
		snprintf(why, len, "%llu jobs, %llu completed, %zu expected",
			 (unsigned long long)all, (unsigned long long)counts[TH_JOB_COMPLETED], n);
		return -1;
	}
	return 0;
}

/* ---- the host ---- */

static int host_start(bp_run *r, unsigned consumers)
{
	th_service *svc = open_service(r, false, r->relaxed);
	if (!svc)
		return -1;
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	a.max_threads = consumers;
	int rc = th_service_set_processor(svc, "multi", &a);
	if (rc) {
		th_service_close(svc);
		return -1;
	}
	r->state = svc;
	return 0;
}

static int host_go(bp_run *r)
{
	return th_service_start_processing(r->state) ? -1 : 0;
}

static int host_wait(bp_run *r, size_t n, double timeout)
{
	th_service *svc = r->state;
	double deadline = bu_now_s() + timeout;
	for (;;) {
		uint32_t seq = th_service_finished_seq(svc);
		uint64_t queued, processing;
		if (bp_started_count() >= n && th_service_pending(svc, &queued, &processing) == 0 &&
		    !queued && !processing)
			return 0;
		if (bu_now_s() > deadline)
			return -1;
		th_service_wait_finished(svc, seq, 100000);
	}
}

static void host_stop(bp_run *r)
{
	th_service_close(r->state);
	r->state = NULL;
}

static const bp_host host = {host_start, host_go, host_wait, host_stop};

const bp_system bp_taskhost = {
	.name = "taskhost",
	.wake = "on a futex in the data dir that an add wakes (multi, 4 threads, 1 for the "
		"wake rows)",
	.bytes_of = "the adding process (LMDB writes from the process that commits)",
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
