#!/bin/sh
# End to end, the hard way: a multi host runs 2,000 jobs that record each run in a file,
# and is killed with SIGKILL at random moments 30 times, restarted each time, then left
# to finish. Every job must end completed, none lost, none left processing; a job may
# have run more than once only if it was running at a kill (then its attempts show it);
# the data dir must open cleanly every time.
. "$(dirname "$0")/lib.sh"

JOBS=${KILLHOST_JOBS:-2000} # a multiple of 10
KILLS=${KILLHOST_KILLS:-30}
cp "$FIXTURES/fx_good.so" "$W/plugins/"
write_config "max_attempts = 1000" -- "max_threads = 4" "wait_time = 0.2"
runs="$W/runs"

# jobs are added by separate processes the whole time, ten at a time, on the data dir
# itself (--local): an add through a host that is killed during it may or may not have
# been done, which api.sh's group commit test looks at
(
	i=0
	while [ $i -lt "$JOBS" ]; do
		# one job in ten long enough that a kill right after seeing it run still cuts it
		{ echo "$runs 400"; for _ in 1 2 3 4 5 6 7 8 9; do echo "$runs 20"; done; } |
			"$TASKHOST" -c "$CFG" --local add fx_record --lines >/dev/null || break
		i=$((i + 10))
	done
	echo "$i" >"$W/added"
) &

starts=0
start_logged() {
	starts=$((starts + 1))
	start_host "$W/host.$starts.log" || return 1
	grep -q "host: started" "$W/host.$starts.log"
}

# a kill is meant to cut attempts short: when adds are slow (the sanitizers), the queue is
# often empty at a random moment, so each kill also waits (a while) for a job that runs
processing_now() {
	"$TASKHOST" -c "$CFG" stats --json 2>/dev/null | grep -q '"processing": [1-9]'
}

opened=0
start_logged && opened=$((opened + 1))
k=0
while [ $k -lt "$KILLS" ]; do
	# a random moment: 20 to 300 ms from now
	sleep "0.$(printf '%03d' $((20 + $(od -An -N2 -tu2 /dev/urandom) % 280)))"
	wait_until 3 processing_now || true
	kill -KILL "$HOST_PID"
	wait "$HOST_PID" 2>/dev/null
	k=$((k + 1))
	start_logged && opened=$((opened + 1))
done
same "the data dir opened cleanly at every start" "$opened" $((KILLS + 1))
wait_until 600 test -s "$W/added"
same "all jobs were added" "$(cat "$W/added")" "$JOBS"

th wait $(seq 1 "$JOBS") --timeout 600
expect "every job ended completed" 0
stop_host "$HOST_PID"

th stats --json
check "stats: all completed" sh -c 'echo "$1" | grep -q "\"completed\": $2,"' - "$out" "$JOBS"
check "stats: none processing" sh -c 'echo "$1" | grep -q "\"processing\": 0,"' - "$out"
check "stats: none queued, none failed" sh -c 'echo "$1" | grep -q "\"queued\": 0," && echo "$1" | grep -q "\"error\": 0,"' - "$out"
counts_agree "after $KILLS kills the counts agree with a recount of the records"

# runs per job from the file, attempts per job from the store
sort -n "$runs" | uniq -c | awk '{print $2, $1}' >"$W/runs.count"
"$TASKHOST" -c "$CFG" list --limit 0 --json |
	awk -F': ' '/"id":/ {gsub(/,/, "", $2); id = $2} /"attempts":/ {gsub(/,/, "", $2); print id, $2}' \
		>"$W/attempts"
check "every job ran at least once" sh -c '[ "$(wc -l <"$1")" = "$2" ]' - "$W/runs.count" "$JOBS"
join "$W/runs.count" "$W/attempts" >"$W/joined"
check "no job ran more often than it was attempted" sh -c '! awk "\$2 > \$3" "$1" | grep -q .' - "$W/joined"
check "a job ran twice only after a kill cut an attempt short" sh -c '! awk "\$2 > 1 && \$3 < 2" "$1" | grep -q .' - "$W/joined"
again=$(awk '$2 > 1' "$W/joined" | wc -l)
cut=$(awk '$3 > 1' "$W/joined" | wc -l)
echo "# $KILLS kills: $cut jobs had an attempt cut short, $again of them had already recorded a run"
recovered=$(cat "$W"/host.*.log | grep -c "recovered [0-9]* job")
check "restarted hosts recovered the jobs of the killed ones" [ "$recovered" -gt 0 ]

finish
