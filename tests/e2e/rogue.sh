#!/bin/sh
# End to end: tasks that misuse their process instead of crashing it. In-process
# (multi): a forked child that returns into the host exits at once, a ctx used after
# the task returned is refused, exit() takes the host down and recovery counts the
# attempt. Worker processes (process): a child a task leaves running dies with its
# worker, when the worker is replaced, when the host stops and when it is SIGKILLed.
. "$(dirname "$0")/lib.sh"

cp "$FIXTURES/fx_rogue.so" "$W/plugins/"
# exit() runs the exit handlers, the leak checker's too: not what is tested here
ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
export ASAN_OPTIONS

# alive PID: the process exists and is not a zombie
alive() {
	_st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$_st" ] && [ "$_st" != Z ]
}

gone() {
	! alive "$1"
}

# grandchild: runs a rogue_grandchild job; $gc is the pid of the child it left
grandchild() {
	th add rogue_grandchild
	_id=$out
	th wait "$_id" --timeout 60
	th result "$_id"
	gc=$out
}

# ---- in-process ----
write_config -- "strategy = multi" "max_threads = 2"
start_host
th add rogue_fork
id=$out
th wait "$id" --timeout 60
expect "a forked child returning into the host: the job completes" 0
th result "$id"
same "the child exited at once, with the task's return" "$out" "child exited with 0"
check "the log says what the child did" grep -q "a process forked by job $id (task rogue_fork) returned from the task into the host: it exits" "$log"

th add rogue_late
late=$out
th wait "$late" --timeout 60
expect "a task that leaves a thread holding its ctx completes" 0
th add rogue_late_report
id=$out
th wait "$id" --timeout 60
th result "$id"
same "every host function refuses the ctx after the run" "$out" "set_result=-1 cancelled=1 input_len=0 job_id=0 attempt=0"
check "logged once, naming the task" sh -c '[ "$(grep -c "task rogue_late used its context after returning" "$1")" = 1 ]' - "$log"
th result "$late"
same "the late result did not reach the job" "$out" ""
check "the host still runs" kill -0 "$HOST_PID"
stop_host "$HOST_PID"
same "and stops cleanly" "$host_rc" 0

# exit(): the host goes, the next host takes the job back with the attempt counted
th add rogue_exit --max-attempts 2
id=$out
for n in 1 2; do
	"$TASKHOST" -c "$CFG" run 2>"$W/exit$n.log" &
	pid=$!
	HOSTS="$HOSTS $pid"
	wait "$pid"
	same "exit() in a task: host $n exits with the task's status" "$?" 7
	check "host $n logs which job called exit()" grep -q "job=$id task=rogue_exit: the task called exit(): process $pid exits with it" "$W/exit$n.log"
done
start_host "$W/exit3.log"
th wait "$id" --timeout 60
th error "$id"
# "while starting it" when exit() came before its claim's commit ended
case $out in
"host died while "*", attempts exhausted (2 of 2)") ok "out of attempts, it ends in error: $out" ;;
*) not_ok "out of attempts, it ends in error: got '$out'" ;;
esac
th add echo after
id=$out
th wait "$id" --timeout 60
expect "the third host runs jobs" 0
stop_host "$HOST_PID"

# ---- worker processes ----
mkdir "$W/proc"
write_config "data_dir = ./proc/var" -- "strategy = process" "max_workers = 1"
start_host "$W/proc.log"
th add rogue_fork
id=$out
th wait "$id" --timeout 60
th result "$id"
same "process: a forked child returning into the worker exits" "$out" "child exited with 0"
grandchild
check "process: the task's child runs while its worker does" alive "$gc"
stop_host "$HOST_PID"
check "process: it is gone after the host stops" wait_until 20 gone "$gc"

start_host "$W/proc2.log"
grandchild
check "process: another one runs" alive "$gc"
kill -KILL "$HOST_PID"
wait "$HOST_PID" 2>/dev/null
check "process: it is gone after a SIGKILL of the host" wait_until 20 gone "$gc"

write_config "data_dir = ./proc/var" -- "strategy = process" "max_workers = 1" "worker_max_jobs = 1"
start_host "$W/proc3.log"
grandchild
check "process: it is gone when its worker is replaced" wait_until 20 gone "$gc"
th add echo still
id=$out
th wait "$id" --timeout 60
expect "process: the next job gets a new worker" 0
stop_host "$HOST_PID"
same "process: the host stops cleanly" "$host_rc" 0

finish
