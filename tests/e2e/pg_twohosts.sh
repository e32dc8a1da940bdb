#!/bin/sh
# End to end: two hosts (each with its own data dir) on one PostgreSQL store
# ($TASKHOST_TEST_PG; skipped without one) share 40 jobs; one is stopped, then killed,
# while it runs some. The other takes those back once their lease ran out and runs
# them: every job completes, and only the jobs the killed host held ran twice. Each
# host sees the other in GET /v1/hosts; the killed one shows as gone once its lease
# ran out, and a host that stops cleanly removes its row.
. "$(dirname "$0")/lib.sh"

pg_database th_e2e2_$$
DB=$PGNAME

cp "$FIXTURES/fx_good.so" "$W/plugins/"
runs="$W/runs"
# both hosts migrate at start: one does, under the advisory lock
write_config "store = postgresql:$TASKHOST_TEST_PG dbname=$DB" "migrate = true" \
	"lease_time = 2s" "data_dir = ./a" -- "max_threads = 2" "wait_time = 0.5"
cp "$CFG" "$W/a.ini"
sed 's|^data_dir = ./a|data_dir = ./b|' "$W/a.ini" >"$W/b.ini"

CFG="$W/a.ini"
start_host "$W/a.log"
a=$HOST_PID
CFG="$W/b.ini"
start_host "$W/b.log"
b=$HOST_PID

hosts_seen() {
	curl -s --unix-socket "$W/$1/api.sock" http://x/v1/hosts |
		jq -r '[.hosts[] | "\(.pid) \(.gone)"] | join(",")'
}
same "GET /v1/hosts on host a: both hosts" "$(hosts_seen a)" "$a false,$b false"
same "and on host b" "$(hosts_seen b)" "$a false,$b false"

i=0
while [ $i -lt 40 ]; do
	echo "$runs 600"
	i=$((i + 1))
done | "$TASKHOST" -c "$CFG" add fx_record --lines >/dev/null
same "40 jobs added" "$(sql 'SELECT count(*) FROM taskhost.jobs')" 40

held_by_a() {
	[ "$(sql "SELECT count(*) FROM taskhost.jobs WHERE status = 2 AND owner_pid = $a")" -gt 0 ]
}
check "host a runs jobs" wait_until 20 held_by_a
kill -STOP "$a"
held=$(sql "SELECT id FROM taskhost.jobs WHERE status = 2 AND owner_pid = $a ORDER BY id" | tr '\n' ' ')
kill -KILL "$a"
kill -CONT "$a" 2>/dev/null
wait "$a" 2>/dev/null
check "it held some when killed" [ -n "$held" ]

th wait $(seq 1 40) --timeout 60
expect "all 40 completed" 0
a_gone() { [ "$(hosts_seen b)" = "$a true,$b false" ]; }
check "the killed host is gone from the hosts once its lease (2 s) ran out" wait_until 10 a_gone
# the table gone from under the host: 503, and the log says why
sql "ALTER TABLE taskhost.hosts RENAME TO hosts_away" >/dev/null
same "GET /v1/hosts without the table: 503" \
	"$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$W/b/api.sock" http://x/v1/hosts)" 503
check "the log names the table and the cause" \
	grep -q 'reading taskhost.hosts: .*relation "taskhost.hosts" does not exist' "$W/b.log"
sql "ALTER TABLE taskhost.hosts_away RENAME TO hosts" >/dev/null
stop_host "$b"
same "host b stopped cleanly" "$host_rc" 0
same "and removed its row; the killed host's stays" \
	"$(sql "SELECT string_agg(pid::text, ',') FROM taskhost.hosts")" "$a"

for id in $held; do
	check "job $id, held by the killed host, was taken back by lease" \
		grep -q "job $id: lease expired (attempt 1 of 3): queued again" "$W/b.log"
	same "job $id: its second attempt completed" \
		"$(sql "SELECT status || '/' || attempts FROM taskhost.jobs WHERE id = $id")" 3/2
done
twice=$(sort -n "$runs" | uniq -d | tr '\n' ' ')
check "only jobs the killed host held ran twice ($twice; held: $held)" \
	sh -c 'for id in $1; do case " $2 " in *" $id "*) ;; *) exit 1 ;; esac; done' - "$twice" "$held"
same "every job ran" "$(sort -n "$runs" | uniq | wc -l | tr -d ' ')" 40
same "the others ran once" "$(sql 'SELECT count(*) FROM taskhost.jobs WHERE status = 3 AND attempts = 1')" \
	$((40 - $(echo $held | wc -w)))
check "the schema was made once" [ "$(grep -c 'schema taskhost migrated' "$W/a.log" "$W/b.log" | awk -F: '{s += $2} END {print s}')" = 1 ]

finish
