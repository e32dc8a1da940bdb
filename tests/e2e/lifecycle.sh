#!/bin/sh
# End to end: the job lifecycle from the command line. Delayed, timed and held jobs,
# priorities, named queues and pauses, unique keys, retries with backoff and the error
# history, timeouts, cancelling a running job, retry, cron jobs (with two hosts on one
# data dir: each fire time runs once), clean by age.
. "$(dirname "$0")/lib.sh"

cp "$FIXTURES/fx_good.so" "$W/plugins/"
write_config "max_attempts = 1" -- "max_threads = 4" "wait_time = 30" \
	"[queue mail]" "strategy = simple" "wait_time = 30"
start_host

# ---- delayed, at a time, held ----
th add fx_answer x --delay 1s
d=$out
th status "$d"
same "a delayed job waits" "$out" delayed
th add fx_answer x --at "$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)"
at=$out
th status "$at" --json
check "its due time is shown" sh -c 'echo "$1" | grep -q "\"due\": \"20"' - "$out"
th wait "$d" "$at" --timeout 30
expect "both run when due" 0
th add fx_answer x --hold
h=$out
th wait "$h" --timeout 1
expect "a held job does not run" 1 "taskhost: wait: timed out after 1 s: job $h is held"
th start "$h"
same "start queues it" "$out" "job $h queued"
th wait "$h" --timeout 30
expect "then it runs" 0
th start "$h"
expect "start of a finished job" 1 "taskhost: job $h is completed: only a held or delayed job can be started"
th add fx_answer x --at tomorrow
expect "a bad --at" 2 "taskhost: add: bad --at 'tomorrow' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)"
th add fx_answer x --delay 5 --hold
check "--hold wins over --delay: held" sh -c '[ "$("$1" -c "$2" status "$3")" = held ]' - "$TASKHOST" "$CFG" "$out"

# ---- named queues, pause, priorities ----
th pause mail
same "pause a queue" "$out" "queue mail paused"
ids=""
for p in 0 5 -3 5 9; do
	th add fx_span 1 --queue mail --priority "$p"
	ids="$ids $out"
done
set -- $ids
th status "$1"
same "a paused queue's job waits" "$out" queued
th add fx_answer x
th wait "$out" --timeout 30
expect "other queues go on" 0
th resume mail
same "resume it" "$out" "queue mail resumed"
th wait $ids --timeout 30
expect "then its jobs run" 0
order=$(grep -o "fx_good job=[0-9]* task=fx_span: enter [0-9]*" "$log" | sed 's/.*enter //' | tr '\n' ' ')
same "higher priority first, then in the order added" "$order" "$5 $2 $4 $1 $3 "
th list --status completed
check "list shows the queue" sh -c 'echo "$1" | grep -q "^$2 .* mail "' - "$out" "$1"
th pause "bad queue"
expect "a bad queue name" 2 "taskhost: bad queue name 'bad queue' (1 to 64 letters, digits, '_', '.', '-'; the default queue is 'default')"

# ---- unique keys ----
th add fx_answer x --unique nightly --hold
u=$out
th add fx_answer y --unique nightly
same "the same key gives the same job" "$out" "$u"
th add fx_answer y --unique nightly --json
check "--json says it existed" sh -c 'echo "$1" | grep -q "\"existed\": true"' - "$out"
th start "$u"
th wait "$u" --timeout 30
th add fx_answer y --unique nightly
check "once it finished, the key is free" [ "$out" -gt "$u" ]

# ---- retries, the error history, retry by hand ----
th add fx_answer retry --max-attempts 3 --backoff 100ms
r=$out
th wait "$r" --timeout 30
expect "out of attempts: error" 1 "taskhost: job $r failed: task asked to be retried"
th error "$r" --all
check "each attempt with when it began and how long it ran" sh -c \
	'echo "$1" | grep -Eq "^attempt 2 at 20[0-9-]+T[0-9:.]+Z for [0-9]+\.[0-9]{3} s: "' - "$out"
