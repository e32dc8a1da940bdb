#!/bin/sh
# End to end, the database goes away: two hosts on a PostgreSQL server of this test's own
# (scripts/pg-cluster), host a through a TCP proxy on loopback that the test cuts
# (tcpcut.py), host b straight to the server, run fx_record jobs while a's connection is
# cut for less than the lease, the server is restarted, and a's connection is cut for
# more than the lease. Every job completes, none is lost, no job runs twice before the
# long cut and after it only jobs host b took back from host a; host a logs once that
# its leases lapsed and claims nothing until it renewed them, and both hosts carry on.
. "$(dirname "$0")/lib.sh"

if [ -z "${TASKHOST_TEST_PG:-}" ]; then
	echo "RESULT: 0 passed, 0 failed (skipped: TASKHOST_TEST_PG is not set)"
	exit 77
fi
cluster="$(cd "$(dirname "$0")/../.." && pwd)/scripts/pg-cluster"
LEASE=5 # seconds: a short cut and a server restart on a loaded machine stay inside it
if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then JOBS=400; else JOBS=1200; fi

# a server of its own: restarting it must not cut the other tests' connections
pgdir="$W/pg"
mkdir "$pgdir"
conn=$("$cluster" start "$pgdir") || exit 1
trap 'cleanup_outage' EXIT
cleanup_outage() {
	[ -n "${proxy:-}" ] && kill "$proxy" 2>/dev/null
	"$cluster" remove "$pgdir" >/dev/null 2>&1
	cleanup
}
port=$(echo "$conn" | sed 's/.*port=\([0-9]*\).*/\1/')
PGDB="$conn"
sql "CREATE DATABASE th" || exit 1
PGDB="host=127.0.0.1 port=$port user=postgres dbname=th"

pg_proxied_hosts "$port" postgres th
seq 1 $JOBS | sed 's/.*/runs 60/' | "$TASKHOST" -c "$CFG" add fx_record --lines --max-attempts 100 >/dev/null
same "$JOBS jobs added" "$(sql 'SELECT count(*) FROM taskhost.jobs')" $JOBS

runs_a() { [ -f "$W/a/runs" ] && wc -l <"$W/a/runs" || echo 0; }
grows_a() { [ "$(runs_a)" -gt "$1" ]; }
dupes() { cat "$W"/a/runs "$W"/b/runs 2>/dev/null | sort -n | uniq -d | wc -l | tr -d ' '; }
done_count() { sql 'SELECT count(*) FROM taskhost.jobs WHERE status = 3'; }
check "host a runs jobs" wait_until 20 grows_a 0

# a short cut: less than the lease
kill -USR1 $proxy
sleep 1 # the length of the cut is the point of the step
kill -USR2 $proxy
n=$(runs_a)
check "host a carries on after a short cut" wait_until 20 grows_a "$n"
check "host a logged the lost connection" grep -q -i "connection\|cannot connect" "$W/a.log"

# the server restarted under both hosts
"$cluster" stop "$pgdir" >/dev/null
"$cluster" start "$pgdir" >/dev/null
n=$(runs_a)
check "host a carries on after the server restarted" wait_until 30 grows_a "$n"
kill -0 $b
check "host b runs after the server restarted" [ $? = 0 ]
same "no job ran twice before the long cut" "$(dupes)" 0
same "no outcome refused before the long cut" \
	"$(grep -c 'outcome of a stale claim refused' "$W/a.log" "$W/b.log" | awk -F: '{s += $2} END {print s}')" 0

