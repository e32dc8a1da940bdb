/* The PostgreSQL backend's schema (store_pg_schema.h): the tables, indexes and SQL
 * functions of schema `taskhost`, one migration per version, and the check at open. */
#include "store/store_pg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "store/store_pg.h"

/* The whole schema of each version, as the change from the one before. Statuses are
 * job.h's values: 1 queued, 2 processing, 3..5 finished, 6 delayed, 7 held, 8 cron. */
static const char *const migrations[] = {
	/* 1 */
	"CREATE SCHEMA IF NOT EXISTS taskhost;"
	"CREATE TABLE taskhost.meta (key text PRIMARY KEY, value text NOT NULL);"
	"CREATE TABLE taskhost.jobs ("
	" id bigserial PRIMARY KEY, status smallint NOT NULL, task text NOT NULL,"
	" queue text NOT NULL DEFAULT '', priority integer NOT NULL DEFAULT 0,"
	" attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL,"
	" added_us bigint NOT NULL, started_us bigint NOT NULL DEFAULT 0,"
	" finished_us bigint NOT NULL DEFAULT 0, input_len bigint NOT NULL DEFAULT 0,"
	" result_len bigint NOT NULL DEFAULT 0, claim_gen bigint NOT NULL DEFAULT 0,"
	" owner bigint NOT NULL DEFAULT 0, owner_pid integer NOT NULL DEFAULT 0,"
	" flags integer NOT NULL DEFAULT 0, due_us bigint NOT NULL DEFAULT 0,"
	" timeout_ms bigint NOT NULL DEFAULT 0, backoff_ms bigint NOT NULL DEFAULT 0,"
	" parent bigint NOT NULL DEFAULT 0, last_run bigint NOT NULL DEFAULT 0,"
	" fires bigint NOT NULL DEFAULT 0, lease_until timestamptz,"
	" input bytea, result bytea, error bytea, errors bytea, cron text, unique_key bytea);"
	/* claims: the ready jobs of a queue in claim order */
	"CREATE INDEX jobs_ready ON taskhost.jobs (queue, priority DESC, id) WHERE status = 1;"
	"CREATE INDEX jobs_running ON taskhost.jobs (owner) WHERE status = 2;"
	"CREATE INDEX jobs_due ON taskhost.jobs (due_us) WHERE status IN (6, 8) AND due_us > 0;"
	"CREATE INDEX jobs_finished ON taskhost.jobs (finished_us) WHERE status IN (3, 4, 5);"
	"CREATE INDEX jobs_status ON taskhost.jobs (status, id);"
	/* a key is held while its job waits or runs */
	"CREATE UNIQUE INDEX jobs_unique ON taskhost.jobs (unique_key)"
	" WHERE unique_key IS NOT NULL AND status IN (1, 2, 6, 7, 8);"
	"CREATE TABLE taskhost.paused (queue text PRIMARY KEY);"
	"CREATE TABLE taskhost.progress (id bigint PRIMARY KEY, done double precision NOT NULL);"
	/* transactional enqueue: a job that exists if and only if the caller's transaction
	 * commits; the hosts hear of it at that commit (one notification per transaction) */
	"CREATE FUNCTION taskhost.add(task text, input bytea DEFAULT NULL, queue text DEFAULT '',"
	" priority integer DEFAULT 0, max_attempts integer DEFAULT 3,"
	" run_at timestamptz DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql AS $$"
	"DECLARE id bigint; now_us bigint := (extract(epoch FROM clock_timestamp()) * 1e6)::bigint;"
	" due bigint := coalesce((extract(epoch FROM run_at) * 1e6)::bigint, 0);"
	"BEGIN"
	" IF task IS NULL OR task !~ '^[!-~]{1,255}$' THEN"
	"  RAISE EXCEPTION 'taskhost.add: bad task name %', task; END IF;"
	" IF queue = 'default' THEN queue := ''; END IF;"
	" IF queue IS NULL OR queue !~ '^[A-Za-z0-9_.-]{0,64}$' THEN"
	"  RAISE EXCEPTION 'taskhost.add: bad queue name %', queue; END IF;"
	" IF max_attempts IS NULL OR max_attempts < 1 OR max_attempts > 1000 THEN"
	"  RAISE EXCEPTION 'taskhost.add: max_attempts must be from 1 to 1000'; END IF;"
	" INSERT INTO taskhost.jobs (status, task, queue, priority, max_attempts, added_us,"
	"  input_len, due_us, input)"
	" VALUES (CASE WHEN due > now_us THEN 6 ELSE 1 END, task, queue, priority, max_attempts,"
	"  now_us, coalesce(octet_length(input), 0), CASE WHEN due > now_us THEN due ELSE 0 END,"
	"  input) RETURNING jobs.id INTO id;"
	" PERFORM pg_notify('taskhost_wake', '0');"
	" RETURN id;"
	"END $$;",
	/* 2: the counts per queue and status, as deltas that every statement changing jobs
	 * appends in its own transaction (insert-only: writers never wait on each other for
	 * them); a read of the counts first folds them into one row per queue and status */
	"CREATE TABLE taskhost.counts (queue text NOT NULL, status smallint NOT NULL,"
	" n bigint NOT NULL);"
	"INSERT INTO taskhost.counts SELECT queue, status, count(*) FROM taskhost.jobs"
	" GROUP BY queue, status;"
	"CREATE FUNCTION taskhost.count_added() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN INSERT INTO taskhost.counts SELECT queue, status, count(*) FROM new_rows"
	" GROUP BY queue, status; RETURN NULL; END $$;"
	"CREATE FUNCTION taskhost.count_removed() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN INSERT INTO taskhost.counts SELECT queue, status, -count(*) FROM old_rows"
	" GROUP BY queue, status; RETURN NULL; END $$;"
	"CREATE FUNCTION taskhost.count_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
	"BEGIN INSERT INTO taskhost.counts SELECT queue, status, sum(d) FROM"
	" (SELECT queue, status, 1 AS d FROM new_rows"
	"  UNION ALL SELECT queue, status, -1 FROM old_rows) c"
	" GROUP BY queue, status HAVING sum(d) <> 0; RETURN NULL; END $$;"
	"CREATE TRIGGER jobs_count_added AFTER INSERT ON taskhost.jobs"
	" REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
	" EXECUTE FUNCTION taskhost.count_added();"
	"CREATE TRIGGER jobs_count_removed AFTER DELETE ON taskhost.jobs"
	" REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
	" EXECUTE FUNCTION taskhost.count_removed();"
	"CREATE TRIGGER jobs_count_changed AFTER UPDATE ON taskhost.jobs"
	" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"
	" EXECUTE FUNCTION taskhost.count_changed();",
	/* 3: the jobs added, completed and ended in error per minute and queue (minute:
	 * seconds since the epoch / 60, on the database's clock), insert-only deltas of the
	 * same triggers; a write that adds some first drops those past the hour (an index
	 * probe when there are none; rows another transaction holds are skipped, not waited
	 * for), and a read folds them as it folds the counts */
	"CREATE TABLE taskhost.minutes (minute bigint NOT NULL, queue text NOT NULL,"
	" added bigint NOT NULL DEFAULT 0, completed bigint NOT NULL DEFAULT 0,"
	" failed bigint NOT NULL DEFAULT 0);"
	"CREATE INDEX minutes_minute ON taskhost.minutes (minute);"
	"CREATE FUNCTION taskhost.minutes_prune(m bigint) RETURNS void LANGUAGE sql AS $$"
	" DELETE FROM taskhost.minutes WHERE ctid = ANY (ARRAY (SELECT ctid FROM taskhost.minutes"
	" WHERE minute <= m - 60 FOR UPDATE SKIP LOCKED)) $$;"
	"CREATE OR REPLACE FUNCTION taskhost.count_added() RETURNS trigger LANGUAGE plpgsql AS $$"
	"DECLARE m bigint := floor(extract(epoch FROM clock_timestamp()) / 60)::bigint;"
	"BEGIN INSERT INTO taskhost.counts SELECT queue, status, count(*) FROM new_rows"
	" GROUP BY queue, status;"
	" PERFORM taskhost.minutes_prune(m);"
	" INSERT INTO taskhost.minutes (minute, queue, added) SELECT m, queue, count(*)"
	" FROM new_rows GROUP BY queue; RETURN NULL; END $$;"
	"CREATE OR REPLACE FUNCTION taskhost.count_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
	"DECLARE m bigint;"
	"BEGIN INSERT INTO taskhost.counts SELECT queue, status, sum(d) FROM"
	" (SELECT queue, status, 1 AS d FROM new_rows"
	"  UNION ALL SELECT queue, status, -1 FROM old_rows) c"
	" GROUP BY queue, status HAVING sum(d) <> 0;"
	" IF EXISTS (SELECT 1 FROM new_rows WHERE status IN (3, 4)) THEN"
	"  m := floor(extract(epoch FROM clock_timestamp()) / 60)::bigint;"
	"  PERFORM taskhost.minutes_prune(m);"
	"  INSERT INTO taskhost.minutes (minute, queue, completed, failed)"
	"  SELECT m, n.queue, count(*) FILTER (WHERE n.status = 3),"
	"  count(*) FILTER (WHERE n.status = 4) FROM new_rows n JOIN old_rows o ON o.id = n.id"
	"  WHERE n.status IN (3, 4) AND o.status <> n.status GROUP BY n.queue;"
	" END IF; RETURN NULL; END $$;",
	/* 4: the hosts that process jobs, a row each, replaced at every heartbeat (the
	 * host's clock) and removed when the host stops */
	"CREATE TABLE taskhost.hosts (instance bigint PRIMARY KEY, pid integer NOT NULL,"
	" name text NOT NULL, strategy text NOT NULL, workers integer NOT NULL,"
	" running integer NOT NULL, started_us bigint NOT NULL, heartbeat_us bigint NOT NULL,"
	" lease_us bigint NOT NULL);",
	/* 5: a claim's read of a queue's ready jobs, in the jobs_ready index's order. Sorts
	 * are off in it: when the statistics are older than the queue (a burst of adds onto
	 * a table of finished jobs), the planner would read every ready job and sort them
	 * all, at each claim, where walking the index stops at the claim's LIMIT. PL/pgSQL
	 * keeps the plan from call to call in a session (an SQL function's is made anew) */
	"CREATE FUNCTION taskhost.ready(q text, n bigint) RETURNS SETOF taskhost.jobs"
	" LANGUAGE plpgsql SET enable_sort = off AS $$ BEGIN RETURN QUERY"
	" SELECT * FROM taskhost.jobs WHERE status = 1 AND queue = q AND NOT EXISTS"
	" (SELECT 1 FROM taskhost.paused p WHERE p.queue = q) ORDER BY priority DESC, id"
	" LIMIT n FOR UPDATE SKIP LOCKED; END $$;",
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))
#define MIGRATE_LOCK 0x7461736b686f7374LL /* "taskhost": one migration at a time */

