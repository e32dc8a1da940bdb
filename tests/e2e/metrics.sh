#!/bin/sh
# End to end, GET /metrics: the text parsed by a strict parser of the Prometheus format
# (promparse.pl, itself shown to refuse what breaks the format), over the unix socket and
# TCP with tokens, and its values against what the test did: jobs added through the API
# by task and queue, completed, retried and failed runs, held jobs, run durations, the
# store's counts after the host restarts.
. "$(dirname "$0")/lib.sh"

for tool in curl perl python3; do
	command -v $tool >/dev/null || {
		echo "metrics.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
PARSE="perl $(dirname "$0")/promparse.pl"
SOCK="$W/var/api.sock"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
READ=read-token-0123456789abcdef
printf 'reader read %s\n' "$READ" >"$W/tokens"
chmod 600 "$W/tokens"

# ---- the parser refuses what breaks the format ----
refuses() { # refuses DESC TEXT: the parser exits 1 on TEXT
	if printf '%b' "$2" | $PARSE >/dev/null 2>&1; then not_ok "the parser refuses $1"; else ok "the parser refuses $1"; fi
}
refuses "a sample before its TYPE" 'a 1\n# TYPE a gauge\n'
refuses "a counter not named _total" '# TYPE a counter\na 1\n'
refuses "a bad escape in a label value" '# TYPE a gauge\na{x="\\q"} 1\n'
refuses "a series twice" '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'
refuses "a family split in two" '# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="1"} 1\n'
refuses "buckets that go down" '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
refuses "a histogram without +Inf" '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'
refuses "+Inf other than _count" '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n'
refuses "a value that is no number" '# TYPE a gauge\na one\n'
refuses "a missing last newline" '# TYPE a gauge\na 1'
if printf '# HELP a x\n# TYPE a gauge\na{x="q\\"\\\\"} 1.5e3\n' | $PARSE >/dev/null; then
	ok "the parser takes what is well formed"
else
	not_ok "the parser takes what is well formed"
fi

# metrics [curl options]: GET /metrics over the unix socket, parsed into $W/m; $code
metrics() {
	code=$(curl -s -o "$W/raw" -w '%{http_code}' --unix-socket "$SOCK" "$@" http://localhost/metrics)
	$PARSE <"$W/raw" >"$W/m" 2>"$W/parse.err"
	parsed=$?
}
# value SERIES: the value of one series ('name{labels}' as the parser prints it)
value() {
	awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print "missing" }' "$W/m"
}

write_config "listen = 127.0.0.1:$PORT" "token_file = $W/tokens" -- "max_threads = 4" \
	"wait_time = 0.05"
printf '[queue mail]\nstrategy = simple\n' >>"$CFG"
start_host || exit 1
metrics
same "a host that did nothing answers 200" "$code" 200
same "and it parses" "$parsed" 0
same "no job is counted" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" missing
add() { # add JSON: POST /v1/jobs
	curl -s -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/json' \
		-d "$1" http://localhost/v1/jobs
}
for i in 1 2 3; do add "{\"task\":\"echo\",\"input\":\"d$i\"}"; done
for i in 1 2; do add "{\"task\":\"echo\",\"queue\":\"mail\",\"input\":\"m$i\"}"; done
add '{"task":"fail","max_attempts":2,"backoff":0.01}'
add '{"task":"echo","hold":true}'
th wait 1 2 3 4 5 6 --timeout 30
expect "the jobs ended (one in error)" 1
metrics
same "metrics parse after the jobs ran" "$parsed" 0
same "content type is the text format's" "$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$SOCK" http://localhost/metrics)" \
	"text/plain; version=0.0.4; charset=utf-8"
same "completed in default" "$(value 'taskhost_jobs{queue="default",status="completed"}')" 3
same "completed in mail" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" 2
same "in error" "$(value 'taskhost_jobs{queue="default",status="error"}')" 1
same "held" "$(value 'taskhost_jobs{queue="default",status="held"}')" 1
same "none queued in mail" "$(value 'taskhost_jobs{queue="mail",status="queued"}')" 0
same "added echo, default" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" 4
same "added echo, mail" "$(value 'taskhost_jobs_added_total{queue="mail",task="echo"}')" 2
same "added fail" "$(value 'taskhost_jobs_added_total{queue="default",task="fail"}')" 1
same "completed echo, default" "$(value 'taskhost_jobs_completed_total{queue="default",task="echo"}')" 3
same "completed echo, mail" "$(value 'taskhost_jobs_completed_total{queue="mail",task="echo"}')" 2
same "fail retried once" "$(value 'taskhost_jobs_retried_total{queue="default",task="fail"}')" 1
same "then failed" "$(value 'taskhost_jobs_failed_total{queue="default",task="fail"}')" 1
same "no echo failed" "$(value 'taskhost_jobs_failed_total{queue="default",task="echo"}')" 0
same "echo ran 5 times" "$(value 'taskhost_job_run_duration_seconds_count{task="echo"}')" 5
same "fail ran twice" "$(value 'taskhost_job_run_duration_seconds_count{task="fail"}')" 2
same "every run has a start delay" "$(value 'taskhost_job_start_delay_seconds_count{}')" 7
same "7 adds, one commit each" "$(value 'taskhost_store_commit_duration_seconds_count{op="add"}')" 7
same "of one job each" "$(value 'taskhost_group_commit_batch_size_bucket{le="1"}')" 7
cycles=$(value 'taskhost_store_commit_duration_seconds_count{op="cycle"}')
check "cycles were committed ($cycles)" test "$cycles" -ge 1
same "nothing recovered" "$(value 'taskhost_jobs_recovered_total{}')" 0
map=$(value 'taskhost_lmdb_map_size_bytes{}')
used=$(value 'taskhost_lmdb_map_used_bytes{}')
check "the map's use ($used) is within its size ($map)" test "$used" -gt 0 -a "$used" -le "$map"

# ---- TCP: a read token is enough, none is refused ----
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
same "TCP without a token: 401" "$code" 401
code=$(curl -s -o "$W/raw" -w '%{http_code}' -H "Authorization: Bearer $READ" "http://127.0.0.1:$PORT/metrics")
same "TCP with a read token: 200" "$code" 200
check "and it parses" sh -c "$PARSE <'$W/raw' >/dev/null"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/v1/metrics)
same "not under /v1" "$code" 404
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://localhost/metrics)
same "GET only" "$code" 405

# ---- a restart: the host's counters start again, the store's counts stay ----
stop_host "$HOST_PID"
start_host "$W/host2.log" || exit 1
metrics
same "after a restart it parses" "$parsed" 0
same "the counts are the store's" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" 2
same "this host added nothing" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" missing
stop_host "$HOST_PID"
counts_agree "the counts agree with a recount of the records"
finish
