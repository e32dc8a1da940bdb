/* The LMDB store: adding, claiming in order, outcomes and fencing, cancel, clean, list,
 * persistence across reopen, a full map, a foreign format, concurrent claimers. */
#include <check.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "local/local_inflight.h"
#include "store/store_lmdb.h"
#include "store/store_pg.h"
#include "testutil.h"

/* a job to add: task, queue, priority, max_attempts, input, input length */
#define NJ(t, q, p, m, in, len)                                                     \
	((th_store_new){.task = (t), .queue = (q), .priority = (p), .max_attempts = (m), \
			.input = (in), .input_len = (len)})

static char *dir;
static th_store *st;
static th_owner owner = {.instance = 0x1111, .pid = 1};

static void setup(void)
{
	dir = tu_tmpdir();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
}

static void teardown(void)
{
	th_store_close(st);
	st = NULL;
	tu_rmtree(dir);
	free(dir);
}

static uint64_t add1(const char *task, const char *input)
{
	th_store_new n = NJ(task, NULL, 0, 0, input, input ? strlen(input) : 0);
	uint64_t id = 0;
	ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), 0);
	return id;
}

/* Claims up to max jobs as `who` with a lease of lease_us; returns how many. */
static size_t claim_as(const th_owner *who, size_t max, uint64_t *ids, int64_t lease_us)
{
	th_claim c[64];
	th_cycle cy = {.owner = who, .max = max, .lease_us = lease_us, .claims = c};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	for (size_t i = 0; i < cy.nclaimed; i++) {
		if (ids)
			ids[i] = c[i].job.id;
		th_claim_clear(&c[i]);
	}
	return cy.nclaimed;
}

static size_t claim(size_t max, uint64_t *ids)
{
	return claim_as(&owner, max, ids, 60000000);
}

/* Records outcomes; returns how many were refused as stale. */
static size_t record(const th_outcome *o, size_t n)
{
	th_cycle cy = {.outs = o, .nout = n, .owner = &owner};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	return cy.stale;
}

static void finish(uint64_t id, uint64_t gen, th_job_status status, const char *result,
		   const char *error)
{
	th_outcome o = {.id = id, .gen = gen, .status = status, .result = result,
			.result_len = result ? strlen(result) : 0, .error = error};
	ck_assert_uint_eq(record(&o, 1), 0);
}

static th_job_status status_of(uint64_t id)
{
	th_job j;
	ck_assert_int_eq(th_store_get(st, id, &j), 0);
	return j.status;
}

START_TEST(add_and_get)
{
	const char bin[] = {'a', 0, 'b', 0, (char)0xff};
	th_store_new n[3] = {NJ("echo", NULL, 0, 0, bin, sizeof(bin)), NJ("echo", NULL, 0, 0, NULL, 0),
			     NJ("sleep", "q1", 5, 0, "x", 1)};
	uint64_t ids[3];
	ck_assert_int_eq(th_store_add(st, n, 3, ids, NULL), 0);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 2);
	ck_assert_uint_eq(ids[2], 3);
	th_job j;
	ck_assert_int_eq(th_store_get(st, 3, &j), 0);
	ck_assert_str_eq(j.task, "sleep");
	ck_assert_str_eq(j.queue, "q1");
	ck_assert_int_eq(j.priority, 5);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 0);
	ck_assert(j.added_us > 0 && j.started_us == 0 && j.finished_us == 0);

	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, 1, TH_BLOB_INPUT, &data, &len), 0);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(data, bin, sizeof(bin));
	free(data);
	ck_assert_int_eq(th_store_blob(st, 2, TH_BLOB_INPUT, &data, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_str_eq(data, "");
	free(data);
	ck_assert_int_eq(th_store_blob(st, 2, TH_BLOB_RESULT, &data, &len), 0);
	ck_assert_uint_eq(len, 0);
	free(data);
}
END_TEST

START_TEST(unknown_ids)
{
	th_job j;
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_get(st, 1, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_blob(st, 77, TH_BLOB_RESULT, &data, &len), TH_ENOTFOUND);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(th_store_cancel(st, 5), TH_ENOTFOUND);
}
END_TEST

START_TEST(bad_names_refused)
{
	char long_name[TH_TASK_NAME_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	uint64_t id;
	th_store_new n = NJ(long_name, NULL, 0, 0, NULL, 0);
	ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), TH_EINVAL);
	n.task = "";
	ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), TH_EINVAL);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 0);
}
END_TEST

static void assert_pending(uint64_t queued, uint64_t processing)
{
	uint64_t q, p, c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_pending(st, &q, &p), 0);
	ck_assert_uint_eq(q, queued);
	ck_assert_uint_eq(p, processing);
	ck_assert_int_eq(th_store_count(st, c), 0); /* the same as counting every job */
	ck_assert_uint_eq(c[TH_JOB_QUEUED], queued);
	ck_assert_uint_eq(c[TH_JOB_PROCESSING], processing);
}

/* Queued and processing from the index sizes: paused queues count, delayed jobs and
 * finished ones do not. */
START_TEST(pending_counts_from_the_indexes)
{
	assert_pending(0, 0);
	uint64_t a = add1("echo", NULL);
	add1("echo", NULL);
	th_store_new later = NJ("echo", NULL, 0, 0, NULL, 0), other = NJ("echo", "q2", 0, 0, NULL, 0);
	later.due_us = th_clock_now_us() + 3600000000;
	uint64_t ids[2];
	ck_assert_int_eq(th_store_add(st, &later, 1, ids, NULL), 0);
	ck_assert_int_eq(th_store_add(st, &other, 1, ids + 1, NULL), 0);
	ck_assert_int_eq(th_store_pause_queue(st, "q2", true), 0);
	assert_pending(3, 0);
	ck_assert_uint_eq(claim(1, ids), 1);
	ck_assert_uint_eq(ids[0], a);
	assert_pending(2, 1);
	finish(a, 1, TH_JOB_COMPLETED, "r", NULL);
	assert_pending(2, 0);
}
END_TEST

START_TEST(claims_in_order_and_by_priority)
{
	for (int i = 0; i < 5; i++)
		add1("echo", NULL);
	th_store_new urgent = NJ("echo", NULL, 10, 0, NULL, 0);
	uint64_t uid;
	ck_assert_int_eq(th_store_add(st, &urgent, 1, &uid, NULL), 0);
	th_store_new other_q = NJ("echo", "other", 99, 0, NULL, 0);
	uint64_t oid;
	ck_assert_int_eq(th_store_add(st, &other_q, 1, &oid, NULL), 0);

	uint64_t ids[8];
	ck_assert_uint_eq(claim(3, ids), 3);
	ck_assert_uint_eq(ids[0], uid); /* higher priority first */
	ck_assert_uint_eq(ids[1], 1);   /* then the order added */
	ck_assert_uint_eq(ids[2], 2);
	ck_assert_uint_eq(claim(8, ids), 3); /* the other queue's job is not ours */
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(ids[2], 5);
	ck_assert_uint_eq(claim(8, ids), 0);
	bool waiting;
	int64_t next_due;
	ck_assert_int_eq(th_store_peek(st, NULL, &waiting, &next_due), 0);
	ck_assert(!waiting);
	ck_assert_int_eq(th_store_peek(st, "other", &waiting, &next_due), 0);
	ck_assert(waiting);
	ck_assert_int_eq(next_due, 0);
	ck_assert_int_eq(status_of(oid), TH_JOB_QUEUED);
}
END_TEST

