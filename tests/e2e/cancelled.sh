#!/bin/sh
# End to end: a cancel asked while a job runs survives the death of its host. The job
# runs in a worker process and ignores the cancel; its host is killed with SIGKILL; the
# next host's recovery ends the job cancelled and does not run it again (each run of the
# task appends a line to a file: one line, however many hosts started). On PostgreSQL
# (pg_shared.sh) the next host takes the job back once the dead one's 2 s lease ran out.
. "$(dirname "$0")/lib.sh"

cp "$FIXTURES/fx_good.so" "$W/plugins/"
# kill_grace long enough that the worker is not killed for ignoring the cancel
write_config "max_attempts = 5" "lease_time = 2s" -- "strategy = process" "max_workers = 1" "kill_grace = 1h"
runs="$W/runs"
: >"$runs"
lines() { wc -l <"$runs" | tr -d ' '; }
started() { [ "$(lines)" -ge 1 ]; }
status_is() { [ "$("$TASKHOST" -c "$CFG" status "$1" 2>/dev/null)" = "$2" ]; }

start_host "$W/host1.log"
th add fx_record "$runs hang"
id=$out
check "the job started" wait_until 20 started
th cancel "$id"
expect "cancel of the running job is asked" 0
same "it is asked, not done" "$out" "cancel requested: job $id ends cancelled when its task returns"
th status "$id"
same "still processing: the task ignores cancels" "$out" processing
kill -KILL "$HOST_PID"
wait "$HOST_PID" 2>/dev/null

th add echo after
after=$out
start_host "$W/host2.log"
check "the next host ends it cancelled" wait_until 20 status_is "$id" cancelled
check "a job added meanwhile runs" wait_until 20 status_is "$after" completed
same "the task never ran again" "$(lines)" 1
th status "$id" --json
check "one attempt counted" sh -c 'echo "$1" | grep -q "\"attempts\": 1,"' - "$out"
check "the log says why" grep -q "job $id: cancelled while running ($DIED before its task returned)" "$W/host2.log"
stop_host "$HOST_PID"
same "the host stopped cleanly" "$host_rc" 0
finish
