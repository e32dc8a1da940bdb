/* The store conformance suite: written against the store interface alone
 * (store/store.h), and run on every registered backend (th_store_backends), each
 * opened by its URL: PostgreSQL when $TASKHOST_TEST_PG gives a server's connection
 * string (scripts/check starts one), each test on a fresh schema. Every operation,
 * every refusal, fencing, recovery, cron, unique keys and pauses, counts and lists by
 * status, the hosts' records. What only LMDB has (map growth, the commit hook, the
 * format) is in check_store.c; what only PostgreSQL has (the connection's timeouts) is
 * at the end. */
#include <check.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "coord.h"
#include "error.h"
#include "store/store.h"
#include "store/store_pg.h"
#include "testutil.h"

#define SEC 1000000LL

static char *dir;
static th_store *st;
static th_owner me = {.instance = 0x1111, .pid = 1};

static void setup(void)
{
	dir = tu_tmpdir();
	tu_clock_at(1800000000 * SEC);
}

static void teardown(void)
{
	th_store_close(st);
	st = NULL;
	tu_clock_real();
	tu_rmtree(dir);
	free(dir);
}

/* The backends to run on: PostgreSQL's only with a server to run on. */
static const th_store_ops *backends[8];

static int nbackends(void)
{
	int n = 0;
	for (int i = 0; th_store_backends[i]; i++)
		if (th_store_backends[i] != &th_store_pg || getenv("TASKHOST_TEST_PG"))
			backends[n++] = th_store_backends[i];
	return n;
}

/* The test's PostgreSQL store starts without a schema. */
static void drop_schema(const char *conninfo)
{
	PGconn *conn;
	ck_assert_int_eq(th_store_pg_connect(conninfo, "the test's server", 0, NULL, &conn), 0);
	PGresult *r = PQexec(conn, "DROP SCHEMA IF EXISTS taskhost CASCADE");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(conn);
}

/* Opens backend i's store by its URL: in the test's directory, or on the server. */
static void open_backend(int i)
{
	char url[4200];
	const char *pg = getenv("TASKHOST_TEST_PG");
	if (backends[i] == &th_store_pg)
		drop_schema(pg);
	snprintf(url, sizeof(url), "%s:%s", backends[i]->scheme,
		 backends[i] == &th_store_pg ? pg : dir);
	th_store_opts o = {.migrate = true};
	ck_assert_int_eq(th_store_open(&st, url, &o), 0);
}

static uint64_t add(th_store_new n)
{
	if (!n.task)
		n.task = "echo";
	uint64_t id = 0;
	ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), 0);
	return id;
}

static th_job job_of(uint64_t id)
{
	th_job j;
	ck_assert_int_eq(th_store_get(st, id, &j), 0);
	return j;
}

static int64_t claim_next_due; /* the last claim's cycle's next_due */

/* Claims up to max of queue q as `who`; ids of the claimed go to ids. */
static size_t claim(const th_owner *who, const char *q, size_t max, uint64_t *ids,
		    int64_t lease_us)
{
	th_claim c[16];
	th_cycle cy = {.owner = who, .queue = q, .max = max, .lease_us = lease_us, .claims = c};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	claim_next_due = cy.next_due;
	for (size_t i = 0; i < cy.nclaimed; i++) {
		if (ids)
			ids[i] = c[i].job.id;
		th_claim_clear(&c[i]);
	}
	return cy.nclaimed;
}

/* Records one outcome under the job's current claim (or gen when not 0). */
static size_t outcome(uint64_t id, uint64_t gen, th_job_status status, const char *result,
		      const char *error)
{
	th_outcome o = {.id = id, .gen = gen ? gen : job_of(id).claim_gen, .status = status,
			.result = result, .result_len = result ? strlen(result) : 0,
			.error = error};
	th_cycle cy = {.outs = &o, .nout = 1, .owner = &me};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	return cy.stale;
}

static char *blob(uint64_t id, enum th_blob kind, size_t *len)
{
	void *data;
	size_t n;
	ck_assert_int_eq(th_store_blob(st, id, kind, &data, &n), 0);
	if (len)
		*len = n;
	return data;
}

#define CONFORMANCE_TIMEOUT_S 120 /* seconds a case may take, the sanitizers included */

START_TEST(add_get_blob)
{
	open_backend(_i);
	th_store_new n[2] = {{.task = "echo", .queue = "q", .priority = 4, .max_attempts = 5,
			      .input = "in", .input_len = 2},
			     {.task = "sleep"}};
	uint64_t ids[2];
	ck_assert_int_eq(th_store_add(st, n, 2, ids, NULL), 0);
	ck_assert_uint_gt(ids[1], ids[0]);
	th_job j = job_of(ids[0]);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_str_eq(j.task, "echo");
	ck_assert_str_eq(j.queue, "q");
	ck_assert_int_eq(j.priority, 4);
	ck_assert_uint_eq(j.max_attempts, 5);
	ck_assert_uint_eq(j.input_len, 2);
	size_t len;
	char *in = blob(ids[0], TH_BLOB_INPUT, &len);
	ck_assert_uint_eq(len, 2);
	ck_assert_str_eq(in, "in");
	free(in);
	char *none = blob(ids[1], TH_BLOB_RESULT, &len); /* none yet: empty */
	ck_assert_uint_eq(len, 0);
	free(none);
	void *d;
	ck_assert_int_eq(th_store_get(st, 999, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_blob(st, 999, TH_BLOB_INPUT, &d, &len), TH_ENOTFOUND);
	th_store_new bad = {.task = ""};
	ck_assert_int_eq(th_store_add(st, &bad, 1, ids, NULL), TH_EINVAL);
	bad = (th_store_new){.task = "echo", .cron = "not a schedule"};
	ck_assert_int_eq(th_store_add(st, &bad, 1, ids, NULL), TH_EINVAL);
}
END_TEST

/* Bytes and names that a backend must carry as they are, many rows in one write: task
 * names with the characters that quote and separate, inputs and results with NULs and
 * high bytes, an empty input, errors with quotes and newlines. */
START_TEST(bytes_and_names_round_trip)
{
	open_backend(_i);
	static const char *const tasks[] = {"a\"b", "c\\d", "{e,f}", "NULL", "g'h"};
	static const char bin[] = {'\0', '\xff', '"', '\\', ',', '}', '\n', 'x'};
	th_store_new n[5];
	for (int i = 0; i < 5; i++)
		n[i] = (th_store_new){.task = tasks[i], .queue = i % 2 ? "q.1" : NULL,
				      .input = i < 4 ? bin : NULL, .input_len = i < 4 ? sizeof(bin) - (size_t)i : 0};
	uint64_t ids[5];
	ck_assert_int_eq(th_store_add(st, n, 5, ids, NULL), 0);
	for (int i = 0; i < 5; i++) {
		th_job j = job_of(ids[i]);
		ck_assert_str_eq(j.task, tasks[i]);
		ck_assert_str_eq(j.queue, i % 2 ? "q.1" : "");
		size_t len;
		char *in = blob(ids[i], TH_BLOB_INPUT, &len);
		ck_assert_uint_eq(len, n[i].input_len);
		ck_assert(len == 0 || memcmp(in, bin, len) == 0);
		free(in);
	}
	/* the default queue's three, their outcomes in one cycle */
	uint64_t got[4];
	ck_assert_uint_eq(claim(&me, NULL, 4, got, 60 * SEC), 3);
	th_outcome o[3];
	const char *errors[] = {NULL, "say \"no\"\\\nthen {stop}", NULL};
	for (int i = 0; i < 3; i++)
		o[i] = (th_outcome){.id = got[i], .gen = job_of(got[i]).claim_gen,
				    .status = i == 1 ? TH_JOB_ERROR : TH_JOB_COMPLETED,
				    .result = i == 1 ? NULL : bin, .result_len = i == 1 ? 0 : sizeof(bin),
				    .error = errors[i]};
	th_cycle cy = {.outs = o, .nout = 3, .owner = &me};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	ck_assert_uint_eq(cy.stale, 0);
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *r = blob(got[i], TH_BLOB_RESULT, &len);
		ck_assert_uint_eq(len, i == 1 ? 0 : sizeof(bin));
		ck_assert(len == 0 || memcmp(r, bin, len) == 0);
		free(r);
	}
	char *e = blob(got[1], TH_BLOB_ERROR, NULL);
	ck_assert_str_eq(e, errors[1]);
	free(e);
}
END_TEST