START_TEST(claim_records_owner_and_input)
{
	uint64_t id = add1("echo", "hello");
	th_claim c;
	th_cycle cy = {.owner = &owner, .max = 4, .lease_us = 1000000, .claims = &c};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	ck_assert_uint_eq(cy.nclaimed, 1);
	ck_assert_uint_eq(c.job.id, id);
	ck_assert_int_eq(c.job.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(c.input_len, 5);
	ck_assert_mem_eq(c.input, "hello", 5);
	th_claim_clear(&c);
	th_job j;
	ck_assert_int_eq(th_store_get(st, id, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.owner, owner.instance);
	ck_assert_uint_eq(j.owner_pid, owner.pid);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_uint_eq(j.claim_gen, 1);
	ck_assert(j.started_us >= j.added_us);
}
END_TEST

START_TEST(outcomes_recorded)
{
	uint64_t a = add1("echo", "x"), b = add1("fail", "y");
	ck_assert_uint_eq(claim(2, NULL), 2);
	finish(a, 1, TH_JOB_COMPLETED, "result bytes", NULL);
	finish(b, 1, TH_JOB_ERROR, NULL, "it broke");
	th_job j;
	ck_assert_int_eq(th_store_get(st, a, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_COMPLETED);
	ck_assert_uint_eq(j.result_len, 12);
	ck_assert_uint_eq(j.owner, 0);
	ck_assert(j.finished_us >= j.started_us);
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, a, TH_BLOB_RESULT, &data, &len), 0);
	ck_assert_str_eq(data, "result bytes");
	free(data);
	ck_assert_int_eq(th_store_blob(st, b, TH_BLOB_ERROR, &data, &len), 0);
	ck_assert_str_eq(data, "it broke");
	free(data);
	ck_assert_int_eq(status_of(b), TH_JOB_ERROR);
}
END_TEST

START_TEST(stale_outcome_refused)
{
	uint64_t id = add1("echo", NULL);
	ck_assert_uint_eq(claim(1, NULL), 1);
	/* an outcome for another claim generation must not overwrite this claim */
	th_outcome o = {.id = id, .gen = 7, .status = TH_JOB_COMPLETED};
	ck_assert_uint_eq(record(&o, 1), 1);
	ck_assert_int_eq(status_of(id), TH_JOB_PROCESSING);
	/* nor one from another owner with the right generation */
	th_owner other = {.instance = 0x2222, .pid = 1};
	o.gen = 1;
	th_cycle cy = {.outs = &o, .nout = 1, .owner = &other};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	ck_assert_uint_eq(cy.stale, 1);
	ck_assert_int_eq(status_of(id), TH_JOB_PROCESSING);
	finish(id, 1, TH_JOB_COMPLETED, NULL, NULL);
	/* and a second outcome for a finished job is refused too */
	o.status = TH_JOB_ERROR;
	ck_assert_uint_eq(record(&o, 1), 1);
	ck_assert_int_eq(status_of(id), TH_JOB_COMPLETED);
}
END_TEST

START_TEST(release_puts_back_in_place)
{
	uint64_t a = add1("echo", NULL);
	add1("echo", NULL);
	uint64_t ids[2];
	ck_assert_uint_eq(claim(1, ids), 1);
	ck_assert_uint_eq(ids[0], a);
	th_outcome o = {.id = a, .gen = 1, .status = TH_JOB_QUEUED, .not_started = true};
	ck_assert_uint_eq(record(&o, 1), 0);
	th_job j;
	ck_assert_int_eq(th_store_get(st, a, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 0);
	ck_assert_uint_eq(claim(1, ids), 1);
	ck_assert_uint_eq(ids[0], a); /* still first in line */
}
END_TEST

START_TEST(cancel_rules)
{
	uint64_t a = add1("echo", NULL), b = add1("echo", NULL), c = add1("echo", NULL);
	ck_assert_int_eq(th_store_cancel(st, b), 0);
	ck_assert_int_eq(status_of(b), TH_JOB_CANCELLED);
	ck_assert_int_eq(th_store_cancel(st, b), TH_ESTATE);
	uint64_t ids[4];
	ck_assert_uint_eq(claim(4, ids), 2); /* the cancelled job is never claimed */
	ck_assert_uint_eq(ids[0], a);
	ck_assert_uint_eq(ids[1], c);
	/* running: asked to stop, and however its run ends, it ends cancelled */
	ck_assert_int_eq(th_store_cancel(st, a), TH_EBUSY);
	ck_assert_int_eq(status_of(a), TH_JOB_PROCESSING);
	bool asked = false;
	ck_assert_int_eq(th_store_cancel_requested(st, &a, 1, &asked), 0);
	ck_assert(asked);
	finish(a, 1, TH_JOB_COMPLETED, NULL, NULL);
	ck_assert_int_eq(status_of(a), TH_JOB_CANCELLED);
	ck_assert_int_eq(th_store_cancel(st, a), TH_ESTATE); /* finished */
}
END_TEST

static int collect(const th_job *job, void *ud)
{
	uint64_t *v = ud;
	v[++v[0]] = job->id;
	return v[0] == 63;
}

START_TEST(list_filters_and_orders)
{
	for (int i = 0; i < 6; i++)
		add1("echo", NULL);
	ck_assert_int_eq(th_store_cancel(st, 2), 0);
	ck_assert_int_eq(th_store_cancel(st, 5), 0);
	uint64_t v[64] = {0};
	ck_assert_int_eq(th_store_list(st, 1u << TH_JOB_CANCELLED, 0, false, collect, v), 0);
	ck_assert_uint_eq(v[0], 2);
	ck_assert_uint_eq(v[1], 2);
	ck_assert_uint_eq(v[2], 5);
	memset(v, 0, sizeof(v));
	ck_assert_int_eq(th_store_list(st, ~0u, 0, true, collect, v), 0);
	ck_assert_uint_eq(v[0], 6);
	ck_assert_uint_eq(v[1], 6);
	ck_assert_uint_eq(v[6], 1);
	memset(v, 0, sizeof(v));
	ck_assert_int_eq(th_store_list(st, 1u << TH_JOB_QUEUED, 3, false, collect, v), 0);
	ck_assert_uint_eq(v[0], 2); /* 4 and 6, after 3 */
	ck_assert_uint_eq(v[1], 4);
	ck_assert_uint_eq(v[2], 6);
	memset(v, 0, sizeof(v));
	ck_assert_int_eq(th_store_list(st, ~0u, 4, true, collect, v), 0);
	ck_assert_uint_eq(v[0], 3); /* 3, 2, 1: before 4 */
	ck_assert_uint_eq(v[1], 3);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 4);
	ck_assert_uint_eq(c[TH_JOB_CANCELLED], 2);
}
END_TEST

START_TEST(clean_keeps_unfinished)
{
	uint64_t done = add1("echo", "in"), failed = add1("fail", NULL),
		 running = add1("echo", NULL), cancelled = add1("echo", NULL),
		 queued = add1("echo", NULL);
	ck_assert_int_eq(th_store_cancel(st, cancelled), 0);
	ck_assert_uint_eq(claim(3, NULL), 3);
	finish(done, 1, TH_JOB_COMPLETED, "out", NULL);
	finish(failed, 1, TH_JOB_ERROR, NULL, "bad");
	uint64_t removed;
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, 3);
	th_job j;
	ck_assert_int_eq(th_store_get(st, done, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_get(st, failed, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_get(st, cancelled, &j), TH_ENOTFOUND);
	ck_assert_int_eq(status_of(running), TH_JOB_PROCESSING);
	ck_assert_int_eq(status_of(queued), TH_JOB_QUEUED);
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, done, TH_BLOB_RESULT, &data, &len), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, 0);
}
END_TEST

START_TEST(clean_long_history)
{
	/* more finished jobs than one clean transaction takes, around unfinished ones;
	 * relaxed: 25,000 cancels, each its own commit, are not about durability */
	enum { N = 25000 };
	th_store_close(st);
	th_store_opts o = {.durability = TH_RELAXED};
	ck_assert_int_eq(th_store_open(&st, dir, &o), 0);
	th_store_new *n = calloc(N, sizeof(*n));
	uint64_t *ids = calloc(N, sizeof(*ids));
	for (int i = 0; i < N; i++)
		n[i] = NJ("echo", NULL, 0, 0, "i", 1);
	ck_assert_int_eq(th_store_add(st, n, N, ids, NULL), 0);
	for (int i = 0; i < N; i++)
		if (i % 1000 != 0)
			ck_assert_int_eq(th_store_cancel(st, ids[i]), 0);
	uint64_t removed;
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, N - N / 1000);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], N / 1000);
	ck_assert_uint_eq(c[TH_JOB_CANCELLED], 0);
	free(n);
	free(ids);
}
END_TEST

START_TEST(survives_reopen)
{
	uint64_t a = add1("echo", "kept"), b = add1("echo", NULL);
	add1("echo", NULL);
	ck_assert_uint_eq(claim(2, NULL), 2);
	finish(a, 1, TH_JOB_COMPLETED, "answer", NULL);
	th_store_close(st);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert_int_eq(status_of(a), TH_JOB_COMPLETED);
	ck_assert_int_eq(status_of(b), TH_JOB_PROCESSING);
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, a, TH_BLOB_RESULT, &data, &len), 0);
	ck_assert_str_eq(data, "answer");
	free(data);
	ck_assert_int_eq(th_store_blob(st, a, TH_BLOB_INPUT, &data, &len), 0);
	ck_assert_str_eq(data, "kept");
	free(data);
	uint64_t ids[2];
	ck_assert_uint_eq(claim(2, ids), 1);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert_uint_eq(add1("echo", NULL), 4); /* ids go on increasing */
}
END_TEST

