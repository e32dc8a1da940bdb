#!/bin/sh
# End to end, the database goes silent: host a reaches the PostgreSQL server through a
# TCP proxy on loopback (tcpcut.py) that the test freezes for longer than the lease:
# every connection stays open and nothing comes back, which TCP does not notice (the
# proxy acknowledges what it is sent). Host a sees that its statement gets no answer and
# a new connection none either, cuts the connection (one log line), its leases lapse and
# it claims nothing, and its API answers 503; host b, straight to the server, takes
# back host a's jobs. Thawed,
# host a reconnects and carries on: every job completes, only jobs host b took back
# from host a ran twice.
. "$(dirname "$0")/lib.sh"

pg_database th_e2e_silent_$$
LEASE=5
if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then JOBS=300; else JOBS=800; fi
MORE=200 # added while host a is cut off
port=$(echo "$TASKHOST_TEST_PG" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
user=$(echo "$TASKHOST_TEST_PG" | sed -n 's/.*user=\([^ ]*\).*/\1/p')

trap 'kill $proxy 2>/dev/null; cleanup; psql "$TASKHOST_TEST_PG" -X -q -c "DROP DATABASE IF EXISTS $PGNAME WITH (FORCE)" >/dev/null 2>&1' EXIT
pg_proxied_hosts "$port" "$user" "$PGNAME"
seq 1 $JOBS | sed 's/.*/runs 60/' | "$TASKHOST" -c "$CFG" add fx_record --lines --max-attempts 100 >/dev/null
same "$JOBS jobs added" "$(sql 'SELECT count(*) FROM taskhost.jobs')" $JOBS
runs_a() { [ -f "$W/a/runs" ] && wc -l <"$W/a/runs" || echo 0; }
grows_a() { [ "$(runs_a)" -gt "$1" ]; }
done_count() { sql 'SELECT count(*) FROM taskhost.jobs WHERE status = 3'; }
all_done() { [ "$(done_count)" = $JOBS ]; }
check "host a runs jobs" wait_until 20 grows_a 0

silent="no answer from the server in"
lapse="claims no jobs until they are renewed"
again="leases renewed: claiming again"
kill -HUP $proxy
check "host a saw that the server gave no answer" wait_until $((LEASE + 10)) grep -q "$silent" "$W/a.log"
check "host a logged that its leases lapsed" wait_until $((LEASE + 10)) grep -q "$lapse" "$W/a.log"
taken() { grep -q "lease expired" "$W/b.log"; }
check "host b took back host a's jobs" wait_until $((LEASE + 10)) taken
# an API call to host a meanwhile is answered 503 within a bound: its callers take turns
# to try to reconnect, and in the pause after a failed try they fail at once
code=$(curl -s -o "$W/a.body" -w '%{http_code}' --max-time 15 --unix-socket "$W/a/var/api.sock" \
	http://x/v1/jobs/1)
same "an API call to host a while the server is silent: 503 within 15 s" "$code" 503
check "saying unhealthy" jq -e '.error.code == "unhealthy"' "$W/a.body"
# its wake-up and heartbeat connection (the heartbeat beats each third of the lease)
# too: cut by the same deadline, not left waiting for the thaw
hb_silent="wake-up and heartbeat connection lost: no answer"
check "host a's heartbeat connection was cut" wait_until $((LEASE + 10)) grep -q "$hb_silent" "$W/a.log"
frozen_ran=$(runs_a)
# more jobs, so that some are left for host a after the thaw however fast host b was
seq 1 $MORE | sed 's/.*/runs 60/' | "$TASKHOST" -c "$CFG" add fx_record --lines --max-attempts 100 >/dev/null
JOBS=$((JOBS + MORE))
kill -USR2 $proxy
a_resumed() { grows_a "$frozen_ran" || all_done; }
check "host a carries on after the thaw, or nothing was left for it" wait_until 30 a_resumed
check "host a logged that it claims again" wait_until 30 grep -q "$again" "$W/a.log"
same "host a logged the silence once" "$(grep -c "$silent" "$W/a.log")" 1
same "host a logged the heartbeat connection's silence once" "$(grep -c "$hb_silent" "$W/a.log")" 1
check "every job completed" wait_until 90 all_done
all_done || sql 'SELECT id, status, attempts FROM taskhost.jobs WHERE status <> 3' | sed 's/^/# not completed: /'
stop_host $a
same "host a stopped cleanly" "$host_rc" 0
stop_host $b
same "host b stopped cleanly" "$host_rc" 0
same "every job ran" "$(cat "$W"/a/runs "$W"/b/runs | sort -n | uniq | wc -l | tr -d ' ')" $JOBS
twice=$(cat "$W"/a/runs "$W"/b/runs | sort -n | uniq -d)
echo "# $(echo $twice | wc -w) jobs ran twice"
took=$(sed -n 's/.*job \([0-9]*\): lease expired.*/\1/p' "$W/b.log")
bad=""
for id in $twice; do
	{ grep -q "^$id\$" "$W/a/runs" && echo "$took" | grep -q "^$id\$"; } || bad="$bad $id"
done
same "only jobs host b took back from host a ran twice" "$bad" ""
counts_agree "after the silence the counts agree with a recount of the rows"
finish
