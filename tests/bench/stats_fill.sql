-- The PostgreSQL store of scripts/bench's stats rows, filled directly: :finished completed
-- jobs (finished an hour ago, a microsecond apart) with ids 1.., then :queued queued ones;
-- the counts' triggers count them as any insert is counted. Then vacuumed, as autovacuum
-- would have it after a while.
\set ON_ERROR_STOP on
INSERT INTO taskhost.jobs (status, task, max_attempts, attempts, added_us, started_us, finished_us)
SELECT 3, 'noop', 1, 1, t, t, t + 1
FROM (SELECT (extract(epoch FROM now()) * 1e6)::bigint - 3600000000 + g AS t
      FROM generate_series(1, :finished) g) s;
INSERT INTO taskhost.jobs (status, task, max_attempts, added_us)
SELECT 1, 'noop', 1, (extract(epoch FROM now()) * 1e6)::bigint FROM generate_series(1, :queued);
VACUUM ANALYZE taskhost.jobs;