START_TEST(map_full_keeps_committed_jobs)
{
	th_store_close(st);
	th_lmdb_opts lo = {.map_size = 1 << 20, .max_map_size = 1 << 20};
	th_store_opts o = {.lmdb = &lo};
	ck_assert_int_eq(th_store_open(&st, dir, &o), 0);
	char input[4000];
	memset(input, 'z', sizeof(input));
	uint64_t last = 0;
	int rc = 0;
	for (int i = 0; i < 10000 && rc == 0; i++) {
		th_store_new n = NJ("echo", NULL, 0, 0, input, sizeof(input));
		uint64_t id;
		if ((rc = th_store_add(st, &n, 1, &id, NULL)) == 0)
			last = id;
	}
	ck_assert_int_eq(rc, TH_EFULL);
	ck_assert_uint_gt(last, 10);
	ck_assert_int_eq(status_of(last), TH_JOB_QUEUED);
	/* the failed add left nothing behind, and the next id is still free */
	th_job j;
	ck_assert_int_eq(th_store_get(st, last + 1, &j), TH_ENOTFOUND);
	th_store_close(st);
	ck_assert_int_eq(th_store_open(&st, dir, &o), 0);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], last);
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, last, TH_BLOB_INPUT, &data, &len), 0);
	ck_assert_uint_eq(len, sizeof(input));
	free(data);
}
END_TEST

/* At max_map_size: adds are refused, but the jobs there are still end, their outcomes
 * recorded (cut, or without their bytes), and clean makes room again. */
START_TEST(map_full_still_records_outcomes)
{
	th_store_close(st);
	th_lmdb_opts lo = {.map_size = 1 << 20, .max_map_size = 1 << 20};
	th_store_opts o = {.lmdb = &lo};
	ck_assert_int_eq(th_store_open(&st, dir, &o), 0);
	enum { BIG = 3 << 20 };
	char *huge = malloc(BIG + 1);
	memset(huge, 'e', BIG);
	huge[BIG] = 0;
	/* with room left: an error message is cut to 64 KiB, saying how much went */
	uint64_t first = add1("echo", NULL), ids[64];
	ck_assert_uint_eq(claim(1, ids), 1);
	finish(first, 1, TH_JOB_ERROR, NULL, huge);
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, first, TH_BLOB_ERROR, &data, &len), 0);
	char tail[64];
	snprintf(tail, sizeof(tail), "e... (%d bytes cut)", BIG - (64 << 10));
	ck_assert_uint_eq(len, (64 << 10) + strlen(tail) - 1);
	ck_assert_str_eq((char *)data + len - strlen(tail), tail);
	free(data);
	/* fill the map with adds until they are refused */
	char input[4000];
	memset(input, 'z', sizeof(input));
	int rc = 0;
	size_t added = 0;
	while (rc == 0 && added < 10000) {
		th_store_new n = NJ("echo", NULL, 0, 0, input, sizeof(input));
		uint64_t id;
		if ((rc = th_store_add(st, &n, 1, &id, NULL)) == 0)
			added++;
	}
	ck_assert_int_eq(rc, TH_EFULL);
	ck_assert_uint_gt(added, 50);
	/* every one is claimed and ends: half fail with a huge error, half complete with a
	 * large result, and none stays processing */
	tu_capture_start();
	size_t n, ended = 0;
	while ((n = claim(16, ids)) > 0) {
		th_outcome outs[16];
		for (size_t i = 0; i < n; i++)
			outs[i] = (th_outcome){.id = ids[i], .gen = 1,
					       .status = ids[i] % 2 ? TH_JOB_ERROR : TH_JOB_COMPLETED,
					       .error = ids[i] % 2 ? huge : NULL,
					       .result = huge, .result_len = ids[i] % 2 ? 0 : 200000};
		ck_assert_uint_eq(record(outs, n), 0);
		ended += n;
	}
	ck_assert_uint_eq(ended, added);
	ck_assert(tu_captured_has("store", "did not fit in the database: recorded without it",
				  NULL));
	tu_capture_stop();
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_PROCESSING], 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED] + c[TH_JOB_ERROR], added + 1);
	uint64_t last = first + added;
	ck_assert_int_eq(th_store_blob(st, last - (last % 2 ? 0 : 1), TH_BLOB_ERROR, &data,
				       &len), 0);
	ck_assert_str_eq(data, "error message of 3145728 bytes did not fit in the database");
	free(data);
	/* still full: adds refused */
	th_store_new one = NJ("echo", NULL, 0, 0, input, sizeof(input));
	uint64_t id;
	ck_assert_int_eq(th_store_add(st, &one, 1, &id, NULL), TH_EFULL);
	/* clean makes room, and adds work again */
	uint64_t removed;
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, added + 1);
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(th_store_add(st, &one, 1, &id, NULL), 0);
	free(huge);
}
END_TEST

START_TEST(map_grows_up_to_limit)
{
	th_store_close(st);
	th_lmdb_opts lo = {.map_size = 1 << 20, .max_map_size = 16 << 20};
	th_store_opts o = {.lmdb = &lo};
	ck_assert_int_eq(th_store_open(&st, dir, &o), 0);
	char input[4000];
	memset(input, 'g', sizeof(input));
	for (int i = 0; i < 1000; i++) { /* about 4 MiB */
		th_store_new n = NJ("echo", NULL, 0, 0, input, sizeof(input));
		uint64_t id;
		ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), 0);
	}
	uint64_t map, used;
	ck_assert_int_eq(th_store_usage(st, &map, &used), 0);
	ck_assert_uint_gt(map, 1 << 20);
	ck_assert_uint_le(map, 16 << 20);
	ck_assert_uint_le(used, map);
}
END_TEST

/* The store closed, and a write transaction of its LMDB environment opened by hand. */
static void raw_write(MDB_env **env, MDB_txn **txn)
{
	th_store_close(st);
	st = NULL;
	ck_assert_int_eq(mdb_env_create(env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(*env, 12), 0);
	ck_assert_int_eq(mdb_env_open(*env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

START_TEST(foreign_format_refused)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_write(&env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint8_t v[4] = {0, 0, 0, 99};
	MDB_val key = {6, "format"}, val = {4, v};
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), TH_EFORMAT);
	ck_assert_ptr_null(st);
	ck_assert(tu_captured_has("store", "format version 99", "this taskhost reads version 5"));
	tu_capture_stop();
}
END_TEST

START_TEST(ids_continue_from_the_older_layout)
{
	/* stores written before next_id moved to the main database kept it in meta */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_write(&env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
	uint8_t v[8] = {0, 0, 0, 0, 0, 0, 0x01, 0xf4};
	MDB_val key = {7, "next_id"}, val = {8, v};
	ck_assert_int_eq(mdb_put(txn, dbi, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert_uint_eq(add1("a", NULL), 500);
	ck_assert_uint_eq(add1("b", NULL), 501);
	th_store_close(st);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert_uint_eq(add1("c", NULL), 502);
}
END_TEST

START_TEST(not_a_database_refused)
{
	th_store_close(st);
	st = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 20000; i++)
		fputs("not lmdb ", f);
	fclose(f);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), TH_EFORMAT);
	ck_assert(tu_captured_has("store", "cannot open", NULL));
	tu_capture_stop();
}
END_TEST

START_TEST(missing_dir_refused)
{
	th_store *other = NULL;
	char path[4096];
	snprintf(path, sizeof(path), "%s/does/not/exist", dir);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&other, path, NULL), TH_ESYS);
	ck_assert_ptr_null(other);
	ck_assert(tu_captured_has("store", "cannot open", "does/not/exist"));
	tu_capture_stop();
}
END_TEST