int th_store_pg_schema_version(void)
{
	return SCHEMA_VERSION;
}

static int exec(PGconn *conn, const char *sql, const char *shown)
{
	PGresult *r = PQexec(conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	char m[TH_STORE_PG_MSG_MAX];
	if (!ok)
		th_log_error("store", "%s: migrating schema taskhost: %s", shown,
			     th_store_pg_message(conn, r, m));
	PQclear(r);
	return ok ? 0 : TH_EIO;
}

/* One value of a query's first row; NULL when it failed (logged) or gave none. */
static char *first_value(PGconn *conn, const char *sql, const char *shown, int *rc)
{
	PGresult *r = PQexec(conn, sql);
	char *v = NULL;
	char m[TH_STORE_PG_MSG_MAX];
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		th_log_error("store", "%s: reading the schema version: %s", shown,
			     th_store_pg_message(conn, r, m));
		*rc = TH_EIO;
	} else if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
		   !(v = strdup(PQgetvalue(r, 0, 0)))) {
		*rc = TH_ENOMEM;
	}
	PQclear(r);
	return v;
}

/* The version of the schema in the database; 0 when there is none. */
static int read_version(PGconn *conn, const char *shown, int *version)
{
	int rc = 0;
	*version = 0;
	char *t = first_value(conn, "SELECT to_regclass('taskhost.meta')", shown, &rc);
	if (!t)
		return rc;
	free(t);
	char *v = first_value(conn, "SELECT value FROM taskhost.meta WHERE key = "
			      "'schema_version'", shown, &rc);
	if (v)
		*version = atoi(v);
	free(v);
	return rc;
}

