#!/bin/sh
# End to end: taskhost started with stdin, stdout or stderr closed. The descriptors it
# opens next (LMDB's lock file among them) must not become 0-2: what it prints goes
# nowhere, the data dir's files stay as they were, and a closed stdin is no input.
. "$(dirname "$0")/lib.sh"

LOCK="$W/var/lock.mdb"

# lock_has TEXT: the lock file holds TEXT (what a command printed into it)
lock_has() {
	grep -a -q -e "$1" "$LOCK"
}

write_config
th add echo first
same "a job before the host runs" "$out" 1
start_host

"$TASKHOST" -c "$CFG" list --limit 0 >&- 2>"$W/stderr"
rc=$?
err=$(cat "$W/stderr")
expect "list with stdout closed" 0 ""
check "the listing is not in the lock file" sh -c '! grep -a -q "STATUS" "$1"' - "$LOCK"

"$TASKHOST" -c "$CFG" add nosuchtask x 2>&-
same "add of an unknown task with stderr closed still fails" "$?" 1
check "its error is not in the lock file" sh -c '! grep -a -q "unknown task" "$1"' - "$LOCK"

"$TASKHOST" -c "$CFG" status 1 >&- 2>&- <&-
same "status with every standard descriptor closed" "$?" 0

"$TASKHOST" -c "$CFG" add echo - <&- >"$W/out" 2>"$W/stderr"
rc=$?
err=$(cat "$W/stderr")
expect "add - with stdin closed" 1 "taskhost: cannot read the input from stdin: stdin is closed"
same "prints no id" "$(cat "$W/out")" ""
"$TASKHOST" -c "$CFG" add echo --lines <&- >"$W/out" 2>"$W/stderr"
rc=$?
err=$(cat "$W/stderr")
expect "add --lines with stdin closed" 1 "taskhost: add: --lines reads stdin, and stdin is closed: no job added"
"$TASKHOST" -c "$CFG" cron add echo - --schedule "every 1h" <&- >"$W/out" 2>"$W/stderr"
rc=$?
err=$(cat "$W/stderr")
expect "cron add - with stdin closed" 1 "taskhost: cannot read the input from stdin: stdin is closed"
th status 2
expect "none of them added a job" 1 "taskhost: unknown job id 2"

# the data dir still works: the running host takes a new job, the old one is there
th add echo after
same "add after all that" "$out" 2
th wait 1 2 --timeout 60
expect "the host ran both jobs" 0
th result 2
same "with the right result" "$out" after
stop_host "$HOST_PID"
same "the host stopped cleanly" "$host_rc" 0

# hosts with their standard descriptors closed, in-process and with worker processes
# (whose runner inherits them)
for strategy in multi process; do
	mkdir "$W/$strategy"
	write_config "data_dir = ./$strategy/var" -- "strategy = $strategy"
	"$TASKHOST" -c "$CFG" run <&- >&- 2>&- &
	pid=$!
	HOSTS="$HOSTS $pid"
	th add echo "from $strategy"
	id=$out
	th wait "$id" --timeout 60
	expect "$strategy: a host started with 0-2 closed runs jobs" 0
	th result "$id"
	same "$strategy: its result" "$out" "from $strategy"
	kill -TERM "$pid"
	wait "$pid"
	same "$strategy: it stopped cleanly" "$?" 0
	check "$strategy: its log is not in the lock file" sh -c \
		'! grep -a -q -e "started" -e "stopping" "$1"' - "$W/$strategy/var/lock.mdb"
	th list --json
	check "$strategy: the data dir reads back" sh -c 'echo "$1" | grep -q "\"status\": \"completed\""' - "$out"
done

finish
