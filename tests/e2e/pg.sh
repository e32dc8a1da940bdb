#!/bin/sh
# End to end on a PostgreSQL store ($TASKHOST_TEST_PG, the server scripts/check starts;
# skipped without one), in a database of its own: migrate on a fresh and on a newer
# schema, jobs added by the CLI run with the right statuses and results, a bad URL
# named in the message, transactional enqueue with taskhost.add (a rolled back add
# never runs, a committed one wakes an idle host at once), connections cut by the
# server while a job runs, deltas of the counts and minutes folded by an idle host, the
# password in no message.
. "$(dirname "$0")/lib.sh"

pg_database th_e2e_$$
DB=$PGNAME
SECRET=s3cret-pw-$$
port=$(echo "$TASKHOST_TEST_PG" | sed -n 's/.*port=\([0-9]*\).*/\1/p')

# the URL carries a password (the server trusts loopback, so any is taken)
URL="postgresql://postgres:$SECRET@127.0.0.1:$port/$DB"
# wait_time is long: only a notification wakes the host within the test's deadlines
write_config "store = $URL" -- "max_threads = 2" "wait_time = 60s"

th add echo early
expect "an add before migrate is refused" 2
case $err in
*"schema taskhost is at version 0, this taskhost needs 5: run 'taskhost migrate'"*) ok "it says to migrate" ;;
*) not_ok "it says to migrate: $err" ;;
esac
th migrate
expect "migrate on a fresh database" 0
same "it created the schema" "$out" "user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: schema taskhost created at version 5"
th migrate
same "migrate again: up to date" "$out" "user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: schema taskhost at version 5: up to date"

th add echo hello
same "add prints the id" "$out" 1
th add fail boom
th add echo later --delay 1s
start_host "$W/host.log"
host=$HOST_PID
th wait 1 2 3 --timeout 30
expect "wait: one of them failed" 1
th status 1
same "echo completed" "$out" completed
th result 1
same "its result" "$out" hello
th status 2
same "fail ended in error" "$out" error
th error 2
same "its error" "$out" boom
th status 3
same "the delayed job completed" "$out" completed
same "the rows say the same" "$(sql "SELECT id || ':' || status FROM taskhost.jobs ORDER BY id" | tr '\n' ' ')" "1:3 2:4 3:3 "
# on PostgreSQL two cycles of a processor run at once: the multi strategy's helper is there
check "the processor has its helper thread" sh -c 'cat /proc/$1/task/*/comm | grep -qx th-helper' - "$host"
th check
expect "check: consistent" 0
same "check names the store, its password as ***" "$out" \
	"user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: 3 jobs, every index consistent: clean"

# transactional enqueue
sql "BEGIN; SELECT taskhost.add('echo', 'rolled back'); ROLLBACK;" >/dev/null
id=$(sql "BEGIN; SELECT taskhost.add('echo', 'committed'); COMMIT;")
same "a committed add gets the next id" "$id" 5
check "the committed job ran at once, the host idle before (wait_time 60s)" \
	wait_until 5 sh -c '[ "$("$1" -c "$2" status 5)" = completed ]' - "$TASKHOST" "$CFG"
th result 5
same "with its input" "$out" committed
th status 4
expect "the rolled back add never was" 1 "taskhost: unknown job id 4"
th stats --json
check "stats: 3 completed, 1 error" sh -c 'echo "$1" | grep -q "\"completed\": 3" && echo "$1" | grep -q "\"error\": 1"' - "$out"
# the server cuts the host's connections while a job runs: the host reconnects, records
# the job's outcome, and hears of new jobs again
th add sleep '{"seconds": 1.5}'
slow=$out
check "a slow job runs" wait_until 10 sh -c '[ "$("$1" -c "$2" status "$3")" = processing ]' \
	- "$TASKHOST" "$CFG" "$slow"