/* The registry: a store URL names its backend; a plain directory is LMDB's. */
START_TEST(store_urls)
{
	const char *where;
	ck_assert_ptr_eq(th_store_backend("lmdb:/var/x", &where), &th_store_lmdb);
	ck_assert_str_eq(where, "/var/x");
	ck_assert_ptr_eq(th_store_backend("./var", &where), &th_store_lmdb);
	ck_assert_str_eq(where, "./var");
	ck_assert_ptr_eq(th_store_backend("a:b", &where), &th_store_lmdb); /* a directory */
	ck_assert_str_eq(where, "a:b");
	ck_assert_ptr_eq(th_store_backend("postgresql://db/jobs", &where), &th_store_pg);
	ck_assert_str_eq(where, "//db/jobs");
	ck_assert_ptr_null(th_store_backend("mysql://db/jobs", &where));
	th_store *other = NULL;
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&other, "mysql://db/jobs", NULL), TH_EINVAL);
	ck_assert_ptr_null(other);
	ck_assert(tu_captured_has("store", "mysql://db/jobs", "no store backend"));
	tu_capture_stop();
	/* lmdb:DIR opens the same store as DIR */
	char url[4200];
	snprintf(url, sizeof(url), "lmdb:%s", dir);
	uint64_t id = add1("echo", "x");
	ck_assert_int_eq(th_store_open(&other, url, NULL), 0);
	th_job j;
	ck_assert_int_eq(th_store_get(other, id, &j), 0);
	ck_assert_str_eq(j.task, "echo");
	th_store_close(other);
}
END_TEST

/* ---- leases, recovery, failed commits ---- */

/* An owner whose process is gone: a child that has exited and been reaped. */
static th_owner dead_owner(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	th_owner me;
	th_owner_self(&me);
	return (th_owner){.instance = 0xdead, .pid = (uint32_t)pid, .pidns = me.pidns};
}

/* An owner on another machine is never judged by our pids or boot: only by its lease. */
START_TEST(owner_on_another_machine)
{
	static const uint8_t zero[16];
	th_owner me;
	th_owner_self(&me);
	th_owner gone = dead_owner();
	memcpy(gone.boot_id, me.boot_id, 16);
	ck_assert_int_eq(th_owner_alive(&gone), TH_OWNER_DEAD); /* no machine id: ours */
	if (memcmp(me.machine_id, zero, 16) == 0)
		return; /* this machine has no machine id: nothing more to tell apart */
	memcpy(gone.machine_id, me.machine_id, 16);
	ck_assert_int_eq(th_owner_alive(&gone), TH_OWNER_DEAD);
	gone.machine_id[0] ^= 0xff; /* the same pid and namespace, elsewhere */
	ck_assert_int_eq(th_owner_alive(&gone), TH_OWNER_UNKNOWN);
	th_owner rebooted_elsewhere = me;
	rebooted_elsewhere.machine_id[5] ^= 1;
	rebooted_elsewhere.boot_id[3] ^= 0xff;
	ck_assert_int_eq(th_owner_alive(&rebooted_elsewhere), TH_OWNER_UNKNOWN);
	/* recovery leaves its claim alone while the lease runs */
	uint64_t id = add1("echo", NULL);
	uint64_t ids[1];
	ck_assert_uint_eq(claim_as(&gone, 1, ids, 60000000), 1);
	size_t n = 99;
	ck_assert_int_eq(th_store_recover(st, &owner, tu_owner_alive, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(status_of(id), TH_JOB_PROCESSING);
}
END_TEST

START_TEST(owner_liveness)
{
	th_owner me;
	th_owner_self(&me);
	ck_assert_uint_ne(me.instance, 0);
	ck_assert_uint_eq(me.pid, (uint32_t)getpid());
	ck_assert_int_eq(th_owner_alive(&me), TH_OWNER_ALIVE);
	th_owner gone = dead_owner();
	ck_assert_int_eq(th_owner_alive(&gone), TH_OWNER_DEAD);
	th_owner reused = me; /* our pid, but a process started at another time */
	reused.start_ticks++;
	ck_assert_int_eq(th_owner_alive(&reused), TH_OWNER_DEAD);
	th_owner rebooted = me;
	rebooted.boot_id[3] ^= 0xff;
	ck_assert_int_eq(th_owner_alive(&rebooted), TH_OWNER_DEAD);
	th_owner contained = me;
	contained.pidns ^= 1;
	ck_assert_int_eq(th_owner_alive(&contained), TH_OWNER_UNKNOWN);
	/* a killed process nobody reaped yet is dead too */
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	th_owner zombie = {.instance = 5, .pid = (uint32_t)z};
	siginfo_t si;
	waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT); /* exited, still unreaped */
	zombie.pidns = me.pidns;
	ck_assert_int_eq(th_owner_alive(&zombie), TH_OWNER_DEAD);
	waitpid(z, NULL, 0);
}
END_TEST

static int count_started(void *ud, const uint64_t *pairs, size_t n)
{
	size_t done = 0;
	int rc = th_store_recover_started(st, pairs, n, &done);
	*(size_t *)ud += done;
	return rc;
}

static size_t inflight_files(void)
{
	return tu_count_files(dir, "inflight-");
}

/* A host killed while jobs it had started were still being claimed: their claim never
 * committed, but the file it left says they started, and the next host counts the
 * attempt, so a job that kills its host every time still runs out of attempts. */
START_TEST(counts_attempts_of_jobs_a_dead_host_started)
{
	th_store_new n[3] = {NJ("echo", NULL, 0, 2, "a", 1), NJ("echo", NULL, 0, 1, "b", 1),
			     NJ("echo", NULL, 5, 3, "c", 1)};
	uint64_t ids[3];
	ck_assert_int_eq(th_store_add(st, n, 3, ids, NULL), 0);
	/* the third job's claim did commit (as generation 1) before the host died */
	th_owner me;
	th_owner_self(&me);
	uint64_t got;
	ck_assert_uint_eq(claim_as(&me, 1, &got, 60000000), 1);
	ck_assert_uint_eq(got, ids[2]);
	pid_t pid = fork();
	if (pid == 0) { /* the host: notes three starts under generation 1, dies */
		th_owner self;
		th_owner_self(&self);
		th_inflight *f;
		if (th_inflight_open(&f, dir, &self, 8))
			_exit(1);
		for (int i = 0; i < 3; i++)
			th_inflight_add(f, ids[i], 1);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(inflight_files(), 1);
	/* a living owner's file, and our own, are left alone */
	th_owner other = me;
	other.instance ^= 0x77;
	th_inflight *mine, *theirs;
	ck_assert_int_eq(th_inflight_open(&mine, dir, &me, 4), 0);
	ck_assert_int_eq(th_inflight_open(&theirs, dir, &other, 4), 0);
	th_inflight_add(mine, ids[0], 1);
	th_inflight_add(theirs, ids[1], 1);
	ck_assert_uint_eq(inflight_files(), 3);

	tu_capture_start();
	size_t done = 0;
	ck_assert_int_eq(th_inflight_collect(dir, &me, count_started, &done), 0);
	ck_assert_uint_eq(done, 2);
	ck_assert_uint_eq(inflight_files(), 2); /* the dead host's is gone */
	th_job j;
	ck_assert_int_eq(th_store_get(st, ids[0], &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert(tu_captured_has("store", "host died while starting it (attempt 1 of 2): queued "
				  "again", NULL));
	ck_assert_int_eq(status_of(ids[1]), TH_JOB_ERROR);
	void *msg;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, ids[1], TH_BLOB_ERROR, &msg, &len), 0);
	ck_assert_str_eq(msg, "host died while starting it, attempts exhausted (1 of 1)");
	free(msg);
	ck_assert_int_eq(th_store_get(st, ids[2], &j), 0); /* its claim is on disk: as it was */
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.attempts, 1);
	/* counted once, however often the pairs come */
	uint64_t pairs[2] = {ids[0], 1};
	ck_assert_int_eq(th_store_recover_started(st, pairs, 1, &done), 0);
	ck_assert_uint_eq(done, 0);
	ck_assert_int_eq(th_store_get(st, ids[0], &j), 0);
	ck_assert_uint_eq(j.attempts, 1);
	/* and claimed again under a new generation */
	ck_assert_uint_eq(claim_as(&me, 1, &got, 60000000), 1);
	ck_assert_uint_eq(got, ids[0]);
	ck_assert_int_eq(th_store_get(st, ids[0], &j), 0);
	ck_assert_uint_eq(j.claim_gen, 2);
	ck_assert_uint_eq(j.attempts, 2);
	th_inflight_close(mine, false);
	th_inflight_close(theirs, false);
	ck_assert_uint_eq(inflight_files(), 0);
}
END_TEST

/* A file whose host died while creating it has no header: removed once it is old. */
START_TEST(unfinished_inflight_files_removed_when_old)
{
	char old[4096], fresh[4096];
	snprintf(old, sizeof(old), "%s/inflight-old", dir);
	snprintf(fresh, sizeof(fresh), "%s/inflight-fresh", dir);
	static const char zeros[256];
	const char *paths[2] = {old, fresh};
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(paths[i], "w");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_eq(fwrite(zeros, 1, sizeof(zeros), f), sizeof(zeros));
		fclose(f);
	}
	struct timeval then[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};
	ck_assert_int_eq(utimes(old, then), 0);
	th_owner me;
	th_owner_self(&me);
	size_t done = 0;
	ck_assert_int_eq(th_inflight_collect(dir, &me, count_started, &done), 0);
	ck_assert_uint_eq(done, 0);
	ck_assert_int_ne(access(old, F_OK), 0);
	ck_assert_int_eq(access(fresh, F_OK), 0);
}
END_TEST