int th_store_pg_schema_migrate(PGconn *conn, bool allowed, const char *shown, int *from)
{
	int version, rc;
	if ((rc = read_version(conn, shown, &version)))
		return rc;
	if (from)
		*from = version;
	if (version > SCHEMA_VERSION) {
		th_log_error("store", "%s: schema taskhost is at version %d, newer than this "
			     "taskhost knows (%d): upgrade taskhost", shown, version, SCHEMA_VERSION);
		return TH_EFORMAT;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	if (!allowed) {
		th_log_error("store", "%s: schema taskhost is at version %d, this taskhost needs "
			     "%d: run 'taskhost migrate' (or set migrate = true in [host])", shown,
			     version, SCHEMA_VERSION);
		return TH_EFORMAT;
	}
	/* a session lock, taken before the transaction: a transaction that began before
	 * the wait would read the catalog as it was then (its cache is refreshed when a
	 * transaction begins, not when an advisory lock is granted), not find the schema
	 * another host made meanwhile and make it again */
	char lock[96], unlock[96];
	snprintf(lock, sizeof(lock), "SELECT pg_advisory_lock(%lld)", MIGRATE_LOCK);
	snprintf(unlock, sizeof(unlock), "SELECT pg_advisory_unlock(%lld)", MIGRATE_LOCK);
	if ((rc = exec(conn, lock, shown)))
		return rc;
	if ((rc = exec(conn, "BEGIN", shown))) {
		exec(conn, unlock, shown);
		return rc;
	}
	/* another host may have migrated while this one waited for the lock */
	if ((rc = read_version(conn, shown, &version)) || version > SCHEMA_VERSION) {
		exec(conn, "ROLLBACK", shown);
		exec(conn, unlock, shown);
		return rc ? rc : TH_EFORMAT;
	}
	if (from)
		*from = version;
	for (int v = version; v < SCHEMA_VERSION && rc == 0; v++)
		rc = exec(conn, migrations[v], shown);
	char set[160];
	snprintf(set, sizeof(set), "INSERT INTO taskhost.meta VALUES ('schema_version', '%d')"
		 " ON CONFLICT (key) DO UPDATE SET value = excluded.value", SCHEMA_VERSION);
	if (rc == 0 && (rc = exec(conn, set, shown)) == 0 && (rc = exec(conn, "COMMIT", shown)) == 0) {
		exec(conn, unlock, shown);
		if (version < SCHEMA_VERSION)
			th_log_info("store", "%s: schema taskhost migrated from version %d to %d",
				    shown, version, SCHEMA_VERSION);
		return 0;
	}
	exec(conn, "ROLLBACK", shown);
	exec(conn, unlock, shown);
	return rc;
}