same "the server cuts the host's connections" "$(sql "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()")" t
th wait "$slow" --timeout 30
expect "the slow job completed, recorded over a new connection" 0
th add echo "after the cut"
after=$out
th wait "$after" --timeout 10
expect "a job added after the cut runs at once" 0
same "the host said once that its connection was lost" "$(grep -c 'connection lost' "$W/host.log")" 1
check "and that it is back" grep -q 'connected again' "$W/host.log"
# many deltas and nobody reading them (no stats, no dashboard): the host folds them
kept="SELECT queue || ':' || status || ':' || sum(n) FROM taskhost.counts GROUP BY queue, status HAVING sum(n) <> 0 ORDER BY 1"
before=$(sql "$kept" | tr '\n' ' ')
minute="floor(extract(epoch FROM now()) / 60)::bigint"
sql "INSERT INTO taskhost.counts SELECT '', 3, 1 FROM generate_series(1, 700)
UNION ALL SELECT '', 3, -1 FROM generate_series(1, 700);
INSERT INTO taskhost.minutes SELECT $minute, 'tidy', 1, 0, 0 FROM generate_series(1, 1100)" >/dev/null
# sql_is SQL VALUE: the query's answer is VALUE (for wait_until)
sql_is() { [ "$(sql "$1")" = "$2" ]; }
check "the idle host folds 1400 deltas of the counts that no read folded" \
	wait_until 10 sql_is "SELECT count(*) < 20 FROM taskhost.counts" t
same "into the same counts" "$(sql "$kept" | tr '\n' ' ')" "$before"
check "and 1100 of the minutes into one row" \
	wait_until 10 sql_is "SELECT count(*) || ':' || sum(added) FROM taskhost.minutes WHERE queue = 'tidy'" 1:1100
stop_host "$host"
same "the host stopped cleanly" "$host_rc" 0

# a newer schema
sql "UPDATE taskhost.meta SET value = '99' WHERE key = 'schema_version'"
th migrate
expect "migrate on a newer schema" 2 "taskhost: cannot open the store: user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: schema taskhost is at version 99, newer than this taskhost knows (5): upgrade taskhost"
sql "UPDATE taskhost.meta SET value = '5' WHERE key = 'schema_version'"
# a store of version 3 (no hosts' records, no ready function) migrates to 5
sql "DROP TABLE taskhost.hosts; DROP FUNCTION taskhost.ready(text, bigint); UPDATE taskhost.meta SET value = '3' WHERE key = 'schema_version'" >/dev/null
th migrate
same "migrate from version 3" "$out" "user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: schema taskhost migrated from version 3 to 5"
same "it made the hosts' table" "$(sql "SELECT to_regclass('taskhost.hosts') IS NOT NULL")" t

# the counts the writes keep agree with a recount of the rows
recount="SELECT queue || ':' || status || ':' || count(*) FROM taskhost.jobs GROUP BY queue, status ORDER BY 1"
kept="SELECT queue || ':' || status || ':' || sum(n) FROM taskhost.counts GROUP BY queue, status HAVING sum(n) <> 0 ORDER BY 1"
same "the kept counts are the recount" "$(sql "$kept" | tr '\n' ' ')" "$(sql "$recount" | tr '\n' ' ')"
# a store of version 1 (no counts): migrate counts the jobs there
sql "DROP TRIGGER jobs_count_added ON taskhost.jobs; DROP TRIGGER jobs_count_removed ON taskhost.jobs;
DROP TRIGGER jobs_count_changed ON taskhost.jobs; DROP FUNCTION taskhost.count_added();
DROP FUNCTION taskhost.count_removed(); DROP FUNCTION taskhost.count_changed();
DROP TABLE taskhost.counts; DROP TABLE taskhost.minutes; DROP FUNCTION taskhost.minutes_prune(bigint);
DROP TABLE taskhost.hosts; DROP FUNCTION taskhost.ready(text, bigint);
UPDATE taskhost.meta SET value = '1' WHERE key = 'schema_version'" >/dev/null
th stats --json
expect "a version 1 store is refused" 2
th migrate
same "migrate from version 1" "$out" "user=postgres password=*** dbname=$DB host=127.0.0.1 port=$port: schema taskhost migrated from version 1 to 5"
same "the counts after it are the recount" "$(sql "$kept" | tr '\n' ' ')" "$(sql "$recount" | tr '\n' ' ')"
th stats --json
check "stats: the same 5 completed, 1 error" sh -c 'echo "$1" | grep -q "\"completed\": 5" && echo "$1" | grep -q "\"error\": 1"' - "$out"
# many deltas (what many writes leave): a read sums them and folds them into a row each
sql "INSERT INTO taskhost.counts SELECT '', 3, 1 FROM generate_series(1, 700)
UNION ALL SELECT '', 3, -1 FROM generate_series(1, 700)" >/dev/null
th stats --json
check "stats over 1400 deltas: still 5 completed" sh -c 'echo "$1" | grep -q "\"completed\": 5"' - "$out"
same "the read folded them" "$(sql "SELECT count(*) <= 2 FROM taskhost.counts")" t
same "into the recount" "$(sql "$kept" | tr '\n' ' ')" "$(sql "$recount" | tr '\n' ' ')"
# check compares the kept counts with a recount of the rows
sql "INSERT INTO taskhost.counts VALUES ('', 3, 2), ('mail', 1, 1)" >/dev/null
th check
expect "check: counts that are not the recount" 1
check "check names each queue and status that differs" sh -c 'echo "$1" | grep -q "the counts: queue \"default\", completed: 7 kept, 5 in the records" &&
	echo "$1" | grep -q "the counts: queue \"mail\", queued: 1 kept, 0 in the records"' - "$out$err"
