#!/bin/sh
# End to end: a host at max_map_size does not wedge. In a 2 MiB map, 115 jobs run, a
# fifth of them failing with a 3 MB error: every job ends (completed or error, its
# error cut or left out), none stays processing, adds are refused with "database full"
# while the map is full, and `taskhost clean` makes room for them again.
. "$(dirname "$0")/lib.sh"

cp "$FIXTURES/fx_good.so" "$W/plugins/"
write_config "map_size = 1MiB" "max_map_size = 2MiB" "max_attempts = 1" -- \
	"max_threads = 4" "wait_time = 0.2"
JOBS=115
i=1
: >"$W/in"
while [ $i -le $JOBS ]; do
	if [ $((i % 5)) = 0 ]; then echo hugeerror; else echo ok; fi >>"$W/in"
	i=$((i + 1))
done
th add fx_answer --lines <"$W/in"
expect "$JOBS jobs added" 0
start_host "$W/host.log"
th wait $(seq 1 $JOBS) --timeout 60
expect "every job ended (some in error)" 1
th stats --json
check "none processing" sh -c 'echo "$1" | grep -q "\"processing\": 0,"' - "$out"
check "none queued" sh -c 'echo "$1" | grep -q "\"queued\": 0,"' - "$out"
check "the ok ones completed" sh -c 'echo "$1" | grep -q "\"completed\": 92,"' - "$out"
check "the failing ones ended in error" sh -c 'echo "$1" | grep -q "\"error\": 23,"' - "$out"
th error 5
check "the first huge error is kept, cut to 64 KiB" sh -c 'case $1 in *"e... (2934464 bytes cut)") exit 0 ;; esac; exit 1' - "$out"
th error 115
same "once full, an error is recorded without its bytes" "$out" "error message of 3000000 bytes did not fit in the database"
check "no outcome was refused as stale" sh -c '! grep -q "stale claim" "$1"' - "$W/host.log"
check "the log says what was left out" grep -q "job 115: error message of 3000000 bytes did not fit in the database: recorded without it" "$W/host.log"

th add fx_answer ok
expect "an add while full is refused" 1 "taskhost: add: database full ($W/var reached max_map_size); job not added"
th clean
expect "clean works on the full map" 0
same "it removed every finished job" "$out" "removed $JOBS finished jobs"
th add fx_answer ok
expect "an add after the clean works" 0
new=$out
th wait "$new" --timeout 30
expect "and the new job runs" 0
check "the host ran throughout" kill -0 "$HOST_PID"
counts_agree "after the full map the counts agree with a recount of the records"
stop_host "$HOST_PID"
same "the host stopped cleanly" "$host_rc" 0
finish