/* Inputs and results larger than one many-row statement carries go in several (on
 * PostgreSQL 8 MiB of them a statement): each job keeps its own, ids in order. */
START_TEST(big_bytes_in_several_statements)
{
	open_backend(_i);
	size_t big = 5u << 20;
	char *in = malloc(big);
	ck_assert_ptr_nonnull(in);
	for (size_t k = 0; k < big; k++)
		in[k] = (char)(k * 7 + k / 4096);
	th_store_new n[3];
	for (int i = 0; i < 3; i++)
		n[i] = (th_store_new){.task = "echo", .input = in + i, .input_len = big - (size_t)i};
	uint64_t ids[3];
	ck_assert_int_eq(th_store_add(st, n, 3, ids, NULL), 0);
	ck_assert_uint_eq(ids[1], ids[0] + 1);
	ck_assert_uint_eq(ids[2], ids[0] + 2);
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *b = blob(ids[i], TH_BLOB_INPUT, &len);
		ck_assert_uint_eq(len, big - (size_t)i);
		ck_assert(memcmp(b, in + i, len) == 0);
		free(b);
	}
	uint64_t got[3];
	ck_assert_uint_eq(claim(&me, NULL, 3, got, 60 * SEC), 3);
	th_outcome o[3];
	for (int i = 0; i < 3; i++)
		o[i] = (th_outcome){.id = got[i], .gen = job_of(got[i]).claim_gen,
				    .status = TH_JOB_COMPLETED, .result = in + 2 * i,
				    .result_len = big - 2 * (size_t)i};
	th_cycle cy = {.outs = o, .nout = 3, .owner = &me};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0);
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *b = blob(got[i], TH_BLOB_RESULT, &len);
		ck_assert_uint_eq(len, big - 2 * (size_t)i);
		ck_assert(memcmp(b, in + 2 * i, len) == 0);
		free(b);
		ck_assert_int_eq(job_of(got[i]).status, TH_JOB_COMPLETED);
	}
	free(in);
}
END_TEST

START_TEST(unique_keys)
{
	open_backend(_i);
	uint64_t a = add((th_store_new){.unique = "k"});
	th_store_new again = {.task = "echo", .unique = "k"};
	uint64_t id;
	bool existed;
	ck_assert_int_eq(th_store_add(st, &again, 1, &id, &existed), 0);
	ck_assert(existed);
	ck_assert_uint_eq(id, a);
	/* an add that met the key used up no id: the next job's id follows a's */
	ck_assert_uint_eq(add((th_store_new){0}), a + 1);
	ck_assert_int_eq(th_store_cancel(st, a), 0); /* finished: the key is free again */
	ck_assert_int_eq(th_store_add(st, &again, 1, &id, &existed), 0);
	ck_assert(!existed);
	ck_assert_uint_eq(id, a + 2);
}
END_TEST

START_TEST(claims_in_order_fenced)
{
	open_backend(_i);
	uint64_t low = add((th_store_new){.priority = 0});
	uint64_t high = add((th_store_new){.priority = 9});
	uint64_t low2 = add((th_store_new){.priority = 0});
	uint64_t other = add((th_store_new){.queue = "mail"});
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, NULL, 4, ids, 60 * SEC), 3);
	ck_assert_uint_eq(ids[0], high);
	ck_assert_uint_eq(ids[1], low);
	ck_assert_uint_eq(ids[2], low2);
	th_job j = job_of(high);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_uint_eq(j.owner, me.instance);
	uint64_t queued, processing;
	ck_assert_int_eq(th_store_pending(st, &queued, &processing), 0);
	ck_assert_uint_eq(queued, 1);
	ck_assert_uint_eq(processing, 3);
	/* outcomes: a stale generation is refused, the current one recorded */
	ck_assert_uint_eq(outcome(high, j.claim_gen + 1, TH_JOB_COMPLETED, "no", NULL), 1);
	ck_assert_uint_eq(outcome(high, 0, TH_JOB_COMPLETED, "yes", NULL), 0);
	j = job_of(high);
	ck_assert_int_eq(j.status, TH_JOB_COMPLETED);
	char *r = blob(high, TH_BLOB_RESULT, NULL);
	ck_assert_str_eq(r, "yes");
	free(r);
	ck_assert_uint_eq(outcome(low, 0, TH_JOB_ERROR, NULL, "boom"), 0);
	char *e = blob(low, TH_BLOB_ERRORS, NULL);
	ck_assert_str_eq(e, "attempt 1 at 2027-01-15T08:00:00.000Z for 0.000 s: boom\n");
	free(e);
	/* put back: queued again, in its place */
	ck_assert_uint_eq(outcome(low2, 0, TH_JOB_QUEUED, NULL, NULL), 0);
	ck_assert_int_eq(job_of(low2).status, TH_JOB_QUEUED);
	ck_assert_uint_eq(claim(&me, "mail", 4, ids, 60 * SEC), 1);
	ck_assert_uint_eq(ids[0], other);
	uint64_t counts[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, counts), 0);
	ck_assert_uint_eq(counts[TH_JOB_COMPLETED], 1);
	ck_assert_uint_eq(counts[TH_JOB_ERROR], 1);
	ck_assert_uint_eq(counts[TH_JOB_QUEUED], 1);
	ck_assert_uint_eq(counts[TH_JOB_PROCESSING], 1);
}
END_TEST