sql "INSERT INTO taskhost.counts VALUES ('', 3, -2), ('mail', 1, -1)" >/dev/null
th check
expect "check: the counts agree again" 0

# a bad URL: the message names it (without the password)
TASKHOST_STORE="postgresql://postgres:$SECRET@127.0.0.1:1/$DB" th list
expect "no server at the URL" 1
case $err in
"taskhost: cannot open the store: postgresql store user=postgres password=*** dbname=$DB host=127.0.0.1 port=1: cannot connect: "*) ok "the message names the URL" ;;
*) not_ok "the message names the URL: $err" ;;
esac
TASKHOST_STORE="postgresql:nosuchoption=1" th list
expect "a connection string that does not parse" 2
case $err in
*"bad connection string"*) ok "it says so" ;;
*) not_ok "it says so: $err" ;;
esac
check "the password is in no log or message" sh -c '! grep -r -q "$1" "$2"/*.log "$2"/stderr' - "$SECRET" "$W"


# migrations at once: three wait for the lock another session holds; once it lets go,
# one migrates and the two others find the schema made (none makes it again)
M=th_e2em_$$
psql "$TASKHOST_TEST_PG" -X -q -c "CREATE DATABASE $M" || exit 1
(
	echo "SELECT pg_advisory_lock(8386110886291403636);" # the migrations' lock
	while [ ! -e "$W/release" ]; do sleep 0.05; done
) | psql "$TASKHOST_TEST_PG dbname=$M" -X -q >/dev/null &
holder=$!
advisory() { # advisory GRANTED N: N advisory locks GRANTED (t or f) in the database
	[ "$(psql "$TASKHOST_TEST_PG dbname=$M" -X -A -t -c "SELECT count(*) FROM pg_locks WHERE \
		locktype = 'advisory' AND granted = '$1'")" = "$2" ]
}
check "a session holds the migrations' lock" wait_until 20 advisory t 1
for i in 1 2 3; do
	TASKHOST_STORE="postgresql:$TASKHOST_TEST_PG dbname=$M" "$TASKHOST" -c "$CFG" migrate \
		>"$W/m.$i.out" 2>"$W/m.$i.err" &
	eval "m_$i=\$!"
done
check "three migrations wait for the lock" wait_until 20 advisory f 3
touch "$W/release"
wait $holder
fails=0
for i in 1 2 3; do
	eval "wait \$m_$i" || { fails=$((fails + 1)); cat "$W/m.$i.err"; }
done
same "each of them succeeded" $fails 0
same "one of them made the schema, the others found it made" \
	"$(cat "$W"/m.*.out | sed 's/.*: schema/schema/' | sort | uniq -c | sed 's/^ *//' | tr '\n' ,)" \
	"2 schema taskhost at version 5: up to date,1 schema taskhost created at version 5,"
psql "$TASKHOST_TEST_PG" -X -q -c "DROP DATABASE $M WITH (FORCE)" >/dev/null

finish