START_TEST(recovers_jobs_of_dead_owner)
{
	th_store_new n[3] = {NJ("echo", NULL, 0, 2, "a", 1), NJ("echo", NULL, 0, 1, "b", 1),
			     NJ("echo", NULL, 0, 5, "c", 1)};
	uint64_t ids[3];
	ck_assert_int_eq(th_store_add(st, n, 3, ids, NULL), 0);
	th_owner gone = dead_owner();
	ck_assert_uint_eq(claim_as(&gone, 2, NULL, 60000000), 2);
	th_owner me;
	th_owner_self(&me);
	ck_assert_uint_eq(claim_as(&me, 1, NULL, 60000000), 1);
	size_t recovered = 0;
	tu_capture_start();
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &recovered, NULL), 0);
	ck_assert_uint_eq(recovered, 2);
	/* attempts left: queued again, the attempt counted */
	th_job j;
	ck_assert_int_eq(th_store_get(st, ids[0], &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_uint_eq(j.owner, 0);
	ck_assert(tu_captured_has("store", "host died while running (attempt 1 of 2): queued again",
				  NULL));
	/* no attempts left: error, with why */
	ck_assert_int_eq(status_of(ids[1]), TH_JOB_ERROR);
	void *msg;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, ids[1], TH_BLOB_ERROR, &msg, &len), 0);
	ck_assert_str_eq(msg, "host died while running, attempts exhausted (1 of 1)");
	free(msg);
	/* a living owner's job stays with it */
	ck_assert_int_eq(status_of(ids[2]), TH_JOB_PROCESSING);
	/* the dead owner's late outcome is refused */
	th_outcome o = {.id = ids[0], .gen = 1, .status = TH_JOB_COMPLETED};
	th_cycle cy = {.outs = &o, .nout = 1, .owner = &gone};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	ck_assert_uint_eq(cy.stale, 1);
	ck_assert_int_eq(status_of(ids[0]), TH_JOB_QUEUED);
	/* the requeued job is claimed again, with a new generation */
	th_claim c;
	th_cycle again = {.owner = &me, .max = 1, .lease_us = 1000000, .claims = &c};
	ck_assert_int_eq(th_store_cycle(st, &again), 0);
	ck_assert_uint_eq(c.job.id, ids[0]);
	ck_assert_uint_eq(c.job.attempts, 2);
	ck_assert_uint_eq(c.job.claim_gen, 2);
	th_claim_clear(&c);
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &recovered, NULL), 0);
	ck_assert_uint_eq(recovered, 0); /* nothing left to take back */
	tu_capture_stop();
}
END_TEST

START_TEST(cancel_survives_the_death_of_the_host)
{
	uint64_t id = add1("echo", NULL), other = add1("echo", NULL);
	th_owner gone = dead_owner();
	ck_assert_uint_eq(claim_as(&gone, 2, NULL, 60000000), 2);
	ck_assert_int_eq(th_store_cancel(st, id), TH_EBUSY); /* asked while it runs */
	th_owner me;
	th_owner_self(&me);
	size_t recovered = 0;
	tu_capture_start();
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &recovered, NULL), 0);
	ck_assert_uint_eq(recovered, 2);
	ck_assert(tu_captured_has("store", "cancelled while running", NULL));
	tu_capture_stop();
	/* the cancelled one ends so, not queued for another run; the other is queued again */
	th_job j;
	ck_assert_int_eq(th_store_get(st, id, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_CANCELLED);
	ck_assert_uint_eq(j.flags & TH_JOB_CANCEL_REQUESTED, 0);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_int_eq(status_of(other), TH_JOB_QUEUED);
	void *msg;
	size_t len;
	ck_assert_int_eq(th_store_blob(st, id, TH_BLOB_ERROR, &msg, &len), 0);
	ck_assert_str_eq(msg, "cancelled while running (host died while running before its "
			      "task returned)");
	free(msg);
	uint64_t ids[2];
	ck_assert_uint_eq(claim_as(&me, 2, ids, 60000000), 1);
	ck_assert_uint_eq(ids[0], other);
	/* and it can be retried like any cancelled job */
	ck_assert_int_eq(th_store_retry(st, id), 0);
	ck_assert_int_eq(status_of(id), TH_JOB_QUEUED);
}
END_TEST

START_TEST(recovers_expired_leases_and_renews)
{
	uint64_t a = add1("echo", NULL), b = add1("echo", NULL);
	th_owner me, elsewhere;
	th_owner_self(&me);
	/* an owner in another pid namespace: this process cannot see whether it lives, so
	 * its lease decides */
	th_owner_self(&elsewhere);
	elsewhere.pidns ^= 0x5a5a;
	ck_assert_uint_eq(claim_as(&elsewhere, 1, NULL, -1), 1); /* lease already over */
	ck_assert_uint_eq(claim_as(&elsewhere, 1, NULL, 60000000), 1);
	size_t n;
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(status_of(a), TH_JOB_QUEUED);
	ck_assert_int_eq(status_of(b), TH_JOB_PROCESSING);
	/* renewing pushes a lease out: a lapsed lease renewed to a long one survives */
	uint64_t c = add1("echo", NULL);
	ck_assert_uint_eq(claim_as(&elsewhere, 3, NULL, -1), 2); /* a again, and c */
	size_t renewed;
	ck_assert_int_eq(th_store_renew(st, &elsewhere, 60000000, &renewed), 0);
	ck_assert_uint_eq(renewed, 3);
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(status_of(c), TH_JOB_PROCESSING);
}
END_TEST

START_TEST(living_owner_keeps_its_jobs)
{
	/* a host known to be alive keeps its job even when its lease ran out (it may have
	 * been stopped with Ctrl-Z, or its clock jumped): taking it would run it twice */
	uint64_t a = add1("echo", NULL);
	th_owner me, other;
	th_owner_self(&me);
	th_owner_self(&other); /* this very process, another service instance */
	ck_assert_uint_eq(claim_as(&other, 1, NULL, -1), 1);
	size_t n;
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(status_of(a), TH_JOB_PROCESSING);
}
END_TEST

/* Fails the next `left` commits with rc. */
struct failing {
	int left, rc;
};

static int fail_commits(void *ud, const char *what)
{
	struct failing *f = ud;
	(void)what;
	return f->left-- > 0 ? f->rc : 0;
}

START_TEST(failed_commit_changes_nothing)
{
	uint64_t a = add1("echo", "x");
	struct failing f = {1, TH_EIO};
	th_store_set_commit_hook(st, fail_commits, &f);
	th_claim c[2];
	th_cycle cy = {.owner = &owner, .max = 2, .lease_us = 1000000, .claims = c};
	ck_assert_int_eq(th_store_cycle(st, &cy), TH_EIO);
	ck_assert_uint_eq(cy.nclaimed, 0);
	ck_assert_int_eq(status_of(a), TH_JOB_QUEUED);
	ck_assert_uint_eq(claim(2, NULL), 1); /* the hook lets this one through */
	f.left = 1;
	th_outcome o = {.id = a, .gen = 1, .status = TH_JOB_COMPLETED, .result = "r",
			.result_len = 1};
	th_cycle rec = {.outs = &o, .nout = 1, .owner = &owner};
	ck_assert_int_eq(th_store_cycle(st, &rec), TH_EIO);
	ck_assert_int_eq(status_of(a), TH_JOB_PROCESSING); /* still its previous state */
	ck_assert_uint_eq(record(&o, 1), 0);
	ck_assert_int_eq(status_of(a), TH_JOB_COMPLETED);
	f.left = 1;
	uint64_t id;
	th_store_new nj = NJ("echo", NULL, 0, 0, "y", 1);
	ck_assert_int_eq(th_store_add(st, &nj, 1, &id, NULL), TH_EIO);
	th_job j;
	ck_assert_int_eq(th_store_get(st, a + 1, &j), TH_ENOTFOUND);
	th_store_set_commit_hook(st, NULL, NULL);
}
END_TEST

/* The order of events in a cycle with a start callback: "s<id>" for each job started,
 * "c" for the commit (the hook), into a string. */
