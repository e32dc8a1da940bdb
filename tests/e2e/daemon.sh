#!/bin/sh
# End to end: the host as a daemon. Prompt start of jobs added from another process,
# SIGTERM while jobs run, the grace period running out, SIGHUP with a new plugin,
# JSON log lines, jobs added while no host runs. On PostgreSQL (pg_shared.sh) a job left
# running is taken back once the stopped host's 2 s lease ran out.
. "$(dirname "$0")/lib.sh"

# ---- jobs added before the host starts run when it starts ----
write_config -- "wait_time = 3600"
th add echo early
start_host
th wait 1 --timeout 30
expect "a job added while no host ran runs at start" 0

# ---- a job added from another process starts at once, not after wait_time ----
# the host idles with a wait time of an hour: only the wake-up can start the job
th add echo prompt
id=$out
th wait "$id" --timeout 20
expect "a job added to an idle host starts without waiting wait_time" 0
th result "$id"
same "its result" "$out" prompt
stop_host "$HOST_PID"
same "SIGTERM on an idle host exits 0" "$host_rc" 0
check "the log says it stopped" grep -q "host: stopped" "$log"

# ---- SIGTERM while jobs run: running ones finish, queued ones stay queued (4 s each:
# long enough that no thread frees up between seeing two run and the SIGTERM) ----
write_config -- "max_threads = 2" "wait_time = 0.2"
start_host "$W/term.log"
for i in 1 2 3; do
	th add sleep "{\"seconds\": 4, \"id\": $i}"
done
first=$((id + 1))
running() {
	n=0
	for j in "$@"; do
		[ "$("$TASKHOST" -c "$CFG" status "$j")" = processing ] && n=$((n + 1))
	done
	[ $n -eq 2 ]
}
check "two jobs run" wait_until 20 running "$first" $((first + 1))
kill -TERM "$HOST_PID"
check "the host says it waits for the running jobs" \
	wait_until 20 grep -q "stopping: no new jobs" "$W/term.log"
# while it waits, it sleeps: a second of its time, its CPU time (in clock ticks) not
# near a whole second's, which a dispatcher looping until the workers end would use
cpu() { awk '{print $14 + $15}' "/proc/$HOST_PID/stat"; }
ticks=$(getconf CLK_TCK)
before=$(cpu)
sleep 1 # the window measured, not a wait for a condition
used=$(($(cpu) - before))
check "waiting for its running jobs, the host used $used of $ticks ticks in a second" \
	[ "$used" -lt $((ticks / 4)) ]
wait "$HOST_PID"
host_rc=$?
same "SIGTERM with running jobs exits 0" "$host_rc" 0
th status "$first"
same "a running job finished before exit" "$out" completed
th status $((first + 1))
same "the other running job too" "$out" completed
th status $((first + 2))
same "the queued job is still queued" "$out" queued
check "the log names the stop" grep -q "stopping: no new jobs; waiting up to 20 s for 2 running jobs" "$W/term.log"
check "tasks' log lines carry job and task" grep -q "info  sleep job=$first task=sleep: Job: 1" "$W/term.log"

# ---- the grace period runs out: running jobs are asked to stop and go back to the queue
write_config "grace_period = 200ms" -- "max_threads = 2"
start_host "$W/grace.log"
th add sleep '{"seconds": 30, "id": 9}'
long=$out
wait_until 20 sh -c '[ "$("$1" -c "$2" status "$3")" = processing ]' - "$TASKHOST" "$CFG" "$long"
start=$(date +%s)
stop_host "$HOST_PID"
same "exit 0 when the grace period is over" "$host_rc" 0
check "it did not wait for the 30 s job" [ $(($(date +%s) - start)) -lt 15 ]
# the job left queued by the SIGTERM test above runs too: two are asked to stop
check "the log says so" grep -q "grace period over: asking 2 running jobs to stop" "$W/grace.log"
check "a job that stops when asked is queued again" grep -q "job=$long task=sleep: interrupted after .* by the host stopping: queued again" "$W/grace.log"
th status "$long"
same "it is queued, to run again" "$out" queued
th cancel "$long"