out=$(printf '%s\n' "$out" | sed -E 's/ at [^ ]+ for [0-9.]+ s:/:/')
same "every attempt's error" "$out" "attempt 1: task asked to be retried
attempt 2: task asked to be retried
attempt 3: task asked to be retried"
th retry "$r"
same "retry queues it again" "$out" "job $r queued again"
th wait "$r" --timeout 30
th status "$r" --json
check "and it ran again, attempts from zero" sh -c 'echo "$1" | grep -q "\"attempts\": 3,"' - "$out"
th error "$r" --all
out=$(printf '%s\n' "$out" | sed -E 's/ at [^ ]+ for [0-9.]+ s:/:/')
same "the history says where the retry counted attempts from 1 again" "$out" "attempt 1: task asked to be retried
attempt 2: task asked to be retried
attempt 3: task asked to be retried
retried: its attempts are counted from 1 again
attempt 1: task asked to be retried
attempt 2: task asked to be retried
attempt 3: task asked to be retried"
th retry "$d"
expect "retry of a completed job" 1 "taskhost: job $d is completed: only a job that ended in error or was cancelled can be retried"

# ---- timeouts and cancelling a running job ----
th add fx_wait 60000 --timeout 300ms
t=$out
th wait "$t" --timeout 30
expect "a run past its timeout is stopped" 1 "taskhost: job $t failed: timed out after 0.3 s"
th add fx_wait 60000
c=$out
wait_until 20 sh -c '[ "$("$1" -c "$2" status "$3")" = processing ]' - "$TASKHOST" "$CFG" "$c"
th cancel "$c"
same "cancel a running job" "$out" "cancel requested: job $c ends cancelled when its task returns"
th wait "$c" --timeout 30
expect "it ends cancelled" 1 "taskhost: job $c was cancelled"

# ---- cron jobs ----
th cron next "*/15 9-17 * * mon-fri" --from 2026-11-28T12:00:00Z --count 3
same "cron next" "$out" "2026-11-30T09:00:00.000Z
2026-11-30T09:15:00.000Z
2026-11-30T09:30:00.000Z"
th cron next "minute=0,10" --from 0 --count 2
same "lovely.remotetask's fields" "$out" "1970-01-01T00:10:00.000Z
1970-01-01T01:00:00.000Z"
th cron next "61 * * * *"
expect "a bad schedule" 2 "taskhost: cron next: bad schedule '61 * * * *': field 1 (minute): 61-61 is out of 0..59"
th cron add fx_answer x
expect "cron add needs a schedule" 2 "taskhost: cron add: expected TASK [INPUT | -] --schedule S (try 'taskhost cron --help')"
th cron add fx_answer tick --schedule "every 1s"
cron=$out
th status "$cron"
same "a cron job's status" "$out" cronjob
# a second host on the same data dir: each fire time still runs once
a=$HOST_PID
start_host "$W/b.log"
b=$HOST_PID
wait_until 30 sh -c '[ "$("$1" -c "$2" cron list --json | grep -o "\"fires\": [0-9]*" | grep -o "[0-9]*$")" -ge 4 ]' - "$TASKHOST" "$CFG"
th cron pause "$cron"
check "cron pause" sh -c 'echo "$1" | grep -q " paused "' - "$out"
th cron list --json
fires=$(echo "$out" | grep -o '"fires": [0-9]*' | grep -o '[0-9]*$')
runs=$("$TASKHOST" -c "$CFG" list --limit 0 --json | grep -c "\"cron_job\": $cron")
same "one run per fire, with two hosts" "$runs" "$fires"
th result "$cron"
same "a cron job shows its latest run's result" "$out" ok
th cron update "$cron" --schedule "0 3 * * *" --catch-up
check "cron update" sh -c 'echo "$1" | grep -q "catch-up .*0 3 \* \* \*"' - "$out"
th cron resume "$cron"
check "cron resume: next fire at 03:00" sh -c 'echo "$1" | grep -q "T03:00:00.000Z"' - "$out"
th cron remove "$cron"
same "cron remove" "$out" "cron job $cron removed"
th status "$cron"
same "a removed cron job is cancelled" "$out" cancelled
th cron pause "$d"
expect "cron commands want a cron job" 1 "taskhost: job $d is completed, not a cron job"
stop_host "$a"
stop_host "$b"

# ---- clean by age ----
th clean --older-than 1h
same "nothing is an hour old" "$out" "removed 0 finished jobs"
th clean --older-than 0.1s
check "clean --older-than removes the rest" sh -c 'echo "$1" | grep -q "^removed [1-9][0-9]* finished jobs$"' - "$out"

finish