static int collect(const th_job *j, void *ud)
{
	uint64_t *ids = ud;
	ids[++ids[0]] = j->id;
	return ids[0] == 2; /* stop after two */
}

START_TEST(changes_and_refusals)
{
	open_backend(_i);
	uint64_t held = add((th_store_new){.hold = true});
	uint64_t q = add((th_store_new){0});
	ck_assert_int_eq(th_store_retry(st, q), TH_ESTATE);
	ck_assert_int_eq(th_store_start(st, q), TH_ESTATE);
	ck_assert_int_eq(th_store_start(st, held), 0);
	ck_assert_int_eq(job_of(held).status, TH_JOB_QUEUED);
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, NULL, 1, ids, 60 * SEC), 1);
	ck_assert_int_eq(th_store_cancel(st, ids[0]), TH_EBUSY); /* running: asked to stop */
	bool asked[2];
	uint64_t both[2] = {ids[0], q};
	ck_assert_int_eq(th_store_cancel_requested(st, both, 2, asked), 0);
	ck_assert(asked[0]);
	ck_assert(!asked[1]);
	ck_assert_uint_eq(outcome(ids[0], 0, TH_JOB_COMPLETED, NULL, NULL), 0);
	ck_assert_int_eq(job_of(ids[0]).status, TH_JOB_CANCELLED);
	ck_assert_int_eq(th_store_cancel(st, ids[0]), TH_ESTATE);
	ck_assert_int_eq(th_store_retry(st, ids[0]), 0);
	ck_assert_int_eq(job_of(ids[0]).status, TH_JOB_QUEUED);
	ck_assert_int_eq(th_store_cancel(st, 999), TH_ENOTFOUND);
	/* list: by id, newest first when reverse, from a cursor, stopping when told */
	uint64_t seen[4] = {0};
	ck_assert_int_eq(th_store_list(st, ~0u, 0, true, collect, seen), 0);
	ck_assert_uint_eq(seen[0], 2);
	ck_assert_uint_eq(seen[1], q);
	ck_assert_uint_eq(seen[2], held);
	memset(seen, 0, sizeof(seen));
	ck_assert_int_eq(th_store_list(st, ~0u, held, false, collect, seen), 0);
	ck_assert_uint_eq(seen[0], 1);
	ck_assert_uint_eq(seen[1], q);
	/* clean removes finished jobs only */
	ck_assert_int_eq(th_store_cancel(st, q), 0);
	uint64_t removed;
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, 1);
	th_job j;
	ck_assert_int_eq(th_store_get(st, q, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_get(st, held, &j), 0);
}
END_TEST

START_TEST(queue_pause)
{
	open_backend(_i);
	uint64_t id = add((th_store_new){.queue = "mail"});
	ck_assert_int_eq(th_store_pause_queue(st, "mail", true), 0);
	bool paused, ready;
	int64_t next_due;
	ck_assert_int_eq(th_store_queue_paused(st, "mail", &paused), 0);
	ck_assert(paused);
	ck_assert_int_eq(th_store_peek(st, "mail", &ready, &next_due), 0);
	ck_assert(!ready);
	ck_assert_uint_eq(claim(&me, "mail", 1, NULL, 60 * SEC), 0);
	ck_assert_int_eq(th_store_pause_queue(st, "mail", false), 0);
	ck_assert_int_eq(th_store_peek(st, "mail", &ready, &next_due), 0);
	ck_assert(ready);
	uint64_t ids[1];
	ck_assert_uint_eq(claim(&me, "mail", 1, ids, 60 * SEC), 1);
	ck_assert_uint_eq(ids[0], id);
}
END_TEST

START_TEST(delays_and_cron)
{
	open_backend(_i);
	int64_t t0 = th_clock_now_us();
	uint64_t later = add((th_store_new){.due_us = t0 + 10 * SEC});
	uint64_t cron = add((th_store_new){.cron = "every 60s", .input = "c", .input_len = 1});
	ck_assert_int_eq(job_of(later).status, TH_JOB_DELAYED);
	ck_assert_int_eq(job_of(cron).status, TH_JOB_CRONJOB);
	ck_assert_uint_eq(claim(&me, NULL, 4, NULL, 60 * SEC), 0);
	ck_assert_int_eq(claim_next_due, t0 + 10 * SEC); /* the sooner of the two */
	tu_clock_at(t0 + 60 * SEC);
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, NULL, 4, ids, 60 * SEC), 2); /* the delayed, a cron run */
	ck_assert_int_eq(claim_next_due, t0 + 120 * SEC); /* the cron job's next fire */
	th_job run = job_of(ids[0] == later ? ids[1] : ids[0]);
	ck_assert_uint_eq(run.parent, cron);
	ck_assert_uint_eq(job_of(cron).fires, 1);
	ck_assert_int_eq(job_of(cron).due_us, t0 + 120 * SEC);
	ck_assert_int_eq(th_store_cron_pause(st, cron, true), 0);
	ck_assert_int_eq(job_of(cron).due_us, 0);
	ck_assert_int_eq(th_store_cron_update(st, cron, "every 90s", 1), 0);
	ck_assert_int_eq(th_store_cron_pause(st, cron, false), 0);
	ck_assert_int_eq(job_of(cron).due_us, t0 + 150 * SEC);
	ck_assert_int_eq(th_store_cron_update(st, cron, "bad", -1), TH_EINVAL);
	ck_assert_int_eq(th_store_cron_update(st, later, NULL, 1), TH_ESTATE);
}
END_TEST

