/* PostgreSQL in the peers benchmark (BP_PG: a libpq connection string, the postmaster's pid
 * in BP_PG_PID): one INSERT per add, a batched FOR UPDATE SKIP LOCKED claim, one UPDATE
 * completing a batch; consumers poll, backing off while the queue is empty. */
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchutil.h"
#include "peers.h"

/* Polls of an idle consumer: the pause after an empty claim starts here and doubles. */
#define POLL_MIN_US 100
#define POLL_MAX_US 1000
/* WAL segments to go through before measuring: more than min_wal_size (80 MB) keeps */
#define WARM_SEGMENTS 8

/* state: 0 available, 1 claimed, 2 completed; the partial index holds available jobs only */
static const char *const schema =
	"CREATE TABLE IF NOT EXISTS peers_jobs (id bigserial PRIMARY KEY, "
	"state smallint NOT NULL DEFAULT 0, payload text NOT NULL);"
	"CREATE INDEX IF NOT EXISTS peers_jobs_available ON peers_jobs (id) WHERE state = 0;"
	"TRUNCATE peers_jobs RESTART IDENTITY";
static const char *const add_sql = "INSERT INTO peers_jobs (payload) VALUES ($1)";
static const char *const claim_sql =
	"UPDATE peers_jobs SET state = 1 WHERE id IN (SELECT id FROM peers_jobs WHERE state = 0 "
	"ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING id, payload";
static const char *const complete_sql = "UPDATE peers_jobs SET state = 2 WHERE id = ANY($1)";
static const char *const fill_sql = "INSERT INTO peers_jobs (payload) "
				    "SELECT i || ' 0' FROM generate_series(0, $1::bigint - 1) AS i";

typedef struct pg_conn {
	PGconn *db;
	atomic_bool interrupted;
} pg_conn;

static void pg_close(void *conn)
{
	pg_conn *c = conn;
	if (c)
		PQfinish(c->db);
	free(c);
}

/* A connection whose commits wait for the disk in the durable class only. */
static pg_conn *pg_open(const bp_run *r)
{
	char info[4096];
	snprintf(info, sizeof(info),
		 "%s options='-c synchronous_commit=%s -c client_min_messages=warning'",
		 bu_env("BP_PG"), r->relaxed ? "off" : "on");
	pg_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->db = PQconnectdb(info);
	if (PQstatus(c->db) != CONNECTION_OK) {
		fprintf(stderr, "bench: postgresql: %s", PQerrorMessage(c->db));
		pg_close(c);
		return NULL;
	}
	return c;
}

/* Runs sql with text parameters; the result when it has the status wanted, else NULL. */
static PGresult *pg_exec(pg_conn *c, const char *sql, int n, const char *const *params,
			 ExecStatusType want)
{
	PGresult *res = n ? PQexecParams(c->db, sql, n, NULL, params, NULL, NULL, 0)
			  : PQexec(c->db, sql);
	if (PQresultStatus(res) == want)
		return res;
	if (!atomic_load(&c->interrupted))
		fprintf(stderr, "bench: postgresql: %s", PQerrorMessage(c->db));
	PQclear(res);
	return NULL;
}

static int pg_run(pg_conn *c, const char *sql, int n, const char *const *params)
{
	PGresult *res = pg_exec(c, sql, n, params, PGRES_COMMAND_OK);
	PQclear(res);
	return res ? 0 : -1;
}

/* A connection with the statement sql prepared as name. */
static pg_conn *pg_open_prepared(const bp_run *r, const char *name, const char *sql)
{
	pg_conn *c = pg_open(r);
	PGresult *res = c ? PQprepare(c->db, name, sql, 1, NULL) : NULL;
	if (c && PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench: postgresql: %s", PQerrorMessage(c->db));
		pg_close(c);
		c = NULL;
	}
	PQclear(res);
	return c;
}

/* A young cluster creates its WAL segments, writing each full of zeros (16 MiB) when it
 * starts using it; one that ran a while recycles old ones. Be the one that ran a while. */
static int pg_prepare(bp_run *r)
{
	pg_conn *c = pg_open(r);
	int rc = c ? pg_run(c, "CREATE TABLE IF NOT EXISTS peers_warm (x int)", 0, NULL) : -1;
	for (int i = 0; rc == 0 && i < WARM_SEGMENTS; i++) {
		PGresult *res = pg_exec(c, "INSERT INTO peers_warm VALUES (1); SELECT pg_switch_wal()",
					0, NULL, PGRES_TUPLES_OK);
		rc = res ? 0 : -1;
		PQclear(res);
	}
	if (rc == 0)
		rc = pg_run(c, "DROP TABLE peers_warm; CHECKPOINT", 0, NULL);
	pg_close(c);
	return rc;
}

static int pg_setup(bp_run *r)
{
	pg_conn *c = pg_open(r);
	if (!c || pg_run(c, schema, 0, NULL)) {
		pg_close(c);
		return -1;
	}
	r->state = c;
	return 0;
}

static void pg_teardown(bp_run *r)
{
	pg_close(r->state);
	r->state = NULL;
}

static int pg_fill(bp_run *r, size_t k)
{
	char n[32];
	const char *p[] = {n};
	snprintf(n, sizeof(n), "%zu", k);
	return pg_run(r->state, fill_sql, 1, p);
}