struct order {
	char log[128];
	int fail; /* commits left to fail */
};

static void note(struct order *o, const char *what)
{
	size_t len = strlen(o->log);
	snprintf(o->log + len, sizeof(o->log) - len, "%s%s", len ? " " : "", what);
}

static void start_noting(void *ud, th_claim *claims, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char s[32];
		snprintf(s, sizeof(s), "s%llu:%.*s", (unsigned long long)claims[i].job.id,
			 (int)claims[i].input_len, (const char *)claims[i].input);
		note(ud, s);
		th_claim_clear(&claims[i]); /* the claims are start's */
	}
}

static int commit_noting(void *ud, const char *what)
{
	struct order *o = ud;
	(void)what;
	note(o, "c");
	return o->fail-- > 0 ? TH_EIO : 0;
}

START_TEST(start_runs_claims_before_they_commit)
{
	uint64_t a = add1("echo", "x"), b = add1("echo", "y"), c3 = add1("echo", "z");
	struct order o = {"", 0};
	th_store_set_commit_hook(st, commit_noting, &o);
	th_claim c[2];
	th_cycle cy = {.owner = &owner, .max = 2, .lease_us = 1000000, .claims = c,
		       .start = start_noting, .start_ud = &o};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	char want[64];
	snprintf(want, sizeof(want), "s%llu:x s%llu:y c", (unsigned long long)a,
		 (unsigned long long)b);
	ck_assert_str_eq(o.log, want);
	ck_assert_uint_eq(cy.nclaimed, 0);
	ck_assert_uint_eq(cy.started, 2);
	ck_assert_int_eq(status_of(a), TH_JOB_PROCESSING);
	ck_assert_int_eq(status_of(b), TH_JOB_PROCESSING);
	ck_assert_int_eq(status_of(c3), TH_JOB_QUEUED);

	/* the commit fails after the job started: it stays queued, until the same claim is
	 * made again */
	o = (struct order){"", 1};
	ck_assert_int_eq(th_store_cycle(st, &cy), TH_EIO);
	snprintf(want, sizeof(want), "s%llu:z c", (unsigned long long)c3);
	ck_assert_str_eq(o.log, want);
	ck_assert_uint_eq(cy.started, 1);
	ck_assert_int_eq(status_of(c3), TH_JOB_QUEUED);
	th_store_set_commit_hook(st, NULL, NULL);
	uint64_t pairs[4] = {c3, 1, a, 1};
	bool lost[2] = {true, false};
	ck_assert_int_eq(th_store_confirm(st, &owner, 1000000, pairs, 2, lost), 0);
	ck_assert(!lost[0]);
	ck_assert(lost[1]); /* a is held under generation 1 already: not this claim's to make */
	th_job j;
	ck_assert_int_eq(th_store_get(st, c3, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.claim_gen, 1);
	ck_assert_uint_eq(j.attempts, 1);
	/* so the run's outcome stands */
	th_outcome out = {.id = c3, .gen = 1, .status = TH_JOB_COMPLETED};
	ck_assert_uint_eq(record(&out, 1), 0);
	ck_assert_int_eq(status_of(c3), TH_JOB_COMPLETED);
	/* made again once only */
	ck_assert_int_eq(th_store_confirm(st, &owner, 1000000, pairs, 1, lost), 0);
	ck_assert(lost[0]);
	ck_assert_int_eq(status_of(c3), TH_JOB_COMPLETED);
}
END_TEST

/* A commit that fails for want of room is retried once the map grew: the jobs started
 * the first time get the same claims again, not new ones. */
START_TEST(started_claims_survive_the_map_growing)
{
	uint64_t a = add1("echo", "x"), b = add1("echo", "y");
	struct order o = {"", 0};
	struct failing f = {1, MDB_MAP_FULL};
	th_store_set_commit_hook(st, fail_commits, &f);
	th_claim c[2];
	th_cycle cy = {.owner = &owner, .max = 2, .lease_us = 1000000, .claims = c,
		       .start = start_noting, .start_ud = &o};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	th_store_set_commit_hook(st, NULL, NULL);
	char want[64];
	snprintf(want, sizeof(want), "s%llu:x s%llu:y", (unsigned long long)a,
		 (unsigned long long)b);
	ck_assert_str_eq(o.log, want); /* started once */
	ck_assert_uint_eq(cy.started, 2);
	ck_assert_uint_eq(cy.lost, 0);
	th_job j;
	ck_assert_int_eq(th_store_get(st, a, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.claim_gen, 1);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_int_eq(status_of(b), TH_JOB_PROCESSING);
	ck_assert_uint_eq(claim(2, NULL), 0);
}
END_TEST

/* ---- concurrent claimers ---- */

enum { RACE_JOBS = 2000 };

struct racer {
	th_store *st;
	th_owner owner;
	uint64_t *got;
	size_t ngot;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	th_claim c[7];
	th_cycle cy = {.owner = &r->owner, .max = 7, .lease_us = 60000000, .claims = c};
	do {
		ck_assert_int_eq(th_store_cycle(r->st, &cy), 0);
		for (size_t i = 0; i < cy.nclaimed; i++) {
			r->got[r->ngot++] = c[i].job.id;
			th_claim_clear(&c[i]);
		}
	} while (cy.nclaimed);
	return NULL;
}

static void add_race_jobs(void)
{
	th_store_new *n = calloc(RACE_JOBS, sizeof(*n));
	uint64_t *ids = calloc(RACE_JOBS, sizeof(*ids));
	for (int i = 0; i < RACE_JOBS; i++)
		n[i] = NJ("echo", NULL, 0, 0, NULL, 0);
	ck_assert_int_eq(th_store_add(st, n, RACE_JOBS, ids, NULL), 0);
	free(n);
	free(ids);
}

START_TEST(threads_never_claim_twice)
{
	add_race_jobs();
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){st, {.instance = 100 + (uint64_t)i, .pid = 1},
				      calloc(RACE_JOBS, 8), 0};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	unsigned char *seen = calloc(RACE_JOBS + 1, 1);
	size_t total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		for (size_t k = 0; k < r[i].ngot; k++) {
			ck_assert_uint_eq(seen[r[i].got[k]], 0);
			seen[r[i].got[k]] = 1;
			th_job j;
			ck_assert_int_eq(th_store_get(st, r[i].got[k], &j), 0);
			ck_assert_uint_eq(j.owner, r[i].owner.instance);
		}
		total += r[i].ngot;
		free(r[i].got);
	}
	ck_assert_uint_eq(total, RACE_JOBS);
	free(seen);
}
END_TEST

START_TEST(processes_never_claim_twice)
{
	add_race_jobs();
	th_store_close(st);
	st = NULL;
	int fds[3][2];
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pipe(fds[i]), 0);
		if ((pids[i] = fork()) == 0) {
			close(fds[i][0]);
			th_store *mine;
			if (th_store_open(&mine, dir, NULL))
				_exit(2);
			struct racer r = {mine, {.instance = 200 + (uint64_t)i, .pid = (uint32_t)getpid()},
					  calloc(RACE_JOBS, 8), 0};
			race(&r);
			ssize_t want = (ssize_t)(r.ngot * 8);
			if (write(fds[i][1], r.got, (size_t)want) != want)
				_exit(3);
			th_store_close(mine);
			_exit(0);
		}
		close(fds[i][1]);
	}
	unsigned char *seen = calloc(RACE_JOBS + 1, 1);
	size_t total = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t id;
		while (read(fds[i][0], &id, 8) == 8) {
			ck_assert_uint_le(id, RACE_JOBS);
			ck_assert_uint_eq(seen[id], 0);
			seen[id] = 1;
			total++;
		}
		close(fds[i][0]);
		int status;
		waitpid(pids[i], &status, 0);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	ck_assert_uint_eq(total, RACE_JOBS);
	free(seen);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_PROCESSING], RACE_JOBS);
}
END_TEST

/* ---- a damaged data dir ---- */

static char *data_path(void)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	return path;
}

static void add_many(int n)
{
	char input[300];
	memset(input, 'd', sizeof(input));
	for (int i = 0; i < n; i++) {
		th_store_new j = NJ("echo", NULL, 0, 0, input, sizeof(input));
		uint64_t id;
		ck_assert_int_eq(th_store_add(st, &j, 1, &id, NULL), 0);
	}
}