START_TEST(leases_recovery)
{
	open_backend(_i);
	/* an owner this host cannot see (another pid namespace): judged by its lease */
	th_owner self;
	th_owner_self(&self);
	th_owner far = {.instance = 0x2222, .pid = 1, .pidns = self.pidns ^ 1};
	uint64_t id = add((th_store_new){.max_attempts = 2});
	uint64_t ids[1];
	ck_assert_uint_eq(claim(&far, NULL, 1, ids, 1), 1);
	size_t n = 0;
	ck_assert_int_eq(th_store_renew(st, &far, 60 * SEC, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(th_store_recover(st, &self, NULL, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 0); /* renewed: kept */
	ck_assert_int_eq(th_store_renew(st, &far, 0, &n), 0);
	th_recovered by = {0};
	ck_assert_int_eq(th_store_recover(st, &self, NULL, NULL, &n, &by), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(by.ngroups, 1); /* which: by task and queue */
	ck_assert_str_eq(by.groups[0].task, "echo");
	ck_assert_str_eq(by.groups[0].queue, "");
	ck_assert_uint_eq(by.groups[0].n, 1);
	ck_assert_int_eq(th_store_recover(st, &self, NULL, NULL, &n, &by), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(by.ngroups, 0); /* reset by each recover */
	th_recovered_clear(&by);
	th_job j = job_of(id);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 1);
	/* started before its claim committed: counted once, out of attempts */
	uint64_t pair[2] = {id, j.claim_gen + 1};
	size_t done;
	ck_assert_int_eq(th_store_recover_started(st, pair, 1, &done), 0);
	ck_assert_uint_eq(done, 1);
	j = job_of(id);
	ck_assert_int_eq(j.status, TH_JOB_ERROR);
	char *e = blob(id, TH_BLOB_ERROR, NULL);
	ck_assert_str_eq(e, "host died while starting it, attempts exhausted (2 of 2)");
	free(e);
	ck_assert_int_eq(th_store_recover_started(st, pair, 1, &done), 0);
	ck_assert_uint_eq(done, 0); /* once */
	/* the recovering host's own claim is not taken back, its lease run out or not */
	uint64_t mine = add((th_store_new){0});
	ck_assert_uint_eq(claim(&self, NULL, 1, ids, 1), 1);
	ck_assert_uint_eq(ids[0], mine);
	ck_assert_int_eq(th_store_renew(st, &self, 0, &n), 0);
	ck_assert_int_eq(th_store_recover(st, &self, NULL, NULL, &n, NULL), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(job_of(mine).status, TH_JOB_PROCESSING);
}
END_TEST

START_TEST(confirm_same_claims)
{
	open_backend(_i);
	uint64_t id = add((th_store_new){0});
	uint64_t gen = job_of(id).claim_gen + 1;
	uint64_t pair[2] = {id, gen};
	bool lost;
	ck_assert_int_eq(th_store_confirm(st, &me, 60 * SEC, pair, 1, &lost), 0);
	ck_assert(!lost);
	th_job j = job_of(id);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.claim_gen, gen);
	ck_assert_int_eq(th_store_confirm(st, &me, 60 * SEC, pair, 1, &lost), 0);
	ck_assert(lost); /* it moved on */
}
END_TEST

/* ---- counts and lists by status: what stats and filtered lists read ---- */

struct walked {
	uint64_t total[TH_JOB_STATUS_MAX + 1];
	char queues[8][TH_QUEUE_NAME_MAX + 1];
	uint64_t per[8][TH_JOB_STATUS_MAX + 1];
	size_t nq;
};

static int walk_job(const th_job *j, void *ud)
{
	struct walked *w = ud;
	w->total[j->status]++;
	size_t i = 0;
	while (i < w->nq && strcmp(w->queues[i], j->queue) != 0)
		i++;
	if (i == w->nq)
		snprintf(w->queues[w->nq++], sizeof(w->queues[0]), "%s", j->queue);
	w->per[i][j->status]++;
	return 0;
}

static int count_queue(void *ud, const char *queue, const uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	struct walked *w = ud;
	size_t i = 0;
	while (i < w->nq && strcmp(w->queues[i], queue) != 0)
		i++;
	ck_assert_msg(i < w->nq, "queue \"%s\" counted, it has no jobs", queue);
	for (int s = 1; s <= TH_JOB_STATUS_MAX; s++)
		ck_assert_msg(counts[s] == w->per[i][s], "queue \"%s\", %s: %llu counted, %llu "
			      "jobs", queue, th_job_status_name((th_job_status)s),
			      (unsigned long long)counts[s], (unsigned long long)w->per[i][s]);
	w->per[i][0] = 1; /* seen */
	return 0;
}

static void no_problem(void *ud, const char *line)
{
	(void)ud;
	ck_abort_msg("check: %s", line);
}

/* th_store_count and th_store_count_queues say what a walk of every job finds, and the
 * store's check finds nothing wrong. */
static void assert_counts(void)
{
	struct walked w;
	memset(&w, 0, sizeof(w));
	ck_assert_int_eq(th_store_list(st, ~0u, 0, false, walk_job, &w), 0);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	for (int s = 1; s <= TH_JOB_STATUS_MAX; s++)
		ck_assert_msg(c[s] == w.total[s], "%s: %llu counted, %llu jobs",
			      th_job_status_name((th_job_status)s), (unsigned long long)c[s],
			      (unsigned long long)w.total[s]);
	ck_assert_int_eq(th_store_count_queues(st, count_queue, &w), 0);
	for (size_t i = 0; i < w.nq; i++)
		ck_assert_msg(w.per[i][0] == 1, "queue \"%s\" not counted", w.queues[i]);
	uint64_t jobs, problems;
	ck_assert_int_eq(th_store_check(st, no_problem, NULL, &jobs, &problems), 0);
	ck_assert_uint_eq(problems, 0);
}

START_TEST(counts_follow_every_change)
{
	open_backend(_i);
	assert_counts();
	uint64_t a = add((th_store_new){0}), b = add((th_store_new){.queue = "mail"});
	uint64_t held = add((th_store_new){.hold = true, .queue = "mail"});
	add((th_store_new){.due_us = th_clock_now_us() + 3600 * SEC});
	uint64_t cron = add((th_store_new){.cron = "* * * * *"});
	assert_counts();
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, NULL, 1, ids, 60 * SEC), 1);
	ck_assert_uint_eq(ids[0], a);
	assert_counts();
	ck_assert_uint_eq(outcome(a, 0, TH_JOB_COMPLETED, "r", NULL), 0);
	ck_assert_int_eq(th_store_start(st, held), 0);
	ck_assert_uint_eq(claim(&me, "mail", 2, ids, 60 * SEC), 2);
	ck_assert_uint_eq(outcome(b, 0, TH_JOB_ERROR, NULL, "boom"), 0);
	ck_assert_int_eq(th_store_cancel(st, held), TH_EBUSY);
	ck_assert_uint_eq(outcome(held, 0, TH_JOB_COMPLETED, NULL, NULL), 0);
	assert_counts();
	ck_assert_int_eq(th_store_retry(st, b), 0);
	ck_assert_int_eq(th_store_cron_pause(st, cron, true), 0);
	assert_counts();
	/* the cron job fires a run, once resumed and its time comes */
	ck_assert_int_eq(th_store_cron_pause(st, cron, false), 0);
	tu_clock_at(1800000000 * SEC + 120 * SEC);
	ck_assert_uint_eq(claim(&me, NULL, 0, NULL, 60 * SEC), 0);
	assert_counts();
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 2); /* the run, and b again */
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 1);
	ck_assert_uint_eq(c[TH_JOB_CANCELLED], 1);
	ck_assert_uint_eq(c[TH_JOB_DELAYED], 1);
	ck_assert_uint_eq(c[TH_JOB_CRONJOB], 1);
	uint64_t n;
	ck_assert_int_eq(th_store_finished_since(st, 0, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(th_store_finished_since(st, th_clock_now_us(), &n), 0);
	ck_assert_uint_eq(n, 0);
	uint64_t removed;
	ck_assert_int_eq(th_store_clean(st, 0, &removed), 0);
	ck_assert_uint_eq(removed, 2);
	assert_counts();
	ck_assert_int_eq(th_store_count(st, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED] + c[TH_JOB_CANCELLED], 0);
}
END_TEST

/* The sums of the last hour's minutes of queue q (NULL: all); the minutes are the
 * hour's, one each, oldest first, the last the one now. */
static th_minute hour_of(const char *q)
{
	static th_minute m[TH_MINUTES_MAX];
	int64_t before = th_clock_now_us() / SEC;
	ck_assert_int_eq(th_store_minutes(st, q, th_clock_now_us() / SEC, TH_MINUTES_MAX, m), 0);
	int64_t after = th_clock_now_us() / SEC;
	th_minute sum = {0};
	for (int i = 0; i < TH_MINUTES_MAX; i++) {
		ck_assert_int_eq(m[i].start % 60, 0);
		if (i)
			ck_assert_int_eq(m[i].start, m[i - 1].start + 60);
		sum.added += m[i].added;
		sum.completed += m[i].completed;
		sum.failed += m[i].failed;
	}
	ck_assert_int_ge(m[TH_MINUTES_MAX - 1].start, before / 60 * 60);
	ck_assert_int_le(m[TH_MINUTES_MAX - 1].start, after);
	return sum;
}

/* Jobs added, completed and failed, counted per minute by the writes: on the real
 * clock, as PostgreSQL's triggers count on the database's. */
START_TEST(minutes_count_what_happened)
{
	tu_clock_real();
	open_backend(_i);
	th_minute none = hour_of(NULL);
	ck_assert_uint_eq(none.added + none.completed + none.failed, 0);
	uint64_t a = add((th_store_new){.queue = "a"}), a2 = add((th_store_new){.queue = "a"});
	uint64_t d1 = add((th_store_new){0}), d2 = add((th_store_new){.max_attempts = 1});
	uint64_t d3 = add((th_store_new){.max_attempts = 3, .backoff_ms = 1});
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, NULL, 3, ids, 60 * SEC), 3);
	ck_assert_uint_eq(outcome(d1, 0, TH_JOB_COMPLETED, "r", NULL), 0);
	ck_assert_uint_eq(outcome(d2, 0, TH_JOB_ERROR, NULL, "boom"), 0);
	th_outcome o = {.id = d3, .gen = job_of(d3).claim_gen, .status = TH_JOB_ERROR,
			.retry = true, .error = "again"};
	th_cycle cy = {.outs = &o, .nout = 1, .owner = &me};
	ck_assert_int_eq(th_store_cycle(st, &cy), 0); /* retried: not failed */
	ck_assert_uint_ne(job_of(d3).status, TH_JOB_ERROR);
	ck_assert_uint_eq(claim(&me, "a", 1, ids, 60 * SEC), 1);
	ck_assert_uint_eq(ids[0], a);
	ck_assert_uint_eq(outcome(a, 0, TH_JOB_COMPLETED, NULL, NULL), 0);
	ck_assert_int_eq(th_store_cancel(st, a2), 0); /* cancelled: neither */
	ck_assert_int_eq(th_store_retry(st, d2), 0);  /* queued again, then completed */
	ck_assert_uint_eq(claim(&me, NULL, 1, ids, 60 * SEC), 1);
	ck_assert_uint_eq(ids[0], d2);
	ck_assert_uint_eq(outcome(d2, 0, TH_JOB_COMPLETED, NULL, NULL), 0);
	th_minute all = hour_of(NULL), qa = hour_of("a"), qd = hour_of("");
	ck_assert_uint_eq(all.added, 5);
	ck_assert_uint_eq(all.completed, 3);
	ck_assert_uint_eq(all.failed, 1);
	ck_assert_uint_eq(qa.added, 2);
	ck_assert_uint_eq(qa.completed, 1);
	ck_assert_uint_eq(qa.failed, 0);
	ck_assert_uint_eq(qd.added, 3);
	ck_assert_uint_eq(qd.completed, 2);
	ck_assert_uint_eq(qd.failed, 1);
	th_minute none2 = hour_of("nosuchqueue");
	ck_assert_uint_eq(none2.added + none2.completed + none2.failed, 0);
	th_minute m[TH_MINUTES_MAX + 1];
	ck_assert_int_eq(th_store_minutes(st, NULL, th_clock_now_us() / SEC, 0, m), TH_EINVAL);
	ck_assert_int_eq(th_store_minutes(st, NULL, th_clock_now_us() / SEC,
					  TH_MINUTES_MAX + 1, m), TH_EINVAL);
}
END_TEST

