#!/bin/sh
# End to end: two hosts on one data dir run 1,000 jobs, each exactly once. The jobs
# are added from a third process while both hosts run, so both claim concurrently.
# GET /v1/hosts lists both; one that stopped took its record with it. The newest host
# serves api.sock; when it stops first, an older one makes the socket again.
. "$(dirname "$0")/lib.sh"

cp "$FIXTURES/fx_good.so" "$W/plugins/"
write_config "log_level = debug" -- "max_threads = 3" "wait_time = 0.5"
start_host "$W/a.log"
a=$HOST_PID
start_host "$W/b.log"
b=$HOST_PID

i=0
while [ $i -lt 1000 ]; do
	"$TASKHOST" -c "$CFG" add fx_record "$W/runs" >/dev/null || break
	i=$((i + 1))
done
same "1000 jobs added" "$i" 1000
th wait $(seq 1 1000) --timeout 300
expect "all 1000 completed" 0
# the socket is the host's that started last (b): it lists both, alive
hosts_seen() {
	curl -s --unix-socket "$W/var/api.sock" http://x/v1/hosts |
		jq -r '[.hosts[] | "\(.pid) \(.gone) \(.strategy) \(.workers)"] | join(",")'
}
same "GET /v1/hosts: both hosts, each with its strategy and workers" "$(hosts_seen)" \
	"$a false default: multi 3,$b false default: multi 3"
b_instance=$(curl -s --unix-socket "$W/var/api.sock" http://x/v1/hosts |
	jq -r --argjson b "$b" '.hosts[] | select(.pid == $b) | .instance')
# the socket is b's since b started: b, the newest, stopping first removes it, and a
# (still running) makes it again and answers on it
stop_host "$b"
same "host b stopped cleanly" "$host_rc" 0
serves() {
	[ "$(curl -s --unix-socket "$W/var/api.sock" http://x/v1/hosts |
		jq -r '[.hosts[] | select(.gone | not) | .pid] | join(",")')" = "$1" ]
}
check "a serves the socket again after b, which had taken it over, stopped" \
	wait_until 20 serves "$a"
check "a logged that it made the socket again" \
	grep -q "api.sock was gone: serving on it again" "$W/a.log"
# a third host takes the path over; a, stopping, leaves it to c
start_host "$W/c.log"
c=$HOST_PID
c_instance=$(curl -s --unix-socket "$W/var/api.sock" http://x/v1/hosts |
	jq -r --argjson c "$c" '.hosts[] | select(.pid == $c) | .instance')
stop_host "$a"
same "host a stopped cleanly" "$host_rc" 0
same "and took its record with it: c's is left" "$(cd "$W/var" && echo host-*)" "host-$c_instance"
check "c still answers on the socket after a stopped" serves "$c"
stop_host "$c"
check "the last host took its record with it" sh -c '! ls "$1"/var/host-* 2>/dev/null' - "$W"
check "and its socket" sh -c '! [ -e "$1"/var/api.sock ]' - "$W"

check "each job ran exactly once" sh -c '[ "$(sort -n "$1" | uniq | wc -l)" = 1000 ] && [ "$(wc -l <"$1")" = 1000 ]' - "$W/runs"
check "1 .. 1000" sh -c '[ "$(sort -n "$1" | head -n 1)" = 1 ] && [ "$(sort -n "$1" | tail -n 1)" = 1000 ]' - "$W/runs"
na=$(grep -c "task=fx_record: completed" "$W/a.log")
nb=$(grep -c "task=fx_record: completed" "$W/b.log")
# c started after the jobs were done
nc=$(grep -c "task=fx_record: completed" "$W/c.log")
same "the hosts' logs account for every run" $((na + nb + nc)) 1000
check "both hosts took jobs" [ "$na" -gt 0 ] && [ "$nb" -gt 0 ]
th stats --json
check "stats: 1000 completed" sh -c 'echo "$1" | grep -q "\"completed\": 1000"' - "$out"

finish