static void pg_settle(bp_run *r)
{
	pg_run(r->state, "CHECKPOINT", 0, NULL);
}

static int pg_check(bp_run *r, size_t n, char *why, size_t len)
{
	PGresult *res = pg_exec(r->state, "SELECT count(*), count(*) FILTER (WHERE state = 2) "
				"FROM peers_jobs", 0, NULL, PGRES_TUPLES_OK);
	if (!res) {
		snprintf(why, len, "could not count the jobs");
		return -1;
	}
	long long all = atoll(PQgetvalue(res, 0, 0)), done = atoll(PQgetvalue(res, 0, 1));
	PQclear(res);
	if (all != (long long)n || done != (long long)n) {
		snprintf(why, len, "%lld jobs, %lld completed, %zu expected", all, done, n);
		return -1;
	}
	return 0;
}

static void *pg_copen(bp_run *r)
{
	return pg_open_prepared(r, "claim", claim_sql);
}

static int pg_claim(void *conn, bp_job *jobs, size_t max, size_t *n)
{
	pg_conn *c = conn;
	char limit[32];
	const char *p[] = {limit};
	snprintf(limit, sizeof(limit), "%zu", max);
	for (long pause = POLL_MIN_US; !atomic_load(&c->interrupted);) {
		PGresult *res = PQexecPrepared(c->db, "claim", 1, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "bench: postgresql: claim: %s", PQerrorMessage(c->db));
			PQclear(res);
			return -1;
		}
		int rows = PQntuples(res);
		for (int i = 0; i < rows; i++) {
			size_t len = (size_t)PQgetlength(res, i, 1);
			if (len >= sizeof(jobs[i].payload)) {
				PQclear(res);
				return -1;
			}
			jobs[i].id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
			jobs[i].len = len;
			memcpy(jobs[i].payload, PQgetvalue(res, i, 1), len);
		}
		PQclear(res);
		if (rows) {
			*n = (size_t)rows;
			return 0;
		}
		struct timespec ts = {0, pause * 1000};
		nanosleep(&ts, NULL);
		pause = pause * 2 < POLL_MAX_US ? pause * 2 : POLL_MAX_US;
	}
	return -1;
}

static int pg_complete(void *conn, const bp_job *jobs, size_t n)
{
	char ids[BP_CLAIM_MAX * 24] = "{";
	size_t len = 1;
	for (size_t i = 0; i < n && len < sizeof(ids) - 24; i++)
		len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%llu", i ? "," : "",
					(unsigned long long)jobs[i].id);
	snprintf(ids + len, sizeof(ids) - len, "}");
	const char *p[] = {ids};
	PGresult *res = pg_exec(conn, complete_sql, 1, p, PGRES_COMMAND_OK);
	int rc = res && strtoull(PQcmdTuples(res), NULL, 10) == n ? 0 : -1;
	PQclear(res);
	return rc;
}

static void pg_interrupt(void *conn)
{
	atomic_store(&((pg_conn *)conn)->interrupted, true);
}

const bp_system bp_postgres = {
	.name = "PostgreSQL",
	.pid_env = "BP_PG_PID",
	.wake = "by polling, 0.1 ms after an empty claim doubling to 1 ms (LISTEN/NOTIFY would "
		"serialise the adding commits on the notify queue's lock)",
	.bytes_of = "the postmaster and its children, CHECKPOINT after the adds included",
	.config = {"`synchronous_commit = on`", "`synchronous_commit = off`"},
	.prepare = pg_prepare,
	.setup = pg_setup,
	.teardown = pg_teardown,
	.fill = pg_fill,
	.settle = pg_settle,
	.check = pg_check,
	.copen = pg_copen,
	.claim = pg_claim,
	.complete = pg_complete,
	.cinterrupt = pg_interrupt,
	.cclose = pg_close,
};

static void *pg_popen(bp_run *r)
{
	return pg_open_prepared(r, "add", add_sql);
}

static int pg_insert(void *conn, const char *payload, size_t len)
{
	pg_conn *c = conn;
	char buf[BP_PAYLOAD_MAX];
	snprintf(buf, sizeof(buf), "%.*s", (int)len, payload);
	const char *p[] = {buf};
	PGresult *res = PQexecPrepared(c->db, "add", 1, p, NULL, NULL, 0);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
	if (rc)
		fprintf(stderr, "bench: postgresql: add: %s", PQerrorMessage(c->db));
	PQclear(res);
	return rc;
}

const bp_adder bp_postgres_insert = {pg_popen, pg_insert, pg_close};

int bp_pg_exec(const char *db, const char *sql)
{
	char info[4096];
	snprintf(info, sizeof(info), "%s%s%s options='-c client_min_messages=warning'",
		 bu_env("BP_PG"), db ? " dbname=" : "", db ? db : "");
	pg_conn c = {.db = PQconnectdb(info)};
	int rc = -1;
	if (PQstatus(c.db) != CONNECTION_OK)
		fprintf(stderr, "bench: postgresql: %s", PQerrorMessage(c.db));
	else
		rc = pg_run(&c, sql, 0, NULL);
	PQfinish(c.db);
	return rc;
}