/* Many jobs changed in one transaction: each one's outcome told, the refused ones left
 * as they were, a removed job gone with its bytes, counts and indexes kept. */
START_TEST(changes_of_many)
{
	open_backend(_i);
	uint64_t q = add((th_store_new){0});
	uint64_t held = add((th_store_new){.hold = true});
	uint64_t run = add((th_store_new){.queue = "mail"});
	uint64_t failed = add((th_store_new){.queue = "mail", .unique = "k1"});
	uint64_t ids[4];
	ck_assert_uint_eq(claim(&me, "mail", 2, ids, 60 * SEC), 2);
	ck_assert_uint_eq(outcome(failed, 0, TH_JOB_ERROR, NULL, "boom"), 0);
	/* cancel: two at once, one asked to stop, the failed one refused, 999 unknown */
	uint64_t c[] = {q, held, run, failed, 999};
	int rcs[5];
	ck_assert_int_eq(th_store_change(st, TH_CHANGE_CANCEL, c, 5, rcs), 0);
	ck_assert_int_eq(rcs[0], 0);
	ck_assert_int_eq(rcs[1], 0);
	ck_assert_int_eq(rcs[2], TH_EBUSY);
	ck_assert_int_eq(rcs[3], TH_ESTATE);
	ck_assert_int_eq(rcs[4], TH_ENOTFOUND);
	ck_assert_int_eq(job_of(q).status, TH_JOB_CANCELLED);
	ck_assert_int_eq(job_of(held).status, TH_JOB_CANCELLED);
	ck_assert_int_eq(job_of(run).status, TH_JOB_PROCESSING);
	ck_assert_int_eq(job_of(failed).status, TH_JOB_ERROR);
	assert_counts();
	/* retry: the cancelled and the failed queued again, the running one refused */
	uint64_t r[] = {q, run, failed};
	ck_assert_int_eq(th_store_change(st, TH_CHANGE_RETRY, r, 3, rcs), 0);
	ck_assert_int_eq(rcs[0], 0);
	ck_assert_int_eq(rcs[1], TH_ESTATE);
	ck_assert_int_eq(rcs[2], 0);
	ck_assert_int_eq(job_of(q).status, TH_JOB_QUEUED);
	ck_assert_int_eq(job_of(failed).status, TH_JOB_QUEUED);
	assert_counts();
	/* remove: finished jobs only, gone with their bytes */
	uint64_t d[] = {q, held};
	ck_assert_int_eq(th_store_change(st, TH_CHANGE_REMOVE, d, 2, rcs), 0);
	ck_assert_int_eq(rcs[0], TH_ESTATE);
	ck_assert_int_eq(rcs[1], 0);
	th_job j;
	void *data;
	size_t len;
	ck_assert_int_eq(th_store_get(st, held, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_blob(st, held, TH_BLOB_INPUT, &data, &len), TH_ENOTFOUND);
	ck_assert_int_eq(th_store_get(st, q, &j), 0);
	assert_counts();
	uint64_t n;
	ck_assert_int_eq(th_store_finished_since(st, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(th_store_change(st, (th_change)9, d, 2, rcs), TH_EINVAL);
}
END_TEST

/* Writes of every kind in one call: in order, each refusal its own, in one transaction
 * where the backend has the call for it. */
/* Adds in a row in one th_store_writes (a group commit's): each gets its own jobs' ids, in
 * order, and a unique key taken by an add before it in the same transaction gives that
 * job's id. */
START_TEST(adds_in_a_row)
{
	open_backend(_i);
	th_store_new w0[2] = {{.task = "echo"}, {.task = "echo", .unique = "u"}},
		     w1[2] = {{.task = "echo", .unique = "u"}, {.task = "sleep"}},
		     w2[1] = {{.task = "echo", .queue = "q"}};
	uint64_t i0[2] = {0}, i1[2] = {0}, i2[1] = {0};
	bool e0[2] = {true, true}, e1[2] = {false, true};
	th_store_write w[] = {
		{.kind = TH_WRITE_ADD, .jobs = w0, .n = 2, .ids = i0, .existed = e0},
		{.kind = TH_WRITE_ADD, .jobs = w1, .n = 2, .ids = i1, .existed = e1},
		{.kind = TH_WRITE_ADD, .jobs = w2, .n = 1, .ids = i2},
	};
	uint64_t commits;
	th_store_writes(st, w, 3, &commits);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(w[i].rc, 0);
	ck_assert_uint_eq(commits, backends[_i]->writes ? 1 : 3);
	ck_assert(!e0[0] && !e0[1]);
	ck_assert(e1[0] && !e1[1]);
	ck_assert_uint_eq(i1[0], i0[1]);
	ck_assert_uint_lt(i0[0], i0[1]);
	ck_assert_uint_lt(i0[1], i1[1]);
	ck_assert_uint_lt(i1[1], i2[0]);
	ck_assert_str_eq(job_of(i1[1]).task, "sleep");
	ck_assert_str_eq(job_of(i2[0]).queue, "q");
	uint64_t counts[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_store_count(st, counts), 0);
	ck_assert_uint_eq(counts[TH_JOB_QUEUED], 4);
}
END_TEST

START_TEST(writes_in_order)
{
	open_backend(_i);
	uint64_t held = add((th_store_new){.hold = true});
	uint64_t run = add((th_store_new){.queue = "mail"});
	uint64_t cron = add((th_store_new){.cron = "every 1h"});
	uint64_t ids[2] = {0}, bad_id = 0;
	ck_assert_uint_eq(claim(&me, "mail", 1, ids, 60 * SEC), 1);
	th_store_new two[2] = {{.task = "echo"}, {.task = "echo", .hold = true}},
		     bad = {.task = "echo", .cron = "nonsense"};
	th_store_write w[] = {
		{.kind = TH_WRITE_ADD, .jobs = two, .n = 2, .ids = ids},
		{.kind = TH_WRITE_START, .id = held},
		{.kind = TH_WRITE_START, .id = held}, /* queued by the one before */
		{.kind = TH_WRITE_CANCEL, .id = run}, /* running: asked to stop */
		{.kind = TH_WRITE_RETRY, .id = 999},
		{.kind = TH_WRITE_CRON, .id = cron, .spec = "0 3 * * *", .catchup = -1,
		 .paused = -1},
		{.kind = TH_WRITE_CRON, .id = cron, .catchup = -1, .paused = 1},
		{.kind = TH_WRITE_PAUSE_QUEUE, .queue = "mail", .paused = 1},
		{.kind = TH_WRITE_ADD, .jobs = &bad, .n = 1, .ids = &bad_id},
		{.kind = TH_WRITE_CANCEL, .id = held},
	};
	int want[] = {0, 0, TH_ESTATE, TH_EBUSY, TH_ENOTFOUND, 0, 0, 0, TH_EINVAL, 0};
	uint64_t commits;
	th_store_writes(st, w, 10, &commits);
	for (int i = 0; i < 10; i++)
		ck_assert_msg(w[i].rc == want[i], "write %d: %s, expected %s", i,
			      th_strerror(w[i].rc), th_strerror(want[i]));
	ck_assert_uint_eq(commits, backends[_i]->writes ? 1 : 10);
	ck_assert_uint_eq(ids[0], cron + 1);
	ck_assert_uint_eq(ids[1], cron + 2);
	ck_assert_int_eq(job_of(ids[0]).status, TH_JOB_QUEUED);
	ck_assert_int_eq(job_of(ids[1]).status, TH_JOB_HELD);
	ck_assert_int_eq(job_of(held).status, TH_JOB_CANCELLED);
	ck_assert_int_eq(job_of(run).status, TH_JOB_PROCESSING);
	bool yes = false;
	ck_assert_int_eq(th_store_cancel_requested(st, &run, 1, &yes), 0);
	ck_assert(yes);
	ck_assert(job_of(cron).flags & TH_JOB_CRON_PAUSED);
	size_t len;
	char *spec = blob(cron, TH_BLOB_CRON, &len);
	ck_assert_str_eq(spec, "0 3 * * *");
	free(spec);
	ck_assert_int_eq(th_store_queue_paused(st, "mail", &yes), 0);
	ck_assert(yes);
	assert_counts();
}
END_TEST

struct paged {
	uint64_t ids[2000];
	size_t n, stop; /* stop after this many (0: never) */
};

static int page_job(const th_job *j, void *ud)
{
	struct paged *p = ud;
	p->ids[p->n++] = j->id;
	return p->stop && p->n == p->stop;
}

/* A list of some statuses gives, in id order both ways and from any cursor, what a
 * walk of every job filtered by status does: past a chunk (256) too. */
START_TEST(lists_by_status)
{
	open_backend(_i);
	th_store_new n[700];
	for (int i = 0; i < 700; i++)
		n[i] = (th_store_new){.task = "echo", .hold = i % 3 == 0, .queue = i % 2 ? "b" : NULL};
	uint64_t ids[700];
	ck_assert_int_eq(th_store_add(st, n, 700, ids, NULL), 0);
	for (int i = 0; i < 700; i += 7)
		ck_assert_int_eq(th_store_cancel(st, ids[i]), 0);
	unsigned masks[] = {1u << TH_JOB_HELD, 1u << TH_JOB_QUEUED | 1u << TH_JOB_CANCELLED,
			    1u << TH_JOB_ERROR};
	for (size_t m = 0; m < sizeof(masks) / sizeof(masks[0]); m++) {
		for (int rev = 0; rev < 2; rev++) {
			uint64_t froms[] = {0, 100, 351, 699, 700};
			for (size_t f = 0; f < sizeof(froms) / sizeof(froms[0]); f++) {
				static struct paged all, some;
				memset(&all, 0, sizeof(all));
				memset(&some, 0, sizeof(some));
				ck_assert_int_eq(th_store_list(st, ~0u, froms[f], rev, page_job, &all), 0);
				size_t want = 0;
				for (size_t i = 0; i < all.n; i++) {
					th_job j = job_of(all.ids[i]);
					if (masks[m] & (1u << j.status))
						all.ids[want++] = all.ids[i];
				}
				ck_assert_int_eq(th_store_list(st, masks[m], froms[f], rev, page_job,
							       &some), 0);
				ck_assert_uint_eq(some.n, want);
				for (size_t i = 0; i < want; i++)
					ck_assert_uint_eq(some.ids[i], all.ids[i]);
			}
		}
	}
	/* a page: stops where told */
	static struct paged p;
	memset(&p, 0, sizeof(p));
	p.stop = 3;
	ck_assert_int_eq(th_store_list(st, 1u << TH_JOB_HELD, 3, false, page_job, &p), 0);
	ck_assert_uint_eq(p.n, 3);
	ck_assert_uint_eq(p.ids[0], 4);
	ck_assert_uint_eq(p.ids[1], 7);
	ck_assert_uint_eq(p.ids[2], 10);
}
END_TEST

static th_host_rec host_rec(const th_owner *o, const char *name, int64_t started_us,
			    int64_t heartbeat_us, uint32_t running)
{
	th_host_rec h = {.owner = *o};
	h.info.instance = o->instance;
	h.info.pid = o->pid;
	snprintf(h.info.name, sizeof(h.info.name), "%s", name);
	snprintf(h.info.strategy, sizeof(h.info.strategy), "default: multi, mail: process");
	h.info.workers = 6;
	h.info.running = running;
	h.info.started_us = started_us;
	h.info.heartbeat_us = heartbeat_us;
	h.info.lease_us = 30 * SEC;
	return h;
}

static th_host_info *hosts_at(th_coord *c, int64_t now, size_t n)
{
	th_host_info *h;
	size_t got;
	ck_assert_int_eq(th_coord_hosts(c, now, &h, &got), 0);
	ck_assert_uint_eq(got, n);
	return h;
}

/* The hosts' records through the store's coordination: each host's replaced at its
 * heartbeat and seen by every reader, oldest start first; gone past its lease (or, where
 * the coordination can tell, when its process died), forgotten an hour after, removed. */
START_TEST(hosts_records)
{
	open_backend(_i);
	th_coord *c;
	ck_assert_int_eq(th_store_coord_open(st, &c), 0);
	int64_t t = 1800000000 * SEC;
	free(hosts_at(c, t, 0));
	th_owner alive, other = {.instance = 0x2222, .pid = 2};
	th_owner_self(&alive);
	th_host_rec a = host_rec(&alive, "alpha", t - 5 * SEC, t, 2);
	th_host_rec b = host_rec(&other, "beta.example", t - 60 * SEC, t - 40 * SEC, 0);
	ck_assert_int_eq(th_coord_host_put(c, &a), 0);
	ck_assert_int_eq(th_coord_host_put(c, &b), 0);
	th_host_info *h = hosts_at(c, t, 2);
	ck_assert_uint_eq(h[0].instance, 0x2222);
	ck_assert_str_eq(h[0].name, "beta.example");
	ck_assert(h[0].gone); /* 40 s without a heartbeat, its lease 30 s */
	ck_assert_uint_eq(h[1].instance, alive.instance);
	ck_assert_uint_eq(h[1].pid, alive.pid);
	ck_assert_str_eq(h[1].name, "alpha");
	ck_assert_str_eq(h[1].strategy, "default: multi, mail: process");
	ck_assert_uint_eq(h[1].workers, 6);
	ck_assert_uint_eq(h[1].running, 2);
	ck_assert_int_eq(h[1].started_us, t - 5 * SEC);
	ck_assert_int_eq(h[1].heartbeat_us, t);
	ck_assert_int_eq(h[1].lease_us, 30 * SEC);
	ck_assert(!h[1].gone);
	free(h);
	/* the next heartbeat replaces the record */
	a = host_rec(&alive, "alpha", t - 5 * SEC, t + 10 * SEC, 3);
	ck_assert_int_eq(th_coord_host_put(c, &a), 0);
	h = hosts_at(c, t + 10 * SEC, 2);
	ck_assert_uint_eq(h[1].running, 3);
	ck_assert_int_eq(h[1].heartbeat_us, t + 10 * SEC);
	free(h);
	/* an hour on: the host silent for over an hour is forgotten, the other one gone */
	h = hosts_at(c, t + 3601 * SEC, 1);
	ck_assert_uint_eq(h[0].instance, alive.instance);
	ck_assert(h[0].gone);
	free(h);
	free(hosts_at(c, t, 1)); /* removed for good */
	/* a host that stops removes its record; none to remove is no error */
	ck_assert_int_eq(th_coord_host_remove(c, &alive), 0);
	ck_assert_int_eq(th_coord_host_remove(c, &alive), 0);
	free(hosts_at(c, t, 0));
	if (backends[_i] != &th_store_pg) {
		/* on one machine, a host whose process died is gone at once */
		th_owner dead = alive;
		dead.instance++;
		dead.pid = 0x3ffffff0; /* past pid_max: no such process */
		th_host_rec d = host_rec(&dead, "alpha", t, t, 1);
		ck_assert_int_eq(th_coord_host_put(c, &d), 0);
		h = hosts_at(c, t, 1);
		ck_assert(h[0].gone);
		free(h);
	}
	th_coord_close(c);
}
END_TEST

/* ---- PostgreSQL alone ---- */

static int sockopt(PGconn *conn, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	ck_assert_int_eq(getsockopt(PQsocket(conn), level, name, &v, &len), 0);
	return v;
}

/* A connection's TCP keepalives and tcp_user_timeout come from the lease (a silent
 * connection noticed within it), unless the connection string sets them. */
START_TEST(pg_timeouts_follow_the_lease)
{
	const char *port = strstr(getenv("TASKHOST_TEST_PG"), "port=");
	ck_assert_ptr_nonnull(port);
	char tcp[256], own[320];
	snprintf(tcp, sizeof(tcp), "host=127.0.0.1 %.*s user=postgres dbname=postgres",
		 (int)strcspn(port, " "), port);
	struct {
		const char *conninfo;
		int64_t lease_us;
		int idle, interval, count, user_timeout_ms;
	} cases[] = {
		{tcp, 5 * SEC, 1, 1, 2, 3333},       /* 1 + 2 * 1 s < 5 s */
		{tcp, 30 * SEC, 10, 5, 2, 20000},    /* 10 + 2 * 5 s < 30 s */
		{tcp, 600 * SEC, 10, 5, 2, 20000},   /* never longer than with a 30 s lease */
		{tcp, 0, 10, 5, 2, 20000},           /* no lease known */
		{own, 5 * SEC, 7, 1, 2, 1500},       /* what the user set stays */
	};
	snprintf(own, sizeof(own), "%s keepalives_idle=7 tcp_user_timeout=1500", tcp);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PGconn *conn;
		ck_assert_int_eq(th_store_pg_connect(cases[i].conninfo, "the test's server",
						     cases[i].lease_us, NULL, &conn), 0);
		ck_assert_int_eq(sockopt(conn, SOL_SOCKET, SO_KEEPALIVE), 1);
		ck_assert_int_eq(sockopt(conn, IPPROTO_TCP, TCP_KEEPIDLE), cases[i].idle);
		ck_assert_int_eq(sockopt(conn, IPPROTO_TCP, TCP_KEEPINTVL), cases[i].interval);
		ck_assert_int_eq(sockopt(conn, IPPROTO_TCP, TCP_KEEPCNT), cases[i].count);
		ck_assert_int_eq(sockopt(conn, IPPROTO_TCP, TCP_USER_TIMEOUT),
				 cases[i].user_timeout_ms);
		PQfinish(conn);
	}
}
END_TEST

/* A caller that tries to connect again and again is told of the failure once, and of
 * the connection once it is back. */
START_TEST(pg_connect_failures_logged_once)
{
	const char *good = getenv("TASKHOST_TEST_PG");
	const char *bad = "host=127.0.0.1 port=1 user=postgres dbname=postgres";
	bool down = false;
	PGconn *conn;
	tu_capture_start();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(th_store_pg_connect(bad, "nowhere", SEC, &down, &conn), TH_EIO);
	ck_assert(down);
	char **m = tu_captured("store");
	ck_assert_uint_eq(tu_strv_len(m), 1);
	ck_assert_ptr_nonnull(strstr(m[0], "postgresql store nowhere: cannot connect: "));
	ck_assert_ptr_nonnull(strstr(m[0], "(trying again; said once until connected)"));
	tu_strv_free(m);
	ck_assert_int_eq(th_store_pg_connect(good, "here", SEC, &down, &conn), 0);
	ck_assert(!down);
	PQfinish(conn);
	ck_assert(tu_captured_has("store", "postgresql store here: connected again", NULL));
	/* without `down`, each failure is said */
	tu_capture_clear();
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(th_store_pg_connect(bad, "nowhere", SEC, NULL, &conn), TH_EIO);
	m = tu_captured("store");
	ck_assert_uint_eq(tu_strv_len(m), 2);
	tu_strv_free(m);
	tu_capture_stop();
}
END_TEST

Suite *conformance_suite(void);
Suite *conformance_suite(void)
{
	Suite *s = suite_create("conformance");
	TCase *tc = tcase_create("backends");
	/* on PostgreSQL, lists_by_status reads 700 jobs 30 times over, one round trip
	 * each: about 5 s, past check's default 4 s, and several times that under TSan */
	tcase_set_timeout(tc, CONFORMANCE_TIMEOUT_S);
	tcase_add_checked_fixture(tc, setup, teardown);
	int n = nbackends();
	tcase_add_loop_test(tc, add_get_blob, 0, n);
	tcase_add_loop_test(tc, bytes_and_names_round_trip, 0, n);
	tcase_add_loop_test(tc, big_bytes_in_several_statements, 0, n);
	tcase_add_loop_test(tc, unique_keys, 0, n);
	tcase_add_loop_test(tc, claims_in_order_fenced, 0, n);
	tcase_add_loop_test(tc, changes_and_refusals, 0, n);
	tcase_add_loop_test(tc, queue_pause, 0, n);
	tcase_add_loop_test(tc, delays_and_cron, 0, n);
	tcase_add_loop_test(tc, leases_recovery, 0, n);
	tcase_add_loop_test(tc, confirm_same_claims, 0, n);
	tcase_add_loop_test(tc, counts_follow_every_change, 0, n);
	tcase_add_loop_test(tc, lists_by_status, 0, n);
	tcase_add_loop_test(tc, minutes_count_what_happened, 0, n);
	tcase_add_loop_test(tc, changes_of_many, 0, n);
	tcase_add_loop_test(tc, hosts_records, 0, n);
	tcase_add_loop_test(tc, writes_in_order, 0, n);
	tcase_add_loop_test(tc, adds_in_a_row, 0, n);
	suite_add_tcase(s, tc);
	if (getenv("TASKHOST_TEST_PG")) {
		TCase *pg = tcase_create("postgresql");
		tcase_add_test(pg, pg_timeouts_follow_the_lease);
		tcase_add_test(pg, pg_connect_failures_logged_once);
		suite_add_tcase(s, pg);
	}
	return s;
}