START_TEST(truncated_file_refused_at_open)
{
	add_many(300);
	th_store_close(st);
	st = NULL;
	struct stat sb;
	ck_assert_int_eq(stat(data_path(), &sb), 0);
	/* half of it: the pages cut off are not all free ones (short_file_of_free_pages_opens) */
	off_t half = sb.st_size / 2 / 4096 * 4096;
	ck_assert_int_eq(truncate(data_path(), half), 0);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), TH_EDAMAGED);
	char want[4200];
	snprintf(want, sizeof(want), "data dir damaged: %s is %lld bytes, its meta page names %lld "
		 "(truncated?)", data_path(), (long long)half, (long long)sb.st_size);
	ck_assert(tu_captured_has("store", want, NULL));
	/* a 0-byte data.mdb in a data dir used before is refused too */
	ck_assert_int_eq(truncate(data_path(), 0), 0);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), TH_EDAMAGED);
	ck_assert(tu_captured_has("store", "is 0 bytes, too short for its meta pages", NULL));
	tu_capture_stop();
	ck_assert_int_eq(unlink(data_path()), 0); /* a new one is fine */
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert_uint_eq(add1("echo", NULL), 1);
}
END_TEST

/* LMDB does not write a page a transaction allocated and freed again: at the end of the
 * file, data.mdb stays shorter than its meta page's last page, and is whole. */
START_TEST(short_file_of_free_pages_opens)
{
	add_many(300);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_write(&env, &txn);
	static char big[20000];
	MDB_val k = {.mv_size = 7, .mv_data = "scratch"}, v = {sizeof(big), big};
	ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	ck_assert_int_eq(mdb_del(txn, dbi, &k, NULL), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	MDB_envinfo info;
	MDB_stat ms;
	mdb_env_info(env, &info);
	mdb_env_stat(env, &ms);
	mdb_env_close(env);
	struct stat sb;
	ck_assert_int_eq(stat(data_path(), &sb), 0);
	ck_assert_int_lt(sb.st_size, (off_t)((info.me_last_pgno + 1) * ms.ms_psize));
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	th_job job;
	ck_assert_int_eq(th_store_get(st, 300, &job), 0);
	ck_assert_uint_eq(job.id, 300);
	ck_assert_uint_eq(add1("echo", NULL), 301);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 301);
}
END_TEST

START_TEST(fault_in_the_map_closes_the_store)
{
	add_many(300);
	th_store_close(st);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	/* cut short under the open store: its next reads fault (SIGBUS) in the map */
	ck_assert_int_eq(truncate(data_path(), 8192), 0);
	tu_capture_start();
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), TH_EDAMAGED);
	ck_assert(tu_captured_has("store", "data dir damaged: ", "SIGBUS reading offset"));
	/* from then on every call says so, without touching the map */
	th_job j;
	ck_assert_int_eq(th_store_get(st, 1, &j), TH_EDAMAGED);
	ck_assert_int_eq(th_store_add(st, &NJ("echo", NULL, 0, 0, NULL, 0), 1, (uint64_t[1]){0},
				      NULL), TH_EDAMAGED);
	th_claim cl[4];
	th_cycle cy = {.owner = &owner, .max = 4, .lease_us = 1000000, .claims = cl};
	ck_assert_int_eq(th_store_cycle(st, &cy), TH_EDAMAGED);
	ck_assert_uint_eq(cy.nclaimed, 0);
	ck_assert(tu_captured_has("store", "closed to further use (run 'taskhost check')", NULL));
	tu_capture_stop();
}
END_TEST

/* Closes the store and opens its environment with LMDB itself, in a write transaction. */
static void open_raw(MDB_env **env, MDB_txn **txn)
{
	th_store_close(st);
	st = NULL;
	ck_assert_int_eq(mdb_env_create(env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(*env, 12), 0);
	ck_assert_int_eq(mdb_env_open(*env, dir, 0, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(*env, NULL, 0, txn), 0);
}

/* Changes the store's tables behind its back, through LMDB itself. */
static void tamper(void (*fn)(MDB_txn *txn, MDB_dbi jobs, MDB_dbi ready, MDB_dbi finished))
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi jobs, ready, finished;
	open_raw(&env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "jobs", MDB_INTEGERKEY, &jobs), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "ready", 0, &ready), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "finished", 0, &finished), 0);
	fn(txn, jobs, ready, finished);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
}

/* job 2: its ready entry goes; job 3: its record is cut; job 4: its record says
 * completed (still queued) */
static void break_three(MDB_txn *txn, MDB_dbi jobs, MDB_dbi ready, MDB_dbi finished)
{
	(void)finished;
	MDB_cursor *cur;
	MDB_val k, v;
	ck_assert_int_eq(mdb_cursor_open(txn, ready, &cur), 0);
	ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
	ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_NEXT), 0); /* job 2 */
	ck_assert_int_eq(mdb_cursor_del(cur, 0), 0);
	mdb_cursor_close(cur);
	uint64_t id = 3;
	MDB_val key = {8, &id};
	ck_assert_int_eq(mdb_get(txn, jobs, &key, &v), 0);
	uint8_t rec[512];
	memcpy(rec, v.mv_data, v.mv_size);
	MDB_val cut = {v.mv_size - 3, rec};
	ck_assert_int_eq(mdb_put(txn, jobs, &key, &cut, 0), 0);
	id = 4;
	ck_assert_int_eq(mdb_get(txn, jobs, &key, &v), 0);
	memcpy(rec, v.mv_data, v.mv_size);
	rec[1] = TH_JOB_COMPLETED;
	MDB_val done = {v.mv_size, rec};
	ck_assert_int_eq(mdb_put(txn, jobs, &key, &done, 0), 0);
}

struct lines {
	char text[4096];
	size_t n;
};

static void collect_line(void *ud, const char *line)
{
	struct lines *l = ud;
	size_t len = strlen(l->text);
	snprintf(l->text + len, sizeof(l->text) - len, "%s\n", line);
	l->n++;
}

START_TEST(check_names_damaged_jobs)
{
	for (int i = 0; i < 5; i++)
		add1("echo", "x");
	struct lines l = {{0}, 0};
	uint64_t jobs, problems;
	ck_assert_int_eq(th_store_check(st, collect_line, &l, &jobs, &problems), 0);
	ck_assert_uint_eq(jobs, 5);
	ck_assert_uint_eq(problems, 0);
	tamper(break_three);
	ck_assert_int_eq(th_store_check(st, collect_line, &l, &jobs, &problems), 0);
	ck_assert_uint_eq(problems, l.n);
	ck_assert_str_eq(l.text, "job 2: queued, but not in the ready index\n"
				 "job 3: its record does not decode\n"
				 "job 4: completed, but not in the by-status index\n"
				 "job 4: completed, but not in the finished index\n"
				 "job 3: in the ready index but its record does not decode\n"
				 "job 4: in the ready index but its record says completed\n"
				 "job 3: in the by-status index but its record does not decode\n"
				 "job 4: in the by-status index but its record says completed\n"
				 "the counts: queue \"default\", queued: 5 kept, 3 in the records\n"
				 "the counts: queue \"default\", completed: 0 kept, 1 in the "
				 "records\n");
	/* a damaged record is named wherever it is read */
	tu_capture_start();
	th_job j;
	ck_assert_int_eq(th_store_get(st, 3, &j), TH_EDAMAGED);
	char want[4200];
	snprintf(want, sizeof(want), "data dir damaged: %s: job 3: its record does not decode",
		 data_path());
	ck_assert(tu_captured_has("store", want, NULL));
	ck_assert_int_eq(th_store_list(st, ~0u, 0, false, NULL, NULL), TH_EDAMAGED);
	/* claims take it out of line and go on with the others */
	uint64_t ids[8];
	ck_assert_uint_eq(claim(8, ids), 3);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 4);
	ck_assert_uint_eq(ids[2], 5);
	tu_capture_stop();
}
END_TEST

/* The store, closed, made one of an older format: the tables it did not have dropped,
 * its format version set. */