# ---- a job that ignores the request is left running; the next host recovers it ----
cp "$FIXTURES/fx_crash.so" "$W/plugins/"
write_config "grace_period = 200ms" "max_attempts = 1" "lease_time = 2s" -- "max_threads = 2" \
	"kill_grace = 300ms"
start_host "$W/hang.log"
th add crash_hang
hang=$out
wait_until 20 sh -c '[ "$("$1" -c "$2" status "$3")" = processing ]' - "$TASKHOST" "$CFG" "$hang"
stop_host "$HOST_PID"
same "exit 0 with a job that would not stop" "$host_rc" 0
check "the log says it is left to recovery" grep -q "1 job still running, left to recovery" "$W/hang.log"
th status "$hang"
same "it stays processing while no host runs" "$out" processing
start_host "$W/recover.log"
check "the next host takes it back" wait_until 20 sh -c '[ "$("$1" -c "$2" status "$3")" = error ]' - "$TASKHOST" "$CFG" "$hang"
th error "$hang"
same "with why" "$out" "$DIED, attempts exhausted (1 of 1)"
stop_host "$HOST_PID"
rm "$W/plugins/fx_crash.so"

# ---- SIGHUP loads a plugin dropped in while the host runs ----
write_config -- "wait_time = 0.5"
start_host "$W/hup.log"
th add fx_other
expect "not there yet" 1 "taskhost: add: unknown task 'fx_other': no plugin in $W/plugins provides it (see 'taskhost tasks')"
cp "$FIXTURES/fx_other.so" "$W/plugins/"
kill -HUP "$HOST_PID"
check "the log says what was added" wait_until 20 grep -q "reload: 1 plugin added, 0 refused" "$W/hup.log"
check "and which file" grep -q "plugins/fx_other.so: loaded plugin fx_other 0.1" "$W/hup.log"
th add fx_other
id=$out
th wait "$id" --timeout 20
expect "the new task runs" 0
th result "$id"
same "its result" "$out" other
printf 'not a plugin' >"$W/plugins/broken.so"
kill -HUP "$HOST_PID"
check "a broken plugin is refused on reload" wait_until 20 grep -q "reload: 0 plugins added, 1 refused" "$W/hup.log"
check "with the reason" grep -q "plugins/broken.so: refused: not an ELF file" "$W/hup.log"
th add echo still-running
th wait "$out" --timeout 20
expect "and the host goes on" 0
stop_host "$HOST_PID"
rm "$W/plugins/broken.so" "$W/plugins/fx_other.so"

# ---- two hosts on one data dir are allowed ----
start_host "$W/a.log"
a=$HOST_PID
start_host "$W/b.log"
b=$HOST_PID
th add echo both
th wait "$out" --timeout 20
expect "with two hosts running a job runs" 0
stop_host "$a"
stop_host "$b"

# ---- JSON log lines ----
write_config "log_format = json" "log_level = debug"
start_host "$W/json.log"
th add echo x
th wait "$out" --timeout 20
stop_host "$HOST_PID"
check "every log line is a JSON object" sh -c '! grep -v "^{\"time\":\"[-0-9T:.]*Z\",\"level\":\"[a-z]*\",\"source\":\"[a-z]*\",\"msg\":\".*\"" "$1"' - "$W/json.log"
check "job lines carry job and task" grep -q '"msg":"completed in [0-9.]* ms","job":[0-9]*,"task":"echo"}' "$W/json.log"

# ---- run refuses what it cannot use ----
printf '[processor]\nstrategy = simple\nmax_threads = lots\n' >"$CFG"
th run
expect "run with a bad config" 2 "taskhost: $CFG:3: bad value 'lots' for max_threads in [processor]: expected a whole number from 1 to 1024"

finish
