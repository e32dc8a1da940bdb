#!/bin/sh
# End to end: with the process strategy, the progress a task reports in its worker
# process shows through the API while its job runs, and is gone once that run ended,
# whether the task returned or its worker died. On LMDB, and on PostgreSQL
# (pg_shared.sh), where the progress lives in the store's database.
. "$(dirname "$0")/lib.sh"

for tool in curl jq; do
	command -v $tool >/dev/null || {
		echo "progress.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
cp "$FIXTURES/fx_progress.so" "$W/plugins/"
write_config -- "strategy = process" "max_workers = 2"
SOCK="$W/var/api.sock"

# progress_is ID FILTER: GET /v1/jobs/ID/progress answers 200 with a body FILTER holds for
progress_is() {
	curl -s -f --unix-socket "$SOCK" "http://x/v1/jobs/$1/progress" | jq -e "$2" >/dev/null
}
# status_json_is ID FILTER: `taskhost status ID --json` holds for FILTER
status_json_is() {
	"$TASKHOST" -c "$CFG" status "$1" --json 2>/dev/null | jq -e "$2" >/dev/null
}

start_host
# fx_progress_hold: its first run reports 0.5 done (from a thread it starts) and holds
# until a file appears, then fails or kills its worker; its second run reports nothing
for how in fail crash; do
	th add fx_progress_hold "$W/$how $how" --max-attempts 2 --backoff 1ms
	id=$out
	check "$how: the progress reported in the worker shows while the job runs" \
		wait_until 20 progress_is "$id" '.status == "processing" and .progress == 0.5'
	touch "$W/$how"
	check "$how: the job runs again" \
		wait_until 20 status_json_is "$id" '.status == "processing" and .attempts == 2'
	check "$how: the progress of the run that ended is gone" \
		progress_is "$id" '.status == "processing" and .progress == null'
	touch "$W/$how.again"
	check "$how: the job completes" wait_until 20 status_json_is "$id" '.status == "completed"'
done
th error "$id" --all
check "the worker that died is why the crash run failed" \
	sh -c 'echo "$1" | grep -q "worker killed by SIGKILL"' - "$out"
stop_host "$HOST_PID"
same "the host stopped cleanly" "$host_rc" 0
finish