# a long cut: more than the lease; host b takes back what host a held, and host a, its
# leases lapsed, claims nothing until it has renewed them once connected again
lapse="claims no jobs until they are renewed"
again="leases renewed: claiming again"
lapses() { grep -c "$lapse" "$W/a.log"; }
lapses_before=$(lapses)
lapsed() { [ "$(lapses)" -gt "$lapses_before" ]; }
before=$(done_count)
kill -USR1 $proxy
check "host a logged that its leases lapsed" wait_until $((LEASE + 10)) lapsed
sleep 2 # the length of the cut past the lapse is the point of the step
kill -USR2 $proxy
cut_ran=$(runs_a) # what host a ran until the cut ended: all claimed before it began
n=$cut_ran
all_done() { [ "$(done_count)" = $JOBS ]; }
# host b may have run every job left meanwhile (a sanitizer build's host a reconnects
# slowly): then there is nothing for host a to carry on with
a_resumed() { grows_a "$n" || all_done; }
check "host a carries on after a long cut, or nothing was left for it" wait_until 30 a_resumed
check "some jobs were left when the long cut ended" [ "$before" -lt $JOBS ]
check "host a logged that it claims again" wait_until 30 grep -q "$again" "$W/a.log"
same "host a logged the lapse once" "$(lapses)" $((lapses_before + 1))
check "every job completed" wait_until 90 all_done
# a failed cycle is logged once an outage (its one processor tries every 100 ms): never
# twice without a line between saying the cycles work again
same "failed cycles logged once per outage" "$(grep -o -E 'outcome\(s\) and claiming failed|claiming work again' \
	"$W/a.log" | uniq -c | awk '$1 > 1 && /failed/' | wc -l | tr -d ' ')" 0
all_done || sql 'SELECT id, status, attempts FROM taskhost.jobs WHERE status <> 3' | sed 's/^/# not completed: /'
# host a idle: a cut that ends before it writes again (its next heartbeat is a third of
# the lease away) leaves it a closed connection, which a read of the hosts replaces
hosts_listed() {
	curl -s -f --unix-socket "$W/a/var/api.sock" http://x/v1/hosts |
		python3 -c 'import json, sys; sys.exit(len(json.load(sys.stdin)["hosts"]) != 2)' 2>/dev/null
}
kill -USR1 $proxy
kill -USR2 $proxy
check "host a lists the hosts at once after a cut, on a new connection" hosts_listed
stop_host $a
same "host a stopped cleanly" "$host_rc" 0
stop_host $b
same "host b stopped cleanly" "$host_rc" 0
same "every job ran" "$(cat "$W"/a/runs "$W"/b/runs | sort -n | uniq | wc -l | tr -d ' ')" $JOBS
twice=$(cat "$W"/a/runs "$W"/b/runs | sort -n | uniq -d)
echo "# $(echo $twice | wc -w) jobs ran twice"
bad=""
for id in $twice; do
	grep -q "^$id\$" "$W/a/runs" || bad="$bad $id"
done
same "only jobs host a ran (the cut host) ran twice" "$bad" ""
# the jobs that ran twice are those host b took back from host a
taken=$(sed -n 's/.*job \([0-9]*\): lease expired.*/\1/p' "$W/b.log")
bad=""
for id in $twice; do
	echo "$taken" | grep -q "^$id\$" || bad="$bad $id"
done
same "every job that ran twice was taken back" "$bad" ""
# the jobs host a ran after the long cut: none claimed between the lapse of its leases
# and their renewal (their rows keep the start of their last run, host a's; a claim
# made as the cut began may start after it, once its COMMIT's answer is known)
log_us() { sql "SELECT (extract(epoch FROM '$(grep "$1" "$W/a.log" | tail -n 1 | cut -d' ' -f1)'::timestamptz) * 1e6)::bigint"; }
lapse_us=$(log_us "$lapse")
again_us=$(log_us "$again")
after=$(tail -n +$((cut_ran + 1)) "$W/a/runs" | tr '\n' ',' | sed 's/,$//')
early=0
[ -n "$after" ] && early=$(sql "SELECT count(*) FROM taskhost.jobs WHERE id IN ($after) AND \
	started_us >= $lapse_us AND started_us < $again_us")
same "host a claimed nothing after the long cut before it renewed its leases" "$early" 0
counts_agree "after the cuts and the restart the counts agree with a recount of the rows"
finish