static void make_older_format(uint8_t version, const char *const *dropped)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, dbi;
	open_raw(&env, &txn);
	for (size_t i = 0; dropped[i]; i++) {
		ck_assert_int_eq(mdb_dbi_open(txn, dropped[i], 0, &dbi), 0);
		ck_assert_int_eq(mdb_drop(txn, dbi, 1), 0);
	}
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	uint8_t v[4] = {0, 0, 0, version};
	MDB_val key = {6, "format"}, val = {4, v};
	ck_assert_int_eq(mdb_put(txn, meta, &key, &val, 0), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A store of format 3 (no counts, no by-status index) is counted once as it opens,
 * then kept: stats read the counts, filtered lists the index. */
START_TEST(older_format_is_counted_on_open)
{
	th_store_new n[4] = {NJ("a", NULL, 0, 0, NULL, 0), NJ("b", "q", 0, 0, NULL, 0),
			     NJ("c", "q", 0, 0, NULL, 0), NJ("d", NULL, 0, 0, NULL, 0)};
	n[3].hold = true;
	uint64_t ids[4];
	ck_assert_int_eq(th_store_add(st, n, 4, ids, NULL), 0);
	uint64_t got[2];
	ck_assert_uint_eq(claim(1, got), 1);
	finish(got[0], 1, TH_JOB_COMPLETED, "r", NULL);
	static const char *const made_later[] = {"counts", "bystatus", NULL};
	make_older_format(3, made_later);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert(tu_captured_has("store", "counted 4 jobs", "data format 3 to 5"));
	tu_capture_stop();
	uint64_t c[TH_JOB_STATUS_MAX + 1], jobs, problems;
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 1);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 2);
	ck_assert_uint_eq(c[TH_JOB_HELD], 1);
	ck_assert_int_eq(th_store_check(st, collect_line, &(struct lines){{0}, 0}, &jobs,
				       &problems), 0);
	ck_assert_uint_eq(jobs, 4);
	ck_assert_uint_eq(problems, 0);
	/* and counted once: a reopen finds format 5 */
	th_store_close(st);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert(!tu_captured_has("store", "counted", NULL));
	tu_capture_stop();
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 2);
}
END_TEST

/* A store of format 4 (no minutes table) gets it, empty, as it opens, and counts from
 * then on. */
START_TEST(format_4_gets_the_minutes)
{
	add1("echo", NULL);
	static const char *const made_later[] = {"minutes", NULL};
	make_older_format(4, made_later);
	tu_capture_start();
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert(tu_captured_has("store", "data format 4 to 5", "the minutes table, empty"));
	tu_capture_stop();
	int64_t now = th_clock_now_us() / 1000000;
	th_minute m[1];
	ck_assert_int_eq(th_store_minutes(st, NULL, now, 1, m), 0);
	ck_assert_uint_eq(m[0].added, 0); /* the job before: not counted */
	add1("echo", NULL);
	th_minute two[2]; /* the minute may have turned since the add */
	ck_assert_int_eq(th_store_minutes(st, NULL, th_clock_now_us() / 1000000, 2, two), 0);
	ck_assert_uint_eq(two[0].added + two[1].added, 1);
	uint64_t c[TH_JOB_STATUS_MAX + 1], jobs, problems;
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 2);
	ck_assert_int_eq(th_store_check(st, collect_line, &(struct lines){{0}, 0}, &jobs,
				       &problems), 0);
	ck_assert_uint_eq(problems, 0);
}
END_TEST

/* Each write drops the minutes older than the hour (the first write of a minute), and a
 * read of a minute gone gives zeros. */
START_TEST(minutes_older_than_the_hour_go)
{
	int64_t t0 = 1800000000LL; /* a minute's start */
	tu_clock_at(t0 * 1000000);
	add1("echo", NULL);
	add1("echo", NULL);
	th_minute m[TH_MINUTES_MAX];
	ck_assert_int_eq(th_store_minutes(st, NULL, t0 + 59, 1, m), 0);
	ck_assert_int_eq(m[0].start, t0);
	ck_assert_uint_eq(m[0].added, 2);
	tu_clock_at((t0 + 59 * 60) * 1000000); /* the hour's last minute: kept */
	add1("echo", NULL);
	ck_assert_int_eq(th_store_minutes(st, NULL, t0 + 59 * 60, TH_MINUTES_MAX, m), 0);
	ck_assert_int_eq(m[0].start, t0);
	ck_assert_uint_eq(m[0].added, 2);
	ck_assert_uint_eq(m[59].added, 1);
	tu_clock_at((t0 + 60 * 60) * 1000000); /* an hour on: the first minute goes */
	add1("echo", NULL);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi minutes;
	open_raw(&env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "minutes", 0, &minutes), 0);
	MDB_stat ms;
	ck_assert_int_eq(mdb_stat(txn, minutes, &ms), 0);
	ck_assert_uint_eq(ms.ms_entries, 2); /* the 60th minute's and this one's */
	mdb_txn_abort(txn);
	mdb_env_close(env);
	ck_assert_int_eq(th_store_open(&st, dir, NULL), 0);
	ck_assert_int_eq(th_store_minutes(st, NULL, t0 + 60 * 60, TH_MINUTES_MAX, m), 0);
	ck_assert_int_eq(m[0].start, t0 + 60);
	ck_assert_uint_eq(m[58].added, 1);
	ck_assert_uint_eq(m[59].added, 1);
	tu_clock_real();
}
END_TEST

static void break_running(MDB_txn *txn, MDB_dbi jobs, MDB_dbi ready, MDB_dbi finished)
{
	(void)ready;
	(void)finished;
	uint64_t id = 1;
	MDB_val key = {8, &id}, v = {5, "bad!!"};
	ck_assert_int_eq(mdb_put(txn, jobs, &key, &v, 0), 0);
}

START_TEST(recovery_skips_a_damaged_record)
{
	uint64_t a = add1("echo", NULL), b = add1("echo", NULL);
	th_owner gone = dead_owner();
	ck_assert_uint_eq(claim_as(&gone, 2, NULL, 60000000), 2);
	tamper(break_running);
	th_owner me;
	th_owner_self(&me);
	size_t n;
	tu_capture_start();
	ck_assert_int_eq(th_store_recover(st, &me, tu_owner_alive, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(tu_captured_has("store", "job 1: not recovered: its record is damaged", NULL));
	tu_capture_stop();
	ck_assert_int_eq(status_of(b), TH_JOB_QUEUED);
	(void)a;
}
END_TEST

Suite *store_suite(void);
Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, add_and_get);
	tcase_add_test(tc, unknown_ids);
	tcase_add_test(tc, bad_names_refused);
	tcase_add_test(tc, claims_in_order_and_by_priority);
	tcase_add_test(tc, claim_records_owner_and_input);
	tcase_add_test(tc, outcomes_recorded);
	tcase_add_test(tc, stale_outcome_refused);
	tcase_add_test(tc, release_puts_back_in_place);
	tcase_add_test(tc, cancel_rules);
	tcase_add_test(tc, list_filters_and_orders);
	tcase_add_test(tc, clean_keeps_unfinished);
	tcase_add_test(tc, clean_long_history);
	tcase_add_test(tc, survives_reopen);
	tcase_add_test(tc, map_full_keeps_committed_jobs);
	tcase_add_test(tc, map_grows_up_to_limit);
	tcase_add_test(tc, map_full_still_records_outcomes);
	tcase_add_test(tc, foreign_format_refused);
	tcase_add_test(tc, ids_continue_from_the_older_layout);
	tcase_add_test(tc, older_format_is_counted_on_open);
	tcase_add_test(tc, format_4_gets_the_minutes);
	tcase_add_test(tc, minutes_older_than_the_hour_go);
	tcase_add_test(tc, not_a_database_refused);
	tcase_add_test(tc, missing_dir_refused);
	tcase_add_test(tc, store_urls);
	tcase_add_test(tc, owner_liveness);
	tcase_add_test(tc, owner_on_another_machine);
	tcase_add_test(tc, recovers_jobs_of_dead_owner);
	tcase_add_test(tc, cancel_survives_the_death_of_the_host);
	tcase_add_test(tc, counts_attempts_of_jobs_a_dead_host_started);
	tcase_add_test(tc, unfinished_inflight_files_removed_when_old);
	tcase_add_test(tc, recovers_expired_leases_and_renews);
	tcase_add_test(tc, living_owner_keeps_its_jobs);
	tcase_add_test(tc, failed_commit_changes_nothing);
	tcase_add_test(tc, pending_counts_from_the_indexes);
	tcase_add_test(tc, start_runs_claims_before_they_commit);
	tcase_add_test(tc, started_claims_survive_the_map_growing);
	tcase_add_test(tc, threads_never_claim_twice);
	tcase_add_test(tc, processes_never_claim_twice);
	tcase_add_test(tc, truncated_file_refused_at_open);
	tcase_add_test(tc, short_file_of_free_pages_opens);
	tcase_add_test(tc, fault_in_the_map_closes_the_store);
	tcase_add_test(tc, check_names_damaged_jobs);
	tcase_add_test(tc, recovery_skips_a_damaged_record);
	suite_add_tcase(s, tc);
	return s;
}
